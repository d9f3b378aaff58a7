//! Handles, connection facts, events and close reasons shared by the broker's API.

use bytes::Bytes;
use core::net::SocketAddr;
use std::fmt;
use std::time::{Duration, Instant};

/// A client handle: slab index plus generation. A handle outlives its client harmlessly: every
/// method ignores a stale handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl ClientId {
    /// Slab index; unique among live clients (use it for the event-loop token).
    #[must_use]
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// Generation of the slot; changes each time the slot is reused.
    #[must_use]
    pub fn generation(self) -> u32 {
        self.generation
    }
}

/// How a connection reached the server (the names `allowed_connection_types` takes, as
/// `server/auth.go` `validateAllowedConnectionTypes` checks them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionType {
    /// NATS over TCP (or TLS).
    Standard,
    /// NATS over WebSocket.
    WebSocket,
    /// Leaf node over TCP.
    Leaf,
    /// Leaf node over WebSocket.
    LeafWebSocket,
    /// MQTT 3.1.1 over TCP (or TLS).
    Mqtt,
    /// MQTT 3.1.1 over WebSocket (`/mqtt`).
    MqttWebSocket,
}

impl ConnectionType {
    /// The `allowed_connection_types` name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "STANDARD",
            Self::WebSocket => "WEBSOCKET",
            Self::Leaf => "LEAFNODE",
            Self::LeafWebSocket => "LEAFNODE_WS",
            Self::Mqtt => "MQTT",
            Self::MqttWebSocket => "MQTT_WS",
        }
    }

    /// True for connections that arrived over WebSocket.
    #[must_use]
    pub fn is_websocket(self) -> bool {
        matches!(
            self,
            Self::WebSocket | Self::LeafWebSocket | Self::MqttWebSocket
        )
    }

    /// `/connz` `type`: `"nats"`, `"websocket"` or `"mqtt"`.
    #[must_use]
    pub fn connz_type(self) -> &'static str {
        match self {
            Self::Standard | Self::Leaf => "nats",
            Self::WebSocket | Self::LeafWebSocket => "websocket",
            Self::Mqtt | Self::MqttWebSocket => "mqtt",
        }
    }
}

/// Facts about a new connection, given to [`crate::Broker::register_client`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientParams {
    /// Transport.
    pub conn_type: ConnectionType,
    /// TCP peer address (for WebSocket, the TCP peer, not `X-Forwarded-For`).
    pub remote: SocketAddr,
    /// First `X-Forwarded-For` address, for logs only.
    pub forwarded_for: Option<String>,
    /// Cookies from the WebSocket upgrade request (name, value), for credential lookup.
    pub cookies: Vec<(String, String)>,
    /// Negotiated TLS version (`"1.3"`), for `/connz`.
    pub tls_version: Option<String>,
    /// Negotiated TLS cipher suite name, for `/connz`.
    pub tls_cipher: Option<String>,
    /// 11 random bytes for the nkey nonce; the broker's own generator is used when `None`.
    pub nonce_bytes: Option<[u8; 11]>,
}

impl ClientParams {
    /// Parameters with only the transport and peer address set.
    #[must_use]
    pub fn new(conn_type: ConnectionType, remote: SocketAddr) -> Self {
        Self {
            conn_type,
            remote,
            forwarded_for: None,
            cookies: Vec::new(),
            tls_version: None,
            tls_cipher: None,
            nonce_bytes: None,
        }
    }
}

