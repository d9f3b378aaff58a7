//! The lexer: a pull state machine that mirrors the reference lexer (`conf/lex.go` of
//! nats-server 2.9.10) state by state, error texts and token positions included.
//!
//! The reference language is not a context-free grammar: its rules depend on a stack of
//! return states, on one-character backups that move the line counter but not the line start,
//! and on treating a NUL byte as end of input while still consuming it. Those effects decide
//! error texts, line numbers and token positions, so the states are kept one-to-one with the
//! reference instead of being re-derived as combinators. The long uninterrupted runs (comment
//! bodies, unquoted and quoted string bodies, block bodies) are scanned with nom's complete
//! `take_till`, which is where all the bytes of a typical file go.

use std::borrow::Cow;
use std::collections::VecDeque;

use nom::bytes::complete::take_till;

use crate::go::{decode_rune, is_digit, is_space, lower_eq};

/// End of input, as the reference models it (a NUL byte reads the same).
const EOF: char = '\0';

/// The kinds of items the lexer produces (`itemType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemType {
    Error,
    Eof,
    Key,
    Text,
    String,
    Bool,
    Integer,
    Float,
    Datetime,
    ArrayStart,
    ArrayEnd,
    MapStart,
    MapEnd,
    CommentStart,
    Variable,
    Include,
}

/// One lexer item.
#[derive(Debug, Clone)]
pub(crate) struct Item<'a> {
    pub(crate) typ: ItemType,
    /// The value (after escapes), or the message for `Error`.
    pub(crate) val: Cow<'a, [u8]>,
    /// 1 + the number of LFs consumed when the item was emitted.
    pub(crate) line: u32,
    /// The reference's position number (`pos` in `conf/lex.go`; docs/dump-config.md).
    pub(crate) pos: i64,
    /// Byte offset where the item's source starts (for diagnostics only).
    pub(crate) offset: usize,
}

/// Lexer states (`stateFn`s of the reference).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Top,
    TopValueEnd,
    KeyStart,
    DubQuotedKey,
    QuotedKey,
    IncludeStart,
    IncludeQuotedString,
    IncludeDubQuotedString,
    IncludeString,
    Include,
    Key,
    KeyEnd,
    Value,
    ArrayValue,
    ArrayValueEnd,
    ArrayEnd,
    MapKeyStart,
    MapQuotedKey,
    MapDubQuotedKey,
    MapKey,
    MapKeyEnd,
    MapValue,
    MapValueEnd,
    MapEnd,
    QuotedString,
    DubQuotedString,
    String,
    Block,
    StringEscape,
    StringBinary,
    NumberStart,
    Number,
    ConvenientNumber,
    DateAfterYear,
    NegNumberStart,
    NegNumber,
    FloatStart,
    Float,
    IpAddr,
    CommentStart,
    Comment,
}

/// The lexer over one input.
#[derive(Debug)]
pub(crate) struct Lexer<'a> {
    input: &'a [u8],
    start: usize,
    pos: usize,
    width: usize,
    line: u32,
    state: Option<St>,
    items: VecDeque<Item<'a>>,
    stack: Vec<St>,
    /// The joined string parts of the reference (`stringParts`).
    parts: Vec<u8>,
    /// Whether any string part was added (a part may be empty).
    has_parts: bool,
    string_state: St,
    lstart: usize,
    ilstart: usize,
    /// Whether the last cursor move was a backup (then the offending character is at `pos`).
    backed_up: bool,
}

