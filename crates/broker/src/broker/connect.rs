//! CONNECT: authentication (inline or parked for a bcrypt worker), account binding, the INFO/CONNECT handshake's end.

use super::*;

impl Broker {
    pub(super) fn bind_no_auth_user(&mut self, client: ClientId, _now: Instant) -> bool {
        let Some(conn_type) = self.client(client).map(|c| c.params.conn_type) else {
            return false;
        };
        let Some(user) = self.auth.no_auth_user(conn_type) else {
            return false;
        };
        self.bind_account(client, user.identity.as_ref());
        if let Some(c) = self.client_mut(client) {
            c.phase = Phase::Connected;
            c.auth.deadline = None;
            c.auth.authorized_user = user.authorized_user;
            c.auth.permissions = user.permissions;
            c.auth.identity = user.identity;
        }
        true
    }

    /// Binds a client to the account of the user it authenticated as (`$G` for a user outside
    /// every account). A client's account changes only before it has subscriptions: a second
    /// CONNECT naming another account's user is refused. False when refused.
    pub(super) fn bind_account(
        &mut self,
        client: ClientId,
        who: Option<&auth::Authenticated>,
    ) -> bool {
        let account = match who.and_then(|w| w.account.as_deref()) {
            Some(name) => match self.router.lookup(name) {
                Some(id) => id,
                None => return false,
            },
            None => AccountId::GLOBAL,
        };
        let Some(c) = self.client_mut(client) else {
            return false;
        };
        let before = c.auth.account;
        if before == account {
            return true;
        }
        if !c.subs.is_empty() {
            return false;
        }
        c.auth.account = account;
        true
    }

    /// Operator mode, after a JWT user authenticated: the account's connection limit, the
    /// user's subscription and payload limits, and the expiry timer (`server/client.go`
    /// `setExpiration`, `applyAccountLimits`). False when the client was closed.
    pub(super) fn apply_jwt_limits(&mut self, id: ClientId, now: Instant) -> bool {
        let Some(jwt) = self
            .client(id)
            .and_then(|c| c.auth.identity.as_ref())
            .and_then(|w| w.jwt.clone())
        else {
            return true;
        };
        let trust = self.auth.trust();
        // A client is refused when the account's connections, clients and leaf nodes alike,
        // reach `conn`; a leaf node when its leaf nodes reach `leaf`. Both refusals have the
        // same text (`server/client.go` `registerWithAccount`, `server/accounts.go`
        // `MaxTotalConnectionsReached` counts every connection of the account).
        let is_leaf =
            |t: ConnectionType| matches!(t, ConnectionType::Leaf | ConnectionType::LeafWebSocket);
        let (account, leaf) = match self.client(id) {
            Some(c) => (c.auth.account, is_leaf(c.params.conn_type)),
            None => return false,
        };
        let max = trust.and_then(|t| {
            if leaf {
                t.max_leaf_connections(&jwt.account)
            } else {
                t.max_connections(&jwt.account)
            }
        });
        if let Some(max) = max {
            let others = self
                .slots
                .iter()
                .filter_map(|s| s.client.as_ref())
                .filter(|c| {
                    c.phase == Phase::Connected
                        && c.auth.account == account
                        && (!leaf || is_leaf(c.params.conn_type))
                })
                .count();
            if others >= max {
                self.send_err(id, now, "maximum account active connections exceeded");
                self.close(id, now, CloseReason::MaxAccountConnectionsExceeded);
                return false;
            }
        }
        self.set_jwt_session(id, now);
        true
    }

    /// A JWT user's expiry timer and subscription/payload limits, from its identity and the
    /// account in force (at CONNECT, and again after a reload).
    pub(super) fn set_jwt_session(&mut self, id: ClientId, now: Instant) {
        let Some(jwt) = self
            .client(id)
            .and_then(|c| c.auth.identity.as_ref())
            .and_then(|w| w.jwt.clone())
        else {
            return;
        };
        let trust = self.auth.trust();
        let account_exp = trust.and_then(|t| t.account_expires(&jwt.account));
        let clock = self.config.wall_clock.unwrap_or(WallClock {
            at: self.start,
            unix_secs: 0,
            subsec_nanos: 0,
        });
        let expiry = match (jwt.expires_at, account_exp) {
            (Some(u), Some(a)) if a < u => Some((a, "Account Authentication Expired")),
            (Some(u), _) => Some((u, "User Authentication Expired")),
            (None, Some(a)) => Some((a, "Account Authentication Expired")),
            (None, None) => None,
        };
        let server_max_payload = self.config.limits.max_payload;
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        c.auth.expiry = expiry.map(|(at, text)| (clock.instant_of(at, now), text));
        c.auth.max_subs = jwt.max_subs;
        c.auth.max_payload = jwt.max_payload;
        c.parser.limits_mut().max_payload = jwt
            .max_payload
            .map_or(server_max_payload, |m| m.min(server_max_payload));
        self.reschedule(id);
    }

