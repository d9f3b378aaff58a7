//! Operator mode: the trust chain operator → account → user and what a user JWT grants
//! (nats-server's `server/auth.go` `processClientOrLeafAuthentication` from `trustedKeys != nil`
//! on, `server/jwt.go` `validateTrustedOperators`, `server/accounts.go` for signing keys,
//! revocations and activations).
//!
//! [`OperatorConfig`] is plain data (JWT texts already read by the binary); [`Trust::new`]
//! decodes and checks it once. [`Trust::authenticate`] decides one CONNECT with the wall-clock
//! time given as an argument. [`Trust::account_configs`] turns the account JWTs into the
//! router's accounts with their exports and imports (activation tokens checked).
//!
//! Deliberate differences from nats-server 2.9.10:
//! - `times` are wall-clock windows in `times_location` (an IANA zone name; empty is the
//!   server's local zone, as Go's `time.Local`), converted by the [`TimeZones`] the binary
//!   gives in [`OperatorConfig::time_zones`] (natsws reads the system's zone database).
//!   Without one, only an empty location or `UTC` is known, both as UTC, and any other
//!   location refuses the user. A window start or end that falls in a daylight-saving gap or
//!   fold resolves as [`TimeZones::unix_seconds`] says (Go's `time.Date` does not promise
//!   which of the two instants it picks).
//! - A refused user's reason is logged as the reference logs it ([`Refusal`], at debug level
//!   or, for `Bad src Ip <ip>` and `Outside connect times`, error level), except the server's
//!   own `Account fetch failed: account missing` warning for an unknown account.
//! - The user JWT is validated as `UserClaims.Validate` does (see `user_issues`), except that a
//!   clock with a fractional second (`09:00:00.5`, which Go's parser accepts) is invalid.
//! - A template of a scoped signing key that would emit more than [`MAX_TEMPLATE_SUBJECTS`]
//!   subjects for one list refuses the user (the reference has no bound).
//! - New account JWTs are taken on reload: the `resolver_preload` values (as the reference
//!   does), or the full resolver's directory read again (nats-server 2.9.10 takes directory
//!   updates only through its system account). The full resolver's claim services
//!   (`$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE` / `nsc push`, lookups, lists and deletes;
//!   [`super::claims`]) are served as the reference serves them, and a stored JWT applies
//!   the same way. A revocation closes live connections with `User Authentication Revoked`;
//!   an account `conn` lowered below its open connections closes the oldest ones (`maximum
//!   account active connections exceeded`, see `Broker::reload`); the remaining JWT users
//!   are authenticated again and take their new expiry and limits; the users of a deleted
//!   account get `Account Authentication Expired`. With the MEMORY resolver (and a system
//!   account), the updates naming an account apply to it without being stored, as in the
//!   reference; natsws loads every preloaded account at start, so an update of one no client
//!   has used yet applies where the reference (which loads accounts on first use) answers
//!   `jwt update skipped`.
//! - Account JWTs with subject `mappings` are refused at start-up and when pushed (natsws
//!   has no subject mapping). An account with a blocking issue of the JWT library's
//!   `AccountClaims.Validate` (its limits, imports and activation tokens, exports, signing
//!   keys, `default_permissions`), or signed by an untrusted key, is never loaded, as in the
//!   reference (`account_issues`). The account `data` limit is read and, as in nats-server
//!   2.9.10, not enforced; the JetStream limits are read and not applied, as a nats-server
//!   without JetStream does (natsws runs none; JetStream stays on a hub). An export's
//!   `service_latency` is tracked as the reference tracks it (with a system account; one
//!   `TrackServiceExportWithSampling` refuses is served untracked, see `export_latency`), and
//!   an import's `share` shows the requestor's details in the measurements.

use core::net::IpAddr;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::config::{
    AuthConfigError, PermissionsConfig, ResponsePermission, SubjectPermission,
    parse_connection_type,
};
use super::jwt::{self, Claims, ExportType, SigningKey, UserPermissionLimits};
use super::permissions::Permissions;
use super::{Authenticated, go_quote};
use crate::ConnectionType;
use crate::config::{AccountConfig, ExportConfig, ExportKind, ImportConfig, ResponseType};

/// The server version an operator's `assert_server_version` is checked against: natsws
/// serves the protocol of nats-server 2.9.10.
pub const SERVER_VERSION: (i64, i64, i64) = (2, 9, 10);

/// Most subjects one permission list of a scoped signing key's template may expand to.
pub const MAX_TEMPLATE_SUBJECTS: usize = 1024;

/// Wall-clock conversions in named time zones, for the `times` of user JWTs. The binary
/// implements it over a time zone database; the broker only calls it (it does no I/O).
///
/// Local seconds count wall-clock time in the zone's calendar from 1970-01-01 00:00:00 (so
/// `local.rem_euclid(86_400)` is the time of day there). `zone` is an IANA name such as
/// `Europe/Paris`, or empty for the server's local zone.
pub trait TimeZones: Send + Sync {
    /// The local seconds at the Unix time `unix` in `zone`; `None` when the zone is unknown.
    fn local_seconds(&self, zone: &str, unix: i64) -> Option<i64>;
    /// The Unix time of the local seconds `local` in `zone`; `None` when the zone is unknown.
    /// A local time that a daylight-saving change skips or repeats resolves to one of its
    /// instants (the implementation documents which).
    fn unix_seconds(&self, zone: &str, local: i64) -> Option<i64>;
}

/// An optional shared [`TimeZones`]. Two sources are equal when they are the same object (or
/// both absent), so a configuration compares equal to itself across reloads.
#[derive(Clone, Default)]
pub struct ZoneSource(pub Option<Arc<dyn TimeZones>>);

impl ZoneSource {
    fn get(&self) -> Option<&dyn TimeZones> {
        self.0.as_deref()
    }
}

impl std::fmt::Debug for ZoneSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ZoneSource(Some(..))"
        } else {
            "ZoneSource(None)"
        })
    }
}

impl PartialEq for ZoneSource {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b)),
            _ => false,
        }
    }
}

impl Eq for ZoneSource {}

/// Operator-mode settings as plain data. The binary reads operator files and the account
/// resolver; nothing here does I/O.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorConfig {
    /// Operator JWTs (`operator`), as text.
    pub operators: Vec<String>,
    /// `trusted` keys (public operator nkeys), for configurations without operator JWTs.
    pub trusted_keys: Vec<String>,
    /// Account JWTs the resolver serves (`resolver_preload` values, or the files of a full
    /// resolver's directory). A later JWT for the same account replaces an earlier one.
    pub accounts: Vec<String>,
    /// `system_account`, or the first operator's `system_account` claim.
    pub system_account: Option<String>,
    /// How the `times` of user JWTs are converted (see [`TimeZones`]).
    pub time_zones: ZoneSource,
}

/// What a JWT user brings besides permissions: the limits the broker enforces on its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtIdentity {
    /// The user's public key (`sub`).
    pub user: String,
    /// The account's public key.
    pub account: String,
    /// `iat`, for revocation checks on reload.
    pub issued_at: i64,
    /// When the connection must close (Unix seconds): the JWT's `exp` or the end of the
    /// current `times` window, whichever is first.
    pub expires_at: Option<i64>,
    /// Most subscriptions (user and account limits combined).
    pub max_subs: Option<usize>,
    /// Largest message (user and account limits combined).
    pub max_payload: Option<usize>,
    /// The account signing key that issued the JWT (its `iss` when it names an
    /// `issuer_account`), for the reload check of `server/accounts.go`
    /// `updateAccountClaimsWithRefresh`.
    pub signing_key: Option<String>,
    /// The user JWT's `name` (`name_tag` in the reference's client details).
    pub name: String,
    /// The user JWT's `tags`.
    pub tags: Vec<String>,
}

/// One CONNECT in operator mode.
#[derive(Debug, Clone, Copy)]
pub struct JwtRequest<'a> {
    /// CONNECT `jwt` (or the `jwt_cookie` of a WebSocket client).
    pub jwt: Option<&'a str>,
    /// CONNECT `sig`.
    pub sig: Option<&'a str>,
    /// The nonce sent in INFO.
    pub nonce: &'a str,
    /// How the connection arrived.
    pub conn_type: ConnectionType,
    /// The peer's address, for `src`.
    pub remote: Option<IpAddr>,
    /// The wall-clock time, Unix seconds.
    pub now_unix: i64,
}

/// An account known from its JWT.
#[derive(Debug, Clone)]
pub struct JwtAccount {
    /// The decoded claims.
    pub claims: Claims<jwt::Account>,
    /// The account key and its signing keys, with a scope template for scoped keys.
    signers: HashMap<String, Option<Box<UserPermissionLimits>>>,
    /// `default_permissions`, compiled.
    default_permissions: Option<Arc<Permissions>>,
    /// Signed by a trusted operator key.
    trusted: bool,
    /// Passes the library's account validation that nats-server applies when it loads the
    /// account (`account_issues`); an account that fails is never loaded.
    valid: bool,
    /// The JWT as configured (trimmed).
    token: Arc<str>,
    /// The activation token of each import (in `claims.nats.imports` order), decoded once
    /// when the account is; `None` for an import without one or one that does not decode.
    activations: Vec<Option<Claims<jwt::Activation>>>,
}

impl JwtAccount {
    /// The JWT this account was compiled from (trimmed).
    #[must_use]
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Whether `key` is a signing key of the account (its own key included), and with which
    /// scope template: `None` when it is not, `Some(None)` for a plain key.
    #[must_use]
    pub fn signer(&self, key: &str) -> Option<Option<&UserPermissionLimits>> {
        self.signers.get(key).map(Option::as_deref)
    }
}

/// Changes a list of account JWTs ([`OperatorConfig::accounts`]) as the trust changed: the
/// last entry that is `old` (compared trimmed, nothing decoded) becomes `new`; without such
/// an entry `new` is added; with `new` `None` every entry that is `old` is removed.
pub fn replace_account(accounts: &mut Vec<String>, old: Option<&str>, new: Option<&str>) {
    let at = old.and_then(|old| accounts.iter_mut().rev().find(|t| t.trim() == old));
    match (at, new) {
        (Some(at), Some(new)) => new.clone_into(at),
        (None, Some(new)) => accounts.push(new.to_owned()),
        (_, None) => {
            if let Some(old) = old {
                accounts.retain(|t| t.trim() != old);
            }
        }
    }
}

