//! `/metrics`, the web console and `/natsws/connz` of the real binary: natsws extensions, so
//! there is no nats-server case to compare with (nats-server answers these paths with 404).
//! The exposition text is read by a strict reader here (every sample under a declared family,
//! no duplicate series); the interop suite reads it with the Python Prometheus client's parser.
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Raw, RawWs, Server, WAIT, http_get};
use serde_json::Value;

/// Series (`name{labels}` as written) to values, checked against the text format's rules.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut series = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "family declared twice: {line}"
            );
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(
            !line.is_empty() && !line.starts_with('#'),
            "stray line {line:?}"
        );
        let (key, value) = line.rsplit_once(' ').expect("sample value");
        let name = key.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{name}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "sample before its TYPE: {line}");
        if types[family] == "counter" {
            assert!(name.ends_with("_total"), "counter without _total: {name}");
        }
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
        assert!(
            series.insert(key.to_owned(), value).is_none(),
            "duplicate series {key}"
        );
    }
    series
}

fn metrics(srv: &Server, path: &str) -> BTreeMap<String, f64> {
    let (status, ctype, body) = srv.http_get(path);
    assert_eq!(status, 200, "{body}");
    assert_eq!(ctype, "text/plain; version=0.0.4; charset=utf-8");
    parse(&body)
}

fn get(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("no series {key} in {m:#?}"))
}

