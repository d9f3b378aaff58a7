//! Operator mode through the real binary: an operator JWT, account JWTs from the resolver,
//! users with JWTs signing the INFO nonce (or bearer tokens), over TCP and WebSocket, and the
//! browser case of a JWT in the `jwt_cookie`. Every scenario runs against nats-server 2.9.10
//! from the same configuration and the same JWTs, with the same assertions.
//!
//! The keys are made at test time from fixed bytes (nothing secret is committed); the JWTs are
//! signed with `broker::auth::jwt::encode`, the same v2 format nsc writes.
mod common;

use std::time::Duration;

use broker::auth::jwt::{KeyPair, KeyPairType, encode, sign_nonce};
use common::signer::{ACCOUNT_LIMITS, account_jwt, claims, key, keys, operator_jwt, user_jwt};
use common::{Conn, Server, Target, Transport, now_unix, on_both_transports};

/// A config with the operator in a file, accounts A and B preloaded (A with `a_nats`). The
/// operator file is written once per directory: a config made again for a reload must name
/// the same operator JWT (its `iat` would differ, and nats-server refuses to reload a
/// changed operator).
fn conf(dir: &std::path::Path, a_nats: &str, ws_extra: &str) -> String {
    let k = keys();
    let existing = dir.join("op.jwt");
    let op = if existing.exists() {
        existing.to_string_lossy().into_owned()
    } else {
        common::write_file(dir, "op.jwt", &operator_jwt(&k))
    };
    format!(
        "listen: \"127.0.0.1:-1\"\nwebsocket {{ listen: \"127.0.0.1:-1\", no_tls: true {ws_extra} }}\noperator: \"{op}\"\nresolver: MEMORY\nresolver_preload {{\n  {}: {}\n  {}: {}\n}}\n",
        k.a.public_key(),
        account_jwt(&k, &k.a, a_nats),
        k.b.public_key(),
        account_jwt(&k, &k.b, ""),
    )
}

fn start(target: Target, a_nats: &str, ws_extra: &str) -> Option<Server> {
    let dir = common::temp_dir("operator");
    let text = conf(&dir, a_nats, ws_extra);
    target.with_config(&text, &[])
}

impl Conn {
    /// Opens a connection (a WebSocket upgrade with `headers`) and returns it with the INFO
    /// nonce.
    fn open(srv: &Server, transport: Transport, headers: &str) -> (Self, String) {
        let (conn, info) = Self::dial(srv, transport, headers);
        assert!(info.contains("\"auth_required\":true"), "{info}");
        let start = info.find("\"nonce\":\"").expect("INFO carries a nonce") + 9;
        let nonce = info[start..]
            .split('"')
            .next()
            .unwrap_or_default()
            .to_owned();
        (conn, nonce)
    }

    /// Connects with `jwt` and, when `seed` is given, the nonce signed with it; returns the
    /// connection and the answer to `CONNECT` + `PING` (up to the PONG or the `-ERR`).
    fn login(
        srv: &Server,
        transport: Transport,
        jwt: Option<&str>,
        seed: Option<&KeyPair>,
    ) -> (Self, String) {
        let (mut conn, nonce) = Self::open(srv, transport, "");
        let answer = conn.connect(&nonce, jwt, seed);
        (conn, answer)
    }

    fn connect(&mut self, nonce: &str, jwt: Option<&str>, seed: Option<&KeyPair>) -> String {
        let mut fields = vec!["\"verbose\":false".to_owned(), "\"protocol\":1".to_owned()];
        if let Some(jwt) = jwt {
            fields.push(format!("\"jwt\":\"{jwt}\""));
        }
        if let Some(kp) = seed {
            fields.push(format!("\"sig\":\"{}\"", sign_nonce(nonce, kp).unwrap()));
        }
        self.send(&format!("CONNECT {{{}}}\r\nPING\r\n", fields.join(",")));
        self.read_either("PONG\r\n", "-ERR")
    }
}

const VIOLATION: &str = "-ERR 'Authorization Violation'\r\n";

/// Users of one account share its subjects; another account's users see nothing.
fn users_are_bound_to_their_accounts(target: Target, transport: Transport) {
    let Some(srv) = start(target, "", "") else {
        return;
    };
    let k = keys();
    let (u1, u2, u3) = (
        key(KeyPairType::User, 10),
        key(KeyPairType::User, 11),
        key(KeyPairType::User, 12),
    );
    let (mut a1, out) = Conn::login(
        &srv,
        transport,
        Some(&user_jwt(&k.a, &u1, "", "")),
        Some(&u1),
    );
    assert_eq!(out, "PONG\r\n");
    let (mut a2, out) = Conn::login(
        &srv,
        transport,
        Some(&user_jwt(&k.a, &u2, "", "")),
        Some(&u2),
    );
    assert_eq!(out, "PONG\r\n");
    let (mut b1, out) = Conn::login(
        &srv,
        transport,
        Some(&user_jwt(&k.b, &u3, "", "")),
        Some(&u3),
    );
    assert_eq!(out, "PONG\r\n");
    a2.send("SUB x 1\r\n");
    b1.send("SUB x 1\r\n");
    a2.sync();
    b1.sync();
    a1.send("PUB x 2\r\nhi\r\n");
    a1.sync();
    assert_eq!(a2.sync(), "MSG x 1 2\r\nhi\r\n");
    assert_eq!(b1.sync(), "");
}
on_both_transports!(users_are_bound_to_their_accounts);

