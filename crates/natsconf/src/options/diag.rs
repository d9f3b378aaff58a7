//! Option diagnostics and the value readers that produce them.
//!
//! The reference reads each option with a Go type assertion (`v.(int64)`); a failed assertion
//! panics and is recovered at the end of the enclosing block parser, which turns it into the
//! error `interface conversion: interface {} is string, not int64` at the last token read and
//! stops processing that block. [`Panic`] models that: readers return `Result<_, Panic>`, and
//! the block parsers that the reference protects with `recover` catch it with
//! [`Ctx::recover`]. Blocks are processed in file order (the reference's order is Go's random
//! map order), so the result is always one of the reports the reference can give.

use std::cmp::Ordering;
use std::fmt;

use gotext::quote;

use crate::value::{Map, Node, Pos, Value};

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Printed, but the server still starts (`invalid use of field …`).
    Warning,
    /// The configuration is rejected.
    Error,
}

/// One option problem, rendered as the reference does: `<file>:<line>:<pos>: <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Warning or error.
    pub severity: Severity,
    /// The token the reference attaches the problem to (`None` for values that came from an
    /// environment variable's inner structure with no enclosing position).
    pub pos: Option<Pos>,
    /// The reason, exactly as the reference words it (for warnings this already includes the
    /// `invalid use of field "<key>": ` prefix).
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pos {
            Some(pos) => write!(f, "{}:{}:{}: {}", pos.file, pos.line, pos.pos, self.message),
            None => f.write_str(&self.message),
        }
    }
}

fn pos_key(pos: Option<&Pos>) -> (Option<&str>, u32, u32) {
    pos.map_or((None, 0, 0), |p| (Some(&*p.file), p.line, p.pos))
}

/// Sorts a report the way natsws prints it: warnings first, then errors, each group by file,
/// line and position, keeping the order of equal entries. nats-server prints warnings, then
/// errors (`server/errors.go` `processConfigErr.Error`), but in Go's random map order within
/// each group; sorting makes the report stable.
pub fn sort_report(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        a.severity.cmp(&b.severity).then_with(|| {
            let (fa, la, pa) = pos_key(a.pos.as_ref());
            let (fb, lb, pb) = pos_key(b.pos.as_ref());
            fa.cmp(&fb)
                .then(la.cmp(&lb))
                .then(pa.cmp(&pb))
                .then(Ordering::Equal)
        })
    });
}

/// The whole report as the reference prints it after `nats-server: `: each diagnostic followed
/// by a newline.
#[must_use]
pub fn render_report(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for diagnostic in diagnostics {
        out.push_str(&diagnostic.to_string());
        out.push('\n');
    }
    out
}

/// A recovered Go panic: a failed type assertion (or another problem the reference only finds
/// by panicking).
#[derive(Debug)]
pub(crate) struct Panic {
    pos: Option<Pos>,
    message: String,
}

/// A value with the position the reference would report for it: its own token position, or,
/// when it has none (inside an environment variable's value), the last position seen.
#[derive(Debug, Clone)]
pub(crate) struct V<'a> {
    pub(crate) node: &'a Node,
    pub(crate) pos: Option<Pos>,
}

/// One map entry: the key lower-cased for matching, the key as written, and the value.
#[derive(Debug)]
pub(crate) struct Entry<'a> {
    pub(crate) lower: String,
    pub(crate) key: String,
    pub(crate) value: V<'a>,
}

impl<'a> V<'a> {
    pub(crate) fn root(node: &'a Node) -> Self {
        Self {
            node,
            pos: node.pos.clone(),
        }
    }

    /// A value inside this one.
    pub(crate) fn child(&self, node: &'a Node) -> Self {
        Self {
            node,
            pos: node.pos.clone().or_else(|| self.pos.clone()),
        }
    }

