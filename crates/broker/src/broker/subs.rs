//! SUB and UNSUB: subscription limits, permissions, queue groups, auto-unsubscribe.

use super::*;

impl Broker {
    pub(super) fn process_sub(
        &mut self,
        id: ClientId,
        now: Instant,
        subject: Bytes,
        queue: Option<Bytes>,
        sid: Bytes,
    ) {
        // Subscriptions live long: copy their strings out of the read buffer so they do not
        // pin it (bytes#679).
        let subject: Box<[u8]> = subject[..].into();
        let queue: Option<Box<[u8]>> = queue.map(|q| q[..].into());
        let sid: Arc<[u8]> = sid[..].into();
        let max_subs = self.config.limits.max_subscriptions;
        let max_tokens = self.config.limits.max_subscription_tokens;
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        c.last_activity = now;
        let verbose = c.opts.verbose;
        let account = c.auth.account;
        let sub_allowed = c
            .auth
            .permissions
            .as_mut()
            .is_none_or(|p| p.can_subscribe(&subject, queue.as_deref()));
        let n_subs = c.subs.len();
        // 0 in the configuration is unlimited; a JWT's 0 allows none.
        let max_subs = match (c.auth.max_subs, max_subs) {
            (Some(jwt), 0) => Some(jwt),
            (Some(jwt), cfg) => Some(jwt.min(cfg)),
            (None, 0) => None,
            (None, cfg) => Some(cfg),
        };
        let duplicate = c.subs.contains_key(&sid[..]);
        let queue_err = |q: &[u8]| {
            format!(
                "Permissions Violation for Subscription to {} using queue {}",
                auth::go_quote(&subject),
                auth::go_quote(q)
            )
        };
        if !sub_allowed {
            let text = match &queue {
                Some(q) => queue_err(q),
                None => format!(
                    "Permissions Violation for Subscription to {}",
                    auth::go_quote(&subject)
                ),
            };
            self.send_err(id, now, &text);
            return;
        }
        if let Some(q) = &queue
            && &q[..] == b"_sys_"
        {
            let text = queue_err(q);
            self.send_err(id, now, &text);
            return;
        }
        if let Some(max) = max_tokens
            && subject::token_count(&subject) > max
        {
            let text = format!(
                "Permissions Violation for Subscription to {}, too many tokens",
                auth::go_quote(&subject)
            );
            self.send_err(id, now, &text);
            return;
        }
        if max_subs.is_some_and(|max| n_subs >= max) {
            self.send_err(id, now, "maximum subscriptions exceeded");
            return;
        }
        if duplicate {
            if verbose {
                self.send_ok(id, now);
            }
            return;
        }
        let sub = Subscription {
            client: id,
            sid: Arc::clone(&sid),
            subject,
            queue,
            delivered: 0,
            max: None,
            owner: leaf::SubOwner::Client,
            weight: 1,
            origin: None,
        };
        let snapshot = (!self.leafs.is_empty()).then(|| sub.clone_meta());
        let key = match self.router.insert(account, sub) {
            Ok(key) => key,
            Err(InsertError::InvalidSubject) => {
                self.send_err(id, now, "Invalid Subject");
                return;
            }
        };
        if let Some(c) = self.client_mut(id) {
            c.subs.insert(sid, key);
        }
        self.stats.subscriptions += 1;
        if verbose {
            self.send_ok(id, now);
        }
        if let Some(sub) = snapshot {
            self.leaf_interest(account, &sub, 1, now);
        }
    }

    pub(super) fn process_unsub(
        &mut self,
        id: ClientId,
        now: Instant,
        sid: &Bytes,
        max: Option<u64>,
    ) {
        let Some(c) = self.open_client_mut(id) else {
            return;
        };
        let verbose = c.opts.verbose;
        let key = c.subs.get(&sid[..]).copied();
        if verbose {
            self.send_ok(id, now);
        }
        let Some(key) = key else {
            return;
        };
        let remove_now = match (max, self.router.sub_mut(key)) {
            (Some(m), Some(sub)) if m > sub.delivered => {
                sub.max = NonZeroU64::new(m);
                false
            }
            _ => true,
        };
        if remove_now {
            self.remove_sub(key, now);
        }
    }

    pub(super) fn remove_sub(&mut self, key: SubKey, now: Instant) {
        let account = self.router.sub_account(key);
        let Some(sub) = self.router.remove(key) else {
            return;
        };
        self.report_interest_lost(now);
        if let Some(account) = account {
            self.leaf_interest(account, &sub, -i64::from(sub.weight), now);
        }
        self.stats.subscriptions = self.stats.subscriptions.saturating_sub(1);
        if let Some(c) = self.client_mut(sub.client)
            && c.subs.get(&sub.sid) == Some(&key)
        {
            c.subs.remove(&sub.sid);
            shrink_map(&mut c.subs);
        }
    }
}
