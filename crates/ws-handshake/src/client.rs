//! The client side: the upgrade request a soliciting leafnode sends, and the checks on the `101`
//! it gets back (nats-server's `server/leafnode.go` `leafNodeSolicitWSConnection`).
//!
//! Used by natsws for its own outbound leafnode connections, and by tests and benchmarks that
//! need a WebSocket client.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::Limits;
use crate::head::{HeadError, HeadReader, collect_headers, deflate_offer, first};
use crate::policy::is_token;
use crate::server::accept_key;

/// What to put in the upgrade request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientRequest<'a> {
    /// The request target, e.g. [`leaf_path`]`("")` = `/leafnode`.
    pub path: &'a str,
    /// The `Host` header: `host:port` of the remote.
    pub host: &'a str,
    /// The `User-Agent` header (nats-server sends `Go-http-client/1.1`).
    pub user_agent: &'a str,
    /// Offer `permessage-deflate` (the leaf remote's `ws_compression`).
    pub compression: bool,
    /// Ask for `Nats-No-Masking: true` (the leaf remote's `ws_no_masking`).
    pub no_masking: bool,
    /// More headers, written after the standard ones (for example `Origin` or `Cookie`).
    pub extra_headers: &'a [(&'a str, &'a str)],
}

impl Default for ClientRequest<'_> {
    fn default() -> Self {
        Self {
            path: "/",
            host: "localhost",
            user_agent: "Go-http-client/1.1",
            compression: false,
            no_masking: false,
            extra_headers: &[],
        }
    }
}

/// The path a soliciting leafnode uses: `/leafnode` followed by the remote URL's path without
/// its leading `/` (v2.9.10: `ws://h/some/path` gives `/leafnodesome/path`).
#[must_use]
pub fn leaf_path(url_path: &str) -> String {
    let rest = url_path.strip_prefix('/').unwrap_or(url_path);
    format!("/leafnode{rest}")
}

/// What the server agreed to in its `101`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Bytes of the input taken by the response. Anything after them is already WebSocket data
    /// (nats-server sends the INFO frame in the same segment).
    pub head_len: usize,
    /// `permessage-deflate` with no context takeover both ways is in use.
    pub compression: bool,
    /// Frames this client writes must be masked (the server did not agree to no-masking).
    pub mask_writes: bool,
}

/// Why the client side of the upgrade failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// A request field would break the HTTP framing (not a token, or a control byte).
    InvalidRequest {
        /// The offending field.
        field: String,
    },
    /// The response is not valid HTTP/1.x.
    Malformed,
    /// The response header block did not end within the byte limit.
    HeadTooLarge,
    /// The response has more header lines than the limit.
    TooManyHeaders,
    /// The status is not `101`.
    NotSwitchingProtocols {
        /// The status received.
        status: u16,
    },
    /// `Upgrade` is not `websocket`.
    InvalidUpgrade,
    /// `Connection` is not `upgrade`.
    InvalidConnection,
    /// `Sec-WebSocket-Accept` does not match the key.
    InvalidAccept,
    /// The server agreed to `permessage-deflate` without both no-context-takeover parameters.
    CompressionNegotiation,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidRequest { field } => {
                write!(f, "invalid websocket request field {field:?}")
            }
            Self::Malformed => f.write_str("invalid websocket connection: malformed HTTP response"),
            Self::HeadTooLarge => {
                f.write_str("invalid websocket connection: response header too large")
            }
            Self::TooManyHeaders => {
                f.write_str("invalid websocket connection: too many response headers")
            }
            Self::NotSwitchingProtocols { status } => {
                write!(f, "invalid websocket connection: status {status}")
            }
            Self::InvalidUpgrade => {
                f.write_str("invalid websocket connection: bad 'Upgrade' header")
            }
            Self::InvalidConnection => {
                f.write_str("invalid websocket connection: bad 'Connection' header")
            }
            Self::InvalidAccept => {
                f.write_str("invalid websocket connection: bad 'Sec-WebSocket-Accept' header")
            }
            Self::CompressionNegotiation => f.write_str("compression negotiation error"),
        }
    }
}

impl std::error::Error for ResponseError {}

/// One outbound upgrade: writes the request, then reads and checks the response.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    expected_accept: String,
    compression: bool,
    no_masking: bool,
    limits: Limits,
    head: HeadReader,
    finished: bool,
}

