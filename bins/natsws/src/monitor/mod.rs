//! The HTTP monitoring endpoints (nats-server's `server/monitor.go`, `HandleVarz` and its
//! siblings): `/varz`, `/connz`, `/subsz`, `/healthz`, `/routez`, `/leafz`, `/gatewayz`,
//! `/accountz`, `/jsz`, and the index page.
//!
//! Bodies are built with serde and printed the way Go's `encoding/json` with two-space
//! indentation prints them (`<`, `>`, `&` escaped), with no trailing newline.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use broker::{Broker, SubInfo};
use serde::Serialize;

use crate::monitor_request::Endpoint;
use crate::settings::Settings;

mod accounts;
mod connz;
mod console;
mod leafz;
mod metrics;
mod subsz;

use accounts::accountz;
use connz::connz_query;
pub(crate) use connz::{ConnzPage, ConnzQuery};
pub(crate) use console::Asset;
use leafz::{LeafVarz, leaf_varz, leafz};
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use metrics::CONTENT_TYPE as METRICS_CONTENT_TYPE;
pub(crate) use metrics::{ConnMeta, Ops};
use subsz::{SubDetail, SubszReply, SubszStats, sub_detail, subsz, subsz_stats};
pub(crate) use subsz::{SubszPage, SubszQuery};

/// An HTTP response to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
}

impl Response {
    fn json(body: String) -> Self {
        Self {
            status: 200,
            content_type: "application/json",
            body: go_escape(&body).into_bytes(),
        }
    }

    pub(crate) fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec(),
        }
    }

    /// Serialises the head and body.
    pub(crate) fn to_bytes(&self, keep_alive: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nDate: {}\r\nContent-Length: {}\r\n",
            self.status,
            reason_phrase(self.status),
            self.content_type,
            http_date(SystemTime::now()),
            self.body.len()
        );
        if self.content_type == "text/plain; charset=utf-8" {
            out.push_str("X-Content-Type-Options: nosniff\r\n");
        }
        out.push_str(console::security_headers(self.content_type));
        if !keep_alive {
            out.push_str("Connection: close\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// The standard reason phrase for a status code.
pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Go's encoding/json escapes `<`, `>`, `&`, U+2028 and U+2029; they can only occur inside
/// strings. Plain runs are copied whole: a `/connz` body can be tens of megabytes.
fn go_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    // 0xE2 leads the UTF-8 encodings of U+2028 and U+2029 (and of other characters, which are
    // copied as they are); every byte matched is a character boundary.
    while let Some(at) = rest
        .bytes()
        .position(|b| matches!(b, b'<' | b'>' | b'&' | 0xE2))
    {
        let (plain, tail) = rest.split_at(at);
        out.push_str(plain);
        let mut chars = tail.chars();
        match chars.next() {
            Some('<') => out.push_str("\\u003c"),
            Some('>') => out.push_str("\\u003e"),
            Some('&') => out.push_str("\\u0026"),
            Some('\u{2028}') => out.push_str("\\u2028"),
            Some('\u{2029}') => out.push_str("\\u2029"),
            Some(c) => out.push(c),
            None => {}
        }
        rest = chars.as_str();
    }
    out.push_str(rest);
    out
}

fn pretty<T: Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| "{}".to_owned())
}

/// Maps `Instant`s to wall-clock time through one pair taken at start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    pub(crate) base_instant: Instant,
    pub(crate) base_system: SystemTime,
}

impl Clock {
    pub(crate) fn now() -> Self {
        Self {
            base_instant: Instant::now(),
            base_system: SystemTime::now(),
        }
    }

    pub(crate) fn system(&self, t: Instant) -> SystemTime {
        if t >= self.base_instant {
            self.base_system + (t - self.base_instant)
        } else {
            self.base_system - (self.base_instant - t)
        }
    }

    pub(crate) fn rfc3339(&self, t: Instant) -> String {
        rfc3339(self.system(t))
    }
}

/// RFC 3339 with nanoseconds, trailing zeros trimmed (Go `time.RFC3339Nano`), UTC.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    gotext::format_rfc3339(
        i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        d.subsec_nanos(),
    )
}

