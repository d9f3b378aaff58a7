//! The top level of the config (`processConfigFileLine`) and the defaults
//! (`setBaselineOptions`).

use std::time::Duration;

use gotext::{format_duration, quote};

use crate::value::Map;

use super::accounts::{Account, Principals, parse_accounts};
use super::auth::{Authorization, NkeyUser, User, parse_authorization, user_names};
use super::diag::{Ctx, Entry, Panic, V};
use super::fields::{
    auth_timeout_of, host_or_default, nanos_to_duration, non_negative, parse_duration_option,
    parse_listen_into, parse_port_into, port_of, seconds_to_duration,
};
use super::gostd::parse_duration;
use super::leafnode::{RawLeaf, parse_leafnodes};
use super::mqtt::{RawMqtt, parse_mqtt};
use super::operator::{
    OperatorOptions, parse_operators, parse_preload, parse_resolver, parse_trusted,
};
use super::tls::{TlsOptions, parse_tls};
use super::websocket::{RawWebsocket, parse_websocket};
use super::{
    DEFAULT_AUTH_TIMEOUT, DEFAULT_CONNECT_ERROR_REPORTS, DEFAULT_LAME_DUCK_DURATION,
    DEFAULT_LAME_DUCK_GRACE_PERIOD, DEFAULT_MAX_CLOSED_CLIENTS, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONTROL_LINE_BYTES, DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_MAX_PENDING_BYTES,
    DEFAULT_PING_INTERVAL, DEFAULT_PING_MAX, DEFAULT_PORT, DEFAULT_RECONNECT_ERROR_REPORTS,
    DEFAULT_TLS_TIMEOUT, DEFAULT_WRITE_DEADLINE, HostPort, Logging, Options,
};

/// Top-level keys nats-server knows that natsconf does not model (recorded as `Unmodelled`).
const UNSUPPORTED_TOP: &[&str] = &[
    "cluster",
    "gateway",
    "jetstream",
    "resolver_tls",
    "resolver_pinned_accounts",
    "ocsp",
    "mappings",
    "maps",
    "default_js_domain",
    "prof_port",
];

/// The options as the reference holds them before `setBaselineOptions`: zero means "unset".
#[derive(Debug, Default)]
pub(crate) struct Raw {
    host: String,
    port: i64,
    client_advertise: Option<String>,
    server_name: Option<String>,
    server_tags: Vec<String>,
    http_host: String,
    http_port: i64,
    https_port: i64,
    http_base_path: String,
    max_payload: i32,
    max_control_line: i32,
    max_pending: i64,
    max_connections: i64,
    max_subscriptions: i64,
    max_subscription_tokens: Option<u8>,
    max_traced_msg_len: i64,
    ping_interval: i64,
    ping_max: i64,
    write_deadline: i64,
    lame_duck_duration: i64,
    lame_duck_grace_period: i64,
    logging: Logging,
    pid_file: Option<String>,
    store_dir: Option<String>,
    ports_file_dir: Option<String>,
    connect_error_reports: i64,
    reconnect_error_reports: i64,
    no_header_support: bool,
    disable_sublist_cache: bool,
    no_system_account: bool,
    system_account: Option<String>,
    system_account_key_seen: bool,
    tls: Option<TlsOptions>,
    allow_non_tls: bool,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) token: Option<String>,
    auth_timeout: f64,
    pub(crate) users: Vec<User>,
    pub(crate) nkeys: Vec<NkeyUser>,
    default_permissions: Option<super::Permissions>,
    no_auth_user: Option<String>,
    pub(crate) accounts: Vec<Account>,
    leaf: RawLeaf,
    websocket: RawWebsocket,
    operator: OperatorOptions,
    mqtt: RawMqtt,
}

fn string_list(ctx: &mut Ctx, what: &str, at: &V<'_>) -> Result<Option<Vec<String>>, Panic> {
    match at.value() {
        crate::value::Value::Str(_) => Ok(Some(vec![at.string()?])),
        crate::value::Value::Array(_) => {
            let mut out = Vec::new();
            for item in at.array()? {
                if let crate::value::Value::Str(_) = item.value() {
                    out.push(item.string()?);
                } else {
                    // The reference prints the Go type of the pedantic token wrapper.
                    let type_name = if item.node.pos.is_some() {
                        "*conf.token"
                    } else {
                        item.go_type()
                    };
                    ctx.error(
                        at,
                        format!(
                            "error parsing {what}: unsupported type {type_name} where string is expected"
                        ),
                    );
                    return Ok(None);
                }
            }
            Ok(Some(out))
        }
        _ => {
            ctx.error(
                at,
                format!("error parsing {what}: unsupported type {}", at.go_type()),
            );
            Ok(None)
        }
    }
}

