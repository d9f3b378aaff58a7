//! Encoding packets for either role. Nothing is written when a packet cannot be encoded.

use bytes::{BufMut, BytesMut};

use crate::error::{EncodeError, Field};
use crate::packet::{
    Connect, MAX_REMAINING_LENGTH, MAX_STRING_BYTES, PROTOCOL_LEVEL, PROTOCOL_NAME, Packet,
    PacketType, PublishHead, QoS,
};

/// The bytes the remaining length `len` takes (1–4).
const fn varint_len(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

fn put_varint(dst: &mut BytesMut, mut len: usize) {
    loop {
        let byte = u8::try_from(len & 0x7f).unwrap_or(0);
        len >>= 7;
        if len == 0 {
            dst.put_u8(byte);
            return;
        }
        dst.put_u8(byte | 0x80);
    }
}

/// The length of a two-byte-prefixed field, or the error naming it.
fn field_len(bytes: &[u8], field: Field) -> Result<usize, EncodeError> {
    if bytes.len() > MAX_STRING_BYTES {
        Err(EncodeError::FieldTooLong(field))
    } else {
        Ok(2 + bytes.len())
    }
}

fn put_field(dst: &mut BytesMut, bytes: &[u8]) {
    // `field_len` was checked for every field before anything is written.
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    dst.put_u16(len);
    dst.put_slice(bytes);
}

fn put_fixed_header(dst: &mut BytesMut, first: u8, remaining: usize) {
    dst.reserve(1 + varint_len(remaining) + remaining);
    dst.put_u8(first);
    put_varint(dst, remaining);
}

fn check_remaining(len: usize) -> Result<usize, EncodeError> {
    if len > MAX_REMAINING_LENGTH {
        Err(EncodeError::PacketTooLarge(len))
    } else {
        Ok(len)
    }
}

fn check_id(packet: PacketType, id: u16) -> Result<(), EncodeError> {
    if id == 0 {
        Err(EncodeError::InvalidPacketId(packet))
    } else {
        Ok(())
    }
}

/// The total encoded size of a PUBLISH with this head and a payload of `payload_len` bytes.
///
/// # Errors
///
/// As [`encode_publish_head`].
pub fn publish_len(head: &PublishHead<'_>, payload_len: usize) -> Result<usize, EncodeError> {
    let remaining = publish_remaining(head, payload_len)?;
    Ok(1 + varint_len(remaining) + remaining)
}

fn publish_remaining(head: &PublishHead<'_>, payload_len: usize) -> Result<usize, EncodeError> {
    let id_len = match (head.qos, head.packet_id) {
        (QoS::AtMostOnce, None) => 0,
        (QoS::AtLeastOnce | QoS::ExactlyOnce, Some(id)) if id != 0 => 2,
        _ => return Err(EncodeError::InvalidPacketId(PacketType::Publish)),
    };
    let topic = field_len(head.topic.as_bytes(), Field::Topic)?;
    check_remaining(topic.saturating_add(id_len).saturating_add(payload_len))
}

/// Writes the fixed header, topic and packet identifier of a PUBLISH whose payload of
/// `payload_len` bytes the caller sends next (for a vectored write from the payload's own
/// buffer).
///
/// # Errors
///
/// [`EncodeError::InvalidPacketId`] when the packet identifier does not fit the QoS,
/// [`EncodeError::FieldTooLong`] for a topic over 65 535 bytes,
/// [`EncodeError::PacketTooLarge`] past the largest remaining length.
pub fn encode_publish_head(
    head: &PublishHead<'_>,
    payload_len: usize,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    let remaining = publish_remaining(head, payload_len)?;
    let first = 0x30 | (u8::from(head.dup) << 3) | (head.qos.as_u8() << 1) | u8::from(head.retain);
    dst.reserve(1 + varint_len(remaining) + remaining - payload_len);
    dst.put_u8(first);
    put_varint(dst, remaining);
    put_field(dst, head.topic.as_bytes());
    if let Some(id) = head.packet_id {
        dst.put_u16(id);
    }
    Ok(())
}

fn connect_remaining(connect: &Connect) -> Result<usize, EncodeError> {
    // Protocol name, level, flags, keep-alive.
    let mut len = 2 + PROTOCOL_NAME.len() + 1 + 1 + 2;
    len += field_len(connect.client_id.as_bytes(), Field::ClientId)?;
    if let Some(will) = &connect.will {
        len += field_len(will.topic.as_bytes(), Field::WillTopic)?;
        len += field_len(&will.message, Field::WillMessage)?;
    }
    match (&connect.username, &connect.password) {
        (None, Some(_)) => return Err(EncodeError::PasswordWithoutUsername),
        (Some(user), password) => {
            len += field_len(user.as_bytes(), Field::Username)?;
            if let Some(password) = password {
                len += field_len(password, Field::Password)?;
            }
        }
        (None, None) => {}
    }
    Ok(len)
}

fn put_connect(connect: &Connect, remaining: usize, dst: &mut BytesMut) {
    put_fixed_header(dst, 0x10, remaining);
    put_field(dst, PROTOCOL_NAME.as_bytes());
    dst.put_u8(PROTOCOL_LEVEL);
    let mut flags = 0u8;
    if connect.clean_session {
        flags |= 0x02;
    }
    if let Some(will) = &connect.will {
        flags |= 0x04 | (will.qos.as_u8() << 3);
        if will.retain {
            flags |= 0x20;
        }
    }
    if connect.password.is_some() {
        flags |= 0x40;
    }
    if connect.username.is_some() {
        flags |= 0x80;
    }
    dst.put_u8(flags);
    dst.put_u16(connect.keep_alive);
    put_field(dst, connect.client_id.as_bytes());
    if let Some(will) = &connect.will {
        put_field(dst, will.topic.as_bytes());
        put_field(dst, &will.message);
    }
    if let Some(user) = &connect.username {
        put_field(dst, user.as_bytes());
    }
    if let Some(password) = &connect.password {
        put_field(dst, password);
    }
}

/// Appends `packet`'s wire form to `dst`, for either role.
///
/// The encoder checks what the wire format needs (field and packet lengths, packet
/// identifiers that fit the QoS, non-empty lists) but not what only a receiver decides (an
/// empty client id, a wildcard in a topic name): a test client can send what a server must
/// refuse.
///
/// # Errors
///
/// An [`EncodeError`] when the packet cannot be expressed in MQTT 3.1.1; `dst` is unchanged.
pub fn encode(packet: &Packet, dst: &mut BytesMut) -> Result<(), EncodeError> {
    match packet {
        Packet::Connect(connect) => {
            let remaining = check_remaining(connect_remaining(connect)?)?;
            put_connect(connect, remaining, dst);
        }
        Packet::ConnAck(ack) => {
            put_fixed_header(dst, 0x20, 2);
            dst.put_u8(u8::from(ack.session_present));
            dst.put_u8(ack.code.as_u8());
        }
        Packet::Publish(publish) => {
            encode_publish_head(&publish.head(), publish.payload.len(), dst)?;
            dst.put_slice(&publish.payload);
        }
        Packet::PubAck(id) => ack(dst, PacketType::PubAck, 0x40, *id)?,
        Packet::PubRec(id) => ack(dst, PacketType::PubRec, 0x50, *id)?,
        Packet::PubRel(id) => ack(dst, PacketType::PubRel, 0x62, *id)?,
        Packet::PubComp(id) => ack(dst, PacketType::PubComp, 0x70, *id)?,
        Packet::UnsubAck(id) => {
            // Echoes the UNSUBSCRIBE's identifier, which may be 0 (nats-server accepts it).
            put_fixed_header(dst, 0xb0, 2);
            dst.put_u16(*id);
        }
        Packet::Subscribe(sub) => {
            if sub.filters.is_empty() {
                return Err(EncodeError::Empty(PacketType::Subscribe));
            }
            let mut len = 2usize;
            for (filter, _) in &sub.filters {
                len = len.saturating_add(field_len(filter.as_bytes(), Field::TopicFilter)? + 1);
            }
            let remaining = check_remaining(len)?;
            put_fixed_header(dst, 0x82, remaining);
            dst.put_u16(sub.packet_id);
            for (filter, qos) in &sub.filters {
                put_field(dst, filter.as_bytes());
                dst.put_u8(qos.as_u8());
            }
        }
        Packet::SubAck(ack) => {
            if ack.returns.is_empty() {
                return Err(EncodeError::Empty(PacketType::SubAck));
            }
            let remaining = check_remaining(ack.returns.len().saturating_add(2))?;
            put_fixed_header(dst, 0x90, remaining);
            dst.put_u16(ack.packet_id);
            for code in &ack.returns {
                dst.put_u8(code.as_u8());
            }
        }
        Packet::Unsubscribe(unsub) => {
            if unsub.filters.is_empty() {
                return Err(EncodeError::Empty(PacketType::Unsubscribe));
            }
            let mut len = 2usize;
            for filter in &unsub.filters {
                len = len.saturating_add(field_len(filter.as_bytes(), Field::TopicFilter)?);
            }
            let remaining = check_remaining(len)?;
            put_fixed_header(dst, 0xa2, remaining);
            dst.put_u16(unsub.packet_id);
            for filter in &unsub.filters {
                put_field(dst, filter.as_bytes());
            }
        }
        Packet::PingReq => put_fixed_header(dst, 0xc0, 0),
        Packet::PingResp => put_fixed_header(dst, 0xd0, 0),
        Packet::Disconnect => put_fixed_header(dst, 0xe0, 0),
    }
    Ok(())
}

fn ack(dst: &mut BytesMut, packet: PacketType, first: u8, id: u16) -> Result<(), EncodeError> {
    check_id(packet, id)?;
    put_fixed_header(dst, first, 2);
    dst.put_u16(id);
    Ok(())
}

/// PINGRESP, as a constant for the common reply.
pub const PINGRESP: [u8; 2] = [0xd0, 0x00];

#[cfg(test)]
mod tests;
