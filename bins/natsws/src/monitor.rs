//! The HTTP monitoring endpoints (nats-server's `server/monitor.go`, `HandleVarz` and its
//! siblings): `/varz`, `/connz`, `/subsz`, `/healthz`, `/routez`, `/leafz`, `/gatewayz`,
//! `/accountz`, `/jsz`, and the index page.
//!
//! Bodies are built with serde and printed the way Go's `encoding/json` with two-space
//! indentation prints them (`<`, `>`, `&` escaped), with no trailing newline.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use broker::{Broker, ClientInfo, SubInfo};
use serde::Serialize;

use crate::monitor_request::Endpoint;
use crate::settings::Settings;

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
    /// A `/connz` page still to fill with subscriptions and render, which may take long.
    Connz(Box<ConnzPage>),
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
        Reply::Connz(mut page) => {
            let _ = page.take_subscriptions(broker, usize::MAX);
            page.render()
        }
    }
}

/// Answers one request for `endpoint` with the raw `query`. A `/connz` page comes back
/// chosen but not rendered: the caller takes its subscriptions and renders it when it likes.
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
            return match connz_page(&q, broker, ctx) {
                Ok(page) => Reply::Connz(Box::new(page)),
                Err(resp) => Reply::Ready(resp),
            };
        }
        Endpoint::Subsz => subsz(&q, broker, ctx),
        Endpoint::Healthz => Ok(healthz(ctx)),
        Endpoint::Routez => Ok(Response::json(pretty(&Routez {
            server_id: &broker.config().server_id,
            now: ctx.clock.rfc3339(ctx.now),
            num_routes: 0,
            routes: Vec::new(),
        }))),
        Endpoint::Leafz => Ok(Response::json(pretty(&Leafz {
            server_id: &broker.config().server_id,
            now: ctx.clock.rfc3339(ctx.now),
            leafnodes: 0,
            leafs: None,
        }))),
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
    let body = "<html lang=\"en\">\n<head><title>natsws monitoring</title></head>\n<body>\n<a href=\"varz\">General</a><br/>\n<a href=\"connz\">Connections</a><br/>\n<a href=\"routez\">Routes</a><br/>\n<a href=\"gatewayz\">Gateways</a><br/>\n<a href=\"leafz\">Leaf Nodes</a><br/>\n<a href=\"subsz\">Subscriptions</a><br/>\n<a href=\"accountz\">Accounts</a><br/>\n<a href=\"jsz\">JetStream</a><br/>\n<a href=\"healthz\">Health</a><br/>\n</body>\n</html>\n";
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
    leaf: Empty,
    mqtt: Empty,
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
        leaf: Empty {},
        mqtt: Empty {},
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
        leafnodes: 0,
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

#[derive(Serialize)]
struct SubDetail {
    #[serde(skip_serializing_if = "String::is_empty")]
    account: String,
    subject: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    qgroup: String,
    sid: String,
    msgs: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    max: i64,
    cid: u64,
}

fn sub_detail(s: &SubInfo, account: bool) -> SubDetail {
    SubDetail {
        account: if account {
            s.account.clone()
        } else {
            String::new()
        },
        subject: s.subject.clone(),
        qgroup: s.queue.clone().unwrap_or_default(),
        sid: s.sid.clone(),
        msgs: i64::try_from(s.msgs).unwrap_or(i64::MAX),
        max: s.max.map_or(0, |m| i64::try_from(m).unwrap_or(i64::MAX)),
        cid: s.cid,
    }
}

#[derive(Serialize)]
struct ConnInfoJson {
    cid: u64,
    kind: &'static str,
    #[serde(rename = "type")]
    conn_type: &'static str,
    ip: String,
    port: u16,
    start: String,
    last_activity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    rtt: String,
    uptime: String,
    idle: String,
    pending_bytes: usize,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    subscriptions: usize,
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    lang: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cipher_suite: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorized_user: Option<String>,
    /// With `auth`, for a client outside the global account (`server/monitor.go` `Connz`).
    #[serde(skip_serializing_if = "String::is_empty")]
    account: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subscriptions_list: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subscriptions_list_detail: Vec<SubDetail>,
}