/// The HTTP `Date` header value.
fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let mut out = Vec::with_capacity(29);
    ws_handshake::write_http_date(secs, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// nats-server's `uptime`/`idle` rendering.
pub(crate) fn uptime(d: Duration) -> String {
    let tsecs = d.as_secs();
    let tmins = tsecs / 60;
    let thrs = tmins / 60;
    let tdays = thrs / 24;
    let tyrs = tdays / 365;
    if tyrs > 0 {
        format!(
            "{tyrs}y{}d{}h{}m{}s",
            tdays % 365,
            thrs % 24,
            tmins % 60,
            tsecs % 60
        )
    } else if tdays > 0 {
        format!("{tdays}d{}h{}m{}s", thrs % 24, tmins % 60, tsecs % 60)
    } else if thrs > 0 {
        format!("{thrs}h{}m{}s", tmins % 60, tsecs % 60)
    } else if tmins > 0 {
        format!("{tmins}m{}s", tsecs % 60)
    } else {
        format!("{tsecs}s")
    }
}

/// RTT as nats-server shows it: truncated to microseconds between 1 µs and 1 ms.
fn rtt_string(rtt: Option<Duration>) -> String {
    match rtt {
        None => "0s".to_owned(),
        Some(d) if d > Duration::from_micros(1) && d < Duration::from_millis(1) => {
            gotext::format_std_duration(Duration::from_micros(
                u64::try_from(d.as_micros()).unwrap_or(0),
            ))
        }
        Some(d) => gotext::format_std_duration(d),
    }
}

/// Listener facts `/varz` and the ports file need.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bound {
    pub(crate) client_port: u16,
    pub(crate) ws_port: Option<u16>,
    pub(crate) http_port: Option<u16>,
    pub(crate) https_port: Option<u16>,
    pub(crate) leaf_port: Option<u16>,
}

/// What the endpoints read besides the broker.
#[derive(Debug)]
pub(crate) struct MonitorCtx<'a> {
    pub(crate) settings: &'a Settings,
    pub(crate) bound: &'a Bound,
    pub(crate) clock: Clock,
    pub(crate) now: Instant,
    pub(crate) start: Instant,
    pub(crate) config_load_time: Instant,
    pub(crate) http_req_stats: &'a BTreeMap<String, u64>,
    pub(crate) healthy: bool,
    pub(crate) rss_bytes: u64,
    pub(crate) cpu_percent: f64,
    /// What the event loop counts besides the broker (`/metrics`, `/natsws/connz`).
    pub(crate) ops: &'a Ops,
}

/// Splits `a=b&c=d` into decoded pairs.
pub(crate) fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let (Some(h), Some(l)) = (bytes.get(i + 1), bytes.get(i + 2))
            && let (Some(h), Some(l)) = ((*h as char).to_digit(16), (*l as char).to_digit(16))
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
            continue;
        }
        out.push(if b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_get<'q>(q: &'q [(String, String)], key: &str) -> Option<&'q str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn parse_go_bool(param: &str, v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "Error decoding boolean for '{param}': strconv.ParseBool: parsing \"{v}\": invalid syntax"
        )),
    }
}

fn query_bool(q: &[(String, String)], key: &str) -> Result<bool, String> {
    match query_get(q, key) {
        None | Some("") => Ok(false),
        Some(v) => parse_go_bool(key, v),
    }
}

fn query_int(q: &[(String, String)], key: &str) -> Result<i64, String> {
    match query_get(q, key) {
        None | Some("") => Ok(0),
        Some(v) => v.parse::<i64>().map_err(|_| {
            format!("Error decoding int for '{key}': strconv.Atoi: parsing \"{v}\": invalid syntax")
        }),
    }
}

/// What a request is answered with.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The response, complete.
    Ready(Response),
    /// A checked query whose reply may take long to make: the caller chooses its page when
    /// it likes ([`Deferred::choose`]), fills it and renders it.
    Deferred(Box<Deferred>),
}

/// A checked query whose reply is made later. It holds no more than the request held.
#[derive(Debug)]
pub(crate) enum Deferred {
    /// `/connz`.
    Connz(ConnzQuery),
    /// `/subsz?subs=1`.
    Subsz(SubszQuery),
}