pub(crate) fn parse_top(map: &Map, ctx: &mut Ctx) -> Raw {
    let mut raw = Raw::default();
    for (raw_key, node) in map.iter() {
        let key = String::from_utf8_lossy(raw_key).into_owned();
        let entry = Entry {
            lower: key.to_lowercase(),
            key,
            value: V::top(raw_key, node),
        };
        // Each top-level entry has its own `recover` in the reference.
        let res = parse_entry(&mut raw, ctx, &entry);
        ctx.recover(res);
    }
    raw
}

fn opt_string(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

#[expect(
    clippy::too_many_lines,
    reason = "one arm per option, as processConfigFileLine"
)]
fn parse_entry(raw: &mut Raw, ctx: &mut Ctx, entry: &Entry<'_>) -> Result<(), Panic> {
    let v = &entry.value;
    match entry.lower.as_str() {
        "listen" => parse_listen_into(ctx, v, &mut raw.host, &mut raw.port),
        "client_advertise" => raw.client_advertise = opt_string(v.string()?),
        "port" => parse_port_into(ctx, v, &mut raw.port)?,
        "server_name" => raw.server_name = opt_string(v.string()?),
        "host" | "net" => raw.host = v.string()?,
        "debug" => raw.logging.debug = v.bool()?,
        "trace" => raw.logging.trace = v.bool()?,
        "trace_verbose" => {
            let on = v.bool()?;
            raw.logging.trace_verbose = on;
            raw.logging.trace = on;
        }
        "logtime" => raw.logging.logtime = v.bool()?,
        "disable_sublist_cache" | "no_sublist_cache" => raw.disable_sublist_cache = v.bool()?,
        "accounts" => {
            let mut principals = Principals {
                single_user: raw.username.is_some(),
                token: raw.token.is_some(),
                users: &mut raw.users,
                nkeys: &mut raw.nkeys,
                accounts: &mut raw.accounts,
            };
            parse_accounts(&mut principals, ctx, v);
        }
        "authorization" => parse_top_authorization(raw, ctx, v),
        "http" => parse_listen_into(ctx, v, &mut raw.http_host, &mut raw.http_port),
        "https" => parse_listen_into(ctx, v, &mut raw.http_host, &mut raw.https_port),
        "http_port" | "monitor_port" => parse_port_into(ctx, v, &mut raw.http_port)?,
        "https_port" => parse_port_into(ctx, v, &mut raw.https_port)?,
        "http_base_path" => raw.http_base_path = v.string()?,
        "leaf" | "leafnodes" => parse_leafnodes(&mut raw.leaf, ctx, v),
        "logfile" | "log_file" => raw.logging.log_file = opt_string(v.string()?),
        "logfile_size_limit" | "log_size_limit" => raw.logging.log_size_limit = v.int()?,
        "syslog" => raw.logging.syslog = v.bool()?,
        "remote_syslog" => raw.logging.remote_syslog = opt_string(v.string()?),
        "pidfile" | "pid_file" => raw.pid_file = opt_string(v.string()?),
        // nats-server's JetStream directory, where it keeps MQTT state; natsws keeps its MQTT
        // state under it (no JetStream).
        "store_dir" | "storedir" => raw.store_dir = opt_string(v.string()?),
        "ports_file_dir" => raw.ports_file_dir = opt_string(v.string()?),
        "max_control_line" | "max_payload" => {
            let n = v.int()?;
            match i32::try_from(n) {
                Ok(n32) if n <= i64::from(i32::MAX) => {
                    if entry.lower == "max_payload" {
                        raw.max_payload = n32;
                    } else {
                        raw.max_control_line = n32;
                    }
                }
                _ if n > i64::from(i32::MAX) => {
                    ctx.error(v, format!("{} value is too big", entry.key));
                }
                // The reference truncates large negative values to int32; natsws refuses them.
                _ => ctx.error(v, format!("{} value is too small", entry.key)),
            }
        }
        "max_pending" => raw.max_pending = v.int()?,
        "max_connections" | "max_conn" => raw.max_connections = v.int()?,
        "max_traced_msg_len" => raw.max_traced_msg_len = v.int()?,
        "max_subscriptions" | "max_subs" => raw.max_subscriptions = v.int()?,
        "max_sub_tokens" | "max_subscription_tokens" => {
            let n = v.int()?;
            if n > i64::from(u8::MAX) {
                ctx.error(v, format!("{} value is too big", entry.key));
            } else if n <= 0 {
                ctx.error(v, format!("{} value can not be negative", entry.key));
            } else {
                raw.max_subscription_tokens = u8::try_from(n).ok();
            }
        }
        "ping_interval" => {
            if let Some(nanos) = parse_duration_option(ctx, "ping_interval", v)?
                && let Some(nanos) = non_negative(ctx, v, "ping_interval", nanos)
            {
                raw.ping_interval = nanos;
            }
        }
        "ping_max" => raw.ping_max = v.int()?,
        "tls" => {
            if let Some(tls) = parse_tls(ctx, v, true) {
                raw.tls = Some(tls);
            }
        }
        "allow_non_tls" => raw.allow_non_tls = v.bool()?,
        "write_deadline" => {
            if let Some(nanos) = parse_duration_option(ctx, "write_deadline", v)?
                && let Some(nanos) = non_negative(ctx, v, "write_deadline", nanos)
            {
                raw.write_deadline = nanos;
            }
        }
        "lame_duck_duration" => {
            let text = v.string()?;
            match parse_duration(&text) {
                Err(err) => ctx.error(v, format!("error parsing lame_duck_duration: {err}")),
                Ok(nanos) if nanos < 30_000_000_000 => ctx.error(
                    v,
                    format!(
                        "invalid lame_duck_duration of {}, minimum is 30 seconds",
                        format_duration(nanos)
                    ),
                ),
                Ok(nanos) => raw.lame_duck_duration = nanos,
            }
        }
        "lame_duck_grace_period" => {
            let text = v.string()?;
            match parse_duration(&text) {
                Err(err) => ctx.error(v, format!("error parsing lame_duck_grace_period: {err}")),
                Ok(nanos) if nanos < 0 => {
                    ctx.error(v, "invalid lame_duck_grace_period, needs to be positive");
                }
                Ok(nanos) => raw.lame_duck_grace_period = nanos,
            }
        }
        "no_auth_user" => raw.no_auth_user = opt_string(v.string()?),
        "no_system_account" | "no_system" | "no_sys_acc" => raw.no_system_account = v.bool()?,
        "system_account" | "system" => {
            // `configureSystemAccount`: `system_account` wins over `system` whatever their
            // order in the file.
            if entry.lower == "system" && raw.system_account_key_seen {
                return Ok(());
            }
            raw.system_account_key_seen |= entry.lower == "system_account";
            match v.value() {
                crate::value::Value::Str(_) => raw.system_account = Some(v.string()?),
                _ => ctx.error(v, "system account name must be a string"),
            }
        }
        "no_header_support" => raw.no_header_support = v.bool()?,
        "connect_error_reports" => raw.connect_error_reports = v.int()?,
        "reconnect_error_reports" => raw.reconnect_error_reports = v.int()?,
        "websocket" | "ws" => parse_websocket(&mut raw.websocket, ctx, v),
        "operator" | "operators" | "roots" | "root" | "root_operators" | "root_operator" => {
            parse_operators(&mut raw.operator, ctx, v)?;
        }
        "trusted" | "trusted_keys" => parse_trusted(&mut raw.operator, ctx, v)?,
        "resolver" | "account_resolver" | "accounts_resolver" => {
            parse_resolver(&mut raw.operator, ctx, entry)?;
        }
        "resolver_preload" => parse_preload(&mut raw.operator, ctx, v)?,
        "mqtt" => parse_mqtt(&mut raw.mqtt, ctx, v),
        "server_tags" => {
            if let Some(tags) = string_list(ctx, "tags", v)? {
                // `jwt.TagList.Add`: trimmed, lower-cased, no empties, no duplicates.
                for tag in tags {
                    let tag = tag.trim().to_lowercase();
                    if !tag.is_empty() && !raw.server_tags.contains(&tag) {
                        raw.server_tags.push(tag);
                    }
                }
            }
        }
        key if UNSUPPORTED_TOP.contains(&key) => ctx.unsupported(entry),
        _ => ctx.unknown(entry),
    }
    Ok(())
}

