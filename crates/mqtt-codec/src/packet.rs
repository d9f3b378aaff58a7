//! The MQTT 3.1.1 control packets (OASIS MQTT 3.1.1 §3) as values.

use std::fmt;

use bytes::Bytes;

/// The protocol name a 3.1.1 CONNECT carries (§3.1.2.1).
pub const PROTOCOL_NAME: &str = "MQTT";

/// The protocol name of MQTT 3.1, which nats-server refuses by name.
pub const OLD_PROTOCOL_NAME: &str = "MQIsdp";

/// The protocol level of MQTT 3.1.1 (§3.1.2.2).
pub const PROTOCOL_LEVEL: u8 = 4;

/// The largest remaining length the four-byte variable length encoding can express (§2.2.3).
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// The longest UTF-8 string or binary field: its length prefix is two bytes (§1.5.3).
pub const MAX_STRING_BYTES: usize = 65_535;

/// The control packet type, the high nibble of the first byte (§2.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// 1: client request to connect.
    Connect,
    /// 2: connect acknowledgment.
    ConnAck,
    /// 3: publish message.
    Publish,
    /// 4: publish acknowledgment (QoS 1).
    PubAck,
    /// 5: publish received (QoS 2, part 1).
    PubRec,
    /// 6: publish release (QoS 2, part 2).
    PubRel,
    /// 7: publish complete (QoS 2, part 3).
    PubComp,
    /// 8: subscribe request.
    Subscribe,
    /// 9: subscribe acknowledgment.
    SubAck,
    /// 10: unsubscribe request.
    Unsubscribe,
    /// 11: unsubscribe acknowledgment.
    UnsubAck,
    /// 12: ping request.
    PingReq,
    /// 13: ping response.
    PingResp,
    /// 14: client is disconnecting.
    Disconnect,
}

impl PacketType {
    /// The type for a first byte's high nibble; `None` for the reserved values 0 and 15.
    #[must_use]
    pub const fn from_nibble(nibble: u8) -> Option<Self> {
        Some(match nibble {
            1 => Self::Connect,
            2 => Self::ConnAck,
            3 => Self::Publish,
            4 => Self::PubAck,
            5 => Self::PubRec,
            6 => Self::PubRel,
            7 => Self::PubComp,
            8 => Self::Subscribe,
            9 => Self::SubAck,
            10 => Self::Unsubscribe,
            11 => Self::UnsubAck,
            12 => Self::PingReq,
            13 => Self::PingResp,
            14 => Self::Disconnect,
            _ => return None,
        })
    }

    /// The value of the high nibble (1–14).
    #[must_use]
    pub const fn nibble(self) -> u8 {
        match self {
            Self::Connect => 1,
            Self::ConnAck => 2,
            Self::Publish => 3,
            Self::PubAck => 4,
            Self::PubRec => 5,
            Self::PubRel => 6,
            Self::PubComp => 7,
            Self::Subscribe => 8,
            Self::SubAck => 9,
            Self::Unsubscribe => 10,
            Self::UnsubAck => 11,
            Self::PingReq => 12,
            Self::PingResp => 13,
            Self::Disconnect => 14,
        }
    }

    /// Whether a client sends this type to a server (as opposed to the reverse). PUBLISH and the
    /// four acknowledgments of a publish travel both ways.
    #[must_use]
    pub const fn client_sends(self) -> bool {
        !matches!(
            self,
            Self::ConnAck | Self::SubAck | Self::UnsubAck | Self::PingResp
        )
    }

    /// Whether a server sends this type to a client.
    #[must_use]
    pub const fn server_sends(self) -> bool {
        !matches!(
            self,
            Self::Connect | Self::Subscribe | Self::Unsubscribe | Self::PingReq | Self::Disconnect
        )
    }

