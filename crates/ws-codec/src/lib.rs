//! RFC 6455 WebSocket framing and RFC 7692 permessage-deflate, sans-IO.
//!
//! This crate turns bytes into WebSocket events and pending output into frames, for either end
//! of a connection. It follows nats-server's behaviour (framing at flush time, the 4 KiB browser
//! frame size, compression per flush, its close codes and error texts) with the hardening of
//! newer nats-server versions, but it knows nothing of NATS itself.
//!
//! What it deliberately does not do: no I/O, no clock, no HTTP upgrade (see `ws-handshake`),
//! no threads, no `unsafe`, and no allocation per frame in steady state. The caller owns every
//! buffer: the read buffer the [`Decoder`] consumes from, the arena and output list the
//! [`Encoder`] appends to, and one [`Deflater`] and [`Inflater`] that may serve every connection
//! of an event loop (no context takeover means no state carries between messages; a decoder
//! borrows the inflater's decompressor only while it hands out one compressed message in
//! chunks).
//!
//! Main types:
//! - [`Decoder`] (one per connection): [`Decoder::decode`] yields [`Event`]s, inflating
//!   compressed messages a bounded chunk per call in stream delivery
//!   ([`Limits::max_inflated_chunk_bytes`], [`Decoder::is_inflating`]);
//!   [`Decoder::poll_reply`] yields the obligated pong and close replies.
//! - [`Encoder`] (one per connection): [`Encoder::encode_stream`] frames a flush's pending
//!   bytes, [`Encoder::in_place_header`] is its no-copy fast path (the header of a single
//!   frame whose payload the caller writes from its own buffers), [`Encoder::encode_message`]
//!   frames one message, [`Encoder::encode_control`] frames pings, pongs and closes.
//! - [`CloseFrame`], [`CloseCode`], [`CloseReason`] (nats-server's close reasons and their
//!   codes), [`ProtocolError`] with [`ProtocolError::close_code`].
//! - [`apply_mask`], the masking fast path.
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use ws_codec::{Decoder, DecoderConfig, Deflater, Encoder, EncoderConfig, Event, Inflater};
//!
//! // A client frame: masked "Hello" (RFC 6455 §5.7).
//! let mut src = BytesMut::from(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58][..]);
//! let mut decoder = Decoder::new(DecoderConfig::server());
//! let mut inflater = Inflater::new();
//! let event = decoder.decode(&mut src, &mut inflater).unwrap();
//! assert_eq!(event, Some(Event::Data(BytesMut::from(&b"Hello"[..]))));
//! assert_eq!(decoder.decode(&mut src, &mut inflater).unwrap(), None);
//!
//! // Frame the pending output of one flush; `out` is ready for a vectored write.
//! let mut encoder = Encoder::server(EncoderConfig::default());
//! let (mut deflater, mut arena, mut out) = (Deflater::new(), BytesMut::new(), Vec::new());
//! let pending = [Bytes::from_static(b"PONG\r\n"), Bytes::from_static(b"+OK\r\n")];
//! let n = encoder.encode_stream(&pending, &mut deflater, &mut arena, &mut out).unwrap();
//! let wire: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
//! assert_eq!(wire, b"\x82\x0bPONG\r\n+OK\r\n");
//! assert_eq!(n, wire.len());
//! ```
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

mod close;
mod decode;
mod deflate;
mod encode;
mod error;
mod frame;
mod mask;

#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;

pub use close::{CloseCode, CloseFrame, CloseReason, MAX_CLOSE_REASON_BYTES};
pub use decode::{
    Control, Decoder, DecoderConfig, Delivery, Event, Limits, Message, MessageKind, Role,
};
pub use deflate::{Deflater, Inflater, SYNC_FLUSH_TAIL};
pub use encode::{
    BROWSER_MAX_FRAME_BYTES, COMPRESS_THRESHOLD_BYTES, COPY_THRESHOLD_BYTES, Encoder,
    EncoderConfig, InPlaceHeader, MaskKeySource, Unmasked,
};
pub use error::{DeflateError, ProtocolError};
pub use frame::{FrameHeader, MAX_CONTROL_PAYLOAD_BYTES, MAX_HEADER_BYTES, OpCode, encode_header};
pub use mask::{apply_mask, apply_mask_bytewise};
