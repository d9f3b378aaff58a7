//! Fuzz target body, shared by `fuzz/fuzz_targets/mqtt_decode.rs` and the seed replay test.
//!
//! The first input byte chooses the role (its top bit) and a split point (the other seven
//! bits, scaled to the input); the rest is the byte stream. Besides "no panic", the body
//! checks: the packets and the error are the same whole, split in two, and (for short inputs)
//! fed a byte at a time (chunk invariance); what is left unconsumed after the last packet is
//! less than one packet within the limit (bounded buffering); and the decoded packets,
//! encoded again and decoded by a fresh decoder, come back equal and consume all the bytes
//! (encode → decode round trip on whatever the fuzzer found valid).

#![allow(
    clippy::panic,
    clippy::indexing_slicing,
    reason = "fuzz bodies report a broken property by panicking"
)]

use bytes::BytesMut;

use crate::{DecodeError, Decoder, Limits, Packet, Role, encode, publish_len};

/// Small limits, so that the fuzzer reaches them.
pub const FUZZ_LIMITS: Limits = Limits {
    max_packet_bytes: 300,
    max_topic_bytes: 40,
    max_topic_filters: 4,
};

/// Inputs at most this long are also fed a byte at a time.
const BYTEWISE_MAX: usize = 200;

/// What a decoder made of a stream fed in the given chunks.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The packets, in order.
    pub packets: Vec<Packet>,
    /// The error that ended decoding, if any.
    pub error: Option<DecodeError>,
    /// Bytes left in the buffer when no error ended decoding (a partial packet).
    pub left: Option<usize>,
}

/// Feeds `chunks` one after the other to a fresh decoder, decoding after each.
pub fn run<'a>(role: Role, limits: Limits, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut decoder = Decoder::new(role, limits);
    let mut buf = BytesMut::new();
    let mut packets = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(packet)) => packets.push(packet),
                Ok(None) => break,
                Err(err) => {
                    assert_eq!(
                        decoder.decode(&mut buf),
                        Err(err.clone()),
                        "errors are final"
                    );
                    return Outcome {
                        packets,
                        error: Some(err),
                        left: None,
                    };
                }
            }
        }
        if let Some(len) = decoder.packet_len() {
            assert!(
                len <= limits.max_packet_bytes + 5,
                "announced packet too large"
            );
            assert!(buf.len() < len, "a whole packet was left undecoded");
        }
    }
    Outcome {
        packets,
        error: None,
        left: Some(buf.len()),
    }
}

/// Fuzz body: an arbitrary byte stream for either role.
pub fn mqtt_decode(data: &[u8]) {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let role = if selector & 0x80 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    let split_at = usize::from(selector & 0x7f) * input.len() / 0x7f;
    let whole = run(role, FUZZ_LIMITS, [input]);
    let (front, back) = input.split_at(split_at.min(input.len()));
    assert_eq!(whole, run(role, FUZZ_LIMITS, [front, back]), "split in two");
    if input.len() <= BYTEWISE_MAX {
        let bytewise = run(role, FUZZ_LIMITS, input.chunks(1));
        assert_eq!(whole, bytewise, "a byte at a time");
    }
    if let Some(left) = whole.left {
        assert!(
            left < FUZZ_LIMITS.max_packet_bytes + 5,
            "unbounded buffering"
        );
    }

    let mut again = BytesMut::new();
    for packet in &whole.packets {
        let before = again.len();
        if let Err(err) = encode(packet, &mut again) {
            panic!("a decoded packet does not encode: {err}: {packet:?}");
        }
        if let Packet::Publish(publish) = packet {
            let expected = publish_len(&publish.head(), publish.payload.len());
            assert_eq!(expected, Ok(again.len() - before), "publish_len");
        }
    }
    let redecoded = run(role, FUZZ_LIMITS, [&again[..]]);
    assert_eq!(redecoded.error, None, "re-encoded packets fail to decode");
    assert_eq!(redecoded.left, Some(0), "re-encoded packets leave bytes");
    assert_eq!(
        redecoded.packets, whole.packets,
        "encode → decode round trip"
    );
}

#[cfg(test)]
#[path = "../../../fuzz/replay.rs"]
mod replay;

#[cfg(test)]
mod tests {
    use super::replay::replay;
    use super::*;

    #[test]
    fn replay_seeds_and_regressions() {
        assert!(replay("mqtt_decode", mqtt_decode).seeds >= 10);
    }

    /// The seeds reach packets in both roles, not only errors: otherwise the fuzzer would start
    /// from nothing but refusals.
    #[test]
    fn seeds_decode_packets_in_both_roles() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/mqtt_decode");
        let (mut server, mut client) = (0, 0);
        for entry in std::fs::read_dir(dir).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            let Some((&selector, input)) = data.split_first() else {
                continue;
            };
            let role = if selector & 0x80 == 0 {
                Role::Server
            } else {
                Role::Client
            };
            let outcome = run(role, FUZZ_LIMITS, [input]);
            match role {
                Role::Server => server += outcome.packets.len(),
                Role::Client => client += outcome.packets.len(),
            }
        }
        assert!(server >= 10, "server-role seeds decode {server} packets");
        assert!(client >= 4, "client-role seeds decode {client} packets");
    }
}
