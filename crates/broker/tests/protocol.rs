//! Table-driven protocol tests: exact bytes in, exact bytes out, as nats-server 2.9.10 answers.
#![allow(clippy::field_reassign_with_default)]

mod sim;

use std::time::Duration;

use broker::{CloseReason, Config};
use sim::Sim;

/// One client sends `input` (after its INFO); checks everything it receives and whether it was
/// closed, and why.
fn check(input: &str, expect_out: &str, expect_close: Option<CloseReason>) {
    check_with(Config::default(), input, expect_out, expect_close);
}

fn check_with(config: Config, input: &str, expect_out: &str, expect_close: Option<CloseReason>) {
    let mut sim = Sim::new(config);
    let c = sim.client();
    sim.send(c, input);
    let out = sim.take_str(c);
    assert_eq!(out, expect_out, "input {input:?}");
    assert_eq!(sim.closed.get(&c).copied(), expect_close, "input {input:?}");
}

const QUIET: &str = "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n";

#[test]
fn lexical_rules() {
    check("PING\r\n", "PONG\r\n", None);
    check("ping\r\n", "PONG\r\n", None);
    check("PiNg\n", "PONG\r\n", None);
    check("PINGXYZ foo\r\n", "PONG\r\n", None);
    check("PING\rPING\r\n", "PONG\r\n", None);
    check("PONG\r\n+OK\r\n", "", None);
    check("INFO {}\r\n", "", None);
    check(
        "\r\n",
        "-ERR 'Unknown Protocol Operation'\r\n",
        Some(CloseReason::ProtocolViolation),
    );
    check(
        "FOO\r\n",
        "-ERR 'Unknown Protocol Operation'\r\n",
        Some(CloseReason::ProtocolViolation),
    );
    check(
        "MSG foo 1 2\r\nhi\r\n",
        "-ERR 'Unknown Protocol Operation'\r\n",
        Some(CloseReason::ProtocolViolation),
    );
    check(
        "PUBfoo 3\r\n",
        "-ERR 'Unknown Protocol Operation'\r\n",
        Some(CloseReason::ProtocolViolation),
    );
    check(
        "UNSUB\r\n",
        "-ERR 'Unknown Protocol Operation'\r\n",
        Some(CloseReason::ProtocolViolation),
    );
    check("-ERR 'x'\r\n", "", Some(CloseReason::ParseError));
}

#[test]
fn defaults_before_connect_are_verbose() {
    check("SUB foo 1\r\n", "+OK\r\n", None);
    check("CONNECT {}\r\n", "+OK\r\n", None);
    check("CONNECT{\"verbose\":true}\r\n", "+OK\r\n", None);
    check("CONNECT {\"verbose\":false}\r\nSUB foo 1\r\n", "", None);
}

#[test]
fn connect_errors() {
    check("CONNECT {\r\n", "", Some(CloseReason::ProtocolViolation));
    check("CONNECT {} x\r\n", "", Some(CloseReason::ProtocolViolation));
    check(
        "CONNECT {\"verbose\":\"no\"}\r\n",
        "",
        Some(CloseReason::ProtocolViolation),
    );
    check(
        "CONNECT {\"protocol\":2}\r\n",
        "-ERR 'invalid client protocol'\r\n",
        Some(CloseReason::BadClientProtocolVersion),
    );
    check(
        "CONNECT {\"protocol\":-1}\r\n",
        "-ERR 'invalid client protocol'\r\n",
        Some(CloseReason::BadClientProtocolVersion),
    );
    check(
        "CONNECT {\"no_responders\":true}\r\n",
        "-ERR 'no responders requires headers support'\r\n",
        Some(CloseReason::NoRespondersRequiresHeaders),
    );
    check(
        "CONNECT {\"account\":\"A\"}\r\n",
        "-ERR 'Authorization Violation'\r\n",
        Some(CloseReason::AuthenticationFailure),
    );
    check(
        "CONNECT {\"new_account\":true}\r\n",
        "-ERR 'Authorization Violation'\r\n",
        Some(CloseReason::AuthenticationFailure),
    );
    check(
        "CONNECT {\"unknown\":1,\"account\":\"\"}\r\n",
        "+OK\r\n",
        None,
    );
}

#[test]
fn pub_sub_basics() {
    check(
        &format!("{QUIET}SUB foo 1\r\nPUB foo 2\r\nhi\r\n"),
        "MSG foo 1 2\r\nhi\r\n",
        None,
    );
    check(
        &format!("{QUIET}SUB foo 1\r\nPUB   foo \t rep   3  \r\nabc\r\n"),
        "MSG foo 1 rep 3\r\nabc\r\n",
        None,
    );
    check(
        &format!("{QUIET}SUB foo 1\r\nPUB foo 0\r\n\r\n"),
        "MSG foo 1 0\r\n\r\n",
        None,
    );
    check(
        &format!("{QUIET}SUB foo 1\r\nPUB foo 003\nabc\r\n"),
        "MSG foo 1 3\r\nabc\r\n",
        None,
    );
    // One copy per matching subscription; the server promises no order between them.
    let mut sim = Sim::new(Config::default());
    let c = sim.connected_client("{\"verbose\":false}");
    sim.send(c, "SUB foo 1\r\nSUB > 2\r\nPUB foo 1\r\nx\r\n");
    let out = sim.take_str(c);
    assert_eq!(out.len(), 2 * "MSG foo 1 1\r\nx\r\n".len(), "{out}");
    assert!(out.contains("MSG foo 1 1\r\nx\r\n") && out.contains("MSG foo 2 1\r\nx\r\n"));
    check(
        &format!("{QUIET}SUB foo 1\r\nPUB foo a..b 1\r\nx\r\n"),
        "MSG foo 1 a..b 1\r\nx\r\n",
        None,
    );
}

