//! The server side: read an upgrade request, validate it in the reference's order, and answer
//! with the `101` or with the exact error response (nats-server's `server/websocket.go`
//! `wsUpgrade`).

use core::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::cookie::{Cookies, extract};
use crate::head::{
    HeadError, HeadReader, HeaderPair, collect_headers, deflate_offer, first, has_token, values,
};
use crate::policy::{Policy, is_token};
use crate::reject::{AfterReject, Reject, RequestFacts};
use crate::uri::parse_request_uri;

/// The GUID of RFC 6455 §1.3, appended to the key before hashing.
const WS_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The fixed extension line nats-server answers a `permessage-deflate` offer with.
pub(crate) const PMC_RESPONSE: &[u8] = b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n";
/// The no-masking agreement line.
pub(crate) const NO_MASKING_RESPONSE: &[u8] = b"Nats-No-Masking: true\r\n";
/// The subprotocol line for `/mqtt` (nats-server's casing).
const MQTT_PROTOCOL_RESPONSE: &[u8] = b"Sec-Websocket-Protocol: mqtt\r\n";

/// What the request path asks for (`wsUpgrade`'s prefix matching in v2.9.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// Any other path: a NATS client.
    Client,
    /// A path starting with `/leafnode`: an inbound leafnode connection.
    Leaf,
    /// A path starting with `/mqtt`: an MQTT client (not served by natsws yet).
    Mqtt,
}

impl PathKind {
    /// Classifies a raw request path.
    #[must_use]
    pub fn from_path(path: &str) -> Self {
        if path.starts_with("/leafnode") {
            Self::Leaf
        } else if path.starts_with("/mqtt") {
            Self::Mqtt
        } else {
            Self::Client
        }
    }

    /// The `allowed_connection_types` name of this kind over WebSocket (`server/auth.go`
    /// `validateAllowedConnectionTypes`).
    #[must_use]
    pub fn connection_type(self) -> &'static str {
        match self {
            Self::Client => "WEBSOCKET",
            Self::Leaf => "LEAFNODE_WS",
            Self::Mqtt => "MQTT_WS",
        }
    }
}

/// An accepted upgrade: what was negotiated and what the connection needs to remember
/// (`wsUpgrade`'s `wsUpgradeResult`). The `101` response is already in the output buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// Bytes of the input taken by the request; the caller drops them from its buffer.
    pub head_len: usize,
    /// What the path asks for.
    pub kind: PathKind,
    /// `permessage-deflate` (no context takeover both ways) was agreed.
    pub compression: bool,
    /// `Nats-No-Masking: true` was agreed: the peer's frames are read without unmasking.
    pub no_masking: bool,
    /// The `User-Agent` starts with `Mozilla/` (client and MQTT kinds only): frames the server
    /// writes are limited to 4096 bytes.
    pub browser: bool,
    /// Safari with compression (browser, compression, and a `User-Agent` with both `Version/`
    /// and `Safari/`): compressed messages are never fragmented.
    pub safari_no_compressed_fragments: bool,
    /// The configured auth cookies (client and MQTT kinds only).
    pub cookies: Cookies,
    /// The client address claimed by `X-Forwarded-For`, for logs and monitoring only. It never
    /// replaces the socket address in security decisions.
    pub forwarded_for: Option<IpAddr>,
}

/// The request line, checked the way Go's `readRequest` checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RequestLine<'a> {
    method: &'a str,
    target: &'a str,
    http10: bool,
}

/// What a readable request says about keeping the connection (Go `net/http`'s
/// `shouldClose`, `wantsClose`, `wantsHttp10KeepAlive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Persistence {
    /// The header block's length.
    head_len: usize,
    /// Some `Connection` value has the token `close`.
    close: bool,
    /// HTTP/1.0 whose first `Connection` value has the token `keep-alive` (Go's `hasToken`).
    keep_alive_10: bool,
    /// A `Content-Length` other than `0`, or any `Transfer-Encoding`.
    body: bool,
}

/// One connection's upgrade, from the first byte until the `101` or the error response, and
/// across refused requests while the connection stays open (see [`AfterReject`]).
///
/// Feed it with [`ServerHandshake::handle_input`] after every read.
#[derive(Debug, Clone)]
pub struct ServerHandshake {
    head: HeadReader,
    tls: bool,
    line_checked: bool,
    facts: RequestFacts,
    finished: bool,
    persistence: Option<Persistence>,
    after_reject: Option<AfterReject>,
    rejected: u32,
}