/// The `authorization` arm of `processConfigFileLine`, with its cross-checks against users
/// already defined in `accounts`.
fn parse_top_authorization(raw: &mut Raw, ctx: &mut Ctx, v: &V<'_>) {
    let Some(auth) = parse_authorization(ctx, v) else {
        return;
    };
    raw.username = auth.user.clone();
    raw.password = auth.password.clone();
    raw.token = auth.token.clone();
    raw.auth_timeout = auth.timeout;
    raw.default_permissions = auth.default_permissions.clone();
    if (auth.user.is_some() || auth.password.is_some()) && auth.token.is_some() {
        ctx.error(v, "Cannot have a user/pass and token");
        return;
    }
    let mut names = user_names(&raw.users, &raw.nkeys);
    if auth.users_present || !names.is_empty() {
        if auth.user.is_some() {
            ctx.error(v, "Can not have a single user/pass and a users array");
            return;
        }
        if auth.token.is_some() {
            ctx.error(v, "Can not have a token and a users array");
            return;
        }
        for user in &auth.users {
            if names.contains(&user.username) {
                ctx.error(
                    v,
                    format!("Duplicate user {} detected", quote(&user.username)),
                );
                return;
            }
            names.push(user.username.clone());
        }
        raw.users.extend(auth.users.iter().cloned());
    }
    for nkey in &auth.nkeys {
        if names.contains(&nkey.nkey) {
            ctx.error(v, format!("Duplicate nkey {} detected", quote(&nkey.nkey)));
            return;
        }
        names.push(nkey.nkey.clone());
    }
    raw.nkeys.extend(auth.nkeys.iter().cloned());
}

