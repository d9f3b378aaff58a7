//! NATS over WebSocket through the real binary: async-nats, tungstenite and raw frames.
mod common;

use std::io::Read as _;

use common::{Raw, RawWs, Server, run_async};
use futures_util::StreamExt as _;

#[test]
fn info_first_in_a_binary_frame_then_byte_stream() {
    let srv = Server::basic();
    let mut ws = RawWs::connect(srv.ws_port(), "");
    assert_eq!(ws.status(), 101, "{}", ws.response);
    let info = ws.frame().unwrap();
    assert_eq!(info.opcode, 2);
    assert!(info.fin && !info.rsv1);
    let text = String::from_utf8(info.payload).unwrap();
    assert!(
        text.starts_with("INFO {") && text.ends_with("} \r\n"),
        "{text}"
    );
    // Frame boundaries carry no meaning: split one op over two frames.
    ws.send(b"CONNECT {\"verbose\":false}\r\nSUB fo");
    ws.send(b"o 1\r\nPING\r\n");
    ws.read_until("PONG\r\n");
    let mut tcp = Raw::connect(srv.nats_port());
    tcp.line();
    tcp.send("CONNECT {}\r\nPUB foo 9\r\nfrom nats\r\n");
    ws.read_until("MSG foo 1 9\r\nfrom nats\r\n");
}

#[test]
fn compression_negotiated_info_is_compressed() {
    let srv = Server::basic();
    let mut ws = RawWs::connect(
        srv.ws_port(),
        "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_no_context_takeover\r\n",
    );
    assert_eq!(ws.status(), 101);
    assert!(
        ws.response
            .to_ascii_lowercase()
            .contains("permessage-deflate"),
        "{}",
        ws.response
    );
    let info = ws.frame().unwrap();
    assert!(info.rsv1, "INFO is compressed");
    // A small reply (PONG) goes uncompressed.
    ws.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
    let pong = ws.frame().unwrap();
    assert!(!pong.rsv1);
    assert_eq!(pong.payload, b"PONG\r\n");
}

#[test]
fn browser_frames_are_at_most_4096_bytes() {
    let srv = Server::basic();
    let mut ws = RawWs::connect(
        srv.ws_port(),
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n",
    );
    ws.frame().unwrap();
    ws.send(b"CONNECT {\"verbose\":false}\r\nSUB big 1\r\nPING\r\n");
    ws.read_until("PONG\r\n");
    let mut tcp = Raw::connect(srv.nats_port());
    tcp.line();
    let payload = "x".repeat(20000);
    tcp.send(&format!("CONNECT {{}}\r\nPUB big 20000\r\n{payload}\r\n"));
    let mut total = Vec::new();
    while total.len() < 20000 + 19 {
        let f = ws.frame().unwrap();
        assert!(f.payload.len() <= 4096, "frame of {}", f.payload.len());
        assert!(f.fin);
        total.extend_from_slice(&f.payload);
    }
    assert!(total.starts_with(b"MSG big 1 20000\r\n"));
}

#[test]
fn protocol_violation_sends_err_then_close_1002() {
    let srv = Server::basic();
    let mut ws = RawWs::connect(srv.ws_port(), "");
    ws.frame().unwrap();
    ws.send(b"BOGUS\r\n");
    ws.read_until("-ERR 'Unknown Protocol Operation'\r\n");
    assert_eq!(ws.read_close(), (1002, "Protocol Violation".to_owned()));
}

#[test]
fn ping_frame_gets_pong_and_text_frames_are_data() {
    let srv = Server::basic();
    let mut ws = RawWs::connect(srv.ws_port(), "");
    ws.frame().unwrap();
    ws.send_frame(0x9, b"hb");
    let pong = ws.frame().unwrap();
    assert_eq!((pong.opcode, pong.payload.as_slice()), (0xA, &b"hb"[..]));
    ws.send_frame(0x1, b"PING\r\n");
    let f = ws.frame().unwrap();
    assert_eq!((f.opcode, f.payload.as_slice()), (2, &b"PONG\r\n"[..]));
}

#[test]
fn shutdown_sends_close_1001() {
    let mut srv = Server::basic();
    let mut ws = RawWs::connect(srv.ws_port(), "");
    ws.frame().unwrap();
    ws.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
    ws.read_until("PONG");
    srv.signal("INT");
    assert_eq!(ws.read_close(), (1001, "Server Shutdown".to_owned()));
    assert_eq!(srv.wait_exit(), 0);
}

