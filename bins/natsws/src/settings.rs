//! The binary's resolved settings: the typed config-file options (natsconf) with the
//! command-line flags applied on top, plus the pieces handed to the broker.

use std::path::Path;
use std::time::Duration;

use natsconf::options::{Diagnostic, Options, TlsOptions, Unmodelled};

use crate::cli::Cli;
use crate::logger::{LogFormat, LogSettings};
use crate::tls::TlsSpec;

mod leaf;

pub(crate) use leaf::{LeafSettings, RemoteSettings, parse_advertise as parse_leaf_advertise};
use leaf::{leaf_auth, leaf_settings};

/// Default NATS client port.
pub(crate) const DEFAULT_CLIENT_PORT: u16 = 4222;
/// Default TLS handshake timeout (`tls.timeout`).
pub(crate) const DEFAULT_TLS_TIMEOUT: Duration = Duration::from_secs(2);

/// A listen address as configured: `port` `-1` asks for a random port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListenSpec {
    pub(crate) host: String,
    pub(crate) port: i64,
}

impl ListenSpec {
    /// The port to bind: 0 for random.
    pub(crate) fn bind_port(&self) -> u16 {
        if self.port < 0 {
            0
        } else {
            u16::try_from(self.port).unwrap_or(0)
        }
    }
}

/// The `mqtt { }` block: its listener (MQTT over WebSocket uses the websocket listener's
/// `/mqtt` path).
#[derive(Debug, Clone)]
pub(crate) struct MqttSettings {
    pub(crate) listen: ListenSpec,
    pub(crate) tls: Option<TlsSpec>,
    /// `tls { timeout }` (nats-server shows its 2 s default in `/varz` without TLS too).
    pub(crate) tls_timeout: Duration,
}

/// The `websocket { }` block.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WsSettings {
    pub(crate) listen: ListenSpec,
    pub(crate) advertise: Option<String>,
    pub(crate) no_tls: bool,
    pub(crate) tls: Option<TlsSpec>,
    pub(crate) compression: bool,
    /// `reuse_port`: bind with `SO_REUSEPORT` (several processes share the port).
    pub(crate) reuse_port: bool,
    pub(crate) handshake_timeout: Duration,
    pub(crate) same_origin: bool,
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) jwt_cookie: Option<String>,
    pub(crate) no_auth_user: Option<String>,
    pub(crate) auth_timeout: Option<Duration>,
    /// What the upgrade policy is built from.
    pub(crate) handshake: ws_handshake::Options,
}

impl WsSettings {
    /// `ws://` or `wss://`.
    pub(crate) fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "wss" } else { "ws" }
    }
}

/// Everything the server runs with.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) config_file: Option<String>,
    pub(crate) client: ListenSpec,
    pub(crate) client_advertise: Option<String>,
    pub(crate) client_tls: Option<TlsSpec>,
    pub(crate) http: Option<ListenSpec>,
    pub(crate) https: Option<ListenSpec>,
    pub(crate) http_base_path: String,
    pub(crate) websocket: Option<WsSettings>,
    pub(crate) leaf: LeafSettings,
    /// The `mqtt { }` listener.
    pub(crate) mqtt: Option<MqttSettings>,
    pub(crate) log: LogSettings,
    pub(crate) pid_file: Option<String>,
    /// `store_dir` (or `-sd`): MQTT state is kept in `<store_dir>/mqtt` across restarts.
    pub(crate) store_dir: Option<String>,
    pub(crate) max_closed_clients: usize,
    pub(crate) ports_file_dir: Option<String>,
    pub(crate) lame_duck_duration: Duration,
    pub(crate) lame_duck_grace_period: Duration,
    pub(crate) tls_timeout: Duration,
    pub(crate) broker: broker::Config,
    /// Authentication, compiled into the broker's config by the server.
    pub(crate) auth: broker::auth::AuthConfig,
    /// The typed options the settings came from (for the reload check).
    pub(crate) options: Options,
    /// Config-file warnings, printed raw to stderr before start-up as nats-server does.
    pub(crate) config_warnings: Vec<String>,
    /// Warnings to log at start-up (e.g. JetStream flags).
    pub(crate) warnings: Vec<String>,
}