impl ClientHandshake {
    /// Appends the upgrade request to `out` and returns the reader for the response.
    ///
    /// `nonce` must be 16 fresh random bytes (RFC 6455 §4.1); the caller supplies them because
    /// this crate has no random source. The bytes match what nats-server's leafnode sends.
    pub fn new(
        request: &ClientRequest<'_>,
        nonce: &[u8; 16],
        limits: Limits,
        out: &mut Vec<u8>,
    ) -> Result<Self, ResponseError> {
        let plain = |field: &str, value: &str| {
            if value
                .bytes()
                .any(|byte| byte < 0x20 && byte != b'\t' || byte == 0x7f)
            {
                Err(ResponseError::InvalidRequest {
                    field: field.to_owned(),
                })
            } else {
                Ok(())
            }
        };
        if request.path.is_empty() || request.path.contains(' ') {
            return Err(ResponseError::InvalidRequest {
                field: "path".to_owned(),
            });
        }
        plain("path", request.path)?;
        plain("host", request.host)?;
        plain("user_agent", request.user_agent)?;
        for (name, value) in request.extra_headers {
            if !is_token(name.as_bytes()) {
                return Err(ResponseError::InvalidRequest {
                    field: (*name).to_owned(),
                });
            }
            plain(name, value)?;
        }
        let key = STANDARD.encode(nonce);
        out.extend_from_slice(b"GET ");
        out.extend_from_slice(request.path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        let mut line = |name: &str, value: &str| {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        };
        // Go's `Request.Write` order: Host, User-Agent, then the headers sorted by name.
        line("Host", request.host);
        line("User-Agent", request.user_agent);
        line("Connection", "Upgrade");
        if request.no_masking {
            line("Nats-No-Masking", "true");
        }
        line("Sec-WebSocket-Key", &key);
        line("Sec-WebSocket-Version", "13");
        if request.compression {
            line(
                "Sec-Websocket-Extensions",
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            );
        }
        for (name, value) in request.extra_headers {
            line(name, value);
        }
        line("Upgrade", "websocket");
        out.extend_from_slice(b"\r\n");
        Ok(Self {
            expected_accept: accept_key(key.as_bytes()),
            compression: request.compression,
            no_masking: request.no_masking,
            limits,
            head: HeadReader::default(),
            finished: false,
        })
    }

    /// Reads the response from `src`: every byte received so far. Between calls the caller only
    /// appends to `src`.
    ///
    /// - `Ok(None)`: more input is needed.
    /// - `Ok(Some(accepted))`: the upgrade is done; drop `accepted.head_len` bytes and read
    ///   frames from the rest.
    /// - `Err(error)`: close the connection.
    ///
    /// After it has returned something other than `Ok(None)` it returns `Ok(None)`.
    pub fn handle_input(&mut self, src: &[u8]) -> Result<Option<Accepted>, ResponseError> {
        if self.finished {
            return Ok(None);
        }
        let res = self.advance(src);
        if !matches!(res, Ok(None)) {
            self.finished = true;
        }
        res
    }

    fn advance(&mut self, src: &[u8]) -> Result<Option<Accepted>, ResponseError> {
        let polled = self
            .head
            .poll(src, &self.limits)
            .map_err(|error| match error {
                HeadError::TooLarge => ResponseError::HeadTooLarge,
                HeadError::TooManyLines => ResponseError::TooManyHeaders,
                HeadError::EmptyFirstLine => ResponseError::Malformed,
            })?;
        let Some(head_len) = polled else {
            return Ok(None);
        };
        let head = src.get(..head_len).unwrap_or_default();
        let mut header_slots =
            vec![httparse::EMPTY_HEADER; self.head.header_lines().min(self.limits.max_headers)];
        let mut response = httparse::Response::new(&mut header_slots);
        match response.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::TooManyHeaders),
            Ok(httparse::Status::Partial) | Err(_) => return Err(ResponseError::Malformed),
        }
        let status = response.code.unwrap_or(0);
        let headers = collect_headers(response.headers);
        if status != 101 {
            return Err(ResponseError::NotSwitchingProtocols { status });
        }
        if !first(&headers, "Upgrade").eq_ignore_ascii_case(b"websocket") {
            return Err(ResponseError::InvalidUpgrade);
        }
        if !first(&headers, "Connection").eq_ignore_ascii_case(b"upgrade") {
            return Err(ResponseError::InvalidConnection);
        }
        if first(&headers, "Sec-WebSocket-Accept") != self.expected_accept.as_bytes() {
            return Err(ResponseError::InvalidAccept);
        }
        let mut compression = false;
        if self.compression {
            let offer = deflate_offer(&headers);
            if offer.offered && !offer.no_context_takeover {
                return Err(ResponseError::CompressionNegotiation);
            }
            compression = offer.offered;
        }
        let no_masking = self.no_masking && first(&headers, "Nats-No-Masking") == b"true";
        Ok(Some(Accepted {
            head_len,
            compression,
            mask_writes: !no_masking,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: [u8; 16] = *b"the sample nonce";

    fn request(request: &ClientRequest<'_>) -> String {
        let mut out = Vec::new();
        ClientHandshake::new(request, &NONCE, Limits::default(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn request_bytes_match_the_leafnode_solicitor() {
        assert_eq!(
            request(&ClientRequest {
                path: &leaf_path("/some/path"),
                host: "127.0.0.1:7422",
                compression: true,
                no_masking: true,
                ..ClientRequest::default()
            }),
            "GET /leafnodesome/path HTTP/1.1\r\nHost: 127.0.0.1:7422\r\n\
             User-Agent: Go-http-client/1.1\r\nConnection: Upgrade\r\nNats-No-Masking: true\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-Websocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n\
             Upgrade: websocket\r\n\r\n"
        );
        assert_eq!(
            request(&ClientRequest {
                extra_headers: &[("Origin", "http://a.com")],
                ..ClientRequest::default()
            }),
            "GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Go-http-client/1.1\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nOrigin: http://a.com\r\nUpgrade: websocket\r\n\r\n"
        );
    }

    #[test]
    fn request_fields_cannot_inject_lines() {
        let mut out = Vec::new();
        for bad in [
            ClientRequest {
                host: "h\r\nX: y",
                ..ClientRequest::default()
            },
            ClientRequest {
                path: "/a b",
                ..ClientRequest::default()
            },
            ClientRequest {
                extra_headers: &[("X Y", "v")],
                ..ClientRequest::default()
            },
            ClientRequest {
                extra_headers: &[("X", "v\n")],
                ..ClientRequest::default()
            },
        ] {
            assert!(ClientHandshake::new(&bad, &NONCE, Limits::default(), &mut out).is_err());
        }
        assert!(out.is_empty());
    }

    fn check(
        compression: bool,
        no_masking: bool,
        response: &str,
        expect: Result<Option<Accepted>, ResponseError>,
    ) {
        let mut out = Vec::new();
        let request = ClientRequest {
            compression,
            no_masking,
            ..ClientRequest::default()
        };
        let mut handshake =
            ClientHandshake::new(&request, &NONCE, Limits::default(), &mut out).unwrap();
        assert_eq!(
            handshake.handle_input(response.as_bytes()),
            expect,
            "{response}"
        );
    }

    const OK: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";

    #[test]
    fn responses() {
        let accepted = |head_len, compression, mask_writes| {
            Ok(Some(Accepted {
                head_len,
                compression,
                mask_writes,
            }))
        };
        check(
            false,
            false,
            &format!("{OK}\r\n"),
            accepted(OK.len() + 2, false, true),
        );
        check(
            false,
            false,
            &format!("{OK}\r\n\u{82}\u{1}x"),
            accepted(OK.len() + 2, false, true),
        );
        check(false, false, OK, Ok(None));
        check(
            true,
            true,
            &format!(
                "{OK}Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\nNats-No-Masking: true\r\n\r\n"
            ),
            accepted(OK.len() + 127, true, false),
        );
        check(
            true,
            true,
            &format!("{OK}\r\n"),
            accepted(OK.len() + 2, false, true),
        );
        check(
            true,
            false,
            &format!("{OK}Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"),
            Err(ResponseError::CompressionNegotiation),
        );
        check(
            false,
            false,
            &format!("{OK}Nats-No-Masking: true\r\n\r\n"),
            accepted(OK.len() + 25, false, true),
        );
        check(
            false,
            false,
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
            Err(ResponseError::NotSwitchingProtocols { status: 400 }),
        );
        check(
            false,
            false,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket, x\r\nConnection: Upgrade\r\n\r\n",
            Err(ResponseError::InvalidUpgrade),
        );
        check(
            false,
            false,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\r\n",
            Err(ResponseError::InvalidConnection),
        );
        check(
            false,
            false,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n",
            Err(ResponseError::InvalidAccept),
        );
        check(
            false,
            false,
            "HTTP/1.1 1x1 Nope\r\n\r\n",
            Err(ResponseError::Malformed),
        );
        check(false, false, "\r\n", Err(ResponseError::Malformed));
    }
}
