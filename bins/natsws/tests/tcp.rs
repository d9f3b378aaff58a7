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
