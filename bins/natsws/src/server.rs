//! The single-threaded mio event loop (STYLE §7): listeners on fixed tokens, a `Slab` of
//! connections, edge-triggered reads with a per-tick budget and a ready queue, one vectored
//! flush per dirty connection per tick, `WRITABLE` only while output is pending, removal only
//! at the end of a tick, and a timer heap fed by the connections' deadlines.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::io::{self, IoSlice};
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use broker::{Broker, ClientId, ClientParams, CloseReason, ConnectionType, Event};
use bytes::BytesMut;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

use crate::conn::{self, Transport};
use crate::monitor::{self, Bound, Clock, MonitorCtx};
use crate::settings::Settings;

const CLIENT_LISTENER: Token = Token(0);
const WS_LISTENER: Token = Token(1);
const HTTP_LISTENER: Token = Token(2);
const HTTPS_LISTENER: Token = Token(3);
const SIGNALS: Token = Token(4);
const CONN_TOKEN_BASE: usize = 16;

/// Most `IoSlice`s per vectored write.
const MAX_IOSLICES: usize = 64;
/// How long accepting pauses after EMFILE/ENFILE.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a closing connection may take to flush its last bytes.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// Largest HTTP request head the monitor accepts.
const MAX_HTTP_HEAD_BYTES: usize = 16 * 1024;
/// Idle HTTP keep-alive connections are closed after this long.
const HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Stop reading from a client whose own output queue is above this many bytes.
const READ_PAUSE_PENDING_BYTES: usize = 4 * 1024 * 1024;

/// What speaks on a connection.
#[derive(Debug)]
enum Kind {
    /// NATS over TCP (or TLS).
    Nats { client: ClientId },
    /// An HTTP monitoring connection.
    Http { out: BytesMut, close_after: bool },
}

#[derive(Debug)]
struct Conn {
    uid: u64,
    transport: Transport,
    peer: SocketAddr,
    kind: Kind,
    in_buf: BytesMut,
    interest: Interest,
    dirty: bool,
    queued_ready: bool,
    /// Set once the connection is to be removed; output still drains until `linger_until`.
    closing: bool,
    linger_until: Option<Instant>,
    write_failed: bool,
    /// TLS handshake or HTTP idle deadline.
    deadline: Option<Instant>,
    read_paused: bool,
    log_id: String,
}

/// Why the loop stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// SIGINT or end of lame duck: exit 0.
    Clean,
    /// SIGTERM: nats-server 2.9.10 exits 1.
    Terminated,
}

/// The server.
pub(crate) struct Server {
    poll: Poll,
    signals: Signals,
    client_listener: Option<TcpListener>,
    http_listener: Option<TcpListener>,
    https_listener: Option<TcpListener>,
    ws_listener: Option<TcpListener>,
    conns: Slab<Conn>,
    by_client: Vec<Option<usize>>,
    broker: Broker,
    settings: Settings,
    client_tls: Option<Arc<rustls::ServerConfig>>,
    https_tls: Option<Arc<rustls::ServerConfig>>,
    next_uid: u64,
    dirty: Vec<usize>,
    ready: VecDeque<usize>,
    to_reap: Vec<usize>,
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    accept_paused_until: Option<Instant>,
    emfile_logged: bool,
    clock: Clock,
    start: Instant,
    config_load_time: Instant,
    http_req_stats: BTreeMap<String, u64>,
    bound: Bound,
    shutting_down: Option<(Exit, Instant)>,
    lame_duck: Option<LameDuck>,
    ports_file: Option<String>,
}

#[derive(Debug)]
struct LameDuck {
    close_from: Instant,
    interval: Duration,
    next_close: Option<Instant>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("conns", &self.conns.len())
            .finish_non_exhaustive()
    }
}

fn bind(host: &str, port: u16) -> io::Result<TcpListener> {
    let addr: SocketAddr = (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
    TcpListener::bind(addr)
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Random bytes from the OS.
pub(crate) fn os_random(buf: &mut [u8]) {
    use std::io::Read as _;
    if let Ok(mut f) = std::fs::File::open("/dev/urandom")
        && f.read_exact(buf).is_ok()
    {
        return;
    }
    // Fall back on time and pid; only ids and jitter depend on it.
    let seed = Instant::now().elapsed().as_nanos() as u64 ^ u64::from(std::process::id());
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (seed.rotate_left(u32::try_from(i % 64).unwrap_or(0)) & 0xff) as u8;
    }
}

/// A server id in nats-server's shape: `N` + 55 base32 characters.
pub(crate) fn new_server_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut raw = [0u8; 55];
    os_random(&mut raw);
    let mut id = String::from("N");
    for b in raw {
        id.push(char::from(
            *ALPHABET.get(usize::from(b % 32)).unwrap_or(&b'A'),
        ));
    }
    id
}

