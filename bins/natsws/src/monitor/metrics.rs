//! `/metrics`: the server's figures in the Prometheus text exposition format (version 0.0.4,
//! <https://prometheus.io/docs/instrumenting/exposition_formats/>), a natsws extension that
//! nats-server leaves to a separate exporter.
//!
//! Besides the broker's counters it shows what only the event loop sees, kept in [`Ops`]: the
//! WebSocket upgrades refused (by HTTP status), authentication failures, closes by reason, the
//! transport of each connection (TLS, permessage-deflate, and for the console its `Origin`,
//! `User-Agent` and `X-Forwarded-For`), and the loop's tick durations as a histogram.
//!
//! Connections are labelled `kind` (what speaks: `client`, `leaf`, `mqtt`, from the broker's
//! connection type) and `transport` (`tcp`, `tls`, `ws`, `wss`) and `compression` (`none`,
//! `deflate`): a new kind of connection appears under its own `kind` without new series names.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use broker::{Broker, ClientId, CloseReason, ConnectionType};

use super::{MonitorCtx, Response};

/// The content type of the text exposition format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Longest `Origin`, `User-Agent` or `X-Forwarded-For` value kept per connection; the rest is
/// cut (at a character boundary) so that a peer cannot make the server hold more.
pub(crate) const MAX_HEADER_VALUE_BYTES: usize = 256;

/// What the event loop knows about a connection beyond the broker: kept for WebSocket clients
/// and TLS NATS clients (a plain TCP client has none), dropped when the connection is removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ConnMeta {
    /// The transport runs over TLS.
    pub(crate) tls: bool,
    /// permessage-deflate was agreed.
    pub(crate) compression: bool,
    /// The upgrade request's `Origin`.
    pub(crate) origin: Option<String>,
    /// The upgrade request's `User-Agent`.
    pub(crate) user_agent: Option<String>,
    /// Every `X-Forwarded-For` value of the upgrade request, in order, joined by `, `: the
    /// whole proxy chain (the broker keeps only its first address).
    pub(crate) forwarded_for: Option<String>,
}

impl ConnMeta {
    /// What a WebSocket upgrade request `head` (its bytes up to and including the empty line)
    /// tells about the connection.
    pub(crate) fn websocket(head: &[u8], tls: bool, compression: bool) -> Self {
        let mut meta = Self {
            tls,
            compression,
            ..Self::default()
        };
        let mut few = [httparse::EMPTY_HEADER; 64];
        let mut many;
        let mut req = httparse::Request::new(&mut few);
        let mut parsed = req.parse(head);
        if matches!(parsed, Err(httparse::Error::TooManyHeaders)) {
            // The head was bounded by the handshake's limits: room for as many lines as it
            // can hold.
            many = vec![httparse::EMPTY_HEADER; head.len() / 3 + 1];
            req = httparse::Request::new(&mut many);
            parsed = req.parse(head);
        }
        if !matches!(parsed, Ok(httparse::Status::Complete(_))) {
            return meta;
        }
        for h in req.headers.iter() {
            let slot = if h.name.eq_ignore_ascii_case("origin") {
                &mut meta.origin
            } else if h.name.eq_ignore_ascii_case("user-agent") {
                &mut meta.user_agent
            } else if h.name.eq_ignore_ascii_case("x-forwarded-for") {
                &mut meta.forwarded_for
            } else {
                continue;
            };
            let value = String::from_utf8_lossy(h.value);
            let value = value.trim();
            match slot {
                Some(chain) if h.name.eq_ignore_ascii_case("x-forwarded-for") => {
                    chain.push_str(", ");
                    chain.push_str(value);
                }
                Some(_) => {}
                None => *slot = Some(value.to_owned()),
            }
            if let Some(v) = slot {
                truncate(v, MAX_HEADER_VALUE_BYTES);
            }
        }
        meta
    }
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
}

