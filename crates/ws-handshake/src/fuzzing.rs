//! Fuzz target bodies, shared by `fuzz/fuzz_targets/ws_handshake_*.rs` and the seed replay test.
//!
//! Each body feeds `data[1..]` in two reads split at `data[0]` and checks, besides "no panic":
//! the decision equals the one for the bytes that were present when it was made (chunk
//! invariance), the output is bounded, and the written response agrees with the decision.
//! The server body then also drives the whole input as one connection through every refusal
//! that keeps it open, checking that it ends within the per-connection refusal cap.

#![allow(
    clippy::panic,
    reason = "fuzz bodies report a broken property by panicking"
)]

use crate::{ClientHandshake, ClientRequest, Limits, Options, Policy, ServerHandshake};

/// Small limits, so that the fuzzer reaches them.
const FUZZ_LIMITS: Limits = Limits {
    max_head_bytes: 2048,
    max_headers: 24,
    max_rejected_requests: 4,
};

/// The most bytes any single response may take with [`fuzz_policy`].
const MAX_RESPONSE_BYTES: usize = 1024;

/// The policy the server body runs under: every origin, cookie and header feature on.
///
/// A policy that `Policy::new` refused would leave the server body nothing to test, so a refusal
/// is a failure of the target (and of `fuzz_policy_is_accepted`), not a skipped input.
fn fuzz_policy() -> Policy {
    let res = Policy::new(&Options {
        same_origin: true,
        allowed_origins: vec!["http://localhost:8080".into(), "https://example.com".into()],
        compression: true,
        jwt_cookie: Some("jwt".into()),
        user_cookie: Some("un".into()),
        pass_cookie: Some("pw".into()),
        token_cookie: Some("tok".into()),
        headers: vec![("X-Extra".into(), "1".into())],
        reject_mqtt: false,
        limits: FUZZ_LIMITS,
    });
    match res {
        Ok(policy) => policy,
        Err(err) => panic!("the fuzz policy is refused: {err}"),
    }
}

/// Splits `data` into the split point and the input.
fn split(data: &[u8]) -> Option<(usize, &[u8])> {
    let (first, input) = data.split_first()?;
    Some((usize::from(*first) % (input.len() + 1), input))
}

/// Fuzz body for the server side: an arbitrary request.
pub fn ws_handshake_request(data: &[u8]) {
    let policy = fuzz_policy();
    let Some((split_at, input)) = split(data) else {
        return;
    };
    let tls = split_at % 2 == 1;
    let mut handshake = ServerHandshake::new(tls);
    let mut out = Vec::new();
    let mut decided_at = input.len();
    let mut res = handshake.handle_input(
        &policy,
        input.get(..split_at).unwrap_or(input),
        Some(0),
        &mut out,
    );
    if matches!(res, Ok(None)) {
        res = handshake.handle_input(&policy, input, Some(0), &mut out);
    } else {
        decided_at = split_at;
    }
    // A finished handshake stays finished and silent.
    let before = out.len();
    assert_eq!(
        handshake.handle_input(&policy, input, Some(0), &mut out),
        Ok(None)
    );
    assert_eq!(out.len(), before);

    let mut whole = ServerHandshake::new(tls);
    let mut whole_out = Vec::new();
    let whole_res = whole.handle_input(
        &policy,
        input.get(..decided_at).unwrap_or(input),
        Some(0),
        &mut whole_out,
    );
    assert_eq!(res, whole_res, "chunk invariance");
    assert_eq!(out, whole_out, "chunk invariance of the response");

    assert!(out.len() <= MAX_RESPONSE_BYTES);
    match &res {
        Ok(None) => {
            assert!(out.is_empty());
            assert!(decided_at < FUZZ_LIMITS.max_head_bytes);
        }
        Ok(Some(upgrade)) => {
            assert!(upgrade.head_len <= decided_at);
            assert!(upgrade.head_len <= FUZZ_LIMITS.max_head_bytes);
            assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
            assert!(out.ends_with(b"X-Extra: 1\r\n\r\n"));
        }
        Err(reject) => {
            let status = format!(" {} ", reject.status());
            assert_eq!(out.get(8..13), Some(status.as_bytes()));
            let after = handshake.after_reject();
            assert_eq!(
                after,
                whole.after_reject(),
                "chunk invariance of keep-alive"
            );
            assert!(after.is_some(), "a refusal always says what comes next");
            let Some(after) = after else {
                return;
            };
            assert!(after.consumed() <= decided_at);
            if after.keep_alive() {
                assert!(after.consumed() > 0);
                assert!(memchr::memmem::find(&out, b"Connection: close").is_none());
            }
        }
    }
    keep_alive_loop(&policy, tls, input);
}

