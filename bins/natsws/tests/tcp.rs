//! NATS over plain TCP through the real binary.
mod common;

use common::{Raw, Server};

#[test]
fn info_then_pub_sub() {
    let srv = Server::basic();
    let mut sub = Raw::connect(srv.nats_port());
    let info = sub.line();
    assert!(info.starts_with("INFO {"), "{info}");
    assert!(info.ends_with("} \r\n"), "{info:?}");
    let json: serde_json::Value =
        serde_json::from_str(info.trim_start_matches("INFO ").trim()).unwrap();
    assert_eq!(json["port"], srv.nats_port());
    assert_eq!(json["max_payload"], 1_048_576);
    sub.send("CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nPING\r\n");
    assert_eq!(sub.line(), "PONG\r\n");

    let mut publ = Raw::connect(srv.nats_port());
    publ.line();
    publ.send("CONNECT {\"verbose\":false}\r\nPUB foo 5\r\nhello\r\nPING\r\n");
    assert_eq!(publ.line(), "PONG\r\n");
    assert_eq!(sub.line(), "MSG foo 1 5\r\n");
    assert_eq!(sub.line(), "hello\r\n");
}

#[test]
fn protocol_error_closes_with_err() {
    let srv = Server::basic();
    let mut c = Raw::connect(srv.nats_port());
    c.line();
    c.send("BOGUS\r\n");
    assert_eq!(c.line(), "-ERR 'Unknown Protocol Operation'\r\n");
    assert_eq!(c.read_to_eof(), "");
}

#[test]
fn large_payload_is_delivered_intact() {
    let srv = Server::basic();
    let mut sub = Raw::connect(srv.nats_port());
    sub.line();
    sub.send("CONNECT {}\r\nSUB big 7\r\nPING\r\n");
    assert_eq!(sub.line(), "+OK\r\n");
    assert_eq!(sub.line(), "+OK\r\n");
    assert_eq!(sub.line(), "PONG\r\n");
    let payload: String = (0..500_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let mut publ = Raw::connect(srv.nats_port());
    publ.line();
    publ.send("CONNECT {\"verbose\":false}\r\n");
    publ.send(&format!("PUB big {}\r\n{payload}\r\n", payload.len()));
    assert_eq!(sub.line(), format!("MSG big 7 {}\r\n", payload.len()));
    let body = sub.line();
    assert_eq!(body.len(), payload.len() + 2);
    assert_eq!(&body[..payload.len()], payload);
}

#[test]
fn async_nats_client_round_trip() {
    let srv = Server::basic();
    let port = srv.nats_port();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let fut = async {
            let client = async_nats::connect(format!("nats://127.0.0.1:{port}"))
                .await
                .unwrap();
            let mut sub = client.subscribe("greet.*").await.unwrap();
            client.flush().await.unwrap();
            client.publish("greet.joe", "hi".into()).await.unwrap();
            client.flush().await.unwrap();
            use futures_util::StreamExt as _;
            let msg = sub.next().await.unwrap();
            assert_eq!(msg.subject.as_str(), "greet.joe");
            assert_eq!(&msg.payload[..], b"hi");
        };
        tokio::time::timeout(common::WAIT, fut)
            .await
            .expect("timed out");
    });
}

#[test]
fn trace_logs_the_protocol_as_nats_server_does() {
    let srv = Server::with_config(common::BASIC_CONF, &["-V", "--max_traced_msg_len", "4"]);
    let mut c = Raw::connect(srv.nats_port());
    c.line();
    c.send(concat!(
        "CONNECT {\"verbose\":false,\"pass\":\"hunter2\",",
        "\"lang\":\"rust\",\"version\":\"1.2\",\"name\":\"svc\"}\r\n",
        "SUB foo 1\r\nPUB foo 11\r\nhello there\r\nPING\r\n"
    ));
    c.read_until("PONG\r\n");
    let log = srv.wait_log("->> [PONG]");
    let prefix = " - cid:1 - \"v1.2:rust:svc\" - ";
    for line in [
        " - cid:1 - <<- [CONNECT {\"verbose\":false,\"pass\":\"[REDACTED]\",\"lang\":\"rust\",\"version\":\"1.2\",\"name\":\"svc\"}]".to_owned(),
        format!("{prefix}<<- [SUB foo 1]"),
        format!("{prefix}<<- [PUB foo 11]"),
        format!("{prefix}<<- MSG_PAYLOAD: [\"hell...\"]"),
        format!("{prefix}->> [MSG foo 1 11]"),
        format!("{prefix}<<- [PING]"),
        format!("{prefix}->> [PONG]"),
    ] {
        assert!(
            log.lines().any(|l| l.contains("[TRC] 127.0.0.1:") && l.ends_with(&line)),
            "no trace line ending {line:?} in:\n{log}"
        );
    }
    assert!(!log.contains("hunter2"), "password in the log:\n{log}");
    // -V alone traces without debug lines, as nats-server.
    assert!(!log.contains("[DBG]"), "{log}");
}

