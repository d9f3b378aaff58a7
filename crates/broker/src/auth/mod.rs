//! Authentication and authorization decisions (nats-server's `server/auth.go`
//! `processClientOrLeafAuthentication` and the permission checks of `server/client.go`).
//!
//! This module decides; it does no I/O, reads no clock and draws no random numbers. The session
//! code asks it:
//! - what INFO says and whether CONNECT must come first ([`Authorizer::auth_required`],
//!   [`Authorizer::auth_expected`], [`Authorizer::auth_timeout`], [`Authorizer::nonce_required`];
//!   the nonce itself is [`encode_nonce`] of 11 random bytes the caller supplies),
//! - whether a CONNECT authenticates ([`Authorizer::authenticate`]) or, when the first operation
//!   is not CONNECT, who the `no_auth_user` is ([`Authorizer::no_auth_user`]),
//! - whether a connection may publish, subscribe or receive a subject ([`ClientPermissions`],
//!   built from the user's shared, compiled [`Permissions`]), and the `-ERR` texts when not.
//!
//! [`AuthConfig`] is plain data filled by the binary; [`Authorizer::new`] validates it with the
//! reference's start-up error texts and compiles every user's permissions once.
//!
//! The behaviour follows nats-server 2.9.10 (`server/auth.go` `processClientOrLeafAuthentication`,
//! `server/client.go` `canSubscribe`/`pubAllowedFullCheck`, `server/sublist.go`). Quirks kept on
//! purpose, because clients and operators can observe them:
//! - `allow: "foo.*"` accepts `SUB foo.>` (the SUB subject is matched as literal tokens);
//! - a wildcard SUB broader than a deny entry is accepted, and from then on messages matching a
//!   deny entry are not delivered to that connection;
//! - queue entries in a deny list decide alone for a queue SUB (`deny: ["foo", "foo q1"]` lets
//!   `SUB foo q2` through);
//! - the INFO of TCP clients omits `auth_required` when `no_auth_user` is set, WebSocket INFO
//!   keeps it;
//! - a `no_auth_user` whose password is a bcrypt hash cannot authenticate through `CONNECT {}`
//!   (the reference compares the hash with itself with bcrypt, which fails); it still binds when
//!   the first operation is not CONNECT. Observed with 2.9.10.
//! - on authentication failure the log names `Nkey "<client nkey>"` whenever nkey users exist,
//!   even for a client that tried a user name.
//!
//! Deliberate differences from nats-server 2.9.10, with their reasons:
//! - **Connection types on the `no_auth_user` first-operation path.** The reference binds a
//!   client whose first operation is not CONNECT to the global `no_auth_user` without checking
//!   that user's `allowed_connection_types`; [`Authorizer::no_auth_user`] checks them, so a
//!   client cannot bypass a restriction the CONNECT path enforces by skipping CONNECT.
//! - **Bounded reply table.** The reference prunes the `allow_responses` table above 4096 entries
//!   but lets live entries grow without bound; the table here never exceeds
//!   [`MAX_REPLY_ENTRIES`] (the oldest live half is dropped when it fills up), so hostile traffic
//!   cannot grow memory without limit. Pruning itself is amortised (the reference re-scans the
//!   whole table on every delivery above 4096 entries); it only drops entries the publish check
//!   would refuse anyway, so its timing changes no decision.
//! - **Caches** (publish results, delivery deny results) are cleared when full instead of losing
//!   32 random entries; results are the same.
//! - **Cookies.** `username_cookie`, `password_cookie` and `token_cookie` come from
//!   nats-server 2.11 (they fill empty CONNECT fields of WebSocket clients); they do nothing
//!   unless configured. JWTs (CONNECT `jwt`, `jwt_cookie`) are used in operator mode
//!   ([`operator`], when [`AuthConfig::operator`] is set; see its docs for its own
//!   differences) and discarded otherwise, as the reference does; a `jwt_cookie` without
//!   operator mode fails validation with the reference's text.
//! - **Not modelled:** TLS certificate user mapping, custom authenticators, the leafnode `authorization` block and the
//!   leafnode-only reverse match of subscribe permissions. Leafnode connection types are
//!   accepted the way `processClientOrLeafAuthentication` accepts them when the leafnode block
//!   has no authorization of its own.
//! - **Malformed subscribe entries** (empty, or more than `subject queue`) are skipped; the
//!   reference logs and skips them (and crashes on an empty one).
//! - Go's `%q` decides printability of non-ASCII characters with Unicode tables; [`go_quote`]
//!   approximates them (exact for ASCII and invalid UTF-8).
//!
//! ```
//! use broker::auth::{AuthConfig, AuthRequest, Authorizer, User};
//! use broker::ConnectionType;
//!
//! let config = AuthConfig {
//!     users: vec![User { username: "alice".into(), password: "s3cr3t".into(), ..User::default() }],
//!     ..AuthConfig::default()
//! };
//! let auth = Authorizer::new(&config).unwrap();
//! assert!(auth.auth_required(ConnectionType::Standard));
//! let req = AuthRequest {
//!     user: Some("alice"),
//!     pass: Some("s3cr3t"),
//!     ..AuthRequest::new(ConnectionType::Standard)
//! };
//! let who = auth.authenticate(&req).unwrap();
//! assert_eq!(who.authorized_user.as_deref(), Some("alice"));
//! let bad = AuthRequest { pass: Some("nope"), ..req };
//! assert_eq!(auth.authenticate(&bad).unwrap_err().to_string(),
//!            "authentication error - User \"alice\"");
//! ```

