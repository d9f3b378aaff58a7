//! Accounts: isolated subject spaces, stream and service imports, response tracking and the
//! configuration errors (nats-server's `server/accounts.go`, `server/opts.go` `parseAccounts`).

mod sim;

use std::time::Duration;

use broker::auth::{AuthConfig, User};
use broker::{
    AccountConfig, Broker, ClientId, CloseReason, Config, ExportConfig, ExportKind, ImportConfig,
    ResponseType,
};
use proptest::prelude::*;
use sim::Sim;

fn user(name: &str, account: Option<&str>) -> User {
    User {
        username: name.into(),
        password: "pw".into(),
        permissions: None,
        allowed_connection_types: Vec::new(),
        account: account.map(str::to_owned),
    }
}

fn export(kind: ExportKind, subject: &str) -> ExportConfig {
    ExportConfig {
        kind,
        subject: subject.into(),
        accounts: Vec::new(),
        response_type: ResponseType::Singleton,
        response_threshold: None,
        latency: None,
    }
}

fn import(kind: ExportKind, account: &str, subject: &str) -> ImportConfig {
    ImportConfig {
        kind,
        account: account.into(),
        subject: subject.into(),
        to: None,
        prefix: None,
        share: false,
    }
}

/// Accounts `A` and `B` (users `a` and `b`), user `g` in `$G`, and `s` in `SYS`, the system
/// account.
fn config(a: AccountConfig, b: AccountConfig) -> Config {
    let sys = AccountConfig {
        name: "SYS".into(),
        ..AccountConfig::default()
    };
    Config {
        auth: AuthConfig {
            users: vec![
                user("a", Some("A")),
                user("b", Some("B")),
                user("g", None),
                user("s", Some("SYS")),
            ],
            ..AuthConfig::default()
        },
        accounts: vec![a, b, sys],
        system_account: Some("SYS".into()),
        ..Config::default()
    }
}

fn plain(name: &str) -> AccountConfig {
    AccountConfig {
        name: name.into(),
        ..AccountConfig::default()
    }
}

fn login(sim: &mut Sim, name: &str) -> ClientId {
    login_with(sim, name, "")
}

/// As [`login`], with `extra` CONNECT fields (`,"name":value`).
fn login_with(sim: &mut Sim, name: &str, extra: &str) -> ClientId {
    let id = sim.connected_client(&format!(
        "{{\"verbose\":false,\"user\":\"{name}\",\"pass\":\"pw\"{extra}}}"
    ));
    assert!(!sim.closed.contains_key(&id), "{name} refused");
    id
}

/// Sends `input` from `from`, then a PING to every client in `all` so that their output is
/// complete; returns what each got (PONGs removed).
fn exchange(sim: &mut Sim, from: ClientId, input: &str, all: &[ClientId]) -> Vec<String> {
    sim.send(from, input);
    all.iter()
        .map(|id| {
            sim.send(*id, "PING\r\n");
            let out = sim.take_str(*id);
            // Each message is two lines here (no payload holds a line break); sorted, since
            // the order between a client's subscriptions is not specified.
            let lines: Vec<&str> = out
                .split_inclusive("\r\n")
                .filter(|l| *l != "PONG\r\n" && *l != "PING\r\n")
                .collect();
            let mut msgs: Vec<String> = lines.chunks(2).map(|pair| pair.concat()).collect();
            msgs.sort();
            msgs.concat()
        })
        .collect()
}

