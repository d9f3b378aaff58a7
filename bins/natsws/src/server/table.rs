//! The connection table: a `Slab` of connections keyed by their mio token, the client → key
//! index the broker's events are routed by, the queues of one loop tick (dirty: flush once;
//! ready: read budget ran out; to reap: remove at the end of the tick) and the timer heap,
//! whose entries carry the connection's uid so that a reused slab key never fires a stale
//! deadline.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use broker::{ClientId, CloseReason};
use bytes::{Bytes, BytesMut};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use slab::Slab;

use crate::conn::Transport;
use crate::outbound::DialUrl;

/// Connection tokens are slab keys offset past the loop's own tokens.
pub(super) const CONN_TOKEN_BASE: usize = 16;
/// How long a closing connection may take to flush its last bytes.
pub(super) const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// Most WebSocket control replies (pongs, at most 127 bytes each) owed to a peer before
/// its input is no longer decoded until they are written.
const MAX_OWED_CONTROL_REPLIES: usize = 64;

/// The mio token of a connection.
pub(super) fn token(key: usize) -> Token {
    Token(key + CONN_TOKEN_BASE)
}

/// What speaks on a connection; each kind has its handler module (`nats`, `ws`, `http`).
#[derive(Debug)]
pub(super) enum Kind {
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
    /// A leaf-node connection natsws dialed to a hub (`link`): a broker leaf session.
    Leaf {
        client: ClientId,
        link: Box<LeafConn>,
    },
}

impl Kind {
    pub(super) fn client(&self) -> Option<ClientId> {
        match self {
            Self::Nats { client } | Self::Ws { client, .. } | Self::Leaf { client, .. } => {
                Some(*client)
            }
            Self::Http { .. } | Self::WsHandshake { .. } => None,
        }
    }
}

/// The WebSocket side of a NATS-over-WebSocket connection.
#[derive(Debug)]
pub(super) struct WsConn {
    pub(super) decoder: ws_codec::Decoder,
    pub(super) encoder: ws_codec::Encoder,
    /// Framed bytes (the `101`, frames) not yet written, in order.
    pub(super) wire: VecDeque<Bytes>,
    /// Payload bytes taken out of data frames, waiting for the NATS parser.
    pub(super) nats_in: BytesMut,
    pub(super) close_sent: bool,
    /// The close frame owed to the peer (the echo of its close, or a protocol error's):
    /// sent after the output of what was decoded before it, then nothing more (RFC 6455
    /// §5.5.1; nats-server's `flushOutbound` also sends its close message last).
    pub(super) owed_close: Option<ws_codec::Control>,
    /// The header of the frame being written in place (the uncompressed single-frame fast
    /// path): it and its payload go out before anything in `wire`.
    pub(super) frame_head: Option<ws_codec::InPlaceHeader>,
    /// Bytes of `frame_head` written.
    pub(super) frame_head_written: usize,
    /// Bytes at the front of the broker's queue that belong to the frame of `frame_head`,
    /// not yet written.
    pub(super) frame_remaining: usize,
    /// Control replies (pongs) framed into `wire` since it was last empty.
    pub(super) owed_controls: usize,
    /// Decoding (and reading) stopped until the owed control replies are written.
    pub(super) decode_paused: bool,
}

