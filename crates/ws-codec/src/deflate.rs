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
use miniz_oxide::inflate::core::{DecompressorOxide, decompress_with_limit, inflate_flags};

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

/// The LZ77 window: the largest back-reference distance RFC 1951 §3.2.5 allows, and the
/// smallest output buffer miniz_oxide accepts in wrapping mode.
const WINDOW_BYTES: usize = 32 * 1024;

/// The first output chunk is estimated from the compressed size (× 4, at least 1 KiB), and grows
/// by doubling; the estimate never exceeds this.
const MAX_OUTPUT_ESTIMATE_BYTES: usize = 64 * 1024;

/// A miniz_oxide decompressor and the window it inflates into (about 43 KiB together).
///
/// The window is filled non-wrapping while a message's first [`WINDOW_BYTES`] are inflated, so
/// miniz_oxide rejects any distance reaching before the start of the message, and wrapping after
/// that, when every distance it accepts (at most [`WINDOW_BYTES`]) lies inside the message. So a
/// reused window never leaks a previous message's bytes, possibly another connection's, into
/// the next one, and it need not be cleared between messages.
struct Decompressor {
    state: Box<DecompressorOxide>,
    window: Box<[u8]>,
}

impl Decompressor {
    fn new() -> Self {
        Self {
            state: Box::default(),
            window: vec![0; WINDOW_BYTES].into_boxed_slice(),
        }
    }
}

/// How far one message's inflation got.
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    /// Compressed bytes consumed.
    in_pos: usize,
    /// Bytes of [`INFLATE_TAIL`] consumed; nonzero once the compressed bytes are all consumed.
    tail_pos: usize,
    /// Inflated bytes produced so far.
    total_out: usize,
}

/// Inflates more of `compressed` (one whole message, without the `00 00 ff ff` tail), appending
/// at most `max_out` bytes to `out`; returns `true` once the message is fully inflated.
///
/// Fails with [`ProtocolError::MessageTooBig`] as soon as the message's inflated total would
/// pass `max_total`, so no more than one byte past it is ever inflated, and with
/// [`ProtocolError::CorruptCompressedData`] on invalid data.
fn inflate_some(
    decompressor: &mut Decompressor,
    progress: &mut Progress,
    compressed: &[u8],
    out: &mut BytesMut,
    max_out: usize,
    max_total: usize,
) -> Result<bool, ProtocolError> {
    let Decompressor { state, window } = decompressor;
    let remaining_in = compressed.len().saturating_sub(progress.in_pos);
    let estimate = remaining_in
        .saturating_mul(4)
        .clamp(1024, MAX_OUTPUT_ESTIMATE_BYTES)
        .min(max_out);
    out.reserve(estimate);
    let start_len = out.len();
    loop {
        let room = max_out.saturating_sub(out.len() - start_len);
        let cap_left = max_total
            .saturating_add(1)
            .saturating_sub(progress.total_out);
        if room == 0 || cap_left == 0 {
            return Ok(false);
        }
        let (input, more) = match compressed.get(progress.in_pos..) {
            Some(rest) if !rest.is_empty() => (rest, inflate_flags::TINFL_FLAG_HAS_MORE_INPUT),
            _ => (INFLATE_TAIL.get(progress.tail_pos..).unwrap_or_default(), 0),
        };
        let (flags, out_pos) = if progress.total_out < WINDOW_BYTES {
            (
                more | inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
                progress.total_out,
            )
        } else {
            (more, progress.total_out % WINDOW_BYTES)
        };
        let (status, consumed, written) =
            decompress_with_limit(state, input, window, out_pos, room.min(cap_left), flags);
        if more == 0 {
            progress.tail_pos = progress.tail_pos.saturating_add(consumed);
        } else {
            progress.in_pos = progress.in_pos.saturating_add(consumed);
        }
        progress.total_out = progress.total_out.saturating_add(written);
        if progress.total_out > max_total {
            return Err(ProtocolError::MessageTooBig);
        }
        if let Some(produced) = window.get(out_pos..out_pos.saturating_add(written)) {
            out.extend_from_slice(produced);
        }
        let progressed = consumed > 0 || written > 0;
        match status {
            TINFLStatus::Done => return Ok(true),
            TINFLStatus::NeedsMoreInput if more != 0 && progressed => {}
            TINFLStatus::HasMoreOutput if progressed => {}
            _ => {
                let consumed_total = progress.in_pos.saturating_add(progress.tail_pos);
                return Err(ProtocolError::CorruptCompressedData(
                    consumed_total.min(compressed.len()),
                ));
            }
        }
    }
}

