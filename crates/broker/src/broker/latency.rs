//! Service latency tracking (`server/accounts.go` `ServiceLatency`, `shouldSample`,
//! `sendTrackingLatency`, `sendBadRequestTrackingLatency`, `sendBackendErrorTrackingLatency`,
//! `sendReplyInterestLostTrackLatency`; `server/client.go` `processServiceImport`).
//!
//! A service export with `latency` has its sampled requests measured: the request's response
//! route carries a [`Tracking`], and when the response crosses back (or the request fails) a
//! `io.nats.server.metric.v1.service_latency` message is published in the exporting account
//! on the results subject, as the server. The statuses are the reference's: 200 (answered),
//! 400 (a request without a reply subject), 503 (no subscriber of the exporter received it),
//! 408 (the requestor's interest in the reply went first) and 504 (no response within the
//! export's response threshold).
//!
//! Durations come from the `now` instants the broker is given and the clients' measured
//! round-trip times; the wall-clock times in the message (`timestamp`, `start`) from
//! [`crate::Config::wall_clock`]. The reference's `system` latency is the time its own
//! bookkeeping took between two clock readings inside one call; the broker reads one `now`
//! per call, so it is 0 here.
//!
//! Deliberate differences from nats-server 2.9.10:
//! - A tracked request whose requestor closes its connection before the response reports
//!   408 at once (the reference keeps the route and reports the response or the timeout).
//! - A measurement that crosses a service import into a tracked service is not measured
//!   itself, so no configuration makes measurements of measurements.
//! - A tracked route dropped because the account holds [`crate::MAX_RESPONSE_ROUTES`] routes
//!   reports 504 (the reference has no such bound).
//! - A tracked request keeps at most [`MAX_TRACKED_HEADER_BYTES`] of trace headers until its
//!   response, each key and value counted with what it holds beyond its bytes; one with more
//!   is measured without its `header` (the reference keeps them all).
//! - A response from a leaf connection is measured here at once, with this server's name as
//!   the responder's `server`; the reference waits for the remote server's own measurement
//!   and merges it (`si.m1`), naming the leaf's remote server.

use std::collections::BTreeMap;

use super::*;
use crate::config::LatencySampling;
use crate::router::{Latency, Taken};

/// What [`MAX_TRACKED_HEADER_BYTES`] charges for each header key or value besides its
/// bytes: the `String` and its slot in the map or the values' vector.
const HELD_PER_STRING: usize = 2 * size_of::<String>();

/// The event type of a measurement (`ServiceLatencyType`).
const SERVICE_LATENCY_TYPE: &str = "io.nats.server.metric.v1.service_latency";

/// One tracked request's threshold: when, the exporting account, the response subject.
pub(crate) type LatencyTimer = Reverse<(Instant, AccountId, Box<[u8]>)>;

/// The headers a header-triggered measurement shows (`http.Header`: canonical key to values).
pub(crate) type TraceHeader = BTreeMap<String, Vec<String>>;

/// A sampled request's measurement in progress, kept on its response route.
#[derive(Debug, Clone)]
pub(crate) struct Tracking {
    /// The results subject in the exporting account.
    results: Box<[u8]>,
    /// The requestor, while it is connected (its round-trip time is read when reporting).
    requestor: ClientId,
    /// What the requestor looked like when it asked (shown when it has gone since); one
    /// copy shared by its tracked requests while it stays the same.
    requestor_info: Option<Arc<ClientInfoJson>>,
    /// `share` of the import: the requestor's details are shown.
    share: bool,
    /// When the request crossed into the exporter.
    started: Instant,
    /// The tracing headers that triggered the measurement.
    header: Option<TraceHeader>,
}

/// `ClientInfo` (`server/events.go`) as a measurement shows the requestor and the responder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct ClientInfoJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    host: String,
    #[serde(skip_serializing_if = "is_zero")]
    id: u64,
    acc: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    user: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    lang: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    ver: String,
    /// Nanoseconds.
    #[serde(skip_serializing_if = "is_zero")]
    rtt: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    server: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    cluster: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    jwt: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    issuer_key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    name_tag: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    client_type: String,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The `ServiceLatency` message, fields in the reference's order.
