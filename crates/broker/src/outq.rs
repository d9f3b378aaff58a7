//! The per-client outbound queue (docs/style.md §4, hyper's Flatten/Queue write strategies).
//!
//! Small writes (protocol lines, small payloads) are copied into one flat `BytesMut` tail.
//! Large payloads are queued as shared `Bytes` so that a fan-out to many subscribers costs a
//! reference count per subscriber instead of a copy. Order is preserved: the tail is frozen into
//! the chunk queue before a large chunk is pushed behind it.
//!
//! A shared payload keeps its whole parent allocation (the publisher's read buffer, at most
//! 64 KiB in the binary, or the buffer a large message was assembled in) alive until written
//! (bytes#679). `max_pending` counts queued bytes, so a slow consumer that receives one 1 KiB
//! message out of each 64 KiB read can pin up to 64 times its limit; this is the price of not
//! copying payloads of 1 KiB and more once per subscriber.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

/// Payloads of at least this many bytes are shared rather than copied: a small shared `Bytes`
/// would keep its whole parent allocation alive (tokio-rs/bytes#679).
pub const SHARE_THRESHOLD_BYTES: usize = 1024;

/// The tail grows up to this size; beyond it, it is frozen into a chunk and a new tail begins,
/// so queued bytes are never moved again by a growing reallocation.
pub const TAIL_CHUNK_BYTES: usize = 64 * 1024;

/// The smallest tail begun when the one before it is full ([`OutQueue::reserve`]).
pub const MIN_GROWN_TAIL_BYTES: usize = 1024;

/// A quiet connection's empty queue keeps a tail allocation up to this size for reuse.
pub const IDLE_KEEP_BYTES: usize = 8 * 1024;

/// A queue that emptied after a flush keeps a tail allocation up to this size until it has
/// been quiet for a while ([`OutQueue::release_if_quiet`]): a subscriber receiving a steady
/// stream would otherwise regrow (realloc, fresh pages) the same buffer on every flush.
pub const HOT_KEEP_BYTES: usize = 256 * 1024;

/// Bytes queued for one client, in order.
#[derive(Debug, Default)]
pub struct OutQueue {
    /// Frozen chunks that come before `tail`.
    chunks: VecDeque<Bytes>,
    /// Small writes after the last chunk.
    tail: BytesMut,
    /// Total queued bytes (chunks plus tail).
    len: usize,
    /// Bytes consumed with [`OutQueue::advance`] since creation.
    consumed: u64,
    /// Largest tail capacity seen since the tail was last released (its allocation size; the
    /// capacity `BytesMut` reports shrinks as the front is consumed).
    tail_alloc: usize,
    /// Bytes queued since the last [`OutQueue::release_if_quiet`] (saturating).
    pushed: usize,
}

impl OutQueue {
    /// An empty queue; it allocates on first use.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Queued bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is queued.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Total bytes consumed by [`OutQueue::advance`] so far (monotonic; progress detection).
    #[must_use]
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Copies `data` to the end of the queue.
    pub fn push_slice(&mut self, data: &[u8]) {
        self.reserve(data.len());
        self.pushed = self.pushed.saturating_add(data.len());
        self.tail.extend_from_slice(data);
        self.len += data.len();
    }

    /// Makes room for `additional` more bytes of [`OutQueue::push_slice`] in one allocation.
    ///
    /// Queued bytes are never moved: a tail too small for more is frozen into a chunk as it
    /// is and a new tail begins, twice as large (at least [`MIN_GROWN_TAIL_BYTES`], at most
    /// [`TAIL_CHUNK_BYTES`] unless `additional` needs more). Growing the tail in place would
    /// copy everything queued on each doubling: a subscriber of a fan-out whose queue grows
    /// from nothing to 64 KiB in one tick would copy each byte twice over.
    pub fn reserve(&mut self, additional: usize) {
        if self.tail.capacity() - self.tail.len() >= additional {
            return;
        }
        if self.tail.is_empty() {
            // Nothing to move: reuses the allocation when it is large enough.
            self.tail.reserve(additional);
        } else {
            let grown = self
                .tail
                .capacity()
                .saturating_mul(2)
                .clamp(MIN_GROWN_TAIL_BYTES, TAIL_CHUNK_BYTES)
                .max(additional);
            self.chunks.push_back(self.tail.split().freeze());
            self.tail = BytesMut::with_capacity(grown);
        }
        self.tail_alloc = self.tail_alloc.max(self.tail.capacity());
    }

