//! NATS over WebSocket: the upgrade (ws-handshake, with nats-server's TLS sniffing), then
//! frames in (ws-codec's decoder, inflation in bounded chunks) and NATS out, framed at flush
//! time as one batch (`wsCollapsePtoNB`), with the close frame last.

use std::cmp::Reverse;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use broker::{Broker, ClientId, ClientParams, CloseReason, ConnectionType};
use bytes::{Buf as _, Bytes, BytesMut};
use mio::net::TcpStream;

use super::ctx::Ctx;
use super::nats::MAX_IOSLICES;
use super::table::{Conn, Kind, WsConn};
use crate::conn::Transport;

/// Most payload bytes a WebSocket connection's compressed message is inflated by per tick.
const INFLATE_BYTES_PER_TICK: usize = crate::conn::READ_BUDGET_BYTES;

/// Adds a connection accepted on the websocket listener; its upgrade request is read next.
pub(super) fn accept(
    ctx: &mut Ctx,
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    now: Instant,
) -> Option<usize> {
    let tls = tls
        .and_then(|cfg| rustls::ServerConnection::new(cfg).ok())
        .map(|tls| Box::new(tls.into()));
    let handshake = ws_handshake::ServerHandshake::new(tls.is_some());
    let kind = Kind::WsHandshake {
        handshake,
        out: BytesMut::new(),
    };
    let key = ctx.conns.insert(&ctx.registry, stream, peer, kind, tls)?;
    if let Some(t) = ctx.ws_handshake_timeout() {
        ctx.conns.set_deadline(key, now + t);
    }
    Some(key)
}

/// Go's TLS server answers a plain-HTTP request with a readable 400 instead of an alert: a
/// connection on a TLS websocket port whose first byte is a letter rather than a TLS record
/// (0x16, handshake) becomes an HTTP connection that sends that 400 and closes. Returns
/// whether it did.
pub(super) fn refuse_plain_http(c: &mut Conn) -> bool {
    if !(matches!(c.kind, Kind::WsHandshake { .. })
        && c.transport.tls.as_ref().is_some_and(|t| t.is_handshaking()))
    {
        return false;
    }
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
        return true;
    }
    false
}

