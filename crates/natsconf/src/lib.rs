//! The NATS server configuration language, as nats-server 2.9.10 reads it.
//!
//! This crate turns config text into a [`value::Map`] tree that keeps the reference's value
//! kinds apart (`int64`, `float64`, `bool`, strings as bytes, dates, arrays, maps) and records
//! for every value the line, position and file nats-server reports in option errors
//! (`conf/lex.go`, `conf/parse.go`). It reproduces the reference parser exactly, quirks
//! included: the context-dependent lexer, size suffixes with wrapping arithmetic, the key stack
//! behaviour, block-scoped `$variables` with environment fallback, `include` path joining, and
//! every error text byte for byte. [`dump::dump`] prints a parse result in the canonical JSON of
//! docs/dump-config.md (`natsws --dump-config`).
//!
//! What it deliberately does not do: it never reads the clock, opens sockets or logs; files
//! and environment variables are reached only through the [`Loader`] and [`Env`] traits
//! ([`parse_file`] plugs in the real file system and process environment). Where nats-server
//! would crash (include cycles, self-referencing environment variables) or use unbounded
//! memory (unlimited nesting), it returns an [`Error`] instead, within [`Limits`].
//!
//! Main types: [`value::Map`], [`value::Node`], [`value::Value`], [`Error`], [`Limits`],
//! [`Loader`], [`Env`]; the typed server options live in [`options`].
//!
//! ```
//! use natsconf::{MemLoader, value::Value};
//! use std::collections::HashMap;
//!
//! let env: HashMap<Vec<u8>, Vec<u8>> = HashMap::from([(b"PORT".to_vec(), b"4333".to_vec())]);
//! let loader = MemLoader::new().with_file("auth.conf", "user: admin");
//! let map = natsconf::parse_source(
//!     b"port: $PORT\nmax_payload: 1MB\ninclude auth.conf\n",
//!     b"nats.conf",
//!     &env,
//!     &loader,
//! )
//! .unwrap();
//! assert_eq!(map.get(b"port").unwrap().value, Value::Int(4333));
//! assert_eq!(map.get(b"max_payload").unwrap().value, Value::Int(1 << 20));
//! assert_eq!(map.get(b"user").unwrap().value.as_str(), Some("admin"));
//! let pos = map.get(b"max_payload").unwrap().pos.as_ref().unwrap();
//! assert_eq!((pos.line, pos.pos), (2, 1));
//!
//! let err = natsconf::parse_source(b"a = [1, 2, 3]\n", b"x.conf", &env, &loader).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "Parse error on line 2: 'Expected an array value terminator \",\" or an array \
//!      terminator \"]\", but got '\0' instead.'"
//! );
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::print_stdout, clippy::print_stderr)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

pub mod dump;
mod error;
mod go;
mod lexer;
pub mod options;
mod parser;
pub mod print;
pub mod value;

#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub use error::{Error, ErrorKind, Location};

/// Bounds on the work and memory one parse may use. The reference has none of these; the
/// defaults are far above what real configs need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum nesting of arrays and maps (the top-level map is level 0).
    pub max_depth: usize,
    /// Maximum number of files on one include chain.
    pub max_include_depth: usize,
    /// Maximum number of values created, counting copies made by `$variable` references.
    pub max_values: u64,
    /// Maximum bytes of strings and keys created, counting copies.
    pub max_string_bytes: u64,
    /// Maximum bytes of input lexed, over all files and environment values.
    pub max_input_bytes: u64,
    /// Maximum number of sources parsed: the file, every include (each time it is included)
    /// and every environment variable value (each time it is referenced).
    pub max_sources: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 512,
            max_include_depth: 64,
            max_values: 4_000_000,
            max_string_bytes: 256 << 20,
            max_input_bytes: 256 << 20,
            max_sources: 20_000,
        }
    }
}

/// How to parse: pedantic mode (positions, what nats-server uses) and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseSettings {
    /// Record positions and use the pedantic error texts (`conf.ParseFileWithChecks`).
    /// nats-server always does.
    pub pedantic: bool,
    /// Work and memory bounds.
    pub limits: Limits,
}

