//! Typed option values, defaults, start-up validation and positions for values without their
//! own token. Each concern has one `check` helper; the cases are tables.

use std::sync::Arc;
use std::time::Duration;

use natsconf::options::{
    AllowedOrigin, DEFAULT_CONFIG, Diagnostic, ExportKind, HostPort, Options, ResponsePermission,
    ResponseType, Severity, SubjectPermission,
};
use natsconf::value::{Map, Node, Pos, Value};
use natsconf::{MemLoader, NoEnv, parse_source};

fn parse(text: &str) -> Map {
    parse_source(text.as_bytes(), b"t.conf", &NoEnv, &MemLoader::new()).expect("config parses")
}

fn load(text: &str) -> Options {
    match Options::from_map(&parse(text)) {
        Ok(loaded) => loaded.options,
        Err(report) => panic!("{text:?} rejected: {report:?}"),
    }
}

/// A config that loads, and the value `get` reads from it.
fn check<T: PartialEq + std::fmt::Debug>(text: &str, get: impl Fn(&Options) -> T, want: T) {
    assert_eq!(get(&load(text)), want, "config {text:?}");
}

/// A config that is rejected (or warns), and its whole report, one line per diagnostic.
fn check_report(text: &str, want: &[&str]) {
    let got: Vec<String> = match Options::from_map(&parse(text)) {
        Ok(loaded) => loaded.warnings.iter().map(ToString::to_string).collect(),
        Err(report) => report.iter().map(ToString::to_string).collect(),
    };
    assert_eq!(got, want, "config {text:?}");
}

/// A config that loads, and the options it names that natsconf does not model (their
/// `Display`: position and path).
fn check_unmodelled(text: &str, want: &[&str]) {
    let loaded = Options::from_map(&parse(text))
        .unwrap_or_else(|report| panic!("{text:?} rejected: {report:?}"));
    let got: Vec<String> = loaded
        .options
        .unmodelled()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(got, want, "config {text:?}");
}

/// A config that loads, then the outcome of start-up validation.
fn check_validate(text: &str, want: Result<(), &str>) {
    let res = load(text).validate().map_err(|e| e.to_string());
    assert_eq!(res, want.map_err(str::to_owned), "config {text:?}");
}

const S: Duration = Duration::from_secs(1);

#[test]
fn defaults_equal_nats_server() {
    let options = Options::default();
    assert_eq!(
        options.listen,
        HostPort {
            host: "0.0.0.0".into(),
            port: 4222
        }
    );
    assert_eq!(options.max_payload, 1_048_576);
    assert_eq!(options.max_control_line, 4096);
    assert_eq!(options.max_pending, 67_108_864);
    assert_eq!(options.max_connections, 65_536);
    assert_eq!(options.max_subscriptions, 0);
    assert_eq!(options.max_subscription_tokens, None);
    assert_eq!(options.ping_interval, 120 * S);
    assert_eq!(options.ping_max, 2);
    assert_eq!(options.write_deadline, 10 * S);
    assert_eq!(options.lame_duck_duration, 120 * S);
    assert_eq!(options.lame_duck_grace_period, 10 * S);
    assert_eq!(options.auth_timeout, 2 * S);
    assert_eq!(options.connect_error_reports, 3600);
    assert_eq!(options.reconnect_error_reports, 1);
    assert_eq!(options.max_closed_clients, 10_000);
    assert!(options.logging.logtime);
    assert!(!options.logging.debug && !options.logging.trace);
    assert_eq!(options.http, None);
    assert_eq!(options.https, None);
    assert_eq!(options.websocket, None);
    assert_eq!(options.leafnodes.listen, None);
    assert_eq!(options.leafnodes.reconnect_interval, S);
    assert_eq!(options.tls, None);
    assert_eq!(options, load(""));
    assert_eq!(options.validate(), Ok(()));
}

#[test]
fn default_config_text() {
    let options = load(DEFAULT_CONFIG);
    assert_eq!(
        options.listen,
        HostPort {
            host: "127.0.0.1".into(),
            port: 4222
        }
    );
    assert_eq!(
        options.http,
        Some(HostPort {
            host: "127.0.0.1".into(),
            port: 8222
        })
    );
    let ws = options.websocket.clone().expect("websocket enabled");
    assert_eq!(
        ws.listen,
        HostPort {
            host: "127.0.0.1".into(),
            port: 8080
        }
    );
    assert!(ws.no_tls);
    assert!(ws.tls.is_none());
    assert_eq!(options.validate(), Ok(()));
}

