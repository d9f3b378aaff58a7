//! The broker: client table, sessions, timers and routing.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use serde::Serialize;

use crate::json::{self, ConnectJson};

use crate::authseam::{AuthState, AuthStep, Credentials, finish_hash};
use crate::config::{
    AccountConfig, Config, FIRST_CLIENT_PING_INTERVAL, RTT_MEASUREMENT_INTERVAL, WallClock,
};
use crate::outq::OutQueue;
use crate::proto::{LeafDelivery, Op, Parser, ParserLimits, ProtoError, PubRanges, Role};
use crate::router::{
    AccountId, PubRef, QueueFilter, ResponseRoute, Router, ServiceImport, SubKey, Subscription,
    validate_accounts,
};
use crate::session::{Client, ClientAuth, ClientOptions, PendingConnect, Phase, Renderer, Slot};
use crate::sublist::{InsertError, MatchResult, SublistStats, shrink_map};
use crate::types::{
    AccountInfo, ClientId, ClientInfo, ClientParams, CloseReason, ConnectionType, Event,
    ServerStats, SubInfo,
};
use crate::wire::Rendered;
use crate::{auth, subject};

mod connect;
mod introspect;
pub(crate) mod latency;
pub(crate) mod leaf;
mod mqtt;
pub(crate) mod reload;
mod routing;
pub(crate) mod services;
pub(crate) mod stall;
mod subs;
mod timers;
pub(crate) mod trace;

use introspect::sub_info;
pub(crate) use reload::StoredCredentials;

/// A small deterministic generator (splitmix64); the seed comes from [`Config::seed`].
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-enough value in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        let n64 = n as u64;
        if n64 == 0 {
            return 0;
        }
        usize::try_from(self.next_u64() % n64).unwrap_or(0)
    }
}

#[derive(Serialize)]
struct InfoJson<'a> {
    server_id: &'a str,
    server_name: &'a str,
    version: &'a str,
    proto: i32,
    #[serde(skip_serializing_if = "str::is_empty")]
    git_commit: &'a str,
    go: &'a str,
    host: &'a str,
    port: u16,
    headers: bool,
    #[serde(skip_serializing_if = "is_false")]
    auth_required: bool,
    #[serde(skip_serializing_if = "is_false")]
    tls_required: bool,
    #[serde(skip_serializing_if = "is_false")]
    tls_verify: bool,
    #[serde(skip_serializing_if = "is_false")]
    tls_available: bool,
    max_payload: usize,
    /// The leafnode INFO's `host:port` (`server/leafnode.go` `setLeafNodeInfoHostPortAndIP`).
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    client_id: u64,
    client_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    cluster: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    connect_urls: &'a [String],
    #[serde(skip_serializing_if = "is_false")]
    ldm: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    leafnode_urls: Option<&'a [String]>,
    #[serde(skip_serializing_if = "is_false")]
    info_on_connect: bool,
    #[serde(skip_serializing_if = "is_false")]
    connect_info: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_account: Option<&'a str>,
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_false(b: &bool) -> bool {
    !*b
}

/// The broker. See the crate docs for the call order.
#[derive(Debug)]
pub struct Broker {
    config: Config,
    auth: AuthState,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    /// The accounts, their subject indexes and every subscription.
    router: Router,
    events: VecDeque<Event>,
    timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    rng: Rng,
    next_cid: u64,
    stats: ServerStats,
    closed_ring: VecDeque<ClientInfo>,
    max_closed_clients: usize,
    start: Instant,
    urls_epoch: u64,
    /// Bumped by every reload; a parked CONNECT from an older epoch is authenticated again.
    auth_epoch: u64,
    /// Clients whose session a reload is re-checking (`Client::rechecking`); rebuilt by each
    /// reload, so at most one entry per client.
    rechecking: Vec<ClientId>,
    /// Scratch space for the `MSG` text of the message being routed (reused, never shrinks
    /// past the largest small message).
    rendered: Rendered,
    /// Scratch space for the subject of a message routed through a stream import.
    mapped_subject: Vec<u8>,
    /// The open leaf connections (interest propagates to each).
    leafs: Vec<ClientId>,
    /// Each account's loop-detection subject (`$LDS.` and a random suffix), made on first use.
    lds: HashMap<AccountId, Box<[u8]>>,
    /// Scratch space: the leaf subscriptions one message matched (leaf, subscription, queue).
    leaf_targets: Vec<(ClientId, SubKey, bool)>,
    /// Scratch space for one `LMSG` line.
    leaf_line: Vec<u8>,
    /// MQTT retained messages.
    retained: crate::mqtt::RetainedStore,
    /// MQTT sessions of `clean_session: false` clients between connections.
    mqtt_sessions: crate::mqtt::SessionStore,
    /// MQTT state changes to persist (only with [`Config::mqtt_persist`]), drained by
    /// [`Broker::poll_mqtt_store`].
    mqtt_store: VecDeque<crate::mqtt::store::StoreWrite>,
    /// When the kept sessions that collected deliveries are next written.
    mqtt_store_due: Option<Instant>,
    /// The subjects of the system services, by [`ServiceId`] index.
    services: Vec<Box<[u8]>>,
    /// The producers each connection that fell behind has stalled (`stall`); a producer is
    /// in at most one list.
    stalled_on: HashMap<ClientId, Vec<ClientId>>,
    /// The thresholds of tracked service requests (exporter, response subject): when one
    /// passes without a response, its timeout is reported ([`latency`]).
    latency_timers: BinaryHeap<latency::LatencyTimer>,
    /// The size of `latency_timers` at which its stale entries are dropped.
    latency_compact_at: usize,
    /// A measurement is being published: a request it makes through an import is not
    /// measured again, so imports between tracked services cannot chain measurements.
    publishing_latency: bool,
}