/// Reads the upgrade request: refusals (kept alive when nats-server keeps them alive), or the
/// `101` after which the connection is a broker client speaking WebSocket.
pub(super) fn handshake_input(ctx: &mut Ctx, key: usize, now: Instant) {
    let handshake_timeout = ctx.ws_handshake_timeout();
    let Some(policy) = ctx.ws_policy.as_ref() else {
        ctx.conns.schedule_reap(key, now, false);
        return;
    };
    let Some(c) = ctx.conns.slab.get_mut(key) else {
        return;
    };
    if c.transport.tls_handshaking() {
        return;
    }
    let unix_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .ok();
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
                        ctx.conns.dirty.push(key);
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
                ctx.monitor.ops.handshake_refused(reject.status());
                match handshake.after_reject() {
                    Some(after) if after.keep_alive() => {
                        pending.extend_from_slice(&out);
                        out.clear();
                        c.in_buf.advance(after.consumed().min(c.in_buf.len()));
                        handshake.next_request();
                        if let Some(t) = handshake_timeout {
                            c.deadline = Some(now + t);
                            ctx.conns.timers.push(Reverse((now + t, key, c.uid)));
                        }
                        if !c.dirty {
                            c.dirty = true;
                            ctx.conns.dirty.push(key);
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
                            ctx.conns.dirty.push(key);
                        }
                        return;
                    }
                }
            }
        }
    };
    let meta = crate::monitor::ConnMeta::websocket(
        c.in_buf.get(..upgrade.head_len).unwrap_or_default(),
        c.transport.tls.is_some(),
        upgrade.compression,
    );
    c.in_buf.advance(upgrade.head_len.min(c.in_buf.len()));
    c.deadline = None;
    // A leaf on the WebSocket port is served when the leafnode port is configured, as
    // nats-server requires; MQTT when the mqtt block is.
    let leaf = upgrade.kind == ws_handshake::PathKind::Leaf && ctx.settings.leaf.listen.is_some();
    let mqtt_ws = upgrade.kind == ws_handshake::PathKind::Mqtt && ctx.settings.mqtt.is_some();
    if upgrade.kind != ws_handshake::PathKind::Client && !leaf && !mqtt_ws {
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
        ctx.conns.mark_dirty(key);
        return;
    }
    let peer = c.peer;
    let conn_type = if leaf {
        ConnectionType::LeafWebSocket
    } else if mqtt_ws {
        ConnectionType::MqttWebSocket
    } else {
        ConnectionType::WebSocket
    };
    let mut params = ClientParams::new(conn_type, peer);
    params.forwarded_for = upgrade.forwarded_for.map(|ip| ip.to_string());
    if let Some(ws) = &ctx.settings.websocket {
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
    let max_payload = ctx.broker.config().limits.max_payload;
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
    params.nonce_bytes = crate::ids::nonce_bytes();
    let client = ctx.broker.register_client(now, params);
    ctx.monitor.ops.conn_opened(client, meta);
    let cid = ctx.broker.cid(client).unwrap_or(0);
    let Some(c) = ctx.conns.slab.get_mut(key) else {
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
            frame_head: None,
            frame_head_written: 0,
            frame_remaining: 0,
            owed_controls: 0,
            decode_paused: false,
        }),
    };
    // nats-server's `wid:` for NATS clients, `lid:` for leafs, `mid_ws:` for MQTT ones.
    let tag = if leaf {
        "lid"
    } else if mqtt_ws {
        "mid_ws"
    } else {
        "wid"
    };
    c.log_id = match &forwarded {
        Some(ip) => format!("{ip}/{peer} - {tag}:{cid}"),
        None => format!("{peer} - {tag}:{cid}"),
    };
    if leaf {
        log::info!("{} - Leafnode connection created ", c.log_id);
    } else {
        log::debug!("{} - Client connection created", c.log_id);
    }
    if upgrade.compression {
        log::trace!("{} - Websocket compression negotiated", c.log_id);
    }
    ctx.conns.link_client(client, key);
    ctx.conns.mark_dirty(key);
    if ctx.conns.get(key).is_some_and(|c| !c.in_buf.is_empty()) {
        input(ctx, key, now);
    }
}

