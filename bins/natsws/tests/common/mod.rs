//! Starts the real `natsws` binary on random ports and talks to it.
#![allow(
    dead_code,
    unused_imports,
    unused_macros,
    reason = "each test file uses a different part of the harness"
)]

pub(crate) mod pki;
#[path = "../../../../crates/broker/tests/support/signer.rs"]
pub(crate) mod signer;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Every wait in the tests is bounded by this.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Random loopback ports for every listener.
pub(crate) const BASIC_CONF: &str = "listen: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:-1\"\nwebsocket { listen: \"127.0.0.1:-1\", no_tls: true, compression: true }\n";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh temporary directory under the target dir.
pub(crate) fn temp_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("natsws-test-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A running server; killed on drop.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) dir: PathBuf,
    pub(crate) log: PathBuf,
    pub(crate) ports: serde_json::Value,
}

/// The binary under test.
pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_natsws")
}

impl Server {
    /// Starts `natsws` with `args` plus a ports file dir and a log file, and waits for the ports.
    pub(crate) fn start(args: &[&str]) -> Self {
        let dir = temp_dir("srv");
        Self::start_in(dir, args)
    }

    /// A server with TCP, WebSocket (no TLS, compression allowed) and monitoring on random
    /// loopback ports.
    pub(crate) fn basic() -> Self {
        Self::with_config(BASIC_CONF, &[])
    }

    /// Starts with a config file written into a fresh directory.
    pub(crate) fn with_config(conf: &str, extra: &[&str]) -> Self {
        Self::with_config_of(bin(), conf, extra)
    }

    /// Starts `program` with a config file written into a fresh directory.
    pub(crate) fn with_config_of(program: &str, conf: &str, extra: &[&str]) -> Self {
        let dir = temp_dir("conf");
        let path = dir.join("server.conf");
        std::fs::write(&path, conf).expect("write conf");
        let path_s = path.to_string_lossy().into_owned();
        let mut args = vec!["-c", &path_s];
        args.extend_from_slice(extra);
        Self::start_program(program, dir.clone(), &args)
    }

    pub(crate) fn start_in(dir: PathBuf, args: &[&str]) -> Self {
        Self::start_program(bin(), dir, args)
    }

    /// Starts `program` (natsws or nats-server, which share these flags) in `dir` and waits for
    /// its ports file (`<program>_<pid>.ports`).
    pub(crate) fn start_program(program: &str, dir: PathBuf, args: &[&str]) -> Self {
        Self::start_program_env(program, dir, args, &[])
    }

