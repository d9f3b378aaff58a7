//! Service latency tracking in virtual time (nats-server's `server/accounts.go`
//! `ServiceLatency` and `test/service_latency_test.go`): account `A` exports `svc` with
//! `latency` (results on `lat`), `B` imports it as `echo`; the measurements are checked to
//! the nanosecond, with the wall clock fixed.

mod sim;

use std::time::{Duration, Instant};

use broker::auth::{AuthConfig, User};
use broker::{
    AccountConfig, Broker, ClientId, CloseReason, Config, ExportConfig, ExportKind, ImportConfig,
    LatencyConfig, LatencySampling, ResponseType, WallClock,
};
use serde_json::Value;
use sim::Sim;

/// The wall clock at the simulation's start: 2023-01-01T00:00:00.5Z.
const UNIX_SECS: i64 = 1_672_531_200;
const SUBSEC_NANOS: u32 = 500_000_000;

/// The round trip each client's CONNECT shows (the time from its connection to CONNECT).
const RTT: Duration = Duration::from_millis(3);

fn user(name: &str, account: &str) -> User {
    User {
        username: name.into(),
        password: "pw".into(),
        permissions: None,
        allowed_connection_types: Vec::new(),
        account: Some(account.into()),
    }
}

fn export(sampling: LatencySampling) -> ExportConfig {
    ExportConfig {
        kind: ExportKind::Service,
        subject: "svc".into(),
        accounts: Vec::new(),
        response_type: ResponseType::Singleton,
        response_threshold: Some(Duration::from_secs(1)),
        latency: Some(LatencyConfig {
            sampling,
            subject: "lat".into(),
        }),
    }
}

fn import(share: bool) -> ImportConfig {
    ImportConfig {
        kind: ExportKind::Service,
        account: "A".into(),
        subject: "svc".into(),
        to: Some("echo".into()),
        prefix: None,
        share,
    }
}

fn config(export: ExportConfig, import: ImportConfig, seed: u64) -> Config {
    Config {
        server_name: "srv".into(),
        auth: AuthConfig {
            users: vec![user("a", "A"), user("b", "B"), user("s", "SYS")],
            ..AuthConfig::default()
        },
        accounts: vec![
            AccountConfig {
                name: "A".into(),
                exports: vec![export],
                ..AccountConfig::default()
            },
            AccountConfig {
                name: "B".into(),
                imports: vec![import],
                ..AccountConfig::default()
            },
            AccountConfig {
                name: "SYS".into(),
                ..AccountConfig::default()
            },
        ],
        system_account: Some("SYS".into()),
        seed,
        ..Config::default()
    }
}

/// The simulation, with the wall clock fixed at its start.
fn sim(config: Config) -> Sim {
    let mut sim = Sim::new(config);
    let mut cfg = sim.broker.config().clone();
    cfg.wall_clock = Some(WallClock {
        at: sim.now,
        unix_secs: UNIX_SECS,
        subsec_nanos: SUBSEC_NANOS,
    });
    sim.broker.set_config(cfg);
    sim
}

/// A client of `name` whose CONNECT (with `name`, `lang` and `version`) came [`RTT`] after
/// its connection; it subscribed to `subs`.
fn login(sim: &mut Sim, name: &str, subs: &str) -> ClientId {
    let id = sim.client();
    sim.advance(RTT);
    sim.send(
        id,
        &format!(
            "CONNECT {{\"verbose\":false,\"headers\":true,\"user\":\"{name}\",\"pass\":\"pw\",\
             \"name\":\"{name}-app\",\"lang\":\"rust\",\"version\":\"1.0\"}}\r\n{subs}"
        ),
    );
    assert!(!sim.closed.contains_key(&id), "{name} refused");
    sim.take(id);
    id
}

/// The three clients: the results subscriber and the service in `A`, the requestor in `B`.
struct Parties {
    results: ClientId,
    service: ClientId,
    requestor: ClientId,
}

