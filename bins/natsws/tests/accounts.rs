//! Accounts through the real binary, over TCP and WebSocket: isolation (the system account
//! included), a stream import with a prefix, service imports with their response types. Every
//! scenario also runs against nats-server 2.9.10 from the same configuration, with the same
//! assertions, so the reference proves the test right.
mod common;

use std::time::Duration;

use common::{Conn, Raw, Server, Target, Transport, on_both_transports};

const CONF: &str = r#"
listen: "127.0.0.1:-1"
http: "127.0.0.1:-1"
websocket { listen: "127.0.0.1:-1", no_tls: true }
system_account: SYS
accounts {
  A {
    users: [{user: a, password: a}]
    exports: [
      {stream: "ev.>"}
      {stream: "private.>", accounts: [C]}
      {service: "svc.single"}
      {service: "svc.stream", response_type: stream, response_threshold: "1s"}
    ]
  }
  B {
    users: [{user: b, password: b}]
    imports: [
      {stream: {account: A, subject: "ev.>"}, prefix: "a"}
      {service: {account: A, subject: "svc.single"}, to: "single"}
      {service: {account: A, subject: "svc.stream"}, to: "stream"}
    ]
  }
  C {
    users: [
      {user: c, password: c}
      {user: w, password: w, allowed_connection_types: ["WEBSOCKET"], permissions: {publish: {deny: "forbidden"}}}
    ]
  }
  SYS { users: [{user: s, password: s}] }
}
"#;

/// A client of `user` (password = user name), logged in.
fn login(srv: &Server, transport: Transport, user: &str) -> Conn {
    let (mut client, _) = Conn::dial(srv, transport, "");
    client.send(&format!(
        "CONNECT {{\"verbose\":false,\"user\":\"{user}\",\"pass\":\"{user}\"}}\r\n"
    ));
    assert_eq!(client.sync(), "", "{user} logged in");
    client
}

/// A user of an account keeps its `allowed_connection_types` and permissions.
fn account_users_keep_their_restrictions(target: Target, transport: Transport) {
    let Some(srv) = start(target) else {
        return;
    };
    if let Transport::Tcp = transport {
        let mut raw = Raw::connect(srv.nats_port());
        raw.line();
        raw.send("CONNECT {\"verbose\":false,\"user\":\"w\",\"pass\":\"w\"}\r\nPING\r\n");
        assert_eq!(raw.line(), "-ERR 'Authorization Violation'\r\n");
        return;
    }
    let mut w = login(&srv, transport, "w");
    let mut c = login(&srv, transport, "c");
    c.send("SUB > 1\r\n");
    c.sync();
    w.send("PUB forbidden 1\r\nx\r\nPUB allowed 1\r\ny\r\n");
    assert_eq!(
        w.sync(),
        "-ERR 'Permissions Violation for Publish to \"forbidden\"'\r\n"
    );
    assert_eq!(c.sync(), "MSG allowed 1 1\r\ny\r\n");
}
on_both_transports!(account_users_keep_their_restrictions);

fn start(target: Target) -> Option<Server> {
    target.with_config(CONF, &[])
}

/// Accounts see only their own subjects; the system account is one of them.
fn accounts_are_isolated(target: Target, transport: Transport) {
    let Some(srv) = start(target) else {
        return;
    };
    let mut a = login(&srv, transport, "a");
    let mut c = login(&srv, transport, "c");
    let mut s = login(&srv, transport, "s");
    for client in [&mut a, &mut c, &mut s] {
        client.send("SUB foo 1\r\n");
        client.sync();
    }
    a.send("PUB foo 2\r\nhi\r\n");
    assert_eq!(a.sync(), "MSG foo 1 2\r\nhi\r\n");
    assert_eq!(c.sync(), "");
    assert_eq!(s.sync(), "");
    s.send("PUB foo 3\r\nsys\r\n");
    assert_eq!(s.sync(), "MSG foo 1 3\r\nsys\r\n");
    assert_eq!(a.sync(), "");
    assert_eq!(c.sync(), "");
}
on_both_transports!(accounts_are_isolated);

