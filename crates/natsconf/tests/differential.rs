//! Generator-based differential test against the reference parser.
//!
//! A seeded, grammar-aware generator writes configs (realistic pieces, every quirk, and random
//! byte mutations) together with include files and an environment. With
//! `NATSCONF_ORACLE=/path/to/conforacle` each one is also parsed by nats-server 2.9.10's `conf`
//! package (`conforacle -positions -env ENV.json FILE`, working directory = the generated
//! directory) and the two dumps must be byte-identical. Without the oracle the same inputs are
//! still parsed by natsconf and checked for the print/parse round trip.
//!
//! `NATSCONF_DIFF_CASES` sets the number of inputs (default 3000 with the oracle, 400 without),
//! `NATSCONF_DIFF_SEED` the seed.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use natsconf::{FsLoader, ParseSettings, dump, parse_file_with, print};

/// A small deterministic PRNG (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const KEYS: &[&str] = &[
    "a",
    "b",
    "port",
    "x.y",
    "k$",
    "名前",
    "9lives",
    "path/to",
    "@at",
    "include",
    "INCLUDE",
    "}",
    "{k",
    "a[0]",
    "c}",
    "\"a b\"",
    "'q k'",
    "\"\"",
    "''",
    "\"include\"",
    "debug",
    "E1",
    "users",
    "m",
    "\"x\ny\"",
    "E2",
    "\u{feff}bom",
    "a\u{a0}",
    "tru\u{e9}",
    ";",
    ",",
];

const SEPS: &[&str] = &[
    " = ",
    "=",
    ":",
    " ",
    ": ",
    "\t=\t",
    "\n",
    " =\n",
    "\u{b}=\u{b}",
    " : ",
    "  ",
];

const ENDS: &[&str] = &[
    "\n",
    "\n",
    "\n",
    ";",
    ",",
    " # comment\n",
    " // c\n",
    "\r\n",
    " / ",
    "",
    " }",
    "\0",
    ";\n",
    ",\n",
    "\r",
    " /\n",
    "\t\n",
];

const SCALARS: &[&str] = &[
    "0",
    "007",
    "-5",
    "-0",
    "42",
    "1k",
    "1K",
    "3MiB",
    "64MB",
    "8EiB",
    "16EB",
    "10e",
    "1kbb",
    "2kii",
    "99999999999999999999",
    "9223372036854775807k",
    "-9223372036854775808",
    "1e5",
    "1k5",
    "500ms",
    "1Ghz",
    "2s",
    "1.5",
    "-0.0",
    "00.5",
    "5.",
    "1.5k",
    "1.2.3",
    "127.0.0.1:4222",
    "0.0.0.0:-1",
    "10.0.0.0/8",
    "-1.2.3",
    "abc",
    "a=b",
    "x'y",
    "abc'",
    "tru\\x65",
    "C:\\nats",
    "x\\x41y",
    "\\x4",
    "$a",
    "$b",
    "$E1",
    "$E2",
    "$E3",
    "$E4",
    "$E5",
    "$m",
    "$nope",
    "$2a$11$abc",
    "$2b$x",
    "$",
    "true",
    "FALSE",
    "yes",
    "No",
    "on",
    "off",
    "\"hello\"",
    "\"tab\\there\"",
    "\"q\\\"q\"",
    "\"caf\\xe9\"",
    "\"a\\x00b\"",
    "\"\\u0041\"",
    "\"\\xg1\"",
    "\"multi\nline\"",
    "\"\"",
    "''",
    "'raw \\n'",
    "'multi\nline'",
    "(\nblock\n)",
    "(\nx\n) y\n)",
    "()",
    "2024-02-29T12:00:00Z",
    "2023-02-29T00:00:00Z",
    "2024-01-01",
    "1234-abc",
    "10-20",
    "nats://h:4222",
    "localhost:4222",
    ":4222",
    "#",
    "//x",
    ".5",
    "-.5",
    "-x",
    "1#x",
    "12'",
    "1\\x41",
    "4222:tcp",
    "2001:db8::1",
    "\u{663}\u{662}",
    "h\u{e9}llo",
    "\u{ff14}",
    "x\u{3000}y",
    "1x",
    "0x1F",
    "\"",
    "'",
    "(",
    "-",
    "[",
    "{",
];

/// Scalars that parse in every value position (used by tame inputs).
const TAME_SCALARS: &[&str] = &[
    "0",
    "-5",
    "42 ",
    "1k",
    "3MiB",
    "8EiB",
    "1.5",
    "-0.0",
    "1.2.3",
    "127.0.0.1:4222",
    "abc",
    "a=b",
    "abc'",
    "tru\\x65",
    "x\\x41y",
    "$a",
    "$E1",
    "$E2",
    "$E3",
    "$2a$11$abc",
    "true",
    "off",
    "\"hello\"",
    "\"tab\\there\"",
    "\"caf\\xe9\"",
    "'raw'",
    "'multi\nline'",
    "\"multi\nline\"",
    "(\nblock\n)\n",
    "2024-02-29T12:00:00Z",
    "nats://h:4222",
    "h\u{e9}llo",
    "[1, 2 ]",
    "[]",
    "{}",
    "{ k = v }",
    "[ x / y ]",
];