impl Deferred {
    /// Starts the page at `now` (`keep_closed`: closed connections are listed at all).
    pub(crate) fn choose(
        self,
        broker: &Broker,
        clock: Clock,
        now: Instant,
        keep_closed: bool,
    ) -> Page {
        match self {
            Self::Connz(q) => Page::Connz(q.choose(broker, clock, now, keep_closed)),
            Self::Subsz(q) => Page::Subsz(q.choose(broker, clock, now)),
        }
    }
}

/// A page being made: filled from the broker a bounded amount at a time
/// ([`Page::take_subscriptions`]), then rendered anywhere ([`Page::render`]).
#[derive(Debug)]
pub(crate) enum Page {
    Connz(ConnzPage),
    Subsz(SubszPage),
}

impl Page {
    /// Takes about `budget` more subscriptions (or subscription slots) from the broker. True
    /// once the page is complete.
    pub(crate) fn take_subscriptions(&mut self, broker: &Broker, budget: usize) -> bool {
        match self {
            Self::Connz(p) => p.take_subscriptions(broker, budget),
            Self::Subsz(p) => p.take_subscriptions(broker, budget),
        }
    }

    /// Renders the reply.
    pub(crate) fn render(self) -> Response {
        match self {
            Self::Connz(p) => p.render(),
            Self::Subsz(p) => p.render(),
        }
    }
}

/// Answers one request for `endpoint` with the raw `query`, completely: [`answer`] without
/// the deferred rendering (the loop defers it; fuzzing and tests do not).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn handle(
    endpoint: Endpoint,
    query: &str,
    broker: &mut Broker,
    ctx: &MonitorCtx<'_>,
) -> Response {
    match answer(endpoint, query, broker, ctx) {
        Reply::Ready(resp) => resp,
        Reply::Deferred(d) => {
            let keep_closed = ctx.settings.max_closed_clients > 0;
            let mut page = d.choose(broker, ctx.clock, ctx.now, keep_closed);
            let _ = page.take_subscriptions(broker, usize::MAX);
            page.render()
        }
    }
}

/// Answers one request for `endpoint` with the raw `query`. A `/connz` or `/subsz?subs=1`
/// query comes back checked but not answered ([`Reply::Deferred`]).
pub(crate) fn answer(
    endpoint: Endpoint,
    query: &str,
    broker: &mut Broker,
    ctx: &MonitorCtx<'_>,
) -> Reply {
    let q = parse_query(query);
    let res = match endpoint {
        Endpoint::Index => Ok(index_page()),
        Endpoint::Varz => Ok(varz(broker, ctx)),
        Endpoint::Connz => {
            return match connz_query(&q) {
                Ok(query) => Reply::Deferred(Box::new(Deferred::Connz(query))),
                Err(resp) => Reply::Ready(resp),
            };
        }
        Endpoint::Subsz => match subsz(&q, broker) {
            Ok(SubszReply::Ready(resp)) => Ok(resp),
            Ok(SubszReply::Page(query)) => {
                return Reply::Deferred(Box::new(Deferred::Subsz(query)));
            }
            Err(resp) => Err(resp),
        },
        Endpoint::Healthz => Ok(healthz(ctx)),
        Endpoint::Routez => Ok(Response::json(pretty(&Routez {
            server_id: &broker.config().server_id,
            now: ctx.clock.rfc3339(ctx.now),
            num_routes: 0,
            routes: Vec::new(),
        }))),
        Endpoint::Leafz => leafz(&q, broker, ctx),
        Endpoint::Gatewayz => Ok(Response::json(pretty(&Gatewayz {
            server_id: &broker.config().server_id,
            now: ctx.clock.rfc3339(ctx.now),
            outbound_gateways: BTreeMap::new(),
            inbound_gateways: BTreeMap::new(),
        }))),
        Endpoint::Accountz => accountz(&q, broker, ctx),
        Endpoint::Jsz => Ok(Response::json(pretty(&Jsz {
            server_id: &broker.config().server_id,
            now: ctx.clock.rfc3339(ctx.now),
            disabled: true,
        }))),
        // natsws' own: not JSON (no `callback`), except the console's connections.
        Endpoint::Metrics => {
            let process = metrics::Process::read(ctx.rss_bytes);
            return Reply::Ready(metrics::metrics(broker, ctx, &process));
        }
        Endpoint::Console(asset) => return Reply::Ready(console::asset(asset, ctx)),
        Endpoint::NatswsConnz => console::connections(&q, broker, ctx),
    };
    Reply::Ready(match res {
        Ok(resp) => with_callback(resp, callback(&q)),
        Err(resp) => resp,
    })
}