    /// [`Self::auth_violation`] for a refused authentication, after the reason the reference
    /// logs first, when there is one.
    pub(super) fn auth_refused(
        &mut self,
        client: ClientId,
        now: Instant,
        refused: crate::authseam::Refused,
    ) {
        if let Some(reason) = refused.reason {
            let error = auth::operator::is_error_level(&reason);
            self.events.push_back(Event::AuthReason {
                client,
                reason,
                error,
            });
        }
        self.auth_violation(client, now, Some(refused.log));
    }

    pub(super) fn auth_violation(
        &mut self,
        client: ClientId,
        now: Instant,
        detail: Option<String>,
    ) {
        if let Some(detail) = detail {
            self.events.push_back(Event::AuthFailed { client, detail });
        }
        self.send_err(client, now, "Authorization Violation");
        self.close(client, now, CloseReason::AuthenticationFailure);
    }

    pub(super) fn process_connect(&mut self, id: ClientId, now: Instant, arg: &[u8]) {
        let Ok(json) = ConnectJson::parse(arg) else {
            self.close(id, now, CloseReason::ProtocolViolation);
            return;
        };
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        let o = &mut c.opts;
        if let Some(v) = json.verbose {
            o.verbose = v;
        }
        if let Some(v) = json.pedantic {
            o.pedantic = v;
        }
        if let Some(v) = json.echo {
            o.echo = v;
        }
        if let Some(v) = json.headers {
            o.headers = v;
        }
        if let Some(v) = json.no_responders {
            o.no_responders = v;
        }
        if let Some(v) = json.protocol {
            o.protocol = v;
        }
        if let Some(v) = &json.name {
            v.clone_into(&mut o.name);
        }
        if let Some(v) = &json.lang {
            v.clone_into(&mut o.lang);
        }
        if let Some(v) = &json.version {
            v.clone_into(&mut o.version);
        }
        if let Some(v) = &json.user {
            v.clone_into(&mut o.user);
        }
        let conn_type = c.params.conn_type;
        let creds = Credentials {
            user: json.user.as_deref(),
            pass: json.pass.as_deref(),
            auth_token: json.auth_token.as_deref(),
            nkey: json.nkey.as_deref(),
            sig: json.sig.as_deref(),
            jwt: json.jwt.as_deref(),
        };
        let nonce = c.auth.nonce.clone();
        let cookies = std::mem::take(&mut c.params.cookies);
        let remote = c.params.remote.ip();
        let now_unix = self.unix_now(now);
        let step = self.auth.authenticate(
            conn_type,
            &creds,
            nonce.as_deref(),
            &cookies,
            remote,
            now_unix,
        );
        let defer = self.config.defer_password_checks;
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        c.params.cookies = cookies;
        let pending = PendingConnect {
            creds: StoredCredentials::new(&creds),
            account_requested: json.account.is_some_and(|a| !a.is_empty())
                || json.new_account == Some(true),
            auth_epoch: self.auth_epoch,
        };
        match step {
            AuthStep::Done(res) => self.finish_connect(id, now, res, pending, None),
            AuthStep::CheckHash(check) if defer => self.park(id, check, pending),
            AuthStep::CheckHash(check) => {
                let verified = check.check().verify();
                let hash = verified.then(|| Box::from(check.check().hash()));
                self.finish_connect(id, now, finish_hash(check, verified), pending, hash);
            }
        }
    }

    pub(super) fn park(&mut self, id: ClientId, check: auth::HashCheck, pending: PendingConnect) {
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        let event = Event::CheckPassword {
            client: id,
            check: check.check().clone(),
            parked: true,
        };
        c.auth.parked = Some(Box::new((check, pending)));
        // The CONNECT arrived in time: as nats-server's processConnect, stop the auth timer
        // before the (slow) password comparison.
        c.auth.deadline = None;
        self.events.push_back(event);
        self.reschedule(id);
    }

