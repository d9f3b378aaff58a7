//! House rules that a reviewer would otherwise have to catch by eye (docs/style.md).
//!
//! - The library crates under `crates/` are sans-IO: no sockets, mio, rustls, threads or clock
//!   reads, and nothing printed.
//! - Codecs depend on neither the broker, the config parser, mio nor rustls.
//! - natsconf uses nom in complete mode only.
//! - Every crate root has a crate doc and forbids `unsafe`.
//! - Every fuzz target has a seeds folder with at least one seed.
//! - No trailing whitespace in sources and docs.
//! - Sources and docs cite only what a reader of the repository can open: no design documents
//!   kept outside it (`spec/…`, a bare "spec §N", the `../shared` folder, the house style file
//!   that `docs/style.md` summarises).

use std::fs;
use std::path::{Path, PathBuf};

/// Text that must not appear in the sources of the sans-IO crates, with the reason.
const FORBIDDEN_IN_CRATES: &[(&str, &str)] = &[
    ("Instant::now", "time is passed in"),
    ("SystemTime::now", "time is passed in"),
    ("std::net", "no sockets"),
    ("std::thread", "no threads"),
    ("mio::", "no event loop"),
    ("rustls", "no TLS"),
    ("println!", "libraries print nothing"),
    ("eprintln!", "libraries print nothing"),
    ("unsafe ", "the crates forbid unsafe code"),
];

/// Crates that each library crate must not depend on.
const FORBIDDEN_DEPENDENCIES: &[(&str, &[&str])] = &[
    (
        "ws-codec",
        &["broker", "natsconf", "ws-handshake", "mio", "rustls"],
    ),
    (
        "ws-handshake",
        &["broker", "natsconf", "ws-codec", "mio", "rustls"],
    ),
    (
        "natsconf",
        &["broker", "ws-codec", "ws-handshake", "mio", "rustls"],
    ),
    (
        "broker",
        &["natsconf", "ws-codec", "ws-handshake", "mio", "rustls"],
    ),
    (
        "mqtt-codec",
        &[
            "broker",
            "natsconf",
            "ws-codec",
            "ws-handshake",
            "mio",
            "rustls",
        ],
    ),
    (
        "gotext",
        &[
            "broker",
            "natsconf",
            "ws-codec",
            "ws-handshake",
            "mio",
            "rustls",
        ],
    ),
];

/// Checks every rule and reports all violations at once.
pub(crate) fn run(root: &Path) -> Result<(), String> {
    let problems = check(root);
    if problems.is_empty() {
        eprintln!("tidy: ok");
        Ok(())
    } else {
        Err(format!(
            "tidy found {} problem(s):\n{}",
            problems.len(),
            problems.join("\n")
        ))
    }
}

fn check(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for (krate, banned) in FORBIDDEN_DEPENDENCIES {
        let dir = root.join("crates").join(krate);
        check_sources(&dir.join("src"), &mut problems);
        check_crate_root(&dir.join("src/lib.rs"), &mut problems);
        check_dependencies(&dir.join("Cargo.toml"), banned, &mut problems);
    }
    for file in files(&root.join("crates/natsconf/src"), &["rs"]) {
        if read(&file).contains("streaming::") {
            problems.push(format!(
                "{}: natsconf parses complete input only (no nom streaming::)",
                file.display()
            ));
        }
    }
    check_fuzz_seeds(root, &mut problems);
    check_citations(root, &mut problems);
    for dir in [
        "crates",
        "bins",
        "xtask",
        "benches",
        "fuzz/fuzz_targets",
        "tests",
    ] {
        for file in files(&root.join(dir), &["rs", "toml", "md", "py", "js", "mjs"]) {
            for (line_idx, line) in read(&file).lines().enumerate() {
                if line.ends_with(' ') || line.ends_with('\t') {
                    problems.push(format!(
                        "{}:{}: trailing whitespace",
                        file.display(),
                        line_idx + 1
                    ));
                }
            }
        }
    }
    problems
}

fn check_sources(src: &Path, problems: &mut Vec<String>) {
    for file in files(src, &["rs"]) {
        // Test modules and fuzz harnesses are the caller here: they may read the clock once to
        // get a base `Instant` for virtual time.
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if matches!(name, "tests.rs" | "fuzzing.rs") {
            continue;
        }
        for (line_idx, line) in read(&file).lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for (needle, reason) in FORBIDDEN_IN_CRATES {
                if code.contains(needle) {
                    problems.push(format!(
                        "{}:{}: `{}` in a sans-IO crate ({reason})",
                        file.display(),
                        line_idx + 1,
                        needle.trim()
                    ));
                }
            }
        }
    }
}

fn check_crate_root(lib: &Path, problems: &mut Vec<String>) {
    let text = read(lib);
    if !text.trim_start().starts_with("//!") {
        problems.push(format!(
            "{}: the crate root must start with a crate doc (//!)",
            lib.display()
        ));
    }
    if !text.contains("#![forbid(unsafe_code)]") {
        problems.push(format!(
            "{}: missing #![forbid(unsafe_code)]",
            lib.display()
        ));
    }
}

/// Looks at the `[dependencies]` table only: dev-dependencies may use anything.
fn check_dependencies(manifest: &Path, banned: &[&str], problems: &mut Vec<String>) {
    let text = read(manifest);
    let mut in_dependencies = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        if !in_dependencies {
            continue;
        }
        let name = line.split(['=', '.', ' ']).next().unwrap_or_default();
        if banned.contains(&name) {
            problems.push(format!(
                "{}: must not depend on `{name}`",
                manifest.display()
            ));
        }
    }
}

