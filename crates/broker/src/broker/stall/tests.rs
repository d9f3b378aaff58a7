//! The fast-producer stall, driven directly.

use bytes::BytesMut;

use super::*;
use crate::types::{ClientParams, ConnectionType};
use crate::{CloseReason, Config};

const MAX_PENDING: usize = 64 * 1024;

fn broker(now: Instant) -> Broker {
    let mut config = Config::default();
    config.limits.max_pending = MAX_PENDING;
    Broker::new(config, now)
}

fn connect(b: &mut Broker, now: Instant, kind: ConnectionType) -> ClientId {
    let addr = core::net::SocketAddr::from(([127, 0, 0, 1], 4000));
    let id = b.register_client(now, ClientParams::new(kind, addr));
    let mut input = BytesMut::from(&b"CONNECT {\"verbose\":false}\r\n"[..]);
    b.handle_input(id, now, &mut input);
    drain(b, id);
    id
}

fn drain(b: &mut Broker, id: ClientId) -> usize {
    let mut out = BytesMut::new();
    if let Some(q) = b.outbound(id) {
        q.drain_into(&mut out);
    }
    out.len()
}

fn events(b: &mut Broker) -> Vec<Event> {
    std::iter::from_fn(|| b.poll_event()).collect()
}

fn resumed(events: &[Event]) -> Vec<(ClientId, Option<Duration>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Resumed { client, timed_out } => Some((*client, *timed_out)),
            _ => None,
        })
        .collect()
}

/// `n` messages of 1 KiB on `foo`.
fn pubs(n: usize) -> BytesMut {
    let payload = "x".repeat(1024);
    let one = format!("PUB foo 1024\r\n{payload}\r\n");
    BytesMut::from(one.repeat(n).as_bytes())
}

/// A subscriber on `foo` and a producer, the subscriber owing just over half its
/// `max_pending` after the producer's first `n` messages (none of which stalled it).
fn behind(now: Instant) -> (Broker, ClientId, ClientId) {
    let mut b = broker(now);
    let sub = connect(&mut b, now, ConnectionType::Standard);
    let mut input = BytesMut::from(&b"SUB foo 1\r\n"[..]);
    b.handle_input(sub, now, &mut input);
    let producer = connect(&mut b, now, ConnectionType::WebSocket);
    let mut input = pubs(32);
    b.handle_input(producer, now, &mut input);
    assert!(input.is_empty());
    assert!(!b.is_stalled(producer));
    events(&mut b);
    (b, sub, producer)
}

#[test]
fn a_producer_stops_after_its_delivery_to_a_connection_behind_and_resumes_when_it_drains() {
    let now = Instant::now();
    let (mut b, sub, producer) = behind(now);
    let owed = b.outbound(sub).map_or(0, |q| q.len());
    assert!(owed > MAX_PENDING / 2, "{owed}");
    let mut input = pubs(10);
    b.handle_input(producer, now, &mut input);
    // The first message went out; the other nine wait in the caller's buffer.
    assert!(b.is_stalled(producer));
    assert_eq!(input.len(), pubs(9).len());
    assert_eq!(
        b.outbound(sub).map_or(0, |q| q.len()),
        owed + "MSG foo 1 1024\r\n".len() + 1024 + 2
    );
    // Input handed again meanwhile stays where it is.
    b.handle_input(producer, now, &mut input);
    assert_eq!(input.len(), pubs(9).len());
    assert_eq!(b.poll_timeout(), now.checked_add(STALL_MIN));
    assert_eq!(b.check_invariants(), Ok(()));
    assert!(resumed(&events(&mut b)).is_empty());
    // Writing the subscriber's output resumes the producer.
    drain(&mut b, sub);
    b.handle_flushed(sub, now);
    assert_eq!(resumed(&events(&mut b)), vec![(producer, None)]);
    assert!(!b.is_stalled(producer));
    b.handle_input(producer, now, &mut input);
    assert!(input.is_empty());
    assert_eq!(b.check_invariants(), Ok(()));
}