#[derive(Serialize)]
struct Connz<'a> {
    server_id: &'a str,
    now: String,
    num_connections: usize,
    total: usize,
    offset: i64,
    limit: i64,
    connections: Vec<ConnInfoJson>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubsMode {
    None,
    List,
    Detail,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum StateFilter {
    Open,
    Closed,
    Any,
}

/// Chooses the `/connz` page: parses the query, takes every candidate connection's summary,
/// filters, sorts and pages them. Subscriptions are not taken yet
/// ([`ConnzPage::take_subscriptions`]) and nothing is rendered ([`ConnzPage::render`]).
fn connz_page(
    q: &[(String, String)],
    broker: &Broker,
    ctx: &MonitorCtx<'_>,
) -> Result<ConnzPage, Response> {
    let bad = |m: String| Response::text(400, &m);
    let sort = query_get(q, "sort").unwrap_or("").to_owned();
    let auth = query_bool(q, "auth").map_err(bad)?;
    let subs = match query_get(q, "subs") {
        Some("detail") => SubsMode::Detail,
        Some(v) if !v.is_empty() => {
            if parse_go_bool("subs", v).map_err(bad)? {
                SubsMode::List
            } else {
                SubsMode::None
            }
        }
        _ => SubsMode::None,
    };
    let mut offset = query_int(q, "offset").map_err(bad)?;
    let mut limit = query_int(q, "limit").map_err(bad)?;
    let cid = match query_get(q, "cid") {
        None | Some("") => 0,
        Some(v) => v.parse::<u64>().map_err(|_| {
            bad(format!(
                "Error decoding uint64 for 'cid': strconv.ParseUint: parsing \"{v}\": invalid syntax"
            ))
        })?,
    };
    let state = match query_get(q, "state")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("") | Some("open") => StateFilter::Open,
        Some("closed") => StateFilter::Closed,
        Some("any") | Some("all") => StateFilter::Any,
        Some(_) => {
            return Err(bad(format!(
                "Error decoding state for {}",
                query_get(q, "state").unwrap_or("")
            )));
        }
    };
    let user = query_get(q, "user").unwrap_or("");
    let acc = query_get(q, "acc").unwrap_or("");
    let valid_sorts = [
        "",
        "cid",
        "start",
        "subs",
        "pending",
        "msgs_to",
        "msgs_from",
        "bytes_to",
        "bytes_from",
        "last",
        "idle",
        "uptime",
        "stop",
        "reason",
    ];
    if !valid_sorts.contains(&sort.as_str()) {
        return Err(bad(format!("invalid sorting option: {sort}")));
    }
    if (sort == "stop" || sort == "reason") && state != StateFilter::Closed {
        return Err(bad(format!(
            "sort by {sort} only valid on closed connections"
        )));
    }
    if offset < 0 {
        offset = 0;
    }
    if limit <= 0 {
        limit = 1024;
    }
    // Connections the broker has closed but whose last bytes are still being written count as
    // closed: they are not in the closed ring until they are removed.
    let (open, closing): (Vec<ClientInfo>, Vec<ClientInfo>) = broker
        .clients()
        .into_iter()
        .filter_map(|id| broker.client_summary(id, ctx.now))
        .partition(|c| c.stop.is_none());
    // With `max_closed_clients: 0` nothing closed is listed, not even these.
    let keep_closed = ctx.settings.max_closed_clients > 0;
    let closed = closing
        .into_iter()
        .filter(|_| keep_closed)
        .chain(broker.closed_clients().cloned());
    let mut infos: Vec<ClientInfo> = Vec::new();
    if cid != 0 {
        // 2.9.10: with state=all only closed connections are searched.
        if state == StateFilter::Open {
            infos.extend(open.into_iter().filter(|c| c.cid == cid));
        } else {
            infos.extend(closed.filter(|c| c.cid == cid));
        }
        limit = 1;
    } else {
        if state != StateFilter::Closed {
            infos.extend(open);
        }
        if state != StateFilter::Open {
            infos.extend(closed);
        }
    }
    if !user.is_empty() {
        infos.retain(|c| c.user == user || c.authorized_user.as_deref() == Some(user));
    }
    if !acc.is_empty() {
        infos.retain(|c| c.account == acc);
    }
    let now = ctx.now;
    let life = |c: &ClientInfo| c.stop.unwrap_or(now).saturating_duration_since(c.start);
    match sort.as_str() {
        "" | "cid" | "start" => infos.sort_by_key(|c| c.cid),
        "subs" => infos.sort_by_key(|c| Reverse(c.num_subscriptions)),
        "pending" => infos.sort_by_key(|c| Reverse(c.pending_bytes)),
        "msgs_to" => infos.sort_by_key(|c| Reverse(c.out_msgs)),
        "msgs_from" => infos.sort_by_key(|c| Reverse(c.in_msgs)),
        "bytes_to" => infos.sort_by_key(|c| Reverse(c.out_bytes)),
        "bytes_from" => infos.sort_by_key(|c| Reverse(c.in_bytes)),
        "last" => infos.sort_by_key(|c| Reverse(c.last_activity)),
        "idle" => infos.sort_by(|a, b| {
            let ia = a.last_activity.saturating_duration_since(a.start);
            let ib = b.last_activity.saturating_duration_since(b.start);
            ib.cmp(&ia)
        }),
        "uptime" => infos.sort_by_key(|c| life(c)),
        "stop" => infos.sort_by_key(|c| Reverse(c.stop)),
        "reason" => infos.sort_by(|a, b| {
            a.reason
                .map(|r| r.as_str())
                .cmp(&b.reason.map(|r| r.as_str()))
        }),
        _ => {}
    }
    let total = infos.len();
    let start_idx = usize::try_from(offset).unwrap_or(usize::MAX).min(total);
    let end_idx = start_idx
        .saturating_add(usize::try_from(limit).unwrap_or(usize::MAX))
        .min(total);
    let page: Vec<ClientInfo> = infos.drain(start_idx..end_idx).collect();
    Ok(ConnzPage {
        page,
        n_taken: 0,
        subs,
        auth,
        total,
        offset,
        limit,
        server_id: broker.config().server_id.clone(),
        clock: ctx.clock,
        now,
        callback: callback(q).map(str::to_owned),
    })
}