impl Default for ParseSettings {
    fn default() -> Self {
        Self {
            pedantic: true,
            limits: Limits::default(),
        }
    }
}

/// Environment variable lookup for `$NAME` fallback (`conf/parse.go` `lookupVariable`).
pub trait Env {
    /// The value of the variable `name`, if it is set (possibly empty).
    fn lookup(&self, name: &[u8]) -> Option<Vec<u8>>;
}

impl Env for HashMap<Vec<u8>, Vec<u8>> {
    fn lookup(&self, name: &[u8]) -> Option<Vec<u8>> {
        self.get(name).cloned()
    }
}

impl Env for BTreeMap<Vec<u8>, Vec<u8>> {
    fn lookup(&self, name: &[u8]) -> Option<Vec<u8>> {
        self.get(name).cloned()
    }
}

/// An environment with no variables.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEnv;

impl Env for NoEnv {
    fn lookup(&self, _name: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn lookup(&self, name: &[u8]) -> Option<Vec<u8>> {
        if name.is_empty() || name.contains(&b'=') || name.contains(&0) {
            return None;
        }
        std::env::var_os(os_str(name)).map(|value| os_bytes(&value))
    }
}

/// Reads config files for the top file and `include` (paths as nats-server builds them).
pub trait Loader {
    /// The file's bytes, or Go's `os.ReadFile` error text, e.g.
    /// `open x.conf: no such file or directory` or `read .: is a directory`.
    fn read(&self, path: &[u8]) -> Result<Vec<u8>, Vec<u8>>;

    /// An identity for include cycle detection: two paths naming the same file must give the
    /// same identity. The default is the cleaned path.
    fn identity(&self, path: &[u8]) -> Vec<u8> {
        go::clean(path)
    }
}

/// A [`Loader`] over the real file system; relative paths resolve against `base` (the
/// process's working directory by default, as in nats-server).
#[derive(Debug, Clone, Default)]
pub struct FsLoader {
    base: Option<PathBuf>,
}

impl FsLoader {
    /// Resolves relative paths against the working directory.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Resolves relative paths against `base` instead of the working directory.
    #[must_use]
    pub fn with_base(base: impl Into<PathBuf>) -> Self {
        Self {
            base: Some(base.into()),
        }
    }

    fn resolve(&self, path: &[u8]) -> PathBuf {
        let path = PathBuf::from(os_str(path));
        match &self.base {
            Some(base) if path.is_relative() => base.join(path),
            _ => path,
        }
    }
}

fn io_text(op: &str, path: &[u8], err: &std::io::Error) -> Vec<u8> {
    let reason = match err.raw_os_error() {
        Some(errno) => go::errno_text(errno),
        None => err.to_string(),
    };
    let mut text = format!("{op} ").into_bytes();
    text.extend_from_slice(path);
    text.extend_from_slice(b": ");
    text.extend_from_slice(reason.as_bytes());
    text
}

impl Loader for FsLoader {
    fn read(&self, path: &[u8]) -> Result<Vec<u8>, Vec<u8>> {
        use std::io::Read as _;
        let resolved = self.resolve(path);
        let mut file = std::fs::File::open(&resolved).map_err(|e| io_text("open", path, &e))?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)
            .map_err(|e| io_text("read", path, &e))?;
        Ok(data)
    }

    fn identity(&self, path: &[u8]) -> Vec<u8> {
        match std::fs::canonicalize(self.resolve(path)) {
            Ok(canonical) => os_bytes(canonical.as_os_str()),
            Err(_) => go::clean(path),
        }
    }
}

/// An in-memory [`Loader`] for tests and fuzzing: files by cleaned path; a path that is a
/// parent directory of a file (or `.`) reads as a directory.
#[derive(Debug, Clone, Default)]
pub struct MemLoader {
    files: HashMap<Vec<u8>, Vec<u8>>,
}

