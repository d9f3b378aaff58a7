//! The scenario matrix and the code that runs one scenario against one running server.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use mqtt_codec::{Packet, QoS};

use crate::conn::{Conn, Target, Transport, open_many};
use crate::mqtt;
use crate::payload::Payloads;
use crate::proto::{self, Op};
use crate::server::Server;
use crate::stats::percentile;
use crate::sys;

/// Whether a larger or a smaller value of a figure is better (the ratio column says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Better {
    Higher,
    Lower,
    /// Context only (CPU shares): no ratio is shown.
    Neither,
}

/// How a figure is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// `3.079M`, `61.3K`.
    Rate,
    /// About four significant digits.
    Num,
}

/// One measured figure of one run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Figure {
    pub(crate) label: &'static str,
    pub(crate) value: f64,
    pub(crate) better: Better,
    pub(crate) unit: Unit,
}

fn fig(label: &'static str, value: f64, better: Better, unit: Unit) -> Figure {
    Figure {
        label,
        value,
        better,
        unit,
    }
}

/// `n` per second of `d`.
fn per_second(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// A rate where more is better.
fn rate(label: &'static str, value: f64) -> Figure {
    fig(label, value, Better::Higher, Unit::Rate)
}

/// A cost where less is better.
fn cost(label: &'static str, value: f64) -> Figure {
    fig(label, value, Better::Lower, Unit::Num)
}

/// What one run gave.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Measured(Vec<Figure>),
    /// The scenario cannot run here (the reason says why); not a failure.
    Skipped(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    Tcp,
    Ws,
    WsDeflate,
    Wss,
}

/// A publish/subscribe scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PubSub {
    wire: Wire,
    size: usize,
    count: u64,
    subs: usize,
    distinct: bool,
    json: bool,
    /// Leaf topology: which side the publisher is on, and the edge's link to the hub.
    leaf: Option<Leaf>,
}

/// How the edge of a leaf scenario reaches the hub: its remote dials the hub's leafnode port
/// (`nats://`) or the hub's WebSocket port (`ws://`, path `/leafnode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    Tcp,
    Ws,
}

/// The direction of a leaf pub/sub scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leaf {
    /// The publisher is a TCP client of the hub, the subscribers clients of the edge.
    Down(Link),
    /// The publisher is a client of the edge, the subscribers TCP clients of the hub.
    Up(Link),
    /// The publisher is a TCP client of the hub, the subscribers clients of `edges` natsws
    /// edges that share one WebSocket port (`websocket { reuse_port: true }`), each its own
    /// leaf of the hub over TCP; the kernel spreads the subscribers over the edges.
    Shared { edges: usize },
}

/// The servers a leaf scenario needs besides the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Edges {
    /// How each edge's remote reaches the hub.
    pub(crate) link: Link,
    /// How many edges.
    pub(crate) count: usize,
    /// Whether the edges bind their WebSocket port with `reuse_port` (and share it).
    pub(crate) reuse_port: bool,
}

