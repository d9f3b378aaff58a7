//! Configuration reload: the new authorization applies to connected clients at once.
//!
//! As nats-server 2.9.10 (`server/reload.go` `reloadAuthorization`,
//! `clientHasMovedToDifferentAccount`, `server/client.go` `processSubsOnConfigReload`), every
//! open client is checked again with the credentials of its CONNECT:
//! 0. Operator mode (`server/accounts.go` `updateAccountClaimsWithRefresh`): an account whose
//!    reloaded JWT lowers `conn` below its open connections closes the oldest ones; a user it
//!    revokes gets `-ERR 'User Authentication Revoked'`; a user issued by a signing key the
//!    account no longer has, or whose scope changed, is closed without an `-ERR`; a user whose
//!    account is gone gets `-ERR 'Account Authentication Expired'` (the account was deleted
//!    through the resolver: `removeCb` expires it).
//! 1. A client whose nkey, else user name, is no longer configured is closed as
//!    `Client Closed` without an `-ERR` (the reference treats it as having moved account).
//!    The user name is the one in effect: the `no_auth_user` a client was bound to counts.
//!    **Deliberate difference:** 2.9.10 consults only its `users` map here, so it closes every
//!    client of the single `authorization { user, password }` (and every client that sent a user
//!    name to a server without users) on every reload, even one that changes nothing. natsws
//!    counts the single user and the websocket override user as configured too, and when no
//!    user-based auth is configured at all it leaves the decision to step 2: a SIGHUP must not
//!    disconnect clients whose credentials are still valid. The re-check itself runs on every
//!    reload, as in the reference.
//! 2. Any other client is authenticated again (user/password, token, nkey signature over its
//!    nonce, cookies; a `no_auth_user` binding presents that user's previous password, as the
//!    reference stores it in the client's options). Failure: `-ERR 'Authorization
//!    Violation'`, close as `Authentication Failure`.
//!    A user that now belongs to another account closes its clients the same way.
//! 3. The remaining clients take the new permissions; each subscription the new permissions
//!    refuse is removed with `-ERR 'Permissions Violation for Subscription to "<subject>" (sid
//!    "<sid>")'` and an [`Event::SubscriptionRemoved`] for the log. The reference walks a Go
//!    map (random order); here the order is by sid.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use super::{Broker, Phase, SubKey};
use crate::Config;
use crate::auth::jwt::UserPermissionLimits;
use crate::auth::operator::JwtAccount;
use crate::auth::{self, AuthConfig, AuthConfigError, PasswordCheck};
use crate::authseam::{AuthState, AuthStep, Credentials, finish_hash};
use crate::router::AccountId;
use crate::types::{CloseReason, Event};

/// The CONNECT credentials kept for re-authentication on reload. Bounded by the CONNECT line
/// (`max_control_line`). `Debug` shows only which fields are set, never a value.
#[derive(Clone, Default)]
pub(crate) struct StoredCredentials {
    user: Option<Box<str>>,
    pass: Option<Box<str>>,
    auth_token: Option<Box<str>>,
    nkey: Option<Box<str>>,
    sig: Option<Box<str>>,
    jwt: Option<Box<str>>,
}

fn keep(value: Option<&str>) -> Option<Box<str>> {
    value.filter(|v| !v.is_empty()).map(Box::from)
}

impl StoredCredentials {
    pub(super) fn new(creds: &Credentials<'_>) -> Self {
        Self {
            user: keep(creds.user),
            pass: keep(creds.pass),
            auth_token: keep(creds.auth_token),
            nkey: keep(creds.nkey),
            sig: keep(creds.sig),
            jwt: keep(creds.jwt),
        }
    }

    /// The CONNECT `jwt` (or `jwt_cookie`), as sent.
    pub(super) fn jwt(&self) -> Option<&str> {
        self.jwt.as_deref()
    }

    pub(super) fn as_credentials(&self) -> Credentials<'_> {
        Credentials {
            user: self.user.as_deref(),
            pass: self.pass.as_deref(),
            auth_token: self.auth_token.as_deref(),
            nkey: self.nkey.as_deref(),
            sig: self.sig.as_deref(),
            jwt: self.jwt.as_deref(),
        }
    }
}

