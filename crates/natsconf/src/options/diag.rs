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
use std::rc::Rc;

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

/// One step of an option's path: a map key as written, or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSegment {
    /// A map key, as written in the config (not lower-cased).
    Key(String),
    /// A 0-based array index.
    Index(usize),
}

/// An option nats-server 2.9.10 knows that natsconf does not model: it is recorded, not
/// interpreted (its value is not checked, and it changes nothing in [`Options`]).
///
/// natsconf reports this as a fact and leaves the decision to the program: ignore it, warn,
/// or refuse the config (see [`Options::from_map_with`]).
///
/// [`Options`]: super::Options
/// [`Options::from_map_with`]: super::Options::from_map_with
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unmodelled {
    /// Where the key sits, from the top-level key down to this key (`accounts`, `A`,
    /// `jetstream`; `leafnodes`, `remotes`, `0`, `js_cluster_migrate`).
    pub path: Vec<PathSegment>,
    /// The key as written (the path's last key).
    pub key: String,
    /// The position of the key's value: where the reference reports problems with the option
    /// (`None` for a value from an environment variable with no enclosing position).
    pub pos: Option<Pos>,
}

impl Unmodelled {
    /// An error [`Diagnostic`] at this option's position.
    #[must_use]
    pub fn error(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            pos: self.pos.clone(),
            message: message.into(),
        }
    }

    /// A warning [`Diagnostic`] at this option's position.
    #[must_use]
    pub fn warning(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..self.error(message)
        }
    }

    /// The path as text: keys joined by `.`, indexes in brackets (`leafnodes.remotes[0].hub`).
    #[must_use]
    pub fn path_text(&self) -> String {
        let mut out = String::new();
        for segment in &self.path {
            match segment {
                PathSegment::Key(key) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                }
                PathSegment::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        out
    }
}

/// `<file>:<line>:<pos>: <path> is known to nats-server but not modelled by natsconf`.
impl fmt::Display for Unmodelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(pos) = &self.pos {
            write!(f, "{}:{}:{}: ", pos.file, pos.line, pos.pos)?;
        }
        write!(
            f,
            "{} is known to nats-server but not modelled by natsconf",
            self.path_text()
        )
    }
}

/// A persistent path (shared tails), so that every value knows where it sits for the cost of
/// one small allocation per map entry or array item.
#[derive(Debug)]
pub(crate) struct PathNode<'a> {
    parent: Path<'a>,
    segment: Segment<'a>,
}

#[derive(Debug, Clone, Copy)]
enum Segment<'a> {
    Key(&'a [u8]),
    Index(usize),
}

pub(crate) type Path<'a> = Option<Rc<PathNode<'a>>>;

fn extend<'a>(parent: &Path<'a>, segment: Segment<'a>) -> Path<'a> {
    Some(Rc::new(PathNode {
        parent: parent.clone(),
        segment,
    }))
}

fn materialize(path: &Path<'_>) -> Vec<PathSegment> {
    let mut out = Vec::new();
    let mut at = path.as_deref();
    while let Some(node) = at {
        out.push(match node.segment {
            Segment::Key(key) => PathSegment::Key(String::from_utf8_lossy(key).into_owned()),
            Segment::Index(i) => PathSegment::Index(i),
        });
        at = node.parent.as_deref();
    }
    out.reverse();
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
    /// Where the value sits (for [`Unmodelled`] records).
    pub(crate) path: Path<'a>,
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
            path: None,
        }
    }

    /// The value of the top-level entry `key`.
    pub(crate) fn top(key: &'a [u8], node: &'a Node) -> Self {
        Self {
            path: extend(&None, Segment::Key(key)),
            ..Self::root(node)
        }
    }

    /// A value inside this one.
    pub(crate) fn child(&self, node: &'a Node) -> Self {
        Self {
            node,
            pos: node.pos.clone().or_else(|| self.pos.clone()),
            path: self.path.clone(),
        }
    }

    /// A value inside this one, one path step down.
    fn child_at(&self, node: &'a Node, segment: Segment<'a>) -> Self {
        Self {
            path: extend(&self.path, segment),
            ..self.child(node)
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
            .map(|(raw, node)| {
                let key = String::from_utf8_lossy(raw).into_owned();
                Entry {
                    lower: key.to_lowercase(),
                    key,
                    value: self.child_at(node, Segment::Key(raw)),
                }
            })
            .collect()
    }

    /// `v.([]interface{})`.
    pub(crate) fn array(&self) -> Result<Vec<Self>, Panic> {
        match self.value() {
            Value::Array(items) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, n)| self.child_at(n, Segment::Index(i)))
                .collect()),
            _ => Err(self.conversion("[]interface {}")),
        }
    }
}

