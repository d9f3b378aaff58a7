//! Sessions wired to `broker::auth`: exact bytes for auth failures, timeouts, no_auth_user,
//! connection types and permissions (nats-server's `server/auth.go` and `server/client.go`).

mod sim;

use std::time::Duration;

use broker::auth::{AuthConfig, PermissionsConfig, ResponsePermission, SubjectPermission, User};
use broker::{Broker, CloseReason, Config, ConnectionType};
use sim::Sim;

fn config_with(auth: AuthConfig) -> Config {
    Config {
        auth,
        ..Config::default()
    }
}

fn token_config() -> Config {
    config_with(AuthConfig {
        token: Some("s3cr3t".into()),
        ..AuthConfig::default()
    })
}

fn user(name: &str, pass: &str, permissions: Option<PermissionsConfig>) -> User {
    User {
        username: name.into(),
        password: pass.into(),
        permissions,
        allowed_connection_types: Vec::new(),
        account: None,
    }
}

fn allow(subjects: &[&str]) -> Option<SubjectPermission> {
    Some(SubjectPermission {
        allow: Some(subjects.iter().map(|s| (*s).to_owned()).collect()),
        deny: Vec::new(),
    })
}

/// One client on `config` sends `input`; checks its output and close reason.
fn check(config: Config, input: &str, expect_out: &str, expect_close: Option<CloseReason>) {
    let mut sim = Sim::new(config);
    let c = sim.client();
    sim.send(c, input);
    assert_eq!(sim.take_str(c), expect_out, "input {input:?}");
    assert_eq!(sim.closed.get(&c).copied(), expect_close, "input {input:?}");
}

const VIOLATION: &str = "-ERR 'Authorization Violation'\r\n";

#[test]
fn info_announces_auth() {
    let mut sim = Sim::new(token_config());
    let c = sim.connect_kind(ConnectionType::Standard);
    let info = sim.take_str(c);
    assert!(info.contains("\"auth_required\":true"), "{info}");
}

#[test]
fn token_auth() {
    check(
        token_config(),
        "CONNECT {\"auth_token\":\"s3cr3t\"}\r\n",
        "+OK\r\n",
        None,
    );
    check(
        token_config(),
        "CONNECT {\"auth_token\":\"nope\"}\r\n",
        VIOLATION,
        Some(CloseReason::AuthenticationFailure),
    );
    check(
        token_config(),
        "CONNECT {}\r\n",
        VIOLATION,
        Some(CloseReason::AuthenticationFailure),
    );
}

#[test]
fn first_op_must_be_connect() {
    for first in ["PING\r\n", "SUB foo 1\r\n", "PUB foo 0\r\n\r\n", "x"] {
        check(
            token_config(),
            first,
            VIOLATION,
            Some(CloseReason::AuthenticationFailure),
        );
    }
    // Lower-case connect is fine.
    check(
        token_config(),
        "connect {\"auth_token\":\"s3cr3t\",\"verbose\":false}\r\nPING\r\n",
        "PONG\r\n",
        None,
    );
}

#[test]
fn auth_failure_event_names_the_user() {
    let config = config_with(AuthConfig {
        users: vec![user("alice", "pw", None)],
        ..AuthConfig::default()
    });
    let mut sim = Sim::new(config);
    let c = sim.client();
    let mut buf = bytes::BytesMut::from(&b"CONNECT {\"user\":\"alice\",\"pass\":\"bad\"}\r\n"[..]);
    sim.broker.handle_input(c, sim.now, &mut buf);
    let mut detail = None;
    while let Some(ev) = sim.broker.poll_event() {
        if let broker::Event::AuthFailed { detail: d, .. } = ev {
            detail = Some(d);
        }
    }
    let detail = detail.expect("AuthFailed event");
    assert_eq!(detail, "authentication error - User \"alice\"");
    assert!(!detail.contains("bad"), "never log the password: {detail}");
}

