//! Fuzz target body (`fuzz/fuzz_targets/natsws_monitor.rs`), also replayed by `cargo test`.
//!
//! The body drives a monitoring connection the way the event loop does, without sockets:
//! arbitrary bytes are read as pipelined request heads, and each complete request is routed
//! and answered by the endpoints against a small broker with a few clients.

use std::collections::BTreeMap;
use std::time::Instant;

use broker::{Broker, ClientParams, CloseReason, ConnectionType};
use bytes::BytesMut;

use crate::monitor::{self, Bound, Clock, MonitorCtx, Response};
use crate::monitor_request::{self, Endpoint, Head};
use crate::settings::{self, Settings};

/// A small head limit, so that the fuzzer reaches it.
const MAX_HEAD_BYTES: usize = 1024;

/// Pipelined requests answered per input at most (each endpoint renders the whole broker).
const MAX_REQUESTS: usize = 8;

/// Reads `data[1..]` as pipelined monitoring requests: `data[0]` picks the base path (bit 0)
/// and a split point for the chunk-invariance check (the other bits).
///
/// Besides "no panic" it checks that a shorter read never decides differently (it is partial or
/// gives the same answer), that a complete head lies within the limit and its path starts with
/// `/`, that refusals are 400 or 431, and that every response is 200 (with JSON, JSONP or HTML
/// that is well-formed), 400 (a bad query) or 404 (no endpoint), and serialises to an HTTP
/// response whose `Content-Length` frames exactly its body.
pub fn natsws_monitor(data: &[u8]) {
    let Some((&flags, input)) = data.split_first() else {
        return;
    };
    let base_path = if flags & 1 == 1 { "/mon/" } else { "" };
    let split_at = usize::from(flags >> 1) * 8 % (input.len() + 1);
    let whole = monitor_request::read_head(input, MAX_HEAD_BYTES);
    let prefix = monitor_request::read_head(input.get(..split_at).unwrap_or(input), MAX_HEAD_BYTES);
    assert!(
        prefix == Head::Partial || prefix == whole,
        "a shorter read decided {prefix:?}, the whole input {whole:?}"
    );

    SETTINGS.with(|settings| {
        let now = Instant::now();
        // Built on first use: most inputs never reach an endpoint.
        let mut broker = None;
        let bound = Bound::default();
        let mut http_req_stats = BTreeMap::new();
        let ops = monitor::Ops::default();
        let mut rest = input;
        for _ in 0..MAX_REQUESTS {
            let head = match monitor_request::read_head(rest, MAX_HEAD_BYTES) {
                Head::Complete(head) => head,
                Head::Partial => {
                    assert!(rest.len() <= MAX_HEAD_BYTES);
                    return;
                }
                refused => {
                    let status = refused.refusal().map(|resp| resp.status);
                    assert!(matches!(status, Some(400 | 431)), "{refused:?}");
                    if status == Some(431) {
                        // Refused for its size only: the bytes within the limit are a head
                        // still in progress.
                        let within = rest.get(..MAX_HEAD_BYTES).unwrap_or(rest);
                        assert!(rest.len() > MAX_HEAD_BYTES);
                        assert_eq!(
                            monitor_request::read_head(within, MAX_HEAD_BYTES),
                            Head::Partial
                        );
                    }
                    return;
                }
            };
            assert!(head.head_len > 0 && head.head_len <= rest.len().min(MAX_HEAD_BYTES));
            assert!(head.path.starts_with('/'), "{head:?}");
            let resp = match Endpoint::route(&head.path, base_path) {
                Some(endpoint) => {
                    *http_req_stats
                        .entry(endpoint.path().to_owned())
                        .or_insert(0) += 1;
                    let ctx = MonitorCtx {
                        settings,
                        bound: &bound,
                        clock: Clock::now(),
                        now,
                        start: now,
                        config_load_time: now,
                        http_req_stats: &http_req_stats,
                        healthy: true,
                        rss_bytes: 0,
                        cpu_percent: 0.0,
                        ops: &ops,
                    };
                    let broker = broker.get_or_insert_with(|| small_broker(settings, now));
                    let resp = monitor::handle(endpoint, &head.query, broker, &ctx);
                    assert!(matches!(resp.status, 200 | 400), "{endpoint:?}: {resp:?}");
                    resp
                }
                None => {
                    let nf = monitor_request::not_found();
                    Response::text(nf.status, nf.body)
                }
            };
            check_response(&resp, head.keep_alive);
            if !head.keep_alive {
                return;
            }
            rest = rest.get(head.head_len..).unwrap_or_default();
        }
    });
}

thread_local! {
    /// The default settings (built once: the body runs thousands of times a second).
    static SETTINGS: Settings = match settings::from_options(&natsconf::options::Options::default()) {
        Ok(settings) => settings,
        Err(err) => panic!("the default options are refused: {err}"),
    };
}