/// Reads `/metrics` until `done` holds.
fn wait_metrics(
    srv: &Server,
    done: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + WAIT;
    loop {
        let m = metrics(srv, "/metrics");
        if done(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "never reached: {m:#?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const CONF: &str = r#"
listen: "127.0.0.1:-1"
http: "127.0.0.1:-1"
authorization { users: [ {user: alice, password: secret} ] }
websocket { listen: "127.0.0.1:-1", no_tls: true, compression: true, allowed_origins: ["http://app.example"] }
"#;

const TCP_LOGIN: &str = "CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"secret\"}\r\n";

#[test]
fn metrics_count_connections_messages_refusals_and_auth_failures() {
    let srv = Server::with_config(CONF, &[]);
    let mut sub = Raw::connect(srv.nats_port());
    sub.line();
    sub.send(&format!("{TCP_LOGIN}SUB demo.* 1\r\nPING\r\n"));
    sub.read_until("PONG");

    // A compressing WebSocket publisher and a plain one.
    let mut zws = RawWs::upgraded(
        srv.ws_port(),
        "Origin: http://app.example\r\nSec-WebSocket-Extensions: permessage-deflate\r\n",
    );
    assert!(zws.response.contains("permessage-deflate"));
    zws.send(b"CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"secret\"}\r\nPUB demo.a 5\r\nhello\r\nPUB demo.b 3\r\nabc\r\n");
    let mut ws = RawWs::upgraded(srv.ws_port(), "Origin: http://app.example\r\n");
    ws.send(b"CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"secret\"}\r\nPUB demo.c 2\r\nhi\r\nPING\r\n");
    ws.read_until("PONG");
    sub.read_until("hi");

    // Refused upgrades: an origin not allowed (403), a POST (405), no key (400).
    assert_eq!(
        RawWs::connect(srv.ws_port(), "Origin: http://evil.example\r\n").status(),
        403
    );
    let mut post = Raw::connect(srv.ws_port());
    post.send("POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    assert!(post.line().starts_with("HTTP/1.1 405"));
    let mut nokey = Raw::connect(srv.ws_port());
    nokey.send("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n");
    assert!(nokey.line().starts_with("HTTP/1.1 400"));

    // A wrong password.
    let mut bad = Raw::connect(srv.nats_port());
    bad.line();
    bad.send("CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"nope\"}\r\n");
    assert!(bad.read_to_eof().contains("Authorization Violation"));

    let m = wait_metrics(&srv, |m| {
        m.get("natsws_auth_failures_total") == Some(&1.0)
            && m.get("natsws_messages_total{direction=\"in\"}") == Some(&3.0)
            && m.get("natsws_connections_opened_total") == Some(&4.0)
    });
    let conns = |transport: &str, compression: &str| {
        get(
            &m,
            &format!(
                "natsws_connections{{kind=\"client\",transport=\"{transport}\",compression=\"{compression}\"}}"
            ),
        )
    };
    assert_eq!(conns("tcp", "none"), 1.0);
    assert_eq!(conns("ws", "deflate"), 1.0);
    assert_eq!(conns("ws", "none"), 1.0);
    assert_eq!(conns("wss", "none"), 0.0);
    assert_eq!(conns("tls", "none"), 0.0);
    assert_eq!(get(&m, "natsws_messages_total{direction=\"out\"}"), 3.0);
    assert_eq!(
        get(&m, "natsws_payload_bytes_total{direction=\"in\"}"),
        10.0
    );
    assert_eq!(
        get(&m, "natsws_payload_bytes_total{direction=\"out\"}"),
        10.0
    );
    assert_eq!(get(&m, "natsws_subscriptions"), 1.0);
    assert_eq!(get(&m, "natsws_slow_consumers_total"), 0.0);
    for (status, n) in [(400, 1.0), (403, 1.0), (405, 1.0)] {
        assert_eq!(
            get(
                &m,
                &format!("natsws_websocket_handshake_refusals_total{{status=\"{status}\"}}")
            ),
            n
        );
    }
    assert_eq!(
        get(
            &m,
            "natsws_connections_closed_total{reason=\"Authentication Failure\"}"
        ),
        1.0
    );
    assert_eq!(get(&m, "natsws_account_connections{account=\"$G\"}"), 3.0);
    assert_eq!(get(&m, "natsws_account_subscriptions{account=\"$G\"}"), 1.0);
    assert_eq!(
        get(&m, "natsws_account_messages_received_total{account=\"$G\"}"),
        3.0
    );
    assert!(get(&m, "natsws_http_requests_total{path=\"/metrics\"}") >= 1.0);

    // The loop's histogram: cumulative buckets ending in +Inf = count.
    let mut buckets: Vec<(f64, f64)> = m
        .iter()
        .filter_map(|(k, v)| {
            let le = k
                .strip_prefix("natsws_loop_tick_seconds_bucket{le=\"")?
                .strip_suffix("\"}")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            Some((le, *v))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert_eq!(buckets.len(), 17);
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
    let count = get(&m, "natsws_loop_tick_seconds_count");
    assert!(
        count >= 5.0,
        "the connections and requests above took ticks: {count}"
    );
    assert_eq!(buckets.last().unwrap().1, count);
    assert!(get(&m, "natsws_loop_tick_seconds_sum") > 0.0);

    // Process figures, as /proc shows them from outside.
    let rss = get(&m, "process_resident_memory_bytes");
    let outside = common::rss_bytes(srv.pid()) as f64;
    assert!(
        rss > 0.0 && (rss - outside).abs() < outside / 2.0,
        "{rss} vs {outside}"
    );
    let fds = std::fs::read_dir(format!("/proc/{}/fd", srv.pid()))
        .unwrap()
        .count() as f64;
    assert!((get(&m, "process_open_fds") - fds).abs() <= 2.0);
    assert!(get(&m, "process_max_fds") >= fds);
    assert!(get(&m, "process_cpu_seconds_total") >= 0.0);
    assert!(get(&m, "process_start_time_seconds") > 1.7e9);

    // Connections leave the gauges when they go.
    drop(zws);
    drop(ws);
    let m = wait_metrics(&srv, |m| {
        m.get("natsws_connections{kind=\"client\",transport=\"ws\",compression=\"deflate\"}")
            == Some(&0.0)
            && m.get("natsws_connections{kind=\"client\",transport=\"ws\",compression=\"none\"}")
                == Some(&0.0)
    });
    assert_eq!(get(&m, "natsws_account_connections{account=\"$G\"}"), 1.0);
    assert!(
        get(&m, "natsws_loop_tick_seconds_count") > count,
        "every request is answered in a tick of its own"
    );
}

#[test]
fn natsws_connz_shows_origin_user_agent_forwarded_chain_and_compression() {
    let srv = Server::basic();
    let mut ws = RawWs::upgraded(
        srv.ws_port(),
        "Origin: http://app.example\r\nUser-Agent: Mozilla/5.0 (X11) console-test\r\nX-Forwarded-For: 203.0.113.9, 10.1.2.3\r\nX-Forwarded-For: 10.9.9.9\r\nSec-WebSocket-Extensions: permessage-deflate\r\n",
    );
    ws.send(b"CONNECT {\"verbose\":false,\"name\":\"browser-tab\",\"lang\":\"nats.ws\",\"version\":\"1.30.3\"}\r\nSUB a 1\r\nSUB b 2\r\n");
    let mut tcp = Raw::connect(srv.nats_port());
    tcp.line();
    tcp.send("CONNECT {\"verbose\":false}\r\nPING\r\n");
    tcp.read_until("PONG");
    let deadline = Instant::now() + WAIT;
    let v: Value = loop {
        let (status, ctype, body) = srv.http_get("/natsws/connz");
        assert_eq!(
            (status, ctype.as_str()),
            (200, "application/json"),
            "{body}"
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["total"] == 2 && v["connections"][0]["subscriptions"] == 2 {
            break v;
        }
        assert!(Instant::now() < deadline, "{v:#}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let w = &v["connections"][0];
    assert_eq!(w["kind"], "client");
    assert_eq!(w["transport"], "ws");
    assert_eq!(w["compression"], true);
    assert_eq!(w["origin"], "http://app.example");
    assert_eq!(w["user_agent"], "Mozilla/5.0 (X11) console-test");
    assert_eq!(w["forwarded_for"], "203.0.113.9, 10.1.2.3, 10.9.9.9");
    assert_eq!(w["name"], "browser-tab");
    assert_eq!(w["lang"], "nats.ws");
    assert_eq!(w["account"], "$G");
    assert_eq!(w["ip"], "127.0.0.1");
    assert!(w["uptime"].as_str().unwrap().ends_with('s'));
    let t = &v["connections"][1];
    assert_eq!(t["transport"], "tcp");
    assert_eq!(t["compression"], false);
    assert!(t.get("origin").is_none());
    assert_eq!(v["websocket"]["port"], srv.ws_port());
    assert_eq!(v["websocket"]["tls"], false);
    assert_eq!(v["websocket"]["credentials_required"], false);
    // Paging and the errors of the JSON endpoints.
    let (_, _, body) = srv.http_get("/natsws/connz?offset=1&limit=5");
    let p: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(p["connections"].as_array().unwrap().len(), 1);
    assert_eq!(p["connections"][0]["cid"], t["cid"]);
    assert_eq!(srv.http_get("/natsws/connz?limit=x").0, 400);
    let (_, ctype, body) = srv.http_get("/natsws/connz?callback=cb");
    assert_eq!(ctype, "application/javascript");
    assert!(body.starts_with("cb({"));
}

#[test]
fn websocket_credentials_are_reported_to_the_console() {
    let conf = "listen: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:-1\"\nwebsocket { listen: \"127.0.0.1:-1\", no_tls: true, authorization { token: s3cret } }\n";
    let srv = Server::with_config(conf, &[]);
    let (_, _, body) = srv.http_get("/natsws/connz");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["websocket"]["credentials_required"], true);
    let conf = "listen: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:-1\"\nauthorization { users: [{user: a, password: b}] }\nno_auth_user: a\nwebsocket { listen: \"127.0.0.1:-1\", no_tls: true }\n";
    let srv = Server::with_config(conf, &[]);
    let (_, _, body) = srv.http_get("/natsws/connz");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["websocket"]["credentials_required"], false,
        "no_auth_user lets it in"
    );
}

#[test]
fn console_files_honour_base_path_and_only_the_monitoring_port_serves_them() {
    let conf = "listen: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:-1\"\nhttp_base_path: \"/mon/\"\nwebsocket { listen: \"127.0.0.1:-1\", no_tls: true }\n";
    let srv = Server::with_config(conf, &[]);
    let m = metrics(&srv, "/mon/metrics");
    assert!(m.contains_key("natsws_uptime_seconds"));
    assert_eq!(srv.http_get("/metrics").0, 404);
    assert_eq!(srv.http_get("/console").0, 404);

    let (status, ctype, page) = srv.http_get("/mon/console");
    assert_eq!((status, ctype.as_str()), (200, "text/html; charset=utf-8"));
    assert!(
        page.contains("<meta name=\"natsws-base\" content=\"/mon\">"),
        "{page}"
    );
    assert!(page.contains("src=\"/mon/console/console.js\""));
    assert!(!page.contains("{{BASE}}"));
    assert_eq!(srv.http_get("/mon/console/").2, page);
    for (path, ctype, needle) in [
        (
            "/mon/console/console.js",
            "text/javascript; charset=utf-8",
            "natsws-base",
        ),
        (
            "/mon/console/console.css",
            "text/css; charset=utf-8",
            "--in",
        ),
        (
            "/mon/console/vendor/nats.ws.js",
            "text/javascript; charset=utf-8",
            "export { connect as connect }",
        ),
        (
            "/mon/console/vendor/LICENSE-nats.ws",
            "text/plain; charset=utf-8",
            "Apache License",
        ),
    ] {
        let (status, got, body) = srv.http_get(path);
        assert_eq!((status, got.as_str()), (200, ctype), "{path}");
        assert!(body.contains(needle), "{path}");
    }
    assert_eq!(srv.http_get("/mon/console/../Cargo.toml").0, 404);
    assert_eq!(srv.http_get("/mon/console/nope.js").0, 404);

    // The page's headers forbid framing and foreign scripts.
    let mut raw = Raw::connect(srv.http_port());
    raw.send("GET /mon/console HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let head = raw.read_until("\r\n\r\n");
    assert!(
        head.contains("Content-Security-Policy: default-src 'none'; script-src 'self';"),
        "{head}"
    );
    assert!(head.contains("frame-ancestors 'none'"));
    assert!(head.contains("X-Frame-Options: DENY"));

    // The index still lists nats-server's endpoints, and now the console and metrics too.
    let (_, _, index) = srv.http_get("/mon");
    for link in ["varz", "connz", "subsz", "healthz", "console", "metrics"] {
        assert!(
            index.contains(&format!("href=\"{link}\"")),
            "{link}: {index}"
        );
    }

    // Neither the WebSocket port nor the client port serves any of it.
    for path in [
        "/mon/console",
        "/mon/metrics",
        "/mon/natsws/connz",
        "/console",
    ] {
        let (status, _, body) = http_get(srv.ws_port(), path);
        assert_ne!(status, 200, "{path} on the ws port: {body}");
        assert!(!body.contains("natsws"), "{path}: {body}");
    }
    let mut nats = Raw::connect(srv.nats_port());
    assert!(nats.line().starts_with("INFO "));
    nats.send("GET /mon/console HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(nats.read_to_eof().contains("-ERR"));
}

#[test]
fn tls_clients_are_labelled_tls_and_wss() {
    let pki = common::pki::make_pki();
    let conf = format!(
        "listen: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:-1\"\ntls {{ cert_file: \"{c}\", key_file: \"{k}\" }}\nwebsocket {{ listen: \"127.0.0.1:-1\", compression: true, tls {{ cert_file: \"{c}\", key_file: \"{k}\" }} }}\n",
        c = pki.path("server.pem"),
        k = pki.path("server-key.pem")
    );
    let srv = Server::with_config(&conf, &[]);
    let (ws_port, tcp_port) = (srv.ws_port(), srv.nats_port());
    let ca = pki.path("ca.pem");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (ws, tcp) = rt.block_on(async {
        let ws = async_nats::ConnectOptions::new()
            .add_root_certificates(ca.clone().into())
            .connect(format!("wss://localhost:{ws_port}"))
            .await
            .unwrap();
        let tcp = async_nats::ConnectOptions::new()
            .add_root_certificates(ca.into())
            .require_tls(true)
            .connect(format!("tls://localhost:{tcp_port}"))
            .await
            .unwrap();
        ws.flush().await.unwrap();
        tcp.flush().await.unwrap();
        (ws, tcp)
    });
    // Plain HTTP on the wss port: Go's TLS server answers 400, counted as a refused upgrade.
    let mut raw = Raw::connect(ws_port);
    raw.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(raw.read_to_eof().starts_with("HTTP/1.0 400"));
    let m = wait_metrics(&srv, |m| {
        m.get("natsws_websocket_handshake_refusals_total{status=\"400\"}") == Some(&1.0)
    });
    let conns = |transport: &str| {
        get(
            &m,
            &format!(
                "natsws_connections{{kind=\"client\",transport=\"{transport}\",compression=\"none\"}}"
            ),
        )
    };
    assert_eq!(conns("tls"), 1.0);
    assert_eq!(conns("wss"), 1.0, "async-nats offers no permessage-deflate");
    assert_eq!(conns("tcp"), 0.0);
    assert_eq!(conns("ws"), 0.0);
    let (_, _, body) = srv.http_get("/natsws/connz");
    let v: Value = serde_json::from_str(&body).unwrap();
    let transports: Vec<&str> = v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["transport"].as_str().unwrap())
        .collect();
    assert_eq!(transports.len(), 2);
    assert!(
        transports.contains(&"tls") && transports.contains(&"wss"),
        "{transports:?}"
    );
    assert_eq!(v["websocket"]["tls"], true);
    rt.block_on(async {
        drop(ws);
        drop(tcp);
    });
}

#[test]
fn per_account_figures() {
    let conf = r#"
listen: "127.0.0.1:-1"
http: "127.0.0.1:-1"
accounts {
  A { users: [{user: a, password: a}] }
  B { users: [{user: b, password: b}] }
}
"#;
    let srv = Server::with_config(conf, &[]);
    let login = |user: &str| {
        let mut c = Raw::connect(srv.nats_port());
        c.line();
        c.send(&format!(
            "CONNECT {{\"verbose\":false,\"user\":\"{user}\",\"pass\":\"{user}\"}}\r\n"
        ));
        c
    };
    let mut a1 = login("a");
    a1.send("SUB x 1\r\nSUB y 2\r\nPING\r\n");
    a1.read_until("PONG");
    let mut a2 = login("a");
    a2.send("PUB x 1\r\n1\r\nPUB y 1\r\n2\r\nPING\r\n");
    a2.read_until("PONG");
    let mut b = login("b");
    b.send("SUB x 1\r\nPUB x 1\r\n3\r\nPING\r\n");
    b.read_until("PONG");
    let a = "account=\"A\"";
    let m = wait_metrics(&srv, |m| {
        m.get(&format!("natsws_account_messages_received_total{{{a}}}")) == Some(&2.0)
    });
    assert_eq!(get(&m, &format!("natsws_account_connections{{{a}}}")), 2.0);
    assert_eq!(
        get(&m, &format!("natsws_account_subscriptions{{{a}}}")),
        2.0
    );
    assert_eq!(get(&m, "natsws_account_connections{account=\"B\"}"), 1.0);
    assert_eq!(get(&m, "natsws_account_subscriptions{account=\"B\"}"), 1.0);
    assert_eq!(
        get(&m, "natsws_account_messages_received_total{account=\"B\"}"),
        1.0
    );
    assert_eq!(get(&m, "natsws_account_connections{account=\"$G\"}"), 0.0);
    assert_eq!(get(&m, "natsws_messages_total{direction=\"in\"}"), 3.0);
    assert_eq!(get(&m, "natsws_subscriptions"), 3.0);
}