impl fmt::Debug for StoredCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |v: &Option<Box<str>>| if v.is_some() { "<set>" } else { "<none>" };
        f.debug_struct("StoredCredentials")
            .field("user", &set(&self.user))
            .field("pass", &set(&self.pass))
            .field("auth_token", &set(&self.auth_token))
            .field("nkey", &set(&self.nkey))
            .field("sig", &set(&self.sig))
            .field("jwt", &set(&self.jwt))
            .finish()
    }
}

/// The reference's notice when a reload removes a subscription: `Removed sub "<subject>" (sid
/// "<sid>") for <who> - not authorized`, `who` as [`auth::Authenticated::log_identity`].
#[must_use]
pub(crate) fn removed_sub_log(subject: &[u8], sid: &[u8], who: &str) -> String {
    format!(
        "Removed sub {} (sid {}) for {who} - not authorized",
        auth::go_quote(subject),
        auth::go_quote(sid)
    )
}

/// Whether a client that authenticated as `name` has lost its user: user-based auth is still
/// configured but no longer has that name (the `users` list, the single user, or the websocket
/// override user).
fn user_removed(config: Option<&AuthConfig>, name: &str) -> bool {
    let Some(config) = config else {
        return false;
    };
    let single = config.username.as_deref();
    let websocket = config.websocket.username.as_deref();
    let user_auth_configured = !config.users.is_empty() || single.is_some() || websocket.is_some();
    user_auth_configured
        && single != Some(name)
        && websocket != Some(name)
        && !config.users.iter().any(|u| u.username == name)
}

/// Whether `key` is a configured nkey user.
fn has_nkey(config: Option<&AuthConfig>, key: &str) -> bool {
    config.is_some_and(|c| c.nkeys.iter().any(|n| n.nkey == key))
}

/// What the clients being checked again are compared with.
enum Before<'a> {
    /// A reload: the whole authorization before it.
    Reload(&'a AuthState),
    /// A change of single accounts: each changed account's key and what it was before.
    Accounts(&'a [(String, Option<Arc<JwtAccount>>)]),
}

impl Before<'_> {
    fn config(&self) -> Option<&AuthConfig> {
        match self {
            Self::Reload(auth) => auth.config(),
            Self::Accounts(_) => None,
        }
    }

    fn signer(&self, account: &str, key: &str) -> Option<Option<&UserPermissionLimits>> {
        match self {
            Self::Reload(auth) => auth.trust().and_then(|t| t.signer(account, key)),
            Self::Accounts(changed) => changed
                .iter()
                .find(|(k, _)| k == account)
                .and_then(|(_, old)| old.as_deref())
                .and_then(|a| a.signer(key)),
        }
    }
}

/// What [`Broker::set_operator_account`] or [`Broker::remove_operator_accounts`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountUpdate {
    /// The account JWTs replaced or removed, as configured (trimmed), so that a copy of the
    /// configuration can be changed alike.
    pub replaced: Vec<String>,
    /// The clients checked again: those of the changed accounts, no others.
    pub rechecked: usize,
}

impl Broker {
    /// Operator mode: puts the account JWT `token` in place of its account's, or adds the
    /// account, as nats-server applies a pushed JWT (`server/accounts.go`
    /// `updateAccountClaimsWithRefresh`) — without a reload. Only this JWT (and its
    /// activation tokens) is decoded; the router's exports and imports are rebuilt from the
    /// accounts already compiled, so the accounts importing from this one follow it; and only
    /// this account's clients are checked again, as [`Broker::reload`] checks them: a lowered
    /// `conn` closes the oldest, a revoked user gets `-ERR 'User Authentication Revoked'`, a
    /// user of a removed signing key is closed, and the others take the new limits,
    /// permissions and expiry. Other accounts' clients are not touched. Refused, changing
    /// nothing, as a reload with this JWT would be. Poll events afterwards.
    pub fn set_operator_account(
        &mut self,
        token: &str,
        now: Instant,
    ) -> Result<AccountUpdate, AuthConfigError> {
        let Some((trust, auth_config)) = self.auth.trust_mut() else {
            return Err(AuthConfigError::new("not in operator mode".to_owned()));
        };
        let (key, old) = trust.set_account(token)?;
        let replaced: Vec<String> = old.iter().map(|a| a.token().to_owned()).collect();
        for config in [auth_config, &mut self.config.auth] {
            if let Some(op) = config.operator.as_mut() {
                auth::operator::replace_account(
                    &mut op.accounts,
                    replaced.first().map(String::as_str),
                    Some(token.trim()),
                );
            }
        }
        let rechecked = self.accounts_changed(&[(key, old)], now);
        Ok(AccountUpdate {
            replaced,
            rechecked,
        })
    }