#[derive(Debug, Serialize)]
struct ServiceLatencyJson<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    timestamp: String,
    status: u16,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    requestor: Option<&'a ClientInfoJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    responder: Option<&'a ClientInfoJson>,
    #[serde(skip_serializing_if = "header_is_empty")]
    header: Option<&'a TraceHeader>,
    start: String,
    /// Nanoseconds.
    service: u64,
    /// Nanoseconds.
    system: u64,
    /// Nanoseconds.
    total: u64,
}

fn header_is_empty(header: &Option<&TraceHeader>) -> bool {
    header.is_none_or(|h| h.is_empty())
}

/// How a tracked request ended without a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No subscriber of the exporter received it (503).
    NoDelivery,
    /// The requestor's interest in the reply went first (408).
    InterestLost,
    /// No response within the response threshold (504).
    Timeout,
}

impl Failure {
    fn status(self) -> (u16, &'static str) {
        match self {
            Self::NoDelivery => (503, "Service Unavailable"),
            Self::InterestLost => (408, "Request Timeout"),
            Self::Timeout => (504, "Service Timeout"),
        }
    }
}

/// Whether `sampling` (and the request's header block) selects a request, and the headers
/// to show when a header selected it (`shouldSample`). `roll` is a random value in `0..100`.
pub(crate) fn should_sample(
    sampling: LatencySampling,
    roll: usize,
    header_block: Option<&[u8]>,
) -> (bool, Option<TraceHeader>) {
    // `l.sampling > 0 && rand.Int31n(100) <= l.sampling`: 0 % never samples at random.
    if let LatencySampling::Percent(percent) = sampling
        && (percent >= 100 || (percent > 0 && roll <= usize::from(percent)))
    {
        return (true, None);
    }
    let Some(header) = header_block.and_then(parse_header) else {
        return (false, None);
    };
    let first = |key: &str| header.get(key).and_then(|v| v.first()).map(String::as_str);
    let pick = |keys: &[&str]| -> TraceHeader {
        keys.iter()
            .filter_map(|k| header.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect()
    };
    const B3_KEYS: [&str; 4] = [
        "X-B3-Sampled",
        "X-B3-Traceid",
        "X-B3-Parentspanid",
        "X-B3-Spanid",
    ];
    if let Some(id) = first("Uber-Trace-Id") {
        // `<trace>:<span>:<parent>:<flags>`; sampled when the flags' low bit is set.
        let tokens: Vec<&str> = id.split(':').collect();
        let sampled = match tokens.get(3).map(|t| t.as_bytes()) {
            Some(&[low]) if tokens.len() == 4 => hex_value(low).is_some_and(|v| v & 1 == 1),
            // Go decodes `0` and the second character: the first one is never looked at.
            Some(&[_, low]) if tokens.len() == 4 => hex_value(low).is_some_and(|v| v & 1 == 1),
            _ => false,
        };
        if !sampled {
            return (false, None);
        }
        let mut shown = pick(&["Uber-Trace-Id"]);
        for (key, values) in &header {
            if key.starts_with("Uberctx-") {
                shown.insert(key.clone(), values.clone());
            }
        }
        return (true, Some(shown));
    }
    match first("X-B3-Sampled") {
        Some("1") => return (true, Some(pick(&B3_KEYS))),
        Some("0") => return (false, None),
        _ => {}
    }
    if header.contains_key("X-B3-Traceid") {
        return (true, Some(pick(&B3_KEYS)));
    }
    if let Some(b3) = first("B3") {
        let tokens: Vec<&str> = b3.split('-').collect();
        let denied = (tokens.len() > 2 && tokens.get(2) == Some(&"0")) || tokens == ["0"];
        return if denied {
            (false, None)
        } else {
            (true, Some(pick(&["B3"])))
        };
    }
    if let Some(parent) = first("Traceparent") {
        let tokens: Vec<&str> = parent.split('-').collect();
        return if tokens.len() == 4 && tokens.get(3) == Some(&"01") {
            (true, Some(pick(&["Traceparent", "Tracestate"])))
        } else {
            (false, None)
        };
    }
    (false, None)
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// A NATS header block as Go's `textproto.Reader.ReadMIMEHeader` reads it after the version
/// line: canonical keys, values without surrounding blanks, continuation lines folded, and
/// `None` for a malformed block (a line without a colon).
pub(crate) fn parse_header(block: &[u8]) -> Option<TraceHeader> {
    let text = std::str::from_utf8(block).ok()?;
    let mut lines = text.split("\r\n").peekable();
    lines.next()?;
    let mut header = TraceHeader::new();
    let mut last: Option<String> = None;
    let mut ended = false;
    while let Some(line) = lines.next() {
        if lines.peek().is_none() {
            // What follows the last CRLF is not a whole line.
            break;
        }
        if line.is_empty() {
            ended = true;
            break;
        }
        if line.starts_with([' ', '\t']) {
            let key = last.as_ref()?;
            let value = header.get_mut(key)?.last_mut()?;
            value.push(' ');
            value.push_str(line.trim_matches([' ', '\t']));
            continue;
        }
        let (key, value) = line.split_once(':')?;
        let key = canonical_key(key);
        if key.is_empty() {
            last = None;
            continue;
        }
        header
            .entry(key.clone())
            .or_default()
            .push(value.trim_matches([' ', '\t']).to_owned());
        last = Some(key);
    }
    // Without the empty line that ends it, Go's reader fails at the end of the input.
    ended.then_some(header)
}

/// `textproto.CanonicalMIMEHeaderKey`: the first letter and each letter after a hyphen upper
/// case, the rest lower case; a key with a byte outside the token characters is kept as is.
fn canonical_key(key: &str) -> String {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !key.bytes().all(token) {
        return key.to_owned();
    }
    let mut upper = true;
    key.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

impl Broker {
    /// Whether a request through `import` is measured, and the headers that asked for it.
    pub(super) fn sample_request(
        &mut self,
        latency: &Latency,
        publish: &PubRef<'_>,
    ) -> (bool, Option<TraceHeader>) {
        if self.publishing_latency {
            return (false, None);
        }
        let roll = match latency.sampling {
            LatencySampling::Percent(p) if p < 100 => self.rng.below(100),
            _ => 0,
        };
        let block = publish
            .header_len
            .filter(|h| *h > 0)
            .and_then(|h| publish.message.get(..h));
        should_sample(latency.sampling, roll, block)
    }

    /// The measurement a tracked request starts, for its response route.
    pub(super) fn start_tracking(
        &mut self,
        import: &ServiceImport,
        latency: &Latency,
        requestor: ClientId,
        header: Option<TraceHeader>,
        now: Instant,
    ) -> Box<Tracking> {
        // A route may wait for its response for the whole threshold: what it keeps of the
        // request's headers is bounded.
        // Each key and value costs at least its `String` and a map or vector slot, so that
        // thousands of empty values count for what they hold.
        let held = |s: &String| s.capacity() + HELD_PER_STRING;
        let size = |h: &TraceHeader| {
            h.iter()
                .map(|(k, v)| held(k) + v.iter().map(held).sum::<usize>())
                .sum::<usize>()
        };
        let header = header.filter(|h| size(h) <= MAX_TRACKED_HEADER_BYTES);
        Box::new(Tracking {
            results: latency.subject.clone(),
            requestor,
            requestor_info: self.requestor_snapshot(requestor, import.share),
            share: import.share,
            started: now,
            header,
        })
    }

    /// `ClientInfo` of a client (`getClientInfo`): the account and round-trip time, and with
    /// `detailed` the rest of what the reference shows. `None` when the client is unknown.
    pub(super) fn latency_client_info(
        &self,
        id: ClientId,
        detailed: bool,
    ) -> Option<ClientInfoJson> {
        let c = self.client(id)?;
        let mut info = ClientInfoJson {
            acc: self.router.name(c.auth.account).to_string(),
            rtt: c
                .rtt
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            ..ClientInfoJson::default()
        };
        if !detailed {
            return Some(info);
        }
        let leaf = matches!(
            c.params.conn_type,
            ConnectionType::Leaf | ConnectionType::LeafWebSocket
        );
        info.server = if self.config.server_name.is_empty() {
            self.config.server_id.clone()
        } else {
            self.config.server_name.clone()
        };
        info.cluster.clone_from(&self.config.cluster);
        info.start = Some(self.wall_text(c.start, Duration::ZERO));
        info.host = c.params.remote.ip().to_string();
        info.id = c.cid;
        info.name.clone_from(&c.opts.name);
        info.lang.clone_from(&c.opts.lang);
        info.ver.clone_from(&c.opts.version);
        let identity = c.auth.identity.as_ref();
        let jwt = identity.and_then(|i| i.jwt.as_ref());
        info.user = match (jwt, identity) {
            (Some(jwt), _) => Some(jwt.user.clone()),
            (None, Some(i)) => i.nkey.clone().or_else(|| i.username.clone()),
            (None, None) => None,
        }
        .or_else(|| c.auth.authorized_user.clone())
        .unwrap_or_default();
        // `issuerForClient`: only nkey and JWT users have one (their signing key, else
        // their account).
        info.issuer_key = match (jwt, identity) {
            (Some(jwt), _) => jwt
                .signing_key
                .clone()
                .unwrap_or_else(|| jwt.account.clone()),
            (None, Some(i)) if i.nkey.is_some() => self.router.name(c.auth.account).to_string(),
            _ => String::new(),
        };
        if let Some(jwt) = jwt {
            info.jwt = c.auth.creds.jwt().unwrap_or_default().to_owned();
            info.name_tag.clone_from(&jwt.name);
            info.tags.clone_from(&jwt.tags);
        }
        info.kind = if leaf { "Leafnode" } else { "Client" }.to_owned();
        info.client_type = match c.params.conn_type {
            ConnectionType::Standard => "nats",
            ConnectionType::WebSocket => "websocket",
            ConnectionType::Mqtt | ConnectionType::MqttWebSocket => "mqtt",
            ConnectionType::Leaf | ConnectionType::LeafWebSocket => "",
        }
        .to_owned();
        // `getClientInfo` leaves `client_id` (the MQTT client id) unset.
        Some(info)
    }

    /// A request without a reply subject to a tracked service was sampled (400).
    pub(super) fn latency_bad_request(
        &mut self,
        now: Instant,
        import: &ServiceImport,
        latency: &Latency,
        requestor: ClientId,
        header: Option<TraceHeader>,
    ) {
        let info = self.latency_client_info(requestor, import.share);
        let rtt = Duration::from_nanos(info.as_ref().map_or(0, |i| i.rtt));
        let start = self.wall_text(now, rtt);
        let message = ServiceLatencyJson {
            kind: SERVICE_LATENCY_TYPE,
            id: self.event_id(),
            timestamp: self.wall_text(now, Duration::ZERO),
            status: 400,
            description: "Bad Request",
            requestor: info.as_ref(),
            responder: None,
            header: header.as_ref(),
            start,
            service: 0,
            system: 0,
            total: 0,
        };
        let payload = serde_json::to_vec(&message).unwrap_or_default();
        self.publish_in_account(now, import.exporter, &latency.subject, &payload);
    }

    /// The requestor of `tracking` as it is now: its live round-trip time, or what it looked
    /// like when it asked.
    fn requestor_now(&self, tracking: &Tracking) -> Option<ClientInfoJson> {
        self.latency_client_info(tracking.requestor, tracking.share)
            .or_else(|| tracking.requestor_info.as_deref().cloned())
    }

    /// The requestor's details for a tracked request: the copy its earlier requests share
    /// when nothing changed, so that thousands of requests waiting for a slow service hold
    /// one copy (a JWT user's includes its JWT).
    fn requestor_snapshot(&mut self, id: ClientId, detailed: bool) -> Option<Arc<ClientInfoJson>> {
        let info = self.latency_client_info(id, detailed)?;
        let c = self.client_mut(id)?;
        if let Some(kept) = c.latency_info.as_ref().filter(|k| ***k == info) {
            return Some(Arc::clone(kept));
        }
        let shared = Arc::new(info);
        c.latency_info = Some(Arc::clone(&shared));
        Some(shared)
    }

    /// The response to a tracked request crossed back from `responder` (200).
    pub(super) fn latency_answered(
        &mut self,
        now: Instant,
        exporter: AccountId,
        tracking: &Tracking,
        responder: ClientId,
    ) {
        let requestor = self.requestor_now(tracking);
        let responder = self.latency_client_info(responder, true);
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let request_rtt = requestor.as_ref().map_or(0, |i| i.rtt);
        let response_rtt = responder.as_ref().map_or(0, |i| i.rtt);
        let service_rtt = nanos(now.saturating_duration_since(tracking.started));
        let message = ServiceLatencyJson {
            kind: SERVICE_LATENCY_TYPE,
            id: self.event_id(),
            timestamp: self.wall_text(now, Duration::ZERO),
            status: 200,
            description: "",
            requestor: requestor.as_ref(),
            responder: responder.as_ref(),
            header: tracking.header.as_ref(),
            start: self.wall_text(tracking.started, Duration::from_nanos(request_rtt)),
            // Negative values are reported as 0 (`sanitizeLatencyMetric`).
            service: service_rtt.saturating_sub(response_rtt),
            system: 0,
            total: request_rtt.saturating_add(service_rtt),
        };
        let payload = serde_json::to_vec(&message).unwrap_or_default();
        self.publish_in_account(now, exporter, &tracking.results, &payload);
    }

    /// A tracked request ended without a response (503, 408 or 504).
    pub(super) fn latency_failed(
        &mut self,
        now: Instant,
        exporter: AccountId,
        tracking: &Tracking,
        failure: Failure,
    ) {
        let (status, description) = failure.status();
        let requestor = self.requestor_now(tracking);
        let rtt = Duration::from_nanos(requestor.as_ref().map_or(0, |i| i.rtt));
        let message = ServiceLatencyJson {
            kind: SERVICE_LATENCY_TYPE,
            id: self.event_id(),
            timestamp: self.wall_text(now, Duration::ZERO),
            status,
            description,
            requestor: requestor.as_ref(),
            responder: None,
            header: tracking.header.as_ref(),
            start: self.wall_text(tracking.started, rtt),
            service: 0,
            system: 0,
            total: 0,
        };
        let payload = serde_json::to_vec(&message).unwrap_or_default();
        self.publish_in_account(now, exporter, &tracking.results, &payload);
    }

    /// Reports every dropped tracked route of `exporter` as `failure`.
    pub(super) fn latency_dropped(
        &mut self,
        now: Instant,
        exporter: AccountId,
        routes: Vec<ResponseRoute>,
        failure: Failure,
    ) {
        for route in routes {
            if let Some(tracking) = route.tracking.as_deref() {
                self.latency_failed(now, exporter, tracking, failure);
            }
        }
    }

    /// Reports the tracked routes the router dropped because their requestor's interest went.
    pub(super) fn report_interest_lost(&mut self, now: Instant) {
        for (exporter, route) in self.router.take_interest_lost() {
            if let Some(tracking) = route.tracking.as_deref() {
                self.latency_failed(now, exporter, tracking, Failure::InterestLost);
            }
        }
    }

    /// Handles what [`crate::router::Responses::take`] found for a response: an expired
    /// tracked route reports its timeout. Returns the live route.
    pub(super) fn live_route(
        &mut self,
        now: Instant,
        exporter: AccountId,
        taken: Taken,
    ) -> Option<ResponseRoute> {
        match taken {
            Taken::Live(route) => Some(route),
            Taken::Expired(route) => {
                self.latency_dropped(now, exporter, vec![route], Failure::Timeout);
                None
            }
        }
    }

    /// Watches a tracked route's threshold, so that its timeout is reported when no response
    /// came. Stale entries (routes answered since) are dropped once they are most of the heap.
    pub(super) fn watch_tracked_route(&mut self, exporter: AccountId, key: Box<[u8]>, at: Instant) {
        self.latency_timers.push(Reverse((at, exporter, key)));
        if self.latency_timers.len() >= self.latency_compact_at {
            let router = &self.router;
            let entries = std::mem::take(&mut self.latency_timers).into_vec();
            let live: Vec<_> = entries
                .into_iter()
                .filter(|Reverse((_, acc, key))| {
                    router
                        .account(*acc)
                        .is_some_and(|a| a.responses.contains(key))
                })
                .collect();
            self.latency_compact_at = (2 * live.len()).max(MIN_LATENCY_COMPACTION);
            self.latency_timers = BinaryHeap::from(live);
        }
    }

    /// The next tracked route threshold.
    pub(super) fn latency_deadline(&self) -> Option<Instant> {
        self.latency_timers.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Reports the timeout of every tracked route whose threshold passed by `now` (`server/
    /// accounts.go` `checkExpiredResponses` with `rsiTimeout`).
    pub(super) fn fire_latency_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, _, _))) = self.latency_timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, exporter, key))) = self.latency_timers.pop() else {
                break;
            };
            let expired = self
                .router
                .account_mut(exporter)
                .and_then(|a| a.responses.take_expired(&key, now));
            if let Some(route) = expired {
                self.latency_dropped(now, exporter, vec![route], Failure::Timeout);
            }
        }
    }

    /// Publishes `payload` on `subject` in `account` as the server (`sendInternalAccountMsg`).
    fn publish_in_account(
        &mut self,
        now: Instant,
        account: AccountId,
        subject: &[u8],
        payload: &[u8],
    ) {
        let nested = std::mem::replace(&mut self.publishing_latency, true);
        self.publish_as_server(now, account, subject, payload);
        self.publishing_latency = nested;
    }

    /// `at` minus `before` by the wall clock, as Go prints a UTC `time.Time` in JSON.
    fn wall_text(&self, at: Instant, before: Duration) -> String {
        let clock = self.config.wall_clock.unwrap_or(WallClock {
            at: self.start,
            unix_secs: 0,
            subsec_nanos: 0,
        });
        let (secs, nanos) = clock.unix_nanos_at(at);
        let total = i128::from(secs) * 1_000_000_000 + i128::from(nanos)
            - i128::try_from(before.as_nanos()).unwrap_or(0);
        let secs = i64::try_from(total.div_euclid(1_000_000_000)).unwrap_or(0);
        let nanos = u32::try_from(total.rem_euclid(1_000_000_000)).unwrap_or(0);
        gotext::format_rfc3339(secs, nanos)
    }

    /// A fresh event id: 22 base-62 characters, as the reference's NUID.
    fn event_id(&mut self) -> String {
        const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut id = String::with_capacity(22);
        for _ in 0..2 {
            let mut n = self.rng.next_u64();
            for _ in 0..11 {
                id.push(char::from(
                    DIGITS.get((n % 62) as usize).copied().unwrap_or(b'0'),
                ));
                n /= 62;
            }
        }
        id
    }
}

