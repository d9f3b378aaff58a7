//! Golden files for human-oriented error renders: each `tests/data/NAME.conf` is parsed
//! (working directory = `tests/data`, a fixed environment) and the rendered error — or `OK` —
//! must equal `NAME.out`. `UPDATE_GOLDEN=1 cargo test -p natsconf --test golden` rewrites them.

use std::collections::BTreeMap;
use std::path::Path;

use natsconf::{FsLoader, ParseSettings, parse_file_with};

fn render_case(dir: &Path, name: &str) -> String {
    let env: BTreeMap<Vec<u8>, Vec<u8>> = [
        ("BROKEN", "hello world"),
        ("PING", "[ $PONG ]"),
        ("PONG", "$PING"),
    ]
    .into_iter()
    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
    .collect();
    let file = format!("{name}.conf");
    match parse_file_with(
        file.as_bytes(),
        &env,
        &FsLoader::with_base(dir),
        ParseSettings::default(),
    ) {
        Ok(_) => "OK\n".to_owned(),
        Err(err) => format!("{err}\n---\n{}", err.render()),
    }
}

#[test]
fn error_renders_match_golden_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".conf").map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(!names.is_empty());
    let mut mismatches = Vec::new();
    for name in &names {
        let got = render_case(&dir, name);
        let out_path = dir.join(format!("{name}.out"));
        if update {
            std::fs::write(&out_path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&out_path).unwrap_or_default();
        if want != got {
            mismatches.push(format!("{name}:\n--- want\n{want}--- got\n{got}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "golden mismatches (UPDATE_GOLDEN=1 to accept):\n{}",
        mismatches.join("\n")
    );
}
