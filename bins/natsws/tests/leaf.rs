//! Leaf nodes: a nats-server hub (`leafnodes { listen }`) with an edge dialling it, the edge
//! being natsws and, to prove each test, nats-server itself. Messages, requests and queue
//! groups cross the link; the hub's `/leafz?subs=1` shows the interest the edge advertised;
//! a hub restart and a refused password are survived. As a hub (natsws, or nats-server to
//! prove the test), interest from a leaf is not advertised to leafs of the same cluster.
mod common;
#[path = "leaf/options.rs"]
mod options;

use std::time::{Duration, Instant};

use common::pki::make_pki;
use common::{Raw, Server, Target, WAIT, free_port, on_both, reference_server, temp_dir};

/// A nats-server hub: client, monitoring and leafnode ports on loopback; `leaf_extra` goes
/// inside its `leafnodes {}` block.
struct Hub {
    server: Server,
    client_port: u16,
    http_port: u16,
    leaf_port: u16,
    conf: String,
}

impl Hub {
    fn start(leaf_extra: &str) -> Option<Self> {
        let program = reference_server()?;
        let (client_port, http_port, leaf_port) = (free_port(), free_port(), free_port());
        let conf = format!(
            "server_name: hub\nlisten: \"127.0.0.1:{client_port}\"\nhttp: \"127.0.0.1:{http_port}\"\nleafnodes {{ listen: \"127.0.0.1:{leaf_port}\"\n{leaf_extra}\n}}\n"
        );
        let server = Server::with_config_of(program, &conf, &[]);
        Some(Self {
            server,
            client_port,
            http_port,
            leaf_port,
            conf,
        })
    }

