//! Server-side tests, including one named test per `server/websocket_test.go` handshake test of
//! nats-server 2.9.10.
//!
//! Go-only parts of those tests have no sans-IO counterpart and are mapped as follows: the
//! "hijack error → 500" case cannot happen (nothing is hijacked; the caller owns the socket),
//! and writing the `101` or clearing the handshake deadline are the caller's job, so their tests
//! check what the caller relies on instead.

use proptest::prelude::*;

use super::*;
use crate::{Limits, Options};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A request with the given request line and headers.
fn request(line: &str, headers: &[(&str, &str)]) -> String {
    let mut text = format!("{line}\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text
}

/// The headers of a valid upgrade, plus `extra`.
fn upgrade_headers<'a>(host: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![
        ("Host", host),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
    ];
    headers.extend_from_slice(extra);
    headers
}

fn valid(extra: &[(&str, &str)]) -> String {
    request("GET / HTTP/1.1", &upgrade_headers("localhost:8080", extra))
}

/// Feeds `input` in one read and returns the decision and what was written.
fn run(options: &Options, tls: bool, input: &[u8]) -> (Result<Option<Upgrade>, Reject>, Vec<u8>) {
    let policy = Policy::new(options).unwrap();
    let mut handshake = ServerHandshake::new(tls);
    let mut out = Vec::new();
    let res = handshake.handle_input(&policy, input, Some(1_795_426_914), &mut out);
    (res, out)
}