    /// Operator mode: removes the accounts `keys` (never the system account), as nats-server
    /// removes an account deleted from its resolver (`server/accounts.go` `removeCb`): their
    /// users get `-ERR 'Account Authentication Expired'` and are closed. Other accounts'
    /// clients are not touched. Poll events afterwards.
    pub fn remove_operator_accounts(&mut self, keys: &[String], now: Instant) -> AccountUpdate {
        let Some((trust, auth_config)) = self.auth.trust_mut() else {
            return AccountUpdate::default();
        };
        let mut changed = Vec::new();
        for key in keys {
            if let Some(old) = trust.remove_account(key) {
                changed.push((key.clone(), Some(old)));
            }
        }
        if changed.is_empty() {
            return AccountUpdate::default();
        }
        let replaced: Vec<String> = changed
            .iter()
            .filter_map(|(_, old)| old.as_ref().map(|a| a.token().to_owned()))
            .collect();
        for config in [auth_config, &mut self.config.auth] {
            if let Some(op) = config.operator.as_mut() {
                for old in &replaced {
                    auth::operator::replace_account(&mut op.accounts, Some(old), None);
                }
            }
        }
        let rechecked = self.accounts_changed(&changed, now);
        AccountUpdate {
            replaced,
            rechecked,
        }
    }

    /// The account JWT the broker serves for `key` (operator mode), as configured (trimmed).
    #[must_use]
    pub fn operator_account_jwt(&self, key: &str) -> Option<&str> {
        self.auth.trust()?.account(key).map(|a| a.token())
    }

    /// After accounts of the trust changed: the router follows, and the changed accounts'
    /// clients are checked again. Gives how many were.
    fn accounts_changed(
        &mut self,
        changed: &[(String, Option<Arc<JwtAccount>>)],
        now: Instant,
    ) -> usize {
        let (accounts, system) = super::served_accounts(&self.config, &self.auth);
        self.router.configure(&accounts, system.as_deref());
        let keys: Vec<&str> = changed.iter().map(|(k, _)| k.as_str()).collect();
        self.enforce_account_connection_limits(Some(&keys), now);
        let of_changed: Vec<super::ClientId> = self
            .clients()
            .into_iter()
            .filter(|id| {
                self.client(*id).is_some_and(|c| {
                    c.phase == Phase::Connected
                        && c.auth
                            .identity
                            .as_ref()
                            .and_then(|w| w.jwt.as_ref())
                            .is_some_and(|j| keys.contains(&j.account.as_str()))
                })
            })
            .collect();
        let before = Before::Accounts(changed);
        let mut verdicts = HashMap::new();
        for id in &of_changed {
            self.recheck_client(*id, &before, &mut verdicts, now);
        }
        of_changed.len()
    }

    /// Applies a reloaded configuration like [`Broker::set_config`], then checks every open
    /// client against the new authorization as nats-server does on reload: clients whose user
    /// or nkey is gone are closed (`Client Closed`), clients whose CONNECT credentials no longer
    /// authenticate get `-ERR 'Authorization Violation'` and are closed, and the others get
    /// their new permissions at once (subscriptions no longer allowed are removed with an
    /// `-ERR`). Poll events afterwards.
    pub fn reload(&mut self, config: Config, now: Instant) {
        let old_auth = std::mem::replace(&mut self.auth, AuthState::new(&AuthConfig::default()));
        self.set_config(config);
        self.mqtt_reload_limits(now);
        // A CONNECT parked for a password check is authenticated again when the check returns.
        self.auth_epoch += 1;
        // Every client is re-checked below; re-checks still out are superseded.
        self.rechecking.clear();
        // The clients of one user normally present one password: one bcrypt run per distinct
        // (hash, password) in a reload, not one per client. `None`: asked for, not back yet.
        let mut verdicts: HashMap<PasswordCheck, Option<bool>> = HashMap::new();
        // As in the reference, the account limits apply before the clients are checked again.
        self.enforce_account_connection_limits(None, now);
        let before = Before::Reload(&old_auth);
        for id in self.clients() {
            self.recheck_client(id, &before, &mut verdicts, now);
        }
    }