    /// Stops the hub and starts it again on the same ports.
    fn restart(&mut self) {
        let program = reference_server().expect("nats-server");
        self.server.signal("quit");
        let _ = self.server.wait_exit();
        let deadline = Instant::now() + WAIT;
        loop {
            let server =
                std::panic::catch_unwind(|| Server::with_config_of(program, &self.conf, &[]));
            if let Ok(server) = server {
                self.server = server;
                return;
            }
            assert!(Instant::now() < deadline, "hub did not restart");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn leafz(&self) -> serde_json::Value {
        let (_, _, body) = common::http_get(self.http_port, "/leafz?subs=1");
        serde_json::from_str(&body).expect("leafz json")
    }

    /// Waits until `/leafz?subs=1` satisfies `done`; returns it.
    fn wait_leafz(
        &self,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self.leafz();
            if done(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "hub /leafz never showed {what}: {v}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The subscriptions the hub holds for its one leaf.
    fn leaf_subs(v: &serde_json::Value) -> Vec<String> {
        v["leafs"][0]["subscriptions_list"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn wait_connected(&self) {
        self.wait_leafz("one leaf", |v| v["leafnodes"] == 1);
    }

    fn wait_sub(&self, subject: &str) -> Vec<String> {
        let v = self.wait_leafz(subject, |v| Self::leaf_subs(v).iter().any(|s| s == subject));
        Self::leaf_subs(&v)
    }

    fn wait_no_sub(&self, subject: &str) {
        self.wait_leafz(&format!("no {subject}"), |v| {
            v["leafnodes"] == 1 && !Self::leaf_subs(v).iter().any(|s| s == subject)
        });
    }
}

/// The edge (natsws or nats-server) dialling the hub with `remote` as its remote's body.
fn edge(target: Target, remote: &str, extra: &str) -> Option<Server> {
    target.with_config(
        &format!(
            "server_name: edge\nlisten: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:-1\"\n{extra}\nleafnodes {{ reconnect: 1\nremotes: [ {{ {remote} }} ] }}\n"
        ),
        &[],
    )
}

fn wait_log_count(srv: &Server, needle: &str, n: usize) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let log = srv.log_text();
        if log.matches(needle).count() >= n {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "log never held {needle:?} {n} times:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Publishes `subject` from `from` until `to` (subscribed to it) receives one, so that
/// interest that is still on its way is waited for; returns what `to` read.
fn publish_until_received(from: &mut Raw, to: &mut Raw, subject: &str) -> String {
    let deadline = Instant::now() + WAIT;
    to.stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut got = String::new();
    loop {
        from.send(&format!("PUB {subject} 4\r\nping\r\n"));
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut to.reader, &mut line).is_ok() {
            got.push_str(&line);
            if got.contains(&format!("MSG {subject} ")) {
                break;
            }
        }
        assert!(Instant::now() < deadline, "{subject} never crossed: {got}");
    }
    to.stream.set_read_timeout(Some(WAIT)).unwrap();
    got
}

fn drain(client: &mut Raw) -> String {
    client
        .stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut all = String::new();
    loop {
        let mut line = String::new();
        match std::io::BufRead::read_line(&mut client.reader, &mut line) {
            Ok(n) if n > 0 => all.push_str(&line),
            _ => break,
        }
    }
    client.stream.set_read_timeout(Some(WAIT)).unwrap();
    all
}

fn messages_cross_both_ways(target: Target) {
    let Some(hub) = Hub::start("") else {
        return;
    };
    let Some(edge) = edge(
        target,
        &format!("url: \"nats://127.0.0.1:{}\"", hub.leaf_port),
        "",
    ) else {
        return;
    };
    hub.wait_connected();
    edge.wait_log("Leafnode connection created");
    // Edge → hub: the hub's client is interested, the edge learns it.
    let mut on_hub = Raw::connected(hub.client_port, "SUB from.edge 1\r\n");
    let mut on_edge = Raw::connected(edge.nats_port(), "SUB from.hub 2\r\n");
    publish_until_received(&mut on_edge, &mut on_hub, "from.edge");
    // Hub → edge: the edge advertised its client's subscription.
    hub.wait_sub("from.hub");
    on_hub.send("PUB from.hub reply.x 5\r\nhello\r\nPING\r\n");
    on_hub.read_until("PONG\r\n");
    assert_eq!(on_edge.line(), "MSG from.hub 2 reply.x 5\r\n");
    assert_eq!(on_edge.line(), "hello\r\n");
    // Headers cross too.
    on_edge.send("CONNECT {\"verbose\":false,\"headers\":true}\r\nPING\r\n");
    on_edge.read_until("PONG\r\n");
    on_hub.send("CONNECT {\"verbose\":false,\"headers\":true}\r\nHPUB from.hub 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    assert_eq!(on_edge.line(), "HMSG from.hub 2 12 14\r\n");
    let log = edge.log_text();
    assert!(
        log.contains("Leafnode connection created for account: $G"),
        "{log}"
    );
}
on_both!(messages_cross_both_ways);

fn request_reply_across(target: Target) {
    let Some(hub) = Hub::start("") else {
        return;
    };
    let Some(edge) = edge(
        target,
        &format!("url: \"nats://127.0.0.1:{}\"", hub.leaf_port),
        "",
    ) else {
        return;
    };
    hub.wait_connected();
    let mut service = Raw::connected(hub.client_port, "SUB svc.time 1\r\n");
    let mut requester = Raw::connected(edge.nats_port(), "SUB _INBOX.r1 9\r\n");
    hub.wait_sub("_INBOX.r1");
    // The service's interest reaches the edge; ask until it is answered.
    let got = publish_until_received(&mut requester, &mut service, "svc.time");
    assert!(got.contains("MSG svc.time 1 "), "{got}");
    requester.send("PUB svc.time _INBOX.r1 1\r\n?\r\n");
    let mut line = service.line();
    while !line.contains("_INBOX.r1") {
        line = service.line();
    }
    assert_eq!(line, "MSG svc.time 1 _INBOX.r1 1\r\n");
    service.send("PUB _INBOX.r1 3\r\nnow\r\n");
    requester.read_until("MSG _INBOX.r1 9 3\r\n");
    assert_eq!(requester.line(), "now\r\n");
}
on_both!(request_reply_across);

fn queue_group_across_delivers_each_message_once(target: Target) {
    let Some(hub) = Hub::start("") else {
        return;
    };
    let Some(edge) = edge(
        target,
        &format!("url: \"nats://127.0.0.1:{}\"", hub.leaf_port),
        "",
    ) else {
        return;
    };
    hub.wait_connected();
    let mut m1 = Raw::connected(edge.nats_port(), "SUB work g 1\r\n");
    let mut m2 = Raw::connected(edge.nats_port(), "SUB work g 1\r\n");
    // The hub lists a queue subscription under its subject.
    hub.wait_sub("work");
    let mut publisher = Raw::connected(hub.client_port, "");
    for i in 0..20 {
        publisher.send(&format!("PUB work {} \r\n{i:02}\r\n", 2));
    }
    publisher.send("PING\r\n");
    publisher.read_until("PONG\r\n");
    let got = format!("{}{}", drain(&mut m1), drain(&mut m2));
    assert_eq!(got.matches("MSG work 1 2").count(), 20, "{got}");
    for i in 0..20 {
        assert_eq!(
            got.matches(&format!("\r\n{i:02}\r\n")).count()
                + usize::from(got.starts_with(&format!("{i:02}"))),
            1,
            "{i}: {got}"
        );
    }
    // With a member on the hub too, each message still goes to exactly one member.
    let mut m3 = Raw::connected(hub.client_port, "SUB work g 1\r\n");
    for i in 20..40 {
        publisher.send(&format!("PUB work 2\r\n{i:02}\r\n"));
    }
    publisher.send("PING\r\n");
    publisher.read_until("PONG\r\n");
    let got = format!("{}{}{}", drain(&mut m1), drain(&mut m2), drain(&mut m3));
    assert_eq!(got.matches("MSG work 1 2").count(), 20, "{got}");
}
on_both!(queue_group_across_delivers_each_message_once);

fn unsubscribe_removes_interest_at_the_hub(target: Target) {
    let Some(hub) = Hub::start("") else {
        return;
    };
    let Some(edge) = edge(
        target,
        &format!("url: \"nats://127.0.0.1:{}\"", hub.leaf_port),
        "",
    ) else {
        return;
    };
    hub.wait_connected();
    let mut a = Raw::connected(edge.nats_port(), "SUB gone.soon 1\r\nSUB stays 2\r\n");
    let mut b = Raw::connected(edge.nats_port(), "SUB gone.soon 1\r\n");
    let subs = hub.wait_sub("gone.soon");
    assert_eq!(
        subs.iter().filter(|s| *s == "gone.soon").count(),
        1,
        "{subs:?}"
    );
    a.send("UNSUB 1\r\nPING\r\n");
    a.read_until("PONG\r\n");
    // Still one subscriber on the edge.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        Hub::leaf_subs(&hub.leafz())
            .iter()
            .any(|s| s == "gone.soon")
    );
    b.send("UNSUB 1\r\nPING\r\n");
    b.read_until("PONG\r\n");
    hub.wait_no_sub("gone.soon");
    assert!(Hub::leaf_subs(&hub.leafz()).iter().any(|s| s == "stays"));
    // A closed client's interest goes too.
    drop(a);
    hub.wait_no_sub("stays");
}
on_both!(unsubscribe_removes_interest_at_the_hub);

fn hub_restart_restores_interest(target: Target) {
    let Some(mut hub) = Hub::start("") else {
        return;
    };
    let Some(edge) = edge(
        target,
        &format!("url: \"nats://127.0.0.1:{}\"", hub.leaf_port),
        "",
    ) else {
        return;
    };
    hub.wait_connected();
    let mut on_edge = Raw::connected(
        edge.nats_port(),
        "SUB kept 1\r\nSUB kept.q g 2\r\nSUB kept.q g 3\r\n",
    );
    hub.wait_sub("kept");
    hub.restart();
    hub.wait_connected();
    let subs = hub.wait_sub("kept");
    assert_eq!(subs.iter().filter(|s| *s == "kept").count(), 1, "{subs:?}");
    assert_eq!(
        subs.iter().filter(|s| *s == "kept.q").count(),
        1,
        "{subs:?}"
    );
    let mut on_hub = Raw::connected(hub.client_port, "PUB kept 2\r\nok\r\n");
    on_hub.send("PING\r\n");
    on_hub.read_until("PONG\r\n");
    assert_eq!(on_edge.line(), "MSG kept 1 2\r\n");
    assert_eq!(on_edge.line(), "ok\r\n");
    wait_log_count(&edge, "Leafnode connection created", 2);
}
on_both!(hub_restart_restores_interest);

fn auth_failure_is_logged_and_retried(target: Target) {
    let Some(hub) = Hub::start("authorization { user: leaf, password: s3cret }") else {
        return;
    };
    let Some(refused) = edge(
        target,
        &format!("url: \"nats://leaf:wrong@127.0.0.1:{}\"", hub.leaf_port),
        "",
    ) else {
        return;
    };
    let log = wait_log_count(&refused, "Leafnode Error 'Authorization Violation'", 2);
    assert!(
        !log.contains("s3cret") && !log.contains(":wrong@"),
        "credentials logged: {log}"
    );
    let Some(_good) = edge(
        target,
        &format!("url: \"nats://leaf:s3cret@127.0.0.1:{}\"", hub.leaf_port),
        "",
    ) else {
        return;
    };
    hub.wait_connected();
}
on_both!(auth_failure_is_logged_and_retried);

fn hub_down_at_start_is_retried(target: Target) {
    let port = free_port();
    let Some(edge) = edge(target, &format!("url: \"nats://127.0.0.1:{port}\""), "") else {
        return;
    };
    let log = edge.wait_log(&format!(
        "Error trying to connect as leafnode to remote server \"127.0.0.1:{port}\" (attempt 1)"
    ));
    assert!(log.contains("connection refused"), "{log}");
    // Local clients are served meanwhile.
    let mut c = Raw::connected(edge.nats_port(), "SUB local 1\r\n");
    c.send("PUB local 1\r\nx\r\n");
    c.read_until("MSG local 1 1\r\n");
}
on_both!(hub_down_at_start_is_retried);

/// The hub's leafnode port over TLS (a throw-away CA; the certificate names localhost): the
/// edge verifies it; another CA's certificate is refused.
fn tls_remote_verifies_the_hub(target: Target) {
    let pki = make_pki();
    let (cert, key, ca) = (
        pki.path("server.pem"),
        pki.path("server-key.pem"),
        pki.path("ca.pem"),
    );
    let Some(hub) = Hub::start(&format!(
        "tls {{ cert_file: \"{cert}\", key_file: \"{key}\" }}"
    )) else {
        return;
    };
    let Some(edge) = edge(
        target,
        &format!(
            "url: \"tls://localhost:{}\", tls {{ ca_file: \"{ca}\" }}",
            hub.leaf_port
        ),
        "",
    ) else {
        return;
    };
    hub.wait_connected();
    let v = hub.leafz();
    assert_eq!(v["leafnodes"], 1, "{v}");
    let mut on_edge = Raw::connected(edge.nats_port(), "SUB secure 1\r\n");
    hub.wait_sub("secure");
    let mut on_hub = Raw::connected(hub.client_port, "PUB secure 2\r\nok\r\n");
    on_hub.send("PING\r\n");
    on_hub.read_until("PONG\r\n");
    assert_eq!(on_edge.line(), "MSG secure 1 2\r\n");
    drop(edge);
    let other_ca = make_pki().path("ca.pem");
    let Some(refused) = edge_of(
        target,
        &format!(
            "url: \"tls://localhost:{}\", tls {{ ca_file: \"{other_ca}\" }}",
            hub.leaf_port
        ),
    ) else {
        return;
    };
    // Both servers log the refused certificate (nats-server: "TLS handshake error: x509:
    // certificate signed by unknown authority").
    let log = wait_log_count(&refused, "certificate", 1);
    assert!(log.contains("[ERR]"), "{log}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(hub.leafz()["leafnodes"], 0);
}
on_both!(tls_remote_verifies_the_hub);

fn edge_of(target: Target, remote: &str) -> Option<Server> {
    edge(target, remote, "")
}

/// natsws refuses at start-up what it does not serve in the `leafnodes` block, naming it.
#[test]
fn unserved_leafnode_options_are_refused_by_name() {
    for (conf, name) in [
        (
            "leafnodes { remotes [ { url: \"tls://h:1\", tls { insecure: true, cipher_suites: [\"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"] } } ] }",
            "leafnodes.remotes.tls.cipher_suites",
        ),
        // A remote's `insecure` is served, the accepting side's is not.
        (
            "leafnodes { tls { insecure: true } }",
            "leafnodes.tls.insecure",
        ),
    ] {
        let dir = temp_dir("leafconf");
        let path = dir.join("s.conf");
        std::fs::write(&path, format!("listen: \"127.0.0.1:-1\"\n{conf}\n")).unwrap();
        let out = std::process::Command::new(common::bin())
            .arg("-c")
            .arg(&path)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("\"{name}\"")), "{name}: {err}");
    }
    // As nats-server checks at start-up.
    for (conf, text) in [
        (
            "leafnodes { remotes [ { urls: [\"ws://h:1\", \"nats://h:2\"] } ] }",
            "remote leaf node configuration cannot have a mix of websocket and non-websocket urls",
        ),
        (
            "leafnodes { remotes [ { url: \"nats://h:1\", account: NOPE } ] }",
            "cannot find local account \"NOPE\" specified in leafnode remote",
        ),
    ] {
        let dir = temp_dir("leafconf");
        let path = dir.join("s.conf");
        std::fs::write(&path, format!("listen: \"127.0.0.1:-1\"\n{conf}\n")).unwrap();
        let out = std::process::Command::new(common::bin())
            .arg("-c")
            .arg(&path)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(text), "{text}: {err}");
    }
}

