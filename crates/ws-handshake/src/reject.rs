//! Why an upgrade request was refused, and the exact HTTP response for each reason.
//!
//! There are two response shapes, because nats-server produces its errors in two places (Go's
//! `net/http` server before the handler runs, and `server/websocket.go` `wsReturnHTTPError`):
//!
//! - Go's HTTP server refuses requests it cannot read (bad syntax, a header block that is too
//!   large, an unsupported version, a missing or malformed `Host`) with a short canned response
//!   that always says `HTTP/1.1` and `Connection: close`.
//! - The upgrade handler refuses requests it can read with `http.Error`: the status line uses the
//!   request's HTTP version, the headers carry `Sec-Websocket-Version: 13` and a `Date`, and the
//!   body is the reason phrase plus `\n` (no body for `HEAD`).
//!
//! [`Reject::status`] and [`Reject::write_response`] are the only places that decide what goes on
//! the wire; `Display` is for logs and gives the reference's logged reason.

use std::fmt;

use crate::date::write_http_date;

/// Why a WebSocket upgrade request was refused.
///
/// Whether the connection stays open after the response is not a property of the reason alone
/// (it also depends on the request's version, its `Connection` header, a body, and how many
/// requests the connection had refused before): [`ServerHandshake::after_reject`] says it.
/// A caller that writes a response itself with [`Reject::write_response`] closes afterwards.
///
/// [`ServerHandshake::after_reject`]: crate::ServerHandshake::after_reject
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reject {
    /// The request line or a header line is not valid HTTP/1.x (canned 400).
    MalformedRequest,
    /// The header block did not end within [`Limits::max_head_bytes`](crate::Limits) (canned 431).
    HeadTooLarge,
    /// More header lines than [`Limits::max_headers`](crate::Limits) (canned 431).
    TooManyHeaders,
    /// The request line names an HTTP version other than 1.0 or 1.1 (canned 505).
    UnsupportedVersion,
    /// An HTTP/1.1 request without a `Host` header (canned 400).
    MissingHostHeader,
    /// A `Host` header with bytes that are not allowed in a host (canned 400).
    MalformedHostHeader,
    /// A header name that is not a token (canned 400).
    InvalidHeaderName,
    /// A header value with a control byte (canned 400).
    InvalidHeaderValue,
    /// A `Transfer-Encoding` other than one `chunked` on an HTTP/1.1 request (canned 501).
    UnsupportedTransferEncoding,
    /// An `Expect` header other than `100-continue` (Go's 417, sent before the handler runs).
    ExpectationFailed,
    /// The path is `/mqtt...` and the policy refuses MQTT (404, newer nats-server behaviour).
    MqttNotEnabled,
    /// The method is not exactly `GET` (405).
    MethodNotGet,
    /// The request's host is empty (400).
    HostMissing,
    /// No `Upgrade` header has the token `websocket` (400).
    InvalidUpgrade,
    /// No `Connection` header has the token `Upgrade` (400).
    InvalidConnection,
    /// `Sec-WebSocket-Key` is missing or empty (400).
    KeyMissing,
    /// No `Sec-WebSocket-Version` header has the token `13` (400).
    InvalidVersion,
    /// The origin check failed (403). The text is the reference's detail, for the log.
    OriginNotAllowed(String),
    /// Bytes followed the request before the `101` was sent (400).
    DataBeforeHandshake,
}

/// What the connection does once a rejection's response has been flushed, from
/// [`ServerHandshake::after_reject`](crate::ServerHandshake::after_reject).
///
/// nats-server's HTTP server (Go `net/http`) keeps an HTTP/1.1 connection open after the upgrade
/// handler's 4xx (`wsReturnHTTPError`), so a client may send a corrected upgrade on the same
/// connection, pipelined or later. It closes after Go's own canned errors (unreadable request,
/// 431, 505, `Host` problems), after HTTP/1.0 requests without `Connection: keep-alive`, and
/// after requests whose `Connection` says `close`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterReject {
    keep_alive: bool,
    consumed: usize,
}

impl AfterReject {
    pub(crate) fn new(keep_alive: bool, consumed: usize) -> Self {
        Self {
            keep_alive,
            consumed,
        }
    }

    /// True when the connection stays open for another request: drop
    /// [`AfterReject::consumed`] bytes from the input, call
    /// [`ServerHandshake::next_request`](crate::ServerHandshake::next_request), and feed the
    /// rest (a pipelined request may already be there) to `handle_input` at once. False: flush
    /// the response and close.
    #[must_use]
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Bytes at the start of the input that the refused request took (its header block).
    /// Exact when [`AfterReject::keep_alive`] is true; when it is false the connection closes
    /// and this is 0 if the header block never ended or was unreadable.
    #[must_use]
    pub fn consumed(&self) -> usize {
        self.consumed
    }
}