fn parties(sim: &mut Sim) -> Parties {
    Parties {
        results: login(sim, "a", "SUB lat 1\r\n"),
        service: login(sim, "a", "SUB svc 1\r\n"),
        requestor: login(sim, "b", "SUB inbox 1\r\n"),
    }
}

/// The measurements `client` received, in order.
fn measurements(sim: &mut Sim, client: ClientId) -> Vec<Value> {
    let out = sim.take_str(client);
    let lines: Vec<&str> = out.split("\r\n").collect();
    let mut got = Vec::new();
    for pair in lines.windows(2) {
        if let [head, body] = pair
            && head.starts_with("MSG lat 1 ")
        {
            got.push(serde_json::from_str(body).unwrap());
        }
    }
    got
}

/// The reply subject of the request the service received.
fn request_reply(sim: &mut Sim, service: ClientId) -> String {
    let out = sim.take_str(service);
    let head = out.lines().next().unwrap_or_default();
    let parts: Vec<&str> = head.split(' ').collect();
    assert_eq!(parts.first(), Some(&"HMSG"), "{out}");
    parts[3].to_owned()
}

/// The wall-clock text of `offset` after the simulation's start.
fn wall(offset: Duration) -> String {
    let nanos = u128::from(SUBSEC_NANOS) + offset.as_nanos();
    let secs = UNIX_SECS + i64::try_from(nanos / 1_000_000_000).unwrap();
    gotext::format_rfc3339(secs, u32::try_from(nanos % 1_000_000_000).unwrap())
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap()
}

fn elapsed(sim: &Sim, since: Instant) -> Duration {
    sim.now - since
}

#[test]
fn an_answered_request_is_measured_to_the_nanosecond() {
    let mut sim = sim(config(
        export(LatencySampling::Percent(100)),
        import(false),
        1,
    ));
    let start = sim.now;
    let p = parties(&mut sim);
    let asked = elapsed(&sim, start);
    sim.send(p.requestor, "PUB echo inbox 2\r\nhi\r\n");
    let reply = request_reply(&mut sim, p.service);
    assert!(reply.starts_with("_R_."), "{reply}");
    sim.advance(Duration::from_millis(40));
    sim.send(p.service, &format!("PUB {reply} 2\r\nok\r\n"));
    assert_eq!(sim.take_str(p.requestor), "MSG inbox 1 2\r\nok\r\n");
    let got = measurements(&mut sim, p.results);
    assert_eq!(got.len(), 1);
    let m = &got[0];
    let id = m["id"].as_str().unwrap();
    assert_eq!(id.len(), 22);
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
    let answered = elapsed(&sim, start);
    // The service connected one round trip after the results subscriber.
    let service_start = wall(RTT);
    let expected = serde_json::json!({
        "type": "io.nats.server.metric.v1.service_latency",
        "id": id,
        "timestamp": wall(answered),
        "status": 200,
        "requestor": {"acc": "B", "rtt": nanos(RTT)},
        "responder": {
            "start": service_start,
            "host": "127.0.0.1",
            "id": 2,
            "acc": "A",
            "user": "a",
            "name": "a-app",
            "lang": "rust",
            "ver": "1.0",
            "rtt": nanos(RTT),
            "server": "srv",
            "kind": "Client",
            "client_type": "nats",
        },
        // The request crossed at `asked`, less the requestor's round trip.
        "start": wall(asked - RTT),
        "service": nanos(Duration::from_millis(40) - RTT),
        "system": 0,
        "total": nanos(Duration::from_millis(40) + RTT),
    });
    assert_eq!(m, &expected);
    // One measurement per request: a second response is not routed and measures nothing.
    sim.send(p.service, &format!("PUB {reply} 2\r\nok\r\n"));
    assert_eq!(sim.take_str(p.requestor), "");
    assert!(measurements(&mut sim, p.results).is_empty());
}