impl Leaf {
    fn edges(self) -> Edges {
        match self {
            Self::Down(link) | Self::Up(link) => Edges {
                link,
                count: 1,
                reuse_port: false,
            },
            Self::Shared { edges } => Edges {
                link: Link::Tcp,
                count: edges,
                reuse_port: true,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One publisher, `subs` subscribers: on one subject (each gets every message), or on
    /// `subs` distinct subjects that the publisher uses round-robin.
    PubSub(PubSub),
    /// One requester with one request in flight, one responder; with `leaf`, the requester is
    /// a WebSocket client of the edge and the responder a TCP client of the hub.
    ReqRep { size: usize, count: u64, leaf: bool },
    /// Idle WebSocket connections.
    Idle { conns: usize },
    /// One MQTT publisher and one MQTT subscriber over WebSocket (`/mqtt`) on one topic; at
    /// QoS 1 the publisher keeps at most `window` PUBLISHes unacknowledged, and the
    /// subscriber acknowledges every delivery.
    Mqtt {
        qos: QoS,
        size: usize,
        count: u64,
        window: usize,
    },
}

/// One row group of the table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) title: &'static str,
    pub(crate) kind: Kind,
}

impl Scenario {
    /// The edges and how they reach their hub (nats-server), when the scenario runs on a hub
    /// with the server under test its leaf.
    pub(crate) fn leaf_edges(&self) -> Option<Edges> {
        match self.kind {
            Kind::PubSub(PubSub { leaf, .. }) => leaf.map(Leaf::edges),
            Kind::ReqRep { leaf: true, .. } => Some(Edges {
                link: Link::Tcp,
                count: 1,
                reuse_port: false,
            }),
            _ => None,
        }
    }

    /// Why the scenario cannot run on nats-server, when it needs what only natsws serves.
    pub(crate) fn natsws_only(&self) -> Option<&'static str> {
        match self.kind {
            Kind::PubSub(PubSub {
                leaf: Some(Leaf::Shared { .. }),
                ..
            }) => Some("nats-server has no websocket reuse_port"),
            _ => None,
        }
    }

    /// Whether the server needs its MQTT config ([`crate::server::mqtt_config`]).
    pub(crate) fn is_mqtt(&self) -> bool {
        matches!(self.kind, Kind::Mqtt { .. })
    }

    pub(crate) fn needs_tls(&self) -> bool {
        matches!(
            self.kind,
            Kind::PubSub(PubSub {
                wire: Wire::Wss,
                ..
            })
        )
    }
}

const fn pubsub(wire: Wire, size: usize, count: u64) -> Kind {
    Kind::PubSub(PubSub {
        wire,
        size,
        count,
        subs: 1,
        distinct: false,
        json: false,
        leaf: None,
    })
}

/// Every scenario, in table order.
pub(crate) const ALL: &[Scenario] = &[
    Scenario {
        name: "tcp_128",
        title: "tcp pub/sub 1×1 128 B",
        kind: pubsub(Wire::Tcp, 128, 2_000_000),
    },
    Scenario {
        name: "ws_16",
        title: "ws pub/sub 1×1 16 B",
        kind: pubsub(Wire::Ws, 16, 4_000_000),
    },
    Scenario {
        name: "ws_128",
        title: "ws pub/sub 1×1 128 B",
        kind: pubsub(Wire::Ws, 128, 2_000_000),
    },
    Scenario {
        name: "ws_16k",
        title: "ws pub/sub 1×1 16 KiB",
        kind: pubsub(Wire::Ws, 16 * 1024, 60_000),
    },
    Scenario {
        name: "wss_128",
        title: "wss pub/sub 1×1 128 B",
        kind: pubsub(Wire::Wss, 128, 1_000_000),
    },
    Scenario {
        name: "wss_16k",
        title: "wss pub/sub 1×1 16 KiB",
        kind: pubsub(Wire::Wss, 16 * 1024, 40_000),
    },
    Scenario {
        name: "fanout_100",
        title: "ws fan-out 1×100 128 B",
        kind: Kind::PubSub(PubSub {
            wire: Wire::Ws,
            size: 128,
            count: 50_000,
            subs: 100,
            distinct: false,
            json: false,
            leaf: None,
        }),
    },
    Scenario {
        name: "fanout_2000",
        title: "ws fan-out 1×2000 128 B",
        kind: Kind::PubSub(PubSub {
            wire: Wire::Ws,
            size: 128,
            count: 2_000,
            subs: 2_000,
            distinct: false,
            json: false,
            leaf: None,
        }),
    },
    Scenario {
        name: "reqrep",
        title: "ws request/reply 128 B",
        kind: Kind::ReqRep {
            size: 128,
            count: 20_000,
            leaf: false,
        },
    },
    Scenario {
        name: "compress_json",
        title: "ws deflate 1×1 1 KiB JSON",
        kind: Kind::PubSub(PubSub {
            wire: Wire::WsDeflate,
            size: 1024,
            count: 100_000,
            subs: 1,
            distinct: false,
            json: true,
            leaf: None,
        }),
    },
    Scenario {
        name: "idle_5000",
        title: "ws 5000 idle connections",
        kind: Kind::Idle { conns: 5_000 },
    },
    Scenario {
        name: "idle_20000",
        title: "ws 20000 idle connections",
        kind: Kind::Idle { conns: 20_000 },
    },
    Scenario {
        name: "mixed_2000",
        title: "ws 2000 subjects × 1 sub, 1 pub",
        kind: Kind::PubSub(PubSub {
            wire: Wire::Ws,
            size: 128,
            count: 400_000,
            subs: 2_000,
            distinct: true,
            json: false,
            leaf: None,
        }),
    },
    Scenario {
        name: "leaf_128",
        title: "leaf: hub tcp pub → edge ws sub 128 B",
        kind: Kind::PubSub(PubSub {
            wire: Wire::Ws,
            size: 128,
            count: 1_000_000,
            subs: 1,
            distinct: false,
            json: false,
            leaf: Some(Leaf::Down(Link::Tcp)),
        }),
    },
    Scenario {
        name: "leaf_fanout_100",
        title: "leaf: hub tcp pub → 100 edge ws subs 128 B",
        kind: Kind::PubSub(PubSub {
            wire: Wire::Ws,
            size: 128,
            count: 20_000,
            subs: 100,
            distinct: false,
            json: false,
            leaf: Some(Leaf::Down(Link::Tcp)),
        }),
    },
    Scenario {
        name: "leaf_reqrep",
        title: "leaf: edge ws requester, hub tcp responder",
        kind: Kind::ReqRep {
            size: 128,
            count: 10_000,
            leaf: true,
        },
    },
    Scenario {
        name: "leaf_ws_128",
        title: "leaf over ws: hub tcp pub → edge ws sub 128 B",
        kind: Kind::PubSub(PubSub {
            wire: Wire::Ws,
            size: 128,
            count: 1_000_000,
            subs: 1,
            distinct: false,
            json: false,
            leaf: Some(Leaf::Down(Link::Ws)),
        }),
    },
    Scenario {
        name: "leaf_up_128",
        title: "leaf: edge ws pub → hub tcp sub 128 B",
        kind: Kind::PubSub(PubSub {
            wire: Wire::Ws,
            size: 128,
            count: 1_000_000,
            subs: 1,
            distinct: false,
            json: false,
            leaf: Some(Leaf::Up(Link::Tcp)),
        }),
    },
    Scenario {
        name: "leaf_reuseport_1",
        title: "leaf: hub tcp pub → 400 ws subs on 1 reuse_port edge 128 B",
        kind: Kind::PubSub(PubSub {
            wire: Wire::Ws,
            size: 128,
            count: 20_000,
            subs: 400,
            distinct: false,
            json: false,
            leaf: Some(Leaf::Shared { edges: 1 }),
        }),
    },
    Scenario {
        name: "leaf_reuseport_4",
        title: "leaf: hub tcp pub → 400 ws subs on 4 edges, one port 128 B",
        kind: Kind::PubSub(PubSub {
            wire: Wire::Ws,
            size: 128,
            count: 20_000,
            subs: 400,
            distinct: false,
            json: false,
            leaf: Some(Leaf::Shared { edges: 4 }),
        }),
    },
    Scenario {
        name: "mqtt_qos0_ws",
        title: "mqtt ws QoS 0 pub/sub 1×1 128 B",
        kind: Kind::Mqtt {
            qos: QoS::AtMostOnce,
            size: 128,
            count: 200_000,
            window: 0,
        },
    },
    Scenario {
        name: "mqtt_qos1_ws",
        title: "mqtt ws QoS 1 pub/sub 1×1 128 B, 256 in flight",
        kind: Kind::Mqtt {
            qos: QoS::AtLeastOnce,
            size: 128,
            count: 50_000,
            window: 256,
        },
    },
];

/// What a run needs besides the scenario.
pub(crate) struct Env<'a> {
    /// The server under test (in leaf scenarios: the edge, the first one where there are
    /// several).
    pub(crate) server: &'a Server,
    /// The other edges, sharing the first one's WebSocket port.
    pub(crate) more_edges: &'a [Server],
    /// The hub of the leaf scenarios.
    pub(crate) hub: Option<&'a Server>,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    /// Multiplies message and connection counts (1 for the real thing; small for smoke runs).
    pub(crate) scale: f64,
    /// The most a run may take, and the socket timeout.
    pub(crate) timeout: Duration,
    /// A run fails after this long without a message delivered.
    pub(crate) stall: Duration,
}