/// What the configuration says about a leaf connection natsws dials (one `remotes` entry
/// of the `leafnodes` block, and the URL being dialled).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeafRemote {
    /// The local account the connection binds to (`None`: `$G`).
    pub account: Option<String>,
    /// User name from the URL.
    pub user: Option<String>,
    /// Password from the URL.
    pub password: Option<String>,
    /// TLS was configured for the remote (`tls://`, `wss://` or a `tls {}` block): it is
    /// started after the hub's INFO even if the hub does not ask for it.
    pub tls: bool,
    /// TLS is already up (`wss://`, where TLS comes before the WebSocket upgrade).
    pub tls_established: bool,
    /// Subjects this side must not receive: never advertised, and sent to the hub as
    /// `deny_pub`.
    pub deny_imports: Vec<String>,
    /// Subjects this side must not send to the hub.
    pub deny_exports: Vec<String>,
    /// `credentials`: the user JWT and nkey seed that sign the hub's nonce.
    pub credentials: Option<LeafCredentials>,
    /// `hub: true`: this side is the hub of the link it dials (CONNECT `is_hub`), and the
    /// side it dials is the spoke.
    pub hub: bool,
}

/// A remote's `credentials` file, read: the user JWT sent in CONNECT, and the seed that signs
/// the hub's nonce (never printed: `Debug` hides it).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct LeafCredentials {
    /// The user JWT.
    pub jwt: String,
    /// The user's nkey seed (`SU...`).
    pub seed: String,
}

impl fmt::Debug for LeafCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeafCredentials")
            .field("jwt", &self.jwt)
            .field("seed", &"[redacted]")
            .finish()
    }
}

/// Why a connection was closed; the strings are nats-server's `/connz` `reason` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed the connection.
    ClientClosed,
    /// An MQTT connection with the same client id replaced this one.
    DuplicateClientId,
    /// No CONNECT within the auth timeout.
    AuthenticationTimeout,
    /// Credentials rejected.
    AuthenticationFailure,
    /// TLS handshake failed or timed out.
    TlsHandshakeFailure,
    /// Outbound queue over `max_pending`.
    SlowConsumerPendingBytes,
    /// Output made no progress for `write_deadline`.
    SlowConsumerWriteDeadline,
    /// A socket write failed.
    WriteError,
    /// A socket read failed.
    ReadError,
    /// The client sent `-ERR`.
    ParseError,
    /// Unanswered PINGs.
    StaleConnection,
    /// Malformed protocol.
    ProtocolViolation,
    /// CONNECT `protocol` out of range.
    BadClientProtocolVersion,
    /// Wrong port for this kind of peer.
    IncorrectPort,
    /// A leaf connection whose two sides have the same cluster name.
    ClusterNamesIdentical,
    /// The leaf connection's local account does not exist.
    MissingAccount,
    /// `max_connections` reached.
    MaxConnectionsExceeded,
    /// Payload above `max_payload`.
    MaxPayloadExceeded,
    /// Control line above `max_control_line`.
    MaxControlLineExceeded,
    /// Server shutting down.
    ServerShutdown,
    /// CONNECT `no_responders` without headers.
    NoRespondersRequiresHeaders,
    /// The user (or its account) JWT expired while connected.
    AuthenticationExpired,
    /// A reload revoked the user's JWT.
    Revocation,
    /// The account's JWT `conn` limit was reached.
    MaxAccountConnectionsExceeded,
    /// An accepted leaf's CONNECT `version` is below `leafnodes { min_version }`.
    MinimumVersionRequired,
}

