//! The frame encoder: framing at flush time (nats-server's `server/websocket.go`
//! `wsCollapsePtoNB`).
//!
//! The caller hands over the pending byte stream of one flush as a list of `Bytes` chunks. The
//! encoder appends, to the caller's output list, frame headers and payload slices ready for one
//! vectored write. Headers (and payload slices below [`COPY_THRESHOLD_BYTES`]) are written into
//! a caller-owned arena `BytesMut` and split off as `Bytes`; larger payload slices are shared
//! with the input and never copied. Masked (client) payloads and compressed payloads are
//! necessarily new bytes and also come from the arena.

use std::num::NonZeroUsize;

use bytes::{Buf, Bytes, BytesMut};

use crate::decode::{Control, MessageKind};
use crate::deflate::Deflater;
use crate::error::DeflateError;
use crate::frame::{FrameHeader, MAX_CONTROL_PAYLOAD_BYTES, MAX_HEADER_BYTES, OpCode};
use crate::mask::apply_mask;

/// The frame size limit nats-server applies for browsers (`User-Agent` starting `Mozilla/`).
pub const BROWSER_MAX_FRAME_BYTES: usize = 4096;

/// Flushes of at most this many bytes are sent uncompressed even when deflate was negotiated.
pub const COMPRESS_THRESHOLD_BYTES: usize = 64;

/// Payload slices shorter than this are copied next to their header instead of being sent as
/// their own vectored-write entry.
pub const COPY_THRESHOLD_BYTES: usize = 256;

/// Where a client-role encoder gets a fresh mask key for each frame (RFC 6455 §5.3 wants them
/// unpredictable: use a CSPRNG). Server-role encoders use [`Unmasked`].
pub trait MaskKeySource {
    /// The key for the next frame, or `None` to send it unmasked.
    fn next_mask_key(&mut self) -> Option<[u8; 4]>;
}

/// Frames are not masked (server role, or a client after `Nats-No-Masking` was agreed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unmasked;

impl MaskKeySource for Unmasked {
    fn next_mask_key(&mut self) -> Option<[u8; 4]> {
        None
    }
}

impl<F: FnMut() -> [u8; 4]> MaskKeySource for F {
    fn next_mask_key(&mut self) -> Option<[u8; 4]> {
        Some(self())
    }
}

/// Per-connection framing settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderConfig {
    /// The largest frame payload; `None` puts each flush in one frame.
    pub max_frame_payload: Option<NonZeroUsize>,
    /// permessage-deflate was negotiated.
    pub deflate: bool,
    /// Flushes of at most this many bytes are not compressed.
    pub compress_threshold: usize,
    /// Whether a compressed message larger than `max_frame_payload` may be fragmented
    /// (nats-server says no for Safari).
    pub fragment_compressed: bool,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            max_frame_payload: None,
            deflate: false,
            compress_threshold: COMPRESS_THRESHOLD_BYTES,
            fragment_compressed: true,
        }
    }
}

impl EncoderConfig {
    /// nats-server's settings for a peer with this `User-Agent` (`server/websocket.go`
    /// `wsUpgrade`): browsers
    /// (`Mozilla/...`) get 4 KiB frames, and Safari (`Version/` and `Safari/`) gets compressed
    /// messages unfragmented.
    #[must_use]
    pub fn for_user_agent(deflate: bool, user_agent: Option<&str>) -> Self {
        let browser = user_agent.is_some_and(|ua| ua.starts_with("Mozilla/"));
        let safari = browser
            && user_agent.is_some_and(|ua| ua.contains("Version/") && ua.contains("Safari/"));
        Self {
            max_frame_payload: if browser {
                NonZeroUsize::new(BROWSER_MAX_FRAME_BYTES)
            } else {
                None
            },
            deflate,
            fragment_compressed: !(deflate && safari),
            ..Self::default()
        }
    }
}

/// Appends to the arena and the output list.
struct Sink<'a, O> {
    arena: &'a mut BytesMut,
    out: &'a mut O,
    wire_bytes: usize,
}

impl<O: Extend<Bytes>> Sink<'_, O> {
    fn copy(&mut self, data: &[u8]) {
        self.arena.extend_from_slice(data);
        self.wire_bytes += data.len();
    }

    fn copy_masked(&mut self, data: &[u8], key: [u8; 4], pos: usize) -> usize {
        let start = self.arena.len();
        self.arena.extend_from_slice(data);
        self.wire_bytes += data.len();
        self.arena
            .get_mut(start..)
            .map_or(pos, |dst| apply_mask(dst, key, pos))
    }

    fn share(&mut self, data: Bytes) {
        self.flush();
        self.wire_bytes += data.len();
        self.out.extend(Some(data));
    }

    fn flush(&mut self) {
        if !self.arena.is_empty() {
            self.out.extend(Some(self.arena.split().freeze()));
        }
    }
}