impl Env<'_> {
    fn scaled<T: TryFrom<u64> + Into<u64> + Copy>(&self, n: T) -> T {
        let v = ((n.into() as f64) * self.scale).round().max(1.0) as u64;
        T::try_from(v).unwrap_or(n)
    }

    fn target(&self, wire: Wire) -> Result<Target, String> {
        let (addr, transport) = match wire {
            Wire::Tcp => (self.server.nats, Transport::Tcp),
            Wire::Ws => (self.server.ws, Transport::Ws { compress: false }),
            Wire::WsDeflate => (self.server.ws, Transport::Ws { compress: true }),
            Wire::Wss => (
                self.server.ws,
                Transport::Wss {
                    compress: false,
                    tls: self.tls.clone().ok_or("wss needs a certificate")?,
                },
            ),
        };
        Ok(Target { addr, transport })
    }

    /// A plain TCP client of the hub.
    fn hub_target(&self) -> Result<Target, String> {
        let hub = self.hub.ok_or("a leaf scenario needs a hub")?;
        Ok(Target {
            addr: hub.nats,
            transport: Transport::Tcp,
        })
    }

    /// The CPU time of the server under test (of all its edges).
    fn server_cpu(&self) -> Result<Duration, String> {
        let mut total = sys::cpu_time(Some(self.server.pid))?;
        for edge in self.more_edges {
            total += sys::cpu_time(Some(edge.pid))?;
        }
        Ok(total)
    }
}

/// Runs `scenario` once against the server of `env`.
pub(crate) fn run(scenario: &Scenario, env: &Env<'_>) -> Result<Outcome, String> {
    match scenario.kind {
        Kind::PubSub(spec) => {
            let subs = env.scaled(spec.subs as u64) as usize;
            let count = env.scaled(spec.count).max(subs as u64);
            run_pubsub(
                env,
                PubSub {
                    subs,
                    count,
                    ..spec
                },
            )
        }
        Kind::ReqRep { size, count, leaf } => run_reqrep(env, size, env.scaled(count), leaf),
        Kind::Idle { conns } => run_idle(env, env.scaled(conns as u64) as usize),
        Kind::Mqtt {
            qos,
            size,
            count,
            window,
        } => run_mqtt(env, qos, size, env.scaled(count), window),
    }
}

/// CPU shares over a measured interval, in % of one core.
fn cpu_figures(server: Duration, client: Duration, wall: Duration) -> [Figure; 2] {
    let pct = |d: Duration| 100.0 * d.as_secs_f64() / wall.as_secs_f64().max(1e-9);
    [
        fig("server CPU %", pct(server), Better::Neither, Unit::Num),
        fig("loadgen CPU %", pct(client), Better::Neither, Unit::Num),
    ]
}

/// A subscriber's progress through the messages it must get.
struct Reader {
    conn: Conn,
    next: u64,
    step: u64,
    left: u64,
    last: Option<Instant>,
}

impl Reader {
    /// Reads until the socket has nothing more, checking each message.
    fn drain(&mut self, payloads: &Payloads) -> Result<(), String> {
        let mut got = false;
        loop {
            while let Some(op) = self.conn.next_op()? {
                match op {
                    Op::Msg { payload, .. } => {
                        if self.left == 0 {
                            return Err(format!("message {} was not published", self.next));
                        }
                        payloads
                            .check(self.next, &payload)
                            .map_err(|e| e.to_string())?;
                        self.next += self.step;
                        self.left -= 1;
                        got = true;
                    }
                    Op::Err(e) => return Err(format!("server error: -ERR {e}")),
                    _ => {}
                }
            }
            match self.conn.fill() {
                Ok(0) => return Err("the server closed a subscriber".to_owned()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("subscriber read: {e}")),
            }
        }
        if got {
            self.last = Some(Instant::now());
        }
        Ok(())
    }
}