impl MemLoader {
    /// No files.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file.
    #[must_use]
    pub fn with_file(mut self, path: impl AsRef<[u8]>, contents: impl AsRef<[u8]>) -> Self {
        self.insert(path, contents);
        self
    }

    /// Adds or replaces a file.
    pub fn insert(&mut self, path: impl AsRef<[u8]>, contents: impl AsRef<[u8]>) {
        self.files
            .insert(go::clean(path.as_ref()), contents.as_ref().to_vec());
    }
}

impl Loader for MemLoader {
    fn read(&self, path: &[u8]) -> Result<Vec<u8>, Vec<u8>> {
        let cleaned = go::clean(path);
        if let Some(data) = self.files.get(&cleaned) {
            return Ok(data.clone());
        }
        let is_dir = cleaned == b"."
            || self.files.keys().any(|name| {
                name.len() > cleaned.len()
                    && name.starts_with(&cleaned)
                    && name.get(cleaned.len()) == Some(&b'/')
            });
        let (op, reason) = if is_dir {
            ("read", "is a directory")
        } else {
            ("open", "no such file or directory")
        };
        let mut text = format!("{op} ").into_bytes();
        text.extend_from_slice(path);
        text.extend_from_slice(b": ");
        text.extend_from_slice(reason.as_bytes());
        Err(text)
    }
}

#[cfg(unix)]
fn os_str(bytes: &[u8]) -> &std::ffi::OsStr {
    use std::os::unix::ffi::OsStrExt as _;
    std::ffi::OsStr::from_bytes(bytes)
}

#[cfg(not(unix))]
fn os_str(bytes: &[u8]) -> std::ffi::OsString {
    String::from_utf8_lossy(bytes).into_owned().into()
}

#[cfg(unix)]
fn os_bytes(text: &std::ffi::OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt as _;
    text.as_bytes().to_vec()
}

#[cfg(not(unix))]
fn os_bytes(text: &std::ffi::OsStr) -> Vec<u8> {
    text.to_string_lossy().into_owned().into_bytes()
}

/// Parses a config file as `nats-server -c FILE` does: pedantic mode, the process environment
/// and the real file system (includes relative to the file's directory as given).
///
/// # Errors
///
/// The reference's error for an unreadable file or the first syntax, value, variable or
/// include problem, or a [`Limits`] violation.
pub fn parse_file(path: &Path) -> Result<value::Map, Error> {
    parse_file_with(
        &os_bytes(path.as_os_str()),
        &ProcessEnv,
        &FsLoader::new(),
        ParseSettings::default(),
    )
}

/// Reads `path` through `loader` and parses it (`ParseFileWithChecks`, or `ParseFile` when
/// `settings.pedantic` is false).
///
/// # Errors
///
/// As [`parse_file`].
pub fn parse_file_with(
    path: &[u8],
    env: &dyn Env,
    loader: &dyn Loader,
    settings: ParseSettings,
) -> Result<value::Map, Error> {
    let mut session = parser::Session::new(env, loader, settings.limits);
    session.parse_file(path, settings.pedantic, 0)
}

/// Parses config text in pedantic mode. `file` is the name the text came from (it names the
/// values' [`value::Pos::file`] and is the base for `include` paths); files are read only
/// through `loader` and environment variables only through `env`.
///
/// # Errors
///
/// As [`parse_file`].
pub fn parse_source(
    source: &[u8],
    file: &[u8],
    env: &dyn Env,
    loader: &dyn Loader,
) -> Result<value::Map, Error> {
    parse_source_with(source, file, env, loader, ParseSettings::default())
}

/// [`parse_source`] with explicit settings.
///
/// # Errors
///
/// As [`parse_file`].
pub fn parse_source_with(
    source: &[u8],
    file: &[u8],
    env: &dyn Env,
    loader: &dyn Loader,
    settings: ParseSettings,
) -> Result<value::Map, Error> {
    let mut session = parser::Session::new(env, loader, settings.limits);
    session.parse_source(source, file, settings.pedantic, 0)
}