pub mod claims;
mod config;
pub mod jwt;
mod nkey;
pub mod operator;
mod password;
mod permissions;
mod sublist;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::ConnectionType;

pub use config::{
    AuthConfig, AuthConfigError, NkeyUser, PermissionsConfig, ResponsePermission,
    SubjectPermission, User, WebsocketAuth, parse_connection_type, parse_connection_types,
};
/// Go's `%q` quoting (`strconv.Quote`), as the reference uses it in error and log texts.
pub use gotext::quote as go_quote;
pub use nkey::{
    NONCE_LEN, NONCE_RANDOM_BYTES, SignatureError, encode_nonce, verify_nonce_signature,
};
pub use password::{AuthOutcome, HashCheck, PasswordCheck, compare_passwords, is_bcrypt};
pub use permissions::{
    ClientPermissions, DEFAULT_ALLOW_RESPONSE_EXPIRATION, DEFAULT_ALLOW_RESPONSE_MAX_MSGS,
    MAX_DENY_CACHE_ENTRIES, MAX_PUBLISH_CACHE_ENTRIES, MAX_REPLY_ENTRIES, Permissions,
    REPLY_PERM_LIMIT, ResponseLimits, SYS_QUEUE_GROUP, Timestamp, is_reserved_queue,
    publish_violation, publish_violation_log, reload_subscription_violation, reply_violation,
    subscription_violation, subscription_violation_log, too_many_tokens_violation,
};

use config::is_set;

/// The wire text of every authentication failure (`-ERR 'Authorization Violation'`).
pub const AUTHORIZATION_VIOLATION: &str = "Authorization Violation";

/// The wire text when no CONNECT arrived within the auth timeout.
pub const AUTHENTICATION_TIMEOUT: &str = "Authentication Timeout";

/// The reference's default auth timeout without TLS (`AUTH_TIMEOUT`).
pub const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_secs(2);

/// Credentials and facts of one CONNECT, borrowed from the parsed CONNECT JSON.
#[derive(Debug, Clone, Copy)]
pub struct AuthRequest<'a> {
    /// How the connection arrived.
    pub conn_type: ConnectionType,
    /// CONNECT `user`.
    pub user: Option<&'a str>,
    /// CONNECT `pass`.
    pub pass: Option<&'a str>,
    /// CONNECT `auth_token`.
    pub auth_token: Option<&'a str>,
    /// CONNECT `nkey` (public user key).
    pub nkey: Option<&'a str>,
    /// CONNECT `sig` (signature of the nonce).
    pub sig: Option<&'a str>,
    /// CONNECT `jwt` (used in operator mode, discarded otherwise, as the reference does).
    pub jwt: Option<&'a str>,
    /// The nonce this connection's INFO carried, if any.
    pub nonce: Option<&'a str>,
    /// Cookies of the WebSocket upgrade request, in header order (name, value). Ignored for
    /// other connection types.
    pub cookies: &'a [(String, String)],
    /// The peer's address (operator mode: a user JWT's `src`).
    pub remote: Option<core::net::IpAddr>,
    /// Wall-clock time in Unix seconds (operator mode: JWT expiry and `times`).
    pub now_unix: i64,
}