impl ServerHandshake {
    /// Starts reading a request on a connection; `tls` says whether it arrived over TLS (this
    /// sets the default port and scheme of the same-origin check).
    #[must_use]
    pub fn new(tls: bool) -> Self {
        Self {
            head: HeadReader::default(),
            tls,
            line_checked: false,
            facts: RequestFacts::default(),
            finished: false,
            persistence: None,
            after_reject: None,
            rejected: 0,
        }
    }

    /// Reads the request from `src`: every byte received on the connection so far. Between
    /// calls the caller only appends to `src`.
    ///
    /// - `Ok(None)`: more input is needed; read again and call again.
    /// - `Ok(Some(upgrade))`: the `101` was appended to `out`. Flush it, drop
    ///   `upgrade.head_len` bytes from the input and continue with WebSocket frames.
    /// - `Err(reject)`: the error response was appended to `out`. Flush it; then
    ///   [`ServerHandshake::after_reject`] says whether to close or to read the next request on
    ///   the same connection. A caller that always closes here stays correct, only stricter
    ///   than nats-server.
    ///
    /// Once it has returned something other than `Ok(None)` it writes nothing more and returns
    /// `Ok(None)`, until [`ServerHandshake::next_request`] starts the next request. `unix_time_secs` fills the `Date` header of error responses (`None` leaves
    /// it out). Work is linear in the input over all calls.
    pub fn handle_input(
        &mut self,
        policy: &Policy,
        src: &[u8],
        unix_time_secs: Option<u64>,
        out: &mut Vec<u8>,
    ) -> Result<Option<Upgrade>, Reject> {
        if self.finished {
            return Ok(None);
        }
        let res = self.advance(policy, src, out);
        match &res {
            Ok(None) => {}
            Ok(Some(_)) => self.finished = true,
            Err(reject) => {
                self.finished = true;
                self.rejected = self.rejected.saturating_add(1);
                let (after, connection) = self.decide_after_reject(policy, reject);
                self.after_reject = Some(after);
                reject.write_response_with_connection(self.facts, unix_time_secs, connection, out);
            }
        }
        res
    }

    /// After `handle_input` returned `Err`: whether the connection stays open and how many
    /// input bytes the refused request took. `None` before any refusal, and again once
    /// [`ServerHandshake::next_request`] has started the next request.
    #[must_use]
    pub fn after_reject(&self) -> Option<AfterReject> {
        self.after_reject
    }

    /// Starts reading the next request on the same connection after a refusal that keeps it
    /// open ([`AfterReject::keep_alive`]), keeping the count of refused requests. Returns false
    /// and changes nothing in every other state (nothing refused yet, an upgrade, or a refusal
    /// that closes).
    ///
    /// The caller first drops [`AfterReject::consumed`] bytes from its input; what is left is
    /// the start of the next request (it may be complete already, so call `handle_input` at
    /// once rather than waiting for a read). nats-server gives each request a fresh
    /// `handshake_timeout`, measured from when the previous response was written.
    pub fn next_request(&mut self) -> bool {
        if !self.after_reject.is_some_and(|after| after.keep_alive()) {
            return false;
        }
        *self = Self {
            rejected: self.rejected,
            ..Self::new(self.tls)
        };
        true
    }

    /// How many requests this connection has had refused so far.
    #[must_use]
    pub fn rejected_requests(&self) -> u32 {
        self.rejected
    }

    /// Go `net/http` after a handler response: keep an HTTP/1.1 connection unless the request
    /// says `Connection: close`; keep an HTTP/1.0 one only with `Connection: keep-alive` (and
    /// then say so). Go's canned refusals and the hijacked data-before-handshake case close.
    /// Ours on top: a request with a body, and the refusal that reaches
    /// [`Limits::max_rejected_requests`](crate::Limits), close too (`Connection: close`).
    fn decide_after_reject(
        &self,
        policy: &Policy,
        reject: &Reject,
    ) -> (AfterReject, Option<&'static [u8]>) {
        let Some(persistence) = self.persistence else {
            return (AfterReject::new(false, 0), None);
        };
        let consumed = persistence.head_len;
        if !reject.is_handler_response() || *reject == Reject::DataBeforeHandshake {
            return (AfterReject::new(false, consumed), None);
        }
        let http10 = self.facts.http10;
        let wanted = if http10 {
            persistence.keep_alive_10
        } else {
            !persistence.close
        };
        let under_cap = self.rejected < policy.limits().max_rejected_requests;
        if wanted && under_cap && !persistence.body {
            let connection: Option<&'static [u8]> = if http10 { Some(b"keep-alive") } else { None };
            return (AfterReject::new(true, consumed), connection);
        }
        let connection: Option<&'static [u8]> = if http10 { None } else { Some(b"close") };
        (AfterReject::new(false, consumed), connection)
    }

