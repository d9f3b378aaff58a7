//! Interoperability with independent WebSocket implementations: the echo example driven by
//! Python's `websockets` and Node's `ws`, with and without permessage-deflate, and with the
//! server fragmenting its own messages.
//!
//! Tools: `NATSWS_PYTHON` is a python3 with `websockets` installed; `NATSWS_NODE_MODULES` is a
//! `node_modules` directory that contains `ws`. When one is unset its half is skipped with a
//! message, unless `NATSWS_REQUIRE_INTEROP=1`, which makes a missing tool a failure.
#![allow(
    clippy::print_stderr,
    reason = "skips are reported to the person running the tests"
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The echo example, built by `cargo test` next to this test binary.
fn echo_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let path = profile_dir
        .join("examples")
        .join(format!("echo{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "echo example not built at {}",
        path.display()
    );
    path
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str]) -> Server {
    let mut child = Command::new(echo_binary())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("bad banner {line:?}"));
    Server {
        child,
        url: format!("ws://{addr}/"),
    }
}

fn required() -> bool {
    std::env::var("NATSWS_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

fn tool(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => {
            assert!(!required(), "NATSWS_REQUIRE_INTEROP=1 but {var} is not set");
            eprintln!("skipped: set NATSWS_PYTHON/NATSWS_NODE_MODULES ({var} is unset)");
            None
        }
    }
}

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("interop")
}

/// Runs `cmd` with a time limit and asserts success.
fn run(mut cmd: Command, what: &str) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what}: timed out");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains(" ok "),
        "{what}: no success line:\n{stdout}\n{stderr}"
    );
}

/// Server variants: (arguments, client modes to try).
const VARIANTS: &[(&[&str], &[&str])] = &[
    (&[], &["deflate", "plain"]),
    (&["--no-deflate"], &["deflate", "plain"]),
    (&["--max-frame", "4096"], &["deflate", "plain"]),
    (&["--max-frame", "1000"], &["deflate", "plain"]),
];

#[test]
fn python_websockets() {
    let Some(python) = tool("NATSWS_PYTHON") else {
        return;
    };
    for (args, modes) in VARIANTS {
        let server = start(args);
        for mode in *modes {
            // A client asking for deflate from a server without it gets plain frames.
            let expect = if args.contains(&"--no-deflate") {
                "plain"
            } else {
                mode
            };
            let mut cmd = Command::new(&python);
            cmd.arg(scripts().join("py_client.py"))
                .arg(&server.url)
                .arg(expect);
            if *mode == "deflate" && expect == "plain" {
                cmd.env("NATSWS_OFFER_DEFLATE", "1");
            }
            run(cmd, &format!("python {mode} against echo {args:?}"));
        }
    }
}

#[test]
fn node_ws() {
    let Some(modules) = tool("NATSWS_NODE_MODULES") else {
        return;
    };
    for (args, modes) in VARIANTS {
        let server = start(args);
        for mode in *modes {
            let expect = if args.contains(&"--no-deflate") {
                "plain"
            } else {
                mode
            };
            let mut cmd = Command::new("node");
            cmd.arg(scripts().join("node_client.js"))
                .arg(&server.url)
                .arg(expect)
                .env("NATSWS_NODE_MODULES", &modules);
            if *mode == "deflate" && expect == "plain" {
                cmd.env("NATSWS_OFFER_DEFLATE", "1");
            }
            run(cmd, &format!("node {mode} against echo {args:?}"));
        }
    }
}
