//! Golden tests: one request per rejection and per negotiation outcome.
//!
//! Each `tests/data/<case>.req` holds the raw request bytes; `<case>.out` holds the decision
//! (the `Upgrade` or the status and logged reason) followed by the exact response bytes. The
//! policy for each case is in [`CASES`]. Regenerate with `UPDATE_GOLDEN=1 cargo test -p
//! ws-handshake --test golden` and review the diff like code.
//!
//! For a refusal, the `then:` line says whether the connection stays open for another request
//! and how many bytes the refused request took ([`ws_handshake::AfterReject`]).
//!
//! Checked against the real nats-server 2.9.10 (`/usr/sbin/nats-server`, four listeners with
//! `websocket { port, no_tls: true }` plus, per case, `compression: true`, `same_origin: true` or
//! `allowed_origins: ["http://host1.com", "http://host2.com:1234"]`): the `.req` bytes were sent
//! over TCP with python and the reply compared with the response part of the `.out` file,
//! ignoring only the `Date` value, and for `101` replies only up to the end of the header block
//! (the server's INFO frame follows). Every `reject_*` case except the five below, and
//! `upgrade_plain`, `upgrade_compression`, `upgrade_compression_disabled`,
//! `upgrade_compression_not_offered`, `upgrade_no_masking`, `upgrade_no_masking_not_exact`,
//! `upgrade_leaf_solicitor`, `upgrade_mqtt`, `upgrade_cookies`, `upgrade_forwarded_for` and
//! `upgrade_http10` matched byte for byte. The deliberate differences:
//! `reject_origin_scheme_mismatch` (2.9.10 ignores the scheme and upgrades; newer versions refuse),
//! `reject_data_before_handshake` (2.9.10 closes without any response; we send the 400 its code
//! intended), `reject_mqtt_not_enabled` (the newer 404, only when configured),
//! `reject_head_too_large` and `reject_too_many_headers` (our limits are configurable; Go sends
//! the same 431 bytes, but only past 1 MiB and with no count limit), `reject_with_body` (Go
//! reads and drops the 5-byte body, sends the 400 without `Connection: close` and keeps the
//! connection; we close). The `then:` lines were checked by sending a valid upgrade right
//! after each request on the same connection: `keep-alive` cases answered it with a `101`,
//! `close` cases closed without answering (the class-by-class record is the doc of
//! `src/server/keep_alive_tests.rs`).

use std::fs;
use std::path::{Path, PathBuf};

use ws_handshake::{Limits, Options, Policy, ServerHandshake};

/// The fixed time for the `Date` header: Mon, 23 Nov 2026 09:41:54 GMT.
const DATE: u64 = 1_795_426_914;

fn same_origin() -> Options {
    Options {
        same_origin: true,
        ..Options::default()
    }
}

fn compression() -> Options {
    Options {
        compression: true,
        ..Options::default()
    }
}

fn allowed(entries: &[&str]) -> Options {
    Options {
        allowed_origins: entries.iter().map(|entry| (*entry).to_owned()).collect(),
        ..Options::default()
    }
}

fn limits(max_head_bytes: usize, max_headers: usize) -> Options {
    Options {
        limits: Limits {
            max_head_bytes,
            max_headers,
            ..Limits::default()
        },
        ..Options::default()
    }
}

