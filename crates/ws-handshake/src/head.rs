//! Finding the end of an HTTP/1.x header block in a buffer that grows between calls.
//!
//! The reader remembers how far it has scanned, so a peer that sends one byte at a time costs
//! linear work in total (hyper's `is_complete_fast`). It accepts both `\r\n` and a
//! bare `\n` as line ends, as Go's `textproto` reader does, and enforces the byte and line limits
//! while it scans, so nothing past [`Limits::max_head_bytes`] is ever looked at.

use memchr::memchr;

use crate::Limits;

/// Why a header block cannot be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// No blank line within the byte limit.
    TooLarge,
    /// More lines than the header-count limit allows.
    TooManyLines,
    /// The very first line is empty, so there is no request or status line.
    EmptyFirstLine,
}

/// Incremental scanner for the end of a header block.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeadReader {
    /// Bytes before this offset have been scanned for `\n`.
    scanned: usize,
    /// Start of the line that is still open.
    line_start: usize,
    /// Complete, non-empty lines seen so far (the start line and the header lines).
    n_lines: usize,
    /// End (exclusive, after the `\n`) of the first line, once it is complete.
    first_line_end: Option<usize>,
}

impl HeadReader {
    /// Scans `src`, which must be the previous `src` with bytes appended.
    ///
    /// Returns the length of the header block (up to and including the blank line) once it is
    /// complete, `Ok(None)` while more input is needed.
    pub(crate) fn poll(&mut self, src: &[u8], limits: &Limits) -> Result<Option<usize>, HeadError> {
        let window_end = src.len().min(limits.max_head_bytes);
        while self.scanned < window_end {
            let window = src.get(self.scanned..window_end).unwrap_or_default();
            let Some(offset) = memchr(b'\n', window) else {
                self.scanned = window_end;
                break;
            };
            let newline = self.scanned + offset;
            self.scanned = newline + 1;
            let line = src.get(self.line_start..newline).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                if self.n_lines == 0 {
                    return Err(HeadError::EmptyFirstLine);
                }
                return Ok(Some(newline + 1));
            }
            self.n_lines += 1;
            if self.n_lines == 1 {
                self.first_line_end = Some(newline + 1);
            }
            // The first line is the request or status line; the rest are header lines.
            if self.n_lines - 1 > limits.max_headers {
                return Err(HeadError::TooManyLines);
            }
            self.line_start = newline + 1;
        }
        if src.len() >= limits.max_head_bytes {
            return Err(HeadError::TooLarge);
        }
        Ok(None)
    }

    /// The header lines of the head read so far (the lines after the first): enough slots
    /// for the header table, which is therefore sized by the request, not by the limit.
    pub(crate) fn header_lines(&self) -> usize {
        self.n_lines.saturating_sub(1)
    }

    /// The end of the first line, once it has been received.
    pub(crate) fn first_line_end(&self) -> Option<usize> {
        self.first_line_end
    }
}

/// A parsed header: its name and its value with spaces and tabs trimmed.
pub(crate) type HeaderPair<'a> = (&'a str, &'a [u8]);

/// Copies httparse's headers, trimming the values as Go's `textproto` does.
pub(crate) fn collect_headers<'a>(headers: &[httparse::Header<'a>]) -> Vec<HeaderPair<'a>> {
    headers
        .iter()
        .map(|header| (header.name, trim_ows(header.value)))
        .collect()
}

/// Trims spaces and tabs at both ends.
pub(crate) fn trim_ows(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|byte| *byte != b' ' && *byte != b'\t')
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|byte| *byte != b' ' && *byte != b'\t')
        .map_or(start, |last| last + 1);
    value.get(start..end).unwrap_or_default()
}

/// Every value of the header `name` (matched case-insensitively), in order.
pub(crate) fn values<'h, 'a>(
    headers: &'h [HeaderPair<'a>],
    name: &'h str,
) -> impl Iterator<Item = &'a [u8]> + 'h {
    headers
        .iter()
        .filter(move |(header_name, _)| header_name.eq_ignore_ascii_case(name))
        .map(|(_, value)| *value)
}

/// The first value of the header `name`, or empty when absent (Go's `Header.Get`).
pub(crate) fn first<'a>(headers: &[HeaderPair<'a>], name: &str) -> &'a [u8] {
    values(headers, name).next().unwrap_or_default()
}

