use super::*;

/// A connected client with `verbose` off; its INFO and the rest of its output so far dropped.
fn connected(broker: &mut Broker, now: Instant) -> ClientId {
    let addr = core::net::SocketAddr::from(([127, 0, 0, 1], 4000));
    let id = broker.register_client(now, ClientParams::new(ConnectionType::Standard, addr));
    send(broker, id, now, "CONNECT {\"verbose\":false}\r\n");
    take(broker, id);
    id
}

fn send(broker: &mut Broker, id: ClientId, now: Instant, input: &str) {
    let mut buf = BytesMut::from(input.as_bytes());
    broker.handle_input(id, now, &mut buf);
    assert!(buf.is_empty(), "input left over");
    while broker.poll_event().is_some() {}
    assert_eq!(broker.check_invariants(), Ok(()));
}

fn take(broker: &mut Broker, id: ClientId) -> String {
    let mut buf = BytesMut::new();
    if let Some(q) = broker.outbound(id) {
        q.drain_into(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn subs(prefix: &str, sids: std::ops::Range<u32>) -> String {
    sids.map(|i| format!("SUB {prefix}.{i} {i}\r\n")).collect()
}

fn unsubs(sids: std::ops::Range<u32>) -> String {
    sids.map(|i| format!("UNSUB {i}\r\n")).collect()
}

/// After a spike of subscriptions goes away (by UNSUB and by closing), the subscription table,
/// its free list and the client's sid map give their memory back, and the subscriptions made
/// afterwards get fresh keys and work.
#[test]
fn subscription_tables_shrink_after_a_spike() {
    let now = Instant::now();
    let mut broker = Broker::new(Config::default(), now);
    let a = connected(&mut broker, now);
    let b = connected(&mut broker, now);
    send(&mut broker, a, now, &subs("a", 0..3000));
    send(&mut broker, b, now, &subs("b", 0..3000));
    assert_eq!(broker.router.subs.len(), 6000);
    send(&mut broker, a, now, &unsubs(0..3000));
    // The other client's subscriptions sit at the end, so the slots stay, free.
    assert_eq!(broker.router.subs.len(), 6000);
    assert!(broker.client(a).is_some_and(|c| c.subs.capacity() < 64));
    // The lowest free slots are reused first.
    send(&mut broker, a, now, &subs("a", 0..10));
    assert!(
        broker
            .client(a)
            .is_some_and(|c| c.subs.values().all(|k| k.index < 10))
    );
    send(&mut broker, b, now, "PUB a.7 1\r\nx\r\n");
    assert_eq!(take(&mut broker, a), "MSG a.7 7 1\r\nx\r\n");
    let old_generation = broker.router.subs.get(5000).map(|slot| slot.generation);
    broker.remove_client(b, now);
    while broker.poll_event().is_some() {}
    assert_eq!(broker.check_invariants(), Ok(()));
    assert_eq!(broker.router.subs.len(), 10);
    assert!(
        broker.router.subs.capacity() < 64,
        "{}",
        broker.router.subs.capacity()
    );
    assert!(broker.router.free_subs.capacity() < 128);
    // Slots appended again start above every generation the table dropped.
    send(&mut broker, a, now, &subs("c", 100..5100));
    let new_generation = broker.router.subs.get(5000).map(|slot| slot.generation);
    assert!(new_generation > old_generation);
    send(
        &mut broker,
        a,
        now,
        "PUB c.4321 1\r\ny\r\nPUB b.3 1\r\nz\r\n",
    );
    assert_eq!(take(&mut broker, a), "MSG c.4321 4321 1\r\ny\r\n");
    send(&mut broker, a, now, &unsubs(0..5100));
    assert!(broker.router.subs.is_empty());
    assert_eq!(broker.router.n_subs(), 0);
}

/// `with_header` as nats-server's `setHeader`: a header block is added, or an existing line of
/// the key replaced, other lines and the payload kept.
#[test]
fn with_header_builds_the_header_as_set_header_does() {
    let set = |header_len: Option<usize>, message: &str| {
        let publish = PubRef {
            subject: b"s",
            reply: None,
            header_len,
            message: message.as_bytes(),
            shared: None,
            queues: QueueFilter::All,
            client_view: None,
        };
        let (out, len) = routing::with_header(&publish, b"K", b"v");
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out.get(len - 4..len), Some("\r\n\r\n"), "{out:?}");
        out
    };
    assert_eq!(set(None, "hi"), "NATS/1.0\r\nK: v\r\n\r\nhi");
    assert_eq!(set(None, ""), "NATS/1.0\r\nK: v\r\n\r\n");
    let h = "NATS/1.0\r\nA: 1\r\n\r\n";
    assert_eq!(
        set(Some(h.len()), &format!("{h}p")),
        "NATS/1.0\r\nA: 1\r\nK: v\r\n\r\np"
    );
    let h = "NATS/1.0\r\nA: 1\r\nK: forged\r\nB: 2\r\n\r\n";
    assert_eq!(
        set(Some(h.len()), &format!("{h}p")),
        "NATS/1.0\r\nA: 1\r\nB: 2\r\nK: v\r\n\r\np"
    );
    // Only the key's line was there: a bare version line is written again.
    let h = "NATS/1.0\r\nK: forged\r\n\r\n";
    assert_eq!(set(Some(h.len()), h), "NATS/1.0\r\nK: v\r\n\r\n");
    // A status line stays; a first occurrence inside a value removes nothing.
    let h = "NATS/1.0 1\r\n\r\n";
    assert_eq!(set(Some(h.len()), h), "NATS/1.0 1\r\nK: v\r\n\r\n");
    let h = "NATS/1.0\r\nA: K: x\r\nK: y\r\n\r\n";
    assert_eq!(
        set(Some(h.len()), h),
        "NATS/1.0\r\nA: K: x\r\nK: y\r\nK: v\r\n\r\n"
    );
    // A header length of 2 or less is no header block (Go: `c.pa.hdr > LEN_CR_LF`).
    assert_eq!(set(Some(2), "\r\nx"), "NATS/1.0\r\nK: v\r\n\r\n\r\nx");
    // A header length beyond the message is clamped, never a panic.
    assert_eq!(
        set(Some(99), "NATS/1.0\r\n\r\n"),
        "NATS/1.0\r\nK: v\r\n\r\n"
    );
}

/// The thresholds of answered tracked requests do not pile up: the timer heap drops its
/// stale entries once they are most of it.
#[test]
fn tracked_request_timers_stay_bounded() {
    use crate::config::{ExportConfig, ExportKind, ImportConfig, LatencyConfig, LatencySampling};
    let user = |name: &str, account: &str| auth::User {
        username: name.into(),
        password: "pw".into(),
        permissions: None,
        allowed_connection_types: Vec::new(),
        account: Some(account.into()),
    };
    let config = Config {
        auth: crate::AuthConfig {
            users: vec![user("a", "A"), user("b", "B")],
            ..crate::AuthConfig::default()
        },
        accounts: vec![
            AccountConfig {
                name: "A".into(),
                exports: vec![ExportConfig {
                    kind: ExportKind::Service,
                    subject: "svc".into(),
                    accounts: Vec::new(),
                    response_type: crate::ResponseType::Singleton,
                    response_threshold: None,
                    latency: Some(LatencyConfig {
                        sampling: LatencySampling::Percent(100),
                        subject: "lat".into(),
                    }),
                }],
                ..AccountConfig::default()
            },
            AccountConfig {
                name: "B".into(),
                imports: vec![ImportConfig {
                    kind: ExportKind::Service,
                    account: "A".into(),
                    subject: "svc".into(),
                    to: None,
                    prefix: None,
                    share: false,
                }],
                ..AccountConfig::default()
            },
        ],
        ..Config::default()
    };
    let now = Instant::now();
    let mut broker = Broker::new(config, now);
    let addr = core::net::SocketAddr::from(([127, 0, 0, 1], 4000));
    let login = |broker: &mut Broker, name: &str, subs: &str| {
        let id = broker.register_client(now, ClientParams::new(ConnectionType::Standard, addr));
        send(
            broker,
            id,
            now,
            &format!("CONNECT {{\"verbose\":false,\"user\":\"{name}\",\"pass\":\"pw\"}}\r\n{subs}"),
        );
        take(broker, id);
        id
    };
    let service = login(&mut broker, "a", "SUB svc 1\r\n");
    let requestor = login(&mut broker, "b", "SUB inbox 1\r\n");
    for _ in 0..5000 {
        send(&mut broker, requestor, now, "PUB svc inbox 0\r\n\r\n");
        assert!(!broker.latency_timers.is_empty(), "the request is tracked");
        let out = take(&mut broker, service);
        let reply = out.split(' ').nth(3).unwrap_or_default().to_owned();
        send(&mut broker, service, now, &format!("PUB {reply} 0\r\n\r\n"));
        take(&mut broker, requestor);
    }
    assert!(
        broker.latency_timers.len() <= 1024,
        "{}",
        broker.latency_timers.len()
    );
}
