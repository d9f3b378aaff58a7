//! The incremental frame decoder (RFC 6455 §5, RFC 7692 §6.2; nats-server's
//! `server/websocket.go` `wsRead` and `wsHandleControlFrame`).
//!
//! The decoder peeks at a header, validates it, and only then consumes it; a short header
//! consumes nothing. The parsed header is kept while its payload arrives, so no byte is examined
//! twice. Payloads are unmasked in place and handed out as `split_to(n).freeze()` slices of the
//! caller's buffer.
//!
//! A compressed message is buffered whole (it is bounded by
//! [`Limits::max_compressed_message_bytes`]) and then, in [`Delivery::Stream`], inflated a chunk
//! at a time: each [`Decoder::decode`] call inflates at most [`Limits::max_inflated_chunk_bytes`]
//! more, so the inflated bytes held at any time are one chunk, however large the message
//! inflates. RFC 7692 §6.2 lets a receiver process a message's data before the whole message is
//! decompressed; what bounds the inflated total is then the consumer's own limits (for NATS,
//! `max_payload` per published message), not the size of the batch that was compressed.

use bytes::{Buf, Bytes, BytesMut};

use crate::close::{CloseCode, CloseFrame};
use crate::deflate::{InflateStream, Inflater};
use crate::error::ProtocolError;
use crate::frame::OpCode;
use crate::mask::apply_mask;

/// Which end of the connection this decoder or encoder serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads frames sent by a client (masked unless no-masking was agreed).
    Server,
    /// Reads frames sent by a server (never masked).
    Client,
}

/// How data payloads are handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Payload bytes are handed out as soon as they arrive, as [`Event::Data`]; frame and message
    /// boundaries are not reported (NATS treats the payloads as one byte stream). A compressed
    /// message is inflated once all its frames are in, and handed out in chunks of at most
    /// [`Limits::max_inflated_chunk_bytes`], one per [`Decoder::decode`] call.
    Stream,
    /// Each complete message is handed out as [`Event::Message`]; text messages are checked for
    /// UTF-8. A compressed message is inflated whole, so it is held in memory up to
    /// [`Limits::max_inflated_message_bytes`].
    Message,
}

/// Size limits, checked on declared lengths before anything is buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest data message, as the sum of its frames' declared payload lengths. nats-server
    /// streams uncompressed payloads and has no such limit; the default is its 64 MiB cap on
    /// payloads.
    pub max_message_bytes: u64,
    /// The largest compressed message that is buffered for inflation. Default 8 MiB
    /// (8 × the default `max_payload`, as newer nats-server versions allow).
    pub max_compressed_message_bytes: u64,
    /// The largest inflated message; more fails with [`ProtocolError::MessageTooBig`] (close
    /// 1009). Default 64 MiB, the same bound as `max_message_bytes` puts on an uncompressed
    /// message, so compression neither shrinks nor widens what one message may carry.
    ///
    /// In [`Delivery::Message`] the inflated message is held whole, so this bounds memory. In
    /// [`Delivery::Stream`] only one chunk is held at a time, so this bounds the work one
    /// message can cause (DEFLATE expands up to about 1000 : 1, so a full
    /// `max_compressed_message_bytes` could otherwise inflate to gigabytes); the consumer's own
    /// limits bound what it keeps. Stream-mode chunks before the one that passes the cap have
    /// already been handed out when the error is returned.
    pub max_inflated_message_bytes: usize,
    /// [`Delivery::Stream`]: the largest [`Event::Data`] inflated from a compressed message, and
    /// so the most a compressed message inflates per [`Decoder::decode`] call. Default 64 KiB.
    /// Values below 1 count as 1. Uncompressed payload is handed out as it arrives and is not
    /// affected.
    pub max_inflated_chunk_bytes: usize,
    /// The most frames in one data message. Default 65 536.
    pub max_fragments: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024 * 1024,
            max_compressed_message_bytes: 8 * 1024 * 1024,
            max_inflated_message_bytes: 64 * 1024 * 1024,
            max_inflated_chunk_bytes: 64 * 1024,
            max_fragments: 65_536,
        }
    }
}

