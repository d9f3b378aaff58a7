//! Which option changes a configuration reload may apply (`diffOptions` of nats-server's
//! `server/reload.go`).
//!
//! The reference walks its `Options` struct in field order and refuses the whole reload at the
//! first changed option it cannot apply, with `config reload not supported for <Field>:
//! old=<v>, new=<v>`. Scalars print as Go's `%v` does; for the websocket and leafnode blocks
//! the reference prints a Go struct dump (including credentials), which natsws replaces with
//! `{…}`.

use gotext::format_std_duration;

use super::validate::ValidationError;
use super::{LeafNodeOptions, Options, WebsocketOptions};

fn refuse(
    field: &str,
    old: impl std::fmt::Display,
    new: impl std::fmt::Display,
) -> ValidationError {
    ValidationError::new(format!(
        "config reload not supported for {field}: old={old}, new={new}"
    ))
}

fn opt(value: Option<&String>) -> &str {
    value.map_or("", String::as_str)
}

/// The websocket block as the reference compares it: without the TLS material (certificates,
/// CA, verification, ciphers), but with `verify_and_map` and `pinned_certs`, and with the
/// allowed origins sorted.
fn websocket_for_compare(
    ws: Option<&WebsocketOptions>,
) -> Option<(WebsocketOptions, bool, Vec<String>)> {
    let mut ws = ws?.clone();
    let (map, pins) = ws
        .tls
        .take()
        .map(|t| (t.verify_and_map, t.pinned_certs))
        .unwrap_or_default();
    ws.allowed_origins.sort();
    Some((ws, map, pins))
}

/// The leafnode block as the reference compares it: TLS stripped everywhere, remotes compared
/// as an unordered set (an empty account meaning `$G`), users by name, password and account.
fn leafnodes_equivalent(old: &LeafNodeOptions, new: &LeafNodeOptions) -> bool {
    let strip = |leaf: &LeafNodeOptions| {
        let mut leaf = leaf.clone();
        leaf.tls = None;
        for remote in &mut leaf.remotes {
            remote.tls = None;
            if remote.account.is_none() {
                remote.account = Some("$G".to_owned());
            }
        }
        leaf
    };
    let mut old = strip(old);
    let mut new = strip(new);
    let remotes_same = old.remotes.len() == new.remotes.len()
        && old.remotes.iter().all(|r| new.remotes.contains(r));
    if remotes_same {
        old.remotes.clear();
        new.remotes.clear();
    }
    let users_same = old.authorization.users.len() == new.authorization.users.len()
        && old
            .authorization
            .users
            .iter()
            .all(|u| new.authorization.users.contains(u));
    if users_same {
        old.authorization.users.clear();
        new.authorization.users.clear();
    }
    old == new
}

