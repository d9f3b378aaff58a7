//! permessage-deflate (RFC 7692) with no context takeover in either direction.
//!
//! Because no state carries from one message to the next, one [`Deflater`] and one [`Inflater`]
//! can serve every connection of an event loop: each call resets the state it reuses. Both
//! allocate their miniz_oxide state on first use, so owning one costs nothing until compression
//! is negotiated.

use bytes::{Bytes, BytesMut};
use miniz_oxide::deflate::core::deflate_flags::TDEFL_FORCE_ALL_STATIC_BLOCKS;
use miniz_oxide::deflate::core::{
    CompressorOxide, TDEFLFlush, TDEFLStatus, compress_to_output, create_comp_flags_from_zip_params,
};
use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};

use crate::error::{DeflateError, ProtocolError};

/// The tail a sync flush leaves, which RFC 7692 §7.2.1 removes and §7.2.2 appends back.
pub const SYNC_FLUSH_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Appended when inflating: the sync-flush tail plus an empty final stored block, so the
/// inflater reaches the end of the stream cleanly (as nats-server does).
const INFLATE_TAIL: [u8; 9] = [0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff];

/// Compression level used for every message (nats-server uses Go's `BestSpeed`).
const LEVEL: i32 = 1;

/// Messages up to this many bytes are compressed with the fixed Huffman codes of RFC 1951
/// §3.2.6 instead of codes built for the message. Building, optimising and sending dynamic codes
/// costs about 3 µs per message, a third of the whole cost of a 1 KiB message, and for short text
/// the fixed codes give output of about the same size (JSON-like NATS text: 128 B → 105 vs 110
/// bytes, 256 B → 133 vs 136, 512 B → 199 vs 186, 1 KiB → 316 vs 270, each counting the sync
/// tail).
const FIXED_HUFFMAN_MAX_BYTES: usize = 512;

/// A raw-DEFLATE compressor for whole messages, reused across messages and connections.
///
/// It holds two miniz_oxide states, each allocated on first use: one that builds Huffman codes
/// per message and one that only uses the fixed codes (for messages of at most 512 bytes, where
/// building codes costs more than it saves).
#[derive(Default)]
pub struct Deflater {
    dynamic: Option<Box<CompressorOxide>>,
    fixed: Option<Box<CompressorOxide>>,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater")
            .field("allocated", &self.dynamic.is_some())
            .field("fixed_allocated", &self.fixed.is_some())
            .finish()
    }
}

impl Deflater {
    /// A deflater; the compressor state is allocated on first use.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Compresses the concatenation of `chunks` as one message: level 1, sync flush, with the
    /// trailing `00 00 ff ff` removed (RFC 7692 §7.2.1). Appends the result to `out` and returns
    /// the number of bytes appended.
    ///
    /// # Errors
    ///
    /// [`DeflateError`] when the compressor reports a failure (not expected in practice).
    pub fn deflate<C: AsRef<[u8]>>(
        &mut self,
        chunks: &[C],
        out: &mut BytesMut,
    ) -> Result<usize, DeflateError> {
        let total_len = chunks.iter().fold(0usize, |sum, chunk| {
            sum.saturating_add(chunk.as_ref().len())
        });
        let (slot, extra_flags) = if total_len <= FIXED_HUFFMAN_MAX_BYTES {
            (&mut self.fixed, TDEFL_FORCE_ALL_STATIC_BLOCKS)
        } else {
            (&mut self.dynamic, 0)
        };
        let state = slot.get_or_insert_with(|| {
            Box::new(CompressorOxide::new(
                create_comp_flags_from_zip_params(LEVEL, -15, 0) | extra_flags,
            ))
        });
        state.reset();
        let start = out.len();
        let mut sink = |data: &[u8]| {
            out.extend_from_slice(data);
            true
        };
        for chunk in chunks {
            let mut input = chunk.as_ref();
            while !input.is_empty() {
                let (status, consumed) =
                    compress_to_output(state, input, TDEFLFlush::None, &mut sink);
                if status != TDEFLStatus::Okay || consumed == 0 {
                    return Err(DeflateError);
                }
                input = input.get(consumed..).unwrap_or_default();
            }
        }
        let (status, _) = compress_to_output(state, &[], TDEFLFlush::Sync, &mut sink);
        if status != TDEFLStatus::Okay {
            return Err(DeflateError);
        }
        if out.len() < start + SYNC_FLUSH_TAIL.len() || !out.ends_with(&SYNC_FLUSH_TAIL) {
            return Err(DeflateError);
        }
        out.truncate(out.len() - SYNC_FLUSH_TAIL.len());
        Ok(out.len() - start)
    }
}

