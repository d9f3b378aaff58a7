//! The connection after a refused request: kept open for another request or closed
//! ([`AfterReject`], [`ServerHandshake::next_request`], [`Limits::max_rejected_requests`]).
//!
//! Verified against the real nats-server 2.9.10 (`/usr/sbin/nats-server`, `websocket { port,
//! no_tls: true }`, Go 1.19.8): each refused request below was sent over one TCP connection with
//! python, immediately followed (pipelined, same `send`) by a valid upgrade, and the reply read
//! until EOF or a 1 s silence.
//!
//! Kept open (the 4xx, then the `101` for the pipelined upgrade):
//! - HTTP/1.1 handler refusals: `Sec-WebSocket-Version: 99` (400), `POST` (405), `HEAD` (405,
//!   no body), no `Upgrade` (400), empty key (400), `Origin: null` with origin checks off (the
//!   version refusal still applies: 400), `Expect: 100-continue` with no body (400).
//! - HTTP/1.0 with `Connection: Upgrade, keep-alive` (also `Upgrade, keep-alive, close`):
//!   `HTTP/1.0 400`/`405` with `Connection: keep-alive` after `Content-Length`, then the `101`.
//!
//! Closed (the response, then EOF; the pipelined upgrade is never answered):
//! - HTTP/1.1 with a `close` token in `Connection` (`Upgrade, close`, `close`, `CLOSE`): the
//!   handler's 400 with `Connection: close` after `Content-Length`.
//! - HTTP/1.0 without `keep-alive` in its first `Connection` value (a second `Connection:
//!   keep-alive` header does not count): `HTTP/1.0 400`, no `Connection` line.
//! - Go's canned refusals: missing `Host` (400), request line `GET /` (400), `HTTP/2.0` (505),
//!   header name with a space (400 invalid header name), `Expect: foo` on a valid upgrade
//!   (`417 Expectation Failed`, `Connection: close`, `Date`, `Content-Length: 0`; HTTP/1.0
//!   status line for HTTP/1.0, no `Content-Length` for `HEAD`), `Content-Length: abc`, `-1`, or
//!   two different lengths (canned 400), `Transfer-Encoding: gzip` (canned 501 with body
//!   `Unsupported transfer encoding`). `Expect: 100-continue` is accepted (101).
//! - A valid upgrade followed by any byte: the connection is hijacked and closed without a
//!   response (we send the 400 its code intended; golden `reject_data_before_handshake`).
//!
//! Deliberate differences, tested here: a refused request with a body (`Content-Length` other
//! than 0, or any `Transfer-Encoding`) closes with `Connection: close`, where Go reads and drops
//! up to 256 KiB of body and keeps the connection (verified with `Content-Length: 5` and a
//! chunked `0` body); no WebSocket client sends one. And the refusal that reaches
//! [`Limits::max_rejected_requests`] (16 by default) closes with `Connection: close` (HTTP/1.1)
//! or no `Connection` line (HTTP/1.0); nats-server has no limit.

use proptest::prelude::*;

use super::*;
use crate::{Limits, Options};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const DATE: u64 = 1_795_426_914;

