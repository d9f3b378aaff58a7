//! Decode and encode errors, and what MQTT 3.1.1 requires a receiver to do about each.

use std::fmt;

use crate::packet::{ConnectReturnCode, PacketType};

/// A field of a packet, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// CONNECT protocol name.
    ProtocolName,
    /// CONNECT protocol level.
    ProtocolLevel,
    /// CONNECT flags.
    ConnectFlags,
    /// CONNECT keep-alive.
    KeepAlive,
    /// CONNECT client identifier.
    ClientId,
    /// CONNECT will topic.
    WillTopic,
    /// CONNECT will message.
    WillMessage,
    /// CONNECT user name.
    Username,
    /// CONNECT password.
    Password,
    /// CONNACK acknowledge flags.
    ConnAckFlags,
    /// CONNACK return code.
    ReturnCode,
    /// PUBLISH topic name.
    Topic,
    /// A SUBSCRIBE or UNSUBSCRIBE topic filter.
    TopicFilter,
    /// A SUBSCRIBE requested QoS.
    RequestedQoS,
    /// A SUBACK return code.
    SubAckReturn,
    /// A packet identifier.
    PacketId,
}

impl Field {
    /// The field's name as nats-server's errors spell it (e.g. `client ID`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::ProtocolName => "protocol name",
            Self::ProtocolLevel => "protocol level",
            Self::ConnectFlags => "flags",
            Self::KeepAlive => "keep alive",
            Self::ClientId => "client ID",
            Self::WillTopic => "Will topic",
            Self::WillMessage => "Will message",
            Self::Username => "user name",
            Self::Password => "password",
            Self::ConnAckFlags => "acknowledge flags",
            Self::ReturnCode => "return code",
            Self::Topic => "topic",
            Self::TopicFilter => "topic filter",
            Self::RequestedQoS => "QoS",
            Self::SubAckReturn => "subscribe return code",
            Self::PacketId => "packet identifier",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why the bytes a peer sent are not a valid MQTT 3.1.1 packet stream.
///
/// Every decode error ends the connection (§4.8: "the receiver MUST close the Network
/// Connection"). Some CONNECT errors must first be answered with a CONNACK refusal:
/// [`DecodeError::connack_code`] says which. The texts follow nats-server's where it has one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeError {
    /// An HTTP request (`GET `) on a plain MQTT listener: the client should have used the
    /// WebSocket port.
    NotWebSocketPort,
    /// The connection's first packet is not CONNECT (server role) or CONNACK (client role).
    FirstPacket {
        /// The packet that came first.
        expected: PacketType,
        /// The type nibble that came instead (may be a reserved value).
        got: u8,
    },
    /// A second CONNECT (server role) or CONNACK (client role) on the same connection.
    Second(PacketType),
    /// Type nibble 0 or 15.
    ReservedPacketType(u8),
    /// A packet the peer's role never sends (e.g. SUBACK from a client).
    WrongDirection(PacketType),
    /// Fixed-header flags that MQTT 3.1.1 fixes to another value (§2.2.2).
    InvalidFlags {
        /// The packet.
        packet: PacketType,
        /// Its low nibble.
        flags: u8,
    },
    /// The remaining length does not end within four bytes (§2.2.3).
    MalformedRemainingLength,
    /// The packet is larger than the decoder's `max_packet_bytes`; found in its fixed header,
    /// before its body was buffered.
    PacketTooLarge {
        /// The remaining length the fixed header declares.
        remaining_length: usize,
        /// The limit.
        max: usize,
    },
    /// A packet of a fixed size declares another remaining length.
    InvalidRemainingLength {
        /// The packet.
        packet: PacketType,
        /// The declared remaining length.
        remaining_length: usize,
    },
    /// A field runs past the end of its packet.
    Truncated(Field),
    /// Bytes left in a packet after its last field.
    TrailingBytes(PacketType),
    /// A string field is not UTF-8 (§1.5.3).
    InvalidUtf8(Field),
    /// A string field contains U+0000 (§1.5.3, MQTT-1.5.3-2).
    NullCharacter(Field),
    /// A topic name or filter is longer than the decoder's `max_topic_bytes`.
    TopicTooLong {
        /// The field.
        field: Field,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The CONNECT protocol name is not `MQTT`.
    ProtocolName {
        /// The name received (lossy UTF-8, at most 64 bytes of it).
        name: String,
    },
    /// The CONNECT protocol level is not 4; answered with CONNACK 1.
    UnacceptableProtocolLevel(u8),
    /// The reserved CONNECT flag is set (MQTT-3.1.2-3).
    ConnectReservedFlag,
    /// Will QoS not 0 without the will flag (MQTT-3.1.2-13).
    WillQoSWithoutWill(u8),
    /// Will retain set without the will flag (MQTT-3.1.2-15).
    WillRetainWithoutWill,
    /// Will QoS 3 (MQTT-3.1.2-14).
    InvalidWillQoS,
    /// Password flag without user name flag (MQTT-3.1.2-22).
    PasswordWithoutUsername,
    /// Empty client id with clean session off (MQTT-3.1.3-7); answered with CONNACK 2.
    EmptyClientIdNeedsCleanSession,
    /// Empty will topic.
    EmptyWillTopic,
    /// Empty user name (as nats-server refuses); answered with CONNACK 4.
    EmptyUsername,
    /// PUBLISH with QoS 3 (MQTT-3.3.1-4).
    InvalidPublishQoS,
    /// Empty topic name in PUBLISH.
    EmptyTopic,
    /// A wildcard (`+` or `#`) in a topic name (MQTT-3.3.2-2).
    WildcardInTopicName(Field),
    /// A packet identifier of 0 where one is required (§2.3.1).
    PacketIdZero(PacketType),
    /// An empty topic filter.
    EmptyTopicFilter,
    /// A SUBSCRIBE requested QoS byte above 2 (MQTT-3.8.3-4).
    InvalidRequestedQoS(u8),
    /// SUBSCRIBE or UNSUBSCRIBE without a topic filter (MQTT-3.8.3-3, MQTT-3.10.3-2).
    NoTopicFilters(PacketType),
    /// More topic filters in one SUBSCRIBE or UNSUBSCRIBE than the decoder's
    /// `max_topic_filters`.
    TooManyTopicFilters {
        /// The packet.
        packet: PacketType,
        /// The limit.
        max: usize,
    },
    /// CONNACK acknowledge flags with reserved bits set, or session present with a refusal
    /// (MQTT-3.2.2-1, MQTT-3.2.2-4).
    InvalidConnAckFlags(u8),
    /// A reserved CONNACK return code (6–255).
    InvalidReturnCode(u8),
    /// A SUBACK return code other than 0, 1, 2 and 0x80 (MQTT-3.9.3-2).
    InvalidSubAckReturn(u8),
}

impl DecodeError {
    /// The CONNACK refusal to send before closing, where MQTT 3.1.1 or nats-server requires one
    /// (server role). `None`: close without a CONNACK.
    #[must_use]
    pub const fn connack_code(&self) -> Option<ConnectReturnCode> {
        match self {
            Self::UnacceptableProtocolLevel(_) => {
                Some(ConnectReturnCode::UnacceptableProtocolVersion)
            }
            Self::EmptyClientIdNeedsCleanSession
            | Self::InvalidUtf8(Field::ClientId)
            | Self::NullCharacter(Field::ClientId) => Some(ConnectReturnCode::IdentifierRejected),
            Self::EmptyUsername
            | Self::InvalidUtf8(Field::Username)
            | Self::NullCharacter(Field::Username) => {
                Some(ConnectReturnCode::BadUserNameOrPassword)
            }
            _ => None,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotWebSocketPort => f.write_str(
                "MQTT clients over websocket must connect to the Websocket port, not the MQTT port",
            ),
            Self::FirstPacket { expected, got } => write!(
                f,
                "the first packet should be a {expected} ({}), got {}",
                expected.nibble() << 4,
                got << 4
            ),
            Self::Second(PacketType::Connect) => f.write_str("received a second CONNECT packet"),
            Self::Second(packet) => write!(f, "received a second {packet} packet"),
            Self::ReservedPacketType(nibble) => {
                write!(f, "received unknown packet type {nibble}")
            }
            Self::WrongDirection(packet) => {
                write!(f, "received a {packet} packet, which this peer never sends")
            }
            Self::InvalidFlags { packet, flags } => {
                write!(f, "wrong {packet} reserved flags: {flags:x}")
            }
            Self::MalformedRemainingLength => f.write_str("malformed variable int"),
            Self::PacketTooLarge {
                remaining_length,
                max,
            } => write!(
                f,
                "packet of {remaining_length} bytes exceeds the maximum of {max}"
            ),
            Self::InvalidRemainingLength {
                packet,
                remaining_length,
            } => write!(f, "{packet} with a remaining length of {remaining_length}"),
            Self::Truncated(field) => {
                write!(f, "error reading {field}: unexpected EOF")
            }
            Self::TrailingBytes(packet) => write!(f, "unexpected bytes at the end of {packet}"),
            Self::InvalidUtf8(field) => write!(f, "invalid utf8 for {field}"),
            Self::NullCharacter(field) => write!(f, "{field} contains the null character"),
            Self::TopicTooLong { field, len, max } => {
                write!(f, "{field} of {len} bytes exceeds the maximum of {max}")
            }
            Self::ProtocolName { name } if name == crate::OLD_PROTOCOL_NAME => {
                write!(f, "older protocol {name:?} not supported")
            }
            Self::ProtocolName { name } => write!(
                f,
                "expected connect packet with protocol name {:?}, got {name:?}",
                crate::PROTOCOL_NAME
            ),
            Self::UnacceptableProtocolLevel(level) => {
                write!(f, "unacceptable protocol version of {level}")
            }
            Self::ConnectReservedFlag => f.write_str("connect flags reserved bit not set to 0"),
            Self::WillQoSWithoutWill(qos) => write!(
                f,
                "if Will flag is set to 0, Will QoS must be 0 too, got {qos}"
            ),
            Self::WillRetainWithoutWill => {
                f.write_str("if Will flag is set to 0, Will Retain flag must be 0 too")
            }
            Self::InvalidWillQoS => {
                f.write_str("if Will flag is set to 1, Will QoS can be 0, 1 or 2, got 3")
            }
            Self::PasswordWithoutUsername => {
                f.write_str("password flag set but username flag is not")
            }
            Self::EmptyClientIdNeedsCleanSession => {
                f.write_str("when client ID is empty, clean session flag must be set to 1")
            }
            Self::EmptyWillTopic => f.write_str("empty Will topic not allowed"),
            Self::EmptyUsername => f.write_str("empty user name not allowed"),
            Self::InvalidPublishQoS => f.write_str("publish QoS=3 not supported"),
            Self::EmptyTopic => f.write_str("topic cannot be empty"),
            Self::WildcardInTopicName(field) => {
                write!(f, "wildcards not allowed in {field}")
            }
            Self::PacketIdZero(packet) => {
                write!(f, "{packet}: packet identifier cannot be 0")
            }
            Self::EmptyTopicFilter => f.write_str("topic filter cannot be empty"),
            Self::InvalidRequestedQoS(qos) => {
                write!(f, "subscribe QoS value must be 0, 1 or 2, got {qos}")
            }
            Self::NoTopicFilters(packet) => {
                write!(f, "{packet} protocol must contain at least 1 topic filter")
            }
            Self::TooManyTopicFilters { packet, max } => {
                write!(f, "{packet} with more than {max} topic filters")
            }
            Self::InvalidConnAckFlags(flags) => write!(f, "invalid CONNACK flags {flags:#x}"),
            Self::InvalidReturnCode(code) => write!(f, "reserved CONNACK return code {code}"),
            Self::InvalidSubAckReturn(code) => write!(f, "invalid SUBACK return code {code:#x}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why a packet value cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EncodeError {
    /// A string or binary field longer than 65 535 bytes.
    FieldTooLong(Field),
    /// The packet's remaining length would exceed [`crate::MAX_REMAINING_LENGTH`].
    PacketTooLarge(usize),
    /// A packet identifier of 0, or one present for QoS 0 / missing for QoS 1 and 2.
    InvalidPacketId(PacketType),
    /// SUBSCRIBE, SUBACK or UNSUBSCRIBE without an entry.
    Empty(PacketType),
    /// A password without a user name (MQTT 3.1.1 cannot express it).
    PasswordWithoutUsername,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FieldTooLong(field) => write!(f, "{field} longer than 65535 bytes"),
            Self::PacketTooLarge(len) => write!(
                f,
                "remaining length {len} exceeds the maximum of {}",
                crate::MAX_REMAINING_LENGTH
            ),
            Self::InvalidPacketId(packet) => {
                write!(f, "{packet}: packet identifier does not fit the QoS")
            }
            Self::Empty(packet) => write!(f, "{packet} needs at least one entry"),
            Self::PasswordWithoutUsername => f.write_str("a password needs a user name"),
        }
    }
}

impl std::error::Error for EncodeError {}
