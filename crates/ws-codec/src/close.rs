//! Close codes, close frames and nats-server's close reasons (RFC 6455 §5.5.1, §7.4;
//! nats-server's `server/websocket.go` `wsEnqueueCloseMessage` and `wsCreateCloseMessage`).

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::frame::MAX_CONTROL_PAYLOAD_BYTES;

/// The longest close reason text that is sent unchanged (125 − 2 bytes of status).
pub const MAX_CLOSE_REASON_BYTES: usize = MAX_CONTROL_PAYLOAD_BYTES - 2;

/// A close status code (RFC 6455 §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: Self = Self(1000);
    /// 1001: going away (server shutdown, stale connection, transport errors).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: unsupported data.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1005: no status received. Reserved: never sent on the wire.
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: abnormal closure. Reserved: never sent on the wire.
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: invalid payload data (bad UTF-8, corrupt compressed data).
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: policy violation.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: message too big.
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 1011: internal server error.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1015: TLS handshake failure. Reserved: never sent on the wire.
    pub const TLS_HANDSHAKE: Self = Self(1015);

    /// True when the code may appear in a close frame (the rule newer nats-server versions
    /// enforce): 1000–4999 except 1004, 1005, 1006, 1015 and the unassigned 1016–2999.
    #[must_use]
    pub fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=4999) && !matches!(self.0, 1004..=1006 | 1015..=2999)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The payload of a close frame that carries a status: a code and a UTF-8 reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    code: CloseCode,
    reason: Bytes,
}

impl CloseFrame {
    /// A close frame with `code` and `reason`. A reason longer than
    /// [`MAX_CLOSE_REASON_BYTES`] is cut to 120 bytes (at a character boundary) plus `...`, as
    /// nats-server does. A code that must not be sent ([`CloseCode::is_sendable`]) is replaced
    /// by 1001 (going away), the substitution newer nats-server versions make for 1006.
    #[must_use]
    pub fn new(code: CloseCode, reason: &str) -> Self {
        let code = if code.is_sendable() {
            code
        } else {
            CloseCode::GOING_AWAY
        };
        let reason = if reason.len() > MAX_CLOSE_REASON_BYTES {
            let mut cut = MAX_CLOSE_REASON_BYTES - 3;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            let mut text = BytesMut::with_capacity(cut + 3);
            text.extend_from_slice(reason.as_bytes().get(..cut).unwrap_or_default());
            text.extend_from_slice(b"...");
            text.freeze()
        } else {
            Bytes::copy_from_slice(reason.as_bytes())
        };
        Self { code, reason }
    }

    /// A close frame parsed from the wire; the caller has checked the code and the UTF-8.
    pub(crate) fn from_parts(code: CloseCode, reason: Bytes) -> Self {
        Self { code, reason }
    }

    /// The status code.
    #[must_use]
    pub fn code(&self) -> CloseCode {
        self.code
    }

    /// The reason text.
    #[must_use]
    pub fn reason(&self) -> &str {
        std::str::from_utf8(&self.reason).unwrap_or_default()
    }

    /// The reason as bytes.
    #[must_use]
    pub fn reason_bytes(&self) -> &Bytes {
        &self.reason
    }

    /// Appends the frame's payload (big-endian code, then the reason) to `out`.
    pub fn write_payload(&self, out: &mut BytesMut) {
        out.put_u16(self.code.0);
        out.extend_from_slice(&self.reason);
    }

    /// The payload length in bytes.
    #[must_use]
    pub fn payload_len(&self) -> usize {
        2 + self.reason.len()
    }
}

/// Why a NATS server closes a client connection: nats-server's `ClosedState` values, whose
/// strings are the close frame bodies (`server/websocket.go` `wsEnqueueCloseMessage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[expect(
    missing_docs,
    reason = "the variants are named after nats-server's ClosedState values"
)]
pub enum CloseReason {
    ClientClosed,
    AuthenticationTimeout,
    AuthenticationViolation,
    TlsHandshakeError,
    SlowConsumerPendingBytes,
    SlowConsumerWriteDeadline,
    WriteError,
    ReadError,
    ParseError,
    StaleConnection,
    ProtocolViolation,
    BadClientProtocolVersion,
    WrongPort,
    MaxAccountConnectionsExceeded,
    MaxConnectionsExceeded,
    MaxPayloadExceeded,
    MaxControlLineExceeded,
    MaxSubscriptionsExceeded,
    DuplicateRoute,
    RouteRemoved,
    ServerShutdown,
    AuthenticationExpired,
    WrongGateway,
    MissingAccount,
    Revocation,
    InternalClient,
    MsgHeaderViolation,
    NoRespondersRequiresHeaders,
    ClusterNameConflict,
    DuplicateRemoteLeafnodeConnection,
    DuplicateClientId,
    DuplicateServerName,
    MinimumVersionRequired,
    ClusterNamesIdentical,
}