/// A chosen `/connz` page (from [`connz_page`]). Its connections' subscriptions are taken a
/// few connections at a time, so that a page of thousands of connections holding many
/// subscriptions each does not pause the event loop; then it renders on its own, touching
/// nothing the loop owns (nats-server, too, renders monitoring replies on the HTTP handler's
/// goroutine, `server/monitor.go` `HandleConnz`).
#[derive(Debug)]
pub(crate) struct ConnzPage {
    page: Vec<ClientInfo>,
    /// How many connections of `page`, from the front, have their subscriptions taken.
    n_taken: usize,
    subs: SubsMode,
    auth: bool,
    total: usize,
    offset: i64,
    limit: i64,
    server_id: String,
    clock: Clock,
    now: Instant,
    /// The JSONP `callback` the reply is wrapped in.
    callback: Option<String>,
}

impl ConnzPage {
    /// Takes the subscriptions of the next connections of the page, one connection at a time,
    /// until about `budget` subscriptions were taken. True once every connection's are taken
    /// (at once when the query did not ask for subscriptions).
    pub(crate) fn take_subscriptions(&mut self, broker: &Broker, budget: usize) -> bool {
        if self.subs == SubsMode::None {
            return true;
        }
        let mut taken = 0;
        while taken < budget
            && let Some(c) = self.page.get_mut(self.n_taken)
        {
            // Summaries carry no subscriptions (the closed ring keeps its own).
            if c.subscriptions.is_empty() && c.num_subscriptions > 0 {
                c.subscriptions = broker.client_subscriptions(c.id);
            }
            taken += c.subscriptions.len().max(1);
            self.n_taken += 1;
        }
        self.n_taken >= self.page.len()
    }

