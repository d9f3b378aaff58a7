//! MQTT sessions: the state an MQTT 3.1.1 connection keeps beside the client session, and how
//! a NATS message is rendered as an MQTT PUBLISH (nats-server 2.9.10's `server/mqtt.go`
//! bridge, without JetStream).
//!
//! An MQTT connection is a [`crate::session::Client`] whose renderer is
//! [`crate::session::Renderer::Mqtt`]: it authenticates with the same users, passwords and
//! tokens as NATS clients, its subscriptions live in the same subject index, and its publishes
//! are routed as NATS messages carrying nats-server's `Nmqtt-Pub` header (the publish QoS), so
//! NATS subscribers see them as nats-server shows them.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mqtt_codec::{Decoder, Limits, PublishHead, QoS, Role, Will};

/// nats-server's header naming the MQTT publish QoS on the NATS message (`mqttNatsHeader`).
pub(crate) const NATS_HEADER: &str = "Nmqtt-Pub";

/// nats-server's sid suffix for the extra subscription a `#` filter needs on its parent level
/// (`mqttMultiLevelSidSuffix`).
pub(crate) const PARENT_SID_SUFFIX: &str = " fwc";

/// The state of one MQTT connection.
#[derive(Debug)]
pub(crate) struct MqttState {
    pub(crate) decoder: Decoder,
    /// The client identifier (assigned by the server when the client sent none).
    pub(crate) client_id: String,
    /// One and a half times the CONNECT keep-alive in whole seconds (MQTT-3.1.2-24, truncated
    /// as nats-server does); `None` when 0.
    pub(crate) keep_alive: Option<Duration>,
    /// Published when the connection ends without DISCONNECT.
    pub(crate) will: Option<Will>,
    /// CONNECT's clean-session flag: false keeps the session for the next connection.
    pub(crate) clean_session: bool,
    /// The filters subscribed, with their granted QoS (what a kept session restores).
    pub(crate) filters: std::collections::BTreeMap<String, QoS>,
    /// A CONNECT waiting for its bcrypt comparison.
    pub(crate) parked_connect: Option<Box<mqtt_codec::Connect>>,
    /// The QoS granted to each subscription, by sid.
    pub(crate) granted: HashMap<Arc<[u8]>, QoS>,
    /// QoS 1 deliveries awaiting PUBACK, by packet identifier.
    pub(crate) inflight: HashMap<u16, Inflight>,
    /// Redelivery times in sending order (`ack_wait` is fixed, so this is time order);
    /// entries whose delivery was acknowledged or resent since are skipped.
    pub(crate) due: VecDeque<(Instant, u16)>,
    pub(crate) next_packet_id: u16,
    pub(crate) max_ack_pending: usize,
    pub(crate) ack_wait: Duration,
    /// Payload bytes held by `inflight`.
    pub(crate) inflight_bytes: usize,
    /// The most payload bytes `inflight` may hold (the broker's `max_pending`): a QoS 1
    /// delivery past it waits in `held`, as one past `max_ack_pending` does.
    pub(crate) max_inflight_bytes: usize,
    /// QoS 1 deliveries waiting, in arrival order, for room in the window (`max_ack_pending`
    /// and `max_inflight_bytes`); sent as PUBACKs free it.
    pub(crate) held: HeldQueue,
    /// The bounds of `held`.
    pub(crate) held_limits: HeldLimits,
    /// The session is written to the store (a `clean_session: false` session with
    /// persistence on).
    pub(crate) persist: bool,
    /// When the session's record is next written: set by the first change after the last
    /// write, [`PERSIST_INTERVAL`] after it.
    pub(crate) persist_due: Option<Instant>,
}

/// The longest a change to a kept session (a delivery sent, acknowledged or held) waits
/// before the session's record is written again. Writes are batched to this interval rather
/// than made per message; a kill loses at most the changes of the last interval (and what the
/// writer thread has not yet synced). nats-server's JetStream file store syncs to disk every
/// 60 s by default (`defaultSyncInterval`, `server/filestore.go`).
pub(crate) const PERSIST_INTERVAL: Duration = Duration::from_secs(1);

