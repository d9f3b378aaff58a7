//! Fuzz target bodies (`fuzz/fuzz_targets/natsconf_parse.rs`).

use std::collections::HashMap;

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
}
