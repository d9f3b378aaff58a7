//! The `leafnodes` / `leaf` block (`server/opts.go` `parseLeafNodes`, `parseRemoteLeafNodes`).

use std::time::Duration;

use gotext::quote;

use crate::value::Value;

use super::auth::{auth_timeout, go_value, parse_perm_subjects};
use super::diag::{Ctx, Panic, V};
use super::fields::{auth_timeout_of, listener, parse_listen_into, parse_port_into};
use super::tls::{TlsOptions, parse_tls};
use super::{DEFAULT_LEAF_RECONNECT, DEFAULT_LEAFNODE_PORT, HostPort, url};

/// The accepting side's `authorization` block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeafAuthorization {
    /// `user` / `username`.
    pub user: Option<String>,
    /// `pass` / `password`.
    pub password: Option<String>,
    /// `timeout`.
    pub timeout: Option<Duration>,
    /// `account` bound to the single user.
    pub account: Option<String>,
    /// `users`.
    pub users: Vec<LeafUser>,
}

/// One user of a leafnode `authorization { users [...] }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeafUser {
    /// `user` / `username`.
    pub username: String,
    /// `pass` / `password`.
    pub password: String,
    /// `account`.
    pub account: Option<String>,
}

/// One URL of a remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafUrl {
    /// The URL as written (trimmed); may hold credentials, so do not log it.
    pub raw: String,
    /// Lower-cased scheme (`nats`, `tls`, `nats-leaf`, `ws`, `wss`, ...).
    pub scheme: String,
    /// Decoded user name.
    pub username: Option<String>,
    /// Decoded password.
    pub password: Option<String>,
    /// Host (IPv6 without brackets).
    pub host: String,
    /// Port; 7422 when the URL has none (also for `ws://` and `wss://`, as the reference).
    pub port: u16,
}

impl LeafUrl {
    /// `ws://` or `wss://`.
    #[must_use]
    pub fn is_websocket(&self) -> bool {
        self.scheme == "ws" || self.scheme == "wss"
    }
}

/// One entry of `remotes`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteLeaf {
    /// `url` / `urls`, without duplicates.
    pub urls: Vec<LeafUrl>,
    /// `account` / `local`: the local account to bind (`None` = `$G`).
    pub account: Option<String>,
    /// `credentials` / `creds`, as written (`~` is not expanded here).
    pub credentials: Option<String>,
    /// `tls`.
    pub tls: Option<TlsOptions>,
    /// `hub`.
    pub hub: bool,
    /// `deny_imports` / `deny_import`.
    pub deny_imports: Vec<String>,
    /// `deny_exports` / `deny_export`.
    pub deny_exports: Vec<String>,
    /// `ws_compression` and aliases.
    pub ws_compression: bool,
    /// `ws_no_masking` / `websocket_no_masking`.
    pub ws_no_masking: bool,
    /// `no_randomize` / `dont_randomize`.
    pub no_randomize: bool,
}

/// The `leafnodes` block.
#[derive(Debug, Clone, PartialEq)]
pub struct LeafNodeOptions {
    /// Accepting side: `listen` / `host` / `port`; `None` when the port is 0.
    pub listen: Option<HostPort>,
    /// `authorization`.
    pub authorization: LeafAuthorization,
    /// `advertise` / `leafnode_advertise`.
    pub advertise: Option<String>,
    /// `no_advertise`.
    pub no_advertise: bool,
    /// `min_version` / `minimum_version`.
    pub min_version: Option<String>,
    /// `tls` of the accepting side.
    pub tls: Option<TlsOptions>,
    /// `reconnect` / `reconnect_delay` / `reconnect_interval` (default 1 s).
    pub reconnect_interval: Duration,
    /// `remotes`.
    pub remotes: Vec<RemoteLeaf>,
}

impl LeafNodeOptions {
    /// The accepting side's effective auth timeout: `authorization { timeout }`, or the TLS
    /// timeout plus one second with a `tls` block, or 2 s (`getDefaultAuthTimeout`).
    #[must_use]
    pub fn auth_timeout(&self) -> Duration {
        match (self.authorization.timeout, &self.tls) {
            (Some(timeout), _) => timeout,
            (None, Some(tls)) => tls.timeout.saturating_add(Duration::from_secs(1)),
            (None, None) => super::DEFAULT_AUTH_TIMEOUT,
        }
    }
}

