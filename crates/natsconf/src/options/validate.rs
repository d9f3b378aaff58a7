//! Start-up validation (`validateOptions`): the checks nats-server makes when the server is
//! created, after the config was read, in the reference's order. `nats-server -t` does not run
//! them, and neither does [`super::Options::from_map`].

use std::fmt;

use gotext::{format_std_duration, quote};

use super::gostd::quote_list;
use super::websocket::check_headers;
use super::{LeafUrl, Options};

/// A start-up validation failure; `Display` is the reference's text (printed after
/// `nats-server: `).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    message: String,
}

impl ValidationError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ValidationError {}

/// `url.URL.Redacted()` of a remote URL after the default port was applied.
fn redacted(url: &LeafUrl) -> String {
    let userinfo = match (&url.username, &url.password) {
        (Some(user), Some(_)) => format!("{user}:xxxxx@"),
        (Some(user), None) => format!("{user}@"),
        _ => String::new(),
    };
    let host = if url.host.contains(':') {
        format!("[{}]", url.host)
    } else {
        url.host.clone()
    };
    format!("{}://{userinfo}{host}:{}", url.scheme, url.port)
}

/// `validateNoAuthUser`.
fn check_no_auth_user(options: &Options, name: &str) -> Result<(), ValidationError> {
    let users = &options.authorization.users;
    if users.is_empty() {
        return Err(ValidationError::new(format!(
            "no_auth_user: {} present, but users are not defined",
            quote(name)
        )));
    }
    if users.iter().any(|u| u.username == name) {
        return Ok(());
    }
    Err(ValidationError::new(format!(
        "no_auth_user: {} not present as user in authorization block or account configuration",
        quote(name)
    )))
}

impl Options {
    /// Runs the reference's start-up checks that apply to natsws, in its order: lame duck
    /// periods, `max_payload` against `max_pending`, leafnode accounts and URL kinds,
    /// `no_auth_user`, then the websocket block (`server/websocket.go`
    /// `validateWebsocketOptions`).
    ///
    /// # Errors
    /// The first failing check, with the reference's text.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.lame_duck_grace_period >= self.lame_duck_duration {
            return Err(ValidationError::new(format!(
                "lame duck grace period ({}) should be strictly lower than lame duck duration ({})",
                format_std_duration(self.lame_duck_grace_period),
                format_std_duration(self.lame_duck_duration)
            )));
        }
        if i64::from(self.max_payload) > self.max_pending {
            return Err(ValidationError::new(format!(
                "max_payload ({}) cannot be higher than max_pending ({})",
                self.max_payload, self.max_pending
            )));
        }
        self.validate_leafnodes()?;
        self.validate_operator()?;
        if let Some(name) = &self.no_auth_user {
            check_no_auth_user(self, name)?;
        }
        self.validate_websocket()?;
        self.validate_mqtt()
    }

    /// `server/mqtt.go` `validateMQTTOptions`, without its JetStream requirement (natsws keeps
    /// MQTT state itself).
    fn validate_mqtt(&self) -> Result<(), ValidationError> {
        let Some(mqtt) = &self.mqtt else {
            return Ok(());
        };
        if self.server_name.is_none() {
            return Err(ValidationError::new(
                "mqtt requires server name to be explicitly set",
            ));
        }
        if let Some(name) = &mqtt.no_auth_user {
            check_no_auth_user(self, name)?;
        }
        if !self.authorization.users.is_empty() || !self.authorization.nkeys.is_empty() {
            if mqtt.authorization.user.is_some() {
                return Err(ValidationError::new(
                    "mqtt authentication username not compatible with presence of users/nkeys",
                ));
            }
            if mqtt.authorization.token.is_some() {
                return Err(ValidationError::new(
                    "mqtt authentication token not compatible with presence of users/nkeys",
                ));
            }
        }
        if mqtt.ack_wait.is_zero() {
            return Err(ValidationError::new("ack wait must be a positive value"));
        }
        Ok(())
    }

    /// The checks of `validateTrustedOperators` that need no JWT decoding, and the operator
    /// part of `validateNoAuthUser`.
    fn validate_operator(&self) -> Result<(), ValidationError> {
        let op = &self.operator;
        if op.enabled() && self.no_auth_user.is_some() {
            return Err(ValidationError::new(
                "no_auth_user not compatible with Trusted Operator".to_owned(),
            ));
        }
        if op.operators.is_empty() {
            return Ok(());
        }
        let err = |text: &str| Err(ValidationError::new(text.to_owned()));
        if op.resolver.is_none() {
            return err("operators require an account resolver to be configured");
        }
        if !self.accounts.is_empty() {
            return err("operators do not allow Accounts to be configured directly");
        }
        let a = &self.authorization;
        if !a.users.is_empty() || !a.nkeys.is_empty() {
            return err("operators do not allow users to be configured directly");
        }
        if !op.trusted_keys.is_empty() {
            return err("conflicting options for 'TrustedKeys' and 'TrustedOperators'");
        }
        Ok(())
    }

    fn validate_leafnodes(&self) -> Result<(), ValidationError> {
        let exists = |name: &str| {
            name.is_empty()
                || name == "$G"
                || (name == "$SYS" && !self.no_system_account)
                || self.accounts.iter().any(|a| a.name == name)
        };
        let leaf = &self.leafnodes;
        let missing = |name: &str, what: &str| {
            ValidationError::new(format!(
                "cannot find local account {} specified in leafnode {what}",
                quote(name)
            ))
        };
        if let Some(account) = &leaf.authorization.account
            && !exists(account)
        {
            return Err(missing(account, "authorization"));
        }
        for user in &leaf.authorization.users {
            if let Some(account) = &user.account
                && !exists(account)
            {
                return Err(missing(account, "authorization"));
            }
        }
        for remote in &leaf.remotes {
            let account = remote.account.as_deref().unwrap_or_default();
            if !exists(account) {
                return Err(missing(account, "remote"));
            }
        }
        for remote in &leaf.remotes {
            if let Some((first, rest)) = remote.urls.split_first()
                && rest
                    .iter()
                    .any(|u| u.is_websocket() != first.is_websocket())
            {
                let list: Vec<String> = remote.urls.iter().map(redacted).collect();
                return Err(ValidationError::new(format!(
                    "remote leaf node configuration cannot have a mix of websocket and non-websocket urls: {}",
                    quote_list(&list)
                )));
            }
        }
        Ok(())
    }

    fn validate_websocket(&self) -> Result<(), ValidationError> {
        let Some(ws) = &self.websocket else {
            return Ok(());
        };
        if ws.tls.is_none() && !ws.no_tls {
            return Err(ValidationError::new("websocket requires TLS configuration"));
        }
        ws.parsed_origins().map_err(ValidationError::new)?;
        if let Some(name) = &ws.no_auth_user {
            check_no_auth_user(self, name)?;
        }
        if !self.authorization.users.is_empty() || !self.authorization.nkeys.is_empty() {
            if ws.authorization.user.is_some() {
                return Err(ValidationError::new(
                    "websocket authentication username not compatible with presence of users/nkeys",
                ));
            }
            if ws.authorization.token.is_some() {
                return Err(ValidationError::new(
                    "websocket authentication token not compatible with presence of users/nkeys",
                ));
            }
        }
        if let Some(cookie) = ws.jwt_cookie.as_ref().filter(|_| !self.operator.enabled()) {
            return Err(ValidationError::new(format!(
                "trusted operators or trusted keys configuration is required for JWT authentication via cookie {}",
                quote(cookie)
            )));
        }
        check_headers(&ws.headers).map_err(ValidationError::new)
    }
}