    /// Delivers the result of an [`Event::CheckPassword`] comparison: `check` is the one the
    /// event carried and `verified` what [`auth::PasswordCheck::verify`] returned for it.
    ///
    /// A parked CONNECT completes, and the client resumes: feed it the input that
    /// `handle_input` left unconsumed. Clients that a reload is re-checking with this same
    /// comparison keep or lose their session. A result nobody waits for any more (closed
    /// client, superseded check) is ignored.
    pub fn password_checked(
        &mut self,
        client: ClientId,
        check: &auth::PasswordCheck,
        verified: bool,
        now: Instant,
    ) {
        let mut waiting: Vec<ClientId> = Vec::new();
        if !self.rechecking.is_empty() {
            let mut still = std::mem::take(&mut self.rechecking);
            still.retain(|id| {
                let Some(c) = self.client(*id).filter(|c| !c.phase.is_closed()) else {
                    return false;
                };
                match &c.auth.rechecking {
                    Some(r) if r.check() == check => {
                        waiting.push(*id);
                        false
                    }
                    Some(_) => true,
                    None => false,
                }
            });
            self.rechecking = still;
        }
        for id in waiting {
            let Some(pending) = self.client_mut(id).and_then(|c| c.auth.rechecking.take()) else {
                continue;
            };
            let hash = verified.then(|| Box::from(pending.check().hash()));
            self.apply_recheck(id, finish_hash(*pending, verified), true, hash, now);
        }
        if self.leaf_password_checked(client, check, verified, now) {
            return;
        }
        let Some(c) = self.open_client_mut(client) else {
            return;
        };
        if c.auth.parked.as_ref().is_none_or(|p| p.0.check() != check) {
            return;
        }
        let Some(parked) = c.auth.parked.take() else {
            return;
        };
        let (mut check, mut pending) = *parked;
        let epoch = self.auth_epoch;
        if pending.auth_epoch != epoch {
            // A reload happened meanwhile: decide with the configuration in force now, reusing
            // the verdict when the same hash is asked for.
            pending.auth_epoch = epoch;
            let Some(c) = self.client(client) else {
                return;
            };
            let step = self.auth.authenticate(
                c.params.conn_type,
                &pending.creds.as_credentials(),
                c.auth.nonce.as_deref(),
                &c.params.cookies,
                c.params.remote.ip(),
                self.unix_now(now),
            );
            match step {
                AuthStep::Done(res) => {
                    self.finish_connect(client, now, res, pending, None);
                    self.reschedule(client);
                    return;
                }
                AuthStep::CheckHash(again) if again.check().hash() == check.check().hash() => {
                    check = again;
                }
                AuthStep::CheckHash(again) => {
                    self.park(client, again, pending);
                    return;
                }
            }
        }
        let hash = verified.then(|| Box::from(check.check().hash()));
        self.finish_connect(client, now, finish_hash(check, verified), pending, hash);
        self.reschedule(client);
    }

    /// True while the client's CONNECT waits for [`Broker::password_checked`].
    #[must_use]
    pub fn is_parked(&self, client: ClientId) -> bool {
        self.client(client)
            .is_some_and(|c| c.auth.parked.is_some() || c.auth.leaf_parked.is_some())
    }

    /// The part of CONNECT processing after authentication.
    pub(super) fn finish_connect(
        &mut self,
        id: ClientId,
        now: Instant,
        res: Result<crate::authseam::Authenticated, crate::authseam::Refused>,
        pending: PendingConnect,
        verified_hash: Option<Box<str>>,
    ) {
        if !self.is_open(id) {
            return;
        }
        if let Some(connect) = self
            .client_mut(id)
            .and_then(|c| c.mqtt.as_mut())
            .and_then(|m| m.parked_connect.take())
        {
            self.mqtt_finish_connect(id, now, res, *connect, pending.creds);
            if let Some(c) = self.open_client_mut(id) {
                c.auth.verified_hash = verified_hash;
            }
            return;
        }
        match res {
            Ok(user) => {
                if !self.bind_account(id, user.identity.as_ref()) {
                    self.auth_violation(id, now, None);
                    return;
                }
                let Some(c) = self.open_client_mut(id) else {
                    return;
                };
                // This CONNECT, authenticated under the configuration in force, supersedes a
                // re-check from an earlier reload.
                c.auth.rechecking = None;
                c.auth.creds = pending.creds;
                c.auth.verified_hash = verified_hash;
                c.auth.authorized_user = user.authorized_user;
                c.auth.permissions = user.permissions;
                c.auth.identity = user.identity;
                if !self.apply_jwt_limits(id, now) {
                    return;
                }
            }
            Err(refused) => {
                self.auth_refused(id, now, refused);
                return;
            }
        }
        if pending.account_requested {
            let detail = self
                .client(id)
                .and_then(|c| self.auth.violation_after_auth(c.auth.identity.as_ref()));
            self.auth_violation(id, now, detail);
            return;
        }
        let server_headers = self.config.headers;
        let ping_interval = self.config.ping_interval;
        let jitter_seed = self.rng.next_u64();
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        c.phase = Phase::Connected;
        c.auth.deadline = None;
        c.last_activity = now;
        c.rtt = Some(now.saturating_duration_since(c.start));
        let protocol = c.opts.protocol;
        if !(0..=1).contains(&protocol) {
            self.send_err(id, now, "invalid client protocol");
            self.close(id, now, CloseReason::BadClientProtocolVersion);
            return;
        }
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        let headers = c.opts.headers && server_headers;
        c.parser.limits_mut().headers = headers;
        if c.opts.no_responders && !headers {
            self.send_err(id, now, "no responders requires headers support");
            self.close(id, now, CloseReason::NoRespondersRequiresHeaders);
            return;
        }
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        let mut first = ping_interval.min(FIRST_CLIENT_PING_INTERVAL);
        let fifth_nanos = u64::try_from(first.as_nanos() / 5).unwrap_or(0);
        if fifth_nanos > 0 {
            first += Duration::from_nanos(jitter_seed % fifth_nanos);
        }
        c.ping_deadline = now.checked_add(first);
        if c.leaf.is_some() {
            self.leaf_open(id, now);
            return;
        }
        let verbose = c.opts.verbose;
        self.events.push_back(Event::Connected(id));
        if verbose {
            self.send_ok(id, now);
        }
    }
}