/// Users that must be refused get the reference's `-ERR`.
fn bad_users_are_refused(target: Target, transport: Transport) {
    let u = key(KeyPairType::User, 20);
    let revoked = key(KeyPairType::User, 21);
    let revocations = format!(
        r#","revocations":{{"{}":{}}}"#,
        revoked.public_key(),
        now_unix()
    );
    let Some(srv) = start(target, &revocations, "") else {
        return;
    };
    let k = keys();
    let stranger = key(KeyPairType::Account, 22);
    let good = user_jwt(&k.a, &u, "", "");
    let other_seed = key(KeyPairType::User, 23);
    let cases: Vec<(&str, Option<String>, Option<&KeyPair>)> = vec![
        ("no jwt", None, Some(&u)),
        ("no signature", Some(good.clone()), None),
        ("wrong signature", Some(good.clone()), Some(&other_seed)),
        (
            "unknown account",
            Some(user_jwt(&stranger, &u, "", "")),
            Some(&u),
        ),
        (
            "expired",
            Some(user_jwt(
                &k.a,
                &u,
                &format!(",\"exp\":{}", now_unix() - 5),
                "",
            )),
            Some(&u),
        ),
        (
            "revoked",
            Some(user_jwt(&k.a, &revoked, "", "")),
            Some(&revoked),
        ),
        (
            "connection type",
            Some(user_jwt(
                &k.a,
                &u,
                "",
                if transport == Transport::Tcp {
                    r#","allowed_connection_types":["WEBSOCKET"]"#
                } else {
                    r#","allowed_connection_types":["STANDARD"]"#
                },
            )),
            Some(&u),
        ),
        (
            "src",
            Some(user_jwt(&k.a, &u, "", r#","src":["10.1.2.0/24"]"#)),
            Some(&u),
        ),
    ];
    for (what, jwt, seed) in cases {
        let (_, out) = Conn::login(&srv, transport, jwt.as_deref(), seed);
        assert_eq!(out, VIOLATION, "{what}");
    }
    // The same user with its own signature is fine, and so is a `src` that holds the peer.
    let (_, out) = Conn::login(&srv, transport, Some(&good), Some(&u));
    assert_eq!(out, "PONG\r\n");
    let local = user_jwt(&k.a, &u, "", r#","src":["10.1.2.0/24","127.0.0.0/8"]"#);
    let (_, out) = Conn::login(&srv, transport, Some(&local), Some(&u));
    assert_eq!(out, "PONG\r\n");
}
on_both_transports!(bad_users_are_refused);

/// Permissions and limits of the user JWT. A JWT payload limit other than the server's is
/// announced by an INFO after the first PONG.
fn user_permissions_apply(target: Target, transport: Transport) {
    let Some(srv) = start(target, "", "") else {
        return;
    };
    let k = keys();
    let u = key(KeyPairType::User, 30);
    let jwt = user_jwt(
        &k.a,
        &u,
        "",
        r#","pub":{"deny":["secret.>"]},"sub":{"allow":["ok.>"]},"subs":1,"payload":8"#,
    );
    let (mut c, mut out) = Conn::login(&srv, transport, Some(&jwt), Some(&u));
    if !out.contains("INFO") {
        // Over TCP the INFO line comes on its own.
        out.push_str(&c.read_either(" \r\n", "\u{0}never"));
    }
    let info = out.strip_prefix("PONG\r\n").unwrap_or_default();
    assert!(info.starts_with("INFO {"), "{out}");
    assert!(info.contains("\"max_payload\":8,"), "{info}");
    assert!(!info.contains("nonce"), "{info}");
    c.send("PUB secret.x 0\r\n\r\nSUB no 1\r\nSUB ok.1 2\r\nSUB ok.2 3\r\n");
    assert_eq!(
        c.sync(),
        "-ERR 'Permissions Violation for Publish to \"secret.x\"'\r\n\
         -ERR 'Permissions Violation for Subscription to \"no\"'\r\n\
         -ERR 'maximum subscriptions exceeded'\r\n"
    );
    c.send("PUB ok.1 9\r\n123456789\r\n");
    let rest = c.read_either("Violation", "\u{0}never");
    assert_eq!(rest, "-ERR 'Maximum Payload Violation'\r\n");
}
on_both_transports!(user_permissions_apply);

/// A bearer JWT needs no signature.
fn bearer_tokens_need_no_signature(target: Target, transport: Transport) {
    let Some(srv) = start(target, "", "") else {
        return;
    };
    let k = keys();
    let u = key(KeyPairType::User, 40);
    let bearer = user_jwt(&k.a, &u, "", r#","bearer_token":true"#);
    let (_, out) = Conn::login(&srv, transport, Some(&bearer), None);
    assert_eq!(out, "PONG\r\n");
}
on_both_transports!(bearer_tokens_need_no_signature);

/// A connection closes when its user JWT expires.
fn connections_close_at_expiry(target: Target, transport: Transport) {
    let Some(srv) = start(target, "", "") else {
        return;
    };
    let k = keys();
    let u = key(KeyPairType::User, 50);
    let jwt = user_jwt(&k.a, &u, &format!(",\"exp\":{}", now_unix() + 2), "");
    let (mut c, out) = Conn::login(&srv, transport, Some(&jwt), Some(&u));
    assert_eq!(out, "PONG\r\n");
    let started = std::time::Instant::now();
    let rest = c.read_either("-ERR 'User Authentication Expired'", "\u{0}never");
    assert!(
        rest.contains("-ERR 'User Authentication Expired'\r\n"),
        "{rest}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}
on_both_transports!(connections_close_at_expiry);

/// A browser's login: the page's HTTP server set an HttpOnly cookie with the user JWT (a
/// bearer token here, as a page holds no seed); the CONNECT carries no credentials.
fn jwt_cookie_logs_in_websocket_clients(target: Target, transport: Transport) {
    let Some(srv) = start(target, "", ", jwt_cookie: \"natsjwt\"") else {
        return;
    };
    let k = keys();
    let u = key(KeyPairType::User, 60);
    let bearer = user_jwt(&k.a, &u, "", r#","bearer_token":true"#);
    let cookie = format!("Cookie: theme=dark; natsjwt={bearer}\r\n");
    let (mut conn, nonce) = Conn::open(&srv, transport, &cookie);
    let out = conn.connect(&nonce, None, None);
    match transport {
        Transport::Ws => assert_eq!(out, "PONG\r\n"),
        // Cookies come only with a WebSocket upgrade.
        Transport::Tcp => assert_eq!(out, VIOLATION),
    }
    if transport == Transport::Ws {
        // A JWT in CONNECT wins over the cookie.
        let other = key(KeyPairType::User, 61);
        let bad = user_jwt(&k.a, &other, &format!(",\"exp\":{}", now_unix() - 5), "");
        let (mut conn, nonce) = Conn::open(&srv, transport, &cookie);
        assert_eq!(conn.connect(&nonce, Some(&bad), Some(&other)), VIOLATION);
    }
}
on_both_transports!(jwt_cookie_logs_in_websocket_clients);

/// A private stream export reaches an importer with a valid activation token.
fn activation_tokens_open_private_exports(target: Target, transport: Transport) {
    let k = keys();
    let activation = encode(
        &claims(
            &k.a,
            &k.b.public_key(),
            "activation",
            "",
            r#","subject":"feed.>","kind":"stream""#,
        ),
        &k.a,
    )
    .unwrap();
    let dir = common::temp_dir("operator");
    let op = common::write_file(&dir, "op.jwt", &operator_jwt(&k));
    let text = format!(
        "listen: \"127.0.0.1:-1\"\nwebsocket {{ listen: \"127.0.0.1:-1\", no_tls: true }}\noperator: \"{op}\"\nresolver: MEMORY\nresolver_preload {{\n  {}: {}\n  {}: {}\n}}\n",
        k.a.public_key(),
        account_jwt(
            &k,
            &k.a,
            r#","exports":[{"subject":"feed.>","type":"stream","token_req":true},{"subject":"open.>","type":"stream"}]"#
        ),
        k.b.public_key(),
        account_jwt(
            &k,
            &k.b,
            &format!(
                r#","imports":[{{"subject":"feed.>","account":"{a}","type":"stream","token":"{activation}"}},{{"subject":"open.>","account":"{a}","type":"stream","to":"pre"}}]"#,
                a = k.a.public_key()
            )
        ),
    );
    let Some(srv) = target.with_config(&text, &[]) else {
        return;
    };
    let (p, s) = (key(KeyPairType::User, 70), key(KeyPairType::User, 71));
    let (mut publisher, _) =
        Conn::login(&srv, transport, Some(&user_jwt(&k.a, &p, "", "")), Some(&p));
    let (mut subscriber, out) =
        Conn::login(&srv, transport, Some(&user_jwt(&k.b, &s, "", "")), Some(&s));
    assert_eq!(out, "PONG\r\n");
    subscriber.send("SUB feed.> 1\r\nSUB pre.open.> 2\r\n");
    subscriber.sync();
    publisher.send("PUB feed.a 1\r\nx\r\nPUB open.b 1\r\ny\r\n");
    publisher.sync();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        subscriber.sync(),
        "MSG feed.a 1 1\r\nx\r\nMSG pre.open.b 2 1\r\ny\r\n"
    );
}
on_both_transports!(activation_tokens_open_private_exports);

/// Start-up errors for bad operator settings, as nats-server words them.
#[test]
fn bad_operator_settings_are_refused_at_start() {
    let k = keys();
    let dir = common::temp_dir("operator-bad");
    let conf_path = dir.join("bad.conf");
    let check = |text: &str, want: &str| {
        std::fs::write(&conf_path, text).unwrap();
        let out = std::process::Command::new(common::bin())
            .arg("-c")
            .arg(&conf_path)
            .arg("-t")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}: accepted");
        assert!(err.contains(want), "{text}:\n{err}");
    };
    check(
        "operator: /nonexistent/op.jwt\nresolver: MEMORY\n",
        "error parsing operator JWT: open /nonexistent/op.jwt: no such file or directory",
    );
    check(
        &format!(
            "operator: {}\nresolver: MEMORY\n",
            account_jwt(&k, &k.a, "")
        ),
        "error parsing operator JWT: not operator claim",
    );
    check(
        &format!(
            "operator: {}\nresolver: MEMORY\nresolver_preload {{ {}: abc }}\n",
            operator_jwt(&k),
            k.a.public_key()
        ),
        "invalid account JWT",
    );
    check(
        "trusted: abc\n",
        "trust key \"abc\" required to be a valid public operator nkey",
    );
    check(
        &format!(
            "operator: {}\nresolver: URL(http://127.0.0.1:9/)\n",
            operator_jwt(&k)
        ),
        "the URL account resolver (resolver: URL(...)) is not supported by natsws",
    );
    check(
        &format!("operator: {}\n", operator_jwt(&k)),
        "operators require an account resolver to be configured",
    );
    check(
        &format!(
            "operator: {}\nresolver: MEMORY\nauthorization {{ users: [{{user: a, password: b}}] }}\n",
            operator_jwt(&k)
        ),
        "operators do not allow users to be configured directly",
    );
    check(
        &format!(
            "operator: {}\nsystem_account: {}\nresolver: MEMORY\n",
            operator_jwt(&k),
            k.a.public_key()
        ),
        "error resolving system account: account missing",
    );
}

/// The full resolver reads `<dir>/<account>.jwt`; a reload that brings an account JWT revoking
/// a connected user closes that connection. natsws only: nats-server 2.9.10 takes directory
/// changes only through its system account (`nsc push`, see `claims_update`), and a reload
/// does not apply them (the revoked user stays connected; its reload swaps in the new, not yet
/// started resolver: `server/reload.go` `reloadAuthorization`).
#[test]
fn full_resolver_reload_revokes_live_users() {
    let k = keys();
    let Some(Full {
        srv, jwts, text, ..
    }) = start_full(Target::Natsws, false)
    else {
        return;
    };
    let write_account = |nats: &str| {
        std::fs::write(
            jwts.join(format!("{}.jwt", k.a.public_key())),
            account_jwt(&k, &k.a, nats),
        )
        .unwrap();
    };
    let (u, keep) = (key(KeyPairType::User, 80), key(KeyPairType::User, 81));
    let mut c = logged_in(&srv, Transport::Tcp, &k.a, &u);
    let mut kept = logged_in(&srv, Transport::Ws, &k.a, &keep);
    write_account(&format!(
        r#","revocations":{{"{}":{}}}"#,
        u.public_key(),
        now_unix()
    ));
    srv.reload(&text, 1);
    let rest = c.read_either("Revoked", "\u{0}never");
    assert!(
        rest.contains("-ERR 'User Authentication Revoked'\r\n"),
        "{rest}"
    );
    assert_eq!(kept.sync(), "");
}

/// A reload whose `resolver_preload` brings an account JWT that revokes a connected user
/// closes that user's connection and keeps the others. nats-server re-reads a MEMORY
/// resolver's preload on reload too (`server/reload.go` `reloadAuthorization`: the accounts
/// are fetched again and `updateAccountWithClaimJWT` applies them).
fn preload_reload_revokes_live_users(target: Target, transport: Transport) {
    let dir = common::temp_dir("operator-reload");
    let base = conf(&dir, "", "");
    let Some(srv) = target.with_config(&base, &[]) else {
        return;
    };
    let k = keys();
    let (u, keep) = (key(KeyPairType::User, 90), key(KeyPairType::User, 91));
    let (mut c, out) = Conn::login(&srv, transport, Some(&user_jwt(&k.a, &u, "", "")), Some(&u));
    assert_eq!(out, "PONG\r\n");
    let (mut kept, out) = Conn::login(
        &srv,
        transport,
        Some(&user_jwt(&k.a, &keep, "", "")),
        Some(&keep),
    );
    assert_eq!(out, "PONG\r\n");
    let revoking = format!(r#","revocations":{{"{}":{}}}"#, u.public_key(), now_unix());
    srv.reload(&conf(&dir, &revoking, ""), 1);
    let log = srv.log_text();
    assert!(!log.contains("Failed to reload"), "{log}");
    let rest = c.read_either("Revoked", "\u{0}never");
    assert!(
        rest.contains("-ERR 'User Authentication Revoked'\r\n"),
        "{rest}"
    );
    assert_eq!(kept.sync(), "");
}
on_both_transports!(preload_reload_revokes_live_users);

/// Connect `times` (UTC; nats-server uses the server's zone, UTC on the test machines, and the
/// case sets `times_location: UTC` to be sure): outside every window is refused; inside one the
/// user connects.
fn connect_times_apply(target: Target, transport: Transport) {
    let Some(srv) = start(target, "", "") else {
        return;
    };
    let k = keys();
    let u = key(KeyPairType::User, 95);
    let clock = |secs: i64| {
        let s = secs.rem_euclid(86_400);
        format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    };
    let now = now_unix();
    // Windows that do not wrap past midnight (the reference treats those specially).
    if (now.rem_euclid(86_400)) < 3 * 3600 || (now.rem_euclid(86_400)) > 21 * 3600 {
        eprintln!("too close to midnight UTC for this case; skipped");
        return;
    }
    let window = |from: i64, to: i64| {
        format!(
            r#","times":[{{"start":"{}","end":"{}"}}],"times_location":"UTC""#,
            clock(now + from),
            clock(now + to)
        )
    };
    let inside = user_jwt(&k.a, &u, "", &window(-3600, 3600));
    let (_, out) = Conn::login(&srv, transport, Some(&inside), Some(&u));
    assert_eq!(out, "PONG\r\n");
    let later = user_jwt(&k.a, &u, "", &window(3600, 7200));
    let (_, out) = Conn::login(&srv, transport, Some(&later), Some(&u));
    assert_eq!(out, VIOLATION);
    // Go's time.Parse("15:04:05") takes a fractional second the layout does not name.
    let fractional = format!(
        r#","times":[{{"start":"{}.25","end":"{},5"}}],"times_location":"UTC""#,
        clock(now - 3600),
        clock(now + 3600)
    );
    let inside = user_jwt(&k.a, &u, "", &fractional);
    let (_, out) = Conn::login(&srv, transport, Some(&inside), Some(&u));
    assert_eq!(out, "PONG\r\n");
    // A period with no digit after it is extra text: the JWT does not validate.
    let dangling = format!(
        r#","times":[{{"start":"{}.","end":"{}"}}],"times_location":"UTC""#,
        clock(now - 3600),
        clock(now + 3600)
    );
    let bad = user_jwt(&k.a, &u, "", &dangling);
    let (_, out) = Conn::login(&srv, transport, Some(&bad), Some(&u));
    assert_eq!(out, VIOLATION);
}
on_both_transports!(connect_times_apply);

/// A reload whose account JWT lowers `conn` below the account's open connections closes the
/// oldest ones with `-ERR 'maximum account active connections exceeded'` and keeps the newest
/// (`server/accounts.go` `updateAccountClaimsWithRefresh`); another account is untouched, and
/// a new connection over the limit is refused at CONNECT.
fn account_conn_limit_lowered_by_reload(target: Target, transport: Transport) {
    let dir = common::temp_dir("operator-conn-reload");
    let Some(srv) = target.with_config(&conf(&dir, "", ""), &[]) else {
        return;
    };
    let k = keys();
    let mut conns = Vec::new();
    for byte in 100..103 {
        let u = key(KeyPairType::User, byte);
        let (c, out) = Conn::login(&srv, transport, Some(&user_jwt(&k.a, &u, "", "")), Some(&u));
        assert_eq!(out, "PONG\r\n");
        conns.push(c);
        // Distinct start times: the reference orders connections by them.
        std::thread::sleep(Duration::from_millis(20));
    }
    let ub = key(KeyPairType::User, 103);
    let (mut other, out) = Conn::login(
        &srv,
        transport,
        Some(&user_jwt(&k.b, &ub, "", "")),
        Some(&ub),
    );
    assert_eq!(out, "PONG\r\n");
    let two = ACCOUNT_LIMITS.replace("\"conn\":-1", "\"conn\":2");
    srv.reload(&conf(&dir, &two, ""), 1);
    let log = srv.log_text();
    assert!(!log.contains("Failed to reload"), "{log}");
    let oldest = conns[0].read_either("exceeded", "\u{0}never");
    assert_eq!(
        oldest,
        "-ERR 'maximum account active connections exceeded'\r\n"
    );
    assert_eq!(conns[1].sync(), "");
    assert_eq!(conns[2].sync(), "");
    assert_eq!(other.sync(), "");
    let u = key(KeyPairType::User, 104);
    let (_, out) = Conn::login(&srv, transport, Some(&user_jwt(&k.a, &u, "", "")), Some(&u));
    assert_eq!(
        out,
        "-ERR 'maximum account active connections exceeded'\r\n"
    );
}
on_both_transports!(account_conn_limit_lowered_by_reload);

/// Connect `times` in a named zone (`times_location: Asia/Tokyo`, UTC+9 all year): a window
/// around Tokyo's wall-clock now admits the user, the same clock times read in UTC would not,
/// and a zone the database does not know refuses (the reference: `time.LoadLocation` fails).
fn connect_times_in_a_named_zone(target: Target, transport: Transport) {
    let Some(srv) = start(target, "", "") else {
        return;
    };
    let k = keys();
    let u = key(KeyPairType::User, 96);
    let clock = |secs: i64| {
        let s = secs.rem_euclid(86_400);
        format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    };
    let tokyo_now = now_unix() + 9 * 3600;
    let local = tokyo_now.rem_euclid(86_400);
    if !(3 * 3600..=21 * 3600).contains(&local) {
        eprintln!("too close to midnight in Tokyo for this case; skipped");
        return;
    }
    let window = |from: i64, to: i64, zone: &str| {
        format!(
            r#","times":[{{"start":"{}","end":"{}"}}],"times_location":"{zone}""#,
            clock(tokyo_now + from),
            clock(tokyo_now + to)
        )
    };
    let inside = user_jwt(&k.a, &u, "", &window(-3600, 3600, "Asia/Tokyo"));
    let (_, out) = Conn::login(&srv, transport, Some(&inside), Some(&u));
    assert_eq!(out, "PONG\r\n");
    // Tokyo's clock is 9 hours ahead: read as UTC, the same window is hours away.
    let as_utc = user_jwt(&k.a, &u, "", &window(-3600, 3600, "UTC"));
    let (_, out) = Conn::login(&srv, transport, Some(&as_utc), Some(&u));
    assert_eq!(out, VIOLATION);
    let unknown = user_jwt(&k.a, &u, "", &window(-3600, 3600, "Mars/Olympus"));
    let (_, out) = Conn::login(&srv, transport, Some(&unknown), Some(&u));
    assert_eq!(out, VIOLATION);
}
on_both_transports!(connect_times_in_a_named_zone);

/// The log lines of refused users, as nats-server writes them with `-D`: the reason at debug
/// level (error level for `Bad src Ip`), then `authentication error`, each after the client's
/// prefix.
fn refusals_are_logged_as_the_reference(target: Target, transport: Transport) {
    let u = key(KeyPairType::User, 150);
    let revoked = key(KeyPairType::User, 151);
    let revocations = format!(
        r#","revocations":{{"{}":{}}}"#,
        revoked.public_key(),
        now_unix()
    );
    let dir = common::temp_dir("operator-log");
    let Some(srv) = target.with_config(&conf(&dir, &revocations, ""), &["-D"]) else {
        return;
    };
    let k = keys();
    let stranger = key(KeyPairType::Account, 152);
    let forged = encode(&claims(&k.a, &u.public_key(), "user", "", ""), &stranger).unwrap();
    let cases: Vec<(String, &KeyPair, &str)> = vec![
        (
            user_jwt(&k.a, &u, &format!(",\"exp\":{}", now_unix() - 5), ""),
            &u,
            "[DBG] - User JWT no longer valid: &{Issues:[claim is expired]}",
        ),
        (
            user_jwt(&k.a, &revoked, "", ""),
            &revoked,
            "[DBG] - User authentication revoked",
        ),
        (
            user_jwt(
                &stranger,
                &u,
                "",
                &format!(r#","issuer_account":"{}""#, k.a.public_key()),
            ),
            &u,
            "[DBG] - User JWT issuer is not known",
        ),
        (
            forged,
            &u,
            "[DBG] - User JWT not valid: claim failed V2 signature verification",
        ),
        (
            user_jwt(&k.a, &u, "", r#","pub":{"allow":["a b"]}"#),
            &u,
            "[DBG] - User JWT no longer valid: &{Issues:[Permission Subject \"a b\" is not allowed to contain queue]}",
        ),
        (
            user_jwt(&k.a, &u, "", r#","src":["10.0.0.0/8"]"#),
            &u,
            "[ERR] - Bad src Ip 127.0.0.1",
        ),
    ];
    for (jwt, seed, want) in &cases {
        let (_, out) = Conn::login(&srv, transport, Some(jwt), Some(seed));
        assert_eq!(out, VIOLATION, "{want}");
    }
    // Each reason is followed by the bare error line of the same client.
    let log = srv.wait_log("Bad src Ip");
    let lines: Vec<String> = log
        .lines()
        .filter(|l| l.contains("[DBG]") || l.contains("[ERR]"))
        .filter_map(|l| {
            // "[pid] date time [LVL] 127.0.0.1:port - cid:N - <text>" (wid: for WebSocket).
            let at = l.find("[DBG] ").or_else(|| l.find("[ERR] "))?;
            let (lvl, rest) = l[at..].split_once(' ')?;
            let text = rest.rsplit_once(" - ").map(|(_, t)| t)?;
            (rest.contains(" - cid:") || rest.contains(" - wid:"))
                .then(|| format!("{lvl} - {text}"))
        })
        .filter(|l| !l.contains("Client connection") && !l.contains("connection closed"))
        .collect();
    let mut want = Vec::new();
    for (_, _, line) in &cases {
        want.push((*line).to_owned());
        want.push("[ERR] - authentication error".to_owned());
    }
    assert_eq!(lines, want, "{log}");
}
on_both_transports!(refusals_are_logged_as_the_reference);

/// An account JWT with a blocking issue of `AccountClaims.Validate` (over its operator
/// limits, or an invalid import, export, default permission or signing key) is never loaded
/// (`verifyAccountClaims`): its users are refused, with the reference's reason in the debug
/// log, and the preload check logs its issues at start-up (`checkResolvePreloads`).
fn accounts_over_their_limits_are_not_loaded(target: Target, transport: Transport) {
    let k = keys();
    let b = k.b.public_key();
    let tail = ACCOUNT_LIMITS;
    let bad = [
        // A wildcard export while exports are limited and wildcards are not allowed.
        (
            r#","exports":[{"subject":"a.>","type":"stream"}],"limits":{"subs":-1,"data":-1,"payload":-1,"imports":-1,"exports":5,"wildcards":false,"conn":-1,"leaf":-1}"#.to_owned(),
            "the account contains wildcard exports that are not allowed by the operator".to_owned(),
        ),
        // More exports than allowed.
        (
            r#","exports":[{"subject":"a","type":"stream"},{"subject":"b","type":"stream"}],"limits":{"subs":-1,"data":-1,"payload":-1,"imports":-1,"exports":1,"wildcards":true,"conn":-1,"leaf":-1}"#.to_owned(),
            "the account contains more exports than allowed by the operator".to_owned(),
        ),
        // An import with no `imports` limit written: Go's zero allows none.
        (
            format!(
                r#","imports":[{{"subject":"x","account":"{b}","type":"stream"}}],"limits":{{"subs":-1,"data":-1,"payload":-1,"exports":-1,"wildcards":true,"conn":-1,"leaf":-1}}"#
            ),
            "the account contains more imports than allowed by the operator".to_owned(),
        ),
        (
            format!(r#","imports":[{{"subject":"x y","account":"{b}","type":"stream"}}]{tail}"#),
            r#"subject "x y" cannot have spaces"#.to_owned(),
        ),
        (
            format!(
                r#","imports":[{{"subject":"x","account":"{b}","type":"stream","token":"nope"}}]{tail}"#
            ),
            r#"import "x" contains an invalid activation token"#.to_owned(),
        ),
        (
            format!(
                r#","exports":[{{"subject":"s.>","type":"service"}},{{"subject":"s.a","type":"service"}}]{tail}"#
            ),
            r#"service export subject "s.>" already exports "s.a""#.to_owned(),
        ),
        (
            format!(r#","exports":[{{"subject":"s","type":"stream","response_threshold":5}}]{tail}"#),
            "response threshold only valid for services".to_owned(),
        ),
        (
            format!(r#","signing_keys":["{}"]{tail}"#, k.op.public_key()),
            format!(r#""{}" is not a valid account signing key"#, k.op.public_key()),
        ),
    ];
    for (nats, issue) in &bad {
        let dir = common::temp_dir("operator-invalid");
        let Some(srv) = target.with_config(&conf(&dir, nats, ""), &["-D"]) else {
            return;
        };
        srv.wait_log(&format!(
            "[WRN] Account [{}] has validation issues:",
            k.a.public_key()
        ));
        srv.wait_log(&format!("[WRN]   - {issue}"));
        let u = key(KeyPairType::User, 170);
        let (_, out) = Conn::login(&srv, transport, Some(&user_jwt(&k.a, &u, "", "")), Some(&u));
        assert_eq!(out, VIOLATION, "{nats}");
        srv.wait_log("Account JWT lookup error: account validation failed");
        // Account B is fine.
        let (_, out) = Conn::login(&srv, transport, Some(&user_jwt(&k.b, &u, "", "")), Some(&u));
        assert_eq!(out, "PONG\r\n");
        assert!(
            !srv.log_text()
                .contains(&format!("Account [{b}] has validation issues")),
            "{}",
            srv.log_text()
        );
    }
}
on_both_transports!(accounts_over_their_limits_are_not_loaded);

/// The validation issues of a preloaded account are logged at start-up and again on every
/// reload (nats-server's `reloadAuthorization` checks the MEMORY resolver's preloads again).
fn preload_issues_are_logged_again_on_reload(target: Target) {
    let k = keys();
    let bad = format!(
        r#","signing_keys":["{}"]{ACCOUNT_LIMITS}"#,
        k.op.public_key()
    );
    let dir = common::temp_dir("operator-preload-reload");
    let text = conf(&dir, &bad, "");
    let Some(srv) = target.with_config(&text, &[]) else {
        return;
    };
    let header = format!(
        "[WRN] Account [{}] has validation issues:",
        k.a.public_key()
    );
    let issue = format!(
        r#"[WRN]   - "{}" is not a valid account signing key"#,
        k.op.public_key()
    );
    srv.wait_log(&issue);
    assert_eq!(srv.log_text().matches(&header).count(), 1);
    srv.reload(&conf(&dir, &bad, ""), 1);
    let log = srv.log_text();
    assert!(!log.contains("Failed to reload"), "{log}");
    assert_eq!(log.matches(&header).count(), 2, "{log}");
    assert_eq!(log.matches(&issue).count(), 2, "{log}");
    // A reload that fixes the account logs nothing more.
    srv.reload(&conf(&dir, "", ""), 2);
    assert_eq!(srv.log_text().matches(&header).count(), 2);
}
common::on_both!(preload_issues_are_logged_again_on_reload);

/// An operator's `assert_server_version` newer than 2.9.10 (the protocol natsws serves) is a
/// start-up error with the reference's text; an older or equal one starts. Run on both
/// servers.
#[test]
fn operator_assert_server_version() {
    let k = keys();
    let dir = common::temp_dir("operator-version");
    let op = |version: &str| {
        encode(
            &claims(
                &k.op,
                &k.op.public_key(),
                "operator",
                "",
                &format!(r#","assert_server_version":"{version}""#),
            ),
            &k.op,
        )
        .unwrap()
    };
    let sub = k.op.public_key();
    let cases: Vec<(&str, Option<String>)> = vec![
        ("2.9.10", None),
        ("2.8.99", None),
        ("1.99.99", None),
        (
            "2.9.11",
            Some(format!(
                "operator {sub} expected update version 11 > server update version 10"
            )),
        ),
        (
            "2.10.0",
            Some(format!(
                "operator {sub} expected minor version 10 > server minor version 9"
            )),
        ),
        (
            "3.0.0",
            Some(format!(
                "operator {sub} expected major version 3 > server major version 2"
            )),
        ),
        (
            "2.x.0",
            Some(format!(
                "operator {sub} expects version 2.x.0 got error instead: asserted server version cant parse x to int"
            )),
        ),
    ];
    let programs = [Some(common::bin()), common::reference_server()];
    for program in programs.into_iter().flatten() {
        for (version, want) in &cases {
            let path = dir.join("v.conf");
            std::fs::write(
                &path,
                format!(
                    "listen: \"127.0.0.1:-1\"\noperator: {}\nresolver: MEMORY\n",
                    op(version)
                ),
            )
            .unwrap();
            // nats-server checks the operator when the server is made, which `-t` skips:
            // refused cases start for real (and exit at once).
            let mut cmd = std::process::Command::new(program);
            cmd.arg("-c").arg(&path);
            if want.is_none() {
                cmd.arg("-t");
            }
            let mut child = cmd
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while child.try_wait().unwrap().is_none() {
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let out = child.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            match want {
                None => assert!(out.status.success(), "{program} {version}: {text}"),
                Some(want) => {
                    assert!(!out.status.success(), "{program} {version}: accepted");
                    assert!(text.contains(want.as_str()), "{program} {version}: {text}");
                }
            }
        }
    }
}

/// A reload whose account JWT drops a signing key, or changes a scoped key's template, closes
/// the users that key issued without an `-ERR` (`updateAccountClaimsWithRefresh` when the
/// signers changed); users issued by the account itself stay.
fn reload_of_signing_keys_closes_their_users(target: Target, transport: Transport) {
    let k = keys();
    let (plain, scoped) = (
        key(KeyPairType::Account, 180),
        key(KeyPairType::Account, 181),
    );
    let signing = |template_subject: &str, with_plain: bool| {
        let scope = format!(
            r#"{{"kind":"user_scope","key":"{}","role":"r","template":{{"pub":{{"allow":["{template_subject}"]}},"subs":-1,"data":-1,"payload":-1}}}}"#,
            scoped.public_key()
        );
        if with_plain {
            format!(r#","signing_keys":["{}",{scope}]"#, plain.public_key())
        } else {
            format!(r#","signing_keys":[{scope}]"#)
        }
    };
    let dir = common::temp_dir("operator-signers");
    let Some(srv) = target.with_config(&conf(&dir, &signing("a.>", true), ""), &[]) else {
        return;
    };
    let issuer = format!(r#","issuer_account":"{}""#, k.a.public_key());
    let (u1, u2, u3) = (
        key(KeyPairType::User, 182),
        key(KeyPairType::User, 183),
        key(KeyPairType::User, 184),
    );
    let (mut by_plain, out) = Conn::login(
        &srv,
        transport,
        Some(&user_jwt(&plain, &u1, "", &issuer)),
        Some(&u1),
    );
    assert_eq!(out, "PONG\r\n");
    let scoped_user = user_jwt(&scoped, &u2, "", &format!("NO_LIMITS{issuer}"));
    let (mut by_scoped, out) = Conn::login(&srv, transport, Some(&scoped_user), Some(&u2));
    assert_eq!(out, "PONG\r\n");
    let (mut by_account, out) = Conn::login(
        &srv,
        transport,
        Some(&user_jwt(&k.a, &u3, "", "")),
        Some(&u3),
    );
    assert_eq!(out, "PONG\r\n");
    srv.reload(&conf(&dir, &signing("b.>", false), ""), 1);
    let log = srv.log_text();
    assert!(!log.contains("Failed to reload"), "{log}");
    assert_eq!(by_plain.read_either("\u{0}never", "\u{0}never"), "");
    assert_eq!(by_scoped.read_either("\u{0}never", "\u{0}never"), "");
    assert_eq!(by_account.sync(), "");
}
on_both_transports!(reload_of_signing_keys_closes_their_users);

/// A JWT user of the account `issuer` (or one issued by its key), logged in.
fn logged_in(srv: &Server, transport: Transport, issuer: &KeyPair, user: &KeyPair) -> Conn {
    let (c, out) = Conn::login(
        srv,
        transport,
        Some(&user_jwt(issuer, user, "", "")),
        Some(user),
    );
    assert_eq!(out, "PONG\r\n");
    c
}

/// The answer refusing a delete request signed by `signer`.
fn delete_refused(signer: &str, why: &str) -> serde_json::Value {
    serde_json::json!({"error": {"code": 500,
        "description": format!("delete accounts request by {signer} failed - {why}")}})
}

/// A server with a full resolver whose directory holds the system account and account A
/// (account B is not there yet).
struct Full {
    srv: Server,
    /// The resolver directory.
    jwts: std::path::PathBuf,
    /// The system account's key.
    sys: KeyPair,
    /// The configuration text (for a reload).
    text: String,
}

fn start_full(target: Target, allow_delete: bool) -> Option<Full> {
    start_full_with(target, &format!("allow_delete: {allow_delete}"), &[])
}

/// [`start_full`] with `resolver` settings (`allow_delete: true`, `limit: 3`) and more
/// account JWTs in the directory.
fn start_full_with(target: Target, resolver: &str, more: &[(String, String)]) -> Option<Full> {
    let k = keys();
    let sys = key(KeyPairType::Account, 9);
    let dir = common::temp_dir("operator-claims");
    let jwts = dir.join("jwt");
    std::fs::create_dir_all(&jwts).unwrap();
    for acc in [&sys, &k.a] {
        std::fs::write(
            jwts.join(format!("{}.jwt", acc.public_key())),
            account_jwt(&k, acc, ""),
        )
        .unwrap();
    }
    for (account, jwt) in more {
        std::fs::write(jwts.join(format!("{account}.jwt")), jwt).unwrap();
    }
    let op = common::write_file(&dir, "op.jwt", &operator_jwt(&k));
    let text = format!(
        "listen: \"127.0.0.1:-1\"\nwebsocket {{ listen: \"127.0.0.1:-1\", no_tls: true }}\noperator: \"{op}\"\nsystem_account: {}\nresolver: {{ type: full, dir: \"{}\", {resolver} }}\n",
        sys.public_key(),
        jwts.display()
    );
    let srv = target.with_config(&text, &[])?;
    Some(Full {
        srv,
        jwts,
        sys,
        text,
    })
}

/// A client of the system account, subscribed to its reply inbox.
fn system_client(srv: &Server, sys: &KeyPair) -> Conn {
    let u = key(KeyPairType::User, 70);
    let mut c = logged_in(srv, Transport::Tcp, sys, &u);
    c.send("SUB _INBOX.claims 77\r\n");
    assert_eq!(c.sync(), "");
    c
}

/// Sends a request and returns the body of the first answer.
fn request(c: &mut Conn, subject: &str, body: &str) -> String {
    c.send(&format!(
        "PUB {subject} _INBOX.claims {}\r\n{body}\r\n",
        body.len()
    ));
    next_answer(c)
}

/// The body of the next answer on the reply inbox of [`system_client`].
fn next_answer(c: &mut Conn) -> String {
    let Conn::Tcp(raw) = c else {
        panic!("the claim requests go over TCP");
    };
    loop {
        let line = raw.line();
        if line.starts_with("MSG _INBOX.claims 77 ") {
            return raw.line().trim_end().to_owned();
        }
        assert!(line == "PING\r\n" || line == "PONG\r\n", "{line:?}");
    }
}

/// The answer as JSON, with its `server` object checked and removed (its values differ
/// between servers).
fn answer(text: &str) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let server = v
        .as_object_mut()
        .and_then(|o| o.remove("server"))
        .unwrap_or_else(|| panic!("no server: {text}"));
    for field in ["name", "host", "id", "ver", "seq", "jetstream", "time"] {
        assert!(server.get(field).is_some(), "server.{field}: {text}");
    }
    v
}

fn updated(account: &str) -> serde_json::Value {
    serde_json::json!({"data": {"account": account, "code": 200, "message": "jwt updated"}})
}

fn refused(account: &str, description: &str) -> serde_json::Value {
    serde_json::json!({"error": {"account": account, "code": 500, "description": description}})
}

/// `nsc push`: a system account user sends a new account's JWT; it is stored in the
/// directory and its users can connect. An update that revokes a user closes that user's
/// connection. Malformed, mismatched and foreign JWTs get the reference's answers.
fn claims_update(target: Target) {
    let Some(Full { srv, jwts, sys, .. }) = start_full(target, false) else {
        return;
    };
    let k = keys();
    let mut s = system_client(&srv, &sys);
    let u = key(KeyPairType::User, 71);
    let (_, out) = Conn::login(
        &srv,
        Transport::Tcp,
        Some(&user_jwt(&k.b, &u, "", "")),
        Some(&u),
    );
    assert_eq!(out, VIOLATION, "B is not known yet");
    let b_jwt = account_jwt(&k, &k.b, "");
    let b = k.b.public_key();
    let got = request(
        &mut s,
        &format!("$SYS.REQ.ACCOUNT.{b}.CLAIMS.UPDATE"),
        &b_jwt,
    );
    assert_eq!(answer(&got), updated(&b));
    let file = jwts.join(format!("{b}.jwt"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), b_jwt);
    let mut c = logged_in(&srv, Transport::Tcp, &k.b, &u);
    let keep = key(KeyPairType::User, 72);
    let mut kept = logged_in(&srv, Transport::Ws, &k.b, &keep);

    // The update that revokes u, through the subject that names no account.
    let revoking = account_jwt(
        &k,
        &k.b,
        &format!(r#","revocations":{{"{}":{}}}"#, u.public_key(), now_unix()),
    );
    let got = request(&mut s, "$SYS.REQ.CLAIMS.UPDATE", &revoking);
    assert_eq!(answer(&got), updated(&b));
    let rest = c.read_either("Revoked", "\u{0}never");
    assert!(
        rest.contains("-ERR 'User Authentication Revoked'\r\n"),
        "{rest}"
    );
    assert_eq!(kept.sync(), "");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), revoking);

    // The old subject is served too; a JWT for another account than the subject's is not.
    let got = request(
        &mut s,
        &format!("$SYS.ACCOUNT.{b}.CLAIMS.UPDATE"),
        &account_jwt(&k, &k.a, ""),
    );
    assert_eq!(
        answer(&got),
        refused(
            &b,
            "jwt update resulted in error - subject does not match jwt content"
        )
    );
    let got = request(&mut s, "$SYS.REQ.CLAIMS.UPDATE", "not a jwt");
    assert_eq!(
        answer(&got),
        refused("n/a", "jwt update resulted in error - expected 3 chunks")
    );
    // Signed by a user key: not an account JWT the library decodes.
    let forged = encode(&claims(&u, &b, "account", "", ""), &u).unwrap();
    let got = request(&mut s, "$SYS.REQ.CLAIMS.UPDATE", &forged);
    assert_eq!(
        answer(&got),
        refused(
            "n/a",
            "jwt update resulted in error - unable to validate expected prefixes - [account operator]"
        )
    );
    // Signed by an operator the server does not trust: stored and answered as the reference
    // does, but the live account keeps its trusted JWT (kept's connection stays).
    let stranger = key(KeyPairType::Operator, 73);
    let foreign = encode(&claims(&stranger, &b, "account", "", ""), &stranger).unwrap();
    let got = request(
        &mut s,
        &format!("$SYS.REQ.ACCOUNT.{b}.CLAIMS.UPDATE"),
        &foreign,
    );
    assert_eq!(answer(&got), updated(&b));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), foreign);
    assert_eq!(kept.sync(), "");
}
common::on_both!(claims_update);

/// Lookups return the stored JWT (an unknown account gets no answer); a list names every
/// stored account.
fn claims_lookup_and_list(target: Target) {
    let Some(Full { srv, sys, .. }) = start_full(target, false) else {
        return;
    };
    let k = keys();
    let mut s = system_client(&srv, &sys);
    let b_jwt = account_jwt(&k, &k.b, "");
    let b = k.b.public_key();
    let got = request(&mut s, "$SYS.REQ.CLAIMS.UPDATE", &b_jwt);
    assert_eq!(answer(&got), updated(&b));
    let got = request(&mut s, &format!("$SYS.REQ.ACCOUNT.{b}.CLAIMS.LOOKUP"), "");
    assert_eq!(got, b_jwt);
    // No answer for an account not stored: the list's answer is the next to come.
    let stranger = key(KeyPairType::Account, 74).public_key();
    s.send(&format!(
        "PUB $SYS.REQ.ACCOUNT.{stranger}.CLAIMS.LOOKUP _INBOX.claims 0\r\n\r\n"
    ));
    let got = answer(&request(&mut s, "$SYS.REQ.CLAIMS.LIST", ""));
    let mut listed: Vec<String> = got["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{got}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect();
    listed.sort();
    let mut expected = vec![k.a.public_key(), b, sys.public_key()];
    expected.sort();
    assert_eq!(listed, expected);
}
common::on_both!(claims_lookup_and_list);

/// A delete request the operator signed, naming `accounts`.
fn delete_request(signer: &KeyPair, accounts: &[String]) -> String {
    let op = signer.public_key();
    let list = accounts
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(",");
    encode(
        &format!(
            r#"{{"jti":"DEL","iat":{},"iss":"{op}","sub":"{op}","nats":{{"accounts":[{list}]}}}}"#,
            now_unix()
        ),
        signer,
    )
    .unwrap()
}

/// The answer to a delete request `signer` made for `accounts`.
fn delete(s: &mut Conn, signer: &KeyPair, accounts: &[String]) -> serde_json::Value {
    answer(&request(
        s,
        "$SYS.REQ.CLAIMS.DELETE",
        &delete_request(signer, accounts),
    ))
}

/// Deletes need `allow_delete`, a request the operator signed itself, and never name the
/// system account; a deleted JWT's file is renamed to `<key>.jwt.deleted`.
fn claims_delete(target: Target) {
    let k = keys();
    let a = k.a.public_key();
    let op = k.op.public_key();
    let Some(Full { srv, jwts, sys, .. }) = start_full(target, false) else {
        return;
    };
    let mut s = system_client(&srv, &sys);
    assert_eq!(
        delete(&mut s, &k.op, std::slice::from_ref(&a)),
        delete_refused(&op, "delete must be enabled in server config")
    );
    assert!(jwts.join(format!("{a}.jwt")).exists());
    drop((s, srv));

    let Some(Full { srv, jwts, sys, .. }) = start_full(target, true) else {
        return;
    };
    let mut s = system_client(&srv, &sys);
    assert_eq!(
        delete(&mut s, &k.op, &[sys.public_key()]),
        delete_refused(&op, "not allowed to delete system account")
    );
    let stranger = key(KeyPairType::Operator, 75);
    assert_eq!(
        delete(&mut s, &stranger, std::slice::from_ref(&a)),
        delete_refused(&stranger.public_key(), "not trusted")
    );
    assert_eq!(
        delete(&mut s, &k.op, &["nope".to_owned()]),
        delete_refused(&op, "malformed request")
    );
    let u = key(KeyPairType::User, 76);
    let mut c = logged_in(&srv, Transport::Tcp, &k.a, &u);
    assert_eq!(
        delete(&mut s, &k.op, std::slice::from_ref(&a)),
        serde_json::json!({"data": {"code": 200, "message": "deleted 1 accounts"}})
    );
    // The deleted account's users are closed as its expiry would close them.
    let rest = c.read_either("-ERR", "\u{0}never");
    assert_eq!(rest, "-ERR 'Account Authentication Expired'\r\n");
    assert!(!jwts.join(format!("{a}.jwt")).exists());
    assert!(jwts.join(format!("{a}.jwt.deleted")).exists());
    let got = answer(&request(&mut s, "$SYS.REQ.CLAIMS.LIST", ""));
    assert_eq!(got["data"], serde_json::json!([sys.public_key()]));
}
common::on_both!(claims_delete);

/// With the MEMORY resolver, an update naming a loaded account applies to it at once (a
/// revocation closes the user) and is not stored; an account the server does not have is
/// skipped, and an empty, mismatched or untrusted JWT gets the reference's answer.
fn memory_resolver_updates(target: Target) {
    let k = keys();
    let sys = key(KeyPairType::Account, 9);
    let dir = common::temp_dir("operator-memory-claims");
    let op = common::write_file(&dir, "op.jwt", &operator_jwt(&k));
    let text = format!(
        "listen: \"127.0.0.1:-1\"\nwebsocket {{ listen: \"127.0.0.1:-1\", no_tls: true }}\noperator: \"{op}\"\nsystem_account: {s}\nresolver: MEMORY\nresolver_preload {{\n  {s}: {}\n  {a}: {}\n}}\n",
        account_jwt(&k, &sys, ""),
        account_jwt(&k, &k.a, ""),
        s = sys.public_key(),
        a = k.a.public_key(),
    );
    let Some(srv) = target.with_config(&text, &[]) else {
        return;
    };
    let mut s = system_client(&srv, &sys);
    let a = k.a.public_key();
    let (u, keep) = (key(KeyPairType::User, 77), key(KeyPairType::User, 78));
    let mut c = logged_in(&srv, Transport::Tcp, &k.a, &u);
    let mut kept = logged_in(&srv, Transport::Ws, &k.a, &keep);
    let subject = format!("$SYS.REQ.ACCOUNT.{a}.CLAIMS.UPDATE");
    let revoking = account_jwt(
        &k,
        &k.a,
        &format!(r#","revocations":{{"{}":{}}}"#, u.public_key(), now_unix()),
    );
    assert_eq!(answer(&request(&mut s, &subject, &revoking)), updated(&a));
    let rest = c.read_either("Revoked", "\u{0}never");
    assert!(
        rest.contains("-ERR 'User Authentication Revoked'\r\n"),
        "{rest}"
    );
    assert_eq!(kept.sync(), "");
    assert_eq!(
        answer(&request(&mut s, &subject, "")),
        refused(&a, "jwt update error - request body is empty")
    );
    assert_eq!(
        answer(&request(&mut s, &subject, &account_jwt(&k, &k.b, ""))),
        refused(
            &a,
            "jwt update resulted in error - subject does not match jwt content"
        )
    );
    let stranger = key(KeyPairType::Operator, 79);
    let foreign = encode(&claims(&stranger, &a, "account", "", ""), &stranger).unwrap();
    assert_eq!(
        answer(&request(
            &mut s,
            &format!("$SYS.ACCOUNT.{a}.CLAIMS.UPDATE"),
            &foreign
        )),
        refused(
            &a,
            "jwt update resulted in error - account validation failed"
        )
    );
    assert_eq!(kept.sync(), "");
    let b = k.b.public_key();
    let got = request(
        &mut s,
        &format!("$SYS.REQ.ACCOUNT.{b}.CLAIMS.UPDATE"),
        &account_jwt(&k, &k.b, ""),
    );
    assert_eq!(
        answer(&got),
        serde_json::json!({"data": {"account": b, "code": 200, "message": "jwt update skipped"}})
    );
}
common::on_both!(memory_resolver_updates);

/// A pushed, trusted account JWT that natsws cannot serve (subject `mappings`, which it
/// refuses at start-up) is refused as the reference refuses a JWT it cannot store, nothing is
/// written and the running clients stay. nats-server serves mappings: it stores the JWT and
/// answers `jwt updated`.
fn claims_update_natsws_cannot_serve(target: Target) {
    let Some(Full { srv, jwts, sys, .. }) = start_full(target, false) else {
        return;
    };
    let k = keys();
    let mut s = system_client(&srv, &sys);
    let u = key(KeyPairType::User, 80);
    let mut c = logged_in(&srv, Transport::Tcp, &k.a, &u);
    let b = k.b.public_key();
    let mapped = account_jwt(
        &k,
        &k.b,
        r#","mappings":{"foo":[{"subject":"bar","weight":100}]}"#,
    );
    let got = answer(&request(
        &mut s,
        &format!("$SYS.REQ.ACCOUNT.{b}.CLAIMS.UPDATE"),
        &mapped,
    ));
    let file = jwts.join(format!("{b}.jwt"));
    if target == Target::Reference {
        assert_eq!(got, updated(&b));
        assert!(file.exists());
        return;
    }
    assert_eq!(
        got,
        refused(
            &b,
            &format!(
                "jwt update resulted in error - account JWT {b}: subject mappings (mappings) are not supported by natsws"
            )
        )
    );
    assert!(!file.exists());
    assert_eq!(c.sync(), "");
    assert_eq!(s.sync(), "");
    let keep = key(KeyPairType::User, 81);
    let mut again = logged_in(&srv, Transport::Ws, &k.a, &keep);
    assert_eq!(again.sync(), "");
}
common::on_both!(claims_update_natsws_cannot_serve);

/// Deleting an account whose file is gone counts as deleted but changes nothing, as in the
/// reference (`DirJWTStore.delete` returns without its callbacks): the live account and its
/// users stay.
fn claims_delete_without_file(target: Target) {
    let k = keys();
    let a = k.a.public_key();
    let Some(Full { srv, jwts, sys, .. }) = start_full(target, true) else {
        return;
    };
    let mut s = system_client(&srv, &sys);
    let u = key(KeyPairType::User, 82);
    let mut c = logged_in(&srv, Transport::Tcp, &k.a, &u);
    std::fs::remove_file(jwts.join(format!("{a}.jwt"))).unwrap();
    assert_eq!(
        delete(&mut s, &k.op, std::slice::from_ref(&a)),
        serde_json::json!({"data": {"code": 200, "message": "deleted 1 accounts"}})
    );
    assert_eq!(c.sync(), "");
    let keep = key(KeyPairType::User, 83);
    let mut again = logged_in(&srv, Transport::Ws, &k.a, &keep);
    assert_eq!(again.sync(), "");
}
common::on_both!(claims_delete_without_file);

/// A pushed JWT is stored as sent and a lookup answers the stored text as it is (here with
/// the trailing newline the request carried).
fn claims_stored_as_sent(target: Target) {
    let Some(Full { srv, jwts, sys, .. }) = start_full(target, false) else {
        return;
    };
    let k = keys();
    let mut s = system_client(&srv, &sys);
    let b = k.b.public_key();
    let sent = format!("{}\n", account_jwt(&k, &k.b, ""));
    let got = request(
        &mut s,
        &format!("$SYS.REQ.ACCOUNT.{b}.CLAIMS.UPDATE"),
        &sent,
    );
    assert_eq!(answer(&got), updated(&b));
    assert_eq!(
        std::fs::read_to_string(jwts.join(format!("{b}.jwt"))).unwrap(),
        sent
    );
    s.send(&format!(
        "PUB $SYS.REQ.ACCOUNT.{b}.CLAIMS.LOOKUP _INBOX.claims 0\r\n\r\n"
    ));
    let Conn::Tcp(raw) = &mut s else {
        panic!("the claim requests go over TCP");
    };
    loop {
        let line = raw.line();
        if let Some(size) = line.strip_prefix("MSG _INBOX.claims 77 ") {
            assert_eq!(size.trim(), sent.len().to_string(), "{line:?}");
            break;
        }
        assert!(line == "PING\r\n" || line == "PONG\r\n", "{line:?}");
    }
}
common::on_both!(claims_stored_as_sent);

/// With the MEMORY resolver, the account's own JWT sent again is answered `jwt updated`
/// before it is verified (`updateAccountWithClaimJWT` checks for the same claim first), even
/// when it has expired since.
fn memory_resolver_same_claim(target: Target) {
    let k = keys();
    let sys = key(KeyPairType::Account, 9);
    let dir = common::temp_dir("operator-memory-same");
    let op = common::write_file(&dir, "op.jwt", &operator_jwt(&k));
    let exp = now_unix() + 2;
    let a_jwt = encode(
        &claims(
            &k.op,
            &k.a.public_key(),
            "account",
            &format!(r#","exp":{exp}"#),
            "",
        ),
        &k.op,
    )
    .unwrap();
    let text = format!(
        "listen: \"127.0.0.1:-1\"\nwebsocket {{ listen: \"127.0.0.1:-1\", no_tls: true }}\noperator: \"{op}\"\nsystem_account: {s}\nresolver: MEMORY\nresolver_preload {{\n  {s}: {}\n  {a}: {a_jwt}\n}}\n",
        account_jwt(&k, &sys, ""),
        s = sys.public_key(),
        a = k.a.public_key(),
    );
    let Some(srv) = target.with_config(&text, &[]) else {
        return;
    };
    let mut s = system_client(&srv, &sys);
    let a = k.a.public_key();
    // A user loads the account (the reference loads accounts on first use).
    let u = key(KeyPairType::User, 84);
    let _c = logged_in(&srv, Transport::Tcp, &k.a, &u);
    while now_unix() <= exp {
        std::thread::sleep(Duration::from_millis(200));
    }
    let subject = format!("$SYS.REQ.ACCOUNT.{a}.CLAIMS.UPDATE");
    assert_eq!(answer(&request(&mut s, &subject, &a_jwt)), updated(&a));
}
common::on_both!(memory_resolver_same_claim);

/// A LIST leaves out the stored JWTs that have expired (`PackWalk` skips them).
fn claims_list_skips_expired(target: Target) {
    let Some(Full {
        srv, jwts, text, ..
    }) = start_full(target, false)
    else {
        return;
    };
    drop(srv);
    let k = keys();
    let expired = encode(
        &claims(
            &k.op,
            &k.b.public_key(),
            "account",
            &format!(r#","exp":{}"#, now_unix() - 5),
            "",
        ),
        &k.op,
    )
    .unwrap();
    std::fs::write(jwts.join(format!("{}.jwt", k.b.public_key())), expired).unwrap();
    let Some(srv) = target.with_config(&text, &[]) else {
        return;
    };
    let sys = key(KeyPairType::Account, 9);
    let mut s = system_client(&srv, &sys);
    let got = answer(&request(&mut s, "$SYS.REQ.CLAIMS.LIST", ""));
    let mut listed: Vec<String> = got["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{got}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect();
    listed.sort();
    let mut expected = vec![k.a.public_key(), sys.public_key()];
    expected.sort();
    assert_eq!(listed, expected);
}
common::on_both!(claims_list_skips_expired);

/// A stored JWT the server does not trust leaves the running account only until the
/// directory is read again: natsws re-reads it on reload, and then the account is no longer
/// served. (nats-server does not re-read its directory on reload; it reads it on restart.)
fn claims_untrusted_push_until_reload(target: Target) {
    let Some(Full { srv, sys, text, .. }) = start_full(target, false) else {
        return;
    };
    let k = keys();
    let mut s = system_client(&srv, &sys);
    let a = k.a.public_key();
    let u = key(KeyPairType::User, 85);
    let mut c = logged_in(&srv, Transport::Tcp, &k.a, &u);
    let stranger = key(KeyPairType::Operator, 86);
    let foreign = encode(&claims(&stranger, &a, "account", "", ""), &stranger).unwrap();
    let got = request(
        &mut s,
        &format!("$SYS.REQ.ACCOUNT.{a}.CLAIMS.UPDATE"),
        &foreign,
    );
    assert_eq!(answer(&got), updated(&a));
    assert_eq!(c.sync(), "");
    if target == Target::Reference {
        return;
    }
    srv.reload(&text, 1);
    let rest = c.read_either("-ERR", "\u{0}never");
    assert_eq!(rest, "-ERR 'Authorization Violation'\r\n");
    let v = key(KeyPairType::User, 87);
    let (_, out) = Conn::login(
        &srv,
        Transport::Tcp,
        Some(&user_jwt(&k.a, &v, "", "")),
        Some(&v),
    );
    assert_eq!(out, VIOLATION);
}
common::on_both!(claims_untrusted_push_until_reload);

/// Makes a named pipe at `path`: a write to it blocks until something reads it, as a write
/// to a stuck disk does.
fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Reads the pipe at `path` to its end on another thread (unblocking the write to it).
fn drain_fifo(path: &std::path::Path) -> std::thread::JoinHandle<String> {
    let path = path.to_owned();
    std::thread::spawn(move || std::fs::read_to_string(path).expect("read fifo"))
}

/// Whether no message arrives on `c` within `wait` (the server's keep-alive PINGs aside).
fn silent_for(c: &mut Conn, wait: Duration) -> bool {
    let Conn::Tcp(raw) = c else {
        panic!("the claim requests go over TCP");
    };
    raw.stream.set_read_timeout(Some(wait)).unwrap();
    let silent = loop {
        let mut line = String::new();
        match std::io::BufRead::read_line(&mut raw.reader, &mut line) {
            Err(_) => break true,
            Ok(0) => panic!("the connection closed"),
            Ok(_) if line == "PING\r\n" => raw.send("PONG\r\n"),
            Ok(_) => {
                break false;
            }
        }
    };
    raw.stream.set_read_timeout(Some(common::WAIT)).unwrap();
    silent
}

/// The file a server writes an account's JWT to first: natsws writes `<key>.jwt.tmp` and
/// renames it over `<key>.jwt`; nats-server writes `<key>.jwt` itself.
fn first_written(target: Target, jwts: &std::path::Path, account: &str) -> std::path::PathBuf {
    match target {
        Target::Natsws => jwts.join(format!("{account}.jwt.tmp")),
        Target::Reference => jwts.join(format!("{account}.jwt")),
    }
}

/// A push whose file write is stuck (its file is a named pipe nobody reads) stalls only
/// itself: other clients connect and are served meanwhile, and the push is answered only
/// once the write has finished. A pipe cannot be synced: natsws answers that error, as the
/// JWT is not durably stored; nats-server, which does not sync, answers `jwt updated`.
fn claims_stuck_disk_stalls_only_its_push(target: Target) {
    let Some(Full { srv, jwts, sys, .. }) = start_full(target, false) else {
        return;
    };
    let k = keys();
    let mut s = system_client(&srv, &sys);
    let b = k.b.public_key();
    let fifo = first_written(target, &jwts, &b);
    mkfifo(&fifo);
    let u = key(KeyPairType::User, 88);
    let mut other = logged_in(&srv, Transport::Tcp, &k.a, &u);
    let b_jwt = account_jwt(&k, &k.b, "");
    s.send(&format!(
        "PUB $SYS.REQ.ACCOUNT.{b}.CLAIMS.UPDATE _INBOX.claims {}\r\n{b_jwt}\r\n",
        b_jwt.len()
    ));
    // The server keeps serving the clients it has.
    assert_eq!(other.sync(), "");
    if target == Target::Natsws {
        // And new ones. (nats-server holds its store's lock through the write, so a login
        // that has to read an account from the store waits for it.)
        let v = key(KeyPairType::User, 89);
        let mut new = logged_in(&srv, Transport::Tcp, &k.a, &v);
        assert_eq!(new.sync(), "");
    }
    assert!(
        silent_for(&mut s, Duration::from_millis(500)),
        "answered before the JWT was written"
    );
    let written = drain_fifo(&fifo);
    let got = answer(&next_answer(&mut s));
    assert_eq!(written.join().unwrap(), b_jwt);
    match target {
        Target::Natsws => assert_eq!(
            got,
            refused(
                &b,
                "jwt update resulted in error - Invalid argument (os error 22)"
            )
        ),
        Target::Reference => assert_eq!(got, updated(&b)),
    }
    assert_eq!(other.sync(), "");
    if target == Target::Natsws {
        // The failed write left nothing behind; the next push is stored.
        assert!(!fifo.exists());
        let got = request(&mut s, "$SYS.REQ.CLAIMS.UPDATE", &b_jwt);
        assert_eq!(answer(&got), updated(&b));
    }
}
common::on_both!(claims_stuck_disk_stalls_only_its_push);

/// The most claim requests natsws holds at once (`claims_dir::MAX_IN_FLIGHT`).
const CLAIMS_IN_FLIGHT: usize = 16;

/// A flood of pushes behind a stuck write holds at most [`CLAIMS_IN_FLIGHT`] of them; the
/// rest are refused at once with the reference's error shape, and the held ones are
/// answered, in order, once the write finishes. natsws only: nats-server answers pushes on
/// the pushing connection's own reader, so a stuck write stops reading that connection
/// instead (its memory stays bounded by the socket buffers).
#[test]
fn claims_flood_is_bounded() {
    let Some(Full { srv, jwts, sys, .. }) = start_full(Target::Natsws, false) else {
        return;
    };
    let k = keys();
    let mut s = system_client(&srv, &sys);
    let b = k.b.public_key();
    let a = k.a.public_key();
    let fifo = first_written(Target::Natsws, &jwts, &b);
    mkfifo(&fifo);
    let b_jwt = account_jwt(&k, &k.b, "");
    let a_jwt = account_jwt(&k, &k.a, "");
    let publish = |subject: &str, body: &str| {
        format!("PUB {subject} _INBOX.claims {}\r\n{body}\r\n", body.len())
    };
    s.send(&publish("$SYS.REQ.CLAIMS.UPDATE", &b_jwt));
    let flood = CLAIMS_IN_FLIGHT + 8;
    let mut batch = String::new();
    for _ in 0..flood {
        batch.push_str(&publish("$SYS.REQ.CLAIMS.UPDATE", &a_jwt));
    }
    s.send(&batch);
    // The refusals come at once; the held pushes wait for the stuck write.
    let busy = refused(
        &a,
        "jwt update resulted in error - jwt store is busy, try again",
    );
    for _ in 0..flood + 1 - CLAIMS_IN_FLIGHT {
        assert_eq!(answer(&next_answer(&mut s)), busy);
    }
    assert!(
        silent_for(&mut s, Duration::from_millis(500)),
        "more than {} pushes refused",
        flood + 1 - CLAIMS_IN_FLIGHT
    );
    let written = drain_fifo(&fifo);
    assert_eq!(written.join().unwrap(), b_jwt);
    assert_eq!(
        answer(&next_answer(&mut s)),
        refused(
            &b,
            "jwt update resulted in error - Invalid argument (os error 22)"
        )
    );
    for _ in 1..CLAIMS_IN_FLIGHT {
        assert_eq!(answer(&next_answer(&mut s)), updated(&a));
    }
    assert_eq!(s.sync(), "");
    // Nothing is held any more: a push is taken again.
    let got = request(&mut s, "$SYS.REQ.CLAIMS.UPDATE", &b_jwt);
    assert_eq!(answer(&got), updated(&b));
}

/// A push changes the pushed account's live connections and no other's: B's lowered `conn`
/// closes its oldest client and refuses a new one, a revocation closes that user, and the
/// clients of account A keep their connections and subscriptions.
fn claims_push_applies_to_that_account(target: Target) {
    let Some(Full { srv, sys, .. }) = start_full(target, false) else {
        return;
    };
    let k = keys();
    let b = k.b.public_key();
    let mut s = system_client(&srv, &sys);
    let got = request(&mut s, "$SYS.REQ.CLAIMS.UPDATE", &account_jwt(&k, &k.b, ""));
    assert_eq!(answer(&got), updated(&b));
    let (pa, sa) = (key(KeyPairType::User, 90), key(KeyPairType::User, 91));
    let mut publisher = logged_in(&srv, Transport::Tcp, &k.a, &pa);
    let mut subscriber = logged_in(&srv, Transport::Ws, &k.a, &sa);
    subscriber.send("SUB a.> 1\r\n");
    assert_eq!(subscriber.sync(), "");
    let users: Vec<KeyPair> = (92..95).map(|b| key(KeyPairType::User, b)).collect();
    let mut conns = Vec::new();
    for u in &users {
        conns.push(logged_in(&srv, Transport::Tcp, &k.b, u));
        // Distinct start times: the reference orders connections by them.
        std::thread::sleep(Duration::from_millis(20));
    }
    let two = ACCOUNT_LIMITS.replace("\"conn\":-1", "\"conn\":2");
    let pushed = account_jwt(
        &k,
        &k.b,
        &format!(
            r#"{two},"revocations":{{"{}":{}}}"#,
            users[2].public_key(),
            now_unix()
        ),
    );
    let got = request(
        &mut s,
        &format!("$SYS.REQ.ACCOUNT.{b}.CLAIMS.UPDATE"),
        &pushed,
    );
    assert_eq!(answer(&got), updated(&b));
    assert_eq!(
        conns[0].read_either("exceeded", "\u{0}never"),
        "-ERR 'maximum account active connections exceeded'\r\n"
    );
    assert_eq!(
        conns[2].read_either("Revoked", "\u{0}never"),
        "-ERR 'User Authentication Revoked'\r\n"
    );
    assert_eq!(conns[1].sync(), "");
    publisher.send("PUB a.x 2\r\nhi\r\n");
    assert_eq!(publisher.sync(), "");
    assert_eq!(subscriber.sync(), "MSG a.x 1 2\r\nhi\r\n");
    let u = key(KeyPairType::User, 95);
    let _second = logged_in(&srv, Transport::Tcp, &k.b, &u);
    let v = key(KeyPairType::User, 96);
    let (_, out) = Conn::login(
        &srv,
        Transport::Tcp,
        Some(&user_jwt(&k.b, &v, "", "")),
        Some(&v),
    );
    assert_eq!(
        out,
        "-ERR 'maximum account active connections exceeded'\r\n"
    );
}
common::on_both!(claims_push_applies_to_that_account);

/// A client of the system account that announces headers, subscribed to its reply inbox.
fn system_client_with_headers(srv: &Server, sys: &KeyPair) -> Conn {
    let u = key(KeyPairType::User, 97);
    let (mut c, nonce) = Conn::open(srv, Transport::Tcp, "");
    let jwt = user_jwt(sys, &u, "", "");
    let sig = sign_nonce(&nonce, &u).unwrap();
    c.send(&format!(
        "CONNECT {{\"verbose\":false,\"protocol\":1,\"headers\":true,\"jwt\":\"{jwt}\",\"sig\":\"{sig}\"}}\r\nSUB _INBOX.claims 77\r\nPING\r\n"
    ));
    assert_eq!(c.read_either("PONG\r\n", "-ERR"), "PONG\r\n");
    c
}

/// Sends `body` with `headers` (`Name: value` lines) as a request; returns the first answer.
fn request_with_headers(c: &mut Conn, subject: &str, headers: &str, body: &str) -> String {
    let head = format!("NATS/1.0\r\n{headers}\r\n");
    c.send(&format!(
        "HPUB {subject} _INBOX.claims {} {}\r\n{head}{body}\r\n",
        head.len(),
        head.len() + body.len()
    ));
    next_answer(c)
}

/// The full resolver's handlers take the whole message, headers included
/// (`DirAccResolver.Start`; the system client takes headers), so a JWT sent with headers
/// does not decode; a lookup or list with headers is answered as without. The MEMORY
/// resolver's update takes the body alone (`accountClaimUpdate`, `msgParts`).
fn claims_requests_with_headers(target: Target) {
    let Some(Full { srv, sys, .. }) = start_full(target, false) else {
        return;
    };
    let k = keys();
    let b = k.b.public_key();
    let b_jwt = account_jwt(&k, &k.b, "");
    let mut s = system_client_with_headers(&srv, &sys);
    let got = request_with_headers(&mut s, "$SYS.REQ.CLAIMS.UPDATE", "X: 1\r\n", &b_jwt);
    assert_eq!(
        answer(&got),
        refused("n/a", "jwt update resulted in error - expected 3 chunks")
    );
    let subject = format!("$SYS.REQ.ACCOUNT.{b}.CLAIMS.UPDATE");
    let got = request_with_headers(&mut s, &subject, "", &b_jwt);
    assert_eq!(
        answer(&got),
        refused("n/a", "jwt update resulted in error - expected 3 chunks")
    );
    assert_eq!(answer(&request(&mut s, &subject, &b_jwt)), updated(&b));
    let lookup = format!("$SYS.REQ.ACCOUNT.{b}.CLAIMS.LOOKUP");
    assert_eq!(request_with_headers(&mut s, &lookup, "X: 1\r\n", ""), b_jwt);
    let listed = answer(&request_with_headers(
        &mut s,
        "$SYS.REQ.CLAIMS.LIST",
        "X: 1\r\n",
        "",
    ));
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(3), "{listed}");
    drop((s, srv));

    let sys = key(KeyPairType::Account, 9);
    let dir = common::temp_dir("operator-memory-headers");
    let op = common::write_file(&dir, "op.jwt", &operator_jwt(&k));
    let text = format!(
        "listen: \"127.0.0.1:-1\"\nwebsocket {{ listen: \"127.0.0.1:-1\", no_tls: true }}\noperator: \"{op}\"\nsystem_account: {s}\nresolver: MEMORY\nresolver_preload {{\n  {s}: {}\n  {a}: {}\n}}\n",
        account_jwt(&k, &sys, ""),
        account_jwt(&k, &k.a, ""),
        s = sys.public_key(),
        a = k.a.public_key(),
    );
    let Some(srv) = target.with_config(&text, &[]) else {
        return;
    };
    let a = k.a.public_key();
    let u = key(KeyPairType::User, 98);
    let mut c = logged_in(&srv, Transport::Tcp, &k.a, &u);
    let mut s = system_client_with_headers(&srv, &sys);
    let revoking = account_jwt(
        &k,
        &k.a,
        &format!(r#","revocations":{{"{}":{}}}"#, u.public_key(), now_unix()),
    );
    let subject = format!("$SYS.REQ.ACCOUNT.{a}.CLAIMS.UPDATE");
    let got = request_with_headers(&mut s, &subject, "X: 1\r\n", &revoking);
    assert_eq!(answer(&got), updated(&a));
    let rest = c.read_either("Revoked", "\u{0}never");
    assert!(
        rest.contains("-ERR 'User Authentication Revoked'\r\n"),
        "{rest}"
    );
}
common::on_both!(claims_requests_with_headers);

/// The directory's `limit` counts the JWTs that have not expired, as the reference's
/// expiration tracker does (`server/dirstore.go`: it drops an expired JWT, so a new account
/// takes its place); at the limit a new account is refused and a stored one is updated.
fn claims_store_limit_counts_unexpired(target: Target) {
    let k = keys();
    let expired = encode(
        &claims(
            &k.op,
            &k.b.public_key(),
            "account",
            &format!(r#","exp":{}"#, now_unix() - 5),
            "",
        ),
        &k.op,
    )
    .unwrap();
    // The system account, A and the expired B: three files for a limit of three.
    let more = [(k.b.public_key(), expired)];
    let Some(Full { srv, sys, .. }) = start_full_with(target, "limit: 3", &more) else {
        return;
    };
    let mut s = system_client(&srv, &sys);
    let c = key(KeyPairType::Account, 99);
    let got = request(&mut s, "$SYS.REQ.CLAIMS.UPDATE", &account_jwt(&k, &c, ""));
    assert_eq!(answer(&got), updated(&c.public_key()));
    let d = key(KeyPairType::Account, 100);
    let got = request(&mut s, "$SYS.REQ.CLAIMS.UPDATE", &account_jwt(&k, &d, ""));
    assert_eq!(
        answer(&got),
        refused(
            &d.public_key(),
            "jwt update resulted in error - jwt store is full"
        )
    );
    let a = k.a.public_key();
    let got = request(&mut s, "$SYS.REQ.CLAIMS.UPDATE", &account_jwt(&k, &k.a, ""));
    assert_eq!(answer(&got), updated(&a));
}
common::on_both!(claims_store_limit_counts_unexpired);

/// Hostile account JWTs, properly signed, pushed to both servers: every answer is the
/// reference's (validation issues in its order, decoding errors, strict signing keys).
#[test]
fn claims_hostile_pushes_answer_as_the_reference() {
    let Some(Full { srv, sys, .. }) = start_full(Target::Reference, false) else {
        return;
    };
    let Some(ours) = start_full(Target::Natsws, false) else {
        return;
    };
    let k = keys();
    let b = k.b.public_key();
    let a = k.a.public_key();
    let limits = |imports: i64, exports: i64, wildcards: bool| {
        format!(
            r#","limits":{{"subs":-1,"data":-1,"payload":-1,"imports":{imports},"exports":{exports},"wildcards":{wildcards},"conn":-1,"leaf":-1}}"#
        )
    };
    let import = |subject: &str, account: &str, kind: &str| {
        format!(r#"{{"subject":"{subject}","account":"{account}","type":"{kind}"}}"#)
    };
    let export =
        |subject: &str, kind: &str| format!(r#"{{"subject":"{subject}","type":"{kind}"}}"#);
    let cases: Vec<String> = vec![
        format!(
            r#"{},"imports":[{}]"#,
            limits(0, -1, true),
            import("x", &a, "stream")
        ),
        format!(
            r#"{},"exports":[{}]"#,
            limits(-1, 0, true),
            export("x", "stream")
        ),
        format!(
            r#"{},"exports":[{}]"#,
            limits(-1, 5, false),
            export("x.>", "stream")
        ),
        format!(
            r#"{},"exports":[{}]"#,
            limits(-1, -1, false),
            export("x.>", "stream")
        ),
        format!(
            r#"{},"exports":[{},{}]"#,
            limits(-1, 5, false),
            export("x.>", "stream"),
            export("y.*", "service")
        ),
        format!(
            r#","limits":{{"mem_storage":1}},"imports":[{}]"#,
            import("x", &a, "stream")
        ),
        format!(r#","imports":[{}]"#, import("x", &a, "stream")),
        format!(
            r#"{},"exports":[{},{}]"#,
            limits(-1, -1, true),
            export("", "stream"),
            export("a b", "service")
        ),
        format!(
            r#"{},"imports":[{},{}]"#,
            limits(-1, -1, true),
            import("svc", &a, "service"),
            import("svc", &a, "service")
        ),
        format!(
            r#"{},"imports":[{},{}]"#,
            limits(-1, -1, true),
            import("x.*", "", "stream"),
            import("a b", "XYZ", "bogus")
        ),
        format!(
            r#"{},"exports":[{},{}]"#,
            limits(-1, -1, true),
            export("x.>", "stream"),
            export("x.y", "stream")
        ),
        format!(r#"{},"name":"{}""#, limits(-1, -1, true), "n".repeat(5000)),
        format!(
            r#"{},"exports":[{{"subject":"s","type":"service","response_type":"Bogus"}}]"#,
            limits(-1, -1, true)
        ),
        format!(
            r#","limits":{{"subs":-9223372036854775808,"conn":-2,"payload":0,"imports":-5,"exports":-1,"wildcards":true}},"imports":[{}]"#,
            import("x", &a, "stream")
        ),
    ];
    let mut theirs = system_client(&srv, &sys);
    let mut mine = system_client(&ours.srv, &ours.sys);
    for (n, nats) in cases.iter().enumerate() {
        let token = account_jwt(&k, &k.b, nats);
        for subject in [
            format!("$SYS.REQ.ACCOUNT.{b}.CLAIMS.UPDATE"),
            "$SYS.REQ.CLAIMS.UPDATE".to_owned(),
        ] {
            let want = answer(&request(&mut theirs, &subject, &token));
            let got = answer(&request(&mut mine, &subject, &token));
            assert_eq!(got, want, "case {n} on {subject}: {nats}");
        }
    }
}

/// A write stuck on the disk does not hold the exit: on SIGTERM natsws waits a moment for
/// the pending writes, then exits without them (the push was never answered as stored).
/// natsws only: the point is natsws' writer thread.
#[test]
fn claims_stuck_write_does_not_hold_the_exit() {
    let Some(Full {
        mut srv, jwts, sys, ..
    }) = start_full(Target::Natsws, false)
    else {
        return;
    };
    let k = keys();
    let mut s = system_client(&srv, &sys);
    let b = k.b.public_key();
    mkfifo(&first_written(Target::Natsws, &jwts, &b));
    let b_jwt = account_jwt(&k, &k.b, "");
    s.send(&format!(
        "PUB $SYS.REQ.CLAIMS.UPDATE _INBOX.claims {}\r\n{b_jwt}\r\n",
        b_jwt.len()
    ));
    assert_eq!(s.sync(), "");
    srv.signal("TERM");
    srv.wait_exit();
    assert!(
        srv.log_text()
            .contains("jwt store: writes still pending at exit are abandoned"),
        "{}",
        srv.log_text()
    );
    assert!(!jwts.join(format!("{b}.jwt")).exists());
}

/// An update and a delete of one account sent back to back apply in that order: the update
/// is stored and answered first, then the delete renames its file and the account is gone;
/// a lookup sent after them finds nothing.
fn claims_update_then_delete_in_order(target: Target) {
    let Some(Full { srv, jwts, sys, .. }) = start_full(target, true) else {
        return;
    };
    let k = keys();
    let b = k.b.public_key();
    let mut s = system_client(&srv, &sys);
    let b_jwt = account_jwt(&k, &k.b, "");
    let del = delete_request(&k.op, std::slice::from_ref(&b));
    s.send(&format!(
        "PUB $SYS.REQ.ACCOUNT.{b}.CLAIMS.UPDATE _INBOX.claims {}\r\n{b_jwt}\r\nPUB $SYS.REQ.CLAIMS.DELETE _INBOX.claims {}\r\n{del}\r\nPUB $SYS.REQ.ACCOUNT.{b}.CLAIMS.LOOKUP _INBOX.claims 0\r\n\r\n",
        b_jwt.len(),
        del.len()
    ));
    assert_eq!(answer(&next_answer(&mut s)), updated(&b));
    assert_eq!(
        answer(&next_answer(&mut s)),
        serde_json::json!({"data": {"code": 200, "message": "deleted 1 accounts"}})
    );
    assert!(
        silent_for(&mut s, Duration::from_millis(300)),
        "the lookup found the JWT"
    );
    assert!(!jwts.join(format!("{b}.jwt")).exists());
    assert_eq!(
        std::fs::read_to_string(jwts.join(format!("{b}.jwt.deleted"))).unwrap(),
        b_jwt
    );
    let u = key(KeyPairType::User, 101);
    let (_, out) = Conn::login(
        &srv,
        Transport::Tcp,
        Some(&user_jwt(&k.b, &u, "", "")),
        Some(&u),
    );
    assert_eq!(out, VIOLATION);
}
common::on_both!(claims_update_then_delete_in_order);