impl CloseReason {
    /// The reason string, exactly as nats-server prints it (`ClosedState.String()`).
    #[must_use]
    pub fn text(self) -> &'static str {
        match self {
            Self::ClientClosed => "Client Closed",
            Self::AuthenticationTimeout => "Authentication Timeout",
            Self::AuthenticationViolation => "Authentication Failure",
            Self::TlsHandshakeError => "TLS Handshake Failure",
            Self::SlowConsumerPendingBytes => "Slow Consumer (Pending Bytes)",
            Self::SlowConsumerWriteDeadline => "Slow Consumer (Write Deadline)",
            Self::WriteError => "Write Error",
            Self::ReadError => "Read Error",
            Self::ParseError => "Parse Error",
            Self::StaleConnection => "Stale Connection",
            Self::ProtocolViolation => "Protocol Violation",
            Self::BadClientProtocolVersion => "Bad Client Protocol Version",
            Self::WrongPort => "Incorrect Port",
            Self::MaxConnectionsExceeded => "Maximum Connections Exceeded",
            Self::MaxAccountConnectionsExceeded => "Maximum Account Connections Exceeded",
            Self::MaxPayloadExceeded => "Maximum Message Payload Exceeded",
            Self::MaxControlLineExceeded => "Maximum Control Line Exceeded",
            Self::MaxSubscriptionsExceeded => "Maximum Subscriptions Exceeded",
            Self::DuplicateRoute => "Duplicate Route",
            Self::RouteRemoved => "Route Removed",
            Self::ServerShutdown => "Server Shutdown",
            Self::AuthenticationExpired => "Authentication Expired",
            Self::WrongGateway => "Wrong Gateway",
            Self::MissingAccount => "Missing Account",
            Self::Revocation => "Credentials Revoked",
            Self::InternalClient => "Internal Client",
            Self::MsgHeaderViolation => "Message Header Violation",
            Self::NoRespondersRequiresHeaders => "No Responders Requires Headers",
            Self::ClusterNameConflict => "Cluster Name Conflict",
            Self::DuplicateRemoteLeafnodeConnection => "Duplicate Remote LeafNode Connection",
            Self::DuplicateClientId => "Duplicate Client ID",
            Self::DuplicateServerName => "Duplicate Server Name",
            Self::MinimumVersionRequired => "Minimum Version Required",
            Self::ClusterNamesIdentical => "Cluster Names Identical",
        }
    }

    /// The close status for this reason (`wsEnqueueCloseMessage`), hardened as in newer
    /// nats-server versions: `Write Error`, `Read Error` and `Stale Connection` use 1001 instead
    /// of the reserved 1006, and `TLS Handshake Failure` uses 1001 instead of the reserved 1015
    /// (nats-server never flushes that one anyway). Never returns a reserved code.
    #[must_use]
    pub fn close_code(self) -> CloseCode {
        match self {
            Self::ClientClosed => CloseCode::NORMAL,
            Self::AuthenticationTimeout
            | Self::AuthenticationViolation
            | Self::SlowConsumerPendingBytes
            | Self::SlowConsumerWriteDeadline
            | Self::MaxAccountConnectionsExceeded
            | Self::MaxConnectionsExceeded
            | Self::MaxControlLineExceeded
            | Self::MaxSubscriptionsExceeded
            | Self::MissingAccount
            | Self::AuthenticationExpired
            | Self::Revocation => CloseCode::POLICY_VIOLATION,
            Self::ParseError | Self::ProtocolViolation | Self::BadClientProtocolVersion => {
                CloseCode::PROTOCOL_ERROR
            }
            Self::MaxPayloadExceeded => CloseCode::MESSAGE_TOO_BIG,
            Self::ServerShutdown
            | Self::WriteError
            | Self::ReadError
            | Self::StaleConnection
            | Self::TlsHandshakeError => CloseCode::GOING_AWAY,
            Self::WrongPort
            | Self::DuplicateRoute
            | Self::RouteRemoved
            | Self::WrongGateway
            | Self::InternalClient
            | Self::MsgHeaderViolation
            | Self::NoRespondersRequiresHeaders
            | Self::ClusterNameConflict
            | Self::DuplicateRemoteLeafnodeConnection
            | Self::DuplicateClientId
            | Self::DuplicateServerName
            | Self::MinimumVersionRequired
            | Self::ClusterNamesIdentical => CloseCode::INTERNAL_ERROR,
        }
    }

    /// The close frame nats-server queues for this reason: [`Self::close_code`] and
    /// [`Self::text`] as the body.
    #[must_use]
    pub fn close_frame(self) -> CloseFrame {
        CloseFrame::new(self.close_code(), self.text())
    }

    /// False for the reasons after which nats-server tears the connection down without a final
    /// flush, so no close frame reaches the peer (`server/client.go` `markConnAsClosed`).
    #[must_use]
    pub fn flushes(self) -> bool {
        !matches!(
            self,
            Self::ReadError
                | Self::WriteError
                | Self::SlowConsumerPendingBytes
                | Self::SlowConsumerWriteDeadline
                | Self::TlsHandshakeError
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(reason: CloseReason, code: u16, text: &str) {
        let frame = reason.close_frame();
        assert_eq!(frame.code(), CloseCode(code), "{reason:?}");
        assert_eq!(frame.reason(), text);
        assert!(frame.code().is_sendable());
    }

    #[test]
    fn enqueue_close_msg_mapping() {
        // TestWSEnqueueCloseMsg, with newer nats-server's codes in place of 1006 and 1015.
        check(CloseReason::ClientClosed, 1000, "Client Closed");
        for reason in [
            CloseReason::AuthenticationTimeout,
            CloseReason::AuthenticationViolation,
            CloseReason::SlowConsumerPendingBytes,
            CloseReason::SlowConsumerWriteDeadline,
            CloseReason::MaxAccountConnectionsExceeded,
            CloseReason::MaxConnectionsExceeded,
            CloseReason::MaxControlLineExceeded,
            CloseReason::MaxSubscriptionsExceeded,
            CloseReason::MissingAccount,
            CloseReason::AuthenticationExpired,
            CloseReason::Revocation,
        ] {
            check(reason, 1008, reason.text());
        }
        check(
            CloseReason::TlsHandshakeError,
            1001,
            "TLS Handshake Failure",
        );
        check(CloseReason::ParseError, 1002, "Parse Error");
        check(CloseReason::ProtocolViolation, 1002, "Protocol Violation");
        check(
            CloseReason::BadClientProtocolVersion,
            1002,
            "Bad Client Protocol Version",
        );
        check(
            CloseReason::MaxPayloadExceeded,
            1009,
            "Maximum Message Payload Exceeded",
        );
        check(CloseReason::ServerShutdown, 1001, "Server Shutdown");
        check(CloseReason::WriteError, 1001, "Write Error");
        check(CloseReason::ReadError, 1001, "Read Error");
        check(CloseReason::StaleConnection, 1001, "Stale Connection");
        check(
            CloseReason::MsgHeaderViolation,
            1011,
            "Message Header Violation",
        );
        check(CloseReason::WrongPort, 1011, "Incorrect Port");
        check(
            CloseReason::AuthenticationViolation,
            1008,
            "Authentication Failure",
        );
    }

    #[test]
    fn wire_examples() {
        // nats-server's close frame for an auth timeout: `88 18 03 F0 "Authentication Timeout"`.
        let mut out = BytesMut::new();
        CloseReason::AuthenticationTimeout
            .close_frame()
            .write_payload(&mut out);
        assert_eq!(&out[..], b"\x03\xf0Authentication Timeout");
        out.clear();
        CloseReason::ServerShutdown
            .close_frame()
            .write_payload(&mut out);
        assert_eq!(&out[..], b"\x03\xe9Server Shutdown");
    }

    #[test]
    fn long_reason_is_cut_to_123_bytes() {
        // TestWSCreateCloseMessage: a 135-byte body becomes 120 bytes + "...".
        let body = "x".repeat(135);
        let frame = CloseFrame::new(CloseCode::PROTOCOL_ERROR, &body);
        assert_eq!(frame.reason().len(), 123);
        assert!(frame.reason().ends_with("..."));
        assert_eq!(frame.payload_len(), 125);
        let exact = "y".repeat(123);
        assert_eq!(CloseFrame::new(CloseCode::NORMAL, &exact).reason(), exact);
        // A multi-byte character across the cut is not split.
        let wide = format!("{}é{}", "a".repeat(119), "b".repeat(10));
        let cut = CloseFrame::new(CloseCode::NORMAL, &wide);
        assert_eq!(cut.reason(), format!("{}...", "a".repeat(119)));
    }

    #[test]
    fn reserved_codes_are_never_sent() {
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            assert!(!CloseCode(code).is_sendable(), "{code}");
            assert_eq!(
                CloseFrame::new(CloseCode(code), "x").code(),
                CloseCode::GOING_AWAY
            );
        }
        for code in [
            1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1014, 3000, 4000, 4999,
        ] {
            assert!(CloseCode(code).is_sendable(), "{code}");
        }
    }
}
