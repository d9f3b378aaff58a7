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