/// The upper bounds of the tick histogram's buckets, in nanoseconds, and as the `le` label.
const TICK_BUCKETS: [(u64, &str); 16] = [
    (10_000, "1e-05"),
    (25_000, "2.5e-05"),
    (50_000, "5e-05"),
    (100_000, "0.0001"),
    (250_000, "0.00025"),
    (500_000, "0.0005"),
    (1_000_000, "0.001"),
    (2_500_000, "0.0025"),
    (5_000_000, "0.005"),
    (10_000_000, "0.01"),
    (25_000_000, "0.025"),
    (50_000_000, "0.05"),
    (100_000_000, "0.1"),
    (250_000_000, "0.25"),
    (500_000_000, "0.5"),
    (1_000_000_000, "1"),
];

/// How long the loop's ticks took (from the end of one `poll` to the start of the next): fixed
/// buckets, no allocation per observation.
#[derive(Debug, Clone, Default)]
pub(crate) struct TickHistogram {
    /// Observations per bucket (not cumulative); the last one is above every bound.
    counts: [u64; TICK_BUCKETS.len() + 1],
    sum: Duration,
}

impl TickHistogram {
    /// Records one tick.
    pub(crate) fn observe(&mut self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let idx = TICK_BUCKETS
            .iter()
            .position(|(bound, _)| nanos <= *bound)
            .unwrap_or(TICK_BUCKETS.len());
        if let Some(n) = self.counts.get_mut(idx) {
            *n += 1;
        }
        self.sum = self.sum.saturating_add(took);
    }

    /// Ticks recorded.
    pub(crate) fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// What the event loop counts for monitoring, besides the broker's counters.
#[derive(Debug, Default)]
pub(crate) struct Ops {
    pub(crate) tick: TickHistogram,
    /// WebSocket upgrades refused, by the status of the refusal (a handful of 4xx codes).
    handshake_refusals: BTreeMap<u16, u64>,
    /// CONNECTs whose credentials were refused.
    auth_failures: u64,
    /// Connections closed, by reason (one entry per [`CloseReason`] at most).
    closed: BTreeMap<&'static str, u64>,
    /// One entry per open connection that has one (see [`ConnMeta`]).
    conns: HashMap<ClientId, ConnMeta>,
}

impl Ops {
    /// A WebSocket upgrade was refused with `status`.
    pub(crate) fn handshake_refused(&mut self, status: u16) {
        *self.handshake_refusals.entry(status).or_insert(0) += 1;
    }

    /// A client's credentials were refused.
    pub(crate) fn auth_failed(&mut self) {
        self.auth_failures += 1;
    }

    /// The broker closed a client.
    pub(crate) fn closed(&mut self, reason: CloseReason) {
        *self.closed.entry(reason.as_str()).or_insert(0) += 1;
    }

    /// A client's connection began with `meta`.
    pub(crate) fn conn_opened(&mut self, client: ClientId, meta: ConnMeta) {
        self.conns.insert(client, meta);
    }

    /// A NATS client started TLS.
    pub(crate) fn conn_tls(&mut self, client: ClientId) {
        self.conns.entry(client).or_default().tls = true;
    }

    /// A client's connection was removed.
    pub(crate) fn conn_removed(&mut self, client: ClientId) {
        self.conns.remove(&client);
    }

    /// What is known of a client's connection beyond the broker.
    pub(crate) fn conn(&self, client: ClientId) -> Option<&ConnMeta> {
        self.conns.get(&client)
    }

    /// Connections with their own entry (bounded by the open connections).
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.conns.len()
    }
}

/// The `kind` and `transport` labels of a connection.
pub(crate) fn kind_and_transport(
    conn_type: ConnectionType,
    tls: bool,
) -> (&'static str, &'static str) {
    let (kind, websocket) = match conn_type {
        ConnectionType::Standard => ("client", false),
        ConnectionType::WebSocket => ("client", true),
        ConnectionType::Leaf => ("leaf", false),
        ConnectionType::LeafWebSocket => ("leaf", true),
        ConnectionType::Mqtt => ("mqtt", false),
        ConnectionType::MqttWebSocket => ("mqtt", true),
    };
    let transport = match (websocket, tls) {
        (false, false) => "tcp",
        (false, true) => "tls",
        (true, false) => "ws",
        (true, true) => "wss",
    };
    (kind, transport)
}