#[test]
fn auth_timeout() {
    let mut sim = Sim::new(token_config());
    let c = sim.client();
    sim.advance(Duration::from_millis(1999));
    assert_eq!(sim.take_str(c), "");
    sim.advance(Duration::from_millis(1));
    assert_eq!(sim.take_str(c), "-ERR 'Authentication Timeout'\r\n");
    assert_eq!(
        sim.closed.get(&c),
        Some(&CloseReason::AuthenticationTimeout)
    );
    // A connected client is not timed out.
    let mut sim = Sim::new(token_config());
    let ok = sim.client();
    sim.send(
        ok,
        "CONNECT {\"auth_token\":\"s3cr3t\",\"verbose\":false}\r\n",
    );
    sim.advance(Duration::from_secs(3));
    assert!(!sim.closed.contains_key(&ok));
}

#[test]
fn websocket_auth_timeout_override() {
    let mut auth = AuthConfig::default();
    auth.websocket.token = Some("ws".into());
    auth.websocket.timeout = Some(Duration::from_millis(1500));
    let mut sim = Sim::new(config_with(auth));
    let tcp = sim.client();
    let ws = sim.connect_kind(ConnectionType::WebSocket);
    let info = sim.take_str(ws);
    assert!(info.contains("\"auth_required\":true"), "{info}");
    sim.advance(Duration::from_millis(1500));
    assert_eq!(sim.take_str(ws), "-ERR 'Authentication Timeout'\r\n");
    // TCP clients need no auth here.
    sim.send(tcp, "PING\r\n");
    assert_eq!(sim.take_str(tcp), "PONG\r\n");
}

#[test]
fn no_auth_user_binds_on_first_op() {
    let config = config_with(AuthConfig {
        users: vec![user("alice", "pw", None)],
        no_auth_user: Some("alice".into()),
        ..AuthConfig::default()
    });
    let mut sim = Sim::new(config.clone());
    let c = sim.connect_kind(ConnectionType::Standard);
    let info = sim.take_str(c);
    assert!(
        !info.contains("auth_required"),
        "TCP INFO omits it with no_auth_user: {info}"
    );
    sim.send(c, "SUB foo 1\r\nPING\r\n");
    assert_eq!(sim.take_str(c), "+OK\r\nPONG\r\n");
    let info = sim.broker.client_info(c, sim.now).unwrap();
    assert_eq!(info.authorized_user.as_deref(), Some("alice"));
    // Wrong explicit credentials still fail.
    check(
        config,
        "CONNECT {\"user\":\"alice\",\"pass\":\"x\"}\r\n",
        VIOLATION,
        Some(CloseReason::AuthenticationFailure),
    );
}

#[test]
fn allowed_connection_types() {
    let mut ws_only = user("ws", "pw", None);
    ws_only.allowed_connection_types = vec!["WEBSOCKET".into()];
    let config = config_with(AuthConfig {
        users: vec![ws_only],
        ..AuthConfig::default()
    });
    check(
        config.clone(),
        "CONNECT {\"user\":\"ws\",\"pass\":\"pw\"}\r\n",
        VIOLATION,
        Some(CloseReason::AuthenticationFailure),
    );
    let mut sim = Sim::new(config);
    let c = sim.connect_kind(ConnectionType::WebSocket);
    sim.take(c);
    sim.send(c, "CONNECT {\"user\":\"ws\",\"pass\":\"pw\"}\r\n");
    assert_eq!(sim.take_str(c), "+OK\r\n");
}

#[test]
fn account_in_connect_is_refused_after_auth() {
    check(
        token_config(),
        "CONNECT {\"auth_token\":\"s3cr3t\",\"account\":\"A\"}\r\n",
        VIOLATION,
        Some(CloseReason::AuthenticationFailure),
    );
}

