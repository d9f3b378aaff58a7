//! Compiled publish/subscribe permissions and the per-connection state that goes with them
//! (`server/client.go` `setPermissions`, `pubAllowedFullCheck`, `canSubscribe`; `allow_responses`
//! as `server/opts.go` `parseAllowResponses` reads it).
//!
//! [`Permissions`] is built once per user and shared (`Arc`) by all its connections; it answers
//! pure questions. [`ClientPermissions`] is the per-connection part the reference keeps on its
//! `client`: the publish result cache, the delivery-time deny filter (armed only once a wildcard
//! subscription overlapping a deny entry was accepted) and the `allow_responses` reply table.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::{PermissionsConfig, ResponsePermission};
use super::go_quote;
use super::sublist::SubjectList;
use crate::subject::{has_wildcard, is_subset_match};

/// `allow_responses` default maximum number of responses (`DEFAULT_ALLOW_RESPONSE_MAX_MSGS`).
pub const DEFAULT_ALLOW_RESPONSE_MAX_MSGS: i64 = 1;

/// `allow_responses` default expiry (`DEFAULT_ALLOW_RESPONSE_EXPIRATION`).
pub const DEFAULT_ALLOW_RESPONSE_EXPIRATION: Duration = Duration::from_secs(120);

/// Above this many entries the reply table is pruned of spent and expired entries
/// (`replyPermLimit`).
pub const REPLY_PERM_LIMIT: usize = 4096;

/// Hard bound on the reply table: it never holds more than this many entries plus one. When
/// pruning leaves more than three quarters of it in live entries, the oldest half is dropped.
/// The reference has no such bound (see the module docs of `auth`).
pub const MAX_REPLY_ENTRIES: usize = 65_536;

/// Bound on the per-connection publish result cache (`maxPermCacheSize`).
pub const MAX_PUBLISH_CACHE_ENTRIES: usize = 128;

/// Bound on the per-connection delivery deny cache (`maxDenyPermCacheSize`).
pub const MAX_DENY_CACHE_ENTRIES: usize = 256;

/// The queue group name reserved for the system (`sysGroup`): a client queue subscription with
/// it is refused with the subscription violation text, with or without permissions.
pub const SYS_QUEUE_GROUP: &[u8] = b"_sys_";

/// True when a client may not use this queue group name at all ([`SYS_QUEUE_GROUP`]).
#[must_use]
pub fn is_reserved_queue(queue: &[u8]) -> bool {
    queue == SYS_QUEUE_GROUP
}

/// Effective `allow_responses` limits after defaults were applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseLimits {
    /// Responses allowed per received reply subject; `None` is unlimited.
    pub max_msgs: Option<u64>,
    /// How long a received reply subject stays publishable; `None` is forever.
    pub expires: Option<Duration>,
}

impl ResponseLimits {
    fn from_config(config: ResponsePermission) -> Self {
        let max_msgs = match config.max_msgs {
            0 => Some(DEFAULT_ALLOW_RESPONSE_MAX_MSGS.unsigned_abs()),
            n if n < 0 => None,
            n => Some(n.unsigned_abs()),
        };
        let expires = match config.expires {
            Some(Duration::ZERO) => Some(DEFAULT_ALLOW_RESPONSE_EXPIRATION),
            other => other,
        };
        Self { max_msgs, expires }
    }
}

/// One user's compiled permissions.
#[derive(Debug, Default)]
pub struct Permissions {
    publish_allow: Option<SubjectList>,
    publish_deny: Option<SubjectList>,
    subscribe_allow: Option<SubjectList>,
    subscribe_deny: Option<SubjectList>,
    /// The raw subscribe deny entries (`c.darray`), for arming the delivery filter.
    subscribe_deny_entries: Vec<String>,
    /// The delivery filter: the raw deny entries inserted as plain subjects.
    delivery_deny: SubjectList,
    response: Option<ResponseLimits>,
}

/// Splits a subscribe entry `"<subject> [<queue>]"` on ASCII whitespace. `None` for an empty
/// entry or more than two fields (the reference logs and skips such an entry).
fn split_subject_queue(entry: &str) -> Option<(&str, Option<&str>)> {
    let mut fields = entry.split_ascii_whitespace();
    let subject = fields.next()?;
    let queue = fields.next();
    if fields.next().is_some() {
        return None;
    }
    Some((subject, queue))
}