/// Decodes an account JWT as [`Trust::new`] takes it: `invalid account JWT` when it does not
/// decode, refused when it has subject mappings (natsws does not serve them).
pub fn servable_claims(token: &str) -> Result<Claims<jwt::Account>, AuthConfigError> {
    let claims =
        jwt::decode_account(token.trim()).map_err(|_| err("invalid account JWT".to_owned()))?;
    check_servable(&claims)?;
    Ok(claims)
}

/// Whether natsws serves an account with these claims: not when it has subject mappings.
pub fn check_servable(claims: &Claims<jwt::Account>) -> Result<(), AuthConfigError> {
    if claims.nats.mappings.is_empty() {
        Ok(())
    } else {
        Err(err(format!(
            "account JWT {}: subject mappings (mappings) are not supported by natsws",
            claims.data.sub
        )))
    }
}

/// The compiled trust: trusted operator keys and the accounts the resolver holds.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    accounts: HashMap<String, Arc<JwtAccount>>,
    system_account: Option<String>,
    time_zones: ZoneSource,
    /// The trusted operator keys.
    trusted: HashSet<String>,
}

fn err(text: String) -> AuthConfigError {
    AuthConfigError::new(text)
}

/// Why a JWT user was refused: the reference's log text (debug level, except the two
/// [`is_error_level`] ones).
pub type Refusal = Cow<'static, str>;

/// Whether the reference logs this refusal at error level (`Bad src Ip <ip>`, `Outside
/// connect times`) rather than debug.
#[must_use]
pub fn is_error_level(refusal: &str) -> bool {
    refusal.starts_with("Bad src Ip") || refusal == "Outside connect times"
}

impl Trust {
    /// Decodes the operators and accounts and checks the trust settings with the reference's
    /// texts (`error parsing operator JWT: ...`, `trust key "..." required to be a valid public
    /// operator nkey`, `invalid account JWT`).
    pub fn new(config: &OperatorConfig) -> Result<Self, AuthConfigError> {
        let mut trusted = HashSet::new();
        for key in &config.trusted_keys {
            if !jwt::is_public_key(key, nkeys::KeyPairType::Operator) {
                return Err(err(format!(
                    "trust key {} required to be a valid public operator nkey",
                    go_quote(key.as_bytes())
                )));
            }
            trusted.insert(key.clone());
        }
        for text in &config.operators {
            let op = jwt::decode_operator(text.trim())
                .map_err(|e| err(format!("error parsing operator JWT: {e}")))?;
            check_server_version(&op)?;
            if !op.nats.strict_signing_key_usage {
                trusted.insert(op.data.sub.clone());
            }
            for key in &op.nats.signing_keys {
                if !jwt::is_public_key(key, nkeys::KeyPairType::Operator) {
                    return Err(err(format!(
                        "trust key {} required to be a valid public operator nkey",
                        go_quote(key.as_bytes())
                    )));
                }
                trusted.insert(key.clone());
            }
        }
        let mut accounts = HashMap::new();
        for text in &config.accounts {
            let account = compile_account(servable_claims(text)?, text.trim(), &trusted);
            accounts.insert(account.claims.data.sub.clone(), Arc::new(account));
        }
        if let Some(sys) = &config.system_account
            && !accounts.contains_key(sys)
        {
            return Err(err(
                "error resolving system account: account missing".to_owned()
            ));
        }
        Ok(Self {
            accounts,
            system_account: config.system_account.clone(),
            time_zones: config.time_zones.clone(),
            trusted,
        })
    }

    /// Puts the account JWT `token` in place of its account's (or adds the account),
    /// decoding only it (and its activation tokens). Refused, changing nothing, as
    /// [`Trust::new`] refuses it. Gives the account's key and the account it replaced.
    pub fn set_account(
        &mut self,
        token: &str,
    ) -> Result<(String, Option<Arc<JwtAccount>>), AuthConfigError> {
        let account = compile_account(servable_claims(token)?, token.trim(), &self.trusted);
        let key = account.claims.data.sub.clone();
        let old = self.accounts.insert(key.clone(), Arc::new(account));
        Ok((key, old))
    }

    /// Removes the account `key` (never the system account); gives what it removed.
    pub fn remove_account(&mut self, key: &str) -> Option<Arc<JwtAccount>> {
        if self.system_account.as_deref() == Some(key) {
            return None;
        }
        self.accounts.remove(key)
    }

    /// The system account's public key, when one is configured.
    #[must_use]
    pub fn system_account(&self) -> Option<&str> {
        self.system_account.as_deref()
    }

    /// The account with this public key.
    #[must_use]
    pub fn account(&self, key: &str) -> Option<&Arc<JwtAccount>> {
        self.accounts.get(key)
    }

    /// Whether the account revokes `user` issued at `issued_at` (for reload checks).
    #[must_use]
    pub fn user_revoked(&self, account: &str, user: &str, issued_at: i64) -> bool {
        self.accounts
            .get(account)
            .is_none_or(|a| jwt::is_revoked(&a.claims.nats.revocations, user, issued_at))
    }

    /// Authenticates a JWT user, in the reference's order. On success the identity carries the
    /// account's public key as its account, the user's public key as `nkey`, and the limits.
    pub fn authenticate(&self, req: &JwtRequest<'_>) -> Result<Authenticated, Refusal> {
        let Some(token) = req.jwt.filter(|j| !j.is_empty()) else {
            return Err("Authentication requires a user JWT".into());
        };
        let user =
            jwt::decode_user(token).map_err(|e| Cow::Owned(format!("User JWT not valid: {e}")))?;
        let issues = user_issues(&user, req.now_unix, self.time_zones.get());
        if !issues.is_empty() {
            // Go's `%+v` of the validation results.
            return Err(format!(
                "User JWT no longer valid: &{{Issues:[{}]}}",
                issues.join(" ")
            )
            .into());
        }
        let mut limits = user.nats.limits.clone();
        let allowed = allowed_types(&limits.allowed_connection_types)?;
        if !allowed.is_empty() && !allowed.contains(&req.conn_type) {
            return Err("Connection type not allowed".into());
        }
        let issuer_account = if user.nats.issuer_account.is_empty() {
            &user.data.iss
        } else {
            &user.nats.issuer_account
        };
        let account = self
            .accounts
            .get(issuer_account)
            .ok_or("Account JWT lookup error: account missing")?;
        // nats-server never loads an account whose issuer is not trusted or whose claims do
        // not validate (`verifyAccountClaims`), so its lookup fails.
        if !account.valid || !account.trusted {
            return Err("Account JWT lookup error: account validation failed".into());
        }
        match account.signers.get(&user.data.iss) {
            None => return Err("User JWT issuer is not known".into()),
            Some(Some(template)) => {
                if !limits.has_empty_permissions() {
                    return Err(
                        "User JWT is not valid: scoped users require no permissions or limits set"
                            .into(),
                    );
                }
                limits = apply_template(template, &user, account)
                    .ok_or("User JWT generated invalid permissions")?;
            }
            Some(None) => {}
        }
        if account.claims.data.check_times(req.now_unix).is_err() {
            return Err("Account JWT has expired".into());
        }
        // For a scoped user the template's flag counts (the template replaced the limits).
        let bearer = limits.bearer_token;
        if bearer && account.claims.nats.limits.disallow_bearer {
            return Err("Account does not allow bearer token".into());
        }
        if !bearer {
            super::nkey::verify_nonce_signature(&user.data.sub, req.nonce, req.sig)
                .map_err(super::nkey::SignatureError::as_str)?;
        }
        if jwt::is_revoked(
            &account.claims.nats.revocations,
            &user.data.sub,
            user.data.iat,
        ) {
            return Err("User authentication revoked".into());
        }
        if !src_allows(&limits.src.0, req.remote) {
            let host = req.remote.map(|ip| ip.to_string()).unwrap_or_default();
            return Err(format!("Bad src Ip {host}").into());
        }
        let window_end = connect_window(&limits, req.now_unix, self.time_zones.get())
            .ok_or("Outside connect times")?;
        let expires_at = match (user.data.exp, window_end) {
            (0, end) => end,
            (exp, Some(end)) => Some(exp.min(end)),
            (exp, None) => Some(exp),
        };
        let permissions = jwt_permissions(&limits)
            .map(|p| Arc::new(Permissions::new(&p)))
            .or_else(|| account.default_permissions.clone());
        let acc_limits = &account.claims.nats.limits;
        let identity = JwtIdentity {
            user: user.data.sub.clone(),
            account: account.claims.data.sub.clone(),
            issued_at: user.data.iat,
            expires_at,
            max_subs: min_limit(limits.subs, acc_limits.subs),
            max_payload: min_limit(limits.payload, acc_limits.payload),
            signing_key: (!user.nats.issuer_account.is_empty()).then(|| user.data.iss.clone()),
            name: user.data.name.clone(),
            tags: user.nats.tags.clone(),
        };
        Ok(Authenticated {
            authorized_user: Some(user.data.sub.clone()),
            permissions,
            nkey: Some(user.data.sub.clone()),
            username: None,
            account: Some(Arc::from(account.claims.data.sub.as_str())),
            jwt: Some(Arc::new(identity)),
        })
    }

    /// Whether `key` is a signing key of `account` (the account's own key included), and with
    /// which scope template: `None` when it is not, `Some(None)` for a plain key.
    #[must_use]
    pub fn signer(&self, account: &str, key: &str) -> Option<Option<&UserPermissionLimits>> {
        self.accounts.get(account)?.signer(key)
    }

    /// The most client connections the account allows (`limits.conn`), `None` = unlimited.
    #[must_use]
    pub fn max_connections(&self, account: &str) -> Option<usize> {
        limit(self.accounts.get(account)?.claims.nats.limits.conn)
    }

    /// The most leaf node connections the account allows (`limits.leaf`).
    #[must_use]
    pub fn max_leaf_connections(&self, account: &str) -> Option<usize> {
        limit(self.accounts.get(account)?.claims.nats.limits.leaf)
    }