#[test]
fn publish_and_subscribe_permissions() {
    let perms = PermissionsConfig {
        publish: allow(&["foo.>"]),
        subscribe: Some(SubjectPermission {
            allow: Some(vec!["foo.*".into(), "bar q1".into()]),
            deny: vec!["foo.deny".into()],
        }),
        allow_responses: None,
    };
    let config = config_with(AuthConfig {
        users: vec![user("bob", "pw", Some(perms)), user("free", "pw", None)],
        ..AuthConfig::default()
    });
    let mut sim = Sim::new(config);
    let bob = sim.connected_client("{\"user\":\"bob\",\"pass\":\"pw\"}");
    let free = sim.connected_client("{\"user\":\"free\",\"pass\":\"pw\",\"verbose\":false}");
    sim.send(bob, "PUB baz 1\r\nx\r\n");
    assert_eq!(
        sim.take_str(bob),
        "-ERR 'Permissions Violation for Publish to \"baz\"'\r\n"
    );
    sim.send(bob, "SUB baz 1\r\n");
    assert_eq!(
        sim.take_str(bob),
        "-ERR 'Permissions Violation for Subscription to \"baz\"'\r\n"
    );
    sim.send(bob, "SUB bar q2 2\r\n");
    assert_eq!(
        sim.take_str(bob),
        "-ERR 'Permissions Violation for Subscription to \"bar\" using queue \"q2\"'\r\n"
    );
    sim.send(bob, "SUB bar q1 3\r\nSUB foo.* 4\r\n");
    assert_eq!(sim.take_str(bob), "+OK\r\n+OK\r\n");
    // The wildcard subscription is allowed, but denied subjects are filtered at delivery.
    sim.send(free, "PUB foo.deny 1\r\nx\r\nPUB foo.ok 1\r\ny\r\n");
    assert_eq!(sim.take_str(bob), "MSG foo.ok 4 1\r\ny\r\n");
    sim.send(bob, "PUB foo.x 1\r\nz\r\n");
    assert_eq!(sim.take_str(bob), "+OK\r\nMSG foo.x 4 1\r\nz\r\n");
    assert!(!sim.closed.contains_key(&bob));
}

#[test]
fn allow_responses() {
    let perms = PermissionsConfig {
        publish: None,
        subscribe: None,
        allow_responses: Some(ResponsePermission {
            max_msgs: 1,
            expires: None,
        }),
    };
    let config = config_with(AuthConfig {
        users: vec![user("svc", "pw", Some(perms)), user("req", "pw", None)],
        ..AuthConfig::default()
    });
    let mut sim = Sim::new(config);
    let svc = sim.connected_client("{\"user\":\"svc\",\"pass\":\"pw\",\"verbose\":false}");
    let req = sim.connected_client("{\"user\":\"req\",\"pass\":\"pw\",\"verbose\":false}");
    sim.send(svc, "SUB help 1\r\n");
    sim.send(req, "SUB _INBOX.1 9\r\nPUB help _INBOX.1 1\r\n?\r\n");
    assert_eq!(sim.take_str(svc), "MSG help 1 _INBOX.1 1\r\n?\r\n");
    // Only responses may be published, and only once per request.
    sim.send(svc, "PUB other 1\r\nx\r\n");
    assert_eq!(
        sim.take_str(svc),
        "-ERR 'Permissions Violation for Publish to \"other\"'\r\n"
    );
    sim.send(svc, "PUB _INBOX.1 1\r\na\r\nPUB _INBOX.1 1\r\nb\r\n");
    assert_eq!(
        sim.take_str(svc),
        "-ERR 'Permissions Violation for Publish to \"_INBOX.1\"'\r\n"
    );
    assert_eq!(sim.take_str(req), "MSG _INBOX.1 9 1\r\na\r\n");
}

#[test]
fn invalid_auth_config_fails_closed() {
    let config = config_with(AuthConfig {
        token: Some("t".into()),
        users: vec![user("a", "b", None)],
        ..AuthConfig::default()
    });
    let now = std::time::Instant::now();
    let err = Broker::try_new(config.clone(), now).expect_err("refused");
    assert!(!err.to_string().is_empty());
    check(
        config,
        "CONNECT {\"auth_token\":\"t\"}\r\n",
        VIOLATION,
        Some(CloseReason::AuthenticationFailure),
    );
}

