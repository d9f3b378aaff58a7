//! Round trip: printing a value tree as config text and parsing it again gives the same tree.

use natsconf::value::{Map, Node, Value};
use natsconf::{MemLoader, NoEnv, dump, parse_source, print};
use proptest::prelude::*;

fn node(value: Value) -> Node {
    Node {
        value,
        pos: None,
        used_as_variable: false,
    }
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[a-z_.$-]{1,8}".prop_map(String::into_bytes),
        proptest::collection::vec(1u8..=255, 0..6),
    ]
    .prop_filter("a key cannot hold both quote characters", |k| {
        !(k.contains(&b'"') && k.contains(&b'\''))
    })
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::Int),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::Float),
        any::<bool>().prop_map(Value::Bool),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(Value::Str),
        (-62_167_219_200i64..253_402_300_800).prop_map(Value::Date),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone().prop_map(node), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..6).prop_map(|entries| {
                let mut map = Map::new();
                for (k, v) in entries {
                    map.insert(k, node(v));
                }
                Value::Map(map)
            }),
        ]
    })
}

fn tree() -> impl Strategy<Value = Map> {
    proptest::collection::vec((key(), value()), 0..8).prop_map(|entries| {
        let mut map = Map::new();
        for (k, v) in entries {
            map.insert(k, node(v));
        }
        map
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn print_then_parse_gives_the_same_tree(map in tree()) {
        let text = print::to_config(&map).expect("printable");
        let parsed = parse_source(&text, b"rt.conf", &NoEnv, &MemLoader::new());
        prop_assert_eq!(
            dump::dump(&parsed, false),
            dump::dump(&Ok(map), false),
            "text: {:?}",
            String::from_utf8_lossy(&text)
        );
    }
}

#[test]
fn deepest_allowed_tree_round_trips_and_dumps() {
    let depth = natsconf::Limits::default().max_depth;
    let mut value = Value::Array(Vec::new());
    for _ in 1..depth {
        value = Value::Array(vec![node(value)]);
    }
    let mut map = Map::new();
    map.insert(b"deep".to_vec(), node(value));
    let text = print::to_config(&map).unwrap();
    let parsed = parse_source(&text, b"rt.conf", &NoEnv, &MemLoader::new());
    assert!(dump::dump(&parsed, true).contains(r#""file":"rt.conf","line":1,"pos":1"#));
    assert_eq!(dump::dump(&parsed, false), dump::dump(&Ok(map), false));
}