/// The frame encoder for one connection. `K` decides masking: [`Unmasked`] for servers, a key
/// source for clients.
pub struct Encoder<K = Unmasked> {
    config: EncoderConfig,
    keys: K,
    /// Reused list of the current frame's payload slices.
    parts: Vec<Bytes>,
}

impl<K> std::fmt::Debug for Encoder<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Encoder<Unmasked> {
    /// A server-role encoder: frames are never masked.
    #[must_use]
    pub fn server(config: EncoderConfig) -> Self {
        Self::with_mask_keys(config, Unmasked)
    }
}

/// The header of a frame whose payload the caller writes itself, straight from its own
/// buffers (see [`Encoder::in_place_header`]): at most [`MAX_HEADER_BYTES`] on the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InPlaceHeader {
    buf: [u8; MAX_HEADER_BYTES],
    len: usize,
}

impl InPlaceHeader {
    /// The header bytes, to be written just before the payload.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

impl Encoder<Unmasked> {
    /// The fast path of [`Encoder::encode_stream`]: when this encoder would send a flush of
    /// `len` pending bytes as one frame carrying them unchanged (no frame size limit, and no
    /// compression negotiated or the flush at most the compression threshold), returns that
    /// frame's header (FIN, binary, unmasked), so that the caller writes the header and then
    /// its pending bytes from where they are, with no copy and no arena. `None` when the
    /// flush must go through [`Encoder::encode_stream`] (a frame size limit, a compressed
    /// flush) or is empty.
    ///
    /// The bytes written are exactly those `encode_stream` would produce for the same flush.
    /// Only unmasked (server-role) encoders have this path: a client must mask its payload.
    ///
    /// ```
    /// use bytes::{Bytes, BytesMut};
    /// use ws_codec::{Deflater, Encoder, EncoderConfig};
    ///
    /// let encoder = Encoder::server(EncoderConfig::default());
    /// let pending = b"MSG a 1 5\r\nhello\r\n";
    /// let header = encoder.in_place_header(pending.len()).unwrap();
    /// assert_eq!(header.as_bytes(), [0x82, 18]);
    ///
    /// // The same bytes as the general path.
    /// let mut framed = Vec::new();
    /// Encoder::server(EncoderConfig::default())
    ///     .encode_stream(
    ///         &[Bytes::from_static(pending)],
    ///         &mut Deflater::new(),
    ///         &mut BytesMut::new(),
    ///         &mut framed,
    ///     )
    ///     .unwrap();
    /// let wire: Vec<u8> = framed.iter().flat_map(|b| b.iter().copied()).collect();
    /// assert_eq!(wire, [header.as_bytes(), &pending[..]].concat());
    /// ```
    #[must_use]
    pub fn in_place_header(&self, len: usize) -> Option<InPlaceHeader> {
        let config = &self.config;
        let compressed = config.deflate && len > config.compress_threshold;
        if len == 0 || compressed || config.max_frame_payload.is_some() {
            return None;
        }
        let header = FrameHeader {
            fin: true,
            rsv1: false,
            opcode: OpCode::Binary,
            mask: None,
            payload_len: len as u64,
        };
        let mut buf = [0u8; MAX_HEADER_BYTES];
        let len = header.encode(&mut buf);
        Some(InPlaceHeader { buf, len })
    }
}

impl<K: MaskKeySource> Encoder<K> {
    /// An encoder that masks each frame with a key from `keys` (client role).
    #[must_use]
    pub fn with_mask_keys(config: EncoderConfig, keys: K) -> Self {
        Self {
            config,
            keys,
            parts: Vec::new(),
        }
    }

