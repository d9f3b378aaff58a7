//! Message payloads that prove they arrived intact and in order.
//!
//! Every payload carries its sequence number as 16 hex digits (the stamp) at a fixed offset;
//! the rest of it equals a template known to both sides. A receiver checks the size, that the
//! stamp is the next one it expects, and that every other byte matches the template.

use std::fmt;

/// Hex digits in a stamp.
pub(crate) const STAMP_LEN: usize = 16;

/// Why a received payload is not the one expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mismatch {
    /// The payload has the wrong length.
    Size { got: usize, want: usize },
    /// The stamp is not the next sequence number (lost, duplicated or reordered message).
    Order { got: Option<u64>, want: u64 },
    /// The bytes outside the stamp differ from the template.
    Content { seq: u64, offset: usize },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Size { got, want } => write!(f, "payload of {got} bytes, expected {want}"),
            Self::Order {
                got: Some(got),
                want,
            } => {
                write!(f, "message {got} arrived where {want} was expected")
            }
            Self::Order { got: None, want } => {
                write!(f, "unreadable sequence stamp where {want} was expected")
            }
            Self::Content { seq, offset } => {
                write!(f, "message {seq} corrupted at byte {offset}")
            }
        }
    }
}

/// The payloads of one scenario: all of one size, with templates chosen by sequence number.
#[derive(Debug, Clone)]
pub(crate) struct Payloads {
    templates: Vec<Vec<u8>>,
    size: usize,
    stamp_at: usize,
}

impl Payloads {
    /// Binary payloads of `size` bytes (at least [`STAMP_LEN`]): the stamp, then a fixed
    /// pseudo-random pattern.
    pub(crate) fn binary(size: usize) -> Result<Self, String> {
        if size < STAMP_LEN {
            return Err(format!(
                "payloads need at least {STAMP_LEN} bytes, got {size}"
            ));
        }
        let mut rng = XorShift::new(0x5eed);
        let template = (0..size).map(|_| rng.next_u64() as u8).collect();
        Ok(Self {
            templates: vec![template],
            size,
            stamp_at: 0,
        })
    }

    /// JSON event records of exactly `size` bytes, `variants` different ones (each message uses
    /// variant `seq % variants`), the stamp being the value of their first field `"seq"`.
    /// Realistic text for permessage-deflate: ids, names, items, a free-text note.
    pub(crate) fn json(size: usize, variants: usize) -> Result<Self, String> {
        let prefix = "{\"seq\":\"";
        let templates = (0..variants.max(1))
            .map(|v| json_record(size, v as u64).map(String::into_bytes))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            templates,
            size,
            stamp_at: prefix.len(),
        })
    }

    fn template(&self, seq: u64) -> &[u8] {
        let n = self.templates.len() as u64;
        let index = usize::try_from(seq % n).unwrap_or(0);
        self.templates.get(index).map_or(&[], Vec::as_slice)
    }

    /// Appends payload number `seq` to `out`.
    pub(crate) fn write(&self, seq: u64, out: &mut Vec<u8>) {
        let template = self.template(seq);
        let (head, rest) = template.split_at(self.stamp_at);
        out.extend_from_slice(head);
        out.extend_from_slice(&stamp(seq));
        out.extend_from_slice(rest.get(STAMP_LEN..).unwrap_or_default());
    }

    /// Checks that `payload` is payload number `want`.
    pub(crate) fn check(&self, want: u64, payload: &[u8]) -> Result<(), Mismatch> {
        if payload.len() != self.size {
            return Err(Mismatch::Size {
                got: payload.len(),
                want: self.size,
            });
        }
        let end = self.stamp_at + STAMP_LEN;
        let got = payload.get(self.stamp_at..end).and_then(read_stamp);
        if got != Some(want) {
            return Err(Mismatch::Order { got, want });
        }
        let template = self.template(want);
        for (range_start, range_end) in [(0, self.stamp_at), (end, self.size)] {
            let (Some(a), Some(b)) = (
                payload.get(range_start..range_end),
                template.get(range_start..range_end),
            ) else {
                continue;
            };
            if a != b {
                let offset = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(0);
                return Err(Mismatch::Content {
                    seq: want,
                    offset: range_start + offset,
                });
            }
        }
        Ok(())
    }
}

/// `seq` as 16 lowercase hex digits.
pub(crate) fn stamp(seq: u64) -> [u8; STAMP_LEN] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; STAMP_LEN];
    for (i, digit) in out.iter_mut().enumerate() {
        let shift = (STAMP_LEN - 1 - i) * 4;
        *digit = HEX[((seq >> shift) & 0xf) as usize];
    }
    out
}

/// The sequence number in a stamp, if it is 16 lowercase hex digits.
pub(crate) fn read_stamp(digits: &[u8]) -> Option<u64> {
    if digits.len() != STAMP_LEN {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u64::from(v))
    })
}

