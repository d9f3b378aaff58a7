//! Criterion benchmarks for `ws_codec`: unmasking, frame decode and encode, deflate and inflate
//! (whole messages, and stream delivery a chunk at a time).

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ws_codec::{
    Decoder, DecoderConfig, Deflater, Encoder, EncoderConfig, Event, Inflater, apply_mask,
    apply_mask_bytewise,
};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const N_MSGS: usize = 1000;

fn mask(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for len in [1024usize, 64 * 1024, 1024 * 1024] {
        // One byte in, so the buffer starts unaligned as payloads after a header do.
        let mut buf = vec![0x5au8; len + 1];
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(format!("unmask_{}KiB", len / 1024), |b| {
            b.iter(|| apply_mask(black_box(&mut buf[1..]), KEY, 0));
        });
        if len == 64 * 1024 {
            group.bench_function("unmask_bytewise_64KiB", |b| {
                b.iter(|| apply_mask_bytewise(black_box(&mut buf[1..]), KEY, 0));
            });
        }
    }
    group.finish();
}

/// `N_MSGS` masked client frames of `len` bytes each.
fn client_frames(len: usize) -> Vec<u8> {
    let mut keys = || KEY;
    let mut encoder = Encoder::with_mask_keys(EncoderConfig::default(), &mut keys);
    let payload = Bytes::from(vec![b'x'; len]);
    let (mut deflater, mut arena) = (Deflater::new(), BytesMut::new());
    let mut out: Vec<Bytes> = Vec::new();
    for _ in 0..N_MSGS {
        encoder
            .encode_message(
                ws_codec::MessageKind::Binary,
                std::slice::from_ref(&payload),
                &mut deflater,
                &mut arena,
                &mut out,
            )
            .unwrap();
    }
    out.iter().flat_map(|b| b.iter().copied()).collect()
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for len in [16usize, 128, 16 * 1024] {
        let wire = client_frames(len);
        group.throughput(Throughput::Elements(N_MSGS as u64));
        group.bench_function(format!("server_{len}B"), |b| {
            let mut src = BytesMut::with_capacity(wire.len());
            let mut inflater = Inflater::new();
            b.iter(|| {
                src.clear();
                src.extend_from_slice(&wire);
                let mut decoder = Decoder::new(DecoderConfig::server());
                let mut n = 0;
                while let Ok(Some(event)) = decoder.decode(&mut src, &mut inflater) {
                    if let Event::Data(data) = event {
                        n += data.len();
                    }
                }
                assert_eq!(n, N_MSGS * len);
            });
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for len in [16usize, 128, 16 * 1024] {
        let payload = Bytes::from(vec![b'x'; len]);
        group.throughput(Throughput::Elements(N_MSGS as u64));
        group.bench_function(format!("server_{len}B"), |b| {
            let mut encoder = Encoder::server(EncoderConfig::default());
            let (mut deflater, mut arena) = (Deflater::new(), BytesMut::new());
            let mut out: Vec<Bytes> = Vec::with_capacity(4 * N_MSGS);
            b.iter(|| {
                out.clear();
                for _ in 0..N_MSGS {
                    encoder
                        .encode_stream(
                            std::slice::from_ref(&payload),
                            &mut deflater,
                            &mut arena,
                            &mut out,
                        )
                        .unwrap();
                }
                black_box(&out);
            });
        });
    }
    group.finish();
}

/// JSON-like text: NATS messages carrying small JSON documents.
fn json_text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 200);
    let mut i = 0u64;
    while out.len() < len {
        let doc = format!(
            "{{\"order_id\":{},\"customer\":\"cust-{}\",\"items\":[{{\"sku\":\"A{}\",\"qty\":{}}}],\"total\":{}.{:02}}}",
            10_000 + i,
            i * 7919 % 1000,
            i % 97,
            i % 5 + 1,
            i * 31 % 500,
            i % 100
        );
        out.extend_from_slice(
            format!("MSG orders.created 1 {}\r\n{doc}\r\n", doc.len()).as_bytes(),
        );
        i += 1;
    }
    out.truncate(len);
    out
}

fn compression(c: &mut Criterion) {
    let mut group = c.benchmark_group("deflate");
    // 256 B and 512 B flushes take the fixed-Huffman path; 1 KiB and up build dynamic codes.
    for len in [256usize, 512, 1024, 64 * 1024] {
        let label = if len < 1024 {
            format!("{len}B")
        } else {
            format!("{}KiB", len / 1024)
        };
        let text = Bytes::from(json_text(len));
        let mut deflater = Deflater::new();
        let mut out = BytesMut::new();
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(format!("deflate_json_{label}"), |b| {
            b.iter(|| {
                out.clear();
                deflater
                    .deflate(std::slice::from_ref(&text), &mut out)
                    .unwrap();
            });
        });
        out.clear();
        deflater
            .deflate(std::slice::from_ref(&text), &mut out)
            .unwrap();
        let compressed = out.clone().freeze();
        let mut inflater = Inflater::new();
        group.bench_function(format!("inflate_json_{label}"), |b| {
            b.iter(|| {
                let plain = inflater.inflate(&compressed, len).unwrap();
                assert_eq!(plain.len(), len);
            });
        });
        decode_compressed(&mut group, &text, &label);
    }
    // A message that inflates to many 64 KiB chunks.
    let text = Bytes::from(json_text(1 << 20));
    group.throughput(Throughput::Bytes(text.len() as u64));
    decode_compressed(&mut group, &text, "1MiB");
    group.finish();
}

/// Stream delivery of one masked compressed message: frame decode, then inflation in chunks
/// of the default 64 KiB.
fn decode_compressed(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    text: &Bytes,
    label: &str,
) {
    let mut keys = || KEY;
    let config = EncoderConfig {
        deflate: true,
        ..EncoderConfig::default()
    };
    let mut encoder = Encoder::with_mask_keys(config, &mut keys);
    let (mut deflater, mut arena) = (Deflater::new(), BytesMut::new());
    let mut out: Vec<Bytes> = Vec::new();
    encoder
        .encode_message(
            ws_codec::MessageKind::Binary,
            std::slice::from_ref(text),
            &mut deflater,
            &mut arena,
            &mut out,
        )
        .unwrap();
    let wire: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
    let mut src = BytesMut::with_capacity(wire.len());
    let mut inflater = Inflater::new();
    let config = DecoderConfig::server().with_deflate(true);
    group.bench_function(format!("decode_stream_json_{label}"), |b| {
        b.iter(|| {
            src.clear();
            src.extend_from_slice(&wire);
            let mut decoder = Decoder::new(config);
            let mut n = 0;
            while let Some(event) = decoder.decode(&mut src, &mut inflater).unwrap() {
                if let Event::Data(data) = event {
                    n += data.len();
                }
            }
            assert_eq!(n, text.len());
        });
    });
}

criterion_group!(benches, mask, decode, encode, compression);
criterion_main!(benches);
