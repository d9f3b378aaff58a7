//! Errors and their single mapping to close frames: no other code decides which close code an
//! error puts on the wire.

use std::fmt;

use crate::close::{CloseCode, CloseFrame};

/// Why the decoder failed the connection. `Display` gives nats-server's error text where it has
/// one; [`ProtocolError::close_code`] is the only place that decides the close status.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Server role: a client frame without the mask bit (and no-masking was not agreed).
    MaskBitMissing,
    /// Client role: a server frame with the mask bit (RFC 6455 §5.1).
    MaskedFrameFromServer,
    /// A reserved opcode (3–7, 11–15); holds the opcode.
    UnknownOpcode(u8),
    /// RSV2 or RSV3 set (no extension defines them).
    ReservedBitsSet,
    /// RSV1 on a data frame while permessage-deflate was not negotiated.
    CompressedWithoutDeflate,
    /// A control frame with a payload over 125 bytes.
    ControlFrameTooLong,
    /// A control frame without FIN.
    ControlFrameNotFinal,
    /// A control frame with RSV1.
    ControlFrameCompressed,
    /// A text or binary frame while a fragmented message is still open.
    NewMessageBeforeFinal,
    /// A continuation frame with no message open, or with RSV1.
    InvalidContinuation,
    /// A 64-bit length with the most significant bit set.
    InvalidPayloadLength,
    /// A close frame whose payload is one byte.
    CloseFrameOneByte,
    /// A close frame with a status that must not be sent; holds the status.
    InvalidCloseCode(u16),
    /// A close frame whose reason is not UTF-8.
    InvalidCloseReason,
    /// A text message that is not UTF-8 (message delivery only).
    InvalidUtf8,
    /// A message (declared frame lengths, or the compressed or inflated size) over its limit.
    MessageTooBig,
    /// More fragments in one message than [`crate::Limits::max_fragments`].
    TooManyFragments,
    /// The compressed data could not be inflated; holds the compressed input offset.
    CorruptCompressedData(usize),
}

impl ProtocolError {
    /// The close status to send for this error.
    #[must_use]
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::MaskBitMissing
            | Self::MaskedFrameFromServer
            | Self::UnknownOpcode(_)
            | Self::ReservedBitsSet
            | Self::CompressedWithoutDeflate
            | Self::ControlFrameTooLong
            | Self::ControlFrameNotFinal
            | Self::ControlFrameCompressed
            | Self::NewMessageBeforeFinal
            | Self::InvalidContinuation
            | Self::InvalidPayloadLength
            | Self::CloseFrameOneByte
            | Self::InvalidCloseCode(_) => CloseCode::PROTOCOL_ERROR,
            Self::InvalidCloseReason | Self::InvalidUtf8 | Self::CorruptCompressedData(_) => {
                CloseCode::INVALID_PAYLOAD
            }
            Self::MessageTooBig | Self::TooManyFragments => CloseCode::MESSAGE_TOO_BIG,
        }
    }

    /// The close frame to send: [`Self::close_code`] with the error text as the reason, as
    /// nats-server's `wsHandleProtocolError` builds it.
    #[must_use]
    pub fn close_frame(&self) -> CloseFrame {
        CloseFrame::new(self.close_code(), &self.to_string())
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MaskBitMissing => f.write_str("mask bit missing"),
            Self::MaskedFrameFromServer => f.write_str("masked frame received from server"),
            Self::UnknownOpcode(op) => write!(f, "unknown opcode {op}"),
            Self::ReservedBitsSet => f.write_str("RSV2 and RSV3 must be clear"),
            Self::CompressedWithoutDeflate => {
                f.write_str("compressed frame received without negotiated permessage-deflate")
            }
            Self::ControlFrameTooLong => {
                f.write_str("control frame length bigger than maximum allowed of 125 bytes")
            }
            Self::ControlFrameNotFinal => f.write_str("control frame does not have final bit set"),
            Self::ControlFrameCompressed => f.write_str("control frame must not be compressed"),
            Self::NewMessageBeforeFinal => f.write_str(
                "new message started before final frame for previous message was received",
            ),
            Self::InvalidContinuation => f.write_str("invalid continuation frame"),
            Self::InvalidPayloadLength => f.write_str("invalid 64-bit payload length"),
            Self::CloseFrameOneByte => f.write_str("close frame payload cannot be 1 byte"),
            Self::InvalidCloseCode(code) => write!(f, "invalid close status code {code}"),
            Self::InvalidCloseReason => f.write_str("invalid utf8 body in close frame"),
            Self::InvalidUtf8 => f.write_str("invalid utf8 in text message"),
            Self::MessageTooBig => f.write_str("maximum payload exceeded"),
            Self::TooManyFragments => f.write_str("too many fragments in message"),
            Self::CorruptCompressedData(offset) => {
                write!(f, "flate: corrupt input before offset {offset}")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// The compressor failed (nats-server closes with `Write Error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeflateError;

impl fmt::Display for DeflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deflate failed")
    }
}

impl std::error::Error for DeflateError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(err: ProtocolError, code: u16, text: &str) {
        assert_eq!(err.close_code(), CloseCode(code));
        assert_eq!(err.to_string(), text);
        let frame = err.close_frame();
        assert_eq!(frame.code(), CloseCode(code));
        assert_eq!(frame.reason(), text);
    }

    #[test]
    fn error_texts_and_codes() {
        check(ProtocolError::MaskBitMissing, 1002, "mask bit missing");
        check(ProtocolError::UnknownOpcode(3), 1002, "unknown opcode 3");
        check(
            ProtocolError::ReservedBitsSet,
            1002,
            "RSV2 and RSV3 must be clear",
        );
        check(
            ProtocolError::CompressedWithoutDeflate,
            1002,
            "compressed frame received without negotiated permessage-deflate",
        );
        check(
            ProtocolError::ControlFrameTooLong,
            1002,
            "control frame length bigger than maximum allowed of 125 bytes",
        );
        check(
            ProtocolError::ControlFrameNotFinal,
            1002,
            "control frame does not have final bit set",
        );
        check(
            ProtocolError::ControlFrameCompressed,
            1002,
            "control frame must not be compressed",
        );
        check(
            ProtocolError::NewMessageBeforeFinal,
            1002,
            "new message started before final frame for previous message was received",
        );
        check(
            ProtocolError::InvalidContinuation,
            1002,
            "invalid continuation frame",
        );
        check(
            ProtocolError::InvalidPayloadLength,
            1002,
            "invalid 64-bit payload length",
        );
        check(
            ProtocolError::CloseFrameOneByte,
            1002,
            "close frame payload cannot be 1 byte",
        );
        check(
            ProtocolError::InvalidCloseCode(1005),
            1002,
            "invalid close status code 1005",
        );
        check(
            ProtocolError::InvalidCloseReason,
            1007,
            "invalid utf8 body in close frame",
        );
        check(
            ProtocolError::MessageTooBig,
            1009,
            "maximum payload exceeded",
        );
        check(
            ProtocolError::CorruptCompressedData(7),
            1007,
            "flate: corrupt input before offset 7",
        );
    }
}