impl Permissions {
    /// Compiles a `permissions` block as the reference's `setPermissions` (after
    /// `validateResponsePermissions`): `allow_responses` without a publish allow list turns it
    /// into an empty one, so only responses may be published.
    #[must_use]
    pub fn new(config: &PermissionsConfig) -> Self {
        let mut perms = Self::default();
        let response = config.allow_responses.map(ResponseLimits::from_config);
        perms.response = response;
        let mut publish_allow = config.publish.as_ref().and_then(|p| p.allow.clone());
        if response.is_some() && publish_allow.is_none() {
            publish_allow = Some(Vec::new());
        }
        if let Some(allow) = publish_allow {
            let mut list = SubjectList::default();
            for entry in &allow {
                list.insert(entry.as_bytes(), None);
            }
            perms.publish_allow = Some(list);
        }
        if let Some(deny) = config.publish.as_ref().map(|p| &p.deny)
            && !deny.is_empty()
        {
            let mut list = SubjectList::default();
            for entry in deny {
                list.insert(entry.as_bytes(), None);
            }
            perms.publish_deny = Some(list);
        }
        if let Some(subscribe) = &config.subscribe {
            if let Some(allow) = subscribe.allow.as_ref().filter(|a| !a.is_empty()) {
                perms.subscribe_allow = Some(compile_subscribe_list(allow));
            }
            if !subscribe.deny.is_empty() {
                perms.subscribe_deny = Some(compile_subscribe_list(&subscribe.deny));
                perms.subscribe_deny_entries.clone_from(&subscribe.deny);
                for entry in &subscribe.deny {
                    perms.delivery_deny.insert(entry.as_bytes(), None);
                }
            }
        }
        perms
    }

    /// Whether the allow/deny lists permit publishing to `subject` (without `allow_responses`;
    /// see [`ClientPermissions::check_publish`]). The subject is matched as literal tokens; a
    /// subject with an empty token matches no entry.
    #[must_use]
    pub fn can_publish(&self, subject: &[u8]) -> bool {
        let mut allowed = true;
        if let Some(allow) = &self.publish_allow {
            allowed = allow.matches_plain(subject);
        }
        if allowed && let Some(deny) = &self.publish_deny {
            allowed = !deny.matches_plain(subject);
        }
        allowed
    }

    /// Whether a SUB (with an optional queue group) is permitted, as the reference's
    /// `canSubscribe` for client connections.
    #[must_use]
    pub fn can_subscribe(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        self.subscribe_decision(subject, queue).0
    }

    /// The subscribe decision plus whether it arms the delivery deny filter.
    fn subscribe_decision(&self, subject: &[u8], queue: Option<&[u8]>) -> (bool, bool) {
        let queue = queue.filter(|q| !q.is_empty());
        let mut allowed = true;
        if let Some(allow) = &self.subscribe_allow {
            let res = allow.matches(subject);
            allowed = res.plain;
            if let Some(queue) = queue
                && !res.queues.is_empty()
            {
                allowed = queue_matches(queue, &res.queues);
            }
        }
        let mut arms_filter = false;
        if allowed && let Some(deny) = &self.subscribe_deny {
            let res = deny.matches(subject);
            allowed = !res.plain;
            if let Some(queue) = queue
                && !res.queues.is_empty()
            {
                allowed = !queue_matches(queue, &res.queues);
            }
            arms_filter = allowed
                && has_wildcard(subject)
                && self
                    .subscribe_deny_entries
                    .iter()
                    .any(|entry| is_subset_match(entry.as_bytes(), subject));
        }
        (allowed, arms_filter)
    }

    /// The full delivery-time deny filter: true when a message on `subject` must not be
    /// delivered to this user. Stateless; the reference applies it only after the connection
    /// made a wildcard subscription overlapping a deny entry, which
    /// [`ClientPermissions::deny_delivery`] reproduces.
    #[must_use]
    pub fn deny_delivery(&self, subject: &[u8]) -> bool {
        !self.subscribe_deny_entries.is_empty() && self.delivery_deny.matches_plain(subject)
    }

    /// The effective `allow_responses` limits, if any.
    #[must_use]
    pub fn response_permission(&self) -> Option<ResponseLimits> {
        self.response
    }

    /// True when publishes need checking at all (an allow or deny list exists).
    #[must_use]
    pub fn restricts_publish(&self) -> bool {
        self.publish_allow.is_some() || self.publish_deny.is_some()
    }
}

fn compile_subscribe_list(entries: &[String]) -> SubjectList {
    let mut list = SubjectList::default();
    for entry in entries {
        if let Some((subject, queue)) = split_subject_queue(entry) {
            list.insert(subject.as_bytes(), queue.map(str::as_bytes));
        }
    }
    list
}

/// The reference's `queueMatches`: the queue equals an entry's queue name, or that name has a
/// wildcard and contains the queue.
fn queue_matches(queue: &[u8], entry_queues: &[&[u8]]) -> bool {
    entry_queues.iter().any(|entry_queue| {
        queue == *entry_queue || (has_wildcard(entry_queue) && is_subset_match(queue, entry_queue))
    })
}