    /// [`Server::start_program`] with extra environment variables.
    pub(crate) fn start_program_env(
        program: &str,
        dir: PathBuf,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let log = dir.join("server.log");
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .arg("--ports_file_dir")
            .arg(&dir)
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn server");
        let pid = child.id();
        let name = Path::new(program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ports_path = dir.join(format!("{name}_{pid}.ports"));
        let deadline = Instant::now() + WAIT;
        let mut server = Self {
            child,
            dir,
            log,
            ports: serde_json::Value::Null,
        };
        loop {
            if let Ok(text) = std::fs::read_to_string(&ports_path)
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
            {
                server.ports = v;
                break;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = server.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!(
                    "{program} exited early ({status}): {err}\nlog: {}",
                    server.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no ports file: {}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn port_of(&self, key: &str) -> Option<u16> {
        let url = self.ports.get(key)?.get(0)?.as_str()?;
        url.rsplit(':').next()?.parse().ok()
    }

    pub(crate) fn nats_port(&self) -> u16 {
        self.port_of("nats").expect("nats port")
    }

    pub(crate) fn ws_port(&self) -> u16 {
        self.port_of("websocket").expect("websocket port")
    }

    pub(crate) fn http_port(&self) -> u16 {
        self.port_of("monitoring").expect("monitoring port")
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub(crate) fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.log_text();
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "log never contained {needle:?}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Writes `conf` over the server's config file, sends SIGHUP and waits until the log
    /// shows `n` reload outcomes (successful or failed) in all.
    pub(crate) fn reload(&self, conf: &str, n: usize) {
        std::fs::write(self.dir.join("server.conf"), conf).unwrap();
        self.signal("HUP");
        let deadline = Instant::now() + WAIT;
        loop {
            let log = self.log_text();
            let done = log.matches("Reloaded server configuration").count()
                + log.matches("Failed to reload server configuration").count();
            if done >= n {
                return;
            }
            assert!(Instant::now() < deadline, "no reload result in log:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its exit code.
    pub(crate) fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// GET on the monitoring port: (status, content type, body).
    pub(crate) fn http_get(&self, path: &str) -> (u16, String, String) {
        http_get(self.http_port(), path)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.0-style GET (Connection: close): (status, content type, body).
pub(crate) fn http_get(port: u16, path: &str) -> (u16, String, String) {
    http_get_within(port, path, WAIT)
}

/// [`http_get`], waiting up to `wait` for each read.
pub(crate) fn http_get_within(port: u16, path: &str, wait: Duration) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect http");
    s.set_read_timeout(Some(wait)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read http");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("http head");
    let chunked = head
        .to_ascii_lowercase()
        .contains("\r\ntransfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let ctype = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, ctype, body)
}

/// The body of a `Transfer-Encoding: chunked` reply (Go's HTTP server sends large replies so).
fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("chunk size line");
        let size =
            usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).expect("chunk size");
        if size == 0 {
            return body;
        }
        body.push_str(&after[..size]);
        rest = after[size..].strip_prefix("\r\n").expect("chunk end");
    }
}

/// A raw NATS TCP client.
pub(crate) struct Raw {
    pub(crate) reader: BufReader<TcpStream>,
    pub(crate) stream: TcpStream,
}

impl Raw {
    pub(crate) fn connect(port: u16) -> Self {
        Self::over(TcpStream::connect(("127.0.0.1", port)).expect("connect nats"))
    }

    /// A client on a socket the caller set up (a source address, a receive window), connected
    /// to `port` on loopback; it has read INFO.
    pub(crate) fn connect_from(socket: socket2::Socket, port: u16) -> Self {
        let server = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        socket.connect(&server.into()).expect("connect nats");
        let mut client = Self::over(socket.into());
        assert!(client.line().starts_with("INFO "));
        client
    }

    fn over(stream: TcpStream) -> Self {
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Self { reader, stream }
    }

    /// A client that has read INFO, sent `CONNECT {"verbose":false}` followed by `then`, and
    /// had its PING answered.
    pub(crate) fn connected(port: u16, then: &str) -> Self {
        let mut client = Self::connect(port);
        assert!(client.line().starts_with("INFO "));
        client.send(&format!("CONNECT {{\"verbose\":false}}\r\n{then}PING\r\n"));
        client.read_until("PONG\r\n");
        client
    }

    pub(crate) fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read line");
        line
    }

    pub(crate) fn send(&mut self, data: &str) {
        self.stream.write_all(data.as_bytes()).expect("send");
    }

    /// Reads until `expect` has been seen; returns everything read.
    pub(crate) fn read_until(&mut self, expect: &str) -> String {
        let mut all = String::new();
        while !all.contains(expect) {
            let line = self.line();
            assert!(!line.is_empty(), "EOF before {expect:?}; got {all:?}");
            all.push_str(&line);
        }
        all
    }

    /// Reads to EOF (bounded by the read timeout).
    pub(crate) fn read_to_eof(&mut self) -> String {
        let mut rest = String::new();
        let _ = self.reader.read_to_string(&mut rest);
        rest
    }
}

/// Writes a file and returns its path as a string.
pub(crate) fn write_file(dir: &Path, name: &str, contents: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p.to_string_lossy().into_owned()
}

/// A raw WebSocket client over plain TCP: masked frames out, frames in.
pub(crate) struct RawWs {
    pub(crate) stream: TcpStream,
    pub(crate) response: String,
    buf: Vec<u8>,
}

/// One server frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) fin: bool,
    pub(crate) rsv1: bool,
    pub(crate) opcode: u8,
    pub(crate) payload: Vec<u8>,
}

impl RawWs {
    /// Sends an upgrade request with `extra` header lines and reads the response head.
    pub(crate) fn connect(port: u16, extra: &str) -> Self {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect ws");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        write!(
            stream,
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
        .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut chunk).expect("read upgrade response");
            assert!(
                n > 0,
                "EOF in upgrade response: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        };
        let response = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let rest = buf[head_end..].to_vec();
        Self {
            stream,
            response,
            buf: rest,
        }
    }

    /// A client whose upgrade (with `extra` header lines) was accepted.
    pub(crate) fn upgraded(port: u16, extra: &str) -> Self {
        let ws = Self::connect(port, extra);
        assert_eq!(ws.status(), 101, "{}", ws.response);
        ws
    }

    /// A client whose upgrade negotiated permessage-deflate.
    pub(crate) fn compressing(port: u16) -> Self {
        let ws = Self::upgraded(port, "Sec-WebSocket-Extensions: permessage-deflate\r\n");
        assert!(
            ws.response.contains("permessage-deflate"),
            "{}",
            ws.response
        );
        ws
    }

    pub(crate) fn status(&self) -> u16 {
        self.response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// Sends `data` in one masked binary frame.
    pub(crate) fn send(&mut self, data: &[u8]) {
        self.send_frame(0x2, data);
    }

    pub(crate) fn send_frame(&mut self, opcode: u8, data: &[u8]) {
        let frame = masked_frame(opcode, data);
        self.stream.write_all(&frame).expect("send frame");
    }
}

/// A final, masked client frame.
pub(crate) fn masked_frame(opcode: u8, data: &[u8]) -> Vec<u8> {
    let key = [0x12u8, 0x34, 0x56, 0x78];
    let mut frame = vec![0x80 | opcode];
    if data.len() < 126 {
        frame.push(0x80 | data.len() as u8);
    } else if data.len() < 65536 {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&(data.len() as u16).to_be_bytes());
    } else {
        frame.push(0x80 | 127);
        frame.extend_from_slice(&(data.len() as u64).to_be_bytes());
    }
    frame.extend_from_slice(&key);
    frame.extend(data.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

/// A final, masked, compressed (RSV1) binary frame carrying `data` deflated as one message.
pub(crate) fn compressed_frame(data: &[u8]) -> Vec<u8> {
    let mut compressed = bytes::BytesMut::new();
    ws_codec::Deflater::new()
        .deflate(&[data], &mut compressed)
        .unwrap();
    let mut frame = masked_frame(0x2, &compressed);
    frame[0] |= 0x40;
    frame
}

impl RawWs {
    fn fill(&mut self, want: usize) -> bool {
        let mut chunk = [0u8; 16384];
        while self.buf.len() < want {
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return false,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
        true
    }

    /// The next frame, or `None` at EOF.
    pub(crate) fn frame(&mut self) -> Option<Frame> {
        if !self.fill(2) {
            return None;
        }
        let b0 = self.buf[0];
        let b1 = self.buf[1];
        assert_eq!(b1 & 0x80, 0, "server frames are never masked");
        let (len, hdr) = match b1 & 0x7f {
            126 => {
                self.fill(4);
                (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
            }
            127 => {
                self.fill(10);
                let mut b = [0u8; 8];
                b.copy_from_slice(&self.buf[2..10]);
                (u64::from_be_bytes(b) as usize, 10)
            }
            n => (n as usize, 2),
        };
        if !self.fill(hdr + len) {
            return None;
        }
        let payload = self.buf[hdr..hdr + len].to_vec();
        self.buf.drain(..hdr + len);
        Some(Frame {
            fin: b0 & 0x80 != 0,
            rsv1: b0 & 0x40 != 0,
            opcode: b0 & 0x0f,
            payload,
        })
    }

    /// Reads data frames until their concatenated payload contains `expect`.
    pub(crate) fn read_until(&mut self, expect: &str) -> String {
        let mut all = String::new();
        while !all.contains(expect) {
            let f = self
                .frame()
                .unwrap_or_else(|| panic!("EOF before {expect:?}; got {all:?}"));
            assert!(f.opcode == 2 || f.opcode == 0, "unexpected frame {f:?}");
            all.push_str(&String::from_utf8_lossy(&f.payload));
        }
        all
    }

    /// Reads frames until a close frame; returns (code, reason).
    pub(crate) fn read_close(&mut self) -> (u16, String) {
        loop {
            let f = self.frame().expect("EOF before the close frame");
            if f.opcode == 8 {
                let code = u16::from_be_bytes([f.payload[0], f.payload[1]]);
                return (code, String::from_utf8_lossy(&f.payload[2..]).into_owned());
            }
        }
    }
}

/// Runs an async block on a fresh current-thread runtime, bounded by [`WAIT`].
pub(crate) fn run_async<T, F: Future<Output = T>>(fut: F) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move { tokio::time::timeout(WAIT, fut).await.expect("timed out") })
}

/// A port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The reference server, when installed (`tests/interop/setup` installs it; CI always has it).
pub(crate) fn reference_server() -> Option<&'static str> {
    [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
}

/// Runs `scenario(target: Target)` once against natsws and once against nats-server, as the
/// two tests `<scenario>::natsws` and `<scenario>::nats_server`, with the same assertions: the
/// reference proves the test right.
macro_rules! on_both {
    ($scenario:ident) => {
        mod $scenario {
            #[test]
            fn natsws() {
                super::$scenario(crate::common::Target::Natsws);
            }

            #[test]
            fn nats_server() {
                super::$scenario(crate::common::Target::Reference);
            }
        }
    };
}
pub(crate) use on_both;

/// Runs `scenario(target: Target, transport: Transport)` against both servers over both
/// transports, as the four tests `<scenario>::{natsws,nats_server}_{tcp,ws}`.
macro_rules! on_both_transports {
    ($scenario:ident) => {
        mod $scenario {
            use crate::common::{Target, Transport};

            #[test]
            fn natsws_tcp() {
                super::$scenario(Target::Natsws, Transport::Tcp);
            }

            #[test]
            fn natsws_ws() {
                super::$scenario(Target::Natsws, Transport::Ws);
            }

            #[test]
            fn nats_server_tcp() {
                super::$scenario(Target::Reference, Transport::Tcp);
            }

            #[test]
            fn nats_server_ws() {
                super::$scenario(Target::Reference, Transport::Ws);
            }
        }
    };
}
pub(crate) use on_both_transports;

/// How a client reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Tcp,
    Ws,
}

/// A raw NATS client over either transport.
pub(crate) enum Conn {
    Tcp(Raw),
    Ws(RawWs),
}

impl Conn {
    /// Opens a connection (a WebSocket upgrade with the extra `headers`) and returns it with
    /// the server's INFO line.
    pub(crate) fn dial(srv: &Server, transport: Transport, headers: &str) -> (Self, String) {
        match transport {
            Transport::Tcp => {
                let mut raw = Raw::connect(srv.nats_port());
                let info = raw.line();
                (Self::Tcp(raw), info)
            }
            Transport::Ws => {
                let mut ws = RawWs::connect(srv.ws_port(), headers);
                assert_eq!(ws.status(), 101, "{}", ws.response);
                let info = ws.read_until("\r\n");
                (Self::Ws(ws), info)
            }
        }
    }

    pub(crate) fn send(&mut self, data: &str) {
        match self {
            Self::Tcp(raw) => raw.send(data),
            Self::Ws(ws) => ws.send(data.as_bytes()),
        }
    }

    /// Reads until what arrived contains `a` or `b`, or the connection ends (a WebSocket
    /// close frame counts as the end).
    pub(crate) fn read_either(&mut self, a: &str, b: &str) -> String {
        let mut all = String::new();
        loop {
            let chunk = match self {
                Self::Tcp(raw) => raw.line(),
                Self::Ws(ws) => match ws.frame() {
                    Some(f) if f.opcode == 8 => String::new(),
                    Some(f) => String::from_utf8_lossy(&f.payload).into_owned(),
                    None => String::new(),
                },
            };
            if chunk.is_empty() {
                return all;
            }
            all.push_str(&chunk);
            if all.contains(a) || all.contains(b) {
                return all;
            }
        }
    }

    /// Everything the server sent before the PONG to a PING sent now: the messages delivered
    /// before it (and, for a publisher, the proof that its publishes were routed). The
    /// server's own keep-alive PINGs are left out; no payload here is a line reading PING.
    pub(crate) fn sync(&mut self) -> String {
        self.send("PING\r\n");
        let all = self.read_either("PONG\r\n", "\u{0}never");
        all.strip_suffix("PONG\r\n")
            .unwrap_or(&all)
            .split_inclusive("\r\n")
            .filter(|line| *line != "PING\r\n")
            .collect()
    }
}

/// Seconds since the Unix epoch by the wall clock.
pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// The issue time of the JWTs [`signer`] makes: a little in the past, as a real server
/// checks them against the wall clock.
pub(crate) fn iat() -> i64 {
    now_unix() - 10
}

/// Checks a bound that only natsws promises; on the reference, prints the figure instead.
pub(crate) fn check_natsws_bound(target: Target, what: &str, ok: bool, figure: &str) {
    match target {
        Target::Natsws => assert!(ok, "{what}: {figure}"),
        Target::Reference => eprintln!("nats-server {what}: {figure}"),
    }
}

/// The server a comparison test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// The binary under test.
    Natsws,
    /// nats-server, to prove that the test expects what the reference does.
    Reference,
}

impl Target {
    /// The program to start, or `None` (after saying so) when the reference is not installed.
    pub(crate) fn program(self) -> Option<&'static str> {
        match self {
            Self::Natsws => Some(bin()),
            Self::Reference => {
                let found = reference_server();
                if found.is_none() {
                    eprintln!("nats-server not installed: reference run skipped");
                }
                found
            }
        }
    }

    /// Starts this target with a config file written into a fresh directory.
    pub(crate) fn with_config(self, conf: &str, extra: &[&str]) -> Option<Server> {
        Some(Server::with_config_of(self.program()?, conf, extra))
    }
}

impl Server {
    /// Waits until the server's `/varz` satisfies `done`; returns it.
    pub(crate) fn wait_varz(&self, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let (_, _, body) = self.http_get("/varz");
            let varz: serde_json::Value = serde_json::from_str(&body).unwrap();
            if done(&varz) {
                return varz;
            }
            assert!(Instant::now() < deadline, "/varz never as expected: {body}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's resident set size, from `/proc/<pid>/status`.
    pub(crate) fn rss_bytes(&self) -> u64 {
        rss_bytes(self.pid())
    }

    /// How many file descriptors the server holds open, from `/proc/<pid>/fd`.
    pub(crate) fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(Iterator::count)
            .unwrap_or(0)
    }
}

/// The resident set size of process `pid` in bytes (0 once it is gone).
pub(crate) fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// Samples a process's RSS every few milliseconds on a thread until stopped; keeps the peak.
pub(crate) struct RssPeak {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    peak: std::sync::Arc<std::sync::atomic::AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl RssPeak {
    pub(crate) fn start(pid: u32) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (flag, highest) = (std::sync::Arc::clone(&stop), std::sync::Arc::clone(&peak));
        let thread = std::thread::spawn(move || {
            loop {
                highest.fetch_max(rss_bytes(pid), Ordering::Relaxed);
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Self { stop, peak, thread }
    }

    /// Waits until the peak has not grown for `quiet` (at most `cap`): the server may still
    /// be working through what the kernel buffered for it.
    pub(crate) fn settle(&self, quiet: Duration, cap: Duration) {
        let start = Instant::now();
        let mut last_change = start;
        let mut peak = self.peak.load(Ordering::Relaxed);
        while last_change.elapsed() < quiet && start.elapsed() < cap {
            std::thread::sleep(Duration::from_millis(50));
            let now_peak = self.peak.load(Ordering::Relaxed);
            if now_peak > peak {
                peak = now_peak;
                last_change = Instant::now();
            }
        }
    }

    /// Stops sampling and returns the highest RSS seen, in bytes.
    pub(crate) fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("rss sampler");
        self.peak.load(Ordering::Relaxed)
    }
}

/// How long a [`StallProbe`] waits for one PONG before it gives up.
pub(crate) const PROBE_GIVE_UP: Duration = Duration::from_secs(3);

/// A NATS client on its own thread that measures PING→PONG round trips until stopped, to show
/// whether the server keeps serving other clients.
pub(crate) struct StallProbe {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(Duration, usize)>,
}

impl StallProbe {
    /// Connects (and completes CONNECT) before returning, so the probe is ready.
    pub(crate) fn start(nats_port: u16) -> Self {
        let mut client = Raw::connect(nats_port);
        client.line();
        client.send("CONNECT {\"verbose\":false}\r\nPING\r\n");
        client.read_until("PONG\r\n");
        // A round trip this slow is far over any bound; waiting longer only slows the test.
        client.stream.set_read_timeout(Some(PROBE_GIVE_UP)).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut worst = Duration::ZERO;
            let mut n_round_trips = 0;
            while !flag.load(Ordering::Relaxed) {
                let start = Instant::now();
                let mut answered = client.stream.write_all(b"PING\r\n").is_ok();
                while answered {
                    let mut line = String::new();
                    answered = client.reader.read_line(&mut line).is_ok_and(|n| n > 0);
                    match line.as_str() {
                        "PONG\r\n" => break,
                        // The server's own keep-alive (nats-server pings new clients early).
                        "PING\r\n" => answered = client.stream.write_all(b"PONG\r\n").is_ok(),
                        _ => answered = false,
                    }
                }
                worst = worst.max(start.elapsed());
                if !answered {
                    break;
                }
                n_round_trips += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            (worst, n_round_trips)
        });
        Self { stop, thread }
    }

    /// Stops probing and returns the slowest round trip (at least [`PROBE_GIVE_UP`] if one
    /// was never answered) and the number of round trips made.
    pub(crate) fn stop(self) -> (Duration, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("stall probe")
    }
}
