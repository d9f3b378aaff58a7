//! The router: the accounts table and every subscription.
//!
//! Each account is its own subject space (`server/accounts.go` `Account`): its own subject index
//! ([`Sublist`]), counters, and the imports through which messages cross into it. A message
//! published in one account matches that account's index only; it reaches another account
//! only through an import the configuration declared ([`Router::stream_feeds`]).
//!
//! The router never sees a connection: subscriptions name their client by [`ClientId`], and
//! the broker renders and queues each delivery through the subscriber's session.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::auth::AuthConfigError;
use crate::config::{
    AccountConfig, ExportConfig, ExportKind, ImportConfig, LatencySampling, ResponseType,
};
use crate::subject;

use crate::proto::Publish;
use crate::sublist::{InsertError, Sublist, SublistStats, shrink_vec};
use crate::types::ClientId;

/// A published message as the router sees it. On the fast path every part borrows the
/// client's read buffer; nothing is copied or reference-counted until a delivery needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PubRef<'a> {
    pub(crate) subject: &'a [u8],
    pub(crate) reply: Option<&'a [u8]>,
    pub(crate) header_len: Option<usize>,
    /// Headers followed by payload.
    pub(crate) message: &'a [u8],
    /// `message` as shared `Bytes`, when it was split off the read buffer: large payloads are
    /// then queued by reference instead of copied (docs/style.md §4).
    pub(crate) shared: Option<&'a Bytes>,
    /// Which queue groups may receive it: all for a client's message, only those a leaf's
    /// `LMSG` names for a leaf's.
    pub(crate) queues: QueueFilter<'a>,
    /// What clients see instead of `subject` and `reply`: a JetStream delivery that reached
    /// this server over a leaf carries its stream subject after an `@` in its `$JS.ACK.`
    /// reply (`server/client.go` `processMsgResults`); leafs are given it unchanged.
    pub(crate) client_view: Option<(&'a [u8], &'a [u8])>,
}

impl PubRef<'_> {
    /// The subject a client's `MSG` (or an MQTT `PUBLISH`) names.
    pub(crate) fn client_subject(&self) -> &[u8] {
        self.client_view
            .map_or(self.subject, |(subject, _)| subject)
    }

    /// The reply a client's `MSG` names.
    pub(crate) fn client_reply(&self) -> Option<&[u8]> {
        self.client_view
            .map_or(self.reply, |(_, reply)| Some(reply))
    }
}

/// The queue groups a message may be delivered to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum QueueFilter<'a> {
    /// Every matching group (a client's message).
    All,
    /// None (a leaf's message that names no group).
    None,
    /// The groups named in this space-separated list.
    Only(&'a [u8]),
}

impl<'a> PubRef<'a> {
    pub(crate) fn from_publish(publish: &'a Publish) -> Self {
        Self {
            subject: &publish.subject,
            reply: publish.reply.as_deref(),
            header_len: publish.header_len,
            message: &publish.message,
            shared: Some(&publish.message),
            queues: QueueFilter::All,
            client_view: None,
        }
    }
}

/// The global account: users outside any account block (`server/accounts.go` `globalAccountName`).
pub const GLOBAL_ACCOUNT: &str = "$G";

/// The default system account name (`server/accounts.go` `DEFAULT_SYSTEM_ACCOUNT`).
pub const DEFAULT_SYSTEM_ACCOUNT: &str = "$SYS";

/// Index of an account in the router's table. Accounts are never removed while the broker
/// lives (a reload may add accounts; one it drops stays, empty), so the index stays valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct AccountId(u32);

impl AccountId {
    /// `$G`, always the first account.
    pub(crate) const GLOBAL: Self = Self(0);

    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// Handle of one subscription inside the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SubKey {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

/// One subscription, as compact as its uses allow: a server may hold millions. The strings are
/// boxed slices (no capacity word, no reference count); the sid is shared with the client's
/// sid map.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub(crate) client: ClientId,
    pub(crate) sid: Arc<[u8]>,
    pub(crate) subject: Box<[u8]>,
    pub(crate) queue: Option<Box<[u8]>>,
    pub(crate) delivered: u64,
    /// The `UNSUB` limit; only a limit above zero is ever set.
    pub(crate) max: Option<NonZeroU64>,
    /// A client's or a leaf's (the router delivers to a leaf's subscriptions through the
    /// leaf's renderer, once per leaf).
    pub(crate) owner: crate::broker::leaf::SubOwner,
    /// The number of queue members it stands for: 1, or a leaf queue group's weight.
    pub(crate) weight: u32,
    /// The cluster name of the leaf it came from (`server/leafnode.go` `sub.origin`):
    /// interest is never advertised to a leaf of that same cluster.
    pub(crate) origin: Option<Arc<str>>,
}

