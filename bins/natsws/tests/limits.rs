//! Limits through the real binary: max_connections, slow consumers, descriptor exhaustion.
mod common;

use std::io::Read as _;
use std::process::{Command, Stdio};

use common::{Raw, RawWs, Server};

#[test]
fn max_connections_refuses_with_err_and_close_1008() {
    let conf = format!("{}max_connections: 1\n", common::BASIC_CONF);
    let srv = Server::with_config(&conf, &[]);
    let mut first = Raw::connect(srv.nats_port());
    first.line();
    first.send("CONNECT {\"verbose\":false}\r\nPING\r\n");
    first.read_until("PONG");
    let mut ws = RawWs::connect(srv.ws_port(), "");
    // INFO and the -ERR are one flush, so they may share a frame.
    let text = ws.read_until("-ERR 'maximum connections exceeded'\r\n");
    assert!(text.starts_with("INFO "), "{text}");
    assert_eq!(
        ws.read_close(),
        (1008, "Maximum Connections Exceeded".to_owned())
    );
}

#[test]
fn slow_consumer_is_closed_and_counted() {
    let conf = format!(
        "{}max_pending: 200KB\nmax_payload: 100KB\nwrite_deadline: \"500ms\"\n",
        common::BASIC_CONF
    );
    let srv = Server::with_config(&conf, &[]);
    let mut slow = Raw::connect(srv.nats_port());
    slow.line();
    slow.send("CONNECT {\"verbose\":false}\r\nSUB flood 1\r\nPING\r\n");
    slow.read_until("PONG");
    let mut publ = Raw::connect(srv.nats_port());
    publ.line();
    publ.send("CONNECT {\"verbose\":false}\r\n");
    let payload = "z".repeat(64 * 1024);
    for _ in 0..200 {
        publ.send(&format!("PUB flood {}\r\n{payload}\r\n", payload.len()));
    }
    publ.send("PING\r\n");
    publ.read_until("PONG");
    let deadline = std::time::Instant::now() + common::WAIT;
    loop {
        let (_, _, body) = srv.http_get("/varz");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["slow_consumers"] == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no slow consumer: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The publisher is not affected.
    publ.send("PING\r\n");
    publ.read_until("PONG");
}

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
