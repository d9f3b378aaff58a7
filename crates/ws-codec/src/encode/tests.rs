#![allow(
    clippy::cast_possible_truncation,
    reason = "test data generators truncate on purpose"
)]

use bytes::{Bytes, BytesMut};

use super::*;
use crate::{CloseReason, Inflater};

/// Splits a server-to-client wire image into (first byte, payload) per frame.
fn frames(wire: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = wire;
    while !rest.is_empty() {
        let b0 = rest[0];
        let len7 = rest[1] & 0x7f;
        let (len, hdr) = match len7 {
            126 => (u16::from_be_bytes([rest[2], rest[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(rest[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        assert_eq!(rest[1] & 0x80, 0, "server frames are unmasked");
        out.push((b0, rest[hdr..hdr + len].to_vec()));
        rest = &rest[hdr + len..];
    }
    out
}

fn encode_stream(config: EncoderConfig, chunks: &[Bytes]) -> (Vec<Bytes>, Vec<u8>) {
    let mut encoder = Encoder::server(config);
    let mut out = Vec::new();
    let n = encoder
        .encode_stream(chunks, &mut Deflater::new(), &mut BytesMut::new(), &mut out)
        .unwrap();
    let wire: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
    assert_eq!(n, wire.len());
    (out, wire)
}

fn browser() -> EncoderConfig {
    EncoderConfig::for_user_agent(
        false,
        Some("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"),
    )
}

fn sizes(lens: &[usize]) -> Vec<Bytes> {
    lens.iter()
        .enumerate()
        .map(|(i, &n)| Bytes::from(vec![b'a' + i as u8; n]))
        .collect()
}

fn check_packing(lens: &[usize], expect: &[usize]) {
    let chunks = sizes(lens);
    let (_, wire) = encode_stream(browser(), &chunks);
    let got = frames(&wire);
    let got_lens: Vec<usize> = got.iter().map(|(_, p)| p.len()).collect();
    assert_eq!(got_lens, expect, "chunks {lens:?}");
    for (b0, _) in &got {
        assert_eq!(
            *b0, 0x82,
            "every browser frame is a complete binary message"
        );
    }
    let joined: Vec<u8> = got.into_iter().flat_map(|(_, p)| p).collect();
    let input: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    assert_eq!(joined, input);
}

#[test]
fn frame_outbound_packing() {
    // TestWSFrameOutbound in nats-server's `server/websocket_test.go`.
    check_packing(&[13, 7, 4106, 14], &[20, 4096, 24]);
    check_packing(&[13, 7, 4096, 14], &[20, 4096, 14]);
    check_packing(&[19, 4091, 14], &[19, 4091, 14]);
    check_packing(&[4196], &[4096, 100]);
    check_packing(&[17, 20002], &[17, 4096, 4096, 4096, 4096, 3618]);
    check_packing(&[0, 5, 0], &[5]);
}

#[test]
fn one_frame_per_flush_without_limit() {
    let chunks = sizes(&[13, 7, 100_000, 14]);
    let (out, wire) = encode_stream(EncoderConfig::default(), &chunks);
    let got = frames(&wire);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, 0x82);
    assert_eq!(got[0].1.len(), 100_034);
    // The large chunk is shared, not copied: it appears in `out` as the same allocation.
    assert!(
        out.iter()
            .any(|b| b.as_ptr() == chunks[2].as_ptr() && b.len() == 100_000)
    );
    // Header and the two small chunks before it share one arena entry.
    assert_eq!(out.len(), 3);
    assert!(encode_stream(EncoderConfig::default(), &[]).1.is_empty());
}

#[test]
fn user_agent_rules() {
    let chrome = "Mozilla/5.0 (Macintosh) AppleWebKit/537.36 Chrome/120.0 Safari/537.36";
    let safari = "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15";
    let c = EncoderConfig::for_user_agent(true, Some(chrome));
    assert_eq!(c.max_frame_payload.map(|n| n.get()), Some(4096));
    assert!(c.fragment_compressed);
    let s = EncoderConfig::for_user_agent(true, Some(safari));
    assert_eq!(s.max_frame_payload.map(|n| n.get()), Some(4096));
    assert!(!s.fragment_compressed);
    let n = EncoderConfig::for_user_agent(true, Some("nats.go"));
    assert_eq!(n.max_frame_payload, None);
    assert_eq!(
        EncoderConfig::for_user_agent(false, None).max_frame_payload,
        None
    );
}

fn inflate_frames(got: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let joined: Vec<u8> = got.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    Inflater::new().inflate(&joined, 1 << 24).unwrap().to_vec()
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn compressed_framing() {
    // At most 64 bytes: sent uncompressed (`wsCompressThreshold` in `server/websocket.go`).
    let (_, wire) = encode_stream(
        EncoderConfig {
            deflate: true,
            ..EncoderConfig::default()
        },
        &[Bytes::from_static(b"PONG\r\n")],
    );
    assert_eq!(wire, b"\x82\x06PONG\r\n");
    let small = Bytes::from(vec![b'x'; 64]);
    let (_, wire) = encode_stream(
        EncoderConfig {
            deflate: true,
            ..EncoderConfig::default()
        },
        std::slice::from_ref(&small),
    );
    assert_eq!(frames(&wire), [(0x82, small.to_vec())]);
    // Over the threshold: one compressed message, RSV1 set.
    let json =
        Bytes::from(br#"{"server_id":"NABC","version":"2.9.10","max_payload":1048576}"#.repeat(3));
    let (_, wire) = encode_stream(
        EncoderConfig {
            deflate: true,
            ..EncoderConfig::default()
        },
        std::slice::from_ref(&json),
    );
    let got = frames(&wire);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, 0xc2);
    assert_eq!(inflate_frames(&got), json.to_vec());
    // Chrome: 20000 random bytes compress to more than 4096 and are fragmented.
    let random = Bytes::from(random_bytes(20_000));
    let chrome =
        EncoderConfig::for_user_agent(true, Some("Mozilla/5.0 Chrome/120.0 Safari/537.36"));
    let (_, wire) = encode_stream(chrome, std::slice::from_ref(&random));
    let got = frames(&wire);
    assert!(got.len() == 5, "{} frames", got.len());
    assert_eq!(got[0].0, 0x42);
    for (b0, p) in &got[1..got.len() - 1] {
        assert_eq!((*b0, p.len()), (0x00, 4096));
    }
    assert_eq!(got[0].1.len(), 4096);
    assert_eq!(got.last().unwrap().0, 0x80);
    assert_eq!(inflate_frames(&got), random.to_vec());
    // Safari: one frame however large.
    let safari =
        EncoderConfig::for_user_agent(true, Some("Mozilla/5.0 Version/17.0 Safari/605.1.15"));
    let (_, wire) = encode_stream(safari, std::slice::from_ref(&random));
    let got = frames(&wire);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, 0xc2);
    assert!(got[0].1.len() > 20_000);
    assert_eq!(inflate_frames(&got), random.to_vec());
}

#[test]
fn control_frames() {
    let mut encoder = Encoder::server(EncoderConfig::default());
    let mut arena = BytesMut::new();
    let mut out: Vec<Bytes> = Vec::new();
    let wire =
        |out: &Vec<Bytes>| -> Vec<u8> { out.iter().flat_map(|b| b.iter().copied()).collect() };
    // A pong carrying `hello` (RFC 6455 §5.5.3): `8A 05 68 65 6C 6C 6F`.
    encoder.encode_control(
        &Control::Pong(Bytes::from_static(b"hello")),
        &mut arena,
        &mut out,
    );
    assert_eq!(wire(&out), b"\x8a\x05hello");
    out.clear();
    encoder.encode_control(
        &Control::Close(Some(CloseReason::AuthenticationTimeout.close_frame())),
        &mut arena,
        &mut out,
    );
    assert_eq!(wire(&out), b"\x88\x18\x03\xf0Authentication Timeout");
    out.clear();
    encoder.encode_control(&Control::Close(None), &mut arena, &mut out);
    assert_eq!(wire(&out), b"\x88\x00");
    out.clear();
    let n = encoder.encode_control(
        &Control::Ping(Bytes::from(vec![1u8; 300])),
        &mut arena,
        &mut out,
    );
    assert_eq!(n, 127);
}

#[test]
fn client_frames_are_masked_with_fresh_keys() {
    let mut keys = [[1u8, 2, 3, 4], [5, 6, 7, 8]].into_iter().cycle();
    let mut encoder = Encoder::with_mask_keys(EncoderConfig::default(), move || {
        keys.next().unwrap_or_default()
    });
    let mut out: Vec<Bytes> = Vec::new();
    let payload = Bytes::from(vec![0u8; 1000]);
    encoder
        .encode_message(
            MessageKind::Binary,
            std::slice::from_ref(&payload),
            &mut Deflater::new(),
            &mut BytesMut::new(),
            &mut out,
        )
        .unwrap();
    let wire: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
    assert_eq!(&wire[..8], &[0x82, 0xfe, 0x03, 0xe8, 1, 2, 3, 4]);
    assert_eq!(&wire[8..12], &[1, 2, 3, 4]);
    out.clear();
    encoder.encode_control(&Control::Ping(Bytes::new()), &mut BytesMut::new(), &mut out);
    let wire: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
    assert_eq!(wire, [0x89, 0x80, 5, 6, 7, 8]);
}

#[test]
fn steady_state_reuses_the_arena_and_the_compressor_output() {
    // No allocation per flush: once the previous flush's output was written and dropped, the
    // next flush's headers and compressed bytes land in the same arena allocation.
    let mut encoder = Encoder::server(EncoderConfig {
        deflate: true,
        ..EncoderConfig::default()
    });
    let (mut deflater, mut arena) = (Deflater::new(), BytesMut::with_capacity(64 * 1024));
    let pending = [Bytes::from(
        b"MSG orders.created 1 17\r\n{\"id\":1,\"ok\":true}\r\n".repeat(20),
    )];
    let mut out: Vec<Bytes> = Vec::with_capacity(8);
    let base = arena.as_ptr() as usize;
    // Enough rounds to wrap the arena several times, so the memory must be reclaimed.
    for round in 0..2000 {
        out.clear();
        encoder
            .encode_stream(&pending, &mut deflater, &mut arena, &mut out)
            .unwrap();
        for b in &out {
            let ptr = b.as_ptr() as usize;
            assert!(
                (base..base + 64 * 1024).contains(&ptr),
                "round {round} allocated: {ptr:#x} base {base:#x} len {} arena cap {}",
                b.len(),
                arena.capacity()
            );
        }
        assert_eq!(out.capacity(), 8);
    }
}

/// What a flush looks like on the wire through the in-place path: the header, then the
/// pending bytes as they are. `None` when the encoder has no in-place path for it.
fn in_place_wire(config: EncoderConfig, chunks: &[Bytes]) -> Option<Vec<u8>> {
    let total: usize = chunks.iter().map(Bytes::len).sum();
    let header = Encoder::server(config).in_place_header(total)?;
    let mut wire = header.as_bytes().to_vec();
    for c in chunks {
        wire.extend_from_slice(c);
    }
    Some(wire)
}

#[test]
fn in_place_header_lengths_and_refusals() {
    let plain = EncoderConfig::default();
    let check = |config: EncoderConfig, len: usize, expect: Option<&[u8]>| {
        let got = Encoder::server(config).in_place_header(len);
        assert_eq!(got.as_ref().map(InPlaceHeader::as_bytes), expect, "{len}");
    };
    check(plain, 0, None);
    check(plain, 1, Some(&[0x82, 1]));
    check(plain, 125, Some(&[0x82, 125]));
    check(plain, 126, Some(&[0x82, 126, 0, 126]));
    check(plain, 65_535, Some(&[0x82, 126, 0xff, 0xff]));
    check(plain, 65_536, Some(&[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]));
    // A frame size limit (browsers) packs frames: no in-place path.
    check(browser(), 10, None);
    // Compression negotiated: only flushes at most the threshold go out as they are.
    let deflate = EncoderConfig {
        deflate: true,
        ..EncoderConfig::default()
    };
    check(deflate, COMPRESS_THRESHOLD_BYTES, Some(&[0x82, 64]));
    check(deflate, COMPRESS_THRESHOLD_BYTES + 1, None);
}

proptest::proptest! {
    /// The in-place path writes exactly what `encode_stream` writes, and a client-role decoder
    /// reads the pending bytes back from it.
    #[test]
    fn in_place_matches_encode_stream_and_decodes(
        lens in proptest::collection::vec(0usize..70_000, 0..4),
        deflate: bool,
        limited: bool,
    ) {
        let config = EncoderConfig {
            deflate,
            max_frame_payload: if limited { NonZeroUsize::new(BROWSER_MAX_FRAME_BYTES) } else { None },
            ..EncoderConfig::default()
        };
        let chunks = sizes(&lens);
        let total: usize = lens.iter().sum();
        let expected_path = total > 0 && !limited && !(deflate && total > COMPRESS_THRESHOLD_BYTES);
        let wire = in_place_wire(config, &chunks);
        proptest::prop_assert_eq!(wire.is_some(), expected_path);
        if let Some(wire) = wire {
            let (_, general) = encode_stream(config, &chunks);
            proptest::prop_assert_eq!(&wire, &general);
            let mut decoder = crate::Decoder::new(crate::DecoderConfig::client());
            let mut src = BytesMut::from(&wire[..]);
            let mut payload = Vec::new();
            let mut inflater = Inflater::new();
            while let Some(ev) = decoder.decode(&mut src, &mut inflater).unwrap() {
                if let crate::Event::Data(d) = ev {
                    payload.extend_from_slice(&d);
                }
            }
            let pending: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
            proptest::prop_assert_eq!(payload, pending);
            proptest::prop_assert!(src.is_empty());
        }
    }
}
