//! Options nats-server knows that natsconf does not model: recorded as facts (path, key,
//! position), never errors by themselves; a program's policy (`Options::from_map_with`)
//! decides, and its diagnostics join the report where the options were found.

use std::sync::Arc;

use natsconf::options::{Diagnostic, Options, PathSegment, Severity, Unmodelled, render_report};
use natsconf::value::{Map, Node, Value};
use natsconf::{MemLoader, NoEnv, parse_source};

fn parse(text: &str) -> Map {
    parse_source(text.as_bytes(), b"t.conf", &NoEnv, &MemLoader::new()).expect("config parses")
}

/// A policy that refuses each option by key, as a server that must not ignore them would.
fn refuse(option: &Unmodelled) -> Option<Diagnostic> {
    Some(option.error(format!("{:?} is refused", option.key)))
}

const MIXED: &str = "port: -1\nping_interval: 60\nfoo: 1\ncluster { port: 1 }\n\
    accounts { A: { jetstream: enabled, users: [{user: u, password: p}] }, B: { mappings: {a: b}, foo: 2 } }\n\
    leafnodes { remotes: [ { url: \"nats://h:1\" }, { url: \"nats://h:2\", js_cluster_migrate: true } ] }\n\
    PROF_PORT: 1\n";

/// An unmodelled record's path, key and (line, pos).
type Record<'a> = (Vec<PathSegment>, &'a str, Option<(u32, u32)>);

#[test]
fn records_carry_path_key_and_position() {
    let loaded = Options::from_map(&parse(
        "cluster { port: 1 }\n\
         accounts { A: { jetstream: enabled } }\n\
         leafnodes { remotes: [ { url: \"nats://h:1\" }, { url: \"nats://h:2\", js_cluster_migrate: true } ] }\n\
         PROF_PORT: 1\n",
    ))
    .expect("unmodelled options are no error");
    let got: Vec<Record<'_>> = loaded
        .options
        .unmodelled()
        .iter()
        .map(|u| {
            (
                u.path.clone(),
                u.key.as_str(),
                u.pos.as_ref().map(|p| (p.line, p.pos)),
            )
        })
        .collect();
    let key = |k: &str| PathSegment::Key(k.to_owned());
    assert_eq!(
        got,
        vec![
            (vec![key("cluster")], "cluster", Some((1, 0))),
            (
                vec![key("accounts"), key("A"), key("jetstream")],
                "jetstream",
                Some((2, 17))
            ),
            (
                vec![
                    key("leafnodes"),
                    key("remotes"),
                    PathSegment::Index(1),
                    key("js_cluster_migrate")
                ],
                "js_cluster_migrate",
                Some((3, 68))
            ),
            // Top-level keys match case-insensitively and are recorded as written.
            (vec![key("PROF_PORT")], "PROF_PORT", Some((4, 1))),
        ]
    );
    let texts: Vec<String> = loaded
        .options
        .unmodelled()
        .iter()
        .map(Unmodelled::path_text)
        .collect();
    assert_eq!(
        texts,
        [
            "cluster",
            "accounts.A.jetstream",
            "leafnodes.remotes[1].js_cluster_migrate",
            "PROF_PORT"
        ]
    );
    assert!(Options::default().unmodelled().is_empty());
    assert!(
        Options::from_map(&parse("port: 4333"))
            .unwrap()
            .options
            .unmodelled()
            .is_empty()
    );
}

#[test]
fn without_a_policy_only_real_errors_fail() {
    let report = Options::from_map(&parse(MIXED)).expect_err("has unknown fields");
    assert_eq!(
        render_report(&report),
        "t.conf:2:1: invalid use of field \"ping_interval\": ping_interval should be converted to a duration\n\
         t.conf:3:1: unknown field \"foo\"\n\
         t.conf:5:95: unknown field \"foo\"\n"
    );
}

