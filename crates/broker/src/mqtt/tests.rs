//! Bounds of the MQTT session state.

use super::*;
use crate::router::AccountId;

fn session(payload_len: usize) -> SavedSession {
    let inflight = Inflight {
        topic: "t".into(),
        payload: Bytes::from(vec![0u8; payload_len]),
        due: Instant::now(),
        sid: None,
    };
    SavedSession {
        filters: std::collections::BTreeMap::from([("t".to_owned(), QoS::AtLeastOnce)]),
        inflight: vec![(1, inflight)],
        held: HeldQueue::default(),
        next_packet_id: 1,
    }
}

/// Kept sessions are bounded in number and in the bytes of their deliveries.
#[test]
fn session_store_bounds() {
    let mut store = SessionStore {
        max_sessions: 2,
        max_bytes: 100,
        ..SessionStore::default()
    };
    let g = AccountId::GLOBAL;
    assert_eq!(store.save(g, "a", session(60)), Some(0));
    // Over the byte bound: the subscriptions are kept, the deliveries are not.
    assert_eq!(store.save(g, "b", session(60)), Some(1));
    assert_eq!(store.save(g, "c", session(1)), None, "count bound");
    let b = store.take(g, "b").unwrap();
    assert!(b.inflight.is_empty() && !b.filters.is_empty());
    assert_eq!(store.bytes, 60);
    // Replacing a session releases its bytes first.
    assert_eq!(store.save(g, "a", session(90)), Some(0));
    assert_eq!(store.bytes, 90);
    assert_eq!(store.take(g, "a").unwrap().inflight.len(), 1);
    assert_eq!(store.bytes, 0);
}

/// QoS 1 deliveries are bounded by count and by payload bytes; PUBACK frees both.
#[test]
fn inflight_bounds() {
    let now = Instant::now();
    let mut m = MqttState::new(1024);
    m.max_ack_pending = 3;
    m.max_inflight_bytes = 10;
    let sid: Arc<[u8]> = Arc::from(&b"s"[..]);
    m.granted.insert(Arc::clone(&sid), QoS::AtLeastOnce);
    assert_eq!(m.delivery(&sid, QoS::AtLeastOnce, 6), Delivery::AtLeastOnce);
    let id = m.track("t", Bytes::from_static(b"123456"), None, now);
    assert_eq!(
        m.delivery(&sid, QoS::AtLeastOnce, 5),
        Delivery::Held,
        "bytes"
    );
    assert_eq!(m.delivery(&sid, QoS::AtMostOnce, 5), Delivery::AtMostOnce);
    assert_eq!(m.delivery(&sid, QoS::AtLeastOnce, 4), Delivery::AtLeastOnce);
    m.track("t", Bytes::from_static(b"1234"), None, now);
    m.acked(id, now);
    assert_eq!(m.inflight_bytes, 4);
    m.track("t", Bytes::from_static(b"1"), None, now);
    m.track("t", Bytes::from_static(b"2"), None, now);
    assert_eq!(
        m.delivery(&sid, QoS::AtLeastOnce, 0),
        Delivery::Held,
        "count"
    );
    // Acknowledged out of order, the redelivery queue stays bounded.
    for _ in 0..1000 {
        let id = m.track("t", Bytes::new(), None, now);
        m.acked(id, now);
    }
    assert!(
        m.due.len() <= 2 * m.max_ack_pending + 16 + 1,
        "{}",
        m.due.len()
    );
}

/// A QoS 1 filter's session that has them.
fn collecting(filter: &str) -> SavedSession {
    SavedSession {
        filters: std::collections::BTreeMap::from([(filter.to_owned(), QoS::AtLeastOnce)]),
        ..SavedSession::default()
    }
}

/// Kept sessions collect deliveries within their own bounds (messages, bytes) and the
/// store's, dropping their oldest; a QoS 0 filter collects nothing.
#[test]
fn collected_deliveries_are_bounded() {
    let mut store = SessionStore {
        max_bytes: 20,
        held_limits: HeldLimits {
            max_msgs: 3,
            max_bytes: 12,
        },
        ..SessionStore::default()
    };
    let g = AccountId::GLOBAL;
    let payload = Bytes::from_static(b"xyz");
    assert_eq!(store.save(g, "a", collecting("t/#")), Some(0));
    let qos0 = SavedSession {
        filters: std::collections::BTreeMap::from([("t".to_owned(), QoS::AtMostOnce)]),
        ..SavedSession::default()
    };
    assert_eq!(store.save(g, "zero", qos0), Some(0));
    assert!(store.collects_in(g));
    let mut only_zero = SessionStore::default();
    only_zero.save(g, "zero", store.get(g, "zero").unwrap().clone());
    assert!(!only_zero.collects_in(g), "a QoS 0 filter collects nothing");
    // "t" (the parent level of t/#) and "t.u": each 1 + 3 or 3 + 3 bytes.
    assert!(store.collect(g, "t", "t", &payload).is_empty());
    assert!(store.collect(g, "t.u", "t/u", &payload).is_empty());
    assert!(store.collect(g, "x", "x", &payload).is_empty(), "no match");
    assert_eq!(store.bytes(), 10);
    // The third fits in count, not in 12 bytes: the oldest goes, and this is the first drop.
    let drops = store.collect(g, "t.v", "t/v", &payload);
    assert_eq!(
        drops,
        [CollectDrop {
            client_id: "a".to_owned(),
            dropped: Dropped {
                now: 1,
                first: true
            }
        }]
    );
    let held: Vec<&str> = store
        .get(g, "a")
        .unwrap()
        .held
        .iter()
        .map(|h| h.topic.as_str())
        .collect();
    assert_eq!(held, ["t/u", "t/v"]);
    assert_eq!(store.bytes(), 12);
    assert!(store.get(g, "zero").unwrap().held.is_empty());
    // The store's bound: a second session fills what the first left.
    assert_eq!(store.save(g, "b", collecting("t.*")), Some(0));
    for _ in 0..2 {
        store.collect(g, "t.w", "t/w", &payload);
    }
    assert!(store.bytes() <= 20, "{}", store.bytes());
    let drops = store.collect(g, "t.w", "t/w", &payload);
    assert!(!drops.is_empty());
    assert!(store.bytes() <= 20, "{}", store.bytes());
    // Taking a session releases its bytes and it collects no more.
    let a = store.take(g, "a").unwrap();
    let b_bytes = store.get(g, "b").unwrap().held.bytes();
    assert_eq!(store.bytes(), b_bytes);
    assert!(!a.held.is_empty());
    store.take(g, "b");
    store.take(g, "zero");
    assert!(!store.collects_in(g));
    assert_eq!(store.bytes(), 0);
}