/// A hostile hub: a listener whose every connection `behave` serves; counts connections.
struct FakeHub {
    port: u16,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FakeHub {
    fn start(behave: impl Fn(std::net::TcpStream) + Send + Sync + 'static) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = std::sync::Arc::clone(&accepted);
        let behave = std::sync::Arc::new(behave);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let behave = std::sync::Arc::clone(&behave);
                std::thread::spawn(move || behave(stream));
            }
        });
        Self { port, accepted }
    }

    fn wait_accepted(&self, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.accepted.load(std::sync::atomic::Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "fewer than {n} connections");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

const FAKE_INFO: &str = "INFO {\"server_id\":\"NFAKE\",\"server_name\":\"fake\",\"version\":\"2.9.10\",\"proto\":1,\"headers\":true,\"max_payload\":1048576,\"client_id\":7,\"info_on_connect\":true,\"leafnode_urls\":[\"127.0.0.1:1\"]} \r\n";

/// The edge keeps redialling a hostile hub while its own clients are served.
fn survives(target: Target, behave: fn(std::net::TcpStream)) {
    let hub = FakeHub::start(behave);
    let Some(edge) = edge(
        target,
        &format!("url: \"nats://127.0.0.1:{}\"", hub.port),
        "",
    ) else {
        return;
    };
    hub.wait_accepted(3);
    let mut c = Raw::connected(edge.nats_port(), "SUB local 1\r\n");
    c.send("PUB local 1\r\nx\r\n");
    c.read_until("MSG local 1 1\r\n");
    hub.wait_accepted(4);
}

fn garbage_from_the_hub(target: Target) {
    survives(target, |mut s| {
        let _ = std::io::Write::write_all(&mut s, b"\x00\xffGARBAGE junk\r\n");
        std::thread::sleep(Duration::from_secs(2));
    });
}
on_both!(garbage_from_the_hub);

fn hub_closes_mid_line(target: Target) {
    survives(target, |mut s| {
        let _ = std::io::Write::write_all(&mut s, b"INFO {\"server_id\":\"NFA");
    });
}
on_both!(hub_closes_mid_line);

fn silent_hub(target: Target) {
    survives(target, |s| {
        // Accepts and never speaks: the edge gives up on the INFO and dials again.
        std::thread::sleep(Duration::from_secs(8));
        drop(s);
    });
}
on_both!(silent_hub);

/// A hub that answers CONNECT with nothing: the edge closes with nats-server's stale text.
#[test]
fn hub_that_never_answers_connect_is_stale() {
    let hub = FakeHub::start(|mut s| {
        let _ = std::io::Write::write_all(&mut s, FAKE_INFO.as_bytes());
        let mut r = std::io::BufReader::new(s);
        let mut all = String::new();
        let _ = std::io::Read::read_to_string(&mut r, &mut all);
        assert!(all.starts_with("CONNECT {"), "{all}");
        assert!(
            all.contains("-ERR 'Stale Leaf Node Connection - Closing'"),
            "{all}"
        );
    });
    let Some(edge) = edge(
        Target::Natsws,
        &format!("url: \"nats://127.0.0.1:{}\"", hub.port),
        "",
    ) else {
        return;
    };
    hub.wait_accepted(2);
    let log = edge.log_text();
    assert!(
        log.contains("Leafnode connection closed: Stale Connection"),
        "{log}"
    );
}

/// A hub line that never ends is cut off at the control-line limit: the edge's buffer stays
/// bounded (nats-server 2.9.10 has no limit for leaf connections, so natsws only).
#[test]
fn endless_hub_line_is_bounded() {
    let hub = FakeHub::start(|mut s| {
        let _ = std::io::Write::write_all(&mut s, FAKE_INFO.as_bytes());
        let mut line = String::new();
        let mut r = std::io::BufReader::new(s.try_clone().unwrap());
        let _ = std::io::BufRead::read_line(&mut r, &mut line);
        let _ = std::io::Write::write_all(
            &mut s,
            b"INFO {\"connect_info\":true,\"leafnode_urls\":[]} \r\nLS+ ",
        );
        let junk = vec![b'x'; 64 * 1024];
        let mut sent = 0usize;
        while sent < 64 << 20 {
            if std::io::Write::write_all(&mut s, &junk).is_err() {
                break;
            }
            sent += junk.len();
        }
        assert!(sent < 64 << 20, "the edge read 64 MiB of one line");
    });
    let Some(edge) = edge(
        Target::Natsws,
        &format!("url: \"nats://127.0.0.1:{}\"", hub.port),
        "",
    ) else {
        return;
    };
    hub.wait_accepted(2);
    let log = edge.log_text();
    assert!(
        log.contains("Leafnode connection closed: Maximum Control Line Exceeded"),
        "{log}"
    );
}

/// A hub that is `target` (natsws, or nats-server to prove the test) with `leafnodes {
/// listen, authorization }`; returns it and its leafnode port.
fn hub_of(target: Target, leaf_extra: &str) -> Option<(Server, u16)> {
    let leaf_port = free_port();
    let srv = target.with_config(
        &format!(
            "server_name: hub\nlisten: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:-1\"\nleafnodes {{ listen: \"127.0.0.1:{leaf_port}\"\n{leaf_extra}\n}}\n"
        ),
        &[],
    )?;
    Some((srv, leaf_port))
}

/// Messages and queue groups both ways between `hub` and a leaf `leaf` of it; returns the
/// two clients (their subscriptions live as long as they do).
fn check_traffic(hub: &Server, leaf: &Server) -> (Raw, Raw) {
    let mut on_hub = Raw::connected(hub.nats_port(), "SUB to.hub 1\r\nSUB work g 5\r\n");
    let mut on_leaf = Raw::connected(leaf.nats_port(), "SUB to.leaf 2\r\n");
    publish_until_received(&mut on_leaf, &mut on_hub, "to.hub");
    publish_until_received(&mut on_hub, &mut on_leaf, "to.leaf");
    // Requests from the leaf reach the hub's queue group once each; replies come back.
    on_leaf.send("SUB _INBOX.q 3\r\n");
    std::thread::sleep(Duration::from_millis(300));
    drain(&mut on_hub);
    for i in 0..10 {
        on_leaf.send(&format!("PUB work _INBOX.q 1\r\n{i}\r\n"));
    }
    on_leaf.send("PING\r\n");
    on_leaf.read_until("PONG\r\n");
    std::thread::sleep(Duration::from_millis(300));
    let got = drain(&mut on_hub);
    assert_eq!(got.matches("MSG work 5 _INBOX.q 1").count(), 10, "{got}");
    on_hub.send("PUB _INBOX.q 2\r\nok\r\n");
    on_leaf.read_until("MSG _INBOX.q 3 2\r\n");
    (on_hub, on_leaf)
}

fn hub_with_a_nats_server_leaf(target: Target) {
    let Some(leaf_program) = reference_server() else {
        return;
    };
    let Some((hub, leaf_port)) = hub_of(target, "authorization { user: leaf, password: pw }")
    else {
        return;
    };
    let leaf = Server::with_config_of(
        leaf_program,
        &format!(
            "server_name: spoke\nlisten: \"127.0.0.1:-1\"\nleafnodes {{ reconnect: 1, remotes: [ {{ url: \"nats://leaf:pw@127.0.0.1:{leaf_port}\" }} ] }}\n"
        ),
        &[],
    );
    let _clients = check_traffic(&hub, &leaf);
    hub.wait_log("Leafnode connection created");
    let (_, _, body) = hub.http_get("/leafz?subs=1&acc=$G");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["leafnodes"], 1, "{v}");
    let list = v["leafs"][0]["subscriptions_list"].to_string();
    assert!(
        list.contains("\"to.leaf\"") && list.contains("$LDS."),
        "{v}"
    );
    let (_, _, body) = hub.http_get("/leafz?acc=OTHER");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["leafnodes"], 0, "{v}");
    assert!(v["leafs"].is_null(), "{v}");
    let varz: serde_json::Value = serde_json::from_str(&hub.http_get("/varz").2).unwrap();
    assert_eq!(varz["leaf"]["port"], leaf_port, "{varz}");
    assert_eq!(varz["leaf"]["host"], "127.0.0.1", "{varz}");
    assert_eq!(varz["leafnodes"], 1, "{varz}");
    // A wrong password is refused with nats-server's error.
    let refused = Server::with_config_of(
        leaf_program,
        &format!(
            "server_name: bad\nlisten: \"127.0.0.1:-1\"\nleafnodes {{ reconnect: 1, remotes: [ {{ url: \"nats://leaf:nope@127.0.0.1:{leaf_port}\" }} ] }}\n"
        ),
        &[],
    );
    refused.wait_log("Leafnode Error 'Authorization Violation'");
}
on_both!(hub_with_a_nats_server_leaf);

