//! Criterion benchmarks for `ws_handshake`: parse, validate and answer upgrade requests.
//!
//! Throughput is reported in requests per second (`Throughput::Elements(1)` per iteration).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ws_handshake::{ClientHandshake, ClientRequest, Limits, Options, Policy, ServerHandshake};

/// What Chrome sends when a page on the same origin opens `new WebSocket("wss://...")`.
const BROWSER_REQUEST: &[u8] = b"GET / HTTP/1.1\r\n\
Host: nats.example.com:443\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: https://nats.example.com\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Cookie: _ga=GA1.1.1234567890.1700000000; jwt=eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.sig\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
\r\n";

fn browser_policy() -> Policy {
    Policy::new(&Options {
        same_origin: true,
        allowed_origins: vec!["https://nats.example.com".to_owned()],
        compression: true,
        jwt_cookie: Some("jwt".to_owned()),
        ..Options::default()
    })
    .expect("valid options")
}

fn server(c: &mut Criterion) {
    let policy = browser_policy();
    let mut group = c.benchmark_group("ws_handshake");
    group.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(512);
    group.bench_function("browser_request_whole", |b| {
        b.iter(|| {
            out.clear();
            let mut handshake = ServerHandshake::new(true);
            let res = handshake.handle_input(&policy, black_box(BROWSER_REQUEST), None, &mut out);
            black_box(res.is_ok_and(|upgrade| upgrade.is_some()))
        });
    });
    // A slow client: the same request arriving in 64-byte reads.
    group.bench_function("browser_request_64_byte_reads", |b| {
        b.iter(|| {
            out.clear();
            let mut handshake = ServerHandshake::new(true);
            let mut res = Ok(None);
            let mut end = 0;
            while end < BROWSER_REQUEST.len() {
                end = (end + 64).min(BROWSER_REQUEST.len());
                let input = BROWSER_REQUEST.get(..end).unwrap_or_default();
                res = handshake.handle_input(&policy, black_box(input), None, &mut out);
            }
            black_box(res.is_ok_and(|upgrade| upgrade.is_some()))
        });
    });
    let bad_origin = String::from_utf8_lossy(BROWSER_REQUEST)
        .replace("https://nats.example.com", "https://evil.example.com")
        .into_bytes();
    group.bench_function("browser_request_rejected_origin", |b| {
        b.iter(|| {
            out.clear();
            let mut handshake = ServerHandshake::new(true);
            let res = handshake.handle_input(&policy, black_box(&bad_origin), Some(0), &mut out);
            black_box(res.is_err())
        });
    });
    // A refused request kept open, and the corrected one pipelined behind it on the same
    // connection: the 403, then the 101 (one element: the connection's upgrade).
    let pipelined = [bad_origin.as_slice(), BROWSER_REQUEST].concat();
    group.bench_function("browser_request_refused_then_upgraded_pipelined", |b| {
        b.iter(|| {
            out.clear();
            let mut handshake = ServerHandshake::new(true);
            let mut input = black_box(pipelined.as_slice());
            loop {
                match handshake.handle_input(&policy, input, Some(0), &mut out) {
                    Err(_) => match handshake.after_reject() {
                        Some(after) if after.keep_alive() => {
                            input = input.get(after.consumed()..).unwrap_or_default();
                            handshake.next_request();
                        }
                        _ => break black_box(false),
                    },
                    Ok(upgrade) => break black_box(upgrade.is_some()),
                }
            }
        });
    });
    group.finish();
}

fn client(c: &mut Criterion) {
    let policy = Policy::new(&Options {
        compression: true,
        ..Options::default()
    })
    .expect("valid options");
    let request = ClientRequest {
        path: "/leafnode",
        host: "127.0.0.1:7422",
        compression: true,
        no_masking: true,
        ..ClientRequest::default()
    };
    let nonce = *b"the sample nonce";
    let mut server_out = Vec::new();
    let mut request_bytes = Vec::new();
    ClientHandshake::new(&request, &nonce, Limits::default(), &mut request_bytes)
        .expect("valid request");
    let _ =
        ServerHandshake::new(false).handle_input(&policy, &request_bytes, None, &mut server_out);
    let mut group = c.benchmark_group("ws_handshake");
    group.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(512);
    group.bench_function("leaf_client_request_and_response", |b| {
        b.iter(|| {
            out.clear();
            let mut handshake =
                ClientHandshake::new(&request, &nonce, Limits::default(), &mut out).expect("valid");
            black_box(handshake.handle_input(black_box(&server_out)).is_ok())
        });
    });
    group.finish();
}

criterion_group!(benches, server, client);
criterion_main!(benches);