impl Subscription {
    /// A copy of what interest propagation needs (no delivery counters).
    pub(crate) fn clone_meta(&self) -> Self {
        Self {
            client: self.client,
            sid: Arc::clone(&self.sid),
            subject: self.subject.clone(),
            queue: self.queue.clone(),
            delivered: 0,
            max: None,
            owner: self.owner,
            weight: self.weight,
            origin: self.origin.clone(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct SubSlot {
    pub(crate) generation: u32,
    /// The account of `sub`: kept here, beside the generation, where it costs no space (a
    /// field of `Subscription` would grow every slot by 8 bytes).
    pub(crate) account: AccountId,
    pub(crate) sub: Option<Subscription>,
}

/// A stream an account receives from another (`server/accounts.go` `streamImport`), kept on the
/// exporting side: a message published in the exporter on a subject matching `from` is routed
/// in `importer` under the subject [`SubjectMap::apply`] gives.
#[derive(Debug, Clone)]
pub(crate) struct StreamFeed {
    pub(crate) from: Box<[u8]>,
    pub(crate) importer: AccountId,
    pub(crate) map: SubjectMap,
}

/// How a stream import renames subjects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SubjectMap {
    /// The subject is kept.
    Same,
    /// `prefix`: `<prefix>.<subject>`; the prefix is stored with its trailing dot.
    Prefix(Box<[u8]>),
    /// `to` on a literal `from`: the subject becomes `to`.
    Literal(Box<[u8]>),
}

impl SubjectMap {
    /// The subject in the importing account, written into `out` (cleared first).
    pub(crate) fn apply(&self, subject: &[u8], out: &mut Vec<u8>) {
        out.clear();
        match self {
            Self::Same => out.extend_from_slice(subject),
            Self::Prefix(prefix) => {
                out.extend_from_slice(prefix);
                out.extend_from_slice(subject);
            }
            Self::Literal(to) => out.extend_from_slice(to),
        }
    }
}

/// A service an account imports (`server/accounts.go` `serviceImport`), kept on the importing
/// side: a request published in the importer on a subject matching `local` goes to `exporter`
/// under `remote` (or the request's own subject when `local` has wildcards).
#[derive(Debug, Clone)]
pub(crate) struct ServiceImport {
    pub(crate) local: Box<[u8]>,
    pub(crate) remote: Box<[u8]>,
    pub(crate) exporter: AccountId,
    pub(crate) response_type: ResponseType,
    pub(crate) threshold: Duration,
    /// The latency tracking of the export it imports (`server/accounts.go`
    /// `serviceImport.latency`).
    pub(crate) latency: Option<Arc<Latency>>,
    /// `share`: measurements show the requestor's details.
    pub(crate) share: bool,
}

/// A tracked service export's sampling and results subject (`server/accounts.go`
/// `serviceLatency`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Latency {
    pub(crate) sampling: LatencySampling,
    pub(crate) subject: Box<[u8]>,
}

/// Where the responses to one service request go (`server/accounts.go`
/// `addRespServiceImport`): a message published in the exporter to the rewritten reply subject
/// is routed in `importer` to the requester's own `reply`, while the route lives.
#[derive(Debug, Clone)]
pub(crate) struct ResponseRoute {
    pub(crate) importer: AccountId,
    pub(crate) reply: Box<[u8]>,
    pub(crate) response_type: ResponseType,
    pub(crate) expires: Instant,
    /// The measurement of a sampled request to a tracked service, until its response.
    pub(crate) tracking: Option<Box<crate::broker::latency::Tracking>>,
}

/// What [`Responses::take`] found for a response subject.
#[derive(Debug)]
pub(crate) enum Taken {
    /// A live route: the response goes through it.
    Live(ResponseRoute),
    /// A route past its threshold, now dropped.
    Expired(ResponseRoute),
}

/// Most response routes an account keeps: a flood of requests cannot grow memory without
/// bound. Past it the oldest route is dropped (its requester gets no more responses).
pub const MAX_RESPONSE_ROUTES: usize = 65_536;

/// Most owed routes one removed subscription looks at to release those it covered; routes
/// it does not look at still end at their threshold. Bounds the work of an UNSUB of a
/// wildcard while many responses are pending (nats-server scans them all).
pub const MAX_RELEASE_SCAN: usize = 1024;

/// `(importer, reply, rewritten reply)`: one response route, indexed by whom it is owed to.
type Owed = (AccountId, Box<[u8]>, Box<[u8]>);

/// The service responses an exporting account is waiting for, by rewritten reply subject.
#[derive(Debug, Default)]
pub(crate) struct Responses {
    routes: HashMap<Box<[u8]>, ResponseRoute>,
    /// Reply subjects in the order they were made, for dropping the oldest and the expired.
    order: VecDeque<(Instant, Box<[u8]>)>,
    /// `(importer, reply, rewritten reply)` of every route: the routes owed to one reply
    /// subject of an importer, for dropping them when its interest goes.
    owed: BTreeSet<Owed>,
}

impl Responses {
    pub(crate) fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.routes.len()
    }

    pub(crate) fn contains(&self, reply: &[u8]) -> bool {
        self.routes.contains_key(reply)
    }

    /// Removes one route and its `owed` entry.
    fn remove(&mut self, key: &[u8]) -> Option<ResponseRoute> {
        let (key, route) = self.routes.remove_entry(key)?;
        self.owed
            .remove(&(route.importer, route.reply.clone(), key));
        if self.routes.is_empty() {
            self.order = VecDeque::new();
        }
        Some(route)
    }

    /// Adds a route, first dropping expired ones from the front and, when full, the oldest.
    /// Returns the dropped routes that carried a latency measurement (usually none).
    pub(crate) fn insert(
        &mut self,
        reply: Box<[u8]>,
        route: ResponseRoute,
        now: Instant,
    ) -> Vec<ResponseRoute> {
        let mut dropped = Vec::new();
        while let Some((expires, key)) = self.order.front() {
            let stale = self.routes.get(key).is_none_or(|r| r.expires != *expires);
            if !stale && *expires > now && self.routes.len() < MAX_RESPONSE_ROUTES {
                break;
            }
            if let Some((_, key)) = self.order.pop_front()
                && !stale
                && let Some(old) = self.remove(&key)
                && old.tracking.is_some()
            {
                dropped.push(old);
            }
        }
        self.order.push_back((route.expires, reply.clone()));
        self.owed
            .insert((route.importer, route.reply.clone(), reply.clone()));
        self.routes.insert(reply, route);
        if self.order.len() > 2 * self.routes.len() + 64 {
            let routes = &self.routes;
            self.order
                .retain(|(expires, key)| routes.get(key).is_some_and(|r| r.expires == *expires));
        }
        dropped
    }

    /// Drops the route of `key` when it expired by `now` and returns it (the response
    /// threshold timer of a tracked request).
    pub(crate) fn take_expired(&mut self, key: &[u8], now: Instant) -> Option<ResponseRoute> {
        if self.routes.get(key)?.expires > now {
            return None;
        }
        self.remove(key)
    }

    /// The route for a response published to `subject`: `None` when there is none; an
    /// expired one is dropped. A singleton route is used up by this response.
    pub(crate) fn take(&mut self, subject: &[u8], now: Instant) -> Option<Taken> {
        let route = self.routes.get(subject)?;
        if route.expires <= now || route.response_type == ResponseType::Singleton {
            let route = self.remove(subject)?;
            return Some(if route.expires > now {
                Taken::Live(route)
            } else {
                Taken::Expired(route)
            });
        }
        Some(Taken::Live(route.clone()))
    }

    /// Drops the route of `key` (a request no subscriber of the exporter received) and
    /// returns it.
    pub(crate) fn drop_route(&mut self, key: &[u8]) -> Option<ResponseRoute> {
        self.remove(key)
    }

    /// The distinct reply subjects of `importer` that routes are owed to and that `subject`
    /// (a subscription's, perhaps with wildcards) matches. Only the replies sharing the
    /// subject's literal leading tokens are looked at, and at most [`MAX_RELEASE_SCAN`] of them.
    fn owed_replies(&self, importer: AccountId, subject: &[u8]) -> Vec<Box<[u8]>> {
        let mut prefix_len = 0;
        for token in subject.split(|b| *b == b'.') {
            if token == b"*" || token == b">" {
                break;
            }
            prefix_len += token.len() + 1;
        }
        let literal = prefix_len > subject.len();
        let prefix = subject
            .get(..prefix_len.min(subject.len()))
            .unwrap_or_default();
        let mut replies: Vec<Box<[u8]>> = Vec::new();
        for (_, reply, _) in self
            .owed
            .range((importer, Box::<[u8]>::from(prefix), Box::default())..)
            .take_while(|(acc, reply, _)| *acc == importer && reply.starts_with(prefix))
            .take(MAX_RELEASE_SCAN)
        {
            if literal && &reply[..] != subject {
                break;
            }
            if replies.last() != Some(reply) && subject::matches(subject, reply) {
                replies.push(reply.clone());
            }
        }
        replies
    }

    /// Every route has its `owed` entry and no entry is left over.
    #[cfg(any(test, feature = "fuzzing"))]
    fn check(&self) -> Result<(), String> {
        let indexed = self.owed.len() == self.routes.len()
            && self.owed.iter().all(|(importer, reply, key)| {
                self.routes
                    .get(key)
                    .is_some_and(|r| r.importer == *importer && r.reply == *reply)
            });
        if indexed {
            Ok(())
        } else {
            Err(format!(
                "{} response routes but {} owed entries, or they differ",
                self.routes.len(),
                self.owed.len()
            ))
        }
    }

    /// Drops every route owed to `reply` of `importer`; the dropped routes that carried a
    /// latency measurement go to `tracked`.
    fn drop_owed(&mut self, importer: AccountId, reply: &[u8], tracked: &mut Vec<ResponseRoute>) {
        let keys: Vec<Box<[u8]>> = self
            .owed
            .range((importer, Box::<[u8]>::from(reply), Box::default())..)
            .take_while(|(acc, r, _)| *acc == importer && &r[..] == reply)
            .map(|(_, _, key)| key.clone())
            .collect();
        for key in keys {
            if let Some(route) = self.remove(&key)
                && route.tracking.is_some()
            {
                tracked.push(route);
            }
        }
    }
}

/// Counters of one account, for `/accountz`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AccountStats {
    /// Messages published in the account.
    pub(crate) in_msgs: u64,
}

