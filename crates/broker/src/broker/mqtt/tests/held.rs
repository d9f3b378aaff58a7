//! QoS 1 deliveries past the window: held in arrival order, sent as PUBACKs free the window,
//! bounded, collected for kept sessions while their client is away, and written to the store.

use super::*;

/// The PUBLISHes in `packets` as (payload, packet id, dup); panics on any other packet.
fn publishes(packets: &[Packet]) -> Vec<(String, Option<u16>, bool)> {
    packets
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => (
                String::from_utf8_lossy(&p.payload).into_owned(),
                p.packet_id,
                p.dup,
            ),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn payloads(got: &[(String, Option<u16>, bool)]) -> Vec<&str> {
    got.iter().map(|(p, _, _)| p.as_str()).collect()
}

fn qos1(topic: &str, payload: &str) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: topic.into(),
        packet_id: Some(5),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
    })
}

fn config(max_ack_pending: u16) -> Config {
    Config {
        mqtt_ack_wait: Duration::from_secs(5),
        mqtt_max_ack_pending: max_ack_pending,
        ..Config::default()
    }
}

/// A broker with `max_ack_pending`, an MQTT publisher and a subscriber `client_id` subscribed
/// to `filters` (its SUBACK taken): the broker, the start time, the publisher, the subscriber
/// and the subscriber's decoder.
fn subscribed(
    max_ack_pending: u16,
    client_id: &str,
    filters: &[(&str, QoS)],
) -> (Broker, Instant, ClientId, ClientId, Decoder) {
    let now = start_time();
    let mut broker = Broker::new(config(max_ack_pending), now);
    let (p, _) = mqtt(&mut broker, now, "pub");
    let (s, sdec) = mqtt(&mut broker, now, client_id);
    feed(&mut broker, s, now, &wire(&[subscribe(filters)]));
    take(&mut broker, s);
    (broker, now, p, s, sdec)
}

/// A `clean_session: false` client `client_id`; returns it, its decoder and what it got
/// after CONNECT (CONNACK first).
fn kept(broker: &mut Broker, now: Instant, client_id: &str) -> (ClientId, Decoder, Vec<Packet>) {
    let id = broker.register_client(now, ClientParams::new(ConnectionType::Mqtt, addr()));
    let connect = Packet::Connect(Connect {
        clean_session: false,
        client_id: client_id.into(),
        ..Connect::default()
    });
    feed(broker, id, now, &wire(&[connect]));
    let mut dec = Decoder::client();
    let got = packets(&take(broker, id), &mut dec);
    (id, dec, got)
}

fn drop_connection(broker: &mut Broker, id: ClientId, now: Instant) {
    broker.close_client(id, now, CloseReason::ReadError);
    while broker.poll_event().is_some() {}
    broker.remove_client(id, now);
}

/// Three times `max_ack_pending` QoS 1 messages to a subscriber that acknowledges one at a
/// time: the first window goes out at once, each PUBACK sends the next, and every message
/// arrives once, in order, never more than `max_ack_pending` unacknowledged.
#[test]
fn window_releases_held_in_order_as_pubacks_arrive() {
    let (mut broker, now, p, s, mut sdec) = subscribed(4, "sub", &[("w/#", QoS::AtLeastOnce)]);
    let sent: Vec<String> = (0..12).map(|i| format!("m{i}")).collect();
    let batch: Vec<Packet> = sent.iter().map(|m| qos1("w/x", m)).collect();
    feed(&mut broker, p, now, &wire(&batch));
    take(&mut broker, p);
    let mut got = publishes(&packets(&take(&mut broker, s), &mut sdec));
    assert_eq!(payloads(&got), ["m0", "m1", "m2", "m3"]);
    let m = broker.client(s).and_then(|c| c.mqtt.as_ref()).unwrap();
    assert_eq!((m.inflight.len(), m.held.len()), (4, 8));
    let mut next_ack = 0;
    while next_ack < got.len() {
        let (_, id, dup) = got[next_ack].clone();
        assert!(!dup);
        feed(&mut broker, s, now, &wire(&[Packet::PubAck(id.unwrap())]));
        next_ack += 1;
        got.extend(publishes(&packets(&take(&mut broker, s), &mut sdec)));
        let m = broker.client(s).and_then(|c| c.mqtt.as_ref()).unwrap();
        assert!(m.inflight.len() <= 4);
    }
    let want: Vec<&str> = sent.iter().map(String::as_str).collect();
    assert_eq!(payloads(&got), want);
    let m = broker.client(s).and_then(|c| c.mqtt.as_ref()).unwrap();
    assert!(m.inflight.is_empty() && m.held.is_empty());
    // Packet ids in use are never reused while unacknowledged: all twelve were distinct
    // among any window.
    let ids: std::collections::BTreeSet<u16> = got.iter().filter_map(|(_, id, _)| *id).collect();
    assert_eq!(ids.len(), 12);
}

