//! Command-line behaviour, files and log lines of the real binary.
mod common;

use std::process::Command;

use common::{Server, bin, temp_dir, write_file};

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).output().expect("run natsws");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_help_and_unknown_flags() {
    let (code, out, _) = run(&["-v"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("natsws: v"), "{out}");
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Usage: natsws [options]"));
    let (code, _, err) = run(&["--bogus"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("flag provided but not defined: -bogus"),
        "{err}"
    );
}

#[test]
fn check_config_valid_and_invalid() {
    let dir = temp_dir("cli");
    let good = write_file(
        &dir,
        "good.conf",
        "port: 4333\nwebsocket { port: 8443, no_tls: true }\n",
    );
    let (code, _, err) = run(&["-t", "-c", &good]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, format!("natsws: configuration file {good} is valid\n"));
    let bad = write_file(&dir, "bad.conf", "port: 4333\nmax_payload: \"lots\"\n");
    let (code, _, err) = run(&["-t", "-c", &bad]);
    assert_eq!(code, 1);
    assert!(err.starts_with(&format!("natsws: {bad}:2:")), "{err}");
    let syntax = write_file(&dir, "syntax.conf", "port: [1, 2\n");
    let (code, _, err) = run(&["-t", "-c", &syntax]);
    assert_eq!(code, 1);
    assert!(err.starts_with("natsws: "), "{err}");
    let (code, _, err) = run(&["-t"]);
    assert_eq!(code, 1);
    assert!(err.contains("must specify [-c, --config] option to check configuration file syntax"));
    let unsupported = write_file(&dir, "cluster.conf", "cluster { port: 6222 }\n");
    let (code, _, err) = run(&["-t", "-c", &unsupported]);
    assert_eq!(code, 1);
    assert!(err.contains("cluster"), "{err}");
}

#[test]
fn bad_config_at_startup_exits_non_zero() {
    let dir = temp_dir("cli");
    let bad = write_file(&dir, "bad.conf", "websocket { port: -1 }\n");
    let (code, _, err) = run(&["-c", &bad]);
    assert_eq!(code, 1);
    assert!(
        err.contains("websocket requires TLS configuration"),
        "{err}"
    );
}

#[test]
fn dump_config_prints_typed_json() {
    let dir = temp_dir("cli");
    let conf = write_file(&dir, "d.conf", "a: 1\nb: \"x\"\nc: 1k\n");
    let (code, out, _) = run(&["--dump-config", &conf]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "{\"map\":{\"a\":{\"int\":1},\"b\":{\"str\":\"x\"},\"c\":{\"int\":1000}}}\n"
    );
    let (code, out, _) = run(&["--dump-config", "--positions", &conf]);
    assert_eq!(code, 0);
    assert!(out.contains("\"line\":2"), "{out}");
}

#[test]
fn ports_file_pid_file_and_log_lines() {
    let dir = temp_dir("files");
    let pid_file = dir.join("natsws.pid").to_string_lossy().into_owned();
    let conf = format!("{}pid_file: \"{pid_file}\"\n", common::BASIC_CONF);
    let mut srv = Server::with_config(&conf, &["-js"]);
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        srv.pid().to_string()
    );
    let log = srv.wait_log("Server is ready");
    assert!(log.contains(&format!(
        "Listening for client connections on 127.0.0.1:{}",
        srv.nats_port()
    )));
    assert!(log.contains(&format!(
        "Listening for websocket clients on ws://127.0.0.1:{}",
        srv.ws_port()
    )));
    assert!(log.contains("[WRN] JetStream is not provided by natsws"));
    let first = log.lines().next().unwrap();
    let prefix = format!("[{}] ", srv.pid());
    assert!(first.starts_with(&prefix), "{first}");
    assert!(first.contains(" [INF] "), "{first}");
    let ports_file = srv.dir.join(format!("natsws_{}.ports", srv.pid()));
    assert!(ports_file.exists());
    // --signal through the pid file.
    let (code, _, err) = run(&["--signal", &format!("quit={pid_file}")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(srv.wait_exit(), 0);
    assert!(!ports_file.exists(), "ports file removed at shutdown");
    let (code, _, err) = run(&["--signal", "bogus=1"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown signal \"bogus\""));
}

#[test]
fn logtime_off_and_debug_lines() {
    let srv = Server::with_config(common::BASIC_CONF, &["-T=false", "-D"]);
    let log = srv.wait_log("Server is ready");
    let first = log.lines().next().unwrap();
    assert_eq!(first, format!("[{}] [INF] Starting natsws", srv.pid()));
    let mut tcp = common::Raw::connect(srv.nats_port());
    tcp.line();
    srv.wait_log("[DBG] 127.0.0.1:");
    srv.wait_log("- cid:1 - Client connection created");
}

#[test]
fn json_log_format_writes_one_object_per_line() {
    let srv = Server::with_config(common::BASIC_CONF, &["--log_format", "json", "-D"]);
    srv.wait_log("Server is ready");
    let mut tcp = common::Raw::connect(srv.nats_port());
    tcp.line();
    let log = srv.wait_log("Client connection created");
    let mut levels = Vec::new();
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        let time = v["time"].as_str().expect("time");
        // RFC 3339 in UTC: 2026-11-23T12:37:50.410423Z
        assert!(
            time.len() >= 20 && time.as_bytes()[10] == b'T' && time.ends_with('Z'),
            "{time}"
        );
        assert_eq!(v["pid"], srv.pid());
        assert!(v["msg"].is_string(), "{line}");
        levels.push(v["level"].as_str().expect("level").to_owned());
    }
    assert_eq!(levels.first().map(String::as_str), Some("info"));
    assert!(levels.iter().any(|l| l == "debug"), "{levels:?}");
    let (code, _, err) = run(&["--log_format", "xml"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("invalid value \"xml\" for flag -log_format: parse error"),
        "{err}"
    );
}

#[test]
fn sigterm_exits_1_and_sigusr1_reopens_log() {
    let mut srv = Server::basic();
    srv.signal("USR1");
    srv.wait_log("File log re-opened");
    let rotated = srv.dir.join("rotated.log");
    std::fs::rename(&srv.log, &rotated).unwrap();
    srv.signal("USR1");
    srv.wait_log("File log re-opened");
    srv.signal("TERM");
    assert_eq!(srv.wait_exit(), 1);
    assert!(srv.log_text().contains("Server Exiting.."));
}

#[test]
fn cli_user_and_password_are_enforced() {
    let mut srv = Server::with_config(common::BASIC_CONF, &["--user", "alice", "--pass", "s3cret"]);
    let mut anon = common::Raw::connect(srv.nats_port());
    assert!(anon.line().contains("\"auth_required\":true"));
    anon.send("CONNECT {\"verbose\":false}\r\nPING\r\n");
    anon.read_until("-ERR 'Authorization Violation'");
    let mut ok = common::Raw::connect(srv.nats_port());
    ok.line();
    ok.send("CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"s3cret\"}\r\nPING\r\n");
    ok.read_until("PONG");
    srv.signal("INT");
    assert_eq!(srv.wait_exit(), 0);
}

#[test]
fn check_config_fails_on_warnings_like_nats_server() {
    let dir = temp_dir("cli");
    let conf = write_file(&dir, "w.conf", "port: -1\nping_interval: 60\n");
    let (code, _, err) = run(&["-t", "-c", &conf]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "natsws: {conf}:2:1: invalid use of field \"ping_interval\": ping_interval should be converted to a duration\n"
        )
    );
}

/// Options nats-server knows that natsconf only records as unmodelled are refused by the
/// binary's policy, as config errors at their values, sorted in with the other option errors
/// after the warnings: `-t` and start-up print the same report (the text and positions
/// natsws printed when natsconf itself refused these keys).
#[test]
fn unmodelled_options_are_refused_with_the_other_option_errors() {
    let dir = temp_dir("cli");
    let conf = write_file(
        &dir,
        "unmodelled.conf",
        "port: -1\nping_interval: 60\nfoo: 1\ncluster { port: 1 }\n\
         accounts { A: { jetstream: enabled, users: [{user: u, password: p}] }, B: { mappings: {a: b}, foo: 2 } }\n\
         leafnodes { remotes: [ { url: \"nats://h:1\" }, { url: \"nats://h:2\", js_cluster_migrate: true } ] }\n\
         PROF_PORT: 1\n",
    );
    let want = format!(
        "natsws: {conf}:2:1: invalid use of field \"ping_interval\": ping_interval should be converted to a duration\n\
         {conf}:3:1: unknown field \"foo\"\n\
         {conf}:4:1: \"cluster\" is not supported by natsws\n\
         {conf}:5:17: \"jetstream\" is not supported by natsws\n\
         {conf}:5:77: \"mappings\" is not supported by natsws\n\
         {conf}:5:95: unknown field \"foo\"\n\
         {conf}:6:68: \"js_cluster_migrate\" is not supported by natsws\n\
         {conf}:7:1: \"PROF_PORT\" is not supported by natsws\n"
    );
    for args in [&["-t", "-c", &conf][..], &["-c", &conf, "-p", "-1"][..]] {
        let (code, out, err) = run(args);
        assert_eq!((code, out.as_str()), (1, ""), "{args:?}");
        assert_eq!(err, want, "{args:?}");
    }
    // Refused alone: the warnings, then the refusal; checked before start-up validation
    // (this websocket block without TLS would fail it).
    let conf = write_file(
        &dir,
        "alone.conf",
        "ping_interval: 60\nwebsocket { port: -1 }\ncluster { port: -1 }\n",
    );
    let (code, _, err) = run(&["-t", "-c", &conf]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "natsws: {conf}:1:0: invalid use of field \"ping_interval\": ping_interval should be converted to a duration\n\
             {conf}:3:1: \"cluster\" is not supported by natsws\n"
        )
    );
}

#[test]
fn unserved_options_are_refused_by_name() {
    let dir = temp_dir("cli");
    for (conf, name) in [
        (
            "leafnodes { tls { insecure: true } }\n",
            "\"leafnodes.tls.insecure\"",
        ),
        (
            "accounts { A { exports: [{stream: \"s.*\", account_token_position: 2}] } }\n",
            "\"accounts.exports.account_token_position\"",
        ),
        ("server_tags: [\"a\"]\n", "\"server_tags\""),
        ("client_advertise: \"x:4222\"\n", "\"client_advertise\""),
        (
            "tls { cert_file: a, key_file: b, pinned_certs: [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"] }\n",
            "\"tls.pinned_certs\"",
        ),
        (
            "tls { cert_file: a, key_file: b, verify_and_map: true }\n",
            "\"tls.verify_and_map\"",
        ),
        (
            "websocket { port: -1, no_tls: true, advertise: \"h:1\" }\n",
            "\"websocket.advertise\"",
        ),
    ] {
        let path = write_file(&dir, "refused.conf", conf);
        let (code, _, err) = run(&["-t", "-c", &path]);
        assert_eq!(code, 1, "{conf}");
        assert!(
            err.contains(name) && err.contains("not supported by natsws"),
            "{conf}: {err}"
        );
    }
}