    /// The name the specification uses, e.g. `PUBLISH`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Connect => "CONNECT",
            Self::ConnAck => "CONNACK",
            Self::Publish => "PUBLISH",
            Self::PubAck => "PUBACK",
            Self::PubRec => "PUBREC",
            Self::PubRel => "PUBREL",
            Self::PubComp => "PUBCOMP",
            Self::Subscribe => "SUBSCRIBE",
            Self::SubAck => "SUBACK",
            Self::Unsubscribe => "UNSUBSCRIBE",
            Self::UnsubAck => "UNSUBACK",
            Self::PingReq => "PINGREQ",
            Self::PingResp => "PINGRESP",
            Self::Disconnect => "DISCONNECT",
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Quality of service of a message or a subscription (§4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum QoS {
    /// At most once.
    #[default]
    AtMostOnce = 0,
    /// At least once.
    AtLeastOnce = 1,
    /// Exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for its wire value; `None` for 3 and above.
    #[must_use]
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::AtMostOnce),
            1 => Some(Self::AtLeastOnce),
            2 => Some(Self::ExactlyOnce),
            _ => None,
        }
    }

    /// The wire value (0, 1 or 2).
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

/// The CONNACK return code (§3.2.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectReturnCode {
    /// 0: connection accepted.
    Accepted = 0,
    /// 1: the server does not support the protocol level the client asked for.
    UnacceptableProtocolVersion = 1,
    /// 2: the client identifier is correct UTF-8 but not allowed by the server.
    IdentifierRejected = 2,
    /// 3: the network connection was made but the MQTT service is unavailable.
    ServerUnavailable = 3,
    /// 4: the user name or password is malformed.
    BadUserNameOrPassword = 4,
    /// 5: the client is not authorized to connect.
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    /// The code for its wire value; `None` for the reserved values 6–255.
    #[must_use]
    pub const fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Accepted,
            1 => Self::UnacceptableProtocolVersion,
            2 => Self::IdentifierRejected,
            3 => Self::ServerUnavailable,
            4 => Self::BadUserNameOrPassword,
            5 => Self::NotAuthorized,
            _ => return None,
        })
    }

    /// The wire value.
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

/// A will message, published by the server when the connection ends without DISCONNECT
/// (§3.1.2.5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Will {
    /// The topic name: not empty, no wildcard.
    pub topic: String,
    /// The message: any bytes, at most [`MAX_STRING_BYTES`].
    pub message: Bytes,
    /// The QoS to publish it with.
    pub qos: QoS,
    /// Whether it is published as a retained message.
    pub retain: bool,
}

/// CONNECT (§3.1): always protocol name `MQTT` at level 4.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Connect {
    /// Start a new session and discard it at disconnect.
    pub clean_session: bool,
    /// Keep-alive in seconds; 0 turns it off. Servers close a connection that sends nothing
    /// for one and a half times this (§3.1.2.10).
    pub keep_alive: u16,
    /// The client identifier; empty means "let the server assign one", allowed only with
    /// `clean_session`.
    pub client_id: String,
    /// The will message, if any.
    pub will: Option<Will>,
    /// The user name, if any: not empty (as nats-server requires).
    pub username: Option<String>,
    /// The password, if any: binary data, only with a user name.
    pub password: Option<Bytes>,
}

/// CONNACK (§3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnAck {
    /// The server holds a session for this client id (only with [`ConnectReturnCode::Accepted`]).
    pub session_present: bool,
    /// Whether the connection was accepted, and if not why.
    pub code: ConnectReturnCode,
}

/// PUBLISH (§3.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Publish {
    /// A redelivery of an earlier attempt (QoS 1 and 2 only).
    pub dup: bool,
    /// Delivery quality of this message.
    pub qos: QoS,
    /// Retain this message for future subscribers (or, sent by a server, it was retained).
    pub retain: bool,
    /// The topic name: not empty, no wildcard.
    pub topic: String,
    /// The packet identifier: `Some` (non-zero) exactly when `qos` is not QoS 0.
    pub packet_id: Option<u16>,
    /// The application message.
    pub payload: Bytes,
}

impl Publish {
    /// Everything but the payload, for [`crate::encode_publish_head`].
    #[must_use]
    pub fn head(&self) -> PublishHead<'_> {
        PublishHead {
            dup: self.dup,
            qos: self.qos,
            retain: self.retain,
            topic: &self.topic,
            packet_id: self.packet_id,
        }
    }
}

/// A PUBLISH without its payload: what [`crate::encode_publish_head`] writes, so that the
/// payload can go to the socket from the buffer it already is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublishHead<'a> {
    /// A redelivery of an earlier attempt.
    pub dup: bool,
    /// Delivery quality.
    pub qos: QoS,
    /// The retain flag.
    pub retain: bool,
    /// The topic name.
    pub topic: &'a str,
    /// The packet identifier, `Some` exactly when `qos` is not QoS 0.
    pub packet_id: Option<u16>,
}