    /// When the account expires (Unix seconds).
    #[must_use]
    pub fn account_expires(&self, account: &str) -> Option<i64> {
        let exp = self.accounts.get(account)?.claims.data.exp;
        (exp > 0).then_some(exp)
    }

    /// The router accounts (named by public key) with the exports and imports of their JWTs.
    /// An import of a private export needs a valid activation token (issued by the exporter or
    /// one of its signing keys, to the importer, for a subject within the export, not expired
    /// at `now_unix`, not revoked by the export). Imports that do not resolve are dropped, as
    /// the reference drops them (it logs them at debug level).
    #[must_use]
    pub fn account_configs(&self, now_unix: i64) -> Vec<AccountConfig> {
        let mut keys: Vec<&String> = self.accounts.keys().collect();
        keys.sort();
        let mut configs: Vec<AccountConfig> = keys
            .iter()
            .filter_map(|k| self.accounts.get(*k))
            .filter(|a| a.valid)
            .map(|a| AccountConfig {
                name: a.claims.data.sub.clone(),
                exports: a
                    .claims
                    .nats
                    .exports
                    .iter()
                    .filter_map(|e| {
                        Some(ExportConfig {
                            kind: export_kind(e.kind)?,
                            subject: e.subject.clone(),
                            // A private export names its activated importers; the exporter
                            // itself stands in so that the list is never empty (= public).
                            accounts: if e.token_req {
                                vec![a.claims.data.sub.clone()]
                            } else {
                                Vec::new()
                            },
                            response_type: match e.response_type {
                                // An invalid type never gets here: the account is not loaded.
                                jwt::JwtResponseType::Unset
                                | jwt::JwtResponseType::Singleton
                                | jwt::JwtResponseType::Invalid(_) => ResponseType::Singleton,
                                jwt::JwtResponseType::Stream => ResponseType::Stream,
                                jwt::JwtResponseType::Chunked => ResponseType::Chunked,
                            },
                            response_threshold: u64::try_from(e.response_threshold)
                                .ok()
                                .filter(|n| *n > 0)
                                .map(Duration::from_nanos),
                            latency: export_latency(e, &a.claims.nats.exports),
                        })
                    })
                    .collect(),
                imports: Vec::new(),
            })
            .collect();
        // Imports, with activations granted on the exporter's side.
        let by_name: HashMap<String, usize> = configs
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        let mut imports: Vec<(usize, ImportConfig)> = Vec::new();
        let valid_keys: Vec<&String> = keys
            .iter()
            .copied()
            .filter(|k| self.accounts.get(*k).is_some_and(|a| a.valid))
            .collect();
        for (index, key) in valid_keys.iter().enumerate() {
            let Some(importer) = self.accounts.get(*key) else {
                continue;
            };
            for (n, import) in importer.claims.nats.imports.iter().enumerate() {
                let Some(exporter) = self.accounts.get(&import.account).filter(|a| a.valid) else {
                    continue;
                };
                let Some(kind) = export_kind(import.kind) else {
                    continue;
                };
                let export = exporter.claims.nats.exports.iter().find(|e| {
                    export_kind(e.kind) == Some(kind)
                        && crate::subject::is_subset_match(
                            import.subject.as_bytes(),
                            e.subject.as_bytes(),
                        )
                });
                let Some(export) = export else {
                    continue;
                };
                if export.token_req {
                    let activation = importer.activations.get(n).and_then(Option::as_ref);
                    if !activation_valid(import, activation, export, exporter, key, now_unix) {
                        continue;
                    }
                    let exporter_key = exporter.claims.data.sub.as_str();
                    if let Some(cfg) = by_name.get(exporter_key).and_then(|i| configs.get_mut(*i)) {
                        for e in &mut cfg.exports {
                            if e.subject == export.subject && !e.accounts.contains(*key) {
                                e.accounts.push((*key).clone());
                            }
                        }
                    }
                }
                imports.push((index, import_config(import, kind)));
            }
        }
        // Add imports one by one, keeping those the router accepts (the reference skips an
        // import it cannot add and keeps the others): each is checked after those kept
        // before it, as the router's check of the whole configuration would take them.
        let mut kept = vec![false; imports.len()];
        {
            let mut check = crate::router::ImportCheck::new(&configs);
            for ((index, import), keep) in imports.iter().zip(&mut kept) {
                if let Some(cfg) = configs.get(*index) {
                    *keep = check.add(&cfg.name, import).is_ok();
                }
            }
        }
        for ((index, import), keep) in imports.into_iter().zip(kept) {
            if keep && let Some(cfg) = configs.get_mut(index) {
                cfg.imports.push(import);
            }
        }
        configs
    }
}

/// `validateTrustedOperators`' check of `assert_server_version` against [`SERVER_VERSION`],
/// with the reference's texts.
fn check_server_version(op: &Claims<jwt::Operator>) -> Result<(), AuthConfigError> {
    let (sub, asserted) = (&op.data.sub, &op.nats.assert_server_version);
    let (major, minor, update) = jwt::parse_server_version(asserted).map_err(|e| {
        err(format!(
            "operator {sub} expects version {asserted} got error instead: {e}"
        ))
    })?;
    let (srv_major, srv_minor, srv_update) = SERVER_VERSION;
    let refused = |what: &str, want: i64, have: i64| {
        Err(err(format!(
            "operator {sub} expected {what} version {want} > server {what} version {have}"
        )))
    };
    if major != srv_major {
        return if major > srv_major {
            refused("major", major, srv_major)
        } else {
            Ok(())
        };
    }
    if minor != srv_minor {
        return if minor > srv_minor {
            refused("minor", minor, srv_minor)
        } else {
            Ok(())
        };
    }
    if update > srv_update {
        return refused("update", update, srv_update);
    }
    Ok(())
}

/// An export's `service_latency` as the router's latency tracking, when nats-server's
/// `TrackServiceExportWithSampling` takes it (`server/accounts.go`
/// `updateAccountClaimsWithRefresh`; the reference logs a refusal at debug level and serves
/// the export untracked): a service of singleton responses, a sampling of `"headers"` or 1 to
/// 100, and a results subject that is a valid publish subject outside the account's service
/// exports added so far. The system account the reference also needs is checked by the
/// router.
fn export_latency(e: &jwt::Export, exports: &[jwt::Export]) -> Option<crate::LatencyConfig> {
    let latency = e.service_latency.as_ref()?;
    let singleton = matches!(
        e.response_type,
        jwt::JwtResponseType::Unset | jwt::JwtResponseType::Singleton
    );
    let sampling = match latency.sampling {
        0 => crate::LatencySampling::Headers,
        n @ 1..=100 => crate::LatencySampling::Percent(u8::try_from(n).ok()?),
        _ => return None,
    };
    let results = latency.results.as_bytes();
    // The exports are added in order, each tracked right after it is added.
    let added = exports
        .iter()
        .position(|x| std::ptr::eq(x, e))
        .map_or(0, |i| i + 1);
    let loops_back = exports.iter().take(added).any(|x| {
        x.kind == ExportType::Service
            && crate::subject::is_subset_match(results, x.subject.as_bytes())
    });
    let valid = e.kind == ExportType::Service
        && singleton
        && crate::subject::is_valid_publish(results)
        && !loops_back;
    valid.then(|| crate::LatencyConfig {
        sampling,
        subject: latency.results.clone(),
    })
}

fn export_kind(kind: ExportType) -> Option<ExportKind> {
    match kind {
        ExportType::Stream => Some(ExportKind::Stream),
        ExportType::Service => Some(ExportKind::Service),
        ExportType::Unknown => None,
    }
}

/// An import of a JWT as the router's import (`server/accounts.go` `updateAccountClaimsWithRefresh`):
/// a stream's `to` is a prefix and `local_subject` a mapping; a service's `local_subject` is
/// what local clients publish to.
fn import_config(import: &jwt::Import, kind: ExportKind) -> ImportConfig {
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    match kind {
        ExportKind::Stream => ImportConfig {
            kind,
            account: import.account.clone(),
            subject: import.subject.clone(),
            to: non_empty(&import.local_subject),
            prefix: if import.local_subject.is_empty() {
                non_empty(&import.to)
            } else {
                None
            },
            share: false,
        },
        ExportKind::Service => {
            let (local, remote) = if import.local_subject.is_empty() {
                (
                    import.subject.clone(),
                    non_empty(&import.to).unwrap_or_else(|| import.subject.clone()),
                )
            } else {
                (import.local_subject.clone(), import.subject.clone())
            };
            ImportConfig {
                kind,
                account: import.account.clone(),
                subject: remote,
                to: Some(local),
                prefix: None,
                share: import.share,
            }
        }
    }
}

/// The activation check of `server/accounts.go` `checkActivation` and `validateImportToken`.
fn activation_valid(
    import: &jwt::Import,
    activation: Option<&Claims<jwt::Activation>>,
    export: &jwt::Export,
    exporter: &JwtAccount,
    importer: &str,
    now_unix: i64,
) -> bool {
    let Some(act) = activation else {
        return false;
    };
    if act.data.check_times(now_unix).is_err() || act.data.sub != importer {
        return false;
    }
    let exporter_key = &exporter.claims.data.sub;
    let issuer_ok = if act.nats.issuer_account.is_empty() {
        &act.data.iss == exporter_key
    } else {
        &act.nats.issuer_account == exporter_key && exporter.signers.contains_key(&act.data.iss)
    };
    if !issuer_ok || export_kind(act.nats.kind) != export_kind(export.kind) {
        return false;
    }
    if !crate::subject::is_subset_match(import.subject.as_bytes(), act.nats.subject.as_bytes()) {
        return false;
    }
    !jwt::is_revoked(&export.revocations, importer, act.data.iat)
}

