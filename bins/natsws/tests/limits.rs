//! Limits through the real binary: max_connections, slow consumers, fast producers,
//! descriptor exhaustion.
//! Where the behaviour shows on the wire or in the log, the same case runs against
//! nats-server too (`on_both!`).
mod common;

use std::io::Read as _;
use std::process::{Command, Stdio};

use common::{Conn, Raw, RawWs, Target, Transport, on_both, on_both_transports};

/// A connection over max_connections gets nats-server's `-ERR` (after INFO), over WebSocket
/// also the close 1008, and each refusal is logged as nats-server logs it.
fn max_connections_refused_and_logged(target: Target) {
    let conf = format!("{}max_connections: 1\n", common::BASIC_CONF);
    let Some(srv) = target.with_config(&conf, &[]) else {
        return;
    };
    let _first = Raw::connected(srv.nats_port(), "");
    let mut second = Raw::connect(srv.nats_port());
    assert!(second.line().starts_with("INFO "));
    assert_eq!(second.line(), "-ERR 'maximum connections exceeded'\r\n");
    let log = srv.wait_log("maximum connections exceeded");
    let line = log
        .lines()
        .find(|l| l.contains("maximum connections exceeded"))
        .unwrap();
    let cid = line
        .split_once("[ERR] 127.0.0.1:")
        .and_then(|(_, rest)| rest.split_once(" - cid:"))
        .and_then(|(port, rest)| Some((port.parse::<u16>().ok()?, rest)))
        .and_then(|(_, rest)| rest.strip_suffix(" - maximum connections exceeded"));
    assert!(cid.is_some_and(|n| n.parse::<u64>().is_ok()), "{line}");
    let mut ws = RawWs::connect(srv.ws_port(), "");
    // INFO and the -ERR are one flush, so they may share a frame.
    let text = ws.read_until("-ERR 'maximum connections exceeded'\r\n");
    assert!(text.starts_with("INFO "), "{text}");
    assert_eq!(
        ws.read_close(),
        (1008, "Maximum Connections Exceeded".to_owned())
    );
}
on_both!(max_connections_refused_and_logged);

/// A subscriber that does not keep up is closed as a slow consumer, counted in /varz and
/// logged with nats-server's reason text; the publisher is not affected.
fn slow_consumer_is_closed_counted_and_logged(target: Target) {
    let conf = format!(
        "{}max_pending: 200KB\nmax_payload: 100KB\nwrite_deadline: \"500ms\"\n",
        common::BASIC_CONF
    );
    let Some(srv) = target.with_config(&conf, &[]) else {
        return;
    };
    let _slow = Raw::connected(srv.nats_port(), "SUB flood 1\r\n");
    let mut publ = Raw::connected(srv.nats_port(), "");
    let payload = "z".repeat(64 * 1024);
    for _ in 0..200 {
        publ.send(&format!("PUB flood {}\r\n{payload}\r\n", payload.len()));
    }
    publ.send("PING\r\n");
    publ.read_until("PONG");
    let log = srv.wait_log("Slow Consumer Detected");
    let line = log
        .lines()
        .find(|l| l.contains("Slow Consumer Detected"))
        .unwrap();
    let (_, reason) = line.split_once("Slow Consumer Detected").unwrap();
    let max_pending = reason == ": MaxPending of 204800 Exceeded";
    let write_deadline = reason
        .strip_prefix(": WriteDeadline of 500ms exceeded with ")
        .and_then(|rest| rest.strip_suffix(" total bytes."))
        .and_then(|rest| rest.split_once(" chunks of "))
        .is_some_and(|(chunks, total)| {
            chunks.parse::<u64>().is_ok() && total.parse::<u64>().is_ok()
        });
    assert!(
        line.contains("[INF] 127.0.0.1:") && (max_pending || write_deadline),
        "{line}"
    );
    srv.wait_varz(|varz| varz["slow_consumers"] == 1);
    publ.send("PING\r\n");
    publ.read_until("PONG");
}
on_both!(slow_consumer_is_closed_counted_and_logged);