impl Server {
    /// Binds every listener and logs the start-up banner. Fatal errors come back as text.
    pub(crate) fn new(mut settings: Settings) -> Result<Self, String> {
        let poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
        let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2])
            .map_err(|e| format!("signals: {e}"))?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)
            .map_err(|e| format!("signals: {e}"))?;
        let client_tls = match &settings.client_tls {
            Some(spec) => Some(spec.load()?),
            None => None,
        };
        let https_tls = if settings.https.is_some() {
            match &client_tls {
                Some(t) => Some(t.clone()),
                None => return Err("TLS config required for https monitoring".to_owned()),
            }
        } else {
            None
        };
        let mut bound = Bound::default();
        let mut http_listener = None;
        let mut https_listener = None;
        if let Some(h) = settings.http.clone() {
            let mut l = bind(&h.host, h.bind_port()).map_err(|e| {
                format!(
                    "Can't listen to the monitor port: listen tcp {}: {e}",
                    host_port(&h.host, h.bind_port())
                )
            })?;
            let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
            poll.registry()
                .register(&mut l, HTTP_LISTENER, Interest::READABLE)
                .map_err(|e| e.to_string())?;
            log::info!("Starting http monitor on {}", host_port(&h.host, port));
            bound.http_port = Some(port);
            http_listener = Some(l);
        }
        if let Some(h) = settings.https.clone() {
            let mut l = bind(&h.host, h.bind_port()).map_err(|e| {
                format!(
                    "Can't listen to the monitor port: listen tcp {}: {e}",
                    host_port(&h.host, h.bind_port())
                )
            })?;
            let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
            poll.registry()
                .register(&mut l, HTTPS_LISTENER, Interest::READABLE)
                .map_err(|e| e.to_string())?;
            log::info!("Starting https monitor on {}", host_port(&h.host, port));
            bound.https_port = Some(port);
            https_listener = Some(l);
        }
        let mut client_listener = bind(&settings.client.host, settings.client.bind_port())
            .map_err(|e| {
                format!(
                    "Error listening on port: {}, \"{e}\"",
                    host_port(&settings.client.host, settings.client.bind_port())
                )
            })?;
        let client_port = client_listener.local_addr().map(|a| a.port()).unwrap_or(0);
        poll.registry()
            .register(&mut client_listener, CLIENT_LISTENER, Interest::READABLE)
            .map_err(|e| e.to_string())?;
        bound.client_port = client_port;
        log::info!(
            "Listening for client connections on {}",
            host_port(&settings.client.host, client_port)
        );
        if let Some(tls) = &settings.client_tls {
            log::info!("TLS required for client connections");
            let _ = tls;
        }
        settings.broker.client_listener = broker::ListenerInfo {
            host: settings.client.host.clone(),
            port: client_port,
            tls_required: client_tls.is_some(),
            tls_verify: settings.client_tls.as_ref().is_some_and(|t| t.verify),
            tls_available: false,
        };
        let now = Instant::now();
        let broker = Broker::new(settings.broker.clone(), now);
        log::info!("Server is ready");
        Ok(Self {
            poll,
            signals,
            client_listener: Some(client_listener),
            http_listener,
            https_listener,
            ws_listener: None,
            conns: Slab::new(),
            by_client: Vec::new(),
            broker,
            settings,
            client_tls,
            https_tls,
            next_uid: 1,
            dirty: Vec::new(),
            ready: VecDeque::new(),
            to_reap: Vec::new(),
            timers: BinaryHeap::new(),
            accept_paused_until: None,
            emfile_logged: false,
            clock: Clock::now(),
            start: now,
            config_load_time: now,
            http_req_stats: BTreeMap::new(),
            bound,
            shutting_down: None,
            lame_duck: None,
            ports_file: None,
        })
    }

    /// The ports file JSON (nats-server's `Ports`).
    pub(crate) fn ports_json(&self) -> String {
        #[derive(serde::Serialize)]
        struct Ports {
            #[serde(skip_serializing_if = "Vec::is_empty")]
            nats: Vec<String>,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            monitoring: Vec<String>,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            websocket: Vec<String>,
        }
        let hosts = |h: &str| -> Vec<String> {
            if h == "0.0.0.0" || h == "::" || h.is_empty() {
                vec!["127.0.0.1".to_owned()]
            } else {
                vec![h.to_owned()]
            }
        };
        let s = &self.settings;
        let nats_scheme = if self.client_tls.is_some() {
            "tls"
        } else {
            "nats"
        };
        let mut ports = Ports {
            nats: hosts(&s.client.host)
                .iter()
                .map(|h| format!("{nats_scheme}://{}", host_port(h, self.bound.client_port)))
                .collect(),
            monitoring: Vec::new(),
            websocket: Vec::new(),
        };
        if let (Some(h), Some(p)) = (&s.http, self.bound.http_port) {
            ports.monitoring.extend(
                hosts(&h.host)
                    .iter()
                    .map(|h| format!("http://{}", host_port(h, p))),
            );
        }
        if let (Some(h), Some(p)) = (&s.https, self.bound.https_port) {
            ports.monitoring.extend(
                hosts(&h.host)
                    .iter()
                    .map(|h| format!("https://{}", host_port(h, p))),
            );
        }
        if let (Some(ws), Some(p)) = (&s.websocket, self.bound.ws_port) {
            ports.websocket.extend(
                hosts(&ws.listen.host)
                    .iter()
                    .map(|h| format!("{}://{}", ws.scheme(), host_port(h, p))),
            );
        }
        serde_json::to_string(&ports).unwrap_or_default()
    }

    /// Writes the pid file and the ports file.
    pub(crate) fn write_files(&mut self, argv0: &str) -> Result<(), String> {
        if let Some(pid_file) = &self.settings.pid_file {
            std::fs::write(pid_file, std::process::id().to_string())
                .map_err(|e| format!("Could not write pidfile: {e}"))?;
        }
        if let Some(dir) = &self.settings.ports_file_dir {
            let base = std::path::Path::new(argv0)
                .file_name()
                .map_or_else(|| "natsws".into(), |n| n.to_string_lossy().into_owned());
            let path =
                std::path::Path::new(dir).join(format!("{base}_{}.ports", std::process::id()));
            std::fs::write(&path, self.ports_json())
                .map_err(|e| format!("Error writing ports file ({}): {e}", path.display()))?;
            self.ports_file = Some(path.to_string_lossy().into_owned());
        }
        Ok(())
    }

    /// Runs until shutdown.
    pub(crate) fn run(&mut self) -> Exit {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                log::error!("poll error: {e}");
                return Exit::Terminated;
            }
            let now = Instant::now();
            for ev in &events {
                self.dispatch(ev, now);
            }
            self.run_ready(now);
            self.fire_timers(now);
            self.drain_broker_events(now);
            self.flush_dirty(now);
            self.reap(now);
            if let Some((exit, deadline)) = self.shutting_down
                && (self.conns.is_empty() || now >= deadline)
            {
                self.finish_shutdown();
                return exit;
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut best = self.broker.poll_timeout();
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                best = Some(best.map_or(t, |b| b.min(t)));
            }
        };
        consider(self.timers.peek().map(|Reverse((t, _, _))| *t));
        consider(self.accept_paused_until);
        consider(self.shutting_down.map(|(_, d)| d));
        if let Some(ld) = &self.lame_duck {
            consider(ld.next_close.or(Some(ld.close_from)));
        }
        if !self.ready.is_empty() || !self.dirty.is_empty() {
            best = Some(Instant::now());
        }
        best
    }

    fn dispatch(&mut self, ev: &mio::event::Event, now: Instant) {
        match ev.token() {
            CLIENT_LISTENER => self.accept_loop(CLIENT_LISTENER, now),
            HTTP_LISTENER => self.accept_loop(HTTP_LISTENER, now),
            HTTPS_LISTENER => self.accept_loop(HTTPS_LISTENER, now),
            WS_LISTENER => self.accept_loop(WS_LISTENER, now),
            SIGNALS => self.handle_signals(now),
            Token(t) if t >= CONN_TOKEN_BASE => {
                let key = t - CONN_TOKEN_BASE;
                if !self.conns.contains(key) {
                    return;
                }
                if ev.is_writable() {
                    self.mark_dirty(key);
                }
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    self.read_conn(key, now);
                }
            }
            _ => {}
        }
    }

    fn accept_loop(&mut self, token: Token, now: Instant) {
        if self.accept_paused_until.is_some_and(|t| now < t) {
            return;
        }
        self.accept_paused_until = None;
        loop {
            let listener = match token {
                CLIENT_LISTENER => self.client_listener.as_ref(),
                HTTP_LISTENER => self.http_listener.as_ref(),
                HTTPS_LISTENER => self.https_listener.as_ref(),
                WS_LISTENER => self.ws_listener.as_ref(),
                _ => None,
            };
            let Some(listener) = listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, addr)) => {
                    self.emfile_logged = false;
                    self.accepted(token, stream, addr, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let fd_exhausted =
                        matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
                    if !self.emfile_logged {
                        if fd_exhausted {
                            log::error!(
                                "Temporary accept error: {e} (file descriptors exhausted), retrying in {}ms",
                                ACCEPT_BACKOFF.as_millis()
                            );
                        } else {
                            log::error!("Temporary accept error: {e}");
                        }
                        self.emfile_logged = true;
                    }
                    self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                    return;
                }
            }
        }
    }

    fn insert_conn(
        &mut self,
        mut stream: TcpStream,
        peer: SocketAddr,
        kind: Kind,
        tls: Option<Box<rustls::ServerConnection>>,
    ) -> Option<usize> {
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(key + CONN_TOKEN_BASE),
            Interest::READABLE,
        ) {
            log::error!("register: {e}");
            return None;
        }
        let _ = stream.set_nodelay(true);
        let uid = self.next_uid;
        self.next_uid += 1;
        entry.insert(Conn {
            uid,
            transport: Transport::new(stream, tls),
            peer,
            kind,
            in_buf: BytesMut::new(),
            interest: Interest::READABLE,
            dirty: false,
            queued_ready: false,
            closing: false,
            linger_until: None,
            write_failed: false,
            deadline: None,
            read_paused: false,
            log_id: String::new(),
        });
        Some(key)
    }

    fn accepted(&mut self, token: Token, stream: TcpStream, peer: SocketAddr, now: Instant) {
        match token {
            CLIENT_LISTENER => self.accept_nats(stream, peer, now),
            HTTP_LISTENER | HTTPS_LISTENER => {
                let tls = if token == HTTPS_LISTENER {
                    self.https_tls
                        .clone()
                        .and_then(|cfg| rustls::ServerConnection::new(cfg).ok())
                        .map(Box::new)
                } else {
                    None
                };
                let kind = Kind::Http {
                    out: BytesMut::new(),
                    close_after: false,
                };
                if let Some(key) = self.insert_conn(stream, peer, kind, tls) {
                    self.set_deadline(key, now + HTTP_IDLE_TIMEOUT);
                    // Data may already be waiting.
                    self.read_conn(key, now);
                }
            }
            _ => {}
        }
    }

    fn accept_nats(&mut self, stream: TcpStream, peer: SocketAddr, now: Instant) {
        let params = ClientParams::new(ConnectionType::Standard, peer);
        let client = self.broker.register_client(now, params);
        let Some(key) = self.insert_conn(stream, peer, Kind::Nats { client }, None) else {
            self.broker
                .close_client(client, now, CloseReason::ReadError);
            self.broker.remove_client(client, now);
            return;
        };
        self.link_client(client, key);
        let cid = self.broker.cid(client).unwrap_or(0);
        if let Some(c) = self.conns.get_mut(key) {
            c.log_id = format!("{peer} - cid:{cid}");
        }
        log::debug!("{peer} - cid:{cid} - Client connection created");
        if let Some(cfg) = self.client_tls.clone() {
            // nats-server sends INFO in plaintext, then the client starts TLS.
            self.flush_conn(key, now);
            match rustls::ServerConnection::new(cfg) {
                Ok(tls) => {
                    if let Some(c) = self.conns.get_mut(key) {
                        c.transport.tls = Some(Box::new(tls));
                    }
                    let timeout = self.settings.tls_timeout;
                    self.set_deadline(key, now + timeout);
                    log::debug!("{peer} - cid:{cid} - Starting TLS client connection handshake");
                }
                Err(e) => {
                    log::error!("{peer} - cid:{cid} - TLS setup error: {e}");
                    self.broker
                        .close_client(client, now, CloseReason::TlsHandshakeFailure);
                }
            }
        }
        self.read_conn(key, now);
    }

    fn link_client(&mut self, client: ClientId, key: usize) {
        let idx = client.index();
        if self.by_client.len() <= idx {
            self.by_client.resize(idx + 1, None);
        }
        if let Some(slot) = self.by_client.get_mut(idx) {
            *slot = Some(key);
        }
    }

    fn conn_of(&self, client: ClientId) -> Option<usize> {
        let key = (*self.by_client.get(client.index())?)?;
        match &self.conns.get(key)?.kind {
            Kind::Nats { client: c } if *c == client => Some(key),
            _ => None,
        }
    }

    fn set_deadline(&mut self, key: usize, at: Instant) {
        if let Some(c) = self.conns.get_mut(key) {
            c.deadline = Some(at);
            self.timers.push(Reverse((at, key, c.uid)));
        }
    }

    fn mark_dirty(&mut self, key: usize) {
        if let Some(c) = self.conns.get_mut(key)
            && !c.dirty
        {
            c.dirty = true;
            self.dirty.push(key);
        }
    }

    fn read_conn(&mut self, key: usize, now: Instant) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if c.closing || c.read_paused {
            return;
        }
        let res = c.transport.read_into(&mut c.in_buf);
        let was_handshaking = c.transport.tls_handshaking();
        match res {
            Ok(outcome) => {
                if c.transport.has_pending() {
                    self.mark_dirty(key);
                }
                self.process_input(key, now);
                if outcome.budget_exhausted {
                    self.queue_ready(key);
                }
                if outcome.eof {
                    self.close_conn(key, now, CloseReason::ClientClosed);
                }
            }
            Err(e) => {
                let tls_err = matches!(e, conn::ReadError::Tls(_));
                if let Some(c) = self.conns.get_mut(key) {
                    if tls_err {
                        // Send the alert rustls queued.
                        let _ = c.transport.write_tls_pending();
                        log::error!("{} - TLS handshake error: {e}", c.peer);
                    } else {
                        log::debug!("{} - read error: {e}", c.peer);
                    }
                }
                let reason = if tls_err && was_handshaking {
                    CloseReason::TlsHandshakeFailure
                } else {
                    CloseReason::ReadError
                };
                self.close_conn(key, now, reason);
            }
        }
        self.release_idle_buffer(key);
    }

    fn release_idle_buffer(&mut self, key: usize) {
        if let Some(c) = self.conns.get_mut(key)
            && c.in_buf.is_empty()
            && c.in_buf.capacity() > 0
        {
            c.in_buf = BytesMut::new();
        }
    }

    fn queue_ready(&mut self, key: usize) {
        if let Some(c) = self.conns.get_mut(key)
            && !c.queued_ready
        {
            c.queued_ready = true;
            self.ready.push_back(key);
        }
    }

    fn run_ready(&mut self, now: Instant) {
        let n = self.ready.len();
        for _ in 0..n {
            let Some(key) = self.ready.pop_front() else {
                break;
            };
            if let Some(c) = self.conns.get_mut(key) {
                c.queued_ready = false;
                self.read_conn(key, now);
            }
        }
    }

    fn process_input(&mut self, key: usize, now: Instant) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        match &mut c.kind {
            Kind::Nats { client } => {
                let client = *client;
                if c.transport.tls_handshaking() {
                    return;
                }
                if c.deadline.is_some()
                    && let Some(tls) = c.transport.tls.as_ref()
                {
                    // The TLS handshake completed.
                    c.deadline = None;
                    log::debug!(
                        "{} - TLS handshake complete (TLS version {}, cipher suite {})",
                        c.log_id,
                        tls.protocol_version()
                            .map_or_else(String::new, crate::tls::version_name),
                        tls.negotiated_cipher_suite()
                            .map_or_else(String::new, crate::tls::cipher_name)
                    );
                }
                if !c.in_buf.is_empty() {
                    self.broker.handle_input(client, now, &mut c.in_buf);
                }
                let pending = self.broker.outbound(client).map_or(0, |q| q.len());
                if pending > READ_PAUSE_PENDING_BYTES
                    && let Some(c) = self.conns.get_mut(key)
                {
                    c.read_paused = true;
                }
            }
            Kind::Http { .. } => self.process_http(key, now),
        }
    }

    fn process_http(&mut self, key: usize, now: Instant) {
        loop {
            let Some(c) = self.conns.get_mut(key) else {
                return;
            };
            if c.transport.tls_handshaking() || c.closing {
                return;
            }
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            let parsed = req.parse(&c.in_buf);
            let (head_len, path, keep_alive) = match parsed {
                Ok(httparse::Status::Complete(n)) => {
                    let path = req.path.unwrap_or("/").to_owned();
                    let http10 = req.version == Some(0);
                    let conn_close = req.headers.iter().any(|h| {
                        h.name.eq_ignore_ascii_case("connection")
                            && String::from_utf8_lossy(h.value).eq_ignore_ascii_case("close")
                    });
                    (n, path, !http10 && !conn_close)
                }
                Ok(httparse::Status::Partial) => {
                    if c.in_buf.len() > MAX_HTTP_HEAD_BYTES {
                        self.http_reply(
                            key,
                            &monitor::Response {
                                status: 431,
                                content_type: "text/plain; charset=utf-8",
                                body: b"431 Request Header Fields Too Large".to_vec(),
                            },
                            false,
                        );
                    }
                    return;
                }
                Err(_) => {
                    self.http_reply(
                        key,
                        &monitor::Response {
                            status: 400,
                            content_type: "text/plain; charset=utf-8",
                            body: b"400 Bad Request".to_vec(),
                        },
                        false,
                    );
                    return;
                }
            };
            let _ = c.in_buf.split_to(head_len);
            let (raw_path, query) = path.split_once('?').unwrap_or((&path, ""));
            let base = self.settings.http_base_path.trim_end_matches('/');
            let endpoint = raw_path
                .strip_prefix(base)
                .map(|p| if p.is_empty() { "/" } else { p });
            let resp = match endpoint {
                Some(p) => {
                    let known = matches!(
                        p,
                        "/varz"
                            | "/connz"
                            | "/routez"
                            | "/gatewayz"
                            | "/leafz"
                            | "/subsz"
                            | "/subscriptionsz"
                            | "/accountz"
                            | "/jsz"
                            | "/healthz"
                            | "/"
                    );
                    if known {
                        *self.http_req_stats.entry(p.to_owned()).or_insert(0) += 1;
                    }
                    let ctx = MonitorCtx {
                        settings: &self.settings,
                        bound: &self.bound,
                        clock: self.clock,
                        now,
                        start: self.start,
                        config_load_time: self.config_load_time,
                        http_req_stats: &self.http_req_stats,
                        healthy: self.shutting_down.is_none(),
                        rss_bytes: rss_bytes(),
                        cpu_percent: 0.0,
                    };
                    monitor::handle(p, query, &mut self.broker, &ctx)
                }
                None => monitor::Response {
                    status: 404,
                    content_type: "text/plain; charset=utf-8",
                    body: b"404 page not found\n".to_vec(),
                },
            };
            self.http_reply(key, &resp, keep_alive);
            self.set_deadline(key, now + HTTP_IDLE_TIMEOUT);
            if !keep_alive {
                return;
            }
        }
    }

    fn http_reply(&mut self, key: usize, resp: &monitor::Response, keep_alive: bool) {
        if let Some(c) = self.conns.get_mut(key)
            && let Kind::Http { out, close_after } = &mut c.kind
        {
            out.extend_from_slice(&resp.to_bytes(keep_alive));
            if !keep_alive {
                *close_after = true;
                c.in_buf.clear();
            }
            self.mark_dirty(key);
        }
    }

    /// Closes a connection: through the broker for clients (which emits `Closed`), directly
    /// otherwise.
    fn close_conn(&mut self, key: usize, now: Instant, reason: CloseReason) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        match &c.kind {
            Kind::Nats { client } => {
                let client = *client;
                if self.broker.is_open(client) {
                    self.broker.close_client(client, now, reason);
                } else {
                    self.schedule_reap(key, now, false);
                }
            }
            Kind::Http { .. } => {
                self.schedule_reap(key, now, false);
            }
        }
    }

    fn schedule_reap(&mut self, key: usize, now: Instant, flush: bool) {
        if let Some(c) = self.conns.get_mut(key) {
            if !c.closing {
                c.closing = true;
                self.to_reap.push(key);
            }
            if flush {
                c.linger_until = Some(now + CLOSE_LINGER);
            } else {
                c.linger_until = None;
                c.write_failed = true;
            }
        }
        if flush {
            self.mark_dirty(key);
        }
    }

    fn drain_broker_events(&mut self, now: Instant) {
        while let Some(ev) = self.broker.poll_event() {
            match ev {
                Event::Flush(client) => {
                    if let Some(key) = self.conn_of(client) {
                        self.mark_dirty(key);
                    }
                }
                Event::Closed { client, reason } => {
                    let Some(key) = self.conn_of(client) else {
                        self.broker.remove_client(client, now);
                        continue;
                    };
                    if let Some(c) = self.conns.get(key) {
                        log::debug!("{} - Client connection closed: {reason}", c.log_id);
                        if matches!(
                            reason,
                            CloseReason::SlowConsumerPendingBytes
                                | CloseReason::SlowConsumerWriteDeadline
                        ) {
                            log::info!("{} - Slow Consumer Detected", c.log_id);
                        }
                    }
                    self.schedule_reap(key, now, reason.flushes());
                }
                Event::Connected(client) => {
                    if let Some(key) = self.conn_of(client)
                        && let Some(info) = self.broker.client_info(client, now)
                        && let Some(c) = self.conns.get_mut(key)
                        && !info.name.is_empty()
                    {
                        c.log_id = format!("{} - \"{}\"", c.log_id, info.name);
                    }
                }
                Event::AuthFailed { client, detail } => {
                    if let Some(key) = self.conn_of(client)
                        && let Some(c) = self.conns.get(key)
                    {
                        if detail.is_empty() {
                            log::error!("{} - authentication error", c.log_id);
                        } else {
                            log::error!("{} - authentication error - {detail}", c.log_id);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn flush_dirty(&mut self, now: Instant) {
        let dirty = std::mem::take(&mut self.dirty);
        for key in &dirty {
            if let Some(c) = self.conns.get_mut(*key) {
                c.dirty = false;
            }
            self.flush_conn(*key, now);
        }
        let mut dirty = dirty;
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
    }

    /// Writes what the connection has pending, once, and updates its interest.
    fn flush_conn(&mut self, key: usize, now: Instant) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if c.write_failed {
            return;
        }
        let mut res: io::Result<bool> = c.transport.write_tls_pending();
        if matches!(res, Ok(true)) {
            res = match &mut c.kind {
                Kind::Nats { client } => {
                    let client = *client;
                    match self.broker.outbound(client) {
                        Some(q) => write_queue(&mut c.transport, q),
                        None => Ok(true),
                    }
                }
                Kind::Http { out, .. } => {
                    let mut done = out.is_empty();
                    let mut r = Ok(true);
                    while !done {
                        match c.transport.write_vectored(&[IoSlice::new(out)]) {
                            Ok(0) => break,
                            Ok(n) => {
                                let _ = out.split_to(n.min(out.len()));
                                done = out.is_empty();
                            }
                            Err(e) => {
                                r = Err(e);
                                break;
                            }
                        }
                    }
                    r.map(|_| done)
                }
            };
        }
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if let Kind::Nats { client } = &c.kind {
            let client = *client;
            self.broker.handle_flushed(client, now);
            if c.read_paused
                && self.broker.outbound(client).map_or(0, |q| q.len())
                    < READ_PAUSE_PENDING_BYTES / 2
            {
                c.read_paused = false;
                self.queue_ready(key);
            }
        }
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let drained = match res {
            Ok(d) => d && !c.transport.has_pending(),
            Err(e) => {
                log::debug!("{} - write error: {e}", c.peer);
                c.write_failed = true;
                let kind_client = match &c.kind {
                    Kind::Nats { client } => Some(*client),
                    Kind::Http { .. } => None,
                };
                match kind_client {
                    Some(client) => self
                        .broker
                        .close_client(client, now, CloseReason::WriteError),
                    None => self.schedule_reap(key, now, false),
                }
                return;
            }
        };
        if let Kind::Http {
            close_after: true, ..
        } = c.kind
            && drained
        {
            self.schedule_reap(key, now, false);
            return;
        }
        let want = conn::interest(!drained);
        if want != c.interest {
            c.interest = want;
            let token = Token(key + CONN_TOKEN_BASE);
            if let Err(e) = self
                .poll
                .registry()
                .reregister(&mut c.transport.stream, token, want)
            {
                log::debug!("reregister: {e}");
            }
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        self.broker.handle_timeout(now);
        while let Some(Reverse((t, key, uid))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(c) = self.conns.get_mut(key) else {
                continue;
            };
            if c.uid != uid || c.deadline != Some(t) {
                continue;
            }
            c.deadline = None;
            let handshaking = c.transport.tls_handshaking();
            match &c.kind {
                Kind::Nats { .. } if handshaking => {
                    log::error!("{} - TLS handshake timeout", c.log_id);
                    self.close_conn(key, now, CloseReason::TlsHandshakeFailure);
                }
                Kind::Nats { .. } => {}
                Kind::Http { .. } => self.close_conn(key, now, CloseReason::ClientClosed),
            }
        }
        if self.accept_paused_until.is_some_and(|t| now >= t) {
            self.accept_paused_until = None;
            for token in [CLIENT_LISTENER, WS_LISTENER, HTTP_LISTENER, HTTPS_LISTENER] {
                self.accept_loop(token, now);
            }
        }
        self.lame_duck_tick(now);
    }

    fn reap(&mut self, now: Instant) {
        if self.to_reap.is_empty() {
            return;
        }
        let keys = std::mem::take(&mut self.to_reap);
        for key in keys {
            let Some(c) = self.conns.get_mut(key) else {
                continue;
            };
            let client = match &c.kind {
                Kind::Nats { client } => Some(*client),
                Kind::Http { .. } => None,
            };
            let pending = !c.write_failed
                && (c.transport.has_pending()
                    || match &c.kind {
                        Kind::Nats { client } => {
                            self.broker.outbound(*client).is_some_and(|q| !q.is_empty())
                        }
                        Kind::Http { out, .. } => !out.is_empty(),
                    });
            let Some(c) = self.conns.get_mut(key) else {
                continue;
            };
            if pending && c.linger_until.is_some_and(|t| now < t) {
                // Keep it until the last bytes are out (WRITABLE is registered).
                self.to_reap.push(key);
                continue;
            }
            let mut c = self.conns.remove(key);
            if !c.write_failed {
                c.transport.send_close_notify();
            }
            let _ = self.poll.registry().deregister(&mut c.transport.stream);
            if let Some(client) = client {
                if let Some(slot) = self.by_client.get_mut(client.index())
                    && *slot == Some(key)
                {
                    *slot = None;
                }
                self.broker.remove_client(client, now);
            }
        }
    }

    fn handle_signals(&mut self, now: Instant) {
        let pending: Vec<i32> = self.signals.pending().collect();
        for sig in pending {
            match sig {
                SIGINT => {
                    log::debug!("Trapped \"interrupt\" signal");
                    self.begin_shutdown(now, Exit::Clean);
                }
                SIGTERM => {
                    log::debug!("Trapped \"terminated\" signal");
                    if self.lame_duck.is_some() {
                        continue;
                    }
                    self.begin_shutdown(now, Exit::Terminated);
                }
                SIGUSR1 => crate::logger::reopen(),
                SIGUSR2 => self.enter_lame_duck(now),
                SIGHUP => {
                    log::debug!("Trapped \"hangup\" signal");
                    self.reload(now);
                }
                _ => {}
            }
        }
    }

    fn close_listeners(&mut self) {
        for l in [self.client_listener.take(), self.ws_listener.take()]
            .into_iter()
            .flatten()
        {
            let mut l = l;
            let _ = self.poll.registry().deregister(&mut l);
        }
    }

    fn begin_shutdown(&mut self, now: Instant, exit: Exit) {
        if self.shutting_down.is_some() {
            return;
        }
        log::info!("Initiating Shutdown...");
        self.close_listeners();
        for l in [self.http_listener.take(), self.https_listener.take()]
            .into_iter()
            .flatten()
        {
            let mut l = l;
            let _ = self.poll.registry().deregister(&mut l);
        }
        self.shutting_down = Some((exit, now + CLOSE_LINGER));
        self.lame_duck = None;
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.close_conn(key, now, CloseReason::ServerShutdown);
        }
    }

    fn finish_shutdown(&mut self) {
        if let Some(p) = &self.ports_file {
            let _ = std::fs::remove_file(p);
        }
        log::info!("Server Exiting..");
    }

    fn enter_lame_duck(&mut self, now: Instant) {
        if self.lame_duck.is_some() || self.shutting_down.is_some() {
            return;
        }
        log::info!("Entering lame duck mode, stop accepting new clients");
        self.close_listeners();
        let n_clients = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(c.kind, Kind::Nats { .. }))
            .count();
        if n_clients == 0 {
            self.begin_shutdown(now, Exit::Clean);
            return;
        }
        let grace = self.settings.lame_duck_grace_period;
        let span = self.settings.lame_duck_duration.saturating_sub(grace);
        let interval =
            (span / u32::try_from(n_clients).unwrap_or(u32::MAX)).min(Duration::from_secs(1));
        self.lame_duck = Some(LameDuck {
            close_from: now + grace,
            interval,
            next_close: None,
        });
    }

    fn lame_duck_tick(&mut self, now: Instant) {
        let Some(ld) = self.lame_duck.as_mut() else {
            return;
        };
        if now < ld.close_from {
            return;
        }
        if ld.next_close.is_none() {
            log::info!("Closing existing clients");
        }
        if ld.next_close.is_some_and(|t| now < t) {
            return;
        }
        let interval = ld.interval;
        let mut jitter = [0u8; 2];
        os_random(&mut jitter);
        let frac = f64::from(u16::from_le_bytes(jitter)) / 65536.0;
        ld.next_close = Some(now + interval.mul_f64(0.5 + frac / 2.0));
        let next = self
            .conns
            .iter()
            .find(|(_, c)| matches!(c.kind, Kind::Nats { .. }) && !c.closing)
            .map(|(k, _)| k);
        match next {
            Some(key) => self.close_conn(key, now, CloseReason::ServerShutdown),
            None => self.begin_shutdown(now, Exit::Clean),
        }
    }

    fn reload(&mut self, now: Instant) {
        let Some(file) = self.settings.config_file.clone() else {
            log::error!(
                "Failed to reload server configuration: can only reload config when a file is provided using -c or --config"
            );
            return;
        };
        let _ = (file, now);
        log::error!("Failed to reload server configuration: reload is not available yet");
    }
}

/// Writes an outbound queue with vectored writes until it is empty or the socket would block.
/// Returns whether the queue was drained.
fn write_queue(transport: &mut Transport, q: &mut broker::OutQueue) -> io::Result<bool> {
    while !q.is_empty() {
        let mut slices = [IoSlice::new(&[]); MAX_IOSLICES];
        let n = q.chunks_vectored(&mut slices);
        let written = transport.write_vectored(slices.get(..n).unwrap_or(&[]))?;
        if written == 0 {
            return Ok(false);
        }
        q.advance(written);
    }
    Ok(true)
}

/// Resident set size from `/proc/self/statm`.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}
