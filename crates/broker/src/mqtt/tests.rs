//! Bounds of the MQTT session state.

use super::*;
use crate::router::AccountId;

fn session(payload_len: usize) -> SavedSession {
    let inflight = Inflight {
        topic: "t".into(),
        payload: Bytes::from(vec![0u8; payload_len]),
        due: Instant::now(),
    };
    SavedSession {
        filters: std::collections::BTreeMap::from([("t".to_owned(), QoS::AtLeastOnce)]),
        inflight: vec![(1, inflight)],
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
    assert!(store.save(g, "a", session(60)));
    // Over the byte bound: the subscriptions are kept, the deliveries are not.
    assert!(store.save(g, "b", session(60)));
    assert!(!store.save(g, "c", session(1)), "count bound");
    let b = store.take(g, "b").unwrap();
    assert!(b.inflight.is_empty() && !b.filters.is_empty());
    assert_eq!(store.bytes, 60);
    // Replacing a session releases its bytes first.
    assert!(store.save(g, "a", session(90)));
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
    let id = m.track("t", Bytes::from_static(b"123456"), now);
    assert_eq!(
        m.delivery(&sid, QoS::AtLeastOnce, 5),
        Delivery::Dropped,
        "bytes"
    );
    assert_eq!(m.delivery(&sid, QoS::AtMostOnce, 5), Delivery::AtMostOnce);
    assert_eq!(m.delivery(&sid, QoS::AtLeastOnce, 4), Delivery::AtLeastOnce);
    m.track("t", Bytes::from_static(b"1234"), now);
    m.acked(id);
    assert_eq!(m.inflight_bytes, 4);
    m.track("t", Bytes::from_static(b"1"), now);
    m.track("t", Bytes::from_static(b"2"), now);
    assert_eq!(
        m.delivery(&sid, QoS::AtLeastOnce, 0),
        Delivery::Dropped,
        "count"
    );
    // Acknowledged out of order, the redelivery queue stays bounded.
    for _ in 0..1000 {
        let id = m.track("t", Bytes::new(), now);
        m.acked(id);
    }
    assert!(
        m.due.len() <= 2 * m.max_ack_pending + 16 + 1,
        "{}",
        m.due.len()
    );
}