/// Per-connection decoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Which end reads.
    pub role: Role,
    /// Server role: require the mask bit on every frame. `false` after `Nats-No-Masking` was
    /// agreed; a masked frame is then still unmasked with its key.
    pub require_mask: bool,
    /// permessage-deflate was negotiated: RSV1 marks a compressed message.
    pub deflate: bool,
    /// How data payloads are handed out.
    pub delivery: Delivery,
    /// Size limits.
    pub limits: Limits,
}

impl DecoderConfig {
    /// A server-role decoder: masked frames required, no compression, stream delivery.
    #[must_use]
    pub fn server() -> Self {
        Self {
            role: Role::Server,
            require_mask: true,
            deflate: false,
            delivery: Delivery::Stream,
            limits: Limits::default(),
        }
    }

    /// A client-role decoder: unmasked frames required, no compression, stream delivery.
    #[must_use]
    pub fn client() -> Self {
        Self {
            role: Role::Client,
            require_mask: false,
            ..Self::server()
        }
    }

    /// Sets whether permessage-deflate was negotiated.
    #[must_use]
    pub fn with_deflate(self, deflate: bool) -> Self {
        Self { deflate, ..self }
    }

    /// Server role: accept unmasked frames (`Nats-No-Masking: true` was agreed).
    #[must_use]
    pub fn with_no_masking(self) -> Self {
        Self {
            require_mask: false,
            ..self
        }
    }

    /// Sets the delivery mode.
    #[must_use]
    pub fn with_delivery(self, delivery: Delivery) -> Self {
        Self { delivery, ..self }
    }

    /// Sets the limits.
    #[must_use]
    pub fn with_limits(self, limits: Limits) -> Self {
        Self { limits, ..self }
    }
}

/// A data message's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// Opcode 1.
    Text,
    /// Opcode 2.
    Binary,
}

/// A complete data message ([`Delivery::Message`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Text or binary.
    pub kind: MessageKind,
    /// The payload, inflated if it was compressed. Text payloads are valid UTF-8.
    pub payload: Bytes,
}

/// What the decoder found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// [`Delivery::Stream`]: the next bytes of the data stream (never empty). Uncompressed
    /// payload is unmasked in place and split off the caller's read buffer, so it arrives
    /// without a copy; as a `BytesMut` it can become, or be appended to, the consumer's own
    /// input buffer (`BytesMut::unsplit` rejoins adjacent pieces in O(1)). Inflated payload
    /// comes in chunks of at most [`Limits::max_inflated_chunk_bytes`].
    Data(BytesMut),
    /// [`Delivery::Message`]: one complete message.
    Message(Message),
    /// A ping. A pong with the same payload is now waiting in [`Decoder::poll_reply`].
    Ping(Bytes),
    /// A pong (needs nothing; nats-server ignores it).
    Pong(Bytes),
    /// The peer closed, with a status or without one. The close reply is now waiting in
    /// [`Decoder::poll_reply`], and the decoder reads nothing more.
    Close(Option<CloseFrame>),
}

/// A control frame to send: an obligated reply from [`Decoder::poll_reply`], or one the caller
/// originates. Encode it with [`crate::Encoder::encode_control`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// A ping with this payload (at most 125 bytes are sent).
    Ping(Bytes),
    /// A pong with this payload.
    Pong(Bytes),
    /// A close frame with a status, or an empty one.
    Close(Option<CloseFrame>),
}

/// The data message currently open.
#[derive(Debug, Clone, Copy)]
struct OpenMessage {
    kind: MessageKind,
    compressed: bool,
    declared: u64,
    fragments: u32,
}

#[derive(Debug)]
enum State {
    /// Expecting a frame header.
    Header,
    /// A control frame's header was read; waiting for its whole payload.
    Control {
        opcode: OpCode,
        len: usize,
        mask: Option<[u8; 4]>,
    },
    /// A data frame's header was read; `remaining` payload bytes are still to come.
    Data {
        remaining: u64,
        mask: Option<[u8; 4]>,
        mask_pos: usize,
        fin: bool,
    },
    /// A compressed message is being handed out a chunk per call ([`Delivery::Stream`]); no
    /// frame is read until its last chunk.
    Inflating(InflateStream),
    /// A close frame was read; nothing more is decoded.
    Closed,
    /// An error was returned; it is returned again.
    Failed(ProtocolError),
}