impl Settings {
    /// Applies the command-line flags on top (flags win over the file).
    pub(crate) fn apply_cli(&mut self, cli: &Cli) -> Result<(), String> {
        if !cli.cluster_flags.is_empty() {
            return Err(format!(
                "clustering is not supported by natsws (flag -{})",
                cli.cluster_flags.join(", -")
            ));
        }
        if cli.profile_port.is_some_and(|p| p != 0) {
            return Err("profiling (--profile) is not supported by natsws".to_owned());
        }
        if cli.syslog == Some(true) || cli.remote_syslog.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err("syslog logging is not supported by natsws".to_owned());
        }
        if let Some(host) = &cli.host {
            self.client.host.clone_from(host);
        }
        if let Some(port) = cli.port {
            self.client.port = if port == 0 {
                i64::from(DEFAULT_CLIENT_PORT)
            } else {
                port
            };
        }
        if let Some(name) = &cli.server_name {
            self.broker.server_name.clone_from(name);
        }
        if let Some(adv) = &cli.client_advertise {
            self.client_advertise = Some(adv.clone());
        }
        if let Some(port) = cli.http_port {
            let host = self
                .http
                .as_ref()
                .map_or_else(|| self.client.host.clone(), |h| h.host.clone());
            self.http = (port != 0).then_some(ListenSpec { host, port });
        }
        if let Some(port) = cli.https_port {
            let host = self
                .https
                .as_ref()
                .map_or_else(|| self.client.host.clone(), |h| h.host.clone());
            self.https = (port != 0).then_some(ListenSpec { host, port });
        }
        if let Some(f) = &cli.pid_file {
            self.pid_file = Some(f.clone());
        }
        if let Some(d) = &cli.ports_file_dir {
            self.ports_file_dir = Some(d.clone());
        }
        if let Some(f) = &cli.log_file {
            self.log.file = (!f.is_empty()).then(|| f.clone());
        }
        if let Some(d) = cli.debug {
            self.log.debug = d;
        }
        if let Some(t) = cli.trace {
            self.log.trace = t;
        }
        if let Some(n) = cli.max_traced_msg_len {
            self.broker.max_traced_msg_len = usize::try_from(n).unwrap_or(0);
        }
        if let Some(t) = cli.logtime {
            self.log.logtime = t;
        }
        if let Some(format) = cli.log_format {
            self.log.format = format;
        }
        if cli.jetstream == Some(true) {
            self.warnings
                .push("JetStream is not provided by natsws: -js is ignored".to_owned());
        }
        if let Some(dir) = cli.store_dir.as_deref().filter(|d| !d.is_empty()) {
            self.store_dir = Some(dir.to_owned());
        }
        self.apply_cli_auth(cli);
        self.apply_cli_tls(cli)?;
        Ok(())
    }

    fn apply_cli_auth(&mut self, cli: &Cli) {
        if let Some(u) = &cli.user {
            self.auth.username = Some(u.clone());
        }
        if let Some(p) = &cli.pass {
            self.auth.password = Some(p.clone());
        }
        if let Some(t) = &cli.auth {
            self.auth.token = Some(t.clone());
        }
    }

    fn apply_cli_tls(&mut self, cli: &Cli) -> Result<(), String> {
        let any = cli.tls.is_some()
            || cli.tls_verify.is_some()
            || cli.tls_cert.is_some()
            || cli.tls_key.is_some()
            || cli.tls_ca_cert.is_some();
        if !any {
            return Ok(());
        }
        if cli.tls == Some(false) && cli.tls_verify != Some(true) {
            self.client_tls = None;
            return Ok(());
        }
        let mut spec = self.client_tls.clone().unwrap_or_default();
        if let Some(c) = &cli.tls_cert {
            spec.cert_file.clone_from(c);
        }
        if let Some(k) = &cli.tls_key {
            spec.key_file.clone_from(k);
        }
        if let Some(ca) = &cli.tls_ca_cert {
            spec.ca_file = Some(ca.clone());
        }
        if let Some(v) = cli.tls_verify {
            spec.verify = v;
        }
        if cli.tls == Some(true) || spec.verify || !spec.cert_file.is_empty() {
            if spec.cert_file.is_empty() {
                return Err("TLS Server certificate must be present and valid".to_owned());
            }
            if spec.key_file.is_empty() {
                return Err("TLS Server private key must be present and valid".to_owned());
            }
            self.client_tls = Some(spec);
        }
        Ok(())
    }
}