/// Redelivery after `ack_wait` resends the unacknowledged ones with DUP and sends nothing
/// held; a PUBACK then sends the oldest held one, new, and a later QoS 1 message waits
/// behind the held ones even when the window has room.
#[test]
fn redelivery_and_held_interleave() {
    let (mut broker, now, p, s, mut sdec) = subscribed(2, "sub", &[("r", QoS::AtLeastOnce)]);
    let batch: Vec<Packet> = ["a", "b", "c", "d"].iter().map(|m| qos1("r", m)).collect();
    feed(&mut broker, p, now, &wire(&batch));
    take(&mut broker, p);
    let first = publishes(&packets(&take(&mut broker, s), &mut sdec));
    assert_eq!(payloads(&first), ["a", "b"]);
    let later = now + Duration::from_secs(6);
    broker.handle_timeout(later);
    let again = publishes(&packets(&take(&mut broker, s), &mut sdec));
    assert_eq!(
        again,
        [
            ("a".to_owned(), first[0].1, true),
            ("b".to_owned(), first[1].1, true)
        ]
    );
    feed(
        &mut broker,
        s,
        later,
        &wire(&[Packet::PubAck(first[0].1.unwrap())]),
    );
    let next = publishes(&packets(&take(&mut broker, s), &mut sdec));
    assert!(
        matches!(&next[..], [(c, Some(_), false)] if c == "c"),
        "{next:?}"
    );
    // "b" and "c" await PUBACK; "d" is held. Acknowledging both leaves room for two, and
    // "d" then "e" follow in that order.
    feed(
        &mut broker,
        s,
        later,
        &wire(&[Packet::PubAck(first[1].1.unwrap())]),
    );
    feed(
        &mut broker,
        s,
        later,
        &wire(&[Packet::PubAck(next[0].1.unwrap())]),
    );
    feed(&mut broker, p, later, &wire(&[qos1("r", "e")]));
    let rest = publishes(&packets(&take(&mut broker, s), &mut sdec));
    assert_eq!(payloads(&rest), ["d", "e"]);
    // Redelivery of "d" and "e" keeps their packet ids; nothing else comes.
    broker.handle_timeout(later + Duration::from_secs(6));
    let dup = publishes(&packets(&take(&mut broker, s), &mut sdec));
    assert_eq!(
        dup,
        [
            ("d".to_owned(), rest[0].1, true),
            ("e".to_owned(), rest[1].1, true)
        ]
    );
}

