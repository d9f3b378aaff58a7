//! Leaf-node connections through the broker's API: the soliciting handshake, interest
//! propagation (`LS+`/`LS-`), `LMSG`/`HMSG` both ways, queue groups, loop detection and the
//! deny lists. Every expected line is nats-server 2.9.10's wire form.

use std::time::{Duration, Instant};

use crate::{
    Broker, ClientId, ClientParams, CloseReason, Config, ConnectionType, Event, LeafRemote,
};
use bytes::BytesMut;

const HUB_INFO: &str = "INFO {\"server_id\":\"NHUB\",\"server_name\":\"hub\",\"version\":\"2.9.10\",\"proto\":1,\"headers\":true,\"auth_required\":true,\"max_payload\":1048576,\"client_id\":5,\"nonce\":\"abc\",\"info_on_connect\":true,\"leafnode_urls\":[\"127.0.0.1:7422\"]} \r\n";
const CONNECT_INFO: &str = "INFO {\"server_id\":\"NHUB\",\"server_name\":\"hub\",\"client_id\":5,\"connect_info\":true,\"remote_account\":\"$G\",\"leafnode_urls\":[\"127.0.0.1:7422\"]} \r\n";

fn addr() -> core::net::SocketAddr {
    core::net::SocketAddr::from(([127, 0, 0, 1], 7422))
}

struct Harness {
    broker: Broker,
    now: Instant,
    events: Vec<Event>,
}

impl Harness {
    fn new() -> Self {
        let now = Instant::now();
        let config = Config {
            server_name: "edge".to_owned(),
            ..Config::default()
        };
        Self {
            broker: Broker::new(config, now),
            now,
            events: Vec::new(),
        }
    }

    fn drain_events(&mut self) {
        while let Some(ev) = self.broker.poll_event() {
            self.events.push(ev);
        }
        assert_eq!(self.broker.check_invariants(), Ok(()));
    }

    fn send(&mut self, id: ClientId, input: &str) {
        let mut buf = BytesMut::from(input.as_bytes());
        self.broker.handle_input(id, self.now, &mut buf);
        self.drain_events();
    }

