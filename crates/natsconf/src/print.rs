//! Printing a value tree back as config text that parses to the same values.
//!
//! Not every tree can be printed: keys are never escaped by the language, so a key that
//! contains both quote characters (possible only as a bare key) has no spelling here. Strings
//! are always written double-quoted with `\xHH` escapes, so any byte string can be printed.

use std::fmt::Write as _;

use crate::value::{Map, Value};

/// Config text for `map`, or `None` if some key cannot be spelled.
#[must_use]
pub fn to_config(map: &Map) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for (key, node) in map.iter() {
        write_key(key, &mut out)?;
        out.extend_from_slice(b" = ");
        write_value(&node.value, &mut out)?;
        out.push(b'\n');
    }
    Some(out)
}

fn write_key(key: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let quote = if !key.contains(&b'"') {
        b'"'
    } else if !key.contains(&b'\'') {
        b'\''
    } else {
        return None;
    };
    if key.contains(&0) {
        return None;
    }
    out.push(quote);
    out.extend_from_slice(key);
    out.push(quote);
    Some(())
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Option<()> {
    match value {
        Value::Int(number) => out.extend_from_slice(number.to_string().as_bytes()),
        Value::Float(number) => {
            let mut text = format!("{number}");
            if !text.contains('.') {
                text.push_str(".0");
            }
            out.extend_from_slice(text.as_bytes());
        }
        Value::Bool(flag) => out.extend_from_slice(if *flag { b"true" } else { b"false" }),
        Value::Str(bytes) => write_string(bytes, out),
        Value::Date(seconds) => {
            out.extend_from_slice(gotext::format_rfc3339(*seconds, 0).as_bytes());
        }
        Value::Array(items) => {
            out.extend_from_slice(b"[\n");
            for item in items {
                write_value(&item.value, out)?;
                out.push(b'\n');
            }
            out.push(b']');
        }
        Value::Map(map) => {
            out.extend_from_slice(b"{\n");
            for (key, node) in map.iter() {
                write_key(key, out)?;
                out.extend_from_slice(b" = ");
                write_value(&node.value, out)?;
                out.push(b'\n');
            }
            out.push(b'}');
        }
    }
    Some(())
}

fn write_string(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &byte in bytes {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0x20..=0x7e => out.push(byte),
            _ => {
                let mut text = String::new();
                let _ = write!(text, "\\x{byte:02x}");
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
    out.push(b'"');
}
