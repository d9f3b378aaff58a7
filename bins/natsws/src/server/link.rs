//! Outbound links: connections natsws dials itself and keeps up. Each link dials its URLs in
//! turn (`crate::outbound::Urls`): the host name is resolved on a short-lived thread (never on
//! the loop) whose answer comes back through a channel and the loop's waker, as the bcrypt
//! verdicts do; the TCP connect is non-blocking (done when the socket turns writable); a
//! `tls://` URL starts a TLS client (rustls, verifying the certificate and the host name
//! against the configured CA) after the peer's INFO; a closed connection is dialed again after
//! a backoff with jitter.
//!
//! The only link today is the test link, a testing knob: when the environment variable
//! [`TEST_LINK_ENV`] holds a comma-separated list of `nats://` or `tls://` URLs (and
//! [`TEST_LINK_CA_ENV`] a CA file for the `tls://` ones), natsws dials them as a NATS client,
//! sends CONNECT and PING, answers PINGs and logs every state change ("Test link: ..."), so
//! the integration tests can watch it connect to nats-server, lose it and reconnect. It is
//! no feature: nothing is routed over it. Leaf-node links are meant to replace its session
//! (`crate::outbound::TestSession`) with their protocol and keep the dialing here.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use broker::CloseReason;
use bytes::BytesMut;
use mio::net::TcpStream;
use mio::{Interest, Waker};

use super::ctx::Ctx;
use super::table::{self, Kind, LinkConn, LinkEvent};
use crate::conn::Transport;
use crate::outbound::{Backoff, DialUrl, Scheme, Step, TestSession, Urls};

/// The test link's URLs (comma-separated `nats://host:port` or `tls://host:port`).
pub(super) const TEST_LINK_ENV: &str = "NATSWS_TEST_LINK";
/// The CA file the test link verifies `tls://` servers against.
pub(super) const TEST_LINK_CA_ENV: &str = "NATSWS_TEST_LINK_CA";

/// How long connecting and the handshake (INFO, TLS, CONNECT, PONG) may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a link is.
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
    backoff: Backoff,
    state: State,
}

/// A name resolution's answer.
#[derive(Debug)]
struct Resolved {
    link: usize,
    url: DialUrl,
    addrs: io::Result<Vec<SocketAddr>>,
}

/// The outbound links.
#[derive(Debug)]
pub(super) struct Links {
    links: Vec<Link>,
    tls: Option<Arc<rustls::ClientConfig>>,
    tx: Sender<Resolved>,
    rx: Receiver<Resolved>,
    waker: Arc<Waker>,
}