fn request(line: &str, headers: &[(&str, &str)]) -> String {
    let mut text = format!("{line}\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text
}

/// A valid upgrade with `line` as the request line, `connection` as the `Connection` value, and
/// `extra` headers.
fn upgrade(line: &str, connection: &str, extra: &[(&str, &str)]) -> String {
    let mut headers = vec![
        ("Host", "localhost:8080"),
        ("Upgrade", "websocket"),
        ("Connection", connection),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
    ];
    headers.extend_from_slice(extra);
    request(line, &headers)
}

fn valid() -> String {
    upgrade("GET / HTTP/1.1", "Upgrade", &[])
}

/// `valid()` refused for its version (400 from the handler).
fn bad_version(line: &str, connection: &str, extra: &[(&str, &str)]) -> String {
    upgrade(line, connection, extra).replace("Version: 13", "Version: 99")
}

/// One refusal: what comes back and what happens next.
fn refuse(options: &Options, input: &str) -> (Reject, Option<AfterReject>, String) {
    let policy = Policy::new(options).unwrap();
    let mut handshake = ServerHandshake::new(false);
    let mut out = Vec::new();
    let res = handshake.handle_input(&policy, input.as_bytes(), Some(DATE), &mut out);
    let reject = res.unwrap_err();
    (
        reject,
        handshake.after_reject(),
        String::from_utf8(out).unwrap(),
    )
}

/// The handler's 400 for `invalid version`, with the given status line version and
/// `Connection` line.
fn handler_400(version: &str, connection: Option<&str>) -> String {
    let connection = connection.map_or(String::new(), |value| format!("Connection: {value}\r\n"));
    format!(
        "{version} 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Sec-Websocket-Version: 13\r\nX-Content-Type-Options: nosniff\r\n\
         Date: Mon, 23 Nov 2026 09:41:54 GMT\r\nContent-Length: 12\r\n{connection}\r\nBad Request\n"
    )
}

#[test]
fn keep_alive_and_close_per_class() {
    let options = Options::default();
    // (request, keep alive, expected response or None to only check the status line)
    let keep: &[(String, bool, Option<String>)] = &[
        (
            bad_version("GET / HTTP/1.1", "Upgrade", &[]),
            true,
            Some(handler_400("HTTP/1.1", None)),
        ),
        (
            bad_version("GET / HTTP/1.1", "keep-alive, Upgrade", &[]),
            true,
            Some(handler_400("HTTP/1.1", None)),
        ),
        (upgrade("POST / HTTP/1.1", "Upgrade", &[]), true, None),
        (upgrade("HEAD / HTTP/1.1", "Upgrade", &[]), true, None),
        (
            upgrade("GET / HTTP/1.1", "Upgrade", &[]).replace(KEY, ""),
            true,
            None,
        ),
        (
            bad_version("GET / HTTP/1.1", "Upgrade", &[("Content-Length", "0")]),
            true,
            Some(handler_400("HTTP/1.1", None)),
        ),
        (
            bad_version("GET / HTTP/1.1", "Upgrade, close", &[]),
            false,
            Some(handler_400("HTTP/1.1", Some("close"))),
        ),
        (
            bad_version("GET / HTTP/1.1", "Upgrade", &[("Connection", "CLOSE")]),
            false,
            Some(handler_400("HTTP/1.1", Some("close"))),
        ),
        (
            bad_version("GET / HTTP/1.1", "close", &[]),
            false,
            Some(handler_400("HTTP/1.1", Some("close"))),
        ),
        (
            bad_version("GET / HTTP/1.0", "Upgrade", &[]),
            false,
            Some(handler_400("HTTP/1.0", None)),
        ),
        (
            bad_version("GET / HTTP/1.0", "Upgrade, keep-alive", &[]),
            true,
            Some(handler_400("HTTP/1.0", Some("keep-alive"))),
        ),
        (
            bad_version("GET / HTTP/1.0", "Upgrade, Keep-Alive, close", &[]),
            true,
            Some(handler_400("HTTP/1.0", Some("keep-alive"))),
        ),
        (
            bad_version("GET / HTTP/1.0", "Upgrade", &[("Connection", "keep-alive")]),
            false,
            Some(handler_400("HTTP/1.0", None)),
        ),
        // Go's hasToken: `keep-alive` must be bounded by space, tab or comma.
        (
            bad_version("GET / HTTP/1.0", "Upgrade,keep-alive2", &[]),
            false,
            Some(handler_400("HTTP/1.0", None)),
        ),
        // Ours: a body closes.
        (
            bad_version("GET / HTTP/1.1", "Upgrade", &[("Content-Length", "5")]),
            false,
            Some(handler_400("HTTP/1.1", Some("close"))),
        ),
        (
            bad_version(
                "GET / HTTP/1.1",
                "Upgrade",
                &[("Transfer-Encoding", "chunked")],
            ),
            false,
            Some(handler_400("HTTP/1.1", Some("close"))),
        ),
    ];
    for (input, keep_alive, response) in keep {
        let (reject, after, out) = refuse(&options, input);
        let after = after.unwrap();
        assert_eq!(after.keep_alive(), *keep_alive, "{input}\n{reject}");
        assert_eq!(after.consumed(), input.len(), "{input}");
        if let Some(response) = response {
            assert_eq!(&out, response, "{input}");
        }
    }
}

#[test]
fn go_http_layer_and_hijack_refusals_close() {
    let options = Options::default();
    for input in [
        request("GET / HTTP/1.1", &[]),
        "GET /\r\n\r\n".to_owned(),
        request("GET / HTTP/2.0", &[("Host", "h")]),
        "GET / HTTP/1.1\r\nHost: h\r\nUp grade: websocket\r\n\r\n".to_owned(),
        request("GET / HTTP/1.1", &[("Host", "a b")]),
        request("GET / HTTP/1.1", &[("Host", "a"), ("Host", "b")]),
        format!("{}x", valid()),
    ] {
        let (reject, after, out) = refuse(&options, &input);
        assert!(!after.unwrap().keep_alive(), "{input}\n{reject}");
        // Canned responses say so themselves; the hijack case has the old bytes.
        if reject != Reject::DataBeforeHandshake {
            assert!(out.contains("\r\nConnection: close\r\n"), "{out}");
        }
    }
    let small = Options {
        limits: Limits {
            max_head_bytes: 64,
            ..Limits::default()
        },
        ..Options::default()
    };
    let (reject, after, _) = refuse(&small, &valid());
    assert_eq!(reject, Reject::HeadTooLarge);
    assert_eq!(after, Some(AfterReject::new(false, 0)));
}

#[test]
fn go_transfer_and_expect_refusals() {
    let options = Options::default();
    let with = |extra: &[(&str, &str)]| upgrade("GET / HTTP/1.1", "Upgrade", extra);
    let canned_400 = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
                      Connection: close\r\n\r\n400 Bad Request";
    for extra in [
        &[("Content-Length", "abc")][..],
        &[("Content-Length", "-1")],
        &[("Content-Length", "+1")],
        &[("Content-Length", "9223372036854775808")],
        &[("Content-Length", "1"), ("Content-Length", "2")],
    ] {
        let (reject, after, out) = refuse(&options, &with(extra));
        assert_eq!(reject, Reject::MalformedRequest, "{extra:?}");
        assert!(!after.unwrap().keep_alive());
        assert_eq!(out, canned_400);
    }
    for extra in [
        &[("Transfer-Encoding", "gzip")][..],
        &[
            ("Transfer-Encoding", "chunked"),
            ("Transfer-Encoding", "chunked"),
        ],
    ] {
        let (reject, after, out) = refuse(&options, &with(extra));
        assert_eq!(reject, Reject::UnsupportedTransferEncoding, "{extra:?}");
        assert!(!after.unwrap().keep_alive());
        assert_eq!(
            out,
            "HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Connection: close\r\n\r\nUnsupported transfer encoding"
        );
    }
    let (reject, after, out) = refuse(&options, &with(&[("Expect", "foo")]));
    assert_eq!(reject, Reject::ExpectationFailed);
    assert!(!after.unwrap().keep_alive());
    assert_eq!(
        out,
        "HTTP/1.1 417 Expectation Failed\r\nConnection: close\r\n\
         Date: Mon, 23 Nov 2026 09:41:54 GMT\r\nContent-Length: 0\r\n\r\n"
    );
    let (_, _, out) = refuse(
        &options,
        &upgrade("HEAD / HTTP/1.0", "Upgrade", &[("Expect", "foo")]),
    );
    assert_eq!(
        out,
        "HTTP/1.0 417 Expectation Failed\r\nConnection: close\r\n\
         Date: Mon, 23 Nov 2026 09:41:54 GMT\r\n\r\n"
    );
    // Accepted as Go accepts them: `100-continue`, a repeated equal length, a zero length,
    // and any Transfer-Encoding on HTTP/1.0 (ignored there).
    let policy = Policy::new(&options).unwrap();
    for input in [
        with(&[("Expect", "100-continue")]),
        with(&[("Content-Length", "0"), ("Content-Length", "0")]),
        with(&[("Content-Length", "00")]),
        with(&[("Transfer-Encoding", "chunked")]),
        upgrade(
            "GET / HTTP/1.0",
            "Upgrade",
            &[("Transfer-Encoding", "gzip")],
        ),
    ] {
        let mut handshake = ServerHandshake::new(false);
        let res = handshake.handle_input(&policy, input.as_bytes(), None, &mut Vec::new());
        assert!(matches!(res, Ok(Some(_))), "{input}: {res:?}");
    }
}

#[test]
fn next_request_only_after_a_keep_alive_refusal() {
    let policy = Policy::new(&Options::default()).unwrap();
    let mut handshake = ServerHandshake::new(false);
    assert!(!handshake.next_request());
    assert_eq!(handshake.after_reject(), None);
    let mut out = Vec::new();
    let first = bad_version("GET / HTTP/1.1", "Upgrade", &[]);
    assert!(
        handshake
            .handle_input(&policy, first.as_bytes(), None, &mut out)
            .is_err()
    );
    assert!(handshake.is_finished());
    assert!(handshake.next_request());
    assert!(!handshake.is_finished());
    assert_eq!(handshake.after_reject(), None);
    assert_eq!(handshake.rejected_requests(), 1);
    assert!(!handshake.next_request(), "once per refusal");
    let upgrade = handshake
        .handle_input(&policy, valid().as_bytes(), None, &mut out)
        .unwrap()
        .unwrap();
    assert_eq!(upgrade.head_len, valid().len());
    assert!(!handshake.next_request(), "not after an upgrade");
    assert_eq!(handshake.after_reject(), None);
}

#[test]
fn the_cap_closes_the_connection() {
    for (cap, refusals) in [(0, 1), (1, 1), (2, 2), (16, 16)] {
        let policy = Policy::new(&Options {
            limits: Limits {
                max_rejected_requests: cap,
                ..Limits::default()
            },
            ..Options::default()
        })
        .unwrap();
        let bad = bad_version("GET / HTTP/1.1", "Upgrade", &[]);
        let mut handshake = ServerHandshake::new(false);
        for n in 1..=refusals {
            let mut out = Vec::new();
            let res = handshake.handle_input(&policy, bad.as_bytes(), Some(DATE), &mut out);
            assert_eq!(res, Err(Reject::InvalidVersion));
            let last = n == refusals;
            let after = handshake.after_reject().unwrap();
            assert_eq!(after.keep_alive(), !last, "cap {cap}, refusal {n}");
            let expect = handler_400("HTTP/1.1", last.then_some("close"));
            assert_eq!(String::from_utf8(out).unwrap(), expect);
            assert_eq!(handshake.next_request(), !last);
        }
        assert_eq!(handshake.rejected_requests(), refusals);
    }
    // HTTP/1.0 keep-alive at the cap: closed, and no `Connection` line.
    let policy = Policy::new(&Options {
        limits: Limits {
            max_rejected_requests: 1,
            ..Limits::default()
        },
        ..Options::default()
    })
    .unwrap();
    let mut handshake = ServerHandshake::new(false);
    let mut out = Vec::new();
    let bad = bad_version("GET / HTTP/1.0", "Upgrade, keep-alive", &[]);
    assert!(
        handshake
            .handle_input(&policy, bad.as_bytes(), Some(DATE), &mut out)
            .is_err()
    );
    assert!(!handshake.after_reject().unwrap().keep_alive());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        handler_400("HTTP/1.0", None)
    );
}