/// natsws as both the edge and the hub.
#[test]
fn natsws_edge_with_a_natsws_hub() {
    let Some((hub, leaf_port)) = hub_of(Target::Natsws, "") else {
        return;
    };
    let Some(leaf) = edge(
        Target::Natsws,
        &format!("url: \"nats://127.0.0.1:{leaf_port}\""),
        "",
    ) else {
        return;
    };
    let _clients = check_traffic(&hub, &leaf);
    let log = leaf.log_text();
    assert!(
        log.contains("Leafnode connection created for account: $G"),
        "{log}"
    );
    // A client port is not a leafnode port.
    let Some(wrong) = edge(
        Target::Natsws,
        &format!("url: \"nats://127.0.0.1:{}\"", hub.nats_port()),
        "",
    ) else {
        return;
    };
    wrong.wait_log("Leafnode Error 'attempted to connect to wrong port'");
}

/// A leaf that dials natsws' client port, or a client that dials its leafnode port, gets
/// nats-server's errors.
#[test]
fn a_client_on_the_leafnode_port_is_refused() {
    let Some((hub, leaf_port)) = hub_of(Target::Natsws, "") else {
        return;
    };
    let mut c = Raw::connect(leaf_port);
    let info = c.line();
    assert!(info.contains("\"leafnode_urls\""), "{info}");
    c.send("CONNECT {\"lang\":\"go\",\"verbose\":false}\r\n");
    assert_eq!(
        c.line(),
        "-ERR 'attempted to connect to leaf node port'\r\n"
    );
    drop(hub);
}

