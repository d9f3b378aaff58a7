//! The HTTP monitoring endpoints of the real binary.
mod common;

use common::{Raw, RawWs, Server};
use serde_json::Value;

fn json(srv: &Server, path: &str) -> Value {
    let (status, ctype, body) = srv.http_get(path);
    assert_eq!(status, 200, "{path}: {body}");
    assert_eq!(ctype, "application/json", "{path}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

#[test]
fn varz_has_websocket_section_and_counters() {
    let srv = Server::basic();
    let mut tcp = Raw::connect(srv.nats_port());
    tcp.line();
    tcp.send("CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nPUB foo 5\r\nhello\r\nPING\r\n");
    tcp.read_until("PONG");
    let v = json(&srv, "/varz");
    assert_eq!(v["websocket"]["port"], srv.ws_port());
    assert_eq!(v["websocket"]["no_tls"], true);
    assert_eq!(v["websocket"]["compression"], true);
    assert_eq!(v["port"], srv.nats_port());
    assert_eq!(v["http_port"], srv.http_port());
    assert_eq!(v["in_msgs"], 1);
    assert_eq!(v["out_msgs"], 1);
    assert_eq!(v["in_bytes"], 5);
    assert_eq!(v["connections"], 1);
    assert_eq!(v["max_payload"], 1_048_576);
    assert_eq!(v["auth_timeout"], 2);
    assert_eq!(v["ping_interval"], 120_000_000_000u64);
    assert_eq!(v["http_req_stats"]["/varz"], 1);
    for key in ["cluster", "gateway", "leaf", "mqtt", "jetstream"] {
        assert_eq!(v[key], serde_json::json!({}), "{key}");
    }
    let (_, _, raw) = srv.http_get("/varz");
    assert!(
        raw.starts_with("{\n  \"server_id\": "),
        "pretty printed: {raw}"
    );
}

#[test]
fn connz_options_and_errors() {
    let srv = Server::basic();
    let mut tcp = Raw::connect(srv.nats_port());
    tcp.line();
    tcp.send("CONNECT {\"verbose\":false,\"name\":\"tcpcli\",\"lang\":\"rust\",\"version\":\"1.0\"}\r\nSUB foo 1\r\nSUB bar.* q1 2\r\nPING\r\n");
    tcp.read_until("PONG");
    let mut ws = RawWs::connect(srv.ws_port(), "");
    ws.frame().unwrap();
    ws.send(b"CONNECT {\"verbose\":false}\r\nSUB foo 7\r\nPING\r\n");
    ws.read_until("PONG");
    let v = json(&srv, "/connz?subs=detail");
    assert_eq!(v["num_connections"], 2);
    assert_eq!(v["total"], 2);
    assert_eq!(v["limit"], 1024);
    let c0 = &v["connections"][0];
    assert_eq!(c0["type"], "nats");
    assert_eq!(c0["name"], "tcpcli");
    assert_eq!(c0["subscriptions"], 2);
    let detail = c0["subscriptions_list_detail"].as_array().unwrap();
    assert!(
        detail
            .iter()
            .any(|d| d["subject"] == "bar.*" && d["qgroup"] == "q1")
    );
    assert_eq!(v["connections"][1]["type"], "websocket");
    let v = json(&srv, "/connz?subs=1&limit=1&offset=1");
    assert_eq!(v["num_connections"], 1);
    assert_eq!(v["connections"][0]["subscriptions_list"][0], "foo");
    let v = json(&srv, "/connz?sort=subs");
    assert_eq!(v["connections"][0]["subscriptions"], 2);
    assert_eq!(
        srv.http_get("/connz?sort=bogus"),
        (
            400,
            "text/plain; charset=utf-8".into(),
            "invalid sorting option: bogus".into()
        )
    );
    assert_eq!(
        srv.http_get("/connz?sort=stop").2,
        "sort by stop only valid on closed connections"
    );
    assert_eq!(
        srv.http_get("/connz?auth=maybe").2,
        "Error decoding boolean for 'auth': strconv.ParseBool: parsing \"maybe\": invalid syntax"
    );
    assert_eq!(
        srv.http_get("/connz?state=weird").2,
        "Error decoding state for weird"
    );
    drop(tcp);
    let deadline = std::time::Instant::now() + common::WAIT;
    loop {
        let v = json(&srv, "/connz?state=closed");
        if v["num_connections"] == 1 {
            assert_eq!(v["connections"][0]["reason"], "Client Closed");
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn healthz_subsz_leafz_routez_and_404() {
    let srv = Server::basic();
    let (status, ctype, body) = srv.http_get("/healthz");
    assert_eq!(
        (status, ctype.as_str(), body.as_str()),
        (200, "application/json", "{\"status\":\"ok\"}")
    );
    let mut tcp = Raw::connect(srv.nats_port());
    tcp.line();
    tcp.send("CONNECT {\"verbose\":false}\r\nSUB foo.> 1\r\nSUB bar 2\r\nPING\r\n");
    tcp.read_until("PONG");
    let v = json(&srv, "/subsz");
    assert_eq!(v["num_subscriptions"], 2);
    assert!(v.get("subscriptions_list").is_none());
    let v = json(&srv, "/subsz?subs=1&test=foo.x");
    assert_eq!(v["total"], 1);
    assert_eq!(v["subscriptions_list"][0]["subject"], "foo.>");
    assert_eq!(v["subscriptions_list"][0]["account"], "$G");
    let (_, _, raw) = srv.http_get("/subsz?subs=1&test=foo.x");
    assert!(raw.contains("\"foo.\\u003e\""), "Go escaping: {raw}");
    assert_eq!(
        srv.http_get("/subsz?test=foo.*").2,
        "invalid test subject, must be valid publish subject: foo.*"
    );
    let v = json(&srv, "/leafz");
    assert_eq!(v["leafnodes"], 0);
    assert_eq!(v["leafs"], Value::Null);
    let v = json(&srv, "/routez");
    assert_eq!(v["num_routes"], 0);
    assert_eq!(v["routes"], serde_json::json!([]));
    assert_eq!(
        srv.http_get("/nope"),
        (
            404,
            "text/plain; charset=utf-8".into(),
            "404 page not found\n".into()
        )
    );
    let (_, ctype, body) = srv.http_get("/varz?callback=cb");
    assert_eq!(ctype, "application/javascript");
    assert!(body.starts_with("cb({") && body.ends_with("})"));
}

/// Requests pipelined behind a `/connz` (whose reply is made off the event loop) are answered
/// after it, in order, and `Connection: close` on the last one closes after its reply.
#[test]
fn pipelined_requests_behind_connz_are_answered_in_order() {
    use std::io::{Read as _, Write as _};
    let srv = Server::basic();
    let mut client = Raw::connect(srv.nats_port());
    client.line();
    client.send("CONNECT {\"verbose\":false}\r\nSUB a 1\r\nPING\r\n");
    client.read_until("PONG");
    let mut http = std::net::TcpStream::connect(("127.0.0.1", srv.http_port())).unwrap();
    http.set_read_timeout(Some(common::WAIT)).unwrap();
    http.write_all(
        b"GET /connz?subs=detail HTTP/1.1\r\nHost: x\r\n\r\nGET /connz?callback=cb HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut raw = String::new();
    http.read_to_string(&mut raw).unwrap();
    let replies: Vec<&str> = raw.split("HTTP/1.1 200 OK\r\n").skip(1).collect();
    assert_eq!(replies.len(), 3, "{raw}");
    assert!(
        replies[0].contains("\"subscriptions_list_detail\""),
        "{raw}"
    );
    assert!(replies[1].contains("application/javascript") && replies[1].ends_with("})"));
    assert!(
        replies[2].contains("Connection: close") && replies[2].ends_with("{\"status\":\"ok\"}")
    );
}