#[test]
fn pub_errors() {
    for bad in [
        "PUB foo\r\n",
        "PUB a b c 1\r\n",
        "PUB foo -1\r\n",
        "PUB foo +3\r\n",
        "PUB foo 1234567890\r\n",
        "PUB foo abc\r\n",
    ] {
        check(
            &format!("{QUIET}{bad}"),
            "",
            Some(CloseReason::ProtocolViolation),
        );
    }
    check(
        &format!("{QUIET}PUB foo 3\r\nabcX"),
        "-ERR 'Unknown Protocol Operation'\r\n",
        Some(CloseReason::ProtocolViolation),
    );
    check(
        &format!("{QUIET}PUB foo 3\r\nabc\n"),
        "-ERR 'Unknown Protocol Operation'\r\n",
        Some(CloseReason::ProtocolViolation),
    );
    check(
        &format!("{QUIET}PUB foo 1048577\r\n"),
        "-ERR 'Maximum Payload Violation'\r\n",
        Some(CloseReason::MaxPayloadExceeded),
    );
}

#[test]
fn verbose_and_pedantic() {
    check(
        "CONNECT {\"verbose\":true,\"pedantic\":true}\r\nPUB foo.* 3\r\nabc\r\n",
        "+OK\r\n-ERR 'Invalid Publish Subject'\r\n+OK\r\n",
        None,
    );
    check(
        "CONNECT {\"verbose\":true}\r\nPING\r\n",
        "+OK\r\nPONG\r\n",
        None,
    );
    check("UNSUB 99\r\n", "+OK\r\n", None);
    check("SUB foo..bar 1\r\n", "-ERR 'Invalid Subject'\r\n", None);
    check("SUB foo 1\r\nSUB bar 1\r\n", "+OK\r\n+OK\r\n", None);
    check(&format!("{QUIET}PUB foo.* 3\r\nabc\r\n"), "", None);
}

#[test]
fn sub_unsub_grammar() {
    for bad in ["SUB foo\r\n", "SUB a b c d\r\n", "UNSUB 1 2 3\r\n"] {
        check(
            &format!("{QUIET}{bad}"),
            "",
            Some(CloseReason::ProtocolViolation),
        );
    }
    check(
        &format!(
            "{QUIET}SUB foo 1\r\nUNSUB 1 2\r\nPUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nPUB foo 1\r\nc\r\n"
        ),
        "MSG foo 1 1\r\na\r\nMSG foo 1 1\r\nb\r\n",
        None,
    );
    check(
        &format!("{QUIET}SUB foo 1\r\nUNSUB 1\r\nPUB foo 1\r\na\r\n"),
        "",
        None,
    );
    check(
        &format!("{QUIET}SUB foo 1\r\nUNSUB 1 x\r\nPUB foo 1\r\na\r\n"),
        "",
        None,
    );
    check(
        &format!("{QUIET}SUB foo 1\r\nSUB bar 1\r\nPUB bar 1\r\na\r\nPUB foo 1\r\nb\r\n"),
        "MSG foo 1 1\r\nb\r\n",
        None,
    );
    check(
        &format!("{QUIET}SUB foo q1 1\r\nPUB foo 1\r\na\r\n"),
        "MSG foo 1 1\r\na\r\n",
        None,
    );
    check(
        "SUB foo _sys_ 1\r\n",
        "-ERR 'Permissions Violation for Subscription to \"foo\" using queue \"_sys_\"'\r\n",
        None,
    );
}

#[test]
fn max_control_line() {
    let mut config = Config::default();
    config.limits.max_control_line = 64;
    let ok = format!("{QUIET}SUB {} 1\r\n", "x".repeat(62));
    check_with(config.clone(), &ok, "", None);
    let bad = format!("{QUIET}SUB {} 1\r\n", "x".repeat(63));
    check_with(
        config.clone(),
        &bad,
        "-ERR 'maximum control line exceeded'\r\n",
        Some(CloseReason::MaxControlLineExceeded),
    );
    let endless = format!("{QUIET}SUB {}", "x".repeat(100));
    check_with(
        config,
        &endless,
        "-ERR 'maximum control line exceeded'\r\n",
        Some(CloseReason::MaxControlLineExceeded),
    );
}

#[test]
fn headers() {
    check(
        &format!("{QUIET}HPUB foo 0 0\r\n\r\n"),
        "",
        Some(CloseReason::ProtocolViolation),
    );
    let hq = "CONNECT {\"verbose\":false,\"headers\":true}\r\n";
    check(
        &format!("{hq}SUB foo 1\r\nHPUB foo 18 20\r\nNATS/1.0\r\nA: B\r\n\r\nhi\r\n"),
        "HMSG foo 1 18 20\r\nNATS/1.0\r\nA: B\r\n\r\nhi\r\n",
        None,
    );
    check(
        &format!("{hq}SUB foo 1\r\nHPUB foo 0 2\r\nhi\r\n"),
        "MSG foo 1 2\r\nhi\r\n",
        None,
    );
    check(
        &format!("{hq}HPUB foo 3 2\r\n"),
        "",
        Some(CloseReason::ProtocolViolation),
    );
    check(
        &format!("{hq}SUB foo 1\r\nHPUB foo rep 7 9\r\nGARBAGEhi\r\n"),
        "HMSG foo 1 rep 7 9\r\nGARBAGEhi\r\n",
        None,
    );
}

