//! The records that keep MQTT state across restarts: one record per retained message and one
//! per kept session, each a self-contained byte string the caller writes to disk and gives back
//! to [`crate::Broker::restore_mqtt`] at start-up.
//!
//! nats-server keeps this state in JetStream streams (`$MQTT_rmsgs`, `$MQTT_sess`); natsws has
//! no JetStream, so the broker produces the records ([`crate::Broker::poll_mqtt_store`]) and the
//! caller decides where they live. The broker never touches a file.
//!
//! A record is
//! ```text
//! "NWMQ" | version (1) | kind (1: retained, 2: session) | body length (u32) | body | CRC-32
//! ```
//! integers big-endian, the CRC-32 (IEEE) over everything before it. Strings and byte strings
//! in the body are a `u32` length and the bytes. A retained body is account, topic, payload;
//! a session body is account, client id, next packet id (`u16`), the filters (a `u32` count,
//! then filter and granted QoS each), the unacknowledged QoS 1 deliveries (a `u32` count,
//! then packet id, topic and payload each) and, from version 2, the QoS 1 deliveries not yet
//! sent, in arrival order (a `u32` count, then topic and payload each). Version 1 records
//! (without the last list) are still read.
//!
//! The decoder trusts nothing: every length is checked against the bytes left before anything
//! is allocated, so a record never decodes into more memory than its own size, and a truncated,
//! flipped or foreign file is an error, never a panic.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use mqtt_codec::QoS;

const MAGIC: &[u8; 4] = b"NWMQ";
const VERSION: u8 = 2;
/// Records without the held deliveries.
const VERSION_1: u8 = 1;
const KIND_RETAINED: u8 = 1;
const KIND_SESSION: u8 = 2;
/// Magic, version, kind and body length.
const HEAD_LEN: usize = 4 + 1 + 1 + 4;

/// Which state a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StoreKind {
    /// A retained message.
    Retained,
    /// A kept `clean_session: false` session.
    Session,
}

/// One change to persist: write `record` under `key` (replacing what was there), or remove
/// the record of `key` when `record` is `None`. Writes for the same key must be applied in the
/// order the broker gave them; writes for different keys are independent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreWrite {
    /// Retained message or session.
    pub kind: StoreKind,
    /// Identifies the state within its kind: the account name, a NUL byte, then the retained
    /// message's NATS subject or the session's client id. Any bytes; hash it for a file name.
    pub key: Vec<u8>,
    /// The record, or `None` to remove it.
    pub record: Option<Vec<u8>>,
}

/// Why a record was not restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The record does not start with the natsws MQTT store magic.
    BadMagic,
    /// A record version this build does not read.
    UnsupportedVersion(u8),
    /// A record kind this build does not know.
    UnknownKind(u8),
    /// The record ends before its declared length.
    Truncated,
    /// Bytes follow the record.
    TrailingBytes,
    /// The CRC-32 does not match: the record was damaged.
    Checksum,
    /// A field holds a value no record is written with.
    Invalid(&'static str),
    /// The record names an account the configuration no longer has.
    UnknownAccount(String),
    /// The in-memory bound is reached (the same bound live state has).
    Full(&'static str),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic => f.write_str("not an MQTT store record (bad magic)"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported record version {v}"),
            Self::UnknownKind(k) => write!(f, "unknown record kind {k}"),
            Self::Truncated => f.write_str("record truncated"),
            Self::TrailingBytes => f.write_str("bytes after the record"),
            Self::Checksum => f.write_str("checksum mismatch"),
            Self::Invalid(what) => write!(f, "invalid {what}"),
            Self::UnknownAccount(a) => write!(f, "account {a:?} is not configured"),
            Self::Full(what) => write!(f, "not restored: {what}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// A decoded retained record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RetainedRecord {
    pub(crate) account: String,
    pub(crate) topic: String,
    pub(crate) payload: Bytes,
}

/// A decoded session record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionRecord {
    pub(crate) account: String,
    pub(crate) client_id: String,
    pub(crate) next_packet_id: u16,
    pub(crate) filters: BTreeMap<String, QoS>,
    /// Packet id, topic and payload of each unacknowledged delivery, in sending order.
    pub(crate) inflight: Vec<(u16, String, Bytes)>,
    /// Topic and payload of each delivery not yet sent, in arrival order.
    pub(crate) held: Vec<(String, Bytes)>,
}

/// A decoded record of either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    Retained(RetainedRecord),
    Session(SessionRecord),
}

