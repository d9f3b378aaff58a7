//! What every connection handler works on: the connection table, the broker, the running
//! settings, the WebSocket codec state shared by all connections (one deflater and inflater
//! per loop, docs/style.md §4) and what the monitoring endpoints report. Handlers (`nats`,
//! `ws`, `http`, `link`) take a `&mut Ctx`; only the loop (`Server`) holds the listeners,
//! signals, password checks and outbound links besides.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use broker::{Broker, ClientId, CloseReason};
use bytes::BytesMut;
use mio::Registry;

use super::table::{Kind, LinkEvent, Table};
use crate::monitor::{Bound, Clock};
use crate::settings::Settings;

/// Stop reading from a client whose own output queue is above this many bytes.
pub(super) const READ_PAUSE_PENDING_BYTES: usize = 4 * 1024 * 1024;

/// The loop's state that connection handlers share.
#[derive(Debug)]
pub(super) struct Ctx {
    pub(super) registry: Registry,
    pub(super) conns: Table,
    pub(super) broker: Broker,
    pub(super) settings: Settings,
    /// The WebSocket upgrade policy (origins, cookies, headers), built once per config.
    pub(super) ws_policy: Option<ws_handshake::Policy>,
    pub(super) deflater: ws_codec::Deflater,
    pub(super) inflater: ws_codec::Inflater,
    /// Scratch space the WebSocket encoder frames into.
    pub(super) arena: BytesMut,
    pub(super) monitor: MonitorState,
    /// Outbound link connections established or removed this tick, for `link::Links`.
    pub(super) link_events: Vec<LinkEvent>,
    /// Monitoring replies too large to make within one tick (`http::defer_reply`).
    pub(super) renders: crate::render::Renders,
    /// The MQTT store directory, when `store_dir` is configured.
    pub(super) mqtt_store: Option<crate::mqtt_store::MqttStore>,
    /// The full resolver's directory, when the claim services run.
    pub(super) claims: Option<super::claims::ClaimsStore>,
}

/// What the monitoring endpoints read besides the broker and the settings.
#[derive(Debug)]
pub(super) struct MonitorState {
    pub(super) clock: Clock,
    pub(super) start: Instant,
    pub(super) config_load_time: Instant,
    pub(super) http_req_stats: BTreeMap<String, u64>,
    /// The ports bound (a copy of the listeners', refreshed after a reload).
    pub(super) bound: Bound,
    /// False once shutdown began (`/healthz`).
    pub(super) healthy: bool,
    /// What `/metrics` and the console show besides the broker's counters.
    pub(super) ops: crate::monitor::Ops,
}

impl Ctx {
    /// Closes a connection: through the broker for clients (which emits `Closed`), directly
    /// otherwise.
    pub(super) fn close_conn(&mut self, key: usize, now: Instant, reason: CloseReason) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        match c.kind.client() {
            Some(client) => {
                if self.broker.is_open(client) {
                    self.broker.close_client(client, now, reason);
                } else {
                    self.conns.schedule_reap(key, now, false);
                }
            }
            None => {
                let flush = matches!(c.kind, Kind::Http { .. });
                self.conns
                    .schedule_reap(key, now, flush && reason.flushes());
            }
        }
    }

    /// The websocket handshake deadline, if one is configured.
    pub(super) fn ws_handshake_timeout(&self) -> Option<Duration> {
        self.settings
            .websocket
            .as_ref()
            .map(|w| w.handshake_timeout)
            .filter(|t| !t.is_zero())
    }

    /// Stops reading a client whose output queue has grown past
    /// [`READ_PAUSE_PENDING_BYTES`]; a flush resumes it.
    pub(super) fn pause_if_backlogged(&mut self, key: usize, client: ClientId) {
        let pending = self.broker.outbound(client).map_or(0, |q| q.len());
        if pending > READ_PAUSE_PENDING_BYTES
            && let Some(c) = self.conns.get_mut(key)
        {
            c.read_paused = true;
        }
    }
}