#[test]
fn header_stripping_and_no_responders() {
    let mut sim = Sim::new(Config::default());
    let plain = sim.connected_client("{\"verbose\":false}");
    let hdr = sim.connected_client("{\"verbose\":false,\"headers\":true,\"no_responders\":true}");
    sim.send(plain, "SUB foo 1\r\n");
    sim.send(hdr, "HPUB foo 18 20\r\nNATS/1.0\r\nA: B\r\n\r\nhi\r\n");
    assert_eq!(sim.take_str(plain), "MSG foo 1 2\r\nhi\r\n");
    sim.send(hdr, "SUB _INBOX.x 7\r\nPUB nobody _INBOX.x 0\r\n\r\n");
    assert_eq!(
        sim.take_str(hdr),
        "HMSG _INBOX.x 7 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"
    );
    // Somebody listening: no 503.
    sim.send(plain, "SUB svc 2\r\n");
    sim.send(hdr, "PUB svc _INBOX.x 0\r\n\r\n");
    assert_eq!(sim.take_str(hdr), "");
    assert_eq!(sim.take_str(plain), "MSG svc 2 _INBOX.x 0\r\n\r\n");
}

#[test]
fn echo_off() {
    let mut sim = Sim::new(Config::default());
    let a = sim.connected_client("{\"verbose\":false,\"echo\":false}");
    let b = sim.connected_client("{\"verbose\":false}");
    sim.send(a, "SUB foo 1\r\nSUB foo q 2\r\n");
    sim.send(b, "SUB foo 1\r\n");
    sim.send(a, "PUB foo 1\r\nx\r\n");
    assert_eq!(sim.take_str(a), "");
    assert_eq!(sim.take_str(b), "MSG foo 1 1\r\nx\r\n");
    sim.send(b, "PUB foo 1\r\ny\r\n");
    assert_eq!(sim.take_str(a), "MSG foo 1 1\r\ny\r\nMSG foo 2 1\r\ny\r\n");
}

#[test]
fn queue_groups_one_per_group_and_fair() {
    let mut sim = Sim::new(Config::default());
    let members: Vec<_> = (0..2)
        .map(|_| sim.connected_client("{\"verbose\":false}"))
        .collect();
    for m in &members {
        sim.send(*m, "SUB work q1 1\r\n");
    }
    let publ = sim.connected_client("{\"verbose\":false}");
    for _ in 0..200 {
        sim.send(publ, "PUB work 1\r\nx\r\n");
    }
    let counts: Vec<usize> = members
        .iter()
        .map(|m| sim.take_str(*m).matches("MSG").count())
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), 200);
    assert!(counts.iter().all(|c| *c > 60), "{counts:?}");
}

/// A queue group that grew past the sublist's index threshold and shrank again still spreads
/// messages over every remaining member.
#[test]
fn large_queue_group_fair_after_removals() {
    let mut sim = Sim::new(Config::default());
    let member = sim.connected_client("{\"verbose\":false}");
    for sid in 1..=40 {
        sim.send(member, &format!("SUB work q1 {sid}\r\n"));
    }
    for sid in 11..=40 {
        sim.send(member, &format!("UNSUB {sid}\r\n"));
    }
    let publ = sim.connected_client("{\"verbose\":false}");
    for _ in 0..1000 {
        sim.send(publ, "PUB work 1\r\nx\r\n");
    }
    let out = sim.take_str(member);
    let counts: Vec<usize> = (1..=10)
        .map(|sid| out.matches(&format!("MSG work {sid} 1\r\n")).count())
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), 1000, "{counts:?}");
    assert!(counts.iter().all(|c| *c > 50), "{counts:?}");
}

#[test]
fn reserved_subjects() {
    check(
        &format!("{QUIET}PUB _GR_.x 1\r\na\r\n"),
        "-ERR 'Permissions Violation for Publish to \"_GR_.x\"'\r\n",
        None,
    );
    check(
        &format!("{QUIET}PUB foo _R_.x 1\r\na\r\n"),
        "-ERR 'Permissions Violation for Publish with Reply of \"_R_.x\"'\r\n",
        None,
    );
    check(&format!("{QUIET}PUB foo _R_. 1\r\na\r\n"), "", None);
}

