//! MQTT sessions in the broker, driven with mqtt-codec's client role.

use mqtt_codec::{ConnAck, Decoder, Will};

use super::*;

fn addr() -> core::net::SocketAddr {
    core::net::SocketAddr::from(([127, 0, 0, 1], 4000))
}

fn nats(broker: &mut Broker, now: Instant) -> ClientId {
    let id = broker.register_client(now, ClientParams::new(ConnectionType::Standard, addr()));
    feed(
        broker,
        id,
        now,
        b"CONNECT {\"verbose\":false,\"headers\":true}\r\n",
    );
    take(broker, id);
    id
}

fn feed(broker: &mut Broker, id: ClientId, now: Instant, input: &[u8]) -> Vec<Event> {
    let mut buf = BytesMut::from(input);
    broker.handle_input(id, now, &mut buf);
    assert!(buf.is_empty(), "input left over");
    let mut events = Vec::new();
    while let Some(ev) = broker.poll_event() {
        events.push(ev);
    }
    assert_eq!(broker.check_invariants(), Ok(()));
    events
}

fn take(broker: &mut Broker, id: ClientId) -> BytesMut {
    let mut buf = BytesMut::new();
    if let Some(q) = broker.outbound(id) {
        q.drain_into(&mut buf);
    }
    buf
}

fn packets(bytes: &[u8], client: &mut Decoder) -> Vec<Packet> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(p) = client.decode(&mut buf).unwrap() {
        out.push(p);
    }
    assert!(buf.is_empty());
    out
}

fn wire(packets: &[Packet]) -> BytesMut {
    let mut out = BytesMut::new();
    for p in packets {
        mqtt_codec::encode(p, &mut out).unwrap();
    }
    out
}

fn connect(client_id: &str) -> Packet {
    Packet::Connect(Connect {
        clean_session: true,
        keep_alive: 10,
        client_id: client_id.into(),
        ..Connect::default()
    })
}

const ACCEPTED: Packet = Packet::ConnAck(ConnAck {
    session_present: false,
    code: ConnectReturnCode::Accepted,
});

/// An MQTT client that connected; returns it and its client-role decoder (CONNACK consumed).
fn mqtt(broker: &mut Broker, now: Instant, client_id: &str) -> (ClientId, Decoder) {
    let id = broker.register_client(now, ClientParams::new(ConnectionType::Mqtt, addr()));
    assert!(take(broker, id).is_empty(), "no INFO for MQTT");
    feed(broker, id, now, &wire(&[connect(client_id)]));
    let mut dec = Decoder::client();
    assert_eq!(packets(&take(broker, id), &mut dec), [ACCEPTED]);
    (id, dec)
}

fn publish(topic: &str, qos: QoS, payload: &'static [u8]) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: (qos != QoS::AtMostOnce).then_some(5),
        payload: Bytes::from_static(payload),
    })
}

fn subscribe(filters: &[(&str, QoS)]) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id: 3,
        filters: filters.iter().map(|(f, q)| ((*f).to_owned(), *q)).collect(),
    })
}

