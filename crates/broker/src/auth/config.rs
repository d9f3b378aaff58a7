//! Authentication settings as plain data (what nats-server's `server/opts.go` `parseAuthorization`
//! and `parseWebsocket` read), and
//! their start-up validation with the reference's error texts.
//!
//! The binary fills these structs from the configuration file; nothing here parses text. The
//! shapes follow nats-server's `Options`, `User`, `NkeyUser`, `Permissions` and
//! `WebsocketOpts`, after its config parser has applied aliases and defaults.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use crate::ConnectionType;

use super::go_quote;

/// Client authentication settings. `Default` is "no authentication configured".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// `authorization { user }` (single user; also `--user`).
    pub username: Option<String>,
    /// `authorization { password }`: plain text or a bcrypt hash.
    pub password: Option<String>,
    /// `authorization { token }` (also `--auth`): plain text or a bcrypt hash.
    pub token: Option<String>,
    /// `authorization { users: [...] }` entries with a user name.
    pub users: Vec<User>,
    /// `authorization { users: [...] }` entries with an `nkey`.
    pub nkeys: Vec<NkeyUser>,
    /// `authorization { default_permissions }`: used by every user and nkey user that has no
    /// `permissions` of its own.
    pub default_permissions: Option<PermissionsConfig>,
    /// `authorization { timeout }`. `None` lets the broker use its default (2 s, or the TLS
    /// timeout plus one second when TLS is configured).
    pub timeout: Option<Duration>,
    /// Top-level `no_auth_user`: must name an entry of `users`.
    pub no_auth_user: Option<String>,
    /// The `websocket { authorization {...}, no_auth_user, *_cookie }` settings.
    pub websocket: WebsocketAuth,
    /// Operator mode (`operator`, `trusted`, the resolver's accounts); `None` otherwise.
    pub operator: Option<super::operator::OperatorConfig>,
    /// The `mqtt { authorization {...}, no_auth_user }` settings (`server/mqtt.go`: an
    /// override for MQTT clients, over TCP and WebSocket alike); the cookie fields are unused.
    pub mqtt: WebsocketAuth,
}

/// A user with a name and password (`users` entry).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    /// `user` / `username`.
    pub username: String,
    /// `password` / `pass`: plain text or a bcrypt hash.
    pub password: String,
    /// `permissions` (aliases `permission`, `authorization`).
    pub permissions: Option<PermissionsConfig>,
    /// `allowed_connection_types` (aliases `connection_types`, `clients`), as written in the
    /// configuration; case-insensitive. Empty means every type.
    pub allowed_connection_types: Vec<String>,
    /// The account the user belongs to (a user listed in an `accounts` block); `None` is the
    /// global account `$G`.
    pub account: Option<String>,
}

/// A user identified by a public nkey (`users` entry with `nkey`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NkeyUser {
    /// The public user nkey (56 characters starting with `U`).
    pub nkey: String,
    /// `permissions`.
    pub permissions: Option<PermissionsConfig>,
    /// `allowed_connection_types`, as for [`User`].
    pub allowed_connection_types: Vec<String>,
    /// The account, as for [`User`].
    pub account: Option<String>,
}

/// A `permissions` block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionsConfig {
    /// `publish` (aliases `pub`, `import`).
    pub publish: Option<SubjectPermission>,
    /// `subscribe` (aliases `sub`, `export`). Entries may be `"<subject> <queue>"`.
    pub subscribe: Option<SubjectPermission>,
    /// `allow_responses` (alias `publish_allow_responses`).
    pub allow_responses: Option<ResponsePermission>,
}

/// `allow` and `deny` lists of one direction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectPermission {
    /// `allow`. `None` means no allow list (everything not denied is allowed). For `publish`,
    /// `Some(vec![])` is an allow list that allows nothing; the config layer should map an empty
    /// `allow: []` in the file to `None`, as the reference's parser does. For `subscribe` an
    /// empty list is the same as `None` (the reference checks the length).
    pub allow: Option<Vec<String>>,
    /// `deny`. Empty means no deny list.
    pub deny: Vec<String>,
}

/// `allow_responses`: `true` is [`ResponsePermission::default()`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponsePermission {
    /// `max` (aliases `max_msgs`, `max_messages`, `max_responses`): 0 means the default (1),
    /// a negative value means unlimited.
    pub max_msgs: i64,
    /// `expires` (aliases `expiration`, `ttl`): `Some(Duration::ZERO)` means the default
    /// (2 minutes); `None` stands for a negative duration in the file, which never expires.
    pub expires: Option<Duration>,
}

impl Default for ResponsePermission {
    fn default() -> Self {
        Self {
            max_msgs: 0,
            expires: Some(Duration::ZERO),
        }
    }
}