/// An imported stream arrives under its prefix, only what is exported crosses, and only
/// from the exporter to the importer.
fn stream_import_with_prefix(target: Target, transport: Transport) {
    let Some(srv) = start(target) else {
        return;
    };
    let mut a = login(&srv, transport, "a");
    let mut b = login(&srv, transport, "b");
    let mut c = login(&srv, transport, "c");
    a.send("SUB ev.> 1\r\n");
    a.sync();
    b.send("SUB a.ev.> 1\r\nSUB ev.> 2\r\nSUB private.> 3\r\n");
    b.sync();
    c.send("SUB a.ev.> 1\r\nSUB ev.> 2\r\n");
    c.sync();
    a.send("PUB ev.x r 1\r\n1\r\nPUB private.x 1\r\n2\r\n");
    assert_eq!(a.sync(), "MSG ev.x 1 r 1\r\n1\r\n");
    assert_eq!(b.sync(), "MSG a.ev.x 1 r 1\r\n1\r\n");
    assert_eq!(c.sync(), "");
    b.send("PUB ev.y 1\r\n3\r\n");
    assert_eq!(b.sync(), "MSG ev.y 2 1\r\n3\r\n");
    assert_eq!(a.sync(), "");
}
on_both_transports!(stream_import_with_prefix);

/// Sends a request from `requester` to `subject` with reply `inbox.1`; returns the rewritten
/// reply subject the service saw.
fn request(service: &mut Conn, requester: &mut Conn, subject: &str, exported: &str) -> String {
    requester.send(&format!("PUB {subject} inbox.1 3\r\nreq\r\n"));
    assert_eq!(requester.sync(), "");
    let got = service.sync();
    let head = got.lines().next().unwrap_or_default().to_owned();
    let parts: Vec<&str> = head.split(' ').collect();
    assert_eq!(parts.len(), 5, "{got:?}");
    assert_eq!(&parts[..3], ["MSG", exported, "1"], "{got:?}");
    assert_eq!(parts[4], "3", "{got:?}");
    assert!(parts[3].starts_with("_R_."), "{got:?}");
    assert!(got.ends_with("\r\nreq\r\n"), "{got:?}");
    parts[3].to_owned()
}

/// A singleton service: the requester gets the first response only, and other accounts get
/// nothing.
fn service_import_request_reply(target: Target, transport: Transport) {
    let Some(srv) = start(target) else {
        return;
    };
    let mut a = login(&srv, transport, "a");
    let mut b = login(&srv, transport, "b");
    let mut c = login(&srv, transport, "c");
    a.send("SUB svc.single 1\r\n");
    a.sync();
    b.send("SUB inbox.> 9\r\n");
    b.sync();
    c.send("SUB inbox.> 9\r\nSUB svc.single 1\r\n");
    c.sync();
    let reply = request(&mut a, &mut b, "single", "svc.single");
    a.send(&format!(
        "PUB {reply} 2\r\nok\r\nPUB {reply} 5\r\nagain\r\n"
    ));
    a.sync();
    assert_eq!(b.sync(), "MSG inbox.1 9 2\r\nok\r\n");
    assert_eq!(c.sync(), "");
    // The exported subject itself is not reachable from B.
    b.send("PUB svc.single 1\r\nx\r\n");
    b.sync();
    assert_eq!(a.sync(), "");
}
on_both_transports!(service_import_request_reply);

/// A stream service answers any number of times until its threshold, then nothing arrives.
fn stream_response_type(target: Target, transport: Transport) {
    let Some(srv) = start(target) else {
        return;
    };
    let mut a = login(&srv, transport, "a");
    let mut b = login(&srv, transport, "b");
    a.send("SUB svc.stream 1\r\n");
    a.sync();
    b.send("SUB inbox.> 9\r\n");
    b.sync();
    let reply = request(&mut a, &mut b, "stream", "svc.stream");
    a.send(&format!(
        "PUB {reply} 1\r\n1\r\nPUB {reply} 1\r\n2\r\nPUB {reply} 1\r\n3\r\n"
    ));
    a.sync();
    assert_eq!(
        b.sync(),
        "MSG inbox.1 9 1\r\n1\r\nMSG inbox.1 9 1\r\n2\r\nMSG inbox.1 9 1\r\n3\r\n"
    );
    // Past the 1 s threshold the route is gone (nats-server sweeps it on a timer of the
    // threshold's period, so wait for two).
    std::thread::sleep(Duration::from_millis(2500));
    a.send(&format!("PUB {reply} 4\r\nlate\r\n"));
    a.sync();
    assert_eq!(b.sync(), "");
}
on_both_transports!(stream_response_type);

