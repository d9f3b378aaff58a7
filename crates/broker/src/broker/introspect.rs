//! Read-only views for monitoring: counters, accounts, connections and subscriptions.

use super::*;

impl Broker {
    /// Server-wide counters.
    #[must_use]
    pub fn stats(&self) -> ServerStats {
        self.stats
    }

    /// Subject index statistics for `/subsz`.
    #[must_use]
    pub fn sublist_stats(&self) -> SublistStats {
        self.router.sublist_stats(None)
    }

    /// One account's subject index statistics (`/subsz?acc=`), `None` for an unknown account.
    #[must_use]
    pub fn account_sublist_stats(&self, account: &str) -> Option<SublistStats> {
        let id = self.router.lookup(account)?;
        Some(self.router.sublist_stats(Some(id)))
    }

    /// The system account's name, when there is one.
    #[must_use]
    pub fn system_account(&self) -> Option<&str> {
        let id = self.router.system_account()?;
        Some(self.router.name(id))
    }

    /// Every account (`$G` first, then in configuration order), for `/accountz`.
    #[must_use]
    pub fn accounts(&self) -> Vec<AccountInfo> {
        let mut connections = vec![0usize; self.router.accounts().count()];
        for slot in &self.slots {
            if let Some(c) = &slot.client
                && !c.phase.is_closed()
                && c.counts_as_client
                && let Some(n) = connections.get_mut(c.auth.account.index())
            {
                *n += 1;
            }
        }
        let system = self.router.system_account();
        self.router
            .accounts()
            .map(|(id, a)| AccountInfo {
                name: a.name.to_string(),
                is_system: system == Some(id),
                connections: connections.get(id.index()).copied().unwrap_or(0),
                sublist: a.sublist.stats(),
                in_msgs: a.stats.in_msgs,
                pending_responses: a.responses.len(),
            })
            .collect()
    }

