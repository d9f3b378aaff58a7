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

/// A compressed-stream decoder with inflated chunks of at most `chunk` bytes and a total cap.
fn inflating(chunk: usize, max_inflated: usize) -> DecoderConfig {
    server().with_deflate(true).with_limits(Limits {
        max_inflated_chunk_bytes: chunk,
        max_inflated_message_bytes: max_inflated,
        ..Limits::default()
    })
}

/// `n` NATS `PUB`s of a small JSON payload, as one client batch.
fn pub_batch(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        let payload = format!(
            r#"{{"order":{i},"qty":{},"sku":"A-{:04}"}}"#,
            i % 7,
            i % 1000
        );
        out.extend_from_slice(
            format!(
                "PUB orders.created.{} _INBOX.r{:07} {}\r\n{payload}\r\n",
                i % 100,
                i * 7919 % 10_000_000,
                payload.len()
            )
            .as_bytes(),
        );
    }
    out
}

/// `n_mib` MiB of zeros as one compressed message, built from one compressed MiB repeated
/// (each copy is self-contained, joined by the sync-flush tails the compressor removed).
fn zero_bomb(n_mib: usize) -> Vec<u8> {
    let one = compress(&vec![0u8; 1 << 20]);
    let mut out = Vec::new();
    for i in 0..n_mib {
        if i > 0 {
            out.extend_from_slice(&crate::SYNC_FLUSH_TAIL);
        }
        out.extend_from_slice(&one);
    }
    out
}

/// Splits `input` at each of `splits` (taken modulo what is left).
fn split_at_points<'a>(input: &'a [u8], splits: &[usize]) -> Vec<&'a [u8]> {
    let mut pieces: Vec<&[u8]> = Vec::new();
    let mut rest = input;
    for &split in splits {
        let (a, b) = rest.split_at(split % (rest.len() + 1));
        pieces.push(a);
        rest = b;
    }
    pieces.push(rest);
    pieces
}

#[test]
fn compressed_batch_of_pubs_comes_out_in_bounded_chunks() {
    // 20 000 PUBs, about 1.6 MB once inflated, in one compressed message: nats-server accepts
    // this; a cap on the whole inflated message (such as max_payload) refused it with 1009.
    let batch = pub_batch(20_000);
    assert!(batch.len() > 1_600_000, "{}", batch.len());
    let input = masked(0xc2, &compress(&batch));
    let cfg = server().with_deflate(true);
    let chunk = cfg.limits.max_inflated_chunk_bytes;
    assert_eq!(chunk, 64 * 1024);
    let whole = run(cfg, &[&input]);
    assert_eq!(whole.error, None);
    assert_eq!(whole.events, [data(&batch)]);
    let n_full = batch.len() / chunk;
    assert_eq!(whole.inflated_chunks.len(), n_full + 1);
    assert!(whole.inflated_chunks[..n_full].iter().all(|&n| n == chunk));
    assert_eq!(whole.inflated_chunks[n_full], batch.len() % chunk);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run(cfg, &bytes), whole, "byte by byte");
    for splits in [
        &[6usize][..],
        &[14],
        &[input.len() - 1],
        &[1, 1, 4, 100, 65_536],
        &[7, 4093, 4096, 16_384, 65_535, 3],
    ] {
        assert_eq!(
            run(cfg, &split_at_points(&input, splits)),
            whole,
            "{splits:?}"
        );
    }
    // A small chunk size gives the same bytes in more pieces.
    let small = run(inflating(1000, 64 << 20), &[&input]);
    assert_eq!(small.events, whole.events);
    assert_eq!(small.inflated_chunks.len(), batch.len().div_ceil(1000));
}

