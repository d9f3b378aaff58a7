//! One client connection: TCP, optionally TLS (rustls), optionally WebSocket (the repository's
//! `ws-handshake` client role and `ws-codec` with masking and permessage-deflate), carrying the
//! NATS protocol of [`crate::proto`].

use std::cell::RefCell;
use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd as _, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rustls::ClientConnection;
use rustls::pki_types::ServerName;
use ws_codec::{
    Decoder, DecoderConfig, Deflater, Encoder, EncoderConfig, Event, Inflater, MaskKeySource,
};
use ws_handshake::{ClientHandshake, ClientRequest};

use crate::payload::XorShift;
use crate::proto::{self, Op, Parser};

/// How a connection reaches the server.
#[derive(Clone)]
pub(crate) enum Transport {
    /// Plain NATS over TCP.
    Tcp,
    /// NATS over WebSocket, offering permessage-deflate when `compress`.
    Ws { compress: bool },
    /// NATS over WebSocket over TLS, trusting the given roots.
    Wss {
        compress: bool,
        tls: Arc<rustls::ClientConfig>,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp => f.write_str("tcp"),
            Self::Ws { compress } => write!(f, "ws(compress={compress})"),
            Self::Wss { compress, .. } => write!(f, "wss(compress={compress})"),
        }
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    pub(crate) transport: Transport,
}

/// Mask keys for the frames a client sends.
struct Keys(XorShift);

impl MaskKeySource for Keys {
    fn next_mask_key(&mut self) -> Option<[u8; 4]> {
        Some((self.0.next_u64() as u32).to_le_bytes())
    }
}

struct Ws {
    decoder: Decoder,
    encoder: Encoder<Keys>,
    inflater: Inflater,
    deflater: Deflater,
    arena: BytesMut,
    frames: Vec<Bytes>,
}

/// Read size; one scratch buffer per thread.
const READ_CHUNK: usize = 64 * 1024;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}

/// How long a non-blocking connection keeps retrying a write the socket cannot take.
const WRITE_PATIENCE: Duration = Duration::from_secs(30);

/// A connected, NATS-ready client.
pub(crate) struct Conn {
    sock: TcpStream,
    tls: Option<Box<ClientConnection>>,
    ws: Option<Box<Ws>>,
    /// Bytes read from the socket (WebSocket frames) not yet decoded.
    raw: BytesMut,
    /// The NATS byte stream not yet parsed.
    input: BytesMut,
    parser: Parser,
    nonblocking: bool,
    /// Bytes read from the socket (before TLS decryption: the WebSocket or NATS stream).
    pub(crate) wire_in: u64,
    /// Bytes written (WebSocket frames or NATS stream, before TLS).
    pub(crate) wire_out: u64,
}

fn err(context: &str) -> impl Fn(io::Error) -> String + '_ {
    move |e| format!("{context}: {e}")
}

impl Conn {
    /// Connects, does the TLS and WebSocket handshakes, reads `INFO`, sends `CONNECT` and
    /// waits for the `PONG` to a `PING`. Socket reads and writes time out after `timeout`.
    pub(crate) fn open(target: &Target, timeout: Duration) -> Result<Self, String> {
        let mut conn = Self::connect(target, timeout, "/", &[])?;
        match conn.read_op()? {
            Op::Info(_) => {}
            other => return Err(format!("expected INFO, got {other:?}")),
        }
        let mut hello = Vec::new();
        proto::connect(&mut hello);
        conn.send(Bytes::from(hello))?;
        conn.round_trip()?;
        Ok(conn)
    }

    /// A WebSocket connection to `path` offering the subprotocol `protocol`, for another
    /// protocol than NATS (MQTT at `/mqtt`): the byte stream is then read with
    /// [`Conn::fill`] and [`Conn::input`], and written with [`Conn::send`].
    pub(crate) fn open_ws(
        target: &Target,
        timeout: Duration,
        path: &str,
        protocol: &str,
    ) -> Result<Self, String> {
        if matches!(target.transport, Transport::Tcp) {
            return Err(format!("{path} needs a WebSocket target"));
        }
        Self::connect(
            target,
            timeout,
            path,
            &[("Sec-WebSocket-Protocol", protocol)],
        )
    }