/// A small, fast pseudo-random generator (xorshift64*): reproducible payloads and WebSocket
/// mask keys. Benchmark traffic to a local server needs no unpredictable keys.
#[derive(Debug, Clone)]
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// Seeded from the kernel's random source, falling back to the clock.
    pub(crate) fn from_entropy() -> Self {
        use std::io::Read as _;
        let mut seed = [0u8; 8];
        let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut seed));
        let seed = if read.is_ok() {
            u64::from_le_bytes(seed)
        } else {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        };
        Self::new(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        let i = usize::try_from(self.next_u64() % words.len() as u64).unwrap_or(0);
        words.get(i).copied().unwrap_or("x")
    }
}

const NAMES: &[&str] = &[
    "ada", "grace", "linus", "barbara", "ken", "dennis", "margaret", "edsger", "donald", "frances",
    "john", "radia", "tim", "vint", "leslie", "shafi",
];
const KINDS: &[&str] = &[
    "order.created",
    "order.paid",
    "order.shipped",
    "cart.updated",
    "user.login",
    "user.logout",
    "stock.low",
    "price.changed",
];
const WORDS: &[&str] = &[
    "the",
    "parcel",
    "left",
    "warehouse",
    "north",
    "at",
    "dawn",
    "and",
    "should",
    "arrive",
    "before",
    "noon",
    "customer",
    "asked",
    "for",
    "a",
    "gift",
    "wrap",
    "with",
    "blue",
    "ribbon",
    "please",
    "call",
    "ahead",
    "door",
    "code",
    "is",
    "on",
    "file",
    "fragile",
    "items",
    "inside",
];

/// One JSON record of exactly `size` bytes whose first field is `"seq":"<16 zeros>"`.
fn json_record(size: usize, variant: u64) -> Result<String, String> {
    let mut rng = XorShift::new(variant.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x1234);
    let mut head = format!(
        "{{\"seq\":\"{}\",\"id\":\"ev-{:08x}\",\"kind\":\"{}\",\"user\":{{\"name\":\"{}\",\"id\":{}}},\"items\":[",
        "0".repeat(STAMP_LEN),
        rng.next_u64() as u32,
        rng.pick(KINDS),
        rng.pick(NAMES),
        rng.next_u64() % 100_000,
    );
    let items = 1 + rng.next_u64() % 4;
    for i in 0..items {
        if i > 0 {
            head.push(',');
        }
        head.push_str(&format!(
            "{{\"sku\":\"SKU-{:05}\",\"qty\":{},\"price\":{}.{:02}}}",
            rng.next_u64() % 100_000,
            1 + rng.next_u64() % 9,
            rng.next_u64() % 500,
            rng.next_u64() % 100,
        ));
    }
    head.push_str("],\"note\":\"");
    let tail = "\"}";
    let room = size
        .checked_sub(head.len() + tail.len())
        .ok_or_else(|| format!("a JSON record needs more than {size} bytes"))?;
    let mut note = String::with_capacity(room + 16);
    while note.len() < room {
        if !note.is_empty() {
            note.push(' ');
        }
        note.push_str(rng.pick(WORDS));
    }
    note.truncate(room);
    Ok(format!("{head}{note}{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip() {
        for seq in [0, 1, 0xabc, u64::MAX, 1 << 40] {
            assert_eq!(read_stamp(&stamp(seq)), Some(seq));
        }
        assert_eq!(&stamp(255), b"00000000000000ff");
        assert_eq!(read_stamp(b"00000000000000fF"), None);
        assert_eq!(read_stamp(b"0000"), None);
    }

    #[test]
    fn binary_payloads_check_size_order_and_content() {
        let p = Payloads::binary(128).unwrap();
        let mut buf = Vec::new();
        p.write(7, &mut buf);
        assert_eq!(buf.len(), 128);
        assert_eq!(p.check(7, &buf), Ok(()));
        assert_eq!(
            p.check(8, &buf),
            Err(Mismatch::Order {
                got: Some(7),
                want: 8
            })
        );
        assert_eq!(
            p.check(7, &buf[..127]),
            Err(Mismatch::Size {
                got: 127,
                want: 128
            })
        );
        buf[100] ^= 1;
        assert_eq!(
            p.check(7, &buf),
            Err(Mismatch::Content {
                seq: 7,
                offset: 100
            })
        );
        let short = Payloads::binary(16).unwrap();
        let mut buf = Vec::new();
        short.write(3, &mut buf);
        assert_eq!(buf, b"0000000000000003");
        assert!(Payloads::binary(15).is_err());
    }

    #[test]
    fn json_payloads_are_valid_json_of_the_exact_size() {
        let p = Payloads::json(1024, 8).unwrap();
        let mut seen = std::collections::HashSet::new();
        for seq in 0..20 {
            let mut buf = Vec::new();
            p.write(seq, &mut buf);
            assert_eq!(buf.len(), 1024);
            let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
            assert_eq!(v["seq"], format!("{seq:016x}"));
            assert_eq!(p.check(seq, &buf), Ok(()));
            seen.insert(buf[STAMP_LEN + 8..].to_vec());
        }
        // Variants differ from each other (compression sees different records).
        assert_eq!(seen.len(), 8);
        let mut buf = Vec::new();
        p.write(1, &mut buf);
        buf[500] = b'#';
        assert!(matches!(p.check(1, &buf), Err(Mismatch::Content { .. })));
        assert!(Payloads::json(100, 1).is_err());
    }
}