impl Default for LeafNodeOptions {
    fn default() -> Self {
        RawLeaf::default().finish()
    }
}

#[derive(Debug, Default)]
pub(crate) struct RawLeaf {
    host: String,
    port: i64,
    authorization: LeafAuthorization,
    advertise: Option<String>,
    no_advertise: bool,
    min_version: Option<String>,
    tls: Option<TlsOptions>,
    reconnect_seconds: i64,
    remotes: Vec<RemoteLeaf>,
}

impl RawLeaf {
    pub(crate) fn finish(self) -> LeafNodeOptions {
        LeafNodeOptions {
            listen: (self.port != 0).then(|| listener(self.host, self.port)),
            authorization: self.authorization,
            advertise: self.advertise,
            no_advertise: self.no_advertise,
            min_version: self.min_version,
            tls: self.tls,
            reconnect_interval: if self.reconnect_seconds == 0 {
                DEFAULT_LEAF_RECONNECT
            } else {
                Duration::from_secs(u64::try_from(self.reconnect_seconds).unwrap_or(0))
            },
            remotes: self.remotes,
        }
    }
}

/// `parseLeafNodes`.
pub(crate) fn parse_leafnodes(leaf: &mut RawLeaf, ctx: &mut Ctx, v: &V<'_>) {
    let Value::Map(_) = v.value() else {
        ctx.error(
            v,
            format!("Expected map to define a leafnode, got {}", v.go_type()),
        );
        return;
    };
    let res = parse_entries(leaf, ctx, v);
    ctx.recover(res);
}

/// `versionComponents`: the regular expression `\Av?([0-9]+)\.?([0-9]+)?\.?([0-9]+)?` and
/// three `strconv.Atoi` calls.
fn version_components(version: &str) -> Result<[i64; 3], String> {
    let mut rest = version.strip_prefix('v').unwrap_or(version);
    let take_digits = |rest: &mut &str| -> String {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        *rest = rest.get(digits.len()..).unwrap_or_default();
        digits
    };
    let major = take_digits(&mut rest);
    if major.is_empty() {
        return Err("invalid semver".to_owned());
    }
    rest = rest.strip_prefix('.').unwrap_or(rest);
    let minor = take_digits(&mut rest);
    rest = rest.strip_prefix('.').unwrap_or(rest);
    let patch = take_digits(&mut rest);
    let mut out = [0i64; 3];
    for (slot, text) in out.iter_mut().zip([&major, &minor, &patch]) {
        *slot = text.parse::<i64>().map_err(|_| {
            if text.is_empty() {
                "strconv.Atoi: parsing \"\": invalid syntax".to_owned()
            } else {
                format!("strconv.Atoi: parsing {}: value out of range", quote(text))
            }
        })?;
    }
    Ok(out)
}

/// `checkLeafMinVersionConfig`.
fn check_min_version(version: &str) -> Result<(), String> {
    let numbers = version_components(version)
        .map_err(|err| format!("invalid leafnode's minimum version: {err}"))?;
    if numbers.as_slice() >= [2, 8, 0].as_slice() {
        Ok(())
    } else {
        Err("the minimum version should be at least 2.8.0".to_owned())
    }
}