fn is_whitespace(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_nl(c: char) -> bool {
    c == '\n' || c == '\r'
}

fn is_key_separator(c: char) -> bool {
    c == '=' || c == ':'
}

fn is_number_suffix(c: char) -> bool {
    matches!(
        c,
        'k' | 'K' | 'm' | 'M' | 'g' | 'G' | 't' | 'T' | 'p' | 'P' | 'e' | 'E'
    )
}

/// How a character is quoted in messages (`escapeSpecial` plus `%v`).
fn quote_char(c: char, out: &mut Vec<u8>) {
    if c == '\n' {
        out.extend_from_slice(b"\\n");
    } else {
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
}

/// Builds a message from literal pieces and quoted characters.
fn msg(pieces: &[Piece<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.extend_from_slice(text.as_bytes()),
            Piece::Char(c) => quote_char(*c, &mut out),
            Piece::Bytes(bytes) => out.extend_from_slice(bytes),
        }
    }
    out
}

enum Piece<'b> {
    Text(&'b str),
    Char(char),
    Bytes(&'b [u8]),
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self {
            input,
            start: 0,
            pos: 0,
            width: 0,
            line: 1,
            state: Some(St::Top),
            items: VecDeque::new(),
            stack: Vec::new(),
            parts: Vec::new(),
            has_parts: false,
            string_state: St::String,
            lstart: 0,
            ilstart: 0,
            backed_up: false,
        }
    }

    /// The next item. After an `Error` or `Eof` item the lexer keeps returning `Eof`.
    pub(crate) fn next_item(&mut self) -> Item<'a> {
        loop {
            if let Some(item) = self.items.pop_front() {
                return item;
            }
            match self.state {
                Some(state) => self.state = self.step(state),
                None => {
                    return Item {
                        typ: ItemType::Eof,
                        val: Cow::Borrowed(&[]),
                        line: self.line,
                        pos: 0,
                        offset: self.pos,
                    };
                }
            }
        }
    }

    /// Byte offset of the last consumed character (for diagnostics).
    pub(crate) fn error_offset(&self) -> usize {
        if self.backed_up {
            self.pos
        } else {
            self.pos.saturating_sub(self.width)
        }
    }

    fn slice(&self, from: usize, to: usize) -> &'a [u8] {
        self.input.get(from..to).unwrap_or_default()
    }

    fn next(&mut self) -> char {
        self.backed_up = false;
        let Some(rest) = self.input.get(self.pos..).filter(|rest| !rest.is_empty()) else {
            self.width = 0;
            return EOF;
        };
        if rest.first() == Some(&b'\n') {
            self.line += 1;
            self.lstart = self.pos;
        }
        let (c, width) = decode_rune(rest);
        self.width = width;
        self.pos += width;
        c
    }

    fn backup(&mut self) {
        self.backed_up = true;
        self.pos = self.pos.saturating_sub(self.width);
        if self.input.get(self.pos) == Some(&b'\n') {
            self.line = self.line.saturating_sub(1);
        }
    }

    fn peek(&mut self) -> char {
        let c = self.next();
        self.backup();
        c
    }

    fn ignore(&mut self) {
        self.start = self.pos;
        self.ilstart = self.lstart;
    }

    fn push(&mut self, state: St) {
        self.stack.push(state);
    }

    fn pop(&mut self) -> Option<St> {
        match self.stack.pop() {
            Some(state) => Some(state),
            None => self.errorf(msg(&[Piece::Text("BUG in lexer: no states to pop.")])),
        }
    }

    fn current_value(&self) -> Cow<'a, [u8]> {
        let tail = self.slice(self.start, self.pos);
        if self.parts.is_empty() {
            Cow::Borrowed(tail)
        } else {
            let mut val = self.parts.clone();
            val.extend_from_slice(tail);
            Cow::Owned(val)
        }
    }

    fn push_item(&mut self, typ: ItemType, val: Cow<'a, [u8]>) {
        let len = i64::try_from(val.len()).unwrap_or(i64::MAX);
        let pos = i64::try_from(self.pos).unwrap_or(i64::MAX)
            - i64::try_from(self.ilstart).unwrap_or(i64::MAX)
            - len;
        self.items.push_back(Item {
            typ,
            val,
            line: self.line,
            pos,
            offset: self.start,
        });
        self.start = self.pos;
        self.ilstart = self.lstart;
    }

    fn emit(&mut self, typ: ItemType) {
        let val = self.current_value();
        self.push_item(typ, val);
    }

    fn emit_string(&mut self) {
        let val = self.current_value();
        self.parts.clear();
        self.has_parts = false;
        self.push_item(ItemType::String, val);
    }

    fn add_current_string_part(&mut self, offset: usize) {
        let part = self.slice(self.start, self.pos.saturating_sub(offset));
        self.parts.extend_from_slice(part);
        self.has_parts = true;
        self.start = self.pos;
    }

    fn add_string_part(&mut self, part: &[u8]) -> Option<St> {
        self.parts.extend_from_slice(part);
        self.has_parts = true;
        self.start = self.pos;
        Some(self.string_state)
    }

    /// Emits an error item and stops (`errorf`).
    fn errorf(&mut self, message: Vec<u8>) -> Option<St> {
        self.items.push_back(Item {
            typ: ItemType::Error,
            val: Cow::Owned(message),
            line: self.line,
            pos: 0,
            offset: self.error_offset(),
        });
        None
    }

    /// Skips a run of bytes none of which is in `stops` (all ASCII, never LF), which the state
    /// machine would consume one character at a time without any other effect.
    fn skip_run(&mut self, stops: &[u8]) {
        self.skip_while(|b| !stops.contains(&b));
    }

    /// Skips bytes while `keep` holds; `keep` must be false for LF and for every byte that the
    /// state would treat specially (including non-ASCII bytes where Unicode classes matter).
    fn skip_while(&mut self, keep: impl Fn(u8) -> bool) {
        let rest = self.input.get(self.pos..).unwrap_or_default();
        let res: nom::IResult<&[u8], &[u8]> = take_till(|b: u8| !keep(b))(rest);
        if let Ok((_, run)) = res {
            self.pos += run.len();
        }
    }

    /// Skips a run of blanks (space, TAB) and, when `ignore` is set, discards them as the
    /// states that step over blanks one at a time would (no LF is crossed, so the line and
    /// line start are unchanged).
    fn skip_blanks(&mut self, ignore: bool) {
        let before = self.pos;
        self.skip_while(|b| b == b' ' || b == b'\t');
        if ignore && self.pos != before {
            self.ignore();
        }
    }

    /// Bytes that are plainly part of a bare key: ASCII, not a space, separator or NUL.
    fn plain_key_byte(b: u8) -> bool {
        b.is_ascii() && !b.is_ascii_whitespace() && b != 0x0b && b != b'=' && b != b':' && b != 0
    }

    fn step(&mut self, state: St) -> Option<St> {
        match state {
            St::Top => self.lex_top(),
            St::TopValueEnd => self.lex_top_value_end(),
            St::KeyStart => self.lex_key_start(),
            St::DubQuotedKey => self.lex_quoted_key('"'),
            St::QuotedKey => self.lex_quoted_key('\''),
            St::IncludeStart => self.lex_include_start(),
            St::IncludeQuotedString => self.lex_include_quoted('\''),
            St::IncludeDubQuotedString => self.lex_include_quoted('"'),
            St::IncludeString => self.lex_include_string(),
            St::Include => self.lex_include(),
            St::Key => self.lex_key(),
            St::KeyEnd => self.lex_key_end(),
            St::Value => self.lex_value(),
            St::ArrayValue => self.lex_array_value(),
            St::ArrayValueEnd => self.lex_array_value_end(),
            St::ArrayEnd => {
                self.ignore();
                self.emit(ItemType::ArrayEnd);
                self.pop()
            }
            St::MapKeyStart => self.lex_map_key_start(),
            St::MapQuotedKey => self.lex_map_quoted_key('\''),
            St::MapDubQuotedKey => self.lex_map_quoted_key('"'),
            St::MapKey => self.lex_map_key(),
            St::MapKeyEnd => self.lex_map_key_end(),
            St::MapValue => self.lex_map_value(),
            St::MapValueEnd => self.lex_map_value_end(),
            St::MapEnd => {
                self.ignore();
                self.emit(ItemType::MapEnd);
                self.pop()
            }
            St::QuotedString => self.lex_quoted_string(),
            St::DubQuotedString => self.lex_dub_quoted_string(),
            St::String => self.lex_string(),
            St::Block => self.lex_block(),
            St::StringEscape => self.lex_string_escape(),
            St::StringBinary => self.lex_string_binary(),
            St::NumberStart => self.lex_number_start(),
            St::Number => self.lex_number(),
            St::ConvenientNumber => self.lex_convenient_number(),
            St::DateAfterYear => self.lex_date_after_year(),
            St::NegNumberStart => self.lex_number_start_neg(),
            St::NegNumber => self.lex_neg_number(),
            St::FloatStart => self.lex_float_start(),
            St::Float => self.lex_float(),
            St::IpAddr => self.lex_ip_addr(),
            St::CommentStart => {
                self.ignore();
                self.emit(ItemType::CommentStart);
                Some(St::Comment)
            }
            St::Comment => self.lex_comment(),
        }
    }

    /// The end-of-input case shared by several states.
    fn eof_or_error(&mut self) -> Option<St> {
        if self.pos > self.start {
            return self.errorf(msg(&[Piece::Text("Unexpected EOF.")]));
        }
        self.emit(ItemType::Eof);
        None
    }

    fn lex_top(&mut self) -> Option<St> {
        self.skip_blanks(true);
        let r = self.next();
        if is_space(r) {
            self.ignore();
            return Some(St::Top);
        }
        match r {
            '{' => {
                self.ignore();
                return Some(St::Top);
            }
            '#' => {
                self.push(St::Top);
                return Some(St::CommentStart);
            }
            '/' => {
                if self.next() == '/' {
                    self.push(St::Top);
                    return Some(St::CommentStart);
                }
                self.backup();
                return self.eof_or_error();
            }
            EOF => return self.eof_or_error(),
            _ => {}
        }
        self.backup();
        self.push(St::TopValueEnd);
        Some(St::KeyStart)
    }

    fn lex_top_value_end(&mut self) -> Option<St> {
        self.skip_blanks(false);
        let r = self.next();
        if r == '#' {
            self.push(St::Top);
            return Some(St::CommentStart);
        }
        if r == '/' {
            if self.next() == '/' {
                self.push(St::Top);
                return Some(St::CommentStart);
            }
            self.backup();
            return Some(St::TopValueEnd);
        }
        if is_whitespace(r) {
            return Some(St::TopValueEnd);
        }
        if is_nl(r) || r == EOF || r == ';' || r == ',' || r == '}' {
            self.ignore();
            return Some(St::Top);
        }
        self.errorf(msg(&[
            Piece::Text(
                "Expected a top-level value to end with a new line, comment or EOF, but got '",
            ),
            Piece::Char(r),
            Piece::Text("' instead."),
        ]))
    }

    fn lex_key_start(&mut self) -> Option<St> {
        let r = self.peek();
        if is_key_separator(r) {
            return self.errorf(msg(&[
                Piece::Text("Unexpected key separator '"),
                Piece::Char(r),
                Piece::Text("'"),
            ]));
        }
        if is_space(r) {
            self.next();
            self.ignore();
            return Some(St::KeyStart);
        }
        if r == '"' {
            self.next();
            self.ignore();
            return Some(St::DubQuotedKey);
        }
        if r == '\'' {
            self.next();
            self.ignore();
            return Some(St::QuotedKey);
        }
        self.ignore();
        self.next();
        Some(St::Key)
    }

    fn lex_quoted_key(&mut self, quote: char) -> Option<St> {
        self.skip_run(if quote == '"' { b"\"\0\n" } else { b"'\0\n" });
        let r = self.peek();
        if r == quote {
            self.emit(ItemType::Key);
            self.next();
            self.ignore();
            return Some(St::KeyEnd);
        }
        if r == EOF {
            return self.eof_or_error();
        }
        self.next();
        Some(if quote == '"' {
            St::DubQuotedKey
        } else {
            St::QuotedKey
        })
    }

    fn key_check_keyword(&mut self, fall_through: St, push: Option<St>) -> Option<St> {
        if lower_eq(self.slice(self.start, self.pos), "include") {
            self.ignore();
            if let Some(state) = push {
                self.push(state);
            }
            return Some(St::IncludeStart);
        }
        self.emit(ItemType::Key);
        Some(fall_through)
    }

    fn lex_include_start(&mut self) -> Option<St> {
        let r = self.next();
        if is_whitespace(r) {
            self.ignore();
            return Some(St::IncludeStart);
        }
        self.backup();
        Some(St::Include)
    }

    fn lex_include_quoted(&mut self, quote: char) -> Option<St> {
        let r = self.next();
        if r == quote {
            self.backup();
            self.emit(ItemType::Include);
            self.next();
            self.ignore();
            return self.pop();
        }
        if r == EOF {
            let text = if quote == '"' {
                "Unexpected EOF in double quoted include"
            } else {
                "Unexpected EOF in quoted include"
            };
            return self.errorf(msg(&[Piece::Text(text)]));
        }
        Some(if quote == '"' {
            St::IncludeDubQuotedString
        } else {
            St::IncludeQuotedString
        })
    }

    fn lex_include_string(&mut self) -> Option<St> {
        let r = self.next();
        if is_nl(r) || r == EOF || r == ';' || r == '}' || is_whitespace(r) {
            self.backup();
            self.emit(ItemType::Include);
            return self.pop();
        }
        if r == '\'' {
            self.backup();
            self.emit(ItemType::Include);
            self.next();
            self.ignore();
            return self.pop();
        }
        Some(St::IncludeString)
    }

    fn lex_include(&mut self) -> Option<St> {
        let r = self.next();
        let found = match r {
            '\'' => {
                self.ignore();
                return Some(St::IncludeQuotedString);
            }
            '"' => {
                self.ignore();
                return Some(St::IncludeDubQuotedString);
            }
            '[' => "start of an array",
            '{' => "start of a map",
            '(' => "start of a block",
            '\\' => "escape sequence",
            c if is_digit(c) || c == '-' => "start of a number",
            c if is_nl(c) => "new line",
            _ => {
                self.backup();
                return Some(St::IncludeString);
            }
        };
        self.errorf(msg(&[
            Piece::Text("Expected include value but found "),
            Piece::Text(found),
        ]))
    }

    fn lex_key(&mut self) -> Option<St> {
        self.skip_while(Self::plain_key_byte);
        let r = self.peek();
        if is_space(r) {
            return self.key_check_keyword(St::KeyEnd, None);
        }
        if is_key_separator(r) || r == EOF {
            self.emit(ItemType::Key);
            return Some(St::KeyEnd);
        }
        self.next();
        Some(St::Key)
    }

    fn lex_key_end(&mut self) -> Option<St> {
        self.skip_blanks(true);
        let r = self.next();
        if is_space(r) {
            self.ignore();
            return Some(St::KeyEnd);
        }
        if is_key_separator(r) {
            self.ignore();
            return Some(St::Value);
        }
        if r == EOF {
            self.emit(ItemType::Eof);
            return None;
        }
        self.backup();
        Some(St::Value)
    }

    fn lex_value(&mut self) -> Option<St> {
        self.skip_blanks(true);
        let r = self.next();
        if is_whitespace(r) {
            self.ignore();
            return Some(St::Value);
        }
        match r {
            '[' => {
                self.ignore();
                self.emit(ItemType::ArrayStart);
                Some(St::ArrayValue)
            }
            '{' => {
                self.ignore();
                self.emit(ItemType::MapStart);
                Some(St::MapKeyStart)
            }
            '\'' => {
                self.ignore();
                Some(St::QuotedString)
            }
            '"' => {
                self.ignore();
                self.string_state = St::DubQuotedString;
                Some(St::DubQuotedString)
            }
            '-' => Some(St::NegNumberStart),
            '(' => {
                self.ignore();
                Some(St::Block)
            }
            c if is_digit(c) => {
                self.backup();
                Some(St::NumberStart)
            }
            '.' => self.errorf(msg(&[Piece::Text("Floats must start with a digit")])),
            c if is_nl(c) => self.errorf(msg(&[Piece::Text("Expected value but found new line")])),
            _ => {
                self.backup();
                self.string_state = St::String;
                Some(St::String)
            }
        }
    }

    fn lex_array_value(&mut self) -> Option<St> {
        self.skip_blanks(true);
        let r = self.next();
        if is_space(r) {
            self.ignore();
            return Some(St::ArrayValue);
        }
        match r {
            '#' => {
                self.push(St::ArrayValue);
                return Some(St::CommentStart);
            }
            '/' => {
                if self.next() == '/' {
                    self.push(St::ArrayValue);
                    return Some(St::CommentStart);
                }
                self.backup();
                return self.errorf(msg(&[Piece::Text(
                    "Unexpected array value terminator ','.",
                )]));
            }
            ',' => {
                return self.errorf(msg(&[Piece::Text(
                    "Unexpected array value terminator ','.",
                )]));
            }
            ']' => return Some(St::ArrayEnd),
            _ => {}
        }
        self.backup();
        self.push(St::ArrayValueEnd);
        Some(St::Value)
    }

    fn lex_array_value_end(&mut self) -> Option<St> {
        self.skip_blanks(true);
        let r = self.next();
        if is_whitespace(r) {
            self.ignore();
            return Some(St::ArrayValueEnd);
        }
        match r {
            '#' => {
                self.push(St::ArrayValueEnd);
                return Some(St::CommentStart);
            }
            '/' => {
                if self.next() == '/' {
                    self.push(St::ArrayValueEnd);
                    return Some(St::CommentStart);
                }
                self.backup();
                self.ignore();
                return Some(St::ArrayValue);
            }
            ']' => return Some(St::ArrayEnd),
            c if c == ',' || is_nl(c) => {
                self.ignore();
                return Some(St::ArrayValue);
            }
            _ => {}
        }
        self.errorf(msg(&[
            Piece::Text(
                "Expected an array value terminator \",\" or an array terminator \"]\", but got '",
            ),
            Piece::Char(r),
            Piece::Text("' instead."),
        ]))
    }

    fn lex_map_key_start(&mut self) -> Option<St> {
        self.skip_blanks(true);
        let r = self.peek();
        if is_key_separator(r) {
            return self.errorf(msg(&[
                Piece::Text("Unexpected key separator '"),
                Piece::Char(r),
                Piece::Text("'."),
            ]));
        }
        if r == ']' {
            return self.errorf(msg(&[Piece::Text(
                "Unexpected array end ']' processing map.",
            )]));
        }
        if is_space(r) {
            self.next();
            self.ignore();
            return Some(St::MapKeyStart);
        }
        match r {
            '}' => {
                self.next();
                self.ignore();
                return Some(St::MapEnd);
            }
            '#' => {
                self.next();
                self.push(St::MapKeyStart);
                return Some(St::CommentStart);
            }
            '/' => {
                self.next();
                if self.next() == '/' {
                    self.push(St::MapKeyStart);
                    return Some(St::CommentStart);
                }
                self.backup();
            }
            '\'' => {
                self.next();
                self.ignore();
                return Some(St::MapQuotedKey);
            }
            '"' => {
                self.next();
                self.ignore();
                return Some(St::MapDubQuotedKey);
            }
            EOF => return self.errorf(msg(&[Piece::Text("Unexpected EOF processing map.")])),
            _ => {}
        }
        self.ignore();
        self.next();
        Some(St::MapKey)
    }

    fn lex_map_quoted_key(&mut self, quote: char) -> Option<St> {
        self.skip_run(if quote == '"' { b"\"\0\n" } else { b"'\0\n" });
        let r = self.peek();
        if r == EOF {
            let text = if quote == '"' {
                "Unexpected EOF processing double quoted map key."
            } else {
                "Unexpected EOF processing quoted map key."
            };
            return self.errorf(msg(&[Piece::Text(text)]));
        }
        if r == quote {
            self.emit(ItemType::Key);
            self.next();
            self.ignore();
            return Some(St::MapKeyEnd);
        }
        self.next();
        Some(if quote == '"' {
            St::MapDubQuotedKey
        } else {
            St::MapQuotedKey
        })
    }

    fn lex_map_key(&mut self) -> Option<St> {
        self.skip_while(Self::plain_key_byte);
        let r = self.peek();
        if r == EOF {
            return self.errorf(msg(&[Piece::Text("Unexpected EOF processing map key.")]));
        }
        if is_space(r) {
            return self.key_check_keyword(St::MapKeyEnd, Some(St::MapValueEnd));
        }
        if is_key_separator(r) {
            self.emit(ItemType::Key);
            return Some(St::MapKeyEnd);
        }
        self.next();
        Some(St::MapKey)
    }

    fn lex_map_key_end(&mut self) -> Option<St> {
        self.skip_blanks(true);
        let r = self.next();
        if is_space(r) {
            self.ignore();
            return Some(St::MapKeyEnd);
        }
        if is_key_separator(r) {
            self.ignore();
            return Some(St::MapValue);
        }
        self.backup();
        Some(St::MapValue)
    }

    fn lex_map_value(&mut self) -> Option<St> {
        self.skip_blanks(true);
        let r = self.next();
        if is_space(r) {
            self.ignore();
            return Some(St::MapValue);
        }
        if r == ',' {
            return self.errorf(msg(&[Piece::Text(
                "Unexpected map value terminator \",\".",
            )]));
        }
        if r == '}' {
            self.ignore();
            return Some(St::MapEnd);
        }
        self.backup();
        self.push(St::MapValueEnd);
        Some(St::Value)
    }

    fn lex_map_value_end(&mut self) -> Option<St> {
        self.skip_blanks(true);
        let r = self.next();
        if is_whitespace(r) {
            self.ignore();
            return Some(St::MapValueEnd);
        }
        match r {
            '#' => {
                self.push(St::MapValueEnd);
                return Some(St::CommentStart);
            }
            '/' => {
                if self.next() == '/' {
                    self.push(St::MapValueEnd);
                    return Some(St::CommentStart);
                }
                self.backup();
                self.ignore();
                return Some(St::MapKeyStart);
            }
            '}' => {
                self.ignore();
                return Some(St::MapEnd);
            }
            c if c == ';' || c == ',' || is_nl(c) => {
                self.ignore();
                return Some(St::MapKeyStart);
            }
            _ => {}
        }
        self.errorf(msg(&[
            Piece::Text(
                "Expected a map value terminator \",\" or a map terminator \"}\", but got '",
            ),
            Piece::Char(r),
            Piece::Text("' instead."),
        ]))
    }

    fn lex_quoted_string(&mut self) -> Option<St> {
        self.skip_run(b"'\0\n");
        let r = self.next();
        if r == '\'' {
            self.backup();
            self.emit(ItemType::String);
            self.next();
            self.ignore();
            return self.pop();
        }
        if r == EOF {
            return self.eof_or_error();
        }
        Some(St::QuotedString)
    }

    fn lex_dub_quoted_string(&mut self) -> Option<St> {
        self.skip_run(b"\\\"\0\n");
        let r = self.next();
        if r == '\\' {
            self.add_current_string_part(1);
            return Some(St::StringEscape);
        }
        if r == '"' {
            self.backup();
            self.emit_string();
            self.next();
            self.ignore();
            return self.pop();
        }
        if r == EOF {
            return self.eof_or_error();
        }
        Some(St::DubQuotedString)
    }

    /// Whether the raw text of the current unquoted string is a boolean word.
    fn is_bool(&self) -> bool {
        let text = self.slice(self.start, self.pos);
        ["true", "false", "on", "off", "yes", "no"]
            .iter()
            .any(|word| lower_eq(text, word))
    }

    fn lex_string(&mut self) -> Option<St> {
        self.skip_run(b"\\\n\r\0;,]} \t'");
        let r = self.next();
        if r == '\\' {
            self.add_current_string_part(1);
            return Some(St::StringEscape);
        }
        if is_nl(r) || r == EOF || r == ';' || r == ',' || r == ']' || r == '}' || is_whitespace(r)
        {
            self.backup();
            if self.has_parts {
                self.emit_string();
            } else if self.is_bool() {
                self.emit(ItemType::Bool);
            } else if self.input.get(self.start) == Some(&b'$') {
                self.start += 1;
                self.emit(ItemType::Variable);
            } else {
                self.emit_string();
            }
            return self.pop();
        }
        if r == '\'' {
            self.backup();
            self.emit_string();
            self.next();
            self.ignore();
            return self.pop();
        }
        Some(St::String)
    }

    fn lex_block(&mut self) -> Option<St> {
        self.skip_run(b")\0\n");
        let r = self.next();
        if r == ')' {
            self.backup();
            self.backup();
            if self.next() != '\n' {
                self.next();
                return Some(St::Block);
            }
            self.next();
            let after = self.next();
            if after == '\n' || after == EOF {
                self.backup();
                self.backup();
                self.emit(ItemType::String);
                self.next();
                self.ignore();
                return self.pop();
            }
            self.backup();
        } else if r == EOF {
            return self.errorf(msg(&[Piece::Text("Unexpected EOF processing block.")]));
        }
        Some(St::Block)
    }

    fn lex_string_escape(&mut self) -> Option<St> {
        let r = self.next();
        match r {
            'x' => Some(St::StringBinary),
            't' => self.add_string_part(b"\t"),
            'n' => self.add_string_part(b"\n"),
            'r' => self.add_string_part(b"\r"),
            '"' => self.add_string_part(b"\""),
            '\\' => self.add_string_part(b"\\"),
            _ => self.errorf(msg(&[
                Piece::Text("Invalid escape character '"),
                Piece::Char(r),
                Piece::Text(
                    "'. Only the following escape characters are allowed: \\xXX, \\t, \\n, \\r, \\\", \\\\.",
                ),
            ])),
        }
    }

    fn lex_string_binary(&mut self) -> Option<St> {
        const EOL: &str = "Expected two hexadecimal digits after '\\x', but hit end of line";
        if is_nl(self.next()) || is_nl(self.next()) {
            return self.errorf(msg(&[Piece::Text(EOL)]));
        }
        let digits = self.slice(self.pos.saturating_sub(2), self.pos);
        let value = match digits {
            [high, low] => match (hex_value(*high), hex_value(*low)) {
                (Some(high), Some(low)) => Some(high * 16 + low),
                _ => None,
            },
            _ => None,
        };
        match value {
            Some(byte) => self.add_string_part(&[byte]),
            None => self.errorf(msg(&[
                Piece::Text("Expected two hexadecimal digits after '\\x', but got '"),
                Piece::Bytes(digits),
                Piece::Text("'"),
            ])),
        }
    }

    fn digit_error(&mut self, r: char) -> Option<St> {
        if r == '.' {
            return self.errorf(msg(&[Piece::Text(
                "Floats must start with a digit, not '.'.",
            )]));
        }
        self.errorf(msg(&[
            Piece::Text("Expected a digit but got '"),
            Piece::Char(r),
            Piece::Text("'."),
        ]))
    }

    fn lex_number_start(&mut self) -> Option<St> {
        let r = self.next();
        if !is_digit(r) {
            return self.digit_error(r);
        }
        Some(St::Number)
    }

    fn lex_number_start_neg(&mut self) -> Option<St> {
        let r = self.next();
        if !is_digit(r) {
            return self.digit_error(r);
        }
        Some(St::NegNumber)
    }

    fn ends_integer(r: char) -> bool {
        is_nl(r) || r == EOF || r == '}' || r == ';' || r == ',' || is_whitespace(r)
    }

    fn lex_number(&mut self) -> Option<St> {
        if self.pos - self.start >= 5 {
            self.skip_while(|b| b.is_ascii_digit());
        }
        let r = self.next();
        if r == '-' {
            if self.pos - self.start != 5 {
                return self.errorf(msg(&[Piece::Text(
                    "All ISO8601 dates must be in full Zulu form.",
                )]));
            }
            return Some(St::DateAfterYear);
        }
        if is_digit(r) {
            return Some(St::Number);
        }
        if r == '.' {
            return Some(St::FloatStart);
        }
        if is_number_suffix(r) {
            return Some(St::ConvenientNumber);
        }
        if !Self::ends_integer(r) {
            self.string_state = St::String;
            return Some(St::String);
        }
        self.backup();
        self.emit(ItemType::Integer);
        self.pop()
    }

    fn lex_convenient_number(&mut self) -> Option<St> {
        let r = self.next();
        if matches!(r, 'b' | 'B' | 'i' | 'I') {
            return Some(St::ConvenientNumber);
        }
        self.backup();
        if Self::ends_integer(r) || is_digit(r) {
            self.emit(ItemType::Integer);
            return self.pop();
        }
        self.string_state = St::String;
        Some(St::String)
    }

    fn lex_date_after_year(&mut self) -> Option<St> {
        const FORMAT: &[char] = &[
            '0', '0', '-', '0', '0', 'T', '0', '0', ':', '0', '0', ':', '0', '0', 'Z',
        ];
        for &expected in FORMAT {
            let r = self.next();
            if expected == '0' {
                if !is_digit(r) {
                    return self.errorf(msg(&[
                        Piece::Text("Expected digit in ISO8601 datetime, but found '"),
                        Piece::Char(r),
                        Piece::Text("' instead."),
                    ]));
                }
            } else if expected != r {
                return self.errorf(msg(&[
                    Piece::Text("Expected '"),
                    Piece::Char(expected),
                    Piece::Text("' in ISO8601 datetime, but found '"),
                    Piece::Char(r),
                    Piece::Text("' instead."),
                ]));
            }
        }
        self.emit(ItemType::Datetime);
        self.pop()
    }

    fn lex_neg_number(&mut self) -> Option<St> {
        let r = self.next();
        if is_digit(r) {
            return Some(St::NegNumber);
        }
        if r == '.' {
            return Some(St::FloatStart);
        }
        if is_number_suffix(r) {
            return Some(St::ConvenientNumber);
        }
        self.backup();
        self.emit(ItemType::Integer);
        self.pop()
    }

    fn lex_float_start(&mut self) -> Option<St> {
        let r = self.next();
        if !is_digit(r) {
            return self.errorf(msg(&[
                Piece::Text("Floats must have a digit after the '.', but got '"),
                Piece::Char(r),
                Piece::Text("' instead."),
            ]));
        }
        Some(St::Float)
    }

    fn lex_float(&mut self) -> Option<St> {
        let r = self.next();
        if is_digit(r) {
            return Some(St::Float);
        }
        if r == '.' {
            return Some(St::IpAddr);
        }
        self.backup();
        self.emit(ItemType::Float);
        self.pop()
    }

    fn lex_ip_addr(&mut self) -> Option<St> {
        let r = self.next();
        if is_digit(r) || r == '.' || r == ':' || r == '-' {
            return Some(St::IpAddr);
        }
        self.backup();
        self.emit(ItemType::String);
        self.pop()
    }

    fn lex_comment(&mut self) -> Option<St> {
        self.skip_run(b"\n\r\0");
        let r = self.peek();
        if is_nl(r) || r == EOF {
            self.emit(ItemType::Text);
            return self.pop();
        }
        self.next();
        Some(St::Comment)
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lexes `input` and renders the items as `Type:value@line:pos`, stopping after an error.
    fn check(input: &str, expect: &[&str]) {
        let mut lexer = Lexer::new(input.as_bytes());
        let mut got = Vec::new();
        loop {
            let item = lexer.next_item();
            if matches!(item.typ, ItemType::CommentStart | ItemType::Text) {
                continue;
            }
            got.push(format!(
                "{:?}:{}@{}:{}",
                item.typ,
                String::from_utf8_lossy(&item.val),
                item.line,
                item.pos
            ));
            if matches!(item.typ, ItemType::Eof | ItemType::Error) {
                break;
            }
        }
        assert_eq!(got, expect, "input {input:?}");
    }

    #[test]
    fn simple_entry() {
        check(
            "port = 4222",
            &["Key:port@1:0", "Integer:4222@1:7", "Eof:@1:11"],
        );
    }

    #[test]
    fn array_integer_quirk() {
        check(
            "a = [1, 2]\n",
            &[
                "Key:a@1:0",
                "ArrayStart:@1:5",
                "Integer:1@1:5",
                "String:2]@1:8",
                "String:@2:1",
                "Error:Expected an array value terminator \",\" or an array terminator \"]\", but got '\0' instead.@2:0",
            ],
        );
    }

    #[test]
    fn escapes_and_positions() {
        check(
            "\n\nn = [ \"ab\\tc\", x\\x41y, 7 ]",
            &[
                "Key:n@3:1",
                "ArrayStart:@3:6",
                "String:ab\tc@3:9",
                "String:xAy@3:19",
                "Integer:7@3:24",
                "ArrayEnd:@3:27",
                "Eof:@3:27",
            ],
        );
    }

    #[test]
    fn block_keeps_paren_at_eof() {
        check(
            "b = (\nx\n)",
            &["Key:b@1:0", "String:\nx\n)@3:5", "Eof:@3:2"],
        );
    }

    #[test]
    fn errors() {
        check(
            "a = 5.\n",
            &[
                "Key:a@1:0",
                "Error:Floats must have a digit after the '.', but got '\\n' instead.@2:0",
            ],
        );
        check("=", &["Error:Unexpected key separator '='@1:0"]);
        check("/", &["Error:Unexpected EOF.@1:0"]);
    }
}