/// A nats-server leaf dialling the hub's WebSocket port (`ws://`, path `/leafnode`), with
/// and without `ws_no_masking`, and with compression.
fn leaf_over_websocket_to_the_hub(target: Target) {
    let Some(leaf_program) = reference_server() else {
        return;
    };
    let (leaf_port, ws_port) = (free_port(), free_port());
    let Some(hub) = target.with_config(
        &format!(
            "server_name: hub\nlisten: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:-1\"\nwebsocket {{ listen: \"127.0.0.1:{ws_port}\", no_tls: true, compression: true }}\nleafnodes {{ listen: \"127.0.0.1:{leaf_port}\" }}\n"
        ),
        &[],
    ) else {
        return;
    };
    for (name, extra) in [
        ("wsleaf", ""),
        ("wsnomask", ", ws_no_masking: true"),
        ("wsdeflate", ", ws_compression: true"),
    ] {
        let leaf = Server::with_config_of(
            leaf_program,
            &format!(
                "server_name: {name}\nlisten: \"127.0.0.1:-1\"\nleafnodes {{ reconnect: 1, remotes: [ {{ url: \"ws://127.0.0.1:{ws_port}\"{extra} }} ] }}\n"
            ),
            &[],
        );
        let _clients = check_traffic(&hub, &leaf);
        drop(leaf);
    }
    hub.wait_log("Leafnode connection created");
}
on_both!(leaf_over_websocket_to_the_hub);