impl CloseReason {
    /// The reason string (`/connz` `reason`, WebSocket close frame body).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientClosed => "Client Closed",
            Self::DuplicateClientId => "Duplicate Client ID",
            Self::AuthenticationTimeout => "Authentication Timeout",
            Self::AuthenticationFailure => "Authentication Failure",
            Self::TlsHandshakeFailure => "TLS Handshake Failure",
            Self::SlowConsumerPendingBytes => "Slow Consumer (Pending Bytes)",
            Self::SlowConsumerWriteDeadline => "Slow Consumer (Write Deadline)",
            Self::WriteError => "Write Error",
            Self::ReadError => "Read Error",
            Self::ParseError => "Parse Error",
            Self::StaleConnection => "Stale Connection",
            Self::ProtocolViolation => "Protocol Violation",
            Self::BadClientProtocolVersion => "Bad Client Protocol Version",
            Self::IncorrectPort => "Incorrect Port",
            Self::ClusterNamesIdentical => "Cluster Names Identical",
            Self::MinimumVersionRequired => "Minimum Version Required",
            Self::MissingAccount => "Missing Account",
            Self::MaxConnectionsExceeded => "Maximum Connections Exceeded",
            Self::MaxPayloadExceeded => "Maximum Message Payload Exceeded",
            Self::MaxControlLineExceeded => "Maximum Control Line Exceeded",
            Self::ServerShutdown => "Server Shutdown",
            Self::NoRespondersRequiresHeaders => "No Responders Requires Headers",
            Self::AuthenticationExpired => "Authentication Expired",
            Self::Revocation => "Credentials Revoked",
            Self::MaxAccountConnectionsExceeded => "Maximum Account Connections Exceeded",
        }
    }

    /// Whether queued output (the `-ERR` line, a WebSocket close frame) is flushed before the
    /// transport is closed. Read/write errors, slow consumers and TLS failures tear down
    /// without a flush.
    #[must_use]
    pub fn flushes(self) -> bool {
        !matches!(
            self,
            Self::WriteError
                | Self::ReadError
                | Self::SlowConsumerPendingBytes
                | Self::SlowConsumerWriteDeadline
                | Self::TlsHandshakeFailure
        )
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something the event loop must act on. Poll with [`crate::Broker::poll_event`] until `None`
/// after every `handle_*` call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Output was queued for this client; flush it at the end of the tick.
    Flush(ClientId),
    /// A stalled producer ([`crate::Broker::is_stalled`]) may go on: hand it the input it
    /// left and read it again. `timed_out` is the stall time when it ran out before the
    /// connection it waited for drained (nats-server logs `Timed out of fast producer stall
    /// (<ttl>)` at debug level).
    Resumed {
        /// The producer.
        client: ClientId,
        /// The stall time that ran out, or `None` when the connection drained or closed.
        timed_out: Option<Duration>,
    },
    /// The broker closed this client. Flush its queue if `reason.flushes()` (then, for
    /// WebSocket, send the close frame nats-server sends for `reason`),
    /// close the transport, and finally call [`crate::Broker::remove_client`].
    Closed {
        /// The client.
        client: ClientId,
        /// Why.
        reason: CloseReason,
    },
    /// The client is closed as a slow consumer (a [`Event::Closed`] follows), for the log
    /// line nats-server writes: `Slow Consumer Detected: MaxPending of <max_pending>
    /// Exceeded`, or `Slow Consumer Detected: WriteDeadline of <write_deadline> exceeded with
    /// <chunks> chunks of <pending_bytes> total bytes.` Not emitted for a client that had not
    /// connected yet, which nats-server neither counts nor logs.
    SlowConsumer {
        /// The client.
        client: ClientId,
        /// [`CloseReason::SlowConsumerPendingBytes`] or
        /// [`CloseReason::SlowConsumerWriteDeadline`].
        reason: CloseReason,
        /// Output owed to the client when it was cut (its queue and the transport's backlog).
        pending_bytes: usize,
        /// Buffers that output was held in.
        chunks: usize,
    },
    /// A CONNECT was accepted (for the debug log).
    Connected(ClientId),
    /// An error nats-server logs for this client rather than sending it: MQTT connections get
    /// no `-ERR` (permission violations, protocol errors and takeovers are logged).
    ClientError {
        /// The client.
        client: ClientId,
        /// Log detail.
        detail: String,
    },
    /// Authentication failed; `detail` is the reference's whole log text
    /// (`authentication error - User "bob"`), never a secret.
    AuthFailed {
        /// The client.
        client: ClientId,
        /// Log detail.
        detail: String,
    },
    /// Operator mode: the reason nats-server logs for a refused JWT user just before its
    /// `authentication error` line ([`Event::AuthFailed`]), e.g. `User JWT not valid: claim
    /// failed V2 signature verification`; at debug level, or at error level when `error`
    /// (`Bad src Ip <ip>`, `Outside connect times`).
    AuthReason {
        /// The client.
        client: ClientId,
        /// The reference's text.
        reason: String,
        /// Logged at error level rather than debug.
        error: bool,
    },
    /// A bcrypt comparison is needed (only with [`crate::Config::defer_password_checks`]); run
    /// [`crate::auth::PasswordCheck::verify`] and pass the result to
    /// [`crate::Broker::password_checked`]. Either the client's CONNECT needs it: the client is
    /// parked ([`crate::Broker::is_parked`]), `handle_input` consumes none of its input until
    /// then, and the auth timer stops, as nats-server stops it when a CONNECT arrives. Or a
    /// reload changed the hash its session was verified against: the client keeps running
    /// meanwhile, and the one event stands for every client re-checked with the same
    /// comparison.
    CheckPassword {
        /// The client.
        client: ClientId,
        /// The comparison to run.
        check: crate::auth::PasswordCheck,
        /// True when the check belongs to the client's parked CONNECT (it may be dropped if
        /// the connection goes away); false for a re-check after a reload, which may stand for
        /// other clients too and must be answered unless a later reload supersedes it.
        parked: bool,
    },
    /// A protocol trace line (only with [`crate::Config::trace`]), in nats-server's form
    /// without the client prefix: `<<- [PUB foo 5]`, `<<- MSG_PAYLOAD: ["hello"]`,
    /// `->> [MSG foo 1 5]`.
    Trace {
        /// The client.
        client: ClientId,
        /// The line.
        line: String,
    },
    /// A configuration reload removed a subscription the new permissions refuse; `detail` is
    /// the reference's notice (`Removed sub "foo" (sid "1") for User "bob" - not authorized`).
    SubscriptionRemoved {
        /// The client.
        client: ClientId,
        /// Log text.
        detail: String,
    },
    /// An MQTT session's held QoS 1 deliveries (waiting for room in its `max_ack_pending`
    /// window, or for its client to come back) passed their bound and the oldest were dropped.
    /// Emitted once per episode: not again until the session's held queue has emptied.
    MqttHeldDropped {
        /// The session's account.
        account: String,
        /// The session's MQTT client id.
        client_id: String,
        /// Deliveries dropped at this moment.
        dropped: usize,
        /// The session's bound in messages.
        max_msgs: usize,
        /// The session's bound in bytes (topics and payloads).
        max_bytes: usize,
    },
    /// A leaf connection natsws dialled read the hub's INFO, which asks for TLS (or the
    /// remote's configuration does): start the TLS client now, and once its handshake is done
    /// call [`crate::Broker::leaf_tls_established`]. No input is parsed meanwhile.
    LeafStartTls(ClientId),
    /// A notice about a leaf connection, logged by nats-server at info level (e.g. the
    /// JetStream denies added when the link opens).
    LeafNotice {
        /// The leaf connection.
        client: ClientId,
        /// The notice, as nats-server words it.
        text: String,
    },
    /// A leaf connection finished its handshake: interest flows from now on. nats-server logs
    /// `Leafnode connection created for account: <account> <remote_name>`.
    LeafConnected {
        /// The leaf connection.
        client: ClientId,
        /// The local account it is bound to.
        account: String,
        /// The other side's server name.
        remote_name: String,
    },
    /// The other side of a leaf connection sent `-ERR`; the connection stays open unless
    /// the broker closes it (nats-server logs `Leafnode Error '<text>'`).
    LeafError {
        /// The leaf connection.
        client: ClientId,
        /// The error text, without the quotes.
        text: String,
    },
    /// Dial this leaf connection's remote again only after `delay` (a loop, identical
    /// cluster names or a permissions violation: nats-server waits 30 s).
    LeafReconnectDelay {
        /// The leaf connection.
        client: ClientId,
        /// The wait.
        delay: Duration,
    },
    /// A message published in the system account matched the subject of a system service
    /// (see [`crate::Broker::add_system_service`]). The binary answers it, when it has a
    /// `reply`, with [`crate::Broker::publish_system`].
    SystemRequest {
        /// The service, as [`crate::Broker::add_system_service`] returned it.
        service: crate::ServiceId,
        /// The subject the message was published to.
        subject: String,
        /// Its reply subject.
        reply: Option<String>,
        /// The whole message, headers included, at most `max_payload` bytes: nats-server's
        /// system client takes headers, so its services get them (`server/client.go`
        /// `deliverMsg`); those that want the body alone skip `header_len` bytes.
        payload: Bytes,
        /// How many bytes of `payload` are headers (0 without).
        header_len: usize,
    },
}

