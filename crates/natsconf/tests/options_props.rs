//! Properties of option interpretation on arbitrary value trees: no panic, a deterministic
//! report sorted warnings-first by position, and validation/reload checks that never panic on
//! whatever loaded.

use std::sync::Arc;

use natsconf::options::{Options, Severity};
use natsconf::value::{Map, Node, Pos, Value};
use proptest::prelude::*;

/// Keys the options layer knows (at any level), so random trees reach deep into the blocks.
const KEYS: &[&str] = &[
    "port",
    "host",
    "listen",
    "http",
    "https",
    "websocket",
    "ws",
    "tls",
    "authorization",
    "users",
    "user",
    "password",
    "token",
    "timeout",
    "permissions",
    "publish",
    "subscribe",
    "allow",
    "deny",
    "allow_responses",
    "max",
    "expires",
    "nkey",
    "allowed_connection_types",
    "accounts",
    "imports",
    "exports",
    "stream",
    "service",
    "account",
    "subject",
    "prefix",
    "to",
    "leafnodes",
    "remotes",
    "url",
    "urls",
    "credentials",
    "no_tls",
    "allowed_origins",
    "handshake_timeout",
    "headers",
    "ping_interval",
    "write_deadline",
    "max_payload",
    "lame_duck_duration",
    "cipher_suites",
    "pinned_certs",
    "min_version",
    "latency",
    "sampling",
    "response_type",
    "no_auth_user",
    "jwt_cookie",
    "cluster",
    "PORT",
    "unknown",
];

fn pos_strategy() -> impl Strategy<Value = Option<Pos>> {
    prop::option::weighted(
        0.8,
        (1u32..50, 0u32..80).prop_map(|(line, pos)| Pos {
            file: Arc::from("p.conf"),
            line,
            pos,
        }),
    )
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::Int),
        (-1i64..70_000).prop_map(Value::Int),
        (-1.0e3f64..1.0e3).prop_map(Value::Float),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![
            Just(b"nats://u:p@h:1".to_vec()),
            Just(b"https://a.example".to_vec()),
            Just(b"1s".to_vec()),
            Just(b"a.b.>".to_vec()),
            Just(b"127.0.0.1:4222".to_vec()),
            Just(b"UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4".to_vec()),
            prop::collection::vec(any::<u8>(), 0..12),
        ]
        .prop_map(Value::Str),
        any::<i64>().prop_map(Value::Date),
    ]
}

fn node_strategy() -> impl Strategy<Value = Node> {
    let value = leaf().prop_recursive(4, 48, 6, |inner| {
        let node = (inner, pos_strategy(), any::<bool>())
            .prop_map(|(value, pos, used)| Node {
                value,
                pos,
                used_as_variable: used,
            })
            .boxed();
        prop_oneof![
            prop::collection::vec(node.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), node), 0..6).prop_map(|entries| {
                let mut map = Map::new();
                for (key, node) in entries {
                    map.insert(key.as_bytes().to_vec(), node);
                }
                Value::Map(map)
            }),
        ]
    });
    (value, pos_strategy(), prop::bool::weighted(0.05)).prop_map(|(value, pos, used)| Node {
        value,
        pos,
        used_as_variable: used,
    })
}

fn top_strategy() -> impl Strategy<Value = Map> {
    prop::collection::vec((prop::sample::select(KEYS), node_strategy()), 0..8).prop_map(|entries| {
        let mut map = Map::new();
        for (key, node) in entries {
            map.insert(key.as_bytes().to_vec(), node);
        }
        map
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn interpretation_never_panics_and_is_deterministic(map in top_strategy()) {
        let first = Options::from_map(&map);
        let second = Options::from_map(&map);
        prop_assert_eq!(&first, &second);
        match first {
            Ok(loaded) => {
                prop_assert!(loaded.warnings.iter().all(|d| d.severity == Severity::Warning));
                let _ = loaded.options.validate();
                let _ = loaded.options.check_reload(&Options::default());
                let _ = Options::default().check_reload(&loaded.options);
                if let Some(ws) = &loaded.options.websocket {
                    let _ = ws.parsed_origins();
                }
            }
            Err(report) => {
                prop_assert!(report.iter().any(|d| d.severity == Severity::Error));
                prop_assert!(report.iter().all(|d| !d.message.is_empty()));
                let first_error = report
                    .iter()
                    .position(|d| d.severity == Severity::Error)
                    .unwrap_or(report.len());
                prop_assert!(report[first_error..].iter().all(|d| d.severity == Severity::Error));
                for group in [&report[..first_error], &report[first_error..]] {
                    let keys: Vec<_> = group
                        .iter()
                        .map(|d| d.pos.as_ref().map(|p| (p.file.clone(), p.line, p.pos)))
                        .collect();
                    let mut sorted = keys.clone();
                    sorted.sort();
                    prop_assert_eq!(keys, sorted);
                }
            }
        }
    }
}
