//! SIGHUP reload of websocket properties and limits, and lame duck mode (SIGUSR2).
mod common;

use common::{RawWs, Server, free_port};

fn conf_with(ws_port: u16, ws_extra: &str, top_extra: &str) -> String {
    format!(
        "listen: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:-1\"\n{top_extra}\nwebsocket {{\n  listen: \"127.0.0.1:{ws_port}\"\n  no_tls: true\n  {ws_extra}\n}}\n"
    )
}

fn reload(srv: &Server, conf: &str, n: usize) {
    srv.reload(conf, n);
}

#[test]
fn reload_origins_compression_headers_and_timeout() {
    let port = free_port();
    let srv = Server::with_config(&conf_with(port, "", ""), &[]);
    let ws = RawWs::connect(
        port,
        "Origin: http://evil.example\r\nSec-WebSocket-Extensions: permessage-deflate\r\n",
    );
    assert_eq!(ws.status(), 101);
    assert!(!ws.response.contains("permessage-deflate"));

    reload(
        &srv,
        &conf_with(
            port,
            "allowed_origins: [\"http://good.example\"]\n  compression: true\n  headers { \"X-Natsws-Test\": \"yes\" }\n  handshake_timeout: \"250ms\"",
            "",
        ),
        1,
    );
    assert!(
        srv.log_text()
            .contains("Reloaded: websocket allowed_origins")
    );
    let evil = RawWs::connect(port, "Origin: http://evil.example\r\n");
    assert_eq!(evil.status(), 403, "{}", evil.response);
    let good = RawWs::connect(
        port,
        "Origin: http://good.example\r\nSec-WebSocket-Extensions: permessage-deflate\r\n",
    );
    assert_eq!(good.status(), 101, "{}", good.response);
    assert!(
        good.response.contains("permessage-deflate"),
        "{}",
        good.response
    );
    assert!(
        good.response.contains("X-Natsws-Test: yes"),
        "{}",
        good.response
    );
    // The new handshake timeout applies to new connections.
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    idle.set_read_timeout(Some(common::WAIT)).unwrap();
    let start = std::time::Instant::now();
    use std::io::Read as _;
    let mut buf = Vec::new();
    let _ = idle.read_to_end(&mut buf);
    assert!(start.elapsed() < std::time::Duration::from_secs(3));
    let (_, _, varz) = srv.http_get("/varz");
    let v: serde_json::Value = serde_json::from_str(&varz).unwrap();
    assert_eq!(v["websocket"]["compression"], true);
    assert_eq!(v["websocket"]["handshake_timeout"], 250_000_000);
}

#[test]
fn reload_rebinds_a_changed_port() {
    let (a, b) = (free_port(), free_port());
    let srv = Server::with_config(&conf_with(a, "", ""), &[]);
    assert_eq!(RawWs::connect(a, "").status(), 101);
    reload(&srv, &conf_with(b, "", ""), 1);
    assert_eq!(RawWs::connect(b, "").status(), 101);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", a)).is_err(),
        "old port closed"
    );
    srv.wait_log(&format!(
        "Listening for websocket clients on ws://127.0.0.1:{b}"
    ));
    let ports =
        std::fs::read_to_string(srv.dir.join(format!("natsws_{}.ports", srv.pid()))).unwrap();
    assert!(ports.contains(&format!("ws://127.0.0.1:{b}")), "{ports}");
}

#[test]
fn bad_reload_keeps_the_old_config() {
    let port = free_port();
    let srv = Server::with_config(&conf_with(port, "", ""), &[]);
    reload(&srv, "websocket { port: [ }\n", 1);
    let log = srv.log_text();
    assert!(
        log.contains("[ERR] Failed to reload server configuration: "),
        "{log}"
    );
    assert_eq!(RawWs::connect(port, "").status(), 101);
    // A non-reloadable change is refused with the reference's text.
    reload(&srv, &conf_with(port, "", "max_subscriptions: 10"), 2);
    assert!(
        srv.log_text()
            .contains("config reload not supported for MaxSubs")
    );
}