#[test]
fn server_core_values() {
    let host_port = |h: &str, p: u16| HostPort {
        host: h.into(),
        port: p,
    };
    check(
        "port: 4333",
        |o| o.listen.clone(),
        host_port("0.0.0.0", 4333),
    );
    check("port: 0", |o| o.listen.port, 4222);
    check("port: -1", |o| o.listen.port, 0);
    check(
        "net: 10.0.0.1",
        |o| o.listen.host.clone(),
        "10.0.0.1".into(),
    );
    check("HOST: h", |o| o.listen.host.clone(), "h".into());
    check(
        "listen: 127.0.0.1:5000",
        |o| o.listen.clone(),
        host_port("127.0.0.1", 5000),
    );
    check(
        "listen: 5001",
        |o| o.listen.clone(),
        host_port("0.0.0.0", 5001),
    );
    check(
        "listen: \"[::1]:5002\"",
        |o| o.listen.clone(),
        host_port("::1", 5002),
    );
    check(
        "http: 8222",
        |o| o.http.clone(),
        Some(host_port("0.0.0.0", 8222)),
    );
    check(
        "host: h\nhttp_port: 8222",
        |o| o.http.clone(),
        Some(host_port("h", 8222)),
    );
    check(
        "monitor_port: -1",
        |o| o.http.clone(),
        Some(host_port("0.0.0.0", 0)),
    );
    check(
        "https: \"m:8443\"",
        |o| (o.http.clone(), o.https.clone()),
        (None, Some(host_port("m", 8443))),
    );
    check(
        "https_port: 1",
        |o| o.https.clone(),
        Some(host_port("0.0.0.0", 1)),
    );
    check(
        "http_base_path: /x",
        |o| o.http_base_path.clone(),
        "/x".into(),
    );
    check(
        "client_advertise: \"a:1\"",
        |o| o.client_advertise.clone(),
        Some("a:1".into()),
    );
    check(
        "server_name: n",
        |o| o.server_name.clone(),
        Some("n".into()),
    );
    check("server_name: \"\"", |o| o.server_name.clone(), None);
    check(
        "server_tags: [a, \" B \", A, \"\"]",
        |o| o.server_tags.clone(),
        vec!["a".into(), "b".into()],
    );
    check("max_payload: 2MB", |o| o.max_payload, 2 * 1024 * 1024);
    check("max_payload: 0", |o| o.max_payload, 1024 * 1024);
    check("max_control_line: 1KB", |o| o.max_control_line, 1024);
    check("max_pending: 1GB", |o| o.max_pending, 1 << 30);
    check("max_connections: 64K", |o| o.max_connections, 64_000);
    check("max_conn: 0", |o| o.max_connections, 65_536);
    check("max_subs: 10", |o| o.max_subscriptions, 10);
    check("max_subscriptions: 11", |o| o.max_subscriptions, 11);
    check(
        "max_sub_tokens: 255",
        |o| o.max_subscription_tokens,
        Some(255),
    );
    check(
        "max_subscription_tokens: 1",
        |o| o.max_subscription_tokens,
        Some(1),
    );
    check("max_traced_msg_len: 7", |o| o.max_traced_msg_len, 7);
    check("ping_max: 5", |o| o.ping_max, 5);
    check("ping_interval: \"1m30s\"", |o| o.ping_interval, 90 * S);
    check("ping_interval: 1", |o| o.ping_interval, S);
    check(
        "write_deadline: \"250ms\"",
        |o| o.write_deadline,
        Duration::from_millis(250),
    );
    check(
        "lame_duck_duration: \"45s\"",
        |o| o.lame_duck_duration,
        45 * S,
    );
    check(
        "lame_duck_grace_period: \"0s\"",
        |o| o.lame_duck_grace_period,
        10 * S,
    );
    check(
        "lame_duck_grace_period: \"3s\"",
        |o| o.lame_duck_grace_period,
        3 * S,
    );
    check("connect_error_reports: 9", |o| o.connect_error_reports, 9);
    check(
        "reconnect_error_reports: 9",
        |o| o.reconnect_error_reports,
        9,
    );
    check("no_header_support: true", |o| o.no_header_support, true);
    check("no_sublist_cache: true", |o| o.disable_sublist_cache, true);
    check("no_sys_acc: true", |o| o.no_system_account, true);
    check("allow_non_tls: true", |o| o.allow_non_tls, true);
    check("pidfile: /p", |o| o.pid_file.clone(), Some("/p".into()));
    check("store_dir: /s", |o| o.store_dir.clone(), Some("/s".into()));
    check(
        "storedir: \"/s d\"",
        |o| o.store_dir.clone(),
        Some("/s d".into()),
    );
    check("store_dir: \"\"", |o| o.store_dir.clone(), None);
    check(
        "ports_file_dir: /d",
        |o| o.ports_file_dir.clone(),
        Some("/d".into()),
    );
    check(
        "no_auth_user: u",
        |o| o.no_auth_user.clone(),
        Some("u".into()),
    );
}

#[test]
fn logging_values() {
    check("debug: true", |o| o.logging.debug, true);
    check("trace: on", |o| o.logging.trace, true);
    check(
        "trace_verbose: true",
        |o| (o.logging.trace, o.logging.trace_verbose),
        (true, true),
    );
    check("logtime: false", |o| o.logging.logtime, false);
    check(
        "log_file: /l",
        |o| o.logging.log_file.clone(),
        Some("/l".into()),
    );
    check(
        "logfile: /l2",
        |o| o.logging.log_file.clone(),
        Some("/l2".into()),
    );
    check("log_size_limit: 1MB", |o| o.logging.log_size_limit, 1 << 20);
    check("logfile_size_limit: 5", |o| o.logging.log_size_limit, 5);
    check("syslog: true", |o| o.logging.syslog, true);
    check(
        "remote_syslog: \"udp://h:514\"",
        |o| o.logging.remote_syslog.clone(),
        Some("udp://h:514".into()),
    );
}