/// The JSONP `callback` a successful reply is wrapped in, if the query names one.
fn callback(q: &[(String, String)]) -> Option<&str> {
    query_get(q, "callback").filter(|c| !c.is_empty())
}

/// Wraps a successful reply in the JSONP `callback`.
fn with_callback(mut resp: Response, callback: Option<&str>) -> Response {
    if resp.status == 200
        && let Some(cb) = callback
    {
        let mut body = format!("{cb}(").into_bytes();
        body.extend_from_slice(&resp.body);
        body.push(b')');
        resp.body = body;
        resp.content_type = "application/javascript";
    }
    resp
}

fn index_page() -> Response {
    let body = "<html lang=\"en\">\n<head><title>natsws monitoring</title></head>\n<body>\n<a href=\"varz\">General</a><br/>\n<a href=\"connz\">Connections</a><br/>\n<a href=\"routez\">Routes</a><br/>\n<a href=\"gatewayz\">Gateways</a><br/>\n<a href=\"leafz\">Leaf Nodes</a><br/>\n<a href=\"subsz\">Subscriptions</a><br/>\n<a href=\"accountz\">Accounts</a><br/>\n<a href=\"jsz\">JetStream</a><br/>\n<a href=\"healthz\">Health</a><br/>\n<a href=\"console\">Console</a><br/>\n<a href=\"metrics\">Metrics</a><br/>\n</body>\n</html>\n";
    Response {
        status: 200,
        content_type: "text/html; charset=utf-8",
        body: body.as_bytes().to_vec(),
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

#[derive(Serialize)]
struct Empty {}

/// A float printed as Go's encoding/json prints it: whole numbers without a fraction.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct GoFloat(f64);

impl Serialize for GoFloat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.fract() == 0.0 && v.abs() < 1e15 {
            #[expect(
                clippy::cast_possible_truncation,
                reason = "checked whole and small above"
            )]
            let whole = v as i64;
            s.serialize_i64(whole)
        } else {
            s.serialize_f64(v)
        }
    }
}

fn is_zero_go(v: &GoFloat) -> bool {
    v.0 == 0.0
}

#[derive(Serialize, Default)]
struct WsVarz {
    #[serde(skip_serializing_if = "String::is_empty")]
    host: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    port: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    advertise: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    no_auth_user: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    jwt_cookie: String,
    #[serde(skip_serializing_if = "is_zero_u64")]
    handshake_timeout: u64,
    #[serde(skip_serializing_if = "is_zero_go")]
    auth_timeout: GoFloat,
    #[serde(skip_serializing_if = "is_false")]
    no_tls: bool,
    #[serde(skip_serializing_if = "is_false")]
    tls_map: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tls_pinned_certs: Vec<String>,
    #[serde(skip_serializing_if = "is_false")]
    same_origin: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    allowed_origins: Vec<String>,
    #[serde(skip_serializing_if = "is_false")]
    compression: bool,
}

/// `/varz` `mqtt` (`server/monitor.go` `MQTTOptsVarz`), for the options natsws serves.
#[derive(Serialize, Default)]
struct MqttVarz {
    #[serde(skip_serializing_if = "String::is_empty")]
    host: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    port: i64,
    #[serde(skip_serializing_if = "is_zero_go")]
    tls_timeout: GoFloat,
}

