//! The parser: consumes lexer items in order and builds the value tree with the reference's
//! container stack and separate key stack (`conf/parse.go` of nats-server 2.9.10).
//!
//! Every item is acted on as soon as it is produced, so an include is read and a `$variable`
//! resolved before the lexer looks further, exactly as in the reference. Item texts that have
//! their own small grammar (integers with suffixes, date-times) are converted with nom parsers
//! in complete mode.

use std::sync::Arc;

use nom::Parser as _;
use nom::bytes::complete::{tag, take};
use nom::combinator::{all_consuming, map_res};

use crate::error::{Error, ErrorKind, Location};
use crate::go;
use crate::lexer::{Item, ItemType, Lexer};
use crate::value::{Map, Node, Pos, Value};
use crate::{Env, Limits, Loader};

/// State shared by a parse and all its includes and environment sub-parses.
pub(crate) struct Session<'a> {
    pub(crate) env: &'a dyn Env,
    pub(crate) loader: &'a dyn Loader,
    pub(crate) limits: Limits,
    values_left: u64,
    string_bytes_left: u64,
    input_bytes_left: u64,
    sources_left: u64,
    include_chain: Vec<Vec<u8>>,
    env_chain: Vec<Vec<u8>>,
}

impl<'a> Session<'a> {
    pub(crate) fn new(env: &'a dyn Env, loader: &'a dyn Loader, limits: Limits) -> Self {
        Self {
            env,
            loader,
            limits,
            values_left: limits.max_values,
            string_bytes_left: limits.max_string_bytes,
            input_bytes_left: limits.max_input_bytes,
            sources_left: limits.max_sources,
            include_chain: Vec::new(),
            env_chain: Vec::new(),
        }
    }

    fn limit_error(text: String) -> Error {
        Error::new(ErrorKind::Limit, text.into_bytes(), None)
    }

    fn charge_input(&mut self, len: usize) -> Result<(), Error> {
        if self.sources_left == 0 {
            return Err(Self::limit_error(format!(
                "config parses more than {} files and environment values",
                self.limits.max_sources
            )));
        }
        self.sources_left -= 1;
        let len = u64::try_from(len).unwrap_or(u64::MAX);
        if len > self.input_bytes_left {
            return Err(Self::limit_error(format!(
                "config input exceeds the limit of {} bytes",
                self.limits.max_input_bytes
            )));
        }
        self.input_bytes_left -= len;
        Ok(())
    }

    fn charge_values(&mut self, count: u64, string_bytes: u64) -> Result<(), Error> {
        if count > self.values_left {
            return Err(Self::limit_error(format!(
                "config exceeds the limit of {} values",
                self.limits.max_values
            )));
        }
        if string_bytes > self.string_bytes_left {
            return Err(Self::limit_error(format!(
                "config exceeds the limit of {} bytes of strings",
                self.limits.max_string_bytes
            )));
        }
        self.values_left -= count;
        self.string_bytes_left -= string_bytes;
        Ok(())
    }

    /// Parses one source. `file` is the path as nats-server names it (empty for an
    /// environment value); `base_depth` is the nesting depth at which its values will live.
    pub(crate) fn parse_source(
        &mut self,
        source: &[u8],
        file: &[u8],
        pedantic: bool,
        base_depth: usize,
    ) -> Result<Map, Error> {
        self.charge_input(source.len())?;
        let file_name: Arc<str> = Arc::from(String::from_utf8_lossy(file).as_ref());
        let mut parser = Parser {
            lexer: Lexer::new(source),
            source,
            file: file_name,
            dir: go::dir(file),
            pedantic,
            ctxs: vec![Ctx::Map(Map::new())],
            keys: Vec::new(),
            base_depth,
            session: self,
        };
        parser.run()
    }