#[test]
fn accounts_are_isolated() {
    let mut sim = Sim::new(config(plain("A"), plain("B")));
    let a = login(&mut sim, "a");
    let b = login(&mut sim, "b");
    let g = login(&mut sim, "g");
    let s = login(&mut sim, "s");
    let all = [a, b, g, s];
    for id in all {
        sim.send(id, "SUB foo 1\r\nSUB > 2\r\n");
    }
    let got = exchange(&mut sim, b, "PUB foo 2\r\nhi\r\n", &all);
    assert_eq!(got[0], "");
    assert_eq!(got[1], "MSG foo 1 2\r\nhi\r\nMSG foo 2 2\r\nhi\r\n");
    assert_eq!(got[2], "");
    assert_eq!(got[3], "");
    let got = exchange(&mut sim, g, "PUB foo 1\r\nx\r\n", &all);
    assert_eq!(
        got,
        ["", "", "MSG foo 1 1\r\nx\r\nMSG foo 2 1\r\nx\r\n", ""]
    );
    let got = exchange(&mut sim, s, "PUB foo 1\r\ny\r\n", &all);
    assert_eq!(
        got,
        ["", "", "", "MSG foo 1 1\r\ny\r\nMSG foo 2 1\r\ny\r\n"]
    );
    let info = sim.broker.client_info(a, sim.now).unwrap();
    assert_eq!(info.account, "A");
    assert!(info.subscriptions.iter().all(|sub| sub.account == "A"));
    assert_eq!(sim.broker.subscriptions_in(Some("B"), None).len(), 2);
    assert_eq!(sim.broker.subscriptions_in(Some("nope"), None).len(), 0);
    assert_eq!(sim.broker.system_account(), Some("SYS"));
    let accounts = sim.broker.accounts();
    let names: Vec<&str> = accounts.iter().map(|acc| acc.name.as_str()).collect();
    assert_eq!(names, ["$G", "A", "B", "SYS"]);
    assert!(accounts.iter().all(|acc| acc.connections == 1));
    assert!(
        accounts
            .iter()
            .all(|acc| acc.sublist.num_subscriptions == 2)
    );
    assert!(
        accounts
            .iter()
            .all(|acc| acc.is_system == (acc.name == "SYS"))
    );
}

#[test]
fn a_client_without_credentials_is_in_the_global_account() {
    let mut sim = Sim::new(Config {
        accounts: vec![plain("A")],
        ..Config::default()
    });
    let c = sim.connected_client("{\"verbose\":false}");
    assert_eq!(sim.broker.client_info(c, sim.now).unwrap().account, "$G");
    assert_eq!(sim.broker.system_account(), Some("$SYS"));
}

#[test]
fn no_auth_user_of_an_account() {
    let mut cfg = config(plain("A"), plain("B"));
    cfg.auth.no_auth_user = Some("a".into());
    let mut sim = Sim::new(cfg);
    let anon = sim.connected_client("{\"verbose\":false}");
    let a = login(&mut sim, "a");
    let b = login(&mut sim, "b");
    assert_eq!(sim.broker.client_info(anon, sim.now).unwrap().account, "A");
    sim.send(a, "SUB foo 1\r\n");
    sim.send(b, "SUB foo 1\r\n");
    let got = exchange(&mut sim, anon, "PUB foo 1\r\nz\r\n", &[a, b]);
    assert_eq!(got, ["MSG foo 1 1\r\nz\r\n", ""]);
}

fn stream_config(to: Option<&str>, prefix: Option<&str>) -> Config {
    let a = AccountConfig {
        name: "A".into(),
        exports: vec![export(ExportKind::Stream, "events.>")],
        ..AccountConfig::default()
    };
    let b = AccountConfig {
        name: "B".into(),
        imports: vec![ImportConfig {
            to: to.map(str::to_owned),
            prefix: prefix.map(str::to_owned),
            ..import(ExportKind::Stream, "A", "events.>")
        }],
        ..AccountConfig::default()
    };
    config(a, b)
}

#[test]
fn stream_import_with_prefix() {
    let mut sim = Sim::new(stream_config(None, Some("from_a")));
    let a = login(&mut sim, "a");
    let b = login(&mut sim, "b");
    let g = login(&mut sim, "g");
    sim.send(a, "SUB > 1\r\n");
    sim.send(b, "SUB > 1\r\n");
    sim.send(g, "SUB > 1\r\n");
    let all = [a, b, g];
    let got = exchange(&mut sim, a, "PUB events.x r 1\r\n1\r\n", &all);
    assert_eq!(
        got,
        [
            "MSG events.x 1 r 1\r\n1\r\n",
            "MSG from_a.events.x 1 r 1\r\n1\r\n",
            ""
        ]
    );
    // Only what is exported crosses, and only one way.
    let got = exchange(&mut sim, a, "PUB other 1\r\n2\r\n", &all);
    assert_eq!(got, ["MSG other 1 1\r\n2\r\n", "", ""]);
    let got = exchange(&mut sim, b, "PUB events.x 1\r\n3\r\n", &all);
    assert_eq!(got, ["", "MSG events.x 1 1\r\n3\r\n", ""]);
}