enum Step {
    Event(Event),
    NeedMore,
    Continue,
}

/// Buffers kept after a message larger than this are released, so idle connections stay cheap.
const KEEP_BUFFER_BYTES: usize = 64 * 1024;

/// The incremental decoder for one connection.
///
/// Call [`Decoder::decode`] until it returns `Ok(None)` after every read, then
/// [`Decoder::poll_reply`] until `None` and send what it returns.
#[derive(Debug)]
pub struct Decoder {
    config: DecoderConfig,
    state: State,
    message: Option<OpenMessage>,
    /// Compressed fragments, or the message being assembled for [`Delivery::Message`].
    buffer: BytesMut,
    pending_pong: Option<Bytes>,
    pending_close: Option<Option<CloseFrame>>,
}

impl Decoder {
    /// A decoder expecting the first frame header.
    #[must_use]
    pub fn new(config: DecoderConfig) -> Self {
        Self {
            config,
            state: State::Header,
            message: None,
            buffer: BytesMut::new(),
            pending_pong: None,
            pending_close: None,
        }
    }

    /// The decoder's settings.
    #[must_use]
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// True once a close frame was decoded.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// True while a compressed message is being handed out in chunks ([`Delivery::Stream`]):
    /// [`Decoder::decode`] has more of it to return even if `src` is empty, and it reads no
    /// further frame (control frames included) before the message's last chunk. A caller that
    /// budgets work per tick and stops calling `decode` early must come back to this
    /// connection without waiting for more input while this is true (or while `src` still
    /// holds bytes). It turns false in the call that returns the message's last chunk, or,
    /// when the message's last bytes exactly filled a chunk, in the next call, which then goes
    /// on with the next frame.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use ws_codec::{Decoder, DecoderConfig, Deflater, Event, Inflater, Limits};
    ///
    /// // One compressed binary frame (no masking agreed) that inflates to 10 000 bytes.
    /// let mut z = BytesMut::new();
    /// Deflater::new().deflate(&[vec![b'x'; 10_000]], &mut z).unwrap();
    /// let mut src = BytesMut::from(&[0xc2, u8::try_from(z.len()).unwrap()][..]);
    /// src.extend_from_slice(&z);
    /// let limits = Limits { max_inflated_chunk_bytes: 4096, ..Limits::default() };
    /// let config = DecoderConfig::server().with_no_masking().with_deflate(true);
    /// let mut decoder = Decoder::new(config.with_limits(limits));
    /// let mut inflater = Inflater::new();
    ///
    /// // A tick whose budget allows one chunk: the frame is consumed, more is pending.
    /// let first = decoder.decode(&mut src, &mut inflater).unwrap();
    /// assert!(matches!(first, Some(Event::Data(chunk)) if chunk.len() == 4096));
    /// assert!(src.is_empty() && decoder.is_inflating());
    ///
    /// // The next tick goes on without new input.
    /// let mut sizes = Vec::new();
    /// while let Some(Event::Data(chunk)) = decoder.decode(&mut src, &mut inflater).unwrap() {
    ///     sizes.push(chunk.len());
    /// }
    /// assert_eq!(sizes, [4096, 1808]);
    /// assert!(!decoder.is_inflating());
    /// ```
    #[must_use]
    pub fn is_inflating(&self) -> bool {
        matches!(self.state, State::Inflating(_))
    }

    /// True while the decoder holds a decompressor (taken from the [`Inflater`] for the
    /// message in progress).
    #[cfg(test)]
    pub(crate) fn holds_decompressor(&self) -> bool {
        matches!(&self.state, State::Inflating(stream) if stream.holds_decompressor())
    }

