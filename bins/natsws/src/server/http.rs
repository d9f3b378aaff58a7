//! HTTP monitoring connections: accepting (plain or TLS, and on a port shared with
//! WebSocket the hand-over to the upgrade), reading requests (`monitor_request`), answering
//! them (`monitor`) with backpressure on pipelined requests, and the idle deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use broker::CloseReason;
use bytes::BytesMut;
use mio::net::TcpStream;

use super::ctx::Ctx;
use super::table::Kind;
use crate::monitor::{self, MonitorCtx};
use crate::monitor_request::{self, Endpoint, Head};

/// Largest HTTP request head the monitor accepts.
const MAX_HTTP_HEAD_BYTES: usize = 16 * 1024;
/// Pipelined monitoring requests are answered only while less than this many reply bytes
/// are unsent: a client that never reads stops being read (backpressure).
pub(super) const HTTP_PENDING_REPLY_BYTES: usize = 64 * 1024;
/// Idle HTTP keep-alive connections are closed after this long.
const HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Most subscriptions a tick takes for deferred monitoring replies (`Ctx::renders`).
const RENDER_SUBS_PER_TICK: usize = 2048;

/// Adds a connection accepted on a monitoring listener (`ws_capable`: the port is shared
/// with WebSocket); idle (or, shared, handshake) deadline set.
pub(super) fn accept(
    ctx: &mut Ctx,
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    ws_capable: bool,
    now: Instant,
) -> Option<usize> {
    let tls = tls
        .and_then(|cfg| rustls::ServerConnection::new(cfg).ok())
        .map(|tls| Box::new(tls.into()));
    let kind = Kind::Http {
        out: BytesMut::new(),
        close_after: false,
        ws_capable,
    };
    let key = ctx.conns.insert(&ctx.registry, stream, peer, kind, tls)?;
    let timeout = ctx
        .ws_handshake_timeout()
        .filter(|_| ws_capable)
        .unwrap_or(HTTP_IDLE_TIMEOUT);
    ctx.conns.set_deadline(key, now + timeout);
    Some(key)
}

/// Answers the complete monitoring requests read, in order, while the replies owed stay
/// under [`HTTP_PENDING_REPLY_BYTES`]; hands an upgrade request on a port shared with
/// WebSocket to the `ws` handler.
pub(super) fn input(ctx: &mut Ctx, key: usize, now: Instant) {
    loop {
        let Some(c) = ctx.conns.slab.get_mut(key) else {
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
                if let Some(plain) = refused.refusal() {
                    let resp = monitor::Response::text(plain.status, plain.body);
                    reply(ctx, key, &resp, false);
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
            super::ws::handshake_input(ctx, key, now);
            return;
        }
        let _ = c.in_buf.split_to(head.head_len);
        let resp = match Endpoint::route(&head.path, &ctx.settings.http_base_path) {
            Some(endpoint) => {
                let m = &mut ctx.monitor;
                *m.http_req_stats
                    .entry(endpoint.path().to_owned())
                    .or_insert(0) += 1;
                let monitor_ctx = MonitorCtx {
                    settings: &ctx.settings,
                    bound: &m.bound,
                    clock: m.clock,
                    now,
                    start: m.start,
                    config_load_time: m.config_load_time,
                    http_req_stats: &m.http_req_stats,
                    healthy: m.healthy,
                    rss_bytes: crate::procstat::rss_bytes(),
                    cpu_percent: crate::procstat::cpu_percent(
                        now.saturating_duration_since(m.start),
                    ),
                    ops: &m.ops,
                };
                match monitor::answer(endpoint, &head.query, &mut ctx.broker, &monitor_ctx) {
                    monitor::Reply::Ready(resp) => resp,
                    monitor::Reply::Deferred(query) => {
                        defer_reply(ctx, key, query, head.keep_alive, now);
                        return;
                    }
                }
            }
            None => {
                let nf = monitor_request::not_found();
                monitor::Response::text(nf.status, nf.body)
            }
        };
        reply(ctx, key, &resp, head.keep_alive);
        ctx.conns.set_deadline(key, now + HTTP_IDLE_TIMEOUT);
        if !head.keep_alive {
            return;
        }
    }
}

fn reply(ctx: &mut Ctx, key: usize, resp: &monitor::Response, keep_alive: bool) {
    reply_bytes(ctx, key, &resp.to_bytes(keep_alive), keep_alive);
}

fn reply_bytes(ctx: &mut Ctx, key: usize, bytes: &[u8], keep_alive: bool) {
    if let Some(c) = ctx.conns.slab.get_mut(key)
        && let Kind::Http {
            out, close_after, ..
        } = &mut c.kind
    {
        out.extend_from_slice(bytes);
        if !keep_alive {
            *close_after = true;
            c.in_buf.clear();
        }
        ctx.conns.mark_dirty(key);
    }
}

/// Leaves a `/connz` or `/subsz?subs=1` request to `Ctx::renders`; the connection is not read
/// until its reply is in.
fn defer_reply(
    ctx: &mut Ctx,
    key: usize,
    query: Box<monitor::Deferred>,
    keep_alive: bool,
    now: Instant,
) {
    if let Some(c) = ctx.conns.get_mut(key) {
        c.awaiting_reply = true;
        ctx.renders.push(key, c.uid, keep_alive, query);
        ctx.conns.set_deadline(key, now + HTTP_IDLE_TIMEOUT);
    }
}

/// Chooses the next deferred reply's page, or takes a bounded part of its subscriptions (one
/// tick's worth).
pub(super) fn step_renders(ctx: &mut Ctx, now: Instant) {
    let conns = &ctx.conns;
    let choose = crate::render::ChooseCtx {
        clock: ctx.monitor.clock,
        now,
        keep_closed: ctx.settings.max_closed_clients > 0,
    };
    ctx.renders
        .step(&ctx.broker, RENDER_SUBS_PER_TICK, choose, |key, uid| {
            conns
                .get(key)
                .is_some_and(|c| c.uid == uid && c.awaiting_reply && !c.closing)
        });
}

/// Queues the deferred replies that are ready, and resumes their connections.
pub(super) fn rendered_replies(ctx: &mut Ctx, now: Instant) {
    while let Some(done) = ctx.renders.poll() {
        let Some(c) = ctx.conns.get_mut(done.key) else {
            continue;
        };
        if c.uid != done.uid || !c.awaiting_reply {
            continue;
        }
        c.awaiting_reply = false;
        reply_bytes(ctx, done.key, &done.bytes, done.keep_alive);
        if done.keep_alive {
            // Answer what was pipelined behind it, then read again.
            input(ctx, done.key, now);
            ctx.conns.queue_ready(done.key);
        }
    }
}

/// The idle (or, on a port shared with WebSocket, the handshake) deadline passed. A
/// connection whose reply is still being made is not idle: it waits for the server.
pub(super) fn timer(ctx: &mut Ctx, key: usize, now: Instant, ws_on_http: bool) {
    let Some(c) = ctx.conns.get(key) else {
        return;
    };
    if c.awaiting_reply {
        ctx.conns.set_deadline(key, now + HTTP_IDLE_TIMEOUT);
        return;
    }
    if matches!(
        c.kind,
        Kind::Http {
            ws_capable: true,
            ..
        }
    ) && ws_on_http
    {
        ctx.conns.schedule_reap(key, now, false);
    } else {
        ctx.close_conn(key, now, CloseReason::ClientClosed);
    }
}
