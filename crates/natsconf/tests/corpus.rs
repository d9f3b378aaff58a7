//! Replays the recorded differential corpus: every `tests/corpus/NAME.conf` is parsed as
//! nats-server 2.9.10 would (pedantic mode, working directory = the corpus directory, bare file
//! name, environment = `NAME.env.json` or empty) and its dump must equal `NAME.expected`, which
//! is conforacle's output for the same file (`make_corpus.py` regenerates them). Cases named
//! `pos-*` are compared with positions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use natsconf::{FsLoader, ParseSettings, dump, parse_file_with};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn load_env(path: &Path) -> HashMap<Vec<u8>, Vec<u8>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return HashMap::new();
    };
    let parsed: HashMap<String, String> = serde_json::from_str(&text).expect("env json");
    parsed
        .into_iter()
        .map(|(k, v)| (k.into_bytes(), v.into_bytes()))
        .collect()
}

/// Our dump of one corpus case.
fn our_dump(dir: &Path, name: &str) -> String {
    let env = load_env(&dir.join(format!("{name}.env.json")));
    let loader = FsLoader::with_base(dir);
    let file = format!("{name}.conf");
    let res = parse_file_with(file.as_bytes(), &env, &loader, ParseSettings::default());
    dump::dump(&res, name.starts_with("pos-"))
}

#[test]
fn corpus_matches_recorded_reference_output() {
    let dir = corpus_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".conf").map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 300, "corpus has only {} cases", names.len());
    let mut failures = Vec::new();
    for name in &names {
        let expected = std::fs::read_to_string(dir.join(format!("{name}.expected")))
            .unwrap_or_else(|e| panic!("{name}.expected: {e}"));
        let got = our_dump(&dir, name);
        if got != expected {
            failures.push(format!("{name}\n  expected: {expected}  got:      {got}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases differ:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}