#[test]
fn mqtt_and_nats_see_each_other() {
    let now = Instant::now();
    let mut broker = Broker::new(Config::default(), now);
    let (m, mut dec) = mqtt(&mut broker, now, "m1");
    let n = nats(&mut broker, now);
    feed(&mut broker, n, now, b"SUB sensors.> 1\r\n");
    feed(
        &mut broker,
        m,
        now,
        &wire(&[subscribe(&[
            ("a/+/c", QoS::AtLeastOnce),
            ("x.y", QoS::AtMostOnce),
            ("/#", QoS::ExactlyOnce),
        ])]),
    );
    assert_eq!(
        packets(&take(&mut broker, m), &mut dec),
        [Packet::SubAck(SubAck {
            packet_id: 3,
            returns: vec![
                SubAckReturn::Success(QoS::AtLeastOnce),
                SubAckReturn::Failure,
                // nats-server 2.9.10 grants QoS 2 as 1.
                SubAckReturn::Success(QoS::AtLeastOnce),
            ],
        })]
    );
    // NATS → MQTT: subject a.b.c is topic a/b/c; `/#` matches `/.foo` and its parent `/`.
    feed(
        &mut broker,
        n,
        now,
        b"PUB a.b.c 2\r\nhi\r\nPUB /.foo 1\r\nx\r\nPUB /./ 1\r\ny\r\nPUB a.b 1\r\nz\r\n",
    );
    let got = packets(&take(&mut broker, m), &mut dec);
    let topics: Vec<(String, Bytes)> = got
        .into_iter()
        .map(|p| match p {
            Packet::Publish(p) => (p.topic, p.payload),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        topics,
        [
            ("a/b/c".to_owned(), Bytes::from_static(b"hi")),
            ("/foo".to_owned(), Bytes::from_static(b"x")),
            ("/".to_owned(), Bytes::from_static(b"y")),
        ]
    );
    // MQTT → NATS: with nats-server's header; QoS 1 is acknowledged.
    feed(
        &mut broker,
        m,
        now,
        &wire(&[publish("sensors/1", QoS::AtLeastOnce, b"21.5")]),
    );
    assert_eq!(
        packets(&take(&mut broker, m), &mut dec),
        [Packet::PubAck(5)]
    );
    assert_eq!(
        &take(&mut broker, n)[..],
        b"HMSG sensors.1 1 25 29\r\nNATS/1.0\r\nNmqtt-Pub:1\r\n\r\n21.5\r\n"
    );
    // PINGREQ, UNSUBSCRIBE, DISCONNECT.
    feed(
        &mut broker,
        m,
        now,
        &wire(&[
            Packet::PingReq,
            Packet::Unsubscribe(Unsubscribe {
                packet_id: 9,
                filters: vec!["a/+/c".into()],
            }),
        ]),
    );
    assert_eq!(
        packets(&take(&mut broker, m), &mut dec),
        [Packet::PingResp, Packet::UnsubAck(9)]
    );
    feed(&mut broker, n, now, b"PUB a.b.c 2\r\nhi\r\n");
    assert!(take(&mut broker, m).is_empty());
    let events = feed(&mut broker, m, now, &wire(&[Packet::Disconnect]));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Closed {
            reason: CloseReason::ClientClosed,
            ..
        }
    )));
}

#[test]
fn will_is_published_unless_disconnected() {
    let now = Instant::now();
    let mut broker = Broker::new(Config::default(), now);
    let n = nats(&mut broker, now);
    feed(&mut broker, n, now, b"SUB will.> 1\r\n");
    for (graceful, expect) in [(true, false), (false, true)] {
        let id = broker.register_client(now, ClientParams::new(ConnectionType::Mqtt, addr()));
        let connect = Packet::Connect(Connect {
            clean_session: true,
            client_id: "w".into(),
            will: Some(Will {
                topic: "will/w".into(),
                message: Bytes::from_static(b"gone"),
                qos: QoS::AtMostOnce,
                retain: true,
            }),
            ..Connect::default()
        });
        feed(&mut broker, id, now, &wire(&[connect]));
        if graceful {
            feed(&mut broker, id, now, &wire(&[Packet::Disconnect]));
        } else {
            broker.close_client(id, now, CloseReason::ReadError);
        }
        while broker.poll_event().is_some() {}
        broker.remove_client(id, now);
        let out = take(&mut broker, n);
        assert_eq!(out.ends_with(b"gone\r\n"), expect, "{out:?}");
        // A will with the retain flag is kept as the topic's retained message.
        assert_eq!(broker.retained.len(), usize::from(expect));
    }
}

#[test]
fn takeover_keep_alive_and_protocol_errors() {
    let now = Instant::now();
    let mut broker = Broker::new(Config::default(), now);
    let (old, _) = mqtt(&mut broker, now, "same");
    let (new, _) = mqtt(&mut broker, now, "same");
    assert!(
        broker.client(old).is_some_and(
            |c| c.phase.closed().map(|(r, _)| r) == Some(CloseReason::DuplicateClientId)
        )
    );
    assert!(broker.is_open(new));
    // Keep-alive 10 s: nothing for 15 s closes the connection.
    broker.handle_timeout(now + Duration::from_secs(14));
    assert!(broker.is_open(new));
    broker.handle_timeout(now + Duration::from_secs(16));
    assert!(broker.client(new).is_some_and(|c| c.phase.closed().map(|(r, _)| r) == Some(CloseReason::StaleConnection)));
    // A second CONNECT closes with a logged error; QoS 2 publishes are refused as 2.9.10.
    let (m, _) = mqtt(&mut broker, now, "x");
    let events = feed(&mut broker, m, now, &wire(&[connect("x")]));
    assert!(events.iter().any(|e| matches!(e, Event::ClientError { detail, .. } if detail == "received a second CONNECT packet")));
    let (m, _) = mqtt(&mut broker, now, "y");
    let events = feed(
        &mut broker,
        m,
        now,
        &wire(&[publish("t", QoS::ExactlyOnce, b"x")]),
    );
    assert!(events.iter().any(|e| matches!(e, Event::ClientError { detail, .. } if detail == "publish QoS=2 not supported")));
    // A bad protocol level is answered with CONNACK 1 before the close.
    let id = broker.register_client(now, ClientParams::new(ConnectionType::Mqtt, addr()));
    feed(
        &mut broker,
        id,
        now,
        &[0x10, 10, 0, 4, b'M', b'Q', b'T', b'T', 3, 2, 0, 0, 0, 0],
    );
    assert_eq!(&take(&mut broker, id)[..], [0x20, 2, 0, 1]);
}

