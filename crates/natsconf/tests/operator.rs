//! Operator mode options: shapes, refusals and the start-up checks that need no JWT decoding.

use natsconf::options::{Options, Preload, Resolver};
use natsconf::value::Pos;
use natsconf::{MemLoader, NoEnv, parse_source};

fn report(text: &str) -> Result<Options, Vec<String>> {
    let map =
        parse_source(text.as_bytes(), b"t.conf", &NoEnv, &MemLoader::new()).expect("config parses");
    Options::from_map(&map)
        .map(|l| l.options)
        .map_err(|r| r.iter().map(ToString::to_string).collect())
}

fn load(text: &str) -> Options {
    report(text).unwrap_or_else(|e| panic!("{text:?} rejected: {e:?}"))
}

fn validate(text: &str) -> Result<(), String> {
    load(text).validate().map_err(|e| e.to_string())
}

#[test]
fn operator_values_and_positions() {
    let o = load("operator: /etc/op.jwt\nresolver: MEMORY\nresolver_preload { AAA: eyJ0.b.c }");
    assert_eq!(o.operator.operators, ["/etc/op.jwt"]);
    assert_eq!(o.operator.operators_pos.as_ref().map(|p| p.line), Some(1));
    assert_eq!(o.operator.resolver, Some(Resolver::Memory));
    assert_eq!(
        o.operator.preload,
        [Preload {
            account: "AAA".into(),
            jwt: "eyJ0.b.c".into(),
            pos: Some(Pos {
                file: "t.conf".into(),
                line: 3,
                pos: 20
            }),
        }]
    );
    assert!(o.operator.enabled());
    let o = load("operators: [a, b]\nresolver: mem");
    assert_eq!(o.operator.operators, ["a", "b"]);
    let o = load("trusted_keys: [OA, OB]");
    assert_eq!(o.operator.trusted_keys, ["OA", "OB"]);
    assert!(o.operator.enabled());
    let o = load("trusted: OA\nresolver: { type: full, dir: '/var/jwt', limit: 10 }");
    assert_eq!(
        o.operator.resolver,
        Some(Resolver::Full {
            dir: "/var/jwt".into(),
            limit: 10,
            allow_delete: false,
        })
    );
    let o = load("trusted: OA\nresolver: { type: full, dir: '/var/jwt', allow_delete: true }");
    assert_eq!(
        o.operator.resolver,
        Some(Resolver::Full {
            dir: "/var/jwt".into(),
            limit: 0,
            allow_delete: true,
        })
    );
    assert!(!load("port: 1").operator.enabled());
}

#[test]
fn refused_resolvers_and_bad_shapes() {
    let cases: &[(&str, &str)] = &[
        (
            "resolver: URL(http://localhost:9090/jwt/v1/accounts/)",
            "t.conf:1:0: the URL account resolver (resolver: URL(...)) is not supported by natsws; use MEMORY or { type: full, dir: ... }",
        ),
        (
            "resolver: { type: cache, dir: /tmp }",
            "t.conf:1:0: the CACHE account resolver (resolver: { type: cache }) is not supported by natsws; use MEMORY or { type: full, dir: ... }",
        ),
        (
            "resolver: { type: full }",
            "t.conf:1:0: dir has no value and needs to point to a directory",
        ),
        (
            "resolver: { type: full, dir: /tmp, interval: \"2m\" }",
            "t.conf:1:35: resolver \"interval\" is not supported by natsws",
        ),
        (
            "resolver: nope",
            "t.conf:1:0: error parsing account resolver, should be MEM or  URL(\"url\") or a map containing dir and type state=[FULL|CACHE])",
        ),
        (
            "resolver_preload: 1",
            "t.conf:1:0: preload should be a map of account_public_key:account_jwt",
        ),
        (
            "resolver_preload { A: 1 }",
            "t.conf:1:19: preload map value should be a string JWT",
        ),
        (
            "operator: 1",
            "t.conf:1:0: error parsing operators: unsupported type int64",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(
            report(text).err(),
            Some(vec![(*want).to_owned()]),
            "{text:?}"
        );
    }
    // What natsconf does not model is a fact it records, not an error: the program decides.
    let opts = load("resolver: MEMORY\nresolver_tls: {}");
    let skipped: Vec<String> = opts.unmodelled().iter().map(|u| u.path_text()).collect();
    assert_eq!(skipped, ["resolver_tls"]);
}

/// The texts of nats-server 2.9.10's `validateTrustedOperators` and `validateNoAuthUser`.
#[test]
fn start_up_checks() {
    assert_eq!(
        validate("operator: a"),
        Err("operators require an account resolver to be configured".into())
    );
    assert_eq!(
        validate("operator: a\nresolver: MEMORY\naccounts { A: {} }"),
        Err("operators do not allow Accounts to be configured directly".into())
    );
    assert_eq!(
        validate(
            "operator: a\nresolver: MEMORY\nauthorization { users: [{user: a, password: b}] }"
        ),
        Err("operators do not allow users to be configured directly".into())
    );
    assert_eq!(
        validate("operator: a\ntrusted: OA\nresolver: MEMORY"),
        Err("conflicting options for 'TrustedKeys' and 'TrustedOperators'".into())
    );
    assert_eq!(
        validate("operator: a\nresolver: MEMORY\nno_auth_user: x"),
        Err("no_auth_user not compatible with Trusted Operator".into())
    );
    assert_eq!(
        validate(
            "operator: a\nresolver: MEMORY\nwebsocket { port: 1, no_tls: true, jwt_cookie: c }"
        ),
        Ok(())
    );
}

#[test]
fn reload_keeps_the_trust() {
    let check = |a: &str, b: &str| load(a).check_reload(&load(b)).map_err(|e| e.to_string());
    let base = "operator: a\nresolver: MEMORY";
    assert_eq!(
        check(
            base,
            "operator: a\nresolver: MEMORY\nresolver_preload { A: x }"
        ),
        Ok(())
    );
    assert_eq!(
        check(base, "operator: b\nresolver: MEMORY"),
        Err("config reload not supported for TrustedOperators: old=[a], new=[b]".into())
    );
    assert_eq!(
        check(base, "operator: a"),
        Err("config reload does not support moving to or from an account resolver".into())
    );
    assert_eq!(
        check("trusted: OA", "trusted: OB"),
        Err("config reload not supported for TrustedKeys: old=[OA], new=[OB]".into())
    );
}
