//! Bounded work and memory: the places where nats-server 2.9.10 would crash or grow without
//! bound (include cycles, self-referencing environment variables, unlimited nesting) give an
//! error instead.

use std::collections::HashMap;

use natsconf::{ErrorKind, Limits, MemLoader, NoEnv, ParseSettings, parse_source_with};

fn check_err(source: &str, env: &[(&str, &str)], loader: &MemLoader, expect: &str) {
    let env: HashMap<Vec<u8>, Vec<u8>> = env
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    let err = parse_source_with(
        source.as_bytes(),
        b"t.conf",
        &env,
        loader,
        ParseSettings::default(),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), expect, "{source:?}");
}

#[test]
fn nesting_depth_is_limited() {
    let depth = Limits::default().max_depth;
    let ok = format!("a = {}{}\n", "[".repeat(depth), "]".repeat(depth));
    parse_source_with(
        ok.as_bytes(),
        b"t",
        &NoEnv,
        &MemLoader::new(),
        ParseSettings::default(),
    )
    .unwrap();
    let deep = format!("a = {}{}\n", "[".repeat(depth + 1), "]".repeat(depth + 1));
    check_err(
        &deep,
        &[],
        &MemLoader::new(),
        "Parse error on line 1: 'Maximum nesting depth of 512 exceeded.'",
    );
    let maps = format!("{}\n", "a {".repeat(100_000));
    check_err(
        &maps,
        &[],
        &MemLoader::new(),
        "Parse error on line 1: 'Maximum nesting depth of 512 exceeded.'",
    );
}

#[test]
fn variable_copies_cannot_exceed_the_depth_limit() {
    let half = 300;
    let source = format!(
        "a = {}{}\nb = {}$a{}\n",
        "[".repeat(half),
        "]".repeat(half),
        "[".repeat(half),
        " ]".repeat(half)
    );
    check_err(
        &source,
        &[],
        &MemLoader::new(),
        "variable reference for 'a' on line 2 could not be parsed: Parse error on line 2: \
         'Maximum nesting depth of 512 exceeded.'",
    );
}

#[test]
fn include_cycles_are_errors() {
    let loader = MemLoader::new()
        .with_file("a.conf", "include b.conf\n")
        .with_file("b.conf", "x = 1\ninclude a.conf\n");
    check_err(
        "include a.conf\n",
        &[],
        &loader,
        "error parsing include file 'a.conf', error parsing include file 'b.conf', \
         error parsing include file 'a.conf', include cycle detected",
    );
    let selfish = MemLoader::new().with_file("s.conf", "include ./s.conf\n");
    check_err(
        "include s.conf\n",
        &[],
        &selfish,
        "error parsing include file 's.conf', error parsing include file './s.conf', \
         include cycle detected",
    );
}

#[test]
fn environment_cycles_are_errors() {
    check_err(
        "x = $A\n",
        &[("A", "$A")],
        &MemLoader::new(),
        "variable reference for 'A' on line 1 could not be parsed: variable reference for 'A' \
         on line 1 could not be parsed: variable reference cycle for 'A'",
    );
    check_err(
        "\nx = $B\n",
        &[("B", "$C"), ("C", "[ $B ]")],
        &MemLoader::new(),
        "variable reference for 'B' on line 2 could not be parsed: variable reference for 'C' \
         on line 1 could not be parsed: variable reference for 'B' on line 1 could not be \
         parsed: variable reference cycle for 'B'",
    );
}

#[test]
fn exponential_variable_copies_hit_the_value_budget() {
    let mut source = String::from("a0 = [1, 2, 3, 4 ]\n");
    for i in 1..40 {
        source.push_str(&format!("a{i} = [$a{}, $a{} ]\n", i - 1, i - 1));
    }
    let err = parse_source_with(
        source.as_bytes(),
        b"t",
        &NoEnv,
        &MemLoader::new(),
        ParseSettings::default(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit);
    assert!(err.to_string().contains("limit of 4000000 values"), "{err}");
}

#[test]
fn exponential_environment_expansion_is_bounded() {
    let mut env: HashMap<Vec<u8>, Vec<u8>> = (0..40)
        .map(|i| {
            (
                format!("E{i}").into_bytes(),
                format!("[$E{}, $E{} ]", i + 1, i + 1).into_bytes(),
            )
        })
        .collect();
    env.insert(b"E40".to_vec(), b"1".to_vec());
    let err = parse_source_with(
        b"x = $E0\n",
        b"t",
        &env,
        &MemLoader::new(),
        ParseSettings::default(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
}

#[test]
fn include_fan_out_is_bounded() {
    let mut loader = MemLoader::new();
    for i in 0..40 {
        loader.insert(
            format!("f{i}.conf"),
            format!("include f{}.conf\ninclude f{}.conf\n", i + 1, i + 1),
        );
    }
    loader.insert("f40.conf", "");
    let err = parse_source_with(
        b"include f0.conf\n",
        b"t",
        &NoEnv,
        &loader,
        ParseSettings::default(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
    assert!(
        err.to_string()
            .ends_with("config parses more than 20000 files and environment values")
    );
}

#[test]
fn include_depth_is_limited() {
    let mut loader = MemLoader::new();
    for i in 0..100 {
        loader.insert(format!("d{i}.conf"), format!("include d{}.conf\n", i + 1));
    }
    let err = parse_source_with(
        b"include d0.conf\n",
        b"t",
        &NoEnv,
        &loader,
        ParseSettings::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("include nesting exceeds the limit of 64 files"),
        "{err}"
    );
}

#[test]
fn large_maps_parse_in_linear_time() {
    let mut source = String::new();
    for i in 0..100_000 {
        source.push_str(&format!("key{i} = {i}\n"));
    }
    let map = parse_source_with(
        source.as_bytes(),
        b"t",
        &NoEnv,
        &MemLoader::new(),
        ParseSettings::default(),
    )
    .unwrap();
    assert_eq!(map.len(), 100_000);
}