#[test]
fn mqtt_auth_uses_the_nats_users() {
    let now = Instant::now();
    let config = Config {
        auth: crate::AuthConfig {
            users: vec![auth::User {
                username: "alice".into(),
                password: "secret".into(),
                ..auth::User::default()
            }],
            ..crate::AuthConfig::default()
        },
        ..Config::default()
    };
    let mut broker = Broker::new(config, now);
    for (user, pass, code) in [
        ("alice", "secret", ConnectReturnCode::Accepted),
        ("alice", "wrong", ConnectReturnCode::NotAuthorized),
    ] {
        let id = broker.register_client(now, ClientParams::new(ConnectionType::Mqtt, addr()));
        let connect = Packet::Connect(Connect {
            clean_session: true,
            client_id: "a".into(),
            username: Some(user.into()),
            password: Some(Bytes::from_static(pass.as_bytes())),
            ..Connect::default()
        });
        feed(&mut broker, id, now, &wire(&[connect]));
        let mut dec = Decoder::client();
        assert_eq!(
            packets(&take(&mut broker, id), &mut dec),
            [Packet::ConnAck(ConnAck {
                session_present: false,
                code
            })]
        );
    }
}

#[test]
fn retained_set_replace_clear_and_delivered_on_subscribe() {
    let now = Instant::now();
    let mut broker = Broker::new(Config::default(), now);
    let (p, mut pdec) = mqtt(&mut broker, now, "pub");
    let retained = |topic: &str, payload: &'static [u8]| {
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: true,
            topic: topic.into(),
            packet_id: None,
            payload: Bytes::from_static(payload),
        })
    };
    feed(
        &mut broker,
        p,
        now,
        &wire(&[
            retained("r/a", b"1"),
            retained("r/a", b"2"),
            retained("r/b", b"x"),
            retained("r", b"top"),
        ]),
    );
    assert!(packets(&take(&mut broker, p), &mut pdec).is_empty());
    assert_eq!(broker.retained.len(), 3);
    let (s, mut sdec) = mqtt(&mut broker, now, "sub");
    feed(
        &mut broker,
        s,
        now,
        &wire(&[subscribe(&[("r/#", QoS::AtMostOnce)])]),
    );
    let got = packets(&take(&mut broker, s), &mut sdec);
    assert!(matches!(got.first(), Some(Packet::SubAck(_))));
    let rest: Vec<(String, Bytes, bool)> = got[1..]
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => (p.topic.clone(), p.payload.clone(), p.retain),
            other => panic!("{other:?}"),
        })
        .collect();
    // The parent level `r` too; each topic once; the replaced value.
    assert_eq!(
        rest,
        [
            ("r".to_owned(), Bytes::from_static(b"top"), true),
            ("r/a".to_owned(), Bytes::from_static(b"2"), true),
            ("r/b".to_owned(), Bytes::from_static(b"x"), true),
        ]
    );
    // An empty retained publish clears the topic (and is delivered as usual).
    feed(&mut broker, p, now, &wire(&[retained("r/a", b"")]));
    assert_eq!(broker.retained.len(), 2);
    let live = packets(&take(&mut broker, s), &mut sdec);
    assert!(
        matches!(&live[..], [Packet::Publish(p)] if p.topic == "r/a" && p.payload.is_empty() && !p.retain)
    );
    // The store matches NATS subject patterns.
    let other = broker.retained.matching(AccountId::GLOBAL, "r.*");
    assert_eq!(other.len(), 1);
}