/// A raw-DEFLATE decompressor for whole messages with a hard cap on the inflated size, reused
/// across messages and connections.
#[derive(Default)]
pub struct Inflater {
    state: Option<Box<DecompressorOxide>>,
    out: BytesMut,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("allocated", &self.state.is_some())
            .field("capacity", &self.out.capacity())
            .finish()
    }
}

impl Inflater {
    /// An inflater; the decompressor state is allocated on first use.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Inflates one compressed message (its frames' payloads joined, without the `00 00 ff ff`
    /// tail) with a fresh state. The output never grows past `max_len + 1` bytes.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::MessageTooBig`] when the message inflates to more than `max_len`
    /// bytes; [`ProtocolError::CorruptCompressedData`] when it is not valid DEFLATE data.
    pub fn inflate(&mut self, compressed: &[u8], max_len: usize) -> Result<Bytes, ProtocolError> {
        let state = self
            .state
            .get_or_insert_with(|| Box::new(DecompressorOxide::new()));
        state.init();
        let cap = max_len.saturating_add(1);
        self.out.clear();
        let initial = compressed
            .len()
            .saturating_mul(4)
            .clamp(1024, 64 * 1024)
            .min(cap);
        self.out.resize(initial, 0);
        let mut out_pos = 0usize;
        let mut consumed_total = 0usize;
        let inputs: [(&[u8], u32); 2] = [
            (compressed, inflate_flags::TINFL_FLAG_HAS_MORE_INPUT),
            (&INFLATE_TAIL, 0),
        ];
        'inputs: for (input, more) in inputs {
            let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF | more;
            let mut input = input;
            loop {
                let (status, consumed, written) =
                    decompress(state, input, &mut self.out, out_pos, flags);
                input = input.get(consumed..).unwrap_or_default();
                consumed_total = consumed_total.saturating_add(consumed);
                out_pos += written;
                if out_pos > max_len {
                    return Err(ProtocolError::MessageTooBig);
                }
                match status {
                    TINFLStatus::Done => break 'inputs,
                    TINFLStatus::NeedsMoreInput if more != 0 => break,
                    TINFLStatus::HasMoreOutput => {
                        let len = self.out.len();
                        if len >= cap {
                            return Err(ProtocolError::MessageTooBig);
                        }
                        self.out.resize(len.saturating_mul(2).min(cap), 0);
                    }
                    _ => {
                        return Err(ProtocolError::CorruptCompressedData(
                            consumed_total.min(compressed.len()),
                        ));
                    }
                }
            }
        }
        self.out.truncate(out_pos);
        Ok(self.out.split().freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        Deflater::new().deflate(&[data], &mut out).unwrap();
        out.to_vec()
    }

    #[test]
    fn rfc7692_7_2_3_1_hello() {
        // "Hello" compressed as in RFC 7692 §7.2.3.1 (fixed Huffman block, tail removed).
        let payload = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let mut inflater = Inflater::new();
        assert_eq!(&inflater.inflate(&payload, 100).unwrap()[..], b"Hello");
        // §7.2.3.3: a message in an uncompressed (stored) block.
        let stored = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        assert_eq!(&inflater.inflate(&stored, 100).unwrap()[..], b"Hello");
        // §7.2.3.4: a message ending in a block with BFINAL set.
        let bfinal = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(&inflater.inflate(&bfinal, 100).unwrap()[..], b"Hello");
        // §7.2.3.5: two deflate blocks in one message.
        let two = [
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ];
        assert_eq!(&inflater.inflate(&two, 100).unwrap()[..], b"Hello");
    }

    #[test]
    fn rfc7692_7_2_3_2_no_context_takeover() {
        // Sharing the LZ77 window is not allowed here, so the same message compresses the same
        // way twice and each inflates alone.
        let first = deflate(b"Hello");
        let second = deflate(b"Hello");
        assert_eq!(first, second);
        let mut inflater = Inflater::new();
        assert_eq!(&inflater.inflate(&second, 5).unwrap()[..], b"Hello");
    }

    #[test]
    fn round_trip_and_tail_stripped() {
        let text: Vec<u8> = br#"{"subject":"orders.created","id":1234,"items":[1,2,3]}"#.repeat(50);
        let compressed = deflate(&text);
        assert!(compressed.len() < text.len() / 5);
        assert!(!compressed.ends_with(&SYNC_FLUSH_TAIL));
        let mut inflater = Inflater::new();
        assert_eq!(
            &inflater.inflate(&compressed, text.len()).unwrap()[..],
            &text[..]
        );
        // Chunked input gives a stream that inflates to the same bytes.
        let mut out = BytesMut::new();
        let chunks: Vec<&[u8]> = text.chunks(7).collect();
        Deflater::new().deflate(&chunks, &mut out).unwrap();
        assert_eq!(&inflater.inflate(&out, text.len()).unwrap()[..], &text[..]);
    }

