//! Broker configuration, with nats-server 2.9.10's defaults (`server/const.go`, and
//! `server/opts.go` `setBaselineOptions`).
//!
//! The binary translates its configuration file into this struct; the broker never reads one.

use std::time::Duration;

/// Default `max_control_line` (4 KiB).
pub const DEFAULT_MAX_CONTROL_LINE_BYTES: usize = 4096;
/// Default `max_payload` (1 MiB).
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
/// Default `max_pending` (64 MiB).
pub const DEFAULT_MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;
/// Default `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 65536;
/// Default `ping_interval` (2 minutes).
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(120);
/// Default `ping_max`.
pub const DEFAULT_PING_MAX: u32 = 2;
/// Default `write_deadline` (10 s).
pub const DEFAULT_WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// Default authorization timeout (2 s).
pub const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_secs(2);
/// The first PING after CONNECT comes at most this soon (plus up to 20 % jitter).
pub const FIRST_CLIENT_PING_INTERVAL: Duration = Duration::from_secs(2);
/// An RTT measurement older than this makes the next ping timer send a PING regardless of activity.
pub const RTT_MEASUREMENT_INTERVAL: Duration = Duration::from_secs(3600);

/// Resource limits, all in one place, with nats-server's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest argument part of a control line (`max_control_line`).
    pub max_control_line: usize,
    /// Largest message (`max_payload`), announced in INFO.
    pub max_payload: usize,
    /// Largest outbound queue per client before it is a slow consumer (`max_pending`).
    pub max_pending: usize,
    /// Most client connections (TCP and WebSocket together) (`max_connections`). nats-server
    /// reads a configured 0 as "default"; the binary does that translation, here 0 refuses all.
    pub max_connections: usize,
    /// Most subscriptions per connection; 0 = unlimited (`max_subscriptions`).
    pub max_subscriptions: usize,
    /// Most tokens in a SUB subject; `None` = unlimited (`max_subscription_tokens`).
    pub max_subscription_tokens: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_control_line: DEFAULT_MAX_CONTROL_LINE_BYTES,
            max_payload: DEFAULT_MAX_PAYLOAD_BYTES,
            max_pending: DEFAULT_MAX_PENDING_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_subscriptions: 0,
            max_subscription_tokens: None,
        }
    }
}

/// Facts about one listener that go into INFO (`host`, `port`, TLS flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerInfo {
    /// Host as configured or advertised (`"0.0.0.0"` by default).
    pub host: String,
    /// Port as configured or advertised.
    pub port: u16,
    /// TLS is required on this listener.
    pub tls_required: bool,
    /// Client certificates are verified.
    pub tls_verify: bool,
    /// TLS is offered but optional (`allow_non_tls`).
    pub tls_available: bool,
}

impl Default for ListenerInfo {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".to_owned(),
            port: 4222,
            tls_required: false,
            tls_verify: false,
            tls_available: false,
        }
    }
}

/// Whether an export or import is a stream or a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    /// A stream: messages flow from the exporter to every importer.
    Stream,
    /// A service: requests flow from the importer to the exporter, responses back.
    Service,
}

/// How many responses a service export may send to one request (`response_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseType {
    /// One response (the default).
    #[default]
    Singleton,
    /// Any number of responses until the threshold passes.
    Stream,
    /// Any number of responses (one response in parts) until the threshold passes.
    Chunked,
}

/// One entry of an account's `exports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportConfig {
    /// Stream or service.
    pub kind: ExportKind,
    /// The exported subject; may contain wildcards.
    pub subject: String,
    /// The accounts allowed to import it; empty means public.
    pub accounts: Vec<String>,
    /// `response_type` (services).
    pub response_type: ResponseType,
    /// `response_threshold` (services): how long responses are accepted; `None` is the
    /// default (2 minutes).
    pub response_threshold: Option<Duration>,
    /// `latency` (services): service latency tracking, results published in this account.
    pub latency: Option<LatencyConfig>,
}

/// Which requests to a tracked service are measured (`server/accounts.go` `serviceLatency`
/// `sampling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencySampling {
    /// This percentage (1 to 100) of requests, chosen at random; a request not chosen is
    /// still measured when its headers ask for it.
    Percent(u8),
    /// Only requests whose tracing headers ask for it (`Uber-Trace-Id`, `traceparent`,
    /// `X-B3-Sampled`, `X-B3-TraceId`, `B3`).
    Headers,
}

/// A service export's latency tracking (`latency` in the config, `service_latency` in an
/// account JWT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyConfig {
    /// Which requests are measured.
    pub sampling: LatencySampling,
    /// The subject the measurements are published to, in the exporting account.
    pub subject: String,
}