#[test]
fn tls_values() {
    let text = "tls { cert_file: c, key_file: k, ca_file: a, verify: true, timeout: 1.5 }";
    check(
        text,
        |o| {
            let t = o.tls.clone().unwrap();
            (t.cert_file, t.key_file, t.ca_file, t.verify, t.timeout)
        },
        (
            Some("c".into()),
            Some("k".into()),
            Some("a".into()),
            true,
            Duration::from_millis(1500),
        ),
    );
    check(text, |o| o.auth_timeout, Duration::from_millis(2500));
    check(
        "tls { timeout: \"750ms\" }",
        |o| o.tls.clone().unwrap().timeout,
        Duration::from_millis(750),
    );
    check(
        "tls { timeout: 3 }",
        |o| o.tls.clone().unwrap().timeout,
        3 * S,
    );
    check(
        "tls { timeout: 0 }",
        |o| o.tls.clone().unwrap().timeout,
        2 * S,
    );
    check("tls {}", |o| o.auth_timeout, 3 * S);
    // A timeout near Duration::MAX must not overflow when the auth timeout adds a second.
    check(
        "tls { timeout: 18446744073709551615.0 }",
        |o| o.auth_timeout >= o.tls.clone().unwrap().timeout,
        true,
    );
    check(
        "tls { timeout: -5 }",
        |o| o.tls.clone().unwrap().timeout,
        2 * S,
    );
    check(
        "tls { verify_and_map: true }",
        |o| {
            let t = o.tls.clone().unwrap();
            (t.verify, t.verify_and_map)
        },
        (true, true),
    );
    check(
        "tls { insecure: true }",
        |o| o.tls.clone().unwrap().insecure,
        true,
    );
    check(
        "tls { connection_rate_limit: 5 }",
        |o| o.tls.clone().unwrap().connection_rate_limit,
        5,
    );
    check(
        "tls { cipher_suites: [\"TLS_AES_256_GCM_SHA384\", \"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305\"] }",
        |o| o.tls.clone().unwrap().cipher_suites,
        vec![
            "TLS_AES_256_GCM_SHA384".to_owned(),
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305".to_owned(),
        ],
    );
    check("tls {}", |o| o.tls.clone().unwrap().cipher_suites.len(), 6);
    check(
        "tls {}",
        |o| o.tls.clone().unwrap().curve_preferences,
        vec!["X25519".into(), "CurveP256".into(), "CurveP384".into()],
    );
    let pin = "AB".repeat(32);
    check(
        &format!(
            "tls {{ pinned_certs: [\"{pin}\", \"{}\"] }}",
            pin.to_lowercase()
        ),
        |o| o.tls.clone().unwrap().pinned_certs,
        vec!["ab".repeat(32)],
    );
    check_report(
        "tls { key_file: k }",
        &["t.conf:1:0: missing 'cert_file' in TLS configuration"],
    );
    check_report(
        "tls { verify_and_map: 1 }",
        &["t.conf:1:6: error parsing tls config, expected 'verify_and_map' to be a boolean"],
    );
}

