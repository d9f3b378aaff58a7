//! Encoding of server-to-client lines (`MSG`, `HMSG`) and Go-compatible quoting for error texts.

use bytes::Bytes;

use crate::outq::OutQueue;

/// Number of decimal digits of `n`.
fn digits(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// Writes `n` in decimal into a stack buffer and returns the used tail.
fn itoa(n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut pos = buf.len();
    let mut v = n;
    loop {
        pos -= 1;
        if let Some(slot) = buf.get_mut(pos) {
            *slot = b'0' + u8::try_from(v % 10).unwrap_or(0);
        }
        v /= 10;
        if v == 0 || pos == 0 {
            break;
        }
    }
    buf.get(pos..).unwrap_or_default()
}

/// Length of the control line `write_msg` produces, CRLF included.
#[must_use]
pub fn msg_line_len(
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    header_len: Option<usize>,
    total: usize,
) -> usize {
    let mut n = subject.len() + 1 + sid.len() + 1 + digits(total) + 2;
    if let Some(r) = reply {
        n += r.len() + 1;
    }
    match header_len {
        Some(h) => n + 5 + digits(h) + 1,
        None => n + 4,
    }
}

/// Appends `MSG <subject> <sid> [<reply>] <size>\r\n<payload>\r\n`, or the `HMSG` form when
/// `header_len` is given, to `out`. Large payloads are shared, small ones copied.
pub fn write_msg(
    out: &mut OutQueue,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    header_len: Option<usize>,
    message: &Bytes,
) {
    let mut num = [0u8; 20];
    out.push_slice(if header_len.is_some() {
        b"HMSG "
    } else {
        b"MSG "
    });
    out.push_slice(subject);
    out.push_slice(b" ");
    out.push_slice(sid);
    out.push_slice(b" ");
    if let Some(r) = reply {
        out.push_slice(r);
        out.push_slice(b" ");
    }
    if let Some(h) = header_len {
        out.push_slice(itoa(h, &mut num));
        out.push_slice(b" ");
    }
    out.push_slice(itoa(message.len(), &mut num));
    out.push_slice(b"\r\n");
    out.push_bytes(message);
    out.push_slice(b"\r\n");
}

/// Appends one `MSG` (never `HMSG`: this is the header-stripped delivery) from borrowed
/// parts. When `shared` is given (a large payload, equal to `body`) it is queued by reference
/// instead of copied.
pub(crate) fn write_msg_parts(
    out: &mut OutQueue,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    body: &[u8],
    shared: Option<&Bytes>,
) {
    let mut num = [0u8; 20];
    let size = itoa(body.len(), &mut num);
    let (reply, reply_sep): (&[u8], &[u8]) = match reply {
        Some(r) => (r, b" "),
        None => (b"", b""),
    };
    out.push_parts(&[
        b"MSG ", subject, b" ", sid, b" ", reply, reply_sep, size, b"\r\n",
    ]);
    match shared {
        Some(message) => out.push_bytes(message),
        None => out.push_slice(body),
    }
    out.push_slice(b"\r\n");
}

/// One published message's `MSG`/`HMSG` text, rendered once for all of its deliveries: every
/// subscriber gets `head`, its own sid, then `tail` (and, for a shared payload, the payload and
/// a CRLF after it).
#[derive(Debug, Default)]
pub(crate) struct Rendered {
    /// `head` followed by `tail`; its allocation is reused from message to message.
    buf: Vec<u8>,
    /// `MSG <subject> ` (or `HMSG`).
    head_len: usize,
    /// Whether `tail` ends with the payload and its CRLF (small payloads), or the payload is
    /// queued separately by reference.
    inline_payload: bool,
    /// Whole deliveries may be kept ([`Rendered::keep_whole`]): the message goes to more
    /// than one subscriber.
    keep_whole: bool,
    /// `head`, a sid, then `tail`, once built for this message: the deliveries with that sid
    /// (most of a broadcast's: browser clients number their subscriptions from 1) are queued
    /// with one copy instead of three.
    whole: Vec<u8>,
    /// The length of the sid in `whole`; `None` until `whole` is built for this message.
    whole_sid_len: Option<usize>,
    /// The message's deliveries add up to at least [`SHARE_WHOLE_BYTES`]: `whole` is built
    /// once as `shared` and each delivery with its sid queues a reference to it.
    share_whole: bool,
    /// `whole` as one shared buffer (when `share_whole`).
    shared: Option<Bytes>,
}

/// When one message's deliveries add up to this many bytes, the whole delivery is queued by
/// reference rather than copied into each queue. A broadcast to thousands then holds one copy
/// of each message instead of one per subscriber: when subscribers fall behind, first touching
/// the memory of those copies (page faults) dominated the cost of a delivery at fan-out
/// 1×2000 (BENCHMARKS.md). Below it, copying into a queue's hot tail is cheaper than a
/// reference count and a chunk per delivery (fan-out 1×100 measured 1.26× the CPU per
/// message shared).
pub(crate) const SHARE_WHOLE_BYTES: usize = 128 * 1024;

impl Rendered {
    /// Renders `subject`, `reply`, `header_len` and the payload size; the payload itself is
    /// appended when it is not `shared` (the caller passes the shared `Bytes` to
    /// [`Rendered::write`]).
    pub(crate) fn render(
        &mut self,
        subject: &[u8],
        reply: Option<&[u8]>,
        header_len: Option<usize>,
        message: &[u8],
        shared: bool,
    ) {
        let mut num = [0u8; 20];
        self.buf.clear();
        self.buf.extend_from_slice(if header_len.is_some() {
            b"HMSG "
        } else {
            b"MSG "
        });
        self.buf.extend_from_slice(subject);
        self.buf.push(b' ');
        self.head_len = self.buf.len();
        self.buf.push(b' ');
        if let Some(r) = reply {
            self.buf.extend_from_slice(r);
            self.buf.push(b' ');
        }
        if let Some(h) = header_len {
            self.buf.extend_from_slice(itoa(h, &mut num));
            self.buf.push(b' ');
        }
        self.buf.extend_from_slice(itoa(message.len(), &mut num));
        self.buf.extend_from_slice(b"\r\n");
        self.inline_payload = !shared;
        if !shared {
            self.buf.extend_from_slice(message);
            self.buf.extend_from_slice(b"\r\n");
        }
        self.keep_whole = false;
        self.share_whole = false;
        self.whole_sid_len = None;
        self.shared = None;
    }

    /// Lets [`Rendered::write`] keep the first delivery whole, for the deliveries after it
    /// with the same sid: worth it when the message has more than one subscriber, and shared
    /// by reference when the deliveries add up to [`SHARE_WHOLE_BYTES`].
    pub(crate) fn keep_whole(&mut self, fanout: usize) {
        self.keep_whole = fanout > 1;
        self.share_whole = fanout.saturating_mul(self.buf.len()) >= SHARE_WHOLE_BYTES;
    }

    /// Bytes one delivery with `sid` adds to a queue.
    pub(crate) fn delivery_len(&self, sid: &[u8], message_len: usize) -> usize {
        let payload = if self.inline_payload {
            0
        } else {
            message_len + 2
        };
        self.buf.len() + sid.len() + payload
    }

    /// Appends one delivery for `sid`; `shared` is the payload when it was not rendered inline.
    pub(crate) fn write(&mut self, out: &mut OutQueue, sid: &[u8], shared: Option<&Bytes>) {
        let (head, tail) = self.buf.split_at_checked(self.head_len).unwrap_or_default();
        match self.whole_sid_len {
            Some(n)
                if self
                    .shared
                    .as_deref()
                    .unwrap_or(&self.whole)
                    .get(self.head_len..self.head_len + n)
                    // Sids are a few bytes: compared in line, not through memcmp.
                    .is_some_and(|kept| kept.len() == sid.len() && kept.iter().eq(sid)) =>
            {
                match &self.shared {
                    Some(whole) => out.push_shared(whole),
                    None => out.push_slice(&self.whole),
                }
            }
            None if self.keep_whole => {
                self.whole_sid_len = Some(sid.len());
                if self.share_whole {
                    let whole = Bytes::from([head, sid, tail].concat());
                    out.push_shared(&whole);
                    self.shared = Some(whole);
                } else {
                    self.whole.clear();
                    self.whole.extend_from_slice(head);
                    self.whole.extend_from_slice(sid);
                    self.whole.extend_from_slice(tail);
                    out.push_slice(&self.whole);
                }
            }
            _ => out.push_parts(&[head, sid, tail]),
        }
        if !self.inline_payload
            && let Some(message) = shared
        {
            out.push_bytes(message);
            out.push_slice(b"\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(
        subject: &str,
        sid: &str,
        reply: Option<&str>,
        hdr: Option<usize>,
        msg: &[u8],
    ) -> Vec<u8> {
        let mut q = OutQueue::new();
        let message = Bytes::copy_from_slice(msg);
        write_msg(
            &mut q,
            subject.as_bytes(),
            sid.as_bytes(),
            reply.map(str::as_bytes),
            hdr,
            &message,
        );
        let out: Vec<u8> = q.chunks().flat_map(|c| c.iter().copied()).collect();
        let line_end = out.iter().position(|b| *b == b'\n').unwrap() + 1;
        assert_eq!(
            line_end,
            msg_line_len(
                subject.as_bytes(),
                sid.as_bytes(),
                reply.map(str::as_bytes),
                hdr,
                msg.len()
            )
        );
        out
    }

    #[test]
    fn msg_lines() {
        assert_eq!(
            render("foo", "1", None, None, b"hi"),
            b"MSG foo 1 2\r\nhi\r\n"
        );
        assert_eq!(
            render("foo", "22", Some("bar"), None, b""),
            b"MSG foo 22 bar 0\r\n\r\n"
        );
        assert_eq!(
            render("foo", "1", None, Some(18), b"NATS/1.0\r\nA: B\r\n\r\nhi"),
            b"HMSG foo 1 18 20\r\nNATS/1.0\r\nA: B\r\n\r\nhi\r\n"
        );
        assert_eq!(
            render("a", "1", Some("r"), Some(0), &[b'x'; 1234]).len(),
            "HMSG a 1 r 0 1234\r\n".len() + 1234 + 2
        );
    }

    /// A broadcast's deliveries with one sid share one rendered copy of the message.
    #[test]
    fn a_broadcast_queues_one_shared_copy() {
        let mut rendered = Rendered::default();
        rendered.render(b"all", None, None, b"hello", false);
        rendered.keep_whole(SHARE_WHOLE_BYTES);
        let mut queues: Vec<OutQueue> = (0..3).map(|_| OutQueue::new()).collect();
        for q in &mut queues {
            rendered.write(q, b"1", None);
        }
        let fronts: Vec<*const u8> = queues.iter().map(|q| q.front().as_ptr()).collect();
        assert!(fronts.windows(2).all(|w| w[0] == w[1]), "{fronts:?}");
        assert_eq!(queues[2].front(), b"MSG all 1 5\r\nhello\r\n");
        // A different sid gets its own rendering.
        let mut other = OutQueue::new();
        rendered.write(&mut other, b"2", None);
        assert_eq!(
            other.chunks().flatten().copied().collect::<Vec<u8>>(),
            b"MSG all 2 5\r\nhello\r\n"
        );
    }

    /// A delivery kept whole for its sid is used only for that sid: the queue gets exactly
    /// what rendering every delivery in parts gives, whatever the order of the sids.
    #[test]
    fn whole_deliveries_match_deliveries_in_parts() {
        let big = vec![b'b'; 2 * crate::outq::SHARE_THRESHOLD_BYTES];
        for (message, shared) in [(&b"hello"[..], false), (&big[..], true)] {
            let payload = Bytes::copy_from_slice(message);
            let shared_payload = shared.then_some(&payload);
            for reply in [None, Some(&b"_INBOX.x"[..])] {
                let sids: [&[u8]; 7] = [b"1", b"1", b"22", b"1", b"2", b"22", b"1"];
                let mut parts = OutQueue::new();
                let mut rendered = Rendered::default();
                rendered.render(b"fan.out", reply, None, message, shared);
                for sid in sids {
                    rendered.write(&mut parts, sid, shared_payload);
                }
                let flat = |q: &OutQueue| q.chunks().flatten().copied().collect::<Vec<u8>>();
                // Copied whole, then (a broadcast's worth of deliveries) shared whole.
                for fanout in [2, SHARE_WHOLE_BYTES] {
                    let mut whole = OutQueue::new();
                    rendered.render(b"fan.out", reply, None, message, shared);
                    rendered.keep_whole(fanout);
                    for sid in sids {
                        rendered.write(&mut whole, sid, shared_payload);
                    }
                    assert_eq!(flat(&whole), flat(&parts), "fan-out {fanout}");
                }
                let text = String::from_utf8_lossy(&flat(&parts)).into_owned();
                for sid in ["1", "22", "2"] {
                    let line = match reply {
                        Some(_) => format!("MSG fan.out {sid} _INBOX.x {}\r\n", message.len()),
                        None => format!("MSG fan.out {sid} {}\r\n", message.len()),
                    };
                    assert!(text.contains(&line), "{line:?}");
                }
                assert_eq!(text.matches("MSG fan.out 1 ").count(), 4);
            }
        }
    }

    #[test]
    fn quoting() {
        for (input, expect) in [
            (&b"foo"[..], "\"foo\""),
            (b"a\"b", "\"a\\\"b\""),
            (b"a\\b", "\"a\\\\b\""),
            (b"\x01\n", "\"\\x01\\n\""),
            (b"\xff", "\"\\xff\""),
            ("ü.>".as_bytes(), "\"ü.>\""),
        ] {
            assert_eq!(crate::auth::go_quote(input), expect);
        }
    }
}
