//! Configuration reload with connected clients (nats-server 2.9.10 `reloadAuthorization`):
//! removed users are closed, clients whose credentials no longer authenticate get
//! `Authorization Violation`, the others get their new permissions at once.

mod sim;

use broker::auth::{AuthConfig, PermissionsConfig, SubjectPermission, User};
use broker::{CloseReason, Config, ConnectionType, Event};
use sim::Sim;

const VIOLATION: &str = "-ERR 'Authorization Violation'\r\n";

fn config_with(auth: AuthConfig) -> Config {
    Config {
        auth,
        ..Config::default()
    }
}

fn user(name: &str, pass: &str) -> User {
    User {
        username: name.into(),
        password: pass.into(),
        permissions: None,
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

fn perms(publish: &[&str], subscribe: &[&str]) -> Option<PermissionsConfig> {
    Some(PermissionsConfig {
        publish: allow(publish),
        subscribe: allow(subscribe),
        allow_responses: None,
    })
}

fn users(list: Vec<User>) -> Config {
    config_with(AuthConfig {
        users: list,
        ..AuthConfig::default()
    })
}

fn token(t: &str) -> Config {
    config_with(AuthConfig {
        token: Some(t.into()),
        ..AuthConfig::default()
    })
}

fn guest_config(publish: &[&str], guest_pass: &str) -> Config {
    let mut guest = user("guest", guest_pass);
    guest.permissions = perms(publish, &[">"]);
    config_with(AuthConfig {
        users: vec![user("admin", "pw"), guest],
        no_auth_user: Some("guest".into()),
        ..AuthConfig::default()
    })
}

fn with_types(mut u: User, types: &[&str]) -> User {
    u.allowed_connection_types = types.iter().map(|t| (*t).to_owned()).collect();
    u
}

struct Case {
    name: &'static str,
    before: Config,
    kind: ConnectionType,
    /// Everything the client sends before the reload (CONNECT included, or not).
    setup: &'static str,
    after: Config,
    /// Bytes the client receives because of the reload.
    expect_out: &'static str,
    expect_close: Option<CloseReason>,
    /// Sent after the reload when the client is still open, with the expected answer.
    then: Option<(&'static str, &'static str)>,
}

fn run(case: Case) {
    let mut sim = Sim::new(case.before);
    let c = sim.connect_kind(case.kind);
    sim.take(c);
    sim.send(c, case.setup);
    let before = sim.take_str(c);
    assert!(
        !before.contains("-ERR"),
        "{}: setup refused: {before}",
        case.name
    );
    assert_eq!(sim.closed.get(&c), None, "{}", case.name);
    let now = sim.now;
    sim.broker.reload(case.after, now);
    sim.pump();
    assert_eq!(sim.take_str(c), case.expect_out, "{}", case.name);
    assert_eq!(
        sim.closed.get(&c).copied(),
        case.expect_close,
        "{}",
        case.name
    );
    assert_eq!(
        sim.broker.is_open(c),
        case.expect_close.is_none(),
        "{}",
        case.name
    );
    if let Some((input, expect)) = case.then {
        sim.send(c, input);
        assert_eq!(sim.take_str(c), expect, "{}: after reload", case.name);
    }
    if case.expect_close.is_some() {
        assert!(
            sim.broker.subscriptions(None).is_empty(),
            "{}: a closed client keeps no subscription",
            case.name
        );
    }
}

const PING: Option<(&str, &str)> = Some(("PING\r\n", "PONG\r\n"));

#[test]
fn reload_cases() {
    let narrowed = {
        let mut alice = user("alice", "pw");
        alice.permissions = perms(&["foo.>"], &["foo.>", "bar.>"]);
        let mut alice2 = user("alice", "pw");
        alice2.permissions = perms(&["foo.ok"], &["foo.>"]);
        (users(vec![alice]), users(vec![alice2]))
    };
    let cases = vec![
        Case {
            name: "removed user, TCP",
            before: users(vec![user("alice", "pw"), user("bob", "pw")]),
            kind: ConnectionType::Standard,
            setup: "CONNECT {\"verbose\":false,\"user\":\"bob\",\"pass\":\"pw\"}\r\nSUB x 1\r\nPING\r\n",
            after: users(vec![user("alice", "pw")]),
            expect_out: "",
            expect_close: Some(CloseReason::ClientClosed),
            then: None,
        },
        Case {
            name: "removed user, WebSocket",
            before: users(vec![user("alice", "pw"), user("bob", "pw")]),
            kind: ConnectionType::WebSocket,
            setup: "CONNECT {\"verbose\":false,\"user\":\"bob\",\"pass\":\"pw\"}\r\nPING\r\n",
            after: users(vec![user("alice", "pw"), user("late", "pw")]),
            expect_out: "",
            expect_close: Some(CloseReason::ClientClosed),
            then: None,
        },
        Case {
            name: "kept user, other user removed",
            before: users(vec![user("alice", "pw"), user("bob", "pw")]),
            kind: ConnectionType::WebSocket,
            setup: "CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"pw\"}\r\nPING\r\n",
            after: users(vec![user("alice", "pw")]),
            expect_out: "",
            expect_close: None,
            then: PING,
        },
        Case {
            // 2.9.10 closes these on every reload (its check consults only the users map);
            // natsws deliberately keeps a client whose credentials are still valid.
            name: "single user, unchanged configuration",
            before: config_with(AuthConfig {
                username: Some("a".into()),
                password: Some("b".into()),
                ..AuthConfig::default()
            }),
            kind: ConnectionType::Standard,
            setup: "CONNECT {\"verbose\":false,\"user\":\"a\",\"pass\":\"b\"}\r\nPING\r\n",
            after: config_with(AuthConfig {
                username: Some("a".into()),
                password: Some("b".into()),
                ..AuthConfig::default()
            }),
            expect_out: "",
            expect_close: None,
            then: PING,
        },
        Case {
            name: "single user renamed",
            before: config_with(AuthConfig {
                username: Some("a".into()),
                password: Some("b".into()),
                ..AuthConfig::default()
            }),
            kind: ConnectionType::Standard,
            setup: "CONNECT {\"verbose\":false,\"user\":\"a\",\"pass\":\"b\"}\r\nPING\r\n",
            after: config_with(AuthConfig {
                username: Some("c".into()),
                password: Some("b".into()),
                ..AuthConfig::default()
            }),
            expect_out: "",
            expect_close: Some(CloseReason::ClientClosed),
            then: None,
        },
        Case {
            // 2.9.10 closes it, as above; natsws keeps it: no auth is configured.
            name: "no auth, client sent a user name",
            before: Config::default(),
            kind: ConnectionType::WebSocket,
            setup: "CONNECT {\"verbose\":false,\"user\":\"x\",\"pass\":\"y\"}\r\nPING\r\n",
            after: Config::default(),
            expect_out: "",
            expect_close: None,
            then: PING,
        },
        Case {
            name: "no auth, anonymous client kept",
            before: Config::default(),
            kind: ConnectionType::Standard,
            setup: "CONNECT {\"verbose\":false}\r\nSUB a 1\r\nPING\r\n",
            after: Config::default(),
            expect_out: "",
            expect_close: None,
            then: Some(("PUB a 1\r\nx\r\nPING\r\n", "MSG a 1 1\r\nx\r\nPONG\r\n")),
        },
        Case {
            name: "password changed",
            before: users(vec![user("alice", "pw")]),
            kind: ConnectionType::Standard,
            setup: "CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"pw\"}\r\nPING\r\n",
            after: users(vec![user("alice", "new")]),
            expect_out: VIOLATION,
            expect_close: Some(CloseReason::AuthenticationFailure),
            then: None,
        },
        Case {
            name: "token changed",
            before: token("s3cr3t"),
            kind: ConnectionType::WebSocket,
            setup: "CONNECT {\"verbose\":false,\"auth_token\":\"s3cr3t\"}\r\nPING\r\n",
            after: token("other"),
            expect_out: VIOLATION,
            expect_close: Some(CloseReason::AuthenticationFailure),
            then: None,
        },
        Case {
            name: "token kept",
            before: token("s3cr3t"),
            kind: ConnectionType::Standard,
            setup: "CONNECT {\"verbose\":false,\"auth_token\":\"s3cr3t\"}\r\nPING\r\n",
            after: token("s3cr3t"),
            expect_out: "",
            expect_close: None,
            then: PING,
        },
        Case {
            name: "auth turned on for an anonymous client",
            before: Config::default(),
            kind: ConnectionType::Standard,
            setup: "CONNECT {\"verbose\":false}\r\nPING\r\n",
            after: token("s3cr3t"),
            expect_out: VIOLATION,
            expect_close: Some(CloseReason::AuthenticationFailure),
            then: None,
        },
        Case {
            name: "narrowed permissions",
            before: narrowed.0,
            kind: ConnectionType::Standard,
            setup: "CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"pw\"}\r\n\
                    SUB foo.a 1\r\nSUB bar.b 2\r\nSUB bar.c q 3\r\nPING\r\n",
            after: narrowed.1,
            expect_out: "-ERR 'Permissions Violation for Subscription to \"bar.b\" (sid \"2\")'\r\n\
                         -ERR 'Permissions Violation for Subscription to \"bar.c\" (sid \"3\")'\r\n",
            expect_close: None,
            then: Some((
                "PUB foo.x 0\r\n\r\nPUB foo.ok 0\r\n\r\nSUB bar.d 4\r\nPING\r\n",
                "-ERR 'Permissions Violation for Publish to \"foo.x\"'\r\n\
                 -ERR 'Permissions Violation for Subscription to \"bar.d\"'\r\nPONG\r\n",
            )),
        },
        Case {
            name: "no_auth_user's permissions narrowed (WebSocket)",
            before: guest_config(&["guest.>"], "gpw"),
            kind: ConnectionType::WebSocket,
            setup: "CONNECT {\"verbose\":false}\r\nPUB guest.before 0\r\n\r\nPING\r\n",
            after: guest_config(&["guest.only.>"], "gpw"),
            expect_out: "",
            expect_close: None,
            then: Some((
                "PUB guest.after 0\r\n\r\nPUB guest.only.ok 0\r\n\r\nPING\r\n",
                "-ERR 'Permissions Violation for Publish to \"guest.after\"'\r\nPONG\r\n",
            )),
        },
        Case {
            name: "no_auth_user bound without CONNECT, permissions narrowed",
            before: guest_config(&["guest.>"], "gpw"),
            kind: ConnectionType::Standard,
            setup: "PUB guest.before 0\r\n\r\nPING\r\n",
            after: guest_config(&["guest.only.>"], "gpw"),
            expect_out: "",
            expect_close: None,
            then: Some((
                "PUB guest.after 0\r\n\r\nPING\r\n",
                "-ERR 'Permissions Violation for Publish to \"guest.after\"'\r\nPONG\r\n",
            )),
        },
        Case {
            // The reference re-checks the password it copied from the no_auth_user.
            name: "no_auth_user's password changed",
            before: guest_config(&["guest.>"], "gpw"),
            kind: ConnectionType::Standard,
            setup: "CONNECT {\"verbose\":false}\r\nPING\r\n",
            after: guest_config(&["guest.>"], "changed"),
            expect_out: VIOLATION,
            expect_close: Some(CloseReason::AuthenticationFailure),
            then: None,
        },
        Case {
            name: "no_auth_user removed",
            before: guest_config(&["guest.>"], "gpw"),
            kind: ConnectionType::WebSocket,
            setup: "CONNECT {\"verbose\":false}\r\nPING\r\n",
            after: users(vec![user("admin", "pw")]),
            expect_out: "",
            expect_close: Some(CloseReason::ClientClosed),
            then: None,
        },
        Case {
            name: "allowed_connection_types no longer include WebSocket",
            before: users(vec![with_types(
                user("alice", "pw"),
                &["STANDARD", "WEBSOCKET"],
            )]),
            kind: ConnectionType::WebSocket,
            setup: "CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"pw\"}\r\nPING\r\n",
            after: users(vec![with_types(user("alice", "pw"), &["STANDARD"])]),
            expect_out: VIOLATION,
            expect_close: Some(CloseReason::AuthenticationFailure),
            then: None,
        },
        Case {
            name: "allowed_connection_types still include TCP",
            before: users(vec![with_types(
                user("alice", "pw"),
                &["STANDARD", "WEBSOCKET"],
            )]),
            kind: ConnectionType::Standard,
            setup: "CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"pw\"}\r\nPING\r\n",
            after: users(vec![with_types(user("alice", "pw"), &["STANDARD"])]),
            expect_out: "",
            expect_close: None,
            then: PING,
        },
        Case {
            name: "client still awaiting CONNECT when auth is turned on",
            before: Config::default(),
            kind: ConnectionType::Standard,
            setup: "",
            after: token("s3cr3t"),
            expect_out: VIOLATION,
            expect_close: Some(CloseReason::AuthenticationFailure),
            then: None,
        },
    ];
    for case in cases {
        run(case);
    }
}

/// Nothing changed: every client keeps its connection, subscriptions and permissions, and
/// receives nothing.
#[test]
fn unchanged_config_touches_nobody() {
    let mut restricted = user("alice", "pw");
    restricted.permissions = perms(&["foo.>"], &["foo.>"]);
    let config = config_with(AuthConfig {
        users: vec![restricted, user("bob", "pw"), user("guest", "g")],
        no_auth_user: Some("guest".into()),
        ..AuthConfig::default()
    });
    let mut sim = Sim::new(config.clone());
    let logins = [
        "{\"verbose\":false,\"user\":\"alice\",\"pass\":\"pw\"}",
        "{\"verbose\":false,\"user\":\"bob\",\"pass\":\"pw\"}",
        "{\"verbose\":false}",
    ];
    let mut ids = Vec::new();
    for (i, json) in logins.iter().enumerate() {
        for kind in [ConnectionType::Standard, ConnectionType::WebSocket] {
            let c = sim.connect_kind(kind);
            sim.take(c);
            sim.send(c, &format!("CONNECT {json}\r\nSUB foo.{i} {i}\r\nPING\r\n"));
            assert_eq!(sim.take_str(c), "PONG\r\n");
            ids.push(c);
        }
    }
    let subs_before = sim.broker.subscriptions(None).len();
    let now = sim.now;
    sim.broker.reload(config, now);
    sim.pump();
    for c in &ids {
        assert!(sim.broker.is_open(*c));
        assert_eq!(sim.take_str(*c), "");
    }
    assert!(sim.closed.is_empty());
    assert_eq!(sim.broker.subscriptions(None).len(), subs_before);
    // alice is still restricted.
    sim.send(ids[0], "PUB bar 0\r\n\r\nPING\r\n");
    assert_eq!(
        sim.take_str(ids[0]),
        "-ERR 'Permissions Violation for Publish to \"bar\"'\r\nPONG\r\n"
    );
}

/// A removed subscription is reported for the log, and its messages stop.
#[test]
fn removed_subscription_event_and_delivery() {
    let mut alice = user("alice", "secretpw");
    alice.permissions = perms(&[">"], &[">"]);
    let mut alice2 = user("alice", "secretpw");
    alice2.permissions = perms(&[">"], &["ok"]);
    let mut sim = Sim::new(users(vec![alice]));
    let c = sim.connected_client("{\"verbose\":false,\"user\":\"alice\",\"pass\":\"secretpw\"}");
    sim.send(c, "SUB gone 7\r\nSUB ok 8\r\n");
    let now = sim.now;
    sim.broker.reload(users(vec![alice2]), now);
    let mut notices = Vec::new();
    while let Some(ev) = sim.broker.poll_event() {
        if let Event::SubscriptionRemoved { client, detail } = ev {
            assert_eq!(client, c);
            notices.push(detail);
        }
    }
    assert_eq!(
        notices,
        vec!["Removed sub \"gone\" (sid \"7\") for User \"alice\" - not authorized".to_owned()]
    );
    sim.pump();
    assert_eq!(
        sim.take_str(c),
        "-ERR 'Permissions Violation for Subscription to \"gone\" (sid \"7\")'\r\n"
    );
    sim.send(c, "PUB gone 1\r\nx\r\nPUB ok 1\r\ny\r\nPING\r\n");
    assert_eq!(sim.take_str(c), "MSG ok 8 1\r\ny\r\nPONG\r\n");
}

/// nkey clients: the signature over their nonce is verified again; a removed nkey is closed.
#[test]
fn nkey_users() {
    use base64::Engine;
    let kp = |b: u8| nkeys::KeyPair::new_from_raw(nkeys::KeyPairType::User, [b; 32]).unwrap();
    let (k1, k2) = (kp(1), kp(2));
    let nkey_user = |k: &nkeys::KeyPair| broker::auth::NkeyUser {
        nkey: k.public_key(),
        ..broker::auth::NkeyUser::default()
    };
    let cfg = |list: Vec<broker::auth::NkeyUser>| {
        config_with(AuthConfig {
            nkeys: list,
            ..AuthConfig::default()
        })
    };
    let mut sim = Sim::new(cfg(vec![nkey_user(&k1), nkey_user(&k2)]));
    let mut ids = Vec::new();
    for k in [&k1, &k2] {
        let c = sim.connect_kind(ConnectionType::WebSocket);
        let info = sim.take_str(c);
        let nonce = info
            .split("\"nonce\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned();
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(k.sign(nonce.as_bytes()).unwrap());
        let json = format!(
            "{{\"verbose\":false,\"nkey\":\"{}\",\"sig\":\"{sig}\"}}",
            k.public_key()
        );
        sim.send(c, &format!("CONNECT {json}\r\nPING\r\n"));
        assert_eq!(sim.take_str(c), "PONG\r\n");
        ids.push(c);
    }
    let now = sim.now;
    sim.broker.reload(cfg(vec![nkey_user(&k1)]), now);
    sim.pump();
    assert_eq!(sim.take_str(ids[0]), "");
    assert!(sim.broker.is_open(ids[0]));
    assert_eq!(sim.take_str(ids[1]), "");
    assert_eq!(sim.closed.get(&ids[1]), Some(&CloseReason::ClientClosed));
}
