//! The incremental decoder: bytes in, whole packets out.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::{DecodeError, Field};
use crate::packet::{
    ConnAck, Connect, ConnectReturnCode, PROTOCOL_LEVEL, PROTOCOL_NAME, Packet, PacketType,
    Publish, QoS, SubAck, SubAckReturn, Subscribe, Unsubscribe, Will,
};

/// Which end of the connection the decoder serves: a server decodes what clients send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Decodes client packets: CONNECT first, then PUBLISH, the publish acknowledgments,
    /// SUBSCRIBE, UNSUBSCRIBE, PINGREQ and DISCONNECT.
    Server,
    /// Decodes server packets: CONNACK first, then PUBLISH, the publish acknowledgments,
    /// SUBACK, UNSUBACK and PINGRESP.
    Client,
}

/// The bounds a decoder enforces on what a peer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// The largest remaining length accepted. Checked as soon as the fixed header is complete,
    /// so at most `max_packet_bytes + 5` bytes of one packet are ever buffered.
    pub max_packet_bytes: usize,
    /// The longest topic name or topic filter (will topic included), in bytes.
    pub max_topic_bytes: usize,
    /// The most topic filters in one SUBSCRIBE or UNSUBSCRIBE.
    pub max_topic_filters: usize,
}

impl Limits {
    /// Default `max_packet_bytes`: a 1 MiB payload (NATS's default `max_payload`) with the
    /// longest topic name and a packet identifier.
    pub const DEFAULT_MAX_PACKET_BYTES: usize = 1024 * 1024 + 2 + crate::MAX_STRING_BYTES + 2;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_packet_bytes: Self::DEFAULT_MAX_PACKET_BYTES,
            max_topic_bytes: crate::MAX_STRING_BYTES,
            max_topic_filters: 1024,
        }
    }
}

/// A fixed header whose packet is still arriving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    packet: PacketType,
    flags: u8,
    header_len: usize,
    remaining_len: usize,
}

/// Decodes the packets of one connection, one direction.
///
/// Call [`Decoder::decode`] after each read: it takes the bytes of whole packets off the front
/// of the read buffer and leaves a partial packet there untouched. A fixed header is parsed
/// once; while its body is arriving each call only compares lengths, so the bytes of a large
/// packet are never rescanned. The result does not depend on how the input was split into
/// reads. The first error is final: it is returned again on every later call.
#[derive(Debug, Clone)]
pub struct Decoder {
    role: Role,
    limits: Limits,
    /// CONNECT (server role) or CONNACK (client role) has been decoded.
    opened: bool,
    pending: Option<Pending>,
    failed: Option<DecodeError>,
}

impl Decoder {
    /// A decoder for `role` with `limits`.
    #[must_use]
    pub const fn new(role: Role, limits: Limits) -> Self {
        Self {
            role,
            limits,
            opened: false,
            pending: None,
            failed: None,
        }
    }

    /// A server-role decoder with the default limits.
    #[must_use]
    pub fn server() -> Self {
        Self::new(Role::Server, Limits::default())
    }

    /// A client-role decoder with the default limits.
    #[must_use]
    pub fn client() -> Self {
        Self::new(Role::Client, Limits::default())
    }

    /// The role this decoder serves.
    #[must_use]
    pub const fn role(&self) -> Role {
        self.role
    }

    /// The limits this decoder enforces.
    #[must_use]
    pub const fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The total size (fixed header included) of the packet whose fixed header has been read
    /// and whose body is still arriving, so that a caller can reserve it at once. At most
    /// `max_packet_bytes + 5`.
    #[must_use]
    pub fn packet_len(&self) -> Option<usize> {
        self.pending.map(|p| p.header_len + p.remaining_len)
    }