/// Monitoring shows each connection's and subscription's account and filters by it.
fn monitoring_by_account(target: Target, transport: Transport) {
    let Some(srv) = start(target) else {
        return;
    };
    let mut a = login(&srv, transport, "a");
    let mut b = login(&srv, transport, "b");
    a.send("SUB mine.a 1\r\n");
    a.sync();
    b.send("SUB mine.b 1\r\n");
    b.sync();
    let json = |path: &str| -> serde_json::Value {
        let (status, _, body) = srv.http_get(path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    };
    let connz = json("/connz?auth=1");
    let accounts: Vec<&str> = connz["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["account"].as_str().unwrap())
        .collect();
    assert_eq!(accounts, ["A", "B"]);
    let connz = json("/connz?auth=1&acc=B");
    let conns = connz["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0]["authorized_user"], "b");
    let subsz = json("/subsz?acc=B&subs=1");
    let subs = subsz["subscriptions_list"].as_array().unwrap();
    assert!(subs.iter().all(|s| s["account"] == "B"), "{subsz}");
    assert!(subs.iter().any(|s| s["subject"] == "mine.b"), "{subsz}");
    let accountz = json("/accountz");
    assert_eq!(accountz["system_account"], "SYS");
    let mut names: Vec<&str> = accountz["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["$G", "A", "B", "C", "SYS"]);
    let detail = json("/accountz?acc=B");
    let detail = &detail["account_detail"];
    assert_eq!(detail["account_name"], "B");
    let imports = detail["imports"].as_array().unwrap();
    assert!(imports.iter().any(|i| i["type"] == "stream"
        && i["subject"] == "ev.>"
        && i["local_subject"] == "a.ev.>"
        && i["account"] == "A"));
    assert!(
        imports
            .iter()
            .any(|i| i["type"] == "service" && i["subject"] == "single" && i["to"] == "svc.single")
    );
    let (status, _, body) = srv.http_get("/accountz?acc=nope");
    assert_eq!(
        (status, body.as_str()),
        (400, "Account nope does not exist")
    );
}
on_both_transports!(monitoring_by_account);

/// A reload that moves a user to another account closes its client, and an account added by
/// a reload takes logins at once, isolated from the others.
fn reload_moves_and_adds_accounts(target: Target, transport: Transport) {
    let Some(srv) = start(target) else {
        return;
    };
    let mut a = login(&srv, transport, "a");
    let mut b = login(&srv, transport, "b");
    let moved = CONF
        .replace("users: [{user: a, password: a}]", "users: []")
        .replace(
            "users: [{user: b, password: b}]",
            "users: [{user: b, password: b}, {user: a, password: a}]",
        )
        .replace(
            "SYS { users: [{user: s, password: s}] }",
            "SYS { users: [{user: s, password: s}] }\n  D { users: [{user: d, password: d}] }",
        );
    assert_ne!(moved, CONF);
    srv.reload(&moved, 1);
    // The moved user's connection is closed without an -ERR; the other one stays.
    match &mut a {
        Conn::Tcp(raw) => assert_eq!(raw.read_to_eof(), ""),
        Conn::Ws(ws) => assert!(ws.frame().is_none_or(|f| f.opcode == 8)),
    }
    assert_eq!(b.sync(), "");
    let mut d = login(&srv, transport, "d");
    let mut a = login(&srv, transport, "a");
    for client in [&mut d, &mut a, &mut b] {
        client.send("SUB x 1\r\n");
        client.sync();
    }
    a.send("PUB x 1\r\n1\r\n");
    assert_eq!(a.sync(), "MSG x 1 1\r\n1\r\n");
    assert_eq!(b.sync(), "MSG x 1 1\r\n1\r\n");
    assert_eq!(d.sync(), "");
}
on_both_transports!(reload_moves_and_adds_accounts);
