//! Typed, validated server options built from the value tree (`server/opts.go`
//! `processConfigFileLine` and the `parse*` functions it calls).
//!
//! [`Options::from_map`] interprets a parsed config the way nats-server 2.9.10's
//! `server/opts.go` does: top-level keys and the keys of most blocks are case-insensitive, the
//! value kinds are checked with the reference's texts, problems are collected (not fatal one by
//! one) and reported as `<file>:<line>:<pos>: <reason>`, warnings before errors, sorted by
//! position. The result carries the options with nats-server's defaults applied
//! (`setBaselineOptions`), so [`Options::default()`] is exactly a server started without a config.
//!
//! [`Options::check_reload`] tells whether a running server may switch to a new config
//! (`config reload not supported for <Field>: …`).
//!
//! [`Options::validate`] runs the start-up checks (`validateOptions`) that natsws needs, in the
//! reference's order, with its exact texts (`server/server.go` `validateOptions`, which ends
//! with `server/websocket.go` `validateWebsocketOptions`).
//!
//! ```
//! use natsconf::options::{render_report, Options, DEFAULT_CONFIG};
//! use natsconf::{parse_source, MemLoader, NoEnv};
//!
//! let map = parse_source(DEFAULT_CONFIG.as_bytes(), b"default.conf", &NoEnv, &MemLoader::new())
//!     .expect("the built-in config parses");
//! let loaded = Options::from_map(&map).expect("and is valid");
//! assert_eq!(loaded.options.listen.port, 4222);
//! assert!(loaded.options.validate().is_ok());
//!
//! let map = parse_source(b"port: \"abc\"\nfoo: 1\n", b"nats.conf", &NoEnv, &MemLoader::new())
//!     .expect("parses");
//! let report = Options::from_map(&map).expect_err("has option errors");
//! assert_eq!(
//!     render_report(&report),
//!     "nats.conf:1:0: interface conversion: interface {} is string, not int64\n\
//!      nats.conf:2:1: unknown field \"foo\"\n"
//! );
//! ```
//!
//! Operator mode is read (`operator`, `trusted`, `resolver: MEMORY` or `{ type: full }`,
//! `resolver_preload`); the program reads the operator files and checks the JWTs. Options
//! nats-server knows but natsconf does not model (clustering, gateways, JetStream, MQTT, the
//! URL and CACHE account resolvers, `resolver_tls`, `resolver_pinned_accounts`, OCSP, subject
//! mappings, profiling, and a few
//! keys inside accounts and leafnode remotes) are neither errors nor silently dropped: each is
//! recorded as an [`Unmodelled`] (its path, key and position) in [`Options::unmodelled`].
//! What to do about them is the program's decision, not this crate's: ignore them, warn, or
//! refuse the config. [`Options::from_map_with`] takes that policy as a function and places
//! the diagnostics it returns in the report as if natsconf had found them (sorted with the
//! others). Anything else unknown is `unknown field "<key>"`, as in the reference. The
//! top-level `store_dir` (JetStream's directory in nats-server, where it keeps MQTT state) is
//! read; what a program keeps there is its own choice.
//!
//! ```
//! use natsconf::options::{render_report, Options};
//! use natsconf::{parse_source, MemLoader, NoEnv};
//!
//! let map = parse_source(b"port: 4333\njetstream: true\n", b"nats.conf", &NoEnv, &MemLoader::new())
//!     .expect("parses");
//!
//! // A program that serves everything it needs from the modelled options can ignore the rest,
//! // or look at what it skipped.
//! let loaded = Options::from_map(&map).expect("no option errors");
//! let skipped: Vec<String> = loaded.options.unmodelled().iter().map(ToString::to_string).collect();
//! assert_eq!(skipped, ["nats.conf:2:1: jetstream is known to nats-server but not modelled by natsconf"]);
//!
//! // A server that must not start with options it ignores refuses them, with its own text.
//! let refuse = |u: &natsconf::options::Unmodelled| Some(u.error(format!("{} is not served here", u.path_text())));
//! let report = Options::from_map_with(&map, refuse).expect_err("refused");
//! assert_eq!(render_report(&report), "nats.conf:2:1: jetstream is not served here\n");
//!
//! // Or it starts, and says so.
//! let warn = |u: &natsconf::options::Unmodelled| Some(u.warning(format!("{} is ignored", u.path_text())));
//! let loaded = Options::from_map_with(&map, warn).expect("only warnings");
//! assert_eq!(loaded.warnings[0].to_string(), "nats.conf:2:1: jetstream is ignored");
//! ```
//!
//! Deliberate differences from the reference (each reported as a config error at the option):
//! strings must be valid UTF-8; ports must be in `-1..=65535`; `ping_interval` and
//! `write_deadline` must not be negative; WebSocket allowed origins must be absolute `http` or
//! `https` URLs with a host (2.9.10's `validateWebsocketOptions` only asks `url.Parse`, and
//! `wsSetOriginOptions` then skips what `url.ParseRequestURI` refuses, so a list of bad entries
//! checks nothing: the origin check fails open); TLS cipher suites and curves that rustls does
//! not implement are refused; the newer WebSocket options (`user_cookie`, `pass_cookie`,
//! `token_cookie`, `headers`, `ping_interval`) are accepted as in nats-server 2.11+.