    /// Decodes the next event from `src`, consuming what it used.
    ///
    /// Returns `Ok(None)` when `src` holds no complete event: read more and call again. A
    /// header is consumed only once complete; control frames wait for their whole payload
    /// (at most 139 bytes in `src`), while data payloads are consumed as they arrive, so any
    /// read buffer size makes progress. After `Ok(Some(Event::Ping | Event::Close))` call
    /// [`Decoder::poll_reply`]. After a close it returns `Ok(None)` and leaves `src` alone.
    ///
    /// In [`Delivery::Stream`], once the last frame of a compressed message is in, each call
    /// returns the next chunk of its inflated bytes (at most [`Limits::max_inflated_chunk_bytes`])
    /// and consumes nothing from `src` until the last chunk was returned. `Ok(None)` is never
    /// returned while chunks are pending, so calling until `Ok(None)` hands out the whole
    /// message; a caller that stops earlier must call again even if no new input arrives, as
    /// long as [`Decoder::is_inflating`] is true.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] fails the connection: send [`ProtocolError::close_frame`] and close.
    /// Every later call returns the same error. Events decoded before the bad frame were
    /// already returned; for a compressed message in [`Delivery::Stream`] that includes the
    /// chunks inflated before the corruption
    /// ([`ProtocolError::CorruptCompressedData`]) or the inflated size limit
    /// ([`ProtocolError::MessageTooBig`]) was found.
    pub fn decode(
        &mut self,
        src: &mut BytesMut,
        inflater: &mut Inflater,
    ) -> Result<Option<Event>, ProtocolError> {
        loop {
            let res = match &mut self.state {
                State::Failed(err) => return Err(err.clone()),
                State::Closed => return Ok(None),
                State::Header => self.read_header(src),
                State::Control { opcode, len, mask } => {
                    let (opcode, len, mask) = (*opcode, *len, *mask);
                    self.read_control(src, opcode, len, mask)
                }
                State::Data { .. } => self.read_data(src, inflater),
                State::Inflating(_) => self.read_inflated(inflater),
            };
            match res {
                Ok(Step::Event(event)) => return Ok(Some(event)),
                Ok(Step::NeedMore) => return Ok(None),
                Ok(Step::Continue) => {}
                Err(err) => {
                    self.state = State::Failed(err.clone());
                    return Err(err);
                }
            }
        }
    }

    /// The next obligated reply: a pong for the latest ping, then the close reply. Call until
    /// `None` after decoding. Only the most recent unanswered ping gets a pong
    /// (RFC 6455 §5.5.3 allows this), so answer after each `decode` call to answer every ping.
    #[must_use]
    pub fn poll_reply(&mut self) -> Option<Control> {
        if let Some(payload) = self.pending_pong.take() {
            return Some(Control::Pong(payload));
        }
        self.pending_close.take().map(Control::Close)
    }