/// One account: a subject space.
#[derive(Debug)]
pub(crate) struct Account {
    pub(crate) name: Arc<str>,
    pub(crate) sublist: Sublist<SubKey>,
    pub(crate) stats: AccountStats,
    /// Streams other accounts import from this one.
    pub(crate) stream_feeds: Vec<StreamFeed>,
    /// Services this account imports from others.
    pub(crate) service_imports: Vec<ServiceImport>,
    /// Responses this account's services owe to importers.
    pub(crate) responses: Responses,
}

/// The accounts table and the subscription table.
#[derive(Debug)]
pub(crate) struct Router {
    accounts: Vec<Account>,
    by_name: HashMap<Arc<str>, AccountId>,
    system: Option<AccountId>,
    sublist_seed: u64,
    pub(crate) subs: Vec<SubSlot>,
    /// Free slots of `subs`, lowest first: reusing the lowest keeps the live subscriptions at
    /// the front, so that the free slots at the end can be dropped. It may still name slots
    /// past the end of `subs`, which are skipped.
    pub(crate) free_subs: BinaryHeap<Reverse<u32>>,
    /// The generation a slot appended to `subs` starts at: above that of every slot the table
    /// has dropped, so that no old `SubKey` can name a new subscription.
    next_sub_generation: u32,
    n_subs: usize,
    /// Tracked response routes dropped because their requestor's interest went
    /// (`server/accounts.go` `sendReplyInterestLostTrackLatency`), by exporting account, for
    /// the broker to report; see [`Router::take_interest_lost`].
    interest_lost: Vec<(AccountId, ResponseRoute)>,
}