mod accounts;
mod auth;
mod diag;
mod fields;
mod gostd;
mod leafnode;
mod mqtt;
mod operator;
mod reload;
mod server;
mod tls;
mod url;
mod validate;
mod websocket;

use std::time::Duration;

use crate::value::Map;

/// Go's empty-string-means-unset convention, for the option strings that are optional here.
fn non_empty(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

pub use accounts::{Account, Export, ExportKind, Import, ImportKind, Latency, ResponseType};
pub use auth::{
    Authorization, CONNECTION_TYPES, NkeyUser, Permissions, ResponsePermission, SubjectPermission,
    User,
};
pub use diag::{Diagnostic, PathSegment, Severity, Unmodelled, render_report, sort_report};
pub use leafnode::{LeafAuthorization, LeafNodeOptions, LeafUrl, LeafUser, RemoteLeaf};
pub use mqtt::{DEFAULT_MQTT_ACK_WAIT, DEFAULT_MQTT_MAX_ACK_PENDING, MqttOptions};
pub use operator::{OperatorOptions, Preload, Resolver};
pub use tls::TlsOptions;
pub use url::AllowedOrigin;
pub use validate::ValidationError;
pub use websocket::{WebsocketAuthorization, WebsocketOptions};

/// The configuration natsws runs with when it is started without `-c`: NATS on
/// 127.0.0.1:4222, WebSocket on 127.0.0.1:8080 without TLS (with compression allowed),
/// monitoring on 127.0.0.1:8222. It is ordinary config text, so it goes through the same
/// parser and option checks as a user's file.
pub const DEFAULT_CONFIG: &str = "\
# natsws built-in development configuration (used when no config file is given).
host: \"127.0.0.1\"
port: 4222
http: \"127.0.0.1:8222\"
websocket {
  host: \"127.0.0.1\"
  port: 8080
  no_tls: true
  compression: true
}
";

/// nats-server's `DEFAULT_HOST`.
pub const DEFAULT_HOST: &str = "0.0.0.0";
/// nats-server's `DEFAULT_PORT`.
pub const DEFAULT_PORT: u16 = 4222;
/// nats-server's `MAX_PAYLOAD_SIZE` (1 MiB).
pub const DEFAULT_MAX_PAYLOAD_BYTES: i32 = 1024 * 1024;
/// nats-server's `MAX_CONTROL_LINE_SIZE`.
pub const DEFAULT_MAX_CONTROL_LINE_BYTES: i32 = 4096;
/// nats-server's `MAX_PENDING_SIZE` (64 MiB).
pub const DEFAULT_MAX_PENDING_BYTES: i64 = 64 * 1024 * 1024;
/// nats-server's `DEFAULT_MAX_CONNECTIONS`.
pub const DEFAULT_MAX_CONNECTIONS: i64 = 64 * 1024;
/// nats-server's `DEFAULT_PING_INTERVAL`.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(120);
/// nats-server's `DEFAULT_PING_MAX_OUT`.
pub const DEFAULT_PING_MAX: i64 = 2;
/// nats-server's `DEFAULT_FLUSH_DEADLINE` (`write_deadline`).
pub const DEFAULT_WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// nats-server's `DEFAULT_LAME_DUCK_DURATION`.
pub const DEFAULT_LAME_DUCK_DURATION: Duration = Duration::from_secs(120);
/// nats-server's `DEFAULT_LAME_DUCK_GRACE_PERIOD`.
pub const DEFAULT_LAME_DUCK_GRACE_PERIOD: Duration = Duration::from_secs(10);
/// nats-server's `TLS_TIMEOUT`.
pub const DEFAULT_TLS_TIMEOUT: Duration = Duration::from_secs(2);
/// nats-server's `AUTH_TIMEOUT` (without TLS; with TLS it is the TLS timeout plus one second).
pub const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_secs(2);
/// nats-server's `DEFAULT_CONNECT_ERROR_REPORTS`.
pub const DEFAULT_CONNECT_ERROR_REPORTS: i64 = 3600;
/// nats-server's `DEFAULT_RECONNECT_ERROR_REPORTS`.
pub const DEFAULT_RECONNECT_ERROR_REPORTS: i64 = 1;
/// nats-server's `DEFAULT_LEAFNODE_PORT` (also the default port of remote leafnode URLs).
pub const DEFAULT_LEAFNODE_PORT: u16 = 7422;
/// nats-server's `DEFAULT_LEAF_NODE_RECONNECT`.
pub const DEFAULT_LEAF_RECONNECT: Duration = Duration::from_secs(1);
/// nats-server's `DEFAULT_MAX_CLOSED_CLIENTS`.
pub const DEFAULT_MAX_CLOSED_CLIENTS: i64 = 10_000;

/// A listen address. `port` 0 asks the OS for a free port (`-1` in the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Host or IP to bind (`0.0.0.0` by default).
    pub host: String,
    /// Port to bind; 0 means "any free port".
    pub port: u16,
}