/// A reload that names options natsws does not serve is refused with the report `-t` gives
/// for the same file, and the server keeps its configuration.
#[test]
fn reload_refuses_unmodelled_options_as_start_up_does() {
    let port = free_port();
    let srv = Server::with_config(&conf_with(port, "", ""), &[]);
    let conf = conf_with(port, "", "cluster { port: 6222 }\nfoo: 1\njetstream: true");
    reload(&srv, &conf, 1);
    let path = srv.dir.join("server.conf").to_string_lossy().into_owned();
    let check = std::process::Command::new(common::bin())
        .args(["-t", "-c", &path])
        .output()
        .unwrap();
    let report = String::from_utf8(check.stderr).unwrap();
    assert_eq!(
        report,
        format!(
            "natsws: {path}:3:1: \"cluster\" is not supported by natsws\n\
             {path}:4:1: unknown field \"foo\"\n\
             {path}:5:1: \"jetstream\" is not supported by natsws\n"
        )
    );
    let log = srv.log_text();
    let want = format!(
        "[ERR] Failed to reload server configuration: {}",
        report.strip_prefix("natsws: ").unwrap()
    );
    assert!(log.contains(&want), "{log}");
    assert!(!log.contains("Reloaded server configuration"), "{log}");
    assert_eq!(RawWs::connect(port, "").status(), 101);
}