/// Builds the settings: the config file (or the embedded default), then the flags.
pub(crate) fn load(cli: &Cli) -> Result<Settings, String> {
    let (options, warnings) = match &cli.config_file {
        Some(file) => parse_options(Some(file))?,
        None if cli.bare => parse_options(None)?,
        // As nats-server started without `-c`: its defaults, then the flags.
        None => (Options::default(), Vec::new()),
    };
    let mut s = from_options(&options)?;
    s.config_warnings = warnings;
    s.config_file.clone_from(&cli.config_file);
    s.apply_cli(cli)?;
    finish(&mut s)?;
    Ok(s)
}

/// Parses and interprets a config file (or the built-in one): the typed options and the
/// warnings to print, or the rendered diagnostics.
pub(crate) fn parse_options(file: Option<&str>) -> Result<(Options, Vec<String>), String> {
    let map = match file {
        Some(f) => natsconf::parse_file(Path::new(f)),
        None => natsconf::parse_source(
            natsconf::options::DEFAULT_CONFIG.as_bytes(),
            b"<built-in>",
            &natsconf::ProcessEnv,
            &natsconf::FsLoader::new(),
        ),
    }
    .map_err(|e| e.render().trim_end().to_owned())?;
    let loaded = Options::from_map_with(&map, refuse_unmodelled).map_err(|diags| {
        natsconf::options::render_report(&diags)
            .trim_end()
            .to_owned()
    })?;
    loaded.options.validate().map_err(|e| e.to_string())?;
    let warnings = loaded.warnings.iter().map(ToString::to_string).collect();
    Ok((loaded.options, warnings))
}

/// natsws's policy for the options nats-server knows that natsconf does not model: each is a
/// config error at its value, `"<key>" is not supported by natsws`, reported with the other
/// option errors (so `-t`, start-up and reload refuse it alike). A config that asks for them
/// would otherwise start a server that silently behaves differently.
fn refuse_unmodelled(option: &Unmodelled) -> Option<Diagnostic> {
    Some(option.error(format!(
        "{} is not supported by natsws",
        gotext::quote(&option.key)
    )))
}

fn listen(host: &str, port: u16) -> ListenSpec {
    ListenSpec {
        host: host.to_owned(),
        port: if port == 0 { -1 } else { i64::from(port) },
    }
}

fn tls_spec(t: &TlsOptions) -> TlsSpec {
    TlsSpec {
        cert_file: t.cert_file.clone().unwrap_or_default(),
        key_file: t.key_file.clone().unwrap_or_default(),
        ca_file: t.ca_file.clone(),
        verify: t.verify,
        timeout: t.timeout_set.then_some(t.timeout),
    }
}