/// Most QoS 1 deliveries one session holds waiting for room in its window (or for its client
/// to come back). nats-server keeps them in the `$MQTT_msgs` JetStream stream, which has no
/// limit of its own (only the account's JetStream storage); here they are in memory, so they
/// are bounded per session in count (this) and in bytes (the broker's `max_pending`).
pub(crate) const MAX_HELD_MESSAGES: usize = 65_536;

/// The bounds of one session's [`HeldQueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeldLimits {
    pub(crate) max_msgs: usize,
    /// Topic and payload bytes.
    pub(crate) max_bytes: usize,
}

impl Default for HeldLimits {
    fn default() -> Self {
        Self {
            max_msgs: MAX_HELD_MESSAGES,
            max_bytes: 64 << 20,
        }
    }
}

/// A QoS 1 delivery not yet sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Held {
    pub(crate) topic: String,
    pub(crate) payload: Bytes,
    /// The sid of the subscription it is a copy for (each QoS 1 subscription gets its own,
    /// as each nats-server consumer stores its own); `None` when not known (restored from a
    /// record), then any QoS 1 filter matching its topic keeps it.
    pub(crate) sid: Option<Arc<[u8]>>,
}

impl Held {
    /// The bytes it counts against [`HeldLimits::max_bytes`].
    pub(crate) fn size(&self) -> usize {
        self.topic.len() + self.payload.len()
    }
}

/// QoS 1 deliveries in arrival order, bounded by [`HeldLimits`]: a push past either bound
/// drops the oldest ones (as a JetStream stream at its limits discards old messages by
/// default), and says so once per episode.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeldQueue {
    msgs: VecDeque<Held>,
    bytes: usize,
    /// Messages dropped since the queue was last empty.
    dropped: u64,
}

/// What a [`HeldQueue::push`] dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Dropped {
    /// Messages dropped by this push (the oldest first; the pushed one too when it alone
    /// is over the byte bound).
    pub(crate) now: usize,
    /// True when these are the first drops since the queue was last empty: the moment to warn.
    pub(crate) first: bool,
}

impl HeldQueue {
    /// Appends `held`, then drops the oldest messages while either bound is passed.
    pub(crate) fn push(&mut self, held: Held, limits: HeldLimits) -> Dropped {
        self.bytes += held.size();
        self.msgs.push_back(held);
        let mut dropped = Dropped::default();
        while self.msgs.len() > limits.max_msgs || self.bytes > limits.max_bytes {
            let Some(old) = self.msgs.pop_front() else {
                break;
            };
            self.bytes = self.bytes.saturating_sub(old.size());
            dropped.now += 1;
        }
        if dropped.now > 0 {
            dropped.first = self.dropped == 0;
            self.dropped = self.dropped.saturating_add(dropped.now as u64);
        }
        if self.msgs.is_empty() {
            self.dropped = 0;
        }
        dropped
    }

    /// Whether messages were dropped since the queue was last empty (the warning is out).
    pub(crate) fn dropping(&self) -> bool {
        self.dropped > 0
    }

    /// Drops the oldest messages until the queue holds at most `max_bytes`; returns how many.
    pub(crate) fn trim_to(&mut self, max_bytes: usize) -> usize {
        let mut n = 0;
        while self.bytes > max_bytes {
            let Some(old) = self.msgs.pop_front() else {
                break;
            };
            self.bytes = self.bytes.saturating_sub(old.size());
            n += 1;
        }
        self.dropped = self.dropped.saturating_add(n as u64);
        if self.msgs.is_empty() {
            self.dropped = 0;
        }
        n
    }

