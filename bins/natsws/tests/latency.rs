//! Service latency tracking through the real binary: a requestor in account B calls a service
//! imported from account A whose export has `latency`, and a subscriber on the results subject
//! in A receives the `io.nats.server.metric.v1.service_latency` measurements (answered 200,
//! bad request 400, no responder 503, interest lost 408, timeout 504, header-triggered with
//! `share`). Every scenario runs against nats-server 2.9.10 from the same configuration with
//! the same assertions, and one test compares the shape of the two servers' messages. The
//! same holds in operator mode, where the export's `service_latency` comes from A's JWT.
mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use broker::auth::jwt::{KeyPair, KeyPairType, sign_nonce};
use common::signer::{self, account_jwt, key, operator_jwt, user_jwt};
use common::{Raw, Server, Target, on_both};
use serde_json::Value;

const CONF: &str = r#"
listen: "127.0.0.1:-1"
server_name: "lat-srv"
system_account: SYS
accounts {
  A {
    users: [{user: a, password: a}]
    exports: [
      {service: "svc.echo", latency: {sampling: 100, subject: "lat.echo"}, response_threshold: "400ms"}
      {service: "svc.hdr", latency: {sampling: headers, subject: "lat.hdr"}}
    ]
  }
  B {
    users: [{user: b, password: b}]
    imports: [
      {service: {account: A, subject: "svc.echo"}, to: "echo"}
      {service: {account: A, subject: "svc.hdr"}, to: "hdr", share: true}
    ]
  }
  SYS { users: [{user: s, password: s}] }
}
"#;

/// How long the responder takes to answer.
const SERVICE_TIME: Duration = Duration::from_millis(50);

/// A TCP client of `user` (password = user name) named `name`, logged in.
fn login(srv: &Server, user: &str, name: &str) -> Raw {
    let mut raw = Raw::connect(srv.nats_port());
    assert!(raw.line().starts_with("INFO "));
    raw.send(&format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true,\
         \"user\":\"{user}\",\"pass\":\"{user}\",\"name\":\"{name}\",\"lang\":\"rust\",\
         \"version\":\"1.2.3\"}}\r\nPING\r\n"
    ));
    assert_eq!(raw.read_until("PONG\r\n"), "PONG\r\n", "{user} logged in");
    raw
}

/// Subscribes and waits until the server has processed it.
fn subscribe(client: &mut Raw, subs: &str) {
    client.send(&format!("{subs}PING\r\n"));
    client.read_until("PONG\r\n");
}

/// Reads one message (`MSG` or `HMSG`); returns its reply subject and payload. The server's
/// keep-alive PINGs are answered on the way.
fn next_msg(client: &mut Raw) -> (Option<String>, String) {
    let (reply, _, payload) = next_msg_with_header(client);
    (reply, payload)
}

/// [`next_msg`] with the header block (empty for a `MSG`).
fn next_msg_with_header(client: &mut Raw) -> (Option<String>, String, String) {
    loop {
        let line = client.line();
        assert!(!line.is_empty(), "connection ended");
        if line == "PING\r\n" {
            client.send("PONG\r\n");
            continue;
        }
        if line == "PONG\r\n" {
            continue;
        }
        let parts: Vec<&str> = line.trim_end().split(' ').collect();
        let num = |s: &str| s.parse::<usize>().unwrap();
        let (reply, header, total) = match parts.as_slice() {
            ["MSG", _, _, size] => (None, 0, num(size)),
            ["MSG", _, _, reply, size] => (Some(*reply), 0, num(size)),
            ["HMSG", _, _, header, size] => (None, num(header), num(size)),
            ["HMSG", _, _, reply, header, size] => (Some(*reply), num(header), num(size)),
            _ => panic!("unexpected line {line:?}"),
        };
        let mut body = vec![0u8; total + 2];
        std::io::Read::read_exact(&mut client.reader, &mut body).unwrap();
        body.truncate(total);
        let payload = String::from_utf8(body.split_off(header)).unwrap();
        return (
            reply.map(str::to_owned),
            String::from_utf8(body).unwrap(),
            payload,
        );
    }
}