/// The key of a record: account, NUL, name.
pub(crate) fn key(account: &str, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(account.len() + 1 + name.len());
    key.extend_from_slice(account.as_bytes());
    key.push(0);
    key.extend_from_slice(name.as_bytes());
    key
}

/// CRC-32 (IEEE 802.3, reflected, as zlib computes it), bitwise: records are written once per
/// change, not per message, so a table buys nothing.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

struct Writer(Vec<u8>);

impl Writer {
    fn new(kind: u8) -> Self {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(kind);
        out.extend_from_slice(&[0; 4]);
        Self(out)
    }

    fn bytes(&mut self, b: &[u8]) {
        // Fields are bounded by the broker's limits (payloads by max_payload, strings by the
        // MQTT 64 KiB string limit), far below u32::MAX.
        let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(b);
    }

    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn count(&mut self, n: usize) {
        self.0
            .extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
    }

    fn finish(mut self) -> Vec<u8> {
        let body = u32::try_from(self.0.len() - HEAD_LEN).unwrap_or(u32::MAX);
        if let Some(slot) = self.0.get_mut(6..HEAD_LEN) {
            slot.copy_from_slice(&body.to_be_bytes());
        }
        let crc = crc32(&self.0);
        self.0.extend_from_slice(&crc.to_be_bytes());
        self.0
    }
}

/// The record of a retained message.
pub(crate) fn encode_retained(account: &str, topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut w = Writer::new(KIND_RETAINED);
    w.bytes(account.as_bytes());
    w.bytes(topic.as_bytes());
    w.bytes(payload);
    w.finish()
}

/// The record of a kept session.
pub(crate) fn encode_session(
    account: &str,
    client_id: &str,
    session: &crate::mqtt::SavedSession,
) -> Vec<u8> {
    let mut w = Writer::new(KIND_SESSION);
    w.bytes(account.as_bytes());
    w.bytes(client_id.as_bytes());
    w.u16(session.next_packet_id);
    w.count(session.filters.len());
    for (filter, qos) in &session.filters {
        w.bytes(filter.as_bytes());
        w.0.push(qos.as_u8());
    }
    w.count(session.inflight.len());
    for (packet_id, f) in &session.inflight {
        w.u16(*packet_id);
        w.bytes(f.topic.as_bytes());
        w.bytes(&f.payload);
    }
    w.count(session.held.len());
    for held in session.held.iter() {
        w.bytes(held.topic.as_bytes());
        w.bytes(&held.payload);
    }
    w.finish()
}

/// A bounds-checked cursor over a record body.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.0.len() < n {
            return Err(StoreError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        self.take(N)?.try_into().map_err(|_| StoreError::Truncated)
    }

    fn u16(&mut self) -> Result<u16, StoreError> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        self.array().map(u32::from_be_bytes)
    }

    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let len = usize::try_from(self.u32()?).map_err(|_| StoreError::Truncated)?;
        self.take(len)
    }

    fn string(&mut self, what: &'static str) -> Result<String, StoreError> {
        std::str::from_utf8(self.bytes()?)
            .map(str::to_owned)
            .map_err(|_| StoreError::Invalid(what))
    }

    /// A count of entries each at least `min_entry` bytes long: one that the bytes left cannot
    /// hold is refused before anything is allocated for it.
    fn count(&mut self, min_entry: usize) -> Result<usize, StoreError> {
        let n = usize::try_from(self.u32()?).map_err(|_| StoreError::Truncated)?;
        if n.saturating_mul(min_entry) > self.0.len() {
            return Err(StoreError::Truncated);
        }
        Ok(n)
    }
}

