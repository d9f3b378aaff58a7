//! MQTT sessions: the state an MQTT 3.1.1 connection keeps beside the client session, and how
//! a NATS message is rendered as an MQTT PUBLISH (nats-server 2.9.10's `server/mqtt.go`
//! bridge, without JetStream).
//!
//! An MQTT connection is a [`crate::session::Client`] whose renderer is
//! [`crate::session::Renderer::Mqtt`]: it authenticates with the same users, passwords and
//! tokens as NATS clients, its subscriptions live in the same subject index, and its publishes
//! are routed as NATS messages carrying nats-server's `Nmqtt-Pub` header (the publish QoS), so
//! NATS subscribers see them as nats-server shows them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use mqtt_codec::{Decoder, Limits, PublishHead, QoS, Role, Will};

/// nats-server's header naming the MQTT publish QoS on the NATS message (`mqttNatsHeader`).
pub(crate) const NATS_HEADER: &str = "Nmqtt-Pub";

/// The state of one MQTT connection.
#[derive(Debug)]
pub(crate) struct MqttState {
    pub(crate) decoder: Decoder,
    /// The client identifier (assigned by the server when the client sent none).
    pub(crate) client_id: String,
    /// One and a half times the CONNECT keep-alive (MQTT-3.1.2-24); `None` when 0.
    pub(crate) keep_alive: Option<Duration>,
    /// Published when the connection ends without DISCONNECT.
    pub(crate) will: Option<Will>,
    /// The QoS granted to each subscription, by sid.
    pub(crate) granted: HashMap<Arc<[u8]>, QoS>,
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
            granted: HashMap::new(),
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

/// The PUBLISH head for a delivery on `topic` of `payload_len` bytes at QoS 0, written into
/// `dst`; false when the topic or size cannot be expressed (the delivery is dropped).
pub(crate) fn publish_head(topic: &str, payload_len: usize, dst: &mut BytesMut) -> bool {
    let head = PublishHead {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic,
        packet_id: None,
    };
    mqtt_codec::encode_publish_head(&head, payload_len, dst).is_ok()
}

/// The size of that PUBLISH, head and payload.
pub(crate) fn publish_len(topic: &str, payload_len: usize) -> usize {
    let head = PublishHead {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic,
        packet_id: None,
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
    pub(crate) payload: bytes::Bytes,
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
                payload: bytes::Bytes::copy_from_slice(payload),
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
