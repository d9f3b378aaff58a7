//! The NATS text protocol parser (nats-server's `server/parser.go`, and the protocol as the NATS
//! docs describe it: <https://docs.nats.io/reference/reference-protocols/nats-protocol>).
//!
//! [`Parser`] is a resumable push parser over the caller's read buffer. It consumes only
//! complete units: operation keywords byte by byte, argument lines once their `\n` has arrived,
//! and payloads once all of their bytes and the trailing CRLF are present. It never scans a
//! byte twice: the search for the end of an argument line resumes where the previous call
//! stopped, so a peer that sends one byte at a time costs linear work.
//!
//! Argument lines and payloads are taken out of the buffer with `split_to(n).freeze()`, so the
//! subject, reply, sid and payload of an [`Op`] are reference-counted slices of the bytes that
//! were read, never copies.

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};

/// Which side of the protocol the parser reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A server reading what a client sends: `CONNECT`, `PUB`, `HPUB`, `SUB`, `UNSUB`, `PING`,
    /// `PONG`, `+OK`, `-ERR` and `INFO`.
    Server,
    /// A client reading what a server sends: `INFO`, `MSG`, `HMSG`, `PING`, `PONG`, `+OK` and
    /// `-ERR`. Used by tests and by the client side of links.
    Client,
    /// Either side of a leaf-node connection (`server/parser.go` for `LEAF`): `CONNECT`,
    /// `INFO`, `LS+`, `LS-`, `LMSG`, `HMSG` (the leaf form, without a sid), `PING`, `PONG`,
    /// `+OK` and `-ERR`.
    Leaf,
}

/// The limits the parser enforces, with nats-server's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParserLimits {
    /// Longest accepted argument part of a control line, in bytes (`max_control_line`).
    pub max_control_line: usize,
    /// Largest accepted `PUB`/`MSG` size or `HPUB`/`HMSG` total size, in bytes (`max_payload`).
    pub max_payload: usize,
    /// Whether `HPUB` is accepted (the client negotiated headers and the server supports them).
    pub headers: bool,
}

impl Default for ParserLimits {
    fn default() -> Self {
        Self {
            max_control_line: crate::config::DEFAULT_MAX_CONTROL_LINE_BYTES,
            max_payload: crate::config::DEFAULT_MAX_PAYLOAD_BYTES,
            headers: false,
        }
    }
}

/// One complete protocol operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `CONNECT <json>`: the argument (the JSON text, unvalidated).
    Connect(Bytes),
    /// `INFO <json>`: the argument (the JSON text, unvalidated).
    Info(Bytes),
    /// `PUB` or `HPUB`, with its payload.
    Pub(Publish),
    /// `SUB <subject> [<queue>] <sid>`.
    Sub {
        /// Subject (not yet validated).
        subject: Bytes,
        /// Queue group name, if any.
        queue: Option<Bytes>,
        /// Subscription id, opaque.
        sid: Bytes,
    },
    /// `UNSUB <sid> [<max>]`. `max` is `None` when absent or unparsable.
    Unsub {
        /// Subscription id.
        sid: Bytes,
        /// Auto-unsubscribe limit.
        max: Option<u64>,
    },
    /// `PING`.
    Ping,
    /// `PONG`.
    Pong,
    /// `+OK`.
    Ok,
    /// `-ERR <text>`: the raw argument (quotes included).
    Err(Bytes),
    /// `MSG` or `HMSG` from a server (client role only).
    Msg(Delivery),
    /// `LS+ <subject> [<queue> <weight>]` (leaf role).
    LeafSub {
        /// Subject (not yet validated).
        subject: Bytes,
        /// Queue group and its weight (the number of members behind the link).
        queue: Option<(Bytes, u32)>,
    },
    /// `LS- <subject> [<queue>]` (leaf role).
    LeafUnsub {
        /// Subject.
        subject: Bytes,
        /// Queue group.
        queue: Option<Bytes>,
    },
    /// `LMSG` or a leaf `HMSG` (leaf role).
    LeafMsg(LeafDelivery),
}

/// A message over a leaf connection: `LMSG <subject> [<reply>] <size>`, `LMSG <subject> +
/// <reply> <queue>... <size>`, `LMSG <subject> | <queue>... <size>`, and the same with `HMSG`
/// and a header length before the total size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafDelivery {
    /// Subject (unvalidated).
    pub subject: Bytes,
    /// Reply subject.
    pub reply: Option<Bytes>,
    /// The queue groups the sender chose this side for, separated by spaces or tabs;
    /// `None` when the line named none.
    pub queues: Option<Bytes>,
    /// Header length for `HMSG`; `None` for `LMSG`.
    pub header_len: Option<usize>,
    /// Headers followed by payload.
    pub message: Bytes,
}