#[test]
fn forwarded_for_in_log_and_connz_type() {
    let srv = Server::with_config(common::BASIC_CONF, &["-D"]);
    let mut ws = RawWs::connect(srv.ws_port(), "X-Forwarded-For: 10.1.2.3\r\n");
    ws.frame().unwrap();
    ws.send(b"CONNECT {\"verbose\":false,\"name\":\"wsprobe\"}\r\nPING\r\n");
    ws.read_until("PONG");
    srv.wait_log("10.1.2.3/127.0.0.1:");
    let (status, _, body) = srv.http_get("/connz");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let c = &v["connections"][0];
    assert_eq!(c["type"], "websocket");
    assert_eq!(c["kind"], "Client");
    assert_eq!(c["ip"], "127.0.0.1");
    assert_eq!(c["name"], "wsprobe");
}

#[test]
fn rejected_upgrade_gets_http_error_and_log_line() {
    let srv = Server::basic();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", srv.ws_port())).unwrap();
    s.set_read_timeout(Some(common::WAIT)).unwrap();
    use std::io::Write as _;
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let mut chunk = [0u8; 1024];
    // HTTP/1.1 keeps the connection open after the refusal: read up to the body.
    while !raw.ends_with(b"Bad Request\n") {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "EOF: {}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&chunk[..n]);
    }
    let resp = String::from_utf8_lossy(&raw).into_owned();
    assert!(resp.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{resp}");
    srv.wait_log("invalid value for header 'Connection'");
}

#[test]
fn tungstenite_client_round_trip() {
    let srv = Server::basic();
    let url = format!("ws://127.0.0.1:{}", srv.ws_port());
    let stream = std::net::TcpStream::connect(("127.0.0.1", srv.ws_port())).unwrap();
    stream.set_read_timeout(Some(common::WAIT)).unwrap();
    let (mut ws, resp) = tungstenite::client::client(url.as_str(), stream).unwrap();
    assert_eq!(resp.status().as_u16(), 101);
    let info = ws.read().unwrap();
    assert!(info.is_binary());
    ws.send(tungstenite::Message::binary(
        &b"CONNECT {\"verbose\":false}\r\nSUB t 1\r\nPUB t 2\r\nok\r\n"[..],
    ))
    .unwrap();
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("MSG t 1 2\r\nok\r\n") {
        got.extend_from_slice(&ws.read().unwrap().into_data());
    }
}

#[test]
fn async_nats_over_websocket_and_tcp() {
    let srv = Server::basic();
    let (ws_port, tcp_port) = (srv.ws_port(), srv.nats_port());
    run_async(async move {
        let ws = async_nats::connect(format!("ws://127.0.0.1:{ws_port}"))
            .await
            .unwrap();
        let tcp = async_nats::connect(format!("nats://127.0.0.1:{tcp_port}"))
            .await
            .unwrap();
        let mut ws_sub = ws.subscribe("x.>").await.unwrap();
        let mut tcp_sub = tcp.subscribe("y").await.unwrap();
        ws.flush().await.unwrap();
        tcp.flush().await.unwrap();
        // Wait until the subscription is live end to end (a flush right after connect may
        // be answered by the connect-time PONG).
        loop {
            tcp.publish("x.probe", "p".into()).await.unwrap();
            tcp.flush().await.unwrap();
            let got =
                tokio::time::timeout(std::time::Duration::from_millis(200), ws_sub.next()).await;
            if matches!(got, Ok(Some(_))) {
                break;
            }
        }
        loop {
            ws.publish("y", "probe".into()).await.unwrap();
            ws.flush().await.unwrap();
            let got =
                tokio::time::timeout(std::time::Duration::from_millis(200), tcp_sub.next()).await;
            if matches!(got, Ok(Some(_))) {
                break;
            }
        }
        tcp.publish("x.1", "to ws".into()).await.unwrap();
        ws.publish("y", "to tcp".into()).await.unwrap();
        let big = bytes::Bytes::from(vec![7u8; 200_000]);
        tcp.publish("x.big", big.clone()).await.unwrap();
        tcp.flush().await.unwrap();
        ws.flush().await.unwrap();
        let mut ws_msgs = Vec::new();
        while ws_msgs.len() < 2 {
            let m = ws_sub.next().await.unwrap();
            if m.subject.as_str() != "x.probe" {
                ws_msgs.push(m.payload);
            }
        }
        assert_eq!(&ws_msgs[0][..], b"to ws");
        assert_eq!(ws_msgs[1], big);
        loop {
            let m = tcp_sub.next().await.unwrap();
            if &m.payload[..] != b"probe" {
                assert_eq!(&m.payload[..], b"to tcp");
                break;
            }
        }
    });
}

#[test]
fn websocket_on_the_monitoring_port() {
    let port = common::free_port();
    let conf = format!(
        "listen: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:{port}\"\nwebsocket {{ listen: \"127.0.0.1:{port}\", no_tls: true }}\n"
    );
    let srv = Server::with_config(&conf, &[]);
    assert_eq!(srv.ws_port(), srv.http_port());
    let mut ws = RawWs::connect(srv.http_port(), "");
    assert_eq!(ws.status(), 101);
    assert!(ws.read_until("INFO ").contains("INFO"));
    let (status, _, body) = srv.http_get("/healthz");
    assert_eq!((status, body.as_str()), (200, "{\"status\":\"ok\"}"));
}

#[test]
fn handshake_timeout_closes_idle_connection() {
    let conf = "listen: \"127.0.0.1:-1\"\nwebsocket { listen: \"127.0.0.1:-1\", no_tls: true, handshake_timeout: \"300ms\" }\n";
    let srv = Server::with_config(conf, &[]);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", srv.ws_port())).unwrap();
    s.set_read_timeout(Some(common::WAIT)).unwrap();
    let start = std::time::Instant::now();
    let mut buf = Vec::new();
    let n = s.read_to_end(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed silently");
    assert!(start.elapsed() >= std::time::Duration::from_millis(250));
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn keep_alive_after_a_refused_upgrade() {
    let srv = Server::basic();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", srv.ws_port())).unwrap();
    s.set_read_timeout(Some(common::WAIT)).unwrap();
    use std::io::Write as _;
    // A refused request (no Connection: Upgrade) pipelined with a good one.
    s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("INFO ") {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "EOF: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    let bad = text.find("HTTP/1.1 400 Bad Request").expect("400 first");
    let ok = text
        .find("HTTP/1.1 101 Switching Protocols")
        .expect("then 101");
    assert!(bad < ok, "{text}");
}

#[test]
fn trace_names_websocket_clients_by_wid_and_forwarded_ip() {
    let srv = Server::with_config(common::BASIC_CONF, &["-V"]);
    let mut ws = RawWs::connect(srv.ws_port(), "X-Forwarded-For: 203.0.113.9\r\n");
    assert_eq!(ws.status(), 101);
    ws.frame().unwrap();
    ws.send(b"CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\nPING\r\n");
    ws.read_until("PONG\r\n");
    let log = srv.wait_log("->> [PONG]");
    for end in [
        " - wid:1 - <<- [SUB foo 1]",
        " - wid:1 - <<- MSG_PAYLOAD: [\"hi\"]",
        " - wid:1 - ->> [MSG foo 1 2]",
        " - wid:1 - ->> [PONG]",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains("[TRC] 203.0.113.9/127.0.0.1:") && l.ends_with(end)),
            "no trace line ending {end:?} in:\n{log}"
        );
    }
}

/// Large published messages whose NATS operations straddle frame and read boundaries in every
/// way (the payloads are moved, not copied, into the parser's input) arrive intact and in order.
#[test]
fn large_publishes_split_across_frames_and_reads() {
    use std::io::Write as _;
    let srv = Server::basic();
    let mut sub = Raw::connect(srv.nats_port());
    sub.line();
    sub.send("CONNECT {\"verbose\":false}\r\nSUB big 1\r\nPING\r\n");
    sub.read_until("PONG\r\n");
    let mut ws = RawWs::connect(srv.ws_port(), "");
    ws.frame().unwrap();
    ws.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
    ws.read_until("PONG\r\n");

    let sizes = [20_000usize, 4_096, 70_000, 5, 16_384, 9_000];
    let mut stream = Vec::new();
    let mut payloads = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let payload: Vec<u8> = (0..*size)
            .map(|j| b'a' + ((i * 7 + j) % 26) as u8)
            .collect();
        stream.extend_from_slice(format!("PUB big {size}\r\n").as_bytes());
        stream.extend_from_slice(&payload);
        stream.extend_from_slice(b"\r\n");
        payloads.push(payload);
    }
    // Frames of uneven sizes, from a few bytes to more than one operation.
    let mut wire = Vec::new();
    let cuts = [3usize, 6_000, 15_000, 40_000, 4_500, 77, 30_000, 9_999];
    let (mut at, mut k) = (0, 0);
    while at < stream.len() {
        let n = cuts[k % cuts.len()].min(stream.len() - at);
        wire.extend(common::masked_frame(2, &stream[at..at + n]));
        at += n;
        k += 1;
    }
    // Written in pieces that split frame headers and payloads, with pauses so that the server
    // reads them separately.
    let pieces = [1usize, 5_000, 2, 33_333, 12_000, 7];
    let (mut at, mut k) = (0, 0);
    while at < wire.len() {
        let n = pieces[k % pieces.len()].min(wire.len() - at);
        ws.stream.write_all(&wire[at..at + n]).unwrap();
        ws.stream.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        at += n;
        k += 1;
    }
    for payload in &payloads {
        assert_eq!(sub.line(), format!("MSG big 1 {}\r\n", payload.len()));
        let mut body = vec![0u8; payload.len() + 2];
        std::io::Read::read_exact(&mut sub.reader, &mut body).unwrap();
        assert_eq!(&body[..payload.len()], &payload[..]);
        assert_eq!(&body[payload.len()..], b"\r\n");
    }
}