impl WsConn {
    /// Frames the control replies the decoder owes (pong, close); nothing after a close was
    /// sent. Returns whether anything was queued.
    pub(super) fn queue_control_replies(&mut self, arena: &mut BytesMut) -> bool {
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
    pub(super) fn backlog(&self) -> usize {
        let head = self.frame_head.as_ref().map_or(0, |h| {
            h.as_bytes().len().saturating_sub(self.frame_head_written)
        });
        head + self.wire.iter().map(Bytes::len).sum::<usize>()
    }

    /// A peer that sends pings and never reads would otherwise make the pongs owed to it grow
    /// without bound: past this many, decoding stops until they are written.
    pub(super) fn owes_too_much(&self) -> bool {
        self.owed_controls >= MAX_OWED_CONTROL_REPLIES
    }
}

/// The dialing side of a leaf connection (see `link` and `crate::outbound`).
#[derive(Debug)]
pub(super) struct LeafConn {
    /// The remote's index in `link::Links`.
    pub(super) link: usize,
    pub(super) url: DialUrl,
    /// The TLS client configuration, when the remote has one.
    pub(super) tls: Option<Arc<rustls::ClientConfig>>,
    /// The non-blocking TCP connect completed.
    pub(super) connected: bool,
    /// The local account, for the logs.
    pub(super) account: String,
    /// TLS was started after the hub's INFO, and its handshake finished.
    pub(super) tls_started: bool,
    pub(super) tls_done: bool,
    /// Why the connection ended, when the loop (not the hub) ended it.
    pub(super) failure: Option<String>,
    /// The wait before dialing again that the broker asked for (a loop, 30 s).
    pub(super) delay: Option<Duration>,
    /// The WebSocket side of a `ws://`/`wss://` remote.
    pub(super) ws: Option<Box<WsLink>>,
}

/// Mask keys for the frames a leaf sends as a WebSocket client (RFC 6455 §5.3), from the
/// OS; none once the hub agreed to `Nats-No-Masking`.
#[derive(Debug, Clone, Copy)]
pub(super) struct OsMaskKeys {
    pub(super) masking: bool,
}

impl ws_codec::MaskKeySource for OsMaskKeys {
    fn next_mask_key(&mut self) -> Option<[u8; 4]> {
        if !self.masking {
            return None;
        }
        let mut key = [0u8; 4];
        // Without OS randomness the key is still a key; RFC 6455 asks for unpredictability
        // to protect proxies, which a failing OS generator cannot give anyway.
        let _ = crate::ids::os_random(&mut key);
        Some(key)
    }
}

/// The client side of a leaf connection over WebSocket.
#[derive(Debug)]
pub(super) struct WsLink {
    /// The upgrade, until the hub's `101` is read.
    pub(super) handshake: Option<ws_handshake::ClientHandshake>,
    pub(super) decoder: ws_codec::Decoder,
    pub(super) encoder: ws_codec::Encoder<OsMaskKeys>,
    /// Framed bytes (the upgrade request, frames) not yet written, in order.
    pub(super) wire: VecDeque<Bytes>,
    /// Payload bytes taken out of data frames, waiting for the broker's parser.
    pub(super) nats_in: BytesMut,
}

impl WsLink {
    pub(super) fn backlog(&self) -> usize {
        self.wire.iter().map(Bytes::len).sum()
    }
}

/// What happened to an outbound link's connection, for `link::Links`.
#[derive(Debug)]
pub(super) enum LinkEvent {
    Established {
        link: usize,
    },
    Closed {
        link: usize,
        url: DialUrl,
        failure: Option<String>,
        delay: Option<Duration>,
    },
}

/// One connection of the table.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) uid: u64,
    pub(super) transport: Transport,
    pub(super) peer: SocketAddr,
    pub(super) kind: Kind,
    pub(super) in_buf: BytesMut,
    pub(super) interest: Interest,
    pub(super) dirty: bool,
    pub(super) queued_ready: bool,
    /// Set once the connection is to be removed; output still drains until `linger_until`.
    pub(super) closing: bool,
    pub(super) linger_until: Option<Instant>,
    pub(super) write_failed: bool,
    /// TLS handshake or HTTP idle deadline.
    pub(super) deadline: Option<Instant>,
    pub(super) read_paused: bool,
    /// The broker parked this client's CONNECT for a password check: do not read until its
    /// verdict is in. Closing the connection withdraws a queued check.
    pub(super) auth_parked: Option<crate::hasher::Submitted>,
    /// An HTTP connection whose reply is being made by `Ctx::renders`: do not read.
    pub(super) awaiting_reply: bool,
    pub(super) log_id: String,
    /// `log_id` carries the client's CONNECT name.
    pub(super) log_named: bool,
    pub(super) close_reason: Option<CloseReason>,
}

/// The connections and the per-tick queues over them.
#[derive(Debug, Default)]
pub(super) struct Table {
    pub(super) slab: Slab<Conn>,
    by_client: Vec<Option<usize>>,
    next_uid: u64,
    pub(super) dirty: Vec<usize>,
    pub(super) ready: VecDeque<usize>,
    pub(super) to_reap: Vec<usize>,
    pub(super) timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
}

impl Table {
    pub(super) fn get(&self, key: usize) -> Option<&Conn> {
        self.slab.get(key)
    }