    /// Operator mode: an account whose reloaded JWT has a `conn` limit below its open
    /// connections closes the excess, as `server/accounts.go` `updateAccountClaimsWithRefresh`
    /// does: the account's connections (clients and leaf nodes) newest first, and each past the
    /// limit gets `-ERR 'maximum account active connections exceeded'` and is closed as
    /// `Maximum Account Connections Exceeded`. The newest connections stay. `only`: the
    /// accounts to check (all when `None`).
    fn enforce_account_connection_limits(&mut self, only: Option<&[&str]>, now: Instant) {
        let Some(trust) = self.auth.trust() else {
            return;
        };
        let mut by_account: HashMap<&str, Vec<(u64, super::ClientId)>> = HashMap::new();
        for (index, slot) in self.slots.iter().enumerate() {
            let Some(c) = slot.client.as_ref() else {
                continue;
            };
            if c.phase != Phase::Connected {
                continue;
            }
            let Some(jwt) = c.auth.identity.as_ref().and_then(|w| w.jwt.as_ref()) else {
                continue;
            };
            if only.is_some_and(|keys| !keys.contains(&jwt.account.as_str())) {
                continue;
            }
            let Ok(index) = u32::try_from(index) else {
                continue;
            };
            let id = super::ClientId {
                index,
                generation: slot.generation,
            };
            by_account
                .entry(jwt.account.as_str())
                .or_default()
                .push((c.cid, id));
        }
        let mut excess = Vec::new();
        for (account, mut conns) in by_account {
            let Some(max) = trust.max_connections(account) else {
                continue;
            };
            if conns.len() <= max {
                continue;
            }
            conns.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
            excess.extend(conns.into_iter().skip(max).map(|(_, id)| id));
        }
        excess.sort_unstable_by_key(|id| self.client(*id).map(|c| c.cid));
        for id in excess {
            self.send_err(id, now, "maximum account active connections exceeded");
            self.close(id, now, CloseReason::MaxAccountConnectionsExceeded);
        }
    }

