#![allow(
    clippy::cast_possible_truncation,
    reason = "test data generators truncate on purpose"
)]

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::fuzzing::{Outcome, run};
use crate::{Deflater, Encoder, EncoderConfig};

const KEY: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

/// A frame as a client sends it: `b0` is the whole first byte (FIN, RSV, opcode).
fn frame(b0: u8, payload: &[u8], mask: bool) -> Vec<u8> {
    let mut out = Vec::new();
    out.push(b0);
    let mask_bit = if mask { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n @ 126..=0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mut body = payload.to_vec();
    if mask {
        out.extend_from_slice(&KEY);
        crate::apply_mask_bytewise(&mut body, KEY, 0);
    }
    out.extend_from_slice(&body);
    out
}

fn masked(b0: u8, payload: &[u8]) -> Vec<u8> {
    frame(b0, payload, true)
}

fn compress(data: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    Deflater::new().deflate(&[data], &mut out).unwrap();
    out.to_vec()
}

fn data(bytes: &[u8]) -> Event {
    Event::Data(BytesMut::from(bytes))
}

fn concat(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

/// Runs `input` whole, byte by byte and split at every third point; all must agree with
/// `expect_events` and `expect_error`.
fn check(
    config: DecoderConfig,
    input: &[u8],
    expect_events: &[Event],
    expect_error: Option<ProtocolError>,
) -> Outcome {
    let whole = run(config, &[input]);
    assert_eq!(whole.events, expect_events);
    assert_eq!(whole.error, expect_error);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run(config, &bytes), whole, "byte by byte");
    for split in (0..=input.len()).step_by(3) {
        let (a, b) = input.split_at(split);
        assert_eq!(run(config, &[a, b]), whole, "split at {split}");
    }
    whole
}

fn server() -> DecoderConfig {
    DecoderConfig::server()
}

#[test]
fn rfc6455_5_7_examples() {
    // Single-frame unmasked text (server to client).
    check(
        DecoderConfig::client(),
        &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
        &[data(b"Hello")],
        None,
    );
    // Single-frame masked text (client to server).
    let input = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    check(server(), &input, &[data(b"Hello")], None);
    // Fragmented unmasked text.
    let input = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
    check(DecoderConfig::client(), &input, &[data(b"Hello")], None);
    let msg = Event::Message(Message {
        kind: MessageKind::Text,
        payload: Bytes::from_static(b"Hello"),
    });
    check(
        DecoderConfig::client().with_delivery(Delivery::Message),
        &input,
        &[msg],
        None,
    );
    // Unmasked ping and masked pong.
    let out = check(
        DecoderConfig::client(),
        &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
        &[Event::Ping(Bytes::from_static(b"Hello"))],
        None,
    );
    assert_eq!(out.replies, [Control::Pong(Bytes::from_static(b"Hello"))]);
    let input = [
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let out = check(
        server(),
        &input,
        &[Event::Pong(Bytes::from_static(b"Hello"))],
        None,
    );
    assert!(out.replies.is_empty());
    // 256 bytes and 64 KiB binary messages in one unmasked frame.
    let big = vec![7u8; 256];
    let mut input = vec![0x82, 0x7e, 0x01, 0x00];
    input.extend_from_slice(&big);
    check(DecoderConfig::client(), &input, &[data(&big)], None);
    let big = vec![9u8; 65536];
    let mut input = vec![0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0];
    input.extend_from_slice(&big);
    assert_eq!(run(DecoderConfig::client(), &[&input]).events, [data(&big)]);
}

#[test]
fn read_uncompressed_frames_progressively() {
    // TestWSReadUncompressedFrames: two frames in one read, then reads of 11 / 21 / rest bytes.
    let input = concat(&[
        masked(0x82, b"first message"),
        masked(0x82, b"second message"),
    ]);
    check(
        server(),
        &input,
        &[data(b"first messagesecond message")],
        None,
    );
    let mut decoder = Decoder::new(server());
    let mut inflater = Inflater::new();
    let mut src = BytesMut::from(&input[..11]);
    let mut got = Vec::new();
    while let Some(Event::Data(d)) = decoder.decode(&mut src, &mut inflater).unwrap() {
        got.push(d);
    }
    assert_eq!(got, [Bytes::from_static(b"first")]);
    src.extend_from_slice(&input[11..32]);
    got.clear();
    while let Some(Event::Data(d)) = decoder.decode(&mut src, &mut inflater).unwrap() {
        got.push(d);
    }
    assert_eq!(
        got,
        [
            Bytes::from_static(b" message"),
            Bytes::from_static(b"second ")
        ]
    );
    src.extend_from_slice(&input[32..]);
    assert_eq!(
        decoder.decode(&mut src, &mut inflater).unwrap(),
        Some(data(b"message"))
    );
    assert_eq!(decoder.decode(&mut src, &mut inflater).unwrap(), None);
    assert!(src.is_empty());
}

#[test]
fn read_compressed_frames() {
    // TestWSReadCompressedFrames.
    let cfg = server().with_deflate(true);
    let text =
        b"This is a compressed message that should be long enough to compress well well well";
    let z = compress(text);
    check(cfg, &masked(0xc2, &z), &[data(text)], None);
    // Ten compressed messages in one read give ten events (each with a fresh inflater state).
    let ten: Vec<u8> = (0..10).flat_map(|_| masked(0xc2, &z)).collect();
    let mut decoder = Decoder::new(cfg);
    let mut inflater = Inflater::new();
    let mut src = BytesMut::from(&ten[..]);
    let mut n = 0;
    while let Some(event) = decoder.decode(&mut src, &mut inflater).unwrap() {
        assert_eq!(event, data(text));
        n += 1;
    }
    assert_eq!(n, 10);
    // One compressed message split over two frames (RSV1 only on the first).
    let (a, b) = z.split_at(z.len() / 2);
    check(
        cfg,
        &concat(&[masked(0x42, a), masked(0x80, b)]),
        &[data(text)],
        None,
    );
    // Message delivery gets the same.
    let msg = Event::Message(Message {
        kind: MessageKind::Binary,
        payload: Bytes::copy_from_slice(text),
    });
    check(
        cfg.with_delivery(Delivery::Message),
        &concat(&[masked(0x42, a), masked(0x80, b)]),
        &[msg],
        None,
    );
}

#[test]
fn read_compressed_frame_corrupted() {
    let cfg = server().with_deflate(true);
    let out = check(
        cfg,
        &masked(0xc2, &[0xff, 0xff, 0xff, 0x13, 0x37]),
        &[],
        Some(ProtocolError::CorruptCompressedData(1)),
    );
    assert!(out.error.unwrap().to_string().contains("corrupt"));
}

#[test]
fn read_various_frame_sizes() {
    for size in [100usize, 1000, 70000] {
        let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let out = run(server(), &[&masked(0x82, &payload)]);
        assert_eq!(out.events, [data(&payload)], "size {size}");
    }
}

#[test]
fn read_fragmented_frames() {
    // TestWSReadFragmentedFrames: three fragments give three payloads in order.
    let input = concat(&[
        masked(0x02, b"first"),
        masked(0x00, b"second"),
        masked(0x80, b"third"),
    ]);
    let mut decoder = Decoder::new(server());
    let mut inflater = Inflater::new();
    let mut src = BytesMut::from(&input[..]);
    let mut got = Vec::new();
    while let Some(event) = decoder.decode(&mut src, &mut inflater).unwrap() {
        got.push(event);
    }
    assert_eq!(got, [data(b"first"), data(b"second"), data(b"third")]);
}

#[test]
fn partial_header_consumes_nothing() {
    // TestWSReadPartialFrameHeaderAtEndOfReadBuffer.
    let input = concat(&[masked(0x82, b"msg"), masked(0x82, b"more")]);
    let mut decoder = Decoder::new(server());
    let mut inflater = Inflater::new();
    let first_len = 2 + 4 + 3;
    for extra in 1..6 {
        let mut src = BytesMut::from(&input[..first_len + extra]);
        let mut decoder2 = Decoder::new(server());
        assert_eq!(
            decoder2.decode(&mut src, &mut inflater).unwrap(),
            Some(data(b"msg"))
        );
        assert_eq!(decoder2.decode(&mut src, &mut inflater).unwrap(), None);
        assert_eq!(src.len(), extra, "a partial header stays in the buffer");
    }
    let mut src = BytesMut::from(&input[..]);
    assert_eq!(
        decoder.decode(&mut src, &mut inflater).unwrap(),
        Some(data(b"msg"))
    );
    assert_eq!(
        decoder.decode(&mut src, &mut inflater).unwrap(),
        Some(data(b"more"))
    );
}

#[test]
fn ping_and_pong() {
    // TestWSReadPingFrame / TestWSReadPongFrame.
    for payload in [&b""[..], b"optional payload"] {
        let out = check(
            server(),
            &masked(0x89, payload),
            &[Event::Ping(Bytes::copy_from_slice(payload))],
            None,
        );
        assert_eq!(
            out.replies,
            [Control::Pong(Bytes::copy_from_slice(payload))]
        );
        let out = check(
            server(),
            &masked(0x8a, payload),
            &[Event::Pong(Bytes::copy_from_slice(payload))],
            None,
        );
        assert!(out.replies.is_empty());
    }
}

#[test]
fn close_frames() {
    // TestWSReadCloseFrame: data then close(1000, body) → the data, then the close; echo queued.
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    let input = concat(&[
        masked(0x82, b"hello"),
        masked(0x88, &close),
        masked(0x82, b"ignored"),
    ]);
    let expect_close = Some(CloseFrame::new(CloseCode::NORMAL, "bye"));
    let out = check(
        server(),
        &input,
        &[data(b"hello"), Event::Close(expect_close.clone())],
        None,
    );
    assert_eq!(out.replies, [Control::Close(expect_close)]);
    // An empty close is answered with an empty close (newer nats-server; never 1005).
    let out = check(server(), &masked(0x88, b""), &[Event::Close(None)], None);
    assert_eq!(out.replies, [Control::Close(None)]);
    // A custom code in 3000-4999 is echoed.
    let out = check(
        server(),
        &masked(0x88, &4000u16.to_be_bytes()),
        &[Event::Close(Some(CloseFrame::new(CloseCode(4000), "")))],
        None,
    );
    assert_eq!(out.replies.len(), 1);
}

#[test]
fn close_frame_partial_or_invalid() {
    // TestWSCloseFrameWithPartialOrInvalid (header one byte at a time is covered by `check`).
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"hello");
    check(
        server(),
        &masked(0x88, &close),
        &[Event::Close(Some(CloseFrame::new(
            CloseCode::NORMAL,
            "hello",
        )))],
        None,
    );
    // A 1-byte payload is a protocol error (newer nats-server; 2.9.10 echoed 1005).
    check(
        server(),
        &masked(0x88, &[0x03]),
        &[],
        Some(ProtocolError::CloseFrameOneByte),
    );
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        check(
            server(),
            &masked(0x88, &code.to_be_bytes()),
            &[],
            Some(ProtocolError::InvalidCloseCode(code)),
        );
    }
    // TestWSHandleControlFrameErrors: a non-UTF-8 reason closes with 1007 and a `utf8` text.
    let mut bad = 1000u16.to_be_bytes().to_vec();
    bad.extend_from_slice(&[0xff, 0xfe]);
    let out = check(
        server(),
        &masked(0x88, &bad),
        &[],
        Some(ProtocolError::InvalidCloseReason),
    );
    let err = out.error.unwrap();
    assert_eq!(err.close_code().0, 1007);
    assert!(err.close_frame().reason().contains("utf8"));
}