    /// The next whole packet at the front of `src`, removing its bytes; `Ok(None)` when `src`
    /// holds no whole packet yet (nothing is removed then).
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] when the bytes are not a valid packet stream for this role; the
    /// connection must then be closed (after a CONNACK refusal where
    /// [`DecodeError::connack_code`] says so). The error is returned again on later calls.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        match self.step(src) {
            Ok(packet) => Ok(packet),
            Err(err) => {
                self.failed = Some(err.clone());
                Err(err)
            }
        }
    }

    fn step(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        let pending = match self.pending {
            Some(pending) => pending,
            None => match self.fixed_header(src)? {
                Some(pending) => {
                    self.pending = Some(pending);
                    pending
                }
                None => return Ok(None),
            },
        };
        let total = pending.header_len + pending.remaining_len;
        if src.len() < total {
            return Ok(None);
        }
        self.pending = None;
        let mut body = src.split_to(total).freeze();
        body.advance(pending.header_len);
        let packet = body_of(pending, body, &self.limits)?;
        if matches!(packet, Packet::Connect(_) | Packet::ConnAck(_)) {
            self.opened = true;
        }
        Ok(Some(packet))
    }

    /// Reads and checks the fixed header at the front of `src` without consuming it. Every
    /// check uses only bytes that are present, in a fixed order, so a split read reaches the
    /// same decision as a whole one.
    fn fixed_header(&self, src: &[u8]) -> Result<Option<Pending>, DecodeError> {
        let Some(&first) = src.first() else {
            return Ok(None);
        };
        let nibble = first >> 4;
        let flags = first & 0x0f;
        let opener = match self.role {
            Role::Server => PacketType::Connect,
            Role::Client => PacketType::ConnAck,
        };
        let packet = PacketType::from_nibble(nibble);
        if !self.opened && packet != Some(opener) {
            if self.role == Role::Server && first == b'G' {
                // nats-server's hint for an HTTP upgrade on the plain MQTT port.
                let Some(head) = src.get(..4) else {
                    return if b"GET ".starts_with(src) {
                        Ok(None)
                    } else {
                        Err(DecodeError::FirstPacket {
                            expected: opener,
                            got: nibble,
                        })
                    };
                };
                if head == b"GET " {
                    return Err(DecodeError::NotWebSocketPort);
                }
            }
            return Err(DecodeError::FirstPacket {
                expected: opener,
                got: nibble,
            });
        }
        let Some(packet) = packet else {
            return Err(DecodeError::ReservedPacketType(nibble));
        };
        if self.opened && packet == opener {
            return Err(DecodeError::Second(opener));
        }
        let allowed = match self.role {
            Role::Server => packet.client_sends(),
            Role::Client => packet.server_sends(),
        };
        if !allowed {
            return Err(DecodeError::WrongDirection(packet));
        }
        // §2.2.2 fixes the flags of PUBREL, SUBSCRIBE and UNSUBSCRIBE to 0b0010. nats-server
        // 2.9.10 checks SUBSCRIBE and UNSUBSCRIBE only and ignores the flags of the other
        // packets, as this decoder does.
        if matches!(
            packet,
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe
        ) && flags != 0b0010
        {
            return Err(DecodeError::InvalidFlags { packet, flags });
        }
        let mut remaining_len = 0usize;
        let mut header_len = 1;
        loop {
            let Some(&byte) = src.get(header_len) else {
                return Ok(None);
            };
            remaining_len |= usize::from(byte & 0x7f) << (7 * (header_len - 1));
            header_len += 1;
            if byte & 0x80 == 0 {
                break;
            }
            if header_len == 5 {
                return Err(DecodeError::MalformedRemainingLength);
            }
        }
        if remaining_len > self.limits.max_packet_bytes {
            return Err(DecodeError::PacketTooLarge {
                remaining_length: remaining_len,
                max: self.limits.max_packet_bytes,
            });
        }
        let fixed = match packet {
            PacketType::ConnAck
            | PacketType::PubAck
            | PacketType::PubRec
            | PacketType::PubRel
            | PacketType::PubComp
            | PacketType::UnsubAck => Some(2),
            PacketType::PingReq | PacketType::PingResp | PacketType::Disconnect => Some(0),
            _ => None,
        };
        if fixed.is_some_and(|len| len != remaining_len) {
            return Err(DecodeError::InvalidRemainingLength {
                packet,
                remaining_length: remaining_len,
            });
        }
        Ok(Some(Pending {
            packet,
            flags,
            header_len,
            remaining_len,
        }))
    }
}

/// The fields of one packet body, read front to back; never reads past the body.
struct Reader {
    buf: Bytes,
}

impl Reader {
    fn u8(&mut self, field: Field) -> Result<u8, DecodeError> {
        if self.buf.is_empty() {
            return Err(DecodeError::Truncated(field));
        }
        Ok(self.buf.get_u8())
    }

    fn u16(&mut self, field: Field) -> Result<u16, DecodeError> {
        if self.buf.len() < 2 {
            return Err(DecodeError::Truncated(field));
        }
        Ok(self.buf.get_u16())
    }

    /// A two-byte length and that many bytes.
    fn binary(&mut self, field: Field) -> Result<Bytes, DecodeError> {
        let len = usize::from(self.u16(field)?);
        if self.buf.len() < len {
            return Err(DecodeError::Truncated(field));
        }
        Ok(self.buf.split_to(len))
    }

    /// A UTF-8 string without U+0000 (§1.5.3).
    fn string(&mut self, field: Field) -> Result<String, DecodeError> {
        let bytes = self.binary(field)?;
        text(&bytes, field)
    }