#[test]
fn the_policy_sees_every_record_in_file_order_even_when_the_config_fails() {
    let mut seen = Vec::new();
    let res = Options::from_map_with(&parse(MIXED), |u| {
        seen.push(u.path_text());
        None
    });
    assert!(res.is_err());
    assert_eq!(
        seen,
        [
            "cluster",
            "accounts.A.jetstream",
            "accounts.B.mappings",
            "leafnodes.remotes[1].js_cluster_migrate",
            "PROF_PORT"
        ]
    );
}

#[test]
fn refusals_join_the_report_sorted_with_the_other_errors() {
    let report = Options::from_map_with(&parse(MIXED), refuse).expect_err("refused");
    assert_eq!(
        render_report(&report),
        "t.conf:2:1: invalid use of field \"ping_interval\": ping_interval should be converted to a duration\n\
         t.conf:3:1: unknown field \"foo\"\n\
         t.conf:4:1: \"cluster\" is refused\n\
         t.conf:5:17: \"jetstream\" is refused\n\
         t.conf:5:77: \"mappings\" is refused\n\
         t.conf:5:95: unknown field \"foo\"\n\
         t.conf:6:68: \"js_cluster_migrate\" is refused\n\
         t.conf:7:1: \"PROF_PORT\" is refused\n"
    );
    // Refused alone, the config fails with just the refusal (and the warnings).
    let report = Options::from_map_with(&parse("ping_interval: 60\ngateway { name: x }\n"), refuse)
        .expect_err("refused");
    assert_eq!(report.len(), 2);
    assert_eq!(report[0].severity, Severity::Warning);
    assert_eq!(report[1].to_string(), "t.conf:2:1: \"gateway\" is refused");
}

#[test]
fn warnings_from_the_policy_let_the_config_load() {
    let loaded = Options::from_map_with(
        &parse("ping_interval: 60\njetstream: true\nport: 4333\n"),
        |u| Some(u.warning(format!("{} is ignored", u.path_text()))),
    )
    .expect("only warnings");
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "t.conf:1:0: invalid use of field \"ping_interval\": ping_interval should be converted to a duration",
            "t.conf:2:1: jetstream is ignored",
        ]
    );
    assert_eq!(loaded.options.listen.port, 4333);
    assert_eq!(loaded.options.unmodelled().len(), 1);
}

fn unpositioned(value: Value) -> Node {
    Node {
        value,
        pos: None,
        used_as_variable: false,
    }
}

/// Diagnostics without a position sort equal; a refusal then keeps the place where the option
/// was found among the other errors.
#[test]
fn refusals_keep_their_place_among_equal_positions() {
    let report = |entries: &[&str]| -> Vec<String> {
        let mut map = Map::new();
        for key in entries {
            map.insert(key.as_bytes().to_vec(), unpositioned(Value::Int(1)));
        }
        Options::from_map_with(&map, refuse)
            .expect_err("refused")
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(
        report(&["cluster", "foo", "gateway", "bar"]),
        [
            "\"cluster\" is refused",
            "unknown field \"foo\"",
            "\"gateway\" is refused",
            "unknown field \"bar\"",
        ]
    );
    assert_eq!(
        report(&["foo", "bar", "cluster"]),
        [
            "unknown field \"foo\"",
            "unknown field \"bar\"",
            "\"cluster\" is refused",
        ]
    );
    // An environment value inside a positioned block takes the block's position.
    let mut inner = Map::new();
    inner.insert(b"jetstream".to_vec(), unpositioned(Value::Bool(true)));
    let mut top = Map::new();
    top.insert(
        b"accounts".to_vec(),
        Node {
            value: Value::Map({
                let mut accounts = Map::new();
                accounts.insert(b"A".to_vec(), unpositioned(Value::Map(inner)));
                accounts
            }),
            pos: Some(natsconf::value::Pos {
                file: Arc::from("env.conf"),
                line: 3,
                pos: 1,
            }),
            used_as_variable: false,
        },
    );
    let loaded = Options::from_map(&top).expect("loads");
    assert_eq!(
        loaded.options.unmodelled()[0].to_string(),
        "env.conf:3:1: accounts.A.jetstream is known to nats-server but not modelled by natsconf"
    );
}
