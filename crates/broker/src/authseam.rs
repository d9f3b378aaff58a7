//! The one place where sessions call into [`crate::auth`].
//!
//! Sessions ask four questions: is auth required/expected for this connection type (INFO
//! `auth_required`, auth timer), does this CONNECT authenticate, who is the `no_auth_user`, and
//! may this connection publish/subscribe/receive a subject. The decisions belong to
//! [`crate::auth`]; this module adapts them to the session, and fails closed when the auth
//! configuration is invalid (every CONNECT is refused) so that a broker built with
//! [`crate::Broker::new`] from a bad configuration never lets anybody in.

use std::time::{Duration, Instant};

use crate::ConnectionType;
use crate::auth::{self, AuthRequest, Authorizer};

pub use crate::auth::AuthConfig;

/// Credentials from a CONNECT.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Credentials<'a> {
    pub(crate) user: Option<&'a str>,
    pub(crate) pass: Option<&'a str>,
    pub(crate) auth_token: Option<&'a str>,
    pub(crate) nkey: Option<&'a str>,
    pub(crate) sig: Option<&'a str>,
    pub(crate) jwt: Option<&'a str>,
}

/// The outcome of a successful authentication.
#[derive(Debug, Default)]
pub(crate) struct Authenticated {
    /// Username, nkey or token shown in `/connz?auth=1`.
    pub(crate) authorized_user: Option<String>,
    /// Per-connection permission state, if the user is restricted.
    pub(crate) permissions: Option<Permissions>,
    /// The log identity, for a refusal after authentication (account in CONNECT).
    pub(crate) identity: Option<auth::Authenticated>,
}

impl Authenticated {
    fn from_auth(user: auth::Authenticated) -> Self {
        Self {
            authorized_user: user.authorized_user.clone(),
            permissions: user.client_permissions().map(Permissions),
            identity: Some(user),
        }
    }
}

/// The first step of authenticating a CONNECT.
#[derive(Debug)]
pub(crate) enum AuthStep {
    /// Decided.
    Done(Result<Authenticated, Refused>),
    /// Waiting for a bcrypt comparison; [`finish_hash`] completes it.
    CheckHash(auth::HashCheck),
}

/// Completes an [`AuthStep::CheckHash`] with the comparison's result.
pub(crate) fn finish_hash(
    pending: auth::HashCheck,
    verified: bool,
) -> Result<Authenticated, Refused> {
    convert(pending.finish(verified))
}

/// A refused authentication: the `authentication error ...` log line, and the reason the
/// reference logs before it, when it logs one (operator mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) log: String,
    pub(crate) reason: Option<String>,
}

impl From<String> for Refused {
    fn from(log: String) -> Self {
        Self { log, reason: None }
    }
}

fn convert(result: Result<auth::Authenticated, auth::AuthError>) -> Result<Authenticated, Refused> {
    result.map(Authenticated::from_auth).map_err(|e| Refused {
        log: e.to_string(),
        reason: e.logged_reason().map(str::to_owned),
    })
}

/// One connection's permission state (caches and the allow_responses reply table).
#[derive(Debug)]
pub(crate) struct Permissions(auth::ClientPermissions);

impl Permissions {
    pub(crate) fn can_publish(&mut self, subject: &[u8], now: Instant) -> bool {
        self.0.check_publish(subject, now)
    }

    pub(crate) fn can_subscribe(&mut self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        self.0.check_subscribe(subject, queue)
    }

    pub(crate) fn deny_delivery(&mut self, subject: &[u8]) -> bool {
        self.0.deny_delivery(subject)
    }

    pub(crate) fn record_reply(&mut self, reply: &[u8], now: Instant) {
        self.0.record_reply(reply, now);
    }
}

/// The compiled auth configuration, or the reason it is invalid (then everything is refused).
#[derive(Debug)]
pub(crate) struct AuthState(Result<Authorizer, auth::AuthConfigError>);

impl AuthState {
    pub(crate) fn new(config: &AuthConfig) -> Self {
        Self(Authorizer::new(config))
    }