    fn take(&mut self, id: ClientId) -> String {
        let mut buf = BytesMut::new();
        if let Some(q) = self.broker.outbound(id) {
            q.drain_into(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    fn client(&mut self) -> ClientId {
        let id = self.broker.register_client(
            self.now,
            ClientParams::new(ConnectionType::Standard, addr()),
        );
        self.send(id, "CONNECT {\"verbose\":false,\"headers\":true}\r\n");
        self.take(id);
        id
    }

    /// A soliciting leaf through its handshake; returns it and the `LS+` set it sent.
    fn leaf(&mut self, remote: LeafRemote) -> (ClientId, String) {
        let id = self.broker.register_leaf(
            self.now,
            ClientParams::new(ConnectionType::Leaf, addr()),
            remote,
        );
        self.drain_events();
        assert_eq!(self.take(id), "", "the hub speaks first");
        self.send(id, HUB_INFO);
        let connect = self.take(id);
        assert!(connect.starts_with("CONNECT {"), "{connect}");
        self.send(id, CONNECT_INFO);
        assert!(
            self.events.iter().any(
                |e| matches!(e, Event::LeafConnected { client, account, remote_name }
                    if *client == id && account == "$G" && remote_name == "hub")
            ),
            "{:?}",
            self.events
        );
        let set = self.take(id);
        (id, set)
    }

    fn closed(&self, id: ClientId) -> Option<CloseReason> {
        self.events.iter().find_map(|e| match e {
            Event::Closed { client, reason } if *client == id => Some(*reason),
            _ => None,
        })
    }
}

fn lds_of(set: &str) -> String {
    set.lines()
        .find_map(|l| l.strip_prefix("LS+ $LDS."))
        .map(|s| format!("$LDS.{s}"))
        .unwrap_or_default()
}

#[test]
fn soliciting_handshake_sends_connect_then_the_interest_set() {
    let mut h = Harness::new();
    let sub = h.client();
    h.send(sub, "SUB foo 1\r\nSUB bar q1 2\r\nSUB bar q1 3\r\n");
    let id = h.broker.register_leaf(
        h.now,
        ClientParams::new(ConnectionType::Leaf, addr()),
        LeafRemote {
            user: Some("leaf".to_owned()),
            password: Some("pw".to_owned()),
            deny_imports: vec!["private.>".to_owned()],
            ..LeafRemote::default()
        },
    );
    h.drain_events();
    h.send(id, HUB_INFO);
    let connect = h.take(id);
    let json: serde_json::Value =
        serde_json::from_str(connect.strip_prefix("CONNECT ").unwrap().trim_end()).unwrap();
    assert_eq!(json["user"], "leaf");
    assert_eq!(json["pass"], "pw");
    assert_eq!(json["name"], "edge");
    assert_eq!(json["cluster"], "edge");
    assert_eq!(json["headers"], true);
    assert_eq!(json["tls_required"], false);
    assert_eq!(json["deny_pub"], serde_json::json!(["private.>"]));
    assert!(
        json.get("lang").is_none(),
        "a lang field makes the hub see a client"
    );
    // Nothing flows until the INFO that answers CONNECT.
    h.send(sub, "SUB early 4\r\n");
    assert_eq!(h.take(id), "");
    h.send(id, CONNECT_INFO);
    let set = h.take(id);
    let mut lines: Vec<&str> = set.lines().collect();
    lines.sort_unstable();
    let lds = lds_of(&set);
    assert_eq!(lds.len(), "$LDS.".len() + 22, "{set}");
    assert_eq!(
        lines,
        vec![
            format!("LS+ {lds}").as_str(),
            "LS+ bar q1 2",
            "LS+ early",
            "LS+ foo"
        ]
    );
}

#[test]
fn a_client_port_is_the_wrong_port() {
    let mut h = Harness::new();
    let id = h.broker.register_leaf(
        h.now,
        ClientParams::new(ConnectionType::Leaf, addr()),
        LeafRemote::default(),
    );
    h.send(id, "INFO {\"server_id\":\"x\",\"client_id\":3} \r\n");
    assert_eq!(h.closed(id), Some(CloseReason::IncorrectPort));
    assert!(
        h.events
            .iter()
            .any(|e| matches!(e, Event::LeafError { text, .. }
        if text == "attempted to connect to wrong port"))
    );
}

#[test]
fn local_interest_is_advertised_once_per_subject_and_weighted_per_queue() {
    let mut h = Harness::new();
    let (leaf, _) = h.leaf(LeafRemote::default());
    let a = h.client();
    let b = h.client();
    h.send(a, "SUB foo 1\r\n");
    assert_eq!(h.take(leaf), "LS+ foo\r\n");
    h.send(b, "SUB foo 1\r\n");
    assert_eq!(h.take(leaf), "", "no duplicate LS+");
    h.send(a, "UNSUB 1\r\n");
    assert_eq!(h.take(leaf), "");
    h.send(b, "UNSUB 1\r\n");
    assert_eq!(h.take(leaf), "LS- foo\r\n");
    h.send(a, "SUB work g 2\r\n");
    h.send(b, "SUB work g 2\r\n");
    assert_eq!(h.take(leaf), "LS+ work g 1\r\nLS+ work g 2\r\n");
    h.send(a, "UNSUB 2\r\n");
    assert_eq!(h.take(leaf), "LS+ work g 1\r\n");
    // Closing a client withdraws its interest.
    h.broker.close_client(b, h.now, CloseReason::ClientClosed);
    h.drain_events();
    assert_eq!(h.take(leaf), "LS- work g\r\n");
}

#[test]
fn messages_cross_in_both_directions_with_replies_and_headers() {
    let mut h = Harness::new();
    let (leaf, _) = h.leaf(LeafRemote::default());
    let client = h.client();
    h.send(client, "SUB local 7\r\n");
    h.take(leaf);
    // Hub → here.
    h.send(leaf, "LMSG local 2\r\nhi\r\nLMSG local rep 2\r\nyo\r\n");
    assert_eq!(
        h.take(client),
        "MSG local 7 2\r\nhi\r\nMSG local 7 rep 2\r\nyo\r\n"
    );
    h.send(leaf, "HMSG local 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    assert_eq!(
        h.take(client),
        "HMSG local 7 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
    );
    // Here → hub, once the hub is interested.
    h.send(client, "PUB remote 2\r\nno\r\n");
    assert_eq!(h.take(leaf), "");
    h.send(leaf, "LS+ remote\r\nLS+ rem*\r\nLS+ >\r\n");
    h.send(client, "PUB remote r 2\r\nok\r\n");
    assert_eq!(h.take(leaf), "LMSG remote r 2\r\nok\r\n", "once per leaf");
    h.send(client, "HPUB remote 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    assert_eq!(h.take(leaf), "HMSG remote 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    h.send(leaf, "LS- >\r\nLS- rem*\r\nLS- remote\r\n");
    h.send(client, "PUB remote 2\r\nno\r\n");
    assert_eq!(h.take(leaf), "");
}

/// A JetStream push delivery over the leaf (`LMSG <deliver> $JS.ACK.…@<stream subject>`)
/// reaches clients with the stream subject and the bare ack reply; other leafs get it as it
/// came, and a reply that is not an ack, or has nothing after `@`, is not rewritten.
#[test]
fn jetstream_deliveries_are_given_their_stream_subject() {
    let mut h = Harness::new();
    let (hub, _) = h.leaf(LeafRemote::default());
    let (other, _) = h.leaf(LeafRemote::default());
    let client = h.client();
    h.send(client, "SUB deliver.a 3\r\n");
    h.send(other, "LS+ deliver.a\r\n");
    h.take(hub);
    h.take(other);
    h.send(
        hub,
        "LMSG deliver.a $JS.ACK.S.c.1.1.1.9.0@orders.one 1\r\nx\r\n",
    );
    assert_eq!(
        h.take(client),
        "MSG orders.one 3 $JS.ACK.S.c.1.1.1.9.0 1\r\nx\r\n"
    );
    assert_eq!(
        h.take(other),
        "LMSG deliver.a $JS.ACK.S.c.1.1.1.9.0@orders.one 1\r\nx\r\n"
    );
    h.send(hub, "LMSG deliver.a _INBOX.x@orders.one 1\r\ny\r\n");
    assert_eq!(
        h.take(client),
        "MSG deliver.a 3 _INBOX.x@orders.one 1\r\ny\r\n"
    );
    h.send(hub, "LMSG deliver.a $JS.ACK.S.c@ 1\r\nz\r\n");
    assert_eq!(h.take(client), "MSG deliver.a 3 $JS.ACK.S.c@ 1\r\nz\r\n");
}

/// Without JetStream here, JetStream is not extended over a leaf: its API and the KV and
/// object-store subjects are neither advertised nor sent (what arrives is not filtered,
/// as in nats-server: the other side only sends what was advertised).
#[test]
fn jetstream_subjects_do_not_cross_a_leaf() {
    let mut h = Harness::new();
    let (hub, _) = h.leaf(LeafRemote::default());
    let client = h.client();
    h.send(client, "SUB $KV.> 1\r\nSUB plain 2\r\n");
    let advertised = h.take(hub);
    assert!(!advertised.contains("$KV"), "{advertised}");
    assert!(advertised.contains("LS+ plain"), "{advertised}");
    h.send(hub, "LS+ $JS.API.>\r\nLS+ $OBJ.>\r\nLS+ other\r\n");
    h.send(
        client,
        "PUB $JS.API.INFO 0\r\n\r\nPUB $OBJ.b 0\r\n\r\nPUB other 0\r\n\r\n",
    );
    assert_eq!(h.take(hub), "LMSG other 0\r\n\r\n");
}

#[test]
fn a_leaf_message_never_goes_back_to_its_leaf() {
    let mut h = Harness::new();
    let (leaf, _) = h.leaf(LeafRemote::default());
    let client = h.client();
    h.send(client, "SUB echo 1\r\n");
    h.send(leaf, "LS+ echo\r\n");
    h.take(leaf);
    h.send(leaf, "LMSG echo 1\r\nx\r\n");
    assert_eq!(h.take(client), "MSG echo 1 1\r\nx\r\n");
    assert_eq!(h.take(leaf), "");
}

#[test]
fn queue_groups_prefer_local_members_and_name_the_group_otherwise() {
    let mut h = Harness::new();
    let (leaf, _) = h.leaf(LeafRemote::default());
    let client = h.client();
    h.send(leaf, "LS+ qq grp 3\r\n");
    let publisher = h.client();
    h.send(publisher, "PUB qq 1\r\nq\r\nPUB qq rep 1\r\nr\r\n");
    assert_eq!(
        h.take(leaf),
        "LMSG qq | grp 1\r\nq\r\nLMSG qq + rep grp 1\r\nr\r\n"
    );
    h.send(client, "SUB qq grp 1\r\n");
    h.take(leaf);
    for _ in 0..20 {
        h.send(publisher, "PUB qq 1\r\nq\r\n");
    }
    assert_eq!(h.take(leaf), "", "a local member takes every message");
    assert_eq!(h.take(client).matches("MSG qq 1 1").count(), 20);
    // From the leaf: a plain LMSG reaches no queue group, a named one reaches one member.
    h.send(leaf, "LMSG qq 1\r\nx\r\n");
    assert_eq!(h.take(client), "");
    h.send(
        leaf,
        "LMSG qq | other grp 1\r\ny\r\nLMSG qq + r grp 1\r\nz\r\n",
    );
    assert_eq!(h.take(client), "MSG qq 1 1\r\ny\r\nMSG qq 1 r 1\r\nz\r\n");
    h.send(leaf, "LMSG qq | other 1\r\nw\r\n");
    assert_eq!(h.take(client), "");
}

#[test]
fn leaf_queue_weights_add_up_and_interest_passes_between_leafs() {
    let mut h = Harness::new();
    // An accepted leaf (a leaf of this server) and a solicited one (to a hub).
    let accepted = h
        .broker
        .register_client(h.now, ClientParams::new(ConnectionType::Leaf, addr()));
    h.drain_events();
    let info = h.take(accepted);
    assert!(info.starts_with("INFO {"), "{info}");
    h.send(
        accepted,
        "CONNECT {\"server_id\":\"NLEAF\",\"name\":\"spoke\",\"cluster\":\"spoke\",\"headers\":true}\r\n",
    );
    let set = h.take(accepted);
    let (info, set) = set.split_once("\r\n").unwrap();
    assert!(info.starts_with("INFO {"), "{info}");
    let info: serde_json::Value =
        serde_json::from_str(info.trim_start_matches("INFO ").trim()).unwrap();
    assert_eq!(info["connect_info"], true);
    assert_eq!(info["remote_account"], "$G");
    assert!(set.starts_with("LS+ $LDS."), "{set}");
    let (hub, _) = h.leaf(LeafRemote::default());
    assert!(h.take(accepted).is_empty());
    // The spoke's interest goes on to the hub, weights included.
    h.send(accepted, "LS+ w g 3\r\nLS+ plain\r\n");
    assert_eq!(h.take(hub), "LS+ w g 3\r\nLS+ plain\r\n");
    h.send(accepted, "LS+ w g 5\r\n");
    assert_eq!(h.take(hub), "LS+ w g 5\r\n");
    // The hub's interest is not advertised to the hub's... but a hub gets its spokes'.
    h.send(hub, "LS+ fromhub\r\n");
    assert_eq!(h.take(accepted), "LS+ fromhub\r\n");
    // A message from the hub reaches the spoke, and the reverse.
    h.send(hub, "LMSG plain 1\r\na\r\n");
    assert_eq!(h.take(accepted), "LMSG plain 1\r\na\r\n");
    h.send(accepted, "LMSG fromhub 1\r\nb\r\n");
    assert_eq!(h.take(hub), "LMSG fromhub 1\r\nb\r\n");
    h.send(accepted, "LS- w g\r\n");
    assert_eq!(h.take(hub), "LS- w g\r\n");
    // A closed spoke withdraws all it advertised.
    h.broker
        .close_client(accepted, h.now, CloseReason::ClientClosed);
    h.drain_events();
    let mut gone: Vec<String> = h.take(hub).lines().map(str::to_owned).collect();
    gone.sort();
    assert!(gone.contains(&"LS- plain".to_owned()), "{gone:?}");
}

#[test]
fn a_spoke_does_not_pass_hub_interest_to_another_hub() {
    let mut h = Harness::new();
    let (hub_a, _) = h.leaf(LeafRemote::default());
    let (hub_b, _) = h.leaf(LeafRemote::default());
    h.send(hub_a, "LS+ only.a\r\n");
    assert_eq!(h.take(hub_b), "");
}

#[test]
fn its_own_loop_detection_subject_coming_back_is_a_loop() {
    let mut h = Harness::new();
    let (leaf, set) = h.leaf(LeafRemote::default());
    let lds = lds_of(&set);
    h.send(leaf, &format!("LS+ {lds}\r\n"));
    assert_eq!(
        h.take(leaf),
        "-ERR 'Loop detected for leafnode account=\"$G\". Delaying attempt to reconnect for 30s'\r\n"
    );
    assert_eq!(h.closed(leaf), Some(CloseReason::ProtocolViolation));
    assert!(
        h.events
            .iter()
            .any(|e| matches!(e, Event::LeafReconnectDelay { delay, .. }
        if *delay == Duration::from_secs(30)))
    );
    // Another server's loop-detection subject is ordinary interest.
    let (other, _) = h.leaf(LeafRemote::default());
    h.send(other, "LS+ $LDS.someoneelse\r\n");
    assert_eq!(h.closed(other), None);
}

#[test]
fn deny_lists_filter_both_directions() {
    let mut h = Harness::new();
    let (leaf, _) = h.leaf(LeafRemote {
        deny_imports: vec!["private.>".to_owned()],
        deny_exports: vec!["secret.*".to_owned()],
        ..LeafRemote::default()
    });
    let client = h.client();
    h.send(client, "SUB private.x 1\r\nSUB public 2\r\n");
    assert_eq!(h.take(leaf), "LS+ public\r\n");
    h.send(leaf, "LS+ secret.x\r\nLS+ >\r\n");
    h.send(client, "PUB secret.x 1\r\ns\r\nPUB open 1\r\no\r\n");
    assert_eq!(h.take(leaf), "LMSG open 1\r\no\r\n");
}

#[test]
fn the_hub_permissions_in_the_connect_info_apply() {
    let mut h = Harness::new();
    let id = h.broker.register_leaf(
        h.now,
        ClientParams::new(ConnectionType::Leaf, addr()),
        LeafRemote::default(),
    );
    h.drain_events();
    h.send(id, HUB_INFO);
    h.take(id);
    h.send(
        id,
        "INFO {\"connect_info\":true,\"import\":{\"allow\":[\"in.>\"]},\"export\":{\"deny\":[\"out.no\"]},\"leafnode_urls\":[]} \r\n",
    );
    h.take(id);
    let client = h.client();
    h.send(client, "SUB in.a 1\r\nSUB other 2\r\n");
    assert_eq!(h.take(id), "LS+ in.a\r\n");
    h.send(id, "LS+ out.>\r\n");
    h.send(client, "PUB out.no 1\r\nn\r\nPUB out.yes 1\r\ny\r\n");
    assert_eq!(h.take(id), "LMSG out.yes 1\r\ny\r\n");
}

#[test]
fn tls_asked_by_the_hub_holds_connect_until_the_handshake() {
    let mut h = Harness::new();
    let id = h.broker.register_leaf(
        h.now,
        ClientParams::new(ConnectionType::Leaf, addr()),
        LeafRemote::default(),
    );
    h.drain_events();
    let info = HUB_INFO.replace("\"headers\":true", "\"headers\":true,\"tls_required\":true");
    // Bytes after the INFO wait: they are TLS records.
    h.send(id, &info);
    assert!(h.events.contains(&Event::LeafStartTls(id)));
    assert_eq!(h.take(id), "");
    let mut rest = BytesMut::from(&b"\x16\x03\x01"[..]);
    h.broker.handle_input(id, h.now, &mut rest);
    assert_eq!(&rest[..], b"\x16\x03\x01");
    h.broker.leaf_tls_established(id, h.now);
    h.drain_events();
    let connect = h.take(id);
    assert!(connect.contains("\"tls_required\":true"), "{connect}");
}

#[test]
fn no_answer_to_connect_is_a_stale_leaf() {
    let mut h = Harness::new();
    let id = h.broker.register_leaf(
        h.now,
        ClientParams::new(ConnectionType::Leaf, addr()),
        LeafRemote::default(),
    );
    h.drain_events();
    h.send(id, HUB_INFO);
    h.take(id);
    let deadline = h.broker.poll_timeout().unwrap();
    assert!(deadline <= h.now + Duration::from_secs(2));
    h.broker.handle_timeout(h.now + Duration::from_secs(3));
    h.drain_events();
    assert_eq!(
        h.take(id),
        "-ERR 'Stale Leaf Node Connection - Closing'\r\n"
    );
    assert_eq!(h.closed(id), Some(CloseReason::StaleConnection));
}

#[test]
fn an_err_from_the_hub_is_reported_and_keeps_the_connection() {
    let mut h = Harness::new();
    let (leaf, _) = h.leaf(LeafRemote::default());
    h.send(
        leaf,
        "-ERR 'Permissions Violation for Subscription to \"x\"'\r\n",
    );
    assert_eq!(h.closed(leaf), None);
    assert!(
        h.events
            .iter()
            .any(|e| matches!(e, Event::LeafReconnectDelay { .. }))
    );
    h.send(leaf, "PING\r\n");
    assert_eq!(h.take(leaf), "PONG\r\n");
    h.send(leaf, "LS+ bad..subject\r\n");
    assert_eq!(h.take(leaf), "-ERR 'Invalid Subscription'\r\n");
    assert_eq!(h.closed(leaf), None);
    // A client operation on a leaf connection is a protocol error.
    h.send(leaf, "PUB x 1\r\nx\r\n");
    assert_eq!(h.closed(leaf), Some(CloseReason::ProtocolViolation));
}

#[test]
fn the_accepting_side_refuses_a_client_connect() {
    let mut h = Harness::new();
    let id = h
        .broker
        .register_client(h.now, ClientParams::new(ConnectionType::Leaf, addr()));
    h.drain_events();
    h.take(id);
    h.send(id, "CONNECT {\"lang\":\"go\",\"verbose\":false}\r\n");
    assert_eq!(
        h.take(id),
        "-ERR 'attempted to connect to leaf node port'\r\n"
    );
    assert_eq!(h.closed(id), Some(CloseReason::IncorrectPort));
}

#[test]
fn leafs_are_listed_with_their_subscriptions() {
    let mut h = Harness::new();
    let (leaf, _) = h.leaf(LeafRemote::default());
    h.send(leaf, "LS+ baz\r\nLS+ qq grp 3\r\nLS- baz\r\n");
    let leafs = h.broker.leafs();
    assert_eq!(leafs.len(), 1);
    assert_eq!(leafs[0].client, leaf);
    assert_eq!(leafs[0].account, "$G");
    assert_eq!(leafs[0].remote_name, "hub");
    assert!(leafs[0].solicited);
    assert_eq!(leafs[0].subscriptions, vec!["qq".to_owned()]);
}

#[test]
fn the_accepting_side_sends_the_leafnode_info_and_checks_leaf_users() {
    let now = Instant::now();
    let config = Config {
        server_name: "hub".to_owned(),
        leaf_urls: vec!["127.0.0.1:7422".to_owned()],
        leaf_auth: Some(crate::LeafAuthConfig {
            users: vec![crate::LeafUserConfig {
                username: "leaf".to_owned(),
                password: "pw".to_owned(),
                account: Some("A".to_owned()),
            }],
            account: None,
            timeout: None,
        }),
        accounts: vec![crate::AccountConfig {
            name: "A".to_owned(),
            ..crate::AccountConfig::default()
        }],
        ..Config::default()
    };
    let mut h = Harness {
        broker: Broker::new(config, now),
        now,
        events: Vec::new(),
    };
    let id = h
        .broker
        .register_client(now, ClientParams::new(ConnectionType::Leaf, addr()));
    h.drain_events();
    let info = h.take(id);
    let info: serde_json::Value =
        serde_json::from_str(info.trim_start_matches("INFO ").trim()).unwrap();
    assert_eq!(info["auth_required"], true);
    assert_eq!(info["info_on_connect"], true);
    assert_eq!(info["leafnode_urls"], serde_json::json!(["127.0.0.1:7422"]));
    assert!(info["client_id"].as_u64().unwrap() > 0);
    h.send(
        id,
        "CONNECT {\"user\":\"leaf\",\"pass\":\"bad\",\"name\":\"s\"}\r\n",
    );
    assert_eq!(h.take(id), "-ERR 'Authorization Violation'\r\n");
    assert_eq!(h.closed(id), Some(CloseReason::AuthenticationFailure));
    let good = h
        .broker
        .register_client(now, ClientParams::new(ConnectionType::Leaf, addr()));
    h.drain_events();
    h.take(good);
    h.send(
        good,
        "CONNECT {\"user\":\"leaf\",\"pass\":\"pw\",\"name\":\"s\"}\r\n",
    );
    let out = h.take(good);
    assert!(out.contains("\"remote_account\":\"A\""), "{out}");
    assert_eq!(h.broker.leafs()[0].account, "A");
    // A client in $G does not reach the leaf bound to A.
    let client = h.client();
    h.send(good, "LS+ foo\r\n");
    h.send(client, "PUB foo 1\r\nx\r\n");
    assert_eq!(h.take(good), "");
}

#[test]
fn credentials_send_the_jwt_and_sign_the_nonce() {
    let user = nkeys::KeyPair::new_from_raw(nkeys::KeyPairType::User, [7; 32]).unwrap();
    let mut h = Harness::new();
    let id = h.broker.register_leaf(
        h.now,
        ClientParams::new(ConnectionType::Leaf, addr()),
        LeafRemote {
            credentials: Some(crate::LeafCredentials {
                jwt: "a.b.c".to_owned(),
                seed: user.seed().unwrap(),
            }),
            ..LeafRemote::default()
        },
    );
    h.drain_events();
    h.send(id, HUB_INFO);
    let connect = h.take(id);
    let json: serde_json::Value =
        serde_json::from_str(connect.strip_prefix("CONNECT ").unwrap().trim_end()).unwrap();
    assert_eq!(json["jwt"], "a.b.c");
    use base64::Engine as _;
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(json["sig"].as_str().unwrap())
        .unwrap();
    // HUB_INFO's nonce.
    assert!(user.verify(b"abc", &sig).is_ok());
    assert!(
        !format!("{:?}", h.broker).contains(&user.seed().unwrap()),
        "seed in Debug"
    );
}

/// An accepted leaf with `CONNECT` naming `cluster`, its interest set drained.
fn accepted_leaf(h: &mut Harness, name: &str, cluster: &str) -> ClientId {
    let id = h
        .broker
        .register_client(h.now, ClientParams::new(ConnectionType::Leaf, addr()));
    h.drain_events();
    let _info = h.take(id);
    h.send(
        id,
        &format!(
            "CONNECT {{\"server_id\":\"N{name}\",\"name\":\"{name}\",\"cluster\":\"{cluster}\",\"headers\":true}}\r\n"
        ),
    );
    let set = h.take(id);
    assert!(set.contains("LS+ $LDS."), "{set}");
    id
}

#[test]
fn interest_from_a_leaf_is_not_advertised_to_leafs_of_its_own_cluster() {
    let mut h = Harness::new();
    let a1 = accepted_leaf(&mut h, "a1", "spoke");
    let a2 = accepted_leaf(&mut h, "a2", "spoke");
    let other = accepted_leaf(&mut h, "b", "other");
    // What a1 (cluster spoke) subscribes reaches the leaf of another cluster only.
    h.send(a1, "LS+ from.a1\r\nLS+ q.a1 g 2\r\n");
    assert_eq!(h.take(a2), "");
    assert_eq!(h.take(other), "LS+ from.a1\r\nLS+ q.a1 g 2\r\n");
    // The other cluster's interest reaches both leafs of cluster spoke.
    h.send(other, "LS+ from.b\r\n");
    assert_eq!(h.take(a1), "LS+ from.b\r\n");
    assert_eq!(h.take(a2), "LS+ from.b\r\n");
    // A loop-detection subject still crosses between leafs of one cluster.
    h.send(a1, "LS+ $LDS.a1\r\n");
    assert_eq!(h.take(a2), "LS+ $LDS.a1\r\n");
    assert_eq!(h.take(other), "LS+ $LDS.a1\r\n");
    // A leaf of cluster spoke that connects later is not given a1's interest, and its
    // withdrawals are not sent to a2 either.
    let a3 = accepted_leaf(&mut h, "a3", "spoke");
    h.send(a1, "LS- from.a1\r\n");
    assert_eq!(h.take(a2), "");
    assert_eq!(h.take(a3), "");
    assert_eq!(h.take(other), "LS- from.a1\r\n");
    // A client's interest goes to every leaf.
    let client = h.client();
    h.send(client, "SUB local 1\r\n");
    for leaf in [a1, a2, a3, other] {
        assert_eq!(h.take(leaf), "LS+ local\r\n");
    }
}

#[test]
fn a_new_leaf_is_not_given_interest_from_its_own_cluster() {
    let mut h = Harness::new();
    let a1 = accepted_leaf(&mut h, "a1", "spoke");
    h.send(a1, "LS+ from.a1\r\nLS+ $LDS.a1\r\n");
    let id = h
        .broker
        .register_client(h.now, ClientParams::new(ConnectionType::Leaf, addr()));
    h.drain_events();
    let _info = h.take(id);
    h.send(
        id,
        "CONNECT {\"server_id\":\"Na2\",\"name\":\"a2\",\"cluster\":\"spoke\",\"headers\":true}\r\n",
    );
    let set = h.take(id);
    assert!(!set.contains("from.a1"), "{set}");
    let id = h
        .broker
        .register_client(h.now, ClientParams::new(ConnectionType::Leaf, addr()));
    h.drain_events();
    let _info = h.take(id);
    h.send(
        id,
        "CONNECT {\"server_id\":\"Nb\",\"name\":\"b\",\"cluster\":\"other\",\"headers\":true}\r\n",
    );
    let set = h.take(id);
    assert!(set.contains("LS+ from.a1\r\n"), "{set}");
}

#[test]
fn an_imported_service_is_advertised_and_requests_from_the_hub_reach_it() {
    let now = Instant::now();
    let config = Config {
        server_name: "edge".to_owned(),
        accounts: vec![
            crate::AccountConfig {
                name: "A".to_owned(),
                exports: vec![crate::ExportConfig {
                    kind: crate::ExportKind::Service,
                    subject: "svc".to_owned(),
                    accounts: Vec::new(),
                    response_type: crate::ResponseType::Singleton,
                    response_threshold: None,
                    latency: None,
                }],
                ..crate::AccountConfig::default()
            },
            crate::AccountConfig {
                name: "B".to_owned(),
                imports: vec![crate::ImportConfig {
                    kind: crate::ExportKind::Service,
                    account: "A".to_owned(),
                    subject: "svc".to_owned(),
                    to: Some("b.svc".to_owned()),
                    prefix: None,
                    share: false,
                }],
                ..crate::AccountConfig::default()
            },
        ],
        ..Config::default()
    };
    let mut h = Harness {
        broker: Broker::new(config, now),
        now,
        events: Vec::new(),
    };
    let open = |h: &mut Harness, account: &str| {
        let id = h.broker.register_leaf(
            h.now,
            ClientParams::new(ConnectionType::Leaf, addr()),
            LeafRemote {
                account: Some(account.to_owned()),
                ..LeafRemote::default()
            },
        );
        h.drain_events();
        h.send(id, HUB_INFO);
        let connect = h.take(id);
        assert!(connect.starts_with("CONNECT {"), "{connect}");
        h.send(id, CONNECT_INFO);
        (id, h.take(id))
    };
    // The importing account's leaf advertises the import; the exporter's does not.
    let (importer, set) = open(&mut h, "B");
    assert!(set.contains("LS+ b.svc\r\n"), "{set}");
    let (exporter, set) = open(&mut h, "A");
    assert!(!set.contains("svc"), "{set}");
    // A responder on the exporter's side, a requester on the importer's.
    h.send(exporter, "LS+ svc\r\n");
    h.send(importer, "LS+ _INBOX.r\r\n");
    h.send(importer, "LMSG b.svc _INBOX.r 2\r\nhi\r\n");
    let request = h.take(exporter);
    assert!(request.starts_with("HMSG svc _R_."), "{request}");
    assert!(request.ends_with("hi\r\n"), "{request}");
    let reply = request
        .split(' ')
        .nth(2)
        .expect("a reply subject")
        .to_owned();
    h.send(exporter, &format!("LMSG {reply} 3\r\nyes\r\n"));
    assert_eq!(h.take(importer), "LMSG _INBOX.r 3\r\nyes\r\n");
}

/// nats-server stalls only client producers: a leaf delivering to a client that fell behind
/// goes on (the client is cut at `max_pending` instead), while a client publishing to a leaf
/// that fell behind waits for it (`server/client.go` `deliverMsg`, `c.kind == CLIENT`).
#[test]
fn only_client_producers_are_stalled_and_a_lagging_leaf_stalls_them() {
    let mut h = Harness::new();
    let (leaf, _) = h.leaf(LeafRemote::default());
    let half = h.broker.config().limits.max_pending / 2;
    let client = h.client();
    h.send(client, "SUB local 7\r\n");
    h.take(leaf);
    let payload = "x".repeat(64 * 1024);
    let lmsg = format!("LMSG local {}\r\n{payload}\r\n", payload.len());
    let mut owed = 0;
    while owed <= half {
        h.send(leaf, &lmsg);
        owed = h.broker.outbound(client).map_or(0, |q| q.len());
    }
    h.send(leaf, &lmsg);
    assert!(!h.broker.is_stalled(leaf), "a leaf is never stalled");
    h.take(client);

    h.send(leaf, "LS+ remote\r\n");
    let publish = format!("PUB remote {}\r\n{payload}\r\n", payload.len());
    let mut owed = 0;
    while owed <= half {
        h.send(client, &publish);
        owed = h.broker.outbound(leaf).map_or(0, |q| q.len());
    }
    assert!(!h.broker.is_stalled(client));
    let mut input = BytesMut::from(publish.repeat(2).as_bytes());
    h.broker.handle_input(client, h.now, &mut input);
    assert!(h.broker.is_stalled(client), "the leaf owes more than half");
    assert_eq!(input.len(), publish.len(), "one message waits");
    h.drain_events();
    h.take(leaf);
    h.broker.handle_flushed(leaf, h.now);
    h.drain_events();
    assert!(
        h.events
            .iter()
            .any(|e| matches!(e, Event::Resumed { client: c, timed_out: None } if *c == client))
    );
    assert!(!h.broker.is_stalled(client));
}

#[test]
fn an_older_leaf_is_refused_held_and_closed_after_the_hold() {
    let now = Instant::now();
    let config = Config {
        server_name: "hub".to_owned(),
        leaf_min_version: Some("2.10.0".to_owned()),
        ..Config::default()
    };
    let mut h = Harness {
        broker: Broker::new(config, now),
        now,
        events: Vec::new(),
    };
    let client = h.client();
    h.send(client, "SUB foo 1\r\n");
    for (version, refused) in [("2.9.10", true), ("", true), ("2.10.1", false)] {
        let id = h
            .broker
            .register_client(h.now, ClientParams::new(ConnectionType::Leaf, addr()));
        h.drain_events();
        h.take(id);
        h.send(
            id,
            &format!("CONNECT {{\"version\":\"{version}\",\"name\":\"s\",\"headers\":true}}\r\n"),
        );
        let out = h.take(id);
        assert!(out.starts_with("INFO {"), "{out}");
        assert!(out.contains("\"connect_info\":true"), "{out}");
        if !refused {
            assert!(out.contains("LS+ foo\r\n"), "{out}");
            assert_eq!(h.broker.leafs().len(), 1);
            continue;
        }
        assert!(
            out.ends_with(
                "-ERR 'connection rejected since minimum version required is \"2.10.0\"'\r\n"
            ),
            "{out}"
        );
        assert!(!out.contains("LS+"), "{out}");
        assert!(h.broker.leafs().is_empty());
        // Held: what it sends is not read, nothing is delivered to it.
        h.send(id, "LS+ bar\r\nLMSG foo 1\r\nx\r\n");
        h.send(client, "PUB foo 1\r\ny\r\n");
        assert_eq!(h.take(id), "");
        let got = h.take(client);
        assert!(got.ends_with("MSG foo 1 1\r\ny\r\n"), "{got}");
        let due = h.broker.poll_timeout().expect("the hold's deadline");
        assert!(due <= h.now + crate::LEAF_REFUSED_HOLD, "{due:?}");
        h.now += Duration::from_secs(4);
        h.broker.handle_timeout(h.now);
        h.drain_events();
        assert_eq!(h.closed(id), None);
        h.now += Duration::from_secs(1);
        h.broker.handle_timeout(h.now);
        h.drain_events();
        assert_eq!(h.closed(id), Some(CloseReason::MinimumVersionRequired));
        h.broker.remove_client(id, h.now);
        h.drain_events();
    }
}

#[test]
fn a_bcrypt_leaf_password_is_checked_off_the_loop() {
    let now = Instant::now();
    let hash = bcrypt::hash("pw", 4).unwrap();
    let config = Config {
        server_name: "hub".to_owned(),
        defer_password_checks: true,
        leaf_auth: Some(crate::LeafAuthConfig {
            users: vec![crate::LeafUserConfig {
                username: "leaf".to_owned(),
                password: hash.clone(),
                account: None,
            }],
            account: None,
            timeout: None,
        }),
        ..Config::default()
    };
    let mut h = Harness {
        broker: Broker::new(config, now),
        now,
        events: Vec::new(),
    };
    let client = h.client();
    h.send(client, "SUB foo 1\r\n");
    for (pass, verified) in [("pw", true), ("bad", false)] {
        let id = h
            .broker
            .register_client(h.now, ClientParams::new(ConnectionType::Leaf, addr()));
        h.drain_events();
        h.take(id);
        h.events.clear();
        let mut input = BytesMut::from(
            format!(
                "CONNECT {{\"user\":\"leaf\",\"pass\":\"{pass}\",\"name\":\"s\",\"version\":\"2.9.10\"}}\r\nLS+ bar\r\n"
            )
            .as_bytes(),
        );
        h.broker.handle_input(id, h.now, &mut input);
        h.drain_events();
        assert_eq!(&input[..], b"LS+ bar\r\n", "nothing is read while parked");
        assert!(h.broker.is_parked(id));
        assert_eq!(h.take(id), "");
        let check = h
            .events
            .iter()
            .find_map(|e| match e {
                Event::CheckPassword {
                    client,
                    check,
                    parked: true,
                } if *client == id => Some(check.clone()),
                _ => None,
            })
            .expect("a password check");
        assert_eq!(check.hash(), hash);
        assert_eq!(check.verify(), verified);
        // A verdict on another comparison resumes nothing.
        h.broker.password_checked(
            id,
            &crate::auth::PasswordCheck::new(&hash, "x"),
            true,
            h.now,
        );
        assert!(h.broker.is_parked(id));
        h.broker.password_checked(id, &check, verified, h.now);
        h.drain_events();
        assert!(!h.broker.is_parked(id));
        let out = h.take(id);
        if verified {
            assert!(out.contains("\"connect_info\":true"), "{out}");
            assert!(out.contains("LS+ foo\r\n"), "{out}");
            h.broker.handle_input(id, h.now, &mut input);
            h.drain_events();
            assert_eq!(h.broker.leafs()[0].subscriptions, vec!["bar".to_owned()]);
        } else {
            assert_eq!(out, "-ERR 'Authorization Violation'\r\n");
            assert_eq!(h.closed(id), Some(CloseReason::AuthenticationFailure));
        }
    }
}

#[test]
fn a_hub_remote_says_is_hub_and_passes_what_it_learned_from_its_hubs() {
    let mut h = Harness::new();
    let (hub_a, _) = h.leaf(LeafRemote::default());
    h.send(hub_a, "LS+ from.a\r\n");
    let id = h.broker.register_leaf(
        h.now,
        ClientParams::new(ConnectionType::Leaf, addr()),
        LeafRemote {
            hub: true,
            ..LeafRemote::default()
        },
    );
    h.drain_events();
    h.send(id, HUB_INFO);
    let connect = h.take(id);
    let json: serde_json::Value =
        serde_json::from_str(connect.strip_prefix("CONNECT ").unwrap().trim_end()).unwrap();
    assert_eq!(json["is_hub"], true, "{connect}");
    h.send(id, CONNECT_INFO);
    // The hub of this link advertises everything, interest learned from hub_a included.
    let set = h.take(id);
    assert!(set.contains("LS+ from.a\r\n"), "{set}");
    h.send(hub_a, "LS+ later.a\r\n");
    assert_eq!(h.take(id), "LS+ later.a\r\n");
    // A plain remote's CONNECT has no `is_hub`.
    let plain = h.broker.register_leaf(
        h.now,
        ClientParams::new(ConnectionType::Leaf, addr()),
        LeafRemote::default(),
    );
    h.drain_events();
    h.send(plain, HUB_INFO);
    assert!(!h.take(plain).contains("is_hub"));
}

#[test]
fn an_accepted_leaf_that_is_the_hub_makes_this_side_the_spoke() {
    let mut h = Harness::new();
    let (hub_a, _) = h.leaf(LeafRemote::default());
    h.send(hub_a, "LS+ from.a\r\n");
    let client = h.client();
    h.send(client, "SUB local 1\r\n");
    for (is_hub, passes) in [(false, true), (true, false)] {
        let id = h
            .broker
            .register_client(h.now, ClientParams::new(ConnectionType::Leaf, addr()));
        h.drain_events();
        h.take(id);
        h.send(
            id,
            &format!("CONNECT {{\"server_id\":\"NX\",\"name\":\"x\",\"is_hub\":{is_hub}}}\r\n"),
        );
        let set = h.take(id);
        assert!(set.contains("LS+ local\r\n"), "{set}");
        assert_eq!(
            set.contains("LS+ from.a\r\n"),
            passes,
            "is_hub {is_hub}: {set}"
        );
    }
}

#[test]
fn the_hub_of_a_link_refuses_an_ls_plus_its_deny_lists_refuse() {
    // A link dialled with `hub: true` and `deny_exports`: the violation closes it and it
    // waits before dialling again.
    let mut h = Harness::new();
    let id = h.broker.register_leaf(
        h.now,
        ClientParams::new(ConnectionType::Leaf, addr()),
        LeafRemote {
            hub: true,
            deny_exports: vec!["secret.>".to_owned()],
            ..LeafRemote::default()
        },
    );
    h.drain_events();
    h.send(id, HUB_INFO);
    h.take(id);
    h.send(id, CONNECT_INFO);
    h.take(id);
    h.send(id, "LS+ secret.x\r\n");
    assert_eq!(
        h.take(id),
        "-ERR 'Permissions Violation for Subscription to \"secret.x\"'\r\n"
    );
    assert_eq!(h.closed(id), Some(CloseReason::ProtocolViolation));
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::ClientError { client, detail }
            if *client == id && detail == "Subscription Violation on \"secret.x\" - Check other side configuration"
    )));
    assert!(h.events.iter().any(
        |e| matches!(e, Event::LeafReconnectDelay { client, delay } if *client == id && *delay == Duration::from_secs(30))
    ));
    // The spoke of such a link skips it silently and stays.
    let (spoke, _) = h.leaf(LeafRemote {
        deny_exports: vec!["secret.>".to_owned()],
        ..LeafRemote::default()
    });
    h.send(spoke, "LS+ secret.x\r\n");
    assert_eq!(h.take(spoke), "");
    assert_eq!(h.closed(spoke), None);
}