#[test]
fn control_frame_between_fragments() {
    // TestWSReadControlFrameBetweebFragmentedFrames.
    let input = concat(&[
        masked(0x02, b"first"),
        masked(0x8a, b""),
        masked(0x80, b"second"),
    ]);
    check(
        server(),
        &input,
        &[data(b"first"), Event::Pong(Bytes::new()), data(b"second")],
        None,
    );
    // A NATS `PING` split over two fragments with a WebSocket ping between them.
    let input = concat(&[
        masked(0x01, b"PI"),
        masked(0x89, b"x"),
        masked(0x80, b"NG\r\n"),
    ]);
    check(
        server(),
        &input,
        &[
            data(b"PI"),
            Event::Ping(Bytes::from_static(b"x")),
            data(b"NG\r\n"),
        ],
        None,
    );
}

#[test]
fn read_errors_after_a_valid_frame() {
    // TestWSReadErrors: the valid payload comes out, then the named error.
    let hello = masked(0x82, b"hello");
    let cases: Vec<(Vec<u8>, ProtocolError)> = vec![
        (frame(0x82, b"hello", false), ProtocolError::MaskBitMissing),
        (
            masked(0x89, &[0u8; 200]),
            ProtocolError::ControlFrameTooLong,
        ),
        (masked(0x09, b"hello"), ProtocolError::ControlFrameNotFinal),
        (
            concat(&[masked(0x02, b"frag1"), masked(0x82, b"new message")]),
            ProtocolError::NewMessageBeforeFinal,
        ),
        (
            masked(0x80, b"continuation"),
            ProtocolError::InvalidContinuation,
        ),
        (masked(0x40, b"frame"), ProtocolError::InvalidContinuation),
        (masked(0x63, b"hello"), ProtocolError::UnknownOpcode(3)),
        (masked(0xa2, b"hello"), ProtocolError::ReservedBitsSet),
        (masked(0x92, b"hello"), ProtocolError::ReservedBitsSet),
        (
            masked(0xc2, b"hello"),
            ProtocolError::CompressedWithoutDeflate,
        ),
        (
            masked(0xc9, b"hello"),
            ProtocolError::ControlFrameCompressed,
        ),
    ];
    for (bad, err) in cases {
        let mut expect = vec![data(b"hello")];
        if matches!(err, ProtocolError::NewMessageBeforeFinal) {
            // Stream delivery joins adjacent data: "hello" then the first fragment.
            expect = vec![data(b"hellofrag1")];
        }
        let input = concat(&[hello.clone(), bad]);
        let out = check(server(), &input, &expect, Some(err.clone()));
        assert_eq!(out.error.unwrap().close_code().0, 1002, "{err}");
    }
    // The error text for the unknown opcode matches nats-server's.
    assert_eq!(
        ProtocolError::UnknownOpcode(3).to_string(),
        "unknown opcode 3"
    );
}