/// A published message: `PUB` (no headers) or `HPUB`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Subject as sent (unvalidated; pedantic checks happen in the session).
    pub subject: Bytes,
    /// Reply subject, never validated.
    pub reply: Option<Bytes>,
    /// Length of the header block at the start of `message`; `None` for `PUB`.
    pub header_len: Option<usize>,
    /// Headers followed by payload (`total_len` bytes for `HPUB`, `size` for `PUB`).
    pub message: Bytes,
}

/// A delivered message (`MSG` / `HMSG`), as read by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Subject.
    pub subject: Bytes,
    /// Subscription id.
    pub sid: Bytes,
    /// Reply subject.
    pub reply: Option<Bytes>,
    /// Header length for `HMSG`; `None` for `MSG`.
    pub header_len: Option<usize>,
    /// Headers followed by payload.
    pub message: Bytes,
}

/// The operation whose argument line was wrong, for [`ProtoError::BadArgs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpName {
    /// `PUB`.
    Pub,
    /// `HPUB`.
    Hpub,
    /// `SUB`.
    Sub,
    /// `UNSUB`.
    Unsub,
    /// `MSG`.
    Msg,
    /// `HMSG`.
    Hmsg,
    /// `LS+`.
    LeafSub,
    /// `LS-`.
    LeafUnsub,
    /// `LMSG`.
    Lmsg,
}

/// A protocol error found while parsing. Each is fatal for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtoError {
    /// Unknown operation, missing separator, empty line, or payload not followed by CRLF.
    UnknownOp,
    /// The argument part of a control line is longer than `max_control_line`.
    MaxControlLine,
    /// A `PUB` size or `HPUB` total size above `max_payload`.
    MaxPayload,
    /// Wrong argument count or a bad size on a control line.
    BadArgs(OpName),
    /// `HPUB` from a connection that did not negotiate headers.
    HeadersNotSupported,
}

impl ProtoError {
    /// The exact text for `-ERR '<text>'`, or `None` when the reference closes silently.
    #[must_use]
    pub fn err_text(&self) -> Option<&'static str> {
        match self {
            Self::UnknownOp => Some("Unknown Protocol Operation"),
            Self::MaxControlLine => Some("maximum control line exceeded"),
            Self::MaxPayload => Some("Maximum Payload Violation"),
            Self::BadArgs(_) | Self::HeadersNotSupported => None,
        }
    }

    /// The close reason the reference records for this error.
    #[must_use]
    pub fn close_reason(&self) -> crate::CloseReason {
        match self {
            Self::UnknownOp | Self::BadArgs(_) | Self::HeadersNotSupported => {
                crate::CloseReason::ProtocolViolation
            }
            Self::MaxControlLine => crate::CloseReason::MaxControlLineExceeded,
            Self::MaxPayload => crate::CloseReason::MaxPayloadExceeded,
        }
    }

    /// Every parser error closes the connection.
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        true
    }
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownOp => f.write_str("unknown protocol operation"),
            Self::MaxControlLine => f.write_str("maximum control line exceeded"),
            Self::MaxPayload => f.write_str("maximum payload exceeded"),
            Self::BadArgs(op) => write!(f, "bad arguments for {op:?}"),
            Self::HeadersNotSupported => f.write_str("HPUB without negotiated headers"),
        }
    }
}

impl std::error::Error for ProtoError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kw {
    Connect,
    Info,
    Pub,
    Hpub,
    Sub,
    Unsub,
    Ping,
    Pong,
    PlusOk,
    MinusErr,
    Msg,
    Hmsg,
    LsPlus,
    LsMinus,
    Lmsg,
}

const SERVER_KEYWORDS: &[(&[u8], Kw)] = &[
    (b"CONNECT", Kw::Connect),
    (b"INFO", Kw::Info),
    (b"PUB", Kw::Pub),
    (b"HPUB", Kw::Hpub),
    (b"SUB", Kw::Sub),
    (b"UNSUB", Kw::Unsub),
    (b"PING", Kw::Ping),
    (b"PONG", Kw::Pong),
    (b"+OK", Kw::PlusOk),
    (b"-ERR", Kw::MinusErr),
];

const CLIENT_KEYWORDS: &[(&[u8], Kw)] = &[
    (b"INFO", Kw::Info),
    (b"MSG", Kw::Msg),
    (b"HMSG", Kw::Hmsg),
    (b"PING", Kw::Ping),
    (b"PONG", Kw::Pong),
    (b"+OK", Kw::PlusOk),
    (b"-ERR", Kw::MinusErr),
];

const LEAF_KEYWORDS: &[(&[u8], Kw)] = &[
    (b"CONNECT", Kw::Connect),
    (b"INFO", Kw::Info),
    (b"LS+", Kw::LsPlus),
    (b"LS-", Kw::LsMinus),
    (b"LMSG", Kw::Lmsg),
    (b"HMSG", Kw::Hmsg),
    (b"PING", Kw::Ping),
    (b"PONG", Kw::Pong),
    (b"+OK", Kw::PlusOk),
    (b"-ERR", Kw::MinusErr),
];