#[test]
fn no_trace_lines_without_v() {
    let srv = Server::basic();
    let mut c = Raw::connect(srv.nats_port());
    c.line();
    c.send("CONNECT {\"verbose\":false}\r\nPING\r\n");
    c.read_until("PONG\r\n");
    assert!(!srv.log_text().contains("<<- ["), "{}", srv.log_text());
}

/// A client of the user with a plain password connects and gets its PONG.
fn plain_password_client_is_served(port: u16) {
    let mut fast = Raw::connect(port);
    fast.line();
    fast.send("CONNECT {\"verbose\":false,\"user\":\"fast\",\"pass\":\"plain\"}\r\nPING\r\n");
    assert_eq!(fast.line(), "PONG\r\n");
}

/// What the server has sent `client` so far and not yet read, without waiting for more.
fn pending_bytes(client: &mut Raw) -> String {
    client
        .stream
        .set_read_timeout(Some(std::time::Duration::from_millis(1)))
        .unwrap();
    let mut probe = [0u8; 256];
    let n = std::io::Read::read(&mut client.stream, &mut probe).unwrap_or(0);
    client.stream.set_read_timeout(Some(common::WAIT)).unwrap();
    String::from_utf8_lossy(&probe[..n]).into_owned()
}

/// A bcrypt check runs off the event loop: a client connecting with a plain password is served
/// while another client's (deliberately slow) bcrypt check is still running. As in
/// nats-server, a CONNECT that arrived in time is not cut off by the auth timeout (0.5 s here)
/// while its password is being checked.
#[test]
fn bcrypt_checks_do_not_stall_other_clients() {
    // Cost 14: about a second on a current core, far longer than one PING round trip.
    let hash = bcrypt::hash("slowpw", 14).unwrap();
    let conf = format!(
        "listen: \"127.0.0.1:-1\"\nauthorization {{\n  timeout: 0.5\n  users: [\n    {{user: slow, password: \"{hash}\"}}\n    {{user: fast, password: plain}}\n  ]\n}}\n"
    );
    let srv = Server::with_config(&conf, &[]);
    let mut slow = Raw::connect(srv.nats_port());
    slow.line();
    slow.send("CONNECT {\"verbose\":false,\"user\":\"slow\",\"pass\":\"slowpw\"}\r\nPING\r\n");
    // Give the loop time to read the slow CONNECT and hand its check to a worker.
    std::thread::sleep(std::time::Duration::from_millis(50));
    plain_password_client_is_served(srv.nats_port());
    // The slow client has had no answer yet...
    let early = pending_bytes(&mut slow);
    assert!(
        early.is_empty(),
        "the bcrypt client was answered first: {early:?}"
    );
    // ... and is served once its check completes, with what it sent after CONNECT.
    assert_eq!(slow.line(), "PONG\r\n");

    // A wrong password still gets the reference's answer.
    let mut bad = Raw::connect(srv.nats_port());
    bad.line();
    bad.send(
        "CONNECT {\"verbose\":false,\"user\":\"slow\",\"pass\":\"nope\",\"lang\":\"py\",\"version\":\"1.0\",\"name\":\"me\"}\r\nPING\r\n",
    );
    assert_eq!(bad.line(), "-ERR 'Authorization Violation'\r\n");
    assert_eq!(bad.read_to_eof(), "");
    // As nats-server: the client is named from its CONNECT in the failure line.
    srv.wait_log(" - cid:3 - \"v1.0:py:me\" - authentication error - User \"slow\"");
}

/// A reload that changes a bcrypt hash re-checks the connected clients off the event loop:
/// the reload completes and other clients are served at once, and a client whose password no
/// longer matches is refused when its check comes back.
#[test]
fn reload_with_a_new_bcrypt_hash_does_not_stall_the_loop() {
    let conf = |hash: &str| {
        format!(
            "listen: \"127.0.0.1:-1\"\nauthorization {{\n  users: [\n    {{user: slow, password: \"{hash}\"}}\n    {{user: fast, password: plain}}\n  ]\n}}\n"
        )
    };
    let srv = Server::with_config(&conf(&bcrypt::hash("slowpw", 10).unwrap()), &[]);
    let mut slow = Raw::connect(srv.nats_port());
    slow.line();
    slow.send("CONNECT {\"verbose\":false,\"user\":\"slow\",\"pass\":\"slowpw\"}\r\nPING\r\n");
    assert_eq!(slow.line(), "PONG\r\n");
    // The new hash is for another password, at a cost of about a second.
    srv.reload(&conf(&bcrypt::hash("newpw", 14).unwrap()), 1);
    plain_password_client_is_served(srv.nats_port());
    // The slow client is still connected while its check runs (it may have been sent its
    // first keep-alive PING, nothing else)...
    let early = pending_bytes(&mut slow);
    assert!(
        early.chars().all(|c| "PING\r\n".contains(c)),
        "the re-check ran on the event loop: {early:?}"
    );
    // ... and refused when it comes back.
    let rest = slow.read_until("-ERR 'Authorization Violation'\r\n");
    assert!(
        rest.trim_start_matches("PING\r\n").starts_with("-ERR"),
        "{rest:?}"
    );
    assert_eq!(slow.read_to_eof(), "");
}