/// An [`Unmodelled`] record, with how many errors and warnings were collected before it: a
/// diagnostic a policy makes of it takes that place in the report (ties in the final sort keep
/// the order of collection).
#[derive(Debug)]
pub(crate) struct Recorded {
    errors_before: usize,
    warnings_before: usize,
    record: Unmodelled,
}

/// Collected errors, warnings and unmodelled options.
#[derive(Debug, Default)]
pub(crate) struct Ctx {
    pub(crate) errors: Vec<Diagnostic>,
    pub(crate) warnings: Vec<Diagnostic>,
    pub(crate) unmodelled: Vec<Recorded>,
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

    /// An option the reference knows but natsconf does not model: recorded as [`Unmodelled`]
    /// (not an error; the program's policy decides, see `Options::from_map_with`).
    pub(crate) fn unsupported(&mut self, entry: &Entry<'_>) {
        let mut path = materialize(&entry.value.path);
        if path.is_empty() {
            path.push(PathSegment::Key(entry.key.clone()));
        }
        self.unmodelled.push(Recorded {
            errors_before: self.errors.len(),
            warnings_before: self.warnings.len(),
            record: Unmodelled {
                path,
                key: entry.key.clone(),
                pos: entry.value.pos.clone(),
            },
        });
    }

    /// Applies `policy` to each unmodelled record in the order they were found, placing the
    /// diagnostics it returns where the records were collected. Gives the errors, the
    /// warnings (both unsorted) and the records.
    pub(crate) fn finish(
        self,
        mut policy: impl FnMut(&Unmodelled) -> Option<Diagnostic>,
    ) -> (Vec<Diagnostic>, Vec<Diagnostic>, Vec<Unmodelled>) {
        let mut error_inserts = Vec::new();
        let mut warning_inserts = Vec::new();
        let mut records = Vec::with_capacity(self.unmodelled.len());
        for recorded in self.unmodelled {
            if let Some(diagnostic) = policy(&recorded.record) {
                match diagnostic.severity {
                    Severity::Error => error_inserts.push((recorded.errors_before, diagnostic)),
                    Severity::Warning => {
                        warning_inserts.push((recorded.warnings_before, diagnostic));
                    }
                }
            }
            records.push(recorded.record);
        }
        (
            interleave(self.errors, error_inserts),
            interleave(self.warnings, warning_inserts),
            records,
        )
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

/// `list` with each `(i, item)` of `inserts` (ascending `i`) placed before `list[i]`.
fn interleave(list: Vec<Diagnostic>, inserts: Vec<(usize, Diagnostic)>) -> Vec<Diagnostic> {
    if inserts.is_empty() {
        return list;
    }
    let mut out = Vec::with_capacity(list.len() + inserts.len());
    let mut inserts = inserts.into_iter().peekable();
    for (i, item) in list.into_iter().enumerate() {
        while let Some((_, insert)) = inserts.next_if(|(at, _)| *at <= i) {
            out.push(insert);
        }
        out.push(item);
    }
    out.extend(inserts.map(|(_, insert)| insert));
    out
}