    fn read_header(&mut self, src: &mut BytesMut) -> Result<Step, ProtocolError> {
        let Some(&[b0, b1]) = src.first_chunk::<2>() else {
            return Ok(Step::NeedMore);
        };
        let fin = b0 & 0x80 != 0;
        let rsv1 = b0 & 0x40 != 0;
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7f;
        // The checks run in nats-server's order, so the same frame gets the same error text.
        match self.config.role {
            Role::Server if self.config.require_mask && !masked => {
                return Err(ProtocolError::MaskBitMissing);
            }
            Role::Client if masked => return Err(ProtocolError::MaskedFrameFromServer),
            Role::Server | Role::Client => {}
        }
        let op = b0 & 0x0f;
        let opcode = OpCode::from_u8(op).ok_or(ProtocolError::UnknownOpcode(op))?;
        if b0 & 0x30 != 0 {
            return Err(ProtocolError::ReservedBitsSet);
        }
        match opcode {
            OpCode::Close | OpCode::Ping | OpCode::Pong => {
                if usize::from(len7) > crate::frame::MAX_CONTROL_PAYLOAD_BYTES {
                    return Err(ProtocolError::ControlFrameTooLong);
                }
                if !fin {
                    return Err(ProtocolError::ControlFrameNotFinal);
                }
                if rsv1 {
                    return Err(ProtocolError::ControlFrameCompressed);
                }
            }
            OpCode::Text | OpCode::Binary => {
                if self.message.is_some() {
                    return Err(ProtocolError::NewMessageBeforeFinal);
                }
                if rsv1 && !self.config.deflate {
                    return Err(ProtocolError::CompressedWithoutDeflate);
                }
            }
            OpCode::Continuation => {
                if self.message.is_none() || rsv1 {
                    return Err(ProtocolError::InvalidContinuation);
                }
            }
        }
        let ext_len = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let key_len = if masked { 4 } else { 0 };
        let header_len = 2 + ext_len + key_len;
        let Some(header) = src.get(..header_len) else {
            return Ok(Step::NeedMore);
        };
        let payload_len = match header {
            [_, _, hi, lo, ..] if ext_len == 2 => u64::from(u16::from_be_bytes([*hi, *lo])),
            [_, _, a, b, c, d, e, f, g, h, ..] if ext_len == 8 => {
                let len = u64::from_be_bytes([*a, *b, *c, *d, *e, *f, *g, *h]);
                if len >> 63 != 0 {
                    return Err(ProtocolError::InvalidPayloadLength);
                }
                len
            }
            _ => u64::from(len7),
        };
        let mask = if masked {
            header
                .get(2 + ext_len..header_len)
                .and_then(|k| <[u8; 4]>::try_from(k).ok())
        } else {
            None
        };
        if opcode.is_control() {
            src.advance(header_len);
            let len = usize::from(len7);
            self.state = State::Control { opcode, len, mask };
            return Ok(Step::Continue);
        }
        let limits = &self.config.limits;
        let open = match (opcode, self.message) {
            (OpCode::Continuation, Some(open)) => open,
            (OpCode::Text, _) => OpenMessage {
                kind: MessageKind::Text,
                compressed: rsv1,
                declared: 0,
                fragments: 0,
            },
            _ => OpenMessage {
                kind: MessageKind::Binary,
                compressed: rsv1,
                declared: 0,
                fragments: 0,
            },
        };
        let declared = open
            .declared
            .checked_add(payload_len)
            .filter(|&total| total <= limits.max_message_bytes)
            .ok_or(ProtocolError::MessageTooBig)?;
        if open.compressed && declared > limits.max_compressed_message_bytes {
            return Err(ProtocolError::MessageTooBig);
        }
        let fragments = open.fragments.saturating_add(1);
        if fragments > limits.max_fragments {
            return Err(ProtocolError::TooManyFragments);
        }
        self.message = Some(OpenMessage {
            declared,
            fragments,
            ..open
        });
        src.advance(header_len);
        self.state = State::Data {
            remaining: payload_len,
            mask,
            mask_pos: 0,
            fin,
        };
        Ok(Step::Continue)
    }

    fn read_control(
        &mut self,
        src: &mut BytesMut,
        opcode: OpCode,
        len: usize,
        mask: Option<[u8; 4]>,
    ) -> Result<Step, ProtocolError> {
        if src.len() < len {
            return Ok(Step::NeedMore);
        }
        let mut payload = src.split_to(len);
        if let Some(key) = mask {
            apply_mask(&mut payload, key, 0);
        }
        let payload = payload.freeze();
        self.state = State::Header;
        let event = match opcode {
            OpCode::Ping => {
                self.pending_pong = Some(payload.clone());
                Event::Ping(payload)
            }
            OpCode::Pong => Event::Pong(payload),
            _ => {
                let frame = parse_close(payload)?;
                self.state = State::Closed;
                self.pending_close = Some(frame.clone());
                Event::Close(frame)
            }
        };
        Ok(Step::Event(event))
    }