impl Router {
    /// A router with the global account only; `sublist_seed` seeds every account's match cache.
    pub(crate) fn new(sublist_seed: u64) -> Self {
        let mut router = Self {
            accounts: Vec::new(),
            by_name: HashMap::new(),
            system: None,
            sublist_seed,
            subs: Vec::new(),
            free_subs: BinaryHeap::new(),
            next_sub_generation: 0,
            n_subs: 0,
            interest_lost: Vec::new(),
        };
        router.ensure_account(GLOBAL_ACCOUNT);
        router
    }

    /// The account named `name`, created empty when it does not exist yet.
    pub(crate) fn ensure_account(&mut self, name: &str) -> AccountId {
        if let Some(id) = self.by_name.get(name) {
            return *id;
        }
        let id = AccountId(u32::try_from(self.accounts.len()).unwrap_or(u32::MAX));
        let name: Arc<str> = Arc::from(name);
        // Each account's cache gets its own seed, derived from the broker's.
        let seed = self
            .sublist_seed
            .wrapping_add(u64::from(id.0).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        self.accounts.push(Account {
            name: Arc::clone(&name),
            sublist: Sublist::with_seed(seed),
            stats: AccountStats::default(),
            stream_feeds: Vec::new(),
            service_imports: Vec::new(),
            responses: Responses::default(),
        });
        self.by_name.insert(name, id);
        id
    }

    /// Marks `name` as the system account (created when missing); `None` clears it.
    pub(crate) fn set_system_account(&mut self, name: Option<&str>) {
        self.system = name.map(|n| self.ensure_account(n));
    }

    /// The system account, when there is one.
    pub(crate) fn system_account(&self) -> Option<AccountId> {
        self.system
    }

    pub(crate) fn lookup(&self, name: &str) -> Option<AccountId> {
        self.by_name.get(name).copied()
    }

    pub(crate) fn account(&self, id: AccountId) -> Option<&Account> {
        self.accounts.get(id.index())
    }

    pub(crate) fn account_mut(&mut self, id: AccountId) -> Option<&mut Account> {
        self.accounts.get_mut(id.index())
    }

    /// Every account, in creation order (`$G` first).
    pub(crate) fn accounts(&self) -> impl Iterator<Item = (AccountId, &Account)> + '_ {
        self.accounts
            .iter()
            .enumerate()
            .filter_map(|(i, a)| Some((AccountId(u32::try_from(i).ok()?), a)))
    }

    /// The account's name (`$G` for an unknown id, which cannot happen).
    pub(crate) fn name(&self, id: AccountId) -> &Arc<str> {
        match self
            .accounts
            .get(id.index())
            .or_else(|| self.accounts.first())
        {
            Some(a) => &a.name,
            None => unreachable_name(),
        }
    }

    /// Applies the accounts configuration: creates the accounts that do not exist yet (none
    /// is ever removed: a client bound to an account that a reload dropped keeps an empty
    /// subject space until it is closed) and replaces every import. The configuration must
    /// have passed [`validate_accounts`].
    pub(crate) fn configure(&mut self, accounts: &[AccountConfig], system: Option<&str>) {
        for account in accounts {
            self.ensure_account(&account.name);
        }
        self.set_system_account(system);
        for account in &mut self.accounts {
            account.stream_feeds.clear();
            account.service_imports.clear();
        }
        let mut by_name: HashMap<&str, &[ExportConfig]> = HashMap::with_capacity(accounts.len());
        for account in accounts {
            by_name
                .entry(account.name.as_str())
                .or_insert(&account.exports[..]);
        }
        for account in accounts {
            let Some(importer) = self.lookup(&account.name) else {
                continue;
            };
            for import in &account.imports {
                let Some(exporter) = self.lookup(&import.account) else {
                    continue;
                };
                let exports = by_name
                    .get(import.account.as_str())
                    .copied()
                    .unwrap_or_default();
                match import.kind {
                    ExportKind::Stream => {
                        let feed = StreamFeed {
                            from: import.subject.as_bytes().into(),
                            importer,
                            map: stream_map(import),
                        };
                        if let Some(a) = self.account_mut(exporter) {
                            a.stream_feeds.push(feed);
                        }
                    }
                    ExportKind::Service => {
                        let export = authorizing_export(exports, import, &account.name);
                        // Tracking needs the system account (`EventsEnabled`), a service of
                        // singleton responses and a results subject one can publish to
                        // (`TrackServiceExportWithSampling`; `Broker::try_new` refuses the
                        // others with its errors).
                        let latency = export
                            .filter(|e| {
                                system.is_some() && e.response_type == ResponseType::Singleton
                            })
                            .and_then(|e| e.latency.as_ref())
                            .filter(|l| subject::is_valid_publish(l.subject.as_bytes()))
                            .map(|l| {
                                Arc::new(Latency {
                                    sampling: l.sampling,
                                    subject: l.subject.as_bytes().into(),
                                })
                            });
                        let service = ServiceImport {
                            local: import
                                .to
                                .as_deref()
                                .unwrap_or(&import.subject)
                                .as_bytes()
                                .into(),
                            remote: import.subject.as_bytes().into(),
                            exporter,
                            response_type: export.map(|e| e.response_type).unwrap_or_default(),
                            threshold: export
                                .and_then(|e| e.response_threshold)
                                .unwrap_or(DEFAULT_RESPONSE_THRESHOLD),
                            latency,
                            share: import.share,
                        };
                        if let Some(a) = self.account_mut(importer) {
                            a.service_imports.push(service);
                        }
                    }
                }
            }
        }
    }