    /// True once [`ServerHandshake::handle_input`] has returned an upgrade or a rejection; the
    /// caller can then clear its `handshake_timeout` deadline (and arm a fresh one when
    /// [`ServerHandshake::next_request`] reads another request after a refusal).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn advance(
        &mut self,
        policy: &Policy,
        src: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Option<Upgrade>, Reject> {
        let limits = policy.limits();
        let polled = self.head.poll(src, limits).map_err(|error| match error {
            HeadError::TooLarge => Reject::HeadTooLarge,
            HeadError::TooManyLines => Reject::TooManyHeaders,
            HeadError::EmptyFirstLine => Reject::MalformedRequest,
        });
        // Refuse a bad request line at once rather than after the whole header block.
        if !self.line_checked
            && let Some(line_end) = self.head.first_line_end()
        {
            self.line_checked = true;
            let line = request_line(src.get(..line_end).unwrap_or_default())?;
            self.facts = RequestFacts {
                http10: line.http10,
                head_method: line.method == "HEAD",
            };
        }
        let Some(head_len) = polled? else {
            return Ok(None);
        };
        let head = src.get(..head_len).unwrap_or_default();
        let mut header_slots =
            vec![httparse::EMPTY_HEADER; self.head.header_lines().min(policy.limits().max_headers)];
        let mut request = httparse::Request::new(&mut header_slots);
        match request.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            Err(httparse::Error::TooManyHeaders) => return Err(Reject::TooManyHeaders),
            Err(httparse::Error::HeaderName) if every_header_line_has_colon(head) => {
                return Err(Reject::InvalidHeaderName);
            }
            Err(httparse::Error::HeaderValue) => return Err(Reject::InvalidHeaderValue),
            Ok(httparse::Status::Partial) | Err(_) => return Err(Reject::MalformedRequest),
        }
        let line = request_line(head)?;
        let headers = collect_headers(request.headers);
        self.persistence = Some(persistence(&headers, head_len, line.http10));
        let uri = parse_request_uri(line.target).map_err(|_| Reject::MalformedRequest)?;
        go_transfer_checks(&headers, line.http10)?;
        let request_host = go_server_host_checks(&headers, line.http10)?;
        // Go's server answers an `Expect` other than `100-continue` before the handler runs.
        let expect = first(&headers, "Expect");
        if !expect.is_empty() && !go_has_token(expect, b"100-continue") {
            return Err(Reject::ExpectationFailed);
        }
        let request_host = if uri.host.is_empty() {
            request_host
        } else {
            uri.host.clone()
        };
        let kind = PathKind::from_path(uri.path);
        let upgrade = validate(
            policy,
            &headers,
            ValidationInput {
                method: line.method,
                host: &request_host,
                kind,
                tls: self.tls,
                trailing: src.len() - head_len,
            },
        )?;
        let key = first(&headers, "Sec-WebSocket-Key");
        write_101(policy, key, &upgrade, out);
        Ok(Some(Upgrade {
            head_len,
            ..upgrade
        }))
    }
}

/// Checks the request line (Go's `parseRequestLine`, `ParseHTTPVersion`, `validMethod`, and
/// `http1ServerSupportsRequest`). `head` starts with the line.
fn request_line(head: &[u8]) -> Result<RequestLine<'_>, Reject> {
    let end = memchr::memchr(b'\n', head).unwrap_or(head.len());
    let line = head.get(..end).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = std::str::from_utf8(line).map_err(|_| Reject::MalformedRequest)?;
    let (method, rest) = line.split_once(' ').ok_or(Reject::MalformedRequest)?;
    let (target, version) = rest.split_once(' ').ok_or(Reject::MalformedRequest)?;
    let http10 = match version.as_bytes() {
        b"HTTP/1.1" => false,
        b"HTTP/1.0" => true,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            // Go accepts HTTP/1.2 to 1.9 as HTTP/1.x; the header parser here does not, so
            // those are refused as unsupported together with every other version.
            return Err(Reject::UnsupportedVersion);
        }
        _ => return Err(Reject::MalformedRequest),
    };
    if !is_token(method.as_bytes()) {
        return Err(Reject::MalformedRequest);
    }
    Ok(RequestLine {
        method,
        target,
        http10,
    })
}

