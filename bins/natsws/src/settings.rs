//! The binary's resolved settings: the typed config-file options (natsconf) with the
//! command-line flags applied on top, plus the pieces handed to the broker.

use std::time::Duration;

use crate::cli::Cli;
use crate::logger::LogSettings;
use crate::tls::TlsSpec;

/// Default NATS client port.
pub(crate) const DEFAULT_CLIENT_PORT: u16 = 4222;
/// Default `lame_duck_duration`.
pub(crate) const DEFAULT_LAME_DUCK_DURATION: Duration = Duration::from_secs(120);
/// Default `lame_duck_grace_period`.
pub(crate) const DEFAULT_LAME_DUCK_GRACE_PERIOD: Duration = Duration::from_secs(10);
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

/// The `websocket { }` block.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WsSettings {
    pub(crate) listen: ListenSpec,
    pub(crate) advertise: Option<String>,
    pub(crate) no_tls: bool,
    pub(crate) tls: Option<TlsSpec>,
    pub(crate) compression: bool,
    pub(crate) handshake_timeout: Duration,
    pub(crate) same_origin: bool,
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) jwt_cookie: Option<String>,
    pub(crate) no_auth_user: Option<String>,
    pub(crate) auth_timeout: Option<Duration>,
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
    pub(crate) log: LogSettings,
    pub(crate) pid_file: Option<String>,
    pub(crate) ports_file_dir: Option<String>,
    pub(crate) lame_duck_duration: Duration,
    pub(crate) lame_duck_grace_period: Duration,
    pub(crate) tls_timeout: Duration,
    pub(crate) broker: broker::Config,
    /// Authentication, compiled into the broker's config by the server.
    pub(crate) auth: broker::auth::AuthConfig,
    /// Warnings to log at start-up (e.g. JetStream flags).
    pub(crate) warnings: Vec<String>,
}

impl Settings {
    /// The embedded development defaults used when no `-c` is given: NATS on 127.0.0.1:4222,
    /// WebSocket on 127.0.0.1:8080 without TLS, monitoring on 127.0.0.1:8222.
    pub(crate) fn development_default() -> Self {
        Self {
            config_file: None,
            client: ListenSpec {
                host: "127.0.0.1".to_owned(),
                port: i64::from(DEFAULT_CLIENT_PORT),
            },
            client_advertise: None,
            client_tls: None,
            http: Some(ListenSpec {
                host: "127.0.0.1".to_owned(),
                port: 8222,
            }),
            https: None,
            http_base_path: String::new(),
            websocket: Some(WsSettings {
                listen: ListenSpec {
                    host: "127.0.0.1".to_owned(),
                    port: 8080,
                },
                advertise: None,
                no_tls: true,
                tls: None,
                compression: true,
                handshake_timeout: Duration::ZERO,
                same_origin: false,
                allowed_origins: Vec::new(),
                jwt_cookie: None,
                no_auth_user: None,
                auth_timeout: None,
            }),
            log: LogSettings {
                logtime: true,
                ..LogSettings::default()
            },
            pid_file: None,
            ports_file_dir: None,
            lame_duck_duration: DEFAULT_LAME_DUCK_DURATION,
            lame_duck_grace_period: DEFAULT_LAME_DUCK_GRACE_PERIOD,
            tls_timeout: DEFAULT_TLS_TIMEOUT,
            broker: broker::Config::default(),
            auth: broker::auth::AuthConfig::default(),
            warnings: Vec::new(),
        }
    }

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
        if let Some(t) = cli.logtime {
            self.log.logtime = t;
        }
        if cli.jetstream == Some(true) || cli.store_dir.as_deref().is_some_and(|s| !s.is_empty()) {
            self.warnings.push(
                "JetStream is not provided by natsws: -js/--store_dir are ignored".to_owned(),
            );
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
    let mut s = match &cli.config_file {
        None => Settings::development_default(),
        Some(file) => from_file(file)?,
    };
    s.config_file.clone_from(&cli.config_file);
    s.apply_cli(cli)?;
    finish(&mut s)?;
    Ok(s)
}

fn from_file(file: &str) -> Result<Settings, String> {
    Err(format!(
        "{file}: configuration files are read through natsconf, which is not built in"
    ))
}

/// Fills in generated values and checks cross-option rules.
fn finish(s: &mut Settings) -> Result<(), String> {
    if s.broker.server_id == broker::Config::default().server_id {
        s.broker.server_id = crate::server::new_server_id();
    }
    let mut seed = [0u8; 8];
    crate::server::os_random(&mut seed);
    s.broker.seed = u64::from_le_bytes(seed);
    let limits = &s.broker.limits;
    if limits.max_payload > limits.max_pending {
        return Err(format!(
            "max_payload ({}) cannot be higher than max_pending ({})",
            limits.max_payload, limits.max_pending
        ));
    }
    if s.client_tls.is_some() {
        let tls_timeout = s.tls_timeout;
        if s.broker.auth_timeout == broker::config::DEFAULT_AUTH_TIMEOUT {
            s.broker.auth_timeout = tls_timeout + Duration::from_secs(1);
        }
    }
    Ok(())
}

/// `--dump-config [--positions] FILE`.
pub(crate) fn dump_config(cli: &Cli) -> std::process::ExitCode {
    let Some(file) = cli.args.first().or(cli.config_file.as_ref()) else {
        eprintln!("natsws: --dump-config needs a file");
        return std::process::ExitCode::from(1);
    };
    eprintln!("natsws: {file}: --dump-config needs natsconf");
    std::process::ExitCode::from(1)
}