/// One entry of an account's `imports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportConfig {
    /// Stream or service.
    pub kind: ExportKind,
    /// The exporting account.
    pub account: String,
    /// The subject in the exporting account.
    pub subject: String,
    /// `to`: the subject in the importing account (streams: instead of the exported subject;
    /// services: the subject local clients publish requests to).
    pub to: Option<String>,
    /// `prefix` (streams): the imported subjects become `<prefix>.<subject>`.
    pub prefix: Option<String>,
    /// `share` (services): latency measurements of this import's requests show the
    /// requestor's details, not only its account and round-trip time.
    pub share: bool,
}

/// One account of the `accounts` block. Its users are listed in the auth configuration with
/// [`crate::auth::User::account`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountConfig {
    /// The account name.
    pub name: String,
    /// `exports`.
    pub exports: Vec<ExportConfig>,
    /// `imports`.
    pub imports: Vec<ImportConfig>,
}

/// One user of `leafnodes { authorization }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeafUserConfig {
    /// User name.
    pub username: String,
    /// Password (plain text).
    pub password: String,
    /// The account the leaf binds to (`None`: the authorization's `account`, else `$G`).
    pub account: Option<String>,
}

/// `leafnodes { authorization }`: when set, a leaf that connects here authenticates against
/// it alone (`server/auth.go` `isLeafNodeAuthorized`), not against the client users.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeafAuthConfig {
    /// The single user, or the `users` list; empty: no credentials are asked for.
    pub users: Vec<LeafUserConfig>,
    /// `account`: where a leaf without a user of its own binds.
    pub account: Option<String>,
    /// `timeout`.
    pub timeout: Option<Duration>,
}

/// Everything the broker needs to know. `Default` equals a stock nats-server.
#[derive(Debug, Clone)]
pub struct Config {
    /// MQTT `ack_wait`: how long a QoS 1 delivery waits for its PUBACK before it is sent
    /// again with DUP (nats-server's default 30 s).
    pub mqtt_ack_wait: Duration,
    /// MQTT `max_ack_pending`: QoS 1 deliveries awaiting PUBACK per connection (default 1024).
    pub mqtt_max_ack_pending: u16,
    /// Persist MQTT retained messages and kept sessions: every change is queued as a
    /// [`crate::mqtt_store::StoreWrite`] for [`crate::Broker::poll_mqtt_store`], and the caller
    /// gives the records back to [`crate::Broker::restore_mqtt`] at start-up. When false
    /// (the default) nothing is queued.
    pub mqtt_persist: bool,
    /// Server id (a public nkey starting with `N` in nats-server; any string works).
    pub server_id: String,
    /// Server name; when empty INFO uses `server_id`.
    pub server_name: String,
    /// Version string sent in INFO.
    pub version: String,
    /// Value of INFO `go` (kept for clients that print it).
    pub go: String,
    /// Value of INFO `git_commit`; omitted when empty.
    pub git_commit: String,
    /// The NATS client (TCP) listener.
    pub client_listener: ListenerInfo,
    /// The WebSocket listener, when configured. WebSocket clients get its host, port and TLS
    /// flags in INFO (the newer nats-server behaviour; see the crate docs).
    pub websocket_listener: Option<ListenerInfo>,
    /// Cluster client URLs for TCP clients' `connect_urls` (`host:port`); usually empty.
    pub connect_urls: Vec<String>,
    /// WebSocket URLs sent to WebSocket clients as `connect_urls`; usually empty.
    pub ws_connect_urls: Vec<String>,
    /// Cluster name for INFO `cluster`; omitted when empty.
    pub cluster: String,
    /// The leafnode listener, when natsws accepts leafs: accepted leaf connections get its
    /// host, port and TLS flags in INFO.
    pub leaf_listener: Option<ListenerInfo>,
    /// `leafnode_urls` in the INFO accepted leafs get (`host:port`); empty with
    /// `no_advertise`.
    pub leaf_urls: Vec<String>,
    /// `leafnodes { authorization }`.
    pub leaf_auth: Option<LeafAuthConfig>,
    /// `leafnodes { min_version }`: accepted leafs whose CONNECT `version` is lower are
    /// refused (`-ERR`, then closed after [`LEAF_REFUSED_HOLD`](crate::LEAF_REFUSED_HOLD)).
    /// Checked as nats-server's `versionComponents` reads it; validate it beforehand.
    pub leaf_min_version: Option<String>,
    /// Header support (`!no_header_support`).
    pub headers: bool,
    /// Limits.
    pub limits: Limits,
    /// Server PING period.
    pub ping_interval: Duration,
    /// Unanswered PINGs before `Stale Connection`.
    pub ping_max: u32,
    /// How long output may make no progress before `Slow Consumer (Write Deadline)`.
    pub write_deadline: Duration,
    /// Authorization timeout when auth is expected and the auth config has no override.
    pub auth_timeout: Duration,
    /// Authentication and authorization settings.
    pub auth: crate::authseam::AuthConfig,
    /// Accounts besides the global account `$G` (which always exists and holds every user
    /// without an account).
    pub accounts: Vec<AccountConfig>,
    /// The system account (`system_account`, default `$SYS`): it exists, isolated like any
    /// other account; `None` when `no_system_account` is set.
    pub system_account: Option<String>,
    /// Seed for the broker's deterministic random choices (queue member, first-ping jitter,
    /// nonces when the caller gives none). The binary passes OS randomness.
    pub seed: u64,
    /// Leave bcrypt password comparisons to the caller: a CONNECT that needs one parks the
    /// client and emits [`crate::Event::CheckPassword`]; the caller runs the check (on another
    /// thread, so that one slow comparison does not stall every connection) and calls
    /// [`crate::Broker::password_checked`]. When false they run inside `handle_input`.
    pub defer_password_checks: bool,
    /// Emit [`crate::Event::Trace`] for every protocol operation read or written (`-V`).
    pub trace: bool,
    /// Longest payload shown by a `MSG_PAYLOAD` trace line before it is cut with `...`;
    /// 0 shows whole payloads (`max_traced_msg_len`).
    pub max_traced_msg_len: usize,
    /// The wall clock: an instant and the Unix time (seconds) it stands for. Operator mode
    /// needs it for JWT expiry and connect times; the broker never reads a clock, so the
    /// binary sets it (at start and on reload). `None` counts as the Unix epoch, so `nbf`
    /// claims fail and operator mode refuses to start ([`crate::Broker::try_new`]).
    pub wall_clock: Option<WallClock>,
}

