//! Criterion benchmarks for `mqtt_codec`: decoding client PUBLISH batches (server role) and
//! encoding server PUBLISH heads.
//!
//! Throughput is reported in packets per second (`Throughput::Elements`, one per packet).

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mqtt_codec::{
    Connect, Decoder, Packet, Publish, PublishHead, QoS, encode, encode_publish_head,
};

/// Packets per decode batch: one read buffer holding this many PUBLISH packets.
const BATCH: usize = 64;

fn publish(qos: QoS, size: usize) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: "sensors/building-7/floor-3/temperature".to_owned(),
        packet_id: (qos != QoS::AtMostOnce).then_some(42),
        payload: Bytes::from(vec![b'x'; size]),
    })
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("mqtt_codec/decode_publish");
    let mut connect = BytesMut::new();
    encode(
        &Packet::Connect(Connect {
            clean_session: true,
            client_id: "bench".to_owned(),
            ..Connect::default()
        }),
        &mut connect,
    )
    .expect("encodable");
    for (qos, name) in [(QoS::AtMostOnce, "qos0"), (QoS::AtLeastOnce, "qos1")] {
        for size in [16usize, 128, 16 * 1024] {
            let mut batch = BytesMut::new();
            for _ in 0..BATCH {
                encode(&publish(qos, size), &mut batch).expect("encodable");
            }
            group.throughput(Throughput::Elements(BATCH as u64));
            group.bench_function(format!("{name}/{size}B"), |b| {
                b.iter(|| {
                    let mut decoder = Decoder::server();
                    let mut src = connect.clone();
                    src.extend_from_slice(&batch);
                    let mut n = 0;
                    while let Ok(Some(packet)) = decoder.decode(&mut src) {
                        n += usize::from(matches!(packet, Packet::Publish(_)));
                        black_box(packet);
                    }
                    assert_eq!(n, BATCH);
                });
            });
        }
    }
    group.finish();
}

fn encode_heads(c: &mut Criterion) {
    let mut group = c.benchmark_group("mqtt_codec/encode_publish_head");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut out = BytesMut::with_capacity(BATCH * 64);
    for (qos, name) in [(QoS::AtMostOnce, "qos0"), (QoS::AtLeastOnce, "qos1")] {
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                for i in 0..BATCH {
                    let head = PublishHead {
                        dup: false,
                        qos,
                        retain: false,
                        topic: "sensors/building-7/floor-3/temperature",
                        packet_id: (qos != QoS::AtMostOnce).then_some(1 + i as u16),
                    };
                    encode_publish_head(&head, black_box(128), &mut out).expect("encodable");
                }
                black_box(out.len())
            });
        });
    }
    group.finish();
}

criterion_group!(benches, decode, encode_heads);
criterion_main!(benches);
