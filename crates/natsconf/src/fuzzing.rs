//! Fuzz target bodies (`fuzz/fuzz_targets/natsconf_parse.rs` and `natsconf_options.rs`).
#![allow(
    clippy::panic,
    reason = "fuzz bodies report a broken property by panicking"
)]

use std::collections::HashMap;

use crate::options::{Diagnostic, Loaded, Options, Severity, render_report};
use crate::value::Map;
use crate::{Limits, MemLoader, ParseSettings, dump, parse_source_with, print};

/// Parses arbitrary bytes as a config (with two small include files and a small environment
/// available), checks that limits hold and that printing the result and parsing it again
/// gives the same tree.
pub fn natsconf_parse(data: &[u8]) {
    let loader = MemLoader::new()
        .with_file("inc.conf", "a = 1\nb { c = [x, 2.5, true ] }\n")
        .with_file("self.conf", "include self.conf\n");
    let env: HashMap<Vec<u8>, Vec<u8>> = HashMap::from([
        (b"E".to_vec(), b"[1, {k: v}, 3 ]".to_vec()),
        (b"LOOP".to_vec(), b"$LOOP".to_vec()),
    ]);
    let limits = Limits {
        max_depth: 64,
        max_values: 200_000,
        max_string_bytes: 16 << 20,
        max_input_bytes: 16 << 20,
        max_sources: 1_000,
        ..Limits::default()
    };
    let settings = ParseSettings {
        pedantic: true,
        limits,
    };
    let res = parse_source_with(data, b"fuzz.conf", &env, &loader, settings);
    let text = dump::dump(&res, true);
    assert!(text.ends_with('\n'));
    let Ok(map) = res else { return };
    let Some(printed) = print::to_config(&map) else {
        return;
    };
    let again = parse_source_with(&printed, b"fuzz.conf", &env, &loader, settings);
    assert_eq!(
        dump::dump(&again, false),
        dump::dump(&Ok(map), false),
        "round trip of {:?}",
        String::from_utf8_lossy(&printed)
    );
}

/// Parses arbitrary bytes as a config and interprets it as the binary's start-up does: typed
/// [`Options`] with their diagnostics, then [`Options::validate`], then the reload checks.
///
/// Besides "no panic" it checks that interpreting the same tree twice gives the same result; that
/// a refused config reports at least one error, warnings first, and renders one line per
/// diagnostic; that an accepted one carries warnings only; that reloading an accepted
/// config unchanged is always allowed; and that an unmodelled-option policy only adds its own
/// diagnostics (see [`check_policies`]).
pub fn natsconf_options(data: &[u8]) {
    let Some((map, res)) = interpret(data) else {
        return;
    };
    assert_eq!(
        res,
        Options::from_map(&map),
        "interpretation is deterministic"
    );
    check_policies(&map, &res);
    match res {
        Ok(loaded) => {
            assert!(
                loaded
                    .warnings
                    .iter()
                    .all(|d| d.severity == Severity::Warning),
                "an accepted config carries warnings only: {:?}",
                loaded.warnings
            );
            let options = &loaded.options;
            if let Err(err) = options.validate() {
                assert!(!err.to_string().is_empty());
            }
            assert_eq!(
                options.check_reload(options),
                Ok(()),
                "reloading an unchanged config is allowed"
            );
            let defaults = Options::default();
            if let Err(err) = defaults.check_reload(options) {
                assert!(!err.to_string().is_empty());
            }
            if let Err(err) = options.check_reload(&defaults) {
                assert!(!err.to_string().is_empty());
            }
        }
        Err(report) => {
            assert!(
                report.iter().any(|d| d.severity == Severity::Error),
                "a refusal names an error: {report:?}"
            );
            assert!(
                report.is_sorted_by_key(|d| d.severity),
                "warnings come before errors: {report:?}"
            );
            let text = render_report(&report);
            assert!(text.ends_with('\n'));
            assert!(text.lines().count() >= report.len());
        }
    }
}