/// Refuses every parsed option this binary does not serve, naming it, so a config never
/// starts a server that silently behaves differently from what it asks for.
fn check_served(o: &Options) -> Result<(), String> {
    let d = Options::default();
    let mut refused: Vec<String> = Vec::new();
    let mut refuse = |cond: bool, name: &str| {
        if cond {
            refused.push(name.to_owned());
        }
    };
    // Leaf nodes: what is not served of them is refused in `leaf_settings` and the TLS
    // checks below.
    // Accounts are served; these parts of them are not.
    refuse(o.accounts.iter().any(|a| a.nkey.is_some()), "accounts.nkey");
    let exports = || o.accounts.iter().flat_map(|a| a.exports.iter());
    refuse(
        exports().any(|e| e.account_token_position != 0),
        "accounts.exports.account_token_position",
    );
    refuse(!o.server_tags.is_empty(), "server_tags");
    refuse(o.client_advertise.is_some(), "client_advertise");
    refuse(
        o.connect_error_reports != d.connect_error_reports,
        "connect_error_reports",
    );
    refuse(
        o.reconnect_error_reports != d.reconnect_error_reports,
        "reconnect_error_reports",
    );
    refuse(o.disable_sublist_cache, "disable_sublist_cache");
    refuse(o.allow_non_tls, "allow_non_tls");
    refuse(o.logging.log_size_limit != 0, "log_size_limit");
    refuse(o.logging.syslog, "syslog");
    refuse(o.logging.remote_syslog.is_some(), "remote_syslog");
    let tls_default = TlsOptions::default();
    let check_tls = |t: &TlsOptions, prefix: &str| {
        let mut out = Vec::new();
        for (cond, field) in [
            (t.verify_and_map, "verify_and_map"),
            (
                t.verify_cert_and_check_known_urls,
                "verify_cert_and_check_known_urls",
            ),
            (t.insecure, "insecure"),
            (!t.pinned_certs.is_empty(), "pinned_certs"),
            (t.connection_rate_limit != 0, "connection_rate_limit"),
            (
                t.cipher_suites != tls_default.cipher_suites,
                "cipher_suites",
            ),
            (
                t.curve_preferences != tls_default.curve_preferences,
                "curve_preferences",
            ),
        ] {
            if cond {
                out.push(format!("{prefix}.{field}"));
            }
        }
        out
    };
    let mut tls_refused = Vec::new();
    if let Some(t) = &o.leafnodes.tls {
        tls_refused.extend(check_tls(t, "leafnodes.tls"));
    }
    for remote in &o.leafnodes.remotes {
        if let Some(t) = &remote.tls {
            // A remote's `insecure` is served (the hub's certificate is not verified).
            let t = TlsOptions {
                insecure: false,
                ..t.clone()
            };
            tls_refused.extend(check_tls(&t, "leafnodes.remotes.tls"));
        }
    }
    if let Some(t) = &o.tls {
        tls_refused.extend(check_tls(t, "tls"));
    }
    if let Some(ws) = &o.websocket {
        if let Some(t) = &ws.tls {
            tls_refused.extend(check_tls(t, "websocket.tls"));
        }
        if ws.ping_interval.is_some() {
            tls_refused.push("websocket.ping_interval".to_owned());
        }
        if ws.advertise.is_some() {
            tls_refused.push("websocket.advertise".to_owned());
        }
    }
    if let Some(t) = o.mqtt.as_ref().and_then(|m| m.tls.as_ref()) {
        tls_refused.extend(check_tls(t, "mqtt.tls"));
    }
    refused.extend(tls_refused);
    if refused.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = refused.iter().map(|n| format!("\"{n}\"")).collect();
    Err(format!(
        "{} {} not supported by natsws",
        names.join(", "),
        if names.len() == 1 { "is" } else { "are" }
    ))
}