impl<'a> AuthRequest<'a> {
    /// A request with no credentials.
    #[must_use]
    pub fn new(conn_type: ConnectionType) -> Self {
        Self {
            conn_type,
            user: None,
            pass: None,
            auth_token: None,
            nkey: None,
            sig: None,
            jwt: None,
            nonce: None,
            cookies: &[],
            remote: None,
            now_unix: 0,
        }
    }

    /// The first cookie with this name (Go's `Request.Cookie`).
    fn cookie(&self, name: Option<&str>) -> Option<&'a str> {
        let name = name.filter(|n| !n.is_empty())?;
        let cookies: &'a [(String, String)] = self.cookies;
        cookies
            .iter()
            .find(|(cookie_name, _)| cookie_name == name)
            .map(|(_, value)| value.as_str())
    }
}

/// The identity of an authenticated connection.
#[derive(Debug, Clone, Default)]
pub struct Authenticated {
    /// The name `/connz?auth=1` shows as `authorized_user`: the CONNECT nkey, else the user
    /// name (possibly filled by `no_auth_user` or a cookie), else the token (as the reference).
    pub authorized_user: Option<String>,
    /// The user's permissions; `None` means unrestricted.
    pub permissions: Option<Arc<Permissions>>,
    /// The nkey the client presented, for log lines.
    pub nkey: Option<String>,
    /// The user name in effect, for log lines.
    pub username: Option<String>,
    /// The account of the user (`None`: the global account `$G`).
    pub account: Option<Arc<str>>,
    /// In operator mode: the JWT user's key, issue time, expiry and limits.
    pub jwt: Option<Arc<operator::JwtIdentity>>,
}

impl Authenticated {
    /// The reference's `getAuthUser` text used in violation logs: `Nkey "<k>"`, `User "<u>"` or
    /// `User "N/A"`.
    #[must_use]
    pub fn log_identity(&self) -> String {
        if let Some(nkey) = &self.nkey {
            format!("Nkey {}", go_quote(nkey.as_bytes()))
        } else if let Some(user) = &self.username {
            format!("User {}", go_quote(user.as_bytes()))
        } else {
            "User \"N/A\"".to_owned()
        }
    }

    /// A fresh per-connection permission state, when the user has permissions.
    #[must_use]
    pub fn client_permissions(&self) -> Option<ClientPermissions> {
        self.permissions
            .as_ref()
            .map(|perms| ClientPermissions::new(Arc::clone(perms)))
    }
}

/// Who the failure log line names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LogSubject {
    Nkey(String),
    User(String),
    Anonymous,
}

/// An authentication failure. On the wire it is always [`AUTHORIZATION_VIOLATION`] and the
/// connection closes with reason `Authentication Failure`. `Display` is the reference's error
/// log text (`authentication error - User "<u>"`, `... - Nkey "<k>"`, or bare).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    subject: LogSubject,
    detail: std::borrow::Cow<'static, str>,
    /// The detail is a line the reference logs (operator mode).
    logged: bool,
}

impl AuthError {
    /// The reason the reference logs before `authentication error`, when it logs one
    /// (operator mode; [`operator::is_error_level`] tells the level).
    #[must_use]
    pub fn logged_reason(&self) -> Option<&str> {
        self.logged.then_some(&*self.detail)
    }

    /// The reference's debug-level reason, when it logs one (`Signature missing`, ...), else a
    /// short description of the refusal.
    #[must_use]
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The text to send after `-ERR `.
    #[must_use]
    pub fn err_text(&self) -> &'static str {
        AUTHORIZATION_VIOLATION
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("authentication error")?;
        match &self.subject {
            LogSubject::Nkey(key) => write!(f, " - Nkey {}", go_quote(key.as_bytes())),
            LogSubject::User(user) => write!(f, " - User {}", go_quote(user.as_bytes())),
            LogSubject::Anonymous => Ok(()),
        }
    }
}

impl std::error::Error for AuthError {}

impl AuthConfig {
    /// The reference's `info.AuthRequired`: any client authentication configured.
    pub(crate) fn global_auth_required(&self) -> bool {
        is_set(self.username.as_deref())
            || is_set(self.token.as_deref())
            || !self.users.is_empty()
            || !self.nkeys.is_empty()
            || self.operator.is_some()
    }