/// The edge dials the hub's WebSocket port: `ws://` (masked, unmasked after
/// `ws_no_masking`, compressed) and `wss://` with the hub's certificate verified.
fn edge_over_websocket(target: Target) {
    let Some(program) = reference_server() else {
        return;
    };
    let pki = make_pki();
    let (cert, key, ca) = (
        pki.path("server.pem"),
        pki.path("server-key.pem"),
        pki.path("ca.pem"),
    );
    let (leaf_port, ws_port, wss_port, client_port) =
        (free_port(), free_port(), free_port(), free_port());
    let plain_hub = Server::with_config_of(
        program,
        &format!(
            "server_name: hub\nlisten: \"127.0.0.1:{client_port}\"\nwebsocket {{ listen: \"127.0.0.1:{ws_port}\", no_tls: true, compression: true }}\nleafnodes {{ listen: \"127.0.0.1:{leaf_port}\" }}\n"
        ),
        &[],
    );
    for extra in ["", ", ws_no_masking: true", ", ws_compression: true"] {
        let Some(edge) = edge(
            target,
            &format!("url: \"ws://127.0.0.1:{ws_port}\"{extra}"),
            "",
        ) else {
            return;
        };
        let _clients = check_traffic(&plain_hub, &edge);
    }
    drop(plain_hub);
    let tls_hub = Server::with_config_of(
        program,
        &format!(
            "server_name: hub\nlisten: \"127.0.0.1:-1\"\nwebsocket {{ listen: \"127.0.0.1:{wss_port}\", tls {{ cert_file: \"{cert}\", key_file: \"{key}\" }} }}\nleafnodes {{ listen: \"127.0.0.1:-1\" }}\n"
        ),
        &[],
    );
    let Some(edge) = edge(
        target,
        &format!("url: \"wss://localhost:{wss_port}\", tls {{ ca_file: \"{ca}\" }}"),
        "",
    ) else {
        return;
    };
    let _clients = check_traffic(&tls_hub, &edge);
}
on_both!(edge_over_websocket);

/// Two natsws processes share one WebSocket port (`reuse_port`), each a leaf of the same
/// hub: a browser-like client on one receives what a client on the other publishes.
#[test]
fn two_edges_share_the_websocket_port_through_the_hub() {
    let Some(hub) = Hub::start("") else {
        return;
    };
    let ws_port = free_port();
    let start = |name: &str| {
        edge(
            Target::Natsws,
            &format!("url: \"nats://127.0.0.1:{}\"", hub.leaf_port),
            &format!(
                "server_name: {name}\nwebsocket {{ listen: \"127.0.0.1:{ws_port}\", no_tls: true, reuse_port: true }}\n"
            ),
        )
        .expect("natsws")
    };
    // `edge` already names the server `edge`; the second `server_name` wins in both.
    let one = start("edge1");
    let two = start("edge2");
    hub.wait_leafz("two leafs", |v| v["leafnodes"] == 2);
    // Connections spread over both processes; keep one client of each.
    let mut clients: std::collections::HashMap<String, common::RawWs> = Default::default();
    for _ in 0..64 {
        if clients.len() == 2 {
            break;
        }
        let mut ws = common::RawWs::upgraded(ws_port, "");
        let info = ws.read_until("\r\n");
        let name = ["edge1", "edge2"]
            .into_iter()
            .find(|n| info.contains(&format!("\"server_name\":\"{n}\"")))
            .expect("an edge's INFO")
            .to_owned();
        clients.entry(name).or_insert(ws);
    }
    assert_eq!(clients.len(), 2, "every connection went to one process");
    let mut sub = clients.remove("edge1").unwrap();
    let mut publisher = clients.remove("edge2").unwrap();
    sub.send(b"CONNECT {\"verbose\":false}\r\nSUB across 1\r\nPING\r\n");
    sub.read_until("PONG\r\n");
    publisher.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
    publisher.read_until("PONG\r\n");
    let deadline = Instant::now() + WAIT;
    // The subscription reaches the hub and from there the other edge; publish until it does.
    loop {
        publisher.send(b"PUB across 2\r\nhi\r\n");
        sub.stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        if let Some(frame) = sub.frame()
            && String::from_utf8_lossy(&frame.payload).contains("MSG across 1 2")
        {
            break;
        }
        assert!(Instant::now() < deadline, "nothing crossed");
    }
    drop((one, two));
}

/// A reload keeps the leafnode port and its links: the INFO still names the leafnode URL and
/// messages still cross.
#[test]
fn reload_keeps_leaf_links() {
    let Some(leaf_program) = reference_server() else {
        return;
    };
    let leaf_port = free_port();
    let conf = format!(
        "server_name: hub\nlisten: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:-1\"\nleafnodes {{ listen: \"127.0.0.1:{leaf_port}\" }}\n"
    );
    let hub = Server::with_config(&conf, &[]);
    let leaf = Server::with_config_of(
        leaf_program,
        &format!(
            "server_name: spoke\nlisten: \"127.0.0.1:-1\"\nleafnodes {{ reconnect: 1, remotes: [ {{ url: \"nats://127.0.0.1:{leaf_port}\" }} ] }}\n"
        ),
        &[],
    );
    drop(check_traffic(&hub, &leaf));
    hub.reload(&format!("{conf}max_payload: 100000\n"), 1);
    assert!(hub.log_text().contains("Reloaded server configuration"));
    let mut c = Raw::connect(leaf_port);
    let info = c.line();
    assert!(
        info.contains(&format!("\"leafnode_urls\":[\"127.0.0.1:{leaf_port}\"]")),
        "{info}"
    );
    assert!(info.contains(&format!("\"port\":{leaf_port}")), "{info}");
    let _clients = check_traffic(&hub, &leaf);
}