#[test]
fn failures_carry_the_reference_statuses() {
    let mut sim = sim(config(
        export(LatencySampling::Percent(100)),
        import(false),
        1,
    ));
    let p = parties(&mut sim);
    let status = |m: &Value| {
        (
            m["status"].as_u64().unwrap(),
            m["description"].as_str().unwrap().to_owned(),
            m.get("responder").is_some(),
            m["requestor"]["acc"].clone(),
            m["total"].as_u64().unwrap(),
        )
    };
    // No reply subject: 400.
    sim.send(p.requestor, "PUB echo 2\r\nhi\r\n");
    let got = measurements(&mut sim, p.results);
    assert_eq!(
        got.iter().map(status).collect::<Vec<_>>(),
        [(400, "Bad Request".to_owned(), false, "B".into(), 0)]
    );
    sim.take(p.service);
    // Nobody in A is subscribed: 503, and the route is gone.
    sim.send(p.service, "UNSUB 1\r\n");
    sim.send(p.requestor, "PUB echo inbox 2\r\nhi\r\n");
    let got = measurements(&mut sim, p.results);
    assert_eq!(
        got.iter().map(status).collect::<Vec<_>>(),
        [(503, "Service Unavailable".to_owned(), false, "B".into(), 0)]
    );
    let pending: usize = sim
        .broker
        .accounts()
        .iter()
        .map(|a| a.pending_responses)
        .sum();
    assert_eq!(pending, 0);
    // The requestor drops its interest first: 408.
    sim.send(p.service, "SUB svc 2\r\n");
    sim.send(p.requestor, "SUB once 7\r\nPUB echo once 2\r\nhi\r\n");
    let reply = request_reply(&mut sim, p.service);
    sim.send(p.requestor, "UNSUB 7\r\n");
    let got = measurements(&mut sim, p.results);
    assert_eq!(
        got.iter().map(status).collect::<Vec<_>>(),
        [(408, "Request Timeout".to_owned(), false, "B".into(), 0)]
    );
    sim.send(p.service, &format!("PUB {reply} 2\r\nok\r\n"));
    assert!(measurements(&mut sim, p.results).is_empty());
    // No response within the threshold (1s): 504 when it passes, and not before.
    sim.send(p.requestor, "PUB echo inbox 2\r\nhi\r\n");
    let reply = request_reply(&mut sim, p.service);
    let asked = sim.now;
    sim.advance(Duration::from_millis(999));
    assert!(measurements(&mut sim, p.results).is_empty());
    sim.advance(Duration::from_millis(1));
    let got = measurements(&mut sim, p.results);
    assert_eq!(
        got.iter().map(status).collect::<Vec<_>>(),
        [(504, "Service Timeout".to_owned(), false, "B".into(), 0)]
    );
    assert_eq!(sim.now - asked, Duration::from_secs(1));
    // A response after the threshold is not routed and measures nothing more.
    sim.send(p.service, &format!("PUB {reply} 2\r\nlate\r\n"));
    assert_eq!(sim.take_str(p.requestor), "");
    assert!(measurements(&mut sim, p.results).is_empty());
    assert_eq!(sim.broker.poll_timeout().map(|t| t > sim.now), Some(true));
}

#[test]
fn a_requestor_that_closes_reports_lost_interest() {
    let mut sim = sim(config(
        export(LatencySampling::Percent(100)),
        import(false),
        1,
    ));
    let p = parties(&mut sim);
    sim.send(p.requestor, "PUB echo inbox 2\r\nhi\r\n");
    request_reply(&mut sim, p.service);
    sim.broker.remove_client(p.requestor, sim.now);
    sim.pump();
    let got = measurements(&mut sim, p.results);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["status"], 408);
    // The requestor's details as they were when it asked.
    assert_eq!(
        got[0]["requestor"],
        serde_json::json!({"acc": "B", "rtt": nanos(RTT)})
    );
}