/// A broker with three clients: two connected with subscriptions (one of them over WebSocket,
/// with a queue subscription and a message sent), and one closed.
fn small_broker(settings: &Settings, now: Instant) -> Broker {
    let mut broker = Broker::new(settings.broker.clone(), now);
    let inputs: [(ConnectionType, &[u8]); 3] = [
        (
            ConnectionType::Standard,
            b"CONNECT {\"verbose\":false,\"name\":\"a<b>\",\"lang\":\"rust\"}\r\n\
              SUB foo 1\r\nSUB bar.* 2\r\nPUB foo 5\r\nhello\r\n",
        ),
        (
            ConnectionType::WebSocket,
            b"CONNECT {\"verbose\":false}\r\nSUB foo q 1\r\nSUB > 2\r\nPING\r\n",
        ),
        (ConnectionType::Standard, b"CONNECT {}\r\nSUB baz 9\r\n"),
    ];
    let mut clients = Vec::new();
    for (port, (kind, input)) in (5000u16..).zip(inputs) {
        let client = broker.register_client(
            now,
            ClientParams::new(kind, std::net::SocketAddr::from(([127, 0, 0, 1], port))),
        );
        broker.handle_input(client, now, &mut BytesMut::from(input));
        clients.push(client);
    }
    if let Some(&last) = clients.last() {
        broker.close_client(last, now, CloseReason::ClientClosed);
        broker.remove_client(last, now);
    }
    while broker.poll_event().is_some() {}
    broker
}

/// A response is one the server can send: a known status, a well-formed body for its type,
/// and a head whose `Content-Length` frames the body exactly.
fn check_response(resp: &Response, keep_alive: bool) {
    match resp.content_type {
        "application/json" => {
            assert_eq!(resp.status, 200);
            let parsed = serde_json::from_slice::<serde_json::Value>(&resp.body);
            assert!(parsed.is_ok(), "{:?}", String::from_utf8_lossy(&resp.body));
        }
        "application/javascript" => {
            assert_eq!(resp.status, 200);
            assert!(resp.body.ends_with(b")") && resp.body.contains(&b'('));
        }
        "text/html; charset=utf-8"
        | "text/javascript; charset=utf-8"
        | "text/css; charset=utf-8"
        | "image/svg+xml" => assert_eq!(resp.status, 200),
        // The console's copy of the nats.ws licence is the one plain-text 200.
        "text/plain; charset=utf-8" if resp.status == 200 => {
            assert!(resp.body.windows(14).any(|w| w == b"Apache License"));
        }
        "text/plain; charset=utf-8" => assert!(matches!(resp.status, 400 | 404)),
        monitor::METRICS_CONTENT_TYPE => {
            assert_eq!(resp.status, 200);
            let text = std::str::from_utf8(&resp.body);
            assert!(text.is_ok());
            for line in text.unwrap_or_default().lines() {
                if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
                    continue;
                }
                let value = line.rsplit_once(' ').map(|(_, v)| v.parse::<f64>());
                assert!(matches!(value, Some(Ok(_))), "bad sample line {line:?}");
            }
        }
        other => panic!("unexpected content type {other:?}"),
    }
    let bytes = resp.to_bytes(keep_alive);
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(&bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!("unreadable response head: {other:?}"),
    };
    assert_eq!(parsed.code, Some(resp.status));
    let content_length = parsed
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok());
    assert_eq!(content_length, Some(resp.body.len()));
    assert_eq!(bytes.get(head_len..), Some(&resp.body[..]));
}

#[cfg(test)]
#[path = "../../../fuzz/replay.rs"]
mod replay;

#[cfg(test)]
mod tests {
    use super::replay::replay;

    #[test]
    fn replay_natsws_monitor() {
        let replayed = replay("natsws_monitor", super::natsws_monitor);
        assert!(replayed.seeds >= 5, "only {replayed:?}");
    }

    /// A malformed head followed by more bytes than the limit is a 400, not a 431: the
    /// harness once assumed every refusal of a long buffer was about its size.
    #[test]
    fn bad_head_longer_than_the_limit() {
        let data = include_bytes!(
            "../../../fuzz/regressions/natsws_monitor/bad_head_longer_than_the_limit"
        );
        assert!(data.len() > super::MAX_HEAD_BYTES + 1);
        assert_eq!(
            super::monitor_request::read_head(&data[1..], super::MAX_HEAD_BYTES),
            super::Head::Bad
        );
        super::natsws_monitor(data);
    }

    /// The seeds reach every endpoint with a 200, and the error paths.
    #[test]
    fn seeds_reach_the_endpoints() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/seeds/natsws_monitor");
        let mut text = String::new();
        for entry in std::fs::read_dir(root).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            text.push_str(&String::from_utf8_lossy(&data));
        }
        for path in [
            "/varz",
            "/connz",
            "/subsz",
            "/healthz",
            "/routez",
            "/leafz",
            "/gatewayz",
            "/accountz",
            "/jsz",
            "/metrics",
            "/console",
            "/console/console.js",
            "/natsws/connz",
            "/nope",
        ] {
            assert!(
                text.contains(&format!("GET {path}")),
                "no seed asks for {path}"
            );
        }
    }
}
