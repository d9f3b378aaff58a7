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
use crate::config::{Config, FIRST_CLIENT_PING_INTERVAL, RTT_MEASUREMENT_INTERVAL};
use crate::outq::OutQueue;
use crate::proto::{Op, Parser, ParserLimits, ProtoError, PubRanges, Role};
use crate::router::{
    AccountId, PubRef, ResponseRoute, Router, ServiceImport, SubKey, Subscription,
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

mod reload;
pub(crate) mod trace;

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
        let auth = AuthState::new(&config.auth);
        let sublist_seed = config.seed.rotate_left(23) ^ 0x6a09_e667_f3bc_c908;
        let mut router = Router::new(sublist_seed);
        router.configure(&config.accounts, config.system_account.as_deref());
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
        }
    }

    /// Like [`Broker::new`], but refuses an invalid auth configuration with the reference's
    /// start-up error text. (`new` accepts it and then refuses every CONNECT.)
    pub fn try_new(config: Config, now: Instant) -> Result<Self, auth::AuthConfigError> {
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
        self.auth = AuthState::new(&config.auth);
        self.router
            .configure(&config.accounts, config.system_account.as_deref());
        self.config = config;
        for slot in &mut self.slots {
            if let Some(c) = slot.client.as_mut() {
                let limits = c.parser.limits_mut();
                limits.max_control_line = mcl;
                limits.max_payload = mpay;
            }
        }
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
    #[must_use = "the handle is the only way to address the client"]
    pub fn register_client(&mut self, now: Instant, params: ClientParams) -> ClientId {
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
        let auth_expected = self.auth.auth_expected(conn_type);
        let nonce = if self.auth.nonce_required() {
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
        let auth_deadline = auth_expected
            .then(|| {
                now.checked_add(
                    self.auth
                        .auth_timeout(conn_type)
                        .unwrap_or(self.config.auth_timeout),
                )
            })
            .flatten();
        let limits = ParserLimits {
            max_control_line: self.config.limits.max_control_line,
            max_payload: self.config.limits.max_payload,
            headers: false,
        };
        let counts_as_client = matches!(
            conn_type,
            ConnectionType::Standard | ConnectionType::WebSocket
        );
        let client = Client {
            cid,
            params,
            phase: Phase::AwaitingConnect { auth_expected },
            parser: Parser::new(Role::Server, limits),
            renderer: Renderer::ClientMsg,
            out: OutQueue::new(),
            opts: ClientOptions::default(),
            auth: ClientAuth {
                nonce,
                deadline: auth_deadline,
                ..ClientAuth::default()
            },
            subs: HashMap::new(),
            ping_deadline: now.checked_add(self.config.ping_interval),
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
        };
        if let Some(slot) = self.slots.get_mut(index as usize) {
            slot.client = Some(client);
        }
        self.stats.total_connections += 1;
        let info = self.build_info(id, false);
        self.queue_bytes(id, now, &info);
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
        let Some(c) = self.client(id) else {
            return Vec::new();
        };
        let cfg = &self.config;
        let conn_type = c.params.conn_type;
        let ws = conn_type.is_websocket();
        let listener = if ws {
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
            auth_required: self.auth.auth_required(conn_type),
            tls_required: listener.tls_required,
            tls_verify: listener.tls_verify,
            tls_available: listener.tls_available,
            max_payload: c.parser.limits().max_payload,
            client_id: c.cid,
            client_ip: c.params.remote.ip().to_string(),
            nonce: c.auth.nonce.as_deref(),
            cluster: &cfg.cluster,
            connect_urls: if ws {
                &cfg.ws_connect_urls
            } else {
                &cfg.connect_urls
            },
            ldm,
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
                if c.auth.parked.is_some() {
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

    /// Routes a complete PUB/HPUB found by [`Parser::peek_pub`] and consumes it from `src`.
    /// Small payloads are read in place; large ones are split off as shared `Bytes` so that
    /// every subscriber queues the same allocation.
    fn fast_pub(&mut self, client: ClientId, now: Instant, src: &mut BytesMut, found: &PubRanges) {
        if found.size >= crate::outq::SHARE_THRESHOLD_BYTES {
            let head = src.split_to(found.payload_start).freeze();
            let message = src.split_to(found.size).freeze();
            src.advance(2);
            let range = |(start, end): (usize, usize)| head.get(start..end).unwrap_or_default();
            let publish = PubRef {
                subject: range(found.subject),
                reply: found.reply.map(range),
                header_len: found.header_len,
                message: &message,
                shared: Some(&message),
            };
            self.process_pub(client, now, &publish);
        } else {
            let buf: &[u8] = src;
            let range = |(start, end): (usize, usize)| buf.get(start..end).unwrap_or_default();
            let publish = PubRef {
                subject: range(found.subject),
                reply: found.reply.map(range),
                header_len: found.header_len,
                message: range((found.payload_start, found.payload_start + found.size)),
                shared: None,
            };
            self.process_pub(client, now, &publish);
            src.advance(found.total_len());
        }
    }

    fn protocol_error(&mut self, client: ClientId, now: Instant, err: &ProtoError) {
        if let Some(text) = err.err_text() {
            self.send_err(client, now, text);
        }
        self.close(client, now, err.close_reason());
    }

    fn bind_no_auth_user(&mut self, client: ClientId, _now: Instant) -> bool {
        let Some(conn_type) = self.client(client).map(|c| c.params.conn_type) else {
            return false;
        };
        let Some(user) = self.auth.no_auth_user(conn_type) else {
            return false;
        };
        self.bind_account(client, user.identity.as_ref());
        if let Some(c) = self.client_mut(client) {
            c.phase = Phase::Connected;
            c.auth.deadline = None;
            c.auth.authorized_user = user.authorized_user;
            c.auth.permissions = user.permissions;
            c.auth.identity = user.identity;
        }
        true
    }

    /// Binds a client to the account of the user it authenticated as (`$G` for a user outside
    /// every account). A client's account changes only before it has subscriptions: a second
    /// CONNECT naming another account's user is refused. False when refused.
    fn bind_account(&mut self, client: ClientId, who: Option<&auth::Authenticated>) -> bool {
        let account = match who.and_then(|w| w.account.as_deref()) {
            Some(name) => match self.router.lookup(name) {
                Some(id) => id,
                None => return false,
            },
            None => AccountId::GLOBAL,
        };
        let Some(c) = self.client_mut(client) else {
            return false;
        };
        let before = c.auth.account;
        if before == account {
            return true;
        }
        if !c.subs.is_empty() {
            return false;
        }
        c.auth.account = account;
        true
    }

    fn auth_violation(&mut self, client: ClientId, now: Instant, detail: Option<String>) {
        if let Some(detail) = detail {
            self.events.push_back(Event::AuthFailed { client, detail });
        }
        self.send_err(client, now, "Authorization Violation");
        self.close(client, now, CloseReason::AuthenticationFailure);
    }

    fn process_op(&mut self, id: ClientId, now: Instant, op: Op) {
        if self.config.trace {
            self.trace_in(id, &op);
        }
        match op {
            Op::Connect(arg) => self.process_connect(id, now, &arg),
            Op::Pub(publish) => self.process_pub(id, now, &PubRef::from_publish(&publish)),
            Op::Sub {
                subject,
                queue,
                sid,
            } => self.process_sub(id, now, subject, queue, sid),
            Op::Unsub { sid, max } => self.process_unsub(id, now, &sid, max),
            Op::Ping => {
                let server_max_payload = self.config.limits.max_payload;
                let urls_epoch = self.urls_epoch;
                let mut send_info = false;
                if let Some(c) = self.open_client_mut(id) {
                    c.last_client_ping = Some(now);
                    // The first PING of a protocol-1 client learns about changes since its INFO
                    // (`server/client.go` `processPing`): the INFO goes before the PONG.
                    if !c.first_pong_sent {
                        c.first_pong_sent = true;
                        send_info = c.opts.protocol >= 1
                            && (c.urls_epoch != urls_epoch
                                || c.announced_max_payload != server_max_payload);
                        c.urls_epoch = urls_epoch;
                        c.announced_max_payload = server_max_payload;
                    }
                }
                if send_info {
                    let info = self.build_info(id, false);
                    self.queue_bytes(id, now, &info);
                }
                self.trace(id, || trace::op(false, "PONG", &[]));
                self.queue_bytes(id, now, b"PONG\r\n");
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
            Op::Pub(_) | Op::Ok | Op::Info(_) | Op::Err(_) | Op::Msg(_) => return,
        };
        self.trace(id, || line);
    }

    fn process_connect(&mut self, id: ClientId, now: Instant, arg: &[u8]) {
        let Ok(json) = ConnectJson::parse(arg) else {
            self.close(id, now, CloseReason::ProtocolViolation);
            return;
        };
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        let o = &mut c.opts;
        if let Some(v) = json.verbose {
            o.verbose = v;
        }
        if let Some(v) = json.pedantic {
            o.pedantic = v;
        }
        if let Some(v) = json.echo {
            o.echo = v;
        }
        if let Some(v) = json.headers {
            o.headers = v;
        }
        if let Some(v) = json.no_responders {
            o.no_responders = v;
        }
        if let Some(v) = json.protocol {
            o.protocol = v;
        }
        if let Some(v) = &json.name {
            v.clone_into(&mut o.name);
        }
        if let Some(v) = &json.lang {
            v.clone_into(&mut o.lang);
        }
        if let Some(v) = &json.version {
            v.clone_into(&mut o.version);
        }
        if let Some(v) = &json.user {
            v.clone_into(&mut o.user);
        }
        let conn_type = c.params.conn_type;
        let creds = Credentials {
            user: json.user.as_deref(),
            pass: json.pass.as_deref(),
            auth_token: json.auth_token.as_deref(),
            nkey: json.nkey.as_deref(),
            sig: json.sig.as_deref(),
            jwt: json.jwt.as_deref(),
        };
        let nonce = c.auth.nonce.clone();
        let cookies = std::mem::take(&mut c.params.cookies);
        let step = self
            .auth
            .authenticate(conn_type, &creds, nonce.as_deref(), &cookies);
        let defer = self.config.defer_password_checks;
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        c.params.cookies = cookies;
        let pending = PendingConnect {
            creds: StoredCredentials::new(&creds),
            account_requested: json.account.is_some_and(|a| !a.is_empty())
                || json.new_account == Some(true),
            auth_epoch: self.auth_epoch,
        };
        match step {
            AuthStep::Done(res) => self.finish_connect(id, now, res, pending, None),
            AuthStep::CheckHash(check) if defer => self.park(id, check, pending),
            AuthStep::CheckHash(check) => {
                let verified = check.check().verify();
                let hash = verified.then(|| Box::from(check.check().hash()));
                self.finish_connect(id, now, finish_hash(check, verified), pending, hash);
            }
        }
    }

    fn park(&mut self, id: ClientId, check: auth::HashCheck, pending: PendingConnect) {
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        let event = Event::CheckPassword {
            client: id,
            check: check.check().clone(),
            parked: true,
        };
        c.auth.parked = Some(Box::new((check, pending)));
        // The CONNECT arrived in time: as nats-server's processConnect, stop the auth timer
        // before the (slow) password comparison.
        c.auth.deadline = None;
        self.events.push_back(event);
        self.reschedule(id);
    }

    /// Delivers the result of an [`Event::CheckPassword`] comparison: `check` is the one the
    /// event carried and `verified` what [`auth::PasswordCheck::verify`] returned for it.
    ///
    /// A parked CONNECT completes, and the client resumes: feed it the input that
    /// `handle_input` left unconsumed. Clients that a reload is re-checking with this same
    /// comparison keep or lose their session. A result nobody waits for any more (closed
    /// client, superseded check) is ignored.
    pub fn password_checked(
        &mut self,
        client: ClientId,
        check: &auth::PasswordCheck,
        verified: bool,
        now: Instant,
    ) {
        let mut waiting: Vec<ClientId> = Vec::new();
        if !self.rechecking.is_empty() {
            let mut still = std::mem::take(&mut self.rechecking);
            still.retain(|id| {
                let Some(c) = self.client(*id).filter(|c| !c.phase.is_closed()) else {
                    return false;
                };
                match &c.auth.rechecking {
                    Some(r) if r.check() == check => {
                        waiting.push(*id);
                        false
                    }
                    Some(_) => true,
                    None => false,
                }
            });
            self.rechecking = still;
        }
        for id in waiting {
            let Some(pending) = self.client_mut(id).and_then(|c| c.auth.rechecking.take()) else {
                continue;
            };
            let hash = verified.then(|| Box::from(pending.check().hash()));
            self.apply_recheck(id, finish_hash(*pending, verified), true, hash, now);
        }
        let Some(c) = self.open_client_mut(client) else {
            return;
        };
        if c.auth.parked.as_ref().is_none_or(|p| p.0.check() != check) {
            return;
        }
        let Some(parked) = c.auth.parked.take() else {
            return;
        };
        let (mut check, mut pending) = *parked;
        let epoch = self.auth_epoch;
        if pending.auth_epoch != epoch {
            // A reload happened meanwhile: decide with the configuration in force now, reusing
            // the verdict when the same hash is asked for.
            pending.auth_epoch = epoch;
            let Some(c) = self.client(client) else {
                return;
            };
            let step = self.auth.authenticate(
                c.params.conn_type,
                &pending.creds.as_credentials(),
                c.auth.nonce.as_deref(),
                &c.params.cookies,
            );
            match step {
                AuthStep::Done(res) => {
                    self.finish_connect(client, now, res, pending, None);
                    self.reschedule(client);
                    return;
                }
                AuthStep::CheckHash(again) if again.check().hash() == check.check().hash() => {
                    check = again;
                }
                AuthStep::CheckHash(again) => {
                    self.park(client, again, pending);
                    return;
                }
            }
        }
        let hash = verified.then(|| Box::from(check.check().hash()));
        self.finish_connect(client, now, finish_hash(check, verified), pending, hash);
        self.reschedule(client);
    }

    /// True while the client's CONNECT waits for [`Broker::password_checked`].
    #[must_use]
    pub fn is_parked(&self, client: ClientId) -> bool {
        self.client(client).is_some_and(|c| c.auth.parked.is_some())
    }

    /// The part of CONNECT processing after authentication.
    fn finish_connect(
        &mut self,
        id: ClientId,
        now: Instant,
        res: Result<crate::authseam::Authenticated, String>,
        pending: PendingConnect,
        verified_hash: Option<Box<str>>,
    ) {
        if !self.is_open(id) {
            return;
        }
        match res {
            Ok(user) => {
                if !self.bind_account(id, user.identity.as_ref()) {
                    self.auth_violation(id, now, None);
                    return;
                }
                let Some(c) = self.open_client_mut(id) else {
                    return;
                };
                // This CONNECT, authenticated under the configuration in force, supersedes a
                // re-check from an earlier reload.
                c.auth.rechecking = None;
                c.auth.creds = pending.creds;
                c.auth.verified_hash = verified_hash;
                c.auth.authorized_user = user.authorized_user;
                c.auth.permissions = user.permissions;
                c.auth.identity = user.identity;
            }
            Err(detail) => {
                self.auth_violation(id, now, Some(detail));
                return;
            }
        }
        if pending.account_requested {
            let detail = self
                .client(id)
                .and_then(|c| self.auth.violation_after_auth(c.auth.identity.as_ref()));
            self.auth_violation(id, now, detail);
            return;
        }
        let server_headers = self.config.headers;
        let ping_interval = self.config.ping_interval;
        let jitter_seed = self.rng.next_u64();
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        c.phase = Phase::Connected;
        c.auth.deadline = None;
        c.last_activity = now;
        c.rtt = Some(now.saturating_duration_since(c.start));
        let protocol = c.opts.protocol;
        if !(0..=1).contains(&protocol) {
            self.send_err(id, now, "invalid client protocol");
            self.close(id, now, CloseReason::BadClientProtocolVersion);
            return;
        }
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        let headers = c.opts.headers && server_headers;
        c.parser.limits_mut().headers = headers;
        if c.opts.no_responders && !headers {
            self.send_err(id, now, "no responders requires headers support");
            self.close(id, now, CloseReason::NoRespondersRequiresHeaders);
            return;
        }
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        let mut first = ping_interval.min(FIRST_CLIENT_PING_INTERVAL);
        let fifth_nanos = u64::try_from(first.as_nanos() / 5).unwrap_or(0);
        if fifth_nanos > 0 {
            first += Duration::from_nanos(jitter_seed % fifth_nanos);
        }
        c.ping_deadline = now.checked_add(first);
        let verbose = c.opts.verbose;
        self.events.push_back(Event::Connected(id));
        if verbose {
            self.send_ok(id, now);
        }
    }

    fn process_pub(&mut self, id: ClientId, now: Instant, publish: &PubRef<'_>) {
        if self.config.trace {
            let size = publish.message.len();
            self.trace(id, || {
                trace::publish(publish.subject, publish.reply, publish.header_len, size)
            });
            let max = self.config.max_traced_msg_len;
            self.trace(id, || trace::payload(publish.message, max));
        }
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        let subj = publish.subject;
        let size = publish.message.len() as u64;
        c.in_msgs += 1;
        c.in_bytes += size;
        c.last_activity = now;
        let pedantic = c.opts.pedantic;
        let verbose = c.opts.verbose;
        let echo = c.opts.echo;
        let no_responders = c.opts.no_responders;
        let account = c.auth.account;
        let gr_reply = subj.len() > 5 && subj.starts_with(b"_GR_.");
        let allowed = !gr_reply
            && c.auth
                .permissions
                .as_mut()
                .is_none_or(|p| p.can_publish(subj, now));
        self.stats.in_msgs += 1;
        self.stats.in_bytes += size;
        if pedantic && !subject::is_valid_literal(subj) {
            self.send_err(id, now, "Invalid Publish Subject");
        }
        if !allowed {
            let text = format!(
                "Permissions Violation for Publish to {}",
                auth::go_quote(subj)
            );
            self.send_err(id, now, &text);
            return;
        }
        if let Some(reply) = publish.reply
            && is_reserved_reply(reply)
        {
            let text = format!(
                "Permissions Violation for Publish with Reply of {}",
                auth::go_quote(reply)
            );
            self.send_err(id, now, &text);
            return;
        }
        if verbose {
            self.send_ok(id, now);
        }
        let delivered = self.route(id, account, echo, now, publish);
        if delivered == 0
            && no_responders
            && let Some(reply) = publish.reply
        {
            self.send_no_responders(id, now, reply);
        }
    }

    /// Delivers `publish`, published in `account`, to every match there and in the accounts
    /// that import it as a stream. Returns the number of deliveries.
    fn route(
        &mut self,
        from: ClientId,
        account: AccountId,
        echo: bool,
        now: Instant,
        publish: &PubRef<'_>,
    ) -> usize {
        let Some(acc) = self.router.account_mut(account) else {
            return 0;
        };
        acc.stats.in_msgs += 1;
        let result = acc.sublist.matches(publish.subject);
        let crossings = !acc.stream_feeds.is_empty()
            || !acc.service_imports.is_empty()
            || !acc.responses.is_empty();
        let mut delivered = self.deliver_all(from, echo, now, publish, &result);
        if crossings {
            delivered += self.route_feeds(from, account, echo, now, publish);
            if !self.router.account(account).is_some_and(|a| {
                a.service_imports.is_empty()
                    && (a.responses.is_empty() || !publish.subject.starts_with(b"_R_."))
            }) {
                delivered += self.route_services(from, account, echo, now, publish);
            }
        }
        delivered
    }

    /// Routes a service response back to its requester's account, and a request on an
    /// imported service into the exporting account with its reply rewritten to a `_R_.`
    /// subject that routes the responses back (`server/client.go` `processServiceImport`).
    fn route_services(
        &mut self,
        from: ClientId,
        account: AccountId,
        echo: bool,
        now: Instant,
        publish: &PubRef<'_>,
    ) -> usize {
        let Some(acc) = self.router.account_mut(account) else {
            return 0;
        };
        if publish.subject.starts_with(b"_R_.")
            && let Some(route) = acc.responses.take(publish.subject, now)
        {
            let Some(importer) = self.router.account_mut(route.importer) else {
                return 0;
            };
            let result = importer.sublist.matches(&route.reply);
            let response = PubRef {
                subject: &route.reply,
                ..*publish
            };
            return self.deliver_all(from, echo, now, &response, &result);
        }
        let Some(import) = acc
            .service_imports
            .iter()
            .find(|si| subject::matches(&si.local, publish.subject))
            .cloned()
        else {
            return 0;
        };
        let reply = publish
            .reply
            .map(|reply| self.new_response_route(&import, account, reply, now));
        let remote: &[u8] = if subject::has_wildcard(&import.local) {
            publish.subject
        } else {
            &import.remote
        };
        let Some(exporter) = self.router.account_mut(import.exporter) else {
            return 0;
        };
        let result = exporter.sublist.matches(remote);
        let request = PubRef {
            subject: remote,
            reply: reply.as_deref(),
            ..*publish
        };
        // The import itself is an interest (nats-server subscribes it in the importing
        // account), so a request to it never draws a no-responders status.
        self.deliver_all(from, echo, now, &request, &result).max(1)
    }

    /// A fresh `_R_.` reply subject in the exporting account that routes responses to
    /// `reply` in the requester's account (`server/accounts.go` `newServiceReply`).
    fn new_response_route(
        &mut self,
        import: &ServiceImport,
        importer: AccountId,
        reply: &[u8],
        now: Instant,
    ) -> Box<[u8]> {
        const DIGITS: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let route = ResponseRoute {
            importer,
            reply: reply.into(),
            response_type: import.response_type,
            expires: now.checked_add(import.threshold).unwrap_or(now),
        };
        loop {
            let mut subject = b"_R_.".to_vec();
            for part in [self.rng.next_u64(), self.rng.next_u64()] {
                let mut n = part;
                for _ in 0..10 {
                    subject.push(DIGITS.get((n % 62) as usize).copied().unwrap_or(b'0'));
                    n /= 62;
                }
                subject.push(b'.');
            }
            subject.pop();
            let subject: Box<[u8]> = subject.into();
            let Some(exporter) = self.router.account_mut(import.exporter) else {
                return subject;
            };
            if exporter.responses.contains(&subject) {
                continue;
            }
            exporter.responses.insert(subject.clone(), route, now);
            return subject;
        }
    }

    /// Routes `publish` into every account importing it from `account` as a stream, under
    /// the subject the import gives it. One hop: a message an account received through an
    /// import is not forwarded by that account's own exports, so no configuration can loop.
    fn route_feeds(
        &mut self,
        from: ClientId,
        account: AccountId,
        echo: bool,
        now: Instant,
        publish: &PubRef<'_>,
    ) -> usize {
        let Some(feeds) = self.router.account(account).map(|a| a.stream_feeds.clone()) else {
            return 0;
        };
        let mut mapped = std::mem::take(&mut self.mapped_subject);
        let mut delivered = 0;
        for feed in &feeds {
            if !subject::matches(&feed.from, publish.subject) {
                continue;
            }
            feed.map.apply(publish.subject, &mut mapped);
            let Some(importer) = self.router.account_mut(feed.importer) else {
                continue;
            };
            let result = importer.sublist.matches(&mapped);
            let imported = PubRef {
                subject: &mapped,
                ..*publish
            };
            delivered += self.deliver_all(from, echo, now, &imported, &result);
        }
        self.mapped_subject = mapped;
        delivered
    }

    /// Delivers `publish` to the subscriptions of one match result: every plain one and one
    /// member per queue group. Inlined: it is the whole of routing within one account, and a
    /// call here cost about 70 instructions per message (callgrind, `examples/hotpath.rs`).
    #[inline(always)]
    fn deliver_all(
        &mut self,
        from: ClientId,
        echo: bool,
        now: Instant,
        publish: &PubRef<'_>,
        result: &MatchResult<SubKey>,
    ) -> usize {
        if result.fanout() == 0 {
            return 0;
        }
        // The MSG text is rendered once; each delivery adds only its sid.
        let mut rendered = std::mem::take(&mut self.rendered);
        let shared =
            publish.shared.is_some() && publish.message.len() >= crate::outq::SHARE_THRESHOLD_BYTES;
        rendered.render(
            publish.subject,
            publish.reply,
            publish.header_len.filter(|h| *h > 0),
            publish.message,
            shared,
        );
        let mut delivered = 0;
        for key in &result.plain {
            if self.deliver(from, echo, *key, now, publish, &rendered) {
                delivered += 1;
            }
        }
        for (_, members) in &result.queues {
            let n = members.len();
            let start = self.rng.below(n);
            for step in 0..n {
                let Some(key) = members.get((start + step) % n) else {
                    break;
                };
                if self.deliver(from, echo, *key, now, publish, &rendered) {
                    delivered += 1;
                    break;
                }
            }
        }
        self.rendered = rendered;
        delivered
    }

    /// Appends one `MSG`/`HMSG` to the subscriber's queue. The subscription and the client are
    /// borrowed from their tables side by side, so nothing is cloned per delivery.
    fn deliver(
        &mut self,
        from: ClientId,
        echo: bool,
        key: SubKey,
        now: Instant,
        publish: &PubRef<'_>,
        rendered: &Rendered,
    ) -> bool {
        let Some(sub) = self
            .router
            .subs
            .get_mut(key.index as usize)
            .filter(|slot| slot.generation == key.generation)
            .and_then(|slot| slot.sub.as_mut())
        else {
            return false;
        };
        let target = sub.client;
        if target == from && !echo {
            return false;
        }
        let Some(c) = self
            .slots
            .get_mut(target.index as usize)
            .filter(|slot| slot.generation == target.generation)
            .and_then(|slot| slot.client.as_mut())
            .filter(|c| !c.phase.is_closed())
        else {
            return false;
        };
        if c.auth
            .permissions
            .as_mut()
            .is_some_and(|p| p.deny_delivery(publish.subject))
        {
            return false;
        }
        let measured = c.renderer.measure(c, &sub.sid, publish, rendered);
        if c.pending() + measured.queued > self.config.limits.max_pending {
            self.slow_consumer(target, now, CloseReason::SlowConsumerPendingBytes);
            return false;
        }
        let was_empty = c.pending() == 0;
        let body_len = c.renderer.write(c, &sub.sid, publish, rendered, &measured);
        if self.config.trace {
            let line = c.renderer.trace(c, &sub.sid, publish);
            self.events.push_back(Event::Trace {
                client: target,
                line,
            });
        }
        c.out_msgs += 1;
        c.out_bytes += body_len;
        c.last_activity = now;
        if let Some(reply) = publish.reply
            && let Some(p) = c.auth.permissions.as_mut()
        {
            p.record_reply(reply, now);
        }
        if was_empty {
            c.stall_since = Some(now);
            c.consumed_seen = c.out.consumed();
        }
        if !c.flush_requested {
            c.flush_requested = true;
            self.events.push_back(Event::Flush(target));
        }
        self.stats.out_msgs += 1;
        self.stats.out_bytes += body_len;
        sub.delivered += 1;
        if sub.max.is_some_and(|m| sub.delivered >= m.get()) {
            self.remove_sub(key);
        }
        if was_empty {
            self.reschedule(target);
        }
        true
    }

    fn send_no_responders(&mut self, id: ClientId, now: Instant, reply: &[u8]) {
        let Some(account) = self.client(id).map(|c| c.auth.account) else {
            return;
        };
        let Some(acc) = self.router.account_mut(account) else {
            return;
        };
        let result = acc.sublist.matches(reply);
        let sid = result
            .plain
            .iter()
            .filter_map(|k| self.router.sub(*k))
            .find(|s| s.client == id)
            .map(|s| Arc::clone(&s.sid));
        let Some(sid) = sid else {
            return;
        };
        let mut line = Vec::with_capacity(64);
        line.extend_from_slice(b"HMSG ");
        line.extend_from_slice(reply);
        line.push(b' ');
        line.extend_from_slice(&sid);
        line.extend_from_slice(b" 16 16\r\nNATS/1.0 503\r\n\r\n\r\n");
        self.queue_bytes(id, now, &line);
    }

    fn process_sub(
        &mut self,
        id: ClientId,
        now: Instant,
        subject: Bytes,
        queue: Option<Bytes>,
        sid: Bytes,
    ) {
        // Subscriptions live long: copy their strings out of the read buffer so they do not
        // pin it (bytes#679).
        let subject: Box<[u8]> = subject[..].into();
        let queue: Option<Box<[u8]>> = queue.map(|q| q[..].into());
        let sid: Arc<[u8]> = sid[..].into();
        let max_subs = self.config.limits.max_subscriptions;
        let max_tokens = self.config.limits.max_subscription_tokens;
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        c.last_activity = now;
        let verbose = c.opts.verbose;
        let account = c.auth.account;
        let sub_allowed = c
            .auth
            .permissions
            .as_mut()
            .is_none_or(|p| p.can_subscribe(&subject, queue.as_deref()));
        let n_subs = c.subs.len();
        let duplicate = c.subs.contains_key(&sid[..]);
        let queue_err = |q: &[u8]| {
            format!(
                "Permissions Violation for Subscription to {} using queue {}",
                auth::go_quote(&subject),
                auth::go_quote(q)
            )
        };
        if !sub_allowed {
            let text = match &queue {
                Some(q) => queue_err(q),
                None => format!(
                    "Permissions Violation for Subscription to {}",
                    auth::go_quote(&subject)
                ),
            };
            self.send_err(id, now, &text);
            return;
        }
        if let Some(q) = &queue
            && &q[..] == b"_sys_"
        {
            let text = queue_err(q);
            self.send_err(id, now, &text);
            return;
        }
        if let Some(max) = max_tokens
            && subject::token_count(&subject) > max
        {
            let text = format!(
                "Permissions Violation for Subscription to {}, too many tokens",
                auth::go_quote(&subject)
            );
            self.send_err(id, now, &text);
            return;
        }
        if max_subs > 0 && n_subs >= max_subs {
            self.send_err(id, now, "maximum subscriptions exceeded");
            return;
        }
        if duplicate {
            if verbose {
                self.send_ok(id, now);
            }
            return;
        }
        let sub = Subscription {
            client: id,
            sid: Arc::clone(&sid),
            subject,
            queue,
            delivered: 0,
            max: None,
        };
        let key = match self.router.insert(account, sub) {
            Ok(key) => key,
            Err(InsertError::InvalidSubject) => {
                self.send_err(id, now, "Invalid Subject");
                return;
            }
        };
        if let Some(c) = self.client_mut(id) {
            c.subs.insert(sid, key);
        }
        self.stats.subscriptions += 1;
        if verbose {
            self.send_ok(id, now);
        }
    }

    fn process_unsub(&mut self, id: ClientId, now: Instant, sid: &Bytes, max: Option<u64>) {
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        let verbose = c.opts.verbose;
        let key = c.subs.get(&sid[..]).copied();
        if verbose {
            self.send_ok(id, now);
        }
        let Some(key) = key else {
            return;
        };
        let remove_now = match (max, self.router.sub_mut(key)) {
            (Some(m), Some(sub)) if m > sub.delivered => {
                sub.max = NonZeroU64::new(m);
                false
            }
            _ => true,
        };
        if remove_now {
            self.remove_sub(key);
        }
    }

    fn remove_sub(&mut self, key: SubKey) {
        let Some(sub) = self.router.remove(key) else {
            return;
        };
        self.stats.subscriptions = self.stats.subscriptions.saturating_sub(1);
        if let Some(c) = self.client_mut(sub.client)
            && c.subs.get(&sub.sid) == Some(&key)
        {
            c.subs.remove(&sub.sid);
            shrink_map(&mut c.subs);
        }
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
        if !reason.flushes() {
            c.out.clear();
        }
        c.auth.deadline = None;
        c.ping_deadline = None;
        c.stall_since = None;
        let counts = c.counts_as_client;
        let keys: Vec<SubKey> = c.subs.values().copied().collect();
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
            self.remove_sub(key);
        }
        if let Some(c) = self.client_mut(id) {
            c.closed_subs = kept;
        }
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

    /// Tells the broker that the binary wrote from the client's queue at `now` (progress
    /// resets the write-deadline clock). Optional but keeps the slow-consumer timing exact.
    pub fn handle_flushed(&mut self, client: ClientId, now: Instant) {
        let Some(c) = self.open_client_mut(client) else {
            return;
        };
        if c.out.is_empty() {
            c.out.shrink_if_idle();
        }
        if c.pending() == 0 {
            c.stall_since = None;
        } else if c.out.consumed() != c.consumed_seen {
            c.consumed_seen = c.out.consumed();
            c.stall_since = Some(now);
        }
        self.reschedule(client);
    }

    /// Tells the broker how many bytes the transport holds for the client outside its queue:
    /// output already framed but not yet written, and replies the transport owes the peer on
    /// its own (WebSocket pongs and close frames). They count toward `max_pending` and the
    /// write deadline as queued output does, as nats-server counts its WebSocket frames and
    /// control messages in the client's pending bytes (`server/websocket.go`,
    /// `wsEnqueueControlMessageLocked`). A backlog that shrank is progress. Over
    /// `max_pending` the client is closed as a slow consumer: poll events afterwards.
    pub fn set_transport_backlog(&mut self, client: ClientId, bytes: usize, now: Instant) {
        let max_pending = self.config.limits.max_pending;
        let Some(c) = self.open_client_mut(client) else {
            return;
        };
        let before = c.backlog;
        if before == bytes {
            return;
        }
        let was_empty = c.pending() == 0;
        c.backlog = bytes;
        if c.pending() > max_pending {
            self.slow_consumer(client, now, CloseReason::SlowConsumerPendingBytes);
            return;
        }
        if c.pending() == 0 {
            c.stall_since = None;
        } else if was_empty || bytes < before {
            // Output appeared, or some of it was written: the write-deadline clock (re)starts.
            c.stall_since = Some(now);
            c.consumed_seen = c.out.consumed();
        }
        self.reschedule(client);
    }

    fn client_deadline(&self, c: &Client) -> Option<Instant> {
        let stall = if c.pending() == 0 {
            None
        } else {
            c.stall_since
                .and_then(|s| s.checked_add(self.config.write_deadline))
        };
        [c.auth.deadline, c.ping_deadline, stall]
            .into_iter()
            .flatten()
            .min()
    }

    fn reschedule(&mut self, id: ClientId) {
        let Some(c) = self.client(id) else {
            return;
        };
        if c.phase.is_closed() {
            return;
        }
        let Some(deadline) = self.client_deadline(c) else {
            return;
        };
        let push = c.scheduled.is_none_or(|s| deadline < s);
        if push {
            if let Some(c) = self.client_mut(id) {
                c.scheduled = Some(deadline);
            }
            self.timers
                .push(Reverse((deadline, id.index, id.generation)));
        }
    }

    /// The earliest deadline over all clients (auth timeout, ping, write deadline), or `None`.
    /// May be earlier than necessary (a spurious [`Broker::handle_timeout`] is harmless).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Runs every timer due at `now`: auth timeouts, pings and stale connections, write
    /// deadlines. Then poll events and re-read [`Broker::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((deadline, index, generation))) = self.timers.peek().copied() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            let id = ClientId { index, generation };
            let Some(c) = self.client_mut(id) else {
                continue;
            };
            if c.scheduled != Some(deadline) {
                continue;
            }
            c.scheduled = None;
            self.fire_client_timers(id, now);
            self.reschedule(id);
        }
    }

    fn fire_client_timers(&mut self, id: ClientId, now: Instant) {
        let write_deadline = self.config.write_deadline;
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        if c.auth.deadline.is_some_and(|d| d <= now) && c.phase.awaiting_auth() {
            self.send_err(id, now, "Authentication Timeout");
            self.close(id, now, CloseReason::AuthenticationTimeout);
            return;
        }
        if c.pending() > 0 {
            if c.out.consumed() != c.consumed_seen {
                c.consumed_seen = c.out.consumed();
                c.stall_since = Some(now);
            } else if c
                .stall_since
                .and_then(|s| s.checked_add(write_deadline))
                .is_some_and(|d| d <= now)
            {
                self.slow_consumer(id, now, CloseReason::SlowConsumerWriteDeadline);
                return;
            }
        } else {
            c.stall_since = None;
        }
        if c.ping_deadline.is_some_and(|d| d <= now) {
            self.ping_timer(id, now);
        }
    }

    fn ping_timer(&mut self, id: ClientId, now: Instant) {
        let interval = self.config.ping_interval;
        let ping_max = self.config.ping_max;
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        let need_rtt = c.rtt.is_none()
            || c.rtt_start
                .is_none_or(|s| now.saturating_duration_since(s) > RTT_MEASUREMENT_INTERVAL);
        let recent_activity = now.saturating_duration_since(c.last_activity) < interval;
        let recent_ping = c
            .last_client_ping
            .is_some_and(|p| now.saturating_duration_since(p) < interval);
        let send = need_rtt || !(recent_activity || recent_ping);
        c.ping_deadline = now.checked_add(interval);
        c.out.release_if_quiet();
        if send {
            if c.pings_out + 1 > ping_max {
                self.send_err(id, now, "Stale Connection");
                self.close(id, now, CloseReason::StaleConnection);
                return;
            }
            c.pings_out += 1;
            c.rtt_start = Some(now);
            self.trace(id, || trace::op(false, "PING", &[]));
            self.queue_bytes(id, now, b"PING\r\n");
        }
    }

    /// Lame-duck notice (`server/server.go` `sendLDMToClients`): every open client that sent
    /// CONNECT with `protocol` ≥ 1 and already got its first PONG receives an INFO with
    /// `"ldm":true`. Poll events afterwards.
    pub fn lame_duck_notice(&mut self, now: Instant) {
        for id in self.clients() {
            let eligible = self
                .client(id)
                .is_some_and(|c| !c.phase.is_closed() && c.opts.protocol >= 1 && c.first_pong_sent);
            if eligible {
                let info = self.build_info(id, true);
                self.queue_bytes(id, now, &info);
            }
        }
    }

    /// Closes every open client with `reason` (for shutdown: `ServerShutdown`). Poll events
    /// afterwards: each gets [`Event::Closed`].
    pub fn close_all(&mut self, now: Instant, reason: CloseReason) {
        for id in self.clients() {
            self.close(id, now, reason);
        }
    }

    /// Server-wide counters.
    #[must_use]
    pub fn stats(&self) -> ServerStats {
        self.stats
    }

    /// Subject index statistics for `/subsz`.
    #[must_use]
    pub fn sublist_stats(&self) -> SublistStats {
        self.router.sublist_stats(None)
    }

    /// One account's subject index statistics (`/subsz?acc=`), `None` for an unknown account.
    #[must_use]
    pub fn account_sublist_stats(&self, account: &str) -> Option<SublistStats> {
        let id = self.router.lookup(account)?;
        Some(self.router.sublist_stats(Some(id)))
    }

    /// The system account's name, when there is one.
    #[must_use]
    pub fn system_account(&self) -> Option<&str> {
        let id = self.router.system_account()?;
        Some(self.router.name(id))
    }

    /// Every account (`$G` first, then in configuration order), for `/accountz`.
    #[must_use]
    pub fn accounts(&self) -> Vec<AccountInfo> {
        let mut connections = vec![0usize; self.router.accounts().count()];
        for slot in &self.slots {
            if let Some(c) = &slot.client
                && !c.phase.is_closed()
                && c.counts_as_client
                && let Some(n) = connections.get_mut(c.auth.account.index())
            {
                *n += 1;
            }
        }
        let system = self.router.system_account();
        self.router
            .accounts()
            .map(|(id, a)| AccountInfo {
                name: a.name.to_string(),
                is_system: system == Some(id),
                connections: connections.get(id.index()).copied().unwrap_or(0),
                sublist: a.sublist.stats(),
                in_msgs: a.stats.in_msgs,
                pending_responses: a.responses.len(),
            })
            .collect()
    }

    /// Every known client (open, or closed but not yet removed), in cid order.
    #[must_use]
    pub fn clients(&self) -> Vec<ClientId> {
        let mut ids: Vec<(u64, ClientId)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let c = s.client.as_ref()?;
                Some((
                    c.cid,
                    ClientId {
                        index: u32::try_from(i).ok()?,
                        generation: s.generation,
                    },
                ))
            })
            .collect();
        ids.sort_unstable();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// True when the client exists and is open.
    #[must_use]
    pub fn is_open(&self, client: ClientId) -> bool {
        self.client(client).is_some_and(|c| !c.phase.is_closed())
    }

    /// The cid of a client.
    #[must_use]
    pub fn cid(&self, client: ClientId) -> Option<u64> {
        self.client(client).map(|c| c.cid)
    }

    /// A snapshot of a client for `/connz`.
    #[must_use]
    pub fn client_info(&self, client: ClientId, now: Instant) -> Option<ClientInfo> {
        let mut info = self.client_summary(client, now)?;
        info.subscriptions = self.client_subscriptions(client);
        Some(info)
    }

    /// [`Broker::client_info`] without the subscription list (`num_subscriptions` is set):
    /// cheap enough to take for every connection before sorting and paging them.
    #[must_use]
    pub fn client_summary(&self, client: ClientId, _now: Instant) -> Option<ClientInfo> {
        let c = self.client(client)?;
        let num_subscriptions = if c.phase.is_closed() {
            c.closed_subs.len()
        } else {
            c.subs.len()
        };
        Some(ClientInfo {
            id: client,
            cid: c.cid,
            conn_type: c.params.conn_type,
            remote: c.params.remote,
            start: c.start,
            last_activity: c.last_activity,
            stop: c.phase.closed().map(|(_, t)| t),
            reason: c.phase.closed().map(|(r, _)| r),
            rtt: c.rtt,
            pending_bytes: c.pending(),
            in_msgs: c.in_msgs,
            out_msgs: c.out_msgs,
            in_bytes: c.in_bytes,
            out_bytes: c.out_bytes,
            subscriptions: Vec::new(),
            num_subscriptions,
            name: c.opts.name.clone(),
            lang: c.opts.lang.clone(),
            version: c.opts.version.clone(),
            user: c.opts.user.clone(),
            authorized_user: c.auth.authorized_user.clone(),
            tls_version: c.params.tls_version.clone(),
            tls_cipher: c.params.tls_cipher.clone(),
            forwarded_for: c.params.forwarded_for.clone(),
            account: self.router.name(c.auth.account).to_string(),
        })
    }

    /// The client's subscriptions, by sid (those it held when it closed, for a closed client).
    #[must_use]
    pub fn client_subscriptions(&self, client: ClientId) -> Vec<SubInfo> {
        let Some(c) = self.client(client) else {
            return Vec::new();
        };
        if c.phase.is_closed() {
            return c.closed_subs.clone();
        }
        let mut subscriptions: Vec<SubInfo> = c
            .subs
            .values()
            .filter_map(|k| self.router.sub(*k))
            .map(|s| sub_info(s, c.cid, self.router.name(c.auth.account)))
            .collect();
        subscriptions.sort_by(|a, b| a.sid.cmp(&b.sid));
        subscriptions
    }

    /// Closed connections kept for `/connz?state=closed`, oldest first.
    pub fn closed_clients(&self) -> impl Iterator<Item = &ClientInfo> + '_ {
        self.closed_ring.iter()
    }

    /// Every subscription, or those matching the literal publish subject `test`, for `/subsz`.
    #[must_use]
    pub fn subscriptions(&self, test: Option<&[u8]>) -> Vec<SubInfo> {
        self.subscriptions_in(None, test)
    }

    /// [`Broker::subscriptions`] of one account (`/subsz?acc=`); an unknown account has none.
    #[must_use]
    pub fn subscriptions_in(&self, account: Option<&str>, test: Option<&[u8]>) -> Vec<SubInfo> {
        let only = match account {
            Some(name) => match self.router.lookup(name) {
                Some(id) => Some(id),
                None => return Vec::new(),
            },
            None => None,
        };
        let mut out = Vec::new();
        for slot in &self.router.subs {
            let Some(s) = slot.sub.as_ref() else {
                continue;
            };
            if only.is_some_and(|a| a != slot.account) {
                continue;
            }
            if let Some(t) = test
                && !subject::matches(&s.subject, t)
            {
                continue;
            }
            let cid = self.client(s.client).map_or(0, |c| c.cid);
            out.push(sub_info(s, cid, self.router.name(slot.account)));
        }
        out.sort_by(|a, b| a.cid.cmp(&b.cid).then_with(|| a.sid.cmp(&b.sid)));
        out
    }

    /// True once the client's CONNECT was accepted (or it was bound to the `no_auth_user`).
    #[must_use]
    pub fn connect_received(&self, client: ClientId) -> bool {
        self.client(client)
            .is_some_and(|c| c.phase == Phase::Connected)
    }
}

fn sub_info(s: &Subscription, cid: u64, account: &str) -> SubInfo {
    SubInfo {
        subject: String::from_utf8_lossy(&s.subject).into_owned(),
        queue: s
            .queue
            .as_ref()
            .map(|q| String::from_utf8_lossy(q).into_owned()),
        sid: String::from_utf8_lossy(&s.sid).into_owned(),
        msgs: s.delivered,
        max: s.max.map(NonZeroU64::get),
        cid,
        account: account.to_owned(),
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
        Ok(())
    }
}

#[cfg(test)]
mod tests;
