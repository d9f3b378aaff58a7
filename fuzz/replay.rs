//! Replays a fuzz target's committed inputs through its body, so that `cargo test` on stable
//! runs every seed and every past crash. Each crate's `fuzzing` module includes this file
//! (`#[cfg(test)] #[path = "../../../fuzz/replay.rs"] mod replay;`), so the rule of what counts
//! as a replay lives in one place.

use std::fs;
use std::path::{Path, PathBuf};

/// How many committed inputs one replay ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Replayed {
    /// Files from `fuzz/seeds/<target>/`.
    pub(crate) seeds: usize,
    /// Files from `fuzz/regressions/<target>/`.
    pub(crate) regressions: usize,
}

/// Runs every file in `fuzz/seeds/<target>/` and then `fuzz/regressions/<target>/` through
/// `body`, in name order. Hidden files such as `.keep` (which only keeps an empty folder in git)
/// are not inputs and are skipped.
///
/// Panics when the seeds folder is missing or holds no real input: an emptied corpus must fail
/// the replay, not pass it without running anything. The regressions folder may be empty.
pub(crate) fn replay(target: &str, body: fn(&[u8])) -> Replayed {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let run = |kind: &str| {
        let inputs = inputs(&fuzz.join(kind).join(target));
        for path in &inputs {
            let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            body(&data);
        }
        inputs.len()
    };
    let replayed = Replayed {
        seeds: run("seeds"),
        regressions: run("regressions"),
    };
    assert!(
        replayed.seeds > 0,
        "fuzz/seeds/{target}/ holds no input, so the replay ran nothing"
    );
    replayed
}

/// The input files in `dir`, sorted; panics when `dir` cannot be read.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .filter(|path| {
            path.is_file()
                && !path
                    .file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    paths
}
