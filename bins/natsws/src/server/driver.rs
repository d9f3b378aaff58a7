//! Drives one connection through a loop tick and routes each step to the handler of its
//! kind (`nats`, `ws`, `http`): accept, read (edge-triggered, with a per-tick budget and the
//! ready queue), input, one vectored flush per dirty connection with `WRITABLE` registered
//! only while output is pending, deadlines, and removal at the end of the tick.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use broker::{CloseReason, ConnectionType};
use mio::net::TcpStream;

use super::ctx::{Ctx, READ_PAUSE_PENDING_BYTES};
use super::table::LinkEvent;
use super::table::{self, Kind};
use super::{http, link, nats, ws};
use crate::conn;

/// A NATS client accepted: INFO goes out in plaintext, then TLS starts when configured.
pub(super) fn accept_nats(
    ctx: &mut Ctx,
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    now: Instant,
) {
    let Some(key) = nats::accept(ctx, stream, peer, ConnectionType::Standard, now) else {
        return;
    };
    if let Some(cfg) = tls {
        flush_conn(ctx, key, now);
        nats::start_tls(ctx, key, cfg, now);
    }
    read_conn(ctx, key, now);
}

/// A leaf accepted on the leafnode port: the leafnode INFO goes out in plaintext, then TLS
/// starts when configured, as for clients.
pub(super) fn accept_leaf(
    ctx: &mut Ctx,
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    now: Instant,
) {
    let Some(key) = nats::accept(ctx, stream, peer, ConnectionType::Leaf, now) else {
        return;
    };
    if let Some(cfg) = tls {
        flush_conn(ctx, key, now);
        nats::start_tls(ctx, key, cfg, now);
    }
    read_conn(ctx, key, now);
}

/// An MQTT client accepted on the mqtt listener: the same byte-stream connection as a NATS
/// client, registered as MQTT (the broker sends it nothing before CONNECT, so TLS starts at
/// once).
pub(super) fn accept_mqtt(
    ctx: &mut Ctx,
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    now: Instant,
) {
    let Some(key) = nats::accept(ctx, stream, peer, ConnectionType::Mqtt, now) else {
        return;
    };
    if let Some(cfg) = tls {
        nats::start_tls(ctx, key, cfg, now);
    }
    read_conn(ctx, key, now);
}

/// A monitoring connection accepted (`ws_capable`: the port is shared with WebSocket).
pub(super) fn accept_http(
    ctx: &mut Ctx,
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    ws_capable: bool,
    now: Instant,
) {
    if let Some(key) = http::accept(ctx, stream, peer, tls, ws_capable, now) {
        // Data may already be waiting.
        read_conn(ctx, key, now);
    }
}

/// A connection accepted on the websocket listener.
pub(super) fn accept_ws(
    ctx: &mut Ctx,
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    now: Instant,
) {
    if let Some(key) = ws::accept(ctx, stream, peer, tls, now) {
        read_conn(ctx, key, now);
    }
}

