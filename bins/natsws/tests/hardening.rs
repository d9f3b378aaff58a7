//! Hostile and unlucky clients through the real binary: memory stays bounded, no client stalls
//! the others, and where the behaviour shows on the wire, natsws answers as nats-server does.
//!
//! Every scenario whose outcome is visible on the wire runs twice, as `<scenario>::natsws` and
//! `<scenario>::nats_server`, with the same assertions, so the reference proves the test right.
//! Bounds that only natsws promises (its RSS, beating the reference's bcrypt queue) are checked
//! on natsws alone; on nats-server the measured figure is printed instead.
mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Raw, RawWs, RssPeak, Server, StallProbe, Target, check_natsws_bound, on_both};

const MIB: u64 = 1024 * 1024;

/// The most a hostile connection may grow natsws by in these scenarios. Bounded natsws stays
/// within a few MiB; today's release build grows by 145 MiB under 20 MiB of pings and by 175
/// MiB under 4 MiB of pipelined `GET /varz` (nats-server: 6 MiB).
const MAX_GROWTH_BYTES: u64 = 16 * MIB;

/// Tighter for the ping floods: owed pongs need only a small bound before the server stops
/// reading. Today's debug build reads so slowly that it grows by only 10 to 12 MiB in the
/// time allowed (and stalls everyone meanwhile); its release build grows by 145 MiB.
const MAX_PING_FLOOD_GROWTH_BYTES: u64 = 8 * MIB;

/// The most natsws may grow by while 20 big `/connz` pages are asked for at once: a few pages
/// (each some 10 MiB of summaries) and their replies in flight.
const MAX_WAITING_PAGES_GROWTH_BYTES: u64 = 80 * MIB;

/// The slowest PING→PONG round trip another client may see while one client misbehaves.
/// nats-server stays between 80 and 400 ms here when the tests share two busy cores; natsws
/// today stalls others for 4 s to over 10 s.
const MAX_STALL: Duration = Duration::from_secs(1);