#[test]
fn limits() {
    let mut config = Config::default();
    config.limits.max_subscriptions = 1;
    check_with(
        config.clone(),
        &format!("{QUIET}SUB a 1\r\nSUB b 2\r\n"),
        "-ERR 'maximum subscriptions exceeded'\r\n",
        None,
    );
    config.limits.max_subscription_tokens = Some(2);
    config.limits.max_subscriptions = 0;
    check_with(
        config,
        &format!("{QUIET}SUB a.b.c 1\r\n"),
        "-ERR 'Permissions Violation for Subscription to \"a.b.c\", too many tokens'\r\n",
        None,
    );
    let mut config = Config::default();
    config.limits.max_connections = 1;
    let mut sim = Sim::new(config);
    let _first = sim.client();
    let second = sim.connect_kind(broker::ConnectionType::WebSocket);
    let out = sim.take_str(second);
    assert!(out.starts_with("INFO {"));
    assert!(
        out.ends_with(" \r\n-ERR 'maximum connections exceeded'\r\n"),
        "{out}"
    );
    assert_eq!(
        sim.closed.get(&second),
        Some(&CloseReason::MaxConnectionsExceeded)
    );
    assert_eq!(
        sim.broker.stats().connections,
        1,
        "the refused client was never counted"
    );
    assert_eq!(sim.broker.stats().total_connections, 2);
}

#[test]
fn info_contents_per_transport() {
    let mut config = Config::default();
    config.server_id = "NTEST".into();
    config.client_listener.port = 16101;
    config.websocket_listener = Some(broker::ListenerInfo {
        host: "127.0.0.1".into(),
        port: 16103,
        tls_required: true,
        tls_verify: false,
        tls_available: false,
    });
    config.ws_connect_urls = vec!["ws.example:443".into()];
    let mut sim = Sim::new(config);
    let tcp = sim.connect_kind(broker::ConnectionType::Standard);
    assert_eq!(
        sim.take_str(tcp),
        "INFO {\"server_id\":\"NTEST\",\"server_name\":\"NTEST\",\"version\":\"2.9.10\",\"proto\":1,\"go\":\"rust\",\"host\":\"0.0.0.0\",\"port\":16101,\"headers\":true,\"max_payload\":1048576,\"client_id\":1,\"client_ip\":\"127.0.0.1\"} \r\n"
    );
    let ws = sim.connect_kind(broker::ConnectionType::WebSocket);
    assert_eq!(
        sim.take_str(ws),
        "INFO {\"server_id\":\"NTEST\",\"server_name\":\"NTEST\",\"version\":\"2.9.10\",\"proto\":1,\"go\":\"rust\",\"host\":\"127.0.0.1\",\"port\":16103,\"headers\":true,\"tls_required\":true,\"max_payload\":1048576,\"client_id\":2,\"client_ip\":\"127.0.0.1\",\"connect_urls\":[\"ws.example:443\"]} \r\n"
    );
}

#[test]
fn pings_and_stale_connection() {
    let mut config = Config::default();
    config.ping_interval = Duration::from_secs(1);
    config.ping_max = 2;
    let mut sim = Sim::new(config);
    let c = sim.client();
    // Before CONNECT the timer runs with the full interval.
    sim.advance(Duration::from_millis(999));
    assert_eq!(sim.take_str(c), "");
    sim.advance(Duration::from_millis(1));
    assert_eq!(sim.take_str(c), "PING\r\n");
    sim.advance(Duration::from_secs(1));
    assert_eq!(sim.take_str(c), "PING\r\n");
    sim.advance(Duration::from_secs(1));
    assert_eq!(sim.take_str(c), "-ERR 'Stale Connection'\r\n");
    assert_eq!(sim.closed.get(&c), Some(&CloseReason::StaleConnection));
}

#[test]
fn answering_pings_keeps_connection() {
    let mut config = Config::default();
    config.ping_interval = Duration::from_secs(1);
    let mut sim = Sim::new(config);
    let c = sim.connected_client("{\"verbose\":false}");
    for _ in 0..20 {
        sim.advance(Duration::from_millis(500));
        let out = sim.take_str(c);
        if out.contains("PING") {
            sim.send(c, "PONG\r\n");
        }
    }
    assert!(!sim.closed.contains_key(&c));
    let info = sim.broker.client_info(c, sim.now).unwrap();
    assert!(info.rtt.is_some());
}

#[test]
fn first_ping_after_connect_is_short() {
    let mut sim = Sim::new(Config::default());
    let c = sim.connected_client("{\"verbose\":false}");
    sim.advance(Duration::from_millis(1999));
    assert_eq!(sim.take_str(c), "");
    sim.advance(Duration::from_millis(401));
    assert_eq!(sim.take_str(c), "PING\r\n");
}

#[test]
fn slow_consumer_pending_bytes() {
    let mut config = Config::default();
    config.limits.max_pending = 1000;
    let mut sim = Sim::new(config);
    let slow = sim.connected_client("{\"verbose\":false}");
    let other = sim.connected_client("{\"verbose\":false}");
    let publ = sim.connected_client("{\"verbose\":false}");
    sim.send(slow, "SUB foo 1\r\n");
    sim.send(other, "SUB foo 1\r\n");
    sim.reading.insert(slow, false);
    for _ in 0..20 {
        sim.send(publ, &format!("PUB foo 100\r\n{}\r\n", "x".repeat(100)));
    }
    // Past half of max_pending the publisher is stalled (nats-server `stallDuration`):
    // 200, 500 and 700 ms as the slow consumer fills (117 bytes a message: 585, 702 and 819
    // owed of 1000), then the next message would exceed max_pending and it is cut.
    assert!(!sim.closed.contains_key(&slow));
    assert!(sim.broker.is_stalled(publ));
    sim.advance(Duration::from_millis(1399));
    assert!(!sim.closed.contains_key(&slow));
    sim.advance(Duration::from_millis(1));
    assert_eq!(
        sim.resumed.get(..3),
        Some(&[200, 500, 700].map(|ms| (publ, Some(Duration::from_millis(ms))))[..])
    );
    // The rest reaches `other` in one go; it drains at once, so whatever stall that causes
    // ends when it is written, not by the clock.
    assert!(sim.resumed.iter().skip(3).all(|r| r.1.is_none()));
    assert_eq!(
        sim.closed.get(&slow),
        Some(&CloseReason::SlowConsumerPendingBytes)
    );
    assert!(!sim.broker.is_stalled(publ));
    assert_eq!(sim.take(slow), b"", "nothing more is flushed");
    assert!(!sim.closed.contains_key(&other));
    assert!(!sim.closed.contains_key(&publ));
    assert_eq!(sim.take_str(other).matches("MSG foo").count(), 20);
    assert_eq!(sim.broker.stats().slow_consumers, 1);
}