/// Longest keyword (`CONNECT`).
const MAX_KEYWORD_LEN: usize = 7;

#[derive(Debug, Clone)]
enum State {
    /// Matching an operation keyword; `kw[..len]` holds the upper-cased bytes seen so far.
    Keyword {
        kw: [u8; MAX_KEYWORD_LEN],
        len: usize,
    },
    /// After a keyword that requires a space or tab.
    NeedSep(Kw),
    /// Skipping spaces and tabs before the argument.
    SkipWs(Kw),
    /// Reading the argument line; `scanned` bytes at the front of the buffer hold no `\n`.
    Arg { kw: Kw, scanned: usize },
    /// `PING`, `PONG`, `+OK`: ignoring everything up to `\n`.
    SkipLine(Kw),
    /// Waiting for `size` payload bytes plus CRLF.
    Payload { head: PayloadHead, size: usize },
    /// A fatal error was returned; the parser returns it again.
    Failed(ProtoError),
}

#[derive(Debug, Clone)]
struct PayloadHead {
    subject: Bytes,
    reply: Option<Bytes>,
    sid: Option<Bytes>,
    /// The queue list of a leaf message (`Some` marks a leaf message, even when empty).
    leaf_queues: Option<Option<Bytes>>,
    header_len: Option<usize>,
}

/// The resumable parser. One per connection.
#[derive(Debug, Clone)]
pub struct Parser {
    role: Role,
    limits: ParserLimits,
    state: State,
}