/// Translates natsconf's options into the binary's settings and the broker's config.
pub(crate) fn from_options(o: &Options) -> Result<Settings, String> {
    check_served(o)?;
    let mut broker = broker::Config::default();
    if let Some(name) = &o.server_name {
        broker.server_name.clone_from(name);
    }
    broker.headers = !o.no_header_support;
    broker.limits = broker::Limits {
        max_control_line: usize::try_from(o.max_control_line).unwrap_or(4096),
        max_payload: usize::try_from(o.max_payload).unwrap_or(1 << 20),
        max_pending: usize::try_from(o.max_pending).unwrap_or(64 << 20),
        max_connections: usize::try_from(o.max_connections).unwrap_or(65536),
        max_subscriptions: usize::try_from(o.max_subscriptions).unwrap_or(0),
        max_subscription_tokens: o.max_subscription_tokens.map(usize::from),
    };
    if let Some(mqtt) = &o.mqtt {
        broker.mqtt_ack_wait = mqtt.ack_wait;
        broker.mqtt_max_ack_pending = mqtt.max_ack_pending;
    }
    broker.ping_interval = o.ping_interval;
    broker.ping_max = u32::try_from(o.ping_max).unwrap_or(2);
    broker.write_deadline = o.write_deadline;
    broker.auth_timeout = o.auth_timeout;
    // Negative, like 0, means whole payloads (the reference tests `> 0`).
    broker.max_traced_msg_len = usize::try_from(o.max_traced_msg_len).unwrap_or(0);
    let websocket = match &o.websocket {
        None => None,
        Some(ws) => {
            let origins = ws.parsed_origins()?;
            let _ = origins;
            Some(WsSettings {
                listen: listen(&ws.listen.host, ws.listen.port),
                advertise: ws.advertise.clone(),
                no_tls: ws.no_tls,
                tls: ws.tls.as_ref().map(tls_spec),
                compression: ws.compression,
                reuse_port: ws.reuse_port,
                handshake_timeout: ws.handshake_timeout.unwrap_or(Duration::ZERO),
                same_origin: ws.same_origin,
                allowed_origins: ws.allowed_origins.clone(),
                jwt_cookie: ws.jwt_cookie.clone(),
                no_auth_user: ws.no_auth_user.clone(),
                auth_timeout: ws.authorization.timeout,
                handshake: ws_handshake::Options {
                    same_origin: ws.same_origin,
                    allowed_origins: ws.allowed_origins.clone(),
                    compression: ws.compression,
                    jwt_cookie: ws.jwt_cookie.clone(),
                    user_cookie: ws.user_cookie.clone(),
                    pass_cookie: ws.pass_cookie.clone(),
                    token_cookie: ws.token_cookie.clone(),
                    headers: ws.headers.clone(),
                    reject_mqtt: o.mqtt.is_none(),
                    ..ws_handshake::Options::default()
                },
            })
        }
    };
    let leaf = leaf_settings(o)?;
    broker.leaf_auth = leaf_auth(o);
    // Validated as nats-server does when the config is parsed (`checkLeafMinVersionConfig`).
    broker.leaf_min_version = o.leafnodes.min_version.clone();
    for name in broker.leaf_auth.iter().flat_map(|a| {
        a.users
            .iter()
            .filter_map(|u| u.account.as_ref())
            .chain(&a.account)
    }) {
        if name != broker::GLOBAL_ACCOUNT && !o.accounts.iter().any(|a| &a.name == name) {
            return Err(format!(
                "cannot find account {} specified in leafnode authorization",
                gotext::quote(name)
            ));
        }
    }
    let mut auth = auth_config(o);
    let mut warnings = Vec::new();
    auth.operator = crate::operator::operator_config(o, &mut warnings)?;
    broker.accounts = accounts_config(o);
    broker.system_account = match &o.system_account {
        // Operator mode: the system account is an account JWT; the broker resolves it.
        _ if auth.operator.is_some() => {
            if auth
                .operator
                .as_ref()
                .is_some_and(|op| op.system_account.is_none())
            {
                warnings.push("Trusted Operators should utilize a System Account".to_owned());
            }
            None
        }
        // `server/server.go` `configureAccounts`: a named system account must be defined.
        Some(name) if !o.accounts.iter().any(|a| &a.name == name) => {
            return Err("error resolving system account: account missing".to_owned());
        }
        Some(name) => Some(name.clone()),
        None if o.no_system_account => None,
        None => Some(broker::DEFAULT_SYSTEM_ACCOUNT.to_owned()),
    };
    Ok(Settings {
        config_file: None,
        client: listen(&o.listen.host, o.listen.port),
        client_advertise: o.client_advertise.clone(),
        client_tls: o.tls.as_ref().map(tls_spec),
        http: o.http.as_ref().map(|h| listen(&h.host, h.port)),
        https: o.https.as_ref().map(|h| listen(&h.host, h.port)),
        http_base_path: normalise_base_path(&o.http_base_path),
        websocket,
        leaf,
        mqtt: o.mqtt.as_ref().map(|m| MqttSettings {
            listen: listen(&m.listen.host, m.listen.port),
            tls: m.tls.as_ref().map(tls_spec),
            tls_timeout: m.tls.as_ref().map_or(DEFAULT_TLS_TIMEOUT, |t| t.timeout),
        }),
        log: LogSettings {
            debug: o.logging.debug,
            trace: o.logging.trace || o.logging.trace_verbose,
            logtime: o.logging.logtime,
            file: o.logging.log_file.clone(),
            format: LogFormat::Text,
        },
        pid_file: o.pid_file.clone(),
        store_dir: o.store_dir.clone(),
        max_closed_clients: usize::try_from(o.max_closed_clients).unwrap_or(0),
        ports_file_dir: o.ports_file_dir.clone(),
        lame_duck_duration: o.lame_duck_duration,
        lame_duck_grace_period: o.lame_duck_grace_period,
        tls_timeout: o.tls.as_ref().map_or(DEFAULT_TLS_TIMEOUT, |t| t.timeout),
        broker,
        auth,
        options: o.clone(),
        config_warnings: Vec::new(),
        warnings,
    })
}