    /// Reads and parses a file (`ParseFile` / `ParseFileWithChecks`).
    pub(crate) fn parse_file(
        &mut self,
        path: &[u8],
        pedantic: bool,
        base_depth: usize,
    ) -> Result<Map, Error> {
        let identity = self.loader.identity(path);
        if self.include_chain.contains(&identity) {
            return Err(Error::new(
                ErrorKind::Limit,
                b"include cycle detected".to_vec(),
                None,
            ));
        }
        if self.include_chain.len() > self.limits.max_include_depth {
            return Err(Self::limit_error(format!(
                "include nesting exceeds the limit of {} files",
                self.limits.max_include_depth
            )));
        }
        let data = match self.loader.read(path) {
            Ok(data) => data,
            Err(os_error) => {
                let mut message = Vec::new();
                if !pedantic {
                    message.extend_from_slice(b"error opening config file: ");
                }
                message.extend_from_slice(&os_error);
                return Err(Error::new(ErrorKind::Read, message, None));
            }
        };
        self.include_chain.push(identity);
        let res = self.parse_source(&data, path, pedantic, base_depth);
        self.include_chain.pop();
        res
    }
}

/// An open container.
enum Ctx {
    Map(Map),
    Array(Vec<Node>),
}

/// A pending key with its item position.
struct PendingKey {
    key: Vec<u8>,
    line: u32,
    pos: i64,
}

struct Parser<'s, 'a, 'src> {
    lexer: Lexer<'src>,
    source: &'src [u8],
    file: Arc<str>,
    dir: Vec<u8>,
    pedantic: bool,
    ctxs: Vec<Ctx>,
    keys: Vec<PendingKey>,
    base_depth: usize,
    session: &'s mut Session<'a>,
}

/// The size of a value: number of nodes, string bytes and nesting height.
#[derive(Default, Clone, Copy)]
struct Measure {
    nodes: u64,
    string_bytes: u64,
    height: usize,
}

fn measure(value: &Value) -> Measure {
    match value {
        Value::Str(bytes) => Measure {
            nodes: 1,
            string_bytes: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
            height: 0,
        },
        Value::Array(items) => combine(items.iter().map(|node| measure(&node.value))),
        Value::Map(map) => combine(map.iter().map(|(key, node)| {
            let mut inner = measure(&node.value);
            inner.string_bytes = inner
                .string_bytes
                .saturating_add(u64::try_from(key.len()).unwrap_or(u64::MAX));
            inner
        })),
        _ => Measure {
            nodes: 1,
            string_bytes: 0,
            height: 0,
        },
    }
}

fn combine(children: impl Iterator<Item = Measure>) -> Measure {
    let mut total = Measure {
        nodes: 1,
        string_bytes: 0,
        height: 1,
    };
    for child in children {
        total.nodes = total.nodes.saturating_add(child.nodes);
        total.string_bytes = total.string_bytes.saturating_add(child.string_bytes);
        total.height = total.height.max(child.height + 1);
    }
    total
}