/// The held queue is bounded in messages and in bytes; past either bound the oldest held
/// deliveries are dropped and one warning names the client, until the queue empties again.
#[test]
fn held_queue_bound_drops_oldest_with_one_warning() {
    let (mut broker, now, p, s, mut sdec) = subscribed(1, "slow", &[("b", QoS::AtLeastOnce)]);
    if let Some(m) = broker.client_mut(s).and_then(|c| c.mqtt.as_mut()) {
        // Topic "b" and a two-byte payload: three bytes each.
        m.held_limits = crate::mqtt::HeldLimits {
            max_msgs: 3,
            max_bytes: 100,
        };
    }
    let batch: Vec<Packet> = (0..6).map(|i| qos1("b", &format!("m{i}"))).collect();
    let events = feed(&mut broker, p, now, &wire(&batch));
    let warnings: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::MqttHeldDropped { .. }))
        .collect();
    assert_eq!(
        warnings,
        [&Event::MqttHeldDropped {
            account: "$G".to_owned(),
            client_id: "slow".to_owned(),
            dropped: 1,
            max_msgs: 3,
            max_bytes: 100,
        }],
        "one warning for the episode"
    );
    take(&mut broker, p);
    let first = publishes(&packets(&take(&mut broker, s), &mut sdec));
    assert_eq!(payloads(&first), ["m0"]);
    let m = broker.client(s).and_then(|c| c.mqtt.as_ref()).unwrap();
    let held: Vec<&[u8]> = m.held.iter().map(|h| &h.payload[..]).collect();
    assert_eq!(
        held,
        [&b"m3"[..], b"m4", b"m5"],
        "the oldest two were dropped"
    );
    assert_eq!(m.held.bytes(), 9);
    // The byte bound: 7 bytes hold two.
    if let Some(m) = broker.client_mut(s).and_then(|c| c.mqtt.as_mut()) {
        m.held_limits.max_bytes = 7;
    }
    let events = feed(&mut broker, p, now, &wire(&[qos1("b", "m6")]));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::MqttHeldDropped { .. })),
        "still the same episode"
    );
    let m = broker.client(s).and_then(|c| c.mqtt.as_ref()).unwrap();
    let held: Vec<&[u8]> = m.held.iter().map(|h| &h.payload[..]).collect();
    assert_eq!(held, [&b"m5"[..], b"m6"]);
    assert!(m.held.bytes() <= 7);
    // Drained by PUBACKs, the queue empties; the next overflow warns again.
    let mut last = first[0].1.unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        feed(&mut broker, s, now, &wire(&[Packet::PubAck(last)]));
        let next = publishes(&packets(&take(&mut broker, s), &mut sdec));
        if let Some((_, Some(id), _)) = next.first() {
            last = *id;
        }
        got.extend(next);
    }
    assert_eq!(payloads(&got), ["m5", "m6"]);
    let batch: Vec<Packet> = (7..11).map(|i| qos1("b", &format!("m{i}"))).collect();
    let events = feed(&mut broker, p, now, &wire(&batch));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::MqttHeldDropped { .. }))
            .count(),
        1
    );
}