/// Reads until `WouldBlock` or the budget (then the connection is queued to run again), and
/// hands what was read to its handler.
pub(super) fn read_conn(ctx: &mut Ctx, key: usize, now: Instant) {
    let Some(c) = ctx.conns.get_mut(key) else {
        return;
    };
    if c.closing || c.read_paused || c.auth_parked.is_some() || c.awaiting_reply {
        return;
    }
    if let Some(client) = c.kind.client()
        && ctx.broker.is_stalled(client)
    {
        // A connection this client publishes to fell behind; `Event::Resumed` reads it again.
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
        // A message is being inflated a budget per tick (`ws::input`): finish it before
        // reading more, and only from the ready queue, once per tick.
        if c.queued_ready {
            return;
        }
        process_input(ctx, key, now);
        // Done: what waited in the socket meanwhile gets no new readiness edge, so read it on
        // the next tick. Still inflating: `ws::input` queued the connection already.
        if let Some(c) = ctx.conns.get(key)
            && !c.closing
            && !c.queued_ready
        {
            ctx.conns.queue_ready(key);
        }
        return;
    }
    if let Kind::Http { out, .. } = &c.kind
        && out.len() >= http::HTTP_PENDING_REPLY_BYTES
    {
        return;
    }
    if ws::refuse_plain_http(c) {
        ctx.monitor.ops.handshake_refused(400);
        ctx.conns.mark_dirty(key);
        return;
    }
    let res = c.transport.read_into(&mut c.in_buf);
    let was_handshaking = c.transport.tls_handshaking();
    match res {
        Ok(outcome) => {
            if c.transport.has_pending() {
                ctx.conns.mark_dirty(key);
            }
            process_input(ctx, key, now);
            if outcome.budget_exhausted {
                ctx.conns.queue_ready(key);
            }
            if outcome.eof {
                ctx.close_conn(key, now, CloseReason::ClientClosed);
            }
        }
        Err(e) => {
            let tls_err = matches!(e, conn::ReadError::Tls(_));
            if let Some(c) = ctx.conns.get_mut(key) {
                if let Kind::Leaf { link, .. } = &mut c.kind {
                    link.failure.get_or_insert_with(|| e.to_string());
                }
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
            ctx.close_conn(key, now, reason);
        }
    }
    ctx.conns.release_idle_buffer(key);
}

/// Reads again the connections whose read budget ran out last tick; those that run out now
/// wait for the next tick, so one tick stays bounded.
pub(super) fn run_ready(ctx: &mut Ctx, now: Instant) {
    let n = ctx.conns.ready.len();
    for _ in 0..n {
        let Some(key) = ctx.conns.ready.pop_front() else {
            break;
        };
        if let Some(c) = ctx.conns.get_mut(key) {
            c.queued_ready = false;
            read_conn(ctx, key, now);
        }
    }
}

/// Hands the connection's buffered input to its handler.
pub(super) fn process_input(ctx: &mut Ctx, key: usize, now: Instant) {
    let Some(c) = ctx.conns.get_mut(key) else {
        return;
    };
    match &c.kind {
        Kind::Nats { client } => {
            let client = *client;
            nats::input(ctx, key, client, now);
        }
        Kind::Http { .. } => http::input(ctx, key, now),
        Kind::WsHandshake { .. } => ws::handshake_input(ctx, key, now),
        Kind::Ws { .. } => ws::input(ctx, key, now),
        Kind::Leaf { client, .. } => {
            let client = *client;
            link::input(ctx, key, client, now);
        }
    }
}

/// Flushes every connection marked dirty this tick, once each.
pub(super) fn flush_dirty(ctx: &mut Ctx, now: Instant) {
    let mut dirty = std::mem::take(&mut ctx.conns.dirty);
    for key in &dirty {
        if let Some(c) = ctx.conns.get_mut(*key) {
            c.dirty = false;
        }
        flush_conn(ctx, *key, now);
    }
    dirty.clear();
    if ctx.conns.dirty.is_empty() {
        ctx.conns.dirty = dirty;
    }
}

/// Writes what the connection has pending, once, and updates its interest.
pub(super) fn flush_conn(ctx: &mut Ctx, key: usize, now: Instant) {
    let Some(c) = ctx.conns.slab.get_mut(key) else {
        return;
    };
    if c.write_failed {
        return;
    }
    let mut res: std::io::Result<bool> = c.transport.write_tls_pending();
    if matches!(res, Ok(true)) {
        res = match &mut c.kind {
            Kind::Nats { client } => {
                let client = *client;
                match ctx.broker.outbound(client) {
                    Some(q) => nats::flush(&mut c.transport, q),
                    None => Ok(true),
                }
            }
            Kind::Ws { client, ws } => {
                let client = *client;
                let closing_reason = c.close_reason.filter(|r| c.closing && r.flushes());
                match ctx.broker.outbound(client) {
                    Some(q) => ws::flush(
                        &mut c.transport,
                        q,
                        ws,
                        closing_reason,
                        &mut ctx.deflater,
                        &mut ctx.arena,
                    ),
                    None => Ok(true),
                }
            }
            Kind::WsHandshake { out, .. } | Kind::Http { out, .. } => c.transport.write_buf(out),
            Kind::Leaf { client, link } => {
                let client = *client;
                match link::connected(&mut c.transport, link, &c.log_id) {
                    Ok(true) => match (ctx.broker.outbound(client), link.ws.as_mut()) {
                        (Some(q), Some(ws)) => link::flush_ws(
                            &mut c.transport,
                            ws,
                            q,
                            &mut ctx.deflater,
                            &mut ctx.arena,
                        ),
                        (Some(q), None) => nats::flush(&mut c.transport, q),
                        (None, _) => Ok(true),
                    },
                    other => other,
                }
            }
        };
    }
    let Some(c) = ctx.conns.get_mut(key) else {
        return;
    };
    if let Some(client) = c.kind.client() {
        let mut resume_decoding = false;
        if let Kind::Leaf { link, .. } = &c.kind
            && let Some(ws) = &link.ws
        {
            ctx.broker.set_transport_backlog(client, ws.backlog(), now);
        }
        if let Kind::Ws { ws, .. } = &mut c.kind {
            ctx.broker.set_transport_backlog(client, ws.backlog(), now);
            if ws.decode_paused && !ws.owes_too_much() {
                ws.decode_paused = false;
                resume_decoding = true;
            }
        }
        ctx.broker.handle_flushed(client, now);
        if resume_decoding {
            // Decode what was left in the read buffer, then read again.
            process_input(ctx, key, now);
            ctx.conns.queue_ready(key);
        }
        let Some(c) = ctx.conns.get_mut(key) else {
            return;
        };
        if c.read_paused
            && ctx.broker.outbound(client).map_or(0, |q| q.len()) < READ_PAUSE_PENDING_BYTES / 2
        {
            c.read_paused = false;
            ctx.conns.queue_ready(key);
        }
    }
    let Some(c) = ctx.conns.get_mut(key) else {
        return;
    };
    let drained = match res {
        Ok(d) => d && !c.transport.has_pending(),
        Err(e) => {
            log::debug!("{} - write error: {e}", c.peer);
            c.write_failed = true;
            match c.kind.client() {
                Some(client) => ctx
                    .broker
                    .close_client(client, now, CloseReason::WriteError),
                None => ctx.conns.schedule_reap(key, now, false),
            }
            return;
        }
    };
    if let Kind::Http {
        close_after: true, ..
    } = c.kind
        && drained
    {
        ctx.conns.schedule_reap(key, now, false);
        return;
    }
    if let Kind::Http { out, .. } = &c.kind
        && out.is_empty()
        && !c.in_buf.is_empty()
    {
        // Answer the pipelined requests held back, then read again.
        process_input(ctx, key, now);
        ctx.conns.queue_ready(key);
    }
    let Some(c) = ctx.conns.get_mut(key) else {
        return;
    };
    let want = conn::interest(!drained);
    if want != c.interest {
        c.interest = want;
        if let Err(e) = ctx
            .registry
            .reregister(&mut c.transport.stream, table::token(key), want)
        {
            log::debug!("reregister: {e}");
        }
    }
}

/// Runs the broker's timers and each connection deadline that passed through its handler.
/// `ws_on_http`: WebSocket shares the monitoring port.
pub(super) fn fire_timers(ctx: &mut Ctx, now: Instant, ws_on_http: bool) {
    ctx.broker.handle_timeout(now);
    while let Some(key) = ctx.conns.pop_expired(now) {
        let Some(c) = ctx.conns.get(key) else {
            continue;
        };
        match &c.kind {
            Kind::Nats { .. } => nats::timer(ctx, key, now),
            Kind::Ws { .. } => {}
            Kind::WsHandshake { .. } => ws::handshake_timer(ctx, key, now),
            Kind::Http { .. } => http::timer(ctx, key, now, ws_on_http),
            Kind::Leaf { .. } => {}
        }
    }
}

/// Removes the connections closed this tick, once their last bytes are out or their linger
/// is spent.
pub(super) fn reap(ctx: &mut Ctx, now: Instant) {
    if ctx.conns.to_reap.is_empty() {
        return;
    }
    let keys = std::mem::take(&mut ctx.conns.to_reap);
    for key in keys {
        let Some(c) = ctx.conns.get(key) else {
            continue;
        };
        let client = c.kind.client();
        let pending = !c.write_failed
            && (c.transport.has_pending()
                || match &c.kind {
                    Kind::Nats { client } => {
                        ctx.broker.outbound(*client).is_some_and(|q| !q.is_empty())
                    }
                    Kind::Leaf { client, link } => {
                        link.ws.as_ref().is_some_and(|ws| !ws.wire.is_empty())
                            || ctx.broker.outbound(*client).is_some_and(|q| !q.is_empty())
                    }
                    Kind::Ws { client, ws } => {
                        !ws.wire.is_empty()
                            || ws.frame_head.is_some()
                            || ctx.broker.outbound(*client).is_some_and(|q| !q.is_empty())
                            || (!ws.close_sent && c.close_reason.is_some_and(CloseReason::flushes))
                    }
                    Kind::WsHandshake { out, .. } | Kind::Http { out, .. } => !out.is_empty(),
                });
        if pending && c.linger_until.is_some_and(|t| now < t) {
            // Keep it until the last bytes are out (WRITABLE is registered).
            ctx.conns.to_reap.push(key);
            continue;
        }
        let mut c = ctx.conns.remove(key);
        if let Some(check) = &c.auth_parked {
            check.withdraw();
        }
        if !c.write_failed {
            c.transport.send_close_notify();
        }
        let _ = ctx.registry.deregister(&mut c.transport.stream);
        if let Some(client) = client {
            ctx.broker.remove_client(client, now);
            ctx.monitor.ops.conn_removed(client);
        }
        if let Kind::Leaf { link, .. } = c.kind {
            // A connect that never completed fails as Go's dialer words it.
            let failure = if link.connected {
                link.failure
            } else {
                Some(format!(
                    "dial tcp {}: connect: {}",
                    c.peer,
                    link.failure
                        .as_deref()
                        .map_or_else(|| "i/o timeout".to_owned(), go_io_text)
                ))
            };
            ctx.link_events.push(LinkEvent::Closed {
                link: link.link,
                url: link.url,
                failure,
                delay: link.delay,
            });
        }
    }
}

/// An OS error as Go prints it: `connection refused`, not `Connection refused (os error 111)`.
fn go_io_text(text: &str) -> String {
    let text = text.rsplit(": ").next().unwrap_or(text);
    let text = text.split(" (os error").next().unwrap_or(text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