    /// A topic name or filter: a string of at most `max` bytes, checked before it is copied.
    fn topic(&mut self, field: Field, max: usize) -> Result<String, DecodeError> {
        let bytes = self.binary(field)?;
        if bytes.len() > max {
            return Err(DecodeError::TopicTooLong {
                field,
                len: bytes.len(),
                max,
            });
        }
        text(&bytes, field)
    }

    fn packet_id(&mut self, packet: PacketType) -> Result<u16, DecodeError> {
        let id = self.u16(Field::PacketId)?;
        if id == 0 {
            return Err(DecodeError::PacketIdZero(packet));
        }
        Ok(id)
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn finish(&self, packet: PacketType) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(packet))
        }
    }
}

fn text(bytes: &[u8], field: Field) -> Result<String, DecodeError> {
    let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8(field))?;
    if text.contains('\0') {
        return Err(DecodeError::NullCharacter(field));
    }
    Ok(text.to_owned())
}

fn has_wildcard(topic: &str) -> bool {
    topic.contains(['+', '#'])
}

fn body_of(pending: Pending, buf: Bytes, limits: &Limits) -> Result<Packet, DecodeError> {
    let mut r = Reader { buf };
    let packet = pending.packet;
    let decoded = match packet {
        PacketType::Connect => Packet::Connect(connect(&mut r, limits)?),
        PacketType::ConnAck => Packet::ConnAck(connack(&mut r)?),
        PacketType::Publish => Packet::Publish(publish(&mut r, pending.flags, limits)?),
        PacketType::PubAck => Packet::PubAck(r.packet_id(packet)?),
        PacketType::PubRec => Packet::PubRec(r.packet_id(packet)?),
        PacketType::PubRel => Packet::PubRel(r.packet_id(packet)?),
        PacketType::PubComp => Packet::PubComp(r.packet_id(packet)?),
        PacketType::UnsubAck => Packet::UnsubAck(r.u16(Field::PacketId)?),
        PacketType::Subscribe => Packet::Subscribe(subscribe(&mut r, limits)?),
        PacketType::SubAck => Packet::SubAck(suback(&mut r)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(unsubscribe(&mut r, limits)?),
        PacketType::PingReq => Packet::PingReq,
        PacketType::PingResp => Packet::PingResp,
        PacketType::Disconnect => Packet::Disconnect,
    };
    r.finish(packet)?;
    Ok(decoded)
}

/// CONNECT, checked in nats-server's order (`mqttParseConnect`), so that the first fault found
/// is the one nats-server reports.
fn connect(r: &mut Reader, limits: &Limits) -> Result<Connect, DecodeError> {
    let name = r.binary(Field::ProtocolName)?;
    if name != PROTOCOL_NAME.as_bytes() {
        let shown = name.get(..name.len().min(64)).unwrap_or_default();
        return Err(DecodeError::ProtocolName {
            name: String::from_utf8_lossy(shown).into_owned(),
        });
    }
    let level = r.u8(Field::ProtocolLevel)?;
    if level != PROTOCOL_LEVEL {
        return Err(DecodeError::UnacceptableProtocolLevel(level));
    }
    let flags = r.u8(Field::ConnectFlags)?;
    if flags & 0x01 != 0 {
        return Err(DecodeError::ConnectReservedFlag);
    }
    let will_qos = (flags >> 3) & 0x03;
    let will_retain = flags & 0x20 != 0;
    let has_will = flags & 0x04 != 0;
    if has_will {
        if will_qos == 3 {
            return Err(DecodeError::InvalidWillQoS);
        }
    } else if will_qos != 0 {
        return Err(DecodeError::WillQoSWithoutWill(will_qos));
    } else if will_retain {
        return Err(DecodeError::WillRetainWithoutWill);
    }
    let has_user = flags & 0x80 != 0;
    let has_password = flags & 0x40 != 0;
    if has_password && !has_user {
        return Err(DecodeError::PasswordWithoutUsername);
    }
    let clean_session = flags & 0x02 != 0;
    let keep_alive = r.u16(Field::KeepAlive)?;
    let client_id = r.string(Field::ClientId)?;
    if client_id.is_empty() && !clean_session {
        return Err(DecodeError::EmptyClientIdNeedsCleanSession);
    }
    let will = if has_will {
        let topic = r.topic(Field::WillTopic, limits.max_topic_bytes)?;
        if topic.is_empty() {
            return Err(DecodeError::EmptyWillTopic);
        }
        if has_wildcard(&topic) {
            return Err(DecodeError::WildcardInTopicName(Field::WillTopic));
        }
        let message = r.binary(Field::WillMessage)?;
        Some(Will {
            topic,
            message,
            qos: QoS::from_u8(will_qos).unwrap_or_default(),
            retain: will_retain,
        })
    } else {
        None
    };
    let username = if has_user {
        let name = r.string(Field::Username)?;
        if name.is_empty() {
            return Err(DecodeError::EmptyUsername);
        }
        Some(name)
    } else {
        None
    };
    let password = if has_password {
        Some(r.binary(Field::Password)?)
    } else {
        None
    };
    Ok(Connect {
        clean_session,
        keep_alive,
        client_id,
        will,
        username,
        password,
    })
}

fn connack(r: &mut Reader) -> Result<ConnAck, DecodeError> {
    let flags = r.u8(Field::ConnAckFlags)?;
    let code = r.u8(Field::ReturnCode)?;
    let code = ConnectReturnCode::from_u8(code).ok_or(DecodeError::InvalidReturnCode(code))?;
    if flags > 1 || (flags == 1 && code != ConnectReturnCode::Accepted) {
        return Err(DecodeError::InvalidConnAckFlags(flags));
    }
    Ok(ConnAck {
        session_present: flags == 1,
        code,
    })
}

fn publish(r: &mut Reader, flags: u8, limits: &Limits) -> Result<Publish, DecodeError> {
    let qos = QoS::from_u8((flags >> 1) & 0x03).ok_or(DecodeError::InvalidPublishQoS)?;
    let topic = r.topic(Field::Topic, limits.max_topic_bytes)?;
    if topic.is_empty() {
        return Err(DecodeError::EmptyTopic);
    }
    if has_wildcard(&topic) {
        return Err(DecodeError::WildcardInTopicName(Field::Topic));
    }
    let packet_id = if qos == QoS::AtMostOnce {
        None
    } else {
        Some(r.packet_id(PacketType::Publish)?)
    };
    let payload = std::mem::take(&mut r.buf);
    Ok(Publish {
        dup: flags & 0x08 != 0,
        qos,
        retain: flags & 0x01 != 0,
        topic,
        packet_id,
        payload,
    })
}

fn subscribe(r: &mut Reader, limits: &Limits) -> Result<Subscribe, DecodeError> {
    let packet_id = r.u16(Field::PacketId)?;
    let mut filters = Vec::new();
    while !r.is_empty() {
        if filters.len() == limits.max_topic_filters {
            return Err(DecodeError::TooManyTopicFilters {
                packet: PacketType::Subscribe,
                max: limits.max_topic_filters,
            });
        }
        let filter = r.topic(Field::TopicFilter, limits.max_topic_bytes)?;
        if filter.is_empty() {
            return Err(DecodeError::EmptyTopicFilter);
        }
        let qos = r.u8(Field::RequestedQoS)?;
        let qos = QoS::from_u8(qos).ok_or(DecodeError::InvalidRequestedQoS(qos))?;
        filters.push((filter, qos));
    }
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters(PacketType::Subscribe));
    }
    Ok(Subscribe { packet_id, filters })
}