/// A kept session collects the QoS 1 messages its QoS 1 filters match while its client is
/// away (not QoS 0 ones, nor messages to its QoS 0 filters); on resume its unacknowledged
/// deliveries come first with DUP, then the collected ones in arrival order, as far as the
/// window goes, the rest as PUBACKs free it.
#[test]
fn kept_session_collects_while_away_and_resumes() {
    let now = start_time();
    let mut broker = Broker::new(config(3), now);
    let (p, _) = mqtt(&mut broker, now, "pub");
    let n = nats(&mut broker, now);
    let (s, mut sdec, got) = kept(&mut broker, now, "away");
    assert_eq!(got, [ACCEPTED]);
    feed(
        &mut broker,
        s,
        now,
        &wire(&[subscribe(&[
            ("k/#", QoS::AtLeastOnce),
            ("z", QoS::AtMostOnce),
        ])]),
    );
    take(&mut broker, s);
    feed(&mut broker, p, now, &wire(&[qos1("k/1", "unacked")]));
    let first = publishes(&packets(&take(&mut broker, s), &mut sdec));
    assert_eq!(payloads(&first), ["unacked"]);
    drop_connection(&mut broker, s, now);
    // While away: QoS 1 on k/# (the parent level k too), QoS 0 on k, QoS 1 on z, and a NATS
    // message carrying the MQTT QoS 1 header.
    feed(
        &mut broker,
        p,
        now,
        &wire(&[
            qos1("k/2", "c1"),
            publish("k/3", QoS::AtMostOnce, b"qos0"),
            qos1("k", "c2"),
            qos1("z", "zq1"),
            qos1("other", "no"),
        ]),
    );
    feed(
        &mut broker,
        n,
        now,
        b"HPUB k.4 25 27\r\nNATS/1.0\r\nNmqtt-Pub:1\r\n\r\nc3\r\n",
    );
    feed(
        &mut broker,
        p,
        now,
        &wire(&[qos1("k/5", "c4"), qos1("k/6", "c5")]),
    );
    take(&mut broker, p);
    let (s, mut sdec, got) = kept(&mut broker, now, "away");
    assert_eq!(
        got[0],
        Packet::ConnAck(ConnAck {
            session_present: true,
            code: ConnectReturnCode::Accepted
        })
    );
    let resumed = publishes(&got[1..]);
    assert_eq!(
        resumed,
        [
            ("unacked".to_owned(), first[0].1, true),
            ("c1".to_owned(), resumed[1].1, false),
            ("c2".to_owned(), resumed[2].1, false),
        ],
        "DUP first, then the window's worth of collected ones"
    );
    let mut all = resumed.clone();
    for (_, id, _) in resumed {
        feed(&mut broker, s, now, &wire(&[Packet::PubAck(id.unwrap())]));
        all.extend(publishes(&packets(&take(&mut broker, s), &mut sdec)));
    }
    assert_eq!(payloads(&all), ["unacked", "c1", "c2", "c3", "c4", "c5"]);
    // Connected again, it collects nothing more in the store.
    assert!(
        broker
            .mqtt_sessions
            .get(AccountId::GLOBAL, "away")
            .is_none()
    );
    assert!(!broker.mqtt_sessions.collects_in(AccountId::GLOBAL));
}