fn check_fuzz_seeds(root: &Path, problems: &mut Vec<String>) {
    for target in files(&root.join("fuzz/fuzz_targets"), &["rs"]) {
        let Some(name) = target.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let seeds = root.join("fuzz/seeds").join(name);
        let n_seeds = fs::read_dir(&seeds)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .count()
            })
            .unwrap_or(0);
        if n_seeds == 0 {
            problems.push(format!(
                "{}: fuzz target `{name}` has no seeds",
                seeds.display()
            ));
        }
    }
}

/// File kinds whose comments and text may cite documents.
const CITING_EXTENSIONS: &[&str] = &["rs", "toml", "md", "py", "js", "mjs", "go", "sh"];

/// Reports every citation of a document that is not in the repository.
fn check_citations(root: &Path, problems: &mut Vec<String>) {
    let mut paths = files(root, CITING_EXTENSIONS);
    paths.push(root.join(".ci/run"));
    for file in paths {
        // This file names the patterns it looks for.
        if file.ends_with("xtask/src/tidy.rs") {
            continue;
        }
        for (line_idx, line) in read(&file).lines().enumerate() {
            if let Some(what) = foreign_citation(line) {
                problems.push(format!(
                    "{}:{}: cites {what}, which is not in the repository; cite nats-server's \
                     source or docs, an RFC section, or a file in the repository instead",
                    file.display(),
                    line_idx + 1
                ));
            }
        }
    }
}

/// What `line` cites that a reader of the repository cannot open, if anything.
fn foreign_citation(line: &str) -> Option<&'static str> {
    if line.contains("STYLE.md") || line.contains("STYLE §") {
        return Some("the house style file");
    }
    if line.contains("spec §") {
        return Some("a spec section");
    }
    // `spec/` as a path of its own (`spec/websocket.md`, `shared/spec/…`), not the end of a
    // longer word (`spdx-spec/`).
    let spec_path = line.match_indices("spec/").any(|(idx, _)| {
        line.get(..idx)
            .and_then(|before| before.chars().next_back())
            .is_none_or(|c| !(c.is_alphanumeric() || c == '-' || c == '_'))
    });
    if spec_path {
        return Some("a spec file");
    }
    // The `../shared` folder itself, not a file that happens to start with that name.
    let shared = line.match_indices("../shared").any(|(idx, needle)| {
        line.get(idx + needle.len()..)
            .and_then(|after| after.chars().next())
            .is_none_or(|c| !(c.is_alphanumeric() || matches!(c, '.' | '-' | '_')))
    });
    if shared {
        return Some("the ../shared folder");
    }
    None
}

/// Every file under `dir` with one of `extensions`, skipping build output and dependencies.
fn files(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if !matches!(
                    name.as_ref(),
                    "target" | "node_modules" | ".venv" | "corpus" | "artifacts"
                ) && !name.starts_with('.')
                {
                    stack.push(path);
                }
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.contains(&e))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The house rules hold for the tree as it is (rust-analyzer runs tidy as a test too).
    #[test]
    fn tree_is_tidy() {
        let root = crate::root();
        let problems = check(&root);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn detects_clock_reads_and_sockets() {
        let dir = std::env::temp_dir().join(format!("tidy-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("lib.rs"),
            "fn f() { let _ = std::time::Instant::now(); }\n// Instant::now in a comment is fine\nuse std::net::TcpStream;\n",
        )
        .unwrap();
        let mut problems = Vec::new();
        check_sources(&dir, &mut problems);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("Instant::now"));
        assert!(problems[1].contains("std::net"));
    }

    #[test]
    fn detects_citations_of_documents_outside_the_repository() {
        let check = |line: &str, expect: Option<&str>| {
            assert_eq!(foreign_citation(line), expect, "{line}");
        };
        check(
            "//! Subject rules (spec/protocol.md §3.1).",
            Some("a spec file"),
        );
        check("see `shared/spec/websocket.md` §3", Some("a spec file"));
        check(
            "spec/natsconf-dump.md (`natsws --dump-config`)",
            Some("a spec file"),
        );
        check("/// The close status (spec §3.8).", Some("a spec section"));
        check(
            "//! The mio event loop (STYLE §7).",
            Some("the house style file"),
        );
        check(
            "(hyper's `is_complete_fast`, STYLE.md §6)",
            Some("the house style file"),
        );
        check(
            "# runs with ../shared beside it.",
            Some("the ../shared folder"),
        );
        check(
            "build it as ../shared/tools/x.md says",
            Some("the ../shared folder"),
        );
        // What may stay: RFC sections, nats-server sources, repository files, look-alikes.
        check("//! Close codes (RFC 6455 §5.5.1, §7.4).", None);
        check("(`server/websocket.go` `wsCollapsePtoNB`)", None);
        check("(docs/style.md §4)", None);
        check("https://spdx.github.io/spdx-spec/v3.0/", None);
        check(
            r#"check_join("conf.d", "../shared.conf", "shared.conf");"#,
            None,
        );
        check("the inspec/ folder", None);
    }

    #[test]
    fn detects_banned_dependencies_but_not_dev_dependencies() {
        let dir = std::env::temp_dir().join(format!("tidy-deps-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let manifest = dir.join("Cargo.toml");
        fs::write(
            &manifest,
            "[dependencies]\nbytes.workspace = true\nmio = \"1\"\n\n[dev-dependencies]\nrustls.workspace = true\n",
        )
        .unwrap();
        let mut problems = Vec::new();
        check_dependencies(&manifest, &["mio", "rustls"], &mut problems);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("`mio`"));
    }
}