/// What a caller sees on one connection.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    Refused(Reject),
    Upgraded(Upgrade),
    Closed,
}

/// Drives one connection the way the binary should: append each read to the buffer, and after
/// a refusal that keeps the connection drop the consumed bytes and go on with the rest at once.
/// Returns the events, all bytes written, and the bytes left in the buffer.
fn drive(policy: &Policy, reads: &[&[u8]]) -> (Vec<Event>, Vec<u8>, Vec<u8>) {
    let mut handshake = ServerHandshake::new(false);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut events = Vec::new();
    for read in reads {
        buf.extend_from_slice(read);
        loop {
            match handshake.handle_input(policy, &buf, Some(DATE), &mut out) {
                Ok(None) => break,
                Ok(Some(upgrade)) => {
                    buf.drain(..upgrade.head_len);
                    events.push(Event::Upgraded(upgrade));
                    return (events, out, buf);
                }
                Err(reject) => {
                    events.push(Event::Refused(reject));
                    let after = handshake.after_reject().unwrap();
                    if !after.keep_alive() {
                        events.push(Event::Closed);
                        return (events, out, buf);
                    }
                    buf.drain(..after.consumed());
                    assert!(handshake.next_request());
                }
            }
        }
    }
    (events, out, buf)
}

/// The expected transcript of `first` (refused with `reject`, kept open) then `valid()`.
fn expected_400_then_101(policy: &Policy, first: &str, reject: &Reject) -> (Vec<Event>, Vec<u8>) {
    let mut out = Vec::new();
    let mut handshake = ServerHandshake::new(false);
    assert_eq!(
        handshake.handle_input(policy, first.as_bytes(), Some(DATE), &mut out),
        Err(reject.clone())
    );
    let mut second = ServerHandshake::new(false);
    let upgrade = second
        .handle_input(policy, valid().as_bytes(), Some(DATE), &mut out)
        .unwrap()
        .unwrap();
    (
        vec![Event::Refused(reject.clone()), Event::Upgraded(upgrade)],
        out,
    )
}