/// A hub that asks for everything and then stops reading: what the edge owes it is bounded by
/// `max_pending`, the link is cut as a slow consumer, and local clients are unharmed.
#[test]
fn hub_that_stops_reading_is_cut_at_max_pending() {
    let hub = FakeHub::start(|mut s| {
        let _ = std::io::Write::write_all(&mut s, FAKE_INFO.as_bytes());
        let mut r = std::io::BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut r, &mut line);
        let _ = std::io::Write::write_all(
            &mut s,
            b"INFO {\"connect_info\":true,\"leafnode_urls\":[]} \r\nLS+ >\r\n",
        );
        // Never read again.
        std::thread::sleep(Duration::from_secs(20));
    });
    let Some(edge) = edge(
        Target::Natsws,
        &format!("url: \"nats://127.0.0.1:{}\"", hub.port),
        "max_pending: 1MB\nwrite_deadline: \"30s\"",
    ) else {
        return;
    };
    edge.wait_log("Leafnode connection created");
    let mut publisher = Raw::connected(edge.nats_port(), "");
    let payload = "x".repeat(60_000);
    let deadline = Instant::now() + WAIT;
    while !edge.log_text().contains("Slow Consumer Detected") {
        for _ in 0..20 {
            publisher.send(&format!("PUB big {}\r\n{payload}\r\n", payload.len()));
        }
        publisher.send("PING\r\n");
        publisher.read_until("PONG\r\n");
        assert!(Instant::now() < deadline, "never cut: {}", edge.log_text());
    }
    edge.wait_log("Leafnode connection closed: Slow Consumer (Pending Bytes)");
    // The publisher is still served.
    publisher.send("SUB local 1\r\nPUB local 1\r\nx\r\n");
    publisher.read_until("MSG local 1 1\r\n");
}