    /// Keeps only the messages `keep` accepts, in order; returns how many went.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Held) -> bool) -> usize {
        let before = self.msgs.len();
        let mut bytes = 0;
        self.msgs.retain(|h| {
            let kept = keep(h);
            if kept {
                bytes += h.size();
            }
            kept
        });
        self.bytes = bytes;
        if self.msgs.is_empty() {
            self.dropped = 0;
        }
        before - self.msgs.len()
    }

    pub(crate) fn front(&self) -> Option<&Held> {
        self.msgs.front()
    }

    pub(crate) fn pop_front(&mut self) -> Option<Held> {
        let held = self.msgs.pop_front()?;
        self.bytes = self.bytes.saturating_sub(held.size());
        if self.msgs.is_empty() {
            self.dropped = 0;
        }
        Some(held)
    }

    pub(crate) fn len(&self) -> usize {
        self.msgs.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// Topic and payload bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Held> {
        self.msgs.iter()
    }
}

/// A QoS 1 delivery awaiting its PUBACK.
#[derive(Debug, Clone)]
pub(crate) struct Inflight {
    pub(crate) topic: String,
    pub(crate) payload: Bytes,
    pub(crate) due: Instant,
    /// The sid of the subscription it was delivered for (as [`Held::sid`]); `None` when not
    /// known (restored from a record).
    pub(crate) sid: Option<Arc<[u8]>>,
}

/// How one message is delivered to an MQTT subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Not an MQTT delivery.
    None,
    /// PUBLISH at QoS 0.
    AtMostOnce,
    /// PUBLISH at QoS 1 with a new packet identifier, kept until PUBACK.
    AtLeastOnce,
    /// Not sent yet: the window is full (`max_ack_pending` QoS 1 deliveries await PUBACK, or
    /// their bytes are at the bound) or earlier ones are held already; it joins the held
    /// queue and goes out as PUBACKs free the window.
    Held,
}

impl MqttState {
    /// The delivery of a message published at `message_qos` to subscription `sid`: the lower
    /// of the two QoS (MQTT-3.8.4-6).
    pub(crate) fn delivery(&self, sid: &[u8], message_qos: QoS, payload_len: usize) -> Delivery {
        let granted = self.granted.get(sid).copied().unwrap_or_default();
        if granted.min(message_qos) == QoS::AtMostOnce {
            Delivery::AtMostOnce
        } else if !self.held.is_empty() || !self.has_room(payload_len) {
            Delivery::Held
        } else {
            Delivery::AtLeastOnce
        }
    }

    /// Whether the window takes one more delivery of `payload_len` bytes. An empty window
    /// takes any one, so a payload larger than the byte bound is not held for ever.
    pub(crate) fn has_room(&self, payload_len: usize) -> bool {
        self.inflight.is_empty()
            || (self.inflight.len() < self.max_ack_pending
                && self.inflight_bytes.saturating_add(payload_len) <= self.max_inflight_bytes)
    }

    /// Marks the session changed at `now`: its record is written within [`PERSIST_INTERVAL`].
    pub(crate) fn changed(&mut self, now: Instant) {
        if self.persist && self.persist_due.is_none() {
            self.persist_due = Some(now.checked_add(PERSIST_INTERVAL).unwrap_or(now));
        }
    }

    /// Forgets the held deliveries whose subscription is gone or is QoS 0 now (after
    /// UNSUBSCRIBE, or a subscription made again at QoS 0), and those of unknown subscription
    /// that no QoS 1 filter matches: nats-server deletes that subscription's consumer, and
    /// what it had not delivered with it. With overlapping filters (`a/#` and `a/b`) each
    /// held copy is its own subscription's, so unsubscribing one forgets only its copies.
    ///
    /// Deliveries awaiting PUBACK for such a subscription are forgotten too: its consumer's
    /// redeliveries end with it. A PUBACK that still comes for one is ignored, as for any
    /// packet identifier not in flight.
    pub(crate) fn forget_unmatched_held(&mut self) -> usize {
        if self.held.is_empty() && self.inflight.is_empty() {
            return 0;
        }
        let matcher = self.qos1_matcher();
        let granted = &self.granted;
        let keeps = |sid: &Option<Arc<[u8]>>, topic: &str| match sid {
            Some(sid) => granted.get(sid).is_some_and(|q| *q != QoS::AtMostOnce),
            None => matcher.matches(topic),
        };
        let mut forgotten = 0;
        if !self.held.is_empty() {
            forgotten += self.held.retain(|h| keeps(&h.sid, &h.topic));
        }
        let mut freed = 0;
        self.inflight.retain(|_, f| {
            let keep = keeps(&f.sid, &f.topic);
            if !keep {
                freed += f.payload.len();
                forgotten += 1;
            }
            keep
        });
        self.inflight_bytes = self.inflight_bytes.saturating_sub(freed);
        forgotten
    }