/// Which of the two response shapes a rejection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Go's HTTP server: `HTTP/1.1 <code> <text>[: <detail>]`, `Connection: close`.
    Canned(Option<&'static str>),
    /// Go's HTTP server, 501: like `Canned`, with its own body.
    UnsupportedTransferEncoding,
    /// Go's `sendExpectationFailed`: a normal response with `Connection: close` and no body.
    ExpectationFailed,
    /// nats-server's `wsReturnHTTPError` (`http.Error`).
    Handler,
}

/// What the response writer needs to know about the refused request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestFacts {
    /// The request said `HTTP/1.0` (the handler's status line echoes it).
    pub http10: bool,
    /// The method was `HEAD` (the handler's response then has no body).
    pub head_method: bool,
}

impl Reject {
    /// The HTTP status code sent for this rejection.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            Self::MalformedRequest
            | Self::MissingHostHeader
            | Self::MalformedHostHeader
            | Self::InvalidHeaderName
            | Self::InvalidHeaderValue
            | Self::HostMissing
            | Self::InvalidUpgrade
            | Self::InvalidConnection
            | Self::KeyMissing
            | Self::InvalidVersion
            | Self::DataBeforeHandshake => 400,
            Self::HeadTooLarge | Self::TooManyHeaders => 431,
            Self::UnsupportedTransferEncoding => 501,
            Self::ExpectationFailed => 417,
            Self::UnsupportedVersion => 505,
            Self::MqttNotEnabled => 404,
            Self::MethodNotGet => 405,
            Self::OriginNotAllowed(_) => 403,
        }
    }

    /// The standard reason phrase of [`Reject::status`] (Go's `http.StatusText`).
    #[must_use]
    pub fn reason_phrase(&self) -> &'static str {
        match self.status() {
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            417 => "Expectation Failed",
            501 => "Not Implemented",
            431 => "Request Header Fields Too Large",
            505 => "HTTP Version Not Supported",
            _ => "Bad Request",
        }
    }

    /// True for the upgrade handler's refusals (the ones a connection may survive), false for
    /// Go's canned HTTP-layer refusals.
    pub(crate) fn is_handler_response(&self) -> bool {
        self.shape() == Shape::Handler
    }

    fn shape(&self) -> Shape {
        match self {
            Self::MalformedRequest | Self::HeadTooLarge | Self::TooManyHeaders => {
                Shape::Canned(None)
            }
            Self::UnsupportedVersion => Shape::Canned(Some("unsupported protocol version")),
            Self::UnsupportedTransferEncoding => Shape::UnsupportedTransferEncoding,
            Self::ExpectationFailed => Shape::ExpectationFailed,
            Self::MissingHostHeader => Shape::Canned(Some("missing required Host header")),
            Self::MalformedHostHeader => Shape::Canned(Some("malformed Host header")),
            Self::InvalidHeaderName => Shape::Canned(Some("invalid header name")),
            Self::InvalidHeaderValue => Shape::Canned(Some("invalid header value")),
            Self::MqttNotEnabled
            | Self::MethodNotGet
            | Self::HostMissing
            | Self::InvalidUpgrade
            | Self::InvalidConnection
            | Self::KeyMissing
            | Self::InvalidVersion
            | Self::OriginNotAllowed(_)
            | Self::DataBeforeHandshake => Shape::Handler,
        }
    }

    /// Appends the complete HTTP response for this rejection to `out`.
    ///
    /// `unix_time_secs` is the current time for the `Date` header of handler responses; `None`
    /// leaves the header out (the crate never reads the clock).
    pub fn write_response(
        &self,
        facts: RequestFacts,
        unix_time_secs: Option<u64>,
        out: &mut Vec<u8>,
    ) {
        self.write_response_with_connection(facts, unix_time_secs, None, out);
    }

    /// [`Reject::write_response`], with a `Connection: <connection>` line after
    /// `Content-Length` in a handler response, where Go's `net/http` puts the `close` or
    /// `keep-alive` it adds. Canned responses always say `Connection: close` already.
    pub(crate) fn write_response_with_connection(
        &self,
        facts: RequestFacts,
        unix_time_secs: Option<u64>,
        connection: Option<&[u8]>,
        out: &mut Vec<u8>,
    ) {
        let code = self.status();
        let text = self.reason_phrase();
        match self.shape() {
            Shape::Canned(detail) => {
                let mut first = format!("{code} {text}");
                if let Some(detail) = detail {
                    first.push_str(": ");
                    first.push_str(detail);
                }
                out.extend_from_slice(b"HTTP/1.1 ");
                out.extend_from_slice(first.as_bytes());
                out.extend_from_slice(
                    b"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n",
                );
                out.extend_from_slice(first.as_bytes());
            }
            Shape::UnsupportedTransferEncoding => {
                out.extend_from_slice(
                    b"HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain; charset=utf-8\r\n\
                      Connection: close\r\n\r\nUnsupported transfer encoding",
                );
            }
            Shape::ExpectationFailed => {
                out.extend_from_slice(if facts.http10 {
                    b"HTTP/1.0 "
                } else {
                    b"HTTP/1.1 "
                });
                out.extend_from_slice(b"417 Expectation Failed\r\nConnection: close\r\n");
                if let Some(secs) = unix_time_secs {
                    out.extend_from_slice(b"Date: ");
                    write_http_date(secs, out);
                    out.extend_from_slice(b"\r\n");
                }
                if !facts.head_method {
                    out.extend_from_slice(b"Content-Length: 0\r\n");
                }
                out.extend_from_slice(b"\r\n");
            }
            Shape::Handler => {
                out.extend_from_slice(if facts.http10 {
                    b"HTTP/1.0 "
                } else {
                    b"HTTP/1.1 "
                });
                out.extend_from_slice(format!("{code} {text}").as_bytes());
                out.extend_from_slice(
                    b"\r\nContent-Type: text/plain; charset=utf-8\r\n\
                      Sec-Websocket-Version: 13\r\n\
                      X-Content-Type-Options: nosniff\r\n",
                );
                if let Some(secs) = unix_time_secs {
                    out.extend_from_slice(b"Date: ");
                    write_http_date(secs, out);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(format!("Content-Length: {}\r\n", text.len() + 1).as_bytes());
                if let Some(connection) = connection {
                    out.extend_from_slice(b"Connection: ");
                    out.extend_from_slice(connection);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"\r\n");
                if !facts.head_method {
                    out.extend_from_slice(text.as_bytes());
                    out.push(b'\n');
                }
            }
        }
    }
}

