//! Decoder unit tests: nats-server's parse tests (`server/mqtt_test.go`: `TestMQTTReader`,
//! `TestMQTTParseConnect`, `TestMQTTParseSub`, `TestMQTTParseUnsub`, `TestMQTTParsePub`,
//! `TestMQTTParsePubAck`, `TestMQTTConnectNotFirstPacket`, `TestMQTTSecondConnect`,
//! `TestMQTTUnsupportedPackets`), and the bounds.

use bytes::{BufMut, BytesMut};

use super::*;
use crate::{ConnectReturnCode, encode};

/// A packet from its first byte and body, with a minimal remaining length.
fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let byte = u8::try_from(len & 0x7f).unwrap();
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(body);
    out
}

const CONNECT_BODY: &[u8] = &[0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 30, 0, 1, b'c'];

fn decode_all(role: Role, limits: Limits, bytes: &[u8]) -> (Vec<Packet>, Result<(), DecodeError>) {
    let mut decoder = Decoder::new(role, limits);
    let mut buf = BytesMut::from(bytes);
    let mut packets = Vec::new();
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(p)) => packets.push(p),
            Ok(None) => return (packets, Ok(())),
            Err(e) => return (packets, Err(e)),
        }
    }
}

/// Decodes a CONNECT, then `rest`; returns the error after the CONNECT.
fn server_error(rest: &[u8]) -> DecodeError {
    let mut bytes = packet(0x10, CONNECT_BODY);
    bytes.extend_from_slice(rest);
    let (packets, res) = decode_all(Role::Server, Limits::default(), &bytes);
    assert!(
        matches!(packets.first(), Some(Packet::Connect(_))),
        "{packets:?}"
    );
    res.unwrap_err()
}

fn connect_error(body: &[u8]) -> DecodeError {
    let (packets, res) = decode_all(Role::Server, Limits::default(), &packet(0x10, body));
    assert!(packets.is_empty());
    res.unwrap_err()
}

