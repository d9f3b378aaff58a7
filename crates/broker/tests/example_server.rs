//! The `server` example (a NATS server on `std::net` and the broker) driven over real sockets,
//! as a reader would try it with `telnet`: INFO on connect, SUB/PUB delivery between two
//! clients, PING/PONG, a protocol error closing only its own client, and a client hanging up.
//!
//! With `NATSWS_PYTHON` set to a python3 that has `nats-py`, a real client library also
//! publishes and subscribes through it (skipped with a message otherwise, unless
//! `NATSWS_REQUIRE_INTEROP=1`).
#![allow(
    clippy::print_stderr,
    reason = "skips are reported to the person running the tests"
)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The example, built by `cargo test` next to this test binary.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let path = profile_dir
        .join("examples")
        .join(format!("server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "server example not built at {}",
        path.display()
    );
    path
}

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let mut child = Command::new(example_binary())
        .arg("0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("listening on 127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("bad banner {line:?}"));
    Server { child, port }
}

/// A raw client, as `telnet` would be.
struct Client {
    stream: TcpStream,
    received: Vec<u8>,
}

impl Client {
    fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Self {
            stream,
            received: Vec::new(),
        }
    }

    fn send(&mut self, data: &str) {
        self.stream.write_all(data.as_bytes()).unwrap();
    }

    /// Reads until the received text ends with `want`; returns it and starts afresh.
    fn expect(&mut self, want: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0_u8; 4096];
        while !self.received.ends_with(want.as_bytes()) {
            assert!(
                Instant::now() < deadline,
                "waited for {want:?}, got {:?}",
                String::from_utf8_lossy(&self.received)
            );
            match self.stream.read(&mut buf) {
                Ok(0) => panic!(
                    "closed before {want:?}; got {:?}",
                    String::from_utf8_lossy(&self.received)
                ),
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("{e}"),
            }
        }
        String::from_utf8(std::mem::take(&mut self.received)).unwrap()
    }

    /// Reads until the server closes the connection.
    fn expect_eof(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0_u8; 4096];
        loop {
            assert!(Instant::now() < deadline, "not closed");
            match self.stream.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return,
            }
        }
    }
}

#[test]
fn serves_nats_clients_over_tcp() {
    let server = start();
    let mut sub = Client::connect(server.port);
    let info = sub.expect("\r\n");
    assert!(info.starts_with("INFO {"), "{info}");
    assert!(
        info.contains(&format!("\"port\":{}", server.port)),
        "{info}"
    );
    sub.send("CONNECT {\"verbose\":false}\r\nSUB foo.* 1\r\nSUB foo.bar q 2\r\nPING\r\n");
    sub.expect("PONG\r\n");

    let mut publ = Client::connect(server.port);
    publ.expect("\r\n");
    // Verbose mode acknowledges each operation with +OK.
    publ.send("CONNECT {\"verbose\":true}\r\nPUB foo.bar 5\r\nhello\r\n");
    publ.expect("+OK\r\n+OK\r\n");
    let got = sub.expect("hello\r\n");
    let got = if got.matches("hello").count() == 1 {
        got + &sub.expect("hello\r\n")
    } else {
        got
    };
    assert!(got.contains("MSG foo.bar 1 5\r\nhello\r\n"), "{got}");
    assert!(got.contains("MSG foo.bar 2 5\r\nhello\r\n"), "{got}");
    // A payload split across writes is delivered once complete.
    publ.send("PUB foo.x 10\r\n01234");
    std::thread::sleep(Duration::from_millis(50));
    publ.send("56789\r\n");
    assert_eq!(
        sub.expect("0123456789\r\n"),
        "MSG foo.x 1 10\r\n0123456789\r\n"
    );

    // A protocol error closes only the client that made it, with the reference's error.
    let mut bad = Client::connect(server.port);
    bad.expect("\r\n");
    bad.send("BOGUS\r\n");
    bad.expect("-ERR 'Unknown Protocol Operation'\r\n");
    bad.expect_eof();

    // A client that hangs up is removed; the others keep working.
    drop(publ);
    let mut publ = Client::connect(server.port);
    publ.expect("\r\n");
    publ.send("CONNECT {\"verbose\":false}\r\nPUB foo.y 2\r\nok\r\nPING\r\n");
    publ.expect("PONG\r\n");
    assert_eq!(sub.expect("ok\r\n"), "MSG foo.y 1 2\r\nok\r\n");
}

const NATS_PY: &str = r#"
import asyncio, sys
import nats

async def main():
    nc = await nats.connect(f"nats://127.0.0.1:{sys.argv[1]}")
    sub = await nc.subscribe("greet.*")
    await nc.flush()
    resp = await nc.subscribe("svc")
    async def reply():
        msg = await resp.next_msg(timeout=5)
        await msg.respond(b"pong:" + msg.data)
    task = asyncio.create_task(reply())
    await nc.publish("greet.py", b"hi")
    msg = await sub.next_msg(timeout=5)
    assert (msg.subject, msg.data) == ("greet.py", b"hi"), msg
    answer = await nc.request("svc", b"ping", timeout=5)
    assert answer.data == b"pong:ping", answer
    await task
    await nc.drain()
    print("ok")

asyncio.run(main())
"#;

#[test]
fn nats_py_publishes_subscribes_and_requests() {
    let required = std::env::var("NATSWS_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
    let Some(python) = std::env::var_os("NATSWS_PYTHON").filter(|p| !p.is_empty()) else {
        assert!(
            !required,
            "NATSWS_REQUIRE_INTEROP=1 but NATSWS_PYTHON is not set"
        );
        eprintln!("skipped: set NATSWS_PYTHON to a python3 with nats-py to run a real client");
        return;
    };
    let server = start();
    let out = Command::new(python)
        .args(["-c", NATS_PY, &server.port.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stdout == b"ok\n",
        "stdout {:?}\nstderr {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