#[test]
fn pipelined_400_then_101_at_every_split_point() {
    let policy = Policy::new(&Options::default()).unwrap();
    for (first, reject) in [
        (
            bad_version("GET / HTTP/1.1", "Upgrade", &[]),
            Reject::InvalidVersion,
        ),
        (
            upgrade("HEAD / HTTP/1.1", "Upgrade", &[]),
            Reject::MethodNotGet,
        ),
        (
            bad_version("GET / HTTP/1.0", "Upgrade, keep-alive", &[]),
            Reject::InvalidVersion,
        ),
    ] {
        let (events, out) = expected_400_then_101(&policy, &first, &reject);
        let input = format!("{first}{}", valid()).into_bytes();
        for split in 0..=input.len() {
            let (a, b) = input.split_at(split);
            let (got, got_out, left) = drive(&policy, &[a, b]);
            assert_eq!(got, events, "split at {split}");
            assert_eq!(got_out, out, "split at {split}");
            assert!(left.is_empty());
        }
    }
}

#[test]
fn a_closing_refusal_leaves_the_pipelined_request_unanswered() {
    let policy = Policy::new(&Options::default()).unwrap();
    let first = bad_version("GET / HTTP/1.1", "Upgrade, close", &[]);
    let input = format!("{first}{}", valid());
    let (events, out, _) = drive(&policy, &[input.as_bytes()]);
    assert_eq!(
        events,
        vec![Event::Refused(Reject::InvalidVersion), Event::Closed]
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        handler_400("HTTP/1.1", Some("close"))
    );
}