/// A reload is all or nothing: one whose new websocket port is taken fails with nats-server's
/// words, keeps the old listener serving and changes nothing else it asked for (here,
/// compression and debug logging); a later reload still works.
#[test]
fn reload_to_a_taken_port_changes_nothing() {
    let port = free_port();
    let srv = Server::with_config(&conf_with(port, "", ""), &[]);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    reload(
        &srv,
        &conf_with(taken_port, "compression: true", "debug: true"),
        1,
    );
    let log = srv.log_text();
    assert!(
        log.contains(&format!(
            "[ERR] Failed to reload server configuration: Unable to listen for websocket connections: listen tcp 127.0.0.1:{taken_port}: bind: address already in use"
        )),
        "{log}"
    );
    assert!(!log.contains("Reloaded: "), "{log}");
    let ws = RawWs::connect(port, "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    assert_eq!(ws.status(), 101, "{}", ws.response);
    assert!(
        !ws.response.contains("permessage-deflate"),
        "{}",
        ws.response
    );
    let (_, _, varz) = srv.http_get("/varz");
    let v: serde_json::Value = serde_json::from_str(&varz).unwrap();
    assert_eq!(v["websocket"]["port"], port);
    assert_ne!(v["websocket"]["compression"], true, "{varz}");
    // The logger was not switched to debug either.
    let mut c = common::Raw::connect(srv.nats_port());
    c.send("PING\r\n");
    let _info = c.line();
    assert!(!srv.log_text().contains("[DBG]"), "{}", srv.log_text());
    // Freed, the port is taken by the next reload.
    drop(taken);
    reload(&srv, &conf_with(taken_port, "", ""), 2);
    assert_eq!(RawWs::connect(taken_port, "").status(), 101);
}

#[test]
fn reload_limits_apply_to_new_connections() {
    let port = free_port();
    let srv = Server::with_config(&conf_with(port, "", ""), &[]);
    reload(&srv, &conf_with(port, "", "max_payload: 100"), 1);
    let mut c = common::Raw::connect(srv.nats_port());
    let info = c.line();
    assert!(info.contains("\"max_payload\":100"), "{info}");
    c.send(&format!(
        "CONNECT {{}}\r\nPUB x 200\r\n{}\r\n",
        "y".repeat(200)
    ));
    c.read_until("-ERR 'Maximum Payload Violation'");
}

#[test]
fn lame_duck_mode_closes_clients_and_exits() {
    let port = free_port();
    let srv_conf = conf_with(
        port,
        "",
        "lame_duck_duration: \"30s\"\nlame_duck_grace_period: \"500ms\"",
    );
    let mut srv = Server::with_config(&srv_conf, &[]);
    let mut ws = RawWs::connect(port, "");
    ws.frame().unwrap();
    ws.send(b"CONNECT {\"verbose\":false,\"protocol\":1}\r\nPING\r\n");
    ws.read_until("PONG");
    srv.signal("USR2");
    let info = ws.read_until("\"ldm\":true");
    assert!(
        info.starts_with("INFO {") && info.ends_with("} \r\n"),
        "{info}"
    );
    srv.wait_log("Entering lame duck mode, stop accepting new clients");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    assert_eq!(ws.read_close(), (1001, "Server Shutdown".to_owned()));
    assert_eq!(srv.wait_exit(), 0);
}

#[test]
fn reload_websocket_token_auth() {
    let port = free_port();
    let srv = Server::with_config(
        &conf_with(port, "authorization { token: \"one\" }", ""),
        &[],
    );
    let check = |token: &str| -> String {
        let mut ws = RawWs::connect(port, "");
        let info = ws.read_until("INFO ");
        assert!(info.contains("\"auth_required\":true"), "{info}");
        ws.send(
            format!("CONNECT {{\"verbose\":false,\"auth_token\":\"{token}\"}}\r\nPING\r\n")
                .as_bytes(),
        );
        ws.read_until("\r\n")
    };
    assert!(check("one").contains("PONG"));
    assert!(check("two").contains("Authorization Violation"));
    reload(
        &srv,
        &conf_with(port, "authorization { token: \"two\" }", ""),
        1,
    );
    assert!(
        srv.log_text().contains("Reloaded: websocket authorization"),
        "{}",
        srv.log_text()
    );
    assert!(check("two").contains("PONG"));
    assert!(check("one").contains("Authorization Violation"));
    // TCP clients are not affected by the websocket override.
    let mut tcp = common::Raw::connect(srv.nats_port());
    tcp.line();
    tcp.send("CONNECT {\"verbose\":false}\r\nPING\r\n");
    tcp.read_until("PONG");
}

#[test]
fn lowering_max_connections_closes_the_newest_clients() {
    let port = free_port();
    let srv = Server::with_config(&conf_with(port, "", ""), &[]);
    let mut old = common::Raw::connect(srv.nats_port());
    old.line();
    old.send("CONNECT {\"verbose\":false}\r\nPING\r\n");
    old.read_until("PONG");
    let mut ws = RawWs::connect(port, "");
    ws.frame().unwrap();
    ws.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
    ws.read_until("PONG");
    reload(&srv, &conf_with(port, "", "max_connections: 1"), 1);
    // As nats-server's maxConnExceeded: the -ERR, then the close.
    ws.read_until("-ERR 'maximum connections exceeded'");
    assert_eq!(
        ws.read_close(),
        (1008, "Maximum Connections Exceeded".to_owned())
    );
    old.send("PING\r\n");
    old.read_until("PONG");
}

/// `token_cookie` and `same_origin` change with a reload like every other websocket property.
#[test]
fn reload_cookies_and_same_origin() {
    let port = free_port();
    let auth = "authorization { token: \"one\" }";
    let srv = Server::with_config(&conf_with(port, auth, ""), &[]);
    let connect_with_cookie = || -> String {
        let mut ws = RawWs::connect(port, "Cookie: other=1; tok=one\r\n");
        assert_eq!(ws.status(), 101, "{}", ws.response);
        ws.read_until("INFO ");
        ws.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
        ws.read_until("\r\n")
    };
    // Without token_cookie the cookie is ignored.
    assert!(connect_with_cookie().contains("Authorization Violation"));
    reload(
        &srv,
        &conf_with(port, &format!("{auth}\n  token_cookie: \"tok\""), ""),
        1,
    );
    assert!(connect_with_cookie().contains("PONG"));

    // same_origin: an upgrade from another origin is refused after the reload, not before.
    let foreign = "Origin: http://elsewhere.example\r\n";
    assert_eq!(RawWs::connect(port, foreign).status(), 101);
    reload(
        &srv,
        &conf_with(port, &format!("{auth}\n  same_origin: true"), ""),
        2,
    );
    assert_eq!(RawWs::connect(port, foreign).status(), 403);
    let own = format!("Origin: http://127.0.0.1:{port}\r\n");
    assert_eq!(RawWs::connect(port, &own).status(), 101);
    // And the cookie is ignored again, since token_cookie is gone.
    assert!(connect_with_cookie().contains("Authorization Violation"));
}