    /// What the session's QoS 1 filters match, as they stand.
    pub(crate) fn qos1_matcher(&self) -> Qos1Matcher {
        let session = SavedSession {
            filters: self.filters.clone(),
            ..SavedSession::default()
        };
        Qos1Matcher(collected_subjects(&session))
    }

    /// The next held delivery when the window has room for it.
    pub(crate) fn release(&mut self) -> Option<Held> {
        let len = self.held.front()?.payload.len();
        if self.has_room(len) {
            self.held.pop_front()
        } else {
            None
        }
    }

    /// Records a QoS 1 delivery; returns its packet identifier (the next one not in use).
    pub(crate) fn track(
        &mut self,
        topic: &str,
        payload: Bytes,
        sid: Option<Arc<[u8]>>,
        now: Instant,
    ) -> u16 {
        let mut id = self.next_packet_id;
        loop {
            id = id.checked_add(1).unwrap_or(1);
            if !self.inflight.contains_key(&id) {
                break;
            }
        }
        self.next_packet_id = id;
        let due = now.checked_add(self.ack_wait).unwrap_or(now);
        self.inflight_bytes += payload.len();
        self.inflight.insert(
            id,
            Inflight {
                topic: topic.to_owned(),
                payload,
                due,
                sid,
            },
        );
        self.due.push_back((due, id));
        self.changed(now);
        id
    }

    /// The earliest redelivery time still pending.
    pub(crate) fn next_due(&mut self) -> Option<Instant> {
        while let Some(&(due, id)) = self.due.front() {
            if self.inflight.get(&id).is_some_and(|f| f.due == due) {
                return Some(due);
            }
            self.due.pop_front();
        }
        None
    }

    /// [`Self::next_due`] without dropping the stale entries it passes.
    pub(crate) fn peek_due(&self) -> Option<Instant> {
        self.due
            .iter()
            .find(|(due, id)| self.inflight.get(id).is_some_and(|f| f.due == *due))
            .map(|(due, _)| *due)
    }

    /// A PUBACK: forgets the delivery, and keeps the redelivery queue short (acknowledged
    /// entries at its front are dropped; a queue grown past twice `max_ack_pending` is
    /// compacted), so its length stays bounded whatever the acknowledgement order.
    pub(crate) fn acked(&mut self, packet_id: u16, now: Instant) {
        if let Some(f) = self.inflight.remove(&packet_id) {
            self.inflight_bytes = self.inflight_bytes.saturating_sub(f.payload.len());
            self.changed(now);
        }
        self.next_due();
        if self.due.len() > 2 * self.max_ack_pending + 16 {
            let inflight = &self.inflight;
            self.due
                .retain(|(due, id)| inflight.get(id).is_some_and(|f| f.due == *due));
        }
    }

    /// The deliveries due for redelivery at `now`, each given a new due time.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<(u16, String, Bytes)> {
        let mut out = Vec::new();
        while let Some(due) = self.next_due() {
            if due > now {
                break;
            }
            let Some((_, id)) = self.due.pop_front() else {
                break;
            };
            let next = now.checked_add(self.ack_wait).unwrap_or(now);
            if let Some(f) = self.inflight.get_mut(&id) {
                f.due = next;
                out.push((id, f.topic.clone(), f.payload.clone()));
            }
        }
        for (id, _, _) in &out {
            if let Some(f) = self.inflight.get(id) {
                self.due.push_back((f.due, *id));
            }
        }
        out
    }
}

