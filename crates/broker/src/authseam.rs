//! The one place where sessions call into authentication and authorization.
//!
//! Sessions ask four questions: is auth required/expected for this connection type (INFO
//! `auth_required`, auth timer), does this CONNECT authenticate, who is the `no_auth_user`, and
//! may this connection publish/subscribe/receive a subject. The decisions themselves belong to
//! [`crate::auth`]; this module adapts them to the session's needs so that the session code does
//! not depend on the shape of the auth configuration.
//!
//! Until `crate::auth` provides its decision functions, [`AuthConfig`] here describes a server
//! with no client authentication configured, which is nats-server's default: every CONNECT is
//! accepted, INFO carries no `auth_required`, and no permissions apply.

use std::sync::Arc;
use std::time::Duration;

use crate::ConnectionType;

/// Authentication settings. `Default` is "no authentication configured".
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    _no_auth: (),
}

impl AuthConfig {
    /// INFO `auth_required` for this connection type.
    #[must_use]
    pub fn auth_required(&self, _conn_type: ConnectionType) -> bool {
        false
    }

    /// Whether CONNECT must come first and the auth timer runs.
    #[must_use]
    pub fn auth_expected(&self, _conn_type: ConnectionType) -> bool {
        false
    }

    /// Per-transport auth timeout override.
    #[must_use]
    pub fn auth_timeout(&self, _conn_type: ConnectionType) -> Option<Duration> {
        None
    }

    /// Whether INFO carries a `nonce` (nkey users exist).
    #[must_use]
    pub fn nonce_required(&self) -> bool {
        false
    }
}

/// Credentials from a CONNECT.
#[derive(Debug, Clone, Copy, Default)]
#[allow(
    dead_code,
    reason = "read by crate::auth once it provides the decision functions"
)]
pub(crate) struct Credentials<'a> {
    pub(crate) user: Option<&'a str>,
    pub(crate) pass: Option<&'a str>,
    pub(crate) auth_token: Option<&'a str>,
    pub(crate) nkey: Option<&'a str>,
    pub(crate) sig: Option<&'a str>,
    pub(crate) jwt: Option<&'a str>,
}

/// The outcome of a successful authentication.
#[derive(Debug, Clone, Default)]
pub(crate) struct Authenticated {
    /// Username, nkey or token shown in `/connz?auth=1`.
    pub(crate) authorized_user: Option<String>,
    /// Permissions of the user, if restricted.
    pub(crate) permissions: Option<Arc<Permissions>>,
}

/// Compiled permissions of one user.
#[derive(Debug, Default)]
pub(crate) struct Permissions {
    _unrestricted: (),
}

impl Permissions {
    pub(crate) fn can_publish(&self, _subject: &[u8]) -> bool {
        true
    }

    pub(crate) fn can_subscribe(&self, _subject: &[u8], _queue: Option<&[u8]>) -> bool {
        true
    }

    pub(crate) fn deny_delivery(&self, _subject: &[u8]) -> bool {
        false
    }

    /// `allow_responses`: (max responses, <0 unlimited; expiry).
    pub(crate) fn response_permission(&self) -> Option<(i64, Duration)> {
        None
    }
}

/// Authenticates a CONNECT. The error is the log detail (the wire text is always
/// `Authorization Violation`).
pub(crate) fn authenticate(
    cfg: &AuthConfig,
    conn_type: ConnectionType,
    _creds: &Credentials<'_>,
    _nonce: Option<&str>,
    _cookies: &[(String, String)],
) -> Result<Authenticated, String> {
    if cfg.auth_expected(conn_type) {
        return Err("authentication not available".to_owned());
    }
    Ok(Authenticated::default())
}

/// The `no_auth_user` binding for a connection whose first operation is not CONNECT.
pub(crate) fn no_auth_user(_cfg: &AuthConfig, _conn_type: ConnectionType) -> Option<Authenticated> {
    None
}