    fn recheck_client(
        &mut self,
        id: super::ClientId,
        before: &Before<'_>,
        verdicts: &mut HashMap<PasswordCheck, Option<bool>>,
        now: Instant,
    ) {
        // A re-check still out from an earlier reload is superseded by this one.
        if let Some(c) = self.client_mut(id) {
            c.auth.rechecking = None;
        }
        let Some(c) = self.client(id) else {
            return;
        };
        if c.leaf.is_some() {
            // Leaf connections are not re-authenticated: natsconf refuses a reload that
            // changes the `leafnodes` block, and a dialled leaf has no client credentials.
            return;
        }
        if c.auth.parked.is_some() && c.phase != Phase::Connected {
            // Its pending CONNECT is authenticated against this configuration when the check
            // returns.
            return;
        }
        let connected = match c.phase {
            Phase::Connected => true,
            Phase::AwaitingConnect { .. } => false,
            Phase::Closed { .. } => return,
        };
        let conn_type = c.params.conn_type;
        let mut creds = c.auth.creds.clone();
        let (nkey, username) = match &c.auth.identity {
            Some(who) if connected => (who.nkey.clone(), who.username.clone()),
            _ => (None, None),
        };
        // A client bound to the `no_auth_user` presents that user and its stored password (the
        // reference copied both into the client's options at CONNECT).
        let old_config = before.config();
        if connected
            && creds.user.is_none()
            && creds.pass.is_none()
            && creds.auth_token.is_none()
            && let Some(name) = username.as_deref()
            && let Some(old) = old_config
            && (old.no_auth_user.as_deref() == Some(name)
                || old.websocket.no_auth_user.as_deref() == Some(name))
            && let Some(user) = old.users.iter().find(|u| u.username == name)
        {
            creds.user = Some(Box::from(name));
            creds.pass = keep(Some(user.password.as_str()));
        }
        // Operator mode: a user whose account is gone (deleted through the resolver) is
        // closed as its expired account would be (`server/accounts.go` `removeCb`, which
        // expires the account).
        if connected
            && let Some(jwt) = c.auth.identity.as_ref().and_then(|w| w.jwt.as_ref())
            && let Some(trust) = self.auth.trust()
            && trust.account(&jwt.account).is_none()
        {
            self.send_err(id, now, "Account Authentication Expired");
            self.close(id, now, CloseReason::AuthenticationExpired);
            return;
        }
        // Operator mode: a user the reloaded account JWT revokes is told so and closed
        // (`server/accounts.go` `updateAccountClaimsWithRefresh`).
        if connected
            && let Some(jwt) = c.auth.identity.as_ref().and_then(|w| w.jwt.clone())
            && let Some(trust) = self.auth.trust()
            && trust.user_revoked(&jwt.account, &jwt.user, jwt.issued_at)
        {
            self.send_err(id, now, "User Authentication Revoked");
            self.close(id, now, CloseReason::Revocation);
            return;
        }
        // A user issued by an account signing key that the reloaded account no longer has, or
        // whose scope changed, is closed without an `-ERR` (`updateAccountClaimsWithRefresh`:
        // `closeConnection(AuthenticationViolation)` when the signers changed).
        if connected
            && let Some(jwt) = c.auth.identity.as_ref().and_then(|w| w.jwt.clone())
            && let Some(key) = jwt.signing_key.as_deref()
        {
            let was = before.signer(&jwt.account, key);
            let after = self.auth.trust().and_then(|t| t.signer(&jwt.account, key));
            if after.is_none() || was != after {
                self.close(id, now, CloseReason::AuthenticationFailure);
                return;
            }
        }
        let Some(c) = self.client(id) else {
            return;
        };
        let is_jwt = c.auth.identity.as_ref().is_some_and(|w| w.jwt.is_some());
        let new_config = self.auth.config();
        let moved = if is_jwt {
            false
        } else if let Some(key) = nkey.as_deref().filter(|k| !k.is_empty()) {
            !has_nkey(new_config, key)
        } else if let Some(name) = username.as_deref().filter(|n| !n.is_empty()) {
            user_removed(new_config, name)
        } else {
            false
        };
        if moved {
            self.close(id, now, CloseReason::ClientClosed);
            return;
        }
        let res = self.auth.authenticate(
            conn_type,
            &creds.as_credentials(),
            c.auth.nonce.as_deref(),
            &c.params.cookies,
            c.params.remote.ip(),
            self.unix_now(now),
        );
        let mut verified_hash = None;
        let res = match res {
            AuthStep::Done(res) => res,
            AuthStep::CheckHash(pending) => {
                // The same hash already verified this client's stored password: no need to
                // spend another bcrypt run.
                let known = c.auth.verified_hash.as_deref() == Some(pending.check().hash());
                let ok = if known {
                    true
                } else {
                    match verdicts.get(pending.check()).copied() {
                        Some(Some(verdict)) => verdict,
                        // Another client asked for this very comparison in this reload.
                        Some(None) => {
                            self.await_recheck(id, pending);
                            return;
                        }
                        None if connected && self.config.defer_password_checks => {
                            verdicts.insert(pending.check().clone(), None);
                            self.events.push_back(Event::CheckPassword {
                                client: id,
                                check: pending.check().clone(),
                                parked: false,
                            });
                            self.await_recheck(id, pending);
                            return;
                        }
                        None => {
                            let verdict = pending.check().verify();
                            verdicts.insert(pending.check().clone(), Some(verdict));
                            verdict
                        }
                    }
                };
                if ok {
                    verified_hash = Some(Box::from(pending.check().hash()));
                }
                finish_hash(pending, ok)
            }
        };
        self.apply_recheck(id, res, connected, verified_hash, now);
    }

    /// A connected client keeps its identity and permissions until the comparison returns
    /// ([`Broker::password_checked`]).
    fn await_recheck(&mut self, id: super::ClientId, pending: auth::HashCheck) {
        if let Some(c) = self.client_mut(id) {
            c.auth.rechecking = Some(Box::new(pending));
            self.rechecking.push(id);
        }
    }