/// The subjects of a session's QoS 1 filters (each with the parent level a trailing `#` also
/// matches).
#[derive(Debug)]
pub(crate) struct Qos1Matcher(Vec<(String, Option<String>)>);

impl Qos1Matcher {
    /// Whether a delivery on `topic` is one a QoS 1 filter matches.
    pub(crate) fn matches(&self, topic: &str) -> bool {
        let Ok(subject) = mqtt_codec::nats::topic_to_subject(topic) else {
            return false;
        };
        self.0.iter().any(|(s, parent)| {
            crate::subject::matches(s.as_bytes(), subject.as_bytes())
                || parent
                    .as_ref()
                    .is_some_and(|p| crate::subject::matches(p.as_bytes(), subject.as_bytes()))
        })
    }
}

/// Sorts unacknowledged deliveries into sending order: by redelivery time, then (deliveries
/// restored together share one) oldest packet identifier first, counting back from
/// `next_packet_id`, the last one given out.
pub(crate) fn sending_order(inflight: &mut [(u16, Inflight)], next_packet_id: u16) {
    inflight.sort_by_key(|(id, f)| (f.due, std::cmp::Reverse(next_packet_id.wrapping_sub(*id))));
}

/// The QoS an MQTT publisher gave a message: nats-server's `Nmqtt-Pub` header; QoS 0 for a
/// message without it (a NATS publish).
pub(crate) fn message_qos(message: &[u8], header_len: Option<usize>) -> QoS {
    let Some(header) = header_len.and_then(|h| message.get(..h)) else {
        return QoS::AtMostOnce;
    };
    let name = NATS_HEADER.as_bytes();
    for line in header.split(|b| *b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (key, value) = line.split_at(colon);
        if key.eq_ignore_ascii_case(name) {
            let value = value.get(1..).unwrap_or_default();
            let digit = value.iter().find(|b| !b.is_ascii_whitespace());
            return match digit {
                Some(b'1' | b'2') => QoS::AtLeastOnce,
                _ => QoS::AtMostOnce,
            };
        }
    }
    QoS::AtMostOnce
}

impl MqttState {
    pub(crate) fn new(max_packet_bytes: usize) -> Self {
        Self {
            decoder: Decoder::new(
                Role::Server,
                Limits {
                    max_packet_bytes,
                    ..Limits::default()
                },
            ),
            client_id: String::new(),
            keep_alive: None,
            will: None,
            parked_connect: None,
            clean_session: true,
            filters: std::collections::BTreeMap::new(),
            granted: HashMap::new(),
            inflight: HashMap::new(),
            due: VecDeque::new(),
            next_packet_id: 0,
            max_ack_pending: 1024,
            ack_wait: Duration::from_secs(30),
            inflight_bytes: 0,
            max_inflight_bytes: 64 << 20,
            held: HeldQueue::default(),
            held_limits: HeldLimits::default(),
            persist: false,
            persist_due: None,
        }
    }
}

/// The NATS message an MQTT publish becomes: nats-server's header block with the QoS, then
/// the payload. Returns the message and its header length.
pub(crate) fn nats_message(qos: QoS, payload: &[u8]) -> (Vec<u8>, usize) {
    let header = format!("NATS/1.0\r\n{NATS_HEADER}:{}\r\n\r\n", qos.as_u8());
    let mut message = Vec::with_capacity(header.len() + payload.len());
    message.extend_from_slice(header.as_bytes());
    message.extend_from_slice(payload);
    (message, header.len())
}

/// The head of a PUBLISH delivering `payload_len` bytes on `topic`, written into `dst`; false
/// when the topic or size cannot be expressed (the delivery is dropped).
pub(crate) fn publish_head(
    topic: &str,
    packet_id: Option<u16>,
    dup: bool,
    payload_len: usize,
    dst: &mut BytesMut,
) -> bool {
    let head = PublishHead::new(topic, packet_id, dup);
    mqtt_codec::encode_publish_head(&head, payload_len, dst).is_ok()
}

