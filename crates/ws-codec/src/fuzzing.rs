//! Fuzz target bodies (called by `fuzz/fuzz_targets/*.rs`) and the chunk-invariance harness
//! they share with the tests.
#![allow(
    clippy::panic,
    reason = "fuzz bodies report a broken property by panicking"
)]

use bytes::{Bytes, BytesMut};

use std::num::NonZeroUsize;

use crate::deflate::InflateStream;
use crate::{
    Control, Decoder, DecoderConfig, Deflater, Delivery, Encoder, EncoderConfig, Event, Inflater,
    Limits, MessageKind, ProtocolError, Role,
};

/// Everything a decoder produced for one input, with adjacent stream data joined so that
/// outcomes of different splits compare equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Events in order; consecutive [`Event::Data`] are merged.
    pub events: Vec<Event>,
    /// Replies polled after each event.
    pub replies: Vec<Control>,
    /// The error that ended decoding, if any.
    pub error: Option<ProtocolError>,
    /// Bytes left unconsumed at the end.
    pub left: usize,
    /// The length of each [`Event::Data`] inflated from a compressed message, in order. Like
    /// the events, this does not depend on how the input was split.
    pub inflated_chunks: Vec<usize>,
}

/// Feeds `chunks` one after the other to a decoder, decoding until `Ok(None)` after each, and
/// polling replies after every event. Checks that no event exceeds the limits: in particular
/// that each chunk inflated from a compressed message is at most
/// [`Limits::max_inflated_chunk_bytes`] and that the chunks of one message add up to at most
/// [`Limits::max_inflated_message_bytes`].
pub fn run(config: DecoderConfig, chunks: &[&[u8]]) -> Outcome {
    let mut decoder = Decoder::new(config);
    let mut inflater = Inflater::new();
    let mut src = BytesMut::new();
    let mut outcome = Outcome {
        events: Vec::new(),
        replies: Vec::new(),
        error: None,
        left: 0,
        inflated_chunks: Vec::new(),
    };
    let mut inflated_in_message = 0usize;
    'chunks: for chunk in chunks {
        src.extend_from_slice(chunk);
        loop {
            // Uncompressed stream data is split off `src`; anything else was inflated.
            let src_range = src.as_ptr() as usize..(src.as_ptr() as usize).wrapping_add(src.len());
            let (was_inflating, src_len) = (decoder.is_inflating(), src.len());
            let res = decoder.decode(&mut src, &mut inflater);
            if !was_inflating || src.len() != src_len {
                // Any message inflated before this call ended (input is read only after a
                // message's last chunk, which may be empty, so the same call can finish one
                // message and start the next); a new one starts only in a call that reads its
                // last frame.
                inflated_in_message = 0;
            }
            match res {
                Ok(Some(event)) => {
                    check_limits(&config, &event);
                    if let Event::Data(data) = &event
                        && !src_range.contains(&(data.as_ptr() as usize))
                    {
                        let limits = &config.limits;
                        assert!(
                            data.len() <= limits.max_inflated_chunk_bytes.max(1),
                            "inflated chunk of {} bytes",
                            data.len()
                        );
                        inflated_in_message += data.len();
                        assert!(
                            inflated_in_message <= limits.max_inflated_message_bytes,
                            "message inflated to {inflated_in_message} bytes"
                        );
                        outcome.inflated_chunks.push(data.len());
                    }
                    push_event(&mut outcome.events, event);
                    while let Some(reply) = decoder.poll_reply() {
                        outcome.replies.push(reply);
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    outcome.error = Some(err);
                    break 'chunks;
                }
            }
        }
    }
    outcome.left = if outcome.error.is_some() || decoder.is_closed() {
        0
    } else {
        src.len()
    };
    outcome
}

fn push_event(events: &mut Vec<Event>, event: Event) {
    if let (Some(Event::Data(prev)), Event::Data(next)) = (events.last_mut(), &event) {
        prev.extend_from_slice(next);
        return;
    }
    events.push(event);
}

fn check_limits(config: &DecoderConfig, event: &Event) {
    let limits = &config.limits;
    match event {
        Event::Data(data) => assert!(!data.is_empty(), "empty data event"),
        Event::Message(msg) => {
            assert!(
                msg.payload.len() as u64
                    <= limits
                        .max_message_bytes
                        .max(limits.max_inflated_message_bytes as u64)
            );
            if msg.kind == MessageKind::Text {
                assert!(std::str::from_utf8(&msg.payload).is_ok());
            }
        }
        Event::Ping(p) | Event::Pong(p) => assert!(p.len() <= 125),
        Event::Close(_) => {}
    }
}