/// With a store, changes to a kept session (deliveries sent, acknowledged, held, collected
/// while away) are written within the persist interval, not per message and not only at
/// subscribe or close: a broker restored from what was written at that point (a kill) gives
/// the client every delivery it had not acknowledged.
#[test]
fn dirty_sessions_are_written_on_the_timer() {
    let now = start_time();
    let config = Config {
        mqtt_persist: true,
        ..config(2)
    };
    let mut disk = std::collections::BTreeMap::new();
    let mut broker = Broker::new(config.clone(), now);
    let (p, _) = mqtt(&mut broker, now, "pub");
    let (s, mut sdec, _) = kept(&mut broker, now, "durable");
    feed(
        &mut broker,
        s,
        now,
        &wire(&[subscribe(&[("d", QoS::AtLeastOnce)])]),
    );
    take(&mut broker, s);
    apply_writes(&mut broker, &mut disk);
    let batch: Vec<Packet> = ["1", "2", "3"].iter().map(|m| qos1("d", m)).collect();
    feed(&mut broker, p, now, &wire(&batch));
    take(&mut broker, p);
    let sent = publishes(&packets(&take(&mut broker, s), &mut sdec));
    assert_eq!(payloads(&sent), ["1", "2"]);
    assert_eq!(apply_writes(&mut broker, &mut disk), 0, "not per message");
    let deadline = broker.poll_timeout().unwrap();
    assert!(
        deadline <= now + crate::mqtt::PERSIST_INTERVAL,
        "{deadline:?}"
    );
    broker.handle_timeout(now + crate::mqtt::PERSIST_INTERVAL);
    assert_eq!(apply_writes(&mut broker, &mut disk), 1, "one batched write");
    // A PUBACK changes the session again: written at the next interval.
    let t1 = now + Duration::from_millis(1500);
    feed(
        &mut broker,
        s,
        t1,
        &wire(&[Packet::PubAck(sent[0].1.unwrap())]),
    );
    let third = publishes(&packets(&take(&mut broker, s), &mut sdec));
    assert_eq!(payloads(&third), ["3"]);
    broker.handle_timeout(t1 + Duration::from_millis(500));
    assert_eq!(apply_writes(&mut broker, &mut disk), 0);
    let t2 = t1 + crate::mqtt::PERSIST_INTERVAL;
    broker.handle_timeout(t2);
    assert_eq!(apply_writes(&mut broker, &mut disk), 1);

    // Killed now (no close): a broker restored from the disk resends "2" and "3".
    let mut restarted = Broker::new(config.clone(), t2);
    for record in disk.values() {
        assert!(restarted.restore_mqtt(t2, record).is_ok());
    }
    let (s2, _, got) = kept(&mut restarted, t2, "durable");
    let again = publishes(&got[1..]);
    assert_eq!(
        again,
        [
            ("2".to_owned(), sent[1].1, true),
            ("3".to_owned(), third[0].1, true)
        ]
    );
    // Away, it collects; the store writes the kept session on the timer too, and a broker
    // restored from that has the collected one waiting behind the unacknowledged ones.
    drop_connection(&mut restarted, s2, t2);
    apply_writes(&mut restarted, &mut disk);
    let (p2, _) = mqtt(&mut restarted, t2, "pub2");
    feed(&mut restarted, p2, t2, &wire(&[qos1("d", "while away")]));
    assert_eq!(apply_writes(&mut restarted, &mut disk), 0);
    assert!(restarted.poll_timeout().unwrap() <= t2 + crate::mqtt::PERSIST_INTERVAL);
    restarted.handle_timeout(t2 + crate::mqtt::PERSIST_INTERVAL);
    assert_eq!(apply_writes(&mut restarted, &mut disk), 1);
    let t3 = t2 + Duration::from_secs(2);
    let mut third_broker = Broker::new(config, t3);
    for record in disk.values() {
        assert!(third_broker.restore_mqtt(t3, record).is_ok());
    }
    let (s3, mut dec3, got) = kept(&mut third_broker, t3, "durable");
    let resumed = publishes(&got[1..]);
    assert_eq!(payloads(&resumed), ["2", "3"]);
    feed(
        &mut third_broker,
        s3,
        t3,
        &wire(&[Packet::PubAck(resumed[0].1.unwrap())]),
    );
    let last = publishes(&packets(&take(&mut third_broker, s3), &mut dec3));
    assert!(
        matches!(&last[..], [(m, Some(_), false)] if m == "while away"),
        "{last:?}"
    );
}

/// A clean stop writes what the timer had not written yet.
#[test]
fn flush_writes_pending_session_records() {
    let now = start_time();
    let config = Config {
        mqtt_persist: true,
        ..config(2)
    };
    let mut disk = std::collections::BTreeMap::new();
    let mut broker = Broker::new(config, now);
    let (p, _) = mqtt(&mut broker, now, "pub");
    let (s, _, _) = kept(&mut broker, now, "gone");
    feed(
        &mut broker,
        s,
        now,
        &wire(&[subscribe(&[("f", QoS::AtLeastOnce)])]),
    );
    drop_connection(&mut broker, s, now);
    apply_writes(&mut broker, &mut disk);
    feed(&mut broker, p, now, &wire(&[qos1("f", "x")]));
    assert_eq!(apply_writes(&mut broker, &mut disk), 0);
    broker.flush_mqtt_sessions();
    assert_eq!(apply_writes(&mut broker, &mut disk), 1);
    assert_eq!(broker.mqtt_store_due, None, "nothing left to write");
}