#[test]
fn compressed_message_in_chunks_under_every_split() {
    let text = pub_batch(10);
    let z = compress(&text);
    let (a, b) = z.split_at(z.len() / 3);
    let inputs = [
        masked(0xc2, &z),
        concat(&[masked(0x42, a), masked(0x89, b"p"), masked(0x80, b)]),
    ];
    for (input, expect) in inputs.iter().zip([
        vec![data(&text)],
        vec![Event::Ping(Bytes::from_static(b"p")), data(&text)],
    ]) {
        for chunk in [1, 3, 100, text.len(), 1 << 20] {
            let cfg = inflating(chunk, text.len());
            let whole = run(cfg, &[input]);
            assert_eq!(whole.events, expect, "chunk {chunk}");
            assert_eq!(whole.error, None);
            assert_eq!(whole.inflated_chunks.len(), text.len().div_ceil(chunk));
            for split in 0..=input.len() {
                let (a, b) = input.split_at(split);
                assert_eq!(run(cfg, &[a, b]), whole, "chunk {chunk}, split at {split}");
            }
            let bytes: Vec<&[u8]> = input.chunks(1).collect();
            assert_eq!(run(cfg, &bytes), whole, "chunk {chunk}, byte by byte");
        }
    }
}

#[test]
fn compressed_message_over_the_total_cap_is_too_big() {
    let text = pub_batch(100);
    let input = masked(0xc2, &compress(&text));
    // Exactly at the cap is fine, in either delivery.
    check(inflating(100, text.len()), &input, &[data(&text)], None);
    let msg = Event::Message(Message {
        kind: MessageKind::Binary,
        payload: Bytes::copy_from_slice(&text),
    });
    let cfg = inflating(100, text.len()).with_delivery(Delivery::Message);
    check(cfg, &input, &[msg], None);
    // One byte over fails; stream delivery has handed out the chunks that fit under the cap.
    let cap = text.len() - 1;
    let delivered = cap / 100 * 100;
    check(
        inflating(100, cap),
        &input,
        &[data(&text[..delivered])],
        Some(ProtocolError::MessageTooBig),
    );
    check(
        inflating(100, cap).with_delivery(Delivery::Message),
        &input,
        &[],
        Some(ProtocolError::MessageTooBig),
    );
}

#[test]
fn compression_bomb_fails_cleanly() {
    // 4 MiB of zeros over a 1 MiB cap: stream delivery hands out 1 MiB in 64 KiB chunks, then
    // closes with 1009; message delivery never holds more than the cap.
    let input = masked(0xc2, &zero_bomb(4));
    let out = run(inflating(64 * 1024, 1 << 20), &[&input]);
    assert_eq!(out.events, [data(&vec![0u8; 1 << 20])]);
    assert_eq!(out.inflated_chunks, [64 * 1024; 16]);
    assert_eq!(out.error, Some(ProtocolError::MessageTooBig));
    assert_eq!(out.error.unwrap().close_code().0, 1009);
    let cfg = inflating(64 * 1024, 1 << 20).with_delivery(Delivery::Message);
    assert_eq!(
        run(cfg, &[&input]).error,
        Some(ProtocolError::MessageTooBig)
    );
    // The default cap (64 MiB) stops a 65 MiB bomb; nothing larger than a chunk is held.
    let input = masked(0xc2, &zero_bomb(65));
    let mut decoder = Decoder::new(server().with_deflate(true));
    let mut inflater = Inflater::new();
    let mut src = BytesMut::from(&input[..]);
    let mut total = 0usize;
    let err = loop {
        match decoder.decode(&mut src, &mut inflater) {
            Ok(Some(Event::Data(chunk))) => {
                assert!(chunk.len() <= 64 * 1024);
                assert!(chunk.iter().all(|&b| b == 0));
                total += chunk.len();
            }
            other => break other,
        }
    };
    assert_eq!(err, Err(ProtocolError::MessageTooBig));
    assert_eq!(total, 64 << 20);
}

#[test]
fn corrupt_data_after_delivered_chunks_fails() {
    // Valid blocks, then a block header with the reserved type 11 (RFC 1951 §3.2.3).
    let text = pub_batch(100);
    let mut z = compress(&text);
    z.extend_from_slice(&crate::SYNC_FLUSH_TAIL);
    let valid_len = z.len();
    z.extend_from_slice(&[0xff, 0xff, 0xff]);
    // The chunks completed before the corruption are handed out; the partial chunk it
    // interrupts is not.
    let delivered = text.len() / 1000 * 1000;
    let out = check(
        inflating(1000, 1 << 20),
        &masked(0xc2, &z),
        &[data(&text[..delivered])],
        Some(ProtocolError::CorruptCompressedData(valid_len + 1)),
    );
    assert_eq!(out.inflated_chunks, vec![1000; text.len() / 1000]);
    assert_eq!(out.error.unwrap().close_code().0, 1007);
    // Corruption inside the first chunk: nothing is handed out.
    check(
        inflating(1 << 20, 1 << 20),
        &masked(0xc2, &z),
        &[],
        Some(ProtocolError::CorruptCompressedData(valid_len + 1)),
    );
}