impl Links {
    /// The test link when [`TEST_LINK_ENV`] is set, else none. `waker` wakes the loop when a
    /// name is resolved.
    pub(super) fn from_env(waker: Arc<Waker>, now: Instant) -> Result<Self, String> {
        let (tx, rx) = channel();
        let mut this = Self {
            links: Vec::new(),
            tls: None,
            tx,
            rx,
            waker,
        };
        let Some(list) = std::env::var_os(TEST_LINK_ENV) else {
            return Ok(this);
        };
        let list = list.to_string_lossy();
        let urls = Urls::parse(&list).map_err(|e| format!("{TEST_LINK_ENV}: {e}"))?;
        if urls.any_tls() {
            let ca = std::env::var(TEST_LINK_CA_ENV)
                .map_err(|_| format!("{TEST_LINK_ENV}: tls:// needs {TEST_LINK_CA_ENV}"))?;
            this.tls = Some(crate::tls::client_config(&ca)?);
        }
        log::warn!(
            "Test link enabled by {TEST_LINK_ENV}: dialing {list} (a testing knob, not a feature)"
        );
        this.links.push(Link {
            urls,
            backoff: Backoff::default(),
            state: State::Waiting { until: now },
        });
        Ok(this)
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
                    let failure = format!("cannot resolve {}: {e}", res.url.host);
                    retry(link, &res.url, Some(failure), now);
                    continue;
                }
            };
            let Some(addr) = addr else {
                retry(link, &res.url, Some("no address".to_owned()), now);
                continue;
            };
            match connect(ctx, res.link, &res.url, addr, self.tls.clone(), now) {
                Ok(()) => link.state = State::Connected,
                Err(e) => retry(link, &res.url, Some(e), now),
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
                    }
                }
                LinkEvent::Closed { link, url, failure } => {
                    if !ctx.monitor.healthy {
                        // Shutting down: no retry.
                        log::info!("Test link: {url} closed");
                    } else if let Some(link) = self.links.get_mut(link) {
                        retry(link, &url, failure, now);
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

/// The link's connection is gone (or never came): wait, then dial the next URL.
fn retry(link: &mut Link, url: &DialUrl, failure: Option<String>, now: Instant) {
    let mut jitter = [0u8; 2];
    // Without randomness the wait is the middle of its range.
    if crate::ids::os_random(&mut jitter).is_err() {
        jitter = [0, 0x80];
    }
    let delay = link.backoff.next_delay(u16::from_le_bytes(jitter));
    let why = failure.as_deref().unwrap_or("connection closed");
    log::info!(
        "Test link: {url} closed: {why}; retrying in {}ms",
        delay.as_millis()
    );
    link.state = State::Waiting { until: now + delay };
}

/// Starts the non-blocking connect and adds the connection, readable and writable (writable
/// means connected).
fn connect(
    ctx: &mut Ctx,
    link: usize,
    url: &DialUrl,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    now: Instant,
) -> Result<(), String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    log::info!("Test link: connecting to {url} ({addr})");
    let kind = Kind::Link {
        link: Box::new(LinkConn {
            link,
            url: url.clone(),
            tls: tls.filter(|_| url.scheme == Scheme::Tls),
            session: TestSession::new(url.scheme == Scheme::Tls),
            out: BytesMut::new(),
            connected: false,
            failure: None,
        }),
    };
    let key = ctx
        .conns
        .insert(&ctx.registry, stream, addr, kind, None)
        .ok_or_else(|| "cannot register the connection".to_owned())?;
    if let Some(c) = ctx.conns.get_mut(key) {
        let want = Interest::READABLE | Interest::WRITABLE;
        c.interest = want;
        c.log_id = format!("test link {url}");
        let _ = ctx
            .registry
            .reregister(&mut c.transport.stream, table::token(key), want);
    }
    ctx.conns.set_deadline(key, now + HANDSHAKE_TIMEOUT);
    Ok(())
}

/// Runs the link's session over what was read: TLS once INFO asks for it, CONNECT, the PONG
/// that establishes the link, PONGs for the peer's PINGs.
pub(super) fn input(ctx: &mut Ctx, key: usize, now: Instant) {
    let Some(c) = ctx.conns.slab.get_mut(key) else {
        return;
    };
    let Kind::Link { link } = &mut c.kind else {
        return;
    };
    if c.transport.tls.is_some() && link.session.phase() == crate::outbound::Phase::Tls {
        if c.transport.tls_handshaking() {
            return;
        }
        log::info!("Test link: TLS established with {}", link.url);
        link.session.tls_ready(&mut link.out);
    }
    let step = link.session.handle_input(&mut c.in_buf, &mut link.out);
    match step {
        Ok(Step::None) => {}
        Ok(Step::StartTls) => match start_tls(&mut c.transport, link) {
            Ok(()) => log::info!("Test link: TLS handshake with {}", link.url),
            Err(e) => {
                link.failure = Some(e);
                ctx.close_conn(key, now, CloseReason::TlsHandshakeFailure);
                return;
            }
        },
        Ok(Step::Established) => {
            c.deadline = None;
            log::info!("Test link: established with {}", link.url);
            ctx.link_events
                .push(LinkEvent::Established { link: link.link });
        }
        Err(e) => {
            link.failure = Some(e);
            ctx.close_conn(key, now, CloseReason::ProtocolViolation);
            return;
        }
    }
    ctx.conns.mark_dirty(key);
}

fn start_tls(transport: &mut Transport, link: &LinkConn) -> Result<(), String> {
    let cfg = link
        .tls
        .clone()
        .ok_or_else(|| "no TLS client configuration".to_owned())?;
    let name = rustls::pki_types::ServerName::try_from(link.url.host.clone())
        .map_err(|e| format!("TLS server name {}: {e}", link.url.host))?;
    let tls = rustls::ClientConnection::new(cfg, name).map_err(|e| format!("TLS: {e}"))?;
    transport.tls = Some(Box::new(tls.into()));
    Ok(())
}

/// Completes the connect (the socket turned writable), then writes what the session queued.
/// Returns whether everything was written.
pub(super) fn flush(transport: &mut Transport, link: &mut LinkConn) -> io::Result<bool> {
    let res = if link.connected {
        transport.write_buf(&mut link.out)
    } else {
        match transport.stream.take_error() {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => match transport.stream.peer_addr() {
                Ok(_) => {
                    link.connected = true;
                    transport.write_buf(&mut link.out)
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
                Err(e) => Err(e),
            },
        }
    };
    if let Err(e) = &res {
        link.failure.get_or_insert_with(|| e.to_string());
    }
    res
}

/// Connecting or the handshake took too long.
pub(super) fn timer(ctx: &mut Ctx, key: usize, now: Instant) {
    let Some(c) = ctx.conns.get_mut(key) else {
        return;
    };
    if let Kind::Link { link } = &mut c.kind {
        link.failure = Some(format!(
            "no handshake within {}",
            gotext::format_std_duration(HANDSHAKE_TIMEOUT)
        ));
        ctx.close_conn(key, now, CloseReason::TlsHandshakeFailure);
    }
}
