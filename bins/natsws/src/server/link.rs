//! Leaf-node remotes: the connections natsws dials to its hubs and keeps up
//! (`leafnodes { remotes [...] }`). Each remote dials its URLs in turn
//! (`crate::outbound::Urls`): the host name is resolved on a short-lived thread (never on
//! the loop) whose answer comes back through a channel and the loop's waker, as the bcrypt
//! verdicts do; the TCP connect is non-blocking (done when the socket turns writable); the
//! connection is a broker leaf session from the start ([`broker::Broker::register_leaf`]),
//! which reads the hub's INFO and asks for TLS when the URL, the remote's `tls {}` block or
//! the hub wants it ([`broker::Event::LeafStartTls`]): the TLS client (rustls, verifying the
//! certificate and the host name against the remote's CA) then starts on the same socket. A
//! closed connection is dialed again after a backoff with jitter that grows to the
//! reconnect interval, or after the 30 s the broker asks for after a loop.
//!
//! Logs follow nats-server (`server/leafnode.go`): `Error trying to connect as leafnode to
//! remote server "<host:port>" (attempt <n>): <error>` for the first failed attempt and every
//! failure after a connection was up, `Leafnode connection created for account: <acc>
//! <hub>` and `Leafnode connection closed: <reason> account: <acc>` as notices, `Leafnode
//! Error '<text>'` for an `-ERR` from the hub.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use broker::{ClientId, ClientParams, CloseReason, ConnectionType, LeafRemote};
use mio::net::TcpStream;
use mio::{Interest, Waker};

use super::ctx::Ctx;
use super::table::{self, Kind, LeafConn, LinkEvent};
use crate::conn::Transport;
use crate::outbound::{Backoff, DialUrl, Scheme, Urls};
use crate::settings::RemoteSettings;

/// Where a remote is.
#[derive(Debug)]
enum State {
    /// Closed (or not started): dial again at `until`.
    Waiting { until: Instant },
    /// A thread is resolving the next URL.
    Resolving,
    /// The connection in the table (connecting, handshaking or established).
    Connected,
}

#[derive(Debug)]
struct Link {
    urls: Urls,
    remote: RemoteSettings,
    tls: Option<Arc<rustls::ClientConfig>>,
    backoff: Backoff,
    state: State,
    /// Attempts since the last established connection.
    attempts: u64,
    /// A connection was up since the process started (every failure is then logged).
    was_connected: bool,
}

/// A name resolution's answer.
#[derive(Debug)]
struct Resolved {
    link: usize,
    url: DialUrl,
    addrs: io::Result<Vec<SocketAddr>>,
}

/// The leaf remotes.
#[derive(Debug)]
pub(super) struct Links {
    links: Vec<Link>,
    tx: Sender<Resolved>,
    rx: Receiver<Resolved>,
    waker: Arc<Waker>,
}

impl Links {
    /// One link per configured remote, each to be dialed at once. `waker` wakes the loop
    /// when a name is resolved.
    pub(super) fn new(
        remotes: &[RemoteSettings],
        reconnect: Duration,
        waker: Arc<Waker>,
        now: Instant,
    ) -> Result<Self, String> {
        let (tx, rx) = channel();
        let mut links = Vec::new();
        for remote in remotes {
            let mut urls = Urls::new(remote.urls.iter().map(DialUrl::from_leaf).collect())?;
            if !remote.no_randomize {
                let mut seed = [0u8; 2];
                crate::ids::os_random(&mut seed)?;
                urls.rotate_start(usize::from(u16::from_le_bytes(seed)));
            }
            let tls = match &remote.tls_client {
                Some(spec) => Some(crate::tls::client_config(spec)?),
                None => None,
            };
            links.push(Link {
                urls,
                remote: remote.clone(),
                tls,
                backoff: Backoff::new(reconnect),
                state: State::Waiting { until: now },
                attempts: 0,
                was_connected: false,
            });
        }
        Ok(Self {
            links,
            tx,
            rx,
            waker,
        })
    }