#[test]
fn stream_import_of_a_literal_subject_with_to() {
    let mut cfg = stream_config(None, None);
    cfg.accounts[1].imports = vec![ImportConfig {
        to: Some("local.ev".into()),
        ..import(ExportKind::Stream, "A", "events.one")
    }];
    let mut sim = Sim::new(cfg);
    let a = login(&mut sim, "a");
    let b = login(&mut sim, "b");
    sim.send(b, "SUB > 1\r\n");
    let got = exchange(
        &mut sim,
        a,
        "PUB events.one 1\r\n1\r\nPUB events.two 1\r\n2\r\n",
        &[b],
    );
    assert_eq!(got, ["MSG local.ev 1 1\r\n1\r\n"]);
}

/// `A` exports `svc.>` as a service with `response_type`; `B` imports `svc.echo` as `echo`.
fn service_config(response_type: ResponseType, threshold: Option<Duration>) -> Config {
    let a = AccountConfig {
        name: "A".into(),
        exports: vec![ExportConfig {
            response_type,
            response_threshold: threshold,
            ..export(ExportKind::Service, "svc.>")
        }],
        ..AccountConfig::default()
    };
    let b = AccountConfig {
        name: "B".into(),
        imports: vec![ImportConfig {
            to: Some("echo".into()),
            ..import(ExportKind::Service, "A", "svc.echo")
        }],
        ..AccountConfig::default()
    };
    config(a, b)
}

/// The service (in `A`) and the requester (in `B`, subscribed to `inbox.>`) after one request;
/// returns them and the reply subject the service saw.
fn requested(sim: &mut Sim) -> (ClientId, ClientId, String) {
    let service = login(sim, "a");
    let requester = login(sim, "b");
    sim.send(service, "SUB svc.echo 7\r\n");
    sim.send(requester, "SUB inbox.> 3\r\n");
    let got = exchange(
        sim,
        requester,
        "PUB echo inbox.1 3\r\nreq\r\n",
        &[service, requester],
    );
    assert_eq!(got[1], "");
    let line = got[0].lines().next().unwrap().to_owned();
    let parts: Vec<&str> = line.split(' ').collect();
    assert_eq!(&parts[..3], ["MSG", "svc.echo", "7"], "{line}");
    assert_eq!(parts[4], "3");
    let reply = parts[3].to_owned();
    assert!(reply.starts_with("_R_."), "{reply}");
    assert!(got[0].ends_with("\r\nreq\r\n"));
    (service, requester, reply)
}

#[test]
fn singleton_service_answers_once() {
    let mut sim = Sim::new(service_config(ResponseType::Singleton, None));
    let (service, requester, reply) = requested(&mut sim);
    let answer = format!("PUB {reply} 2\r\nok\r\n");
    let got = exchange(&mut sim, service, &answer, &[requester]);
    assert_eq!(got, ["MSG inbox.1 3 2\r\nok\r\n"]);
    // The route is used up: a second response goes nowhere.
    let got = exchange(&mut sim, service, &answer, &[requester]);
    assert_eq!(got, [""]);
    assert!(
        sim.broker
            .accounts()
            .iter()
            .all(|a| a.pending_responses == 0)
    );
}

#[test]
fn stream_service_answers_until_the_threshold() {
    let threshold = Duration::from_secs(5);
    let mut sim = Sim::new(service_config(ResponseType::Stream, Some(threshold)));
    let (service, requester, reply) = requested(&mut sim);
    let answer = format!("PUB {reply} 1\r\nx\r\n");
    for _ in 0..3 {
        let got = exchange(&mut sim, service, &answer, &[requester]);
        assert_eq!(got, ["MSG inbox.1 3 1\r\nx\r\n"]);
    }
    sim.advance(threshold);
    let got = exchange(&mut sim, service, &answer, &[requester]);
    assert_eq!(got, [""]);
}