    /// Copies the concatenation of `parts` to the end of the queue, reserving once.
    pub(crate) fn push_parts(&mut self, parts: &[&[u8]]) {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        self.reserve(total);
        self.pushed = self.pushed.saturating_add(total);
        for part in parts {
            self.tail.extend_from_slice(part);
        }
        self.len += total;
    }

    /// Queues `data`: copied when small, shared when at least [`SHARE_THRESHOLD_BYTES`].
    pub fn push_bytes(&mut self, data: &Bytes) {
        if data.len() < SHARE_THRESHOLD_BYTES {
            self.push_slice(data);
            return;
        }
        self.push_shared(data);
    }

    /// Queues `data` by reference whatever its size: for buffers made to be shared by many
    /// queues (one rendered message of a broadcast), which pin no larger parent allocation.
    pub fn push_shared(&mut self, data: &Bytes) {
        if data.is_empty() {
            return;
        }
        if !self.tail.is_empty() {
            self.chunks.push_back(self.tail.split().freeze());
        }
        self.pushed = self.pushed.saturating_add(data.len());
        self.len += data.len();
        self.chunks.push_back(data.clone());
    }

    /// The bytes at the front of the queue (the first chunk); empty when nothing is queued.
    #[must_use]
    pub fn front(&self) -> &[u8] {
        match self.chunks.front() {
            Some(chunk) => chunk,
            None => &self.tail,
        }
    }

    /// Iterates over the queued bytes in order, chunk by chunk.
    pub fn chunks(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.chunks
            .iter()
            .map(|c| &c[..])
            .chain(std::iter::once(&self.tail[..]))
            .filter(|c| !c.is_empty())
    }