    /// Every known client (open, or closed but not yet removed), in cid order.
    #[must_use]
    pub fn clients(&self) -> Vec<ClientId> {
        let mut ids: Vec<(u64, ClientId)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let c = s.client.as_ref()?;
                Some((
                    c.cid,
                    ClientId {
                        index: u32::try_from(i).ok()?,
                        generation: s.generation,
                    },
                ))
            })
            .collect();
        ids.sort_unstable();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// True when the client exists and is open.
    #[must_use]
    pub fn is_open(&self, client: ClientId) -> bool {
        self.client(client).is_some_and(|c| !c.phase.is_closed())
    }

    /// The cid of a client.
    #[must_use]
    pub fn cid(&self, client: ClientId) -> Option<u64> {
        self.client(client).map(|c| c.cid)
    }

    /// A snapshot of a client for `/connz`.
    #[must_use]
    pub fn client_info(&self, client: ClientId, now: Instant) -> Option<ClientInfo> {
        let mut info = self.client_summary(client, now)?;
        info.subscriptions = self.client_subscriptions(client);
        Some(info)
    }

    /// [`Broker::client_info`] without the subscription list (`num_subscriptions` is set):
    /// cheap enough to take for every connection before sorting and paging them.
    #[must_use]
    pub fn client_summary(&self, client: ClientId, _now: Instant) -> Option<ClientInfo> {
        let c = self.client(client)?;
        let num_subscriptions = if c.phase.is_closed() {
            c.closed_subs.len()
        } else {
            c.subs.len()
        };
        Some(ClientInfo {
            id: client,
            cid: c.cid,
            conn_type: c.params.conn_type,
            remote: c.params.remote,
            start: c.start,
            last_activity: c.last_activity,
            stop: c.phase.closed().map(|(_, t)| t),
            reason: c.phase.closed().map(|(r, _)| r),
            rtt: c.rtt,
            pending_bytes: c.pending(),
            in_msgs: c.in_msgs,
            out_msgs: c.out_msgs,
            in_bytes: c.in_bytes,
            out_bytes: c.out_bytes,
            subscriptions: Vec::new(),
            num_subscriptions,
            name: c.opts.name.clone(),
            lang: c.opts.lang.clone(),
            version: c.opts.version.clone(),
            user: c.opts.user.clone(),
            authorized_user: c.auth.authorized_user.clone(),
            tls_version: c.params.tls_version.clone(),
            tls_cipher: c.params.tls_cipher.clone(),
            forwarded_for: c.params.forwarded_for.clone(),
            mqtt_client: c
                .mqtt
                .as_ref()
                .map(|m| m.client_id.clone())
                .filter(|id| !id.is_empty()),
            account: self.router.name(c.auth.account).to_string(),
        })
    }

    /// The client's subscriptions, by sid (those it held when it closed, for a closed client).
    #[must_use]
    pub fn client_subscriptions(&self, client: ClientId) -> Vec<SubInfo> {
        let Some(c) = self.client(client) else {
            return Vec::new();
        };
        if c.phase.is_closed() {
            return c.closed_subs.clone();
        }
        let mut subscriptions: Vec<SubInfo> = c
            .subs
            .values()
            .filter_map(|k| self.router.sub(*k))
            .map(|s| sub_info(s, c.cid, self.router.name(c.auth.account)))
            .collect();
        subscriptions.sort_by(|a, b| a.sid.cmp(&b.sid));
        subscriptions
    }

    /// Closed connections kept for `/connz?state=closed`, oldest first.
    pub fn closed_clients(&self) -> impl Iterator<Item = &ClientInfo> + '_ {
        self.closed_ring.iter()
    }

    /// Every subscription, or those matching the literal publish subject `test`, for `/subsz`.
    #[must_use]
    pub fn subscriptions(&self, test: Option<&[u8]>) -> Vec<SubInfo> {
        self.subscriptions_in(None, test)
    }

    /// [`Broker::subscriptions`] of one account (`/subsz?acc=`); an unknown account has none.
    #[must_use]
    pub fn subscriptions_in(&self, account: Option<&str>, test: Option<&[u8]>) -> Vec<SubInfo> {
        let mut out = Vec::new();
        let mut cursor = 0;
        self.scan_subscriptions(&mut cursor, usize::MAX, account, test, |s| out.push(s));
        out.sort_by(|a, b| a.cid.cmp(&b.cid).then_with(|| a.sid.cmp(&b.sid)));
        out
    }

    /// Looks at up to `budget` subscription slots from `*cursor` on, in no particular order,
    /// and gives `found` each subscription there of `account` (every account's when `None`;
    /// an unknown account has none) that matches the literal subject `test`. Advances
    /// `*cursor`; true once every slot was looked at. A scan may take many calls while
    /// subscriptions come and go: it sees each subscription that lives through it once, and
    /// those added or removed meanwhile perhaps.
    pub fn scan_subscriptions(
        &self,
        cursor: &mut usize,
        budget: usize,
        account: Option<&str>,
        test: Option<&[u8]>,
        mut found: impl FnMut(SubInfo),
    ) -> bool {
        let only = match account {
            Some(name) => match self.router.lookup(name) {
                Some(id) => Some(id),
                None => return true,
            },
            None => None,
        };
        let end = cursor.saturating_add(budget).min(self.router.subs.len());
        let slots = self.router.subs.get(*cursor..end).unwrap_or(&[]);
        *cursor = end;
        for slot in slots {
            let Some(s) = slot.sub.as_ref() else {
                continue;
            };
            if only.is_some_and(|a| a != slot.account) {
                continue;
            }
            if let Some(t) = test
                && !subject::matches(&s.subject, t)
            {
                continue;
            }
            let cid = self.client(s.client).map_or(0, |c| c.cid);
            found(sub_info(s, cid, self.router.name(slot.account)));
        }
        *cursor >= self.router.subs.len()
    }

    /// True once the client's CONNECT was accepted (or it was bound to the `no_auth_user`).
    #[must_use]
    pub fn connect_received(&self, client: ClientId) -> bool {
        self.client(client)
            .is_some_and(|c| c.phase == Phase::Connected)
    }
}

pub(super) fn sub_info(s: &Subscription, cid: u64, account: &str) -> SubInfo {
    SubInfo {
        subject: String::from_utf8_lossy(&s.subject).into_owned(),
        queue: s
            .queue
            .as_ref()
            .map(|q| String::from_utf8_lossy(q).into_owned()),
        sid: String::from_utf8_lossy(&s.sid).into_owned(),
        msgs: s.delivered,
        max: s.max.map(NonZeroU64::get),
        cid,
        account: account.to_owned(),
    }
}