/// The size of that PUBLISH, head and payload (`qos1`: with a packet identifier).
pub(crate) fn publish_len(topic: &str, qos1: bool, payload_len: usize) -> usize {
    let head = PublishHead::new(topic, qos1.then_some(1), false);
    mqtt_codec::publish_len(&head, payload_len).unwrap_or(0)
}

/// Most retained messages kept per account. nats-server keeps them in a JetStream stream
/// bounded by its limits; here they are in memory, so the count is bounded: a retained
/// publish on a new topic beyond it is not retained (it is still delivered).
pub(crate) const MAX_RETAINED_PER_ACCOUNT: usize = 10_000;

/// A retained message (MQTT-3.3.1-5): the last retained publish on its topic.
#[derive(Debug, Clone)]
pub(crate) struct Retained {
    pub(crate) topic: String,
    pub(crate) payload: Bytes,
}

/// The retained messages of every account, by account and NATS subject.
#[derive(Debug, Default)]
pub(crate) struct RetainedStore {
    by_account: HashMap<crate::router::AccountId, std::collections::BTreeMap<String, Retained>>,
}

impl RetainedStore {
    /// Stores, replaces or (with an empty payload, MQTT-3.3.1-10/-11) clears the retained
    /// message of `subject`. False when the account is at its bound and `subject` is new.
    pub(crate) fn set(
        &mut self,
        account: crate::router::AccountId,
        subject: &str,
        topic: &str,
        payload: &[u8],
    ) -> bool {
        let map = self.by_account.entry(account).or_default();
        if payload.is_empty() {
            map.remove(subject);
            if map.is_empty() {
                self.by_account.remove(&account);
            }
            return true;
        }
        if map.len() >= MAX_RETAINED_PER_ACCOUNT && !map.contains_key(subject) {
            return false;
        }
        map.insert(
            subject.to_owned(),
            Retained {
                topic: topic.to_owned(),
                payload: Bytes::copy_from_slice(payload),
            },
        );
        true
    }

    /// The retained messages whose subject `pattern` matches, in subject order.
    pub(crate) fn matching(
        &self,
        account: crate::router::AccountId,
        pattern: &str,
    ) -> Vec<Retained> {
        self.by_account.get(&account).map_or_else(Vec::new, |map| {
            map.iter()
                .filter(|(subject, _)| {
                    crate::subject::matches(pattern.as_bytes(), subject.as_bytes())
                })
                .map(|(_, r)| r.clone())
                .collect()
        })
    }

    /// How many retained messages are held, over all accounts.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_account
            .values()
            .map(std::collections::BTreeMap::len)
            .sum()
    }
}

/// Most sessions kept for disconnected `clean_session: false` clients. nats-server keeps them
/// in JetStream; here they are in memory, so their number is bounded: past it, the session of
/// a client that disconnects is not kept (the oldest are not evicted).
pub(crate) const MAX_SAVED_SESSIONS: usize = 10_000;

/// What a `clean_session: false` client leaves behind (MQTT-3.1.2-4): its subscriptions, its
/// QoS 1 deliveries not yet acknowledged, and those not yet sent (held by its window, or
/// published while no client was connected).
#[derive(Debug, Clone, Default)]
pub(crate) struct SavedSession {
    pub(crate) filters: std::collections::BTreeMap<String, QoS>,
    pub(crate) inflight: Vec<(u16, Inflight)>,
    pub(crate) held: HeldQueue,
    pub(crate) next_packet_id: u16,
}

/// The most bytes all kept sessions' deliveries (unacknowledged and held) may hold together.
/// A session saved past it loses its oldest held deliveries first, then its unacknowledged
/// ones; a delivery collected past it drops the session's oldest held ones.
pub(crate) const MAX_SAVED_SESSION_BYTES: usize = 256 << 20;

#[derive(Debug)]
struct Kept {
    session: SavedSession,
    /// The subjects of its QoS 1 filters, each with the parent-level subject a trailing `#`
    /// also matches: what it collects while no client is connected.
    collects: Vec<(String, Option<String>)>,
}

