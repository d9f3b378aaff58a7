//! Fuzz target bodies (see `fuzz/fuzz_targets/broker_*.rs`), also replayed by `cargo test`.
#![allow(
    clippy::panic,
    reason = "fuzz bodies report a broken property by panicking"
)]

use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::proto::{Op, Parser, ParserLimits, ProtoError, Role};
use crate::{Broker, ClientId, ClientParams, Config, ConnectionType, Event};

fn parse_all(role: Role, limits: ParserLimits, chunks: &[&[u8]]) -> (Vec<Op>, Option<ProtoError>) {
    let mut parser = Parser::new(role, limits);
    let mut buf = BytesMut::new();
    let mut ops = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            check_peek_pub(&parser, &buf);
            match parser.parse(&mut buf) {
                Ok(Some(op)) => ops.push(op),
                Ok(None) => {
                    // A partial control line never grows past the limit (plus a CR).
                    assert!(
                        parser.payload_remaining(buf.len()) > 0
                            || buf.len() <= limits.max_control_line + 1,
                        "buffer grew to {}",
                        buf.len()
                    );
                    break;
                }
                Err(err) => return (ops, Some(err)),
            }
        }
    }
    (ops, None)
}

/// The fast path agrees with the parser: whenever [`Parser::peek_pub`] finds a message,
/// the state machine ([`Parser::parse_stepwise`]) on the same bytes returns the same `PUB`/`HPUB` and consumes exactly
/// [`crate::proto::PubRanges::total_len`] bytes.
pub(crate) fn check_peek_pub(parser: &Parser, buf: &BytesMut) {
    let Some(found) = parser.peek_pub(buf) else {
        return;
    };
    let part = |(start, end): (usize, usize)| {
        buf.get(start..end)
            .unwrap_or_else(|| panic!("peek_pub range {start}..{end} outside {buf:?}"))
    };
    let mut slow = parser.clone();
    let mut rest = buf.clone();
    let Ok(Some(Op::Pub(publish))) = slow.parse_stepwise(&mut rest) else {
        panic!("peek_pub found {found:?} but parse disagrees on {buf:?}");
    };
    assert_eq!(&publish.subject[..], part(found.subject), "subject");
    assert_eq!(publish.reply.as_deref(), found.reply.map(part), "reply");
    assert_eq!(publish.header_len, found.header_len, "header_len");
    assert_eq!(
        &publish.message[..],
        part((found.payload_start, found.payload_start + found.size)),
        "message"
    );
    assert_eq!(buf.len() - rest.len(), found.total_len(), "consumed");
    assert!(slow.at_op_start());
}

/// Parser body: no panic, and splitting the input at `data[0]` (and byte by byte for short
/// inputs) gives the same ops and error as parsing it whole, for every role.
pub fn broker_proto(data: &[u8]) {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let limits = ParserLimits {
        max_control_line: 256,
        max_payload: 4096,
        headers: split & 1 == 1,
    };
    for role in [Role::Server, Role::Client, Role::Leaf] {
        let whole = parse_all(role, limits, &[rest]);
        let at = usize::from(split).min(rest.len());
        let (a, b) = rest.split_at(at);
        assert_eq!(parse_all(role, limits, &[a, b]), whole, "split at {at}");
        if rest.len() <= 512 {
            let bytes: Vec<&[u8]> = rest.chunks(1).collect();
            assert_eq!(parse_all(role, limits, &bytes), whole, "byte by byte");
        }
    }
}

/// Reads the structured session script from fuzz bytes.
struct Script<'a> {
    data: &'a [u8],
}

impl Script<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }
}