    /// The auth state of a broker configuration: operator mode without
    /// [`crate::Config::wall_clock`] fails closed (JWT times could not be checked).
    pub(crate) fn for_config(config: &crate::Config) -> Self {
        if config.auth.operator.is_some() && config.wall_clock.is_none() {
            return Self(Err(auth::AuthConfigError::new(
                "operator mode needs the wall clock (Config::wall_clock)".to_owned(),
            )));
        }
        Self::new(&config.auth)
    }

    /// The settings in force, when they are valid.
    pub(crate) fn config(&self) -> Option<&AuthConfig> {
        self.0.as_ref().ok().map(Authorizer::config)
    }

    pub(crate) fn error(&self) -> Option<&auth::AuthConfigError> {
        self.0.as_ref().err()
    }

    pub(crate) fn auth_required(&self, conn_type: ConnectionType) -> bool {
        self.0.as_ref().map_or(true, |a| a.auth_required(conn_type))
    }

    pub(crate) fn auth_expected(&self, conn_type: ConnectionType) -> bool {
        self.0.as_ref().map_or(true, |a| a.auth_expected(conn_type))
    }

    pub(crate) fn auth_timeout(&self, conn_type: ConnectionType) -> Option<Duration> {
        self.0.as_ref().ok().and_then(|a| a.auth_timeout(conn_type))
    }

    pub(crate) fn nonce_required(&self) -> bool {
        self.0.as_ref().is_ok_and(Authorizer::nonce_required)
    }

    /// Authenticates a CONNECT, leaving a bcrypt comparison to the caller. The error is the
    /// log line (the wire text is always `Authorization Violation`).
    pub(crate) fn authenticate(
        &self,
        conn_type: ConnectionType,
        creds: &Credentials<'_>,
        nonce: Option<&str>,
        cookies: &[(String, String)],
        remote: core::net::IpAddr,
        now_unix: i64,
    ) -> AuthStep {
        let authorizer = match &self.0 {
            Ok(a) => a,
            Err(e) => {
                return AuthStep::Done(Err(format!(
                    "authentication error - invalid auth configuration: {e}"
                )
                .into()));
            }
        };
        let mut req = AuthRequest::new(conn_type);
        req.user = creds.user;
        req.pass = creds.pass;
        req.auth_token = creds.auth_token;
        req.nkey = creds.nkey;
        req.sig = creds.sig;
        req.jwt = creds.jwt;
        req.nonce = nonce;
        req.cookies = cookies;
        req.remote = Some(remote);
        req.now_unix = now_unix;
        match authorizer.authenticate_deferred(&req) {
            auth::AuthOutcome::Decided(result) => AuthStep::Done(convert(result)),
            auth::AuthOutcome::CheckHash(pending) => AuthStep::CheckHash(pending),
        }
    }

    /// The log line for refusing an authenticated client (account in CONNECT).
    pub(crate) fn violation_after_auth(&self, who: Option<&auth::Authenticated>) -> Option<String> {
        let authorizer = self.0.as_ref().ok()?;
        who.map(|w| authorizer.violation_after_auth(w).to_string())
    }

    /// The operator-mode trust, when configured and valid.
    pub(crate) fn trust(&self) -> Option<&auth::operator::Trust> {
        self.0.as_ref().ok().and_then(Authorizer::trust)
    }

    /// The operator-mode trust and the settings it was built from, to change one account.
    pub(crate) fn trust_mut(&mut self) -> Option<(&mut auth::operator::Trust, &mut AuthConfig)> {
        self.0.as_mut().ok().and_then(Authorizer::trust_mut)
    }

    /// The `no_auth_user` binding for a connection whose first operation is not CONNECT.
    pub(crate) fn no_auth_user(&self, conn_type: ConnectionType) -> Option<Authenticated> {
        self.0
            .as_ref()
            .ok()?
            .no_auth_user(conn_type)
            .map(Authenticated::from_auth)
    }
}