#[derive(Serialize)]
struct Varz<'a> {
    server_id: &'a str,
    server_name: &'a str,
    version: &'a str,
    proto: u32,
    #[serde(skip_serializing_if = "str::is_empty")]
    git_commit: &'a str,
    go: &'a str,
    host: &'a str,
    port: u16,
    #[serde(skip_serializing_if = "is_false")]
    auth_required: bool,
    #[serde(skip_serializing_if = "is_false")]
    tls_required: bool,
    #[serde(skip_serializing_if = "is_false")]
    tls_verify: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    connect_urls: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ws_connect_urls: Vec<String>,
    max_connections: usize,
    #[serde(skip_serializing_if = "is_zero_u64")]
    max_subscriptions: u64,
    ping_interval: u64,
    ping_max: u32,
    http_host: &'a str,
    http_port: u16,
    http_base_path: &'a str,
    https_port: u16,
    auth_timeout: GoFloat,
    max_control_line: usize,
    max_payload: usize,
    max_pending: usize,
    cluster: Empty,
    gateway: Empty,
    leaf: LeafVarz,
    mqtt: MqttVarz,
    websocket: WsVarz,
    jetstream: Empty,
    tls_timeout: GoFloat,
    write_deadline: u64,
    start: String,
    now: String,
    uptime: String,
    mem: u64,
    cores: usize,
    gomaxprocs: usize,
    cpu: GoFloat,
    connections: usize,
    total_connections: u64,
    routes: u32,
    remotes: u32,
    leafnodes: u32,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    slow_consumers: u64,
    subscriptions: usize,
    http_req_stats: &'a BTreeMap<String, u64>,
    config_load_time: String,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn varz(broker: &Broker, ctx: &MonitorCtx<'_>) -> Response {
    let cfg = broker.config();
    let s = ctx.settings;
    let stats = broker.stats();
    let websocket = s
        .websocket
        .as_ref()
        .map_or_else(WsVarz::default, |ws| WsVarz {
            host: ws.listen.host.clone(),
            port: ctx.bound.ws_port.map_or(ws.listen.port, i64::from),
            advertise: ws.advertise.clone().unwrap_or_default(),
            no_auth_user: ws.no_auth_user.clone().unwrap_or_default(),
            jwt_cookie: ws.jwt_cookie.clone().unwrap_or_default(),
            handshake_timeout: nanos(ws.handshake_timeout),
            auth_timeout: GoFloat(ws.auth_timeout.map_or(0.0, |d| d.as_secs_f64())),
            no_tls: ws.no_tls,
            tls_map: false,
            tls_pinned_certs: Vec::new(),
            same_origin: ws.same_origin,
            allowed_origins: ws.allowed_origins.clone(),
            compression: ws.compression,
        });
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let server_name = if cfg.server_name.is_empty() {
        &cfg.server_id
    } else {
        &cfg.server_name
    };
    let http = s.http.as_ref().or(s.https.as_ref());
    let v = Varz {
        server_id: &cfg.server_id,
        server_name,
        version: &cfg.version,
        proto: 1,
        git_commit: &cfg.git_commit,
        go: &cfg.go,
        host: &cfg.client_listener.host,
        port: cfg.client_listener.port,
        auth_required: cfg.auth.auth_required(broker::ConnectionType::Standard),
        tls_required: cfg.client_listener.tls_required,
        tls_verify: cfg.client_listener.tls_verify,
        connect_urls: cfg.connect_urls.clone(),
        ws_connect_urls: cfg.ws_connect_urls.clone(),
        max_connections: cfg.limits.max_connections,
        max_subscriptions: u64::try_from(cfg.limits.max_subscriptions).unwrap_or(0),
        ping_interval: nanos(cfg.ping_interval),
        ping_max: cfg.ping_max,
        http_host: http.map_or("", |h| h.host.as_str()),
        http_port: ctx.bound.http_port.unwrap_or(0),
        http_base_path: &s.http_base_path,
        https_port: ctx.bound.https_port.unwrap_or(0),
        auth_timeout: GoFloat(cfg.auth_timeout.as_secs_f64()),
        max_control_line: cfg.limits.max_control_line,
        max_payload: cfg.limits.max_payload,
        max_pending: cfg.limits.max_pending,
        cluster: Empty {},
        gateway: Empty {},
        leaf: leaf_varz(ctx),
        mqtt: s
            .mqtt
            .as_ref()
            .map_or_else(MqttVarz::default, |m| MqttVarz {
                host: m.listen.host.clone(),
                port: m.listen.port.max(0),
                tls_timeout: GoFloat(m.tls_timeout.as_secs_f64()),
            }),
        websocket,
        jetstream: Empty {},
        tls_timeout: GoFloat(s.tls_timeout.as_secs_f64()),
        write_deadline: nanos(cfg.write_deadline),
        start: ctx.clock.rfc3339(ctx.start),
        now: ctx.clock.rfc3339(ctx.now),
        uptime: uptime(ctx.now.saturating_duration_since(ctx.start)),
        mem: ctx.rss_bytes,
        cores,
        gomaxprocs: 1,
        cpu: GoFloat(ctx.cpu_percent),
        connections: stats.connections,
        total_connections: stats.total_connections,
        routes: 0,
        remotes: 0,
        leafnodes: u32::try_from(broker.leafs().len()).unwrap_or(u32::MAX),
        in_msgs: stats.in_msgs,
        out_msgs: stats.out_msgs,
        in_bytes: stats.in_bytes,
        out_bytes: stats.out_bytes,
        slow_consumers: stats.slow_consumers,
        subscriptions: stats.subscriptions,
        http_req_stats: ctx.http_req_stats,
        config_load_time: ctx.clock.rfc3339(ctx.config_load_time),
    };
    Response::json(pretty(&v))
}