#[test]
fn authorization_values() {
    check(
        "authorization { user: a, password: \"$2a$11$x\", timeout: 0.5 }",
        |o| {
            let a = &o.authorization;
            (
                a.user.clone(),
                a.password.clone(),
                a.timeout,
                o.auth_timeout,
            )
        },
        (
            Some("a".into()),
            Some("$2a$11$x".into()),
            Some(Duration::from_millis(500)),
            Duration::from_millis(500),
        ),
    );
    check(
        "authorization { token: t, timeout: 3 }",
        |o| (o.authorization.token.clone(), o.auth_timeout),
        (Some("t".into()), 3 * S),
    );
    check("authorization { timeout: \"x\" }", |o| o.auth_timeout, S);
    // An unquoted bcrypt hash is a string, not a variable (`conf/parse.go` `bcryptPrefix`).
    check(
        "authorization { user: a, password: $2a$11$W2zko751KUvVy59mUTWmpOdWXvYHlFEPjJ4hTeZNKZGTyQpYHrQ7S }",
        |o| o.authorization.password.clone(),
        Some("$2a$11$W2zko751KUvVy59mUTWmpOdWXvYHlFEPjJ4hTeZNKZGTyQpYHrQ7S".to_owned()),
    );
    check(
        "tls { timeout: 4 }\nauthorization { timeout: 1 }",
        |o| o.auth_timeout,
        S,
    );
    let users = "authorization {
      default_permissions: { publish: \"p.>\" }
      users: [
        { user: a, password: b, permissions: { publish: { allow: [\"x\"], deny: \"y\" }, subscribe: [] } }
        { username: c, pass: d, allowed_connection_types: [\"websocket\", \"Mqtt_Ws\", \"WEBSOCKET\"] }
        { nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4, permission: { allow_responses: true } }
      ]
    }";
    let options = load(users);
    let a = &options.authorization;
    assert_eq!(a.users.len(), 2);
    let first = a.users[0].permissions.clone().unwrap();
    assert_eq!(
        first.publish,
        Some(SubjectPermission {
            allow: Some(vec!["x".into()]),
            deny: vec!["y".into()]
        })
    );
    assert_eq!(
        first.subscribe,
        Some(SubjectPermission {
            allow: None,
            deny: vec![]
        })
    );
    assert_eq!(
        a.users[1]
            .permissions
            .clone()
            .unwrap()
            .publish
            .unwrap()
            .allow,
        Some(vec!["p.>".to_owned()])
    );
    assert_eq!(
        a.users[1].allowed_connection_types,
        vec!["WEBSOCKET".to_owned(), "MQTT_WS".to_owned()]
    );
    assert_eq!(a.users[1].account, None);
    let nkey = &a.nkeys[0];
    let perms = nkey.permissions.clone().unwrap();
    assert_eq!(perms.allow_responses, Some(ResponsePermission::default()));
    assert_eq!(
        perms.allow_responses,
        Some(ResponsePermission {
            max_msgs: 1,
            expires: Some(120 * S)
        })
    );
    // allow_responses turns the missing publish allow list into "responses only".
    assert_eq!(perms.publish.unwrap().allow, Some(vec![]));
    check(
        "authorization { users: [ {user: a, permissions: { allow_responses: { max: -1, expires: \"-1s\" } } } ] }",
        |o| {
            o.authorization.users[0]
                .permissions
                .clone()
                .unwrap()
                .allow_responses
        },
        Some(ResponsePermission {
            max_msgs: -1,
            expires: None,
        }),
    );
    check(
        "authorization { users: [ {user: a, permissions: { allow_responses: { max_msgs: 0, ttl: \"0s\" } } } ] }",
        |o| {
            o.authorization.users[0]
                .permissions
                .clone()
                .unwrap()
                .allow_responses
        },
        Some(ResponsePermission::default()),
    );
    check(
        "authorization { users: [ {user: a, permissions: { allow_responses: false } } ] }",
        |o| o.authorization.users[0].permissions.clone().unwrap(),
        natsconf::options::Permissions::default(),
    );
    check(
        "authorization { users: [ {user: a, permissions: { sub: \"q.* grp\", pub: { allow: [] } } } ] }",
        |o| {
            let p = o.authorization.users[0].permissions.clone().unwrap();
            (p.subscribe.unwrap().allow, p.publish.unwrap().allow)
        },
        (Some(vec!["q.* grp".to_owned()]), None),
    );
    check_report(
        "authorization { users: [ {user: a, permissions: { publish: \"a..b\" } } ] }",
        &["subject \"a..b\" is not a valid subject"],
    );
    check_report(
        "authorization { users: [ {user: a, permissions: { publish: \"a b c\" } } ] }",
        &["subject \"a b c\" is not a valid subject"],
    );
    check_report(
        "authorization { users: [ {user: a, permissions: { publish: \"a.> b\" } } ] }",
        &[],
    );
    check_report(
        "authorization { users: [ {user: a, permissions: { publish: \"a.>.b q\" } } ] }",
        &["subject \"a.>.b\" is not a valid subject"],
    );
}

#[test]
fn accounts_values() {
    let options = load(
        "accounts {
          A: {
            users: [ {user: a, password: p}, {nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4} ]
            default_permissions: { subscribe: \"s\" }
            exports: [ {stream: \"pub.>\", accounts: [B]}, {service: \"svc.>\", response_type: chunked, threshold: \"2s\"} ]
          }
          B: { imports: [ {stream: {account: A, subject: \"pub.x\"}, to: \"mine\"}, {service: {account: A, subject: \"svc.a\"}} ] }
        }
        authorization { users: [ {user: g, password: h} ] }",
    );
    assert_eq!(options.accounts.len(), 2);
    let a = &options.accounts[0];
    assert_eq!(a.name, "A");
    assert_eq!(a.exports[0].kind, ExportKind::Stream);
    assert_eq!(a.exports[0].accounts, vec!["B".to_owned()]);
    assert_eq!(a.exports[1].response_type, ResponseType::Chunked);
    assert_eq!(a.exports[1].response_threshold, Some(2 * S));
    let b = &options.accounts[1];
    assert_eq!(b.imports[0].to.as_deref(), Some("mine"));
    assert_eq!(b.imports[1].to.as_deref(), Some("svc.a"));
    let users = &options.authorization.users;
    assert_eq!(
        users
            .iter()
            .map(|u| (u.username.as_str(), u.account.as_deref()))
            .collect::<Vec<_>>(),
        vec![("a", Some("A")), ("g", None)]
    );
    assert_eq!(
        users[0]
            .permissions
            .clone()
            .unwrap()
            .subscribe
            .unwrap()
            .allow,
        Some(vec!["s".to_owned()])
    );
    assert_eq!(options.authorization.nkeys[0].account.as_deref(), Some("A"));
    check("accounts: [X, Y]", |o| o.accounts.len(), 2);
    check_report(
        "accounts { A: { users: [ {user: a} ] } }\nauthorization { users: [ {user: a} ] }",
        &["t.conf:2:1: Duplicate user \"a\" detected"],
    );
    check_report(
        "authorization { token: t }\naccounts { A: { users: [ {user: a} ] } }",
        &["t.conf:2:17: Can not have a token and accounts"],
    );
    check_report(
        "accounts { A: { exports: [ {stream: \"a.>\"} ] }, B: { imports: [ {stream: {account: A, subject: \"a.x\"}, prefix: \"p.*\"} ] } }",
        &[
            "t.conf:1:0: Error adding stream import \"a.x\": stream import prefix can not contain wildcard tokens",
        ],
    );
    check_report(
        "accounts { A: { exports: [ {stream: \"a.>\", accounts: [Q]} ] } }",
        &["t.conf:1:0: \"Q\" account not defined for stream export"],
    );
    // Import errors and cycles, as `nats-server -t` prints them for the same files.
    check_report(
        "accounts { A: { exports: [ {stream: \"a.>\"} ] }, B: { imports: [ {stream: {account: A, subject: \"b\"}}, {service: {account: A, subject: \"a.x\"}} ] } }",
        &[
            "t.conf:1:0: Error adding stream import \"b\": stream import not authorized",
            "t.conf:1:0: Error adding service import \"a.x\": service import not authorized",
        ],
    );
    check_report(
        "accounts {\n A { exports: [{stream: \"foo.>\"}], imports: [{stream: {account: B, subject: \"foo.>\"}}] }\n B { exports: [{stream: \"foo.>\"}], imports: [{stream: {account: A, subject: \"foo.>\"}}] }\n}",
        &["t.conf:1:0: Error adding stream import \"foo.>\": import forms a cycle"],
    );
    check_report(
        "accounts {\n A { exports: [{service: \"svc.x\"}], imports: [{service: {account: B, subject: \"svc.x\"}}] }\n B { exports: [{service: \"svc.x\"}], imports: [{service: {account: A, subject: \"svc.x\"}}] }\n}",
        &["t.conf:1:0: Error adding service import \"svc.x\": import forms a cycle"],
    );
    // Prefixed imports both ways do not collide: no cycle.
    check_report(
        "accounts {\n A { exports: [{stream: \"foo.>\"}], imports: [{stream: {account: B, subject: \"foo.>\"}, prefix: b}] }\n B { exports: [{stream: \"foo.>\"}], imports: [{stream: {account: A, subject: \"foo.>\"}, prefix: a}] }\n}",
        &[],
    );
    check_unmodelled(
        "accounts { A: { mappings: { a: b } } }",
        &["t.conf:1:16: accounts.A.mappings is known to nats-server but not modelled by natsconf"],
    );
}

#[test]
fn leafnode_values() {
    let options = load(
        "leafnodes {
          listen: \"127.0.0.1:7000\"
          advertise: \"adv:1\"
          no_advertise: true
          min_version: \"2.9.0\"
          reconnect_interval: 4
          authorization { users: [ {user: a, password: b, account: A} ] }
          remotes: [
            { url: \"nats://u:p@hub\", account: A, hub: true, deny_exports: [\"x.>\"] }
            { urls: [\"wss://hub:443/leafnode\"], ws_compression: true, websocket_no_masking: true, creds: \"/c\" }
          ]
        }
        accounts: [A]",
    );
    let leaf = &options.leafnodes;
    assert_eq!(
        leaf.listen,
        Some(HostPort {
            host: "127.0.0.1".into(),
            port: 7000
        })
    );
    assert_eq!(leaf.advertise.as_deref(), Some("adv:1"));
    assert!(leaf.no_advertise);
    assert_eq!(leaf.min_version.as_deref(), Some("2.9.0"));
    assert_eq!(leaf.reconnect_interval, 4 * S);
    assert_eq!(leaf.authorization.users[0].account.as_deref(), Some("A"));
    let first = &leaf.remotes[0];
    assert_eq!(first.urls[0].port, 7422);
    assert_eq!(first.urls[0].username.as_deref(), Some("u"));
    assert_eq!(first.urls[0].password.as_deref(), Some("p"));
    assert_eq!(first.urls[0].host, "hub");
    assert!(first.hub);
    assert_eq!(first.deny_exports, vec!["x.>".to_owned()]);
    let second = &leaf.remotes[1];
    assert!(second.urls[0].is_websocket());
    assert_eq!(second.urls[0].port, 443);
    assert!(second.ws_compression && second.ws_no_masking);
    assert_eq!(second.credentials.as_deref(), Some("/c"));
    assert_eq!(options.validate(), Ok(()));
    check(
        "leafnodes { port: 7422 }",
        |o| o.leafnodes.listen.clone().unwrap().host,
        "0.0.0.0".to_owned(),
    );
    check(
        "leafnodes { port: 1 }",
        |o| o.leafnodes.auth_timeout(),
        2 * S,
    );
    check(
        "leafnodes { port: 1, tls { timeout: 3 } }",
        |o| o.leafnodes.auth_timeout(),
        4 * S,
    );
    check(
        "leafnodes { port: 1, authorization { timeout: 0.5 } }",
        |o| o.leafnodes.auth_timeout(),
        Duration::from_millis(500),
    );
    check_report(
        "leafnodes { min_version: \"2\" }",
        &[
            "t.conf:1:12: invalid leafnode's minimum version: strconv.Atoi: parsing \"\": invalid syntax",
        ],
    );
    check_report(
        "leafnodes { min_version: \"x\" }",
        &["t.conf:1:12: invalid leafnode's minimum version: invalid semver"],
    );
    check_unmodelled(
        "leafnodes { remotes: [ { url: \"nats://h\", js_cluster_migrate: true } ] }",
        &[
            "t.conf:1:42: leafnodes.remotes[0].js_cluster_migrate is known to nats-server but not modelled by natsconf",
        ],
    );
}

#[test]
fn mqtt_values() {
    let options = load(
        "server_name: s
        mqtt {
          listen: \"127.0.0.1:1884\"
          authorization { user: u, password: p, timeout: 3 }
          no_auth_user: n
          ack_wait: \"5s\"
          max_inflight: 10
        }",
    );
    let mqtt = options.mqtt.clone().unwrap();
    assert_eq!(
        mqtt.listen,
        HostPort {
            host: "127.0.0.1".into(),
            port: 1884
        }
    );
    assert_eq!(mqtt.authorization.user.as_deref(), Some("u"));
    assert_eq!(mqtt.authorization.password.as_deref(), Some("p"));
    assert_eq!(mqtt.authorization.timeout, Some(3 * S));
    assert_eq!(mqtt.no_auth_user.as_deref(), Some("n"));
    assert_eq!(mqtt.ack_wait, 5 * S);
    assert_eq!(mqtt.max_ack_pending, 10);
    assert!(mqtt.auth_override());
    // Defaults (nats-server's mqttDefaultAckWait and mqttDefaultMaxAckPending); port 0 is off.
    check(
        "mqtt { port: 1883, ack_wait: 0 }",
        |o| {
            o.mqtt
                .clone()
                .map(|m| (m.ack_wait, m.max_ack_pending, m.listen.host))
        },
        Some((30 * S, 1024, "0.0.0.0".to_owned())),
    );
    check("mqtt { host: h }", |o| o.mqtt.is_none(), true);
    check_report(
        "mqtt { max_ack_pending: 65536 }",
        &["t.conf:1:7: invalid value 65536, should in [0..65535] range"],
    );
    check_report(
        "mqtt: 1",
        &["t.conf:1:0: Expected mqtt to be a map, got int64"],
    );
    for key in [
        "js_domain",
        "stream_replicas",
        "consumer_replicas",
        "consumer_memory_storage",
        "consumer_inactive_threshold",
        "consumer_auto_cleanup",
    ] {
        check_unmodelled(
            &format!("mqtt {{ {key}: 1 }}"),
            &[format!(
                "t.conf:1:7: mqtt.{key} is known to nats-server but not modelled by natsconf"
            )
            .as_str()],
        );
    }
    check_report(
        "mqtt { bogus: 1 }",
        &["t.conf:1:7: unknown field \"bogus\""],
    );
    // validateMQTTOptions, without its JetStream requirement.
    check_validate(
        "mqtt { port: 1883 }",
        Err("mqtt requires server name to be explicitly set"),
    );
    check_validate("server_name: s, mqtt { port: 1883 }", Ok(()));
    check_validate(
        "server_name: s, mqtt { port: 1883, ack_wait: \"-1s\" }",
        Err("ack wait must be a positive value"),
    );
    check_validate(
        "server_name: s, authorization { users: [ {user: a, password: b} ] }, mqtt { port: 1883, authorization { user: x, password: y } }",
        Err("mqtt authentication username not compatible with presence of users/nkeys"),
    );
    check_validate(
        "server_name: s, authorization { users: [ {user: a, password: b} ] }, mqtt { port: 1883, authorization { token: t } }",
        Err("mqtt authentication token not compatible with presence of users/nkeys"),
    );
    check_validate(
        "server_name: s, mqtt { port: 1883, no_auth_user: nobody }",
        Err("no_auth_user: \"nobody\" present, but users are not defined"),
    );
}

#[test]
fn websocket_values() {
    let options = load(
        "websocket {
          listen: \"127.0.0.1:9000\"
          advertise: \"ws.example\"
          no_tls: true
          same_origin: true
          allowed_origin: \"https://a.example\"
          handshake_timeout: \"1.5s\"
          compress: true
          authentication { user: u, pass: p, timeout: 2 }
          jwt_cookie: j
          user_cookie: uc
          pass_cookie: pc
          token_cookie: tc
          no_auth_user: n
          headers { X-A: \"1\", x-b: \"2\" }
          ping_interval: \"20s\"
        }",
    );
    let ws = options.websocket.unwrap();
    assert_eq!(
        ws.listen,
        HostPort {
            host: "127.0.0.1".into(),
            port: 9000
        }
    );
    assert_eq!(ws.advertise.as_deref(), Some("ws.example"));
    assert!(ws.no_tls && ws.same_origin && ws.compression);
    assert_eq!(ws.allowed_origins, vec!["https://a.example".to_owned()]);
    assert_eq!(
        ws.parsed_origins(),
        Ok(vec![AllowedOrigin {
            scheme: "https".into(),
            host: "a.example".into(),
            port: 443
        }])
    );
    assert_eq!(ws.handshake_timeout, Some(Duration::from_millis(1500)));
    assert_eq!(ws.authorization.user.as_deref(), Some("u"));
    assert_eq!(ws.authorization.password.as_deref(), Some("p"));
    assert_eq!(ws.authorization.timeout, Some(2 * S));
    assert_eq!(ws.jwt_cookie.as_deref(), Some("j"));
    assert_eq!(ws.user_cookie.as_deref(), Some("uc"));
    assert_eq!(ws.pass_cookie.as_deref(), Some("pc"));
    assert_eq!(ws.token_cookie.as_deref(), Some("tc"));
    assert_eq!(ws.no_auth_user.as_deref(), Some("n"));
    assert_eq!(
        ws.headers,
        vec![
            ("X-A".to_owned(), "1".to_owned()),
            ("x-b".to_owned(), "2".to_owned())
        ]
    );
    assert_eq!(ws.ping_interval, Some(20 * S));
    assert!(ws.auth_override());
    check(
        "ws { port: 1, handshake_timeout: 3 }",
        |o| o.websocket.clone().unwrap().handshake_timeout,
        Some(3 * S),
    );
    check(
        "ws { port: 1, handshake_timeout: -3 }",
        |o| o.websocket.clone().unwrap().handshake_timeout,
        None,
    );
    check(
        "ws { port: 1 }",
        |o| o.websocket.clone().unwrap().listen.host,
        "0.0.0.0".to_owned(),
    );
    check(
        "ws { port: -1 }",
        |o| o.websocket.clone().unwrap().listen.port,
        0,
    );
    check(
        "ws { listen: \":99\" }",
        |o| o.websocket.clone().unwrap().listen.host,
        "0.0.0.0".to_owned(),
    );
    check(
        "ws { host: h, compression: true }",
        |o| o.websocket.clone(),
        None,
    );
    check(
        "ws { port: 1, origins: [\"http://a\", \"https://b:1\"] }",
        |o| o.websocket.clone().unwrap().allowed_origins,
        vec!["http://a".to_owned(), "https://b:1".to_owned()],
    );
    check(
        "ws { port: 1, authorization { timeout: \"x\" } }",
        |o| o.websocket.clone().unwrap().authorization.timeout,
        Some(S),
    );
    check(
        "ws { port: 1, authorization { timeout: 2 } }",
        |o| o.websocket.clone().unwrap().auth_override(),
        false,
    );
    check_report(
        "ws { port: 1, ping_interval: 5 }",
        &[
            "t.conf:1:14: invalid use of field \"ping_interval\": ping_interval should be converted to a duration",
        ],
    );
}

#[test]
fn start_up_validation_in_reference_order() {
    check_validate(
        "ws { port: 1 }",
        Err("websocket requires TLS configuration"),
    );
    check_validate("ws { port: 1, tls { cert_file: c, key_file: k } }", Ok(()));
    check_validate("ws { port: 0 }", Ok(()));
    check_validate("ws { port: 1, no_tls: true }", Ok(()));
    check_validate(
        "ws { port: 1, no_tls: true, allowed_origins: [\"http://ok\", \"http://this:is:bad:url\"] }",
        Err(
            "unable to parse allowed origin: parse \"http://this:is:bad:url\": invalid port \":url\" after host",
        ),
    );
    check_validate(
        "ws { port: 1, no_tls: true, allowed_origins: \"example.com\" }",
        Err(
            "unable to parse allowed origin \"example.com\": allowed origins must be absolute URLs with http or https scheme",
        ),
    );
    check_validate(
        "ws { port: 1, no_tls: true, no_auth_user: x }",
        Err("no_auth_user: \"x\" present, but users are not defined"),
    );
    check_validate(
        "ws { port: 1, no_tls: true, no_auth_user: x }\nauthorization { users: [ {user: a} ] }",
        Err(
            "no_auth_user: \"x\" not present as user in authorization block or account configuration",
        ),
    );
    check_validate(
        "ws { port: 1, no_tls: true, no_auth_user: a }\naccounts { A: { users: [ {user: a} ] } }",
        Ok(()),
    );
    check_validate(
        "ws { port: 1, no_tls: true, authorization { user: u } }\nauthorization { users: [ {user: a} ] }",
        Err("websocket authentication username not compatible with presence of users/nkeys"),
    );
    check_validate(
        "ws { port: 1, no_tls: true, authorization { token: t } }\nauthorization { users: [ {nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4} ] }",
        Err("websocket authentication token not compatible with presence of users/nkeys"),
    );
    check_validate(
        "ws { port: 1, no_tls: true, jwt_cookie: my_jwt }",
        Err(
            "trusted operators or trusted keys configuration is required for JWT authentication via cookie \"my_jwt\"",
        ),
    );
    check_validate(
        "ws { port: 1, no_tls: true, headers { \"Sec-WebSocket-Protocol\": x } }",
        Err(
            "websocket: invalid header \"Sec-WebSocket-Protocol\", \"Sec-WebSocket-\" prefix not allowed",
        ),
    );
    check_validate(
        "ws { port: 1, no_tls: true, headers { host: x } }",
        Err("websocket: invalid header \"host\" not allowed"),
    );
    // The first failing check wins: TLS before origins, origins before no_auth_user.
    check_validate(
        "ws { port: 1, allowed_origins: \"bad\", no_auth_user: x }",
        Err("websocket requires TLS configuration"),
    );
    check_validate(
        "ws { port: 1, no_tls: true, allowed_origins: \"bad\", no_auth_user: x }",
        Err(
            "unable to parse allowed origin \"bad\": allowed origins must be absolute URLs with http or https scheme",
        ),
    );
    // Global checks come before the websocket ones.
    check_validate(
        "no_auth_user: x\nws { port: 1 }",
        Err("no_auth_user: \"x\" present, but users are not defined"),
    );
    check_validate(
        "lame_duck_duration: \"30s\"\nlame_duck_grace_period: \"30s\"",
        Err("lame duck grace period (30s) should be strictly lower than lame duck duration (30s)"),
    );
    check_validate(
        "max_payload: 2MB\nmax_pending: 1MB",
        Err("max_payload (2097152) cannot be higher than max_pending (1048576)"),
    );
    check_validate(
        "leafnodes { remotes: [ { url: \"nats://h\", account: Z } ] }",
        Err("cannot find local account \"Z\" specified in leafnode remote"),
    );
    check_validate(
        "leafnodes { authorization { account: Z } }",
        Err("cannot find local account \"Z\" specified in leafnode authorization"),
    );
    check_validate(
        "leafnodes { remotes: [ { url: \"nats://h\", account: \"$SYS\" } ] }",
        Ok(()),
    );
    check_validate(
        "leafnodes { remotes: [ { urls: [\"nats://u:pw@h\", \"ws://h2:80\"] } ] }",
        Err(
            "remote leaf node configuration cannot have a mix of websocket and non-websocket urls: [\"nats://u:xxxxx@h:7422\" \"ws://h2:80\"]",
        ),
    );
}

#[test]
fn diagnostics_sort_warnings_first_then_by_position() {
    check_report(
        "b: 1\nwrite_deadline: 1\na: 2\nping_interval: 2",
        &[
            "t.conf:2:1: invalid use of field \"write_deadline\": write_deadline should be converted to a duration",
            "t.conf:4:1: invalid use of field \"ping_interval\": ping_interval should be converted to a duration",
            "t.conf:1:0: unknown field \"b\"",
            "t.conf:3:1: unknown field \"a\"",
        ],
    );
    let loaded = Options::from_map(&parse("ping_interval: 3")).unwrap();
    assert_eq!(loaded.warnings[0].severity, Severity::Warning);
    assert_eq!(loaded.options.ping_interval, 3 * S);
}

#[test]
fn deliberate_differences_are_errors() {
    check_report("port: 65536", &["t.conf:1:0: invalid port 65536"]);
    check_report("listen: \"h:-2\"", &["t.conf:1:0: invalid port -2"]);
    check_report(
        "ping_interval: \"-1s\"",
        &["t.conf:1:0: error parsing ping_interval: negative duration -1s"],
    );
    check_report(
        "write_deadline: -1",
        &[
            "t.conf:1:0: invalid use of field \"write_deadline\": write_deadline should be converted to a duration",
            "t.conf:1:0: error parsing write_deadline: negative duration -1s",
        ],
    );
    check_report(
        "max_payload: -3000000000",
        &["t.conf:1:0: max_payload value is too small"],
    );
    check_report(
        "system_account: 1",
        &["t.conf:1:0: system account name must be a string"],
    );
    check_report(
        "system: 1",
        &["t.conf:1:0: system account name must be a string"],
    );
    check_report(
        "server_name: \"a\\xffb\"",
        &["t.conf:1:0: string value is not valid UTF-8"],
    );
    for key in [
        "cluster",
        "gateway",
        "jetstream",
        "ocsp",
        "mappings",
        "prof_port",
        "default_js_domain",
        "resolver_tls",
        "resolver_pinned_accounts",
    ] {
        // Known to the reference but not modelled: recorded, not an error.
        check_unmodelled(
            &format!("{key}: 1"),
            &[
                format!("t.conf:1:0: {key} is known to nats-server but not modelled by natsconf")
                    .as_str(),
            ],
        );
    }
}

fn node(value: Value, pos: Option<(u32, u32)>) -> Node {
    Node {
        value,
        pos: pos.map(|(line, p)| Pos {
            file: Arc::from("env.conf"),
            line,
            pos: p,
        }),
        used_as_variable: false,
    }
}

fn map(entries: Vec<(&str, Node)>) -> Map {
    let mut map = Map::new();
    for (key, value) in entries {
        map.insert(key.as_bytes().to_vec(), value);
    }
    map
}

/// Values that came from an environment variable carry no position of their own; the
/// diagnostic uses the enclosing one, as the reference's "last token" does.
#[test]
fn values_without_positions_report_the_enclosing_position() {
    let ws = map(vec![
        ("port", node(Value::Int(1), None)),
        ("same_origin", node(Value::Str(b"yes".to_vec()), None)),
    ]);
    let top = map(vec![("websocket", node(Value::Map(ws), Some((3, 1))))]);
    let report: Vec<String> = Options::from_map(&top)
        .unwrap_err()
        .iter()
        .map(Diagnostic::to_string)
        .collect();
    assert_eq!(
        report,
        vec!["env.conf:3:1: interface conversion: interface {} is string, not bool".to_owned()]
    );
    let top = map(vec![("port", node(Value::Str(b"x".to_vec()), None))]);
    let report = Options::from_map(&top).unwrap_err();
    assert_eq!(report[0].pos, None);
    assert_eq!(
        report[0].to_string(),
        "interface conversion: interface {} is string, not int64"
    );
    let mut used = node(Value::Int(5), Some((1, 0)));
    used.used_as_variable = true;
    let top = map(vec![("some_var", used)]);
    assert!(Options::from_map(&top).is_ok());
}

/// Reload from the first config to the second, and the outcome.
fn check_reload(old: &str, new: &str, want: Result<(), &str>) {
    let res = load(old)
        .check_reload(&load(new))
        .map_err(|e| e.to_string());
    assert_eq!(res, want.map_err(str::to_owned), "{old:?} -> {new:?}");
}

#[test]
fn reload_refuses_what_the_reference_refuses() {
    let base = "port: 14222\nserver_name: a\nlame_duck_duration: \"1m\"";
    check_reload(base, base, Ok(()));
    check_reload(
        base,
        "port: 14222\nserver_name: a\nlame_duck_duration: \"2m\"",
        Err("config reload not supported for LameDuckDuration: old=1m0s, new=2m0s"),
    );
    check_reload(
        base,
        "port: 14223\nserver_name: a\nlame_duck_duration: \"1m\"",
        Err("config reload not supported for Port: old=14222, new=14223"),
    );
    check_reload("port: 1", "port: -1", Ok(()));
    check_reload(
        "server_name: a",
        "server_name: b",
        Err("config reload not supported for ServerName: old=a, new=b"),
    );
    check_reload(
        base,
        "port: 14222\nserver_name: a\nlame_duck_duration: \"1m\"\nmax_subs: 5",
        Err("config reload not supported for MaxSubs: old=0, new=5"),
    );
    check_reload(
        "",
        "websocket { port: 18080, no_tls: true }",
        Err("config reload not supported for Websocket: old={…}, new={…}"),
    );
    check_reload(
        "",
        "http: 8222",
        Err("config reload not supported for HTTPPort: old=0, new=8222"),
    );
    check_reload(
        "",
        "max_pending: 1MB",
        Err("config reload not supported for MaxPending: old=67108864, new=1048576"),
    );
    check_reload(
        "",
        "tls { verify_and_map: true }",
        Err("config reload not supported for TLSMap: old=false, new=true"),
    );
    // Reloadable: logging, limits, auth, TLS material, websocket TLS and origin order.
    check_reload(
        "debug: false\nmax_payload: 1MB\nping_interval: \"2m\"",
        "debug: true\nmax_payload: 2MB\nping_interval: \"1m\"\nauthorization { users: [ {user: a} ] }\ntls { cert_file: c, key_file: k }",
        Ok(()),
    );
    check_reload(
        "ws { port: 1, tls { cert_file: a, key_file: b }, allowed_origins: [\"http://x\", \"http://y\"] }",
        "ws { port: 1, tls { cert_file: c, key_file: d }, allowed_origins: [\"http://y\", \"http://x\"] }",
        Ok(()),
    );
    check_reload(
        "ws { port: 1, tls { cert_file: a, key_file: b } }",
        "ws { port: 1, tls { cert_file: a, key_file: b, verify_and_map: true } }",
        Err("config reload not supported for Websocket: old={…}, new={…}"),
    );
    check_reload(
        "leafnodes { remotes: [ {url: \"nats://a\"}, {url: \"nats://b\", account: \"$G\"} ] }",
        "leafnodes { remotes: [ {url: \"nats://b\"}, {url: \"nats://a\", tls: { insecure: true }} ] }",
        Ok(()),
    );
    check_reload(
        "leafnodes { remotes: [ {url: \"nats://a\"} ] }",
        "leafnodes { remotes: [ {url: \"nats://c\"} ] }",
        Err("config reload not supported for LeafNode: old={…}, new={…}"),
    );
    check_reload(
        "no_auth_user: a\nauthorization { users: [ {user: a} ] }",
        "authorization { users: [ {user: b} ] }",
        Ok(()),
    );
    check_reload(
        "no_auth_user: a\nauthorization { users: [ {user: a} ] }",
        "authorization { users: [ {user: a} ] }",
        Err("config reload not supported for NoAuthUser: old=a, new="),
    );
}