/// An instant and the wall-clock time it stands for; see [`Config::wall_clock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClock {
    /// The instant.
    pub at: std::time::Instant,
    /// The Unix time at `at`, in seconds.
    pub unix_secs: i64,
    /// The fraction of the second at `at`, in nanoseconds (below 1 000 000 000); only the
    /// times the broker prints (service latency measurements) use it.
    pub subsec_nanos: u32,
}

impl WallClock {
    /// The Unix time (seconds) at `now`.
    #[must_use]
    pub fn unix_at(&self, now: std::time::Instant) -> i64 {
        self.unix_nanos_at(now).0
    }

    /// The Unix time at `now` in nanoseconds, as seconds and nanoseconds (below 1 000 000 000).
    #[must_use]
    pub fn unix_nanos_at(&self, now: std::time::Instant) -> (i64, u32) {
        let base = i128::from(self.unix_secs) * 1_000_000_000 + i128::from(self.subsec_nanos);
        let total = if now >= self.at {
            base.saturating_add(i128::try_from((now - self.at).as_nanos()).unwrap_or(i128::MAX))
        } else {
            base.saturating_sub(i128::try_from((self.at - now).as_nanos()).unwrap_or(i128::MAX))
        };
        let secs = i64::try_from(total.div_euclid(1_000_000_000)).unwrap_or(i64::MAX);
        let nanos = u32::try_from(total.rem_euclid(1_000_000_000)).unwrap_or(0);
        (secs, nanos)
    }

    /// The instant of Unix time `unix` (seconds), saturating at `now` for times past.
    #[must_use]
    pub fn instant_of(&self, unix: i64, now: std::time::Instant) -> std::time::Instant {
        let left = unix.saturating_sub(self.unix_at(now));
        match u64::try_from(left) {
            Ok(s) if s > 0 => now
                .checked_add(Duration::from_secs(s))
                .unwrap_or(now + Duration::from_secs(86_400 * 365 * 100)),
            _ => now,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mqtt_ack_wait: Duration::from_secs(30),
            mqtt_max_ack_pending: 1024,
            mqtt_persist: false,
            server_id: "NATSWS".to_owned(),
            server_name: String::new(),
            version: "2.9.10".to_owned(),
            go: "rust".to_owned(),
            git_commit: String::new(),
            client_listener: ListenerInfo::default(),
            websocket_listener: None,
            connect_urls: Vec::new(),
            ws_connect_urls: Vec::new(),
            cluster: String::new(),
            leaf_min_version: None,
            leaf_listener: None,
            leaf_urls: Vec::new(),
            leaf_auth: None,
            headers: true,
            limits: Limits::default(),
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_max: DEFAULT_PING_MAX,
            write_deadline: DEFAULT_WRITE_DEADLINE,
            auth_timeout: DEFAULT_AUTH_TIMEOUT,
            auth: crate::authseam::AuthConfig::default(),
            accounts: Vec::new(),
            system_account: Some(crate::router::DEFAULT_SYSTEM_ACCOUNT.to_owned()),
            seed: 0x5eed_0f7a_u64,
            defer_password_checks: false,
            trace: false,
            max_traced_msg_len: 0,
            wall_clock: None,
        }
    }
}