/// Small limits so that fuzzing stays within a bounded amount of memory; inflated chunks of
/// `max_inflated_chunk_bytes` (small, so that messages span many chunks and the window wraps
/// inside a chunk and between chunks).
fn fuzz_limits(max_inflated_chunk_bytes: usize) -> Limits {
    Limits {
        max_message_bytes: 1 << 20,
        max_compressed_message_bytes: 64 * 1024,
        max_inflated_message_bytes: 256 * 1024,
        max_inflated_chunk_bytes,
        max_fragments: 64,
    }
}

fn decode_target(base: DecoderConfig, data: &[u8]) {
    let Some((&selector, frames)) = data.split_first() else {
        return;
    };
    // The chunk size comes from the split point: 7 to 3975 bytes.
    let chunk_limit = usize::from(selector >> 3) * 128 + 7;
    let mut config = base
        .with_limits(fuzz_limits(chunk_limit))
        .with_deflate(selector & 1 != 0);
    if selector & 2 != 0 {
        config = config.with_delivery(Delivery::Message);
    }
    if selector & 4 != 0 {
        config = config.with_no_masking();
    }
    let whole = run(config, &[frames]);
    let split = usize::from(selector >> 3).min(frames.len());
    let (a, b) = frames.split_at(split);
    let halves = run(config, &[a, b]);
    assert_eq!(whole, halves, "split at {split} changed the outcome");
    if frames.len() <= 256 {
        let bytes: Vec<&[u8]> = frames.chunks(1).collect();
        assert_eq!(
            whole,
            run(config, &bytes),
            "byte-by-byte changed the outcome"
        );
    }
    reencode(config, &whole.events, selector);
}

/// Round trip: what was decoded, encoded again for the same connection (fragmented at a size
/// taken from the input), decodes to the same data.
fn reencode(config: DecoderConfig, events: &[Event], selector: u8) {
    let enc_config = EncoderConfig {
        max_frame_payload: NonZeroUsize::new(usize::from(selector >> 3)),
        deflate: config.deflate,
        ..EncoderConfig::default()
    };
    let mut wire: Vec<Bytes> = Vec::new();
    let mut arena = BytesMut::new();
    let mut deflater = Deflater::new();
    let masked = config.role == Role::Server && config.require_mask;
    let mut key_state = u32::from(selector);
    let mut keys = move || {
        key_state = key_state
            .wrapping_mul(747_796_405)
            .wrapping_add(2_891_336_453);
        key_state.to_le_bytes()
    };
    let mut expect = Vec::new();
    for event in events {
        let (kind, payload) = match event {
            Event::Data(data) => (None, data.clone().freeze()),
            Event::Message(msg) => (Some(msg.kind), msg.payload.clone()),
            _ => continue,
        };
        expect.push(event.clone());
        let chunks = [payload];
        let res =
            match (kind, masked) {
                (None, true) => Encoder::with_mask_keys(enc_config, &mut keys).encode_stream(
                    &chunks,
                    &mut deflater,
                    &mut arena,
                    &mut wire,
                ),
                (None, false) => Encoder::server(enc_config).encode_stream(
                    &chunks,
                    &mut deflater,
                    &mut arena,
                    &mut wire,
                ),
                (Some(kind), true) => Encoder::with_mask_keys(enc_config, &mut keys)
                    .encode_message(kind, &chunks, &mut deflater, &mut arena, &mut wire),
                (Some(kind), false) => Encoder::server(enc_config).encode_message(
                    kind,
                    &chunks,
                    &mut deflater,
                    &mut arena,
                    &mut wire,
                ),
            };
        assert!(res.is_ok(), "encode failed");
    }
    let mut merged = Vec::new();
    for event in expect {
        push_event(&mut merged, event);
    }
    let bytes: Vec<u8> = wire.iter().flat_map(|b| b.iter().copied()).collect();
    // Re-encoding may compress what arrived uncompressed, or fragment finely; the data itself
    // is within the original limits already.
    let limits = Limits {
        max_fragments: u32::MAX,
        max_compressed_message_bytes: config.limits.max_message_bytes,
        max_inflated_message_bytes: usize::try_from(config.limits.max_message_bytes)
            .unwrap_or(usize::MAX),
        ..config.limits
    };
    let again = run(config.with_limits(limits), &[&bytes]);
    assert_eq!(again.error, None, "re-encoded output failed to decode");
    assert_eq!(
        again.events, merged,
        "re-encoded output decoded differently"
    );
}