    /// Renders the reply. Subscriptions not yet taken are left out.
    pub(crate) fn render(self) -> Response {
        let now = self.now;
        let clock = self.clock;
        let connections: Vec<ConnInfoJson> = self
            .page
            .iter()
            .map(|c| {
                let closed = c.stop.is_some();
                let end = c.stop.unwrap_or(now);
                ConnInfoJson {
                    cid: c.cid,
                    kind: "Client",
                    conn_type: c.conn_type.connz_type(),
                    ip: ip_string(c.remote.ip()),
                    port: c.remote.port(),
                    start: clock.rfc3339(c.start),
                    last_activity: clock.rfc3339(c.last_activity),
                    stop: c.stop.map(|s| clock.rfc3339(s)),
                    reason: c.reason.map(|r| r.as_str()),
                    rtt: rtt_string(c.rtt),
                    uptime: uptime(end.saturating_duration_since(c.start)),
                    idle: uptime(end.saturating_duration_since(c.last_activity)),
                    pending_bytes: c.pending_bytes,
                    in_msgs: c.in_msgs,
                    out_msgs: c.out_msgs,
                    in_bytes: c.in_bytes,
                    out_bytes: c.out_bytes,
                    subscriptions: c.num_subscriptions,
                    name: c.name.clone(),
                    lang: c.lang.clone(),
                    version: c.version.clone(),
                    tls_version: c.tls_version.clone(),
                    tls_cipher_suite: c.tls_cipher.clone(),
                    authorized_user: if self.auth {
                        c.authorized_user.clone()
                    } else {
                        None
                    },
                    account: if self.auth && c.account != broker::GLOBAL_ACCOUNT {
                        c.account.clone()
                    } else {
                        String::new()
                    },
                    subscriptions_list: if self.subs == SubsMode::List {
                        c.subscriptions.iter().map(|s| s.subject.clone()).collect()
                    } else {
                        Vec::new()
                    },
                    subscriptions_list_detail: if self.subs == SubsMode::Detail {
                        c.subscriptions
                            .iter()
                            .map(|s| sub_detail(s, closed))
                            .collect()
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect();
        let resp = Response::json(pretty(&Connz {
            server_id: &self.server_id,
            now: clock.rfc3339(now),
            num_connections: connections.len(),
            total: self.total,
            offset: self.offset,
            limit: self.limit,
            connections,
        }));
        with_callback(resp, self.callback.as_deref())
    }
}

fn ip_string(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or_else(|| v6.to_string(), |v4| v4.to_string()),
        IpAddr::V4(v4) => v4.to_string(),
    }
}

#[derive(Serialize)]
struct SubszStats {
    num_subscriptions: u64,
    num_cache: u64,
    num_inserts: u64,
    num_removes: u64,
    num_matches: u64,
    cache_hit_rate: GoFloat,
    max_fanout: u64,
    avg_fanout: GoFloat,
}

#[derive(Serialize)]
struct SubszList<'a> {
    server_id: &'a str,
    now: String,
    #[serde(flatten)]
    stats: SubszStats,
    total: usize,
    offset: i64,
    limit: i64,
    subscriptions_list: Vec<SubDetail>,
}

/// An index's statistics as `/subsz` and `/accountz` render them.
fn subsz_stats(st: &broker::sublist::SublistStats, n_subs: u64) -> SubszStats {
    SubszStats {
        num_subscriptions: n_subs,
        num_cache: u64::from(st.num_cache),
        num_inserts: st.num_inserts,
        num_removes: st.num_removes,
        num_matches: st.num_matches,
        cache_hit_rate: GoFloat(st.cache_hit_rate),
        max_fanout: u64::from(st.max_fanout),
        avg_fanout: GoFloat(st.avg_fanout),
    }
}

fn subsz(
    q: &[(String, String)],
    broker: &mut Broker,
    ctx: &MonitorCtx<'_>,
) -> Result<Response, Response> {
    let bad = |m: String| Response::text(400, &m);
    let subs = query_bool(q, "subs").map_err(bad)?;
    let mut offset = query_int(q, "offset").map_err(bad)?;
    let mut limit = query_int(q, "limit").map_err(bad)?;
    let acc = query_get(q, "acc").unwrap_or("");
    let test = query_get(q, "test").filter(|t| !t.is_empty());
    if let Some(t) = test
        && !broker::subject::is_valid_literal(t.as_bytes())
    {
        return Err(bad(format!(
            "invalid test subject, must be valid publish subject: {t}"
        )));
    }
    if offset < 0 {
        offset = 0;
    }
    if limit <= 0 {
        limit = 1024;
    }
    // Go sums the index statistics of the accounts the filter keeps (an unknown account:
    // none).
    let (st, n_subs) = if acc.is_empty() {
        (broker.sublist_stats(), broker.stats().subscriptions)
    } else {
        let st = broker.account_sublist_stats(acc).unwrap_or_default();
        (
            st,
            usize::try_from(st.num_subscriptions).unwrap_or(usize::MAX),
        )
    };
    let stats = subsz_stats(&st, u64::try_from(n_subs).unwrap_or(0));
    let mut list: Vec<SubInfo> = if subs {
        broker.subscriptions_in(Some(acc).filter(|a| !a.is_empty()), test.map(str::as_bytes))
    } else {
        Vec::new()
    };
    let start_idx = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(list.len());
    let end_idx = start_idx
        .saturating_add(usize::try_from(limit).unwrap_or(usize::MAX))
        .min(list.len());
    list = list.get(start_idx..end_idx).unwrap_or(&[]).to_vec();
    if list.is_empty() {
        return Ok(Response::json(pretty(&stats)));
    }
    let details: Vec<SubDetail> = list.iter().map(|s| sub_detail(s, true)).collect();
    Ok(Response::json(pretty(&SubszList {
        server_id: &broker.config().server_id,
        now: ctx.clock.rfc3339(ctx.now),
        stats,
        total: details.len(),
        offset,
        limit,
        subscriptions_list: details,
    })))
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
struct Leafz<'a> {
    server_id: &'a str,
    now: String,
    leafnodes: u32,
    leafs: Option<Vec<Empty>>,
}

#[derive(Serialize)]
struct Gatewayz<'a> {
    server_id: &'a str,
    now: String,
    outbound_gateways: BTreeMap<String, Empty>,
    inbound_gateways: BTreeMap<String, Empty>,
}

#[derive(Serialize)]
struct Accountz<'a> {
    server_id: &'a str,
    now: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    system_account: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    accounts: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_detail: Option<AccountDetail>,
}

