//! Encoder unit tests: wire bytes of each packet (OASIS MQTT 3.1.1 §3 and nats-server's
//! `TestMQTTWriter`), and refusals that leave the output untouched.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::packet::{
    ConnAck, ConnectReturnCode, Publish, SubAck, SubAckReturn, Subscribe, Unsubscribe, Will,
};

fn wire(packet: &Packet) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(packet, &mut out).unwrap();
    out.to_vec()
}

#[test]
fn varint_lengths() {
    // TestMQTTWriter's WriteVarInt cases and the §2.2.3 table boundaries.
    for (len, bytes) in [
        (0usize, &[0x00][..]),
        (127, &[0x7f]),
        (128, &[0x80, 0x01]),
        (16_383, &[0xff, 0x7f]),
        (16_384, &[0x80, 0x80, 0x01]),
        (2_097_151, &[0xff, 0xff, 0x7f]),
        (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
        (268_435_455, &[0xff, 0xff, 0xff, 0x7f]),
    ] {
        let mut out = BytesMut::new();
        put_varint(&mut out, len);
        assert_eq!(&out[..], bytes, "{len}");
        assert_eq!(varint_len(len), bytes.len());
    }
}

#[test]
fn packet_bytes() {
    let connect = Connect {
        clean_session: true,
        keep_alive: 60,
        client_id: "ab".into(),
        will: Some(Will {
            topic: "w".into(),
            message: Bytes::from_static(b"x"),
            qos: QoS::AtLeastOnce,
            retain: true,
        }),
        username: Some("u".into()),
        password: Some(Bytes::from_static(b"p")),
    };
    assert_eq!(
        wire(&Packet::Connect(connect)),
        [
            0x10, 26, 0, 4, b'M', b'Q', b'T', b'T', 4, 0xee, 0, 60, 0, 2, b'a', b'b', 0, 1, b'w',
            0, 1, b'x', 0, 1, b'u', 0, 1, b'p'
        ]
    );
    let ack = ConnAck {
        session_present: true,
        code: ConnectReturnCode::Accepted,
    };
    assert_eq!(wire(&Packet::ConnAck(ack)), [0x20, 2, 1, 0]);
    let refuse = ConnAck {
        session_present: false,
        code: ConnectReturnCode::NotAuthorized,
    };
    assert_eq!(wire(&Packet::ConnAck(refuse)), [0x20, 2, 0, 5]);
    let publish = Publish {
        dup: true,
        qos: QoS::AtLeastOnce,
        retain: true,
        topic: "a/b".into(),
        packet_id: Some(0x0102),
        payload: Bytes::from_static(b"hi"),
    };
    assert_eq!(
        wire(&Packet::Publish(publish)),
        [0x3b, 9, 0, 3, b'a', b'/', b'b', 1, 2, b'h', b'i']
    );
    assert_eq!(wire(&Packet::PubAck(1)), [0x40, 2, 0, 1]);
    assert_eq!(wire(&Packet::PubRec(2)), [0x50, 2, 0, 2]);
    assert_eq!(wire(&Packet::PubRel(3)), [0x62, 2, 0, 3]);
    assert_eq!(wire(&Packet::PubComp(4)), [0x70, 2, 0, 4]);
    let sub = Subscribe {
        packet_id: 10,
        filters: vec![
            ("a/+".into(), QoS::ExactlyOnce),
            ("#".into(), QoS::AtMostOnce),
        ],
    };
    assert_eq!(
        wire(&Packet::Subscribe(sub)),
        [0x82, 12, 0, 10, 0, 3, b'a', b'/', b'+', 2, 0, 1, b'#', 0]
    );
    let suback = SubAck {
        packet_id: 10,
        returns: vec![
            SubAckReturn::Success(QoS::AtLeastOnce),
            SubAckReturn::Failure,
        ],
    };
    assert_eq!(wire(&Packet::SubAck(suback)), [0x90, 4, 0, 10, 1, 0x80]);
    let unsub = Unsubscribe {
        packet_id: 11,
        filters: vec!["a".into()],
    };
    assert_eq!(
        wire(&Packet::Unsubscribe(unsub)),
        [0xa2, 5, 0, 11, 0, 1, b'a']
    );
    assert_eq!(wire(&Packet::UnsubAck(0)), [0xb0, 2, 0, 0]);
    assert_eq!(wire(&Packet::PingReq), [0xc0, 0]);
    assert_eq!(wire(&Packet::PingResp), PINGRESP);
    assert_eq!(wire(&Packet::Disconnect), [0xe0, 0]);
}

#[test]
fn publish_head_for_vectored_writes() {
    let head = PublishHead {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t",
        packet_id: None,
    };
    let mut out = BytesMut::new();
    encode_publish_head(&head, 200, &mut out).unwrap();
    assert_eq!(&out[..], [0x30, 0xcb, 0x01, 0, 1, b't']);
    assert_eq!(publish_len(&head, 200), Ok(out.len() + 200));
    assert_eq!(
        publish_len(&head, MAX_REMAINING_LENGTH - 2),
        Err(EncodeError::PacketTooLarge(MAX_REMAINING_LENGTH + 1))
    );
}

/// `PublishHead::new` gives QoS 1 exactly with a packet identifier, never retain: the head
/// of a QoS 1 redelivery, and of a QoS 0 delivery.
#[test]
fn publish_head_new_pairs_qos_with_packet_id() {
    let mut out = BytesMut::new();
    encode_publish_head(&PublishHead::new("t", Some(7), true), 3, &mut out).unwrap();
    assert_eq!(&out[..], [0x3a, 8, 0, 1, b't', 0, 7]);
    assert_eq!(
        PublishHead::new("t", None, false),
        PublishHead {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "t",
            packet_id: None,
        }
    );
}

#[test]
fn refusals_write_nothing() {
    let long = "x".repeat(MAX_STRING_BYTES + 1);
    let cases = [
        (
            Packet::Publish(Publish {
                dup: false,
                qos: QoS::AtMostOnce,
                retain: false,
                topic: "t".into(),
                packet_id: Some(1),
                payload: Bytes::new(),
            }),
            EncodeError::InvalidPacketId(PacketType::Publish),
        ),
        (
            Packet::Publish(Publish {
                dup: false,
                qos: QoS::AtLeastOnce,
                retain: false,
                topic: "t".into(),
                packet_id: None,
                payload: Bytes::new(),
            }),
            EncodeError::InvalidPacketId(PacketType::Publish),
        ),
        (
            Packet::Publish(Publish {
                dup: false,
                qos: QoS::ExactlyOnce,
                retain: false,
                topic: "t".into(),
                packet_id: Some(0),
                payload: Bytes::new(),
            }),
            EncodeError::InvalidPacketId(PacketType::Publish),
        ),
        (
            Packet::Publish(Publish {
                dup: false,
                qos: QoS::AtMostOnce,
                retain: false,
                topic: long.clone(),
                packet_id: None,
                payload: Bytes::new(),
            }),
            EncodeError::FieldTooLong(Field::Topic),
        ),
        (
            Packet::PubAck(0),
            EncodeError::InvalidPacketId(PacketType::PubAck),
        ),
        (
            Packet::PubRel(0),
            EncodeError::InvalidPacketId(PacketType::PubRel),
        ),
        (
            Packet::Subscribe(Subscribe {
                packet_id: 1,
                filters: vec![],
            }),
            EncodeError::Empty(PacketType::Subscribe),
        ),
        (
            Packet::SubAck(SubAck {
                packet_id: 1,
                returns: vec![],
            }),
            EncodeError::Empty(PacketType::SubAck),
        ),
        (
            Packet::Unsubscribe(Unsubscribe {
                packet_id: 1,
                filters: vec![],
            }),
            EncodeError::Empty(PacketType::Unsubscribe),
        ),
        (
            Packet::Unsubscribe(Unsubscribe {
                packet_id: 1,
                filters: vec![long.clone()],
            }),
            EncodeError::FieldTooLong(Field::TopicFilter),
        ),
        (
            Packet::Connect(Connect {
                password: Some(Bytes::from_static(b"p")),
                ..Connect::default()
            }),
            EncodeError::PasswordWithoutUsername,
        ),
        (
            Packet::Connect(Connect {
                client_id: long,
                ..Connect::default()
            }),
            EncodeError::FieldTooLong(Field::ClientId),
        ),
    ];
    for (packet, err) in cases {
        let mut out = BytesMut::from(&b"keep"[..]);
        assert_eq!(encode(&packet, &mut out), Err(err));
        assert_eq!(&out[..], b"keep");
    }
}