/// Writes `chunk` over and over on a nonblocking socket until `total` bytes are written, the
/// peer stops reading for good, or `for_at_most` has passed. A server that stops reading (the
/// backpressure under test) makes the writes block, so the loop must not. Returns the bytes
/// written.
fn flood(stream: &TcpStream, chunk: &[u8], total: usize, for_at_most: Duration) -> usize {
    stream.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + for_at_most;
    let mut written = 0;
    let mut offset = 0;
    let mut writer = stream;
    while written < total && Instant::now() < deadline {
        match writer.write(&chunk[offset..]) {
            Ok(n) => {
                written += n;
                offset = (offset + n) % chunk.len();
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // The server cut the connection: that is one of the allowed outcomes.
            Err(_) => break,
        }
    }
    written
}

/// A run of masked, empty PING frames (6 bytes each).
fn masked_pings(n: usize) -> Vec<u8> {
    [0x89u8, 0x80, 0x12, 0x34, 0x56, 0x78].repeat(n)
}

const FLOOD_CONF: &str = "listen: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:-1\"\nwebsocket { listen: \"127.0.0.1:-1\", no_tls: true }\nwrite_deadline: \"2s\"\n";

/// How much to flood with, and for how long at most.
const FLOOD_BYTES: usize = 20 * 1024 * 1024;
const FLOOD_TIME: Duration = Duration::from_secs(5);

/// After a flood, RSS is watched until it has not grown for `SETTLE_QUIET` (at most
/// `SETTLE_CAP`): the server may still be working through what the kernel buffered for it.
const SETTLE_QUIET: Duration = Duration::from_secs(1);
const SETTLE_CAP: Duration = Duration::from_secs(8);

/// Floods masked empty pings from a ws connection that never reads (after CONNECT when
/// `connect_first`), while another client measures its round trips. Returns (RSS growth,
/// slowest round trip).
fn ping_flood(target: Target, connect_first: bool) -> Option<(u64, Duration)> {
    let srv = target.with_config(FLOOD_CONF, &[])?;
    let mut ws = RawWs::upgraded(srv.ws_port(), "");
    if connect_first {
        ws.send(b"CONNECT {\"verbose\":false}\r\n");
    }
    let probe = StallProbe::start(srv.nats_port());
    std::thread::sleep(Duration::from_millis(100));
    let baseline = srv.rss_bytes();
    let peak = RssPeak::start(srv.pid());
    let pings = masked_pings(16 * 1024);
    let sent = flood(&ws.stream, &pings, FLOOD_BYTES, FLOOD_TIME);
    peak.settle(SETTLE_QUIET, SETTLE_CAP);
    let growth = peak.stop().saturating_sub(baseline);
    let (stall, n_round_trips) = probe.stop();
    eprintln!(
        "{target:?}: sent {} MiB of pings, RSS grew {} MiB, slowest other round trip {stall:?} ({n_round_trips} made)",
        sent as u64 / MIB,
        growth / MIB
    );
    Some((growth, stall))
}

/// Pongs owed to a connection that never sends CONNECT and never reads count toward what it may
/// have pending: the server stops reading from it instead of queueing a pong per ping, and
/// other clients keep being served promptly meanwhile.
fn ping_flood_before_connect(target: Target) {
    let Some((growth, stall)) = ping_flood(target, false) else {
        return;
    };
    check_natsws_bound(
        target,
        "RSS growth under a ping flood before CONNECT",
        growth < MAX_PING_FLOOD_GROWTH_BYTES,
        &format!("{} MiB", growth / MIB),
    );
    assert!(stall < MAX_STALL, "another client waited {stall:?}");
}
on_both!(ping_flood_before_connect);

/// The same after CONNECT: the flooding connection is cut or its memory bounded, and other
/// clients keep being served promptly meanwhile.
fn ping_flood_after_connect(target: Target) {
    let Some((growth, stall)) = ping_flood(target, true) else {
        return;
    };
    check_natsws_bound(
        target,
        "RSS growth under a ping flood after CONNECT",
        growth < MAX_PING_FLOOD_GROWTH_BYTES,
        &format!("{} MiB", growth / MIB),
    );
    assert!(stall < MAX_STALL, "another client waited {stall:?}");
}
on_both!(ping_flood_after_connect);

/// One socket pipelines 4 MiB of `GET /varz` and never reads the replies: the server stops
/// reading it while its replies are unsent, and other clients are not delayed.
fn pipelined_monitoring_requests(target: Target) {
    let Some(srv) = target.with_config(FLOOD_CONF, &[]) else {
        return;
    };
    let probe = StallProbe::start(srv.nats_port());
    let http = TcpStream::connect(("127.0.0.1", srv.http_port())).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let baseline = srv.rss_bytes();
    let peak = RssPeak::start(srv.pid());
    let requests = b"GET /varz HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1024);
    let sent = flood(&http, &requests, 4 * 1024 * 1024, FLOOD_TIME);
    peak.settle(SETTLE_QUIET, SETTLE_CAP);
    let growth = peak.stop().saturating_sub(baseline);
    let (stall, n_round_trips) = probe.stop();
    eprintln!(
        "{target:?}: sent {} KiB of requests, RSS grew {} MiB, slowest other round trip {stall:?} ({n_round_trips} made)",
        sent / 1024,
        growth / MIB
    );
    check_natsws_bound(
        target,
        "RSS growth under pipelined monitoring requests",
        growth < MAX_GROWTH_BYTES,
        &format!("{} MiB", growth / MIB),
    );
    assert!(stall < MAX_STALL, "another client waited {stall:?}");
}
on_both!(pipelined_monitoring_requests);

/// bcrypt cost of the users in the bcrypt scenarios: tens of milliseconds per check, so a
/// hundred queued checks take seconds.
const BCRYPT_COST: u32 = 10;

/// How many wrong-password CONNECTs arrive at once.
const N_WRONG: usize = 100;

/// The quickest a returning or unrelated user must be let in while wrong CONNECTs are queued.
const MAX_LOGIN_WAIT: Duration = Duration::from_secs(1);

fn bcrypt_conf() -> String {
    let alice = bcrypt::hash("alicepw", BCRYPT_COST).unwrap();
    let bob = bcrypt::hash("bobpw", BCRYPT_COST).unwrap();
    format!(
        "listen: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:-1\"\nauthorization {{\n  timeout: 10\n  users: [\n    {{user: alice, password: \"{alice}\"}}\n    {{user: bob, password: \"{bob}\"}}\n  ]\n}}\n"
    )
}

/// A raw NATS client from `source` (a loopback address) that has read INFO.
fn client_from(source: [u8; 4], port: u16) -> Raw {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local = std::net::SocketAddr::from((source, 0));
    socket.bind(&local.into()).expect("bind the client address");
    Raw::connect_from(socket, port)
}

/// The first line `client` receives other than the server's own `PING` (nats-server pings a
/// client right after its CONNECT), or `None` on EOF or after [`common::WAIT`].
fn reply_line(client: &mut Raw) -> Option<String> {
    loop {
        let mut line = String::new();
        match std::io::BufRead::read_line(&mut client.reader, &mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) if line == "PING\r\n" => {}
            Ok(_) => return Some(line),
        }
    }
}

/// Logs `user` in from `source` and returns how long the PONG took ([`common::WAIT`] if it
/// never came).
fn login(source: [u8; 4], port: u16, user: &str, pass: &str) -> Duration {
    let start = Instant::now();
    let mut client = client_from(source, port);
    client.send(&format!(
        "CONNECT {{\"verbose\":false,\"user\":\"{user}\",\"pass\":\"{pass}\"}}\r\nPING\r\n"
    ));
    match reply_line(&mut client) {
        Some(line) => assert_eq!(line, "PONG\r\n", "{user} was not let in"),
        None => return common::WAIT,
    }
    start.elapsed()
}