#[test]
fn slow_consumer_write_deadline() {
    let mut config = Config::default();
    config.write_deadline = Duration::from_secs(2);
    let mut sim = Sim::new(config);
    let slow = sim.connected_client("{\"verbose\":false}");
    let publ = sim.connected_client("{\"verbose\":false}");
    sim.send(slow, "SUB foo 1\r\n");
    sim.reading.insert(slow, false);
    sim.send(publ, "PUB foo 1\r\nx\r\n");
    sim.advance(Duration::from_millis(1900));
    assert!(!sim.closed.contains_key(&slow));
    sim.advance(Duration::from_millis(200));
    assert_eq!(
        sim.closed.get(&slow),
        Some(&CloseReason::SlowConsumerWriteDeadline)
    );
    assert!(!sim.closed.contains_key(&publ));
}

#[test]
fn transport_backlog_counts_as_pending_output() {
    // WebSocket pongs the transport owes a peer that never reads: they count toward the write
    // deadline although the client's queue is empty.
    let mut config = Config::default();
    config.write_deadline = Duration::from_secs(2);
    config.limits.max_pending = 1000;
    let mut sim = Sim::new(config);
    let stuck = sim.connected_client("{\"verbose\":false}");
    sim.reading.insert(stuck, false);
    let now = sim.now;
    sim.broker.set_transport_backlog(stuck, 64, now);
    sim.advance(Duration::from_millis(1900));
    assert!(!sim.closed.contains_key(&stuck));
    // Progress (the backlog shrank) restarts the clock.
    let now = sim.now;
    sim.broker.set_transport_backlog(stuck, 32, now);
    sim.advance(Duration::from_millis(1900));
    assert!(!sim.closed.contains_key(&stuck));
    sim.advance(Duration::from_millis(200));
    assert_eq!(
        sim.closed.get(&stuck),
        Some(&CloseReason::SlowConsumerWriteDeadline)
    );
    // The backlog and the first PING the client never read.
    assert_eq!(
        sim.slow,
        [(stuck, CloseReason::SlowConsumerWriteDeadline, 32 + 6)]
    );

    // Written out in time: no slow consumer.
    let fine = sim.connected_client("{\"verbose\":false}");
    let now = sim.now;
    sim.broker.set_transport_backlog(fine, 64, now);
    sim.advance(Duration::from_millis(1000));
    let now = sim.now;
    sim.broker.set_transport_backlog(fine, 0, now);
    sim.advance(Duration::from_secs(5));
    assert!(!sim.closed.contains_key(&fine));

    // The backlog and the queue together are bounded by max_pending.
    let full = sim.connected_client("{\"verbose\":false}");
    let publ = sim.connected_client("{\"verbose\":false}");
    sim.send(full, "SUB foo 1\r\n");
    sim.reading.insert(full, false);
    let now = sim.now;
    sim.broker.set_transport_backlog(full, 900, now);
    sim.send(publ, &format!("PUB foo 100\r\n{}\r\n", "x".repeat(100)));
    assert_eq!(
        sim.closed.get(&full),
        Some(&CloseReason::SlowConsumerPendingBytes)
    );
    let over = sim.connected_client("{\"verbose\":false}");
    let now = sim.now;
    sim.broker.set_transport_backlog(over, 1001, now);
    sim.pump();
    assert_eq!(
        sim.closed.get(&over),
        Some(&CloseReason::SlowConsumerPendingBytes)
    );
    assert_eq!(sim.broker.stats().slow_consumers, 3);
}

#[test]
fn slow_consumers_before_connect_count_without_auth() {
    // nats-server exempts only a client it expects a CONNECT from (auth required) and only
    // from the write-deadline count; without auth it counts and logs the client as any other.
    let mut config = Config::default();
    config.write_deadline = Duration::from_secs(1);
    let mut sim = Sim::new(config);
    let early = sim.client();
    sim.reading.insert(early, false);
    let now = sim.now;
    sim.broker.set_transport_backlog(early, 10, now);
    sim.advance(Duration::from_millis(1100));
    assert_eq!(
        sim.closed.get(&early),
        Some(&CloseReason::SlowConsumerWriteDeadline)
    );
    assert_eq!(
        sim.slow,
        [(early, CloseReason::SlowConsumerWriteDeadline, 10)]
    );
    assert_eq!(sim.broker.stats().slow_consumers, 1);
}