    /// Every subscription of `account` with its owner kind and weight.
    pub(crate) fn account_subs(
        &self,
        account: AccountId,
    ) -> impl Iterator<Item = (crate::broker::leaf::SubOwner, &Subscription, u32)> + '_ {
        self.subs
            .iter()
            .filter(move |slot| slot.account == account)
            .filter_map(|slot| slot.sub.as_ref())
            .map(|sub| (sub.owner, sub, sub.weight))
    }

    /// Live subscriptions over all accounts.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn n_subs(&self) -> usize {
        self.n_subs
    }

    /// Index statistics summed over every account (`/subsz` without `acc`).
    pub(crate) fn sublist_stats(&self, only: Option<AccountId>) -> SublistStats {
        let mut total = SublistStats::default();
        for (id, account) in self.accounts() {
            if only.is_some_and(|o| o != id) {
                continue;
            }
            let s = account.sublist.stats();
            total.add(&s);
        }
        total
    }

    pub(crate) fn sub(&self, key: SubKey) -> Option<&Subscription> {
        let slot = self.subs.get(key.index as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        slot.sub.as_ref()
    }

    /// The account a live subscription is in.
    pub(crate) fn sub_account(&self, key: SubKey) -> Option<AccountId> {
        let slot = self.subs.get(key.index as usize)?;
        (slot.generation == key.generation && slot.sub.is_some()).then_some(slot.account)
    }

    pub(crate) fn sub_mut(&mut self, key: SubKey) -> Option<&mut Subscription> {
        let slot = self.subs.get_mut(key.index as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        slot.sub.as_mut()
    }

    /// Indexes a new subscription in `account`.
    pub(crate) fn insert(
        &mut self,
        account: AccountId,
        sub: Subscription,
    ) -> Result<SubKey, InsertError> {
        let index = match self.pop_free_sub_slot() {
            Some(i) => i,
            None => {
                let i = u32::try_from(self.subs.len()).unwrap_or(u32::MAX);
                self.subs.push(SubSlot {
                    generation: self.next_sub_generation,
                    account: AccountId::GLOBAL,
                    sub: None,
                });
                i
            }
        };
        let generation = self.subs.get(index as usize).map_or(0, |s| s.generation);
        let key = SubKey { index, generation };
        let inserted = match self.accounts.get_mut(account.index()) {
            Some(account) => account
                .sublist
                .insert(&sub.subject, sub.queue.as_deref(), key),
            None => Err(InsertError::InvalidSubject),
        };
        if let Err(err) = inserted {
            self.free_sub_slot(index);
            return Err(err);
        }
        if let Some(slot) = self.subs.get_mut(index as usize) {
            slot.account = account;
            slot.sub = Some(sub);
        }
        self.n_subs += 1;
        Ok(key)
    }

    /// Removes a subscription from its account's index and the table; returns it.
    pub(crate) fn remove(&mut self, key: SubKey) -> Option<Subscription> {
        let slot = self.subs.get_mut(key.index as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        let sub = slot.sub.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        let account = slot.account;
        if let Some(acc) = self.accounts.get_mut(account.index()) {
            acc.sublist.remove(&sub.subject, sub.queue.as_deref(), key);
        }
        self.n_subs = self.n_subs.saturating_sub(1);
        self.free_sub_slot(key.index);
        self.release_responses(account, &sub.subject);
        Some(sub)
    }

    /// The tracked response routes dropped since the last call because their requestor's
    /// interest went, with their exporting account.
    pub(crate) fn take_interest_lost(&mut self) -> Vec<(AccountId, ResponseRoute)> {
        std::mem::take(&mut self.interest_lost)
    }

    /// The response routes of every account agree with their index.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn check_responses(&self) -> Result<(), String> {
        self.accounts
            .iter()
            .try_for_each(|a| a.responses.check().map_err(|e| format!("{}: {e}", a.name)))
    }

    /// After a subscription on `subject` in `importer` went: drops the response routes owed
    /// to the reply subjects it covered that nothing in `importer` is subscribed to any more,
    /// so a later subscriber never gets responses to an abandoned request
    /// (`server/accounts.go` `checkForReverseEntry`, called from `client.unsubscribe`).
    fn release_responses(&mut self, importer: AccountId, subject: &[u8]) {
        let Some(acc) = self.accounts.get(importer.index()) else {
            return;
        };
        let mut exporters: Vec<AccountId> =
            acc.service_imports.iter().map(|si| si.exporter).collect();
        exporters.sort_unstable();
        exporters.dedup();
        for exporter in exporters {
            let Some(replies) = self
                .accounts
                .get(exporter.index())
                .filter(|e| !e.responses.is_empty())
                .map(|e| e.responses.owed_replies(importer, subject))
            else {
                continue;
            };
            for reply in replies {
                let interest = self
                    .accounts
                    .get_mut(importer.index())
                    .is_some_and(|acc| acc.sublist.matches(&reply).fanout() > 0);
                if interest {
                    continue;
                }
                let mut tracked = Vec::new();
                if let Some(e) = self.accounts.get_mut(exporter.index()) {
                    e.responses.drop_owed(importer, &reply, &mut tracked);
                }
                self.interest_lost
                    .extend(tracked.into_iter().map(|route| (exporter, route)));
            }
        }
    }

    /// The lowest free slot of `subs`. Entries for slots that were dropped (and perhaps
    /// appended again since) are skipped.
    fn pop_free_sub_slot(&mut self) -> Option<u32> {
        while let Some(Reverse(index)) = self.free_subs.pop() {
            if self
                .subs
                .get(index as usize)
                .is_some_and(|slot| slot.sub.is_none())
            {
                return Some(index);
            }
        }
        None
    }

    /// Marks a slot of `subs` free and gives back the table's memory after many subscriptions
    /// went away: the free slots at its end are dropped and the table and the free list shrink
    /// once under a quarter full. A `Vec` never shrinks by itself, so a spike of subscriptions
    /// would otherwise be held for the server's lifetime. Every step is paid for by the
    /// removals before it.
    fn free_sub_slot(&mut self, index: u32) {
        self.free_subs.push(Reverse(index));
        if index as usize + 1 == self.subs.len() {
            while let Some(last) = self.subs.last() {
                if last.sub.is_some() {
                    break;
                }
                self.next_sub_generation = self.next_sub_generation.max(last.generation);
                self.subs.pop();
            }
            shrink_vec(&mut self.subs);
        }
        // Entries for dropped slots are stale; rebuild the list from the free slots once they
        // are most of it.
        let n_free = self.subs.len().saturating_sub(self.n_subs);
        if self.free_subs.len() > 2 * n_free + 64 {
            let mut free = std::mem::take(&mut self.free_subs).into_vec();
            free.retain(|Reverse(i)| {
                self.subs
                    .get(*i as usize)
                    .is_some_and(|slot| slot.sub.is_none())
            });
            free.sort_unstable();
            free.dedup();
            shrink_vec(&mut free);
            self.free_subs = BinaryHeap::from(free);
        }
    }

    /// Checks the table against the account indexes (fuzzing and simulation tests).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        let n_live = self.subs.iter().filter(|s| s.sub.is_some()).count();
        let n_indexed: usize = self.accounts.iter().map(|a| a.sublist.len()).sum();
        if n_live != n_indexed || n_live != self.n_subs {
            return Err(format!(
                "subscription counts differ: slab {n_live}, indexes {n_indexed}, counter {}",
                self.n_subs
            ));
        }
        if self.subs.last().is_some_and(|slot| slot.sub.is_none()) {
            return Err("the subscription table ends with a free slot".to_owned());
        }
        let n_free = self.subs.len() - n_live;
        if self.free_subs.len() > 2 * n_free + 64 {
            return Err(format!(
                "free list of {} entries for {n_free} free slots",
                self.free_subs.len()
            ));
        }
        for slot in &self.subs {
            if slot.sub.is_some() && self.account(slot.account).is_none() {
                return Err("subscription in an unknown account".to_owned());
            }
        }
        Ok(())
    }
}