/// Reads for `readers` on one thread until each has all its messages.
fn read_all(
    mut readers: Vec<Reader>,
    payloads: &Payloads,
    deadline: Instant,
    stall: Duration,
) -> Result<Vec<Reader>, String> {
    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let mut events = Events::with_capacity(1024);
    for (i, reader) in readers.iter_mut().enumerate() {
        reader.conn.set_nonblocking()?;
        poll.registry()
            .register(
                &mut SourceFd(&reader.conn.raw_fd()),
                Token(i),
                Interest::READABLE,
            )
            .map_err(|e| format!("register: {e}"))?;
    }
    let mut progress = Instant::now();
    loop {
        let waiting = readers.iter().filter(|r| r.left > 0).count();
        if waiting == 0 {
            return Ok(readers);
        }
        let now = Instant::now();
        if now > deadline || now.duration_since(progress) > stall {
            let missing: u64 = readers.iter().map(|r| r.left).sum();
            return Err(format!(
                "{missing} messages missing at {waiting} subscribers after {}",
                if now > deadline {
                    "the time limit".to_owned()
                } else {
                    format!("{} s without progress", stall.as_secs())
                }
            ));
        }
        match poll.poll(&mut events, Some(Duration::from_millis(100))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
        for event in &events {
            if let Some(reader) = readers.get_mut(event.token().0) {
                let before = reader.left;
                reader.drain(payloads)?;
                if reader.left != before {
                    progress = Instant::now();
                }
            }
        }
    }
}

fn run_pubsub(env: &Env<'_>, spec: PubSub) -> Result<Outcome, String> {
    let PubSub {
        wire,
        size,
        count,
        subs,
        distinct,
        json,
        leaf,
    } = spec;
    let payloads = if json {
        Payloads::json(size, 64)?
    } else {
        Payloads::binary(size)?
    };
    let target = env.target(wire)?;
    let subjects: Vec<String> = if distinct {
        (0..subs).map(|i| format!("lg.{i}")).collect()
    } else {
        vec!["lg.all".to_owned()]
    };
    let (sub_target, pub_target) = match leaf {
        None => (target.clone(), target),
        Some(Leaf::Down(_) | Leaf::Shared { .. }) => (target, env.hub_target()?),
        Some(Leaf::Up(_)) => (env.hub_target()?, target),
    };
    let subscribers = open_many(&sub_target, subs, 4, env.timeout, &|i, conn| {
        conn.subscribe(subjects.get(i).unwrap_or(&subjects[0]))
    })?;
    // The subscriptions must have crossed the link before the first message: to the hub
    // (its `/leafz`) from edge subscribers, to the edge from hub subscribers.
    let far_side = match leaf {
        None => None,
        Some(Leaf::Down(_) | Leaf::Shared { .. }) => {
            Some(env.hub.ok_or("a leaf scenario needs a hub")?)
        }
        Some(Leaf::Up(_)) => Some(env.server),
    };
    // With several edges on one port: the subscribers on the busiest edge.
    let mut busiest = None;
    if let Some(far_side) = far_side {
        let wanted: Vec<&str> = subjects.iter().map(String::as_str).collect();
        // Every edge that a subscriber landed on (the kernel chose) must have told the hub.
        let mut carrying = 1;
        if !env.more_edges.is_empty() {
            carrying = 0;
            let mut most = 0;
            for edge in std::iter::once(env.server).chain(env.more_edges) {
                let clients = crate::server::client_count(edge)?;
                carrying += usize::from(clients > 0);
                most = most.max(clients);
            }
            busiest = Some(most);
        }
        let leafs = 1 + env.more_edges.len();
        crate::server::wait_leafs(far_side, leafs, carrying, &wanted)?;
    }
    let mut publisher = Conn::open(&pub_target, env.timeout)?;

    // The publisher's writes: batches of about 32 KiB of PUBs (one WebSocket message each).
    let batch_bytes = 32 * 1024;
    let mut prebuilt = Vec::new();
    let make_batches = |emit: &mut dyn FnMut(Vec<u8>) -> Result<(), String>| {
        let mut batch = Vec::with_capacity(batch_bytes + size + 64);
        for seq in 0..count {
            let subject = &subjects[usize::try_from(seq % subjects.len() as u64).unwrap_or(0)];
            proto::pub_head(&mut batch, subject, None, size);
            payloads.write(seq, &mut batch);
            batch.extend_from_slice(b"\r\n");
            if batch.len() >= batch_bytes {
                emit(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(batch_bytes + size + 64),
                ))?;
            }
        }
        if !batch.is_empty() {
            emit(batch)?;
        }
        Ok::<(), String>(())
    };
    if json {
        // Compressing is the client's cost, not the server's: done before the clock starts
        // (valid because permessage-deflate runs without context takeover).
        make_batches(&mut |b| {
            let mut wire = Vec::new();
            publisher.frame(Bytes::from(b), &mut wire)?;
            prebuilt.push(wire);
            Ok(())
        })?;
    }

    publisher.reset_counters();
    let deadline = Instant::now() + env.timeout;
    // Two reader threads; eight for the scenarios on edges sharing a port, whatever their
    // number, so that 1 and 4 edges meet the same load generator.
    let readers = if matches!(leaf, Some(Leaf::Shared { .. })) {
        8
    } else {
        2
    };
    let mut groups: Vec<Vec<Reader>> = (0..subs.clamp(1, readers)).map(|_| Vec::new()).collect();
    let groups_len = groups.len();
    for (i, mut conn) in subscribers.into_iter().enumerate() {
        conn.reset_counters();
        let (next, step, left) = if distinct {
            let i = i as u64;
            let n = subs as u64;
            (i, n, count / n + u64::from(i < count % n))
        } else {
            (0, 1, count)
        };
        if let Some(group) = groups.get_mut(i % groups_len) {
            group.push(Reader {
                conn,
                next,
                step,
                left,
                last: None,
            });
        }
    }

    let server_cpu0 = env.server_cpu()?;
    let client_cpu0 = sys::cpu_time(None)?;
    let t0 = Instant::now();
    let (published, readers) = std::thread::scope(|scope| {
        let payloads = &payloads;
        let handles: Vec<_> = groups
            .into_iter()
            .map(|group| scope.spawn(move || read_all(group, payloads, deadline, env.stall)))
            .collect();
        let published = (|| {
            if json {
                for wire in &prebuilt {
                    publisher.send_wire(wire)?;
                }
            } else {
                make_batches(&mut |b| publisher.send(Bytes::from(b)))?;
            }
            publisher.round_trip()?;
            Ok::<_, String>(t0.elapsed())
        })();
        let readers: Result<Vec<Reader>, String> =
            handles.into_iter().try_fold(Vec::new(), |mut all, h| {
                all.extend(h.join().map_err(|_| "a reader panicked".to_owned())??);
                Ok(all)
            });
        (published, readers)
    });
    let wall = t0.elapsed();
    let server_cpu = env.server_cpu()?.saturating_sub(server_cpu0);
    let client_cpu = sys::cpu_time(None)?.saturating_sub(client_cpu0);
    let readers = readers?;
    let published = published?;
    let delivered: u64 = count * if distinct { 1 } else { subs as u64 };
    let last = readers.iter().filter_map(|r| r.last).max().unwrap_or(t0);
    let delivery_time = last.duration_since(t0).as_secs_f64().max(1e-9);
    let mut figures = vec![
        rate("publish msgs/s", per_second(count, published)),
        rate("delivered msgs/s", delivered as f64 / delivery_time),
    ];
    if size >= 1024 && !json {
        figures.push(fig(
            "delivered MB/s",
            (delivered * size as u64) as f64 / delivery_time / 1e6,
            Better::Higher,
            Unit::Num,
        ));
    }
    if json {
        let payload_bytes = (count * size as u64) as f64;
        let sub_in: u64 = readers.iter().map(|r| r.conn.wire_in).sum();
        figures.push(cost(
            "pub wire/payload",
            publisher.wire_out as f64 / payload_bytes,
        ));
        figures.push(cost(
            "sub wire/payload",
            sub_in as f64 / (payload_bytes * subs as f64),
        ));
    }
    figures.push(cost(
        "server CPU ns/msg",
        server_cpu.as_nanos() as f64 / delivered as f64,
    ));
    figures.extend(cpu_figures(server_cpu, client_cpu, wall));
    if let Some(most) = busiest {
        figures.push(fig(
            "subs on busiest edge",
            most as f64,
            Better::Neither,
            Unit::Num,
        ));
    }
    Ok(Outcome::Measured(figures))
}