#[test]
fn chunked_service_answers_until_the_threshold() {
    let mut sim = Sim::new(service_config(ResponseType::Chunked, None));
    let (service, requester, reply) = requested(&mut sim);
    let answer = format!("PUB {reply} 1\r\nc\r\n");
    let got = exchange(&mut sim, service, &answer, &[requester]);
    assert_eq!(got, ["MSG inbox.1 3 1\r\nc\r\n"]);
    let got = exchange(&mut sim, service, &answer, &[requester]);
    assert_eq!(got, ["MSG inbox.1 3 1\r\nc\r\n"]);
    // The default threshold is two minutes.
    sim.advance(Duration::from_secs(119));
    assert_eq!(
        exchange(&mut sim, service, &answer, &[requester]),
        ["MSG inbox.1 3 1\r\nc\r\n"]
    );
    sim.advance(Duration::from_secs(1));
    assert_eq!(exchange(&mut sim, service, &answer, &[requester]), [""]);
}

/// A request that crosses a service import carries `Nats-Request-Info` with the requester's
/// account and round-trip time (nanoseconds, left out while zero), set over any header the
/// requester sent; responses get none (nats-server 2.9.10 `processServiceImport`).
#[test]
fn requests_across_an_import_carry_the_request_info_header() {
    let mut sim = Sim::new(service_config(ResponseType::Singleton, None));
    let service = login_with(&mut sim, "a", ",\"headers\":true");
    sim.send(service, "SUB svc.echo 7\r\n");
    let slow = sim.client();
    sim.advance(Duration::from_millis(3));
    sim.send(
        slow,
        "CONNECT {\"verbose\":false,\"headers\":true,\"user\":\"b\",\"pass\":\"pw\"}\r\n",
    );
    let fast = login_with(&mut sim, "b", ",\"headers\":true");
    sim.take(slow);
    sim.send(slow, "SUB inbox.> 3\r\n");
    let reply_of = |msg: &str| msg.split(' ').nth(3).unwrap().to_owned();

    sim.send(slow, "PUB echo inbox.1 3\r\nreq\r\n");
    let got = sim.take_str(service);
    let info = "NATS/1.0\r\nNats-Request-Info: {\"acc\":\"B\",\"rtt\":3000000}\r\n\r\n";
    let reply = reply_of(&got);
    assert_eq!(
        got,
        format!(
            "HMSG svc.echo 7 {reply} {} {}\r\n{info}req\r\n",
            info.len(),
            info.len() + 3
        )
    );
    sim.send(service, &format!("PUB {reply} 2\r\nok\r\n"));
    assert_eq!(sim.take_str(slow), "MSG inbox.1 3 2\r\nok\r\n");

    // A requester's own header of that name is replaced, its other headers kept.
    let forged = "NATS/1.0\r\nA: 1\r\nNats-Request-Info: {\"acc\":\"A\"}\r\n\r\n";
    sim.send(
        fast,
        &format!(
            "HPUB echo inbox.2 {} {}\r\n{forged}x\r\n",
            forged.len(),
            forged.len() + 1
        ),
    );
    let got = sim.take_str(service);
    let header = "NATS/1.0\r\nA: 1\r\nNats-Request-Info: {\"acc\":\"B\"}\r\n\r\n";
    let reply = reply_of(&got);
    assert_eq!(
        got,
        format!(
            "HMSG svc.echo 7 {reply} {} {}\r\n{header}x\r\n",
            header.len(),
            header.len() + 1
        )
    );

    // A large request (queued by reference) arrives whole, to every subscriber.
    let second = login_with(&mut sim, "a", ",\"headers\":true");
    sim.send(second, "SUB svc.echo 8\r\n");
    let big = "z".repeat(3 * broker::outq::SHARE_THRESHOLD_BYTES);
    sim.send(
        fast,
        &format!("PUB echo inbox.3 {}\r\n{big}\r\n", big.len()),
    );
    let header = "NATS/1.0\r\nNats-Request-Info: {\"acc\":\"B\"}\r\n\r\n";
    for (client, sid) in [(service, 7), (second, 8)] {
        let got = sim.take_str(client);
        let reply = reply_of(&got);
        assert_eq!(
            got,
            format!(
                "HMSG svc.echo {sid} {reply} {} {}\r\n{header}{big}\r\n",
                header.len(),
                header.len() + big.len()
            )
        );
    }
}