    /// Fills `dst` with slices over the queued bytes, in order, for `write_vectored`.
    /// Returns how many entries were filled.
    pub fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n_filled = 0;
        for (slot, chunk) in dst.iter_mut().zip(self.chunks()) {
            *slot = IoSlice::new(chunk);
            n_filled += 1;
        }
        n_filled
    }

    /// Removes `n` bytes from the front (after a write of `n` bytes). `n` larger than
    /// [`OutQueue::len`] empties the queue.
    pub fn advance(&mut self, n: usize) {
        let mut left = n.min(self.len);
        self.len -= left;
        self.consumed += left as u64;
        while left > 0 {
            if let Some(front) = self.chunks.front_mut() {
                if front.len() <= left {
                    left -= front.len();
                    self.chunks.pop_front();
                } else {
                    front.advance(left);
                    left = 0;
                }
            } else {
                let take = left.min(self.tail.len());
                self.tail.advance(take);
                left -= take;
                if take == 0 {
                    break;
                }
            }
        }
        if self.len == 0 {
            self.tail.clear();
        }
    }

    /// Moves every queued byte into `dst` (for transports that frame at flush time) and
    /// empties the queue.
    pub fn drain_into(&mut self, dst: &mut BytesMut) {
        for chunk in self.chunks() {
            dst.extend_from_slice(chunk);
        }
        let n = self.len;
        self.advance(n);
    }

    /// Moves every queued byte into `dst` as shared chunks, in order, without copying (for
    /// transports that frame or compress at flush time), and empties the queue.
    pub fn drain_chunks(&mut self, dst: &mut Vec<Bytes>) {
        dst.extend(self.chunks.drain(..).filter(|c| !c.is_empty()));
        if !self.tail.is_empty() {
            dst.push(self.tail.split().freeze());
        }
        self.consumed += self.len as u64;
        self.len = 0;
    }

    /// Drops everything queued (used when a connection is torn down without a flush).
    pub fn clear(&mut self) {
        let n = self.len;
        self.advance(n);
    }

    /// When the queue is empty (after a flush), releases a tail allocation larger than
    /// [`HOT_KEEP_BYTES`] and an oversized chunk list. Smaller buffers are kept so steady
    /// traffic does not allocate on every flush; [`OutQueue::release_if_quiet`] gives them back
    /// once the traffic stops.
    pub fn shrink_if_idle(&mut self) {
        self.shrink_to(HOT_KEEP_BYTES);
    }

    /// Call periodically (the broker does, on each keep-alive timer): when at most
    /// [`IDLE_KEEP_BYTES`] were queued since the previous call (keep-alive PINGs and PONGs do
    /// not count as traffic) and the queue is empty, releases a tail allocation larger than
    /// that, so a burst does not keep its memory once the connection is quiet.
    pub fn release_if_quiet(&mut self) {
        if std::mem::take(&mut self.pushed) <= IDLE_KEEP_BYTES {
            self.shrink_to(IDLE_KEEP_BYTES);
        }
    }

    fn shrink_to(&mut self, keep: usize) {
        if !self.is_empty() {
            return;
        }
        if self.tail_alloc > keep {
            self.tail = BytesMut::new();
            self.tail_alloc = 0;
        }
        if self.chunks.capacity() > 64 {
            self.chunks = VecDeque::new();
        }
    }

    /// Frees every allocation when the queue is empty (for connections that went idle).
    pub fn release_if_empty(&mut self) {
        if self.is_empty() {
            self.tail = BytesMut::new();
            self.tail_alloc = 0;
            self.chunks = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue filled from nothing by small pushes never moves a queued byte (no
    /// reallocation copies), and the tails it begins double, so the chunks stay few.
    #[test]
    fn queued_bytes_never_move() {
        let mut q = OutQueue::new();
        let line = b"MSG fan.out 1 128\r\n";
        let mut starts: Vec<(usize, *const u8)> = Vec::new();
        while q.len() < 2 * TAIL_CHUNK_BYTES {
            q.push_parts(&[line, &[b'p'; 130]]);
            // Every byte queued before keeps its address.
            let mut at = 0;
            let mut now = Vec::new();
            for chunk in q.chunks() {
                now.push((at, chunk.as_ptr()));
                at += chunk.len();
            }
            for (offset, ptr) in &starts {
                let (c_at, c_ptr) = now
                    .iter()
                    .rev()
                    .find(|(c_at, _)| c_at <= offset)
                    .copied()
                    .unwrap();
                assert_eq!(
                    c_ptr.wrapping_add(offset - c_at),
                    *ptr,
                    "byte {offset} moved"
                );
            }
            starts = now;
        }
        // 1, 2, 4, ... 64 KiB, then 64 KiB chunks.
        assert!(q.chunks().count() <= 10, "{} chunks", q.chunks().count());
    }

    #[test]
    fn a_growing_tail_is_frozen_into_chunks_not_reallocated() {
        let mut q = OutQueue::new();
        let line = b"MSG some.subject 12345 128\r\n";
        let mut expect = Vec::new();
        q.push_slice(line);
        expect.extend_from_slice(line);
        let mut first_chunk = None;
        while q.len() < 3 * TAIL_CHUNK_BYTES {
            q.push_parts(&[line, b"x"]);
            expect.extend_from_slice(line);
            expect.push(b'x');
            if q.len() > TAIL_CHUNK_BYTES {
                // Once a chunk is full it is frozen: its bytes never move again.
                let front = q.front().as_ptr();
                assert_eq!(*first_chunk.get_or_insert(front), front);
            }
        }
        assert!(q.tail_alloc <= TAIL_CHUNK_BYTES.max(2 * line.len()) * 2);
        let flat: Vec<u8> = q.chunks().flatten().copied().collect();
        assert_eq!(flat, expect);
        // A single push larger than a chunk still arrives whole and in order.
        let big = vec![9u8; 2 * TAIL_CHUNK_BYTES];
        q.push_slice(&big);
        expect.extend_from_slice(&big);
        let flat: Vec<u8> = q.chunks().flatten().copied().collect();
        assert_eq!(flat, expect);
        q.advance(q.len());
        q.shrink_if_idle();
        assert!(q.tail_alloc <= HOT_KEEP_BYTES);
    }

    #[test]
    fn drain_chunks_moves_everything_in_order_without_copying() {
        let mut q = OutQueue::new();
        q.push_slice(b"MSG a 1 1500\r\n");
        let big = Bytes::from(vec![7u8; 1500]);
        q.push_bytes(&big);
        q.push_slice(b"\r\nPONG\r\n");
        q.advance(4);
        let mut out = Vec::new();
        q.drain_chunks(&mut out);
        assert!(q.is_empty());
        assert_eq!(q.consumed(), 14 + 1500 + 8);
        let flat: Vec<u8> = out.iter().flat_map(|c| c.iter().copied()).collect();
        let mut expect = b"a 1 1500\r\n".to_vec();
        expect.extend_from_slice(&big);
        expect.extend_from_slice(b"\r\nPONG\r\n");
        assert_eq!(flat, expect);
        // The large payload is the queued allocation itself.
        assert!(out.iter().any(|c| c.as_ptr() == big.as_ptr()));
        // The queue is usable afterwards.
        q.push_slice(b"x");
        assert_eq!(q.len(), 1);
        assert_eq!(q.front(), b"x");
    }

    fn collect(q: &OutQueue) -> Vec<u8> {
        q.chunks().flat_map(|c| c.iter().copied()).collect()
    }

    #[test]
    fn keeps_order_across_small_and_large() {
        let mut q = OutQueue::new();
        q.push_slice(b"MSG a 1 2000\r\n");
        let big = Bytes::from(vec![b'x'; 2000]);
        q.push_bytes(&big);
        q.push_slice(b"\r\n");
        let mut expect = b"MSG a 1 2000\r\n".to_vec();
        expect.extend_from_slice(&big);
        expect.extend_from_slice(b"\r\n");
        assert_eq!(collect(&q), expect);
        assert_eq!(q.len(), expect.len());
        let mut slices = [IoSlice::new(&[]); 8];
        assert_eq!(q.chunks_vectored(&mut slices), 3);
    }

    #[test]
    fn advance_partial_writes() {
        let mut q = OutQueue::new();
        q.push_slice(b"hello ");
        q.push_bytes(&Bytes::from(vec![b'y'; 1500]));
        q.push_slice(b" bye");
        let whole = collect(&q);
        for step in [1usize, 7, 100, 3000] {
            let mut q2 = OutQueue::new();
            q2.push_slice(b"hello ");
            q2.push_bytes(&Bytes::from(vec![b'y'; 1500]));
            q2.push_slice(b" bye");
            let mut out = Vec::new();
            while !q2.is_empty() {
                let front = q2.front();
                let n = step.min(front.len());
                out.extend_from_slice(&front[..n]);
                q2.advance(n);
            }
            assert_eq!(out, whole, "step {step}");
            assert_eq!(q2.consumed(), whole.len() as u64);
        }
    }

    #[test]
    fn drain_into_empties() {
        let mut q = OutQueue::new();
        q.push_slice(b"PING\r\n");
        let mut dst = BytesMut::new();
        q.drain_into(&mut dst);
        assert_eq!(&dst[..], b"PING\r\n");
        assert!(q.is_empty());
        q.shrink_if_idle();
        assert_eq!(q.front(), b"");
        // Very large bursts are released at once, small buffers kept.
        q.push_slice(&[0u8; 100]);
        q.advance(100);
        q.shrink_if_idle();
        assert!(q.tail_alloc >= 100, "small buffer kept");
        q.push_slice(&vec![0u8; 2 * HOT_KEEP_BYTES]);
        q.advance(2 * HOT_KEEP_BYTES);
        q.shrink_if_idle();
        assert_eq!((q.tail.capacity(), q.tail_alloc), (0, 0));
        // A medium buffer survives the flush while traffic goes on, and is released once a
        // whole period passed without any.
        q.push_slice(&vec![0u8; 3 * IDLE_KEEP_BYTES]);
        q.advance(3 * IDLE_KEEP_BYTES);
        q.shrink_if_idle();
        assert!(q.tail_alloc >= 3 * IDLE_KEEP_BYTES);
        q.release_if_quiet();
        assert!(
            q.tail_alloc >= 3 * IDLE_KEEP_BYTES,
            "traffic in this period"
        );
        q.release_if_quiet();
        assert_eq!((q.tail.capacity(), q.tail_alloc), (0, 0));
        q.push_slice(b"x");
        q.advance(1);
        q.release_if_empty();
        assert_eq!(q.tail.capacity(), 0);
    }
}