/// How long a service export's responses are accepted by default (`server/accounts.go`
/// `DEFAULT_SERVICE_EXPORT_RESPONSE_THRESHOLD`).
pub(crate) const DEFAULT_RESPONSE_THRESHOLD: Duration = Duration::from_secs(120);

/// Deepest import chain the cycle check follows (`server/accounts.go`
/// `MaxAccountCycleSearchDepth`).
const MAX_CYCLE_SEARCH_DEPTH: usize = 1024;

/// How a stream import renames the exporter's subjects (`AddStreamImportWithClaim`: a
/// prefix becomes `to = <prefix>.<from>`).
fn stream_map(import: &ImportConfig) -> SubjectMap {
    if let Some(prefix) = &import.prefix {
        let mut p = prefix.as_bytes().to_vec();
        if p.last() != Some(&b'.') {
            p.push(b'.');
        }
        return SubjectMap::Prefix(p.into());
    }
    match &import.to {
        Some(to) if to != &import.subject => SubjectMap::Literal(to.as_bytes().into()),
        _ => SubjectMap::Same,
    }
}

/// The export that allows `import` into `importer`, if any (`checkStreamImportAuthorized`,
/// `checkServiceImportAuthorized`): same kind, a subject equal to or covering the import's,
/// public or naming the importer.
fn authorizing_export<'a>(
    exports: &'a [ExportConfig],
    import: &ImportConfig,
    importer: &str,
) -> Option<&'a ExportConfig> {
    if !subject::is_valid_subscription(import.subject.as_bytes()) {
        return None;
    }
    exports.iter().find(|e| {
        e.kind == import.kind
            && (e.subject == import.subject
                || subject::is_subset_match(import.subject.as_bytes(), e.subject.as_bytes()))
            && (e.accounts.is_empty() || e.accounts.iter().any(|a| a == importer))
    })
}

/// An import as the cycle check sees it: its account, and `to` (streams: the subject in the
/// importer; services: the subject in the exporter) and `from` (services: the local subject).
struct AddedImport<'a> {
    exporter: &'a str,
    to: String,
    from: &'a str,
}

/// Checks the accounts configuration as nats-server does at start-up (`server/opts.go`
/// `parseAccounts`, then `AddStreamImport`/`AddServiceImport`): imports name defined accounts
/// and authorized exports, a stream prefix is literal, `to` is only given wildcards the
/// exported subject has, and no import forms a cycle. Errors carry the reference's text.
pub(crate) fn validate_accounts(accounts: &[AccountConfig]) -> Result<(), AuthConfigError> {
    let mut check = ImportCheck::new(accounts);
    for account in accounts {
        for import in &account.imports {
            check.add(&account.name, import)?;
        }
    }
    Ok(())
}