fn check_reject(options: &Options, input: &str, expect: Reject) {
    let (res, out) = run(options, false, input.as_bytes());
    assert_eq!(res, Err(expect.clone()), "{input}");
    let status = format!("HTTP/1.1 {} ", expect.status());
    assert!(
        out.starts_with(status.as_bytes()),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

fn check_upgrade(options: &Options, input: &str) -> (Upgrade, String) {
    let (res, out) = run(options, false, input.as_bytes());
    let upgrade = res.unwrap().unwrap();
    assert_eq!(upgrade.head_len, input.len());
    (upgrade, String::from_utf8(out).unwrap())
}

fn origin_options(same_origin: bool, allowed: &[&str]) -> Options {
    Options {
        same_origin,
        allowed_origins: allowed.iter().map(|entry| (*entry).to_owned()).collect(),
        ..Options::default()
    }
}

/// Runs the origin check for one row of `TestWSCheckOrigin`.
fn check_origin(
    same_origin: bool,
    allowed: &[&str],
    host: &str,
    tls: bool,
    origin: Option<&str>,
    expect: Result<(), &str>,
) {
    let extra: Vec<(&str, &str)> = origin
        .map(|origin| ("Origin", origin))
        .into_iter()
        .collect();
    let input = request("GET / HTTP/1.1", &upgrade_headers(host, &extra));
    let (res, _) = run(&origin_options(same_origin, allowed), tls, input.as_bytes());
    let got = res.map(|_| ()).map_err(|reject| reject.to_string());
    let expect = expect.map_err(|detail| format!("origin not allowed: {detail}"));
    assert_eq!(
        got, expect,
        "same={same_origin} list={allowed:?} host={host} tls={tls} origin={origin:?}"
    );
}

/// `TestWSCheckOrigin`: its table, with the rows newer nats-server versions decide differently.
#[test]
fn ws_check_origin() {
    let list = ["http://host1.com", "http://host2.com:1234"];
    check_origin(
        false,
        &[],
        "any",
        false,
        Some("http://any.host.com"),
        Ok(()),
    );
    check_origin(
        true,
        &[],
        "host.com",
        false,
        Some("http://host.com:80"),
        Ok(()),
    );
    check_origin(
        true,
        &[],
        "host.com",
        false,
        Some("http://other.host.com"),
        Err("not same origin"),
    );
    check_origin(
        true,
        &[],
        "host.com",
        false,
        Some("http://host.com:81"),
        Err("not same origin"),
    );
    check_origin(
        true,
        &[],
        "host.com",
        true,
        Some("http://host.com"),
        Err("not same origin"),
    );
    check_origin(
        true,
        &[],
        "host.com",
        false,
        Some("@@@://invalid:url:1234"),
        Err("parse \"@@@://invalid:url:1234\": invalid URI for request"),
    );
    check_origin(
        true,
        &[],
        "host.com",
        false,
        Some("http://invalid:url:1234"),
        Err("address invalid:url:1234: too many colons in address"),
    );
    check_origin(
        true,
        &[],
        "invalid:url:1234",
        false,
        Some("http://host.com"),
        Err("address invalid:url:1234: too many colons in address"),
    );
    check_origin(true, &list, "host.com", false, None, Ok(()));
    check_origin(
        false,
        &list,
        "any",
        false,
        Some("http://host2.com:1234"),
        Ok(()),
    );
    check_origin(
        false,
        &list,
        "any",
        false,
        Some("http://host1.com/some/path"),
        Ok(()),
    );
    check_origin(
        false,
        &list,
        "any",
        false,
        Some("http://host1.com:1234"),
        Err("not in the allowed list"),
    );
    check_origin(
        false,
        &list,
        "any",
        false,
        Some("https://host2.com:1234"),
        Err("not in the allowed list"),
    );
    check_origin(
        false,
        &["https://example.com"],
        "any",
        false,
        Some("https://example.com:443"),
        Ok(()),
    );
    check_origin(
        false,
        &["HTTP://UPPER.com"],
        "any",
        false,
        Some("http://upper.com"),
        Ok(()),
    );
    check_origin(
        false,
        &["https://example.com"],
        "any",
        false,
        Some("ws://example.com"),
        Err("not in the allowed list"),
    );
    check_origin(
        true,
        &[],
        "any",
        false,
        Some("null"),
        Err("parse \"null\": invalid URI for request"),
    );
    // Hardened as in newer versions: v2.9.10 accepts this row because it ignores the scheme.
    check_origin(
        true,
        &[],
        "127.0.0.1:16071",
        false,
        Some("https://127.0.0.1:16071"),
        Err("not same origin"),
    );
    check_origin(
        true,
        &[],
        "host.com",
        true,
        Some("https://host.com"),
        Ok(()),
    );
    // Hardened: several entries per host are kept (v2.9.10 keeps only the last one).
    let both = ["http://example.com", "https://example.com"];
    check_origin(
        false,
        &both,
        "any",
        false,
        Some("http://example.com"),
        Ok(()),
    );
    check_origin(
        false,
        &both,
        "any",
        false,
        Some("https://example.com"),
        Ok(()),
    );
}

#[test]
fn origin_falls_back_to_sec_websocket_origin() {
    let options = origin_options(false, &["http://a.com"]);
    let input = valid(&[("Origin", ""), ("Sec-WebSocket-Origin", "http://b.com")]);
    check_reject(
        &options,
        &input,
        Reject::OriginNotAllowed("not in the allowed list".into()),
    );
    check_upgrade(
        &options,
        &valid(&[("Sec-WebSocket-Origin", "http://a.com")]),
    );
    // Only the first Origin header counts.
    let input = valid(&[("Origin", "http://b.com"), ("Origin", "http://a.com")]);
    check_reject(
        &options,
        &input,
        Reject::OriginNotAllowed("not in the allowed list".into()),
    );
}

/// `TestWSUpgradeValidationErrors`: status, body and logged reason of every rejection.
#[test]
fn ws_upgrade_validation_errors() {
    let options = Options::default();
    let without = |name: &str| {
        let headers: Vec<_> = upgrade_headers("localhost", &[])
            .into_iter()
            .filter(|(header, _)| *header != name)
            .collect();
        request("GET / HTTP/1.1", &headers)
    };
    let replaced = |name: &str, value: &'static str| {
        let headers: Vec<_> = upgrade_headers("localhost", &[])
            .into_iter()
            .map(|(header, old)| (header, if header == name { value } else { old }))
            .collect();
        request("GET / HTTP/1.1", &headers)
    };
    let post = request("POST / HTTP/1.1", &upgrade_headers("localhost", &[]));
    check_reject(&options, &post, Reject::MethodNotGet);
    check_reject(&options, &replaced("Host", ""), Reject::HostMissing);
    check_reject(&options, &without("Upgrade"), Reject::InvalidUpgrade);
    check_reject(&options, &without("Connection"), Reject::InvalidConnection);
    check_reject(&options, &without("Sec-WebSocket-Key"), Reject::KeyMissing);
    check_reject(
        &options,
        &replaced("Sec-WebSocket-Key", ""),
        Reject::KeyMissing,
    );
    check_reject(
        &options,
        &without("Sec-WebSocket-Version"),
        Reject::InvalidVersion,
    );
    check_reject(
        &options,
        &replaced("Sec-WebSocket-Version", "99"),
        Reject::InvalidVersion,
    );
    let same = origin_options(true, &[]);
    check_reject(
        &same,
        &valid(&[("Origin", "invalid")]),
        Reject::OriginNotAllowed("parse \"invalid\": invalid URI for request".into()),
    );
    let mut with_data = valid(&[]);
    with_data.push('\u{81}');
    check_reject(&options, &with_data, Reject::DataBeforeHandshake);

    let (_, out) = run(&options, false, post.as_bytes());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Sec-Websocket-Version: 13\r\nX-Content-Type-Options: nosniff\r\n\
         Date: Mon, 23 Nov 2026 09:41:54 GMT\r\nContent-Length: 19\r\n\r\nMethod Not Allowed\n"
    );
}