/// A publisher much faster than its subscriber is paused while the subscriber owes more
/// than half its `max_pending` (nats-server's fast-producer stall), so a subscriber that
/// keeps reading, however slowly, gets every message and is never cut as a slow consumer.
/// The flood is sixty times `max_pending`, far more than the sockets' kernel buffers hold:
/// without the stall the subscriber's queue passes `max_pending` within milliseconds.
fn fast_producer_waits_for_a_slow_subscriber(target: Target, transport: Transport) {
    const MESSAGES: usize = 16_000;
    const PAYLOAD: usize = 1024;
    let conf = format!(
        "{}max_pending: 256KB\nmax_payload: 64KB\nwrite_deadline: \"5s\"\n",
        common::BASIC_CONF
    );
    let Some(srv) = target.with_config(&conf, &[]) else {
        return;
    };
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(32 * 1024).unwrap();
    let mut sub = Raw::connect_from(socket, srv.nats_port());
    sub.send("CONNECT {\"verbose\":false}\r\nSUB flood 1\r\nPING\r\n");
    sub.read_until("PONG\r\n");

    let (mut publ, _) = Conn::dial(&srv, transport, "");
    publ.send("CONNECT {\"verbose\":false}\r\n");
    publ.sync();
    let producer = std::thread::spawn(move || {
        let one = format!("PUB flood {PAYLOAD}\r\n{}\r\n", "p".repeat(PAYLOAD));
        let batch = one.repeat(100);
        for _ in 0..MESSAGES / 100 {
            publ.send(&batch);
        }
        let after = publ.sync();
        assert!(!after.contains("-ERR"), "{after}");
    });

    let per_message = format!("MSG flood 1 {PAYLOAD}\r\n").len() + PAYLOAD + 2;
    let want = MESSAGES * per_message;
    let mut got = 0usize;
    let mut buf = vec![0u8; 16 * 1024];
    let mut tail = Vec::new();
    while got < want {
        let n = sub
            .reader
            .read(&mut buf)
            .expect("the subscriber keeps its connection");
        assert!(
            n > 0,
            "subscriber closed after {got} of {want} bytes: {:?}",
            { String::from_utf8_lossy(&tail) }
        );
        got += n;
        tail = buf
            .get(n.saturating_sub(200)..n)
            .unwrap_or_default()
            .to_vec();
        // About 10 MB/s at most: slower than any publisher on loopback.
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(got, want, "exactly the flood, nothing else");
    producer.join().expect("the publisher got its PONG");
    sub.send("PING\r\n");
    sub.read_until("PONG\r\n");
    let varz = srv.wait_varz(|v| v["in_msgs"].as_u64() >= Some(MESSAGES as u64));
    assert_eq!(varz["slow_consumers"], 0, "{varz}");
    assert!(!srv.log_text().contains("Slow Consumer"));
}
on_both_transports!(fast_producer_waits_for_a_slow_subscriber);

#[test]
fn descriptor_exhaustion_backs_off_and_recovers() {
    let dir = common::temp_dir("emfile");
    let conf = common::write_file(&dir, "server.conf", common::BASIC_CONF);
    let log = dir.join("server.log");
    let script = format!(
        "ulimit -n 40 && exec {} -c {conf} --ports_file_dir {} -l {}",
        common::bin(),
        dir.display(),
        log.display()
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ports_path = dir.join(format!("natsws_{}.ports", child.id()));
    let deadline = std::time::Instant::now() + common::WAIT;
    let ports: serde_json::Value = loop {
        if let Ok(t) = std::fs::read_to_string(&ports_path)
            && let Ok(v) = serde_json::from_str(&t)
        {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "no ports file");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let port: u16 = ports["nats"][0]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut held = Vec::new();
    for _ in 0..60 {
        if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            held.push(s);
        }
    }
    let deadline = std::time::Instant::now() + common::WAIT;
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("file descriptors exhausted")
    {
        assert!(std::time::Instant::now() < deadline, "no EMFILE log line");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    held.clear();
    // After descriptors free up the server accepts again.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut c = Raw::connect(port);
    assert!(c.line().starts_with("INFO "));
    let _ = child.kill();
    let _ = child.wait();
    let mut rest = String::new();
    let _ = c.reader.read_to_string(&mut rest);
}