/// UNSUBSCRIBE (or subscribing again at QoS 0) forgets the held deliveries only that filter
/// matched, as nats-server deletes the filter's consumer; those another QoS 1 filter matches
/// stay.
#[test]
fn unsubscribe_forgets_what_only_that_filter_held() {
    let (mut broker, now, p, s, mut sdec) = subscribed(
        1,
        "sub",
        &[
            ("u/a", QoS::AtLeastOnce),
            ("u/b", QoS::AtLeastOnce),
            ("u/c", QoS::AtLeastOnce),
        ],
    );
    let batch = [
        qos1("u/a", "a0"),
        qos1("u/a", "a1"),
        qos1("u/b", "b1"),
        qos1("u/c", "c1"),
    ];
    feed(&mut broker, p, now, &wire(&batch));
    let first = publishes(&packets(&take(&mut broker, s), &mut sdec));
    assert_eq!(payloads(&first), ["a0"]);
    let unsub = Packet::Unsubscribe(Unsubscribe {
        packet_id: 4,
        filters: vec!["u/a".to_owned()],
    });
    feed(&mut broker, s, now, &wire(&[unsub]));
    feed(
        &mut broker,
        s,
        now,
        &wire(&[subscribe(&[("u/c", QoS::AtMostOnce)])]),
    );
    // a0, in flight for u/a, is forgotten with it: its slot goes to b1 at once.
    let got = packets(&take(&mut broker, s), &mut sdec);
    let sent: Vec<Packet> = got
        .into_iter()
        .filter(|p| matches!(p, Packet::Publish(_)))
        .collect();
    assert_eq!(payloads(&publishes(&sent)), ["b1"]);
    feed(
        &mut broker,
        s,
        now,
        &wire(&[Packet::PubAck(first[0].1.unwrap())]),
    );
    assert!(publishes(&packets(&take(&mut broker, s), &mut sdec)).is_empty());
    let m = broker.client(s).and_then(|c| c.mqtt.as_ref()).unwrap();
    assert!(m.held.is_empty(), "a1 and c1 forgotten");
}

/// A client that connects as `user` (password `pw`) with `clean_session: false`; returns it,
/// its decoder and what it got after CONNECT (CONNACK first).
fn kept_as(
    broker: &mut Broker,
    now: Instant,
    client_id: &str,
    user: &str,
) -> (ClientId, Decoder, Vec<Packet>) {
    let id = broker.register_client(now, ClientParams::new(ConnectionType::Mqtt, addr()));
    let connect = Packet::Connect(Connect {
        clean_session: false,
        client_id: client_id.into(),
        username: Some(user.into()),
        password: Some(Bytes::from_static(b"pw")),
        ..Connect::default()
    });
    feed(broker, id, now, &wire(&[connect]));
    let mut dec = Decoder::client();
    let got = packets(&take(broker, id), &mut dec);
    (id, dec, got)
}