    /// INFO `auth_required` for a new connection of this type. TCP: any client auth configured
    /// and no `no_auth_user`. WebSocket: client auth configured (even with `no_auth_user`) or a
    /// websocket override.
    #[must_use]
    pub fn auth_required(&self, conn_type: ConnectionType) -> bool {
        match conn_type {
            ConnectionType::WebSocket => self.global_auth_required() || self.websocket.overrides(),
            ConnectionType::Mqtt | ConnectionType::MqttWebSocket => {
                self.global_auth_required() || self.mqtt.overrides()
            }
            _ => self.global_auth_required() && !is_set(self.no_auth_user.as_deref()),
        }
    }

    /// Whether CONNECT must be the first operation and the auth timer runs: auth configured
    /// (also when only `no_auth_user` makes it optional), or for WebSocket a websocket override.
    #[must_use]
    pub fn auth_expected(&self, conn_type: ConnectionType) -> bool {
        match conn_type {
            ConnectionType::WebSocket => self.global_auth_required() || self.websocket.overrides(),
            ConnectionType::Mqtt | ConnectionType::MqttWebSocket => {
                self.global_auth_required() || self.mqtt.overrides()
            }
            _ => self.global_auth_required(),
        }
    }

    /// The configured auth timeout for this connection type: the websocket block's non-zero
    /// `timeout` for WebSocket clients, else `authorization { timeout }`. `None` means the
    /// broker's default ([`DEFAULT_AUTH_TIMEOUT`], or TLS timeout + 1 s with TLS).
    #[must_use]
    pub fn auth_timeout(&self, conn_type: ConnectionType) -> Option<Duration> {
        let global = self.timeout.filter(|t| !t.is_zero());
        if conn_type == ConnectionType::WebSocket
            && let Some(ws) = self.websocket.timeout.filter(|t| !t.is_zero())
        {
            return Some(ws);
        }
        if matches!(
            conn_type,
            ConnectionType::Mqtt | ConnectionType::MqttWebSocket
        ) && let Some(mqtt) = self.mqtt.timeout.filter(|t| !t.is_zero())
        {
            return Some(mqtt);
        }
        global
    }

    /// Whether INFO carries a `nonce` (nkey users exist, or operator mode).
    #[must_use]
    pub fn nonce_required(&self) -> bool {
        !self.nkeys.is_empty() || self.operator.is_some()
    }
}

/// A compiled user or nkey user.
#[derive(Debug, Clone)]
struct CompiledUser {
    name: String,
    password: String,
    permissions: Option<Arc<Permissions>>,
    allowed: Vec<ConnectionType>,
    account: Option<Arc<str>>,
}

impl CompiledUser {
    /// The identity of a client that authenticated as this user.
    fn identity(
        &self,
        nkey: Option<&str>,
        user: Option<&str>,
        token: Option<&str>,
    ) -> Authenticated {
        let mut who = identity(nkey, user, token, self.permissions.clone());
        who.account.clone_from(&self.account);
        who
    }

    fn allows(&self, conn_type: ConnectionType) -> bool {
        self.allowed.is_empty() || self.allowed.contains(&conn_type)
    }
}

/// Validated, compiled authentication settings. Build once at start (and on reload) and share.
/// Cloning is cheap in permissions (they are shared), not in user tables.
#[derive(Debug, Clone)]
pub struct Authorizer {
    config: AuthConfig,
    users: HashMap<String, CompiledUser>,
    nkeys: HashMap<String, CompiledUser>,
    trust: Option<operator::Trust>,
}