fn unsubscribe(r: &mut Reader, limits: &Limits) -> Result<Unsubscribe, DecodeError> {
    let packet_id = r.u16(Field::PacketId)?;
    let mut filters = Vec::new();
    while !r.is_empty() {
        if filters.len() == limits.max_topic_filters {
            return Err(DecodeError::TooManyTopicFilters {
                packet: PacketType::Unsubscribe,
                max: limits.max_topic_filters,
            });
        }
        let filter = r.topic(Field::TopicFilter, limits.max_topic_bytes)?;
        if filter.is_empty() {
            return Err(DecodeError::EmptyTopicFilter);
        }
        filters.push(filter);
    }
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters(PacketType::Unsubscribe));
    }
    Ok(Unsubscribe { packet_id, filters })
}

fn suback(r: &mut Reader) -> Result<SubAck, DecodeError> {
    let packet_id = r.u16(Field::PacketId)?;
    let mut returns = Vec::with_capacity(r.buf.len());
    while !r.is_empty() {
        let code = r.u8(Field::SubAckReturn)?;
        returns.push(match code {
            0x80 => SubAckReturn::Failure,
            _ => SubAckReturn::Success(
                QoS::from_u8(code).ok_or(DecodeError::InvalidSubAckReturn(code))?,
            ),
        });
    }
    if returns.is_empty() {
        return Err(DecodeError::NoTopicFilters(PacketType::SubAck));
    }
    Ok(SubAck { packet_id, returns })
}

#[cfg(test)]
mod tests;