#[test]
fn qos1_delivery_redelivered_with_dup_until_acked() {
    let now = Instant::now();
    let config = Config {
        mqtt_ack_wait: Duration::from_secs(5),
        mqtt_max_ack_pending: 2,
        ..Config::default()
    };
    let mut broker = Broker::new(config, now);
    let (p, mut pdec) = mqtt(&mut broker, now, "pub");
    let (s, mut sdec) = mqtt(&mut broker, now, "sub");
    let n = nats(&mut broker, now);
    feed(
        &mut broker,
        s,
        now,
        &wire(&[subscribe(&[
            ("q/+", QoS::AtLeastOnce),
            ("z", QoS::AtMostOnce),
        ])]),
    );
    take(&mut broker, s);
    // A QoS 1 publish to a QoS 1 subscription: QoS 1 with a packet id; a NATS publish and a
    // QoS 1 publish to the QoS 0 subscription: QoS 0.
    feed(
        &mut broker,
        p,
        now,
        &wire(&[
            publish("q/1", QoS::AtLeastOnce, b"a"),
            publish("z", QoS::AtLeastOnce, b"c"),
        ]),
    );
    feed(&mut broker, n, now, b"PUB q.2 1\r\nb\r\n");
    // The publisher's PUBACKs are written (an unwritten queue would hit the write deadline).
    assert_eq!(
        packets(&take(&mut broker, p), &mut pdec),
        [Packet::PubAck(5), Packet::PubAck(5)]
    );
    let got = packets(&take(&mut broker, s), &mut sdec);
    let summary: Vec<(String, QoS, Option<u16>, bool)> = got
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => (p.topic.clone(), p.qos, p.packet_id, p.dup),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("q/1".to_owned(), QoS::AtLeastOnce, Some(1), false),
            ("z".to_owned(), QoS::AtMostOnce, None, false),
            ("q/2".to_owned(), QoS::AtMostOnce, None, false),
        ]
    );
    // No PUBACK within ack_wait: sent again with DUP and the same packet id.
    broker.handle_timeout(now + Duration::from_secs(4));
    assert!(take(&mut broker, s).is_empty());
    let later = now + Duration::from_secs(6);
    broker.handle_timeout(later);
    let again = packets(&take(&mut broker, s), &mut sdec);
    assert!(
        matches!(&again[..], [Packet::Publish(p)] if p.dup && p.packet_id == Some(1) && &p.payload[..] == b"a"),
        "{again:?}"
    );
    // PUBACK ends it.
    feed(&mut broker, s, later, &wire(&[Packet::PubAck(1)]));
    broker.handle_timeout(later + Duration::from_secs(8));
    assert!(take(&mut broker, s).is_empty());
    // max_ack_pending 2: a third unacknowledged QoS 1 delivery is held, not sent yet.
    feed(
        &mut broker,
        p,
        later,
        &wire(&[
            publish("q/1", QoS::AtLeastOnce, b"1"),
            publish("q/1", QoS::AtLeastOnce, b"2"),
            publish("q/1", QoS::AtLeastOnce, b"3"),
        ]),
    );
    let ids: Vec<Option<u16>> = packets(&take(&mut broker, s), &mut sdec)
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => p.packet_id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, [Some(2), Some(3)]);
    let m = broker.client(s).and_then(|c| c.mqtt.as_ref()).unwrap();
    assert_eq!((m.inflight.len(), m.held.len()), (2, 1));
    // A PUBACK frees the window: the held one goes out.
    feed(&mut broker, s, later, &wire(&[Packet::PubAck(2)]));
    let got = packets(&take(&mut broker, s), &mut sdec);
    assert!(
        matches!(&got[..], [Packet::Publish(p)] if !p.dup && p.packet_id == Some(4) && &p.payload[..] == b"3"),
        "{got:?}"
    );
}

/// A start time for the tests in submodules (the clock is read only in files named tests.rs).
fn start_time() -> Instant {
    Instant::now()
}

mod held;