/// Sessions by account and client id, between connections.
#[derive(Debug)]
pub(crate) struct SessionStore {
    sessions: HashMap<(crate::router::AccountId, String), Kept>,
    /// The client ids of the kept sessions with a QoS 1 filter, by account.
    collecting: HashMap<crate::router::AccountId, std::collections::BTreeSet<String>>,
    /// Sessions changed since their record was last written.
    dirty: std::collections::BTreeSet<(crate::router::AccountId, String)>,
    /// Bytes of every kept session's deliveries.
    bytes: usize,
    /// [`MAX_SAVED_SESSIONS`] and [`MAX_SAVED_SESSION_BYTES`] (smaller in tests).
    max_sessions: usize,
    max_bytes: usize,
    /// The bounds of each session's held deliveries (as a connected session's).
    pub(crate) held_limits: HeldLimits,
}

impl Default for SessionStore {
    fn default() -> Self {
        Self {
            sessions: HashMap::new(),
            collecting: HashMap::new(),
            dirty: std::collections::BTreeSet::new(),
            bytes: 0,
            max_sessions: MAX_SAVED_SESSIONS,
            max_bytes: MAX_SAVED_SESSION_BYTES,
            held_limits: HeldLimits::default(),
        }
    }
}

fn session_bytes(session: &SavedSession) -> usize {
    let inflight: usize = session.inflight.iter().map(|(_, f)| f.payload.len()).sum();
    inflight + session.held.bytes()
}

/// The subjects a session's QoS 1 filters collect.
fn collected_subjects(session: &SavedSession) -> Vec<(String, Option<String>)> {
    session
        .filters
        .iter()
        .filter(|(_, qos)| **qos != QoS::AtMostOnce)
        .filter_map(|(filter, _)| mqtt_codec::nats::filter_to_subject(filter).ok())
        .map(|subject| {
            let parent = mqtt_codec::nats::needs_parent_subscription(&subject).map(str::to_owned);
            (subject.into_owned(), parent)
        })
        .collect()
}

/// What one kept session dropped while collecting a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CollectDrop {
    pub(crate) client_id: String,
    pub(crate) dropped: Dropped,
}

impl SessionStore {
    /// An empty store whose sessions hold at most `held_limits` deliveries each.
    pub(crate) fn with_held_limits(held_limits: HeldLimits) -> Self {
        Self {
            held_limits,
            ..Self::default()
        }
    }

    /// Keeps a session; `None` when the store is full and the client id is new, otherwise
    /// how many of its deliveries the byte bound dropped.
    pub(crate) fn save(
        &mut self,
        account: crate::router::AccountId,
        client_id: &str,
        session: SavedSession,
    ) -> Option<usize> {
        let key = (account, client_id.to_owned());
        if self.sessions.len() >= self.max_sessions && !self.sessions.contains_key(&key) {
            return None;
        }
        let mut session = session;
        if let Some(old) = self.sessions.remove(&key) {
            self.bytes = self.bytes.saturating_sub(session_bytes(&old.session));
        }
        let room = self.max_bytes.saturating_sub(self.bytes);
        let mut dropped = 0;
        if session_bytes(&session) > room {
            let inflight = session_bytes(&session) - session.held.bytes();
            if inflight > room {
                dropped += session.inflight.len();
                session.inflight.clear();
            }
            let room = room.saturating_sub(session_bytes(&session) - session.held.bytes());
            dropped += session.held.trim_to(room);
        }
        self.bytes += session_bytes(&session);
        let collects = collected_subjects(&session);
        if collects.is_empty() {
            if let Some(set) = self.collecting.get_mut(&account) {
                set.remove(client_id);
                if set.is_empty() {
                    self.collecting.remove(&account);
                }
            }
        } else {
            self.collecting
                .entry(account)
                .or_default()
                .insert(client_id.to_owned());
        }
        self.sessions.insert(key, Kept { session, collects });
        Some(dropped)
    }