/// Logging options (`debug`, `trace`, `logtime`, `log_file`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logging {
    /// `debug`.
    pub debug: bool,
    /// `trace` (also set by `trace_verbose`).
    pub trace: bool,
    /// `trace_verbose`.
    pub trace_verbose: bool,
    /// `logtime`: timestamps in log lines (default true, as nats-server's `-T`).
    pub logtime: bool,
    /// `log_file` / `logfile`.
    pub log_file: Option<String>,
    /// `log_size_limit` / `logfile_size_limit` in bytes (0 = no rotation).
    pub log_size_limit: i64,
    /// `syslog`.
    pub syslog: bool,
    /// `remote_syslog` (`udp://host:514`).
    pub remote_syslog: Option<String>,
}

impl Default for Logging {
    fn default() -> Self {
        Self {
            debug: false,
            trace: false,
            trace_verbose: false,
            logtime: true,
            log_file: None,
            log_size_limit: 0,
            syslog: false,
            remote_syslog: None,
        }
    }
}

/// Every option natsws understands, with nats-server's defaults applied.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Options {
    /// Options nats-server knows that natsconf does not model ([`Options::unmodelled`]).
    unmodelled: Vec<Unmodelled>,
    /// Client listener: `host`/`net`, `port`, `listen`. Port 0 in the config means 4222;
    /// `-1` becomes port 0 (random).
    pub listen: HostPort,
    /// `client_advertise`.
    pub client_advertise: Option<String>,
    /// `server_name`.
    pub server_name: Option<String>,
    /// `server_tags`.
    pub server_tags: Vec<String>,
    /// Monitoring over HTTP: `http` (port or host:port), `http_port` / `monitor_port`.
    /// `None` when disabled (port 0). The host defaults to the client host.
    pub http: Option<HostPort>,
    /// Monitoring over HTTPS: `https`, `https_port`.
    pub https: Option<HostPort>,
    /// `http_base_path`, as written.
    pub http_base_path: String,
    /// `max_payload` in bytes.
    pub max_payload: i32,
    /// `max_control_line` in bytes.
    pub max_control_line: i32,
    /// `max_pending` in bytes.
    pub max_pending: i64,
    /// `max_connections` / `max_conn`.
    pub max_connections: i64,
    /// `max_subscriptions` / `max_subs` (0 = unlimited).
    pub max_subscriptions: i64,
    /// `max_sub_tokens` / `max_subscription_tokens` (`None` = unlimited).
    pub max_subscription_tokens: Option<u8>,
    /// `max_traced_msg_len` (0 = unlimited).
    pub max_traced_msg_len: i64,
    /// `ping_interval`.
    pub ping_interval: Duration,
    /// `ping_max`.
    pub ping_max: i64,
    /// `write_deadline`.
    pub write_deadline: Duration,
    /// `lame_duck_duration`.
    pub lame_duck_duration: Duration,
    /// `lame_duck_grace_period`.
    pub lame_duck_grace_period: Duration,
    /// Size of the closed-connections ring (not a config key in 2.9.10).
    pub max_closed_clients: i64,
    /// Logging.
    pub logging: Logging,
    /// `pid_file` / `pidfile`.
    pub pid_file: Option<String>,
    /// `ports_file_dir`.
    pub ports_file_dir: Option<String>,
    /// `connect_error_reports`.
    pub connect_error_reports: i64,
    /// `reconnect_error_reports`.
    pub reconnect_error_reports: i64,
    /// `no_header_support`.
    pub no_header_support: bool,
    /// `disable_sublist_cache` / `no_sublist_cache`.
    pub disable_sublist_cache: bool,
    /// `no_system_account` / `no_system` / `no_sys_acc`: no default system account `$SYS`.
    pub no_system_account: bool,
    /// `system_account` / `system`: the account that is the system account; it must be
    /// defined in `accounts` (else the default `$SYS` is created, unless `no_system_account`).
    pub system_account: Option<String>,
    /// Client TLS: the top-level `tls` block.
    pub tls: Option<TlsOptions>,
    /// `allow_non_tls`.
    pub allow_non_tls: bool,
    /// The effective client auth timeout: `authorization { timeout }`, or 2 s, or the TLS
    /// timeout plus one second when client TLS is configured.
    pub auth_timeout: Duration,
    /// The `authorization` block, plus every user and nkey defined in `accounts`.
    pub authorization: Authorization,
    /// `no_auth_user`.
    pub no_auth_user: Option<String>,
    /// `accounts`.
    pub accounts: Vec<Account>,
    /// `leafnodes` / `leaf`.
    pub leafnodes: LeafNodeOptions,
    /// `websocket` / `ws`; `None` when its port is 0 (disabled).
    pub websocket: Option<WebsocketOptions>,
    /// Operator mode: `operator`, `trusted`, `resolver`, `resolver_preload`.
    pub operator: OperatorOptions,
    /// `mqtt`; `None` when its port is 0 (disabled).
    pub mqtt: Option<MqttOptions>,
    /// Top-level `store_dir` / `storedir`: nats-server's storage directory (JetStream's, where
    /// it keeps MQTT state); natsws keeps its MQTT state in `<store_dir>/mqtt`.
    pub store_dir: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        server::Raw::default().finish()
    }
}