/// With deferred password checks, an MQTT CONNECT against a bcrypt hash is parked like a NATS
/// one: nothing after it is decoded until the verdict, which then answers CONNACK.
#[test]
fn bcrypt_connect_is_parked_not_run_on_the_loop() {
    let now = Instant::now();
    let hash = bcrypt::hash("secret", 4).unwrap();
    let config = Config {
        defer_password_checks: true,
        auth: crate::AuthConfig {
            users: vec![auth::User {
                username: "alice".into(),
                password: hash,
                ..auth::User::default()
            }],
            ..crate::AuthConfig::default()
        },
        ..Config::default()
    };
    let mut broker = Broker::new(config, now);
    let id = broker.register_client(now, ClientParams::new(ConnectionType::Mqtt, addr()));
    let connect = Packet::Connect(Connect {
        clean_session: true,
        client_id: "b".into(),
        username: Some("alice".into()),
        password: Some(Bytes::from_static(b"secret")),
        ..Connect::default()
    });
    let mut buf = wire(&[connect, Packet::PingReq]);
    broker.handle_input(id, now, &mut buf);
    assert_eq!(&buf[..], [0xc0, 0], "the PINGREQ waits");
    let mut check = None;
    while let Some(ev) = broker.poll_event() {
        if let Event::CheckPassword {
            check: c,
            parked: true,
            ..
        } = ev
        {
            check = Some(c);
        }
    }
    let check = check.expect("a parked check");
    assert!(broker.is_parked(id));
    assert!(take(&mut broker, id).is_empty());
    let verified = check.verify();
    broker.password_checked(id, &check, verified, now);
    broker.handle_input(id, now, &mut buf);
    assert!(buf.is_empty());
    let mut dec = Decoder::client();
    assert_eq!(
        packets(&take(&mut broker, id), &mut dec),
        [ACCEPTED, Packet::PingResp]
    );
}

/// `clean_session: false`: subscriptions and unacknowledged QoS 1 deliveries outlive the
/// connection; the next CONNECT resumes them (session present, DUP resend); a clean CONNECT
/// discards them.
#[test]
fn kept_session_resumed_then_discarded_by_a_clean_start() {
    let now = Instant::now();
    let mut broker = Broker::new(Config::default(), now);
    let (p, mut pdec) = mqtt(&mut broker, now, "pub");
    let persistent = |clean: bool| {
        Packet::Connect(Connect {
            clean_session: clean,
            client_id: "keep".into(),
            ..Connect::default()
        })
    };
    let connect = |broker: &mut Broker, clean: bool| {
        let id = broker.register_client(now, ClientParams::new(ConnectionType::Mqtt, addr()));
        feed(broker, id, now, &wire(&[persistent(clean)]));
        let mut dec = Decoder::client();
        let got = packets(&take(broker, id), &mut dec);
        (id, dec, got)
    };
    let (s, mut sdec, got) = connect(&mut broker, false);
    assert_eq!(got, [ACCEPTED]);
    feed(
        &mut broker,
        s,
        now,
        &wire(&[subscribe(&[("k/#", QoS::AtLeastOnce)])]),
    );
    take(&mut broker, s);
    feed(
        &mut broker,
        p,
        now,
        &wire(&[publish("k/1", QoS::AtLeastOnce, b"unacked")]),
    );
    take(&mut broker, p);
    let first = packets(&take(&mut broker, s), &mut sdec);
    assert!(matches!(&first[..], [Packet::Publish(p)] if p.packet_id == Some(1) && !p.dup));
    broker.close_client(s, now, CloseReason::ReadError);
    while broker.poll_event().is_some() {}
    broker.remove_client(s, now);
    // Resumed: session present, the delivery again with DUP, the subscription back.
    let (s, mut sdec, got) = connect(&mut broker, false);
    assert_eq!(
        got[0],
        Packet::ConnAck(ConnAck {
            session_present: true,
            code: ConnectReturnCode::Accepted
        })
    );
    assert!(
        matches!(&got[1..], [Packet::Publish(p)] if p.packet_id == Some(1) && p.dup && &p.payload[..] == b"unacked"),
        "{got:?}"
    );
    feed(
        &mut broker,
        p,
        now,
        &wire(&[publish("k", QoS::AtMostOnce, b"parent")]),
    );
    let _ = packets(&take(&mut broker, p), &mut pdec);
    let live = packets(&take(&mut broker, s), &mut sdec);
    assert!(
        matches!(&live[..], [Packet::Publish(p)] if &p.payload[..] == b"parent"),
        "{live:?}"
    );
    feed(
        &mut broker,
        s,
        now,
        &wire(&[Packet::PubAck(1), Packet::Disconnect]),
    );
    broker.remove_client(s, now);
    // A clean start discards it.
    let (s2, _, got) = connect(&mut broker, true);
    assert_eq!(got, [ACCEPTED]);
    feed(
        &mut broker,
        p,
        now,
        &wire(&[publish("k/1", QoS::AtMostOnce, b"x")]),
    );
    assert!(take(&mut broker, s2).is_empty());
}