    /// The TCP connection and the TLS and WebSocket handshakes of `target`.
    fn connect(
        target: &Target,
        timeout: Duration,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Self, String> {
        let sock = TcpStream::connect_timeout(&target.addr, timeout)
            .map_err(err(&format!("connect {}", target.addr)))?;
        sock.set_nodelay(true).map_err(err("nodelay"))?;
        sock.set_read_timeout(Some(timeout))
            .map_err(err("timeout"))?;
        sock.set_write_timeout(Some(timeout))
            .map_err(err("timeout"))?;
        let mut conn = Self {
            sock,
            tls: None,
            ws: None,
            raw: BytesMut::new(),
            input: BytesMut::new(),
            parser: Parser::default(),
            nonblocking: false,
            wire_in: 0,
            wire_out: 0,
        };
        let compress = match &target.transport {
            Transport::Tcp => None,
            Transport::Ws { compress } => Some(*compress),
            Transport::Wss { compress, tls } => {
                let name = ServerName::IpAddress(target.addr.ip().into());
                let mut tls = ClientConnection::new(Arc::clone(tls), name)
                    .map_err(|e| format!("TLS: {e}"))?;
                while tls.is_handshaking() {
                    tls.complete_io(&mut conn.sock)
                        .map_err(err("TLS handshake"))?;
                }
                conn.tls = Some(Box::new(tls));
                Some(*compress)
            }
        };
        if let Some(compress) = compress {
            conn.upgrade(target, compress, path, headers)?;
        }
        Ok(conn)
    }

    fn upgrade(
        &mut self,
        target: &Target,
        compress: bool,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<(), String> {
        let mut rng = XorShift::from_entropy();
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
        nonce[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
        let host = target.addr.to_string();
        let request = ClientRequest {
            path,
            host: &host,
            // Not `Mozilla/...`: nats-server would frame for browsers (4 KiB frames).
            user_agent: concat!("natsws-loadgen/", env!("CARGO_PKG_VERSION")),
            compression: compress,
            no_masking: false,
            extra_headers: headers,
        };
        let mut out = Vec::new();
        let mut handshake =
            ClientHandshake::new(&request, &nonce, ws_handshake::Limits::default(), &mut out)
                .map_err(|e| e.to_string())?;
        self.write_raw(&out)?;
        let mut head = Vec::new();
        let accepted = loop {
            let n = SCRATCH.with(|s| {
                let mut s = s.borrow_mut();
                let n = self.read_io(&mut s)?;
                head.extend_from_slice(s.get(..n).unwrap_or_default());
                Ok::<_, io::Error>(n)
            });
            match n {
                Ok(0) => return Err("server closed during the WebSocket upgrade".to_owned()),
                Ok(_) => {}
                Err(e) => return Err(format!("WebSocket upgrade: {e}")),
            }
            if let Some(accepted) = handshake.handle_input(&head).map_err(|e| e.to_string())? {
                break accepted;
            }
        };
        if compress && !accepted.compression {
            return Err("the server did not agree to permessage-deflate".to_owned());
        }
        self.raw
            .extend_from_slice(head.get(accepted.head_len..).unwrap_or_default());
        let keys = Keys(rng);
        let config = EncoderConfig {
            deflate: accepted.compression,
            ..EncoderConfig::default()
        };
        self.ws = Some(Box::new(Ws {
            decoder: Decoder::new(DecoderConfig::client().with_deflate(accepted.compression)),
            encoder: Encoder::with_mask_keys(config, keys),
            inflater: Inflater::new(),
            deflater: Deflater::new(),
            arena: BytesMut::new(),
            frames: Vec::new(),
        }));
        // The server may have sent its first frames in the same segment as the response.
        self.decode_frames().map_err(|e| e.to_string())
    }

    /// The socket, for registering with a poller.
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// The byte stream read and not yet consumed (of a connection made by [`Conn::open_ws`]).
    pub(crate) fn input(&mut self) -> &mut BytesMut {
        &mut self.input
    }

    /// Sets how long a blocking read waits.
    pub(crate) fn set_read_timeout(&mut self, timeout: Duration) -> Result<(), String> {
        self.sock
            .set_read_timeout(Some(timeout))
            .map_err(err("timeout"))
    }

    /// Switches to non-blocking reads ([`Conn::fill`] may then fail with `WouldBlock`).
    pub(crate) fn set_nonblocking(&mut self) -> Result<(), String> {
        self.sock
            .set_nonblocking(true)
            .map_err(err("nonblocking"))?;
        self.nonblocking = true;
        Ok(())
    }

    /// Drops read buffers and scratch space (an idle connection keeps only its socket state).
    pub(crate) fn shrink(&mut self) {
        self.raw = BytesMut::new();
        self.input = BytesMut::new();
        if let Some(ws) = &mut self.ws {
            ws.arena = BytesMut::new();
            ws.frames = Vec::new();
        }
    }

    /// Zeroes the wire byte counters.
    pub(crate) fn reset_counters(&mut self) {
        self.wire_in = 0;
        self.wire_out = 0;
    }

    /// Sends a chunk of the NATS stream (framed as one WebSocket message on ws connections).
    pub(crate) fn send(&mut self, nats: Bytes) -> Result<(), String> {
        let mut frames = self
            .ws
            .as_mut()
            .map(|ws| std::mem::take(&mut ws.frames))
            .unwrap_or_default();
        frames.clear();
        self.frame(nats, &mut frames)?;
        let res = self.send_wire(&frames);
        if let Some(ws) = &mut self.ws {
            ws.frames = frames;
        }
        res
    }

    /// Appends the wire form of a chunk of the NATS stream to `out` (to send later with
    /// [`Conn::send_wire`]). Valid out of order because permessage-deflate runs without
    /// context takeover.
    pub(crate) fn frame(&mut self, nats: Bytes, out: &mut Vec<Bytes>) -> Result<(), String> {
        match &mut self.ws {
            None => out.push(nats),
            Some(ws) => {
                ws.encoder
                    .encode_stream(&[nats], &mut ws.deflater, &mut ws.arena, out)
                    .map_err(|e| format!("deflate: {e}"))?;
            }
        }
        Ok(())
    }

    /// Writes bytes made by [`Conn::frame`].
    pub(crate) fn send_wire(&mut self, wire: &[Bytes]) -> Result<(), String> {
        if let [one] = wire {
            return self.write_raw(one);
        }
        let total = wire.iter().map(Bytes::len).sum();
        let mut joined = Vec::with_capacity(total);
        for chunk in wire {
            joined.extend_from_slice(chunk);
        }
        self.write_raw(&joined)
    }

    /// Subscribes to `subject` with sid 1 and waits until the server has it (`PING`/`PONG`).
    pub(crate) fn subscribe(&mut self, subject: &str) -> Result<(), String> {
        let mut op = Vec::new();
        proto::sub(&mut op, subject, 1);
        self.send(Bytes::from(op))?;
        self.round_trip()
    }

    /// Sends `PING` and reads until its `PONG` (answering the server's pings on the way).
    pub(crate) fn round_trip(&mut self) -> Result<(), String> {
        self.send(Bytes::from_static(b"PING\r\n"))?;
        loop {
            match self.read_op()? {
                Op::Pong => return Ok(()),
                Op::Err(e) => return Err(format!("server error: -ERR {e}")),
                _ => {}
            }
        }
    }

    fn write_raw(&mut self, data: &[u8]) -> Result<(), String> {
        let started = Instant::now();
        let nonblocking = self.nonblocking;
        let wait = |e: io::Error| -> Result<(), String> {
            let retry = e.kind() == io::ErrorKind::Interrupted
                || (nonblocking
                    && e.kind() == io::ErrorKind::WouldBlock
                    && started.elapsed() < WRITE_PATIENCE);
            if retry {
                std::thread::sleep(Duration::from_micros(50));
                Ok(())
            } else {
                Err(format!("write: {e}"))
            }
        };
        self.wire_out += data.len() as u64;
        match &mut self.tls {
            None => {
                let mut rest = data;
                while !rest.is_empty() {
                    match self.sock.write(rest) {
                        Ok(0) => return Err("write: connection closed".to_owned()),
                        Ok(n) => rest = rest.get(n..).unwrap_or_default(),
                        Err(e) => wait(e)?,
                    }
                }
            }
            Some(tls) => {
                let mut rest = data;
                loop {
                    if !rest.is_empty() {
                        let n = tls.writer().write(rest).map_err(err("TLS write"))?;
                        rest = rest.get(n..).unwrap_or_default();
                    }
                    if !tls.wants_write() {
                        if rest.is_empty() {
                            break;
                        }
                        continue;
                    }
                    if let Err(e) = tls.write_tls(&mut self.sock) {
                        wait(e)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// One read from the socket (TLS-decrypted): `Ok(0)` at end of stream.
    fn read_io(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = &mut self.tls else {
            return self.sock.read(buf);
        };
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if tls.read_tls(&mut self.sock)? == 0 {
                        return Ok(0);
                    }
                    tls.process_new_packets().map_err(io::Error::other)?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads once from the socket and decodes what came: `Ok(0)` at end of stream,
    /// `Err(WouldBlock)` when a non-blocking socket has nothing.
    pub(crate) fn fill(&mut self) -> io::Result<usize> {
        let n = SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let n = self.read_io(&mut s)?;
            let data = s.get(..n).unwrap_or_default();
            match &self.ws {
                Some(_) => self.raw.extend_from_slice(data),
                None => self.input.extend_from_slice(data),
            }
            Ok::<_, io::Error>(n)
        })?;
        self.wire_in += n as u64;
        if n > 0 && self.ws.is_some() {
            self.decode_frames()?;
        }
        Ok(n)
    }

    fn decode_frames(&mut self) -> io::Result<()> {
        let Some(ws) = &mut self.ws else {
            return Ok(());
        };
        let mut replies = Vec::new();
        loop {
            let event = ws
                .decoder
                .decode(&mut self.raw, &mut ws.inflater)
                .map_err(|e| io::Error::other(format!("WebSocket: {e}")))?;
            match event {
                None => break,
                Some(Event::Data(data)) => self.input.unsplit(data),
                Some(Event::Close(frame)) => {
                    return Err(io::Error::other(format!(
                        "the server closed the WebSocket: {frame:?}"
                    )));
                }
                Some(_) => {}
            }
            while let Some(reply) = ws.decoder.poll_reply() {
                let mut wire = Vec::new();
                ws.encoder.encode_control(&reply, &mut ws.arena, &mut wire);
                replies.extend(wire);
            }
        }
        for reply in replies {
            self.write_raw(&reply).map_err(io::Error::other)?;
        }
        Ok(())
    }

    /// The next complete operation already read, if any. Server `PING`s are answered here.
    pub(crate) fn next_op(&mut self) -> Result<Option<Op>, String> {
        loop {
            match self.parser.next(&mut self.input) {
                Ok(Some(Op::Ping)) => self.send(Bytes::from_static(b"PONG\r\n"))?,
                Ok(op) => return Ok(op),
                Err(e) => return Err(format!("protocol: {e}")),
            }
        }
    }

    /// The next operation, reading (blocking) as needed.
    pub(crate) fn read_op(&mut self) -> Result<Op, String> {
        loop {
            if let Some(op) = self.next_op()? {
                return Ok(op);
            }
            match self.fill() {
                Ok(0) => return Err("the server closed the connection".to_owned()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }
}

/// Opens `n` connections on `threads` threads, running `setup(i, conn)` on each (for example to
/// subscribe). Returns them in index order.
pub(crate) fn open_many(
    target: &Target,
    n: usize,
    threads: usize,
    timeout: Duration,
    setup: &(dyn Fn(usize, &mut Conn) -> Result<(), String> + Sync),
) -> Result<Vec<Conn>, String> {
    let threads = threads.clamp(1, n.max(1));
    let results: Vec<Result<Vec<(usize, Conn)>, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    for i in (t..n).step_by(threads) {
                        let mut conn = Conn::open(target, timeout)
                            .map_err(|e| format!("connection {i}: {e}"))?;
                        setup(i, &mut conn).map_err(|e| format!("connection {i}: {e}"))?;
                        mine.push((i, conn));
                    }
                    Ok(mine)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a thread panicked".to_owned()))
            })
            .collect()
    });
    let mut all = Vec::with_capacity(n);
    for part in results {
        all.extend(part?);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, c)| c).collect())
}