fn run_reqrep(env: &Env<'_>, size: usize, count: u64, leaf: bool) -> Result<Outcome, String> {
    let warmup = env.scaled(500u64);
    let total = warmup + count;
    let target = env.target(Wire::Ws)?;
    let payloads = Payloads::binary(size)?;
    let mut responder = Conn::open(
        &if leaf {
            env.hub_target()?
        } else {
            target.clone()
        },
        env.timeout,
    )?;
    responder.subscribe("lg.req")?;
    let mut requester = Conn::open(&target, env.timeout)?;
    requester.subscribe("_INBOX.lg")?;
    if leaf {
        // Each side's interest must have crossed the link: the reply subject to the hub,
        // the request subject to the edge.
        let hub = env.hub.ok_or("a leaf scenario needs a hub")?;
        crate::server::wait_leaf_interest(hub, &["_INBOX.lg"])?;
        crate::server::wait_leaf_interest(env.server, &["lg.req"])?;
    }

    let (samples, wall, server_cpu, client_cpu) = std::thread::scope(|scope| {
        // The responder echoes each request, answering everything read at once in one write.
        let echo = scope.spawn(move || {
            let mut answered = 0;
            while answered < total {
                let mut op = Some(responder.read_op()?);
                let mut out = Vec::new();
                while let Some(this) = op {
                    if let Op::Msg {
                        reply: Some(reply),
                        payload,
                        ..
                    } = this
                    {
                        let reply = String::from_utf8_lossy(&reply).into_owned();
                        proto::pub_head(&mut out, &reply, None, payload.len());
                        out.extend_from_slice(&payload);
                        out.extend_from_slice(b"\r\n");
                        answered += 1;
                    }
                    op = responder.next_op()?;
                }
                if !out.is_empty() {
                    responder.send(Bytes::from(out))?;
                }
            }
            Ok::<(), String>(())
        });
        let measured = (|| {
            let mut samples = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
            let mut start = None;
            for seq in 0..total {
                if seq == warmup {
                    start = Some((Instant::now(), env.server_cpu()?, sys::cpu_time(None)?));
                }
                let mut request = Vec::with_capacity(size + 48);
                proto::pub_head(&mut request, "lg.req", Some("_INBOX.lg"), size);
                payloads.write(seq, &mut request);
                request.extend_from_slice(b"\r\n");
                let sent = Instant::now();
                requester.send(Bytes::from(request))?;
                loop {
                    match requester.read_op()? {
                        Op::Msg { payload, .. } => {
                            payloads.check(seq, &payload).map_err(|e| e.to_string())?;
                            break;
                        }
                        Op::Err(e) => return Err(format!("server error: -ERR {e}")),
                        _ => {}
                    }
                }
                if seq >= warmup {
                    samples.push(u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX));
                }
            }
            let (t0, server0, client0) = start.ok_or("no measured requests")?;
            Ok((
                samples,
                t0.elapsed(),
                env.server_cpu()?.saturating_sub(server0),
                sys::cpu_time(None)?.saturating_sub(client0),
            ))
        })();
        let echoed = echo
            .join()
            .map_err(|_| "the responder panicked".to_owned())
            .and_then(|r| r);
        let measured = measured?;
        echoed?;
        Ok::<_, String>(measured)
    })?;
    let mut sorted = samples;
    sorted.sort_unstable();
    let us = |p: f64| percentile(&sorted, p).map_or(f64::NAN, |ns| ns as f64 / 1e3);
    let mut figures = vec![
        rate("requests/s", per_second(count, wall)),
        cost("latency p50 µs", us(50.0)),
        cost("latency p99 µs", us(99.0)),
        cost("latency p99.9 µs", us(99.9)),
        cost(
            "server CPU µs/req",
            server_cpu.as_secs_f64() * 1e6 / count as f64,
        ),
    ];
    figures.extend(cpu_figures(server_cpu, client_cpu, wall));
    Ok(Outcome::Measured(figures))
}

