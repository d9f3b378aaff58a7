//! The client side of the NATS protocol: the operations a client sends, and a resumable parser
//! for what a server sends (`INFO`, `MSG`, `PING`, `PONG`, `+OK`, `-ERR`), modelled on the
//! states of nats-server's `server/parser.go` but over a `BytesMut`.

use std::fmt;

use bytes::{Buf as _, Bytes, BytesMut};

/// The longest control line accepted (an `INFO` with many URLs can be long).
pub(crate) const MAX_CONTROL_LINE: usize = 64 * 1024;

/// One operation from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// `INFO {json}`.
    Info(Bytes),
    /// `MSG <subject> <sid> [reply] <size>` and its payload.
    Msg {
        sid: u64,
        reply: Option<Bytes>,
        payload: Bytes,
    },
    Ping,
    Pong,
    Ok,
    /// `-ERR '<text>'`, with the text as sent.
    Err(String),
}

/// Why the server's byte stream is not valid NATS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseError {
    LineTooLong,
    UnknownOp(String),
    BadMsg(String),
    MissingCrlf,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LineTooLong => write!(f, "control line longer than {MAX_CONTROL_LINE} bytes"),
            Self::UnknownOp(line) => write!(f, "unknown operation {line:?}"),
            Self::BadMsg(line) => write!(f, "malformed MSG line {line:?}"),
            Self::MissingCrlf => f.write_str("payload not followed by CRLF"),
        }
    }
}

#[derive(Debug, Clone)]
enum State {
    Line,
    Payload {
        sid: u64,
        reply: Option<Bytes>,
        len: usize,
    },
}

/// The parser: feed it the stream with [`Parser::next`] after every read.
#[derive(Debug, Clone)]
pub(crate) struct Parser {
    state: State,
    /// Bytes of the current line already searched for `\n`.
    scanned: usize,
}

impl Default for Parser {
    fn default() -> Self {
        Self {
            state: State::Line,
            scanned: 0,
        }
    }
}

impl Parser {
    /// The next complete operation in `buf`, consumed from it; `Ok(None)` when `buf` holds
    /// none yet (read more and call again).
    pub(crate) fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Op>, ParseError> {
        loop {
            match &self.state {
                State::Line => {
                    let from = self.scanned.min(buf.len());
                    let Some(pos) = memchr::memchr(b'\n', buf.get(from..).unwrap_or_default())
                    else {
                        self.scanned = buf.len();
                        if buf.len() > MAX_CONTROL_LINE {
                            return Err(ParseError::LineTooLong);
                        }
                        return Ok(None);
                    };
                    let end = from + pos + 1;
                    self.scanned = 0;
                    let line = buf.split_to(end).freeze();
                    let text = trim_crlf(&line);
                    if let Some(op) = self.line(&line, text)? {
                        return Ok(Some(op));
                    }
                }
                State::Payload { len, .. } => {
                    let len = *len;
                    if buf.len() < len + 2 {
                        return Ok(None);
                    }
                    let State::Payload { sid, reply, .. } =
                        std::mem::replace(&mut self.state, State::Line)
                    else {
                        unreachable!("matched above")
                    };
                    let payload = buf.split_to(len).freeze();
                    if buf.get(..2) != Some(b"\r\n") {
                        return Err(ParseError::MissingCrlf);
                    }
                    buf.advance(2);
                    return Ok(Some(Op::Msg {
                        sid,
                        reply,
                        payload,
                    }));
                }
            }
        }
    }

    /// Handles one control line; `None` when it starts a payload.
    fn line(&mut self, line: &Bytes, text: &[u8]) -> Result<Option<Op>, ParseError> {
        let lossy = || String::from_utf8_lossy(text).into_owned();
        let (op, rest) = match memchr::memchr2(b' ', b'\t', text) {
            Some(i) => (
                text.get(..i).unwrap_or_default(),
                text.get(i + 1..).unwrap_or_default(),
            ),
            None => (text, &b""[..]),
        };
        match op {
            b"MSG" => {
                let args: Vec<&[u8]> = rest
                    .split(|b| *b == b' ' || *b == b'\t')
                    .filter(|a| !a.is_empty())
                    .collect();
                let (sid, reply, size) = match args.as_slice() {
                    [_subject, sid, size] => (sid, None, size),
                    [_subject, sid, reply, size] => (sid, Some(*reply), size),
                    _ => return Err(ParseError::BadMsg(lossy())),
                };
                let (Some(sid), Some(len)) = (parse_u64(sid), parse_u64(size)) else {
                    return Err(ParseError::BadMsg(lossy()));
                };
                let len = usize::try_from(len).map_err(|_| ParseError::BadMsg(lossy()))?;
                let reply = reply.map(|r| line.slice_ref(r));
                self.state = State::Payload { sid, reply, len };
                Ok(None)
            }
            b"PING" => Ok(Some(Op::Ping)),
            b"PONG" => Ok(Some(Op::Pong)),
            b"+OK" => Ok(Some(Op::Ok)),
            b"-ERR" => Ok(Some(Op::Err(String::from_utf8_lossy(rest).into_owned()))),
            b"INFO" => Ok(Some(Op::Info(line.slice_ref(rest)))),
            _ => Err(ParseError::UnknownOp(lossy())),
        }
    }
}

