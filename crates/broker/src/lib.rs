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
//! - [`Broker`]: the client table (sessions), the router (accounts, each with its own subject
//!   index, and the stream and service imports between them), timers and routing.
//! - [`ClientId`]: a slab handle with a generation; [`ClientParams`] describes a new connection.
//! - [`Event`]: what the loop must do next (flush a client, close a transport).
//! - [`OutQueue`]: a client's outbound bytes, written with `chunks_vectored` and `advance`.
//! - [`proto::Parser`]: the resumable protocol parser, usable on its own (client side too).
//! - [`sublist::Sublist`]: the subject trie with wildcards, queue groups and a match cache.
//!
//! # Call order
//!
//! `examples/server.rs` in the crate's repository runs exactly this loop over `std::net`
//! non-blocking sockets: a NATS server that any client can talk to.
//!
//! 1. `register_client(now, params)` on accept (queues INFO).
//! 2. `handle_input(client, now, &mut read_buf)` after each read.
//! 3. `handle_timeout(now)` when `poll_timeout()` has passed.
//! 4. After each of those, `poll_event()` until `None`: flush clients named by
//!    [`Event::Flush`]; on [`Event::Closed`] flush (if the reason allows), close the transport
//!    and call `remove_client(client, now)`.
//! 5. To flush: `outbound(client)` → write → `advance(n)`, then `handle_flushed(client, now)`.
//! 6. On a configuration reload: `reload(config, now)`, then poll events (it closes clients
//!    whose credentials no longer authenticate and applies new permissions at once).
//! 7. With [`Config::defer_password_checks`], [`Event::CheckPassword`] asks for a bcrypt
//!    comparison: run it (on another thread), then `password_checked(client, &check, verified,
//!    now)`, and feed a client that was parked ([`Broker::is_parked`]) its unconsumed input
//!    again.
//! 8. Do not read a client while [`Broker::is_stalled`] (a connection it publishes to owes
//!    more than half of `max_pending`; the broker left the rest of its input in the buffer); on
//!    [`Event::Resumed`] feed it that input again and read it as before.
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
//!
//! # Deliberate differences from nats-server 2.9.10
//!
//! Each of these is a choice, not an accident; the reason follows each item.
//!
//! 1. **MSG size token.** Go copies the publisher's size text into the `MSG` line
//!    (`PUB foo 003` → `MSG foo 1 003`); natsws writes plain decimal (`MSG foo 1 3`). Clients
//!    parse both, and re-encoding avoids keeping the publisher's control line alive.
//! 2. **cid numbering** starts at 1: the system account exists (isolated, as any account) and
//!    its services are not clients: a service is a subject the broker hands to the binary
//!    ([`Broker::add_system_service`], [`Event::SystemRequest`], answered with
//!    [`Broker::publish_system`]), so there are no internal clients taking cids 1–3 as in Go,
//!    and subscription counts contain only client subscriptions. The only services natsws
//!    serves are the full resolver's claim services ([`auth::claims`], `nsc push`); requests
//!    to the reference's other system services (`$SYS.REQ.SERVER.…`, `$SYS.REQ.ACCOUNT.…`
//!    besides the claims) find no responder.
//! 3. **WebSocket INFO** carries the WebSocket listener's `host`, `port` and TLS flags (the
//!    nats-server 2.10.16+ behaviour): it is the address a browser client can reconnect to.
//! 4. **Stale Connection over WebSocket** maps to close status 1001 as in 2.10.24+; 2.9.10 sends
//!    1006, which RFC 6455 forbids on the wire (ws-codec's `CloseReason::close_code`, which
//!    natsws uses for every close frame).
//! 5. **A `\r` inside an argument line.** Go drops the byte before `\n` whenever any `\r`
//!    appeared in the line (and behaves differently when the line was split across reads);
//!    natsws removes exactly one `\r` directly before `\n`, the same for every split.
//! 6. **`\n` directly after an operation's separator** (`PUB \n…`): Go treats that `\n` as the
//!    first argument byte and continues the line; natsws ends the line there, so the empty
//!    argument list closes the connection as `Protocol Violation`, like any other bad arguments.
//! 7. **Pedantic `Invalid Publish Subject`** is queued when the message is complete, not when
//!    its control line is read. The bytes a client sees are identical unless the payload is then
//!    malformed, in which case natsws sends only `Unknown Protocol Operation`.
//! 8. **Write deadline.** A sans-IO broker cannot see a blocked `write`; it closes a client as
//!    `Slow Consumer (Write Deadline)` when its queued output has made no progress for
//!    `write_deadline` (progress is whatever the binary removed with `advance`).
//! 9. **Producer stalling.** Go blocks a client's read loop just before a delivery to a
//!    connection owing more than half its `max_pending`; the broker makes that delivery and then
//!    stops parsing the producer's input ([`Broker::is_stalled`], [`Event::Resumed`]), so a
//!    stalled connection may receive one operation's worth more than in Go. Release (the
//!    connection drained below half) and the stall times (100 ms – 1 s) are the reference's.
//! 10. **Random choices** (queue member, first-PING jitter, nonce when the binary gives none)
//!     come from a generator seeded by [`Config::seed`], so tests and fuzzing are reproducible.
//! 11. **The client-role parser** (links and tests) also enforces `max_control_line`; 2.9.10
//!     has no limit for non-client connections (newer servers use 16×). An unbounded line would
//!     be unbounded memory.
//! 12. **CONNECT field names** match case-insensitively in ASCII, like Go's `encoding/json`,
//!     but without Go's Unicode folding (`K` vs the Kelvin sign). INFO strings are not
//!     HTML-escaped (`\u003c` for `<`); JSON decoders read both forms identically.
//! 13. **Leaf nodes** ([`Broker::register_leaf`], and [`ConnectionType::Leaf`] connections
//!     accepted): subject-mapping sources are not advertised to leafs (service-import
//!     subjects are, and interest from a leaf is kept from other leafs of its cluster, as
//!     nats-server's `origin` check does), and a queue `LS+` weight outside `u32` is refused
//!     as bad arguments.
//! 14. **Closed-connection records** keep at most [`MAX_CLOSED_SUBS`] subscriptions (lowest
//!     sids); nats-server keeps every one, which makes `/connz?state=closed` memory unbounded.
//! 15. **Match cache.** Cached results hold at most [`sublist::MAX_CACHE_HANDLES`]
//!     subscription handles in all, and a larger result is not cached; nats-server bounds only
//!     the number of cached subjects.
//! 16. **Subscription subjects** with more than [`sublist::MAX_SUBJECT_TOKENS`] tokens are
//!     refused with `Invalid Subject` (only reachable with `max_control_line` above 4 KiB):
//!     the subject trie recurses once per token, and Rust stacks do not grow like Go's.
//! 17. **Reload keeps clients whose credentials are still valid.** 2.9.10 closes every client
//!     of the single `authorization { user, password }` on every reload, even an identical one
//!     (its check consults only the `users` map); [`Broker::reload`] counts the single and the
//!     websocket user as configured, so a SIGHUP does not disconnect them.
//! 18. **Trace lines are rebuilt from the parsed operation** ([`Event::Trace`]): runs of spaces
//!     or tabs between arguments show as one space, where Go prints the argument text as
//!     received. A line the parser refuses is not traced (Go traces some before refusing).
//! 19. **Imports route one hop.** A message that reached an account through a stream import is
//!     not forwarded again by that account's own imports, and a service request is delivered
//!     to the exporter's subscribers only; nats-server chains imports through its internal
//!     subscriptions. Its cycle checks are kept, so the configurations both accept route alike
//!     unless they chain imports. A `to` mapping of a wildcard import (subject transforms) is
//!     refused at start-up; `prefix` works for wildcards. Response routes are bounded
//!     ([`MAX_RESPONSE_ROUTES`] per account, the oldest dropped first), and end, as in
//!     nats-server, when nothing in the requester's account is subscribed to the reply any
//!     more; one removed subscription looks at no more than [`MAX_RELEASE_SCAN`] of them
//!     (nats-server scans all), the others end at their threshold. A request crossing
//!     a service import carries `Nats-Request-Info` with the requester's account and RTT as
//!     in nats-server, and through an import with `share: true` the requester's details
//!     (id, user, name, host, server, ...). A request no subscriber of the exporter received
//!     drops its response route at once, as nats-server. Service latency tracking (an
//!     export's [`LatencyConfig`]) is served as nats-server serves it; the few differences
//!     are in the `broker/latency` module docs.
//! 20. **MQTT without JetStream.** MQTT connections ([`ConnectionType::Mqtt`],
//!     [`ConnectionType::MqttWebSocket`]) keep their state in memory. QoS 1 deliveries are
//!     tracked per session; one past the window (`max_ack_pending` awaiting PUBACK, or
//!     `max_pending` bytes of them) is held in arrival order and sent as PUBACKs free the
//!     window, as nats-server's JetStream consumer (`MaxAckPending`) keeps it in the
//!     `$MQTT_msgs` stream. A `clean_session: false` session whose client is away keeps
//!     collecting the QoS 1 messages its QoS 1 filters match (QoS 0 ones are not kept); on
//!     resume its unacknowledged deliveries go again with DUP, then the collected ones,
//!     each only where the resuming user may receive it: none for a filter its subscribe
//!     permissions do not restore (as nats-server, which then gives that filter's consumer no
//!     delivery subscription), none on a subject its subscribe deny excludes. That deny
//!     applies to QoS 1 deliveries as to QoS 0 ones, live or kept; nats-server 2.9.10 delivers
//!     QoS 1 past it (its consumer delivers on `$MQTT.sub.` subjects, which the deny does not
//!     name), and refuses a QoS 1 subscription whose user may not subscribe to `$MQTT.sub.>`,
//!     which natsws does not need. Overlapping QoS 1 filters (`a/#` and `a/b`) get a copy
//!     each, as nats-server's one consumer per filter; unsubscribing one forgets its held
//!     copies only. A reload's `max_ack_pending` and `max_pending` apply to every session at
//!     once, live and kept (nats-server's `mqttUpdateMaxAckPending`).
//!     nats-server's stream has no limit of its own (only the account's JetStream storage);
//!     here the held deliveries are bounded per session (65,536 messages and `max_pending`
//!     bytes of topic and payload) and, for kept sessions, together (256 MiB with their
//!     unacknowledged ones). At a bound the oldest held deliveries are dropped (a JetStream
//!     stream at its limits discards old messages by default) and one
//!     [`Event::MqttHeldDropped`] warning names the client, not repeated until its held
//!     queue has emptied. Retained messages and kept sessions are bounded in number. Deliveries to
//!     existing subscriptions carry retain 0 (MQTT-3.3.1-9; 2.9.10 passes the publisher's
//!     flag). MQTT errors are [`Event::ClientError`] log lines, never `-ERR`. With
//!     [`Config::mqtt_persist`], each change to retained messages and kept sessions is also
//!     given out as a record ([`Broker::poll_mqtt_store`], [`mqtt_store`]) for the caller to
//!     write, and read back with [`Broker::restore_mqtt`]; the broker itself touches no file.
//!     A session's record holds its subscriptions, unacknowledged and held deliveries. It is
//!     written at once on connect, SUBSCRIBE, UNSUBSCRIBE and close, and otherwise (deliveries
//!     sent, acknowledged, held or collected) at most 1 s after the first change, batched: a
//!     kill loses at most the last second of such changes. nats-server's file store syncs
//!     every 60 s by default (`defaultSyncInterval`, `server/filestore.go`), though it hands
//!     each message to the OS at once; [`Broker::flush_mqtt_sessions`] writes everything
//!     pending at a clean stop.
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