#[test]
fn validation_order_is_the_references() {
    let options = origin_options(true, &[]);
    // Everything is wrong: the method is reported.
    check_reject(
        &options,
        &request("PUT / HTTP/1.1", &[("Host", ""), ("Origin", "null")]),
        Reject::MethodNotGet,
    );
    check_reject(
        &options,
        &request("GET / HTTP/1.1", &[("Host", ""), ("Origin", "null")]),
        Reject::HostMissing,
    );
    check_reject(
        &options,
        &request("GET / HTTP/1.1", &[("Host", "h"), ("Connection", "x")]),
        Reject::InvalidUpgrade,
    );
    check_reject(
        &options,
        &request(
            "GET / HTTP/1.1",
            &[
                ("Host", "h"),
                ("Upgrade", "websocket"),
                ("Sec-WebSocket-Version", "1"),
            ],
        ),
        Reject::InvalidConnection,
    );
    check_reject(
        &options,
        &request(
            "GET / HTTP/1.1",
            &[
                ("Host", "h"),
                ("Upgrade", "websocket"),
                ("Connection", "upgrade"),
                ("Sec-WebSocket-Version", "1"),
            ],
        ),
        Reject::KeyMissing,
    );
    check_reject(
        &options,
        &request(
            "GET / HTTP/1.1",
            &[
                ("Host", "h"),
                ("Upgrade", "websocket"),
                ("Connection", "upgrade"),
                ("Sec-WebSocket-Key", "k"),
                ("Origin", "null"),
            ],
        ),
        Reject::InvalidVersion,
    );
    // The MQTT 404, when configured, comes before everything else.
    let no_mqtt = Options {
        reject_mqtt: true,
        ..Options::default()
    };
    check_reject(
        &no_mqtt,
        &request("POST /mqtt HTTP/1.1", &[("Host", "")]),
        Reject::MqttNotEnabled,
    );
}

/// `TestWSUpgradeResponseWriteError`: nats-server closes when writing the `101` fails. Here the
/// crate never writes; it appends the whole `101` to the caller's buffer in one step and keeps
/// what was already there, so the caller can flush it and close on a write error.
#[test]
fn ws_upgrade_response_write_error() {
    let policy = Policy::new(&Options::default()).unwrap();
    let mut handshake = ServerHandshake::new(false);
    let mut out = b"pending".to_vec();
    let upgrade = handshake
        .handle_input(&policy, valid(&[]).as_bytes(), None, &mut out)
        .unwrap();
    assert!(upgrade.is_some());
    let expected = format!(
        "pendingHTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n"
    );
    assert_eq!(String::from_utf8(out.clone()).unwrap(), expected);
    // Nothing more is ever written for this connection.
    assert_eq!(
        handshake.handle_input(&policy, valid(&[]).as_bytes(), None, &mut out),
        Ok(None)
    );
    assert_eq!(out.len(), expected.len());
}