fn normalise_base_path(p: &str) -> String {
    let trimmed = p.trim();
    if trimmed.is_empty() || trimmed == "/" {
        return String::new();
    }
    let mut out = String::new();
    for seg in trimmed.split('/').filter(|s| !s.is_empty() && *s != ".") {
        out.push('/');
        out.push_str(seg);
    }
    out
}

/// The broker's authentication settings from the `authorization` and `websocket` blocks.
fn auth_config(o: &Options) -> broker::auth::AuthConfig {
    use broker::auth as ba;
    let a = &o.authorization;
    let perms = |p: &natsconf::options::Permissions| ba::PermissionsConfig {
        publish: p.publish.as_ref().map(|sp| ba::SubjectPermission {
            allow: sp.allow.clone(),
            deny: sp.deny.clone(),
        }),
        subscribe: p.subscribe.as_ref().map(|sp| ba::SubjectPermission {
            allow: sp.allow.clone(),
            deny: sp.deny.clone(),
        }),
        allow_responses: p.allow_responses.as_ref().map(|r| ba::ResponsePermission {
            max_msgs: r.max_msgs,
            expires: r.expires,
        }),
    };
    let mut cfg = ba::AuthConfig {
        username: a.user.clone(),
        password: a.password.clone(),
        token: a.token.clone(),
        timeout: a.timeout,
        no_auth_user: o.no_auth_user.clone(),
        default_permissions: a.default_permissions.as_ref().map(perms),
        ..ba::AuthConfig::default()
    };
    cfg.users = a
        .users
        .iter()
        .map(|u| ba::User {
            username: u.username.clone(),
            password: u.password.clone(),
            permissions: u.permissions.as_ref().map(perms),
            allowed_connection_types: u.allowed_connection_types.clone(),
            account: u.account.clone(),
        })
        .collect();
    cfg.nkeys = a
        .nkeys
        .iter()
        .map(|n| ba::NkeyUser {
            nkey: n.nkey.clone(),
            permissions: n.permissions.as_ref().map(perms),
            allowed_connection_types: n.allowed_connection_types.clone(),
            account: n.account.clone(),
        })
        .collect();
    if let Some(ws) = &o.websocket {
        cfg.websocket = ba::WebsocketAuth {
            username: ws.authorization.user.clone(),
            password: ws.authorization.password.clone(),
            token: ws.authorization.token.clone(),
            timeout: ws.authorization.timeout,
            no_auth_user: ws.no_auth_user.clone(),
            jwt_cookie: ws.jwt_cookie.clone(),
            username_cookie: ws.user_cookie.clone(),
            password_cookie: ws.pass_cookie.clone(),
            token_cookie: ws.token_cookie.clone(),
        };
    }
    if let Some(mqtt) = &o.mqtt {
        cfg.mqtt = ba::WebsocketAuth {
            username: mqtt.authorization.user.clone(),
            password: mqtt.authorization.password.clone(),
            token: mqtt.authorization.token.clone(),
            timeout: mqtt.authorization.timeout,
            no_auth_user: mqtt.no_auth_user.clone(),
            ..ba::WebsocketAuth::default()
        };
    }
    cfg
}

