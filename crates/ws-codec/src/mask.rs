//! Payload masking (RFC 6455 §5.3).
//!
//! The fast path XORs eight bytes at a time through `as_chunks_mut::<8>()` in safe code; the
//! compiler turns the loop into wide vector instructions. [`apply_mask_bytewise`] is the plain
//! definition, kept for the differential tests and the benchmark.

/// XORs `buf` with the repeating 4-byte mask `key`, starting at key position `offset % 4`.
///
/// Returns the key position for the byte after `buf`, so a payload that arrives in pieces can be
/// unmasked piece by piece: pass the returned value as the next call's `offset`.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) -> usize {
    let mut rotated = key;
    rotated.rotate_left(offset % 4);
    let [k0, k1, k2, k3] = rotated;
    let word = u64::from_ne_bytes([k0, k1, k2, k3, k0, k1, k2, k3]);
    let (chunks, tail) = buf.as_chunks_mut::<8>();
    for chunk in chunks {
        *chunk = (u64::from_ne_bytes(*chunk) ^ word).to_ne_bytes();
    }
    // The chunks cover a multiple of 8 bytes, so the tail starts at key position 0 of `rotated`.
    for (byte, k) in tail.iter_mut().zip(rotated.iter().cycle()) {
        *byte ^= k;
    }
    (offset + buf.len()) % 4
}

/// The byte-at-a-time definition of [`apply_mask`]; same arguments and result.
pub fn apply_mask_bytewise(buf: &mut [u8], key: [u8; 4], offset: usize) -> usize {
    let mut pos = offset % 4;
    for byte in buf.iter_mut() {
        if let Some(k) = key.get(pos) {
            *byte ^= k;
        }
        pos = (pos + 1) % 4;
    }
    pos
}

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    reason = "test data generators truncate on purpose"
)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc6455_5_7_masked_hello() {
        // "Hello" masked with 37 fa 21 3d (RFC 6455 §5.7).
        let mut buf = *b"Hello";
        apply_mask(&mut buf, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(buf, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn unmask_in_three_calls_carries_the_key_position() {
        // TestWSUnmask: one call and three split calls give the same text.
        let key = [1, 2, 3, 4];
        let text = b"this is a clear text";
        let mut masked = *text;
        apply_mask_bytewise(&mut masked, key, 0);
        let mut whole = masked;
        apply_mask(&mut whole, key, 0);
        assert_eq!(&whole, text);
        let mut split = masked;
        let (a, rest) = split.split_at_mut(3);
        let (b, c) = rest.split_at_mut(6);
        let pos = apply_mask(a, key, 0);
        let pos = apply_mask(b, key, pos);
        apply_mask(c, key, pos);
        assert_eq!(&split, text);
    }

    #[test]
    fn fast_equals_bytewise_at_every_offset_and_length() {
        let key = [0xa1, 0x5c, 0x07, 0xee];
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for start in 0..16 {
            for len in 0..(data.len() - start) {
                for offset in 0..4 {
                    let mut fast = data[start..start + len].to_vec();
                    let mut slow = fast.clone();
                    let pf = apply_mask(&mut fast, key, offset);
                    let ps = apply_mask_bytewise(&mut slow, key, offset);
                    assert_eq!(fast, slow, "start {start} len {len} offset {offset}");
                    assert_eq!(pf, ps);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn fast_equals_bytewise(data in proptest::collection::vec(any::<u8>(), 0..2000),
                                key in any::<[u8; 4]>(), offset in 0usize..8, skip in 0usize..8) {
            let skip = skip.min(data.len());
            let mut fast = data.clone();
            let mut slow = data;
            let pf = apply_mask(&mut fast[skip..], key, offset);
            let ps = apply_mask_bytewise(&mut slow[skip..], key, offset);
            prop_assert_eq!(fast, slow);
            prop_assert_eq!(pf, ps);
        }
    }
}