#[test]
fn remaining_length_varint() {
    // TestMQTTReader: 0x82 0xff 0x03 is 0xff82.
    let mut bytes = vec![0x30, 0x82, 0xff, 0x03];
    let mut decoder = Decoder::new(
        Role::Client,
        Limits {
            max_packet_bytes: 1 << 20,
            ..Limits::default()
        },
    );
    decoder.opened = true;
    let mut buf = BytesMut::from(&bytes[..]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    assert_eq!(decoder.packet_len(), Some(4 + 0xff82));
    assert_eq!(buf.len(), 4, "a partial packet is left in place");
    // Five bytes of continuation: malformed.
    bytes = vec![0x30, 0xff, 0xff, 0xff, 0xff, 0xff];
    let mut decoder = Decoder::new(Role::Client, Limits::default());
    decoder.opened = true;
    let err = decoder.decode(&mut BytesMut::from(&bytes[..])).unwrap_err();
    assert_eq!(err, DecodeError::MalformedRemainingLength);
    assert_eq!(err.to_string(), "malformed variable int");
    // Four bytes is the most: 268 435 455.
    let mut decoder = Decoder::new(
        Role::Client,
        Limits {
            max_packet_bytes: MAX,
            ..Limits::default()
        },
    );
    const MAX: usize = crate::MAX_REMAINING_LENGTH;
    decoder.opened = true;
    let mut buf = BytesMut::from(&[0x30, 0xff, 0xff, 0xff, 0x7f][..]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    assert_eq!(decoder.packet_len(), Some(5 + MAX));
}

#[test]
fn oversize_packet_refused_from_its_header() {
    let limits = Limits {
        max_packet_bytes: 100,
        ..Limits::default()
    };
    let mut bytes = packet(0x10, CONNECT_BODY);
    bytes.extend_from_slice(&[0x30, 101]);
    let (packets, res) = decode_all(Role::Server, limits, &bytes);
    assert_eq!(packets.len(), 1);
    assert_eq!(
        res,
        Err(DecodeError::PacketTooLarge {
            remaining_length: 101,
            max: 100
        })
    );
    // Exactly at the limit is fine.
    let mut body = vec![0, 1, b't'];
    body.resize(100, b'x');
    let mut bytes = packet(0x10, CONNECT_BODY);
    bytes.extend_from_slice(&packet(0x30, &body));
    let (packets, res) = decode_all(Role::Server, limits, &bytes);
    assert_eq!((packets.len(), res), (2, Ok(())));
}

#[test]
fn connect_parse_errors_as_nats_server() {
    const L: u8 = 4;
    let cases: &[(&[u8], &str)] = &[
        (&[0, 4, b'B', b'A', b'D'], "error reading protocol name"),
        (
            &[0, 3, b'B', b'A', b'D'],
            "expected connect packet with protocol name",
        ),
        (
            &[0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 2, 0, 0, 0, 0],
            "older protocol \"MQIsdp\" not supported",
        ),
        (&[0, 4, b'M', b'Q', b'T', b'T'], "protocol level"),
        (
            &[0, 4, b'M', b'Q', b'T', b'T', 10],
            "unacceptable protocol version",
        ),
        (&[0, 4, b'M', b'Q', b'T', b'T', L], "flags"),
        (
            &[0, 4, b'M', b'Q', b'T', b'T', L, 1],
            "connect flags reserved bit not set to 0",
        ),
        (
            &[0, 4, b'M', b'Q', b'T', b'T', L, 1 << 3],
            "if Will flag is set to 0, Will QoS must be 0 too",
        ),
        (
            &[0, 4, b'M', b'Q', b'T', b'T', L, 1 << 5],
            "if Will flag is set to 0, Will Retain flag must be 0 too",
        ),
        (
            &[0, 4, b'M', b'Q', b'T', b'T', L, 3 << 3 | 1 << 2],
            "if Will flag is set to 1, Will QoS can be 0, 1 or 2",
        ),
        (
            &[0, 4, b'M', b'Q', b'T', b'T', L, 0x40],
            "password flag set but username flag is not",
        ),
        (&[0, 4, b'M', b'Q', b'T', b'T', L, 0], "keep alive"),
        (&[0, 4, b'M', b'Q', b'T', b'T', L, 0, 0, 1], "client ID"),
        (
            &[0, 4, b'M', b'Q', b'T', b'T', L, 0, 0, 1, 0, 0],
            "when client ID is empty, clean session flag must be set to 1",
        ),
        (
            &[0, 4, b'M', b'Q', b'T', b'T', L, 0, 0, 1, 0, 1, 241],
            "invalid utf8 for client ID",
        ),
        (
            &[0, 4, b'M', b'Q', b'T', b'T', L, 0x06, 0, 0, 0, 0],
            "Will topic",
        ),
        (
            &[0, 4, b'M', b'Q', b'T', b'T', L, 0x06, 0, 0, 0, 0, 0, 0],
            "empty Will topic not allowed",
        ),
        (
            &[0, 4, b'M', b'Q', b'T', b'T', L, 0x06, 0, 0, 0, 0, 0, 1, 241],
            "invalid utf8 for Will topic",
        ),
        (
            &[
                0, 4, b'M', b'Q', b'T', b'T', L, 0x06, 0, 0, 0, 0, 0, 1, b'#',
            ],
            "wildcards not allowed",
        ),
        (
            &[
                0, 4, b'M', b'Q', b'T', b'T', L, 0x06, 0, 0, 0, 0, 0, 1, b'a', 0, 3,
            ],
            "Will message",
        ),
        (
            &[0, 4, b'M', b'Q', b'T', b'T', L, 0x82, 0, 0, 0, 0],
            "user name",
        ),
        (
            &[0, 4, b'M', b'Q', b'T', b'T', L, 0x82, 0, 0, 0, 0, 0, 0],
            "empty user name not allowed",
        ),
        (
            &[0, 4, b'M', b'Q', b'T', b'T', L, 0x82, 0, 0, 0, 0, 0, 1, 241],
            "invalid utf8 for user name",
        ),
        (
            &[
                0, 4, b'M', b'Q', b'T', b'T', L, 0xc2, 0, 0, 0, 0, 0, 1, b'a',
            ],
            "password",
        ),
        (
            &[0, 4, b'M', b'Q', b'T', b'T', L, 0x02, 0, 0, 0, 1, 0],
            "client ID contains the null character",
        ),
        (
            &[0, 4, b'M', b'Q', b'T', b'T', L, 0x02, 0, 0, 0, 0, 9],
            "unexpected bytes at the end of CONNECT",
        ),
    ];
    for (body, text) in cases {
        let err = connect_error(body);
        assert!(
            err.to_string().contains(text),
            "{body:?}: {err} (wanted {text:?})"
        );
    }
}

#[test]
fn connack_refusals() {
    // TestMQTTConnectFailsOnParse: level 7 is answered with CONNACK 1.
    let err = connect_error(&[
        0, 4, b'M', b'Q', b'T', b'T', 7, 2, 0, 0, 0, 4, b'm', b'q', b't', b't',
    ]);
    assert_eq!(
        err.connack_code(),
        Some(ConnectReturnCode::UnacceptableProtocolVersion)
    );
    let err = connect_error(&[0, 4, b'M', b'Q', b'T', b'T', 4, 0, 0, 0, 0, 0]);
    assert_eq!(
        err.connack_code(),
        Some(ConnectReturnCode::IdentifierRejected)
    );
    let err = connect_error(&[0, 4, b'M', b'Q', b'T', b'T', 4, 0, 0, 0, 0, 1, 241]);
    assert_eq!(
        err.connack_code(),
        Some(ConnectReturnCode::IdentifierRejected)
    );
    let err = connect_error(&[0, 4, b'M', b'Q', b'T', b'T', 4, 0x82, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        err.connack_code(),
        Some(ConnectReturnCode::BadUserNameOrPassword)
    );
    let err = connect_error(&[
        0, 4, b'M', b'Q', b'T', b'T', 4, 0x82, 0, 0, 0, 0, 0, 1, 0xff,
    ]);
    assert_eq!(
        err.connack_code(),
        Some(ConnectReturnCode::BadUserNameOrPassword)
    );
    // Other faults close without a CONNACK.
    let err = connect_error(&[0, 4, b'M', b'Q', b'T', b'T', 4, 1]);
    assert_eq!(err.connack_code(), None);
}

#[test]
fn connect_fields() {
    let body = [
        0, 4, b'M', b'Q', b'T', b'T', 4, 0xf6, 0x01, 0x2c, 0, 2, b'i', b'd', 0, 3, b'a', b'/',
        b'b', 0, 2, b'h', b'i', 0, 1, b'u', 0, 2, 0xff, 0,
    ];
    let (packets, res) = decode_all(Role::Server, Limits::default(), &packet(0x10, &body));
    assert_eq!(res, Ok(()));
    assert_eq!(
        packets,
        [Packet::Connect(Connect {
            clean_session: true,
            keep_alive: 300,
            client_id: "id".into(),
            will: Some(Will {
                topic: "a/b".into(),
                message: Bytes::from_static(b"hi"),
                qos: QoS::ExactlyOnce,
                retain: true,
            }),
            username: Some("u".into()),
            password: Some(Bytes::from_static(&[0xff, 0])),
        })]
    );
}

#[test]
fn connect_must_come_first_and_once() {
    // TestMQTTConnectNotFirstPacket.
    let (_, res) = decode_all(Role::Server, Limits::default(), &[0xc0, 0]);
    let err = res.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the first packet should be a CONNECT (16), got 192"
    );
    // An HTTP request on the MQTT port, whole or a byte at a time.
    let (_, res) = decode_all(Role::Server, Limits::default(), b"GET /mqtt HTTP/1.1\r\n");
    assert_eq!(res, Err(DecodeError::NotWebSocketPort));
    let mut decoder = Decoder::server();
    let mut buf = BytesMut::new();
    for &b in b"GET" {
        buf.put_u8(b);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
    }
    buf.put_u8(b' ');
    assert_eq!(decoder.decode(&mut buf), Err(DecodeError::NotWebSocketPort));
    let (_, res) = decode_all(Role::Server, Limits::default(), b"GEX ");
    assert!(matches!(res, Err(DecodeError::FirstPacket { .. })));
    // TestMQTTSecondConnect.
    assert_eq!(
        server_error(&packet(0x10, CONNECT_BODY)),
        DecodeError::Second(PacketType::Connect)
    );
    // Client role: CONNACK first.
    let (_, res) = decode_all(Role::Client, Limits::default(), &[0xd0, 0]);
    assert_eq!(
        res,
        Err(DecodeError::FirstPacket {
            expected: PacketType::ConnAck,
            got: 13
        })
    );
}

#[test]
fn wrong_direction_and_reserved_types() {
    assert_eq!(
        server_error(&[0x20, 2, 0, 0]),
        DecodeError::WrongDirection(PacketType::ConnAck)
    );
    assert_eq!(
        server_error(&[0x90, 3, 0, 1, 0]),
        DecodeError::WrongDirection(PacketType::SubAck)
    );
    assert_eq!(
        server_error(&[0xd0, 0]),
        DecodeError::WrongDirection(PacketType::PingResp)
    );
    assert_eq!(server_error(&[0x00, 0]), DecodeError::ReservedPacketType(0));
    let err = server_error(&[0xf0, 0]);
    assert_eq!(err.to_string(), "received unknown packet type 15");
    let mut bytes = packet(0x20, &[0, 0]);
    bytes.extend_from_slice(&[0xc0, 0]);
    let (packets, res) = decode_all(Role::Client, Limits::default(), &bytes);
    assert_eq!(packets.len(), 1);
    assert_eq!(res, Err(DecodeError::WrongDirection(PacketType::PingReq)));
}

#[test]
fn qos2_packets_are_decoded() {
    // nats-server 2.9.10 refuses these after decoding ("protocol 5 not supported"); refusing
    // them is the server's decision, so the codec decodes them.
    let mut rest = packet(0x50, &[0, 1]);
    rest.extend(packet(0x62, &[0, 2]));
    rest.extend(packet(0x70, &[0, 3]));
    rest.extend(packet(0x34, &[0, 1, b't', 0, 9, b'p']));
    let mut bytes = packet(0x10, CONNECT_BODY);
    bytes.extend(&rest);
    let (packets, res) = decode_all(Role::Server, Limits::default(), &bytes);
    assert_eq!(res, Ok(()));
    assert_eq!(
        packets[1..4],
        [Packet::PubRec(1), Packet::PubRel(2), Packet::PubComp(3)]
    );
    let Packet::Publish(publish) = &packets[4] else {
        panic!("{packets:?}")
    };
    assert_eq!(
        (publish.qos, publish.packet_id),
        (QoS::ExactlyOnce, Some(9))
    );
    assert_eq!(
        server_error(&packet(0x60, &[0, 2])),
        DecodeError::InvalidFlags {
            packet: PacketType::PubRel,
            flags: 0
        }
    );
}

#[test]
fn subscribe_parse_errors_as_nats_server() {
    let err = server_error(&packet(0x83, &[0, 1, 0, 1, b'a', 0]));
    assert_eq!(err.to_string(), "wrong SUBSCRIBE reserved flags: 3");
    let cases: &[(&[u8], &str)] = &[
        (&[1], "packet identifier"),
        (
            &[0, 1],
            "SUBSCRIBE protocol must contain at least 1 topic filter",
        ),
        (&[0, 1, 0, 2, b'a'], "topic filter"),
        (&[0, 1, 0, 0], "topic filter cannot be empty"),
        (&[0, 1, 0, 1, 241], "invalid utf8 for topic filter"),
        (&[0, 1, 0, 1, b'a'], "QoS"),
        (
            &[0, 1, 0, 1, b'a', 3],
            "subscribe QoS value must be 0, 1 or 2",
        ),
        (
            &[0, 1, 0, 1, b'a', 0x81],
            "subscribe QoS value must be 0, 1 or 2",
        ),
        (
            &[0, 1, 0, 1, 0, 1],
            "topic filter contains the null character",
        ),
    ];
    for (body, text) in cases {
        let err = server_error(&packet(0x82, body));
        assert!(
            err.to_string().contains(text),
            "{body:?}: {err} (wanted {text:?})"
        );
    }
    // Wildcard syntax is not the codec's to judge: SUBACK answers an invalid filter.
    let mut bytes = packet(0x10, CONNECT_BODY);
    bytes.extend(packet(
        0x82,
        &[0, 0, 0, 3, b'a', b'#', b'b', 1, 0, 3, b'+', b'/', b'#', 2],
    ));
    let (packets, res) = decode_all(Role::Server, Limits::default(), &bytes);
    assert_eq!(res, Ok(()));
    assert_eq!(
        packets[1],
        Packet::Subscribe(Subscribe {
            packet_id: 0,
            filters: vec![
                ("a#b".into(), QoS::AtLeastOnce),
                ("+/#".into(), QoS::ExactlyOnce)
            ],
        })
    );
}

#[test]
fn unsubscribe_parse_errors_as_nats_server() {
    let err = server_error(&packet(0xa3, &[0, 1, 0, 1, b'a']));
    assert_eq!(err.to_string(), "wrong UNSUBSCRIBE reserved flags: 3");
    let cases: &[(&[u8], &str)] = &[
        (&[1], "packet identifier"),
        (
            &[0, 1],
            "UNSUBSCRIBE protocol must contain at least 1 topic filter",
        ),
        (&[0, 1, 0, 2, b'a'], "topic filter"),
        (&[0, 1, 0, 0], "topic filter cannot be empty"),
        (&[0, 1, 0, 1, 241], "invalid utf8 for topic filter"),
    ];
    for (body, text) in cases {
        let err = server_error(&packet(0xa2, body));
        assert!(
            err.to_string().contains(text),
            "{body:?}: {err} (wanted {text:?})"
        );
    }
}

#[test]
fn filter_count_and_topic_length_limits() {
    let limits = Limits {
        max_topic_filters: 2,
        max_topic_bytes: 3,
        ..Limits::default()
    };
    let mut bytes = packet(0x10, CONNECT_BODY);
    bytes.extend(packet(
        0x82,
        &[0, 1, 0, 1, b'a', 0, 0, 1, b'b', 0, 0, 1, b'c', 0],
    ));
    let (_, res) = decode_all(Role::Server, limits, &bytes);
    assert_eq!(
        res,
        Err(DecodeError::TooManyTopicFilters {
            packet: PacketType::Subscribe,
            max: 2
        })
    );
    let mut bytes = packet(0x10, CONNECT_BODY);
    bytes.extend(packet(0x30, &[0, 4, b'a', b'b', b'c', b'd']));
    let (_, res) = decode_all(Role::Server, limits, &bytes);
    assert_eq!(
        res,
        Err(DecodeError::TopicTooLong {
            field: Field::Topic,
            len: 4,
            max: 3
        })
    );
    let mut bytes = packet(0x10, CONNECT_BODY);
    bytes.extend(packet(0x30, &[0, 3, b'a', b'b', b'c']));
    let (packets, res) = decode_all(Role::Server, limits, &bytes);
    assert_eq!((packets.len(), res), (2, Ok(())));
}

#[test]
fn publish_parse_errors_as_nats_server() {
    let cases: &[(u8, &[u8], &str)] = &[
        (0x36, &[0, 1, b'a', 0, 1], "publish QoS=3 not supported"),
        (0x30, &[0, 3, b'f', b'o'], "topic"),
        (0x30, &[0, 0], "topic cannot be empty"),
        (0x30, &[0, 1, b'#'], "wildcards not allowed"),
        (0x30, &[0, 3, b'a', b'+', b'b'], "wildcards not allowed"),
        (0x32, &[0, 3, b'f', b'o', b'o'], "packet identifier"),
        (
            0x32,
            &[0, 3, b'f', b'o', b'o', 0, 0],
            "packet identifier cannot be 0",
        ),
        (0x30, &[0, 2, 0xc3, 0x28], "invalid utf8 for topic"),
    ];
    for (first, body, text) in cases {
        let err = server_error(&packet(*first, body));
        assert!(
            err.to_string().contains(text),
            "{body:?}: {err} (wanted {text:?})"
        );
    }
}

#[test]
fn publish_fields_and_zero_copy_payload() {
    let mut bytes = packet(0x10, CONNECT_BODY);
    bytes.extend(packet(
        0x3b,
        &[0, 3, b'a', b'/', b'b', 0x12, 0x34, b'x', b'y'],
    ));
    bytes.extend(packet(0x30, &[0, 1, b'a']));
    let (packets, res) = decode_all(Role::Server, Limits::default(), &bytes);
    assert_eq!(res, Ok(()));
    assert_eq!(
        packets[1..],
        [
            Packet::Publish(Publish {
                dup: true,
                qos: QoS::AtLeastOnce,
                retain: true,
                topic: "a/b".into(),
                packet_id: Some(0x1234),
                payload: Bytes::from_static(b"xy"),
            }),
            Packet::Publish(Publish {
                dup: false,
                qos: QoS::AtMostOnce,
                retain: false,
                topic: "a".into(),
                packet_id: None,
                payload: Bytes::new(),
            }),
        ]
    );
}

#[test]
fn fixed_size_packets() {
    // TestMQTTParsePubAck.
    assert_eq!(
        server_error(&[0x40, 1, 0]),
        DecodeError::InvalidRemainingLength {
            packet: PacketType::PubAck,
            remaining_length: 1
        }
    );
    assert_eq!(
        server_error(&packet(0x40, &[0, 0])),
        DecodeError::PacketIdZero(PacketType::PubAck)
    );
    assert_eq!(
        server_error(&[0xc0, 1, 0]),
        DecodeError::InvalidRemainingLength {
            packet: PacketType::PingReq,
            remaining_length: 1
        }
    );
    assert_eq!(
        server_error(&[0xe0, 2, 0, 0]),
        DecodeError::InvalidRemainingLength {
            packet: PacketType::Disconnect,
            remaining_length: 2
        }
    );
    // As nats-server 2.9.10, flags of other packets are not checked.
    let mut bytes = packet(0x10, CONNECT_BODY);
    bytes.extend([0xc5, 0, 0x41, 2, 0, 7, 0xe0, 0]);
    let (packets, res) = decode_all(Role::Server, Limits::default(), &bytes);
    assert_eq!(res, Ok(()));
    assert_eq!(
        packets[1..],
        [Packet::PingReq, Packet::PubAck(7), Packet::Disconnect]
    );
}

#[test]
fn client_role_packets() {
    let mut bytes = packet(0x20, &[1, 0]);
    bytes.extend(packet(0x90, &[0, 5, 0, 1, 2, 0x80]));
    bytes.extend(packet(0xb0, &[0, 6]));
    bytes.extend([0xd0, 0]);
    let (packets, res) = decode_all(Role::Client, Limits::default(), &bytes);
    assert_eq!(res, Ok(()));
    assert_eq!(
        packets,
        [
            Packet::ConnAck(ConnAck {
                session_present: true,
                code: ConnectReturnCode::Accepted
            }),
            Packet::SubAck(SubAck {
                packet_id: 5,
                returns: vec![
                    SubAckReturn::Success(QoS::AtMostOnce),
                    SubAckReturn::Success(QoS::AtLeastOnce),
                    SubAckReturn::Success(QoS::ExactlyOnce),
                    SubAckReturn::Failure,
                ],
            }),
            Packet::UnsubAck(6),
            Packet::PingResp,
        ]
    );
    for (body, err) in [
        ([2u8, 0], DecodeError::InvalidConnAckFlags(2)),
        ([1, 5], DecodeError::InvalidConnAckFlags(1)),
        ([0, 6], DecodeError::InvalidReturnCode(6)),
    ] {
        let (_, res) = decode_all(Role::Client, Limits::default(), &packet(0x20, &body));
        assert_eq!(res, Err(err));
    }
    let mut bytes = packet(0x20, &[0, 0]);
    bytes.extend(packet(0x90, &[0, 5, 3]));
    let (_, res) = decode_all(Role::Client, Limits::default(), &bytes);
    assert_eq!(res, Err(DecodeError::InvalidSubAckReturn(3)));
}

#[test]
fn errors_are_final() {
    let mut decoder = Decoder::server();
    let mut buf = BytesMut::from(&[0xc0, 0][..]);
    let err = decoder.decode(&mut buf).unwrap_err();
    let mut fresh = BytesMut::new();
    encode(
        &Packet::Connect(Connect {
            clean_session: true,
            ..Connect::default()
        }),
        &mut fresh,
    )
    .unwrap();
    assert_eq!(decoder.decode(&mut fresh), Err(err));
}