/// A point in time for the `allow_responses` table: [`Instant`] in the server, or a
/// [`Duration`] since an arbitrary epoch in simulations with virtual time.
pub trait Timestamp: Copy + Ord + fmt::Debug {
    /// Time from `earlier` to `self`, zero when `earlier` is later.
    fn saturating_elapsed_since(self, earlier: Self) -> Duration;
}

impl Timestamp for Instant {
    fn saturating_elapsed_since(self, earlier: Self) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl Timestamp for Duration {
    fn saturating_elapsed_since(self, earlier: Self) -> Duration {
        self.saturating_sub(earlier)
    }
}

/// One received reply subject in the `allow_responses` table.
#[derive(Debug, Clone, Copy)]
struct ReplyEntry<T> {
    received: T,
    n_responses: u64,
}

/// Per-connection permission state. Create one when a connection authenticates as a user with
/// permissions; drop it (or create a new one) when the user's permissions change.
///
/// `T` is the time type of the reply table ([`Instant`] unless simulating).
#[derive(Debug)]
pub struct ClientPermissions<T: Timestamp = Instant> {
    perms: Arc<Permissions>,
    publish_cache: HashMap<Box<[u8]>, bool>,
    delivery_filter_armed: bool,
    deny_cache: HashMap<Box<[u8]>, bool>,
    replies: HashMap<Box<[u8]>, ReplyEntry<T>>,
    /// The reply table is pruned when it grows past this size.
    prune_at: usize,
}

impl<T: Timestamp> ClientPermissions<T> {
    /// Starts the per-connection state for a user's compiled permissions.
    #[must_use]
    pub fn new(perms: Arc<Permissions>) -> Self {
        Self {
            perms,
            publish_cache: HashMap::new(),
            delivery_filter_armed: false,
            deny_cache: HashMap::new(),
            replies: HashMap::new(),
            prune_at: REPLY_PERM_LIMIT,
        }
    }

    /// The shared compiled permissions.
    #[must_use]
    pub fn permissions(&self) -> &Arc<Permissions> {
        &self.perms
    }

    /// Checks a PUB/HPUB subject: the allow/deny lists (cached), and when they refuse it and
    /// `allow_responses` is set, the reply table: a reply subject this connection received is
    /// publishable while fewer than `max` responses were sent and it is younger than `expires`.
    /// Each response allowed that way counts against the reply. `now` is the current time.
    pub fn check_publish(&mut self, subject: &[u8], now: T) -> bool {
        if !self.perms.restricts_publish() {
            return true;
        }
        let allowed = if let Some(cached) = self.publish_cache.get(subject) {
            *cached
        } else {
            let allowed = self.perms.can_publish(subject);
            if self.publish_cache.len() >= MAX_PUBLISH_CACHE_ENTRIES {
                self.publish_cache.clear();
            }
            self.publish_cache.insert(subject.into(), allowed);
            allowed
        };
        if allowed {
            return true;
        }
        let Some(limits) = self.perms.response else {
            return false;
        };
        let Some(entry) = self.replies.get_mut(subject) else {
            return false;
        };
        entry.n_responses = entry.n_responses.saturating_add(1);
        let spent = limits.max_msgs.is_some_and(|max| entry.n_responses > max);
        let expired = limits
            .expires
            .is_some_and(|ttl| now.saturating_elapsed_since(entry.received) > ttl);
        if spent || expired {
            self.replies.remove(subject);
            return false;
        }
        true
    }

    /// Checks a SUB, including the reserved queue group [`SYS_QUEUE_GROUP`] (connections
    /// without permissions must check that one with [`is_reserved_queue`]). Accepting a wildcard
    /// subscription that overlaps a subscribe deny entry arms the delivery filter of
    /// [`Self::deny_delivery`], as in the reference.
    pub fn check_subscribe(&mut self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        let (allowed, arms_filter) = self.perms.subscribe_decision(subject, queue);
        if arms_filter {
            self.delivery_filter_armed = true;
        }
        allowed && !queue.is_some_and(is_reserved_queue)
    }

    /// True when a message on `subject` must not be delivered to this connection: the delivery
    /// filter is armed and a subscribe deny entry matches. Call before queueing each MSG.
    pub fn deny_delivery(&mut self, subject: &[u8]) -> bool {
        if !self.delivery_filter_armed {
            return false;
        }
        if let Some(denied) = self.deny_cache.get(subject) {
            return *denied;
        }
        let denied = self.perms.deny_delivery(subject);
        if self.deny_cache.len() >= MAX_DENY_CACHE_ENTRIES {
            self.deny_cache.clear();
        }
        self.deny_cache.insert(subject.into(), denied);
        denied
    }

