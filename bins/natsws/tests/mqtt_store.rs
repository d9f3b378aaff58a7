//! MQTT state kept in `store_dir` across restarts of the real binary: retained messages, a
//! `clean_session: false` session with its subscription and its unacknowledged delivery,
//! after a clean stop and after a kill; a damaged store file is logged and skipped.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use common::{Server, WAIT, temp_dir, write_file};
use mqtt_codec::{ConnAck, Connect, Decoder, Packet, Publish, QoS, Subscribe, encode};

/// A minimal blocking MQTT client over TCP.
struct Client {
    stream: TcpStream,
    decoder: Decoder,
    buf: BytesMut,
}

impl Client {
    fn connect(port: u16, client_id: &str, clean_session: bool) -> (Self, ConnAck) {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect mqtt");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut c = Self {
            stream,
            decoder: Decoder::client(),
            buf: BytesMut::new(),
        };
        c.send(&Packet::Connect(Connect {
            clean_session,
            keep_alive: 60,
            client_id: client_id.into(),
            ..Connect::default()
        }));
        match c.next() {
            Packet::ConnAck(ack) => (c, ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    fn send(&mut self, p: &Packet) {
        let mut out = BytesMut::new();
        encode(p, &mut out).unwrap();
        self.stream.write_all(&out).unwrap();
    }

    fn next(&mut self) -> Packet {
        loop {
            if let Some(p) = self.decoder.decode(&mut self.buf).unwrap() {
                return p;
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).expect("read mqtt");
            assert!(n > 0, "EOF");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn subscribe(&mut self, filter: &str, qos: QoS) {
        self.send(&Packet::Subscribe(Subscribe {
            packet_id: 1,
            filters: vec![(filter.to_owned(), qos)],
        }));
        assert!(matches!(self.next(), Packet::SubAck(_)));
    }

    fn publish(&mut self, topic: &str, qos: QoS, retain: bool, payload: &'static [u8]) {
        self.send(&Packet::Publish(Publish {
            dup: false,
            qos,
            retain,
            topic: topic.into(),
            packet_id: (qos == QoS::AtLeastOnce).then_some(9),
            payload: Bytes::from_static(payload),
        }));
        if qos == QoS::AtLeastOnce {
            assert_eq!(self.next(), Packet::PubAck(9));
        }
    }

    fn publish_in(&mut self) -> Publish {
        match self.next() {
            Packet::Publish(p) => p,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(conf_dir: &Path) -> Server {
    let conf = conf_dir.join("server.conf").to_string_lossy().into_owned();
    Server::start_in(temp_dir("mqtt-store-run"), &["-c", &conf])
}

/// Waits until a record file in `dir` (not a write in progress) contains `needle` (the
/// writer thread runs beside the loop).
fn wait_record_containing(dir: &Path, needle: &[u8]) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let found = std::fs::read_dir(dir).unwrap().any(|e| {
            let path = e.unwrap().path();
            path.extension().is_none()
                && std::fs::read(&path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
        });
        if found {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no record in {} holds {needle:?}",
            dir.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn stop(mut srv: Server) {
    srv.signal("TERM");
    srv.wait_exit();
}

#[test]
fn retained_and_sessions_survive_restarts() {
    let dir = temp_dir("mqtt-store");
    let store = dir.join("store");
    let port = free_port();
    write_file(
        &dir,
        "server.conf",
        &format!(
            "listen: \"127.0.0.1:-1\"\nserver_name: s1\nstore_dir: \"{}\"\nmqtt {{ listen: \"127.0.0.1:{port}\" }}\n",
            store.display()
        ),
    );
    let srv = start(&dir);
    srv.wait_log(&format!(
        "MQTT state is kept in {}",
        store.join("mqtt").display()
    ));
    let (mut keep, ack) = Client::connect(port, "keep", false);
    assert!(!ack.session_present);
    keep.subscribe("k/#", QoS::AtLeastOnce);
    let (mut p, _) = Client::connect(port, "pub", true);
    p.publish("r/1", QoS::AtMostOnce, true, b"kept");
    p.publish("k/1", QoS::AtLeastOnce, false, b"unacked");
    let got = keep.publish_in();
    assert_eq!(&got.payload[..], b"unacked");
    // Stopped cleanly with the delivery unacknowledged: the session is written at close.
    stop(srv);

    let srv = start(&dir);
    srv.wait_log("MQTT store: restored 1 retained message(s) and 1 session(s)");
    let (mut late, _) = Client::connect(port, "late", true);
    late.subscribe("r/#", QoS::AtMostOnce);
    let r = late.publish_in();
    assert!(r.retain);
    assert_eq!((r.topic.as_str(), &r.payload[..]), ("r/1", &b"kept"[..]));
    let (mut keep, ack) = Client::connect(port, "keep", false);
    assert!(ack.session_present, "session resumed after the restart");
    let again = keep.publish_in();
    assert!(again.dup);
    assert_eq!(&again.payload[..], b"unacked");
    keep.send(&Packet::PubAck(again.packet_id.unwrap()));
    let (mut p, _) = Client::connect(port, "pub", true);
    p.publish("k/2", QoS::AtMostOnce, false, b"live");
    assert_eq!(
        &keep.publish_in().payload[..],
        b"live",
        "subscription restored"
    );
    // A new session's subscription is on disk as soon as it is made: a kill keeps it.
    let (mut fresh, _) = Client::connect(port, "fresh", false);
    fresh.subscribe("f/+", QoS::AtMostOnce);
    let sessions = store.join("mqtt").join("sessions");
    wait_record_containing(&sessions, b"f/+");
    let mut srv = srv;
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
    drop(srv);

    // A damaged record is reported by path and skipped; the rest still loads.
    let damaged = sessions.join("0".repeat(64));
    std::fs::write(
        &damaged,
        b"NWMQ\x01\x02\x00\x00\x00\x05hello\x00\x00\x00\x00",
    )
    .unwrap();
    let srv = start(&dir);
    srv.wait_log(&format!(
        "MQTT store: {}: checksum mismatch, skipped",
        damaged.display()
    ));
    srv.wait_log("skipped 1 file(s)");
    let (mut fresh, ack) = Client::connect(port, "fresh", false);
    assert!(ack.session_present, "session kept across a kill");
    let (mut p, _) = Client::connect(port, "pub", true);
    p.publish("f/x", QoS::AtMostOnce, false, b"after kill");
    assert_eq!(&fresh.publish_in().payload[..], b"after kill");
    // A clean start removes the session from disk too.
    drop(fresh);
    let (_fresh, _) = Client::connect(port, "fresh", true);
    p.publish("r/1", QoS::AtLeastOnce, true, b"");
    // A clean stop writes everything pending before the process exits.
    stop(srv);
    let srv = start(&dir);
    srv.wait_log("MQTT store: restored 0 retained message(s) and 1 session(s)");
    let (_, ack) = Client::connect(port, "fresh", false);
    assert!(
        !ack.session_present,
        "clean start discarded the kept session"
    );
    stop(srv);
}

/// After a kill, sessions keep what changed up to about a second before it: deliveries made
/// to a connected session and not acknowledged, and QoS 1 messages a kept session collected
/// while its client was away (both written by the session-record timer, not at an event).
#[test]
fn deliveries_since_the_last_event_survive_a_kill() {
    let dir = temp_dir("mqtt-store-kill");
    let store = dir.join("store");
    let port = free_port();
    write_file(
        &dir,
        "server.conf",
        &format!(
            "listen: \"127.0.0.1:-1\"\nserver_name: s1\nstore_dir: \"{}\"\nmqtt {{ listen: \"127.0.0.1:{port}\" }}\n",
            store.display()
        ),
    );
    let srv = start(&dir);
    srv.wait_log("MQTT state is kept in");
    let (mut live, _) = Client::connect(port, "live", false);
    live.subscribe("l/#", QoS::AtLeastOnce);
    let (mut away, _) = Client::connect(port, "away", false);
    away.subscribe("w/+", QoS::AtLeastOnce);
    // Dropped without DISCONNECT: the session is kept.
    drop(away);
    let (mut p, _) = Client::connect(port, "pub", true);
    p.publish("l/1", QoS::AtLeastOnce, false, b"inflight-live");
    assert_eq!(&live.publish_in().payload[..], b"inflight-live");
    let collected: [&'static [u8]; 3] = [b"collected-1", b"collected-2", b"collected-3"];
    for payload in collected {
        p.publish("w/x", QoS::AtLeastOnce, false, payload);
    }
    let sessions = store.join("mqtt").join("sessions");
    wait_record_containing(&sessions, b"inflight-live");
    wait_record_containing(&sessions, b"collected-3");
    let mut srv = srv;
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
    drop(srv);

    let srv = start(&dir);
    srv.wait_log("MQTT store: restored 0 retained message(s) and 2 session(s)");
    let (mut live, ack) = Client::connect(port, "live", false);
    assert!(ack.session_present);
    let again = live.publish_in();
    assert!(again.dup);
    assert_eq!(&again.payload[..], b"inflight-live");
    let (mut away, ack) = Client::connect(port, "away", false);
    assert!(ack.session_present);
    for payload in collected {
        let got = away.publish_in();
        assert!(!got.dup);
        assert_eq!(&got.payload[..], payload);
        away.send(&Packet::PubAck(got.packet_id.unwrap()));
    }
    stop(srv);
}