/// A golden case: its file stem and the options its listener runs with.
type Case = (&'static str, fn() -> Options);

/// Every case.
const CASES: &[Case] = &[
    ("reject_method_post", Options::default),
    ("reject_method_head", Options::default),
    ("reject_method_lowercase", Options::default),
    ("reject_http10_without_host", Options::default),
    ("reject_host_empty", Options::default),
    ("reject_upgrade_missing", Options::default),
    ("reject_upgrade_wrong", Options::default),
    ("reject_connection_missing", Options::default),
    ("reject_connection_wrong", Options::default),
    ("reject_key_missing", Options::default),
    ("reject_key_empty", Options::default),
    ("reject_version_missing", Options::default),
    ("reject_version_99", Options::default),
    ("reject_origin_not_same", same_origin),
    ("reject_origin_null", same_origin),
    ("reject_origin_scheme_mismatch", same_origin),
    ("reject_origin_not_in_list", || {
        allowed(&["http://host1.com", "http://host2.com:1234"])
    }),
    ("reject_data_before_handshake", Options::default),
    ("reject_missing_host_header", Options::default),
    ("reject_malformed_host_header", Options::default),
    ("reject_two_host_headers", Options::default),
    ("reject_http2", Options::default),
    ("reject_malformed_request_line", Options::default),
    ("reject_malformed_header_line", Options::default),
    ("reject_invalid_header_name", Options::default),
    ("reject_invalid_header_value", Options::default),
    ("reject_head_too_large", || limits(512, 128)),
    ("reject_too_many_headers", || limits(1 << 20, 32)),
    ("reject_connection_close", Options::default),
    ("reject_http10_keep_alive", Options::default),
    ("reject_with_body", Options::default),
    ("reject_expect", Options::default),
    ("reject_content_length", Options::default),
    ("reject_transfer_encoding", Options::default),
    ("reject_mqtt_not_enabled", || Options {
        reject_mqtt: true,
        ..Options::default()
    }),
    ("upgrade_plain", Options::default),
    ("upgrade_compression", compression),
    ("upgrade_compression_disabled", Options::default),
    ("upgrade_compression_not_offered", compression),
    ("upgrade_no_masking", Options::default),
    ("upgrade_no_masking_not_exact", Options::default),
    ("upgrade_leaf_solicitor", compression),
    ("upgrade_mqtt", Options::default),
    ("upgrade_extra_headers", || Options {
        headers: vec![
            (
                "Strict-Transport-Security".to_owned(),
                "max-age=31536000".to_owned(),
            ),
            ("X-Served-By".to_owned(), "natsws".to_owned()),
        ],
        ..Options::default()
    }),
    ("upgrade_browser_safari", || Options {
        same_origin: true,
        compression: true,
        ..Options::default()
    }),
    ("upgrade_browser_chrome", || Options {
        same_origin: true,
        compression: true,
        ..Options::default()
    }),
    ("upgrade_cookies", || Options {
        jwt_cookie: Some("jwt".to_owned()),
        user_cookie: Some("un".to_owned()),
        pass_cookie: Some("pw".to_owned()),
        token_cookie: Some("tok".to_owned()),
        ..Options::default()
    }),
    ("upgrade_forwarded_for", Options::default),
    ("upgrade_origin_allowed", || {
        allowed(&["http://example.com", "https://example.com"])
    }),
    ("upgrade_http10", Options::default),
];

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Renders the decision and the response for one request.
fn render(options: &Options, request: &[u8]) -> Vec<u8> {
    let policy = Policy::new(options).expect("valid case options");
    let mut handshake = ServerHandshake::new(false);
    let mut response = Vec::new();
    let mut rendered = match handshake.handle_input(&policy, request, Some(DATE), &mut response) {
        Ok(None) => "incomplete\n".to_owned(),
        Ok(Some(upgrade)) => format!("{upgrade:#?}\n"),
        Err(reject) => {
            let after = handshake.after_reject().expect("set after a refusal");
            let next = if after.keep_alive() {
                format!("keep-alive, consumed {}", after.consumed())
            } else {
                "close".to_owned()
            };
            format!(
                "reject: status {} ({reject})\nthen: {next}\n",
                reject.status()
            )
        }
    }
    .into_bytes();
    rendered.extend_from_slice(b"--- response ---\n");
    rendered.extend_from_slice(&response);
    rendered
}

#[test]
fn golden_cases() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for (name, options) in CASES {
        let request = fs::read(data_dir().join(format!("{name}.req"))).expect("request file");
        let rendered = render(&options(), &request);
        let out_path = data_dir().join(format!("{name}.out"));
        if update {
            fs::write(&out_path, &rendered).expect("write golden file");
            continue;
        }
        let expected = fs::read(&out_path).unwrap_or_default();
        if expected != rendered {
            mismatches.push(format!(
                "{name}:\n--- expected\n{}\n--- got\n{}",
                String::from_utf8_lossy(&expected),
                String::from_utf8_lossy(&rendered)
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "golden mismatches (UPDATE_GOLDEN=1 to accept):\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn every_request_file_has_a_case() {
    for entry in fs::read_dir(data_dir()).expect("data dir") {
        let path = entry.expect("dir entry").path();
        let stem = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or("");
        assert!(
            CASES.iter().any(|(name, _)| *name == stem),
            "{} has no entry in CASES",
            path.display()
        );
    }
}
