//! Frame header layout (RFC 6455 §5.2): opcodes and the header encoder.
//!
//! Header *parsing* with validation lives in [`crate::Decoder`], because which bits are legal
//! depends on the connection (role, negotiated extensions, message in progress).

/// The largest frame header: 2 bytes, a 64-bit extended length and a 4-byte mask key.
pub const MAX_HEADER_BYTES: usize = 14;

/// The largest payload of a control frame (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD_BYTES: usize = 125;

/// A frame's opcode (RFC 6455 §5.2). Reserved opcodes are rejected by the decoder and cannot be
/// represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0: continuation of a fragmented data message.
    Continuation,
    /// 1: first frame of a text message.
    Text,
    /// 2: first frame of a binary message.
    Binary,
    /// 8: close.
    Close,
    /// 9: ping.
    Ping,
    /// 10: pong.
    Pong,
}

impl OpCode {
    /// The opcode's 4-bit wire value.
    #[must_use]
    pub fn as_u8(self) -> u8 {
        match self {
            Self::Continuation => 0,
            Self::Text => 1,
            Self::Binary => 2,
            Self::Close => 8,
            Self::Ping => 9,
            Self::Pong => 10,
        }
    }

    /// The opcode for a 4-bit wire value, or `None` for the reserved values 3–7 and 11–15.
    #[must_use]
    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::Continuation),
            1 => Some(Self::Text),
            2 => Some(Self::Binary),
            8 => Some(Self::Close),
            9 => Some(Self::Ping),
            10 => Some(Self::Pong),
            _ => None,
        }
    }

    /// True for close, ping and pong (RFC 6455 §5.5).
    #[must_use]
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// The fields of a frame header that an encoder chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the last frame of its message.
    pub fin: bool,
    /// RSV1: the message is compressed (RFC 7692); only set on a message's first frame.
    pub rsv1: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The mask key; `Some` for frames sent by a client.
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Writes the header with the shortest length form into `buf` and returns its length
    /// (2 to [`MAX_HEADER_BYTES`]).
    pub fn encode(&self, buf: &mut [u8; MAX_HEADER_BYTES]) -> usize {
        let mut b0 = self.opcode.as_u8();
        if self.fin {
            b0 |= 0x80;
        }
        if self.rsv1 {
            b0 |= 0x40;
        }
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let len = self.payload_len;
        let mut n = match len {
            0..=125 => {
                buf[0] = b0;
                buf[1] = mask_bit | len.to_be_bytes()[7];
                2
            }
            126..=0xffff => {
                let [.., hi, lo] = len.to_be_bytes();
                *buf = [b0, mask_bit | 126, hi, lo, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                4
            }
            _ => {
                let [a, b, c, d, e, f, g, h] = len.to_be_bytes();
                *buf = [b0, mask_bit | 127, a, b, c, d, e, f, g, h, 0, 0, 0, 0];
                10
            }
        };
        if let Some([k0, k1, k2, k3]) = self.mask {
            if let Some(dst) = buf.get_mut(n..n + 4) {
                dst.copy_from_slice(&[k0, k1, k2, k3]);
            }
            n += 4;
        }
        n
    }
}

/// Writes `header` into `buf` and returns its length; the free-function form of
/// [`FrameHeader::encode`].
pub fn encode_header(header: &FrameHeader, buf: &mut [u8; MAX_HEADER_BYTES]) -> usize {
    header.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        fin: bool,
        rsv1: bool,
        opcode: OpCode,
        len: u64,
        mask: Option<[u8; 4]>,
        expect: &[u8],
    ) {
        let mut buf = [0u8; MAX_HEADER_BYTES];
        let header = FrameHeader {
            fin,
            rsv1,
            opcode,
            mask,
            payload_len: len,
        };
        let n = header.encode(&mut buf);
        assert_eq!(&buf[..n], expect);
    }

    #[test]
    fn header_length_forms() {
        // TestWSCreateFrameHeader: 10 / 600 / 100000 give 2 / 4 / 10-byte headers.
        check(true, false, OpCode::Binary, 10, None, &[0x82, 10]);
        check(
            true,
            false,
            OpCode::Text,
            600,
            None,
            &[0x81, 126, 0x02, 0x58],
        );
        check(
            true,
            true,
            OpCode::Binary,
            100_000,
            None,
            &[0xc2, 127, 0, 0, 0, 0, 0, 0x01, 0x86, 0xa0],
        );
        check(true, false, OpCode::Binary, 125, None, &[0x82, 125]);
        check(true, false, OpCode::Binary, 126, None, &[0x82, 126, 0, 126]);
        check(
            true,
            false,
            OpCode::Binary,
            65535,
            None,
            &[0x82, 126, 0xff, 0xff],
        );
        check(
            true,
            false,
            OpCode::Binary,
            65536,
            None,
            &[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0],
        );
        check(false, false, OpCode::Continuation, 3, None, &[0x00, 3]);
    }

    #[test]
    fn rfc6455_5_7_masked_header() {
        check(
            true,
            false,
            OpCode::Text,
            5,
            Some([0x37, 0xfa, 0x21, 0x3d]),
            &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d],
        );
    }

    #[test]
    fn control_opcodes() {
        // TestWSIsControlFrame.
        for (op, control) in [
            (OpCode::Close, true),
            (OpCode::Ping, true),
            (OpCode::Pong, true),
            (OpCode::Text, false),
            (OpCode::Binary, false),
            (OpCode::Continuation, false),
        ] {
            assert_eq!(op.is_control(), control);
            assert_eq!(OpCode::from_u8(op.as_u8()), Some(op));
        }
        for reserved in [3u8, 4, 5, 6, 7, 11, 12, 13, 14, 15] {
            assert_eq!(OpCode::from_u8(reserved), None);
        }
    }
}