/// The mqtt block's `no_auth_user` binds an MQTT CONNECT without credentials to that user;
/// NATS clients still need credentials.
#[test]
fn mqtt_no_auth_user_override() {
    let now = Instant::now();
    let config = Config {
        auth: crate::AuthConfig {
            users: vec![auth::User {
                username: "dev".into(),
                password: "pw".into(),
                ..auth::User::default()
            }],
            mqtt: auth::WebsocketAuth {
                no_auth_user: Some("dev".into()),
                ..auth::WebsocketAuth::default()
            },
            ..crate::AuthConfig::default()
        },
        ..Config::default()
    };
    let mut broker = Broker::new(config, now);
    let (m, _) = mqtt(&mut broker, now, "anon");
    assert!(
        broker
            .client(m)
            .is_some_and(|c| c.auth.authorized_user.as_deref() == Some("dev"))
    );
    let n = broker.register_client(now, ClientParams::new(ConnectionType::Standard, addr()));
    let events = feed(&mut broker, n, now, b"CONNECT {\"verbose\":false}\r\n");
    assert!(events.iter().any(|e| matches!(e, Event::AuthFailed { .. })));
}

/// The NATS user's permissions apply to MQTT: a refused publish is not delivered (but still
/// acknowledged, as nats-server does) and logged; a refused subscription is SUBACK 0x80.
#[test]
fn permissions_apply_to_mqtt() {
    let now = Instant::now();
    let allow = |subjects: &[&str]| auth::SubjectPermission {
        allow: Some(subjects.iter().map(|s| (*s).to_owned()).collect()),
        deny: Vec::new(),
    };
    let config = Config {
        auth: crate::AuthConfig {
            users: vec![auth::User {
                username: "m".into(),
                password: "pw".into(),
                permissions: Some(auth::PermissionsConfig {
                    publish: Some(allow(&["ok.>"])),
                    subscribe: Some(allow(&["ok.>"])),
                    allow_responses: None,
                }),
                ..auth::User::default()
            }],
            ..crate::AuthConfig::default()
        },
        ..Config::default()
    };
    let mut broker = Broker::new(config, now);
    let id = broker.register_client(now, ClientParams::new(ConnectionType::Mqtt, addr()));
    let connect = Packet::Connect(Connect {
        clean_session: true,
        client_id: "p".into(),
        username: Some("m".into()),
        password: Some(Bytes::from_static(b"pw")),
        ..Connect::default()
    });
    feed(&mut broker, id, now, &wire(&[connect]));
    let mut dec = Decoder::client();
    assert_eq!(packets(&take(&mut broker, id), &mut dec), [ACCEPTED]);
    feed(
        &mut broker,
        id,
        now,
        &wire(&[subscribe(&[
            ("ok/x/#", QoS::AtMostOnce),
            ("no/#", QoS::AtMostOnce),
        ])]),
    );
    assert_eq!(
        packets(&take(&mut broker, id), &mut dec),
        [Packet::SubAck(SubAck {
            packet_id: 3,
            returns: vec![
                SubAckReturn::Success(QoS::AtMostOnce),
                SubAckReturn::Failure
            ],
        })]
    );
    // `ok/#` needs `ok.>` and `ok`; the second is refused, so neither stays.
    feed(
        &mut broker,
        id,
        now,
        &wire(&[subscribe(&[("ok/#", QoS::AtMostOnce)])]),
    );
    assert!(
        matches!(&packets(&take(&mut broker, id), &mut dec)[..], [Packet::SubAck(a)] if a.returns == [SubAckReturn::Failure])
    );
    assert_eq!(
        broker.client(id).map(|c| c.subs.len()),
        Some(2),
        "ok.x.> and ok.x only"
    );
    let events = feed(
        &mut broker,
        id,
        now,
        &wire(&[
            publish("no/x", QoS::AtLeastOnce, b"x"),
            publish("ok/x", QoS::AtMostOnce, b"y"),
        ]),
    );
    assert!(events.iter().any(|e| matches!(e, Event::ClientError { detail, .. } if detail.starts_with("Permissions Violation for Publish to"))));
    let got = packets(&take(&mut broker, id), &mut dec);
    assert!(
        matches!(&got[..], [Packet::PubAck(5), Packet::Publish(p)] if p.topic == "ok/x"),
        "{got:?}"
    );
    assert!(broker.is_open(id));
}