/// One connection fed `input` in one read, driven the way a server does it: after each refusal
/// that keeps the connection, drop the consumed bytes and go on with the rest. The loop must end
/// within [`Limits::max_rejected_requests`] refusals, and a kept connection never restarts on
/// bytes it was not given.
fn keep_alive_loop(policy: &Policy, tls: bool, input: &[u8]) {
    let mut handshake = ServerHandshake::new(tls);
    let mut rest = input;
    let mut refusals = 0u32;
    loop {
        let mut out = Vec::new();
        match handshake.handle_input(policy, rest, Some(0), &mut out) {
            Ok(None) | Ok(Some(_)) => return,
            Err(_) => {
                refusals += 1;
                assert!(refusals <= FUZZ_LIMITS.max_rejected_requests.max(1));
                assert_eq!(handshake.rejected_requests(), refusals);
                let after = handshake.after_reject();
                assert!(after.is_some(), "a refusal always says what comes next");
                let Some(after) = after else {
                    return;
                };
                if !after.keep_alive() {
                    assert!(!handshake.next_request());
                    return;
                }
                assert!(after.consumed() > 0 && after.consumed() <= rest.len());
                rest = rest.get(after.consumed()..).unwrap_or_default();
                assert!(handshake.next_request());
            }
        }
    }
}

/// The client handshake for `request`; every request the response body builds is valid, so a
/// refusal is a failure of the target rather than an input to skip.
fn client_handshake(
    request: &ClientRequest<'_>,
    nonce: &[u8; 16],
    out: &mut Vec<u8>,
) -> ClientHandshake {
    match ClientHandshake::new(request, nonce, FUZZ_LIMITS, out) {
        Ok(handshake) => handshake,
        Err(err) => panic!("the fuzz request {request:?} is refused: {err}"),
    }
}

/// Fuzz body for the client side: an arbitrary response to a fixed request.
pub fn ws_handshake_response(data: &[u8]) {
    let Some((split_at, input)) = split(data) else {
        return;
    };
    let flags = data.first().copied().unwrap_or(0);
    let request = ClientRequest {
        compression: flags & 1 == 1,
        no_masking: flags & 2 == 2,
        ..ClientRequest::default()
    };
    let nonce = *b"the sample nonce";
    let mut out = Vec::new();
    let mut handshake = client_handshake(&request, &nonce, &mut out);
    let mut decided_at = input.len();
    let mut res = handshake.handle_input(input.get(..split_at).unwrap_or(input));
    if matches!(res, Ok(None)) {
        res = handshake.handle_input(input);
    } else {
        decided_at = split_at;
    }
    assert_eq!(handshake.handle_input(input), Ok(None));

    let mut whole_out = Vec::new();
    let mut whole = client_handshake(&request, &nonce, &mut whole_out);
    assert_eq!(
        res,
        whole.handle_input(input.get(..decided_at).unwrap_or(input)),
        "chunk invariance"
    );
    match res {
        Ok(None) => assert!(decided_at < FUZZ_LIMITS.max_head_bytes),
        Ok(Some(accepted)) => {
            assert!(accepted.head_len <= decided_at);
            assert!(!accepted.compression || request.compression);
            assert!(accepted.mask_writes || request.no_masking);
        }
        Err(_) => {}
    }
}

#[cfg(test)]
#[path = "../../../fuzz/replay.rs"]
mod replay;

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};

    use super::replay::replay;
    use super::*;

    fn files(dir: &Path) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .map(|entry| entry.unwrap().path())
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

    #[test]
    fn replay_request_seeds_and_regressions() {
        assert!(replay("ws_handshake_request", ws_handshake_request).seeds >= 10);
    }

    #[test]
    fn replay_response_seeds_and_regressions() {
        assert!(replay("ws_handshake_response", ws_handshake_response).seeds >= 5);
    }

    /// The server body runs under `fuzz_policy`, so it must be a policy `Policy::new` accepts;
    /// and it must switch on what the body's assertions expect to see.
    #[test]
    fn fuzz_policy_is_accepted() {
        let policy = fuzz_policy();
        let mut out = Vec::new();
        let request =
            b"GET / HTTP/1.1\r\nHost: localhost:8080\r\nOrigin: http://localhost:8080\r\n\
            Upgrade: websocket\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let res = ServerHandshake::new(false).handle_input(&policy, request, Some(0), &mut out);
        assert!(matches!(res, Ok(Some(_))), "{res:?}");
        assert!(out.ends_with(b"X-Extra: 1\r\n\r\n"));
    }

    /// Both requests the client body builds are accepted by `ClientHandshake::new`.
    #[test]
    fn fuzz_client_requests_are_accepted() {
        for flags in 0..4u8 {
            ws_handshake_response(&[flags]);
        }
    }

    /// Every golden request, split at every point a first byte can pick.
    #[test]
    fn golden_requests_through_the_request_body() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        for path in files(&data) {
            if path.extension().is_some_and(|ext| ext == "req") {
                let request = fs::read(&path).unwrap();
                for split in (0..=255u8).step_by(17) {
                    let mut input = vec![split];
                    input.extend_from_slice(&request);
                    ws_handshake_request(&input);
                }
            }
        }
    }

    #[test]
    fn empty_and_tiny_inputs() {
        for input in [&b""[..], b"\x00", b"\x05G", b"\x01\r\n"] {
            ws_handshake_request(input);
            ws_handshake_response(input);
        }
    }
}