fn compile_account(
    claims: Claims<jwt::Account>,
    token: &str,
    trusted: &HashSet<String>,
) -> JwtAccount {
    let mut signers = HashMap::new();
    for key in &claims.nats.signing_keys {
        match key {
            SigningKey::Plain(k) => {
                signers.insert(k.clone(), None);
            }
            SigningKey::Scoped { key, template, .. } => {
                signers.insert(key.clone(), Some(template.clone()));
            }
        }
    }
    signers.insert(claims.data.sub.clone(), None);
    let defaults = &claims.nats.default_permissions;
    let default_permissions = jwt_permissions(&UserPermissionLimits {
        publish: defaults.publish.clone(),
        subscribe: defaults.subscribe.clone(),
        resp: defaults.resp,
        ..UserPermissionLimits::default()
    })
    .map(|p| Arc::new(Permissions::new(&p)));
    let trusted = trusted.contains(&claims.data.iss);
    let valid = account_issues(&claims).is_empty();
    let activations = claims
        .nats
        .imports
        .iter()
        .map(|i| {
            (!i.token.is_empty())
                .then(|| jwt::decode_activation(&i.token).ok())
                .flatten()
        })
        .collect();
    JwtAccount {
        claims,
        signers,
        default_permissions,
        trusted,
        valid,
        token: Arc::from(token),
        activations,
    }
}

/// Go's `Subject.HasWildCards` (`jwt/v2/types.go`).
fn has_wildcards(subject: &str) -> bool {
    subject.ends_with(".>")
        || subject.contains(".*.")
        || subject.ends_with(".*")
        || subject.starts_with("*.")
        || subject == "*"
        || subject == ">"
}

/// Go's `Subject.IsContainedIn` (`jwt/v2/types.go`): every message on `subject` is also on
/// `other`.
fn is_contained_in(subject: &str, other: &str) -> bool {
    let mine: Vec<&str> = subject.split('.').collect();
    let theirs: Vec<&str> = other.split('.').collect();
    let last_is_full = theirs.last() == Some(&">");
    if (mine.len() > theirs.len() && !last_is_full) || mine.len() < theirs.len() {
        return false;
    }
    for (i, tok) in theirs.iter().enumerate() {
        if i == theirs.len() - 1 && *tok == ">" {
            return true;
        }
        if mine.get(i) != Some(tok) && *tok != "*" {
            return false;
        }
    }
    true
}

/// Whether a token is a `$<n>` reference of a renaming subject (Go's `strconv.Atoi` of the
/// rest: an optional sign, then decimal digits).
fn reference_index(token: &str) -> Option<i64> {
    let rest = token.strip_prefix('$').filter(|_| token.len() >= 2)?;
    rest.parse::<i64>().ok()
}

/// Go's `RenamingSubject.ToSubject`: references become `*`.
fn renaming_to_subject(subject: &str) -> String {
    if !subject.contains('$') {
        return subject.to_owned();
    }
    subject
        .split('.')
        .map(|t| if reference_index(t).is_some() { "*" } else { t })
        .collect::<Vec<_>>()
        .join(".")
}

/// Go's `Subject.Validate`.
fn subject_issues(subject: &str, issues: &mut Vec<String>) {
    if subject.is_empty() {
        issues.push("subject cannot be empty".to_owned());
    }
    if subject.contains(' ') {
        issues.push(format!(
            "subject {} cannot have spaces",
            go_quote(subject.as_bytes())
        ));
    }
}

/// Go's `RenamingSubject.Validate`: a `local_subject` against the import's `subject`.
fn renaming_issues(local: &str, from: &str, issues: &mut Vec<String>) {
    subject_issues(local, issues);
    if from.is_empty() {
        issues.push("subject cannot be empty".to_owned());
    }
    if local.contains(' ') {
        issues.push(format!(
            "subject {} cannot have spaces",
            go_quote(local.as_bytes())
        ));
    }
    let full = |s: &str| s == ">" || s.ends_with(".>");
    if full(local) != full(from) {
        issues.push("both, renaming subject and subject, need to end or not end in >".to_owned());
    }
    let from_count = if from == "*" {
        1
    } else {
        i64::try_from(from.split('.').filter(|t| *t == "*").count()).unwrap_or(i64::MAX)
    };
    let mut refs = 0i64;
    for tok in local.split('.') {
        if tok == "*" {
            refs += 1;
        }
        if let Some(idx) = reference_index(tok) {
            if idx > from_count {
                issues.push(format!(
                    "Reference ${idx} in \"{local}\" reference * in \"{from}\" that do not exist"
                ));
            } else {
                refs += 1;
            }
        }
    }
    if refs != from_count {
        issues.push("subject does not contain enough * or reference wildcards $[0-9]".to_owned());
    }
}

fn type_name(kind: ExportType) -> &'static str {
    match kind {
        ExportType::Unknown => "unknown",
        ExportType::Stream => "stream",
        ExportType::Service => "service",
    }
}

/// `Imports.Validate` and `Import.Validate` (`jwt/v2/imports.go`) for the account `account`.
/// Warnings (never blocking) go to `warnings` with the length `issues` had then, so that a
/// report can list both in the library's order.
fn import_issues(
    account: &str,
    imports: &[jwt::Import],
    issues: &mut Vec<String>,
    warnings: &mut Vec<(usize, String)>,
) {
    let mut services: Vec<String> = Vec::new();
    for import in imports {
        if import.kind == ExportType::Service {
            let sub = if !import.to.is_empty() {
                import.to.clone()
            } else if !import.local_subject.is_empty() {
                renaming_to_subject(&import.local_subject)
            } else {
                import.subject.clone()
            };
            // Go keeps a set of the subjects seen: each distinct one overlaps once, and one
            // seen before adds an issue naming the import's `to`.
            for k in &services {
                if is_contained_in(&sub, k) || is_contained_in(k, &sub) {
                    issues.push(format!(
                        "overlapping subject namespace for {} and {}",
                        go_quote(sub.as_bytes()),
                        go_quote(k.as_bytes())
                    ));
                }
            }
            if services.contains(&sub) {
                issues.push(format!(
                    "overlapping subject namespace for {}",
                    go_quote(import.to.as_bytes())
                ));
            } else {
                services.push(sub);
            }
        }
        let subject = &import.subject;
        if import.kind == ExportType::Unknown {
            issues.push("invalid import type: \"unknown\"".to_owned());
        }
        if import.account.is_empty() {
            issues.push("account to import from is not specified".to_owned());
        }
        // `GetTo` is `to`, whatever the type.
        if !import.to.is_empty() {
            warnings.push((
                issues.len(),
                "the field to has been deprecated (use LocalSubject instead)".to_owned(),
            ));
        }
        subject_issues(subject, issues);
        if !import.local_subject.is_empty() {
            renaming_issues(&import.local_subject, subject, issues);
            if !import.to.is_empty() {
                issues.push("Local Subject replaces To".to_owned());
            }
        }
        if import.share && import.kind != ExportType::Service {
            issues.push(format!(
                "sharing information (for latency tracking) is only valid for services: \"{subject}\""
            ));
        }
        if import.token.is_empty() {
            continue;
        }
        let Ok(act) = jwt::decode_activation(&import.token) else {
            issues.push(format!(
                "import \"{subject}\" contains an invalid activation token"
            ));
            continue;
        };
        if act.data.iss != import.account && act.nats.issuer_account != import.account {
            issues.push(format!(
                "activation token doesn't match account for import \"{subject}\""
            ));
        }
        if act.data.sub != account {
            issues.push(format!(
                "activation token doesn't match account it is being included in, \"{subject}\""
            ));
        }
        if act.nats.kind != import.kind {
            issues.push(format!(
                "mismatch between token import type {} and type of import {}",
                type_name(act.nats.kind),
                type_name(import.kind)
            ));
        }
        // `Activation.Validate` (the time checks are skipped here).
        if act.nats.kind == ExportType::Unknown {
            issues.push("invalid import type: \"unknown\"".to_owned());
        }
        subject_issues(&act.nats.subject, issues);
        let within = if import.kind == ExportType::Service && !import.to.is_empty() {
            &import.to
        } else {
            subject
        };
        if !is_contained_in(within, &act.nats.subject) {
            issues.push(format!(
                "activation token import subject \"{}\" doesn't match import \"{subject}\"",
                act.nats.subject
            ));
        }
    }
}

/// `Exports.Validate` and `Export.Validate` (`jwt/v2/exports.go`).
fn export_issues(exports: &[jwt::Export], issues: &mut Vec<String>) {
    use jwt::JwtResponseType as R;
    for e in exports {
        let service = e.kind == ExportType::Service;
        if e.kind == ExportType::Unknown {
            issues.push("invalid export type: \"unknown\"".to_owned());
        }
        if service && matches!(e.response_type, R::Invalid(_)) {
            issues.push(format!(
                "invalid response type for service: {}",
                go_quote(e.response_type.as_str().as_bytes())
            ));
        }
        if e.kind == ExportType::Stream && e.response_type != R::Unset {
            issues.push(format!(
                "invalid response type for stream: {}",
                go_quote(e.response_type.as_str().as_bytes())
            ));
        }
        if e.response_threshold < 0 {
            issues.push("negative response threshold is invalid".to_owned());
        }
        if e.response_threshold > 0 && !service {
            issues.push("response threshold only valid for services".to_owned());
        }
        subject_issues(&e.subject, issues);
        let position = e.account_token_position;
        if position > 0 {
            let tokens: Vec<&str> = e.subject.split('.').collect();
            if !has_wildcards(&e.subject) {
                issues.push(format!(
                    "Account Token Position can only be used with wildcard subjects: {}",
                    e.subject
                ));
            } else if let Some(tok) = usize::try_from(position - 1)
                .ok()
                .and_then(|i| tokens.get(i))
            {
                if *tok != "*" {
                    issues.push(format!(
                        "Account Token Position {position} matches '{tok}' but must match a * in: {}",
                        e.subject
                    ));
                }
            } else {
                issues.push(format!(
                    "Account Token Position {position} exceeds length of subject '{}'",
                    e.subject
                ));
            }
        }
    }
    // `isContainedIn`: one issue for each export subject that contains another of its kind
    // (a missing type counts as a stream, as in Go).
    for service in [true, false] {
        let subjects: Vec<&str> = exports
            .iter()
            .filter(|e| (e.kind == ExportType::Service) == service)
            .map(|e| e.subject.as_str())
            .collect();
        let mut seen: Vec<&str> = Vec::new();
        for (i, ns) in subjects.iter().enumerate() {
            for (j, s) in subjects.iter().enumerate() {
                if i != j && is_contained_in(ns, s) && !seen.contains(s) {
                    seen.push(s);
                    issues.push(format!(
                        "{} export subject \"{s}\" already exports \"{ns}\"",
                        if service { "service" } else { "stream" }
                    ));
                }
            }
        }
    }
}

