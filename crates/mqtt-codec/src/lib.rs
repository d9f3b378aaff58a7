//! MQTT 3.1.1 packet decoding and encoding for servers and clients, sans-IO.
//!
//! This crate turns the bytes of an MQTT 3.1.1 connection (OASIS Standard, 29 October 2014)
//! into [`Packet`] values and packet values into bytes, for either end. It follows nats-server
//! 2.9.10's reading of the protocol (`server/mqtt.go`: which faults close the connection, which
//! are answered with a CONNACK refusal first, and its error texts), bounded where nats-server
//! is not. It knows nothing of NATS or sessions, except for [`nats`]: the mapping between MQTT
//! topics and NATS subjects that nats-server bridges with.
//!
//! What it deliberately does not do: no I/O, no clock (keep-alive is the caller's timer), no
//! session state, no topic-filter matching, no `unsafe`. The caller owns the buffers: the
//! read buffer the [`Decoder`] takes whole packets from, and the output buffer the encoders
//! append to.
//!
//! Main items:
//! - [`Decoder`] (one per connection and [`Role`]): [`Decoder::decode`] yields whole packets,
//!   never consuming a partial one and never rescanning a packet's body while it arrives;
//!   [`Limits`] bounds the packet size (checked in the fixed header, before the body is
//!   buffered), topic length and filters per packet.
//! - [`encode`] for any packet, [`encode_publish_head`] for a PUBLISH whose payload the caller
//!   writes from its own buffer.
//! - [`nats::topic_to_subject`], [`nats::filter_to_subject`], [`nats::subject_to_topic`]:
//!   nats-server's topic ↔ subject mapping (`/` ↔ `.`, `+` ↔ `*`, `#` ↔ `>`, empty levels).
//! - [`DecodeError`], each with [`DecodeError::connack_code`]: the CONNACK refusal MQTT 3.1.1
//!   requires before closing, if any. Every decode error closes the connection.
//!
//! ```
//! use bytes::BytesMut;
//! use mqtt_codec::{
//!     ConnAck, Connect, ConnectReturnCode, Decoder, Packet, Publish, QoS, encode,
//! };
//!
//! // A client connects and publishes; the bytes arrive in two reads.
//! let mut wire = BytesMut::new();
//! let connect = Connect { clean_session: true, keep_alive: 30, client_id: "c1".into(), ..Connect::default() };
//! encode(&Packet::Connect(connect.clone()), &mut wire).unwrap();
//! let publish = Publish {
//!     dup: false,
//!     qos: QoS::AtLeastOnce,
//!     retain: false,
//!     topic: "sensors/1".into(),
//!     packet_id: Some(7),
//!     payload: "21.5".into(),
//! };
//! encode(&Packet::Publish(publish.clone()), &mut wire).unwrap();
//!
//! let mut server = Decoder::server();
//! let mut read = wire.split_to(20);
//! assert_eq!(server.decode(&mut read).unwrap(), Some(Packet::Connect(connect)));
//! assert_eq!(server.decode(&mut read).unwrap(), None); // half a PUBLISH: left in `read`
//! read.extend_from_slice(&wire);
//! assert_eq!(server.decode(&mut read).unwrap(), Some(Packet::Publish(publish)));
//! assert!(read.is_empty());
//!
//! // The server answers; the client role decodes it.
//! let mut out = BytesMut::new();
//! let ack = ConnAck { session_present: false, code: ConnectReturnCode::Accepted };
//! encode(&Packet::ConnAck(ack), &mut out).unwrap();
//! encode(&Packet::PubAck(7), &mut out).unwrap();
//! let mut client = Decoder::client();
//! assert_eq!(client.decode(&mut out).unwrap(), Some(Packet::ConnAck(ack)));
//! assert_eq!(client.decode(&mut out).unwrap(), Some(Packet::PubAck(7)));
//!
//! // A second CONNECT is a protocol error, and errors are final.
//! let mut again = BytesMut::new();
//! encode(&Packet::Connect(Connect { clean_session: true, ..Connect::default() }), &mut again).unwrap();
//! let err = server.decode(&mut again).unwrap_err();
//! assert_eq!(err.to_string(), "received a second CONNECT packet");
//! assert_eq!(err.connack_code(), None); // close without a CONNACK
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::print_stdout, clippy::print_stderr)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod decode;
mod encode;
mod error;
pub mod nats;
mod packet;

#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;

#[cfg(test)]
mod tests;

pub use decode::{Decoder, Limits, Role};
pub use encode::{PINGRESP, encode, encode_publish_head, publish_len};
pub use error::{DecodeError, EncodeError, Field};
pub use packet::{
    ConnAck, Connect, ConnectReturnCode, MAX_REMAINING_LENGTH, MAX_STRING_BYTES, OLD_PROTOCOL_NAME,
    PROTOCOL_LEVEL, PROTOCOL_NAME, Packet, PacketType, Publish, PublishHead, QoS, SubAck,
    SubAckReturn, Subscribe, Unsubscribe, Will,
};