/// The body framing checks of Go's `readTransfer`: `Transfer-Encoding` (ignored for HTTP/1.0)
/// must be one `chunked`, else 501; without it, every `Content-Length` must be the same
/// non-negative decimal number, else 400.
fn go_transfer_checks(headers: &[HeaderPair<'_>], http10: bool) -> Result<(), Reject> {
    let mut encodings = values(headers, "Transfer-Encoding");
    if let Some(encoding) = encodings.next()
        && !http10
    {
        if encodings.next().is_some() || !encoding.eq_ignore_ascii_case(b"chunked") {
            return Err(Reject::UnsupportedTransferEncoding);
        }
        return Ok(());
    }
    let mut lengths = values(headers, "Content-Length");
    let Some(length) = lengths.next() else {
        return Ok(());
    };
    if lengths.any(|other| other != length) {
        return Err(Reject::MalformedRequest);
    }
    // `strconv.ParseUint(cl, 10, 63)`: digits only, at most `i64::MAX`; empty means absent.
    let valid = length.iter().all(u8::is_ascii_digit)
        && std::str::from_utf8(length)
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
            .is_some_and(|value| i64::try_from(value).is_ok());
    if !length.is_empty() && !valid {
        return Err(Reject::MalformedRequest);
    }
    Ok(())
}

/// Reads what the request says about keeping the connection after a refusal.
fn persistence(headers: &[HeaderPair<'_>], head_len: usize, http10: bool) -> Persistence {
    let body = values(headers, "Transfer-Encoding").next().is_some()
        || values(headers, "Content-Length").any(|value| value.iter().any(|byte| *byte != b'0'));
    Persistence {
        head_len,
        close: has_token(headers, "Connection", "close"),
        keep_alive_10: http10 && go_has_token(first(headers, "Connection"), b"keep-alive"),
        body,
    }
}

/// Go's `net/http.hasToken`: `token` occurs in `value` case-insensitively, bounded by the
/// value's ends, spaces, tabs or commas.
fn go_has_token(value: &[u8], token: &[u8]) -> bool {
    let boundary = |byte: Option<&u8>| byte.is_none_or(|byte| matches!(byte, b' ' | b',' | b'\t'));
    if token.is_empty() {
        return false;
    }
    value
        .windows(token.len())
        .enumerate()
        .any(|(start, window)| {
            window.eq_ignore_ascii_case(token)
                && (start == 0 || boundary(value.get(start - 1)))
                && boundary(value.get(start + token.len()))
        })
}

/// Go answers a header line without `:` with a plain 400 and a bad name with "invalid header
/// name"; httparse reports both as a name error, so the lines are looked at once more.
fn every_header_line_has_colon(head: &[u8]) -> bool {
    head.split(|byte| *byte == b'\n')
        .skip(1)
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.is_empty())
        .all(|line| memchr::memchr(b':', line).is_some())
}

/// The `Host` checks Go's HTTP server makes before the handler runs. Returns the `Host` value.
fn go_server_host_checks(headers: &[HeaderPair<'_>], http10: bool) -> Result<String, Reject> {
    let mut hosts = values(headers, "Host");
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(Reject::MalformedRequest);
    }
    let Some(host) = host else {
        if http10 {
            return Ok(String::new());
        }
        return Err(Reject::MissingHostHeader);
    };
    if !host.iter().all(|byte| valid_host_byte(*byte)) {
        return Err(Reject::MalformedHostHeader);
    }
    // Only ASCII is left, so the conversion is exact.
    Ok(String::from_utf8_lossy(host).into_owned())
}

/// Go's `httpguts.validHostByte`.
fn valid_host_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'!' | b'$'
                | b'%'
                | b'&'
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'-'
                | b'.'
                | b':'
                | b';'
                | b'='
                | b'['
                | b'\''
                | b']'
                | b'_'
                | b'~'
        )
}