/// The policy sees each unmodelled option once, the same ones a loaded config lists; a policy
/// that returns nothing changes nothing; one that refuses each option adds exactly one error
/// per option to the report (sorted in), and one that warns makes no config fail.
fn check_policies(map: &Map, plain: &Result<Loaded, Vec<Diagnostic>>) {
    let mut seen = Vec::new();
    let quiet = Options::from_map_with(map, |u| {
        seen.push(u.clone());
        None
    });
    assert_eq!(&quiet, plain, "a silent policy changes nothing");
    if let Ok(loaded) = plain {
        assert_eq!(loaded.options.unmodelled(), seen.as_slice());
    }
    let refused = Options::from_map_with(map, |u| Some(u.error("refused")));
    let extra = |report: &[Diagnostic]| report.iter().filter(|d| d.message == "refused").count();
    let plain_report = match plain {
        Ok(loaded) => loaded.warnings.clone(),
        Err(report) => report.clone(),
    };
    match refused {
        Ok(loaded) => assert!(seen.is_empty(), "refusals fail the config: {loaded:?}"),
        Err(report) => {
            assert_eq!(extra(&report) - extra(&plain_report), seen.len());
            assert_eq!(report.len(), plain_report.len() + seen.len());
            assert!(
                report.is_sorted_by_key(|d| d.severity),
                "warnings come before errors: {report:?}"
            );
        }
    }
    let warned = Options::from_map_with(map, |u| Some(u.warning("ignored")));
    assert_eq!(
        warned.is_ok(),
        plain.is_ok(),
        "warnings decide nothing: {warned:?}"
    );
}

/// Parses `data` with the includes and variables of the option golden tests (so their cases
/// work as seeds) and interprets the tree; `None` when it does not parse.
fn interpret(data: &[u8]) -> Option<(Map, Result<Loaded, Vec<Diagnostic>>)> {
    let loader = MemLoader::new()
        .with_file(
            "inc/auth.inc",
            "users: [\n  {user: a, password: b, bogus: 1}\n]\ntimeout: 1\nusr: x\n",
        )
        .with_file(
            "inc/top.inc",
            "\n  max_payload: \"x\"\nwebsocket { port: 1, nope: 2 }\n",
        )
        .with_file("ws.inc", "port: 8080\nno_tls: true\n");
    let env: HashMap<Vec<u8>, Vec<u8>> = HashMap::from([
        (b"NATSCONF_T_PORT".to_vec(), b"\"abc\"".to_vec()),
        (
            b"NATSCONF_T_WS".to_vec(),
            b"{ port: 8080, no_tls: true, same_origin: \"x\" }".to_vec(),
        ),
        (
            b"NATSCONF_T_USERS".to_vec(),
            b"[ {user: a, password: b}, {user: a} ]".to_vec(),
        ),
        (b"PORT".to_vec(), b"4223".to_vec()),
    ]);
    let settings = ParseSettings {
        pedantic: true,
        limits: Limits {
            max_depth: 64,
            max_values: 200_000,
            max_string_bytes: 1 << 20,
            max_input_bytes: 1 << 20,
            max_sources: 100,
            ..Limits::default()
        },
    };
    let map = parse_source_with(data, b"fuzz.conf", &env, &loader, settings).ok()?;
    let res = Options::from_map(&map);
    Some((map, res))
}

#[cfg(test)]
#[path = "../../../fuzz/replay.rs"]
mod replay;

#[cfg(test)]
mod tests {
    use super::replay::replay;

    /// Replays every seed and every past crash through the fuzz body.
    #[test]
    fn replay_seeds_and_regressions() {
        let replayed = replay("natsconf_parse", super::natsconf_parse);
        assert!(replayed.seeds >= 10, "only {replayed:?}");
    }

    /// Replays the option seeds (the option golden cases among them) and past crashes.
    #[test]
    fn replay_options_seeds_and_regressions() {
        let replayed = replay("natsconf_options", super::natsconf_options);
        assert!(replayed.seeds >= 40, "only {replayed:?}");
    }

    /// The seeds reach the options layer, both sides of it: accepted and refused configs.
    #[test]
    fn option_seeds_are_accepted_and_refused() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/seeds/natsconf_options");
        let (mut n_ok, mut n_refused) = (0, 0);
        for entry in std::fs::read_dir(&root).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            match super::interpret(&data).map(|(_, res)| res) {
                Some(Ok(_)) => n_ok += 1,
                Some(Err(_)) => n_refused += 1,
                None => {}
            }
        }
        assert!(
            n_ok >= 5 && n_refused >= 20,
            "{n_ok} accepted, {n_refused} refused"
        );
    }
}