/// `/accountz?acc=` (`server/monitor.go` `AccountInfo`, the fields a configured account has).
#[derive(Serialize)]
struct AccountDetail {
    account_name: String,
    update_time: String,
    expired: bool,
    complete: bool,
    jetstream_enabled: bool,
    leafnode_connections: usize,
    client_connections: usize,
    subscriptions: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exports: Vec<ExportDetail>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    imports: Vec<ImportDetail>,
    sublist_stats: SubszStats,
}

#[derive(Serialize)]
struct ExportDetail {
    subject: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    approved_accounts: Vec<String>,
}

#[derive(Serialize)]
struct ImportDetail {
    subject: String,
    account: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    local_subject: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    to: String,
    #[serde(rename = "type")]
    kind: &'static str,
    invalid: bool,
    share: bool,
    tracking: bool,
}

/// `/accountz`: the account names, or with `acc` one account's detail (400 `Account <name>
/// does not exist` for an unknown one). The reference also lists the service imports of its
/// system services (`$SYS.REQ.…`) in every account; natsws runs none.
fn accountz(
    q: &[(String, String)],
    broker: &Broker,
    ctx: &MonitorCtx<'_>,
) -> Result<Response, Response> {
    let accounts = broker.accounts();
    let system_account = broker.system_account().unwrap_or("");
    let mut out = Accountz {
        server_id: &broker.config().server_id,
        now: ctx.clock.rfc3339(ctx.now),
        system_account,
        accounts: None,
        account_detail: None,
    };
    let name = query_get(q, "acc").unwrap_or("");
    if name.is_empty() {
        out.accounts = Some(accounts.into_iter().map(|a| a.name).collect());
        return Ok(Response::json(pretty(&out)));
    }
    let Some(info) = accounts.into_iter().find(|a| a.name == name) else {
        return Err(Response::text(
            400,
            &format!("Account {name} does not exist"),
        ));
    };
    let config = broker.config().accounts.iter().find(|a| a.name == name);
    let kind = |k: broker::ExportKind| match k {
        broker::ExportKind::Stream => "stream",
        broker::ExportKind::Service => "service",
    };
    let exports = config.map_or_else(Vec::new, |a| {
        a.exports
            .iter()
            .map(|e| ExportDetail {
                subject: e.subject.clone(),
                kind: kind(e.kind),
                response_type: (e.kind == broker::ExportKind::Service).then_some(
                    match e.response_type {
                        broker::ResponseType::Singleton => "Singleton",
                        broker::ResponseType::Stream => "Streamed",
                        broker::ResponseType::Chunked => "Chunked",
                    },
                ),
                approved_accounts: e.accounts.clone(),
            })
            .collect()
    });
    let imports = config.map_or_else(Vec::new, |a| {
        a.imports
            .iter()
            .map(|i| {
                let stream = i.kind == broker::ExportKind::Stream;
                let local = match (&i.prefix, &i.to) {
                    (Some(p), _) => format!("{}.{}", p.trim_end_matches('.'), i.subject),
                    (None, Some(to)) => to.clone(),
                    (None, None) => i.subject.clone(),
                };
                ImportDetail {
                    // A service import shows its local subject and maps `to` the exported one.
                    subject: if stream {
                        i.subject.clone()
                    } else {
                        local.clone()
                    },
                    account: i.account.clone(),
                    local_subject: if stream { local } else { String::new() },
                    to: if stream {
                        String::new()
                    } else {
                        i.subject.clone()
                    },
                    kind: kind(i.kind),
                    invalid: false,
                    share: false,
                    tracking: false,
                }
            })
            .collect()
    });
    let st = info.sublist;
    out.account_detail = Some(AccountDetail {
        account_name: info.name,
        update_time: ctx.clock.rfc3339(broker.start_time()),
        expired: false,
        complete: true,
        jetstream_enabled: false,
        leafnode_connections: 0,
        client_connections: info.connections,
        subscriptions: st.num_subscriptions,
        exports,
        imports,
        sublist_stats: subsz_stats(&st, u64::from(st.num_subscriptions)),
    });
    Ok(Response::json(pretty(&out)))
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

#[cfg(test)]
mod connz_tests {
    use super::*;
    use broker::{ClientParams, CloseReason, ConnectionType};

    fn count(broker: &Broker, ctx: &MonitorCtx<'_>, query: &str) -> Vec<u64> {
        let resp = match connz_page(&parse_query(query), broker, ctx) {
            Ok(mut page) => {
                assert!(page.take_subscriptions(broker, usize::MAX));
                page.render()
            }
            Err(resp) => resp,
        };
        let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        v["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["cid"].as_u64().unwrap())
            .collect()
    }

    /// A connection the broker closed while its last bytes are still being written is
    /// reported as closed at once, not missing from both lists until it is removed.
    #[test]
    fn closing_connections_are_listed_as_closed() {
        let settings =
            crate::settings::from_options(&natsconf::options::Options::default()).unwrap();
        let now = Instant::now();
        let mut broker = Broker::new(settings.broker.clone(), now);
        let addr = "127.0.0.1:5000".parse().unwrap();
        let params = || ClientParams::new(ConnectionType::Standard, addr);
        let _a = broker.register_client(now, params());
        let b = broker.register_client(now, params());
        let c = broker.register_client(now, params());
        broker.close_client(b, now, CloseReason::ClientClosed);
        broker.close_client(c, now, CloseReason::ClientClosed);
        broker.remove_client(c, now);
        let bound = Bound::default();
        let stats = BTreeMap::new();
        let ctx = MonitorCtx {
            settings: &settings,
            bound: &bound,
            clock: Clock::now(),
            now,
            start: now,
            config_load_time: now,
            http_req_stats: &stats,
            healthy: true,
            rss_bytes: 0,
            cpu_percent: 0.0,
        };
        assert_eq!(count(&broker, &ctx, ""), vec![1]);
        assert_eq!(count(&broker, &ctx, "state=closed"), vec![2, 3]);
        assert_eq!(count(&broker, &ctx, "state=all"), vec![1, 2, 3]);
        assert_eq!(count(&broker, &ctx, "state=closed&cid=2"), vec![2]);
        assert_eq!(count(&broker, &ctx, "cid=2"), Vec::<u64>::new());
    }
}