/// Routes pending in all accounts.
fn pending(sim: &Sim) -> usize {
    sim.broker
        .accounts()
        .iter()
        .map(|a| a.pending_responses)
        .sum()
}

/// A stream service in `A` and a requester in `B` whose subscriptions are `subs`; the
/// requester sends one request with reply `inbox.1`. Returns both and the rewritten reply.
fn stream_request(sim: &mut Sim, subs: &str) -> (ClientId, ClientId, String) {
    let service = login(sim, "a");
    let requester = login(sim, "b");
    sim.send(service, "SUB svc.echo 7\r\n");
    sim.send(requester, subs);
    let got = exchange(sim, requester, "PUB echo inbox.1 1\r\nq\r\n", &[service]);
    let reply = got[0].split(' ').nth(3).unwrap().to_owned();
    assert!(reply.starts_with("_R_."), "{got:?}");
    assert_eq!(pending(sim), 1);
    (service, requester, reply)
}

/// When nothing in the requester's account is subscribed to the reply subject any more
/// (UNSUB of it or of a wildcard covering it, or the requester closing), the response route
/// goes: a later subscriber to that subject gets no responses (nats-server 2.9.10
/// `checkForReverseEntry` from `client.unsubscribe`).
#[test]
fn response_routes_end_with_the_requesters_interest() {
    let threshold = Some(Duration::from_secs(60));
    for (subs, unsub) in [
        ("SUB inbox.1 3\r\n", "UNSUB 3\r\n"),
        ("SUB inbox.* 3\r\n", "UNSUB 3\r\n"),
        ("SUB inbox.> 3\r\n", "UNSUB 3\r\n"),
        ("SUB *.1 3\r\n", "UNSUB 3\r\n"),
        ("SUB inbox.1 q 3\r\n", "UNSUB 3\r\n"),
        // Auto-unsubscribed by the first response.
        ("SUB inbox.1 3\r\nUNSUB 3 1\r\n", ""),
    ] {
        let mut sim = Sim::new(service_config(ResponseType::Stream, threshold));
        let (service, requester, reply) = stream_request(&mut sim, subs);
        let answer = format!("PUB {reply} 1\r\nx\r\n");
        let got = exchange(&mut sim, service, &answer, &[requester]);
        assert_eq!(got, ["MSG inbox.1 3 1\r\nx\r\n"], "{subs}");
        sim.send(requester, unsub);
        assert_eq!(pending(&sim), 0, "{subs}");
        sim.send(requester, "SUB inbox.1 4\r\n");
        let got = exchange(&mut sim, service, &answer, &[requester]);
        assert_eq!(got, [""], "{subs}");
    }

    // The requester closing ends its routes too; another subscriber then gets nothing.
    let mut sim = Sim::new(service_config(ResponseType::Stream, threshold));
    let (service, requester, reply) = stream_request(&mut sim, "SUB inbox.1 3\r\n");
    let late = login(&mut sim, "b");
    sim.broker
        .close_client(requester, sim.now, CloseReason::ClientClosed);
    sim.pump();
    assert_eq!(pending(&sim), 0);
    sim.send(late, "SUB inbox.1 4\r\n");
    let got = exchange(
        &mut sim,
        service,
        &format!("PUB {reply} 1\r\nx\r\n"),
        &[late],
    );
    assert_eq!(got, [""]);
}