    /// The session kept for a client id.
    pub(crate) fn get(
        &self,
        account: crate::router::AccountId,
        client_id: &str,
    ) -> Option<&SavedSession> {
        self.sessions
            .get(&(account, client_id.to_owned()))
            .map(|k| &k.session)
    }

    /// Takes the session of a client id (to resume it, or to discard it on a clean start).
    pub(crate) fn take(
        &mut self,
        account: crate::router::AccountId,
        client_id: &str,
    ) -> Option<SavedSession> {
        let key = (account, client_id.to_owned());
        self.dirty.remove(&key);
        let kept = self.sessions.remove(&key)?;
        if let Some(set) = self.collecting.get_mut(&account) {
            set.remove(client_id);
            if set.is_empty() {
                self.collecting.remove(&account);
            }
        }
        self.bytes = self.bytes.saturating_sub(session_bytes(&kept.session));
        Some(kept.session)
    }

    /// Whether a kept session of `account` collects QoS 1 deliveries.
    pub(crate) fn collects_in(&self, account: crate::router::AccountId) -> bool {
        self.collecting.contains_key(&account)
    }

    /// A QoS 1 message published on `subject` in `account` while the sessions are kept: each
    /// whose QoS 1 filter matches holds a copy (one per matching filter, as each subscription
    /// of a connected session gets one), within its own bounds and the store's. Returns the
    /// sessions that dropped deliveries for it. The cost is linear in the account's kept
    /// sessions with a QoS 1 filter (not in the subject index); it is paid only for QoS 1
    /// messages in an account that has such sessions.
    pub(crate) fn collect(
        &mut self,
        account: crate::router::AccountId,
        subject: &str,
        topic: &str,
        payload: &Bytes,
    ) -> Vec<CollectDrop> {
        let mut drops = Vec::new();
        let Some(ids) = self.collecting.get(&account) else {
            return drops;
        };
        for client_id in ids {
            let key = (account, client_id.clone());
            let Some(kept) = self.sessions.get_mut(&key) else {
                continue;
            };
            let matching: Vec<Arc<[u8]>> =
                kept.collects
                    .iter()
                    .filter_map(|(s, parent)| {
                        if crate::subject::matches(s.as_bytes(), subject.as_bytes()) {
                            Some(Arc::from(s.as_bytes()))
                        } else if parent.as_ref().is_some_and(|p| {
                            crate::subject::matches(p.as_bytes(), subject.as_bytes())
                        }) {
                            Some(Arc::from(format!("{s}{PARENT_SID_SUFFIX}").as_bytes()))
                        } else {
                            None
                        }
                    })
                    .collect();
            for sid in matching {
                let was_dropping = kept.session.held.dropping();
                let before = kept.session.held.bytes();
                let held = Held {
                    topic: topic.to_owned(),
                    payload: payload.clone(),
                    sid: Some(sid),
                };
                let mut n = kept.session.held.push(held, self.held_limits).now;
                self.bytes = (self.bytes + kept.session.held.bytes()).saturating_sub(before);
                if self.bytes > self.max_bytes {
                    let excess = self.bytes - self.max_bytes;
                    let before = kept.session.held.bytes();
                    n += kept.session.held.trim_to(before.saturating_sub(excess));
                    self.bytes = (self.bytes + kept.session.held.bytes()).saturating_sub(before);
                }
                if n > 0 {
                    drops.push(CollectDrop {
                        client_id: client_id.clone(),
                        dropped: Dropped {
                            now: n,
                            first: !was_dropping,
                        },
                    });
                }
                self.dirty.insert(key.clone());
            }
        }
        drops
    }

    /// The kept sessions changed since [`Self::take_dirty`] was last called.
    pub(crate) fn take_dirty(&mut self) -> Vec<(crate::router::AccountId, String)> {
        std::mem::take(&mut self.dirty).into_iter().collect()
    }

    /// Whether a kept session changed since its record was written.
    pub(crate) fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Bytes of every kept session's deliveries.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

pub(crate) mod store;

#[cfg(test)]
mod tests;