pub mod auth;
mod authseam;
mod broker;
pub mod config;
mod json;
mod mqtt;
pub mod outq;
/// The records that keep MQTT state across restarts.
pub mod mqtt_store {
    pub use crate::mqtt::store::{StoreError, StoreKind, StoreWrite};
}
pub mod proto;
mod router;
mod session;
pub mod subject;
pub mod sublist;
mod types;
pub mod wire;

#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;

pub use authseam::AuthConfig;
pub use broker::leaf::{LEAF_REFUSED_HOLD, LeafInfo};
pub use broker::reload::AccountUpdate;
pub use broker::services::{MAX_SYSTEM_SERVICES, ServiceError, ServiceId};
pub use broker::{Broker, DEFAULT_MAX_CLOSED_CLIENTS, MAX_CLOSED_SUBS};
pub use config::{
    AccountConfig, Config, ExportConfig, ExportKind, ImportConfig, LatencyConfig, LatencySampling,
    LeafAuthConfig, LeafUserConfig, Limits, ListenerInfo, ResponseType, WallClock,
};
pub use outq::OutQueue;
pub use proto::ProtoError;
pub use router::{DEFAULT_SYSTEM_ACCOUNT, GLOBAL_ACCOUNT, MAX_RELEASE_SCAN, MAX_RESPONSE_ROUTES};
pub use types::{
    AccountInfo, ClientId, ClientInfo, ClientParams, CloseReason, ConnectionType, Event,
    LeafCredentials, LeafRemote, ServerStats, SubInfo,
};