fn trim_crlf(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + u64::from(d - b'0'))
    })
}

/// `CONNECT` for a client that wants no `+OK`s.
pub(crate) fn connect(out: &mut Vec<u8>) {
    out.extend_from_slice(
        concat!(
            "CONNECT {\"verbose\":false,\"pedantic\":false,\"tls_required\":false,",
            "\"name\":\"loadgen\",\"lang\":\"rust\",\"version\":\"",
            env!("CARGO_PKG_VERSION"),
            "\",\"protocol\":1,\"headers\":false,\"no_responders\":false}\r\n"
        )
        .as_bytes(),
    );
}

/// `SUB <subject> <sid>`.
pub(crate) fn sub(out: &mut Vec<u8>, subject: &str, sid: u64) {
    out.extend_from_slice(format!("SUB {subject} {sid}\r\n").as_bytes());
}

/// The header of `PUB <subject> [reply] <len>`; the payload and a CRLF follow.
pub(crate) fn pub_head(out: &mut Vec<u8>, subject: &str, reply: Option<&str>, len: usize) {
    out.extend_from_slice(b"PUB ");
    out.extend_from_slice(subject.as_bytes());
    if let Some(reply) = reply {
        out.push(b' ');
        out.extend_from_slice(reply.as_bytes());
    }
    out.push(b' ');
    let mut digits = [0u8; 20];
    let mut n = len;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &[u8] = b"INFO {\"server_id\":\"x\",\"max_payload\":1048576}\r\n\
        PING\r\nMSG a.b 1 5\r\nhello\r\nMSG a.b 12 _INBOX.x 0\r\n\r\n+OK\r\n\
        MSG  c\t3   2\r\n\r\n\r\nPONG\n-ERR 'Slow Consumer'\r\n";

    fn expected() -> Vec<Op> {
        vec![
            Op::Info(Bytes::from_static(
                b"{\"server_id\":\"x\",\"max_payload\":1048576}",
            )),
            Op::Ping,
            Op::Msg {
                sid: 1,
                reply: None,
                payload: Bytes::from_static(b"hello"),
            },
            Op::Msg {
                sid: 12,
                reply: Some(Bytes::from_static(b"_INBOX.x")),
                payload: Bytes::new(),
            },
            Op::Ok,
            Op::Msg {
                sid: 3,
                reply: None,
                payload: Bytes::from_static(b"\r\n"),
            },
            Op::Pong,
            Op::Err("'Slow Consumer'".to_owned()),
        ]
    }

    fn parse_in_pieces(sizes: impl Iterator<Item = usize>) -> Vec<Op> {
        let mut parser = Parser::default();
        let mut buf = BytesMut::new();
        let mut ops = Vec::new();
        let mut rest = STREAM;
        for size in sizes {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at(size.min(rest.len()));
            rest = tail;
            buf.extend_from_slice(piece);
            while let Some(op) = parser.next(&mut buf).unwrap() {
                ops.push(op);
            }
        }
        assert!(rest.is_empty() && buf.is_empty());
        ops
    }

    #[test]
    fn parses_a_whole_stream() {
        assert_eq!(parse_in_pieces(std::iter::once(STREAM.len())), expected());
    }

    #[test]
    fn any_split_gives_the_same_operations() {
        assert_eq!(parse_in_pieces(std::iter::repeat(1)), expected());
        for first in 1..STREAM.len() {
            let sizes = [first, 7, 3, STREAM.len()].into_iter();
            assert_eq!(parse_in_pieces(sizes), expected(), "split at {first}");
        }
    }

    #[test]
    fn rejects_what_is_not_nats() {
        let cases: &[(&[u8], ParseError)] = &[
            (b"HELLO\r\n", ParseError::UnknownOp("HELLO".to_owned())),
            (b"MSG a 1\r\n", ParseError::BadMsg("MSG a 1".to_owned())),
            (b"MSG a x 1\r\n", ParseError::BadMsg("MSG a x 1".to_owned())),
            (
                b"MSG a 1 -1\r\n",
                ParseError::BadMsg("MSG a 1 -1".to_owned()),
            ),
            (b"MSG a 1 2\r\nabXY", ParseError::MissingCrlf),
        ];
        for (input, want) in cases {
            let mut buf = BytesMut::from(*input);
            assert_eq!(
                Parser::default().next(&mut buf),
                Err(want.clone()),
                "{input:?}"
            );
        }
        let mut long = BytesMut::from(&vec![b'A'; MAX_CONTROL_LINE + 1][..]);
        assert_eq!(
            Parser::default().next(&mut long),
            Err(ParseError::LineTooLong)
        );
    }

    #[test]
    fn writes_client_operations() {
        let mut out = Vec::new();
        sub(&mut out, "lg.7", 3);
        pub_head(&mut out, "lg.7", None, 128);
        pub_head(&mut out, "req", Some("_INBOX.a"), 0);
        assert_eq!(out, b"SUB lg.7 3\r\nPUB lg.7 128\r\nPUB req _INBOX.a 0\r\n");
        let mut connect_line = Vec::new();
        connect(&mut connect_line);
        let json = connect_line
            .strip_prefix(b"CONNECT ")
            .and_then(|l| l.strip_suffix(b"\r\n"))
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(json).unwrap();
        assert_eq!(v["verbose"], false);
    }
}