impl Parser<'_, '_, '_> {
    fn run(&mut self) -> Result<Map, Error> {
        loop {
            let item = self.lexer.next_item();
            if item.typ == ItemType::Eof {
                break;
            }
            self.process(item)?;
        }
        let first = self.ctxs.drain(..).next();
        match first {
            Some(Ctx::Map(map)) => Ok(map),
            _ => Err(self.internal("BUG in parser, context stack empty")),
        }
    }

    fn internal(&self, text: &str) -> Error {
        Error::new(ErrorKind::Syntax, text.as_bytes().to_vec(), None)
    }

    fn location(&self, offset: usize) -> Location {
        Location::at(&self.file, self.source, offset)
    }

    fn item_error(&self, kind: ErrorKind, item: &Item<'_>, message: Vec<u8>) -> Error {
        Error::new(kind, message, Some(self.location(item.offset)))
    }

    fn depth(&self) -> usize {
        self.base_depth + self.ctxs.len().saturating_sub(1)
    }

    fn node(&self, item: &Item<'_>, value: Value) -> Node {
        let pos = self.pedantic.then(|| Pos {
            file: Arc::clone(&self.file),
            line: item.line,
            pos: u32::try_from(item.pos.max(0)).unwrap_or(u32::MAX),
        });
        Node {
            value,
            pos,
            used_as_variable: false,
        }
    }

    /// Stores a value in the current container (`setValue`).
    fn set_value(&mut self, mut node: Node) -> Result<(), Error> {
        match self.ctxs.last_mut() {
            Some(Ctx::Array(items)) => {
                items.push(node);
                Ok(())
            }
            Some(Ctx::Map(_)) => {
                let Some(key) = self.keys.pop() else {
                    return Err(self.internal("BUG in parser, keys stack empty"));
                };
                if let Some(pos) = &mut node.pos {
                    pos.line = key.line;
                    pos.pos = u32::try_from(key.pos.max(0)).unwrap_or(u32::MAX);
                }
                if let Some(Ctx::Map(map)) = self.ctxs.last_mut() {
                    map.insert(key.key, node);
                }
                Ok(())
            }
            None => Err(self.internal("BUG in parser, context stack empty")),
        }
    }

    fn set_scalar(&mut self, item: &Item<'_>, value: Value) -> Result<(), Error> {
        let string_bytes = match &value {
            Value::Str(bytes) => u64::try_from(bytes.len()).unwrap_or(u64::MAX),
            _ => 0,
        };
        self.session
            .charge_values(1, string_bytes)
            .map_err(|e| e.or_location(|| self.location(item.offset)))?;
        let node = self.node(item, value);
        self.set_value(node)
    }

    fn open(&mut self, item: &Item<'_>, ctx: Ctx) -> Result<(), Error> {
        if self.depth() >= self.session.limits.max_depth {
            let message = format!(
                "Parse error on line {}: 'Maximum nesting depth of {} exceeded.'",
                item.line, self.session.limits.max_depth
            );
            return Err(self.item_error(ErrorKind::Limit, item, message.into_bytes()));
        }
        self.session
            .charge_values(1, 0)
            .map_err(|e| e.or_location(|| self.location(item.offset)))?;
        self.ctxs.push(ctx);
        Ok(())
    }

    fn close(&mut self, item: &Item<'_>) -> Result<(), Error> {
        if self.ctxs.len() < 2 {
            return Err(self.internal("BUG in parser, context stack empty"));
        }
        let value = match self.ctxs.pop() {
            Some(Ctx::Map(map)) => Value::Map(map),
            Some(Ctx::Array(items)) => Value::Array(items),
            None => return Err(self.internal("BUG in parser, context stack empty")),
        };
        let node = self.node(item, value);
        self.set_value(node)
    }

    fn process(&mut self, item: Item<'_>) -> Result<(), Error> {
        match item.typ {
            ItemType::Error => {
                let mut message = format!("Parse error on line {}: '", item.line).into_bytes();
                message.extend_from_slice(&item.val);
                message.push(b'\'');
                Err(self.item_error(ErrorKind::Syntax, &item, message))
            }
            ItemType::Key => {
                self.keys.push(PendingKey {
                    key: item.val.into_owned(),
                    line: item.line,
                    pos: item.pos,
                });
                Ok(())
            }
            ItemType::MapStart => self.open(&item, Ctx::Map(Map::new())),
            ItemType::ArrayStart => self.open(&item, Ctx::Array(Vec::new())),
            ItemType::MapEnd | ItemType::ArrayEnd => self.close(&item),
            ItemType::String => {
                let value = Value::Str(item.val.to_vec());
                self.set_scalar(&item, value)
            }
            ItemType::Integer => match convert_integer(&item.val) {
                Ok(Some(number)) => self.set_scalar(&item, Value::Int(number)),
                Ok(None) => Ok(()),
                Err(message) => Err(self.item_error(ErrorKind::Value, &item, message)),
            },
            ItemType::Float => match convert_float(&item.val) {
                Ok(number) => self.set_scalar(&item, Value::Float(number)),
                Err(message) => Err(self.item_error(ErrorKind::Value, &item, message)),
            },
            ItemType::Bool => {
                let value = ["true", "yes", "on"]
                    .iter()
                    .any(|word| go::lower_eq(&item.val, word));
                self.set_scalar(&item, Value::Bool(value))
            }
            ItemType::Datetime => match convert_datetime(&item.val) {
                Some(seconds) => self.set_scalar(&item, Value::Date(seconds)),
                None => {
                    let mut message = b"expected Zulu formatted DateTime, but got '".to_vec();
                    message.extend_from_slice(&item.val);
                    message.push(b'\'');
                    Err(self.item_error(ErrorKind::Value, &item, message))
                }
            },
            ItemType::Variable => self.variable(&item),
            ItemType::Include => self.include(&item),
            ItemType::Eof | ItemType::Text | ItemType::CommentStart => Ok(()),
        }
    }

    fn variable(&mut self, item: &Item<'_>) -> Result<(), Error> {
        let name: &[u8] = &item.val;
        let prefix = |what: &str| {
            let mut message = b"variable reference for '".to_vec();
            message.extend_from_slice(name);
            message.extend_from_slice(format!("' on line {}{what}", item.line).as_bytes());
            message
        };
        let found = match self.lookup(name, item) {
            Ok(found) => found,
            Err(inner) => {
                let location = self.location(item.offset);
                return Err(inner
                    .with_prefix(ErrorKind::Variable, &prefix(" could not be parsed: "))
                    .or_location(|| location));
            }
        };
        let Some(value) = found else {
            return Err(self.item_error(ErrorKind::Variable, item, prefix(" can not be found")));
        };
        let node = self.node(item, value);
        self.set_value(node)
    }

    /// `lookupVariable`: bcrypt strings, then the open maps innermost first, then the
    /// environment.
    fn lookup(&mut self, name: &[u8], item: &Item<'_>) -> Result<Option<Value>, Error> {
        if name.starts_with(b"2a$") {
            let mut text = b"$".to_vec();
            text.extend_from_slice(name);
            let len = u64::try_from(text.len()).unwrap_or(u64::MAX);
            self.session.charge_values(1, len)?;
            return Ok(Some(Value::Str(text)));
        }
        let depth = self.depth();
        let pedantic = self.pedantic;
        let mut found = None;
        for ctx in self.ctxs.iter_mut().rev() {
            if let Ctx::Map(map) = ctx
                && let Some(node) = map.get_mut(name)
            {
                if pedantic {
                    node.used_as_variable = true;
                }
                found = Some(&node.value);
                break;
            }
        }
        if let Some(value) = found {
            let size = measure(value);
            if depth + size.height > self.session.limits.max_depth {
                return Err(Error::new(
                    ErrorKind::Limit,
                    format!(
                        "Parse error on line {}: 'Maximum nesting depth of {} exceeded.'",
                        item.line, self.session.limits.max_depth
                    )
                    .into_bytes(),
                    None,
                ));
            }
            self.session.charge_values(size.nodes, size.string_bytes)?;
            return Ok(Some(value.clone()));
        }
        let Some(text) = self.session.env.lookup(name) else {
            return Ok(None);
        };
        if self.session.env_chain.iter().any(|n| n == name) {
            let mut message = b"variable reference cycle for '".to_vec();
            message.extend_from_slice(name);
            message.push(b'\'');
            return Err(Error::new(ErrorKind::Variable, message, None));
        }
        let mut source = b"pk=".to_vec();
        source.extend_from_slice(&text);
        self.session.env_chain.push(name.to_vec());
        let res = self.session.parse_source(&source, b"", false, depth);
        self.session.env_chain.pop();
        let mut map = res.map_err(|e| e.without_location())?;
        Ok(map
            .get_mut(b"pk")
            .map(|node| std::mem::replace(&mut node.value, Value::Bool(false))))
    }

    fn include(&mut self, item: &Item<'_>) -> Result<(), Error> {
        let path = go::join(&self.dir, &item.val);
        let depth = self.depth();
        let res = self.session.parse_file(&path, self.pedantic, depth);
        let map = match res {
            Ok(map) => map,
            Err(inner) => {
                let mut prefix = b"error parsing include file '".to_vec();
                prefix.extend_from_slice(&item.val);
                prefix.extend_from_slice(b"', ");
                let location = self.location(item.offset);
                return Err(inner
                    .with_prefix(ErrorKind::Include, &prefix)
                    .or_location(|| location));
            }
        };
        for (key, node) in map.into_entries() {
            let (line, pos) = node
                .pos
                .as_ref()
                .map_or((0, 0), |p| (p.line, i64::from(p.pos)));
            self.keys.push(PendingKey { key, line, pos });
            self.set_value(node)?;
        }
        Ok(())
    }
}