/// A raw-DEFLATE decompressor with a cap on the inflated size, reused across messages and
/// connections.
///
/// It keeps one spare decompressor (miniz_oxide state plus a 32 KiB window), allocated on first
/// use, and an output buffer whose allocation is reused once the caller has dropped what was
/// handed out. A [`crate::Decoder`] that streams a compressed message over several calls
/// takes the spare for the duration of that message and gives it back at its end.
#[derive(Default)]
pub struct Inflater {
    spare: Option<Decompressor>,
    out: BytesMut,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("spare_decompressor", &self.spare.is_some())
            .field("capacity", &self.out.capacity())
            .finish()
    }
}

impl Inflater {
    /// An inflater; the decompressor is allocated on first use.
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
        let mut decompressor = self.take_decompressor();
        let mut progress = Progress::default();
        self.out.clear();
        let res = inflate_some(
            &mut decompressor,
            &mut progress,
            compressed,
            &mut self.out,
            max_len.saturating_add(1),
            max_len,
        );
        self.spare = Some(decompressor);
        match res {
            Ok(true) => Ok(self.out.split().freeze()),
            // Unreachable: `max_out` exceeds `max_total`, so the cap fails first.
            Ok(false) => Err(ProtocolError::MessageTooBig),
            Err(err) => {
                self.out.clear();
                Err(err)
            }
        }
    }

    /// The spare decompressor, reset for a new message, or a new one.
    fn take_decompressor(&mut self) -> Decompressor {
        let mut decompressor = self.spare.take().unwrap_or_else(Decompressor::new);
        decompressor.state.init();
        decompressor
    }
}

/// One compressed message being inflated a chunk at a time (RFC 7692 §7.2.2), kept by its
/// reader between calls because the [`Inflater`] is shared.
///
/// The decompressor is taken from the [`Inflater`] by the first [`InflateStream::next_chunk`]
/// and given back when the message ends or fails, so a reader holds one only while a message
/// is in progress.
pub(crate) struct InflateStream {
    compressed: Bytes,
    progress: Progress,
    decompressor: Option<Decompressor>,
}

impl std::fmt::Debug for InflateStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InflateStream")
            .field("compressed_len", &self.compressed.len())
            .field("progress", &self.progress)
            .field("holds_decompressor", &self.decompressor.is_some())
            .finish()
    }
}

impl InflateStream {
    /// A stream over one whole compressed message (without the `00 00 ff ff` tail).
    pub(crate) fn new(compressed: Bytes) -> Self {
        Self {
            compressed,
            progress: Progress::default(),
            decompressor: None,
        }
    }

    /// True while the stream holds a decompressor (between its first and last chunk).
    #[cfg(test)]
    pub(crate) fn holds_decompressor(&self) -> bool {
        self.decompressor.is_some()
    }

    /// Inflates the next at most `max_chunk` bytes (at least 1). Returns the bytes and whether
    /// the message is complete; an incomplete message always returns a full chunk, and the last
    /// chunk may be empty.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::MessageTooBig`] once the inflated total would pass `max_total`;
    /// [`ProtocolError::CorruptCompressedData`] on invalid data. Earlier chunks were valid.
    pub(crate) fn next_chunk(
        &mut self,
        inflater: &mut Inflater,
        max_chunk: usize,
        max_total: usize,
    ) -> Result<(BytesMut, bool), ProtocolError> {
        let decompressor = self
            .decompressor
            .get_or_insert_with(|| inflater.take_decompressor());
        let res = inflate_some(
            decompressor,
            &mut self.progress,
            &self.compressed,
            &mut inflater.out,
            max_chunk.max(1),
            max_total,
        );
        let chunk = inflater.out.split();
        match res {
            Ok(false) => Ok((chunk, false)),
            Ok(true) => {
                self.release(inflater);
                Ok((chunk, true))
            }
            Err(err) => {
                self.release(inflater);
                Err(err)
            }
        }
    }