    /// When a waiting link is to be dialed next.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.links
            .iter()
            .filter_map(|l| match l.state {
                State::Waiting { until } => Some(until),
                State::Resolving | State::Connected => None,
            })
            .min()
    }

    /// Starts resolving the next URL of each link whose wait is over. Nothing is dialed
    /// once shutdown began.
    pub(super) fn tick(&mut self, ctx: &Ctx, now: Instant) {
        if !ctx.monitor.healthy {
            return;
        }
        for (idx, link) in self.links.iter_mut().enumerate() {
            if matches!(link.state, State::Waiting { until } if until <= now) {
                link.state = State::Resolving;
                let url = link.urls.rotate();
                resolve(idx, url, self.tx.clone(), Arc::clone(&self.waker));
            }
        }
    }

    /// Takes the finished name resolutions (the waker fired) and connects.
    pub(super) fn resolved(&mut self, ctx: &mut Ctx, now: Instant) {
        while let Ok(res) = self.rx.try_recv() {
            let Some(link) = self.links.get_mut(res.link) else {
                continue;
            };
            if !ctx.monitor.healthy {
                continue;
            }
            let addr = match res.addrs {
                Ok(addrs) => addrs.into_iter().next(),
                Err(e) => {
                    let failure = format!("lookup {}: {e}", res.url.host);
                    retry(link, &res.url, Some(failure), None, now);
                    continue;
                }
            };
            let Some(addr) = addr else {
                retry(link, &res.url, Some("no address".to_owned()), None, now);
                continue;
            };
            match connect(ctx, res.link, link, &res.url, addr, now) {
                Ok(()) => link.state = State::Connected,
                Err(e) => retry(link, &res.url, Some(e), None, now),
            }
        }
    }

    /// Acts on the link connections established or removed this tick.
    pub(super) fn handle_events(&mut self, ctx: &mut Ctx, now: Instant) {
        for ev in ctx.link_events.drain(..) {
            match ev {
                LinkEvent::Established { link } => {
                    if let Some(link) = self.links.get_mut(link) {
                        link.backoff.reset();
                        link.attempts = 0;
                        link.was_connected = true;
                    }
                }
                LinkEvent::Closed {
                    link,
                    url,
                    failure,
                    delay,
                } => {
                    if !ctx.monitor.healthy {
                        // Shutting down: no retry.
                    } else if let Some(link) = self.links.get_mut(link) {
                        retry(link, &url, failure, delay, now);
                    }
                }
            }
        }
    }
}

/// Resolves `url`'s host on a thread of its own and sends the answer back.
fn resolve(link: usize, url: DialUrl, tx: Sender<Resolved>, waker: Arc<Waker>) {
    let spawned = std::thread::Builder::new()
        .name("natsws-resolve".to_owned())
        .spawn({
            let (tx, waker, url) = (tx.clone(), Arc::clone(&waker), url.clone());
            move || {
                let addrs = (url.host.as_str(), url.port)
                    .to_socket_addrs()
                    .map(Iterator::collect);
                let _ = tx.send(Resolved { link, url, addrs });
                let _ = waker.wake();
            }
        });
    if let Err(e) = spawned {
        let _ = tx.send(Resolved {
            link,
            url,
            addrs: Err(e),
        });
        let _ = waker.wake();
    }
}

/// The link's connection is gone (or never came): wait, then dial the next URL. A failure
/// is logged the first time and after a connection was up, as nats-server does (it logs
/// every 3600th attempt besides; natsws logs the rest at debug level).
fn retry(
    link: &mut Link,
    url: &DialUrl,
    failure: Option<String>,
    delay: Option<Duration>,
    now: Instant,
) {
    let mut jitter = [0u8; 2];
    // Without randomness the wait is the middle of its range.
    if crate::ids::os_random(&mut jitter).is_err() {
        jitter = [0, 0x80];
    }
    let wait = link.backoff.next_delay(u16::from_le_bytes(jitter));
    let wait = delay.map_or(wait, |d| d.max(wait));
    link.attempts += 1;
    if let Some(why) = &failure {
        let text = format!(
            "Error trying to connect as leafnode to remote server {} (attempt {}): {why}",
            gotext::quote(url.host_port()),
            link.attempts
        );
        if link.attempts == 1 || link.was_connected || link.attempts.is_multiple_of(3600) {
            log::error!("{text}");
        } else {
            log::debug!("{text}");
        }
    }
    log::debug!(
        "Leafnode remote {url}: dialing again in {}",
        gotext::format_std_duration(wait)
    );
    link.state = State::Waiting { until: now + wait };
}