/// The broker's accounts from the `accounts` block (their users are in [`auth_config`]).
fn accounts_config(o: &Options) -> Vec<broker::AccountConfig> {
    use natsconf::options::{ExportKind, ResponseType};
    let kind = |k: ExportKind| match k {
        ExportKind::Stream => broker::ExportKind::Stream,
        ExportKind::Service => broker::ExportKind::Service,
    };
    o.accounts
        .iter()
        .map(|a| broker::AccountConfig {
            name: a.name.clone(),
            exports: a
                .exports
                .iter()
                .map(|e| broker::ExportConfig {
                    kind: kind(e.kind),
                    subject: e.subject.clone(),
                    accounts: e.accounts.clone(),
                    response_type: match e.response_type {
                        ResponseType::Singleton => broker::ResponseType::Singleton,
                        ResponseType::Stream => broker::ResponseType::Stream,
                        ResponseType::Chunked => broker::ResponseType::Chunked,
                    },
                    response_threshold: e.response_threshold,
                    latency: e.latency.as_ref().map(|l| broker::LatencyConfig {
                        sampling: l.sampling.map_or(
                            broker::LatencySampling::Headers,
                            broker::LatencySampling::Percent,
                        ),
                        subject: l.subject.clone(),
                    }),
                })
                .collect(),
            imports: a
                .imports
                .iter()
                .map(|i| broker::ImportConfig {
                    kind: kind(i.kind),
                    account: i.account.clone(),
                    subject: i.subject.clone(),
                    to: i.to.clone(),
                    prefix: i.prefix.clone(),
                    share: i.share,
                })
                .collect(),
        })
        .collect()
}

/// Fills in generated values and checks cross-option rules.
fn finish(s: &mut Settings) -> Result<(), String> {
    if s.broker.server_id == broker::Config::default().server_id {
        s.broker.server_id = crate::ids::new_server_id()?;
    }
    let mut seed = [0u8; 8];
    crate::ids::os_random(&mut seed)?;
    s.broker.seed = u64::from_le_bytes(seed);
    s.broker.trace = s.log.trace;
    s.broker.mqtt_persist = s.store_dir.is_some();
    // bcrypt comparisons run on the hasher threads, never on the event loop.
    s.broker.defer_password_checks = true;
    let limits = &s.broker.limits;
    if limits.max_payload > limits.max_pending {
        return Err(format!(
            "max_payload ({}) cannot be higher than max_pending ({})",
            limits.max_payload, limits.max_pending
        ));
    }
    s.broker.auth = s.auth.clone();
    // Operator mode reads JWT times against the wall clock; the broker reads no clock.
    // Service latency measurements print wall-clock times to the nanosecond.
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    s.broker.wall_clock = Some(broker::WallClock {
        at: std::time::Instant::now(),
        unix_secs: i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
        subsec_nanos: since_epoch.subsec_nanos(),
    });
    broker::Broker::try_new(s.broker.clone(), std::time::Instant::now())
        .map_err(|e| e.to_string())?;
    if let Some(ws) = &s.websocket {
        if ws.tls.is_none() && !ws.no_tls {
            return Err("websocket requires TLS configuration".to_owned());
        }
        ws_handshake::Policy::new(&ws.handshake).map_err(|e| format!("websocket: {e}"))?;
    }
    Ok(())
}

/// `--dump-config [--positions] FILE`: the typed JSON dump of the parsed file.
pub(crate) fn dump_config(cli: &Cli) -> std::process::ExitCode {
    let Some(file) = cli.args.first().or(cli.config_file.as_ref()) else {
        eprintln!("natsws: --dump-config needs a file");
        return std::process::ExitCode::from(1);
    };
    let res = natsconf::parse_file(Path::new(file));
    print!("{}", natsconf::dump::dump(&res, cli.dump_positions));
    if res.is_ok() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    }
}