/// Useful protocol fragments so short inputs reach deep states.
const SNIPPETS: &[&[u8]] = &[
    b"CONNECT {\"verbose\":false}\r\n",
    b"CONNECT {\"verbose\":false,\"headers\":true,\"no_responders\":true,\"echo\":false}\r\n",
    b"SUB foo 1\r\n",
    b"SUB foo.* q 2\r\n",
    b"SUB > 3\r\n",
    b"SUB _INBOX.x 4\r\n",
    b"UNSUB 1 2\r\n",
    b"UNSUB 3\r\n",
    b"PUB foo 5\r\nhello\r\n",
    b"PUB foo.bar _INBOX.x 2\r\nhi\r\n",
    b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
    b"PING\r\n",
    b"PONG\r\n",
    b"CONNECT {\"user\":\"u\",\"pass\":\"p\",\"verbose\":false}\r\n",
    b"CONNECT {\"user\":\"u\",\"pass\":\"wrong\"}\r\n",
    b"CONNECT {\"user\":\"b\",\"pass\":\"pw\",\"verbose\":false}\r\n",
    b"CONNECT {\"user\":\"b\",\"pass\":\"px\"}\r\n",
    b"PUB _INBOX.x 1\r\nr\r\n",
    b"CONNECT {\"user\":\"c\",\"pass\":\"c\",\"verbose\":false}\r\n",
    b"PUB svc _INBOX.y 1\r\nq\r\n",
    b"SUB svc 4\r\n",
    // Leaf connections (a client sending these is refused).
    b"INFO {\"server_id\":\"H\",\"server_name\":\"hub\",\"client_id\":5,\"headers\":true,\"info_on_connect\":true,\"leafnode_urls\":[\"h:7422\"]} \r\n",
    b"INFO {\"connect_info\":true,\"leafnode_urls\":[],\"export\":{\"deny\":[\"foo.bar\"]}} \r\n",
    b"INFO {\"client_id\":5,\"tls_required\":true,\"leafnode_urls\":[]} \r\n",
    b"CONNECT {\"server_id\":\"L\",\"name\":\"spoke\",\"cluster\":\"spoke\",\"headers\":true}\r\n",
    b"LS+ foo\r\n",
    b"LS+ foo.* q 3\r\n",
    b"LS+ > q 1\r\n",
    b"LS- foo\r\n",
    b"LS- foo.* q\r\n",
    b"LMSG foo 2\r\nhi\r\n",
    b"LMSG foo.bar + _INBOX.x q 1\r\nr\r\n",
    b"LMSG svc | q 1\r\ns\r\n",
    b"HMSG foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
    b"-ERR 'Loop detected'\r\n",
    // MQTT packets, for the MQTT connections (op 15).
    b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x01\x00\x01m",
    b"\x10\x11\x00\x04MQTT\x04\x04\x00\x00\x00\x01k\x00\x01w\x00\x01x",
    b"\x10\x11\x00\x04MQTT\x04\xc2\x00\x00\x00\x01a\x00\x01u\x00\x01p",
    b"\x82\x0a\x00\x01\x00\x05foo/#\x01",
    b"\x82\x06\x00\x02\x00\x01+\x00",
    b"\x30\x07\x00\x03foohi",
    b"\x33\x0c\x00\x07foo/bar\x00\x03x",
    b"\x40\x02\x00\x01",
    b"\xa2\x09\x00\x04\x00\x05foo/#",
    b"\xc0\x00",
    b"\xe0\x00",
    // The latency-tracked service (bit 3), after the others so that old seeds keep their
    // snippets.
    b"SUB trk 5\r\nSUB lat 6\r\n",
    b"PUB trk _INBOX.y 1\r\nq\r\n",
    b"PUB trk 1\r\nq\r\n",
    b"HPUB trk _INBOX.y 29 30\r\nNATS/1.0\r\nX-B3-Sampled: 1\r\n\r\nq\r\n",
];

