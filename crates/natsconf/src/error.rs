//! Parse errors: the reference's exact text (`conf/lex.go` `errorf` and `conf/parse.go` in
//! nats-server) plus a location for humans.

use std::fmt;
use std::sync::Arc;

/// What kind of problem stopped the parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A lexer error: `Parse error on line N: '…'`.
    Syntax,
    /// A number or date-time that does not convert (`integer '…' is out of the range`, …).
    Value,
    /// A `$variable` that cannot be found or whose environment value does not parse.
    Variable,
    /// An `include` whose file cannot be read or parsed.
    Include,
    /// The top-level file cannot be read.
    Read,
    /// One of the [`crate::Limits`] was exceeded (natsws only; the reference has no limits).
    Limit,
}

/// Where an error was found, for the diagnostic render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file as it is named in the config (the joined path for includes).
    pub file: Arc<str>,
    /// 1-based line of the offending byte.
    pub line: u32,
    /// 1-based column (in characters) of the offending byte.
    pub col: u32,
    /// The text of that line (lossy UTF-8, without the line break).
    pub source_line: String,
}

impl Location {
    /// The location of byte `offset` of `source`.
    pub(crate) fn at(file: &Arc<str>, source: &[u8], offset: usize) -> Self {
        let mut offset = offset.min(source.len());
        // An error at the end of a file that ends in a line break points after the last line.
        if offset == source.len() && offset > 0 && source.last() == Some(&b'\n') {
            offset -= 1;
        }
        let before = source.get(..offset).unwrap_or_default();
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let rest = source.get(line_start..).unwrap_or_default();
        let line_end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let text = rest.get(..line_end).unwrap_or_default();
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let col = String::from_utf8_lossy(source.get(line_start..offset).unwrap_or_default())
            .chars()
            .count()
            + 1;
        Self {
            file: Arc::clone(file),
            line: u32::try_from(line).unwrap_or(u32::MAX),
            col: u32::try_from(col).unwrap_or(u32::MAX),
            source_line: String::from_utf8_lossy(text).into_owned(),
        }
    }
}

/// A config parse error.
///
/// `Display` prints exactly the text nats-server 2.9.10 prints after `nats-server: ` (lossy if
/// the text is not UTF-8; [`Error::message_bytes`] has the exact bytes). [`Error::render`] gives
/// a `file:line:col: message` diagnostic with the source line and a caret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: Vec<u8>,
    location: Option<Location>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: Vec<u8>, location: Option<Location>) -> Self {
        Self {
            kind,
            message,
            location,
        }
    }

    /// The kind of error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The reference's error text, byte for byte (it can contain non-UTF-8 bytes that came
    /// from the config, e.g. in a variable name).
    #[must_use]
    pub fn message_bytes(&self) -> &[u8] {
        &self.message
    }

    /// Where the problem is, when it is in a file (innermost include first).
    #[must_use]
    pub fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }

    /// A hint for the common mistakes behind some reference errors.
    #[must_use]
    pub fn help(&self) -> Option<&'static str> {
        let message = String::from_utf8_lossy(&self.message);
        let hints: [(&str, &str); 6] = [
            (
                "an array terminator \"]\", but got '\0'",
                "a number directly followed by `]` is read as a string: write `[1, 2, 3 ]` or `[1, 2, 3,]`",
            ),
            (
                "Unexpected EOF processing block.",
                "a block ends only at a `)` alone at the start of a line followed by LF (not CRLF)",
            ),
            (
                "All ISO8601 dates must be in full Zulu form.",
                "a value of digits and `-` must be a full date-time like 2024-01-31T00:00:00Z; quote other text",
            ),
            (
                "Invalid escape character",
                "write `\\\\` for a backslash, or use single quotes for raw text",
            ),
            (
                "can not be found",
                "define the variable earlier in this or an enclosing block, or set the environment variable",
            ),
            (
                "include cycle detected",
                "a file must not include itself, directly or through other files",
            ),
        ];
        hints
            .iter()
            .find(|(pattern, _)| message.contains(pattern))
            .map(|(_, hint)| *hint)
    }

    /// A human-oriented diagnostic: `file:line:col: message`, then the source line and a caret
    /// under the offending column. Without a location it is just the message.
    #[must_use]
    pub fn render(&self) -> String {
        let message = String::from_utf8_lossy(&self.message);
        let Some(loc) = &self.location else {
            return match self.help() {
                Some(help) => format!("{message}\nhelp: {help}\n"),
                None => format!("{message}\n"),
            };
        };
        // Long lines are shown as a window of at most WINDOW characters around the column.
        const WINDOW: usize = 100;
        let chars: Vec<char> = loc.source_line.chars().collect();
        let col_index = (loc.col.saturating_sub(1) as usize).min(chars.len());
        let first = col_index.saturating_sub(WINDOW / 2);
        let last = (first + WINDOW).min(chars.len());
        let shown = chars.get(first..last).unwrap_or_default();
        let ellipsis = if first > 0 { "…" } else { "" };
        let mut caret_pad: String = ellipsis.chars().map(|_| ' ').collect();
        caret_pad.extend(
            shown
                .iter()
                .take(col_index - first)
                .map(|&c| if c == '\t' { '\t' } else { ' ' }),
        );
        let mut visible_line = ellipsis.to_owned();
        visible_line.extend(shown.iter().map(|&c| {
            if c.is_control() && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        }));
        let mut out = format!(
            "{}:{}:{}: {message}\n{visible_line}\n{caret_pad}^\n",
            loc.file, loc.line, loc.col
        );
        if let Some(help) = self.help() {
            out.push_str("help: ");
            out.push_str(help);
            out.push('\n');
        }
        out
    }

    pub(crate) fn with_prefix(mut self, kind: ErrorKind, prefix: &[u8]) -> Self {
        let mut message = prefix.to_vec();
        message.extend_from_slice(&self.message);
        self.message = message;
        if self.kind != ErrorKind::Limit {
            self.kind = kind;
        }
        self
    }

    pub(crate) fn or_location(mut self, location: impl FnOnce() -> Location) -> Self {
        if self.location.is_none() {
            self.location = Some(location());
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.message))
    }
}

impl std::error::Error for Error {}