impl Error {
    /// Errors from an environment sub-parse point into text that is not a file.
    fn without_location(self) -> Self {
        Self::new(self.kind(), self.message_bytes().to_vec(), None)
    }
}

/// Go's `strconv.ParseInt(s, 10, 64)`: `Err(true)` for a range error, `Err(false)` for syntax.
fn go_parse_int(text: &[u8]) -> Result<i64, bool> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() {
        return Err(false);
    }
    const CUTOFF: u64 = u64::MAX / 10 + 1;
    let mut n: u64 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return Err(false);
        }
        if n >= CUTOFF {
            return Err(true);
        }
        n *= 10;
        let sum = n.wrapping_add(u64::from(byte - b'0'));
        if sum < n {
            return Err(true);
        }
        n = sum;
    }
    const LIMIT: u64 = 1 << 63;
    if !negative && n >= LIMIT {
        return Err(true);
    }
    if negative && n > LIMIT {
        return Err(true);
    }
    if negative {
        Ok((n as i64).wrapping_neg())
    } else {
        Ok(n as i64)
    }
}

/// Splits an integer item into the leading run of digits and `-` (counted in characters, cut
/// in bytes, as the reference does) and the suffix.
fn split_integer(text: &[u8]) -> (&[u8], &[u8]) {
    let mut count = 0usize;
    let mut rest = text;
    while !rest.is_empty() {
        let (c, width) = go::decode_rune(rest);
        if !go::is_digit(c) && c != '-' {
            break;
        }
        count += 1;
        rest = rest.get(width..).unwrap_or_default();
    }
    let res: nom::IResult<&[u8], &[u8]> = take(count.min(text.len()))(text);
    match res {
        Ok((suffix, digits)) => (digits, suffix),
        Err(_) => (text, &[]),
    }
}