/// Checks the exports' latency tracking as nats-server does at start-up (`server/opts.go`
/// `parseAccounts`, then `TrackServiceExportWithSampling`): a system account, a sampling of
/// 1 to 100 (or headers), a results subject that is a valid publish subject outside the
/// account's service exports added so far, and singleton responses. Errors carry the
/// reference's text.
pub(crate) fn validate_latency(
    accounts: &[AccountConfig],
    has_system_account: bool,
) -> Result<(), AuthConfigError> {
    for account in accounts {
        let services: Vec<&ExportConfig> = account
            .exports
            .iter()
            .filter(|e| e.kind == ExportKind::Service)
            .collect();
        for (index, export) in services.iter().enumerate() {
            let Some(latency) = &export.latency else {
                continue;
            };
            let service = crate::auth::go_quote(export.subject.as_bytes());
            if !has_system_account {
                return Err(AuthConfigError::new(format!(
                    "Error adding service latency sampling for {service}: system account not setup"
                )));
            }
            let results = latency.subject.as_bytes();
            let loops_back = services
                .iter()
                .take(index + 1)
                .any(|e| subject::is_subset_match(results, e.subject.as_bytes()));
            let problem = if matches!(latency.sampling, LatencySampling::Percent(p) if !(1..=100).contains(&p))
            {
                Some("bad sampling percentage, should be 1-100")
            } else if !subject::is_valid_publish(results) || loops_back {
                Some("invalid publish subject")
            } else if export.response_type != ResponseType::Singleton {
                Some("bad service response type")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(AuthConfigError::new(format!(
                    "Error adding service latency sampling for {service} on subject {}: {problem}",
                    crate::auth::go_quote(results)
                )));
            }
        }
    }
    Ok(())
}

/// The import checks of [`validate_accounts`], one import at a time: each is checked after
/// those added before it, in the order `validate_accounts` takes them, against the exports of
/// `accounts` (their imports are not read). Adding imports that pass and skipping those that
/// fail costs each import one check, not a check of the whole configuration.
pub(crate) struct ImportCheck<'a> {
    accounts: &'a [AccountConfig],
    by_name: HashMap<&'a str, usize>,
    added: Added<'a>,
}

/// The imports added so far, by importer: streams, services.
type Added<'a> = HashMap<&'a str, (Vec<AddedImport<'a>>, Vec<AddedImport<'a>>)>;

impl<'a> ImportCheck<'a> {
    pub(crate) fn new(accounts: &'a [AccountConfig]) -> Self {
        let mut by_name = HashMap::with_capacity(accounts.len());
        for (index, account) in accounts.iter().enumerate() {
            by_name.entry(account.name.as_str()).or_insert(index);
        }
        Self {
            accounts,
            by_name,
            added: HashMap::new(),
        }
    }

    fn exports(&self, account: &str) -> Option<&'a [ExportConfig]> {
        let accounts = self.accounts;
        self.by_name
            .get(account)
            .and_then(|i| accounts.get(*i))
            .map(|a| &a.exports[..])
    }

    /// Checks `import` of `importer` after the imports added so far, and adds it when it
    /// passes.
    pub(crate) fn add(
        &mut self,
        importer: &'a str,
        import: &'a ImportConfig,
    ) -> Result<(), AuthConfigError> {
        let err = |text: String| Err(AuthConfigError::new(text));
        let what = match import.kind {
            ExportKind::Stream => "stream",
            ExportKind::Service => "service",
        };
        let quoted = crate::auth::go_quote(import.subject.as_bytes());
        let Some(exports) = self.exports(&import.account) else {
            return err(format!(
                "{} account not defined for {what} import",
                crate::auth::go_quote(import.account.as_bytes())
            ));
        };
        if authorizing_export(exports, import, importer).is_none() {
            return err(format!(
                "Error adding {what} import {quoted}: {what} import not authorized"
            ));
        }
        match import.kind {
            ExportKind::Stream => {
                if let Some(prefix) = &import.prefix
                    && subject::has_wildcard(prefix.as_bytes())
                {
                    return err(format!(
                        "Error adding stream import {quoted}: stream import prefix can not contain wildcard tokens"
                    ));
                }
                let to = match (&import.prefix, &import.to) {
                    (Some(prefix), _) => {
                        format!("{}.{}", prefix.trim_end_matches('.'), import.subject)
                    }
                    (None, Some(to)) => to.clone(),
                    (None, None) => import.subject.clone(),
                };
                if subject::has_wildcard(import.subject.as_bytes())
                    && import.prefix.is_none()
                    && to != import.subject
                {
                    // natsws maps wildcard stream imports by prefix only.
                    return err(format!(
                        "Error adding stream import {quoted}: a 'to' mapping of a wildcard stream import is not supported by natsws, use 'prefix'"
                    ));
                }
                let mut visited = vec![importer];
                if stream_cycle(self, &import.account, &to, &mut visited) {
                    return err(format!(
                        "Error adding stream import {quoted}: import forms a cycle"
                    ));
                }
                self.added.entry(importer).or_default().0.push(AddedImport {
                    exporter: &import.account,
                    to,
                    from: &import.subject,
                });
            }
            ExportKind::Service => {
                let local = import.to.as_deref().unwrap_or(&import.subject);
                if local != import.subject
                    && (subject::has_wildcard(local.as_bytes())
                        || subject::has_wildcard(import.subject.as_bytes()))
                {
                    return err(format!(
                        "Error adding service import {quoted}: a 'to' mapping of a wildcard service import is not supported by natsws"
                    ));
                }
                let mut visited = vec![importer];
                if service_cycle(&self.added, &import.account, local, &mut visited) {
                    return err(format!(
                        "Error adding service import {quoted}: import forms a cycle"
                    ));
                }
                self.added.entry(importer).or_default().1.push(AddedImport {
                    exporter: &import.account,
                    to: import.subject.clone(),
                    from: local,
                });
            }
        }
        Ok(())
    }
}

