//! Operator mode: JWT users authenticated against accounts a trusted operator signed, with
//! the limits, permissions, exports and imports of their JWTs (nats-server's
//! `server/auth.go` `processClientOrLeafAuthentication`, `server/jwt_test.go`).
//!
//! Every key is made here from fixed bytes; nothing secret is stored.

#[path = "support/signer.rs"]
mod signer;
mod sim;

use std::time::{Duration, Instant};

use broker::auth::jwt::{KeyPair, KeyPairType, encode, sign_nonce};
use broker::auth::operator::OperatorConfig;
use broker::auth::{AuthConfig, WebsocketAuth};
use broker::{ClientId, ClientParams, CloseReason, Config, ConnectionType, WallClock};
use signer::{ACCOUNT_LIMITS, account_jwt, claims, key, keys, operator_jwt, user_jwt};
use sim::Sim;

/// The Unix time the tests pretend it is.
const NOW: i64 = 1_800_000_000;

/// The issue time of the JWTs the signer makes.
fn iat() -> i64 {
    NOW - 100
}

fn config_with(accounts: Vec<String>, cookie: Option<&str>) -> Config {
    let k = keys();
    Config {
        auth: AuthConfig {
            operator: Some(OperatorConfig {
                operators: vec![operator_jwt(&k)],
                accounts,
                ..OperatorConfig::default()
            }),
            websocket: WebsocketAuth {
                jwt_cookie: cookie.map(str::to_owned),
                ..WebsocketAuth::default()
            },
            ..AuthConfig::default()
        },
        system_account: None,
        wall_clock: Some(WallClock {
            at: Instant::now(),
            unix_secs: NOW,
            subsec_nanos: 0,
        }),
        ..Config::default()
    }
}

fn default_config() -> Config {
    let k = keys();
    config_with(
        vec![account_jwt(&k, &k.a, ""), account_jwt(&k, &k.b, "")],
        None,
    )
}

fn nonce_of(info: &str) -> String {
    let start = info.find("\"nonce\":\"").expect("INFO has a nonce") + 9;
    info[start..start + 15].to_owned()
}

/// Connects with `jwt`, signing the nonce with `seed` when given; returns the client and what
/// the broker answered to `CONNECT` + `PING`.
fn login_kind(
    sim: &mut Sim,
    kind: ConnectionType,
    jwt: Option<&str>,
    seed: Option<&KeyPair>,
) -> (ClientId, String) {
    let id = sim.connect_kind(kind);
    let info = sim.take_str(id);
    let nonce = nonce_of(&info);
    let mut fields = vec!["\"verbose\":false".to_owned()];
    if let Some(jwt) = jwt {
        fields.push(format!("\"jwt\":\"{jwt}\""));
    }
    if let Some(kp) = seed {
        fields.push(format!("\"sig\":\"{}\"", sign_nonce(&nonce, kp).unwrap()));
    }
    sim.send(id, &format!("CONNECT {{{}}}\r\nPING\r\n", fields.join(",")));
    let out = sim.take_str(id);
    (id, out)
}

fn login(sim: &mut Sim, jwt: &str, seed: &KeyPair) -> (ClientId, String) {
    login_kind(sim, ConnectionType::Standard, Some(jwt), Some(seed))
}

const VIOLATION: &str = "-ERR 'Authorization Violation'\r\n";

#[test]
fn info_asks_for_auth_and_carries_a_nonce() {
    let mut sim = Sim::new(default_config());
    let id = sim.connect_kind(ConnectionType::Standard);
    let info = sim.take_str(id);
    assert!(info.contains("\"auth_required\":true"), "{info}");
    let nonce = nonce_of(&info);
    assert!(
        nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{nonce}"
    );
}

#[test]
fn users_of_one_account_share_it_and_accounts_are_isolated() {
    let k = keys();
    let mut sim = Sim::new(default_config());
    let (u1, u2, u3) = (
        key(KeyPairType::User, 10),
        key(KeyPairType::User, 11),
        key(KeyPairType::User, 12),
    );
    let (a, out) = login(&mut sim, &user_jwt(&k.a, &u1, "", ""), &u1);
    assert_eq!(out, "PONG\r\n");
    let (b, out) = login(&mut sim, &user_jwt(&k.a, &u2, "", ""), &u2);
    assert_eq!(out, "PONG\r\n");
    let (c, out) = login(&mut sim, &user_jwt(&k.b, &u3, "", ""), &u3);
    assert_eq!(out, "PONG\r\n");
    sim.send(b, "SUB x 1\r\nPING\r\n");
    sim.send(c, "SUB x 1\r\nPING\r\n");
    sim.take(b);
    sim.take(c);
    sim.send(a, "PUB x 2\r\nhi\r\nPING\r\n");
    sim.send(b, "PING\r\n");
    sim.send(c, "PING\r\n");
    assert_eq!(sim.take_str(b), "MSG x 1 2\r\nhi\r\nPONG\r\n");
    assert_eq!(sim.take_str(c), "PONG\r\n");
}