    /// The encoder's settings.
    #[must_use]
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// Frames the pending byte stream of one flush as nats-server does (`wsCollapsePtoNB`) and
    /// appends headers and payload slices to `out`, in write order. Returns the wire bytes
    /// appended (for pending-bytes accounting).
    ///
    /// Uncompressed, each frame is a complete binary message: one frame for everything, or
    /// frames of at most `max_frame_payload` bytes packed by nats-server's rule. Compressed
    /// (when negotiated and the flush is over the threshold), the stream is one compressed
    /// message, fragmented at `max_frame_payload` only when `fragment_compressed` is set.
    /// `arena` is scratch space for headers, copies and compressed bytes; its contents are
    /// discarded. Nothing is appended for an empty stream.
    ///
    /// # Errors
    ///
    /// [`DeflateError`] when compression fails (nats-server closes with `Write Error`).
    pub fn encode_stream<O: Extend<Bytes>>(
        &mut self,
        chunks: &[Bytes],
        deflater: &mut Deflater,
        arena: &mut BytesMut,
        out: &mut O,
    ) -> Result<usize, DeflateError> {
        arena.clear();
        let total: usize = chunks.iter().map(Bytes::len).sum();
        if total == 0 {
            return Ok(0);
        }
        let mut sink = Sink {
            arena,
            out,
            wire_bytes: 0,
        };
        if self.config.deflate && total > self.config.compress_threshold {
            self.emit_compressed(OpCode::Binary, chunks, deflater, &mut sink)?;
        } else if let Some(limit) = self.config.max_frame_payload {
            self.emit_packed(chunks, limit.get(), &mut sink);
        } else {
            self.parts.clear();
            self.parts
                .extend(chunks.iter().filter(|c| !c.is_empty()).cloned());
            self.emit_frame(true, false, OpCode::Binary, total, &mut sink);
        }
        sink.flush();
        Ok(sink.wire_bytes)
    }

    /// Frames one data message made of `chunks` (compressed when negotiated and over the
    /// threshold; fragmented at `max_frame_payload`). Same output convention as
    /// [`Encoder::encode_stream`]; an empty message gives one empty frame.
    ///
    /// # Errors
    ///
    /// [`DeflateError`] when compression fails.
    pub fn encode_message<O: Extend<Bytes>>(
        &mut self,
        kind: MessageKind,
        chunks: &[Bytes],
        deflater: &mut Deflater,
        arena: &mut BytesMut,
        out: &mut O,
    ) -> Result<usize, DeflateError> {
        arena.clear();
        let opcode = match kind {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        };
        let total: usize = chunks.iter().map(Bytes::len).sum();
        let mut sink = Sink {
            arena,
            out,
            wire_bytes: 0,
        };
        if self.config.deflate && total > self.config.compress_threshold {
            self.emit_compressed(opcode, chunks, deflater, &mut sink)?;
        } else {
            let limit = self
                .config
                .max_frame_payload
                .map_or(usize::MAX, NonZeroUsize::get);
            self.emit_fragmented(opcode, false, chunks, total, limit, &mut sink);
        }
        sink.flush();
        Ok(sink.wire_bytes)
    }

    /// Encodes a control frame (never compressed; payloads over 125 bytes are cut to 125).
    /// Same output convention as [`Encoder::encode_stream`].
    pub fn encode_control<O: Extend<Bytes>>(
        &mut self,
        control: &Control,
        arena: &mut BytesMut,
        out: &mut O,
    ) -> usize {
        arena.clear();
        let (opcode, payload) = match control {
            Control::Ping(payload) => (OpCode::Ping, payload.clone()),
            Control::Pong(payload) => (OpCode::Pong, payload.clone()),
            Control::Close(None) => (OpCode::Close, Bytes::new()),
            Control::Close(Some(frame)) => {
                let mut buf = BytesMut::with_capacity(frame.payload_len());
                frame.write_payload(&mut buf);
                (OpCode::Close, buf.freeze())
            }
        };
        let payload = payload.slice(..payload.len().min(MAX_CONTROL_PAYLOAD_BYTES));
        let mut sink = Sink {
            arena,
            out,
            wire_bytes: 0,
        };
        self.parts.clear();
        let len = payload.len();
        self.parts.push(payload);
        self.emit_frame(true, false, opcode, len, &mut sink);
        sink.flush();
        sink.wire_bytes
    }