/// True when some value of `name`, split on `,` and trimmed, equals `token` ignoring ASCII case
/// (nats-server `wsHeaderContains`).
pub(crate) fn has_token(headers: &[HeaderPair<'_>], name: &str, token: &str) -> bool {
    values(headers, name).any(|value| {
        value
            .split(|byte| *byte == b',')
            .any(|piece| trim_ows(piece).eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// The outcome of looking for `permessage-deflate` in `Sec-WebSocket-Extensions`
/// (nats-server `wsPMCExtensionSupport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct DeflateOffer {
    /// Some extension is `permessage-deflate`.
    pub(crate) offered: bool,
    /// That extension also carries both `*_no_context_takeover` parameters.
    pub(crate) no_context_takeover: bool,
}

/// Finds the first `permessage-deflate` parameter in any `Sec-WebSocket-Extensions` value.
pub(crate) fn deflate_offer(headers: &[HeaderPair<'_>]) -> DeflateOffer {
    for value in values(headers, "Sec-WebSocket-Extensions") {
        for extension in value.split(|byte| *byte == b',') {
            let mut params = extension.split(|byte| *byte == b';');
            while let Some(param) = params.next() {
                if !trim_ows(param).eq_ignore_ascii_case(b"permessage-deflate") {
                    continue;
                }
                let (mut server, mut client) = (false, false);
                for rest in params.by_ref() {
                    let rest = trim_ows(rest);
                    if rest.eq_ignore_ascii_case(b"server_no_context_takeover") {
                        server = true;
                    } else if rest.eq_ignore_ascii_case(b"client_no_context_takeover") {
                        client = true;
                    }
                }
                return DeflateOffer {
                    offered: true,
                    no_context_takeover: server && client,
                };
            }
        }
    }
    DeflateOffer::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_head_bytes: usize, max_headers: usize) -> Limits {
        Limits {
            max_head_bytes,
            max_headers,
            ..Limits::default()
        }
    }

    fn check(input: &[u8], limits: &Limits, expect: Result<Option<usize>, HeadError>) {
        let mut reader = HeadReader::default();
        assert_eq!(reader.poll(input, limits), expect, "{input:?}");
    }

    #[test]
    fn head_ends() {
        let big = Limits::default();
        check(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest", &big, Ok(Some(27)));
        check(b"GET / HTTP/1.1\nHost: x\n\n", &big, Ok(Some(24)));
        check(b"GET / HTTP/1.1\r\nHost: x\r\n\r", &big, Ok(None));
        check(b"GET / HTTP/1.1\r\n", &big, Ok(None));
        check(
            b"\r\nGET / HTTP/1.1\r\n\r\n",
            &big,
            Err(HeadError::EmptyFirstLine),
        );
    }

    #[test]
    fn limits_are_enforced_while_scanning() {
        check(
            b"GET / HTTP/1.1\r\nA: b\r\n\r\n",
            &limits(23, 10),
            Err(HeadError::TooLarge),
        );
        check(
            b"GET / HTTP/1.1\r\nA: b\r\n\r\n",
            &limits(24, 10),
            Ok(Some(24)),
        );
        check(
            b"GET / HTTP/1.1\r\nA: b\r\n",
            &limits(24, 0),
            Err(HeadError::TooManyLines),
        );
        check(
            b"GET / HTTP/1.1\r\nA: b\r\n\r\n",
            &limits(100, 1),
            Ok(Some(24)),
        );
    }

    #[test]
    fn resumes_without_rescanning() {
        let input = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut reader = HeadReader::default();
        for len in 0..input.len() {
            assert_eq!(reader.poll(&input[..len], &Limits::default()), Ok(None));
            assert_eq!(reader.scanned, len);
        }
        assert_eq!(
            reader.poll(input, &Limits::default()),
            Ok(Some(input.len()))
        );
        assert_eq!(reader.first_line_end(), Some(16));
    }

    #[test]
    fn token_lists() {
        let headers: Vec<HeaderPair<'_>> = vec![
            ("upgrade", b"h2c, WebSocket".as_slice()),
            ("Connection", b"keep-alive,\tupgrade ".as_slice()),
        ];
        assert!(has_token(&headers, "Upgrade", "websocket"));
        assert!(has_token(&headers, "CONNECTION", "Upgrade"));
        assert!(!has_token(&headers, "Upgrade", "h2"));
        assert!(!has_token(&headers, "Sec-WebSocket-Version", "13"));
    }

    fn check_deflate(value: &str, offered: bool, no_context_takeover: bool) {
        let headers: Vec<HeaderPair<'_>> = vec![("Sec-WebSocket-Extensions", value.as_bytes())];
        assert_eq!(
            deflate_offer(&headers),
            DeflateOffer {
                offered,
                no_context_takeover
            },
            "{value}"
        );
    }

    #[test]
    fn deflate_offers() {
        check_deflate("permessage-deflate", true, false);
        check_deflate("x-webkit-deflate-frame, PerMessage-Deflate", true, false);
        check_deflate("permessage-deflate; client_max_window_bits", true, false);
        check_deflate(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            true,
            true,
        );
        check_deflate("deflate-frame", false, false);
        check_deflate("", false, false);
    }

    #[test]
    fn trims() {
        assert_eq!(trim_ows(b" \ta b\t "), b"a b");
        assert_eq!(trim_ows(b"  "), b"");
    }
}