/// Starts the non-blocking connect, registers the broker's leaf session and adds the
/// connection, readable and writable (writable means connected). The broker's handshake
/// deadline bounds the connect too.
fn connect(
    ctx: &mut Ctx,
    link_idx: usize,
    link: &Link,
    url: &DialUrl,
    addr: SocketAddr,
    now: Instant,
) -> Result<(), String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("dial tcp {addr}: {e}"))?;
    log::debug!("Trying to connect as leafnode to remote server on {url} ({addr})");
    let remote = LeafRemote {
        account: link.remote.account.clone(),
        user: url.user.clone(),
        password: url.password.clone(),
        // `wss://` has TLS up before the hub says anything.
        tls: url.scheme == Scheme::Tls || (link.remote.tls && url.scheme != Scheme::Wss),
        tls_established: url.scheme == Scheme::Wss,
        deny_imports: link.remote.deny_imports.clone(),
        deny_exports: link.remote.deny_exports.clone(),
        credentials: link.remote.credentials.clone(),
        hub: link.remote.hub,
    };
    let client =
        ctx.broker
            .register_leaf(now, ClientParams::new(ConnectionType::Leaf, addr), remote);
    let kind = Kind::Leaf {
        client,
        link: Box::new(LeafConn {
            link: link_idx,
            url: url.clone(),
            tls: link.tls.clone(),
            connected: false,
            account: link
                .remote
                .account
                .clone()
                .unwrap_or_else(|| broker::GLOBAL_ACCOUNT.to_owned()),
            tls_started: false,
            tls_done: false,
            failure: None,
            delay: None,
            ws: if url.scheme.is_websocket() {
                Some(Box::new(ws_upgrade(url, &link.remote)?))
            } else {
                None
            },
        }),
    };
    let Some(key) = ctx.conns.insert(&ctx.registry, stream, addr, kind, None) else {
        ctx.broker.close_client(client, now, CloseReason::ReadError);
        ctx.broker.remove_client(client, now);
        return Err("cannot register the connection".to_owned());
    };
    ctx.conns.link_client(client, key);
    let cid = ctx.broker.cid(client).unwrap_or(0);
    if url.scheme == Scheme::Wss {
        // TLS first: the ClientHello waits in rustls until the connect completes.
        let tls = link
            .tls
            .clone()
            .ok_or_else(|| {
                "wss:// needs a tls { ca_file } or tls { insecure: true } block".to_owned()
            })
            .and_then(|cfg| {
                let name = rustls::pki_types::ServerName::try_from(url.host.clone())
                    .map_err(|e| format!("TLS server name {}: {e}", url.host))?;
                rustls::ClientConnection::new(cfg, name).map_err(|e| format!("TLS: {e}"))
            });
        match tls {
            Ok(tls) => {
                if let Some(c) = ctx.conns.get_mut(key) {
                    c.transport.tls = Some(Box::new(tls.into()));
                    if let Kind::Leaf { link, .. } = &mut c.kind {
                        link.tls_started = true;
                    }
                }
            }
            Err(e) => {
                ctx.broker
                    .close_client(client, now, CloseReason::TlsHandshakeFailure);
                return Err(e);
            }
        }
    }
    if let Some(c) = ctx.conns.get_mut(key) {
        let want = Interest::READABLE | Interest::WRITABLE;
        c.interest = want;
        c.log_id = format!("{addr} - lid:{cid}");
        let _ = ctx
            .registry
            .reregister(&mut c.transport.stream, table::token(key), want);
    }
    Ok(())
}