impl Raw {
    /// `setBaselineOptions`.
    pub(crate) fn finish(self) -> Options {
        let host = host_or_default(self.host);
        let http_host = if self.http_host.is_empty() {
            host.clone()
        } else {
            self.http_host
        };
        let port = match self.port {
            0 => DEFAULT_PORT,
            p => port_of(p),
        };
        let monitor = |port: i64| {
            (port != 0).then(|| HostPort {
                host: http_host.clone(),
                port: port_of(port),
            })
        };
        let tls_timeout = self
            .tls
            .as_ref()
            .map_or(DEFAULT_TLS_TIMEOUT, |tls| tls.timeout);
        let auth_timeout = if self.auth_timeout == 0.0 {
            if self.tls.is_some() {
                tls_timeout.saturating_add(Duration::from_secs(1))
            } else {
                DEFAULT_AUTH_TIMEOUT
            }
        } else {
            seconds_to_duration(self.auth_timeout)
        };
        let nonzero = |value: i64, default: i64| if value == 0 { default } else { value };
        let duration = |nanos: i64, default: Duration| {
            if nanos == 0 {
                default
            } else {
                nanos_to_duration(nanos)
            }
        };
        let authorization = Authorization {
            user: self.username,
            password: self.password,
            token: self.token,
            timeout: auth_timeout_of(self.auth_timeout),
            users: self.users,
            nkeys: self.nkeys,
            default_permissions: self.default_permissions,
        };
        Options {
            unmodelled: Vec::new(),
            http: monitor(self.http_port),
            https: monitor(self.https_port),
            listen: HostPort { host, port },
            client_advertise: self.client_advertise,
            server_name: self.server_name,
            server_tags: self.server_tags,
            http_base_path: self.http_base_path,
            max_payload: if self.max_payload == 0 {
                DEFAULT_MAX_PAYLOAD_BYTES
            } else {
                self.max_payload
            },
            max_control_line: if self.max_control_line == 0 {
                DEFAULT_MAX_CONTROL_LINE_BYTES
            } else {
                self.max_control_line
            },
            max_pending: nonzero(self.max_pending, DEFAULT_MAX_PENDING_BYTES),
            max_connections: nonzero(self.max_connections, DEFAULT_MAX_CONNECTIONS),
            max_subscriptions: self.max_subscriptions,
            max_subscription_tokens: self.max_subscription_tokens,
            max_traced_msg_len: self.max_traced_msg_len,
            ping_interval: duration(self.ping_interval, DEFAULT_PING_INTERVAL),
            ping_max: nonzero(self.ping_max, DEFAULT_PING_MAX),
            write_deadline: duration(self.write_deadline, DEFAULT_WRITE_DEADLINE),
            lame_duck_duration: duration(self.lame_duck_duration, DEFAULT_LAME_DUCK_DURATION),
            lame_duck_grace_period: duration(
                self.lame_duck_grace_period,
                DEFAULT_LAME_DUCK_GRACE_PERIOD,
            ),
            max_closed_clients: DEFAULT_MAX_CLOSED_CLIENTS,
            logging: self.logging,
            pid_file: self.pid_file,
            store_dir: self.store_dir,
            ports_file_dir: self.ports_file_dir,
            connect_error_reports: nonzero(
                self.connect_error_reports,
                DEFAULT_CONNECT_ERROR_REPORTS,
            ),
            reconnect_error_reports: nonzero(
                self.reconnect_error_reports,
                DEFAULT_RECONNECT_ERROR_REPORTS,
            ),
            no_header_support: self.no_header_support,
            disable_sublist_cache: self.disable_sublist_cache,
            no_system_account: self.no_system_account,
            system_account: self.system_account,
            tls: self.tls,
            allow_non_tls: self.allow_non_tls,
            auth_timeout,
            authorization,
            no_auth_user: self.no_auth_user,
            accounts: self.accounts,
            leafnodes: self.leaf.finish(),
            websocket: self.websocket.finish(),
            operator: self.operator,
            mqtt: self.mqtt.finish(),
        }
    }
}