/// `n` clients from 127.0.0.1, each of which has sent a CONNECT with a wrong password for alice
/// (connected first, then all CONNECTs written back to back, so they arrive at once).
fn wrong_logins(port: u16, n: usize) -> Vec<Raw> {
    let mut clients: Vec<Raw> = (0..n).map(|_| client_from([127, 0, 0, 1], port)).collect();
    for client in &mut clients {
        client
            .send("CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"wrong\"}\r\nPING\r\n");
    }
    clients
}

/// A user who logged in once is let in again at once while wrong CONNECTs are queued: the
/// successful verification is remembered. (nats-server pays bcrypt again and waits in line.)
fn bcrypt_returning_user(target: Target) {
    let Some(srv) = target.with_config(&bcrypt_conf(), &[]) else {
        return;
    };
    login([127, 0, 0, 1], srv.nats_port(), "alice", "alicepw");
    let _queued = wrong_logins(srv.nats_port(), N_WRONG);
    let waited = login([127, 0, 0, 1], srv.nats_port(), "alice", "alicepw");
    check_natsws_bound(
        target,
        "returning user's login wait",
        waited < MAX_LOGIN_WAIT,
        &format!("{waited:?} behind {N_WRONG} wrong CONNECTs"),
    );
}
on_both!(bcrypt_returning_user);

/// A user from another address is not queued behind one address's wrong CONNECTs.
fn bcrypt_other_source(target: Target) {
    let Some(srv) = target.with_config(&bcrypt_conf(), &[]) else {
        return;
    };
    let _queued = wrong_logins(srv.nats_port(), N_WRONG);
    let waited = login([127, 0, 0, 2], srv.nats_port(), "bob", "bobpw");
    check_natsws_bound(
        target,
        "login wait from another address",
        waited < MAX_LOGIN_WAIT,
        &format!("{waited:?} behind {N_WRONG} wrong CONNECTs from 127.0.0.1"),
    );
}
on_both!(bcrypt_other_source);