impl Default for Authorizer {
    /// No authentication configured.
    fn default() -> Self {
        Self {
            config: AuthConfig::default(),
            users: HashMap::new(),
            nkeys: HashMap::new(),
            trust: None,
        }
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

fn is_leaf(conn_type: ConnectionType) -> bool {
    matches!(
        conn_type,
        ConnectionType::Leaf | ConnectionType::LeafWebSocket
    )
}

impl Authorizer {
    /// Validates the settings ([`AuthConfig::validate`]) and compiles every user's permissions
    /// (a user's own `permissions`, else `default_permissions`).
    pub fn new(config: &AuthConfig) -> Result<Self, AuthConfigError> {
        config.validate()?;
        let default_perms = config
            .default_permissions
            .as_ref()
            .map(|p| Arc::new(Permissions::new(p)));
        let compile = |own: &Option<PermissionsConfig>| match own {
            Some(perms) => Some(Arc::new(Permissions::new(perms))),
            None => default_perms.clone(),
        };
        let mut users = HashMap::new();
        for user in &config.users {
            users.insert(
                user.username.clone(),
                CompiledUser {
                    name: user.username.clone(),
                    password: user.password.clone(),
                    permissions: compile(&user.permissions),
                    allowed: parse_connection_types(&user.allowed_connection_types)?,
                    account: user.account.as_deref().map(Arc::from),
                },
            );
        }
        let mut nkeys = HashMap::new();
        for nkey_user in &config.nkeys {
            nkeys.insert(
                nkey_user.nkey.clone(),
                CompiledUser {
                    name: nkey_user.nkey.clone(),
                    password: String::new(),
                    permissions: compile(&nkey_user.permissions),
                    allowed: parse_connection_types(&nkey_user.allowed_connection_types)?,
                    account: nkey_user.account.as_deref().map(Arc::from),
                },
            );
        }
        let trust = config
            .operator
            .as_ref()
            .map(operator::Trust::new)
            .transpose()?;
        Ok(Self {
            config: config.clone(),
            users,
            nkeys,
            trust,
        })
    }

    /// The operator-mode trust, when operators or trusted keys are configured.
    #[must_use]
    pub fn trust(&self) -> Option<&operator::Trust> {
        self.trust.as_ref()
    }

    /// The settings this was built from.
    #[must_use]
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The operator-mode trust and the settings, to change one account in both.
    pub(crate) fn trust_mut(&mut self) -> Option<(&mut operator::Trust, &mut AuthConfig)> {
        Some((self.trust.as_mut()?, &mut self.config))
    }

    /// The reference's `info.AuthRequired`: any client authentication configured.
    fn global_auth_required(&self) -> bool {
        self.config.global_auth_required()
    }

    /// True when WebSocket clients use the websocket block's credentials.
    fn websocket_override(&self) -> bool {
        self.config.websocket.overrides()
    }

    /// INFO `auth_required` for a new connection of this type; see
    /// [`AuthConfig::auth_required`].
    #[must_use]
    pub fn auth_required(&self, conn_type: ConnectionType) -> bool {
        self.config.auth_required(conn_type)
    }

    /// Whether CONNECT must come first and the auth timer runs; see
    /// [`AuthConfig::auth_expected`].
    #[must_use]
    pub fn auth_expected(&self, conn_type: ConnectionType) -> bool {
        self.config.auth_expected(conn_type)
    }

    /// The configured auth timeout; see [`AuthConfig::auth_timeout`].
    #[must_use]
    pub fn auth_timeout(&self, conn_type: ConnectionType) -> Option<Duration> {
        self.config.auth_timeout(conn_type)
    }

    /// Whether INFO carries a `nonce` (nkey users exist).
    #[must_use]
    pub fn nonce_required(&self) -> bool {
        self.config.nonce_required()
    }

    /// The failure for a request whose effective fields are `nkey`/`username`.
    fn refuse(
        &self,
        nkey: Option<&str>,
        username: Option<&str>,
        detail: &'static str,
    ) -> AuthOutcome {
        AuthOutcome::Decided(Err(self.failure(nkey, username, detail)))
    }

    fn failure(
        &self,
        nkey: Option<&str>,
        username: Option<&str>,
        detail: impl Into<std::borrow::Cow<'static, str>>,
    ) -> AuthError {
        let subject = if self.trust.is_some() {
            LogSubject::Anonymous
        } else if !self.nkeys.is_empty() {
            LogSubject::Nkey(nkey.unwrap_or_default().to_owned())
        } else if !self.users.is_empty() {
            LogSubject::User(username.unwrap_or_default().to_owned())
        } else {
            LogSubject::Anonymous
        };
        AuthError {
            subject,
            detail: detail.into(),
            logged: false,
        }
    }

    /// The failure log for a connection that authenticated but must still be refused (CONNECT
    /// with `account`/`new_account`).
    #[must_use]
    pub fn violation_after_auth(&self, who: &Authenticated) -> AuthError {
        self.failure(
            who.nkey.as_deref(),
            who.username.as_deref(),
            "account designation in CONNECT",
        )
    }

    /// The failure when the first operation is not CONNECT while CONNECT is expected and
    /// [`Self::no_auth_user`] gave no binding. Observed log: `authentication error - User ""`
    /// when users exist.
    #[must_use]
    pub fn missing_connect_violation(&self) -> AuthError {
        self.failure(None, None, "first operation is not CONNECT")
    }

    /// Authenticates a CONNECT (`server/auth.go` `processClientOrLeafAuthentication`).
    ///
    /// Order, as the reference: no auth required for this connection type → accept (credentials
    /// ignored). Else nkey users exist and CONNECT has `nkey` → that nkey user (type allowed, then
    /// signature over the nonce). Else users exist → `no_auth_user` fills user and password when
    /// CONNECT has no user, password and token; a given user must exist, allow this connection
    /// type and match the password. Else the token, else the single user/password. WebSocket
    /// clients with a websocket override use the websocket user/password/token/`no_auth_user`
    /// instead of the global ones, and cookies fill empty CONNECT fields.
    ///
    /// A bcrypt comparison runs inline here (tens to hundreds of milliseconds at the usual
    /// costs); an event loop that must not block uses [`Self::authenticate_deferred`].
    pub fn authenticate(&self, req: &AuthRequest<'_>) -> Result<Authenticated, AuthError> {
        self.authenticate_deferred(req).resolve()
    }

    /// [`Self::authenticate`], except that a bcrypt comparison is not run: it comes back as
    /// [`AuthOutcome::CheckHash`], whose [`PasswordCheck`] the caller can run on another
    /// thread before finishing with [`HashCheck::finish`]. Every other decision is made here.
    pub fn authenticate_deferred(&self, req: &AuthRequest<'_>) -> AuthOutcome {
        let conn_type = req.conn_type;
        let is_websocket_client = conn_type == ConnectionType::WebSocket;
        let ws = &self.config.websocket;

        let mut user = non_empty(req.user);
        let mut pass = non_empty(req.pass);
        let mut token = non_empty(req.auth_token);
        let nkey = non_empty(req.nkey);
        if is_websocket_client {
            user = user.or_else(|| non_empty(req.cookie(ws.username_cookie.as_deref())));
            pass = pass.or_else(|| non_empty(req.cookie(ws.password_cookie.as_deref())));
            token = token.or_else(|| non_empty(req.cookie(ws.token_cookie.as_deref())));
        }

        if let Some(trust) = &self.trust {
            // A WebSocket client without a JWT in CONNECT uses the `jwt_cookie` (client.go
            // processConnect).
            let mut jwt = non_empty(req.jwt);
            if is_websocket_client && jwt.is_none() {
                jwt = req.cookie(ws.jwt_cookie.as_deref());
            }
            let jwt_req = operator::JwtRequest {
                jwt,
                sig: non_empty(req.sig),
                nonce: req.nonce.unwrap_or_default(),
                conn_type,
                remote: req.remote,
                now_unix: req.now_unix,
            };
            return AuthOutcome::Decided(trust.authenticate(&jwt_req).map_err(|detail| {
                AuthError {
                    logged: true,
                    ..self.failure(None, None, detail)
                }
            }));
        }
        let is_mqtt_client = matches!(
            conn_type,
            ConnectionType::Mqtt | ConnectionType::MqttWebSocket
        );
        let use_mqtt_settings = is_mqtt_client && self.config.mqtt.overrides();
        let required = self.global_auth_required()
            || (is_websocket_client && self.websocket_override())
            || use_mqtt_settings;
        if !required {
            return AuthOutcome::Decided(Ok(identity(nkey, user, token, None)));
        }

        let use_ws_settings = is_websocket_client && self.websocket_override();
        let mqtt = &self.config.mqtt;
        let (no_auth_user, cfg_username, cfg_password, cfg_token) = if use_mqtt_settings {
            // `processClientOrLeafAuthentication`: the mqtt block's override.
            (
                non_empty(mqtt.no_auth_user.as_deref()),
                non_empty(mqtt.username.as_deref()),
                mqtt.password.as_deref().unwrap_or_default(),
                non_empty(mqtt.token.as_deref()),
            )
        } else if use_ws_settings {
            (
                non_empty(ws.no_auth_user.as_deref()),
                non_empty(ws.username.as_deref()),
                ws.password.as_deref().unwrap_or_default(),
                non_empty(ws.token.as_deref()),
            )
        } else {
            let mut no_auth_user = non_empty(self.config.no_auth_user.as_deref());
            if conn_type == ConnectionType::LeafWebSocket
                && let Some(ws_user) = non_empty(ws.no_auth_user.as_deref())
            {
                no_auth_user = Some(ws_user);
            }
            (
                no_auth_user,
                non_empty(self.config.username.as_deref()),
                self.config.password.as_deref().unwrap_or_default(),
                non_empty(self.config.token.as_deref()),
            )
        };

        // The stored password of the no_auth_user, when it stands in for the client's.
        let mut filled_pass: Option<&str> = None;
        let mut found_user: Option<&CompiledUser> = None;
        let mut found_nkey: Option<&CompiledUser> = None;
        if let Some(client_nkey) = nkey.filter(|_| !self.nkeys.is_empty()) {
            match self.nkeys.get(client_nkey) {
                Some(nkey_user) if nkey_user.allows(conn_type) => found_nkey = Some(nkey_user),
                Some(_) => {
                    return self.refuse(nkey, user, "connection type not allowed");
                }
                None => return self.refuse(nkey, user, "unknown nkey"),
            }
        } else if !self.users.is_empty() {
            if let Some(name) = no_auth_user
                && user.is_none()
                && pass.is_none()
                && token.is_none()
                && let Some(stand_in) = self.users.get(name)
            {
                user = Some(stand_in.name.as_str());
                filled_pass = Some(stand_in.password.as_str());
            }
            if let Some(name) = user {
                match self.users.get(name) {
                    Some(known) if known.allows(conn_type) => found_user = Some(known),
                    Some(_) => {
                        return self.refuse(nkey, user, "connection type not allowed");
                    }
                    None => return self.refuse(nkey, user, "unknown user"),
                }
            }
        }

        if let Some(nkey_user) = found_nkey {
            let nonce = req.nonce.unwrap_or_default();
            return AuthOutcome::Decided(
                match verify_nonce_signature(&nkey_user.name, nonce, non_empty(req.sig)) {
                    Ok(()) => Ok(nkey_user.identity(nkey, user, token)),
                    Err(err) => Err(self.failure(nkey, user, err.as_str())),
                },
            );
        }
        if let Some(known) = found_user {
            let presented = filled_pass.or(pass).unwrap_or_default();
            return AuthOutcome::compare(
                &known.password,
                presented,
                known.identity(nkey, user, token),
                self.failure(nkey, user, "password mismatch"),
            );
        }

        if is_leaf(conn_type) {
            // Without matching credentials a leafnode is bound to its configured account.
            return AuthOutcome::Decided(Ok(identity(nkey, user, token, None)));
        }
        if let Some(cfg_token) = cfg_token {
            return AuthOutcome::compare(
                cfg_token,
                token.unwrap_or_default(),
                identity(nkey, user, token, None),
                self.failure(nkey, user, "token mismatch"),
            );
        }
        if let Some(cfg_username) = cfg_username {
            if user != Some(cfg_username) {
                return self.refuse(nkey, user, "user mismatch");
            }
            return AuthOutcome::compare(
                cfg_password,
                pass.unwrap_or_default(),
                identity(nkey, user, token, None),
                self.failure(nkey, user, "password mismatch"),
            );
        }
        self.refuse(nkey, user, "no credentials")
    }

    /// The `no_auth_user` binding for a connection whose first operation is not CONNECT while
    /// CONNECT is expected (telnet-friendly start). As the reference, only the global
    /// `no_auth_user` is used, for every connection type; unlike the reference, a user whose
    /// `allowed_connection_types` excludes this connection type is not bound (see the module
    /// docs). `None` means `-ERR 'Authorization Violation'`.
    #[must_use]
    pub fn no_auth_user(&self, conn_type: ConnectionType) -> Option<Authenticated> {
        let name = non_empty(self.config.no_auth_user.as_deref())?;
        let user = self.users.get(name)?;
        if !user.allows(conn_type) {
            return None;
        }
        Some(user.identity(None, Some(user.name.as_str()), None))
    }
}

/// The identity the reference reports (`getRawAuthUser`): nkey, else user, else token.
fn identity(
    nkey: Option<&str>,
    user: Option<&str>,
    token: Option<&str>,
    permissions: Option<Arc<Permissions>>,
) -> Authenticated {
    let authorized_user = nkey.or(user).or(token).map(str::to_owned);
    Authenticated {
        authorized_user,
        permissions,
        nkey: nkey.map(str::to_owned),
        username: user.map(str::to_owned),
        account: None,
        jwt: None,
    }
}
