use proptest::prelude::*;

use super::*;
use crate::mqtt::{Inflight, SavedSession};

fn session(filters: &[(&str, QoS)], inflight: &[(u16, &str, &[u8])]) -> SavedSession {
    let now = std::time::Instant::now();
    SavedSession {
        filters: filters.iter().map(|(f, q)| ((*f).to_owned(), *q)).collect(),
        inflight: inflight
            .iter()
            .map(|(id, topic, payload)| {
                let f = Inflight {
                    topic: (*topic).to_owned(),
                    payload: Bytes::copy_from_slice(payload),
                    due: now,
                    sid: None,
                };
                (*id, f)
            })
            .collect(),
        held: crate::mqtt::HeldQueue::default(),
        next_packet_id: 7,
    }
}

/// A session whose held deliveries are `held` (topic, payload), in that order.
fn with_held(mut session: SavedSession, held: &[(&str, &[u8])]) -> SavedSession {
    for (topic, payload) in held {
        let held = crate::mqtt::Held {
            topic: (*topic).to_owned(),
            payload: Bytes::copy_from_slice(payload),
            sid: None,
        };
        let _ = session.held.push(held, crate::mqtt::HeldLimits::default());
    }
    session
}

fn session_record() -> Vec<u8> {
    encode_session(
        "ACC",
        "client-1",
        &with_held(
            session(
                &[("a/+/c", QoS::AtLeastOnce), ("#", QoS::AtMostOnce)],
                &[(3, "a/b/c", b"one"), (9, "a/x/c", b"")],
            ),
            &[("a/h/c", b"held 1"), ("a/h/c", b"held 2")],
        ),
    )
}

#[test]
fn crc32_is_the_ieee_one() {
    // The check value of CRC-32/ISO-HDLC (zlib's crc32).
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
}

#[test]
fn retained_round_trip() {
    let record = encode_retained("$G", "sensors/temp", b"21.5");
    assert_eq!(
        decode(&record),
        Ok(Record::Retained(RetainedRecord {
            account: "$G".to_owned(),
            topic: "sensors/temp".to_owned(),
            payload: Bytes::from_static(b"21.5"),
        }))
    );
}

#[test]
fn session_round_trip() {
    let Ok(Record::Session(s)) = decode(&session_record()) else {
        panic!("not a session");
    };
    assert_eq!(s.account, "ACC");
    assert_eq!(s.client_id, "client-1");
    assert_eq!(s.next_packet_id, 7);
    assert_eq!(
        s.filters.into_iter().collect::<Vec<_>>(),
        [
            ("#".to_owned(), QoS::AtMostOnce),
            ("a/+/c".to_owned(), QoS::AtLeastOnce)
        ]
    );
    assert_eq!(
        s.inflight,
        [
            (3, "a/b/c".to_owned(), Bytes::from_static(b"one")),
            (9, "a/x/c".to_owned(), Bytes::new())
        ]
    );
    assert_eq!(
        s.held,
        [
            ("a/h/c".to_owned(), Bytes::from_static(b"held 1")),
            ("a/h/c".to_owned(), Bytes::from_static(b"held 2"))
        ]
    );
}

/// A version 1 record (written before held deliveries were kept) still reads, with none.
#[test]
fn version_1_session_reads_without_held() {
    let mut v1 = encode_session(
        "$G",
        "c",
        &session(&[("t", QoS::AtLeastOnce)], &[(1, "t", b"x")]),
    );
    // Version 1 ends after the unacknowledged deliveries: no held count.
    v1[4] = 1;
    let crc_at = v1.len() - 4;
    v1.drain(crc_at - 4..crc_at);
    let Ok(Record::Session(s)) = decode(&resum(v1.clone())) else {
        panic!("version 1 not read");
    };
    assert_eq!(s.inflight.len(), 1);
    assert!(s.held.is_empty());
    // The same bytes as version 2 lack the held count.
    v1[4] = 2;
    assert_eq!(decode(&resum(v1)), Err(StoreError::Truncated));
}

/// A file cut short by a crash, or any byte of it changed, is refused, never half read.
#[test]
fn every_truncation_and_every_byte_change_is_refused() {
    for record in [encode_retained("$G", "a/b", b"payload"), session_record()] {
        for n in 0..record.len() {
            assert!(decode(&record[..n]).is_err(), "prefix of {n} bytes decoded");
        }
        for i in 0..record.len() {
            for bit in 0..8 {
                let mut bad = record.clone();
                bad[i] ^= 1 << bit;
                assert!(
                    decode(&bad).is_err(),
                    "bit {bit} of byte {i} flipped decoded"
                );
            }
        }
        let mut longer = record.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Err(StoreError::TrailingBytes));
    }
}