/// Decodes frames from what was read and hands their payloads to the broker; queues the
/// control replies owed, and closes on a protocol error or the peer's close.
pub(super) fn input(ctx: &mut Ctx, key: usize, now: Instant) {
    let Some(c) = ctx.conns.slab.get_mut(key) else {
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
        let decoded = ws.decoder.decode(&mut c.in_buf, &mut ctx.inflater);
        queued_control |= ws.queue_control_replies(&mut ctx.arena);
        match decoded {
            Ok(Some(ws_codec::Event::Data(data))) => {
                handed += data.len();
                let parsed = data.len() >= MOVE_PAYLOAD_BYTES;
                moved = feed_ws_payload(&mut ctx.broker, client, now, &mut ws.nats_in, data);
                if parsed && ctx.broker.is_stalled(client) {
                    // The rest stays in the read buffer until `Event::Resumed`.
                    break;
                }
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
        // Sent after the output of what was decoded before the error (`flush`).
        ws.owed_close = Some(ws_codec::Control::Close(Some(e.close_frame())));
    }
    if !ws.nats_in.is_empty() {
        ctx.broker.handle_input(client, now, &mut ws.nats_in);
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
    ctx.broker.set_transport_backlog(client, backlog, now);
    if queued_control {
        ctx.conns.mark_dirty(key);
    }
    if inflate_more {
        ctx.conns.queue_ready(key);
    }
    if let Some(e) = failed {
        log::debug!("{log_id} - websocket protocol error: {e}");
        ctx.close_conn(key, now, CloseReason::ProtocolViolation);
    } else if peer_closed {
        ctx.close_conn(key, now, CloseReason::ClientClosed);
    } else {
        ctx.pause_if_backlogged(key, client);
    }
}

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

/// Frames and writes a WebSocket client's output at flush time: the frames already built
/// first, then everything queued by the broker as one flush (`wsCollapsePtoNB`), then the
/// close frame when the connection is closing. New output is framed only once the previous
/// frames are fully written, so the broker's queue (and its `max_pending`) bounds memory.
///
/// The uncompressed single-frame fast path writes its header from `WsConn::frame_head` and
/// its payload straight from the broker's queue; until that frame is written whole, it goes
/// before anything framed into `wire` meanwhile (a pong answering a ping that arrived while
/// the frame was half written), so nothing lands inside it.
pub(super) fn flush(
    transport: &mut Transport,
    q: &mut broker::OutQueue,
    ws: &mut WsConn,
    closing: Option<CloseReason>,
    deflater: &mut ws_codec::Deflater,
    arena: &mut BytesMut,
) -> io::Result<bool> {
    loop {
        if ws.wire.is_empty() && ws.frame_remaining == 0 && ws.frame_head.is_none() {
            // Every control reply framed so far is written.
            ws.owed_controls = 0;
            if let Some(header) = ws.encoder.in_place_header(q.len()) {
                // One frame for the whole flush: its header from ws-codec, then the queued
                // bytes written in place, with no copy.
                ws.frame_head = Some(header);
                ws.frame_head_written = 0;
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
        // The in-place frame first: the rest of its header, then its payload.
        let head = ws.frame_head.as_ref().map_or(&[][..], |h| {
            h.as_bytes().get(ws.frame_head_written..).unwrap_or(&[])
        });
        if !head.is_empty()
            && let Some(slot) = slices.get_mut(n)
        {
            *slot = IoSlice::new(head);
            n += 1;
        }
        let head_len = head.len();
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
        let mut wire_len = 0;
        if left == 0 {
            // Then what was framed after it.
            for chunk in &ws.wire {
                let Some(slot) = slices.get_mut(n) else {
                    break;
                };
                *slot = IoSlice::new(chunk);
                wire_len += chunk.len();
                n += 1;
            }
        }
        let mut written = transport.write_vectored(slices.get(..n).unwrap_or(&[]))?;
        if written == 0 {
            return Ok(false);
        }
        let from_head = written.min(head_len);
        ws.frame_head_written += from_head;
        written -= from_head;
        let n_payload = written.min(ws.frame_remaining);
        if n_payload > 0 {
            q.advance(n_payload);
            ws.frame_remaining -= n_payload;
            written -= n_payload;
        }
        if ws.frame_remaining == 0
            && ws
                .frame_head
                .is_some_and(|h| ws.frame_head_written >= h.as_bytes().len())
        {
            ws.frame_head = None;
        }
        let mut wire_left = written.min(wire_len);
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
        CloseReason::AuthenticationExpired => Ws::AuthenticationExpired,
        CloseReason::Revocation => Ws::Revocation,
        CloseReason::MaxAccountConnectionsExceeded => Ws::MaxAccountConnectionsExceeded,
        CloseReason::MinimumVersionRequired => Ws::MinimumVersionRequired,
        _ => {
            return ws_codec::CloseFrame::new(ws_codec::CloseCode::INTERNAL_ERROR, reason.as_str());
        }
    };
    ws.close_frame()
}

/// The upgrade (or the TLS handshake before it) took longer than `handshake_timeout`.
pub(super) fn handshake_timer(ctx: &mut Ctx, key: usize, now: Instant) {
    let Some(c) = ctx.conns.get(key) else {
        return;
    };
    let what = if c.transport.tls_handshaking() {
        "TLS handshake"
    } else {
        "websocket handshake"
    };
    log::error!("websocket: {what} error from {}: i/o timeout", c.peer);
    ctx.conns.schedule_reap(key, now, false);
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
