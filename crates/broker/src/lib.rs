//! The NATS client protocol core, sans-IO.
//!
//! `broker` is the heart of the natsws server: it parses what clients send, keeps their
//! sessions (CONNECT options, INFO, keep-alive pings, auth timeout, slow-consumer rules), indexes
//! their subscriptions and routes every published message to the matching subscribers'
//! outbound queues. The event loop in the binary feeds bytes and time in and takes events and
//! outbound bytes out.
//!
//! # What it deliberately does not do
//!
//! No I/O, no clock, no threads, no logging: time is always an argument (`now: Instant`), the
//! caller owns the read buffer, and the output is a byte stream per client in an [`OutQueue`]
//! that the binary writes (and, for WebSocket clients, frames) at flush time. The broker never
//! reads a configuration file; the binary translates its options into [`Config`].
//!
//! # Main types
//!
//! - [`Broker`]: the client table, subject index, timers and routing.
//! - [`ClientId`]: a slab handle with a generation; [`ClientParams`] describes a new connection.
//! - [`Event`]: what the loop must do next (flush a client, close a transport).
//! - [`OutQueue`]: a client's outbound bytes, written with `chunks_vectored` and `advance`.
//! - [`proto::Parser`]: the resumable protocol parser, usable on its own (client side too).
//! - [`sublist::Sublist`]: the subject trie with wildcards, queue groups and a match cache.
//!
//! # Call order
//!
//! 1. `register_client(now, params)` on accept (queues INFO).
//! 2. `handle_input(client, now, &mut read_buf)` after each read.
//! 3. `handle_timeout(now)` when `poll_timeout()` has passed.
//! 4. After each of those, `poll_event()` until `None`: flush clients named by
//!    [`Event::Flush`]; on [`Event::Closed`] flush (if the reason allows), close the transport
//!    and call `remove_client(client, now)`.
//! 5. To flush: `outbound(client)` → write → `advance(n)`, then `handle_flushed(client, now)`.
//!
//! ```
//! use std::time::Instant;
//! use bytes::BytesMut;
//! use broker::{Broker, ClientParams, Config, ConnectionType, Event};
//!
//! let now = Instant::now();
//! let mut broker = Broker::new(Config::default(), now);
//! let addr = "127.0.0.1:5000".parse().unwrap();
//! let sub = broker.register_client(now, ClientParams::new(ConnectionType::Standard, addr));
//! let publ = broker.register_client(now, ClientParams::new(ConnectionType::Standard, addr));
//! broker.handle_input(sub, now, &mut BytesMut::from(&b"CONNECT {\"verbose\":false}\r\nSUB foo 1\r\n"[..]));
//! broker.handle_input(publ, now, &mut BytesMut::from(&b"CONNECT {\"verbose\":false}\r\nPUB foo 2\r\nhi\r\n"[..]));
//! while let Some(ev) = broker.poll_event() {
//!     assert!(matches!(ev, Event::Flush(_) | Event::Connected(_)));
//! }
//! let out = broker.outbound(sub).unwrap();
//! let mut bytes = BytesMut::new();
//! out.drain_into(&mut bytes);
//! assert!(bytes.ends_with(b"MSG foo 1 2\r\nhi\r\n"));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, clippy::print_stdout, clippy::print_stderr)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

pub mod auth;
mod authseam;
mod broker;
pub mod config;
mod json;
pub mod outq;
pub mod proto;
pub mod subject;
pub mod sublist;
mod types;
pub mod wire;

#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;

pub use authseam::AuthConfig;
pub use broker::{Broker, DEFAULT_MAX_CLOSED_CLIENTS};
pub use config::{Config, Limits, ListenerInfo};
pub use outq::OutQueue;
pub use proto::ProtoError;
pub use types::{
    ClientId, ClientInfo, ClientParams, CloseReason, ConnectionType, Event, ServerStats, SubInfo,
};
