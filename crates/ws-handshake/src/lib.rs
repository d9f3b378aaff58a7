//! The WebSocket HTTP/1.1 upgrade (RFC 6455 §4), sans-IO, with nats-server 2.9.10's behaviour.
//!
//! Bytes in, a decision out: [`ServerHandshake`] reads an upgrade request incrementally,
//! validates it in the reference's order (method, Host, `Upgrade`, `Connection`, key, version,
//! Origin), negotiates `permessage-deflate` and `Nats-No-Masking`, and appends either the `101`
//! or the exact HTTP error response to a buffer the caller owns. [`ClientHandshake`] is the other
//! side, as a soliciting leafnode uses it.
//!
//! What it deliberately does not do: no sockets, no TLS, no clock (the `Date` of error responses
//! is passed in), no randomness (the client's nonce is passed in), no logging, no WebSocket
//! framing (that is `ws-codec`), and no HTTP beyond the upgrade. Work is linear in the input over
//! any sequence of reads, and nothing past [`Limits::max_head_bytes`] is ever looked at.
//!
//! Main types:
//! - [`Options`] → [`Policy::new`] → [`Policy`]: the listener's validated configuration
//!   (origins, compression, cookie names, extra `101` headers, limits).
//! - [`ServerHandshake`]: one per accepted connection; [`Upgrade`] is what was agreed
//!   ([`PathKind`], compression, no-masking, browser facts, [`Cookies`], `X-Forwarded-For`).
//! - [`Reject`]: why a request was refused; [`Reject::status`] and [`Reject::write_response`]
//!   decide what goes on the wire. [`AfterReject`] (from [`ServerHandshake::after_reject`]) says
//!   whether the connection stays open for another request and how many input bytes the refused
//!   one took; [`ServerHandshake::next_request`] starts the next one.
//! - [`ClientHandshake`], [`ClientRequest`], [`Accepted`]: the outbound upgrade.
//! - [`write_http_date`]: the `Date` header value of the error responses, for any other HTTP
//!   response the caller writes.
//!
//! ```
//! use ws_handshake::{Options, PathKind, Policy, ServerHandshake};
//!
//! let policy = Policy::new(&Options { compression: true, ..Options::default() })?;
//! let mut handshake = ServerHandshake::new(false);
//! let request = b"GET / HTTP/1.1\r\nHost: localhost:8080\r\nUpgrade: websocket\r\n\
//!     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//!     Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
//! let mut out = Vec::new();
//!
//! // The request may arrive in pieces; feed everything received so far each time.
//! assert_eq!(handshake.handle_input(&policy, &request[..20], None, &mut out), Ok(None));
//! let upgrade = handshake.handle_input(&policy, request, None, &mut out)?.expect("complete");
//! assert_eq!(upgrade.kind, PathKind::Client);
//! assert!(upgrade.compression);
//! assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
//!
//! // A refused request keeps an HTTP/1.1 connection open, as nats-server does: drop the bytes
//! // it took and read the next request (here pipelined right behind it) on the same connection.
//! let mut handshake = ServerHandshake::new(false);
//! let refused = String::from_utf8(request.to_vec())?.replace("Version: 13", "Version: 99");
//! let mut received = refused.into_bytes();
//! received.extend_from_slice(request);
//! let mut out = Vec::new();
//! let reject = handshake.handle_input(&policy, &received, None, &mut out).unwrap_err();
//! assert_eq!(reject.status(), 400);
//! let after = handshake.after_reject().expect("set after a refusal");
//! assert!(after.keep_alive());
//! received.drain(..after.consumed());
//! assert!(handshake.next_request());
//! assert!(handshake.handle_input(&policy, &received, None, &mut out)?.is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Deliberate differences from nats-server 2.9.10 (details in the README): at most
//! [`Limits::max_rejected_requests`] refused requests per connection (nats-server has no
//! limit); a refused request with a body closes the connection; configurable header limits; the
//! 400 for data sent before the `101`; the origin scheme is compared; optional MQTT 404;
//! `HTTP/1.2`–`1.9` get 505.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::print_stdout, clippy::print_stderr)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod client;
mod cookie;
mod date;
mod head;
mod policy;
mod reject;
mod server;
mod uri;

#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;

pub use client::{Accepted, ClientHandshake, ClientRequest, ResponseError, leaf_path};
pub use cookie::Cookies;
pub use date::write_http_date;
pub use policy::{AllowedOrigin, Options, Policy, PolicyError};
pub use reject::{AfterReject, Reject, RequestFacts};
pub use server::{PathKind, ServerHandshake, Upgrade, accept_key};

/// Size limits for reading an upgrade request or response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes the header block (request line, headers, blank line) may take. Go's HTTP
    /// server, which nats-server uses, allows `DefaultMaxHeaderBytes` (1 MiB) plus 4096 bytes of
    /// slack, and answers 431 beyond that.
    pub max_head_bytes: usize,
    /// The most header lines. Go has no such limit (only `max_head_bytes`); the default, 8192,
    /// is far above what browsers, proxies and NATS clients send (about 15) and what
    /// nats-server was seen to accept (200). The header table is sized by the lines actually
    /// received, 32 bytes each.
    pub max_headers: usize,
    /// The most refused requests one connection may make. The refusal that reaches it closes
    /// the connection even where nats-server would keep it open for another request (see
    /// [`AfterReject`]); 0 and 1 both mean every refusal closes. nats-server has no such limit
    /// (a client can loop on one connection for as long as it likes); the default, 16, is far
    /// above what a client correcting its request needs.
    pub max_rejected_requests: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_head_bytes: (1 << 20) + 4096,
            max_headers: 8192,
            max_rejected_requests: 16,
        }
    }
}