/// A kept session resumed by a user with narrower subscribe permissions gets only what that
/// user may receive: nothing collected for a filter it may not subscribe to (not restored,
/// as nats-server gives that filter's consumer no delivery subscription), nothing on a subject
/// its subscribe deny excludes (as its live deliveries), unacknowledged or collected.
#[test]
fn resumed_session_gets_only_what_the_resuming_user_may_receive() {
    let now = start_time();
    let narrow = auth::PermissionsConfig {
        publish: None,
        subscribe: Some(auth::SubjectPermission {
            allow: Some(vec!["k.*".to_owned()]),
            deny: vec!["k.secret".to_owned()],
        }),
        allow_responses: None,
    };
    let user = |name: &str, permissions| auth::User {
        username: name.into(),
        password: "pw".into(),
        permissions,
        ..auth::User::default()
    };
    let config = Config {
        auth: crate::AuthConfig {
            users: vec![user("wide", None), user("narrow", Some(narrow))],
            ..crate::AuthConfig::default()
        },
        ..config(2)
    };
    let mut broker = Broker::new(config, now);
    let (p, _, got) = kept_as(&mut broker, now, "pub", "wide");
    assert_eq!(got, [ACCEPTED]);
    let (s, mut sdec, got) = kept_as(&mut broker, now, "shared", "wide");
    assert_eq!(got, [ACCEPTED]);
    feed(
        &mut broker,
        s,
        now,
        &wire(&[subscribe(&[
            ("k/+", QoS::AtLeastOnce),
            ("z/+", QoS::AtLeastOnce),
        ])]),
    );
    take(&mut broker, s);
    // Sent and not acknowledged: "k/secret" and "k/a"; held behind them: "k/b".
    feed(
        &mut broker,
        p,
        now,
        &wire(&[qos1("k/secret", "s0"), qos1("k/a", "a0"), qos1("k/b", "b0")]),
    );
    let sent = publishes(&packets(&take(&mut broker, s), &mut sdec));
    assert_eq!(payloads(&sent), ["s0", "a0"]);
    drop_connection(&mut broker, s, now);
    feed(
        &mut broker,
        p,
        now,
        &wire(&[qos1("k/c", "c1"), qos1("k/secret", "s1"), qos1("z/x", "z1")]),
    );
    take(&mut broker, p);
    let kept = broker
        .mqtt_sessions
        .get(AccountId::GLOBAL, "shared")
        .unwrap();
    let collected: Vec<&[u8]> = kept.held.iter().map(|h| &h.payload[..]).collect();
    assert_eq!(collected, [&b"b0"[..], b"c1", b"s1", b"z1"]);

    let (r, mut rdec, got) = kept_as(&mut broker, now, "shared", "narrow");
    while broker.poll_event().is_some() {}
    assert_eq!(
        got[0],
        Packet::ConnAck(ConnAck {
            session_present: true,
            code: ConnectReturnCode::Accepted
        })
    );
    let mut all = publishes(&got[1..]);
    assert_eq!(all[0], ("a0".to_owned(), sent[1].1, true));
    let mut next = 0;
    while next < all.len() {
        let id = all[next].1.unwrap();
        feed(&mut broker, r, now, &wire(&[Packet::PubAck(id)]));
        all.extend(publishes(&packets(&take(&mut broker, r), &mut rdec)));
        next += 1;
    }
    assert_eq!(payloads(&all), ["a0", "b0", "c1"]);
    let m = broker.client(r).and_then(|c| c.mqtt.as_ref()).unwrap();
    assert!(m.inflight.is_empty() && m.held.is_empty());
    assert_eq!(m.filters.keys().collect::<Vec<_>>(), ["k/+"]);
}

/// Overlapping QoS 1 filters (`a/#` and `a/b`) get a copy each, as nats-server's two
/// consumers do; unsubscribing one forgets its held copies only, so what was held arrives
/// once more, not twice.
#[test]
fn overlapping_filters_copy_each_and_unsubscribe_forgets_its_copies() {
    let (mut broker, now, p, s, mut sdec) = subscribed(
        4,
        "overlap",
        &[("a/#", QoS::AtLeastOnce), ("a/b", QoS::AtLeastOnce)],
    );
    let batch: Vec<Packet> = (0..6).map(|i| qos1("a/b", &format!("h{i}"))).collect();
    feed(&mut broker, p, now, &wire(&batch));
    take(&mut broker, p);
    let window = publishes(&packets(&take(&mut broker, s), &mut sdec));
    assert_eq!(payloads(&window), ["h0", "h0", "h1", "h1"]);
    let m = broker.client(s).and_then(|c| c.mqtt.as_ref()).unwrap();
    assert_eq!(m.held.len(), 8);
    let unsub = Packet::Unsubscribe(Unsubscribe {
        packet_id: 4,
        filters: vec!["a/b".to_owned()],
    });
    feed(&mut broker, s, now, &wire(&[unsub]));
    let got = packets(&take(&mut broker, s), &mut sdec);
    let (unsuback, sent) = got.split_first().unwrap();
    assert!(matches!(unsuback, Packet::UnsubAck(4)), "{unsuback:?}");
    // a/b's copies are forgotten, held and in flight; the two window slots its in-flight
    // copies held go to a/#'s next held ones.
    let mut got = publishes(sent);
    assert_eq!(payloads(&got), ["h2", "h3"]);
    let m = broker.client(s).and_then(|c| c.mqtt.as_ref()).unwrap();
    assert_eq!(m.held.len(), 2, "a/#'s h4 and h5");
    for (_, id, _) in &window {
        feed(&mut broker, s, now, &wire(&[Packet::PubAck(id.unwrap())]));
        got.extend(publishes(&packets(&take(&mut broker, s), &mut sdec)));
    }
    assert_eq!(payloads(&got), ["h2", "h3", "h4", "h5"]);
}