/// The MQTT scenarios' topic.
const MQTT_TOPIC: &str = "bench/t";

fn run_mqtt(
    env: &Env<'_>,
    qos: QoS,
    size: usize,
    count: u64,
    window: usize,
) -> Result<Outcome, String> {
    let payloads = Payloads::binary(size)?;
    let target = env.target(Wire::Ws)?;
    let mut sub = mqtt::Client::open(&target, env.timeout, "lg-sub")?;
    sub.subscribe(MQTT_TOPIC, qos)?;
    sub.conn.set_read_timeout(env.stall)?;
    let mut publisher = mqtt::Client::open(&target, env.timeout, "lg-pub")?;
    publisher.conn.set_read_timeout(env.stall)?;
    let acked = qos != QoS::AtMostOnce;
    let deadline = Instant::now() + env.timeout;

    let server_cpu0 = env.server_cpu()?;
    let client_cpu0 = sys::cpu_time(None)?;
    let t0 = Instant::now();
    let progress = AtomicU64::new(0);
    let (published, received) = std::thread::scope(|scope| {
        let payloads = &payloads;
        let progress = &progress;
        let reader =
            scope.spawn(move || mqtt_subscriber(sub, payloads, qos, count, progress, deadline));
        let published = (|| {
            if acked {
                mqtt_publish_acked(&mut publisher, payloads, count, window, deadline)?;
            } else {
                let batch_bytes = 32 * 1024;
                let mut batch = BytesMut::with_capacity(batch_bytes + size + 64);
                let mut body = Vec::with_capacity(size);
                for seq in 0..count {
                    body.clear();
                    payloads.write(seq, &mut body);
                    mqtt::put_publish(&mut batch, MQTT_TOPIC, None, &body)?;
                    if batch.len() >= batch_bytes {
                        publisher.send_encoded(batch.split())?;
                    }
                }
                if !batch.is_empty() {
                    publisher.send_encoded(batch)?;
                }
            }
            // Everything sent has been handled once the PINGRESP is back.
            publisher.round_trip()?;
            Ok::<_, String>(t0.elapsed())
        })();
        let received = reader
            .join()
            .map_err(|_| "the subscriber panicked".to_owned())
            .and_then(|r| r);
        (published, received)
    });
    let wall = t0.elapsed();
    let server_cpu = env.server_cpu()?.saturating_sub(server_cpu0);
    let client_cpu = sys::cpu_time(None)?.saturating_sub(client_cpu0);
    let last = received?;
    let published = published?;
    let delivery_time = last.duration_since(t0);
    let mut figures = vec![
        rate("publish msgs/s", per_second(count, published)),
        rate("delivered msgs/s", per_second(count, delivery_time)),
        cost(
            "server CPU ns/msg",
            server_cpu.as_nanos() as f64 / count as f64,
        ),
    ];
    figures.extend(cpu_figures(server_cpu, client_cpu, wall));
    Ok(Outcome::Measured(figures))
}