#[test]
fn draining_to_half_does_not_release_and_under_half_nothing_stalls() {
    let now = Instant::now();
    let (mut b, sub, producer) = behind(now);
    let mut input = pubs(1);
    b.handle_input(producer, now, &mut input);
    assert!(b.is_stalled(producer));
    // Half written is not below half.
    let left = b.outbound(sub).map_or(0, |q| q.len());
    if let Some(q) = b.outbound(sub) {
        q.advance(left - MAX_PENDING / 2);
    }
    b.handle_flushed(sub, now);
    assert!(resumed(&events(&mut b)).is_empty());
    if let Some(q) = b.outbound(sub) {
        q.advance(1);
    }
    b.handle_flushed(sub, now);
    assert_eq!(resumed(&events(&mut b)), vec![(producer, None)]);
    // Under half, more messages do not stall.
    let mut input = pubs(1);
    b.handle_input(producer, now, &mut input);
    assert!(!b.is_stalled(producer));
}

#[test]
fn a_stall_runs_out_after_the_reference_time_and_the_next_delivery_stalls_again() {
    let now = Instant::now();
    let (mut b, sub, producer) = behind(now);
    let mut input = pubs(3);
    b.handle_input(producer, now, &mut input);
    assert!(b.is_stalled(producer));
    let early = now
        .checked_add(STALL_MIN - Duration::from_millis(1))
        .unwrap_or(now);
    b.handle_timeout(early);
    assert!(b.is_stalled(producer));
    let due = now.checked_add(STALL_MIN).unwrap_or(now);
    b.handle_timeout(due);
    assert_eq!(resumed(&events(&mut b)), vec![(producer, Some(STALL_MIN))]);
    b.handle_input(producer, due, &mut input);
    assert!(b.is_stalled(producer), "the subscriber is still behind");
    assert_eq!(input.len(), pubs(1).len());
    assert!(b.outbound(sub).is_some());
    assert_eq!(b.check_invariants(), Ok(()));
}

#[test]
fn closing_either_side_ends_the_stall() {
    let now = Instant::now();
    let (mut b, sub, producer) = behind(now);
    let mut input = pubs(2);
    b.handle_input(producer, now, &mut input);
    assert!(b.is_stalled(producer));
    b.close_client(sub, now, CloseReason::ClientClosed);
    assert_eq!(resumed(&events(&mut b)), vec![(producer, None)]);
    assert_eq!(b.check_invariants(), Ok(()));

    let (mut b, sub, producer) = behind(now);
    let mut input = pubs(2);
    b.handle_input(producer, now, &mut input);
    b.close_client(producer, now, CloseReason::ClientClosed);
    assert_eq!(b.check_invariants(), Ok(()));
    b.remove_client(producer, now);
    drain(&mut b, sub);
    b.handle_flushed(sub, now);
    assert!(resumed(&events(&mut b)).is_empty());
    assert_eq!(b.check_invariants(), Ok(()));
}

#[test]
fn many_producers_wait_for_one_connection_and_all_resume() {
    let now = Instant::now();
    let (mut b, sub, first) = behind(now);
    let others: Vec<ClientId> = (0..5)
        .map(|_| connect(&mut b, now, ConnectionType::Standard))
        .collect();
    for p in others.iter().chain([&first]) {
        let mut input = pubs(2);
        b.handle_input(*p, now, &mut input);
        assert!(b.is_stalled(*p));
    }
    assert_eq!(b.check_invariants(), Ok(()));
    drain(&mut b, sub);
    b.handle_flushed(sub, now);
    let mut got: Vec<ClientId> = resumed(&events(&mut b)).into_iter().map(|r| r.0).collect();
    got.sort();
    let mut want = others;
    want.push(first);
    want.sort();
    assert_eq!(got, want);
    assert_eq!(b.check_invariants(), Ok(()));
}

#[test]
fn stall_duration_follows_the_reference_steps() {
    let mp = 64 * 1024 * 1024;
    assert_eq!(stall_duration(0, mp), STALL_MIN);
    assert_eq!(stall_duration(mp / 2, mp), STALL_MIN);
    // Each tenth of the upper half adds 100 ms.
    assert_eq!(
        stall_duration(mp / 2 + mp / 20, mp),
        Duration::from_millis(200)
    );
    assert_eq!(
        stall_duration(mp / 2 + 9 * (mp / 20) + 1, mp),
        Duration::from_millis(1000)
    );
    // Just under full: ten whole tenths (the tenth is rounded down), as the reference.
    assert_eq!(stall_duration(mp - 1, mp), Duration::from_millis(1100));
    assert_eq!(stall_duration(mp, mp), STALL_MAX);
    assert_eq!(stall_duration(usize::MAX, mp), STALL_MAX);
    // Tiny limits never divide by zero.
    assert_eq!(stall_duration(5, 10), STALL_MIN);
    assert_eq!(stall_duration(0, 0), STALL_MAX);
}
