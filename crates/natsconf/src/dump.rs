//! The canonical JSON dump of a parse result (docs/dump-config.md), as printed by
//! `natsws --dump-config [--positions] FILE` and by the reference tool conforacle.

use serde_json::{Map as JsonMap, Number, Value as Json};

use crate::Error;
use crate::value::{Map, Node, Value};

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        for nibble in [byte >> 4, byte & 0xf] {
            out.extend(HEX.get(usize::from(nibble)).map(|&b| char::from(b)));
        }
    }
    out
}

/// `{"str": …}` for UTF-8 text, `{"bytes": hex}` otherwise.
fn typed_string(bytes: &[u8]) -> (String, Json) {
    match std::str::from_utf8(bytes) {
        Ok(text) => ("str".to_owned(), Json::String(text.to_owned())),
        Err(_) => ("bytes".to_owned(), Json::String(hex(bytes))),
    }
}

fn key_name(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(text) => text.to_owned(),
        Err(_) => format!("\u{0}bytes:{}", hex(key)),
    }
}

fn map_json(map: &Map, positions: bool) -> Json {
    let mut object = JsonMap::new();
    for (key, node) in map.iter() {
        object.insert(key_name(key), node_json(node, positions));
    }
    Json::Object(object)
}

fn node_json(node: &Node, positions: bool) -> Json {
    let mut object = JsonMap::new();
    if let Some(pos) = node.pos.as_ref().filter(|_| positions) {
        object.insert("line".to_owned(), Json::Number(Number::from(pos.line)));
        object.insert("pos".to_owned(), Json::Number(Number::from(pos.pos)));
        object.insert("file".to_owned(), Json::String(pos.file.to_string()));
    }
    let (name, value) = match &node.value {
        Value::Int(number) => ("int".to_owned(), Json::Number(Number::from(*number))),
        Value::Float(number) => ("float".to_owned(), Json::String(format!("{number:e}"))),
        Value::Bool(flag) => ("bool".to_owned(), Json::Bool(*flag)),
        Value::Str(bytes) => typed_string(bytes),
        Value::Date(seconds) => (
            "date".to_owned(),
            Json::String(gotext::format_rfc3339(*seconds, 0)),
        ),
        Value::Array(items) => (
            "array".to_owned(),
            Json::Array(
                items
                    .iter()
                    .map(|item| node_json(item, positions))
                    .collect(),
            ),
        ),
        Value::Map(map) => ("map".to_owned(), map_json(map, positions)),
    };
    object.insert(name, value);
    Json::Object(object)
}

/// The dump of a parse result: `{"map":{…}}` or `{"error":{"str":"…"}}`, one line ending in
/// `\n`. With `positions`, every value that has a position also carries `line`, `pos` and
/// `file` members.
#[must_use]
pub fn dump(result: &Result<Map, Error>, positions: bool) -> String {
    let mut top = JsonMap::new();
    match result {
        Ok(map) => {
            top.insert("map".to_owned(), map_json(map, positions));
        }
        Err(error) => {
            let (name, text) = typed_string(error.message_bytes());
            let mut inner = JsonMap::new();
            inner.insert(name, text);
            top.insert("error".to_owned(), Json::Object(inner));
        }
    }
    let mut out = Json::Object(top).to_string();
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names() {
        assert_eq!(key_name(b"a"), "a");
        assert_eq!(key_name(b"\xff"), "\u{0}bytes:ff");
    }
}