/// Server-role decoding: no panic, bounded memory, the same outcome for every split.
pub fn ws_decode_server(data: &[u8]) {
    decode_target(DecoderConfig::server(), data);
}

/// Client-role decoding: no panic, bounded memory, the same outcome for every split.
pub fn ws_decode_client(data: &[u8]) {
    decode_target(DecoderConfig::client(), data);
}

/// Inflation of arbitrary data: no panic, output within the cap, the same result whole and a
/// chunk at a time (each chunk within its limit), and what inflates re-deflates and inflates to
/// the same bytes, and a reused deflater compresses it the same way again.
pub fn ws_inflate(data: &[u8]) {
    const CAP: usize = 256 * 1024;
    let mut inflater = Inflater::new();
    let whole = inflater.inflate(data, CAP);
    // The chunk size comes from the first byte: 1 to 8002 bytes.
    let chunk_limit = 1 + usize::from(data.first().copied().unwrap_or(0) % 64) * 127;
    let chunked = inflate_chunked(&mut inflater, data, chunk_limit, CAP);
    match (&whole, &chunked) {
        (Ok(plain), Ok(joined)) => assert_eq!(&plain[..], &joined[..], "chunked output differs"),
        (Err(a), Err(b)) => assert_eq!(a, b, "chunked inflation failed differently"),
        _ => panic!("whole: {whole:?}, chunked: {chunked:?}"),
    }
    let Ok(plain) = whole else {
        return;
    };
    assert!(plain.len() <= CAP);
    let mut compressed = BytesMut::new();
    let mut deflater = Deflater::new();
    if deflater
        .deflate(std::slice::from_ref(&plain), &mut compressed)
        .is_err()
    {
        panic!("deflate failed on {} bytes", plain.len());
    }
    let again: Bytes = match inflater.inflate(&compressed, CAP) {
        Ok(again) => again,
        Err(err) => panic!("re-inflate failed: {err}"),
    };
    assert_eq!(plain, again);
    // The same deflater, reused without context takeover, gives the same bytes again.
    let mut second = BytesMut::new();
    if deflater
        .deflate(std::slice::from_ref(&plain), &mut second)
        .is_err()
    {
        panic!("second deflate failed on {} bytes", plain.len());
    }
    assert_eq!(compressed, second);
}

/// Inflates `data` as [`Delivery::Stream`] does, a chunk of at most `chunk_limit` bytes at a
/// time, checking each chunk's size, and joins the chunks.
fn inflate_chunked(
    inflater: &mut Inflater,
    data: &[u8],
    chunk_limit: usize,
    cap: usize,
) -> Result<Vec<u8>, ProtocolError> {
    let mut stream = InflateStream::new(Bytes::copy_from_slice(data));
    let mut joined = Vec::new();
    loop {
        let (chunk, finished) = stream.next_chunk(inflater, chunk_limit, cap)?;
        assert!(chunk.len() <= chunk_limit, "chunk of {} bytes", chunk.len());
        assert!(
            finished || chunk.len() == chunk_limit,
            "short chunk before the end"
        );
        joined.extend_from_slice(&chunk);
        assert!(joined.len() <= cap);
        if finished {
            return Ok(joined);
        }
    }
}

#[cfg(test)]
#[path = "../../../fuzz/replay.rs"]
mod replay;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::replay::replay;

    #[test]
    fn replay_ws_decode_server() {
        assert!(replay("ws_decode_server", super::ws_decode_server).seeds >= 5);
    }

    #[test]
    fn replay_ws_decode_client() {
        assert!(replay("ws_decode_client", super::ws_decode_client).seeds >= 5);
    }

    #[test]
    fn replay_ws_inflate() {
        assert!(replay("ws_inflate", super::ws_inflate).seeds >= 5);
    }

    #[test]
    fn seeds_decode_as_intended() {
        // The seeds exercise the paths they are named after, not just early errors.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/ws_decode_server");
        let data = std::fs::read(root.join("compressed")).unwrap();
        let out = super::run(
            crate::DecoderConfig::server().with_deflate(true),
            &[&data[1..]],
        );
        assert_eq!(out.error, None);
        assert_eq!(out.events.len(), 1);
    }
}
