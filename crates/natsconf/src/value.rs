//! The parsed value tree: what the config language itself produces, before any option is
//! interpreted (spec/natsconf.md §6, §9).
//!
//! Strings and keys are kept as bytes because the language allows any bytes in them (`\xHH`
//! escapes, raw non-UTF-8 input); the typed options layer decides what must be UTF-8.

use std::sync::Arc;

/// Where a value came from: the pedantic token position of spec §9.
///
/// `pos` is the reference's position number: 0-based byte column on line 1, 1-based on later
/// lines (for single-line items), exactly as nats-server prints it in `file:line:pos:` errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    /// The file as nats-server names it: the path given for the top file, the joined path for
    /// an include.
    pub file: Arc<str>,
    /// 1-based line number.
    pub line: u32,
    /// The reference's position number on that line.
    pub pos: u32,
}

/// One value together with its position and bookkeeping flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value itself.
    pub value: Value,
    /// Where it came from. `None` for values inside a value read from an environment variable
    /// (spec §9: those come from a non-pedantic sub-parse).
    pub pos: Option<Pos>,
    /// Whether this entry was referenced as a `$variable`; nats-server does not report such keys
    /// as unknown fields.
    pub used_as_variable: bool,
}

/// A config value, with the Go types of the reference kept distinct.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `int64`.
    Int(i64),
    /// `float64` (never NaN or infinite).
    Float(f64),
    /// `bool`.
    Bool(bool),
    /// `string`: raw bytes, possibly not UTF-8.
    Str(Vec<u8>),
    /// `time.Time`: seconds since the Unix epoch, UTC.
    Date(i64),
    /// `[]interface{}`.
    Array(Vec<Node>),
    /// `map[string]interface{}`.
    Map(Map),
}

impl Value {
    /// The Go type name nats-server prints in `interface conversion` errors
    /// (`interface {} is string, not int64`).
    #[must_use]
    pub fn go_type_name(&self) -> &'static str {
        match self {
            Self::Int(_) => "int64",
            Self::Float(_) => "float64",
            Self::Bool(_) => "bool",
            Self::Str(_) => "string",
            Self::Date(_) => "time.Time",
            Self::Array(_) => "[]interface {}",
            Self::Map(_) => "map[string]interface {}",
        }
    }

    /// The string value as UTF-8 text, if this is a string and valid UTF-8.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }
}

/// A map: keys in first-insertion order; assigning an existing key replaces its value
/// (spec §6.2: duplicate keys, no merging).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Map {
    entries: Vec<(Vec<u8>, Node)>,
}

impl Map {
    /// An empty map.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `node` under `key`, replacing any earlier value of that key in place.
    pub fn insert(&mut self, key: Vec<u8>, node: Node) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = node,
            None => self.entries.push((key, node)),
        }
    }

    /// The value stored under exactly `key` (case-sensitive).
    #[must_use]
    pub fn get(&self, key: &[u8]) -> Option<&Node> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Mutable access to the value stored under exactly `key`.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Node> {
        self.entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Entries in first-insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Node)> {
        self.entries.iter().map(|(k, v)| (k.as_slice(), v))
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