/// Session body: a script of client registrations (NATS over TCP and WebSocket, and MQTT),
/// inputs, time steps, drains and closes against a whole broker. No panic, and the broker's invariants hold after every step.
pub fn broker_session(data: &[u8]) {
    let mut script = Script { data };
    let mut config = Config::default();
    config.limits.max_pending = 2048;
    config.limits.max_control_line = 128;
    config.limits.max_payload = 512;
    config.limits.max_connections = 4;
    config.limits.max_subscriptions = 8;
    config.ping_interval = Duration::from_secs(1);
    config.write_deadline = Duration::from_secs(2);
    // Odd first byte: token auth with a restricted user list is configured as well.
    if data.first().is_some_and(|b| b & 1 == 1) {
        config.auth.users = vec![crate::auth::User {
            username: "u".to_owned(),
            password: "p".to_owned(),
            permissions: Some(crate::auth::PermissionsConfig {
                publish: Some(crate::auth::SubjectPermission {
                    allow: Some(vec!["foo.>".to_owned(), "_INBOX.>".to_owned()]),
                    deny: Vec::new(),
                }),
                subscribe: Some(crate::auth::SubjectPermission {
                    allow: None,
                    deny: vec!["foo.bar".to_owned()],
                }),
                allow_responses: Some(crate::auth::ResponsePermission {
                    max_msgs: 2,
                    expires: None,
                }),
            }),
            allowed_connection_types: Vec::new(),
            account: None,
        }];
        config.auth.no_auth_user = Some("u".to_owned());
    }
    // Bit 1: protocol tracing, which must trace the same lines for both read patterns.
    config.trace = data.first().is_some_and(|b| b & 2 == 2);
    // Bit 2: a bcrypt user whose checks are deferred (cost 4, password "pw").
    if data.first().is_some_and(|b| b & 4 == 4) {
        config.defer_password_checks = true;
        config.auth.users.push(crate::auth::User {
            username: "b".to_owned(),
            password: "$2a$04$/uaF/uaF/uaF/uaF/uaF/u2N7gzo/QEuw/MVEoYwm3WiVvsKnqQr6".to_owned(),
            permissions: None,
            allowed_connection_types: Vec::new(),
            account: None,
        });
    }
    // Bit 3: accounts. User "u" (when configured) is in A, which exports the stream `foo.>`,
    // the service `svc` and the latency-tracked service `trk` (results on `lat`, half the
    // requests or those whose trace headers ask); user "c" is in B, which imports all three
    // (the stream with a prefix, `trk` sharing the requestor's details).
    if data.first().is_some_and(|b| b & 8 == 8) {
        use crate::config::{AccountConfig, ExportConfig, ExportKind, ImportConfig, ResponseType};
        for user in &mut config.auth.users {
            if user.username == "u" {
                user.account = Some("A".to_owned());
            }
        }
        config.auth.users.push(crate::auth::User {
            username: "c".to_owned(),
            password: "c".to_owned(),
            permissions: None,
            allowed_connection_types: Vec::new(),
            account: Some("B".to_owned()),
        });
        let export = |kind, subject: &str| ExportConfig {
            kind,
            subject: subject.to_owned(),
            accounts: Vec::new(),
            response_type: ResponseType::Stream,
            response_threshold: Some(Duration::from_secs(1)),
            latency: None,
        };
        let import = |kind, subject: &str, prefix: Option<&str>| ImportConfig {
            kind,
            account: "A".to_owned(),
            subject: subject.to_owned(),
            to: None,
            prefix: prefix.map(str::to_owned),
            share: false,
        };
        config.accounts = vec![
            AccountConfig {
                name: "A".to_owned(),
                exports: vec![
                    export(ExportKind::Stream, "foo.>"),
                    export(ExportKind::Service, "svc"),
                    ExportConfig {
                        response_type: ResponseType::Singleton,
                        latency: Some(crate::LatencyConfig {
                            sampling: crate::LatencySampling::Percent(50),
                            subject: "lat".to_owned(),
                        }),
                        ..export(ExportKind::Service, "trk")
                    },
                ],
                imports: Vec::new(),
            },
            AccountConfig {
                name: "B".to_owned(),
                exports: Vec::new(),
                imports: vec![
                    import(ExportKind::Stream, "foo.>", Some("a")),
                    import(ExportKind::Service, "svc", None),
                    ImportConfig {
                        share: true,
                        ..import(ExportKind::Service, "trk", None)
                    },
                ],
            },
        ];
    }
    let mut now = Instant::now();
    // Two brokers in lockstep: the first gets each read whole (the in-place fast path for
    // complete PUBs), the second one byte at a time (always the parser's state machine). Their
    // output, events and timers must be identical.
    let mut brokers = [Broker::new(config.clone(), now), Broker::new(config, now)];
    let mut clients: Vec<ClientId> = Vec::new();
    let mut read_bufs: std::collections::HashMap<ClientId, [BytesMut; 2]> =
        std::collections::HashMap::new();
    let mut closed_events: Vec<ClientId> = Vec::new();
    let addr = core::net::SocketAddr::from(([127, 0, 0, 1], 4000));
    while let Some(op) = script.byte() {
        let target = clients
            .get(usize::from(op >> 4) % clients.len().max(1))
            .copied();
        let mut input: Option<&[u8]> = None;
        match op & 0x0f {
            0 | 1 => {
                // The high bits choose: a client (TCP or WebSocket), an accepted leaf or a
                // leaf connection this side dialled.
                let kind = match (op & 1, (op >> 4) & 3) {
                    (_, 2) => ConnectionType::Leaf,
                    (1, 3) => ConnectionType::LeafWebSocket,
                    (0, _) => ConnectionType::Standard,
                    _ => ConnectionType::WebSocket,
                };
                let solicited = (op >> 4) & 3 == 3;
                if clients.len() < 8 {
                    let ids = brokers.each_mut().map(|b| {
                        let params = ClientParams::new(kind, addr);
                        if solicited {
                            b.register_leaf(
                                now,
                                params,
                                crate::LeafRemote {
                                    deny_exports: vec!["svc".to_owned()],
                                    deny_imports: vec!["_INBOX.>".to_owned()],
                                    ..crate::LeafRemote::default()
                                },
                            )
                        } else {
                            b.register_client(now, params)
                        }
                    });
                    assert_eq!(ids[0], ids[1], "client handles differ");
                    clients.push(ids[0]);
                }
            }
            2..=5 => {
                let n = usize::from(script.byte().unwrap_or(0));
                input = Some(script.bytes(n));
            }
            6 | 7 => {
                let idx = usize::from(script.byte().unwrap_or(0)) % SNIPPETS.len();
                input = Some(SNIPPETS.get(idx).copied().unwrap_or_default());
            }
            8 => {
                let ms = u64::from(script.byte().unwrap_or(0)) * 20;
                now += Duration::from_millis(ms);
                for broker in &mut brokers {
                    broker.handle_timeout(now);
                }
            }
            9 => {
                if let Some(deadline) = brokers[0].poll_timeout() {
                    now = now.max(deadline);
                    for broker in &mut brokers {
                        broker.handle_timeout(now);
                    }
                }
            }
            10 | 11 => {
                if let Some(id) = target {
                    let n = usize::from(script.byte().unwrap_or(0)) * 16;
                    for broker in &mut brokers {
                        if let Some(q) = broker.outbound(id) {
                            q.advance(n);
                        }
                        broker.handle_flushed(id, now);
                    }
                }
            }
            12 => {
                if let Some(id) = target {
                    for broker in &mut brokers {
                        broker.close_client(id, now, crate::CloseReason::ClientClosed);
                    }
                }
            }
            13 => {
                if let Some(id) = target {
                    for broker in &mut brokers {
                        broker.remove_client(id, now);
                    }
                    clients.retain(|c| *c != id);
                    read_bufs.remove(&id);
                }
            }
            15 => {
                if clients.len() < 8 {
                    let ids = brokers.each_mut().map(|b| {
                        b.register_client(now, ClientParams::new(ConnectionType::Mqtt, addr))
                    });
                    assert_eq!(ids[0], ids[1], "client handles differ");
                    clients.push(ids[0]);
                }
            }
            _ => {
                if let Some(id) = target {
                    let _ = brokers[0].client_info(id, now);
                    let _ = brokers[0].subscriptions(Some(b"foo"));
                    let _ = brokers[0].sublist_stats();
                }
            }
        }
        if let (Some(id), Some(bytes)) = (target, input) {
            // Each client keeps its read buffer, so a partial operation's bytes stay in place
            // for the next read, as the parser's contract requires.
            let [whole, stepwise] = &mut brokers;
            let [whole_buf, step_buf] = read_bufs.entry(id).or_default();
            whole_buf.extend_from_slice(bytes);
            whole.handle_input(id, now, whole_buf);
            for byte in bytes {
                step_buf.extend_from_slice(&[*byte]);
                stepwise.handle_input(id, now, step_buf);
            }
        }
        let mut events = [Vec::new(), Vec::new()];
        loop {
            let seen = events[0].len();
            for (broker, events) in brokers.iter_mut().zip(&mut events) {
                while let Some(ev) = broker.poll_event() {
                    events.push(ev);
                }
            }
            assert_eq!(events[0], events[1], "events differ");
            // Answer password checks as a caller would, then resume the parked client.
            let checks: Vec<(ClientId, crate::auth::PasswordCheck, bool)> = events[0]
                .get(seen..)
                .unwrap_or_default()
                .iter()
                .filter_map(|ev| match ev {
                    Event::CheckPassword { client, check, .. } => {
                        Some((*client, check.clone(), check.verify()))
                    }
                    _ => None,
                })
                .collect();
            // Finish the TLS a leaf connection asked for, as the loop would.
            let tls: Vec<ClientId> = events[0]
                .get(seen..)
                .unwrap_or_default()
                .iter()
                .filter_map(|ev| match ev {
                    Event::LeafStartTls(client) => Some(*client),
                    _ => None,
                })
                .collect();
            for id in &tls {
                let bufs = read_bufs.entry(*id).or_default();
                for (broker, buf) in brokers.iter_mut().zip(bufs.iter_mut()) {
                    broker.leaf_tls_established(*id, now);
                    broker.handle_input(*id, now, buf);
                }
            }
            // Hand a resumed producer what it left, as the loop would.
            let resumed: Vec<ClientId> = events[0]
                .get(seen..)
                .unwrap_or_default()
                .iter()
                .filter_map(|ev| match ev {
                    Event::Resumed { client, .. } => Some(*client),
                    _ => None,
                })
                .collect();
            for id in &resumed {
                let bufs = read_bufs.entry(*id).or_default();
                for (broker, buf) in brokers.iter_mut().zip(bufs.iter_mut()) {
                    broker.handle_input(*id, now, buf);
                }
            }
            if checks.is_empty() && tls.is_empty() && resumed.is_empty() {
                break;
            }
            for (id, check, verified) in checks {
                let bufs = read_bufs.entry(id).or_default();
                for (broker, buf) in brokers.iter_mut().zip(bufs.iter_mut()) {
                    broker.password_checked(id, &check, verified, now);
                    broker.handle_input(id, now, buf);
                }
            }
        }
        for ev in &events[0] {
            if let Event::Closed { client, .. } = ev {
                assert!(!closed_events.contains(client), "closed twice");
                closed_events.push(*client);
            }
        }
        for id in &clients {
            let [a, b] = brokers.each_mut().map(|broker| {
                broker
                    .outbound(*id)
                    .map(|q| q.chunks().flatten().copied().collect::<Vec<u8>>())
            });
            assert_eq!(a, b, "output differs");
        }
        for broker in &brokers {
            if let Err(e) = broker.check_invariants() {
                panic!("invariant broken: {e}");
            }
        }
        assert_eq!(brokers[0].poll_timeout(), brokers[1].poll_timeout());
        if let Some(t) = brokers[0].poll_timeout() {
            // Deadlines are never absurdly far in the future.
            assert!(t <= now + Duration::from_secs(3600));
        }
    }
}