/// Most bytes (keys and values) of trace headers a tracked request keeps for its
/// measurement; a request with more is measured without them.
pub(crate) const MAX_TRACKED_HEADER_BYTES: usize = 4096;

/// The fewest entries the tracked-route timer heap holds before stale entries are dropped.
pub(super) const MIN_LATENCY_COMPACTION: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    fn header(lines: &[&str]) -> Vec<u8> {
        let mut block = b"NATS/1.0\r\n".to_vec();
        for line in lines {
            block.extend_from_slice(line.as_bytes());
            block.extend_from_slice(b"\r\n");
        }
        block.extend_from_slice(b"\r\n");
        block
    }

    /// `shouldSample` on the headers only, with the keys of the headers shown.
    fn check(lines: &[&str], sampled: bool, shown: &[&str]) {
        let block = header(lines);
        let (got, header) = should_sample(LatencySampling::Headers, 99, Some(&block));
        assert_eq!(got, sampled, "{lines:?}");
        let keys: Vec<&str> = header
            .as_ref()
            .map(|h| h.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(keys, shown, "{lines:?}");
    }

    #[test]
    fn trace_headers_trigger_as_the_reference_decides() {
        // The cases of `TestServiceLatencyHeaderTriggered`, and their denied forms.
        check(
            &[
                "Uber-Trace-Id: 479fefe9525eddb:479fefe9525eddb:0:1",
                "Some-Other: value",
            ],
            true,
            &["Uber-Trace-Id"],
        );
        check(
            &["uber-trace-id: a:b:c:03", "Uberctx-X: foo"],
            true,
            &["Uber-Trace-Id", "Uberctx-X"],
        );
        check(&["Uber-Trace-Id: a:b:c:0"], false, &[]);
        check(&["Uber-Trace-Id: a:b:c:2"], false, &[]);
        check(&["Uber-Trace-Id: a:b:c:zz"], false, &[]);
        // Of two flag characters only the second is decoded (`{'0', tk[3][1]}`).
        check(&["Uber-Trace-Id: a:b:c:z1"], true, &["Uber-Trace-Id"]);
        check(&["Uber-Trace-Id: a:b:c:z2"], false, &[]);
        check(&["Uber-Trace-Id: a:b:1"], false, &[]);
        check(&["X-B3-Sampled: 1"], true, &["X-B3-Sampled"]);
        check(&["X-B3-Sampled: 0", "X-B3-TraceId: 80f1"], false, &[]);
        check(
            &[
                "X-B3-TraceId: 80f1",
                "X-B3-ParentSpanId: 05e3",
                "X-B3-SpanId: e457",
                "Other: x",
            ],
            true,
            &["X-B3-Parentspanid", "X-B3-Spanid", "X-B3-Traceid"],
        );
        check(&["B3: 80f1-e457-1-05e3"], true, &["B3"]);
        check(&["B3: 80f1"], true, &["B3"]);
        check(&["B3: 80f1-e457-0-05e3"], false, &[]);
        check(&["B3: 0"], false, &[]);
        check(
            &["Traceparent: 00-4bf9-00f0-01", "Tracestate: rojo=00f0"],
            true,
            &["Traceparent", "Tracestate"],
        );
        check(&["Traceparent: 00-4bf9-00f0-00"], false, &[]);
        check(&["Some-Other: value"], false, &[]);
        check(&["not a header line"], false, &[]);
    }

    #[test]
    fn percentages_roll_below_or_at_the_rate_then_fall_back_to_headers() {
        // `rand.Int31n(100) <= sampling`: a rate of 50 takes rolls 0 to 50.
        for (roll, sampled) in [(0, true), (50, true), (51, false), (99, false)] {
            let (got, header) = should_sample(LatencySampling::Percent(50), roll, None);
            assert_eq!((got, header), (sampled, None), "roll {roll}");
        }
        assert!(should_sample(LatencySampling::Percent(100), 99, None).0);
        // `l.sampling > 0 && ...`: 0 % never samples at random, only by headers.
        assert!(!should_sample(LatencySampling::Percent(0), 0, None).0);
        let block = header(&["X-B3-Sampled: 1"]);
        let (got, header) = should_sample(LatencySampling::Percent(1), 99, Some(&block));
        assert!(got);
        assert!(header.is_some_and(|h| h.contains_key("X-B3-Sampled")));
        assert!(!should_sample(LatencySampling::Headers, 0, None).0);
    }

    #[test]
    fn header_blocks_read_as_textproto_reads_them() {
        let block = header(&["a-b: 1", "A-B:  2 ", "folded: x", "  y", "weird key: v"]);
        let parsed = parse_header(&block).unwrap();
        assert_eq!(parsed.get("A-B").unwrap(), &["1", "2"]);
        assert_eq!(parsed.get("Folded").unwrap(), &["x y"]);
        assert_eq!(parsed.get("weird key").unwrap(), &["v"]);
        assert_eq!(parse_header(&header(&["no colon"])), None);
        assert_eq!(parse_header(b"\xff\xfe"), None);
        // `ReadMIMEHeader` fails at the end of input without the blank line.
        assert_eq!(parse_header(b"NATS/1.0\r\nA: 1\r\n"), None);
        assert!(parse_header(b"NATS/1.0\r\nA: 1\r\n\r\n").is_some());
        assert_eq!(canonical_key("x-b3-traceid"), "X-B3-Traceid");
    }
}