    /// Gives the decompressor back to `inflater` (keeping one spare) and drops the compressed
    /// bytes.
    fn release(&mut self, inflater: &mut Inflater) {
        if let Some(decompressor) = self.decompressor.take()
            && inflater.spare.is_none()
        {
            inflater.spare = Some(decompressor);
        }
        self.compressed = Bytes::new();
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
        assert!(inflater.out.capacity() <= (1 << 21) + 2);
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

    /// Raw DEFLATE bits, least significant first (RFC 1951 §3.1.1).
    #[derive(Default)]
    struct Bits {
        out: Vec<u8>,
        n_bits: usize,
    }

    impl Bits {
        fn push(&mut self, value: u32, len: usize) {
            for i in 0..len {
                if self.n_bits.is_multiple_of(8) {
                    self.out.push(0);
                }
                if value >> i & 1 != 0 {
                    *self.out.last_mut().unwrap() |= 1 << (self.n_bits % 8);
                }
                self.n_bits += 1;
            }
        }

        /// A Huffman code, which is packed most significant bit first.
        fn push_code(&mut self, code: u32, len: usize) {
            for i in (0..len).rev() {
                self.push(code >> i & 1, 1);
            }
        }
    }

    #[test]
    fn distance_before_the_message_start_is_corrupt_after_reuse() {
        // A final fixed-code block whose first symbol copies 3 bytes from distance 1, before
        // anything was inflated. The window still holds the previous message's bytes (possibly
        // another connection's), which must not leak into this one.
        let mut bits = Bits::default();
        bits.push(1, 1); // BFINAL
        bits.push(1, 2); // BTYPE 01: fixed Huffman codes
        bits.push_code(0b000_0001, 7); // length code 257: length 3
        bits.push_code(0, 5); // distance code 0: distance 1
        bits.push_code(0, 7); // end of block
        let bad = bits.out;
        let secret = vec![b's'; 40_000];
        let mut inflater = Inflater::new();
        assert_eq!(
            inflater.inflate(&deflate(&secret), 40_000).unwrap().len(),
            40_000
        );
        assert!(matches!(
            inflater.inflate(&bad, 1000),
            Err(ProtocolError::CorruptCompressedData(_))
        ));
        for chunk in [1, 2, 1000] {
            let mut stream = InflateStream::new(Bytes::from(deflate(&secret)));
            while !stream.next_chunk(&mut inflater, chunk, 1 << 20).unwrap().1 {}
            let mut stream = InflateStream::new(Bytes::from(bad.clone()));
            assert!(matches!(
                stream.next_chunk(&mut inflater, chunk, 1000),
                Err(ProtocolError::CorruptCompressedData(_))
            ));
        }
        // The same symbol after one literal is valid: "a" then "aaa".
        let mut bits = Bits::default();
        bits.push(1, 1);
        bits.push(1, 2);
        bits.push_code(0x30 + u32::from(b'a'), 8); // literals 0-143: 8-bit codes from 0x30
        bits.push_code(0b000_0001, 7);
        bits.push_code(0, 5);
        bits.push_code(0, 7);
        assert_eq!(&inflater.inflate(&bits.out, 10).unwrap()[..], b"aaaa");
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Inflating a chunk at a time gives the whole-message result in full chunks, for any
        /// chunk size (within and across the 32 KiB window), with one inflater reused.
        #[test]
        fn chunks_join_to_the_whole_message(
            seed in any::<u64>(),
            len in prop_oneof![0usize..3000, 30_000usize..140_000],
            chunk in prop_oneof![1usize..64, 1usize..70_000],
        ) {
            let mut x = seed | 1;
            let mut text = Vec::with_capacity(len);
            while text.len() < len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let run = usize::try_from(x % 300).unwrap();
                if x & 0x100 == 0 {
                    // Repeats from far back, so that distances reach across the window.
                    let from = text.len().saturating_sub(usize::try_from(x >> 40).unwrap() % 40_000);
                    let copy: Vec<u8> = text[from..].iter().take(run).copied().collect();
                    text.extend_from_slice(&copy);
                }
                text.extend((0..run % 7).map(|i| x.to_le_bytes()[i]));
            }
            text.truncate(len);
            let mut compressed = BytesMut::new();
            Deflater::new().deflate(&[&text], &mut compressed).unwrap();
            let mut inflater = Inflater::new();
            let whole = inflater.inflate(&compressed, len).unwrap();
            prop_assert_eq!(&whole[..], &text[..]);
            let mut stream = InflateStream::new(compressed.freeze());
            let mut joined = Vec::new();
            loop {
                let (piece, finished) = stream.next_chunk(&mut inflater, chunk, len).unwrap();
                prop_assert!(piece.len() == chunk || (finished && piece.len() < chunk));
                joined.extend_from_slice(&piece);
                if finished {
                    break;
                }
            }
            prop_assert_eq!(&joined[..], &text[..]);
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