/// The blocking issues of `AccountClaims.Validate` (`jwt/v2/account_claims.go`) that
/// nats-server's `verifyAccountClaims` refuses an account for (`vr.IsBlocking(true)`:
/// `account validation failed`; its users are then refused and its exports serve nobody).
/// Warnings (the deprecated `to`) never block. Checked: imports (type, exporter key, subject,
/// `local_subject`, `share`, the activation token), exports (type, response type and
/// threshold, subject, `account_token_position`, exports of a kind that contain each other),
/// `default_permissions` subjects, the operator limits (no more imports or exports than
/// `limits.imports` / `limits.exports` allow, -1 = unlimited, Go's zero value = none; no
/// wildcard export when exports are limited, unless `limits.wildcards`) and that every signing
/// key, plain or scoped, is an account public key.
pub(crate) fn account_issues(claims: &Claims<jwt::Account>) -> Vec<String> {
    account_validation(claims, &mut Vec::new())
}

/// What nats-server logs for a `resolver_preload` account at start-up and on reload
/// (`server/server.go` `checkResolvePreloads`): when `AccountClaims.Validate` finds a blocking
/// issue (the time checks included: `claim is expired`, `claim is not yet valid`), the lines
/// `Account [<key>] has validation issues:` and `  - <issue>` for every issue, warnings
/// included, in the library's order. Empty when the account is valid. `key` is the preload
/// map's key; a JWT that does not decode gives `Preloaded account [<key>] not valid`.
#[must_use]
pub fn preload_report(key: &str, token: &str, now_unix: i64) -> Vec<String> {
    let Ok(claims) = jwt::decode_account(token) else {
        return vec![format!("Preloaded account [{key}] not valid")];
    };
    let mut time = Vec::new();
    if claims.data.exp > 0 && now_unix > claims.data.exp {
        time.push("claim is expired".to_owned());
    }
    if claims.data.nbf > 0 && claims.data.nbf > now_unix {
        time.push("claim is not yet valid".to_owned());
    }
    let mut warnings = Vec::new();
    let issues = account_validation(&claims, &mut warnings);
    if time.is_empty() && issues.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![format!("Account [{key}] has validation issues:")];
    lines.extend(time.iter().map(|t| format!("  - {t}")));
    let mut pending = warnings.into_iter().peekable();
    for (i, issue) in issues.iter().enumerate() {
        while let Some((_, w)) = pending.next_if(|(at, _)| *at <= i) {
            lines.push(format!("  - {w}"));
        }
        lines.push(format!("  - {issue}"));
    }
    lines.extend(pending.map(|(_, w)| format!("  - {w}")));
    lines
}

/// The blocking issues of [`account_issues`], with the warnings beside them.
fn account_validation(
    claims: &Claims<jwt::Account>,
    warnings: &mut Vec<(usize, String)>,
) -> Vec<String> {
    let (nats, limits) = (&claims.nats, &claims.nats.limits);
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let mut issues = Vec::new();
    import_issues(&claims.data.sub, &nats.imports, &mut issues, warnings);
    export_issues(&nats.exports, &mut issues);
    let defaults = &nats.default_permissions;
    for s in defaults
        .subscribe
        .allow
        .iter()
        .chain(&defaults.subscribe.deny)
    {
        permission_issues(s, true, &mut issues);
    }
    for s in defaults.publish.allow.iter().chain(&defaults.publish.deny) {
        permission_issues(s, false, &mut issues);
    }
    // Go checks the imports twice (`Account.Validate`): once when the limits are not empty,
    // and again whenever they are limited, so an account over its limit gets the issue twice.
    let too_many = "the account contains more imports than allowed by the operator";
    if !limits.is_empty() && limits.imports >= 0 && count(nats.imports.len()) > limits.imports {
        issues.push(too_many.to_owned());
    }
    if limits.imports != -1 && count(nats.imports.len()) > limits.imports {
        issues.push(too_many.to_owned());
    }
    if limits.exports != -1 {
        if count(nats.exports.len()) > limits.exports {
            issues
                .push("the account contains more exports than allowed by the operator".to_owned());
        }
        // One issue for each wildcard export, as Go's loop adds them.
        if !limits.wildcards {
            for _ in nats.exports.iter().filter(|e| has_wildcards(&e.subject)) {
                issues.push(
                    "the account contains wildcard exports that are not allowed by the operator"
                        .to_owned(),
                );
            }
        }
    }
    for key in &nats.signing_keys {
        if !jwt::is_public_key(key.key(), nkeys::KeyPairType::Account) {
            issues.push(match key {
                SigningKey::Plain(k) => format!("\"{k}\" is not a valid account signing key"),
                SigningKey::Scoped { key, .. } => format!("{key} is not an account public key"),
            });
        }
    }
    issues
}

/// `buildInternalNkeyUser`: permissions only for the directions the JWT restricts.
fn jwt_permissions(limits: &UserPermissionLimits) -> Option<PermissionsConfig> {
    let direction = |p: &jwt::Permission| {
        (!p.allow.is_empty() || !p.deny.is_empty()).then(|| SubjectPermission {
            allow: (!p.allow.is_empty()).then(|| p.allow.clone()),
            deny: p.deny.clone(),
        })
    };
    let publish = direction(&limits.publish);
    let subscribe = direction(&limits.subscribe);
    let allow_responses = limits.resp.map(|r| ResponsePermission {
        max_msgs: r.max,
        expires: u64::try_from(r.ttl).ok().map(Duration::from_nanos),
    });
    if publish.is_none() && subscribe.is_none() && allow_responses.is_none() {
        return None;
    }
    Some(PermissionsConfig {
        publish,
        subscribe,
        allow_responses,
    })
}

/// A JWT limit: -1 (`jwt.NoLimit`) is unlimited, any other value a limit (negative ones
/// allow nothing, as Go's signed comparisons do).
fn limit(value: i64) -> Option<usize> {
    (value != -1).then(|| usize::try_from(value).unwrap_or(0))
}

/// The user's limit combined with the account's as `applyAccountLimits` (`minLimit`) does:
/// the smaller one wins, unlimited yields.
fn min_limit(user: i64, account: i64) -> Option<usize> {
    match (limit(user), limit(account)) {
        (Some(u), Some(a)) => Some(u.min(a)),
        (u, a) => u.or(a),
    }
}

/// `convertAllowedConnectionTypes` for a JWT: unknown names are dropped, unless nothing known
/// remains.
fn allowed_types(names: &[String]) -> Result<Vec<ConnectionType>, Refusal> {
    let known: Vec<ConnectionType> = names
        .iter()
        .filter_map(|n| parse_connection_type(n).ok())
        .collect();
    if known.is_empty() && !names.is_empty() {
        return Err("Connection type not allowed".into());
    }
    Ok(known)
}

/// `validateSrc`: no list allows everything; otherwise the peer must be in one of the CIDRs
/// (a malformed entry refuses).
fn src_allows(cidrs: &[String], remote: Option<IpAddr>) -> bool {
    if cidrs.is_empty() {
        return true;
    }
    let Some(ip) = remote else {
        return false;
    };
    for cidr in cidrs {
        match parse_cidr(cidr) {
            None => return false,
            Some((net, bits)) if cidr_contains(net, bits, ip) => return true,
            Some(_) => {}
        }
    }
    false
}

fn parse_cidr(text: &str) -> Option<(IpAddr, u32)> {
    let (addr, bits) = text.trim().split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) || bits.len() > 3 {
        return None;
    }
    let bits: u32 = bits.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((addr, bits))
}

