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
    /// delivery past it is not sent, as one past `max_ack_pending` is not.
    pub(crate) max_inflight_bytes: usize,
}

/// A QoS 1 delivery awaiting its PUBACK.
#[derive(Debug, Clone)]
pub(crate) struct Inflight {
    pub(crate) topic: String,
    pub(crate) payload: Bytes,
    pub(crate) due: Instant,
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
    /// Not sent: `max_ack_pending` QoS 1 deliveries already await PUBACK.
    Dropped,
}

impl MqttState {
    /// The delivery of a message published at `message_qos` to subscription `sid`: the lower
    /// of the two QoS (MQTT-3.8.4-6).
    pub(crate) fn delivery(&self, sid: &[u8], message_qos: QoS, payload_len: usize) -> Delivery {
        let granted = self.granted.get(sid).copied().unwrap_or_default();
        if granted.min(message_qos) == QoS::AtMostOnce {
            Delivery::AtMostOnce
        } else if self.inflight.len() >= self.max_ack_pending
            || self.inflight_bytes.saturating_add(payload_len) > self.max_inflight_bytes
        {
            Delivery::Dropped
        } else {
            Delivery::AtLeastOnce
        }
    }

    /// Records a QoS 1 delivery; returns its packet identifier (the next one not in use).
    pub(crate) fn track(&mut self, topic: &str, payload: Bytes, now: Instant) -> u16 {
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
            },
        );
        self.due.push_back((due, id));
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
    pub(crate) fn acked(&mut self, packet_id: u16) {
        if let Some(f) = self.inflight.remove(&packet_id) {
            self.inflight_bytes = self.inflight_bytes.saturating_sub(f.payload.len());
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
    let head = PublishHead {
        dup,
        qos: if packet_id.is_some() {
            QoS::AtLeastOnce
        } else {
            QoS::AtMostOnce
        },
        retain: false,
        topic,
        packet_id,
    };
    mqtt_codec::encode_publish_head(&head, payload_len, dst).is_ok()
}

/// The size of that PUBLISH, head and payload (`qos1`: with a packet identifier).
pub(crate) fn publish_len(topic: &str, qos1: bool, payload_len: usize) -> usize {
    let head = PublishHead {
        dup: false,
        qos: if qos1 {
            QoS::AtLeastOnce
        } else {
            QoS::AtMostOnce
        },
        retain: false,
        topic,
        packet_id: qos1.then_some(1),
    };
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

/// What a `clean_session: false` client leaves behind (MQTT-3.1.2-4): its subscriptions and
/// its QoS 1 deliveries not yet acknowledged.
#[derive(Debug, Clone, Default)]
pub(crate) struct SavedSession {
    pub(crate) filters: std::collections::BTreeMap<String, QoS>,
    pub(crate) inflight: Vec<(u16, Inflight)>,
    pub(crate) next_packet_id: u16,
}

/// The most payload bytes all kept sessions' unacknowledged deliveries may hold together; a
/// session saved past it keeps its subscriptions but not its deliveries.
pub(crate) const MAX_SAVED_SESSION_BYTES: usize = 64 << 20;

/// Sessions by account and client id, between connections.
#[derive(Debug)]
pub(crate) struct SessionStore {
    sessions: HashMap<(crate::router::AccountId, String), SavedSession>,
    /// Payload bytes of every kept session's deliveries.
    bytes: usize,
    /// [`MAX_SAVED_SESSIONS`] and [`MAX_SAVED_SESSION_BYTES`] (smaller in tests).
    max_sessions: usize,
    max_bytes: usize,
}

impl Default for SessionStore {
    fn default() -> Self {
        Self {
            sessions: HashMap::new(),
            bytes: 0,
            max_sessions: MAX_SAVED_SESSIONS,
            max_bytes: MAX_SAVED_SESSION_BYTES,
        }
    }
}

fn session_bytes(session: &SavedSession) -> usize {
    session.inflight.iter().map(|(_, f)| f.payload.len()).sum()
}

impl SessionStore {
    /// Keeps a session; false when the store is full and the client id is new.
    pub(crate) fn save(
        &mut self,
        account: crate::router::AccountId,
        client_id: &str,
        session: SavedSession,
    ) -> bool {
        let key = (account, client_id.to_owned());
        if self.sessions.len() >= self.max_sessions && !self.sessions.contains_key(&key) {
            return false;
        }
        let mut session = session;
        if let Some(old) = self.sessions.remove(&key) {
            self.bytes = self.bytes.saturating_sub(session_bytes(&old));
        }
        if self.bytes.saturating_add(session_bytes(&session)) > self.max_bytes {
            session.inflight.clear();
        }
        self.bytes += session_bytes(&session);
        self.sessions.insert(key, session);
        true
    }

    /// The session kept for a client id.
    pub(crate) fn get(
        &self,
        account: crate::router::AccountId,
        client_id: &str,
    ) -> Option<&SavedSession> {
        self.sessions.get(&(account, client_id.to_owned()))
    }

    /// Takes the session of a client id (to resume it, or to discard it on a clean start).
    pub(crate) fn take(
        &mut self,
        account: crate::router::AccountId,
        client_id: &str,
    ) -> Option<SavedSession> {
        let session = self.sessions.remove(&(account, client_id.to_owned()))?;
        self.bytes = self.bytes.saturating_sub(session_bytes(&session));
        Some(session)
    }
}

pub(crate) mod store;

#[cfg(test)]
mod tests;