/// What a store directory would hold after applying `broker`'s writes in order.
fn apply_writes(
    broker: &mut Broker,
    disk: &mut std::collections::BTreeMap<(crate::mqtt_store::StoreKind, Vec<u8>), Vec<u8>>,
) -> usize {
    let mut n = 0;
    while let Some(w) = broker.poll_mqtt_store() {
        n += 1;
        match w.record {
            Some(record) => disk.insert((w.kind, w.key), record),
            None => disk.remove(&(w.kind, w.key)),
        };
    }
    n
}

/// With `mqtt_persist`, retained messages and kept sessions are written as records that a
/// new broker restores: the late subscriber gets the retained message, the kept session
/// resumes with its subscription and its unacknowledged delivery.
#[test]
fn persisted_state_restores_into_a_new_broker() {
    use crate::mqtt_store::{StoreError, StoreKind};
    let now = Instant::now();
    let config = Config {
        mqtt_persist: true,
        ..Config::default()
    };
    let mut disk = std::collections::BTreeMap::new();
    let mut broker = Broker::new(config.clone(), now);
    let (p, _) = mqtt(&mut broker, now, "pub");
    let mut retain = publish("r/1", QoS::AtMostOnce, b"kept");
    if let Packet::Publish(p) = &mut retain {
        p.retain = true;
    }
    let mut cleared = publish("r/2", QoS::AtMostOnce, b"gone");
    if let Packet::Publish(p) = &mut cleared {
        p.retain = true;
    }
    feed(&mut broker, p, now, &wire(&[retain, cleared.clone()]));
    if let Packet::Publish(p) = &mut cleared {
        p.payload = Bytes::new();
    }
    feed(&mut broker, p, now, &wire(&[cleared]));
    let keep = Packet::Connect(Connect {
        clean_session: false,
        client_id: "keep".into(),
        ..Connect::default()
    });
    let s = broker.register_client(now, ClientParams::new(ConnectionType::Mqtt, addr()));
    feed(&mut broker, s, now, &wire(std::slice::from_ref(&keep)));
    feed(
        &mut broker,
        s,
        now,
        &wire(&[subscribe(&[("k/#", QoS::AtLeastOnce)])]),
    );
    take(&mut broker, s);
    feed(
        &mut broker,
        p,
        now,
        &wire(&[publish("k/1", QoS::AtLeastOnce, b"unacked")]),
    );
    take(&mut broker, p);
    take(&mut broker, s);
    broker.close_client(s, now, CloseReason::ReadError);
    while broker.poll_event().is_some() {}
    broker.remove_client(s, now);
    assert!(apply_writes(&mut broker, &mut disk) >= 4);
    let kinds: Vec<StoreKind> = disk.keys().map(|(k, _)| *k).collect();
    assert_eq!(kinds, [StoreKind::Retained, StoreKind::Session]);

    let mut restarted = Broker::new(config.clone(), now);
    for record in disk.values() {
        assert!(restarted.restore_mqtt(now, record).is_ok());
    }
    assert_eq!(
        restarted.poll_mqtt_store(),
        None,
        "restoring writes nothing"
    );
    // The late subscriber gets the retained message, and only the one not cleared.
    let (late, mut ldec) = mqtt(&mut restarted, now, "late");
    feed(
        &mut restarted,
        late,
        now,
        &wire(&[subscribe(&[("r/#", QoS::AtMostOnce)])]),
    );
    let got = packets(&take(&mut restarted, late), &mut ldec);
    assert!(
        matches!(&got[..], [Packet::SubAck(_), Packet::Publish(p)] if p.retain && &p.payload[..] == b"kept"),
        "{got:?}"
    );
    // The session resumes: present, the delivery again with DUP, the subscription back.
    let s = restarted.register_client(now, ClientParams::new(ConnectionType::Mqtt, addr()));
    feed(&mut restarted, s, now, &wire(&[keep]));
    let mut sdec = Decoder::client();
    let got = packets(&take(&mut restarted, s), &mut sdec);
    assert_eq!(
        got[0],
        Packet::ConnAck(ConnAck {
            session_present: true,
            code: ConnectReturnCode::Accepted
        })
    );
    assert!(
        matches!(&got[1..], [Packet::Publish(p)] if p.dup && p.packet_id == Some(1) && &p.payload[..] == b"unacked"),
        "{got:?}"
    );
    let (p2, _) = mqtt(&mut restarted, now, "pub2");
    feed(
        &mut restarted,
        p2,
        now,
        &wire(&[publish("k/2", QoS::AtMostOnce, b"live")]),
    );
    let got = packets(&take(&mut restarted, s), &mut sdec);
    assert!(
        matches!(&got[..], [Packet::Publish(p)] if &p.payload[..] == b"live"),
        "{got:?}"
    );
    // A clean start of the same client id removes the session's record.
    restarted.close_client(s, now, CloseReason::ReadError);
    while restarted.poll_event().is_some() {}
    restarted.remove_client(s, now);
    apply_writes(&mut restarted, &mut disk);
    assert_eq!(disk.len(), 2);
    mqtt(&mut restarted, now, "keep");
    apply_writes(&mut restarted, &mut disk);
    assert_eq!(disk.len(), 1);

    // Damaged records, unknown accounts and a second record for one session are refused.
    let mut fresh = Broker::new(config, now);
    let record = disk.values().next().unwrap().clone();
    let mut damaged = record.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    assert_eq!(fresh.restore_mqtt(now, &damaged), Err(StoreError::Checksum));
    let foreign = crate::mqtt::store::encode_retained("NOPE", "a", b"x");
    assert_eq!(
        fresh.restore_mqtt(now, &foreign),
        Err(StoreError::UnknownAccount("NOPE".to_owned()))
    );
    let twice =
        crate::mqtt::store::encode_session("$G", "c", &crate::mqtt::SavedSession::default());
    assert_eq!(fresh.restore_mqtt(now, &twice), Ok(StoreKind::Session));
    assert!(matches!(
        fresh.restore_mqtt(now, &twice),
        Err(StoreError::Invalid(_))
    ));
}