/// Decodes one record (the whole of `data`).
pub(crate) fn decode(data: &[u8]) -> Result<Record, StoreError> {
    let mut r = Reader(data);
    if r.take(4).map_err(|_| StoreError::BadMagic)? != MAGIC {
        return Err(StoreError::BadMagic);
    }
    let version = r.u8()?;
    if version != VERSION && version != VERSION_1 {
        return Err(StoreError::UnsupportedVersion(version));
    }
    let kind = r.u8()?;
    let body_len = usize::try_from(r.u32()?).map_err(|_| StoreError::Truncated)?;
    let body = r.take(body_len)?;
    let crc = r.u32()?;
    if !r.0.is_empty() {
        return Err(StoreError::TrailingBytes);
    }
    let covered = data
        .get(..HEAD_LEN + body_len)
        .ok_or(StoreError::Truncated)?;
    if crc32(covered) != crc {
        return Err(StoreError::Checksum);
    }
    let mut b = Reader(body);
    let record = match kind {
        KIND_RETAINED => Record::Retained(decode_retained(&mut b)?),
        KIND_SESSION => Record::Session(decode_session(&mut b, version)?),
        other => return Err(StoreError::UnknownKind(other)),
    };
    if !b.0.is_empty() {
        return Err(StoreError::TrailingBytes);
    }
    Ok(record)
}

fn decode_retained(b: &mut Reader<'_>) -> Result<RetainedRecord, StoreError> {
    let account = b.string("account name")?;
    let topic = b.string("topic")?;
    let payload = Bytes::copy_from_slice(b.bytes()?);
    if topic.is_empty() || mqtt_codec::nats::topic_to_subject(&topic).is_err() {
        return Err(StoreError::Invalid("topic"));
    }
    if payload.is_empty() {
        // An empty retained publish clears its topic; it is never stored.
        return Err(StoreError::Invalid("empty retained payload"));
    }
    Ok(RetainedRecord {
        account,
        topic,
        payload,
    })
}

fn decode_session(b: &mut Reader<'_>, version: u8) -> Result<SessionRecord, StoreError> {
    let account = b.string("account name")?;
    let client_id = b.string("client id")?;
    if client_id.is_empty() {
        return Err(StoreError::Invalid("client id"));
    }
    let next_packet_id = b.u16()?;
    // A filter is at least its length and its QoS byte.
    let n = b.count(4 + 1)?;
    let mut filters = BTreeMap::new();
    for _ in 0..n {
        let filter = b.string("filter")?;
        let qos = match b.u8()? {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => return Err(StoreError::Invalid("granted QoS")),
        };
        if filter.is_empty() || filters.insert(filter, qos).is_some() {
            return Err(StoreError::Invalid("filter"));
        }
    }
    // A delivery is at least its packet id and two lengths.
    let n = b.count(2 + 4 + 4)?;
    let mut inflight: Vec<(u16, String, Bytes)> = Vec::with_capacity(n);
    let mut seen = std::collections::HashSet::with_capacity(n);
    for _ in 0..n {
        let packet_id = b.u16()?;
        let topic = b.string("topic")?;
        let payload = Bytes::copy_from_slice(b.bytes()?);
        if packet_id == 0 || !seen.insert(packet_id) {
            return Err(StoreError::Invalid("packet identifier"));
        }
        if topic.is_empty() {
            return Err(StoreError::Invalid("topic"));
        }
        inflight.push((packet_id, topic, payload));
    }
    let mut held = Vec::new();
    if version != VERSION_1 {
        // A held delivery is at least two lengths.
        let n = b.count(4 + 4)?;
        held.reserve_exact(n);
        for _ in 0..n {
            let topic = b.string("topic")?;
            let payload = Bytes::copy_from_slice(b.bytes()?);
            if topic.is_empty() {
                return Err(StoreError::Invalid("topic"));
            }
            held.push((topic, payload));
        }
    }
    Ok(SessionRecord {
        account,
        client_id,
        next_packet_id,
        filters,
        inflight,
        held,
    })
}

#[cfg(test)]
mod tests;
