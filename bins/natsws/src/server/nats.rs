//! NATS over TCP (or TLS): accepting a client, its input, its flush and its TLS handshake
//! deadline. nats-server sends INFO in plaintext and then expects the client to start TLS.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use broker::{ClientId, ClientParams, CloseReason, ConnectionType};
use mio::net::TcpStream;

use super::ctx::Ctx;
use super::table::Kind;
use crate::conn::Transport;

/// Most `IoSlice`s per vectored write.
pub(super) const MAX_IOSLICES: usize = 64;

/// Registers a new client with the broker (which queues its INFO) and adds its connection.
/// `None` when the connection could not be added (the client is then gone again).
pub(super) fn accept(
    ctx: &mut Ctx,
    stream: TcpStream,
    peer: SocketAddr,
    conn_type: ConnectionType,
    now: Instant,
) -> Option<usize> {
    let mut params = ClientParams::new(conn_type, peer);
    params.nonce_bytes = crate::ids::nonce_bytes();
    let client = ctx.broker.register_client(now, params);
    let Some(key) = ctx
        .conns
        .insert(&ctx.registry, stream, peer, Kind::Nats { client }, None)
    else {
        ctx.broker.close_client(client, now, CloseReason::ReadError);
        ctx.broker.remove_client(client, now);
        return None;
    };
    ctx.conns.link_client(client, key);
    let cid = ctx.broker.cid(client).unwrap_or(0);
    let leaf = conn_type == ConnectionType::Leaf;
    if let Some(c) = ctx.conns.get_mut(key) {
        // nats-server's `cid:` for NATS clients, `lid:` for leafs, `mid:` for MQTT ones.
        let kind = match conn_type {
            ConnectionType::Leaf => "lid",
            ConnectionType::Mqtt => "mid",
            _ => "cid",
        };
        c.log_id = format!("{peer} - {kind}:{cid}");
    }
    if leaf {
        // nats-server names no account yet: the leaf has not authenticated.
        log::info!("{peer} - lid:{cid} - Leafnode connection created ");
    } else if let Some(c) = ctx.conns.get(key) {
        log::debug!("{} - Client connection created", c.log_id);
    }
    Some(key)
}

/// Starts the server side of TLS once INFO is written, under the `tls.timeout` deadline.
pub(super) fn start_tls(ctx: &mut Ctx, key: usize, cfg: Arc<rustls::ServerConfig>, now: Instant) {
    let Some(c) = ctx.conns.get_mut(key) else {
        return;
    };
    let Some(client) = c.kind.client() else {
        return;
    };
    let log_id = c.log_id.clone();
    match rustls::ServerConnection::new(cfg) {
        Ok(tls) => {
            c.transport.tls = Some(Box::new(tls.into()));
            ctx.monitor.ops.conn_tls(client);
            let timeout = ctx.settings.tls_timeout;
            ctx.conns.set_deadline(key, now + timeout);
            log::debug!("{log_id} - Starting TLS client connection handshake");
        }
        Err(e) => {
            log::error!("{log_id} - TLS setup error: {e}");
            ctx.broker
                .close_client(client, now, CloseReason::TlsHandshakeFailure);
        }
    }
}

/// Hands what was read to the broker (once a TLS handshake has completed).
pub(super) fn input(ctx: &mut Ctx, key: usize, client: ClientId, now: Instant) {
    let Some(c) = ctx.conns.get_mut(key) else {
        return;
    };
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
        ctx.broker.set_tls_info(client, version, cipher);
    }
    if !c.in_buf.is_empty() {
        ctx.broker.handle_input(client, now, &mut c.in_buf);
    }
    ctx.pause_if_backlogged(key, client);
}

/// Writes an outbound queue with vectored writes until it is empty or the socket would block.
/// Returns whether the queue was drained.
pub(super) fn flush(transport: &mut Transport, q: &mut broker::OutQueue) -> io::Result<bool> {
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

/// The connection's deadline passed: only the TLS handshake has one.
pub(super) fn timer(ctx: &mut Ctx, key: usize, now: Instant) {
    let Some(c) = ctx.conns.get(key) else {
        return;
    };
    if c.transport.tls_handshaking() {
        log::error!("{} - TLS handshake timeout", c.log_id);
        ctx.close_conn(key, now, CloseReason::TlsHandshakeFailure);
    }
}