/// A flood of wrong CONNECTs larger than the bound on queued checks: the excess is refused at
/// once with the reference's error, instead of waiting for bcrypt. The bound is not known
/// here, so the test counts answers: far more connections are answered within
/// `ANSWER_WITHIN` than the bcrypt workers could have checked in that time.
fn bcrypt_queue_bound(target: Target) {
    const N_FLOOD: usize = 400;
    const ANSWER_WITHIN: Duration = Duration::from_millis(1500);
    let Some(srv) = target.with_config(&bcrypt_conf(), &[]) else {
        return;
    };
    // What one check costs here, and so how many the workers (one per core) can do in time.
    let hash = bcrypt::hash("x", BCRYPT_COST).unwrap();
    let start = Instant::now();
    assert!(!bcrypt::verify("y", &hash).unwrap());
    let per_check = start.elapsed();
    let n_cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let n_checkable = (ANSWER_WITHIN.as_secs_f64() / per_check.as_secs_f64()) as usize * n_cores;

    let mut clients = wrong_logins(srv.nats_port(), N_FLOOD);
    let start = Instant::now();
    let mut answers: Vec<Option<(Duration, String)>> = vec![None; N_FLOOD];
    for client in &clients {
        client.stream.set_nonblocking(true).unwrap();
    }
    let mut bufs = vec![Vec::new(); N_FLOOD];
    while start.elapsed() < 2 * ANSWER_WITHIN && answers.iter().any(Option::is_none) {
        for (idx, client) in clients.iter_mut().enumerate() {
            if answers[idx].is_some() {
                continue;
            }
            let mut chunk = [0u8; 256];
            match client.stream.read(&mut chunk) {
                Ok(0) => answers[idx] = Some((start.elapsed(), "EOF".to_owned())),
                Ok(n) => bufs[idx].extend_from_slice(&chunk[..n]),
                Err(_) => {}
            }
            // The first line that is not the server's own PING is the answer.
            while let Some(end) = bufs[idx].windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = bufs[idx].drain(..end + 2).collect();
                if line != b"PING\r\n" {
                    let line = String::from_utf8_lossy(&line).into_owned();
                    answers[idx] = Some((start.elapsed(), line));
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for (_, line) in answers.iter().flatten() {
        assert_eq!(line, "-ERR 'Authorization Violation'\r\n");
    }
    let n_prompt = answers
        .iter()
        .flatten()
        .filter(|(at, _)| *at <= ANSWER_WITHIN)
        .count();
    check_natsws_bound(
        target,
        "wrong CONNECTs answered promptly",
        n_prompt > 2 * n_checkable + 20,
        &format!(
            "{n_prompt} of {N_FLOOD} answered within {ANSWER_WITHIN:?}; bcrypt could check {n_checkable} ({per_check:?} each)"
        ),
    );
}
on_both!(bcrypt_queue_bound);

/// A connection closed with output it cannot send releases its descriptor within a few
/// seconds on an otherwise idle server, where nothing else wakes the loop. The subscriber here
/// has a small receive window and does not read; once a publisher has filled what the sockets
/// hold and more is queued, it sends a bad op and is closed with `-ERR` still to flush. (nats-
/// server flushes a closing connection under its write deadline, then closes it.)
fn closing_connection_releases_its_fd(target: Target) {
    let conf = "listen: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:-1\"\nwrite_deadline: \"2s\"\n";
    let Some(srv) = target.with_config(conf, &[]) else {
        return;
    };
    std::thread::sleep(Duration::from_millis(200));
    let baseline = srv.fd_count();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow = Raw::connect_from(socket, srv.nats_port());
    slow.send("CONNECT {\"verbose\":false}\r\nSUB flood 1\r\nPING\r\n");
    slow.read_until("PONG");
    let mut publ = Raw::connected(srv.nats_port(), "");
    // 3.5 MiB for the subscriber: more than the sockets hold, less than what makes natsws stop
    // reading it or call it a slow consumer.
    let payload = "z".repeat(64 * 1024);
    for _ in 0..56 {
        publ.send(&format!("PUB flood {}\r\n{payload}\r\n", payload.len()));
    }
    publ.send("PING\r\n");
    publ.read_until("PONG");
    // The publisher leaves, so that no client's timer (such as the early keep-alive PING)
    // wakes the loop later.
    drop(publ);
    std::thread::sleep(Duration::from_millis(100));
    slow.send("BOGUS\r\n");
    // From here on no client sends anything; `slow` stays open and unread.
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut n_fds = srv.fd_count();
    while n_fds > baseline && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        n_fds = srv.fd_count();
    }
    assert!(
        n_fds <= baseline,
        "{n_fds} descriptors held 8 s after the bad op, {baseline} before the clients came"
    );
    drop(slow);
}
on_both!(closing_connection_releases_its_fd);

/// Waits until the server reports no connections (through /varz).
fn wait_no_connections(srv: &Server) {
    srv.wait_varz(|varz| varz["connections"] == 0);
}

/// 100,000 subscriptions cost at most 1.5 KiB each, and once their client is gone the server's
/// RSS comes back close to where it was.
fn memory_after_a_subscription_spike(target: Target) {
    const N_SUBS: usize = 100_000;
    let Some(srv) = target.with_config(common::BASIC_CONF, &[]) else {
        return;
    };
    wait_no_connections(&srv);
    std::thread::sleep(Duration::from_millis(200));
    let baseline = srv.rss_bytes();
    let mut client = Raw::connected(srv.nats_port(), "");
    let before = srv.rss_bytes();
    let subs: String = (0..N_SUBS).map(|i| format!("SUB s.{i} {i}\r\n")).collect();
    client.send(&subs);
    client.send("PING\r\n");
    client.read_until("PONG");
    let per_sub = srv.rss_bytes().saturating_sub(before) / N_SUBS as u64;
    drop(client);
    wait_no_connections(&srv);
    std::thread::sleep(Duration::from_millis(500));
    let held = srv.rss_bytes().saturating_sub(baseline);
    eprintln!(
        "{target:?}: {per_sub} bytes per subscription, {} MiB held afterwards",
        held / MIB
    );
    check_natsws_bound(
        target,
        "RSS per subscription",
        per_sub <= 1536,
        &format!("{per_sub} bytes"),
    );
    check_natsws_bound(
        target,
        "RSS held after the subscriptions are gone",
        held < 30 * MIB,
        &format!("{} MiB", held / MIB),
    );
}
on_both!(memory_after_a_subscription_spike);

/// Started with flags and no config file, a server opens only what the flags ask for, so test
/// harnesses can run several side by side (here three, each with `-p` and `-m`).
fn flags_without_config_open_only_what_they_ask(target: Target) {
    let Some(program) = target.program() else {
        return;
    };
    let servers: Vec<Server> = (0..3)
        .map(|_| {
            let port = common::free_port().to_string();
            let http_port = common::free_port().to_string();
            let args = ["-a", "127.0.0.1", "-p", &port, "-m", &http_port];
            Server::start_program(program, common::temp_dir("flags"), &args)
        })
        .collect();
    for srv in &servers {
        assert!(
            srv.ports.get("websocket").is_none(),
            "a WebSocket listener nobody asked for: {}",
            srv.ports
        );
        Raw::connected(srv.nats_port(), "");
        assert_eq!(srv.http_get("/varz").0, 200);
    }
}
on_both!(flags_without_config_open_only_what_they_ask);

/// A bare `natsws` keeps its embedded development config: TCP 4222, WebSocket 8080 and
/// monitoring 8222. Checked only when those ports are free on this machine.
#[test]
fn bare_natsws_keeps_the_development_defaults() {
    let free = [4222, 8080, 8222]
        .iter()
        .all(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok());
    if !free {
        eprintln!("ports 4222/8080/8222 in use: bare start not checked");
        return;
    }
    let mut child = std::process::Command::new(common::bin())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + common::WAIT;
    while TcpStream::connect(("127.0.0.1", 8222)).is_err() {
        assert!(Instant::now() < deadline, "no monitoring listener on 8222");
        std::thread::sleep(Duration::from_millis(20));
    }
    Raw::connected(4222, "");
    RawWs::upgraded(8080, "");
    assert_eq!(common::http_get(8222, "/varz").0, 200);
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends, in one write, a text frame with `CONNECT` and `PING` followed by `bad`, and returns
/// the data the server sent after INFO and before its close frame, and the close code.
/// Asserts that nothing follows the close frame (RFC 6455 §5.5.1).
fn data_then_close(srv: &Server, bad: &[u8]) -> (String, u16) {
    let mut ws = RawWs::upgraded(srv.ws_port(), "");
    ws.read_until("INFO ");
    let mut bytes = common::masked_frame(0x1, b"CONNECT {\"verbose\":false}\r\nPING\r\n");
    bytes.extend_from_slice(bad);
    ws.stream.write_all(&bytes).unwrap();
    let mut data = String::new();
    let close = loop {
        let frame = ws
            .frame()
            .unwrap_or_else(|| panic!("EOF (or nothing for 10 s) after {data:?}"));
        match frame.opcode {
            0x0..=0x2 => data.push_str(&String::from_utf8_lossy(&frame.payload)),
            0x8 => break frame,
            _ => panic!("unexpected frame {frame:?}"),
        }
    };
    let code = u16::from_be_bytes([close.payload[0], close.payload[1]]);
    assert_eq!(ws.frame(), None, "a frame after the close");
    // nats-server may also have sent its own first PING.
    (data.replace("PING\r\n", ""), code)
}

/// What arrived before a NATS protocol error in the same read is answered, then the `-ERR`,
/// then the close frame (1002), then nothing: for a `SUB` without arguments nats-server sends
/// exactly `PONG`, `-ERR 'Unknown Protocol Operation'`, close 1002.
fn data_before_a_protocol_error(target: Target) {
    let Some(srv) = target.with_config(common::BASIC_CONF, &[]) else {
        return;
    };
    let (data, code) = data_then_close(&srv, &common::masked_frame(0x2, b"SUB\r\n"));
    assert_eq!(data, "PONG\r\n-ERR 'Unknown Protocol Operation'\r\n");
    assert_eq!(code, 1002);
}
on_both!(data_before_a_protocol_error);

/// What arrived before a framing violation (here a frame with RSV2 set) in the same read is
/// processed and answered, then the close frame (1002) is sent, and nothing after it (RFC 6455
/// §5.5.1, §7.1.7). natsws only: nats-server 2.9.10 does not check RSV2 and RSV3 at all, and on
/// the framing violations it does detect (say a reserved opcode) it parses the data before the
/// bad frame but then drops the connection without sending the PONG or any close frame.
#[test]
fn data_before_a_framing_violation() {
    let srv = Server::with_config(common::BASIC_CONF, &[]);
    let mut bad = common::masked_frame(0x2, b"PING\r\n");
    bad[0] |= 0x20;
    let (data, code) = data_then_close(&srv, &bad);
    assert_eq!(data, "PONG\r\n");
    assert_eq!(code, 1002);
}

/// A compressed message that inflates to a legitimate batch of 20,000 small PUBs (~1.5 MB,
/// more than max_payload) is accepted and every message delivered.
fn compressed_batch_of_small_pubs(target: Target) {
    const N_PUBS: usize = 20_000;
    let Some(srv) = target.with_config(common::BASIC_CONF, &[]) else {
        return;
    };
    let mut sub = Raw::connected(srv.nats_port(), "SUB batch 1\r\n");
    let mut ws = RawWs::compressing(srv.ws_port());
    ws.send(b"CONNECT {\"verbose\":false}\r\n");
    let payload = "p".repeat(64);
    let batch = format!("PUB batch 64\r\n{payload}\r\n").repeat(N_PUBS);
    assert!(batch.len() > 1_500_000);
    ws.stream
        .write_all(&common::compressed_frame(batch.as_bytes()))
        .unwrap();
    let deadline = Instant::now() + common::WAIT;
    let mut n_msgs = 0;
    while n_msgs < N_PUBS && Instant::now() < deadline {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut sub.reader, &mut line).unwrap_or(0) == 0 {
            break;
        }
        if line.starts_with("MSG batch 1 64") {
            n_msgs += 1;
        }
    }
    assert_eq!(n_msgs, N_PUBS);
}
on_both!(compressed_batch_of_small_pubs);

/// An upgrade request with 200 header lines is accepted.
fn upgrade_with_200_headers(target: Target) {
    let Some(srv) = target.with_config(common::BASIC_CONF, &[]) else {
        return;
    };
    let extra: String = (0..200).map(|i| format!("X-Extra-{i}: v\r\n")).collect();
    let mut ws = RawWs::connect(srv.ws_port(), &extra);
    assert_eq!(ws.status(), 101, "{}", ws.response);
    ws.read_until("INFO ");
}
on_both!(upgrade_with_200_headers);

/// CONNECT JSON nested 200 levels deep in an unknown field is accepted, as Go's encoding/json
/// (10,000 levels) accepts it.
fn deeply_nested_connect_json(target: Target) {
    let Some(srv) = target.with_config(common::BASIC_CONF, &[]) else {
        return;
    };
    let mut client = Raw::connect(srv.nats_port());
    client.line();
    let nested = format!("{}{}", "[".repeat(200), "]".repeat(200));
    client.send(&format!(
        "CONNECT {{\"verbose\":false,\"x\":{nested}}}\r\nPING\r\n"
    ));
    let mut reply = String::new();
    let _ = std::io::BufRead::read_line(&mut client.reader, &mut reply);
    assert_eq!(reply, "PONG\r\n");
}
on_both!(deeply_nested_connect_json);

/// `/connz?subs=detail` over thousands of connections holding subscriptions is megabytes of
/// JSON. Asked for again and again, it does not stall another client's round trips (nats-
/// server renders it on the HTTP handler's goroutine), and every connection and subscription
/// is listed.
fn connz_with_subscriptions_does_not_stall(target: Target) {
    const N_CONNS: usize = 5000;
    const N_SUBS: usize = 10;
    const N_REQUESTS: usize = 3;
    let Some(srv) = target.with_config(common::BASIC_CONF, &[]) else {
        return;
    };
    let mut clients: Vec<Raw> = (0..N_CONNS)
        .map(|_| Raw::connect(srv.nats_port()))
        .collect();
    for (i, client) in clients.iter_mut().enumerate() {
        let subs: String = (0..N_SUBS)
            .map(|j| format!("SUB conn.{i}.sub.{j} {j}\r\n"))
            .collect();
        client.send(&format!("CONNECT {{\"verbose\":false}}\r\n{subs}PING\r\n"));
    }
    for client in &mut clients {
        client.read_until("PONG");
    }
    let probe = StallProbe::start(srv.nats_port());
    let path = format!("/connz?subs=detail&limit={}", N_CONNS + 1);
    for _ in 0..N_REQUESTS {
        let (status, _, body) = srv.http_get(&path);
        assert_eq!(status, 200, "{body}");
        let connz: serde_json::Value = serde_json::from_str(&body).unwrap();
        let connections = connz["connections"].as_array().unwrap();
        // The probe is one more connection, unless a stall made it give up.
        assert!(connections.len() >= N_CONNS, "{} listed", connections.len());
        let n_subs: usize = connections
            .iter()
            .map(|c| {
                c["subscriptions_list_detail"]
                    .as_array()
                    .map_or(0, Vec::len)
            })
            .sum();
        assert_eq!(n_subs, N_CONNS * N_SUBS);
    }
    let (stall, n_round_trips) = probe.stop();
    eprintln!("{target:?}: slowest other round trip {stall:?} ({n_round_trips} made)");
    assert!(stall < MAX_STALL, "another client waited {stall:?}");
}
on_both!(connz_with_subscriptions_does_not_stall);

/// One WebSocket client sends a compressed message that inflates to over 30 MiB of PUBs: it
/// is inflated a bounded amount per turn, so another client's round trips stay prompt, and
/// every message arrives intact and in order.
fn large_compressed_batch_does_not_stall(target: Target) {
    const N_PUBS: usize = 300_000;
    const PAYLOAD_LEN: usize = 100;
    let Some(srv) = target.with_config(common::BASIC_CONF, &[]) else {
        return;
    };
    let mut sub = Raw::connected(srv.nats_port(), "SUB batch 1\r\n");
    let payload = |i: usize| format!("{i:0>10}{}", "x".repeat(PAYLOAD_LEN - 10));
    let receiver = std::thread::spawn(move || {
        let mut n_msgs = 0;
        while n_msgs < N_PUBS {
            let head = sub.line();
            if head == "PING\r\n" {
                sub.send("PONG\r\n");
                continue;
            }
            assert_eq!(
                head,
                format!("MSG batch 1 {PAYLOAD_LEN}\r\n"),
                "message {n_msgs}"
            );
            assert_eq!(sub.line(), format!("{}\r\n", payload(n_msgs)));
            n_msgs += 1;
        }
        n_msgs
    });
    let mut ws = RawWs::compressing(srv.ws_port());
    ws.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
    ws.read_until("PONG");
    let batch: String = (0..N_PUBS)
        .map(|i| format!("PUB batch {PAYLOAD_LEN}\r\n{}\r\n", payload(i)))
        .collect();
    assert!(batch.len() > 30 * 1024 * 1024);
    let frame = common::compressed_frame(batch.as_bytes());
    let probe = StallProbe::start(srv.nats_port());
    std::thread::sleep(Duration::from_millis(100));
    ws.stream.write_all(&frame).unwrap();
    // Sent while the batch is being inflated, after the frame was read: it must still be read
    // once the batch is done (no new readiness edge comes for it).
    std::thread::sleep(Duration::from_millis(30));
    ws.send(b"PING\r\n");
    let n_msgs = receiver.join().expect("every message, intact and in order");
    ws.read_until("PONG");
    let (stall, n_round_trips) = probe.stop();
    eprintln!(
        "{target:?}: {} KiB compressed, slowest other round trip {stall:?} ({n_round_trips} made)",
        frame.len() / 1024
    );
    assert_eq!(n_msgs, N_PUBS);
    assert!(stall < MAX_STALL, "another client waited {stall:?}");
}
on_both!(large_compressed_batch_does_not_stall);

/// `/subsz?subs=1` over 200,000 subscriptions is some forty megabytes of JSON. Asked for
/// again and again, it does not stall another client's round trips (nats-server renders it on
/// the HTTP handler's goroutine), and every subscription is listed once.
fn subsz_with_subscriptions_does_not_stall(target: Target) {
    const N_CONNS: usize = 20;
    const N_SUBS: usize = 10_000;
    const N_REQUESTS: usize = 3;
    let Some(srv) = target.with_config(common::BASIC_CONF, &[]) else {
        return;
    };
    let clients: Vec<Raw> = (0..N_CONNS)
        .map(|i| {
            let subs: String = (0..N_SUBS)
                .map(|j| format!("SUB conn.{i}.sub.{j} {j}\r\n"))
                .collect();
            Raw::connected(srv.nats_port(), &subs)
        })
        .collect();
    let probe = StallProbe::start(srv.nats_port());
    let path = format!("/subsz?subs=1&limit={}", N_CONNS * N_SUBS + 1);
    for _ in 0..N_REQUESTS {
        // Forty megabytes rendered by a debug build on a busy machine: give it time.
        let (status, _, body) =
            common::http_get_within(srv.http_port(), &path, Duration::from_secs(60));
        assert_eq!(status, 200, "{body}");
        let subsz: serde_json::Value = serde_json::from_str(&body).unwrap();
        let list = subsz["subscriptions_list"].as_array().unwrap();
        // nats-server lists its own internal subscriptions too.
        let subjects: std::collections::HashSet<&str> = list
            .iter()
            .map(|s| s["subject"].as_str().unwrap())
            .filter(|s| s.starts_with("conn."))
            .collect();
        // nats-server 2.9.10 lists a few twice and leaves as many out.
        check_natsws_bound(
            target,
            "subscriptions listed once each",
            subjects.len() == N_CONNS * N_SUBS && list.len() == N_CONNS * N_SUBS,
            &format!("{} distinct of {} listed", subjects.len(), list.len()),
        );
        assert!(subjects.len() > N_CONNS * N_SUBS * 99 / 100);
        assert_eq!(subsz["total"].as_u64(), u64::try_from(list.len()).ok());
    }
    let (stall, n_round_trips) = probe.stop();
    eprintln!("{target:?}: slowest other round trip {stall:?} ({n_round_trips} made)");
    drop(clients);
    assert!(stall < MAX_STALL, "another client waited {stall:?}");
}
on_both!(subsz_with_subscriptions_does_not_stall);

/// Many monitoring connections asking at once for big `/connz` pages: a request waiting its
/// turn holds only its query, not its page, so the server's memory does not grow with the
/// number of requests waiting. Each page here is 500 closed connections holding 100
/// subscriptions each (some 10 MiB of summaries); before, every one of the 20 requests chose
/// its page on arrival and held it until its turn came (natsws grew by 235 MiB; nats-server,
/// rendering each on its own goroutine, by 286 MiB).
fn waiting_connz_pages_hold_no_summaries(target: Target) {
    const N_CONNS: usize = 500;
    const N_SUBS: usize = 100;
    const N_REQUESTS: usize = 20;
    let Some(srv) = target.with_config(common::BASIC_CONF, &[]) else {
        return;
    };
    for i in 0..N_CONNS {
        let subs: String = (0..N_SUBS)
            .map(|j| format!("SUB closed.conn.{i}.with.a.longer.subject.{j} {j}\r\n"))
            .collect();
        drop(Raw::connected(srv.nats_port(), &subs));
    }
    let deadline = Instant::now() + common::WAIT;
    loop {
        let (_, _, body) = srv.http_get("/connz?state=closed&limit=1");
        let connz: serde_json::Value = serde_json::from_str(&body).unwrap();
        if connz["total"].as_u64() == Some(N_CONNS as u64) {
            break;
        }
        assert!(Instant::now() < deadline, "never all closed: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let baseline = srv.rss_bytes();
    let peak = RssPeak::start(srv.pid());
    let port = srv.http_port();
    let path = format!("/connz?state=closed&subs=1&limit={N_CONNS}");
    let start = std::sync::Arc::new(std::sync::Barrier::new(N_REQUESTS));
    let askers: Vec<_> = (0..N_REQUESTS)
        .map(|_| {
            let (path, start) = (path.clone(), std::sync::Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                // The last in line waits for all the others: give it time on a debug build.
                let (status, _, body) =
                    common::http_get_within(port, &path, Duration::from_secs(60));
                assert_eq!(status, 200, "{body}");
                let connz: serde_json::Value = serde_json::from_str(&body).unwrap();
                connz["connections"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["subscriptions_list"].as_array().map_or(0, Vec::len))
                    .sum::<usize>()
            })
        })
        .collect();
    for asker in askers {
        assert_eq!(asker.join().unwrap(), N_CONNS * N_SUBS);
    }
    peak.settle(SETTLE_QUIET, SETTLE_CAP);
    let growth = peak.stop().saturating_sub(baseline);
    eprintln!(
        "{target:?}: {N_REQUESTS} pages of {N_CONNS} connections x {N_SUBS} subscriptions at once, RSS grew {} MiB",
        growth / MIB
    );
    check_natsws_bound(
        target,
        "RSS growth under many waiting /connz pages",
        growth < MAX_WAITING_PAGES_GROWTH_BYTES,
        &format!("{} MiB", growth / MIB),
    );
}
on_both!(waiting_connz_pages_hold_no_summaries);

/// A ping that arrives while a large data frame is only partly written (the subscriber reads
/// slowly) is answered after that frame, never inside it: every frame the subscriber reads is
/// whole, the pong among them, and the messages arrive intact.
fn ping_while_a_frame_is_partly_written(target: Target) {
    const N_MSGS: usize = 24;
    const SIZE: usize = 900_000;
    let Some(srv) = target.with_config(common::BASIC_CONF, &[]) else {
        return;
    };
    let mut ws = RawWs::upgraded(srv.ws_port(), "");
    ws.send(b"CONNECT {\"verbose\":false}\r\nSUB big 1\r\nPING\r\n");
    ws.read_until("PONG");
    let mut publisher = Raw::connected(srv.nats_port(), "");
    let payload: Vec<u8> = (0..SIZE).map(|i| b'a' + (i % 26) as u8).collect();
    let mut pubs = Vec::new();
    for _ in 0..N_MSGS {
        pubs.extend_from_slice(format!("PUB big {SIZE}\r\n").as_bytes());
        pubs.extend_from_slice(&payload);
        pubs.extend_from_slice(b"\r\n");
    }
    pubs.extend_from_slice(b"PING\r\n");
    publisher.stream.write_all(&pubs).unwrap();
    publisher.read_until("PONG\r\n");
    // Some 20 MiB are owed to the subscriber, more than the loopback buffers hold.
    std::thread::sleep(Duration::from_millis(300));
    ws.send_frame(0x9, b"mid-frame");
    let mut data = Vec::new();
    let mut pongs = 0;
    let mut expected = Vec::new();
    for _ in 0..N_MSGS {
        expected.extend_from_slice(format!("MSG big 1 {SIZE}\r\n").as_bytes());
        expected.extend_from_slice(&payload);
        expected.extend_from_slice(b"\r\n");
    }
    while data.len() < expected.len() || pongs == 0 {
        let frame = ws.frame().expect("a frame");
        match frame.opcode {
            0x0 | 0x2 => data.extend_from_slice(&frame.payload),
            0xA => {
                assert_eq!(frame.payload, b"mid-frame");
                pongs += 1;
            }
            // nats-server pings its clients too.
            0x9 => {}
            op => panic!("unexpected frame opcode {op}"),
        }
        assert!(data.len() <= expected.len(), "more data than sent");
    }
    assert_eq!(pongs, 1);
    assert!(
        data == expected,
        "the data frames' payload differs from the messages"
    );
}
on_both!(ping_while_a_frame_is_partly_written);