/// A route stays while anything in the requester's account is still subscribed to the reply
/// subject, and an UNSUB of an unrelated subject leaves it.
#[test]
fn response_routes_stay_while_interest_remains() {
    let threshold = Some(Duration::from_secs(60));
    let mut sim = Sim::new(service_config(ResponseType::Stream, threshold));
    let (service, requester, reply) = stream_request(
        &mut sim,
        "SUB inbox.> 3\r\nSUB inbox.1 4\r\nSUB other.1 5\r\nSUB inbox.2 6\r\n",
    );
    let watcher = login(&mut sim, "b");
    sim.send(watcher, "SUB inbox.* 9\r\n");
    sim.send(requester, "UNSUB 4\r\nUNSUB 5\r\nUNSUB 6\r\nUNSUB 3\r\n");
    assert_eq!(pending(&sim), 1);
    let answer = format!("PUB {reply} 1\r\nx\r\n");
    let got = exchange(&mut sim, service, &answer, &[requester, watcher]);
    assert_eq!(got, ["", "MSG inbox.1 9 1\r\nx\r\n"]);
    sim.send(watcher, "UNSUB 9\r\n");
    assert_eq!(pending(&sim), 0);
}

#[test]
fn service_import_is_the_only_way_in() {
    let mut sim = Sim::new(service_config(ResponseType::Singleton, None));
    let service = login(&mut sim, "a");
    let requester = login(&mut sim, "b");
    sim.send(service, "SUB > 7\r\n");
    // The exported subject itself is not visible from B, nor are other subjects.
    let got = exchange(
        &mut sim,
        requester,
        "PUB svc.echo 1\r\n1\r\nPUB svc.other 1\r\n2\r\n",
        &[service],
    );
    assert_eq!(got, [""]);
    // A request without a reply still reaches the service, under the exported subject.
    let got = exchange(&mut sim, requester, "PUB echo 1\r\n3\r\n", &[service]);
    assert_eq!(got, ["MSG svc.echo 7 1\r\n3\r\n"]);
    // A reply subject of A's own cannot be forged into a route: nothing tracks it.
    let got = exchange(&mut sim, service, "PUB _R_.abc 1\r\n4\r\n", &[requester]);
    assert_eq!(got, [""]);
}

#[test]
fn restricted_export_admits_only_the_named_accounts() {
    let mut cfg = stream_config(None, None);
    cfg.accounts[0].exports[0].accounts = vec!["SYS".into()];
    let err = Broker::try_new(cfg, std::time::Instant::now()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Error adding stream import \"events.>\": stream import not authorized"
    );
    let mut cfg = stream_config(None, None);
    cfg.accounts[0].exports[0].accounts = vec!["B".into()];
    assert!(Broker::try_new(cfg, std::time::Instant::now()).is_ok());
}

#[test]
fn configuration_errors_have_the_reference_texts() {
    let check = |cfg: Config, expect: &str| {
        let err = Broker::try_new(cfg, std::time::Instant::now()).unwrap_err();
        assert_eq!(err.to_string(), expect);
    };
    // An import of a subject that is not exported.
    let mut cfg = stream_config(None, None);
    cfg.accounts[1].imports = vec![import(ExportKind::Stream, "A", "private.x")];
    check(
        cfg,
        "Error adding stream import \"private.x\": stream import not authorized",
    );
    // A service import of a stream export.
    let mut cfg = stream_config(None, None);
    cfg.accounts[1].imports = vec![import(ExportKind::Service, "A", "events.x")];
    check(
        cfg,
        "Error adding service import \"events.x\": service import not authorized",
    );
    // Unknown account.
    let mut cfg = stream_config(None, None);
    cfg.accounts[1].imports = vec![import(ExportKind::Stream, "Z", "events.x")];
    check(cfg, "\"Z\" account not defined for stream import");
    // Two accounts importing each other's stream on the same subject.
    let mut cfg = stream_config(None, None);
    cfg.accounts[0].imports = vec![import(ExportKind::Stream, "B", "events.>")];
    cfg.accounts[1].exports = vec![export(ExportKind::Stream, "events.>")];
    check(
        cfg,
        "Error adding stream import \"events.>\": import forms a cycle",
    );
    // Services too.
    let mut cfg = service_config(ResponseType::Singleton, None);
    cfg.accounts[1].imports = vec![import(ExportKind::Service, "A", "svc.x")];
    cfg.accounts[1].exports = vec![export(ExportKind::Service, "svc.x")];
    cfg.accounts[0].imports = vec![import(ExportKind::Service, "B", "svc.x")];
    check(
        cfg,
        "Error adding service import \"svc.x\": import forms a cycle",
    );
}

