//! Property tests: encode → decode round trip for every packet type in both roles, and the
//! same packets and error for any split of the input.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;

use crate::fuzzing::{FUZZ_LIMITS, Outcome, mqtt_decode, run};
use crate::*;

fn arb_text(max: usize, wildcards: bool) -> impl Strategy<Value = String> {
    let chars = any::<char>()
        .prop_filter("no U+0000", |c| *c != '\0')
        .prop_filter("no wildcard", move |c| wildcards || !matches!(c, '+' | '#'));
    let common = prop::sample::select(vec!['a', 'b', '/', '+', '#', ' ', '.', 'é'])
        .prop_filter("no wildcard", move |c| wildcards || !matches!(c, '+' | '#'));
    vec(prop_oneof![3 => common, 1 => chars], 0..max).prop_map(String::from_iter)
}

fn arb_topic() -> impl Strategy<Value = String> {
    arb_text(12, false).prop_filter("not empty", |t| !t.is_empty())
}

fn arb_filter() -> impl Strategy<Value = String> {
    arb_text(12, true).prop_filter("not empty", |t| !t.is_empty())
}

fn arb_bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn arb_qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn arb_id() -> impl Strategy<Value = u16> {
    1..=u16::MAX
}

fn arb_will() -> impl Strategy<Value = Will> {
    (arb_topic(), arb_bytes(20), arb_qos(), any::<bool>()).prop_map(
        |(topic, message, qos, retain)| Will {
            topic,
            message,
            qos,
            retain,
        },
    )
}

fn arb_connect() -> impl Strategy<Value = Connect> {
    (
        any::<bool>(),
        any::<u16>(),
        arb_text(10, true),
        proptest::option::of(arb_will()),
        proptest::option::of((
            arb_text(8, true).prop_filter("not empty", |u| !u.is_empty()),
            proptest::option::of(arb_bytes(8)),
        )),
    )
        .prop_map(|(clean, keep_alive, client_id, will, user)| Connect {
            clean_session: clean || client_id.is_empty(),
            keep_alive,
            client_id,
            will,
            username: user.as_ref().map(|(u, _)| u.clone()),
            password: user.and_then(|(_, p)| p),
        })
}

fn arb_publish() -> impl Strategy<Value = Publish> {
    (
        any::<bool>(),
        arb_qos(),
        any::<bool>(),
        arb_topic(),
        arb_id(),
        arb_bytes(40),
    )
        .prop_map(|(dup, qos, retain, topic, id, payload)| Publish {
            dup,
            qos,
            retain,
            topic,
            packet_id: (qos != QoS::AtMostOnce).then_some(id),
            payload,
        })
}

fn arb_connack() -> impl Strategy<Value = ConnAck> {
    (any::<bool>(), 0u8..6).prop_map(|(present, code)| {
        let code = ConnectReturnCode::from_u8(code).unwrap_or(ConnectReturnCode::Accepted);
        ConnAck {
            session_present: present && code == ConnectReturnCode::Accepted,
            code,
        }
    })
}

/// Packets a client sends after CONNECT.
fn arb_client_packet() -> impl Strategy<Value = Packet> {
    prop_oneof![
        arb_publish().prop_map(Packet::Publish),
        arb_id().prop_map(Packet::PubAck),
        arb_id().prop_map(Packet::PubRec),
        arb_id().prop_map(Packet::PubRel),
        arb_id().prop_map(Packet::PubComp),
        (any::<u16>(), vec((arb_filter(), arb_qos()), 1..4))
            .prop_map(|(packet_id, filters)| Packet::Subscribe(Subscribe { packet_id, filters })),
        (any::<u16>(), vec(arb_filter(), 1..4)).prop_map(|(packet_id, filters)| {
            Packet::Unsubscribe(Unsubscribe { packet_id, filters })
        }),
        Just(Packet::PingReq),
        Just(Packet::Disconnect),
    ]
}

/// Packets a server sends after CONNACK.
fn arb_server_packet() -> impl Strategy<Value = Packet> {
    let ret = prop_oneof![
        arb_qos().prop_map(SubAckReturn::Success),
        Just(SubAckReturn::Failure)
    ];
    prop_oneof![
        arb_publish().prop_map(Packet::Publish),
        arb_id().prop_map(Packet::PubAck),
        arb_id().prop_map(Packet::PubRec),
        arb_id().prop_map(Packet::PubRel),
        arb_id().prop_map(Packet::PubComp),
        (any::<u16>(), vec(ret, 1..5))
            .prop_map(|(packet_id, returns)| Packet::SubAck(SubAck { packet_id, returns })),
        any::<u16>().prop_map(Packet::UnsubAck),
        Just(Packet::PingResp),
    ]
}

/// A role and a valid packet stream for it (opener first).
fn arb_stream() -> impl Strategy<Value = (Role, Vec<Packet>)> {
    prop_oneof![
        (arb_connect(), vec(arb_client_packet(), 0..8)).prop_map(|(connect, rest)| {
            let mut packets = vec![Packet::Connect(connect)];
            packets.extend(rest);
            (Role::Server, packets)
        }),
        (arb_connack(), vec(arb_server_packet(), 0..8)).prop_map(|(ack, rest)| {
            let mut packets = vec![Packet::ConnAck(ack)];
            packets.extend(rest);
            (Role::Client, packets)
        }),
    ]
}

fn encode_all(packets: &[Packet]) -> BytesMut {
    let mut out = BytesMut::new();
    for packet in packets {
        encode(packet, &mut out).unwrap();
    }
    out
}

/// Cuts `input` at the given fractions of its length.
fn chunks<'a>(input: &'a [u8], cuts: &[u16]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| usize::from(*c) * input.len() / usize::from(u16::MAX))
        .collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for p in points {
        out.push(&input[start..p]);
        start = p;
    }
    out.push(&input[start..]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn encode_decode_round_trip((role, packets) in arb_stream()) {
        let wire = encode_all(&packets);
        let limits = Limits::default();
        let outcome = run(role, limits, [&wire[..]]);
        prop_assert_eq!(outcome, Outcome { packets, error: None, left: Some(0) });
    }

    #[test]
    fn any_split_gives_the_same_packets(
        (role, packets) in arb_stream(),
        tail in vec(any::<u8>(), 0..24),
        cuts in vec(any::<u16>(), 0..12),
    ) {
        let mut wire = encode_all(&packets);
        wire.extend_from_slice(&tail);
        let whole = run(role, FUZZ_LIMITS, [&wire[..]]);
        prop_assert!(whole.packets.len() >= packets.len().min(1) || whole.error.is_some());
        prop_assert_eq!(&whole, &run(role, FUZZ_LIMITS, chunks(&wire, &cuts)));
        prop_assert_eq!(&whole, &run(role, FUZZ_LIMITS, wire.chunks(1)));
    }

    /// The fuzz target's properties on random bytes and on a valid stream with bytes flipped.
    #[test]
    fn fuzz_body_holds(data in vec(any::<u8>(), 0..300)) {
        mqtt_decode(&data);
    }

    #[test]
    fn fuzz_body_holds_on_mutated_streams(
        (role, packets) in arb_stream(),
        flips in vec((any::<u16>(), any::<u8>()), 0..4),
        split in 0u8..0x80,
    ) {
        let mut wire = encode_all(&packets).to_vec();
        for (at, byte) in flips {
            if !wire.is_empty() {
                let at = usize::from(at) % wire.len();
                wire[at] ^= byte;
            }
        }
        let selector = split | if role == Role::Client { 0x80 } else { 0 };
        let mut data = vec![selector];
        data.extend(wire);
        mqtt_decode(&data);
    }
}