impl<'a> PublishHead<'a> {
    /// The head of a server's delivery on `topic`, not retained: QoS 1 with `packet_id` when
    /// it is `Some`, QoS 0 without one (so `packet_id` is `Some` exactly when the QoS is not
    /// 0, as [`crate::encode_publish_head`] requires).
    #[must_use]
    pub fn new(topic: &'a str, packet_id: Option<u16>, dup: bool) -> Self {
        Self {
            dup,
            qos: if packet_id.is_some() {
                QoS::AtLeastOnce
            } else {
                QoS::AtMostOnce
            },
            retain: false,
            topic,
            packet_id,
        }
    }
}

/// SUBSCRIBE (§3.8).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subscribe {
    /// The packet identifier, echoed by SUBACK.
    pub packet_id: u16,
    /// At least one topic filter with its requested QoS. Filters are valid UTF-8 and not
    /// empty; their wildcard syntax is not checked here, since a server answers an invalid
    /// filter with a failure code in SUBACK rather than a protocol error.
    pub filters: Vec<(String, QoS)>,
}

/// One SUBACK return code (§3.9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubAckReturn {
    /// Subscribed with this maximum QoS.
    Success(QoS),
    /// 0x80: the subscription was refused.
    Failure,
}

impl SubAckReturn {
    /// The wire value.
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::Success(qos) => qos.as_u8(),
            Self::Failure => 0x80,
        }
    }
}

/// SUBACK (§3.9).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubAck {
    /// The SUBSCRIBE's packet identifier.
    pub packet_id: u16,
    /// One return code per filter of the SUBSCRIBE, in order.
    pub returns: Vec<SubAckReturn>,
}

/// UNSUBSCRIBE (§3.10).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Unsubscribe {
    /// The packet identifier, echoed by UNSUBACK.
    pub packet_id: u16,
    /// At least one topic filter, valid UTF-8 and not empty.
    pub filters: Vec<String>,
}

/// One MQTT 3.1.1 control packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Packet {
    /// CONNECT (client to server).
    Connect(Connect),
    /// CONNACK (server to client).
    ConnAck(ConnAck),
    /// PUBLISH (both ways).
    Publish(Publish),
    /// PUBACK with its packet identifier (both ways).
    PubAck(u16),
    /// PUBREC with its packet identifier (both ways).
    PubRec(u16),
    /// PUBREL with its packet identifier (both ways).
    PubRel(u16),
    /// PUBCOMP with its packet identifier (both ways).
    PubComp(u16),
    /// SUBSCRIBE (client to server).
    Subscribe(Subscribe),
    /// SUBACK (server to client).
    SubAck(SubAck),
    /// UNSUBSCRIBE (client to server).
    Unsubscribe(Unsubscribe),
    /// UNSUBACK with its packet identifier (server to client).
    UnsubAck(u16),
    /// PINGREQ (client to server).
    PingReq,
    /// PINGRESP (server to client).
    PingResp,
    /// DISCONNECT (client to server).
    Disconnect,
}

impl Packet {
    /// The packet's type.
    #[must_use]
    pub const fn packet_type(&self) -> PacketType {
        match self {
            Self::Connect(_) => PacketType::Connect,
            Self::ConnAck(_) => PacketType::ConnAck,
            Self::Publish(_) => PacketType::Publish,
            Self::PubAck(_) => PacketType::PubAck,
            Self::PubRec(_) => PacketType::PubRec,
            Self::PubRel(_) => PacketType::PubRel,
            Self::PubComp(_) => PacketType::PubComp,
            Self::Subscribe(_) => PacketType::Subscribe,
            Self::SubAck(_) => PacketType::SubAck,
            Self::Unsubscribe(_) => PacketType::Unsubscribe,
            Self::UnsubAck(_) => PacketType::UnsubAck,
            Self::PingReq => PacketType::PingReq,
            Self::PingResp => PacketType::PingResp,
            Self::Disconnect => PacketType::Disconnect,
        }
    }
}