/// Converts an integer item: `Ok(None)` for an unknown suffix (the reference stores nothing).
pub(crate) fn convert_integer(text: &[u8]) -> Result<Option<i64>, Vec<u8>> {
    let (digits, suffix) = split_integer(text);
    let number = match go_parse_int(digits) {
        Ok(number) => number,
        Err(range) => {
            let mut message = if range {
                b"integer '".to_vec()
            } else {
                b"expected integer, but got '".to_vec()
            };
            message.extend_from_slice(text);
            message.extend_from_slice(if range {
                b"' is out of the range"
            } else {
                b"'"
            });
            return Err(message);
        }
    };
    let suffix = suffix.to_ascii_lowercase();
    let multiplier: i64 = match suffix.as_slice() {
        b"" => 1,
        b"k" => 1_000,
        b"kb" | b"ki" | b"kib" => 1 << 10,
        b"m" => 1_000_000,
        b"mb" | b"mi" | b"mib" => 1 << 20,
        b"g" => 1_000_000_000,
        b"gb" | b"gi" | b"gib" => 1 << 30,
        b"t" => 1_000_000_000_000,
        b"tb" | b"ti" | b"tib" => 1 << 40,
        b"p" => 1_000_000_000_000_000,
        b"pb" | b"pi" | b"pib" => 1 << 50,
        b"e" => 1_000_000_000_000_000_000,
        b"eb" | b"ei" | b"eib" => 1 << 60,
        _ => return Ok(None),
    };
    Ok(Some(number.wrapping_mul(multiplier)))
}