#[test]
fn a_reload_that_moves_a_user_closes_its_client() {
    let cfg = config(plain("A"), plain("B"));
    let mut sim = Sim::new(cfg.clone());
    let a = login(&mut sim, "a");
    let b = login(&mut sim, "b");
    let mut moved = cfg;
    moved.auth.users[0].account = Some("B".into());
    sim.broker.reload(moved, sim.now);
    sim.pump();
    assert_eq!(sim.closed.get(&a), Some(&CloseReason::ClientClosed));
    assert_eq!(sim.closed.get(&b), None);
}

#[test]
fn response_routes_are_bounded() {
    let mut sim = Sim::new(service_config(ResponseType::Stream, None));
    let service = login(&mut sim, "a");
    sim.send(service, "SUB svc.> 1\r\n");
    let requester = login(&mut sim, "b");
    let n = broker::MAX_RESPONSE_ROUTES + 10;
    let input: String = (0..n)
        .map(|i| format!("PUB echo r.{i} 0\r\n\r\n"))
        .collect();
    sim.send(requester, &input);
    let pending: usize = sim
        .broker
        .accounts()
        .iter()
        .map(|a| a.pending_responses)
        .sum();
    assert_eq!(pending, broker::MAX_RESPONSE_ROUTES);
}

/// An UNSUB of a wildcard looks at no more than `MAX_RELEASE_SCAN` owed routes: the others
/// stay until their threshold. A flood of requests cannot make each UNSUB scan them all.
#[test]
fn a_wildcard_unsub_looks_at_a_bounded_number_of_routes() {
    let mut sim = Sim::new(service_config(ResponseType::Stream, None));
    // A route is kept only for a request some subscriber of the exporter received.
    let service = login(&mut sim, "a");
    sim.send(service, "SUB svc.> 1\r\n");
    let requester = login(&mut sim, "b");
    let n = broker::MAX_RELEASE_SCAN + 10;
    let mut input = "SUB r.* 1\r\n".to_owned();
    input.extend((0..n).map(|i| format!("PUB echo r.{i} 0\r\n\r\n")));
    sim.send(requester, &input);
    assert_eq!(pending(&sim), n);
    sim.send(requester, "UNSUB 1\r\n");
    assert_eq!(pending(&sim), 10);
}

/// One step of the isolation property: a client (by index) subscribes or publishes.
#[derive(Debug, Clone)]
enum Step {
    Sub { client: usize, subject: usize },
    Pub { client: usize, subject: usize },
}