/// JWT decoding: never panics, and whatever decodes is signed by its issuer, whose nkey
/// prefix fits the claim kind, about a subject of the right kind. The input is also read as
/// the claims JSON itself (what a signature would cover), so the fuzzer reaches every claim
/// field without forging signatures.
pub fn broker_jwt(data: &[u8]) {
    if let Ok(crate::auth::jwt::AnyClaims::User(user)) = crate::auth::jwt::parse_claims(data) {
        let _ = user.nats.limits.has_empty_permissions();
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(claims) = crate::auth::jwt::decode(text) else {
        return;
    };
    let data = claims.data();
    let (iss, sub) = match claims.kind() {
        crate::auth::jwt::ClaimKind::Operator => ('O', 'O'),
        crate::auth::jwt::ClaimKind::Account => ('O', 'A'),
        crate::auth::jwt::ClaimKind::Activation => ('O', 'A'),
        crate::auth::jwt::ClaimKind::User => ('A', 'U'),
    };
    // Accounts and activations may also be signed by an account key.
    let account_signed = matches!(
        claims.kind(),
        crate::auth::jwt::ClaimKind::Account | crate::auth::jwt::ClaimKind::Activation
    ) && data.iss.starts_with('A');
    assert!(
        data.iss.starts_with(iss) || account_signed,
        "issuer {:?}",
        data.iss
    );
    assert!(data.sub.starts_with(sub), "subject {:?}", data.sub);
    let _ = data.check_times(i64::MAX);
    let _ = data.check_times(i64::MIN);
}

/// The MQTT store record decoder (`fuzz_targets/mqtt_store.rs`): any bytes decode or are
/// refused without panicking; a record that decodes encodes again to one that decodes to the
/// same state; restoring it into a broker keeps the broker's invariants and queues no write.
pub fn mqtt_store(data: &[u8]) {
    use crate::mqtt::store::{Record, decode, encode_retained, encode_session};
    let decoded = decode(data);
    if let Ok(record) = &decoded {
        let again = match record {
            Record::Retained(r) => encode_retained(&r.account, &r.topic, &r.payload),
            Record::Session(s) => {
                let now = Instant::now();
                let session = crate::mqtt::SavedSession {
                    filters: s.filters.clone(),
                    inflight: s
                        .inflight
                        .iter()
                        .map(|(id, topic, payload)| {
                            let f = crate::mqtt::Inflight {
                                topic: topic.clone(),
                                payload: payload.clone(),
                                due: now,
                                sid: None,
                            };
                            (*id, f)
                        })
                        .collect(),
                    held: {
                        let mut held = crate::mqtt::HeldQueue::default();
                        let limits = crate::mqtt::HeldLimits {
                            max_msgs: usize::MAX,
                            max_bytes: usize::MAX,
                        };
                        for (topic, payload) in &s.held {
                            let h = crate::mqtt::Held {
                                topic: topic.clone(),
                                payload: payload.clone(),
                                sid: None,
                            };
                            let _ = held.push(h, limits);
                        }
                        held
                    },
                    next_packet_id: s.next_packet_id,
                };
                encode_session(&s.account, &s.client_id, &session)
            }
        };
        assert_eq!(
            decode(&again).as_ref(),
            Ok(record),
            "round trip changed the record"
        );
    }
    let now = Instant::now();
    let mut broker = Broker::new(
        Config {
            mqtt_persist: true,
            ..Config::default()
        },
        now,
    );
    let restored = broker.restore_mqtt(now, data);
    if decoded.is_err() {
        assert!(
            restored.is_err(),
            "a record refused by the decoder was restored"
        );
    }
    assert!(
        broker.poll_mqtt_store().is_none(),
        "restoring queued a write"
    );
    if let Err(e) = broker.check_invariants() {
        panic!("invariant broken: {e}");
    }
}

#[cfg(test)]
#[path = "../../../fuzz/replay.rs"]
mod replay;

#[cfg(test)]
mod tests {
    use super::replay::replay;

    #[test]
    fn replay_broker_proto_seeds() {
        assert!(replay("broker_proto", super::broker_proto).seeds >= 5);
    }

    #[test]
    fn replay_broker_jwt_seeds() {
        assert!(replay("broker_jwt", super::broker_jwt).seeds >= 4);
    }

    #[test]
    fn replay_mqtt_store_seeds() {
        assert!(replay("mqtt_store", super::mqtt_store).seeds >= 4);
    }

    #[test]
    fn replay_broker_session_seeds() {
        let replayed = replay("broker_session", super::broker_session);
        assert!(replayed.seeds >= 4);
        assert!(replayed.regressions >= 2);
    }
}

#[cfg(test)]
mod regressions {
    /// A client refused at `max_connections` was never counted, yet its close decremented the
    /// connection counter.
    #[test]
    fn refused_connection_count() {
        super::broker_session(include_bytes!(
            "../../../fuzz/regressions/broker_session/refused_connection_count.bin"
        ));
    }

    /// A partial INFO line followed by more input: the two lockstep brokers only agree when
    /// each client's read buffer keeps the partial line, as the parser's contract requires
    /// (the harness used to drop it between reads).
    #[test]
    fn partial_line_kept_across_reads() {
        super::broker_session(include_bytes!(
            "../../../fuzz/regressions/broker_session/partial_line_kept_across_reads.bin"
        ));
    }
}

#[cfg(test)]
mod deferred_checks {
    use super::SNIPPETS;

    fn snippet(text: &[u8]) -> u8 {
        let idx = SNIPPETS.iter().position(|s| *s == text).unwrap_or(0);
        u8::try_from(idx).unwrap_or(0)
    }

    /// Tracing and a deferred bcrypt check, with input after the CONNECT that must wait for the
    /// verdict: both read patterns trace and resume identically.
    #[test]
    fn traced_session_with_a_parked_connect() {
        for (connect, flags) in [
            (
                &b"CONNECT {\"user\":\"b\",\"pass\":\"pw\",\"verbose\":false}\r\n"[..],
                0b110,
            ),
            (&b"CONNECT {\"user\":\"b\",\"pass\":\"px\"}\r\n"[..], 0b110),
            (
                &b"CONNECT {\"user\":\"u\",\"pass\":\"p\",\"verbose\":false}\r\n"[..],
                0b111,
            ),
        ] {
            let script = [
                flags,
                // Two standard clients.
                0x00,
                0x00,
                // Client 0: CONNECT, then a SUB and a PING in the same read as more input.
                0x06,
                snippet(connect),
                0x02,
                17,
            ];
            let mut data = script.to_vec();
            data.extend_from_slice(b"SUB foo 1\r\nPING\r\n");
            super::broker_session(&data);
        }
    }
}