#[test]
fn nonce_in_info_with_nkey_users() {
    let config = config_with(AuthConfig {
        nkeys: vec![broker::auth::NkeyUser {
            nkey: "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4".into(),
            permissions: None,
            allowed_connection_types: Vec::new(),
            account: None,
        }],
        ..AuthConfig::default()
    });
    let now = std::time::Instant::now();
    let mut broker = Broker::try_new(config, now).expect("valid config");
    let addr = "127.0.0.1:1".parse().unwrap();
    let mut params = broker::ClientParams::new(ConnectionType::Standard, addr);
    params.nonce_bytes = Some([0u8; 11]);
    let id = broker.register_client(now, params);
    let info = String::from_utf8(broker.info_line(id).unwrap()).unwrap();
    assert!(info.contains("\"auth_required\":true"), "{info}");
    assert!(info.contains("\"nonce\":\"AAAAAAAAAAAAAAA\""), "{info}");
    // Without caller randomness the broker's generator gives a 15-character nonce.
    let other = broker.register_client(
        now,
        broker::ClientParams::new(ConnectionType::WebSocket, addr),
    );
    let info = String::from_utf8(broker.info_line(other).unwrap()).unwrap();
    let nonce = info
        .split("\"nonce\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert_eq!(nonce.len(), 15);
    assert!(
        nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    // A CONNECT without a signature is refused.
    let mut buf = bytes::BytesMut::from(
        &b"CONNECT {\"nkey\":\"UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4\"}\r\n"[..],
    );
    broker.handle_input(id, now, &mut buf);
    assert!(!broker.is_open(id));
}

/// `bcrypt` of "pw" at the lowest cost, from nats-server's own test style.
fn bcrypt_users() -> Config {
    let hash = bcrypt::hash_with_salt("pw", 4, [7u8; 16])
        .unwrap()
        .format_for_version(bcrypt::Version::TwoA);
    Config {
        defer_password_checks: true,
        ..config_with(AuthConfig {
            users: vec![user("alice", &hash, None), user("bob", "plain", None)],
            ..AuthConfig::default()
        })
    }
}

#[test]
fn deferred_bcrypt_parks_the_client_until_the_check_returns() {
    let mut sim = Sim::new(bcrypt_users());
    let c = sim.client();
    sim.send(
        c,
        "CONNECT {\"user\":\"alice\",\"pass\":\"pw\"}\r\nSUB foo 1\r\nPING\r\n",
    );
    // Nothing is answered and nothing after CONNECT is parsed while the check is out.
    assert_eq!(sim.take_str(c), "");
    assert!(sim.broker.is_parked(c));
    assert_eq!(sim.checks.len(), 1);
    let (who, check) = sim.checks.last().cloned().unwrap();
    assert_eq!(who, c);
    assert!(
        !format!("{check:?}").contains("pw\""),
        "Debug must not show the password"
    );
    assert!(check.verify());
    sim.answer(c, true);
    sim.resume(c);
    assert_eq!(sim.take_str(c), "+OK\r\n+OK\r\nPONG\r\n");
    assert!(!sim.broker.is_parked(c));
    assert_eq!(sim.connected, vec![c]);

    // Other clients are served meanwhile: a second bcrypt client parks, a plain one is not held.
    let slow = sim.client();
    sim.send(
        slow,
        "CONNECT {\"user\":\"alice\",\"pass\":\"wrong\"}\r\nPING\r\n",
    );
    let fast = sim.client();
    sim.send(
        fast,
        "CONNECT {\"user\":\"bob\",\"pass\":\"plain\"}\r\nPING\r\n",
    );
    assert_eq!(sim.take_str(fast), "+OK\r\nPONG\r\n");
    assert_eq!(sim.take_str(slow), "");
    let (_, check) = sim.checks.last().cloned().unwrap();
    assert!(!check.verify());
    sim.answer(slow, false);
    sim.resume(slow);
    assert_eq!(sim.take_str(slow), VIOLATION);
    assert_eq!(
        sim.closed.get(&slow).copied(),
        Some(CloseReason::AuthenticationFailure)
    );
}

#[test]
fn a_parked_connect_stops_the_auth_timer_and_late_results_for_closed_clients_are_ignored() {
    let mut sim = Sim::new(bcrypt_users());
    let c = sim.client();
    sim.send(c, "CONNECT {\"user\":\"alice\",\"pass\":\"pw\"}\r\n");
    // The CONNECT came in time; a slow check does not turn into an Authentication Timeout.
    sim.advance(Duration::from_secs(30));
    assert!(sim.closed.is_empty());
    assert_eq!(sim.take_str(c), "");
    sim.answer(c, true);
    sim.resume(c);
    assert_eq!(sim.take_str(c), "+OK\r\n");
    assert_eq!(sim.connected, vec![c]);

    // A client closed while parked: its verdict changes nothing.
    let d = sim.client();
    sim.send(d, "CONNECT {\"user\":\"alice\",\"pass\":\"pw\"}\r\n");
    sim.broker
        .close_client(d, sim.now, CloseReason::ClientClosed);
    sim.pump();
    sim.answer(d, true);
    sim.pump();
    assert_eq!(sim.take_str(d), "");
    assert_eq!(sim.connected, vec![c]);
}

#[test]
fn without_deferral_bcrypt_runs_inline() {
    let mut config = bcrypt_users();
    config.defer_password_checks = false;
    check(
        config.clone(),
        "CONNECT {\"user\":\"alice\",\"pass\":\"pw\"}\r\n",
        "+OK\r\n",
        None,
    );
    check(
        config,
        "CONNECT {\"user\":\"alice\",\"pass\":\"px\"}\r\n",
        VIOLATION,
        Some(CloseReason::AuthenticationFailure),
    );
}

#[test]
fn a_reload_during_a_deferred_check_is_taken_into_account() {
    // Same configuration again: the verdict stands.
    let mut sim = Sim::new(bcrypt_users());
    let c = sim.client();
    sim.send(
        c,
        "CONNECT {\"user\":\"alice\",\"pass\":\"pw\"}\r\nPING\r\n",
    );
    sim.broker.reload(bcrypt_users(), sim.now);
    sim.pump();
    assert!(
        sim.closed.is_empty(),
        "a parked client is not re-checked by the reload itself"
    );
    sim.answer(c, true);
    sim.resume(c);
    assert_eq!(sim.take_str(c), "+OK\r\nPONG\r\n");
    assert_eq!(sim.checks.len(), 1);

    // alice is gone after the reload: refused although her password matched the old hash.
    let mut sim = Sim::new(bcrypt_users());
    let c = sim.client();
    sim.send(
        c,
        "CONNECT {\"user\":\"alice\",\"pass\":\"pw\"}\r\nPING\r\n",
    );
    let mut without_alice = bcrypt_users();
    without_alice.auth.users.retain(|u| u.username != "alice");
    sim.broker.reload(without_alice, sim.now);
    sim.answer(c, true);
    sim.resume(c);
    assert_eq!(sim.take_str(c), VIOLATION);
    assert_eq!(
        sim.closed.get(&c).copied(),
        Some(CloseReason::AuthenticationFailure)
    );

    // alice has a new hash: a second check is asked for, and its verdict decides.
    let mut sim = Sim::new(bcrypt_users());
    let c = sim.client();
    sim.send(
        c,
        "CONNECT {\"user\":\"alice\",\"pass\":\"pw\"}\r\nPING\r\n",
    );
    let mut rehashed = bcrypt_users();
    let new_hash = bcrypt::hash_with_salt("pw", 4, [9u8; 16])
        .unwrap()
        .format_for_version(bcrypt::Version::TwoB);
    for u in &mut rehashed.auth.users {
        if u.username == "alice" {
            u.password.clone_from(&new_hash);
        }
    }
    sim.broker.reload(rehashed, sim.now);
    sim.answer(c, true);
    sim.pump();
    assert_eq!(sim.take_str(c), "");
    assert_eq!(sim.checks.len(), 2);
    assert_eq!(sim.checks[1].1.hash(), new_hash);
    assert!(sim.checks[1].1.verify());
    sim.answer(c, true);
    sim.resume(c);
    assert_eq!(sim.take_str(c), "+OK\r\nPONG\r\n");
}

/// A connected client whose second CONNECT waits for a bcrypt check is still re-checked by a
/// reload under its current identity: a subscription the new permissions refuse is removed.
#[test]
fn a_reload_rechecks_a_connected_client_with_a_parked_connect() {
    let mut sim = Sim::new(bcrypt_users());
    let c = sim.connected_client("{\"verbose\":false,\"user\":\"bob\",\"pass\":\"plain\"}");
    sim.send(
        c,
        "SUB foo 1\r\nCONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"pw\"}\r\n",
    );
    assert!(sim.broker.is_parked(c));
    let mut restricted = bcrypt_users();
    for u in &mut restricted.auth.users {
        if u.username == "bob" {
            u.permissions = Some(PermissionsConfig {
                subscribe: allow(&["bar"]),
                ..PermissionsConfig::default()
            });
        }
    }
    sim.broker.reload(restricted, sim.now);
    sim.pump();
    assert_eq!(
        sim.take_str(c),
        "-ERR 'Permissions Violation for Subscription to \"foo\" (sid \"1\")'\r\n"
    );
    assert!(sim.broker.is_parked(c));
    sim.answer(c, true);
    sim.resume(c);
    sim.send(c, "PING\r\n");
    assert_eq!(sim.take_str(c), "PONG\r\n");
    assert!(sim.closed.is_empty());
}

fn with_alice_hash(hash: &str) -> Config {
    let mut config = bcrypt_users();
    for u in &mut config.auth.users {
        if u.username == "alice" {
            u.password = hash.to_owned();
        }
    }
    config
}

/// A reload that changes the hash a session was verified against re-checks it through the
/// caller as well: one comparison for all clients with the same password, the clients keep
/// running meanwhile, and the verdict keeps or ends every one of them.
#[test]
fn a_reload_with_a_new_hash_rechecks_running_clients_through_the_caller() {
    let mut sim = Sim::new(bcrypt_users());
    let connect = "CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"pw\"}\r\n";
    let (a, b) = (sim.client(), sim.client());
    for c in [a, b] {
        sim.send(c, connect);
        sim.answer(c, true);
        sim.resume(c);
    }
    assert_eq!(sim.checks.len(), 2);
    let same_pw = bcrypt::hash_with_salt("pw", 4, [3u8; 16])
        .unwrap()
        .format_for_version(bcrypt::Version::TwoB);
    sim.broker.reload(with_alice_hash(&same_pw), sim.now);
    sim.pump();
    assert_eq!(sim.checks.len(), 3, "one comparison for both clients");
    let (asked_for, check) = sim.checks.last().cloned().unwrap();
    assert_eq!(check.hash(), same_pw);
    for c in [a, b] {
        assert!(!sim.broker.is_parked(c), "a re-check does not park");
        sim.send(c, "PING\r\n");
        assert_eq!(sim.take_str(c), "PONG\r\n");
    }
    sim.answer(asked_for, true);
    assert!(sim.closed.is_empty());

    let other_pw = bcrypt::hash_with_salt("other", 4, [4u8; 16])
        .unwrap()
        .format_for_version(bcrypt::Version::TwoB);
    sim.broker.reload(with_alice_hash(&other_pw), sim.now);
    sim.pump();
    assert_eq!(sim.checks.len(), 4);
    let (asked_for, check) = sim.checks.last().cloned().unwrap();
    assert!(!check.verify());
    sim.answer(asked_for, false);
    for c in [a, b] {
        assert_eq!(sim.take_str(c), VIOLATION);
        assert_eq!(
            sim.closed.get(&c).copied(),
            Some(CloseReason::AuthenticationFailure)
        );
    }
}

/// A client can have a parked CONNECT and a reload re-check out at once: the events say which
/// is which, and each verdict goes to its own comparison.
#[test]
fn a_parked_connect_and_a_recheck_of_the_same_client() {
    let mut sim = Sim::new(bcrypt_users());
    let connect = "CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"pw\"}\r\n";
    let c = sim.client();
    sim.send(c, connect);
    sim.answer(c, true);
    sim.resume(c);
    sim.send(c, connect);
    assert!(sim.broker.is_parked(c));
    let parked_check = sim.checks.last().cloned().unwrap().1;
    let new_hash = bcrypt::hash_with_salt("pw", 4, [5u8; 16])
        .unwrap()
        .format_for_version(bcrypt::Version::TwoB);
    sim.broker.reload(with_alice_hash(&new_hash), sim.now);
    sim.pump();
    assert_eq!(sim.check_parks, vec![true, true, false]);
    let recheck = sim.checks.last().cloned().unwrap().1;
    assert_eq!(recheck.hash(), new_hash);
    // The re-check's verdict leaves the CONNECT parked.
    sim.broker.password_checked(c, &recheck, true, sim.now);
    sim.pump();
    assert!(sim.broker.is_parked(c));
    // The parked CONNECT's verdict: its check was for the old hash, so it is authenticated
    // again under the new configuration and asks for the new hash.
    sim.broker.password_checked(c, &parked_check, true, sim.now);
    sim.pump();
    assert!(sim.broker.is_parked(c));
    assert_eq!(sim.check_parks, vec![true, true, false, true]);
    assert_eq!(sim.checks.last().unwrap().1, recheck);
    sim.answer(c, true);
    sim.resume(c);
    sim.send(c, "PING\r\n");
    assert_eq!(sim.take_str(c), "PONG\r\n");
    assert!(sim.closed.is_empty());
}