#[test]
fn refusals_have_the_reference_error() {
    let k = keys();
    let u = key(KeyPairType::User, 20);
    let stranger = key(KeyPairType::Account, 21);
    let good = user_jwt(&k.a, &u, "", "");
    let cases: Vec<(&str, Option<String>, Option<KeyPair>)> = vec![
        ("no jwt", None, Some(u.clone())),
        ("no signature", Some(good.clone()), None),
        (
            "signature by another key",
            Some(good.clone()),
            Some(key(KeyPairType::User, 22)),
        ),
        (
            "unknown account",
            Some(user_jwt(&stranger, &u, "", "")),
            Some(u.clone()),
        ),
        (
            "expired",
            Some(user_jwt(&k.a, &u, &format!(",\"exp\":{}", NOW - 1), "")),
            Some(u.clone()),
        ),
        (
            "not yet valid",
            Some(user_jwt(&k.a, &u, &format!(",\"nbf\":{}", NOW + 60), "")),
            Some(u.clone()),
        ),
        (
            "connection type",
            Some(user_jwt(
                &k.a,
                &u,
                "",
                r#","allowed_connection_types":["WEBSOCKET"]"#,
            )),
            Some(u.clone()),
        ),
        (
            "src",
            Some(user_jwt(&k.a, &u, "", r#","src":["10.0.0.0/8"]"#)),
            Some(u.clone()),
        ),
        (
            "garbage",
            Some("eyJ0eXAiOiJKV1QifQ.e30.AAAA".to_owned()),
            Some(u.clone()),
        ),
    ];
    for (what, jwt, seed) in cases {
        let mut sim = Sim::new(default_config());
        let (id, out) = login_kind(
            &mut sim,
            ConnectionType::Standard,
            jwt.as_deref(),
            seed.as_ref(),
        );
        assert_eq!(out, VIOLATION, "{what}");
        assert_eq!(
            sim.closed.get(&id),
            Some(&CloseReason::AuthenticationFailure),
            "{what}"
        );
    }
}

#[test]
fn the_failure_log_is_bare_in_operator_mode() {
    // `authViolation` logs the bare error in operator mode, whatever the CONNECT named.
    let auth = broker::auth::Authorizer::new(&default_config().auth).unwrap();
    let mut req = broker::auth::AuthRequest::new(ConnectionType::Standard);
    req.user = Some("x");
    req.nkey = Some("UABC");
    let err = auth.authenticate(&req).unwrap_err();
    assert_eq!(err.to_string(), "authentication error");
    assert_eq!(err.detail(), "Authentication requires a user JWT");
}

#[test]
fn bearer_tokens_skip_the_signature_unless_the_account_forbids_them() {
    let k = keys();
    let u = key(KeyPairType::User, 30);
    let bearer = user_jwt(&k.a, &u, "", r#","bearer_token":true"#);
    let mut sim = Sim::new(default_config());
    let (_, out) = login_kind(&mut sim, ConnectionType::Standard, Some(&bearer), None);
    assert_eq!(out, "PONG\r\n");
    let strict = config_with(
        vec![account_jwt(
            &k,
            &k.a,
            r#","limits":{"subs":-1,"data":-1,"payload":-1,"conn":-1,"leaf":-1,"disallow_bearer":true}"#,
        )],
        None,
    );
    let mut sim = Sim::new(strict);
    let (_, out) = login_kind(&mut sim, ConnectionType::Standard, Some(&bearer), None);
    assert_eq!(out, VIOLATION);
}

#[test]
fn revoked_users_are_refused() {
    let k = keys();
    let u = key(KeyPairType::User, 31);
    let revoking = format!(r#","revocations":{{"{}":{}}}"#, u.public_key(), NOW);
    let mut sim = Sim::new(config_with(vec![account_jwt(&k, &k.a, &revoking)], None));
    let (_, out) = login(&mut sim, &user_jwt(&k.a, &u, "", ""), &u);
    assert_eq!(out, VIOLATION);
}

#[test]
fn signing_keys_and_scoped_templates() {
    let k = keys();
    let signer = key(KeyPairType::Account, 40);
    let scoped = key(KeyPairType::Account, 41);
    let acc = account_jwt(
        &k,
        &k.a,
        &format!(
            r#","signing_keys":["{}",{{"kind":"user_scope","key":"{}","role":"r","template":{{"pub":{{"allow":["{{{{name()}}}}.>"]}},"sub":{{"allow":["_INBOX.>"]}},"subs":-1,"payload":-1}}}}]"#,
            signer.public_key(),
            scoped.public_key()
        ),
    );
    let mut sim = Sim::new(config_with(vec![acc], None));
    let issuer_account = format!(r#","issuer_account":"{}""#, k.a.public_key());
    let u = key(KeyPairType::User, 42);
    let (_, out) = login(&mut sim, &user_jwt(&signer, &u, "", &issuer_account), &u);
    assert_eq!(out, "PONG\r\n");
    // A scoped user gets the template: its name is `n-user`.
    let scoped_user = format!("{issuer_account}NO_LIMITS");
    let (s, out) = login(&mut sim, &user_jwt(&scoped, &u, "", &scoped_user), &u);
    assert_eq!(out, "PONG\r\n");
    sim.send(s, "PUB n-user.x 0\r\n\r\nPUB other 0\r\n\r\nPING\r\n");
    assert_eq!(
        sim.take_str(s),
        "-ERR 'Permissions Violation for Publish to \"other\"'\r\nPONG\r\n"
    );
    // A scoped user may not carry permissions of its own.
    let own = format!(r#"{issuer_account},"pub":{{"allow":["x"]}}NO_LIMITS"#);
    let (_, out) = login(&mut sim, &user_jwt(&scoped, &u, "", &own), &u);
    assert_eq!(out, VIOLATION);
    // An account signing key it does not list.
    let stranger = key(KeyPairType::Account, 43);
    let (_, out) = login(&mut sim, &user_jwt(&stranger, &u, "", &issuer_account), &u);
    assert_eq!(out, VIOLATION);
}

#[test]
fn user_permissions_and_limits() {
    let k = keys();
    let u = key(KeyPairType::User, 50);
    let mut sim = Sim::new(default_config());
    let jwt = user_jwt(
        &k.a,
        &u,
        "",
        r#","pub":{"deny":["secret.>"]},"sub":{"allow":["ok.>"]},"subs":2,"payload":4"#,
    );
    let (id, out) = login(&mut sim, &jwt, &u);
    assert_eq!(out, "PONG\r\n");
    sim.send(
        id,
        "PUB secret.x 0\r\n\r\nSUB no 1\r\nSUB ok.1 2\r\nSUB ok.2 3\r\nSUB ok.3 4\r\nPING\r\n",
    );
    assert_eq!(
        sim.take_str(id),
        "-ERR 'Permissions Violation for Publish to \"secret.x\"'\r\n\
         -ERR 'Permissions Violation for Subscription to \"no\"'\r\n\
         -ERR 'maximum subscriptions exceeded'\r\nPONG\r\n"
    );
    sim.send(id, "PUB ok.1 5\r\n12345\r\n");
    assert_eq!(sim.take_str(id), "-ERR 'Maximum Payload Violation'\r\n");
    assert_eq!(sim.closed.get(&id), Some(&CloseReason::MaxPayloadExceeded));
}

/// A JWT without limits allows nothing of what it does not mention: Go's zero values (nsc
/// always writes -1, unlimited).
#[test]
fn missing_limits_are_zero_as_in_go() {
    let k = keys();
    let u = key(KeyPairType::User, 52);
    let mut sim = Sim::new(default_config());
    let (id, out) = login(&mut sim, &user_jwt(&k.a, &u, "", "NO_LIMITS"), &u);
    assert_eq!(out, "PONG\r\n");
    sim.send(id, "SUB a 1\r\nPING\r\n");
    assert_eq!(
        sim.take_str(id),
        "-ERR 'maximum subscriptions exceeded'\r\nPONG\r\n"
    );
    let bare = account_jwt(&k, &k.b, r#","limits":{}"#);
    let mut sim = Sim::new(config_with(vec![bare], None));
    let (_, out) = login(&mut sim, &user_jwt(&k.b, &u, "", ""), &u);
    assert_eq!(
        out,
        "-ERR 'maximum account active connections exceeded'\r\n"
    );
}

#[test]
fn account_default_permissions_apply_to_users_without_their_own() {
    let k = keys();
    let u = key(KeyPairType::User, 51);
    let acc = account_jwt(
        &k,
        &k.a,
        r#","default_permissions":{"pub":{"allow":["only"]}}"#,
    );
    let mut sim = Sim::new(config_with(vec![acc], None));
    let (id, _) = login(&mut sim, &user_jwt(&k.a, &u, "", ""), &u);
    sim.send(id, "PUB only 0\r\n\r\nPUB other 0\r\n\r\nPING\r\n");
    assert_eq!(
        sim.take_str(id),
        "-ERR 'Permissions Violation for Publish to \"other\"'\r\nPONG\r\n"
    );
}

#[test]
fn account_connection_limit() {
    let k = keys();
    let acc = account_jwt(
        &k,
        &k.a,
        r#","limits":{"subs":-1,"data":-1,"payload":-1,"conn":1,"leaf":-1}"#,
    );
    let mut sim = Sim::new(config_with(vec![acc], None));
    let (u1, u2) = (key(KeyPairType::User, 60), key(KeyPairType::User, 61));
    let (_, out) = login(&mut sim, &user_jwt(&k.a, &u1, "", ""), &u1);
    assert_eq!(out, "PONG\r\n");
    let (id, out) = login(&mut sim, &user_jwt(&k.a, &u2, "", ""), &u2);
    assert_eq!(
        out,
        "-ERR 'maximum account active connections exceeded'\r\n"
    );
    assert_eq!(
        sim.closed.get(&id),
        Some(&CloseReason::MaxAccountConnectionsExceeded)
    );
}

#[test]
fn a_connection_closes_when_its_jwt_expires() {
    let k = keys();
    let u = key(KeyPairType::User, 70);
    let mut sim = Sim::new(default_config());
    let jwt = user_jwt(&k.a, &u, &format!(",\"exp\":{}", NOW + 3), "");
    let (id, out) = login(&mut sim, &jwt, &u);
    assert_eq!(out, "PONG\r\n");
    sim.advance(Duration::from_secs(1));
    assert!(!sim.closed.contains_key(&id));
    sim.advance(Duration::from_secs(3));
    let out = sim.take_str(id);
    assert!(
        out.ends_with("-ERR 'User Authentication Expired'\r\n"),
        "{out}"
    );
    assert_eq!(
        sim.closed.get(&id),
        Some(&CloseReason::AuthenticationExpired)
    );
}

#[test]
fn an_account_expiry_closes_its_users() {
    let k = keys();
    let u = key(KeyPairType::User, 71);
    let acc = encode(
        &claims(
            &k.op,
            &k.a.public_key(),
            "account",
            &format!(",\"exp\":{}", NOW + 2),
            "",
        ),
        &k.op,
    )
    .unwrap();
    let mut sim = Sim::new(config_with(vec![acc], None));
    let (id, out) = login(&mut sim, &user_jwt(&k.a, &u, "", ""), &u);
    assert_eq!(out, "PONG\r\n");
    sim.advance(Duration::from_secs(4));
    let out = sim.take_str(id);
    assert!(
        out.ends_with("-ERR 'Account Authentication Expired'\r\n"),
        "{out}"
    );
}

#[test]
fn a_reload_that_revokes_a_user_closes_its_connection() {
    let k = keys();
    let u = key(KeyPairType::User, 72);
    let keep = key(KeyPairType::User, 73);
    let mut sim = Sim::new(default_config());
    let (id, _) = login(&mut sim, &user_jwt(&k.a, &u, "", ""), &u);
    let (kept, _) = login(&mut sim, &user_jwt(&k.a, &keep, "", ""), &keep);
    let revoking = format!(r#","revocations":{{"{}":{}}}"#, u.public_key(), NOW);
    let now = sim.now;
    sim.broker.reload(
        config_with(vec![account_jwt(&k, &k.a, &revoking)], None),
        now,
    );
    sim.pump();
    assert_eq!(sim.take_str(id), "-ERR 'User Authentication Revoked'\r\n");
    assert_eq!(sim.closed.get(&id), Some(&CloseReason::Revocation));
    assert!(!sim.closed.contains_key(&kept));
}

#[test]
fn private_exports_need_an_activation_token() {
    let k = keys();
    let export = r#","exports":[{"subject":"feed.>","type":"stream","token_req":true}]"#;
    let activation = |sub: &str, subject: &str| {
        encode(
            &claims(
                &k.a,
                sub,
                "activation",
                "",
                &format!(r#","subject":"{subject}","kind":"stream""#),
            ),
            &k.a,
        )
        .unwrap()
    };
    let import = |token: &str| {
        format!(
            r#","imports":[{{"subject":"feed.>","account":"{}","type":"stream","token":"{token}"}}]"#,
            k.a.public_key()
        )
    };
    for (what, token, delivered) in [
        ("valid", activation(&k.b.public_key(), "feed.>"), true),
        (
            "for another account",
            activation(&k.a.public_key(), "feed.>"),
            false,
        ),
        (
            "for a narrower subject",
            activation(&k.b.public_key(), "feed.x"),
            false,
        ),
        ("missing", String::new(), false),
    ] {
        let config = config_with(
            vec![
                account_jwt(&k, &k.a, export),
                account_jwt(&k, &k.b, &import(&token)),
            ],
            None,
        );
        let mut sim = Sim::new(config);
        let (p, s) = (key(KeyPairType::User, 80), key(KeyPairType::User, 81));
        let (publisher, _) = login(&mut sim, &user_jwt(&k.a, &p, "", ""), &p);
        let (subscriber, _) = login(&mut sim, &user_jwt(&k.b, &s, "", ""), &s);
        sim.send(subscriber, "SUB feed.> 1\r\nPING\r\n");
        sim.take(subscriber);
        sim.send(publisher, "PUB feed.a 1\r\nx\r\nPING\r\n");
        sim.send(subscriber, "PING\r\n");
        let got = sim.take_str(subscriber);
        assert_eq!(got.contains("MSG feed.a 1 1"), delivered, "{what}: {got}");
    }
}

#[test]
fn service_imports_from_jwts() {
    let k = keys();
    let exporter = account_jwt(
        &k,
        &k.a,
        r#","exports":[{"subject":"svc","type":"service"}]"#,
    );
    let importer = account_jwt(
        &k,
        &k.b,
        &format!(
            r#","imports":[{{"subject":"svc","account":"{}","type":"service","local_subject":"ask"}}]"#,
            k.a.public_key()
        ),
    );
    let mut sim = Sim::new(config_with(vec![exporter, importer], None));
    let (r, q) = (key(KeyPairType::User, 90), key(KeyPairType::User, 91));
    let (responder, _) = login(&mut sim, &user_jwt(&k.a, &r, "", ""), &r);
    let (requester, _) = login(&mut sim, &user_jwt(&k.b, &q, "", ""), &q);
    sim.send(responder, "SUB svc 1\r\nPING\r\n");
    sim.take(responder);
    sim.send(requester, "SUB reply 1\r\nPUB ask reply 1\r\nq\r\nPING\r\n");
    sim.take(requester);
    sim.send(responder, "PING\r\n");
    let got = sim.take_str(responder);
    assert!(got.starts_with("MSG svc 1 _R_."), "{got}");
}

#[test]
fn websocket_clients_may_bring_the_jwt_in_a_cookie() {
    let k = keys();
    let u = key(KeyPairType::User, 95);
    let jwt = user_jwt(&k.a, &u, "", "");
    let config = config_with(vec![account_jwt(&k, &k.a, "")], Some("jwt"));
    let mut sim = Sim::new(config);
    let addr = "127.0.0.1:40000".parse().unwrap();
    let mut params = ClientParams::new(ConnectionType::WebSocket, addr);
    params.cookies = vec![("jwt".to_owned(), jwt.clone())];
    let id = sim.broker.register_client(sim.now, params);
    sim.out.insert(id, Vec::new());
    sim.reading.insert(id, true);
    sim.pump();
    let nonce = nonce_of(&sim.take_str(id));
    let sig = sign_nonce(&nonce, &u).unwrap();
    sim.send(
        id,
        &format!("CONNECT {{\"verbose\":false,\"sig\":\"{sig}\"}}\r\nPING\r\n"),
    );
    assert_eq!(sim.take_str(id), "PONG\r\n");
    // A TCP client gets nothing from cookies.
    let (_, out) = login_kind(&mut sim, ConnectionType::Standard, None, Some(&u));
    assert_eq!(out, VIOLATION);
}

#[test]
fn start_up_errors_have_the_reference_texts() {
    let k = keys();
    let check = |config: OperatorConfig, want: &str| {
        let auth = AuthConfig {
            operator: Some(config),
            ..AuthConfig::default()
        };
        assert_eq!(
            broker::auth::Authorizer::new(&auth)
                .unwrap_err()
                .to_string(),
            want
        );
    };
    check(
        OperatorConfig {
            operators: vec![account_jwt(&k, &k.a, "")],
            ..OperatorConfig::default()
        },
        "error parsing operator JWT: not operator claim",
    );
    check(
        OperatorConfig {
            trusted_keys: vec!["abc".into()],
            ..OperatorConfig::default()
        },
        "trust key \"abc\" required to be a valid public operator nkey",
    );
    check(
        OperatorConfig {
            operators: vec![operator_jwt(&k)],
            accounts: vec!["garbage".into()],
            ..OperatorConfig::default()
        },
        "invalid account JWT",
    );
    check(
        OperatorConfig {
            operators: vec![operator_jwt(&k)],
            system_account: Some(k.a.public_key()),
            ..OperatorConfig::default()
        },
        "error resolving system account: account missing",
    );
}

#[test]
fn account_leaf_limit_counts_leaf_connections_only() {
    let k = keys();
    let acc = account_jwt(
        &k,
        &k.a,
        r#","limits":{"subs":-1,"data":-1,"payload":-1,"conn":-1,"leaf":1}"#,
    );
    let mut sim = Sim::new(config_with(vec![acc], None));
    let users: Vec<KeyPair> = (100..104).map(|b| key(KeyPairType::User, b)).collect();
    let jwt = |u: &KeyPair| user_jwt(&k.a, u, "", "");
    let (_, out) = login_kind(
        &mut sim,
        ConnectionType::Leaf,
        Some(&jwt(&users[0])),
        Some(&users[0]),
    );
    // An accepted leaf gets the leafnode INFO and the loop-detection subscription first.
    assert!(
        out.contains("LS+ $LDS.") && out.ends_with("PONG\r\n"),
        "{out}"
    );
    let (id, out) = login_kind(
        &mut sim,
        ConnectionType::Leaf,
        Some(&jwt(&users[1])),
        Some(&users[1]),
    );
    assert_eq!(
        out,
        "-ERR 'maximum account active connections exceeded'\r\n"
    );
    assert_eq!(
        sim.closed.get(&id),
        Some(&CloseReason::MaxAccountConnectionsExceeded)
    );
    // Clients are not counted against `leaf`.
    for u in &users[2..] {
        let (_, out) = login(&mut sim, &jwt(u), u);
        assert_eq!(out, "PONG\r\n");
    }
}

/// `conn` counts every connection of the account, leaf nodes too, as the reference's
/// `MaxTotalConnectionsReached` does (its account's client set holds both kinds).
#[test]
fn account_conn_limit_counts_leaf_nodes_too() {
    let k = keys();
    let acc = account_jwt(
        &k,
        &k.a,
        r#","limits":{"subs":-1,"data":-1,"payload":-1,"conn":2,"leaf":-1}"#,
    );
    let mut sim = Sim::new(config_with(vec![acc], None));
    let users: Vec<KeyPair> = (120..123).map(|b| key(KeyPairType::User, b)).collect();
    let jwt = |u: &KeyPair| user_jwt(&k.a, u, "", "");
    let (_, out) = login_kind(
        &mut sim,
        ConnectionType::Leaf,
        Some(&jwt(&users[0])),
        Some(&users[0]),
    );
    assert!(
        out.contains("LS+ $LDS.") && out.ends_with("PONG\r\n"),
        "{out}"
    );
    let (_, out) = login(&mut sim, &jwt(&users[1]), &users[1]);
    assert_eq!(out, "PONG\r\n");
    let (id, out) = login(&mut sim, &jwt(&users[2]), &users[2]);
    assert_eq!(
        out,
        "-ERR 'maximum account active connections exceeded'\r\n"
    );
    assert_eq!(
        sim.closed.get(&id),
        Some(&CloseReason::MaxAccountConnectionsExceeded)
    );
}

/// A reload that lowers `conn` closes the account's oldest connections (leaf nodes among
/// them) and keeps the newest, before any revocation is applied; other accounts are untouched.
#[test]
fn a_reload_that_lowers_conn_closes_the_oldest_connections() {
    let k = keys();
    let other = key(KeyPairType::Account, 124);
    let other_jwt = account_jwt(&k, &other, "");
    let mut sim = Sim::new(config_with(
        vec![account_jwt(&k, &k.a, ""), other_jwt.clone()],
        None,
    ));
    let users: Vec<KeyPair> = (125..130).map(|b| key(KeyPairType::User, b)).collect();
    let jwt = |u: &KeyPair| user_jwt(&k.a, u, "", "");
    let (leaf, out) = login_kind(
        &mut sim,
        ConnectionType::Leaf,
        Some(&jwt(&users[0])),
        Some(&users[0]),
    );
    assert!(
        out.contains("LS+ $LDS.") && out.ends_with("PONG\r\n"),
        "{out}"
    );
    let mut ids = vec![leaf];
    for u in &users[1..4] {
        let (id, out) = login(&mut sim, &jwt(u), u);
        assert_eq!(out, "PONG\r\n");
        ids.push(id);
    }
    let (elsewhere, out) = login(&mut sim, &user_jwt(&other, &users[4], "", ""), &users[4]);
    assert_eq!(out, "PONG\r\n");
    // conn 2, and the newest connection is revoked: it still counts as one of the two kept.
    let lowered = format!(
        r#","limits":{{"subs":-1,"data":-1,"payload":-1,"conn":2,"leaf":-1}},"revocations":{{"{}":{NOW}}}"#,
        users[3].public_key()
    );
    let now = sim.now;
    sim.broker.reload(
        config_with(vec![account_jwt(&k, &k.a, &lowered), other_jwt], None),
        now,
    );
    sim.pump();
    for id in &ids[..2] {
        assert_eq!(
            sim.take_str(*id),
            "-ERR 'maximum account active connections exceeded'\r\n"
        );
        assert_eq!(
            sim.closed.get(id),
            Some(&CloseReason::MaxAccountConnectionsExceeded)
        );
    }
    assert!(!sim.closed.contains_key(&ids[2]));
    assert_eq!(
        sim.take_str(ids[3]),
        "-ERR 'User Authentication Revoked'\r\n"
    );
    assert!(!sim.closed.contains_key(&elsewhere));
}

#[test]
fn operator_signing_keys_and_strict_usage() {
    let k = keys();
    let op_signer = key(KeyPairType::Operator, 110);
    let signing = format!(r#","signing_keys":["{}"]"#, op_signer.public_key());
    let op = |strict: bool| {
        let nats = format!(
            "{signing}{}",
            if strict {
                r#","strict_signing_key_usage":true"#
            } else {
                ""
            }
        );
        encode(
            &claims(&k.op, &k.op.public_key(), "operator", "", &nats),
            &k.op,
        )
        .unwrap()
    };
    let by_signer = encode(
        &claims(&op_signer, &k.a.public_key(), "account", "", ""),
        &op_signer,
    )
    .unwrap();
    let by_identity = encode(&claims(&k.op, &k.b.public_key(), "account", "", ""), &k.op).unwrap();
    for strict in [false, true] {
        let mut config = config_with(vec![by_signer.clone(), by_identity.clone()], None);
        if let Some(o) = config.auth.operator.as_mut() {
            o.operators = vec![op(strict)];
        }
        let mut sim = Sim::new(config);
        let (u1, u2) = (key(KeyPairType::User, 111), key(KeyPairType::User, 112));
        let (_, out) = login(&mut sim, &user_jwt(&k.a, &u1, "", ""), &u1);
        assert_eq!(
            out, "PONG\r\n",
            "signed by the operator's signing key, strict {strict}"
        );
        let (_, out) = login(&mut sim, &user_jwt(&k.b, &u2, "", ""), &u2);
        let want = if strict { VIOLATION } else { "PONG\r\n" };
        assert_eq!(
            out, want,
            "signed by the operator's identity, strict {strict}"
        );
    }
}

#[test]
fn account_mappings_are_refused_by_name() {
    let k = keys();
    let acc = account_jwt(
        &k,
        &k.a,
        r#","mappings":{"a":[{"subject":"b","weight":100}]}"#,
    );
    let auth = AuthConfig {
        operator: Some(OperatorConfig {
            operators: vec![operator_jwt(&k)],
            accounts: vec![acc],
            ..OperatorConfig::default()
        }),
        ..AuthConfig::default()
    };
    let err = broker::auth::Authorizer::new(&auth)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "account JWT {}: subject mappings (mappings) are not supported by natsws",
            k.a.public_key()
        )
    );
}

/// Without a wall clock JWT times cannot be checked: the broker refuses everyone.
#[test]
fn operator_mode_without_a_wall_clock_fails_closed() {
    let k = keys();
    let mut config = default_config();
    config.wall_clock = None;
    assert_eq!(
        broker::Broker::try_new(config.clone(), Instant::now())
            .unwrap_err()
            .to_string(),
        "operator mode needs the wall clock (Config::wall_clock)"
    );
    let mut sim = Sim::new(config);
    let u = key(KeyPairType::User, 120);
    let expired = user_jwt(&k.a, &u, &format!(",\"exp\":{}", NOW - 1), "");
    let id = sim.client();
    sim.send(
        id,
        &format!("CONNECT {{\"verbose\":false,\"jwt\":\"{expired}\"}}\r\nPING\r\n"),
    );
    assert_eq!(sim.take_str(id), VIOLATION);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Hostile `jwt`/`sig` values (random text, or a real token with bytes changed) never
    /// panic the broker and never log anybody in.
    #[test]
    fn hostile_credentials_are_refused(
        jwt in "[ -~]{0,300}",
        sig in "[A-Za-z0-9_=+/-]{0,100}",
        flip in 0usize..2000,
    ) {
        let k = keys();
        let u = key(KeyPairType::User, 130);
        let mut real = user_jwt(&k.a, &u, "", "").into_bytes();
        let at = flip % real.len();
        real[at] = if real[at] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(real).unwrap();
        let mut sim = Sim::new(default_config());
        for token in [jwt.as_str(), tampered.as_str()] {
            let id = sim.client();
            let connect = serde_json::json!({"verbose": false, "jwt": token, "sig": sig});
            sim.send(id, &format!("CONNECT {connect}\r\nPING\r\n"));
            let out = sim.take_str(id);
            proptest::prop_assert!(out.starts_with("-ERR"), "{token:?}: {out}");
        }
    }
}

#[test]
fn a_reload_that_gives_the_account_an_expiry_closes_its_users_then() {
    let k = keys();
    let u = key(KeyPairType::User, 140);
    let mut sim = Sim::new(default_config());
    let (id, _) = login(&mut sim, &user_jwt(&k.a, &u, "", ""), &u);
    let expiring = encode(
        &claims(
            &k.op,
            &k.a.public_key(),
            "account",
            &format!(",\"exp\":{}", NOW + 2),
            "",
        ),
        &k.op,
    )
    .unwrap();
    let now = sim.now;
    sim.broker.reload(config_with(vec![expiring], None), now);
    sim.pump();
    assert!(!sim.closed.contains_key(&id));
    sim.advance(Duration::from_secs(4));
    let out = sim.take_str(id);
    assert!(
        out.ends_with("-ERR 'Account Authentication Expired'\r\n"),
        "{out}"
    );
}

/// The reasons nats-server logs for refused JWT users (`server/auth.go`
/// `processClientOrLeafAuthentication`), each with its text: the library's validation issues
/// (`User JWT no longer valid: &{Issues:[...]}`, Go's `%+v`), decoding errors, the lookups,
/// the nonce signature, revocation, and the two error-level ones.
#[test]
fn refusal_reasons_have_the_reference_texts() {
    let k = keys();
    let revoked = key(KeyPairType::User, 141);
    let acc = account_jwt(
        &k,
        &k.a,
        &format!(r#","revocations":{{"{}":{NOW}}}"#, revoked.public_key()),
    );
    let config = config_with(vec![acc], None).auth;
    let auth = broker::auth::Authorizer::new(&config).unwrap();
    let u = key(KeyPairType::User, 140);
    let stranger = key(KeyPairType::Account, 142);
    let nonce = "abcdefghijklmno";
    let check = |jwt: &str, seed: &KeyPair, want: &str| {
        let sig = sign_nonce(nonce, seed).unwrap();
        let mut req = broker::auth::AuthRequest::new(ConnectionType::Standard);
        req.jwt = Some(jwt);
        req.sig = Some(&sig);
        req.nonce = Some(nonce);
        req.remote = "127.0.0.1".parse().ok();
        req.now_unix = NOW;
        let err = auth.authenticate(&req).unwrap_err();
        assert_eq!(err.detail(), want, "{jwt}");
        assert_eq!(err.to_string(), "authentication error");
        assert_eq!(
            broker::auth::operator::is_error_level(err.detail()),
            want.starts_with("Bad src Ip") || want == "Outside connect times"
        );
    };
    let user = |extra: &str, nats: &str| user_jwt(&k.a, &u, extra, nats);
    check(
        &user(&format!(",\"exp\":{}", NOW - 1), ""),
        &u,
        "User JWT no longer valid: &{Issues:[claim is expired]}",
    );
    check(
        &user(&format!(",\"nbf\":{}", NOW + 60), ""),
        &u,
        "User JWT no longer valid: &{Issues:[claim is not yet valid]}",
    );
    check(
        &user(
            "",
            r#","pub":{"allow":["a b c","q g"]},"sub":{"deny":[""]}"#,
        ),
        &u,
        "User JWT no longer valid: &{Issues:[subject cannot be empty Permission Subject \"a b c\" contains too many spaces Permission Subject \"q g\" is not allowed to contain queue]}",
    );
    check(
        &user(
            "",
            r#","src":["nope"],"times":[{"start":"","end":"25:00:00"}]"#,
        ),
        &u,
        "User JWT no longer valid: &{Issues:[invalid cidr \"nope\" in user src limits time ranges start must contain a start end in time range is invalid \"25:00:00\"]}",
    );
    check(
        &user(
            "",
            r#","times":[{"start":"00:00:00","end":"23:59:59"}],"times_location":"Mars/Olympus""#,
        ),
        &u,
        "User JWT no longer valid: &{Issues:[could not parse iana time zone by name: unknown time zone Mars/Olympus]}",
    );
    check(
        &user("", r#","issuer_account":"nope""#),
        &u,
        "User JWT no longer valid: &{Issues:[account_id is not an account public key]}",
    );
    // Claims in the account's name, signed by another key.
    let forged = encode(
        &claims(
            &k.a,
            &u.public_key(),
            "user",
            "",
            ",\"subs\":-1,\"data\":-1,\"payload\":-1",
        ),
        &stranger,
    )
    .unwrap();
    check(
        &forged,
        &u,
        "User JWT not valid: claim failed V2 signature verification",
    );
    check(
        &user_jwt(&stranger, &u, "", ""),
        &u,
        "Account JWT lookup error: account missing",
    );
    let wrong_signer = user_jwt(
        &stranger,
        &u,
        "",
        &format!(r#","issuer_account":"{}""#, k.a.public_key()),
    );
    check(&wrong_signer, &u, "User JWT issuer is not known");
    check(
        &user("", ""),
        &key(KeyPairType::User, 143),
        "Signature not verified",
    );
    check(
        &user_jwt(&k.a, &revoked, "", ""),
        &revoked,
        "User authentication revoked",
    );
    check(
        &user("", r#","src":["10.0.0.0/8"]"#),
        &u,
        "Bad src Ip 127.0.0.1",
    );
    // 1_800_000_000 is 08:00:00 UTC; a single-digit hour is valid, as in Go's "15:04:05".
    check(
        &user("", r#","times":[{"start":"9:00:00","end":"10:00:00"}]"#),
        &u,
        "Outside connect times",
    );
}

/// An account JWT with a blocking validation issue (here: invalid import subjects or
/// activation tokens, service exports that contain each other, bad response types or
/// thresholds, a non-account signing key, an invalid default permission) or over its operator
/// limits (more imports or exports than `limits.imports` /
/// `limits.exports`, a wildcard export without `limits.wildcards`) or signed by an untrusted
/// key is never loaded, as nats-server's `verifyAccountClaims`: its users are refused with
/// `Account JWT lookup error: account validation failed` and its exports serve nobody.
#[test]
fn accounts_that_fail_validation_are_not_loaded() {
    let k = keys();
    let u = key(KeyPairType::User, 160);
    let stranger_op = key(KeyPairType::Operator, 161);
    let bad = [
        r#","exports":[{"subject":"a.>","type":"stream"}],"limits":{"subs":-1,"data":-1,"payload":-1,"imports":-1,"exports":5,"wildcards":false,"conn":-1,"leaf":-1}"#,
        r#","exports":[{"subject":"a","type":"stream"},{"subject":"b","type":"stream"}],"limits":{"subs":-1,"data":-1,"payload":-1,"imports":-1,"exports":1,"wildcards":true,"conn":-1,"leaf":-1}"#,
        // A missing `imports` limit is Go's zero: no import allowed.
        &format!(
            r#","imports":[{{"subject":"x","account":"{}","type":"stream"}}],"limits":{{"subs":-1,"data":-1,"payload":-1,"exports":-1,"wildcards":true,"conn":-1,"leaf":-1}}"#,
            k.b.public_key()
        ),
        // The library's other blocking issues (`AccountClaims.Validate`).
        &format!(
            r#","imports":[{{"subject":"x y","account":"{}","type":"stream"}}]"#,
            k.b.public_key()
        ),
        &format!(
            r#","imports":[{{"subject":"x","account":"{}","type":"stream","token":"bad"}}]"#,
            k.b.public_key()
        ),
        r#","exports":[{"subject":"a.>","type":"service"},{"subject":"a.b","type":"service"}]"#,
        r#","exports":[{"subject":"a","type":"service","response_threshold":-5}]"#,
        r#","exports":[{"subject":"a","type":"stream","response_type":"Stream"}]"#,
        &format!(r#","signing_keys":["{}"]"#, k.op.public_key()),
        r#","default_permissions":{"pub":{"allow":["a q"]}}"#,
    ];
    let nonce = "abcdefghijklmno";
    let refused = |config: Config| {
        let auth = broker::auth::Authorizer::new(&config.auth).unwrap();
        let jwt = user_jwt(&k.a, &u, "", "");
        let sig = sign_nonce(nonce, &u).unwrap();
        let mut req = broker::auth::AuthRequest::new(ConnectionType::Standard);
        req.jwt = Some(&jwt);
        req.sig = Some(&sig);
        req.nonce = Some(nonce);
        req.now_unix = NOW;
        auth.authenticate(&req).err().map(|e| e.detail().to_owned())
    };
    for nats in bad {
        assert_eq!(
            refused(config_with(vec![account_jwt(&k, &k.a, nats)], None)),
            Some("Account JWT lookup error: account validation failed".to_owned()),
            "{nats}"
        );
    }
    let untrusted = encode(
        &claims(
            &stranger_op,
            &k.a.public_key(),
            "account",
            "",
            ACCOUNT_LIMITS,
        ),
        &stranger_op,
    )
    .unwrap();
    assert_eq!(
        refused(config_with(vec![untrusted], None)),
        Some("Account JWT lookup error: account validation failed".to_owned())
    );
    // Within its limits the same account loads.
    let ok = r#","exports":[{"subject":"a.>","type":"stream"}],"limits":{"subs":-1,"data":-1,"payload":-1,"imports":0,"exports":1,"wildcards":true,"conn":-1,"leaf":-1}"#;
    assert_eq!(
        refused(config_with(vec![account_jwt(&k, &k.a, ok)], None)),
        None
    );
    // An invalid exporter's stream reaches no importer.
    let exporter = account_jwt(&k, &k.a, bad[0]);
    let importer = account_jwt(
        &k,
        &k.b,
        &format!(
            r#","imports":[{{"subject":"a.>","account":"{}","type":"stream"}}]"#,
            k.a.public_key()
        ),
    );
    let mut sim = Sim::new(config_with(vec![exporter, importer], None));
    let s = key(KeyPairType::User, 162);
    let (sub, out) = login(&mut sim, &user_jwt(&k.b, &s, "", ""), &s);
    assert_eq!(out, "PONG\r\n");
    sim.send(sub, "SUB a.> 1\r\nPING\r\n");
    assert_eq!(sim.take_str(sub), "PONG\r\n");
    let (_, out) = login(&mut sim, &user_jwt(&k.a, &u, "", ""), &u);
    assert_eq!(out, VIOLATION);
}

/// One pushed account JWT changes that account alone (`set_operator_account`): its clients
/// are checked again as a reload checks them (a lowered `conn` closes the oldest, a revoked
/// user is told so), the account importing from it follows its exports, and the clients of
/// every other account are not checked again. The control: a reload at the same instant
/// re-authenticates the other account's user, whose JWT has expired meanwhile, and closes it.
#[test]
fn one_pushed_account_changes_that_account_alone() {
    let k = keys();
    let c = key(KeyPairType::Account, 140);
    let export = r#","exports":[{"subject":"feed.>","type":"stream"}]"#;
    let import = format!(
        r#","imports":[{{"subject":"feed.>","account":"{}","type":"stream"}}]"#,
        k.a.public_key()
    );
    let accounts = || {
        vec![
            account_jwt(&k, &k.a, export),
            account_jwt(&k, &k.b, &import),
            account_jwt(&k, &c, ""),
        ]
    };
    let users: Vec<KeyPair> = (141..146).map(|b| key(KeyPairType::User, b)).collect();
    // A's users 0..3 (the first publishes), B's subscriber 3 through the import, C's user 4
    // whose JWT expires 5 s from now.
    let start = |sim: &mut Sim| {
        let mut a_ids = Vec::new();
        for u in &users[..3] {
            let (id, out) = login(sim, &user_jwt(&k.a, u, "", ""), u);
            assert_eq!(out, "PONG\r\n");
            a_ids.push(id);
        }
        let (b_id, out) = login(sim, &user_jwt(&k.b, &users[3], "", ""), &users[3]);
        assert_eq!(out, "PONG\r\n");
        sim.send(b_id, "SUB feed.> 1\r\nPING\r\n");
        assert_eq!(sim.take_str(b_id), "PONG\r\n");
        let exp = format!(r#","exp":{}"#, NOW + 5);
        let (c_id, out) = login(sim, &user_jwt(&c, &users[4], &exp, ""), &users[4]);
        assert_eq!(out, "PONG\r\n");
        (a_ids, b_id, c_id)
    };
    let delivered = |sim: &mut Sim, from: ClientId, to: ClientId| {
        sim.send(from, "PUB feed.x 1\r\nx\r\nPING\r\n");
        sim.take(from);
        sim.send(to, "PING\r\n");
        sim.take_str(to).contains("MSG feed.x 1 1\r\nx\r\n")
    };
    // A keeps its export, lowers `conn` to 2 and revokes user 2.
    let lowered = format!(
        r#"{export},"limits":{{"subs":-1,"data":-1,"payload":-1,"imports":-1,"exports":-1,"wildcards":true,"conn":2,"leaf":-1}},"revocations":{{"{}":{NOW}}}"#,
        users[2].public_key()
    );
    let pushed = account_jwt(&k, &k.a, &lowered);

    let mut sim = Sim::new(config_with(accounts(), None));
    let (a_ids, b_id, c_id) = start(&mut sim);
    assert!(delivered(&mut sim, a_ids[1], b_id));
    // Ten seconds on: C's user JWT has expired, its timer not yet run.
    let later = sim.now + Duration::from_secs(10);
    let update = sim.broker.set_operator_account(&pushed, later).unwrap();
    sim.pump();
    // A's two clients the lowered `conn` left (it closed the oldest first); nobody else.
    assert_eq!(update.rechecked, 2);
    assert_eq!(update.replaced, vec![account_jwt(&k, &k.a, export)]);
    assert_eq!(
        sim.broker.operator_account_jwt(&k.a.public_key()),
        Some(pushed.as_str())
    );
    assert_eq!(
        sim.take_str(a_ids[0]),
        "-ERR 'maximum account active connections exceeded'\r\n"
    );
    assert_eq!(
        sim.closed.get(&a_ids[0]),
        Some(&CloseReason::MaxAccountConnectionsExceeded)
    );
    assert_eq!(
        sim.take_str(a_ids[2]),
        "-ERR 'User Authentication Revoked'\r\n"
    );
    assert_eq!(sim.closed.get(&a_ids[2]), Some(&CloseReason::Revocation));
    let out = sim.take_str(a_ids[1]);
    assert_eq!(sim.closed.get(&a_ids[1]), None, "{out}");
    assert!(!sim.closed.contains_key(&b_id));
    assert!(!sim.closed.contains_key(&c_id), "C was checked again");
    assert_eq!(sim.take_str(c_id), "");
    assert!(delivered(&mut sim, a_ids[1], b_id), "B's import follows A");
    // The configuration the broker reports follows the change.
    let op = sim.broker.config().auth.operator.clone().unwrap();
    assert_eq!(op.accounts.len(), 3);
    assert!(op.accounts.contains(&pushed));

    // A without its export: B's import no longer delivers; with it again, it does.
    sim.broker
        .set_operator_account(&account_jwt(&k, &k.a, ""), later)
        .unwrap();
    sim.pump();
    assert!(!delivered(&mut sim, a_ids[1], b_id));
    sim.broker.set_operator_account(&pushed, later).unwrap();
    sim.pump();
    assert!(delivered(&mut sim, a_ids[1], b_id));

    // A JWT natsws cannot serve changes nothing.
    let mapped = account_jwt(&k, &k.a, r#","mappings":{"x":[{"subject":"y"}]}"#);
    assert!(sim.broker.set_operator_account(&mapped, later).is_err());
    assert_eq!(
        sim.broker.operator_account_jwt(&k.a.public_key()),
        Some(pushed.as_str())
    );

    // Removing A closes its users as an expired account would, and B's import goes with it.
    let removed = sim
        .broker
        .remove_operator_accounts(&[k.a.public_key()], later);
    sim.pump();
    assert_eq!(removed.rechecked, 1);
    assert_eq!(removed.replaced, vec![pushed.clone()]);
    assert_eq!(
        sim.take_str(a_ids[1]),
        "-ERR 'Account Authentication Expired'\r\n"
    );
    assert!(sim.broker.operator_account_jwt(&k.a.public_key()).is_none());
    assert!(!sim.closed.contains_key(&b_id));
    assert!(!sim.closed.contains_key(&c_id));

    // The control: a reload at that instant checks C's user again and refuses it.
    let mut sim = Sim::new(config_with(accounts(), None));
    let (_, _, c_id) = start(&mut sim);
    let mut changed = accounts();
    changed[0] = pushed;
    sim.broker.reload(config_with(changed, None), later);
    sim.pump();
    assert_eq!(sim.take_str(c_id), VIOLATION);
}
