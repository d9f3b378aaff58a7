//! A fixed workload for instruction counting: `valgrind --tool=callgrind` runs it with a message
//! count of 0 and of N, and the difference divided by N is the cost per message.
//!
//! Usage: `hotpath <parse16|parse128|route1|route100|route1_16k> <n_msgs>`.

use std::hint::black_box;
use std::time::Instant;

use broker::proto::{Parser, ParserLimits, Role};
use broker::{Broker, ClientId, ClientParams, Config, ConnectionType};
use bytes::BytesMut;

fn pub_stream(n_msgs: usize, payload_len: usize) -> Vec<u8> {
    let payload = vec![b'x'; payload_len];
    let mut out = Vec::new();
    for _ in 0..n_msgs {
        out.extend_from_slice(format!("PUB foo.bar {payload_len}\r\n").as_bytes());
        out.extend_from_slice(&payload);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn connected(broker: &mut Broker, now: Instant) -> ClientId {
    let addr = "127.0.0.1:4000".parse().expect("address");
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

fn parse(n_msgs: usize, payload_len: usize) {
    // Batches of 1000 messages, as a read buffer would hold them.
    let batch = pub_stream(1000, payload_len);
    let mut parser = Parser::new(Role::Server, ParserLimits::default());
    let mut buf = BytesMut::with_capacity(batch.len());
    let mut left = n_msgs;
    while left > 0 {
        let n = left.min(1000);
        buf.clear();
        buf.extend_from_slice(&batch[..batch.len() / 1000 * n]);
        while let Ok(Some(op)) = parser.parse(&mut buf) {
            black_box(&op);
        }
        left -= n;
    }
}

fn route(n_msgs: usize, n_subs: usize, payload_len: usize) {
    let now = Instant::now();
    let mut broker = Broker::new(Config::default(), now);
    let mut all: Vec<ClientId> = (0..n_subs)
        .map(|_| {
            let id = connected(&mut broker, now);
            broker.handle_input(id, now, &mut BytesMut::from(&b"SUB foo.* 1\r\n"[..]));
            id
        })
        .collect();
    let publisher = connected(&mut broker, now);
    all.push(publisher);
    drain(&mut broker, &all);
    let per_batch = if payload_len > 1024 { 10 } else { 100 };
    let batch = pub_stream(per_batch, payload_len);
    let mut buf = BytesMut::with_capacity(batch.len());
    let mut left = n_msgs;
    while left > 0 {
        let n = left.min(per_batch);
        buf.clear();
        buf.extend_from_slice(&batch[..batch.len() / per_batch * n]);
        broker.handle_input(publisher, now, &mut buf);
        drain(&mut broker, &all);
        left -= n;
    }
    black_box(broker.stats());
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let n_msgs: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    match mode.as_str() {
        "parse16" => parse(n_msgs, 16),
        "parse128" => parse(n_msgs, 128),
        "route1" => route(n_msgs, 1, 16),
        "route100" => route(n_msgs, 100, 16),
        "route1_128" => route(n_msgs, 1, 128),
        "route1_16k" => route(n_msgs, 1, 16 * 1024),
        _ => {
            eprintln!(
                "usage: hotpath <parse16|parse128|route1|route100|route1_128|route1_16k> <n_msgs>"
            );
            std::process::exit(2);
        }
    }
}
