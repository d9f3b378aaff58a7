//! The parsed value tree: what the config language itself produces, before any option is
//! interpreted (what `conf/parse.go` of nats-server 2.9.10 returns).
//!
//! Strings and keys are kept as bytes because the language allows any bytes in them (`\xHH`
//! escapes, raw non-UTF-8 input); the typed options layer decides what must be UTF-8.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Where a value came from: the pedantic token position (docs/dump-config.md, Positions).
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
    /// (those come from a non-pedantic sub-parse in `conf/parse.go` `lookupVariable`).
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
/// (duplicate keys are not merged, as in `conf/parse.go` `setValue`).
///
/// Lookups are linear for small maps and go through a hash index once a map grows past
/// [`Map::INDEX_THRESHOLD`] entries, so building a map with many keys stays linear overall.
#[derive(Clone, Default)]
pub struct Map {
    entries: Vec<(Vec<u8>, Node)>,
    index: Option<HashMap<Vec<u8>, usize>>,
}

impl PartialEq for Map {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.entries
                    .iter()
                    .map(|(k, v)| (String::from_utf8_lossy(k), v)),
            )
            .finish()
    }
}

impl Map {
    /// Maps with more entries than this keep a hash index of their keys.
    pub const INDEX_THRESHOLD: usize = 16;

    /// An empty map.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn position(&self, key: &[u8]) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(key).copied(),
            None => self.entries.iter().position(|(k, _)| k == key),
        }
    }

    /// Stores `node` under `key`, replacing any earlier value of that key in place.
    pub fn insert(&mut self, key: Vec<u8>, node: Node) {
        if let Some(entry) = self.position(&key).and_then(|i| self.entries.get_mut(i)) {
            entry.1 = node;
            return;
        }
        let slot = self.entries.len();
        if let Some(index) = &mut self.index {
            index.insert(key.clone(), slot);
        }
        self.entries.push((key, node));
        if self.index.is_none() && self.entries.len() > Self::INDEX_THRESHOLD {
            self.index = Some(
                self.entries
                    .iter()
                    .enumerate()
                    .map(|(i, (k, _))| (k.clone(), i))
                    .collect(),
            );
        }
    }

    /// The value stored under exactly `key` (case-sensitive).
    #[must_use]
    pub fn get(&self, key: &[u8]) -> Option<&Node> {
        self.position(key)
            .and_then(|i| self.entries.get(i))
            .map(|(_, v)| v)
    }

    /// Mutable access to the value stored under exactly `key`.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Node> {
        self.position(key)
            .and_then(|i| self.entries.get_mut(i))
            .map(|(_, v)| v)
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

    /// Consumes the map, yielding its entries in first-insertion order.
    pub fn into_entries(self) -> impl Iterator<Item = (Vec<u8>, Node)> {
        self.entries.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(n: i64) -> Node {
        Node {
            value: Value::Int(n),
            pos: None,
            used_as_variable: false,
        }
    }

    #[test]
    fn insert_replaces_in_place_below_and_above_the_index_threshold() {
        for count in [3usize, 40] {
            let mut map = Map::new();
            for i in 0..count {
                map.insert(format!("k{i}").into_bytes(), node(i as i64));
            }
            map.insert(b"k1".to_vec(), node(-1));
            assert_eq!(map.len(), count);
            assert_eq!(map.get(b"k1").map(|n| &n.value), Some(&Value::Int(-1)));
            assert_eq!(map.iter().nth(1).map(|(k, _)| k), Some(&b"k1"[..]));
            assert!(map.get(b"missing").is_none());
            map.get_mut(b"k0").unwrap().used_as_variable = true;
            assert!(map.get(b"k0").unwrap().used_as_variable);
        }
    }
}