    pub(super) fn get_mut(&mut self, key: usize) -> Option<&mut Conn> {
        self.slab.get_mut(key)
    }

    pub(super) fn contains(&self, key: usize) -> bool {
        self.slab.contains(key)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    pub(super) fn iter(&self) -> slab::Iter<'_, Conn> {
        self.slab.iter()
    }

    /// Registers an accepted socket for reading and adds it. `None` when registering fails.
    pub(super) fn insert(
        &mut self,
        registry: &Registry,
        mut stream: TcpStream,
        peer: SocketAddr,
        kind: Kind,
        tls: Option<Box<rustls::Connection>>,
    ) -> Option<usize> {
        let entry = self.slab.vacant_entry();
        let key = entry.key();
        if let Err(e) = registry.register(&mut stream, token(key), Interest::READABLE) {
            log::error!("register: {e}");
            return None;
        }
        let _ = stream.set_nodelay(true);
        self.next_uid += 1;
        let uid = self.next_uid;
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

    /// Removes a connection and its client index entry.
    pub(super) fn remove(&mut self, key: usize) -> Conn {
        let c = self.slab.remove(key);
        if let Some(client) = c.kind.client()
            && let Some(slot) = self.by_client.get_mut(client.index())
            && *slot == Some(key)
        {
            *slot = None;
        }
        c
    }

    pub(super) fn link_client(&mut self, client: ClientId, key: usize) {
        let idx = client.index();
        if self.by_client.len() <= idx {
            self.by_client.resize(idx + 1, None);
        }
        if let Some(slot) = self.by_client.get_mut(idx) {
            *slot = Some(key);
        }
    }

    /// The connection of a broker client.
    pub(super) fn conn_of(&self, client: ClientId) -> Option<usize> {
        let key = (*self.by_client.get(client.index())?)?;
        (self.slab.get(key)?.kind.client() == Some(client)).then_some(key)
    }

    pub(super) fn set_deadline(&mut self, key: usize, at: Instant) {
        if let Some(c) = self.slab.get_mut(key) {
            c.deadline = Some(at);
            self.timers.push(Reverse((at, key, c.uid)));
        }
    }

    /// The earliest connection deadline (possibly stale: spurious wake-ups are harmless).
    pub(super) fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Pops the next deadline due at `now` that is still the connection's own, clearing it.
    pub(super) fn pop_expired(&mut self, now: Instant) -> Option<usize> {
        while let Some(Reverse((t, key, uid))) = self.timers.peek().copied() {
            if t > now {
                return None;
            }
            self.timers.pop();
            let Some(c) = self.slab.get_mut(key) else {
                continue;
            };
            if c.uid != uid || c.deadline != Some(t) {
                continue;
            }
            c.deadline = None;
            return Some(key);
        }
        None
    }

    /// Queues a connection for one flush this tick.
    pub(super) fn mark_dirty(&mut self, key: usize) {
        if let Some(c) = self.slab.get_mut(key)
            && !c.dirty
        {
            c.dirty = true;
            self.dirty.push(key);
        }
    }

    /// Queues a connection to be read again next tick (its read budget ran out, or it was
    /// resumed).
    pub(super) fn queue_ready(&mut self, key: usize) {
        if let Some(c) = self.slab.get_mut(key)
            && !c.queued_ready
        {
            c.queued_ready = true;
            self.ready.push_back(key);
        }
    }

    /// An idle connection with an empty read buffer gives its memory back.
    pub(super) fn release_idle_buffer(&mut self, key: usize) {
        if let Some(c) = self.slab.get_mut(key)
            && c.in_buf.is_empty()
            && c.in_buf.capacity() > 0
        {
            c.in_buf = BytesMut::new();
        }
    }

    /// Marks a connection for removal at the end of the tick, after lingering to flush when
    /// `flush` is set.
    pub(super) fn schedule_reap(&mut self, key: usize, now: Instant, flush: bool) {
        if let Some(c) = self.slab.get_mut(key) {
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

    /// The earliest end of a closing connection's linger: a closing connection whose peer
    /// stops reading is removed then, even on an otherwise idle server.
    pub(super) fn next_linger_end(&self) -> Option<Instant> {
        self.to_reap
            .iter()
            .filter_map(|key| self.slab.get(*key).and_then(|c| c.linger_until))
            .min()
    }
}