fn parse_entries(leaf: &mut RawLeaf, ctx: &mut Ctx, v: &V<'_>) -> Result<(), Panic> {
    for entry in v.map()? {
        let mv = &entry.value;
        match entry.lower.as_str() {
            "listen" => parse_listen_into(ctx, mv, &mut leaf.host, &mut leaf.port),
            "port" => parse_port_into(ctx, mv, &mut leaf.port)?,
            "host" | "net" => leaf.host = mv.string()?,
            "authorization" => {
                let auth = parse_leaf_authorization(ctx, mv);
                leaf.authorization = auth;
                if let Err(message) = check_leaf_auth(&leaf.authorization) {
                    ctx.error(mv, message);
                }
            }
            "remotes" => {
                if let Some(remotes) = parse_remotes(ctx, mv) {
                    leaf.remotes = remotes;
                }
            }
            "reconnect" | "reconnect_delay" | "reconnect_interval" => {
                let seconds = mv.int()?;
                if seconds < 0 {
                    ctx.error(mv, format!("invalid {} {seconds}", entry.key));
                } else {
                    leaf.reconnect_seconds = seconds;
                }
            }
            "tls" => {
                if let Some(tls) = parse_tls(ctx, mv, true) {
                    leaf.tls = Some(tls);
                }
            }
            "leafnode_advertise" | "advertise" => leaf.advertise = super::non_empty(mv.string()?),
            "no_advertise" => leaf.no_advertise = mv.bool()?,
            "min_version" | "minimum_version" => {
                let version = mv.string()?;
                match check_min_version(&version) {
                    Ok(()) => leaf.min_version = super::non_empty(version),
                    Err(message) => ctx.error(mv, message),
                }
            }
            _ => ctx.unknown(&entry),
        }
    }
    Ok(())
}

/// `validateLeafNodeAuthOptions`.
fn check_leaf_auth(auth: &LeafAuthorization) -> Result<(), String> {
    if auth.users.is_empty() {
        return Ok(());
    }
    if auth.user.is_some() {
        return Err("can not have a single user/pass and a users array".to_owned());
    }
    let mut seen: Vec<&str> = Vec::new();
    for user in &auth.users {
        if seen.contains(&user.username.as_str()) {
            return Err(format!(
                "duplicate user {} detected in leafnode authorization",
                quote(&user.username)
            ));
        }
        seen.push(&user.username);
    }
    Ok(())
}

/// `parseLeafAuthorization`.
fn parse_leaf_authorization(ctx: &mut Ctx, v: &V<'_>) -> LeafAuthorization {
    let mut auth = LeafAuthorization::default();
    let res = (|| -> Result<(), Panic> {
        for entry in v.map()? {
            let mv = &entry.value;
            match entry.lower.as_str() {
                "user" | "username" => auth.user = super::non_empty(mv.string()?),
                "pass" | "password" => auth.password = super::non_empty(mv.string()?),
                "timeout" => auth.timeout = auth_timeout_of(auth_timeout(mv)),
                "users" => {
                    if let Some(users) = parse_leaf_users(ctx, mv) {
                        auth.users = users;
                    }
                }
                "account" => auth.account = super::non_empty(mv.string()?),
                _ => ctx.unknown(&entry),
            }
        }
        Ok(())
    })();
    ctx.recover(res);
    auth
}

/// `parseLeafUsers`.
fn parse_leaf_users(ctx: &mut Ctx, v: &V<'_>) -> Option<Vec<LeafUser>> {
    let res = (|| -> Result<Option<Vec<LeafUser>>, Panic> {
        let Value::Array(_) = v.value() else {
            ctx.error(
                v,
                format!(
                    "Expected users field to be an array, got {}",
                    go_value(v.value())
                ),
            );
            return Ok(None);
        };
        let mut users = Vec::new();
        for item in v.array()? {
            let Value::Map(map) = item.value() else {
                ctx.error(
                    &item,
                    format!(
                        "Expected user entry to be a map/struct, got {}",
                        go_value(item.value())
                    ),
                );
                continue;
            };
            let mut user = LeafUser::default();
            for entry in item.entries(map) {
                let mv = &entry.value;
                match entry.lower.as_str() {
                    "user" | "username" => user.username = mv.string()?,
                    "pass" | "password" => user.password = mv.string()?,
                    "account" => user.account = Some(mv.string()?),
                    _ => ctx.unknown(&entry),
                }
            }
            users.push(user);
        }
        Ok(Some(users))
    })();
    ctx.recover(res).flatten()
}

fn leaf_url(text: &str) -> Result<LeafUrl, String> {
    let trimmed = text.trim();
    let parsed = url::parse(trimmed)
        .map_err(|_| format!("error parsing leafnode url [{}]", quote(trimmed)))?;
    if !parsed.has_authority || parsed.host.is_empty() {
        // The reference accepts these and fails when dialing; natsws refuses them here.
        return Err(format!("error parsing leafnode url [{}]", quote(trimmed)));
    }
    let port = match parsed.port.as_deref() {
        None | Some("") => DEFAULT_LEAFNODE_PORT,
        Some(port) => port
            .parse::<u16>()
            .map_err(|_| format!("error parsing leafnode url [{}]", quote(trimmed)))?,
    };
    Ok(LeafUrl {
        raw: trimmed.to_owned(),
        scheme: parsed.scheme,
        username: parsed.username,
        password: parsed.password,
        host: parsed.host,
        port,
    })
}