impl Options {
    /// Checks whether a running server configured with `self` can reload to `new`.
    ///
    /// # Errors
    /// The reference's `config reload not supported for <Field>: old=…, new=…` for the first
    /// changed option (in nats-server's field order) that cannot be reloaded.
    pub fn check_reload(&self, new: &Self) -> Result<(), ValidationError> {
        let old = self;
        if old.server_name != new.server_name {
            return Err(refuse(
                "ServerName",
                opt(old.server_name.as_ref()),
                opt(new.server_name.as_ref()),
            ));
        }
        if old.listen.host != new.listen.host {
            return Err(refuse("Host", &old.listen.host, &new.listen.host));
        }
        // A random port (0) in the new config is ignored, as in the reference.
        if new.listen.port != 0 && old.listen.port != new.listen.port {
            return Err(refuse("Port", old.listen.port, new.listen.port));
        }
        if old.disable_sublist_cache != new.disable_sublist_cache {
            return Err(refuse(
                "NoSublistCache",
                old.disable_sublist_cache,
                new.disable_sublist_cache,
            ));
        }
        if old.no_header_support != new.no_header_support {
            return Err(refuse(
                "NoHeaderSupport",
                old.no_header_support,
                new.no_header_support,
            ));
        }
        if old.max_subscriptions != new.max_subscriptions {
            return Err(refuse(
                "MaxSubs",
                old.max_subscriptions,
                new.max_subscriptions,
            ));
        }
        if old.max_subscription_tokens != new.max_subscription_tokens {
            return Err(refuse(
                "MaxSubTokens",
                old.max_subscription_tokens.unwrap_or(0),
                new.max_subscription_tokens.unwrap_or(0),
            ));
        }
        if old.no_auth_user != new.no_auth_user {
            // Only removing a no_auth_user whose user is also gone is allowed.
            let removed_with_user = match (&old.no_auth_user, &new.no_auth_user) {
                (Some(name), None) => !new.authorization.users.iter().any(|u| &u.username == name),
                _ => false,
            };
            if !removed_with_user {
                return Err(refuse(
                    "NoAuthUser",
                    opt(old.no_auth_user.as_ref()),
                    opt(new.no_auth_user.as_ref()),
                ));
            }
        }
        if old.no_system_account != new.no_system_account {
            return Err(refuse(
                "NoSystemAccount",
                old.no_system_account,
                new.no_system_account,
            ));
        }
        if old.system_account != new.system_account {
            return Err(refuse(
                "SystemAccount",
                opt(old.system_account.as_ref()),
                opt(new.system_account.as_ref()),
            ));
        }
        let http_host = |o: &Self| {
            o.http
                .as_ref()
                .or(o.https.as_ref())
                .map_or_else(|| o.listen.host.clone(), |h| h.host.clone())
        };
        if http_host(old) != http_host(new) {
            return Err(refuse("HTTPHost", http_host(old), http_host(new)));
        }
        let port = |h: Option<&super::HostPort>| h.map_or(0, |h| h.port);
        if old.http != new.http {
            return Err(refuse(
                "HTTPPort",
                port(old.http.as_ref()),
                port(new.http.as_ref()),
            ));
        }
        if old.http_base_path != new.http_base_path {
            return Err(refuse(
                "HTTPBasePath",
                &old.http_base_path,
                &new.http_base_path,
            ));
        }
        if old.https != new.https {
            return Err(refuse(
                "HTTPSPort",
                port(old.https.as_ref()),
                port(new.https.as_ref()),
            ));
        }
        if old.max_pending != new.max_pending {
            return Err(refuse("MaxPending", old.max_pending, new.max_pending));
        }
        if !leafnodes_equivalent(&old.leafnodes, &new.leafnodes) {
            return Err(refuse("LeafNode", "{…}", "{…}"));
        }
        if websocket_for_compare(old.websocket.as_ref())
            != websocket_for_compare(new.websocket.as_ref())
        {
            return Err(refuse("Websocket", "{…}", "{…}"));
        }
        // nats-server also applies new `ack_wait`, `max_ack_pending` and TLS material; natsws
        // refuses every change to the block.
        if old.mqtt != new.mqtt {
            return Err(refuse("MQTT", "{…}", "{…}"));
        }
        if old.store_dir != new.store_dir {
            // nats-server: "config reload not supported for jetstream storage directory".
            return Err(ValidationError::new(
                "config reload not supported for jetstream storage directory".to_owned(),
            ));
        }
        if old.logging.log_size_limit != new.logging.log_size_limit {
            return Err(refuse(
                "LogSizeLimit",
                old.logging.log_size_limit,
                new.logging.log_size_limit,
            ));
        }
        let tls_map = |o: &Self| o.tls.as_ref().is_some_and(|t| t.verify_and_map);
        if tls_map(old) != tls_map(new) {
            return Err(refuse("TLSMap", tls_map(old), tls_map(new)));
        }
        let rate = |o: &Self| o.tls.as_ref().map_or(0, |t| t.connection_rate_limit);
        if rate(old) != rate(new) {
            return Err(refuse("TLSRateLimit", rate(old), rate(new)));
        }
        if old.allow_non_tls != new.allow_non_tls {
            return Err(refuse("AllowNonTLS", old.allow_non_tls, new.allow_non_tls));
        }
        if old.lame_duck_duration != new.lame_duck_duration {
            return Err(refuse(
                "LameDuckDuration",
                format_std_duration(old.lame_duck_duration),
                format_std_duration(new.lame_duck_duration),
            ));
        }
        if old.lame_duck_grace_period != new.lame_duck_grace_period {
            return Err(refuse(
                "LameDuckGracePeriod",
                format_std_duration(old.lame_duck_grace_period),
                format_std_duration(new.lame_duck_grace_period),
            ));
        }
        // Operator mode: the trust cannot change while running (the reference's default
        // branch of `diffOptions`); the accounts a resolver serves are reloaded.
        let (o, n) = (&old.operator, &new.operator);
        if o.operators != n.operators {
            return Err(refuse(
                "TrustedOperators",
                format_args!("[{}]", o.operators.join(" ")),
                format_args!("[{}]", n.operators.join(" ")),
            ));
        }
        if o.trusted_keys != n.trusted_keys {
            return Err(refuse(
                "TrustedKeys",
                format_args!("[{}]", o.trusted_keys.join(" ")),
                format_args!("[{}]", n.trusted_keys.join(" ")),
            ));
        }
        if o.resolver.is_some() != n.resolver.is_some() {
            return Err(ValidationError::new(
                "config reload does not support moving to or from an account resolver".to_owned(),
            ));
        }
        if o.resolver != n.resolver {
            return Err(refuse("AccountResolver", "{…}", "{…}"));
        }
        Ok(())
    }
}