    /// Records the reply subject of a message delivered to this connection, so that the
    /// connection may respond to it (`allow_responses`). A no-op without `allow_responses` or
    /// for an empty reply. Recording the same reply again restarts its count and age.
    pub fn record_reply(&mut self, reply: &[u8], now: T) {
        let Some(limits) = self.perms.response else {
            return;
        };
        if reply.is_empty() {
            return;
        }
        self.replies.insert(
            reply.into(),
            ReplyEntry {
                received: now,
                n_responses: 0,
            },
        );
        if self.replies.len() > self.prune_at {
            self.prune_replies(limits, now);
            // Prune again only after the table doubled, so a table of live entries costs
            // amortised constant time per delivery. Pruning only drops entries the publish
            // check would refuse anyway, so its timing does not change any decision.
            self.prune_at = self
                .replies
                .len()
                .saturating_mul(2)
                .clamp(REPLY_PERM_LIMIT, MAX_REPLY_ENTRIES);
        }
    }

    /// The reference's `pruneReplyPerms` (drop spent and expired entries), plus the hard bound
    /// [`MAX_REPLY_ENTRIES`].
    fn prune_replies(&mut self, limits: ResponseLimits, now: T) {
        self.replies.retain(|_, entry| {
            let spent = limits.max_msgs.is_some_and(|max| entry.n_responses >= max);
            let expired = limits
                .expires
                .is_some_and(|ttl| now.saturating_elapsed_since(entry.received) > ttl);
            !(spent || expired)
        });
        if self.replies.len() > MAX_REPLY_ENTRIES / 4 * 3 {
            let mut ages: Vec<T> = self.replies.values().map(|e| e.received).collect();
            let middle = ages.len() / 2;
            let (_, median, _) = ages.select_nth_unstable(middle);
            let cutoff = *median;
            self.replies.retain(|_, entry| entry.received > cutoff);
        }
    }

    /// Number of reply subjects currently tracked (for tests and monitoring).
    #[must_use]
    pub fn n_tracked_replies(&self) -> usize {
        self.replies.len()
    }
}

/// The `-ERR` text for a refused publish: `Permissions Violation for Publish to "<subject>"`.
#[must_use]
pub fn publish_violation(subject: &[u8]) -> String {
    format!("Permissions Violation for Publish to {}", go_quote(subject))
}

/// The `-ERR` text for a refused subscription: `Permissions Violation for Subscription to
/// "<subject>"`, or with ` using queue "<queue>"` for a queue subscription.
#[must_use]
pub fn subscription_violation(subject: &[u8], queue: Option<&[u8]>) -> String {
    match queue.filter(|q| !q.is_empty()) {
        Some(queue) => format!(
            "Permissions Violation for Subscription to {} using queue {}",
            go_quote(subject),
            go_quote(queue)
        ),
        None => format!(
            "Permissions Violation for Subscription to {}",
            go_quote(subject)
        ),
    }
}

/// The `-ERR` text for a reserved reply subject: `Permissions Violation for Publish with Reply
/// of "<reply>"`.
#[must_use]
pub fn reply_violation(reply: &[u8]) -> String {
    format!(
        "Permissions Violation for Publish with Reply of {}",
        go_quote(reply)
    )
}

/// The `-ERR` text for a subscription with too many tokens.
#[must_use]
pub fn too_many_tokens_violation(subject: &[u8]) -> String {
    format!(
        "Permissions Violation for Subscription to {}, too many tokens",
        go_quote(subject)
    )
}

/// The `-ERR` text when a reload removes a no longer permitted subscription.
#[must_use]
pub fn reload_subscription_violation(subject: &[u8], sid: &[u8]) -> String {
    format!(
        "Permissions Violation for Subscription to {} (sid {})",
        go_quote(subject),
        go_quote(sid)
    )
}

/// The reference's error log line for a refused publish: `Publish Violation - <who>, Subject
/// "<subject>"`, where `who` is [`super::Authenticated::log_identity`]'s text.
#[must_use]
pub fn publish_violation_log(who: &str, subject: &[u8]) -> String {
    format!("Publish Violation - {who}, Subject {}", go_quote(subject))
}

/// The reference's error log line for a refused subscription.
#[must_use]
pub fn subscription_violation_log(
    who: &str,
    subject: &[u8],
    queue: Option<&[u8]>,
    sid: &[u8],
) -> String {
    let sid = String::from_utf8_lossy(sid);
    match queue.filter(|q| !q.is_empty()) {
        Some(queue) => format!(
            "Subscription Violation - {who}, Subject {}, Queue: {}, SID {sid}",
            go_quote(subject),
            go_quote(queue)
        ),
        None => format!(
            "Subscription Violation - {who}, Subject {}, SID {sid}",
            go_quote(subject)
        ),
    }
}