#[test]
fn counters() {
    let mut sim = Sim::new(Config::default());
    let a = sim.connected_client("{\"verbose\":false}");
    let b = sim.connected_client("{\"verbose\":false}");
    sim.send(a, "SUB foo 1\r\nSUB bar.* q1 2\r\n");
    sim.send(b, "SUB foo 1\r\n");
    sim.send(a, "PUB foo 5\r\nhello\r\n");
    let stats = sim.broker.stats();
    assert_eq!(
        (
            stats.in_msgs,
            stats.out_msgs,
            stats.in_bytes,
            stats.out_bytes
        ),
        (1, 2, 5, 10)
    );
    assert_eq!(stats.connections, 2);
    assert_eq!(stats.subscriptions, 3);
    let info = sim.broker.client_info(a, sim.now).unwrap();
    assert_eq!(
        (info.in_msgs, info.out_msgs, info.in_bytes, info.out_bytes),
        (1, 1, 5, 5)
    );
    assert_eq!(info.subscriptions.len(), 2);
    assert_eq!(info.subscriptions[0].msgs, 1);
    sim.broker
        .close_client(a, sim.now, CloseReason::ClientClosed);
    sim.pump();
    sim.broker.remove_client(a, sim.now);
    assert_eq!(sim.broker.stats().subscriptions, 1);
    assert_eq!(sim.broker.stats().connections, 1);
    let closed: Vec<_> = sim.broker.closed_clients().collect();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].reason, Some(CloseReason::ClientClosed));
    assert_eq!(closed[0].subscriptions.len(), 2);
}

#[test]
fn reload_max_payload_and_first_ping_info() {
    let mut sim = Sim::new(Config::default());
    let old = sim.connected_client("{\"verbose\":false,\"protocol\":1}");
    let proto0 = sim.connected_client("{\"verbose\":false}");
    let mut config = Config::default();
    config.limits.max_payload = 100;
    sim.broker.set_config(config);
    // Protocol 1: the first PING gets its PONG and then an INFO (new max_payload), in this
    // order on nats-server 2.9.10 (`processPing` queues the PONG first).
    sim.send(old, "PING\r\n");
    let out = sim.take_str(old);
    assert!(out.starts_with("PONG\r\nINFO {"), "{out}");
    assert!(out.contains("\"max_payload\":100"), "{out}");
    assert!(out.ends_with(" \r\n"), "{out}");
    sim.send(old, "PING\r\n");
    assert_eq!(sim.take_str(old), "PONG\r\n");
    // Protocol 0: never another INFO.
    sim.send(proto0, "PING\r\n");
    assert_eq!(sim.take_str(proto0), "PONG\r\n");
    // The new limit applies to existing connections at once.
    sim.send(proto0, "PUB foo 101\r\n");
    assert_eq!(sim.take_str(proto0), "-ERR 'Maximum Payload Violation'\r\n");
    assert_eq!(
        sim.closed.get(&proto0),
        Some(&CloseReason::MaxPayloadExceeded)
    );
}

#[test]
fn ping_skipped_after_activity() {
    let mut config = Config::default();
    config.ping_interval = Duration::from_secs(10);
    let mut sim = Sim::new(config);
    let c = sim.connected_client("{\"verbose\":false}");
    // First ping always goes out (RTT), about 2 s after CONNECT.
    sim.advance(Duration::from_millis(2500));
    assert_eq!(sim.take_str(c), "PING\r\n");
    sim.send(c, "PONG\r\n");
    // Activity within the interval suppresses the next PING.
    sim.advance(Duration::from_secs(5));
    sim.send(c, "SUB foo 1\r\n");
    sim.advance(Duration::from_secs(6));
    assert_eq!(sim.take_str(c), "");
    // Idle for a full interval: PING again.
    sim.advance(Duration::from_secs(10));
    assert_eq!(sim.take_str(c), "PING\r\n");
}

#[test]
fn split_input_gives_same_output() {
    let input = "CONNECT {\"verbose\":true,\"headers\":true}\r\nSUB foo 1\r\nSUB bar q 2\r\nPUB foo r 5\r\nhello\r\nHPUB bar 12 14\r\nNATS/1.0\r\n\r\nhi\r\nUNSUB 1\r\nPUB foo 1\r\nx\r\nPING\r\n";
    let whole = {
        let mut sim = Sim::new(Config::default());
        let c = sim.client();
        sim.send(c, input);
        sim.take_str(c)
    };
    for step in [1usize, 2, 3, 7, 13] {
        let mut sim = Sim::new(Config::default());
        let c = sim.client();
        for chunk in input.as_bytes().chunks(step) {
            sim.send_bytes(c, chunk);
        }
        assert_eq!(sim.take_str(c), whole, "step {step}");
    }
    assert!(whole.ends_with("PONG\r\n"));
}