#[test]
fn frames_after_a_compressed_message_wait_for_its_chunks() {
    let text = pub_batch(3000);
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    let after = concat(&[
        masked(0x89, b"ping"),
        masked(0x82, b"PING\r\n"),
        masked(0x88, &close),
    ]);
    let input = concat(&[masked(0xc2, &compress(&text)), after.clone()]);
    let mut decoder = Decoder::new(inflating(64 * 1024, 1 << 20));
    let mut inflater = Inflater::new();
    let mut src = BytesMut::from(&input[..]);
    let mut got = Vec::new();
    loop {
        let event = decoder.decode(&mut src, &mut inflater).unwrap();
        if decoder.is_inflating() {
            // Nothing after the compressed message is read, and no pong is owed yet.
            assert_eq!(&src[..], &after[..]);
            assert_eq!(decoder.poll_reply(), None);
            assert!(matches!(&event, Some(Event::Data(d)) if d.len() == 64 * 1024));
        }
        match event {
            Some(Event::Data(d)) => got.extend_from_slice(&d),
            Some(Event::Ping(p)) => {
                assert_eq!(got, text, "the ping comes after the whole message");
                assert_eq!(p, Bytes::from_static(b"ping"));
                assert_eq!(
                    decoder.poll_reply(),
                    Some(Control::Pong(Bytes::from_static(b"ping")))
                );
            }
            Some(Event::Close(frame)) => {
                assert_eq!(frame, Some(CloseFrame::new(CloseCode::NORMAL, "bye")));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut expect = text.clone();
    expect.extend_from_slice(b"PING\r\n");
    assert_eq!(got, expect);
    assert!(src.is_empty());
    // Pending chunks are handed out with nothing new in `src`.
    let mut decoder = Decoder::new(inflating(1000, 1 << 20));
    let mut src = BytesMut::from(&masked(0xc2, &compress(&text))[..]);
    assert!(decoder.decode(&mut src, &mut inflater).unwrap().is_some());
    assert!(src.is_empty() && decoder.is_inflating());
    let mut n_chunks = 1;
    while decoder.decode(&mut src, &mut inflater).unwrap().is_some() {
        n_chunks += 1;
    }
    assert_eq!(n_chunks, text.len().div_ceil(1000));
    assert!(!decoder.is_inflating());
}

#[test]
fn message_ending_on_a_chunk_boundary_then_another() {
    // Found by fuzzing (regressions/ws_decode_server/message-ending-on-a-chunk-boundary): when
    // a message's last bytes fill a chunk, the message ends in the next call, which goes on to
    // read and start the next compressed message. The fuzz harness took that for input read
    // while inflating.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/regressions/ws_decode_server/message-ending-on-a-chunk-boundary"
    );
    crate::fuzzing::ws_decode_server(&std::fs::read(path).unwrap());
    let text = pub_batch(30)[..2000].to_vec();
    let z = compress(&text);
    let input = concat(&[masked(0xc2, &z), masked(0xc2, &z)]);
    let cfg = inflating(1000, 1 << 20);
    let out = check(cfg, &input, &[data(&[&text[..], &text[..]].concat())], None);
    assert_eq!(out.inflated_chunks, [1000; 4]);
    let mut decoder = Decoder::new(cfg);
    let mut inflater = Inflater::new();
    let mut src = BytesMut::from(&input[..]);
    let second_frame_len = src.len() / 2;
    for n_call in 0..4 {
        let event = decoder.decode(&mut src, &mut inflater).unwrap();
        assert!(matches!(event, Some(Event::Data(d)) if d.len() == 1000));
        // The second message's frame is read only once the first message is over.
        let expect_left = if n_call < 2 { second_frame_len } else { 0 };
        assert_eq!(src.len(), expect_left, "call {n_call}");
    }
    assert_eq!(decoder.decode(&mut src, &mut inflater).unwrap(), None);
    assert!(!decoder.is_inflating());
}

#[test]
fn decompressor_is_held_only_while_a_message_is_inflated() {
    let text = pub_batch(1000);
    let z = compress(&text);
    let input = concat(&[masked(0xc2, &z), masked(0xc2, &z)]);
    let mut decoder = Decoder::new(inflating(4096, 1 << 20));
    let mut inflater = Inflater::new();
    let mut src = BytesMut::from(&input[..]);
    assert!(!decoder.holds_decompressor());
    let mut n_events = 0;
    while let Some(event) = decoder.decode(&mut src, &mut inflater).unwrap() {
        assert!(matches!(event, Event::Data(_)));
        n_events += 1;
        // It holds one between chunks, and none once a message's last chunk is out.
        assert_eq!(decoder.holds_decompressor(), decoder.is_inflating());
        assert_eq!(
            format!("{decoder:?}").contains("holds_decompressor: true"),
            decoder.is_inflating()
        );
        if !decoder.is_inflating() {
            // Given back to the shared inflater for the next message.
            assert!(format!("{inflater:?}").contains("spare_decompressor: true"));
        }
    }
    assert_eq!(n_events, 2 * text.len().div_ceil(4096));
    assert!(!decoder.holds_decompressor());
    // Also after a failure, and with the message's chunk size as large as the message.
    for chunk in [4096, 1 << 20] {
        let mut bad = z.clone();
        bad.extend_from_slice(&crate::SYNC_FLUSH_TAIL);
        bad.extend_from_slice(&[0xff, 0xff]);
        let mut decoder = Decoder::new(inflating(chunk, 1 << 20));
        let mut inflater = Inflater::new();
        let mut src = BytesMut::from(&masked(0xc2, &bad)[..]);
        let err = loop {
            match decoder.decode(&mut src, &mut inflater) {
                Ok(Some(_)) => {}
                other => break other,
            }
        };
        assert!(matches!(err, Err(ProtocolError::CorruptCompressedData(_))));
        assert!(!decoder.holds_decompressor() && !decoder.is_inflating());
        assert!(format!("{inflater:?}").contains("spare_decompressor: true"));
    }
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
        chunk_limit in 1usize..200,
    ) {
        let mut cfg = if selector & 8 != 0 { DecoderConfig::client() } else { DecoderConfig::server() };
        cfg = cfg.with_deflate(selector & 1 != 0).with_limits(Limits {
            max_inflated_chunk_bytes: chunk_limit,
            ..Limits::default()
        });
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

    #[test]
    fn chunk_invariance_on_compressed_streams(
        messages in proptest::collection::vec(arb_message(), 1..4),
        n_frames in 1usize..4,
        chunk_limit in 1usize..300,
        splits in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        // Compressed messages, each split over `n_frames` frames and followed by a ping.
        let mut input = Vec::new();
        let mut expect = Vec::new();
        for (i, (_, payload)) in messages.iter().enumerate() {
            let z = compress(payload);
            let piece_len = z.len().div_ceil(n_frames).max(1);
            let pieces: Vec<&[u8]> = if z.is_empty() { vec![&z[..]] } else { z.chunks(piece_len).collect() };
            for (j, piece) in pieces.iter().enumerate() {
                let fin = if j + 1 == pieces.len() { 0x80 } else { 0 };
                let op = if j == 0 { 0x42 } else { 0 };
                input.extend(masked(fin | op, piece));
            }
            let ping = vec![i as u8; i];
            input.extend(masked(0x89, &ping));
            if !payload.is_empty() {
                expect.push(data(payload));
            }
            expect.push(Event::Ping(Bytes::from(ping)));
        }
        let cfg = inflating(chunk_limit, 1 << 20);
        let whole = run(cfg, &[&input]);
        prop_assert_eq!(&whole.error, &None);
        prop_assert_eq!(&whole.events, &expect);
        let n_chunks: usize = messages.iter().map(|(_, p)| p.len().div_ceil(chunk_limit)).sum();
        prop_assert_eq!(whole.inflated_chunks.len(), n_chunks);
        prop_assert_eq!(run(cfg, &split_at_points(&input, &splits)), whole);
    }
}