#[test]
fn share_shows_the_requestors_details_in_the_measurement_and_the_request() {
    let mut sim = sim(config(
        export(LatencySampling::Percent(100)),
        import(true),
        1,
    ));
    let p = parties(&mut sim);
    sim.send(p.requestor, "PUB echo 2\r\nhi\r\n");
    let out = sim.take_str(p.service);
    let info_line = out
        .lines()
        .find(|l| l.starts_with("Nats-Request-Info: "))
        .unwrap();
    let info: Value =
        serde_json::from_str(info_line.trim_start_matches("Nats-Request-Info: ")).unwrap();
    let got = measurements(&mut sim, p.results);
    let requestor = &got[0]["requestor"];
    assert_eq!(&info, requestor);
    assert_eq!(requestor["user"], "b");
    assert_eq!(requestor["name"], "b-app");
    assert_eq!(requestor["id"], 3);
    assert_eq!(requestor["server"], "srv");
    assert_eq!(requestor["start"], wall(RTT * 2));
}

#[test]
fn header_sampling_measures_only_requests_whose_trace_asks() {
    let mut sim = sim(config(export(LatencySampling::Headers), import(false), 1));
    let p = parties(&mut sim);
    let hpub = |headers: &str| {
        let head = format!("NATS/1.0\r\n{headers}\r\n");
        format!(
            "HPUB echo inbox {} {}\r\n{head}hi\r\n",
            head.len(),
            head.len() + 2
        )
    };
    for headers in [
        "",
        "Uber-Trace-Id: 479fefe9525eddb:5adb976bfc1f95c1:479fefe9525eddb:0\r\n",
        "X-B3-Sampled: 0\r\nX-B3-TraceId: 80f198ee\r\n",
        "traceparent: 00-4bf9-00f0-00\r\n",
    ] {
        sim.send(p.requestor, &hpub(headers));
        let reply = request_reply(&mut sim, p.service);
        sim.send(p.service, &format!("PUB {reply} 2\r\nok\r\n"));
        assert!(measurements(&mut sim, p.results).is_empty(), "{headers:?}");
    }
    sim.send(p.requestor, "PUB echo inbox 2\r\nhi\r\n");
    let reply = request_reply(&mut sim, p.service);
    sim.send(p.service, &format!("PUB {reply} 2\r\nok\r\n"));
    assert!(measurements(&mut sim, p.results).is_empty());
    sim.send(
        p.requestor,
        &hpub("uber-trace-id: 479fefe9525eddb:5adb976bfc1f95c1:479fefe9525eddb:1\r\nUberctx-Who: me\r\nOther: x\r\n"),
    );
    let reply = request_reply(&mut sim, p.service);
    sim.send(p.service, &format!("PUB {reply} 2\r\nok\r\n"));
    let got = measurements(&mut sim, p.results);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0]["header"],
        serde_json::json!({
            "Uber-Trace-Id": ["479fefe9525eddb:5adb976bfc1f95c1:479fefe9525eddb:1"],
            "Uberctx-Who": ["me"],
        })
    );
    assert_eq!(got[0]["status"], 200);
    // A header-triggered request without a reply subject is a bad request.
    let head = "NATS/1.0\r\nX-B3-Sampled: 1\r\n\r\n";
    sim.send(
        p.requestor,
        &format!(
            "HPUB echo {} {}\r\n{head}hi\r\n",
            head.len(),
            head.len() + 2
        ),
    );
    let got = measurements(&mut sim, p.results);
    assert_eq!(got[0]["status"], 400);
    assert_eq!(got[0]["header"], serde_json::json!({"X-B3-Sampled": ["1"]}));
}

/// Which of `n` requests a 50% sampling measures, with `seed`.
fn sampled(seed: u64, n: usize) -> Vec<bool> {
    let mut sim = sim(config(
        export(LatencySampling::Percent(50)),
        import(false),
        seed,
    ));
    let p = parties(&mut sim);
    (0..n)
        .map(|_| {
            sim.send(p.requestor, "PUB echo inbox 2\r\nhi\r\n");
            let reply = request_reply(&mut sim, p.service);
            sim.send(p.service, &format!("PUB {reply} 2\r\nok\r\n"));
            !measurements(&mut sim, p.results).is_empty()
        })
        .collect()
}