/// `TestWSUpgradeConnDeadline`: the handshake deadline is cleared after a successful upgrade.
/// The deadline lives in the caller; [`ServerHandshake::is_finished`] tells it when to clear it.
#[test]
fn ws_upgrade_conn_deadline() {
    let policy = Policy::new(&Options::default()).unwrap();
    let mut handshake = ServerHandshake::new(false);
    let input = valid(&[]);
    let mut out = Vec::new();
    assert_eq!(
        handshake.handle_input(&policy, &input.as_bytes()[..10], None, &mut out),
        Ok(None)
    );
    assert!(!handshake.is_finished());
    assert!(
        handshake
            .handle_input(&policy, input.as_bytes(), None, &mut out)
            .unwrap()
            .is_some()
    );
    assert!(handshake.is_finished());
}

/// `TestWSCompressNegotiation`: the three combinations of server option and client offer.
#[test]
fn ws_compress_negotiation() {
    let offer = [(
        "Sec-WebSocket-Extensions",
        "permessage-deflate; client_max_window_bits",
    )];
    let off = Options::default();
    let on = Options {
        compression: true,
        ..Options::default()
    };

    let (upgrade, out) = check_upgrade(&off, &valid(&offer));
    assert!(!upgrade.compression);
    assert!(!out.contains("permessage-deflate"));

    let (upgrade, out) = check_upgrade(&on, &valid(&offer));
    assert!(upgrade.compression);
    assert!(out.contains(
        "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"
    ));

    let (upgrade, out) = check_upgrade(&on, &valid(&[]));
    assert!(!upgrade.compression);
    assert!(!out.contains("permessage-deflate"));
}

#[test]
fn the_101_is_byte_exact() {
    let options = Options {
        compression: true,
        headers: vec![
            ("X-A".into(), "1".into()),
            ("Strict-Transport-Security".into(), "max-age=1".into()),
        ],
        ..Options::default()
    };
    let input = request(
        "GET /mqtt HTTP/1.1",
        &upgrade_headers(
            "h",
            &[
                (
                    "Sec-WebSocket-Extensions",
                    "x-webkit-deflate-frame, PerMessage-Deflate",
                ),
                ("Nats-No-Masking", "true"),
            ],
        ),
    );
    let (upgrade, out) = check_upgrade(&options, &input);
    assert_eq!(upgrade.kind, PathKind::Mqtt);
    assert_eq!(
        out,
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {ACCEPT}\r\n\
             Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n\
             Nats-No-Masking: true\r\nSec-Websocket-Protocol: mqtt\r\nX-A: 1\r\n\
             Strict-Transport-Security: max-age=1\r\n\r\n"
        )
    );
}

#[test]
fn accept_keys() {
    assert_eq!(accept_key(KEY.as_bytes()), ACCEPT);
    // Computed over the text as received, even when it is not base64 (verified on 2.9.10).
    assert_eq!(accept_key(b"not-base64!"), "EGm9RBJih1aW8+gf+DgPTwgTjJI=");
}

fn check_kind(path: &str, expect: PathKind) {
    let input = request(&format!("GET {path} HTTP/1.1"), &upgrade_headers("h", &[]));
    let (upgrade, _) = check_upgrade(&Options::default(), &input);
    assert_eq!(upgrade.kind, expect, "{path}");
}

#[test]
fn path_kinds() {
    check_kind("/", PathKind::Client);
    check_kind("/foo/bar?x=1", PathKind::Client);
    check_kind("/leafnode", PathKind::Leaf);
    check_kind("/leafnodeX", PathKind::Leaf);
    check_kind("/leafnode/a?b", PathKind::Leaf);
    check_kind("/mqtt", PathKind::Mqtt);
    check_kind("/x/leafnode", PathKind::Client);
    check_kind("http://h/leafnode", PathKind::Leaf);
    check_kind("*", PathKind::Client);
    assert_eq!(PathKind::Leaf.connection_type(), "LEAFNODE_WS");
}