#[test]
fn lame_duck_and_shutdown() {
    let mut sim = Sim::new(Config::default());
    let p1 = sim.connected_client("{\"verbose\":false,\"protocol\":1}");
    let p0 = sim.connected_client("{\"verbose\":false}");
    let fresh = sim.connected_client("{\"verbose\":false,\"protocol\":1}");
    sim.send(p1, "PING\r\n");
    sim.send(p0, "PING\r\n");
    sim.take(p1);
    sim.take(p0);
    sim.broker.lame_duck_notice(sim.now);
    sim.pump();
    let out = sim.take_str(p1);
    assert!(
        out.starts_with("INFO {") && out.ends_with(",\"ldm\":true} \r\n"),
        "{out}"
    );
    assert_eq!(sim.take_str(p0), "");
    assert_eq!(sim.take_str(fresh), "", "no INFO before the first PONG");
    sim.broker.close_all(sim.now, CloseReason::ServerShutdown);
    sim.pump();
    for c in [p1, p0, fresh] {
        assert_eq!(sim.closed.get(&c), Some(&CloseReason::ServerShutdown));
    }
    assert_eq!(sim.broker.stats().connections, 0);
}

#[test]
fn more_catalogue_rows() {
    check(
        &format!("{QUIET}PUB foo $JS.ACK.x 1\r\na\r\n"),
        "-ERR 'Permissions Violation for Publish with Reply of \"$JS.ACK.x\"'\r\n",
        None,
    );
    check(
        &format!("{QUIET}PUB foo _GR_.x 1\r\na\r\n"),
        "-ERR 'Permissions Violation for Publish with Reply of \"_GR_.x\"'\r\n",
        None,
    );
    check(
        "CONNECT {\"verbose\":false,\"headers\":true}\r\nHPUB foo 2 1048577\r\n",
        "-ERR 'Maximum Payload Violation'\r\n",
        Some(CloseReason::MaxPayloadExceeded),
    );
    let long_connect = format!("CONNECT {{\"name\":\"{}\"}}\r\n", "n".repeat(5000));
    check(
        &long_connect,
        "-ERR 'maximum control line exceeded'\r\n",
        Some(CloseReason::MaxControlLineExceeded),
    );
    // `+OK` is sent before delivery of the client's own message.
    check(
        "CONNECT {\"verbose\":true}\r\nSUB foo 1\r\nPUB foo 1\r\nx\r\n",
        "+OK\r\n+OK\r\n+OK\r\nMSG foo 1 1\r\nx\r\n",
        None,
    );
    // A second CONNECT re-runs the procedure.
    check(
        "CONNECT {\"verbose\":false}\r\nCONNECT {\"verbose\":true}\r\nPING\r\n",
        "+OK\r\nPONG\r\n",
        None,
    );
}

mod split_props {
    use super::*;
    use proptest::prelude::*;

    fn op() -> impl Strategy<Value = String> {
        let subject = prop_oneof![Just("foo"), Just("foo.bar"), Just("bar"), Just("x.y")];
        let pattern = prop_oneof![
            Just("foo"),
            Just("foo.*"),
            Just(">"),
            Just("bar"),
            Just("x.>")
        ];
        prop_oneof![
            Just("PING\r\n".to_owned()),
            (subject.clone(), "[a-z]{0,20}")
                .prop_map(|(s, p)| format!("PUB {s} {}\r\n{p}\r\n", p.len())),
            (subject, "[a-z]{0,8}").prop_map(|(s, p)| format!(
                "HPUB {s} r 12 {}\r\nNATS/1.0\r\n\r\n{p}\r\n",
                p.len() + 12
            )),
            (pattern, 1..5u8, proptest::bool::ANY).prop_map(|(p, sid, q)| if q {
                format!("SUB {p} g {sid}\r\n")
            } else {
                format!("SUB {p} {sid}\r\n")
            }),
            (1..5u8, 0..3u8).prop_map(|(sid, max)| format!("UNSUB {sid} {max}\r\n")),
        ]
    }

    fn run(input: &[u8], cuts: &[usize]) -> (String, String, Option<CloseReason>) {
        let mut sim = Sim::new(Config::default());
        let a = sim.connected_client("{\"verbose\":true,\"headers\":true}");
        let b = sim.connected_client("{\"verbose\":false}");
        sim.send(b, "SUB > 9\r\nSUB foo g 8\r\n");
        let mut prev = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            sim.send_bytes(a, &input[prev..cut]);
            prev = cut;
        }
        (
            sim.take_str(a),
            sim.take_str(b),
            sim.closed.get(&a).copied(),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever way a client's bytes are split across reads, every client sees the same bytes.
        #[test]
        fn session_output_is_split_invariant(
            ops in prop::collection::vec(op(), 1..15),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let input = ops.concat().into_bytes();
            let whole = run(&input, &[]);
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
            points.sort_unstable();
            prop_assert_eq!(&run(&input, &points), &whole);
        }
    }
}

/// Large payloads are queued by reference: the bytes each subscriber gets are the same as for
/// small ones, with and without headers, whole or split across reads.
#[test]
fn large_payload_fanout_and_header_stripping() {
    let body = "y".repeat(3000);
    let hdr = "NATS/1.0\r\nA: B\r\n\r\n";
    let input = format!(
        "PUB foo r {}\r\n{body}\r\nHPUB foo {} {}\r\n{hdr}{body}\r\n",
        body.len(),
        hdr.len(),
        hdr.len() + body.len()
    );
    for split in [input.len(), 7, 1500, 3100] {
        let mut sim = Sim::new(Config::default());
        let plain = sim.connected_client("{\"verbose\":false}");
        let with_hdrs = sim.connected_client("{\"verbose\":false,\"headers\":true}");
        let publ = sim.connected_client("{\"verbose\":false,\"headers\":true}");
        sim.send(plain, "SUB foo 1\r\n");
        sim.send(with_hdrs, "SUB f* 9\r\nSUB foo 22\r\n");
        let (a, b) = input.split_at(split);
        sim.send(publ, a);
        sim.send(publ, b);
        assert_eq!(
            sim.take_str(plain),
            format!("MSG foo 1 r 3000\r\n{body}\r\nMSG foo 1 3000\r\n{body}\r\n"),
            "split {split}"
        );
        assert_eq!(
            sim.take_str(with_hdrs),
            format!("MSG foo 22 r 3000\r\n{body}\r\nHMSG foo 22 18 3018\r\n{hdr}{body}\r\n"),
            "split {split}"
        );
    }
}