#[test]
fn percentage_sampling_comes_from_the_seeded_generator() {
    let first = sampled(7, 400);
    assert_eq!(
        first,
        sampled(7, 400),
        "the same seed samples the same requests"
    );
    let n = first.iter().filter(|s| **s).count();
    // `rand.Int31n(100) <= 50`: 51 in 100 on average.
    assert!((160..=250).contains(&n), "{n} of 400 sampled");
    assert_ne!(first, sampled(8, 400));
}

#[test]
fn tracking_needs_a_system_account_and_singleton_responses() {
    let check = |config: Config, want: &str| {
        let got = Broker::try_new(config, Instant::now())
            .map(|_| ())
            .unwrap_err();
        assert_eq!(got.to_string(), want);
    };
    let mut no_system = config(export(LatencySampling::Percent(50)), import(false), 1);
    no_system.system_account = None;
    check(
        no_system,
        "Error adding service latency sampling for \"svc\": system account not setup",
    );
    let mut stream = export(LatencySampling::Percent(50));
    stream.response_type = ResponseType::Stream;
    check(
        config(stream, import(false), 1),
        "Error adding service latency sampling for \"svc\" on subject \"lat\": bad service response type",
    );
    for results in ["lat.*", "svc", "a b", ""] {
        let mut bad = export(LatencySampling::Headers);
        bad.latency.as_mut().unwrap().subject = results.into();
        check(
            config(bad, import(false), 1),
            &format!(
                "Error adding service latency sampling for \"svc\" on subject \"{results}\": invalid publish subject"
            ),
        );
    }
    let zero = export(LatencySampling::Percent(0));
    check(
        config(zero, import(false), 1),
        "Error adding service latency sampling for \"svc\" on subject \"lat\": bad sampling percentage, should be 1-100",
    );
    assert!(
        Broker::try_new(
            config(export(LatencySampling::Percent(100)), import(true), 1),
            Instant::now()
        )
        .is_ok()
    );
}

#[test]
fn a_tracked_request_keeps_bounded_trace_headers() {
    let mut sim = sim(config(export(LatencySampling::Headers), import(false), 1));
    let p = parties(&mut sim);
    let ask = |sim: &mut Sim, ctx_len: usize| {
        let head = format!(
            "NATS/1.0\r\nX-B3-Sampled: 1\r\nX-B3-SpanId: {}\r\n\r\n",
            "s".repeat(ctx_len)
        );
        sim.send(
            p.requestor,
            &format!(
                "HPUB echo inbox {} {}\r\n{head}hi\r\n",
                head.len(),
                head.len() + 2
            ),
        );
        let reply = request_reply(sim, p.service);
        sim.send(p.service, &format!("PUB {reply} 2\r\nok\r\n"));
        let got = measurements(sim, p.results);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["status"], 200);
        got[0].get("header").cloned()
    };
    let kept = ask(&mut sim, 100).unwrap();
    assert_eq!(kept["X-B3-Spanid"][0].as_str().map(str::len), Some(100));
    // Past the bound the request is still measured, without its headers.
    assert_eq!(ask(&mut sim, 5000), None);
}

/// The bound on kept trace headers counts what each value holds, not only its bytes: a
/// header of thousands of empty values (a few bytes on the wire each) is not kept.
#[test]
fn many_empty_trace_values_count_toward_the_bound() {
    let mut sim = sim(config(export(LatencySampling::Headers), import(false), 1));
    let p = parties(&mut sim);
    let head = format!(
        "NATS/1.0\r\nX-B3-Sampled: 1\r\n{}\r\n",
        "X-B3-Spanid:\r\n".repeat(2000)
    );
    sim.send(
        p.requestor,
        &format!(
            "HPUB echo inbox {} {}\r\n{head}hi\r\n",
            head.len(),
            head.len() + 2
        ),
    );
    let reply = request_reply(&mut sim, p.service);
    sim.send(p.service, &format!("PUB {reply} 2\r\nok\r\n"));
    let got = measurements(&mut sim, p.results);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["status"], 200);
    assert_eq!(got[0].get("header"), None, "{}", got[0]);
}