/// Default size of the closed-connections ring (`/connz?state=closed`).
pub const DEFAULT_MAX_CLOSED_CLIENTS: usize = 10_000;

/// Most subscriptions kept (lowest sids first) in a closed connection's record. nats-server
/// keeps them all; with unlimited subscriptions per client, the ring of closed connections
/// would then hold an unbounded amount of memory.
pub const MAX_CLOSED_SUBS: usize = 1024;

impl Broker {
    /// Creates a broker with `config`; `now` is the server start time.
    #[must_use]
    pub fn new(config: Config, now: Instant) -> Self {
        let rng = Rng(config.seed);
        let auth = AuthState::for_config(&config);
        let sublist_seed = config.seed.rotate_left(23) ^ 0x6a09_e667_f3bc_c908;
        let mut router = Router::new(sublist_seed);
        let (accounts, system) = served_accounts(&config, &auth);
        router.configure(&accounts, system.as_deref());
        let max_pending = config.limits.max_pending;
        Self {
            config,
            auth,
            slots: Vec::new(),
            free_slots: Vec::new(),
            // Derived from the seed without consuming the generator, so the sequence of queue
            // choices and jitter stays what it was.
            router,
            events: VecDeque::new(),
            timers: BinaryHeap::new(),
            rng,
            next_cid: 1,
            stats: ServerStats::default(),
            closed_ring: VecDeque::new(),
            max_closed_clients: DEFAULT_MAX_CLOSED_CLIENTS,
            start: now,
            urls_epoch: 0,
            auth_epoch: 0,
            rechecking: Vec::new(),
            rendered: Rendered::default(),
            mapped_subject: Vec::new(),
            leafs: Vec::new(),
            lds: HashMap::new(),
            leaf_targets: Vec::new(),
            leaf_line: Vec::new(),
            retained: crate::mqtt::RetainedStore::default(),
            mqtt_sessions: crate::mqtt::SessionStore::with_held_limits(crate::mqtt::HeldLimits {
                max_msgs: crate::mqtt::MAX_HELD_MESSAGES,
                max_bytes: max_pending,
            }),
            mqtt_store: VecDeque::new(),
            mqtt_store_due: None,
            services: Vec::new(),
            stalled_on: HashMap::new(),
            latency_timers: BinaryHeap::new(),
            latency_compact_at: latency::MIN_LATENCY_COMPACTION,
            publishing_latency: false,
        }
    }

    /// Like [`Broker::new`], but refuses an invalid auth configuration with the reference's
    /// start-up error text. (`new` accepts it and then refuses every CONNECT.)
    pub fn try_new(config: Config, now: Instant) -> Result<Self, auth::AuthConfigError> {
        crate::router::validate_latency(&config.accounts, config.system_account.is_some())?;
        validate_accounts(&config.accounts)?;
        let broker = Self::new(config, now);
        match broker.auth.error() {
            Some(err) => Err(err.clone()),
            None => Ok(broker),
        }
    }