/// Publishes `count` QoS 1 messages keeping at most `window` unacknowledged; every PUBACK
/// must name an outstanding packet identifier.
///
/// The window is the publisher's only: how far the subscriber lags is left to the server.
/// Both servers hold QoS 1 deliveries past the subscriber's `max_ack_pending` (1024) until
/// its PUBACKs free room, so the subscriber's check (every message once, in order) verifies
/// that nothing is lost however far it falls behind.
fn mqtt_publish_acked(
    publisher: &mut mqtt::Client,
    payloads: &Payloads,
    count: u64,
    window: usize,
    deadline: Instant,
) -> Result<(), String> {
    let mut outstanding = vec![false; usize::from(u16::MAX) + 1];
    let mut in_flight = 0usize;
    let mut next_id: u16 = 1;
    let mut seq = 0u64;
    let mut acks = 0u64;
    let mut batch = BytesMut::new();
    let mut body = Vec::new();
    while acks < count {
        if Instant::now() > deadline {
            return Err(format!("{acks} of {count} PUBACKs after the time limit"));
        }
        let window = window.max(1);
        while in_flight < window && seq < count {
            if outstanding[usize::from(next_id)] {
                break;
            }
            body.clear();
            payloads.write(seq, &mut body);
            mqtt::put_publish(&mut batch, MQTT_TOPIC, Some(next_id), &body)?;
            outstanding[usize::from(next_id)] = true;
            in_flight += 1;
            seq += 1;
            next_id = next_id.checked_add(1).unwrap_or(1);
        }
        if !batch.is_empty() {
            publisher.send_encoded(batch.split())?;
        }
        // Wait for one PUBACK, then take every one already read.
        let mut packet = Some(publisher.read()?);
        while let Some(p) = packet {
            match p {
                Packet::PubAck(id) if outstanding[usize::from(id)] => {
                    outstanding[usize::from(id)] = false;
                    in_flight -= 1;
                    acks += 1;
                }
                other => return Err(format!("publisher: unexpected {other:?}")),
            }
            packet = publisher.next()?;
        }
    }
    Ok(())
}

/// Reads `count` deliveries on the MQTT topic, checking each (QoS, order, content) and, at
/// QoS 1, acknowledging everything read at once in one write. Returns when the last came.
fn mqtt_subscriber(
    mut sub: mqtt::Client,
    payloads: &Payloads,
    qos: QoS,
    count: u64,
    received: &AtomicU64,
    deadline: Instant,
) -> Result<Instant, String> {
    let mut next = 0u64;
    let mut acks = BytesMut::new();
    while next < count {
        if Instant::now() > deadline {
            return Err(format!(
                "{} messages missing after the time limit",
                count - next
            ));
        }
        let mut packet = Some(
            sub.read()
                .map_err(|e| format!("subscriber, {} messages missing: {e}", count - next))?,
        );
        while let Some(p) = packet {
            let Packet::Publish(publish) = p else {
                return Err(format!("subscriber: unexpected {p:?}"));
            };
            if next == count {
                return Err(format!("message {next} was not published"));
            }
            if publish.topic != MQTT_TOPIC || publish.qos != qos || publish.dup || publish.retain {
                return Err(format!(
                    "message {next}: topic {:?}, {:?}, dup {}, retain {}",
                    publish.topic, publish.qos, publish.dup, publish.retain
                ));
            }
            payloads
                .check(next, &publish.payload)
                .map_err(|e| e.to_string())?;
            next += 1;
            if let Some(id) = publish.packet_id {
                mqtt_codec::encode(&Packet::PubAck(id), &mut acks)
                    .map_err(|e| format!("encode: {e}"))?;
            }
            packet = sub.next()?;
        }
        if !acks.is_empty() {
            sub.send_encoded(acks.split())?;
        }
        received.store(next, Ordering::Release);
    }
    Ok(Instant::now())
}

