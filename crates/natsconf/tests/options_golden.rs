//! Golden tests: every `tests/options_data/<case>.conf` is parsed and its options interpreted;
//! the rendered report must equal `<case>.out`. A rejected config renders the diagnostics as
//! nats-server prints them after `nats-server: `; an accepted one renders its warnings and then
//! `valid`. Regenerate with `UPDATE_GOLDEN=1 cargo test -p natsconf --test options_golden` and
//! review the diff like code.
//!
//! Most cases match `nats-server -t -c <case>.conf` of nats-server 2.9.10 line for line (up to
//! the order, which is random in the reference); the cases where natsws deliberately differs
//! are listed in `DIFFERENT_FROM_REFERENCE` with the reason.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use natsconf::options::{Options, render_report};
use natsconf::{FsLoader, ParseSettings, parse_file_with};

/// Cases whose expected output deliberately differs from nats-server 2.9.10.
const DIFFERENT_FROM_REFERENCE: &[(&str, &str)] = &[
    (
        "unsupported",
        "cluster, jetstream, system_account and mqtt stream_replicas are refused",
    ),
    ("accounts_errors", "account-level jetstream is refused"),
    (
        "ports",
        "ports outside -1..=65535 are config errors, not bind errors",
    ),
    (
        "ws_newer_options",
        "the nats-server 2.11+ websocket options are accepted",
    ),
    ("ws_headers_type", "websocket headers (2.11+) are parsed"),
    (
        "tls_refused_cipher",
        "cipher suites rustls does not implement are refused",
    ),
    (
        "tls_refused_curve",
        "curves rustls (ring) does not implement are refused",
    ),
    (
        "ok_everything",
        "certificate files are read by the binary, not by natsconf",
    ),
    (
        "auth_top_not_map",
        "Go's follow-on nil pointer dereference after the panic is not reproduced",
    ),
    (
        "auth_timeout_token",
        "Go's follow-on nil pointer dereference after the panic is not reproduced",
    ),
    (
        "ws_auth_types",
        "no nil pointer dereference, so the rest of the websocket block is still checked",
    ),
];

/// The environment both natsws and the reference see in these tests.
const ENV: &[(&str, &str)] = &[
    ("NATSCONF_T_PORT", "\"abc\""),
    (
        "NATSCONF_T_WS",
        "{ port: 8080, no_tls: true, same_origin: \"x\" }",
    ),
    ("NATSCONF_T_USERS", "[ {user: a, password: b}, {user: a} ]"),
];

fn data_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/options_data")
}

fn render(name: &str) -> String {
    let env: BTreeMap<Vec<u8>, Vec<u8>> = ENV
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    let loader = FsLoader::with_base(data_dir());
    let map = match parse_file_with(name.as_bytes(), &env, &loader, ParseSettings::default()) {
        Ok(map) => map,
        Err(err) => return format!("parse error: {err}\n"),
    };
    match Options::from_map(&map) {
        Ok(loaded) => format!("{}valid\n", render_report(&loaded.warnings)),
        Err(report) => render_report(&report),
    }
}

#[test]
fn golden_option_reports() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/options_data");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut cases: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 40, "golden cases missing");
    let mut failures = Vec::new();
    for conf in cases {
        let name = conf.file_name().unwrap().to_str().unwrap().to_owned();
        let got = render(&name);
        let out = conf.with_extension("out");
        if update {
            fs::write(&out, &got).unwrap();
            continue;
        }
        let want = fs::read_to_string(&out).unwrap_or_default();
        if got != want {
            failures.push(format!("{name}:\n--- want\n{want}--- got\n{got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn differences_are_listed_for_existing_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/options_data");
    for (case, reason) in DIFFERENT_FROM_REFERENCE {
        assert!(!reason.is_empty());
        assert!(dir.join(format!("{case}.conf")).exists(), "{case}");
    }
}

/// Whether the reference comparison must run: `cargo xtask test` sets
/// `NATSCONF_REQUIRE_REFERENCE=1` when it found nats-server, and CI sets `CI=true`.
fn reference_required() -> bool {
    let set = |var: &str| std::env::var(var).is_ok_and(|v| v == "1" || v == "true");
    set("NATSCONF_REQUIRE_REFERENCE") || set("CI")
}

/// With `NATSCONF_REFERENCE=/path/to/nats-server` (2.9.10), every case that is not a listed
/// difference must give the same lines as `nats-server -t -c <case>.conf` (order aside).
/// `cargo xtask test` sets it; without it the comparison is skipped, except where it is
/// required (see [`reference_required`]), where a missing reference fails.
#[test]
fn matches_the_reference_server_when_given() {
    let Some(bin) = std::env::var_os("NATSCONF_REFERENCE").filter(|v| !v.is_empty()) else {
        assert!(
            !reference_required(),
            "NATSCONF_REFERENCE is not set, but CI or NATSCONF_REQUIRE_REFERENCE=1 requires \
             the comparison with nats-server 2.9.10"
        );
        eprintln!("skipped: set NATSCONF_REFERENCE=/path/to/nats-server to compare with it");
        return;
    };
    // The expected reports are nats-server 2.9.10's; another version differs in wording.
    let version = Command::new(&bin)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.to_string_lossy()));
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    assert!(
        version.contains("v2.9.10"),
        "the reference must be nats-server v2.9.10, found {version:?}"
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/options_data");
    let mut mismatches = Vec::new();
    let mut n_compared = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "conf") {
            continue;
        }
        let case = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if DIFFERENT_FROM_REFERENCE.iter().any(|(c, _)| *c == case) {
            continue;
        }
        let name = format!("{case}.conf");
        n_compared += 1;
        let mut ours: Vec<String> = render(&name)
            .lines()
            .filter(|l| *l != "valid")
            .map(str::to_owned)
            .collect();
        ours.sort();
        // Go visits map entries in random order, and a block stops at its first type error,
        // so the reference's report can vary between runs: ours must equal one of them.
        let mut seen = Vec::new();
        for _ in 0..8 {
            let output = Command::new(&bin)
                .args(["-t", "-c", &name])
                .envs(ENV.iter().copied())
                .current_dir(&dir)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&output.stderr);
            let mut reference: Vec<String> = text
                .lines()
                .map(|l| l.strip_prefix("nats-server: ").unwrap_or(l).to_owned())
                .filter(|l| !l.is_empty() && !l.starts_with("configuration file "))
                .collect();
            reference.sort();
            if reference == ours {
                seen.clear();
                break;
            }
            seen.push(reference);
        }
        if let Some(reference) = seen.first() {
            mismatches.push(format!("{case}: reference {reference:?}, natsws {ours:?}"));
        }
    }
    assert!(n_compared >= 40, "only {n_compared} cases compared");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