/// The `nats` URLs of a ports file written by `program` listening on `0.0.0.0`, with the port
/// replaced by `P`.
fn any_address_ports(program: &str) -> Vec<String> {
    let dir = temp_dir("ports-any");
    let port = common::free_port().to_string();
    let mut child = Command::new(program)
        .args(["-a", "0.0.0.0", "-p", &port, "--ports_file_dir"])
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + common::WAIT;
    let text = loop {
        let found = std::fs::read_dir(&dir)
            .ok()
            .and_then(|mut d| d.find_map(Result::ok))
            .and_then(|e| std::fs::read_to_string(e.path()).ok())
            .filter(|t| t.ends_with('}'));
        if let Some(text) = found {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{program}: no ports file"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["nats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().replace(&format!(":{port}"), ":P"))
        .collect()
}

/// On `0.0.0.0` the ports file lists every interface address (nats-server's
/// `resolveHostPorts`), and the listener takes IPv6 connections too, as Go's does.
#[test]
fn ports_file_lists_interface_addresses_for_the_any_address() {
    let ours = any_address_ports(bin());
    assert!(ours.contains(&"nats://127.0.0.1:P".to_owned()), "{ours:?}");
    match common::reference_server() {
        Some(reference) => assert_eq!(ours, any_address_ports(reference)),
        None => eprintln!("nats-server not installed: compared with loopback only"),
    }
    if ours.contains(&"nats://[::1]:P".to_owned()) {
        let srv = Server::with_config("listen: \"0.0.0.0:-1\"\nhttp: \"127.0.0.1:-1\"\n", &[]);
        let port = srv.nats_port();
        let stream = std::net::TcpStream::connect(("::1", port)).expect("IPv6 connect");
        let mut reader = std::io::BufReader::new(stream);
        let mut info = String::new();
        std::io::BufRead::read_line(&mut reader, &mut info).unwrap();
        assert!(info.starts_with("INFO {"), "{info}");
        // IPv4 peers of the dual-stack listener are reported as plain IPv4.
        let mut v4 = common::Raw::connect(port);
        v4.line();
        v4.send("CONNECT {\"verbose\":false}\r\nPING\r\n");
        v4.read_until("PONG\r\n");
        let (_, _, body) = srv.http_get("/connz");
        assert!(body.contains("\"ip\": \"127.0.0.1\""), "{body}");
    }
}

/// Every `--signal` command reaches the server through its pid file.
#[test]
fn signal_commands_through_the_pid_file() {
    let dir = temp_dir("signals");
    let pid_file = dir.join("natsws.pid").to_string_lossy().into_owned();
    let conf = format!("{}pid_file: \"{pid_file}\"\n", common::BASIC_CONF);
    let signal = |cmd: &str| {
        let (code, _, err) = run(&["--signal", &format!("{cmd}={pid_file}")]);
        assert_eq!(code, 0, "{cmd}: {err}");
    };
    let mut srv = Server::with_config(&conf, &[]);
    signal("reload");
    srv.wait_log("Reloaded server configuration");
    signal("reopen");
    srv.wait_log("File log re-opened");
    signal("stop");
    // SIGKILL: no exit code at all.
    assert_eq!(srv.wait_exit(), -1);

    // Lame duck with no clients left ends at once, cleanly.
    let mut srv = Server::with_config(&conf, &[]);
    signal("ldm");
    srv.wait_log("Entering lame duck mode");
    assert_eq!(srv.wait_exit(), 0);

    let mut srv = Server::with_config(&conf, &[]);
    signal("term");
    assert_eq!(srv.wait_exit(), 1);
}

/// docs/natsws.1.md carries the `--help` text verbatim and describes every flag in it.
#[test]
fn man_page_matches_help_output() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/natsws.1.md");
    let doc = std::fs::read_to_string(path).expect("docs/natsws.1.md");
    let (_, rest) = doc
        .split_once("<!-- BEGIN natsws --help -->\n```text\n")
        .expect("begin marker");
    let (block, options) = rest
        .split_once("```\n<!-- END natsws --help -->")
        .expect("end marker");
    let (code, help, _) = run(&["--help"]);
    assert_eq!(code, 0);
    assert_eq!(
        block.trim_matches('\n'),
        help.trim_matches('\n'),
        "docs/natsws.1.md is out of date: paste the new `natsws --help` output"
    );
    // Every flag the help names has an entry in the OPTIONS section.
    for word in help.split(|c: char| c.is_whitespace() || c == ',') {
        let flag = word.trim_matches(['[', ']', '(', ')', ':']);
        if flag.starts_with('-') && flag.len() > 1 && !flag.starts_with("-1") {
            assert!(
                options.contains(&format!("`{flag}`")),
                "docs/natsws.1.md OPTIONS does not describe {flag}"
            );
        }
    }
}