    /// Applies the outcome of re-authenticating a client after a reload: closes it when it no
    /// longer authenticates, else takes the new identity and permissions and removes the
    /// subscriptions they refuse.
    pub(super) fn apply_recheck(
        &mut self,
        id: super::ClientId,
        res: Result<crate::authseam::Authenticated, crate::authseam::Refused>,
        connected: bool,
        verified_hash: Option<Box<str>>,
        now: Instant,
    ) {
        let user = match res {
            Ok(user) => user,
            Err(refused) => {
                self.auth_refused(id, now, refused);
                return;
            }
        };
        if !connected {
            // The next CONNECT authenticates with the new configuration.
            return;
        }
        // A user that moved to another account closes the client, as a removed one does
        // (`server/reload.go` `clientHasMovedToDifferentAccount`).
        let account = user
            .identity
            .as_ref()
            .and_then(|who| who.account.as_deref())
            .map_or(Some(AccountId::GLOBAL), |name| self.router.lookup(name));
        if self.client(id).map(|c| c.auth.account) != account {
            self.close(id, now, CloseReason::ClientClosed);
            return;
        }
        let Some(c) = self.client_mut(id) else {
            return;
        };
        c.auth.authorized_user = user.authorized_user;
        c.auth.identity = user.identity;
        c.auth.verified_hash = verified_hash;
        c.auth.permissions = None;
        // A JWT user takes the reloaded account's expiry and limits (its connection is not
        // counted again).
        self.set_jwt_session(id, now);
        let Some(c) = self.client_mut(id) else {
            return;
        };
        let Some(mut perms) = user.permissions else {
            return;
        };
        let mut subs: Vec<(Arc<[u8]>, SubKey)> = c
            .subs
            .iter()
            .map(|(sid, key)| (Arc::clone(sid), *key))
            .collect();
        subs.sort_by(|a, b| a.0.cmp(&b.0));
        // Each removed subscription's sid, subject and key.
        type Removed = (Arc<[u8]>, Box<[u8]>, SubKey);
        let mut removed: Vec<Removed> = Vec::new();
        for (sid, key) in subs {
            let Some(sub) = self.router.sub(key) else {
                continue;
            };
            let allowed = perms.can_subscribe(&sub.subject, None)
                || sub
                    .queue
                    .as_deref()
                    .is_some_and(|q| perms.can_subscribe(&sub.subject, Some(q)));
            if !allowed {
                removed.push((sid, sub.subject.clone(), key));
            }
        }
        let Some(c) = self.client_mut(id) else {
            return;
        };
        c.auth.permissions = Some(perms);
        let who = c.auth.identity.as_ref().map_or_else(
            || "User \"N/A\"".to_owned(),
            auth::Authenticated::log_identity,
        );
        for (sid, subject, key) in removed {
            self.remove_sub(key, now);
            self.send_err(
                id,
                now,
                &auth::reload_subscription_violation(&subject, &sid),
            );
            self.events.push_back(Event::SubscriptionRemoved {
                client: id,
                detail: removed_sub_log(&subject, &sid, &who),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_credentials_debug_shows_no_value() {
        let creds = StoredCredentials::new(&Credentials {
            user: Some("alice"),
            pass: Some("hunter2"),
            auth_token: Some("tok3n"),
            nkey: None,
            sig: Some("sig42"),
            jwt: Some("eyJ0.bearer.jwt"),
        });
        let text = format!("{creds:?}");
        for secret in ["alice", "hunter2", "tok3n", "sig42", "eyJ0.bearer.jwt"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(text.contains("pass: \"<set>\""), "{text}");
        assert!(text.contains("nkey: \"<none>\""), "{text}");
        let back = creds.as_credentials();
        assert_eq!(back.pass, Some("hunter2"));
        // Kept: a reload re-checks a JWT user against the reloaded account.
        assert_eq!(back.jwt, Some("eyJ0.bearer.jwt"));
    }

    #[test]
    fn empty_fields_are_not_kept() {
        let creds = StoredCredentials::new(&Credentials {
            user: Some(""),
            ..Credentials::default()
        });
        assert!(creds.as_credentials().user.is_none());
    }
}