/// Hands what was read to the broker's leaf session, once the TLS handshake (if any) is
/// done; the end of the handshake sends CONNECT.
pub(super) fn input(ctx: &mut Ctx, key: usize, client: ClientId, now: Instant) {
    let Some(c) = ctx.conns.slab.get_mut(key) else {
        return;
    };
    let Kind::Leaf { link, .. } = &mut c.kind else {
        return;
    };
    if c.transport.tls_handshaking() {
        return;
    }
    if link.tls_started && !link.tls_done {
        link.tls_done = true;
        if let Some(tls) = c.transport.tls.as_ref() {
            let version = tls
                .protocol_version()
                .map_or_else(String::new, crate::tls::version_name);
            let cipher = tls
                .negotiated_cipher_suite()
                .map_or_else(String::new, crate::tls::cipher_name);
            log::debug!(
                "{} - TLS handshake complete (TLS version {version}, cipher suite {cipher})",
                c.log_id
            );
            ctx.broker.set_tls_info(client, version, cipher);
        }
        ctx.broker.leaf_tls_established(client, now);
    }
    let Some(c) = ctx.conns.slab.get_mut(key) else {
        return;
    };
    let Kind::Leaf { link, .. } = &mut c.kind else {
        return;
    };
    let Some(ws) = link.ws.as_mut() else {
        if !c.in_buf.is_empty() {
            ctx.broker.handle_input(client, now, &mut c.in_buf);
        }
        ctx.pause_if_backlogged(key, client);
        return;
    };
    if let Some(handshake) = ws.handshake.as_mut() {
        match handshake.handle_input(&c.in_buf) {
            Ok(None) => return,
            Ok(Some(accepted)) => {
                let head_len = accepted.head_len.min(c.in_buf.len());
                bytes::Buf::advance(&mut c.in_buf, head_len);
                ws.handshake = None;
                ws.decoder = ws_codec::Decoder::new(
                    ws_codec::DecoderConfig::client().with_deflate(accepted.compression),
                );
                ws.encoder = ws_codec::Encoder::with_mask_keys(
                    ws_codec::EncoderConfig {
                        deflate: accepted.compression,
                        ..ws_codec::EncoderConfig::default()
                    },
                    table::OsMaskKeys {
                        masking: accepted.mask_writes,
                    },
                );
                log::debug!(
                    "{} - Websocket upgrade accepted (compression {}, masking {})",
                    c.log_id,
                    accepted.compression,
                    accepted.mask_writes
                );
            }
            Err(e) => {
                link.failure = Some(e.to_string());
                ctx.broker
                    .close_client(client, now, CloseReason::ProtocolViolation);
                return;
            }
        }
    }
    let mut failed = None;
    let mut closed = false;
    loop {
        match ws.decoder.decode(&mut c.in_buf, &mut ctx.inflater) {
            Ok(Some(ws_codec::Event::Data(data))) => ws.nats_in.extend_from_slice(&data),
            Ok(Some(ws_codec::Event::Message(m))) => ws.nats_in.extend_from_slice(&m.payload),
            Ok(Some(ws_codec::Event::Close(_))) => {
                closed = true;
                break;
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                failed = Some(e.to_string());
                break;
            }
        }
        // The hub's pings are answered; a hub that pings without reading is cut by the
        // write deadline, as its backlog counts against max_pending.
        while let Some(reply) = ws.decoder.poll_reply() {
            if !matches!(reply, ws_codec::Control::Close(_)) {
                ws.encoder
                    .encode_control(&reply, &mut ctx.arena, &mut ws.wire);
            }
        }
        if ws.nats_in.len() > 1 << 20 {
            // Bounded: hand what was decoded to the parser before decoding more.
            ctx.broker.handle_input(client, now, &mut ws.nats_in);
        }
    }
    if !ws.nats_in.is_empty() {
        ctx.broker.handle_input(client, now, &mut ws.nats_in);
    }
    if !ws.wire.is_empty() {
        ctx.conns.mark_dirty(key);
    }
    if let Some(e) = failed {
        if let Some(Kind::Leaf { link, .. }) = ctx.conns.get_mut(key).map(|c| &mut c.kind) {
            link.failure = Some(e);
        }
        ctx.broker
            .close_client(client, now, CloseReason::ProtocolViolation);
    } else if closed {
        ctx.broker
            .close_client(client, now, CloseReason::ClientClosed);
    }
    ctx.pause_if_backlogged(key, client);
}

/// The upgrade request for a `ws://`/`wss://` remote (`server/leafnode.go`
/// `leafNodeSolicitWSConnection`): path `/leafnode`, compression and no-masking as the remote
/// asks.
fn ws_upgrade(url: &DialUrl, remote: &RemoteSettings) -> Result<table::WsLink, String> {
    let mut nonce = [0u8; 16];
    crate::ids::os_random(&mut nonce)?;
    let host = url.host_port();
    let request = ws_handshake::ClientRequest {
        path: "/leafnode",
        host: &host,
        user_agent: "natsws",
        compression: remote.ws_compression,
        no_masking: remote.ws_no_masking,
        extra_headers: &[],
    };
    let limits = ws_handshake::Limits {
        max_head_bytes: 16 * 1024,
        ..ws_handshake::Limits::default()
    };
    let mut out = Vec::new();
    let handshake = ws_handshake::ClientHandshake::new(&request, &nonce, limits, &mut out)
        .map_err(|e| e.to_string())?;
    let mut wire = std::collections::VecDeque::new();
    wire.push_back(bytes::Bytes::from(out));
    Ok(table::WsLink {
        handshake: Some(handshake),
        decoder: ws_codec::Decoder::new(ws_codec::DecoderConfig::client()),
        encoder: ws_codec::Encoder::with_mask_keys(
            ws_codec::EncoderConfig::default(),
            table::OsMaskKeys { masking: true },
        ),
        wire,
        nats_in: bytes::BytesMut::new(),
    })
}