/// The websocket block's authentication settings (`server/websocket.go` `wsConfigAuth`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebsocketAuth {
    /// `websocket { authorization { user } }`: overrides client auth for WebSocket clients.
    pub username: Option<String>,
    /// `websocket { authorization { password } }`.
    pub password: Option<String>,
    /// `websocket { authorization { token } }`: overrides client auth for WebSocket clients.
    pub token: Option<String>,
    /// `websocket { authorization { timeout } }`: the auth timeout of WebSocket clients when set
    /// and non-zero.
    pub timeout: Option<Duration>,
    /// `websocket { no_auth_user }`: overrides client auth for WebSocket clients.
    pub no_auth_user: Option<String>,
    /// `websocket { jwt_cookie }`: in operator mode, the cookie whose value is the user JWT of
    /// a WebSocket client whose CONNECT has none; refused without operator mode.
    pub jwt_cookie: Option<String>,
    /// `websocket { username_cookie }` (nats-server 2.11+): cookie whose value fills an empty
    /// CONNECT `user`.
    pub username_cookie: Option<String>,
    /// `websocket { password_cookie }` (2.11+): fills an empty CONNECT `pass`.
    pub password_cookie: Option<String>,
    /// `websocket { token_cookie }` (2.11+): fills an empty CONNECT `auth_token`.
    pub token_cookie: Option<String>,
}

impl WebsocketAuth {
    /// The reference's `authOverride`: a websocket user, token or `no_auth_user` replaces the
    /// client authentication for WebSocket clients. A timeout alone is not an override.
    #[must_use]
    pub fn overrides(&self) -> bool {
        is_set(self.username.as_deref())
            || is_set(self.token.as_deref())
            || is_set(self.no_auth_user.as_deref())
    }
}

/// A configuration the reference refuses at start-up. `Display` is the reference's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfigError {
    message: String,
}

impl AuthConfigError {
    pub(crate) fn new(message: String) -> Self {
        Self { message }
    }

    /// The reference's error text.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for AuthConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AuthConfigError {}

pub(crate) fn is_set(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.is_empty())
}

/// Parses one `allowed_connection_types` value, case-insensitively (`"websocket"` works).
/// An unknown name gives `unknown connection type "<name>"`, the reference's text for options
/// set in code (`validateAllowedConnectionTypes`); configuration files get the text of
/// [`parse_connection_types`], which [`AuthConfig::validate`] uses.
pub fn parse_connection_type(name: &str) -> Result<ConnectionType, AuthConfigError> {
    let upper = name.to_ascii_uppercase();
    let conn_type = match upper.as_str() {
        "STANDARD" => ConnectionType::Standard,
        "WEBSOCKET" => ConnectionType::WebSocket,
        "LEAFNODE" => ConnectionType::Leaf,
        "LEAFNODE_WS" => ConnectionType::LeafWebSocket,
        "MQTT" => ConnectionType::Mqtt,
        "MQTT_WS" => ConnectionType::MqttWebSocket,
        _ => {
            return Err(AuthConfigError::new(format!(
                "unknown connection type {}",
                go_quote(name.as_bytes())
            )));
        }
    };
    Ok(conn_type)
}

/// Parses an `allowed_connection_types` list as the reference's config parser does
/// (`convertAllowedConnectionTypes`): names are upper-cased, and all unknown ones are reported
/// together as `invalid connection types ["<NAME>" "<NAME2>"]` (Go's `%q` of a string slice).
pub fn parse_connection_types(names: &[String]) -> Result<Vec<ConnectionType>, AuthConfigError> {
    let mut known = Vec::with_capacity(names.len());
    let mut unknown = Vec::new();
    for name in names {
        match parse_connection_type(name) {
            Ok(conn_type) => known.push(conn_type),
            Err(_) => unknown.push(go_quote(name.to_ascii_uppercase().as_bytes())),
        }
    }
    if unknown.is_empty() {
        Ok(known)
    } else {
        Err(AuthConfigError::new(format!(
            "invalid connection types [{}]",
            unknown.join(" ")
        )))
    }
}