/// A requestor that has gone while another client keeps the reply subscribed: the answer
/// is still measured, and shows the requestor as it was when it asked.
#[test]
fn a_gone_requestor_is_shown_as_it_asked() {
    let mut sim = sim(config(
        export(LatencySampling::Percent(100)),
        import(true),
        1,
    ));
    let p = parties(&mut sim);
    let keeper = login(&mut sim, "b", "SUB inbox 1\r\n");
    for _ in 0..3 {
        sim.send(p.requestor, "PUB echo inbox 2\r\nhi\r\n");
    }
    let out = sim.take_str(p.service);
    let replies: Vec<String> = out
        .lines()
        .filter(|l| l.starts_with("HMSG "))
        .map(|l| l.split(' ').nth(3).unwrap_or_default().to_owned())
        .collect();
    assert_eq!(replies.len(), 3);
    sim.broker
        .close_client(p.requestor, sim.now, CloseReason::ClientClosed);
    sim.pump();
    sim.broker.remove_client(p.requestor, sim.now);
    sim.pump();
    for reply in &replies {
        sim.send(p.service, &format!("PUB {reply} 2\r\nok\r\n"));
    }
    let got = measurements(&mut sim, p.results);
    assert_eq!(got.len(), 3, "{got:?}");
    for m in &got {
        assert_eq!(m["status"], 200);
        assert_eq!(m["requestor"]["name"], "b-app");
        assert_eq!(m["requestor"]["user"], "b");
        assert_eq!(m["requestor"]["rtt"], nanos(RTT));
    }
    assert!(sim.take_str(keeper).contains("MSG inbox 1 2\r\nok"));
}

/// A measurement that crosses an import into a tracked service is not measured again: two
/// accounts importing each other's tracked services on their results subjects do not chain.
#[test]
fn measurements_are_not_measured() {
    let tracked = |subject: &str, results: &str| ExportConfig {
        subject: subject.into(),
        latency: Some(LatencyConfig {
            sampling: LatencySampling::Percent(100),
            subject: results.into(),
        }),
        ..export(LatencySampling::Percent(100))
    };
    let imported = |account: &str, subject: &str, to: &str| ImportConfig {
        account: account.into(),
        subject: subject.into(),
        to: Some(to.into()),
        ..import(false)
    };
    let mut cfg = config(export(LatencySampling::Percent(100)), import(false), 1);
    cfg.accounts[0].exports = vec![tracked("svc", "lat"), tracked("a.svc", "a.lat")];
    cfg.accounts[0].imports = vec![imported("B", "b.svc", "lat")];
    cfg.accounts[1].exports = vec![tracked("b.svc", "b.lat")];
    cfg.accounts[1].imports = vec![
        imported("A", "svc", "echo"),
        imported("A", "a.svc", "b.lat"),
    ];
    let mut sim = sim(cfg);
    let p = parties(&mut sim);
    let b_results = login(&mut sim, "b", "SUB b.lat 1\r\nSUB b.svc 2\r\n");
    sim.send(p.requestor, "PUB echo inbox 2\r\nhi\r\n");
    let reply = request_reply(&mut sim, p.service);
    sim.send(p.service, &format!("PUB {reply} 2\r\nok\r\n"));
    // A's measurement reaches A's subscriber and, through A's import, B's service as a
    // request without a reply; that request is not measured in B.
    assert_eq!(measurements(&mut sim, p.results).len(), 1);
    let out = sim.take_str(b_results);
    assert!(out.starts_with("HMSG b.svc 2 "), "{out}");
    assert!(!out.contains("b.lat"), "{out}");
}
