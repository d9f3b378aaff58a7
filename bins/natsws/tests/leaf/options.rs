//! `leafnodes` options on either side of a link, each run against natsws and nats-server
//! from the same config: client certificates, `insecure`, `min_version`, `advertise` and
//! bcrypt passwords.

use std::time::Duration;

use super::{Hub, check_traffic, edge_of, hub_of};
use crate::common::pki::make_pki;
use crate::common::{Raw, Server, Target, on_both, reference_server};

/// A nats-server leaf of the hub on `leaf_port` with `remote` as its remote's body.
fn reference_leaf(remote: &str) -> Option<Server> {
    let program = reference_server()?;
    Some(Server::with_config_of(
        program,
        &format!(
            "server_name: spoke\nlisten: \"127.0.0.1:-1\"\nleafnodes {{ reconnect: 1, remotes: [ {{ {remote} }} ] }}\n"
        ),
        &[],
    ))
}

/// `/leafz` of a server that is `target`.
fn leafz(srv: &Server) -> serde_json::Value {
    serde_json::from_str(&srv.http_get("/leafz").2).expect("leafz json")
}

fn wait_leafnodes(srv: &Server, n: u64) {
    let deadline = std::time::Instant::now() + crate::common::WAIT;
    loop {
        let v = leafz(srv);
        if v["leafnodes"] == n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never {n} leafnodes: {v}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A nats-server hub that verifies its leafs' certificates (`leafnodes { tls { verify: true,
/// ca_file } }`): the edge's remote presents `tls { cert_file, key_file }` and is accepted;
/// without them the hub's handshake fails and no leaf connects.
fn edge_presents_a_client_certificate(target: Target) {
    let pki = make_pki();
    let (cert, key, ca) = (
        pki.path("server.pem"),
        pki.path("server-key.pem"),
        pki.path("ca.pem"),
    );
    let (client_cert, client_key) = (pki.path("client.pem"), pki.path("client-key.pem"));
    let Some(hub) = Hub::start(&format!(
        "tls {{ cert_file: \"{cert}\", key_file: \"{key}\", ca_file: \"{ca}\", verify: true }}"
    )) else {
        return;
    };
    let Some(edge) = edge_of(
        target,
        &format!(
            "url: \"tls://localhost:{}\", tls {{ ca_file: \"{ca}\", cert_file: \"{client_cert}\", key_file: \"{client_key}\" }}",
            hub.leaf_port
        ),
    ) else {
        return;
    };
    hub.wait_connected();
    let mut on_edge = Raw::connected(edge.nats_port(), "SUB signed 1\r\n");
    hub.wait_sub("signed");
    let mut on_hub = Raw::connected(hub.client_port, "PUB signed 2\r\nok\r\n");
    on_hub.send("PING\r\n");
    on_hub.read_until("PONG\r\n");
    assert_eq!(on_edge.line(), "MSG signed 1 2\r\n");
    drop(edge);
    hub.wait_leafz("no leaf", |v| v["leafnodes"] == 0);
    assert!(!hub.server.log_text().contains("handshake error"));
    let Some(_anonymous) = edge_of(
        target,
        &format!(
            "url: \"tls://localhost:{}\", tls {{ ca_file: \"{ca}\" }}",
            hub.leaf_port
        ),
    ) else {
        return;
    };
    // nats-server: "TLS leafnode handshake error: tls: client didn't provide a certificate".
    hub.server.wait_log("handshake error");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(hub.leafz()["leafnodes"], 0);
}
on_both!(edge_presents_a_client_certificate);

/// A hub that is `target` with `leafnodes { tls { verify: true, ca_file } }` requires a
/// certificate of its leafs: a nats-server leaf presenting one is accepted, one without is
/// refused in the handshake.
fn hub_verifies_leaf_certificates(target: Target) {
    let pki = make_pki();
    let (cert, key, ca) = (
        pki.path("server.pem"),
        pki.path("server-key.pem"),
        pki.path("ca.pem"),
    );
    let (client_cert, client_key) = (pki.path("client.pem"), pki.path("client-key.pem"));
    let Some((hub, leaf_port)) = hub_of(
        target,
        &format!(
            "tls {{ cert_file: \"{cert}\", key_file: \"{key}\", ca_file: \"{ca}\", verify: true }}"
        ),
    ) else {
        return;
    };
    let Some(leaf) = reference_leaf(&format!(
        "url: \"tls://localhost:{leaf_port}\", tls {{ ca_file: \"{ca}\", cert_file: \"{client_cert}\", key_file: \"{client_key}\" }}"
    )) else {
        return;
    };
    let clients = check_traffic(&hub, &leaf);
    drop(clients);
    drop(leaf);
    wait_leafnodes(&hub, 0);
    assert!(!hub.log_text().contains("handshake error"));
    let Some(_anonymous) = reference_leaf(&format!(
        "url: \"tls://localhost:{leaf_port}\", tls {{ ca_file: \"{ca}\" }}"
    )) else {
        return;
    };
    hub.wait_log("handshake error");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(leafz(&hub)["leafnodes"], 0);
}
on_both!(hub_verifies_leaf_certificates);

/// `tls { insecure: true }` on a remote: the hub's certificate is not verified (here it
/// chains to a CA the edge does not know), the link comes up, and the edge, which has a
/// leafnode port, warns as nats-server does.
fn insecure_remote_skips_hub_verification(target: Target) {
    let pki = make_pki();
    let (cert, key) = (pki.path("server.pem"), pki.path("server-key.pem"));
    let Some(hub) = Hub::start(&format!(
        "tls {{ cert_file: \"{cert}\", key_file: \"{key}\" }}"
    )) else {
        return;
    };
    let other_ca = make_pki().path("ca.pem");
    let Some(edge) = target.with_config(
        &format!(
            "server_name: edge\nlisten: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:-1\"\nleafnodes {{ listen: \"127.0.0.1:-1\", reconnect: 1\nremotes: [ {{ url: \"tls://localhost:{}\", tls {{ ca_file: \"{other_ca}\", insecure: true }} }} ] }}\n",
            hub.leaf_port
        ),
        &[],
    ) else {
        return;
    };
    hub.wait_connected();
    let mut on_edge = Raw::connected(edge.nats_port(), "SUB unverified 1\r\n");
    hub.wait_sub("unverified");
    let mut on_hub = Raw::connected(hub.client_port, "PUB unverified 2\r\nok\r\n");
    on_hub.send("PING\r\n");
    on_hub.read_until("PONG\r\n");
    assert_eq!(on_edge.line(), "MSG unverified 1 2\r\n");
    let log = edge.log_text();
    assert!(
        log.contains("[WRN] TLS certificate chain and hostname of solicited leafnodes will not be verified. DO NOT USE IN PRODUCTION!"),
        "{log}"
    );
}
on_both!(insecure_remote_skips_hub_verification);

/// What `target` prints when it refuses to start with `conf`.
fn start_error(target: Target, conf: &str) -> Option<String> {
    let program = target.program()?;
    let dir = crate::common::temp_dir("leafconf");
    let path = dir.join("s.conf");
    std::fs::write(&path, conf).unwrap();
    let out = std::process::Command::new(program)
        .arg("-c")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{program} started with {conf}");
    Some(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// `leafnodes { min_version }` on a hub that is `target`: a nats-server 2.9.10 leaf is
/// accepted at `2.9.0`, and at `2.10.0` gets nats-server's `-ERR`, is never a leaf of the
/// hub and is closed after the hold as `Minimum Version Required`; `target` as the edge of
/// such a nats-server hub logs its error. Versions nats-server
/// cannot read, or below 2.8.0, are refused at start-up.
fn min_version_refuses_older_leafs(target: Target) {
    let Some((hub, leaf_port)) = hub_of(target, "min_version: \"2.9.0\"") else {
        return;
    };
    let Some(leaf) = reference_leaf(&format!("url: \"nats://127.0.0.1:{leaf_port}\"")) else {
        return;
    };
    let clients = check_traffic(&hub, &leaf);
    drop(clients);
    drop(leaf);
    drop(hub);
    let Some((hub, leaf_port)) = hub_of(target, "min_version: \"2.10.0\"") else {
        return;
    };
    let Some(leaf) = reference_leaf(&format!("url: \"nats://127.0.0.1:{leaf_port}\"")) else {
        return;
    };
    let text = "connection rejected since minimum version required is \"2.10.0\"";
    leaf.wait_log(&format!("Leafnode Error '{text}'"));
    let log = hub.wait_log(text);
    assert!(log.contains("[ERR] "), "{log}");
    // Held until closed, never a leaf the hub serves.
    assert_eq!(leafz(&hub)["leafnodes"], 0);
    hub.wait_log("Leafnode connection closed: Minimum Version Required account: $G");
    // `target` as the refused edge of a nats-server hub logs the hub's error.
    let Some(ref_hub) = Hub::start("min_version: \"2.10.0\"") else {
        return;
    };
    let Some(edge) = edge_of(
        target,
        &format!("url: \"nats://127.0.0.1:{}\"", ref_hub.leaf_port),
    ) else {
        return;
    };
    edge.wait_log(&format!("Leafnode Error '{text}'"));
    assert_eq!(ref_hub.leafz()["leafnodes"], 0);
    for (version, err) in [
        ("abc", "invalid leafnode's minimum version: invalid semver"),
        ("2.7.9", "the minimum version should be at least 2.8.0"),
    ] {
        let Some(out) = start_error(
            target,
            &format!(
                "listen: \"127.0.0.1:-1\"\nleafnodes {{ listen: \"127.0.0.1:-1\", min_version: \"{version}\" }}\n"
            ),
        ) else {
            return;
        };
        assert!(out.contains(err), "{version}: {out}");
    }
}
on_both!(min_version_refuses_older_leafs);

/// The INFO a connection to the leafnode port `port` is greeted with.
fn leaf_port_info(port: u16) -> serde_json::Value {
    let mut raw = Raw::connect(port);
    let line = raw.line();
    let json = line.strip_prefix("INFO ").expect("INFO");
    serde_json::from_str(json.trim()).expect("INFO json")
}

/// `leafnodes { advertise }` on a hub that is `target`: accepted leafs are given the
/// advertised address as the INFO's `host`, `port`, `ip` and `leafnode_urls`, a host alone takes
/// the leafnode port, and the hub logs it; without it (with `no_advertise` too, which only
/// concerns cluster peers) the listener's address is given. An address nats-server cannot
/// read stops it at start-up with its fatal error.
fn advertise_is_the_leafnode_url(target: Target) {
    for (advertise, host, port) in [
        ("leafs.example.com:4242", "leafs.example.com", Some(4242)),
        ("10.1.2.3", "10.1.2.3", None),
        ("[::1]", "::1", None),
    ] {
        let Some((hub, leaf_port)) = hub_of(target, &format!("advertise: \"{advertise}\"")) else {
            return;
        };
        let port = port.unwrap_or(leaf_port);
        let info = leaf_port_info(leaf_port);
        let url = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        assert_eq!(info["host"], host, "{info}");
        assert_eq!(info["port"], port, "{info}");
        assert_eq!(info["leafnode_urls"], serde_json::json!([url]), "{info}");
        assert_eq!(info["ip"], url, "{info}");
        hub.wait_log(&format!(
            "[INF] Advertise address for leafnode is set to {url}"
        ));
        let varz: serde_json::Value = serde_json::from_str(&hub.http_get("/varz").2).unwrap();
        assert_eq!(varz["leaf"]["host"], "127.0.0.1", "{varz}");
        assert_eq!(varz["leaf"]["port"], leaf_port, "{varz}");
    }
    for extra in ["", "no_advertise: true"] {
        let Some((_hub, leaf_port)) = hub_of(target, extra) else {
            return;
        };
        let info = leaf_port_info(leaf_port);
        assert_eq!(info["host"], "127.0.0.1", "{info}");
        assert_eq!(info["ip"], format!("127.0.0.1:{leaf_port}"), "{info}");
        assert_eq!(
            info["leafnode_urls"],
            serde_json::json!([format!("127.0.0.1:{leaf_port}")]),
            "{extra}: {info}"
        );
    }
    // Without advertise, an any-address listener is given as the first global unicast
    // address (`getNonLocalIPsIfHostIsIPAny`), never loopback; as configured without one.
    let leaf_port = crate::common::free_port();
    let Some(_hub) = target.with_config(
        &format!("listen: \"127.0.0.1:-1\"\nleafnodes {{ listen: \"0.0.0.0:{leaf_port}\" }}\n"),
        &[],
    ) else {
        return;
    };
    let info = leaf_port_info(leaf_port);
    let host = info["host"].as_str().expect("host").to_owned();
    let ip: std::net::IpAddr = host.parse().expect("an address");
    assert!(!ip.is_loopback(), "{info}");
    assert_eq!(
        info["leafnode_urls"],
        serde_json::json!([std::net::SocketAddr::new(ip, leaf_port).to_string()]),
        "{info}"
    );
    for (advertise, err) in [
        ("a:b:c", "address a:b:c: too many colons in address"),
        ("h:x", "strconv.Atoi: parsing \"x\": invalid syntax"),
    ] {
        let Some(out) = start_error(
            target,
            &format!(
                "listen: \"127.0.0.1:-1\"\nleafnodes {{ listen: \"127.0.0.1:-1\", advertise: \"{advertise}\" }}\n"
            ),
        ) else {
            return;
        };
        assert!(
            out.contains(&format!(
                "Error setting leafnode INFO with LeafNode.Advertise value of {advertise}, err={err}"
            )),
            "{advertise}: {out}"
        );
    }
}
on_both!(advertise_is_the_leafnode_url);

/// bcrypt passwords in `leafnodes { authorization }` on a hub that is `target`, for one of
/// the `users` and for the single user: a nats-server leaf with the password is accepted
/// (bound to the user's account), one with another is refused with nats-server's error.
fn bcrypt_leaf_passwords(target: Target) {
    let hash = bcrypt::hash("s3cret", 6).unwrap();
    for (auth, account) in [
        (
            format!(
                "authorization {{ users: [ {{ user: leaf, password: \"{hash}\", account: A }} ] }}"
            ),
            "A",
        ),
        (
            format!("authorization {{ user: leaf, password: \"{hash}\" }}"),
            "$G",
        ),
    ] {
        let leaf_port = crate::common::free_port();
        let Some(hub) = target.with_config(
            &format!(
                "server_name: hub\nlisten: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:-1\"\naccounts {{ A {{}} }}\nleafnodes {{ listen: \"127.0.0.1:{leaf_port}\"\n{auth}\n}}\n"
            ),
            &[],
        ) else {
            return;
        };
        let Some(leaf) = reference_leaf(&format!(
            "url: \"nats://leaf:s3cret@127.0.0.1:{leaf_port}\""
        )) else {
            return;
        };
        wait_leafnodes(&hub, 1);
        assert_eq!(leafz(&hub)["leafs"][0]["account"], account);
        leaf.wait_log("Leafnode connection created");
        let Some(refused) =
            reference_leaf(&format!("url: \"nats://leaf:wrong@127.0.0.1:{leaf_port}\""))
        else {
            return;
        };
        refused.wait_log("Leafnode Error 'Authorization Violation'");
        assert_eq!(leafz(&hub)["leafnodes"], 1);
    }
}
on_both!(bcrypt_leaf_passwords);

/// Whether any leaf connection in `srv`'s `/leafz?subs=1` holds interest in `subject`.
fn leafz_holds(srv: &Server, subject: &str) -> bool {
    let v: serde_json::Value =
        serde_json::from_str(&srv.http_get("/leafz?subs=1").2).expect("leafz json");
    v["leafs"].as_array().is_some_and(|leafs| {
        leafs.iter().any(|l| {
            l["subscriptions_list"]
                .as_array()
                .is_some_and(|subs| subs.iter().any(|s| s == subject))
        })
    })
}

fn wait_leafz_holds(srv: &Server, subject: &str) {
    let deadline = std::time::Instant::now() + crate::common::WAIT;
    while !leafz_holds(srv, subject) {
        assert!(
            std::time::Instant::now() < deadline,
            "/leafz never held {subject}: {}",
            srv.http_get("/leafz?subs=1").2
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `remotes [ { hub: true } ]` (`server/leafnode.go` `isSpokeLeafNode`): C <- A <- D, each
/// arrow a leaf link dialled by its tail. A is the spoke of its link to C, so C's interest
/// is interest A learned from a hub. On the link D dials, A is the hub unless D's remote says
/// `hub: true`, in which case A takes the spoke role and advertises to D only its own
/// clients' interest, not C's. A is `a` (it reads CONNECT `is_hub`), D is `d` (it sends it);
/// C is nats-server.
fn hub_remote_makes_the_accepting_side_the_spoke(a: Target, d: Target) {
    let Some(c_program) = reference_server() else {
        return;
    };
    let c_leaf = crate::common::free_port();
    let c = Server::with_config_of(
        c_program,
        &format!(
            "server_name: C\nlisten: \"127.0.0.1:-1\"\nleafnodes {{ listen: \"127.0.0.1:{c_leaf}\" }}\n"
        ),
        &[],
    );
    let _on_c = Raw::connected(c.nats_port(), "SUB from.c 1\r\n");
    let a_leaf = crate::common::free_port();
    let Some(a_srv) = a.with_config(
        &format!(
            "server_name: A\nlisten: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:-1\"\nleafnodes {{ listen: \"127.0.0.1:{a_leaf}\", reconnect: 1, remotes: [ {{ url: \"nats://127.0.0.1:{c_leaf}\" }} ] }}\n"
        ),
        &[],
    ) else {
        return;
    };
    wait_leafz_holds(&a_srv, "from.c");
    let mut on_a = Raw::connected(a_srv.nats_port(), "SUB from.a 1\r\n");
    for hub in [false, true] {
        let Some(d_srv) = d.with_config(
            &format!(
                "server_name: D\nlisten: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:-1\"\nleafnodes {{ reconnect: 1, remotes: [ {{ url: \"nats://127.0.0.1:{a_leaf}\", hub: {hub} }} ] }}\n"
            ),
            &[],
        ) else {
            return;
        };
        wait_leafz_holds(&d_srv, "from.a");
        if hub {
            // A's own client's interest arrived; C's is never sent.
            std::thread::sleep(Duration::from_millis(500));
            assert!(!leafz_holds(&d_srv, "from.c"), "hub: true");
        } else {
            wait_leafz_holds(&d_srv, "from.c");
        }
        let mut on_d = Raw::connected(d_srv.nats_port(), "PUB from.a 2\r\nhi\r\nPING\r\n");
        on_d.read_until("PONG\r\n");
        assert_eq!(on_a.line(), "MSG from.a 1 2\r\n", "hub: {hub}");
        assert_eq!(on_a.line(), "hi\r\n");
    }
}

mod hub_remote_makes_the_accepting_side_the_spoke {
    use crate::common::Target::{Natsws, Reference};

    #[test]
    fn natsws_both() {
        super::hub_remote_makes_the_accepting_side_the_spoke(Natsws, Natsws);
    }

    #[test]
    fn natsws_dials_nats_server() {
        super::hub_remote_makes_the_accepting_side_the_spoke(Reference, Natsws);
    }

    #[test]
    fn nats_server_dials_natsws() {
        super::hub_remote_makes_the_accepting_side_the_spoke(Natsws, Reference);
    }

    #[test]
    fn nats_server_both() {
        super::hub_remote_makes_the_accepting_side_the_spoke(Reference, Reference);
    }
}