/// `parseRemoteLeafNodes`.
fn parse_remotes(ctx: &mut Ctx, v: &V<'_>) -> Option<Vec<RemoteLeaf>> {
    let res = (|| -> Result<Option<Vec<RemoteLeaf>>, Panic> {
        let Value::Array(_) = v.value() else {
            ctx.error(
                v,
                format!("Expected remotes field to be an array, got {}", v.go_type()),
            );
            return Ok(None);
        };
        let mut remotes = Vec::new();
        for item in v.array()? {
            let Value::Map(map) = item.value() else {
                ctx.error(
                    &item,
                    format!(
                        "Expected remote leafnode entry to be a map/struct, got {}",
                        go_value(item.value())
                    ),
                );
                continue;
            };
            let mut remote = RemoteLeaf::default();
            for entry in item.entries(map) {
                let mv = &entry.value;
                match entry.lower.as_str() {
                    "no_randomize" | "dont_randomize" => remote.no_randomize = mv.bool()?,
                    "url" | "urls" => match mv.value() {
                        Value::Array(_) => {
                            if let Some(urls) = parse_urls(ctx, mv) {
                                remote.urls = urls;
                            }
                        }
                        Value::Str(_) => match leaf_url(&mv.string()?) {
                            Ok(url) => remote.urls.push(url),
                            Err(message) => ctx.error(mv, message),
                        },
                        other => ctx.error(
                            mv,
                            format!(
                                "Expected remote leafnode url to be an array or string, got {}",
                                go_value(other)
                            ),
                        ),
                    },
                    "account" | "local" => remote.account = super::non_empty(mv.string()?),
                    "creds" | "credentials" => remote.credentials = super::non_empty(mv.string()?),
                    "tls" => {
                        if let Some(tls) = parse_tls(ctx, mv, true) {
                            remote.tls = Some(tls);
                        }
                    }
                    "hub" => remote.hub = mv.bool()?,
                    "deny_imports" | "deny_import" => {
                        if let Some(subjects) = parse_perm_subjects(ctx, mv) {
                            remote.deny_imports = subjects;
                        }
                    }
                    "deny_exports" | "deny_export" => {
                        if let Some(subjects) = parse_perm_subjects(ctx, mv) {
                            remote.deny_exports = subjects;
                        }
                    }
                    "ws_compress"
                    | "ws_compression"
                    | "websocket_compress"
                    | "websocket_compression" => remote.ws_compression = mv.bool()?,
                    "ws_no_masking" | "websocket_no_masking" => remote.ws_no_masking = mv.bool()?,
                    "jetstream_cluster_migrate" | "js_cluster_migrate" => {
                        ctx.unsupported(&entry);
                    }
                    _ => ctx.unknown(&entry),
                }
            }
            remotes.push(remote);
        }
        Ok(Some(remotes))
    })();
    ctx.recover(res).flatten()
}

/// `parseURLs`: duplicates are a warning, bad URLs errors. `None` if a panic aborted it.
fn parse_urls(ctx: &mut Ctx, v: &V<'_>) -> Option<Vec<LeafUrl>> {
    let res = (|| -> Result<Option<Vec<LeafUrl>>, Panic> {
        let mut seen: Vec<String> = Vec::new();
        let mut urls = Vec::new();
        let mut failed = false;
        for item in v.array()? {
            let text = item.string()?;
            if seen.contains(&text) {
                ctx.warning(&item, &text, "Duplicate leafnode entry detected");
                continue;
            }
            seen.push(text.clone());
            match leaf_url(&text) {
                Ok(url) => urls.push(url),
                Err(message) => {
                    ctx.error(&item, message);
                    failed = true;
                }
            }
        }
        Ok((!failed).then_some(urls))
    })();
    ctx.recover(res).flatten()
}