const fn keyword_start() -> State {
    State::Keyword {
        kw: [0; MAX_KEYWORD_LEN],
        len: 0,
    }
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Recognises `PUB`, `HPUB`, `SUB` (server role), `MSG`, `HMSG` (client role) or `LMSG`,
/// `HMSG`, `LS+`, `LS-` (leaf role) followed by a space or tab at the front of `src`. Returns how many bytes to consume and the next state.
fn fast_keyword(role: Role, src: &[u8]) -> Option<(usize, State)> {
    let head = src.get(..5)?;
    let mut upper = [0u8; 5];
    for (u, b) in upper.iter_mut().zip(head) {
        *u = b.to_ascii_uppercase();
    }
    let (kw, n) = match (role, &upper) {
        (Role::Server, [b'P', b'U', b'B', sep, _]) if is_ws(*sep) => (Kw::Pub, 4),
        (Role::Server, [b'S', b'U', b'B', sep, _]) if is_ws(*sep) => (Kw::Sub, 4),
        (Role::Server, [b'H', b'P', b'U', b'B', sep]) if is_ws(*sep) => (Kw::Hpub, 5),
        (Role::Client, [b'M', b'S', b'G', sep, _]) if is_ws(*sep) => (Kw::Msg, 4),
        (Role::Client | Role::Leaf, [b'H', b'M', b'S', b'G', sep]) if is_ws(*sep) => (Kw::Hmsg, 5),
        (Role::Leaf, [b'L', b'M', b'S', b'G', sep]) if is_ws(*sep) => (Kw::Lmsg, 5),
        (Role::Leaf, [b'L', b'S', b'+', sep, _]) if is_ws(*sep) => (Kw::LsPlus, 4),
        (Role::Leaf, [b'L', b'S', b'-', sep, _]) if is_ws(*sep) => (Kw::LsMinus, 4),
        _ => return None,
    };
    Some((n, State::SkipWs(kw)))
}

/// Parses a size token: 1 to 9 ASCII digits, nothing else (`server/util.go` `parseSize`).
#[must_use]
pub fn parse_size(token: &[u8]) -> Option<usize> {
    if token.is_empty() || token.len() > 9 {
        return None;
    }
    let mut n: usize = 0;
    for &b in token {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + usize::from(b - b'0');
    }
    Some(n)
}

/// Splits `line` into at most `N` argument ranges; returns `None` when there are more.
fn split_args<const N: usize>(
    line: &[u8],
    seps: fn(u8) -> bool,
) -> Option<([(usize, usize); N], usize)> {
    let mut out = [(0usize, 0usize); N];
    let mut count = 0;
    let mut start: Option<usize> = None;
    for (idx, &b) in line.iter().enumerate() {
        if seps(b) {
            if let Some(s) = start.take() {
                *out.get_mut(count)? = (s, idx);
                count += 1;
            }
        } else if start.is_none() {
            start = Some(idx);
        }
    }
    if let Some(s) = start {
        *out.get_mut(count)? = (s, line.len());
        count += 1;
    }
    Some((out, count))
}

/// Position of the first `\n` in `s`, eight bytes at a time. Control lines are short, so this
/// beats a vectorised search's set-up cost.
fn find_newline(s: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let (words, rest) = s.as_chunks::<8>();
    for (word_idx, word) in words.iter().enumerate() {
        let v = u64::from_le_bytes(*word) ^ (LO * u64::from(b'\n'));
        let mask = v.wrapping_sub(LO) & !v & HI;
        if mask != 0 {
            let byte = usize::try_from(mask.trailing_zeros() / 8).unwrap_or(0);
            return Some(word_idx * 8 + byte);
        }
    }
    let base = words.len() * 8;
    rest.iter().position(|b| *b == b'\n').map(|i| base + i)
}

/// Position of the first space or tab in `s`, eight bytes at a time.
fn find_ws(s: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let (words, rest) = s.as_chunks::<8>();
    for (word_idx, word) in words.iter().enumerate() {
        let v = u64::from_le_bytes(*word);
        let spaces = v ^ (LO * u64::from(b' '));
        let tabs = v ^ (LO * u64::from(b'\t'));
        // The lowest byte flagged by the classic has-zero-byte test is always a real zero
        // (false positives only occur above it).
        let mask = ((spaces.wrapping_sub(LO) & !spaces) | (tabs.wrapping_sub(LO) & !tabs)) & HI;
        if mask != 0 {
            let byte = usize::try_from(mask.trailing_zeros() / 8).unwrap_or(0);
            return Some(word_idx * 8 + byte);
        }
    }
    let base = words.len() * 8;
    rest.iter().position(|b| is_ws(*b)).map(|i| base + i)
}

/// [`split_args`] with space and tab as separators, skipping word by word over tokens.
fn split_ws<const N: usize>(line: &[u8]) -> Option<([(usize, usize); N], usize)> {
    let mut out = [(0usize, 0usize); N];
    let mut count = 0;
    let mut idx = 0;
    loop {
        while line.get(idx).is_some_and(|b| is_ws(*b)) {
            idx += 1;
        }
        let Some(rest) = line.get(idx..).filter(|r| !r.is_empty()) else {
            return Some((out, count));
        };
        let len = find_ws(rest).unwrap_or(rest.len());
        *out.get_mut(count)? = (idx, idx + len);
        count += 1;
        idx += len;
    }
}

fn pub_sep(b: u8) -> bool {
    is_ws(b)
}

fn sub_sep(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// A complete `PUB` or `HPUB` at the front of a buffer, as offsets into it (see
/// [`Parser::peek_pub`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PubRanges {
    /// Subject, `start..end`.
    pub(crate) subject: (usize, usize),
    /// Reply subject, `start..end`.
    pub(crate) reply: Option<(usize, usize)>,
    /// Header length for `HPUB`.
    pub(crate) header_len: Option<usize>,
    /// Where the payload starts (just after the control line's `\n`).
    pub(crate) payload_start: usize,
    /// Payload length (`HPUB`: headers included).
    pub(crate) size: usize,
}

impl PubRanges {
    /// Bytes the whole operation occupies, trailing CRLF included.
    pub(crate) fn total_len(&self) -> usize {
        self.payload_start + self.size + 2
    }
}

impl Parser {
    /// Creates a parser for `role` with `limits`.
    #[must_use]
    pub fn new(role: Role, limits: ParserLimits) -> Self {
        Self {
            role,
            limits,
            state: keyword_start(),
        }
    }

    /// The limits in force.
    #[must_use]
    pub fn limits(&self) -> &ParserLimits {
        &self.limits
    }

    /// Changes the limits; they apply to the next control line.
    pub fn limits_mut(&mut self) -> &mut ParserLimits {
        &mut self.limits
    }

    /// True when the parser is between operations (the next byte starts a new one).
    #[must_use]
    pub fn at_op_start(&self) -> bool {
        matches!(self.state, State::Keyword { len: 0, .. })
    }

    /// The hot path: when the parser is between operations and `src` starts with a complete,
    /// well-formed `PUB` (or `HPUB`, if negotiated) whose payload and trailing CRLF have all
    /// arrived, returns where its parts are. Nothing is consumed and no state changes: the
    /// caller processes the message in place and advances `src` by
    /// [`PubRanges::total_len`]. Anything else (a partial message, another operation, any
    /// error) returns `None`, and [`Parser::parse`] then handles the same bytes exactly as it
    /// always does, so both paths accept the same inputs with the same results.
    pub(crate) fn peek_pub(&self, src: &[u8]) -> Option<PubRanges> {
        if self.role != Role::Server || !self.at_op_start() {
            return None;
        }
        let (head, _) = src.split_first_chunk::<4>()?;
        let [b0, b1, b2, b3] = head.map(|b| b.to_ascii_uppercase());
        let (hpub, mut pos) = match [b0, b1, b2, b3] {
            [b'P', b'U', b'B', sep] if is_ws(sep) => (false, 4),
            [b'H', b'P', b'U', b'B'] if src.get(4).is_some_and(|b| is_ws(*b)) => (true, 5),
            _ => return None,
        };
        if hpub && !self.limits.headers {
            return None;
        }
        while src.get(pos).is_some_and(|b| is_ws(*b)) {
            pos += 1;
        }
        // The line end must come within the control-line limit (plus a CR); a longer line is
        // left to the state machine, which reports it.
        let window = src.get(pos..)?;
        let window = window
            .get(..self.limits.max_control_line.saturating_add(2))
            .unwrap_or(window);
        let nl = pos + find_newline(window)?;
        let mut end = nl;
        if end > pos && src.get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
        if end - pos > self.limits.max_control_line {
            return None;
        }
        let line = src.get(pos..end)?;
        let at = |r: (usize, usize)| (pos + r.0, pos + r.1);
        let token = |r: (usize, usize)| line.get(r.0..r.1).unwrap_or_default();
        let (subject, reply, header_len, size) = if hpub {
            let (args, n) = split_ws::<4>(line)?;
            let (subject, reply, hdr_tok, total_tok) = match (n, args) {
                (3, [s, h, t, _]) => (s, None, h, t),
                (4, [s, r, h, t]) => (s, Some(r), h, t),
                _ => return None,
            };
            let hdr = parse_size(token(hdr_tok))?;
            let total = parse_size(token(total_tok))?;
            if hdr > total {
                return None;
            }
            (subject, reply, Some(hdr), total)
        } else {
            let (args, n) = split_ws::<3>(line)?;
            let (subject, reply, size_tok) = match (n, args) {
                (2, [s, z, _]) => (s, None, z),
                (3, [s, r, z]) => (s, Some(r), z),
                _ => return None,
            };
            (subject, reply, None, parse_size(token(size_tok))?)
        };
        if size > self.limits.max_payload {
            return None;
        }
        let payload_start = nl + 1;
        let payload_end = payload_start + size;
        if src.get(payload_end..payload_end + 2) != Some(b"\r\n") {
            return None;
        }
        Some(PubRanges {
            subject: at(subject),
            reply: reply.map(at),
            header_len,
            payload_start,
            size,
        })
    }

    /// Parses the next complete operation from the front of `src`.
    ///
    /// Returns `Ok(None)` when more bytes are needed; the consumed prefix has been removed from
    /// `src` and the partial tail stays in place. Call again after appending more bytes. After
    /// an error the parser is poisoned and returns the same error on every call.
    pub fn parse(&mut self, src: &mut BytesMut) -> Result<Option<Op>, ProtoError> {
        // A complete PUB/HPUB at the front is taken in one piece: one split and one slice per
        // part, instead of a state transition per part.
        if let Some(found) = self.peek_pub(src) {
            let whole = src.split_to(found.total_len()).freeze();
            let part = |(start, end): (usize, usize)| whole.slice(start..end);
            return Ok(Some(Op::Pub(Publish {
                subject: part(found.subject),
                reply: found.reply.map(part),
                header_len: found.header_len,
                message: part((found.payload_start, found.payload_start + found.size)),
            })));
        }
        self.parse_stepwise(src)
    }

    /// [`Parser::parse`] without the whole-PUB fast path: the resumable state machine that
    /// handles every operation, split reads and errors. The fuzz bodies compare the two.
    pub(crate) fn parse_stepwise(&mut self, src: &mut BytesMut) -> Result<Option<Op>, ProtoError> {
        loop {
            match &mut self.state {
                State::Failed(err) => return Err(*err),
                State::Keyword { kw, len } => {
                    // Fast path for the hot operations when the whole keyword and its separator
                    // are present; everything else goes byte by byte below.
                    if *len == 0
                        && let Some(next) = fast_keyword(self.role, src)
                    {
                        src.advance(next.0);
                        self.state = next.1;
                        continue;
                    }
                    let Some(&byte) = src.first() else {
                        return Ok(None);
                    };
                    let upper = byte.to_ascii_uppercase();
                    let Some(slot) = kw.get_mut(*len) else {
                        return self.fail(ProtoError::UnknownOp);
                    };
                    *slot = upper;
                    *len += 1;
                    src.advance(1);
                    let seen = kw.get(..*len).unwrap_or_default();
                    let table = match self.role {
                        Role::Server => SERVER_KEYWORDS,
                        Role::Client => CLIENT_KEYWORDS,
                        Role::Leaf => LEAF_KEYWORDS,
                    };
                    let mut prefix = false;
                    let mut found = None;
                    for (name, k) in table {
                        if *name == seen {
                            found = Some(*k);
                            break;
                        }
                        if name.starts_with(seen) {
                            prefix = true;
                        }
                    }
                    if let Some(k) = found {
                        self.state = match k {
                            Kw::Ping | Kw::Pong | Kw::PlusOk => State::SkipLine(k),
                            Kw::Connect | Kw::Info => State::SkipWs(k),
                            _ => State::NeedSep(k),
                        };
                    } else if !prefix {
                        return self.fail(ProtoError::UnknownOp);
                    }
                }
                State::NeedSep(k) => {
                    let k = *k;
                    let Some(&byte) = src.first() else {
                        return Ok(None);
                    };
                    if !is_ws(byte) {
                        return self.fail(ProtoError::UnknownOp);
                    }
                    src.advance(1);
                    self.state = State::SkipWs(k);
                }
                State::SkipWs(k) => {
                    let k = *k;
                    let n_ws = src.iter().take_while(|b| is_ws(**b)).count();
                    src.advance(n_ws);
                    if src.is_empty() {
                        return Ok(None);
                    }
                    self.state = State::Arg { kw: k, scanned: 0 };
                }
                State::SkipLine(k) => {
                    let k = *k;
                    match memchr::memchr(b'\n', src) {
                        Some(idx) => {
                            src.advance(idx + 1);
                            self.state = keyword_start();
                            return Ok(Some(match k {
                                Kw::Ping => Op::Ping,
                                Kw::Pong => Op::Pong,
                                _ => Op::Ok,
                            }));
                        }
                        None => {
                            src.clear();
                            return Ok(None);
                        }
                    }
                }
                State::Arg { kw, scanned } => {
                    let k = *kw;
                    let from = *scanned;
                    let rest = src.get(from..).unwrap_or_default();
                    let Some(rel) = memchr::memchr(b'\n', rest) else {
                        *scanned = src.len();
                        let mut partial = src.len();
                        if src.last() == Some(&b'\r') {
                            partial -= 1;
                        }
                        if partial > self.limits.max_control_line {
                            return self.fail(ProtoError::MaxControlLine);
                        }
                        return Ok(None);
                    };
                    let nl = from + rel;
                    let mut line = src.split_to(nl + 1).freeze();
                    line.truncate(nl);
                    if line.last() == Some(&b'\r') {
                        line.truncate(nl - 1);
                    }
                    if line.len() > self.limits.max_control_line {
                        return self.fail(ProtoError::MaxControlLine);
                    }
                    self.state = keyword_start();
                    match self.on_line(k, line) {
                        Ok(Some(op)) => return Ok(Some(op)),
                        Ok(None) => {}
                        Err(err) => return self.fail(err),
                    }
                }
                State::Payload { size, .. } => {
                    let size = *size;
                    if src.len() > size && src.get(size) != Some(&b'\r') {
                        return self.fail(ProtoError::UnknownOp);
                    }
                    if src.len() > size + 1 && src.get(size + 1) != Some(&b'\n') {
                        return self.fail(ProtoError::UnknownOp);
                    }
                    if src.len() < size + 2 {
                        return Ok(None);
                    }
                    let message = src.split_to(size).freeze();
                    src.advance(2);
                    let State::Payload { head, .. } =
                        std::mem::replace(&mut self.state, keyword_start())
                    else {
                        return self.fail(ProtoError::UnknownOp);
                    };
                    if let Some(queues) = head.leaf_queues {
                        return Ok(Some(Op::LeafMsg(LeafDelivery {
                            subject: head.subject,
                            reply: head.reply,
                            queues,
                            header_len: head.header_len,
                            message,
                        })));
                    }
                    return Ok(Some(match head.sid {
                        None => Op::Pub(Publish {
                            subject: head.subject,
                            reply: head.reply,
                            header_len: head.header_len,
                            message,
                        }),
                        Some(sid) => Op::Msg(Delivery {
                            subject: head.subject,
                            sid,
                            reply: head.reply,
                            header_len: head.header_len,
                            message,
                        }),
                    }));
                }
            }
        }
    }

    /// Bytes still needed before the current payload is complete (a hint for read sizing).
    #[must_use]
    pub fn payload_remaining(&self, buffered: usize) -> usize {
        match &self.state {
            State::Payload { size, .. } => (size + 2).saturating_sub(buffered),
            _ => 0,
        }
    }

    fn fail(&mut self, err: ProtoError) -> Result<Option<Op>, ProtoError> {
        self.state = State::Failed(err);
        Err(err)
    }

    /// Handles one complete argument line. Returns an op, or `None` when a payload follows.
    fn on_line(&mut self, kw: Kw, line: Bytes) -> Result<Option<Op>, ProtoError> {
        let slice = |r: (usize, usize)| line.slice(r.0..r.1);
        match kw {
            Kw::Connect => Ok(Some(Op::Connect(line))),
            Kw::Info => Ok(Some(Op::Info(line))),
            Kw::MinusErr => Ok(Some(Op::Err(line))),
            Kw::Pub => {
                let bad = ProtoError::BadArgs(OpName::Pub);
                let (args, n) = split_args::<3>(&line, pub_sep).ok_or(bad)?;
                let (subject, reply, size_tok) = match (n, args) {
                    (2, [s, z, _]) => (s, None, z),
                    (3, [s, r, z]) => (s, Some(r), z),
                    _ => return Err(bad),
                };
                let size =
                    parse_size(line.get(size_tok.0..size_tok.1).unwrap_or_default()).ok_or(bad)?;
                if size > self.limits.max_payload {
                    return Err(ProtoError::MaxPayload);
                }
                self.start_payload(
                    PayloadHead {
                        subject: slice(subject),
                        reply: reply.map(slice),
                        sid: None,
                        leaf_queues: None,
                        header_len: None,
                    },
                    size,
                )
            }
            Kw::Hpub => {
                if !self.limits.headers {
                    return Err(ProtoError::HeadersNotSupported);
                }
                let bad = ProtoError::BadArgs(OpName::Hpub);
                let (args, n) = split_args::<4>(&line, pub_sep).ok_or(bad)?;
                let (subject, reply, hdr_tok, total_tok) = match (n, args) {
                    (3, [s, h, t, _]) => (s, None, h, t),
                    (4, [s, r, h, t]) => (s, Some(r), h, t),
                    _ => return Err(bad),
                };
                let hdr =
                    parse_size(line.get(hdr_tok.0..hdr_tok.1).unwrap_or_default()).ok_or(bad)?;
                let total = parse_size(line.get(total_tok.0..total_tok.1).unwrap_or_default())
                    .ok_or(bad)?;
                if hdr > total {
                    return Err(bad);
                }
                if total > self.limits.max_payload {
                    return Err(ProtoError::MaxPayload);
                }
                self.start_payload(
                    PayloadHead {
                        subject: slice(subject),
                        reply: reply.map(slice),
                        sid: None,
                        leaf_queues: None,
                        header_len: Some(hdr),
                    },
                    total,
                )
            }
            Kw::Sub => {
                let bad = ProtoError::BadArgs(OpName::Sub);
                let (args, n) = split_args::<3>(&line, sub_sep).ok_or(bad)?;
                match (n, args) {
                    (2, [s, id, _]) => Ok(Some(Op::Sub {
                        subject: slice(s),
                        queue: None,
                        sid: slice(id),
                    })),
                    (3, [s, q, id]) => Ok(Some(Op::Sub {
                        subject: slice(s),
                        queue: Some(slice(q)),
                        sid: slice(id),
                    })),
                    _ => Err(bad),
                }
            }
            Kw::Unsub => {
                let bad = ProtoError::BadArgs(OpName::Unsub);
                let (args, n) = split_args::<2>(&line, sub_sep).ok_or(bad)?;
                match (n, args) {
                    (1, [id, _]) => Ok(Some(Op::Unsub {
                        sid: slice(id),
                        max: None,
                    })),
                    (2, [id, m]) => Ok(Some(Op::Unsub {
                        sid: slice(id),
                        max: parse_size(line.get(m.0..m.1).unwrap_or_default())
                            .and_then(|v| u64::try_from(v).ok()),
                    })),
                    _ => Err(bad),
                }
            }
            Kw::Msg => {
                let bad = ProtoError::BadArgs(OpName::Msg);
                let (args, n) = split_args::<4>(&line, pub_sep).ok_or(bad)?;
                let (subject, sid, reply, size_tok) = match (n, args) {
                    (3, [s, id, z, _]) => (s, id, None, z),
                    (4, [s, id, r, z]) => (s, id, Some(r), z),
                    _ => return Err(bad),
                };
                let size =
                    parse_size(line.get(size_tok.0..size_tok.1).unwrap_or_default()).ok_or(bad)?;
                self.start_payload(
                    PayloadHead {
                        subject: slice(subject),
                        reply: reply.map(slice),
                        sid: Some(slice(sid)),
                        leaf_queues: None,
                        header_len: None,
                    },
                    size,
                )
            }
            Kw::Hmsg if self.role == Role::Leaf => self.leaf_msg_line(&line, true),
            Kw::Lmsg => self.leaf_msg_line(&line, false),
            Kw::LsPlus => {
                let bad = ProtoError::BadArgs(OpName::LeafSub);
                let (args, n) = split_args::<3>(&line, sub_sep).ok_or(bad)?;
                match (n, args) {
                    (1, [s, _, _]) => Ok(Some(Op::LeafSub {
                        subject: slice(s),
                        queue: None,
                    })),
                    (3, [s, q, w]) => {
                        // `parseSize`: a bad weight is -1 in Go, which the hub stores; natsws
                        // refuses it.
                        let weight = parse_size(line.get(w.0..w.1).unwrap_or_default())
                            .and_then(|w| u32::try_from(w).ok())
                            .ok_or(bad)?;
                        Ok(Some(Op::LeafSub {
                            subject: slice(s),
                            queue: Some((slice(q), weight)),
                        }))
                    }
                    _ => Err(bad),
                }
            }
            Kw::LsMinus => {
                let bad = ProtoError::BadArgs(OpName::LeafUnsub);
                let (args, n) = split_args::<2>(&line, sub_sep).ok_or(bad)?;
                match (n, args) {
                    (1, [s, _]) => Ok(Some(Op::LeafUnsub {
                        subject: slice(s),
                        queue: None,
                    })),
                    (2, [s, q]) => Ok(Some(Op::LeafUnsub {
                        subject: slice(s),
                        queue: Some(slice(q)),
                    })),
                    _ => Err(bad),
                }
            }
            Kw::Hmsg => {
                let bad = ProtoError::BadArgs(OpName::Hmsg);
                let (args, n) = split_args::<5>(&line, pub_sep).ok_or(bad)?;
                let (subject, sid, reply, hdr_tok, total_tok) = match (n, args) {
                    (4, [s, id, h, t, _]) => (s, id, None, h, t),
                    (5, [s, id, r, h, t]) => (s, id, Some(r), h, t),
                    _ => return Err(bad),
                };
                let hdr =
                    parse_size(line.get(hdr_tok.0..hdr_tok.1).unwrap_or_default()).ok_or(bad)?;
                let total = parse_size(line.get(total_tok.0..total_tok.1).unwrap_or_default())
                    .ok_or(bad)?;
                if hdr > total {
                    return Err(bad);
                }
                self.start_payload(
                    PayloadHead {
                        subject: slice(subject),
                        reply: reply.map(slice),
                        sid: Some(slice(sid)),
                        leaf_queues: None,
                        header_len: Some(hdr),
                    },
                    total,
                )
            }
            Kw::Ping | Kw::Pong | Kw::PlusOk => Err(ProtoError::UnknownOp),
        }
    }

    /// A leaf `LMSG` (or `HMSG`, `headers`) argument line (`server/parser.go`
    /// `processLeafMsgArgs`, `processLeafHeaderMsgArgs`): the subject, then either the sizes
    /// alone, a reply and the sizes, `+ <reply> <queue>...` or `| <queue>...` before them.
    /// The tokens are walked once, keeping only the first three and the last two, so a
    /// long queue list costs no allocation.
    fn leaf_msg_line(&mut self, line: &Bytes, headers: bool) -> Result<Option<Op>, ProtoError> {
        let bad = ProtoError::BadArgs(if headers { OpName::Hmsg } else { OpName::Lmsg });
        let mut first = [(0usize, 0usize); 3];
        let mut last = [(0usize, 0usize); 2];
        let mut n = 0usize;
        let mut idx = 0;
        loop {
            while line.get(idx).is_some_and(|b| is_ws(*b)) {
                idx += 1;
            }
            let Some(rest) = line.get(idx..).filter(|r| !r.is_empty()) else {
                break;
            };
            let len = find_ws(rest).unwrap_or(rest.len());
            let token = (idx, idx + len);
            if let Some(slot) = first.get_mut(n) {
                *slot = token;
            }
            let [_, newest] = last;
            last = [newest, token];
            n += 1;
            idx += len;
        }
        let sizes = if headers { 2 } else { 1 };
        if n < 1 + sizes {
            return Err(bad);
        }
        let token = |r: (usize, usize)| line.get(r.0..r.1).unwrap_or_default();
        let slice = |r: (usize, usize)| line.slice(r.0..r.1);
        let [f0, f1, f2] = first;
        let [l0, l1] = last;
        let size = parse_size(token(l1)).ok_or(bad)?;
        let header_len = if headers {
            let hdr = parse_size(token(l0)).ok_or(bad)?;
            if hdr > size {
                return Err(bad);
            }
            Some(hdr)
        } else {
            None
        };
        let middle = n - 1 - sizes;
        // The end of the queue list: the start of the first size token, less separators.
        let sizes_start = if headers { l0.0 } else { l1.0 };
        let queues_until = |start: usize| {
            let mut end = sizes_start;
            while end > start && line.get(end - 1).is_some_and(|b| is_ws(*b)) {
                end -= 1;
            }
            (start, end)
        };
        let (reply, queues) = match middle {
            0 => (None, None),
            1 => (Some(slice(f1)), None),
            _ => match token(f1) {
                b"+" if middle >= 3 => (Some(slice(f2)), Some(slice(queues_until(f2.1)))),
                b"|" => (None, Some(slice(queues_until(f1.1)))),
                _ => return Err(bad),
            },
        };
        // Trim the separators the list starts with.
        let queues = queues.map(|q| {
            let lead = q.iter().take_while(|b| is_ws(**b)).count();
            q.slice(lead..)
        });
        self.start_payload(
            PayloadHead {
                subject: slice(f0),
                reply,
                sid: None,
                leaf_queues: Some(queues),
                header_len,
            },
            size,
        )
    }

    fn start_payload(&mut self, head: PayloadHead, size: usize) -> Result<Option<Op>, ProtoError> {
        // PUB/HPUB were checked already; this bounds MSG/HMSG in the client role too.
        if size > self.limits.max_payload {
            return Err(ProtoError::MaxPayload);
        }
        self.state = State::Payload { head, size };
        Ok(None)
    }
}

#[cfg(test)]
mod tests;