/// A subscription, as shown by `/connz?subs=detail` and `/subsz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubInfo {
    /// Subject.
    pub subject: String,
    /// Queue group.
    pub queue: Option<String>,
    /// Sid.
    pub sid: String,
    /// Messages delivered.
    pub msgs: u64,
    /// Auto-unsubscribe limit.
    pub max: Option<u64>,
    /// Owner's cid.
    pub cid: u64,
    /// The account the subscription lives in.
    pub account: String,
}

/// A snapshot of one connection for `/connz`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientInfo {
    /// Handle (stale once the client is removed).
    pub id: ClientId,
    /// Server-wide connection number, from 1.
    pub cid: u64,
    /// Transport.
    pub conn_type: ConnectionType,
    /// TCP peer.
    pub remote: SocketAddr,
    /// Accept time.
    pub start: Instant,
    /// Last inbound publish/subscribe or delivery.
    pub last_activity: Instant,
    /// Close time, for closed connections.
    pub stop: Option<Instant>,
    /// Close reason, for closed connections.
    pub reason: Option<CloseReason>,
    /// Round-trip time, once measured.
    pub rtt: Option<Duration>,
    /// Queued outbound bytes.
    pub pending_bytes: usize,
    /// Messages received from the client.
    pub in_msgs: u64,
    /// Messages delivered to the client.
    pub out_msgs: u64,
    /// Payload bytes received (headers included).
    pub in_bytes: u64,
    /// Payload bytes delivered (headers included).
    pub out_bytes: u64,
    /// Subscriptions held (empty in a [`crate::Broker::client_summary`]).
    pub subscriptions: Vec<SubInfo>,
    /// How many subscriptions are held.
    pub num_subscriptions: usize,
    /// CONNECT `name`.
    pub name: String,
    /// CONNECT `lang`.
    pub lang: String,
    /// CONNECT `version`.
    pub version: String,
    /// CONNECT `user`, for the `/connz?user=` filter.
    pub user: String,
    /// Authorized user (username, nkey or token holder) for `/connz?auth=1`.
    pub authorized_user: Option<String>,
    /// TLS version.
    pub tls_version: Option<String>,
    /// TLS cipher suite.
    pub tls_cipher: Option<String>,
    /// `X-Forwarded-For` address given at registration.
    pub forwarded_for: Option<String>,
    /// The MQTT client id, for an MQTT connection that sent CONNECT.
    pub mqtt_client: Option<String>,
    /// The account the connection is bound to (`$G` outside every account).
    pub account: String,
}

/// One account, for `/accountz`.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountInfo {
    /// Account name.
    pub name: String,
    /// True for the system account.
    pub is_system: bool,
    /// Open client connections bound to the account.
    pub connections: usize,
    /// The account's subject index statistics (its subscription count included).
    pub sublist: crate::sublist::SublistStats,
    /// Messages published in the account.
    pub in_msgs: u64,
    /// Service responses the account's exports still owe to importers.
    pub pending_responses: usize,
}

/// Server-wide counters for `/varz`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Messages received from clients.
    pub in_msgs: u64,
    /// Messages delivered (each delivery counts).
    pub out_msgs: u64,
    /// Payload bytes received.
    pub in_bytes: u64,
    /// Payload bytes delivered.
    pub out_bytes: u64,
    /// Slow consumers detected.
    pub slow_consumers: u64,
    /// Clients registered since start (including those refused at `max_connections`).
    pub total_connections: u64,
    /// Client connections open now.
    pub connections: usize,
    /// Subscriptions now.
    pub subscriptions: usize,
}