/// What [`validate`] needs besides the headers.
#[derive(Debug, Clone, Copy)]
struct ValidationInput<'a> {
    method: &'a str,
    host: &'a str,
    kind: PathKind,
    tls: bool,
    trailing: usize,
}

/// nats-server's `wsUpgrade` checks, in its order, then the negotiation.
fn validate(
    policy: &Policy,
    headers: &[HeaderPair<'_>],
    input: ValidationInput<'_>,
) -> Result<Upgrade, Reject> {
    if policy.reject_mqtt && input.kind == PathKind::Mqtt {
        return Err(Reject::MqttNotEnabled);
    }
    if input.method != "GET" {
        return Err(Reject::MethodNotGet);
    }
    if input.host.is_empty() {
        return Err(Reject::HostMissing);
    }
    if !has_token(headers, "Upgrade", "websocket") {
        return Err(Reject::InvalidUpgrade);
    }
    if !has_token(headers, "Connection", "Upgrade") {
        return Err(Reject::InvalidConnection);
    }
    if first(headers, "Sec-WebSocket-Key").is_empty() {
        return Err(Reject::KeyMissing);
    }
    if !has_token(headers, "Sec-WebSocket-Version", "13") {
        return Err(Reject::InvalidVersion);
    }
    policy
        .check_origin(headers, input.host, input.tls)
        .map_err(Reject::OriginNotAllowed)?;
    if input.trailing > 0 {
        return Err(Reject::DataBeforeHandshake);
    }
    let compression = policy.compression && deflate_offer(headers).offered;
    let no_masking = first(headers, "Nats-No-Masking") == b"true";
    let forwarded_for = forwarded_for(first(headers, "X-Forwarded-For"));
    let mut upgrade = Upgrade {
        head_len: 0,
        kind: input.kind,
        compression,
        no_masking,
        browser: false,
        safari_no_compressed_fragments: false,
        cookies: Cookies::default(),
        forwarded_for,
    };
    if input.kind != PathKind::Leaf {
        let user_agent = first(headers, "User-Agent");
        if user_agent.starts_with(b"Mozilla/") {
            upgrade.browser = true;
            upgrade.safari_no_compressed_fragments = compression
                && memchr::memmem::find(user_agent, b"Version/").is_some()
                && memchr::memmem::find(user_agent, b"Safari/").is_some();
        }
        upgrade.cookies = extract(headers, &policy.cookie_names);
    }
    Ok(upgrade)
}

/// The left-most entry of an `X-Forwarded-For` value (`client, proxy1, proxy2`) that is an IP
/// address. nats-server only accepts a value that is one address as a whole.
pub(crate) fn forwarded_for(value: &[u8]) -> Option<IpAddr> {
    value.split(|byte| *byte == b',').find_map(|entry| {
        std::str::from_utf8(crate::head::trim_ows(entry))
            .ok()?
            .parse::<IpAddr>()
            .ok()
    })
}

/// `base64(SHA-1(key + GUID))`, over the key exactly as received (RFC 6455 §4.2.2).
#[must_use]
pub fn accept_key(key: &[u8]) -> String {
    let mut text = String::with_capacity(28);
    STANDARD.encode_string(accept_digest(key), &mut text);
    text
}

fn accept_digest(key: &[u8]) -> [u8; 20] {
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(key);
    sha1.update(WS_GUID);
    sha1.digest().bytes()
}

/// Appends the `101` response (as `wsUpgrade` writes it) to `out`.
fn write_101(policy: &Policy, key: &[u8], upgrade: &Upgrade, out: &mut Vec<u8>) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    let mut encoded = [0u8; 28];
    let len = STANDARD
        .encode_slice(accept_digest(key), &mut encoded)
        .unwrap_or(0);
    out.extend_from_slice(encoded.get(..len).unwrap_or_default());
    out.extend_from_slice(b"\r\n");
    if upgrade.compression {
        out.extend_from_slice(PMC_RESPONSE);
    }
    if upgrade.no_masking {
        out.extend_from_slice(NO_MASKING_RESPONSE);
    }
    if upgrade.kind == PathKind::Mqtt {
        out.extend_from_slice(MQTT_PROTOCOL_RESPONSE);
    }
    out.extend_from_slice(&policy.extra_headers);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod keep_alive_tests;