/// Without `mqtt_persist` nothing is queued, however much state changes.
#[test]
fn nothing_is_queued_without_persist() {
    let now = Instant::now();
    let mut broker = Broker::new(Config::default(), now);
    let (p, _) = mqtt(&mut broker, now, "pub");
    let mut retain = publish("r/1", QoS::AtMostOnce, b"kept");
    if let Packet::Publish(p) = &mut retain {
        p.retain = true;
    }
    feed(&mut broker, p, now, &wire(&[retain]));
    assert_eq!(broker.poll_mqtt_store(), None);
}

/// An MQTT publisher is a client producer: a NATS subscriber that fell behind stalls it
/// between packets, and it goes on when the subscriber drains (as nats-server, whose MQTT
/// connections are clients).
#[test]
fn an_mqtt_publisher_is_stalled_by_a_subscriber_behind() {
    let now = Instant::now();
    let mut config = Config::default();
    config.limits.max_pending = 64 * 1024;
    let mut broker = Broker::new(config, now);
    let (m, _dec) = mqtt(&mut broker, now, "m1");
    let n = nats(&mut broker, now);
    feed(&mut broker, n, now, b"SUB sensors.t 1\r\n");
    static PAYLOAD: [u8; 1024] = [b'v'; 1024];
    let one = wire(&[publish("sensors/t", QoS::AtMostOnce, &PAYLOAD)]);
    while broker.outbound(n).map_or(0, |q| q.len()) <= 32 * 1024 {
        feed(&mut broker, m, now, &one);
    }
    assert!(!broker.is_stalled(m));
    let mut input = BytesMut::new();
    for _ in 0..3 {
        input.extend_from_slice(&one);
    }
    broker.handle_input(m, now, &mut input);
    assert!(broker.is_stalled(m));
    assert_eq!(input.len(), 2 * one.len(), "whole packets wait");
    take(&mut broker, n);
    broker.handle_flushed(n, now);
    let resumed = std::iter::from_fn(|| broker.poll_event())
        .any(|e| matches!(e, Event::Resumed { client, timed_out: None } if client == m));
    assert!(resumed);
    broker.handle_input(m, now, &mut input);
    assert!(input.is_empty());
    assert_eq!(broker.check_invariants(), Ok(()));
}
