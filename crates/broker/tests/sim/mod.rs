//! A deterministic simulation harness: one broker, several in-memory clients, virtual time.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use broker::{Broker, ClientId, ClientParams, CloseReason, Config, ConnectionType, Event};
use bytes::BytesMut;

pub struct Sim {
    pub broker: Broker,
    pub now: Instant,
    pub out: HashMap<ClientId, Vec<u8>>,
    pub closed: HashMap<ClientId, CloseReason>,
    pub connected: Vec<ClientId>,
    /// When false, output is not drained (the client is not reading).
    pub reading: HashMap<ClientId, bool>,
    /// Each client's read buffer; a partial operation stays here between sends.
    pub inbuf: HashMap<ClientId, BytesMut>,
    /// `Event::CheckPassword` requests, in order.
    pub checks: Vec<(ClientId, broker::auth::PasswordCheck)>,
    /// The `parked` flag of each of `checks`.
    pub check_parks: Vec<bool>,
    /// `Event::Trace` lines, in order.
    pub traces: Vec<(ClientId, String)>,
    /// `Event::SlowConsumer` reports: client, reason, pending bytes.
    pub slow: Vec<(ClientId, CloseReason, usize)>,
    /// `Event::SystemRequest`s.
    pub requests: Vec<SystemRequest>,
    /// `Event::Resumed` stalled producers (their input is fed again), with the stall time
    /// that ran out.
    pub resumed: Vec<(ClientId, Option<Duration>)>,
}

/// An `Event::SystemRequest`: service, subject, reply, the whole message, its header length.
pub type SystemRequest = (broker::ServiceId, String, Option<String>, Vec<u8>, usize);

impl Sim {
    pub fn new(config: Config) -> Self {
        let now = Instant::now();
        Self {
            broker: Broker::new(config, now),
            now,
            out: HashMap::new(),
            closed: HashMap::new(),
            connected: Vec::new(),
            reading: HashMap::new(),
            inbuf: HashMap::new(),
            checks: Vec::new(),
            check_parks: Vec::new(),
            traces: Vec::new(),
            slow: Vec::new(),
            requests: Vec::new(),
            resumed: Vec::new(),
        }
    }

    pub fn connect_kind(&mut self, kind: ConnectionType) -> ClientId {
        let addr = "127.0.0.1:40000".parse().unwrap();
        let id = self
            .broker
            .register_client(self.now, ClientParams::new(kind, addr));
        self.out.insert(id, Vec::new());
        self.reading.insert(id, true);
        self.pump();
        id
    }

    /// A TCP client whose INFO has been consumed.
    pub fn client(&mut self) -> ClientId {
        let id = self.connect_kind(ConnectionType::Standard);
        let info = self.take(id);
        assert!(
            info.starts_with(b"INFO {"),
            "{}",
            String::from_utf8_lossy(&info)
        );
        id
    }

    /// A client that sent `CONNECT <json>` and whose output so far was consumed.
    pub fn connected_client(&mut self, json: &str) -> ClientId {
        let id = self.client();
        self.send(id, &format!("CONNECT {json}\r\n"));
        self.take(id);
        id
    }

    pub fn send(&mut self, id: ClientId, data: &str) {
        self.send_bytes(id, data.as_bytes());
    }

    pub fn send_bytes(&mut self, id: ClientId, data: &[u8]) {
        let mut buf = self.inbuf.remove(&id).unwrap_or_default();
        buf.extend_from_slice(data);
        self.broker.handle_input(id, self.now, &mut buf);
        self.inbuf.insert(id, buf);
        self.pump();
    }

    /// Answers the latest password check asked for `id` with `verified`.
    pub fn answer(&mut self, id: ClientId, verified: bool) {
        let check = self
            .checks
            .iter()
            .rev()
            .find(|(c, _)| *c == id)
            .map(|(_, k)| k.clone())
            .expect("a password check for this client");
        self.broker.password_checked(id, &check, verified, self.now);
        self.pump();
    }

    /// Feeds the client's unconsumed input again (after `password_checked`).
    pub fn resume(&mut self, id: ClientId) {
        self.send_bytes(id, b"");
    }

    /// Drains events and (for reading clients) outbound bytes.
    pub fn pump(&mut self) {
        let mut resumed = Vec::new();
        while let Some(ev) = self.broker.poll_event() {
            match ev {
                Event::Closed { client, reason } => {
                    self.closed.insert(client, reason);
                    self.drain(client);
                }
                Event::Connected(c) => self.connected.push(c),
                Event::CheckPassword {
                    client,
                    check,
                    parked,
                } => {
                    self.checks.push((client, check));
                    self.check_parks.push(parked);
                }
                Event::Trace { client, line } => self.traces.push((client, line)),
                Event::SlowConsumer {
                    client,
                    reason,
                    pending_bytes,
                    ..
                } => self.slow.push((client, reason, pending_bytes)),
                Event::SystemRequest {
                    service,
                    subject,
                    reply,
                    payload,
                    header_len,
                } => self
                    .requests
                    .push((service, subject, reply, payload.to_vec(), header_len)),
                Event::Resumed { client, timed_out } => {
                    self.resumed.push((client, timed_out));
                    resumed.push(client);
                }
                _ => {}
            }
        }
        let ids: Vec<ClientId> = self.out.keys().copied().collect();
        for id in ids {
            if self.reading.get(&id).copied().unwrap_or(true) {
                self.drain(id);
            }
        }
        // As the binary does: what a stalled producer left is handed back.
        for id in resumed {
            self.resume(id);
        }
    }

    fn drain(&mut self, id: ClientId) {
        let now = self.now;
        if let Some(q) = self.broker.outbound(id) {
            let mut buf = BytesMut::new();
            q.drain_into(&mut buf);
            self.out.entry(id).or_default().extend_from_slice(&buf);
            self.broker.handle_flushed(id, now);
        }
    }

    pub fn take(&mut self, id: ClientId) -> Vec<u8> {
        std::mem::take(self.out.entry(id).or_default())
    }

    pub fn take_str(&mut self, id: ClientId) -> String {
        String::from_utf8(self.take(id)).unwrap()
    }

    /// Advances virtual time in steps, firing timers.
    pub fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        loop {
            match self.broker.poll_timeout() {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.broker.handle_timeout(self.now);
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = end;
        self.broker.handle_timeout(self.now);
        self.pump();
    }
}