/// Re-sums a record whose body was edited, so the test reaches the field checks.
fn resum(mut record: Vec<u8>) -> Vec<u8> {
    let body = u32::try_from(record.len() - HEAD_LEN - 4).unwrap();
    record[6..HEAD_LEN].copy_from_slice(&body.to_be_bytes());
    let end = record.len() - 4;
    let crc = crc32(&record[..end]);
    record[end..].copy_from_slice(&crc.to_be_bytes());
    record
}

#[test]
fn field_checks() {
    assert_eq!(decode(b"NOPE"), Err(StoreError::BadMagic));
    let mut v3 = encode_retained("$G", "a", b"x");
    v3[4] = 3;
    assert_eq!(decode(&resum(v3)), Err(StoreError::UnsupportedVersion(3)));
    let mut kind = encode_retained("$G", "a", b"x");
    kind[5] = 9;
    assert_eq!(decode(&resum(kind)), Err(StoreError::UnknownKind(9)));
    assert_eq!(
        decode(&encode_retained("$G", "a", b"")),
        Err(StoreError::Invalid("empty retained payload"))
    );
    assert_eq!(
        decode(&encode_retained("$G", "a b", b"x")),
        Err(StoreError::Invalid("topic"))
    );
    assert_eq!(
        decode(&encode_session("$G", "", &session(&[], &[]))),
        Err(StoreError::Invalid("client id"))
    );
    assert_eq!(
        decode(&encode_session("$G", "c", &session(&[], &[(0, "t", b"x")]))),
        Err(StoreError::Invalid("packet identifier"))
    );
    assert_eq!(
        decode(&encode_session(
            "$G",
            "c",
            &session(&[], &[(4, "t", b"x"), (4, "u", b"y")])
        )),
        Err(StoreError::Invalid("packet identifier"))
    );
    assert_eq!(
        decode(&encode_session(
            "$G",
            "c",
            &session(&[("a", QoS::ExactlyOnce)], &[])
        )),
        Err(StoreError::Invalid("granted QoS"))
    );
    let mut utf8 = encode_retained("$G", "ab", b"x");
    // The topic's bytes follow the account (4 + 2) and the topic length (4).
    utf8[HEAD_LEN + 10] = 0xFF;
    assert_eq!(decode(&resum(utf8)), Err(StoreError::Invalid("topic")));
}

/// A count the record cannot hold is refused before anything is allocated for it.
#[test]
fn huge_counts_are_refused_unallocated() {
    let mut w = Writer::new(KIND_SESSION);
    w.bytes(b"$G");
    w.bytes(b"c");
    w.u16(1);
    w.0.extend_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(decode(&w.finish()), Err(StoreError::Truncated));
    let mut w = Writer::new(KIND_RETAINED);
    w.bytes(b"$G");
    w.0.extend_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(decode(&w.finish()), Err(StoreError::Truncated));
}

proptest! {
    #[test]
    fn any_bytes_decode_without_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&data);
        let mut framed = MAGIC.to_vec();
        framed.extend_from_slice(&data);
        let _ = decode(&framed);
    }

    #[test]
    fn sessions_round_trip(
        account in "[A-Za-z$]{1,8}",
        client_id in "\\PC{1,16}",
        filters in proptest::collection::btree_map("[a-z/+#]{1,12}", 0u8..2, 0..6),
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..32), 0..6),
    ) {
        let filters: Vec<(String, QoS)> = filters
            .into_iter()
            .map(|(f, q)| (f, if q == 0 { QoS::AtMostOnce } else { QoS::AtLeastOnce }))
            .collect();
        let filter_refs: Vec<(&str, QoS)> = filters.iter().map(|(f, q)| (f.as_str(), *q)).collect();
        let inflight: Vec<(u16, &str, &[u8])> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| (u16::try_from(i + 1).unwrap(), "t/x", p.as_slice()))
            .collect();
        let record = encode_session(&account, &client_id, &session(&filter_refs, &inflight));
        let Ok(Record::Session(s)) = decode(&record) else {
            panic!("round trip failed");
        };
        prop_assert_eq!(s.account, account);
        prop_assert_eq!(s.client_id, client_id);
        prop_assert_eq!(s.filters.into_iter().collect::<Vec<_>>(), filters);
        prop_assert_eq!(s.inflight.len(), payloads.len());
        for ((_, _, got), want) in s.inflight.iter().zip(&payloads) {
            prop_assert_eq!(&got[..], &want[..]);
        }
    }
}

/// The committed fuzz seeds hold records that decode, not only ones that fail.
#[test]
fn fuzz_seeds_include_valid_records() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/mqtt_store");
    for (name, ok) in [
        ("retained", true),
        ("session", true),
        ("session_empty", true),
        ("bad_crc", false),
    ] {
        let data = std::fs::read(dir.join(name)).unwrap();
        assert_eq!(decode(&data).is_ok(), ok, "{name}");
    }
}