#[test]
fn huge_64_bit_length_is_rejected() {
    // nats-server 2.9.10 panics here (`server/websocket.go` `wsRead` trusts the length).
    let input = [0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    check(
        server(),
        &input,
        &[],
        Some(ProtocolError::InvalidPayloadLength),
    );
    // A declared length over the limit fails at the header, before any payload is buffered.
    let input = [0x82, 0xff, 0x00, 0, 0x01, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    check(server(), &input, &[], Some(ProtocolError::MessageTooBig));
    let limits = Limits {
        max_message_bytes: 10,
        ..Limits::default()
    };
    let input = concat(&[masked(0x02, b"12345"), masked(0x80, b"123456")]);
    check(
        server().with_limits(limits),
        &input,
        &[data(b"12345")],
        Some(ProtocolError::MessageTooBig),
    );
    // Compressed messages are capped by their own, lower limit.
    let limits = Limits {
        max_compressed_message_bytes: 10,
        ..Limits::default()
    };
    check(
        server().with_deflate(true).with_limits(limits),
        &masked(0xc2, &[0; 11]),
        &[],
        Some(ProtocolError::MessageTooBig),
    );
    let limits = Limits {
        max_fragments: 2,
        ..Limits::default()
    };
    let input = concat(&[masked(0x02, b"a"), masked(0x00, b"b"), masked(0x80, b"c")]);
    check(
        server().with_limits(limits),
        &input,
        &[data(b"ab")],
        Some(ProtocolError::TooManyFragments),
    );
}

#[test]
fn compression_bomb_fails_cleanly() {
    let zeros = vec![0u8; 4 << 20];
    let z = compress(&zeros);
    let out = run(server().with_deflate(true), &[&masked(0xc2, &z)]);
    assert_eq!(out.error, Some(ProtocolError::MessageTooBig));
    assert_eq!(out.error.unwrap().close_code().0, 1009);
}

#[test]
fn roles_and_masking() {
    // Client role: server frames are never masked.
    check(
        DecoderConfig::client(),
        &masked(0x82, b"x"),
        &[],
        Some(ProtocolError::MaskedFrameFromServer),
    );
    // No-masking agreed: unmasked frames are accepted, and a masked one is still unmasked.
    let cfg = server().with_no_masking();
    check(
        cfg,
        &concat(&[frame(0x82, b"plain", false), masked(0x82, b"keyed")]),
        &[data(b"plainkeyed")],
        None,
    );
}

#[test]
fn message_delivery_checks_utf8_and_reports_kinds() {
    let cfg = server().with_delivery(Delivery::Message);
    let text = |s: &str| {
        Event::Message(Message {
            kind: MessageKind::Text,
            payload: Bytes::copy_from_slice(s.as_bytes()),
        })
    };
    let binary = |b: &[u8]| {
        Event::Message(Message {
            kind: MessageKind::Binary,
            payload: Bytes::copy_from_slice(b),
        })
    };
    check(
        cfg,
        &concat(&[
            masked(0x81, "héllo".as_bytes()),
            masked(0x82, &[0xff]),
            masked(0x82, b""),
        ]),
        &[text("héllo"), binary(&[0xff]), binary(b"")],
        None,
    );
    check(
        cfg,
        &masked(0x81, &[0xff]),
        &[],
        Some(ProtocolError::InvalidUtf8),
    );
    // A character split across fragments is fine.
    let e = "é".as_bytes();
    check(
        cfg,
        &concat(&[masked(0x01, &e[..1]), masked(0x80, &e[1..])]),
        &[text("é")],
        None,
    );
    // Stream delivery does not check UTF-8 (nats-server treats text like binary).
    check(server(), &masked(0x81, &[0xff]), &[data(&[0xff])], None);
}

#[test]
fn zero_length_frames_produce_nothing_and_errors_stick() {
    check(
        server(),
        &concat(&[masked(0x82, b""), masked(0x02, b""), masked(0x80, b"")]),
        &[],
        None,
    );
    let mut decoder = Decoder::new(server());
    let mut inflater = Inflater::new();
    let mut src = BytesMut::from(&frame(0x82, b"x", false)[..]);
    assert_eq!(
        decoder.decode(&mut src, &mut inflater),
        Err(ProtocolError::MaskBitMissing)
    );
    src.extend_from_slice(&masked(0x82, b"y"));
    assert_eq!(
        decoder.decode(&mut src, &mut inflater),
        Err(ProtocolError::MaskBitMissing)
    );
}

#[test]
fn after_close_nothing_is_consumed() {
    let input = concat(&[masked(0x88, b""), masked(0x82, b"late")]);
    let mut decoder = Decoder::new(server());
    let mut inflater = Inflater::new();
    let mut src = BytesMut::from(&input[..]);
    assert_eq!(
        decoder.decode(&mut src, &mut inflater).unwrap(),
        Some(Event::Close(None))
    );
    assert!(decoder.is_closed());
    assert_eq!(decoder.decode(&mut src, &mut inflater).unwrap(), None);
    assert_eq!(src.len(), 6 + 4);
    assert_eq!(decoder.poll_reply(), Some(Control::Close(None)));
    assert_eq!(decoder.poll_reply(), None);
}

#[test]
fn payloads_are_zero_copy() {
    let input = masked(0x82, &[5u8; 1000]);
    let mut src = BytesMut::from(&input[..]);
    let base = src.as_ptr() as usize;
    let mut decoder = Decoder::new(server());
    let Some(Event::Data(payload)) = decoder.decode(&mut src, &mut Inflater::new()).unwrap() else {
        panic!("expected data");
    };
    assert_eq!(
        payload.as_ptr() as usize,
        base + 8,
        "the payload is a slice of the read buffer"
    );
}

fn arb_message() -> impl Strategy<Value = (bool, Vec<u8>)> {
    // Generating 70 000 bytes element by element is slow, so sizes and contents come from a
    // length and a seed: runs of one byte (compressible) mixed with pseudo-random bytes.
    let len = prop_oneof![0usize..200, 0usize..70_000];
    (any::<bool>(), len, any::<u64>()).prop_map(|(text, len, seed)| {
        let mut x = seed | 1;
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let run = (x % 40) as usize;
            if x & 0x100 == 0 {
                out.extend(std::iter::repeat_n(b'a' + (x >> 20) as u8 % 26, run));
            } else {
                out.extend((0..run).map(|i| (x >> (i % 8 * 8)) as u8));
            }
        }
        out.truncate(len);
        (text, out)
    })
}

/// Encodes `messages` with a client-role encoder and decodes them with a server-role decoder
/// split at `splits`; every message must come back unchanged.
fn round_trip(
    messages: &[(bool, Vec<u8>)],
    deflate: bool,
    max_frame: Option<usize>,
    splits: &[usize],
    client_to_server: bool,
) {
    let config = EncoderConfig {
        max_frame_payload: max_frame.and_then(std::num::NonZeroUsize::new),
        deflate,
        ..EncoderConfig::default()
    };
    let mut counter = 0u32;
    let keys = move || {
        counter = counter.wrapping_mul(2_654_435_761).wrapping_add(12345);
        counter.to_be_bytes()
    };
    let mut client = Encoder::with_mask_keys(config, keys);
    let mut server_enc = Encoder::server(config);
    let mut deflater = Deflater::new();
    let mut arena = BytesMut::new();
    let mut wire = Vec::new();
    for (text, payload) in messages {
        let kind = if *text {
            MessageKind::Text
        } else {
            MessageKind::Binary
        };
        let mut out: Vec<Bytes> = Vec::new();
        let chunks: Vec<Bytes> = payload.chunks(3000).map(Bytes::copy_from_slice).collect();
        let n = if client_to_server {
            client
                .encode_message(kind, &chunks, &mut deflater, &mut arena, &mut out)
                .unwrap()
        } else {
            server_enc
                .encode_message(kind, &chunks, &mut deflater, &mut arena, &mut out)
                .unwrap()
        };
        let bytes: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
        assert_eq!(n, bytes.len());
        wire.extend_from_slice(&bytes);
    }
    let limits = Limits {
        max_inflated_message_bytes: 1 << 20,
        ..Limits::default()
    };
    let base = if client_to_server {
        DecoderConfig::server()
    } else {
        DecoderConfig::client()
    };
    let cfg = base
        .with_deflate(deflate)
        .with_delivery(Delivery::Message)
        .with_limits(limits);
    let mut pieces: Vec<&[u8]> = Vec::new();
    let mut rest = &wire[..];
    for &split in splits {
        let at = split % (rest.len() + 1);
        let (a, b) = rest.split_at(at);
        pieces.push(a);
        rest = b;
    }
    pieces.push(rest);
    let out = run(cfg, &pieces);
    assert_eq!(out.error, None);
    let got: Vec<(bool, Vec<u8>)> = out
        .events
        .into_iter()
        .map(|e| match e {
            Event::Message(m) => (m.kind == MessageKind::Text, m.payload.to_vec()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    let expect: Vec<(bool, Vec<u8>)> = messages.to_vec();
    // Text messages that are not UTF-8 fail; the generator keeps text valid below.
    assert_eq!(got, expect);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn encode_decode_round_trip(
        messages in proptest::collection::vec(arb_message(), 1..5),
        deflate in any::<bool>(),
        max_frame in proptest::option::of(1usize..5000),
        splits in proptest::collection::vec(any::<usize>(), 0..6),
        client_to_server in any::<bool>(),
    ) {
        let messages: Vec<(bool, Vec<u8>)> = messages
            .into_iter()
            .map(|(text, payload)| {
                if text && std::str::from_utf8(&payload).is_err() {
                    (false, payload)
                } else {
                    (text, payload)
                }
            })
            .collect();
        round_trip(&messages, deflate, max_frame, &splits, client_to_server);
    }

    #[test]
    fn chunk_invariance_on_arbitrary_input(
        input in proptest::collection::vec(any::<u8>(), 0..300),
        splits in proptest::collection::vec(any::<usize>(), 0..8),
        selector in any::<u8>(),
    ) {
        let mut cfg = if selector & 8 != 0 { DecoderConfig::client() } else { DecoderConfig::server() };
        cfg = cfg.with_deflate(selector & 1 != 0);
        if selector & 2 != 0 { cfg = cfg.with_delivery(Delivery::Message); }
        if selector & 4 != 0 { cfg = cfg.with_no_masking(); }
        let whole = run(cfg, &[&input]);
        let mut pieces: Vec<&[u8]> = Vec::new();
        let mut rest = &input[..];
        for split in splits {
            let (a, b) = rest.split_at(split % (rest.len() + 1));
            pieces.push(a);
            rest = b;
        }
        pieces.push(rest);
        prop_assert_eq!(run(cfg, &pieces), whole);
    }

    #[test]
    fn chunk_invariance_on_valid_streams(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..6),
        splits in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut input = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            input.extend(masked(if i % 2 == 0 { 0x82 } else { 0x89 }, &p[..p.len().min(125)]));
        }
        let whole = run(server(), &[&input]);
        prop_assert_eq!(&whole.error, &None);
        let mut pieces: Vec<&[u8]> = Vec::new();
        let mut rest = &input[..];
        for split in splits {
            let (a, b) = rest.split_at(split % (rest.len() + 1));
            pieces.push(a);
            rest = b;
        }
        pieces.push(rest);
        prop_assert_eq!(run(server(), &pieces), whole);
    }
}