/// A successfully loaded configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The options.
    pub options: Options,
    /// Warnings to print before starting (already sorted).
    pub warnings: Vec<Diagnostic>,
}

impl Options {
    /// Interprets a parsed config (the top-level map). On failure the report holds every
    /// warning and error, sorted as [`sort_report`] does; print it with [`render_report`].
    /// Options natsconf does not model are no error: they are listed in
    /// [`Options::unmodelled`] (use [`Options::from_map_with`] to refuse or warn about them).
    ///
    /// # Errors
    /// Any option error (`unknown field`, a wrong value kind, a value the reference refuses, ...).
    pub fn from_map(map: &Map) -> Result<Loaded, Vec<Diagnostic>> {
        Self::from_map_with(map, |_| None)
    }

    /// [`Options::from_map`] with a policy for the options nats-server knows that natsconf
    /// does not model. `policy` sees each [`Unmodelled`] record once, in file order (also
    /// when the config has errors), and may return a diagnostic for it (usually
    /// [`Unmodelled::error`] or [`Unmodelled::warning`]); the diagnostic joins the report in
    /// the place natsconf found the option, and an error makes the config fail. Every record
    /// stays in [`Options::unmodelled`] of a config that loads, whatever the policy returned.
    ///
    /// # Errors
    /// Any option error, including those `policy` returned.
    pub fn from_map_with(
        map: &Map,
        policy: impl FnMut(&Unmodelled) -> Option<Diagnostic>,
    ) -> Result<Loaded, Vec<Diagnostic>> {
        let mut ctx = diag::Ctx::default();
        let raw = server::parse_top(map, &mut ctx);
        let (mut errors, mut warnings, unmodelled) = ctx.finish(policy);
        sort_report(&mut warnings);
        if errors.is_empty() {
            let mut options = raw.finish();
            options.unmodelled = unmodelled;
            return Ok(Loaded { options, warnings });
        }
        let mut report = warnings;
        sort_report(&mut errors);
        report.extend(errors);
        Err(report)
    }

    /// The options in the config that nats-server 2.9.10 knows but natsconf does not model,
    /// in file order. They changed nothing in these options; a program that would behave
    /// differently from nats-server by ignoring them should refuse them (see
    /// [`Options::from_map_with`]). Empty for [`Options::default()`].
    #[must_use]
    pub fn unmodelled(&self) -> &[Unmodelled] {
        &self.unmodelled
    }
}