/// Converts a float item (`strconv.ParseFloat(s, 64)`).
pub(crate) fn convert_float(text: &[u8]) -> Result<f64, Vec<u8>> {
    let parsed = std::str::from_utf8(text)
        .ok()
        .filter(|s| {
            s.bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        })
        .and_then(|s| s.parse::<f64>().ok());
    match parsed {
        Some(number) if number.is_finite() => Ok(number),
        Some(_) => {
            let mut message = b"float '".to_vec();
            message.extend_from_slice(text);
            message.extend_from_slice(b"' is out of the range");
            Err(message)
        }
        None => {
            let mut message = b"expected float, but got '".to_vec();
            message.extend_from_slice(text);
            message.push(b'\'');
            Err(message)
        }
    }
}

fn ascii_number<'i>(
    width: usize,
) -> impl nom::Parser<&'i [u8], Output = u32, Error = nom::error::Error<&'i [u8]>> {
    map_res(take(width), |digits: &[u8]| {
        if digits.iter().all(u8::is_ascii_digit) {
            Ok(digits
                .iter()
                .fold(0u32, |acc, &b| acc * 10 + u32::from(b - b'0')))
        } else {
            Err(())
        }
    })
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` (`time.Parse("2006-01-02T15:04:05Z", …)`) into seconds since
/// the Unix epoch; `None` when Go would reject it.
pub(crate) fn convert_datetime(text: &[u8]) -> Option<i64> {
    let mut parser = all_consuming((
        ascii_number(4),
        tag(&b"-"[..]),
        ascii_number(2),
        tag(&b"-"[..]),
        ascii_number(2),
        tag(&b"T"[..]),
        ascii_number(2),
        tag(&b":"[..]),
        ascii_number(2),
        tag(&b":"[..]),
        ascii_number(2),
        tag(&b"Z"[..]),
    ));
    let res: nom::IResult<&[u8], _> = parser.parse_complete(text);
    let (_, (year, _, month, _, day, _, hour, _, minute, _, second, _)) = res.ok()?;
    if !(1..=12).contains(&month) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if day < 1 || day > month_days {
        return None;
    }
    let days = gotext::days_from_civil(i64::from(year), month, day);
    Some(days * 86_400 + i64::from(hour) * 3_600 + i64::from(minute) * 60 + i64::from(second))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_int(text: &str, expect: Result<Option<i64>, &str>) {
        let got = convert_integer(text.as_bytes()).map_err(|m| String::from_utf8(m).unwrap());
        assert_eq!(got, expect.map_err(str::to_owned), "{text}");
    }

    #[test]
    fn integers() {
        check_int("007", Ok(Some(7)));
        check_int("1k", Ok(Some(1000)));
        check_int("1KiB", Ok(Some(1024)));
        check_int("8EiB", Ok(Some(i64::MIN)));
        check_int("16EB", Ok(Some(0)));
        check_int("10e", Ok(Some(-8_446_744_073_709_551_616)));
        check_int("9223372036854775807k", Ok(Some(-1000)));
        check_int("1kbb", Ok(None));
        check_int("-9223372036854775808", Ok(Some(i64::MIN)));
        check_int(
            "9223372036854775808",
            Err("integer '9223372036854775808' is out of the range"),
        );
        check_int("٤٢", Err("expected integer, but got '٤٢'"));
    }

    #[test]
    fn dates() {
        assert_eq!(convert_datetime(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            convert_datetime(b"2024-02-29T12:00:00Z"),
            Some(1_709_208_000)
        );
        assert_eq!(convert_datetime(b"2023-02-29T12:00:00Z"), None);
        assert_eq!(convert_datetime(b"2023-01-01T24:00:00Z"), None);
        let zero = convert_datetime(b"0000-01-01T00:00:00Z").unwrap();
        assert_eq!(gotext::civil_from_days(zero.div_euclid(86_400)), (0, 1, 1));
    }

    #[test]
    fn floats() {
        assert_eq!(convert_float(b"00.5"), Ok(0.5));
        assert!(convert_float(b"-0.0").unwrap().is_sign_negative());
        let huge = format!("{}.0", "9".repeat(400));
        assert_eq!(
            String::from_utf8(convert_float(huge.as_bytes()).unwrap_err()).unwrap(),
            format!("float '{huge}' is out of the range")
        );
    }
}