/// The text of a series family being written.
struct Text {
    out: String,
}

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (idx, (k, v)) in labels.iter().enumerate() {
                if idx > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// A family of one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// A label value as the exposition format writes it: `\`, `"` and line feed escaped.
fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Seconds as a float sample value.
fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Process figures, read where the endpoint is answered (`/proc/self`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Process {
    pub(crate) rss_bytes: u64,
    pub(crate) virtual_bytes: u64,
    pub(crate) cpu: Duration,
    pub(crate) open_fds: u64,
    pub(crate) max_fds: u64,
}

impl Process {
    /// This process now.
    pub(crate) fn read(rss_bytes: u64) -> Self {
        Self {
            rss_bytes,
            virtual_bytes: crate::procstat::virtual_bytes(),
            cpu: crate::procstat::cpu_time(),
            open_fds: crate::procstat::open_fds(),
            max_fds: crate::procstat::max_fds(),
        }
    }
}

/// The `/metrics` response.
pub(crate) fn metrics(broker: &Broker, ctx: &MonitorCtx<'_>, process: &Process) -> Response {
    let mut t = Text {
        out: String::with_capacity(8 * 1024),
    };
    let cfg = broker.config();
    let stats = broker.stats();
    let ops = ctx.ops;

    t.family(
        "natsws_info",
        "gauge",
        "Always 1; the labels name the server (version: the NATS server version it speaks as).",
    );
    let server_name = if cfg.server_name.is_empty() {
        &cfg.server_id
    } else {
        &cfg.server_name
    };
    t.sample(
        "natsws_info",
        &[
            ("version", &cfg.version),
            ("natsws_version", crate::VERSION),
            ("server_id", &cfg.server_id),
            ("server_name", server_name),
        ],
        1,
    );
    t.single(
        "natsws_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        secs(ctx.now.saturating_duration_since(ctx.start)),
    );

    // Connections by kind, transport and compression. The client series always appear, so
    // that a dashboard sees zeros rather than no data.
    let mut by_transport: BTreeMap<(&str, &str, &str), u64> = BTreeMap::new();
    for (transport, compression) in [
        ("tcp", "none"),
        ("tls", "none"),
        ("ws", "none"),
        ("ws", "deflate"),
        ("wss", "none"),
        ("wss", "deflate"),
    ] {
        by_transport.insert(("client", transport, compression), 0);
    }
    let mut pending_bytes: u64 = 0;
    let now = ctx.now;
    for client in broker.clients() {
        if !broker.is_open(client) {
            continue;
        }
        let Some(info) = broker.client_summary(client, now) else {
            continue;
        };
        let meta = ops.conn(client);
        let (kind, transport) = kind_and_transport(info.conn_type, meta.is_some_and(|m| m.tls));
        let compression = if meta.is_some_and(|m| m.compression) {
            "deflate"
        } else {
            "none"
        };
        *by_transport
            .entry((kind, transport, compression))
            .or_insert(0) += 1;
        pending_bytes =
            pending_bytes.saturating_add(u64::try_from(info.pending_bytes).unwrap_or(u64::MAX));
    }
    t.family(
        "natsws_connections",
        "gauge",
        "Open connections by kind (client, leaf, mqtt), transport (tcp, tls, ws, wss) and WebSocket compression (none, deflate).",
    );
    for ((kind, transport, compression), n) in &by_transport {
        t.sample(
            "natsws_connections",
            &[
                ("kind", kind),
                ("transport", transport),
                ("compression", compression),
            ],
            n,
        );
    }
    t.single(
        "natsws_connections_opened_total",
        "counter",
        "Client connections accepted since start (including those refused at max_connections).",
        stats.total_connections,
    );
    t.family(
        "natsws_connections_closed_total",
        "counter",
        "Client connections closed, by reason (the /connz reason text).",
    );
    for (reason, n) in &ops.closed {
        t.sample("natsws_connections_closed_total", &[("reason", reason)], n);
    }
    t.single(
        "natsws_pending_bytes",
        "gauge",
        "Bytes owed to open clients and not yet written.",
        pending_bytes,
    );

    t.family(
        "natsws_messages_total",
        "counter",
        "Messages received from clients (in) and delivered to them (out, one per delivery).",
    );
    t.sample(
        "natsws_messages_total",
        &[("direction", "in")],
        stats.in_msgs,
    );
    t.sample(
        "natsws_messages_total",
        &[("direction", "out")],
        stats.out_msgs,
    );
    t.family(
        "natsws_payload_bytes_total",
        "counter",
        "Message payload bytes received (in) and delivered (out).",
    );
    t.sample(
        "natsws_payload_bytes_total",
        &[("direction", "in")],
        stats.in_bytes,
    );
    t.sample(
        "natsws_payload_bytes_total",
        &[("direction", "out")],
        stats.out_bytes,
    );
    t.single(
        "natsws_slow_consumers_total",
        "counter",
        "Clients closed as slow consumers.",
        stats.slow_consumers,
    );
    t.family(
        "natsws_websocket_handshake_refusals_total",
        "counter",
        "WebSocket upgrade requests refused, by HTTP status.",
    );
    for (status, n) in &ops.handshake_refusals {
        t.sample(
            "natsws_websocket_handshake_refusals_total",
            &[("status", &status.to_string())],
            n,
        );
    }
    t.single(
        "natsws_auth_failures_total",
        "counter",
        "CONNECTs whose credentials were refused.",
        ops.auth_failures,
    );
    t.single(
        "natsws_subscriptions",
        "gauge",
        "Subscriptions now.",
        stats.subscriptions,
    );
    let sublist = broker.sublist_stats();
    t.single(
        "natsws_sublist_matches_total",
        "counter",
        "Subject matches performed by the subject index.",
        sublist.num_matches,
    );
    t.single(
        "natsws_sublist_cache_hit_ratio",
        "gauge",
        "Subject index cache hits divided by matches.",
        sublist.cache_hit_rate,
    );

    let accounts = broker.accounts();
    t.family(
        "natsws_account_connections",
        "gauge",
        "Open client connections bound to the account.",
    );
    for a in &accounts {
        t.sample(
            "natsws_account_connections",
            &[("account", &a.name)],
            a.connections,
        );
    }
    t.family(
        "natsws_account_subscriptions",
        "gauge",
        "Subscriptions in the account.",
    );
    for a in &accounts {
        t.sample(
            "natsws_account_subscriptions",
            &[("account", &a.name)],
            a.sublist.num_subscriptions,
        );
    }
    t.family(
        "natsws_account_messages_received_total",
        "counter",
        "Messages published in the account.",
    );
    for a in &accounts {
        t.sample(
            "natsws_account_messages_received_total",
            &[("account", &a.name)],
            a.in_msgs,
        );
    }

    t.family(
        "natsws_http_requests_total",
        "counter",
        "Monitoring requests served, by endpoint.",
    );
    for (path, n) in ctx.http_req_stats {
        t.sample("natsws_http_requests_total", &[("path", path)], n);
    }

    let hist = &ops.tick;
    t.family(
        "natsws_loop_tick_seconds",
        "histogram",
        "Time the event loop spent on one tick (from one poll returning to the next poll).",
    );
    let mut cumulative = 0u64;
    for ((_, le), n) in TICK_BUCKETS.iter().zip(hist.counts.iter()) {
        cumulative += n;
        t.sample("natsws_loop_tick_seconds_bucket", &[("le", le)], cumulative);
    }
    t.sample(
        "natsws_loop_tick_seconds_bucket",
        &[("le", "+Inf")],
        hist.count(),
    );
    t.sample("natsws_loop_tick_seconds_sum", &[], secs(hist.sum));
    t.sample("natsws_loop_tick_seconds_count", &[], hist.count());

    t.single(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        process.rss_bytes,
    );
    t.single(
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
        process.virtual_bytes,
    );
    t.single(
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time spent in seconds.",
        secs(process.cpu),
    );
    t.single(
        "process_open_fds",
        "gauge",
        "Open file descriptors.",
        process.open_fds,
    );
    t.single(
        "process_max_fds",
        "gauge",
        "Maximum number of open file descriptors (0: unknown).",
        process.max_fds,
    );
    let start = ctx
        .clock
        .system(ctx.start)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    t.single(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch in seconds.",
        secs(start),
    );
    Response {
        status: 200,
        content_type: CONTENT_TYPE,
        body: t.out.into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets() {
        let mut h = TickHistogram::default();
        h.observe(Duration::from_nanos(10_000));
        h.observe(Duration::from_nanos(10_001));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(5));
        assert_eq!(h.count(), 4);
        assert_eq!(h.counts[0], 1, "a bound is inclusive (le)");
        assert_eq!(h.counts[1], 1);
        assert_eq!(h.counts[8], 1, "3 ms falls in le=0.005");
        assert_eq!(h.counts[TICK_BUCKETS.len()], 1, "5 s is above every bound");
        assert_eq!(
            h.sum,
            Duration::from_nanos(20_001) + Duration::from_millis(3) + Duration::from_secs(5)
        );
        // The `le` labels are the bounds.
        for (nanos, le) in TICK_BUCKETS {
            let le: f64 = le.parse().unwrap();
            assert!((le * 1e9 - nanos as f64).abs() < 1e-3, "{le} vs {nanos}");
        }
    }

    #[test]
    fn label_escaping() {
        let mut out = String::new();
        escape_label(&mut out, "a\\b\"c\nd€");
        assert_eq!(out, "a\\\\b\\\"c\\nd€");
    }

    #[test]
    fn upgrade_head_meta() {
        let head = b"GET / HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\nUser-Agent: Mozilla/5.0 test\r\nX-Forwarded-For: 203.0.113.7, 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\n\r\n";
        let meta = ConnMeta::websocket(head, true, true);
        assert_eq!(meta.origin.as_deref(), Some("https://app.example"));
        assert_eq!(meta.user_agent.as_deref(), Some("Mozilla/5.0 test"));
        assert_eq!(
            meta.forwarded_for.as_deref(),
            Some("203.0.113.7, 10.0.0.1, 10.0.0.2")
        );
        assert!(meta.tls && meta.compression);
        // Values are bounded, whatever the peer sends (and however many lines).
        let mut long = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for _ in 0..40 {
            long.extend_from_slice(format!("X-Forwarded-For: {}\r\n", "é".repeat(100)).as_bytes());
        }
        long.extend_from_slice(format!("User-Agent: {}\r\n\r\n", "u".repeat(10_000)).as_bytes());
        let meta = ConnMeta::websocket(&long, false, false);
        assert!(meta.forwarded_for.unwrap().len() <= MAX_HEADER_VALUE_BYTES);
        assert_eq!(meta.user_agent.unwrap().len(), MAX_HEADER_VALUE_BYTES);
        assert_eq!(
            ConnMeta::websocket(b"garbage", false, false),
            ConnMeta::default()
        );
    }

    #[test]
    fn labels_of_kinds() {
        assert_eq!(
            kind_and_transport(ConnectionType::Standard, false),
            ("client", "tcp")
        );
        assert_eq!(
            kind_and_transport(ConnectionType::Standard, true),
            ("client", "tls")
        );
        assert_eq!(
            kind_and_transport(ConnectionType::WebSocket, true),
            ("client", "wss")
        );
        assert_eq!(
            kind_and_transport(ConnectionType::LeafWebSocket, false),
            ("leaf", "ws")
        );
        assert_eq!(
            kind_and_transport(ConnectionType::Mqtt, false),
            ("mqtt", "tcp")
        );
    }

    /// Leaf and MQTT connections (served by later work) land under their own `kind` with the
    /// transport their connection type and TLS give, beside the client series.
    #[test]
    fn every_connection_type_has_its_series() {
        let settings = crate::settings::from_options(&natsconf::options::Options::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let now = std::time::Instant::now();
        let mut broker = Broker::new(settings.broker.clone(), now);
        let addr = "127.0.0.1:5000".parse().unwrap();
        let mut ops = Ops::default();
        for (conn_type, meta) in [
            (ConnectionType::Standard, None),
            (
                ConnectionType::WebSocket,
                Some(ConnMeta {
                    tls: true,
                    compression: true,
                    ..ConnMeta::default()
                }),
            ),
            (ConnectionType::Leaf, None),
            (ConnectionType::LeafWebSocket, None),
            (
                ConnectionType::MqttWebSocket,
                Some(ConnMeta {
                    tls: true,
                    ..ConnMeta::default()
                }),
            ),
        ] {
            let client = broker.register_client(now, broker::ClientParams::new(conn_type, addr));
            if let Some(meta) = meta {
                ops.conn_opened(client, meta);
            }
        }
        ops.tick.observe(Duration::from_micros(30));
        let bound = super::super::Bound::default();
        let stats = BTreeMap::new();
        let ctx = MonitorCtx {
            settings: &settings,
            bound: &bound,
            clock: super::super::Clock::now(),
            now,
            start: now,
            config_load_time: now,
            http_req_stats: &stats,
            healthy: true,
            rss_bytes: 0,
            cpu_percent: 0.0,
            ops: &ops,
        };
        let resp = metrics(&broker, &ctx, &Process::default());
        let text = String::from_utf8(resp.body).unwrap();
        for line in [
            "natsws_connections{kind=\"client\",transport=\"tcp\",compression=\"none\"} 1",
            "natsws_connections{kind=\"client\",transport=\"wss\",compression=\"deflate\"} 1",
            "natsws_connections{kind=\"client\",transport=\"ws\",compression=\"none\"} 0",
            "natsws_connections{kind=\"leaf\",transport=\"tcp\",compression=\"none\"} 1",
            "natsws_connections{kind=\"leaf\",transport=\"ws\",compression=\"none\"} 1",
            "natsws_connections{kind=\"mqtt\",transport=\"wss\",compression=\"none\"} 1",
            "natsws_loop_tick_seconds_bucket{le=\"2.5e-05\"} 0",
            "natsws_loop_tick_seconds_bucket{le=\"5e-05\"} 1",
            "natsws_loop_tick_seconds_bucket{le=\"+Inf\"} 1",
            "natsws_loop_tick_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert_eq!(resp.content_type, CONTENT_TYPE);
    }

    #[test]
    fn ops_entries_follow_connections() {
        let mut ops = Ops::default();
        let mut broker = Broker::new(broker::Config::default(), std::time::Instant::now());
        let addr = "127.0.0.1:5000".parse().unwrap();
        let now = std::time::Instant::now();
        let a = broker.register_client(
            now,
            broker::ClientParams::new(ConnectionType::WebSocket, addr),
        );
        ops.conn_opened(a, ConnMeta::default());
        ops.conn_tls(a);
        assert!(ops.conn(a).unwrap().tls);
        ops.conn_removed(a);
        assert_eq!(ops.tracked(), 0);
        ops.handshake_refused(403);
        ops.handshake_refused(403);
        ops.auth_failed();
        ops.closed(CloseReason::AuthenticationFailure);
        assert_eq!(ops.handshake_refusals.get(&403), Some(&2));
        assert_eq!(ops.closed.get("Authentication Failure"), Some(&1));
    }
}