    /// The auth configuration error, when the configuration given is invalid (the broker then
    /// refuses every CONNECT).
    #[must_use]
    pub fn auth_config_error(&self) -> Option<&auth::AuthConfigError> {
        self.auth.error()
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Server start time given to [`Broker::new`].
    #[must_use]
    pub fn start_time(&self) -> Instant {
        self.start
    }

    /// Applies a reloaded configuration. `max_payload`, `max_control_line`, ping settings,
    /// write deadline, auth and INFO facts take effect at once (existing connections get the
    /// new limits; nothing is pushed to them). `max_pending` and `max_subscriptions` are not
    /// reloadable in nats-server; the caller refuses such reloads. Connected clients keep
    /// their identity and permissions; [`Broker::reload`] also checks them again.
    pub fn set_config(&mut self, config: Config) {
        let mcl = config.limits.max_control_line;
        let mpay = config.limits.max_payload;
        if config.connect_urls != self.config.connect_urls
            || config.ws_connect_urls != self.config.ws_connect_urls
        {
            self.urls_epoch += 1;
        }
        self.auth = AuthState::for_config(&config);
        let (accounts, system) = served_accounts(&config, &self.auth);
        self.router.configure(&accounts, system.as_deref());
        self.config = config;
        for slot in &mut self.slots {
            if let Some(c) = slot.client.as_mut() {
                let jwt_payload = c.auth.max_payload;
                let limits = c.parser.limits_mut();
                limits.max_control_line = mcl;
                limits.max_payload = jwt_payload.map_or(mpay, |m| m.min(mpay));
            }
        }
    }

    /// The wall-clock time at `now` (Unix seconds), from [`Config::wall_clock`].
    pub(crate) fn unix_now(&self, now: Instant) -> i64 {
        self.config.wall_clock.map_or(0, |w| w.unix_at(now))
    }

    /// Sets the size of the closed-connections ring (default 10000).
    pub fn set_max_closed_clients(&mut self, n: usize) {
        self.max_closed_clients = n;
        while self.closed_ring.len() > n {
            self.closed_ring.pop_front();
        }
    }

    fn client(&self, id: ClientId) -> Option<&Client> {
        let slot = self.slots.get(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.client.as_ref()
    }

    fn client_mut(&mut self, id: ClientId) -> Option<&mut Client> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.client.as_mut()
    }

    fn open_client_mut(&mut self, id: ClientId) -> Option<&mut Client> {
        self.client_mut(id).filter(|c| !c.phase.is_closed())
    }

    /// Registers a new connection and queues its INFO. May close it at once (poll events):
    /// with `max_connections` reached it gets INFO, `-ERR 'maximum connections exceeded'` and
    /// [`Event::Closed`]. Call [`Broker::poll_timeout`] afterwards: the auth and ping timers run.
    ///
    /// A [`ConnectionType::Leaf`] or [`ConnectionType::LeafWebSocket`] connection registered
    /// here is an accepted leaf: its INFO is the leafnode port's and it must send a leaf
    /// CONNECT. A leaf connection natsws dialled is registered with [`Broker::register_leaf`].
    #[must_use = "the handle is the only way to address the client"]
    pub fn register_client(&mut self, now: Instant, params: ClientParams) -> ClientId {
        self.register(now, params, false)
    }

    pub(super) fn register(
        &mut self,
        now: Instant,
        params: ClientParams,
        solicited: bool,
    ) -> ClientId {
        let index = match self.free_slots.pop() {
            Some(i) => i,
            None => {
                let i = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                self.slots.push(Slot {
                    generation: 0,
                    client: None,
                });
                i
            }
        };
        let generation = self.slots.get(index as usize).map_or(0, |s| s.generation);
        let id = ClientId { index, generation };
        let cid = self.next_cid;
        self.next_cid += 1;
        let conn_type = params.conn_type;
        let is_leaf = matches!(
            conn_type,
            ConnectionType::Leaf | ConnectionType::LeafWebSocket
        );
        // A leaf on the leafnode port must authenticate first, whatever the client auth.
        let auth_expected = !solicited && (is_leaf || self.auth.auth_expected(conn_type));
        let nonce = if self.auth.nonce_required() && !solicited {
            let bytes = params.nonce_bytes.unwrap_or_else(|| {
                let a = self.rng.next_u64().to_le_bytes();
                let b = self.rng.next_u64().to_le_bytes();
                let mut out = [0u8; 11];
                for (o, v) in out.iter_mut().zip(a.iter().chain(b.iter())) {
                    *o = *v;
                }
                out
            });
            Some(base64_url(&bytes))
        } else {
            None
        };
        let leaf_timeout = self
            .config
            .leaf_auth
            .as_ref()
            .and_then(|a| a.timeout)
            .filter(|_| is_leaf);
        let auth_deadline = auth_expected
            .then(|| {
                now.checked_add(leaf_timeout.unwrap_or_else(|| {
                    self.auth
                        .auth_timeout(conn_type)
                        .unwrap_or(self.config.auth_timeout)
                }))
            })
            .flatten();
        let limits = ParserLimits {
            max_control_line: self.config.limits.max_control_line,
            max_payload: self.config.limits.max_payload,
            headers: false,
        };
        let counts_as_client = matches!(
            conn_type,
            ConnectionType::Standard
                | ConnectionType::WebSocket
                | ConnectionType::Mqtt
                | ConnectionType::MqttWebSocket
        );
        let mqtt = self.mqtt_state_for(conn_type);
        let is_mqtt = mqtt.is_some();
        // An MQTT connection must send CONNECT within the auth timeout whether or not auth is
        // configured, and gets no INFO and no server PINGs (its keep-alive is its own).
        let auth_deadline = if is_mqtt {
            now.checked_add(
                self.auth
                    .auth_timeout(conn_type)
                    .unwrap_or(self.config.auth_timeout),
            )
        } else {
            auth_deadline
        };
        let mut opts = ClientOptions::default();
        if is_mqtt {
            opts.verbose = false;
            opts.pedantic = false;
        }
        let client = Client {
            cid,
            params,
            phase: Phase::AwaitingConnect {
                auth_expected: auth_expected || is_mqtt,
            },
            parser: Parser::new(if is_leaf { Role::Leaf } else { Role::Server }, limits),
            renderer: if is_mqtt {
                Renderer::Mqtt
            } else {
                Renderer::ClientMsg
            },
            mqtt,
            out: OutQueue::new(),
            opts,
            auth: ClientAuth {
                nonce,
                deadline: auth_deadline,
                ..ClientAuth::default()
            },
            subs: HashMap::new(),
            ping_deadline: if is_mqtt {
                None
            } else {
                now.checked_add(self.config.ping_interval)
            },
            pings_out: 0,
            last_activity: now,
            last_client_ping: None,
            rtt: None,
            rtt_start: None,
            stall_since: None,
            consumed_seen: 0,
            backlog: 0,
            scheduled: None,
            flush_requested: false,
            in_msgs: 0,
            in_bytes: 0,
            out_msgs: 0,
            out_bytes: 0,
            start: now,
            counts_as_client,
            closed_subs: Vec::new(),
            first_pong_sent: false,
            announced_max_payload: self.config.limits.max_payload,
            urls_epoch: self.urls_epoch,
            leaf: None,
            producer_stall: None,
            latency_info: None,
        };
        if let Some(slot) = self.slots.get_mut(index as usize) {
            slot.client = Some(client);
        }
        self.stats.total_connections += 1;
        if is_leaf && !solicited {
            self.init_accepted_leaf(id);
        }
        if !solicited && !is_mqtt {
            let info = self.build_info(id, false);
            self.queue_bytes(id, now, &info);
        }
        if counts_as_client {
            if self.stats.connections >= self.config.limits.max_connections {
                // Never registered, so closing it must not decrement the count.
                if let Some(c) = self.client_mut(id) {
                    c.counts_as_client = false;
                }
                self.send_err(id, now, "maximum connections exceeded");
                self.close(id, now, CloseReason::MaxConnectionsExceeded);
                return id;
            }
            self.stats.connections += 1;
        }
        self.reschedule(id);
        id
    }

    fn build_info(&self, id: ClientId, ldm: bool) -> Vec<u8> {
        self.build_info_for(id, ldm, None)
    }

    /// The INFO line; for an accepted leaf, `connect_info` names its bound account (the
    /// INFO that answers its CONNECT).
    pub(super) fn build_info_for(
        &self,
        id: ClientId,
        ldm: bool,
        connect_info: Option<&str>,
    ) -> Vec<u8> {
        let Some(c) = self.client(id) else {
            return Vec::new();
        };
        let cfg = &self.config;
        let conn_type = c.params.conn_type;
        let ws = conn_type.is_websocket();
        let leaf = c.leaf.is_some();
        let listener = if leaf {
            cfg.leaf_listener.as_ref().unwrap_or(&cfg.client_listener)
        } else if ws {
            cfg.websocket_listener
                .as_ref()
                .unwrap_or(&cfg.client_listener)
        } else {
            &cfg.client_listener
        };
        let server_name = if cfg.server_name.is_empty() {
            &cfg.server_id
        } else {
            &cfg.server_name
        };
        let info = InfoJson {
            server_id: &cfg.server_id,
            server_name,
            version: &cfg.version,
            proto: 1,
            git_commit: &cfg.git_commit,
            go: &cfg.go,
            host: &listener.host,
            port: listener.port,
            headers: cfg.headers,
            // Always true on the leafnode port (`server/leafnode.go`).
            auth_required: leaf || self.auth.auth_required(conn_type),
            tls_required: listener.tls_required,
            tls_verify: listener.tls_verify,
            tls_available: listener.tls_available,
            max_payload: c.parser.limits().max_payload,
            ip: (leaf && cfg.leaf_listener.is_some()).then(|| {
                if listener.host.contains(':') {
                    format!("[{}]:{}", listener.host, listener.port)
                } else {
                    format!("{}:{}", listener.host, listener.port)
                }
            }),
            client_id: c.cid,
            client_ip: c.params.remote.ip().to_string(),
            // Only the first INFO carries the nonce; later ones are the server's INFO.
            nonce: c
                .auth
                .nonce
                .as_deref()
                .filter(|_| matches!(c.phase, Phase::AwaitingConnect { .. })),
            cluster: &cfg.cluster,
            connect_urls: if leaf {
                &[]
            } else if ws {
                &cfg.ws_connect_urls
            } else {
                &cfg.connect_urls
            },
            ldm,
            leafnode_urls: leaf.then_some(&cfg.leaf_urls[..]),
            info_on_connect: leaf,
            connect_info: connect_info.is_some(),
            remote_account: connect_info,
        };
        let mut out = b"INFO ".to_vec();
        if serde_json::to_writer(&mut out, &info).is_err() {
            return Vec::new();
        }
        out.extend_from_slice(b" \r\n");
        out
    }

    /// The INFO line this client was sent (rebuilt; for tests and async INFO).
    #[must_use]
    pub fn info_line(&self, client: ClientId) -> Option<Vec<u8>> {
        self.client(client).map(|_| self.build_info(client, false))
    }

    /// Feeds bytes read from the client. Parses every complete operation in `src`, leaving a
    /// partial tail in place. Then poll [`Broker::poll_event`] until `None` and re-read
    /// [`Broker::poll_timeout`]. Input for a closed or unknown client is discarded.
    pub fn handle_input(&mut self, client: ClientId, now: Instant, src: &mut BytesMut) {
        if self.is_mqtt(client) {
            self.mqtt_input(client, now, src);
            self.reschedule(client);
            return;
        }
        loop {
            let auth_cfg_has_no_auth_user;
            {
                let Some(c) = self.client_mut(client) else {
                    src.clear();
                    return;
                };
                if c.phase.is_closed() {
                    src.clear();
                    return;
                }
                if c.leaf
                    .as_ref()
                    .is_some_and(|l| matches!(l.stage, leaf::LeafStage::Refused { .. }))
                {
                    // Held until it is closed, unread (`leafNodeWaitBeforeClose`).
                    src.clear();
                    return;
                }
                if c.auth.parked.is_some()
                    || c.auth.leaf_parked.is_some()
                    || c.producer_stall.is_some()
                    || c.leaf
                        .as_ref()
                        .is_some_and(|l| l.stage == leaf::LeafStage::AwaitTls)
                {
                    break;
                }
                auth_cfg_has_no_auth_user = c.phase.awaiting_auth() && c.parser.at_op_start();
            }
            if auth_cfg_has_no_auth_user {
                let Some(&first) = src.first() else {
                    break;
                };
                if first != b'C' && first != b'c' && !self.bind_no_auth_user(client, now) {
                    self.auth_violation(client, now, None);
                    src.clear();
                    return;
                }
            }
            let Some(c) = self.client_mut(client) else {
                return;
            };
            if let Some(found) = c.parser.peek_pub(src) {
                self.fast_pub(client, now, src, &found);
                continue;
            }
            match c.parser.parse(src) {
                Ok(None) => break,
                Ok(Some(op)) => self.process_op(client, now, op),
                Err(err) => {
                    self.protocol_error(client, now, &err);
                    src.clear();
                    return;
                }
            }
        }
        self.reschedule(client);
    }

    fn protocol_error(&mut self, client: ClientId, now: Instant, err: &ProtoError) {
        if let Some(text) = err.err_text() {
            self.send_err(client, now, text);
        }
        self.close(client, now, err.close_reason());
    }

    fn process_op(&mut self, id: ClientId, now: Instant, op: Op) {
        if self.config.trace {
            self.trace_in(id, &op);
        }
        let leaf = self
            .client(id)
            .and_then(|c| c.leaf.as_ref())
            .map(|l| l.is_solicited());
        match op {
            Op::Connect(arg) => match leaf {
                None => self.process_connect(id, now, &arg),
                Some(false) => self.leaf_connect(id, now, &arg),
                Some(true) => self.close(id, now, CloseReason::ProtocolViolation),
            },
            Op::Info(arg) if leaf.is_some() => self.leaf_info(id, now, &arg),
            Op::Err(arg) if leaf.is_some() => self.leaf_err(id, now, &arg),
            Op::LeafSub { subject, queue } => self.process_leaf_sub(id, now, &subject, queue),
            Op::LeafUnsub { subject, queue } => {
                self.process_leaf_unsub(id, now, &subject, queue.as_ref());
            }
            Op::LeafMsg(msg) => self.process_leaf_msg(id, now, &msg),
            Op::Pub(publish) => self.process_pub(id, now, &PubRef::from_publish(&publish)),
            Op::Sub {
                subject,
                queue,
                sid,
            } => self.process_sub(id, now, subject, queue, sid),
            Op::Unsub { sid, max } => self.process_unsub(id, now, &sid, max),
            Op::Ping => {
                let urls_epoch = self.urls_epoch;
                let mut send_info = false;
                if let Some(c) = self.open_client_mut(id) {
                    c.last_client_ping = Some(now);
                    // The first PING of a protocol-1 client learns about changes since its INFO
                    // (`server/client.go` `processPing`): a new cluster topology, or a max
                    // payload that differs (a reload, or a JWT user's limit). The PONG is
                    // queued first, then the INFO, as the reference does.
                    if !c.first_pong_sent {
                        c.first_pong_sent = true;
                        let max_payload = c.parser.limits().max_payload;
                        send_info = c.opts.protocol >= 1
                            && (c.urls_epoch != urls_epoch
                                || c.announced_max_payload != max_payload);
                        c.urls_epoch = urls_epoch;
                        c.announced_max_payload = max_payload;
                    }
                }
                self.trace(id, || trace::op(false, "PONG", &[]));
                self.queue_bytes(id, now, b"PONG\r\n");
                if send_info {
                    let info = self.build_info(id, false);
                    self.queue_bytes(id, now, &info);
                }
            }
            Op::Pong => {
                if let Some(c) = self.open_client_mut(id) {
                    c.pings_out = 0;
                    if let Some(started) = c.rtt_start {
                        c.rtt = Some(now.saturating_duration_since(started));
                    }
                }
            }
            Op::Ok => {}
            Op::Info(arg) => {
                if json::check_info(&arg).is_err() {
                    self.close(id, now, CloseReason::ProtocolViolation);
                }
            }
            Op::Err(_) => self.close(id, now, CloseReason::ParseError),
            Op::Msg(_) => {
                self.send_err(id, now, "Unknown Protocol Operation");
                self.close(id, now, CloseReason::ProtocolViolation);
            }
        }
    }

    /// The trace of an inbound operation (PUB/HPUB are traced in `process_pub`).
    fn trace_in(&mut self, id: ClientId, op: &Op) {
        let line = match op {
            Op::Connect(arg) => {
                let arg = trace::redact_connect(arg);
                trace::op(true, "CONNECT", &[arg.as_bytes()])
            }
            Op::Sub {
                subject,
                queue,
                sid,
            } => match queue {
                Some(q) => trace::op(true, "SUB", &[subject, q, sid]),
                None => trace::op(true, "SUB", &[subject, sid]),
            },
            Op::Unsub { sid, max } => match max {
                Some(m) => trace::op(true, "UNSUB", &[sid, m.to_string().as_bytes()]),
                None => trace::op(true, "UNSUB", &[sid]),
            },
            Op::Ping => trace::op(true, "PING", &[]),
            Op::Pong => trace::op(true, "PONG", &[]),
            Op::LeafSub { subject, queue } => match queue {
                Some((q, w)) => trace::op(true, "LS+", &[subject, q, w.to_string().as_bytes()]),
                None => trace::op(true, "LS+", &[subject]),
            },
            Op::LeafUnsub { subject, queue } => match queue {
                Some(q) => trace::op(true, "LS-", &[subject, q]),
                None => trace::op(true, "LS-", &[subject]),
            },
            Op::Pub(_) | Op::Ok | Op::Info(_) | Op::Err(_) | Op::Msg(_) | Op::LeafMsg(_) => {
                return;
            }
        };
        self.trace(id, || line);
    }

    /// Queues a trace line when tracing is on; `line` runs only then.
    fn trace(&mut self, id: ClientId, line: impl FnOnce() -> String) {
        if self.config.trace {
            self.events.push_back(Event::Trace {
                client: id,
                line: line(),
            });
        }
    }

    fn send_ok(&mut self, id: ClientId, now: Instant) {
        self.trace(id, || trace::op(false, "OK", &[]));
        self.queue_bytes(id, now, b"+OK\r\n");
    }

    fn send_err(&mut self, id: ClientId, now: Instant, text: &str) {
        if self.is_mqtt(id) {
            // MQTT has no -ERR: nats-server logs the error instead.
            self.events.push_back(Event::ClientError {
                client: id,
                detail: text.to_owned(),
            });
            return;
        }
        self.trace(id, || trace::op(false, "-ERR", &[text.as_bytes()]));
        let mut line = Vec::with_capacity(text.len() + 10);
        line.extend_from_slice(b"-ERR '");
        line.extend_from_slice(text.as_bytes());
        line.extend_from_slice(b"'\r\n");
        self.queue_bytes(id, now, &line);
    }

    /// Queues protocol bytes for an open client (no `max_pending` accounting for control
    /// lines other than the total).
    fn queue_bytes(&mut self, id: ClientId, now: Instant, bytes: &[u8]) {
        let max_pending = self.config.limits.max_pending;
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        if c.pending() + bytes.len() > max_pending {
            self.slow_consumer(id, now, CloseReason::SlowConsumerPendingBytes);
            return;
        }
        let was_empty = c.pending() == 0;
        c.out.push_slice(bytes);
        if was_empty {
            c.stall_since = Some(now);
            c.consumed_seen = c.out.consumed();
        }
        if !c.flush_requested {
            c.flush_requested = true;
            self.events.push_back(Event::Flush(id));
        }
        if was_empty {
            // The write-deadline clock starts now.
            self.reschedule(id);
        }
    }

    fn slow_consumer(&mut self, id: ClientId, now: Instant, reason: CloseReason) {
        let Some(c) = self.client(id) else {
            return;
        };
        // nats-server exempts a client it still expects a CONNECT from, and only from the
        // write-deadline check (`client.go`, handleWriteTimeout); queueOutbound counts every
        // client over max_pending.
        if !(reason == CloseReason::SlowConsumerWriteDeadline && c.phase.awaiting_auth()) {
            let (pending_bytes, chunks) = (c.pending(), c.out.chunks().count());
            self.stats.slow_consumers += 1;
            self.events.push_back(Event::SlowConsumer {
                client: id,
                reason,
                pending_bytes,
                chunks,
            });
        }
        self.close(id, now, reason);
    }

    /// Closes a client (idempotent): removes its subscriptions, stops its timers, drops its
    /// queued output unless `reason.flushes()`, and emits [`Event::Closed`]. The binary calls
    /// this on EOF (`ClientClosed`), read/write errors and shutdown (`ServerShutdown`).
    pub fn close_client(&mut self, client: ClientId, now: Instant, reason: CloseReason) {
        self.close(client, now, reason);
    }

    /// Closes a client because a lowered `max_connections` no longer has room for it (a
    /// reload): it gets `-ERR 'maximum connections exceeded'` first, as nats-server's
    /// `maxConnExceeded` sends. Poll events afterwards.
    pub fn close_for_max_connections(&mut self, client: ClientId, now: Instant) {
        if self.is_open(client) {
            self.send_err(client, now, "maximum connections exceeded");
        }
        self.close(client, now, CloseReason::MaxConnectionsExceeded);
    }

    fn close(&mut self, id: ClientId, now: Instant, reason: CloseReason) {
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        c.phase = Phase::Closed { reason, at: now };
        let producer_stalled = c.producer_stall.is_some();
        if !reason.flushes() {
            c.out.clear();
        }
        let was_leaf = c.leaf.is_some();
        c.auth.deadline = None;
        c.ping_deadline = None;
        c.stall_since = None;
        let counts = c.counts_as_client;
        let mut keys: Vec<SubKey> = c.subs.values().copied().collect();
        // In slot order, not the map's (random) order: what the removal sends
        // (a leaf's `LS-` lines) is the same for the same input.
        keys.sort_unstable_by_key(|k| (k.index, k.generation));
        if was_leaf {
            self.forget_leaf(id);
        }
        if producer_stalled {
            self.drop_stall(id);
        }
        // Whoever waited for this connection to drain goes on (`closeConnection`).
        self.release_stalled_on(id);
        let Some(c) = self.client(id) else {
            return;
        };
        let cid = c.cid;
        let account = c.auth.account;
        if counts {
            self.stats.connections = self.stats.connections.saturating_sub(1);
        }
        // Keep the subscription list for the closed-connection record.
        // Only the kept ones are rendered: a client with many subscriptions would otherwise
        // make a burst of small allocations at close that fragments the heap.
        let mut by_sid: Vec<&Subscription> =
            keys.iter().filter_map(|k| self.router.sub(*k)).collect();
        by_sid
            .sort_by(|a, b| String::from_utf8_lossy(&a.sid).cmp(&String::from_utf8_lossy(&b.sid)));
        by_sid.truncate(MAX_CLOSED_SUBS);
        let name = self.router.name(account);
        let kept: Vec<SubInfo> = by_sid.iter().map(|s| sub_info(s, cid, name)).collect();
        for key in keys {
            self.remove_sub(key, now);
        }
        if let Some(c) = self.client_mut(id) {
            c.closed_subs = kept;
        }
        self.mqtt_publish_will(id, now);
        self.mqtt_save_session(id);
        self.events.push_back(Event::Closed { client: id, reason });
    }

    /// Frees a closed client's slot after the binary has flushed and closed the transport. A
    /// client that is still open is closed first with `Client Closed`. The connection's final
    /// state goes into the closed-connections ring for `/connz?state=closed`.
    pub fn remove_client(&mut self, client: ClientId, now: Instant) {
        if self.client(client).is_some_and(|c| !c.phase.is_closed()) {
            self.close(client, now, CloseReason::ClientClosed);
        }
        let info = self.client_info(client, now);
        let Some(slot) = self.slots.get_mut(client.index as usize) else {
            return;
        };
        if slot.generation != client.generation || slot.client.is_none() {
            return;
        }
        slot.client = None;
        slot.generation = slot.generation.wrapping_add(1);
        self.free_slots.push(client.index);
        if let Some(info) = info
            && self.max_closed_clients > 0
        {
            if self.closed_ring.len() >= self.max_closed_clients {
                self.closed_ring.pop_front();
            }
            self.closed_ring.push_back(info);
        }
    }

    /// Next event, or `None`. Call until `None` after every `handle_*`/`register_client`.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let ev = self.events.pop_front()?;
        if let Event::Flush(id) = &ev
            && let Some(c) = self.client_mut(*id)
        {
            c.flush_requested = false;
        }
        Some(ev)
    }