/// Huge configured durations never overflow `Instant` arithmetic: the deadlines are simply
/// never reached.
#[test]
fn huge_durations_do_not_overflow() {
    let mut cfg = Config::default();
    cfg.ping_interval = Duration::MAX;
    cfg.write_deadline = Duration::MAX;
    cfg.auth_timeout = Duration::MAX;
    cfg.auth.token = Some("s3cr3t".to_owned());
    let mut sim = Sim::new(cfg);
    let waiting = sim.client();
    let a = sim.connected_client("{\"verbose\":false,\"auth_token\":\"s3cr3t\"}");
    sim.send(a, "SUB foo 1\r\nPUB foo 2\r\nhi\r\n");
    sim.advance(Duration::from_secs(3600));
    assert!(sim.broker.is_open(waiting));
    // The first PING comes after at most 2 s (plus jitter); the next never does.
    assert_eq!(sim.take_str(a), "MSG foo 1 2\r\nhi\r\nPING\r\n");
    sim.advance(Duration::from_secs(3600 * 24 * 365));
    assert_eq!(sim.take_str(a), "");
    assert!(sim.broker.is_open(a));
}

/// A closed connection's record keeps at most `MAX_CLOSED_SUBS` subscriptions.
#[test]
fn closed_record_subscriptions_are_bounded() {
    let mut sim = Sim::new(Config::default());
    let a = sim.connected_client("{\"verbose\":false}");
    let subs: String = (0..broker::MAX_CLOSED_SUBS + 50)
        .map(|i| format!("SUB s.{i} {i:06}\r\n"))
        .collect();
    sim.send(a, &subs);
    let now = sim.now;
    sim.broker.close_client(a, now, CloseReason::ClientClosed);
    sim.broker.remove_client(a, now);
    let closed = sim.broker.closed_clients().last().unwrap();
    assert_eq!(closed.subscriptions.len(), broker::MAX_CLOSED_SUBS);
    assert_eq!(closed.subscriptions[0].sid, "000000");
}

#[test]
fn trace_lines_follow_nats_server() {
    let mut sim = Sim::new(Config {
        trace: true,
        max_traced_msg_len: 8,
        ..Config::default()
    });
    let s = sim.client();
    sim.send(
        s,
        "CONNECT {\"verbose\":true,\"user\":\"u\",\"pass\":\"secret\",\"headers\":true}\r\nSUB foo q 1\r\n",
    );
    let p = sim.client();
    sim.send(
        p,
        "CONNECT {\"verbose\":false,\"headers\":true}\r\nPUB foo r 5\r\nhello\r\nPING\r\n",
    );
    sim.send(
        p,
        "PUB foo 12\r\nhello world!\r\nHPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
    );
    sim.send(s, "UNSUB 1 5\r\nBAD\r\n");
    let lines: Vec<(bool, &str)> = sim
        .traces
        .iter()
        .map(|(c, l)| (*c == s, l.as_str()))
        .collect();
    assert_eq!(
        lines,
        vec![
            (
                true,
                "<<- [CONNECT {\"verbose\":true,\"user\":\"u\",\"pass\":\"[REDACTED]\",\"headers\":true}]"
            ),
            (true, "->> [OK]"),
            (true, "<<- [SUB foo q 1]"),
            (true, "->> [OK]"),
            (false, "<<- [CONNECT {\"verbose\":false,\"headers\":true}]"),
            (false, "<<- [PUB foo r 5]"),
            (false, "<<- MSG_PAYLOAD: [\"hello\"]"),
            (true, "->> [MSG foo 1 r 5]"),
            (false, "<<- [PING]"),
            (false, "->> [PONG]"),
            (false, "<<- [PUB foo 12]"),
            (false, "<<- MSG_PAYLOAD: [\"hello wo...\"]"),
            (true, "->> [MSG foo 1 12]"),
            (false, "<<- [HPUB foo 12 14]"),
            (false, "<<- MSG_PAYLOAD: [\"NATS/1.0...\"]"),
            (true, "->> [HMSG foo 1 12 14]"),
            (true, "<<- [UNSUB 1 5]"),
            (true, "->> [OK]"),
            (true, "->> [-ERR Unknown Protocol Operation]"),
        ]
    );
}

#[test]
fn no_trace_events_unless_asked() {
    let mut sim = Sim::new(Config::default());
    let c = sim.client();
    sim.send(c, "CONNECT {}\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\nPING\r\n");
    assert!(sim.take_str(c).ends_with("PONG\r\n"));
    assert!(sim.traces.is_empty());
}