/// A reload that widens `max_ack_pending` widens a live session's window at once: the held
/// deliveries the new window has room for go out without waiting for a PUBACK.
#[test]
fn reload_resizes_the_window_of_live_sessions() {
    let (mut broker, now, p, s, mut sdec) = subscribed(2, "sub", &[("w", QoS::AtLeastOnce)]);
    let batch: Vec<Packet> = (0..6).map(|i| qos1("w", &format!("m{i}"))).collect();
    feed(&mut broker, p, now, &wire(&batch));
    take(&mut broker, p);
    let first = publishes(&packets(&take(&mut broker, s), &mut sdec));
    assert_eq!(payloads(&first), ["m0", "m1"]);
    broker.reload(config(4), now);
    while broker.poll_event().is_some() {}
    let more = publishes(&packets(&take(&mut broker, s), &mut sdec));
    assert_eq!(payloads(&more), ["m2", "m3"]);
    let m = broker.client(s).and_then(|c| c.mqtt.as_ref()).unwrap();
    assert_eq!(
        (m.max_ack_pending, m.inflight.len(), m.held.len()),
        (4, 4, 2)
    );
}

/// An UNSUBSCRIBE ends the redelivery of what that filter had in flight (nats-server deletes
/// its consumer, and the consumer's redeliveries with it), frees the window for what another
/// filter holds, and a late PUBACK for a forgotten delivery is ignored.
#[test]
fn unsubscribe_ends_redelivery_of_that_filters_deliveries_in_flight() {
    let (mut broker, now, p, s, mut sdec) = subscribed(
        2,
        "inflight",
        &[("u", QoS::AtLeastOnce), ("v", QoS::AtLeastOnce)],
    );
    let batch = [qos1("u", "u0"), qos1("u", "u1"), qos1("v", "v0")];
    feed(&mut broker, p, now, &wire(&batch));
    take(&mut broker, p);
    let first = publishes(&packets(&take(&mut broker, s), &mut sdec));
    assert_eq!(payloads(&first), ["u0", "u1"], "v0 waits behind the window");
    let unsub = Packet::Unsubscribe(Unsubscribe {
        packet_id: 9,
        filters: vec!["u".to_owned()],
    });
    feed(&mut broker, s, now, &wire(&[unsub]));
    let got = packets(&take(&mut broker, s), &mut sdec);
    let (unsuback, sent) = got.split_first().unwrap();
    assert!(matches!(unsuback, Packet::UnsubAck(9)), "{unsuback:?}");
    let released = publishes(sent);
    assert_eq!(
        payloads(&released),
        ["v0"],
        "the freed window sends v's held one"
    );
    let later = now + Duration::from_secs(6);
    broker.handle_timeout(later);
    let again = publishes(&packets(&take(&mut broker, s), &mut sdec));
    assert_eq!(
        again,
        [("v0".to_owned(), released[0].1, true)],
        "only v's delivery is redelivered"
    );
    feed(
        &mut broker,
        s,
        later,
        &wire(&[Packet::PubAck(first[0].1.unwrap())]),
    );
    assert!(publishes(&packets(&take(&mut broker, s), &mut sdec)).is_empty());
    assert!(broker.client(s).is_some_and(|c| !c.phase.is_closed()));
}