fn healthz(ctx: &MonitorCtx<'_>) -> Response {
    #[derive(Serialize)]
    struct Health<'a> {
        status: &'a str,
        #[serde(skip_serializing_if = "str::is_empty")]
        error: &'a str,
    }
    let (status, body) = if ctx.healthy {
        (
            200,
            Health {
                status: "ok",
                error: "",
            },
        )
    } else {
        (
            503,
            Health {
                status: "error",
                error: "server is shutting down or not ready",
            },
        )
    };
    Response {
        status,
        content_type: "application/json",
        body: serde_json::to_vec(&body).unwrap_or_default(),
    }
}

#[derive(Serialize)]
struct Routez<'a> {
    server_id: &'a str,
    now: String,
    num_routes: u32,
    routes: Vec<Empty>,
}

#[derive(Serialize)]
struct Gatewayz<'a> {
    server_id: &'a str,
    now: String,
    outbound_gateways: BTreeMap<String, Empty>,
    inbound_gateways: BTreeMap<String, Empty>,
}

#[derive(Serialize)]
struct Jsz<'a> {
    server_id: &'a str,
    now: String,
    disabled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtts() {
        assert_eq!(rtt_string(None), "0s");
        assert_eq!(rtt_string(Some(Duration::from_nanos(259_400))), "259µs");
        assert_eq!(
            rtt_string(Some(Duration::from_nanos(2_140_055))),
            "2.140055ms"
        );
    }

    #[test]
    fn uptimes() {
        let check = |s: u64, e: &str| assert_eq!(uptime(Duration::from_secs(s)), e);
        check(0, "0s");
        check(45, "45s");
        check(63, "1m3s");
        check(7205, "2h0m5s");
        check(3 * 86400 + 3600 + 120, "3d1h2m0s");
        check(
            365 * 86400 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5,
            "1y2d3h4m5s",
        );
    }

    #[test]
    fn times() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_795_469_672_020_916_635);
        assert_eq!(rfc3339(t), "2026-11-23T21:34:32.020916635Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(1500)),
            "1970-01-01T00:00:01.5Z"
        );
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn escaping_and_queries() {
        assert_eq!(go_escape("\"foo.>\""), "\"foo.\\u003e\"");
        assert_eq!(
            go_escape("a<b&c>\u{2028}\u{2029}€é"),
            "a\\u003cb\\u0026c\\u003e\\u2028\\u2029€é"
        );
        assert_eq!(
            parse_query("a=1&b=x%20y&c"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("c".into(), String::new())
            ]
        );
        assert_eq!(
            parse_go_bool("auth", "yes").unwrap_err(),
            "Error decoding boolean for 'auth': strconv.ParseBool: parsing \"yes\": invalid syntax"
        );
    }
}