/// The next measurement on `results`.
fn next_latency(results: &mut Raw) -> Value {
    let (_, body) = next_msg(results);
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn nanos(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

/// The keys a client's details carry, in the requestor with `share` and in the responder.
const DETAILED: [&str; 12] = [
    "acc",
    "client_type",
    "host",
    "id",
    "kind",
    "lang",
    "name",
    "rtt",
    "server",
    "start",
    "user",
    "ver",
];

/// Every measurement's common part: type, id, times and status.
fn check_common(m: &Value, status: u64, description: Option<&str>) {
    assert_eq!(m["type"], "io.nats.server.metric.v1.service_latency", "{m}");
    assert_eq!(m["status"], status, "{m}");
    assert_eq!(m["description"].as_str(), description, "{m}");
    assert_eq!(m["id"].as_str().map(str::len), Some(22), "{m}");
    let timestamp = m["timestamp"].as_str().unwrap();
    let start = m["start"].as_str().unwrap();
    for t in [timestamp, start] {
        assert!(
            t.ends_with('Z') && t.len() >= 20 && &t[10..11] == "T",
            "{t}"
        );
    }
    // Same format and zone: later times sort later, but a nanosecond fraction may be cut
    // short (trailing zeros are dropped), so compare the whole seconds.
    assert!(start[..19] <= timestamp[..19], "{m}");
}

/// The requestor without `share`: its account and round-trip time only.
fn check_plain_requestor(m: &Value) {
    let requestor = &m["requestor"];
    assert_eq!(keys(requestor), set(&["acc", "rtt"]), "{m}");
    assert_eq!(requestor["acc"], "B");
    assert!(nanos(requestor, "rtt") > 0, "{m}");
}

fn check_detailed(info: &Value, account: &str, user: &str, name: &str) {
    assert_eq!(keys(info), set(&DETAILED), "{info}");
    assert_eq!(info["acc"], account);
    assert_eq!(info["user"], user);
    assert_eq!(info["name"], name);
    assert_eq!(info["lang"], "rust");
    assert_eq!(info["ver"], "1.2.3");
    assert_eq!(info["kind"], "Client");
    assert_eq!(info["client_type"], "nats");
    assert_eq!(info["host"], "127.0.0.1");
    assert_eq!(info["server"], "lat-srv");
    assert!(info["id"].as_u64().is_some_and(|id| id > 0), "{info}");
    assert!(nanos(info, "rtt") > 0, "{info}");
}

/// An answered request's durations: the service time (with the responder's round trip)
/// covers the responder's delay, the total covers the service time and the requestor's
/// round trip.
fn check_answered(m: &Value) {
    check_common(m, 200, None);
    let service = nanos(m, "service");
    let total = nanos(m, "total");
    let system = nanos(m, "system");
    let rtt = nanos(&m["requestor"], "rtt");
    // The service time leaves out the responder's round trip (`serviceRTT - respRTT`).
    let responder_rtt = nanos(&m["responder"], "rtt");
    assert!(
        service + responder_rtt >= u64::try_from(SERVICE_TIME.as_nanos()).unwrap(),
        "{m}"
    );
    assert!(total >= service + rtt, "{m}");
    assert!(total >= system, "{m}");
    assert!(total < 10_000_000_000, "{m}");
}

/// Answers the next request `responder` receives after `delay`; returns the request's
/// `Nats-Request-Info`.
fn answer(responder: &mut Raw, delay: Duration) -> Value {
    let (reply, header, body) = next_msg_with_header(responder);
    let info = header
        .lines()
        .find_map(|l| l.strip_prefix("Nats-Request-Info: "))
        .unwrap_or_else(|| panic!("no Nats-Request-Info in {header:?}"));
    let info: Value = serde_json::from_str(info).unwrap();
    assert_eq!(body, "hi");
    std::thread::sleep(delay);
    let reply = reply.expect("a reply subject");
    assert!(reply.starts_with("_R_."), "{reply}");
    responder.send(&format!("PUB {reply} 2\r\nok\r\n"));
    info
}

/// Runs every scenario against `target`; returns the measurements in order (200, 400, 503,
/// 408, 504, header-triggered 200), or `None` when the target is not installed.
fn measurements(target: Target) -> Option<Vec<Value>> {
    let srv = target.with_config(CONF, &[])?;
    let mut results = login(&srv, "a", "results");
    subscribe(&mut results, "SUB lat.echo 1\r\nSUB lat.hdr 2\r\n");
    let mut responder = login(&srv, "a", "responder");
    subscribe(&mut responder, "SUB svc.echo 1\r\nSUB svc.hdr 2\r\n");
    let mut requestor = login(&srv, "b", "requestor");
    subscribe(&mut requestor, "SUB inbox.> 9\r\n");
    let mut got = Vec::new();

    // Answered.
    requestor.send("PUB echo inbox.1 2\r\nhi\r\n");
    let request_info = answer(&mut responder, SERVICE_TIME);
    assert_eq!(keys(&request_info), set(&["acc", "rtt"]), "{request_info}");
    let (_, response) = next_msg(&mut requestor);
    assert_eq!(response, "ok");
    let m = next_latency(&mut results);
    check_answered(&m);
    check_plain_requestor(&m);
    check_detailed(&m["responder"], "A", "a", "responder");
    assert!(m.get("header").is_none(), "{m}");
    got.push(m);

    // No reply subject.
    requestor.send("PUB echo 2\r\nhi\r\n");
    let (reply, _) = next_msg(&mut responder);
    assert_eq!(reply, None);
    let m = next_latency(&mut results);
    check_common(&m, 400, Some("Bad Request"));
    check_plain_requestor(&m);
    assert!(m.get("responder").is_none(), "{m}");
    assert_eq!((nanos(&m, "service"), nanos(&m, "total")), (0, 0), "{m}");
    got.push(m);

    // No responder: the import still counts as interest, so the requestor gets no 503
    // status, but the measurement says 503.
    subscribe(&mut responder, "UNSUB 1\r\n");
    requestor.send("PUB echo inbox.2 2\r\nhi\r\n");
    let m = next_latency(&mut results);
    check_common(&m, 503, Some("Service Unavailable"));
    check_plain_requestor(&m);
    assert!(m.get("responder").is_none(), "{m}");
    got.push(m);

    // The requestor's interest in the reply goes before the response.
    subscribe(&mut responder, "SUB svc.echo 3\r\n");
    subscribe(&mut requestor, "SUB once.1 10\r\n");
    requestor.send("PUB echo once.1 2\r\nhi\r\n");
    let (reply, _) = next_msg(&mut responder);
    subscribe(&mut requestor, "UNSUB 10\r\n");
    let m = next_latency(&mut results);
    check_common(&m, 408, Some("Request Timeout"));
    check_plain_requestor(&m);
    got.push(m);
    // A late response to it measures nothing more (the next measurement is the timeout).
    responder.send(&format!("PUB {} 2\r\nok\r\n", reply.unwrap()));

    // No response within the threshold (400ms).
    requestor.send("PUB echo inbox.3 2\r\nhi\r\n");
    let (_, body) = next_msg(&mut responder);
    assert_eq!(body, "hi");
    let m = next_latency(&mut results);
    check_common(&m, 504, Some("Service Timeout"));
    check_plain_requestor(&m);
    assert!(m.get("responder").is_none(), "{m}");
    got.push(m);

    // Sampling by headers: a request without a trace header is not measured, one whose
    // `traceparent` says sampled is, and shows that header only; `share` shows the
    // requestor's details.
    requestor.send("PUB hdr inbox.4 2\r\nhi\r\n");
    let _ = answer(&mut responder, Duration::ZERO);
    assert_eq!(next_msg(&mut requestor).1, "ok");
    let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let head = format!("NATS/1.0\r\ntraceparent: {trace}\r\nSome-Other: value\r\n\r\n");
    requestor.send(&format!(
        "HPUB hdr inbox.5 {} {}\r\n{head}hi\r\n",
        head.len(),
        head.len() + 2
    ));
    let request_info = answer(&mut responder, SERVICE_TIME);
    assert_eq!(next_msg(&mut requestor).1, "ok");
    let m = next_latency(&mut results);
    check_answered(&m);
    check_detailed(&m["requestor"], "B", "b", "requestor");
    // With `share`, the request itself carries the same details.
    check_detailed(&request_info, "B", "b", "requestor");
    check_detailed(&m["responder"], "A", "a", "responder");
    assert_eq!(
        m["header"],
        serde_json::json!({ "Traceparent": [trace] }),
        "{m}"
    );
    got.push(m);
    Some(got)
}

fn latency_measurements(target: Target) {
    measurements(target);
}
on_both!(latency_measurements);

/// The keys at every level of a measurement.
fn shape(m: &Value) -> Vec<(String, BTreeSet<String>)> {
    let mut out = vec![(String::new(), keys(m))];
    for part in ["requestor", "responder", "header"] {
        if let Some(v) = m.get(part) {
            out.push((part.to_owned(), keys(v)));
        }
    }
    out
}

/// natsws's measurements have the reference's keys at every level and its statuses.
#[test]
fn measurements_have_the_shape_of_the_reference() {
    let Some(reference) = measurements(Target::Reference) else {
        return;
    };
    let ours = measurements(Target::Natsws).unwrap();
    assert_eq!(ours.len(), reference.len());
    for (m, r) in ours.iter().zip(&reference) {
        assert_eq!(m["status"], r["status"]);
        assert_eq!(m["description"], r["description"]);
        assert_eq!(shape(m), shape(r), "natsws {m}\nnats-server {r}");
    }
}

/// Operator mode: A's JWT exports `svc.jwt` with `service_latency` (results on `lat.jwt`),
/// B's imports it as `jwt`; the system account is a third account.
fn start_operator(target: Target) -> Option<(Server, KeyPair, KeyPair)> {
    let k = signer::keys();
    let sys = key(KeyPairType::Account, 9);
    let dir = common::temp_dir("latency");
    let op = common::write_file(&dir, "op.jwt", &operator_jwt(&k));
    let text = format!(
        "listen: \"127.0.0.1:-1\"\nserver_name: \"lat-srv\"\noperator: \"{op}\"\nsystem_account: {}\nresolver: MEMORY\nresolver_preload {{\n  {}: {}\n  {}: {}\n  {}: {}\n}}\n",
        sys.public_key(),
        k.a.public_key(),
        account_jwt(
            &k,
            &k.a,
            r#","exports":[{"subject":"svc.jwt","type":"service","service_latency":{"sampling":100,"results":"lat.jwt"}}]"#
        ),
        k.b.public_key(),
        account_jwt(
            &k,
            &k.b,
            &format!(
                r#","imports":[{{"subject":"svc.jwt","account":"{}","type":"service","local_subject":"jwt"}}]"#,
                k.a.public_key()
            )
        ),
        sys.public_key(),
        account_jwt(&k, &sys, ""),
    );
    let srv = target.with_config(&text, &[])?;
    Some((srv, k.a, k.b))
}

/// A JWT user of `account` (its key made from `byte`) named `name`, logged in; returns the
/// client, the user's public key and its JWT.
fn jwt_login(srv: &Server, account: &KeyPair, byte: u8, name: &str) -> (Raw, String, String) {
    let user = key(KeyPairType::User, byte);
    let jwt = user_jwt(account, &user, "", "");
    let mut raw = Raw::connect(srv.nats_port());
    let info = raw.line();
    let start = info.find("\"nonce\":\"").expect("INFO carries a nonce") + 9;
    let nonce = info[start..].split('"').next().unwrap_or_default();
    let sig = sign_nonce(nonce, &user).unwrap();
    raw.send(&format!(
        "CONNECT {{\"verbose\":false,\"headers\":true,\"jwt\":\"{jwt}\",\"sig\":\"{sig}\",         \"name\":\"{name}\",\"lang\":\"rust\",\"version\":\"1.2.3\"}}\r\nPING\r\n"
    ));
    assert_eq!(raw.read_until("PONG\r\n"), "PONG\r\n", "{name} logged in");
    (raw, user.public_key(), jwt)
}

/// One answered request through an import of a JWT account; returns its measurement.
fn operator_measurement(target: Target) -> Option<Value> {
    let (srv, a, b) = start_operator(target)?;
    let (mut results, _, _) = jwt_login(&srv, &a, 80, "results");
    subscribe(&mut results, "SUB lat.jwt 1\r\n");
    let (mut responder, responder_key, responder_jwt) = jwt_login(&srv, &a, 81, "responder");
    subscribe(&mut responder, "SUB svc.jwt 1\r\n");
    let (mut requestor, _, _) = jwt_login(&srv, &b, 82, "requestor");
    subscribe(&mut requestor, "SUB inbox 9\r\n");
    requestor.send("PUB jwt inbox 2\r\nhi\r\n");
    let _ = answer(&mut responder, SERVICE_TIME);
    assert_eq!(next_msg(&mut requestor).1, "ok");
    let m = next_latency(&mut results);
    check_answered(&m);
    let requestor_info = &m["requestor"];
    assert_eq!(keys(requestor_info), set(&["acc", "rtt"]), "{m}");
    assert_eq!(requestor_info["acc"], b.public_key().as_str());
    let info = &m["responder"];
    let mut detailed = set(&DETAILED);
    detailed.extend(set(&["issuer_key", "jwt", "name_tag"]));
    assert_eq!(keys(info), detailed, "{m}");
    assert_eq!(info["acc"], a.public_key().as_str());
    assert_eq!(info["user"], responder_key.as_str());
    assert_eq!(info["issuer_key"], a.public_key().as_str());
    assert_eq!(info["jwt"], responder_jwt.as_str());
    assert_eq!(info["name_tag"], "n-user");
    assert_eq!(info["name"], "responder");
    Some(m)
}

fn jwt_service_latency(target: Target) {
    operator_measurement(target);
}
on_both!(jwt_service_latency);

/// In operator mode too, natsws's measurement has the reference's keys at every level.
#[test]
fn jwt_measurements_have_the_shape_of_the_reference() {
    let Some(reference) = operator_measurement(Target::Reference) else {
        return;
    };
    let ours = operator_measurement(Target::Natsws).unwrap();
    assert_eq!(
        shape(&ours),
        shape(&reference),
        "natsws {ours}\nnats-server {reference}"
    );
}

/// What `-t` says of a config: the exit code and stderr without the program's name.
fn check_config(program: &str, dir: &std::path::Path, conf: &str) -> (i32, String) {
    let path = common::write_file(dir, "check.conf", conf);
    let out = std::process::Command::new(program)
        .args(["-t", "-c", &path])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let name = std::path::Path::new(program)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let err = err
        .strip_prefix(&format!("{name}: "))
        .unwrap_or(&err)
        .trim_end()
        .to_owned();
    (out.status.code().unwrap_or(-1), err)
}

/// natsws accepts the latency settings nats-server accepts and refuses the others with its
/// errors and positions.
fn latency_settings_are_checked_as_the_reference(target: Target) {
    let Some(program) = target.program() else {
        return;
    };
    let dir = common::temp_dir("latency");
    let path = dir.join("check.conf").to_string_lossy().into_owned();
    let with = |export: &str| {
        format!(
            "system_account: SYS\naccounts {{\n  SYS {{}}\n  A {{ exports: [ {export} ] }}\n}}\n"
        )
    };
    for good in [
        r#"{service: "s", latency: "lat"}"#,
        r#"{service: "s", latency: {sampling: 50%, subject: "lat"}}"#,
        r#"{service: "s", latency: {sampling: "100%", subject: "lat"}}"#,
        r#"{service: "s", latency: {sampling: 1, subject: "lat"}}"#,
        r#"{service: "s", latency: {sampling: "+7", subject: "lat"}}"#,
        r#"{service: "s", latency: {sampling: headers, subject: "lat"}}"#,
        r#"{service: "s", latency: {sampling: " HEADERS ", subject: "lat"}}"#,
    ] {
        let (code, err) = check_config(program, &dir, &with(good));
        assert_eq!(code, 0, "{good}: {err}");
    }
    for (bad, want) in [
        (
            r#"{service: "s", latency: {sampling: 0, subject: "lat"}}"#,
            "4:43: bad sampling percentage, should be 1-100",
        ),
        (
            r#"{service: "s", latency: {sampling: "5 %", subject: "lat"}}"#,
            r#"4:43: Failed to parse latency sample: strconv.Atoi: parsing "5 ": invalid syntax"#,
        ),
        (
            r#"{service: "s", latency: {sampling: 1.5, subject: "lat"}}"#,
            "4:43: Expected latency sample to be a string or map/struct, got float64",
        ),
        (
            r#"{service: "s", latency: {sampling: 5}}"#,
            "4:33: Latency subject required, but missing",
        ),
        (
            r#"{service: "s", latency: true}"#,
            "4:33: Expected latency entry to be a map/struct or string, got bool",
        ),
        (
            r#"{service: "s", response_type: chunked, latency: "lat"}"#,
            r#"2:1: Error adding service latency sampling for "s" on subject "lat": bad service response type"#,
        ),
        (
            r#"{service: "s", latency: "s"}"#,
            r#"2:1: Error adding service latency sampling for "s" on subject "s": invalid publish subject"#,
        ),
        (
            r#"{stream: "s", latency: "lat"}"#,
            "4:32: Detected latency directive on non-service",
        ),
    ] {
        let (code, err) = check_config(program, &dir, &with(bad));
        assert_eq!((code, err), (1, format!("{path}:{want}")), "{bad}");
    }
}
on_both!(latency_settings_are_checked_as_the_reference);