/// Frames what the broker queued for a WebSocket leaf and writes the frames. Returns whether
/// everything was written.
pub(super) fn flush_ws(
    transport: &mut Transport,
    ws: &mut table::WsLink,
    q: &mut broker::OutQueue,
    deflater: &mut ws_codec::Deflater,
    arena: &mut bytes::BytesMut,
) -> io::Result<bool> {
    if ws.handshake.is_none() && !q.is_empty() {
        let mut chunks = Vec::new();
        q.drain_chunks(&mut chunks);
        ws.encoder
            .encode_stream(&chunks, deflater, arena, &mut ws.wire)
            .map_err(|e| io::Error::other(e.to_string()))?;
    }
    while !ws.wire.is_empty() {
        let mut slices = [io::IoSlice::new(&[]); super::nats::MAX_IOSLICES];
        let mut n = 0;
        for (slot, chunk) in slices.iter_mut().zip(ws.wire.iter()) {
            *slot = io::IoSlice::new(chunk);
            n += 1;
        }
        let mut written = transport.write_vectored(slices.get(..n).unwrap_or(&[]))?;
        if written == 0 {
            return Ok(false);
        }
        while written > 0 {
            let Some(front) = ws.wire.front_mut() else {
                break;
            };
            if written >= front.len() {
                written -= front.len();
                ws.wire.pop_front();
            } else {
                bytes::Buf::advance(front, written);
                written = 0;
            }
        }
    }
    Ok(true)
}

/// The broker asked for TLS after the hub's INFO: start the client side on the socket.
pub(super) fn start_tls(ctx: &mut Ctx, client: ClientId, now: Instant) {
    let Some(key) = ctx.conns.conn_of(client) else {
        return;
    };
    let Some(c) = ctx.conns.get_mut(key) else {
        return;
    };
    let Kind::Leaf { link, .. } = &mut c.kind else {
        return;
    };
    let res = match link.tls.clone() {
        None => Err("the hub requires TLS: the remote needs a tls { ca_file } or tls { insecure: true } block".to_owned()),
        Some(cfg) => rustls::pki_types::ServerName::try_from(link.url.host.clone())
            .map_err(|e| format!("TLS server name {}: {e}", link.url.host))
            .and_then(|name| {
                rustls::ClientConnection::new(cfg, name).map_err(|e| format!("TLS: {e}"))
            }),
    };
    match res {
        Ok(tls) => {
            link.tls_started = true;
            c.transport.tls = Some(Box::new(tls.into()));
            log::debug!("{} - Starting TLS leafnode client handshake", c.log_id);
            ctx.conns.mark_dirty(key);
        }
        Err(e) => {
            link.failure = Some(e);
            ctx.broker
                .close_client(client, now, CloseReason::TlsHandshakeFailure);
        }
    }
}

/// Completes the connect (the socket turned writable). Returns whether it is connected.
/// nats-server logs `Leafnode connection created for account: <acc> ` (its name still
/// empty) once the TCP connection is up, before the handshake.
pub(super) fn connected(
    transport: &mut Transport,
    link: &mut LeafConn,
    log_id: &str,
) -> io::Result<bool> {
    if link.connected {
        return Ok(true);
    }
    let res = match transport.stream.take_error() {
        Ok(Some(e)) | Err(e) => Err(e),
        Ok(None) => match transport.stream.peer_addr() {
            Ok(_) => {
                link.connected = true;
                log::info!(
                    "{log_id} - Leafnode connection created for account: {} ",
                    link.account
                );
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        },
    };
    if let Err(e) = &res {
        link.failure.get_or_insert_with(|| e.to_string());
    }
    res
}