/// `checkStreamImportsForCycles`, over the imports added so far.
fn stream_cycle<'a>(
    check: &ImportCheck<'a>,
    account: &'a str,
    to: &str,
    visited: &mut Vec<&'a str>,
) -> bool {
    if visited.len() >= MAX_CYCLE_SEARCH_DEPTH {
        return true;
    }
    let exports = check.exports(account).unwrap_or_default();
    let exported = exports.iter().any(|e| {
        e.kind == ExportKind::Stream
            && subject::is_subset_match(to.as_bytes(), e.subject.as_bytes())
    });
    if !exported {
        return false;
    }
    let Some((streams, _)) = check.added.get(account) else {
        return false;
    };
    let mut to = to.to_owned();
    for import in streams {
        if subject::collide(to.as_bytes(), import.to.as_bytes()) {
            if visited.contains(&import.exporter) {
                return true;
            }
            visited.push(account);
            if subject::is_subset_match(import.to.as_bytes(), to.as_bytes()) {
                to.clone_from(&import.to);
            }
            if stream_cycle(check, import.exporter, &to, visited) {
                return true;
            }
        }
    }
    false
}

/// `checkServiceImportsForCycles`, over the imports added so far.
fn service_cycle<'a>(
    added: &Added<'a>,
    account: &'a str,
    from: &str,
    visited: &mut Vec<&'a str>,
) -> bool {
    if visited.len() >= MAX_CYCLE_SEARCH_DEPTH {
        return true;
    }
    let Some((_, services)) = added.get(account) else {
        return false;
    };
    let mut from = from.to_owned();
    for import in services {
        if subject::collide(from.as_bytes(), import.to.as_bytes()) {
            if visited.contains(&import.exporter) {
                return true;
            }
            visited.push(account);
            if subject::is_subset_match(import.from.as_bytes(), from.as_bytes()) {
                import.from.clone_into(&mut from);
            }
            if service_cycle(added, import.exporter, &from, visited) {
                return true;
            }
        }
    }
    false
}

/// The router always holds `$G`; this is the name an empty table would have.
fn unreachable_name() -> &'static Arc<str> {
    static GLOBAL: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    GLOBAL.get_or_init(|| Arc::from(GLOBAL_ACCOUNT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NAMES: [&str; 4] = ["A", "B", "C", "D"];
    const SUBJECTS: [&str; 5] = ["x", "x.*", "x.>", "y", "p.x"];

    fn export() -> impl Strategy<Value = ExportConfig> {
        (
            any::<bool>(),
            0..SUBJECTS.len(),
            proptest::option::weighted(0.2, 0..NAMES.len()),
        )
            .prop_map(|(service, s, private)| ExportConfig {
                kind: if service {
                    ExportKind::Service
                } else {
                    ExportKind::Stream
                },
                subject: SUBJECTS[s].to_owned(),
                accounts: private
                    .map(|a| vec![NAMES[a].to_owned()])
                    .unwrap_or_default(),
                response_type: ResponseType::Singleton,
                response_threshold: None,
                latency: None,
            })
    }

    fn import() -> impl Strategy<Value = ImportConfig> {
        (
            any::<bool>(),
            prop_oneof![9 => 0..NAMES.len(), 1 => Just(NAMES.len())],
            0..SUBJECTS.len(),
            proptest::option::weighted(0.2, 0..SUBJECTS.len()),
            proptest::option::weighted(0.2, prop_oneof![Just("p"), Just("q.*")]),
        )
            .prop_map(|(service, a, s, to, prefix)| ImportConfig {
                kind: if service {
                    ExportKind::Service
                } else {
                    ExportKind::Stream
                },
                account: NAMES.get(a).map_or("Z", |n| n).to_owned(),
                subject: SUBJECTS[s].to_owned(),
                to: to.map(|t| SUBJECTS[t].to_owned()),
                prefix: prefix.map(str::to_owned),
                share: false,
            })
    }

    fn accounts() -> impl Strategy<Value = Vec<AccountConfig>> {
        proptest::collection::vec(
            (
                proptest::collection::vec(export(), 1..6),
                proptest::collection::vec(import(), 0..4),
            ),
            NAMES.len(),
        )
        .prop_map(|accounts| {
            accounts
                .into_iter()
                .zip(NAMES)
                .map(|((exports, imports), name)| AccountConfig {
                    name: name.to_owned(),
                    exports,
                    imports,
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Keeping the imports that pass, one at a time, with [`ImportCheck`] keeps exactly
        /// those that adding each and checking the whole configuration again keeps.
        #[test]
        fn import_checks_one_at_a_time_keep_what_whole_checks_keep(accounts in accounts()) {
            let candidates: Vec<(usize, ImportConfig)> = accounts
                .iter()
                .enumerate()
                .flat_map(|(i, a)| a.imports.iter().map(move |im| (i, im.clone())))
                .collect();
            let bare: Vec<AccountConfig> = accounts
                .iter()
                .map(|a| AccountConfig { imports: Vec::new(), ..a.clone() })
                .collect();
            let mut whole = bare.clone();
            for (i, import) in &candidates {
                whole[*i].imports.push(import.clone());
                if validate_accounts(&whole).is_err() {
                    whole[*i].imports.pop();
                }
            }
            let mut kept = vec![false; candidates.len()];
            {
                let mut check = ImportCheck::new(&bare);
                for ((i, import), keep) in candidates.iter().zip(&mut kept) {
                    *keep = check.add(&bare[*i].name, import).is_ok();
                }
            }
            let mut one_at_a_time = bare.clone();
            for ((i, import), keep) in candidates.into_iter().zip(kept) {
                if keep {
                    one_at_a_time[i].imports.push(import);
                }
            }
            prop_assert_eq!(one_at_a_time, whole);
        }
    }
}