    pub(crate) fn value(&self) -> &'a Value {
        &self.node.value
    }

    pub(crate) fn used_as_variable(&self) -> bool {
        self.node.used_as_variable
    }

    pub(crate) fn go_type(&self) -> &'static str {
        self.node.value.go_type_name()
    }

    pub(crate) fn panic(&self, message: impl Into<String>) -> Panic {
        Panic {
            pos: self.pos.clone(),
            message: message.into(),
        }
    }

    fn conversion(&self, want: &str) -> Panic {
        self.panic(format!(
            "interface conversion: interface {{}} is {}, not {want}",
            self.go_type()
        ))
    }

    /// `v.(string)`. natsws keeps strings as Rust `String`s, so a string that is not valid
    /// UTF-8 is refused here (the reference would accept the bytes).
    pub(crate) fn string(&self) -> Result<String, Panic> {
        match self.value() {
            Value::Str(bytes) => String::from_utf8(bytes.clone())
                .map_err(|_| self.panic("string value is not valid UTF-8")),
            _ => Err(self.conversion("string")),
        }
    }

    /// `v.(int64)`.
    pub(crate) fn int(&self) -> Result<i64, Panic> {
        match self.value() {
            Value::Int(n) => Ok(*n),
            _ => Err(self.conversion("int64")),
        }
    }

    /// `v.(bool)`.
    pub(crate) fn bool(&self) -> Result<bool, Panic> {
        match self.value() {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.conversion("bool")),
        }
    }

    /// `v.(map[string]interface{})`, with the entries ready for matching.
    pub(crate) fn map(&self) -> Result<Vec<Entry<'a>>, Panic> {
        match self.value() {
            Value::Map(map) => Ok(self.entries(map)),
            _ => Err(self.conversion("map[string]interface {}")),
        }
    }

    /// The entries of `map`, with positions derived from this value.
    pub(crate) fn entries(&self, map: &'a Map) -> Vec<Entry<'a>> {
        map.iter()
            .map(|(key, node)| {
                let key = String::from_utf8_lossy(key).into_owned();
                Entry {
                    lower: key.to_lowercase(),
                    key,
                    value: self.child(node),
                }
            })
            .collect()
    }

    /// `v.([]interface{})`.
    pub(crate) fn array(&self) -> Result<Vec<Self>, Panic> {
        match self.value() {
            Value::Array(items) => Ok(items.iter().map(|n| self.child(n)).collect()),
            _ => Err(self.conversion("[]interface {}")),
        }
    }
}

/// Collected errors and warnings.
#[derive(Debug, Default)]
pub(crate) struct Ctx {
    pub(crate) errors: Vec<Diagnostic>,
    pub(crate) warnings: Vec<Diagnostic>,
}

impl Ctx {
    pub(crate) fn error(&mut self, at: &V<'_>, message: impl Into<String>) {
        self.error_at(at.pos.clone(), message);
    }

    pub(crate) fn error_at(&mut self, pos: Option<Pos>, message: impl Into<String>) {
        self.errors.push(Diagnostic {
            severity: Severity::Error,
            pos,
            message: message.into(),
        });
    }

    /// `<pos>: invalid use of field "<field>": <reason>`.
    pub(crate) fn warning(&mut self, at: &V<'_>, field: &str, reason: impl fmt::Display) {
        self.warnings.push(Diagnostic {
            severity: Severity::Warning,
            pos: at.pos.clone(),
            message: format!("invalid use of field {}: {reason}", quote(field)),
        });
    }

    /// `unknown field "<key>"`, unless the entry was used as a variable.
    pub(crate) fn unknown(&mut self, entry: &Entry<'_>) {
        if !entry.value.used_as_variable() {
            self.error(&entry.value, format!("unknown field {}", quote(&entry.key)));
        }
    }

    /// An option the reference knows but natsws does not serve.
    pub(crate) fn unsupported(&mut self, entry: &Entry<'_>) {
        self.error(
            &entry.value,
            format!("{} is not supported by natsws", quote(&entry.key)),
        );
    }

    /// The reference's `recover`: a panic becomes an error at its token.
    pub(crate) fn recover<T>(&mut self, res: Result<T, Panic>) -> Option<T> {
        match res {
            Ok(value) => Some(value),
            Err(panic) => {
                self.error_at(panic.pos, panic.message);
                None
            }
        }
    }
}