/// A hub that keeps reading but far slower than a local publisher can send: the edge
/// pauses the publisher while its link owes the hub more than half of `max_pending`
/// (nats-server's fast-producer stall) instead of cutting the link as a slow consumer, and
/// every message crosses once, in order. Without the stall the link is cut within
/// milliseconds (the flood is sixty times `max_pending`).
fn slow_hub_stalls_the_publisher_and_loses_nothing(target: Target) {
    const MESSAGES: usize = 16_000;
    const PAYLOAD: usize = 1024;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    let got = Arc::new(AtomicUsize::new(0));
    let cut = Arc::new(AtomicBool::new(false));
    let (hub_got, hub_cut) = (Arc::clone(&got), Arc::clone(&cut));
    let hub = FakeHub::start(move |mut s| {
        let _ = std::io::Write::write_all(&mut s, FAKE_INFO.as_bytes());
        let mut r = std::io::BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut r, &mut line);
        let _ = std::io::Write::write_all(
            &mut s,
            b"INFO {\"connect_info\":true,\"leafnode_urls\":[]} \r\nLS+ flood\r\n",
        );
        let mut payload = vec![0u8; PAYLOAD + 2];
        loop {
            line.clear();
            match std::io::BufRead::read_line(&mut r, &mut line) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
            if line.starts_with("PING") {
                let _ = std::io::Write::write_all(&mut s, b"PONG\r\n");
                continue;
            }
            if !line.starts_with("LMSG flood ") {
                continue;
            }
            assert_eq!(line, format!("LMSG flood {PAYLOAD}\r\n"));
            if std::io::Read::read_exact(&mut r, &mut payload).is_err() {
                break;
            }
            let n = hub_got.fetch_add(1, SeqCst) + 1;
            // The n-th message carries n in its first bytes.
            let seq: usize = String::from_utf8_lossy(payload.get(..8).unwrap_or_default())
                .trim()
                .parse()
                .unwrap_or(0);
            assert_eq!(seq, n, "out of order or duplicated");
            if n % 16 == 0 {
                // About 16 MB/s at most.
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        hub_cut.store(true, SeqCst);
    });
    let Some(edge) = edge(
        target,
        &format!("url: \"nats://127.0.0.1:{}\"", hub.port),
        "max_pending: 256KB\nmax_payload: 64KB",
    ) else {
        return;
    };
    edge.wait_log("Leafnode connection created");
    let v = wait_json(&edge, "/leafz?subs=1", "the hub's LS+ flood", |v| {
        leafz_has(v, "flood")
    });
    assert_eq!(v["leafnodes"], 1);
    let mut publisher = Raw::connected(edge.nats_port(), "");
    let message = |n: usize| {
        let body = format!("{n:<8}{}", "m".repeat(PAYLOAD - 8));
        format!("PUB flood {PAYLOAD}\r\n{body}\r\n")
    };
    let mut sent = 0;
    let mut batch = String::new();
    while sent < MESSAGES {
        sent += 1;
        batch.push_str(&message(sent));
        if sent % 100 == 0 || sent == MESSAGES {
            publisher.send(&batch);
            batch.clear();
        }
    }
    publisher.send("PING\r\n");
    publisher.read_until("PONG\r\n");
    let deadline = Instant::now() + 3 * WAIT;
    while got.load(SeqCst) < MESSAGES {
        assert!(
            !cut.load(SeqCst),
            "the link was cut after {} messages: {}",
            got.load(SeqCst),
            edge.log_text()
        );
        assert!(Instant::now() < deadline, "messages still missing");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!edge.log_text().contains("Slow Consumer"));
}
on_both!(slow_hub_stalls_the_publisher_and_loses_nothing);

/// A JWT as `nsc` writes it: `{"typ":"JWT","alg":"ed25519-nkey"}`, the claims, and the
/// issuer's signature over both (unpadded base64url).
fn jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let claims = serde_json::json!({
        "jti": format!("J{}", name.to_uppercase()),
        "iat": 1_700_000_000,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let payload = b64.encode(claims.to_string());
    let signed = format!("{header}.{payload}");
    let sig = b64.encode(issuer.sign(signed.as_bytes()).unwrap());
    format!("{signed}.{sig}")
}

/// `credentials` in a remote: the edge sends the user JWT and signs the hub's nonce; an
/// operator-mode nats-server hub binds it to the JWT's account.
fn credentials_sign_the_nonce(target: Target) {
    use nkeys::{KeyPair, KeyPairType};
    let Some(program) = reference_server() else {
        return;
    };
    let operator = KeyPair::new_from_raw(KeyPairType::Operator, [1; 32]).unwrap();
    let account = KeyPair::new_from_raw(KeyPairType::Account, [2; 32]).unwrap();
    let user = KeyPair::new_from_raw(KeyPairType::User, [3; 32]).unwrap();
    let op_jwt = jwt(
        &operator,
        &operator.public_key(),
        "op",
        serde_json::json!({"type": "operator", "version": 2}),
    );
    let acc_jwt = jwt(
        &operator,
        &account.public_key(),
        "acc",
        serde_json::json!({"type": "account", "version": 2, "limits": {
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
            "wildcards": true, "conn": -1, "leaf": -1}}),
    );
    let user_jwt = jwt(
        &account,
        &user.public_key(),
        "leafuser",
        serde_json::json!({"type": "user", "version": 2, "pub": {}, "sub": {},
            "subs": -1, "data": -1, "payload": -1}),
    );
    let dir = temp_dir("creds");
    let op_path = common::write_file(&dir, "op.jwt", &op_jwt);
    let creds = format!(
        "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n************************* IMPORTANT *************************\nNKEY Seed printed below can be used to sign and prove identity.\n\n-----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        user.seed().unwrap()
    );
    let creds_path = common::write_file(&dir, "leaf.creds", &creds);
    let (http_port, leaf_port) = (free_port(), free_port());
    let hub = Server::with_config_of(
        program,
        &format!(
            "server_name: hub\nlisten: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:{http_port}\"\noperator: \"{op_path}\"\nresolver: MEMORY\nresolver_preload: {{ {}: \"{acc_jwt}\" }}\nleafnodes {{ listen: \"127.0.0.1:{leaf_port}\" }}\n",
            account.public_key()
        ),
        &[],
    );
    let Some(edge) = edge(
        target,
        &format!("url: \"nats://127.0.0.1:{leaf_port}\", credentials: \"{creds_path}\""),
        "",
    ) else {
        return;
    };
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, _, body) = common::http_get(http_port, "/leafz");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["leafnodes"] == 1 {
            assert_eq!(v["leafs"][0]["account"], account.public_key(), "{v}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no leaf: {v}\nhub: {}\nedge: {}",
            hub.log_text(),
            edge.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A seed that does not match the JWT is refused by the hub.
    let other = KeyPair::new_from_raw(KeyPairType::User, [4; 32]).unwrap();
    let bad = creds.replace(&user.seed().unwrap(), &other.seed().unwrap());
    let bad_path = common::write_file(&dir, "bad.creds", &bad);
    let Some(refused) = edge_of(
        target,
        &format!("url: \"nats://127.0.0.1:{leaf_port}\", credentials: \"{bad_path}\""),
    ) else {
        return;
    };
    refused.wait_log("Leafnode Error 'Authorization Violation'");
}
on_both!(credentials_sign_the_nonce);

/// Waits until `srv`'s monitoring `path` (JSON) satisfies `done`; returns it.
fn wait_json(
    srv: &Server,
    path: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, _, body) = srv.http_get(path);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if done(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never showed {what}: {body}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether any leaf connection in a `/leafz?subs=1` body holds interest in `subject`.
fn leafz_has(v: &serde_json::Value, subject: &str) -> bool {
    v["leafs"].as_array().is_some_and(|leafs| {
        leafs.iter().any(|l| {
            l["subscriptions_list"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s == subject))
        })
    })
}

/// The origin check: two nats-server leafs of one cluster (routes between them, the same
/// `cluster { name }`) are both leafs of the hub. Interest from leaf 1 reaches leaf 2 over the
/// route, so the hub must not advertise it to leaf 2 as well: a message published on leaf 2
/// would then cross both the route and the hub and arrive twice (nats-server
/// `server/leafnode.go` `updateLeafNodes` skips a leaf whose cluster is the sub's origin).
/// Leaf 2's own `/leafz?subs=1` shows what the hub sent it.
fn same_cluster_leafs_get_no_interest_from_each_other(target: Target) {
    let Some(leaf_program) = reference_server() else {
        return;
    };
    let Some((hub, leaf_port)) = hub_of(target, "") else {
        return;
    };
    let routes = [free_port(), free_port()];
    let spoke = |i: usize| {
        Server::with_config_of(
            leaf_program,
            &format!(
                "server_name: spoke{i}\nlisten: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:-1\"\n\
                 cluster {{ name: spokes, listen: \"127.0.0.1:{}\", routes: [ \"nats://127.0.0.1:{}\" ] }}\n\
                 leafnodes {{ reconnect: 1, remotes: [ {{ url: \"nats://127.0.0.1:{leaf_port}\" }} ] }}\n",
                routes[i - 1],
                routes[2 - i]
            ),
            &[],
        )
    };
    let (leaf1, leaf2) = (spoke(1), spoke(2));
    for leaf in [&leaf1, &leaf2] {
        wait_json(leaf, "/routez", "one route", |v| v["num_routes"] == 1);
        wait_json(leaf, "/leafz", "the hub", |v| v["leafnodes"] == 1);
    }
    wait_json(&hub, "/leafz", "two leafs", |v| v["leafnodes"] == 2);

    let mut sub = Raw::connected(leaf1.nats_port(), "SUB origin.x 1\r\n");
    wait_json(&hub, "/leafz?subs=1", "origin.x from leaf 1", |v| {
        leafz_has(v, "origin.x")
    });
    // A hub subscription made after the hub had leaf 1's interest: once leaf 2 holds it, the
    // hub has sent leaf 2 everything it was going to send for origin.x.
    let _marker = Raw::connected(hub.nats_port(), "SUB origin.marker 1\r\n");
    let v = wait_json(&leaf2, "/leafz?subs=1", "origin.marker from the hub", |v| {
        leafz_has(v, "origin.marker")
    });
    assert!(
        !leafz_has(&v, "origin.x"),
        "the hub advertised leaf 1's interest to leaf 2 of the same cluster: {v}"
    );

    // Leaf 2 reaches the subscriber over the route (once that interest is there), and only so.
    let mut publisher = Raw::connected(leaf2.nats_port(), "");
    publish_until_received(&mut publisher, &mut sub, "origin.x");
    drain(&mut sub);
    publisher.send("PUB origin.x 4\r\nonce\r\nPING\r\n");
    publisher.read_until("PONG\r\n");
    std::thread::sleep(Duration::from_millis(500));
    let got = drain(&mut sub);
    assert_eq!(got.matches("MSG origin.x 1 4\r\nonce").count(), 1, "{got}");
}
on_both!(same_cluster_leafs_get_no_interest_from_each_other);