#[test]
fn a_client_looping_on_one_connection_is_cut_off() {
    let policy = Policy::new(&Options::default()).unwrap();
    let bad = bad_version("GET / HTTP/1.1", "Upgrade", &[]);
    let input = bad.repeat(40) + &valid();
    let (events, out, _) = drive(&policy, &[input.as_bytes()]);
    assert_eq!(events.len(), 17);
    assert!(
        events[..16]
            .iter()
            .all(|event| *event == Event::Refused(Reject::InvalidVersion))
    );
    assert_eq!(events[16], Event::Closed);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.matches("400 Bad Request").count(), 16);
    assert!(text.ends_with(&handler_400("HTTP/1.1", Some("close"))));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Refused requests (each kept open) followed by a valid upgrade, cut into reads anywhere:
    /// the same refusals, the same bytes, then the `101`.
    #[test]
    fn pipelined_refusals_then_101_any_cuts(
        firsts in proptest::collection::vec(0..4usize, 1..4),
        cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..8),
    ) {
        let policy = Policy::new(&Options::default()).unwrap();
        let kinds = [
            (bad_version("GET / HTTP/1.1", "Upgrade", &[]), Reject::InvalidVersion),
            (upgrade("POST /x HTTP/1.1", "Upgrade", &[]), Reject::MethodNotGet),
            (upgrade("GET / HTTP/1.1", "keep-alive", &[]), Reject::InvalidConnection),
            (
                bad_version("GET / HTTP/1.0", "Upgrade, keep-alive", &[("Content-Length", "0")]),
                Reject::InvalidVersion,
            ),
        ];
        let mut input = Vec::new();
        let mut events = Vec::new();
        let mut expected_out = Vec::new();
        for index in &firsts {
            let (first, reject) = &kinds[*index];
            input.extend_from_slice(first.as_bytes());
            let mut handshake = ServerHandshake::new(false);
            let res = handshake.handle_input(&policy, first.as_bytes(), Some(DATE), &mut expected_out);
            prop_assert_eq!(res, Err(reject.clone()));
            events.push(Event::Refused(reject.clone()));
        }
        input.extend_from_slice(valid().as_bytes());
        let mut handshake = ServerHandshake::new(false);
        let upgrade = handshake
            .handle_input(&policy, valid().as_bytes(), Some(DATE), &mut expected_out)
            .unwrap()
            .unwrap();
        events.push(Event::Upgraded(upgrade));

        let mut ends: Vec<usize> = cuts.iter().map(|cut| cut.index(input.len() + 1)).collect();
        ends.push(0);
        ends.push(input.len());
        ends.sort_unstable();
        let reads: Vec<&[u8]> = ends.windows(2).map(|pair| &input[pair[0]..pair[1]]).collect();
        let (got, out, left) = drive(&policy, &reads);
        prop_assert_eq!(got, events);
        prop_assert_eq!(out, expected_out);
        prop_assert!(left.is_empty());
    }
}