    fn emit_compressed<O: Extend<Bytes>>(
        &mut self,
        opcode: OpCode,
        chunks: &[Bytes],
        deflater: &mut Deflater,
        sink: &mut Sink<'_, O>,
    ) -> Result<(), DeflateError> {
        sink.flush();
        // Compress after a gap as large as the largest header, so that a single-frame message
        // gets its header written in place and leaves as one piece. No piece of this flush is
        // then alive while the arena grows, so the arena can always reclaim its memory.
        sink.arena.extend_from_slice(&[0u8; MAX_HEADER_BYTES]);
        let len = deflater.deflate(chunks, sink.arena)?;
        let limit = match self.config.max_frame_payload {
            Some(limit) if self.config.fragment_compressed => limit.get(),
            _ => usize::MAX,
        };
        if len <= limit {
            let mask = self.keys.next_mask_key();
            let header = FrameHeader {
                fin: true,
                rsv1: true,
                opcode,
                mask,
                payload_len: len as u64,
            };
            let mut buf = [0u8; MAX_HEADER_BYTES];
            let n = header.encode(&mut buf);
            let skip = MAX_HEADER_BYTES - n;
            if let (Some(dst), Some(src)) =
                (sink.arena.get_mut(skip..MAX_HEADER_BYTES), buf.get(..n))
            {
                dst.copy_from_slice(src);
            }
            if let (Some(key), Some(payload)) = (mask, sink.arena.get_mut(MAX_HEADER_BYTES..)) {
                apply_mask(payload, key, 0);
            }
            sink.arena.advance(skip);
            sink.wire_bytes += n + len;
            sink.flush();
            return Ok(());
        }
        sink.arena.advance(MAX_HEADER_BYTES);
        let compressed = sink.arena.split().freeze();
        self.emit_fragmented(opcode, true, &[compressed], len, limit, sink);
        Ok(())
    }

    /// nats-server's packing for limited frame sizes (`wsCollapsePtoNB`): each chunk joins the
    /// open frame if it fits; otherwise the open frame is closed (not topped up) and the chunk is
    /// cut into `limit`-sized frames, the last piece staying open for the chunks that follow.
    fn emit_packed<O: Extend<Bytes>>(
        &mut self,
        chunks: &[Bytes],
        limit: usize,
        sink: &mut Sink<'_, O>,
    ) {
        self.parts.clear();
        let mut open_len = 0usize;
        for chunk in chunks {
            if open_len + chunk.len() <= limit {
                if !chunk.is_empty() {
                    self.parts.push(chunk.clone());
                }
                open_len += chunk.len();
                continue;
            }
            let mut rest = chunk.clone();
            while !rest.is_empty() {
                if open_len != 0 {
                    self.emit_frame(true, false, OpCode::Binary, open_len, sink);
                    self.parts.clear();
                }
                let take = rest.len().min(limit);
                self.parts.push(rest.split_to(take));
                open_len = take;
            }
        }
        if open_len > 0 {
            self.emit_frame(true, false, OpCode::Binary, open_len, sink);
        }
        self.parts.clear();
    }

    /// One message cut into frames of at most `limit` bytes: the first carries `opcode` and
    /// `rsv1`, the others are continuations.
    fn emit_fragmented<O: Extend<Bytes>>(
        &mut self,
        opcode: OpCode,
        rsv1: bool,
        chunks: &[Bytes],
        total: usize,
        limit: usize,
        sink: &mut Sink<'_, O>,
    ) {
        let mut chunk_iter = chunks.iter().filter(|c| !c.is_empty()).cloned();
        let mut current: Option<Bytes> = None;
        let mut left = total;
        let mut first = true;
        loop {
            let frame_len = left.min(limit);
            self.parts.clear();
            let mut need = frame_len;
            while need > 0 {
                let Some(mut piece) = current.take().or_else(|| chunk_iter.next()) else {
                    break;
                };
                if piece.len() > need {
                    current = Some(piece.split_off(need));
                }
                need -= piece.len();
                self.parts.push(piece);
            }
            left -= frame_len - need;
            let fin = left == 0 || need > 0;
            let frame_opcode = if first { opcode } else { OpCode::Continuation };
            self.emit_frame(fin, first && rsv1, frame_opcode, frame_len - need, sink);
            first = false;
            if fin {
                break;
            }
        }
        self.parts.clear();
    }

    /// Writes one frame: the header, then `self.parts` (`len` bytes in all).
    fn emit_frame<O: Extend<Bytes>>(
        &mut self,
        fin: bool,
        rsv1: bool,
        opcode: OpCode,
        len: usize,
        sink: &mut Sink<'_, O>,
    ) {
        let mask = self.keys.next_mask_key();
        let header = FrameHeader {
            fin,
            rsv1,
            opcode,
            mask,
            payload_len: len as u64,
        };
        let mut buf = [0u8; MAX_HEADER_BYTES];
        let n = header.encode(&mut buf);
        sink.copy(buf.get(..n).unwrap_or_default());
        let mut mask_pos = 0;
        for part in &self.parts {
            match mask {
                Some(key) => mask_pos = sink.copy_masked(part, key, mask_pos),
                None if part.len() < COPY_THRESHOLD_BYTES => sink.copy(part),
                None => sink.share(part.clone()),
            }
        }
    }
}

#[cfg(test)]
mod tests;
