//! The single-threaded mio event loop (docs/style.md §6): listeners on fixed tokens, a `Slab` of
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
use bytes::{Buf as _, Bytes, BytesMut};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

use crate::conn::{self, Transport};
use crate::monitor::{self, Bound, Clock, MonitorCtx};
use crate::settings::{ListenSpec, Settings};

const CLIENT_LISTENER: Token = Token(0);
const WS_LISTENER: Token = Token(1);
const HTTP_LISTENER: Token = Token(2);
const HTTPS_LISTENER: Token = Token(3);
const SIGNALS: Token = Token(4);
/// The worker threads (password checks, monitoring renders) wake the poll through this.
const WAKER: Token = Token(5);
const CONN_TOKEN_BASE: usize = 16;

/// Most `IoSlice`s per vectored write.
const MAX_IOSLICES: usize = 64;
/// How long accepting pauses after EMFILE/ENFILE.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a closing connection may take to flush its last bytes.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// Largest HTTP request head the monitor accepts.
const MAX_HTTP_HEAD_BYTES: usize = 16 * 1024;
/// Pipelined monitoring requests are answered only while less than this many reply bytes
/// are unsent: a client that never reads stops being read (backpressure).
const HTTP_PENDING_REPLY_BYTES: usize = 64 * 1024;
/// Idle HTTP keep-alive connections are closed after this long.
const HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Stop reading from a client whose own output queue is above this many bytes.
const READ_PAUSE_PENDING_BYTES: usize = 4 * 1024 * 1024;
/// Most payload bytes a WebSocket connection's compressed message is inflated by per tick.
const INFLATE_BYTES_PER_TICK: usize = conn::READ_BUDGET_BYTES;
/// Most subscriptions a tick takes for deferred monitoring replies (`renders`).
const RENDER_SUBS_PER_TICK: usize = 2048;
/// Most WebSocket control replies (pongs, at most 127 bytes each) owed to a peer before
/// its input is no longer decoded until they are written.
const MAX_OWED_CONTROL_REPLIES: usize = 64;

/// What speaks on a connection.
#[derive(Debug)]
enum Kind {
    /// NATS over TCP (or TLS).
    Nats { client: ClientId },
    /// An HTTP monitoring connection (`ws_capable` on a port shared with WebSocket).
    Http {
        out: BytesMut,
        close_after: bool,
        ws_capable: bool,
    },
    /// A WebSocket upgrade request being read; `out` holds refusals of earlier requests on a
    /// kept-alive connection, not yet written.
    WsHandshake {
        handshake: ws_handshake::ServerHandshake,
        out: BytesMut,
    },
    /// NATS over WebSocket.
    Ws { client: ClientId, ws: Box<WsConn> },
}

impl Kind {
    fn client(&self) -> Option<ClientId> {
        match self {
            Self::Nats { client } | Self::Ws { client, .. } => Some(*client),
            Self::Http { .. } | Self::WsHandshake { .. } => None,
        }
    }
}

/// The WebSocket side of a NATS-over-WebSocket connection.
#[derive(Debug)]
struct WsConn {
    decoder: ws_codec::Decoder,
    encoder: ws_codec::Encoder,
    /// Framed bytes (the `101`, frames) not yet written, in order.
    wire: VecDeque<Bytes>,
    /// Payload bytes taken out of data frames, waiting for the NATS parser.
    nats_in: BytesMut,
    close_sent: bool,
    /// The close frame owed to the peer (the echo of its close, or a protocol error's):
    /// sent after the output of what was decoded before it, then nothing more (RFC 6455
    /// §5.5.1; nats-server's `flushOutbound` also sends its close message last).
    owed_close: Option<ws_codec::Control>,
    /// Bytes at the front of the broker's queue that belong to a frame whose header is
    /// already in `wire` (the uncompressed single-frame fast path writes them in place).
    frame_remaining: usize,
    /// Control replies (pongs) framed into `wire` since it was last empty.
    owed_controls: usize,
    /// Decoding (and reading) stopped until the owed control replies are written.
    decode_paused: bool,
}

impl WsConn {
    /// Frames the control replies the decoder owes (pong, close); nothing after a close was
    /// sent. Returns whether anything was queued.
    fn queue_control_replies(&mut self, arena: &mut BytesMut) -> bool {
        let mut queued = false;
        while let Some(reply) = self.decoder.poll_reply() {
            if self.close_sent || self.owed_close.is_some() {
                continue;
            }
            if matches!(reply, ws_codec::Control::Close(_)) {
                self.owed_close = Some(reply);
                queued = true;
                continue;
            }
            self.encoder.encode_control(&reply, arena, &mut self.wire);
            self.owed_controls += 1;
            queued = true;
        }
        queued
    }

    /// Bytes framed and not yet written: what the transport holds for the client outside
    /// the broker's queue.
    fn backlog(&self) -> usize {
        self.wire.iter().map(Bytes::len).sum()
    }

    /// A peer that sends pings and never reads would otherwise make the pongs owed to it grow
    /// without bound: past this many, decoding stops until they are written.
    fn owes_too_much(&self) -> bool {
        self.owed_controls >= MAX_OWED_CONTROL_REPLIES
    }
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
    /// The broker parked this client's CONNECT for a password check: do not read until its
    /// verdict is in. Closing the connection withdraws a queued check.
    auth_parked: Option<crate::hasher::Submitted>,
    /// An HTTP connection whose reply is being made by `renders`: do not read.
    awaiting_reply: bool,
    log_id: String,
    /// `log_id` carries the client's CONNECT name.
    log_named: bool,
    close_reason: Option<CloseReason>,
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
    /// WebSocket upgrades are also accepted on the monitoring port.
    ws_on_http: bool,
    ws_policy: Option<ws_handshake::Policy>,
    ws_tls: Option<Arc<rustls::ServerConfig>>,
    deflater: ws_codec::Deflater,
    inflater: ws_codec::Inflater,
    arena: BytesMut,
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
    cli: crate::cli::Cli,
    hasher: crate::hasher::Hasher,
    /// Monitoring replies too large to make within one tick.
    renders: crate::render::Renders,
    /// Cancel flags of the password re-checks the last reload asked for.
    recheck_jobs: Vec<crate::hasher::Withdraw>,
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

/// True for `0.0.0.0`, `::` and the empty host: every interface.
fn is_any_host(host: &str) -> bool {
    host.is_empty()
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified())
}

/// Binds a listener. An any-address host listens on IPv4 and IPv6 alike through one
/// dual-stack socket, as Go's `net.Listen` does for nats-server; where IPv6 is unavailable
/// it falls back to IPv4 only.
fn bind(host: &str, port: u16) -> io::Result<TcpListener> {
    if is_any_host(host) {
        match bind_dual_stack(port) {
            Ok(l) => return Ok(l),
            // No IPv6 on this machine: listen on IPv4 only.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL)
                ) => {}
            Err(e) => return Err(e),
        }
    }
    let addr: SocketAddr = (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
    TcpListener::bind(addr)
}