impl AuthConfig {
    /// Checks the settings as the reference does at start-up (config parser, `validateAuth`,
    /// `validateWebsocketOptions`), returning the first problem with its text.
    pub fn validate(&self) -> Result<(), AuthConfigError> {
        let single_user = is_set(self.username.as_deref()) || is_set(self.password.as_deref());
        let token = is_set(self.token.as_deref());
        if single_user && token {
            return Err(AuthConfigError::new(
                "Cannot have a user/pass and token".to_owned(),
            ));
        }
        let has_users_array = !self.users.is_empty() || !self.nkeys.is_empty();
        if has_users_array && is_set(self.username.as_deref()) {
            return Err(AuthConfigError::new(
                "Can not have a single user/pass and a users array".to_owned(),
            ));
        }
        if has_users_array && token {
            return Err(AuthConfigError::new(
                "Can not have a token and a users array".to_owned(),
            ));
        }
        let mut names = HashSet::new();
        for user in &self.users {
            if user.username.is_empty() {
                return Err(AuthConfigError::new(
                    "User entry requires a user".to_owned(),
                ));
            }
            if !names.insert(user.username.as_str()) {
                return Err(AuthConfigError::new(format!(
                    "Duplicate user {} detected",
                    go_quote(user.username.as_bytes())
                )));
            }
        }
        for nkey_user in &self.nkeys {
            if !is_public_user_nkey(&nkey_user.nkey) {
                return Err(AuthConfigError::new(
                    "Not a valid public nkey for a user".to_owned(),
                ));
            }
            if !names.insert(nkey_user.nkey.as_str()) {
                return Err(AuthConfigError::new(format!(
                    "Duplicate nkey {} detected",
                    go_quote(nkey_user.nkey.as_bytes())
                )));
            }
        }
        for types in self
            .users
            .iter()
            .map(|u| &u.allowed_connection_types)
            .chain(self.nkeys.iter().map(|u| &u.allowed_connection_types))
        {
            parse_connection_types(types)?;
        }
        if let Some(name) = self.no_auth_user.as_deref().filter(|n| !n.is_empty()) {
            self.validate_no_auth_user(name)?;
        }
        let ws = &self.websocket;
        if let Some(name) = ws.no_auth_user.as_deref().filter(|n| !n.is_empty()) {
            self.validate_no_auth_user(name)?;
        }
        if let Some(name) = self.mqtt.no_auth_user.as_deref().filter(|n| !n.is_empty()) {
            self.validate_no_auth_user(name)?;
        }
        if has_users_array {
            if is_set(self.mqtt.username.as_deref()) {
                return Err(AuthConfigError::new(
                    "mqtt authentication username not compatible with presence of users/nkeys"
                        .to_owned(),
                ));
            }
            if is_set(self.mqtt.token.as_deref()) {
                return Err(AuthConfigError::new(
                    "mqtt authentication token not compatible with presence of users/nkeys"
                        .to_owned(),
                ));
            }
        }
        if has_users_array {
            if is_set(ws.username.as_deref()) {
                return Err(AuthConfigError::new(
                    "websocket authentication username not compatible with presence of users/nkeys"
                        .to_owned(),
                ));
            }
            if is_set(ws.token.as_deref()) {
                return Err(AuthConfigError::new(
                    "websocket authentication token not compatible with presence of users/nkeys"
                        .to_owned(),
                ));
            }
        }
        if let Some(cookie) = ws
            .jwt_cookie
            .as_deref()
            .filter(|c| !c.is_empty() && self.operator.is_none())
        {
            return Err(AuthConfigError::new(format!(
                "trusted operators or trusted keys configuration is required for JWT authentication via cookie {}",
                go_quote(cookie.as_bytes())
            )));
        }
        Ok(())
    }

    /// The start-up warning the reference logs (`checkAuthforWarnings`): `Plaintext passwords
    /// detected, use nkeys or bcrypt` when the single-user password or any user's password is
    /// not a bcrypt hash. Tokens do not count.
    #[must_use]
    pub fn plaintext_password_warning(&self) -> Option<&'static str> {
        let single = self
            .password
            .as_deref()
            .is_some_and(|p| !p.is_empty() && !super::is_bcrypt(p));
        let any_user = self.users.iter().any(|u| !super::is_bcrypt(&u.password));
        (single || any_user).then_some("Plaintext passwords detected, use nkeys or bcrypt")
    }

    /// The reference's `validateNoAuthUser` (its `%s` inside quotes is not `%q`).
    fn validate_no_auth_user(&self, name: &str) -> Result<(), AuthConfigError> {
        if self.users.is_empty() {
            return Err(AuthConfigError::new(format!(
                "no_auth_user: \"{name}\" present, but users are not defined"
            )));
        }
        if self.users.iter().any(|u| u.username == name) {
            return Ok(());
        }
        Err(AuthConfigError::new(format!(
            "no_auth_user: \"{name}\" not present as user in authorization block or account configuration"
        )))
    }
}

/// True for a valid public user nkey (`nkeys.IsValidPublicUserKey`).
fn is_public_user_nkey(key: &str) -> bool {
    key.starts_with('U') && nkeys::KeyPair::from_public_key(key).is_ok()
}
