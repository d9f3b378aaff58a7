//! Criterion benchmarks for `broker`: protocol parsing, routing and subject matching.

use std::hint::black_box;
use std::time::Instant;

use broker::proto::{Parser, ParserLimits, Role};
use broker::sublist::Sublist;
use broker::{Broker, ClientId, ClientParams, Config, ConnectionType};
use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const N_MSGS: usize = 10_000;

fn pub_stream(payload_len: usize) -> Vec<u8> {
    let payload = "x".repeat(payload_len);
    let mut out = Vec::new();
    for _ in 0..N_MSGS {
        out.extend_from_slice(format!("PUB foo.bar {payload_len}\r\n{payload}\r\n").as_bytes());
    }
    out
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("broker_parse");
    for payload_len in [16usize, 128] {
        let input = pub_stream(payload_len);
        group.throughput(Throughput::Elements(N_MSGS as u64));
        group.bench_function(format!("pub_{payload_len}B"), |b| {
            let mut buf = BytesMut::with_capacity(input.len());
            b.iter(|| {
                let mut parser = Parser::new(Role::Server, ParserLimits::default());
                buf.clear();
                buf.extend_from_slice(&input);
                let mut n_ops = 0;
                while let Ok(Some(op)) = parser.parse(&mut buf) {
                    black_box(&op);
                    n_ops += 1;
                }
                assert_eq!(n_ops, N_MSGS);
            });
        });
    }
    group.finish();
}

fn connected(broker: &mut Broker, now: Instant) -> ClientId {
    let addr = "127.0.0.1:4000".parse().unwrap();
    let id = broker.register_client(now, ClientParams::new(ConnectionType::Standard, addr));
    let mut buf = BytesMut::from(&b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n"[..]);
    broker.handle_input(id, now, &mut buf);
    id
}

fn drain(broker: &mut Broker, ids: &[ClientId]) {
    while broker.poll_event().is_some() {}
    for id in ids {
        if let Some(q) = broker.outbound(*id) {
            let n = q.len();
            q.advance(n);
        }
    }
}

fn route(c: &mut Criterion) {
    let mut group = c.benchmark_group("broker_route");
    for (n_subs, payload_len, batch) in [
        (1usize, 16usize, 1000usize),
        (1, 128, 1000),
        (100, 16, 1000),
        (1, 16 * 1024, 100),
    ] {
        let payload = "x".repeat(payload_len);
        let one_pub = format!("PUB foo.bar {payload_len}\r\n{payload}\r\n");
        let input: Vec<u8> = one_pub.repeat(batch).into_bytes();
        let now = Instant::now();
        let mut broker = Broker::new(Config::default(), now);
        let subs: Vec<ClientId> = (0..n_subs)
            .map(|_| {
                let id = connected(&mut broker, now);
                broker.handle_input(id, now, &mut BytesMut::from(&b"SUB foo.* 1\r\n"[..]));
                id
            })
            .collect();
        let publisher = connected(&mut broker, now);
        let mut all = subs.clone();
        all.push(publisher);
        drain(&mut broker, &all);
        // Deliveries per second (messages times subscribers).
        group.throughput(Throughput::Elements((batch * n_subs) as u64));
        group.bench_function(format!("1_to_{n_subs}_{payload_len}B"), |b| {
            let mut buf = BytesMut::with_capacity(input.len());
            b.iter(|| {
                buf.clear();
                buf.extend_from_slice(&input);
                broker.handle_input(publisher, now, &mut buf);
                drain(&mut broker, &all);
            });
        });
    }
    group.finish();
}

/// The mixed subscription subjects of the sublist benches: literals, `*` and `>`.
fn sub_subjects(n_subs: u32) -> Vec<String> {
    (0..n_subs)
        .map(|i| match i % 4 {
            0 => format!("svc.{}.req", i % 500),
            1 => format!("events.{}.*", i % 700),
            2 => format!("metrics.host{}.>", i % 300),
            _ => format!("chat.room{}.user{}", i % 100, i),
        })
        .collect()
}

fn sublist(c: &mut Criterion) {
    let mut group = c.benchmark_group("broker_sublist");
    let mut sl: Sublist<u32> = Sublist::new();
    for (i, subject) in (0u32..).zip(sub_subjects(10_000)) {
        sl.insert(subject.as_bytes(), None, i).unwrap();
    }
    let subjects: Vec<Bytes> = (0..4096u32)
        .map(|i| Bytes::from(format!("events.{}.created", i % 1000)))
        .collect();
    group.throughput(Throughput::Elements(subjects.len() as u64));
    group.bench_function("match_10k_subs", |b| {
        b.iter(|| {
            for s in &subjects {
                black_box(sl.matches(s));
            }
        });
    });
    // More distinct subjects than the cache holds, so most matches walk the trie.
    let misses: Vec<Bytes> = (0..4096u32)
        .map(|i| Bytes::from(format!("chat.room{}.user{}", i % 100, i * 4 + 3)))
        .collect();
    group.throughput(Throughput::Elements(misses.len() as u64));
    group.bench_function("match_uncached_10k_subs", |b| {
        b.iter(|| {
            for s in &misses {
                black_box(sl.matches(s));
            }
        });
    });
    let subjects = sub_subjects(10_000);
    group.throughput(Throughput::Elements(subjects.len() as u64));
    group.bench_function("insert_remove_10k_subs", |b| {
        b.iter(|| {
            let mut sl: Sublist<u32> = Sublist::new();
            for (i, subject) in (0u32..).zip(&subjects) {
                sl.insert(subject.as_bytes(), None, i).unwrap();
            }
            for (i, subject) in (0u32..).zip(&subjects) {
                black_box(sl.remove(subject.as_bytes(), None, i));
            }
        });
    });
    // Many subscribers of one subject, as when many clients subscribe and then disconnect.
    for queue in [None, Some(Bytes::from_static(b"workers"))] {
        let name = if queue.is_some() { "queue" } else { "plain" };
        group.throughput(Throughput::Elements(10_000));
        group.bench_function(format!("insert_remove_10k_{name}_one_subject"), |b| {
            b.iter(|| {
                let mut sl: Sublist<u32> = Sublist::new();
                for i in 0..10_000u32 {
                    sl.insert(b"foo.bar", queue.as_deref(), i).unwrap();
                }
                for i in 0..10_000u32 {
                    black_box(sl.remove(b"foo.bar", queue.as_deref(), i));
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, parse, route, sublist);
criterion_main!(benches);