fn run_idle(env: &Env<'_>, wanted: usize) -> Result<Outcome, String> {
    // Descriptors besides the connections: listeners, poller, logs, pipes.
    const SPARE_FILES: u64 = 64;
    let own = sys::open_files_limit(None)?.0;
    let theirs = sys::open_files_limit(Some(env.server.pid))?.0;
    let room = usize::try_from(own.min(theirs).saturating_sub(SPARE_FILES)).unwrap_or(usize::MAX);
    // Within 10 % of the goal, hold as many as the open-files limits allow (the table shows
    // the number held); further off, the figures would describe another scenario.
    if room < wanted - wanted / 10 {
        return Ok(Outcome::Skipped(format!(
            "needs {} open files; RLIMIT_NOFILE allows the load generator {own} and the server {theirs}",
            wanted as u64 + SPARE_FILES
        )));
    }
    let conns = wanted.min(room);
    let target = env.target(Wire::Ws)?;
    let pid = env.server.pid;
    let rss0 = sys::rss_bytes(pid)?;
    let server_cpu0 = env.server_cpu()?;
    let client_cpu0 = sys::cpu_time(None)?;
    let t0 = Instant::now();
    let mut all = open_many(&target, conns, 4, env.timeout, &|_, conn| {
        conn.shrink();
        Ok(())
    })?;
    let established = t0.elapsed();
    let server_cpu = env.server_cpu()?.saturating_sub(server_cpu0);
    let client_cpu = sys::cpu_time(None)?.saturating_sub(client_cpu0);
    // Let the server settle (Go returns memory lazily); short for scaled-down trial runs.
    std::thread::sleep(if env.scale < 1.0 {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(2)
    });
    let rss1 = sys::rss_bytes(pid)?;
    // Every connection must still be served.
    for conn in &mut all {
        conn.send(Bytes::from_static(b"PING\r\n"))?;
    }
    for (i, conn) in all.iter_mut().enumerate() {
        loop {
            match conn.read_op().map_err(|e| format!("connection {i}: {e}"))? {
                Op::Pong => break,
                Op::Err(e) => return Err(format!("connection {i}: -ERR {e}")),
                _ => {}
            }
        }
    }
    drop(all);
    let mut figures = vec![
        fig("connections held", conns as f64, Better::Neither, Unit::Num),
        rate(
            "set-up connections/s",
            per_second(conns as u64, established),
        ),
        cost(
            "server KiB/connection",
            rss1.saturating_sub(rss0) as f64 / 1024.0 / conns as f64,
        ),
        cost(
            "server CPU µs/connection",
            server_cpu.as_secs_f64() * 1e6 / conns as f64,
        ),
    ];
    figures.extend(cpu_figures(server_cpu, client_cpu, established));
    Ok(Outcome::Measured(figures))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::server;

    /// The servers a test can reach: natsws built next to this test (`cargo test --workspace`
    /// builds it) and the reference nats-server. In CI both must be there.
    fn servers() -> Vec<std::path::PathBuf> {
        let exe = std::env::current_exe().unwrap();
        let natsws = exe
            .parent()
            .and_then(|deps| deps.parent())
            .map(|d| d.join("natsws"));
        let found: Vec<_> = [natsws, Some("/usr/sbin/nats-server".into())]
            .into_iter()
            .flatten()
            .filter(|p| p.is_file())
            .collect();
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            assert_eq!(found.len(), 2, "CI needs natsws and nats-server: {found:?}");
        }
        found
    }

    /// Every scenario, with small counts, against each server (the leaf scenarios with each
    /// server as the hub too): the client side, the checks and the figures work end to end.
    /// (Not a measurement: nothing here is timed.)
    #[test]
    fn every_scenario_runs_small_against_real_servers() {
        let work = std::env::temp_dir().join(format!("loadgen-test-{}", std::process::id()));
        let pki = server::make_pki(&work.join("pki")).unwrap();
        let mut runs = 0;
        let servers = servers();
        let runs_of = |scenario: &Scenario| -> Vec<(&Path, &Path)> {
            let hubs: Vec<&Path> = if scenario.leaf_edges().is_some() {
                servers.iter().map(|p| p.as_path()).collect()
            } else {
                vec![Path::new(server::HUB)]
            };
            servers
                .iter()
                .flat_map(|program| hubs.iter().map(move |hub| (program.as_path(), *hub)))
                .filter(|(program, _)| {
                    scenario.natsws_only().is_none() || !server::is_nats_server(program)
                })
                .collect()
        };
        for scenario in ALL {
            for (program, hub_program) in runs_of(scenario) {
                let tls = scenario.needs_tls().then_some(&pki);
                let dir = work.join(format!("{}-{runs}", scenario.name));
                let server::Run {
                    server,
                    hub,
                    more_edges,
                } = server::start_run(
                    program,
                    hub_program,
                    &dir,
                    tls,
                    scenario.leaf_edges(),
                    scenario.is_mqtt(),
                )
                .unwrap();
                let env = Env {
                    server: &server,
                    more_edges: &more_edges,
                    hub: hub.as_ref(),
                    tls: tls.map(|p| p.client.clone()),
                    scale: 0.005,
                    timeout: Duration::from_secs(60),
                    stall: Duration::from_secs(10),
                };
                let outcome = run(scenario, &env).unwrap_or_else(|e| {
                    panic!(
                        "{} on {} (hub {}): {e}",
                        scenario.name,
                        program.display(),
                        hub_program.display()
                    )
                });
                let Outcome::Measured(figures) = outcome else {
                    panic!(
                        "{} skipped on {}: {outcome:?}",
                        scenario.name,
                        program.display()
                    );
                };
                let value =
                    |label: &str| figures.iter().find(|f| f.label == label).map(|f| f.value);
                match scenario.kind {
                    Kind::PubSub(PubSub { json, .. }) => {
                        assert!(value("delivered msgs/s").unwrap() > 0.0);
                        if json {
                            let ratio = value("sub wire/payload").unwrap();
                            assert!(ratio > 0.0 && ratio < 1.0, "{ratio}");
                        }
                    }
                    Kind::ReqRep { .. } => {
                        let (p50, p999) = (
                            value("latency p50 µs").unwrap(),
                            value("latency p99.9 µs").unwrap(),
                        );
                        assert!(p50 > 0.0 && p50 <= p999, "{p50} {p999}");
                    }
                    Kind::Idle { .. } => {
                        assert!(value("set-up connections/s").unwrap() > 0.0);
                    }
                    Kind::Mqtt { .. } => {
                        assert!(value("delivered msgs/s").unwrap() > 0.0);
                        assert!(value("publish msgs/s").unwrap() > 0.0);
                        // Clock ticks: a run this small may take none.
                        assert!(value("server CPU ns/msg").unwrap() >= 0.0);
                    }
                }
                runs += 1;
            }
        }
        let _ = std::fs::remove_dir_all(&work);
        assert!(runs > 0, "no server to run against");
    }
}