const ARRAY_SEPS: &[&str] = &[
    ", ", ",", "\n", " / ", " ,\n", " # c\n", " // c\n", "\r\n", " ", ";",
];
const MAP_SEPS: &[&str] = &["\n", ", ", ";", " ", " / ", " # c\n", ",\n", "\r\n", ""];

const INCLUDES: &[&str] = &[
    "include inc/a.conf",
    "include 'inc/a.conf'",
    "include \"inc/b.conf\"",
    "INCLUDE inc/a.conf",
    "include inc/bad.conf",
    "include missing.conf",
    "include inc",
    "include /inc/a.conf",
    "include inc/../inc/a.conf",
    "include \"inc/a.conf",
    "include [x]",
    "include\ninc/a.conf",
    "include inc/a.conf'",
    "include ",
];

const JUNK: &[u8] = b"[]{}()\"'\\/#=:;, \t\n\r$-.0123456789kKeEbBiIxXtT\0\xff";

fn gen_value(rng: &mut Rng, depth: usize, tame: bool, out: &mut String) {
    let roll = rng.below(100);
    if depth < 4 && roll < 12 {
        out.push('[');
        out.push_str(rng.pick(&["", " ", "\n", " # c\n"]));
        let n = rng.below(5);
        for i in 0..n {
            if i > 0 {
                out.push_str(rng.pick(ARRAY_SEPS));
            }
            gen_value(rng, depth + 1, tame, out);
        }
        if tame {
            out.push_str(" ]");
        } else {
            out.push_str(rng.pick(&[" ]", "]", "\n]", ",]", " , ]", ""]));
        }
    } else if depth < 4 && roll < 24 {
        out.push('{');
        out.push_str(rng.pick(&["", " ", "\n"]));
        let n = rng.below(5);
        for i in 0..n {
            if i > 0 {
                out.push_str(if tame { "\n" } else { rng.pick(MAP_SEPS) });
            }
            if rng.chance(8) {
                out.push_str(if tame {
                    "include inc/a.conf"
                } else {
                    rng.pick(INCLUDES)
                });
                continue;
            }
            out.push_str(rng.pick(KEYS));
            out.push_str(if tame { " = " } else { rng.pick(SEPS) });
            gen_value(rng, depth + 1, tame, out);
        }
        out.push_str(if tame {
            "\n}"
        } else {
            rng.pick(&[" }", "}", "\n}", ", }", ""])
        });
    } else if tame {
        out.push_str(rng.pick(TAME_SCALARS));
    } else {
        out.push_str(rng.pick(SCALARS));
    }
}

/// Small tokens for noise inputs: every character class the lexer distinguishes.
const NOISE: &[&str] = &[
    "a", "k", "1", "0", "9", "-", ".", ":", "=", " ", "\t", "\n", "\r", "\r\n", "[", "]", "{", "}",
    "(", ")", "\"", "'", "\\", "\\x", "\\t", "#", "/", "//", ";", ",", "$", "$a", "\0", "\u{b}",
    "\u{c}", "\u{a0}", "\u{85}", "\u{2003}", "\u{3000}", "\u{feff}", "\u{663}", "\u{130}",
    "\u{212a}", "\u{fffd}", "é", "include ", "true", "e", "b", "i", "T", "Z", "2024-", "1k", "x",
];