impl fmt::Display for Reject {
    /// The reason nats-server logs (`<addr> - websocket handshake error: <reason>`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MalformedRequest => f.write_str("malformed HTTP request"),
            Self::HeadTooLarge => f.write_str("request header fields too large"),
            Self::TooManyHeaders => f.write_str("too many request header fields"),
            Self::UnsupportedVersion => f.write_str("unsupported protocol version"),
            Self::UnsupportedTransferEncoding => f.write_str("unsupported transfer encoding"),
            Self::ExpectationFailed => f.write_str("unsupported Expect header"),
            Self::MissingHostHeader => f.write_str("missing required Host header"),
            Self::MalformedHostHeader => f.write_str("malformed Host header"),
            Self::InvalidHeaderName => f.write_str("invalid header name"),
            Self::InvalidHeaderValue => f.write_str("invalid header value"),
            Self::MqttNotEnabled => f.write_str("mqtt websocket endpoint not enabled"),
            Self::MethodNotGet => f.write_str("request method must be GET"),
            Self::HostMissing => f.write_str("'Host' missing in request"),
            Self::InvalidUpgrade => f.write_str("invalid value for header 'Upgrade'"),
            Self::InvalidConnection => f.write_str("invalid value for header 'Connection'"),
            Self::KeyMissing => f.write_str("key missing"),
            Self::InvalidVersion => f.write_str("invalid version"),
            Self::OriginNotAllowed(detail) => write!(f, "origin not allowed: {detail}"),
            Self::DataBeforeHandshake => {
                f.write_str("client sent data before handshake is complete")
            }
        }
    }
}

impl std::error::Error for Reject {}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(reject: &Reject, facts: RequestFacts, expect: &str) {
        let mut out = Vec::new();
        reject.write_response(facts, Some(1_795_426_914), &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), expect);
    }

    #[test]
    fn handler_shape_matches_spec_example() {
        check(
            &Reject::MethodNotGet,
            RequestFacts::default(),
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Sec-Websocket-Version: 13\r\nX-Content-Type-Options: nosniff\r\n\
             Date: Mon, 23 Nov 2026 09:41:54 GMT\r\nContent-Length: 19\r\n\r\nMethod Not Allowed\n",
        );
    }

    #[test]
    fn head_and_http10() {
        check(
            &Reject::HostMissing,
            RequestFacts {
                http10: true,
                head_method: true,
            },
            "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Sec-Websocket-Version: 13\r\nX-Content-Type-Options: nosniff\r\n\
             Date: Mon, 23 Nov 2026 09:41:54 GMT\r\nContent-Length: 12\r\n\r\n",
        );
    }

    #[test]
    fn canned_shapes() {
        check(
            &Reject::MissingHostHeader,
            RequestFacts::default(),
            "HTTP/1.1 400 Bad Request: missing required Host header\r\n\
             Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n\
             400 Bad Request: missing required Host header",
        );
        check(
            &Reject::HeadTooLarge,
            RequestFacts {
                http10: true,
                head_method: true,
            },
            "HTTP/1.1 431 Request Header Fields Too Large\r\n\
             Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n\
             431 Request Header Fields Too Large",
        );
    }

    #[test]
    fn display_is_the_logged_reason() {
        assert_eq!(
            Reject::OriginNotAllowed("not same origin".into()).to_string(),
            "origin not allowed: not same origin"
        );
        assert_eq!(Reject::KeyMissing.to_string(), "key missing");
    }
}