#[test]
fn header_matching() {
    let options = Options::default();
    check_upgrade(
        &options,
        &request(
            "GET / HTTP/1.1",
            &[
                ("host", "h"),
                ("upgrade", "h2c, WebSocket"),
                ("connection", "keep-alive, upgrade"),
                ("sec-websocket-key", KEY),
                ("sec-websocket-version", "8, 13"),
            ],
        ),
    );
    // Token lists may be spread over several header lines.
    check_upgrade(
        &options,
        &request(
            "GET / HTTP/1.1",
            &[
                ("Host", "h"),
                ("Upgrade", "h2c"),
                ("Upgrade", "websocket"),
                ("Connection", "keep-alive"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", KEY),
                ("Sec-WebSocket-Version", "13"),
            ],
        ),
    );
    // `websocketx` is not the token `websocket`.
    check_reject(
        &options,
        &request(
            "GET / HTTP/1.1",
            &upgrade_headers("h", &[])
                .into_iter()
                .map(|(n, v)| (n, if n == "Upgrade" { "websocketx" } else { v }))
                .collect::<Vec<_>>(),
        ),
        Reject::InvalidUpgrade,
    );
    // The first key wins.
    let (_, out) = check_upgrade(&options, &valid(&[("Sec-WebSocket-Key", "other")]));
    assert!(out.contains(ACCEPT));
    // `Nats-No-Masking` must be exactly `true`.
    let (upgrade, out) = check_upgrade(&options, &valid(&[("Nats-No-Masking", "TRUE")]));
    assert!(!upgrade.no_masking);
    assert!(!out.contains("Nats-No-Masking"));
}

#[test]
fn go_http_layer_rejections() {
    let options = Options::default();
    check_reject(
        &options,
        &request("GET / HTTP/1.1", &[]),
        Reject::MissingHostHeader,
    );
    check_reject(
        &options,
        &request("GET / HTTP/1.1", &[("Host", "a"), ("Host", "b")]),
        Reject::MalformedRequest,
    );
    check_reject(
        &options,
        &request("GET / HTTP/1.1", &[("Host", "a b")]),
        Reject::MalformedHostHeader,
    );
    check_reject(
        &options,
        &request("GET / HTTP/2.0", &[("Host", "h")]),
        Reject::UnsupportedVersion,
    );
    check_reject(
        &options,
        &request("GET / HTTP/x", &[("Host", "h")]),
        Reject::MalformedRequest,
    );
    check_reject(&options, "garbage\r\n\r\n", Reject::MalformedRequest);
    check_reject(
        &options,
        "GET foo HTTP/1.1\r\nHost: h\r\n\r\n",
        Reject::MalformedRequest,
    );
    check_reject(
        &options,
        "GET / HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n",
        Reject::MalformedRequest,
    );
    check_reject(
        &options,
        "\r\nGET / HTTP/1.1\r\n\r\n",
        Reject::MalformedRequest,
    );
    // A lower-case method is a valid token, so the handler refuses it.
    check_reject(
        &options,
        &request("get / HTTP/1.1", &upgrade_headers("h", &[])),
        Reject::MethodNotGet,
    );
    // Bare LF line ends are accepted, as Go does.
    check_upgrade(&options, &valid(&[]).replace("\r\n", "\n"));
}

#[test]
fn bad_request_line_is_refused_before_the_headers_end() {
    let policy = Policy::new(&Options::default()).unwrap();
    let mut handshake = ServerHandshake::new(false);
    let mut out = Vec::new();
    let res = handshake.handle_input(&policy, b"GET / HTTP/9.9\r\nHost: h\r\n", None, &mut out);
    assert_eq!(res, Err(Reject::UnsupportedVersion));
}

#[test]
fn http10_requests() {
    let options = Options::default();
    // Accepted and upgraded (there is no version check).
    let input = request("GET / HTTP/1.0", &upgrade_headers("h", &[]));
    check_upgrade(&options, &input);
    // Without Host the handler refuses it, with an HTTP/1.0 status line.
    let (res, out) = run(&options, false, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(res, Err(Reject::HostMissing));
    assert!(out.starts_with(b"HTTP/1.0 400 Bad Request\r\n"));
    // HEAD gets the headers without the body.
    let (_, out) = run(&options, false, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(out.ends_with(b"Content-Length: 19\r\n\r\n"));
}

#[test]
fn limits_give_431() {
    let options = Options {
        limits: Limits {
            max_head_bytes: 256,
            max_headers: 8,
            ..Limits::default()
        },
        ..Options::default()
    };
    let long = "a".repeat(300);
    check_reject(&options, &valid(&[("X-Long", &long)]), Reject::HeadTooLarge);
    let many: Vec<(&str, &str)> = (0..4).map(|_| ("X", "y")).collect();
    check_reject(&options, &valid(&many), Reject::TooManyHeaders);
    // Exactly at the limits is fine.
    let fits = valid(&[("X", "y"), ("Y", "z"), ("Z", "w")]);
    check_upgrade(
        &Options {
            limits: Limits {
                max_head_bytes: fits.len(),
                max_headers: 8,
                ..Limits::default()
            },
            ..Options::default()
        },
        &fits,
    );
}

#[test]
fn default_limits_take_as_many_headers_as_proxies_send() {
    // nats-server (Go's HTTP server) takes any number within its 1 MiB head; 200 is what a
    // client behind a chain of proxies was seen to send.
    let names: Vec<String> = (0..200).map(|i| format!("X-Hop-{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    check_upgrade(&Options::default(), &valid(&many));
    let names: Vec<String> = (0..8200).map(|i| format!("X-{i}")).collect();
    let too_many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    check_reject(
        &Options::default(),
        &valid(&too_many),
        Reject::TooManyHeaders,
    );
}

#[test]
fn oversized_input_is_refused_without_waiting_for_more() {
    let policy = Policy::new(&Options {
        limits: Limits {
            max_head_bytes: 64,
            max_headers: 8,
            ..Limits::default()
        },
        ..Options::default()
    })
    .unwrap();
    let mut handshake = ServerHandshake::new(false);
    let mut out = Vec::new();
    let mut input = b"GET / HTTP/1.1\r\nX: ".to_vec();
    input.resize(64, b'a');
    assert_eq!(
        handshake.handle_input(&policy, &input, None, &mut out),
        Err(Reject::HeadTooLarge)
    );
}

#[test]
fn forwarded_for_takes_the_leftmost_valid_ip() {
    let check = |value: &str, expect: Option<&str>| {
        assert_eq!(
            forwarded_for(value.as_bytes()),
            expect.map(|ip| ip.parse().unwrap()),
            "{value}"
        );
    };
    check("10.1.2.3", Some("10.1.2.3"));
    check("10.1.2.3, 10.0.0.1", Some("10.1.2.3"));
    check("unknown, 10.0.0.1", Some("10.0.0.1"));
    check(" ::1 ", Some("::1"));
    check("[::1]", None);
    check("", None);
    check("01.2.3.4", None);
    // Only the first header line counts.
    let (upgrade, _) = check_upgrade(
        &Options::default(),
        &valid(&[("X-Forwarded-For", "x"), ("X-Forwarded-For", "1.2.3.4")]),
    );
    assert_eq!(upgrade.forwarded_for, None);
}

#[test]
fn user_agent_facts() {
    let check =
        |kind_path: &str, compression: bool, user_agent: &str, browser: bool, safari: bool| {
            let options = Options {
                compression,
                ..Options::default()
            };
            let input = request(
                &format!("GET {kind_path} HTTP/1.1"),
                &upgrade_headers(
                    "h",
                    &[
                        ("User-Agent", user_agent),
                        ("Sec-WebSocket-Extensions", "permessage-deflate"),
                    ],
                ),
            );
            let (upgrade, _) = check_upgrade(&options, &input);
            assert_eq!(
                (upgrade.browser, upgrade.safari_no_compressed_fragments),
                (browser, safari),
                "{kind_path} {user_agent}"
            );
        };
    let safari = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15";
    let chrome = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36";
    check("/", true, safari, true, true);
    check("/", false, safari, true, false);
    check("/", true, chrome, true, false);
    check("/", true, "mozilla/5.0", false, false);
    check("/", true, "nats.go", false, false);
    check("/mqtt", true, safari, true, true);
    check("/leafnode", true, safari, false, false);
}

#[test]
fn cookies_are_handed_back_for_clients_only() {
    let options = Options {
        jwt_cookie: Some("jwt".into()),
        user_cookie: Some("un".into()),
        pass_cookie: Some("pw".into()),
        token_cookie: Some("tok".into()),
        ..Options::default()
    };
    let cookie = [("Cookie", "jwt=eyJ; un=me; pw=s3cr3t!; tok=abc")];
    let (upgrade, _) = check_upgrade(&options, &valid(&cookie));
    assert_eq!(
        upgrade.cookies,
        Cookies {
            jwt: Some("eyJ".into()),
            user: Some("me".into()),
            pass: Some("s3cr3t!".into()),
            token: Some("abc".into())
        }
    );
    let input = request("GET /leafnode HTTP/1.1", &upgrade_headers("h", &cookie));
    let (upgrade, _) = check_upgrade(&options, &input);
    assert_eq!(upgrade.cookies, Cookies::default());
}

#[test]
fn byte_by_byte_equals_whole() {
    let policy = Policy::new(&Options {
        compression: true,
        ..Options::default()
    })
    .unwrap();
    let input = valid(&[
        ("Sec-WebSocket-Extensions", "permessage-deflate"),
        ("Nats-No-Masking", "true"),
    ]);
    let (whole, whole_out) = run(
        &Options {
            compression: true,
            ..Options::default()
        },
        false,
        input.as_bytes(),
    );
    let mut handshake = ServerHandshake::new(false);
    let mut out = Vec::new();
    let mut res = Ok(None);
    for len in 1..=input.len() {
        res = handshake.handle_input(
            &policy,
            &input.as_bytes()[..len],
            Some(1_795_426_914),
            &mut out,
        );
        if len < input.len() {
            assert_eq!(res, Ok(None));
        }
    }
    assert_eq!(res, whole);
    assert_eq!(out, whole_out);
}

/// Requests that reach every outcome, for the chunk invariance property.
fn sample_requests() -> Vec<String> {
    vec![
        valid(&[]),
        valid(&[
            ("Sec-WebSocket-Extensions", "permessage-deflate"),
            ("Cookie", "jwt=x"),
        ]),
        valid(&[("Origin", "http://evil.com")]),
        request("POST / HTTP/1.1", &upgrade_headers("h", &[])),
        request("GET / HTTP/1.1", &[]),
        request("GET / HTTP/2.0", &[("Host", "h")]),
        request(
            "GET /leafnode HTTP/1.0",
            &upgrade_headers("h", &[("Nats-No-Masking", "true")]),
        ),
        valid(&[("X-Long", &"a".repeat(400))]),
        valid(&(0..20).map(|_| ("X", "y")).collect::<Vec<_>>()),
        "garbage\r\n\r\n".to_owned(),
        valid(&[]).replace("\r\n", "\n"),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any split of the input gives the decision (and the bytes) that a single read of the input
    /// present at decision time gives.
    #[test]
    fn chunk_invariance(
        sample in 0..11usize,
        trailing in proptest::collection::vec(any::<u8>(), 0..8),
        cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..6),
        tls in any::<bool>(),
    ) {
        let options = Options {
            same_origin: true,
            compression: true,
            jwt_cookie: Some("jwt".into()),
            limits: Limits { max_head_bytes: 512, max_headers: 16, max_rejected_requests: 16 },
            ..Options::default()
        };
        let policy = Policy::new(&options).unwrap();
        let mut input = sample_requests()[sample].clone().into_bytes();
        input.extend_from_slice(&trailing);
        let mut ends: Vec<usize> = cuts.iter().map(|cut| cut.index(input.len() + 1)).collect();
        ends.push(input.len());
        ends.sort_unstable();

        let mut handshake = ServerHandshake::new(tls);
        let mut out = Vec::new();
        let mut res = Ok(None);
        let mut decided_at = input.len();
        for end in ends {
            res = handshake.handle_input(&policy, &input[..end], Some(7), &mut out);
            if !matches!(res, Ok(None)) {
                decided_at = end;
                break;
            }
        }
        let mut whole = ServerHandshake::new(tls);
        let mut whole_out = Vec::new();
        let whole_res = whole.handle_input(&policy, &input[..decided_at], Some(7), &mut whole_out);
        prop_assert_eq!(res, whole_res);
        prop_assert_eq!(out, whole_out);
    }
}