fn bind_dual_stack(port: u16) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(false)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    let addr = SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port));
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// The addresses an any-address listener is reachable on, for the ports file: every
/// interface's global-unicast, loopback and link-local address (Go's `resolveHostPorts`
/// lists them all), ordered by interface index; `None` for any other host.
fn interface_hosts(host: &str) -> Option<Vec<String>> {
    if !is_any_host(host) {
        return None;
    }
    let mut ifaces = if_addrs::get_if_addrs().ok()?;
    ifaces.sort_by_key(|i| i.index.unwrap_or(u32::MAX));
    let hosts: Vec<String> = ifaces.iter().map(|i| i.ip().to_string()).collect();
    (!hosts.is_empty()).then_some(hosts)
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl Server {
    /// Binds every listener and logs the start-up banner. Fatal errors come back as text.
    pub(crate) fn new(mut settings: Settings, cli: crate::cli::Cli) -> Result<Self, String> {
        let poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
        let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2])
            .map_err(|e| format!("signals: {e}"))?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)
            .map_err(|e| format!("signals: {e}"))?;
        // mio allows one waker per poll: the worker threads share it.
        let waker =
            Arc::new(mio::Waker::new(poll.registry(), WAKER).map_err(|e| format!("waker: {e}"))?);
        let mut hasher_key = [0u8; 64];
        crate::ids::os_random(&mut hasher_key)?;
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
        // The http and https monitor listeners differ only in their token and log word.
        let bind_monitor =
            |h: &ListenSpec, token: Token, scheme: &str| -> Result<(TcpListener, u16), String> {
                let mut l = bind(&h.host, h.bind_port()).map_err(|e| {
                    format!(
                        "Can't listen to the monitor port: listen tcp {}: {e}",
                        host_port(&h.host, h.bind_port())
                    )
                })?;
                let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
                poll.registry()
                    .register(&mut l, token, Interest::READABLE)
                    .map_err(|e| e.to_string())?;
                log::info!("Starting {scheme} monitor on {}", host_port(&h.host, port));
                Ok((l, port))
            };
        if let Some(h) = &settings.http {
            let (l, port) = bind_monitor(h, HTTP_LISTENER, "http")?;
            bound.http_port = Some(port);
            http_listener = Some(l);
        }
        if let Some(h) = &settings.https {
            let (l, port) = bind_monitor(h, HTTPS_LISTENER, "https")?;
            bound.https_port = Some(port);
            https_listener = Some(l);
        }
        let mut ws_listener = None;
        let mut ws_on_http = false;
        let mut ws_policy = None;
        let mut ws_tls = None;
        if let Some(ws) = settings.websocket.clone() {
            ws_policy = Some(
                ws_handshake::Policy::new(&ws.handshake).map_err(|e| format!("websocket: {e}"))?,
            );
            if let Some(spec) = &ws.tls {
                ws_tls = Some(spec.load()?);
            }
            let shared = settings.http.as_ref().is_some_and(|h| {
                h.host == ws.listen.host && h.port == ws.listen.port && h.port > 0
            }) && ws_tls.is_none();
            let port = if shared {
                ws_on_http = true;
                bound.http_port.unwrap_or(0)
            } else {
                let mut l = bind(&ws.listen.host, ws.listen.bind_port()).map_err(|e| {
                    format!(
                        "Unable to listen for websocket connections: listen tcp {}: {e}",
                        host_port(&ws.listen.host, ws.listen.bind_port())
                    )
                })?;
                let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
                poll.registry()
                    .register(&mut l, WS_LISTENER, Interest::READABLE)
                    .map_err(|e| e.to_string())?;
                ws_listener = Some(l);
                port
            };
            bound.ws_port = Some(port);
            log::info!(
                "Listening for websocket clients on {}://{}",
                ws.scheme(),
                host_port(&ws.listen.host, port)
            );
            if shared {
                log::info!("Websocket clients share the http monitoring port");
            }
            if ws_tls.is_none() {
                log::warn!("Websocket not configured with TLS. DO NOT USE IN PRODUCTION!");
            }
            settings.broker.websocket_listener = Some(broker::ListenerInfo {
                host: ws.listen.host.clone(),
                port,
                tls_required: ws_tls.is_some(),
                tls_verify: ws.tls.as_ref().is_some_and(|t| t.verify),
                tls_available: false,
            });
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
        let mut broker =
            Broker::try_new(settings.broker.clone(), now).map_err(|e| e.to_string())?;
        broker.set_max_closed_clients(settings.max_closed_clients);
        log::info!("Server is ready");
        Ok(Self {
            poll,
            signals,
            client_listener: Some(client_listener),
            http_listener,
            https_listener,
            ws_listener,
            ws_on_http,
            ws_policy,
            ws_tls,
            deflater: ws_codec::Deflater::new(),
            inflater: ws_codec::Inflater::new(),
            arena: BytesMut::new(),
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
            cli,
            hasher: crate::hasher::Hasher::new(Arc::clone(&waker), hasher_key),
            renders: crate::render::Renders::new(waker),
            recheck_jobs: Vec::new(),
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
            interface_hosts(h).unwrap_or_else(|| {
                if is_any_host(h) {
                    vec!["127.0.0.1".to_owned()]
                } else {
                    vec![h.to_owned()]
                }
            })
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
            // Connections whose read budget ran out last tick go first; those that run out
            // now wait for the next tick, so one tick stays bounded.
            self.run_ready(now);
            self.step_renders();
            for ev in &events {
                self.dispatch(ev, now);
            }
            self.fire_timers(now);
            self.drain_broker_events(now);
            self.flush_dirty(now);
            // A failed write closes the client inside the flush; act on that now rather than
            // on the next wake-up.
            self.drain_broker_events(now);
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
        // A closing connection whose peer stops reading is removed when its linger ends, even
        // on an otherwise idle server.
        for key in &self.to_reap {
            consider(self.conns.get(*key).and_then(|c| c.linger_until));
        }
        if let Some(ld) = &self.lame_duck {
            consider(ld.next_close.or(Some(ld.close_from)));
        }
        if !self.ready.is_empty() || !self.dirty.is_empty() || self.renders.has_work() {
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
            WAKER => {
                self.password_verdicts(now);
                self.rendered_replies(now);
            }
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
                    // IPv4 peers of a dual-stack listener arrive as `::ffff:a.b.c.d`; Go
                    // reports them as plain IPv4.
                    let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
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
            auth_parked: None,
            awaiting_reply: false,
            log_named: false,
            log_id: String::new(),
            close_reason: None,
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
                let ws_capable = self.ws_on_http && token == HTTP_LISTENER;
                let kind = Kind::Http {
                    out: BytesMut::new(),
                    close_after: false,
                    ws_capable,
                };
                if let Some(key) = self.insert_conn(stream, peer, kind, tls) {
                    let timeout = self
                        .ws_handshake_timeout()
                        .filter(|_| ws_capable)
                        .unwrap_or(HTTP_IDLE_TIMEOUT);
                    self.set_deadline(key, now + timeout);
                    // Data may already be waiting.
                    self.read_conn(key, now);
                }
            }
            WS_LISTENER => {
                let tls = self
                    .ws_tls
                    .clone()
                    .and_then(|cfg| rustls::ServerConnection::new(cfg).ok())
                    .map(Box::new);
                let handshake = ws_handshake::ServerHandshake::new(tls.is_some());
                let kind = Kind::WsHandshake {
                    handshake,
                    out: BytesMut::new(),
                };
                if let Some(key) = self.insert_conn(stream, peer, kind, tls) {
                    if let Some(t) = self.ws_handshake_timeout() {
                        self.set_deadline(key, now + t);
                    }
                    self.read_conn(key, now);
                }
            }
            _ => {}
        }
    }

    fn ws_handshake_timeout(&self) -> Option<Duration> {
        self.settings
            .websocket
            .as_ref()
            .map(|w| w.handshake_timeout)
            .filter(|t| !t.is_zero())
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
        (self.conns.get(key)?.kind.client() == Some(client)).then_some(key)
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
        if c.closing || c.read_paused || c.auth_parked.is_some() || c.awaiting_reply {
            return;
        }
        if let Kind::Ws { ws, .. } = &c.kind
            && ws.decode_paused
        {
            return;
        }
        if let Kind::Ws { ws, .. } = &c.kind
            && ws.decoder.is_inflating()
        {
            // A message is being inflated a budget per tick (`process_ws`): finish it before
            // reading more, and only from the ready queue, once per tick.
            if !c.queued_ready {
                self.process_input(key, now);
            }
            return;
        }
        if let Kind::Http { out, .. } = &c.kind
            && out.len() >= HTTP_PENDING_REPLY_BYTES
        {
            return;
        }
        if matches!(c.kind, Kind::WsHandshake { .. })
            && c.transport.tls.as_ref().is_some_and(|t| t.is_handshaking())
        {
            // Go's TLS server answers a plain-HTTP request with a readable 400 instead of an
            // alert; a TLS record starts with 0x16 (handshake).
            let mut first = [0u8; 1];
            if let Ok(1) = c.transport.stream.peek(&mut first)
                && first[0] != 0x16
                && first[0].is_ascii_alphabetic()
            {
                c.transport.tls = None;
                c.kind = Kind::Http {
                    out: BytesMut::from(
                        &b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"[..],
                    ),
                    close_after: true,
                    ws_capable: false,
                };
                log::error!(
                    "websocket: TLS handshake error from {}: client sent an HTTP request to an HTTPS server",
                    c.peer
                );
                self.mark_dirty(key);
                return;
            }
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
                    let version = tls
                        .protocol_version()
                        .map_or_else(String::new, crate::tls::version_name);
                    let cipher = tls
                        .negotiated_cipher_suite()
                        .map_or_else(String::new, crate::tls::cipher_name);
                    log::debug!(
                        "{} - TLS handshake complete (TLS version {version}, cipher suite {cipher})",
                        c.log_id,
                    );
                    self.broker.set_tls_info(client, version, cipher);
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
            Kind::WsHandshake { .. } => self.process_ws_handshake(key, now),
            Kind::Ws { .. } => self.process_ws(key, now),
        }
    }

    fn process_ws_handshake(&mut self, key: usize, now: Instant) {
        let Some(policy) = self.ws_policy.as_ref() else {
            self.schedule_reap(key, now, false);
            return;
        };
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if c.transport.tls_handshaking() {
            return;
        }
        let unix_secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .ok();
        let handshake_timeout = self
            .settings
            .websocket
            .as_ref()
            .map(|w| w.handshake_timeout)
            .filter(|t| !t.is_zero());
        let mut out = Vec::new();
        let upgrade = loop {
            let Kind::WsHandshake {
                handshake,
                out: pending,
            } = &mut c.kind
            else {
                return;
            };
            let res = handshake.handle_input(policy, &c.in_buf, unix_secs, &mut out);
            match res {
                Ok(None) => {
                    if !out.is_empty() {
                        pending.extend_from_slice(&out);
                        if !c.dirty {
                            c.dirty = true;
                            self.dirty.push(key);
                        }
                    }
                    return;
                }
                Ok(Some(upgrade)) => {
                    // Refusals of earlier requests on this connection go out first.
                    let mut head = std::mem::take(pending);
                    head.extend_from_slice(&out);
                    out = head.to_vec();
                    break upgrade;
                }
                Err(reject) => {
                    log::error!("{} - websocket handshake error: {reject}", c.peer);
                    match handshake.after_reject() {
                        Some(after) if after.keep_alive() => {
                            pending.extend_from_slice(&out);
                            out.clear();
                            c.in_buf.advance(after.consumed().min(c.in_buf.len()));
                            handshake.next_request();
                            if let Some(t) = handshake_timeout {
                                c.deadline = Some(now + t);
                                self.timers.push(Reverse((now + t, key, c.uid)));
                            }
                            if !c.dirty {
                                c.dirty = true;
                                self.dirty.push(key);
                            }
                            if c.in_buf.is_empty() {
                                return;
                            }
                        }
                        _ => {
                            let mut all = std::mem::take(pending);
                            all.extend_from_slice(&out);
                            c.kind = Kind::Http {
                                out: all,
                                close_after: true,
                                ws_capable: false,
                            };
                            c.in_buf.clear();
                            if !c.dirty {
                                c.dirty = true;
                                self.dirty.push(key);
                            }
                            return;
                        }
                    }
                }
            }
        };
        c.in_buf.advance(upgrade.head_len.min(c.in_buf.len()));
        c.deadline = None;
        if upgrade.kind != ws_handshake::PathKind::Client {
            // No leafnode (or MQTT) listener: nats-server closes right after the 101.
            log::debug!(
                "{} - websocket {} connections are not served; closing",
                c.peer,
                upgrade.kind.connection_type()
            );
            c.kind = Kind::Http {
                out: BytesMut::from(&out[..]),
                close_after: true,
                ws_capable: false,
            };
            self.mark_dirty(key);
            return;
        }
        let peer = c.peer;
        let mut params = ClientParams::new(ConnectionType::WebSocket, peer);
        params.forwarded_for = upgrade.forwarded_for.map(|ip| ip.to_string());
        if let Some(ws) = &self.settings.websocket {
            let h = &ws.handshake;
            for (name, value) in [
                (&h.jwt_cookie, &upgrade.cookies.jwt),
                (&h.user_cookie, &upgrade.cookies.user),
                (&h.pass_cookie, &upgrade.cookies.pass),
                (&h.token_cookie, &upgrade.cookies.token),
            ] {
                if let (Some(n), Some(v)) = (name, value) {
                    params.cookies.push((n.clone(), v.clone()));
                }
            }
        }
        if let Some(tls) = c.transport.tls.as_ref() {
            params.tls_version = tls.protocol_version().map(crate::tls::version_name);
            params.tls_cipher = tls.negotiated_cipher_suite().map(crate::tls::cipher_name);
        }
        let mut decoder_cfg = ws_codec::DecoderConfig::server().with_deflate(upgrade.compression);
        if upgrade.no_masking {
            decoder_cfg = decoder_cfg.with_no_masking();
        }
        let max_payload = self.broker.config().limits.max_payload;
        let mut limits = decoder_cfg.limits;
        // Compressed messages are handed to the parser in chunks, so one batch may inflate to
        // many PUBs: the total cap only bounds work (64 MiB, or one max_payload PUB plus its
        // control line), and memory is bounded by the chunk.
        limits.max_inflated_chunk_bytes = 64 * 1024;
        limits.max_inflated_message_bytes = limits
            .max_inflated_message_bytes
            .max(64 << 20)
            .max(max_payload.saturating_add(4096));
        limits.max_compressed_message_bytes = limits.max_compressed_message_bytes.max(
            u64::try_from(max_payload.saturating_mul(8))
                .unwrap_or(u64::MAX)
                .min(64 << 20),
        );
        decoder_cfg = decoder_cfg.with_limits(limits);
        let encoder_cfg = ws_codec::EncoderConfig {
            max_frame_payload: if upgrade.browser {
                std::num::NonZeroUsize::new(ws_codec::BROWSER_MAX_FRAME_BYTES)
            } else {
                None
            },
            deflate: upgrade.compression,
            fragment_compressed: !upgrade.safari_no_compressed_fragments,
            ..ws_codec::EncoderConfig::default()
        };
        let mut wire = VecDeque::new();
        wire.push_back(Bytes::from(out));
        let forwarded = params.forwarded_for.clone();
        let client = self.broker.register_client(now, params);
        let cid = self.broker.cid(client).unwrap_or(0);
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        c.kind = Kind::Ws {
            client,
            ws: Box::new(WsConn {
                decoder: ws_codec::Decoder::new(decoder_cfg),
                encoder: ws_codec::Encoder::server(encoder_cfg),
                wire,
                nats_in: BytesMut::new(),
                close_sent: false,
                owed_close: None,
                frame_remaining: 0,
                owed_controls: 0,
                decode_paused: false,
            }),
        };
        c.log_id = match &forwarded {
            Some(ip) => format!("{ip}/{peer} - wid:{cid}"),
            None => format!("{peer} - wid:{cid}"),
        };
        log::debug!("{} - Client connection created", c.log_id);
        if upgrade.compression {
            log::trace!("{} - Websocket compression negotiated", c.log_id);
        }
        self.link_client(client, key);
        self.mark_dirty(key);
        if self.conns.get(key).is_some_and(|c| !c.in_buf.is_empty()) {
            self.process_ws(key, now);
        }
    }

    fn process_ws(&mut self, key: usize, now: Instant) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let Kind::Ws { client, ws } = &mut c.kind else {
            return;
        };
        let client = *client;
        let mut peer_closed = false;
        let mut failed: Option<ws_codec::ProtocolError> = None;
        let mut queued_control = false;
        let mut moved = false;
        let mut handed = 0;
        let mut inflate_more = false;
        loop {
            if handed >= INFLATE_BYTES_PER_TICK && ws.decoder.is_inflating() {
                // The rest of this message is inflated on the next ticks, so that one
                // compressed batch (up to 64 MiB inflated) does not pause everyone else.
                inflate_more = true;
                break;
            }
            if ws.owes_too_much() {
                // Resumed by `flush_conn` once the replies are written.
                ws.decode_paused = true;
                break;
            }
            let decoded = ws.decoder.decode(&mut c.in_buf, &mut self.inflater);
            queued_control |= ws.queue_control_replies(&mut self.arena);
            match decoded {
                Ok(Some(ws_codec::Event::Data(data))) => {
                    handed += data.len();
                    moved = feed_ws_payload(&mut self.broker, client, now, &mut ws.nats_in, data);
                }
                Ok(Some(ws_codec::Event::Message(m))) => {
                    ws.nats_in.extend_from_slice(&m.payload);
                    moved = false;
                }
                Ok(Some(ws_codec::Event::Close(_))) => peer_closed = true,
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = &failed
            && !ws.close_sent
            && ws.owed_close.is_none()
        {
            // Sent after the output of what was decoded before the error (`write_ws`).
            ws.owed_close = Some(ws_codec::Control::Close(Some(e.close_frame())));
        }
        if !ws.nats_in.is_empty() {
            self.broker.handle_input(client, now, &mut ws.nats_in);
        }
        if ws.nats_in.is_empty() && ws.nats_in.capacity() > 0 {
            // Idle WebSocket connections must stay cheap: an empty buffer gives its memory back.
            ws.nats_in = BytesMut::new();
        } else if moved {
            // A partial operation left in a moved payload would keep the whole read buffer
            // shared, and the next read would have to allocate a new one: copy the tail out
            // (at most one read's worth; later pieces are appended to this copy).
            ws.nats_in = BytesMut::from(&ws.nats_in[..]);
        }
        let log_id = c.log_id.clone();
        let backlog = ws.backlog();
        self.broker.set_transport_backlog(client, backlog, now);
        if queued_control {
            self.mark_dirty(key);
        }
        if inflate_more {
            self.queue_ready(key);
        }
        if let Some(e) = failed {
            log::debug!("{log_id} - websocket protocol error: {e}");
            self.close_conn(key, now, CloseReason::ProtocolViolation);
        } else if peer_closed {
            self.close_conn(key, now, CloseReason::ClientClosed);
        } else {
            let pending = self.broker.outbound(client).map_or(0, |q| q.len());
            if pending > READ_PAUSE_PENDING_BYTES
                && let Some(c) = self.conns.get_mut(key)
            {
                c.read_paused = true;
            }
        }
    }

    fn process_http(&mut self, key: usize, now: Instant) {
        use crate::monitor_request::{self, Endpoint, Head};
        loop {
            let Some(c) = self.conns.get_mut(key) else {
                return;
            };
            if c.transport.tls_handshaking() || c.closing || c.awaiting_reply {
                return;
            }
            if let Kind::Http { out, .. } = &c.kind
                && out.len() >= HTTP_PENDING_REPLY_BYTES
            {
                // Resumed by `flush_conn` once the replies are written.
                return;
            }
            let head = match monitor_request::read_head(&c.in_buf, MAX_HTTP_HEAD_BYTES) {
                Head::Complete(head) => head,
                Head::Partial => return,
                refused => {
                    if let Some(resp) = refused.refusal() {
                        self.http_reply(key, &resp, false);
                    }
                    return;
                }
            };
            let ws_capable = matches!(
                c.kind,
                Kind::Http {
                    ws_capable: true,
                    ..
                }
            );
            if ws_capable && head.websocket_upgrade {
                c.kind = Kind::WsHandshake {
                    handshake: ws_handshake::ServerHandshake::new(false),
                    out: BytesMut::new(),
                };
                self.process_ws_handshake(key, now);
                return;
            }
            let _ = c.in_buf.split_to(head.head_len);
            let resp = match Endpoint::route(&head.path, &self.settings.http_base_path) {
                Some(endpoint) => {
                    *self
                        .http_req_stats
                        .entry(endpoint.path().to_owned())
                        .or_insert(0) += 1;
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
                        cpu_percent: cpu_percent(now.saturating_duration_since(self.start)),
                    };
                    match monitor::answer(endpoint, &head.query, &mut self.broker, &ctx) {
                        monitor::Reply::Ready(resp) => resp,
                        monitor::Reply::Connz(page) => {
                            self.defer_reply(key, page, head.keep_alive, now);
                            return;
                        }
                    }
                }
                None => monitor_request::not_found(),
            };
            self.http_reply(key, &resp, head.keep_alive);
            self.set_deadline(key, now + HTTP_IDLE_TIMEOUT);
            if !head.keep_alive {
                return;
            }
        }
    }

    fn http_reply(&mut self, key: usize, resp: &monitor::Response, keep_alive: bool) {
        self.http_reply_bytes(key, &resp.to_bytes(keep_alive), keep_alive);
    }

    fn http_reply_bytes(&mut self, key: usize, bytes: &[u8], keep_alive: bool) {
        if let Some(c) = self.conns.get_mut(key)
            && let Kind::Http {
                out, close_after, ..
            } = &mut c.kind
        {
            out.extend_from_slice(bytes);
            if !keep_alive {
                *close_after = true;
                c.in_buf.clear();
            }
            self.mark_dirty(key);
        }
    }

    /// Leaves a `/connz` page to `renders`; the connection is not read until its reply is in.
    fn defer_reply(
        &mut self,
        key: usize,
        page: Box<monitor::ConnzPage>,
        keep_alive: bool,
        now: Instant,
    ) {
        if let Some(c) = self.conns.get_mut(key) {
            c.awaiting_reply = true;
            self.renders.push(key, c.uid, keep_alive, page);
            self.set_deadline(key, now + HTTP_IDLE_TIMEOUT);
        }
    }

    /// Takes a bounded part of the deferred replies' subscriptions (one tick's worth).
    fn step_renders(&mut self) {
        let conns = &self.conns;
        self.renders
            .step(&self.broker, RENDER_SUBS_PER_TICK, |key, uid| {
                conns
                    .get(key)
                    .is_some_and(|c| c.uid == uid && c.awaiting_reply && !c.closing)
            });
    }

    /// Queues the deferred replies that are ready, and resumes their connections.
    fn rendered_replies(&mut self, now: Instant) {
        while let Some(done) = self.renders.poll() {
            let Some(c) = self.conns.get_mut(done.key) else {
                continue;
            };
            if c.uid != done.uid || !c.awaiting_reply {
                continue;
            }
            c.awaiting_reply = false;
            self.http_reply_bytes(done.key, &done.bytes, done.keep_alive);
            if done.keep_alive {
                // Answer what was pipelined behind it, then read again.
                self.process_input(done.key, now);
                self.queue_ready(done.key);
            }
        }
    }

    /// Closes a connection: through the broker for clients (which emits `Closed`), directly
    /// otherwise.
    fn close_conn(&mut self, key: usize, now: Instant, reason: CloseReason) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        match c.kind.client() {
            Some(client) => {
                if self.broker.is_open(client) {
                    self.broker.close_client(client, now, reason);
                } else {
                    self.schedule_reap(key, now, false);
                }
            }
            None => {
                let flush = matches!(c.kind, Kind::Http { .. });
                self.schedule_reap(key, now, flush && reason.flushes());
            }
        }
    }

    fn schedule_reap(&mut self, key: usize, now: Instant, flush: bool) {
        if let Some(c) = self.conns.get_mut(key) {
            if let Some(check) = &c.auth_parked {
                // Closing: its password check is moot.
                check.withdraw();
            }
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
                    if let Some(c) = self.conns.get_mut(key) {
                        c.close_reason = Some(reason);
                        if reason == CloseReason::MaxConnectionsExceeded {
                            // nats-server's maxConnExceeded: sendErrAndErr.
                            log::error!("{} - maximum connections exceeded", c.log_id);
                        }
                        log::debug!("{} - Client connection closed: {reason}", c.log_id);
                    }
                    self.schedule_reap(key, now, reason.flushes());
                }
                Event::Connected(client) => self.name_in_log(client, now),
                Event::SlowConsumer {
                    client,
                    reason,
                    pending_bytes,
                    chunks,
                } => {
                    if let Some(c) = self.conn_of(client).and_then(|k| self.conns.get(k)) {
                        // nats-server's texts (`client.go`, queueOutbound and
                        // handleWriteTimeout), logged as notices.
                        if reason == CloseReason::SlowConsumerWriteDeadline {
                            log::info!(
                                "{} - Slow Consumer Detected: WriteDeadline of {} exceeded with {chunks} chunks of {pending_bytes} total bytes.",
                                c.log_id,
                                gotext::format_std_duration(self.broker.config().write_deadline),
                            );
                        } else {
                            log::info!(
                                "{} - Slow Consumer Detected: MaxPending of {} Exceeded",
                                c.log_id,
                                self.broker.config().limits.max_pending,
                            );
                        }
                    }
                }
                Event::SubscriptionRemoved { detail, .. } => log::info!("{detail}"),
                Event::Trace { client, line } => {
                    if let Some(key) = self.conn_of(client)
                        && let Some(c) = self.conns.get(key)
                    {
                        log::trace!("{} - {line}", c.log_id);
                    }
                }
                Event::CheckPassword {
                    client,
                    check,
                    parked,
                } => {
                    let key = self.conn_of(client);
                    let source = match key.and_then(|k| self.conns.get(k)) {
                        Some(c) if parked => crate::hasher::Source::Client(c.peer.ip()),
                        _ => crate::hasher::Source::Recheck,
                    };
                    let submitted = self.hasher.submit(client, source, check);
                    if parked {
                        // The connection is not read until the verdict is in (even one
                        // answered at once waits in the hasher until the next wake-up), and
                        // closing it withdraws a queued check.
                        if let Some(c) = key.and_then(|k| self.conns.get_mut(k)) {
                            c.auth_parked = Some(submitted);
                        }
                    } else if let crate::hasher::Submitted::Queued(withdraw) = submitted {
                        // A re-check after a reload may stand for several clients: only the
                        // next reload withdraws it.
                        self.recheck_jobs.push(withdraw);
                    }
                }
                Event::AuthFailed { client, detail } => {
                    // nats-server names the client from its CONNECT before authenticating it.
                    self.name_in_log(client, now);
                    if let Some(key) = self.conn_of(client)
                        && let Some(c) = self.conns.get(key)
                    {
                        // `detail` is the whole reference text ("authentication error - User
                        // \"bob\"").
                        if detail.is_empty() {
                            log::error!("{} - authentication error", c.log_id);
                        } else {
                            log::error!("{} - {detail}", c.log_id);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Appends nats-server's `"v<version>:<lang>:<name>"` (empty parts left out) to the
    /// client's log prefix once its CONNECT has been read.
    fn name_in_log(&mut self, client: ClientId, now: Instant) {
        let Some(key) = self.conn_of(client) else {
            return;
        };
        if self.conns.get(key).is_none_or(|c| c.log_named) {
            return;
        }
        let Some(info) = self.broker.client_summary(client, now) else {
            return;
        };
        let mut parts: Vec<String> = Vec::new();
        if !info.version.is_empty() {
            parts.push(format!("v{}", info.version));
        }
        parts.extend([info.lang, info.name].into_iter().filter(|s| !s.is_empty()));
        if let Some(c) = self.conns.get_mut(key)
            && !parts.is_empty()
        {
            let ncs = broker::auth::go_quote(parts.join(":").as_bytes());
            c.log_id = format!("{} - {ncs}", c.log_id);
            c.log_named = true;
        }
    }

    /// Resumes clients whose password check finished.
    fn password_verdicts(&mut self, now: Instant) {
        while let Some(v) = self.hasher.poll() {
            self.broker
                .password_checked(v.client, &v.check, v.verified, now);
            // After a reload the broker may have asked for another check instead; a verdict
            // for a re-check of a running client resumes nothing.
            if let Some(key) = self.conn_of(v.client)
                && !self.broker.is_parked(v.client)
                && let Some(c) = self.conns.get_mut(key)
                && c.auth_parked.is_some()
            {
                c.auth_parked = None;
                // Parse what arrived with the CONNECT, then read what came meanwhile.
                self.process_input(key, now);
                self.queue_ready(key);
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
                Kind::Ws { client, ws } => {
                    let client = *client;
                    let closing_reason = c.close_reason.filter(|r| c.closing && r.flushes());
                    match self.broker.outbound(client) {
                        Some(q) => write_ws(
                            &mut c.transport,
                            q,
                            ws,
                            closing_reason,
                            &mut self.deflater,
                            &mut self.arena,
                        ),
                        None => Ok(true),
                    }
                }
                Kind::WsHandshake { out, .. } => write_buf(&mut c.transport, out),
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
        if let Some(client) = c.kind.client() {
            let mut resume_decoding = false;
            if let Kind::Ws { ws, .. } = &mut c.kind {
                self.broker.set_transport_backlog(client, ws.backlog(), now);
                if ws.decode_paused && !ws.owes_too_much() {
                    ws.decode_paused = false;
                    resume_decoding = true;
                }
            }
            self.broker.handle_flushed(client, now);
            if resume_decoding {
                // Decode what was left in the read buffer, then read again.
                self.process_input(key, now);
                self.queue_ready(key);
            }
            let Some(c) = self.conns.get_mut(key) else {
                return;
            };
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
                match c.kind.client() {
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
        if let Kind::Http { out, .. } = &c.kind
            && out.is_empty()
            && !c.in_buf.is_empty()
        {
            // Answer the pipelined requests held back, then read again.
            self.process_input(key, now);
            self.queue_ready(key);
        }
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
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
                Kind::Nats { .. } | Kind::Ws { .. } => {}
                Kind::WsHandshake { .. } => {
                    let what = if handshaking {
                        "TLS handshake"
                    } else {
                        "websocket handshake"
                    };
                    log::error!("websocket: {what} error from {}: i/o timeout", c.peer);
                    self.schedule_reap(key, now, false);
                }
                Kind::Http {
                    ws_capable: true, ..
                } if self.ws_on_http => {
                    self.schedule_reap(key, now, false);
                }
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
            let client = c.kind.client();
            let pending = !c.write_failed
                && (c.transport.has_pending()
                    || match &c.kind {
                        Kind::Nats { client } => {
                            self.broker.outbound(*client).is_some_and(|q| !q.is_empty())
                        }
                        Kind::Ws { client, ws } => {
                            !ws.wire.is_empty()
                                || self.broker.outbound(*client).is_some_and(|q| !q.is_empty())
                                || (!ws.close_sent
                                    && c.close_reason.is_some_and(CloseReason::flushes))
                        }
                        Kind::WsHandshake { out, .. } => !out.is_empty(),
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
            if let Some(check) = &c.auth_parked {
                check.withdraw();
            }
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
            .filter(|(_, c)| c.kind.client().is_some())
            .count();
        if n_clients == 0 {
            self.begin_shutdown(now, Exit::Clean);
            return;
        }
        // Tell protocol-1 clients (async INFO capable) that this server is going away.
        let clients: Vec<(usize, ClientId)> = self
            .conns
            .iter()
            .filter_map(|(k, c)| c.kind.client().map(|id| (k, id)))
            .collect();
        for (key, client) in clients {
            if !self.broker.connect_received(client) {
                continue;
            }
            let Some(line) = self.broker.info_line(client) else {
                continue;
            };
            let Some(json_end) = line.iter().rposition(|b| *b == b'}') else {
                continue;
            };
            let mut ldm = line.get(..json_end).unwrap_or(&[]).to_vec();
            ldm.extend_from_slice(b",\"ldm\":true");
            ldm.extend_from_slice(line.get(json_end..).unwrap_or(&[]));
            if let Some(q) = self.broker.outbound(client) {
                q.push_slice(&ldm);
                self.mark_dirty(key);
            }
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
        // Without randomness the clients close at the middle of the interval.
        if crate::ids::os_random(&mut jitter).is_err() {
            jitter = [0, 0x80];
        }
        let frac = f64::from(u16::from_le_bytes(jitter)) / 65536.0;
        ld.next_close = Some(now + interval.mul_f64(0.5 + frac / 2.0));
        let next = self
            .conns
            .iter()
            .find(|(_, c)| c.kind.client().is_some() && !c.closing)
            .map(|(k, _)| k);
        match next {
            Some(key) => self.close_conn(key, now, CloseReason::ServerShutdown),
            None => self.begin_shutdown(now, Exit::Clean),
        }
    }

    fn reload(&mut self, now: Instant) {
        if self.settings.config_file.is_none() {
            log::error!(
                "Failed to reload server configuration: can only reload config when a file is provided using -c or --config"
            );
            return;
        }
        match self.try_reload(now) {
            Ok(changes) => {
                for c in changes {
                    log::info!("Reloaded: {c}");
                }
                self.config_load_time = now;
                log::info!("Reloaded server configuration");
            }
            Err(e) => log::error!("Failed to reload server configuration: {e}"),
        }
    }

    /// Loads the file again, checks it, builds every new piece (TLS, upgrade policy, the
    /// websocket listener when its address changed) and only then swaps them in, so a bad
    /// reload leaves the running configuration untouched.
    fn try_reload(&mut self, now: Instant) -> Result<Vec<String>, String> {
        let mut new = crate::settings::load(&self.cli)?;
        // natsws reloads every websocket property (nats-server refuses all but TLS), so the
        // reference's check runs with the websocket block taken as unchanged.
        let mut checked = new.options.clone();
        checked
            .websocket
            .clone_from(&self.settings.options.websocket);
        self.settings
            .options
            .check_reload(&checked)
            .map_err(|e| e.to_string())?;
        let old = &self.settings;
        let mut changes = Vec::new();
        let client_tls = match &new.client_tls {
            Some(spec) if self.client_tls.is_some() => Some(spec.load()?),
            Some(_) => {
                return Err(
                    "config reload not supported for TLS: enabling TLS needs a restart".to_owned(),
                );
            }
            None if self.client_tls.is_some() => {
                return Err(
                    "config reload not supported for TLS: disabling TLS needs a restart".to_owned(),
                );
            }
            None => None,
        };
        if new.client_tls != old.client_tls {
            changes.push("tls".to_owned());
        }
        let (ws_policy, ws_tls) = match &new.websocket {
            Some(ws) => (
                Some(
                    ws_handshake::Policy::new(&ws.handshake)
                        .map_err(|e| format!("websocket: {e}"))?,
                ),
                match &ws.tls {
                    Some(spec) => Some(spec.load()?),
                    None => None,
                },
            ),
            None => (None, None),
        };
        // A changed websocket address (or turning it on) binds a new listener first.
        let mut new_ws_listener: Option<Option<TcpListener>> = None;
        let mut new_ws_port = self.bound.ws_port;
        let mut new_ws_on_http = self.ws_on_http;
        match (&old.websocket, &new.websocket) {
            (Some(o), Some(n))
                if o.listen == n.listen
                    || (n.listen.port < 0 && o.listen.host == n.listen.host) =>
            {
                if n.listen.port < 0
                    && let Some(w) = new.websocket.as_mut()
                {
                    w.listen.clone_from(&o.listen);
                }
            }
            (_, Some(n)) => {
                let shared = new.http.as_ref().is_some_and(|h| {
                    h.host == n.listen.host && h.port == n.listen.port && h.port > 0
                }) && ws_tls.is_none();
                if shared {
                    new_ws_listener = Some(None);
                    new_ws_port = self.bound.http_port;
                    new_ws_on_http = true;
                } else {
                    let l = bind(&n.listen.host, n.listen.bind_port()).map_err(|e| {
                        format!(
                            "Unable to listen for websocket connections: listen tcp {}: {e}",
                            host_port(&n.listen.host, n.listen.bind_port())
                        )
                    })?;
                    new_ws_port = Some(l.local_addr().map(|a| a.port()).unwrap_or(0));
                    new_ws_listener = Some(Some(l));
                    new_ws_on_http = false;
                }
                changes.push("websocket listen address".to_owned());
            }
            (Some(_), None) => {
                new_ws_listener = Some(None);
                new_ws_port = None;
                new_ws_on_http = false;
                changes.push("websocket disabled".to_owned());
            }
            (None, None) => {}
        }
        if let (Some(o), Some(n)) = (&old.websocket, &new.websocket) {
            for (what, changed) in [
                (
                    "websocket allowed_origins/same_origin",
                    o.handshake.allowed_origins != n.handshake.allowed_origins
                        || o.same_origin != n.same_origin,
                ),
                ("websocket compression", o.compression != n.compression),
                (
                    "websocket cookies",
                    o.handshake.jwt_cookie != n.handshake.jwt_cookie
                        || o.handshake.user_cookie != n.handshake.user_cookie
                        || o.handshake.pass_cookie != n.handshake.pass_cookie
                        || o.handshake.token_cookie != n.handshake.token_cookie,
                ),
                (
                    "websocket headers",
                    o.handshake.headers != n.handshake.headers,
                ),
                (
                    "websocket handshake_timeout",
                    o.handshake_timeout != n.handshake_timeout,
                ),
                ("websocket tls", o.tls != n.tls),
                (
                    "websocket authorization",
                    old.auth.websocket != new.auth.websocket,
                ),
            ] {
                if changed {
                    changes.push(what.to_owned());
                }
            }
        }
        if new.log != old.log {
            crate::logger::configure(&new.log).map_err(|e| format!("log file: {e}"))?;
            changes.push("logging".to_owned());
        }
        if new.auth != old.auth {
            changes.push("authorization".to_owned());
        }
        if new.broker.limits != old.broker.limits {
            changes.push("limits".to_owned());
        }
        // Everything is built: swap it in.
        if let Some(listener) = new_ws_listener {
            if let Some(mut l) = self.ws_listener.take() {
                let _ = self.poll.registry().deregister(&mut l);
            }
            if let Some(mut l) = listener {
                self.poll
                    .registry()
                    .register(&mut l, WS_LISTENER, Interest::READABLE)
                    .map_err(|e| e.to_string())?;
                self.ws_listener = Some(l);
            }
            if let (Some(ws), Some(port)) = (&new.websocket, new_ws_port) {
                log::info!(
                    "Listening for websocket clients on {}://{}",
                    ws.scheme(),
                    host_port(&ws.listen.host, port)
                );
            }
        }
        self.bound.ws_port = new_ws_port;
        self.ws_on_http = new_ws_on_http;
        self.ws_policy = ws_policy;
        self.ws_tls = ws_tls;
        self.client_tls = client_tls;
        // The new auth config must compile before anything is swapped in.
        Broker::try_new(new.broker.clone(), now).map_err(|e| e.to_string())?;
        let mut cfg = new.broker.clone();
        let current = self.broker.config();
        cfg.server_id.clone_from(&current.server_id);
        cfg.seed = current.seed;
        cfg.client_listener = current.client_listener.clone();
        cfg.websocket_listener = match (&new.websocket, new_ws_port) {
            (Some(ws), Some(port)) => Some(broker::ListenerInfo {
                host: ws.listen.host.clone(),
                port,
                tls_required: self.ws_tls.is_some(),
                tls_verify: ws.tls.as_ref().is_some_and(|t| t.verify),
                tls_available: false,
            }),
            _ => None,
        };
        // The new configuration re-checks every session afresh: re-checks still queued from an
        // earlier reload are moot.
        for job in self.recheck_jobs.drain(..) {
            job.withdraw();
        }
        self.broker.reload(cfg, now);
        new.broker
            .server_id
            .clone_from(&self.broker.config().server_id);
        // A lowered max_connections closes clients over the new limit, newest first.
        let max = self.broker.config().limits.max_connections;
        let open = self.broker.stats().connections;
        if open > max {
            let mut ids: Vec<ClientId> = self
                .broker
                .clients()
                .into_iter()
                .filter(|id| self.broker.is_open(*id))
                .collect();
            ids.reverse();
            for id in ids.into_iter().take(open - max) {
                self.broker.close_for_max_connections(id, now);
            }
            changes.push(format!("max_connections: closed {} clients", open - max));
        }
        self.settings = new;
        if let Some(path) = self.ports_file.clone() {
            let _ = std::fs::write(path, self.ports_json());
        }
        Ok(changes)
    }
}

/// Writes a plain byte buffer until it is empty or the socket would block.
/// Payloads at least this large are moved into the NATS input rather than copied.
const MOVE_PAYLOAD_BYTES: usize = 4 * 1024;

/// Appends a decoded WebSocket payload to the client's NATS input. A large uncompressed payload
/// is a slice of the read buffer that nothing else holds: the complete operations already
/// pending are parsed first, so that it usually becomes the input as is, and it is parsed at
/// once, so that a 16 KiB message reaches the broker (and, shared, its subscribers) without a
/// copy. Returns whether the input is now such a moved slice (it then shares the read buffer's
/// allocation); any other append copies, and the input is then a buffer of its own.
fn feed_ws_payload(
    broker: &mut Broker,
    client: ClientId,
    now: Instant,
    nats_in: &mut BytesMut,
    data: BytesMut,
) -> bool {
    if data.len() >= MOVE_PAYLOAD_BYTES && !nats_in.is_empty() {
        broker.handle_input(client, now, nats_in);
    }
    if data.len() < MOVE_PAYLOAD_BYTES || !nats_in.is_empty() {
        nats_in.extend_from_slice(&data);
        return false;
    }
    *nats_in = data;
    broker.handle_input(client, now, nats_in);
    true
}

fn write_buf(transport: &mut Transport, out: &mut BytesMut) -> io::Result<bool> {
    while !out.is_empty() {
        let n = transport.write_vectored(&[IoSlice::new(out)])?;
        if n == 0 {
            return Ok(false);
        }
        out.advance(n.min(out.len()));
    }
    Ok(true)
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

/// Frames and writes a WebSocket client's output at flush time: the frames already built
/// first, then everything queued by the broker as one flush (`wsCollapsePtoNB`), then the
/// close frame when the connection is closing. New output is framed only once the previous
/// frames are fully written, so the broker's queue (and its `max_pending`) bounds memory.
fn write_ws(
    transport: &mut Transport,
    q: &mut broker::OutQueue,
    ws: &mut WsConn,
    closing: Option<CloseReason>,
    deflater: &mut ws_codec::Deflater,
    arena: &mut BytesMut,
) -> io::Result<bool> {
    let cfg = *ws.encoder.config();
    // Without compression and without a frame size limit a flush is one frame: write its
    // header from ws-codec and the queued bytes in place, with no copy.
    let in_place = !cfg.deflate && cfg.max_frame_payload.is_none();
    loop {
        if ws.wire.is_empty() && ws.frame_remaining == 0 {
            // Every control reply framed so far is written.
            ws.owed_controls = 0;
            if !q.is_empty() && in_place {
                let header = ws_codec::FrameHeader {
                    fin: true,
                    rsv1: false,
                    opcode: ws_codec::OpCode::Binary,
                    mask: None,
                    payload_len: q.len() as u64,
                };
                let mut buf = [0u8; ws_codec::MAX_HEADER_BYTES];
                let n = ws_codec::encode_header(&header, &mut buf);
                ws.wire
                    .push_back(Bytes::copy_from_slice(buf.get(..n).unwrap_or(&[])));
                ws.frame_remaining = q.len();
            } else if !q.is_empty() {
                // Compression or browser framing: the encoder reads the queued chunks as they
                // are (no flattening copy).
                let mut chunks = Vec::new();
                q.drain_chunks(&mut chunks);
                ws.encoder
                    .encode_stream(&chunks, deflater, arena, &mut ws.wire)
                    .map_err(|e| io::Error::other(e.to_string()))?;
            } else if let Some(reason) = closing
                && !ws.close_sent
            {
                ws.close_sent = true;
                let close = ws
                    .owed_close
                    .take()
                    .unwrap_or_else(|| ws_codec::Control::Close(Some(ws_close_frame(reason))));
                ws.encoder.encode_control(&close, arena, &mut ws.wire);
            } else {
                if ws.wire.capacity() > 0 {
                    ws.wire = VecDeque::new();
                }
                return Ok(true);
            }
        }
        let mut slices = [IoSlice::new(&[]); MAX_IOSLICES];
        let mut n = 0;
        for (slot, chunk) in slices.iter_mut().zip(ws.wire.iter()) {
            *slot = IoSlice::new(chunk);
            n += 1;
        }
        let wire_len: usize = ws.wire.iter().map(Bytes::len).sum();
        if ws.frame_remaining > 0 && n == ws.wire.len() {
            // The payload of the in-place frame follows its header.
            let mut left = ws.frame_remaining;
            for chunk in q.chunks() {
                if left == 0 || n >= MAX_IOSLICES {
                    break;
                }
                let take = chunk.len().min(left);
                if let Some(slot) = slices.get_mut(n) {
                    *slot = IoSlice::new(chunk.get(..take).unwrap_or(&[]));
                }
                left -= take;
                n += 1;
            }
        }
        let mut written = transport.write_vectored(slices.get(..n).unwrap_or(&[]))?;
        if written == 0 {
            return Ok(false);
        }
        let from_wire = written.min(wire_len);
        written -= from_wire;
        let mut wire_left = from_wire;
        while wire_left > 0 {
            let Some(front) = ws.wire.front_mut() else {
                break;
            };
            if front.len() <= wire_left {
                wire_left -= front.len();
                ws.wire.pop_front();
            } else {
                front.advance(wire_left);
                wire_left = 0;
            }
        }
        if written > 0 {
            let n_payload = written.min(ws.frame_remaining);
            q.advance(n_payload);
            ws.frame_remaining -= n_payload;
        }
    }
}

/// The close frame for the broker's reason for closing a client: ws-codec's mapping of
/// nats-server's close reasons, which never puts a reserved code on the wire.
fn ws_close_frame(reason: CloseReason) -> ws_codec::CloseFrame {
    use ws_codec::CloseReason as Ws;
    let ws = match reason {
        CloseReason::ClientClosed => Ws::ClientClosed,
        CloseReason::AuthenticationTimeout => Ws::AuthenticationTimeout,
        CloseReason::AuthenticationFailure => Ws::AuthenticationViolation,
        CloseReason::TlsHandshakeFailure => Ws::TlsHandshakeError,
        CloseReason::SlowConsumerPendingBytes => Ws::SlowConsumerPendingBytes,
        CloseReason::SlowConsumerWriteDeadline => Ws::SlowConsumerWriteDeadline,
        CloseReason::WriteError => Ws::WriteError,
        CloseReason::ReadError => Ws::ReadError,
        CloseReason::ParseError => Ws::ParseError,
        CloseReason::StaleConnection => Ws::StaleConnection,
        CloseReason::ProtocolViolation => Ws::ProtocolViolation,
        CloseReason::BadClientProtocolVersion => Ws::BadClientProtocolVersion,
        CloseReason::IncorrectPort => Ws::WrongPort,
        CloseReason::MaxConnectionsExceeded => Ws::MaxConnectionsExceeded,
        CloseReason::MaxPayloadExceeded => Ws::MaxPayloadExceeded,
        CloseReason::MaxControlLineExceeded => Ws::MaxControlLineExceeded,
        CloseReason::ServerShutdown => Ws::ServerShutdown,
        CloseReason::NoRespondersRequiresHeaders => Ws::NoRespondersRequiresHeaders,
        _ => {
            return ws_codec::CloseFrame::new(ws_codec::CloseCode::INTERNAL_ERROR, reason.as_str());
        }
    };
    ws.close_frame()
}

/// Average CPU use since start, in % of one core (what nats-server's `ps -o pcpu` shows),
/// from `/proc/self/stat` (utime + stime in clock ticks of 1/100 s).
fn cpu_percent(uptime: Duration) -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses and may contain spaces.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    let secs = uptime.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    ((ticks / 100.0) / secs * 1000.0).round() / 10.0
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_frames_never_carry_a_reserved_code() {
        for reason in [
            CloseReason::ClientClosed,
            CloseReason::AuthenticationTimeout,
            CloseReason::AuthenticationFailure,
            CloseReason::TlsHandshakeFailure,
            CloseReason::SlowConsumerPendingBytes,
            CloseReason::SlowConsumerWriteDeadline,
            CloseReason::WriteError,
            CloseReason::ReadError,
            CloseReason::ParseError,
            CloseReason::StaleConnection,
            CloseReason::ProtocolViolation,
            CloseReason::BadClientProtocolVersion,
            CloseReason::IncorrectPort,
            CloseReason::MaxConnectionsExceeded,
            CloseReason::MaxPayloadExceeded,
            CloseReason::MaxControlLineExceeded,
            CloseReason::ServerShutdown,
            CloseReason::NoRespondersRequiresHeaders,
        ] {
            let frame = ws_close_frame(reason);
            assert!(frame.code().is_sendable(), "{reason:?}: {}", frame.code());
            assert_eq!(frame.reason(), reason.as_str(), "{reason:?}");
        }
        assert_eq!(ws_close_frame(CloseReason::ReadError).code().0, 1001);
        assert_eq!(
            ws_close_frame(CloseReason::ProtocolViolation).code().0,
            1002
        );
    }
}