const SUBJECTS: [&str; 6] = ["a", "b", "a.b", "a.*", "a.>", ">"];
const LITERALS: [&str; 3] = ["a", "b", "a.b"];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..6usize, 0..SUBJECTS.len()).prop_map(|(client, subject)| Step::Sub { client, subject }),
        (0..6usize, 0..LITERALS.len()).prop_map(|(client, subject)| Step::Pub { client, subject }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// No message crosses accounts without an import: with three accounts, random stream
    /// exports/imports between them and random subscriptions and publishes, every delivery
    /// is in the publisher's account or goes through an import whose exported subject
    /// matches the published one (and then carries the import's prefix).
    #[test]
    fn no_message_crosses_accounts_without_an_import(
        imports in proptest::collection::vec((0..3usize, 0..3usize, 0..SUBJECTS.len()), 0..4),
        steps in proptest::collection::vec(step(), 1..40),
    ) {
        let names = ["X", "Y", "Z"];
        let mut accounts: Vec<AccountConfig> = names.iter().map(|n| plain(n)).collect();
        let mut edges = Vec::new();
        for (exporter, importer, subject) in imports {
            if exporter == importer {
                continue;
            }
            let subject = SUBJECTS[subject];
            accounts[exporter].exports.push(export(ExportKind::Stream, subject));
            accounts[importer].imports.push(ImportConfig {
                prefix: Some(format!("from{exporter}")),
                ..import(ExportKind::Stream, names[exporter], subject)
            });
            edges.push((exporter, importer, subject));
        }
        let users = (0..6).map(|i| user(&format!("u{i}"), Some(names[i % 3]))).collect();
        let cfg = Config {
            auth: AuthConfig { users, ..AuthConfig::default() },
            accounts,
            ..Config::default()
        };
        if Broker::try_new(cfg.clone(), std::time::Instant::now()).is_err() {
            // A cycle: refused at start-up, nothing to route.
            return Ok(());
        }
        let mut sim = Sim::new(cfg);
        let clients: Vec<ClientId> = (0..6).map(|i| login(&mut sim, &format!("u{i}"))).collect();
        for step in steps {
            match step {
                Step::Sub { client, subject } => {
                    sim.send(clients[client], &format!("SUB {} {}\r\n", SUBJECTS[subject], subject));
                }
                Step::Pub { client, subject } => {
                    let subj = LITERALS[subject];
                    let got = exchange(&mut sim, clients[client], &format!("PUB {subj} 1\r\nm\r\n"), &clients);
                    let from = client % 3;
                    for (receiver, out) in got.iter().enumerate() {
                        let to = receiver % 3;
                        for line in out.lines().filter(|l| l.starts_with("MSG ")) {
                            let delivered = line.split(' ').nth(1).unwrap();
                            if delivered == subj && to == from {
                                continue;
                            }
                            let prefixed = format!("from{from}.{subj}");
                            let allowed = delivered == prefixed
                                && edges.iter().any(|(e, i, s)| {
                                    *e == from && *i == to && broker::subject::matches(s.as_bytes(), subj.as_bytes())
                                });
                            prop_assert!(allowed, "{line} reached account {to} from {from}");
                        }
                    }
                }
            }
        }
    }
}

/// A system service takes the messages published in the system account on its subject (the
/// whole message, headers included, as nats-server's system client takes it) and counts as
/// an interest; the server's answer reaches the requester.
/// Other accounts' messages on the same subject are not its.
#[test]
fn system_services_answer_in_the_system_account() {
    let mut sim = Sim::new(config(plain("A"), plain("B")));
    let svc = sim.broker.add_system_service("$SYS.REQ.X.*").unwrap();
    assert_eq!(
        sim.broker.add_system_service("bad subject"),
        Err(broker::ServiceError::InvalidSubject)
    );
    let s = login_with(&mut sim, "s", ",\"headers\":true,\"no_responders\":true");
    let a = login_with(&mut sim, "a", ",\"headers\":true,\"no_responders\":true");
    sim.send(
        s,
        "SUB _INBOX.1 9\r\nHPUB $SYS.REQ.X.y _INBOX.1 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n",
    );
    assert_eq!(sim.take_str(s), "PONG\r\n", "no no-responders status");
    assert_eq!(
        sim.requests,
        [(
            svc,
            "$SYS.REQ.X.y".to_owned(),
            Some("_INBOX.1".to_owned()),
            b"NATS/1.0\r\n\r\nhi".to_vec(),
            12
        )]
    );
    let now = sim.now;
    sim.broker.publish_system(now, "_INBOX.1", b"answer");
    sim.pump();
    assert_eq!(sim.take_str(s), "MSG _INBOX.1 9 6\r\nanswer\r\n");
    sim.send(
        a,
        "SUB _INBOX.1 9\r\nHPUB $SYS.REQ.X.y _INBOX.1 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n",
    );
    assert_eq!(sim.requests.len(), 1, "not a system account message");
    assert!(sim.take_str(a).contains("NATS/1.0 503"));
}