    /// The client's outbound queue. Write from it (`chunks_vectored`, `front`, `drain_into`)
    /// and `advance` by what was written; then call [`Broker::handle_flushed`].
    /// `None` for unknown clients. A closed client keeps its queue until it is removed.
    pub fn outbound(&mut self, client: ClientId) -> Option<&mut OutQueue> {
        self.client_mut(client).map(|c| &mut c.out)
    }

    /// Records the TLS facts of a client whose TLS handshake finished after
    /// [`Broker::register_client`] (a NATS client on a TLS port gets its INFO in plaintext
    /// first), for monitoring (`/connz` `tls_version`, `tls_cipher_suite`).
    pub fn set_tls_info(&mut self, client: ClientId, version: String, cipher: String) {
        if let Some(c) = self.client_mut(client) {
            c.params.tls_version = Some(version);
            c.params.tls_cipher = Some(cipher);
        }
    }

    /// Closes every open client with `reason` (for shutdown: `ServerShutdown`). Poll events
    /// afterwards: each gets [`Event::Closed`].
    pub fn close_all(&mut self, now: Instant, reason: CloseReason) {
        for id in self.clients() {
            self.close(id, now, reason);
        }
    }
}

fn is_reserved_reply(reply: &[u8]) -> bool {
    [&b"_R_."[..], b"$JS.ACK.", b"_GR_."]
        .iter()
        .any(|p| reply.len() > p.len() && reply.starts_with(p))
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(any(test, feature = "fuzzing"))]
impl Broker {
    /// Checks internal consistency; used by the fuzz bodies and the simulation tests.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut n_open = 0usize;
        let mut n_client_subs = 0usize;
        for (index, slot) in self.slots.iter().enumerate() {
            let Some(c) = slot.client.as_ref() else {
                continue;
            };
            let id = ClientId {
                index: u32::try_from(index).map_err(|e| e.to_string())?,
                generation: slot.generation,
            };
            if !c.phase.is_closed() {
                if c.counts_as_client {
                    n_open += 1;
                }
                if c.out.len() > self.config.limits.max_pending {
                    return Err(format!(
                        "cid {} queue {} over max_pending",
                        c.cid,
                        c.out.len()
                    ));
                }
            } else if !c.subs.is_empty() {
                return Err(format!("closed cid {} still has subscriptions", c.cid));
            }
            for (sid, key) in &c.subs {
                let sub = self
                    .router
                    .sub(*key)
                    .ok_or("client sid maps to a dead subscription")?;
                if sub.client != id
                    || sub.sid != *sid
                    || self.router.sub_account(*key) != Some(c.auth.account)
                {
                    return Err("subscription owner mismatch".to_owned());
                }
            }
            n_client_subs += c.subs.len();
        }
        self.check_stalls()?;
        self.router.check_invariants()?;
        if self.router.n_subs() != n_client_subs {
            return Err(format!(
                "subscription counts differ: router {}, clients {n_client_subs}",
                self.router.n_subs()
            ));
        }
        if n_client_subs != self.stats.subscriptions {
            return Err("subscription counter drifted".to_owned());
        }
        if n_open != self.stats.connections {
            return Err(format!(
                "connection counter {} but {n_open} open",
                self.stats.connections
            ));
        }
        self.router.check_responses()
    }
}

#[cfg(test)]
mod tests;

/// The accounts the router serves and the system account: the configured ones, plus in
/// operator mode the accounts of the resolver's JWTs (named by public key) with the operator's
/// system account. Activation tokens are checked against the configuration's wall clock (the
/// start-up or reload time).
fn served_accounts(config: &Config, auth: &AuthState) -> (Vec<AccountConfig>, Option<String>) {
    let Some(trust) = auth.trust() else {
        return (config.accounts.clone(), config.system_account.clone());
    };
    let now_unix = config.wall_clock.map_or(0, |w| w.unix_secs);
    let mut accounts = config.accounts.clone();
    accounts.extend(trust.account_configs(now_unix));
    (accounts, trust.system_account().map(str::to_owned))
}