    #[test]
    fn inflated_size_is_capped() {
        let zeros = vec![0u8; 1 << 20];
        let bomb = deflate(&zeros);
        assert!(bomb.len() < 10_000, "{}", bomb.len());
        let mut inflater = Inflater::new();
        assert_eq!(
            inflater.inflate(&bomb, (1 << 20) - 1),
            Err(ProtocolError::MessageTooBig)
        );
        assert_eq!(inflater.inflate(&bomb, 1 << 20).unwrap().len(), 1 << 20);
        assert!(inflater.out.capacity() <= (1 << 21) + 1);
    }

    #[test]
    fn corrupt_input_is_an_error() {
        // TestWSReadCompressedFrameCorrupted.
        let mut inflater = Inflater::new();
        let err = inflater
            .inflate(&[0xff, 0xff, 0xff, 0x00, 0x12], 1000)
            .unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
        assert_eq!(err.close_code().0, 1007);
        // The inflater is usable again afterwards.
        assert_eq!(&inflater.inflate(&deflate(b"ok"), 10).unwrap()[..], b"ok");
    }

    #[test]
    fn empty_message() {
        let compressed = deflate(b"");
        let mut inflater = Inflater::new();
        assert_eq!(inflater.inflate(&compressed, 0).unwrap().len(), 0);
        assert_eq!(inflater.inflate(&[0x00], 0).unwrap().len(), 0);
    }
}

#[cfg(test)]
mod steady_state_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// One deflater reused across messages (no reset between them) gives each message the
        /// bytes a fresh deflater gives it, and each inflates alone: no context is taken over.
        #[test]
        fn reused_deflater_takes_no_context_over(
            messages in proptest::collection::vec(
                proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 0..3000),
                1..6,
            ),
            chunk_len in 1usize..600,
        ) {
            let mut reused = Deflater::new();
            let mut inflater = Inflater::new();
            for message in &messages {
                let chunks: Vec<&[u8]> = message.chunks(chunk_len).collect();
                let mut out = BytesMut::new();
                reused.deflate(&chunks, &mut out).unwrap();
                let mut fresh = BytesMut::new();
                Deflater::new().deflate(&chunks, &mut fresh).unwrap();
                prop_assert_eq!(&out[..], &fresh[..]);
                prop_assert_eq!(&inflater.inflate(&out, message.len()).unwrap()[..], &message[..]);
            }
        }
    }

    #[test]
    fn short_messages_use_the_fixed_huffman_codes() {
        // BTYPE is bits 1-2 of the first byte: 01 fixed codes, 10 dynamic codes (RFC 1951 §3.2.3).
        let text = br#"{"subject":"orders.created","id":1234,"items":[1,2,3]}"#.repeat(20);
        let mut deflater = Deflater::new();
        let mut inflater = Inflater::new();
        for (len, btype) in [
            (FIXED_HUFFMAN_MAX_BYTES, 1),
            (FIXED_HUFFMAN_MAX_BYTES + 1, 2),
            (100, 1),
            (1000, 2),
            (100, 1),
        ] {
            let mut out = BytesMut::new();
            deflater.deflate(&[&text[..len]], &mut out).unwrap();
            assert_eq!((out[0] >> 1) & 3, btype, "len {len}");
            assert_eq!(&inflater.inflate(&out, len).unwrap()[..], &text[..len]);
        }
    }

    #[test]
    fn history_is_dropped_between_messages() {
        // The second message repeats the first; with context takeover it would compress to a
        // single back-reference. Without, it compresses exactly as it does alone.
        let text = br#"{"subject":"orders.created","id":1234,"items":[1,2,3]}"#;
        let mut deflater = Deflater::new();
        let (mut first, mut second) = (BytesMut::new(), BytesMut::new());
        deflater.deflate(&[&text[..]], &mut first).unwrap();
        deflater.deflate(&[&text[..]], &mut second).unwrap();
        assert_eq!(first, second);
        assert_eq!(
            &Inflater::new().inflate(&second, text.len()).unwrap()[..],
            &text[..]
        );
    }

    #[test]
    fn inflate_output_reuses_its_allocation() {
        // No allocation per message: once the caller dropped the previous message, the next
        // one is inflated into the same memory.
        let text = b"{\"subject\":\"orders\",\"n\":1}".repeat(40);
        let mut compressed = BytesMut::new();
        Deflater::new()
            .deflate(&[&text[..]], &mut compressed)
            .unwrap();
        let mut inflater = Inflater::new();
        let first = inflater.inflate(&compressed, 1 << 20).unwrap();
        let first_ptr = first.as_ptr() as usize;
        drop(first);
        for _ in 0..5 {
            let again = inflater.inflate(&compressed, 1 << 20).unwrap();
            assert_eq!(again.as_ptr() as usize, first_ptr);
            assert_eq!(&again[..], &text[..]);
        }
    }
}