/// One generated config (bytes, since mutations may break UTF-8).
fn gen_config(rng: &mut Rng) -> Vec<u8> {
    let mut text = String::new();
    if rng.chance(15) {
        for _ in 0..rng.below(40) {
            text.push_str(rng.pick(NOISE));
        }
        let mut bytes = text.into_bytes();
        if rng.chance(20) {
            let at = rng.below(bytes.len() + 1);
            bytes.insert(at, 0xff);
        }
        return bytes;
    }
    if rng.chance(10) {
        text.push_str(rng.pick(&["{", "{\n", "\u{feff}", "# head\n", "\n\n"]));
    }
    let tame = rng.chance(50);
    let entries = rng.below(if tame { 14 } else { 8 });
    for _ in 0..entries {
        let roll = rng.below(100);
        if tame {
            text.push_str(rng.pick(&["a", "b", "m", "x.y", "\"q k\"", "E1", "include\"", "名前"]));
            text.push_str(rng.pick(&[" = ", ": ", " "]));
            gen_value(rng, 0, true, &mut text);
            text.push_str(rng.pick(&["\n", "\n", ";", " # c\n", "\r\n", ",\n"]));
            continue;
        }
        if roll < 8 {
            text.push_str(rng.pick(INCLUDES));
        } else if roll < 12 {
            text.push_str(rng.pick(&["# comment", "// comment", "", "}", "{", "/"]));
        } else {
            text.push_str(rng.pick(KEYS));
            text.push_str(rng.pick(SEPS));
            gen_value(rng, 0, false, &mut text);
        }
        text.push_str(rng.pick(ENDS));
    }
    let mut bytes = text.into_bytes();
    if !tame && rng.chance(35) {
        for _ in 0..=rng.below(3) {
            let at = rng.below(bytes.len() + 1);
            let junk = JUNK[rng.below(JUNK.len())];
            match rng.below(3) {
                0 => bytes.insert(at, junk),
                1 if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ if at < bytes.len() => bytes[at] = junk,
                _ => bytes.push(junk),
            }
        }
    }
    bytes
}

fn env_map() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("E1".to_owned(), "5".to_owned()),
        ("E2".to_owned(), "[1, x, $E1 ]".to_owned()),
        ("E3".to_owned(), "{ a = $E1, b = [ $E2 ] }".to_owned()),
        ("E4".to_owned(), "bad value".to_owned()),
        ("E5".to_owned(), String::new()),
    ])
}

fn setup_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("natsconf-diff-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("inc")).unwrap();
    std::fs::write(dir.join("inc/a.conf"), "ia = 1\nim { k = [x, 2.5 ] }\n").unwrap();
    std::fs::write(dir.join("inc/b.conf"), "include a.conf\nib = $ia\n").unwrap();
    std::fs::write(dir.join("inc/bad.conf"), "x = [1]\n").unwrap();
    let env = serde_json::to_string(&env_map()).unwrap();
    std::fs::write(dir.join("env.json"), env).unwrap();
    dir
}

fn ours(dir: &Path) -> String {
    let env: BTreeMap<Vec<u8>, Vec<u8>> = env_map()
        .into_iter()
        .map(|(k, v)| (k.into_bytes(), v.into_bytes()))
        .collect();
    let res = parse_file_with(
        b"g.conf",
        &env,
        &FsLoader::with_base(dir),
        ParseSettings::default(),
    );
    if let Ok(map) = &res
        && let Some(printed) = print::to_config(map)
    {
        let again = natsconf::parse_source(&printed, b"g.conf", &env, &natsconf::MemLoader::new());
        assert_eq!(
            dump::dump(&again, false),
            dump::dump(&Ok(map.clone()), false),
            "round trip of {:?}",
            String::from_utf8_lossy(&printed)
        );
    }
    dump::dump(&res, true)
}

#[test]
fn generated_configs_match_the_reference() {
    let oracle = std::env::var_os("NATSCONF_ORACLE").map(PathBuf::from);
    let cases: usize = std::env::var("NATSCONF_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| if oracle.is_some() { 3000 } else { 400 });
    let seed: u64 = std::env::var("NATSCONF_DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x6e61_7473);
    let dir = setup_dir();
    let mut rng = Rng(seed);
    let mut failures = Vec::new();
    let mut matched = 0usize;
    let mut accepted = 0usize;
    for case in 0..cases {
        let config = gen_config(&mut rng);
        std::fs::write(dir.join("g.conf"), &config).unwrap();
        let got = ours(&dir);
        accepted += usize::from(got.starts_with("{\"map\""));
        let Some(oracle) = &oracle else { continue };
        let out = Command::new(oracle)
            .args(["-positions", "-env", "env.json", "g.conf"])
            .current_dir(&dir)
            .output()
            .expect("run conforacle");
        let expected = String::from_utf8_lossy(&out.stdout).into_owned();
        if expected == got {
            matched += 1;
        } else {
            let keep = dir.join(format!("fail-{case}.conf"));
            std::fs::write(&keep, &config).unwrap();
            failures.push(format!(
                "case {case} ({}): {:?}\n  oracle: {expected}  ours:   {got}",
                keep.display(),
                String::from_utf8_lossy(&config)
            ));
            if failures.len() >= 10 {
                break;
            }
        }
    }
    match &oracle {
        None => println!(
            "NATSCONF_ORACLE not set: {cases} generated inputs were checked for round trips only; \
             the reference comparison ran only on the recorded corpus"
        ),
        Some(_) => println!(
            "{matched} of {cases} generated inputs matched the reference ({accepted} accepted, {} rejected)",
            cases - accepted
        ),
    }
    assert!(failures.is_empty(), "divergences:\n{}", failures.join("\n"));
    let _ = std::fs::remove_dir_all(&dir);
}