fn cidr_contains(net: IpAddr, bits: u32, ip: IpAddr) -> bool {
    let ip = match (net, ip) {
        (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        _ => ip,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// Go's `time.Parse("15:04:05", text)` as nanoseconds of the day: the hour in one or two
/// digits (0-23), minutes and seconds in exactly two (0-59), then optionally a fractional
/// second that the layout does not name, which Go accepts anyway: `.` or `,` and at least one
/// digit, any number of them (only the first nine count). Anything else after the seconds is
/// refused (`extra text`).
fn parse_clock(text: &str) -> Option<i64> {
    let (clock, fraction) = match text.find(['.', ',']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let mut parts = clock.split(':');
    let mut field = |widths: &[usize], max: i64| -> Option<i64> {
        let p = parts.next()?;
        if !widths.contains(&p.len()) || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let v: i64 = p.parse().ok()?;
        (v <= max).then_some(v)
    };
    let (h, m, s) = (field(&[1, 2], 23)?, field(&[2], 59)?, field(&[2], 59)?);
    if parts.next().is_some() {
        return None;
    }
    let mut nanos = 0;
    if let Some(digits) = fraction {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut scale = 100_000_000;
        for d in digits.bytes().take(9) {
            nanos += i64::from(d - b'0') * scale;
            scale /= 10;
        }
    }
    Some((h * 3600 + m * 60 + s) * 1_000_000_000 + nanos)
}

/// Go's `checkPermission` for one permission subject (`jwt/v2/types.go`): a subject, or (for
/// subscriptions) a subject and a queue separated by one space.
fn permission_issues(subject: &str, permit_queue: bool, issues: &mut Vec<String>) {
    let mut check = |s: &str| {
        if s.is_empty() {
            issues.push("subject cannot be empty".to_owned());
        }
        if s.contains(' ') {
            issues.push(format!(
                "subject {} cannot have spaces",
                go_quote(s.as_bytes())
            ));
        }
    };
    let tokens: Vec<&str> = subject.split(' ').collect();
    match tokens.as_slice() {
        [one] => check(one),
        [subject_part, queue] => {
            check(subject_part);
            check(queue);
            if !permit_queue {
                issues.push(format!(
                    "Permission Subject \"{subject}\" is not allowed to contain queue"
                ));
            }
        }
        _ => issues.push(format!(
            "Permission Subject \"{subject}\" contains too many spaces"
        )),
    }
}

/// The blocking issues of `UserClaims.Validate` (`jwt/v2/user_claims.go`, `types.go`) that
/// nats-server checks at CONNECT, in the library's order and with its texts: expiry and
/// not-before, permission subjects, `src` CIDRs, `times` clocks, `times_location`, and
/// `issuer_account`.
fn user_issues(
    user: &Claims<jwt::User>,
    now_unix: i64,
    zones: Option<&dyn TimeZones>,
) -> Vec<String> {
    let mut issues = Vec::new();
    if user.data.exp > 0 && now_unix > user.data.exp {
        issues.push("claim is expired".to_owned());
    }
    if user.data.nbf > 0 && user.data.nbf > now_unix {
        issues.push("claim is not yet valid".to_owned());
    }
    let limits = &user.nats.limits;
    for s in limits.subscribe.allow.iter().chain(&limits.subscribe.deny) {
        permission_issues(s, true, &mut issues);
    }
    for s in limits.publish.allow.iter().chain(&limits.publish.deny) {
        permission_issues(s, false, &mut issues);
    }
    for cidr in &limits.src.0 {
        if parse_cidr(cidr).is_none() {
            issues.push(format!(
                "invalid cidr {} in user src limits",
                go_quote(cidr.as_bytes())
            ));
        }
    }
    for range in &limits.times {
        for (value, name) in [(&range.start, "start"), (&range.end, "end")] {
            if value.is_empty() {
                issues.push(format!(
                    "time ranges {name} must contain a{} {name}",
                    if name == "end" { "n" } else { "" }
                ));
            } else if parse_clock(value).is_none() {
                issues.push(format!(
                    "{name} in time range is invalid {}",
                    go_quote(value.as_bytes())
                ));
            }
        }
    }
    let zone = limits.times_location.as_str();
    if !zone.is_empty()
        && zones
            .unwrap_or(&Utc)
            .local_seconds(zone, now_unix)
            .is_none()
    {
        issues.push(format!(
            "could not parse iana time zone by name: unknown time zone {zone}"
        ));
    }
    let issuer_account = &user.nats.issuer_account;
    if !issuer_account.is_empty()
        && !jwt::is_public_key(issuer_account, nkeys::KeyPairType::Account)
    {
        issues.push("account_id is not an account public key".to_owned());
    }
    issues
}

/// UTC, the only zone known without a [`TimeZones`].
struct Utc;

impl TimeZones for Utc {
    fn local_seconds(&self, zone: &str, unix: i64) -> Option<i64> {
        (zone.is_empty() || zone.eq_ignore_ascii_case("UTC")).then_some(unix)
    }

    fn unix_seconds(&self, zone: &str, local: i64) -> Option<i64> {
        self.local_seconds(zone, local)
    }
}

/// `validateTimes`: `Some(end)` (Unix seconds) when `now` is inside a window, `Some` of `None`
/// when there are no windows, `None` when outside every window (or the zone is unknown). A
/// window is today's wall-clock `start`..`end` in the zone; one whose end is before its start
/// ends the next day, and, as in the reference, only today's start counts.
fn connect_window(
    limits: &UserPermissionLimits,
    now_unix: i64,
    zones: Option<&dyn TimeZones>,
) -> Option<Option<i64>> {
    if limits.times.is_empty() {
        return Some(None);
    }
    let zones = zones.unwrap_or(&Utc);
    let zone = limits.times_location.as_str();
    let now_local = zones.local_seconds(zone, now_unix)?;
    let day_start = now_local - now_local.rem_euclid(86_400);
    for range in &limits.times {
        let (start_ns, end_ns) = (parse_clock(&range.start)?, parse_clock(&range.end)?);
        // `now` is whole seconds: a fractional start has begun once its second has passed
        // (floor), a fractional end is still ahead during its second (ceiling).
        let start = start_ns.div_euclid(1_000_000_000);
        let end = (end_ns + 999_999_999).div_euclid(1_000_000_000);
        let end_day = if start_ns > end_ns {
            day_start + 86_400
        } else {
            day_start
        };
        let start_at = zones.unix_seconds(zone, day_start + start)?;
        if start_at < now_unix {
            let end_at = zones.unix_seconds(zone, end_day + end)?;
            if end_at > now_unix {
                return Some(Some(end_at));
            }
        }
    }
    None
}

/// `processUserPermissionsTemplate`.
fn apply_template(
    template: &UserPermissionLimits,
    user: &Claims<jwt::User>,
    account: &JwtAccount,
) -> Option<UserPermissionLimits> {
    let mut lim = template.clone();
    let sub_allow_was = !lim.subscribe.allow.is_empty();
    let pub_allow_was = !lim.publish.allow.is_empty();
    lim.subscribe.allow = expand(&lim.subscribe.allow, false, user, account)?;
    lim.subscribe.deny = expand(&lim.subscribe.deny, true, user, account)?;
    lim.publish.allow = expand(&lim.publish.allow, false, user, account)?;
    lim.publish.deny = expand(&lim.publish.deny, true, user, account)?;
    if sub_allow_was && lim.subscribe.allow.is_empty() {
        lim.subscribe.deny.push(">".to_owned());
    }
    if pub_allow_was && lim.publish.allow.is_empty() {
        lim.publish.deny.push(">".to_owned());
    }
    Some(lim)
}

fn is_template(token: &str) -> bool {
    token.starts_with("{{") && token.ends_with("}}") && token.len() >= 4
}

/// One token's values: a fixed text, or the values of a tag template.
enum Piece {
    Fixed(String),
    Tags(Vec<String>),
}

fn tag_values(tags: &[String], name: &str) -> Vec<String> {
    let prefix = format!("{}:", name.to_lowercase());
    tags.iter()
        .filter_map(|t| t.strip_prefix(prefix.as_str()).map(str::to_owned))
        .collect()
}

fn expand(
    list: &[String],
    fail_on_bad: bool,
    user: &Claims<jwt::User>,
    account: &JwtAccount,
) -> Option<Vec<String>> {
    if !list.iter().any(|e| e.split('.').any(is_template)) {
        return Some(list.to_vec());
    }
    let mut out = Vec::new();
    for entry in list {
        let mut pieces = Vec::new();
        for token in entry.split('.') {
            if !is_template(token) {
                pieces.push(Piece::Fixed(token.to_owned()));
                continue;
            }
            let op = token
                .get(2..token.len() - 2)
                .unwrap_or_default()
                .to_lowercase();
            let piece = match op.as_str() {
                "name()" => Piece::Fixed(user.data.name.clone()),
                "subject()" => Piece::Fixed(user.data.sub.clone()),
                "account-name()" => Piece::Fixed(account.claims.data.name.clone()),
                "account-subject()" => Piece::Fixed(user.nats.issuer_account.clone()),
                _ if op.starts_with("account-tag(") && op.ends_with(')') => {
                    let name = op.get(12..op.len() - 1).unwrap_or_default();
                    let values = tag_values(&account.claims.nats.tags, name);
                    if values.is_empty() {
                        Piece::Fixed(String::new())
                    } else {
                        Piece::Tags(values)
                    }
                }
                _ if op.starts_with("tag(") && op.ends_with(')') => {
                    let name = op.get(4..op.len() - 1).unwrap_or_default();
                    let values = tag_values(&user.nats.tags, name);
                    if values.is_empty() {
                        Piece::Fixed(String::new())
                    } else {
                        Piece::Tags(values)
                    }
                }
                // An unknown macro makes the subject invalid on purpose.
                _ => Piece::Fixed(" ".to_owned()),
            };
            pieces.push(piece);
        }
        let mut subjects = vec![String::new()];
        for (i, piece) in pieces.iter().enumerate() {
            let values: Vec<&str> = match piece {
                Piece::Fixed(text) => vec![text.as_str()],
                Piece::Tags(values) => values.iter().map(String::as_str).collect(),
            };
            if subjects.len().saturating_mul(values.len()) > MAX_TEMPLATE_SUBJECTS {
                return None;
            }
            let mut next = Vec::with_capacity(subjects.len() * values.len());
            for prefix in &subjects {
                for v in &values {
                    let mut s = prefix.clone();
                    if i > 0 {
                        s.push('.');
                    }
                    s.push_str(v);
                    next.push(s);
                }
            }
            subjects = next;
        }
        for subject in subjects {
            // Go's `IsValidSubject`: no empty tokens, `>` last, no white space.
            let valid = crate::subject::is_valid_subscription(subject.as_bytes())
                && !subject.contains([' ', '\t', '\n', '\r', '\u{c}']);
            if valid {
                out.push(subject);
            } else if fail_on_bad {
                return None;
            }
        }
        if out.len() > MAX_TEMPLATE_SUBJECTS {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        text.parse().ok()
    }

    #[test]
    fn src_cidrs() {
        assert!(src_allows(&[], None));
        assert!(!src_allows(&["10.0.0.0/8".into()], None));
        assert!(src_allows(&["10.0.0.0/8".into()], ip("10.200.1.2")));
        assert!(!src_allows(&["10.0.0.0/8".into()], ip("11.0.0.1")));
        assert!(src_allows(&["1.2.3.4/32".into()], ip("1.2.3.4")));
        assert!(src_allows(&["0.0.0.0/0".into()], ip("203.0.113.9")));
        // An IPv4-mapped IPv6 peer matches an IPv4 network, as Go's net.IPNet.Contains does.
        assert!(src_allows(&["127.0.0.0/8".into()], ip("::ffff:127.0.0.1")));
        assert!(src_allows(&["2001:db8::/32".into()], ip("2001:db8::1")));
        assert!(!src_allows(&["2001:db8::/32".into()], ip("2001:db9::1")));
        // A malformed entry refuses, even when a later one would match.
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0.0/x",
            "nope/8",
            "10.0.0.0/-1",
        ] {
            assert!(
                !src_allows(&[bad.into(), "0.0.0.0/0".into()], ip("10.0.0.1")),
                "{bad}"
            );
        }
    }

    fn times(ranges: &[(&str, &str)], location: &str) -> UserPermissionLimits {
        UserPermissionLimits {
            times: ranges
                .iter()
                .map(|(s, e)| jwt::TimeRange {
                    start: (*s).into(),
                    end: (*e).into(),
                })
                .collect(),
            times_location: location.into(),
            ..UserPermissionLimits::default()
        }
    }

    #[test]
    fn connect_times_in_utc() {
        // 2027-01-15 10:30:00 UTC.
        let day = 1_800_000_000 - 1_800_000_000 % 86_400;
        let now = day + 10 * 3600 + 30 * 60;
        assert_eq!(
            connect_window(&UserPermissionLimits::default(), now, None),
            Some(None)
        );
        let inside = times(&[("09:00:00", "11:00:00")], "");
        assert_eq!(
            connect_window(&inside, now, None),
            Some(Some(day + 11 * 3600))
        );
        assert_eq!(
            connect_window(&times(&[("11:00:00", "12:00:00")], "UTC"), now, None),
            None
        );
        // Overnight windows end the next day; only today's start counts (as the reference).
        let overnight = times(&[("22:00:00", "02:00:00")], "");
        assert_eq!(
            connect_window(&overnight, day + 23 * 3600, None),
            Some(Some(day + 86_400 + 2 * 3600))
        );
        assert_eq!(connect_window(&overnight, day + 3600, None), None);
        // The second window matches.
        let two = times(&[("01:00:00", "02:00:00"), ("10:00:00", "10:45:00")], "");
        assert_eq!(
            connect_window(&two, now, None),
            Some(Some(day + 10 * 3600 + 45 * 60))
        );
        // Unknown zones and malformed clocks refuse.
        assert_eq!(
            connect_window(
                &times(&[("09:00:00", "11:00:00")], "Europe/Paris"),
                now,
                None
            ),
            None
        );
        assert_eq!(
            connect_window(&times(&[("9:00", "11:00:00")], ""), now, None),
            None
        );
        assert_eq!(
            connect_window(&times(&[("24:00:00", "11:00:00")], ""), now, None),
            None
        );
    }

    /// Fixed-offset zones named `+HH` / `-HH`, for the local-time arithmetic.
    struct Fixed;

    impl Fixed {
        fn offset(zone: &str) -> Option<i64> {
            let hours: i64 = zone.parse().ok()?;
            Some(hours * 3600)
        }
    }

    impl TimeZones for Fixed {
        fn local_seconds(&self, zone: &str, unix: i64) -> Option<i64> {
            Some(unix + Self::offset(zone)?)
        }

        fn unix_seconds(&self, zone: &str, local: i64) -> Option<i64> {
            Some(local - Self::offset(zone)?)
        }
    }

    #[test]
    fn connect_times_in_a_named_zone() {
        let day = 1_800_000_000 - 1_800_000_000 % 86_400;
        // 10:30 UTC is 12:30 at +02.
        let now = day + 10 * 3600 + 30 * 60;
        let z: Option<&dyn TimeZones> = Some(&Fixed);
        assert_eq!(
            connect_window(&times(&[("12:00:00", "13:00:00")], "+2"), now, z),
            Some(Some(day + 11 * 3600))
        );
        // The same window read as UTC would hold 10:30; at +02 it is 08:00-09:00 UTC.
        assert_eq!(
            connect_window(&times(&[("10:00:00", "11:00:00")], "+2"), now, z),
            None
        );
        // 03:00 UTC is 22:00 of the day before at -05: the local day counts.
        let early = day + 3 * 3600;
        assert_eq!(
            connect_window(&times(&[("21:00:00", "23:00:00")], "-5"), early, z),
            Some(Some(day + 4 * 3600))
        );
        // An overnight window at -05 that started at 20:00 local ends at 01:00 local.
        assert_eq!(
            connect_window(&times(&[("20:00:00", "01:00:00")], "-5"), early, z),
            Some(Some(day + 6 * 3600))
        );
        // A zone the source does not know refuses.
        assert_eq!(
            connect_window(&times(&[("00:00:00", "23:59:59")], "Mars/Olympus"), now, z),
            None
        );
    }

    #[test]
    fn clocks_parse_as_go_time_parse() {
        let sec = 1_000_000_000;
        for (text, want) in [
            ("09:00:00", Some(9 * 3600 * sec)),
            ("9:00:00", Some(9 * 3600 * sec)),
            ("23:59:59", Some(86_399 * sec)),
            // A fractional second the layout does not name: `.` or `,`, one or more digits,
            // only the first nine counting.
            ("10:00:00.5", Some(36_000 * sec + 500_000_000)),
            ("10:00:00,25", Some(36_000 * sec + 250_000_000)),
            ("10:00:00.1234567899", Some(36_000 * sec + 123_456_789)),
            ("10:00:00.", None),
            ("10:00:00.x", None),
            ("10:00:00.5 ", None),
            ("10:00:00.5.5", None),
            ("10.5:00:00", None),
            ("10:00.5:00", None),
            ("24:00:00", None),
            ("10:60:00", None),
            ("10:00:60", None),
            ("10:0:00", None),
            ("100:00:00", None),
            ("10:00", None),
            ("10:00:00:00", None),
            ("", None),
        ] {
            assert_eq!(parse_clock(text), want, "{text:?}");
        }
        // A fractional window: started once its second passed, open through its last second.
        let day = 1_800_000_000 - 1_800_000_000 % 86_400;
        let window = times(&[("10:00:00.5", "10:00:02.5")], "");
        assert_eq!(connect_window(&window, day + 36_000, None), None);
        assert_eq!(
            connect_window(&window, day + 36_001, None),
            Some(Some(day + 36_003))
        );
        assert_eq!(
            connect_window(&window, day + 36_002, None),
            Some(Some(day + 36_003))
        );
        assert_eq!(connect_window(&window, day + 36_003, None), None);
    }

    fn issues_of(nats: &str) -> Vec<String> {
        use crate::auth::jwt::tests::{claims, key};
        let op = key(nkeys::KeyPairType::Operator, 1);
        let acc = key(nkeys::KeyPairType::Account, 2);
        let token = jwt::encode(
            &claims(&op.public_key(), &acc.public_key(), "account", nats),
            &op,
        )
        .unwrap();
        account_issues(&jwt::decode_account(&token).unwrap())
    }

    fn activation(iss: &nkeys::KeyPair, sub: &str, subject: &str, kind: &str) -> String {
        use crate::auth::jwt::tests::claims;
        jwt::encode(
            &claims(
                &iss.public_key(),
                sub,
                "activation",
                &format!(r#","subject":"{subject}","kind":"{kind}""#),
            ),
            iss,
        )
        .unwrap()
    }

    const UNLIMITED: &str = r#","limits":{"subs":-1,"data":-1,"payload":-1,"imports":-1,"exports":-1,"wildcards":true,"conn":-1,"leaf":-1}"#;

    #[test]
    fn account_validation_follows_the_library() {
        use crate::auth::jwt::tests::key;
        let exporter = key(nkeys::KeyPairType::Account, 3);
        let ex = exporter.public_key();
        let me = key(nkeys::KeyPairType::Account, 2).public_key();
        let check = |body: String, want: &[&str]| {
            assert_eq!(issues_of(&format!("{body}{UNLIMITED}")), want, "{body}");
        };
        check(String::new(), &[]);
        check(
            format!(r#","imports":[{{"subject":"a","account":"{ex}","type":"stream","to":"b"}}]"#),
            &[],
        );
        // A type that is neither stream nor service does not decode (`unknown export type
        // "strem"`); a missing one is unknown.
        let acc = key(nkeys::KeyPairType::Account, 2);
        let op = key(nkeys::KeyPairType::Operator, 1);
        let strem = jwt::encode(
            &jwt::tests::claims(
                &op.public_key(),
                &acc.public_key(),
                "account",
                r#","imports":[{"subject":"a","account":"","type":"strem"}]"#,
            ),
            &op,
        )
        .unwrap();
        assert_eq!(
            jwt::decode_account(&strem).unwrap_err().to_string(),
            "unknown export type \"strem\""
        );
        check(
            r#","imports":[{"subject":"a b","account":""}]"#.to_owned(),
            &[
                "invalid import type: \"unknown\"",
                "account to import from is not specified",
                "subject \"a b\" cannot have spaces",
            ],
        );
        check(
            format!(
                r#","imports":[{{"subject":"a.*","account":"{ex}","type":"stream","local_subject":"b.>","share":true}}]"#
            ),
            &[
                "both, renaming subject and subject, need to end or not end in >",
                "subject does not contain enough * or reference wildcards $[0-9]",
                "sharing information (for latency tracking) is only valid for services: \"a.*\"",
            ],
        );
        check(
            format!(
                r#","imports":[{{"subject":"a.*","account":"{ex}","type":"service","local_subject":"b.$2","to":"c"}}]"#
            ),
            &[
                "Reference $2 in \"b.$2\" reference * in \"a.*\" that do not exist",
                "subject does not contain enough * or reference wildcards $[0-9]",
                "Local Subject replaces To",
            ],
        );
        check(
            format!(
                r#","imports":[{{"subject":"a.>","account":"{ex}","type":"service"}},{{"subject":"a.b","account":"{ex}","type":"service"}}]"#
            ),
            &["overlapping subject namespace for \"a.b\" and \"a.>\""],
        );
        // Streams may overlap.
        check(
            format!(
                r#","imports":[{{"subject":"a.>","account":"{ex}","type":"stream"}},{{"subject":"a.b","account":"{ex}","type":"stream"}}]"#
            ),
            &[],
        );
        let good = activation(&exporter, &me, "a.>", "stream");
        check(
            format!(
                r#","imports":[{{"subject":"a.b","account":"{ex}","type":"stream","token":"{good}"}}]"#
            ),
            &[],
        );
        check(
            format!(
                r#","imports":[{{"subject":"a.b","account":"{ex}","type":"stream","token":"nope"}}]"#
            ),
            &["import \"a.b\" contains an invalid activation token"],
        );
        let other = key(nkeys::KeyPairType::Account, 4);
        let wrong = activation(&other, &other.public_key(), "x", "service");
        check(
            format!(
                r#","imports":[{{"subject":"a.b","account":"{ex}","type":"stream","token":"{wrong}"}}]"#
            ),
            &[
                "activation token doesn't match account for import \"a.b\"",
                "activation token doesn't match account it is being included in, \"a.b\"",
                "mismatch between token import type service and type of import stream",
                "activation token import subject \"x\" doesn't match import \"a.b\"",
            ],
        );
        check(
            r#","exports":[{"subject":"","type":"stream","response_type":"Singleton","response_threshold":5},{"subject":"s","type":"service","response_type":"Many","response_threshold":-1}]"#.to_owned(),
            &[
                "invalid response type for stream: \"Singleton\"",
                "response threshold only valid for services",
                "subject cannot be empty",
                "invalid response type for service: \"Many\"",
                "negative response threshold is invalid",
            ],
        );
        check(
            r#","exports":[{"subject":"a","type":"stream","account_token_position":1},{"subject":"b.*","type":"service","account_token_position":3},{"subject":"c.*","type":"service","account_token_position":1}]"#.to_owned(),
            &[
                "Account Token Position can only be used with wildcard subjects: a",
                "Account Token Position 3 exceeds length of subject 'b.*'",
                "Account Token Position 1 matches 'c' but must match a * in: c.*",
            ],
        );
        check(
            r#","exports":[{"subject":"a.*","type":"stream","account_token_position":2},{"subject":"a.b","type":"stream"},{"subject":"a.b","type":"service"}]"#.to_owned(),
            &["stream export subject \"a.*\" already exports \"a.b\""],
        );
        check(
            r#","exports":[{"subject":"a","type":"service"},{"subject":"a","type":"service"}]"#
                .to_owned(),
            &["service export subject \"a\" already exports \"a\""],
        );
        check(
            r#","exports":[{"subject":"a"}]"#.to_owned(),
            &["invalid export type: \"unknown\""],
        );
        check(
            r#","default_permissions":{"pub":{"allow":["a q"]},"sub":{"deny":["a q"]}}"#.to_owned(),
            &["Permission Subject \"a q\" is not allowed to contain queue"],
        );
        let user = key(nkeys::KeyPairType::User, 5).public_key();
        check(
            format!(
                r#","signing_keys":["{ex}","{user}",{{"kind":"user_scope","key":"{user}","role":"r","template":{{}}}}]"#
            ),
            &[
                &format!("\"{user}\" is not a valid account signing key"),
                &format!("{user} is not an account public key"),
            ],
        );
    }

    #[test]
    fn preload_reports_list_every_issue_of_a_blocked_account() {
        use crate::auth::jwt::tests::{claims, key};
        let op = key(nkeys::KeyPairType::Operator, 1);
        let acc = key(nkeys::KeyPairType::Account, 2).public_key();
        let ex = key(nkeys::KeyPairType::Account, 3).public_key();
        let sign = |extra: &str, nats: &str| {
            let body = claims(
                &op.public_key(),
                &acc,
                "account",
                &format!("{nats}{UNLIMITED}"),
            )
            .replacen(r#""jti":"X""#, &format!(r#""jti":"X"{extra}"#), 1);
            jwt::encode(&body, &op).unwrap()
        };
        assert_eq!(
            preload_report("K", "junk", 0),
            ["Preloaded account [K] not valid"]
        );
        // A warning alone does not block, so nothing is logged.
        let warned = sign(
            "",
            &format!(r#","imports":[{{"subject":"a","account":"{ex}","type":"stream","to":"b"}}]"#),
        );
        assert!(preload_report("K", &warned, 2000).is_empty());
        let blocked = sign(
            r#","exp":1500"#,
            &format!(
                r#","imports":[{{"subject":"a","account":"","type":"stream","to":"b"}},{{"subject":"c d","account":"{ex}","type":"stream"}}]"#
            ),
        );
        assert_eq!(
            preload_report("K", &blocked, 2000),
            [
                "Account [K] has validation issues:",
                "  - claim is expired",
                "  - account to import from is not specified",
                "  - the field to has been deprecated (use LocalSubject instead)",
                "  - subject \"c d\" cannot have spaces",
            ]
        );
        // Expired but otherwise valid: blocking too (`IsBlocking(true)`).
        assert_eq!(
            preload_report("K", &sign(r#","exp":1500"#, ""), 2000),
            ["Account [K] has validation issues:", "  - claim is expired"]
        );
    }

    /// `service_latency` of a JWT export is taken as `TrackServiceExportWithSampling` takes
    /// it, and dropped where the reference logs the refusal and serves the export untracked.
    #[test]
    fn jwt_service_latency_is_taken_as_the_reference_takes_it() {
        let exports = |json: &str| -> Vec<jwt::Export> { serde_json::from_str(json).unwrap() };
        let check = |json: &str, want: &[Option<(crate::LatencySampling, &str)>]| {
            let all = exports(json);
            let got: Vec<Option<(crate::LatencySampling, String)>> = all
                .iter()
                .map(|e| export_latency(e, &all).map(|l| (l.sampling, l.subject)))
                .collect();
            let want: Vec<Option<(crate::LatencySampling, String)>> = want
                .iter()
                .map(|w| w.map(|(s, subject)| (s, subject.to_owned())))
                .collect();
            assert_eq!(got, want, "{json}");
        };
        use crate::LatencySampling::{Headers, Percent};
        check(
            r#"[{"subject":"a","type":"service","service_latency":{"sampling":50,"results":"lat.a"}},
                {"subject":"b","type":"service","service_latency":{"sampling":"HEADERS","results":"lat.b"}},
                {"subject":"c","type":"service","service_latency":{"results":"lat.c"}},
                {"subject":"d","type":"service","response_type":"Singleton","service_latency":{"sampling":100,"results":"lat.d"}}]"#,
            &[
                Some((Percent(50), "lat.a")),
                Some((Headers, "lat.b")),
                Some((Headers, "lat.c")),
                Some((Percent(100), "lat.d")),
            ],
        );
        check(
            r#"[{"subject":"a","type":"service","service_latency":{"sampling":101,"results":"lat.a"}},
                {"subject":"b","type":"service","service_latency":{"sampling":-1,"results":"lat.b"}},
                {"subject":"c","type":"service","service_latency":{"sampling":5,"results":"lat.*"}},
                {"subject":"d.>","type":"service","service_latency":{"sampling":5,"results":"d.x"}},
                {"subject":"e","type":"service","response_type":"Stream","service_latency":{"sampling":5,"results":"lat.e"}},
                {"subject":"f","type":"stream","service_latency":{"sampling":5,"results":"lat.f"}},
                {"subject":"g","type":"service","service_latency":{"sampling":5,"results":"a b"}},
                {"subject":"h","type":"service"}]"#,
            &[None, None, None, None, None, None, None, None],
        );
        // Only the service exports added before it (and itself) count.
        check(
            r#"[{"subject":"a","type":"service","service_latency":{"sampling":5,"results":"b.x"}},
                {"subject":"b.>","type":"service","service_latency":{"sampling":5,"results":"b.y"}}]"#,
            &[Some((Percent(5), "b.x")), None],
        );
        // A sampling that is neither an integer nor "headers" makes the JWT undecodable.
        assert!(
            serde_json::from_str::<Vec<jwt::Export>>(
                r#"[{"subject":"a","type":"service","service_latency":{"sampling":"50","results":"x"}}]"#
            )
            .is_err()
        );
    }

    #[test]
    fn limits_follow_go() {
        assert_eq!(limit(-1), None);
        assert_eq!(limit(0), Some(0));
        assert_eq!(limit(-7), Some(0));
        assert_eq!(min_limit(-1, -1), None);
        assert_eq!(min_limit(5, -1), Some(5));
        assert_eq!(min_limit(-1, 3), Some(3));
        assert_eq!(min_limit(5, 3), Some(3));
        assert_eq!(min_limit(0, 3), Some(0));
    }

    fn user_with_tags(tags: &[&str]) -> Claims<jwt::User> {
        Claims {
            data: jwt::ClaimsData {
                name: "alice".into(),
                sub: "UALICE".into(),
                ..jwt::ClaimsData::default()
            },
            nats: jwt::User {
                tags: tags.iter().map(|t| (*t).to_owned()).collect(),
                issuer_account: "AACC".into(),
                ..jwt::User::default()
            },
        }
    }

    fn account() -> JwtAccount {
        JwtAccount {
            claims: Claims {
                data: jwt::ClaimsData {
                    name: "acme".into(),
                    ..jwt::ClaimsData::default()
                },
                nats: jwt::Account {
                    tags: vec!["dept:ops".into()],
                    ..jwt::Account::default()
                },
            },
            signers: HashMap::new(),
            default_permissions: None,
            trusted: true,
            valid: true,
            token: Arc::from(""),
            activations: Vec::new(),
        }
    }

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn templates_expand_as_the_reference() {
        let user = user_with_tags(&["room:a", "room:b", "other:x"]);
        let acc = account();
        let got = expand(
            &list(&[
                "u.{{name()}}.>",
                "id.{{subject()}}",
                "{{account-name()}}.{{account-subject()}}",
                "r.{{tag(room)}}.in",
                "d.{{account-tag(dept)}}",
                "plain",
            ]),
            false,
            &user,
            &acc,
        )
        .unwrap();
        assert_eq!(
            got,
            list(&[
                "u.alice.>",
                "id.UALICE",
                "acme.AACC",
                "r.a.in",
                "r.b.in",
                "d.ops",
                "plain"
            ])
        );
        // A missing tag or an unknown macro makes an invalid subject: skipped in allow lists,
        // an error in deny lists.
        let bad = list(&["x.{{tag(none)}}", "y.{{what()}}"]);
        assert_eq!(expand(&bad, false, &user, &acc), Some(Vec::new()));
        assert_eq!(expand(&bad, true, &user, &acc), None);
        // An allow list that expands to nothing denies everything.
        let template = UserPermissionLimits {
            publish: jwt::Permission {
                allow: list(&["x.{{tag(none)}}"]),
                deny: Vec::new(),
            },
            ..UserPermissionLimits::default()
        };
        let lim = apply_template(&template, &user, &acc).unwrap();
        assert!(lim.publish.allow.is_empty());
        assert_eq!(lim.publish.deny, [">"]);
    }

    #[test]
    fn template_products_are_bounded() {
        let tags: Vec<String> = (0..40).map(|i| format!("t:{i}")).collect();
        let refs: Vec<&str> = tags.iter().map(String::as_str).collect();
        let user = user_with_tags(&refs);
        let acc = account();
        // 40 values fit; 40 × 40 = 1600 subjects exceed the bound.
        assert_eq!(
            expand(&list(&["a.{{tag(t)}}"]), false, &user, &acc).map(|v| v.len()),
            Some(40)
        );
        assert_eq!(
            expand(&list(&["a.{{tag(t)}}.{{tag(t)}}"]), false, &user, &acc),
            None
        );
    }
}