    fn read_data(
        &mut self,
        src: &mut BytesMut,
        inflater: &mut Inflater,
    ) -> Result<Step, ProtocolError> {
        let State::Data {
            remaining,
            mask,
            mask_pos,
            fin,
        } = &mut self.state
        else {
            return Ok(Step::Continue);
        };
        let Some(open) = self.message else {
            // Unreachable by construction: a data frame header always opens or continues a
            // message. Recover by expecting a header.
            self.state = State::Header;
            return Ok(Step::Continue);
        };
        let fin = *fin;
        let available = usize::try_from(*remaining).map_or(src.len(), |r| r.min(src.len()));
        let buffered = open.compressed || self.config.delivery == Delivery::Message;
        if !buffered {
            if *remaining > 0 && available == 0 {
                return Ok(Step::NeedMore);
            }
            let mut chunk = src.split_to(available);
            if let Some(key) = *mask {
                *mask_pos = apply_mask(&mut chunk, key, *mask_pos);
            }
            *remaining -= available as u64;
            if *remaining == 0 {
                self.end_frame(fin);
            }
            return Ok(if chunk.is_empty() {
                Step::Continue
            } else {
                Step::Event(Event::Data(chunk))
            });
        }
        let whole_message_here = fin
            && open.fragments == 1
            && self.buffer.is_empty()
            && *mask_pos == 0
            && available as u64 == *remaining;
        if whole_message_here {
            // The common case: the whole single-frame message is in `src`; no copy.
            let mut payload = src.split_to(available);
            if let Some(key) = *mask {
                apply_mask(&mut payload, key, 0);
            }
            self.end_frame(fin);
            return self.finish_message(open, payload.freeze(), inflater);
        }
        if *remaining > 0 && available == 0 {
            return Ok(Step::NeedMore);
        }
        if let Some(piece) = src.get_mut(..available) {
            if let Some(key) = *mask {
                *mask_pos = apply_mask(piece, key, *mask_pos);
            }
            self.buffer.extend_from_slice(piece);
        }
        src.advance(available);
        *remaining -= available as u64;
        if *remaining > 0 {
            return Ok(Step::NeedMore);
        }
        self.end_frame(fin);
        if !fin {
            return Ok(Step::Continue);
        }
        let payload = self.buffer.split().freeze();
        if self.buffer.capacity() > KEEP_BUFFER_BYTES {
            self.buffer = BytesMut::new();
        }
        self.finish_message(open, payload, inflater)
    }

    /// Hands out the next chunk of the compressed message in progress.
    fn read_inflated(&mut self, inflater: &mut Inflater) -> Result<Step, ProtocolError> {
        let State::Inflating(stream) = &mut self.state else {
            return Ok(Step::Continue);
        };
        let limits = &self.config.limits;
        let (chunk, finished) = stream.next_chunk(
            inflater,
            limits.max_inflated_chunk_bytes,
            limits.max_inflated_message_bytes,
        )?;
        if finished {
            self.state = State::Header;
        }
        Ok(if chunk.is_empty() {
            Step::Continue
        } else {
            Step::Event(Event::Data(chunk))
        })
    }

    fn end_frame(&mut self, fin: bool) {
        self.state = State::Header;
        if fin {
            self.message = None;
        }
    }

    fn finish_message(
        &mut self,
        open: OpenMessage,
        payload: Bytes,
        inflater: &mut Inflater,
    ) -> Result<Step, ProtocolError> {
        if open.compressed && self.config.delivery == Delivery::Stream {
            self.state = State::Inflating(InflateStream::new(payload));
            return Ok(Step::Continue);
        }
        let payload = if open.compressed {
            inflater.inflate(&payload, self.config.limits.max_inflated_message_bytes)?
        } else {
            payload
        };
        match self.config.delivery {
            Delivery::Stream if payload.is_empty() => Ok(Step::Continue),
            Delivery::Stream => Ok(Step::Event(Event::Data(BytesMut::from(payload)))),
            Delivery::Message => {
                if open.kind == MessageKind::Text && std::str::from_utf8(&payload).is_err() {
                    return Err(ProtocolError::InvalidUtf8);
                }
                Ok(Step::Event(Event::Message(Message {
                    kind: open.kind,
                    payload,
                })))
            }
        }
    }
}

/// Parses a close frame's payload (RFC 6455 §5.5.1), with newer nats-server's checks.
fn parse_close(payload: Bytes) -> Result<Option<CloseFrame>, ProtocolError> {
    let Some((&[hi, lo], _)) = payload.split_first_chunk::<2>() else {
        return if payload.is_empty() {
            Ok(None)
        } else {
            Err(ProtocolError::CloseFrameOneByte)
        };
    };
    let code = CloseCode(u16::from_be_bytes([hi, lo]));
    if !code.is_sendable() {
        return Err(ProtocolError::InvalidCloseCode(code.0));
    }
    let reason = payload.slice(2..);
    if std::str::from_utf8(&reason).is_err() {
        return Err(ProtocolError::InvalidCloseReason);
    }
    Ok(Some(CloseFrame::from_parts(code, reason)))
}

#[cfg(test)]
mod tests;
