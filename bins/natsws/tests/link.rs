//! The test link (`NATSWS_TEST_LINK`): natsws dials nats-server as a client, over plain TCP and
//! over TLS with a throw-away CA, sends CONNECT, and reconnects after nats-server restarts.
mod common;

use std::time::{Duration, Instant};

use common::pki::make_pki;
use common::{Server, WAIT, free_port, reference_server, temp_dir};

/// nats-server on `port` (plus monitoring on `http_port`) with `extra` flags.
fn nats_server(program: &str, port: u16, http_port: u16, extra: &[&str]) -> Server {
    let (port, http_port) = (port.to_string(), http_port.to_string());
    let mut args = vec!["-a", "127.0.0.1", "-p", &port, "-m", &http_port];
    args.extend_from_slice(extra);
    Server::start_program(program, temp_dir("ref"), &args)
}

/// natsws dialing `urls`, with `ca` for `tls://` URLs.
fn natsws_linked(urls: &str, ca: Option<&str>) -> Server {
    let mut env = vec![("NATSWS_TEST_LINK", urls)];
    if let Some(ca) = ca {
        env.push(("NATSWS_TEST_LINK_CA", ca));
    }
    Server::start_program_env(
        common::bin(),
        temp_dir("link"),
        &["-a", "127.0.0.1", "-p", "-1"],
        &env,
    )
}

/// Waits until the log holds `needle` `n` times.
fn wait_count(srv: &Server, needle: &str, n: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let log = srv.log_text();
        if log.matches(needle).count() >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "log never held {needle:?} {n} times:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// nats-server lists the link under the name its CONNECT gave.
fn assert_connz_lists_the_link(http_port: u16) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, _, body) = common::http_get(http_port, "/connz");
        if body.contains("\"name\": \"natsws-test-link\"") {
            return;
        }
        assert!(Instant::now() < deadline, "connz: {body}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn link_connects_and_reconnects_after_a_restart() {
    let Some(reference) = reference_server() else {
        return;
    };
    let (port, http_port) = (free_port(), free_port());
    let url = format!("nats://127.0.0.1:{port}");
    let reference_srv = nats_server(reference, port, http_port, &[]);
    let srv = natsws_linked(&url, None);
    wait_count(&srv, &format!("Test link: established with {url}"), 1);
    assert_connz_lists_the_link(http_port);

    drop(reference_srv);
    wait_count(&srv, &format!("Test link: {url} closed"), 1);
    // While nats-server is down, attempts fail and are retried after a backoff.
    wait_count(&srv, &format!("Test link: {url} closed"), 2);
    let _reference_srv = nats_server(reference, port, http_port, &[]);
    wait_count(&srv, &format!("Test link: established with {url}"), 2);
    assert_connz_lists_the_link(http_port);
    let log = srv.log_text();
    assert!(log.contains("retrying in "), "{log}");
}

#[test]
fn link_over_tls_verifies_the_server() {
    let Some(reference) = reference_server() else {
        return;
    };
    let pki = make_pki();
    let (port, http_port) = (free_port(), free_port());
    let (cert, key, ca) = (
        pki.path("server.pem"),
        pki.path("server-key.pem"),
        pki.path("ca.pem"),
    );
    let tls_flags = ["--tls", "--tlscert", &cert, "--tlskey", &key];
    let _reference_srv = nats_server(reference, port, http_port, &tls_flags);
    // The certificate names localhost: the link verifies that name against the CA.
    let url = format!("tls://localhost:{port}");
    let srv = natsws_linked(&url, Some(&ca));
    wait_count(&srv, &format!("Test link: TLS handshake with {url}"), 1);
    wait_count(&srv, &format!("Test link: established with {url}"), 1);
    assert_connz_lists_the_link(http_port);

    // A server whose certificate another CA signed is refused, and so is a plain URL to a
    // TLS server.
    let other_ca = make_pki().path("ca.pem");
    let refused = natsws_linked(&url, Some(&other_ca));
    wait_count(
        &refused,
        &format!("Test link: {url} closed: TLS: invalid peer certificate"),
        1,
    );
    let plain = format!("nats://127.0.0.1:{port}");
    let plain_srv = natsws_linked(&plain, None);
    wait_count(
        &plain_srv,
        &format!("Test link: {plain} closed: the server requires TLS"),
        1,
    );
    for s in [&refused, &plain_srv] {
        assert!(
            !s.log_text().contains("Test link: established"),
            "{}",
            s.log_text()
        );
    }
}
