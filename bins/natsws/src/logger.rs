//! The process logger, in nats-server's format (`logger/log.go` `NewStdLogger`):
//! `[pid] YYYY/MM/DD HH:MM:SS.micro [LVL] message`, or `[pid] [LVL] message` with `-T=false`.
//!
//! Levels map as `Error → ERR`, `Warn → WRN`, `Info → INF`, `Debug → DBG`, `Trace → TRC`;
//! `[FTL]` is written by [`fatal`], which exits. `-D` enables debug, `-V` trace. Output goes
//! to stderr, or to the `-l` file (appended), which SIGUSR1 reopens after rotation.
//!
//! `--log_format json` (a natsws extension; nats-server 2.9.10 only has the text format) writes
//! the same records as one JSON object per line for log shippers:
//! `{"time":"2026-11-23T12:37:50.410423Z","level":"info","pid":4242,"msg":"..."}`. `time` is
//! RFC 3339 in UTC (Go's `time.RFC3339Nano` layout, microsecond precision) and is left out
//! with `-T=false`, like the text format's timestamp; `level` is one of `fatal`, `error`,
//! `warn`, `info`, `debug`, `trace`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};
use serde::Serialize;

/// How the logger is set up; reload replaces it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LogSettings {
    pub(crate) debug: bool,
    pub(crate) trace: bool,
    pub(crate) logtime: bool,
    pub(crate) file: Option<String>,
    pub(crate) format: LogFormat,
}

/// The shape of a log line (`--log_format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// nats-server's `[pid] date time [LVL] message`.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Parses the `--log_format` value.
    pub(crate) fn parse(value: &str) -> Option<Self> {
        match value {
            "text" => Some(Self::Text),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// A record's severity, including `fatal`, which the `log` facade lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Severity {
    Fatal,
    Log(Level),
}

impl Severity {
    /// The text format's tag.
    fn tag(self) -> &'static str {
        match self {
            Self::Fatal => "[FTL]",
            Self::Log(Level::Error) => "[ERR]",
            Self::Log(Level::Warn) => "[WRN]",
            Self::Log(Level::Info) => "[INF]",
            Self::Log(Level::Debug) => "[DBG]",
            Self::Log(Level::Trace) => "[TRC]",
        }
    }

    /// The JSON format's `level`.
    fn name(self) -> &'static str {
        match self {
            Self::Fatal => "fatal",
            Self::Log(Level::Error) => "error",
            Self::Log(Level::Warn) => "warn",
            Self::Log(Level::Info) => "info",
            Self::Log(Level::Debug) => "debug",
            Self::Log(Level::Trace) => "trace",
        }
    }
}

/// One JSON log line; field order is the output order.
#[derive(Serialize)]
struct JsonLine<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    level: &'static str,
    pid: u32,
    msg: &'a str,
}

#[derive(Debug)]
struct Inner {
    file: Option<(String, File)>,
}

#[derive(Debug)]
struct Logger {
    pid: u32,
    logtime: AtomicBool,
    json: AtomicBool,
    /// Debug lines, apart from the max level: `-V` alone traces without debug, as nats-server.
    debug: AtomicBool,
    inner: Mutex<Inner>,
}

static LOGGER: std::sync::OnceLock<Logger> = std::sync::OnceLock::new();

fn logger() -> &'static Logger {
    LOGGER.get_or_init(|| Logger {
        pid: std::process::id(),
        logtime: AtomicBool::new(true),
        json: AtomicBool::new(false),
        debug: AtomicBool::new(false),
        inner: Mutex::new(Inner { file: None }),
    })
}

/// Installs the logger (once) and applies `settings`. Fails when the log file cannot be opened.
pub(crate) fn init(settings: &LogSettings) -> io::Result<()> {
    let logger = logger();
    // A second init (tests, reload) only reconfigures.
    let _ = log::set_logger(logger);
    configure(settings)
}

/// Applies new settings. Opens the new file first so a bad path leaves the old one.
pub(crate) fn configure(settings: &LogSettings) -> io::Result<()> {
    prepare(settings)?.install();
    Ok(())
}

/// New logger settings whose log file is already open: installing them cannot fail, so a
/// reload opens the file while it may still give up, and installs only once nothing can fail.
#[derive(Debug)]
pub(crate) struct Prepared {
    settings: LogSettings,
    /// `Some` when the file changes: the new file (`None`: log to stderr).
    file: Option<Option<(String, File)>>,
}

/// Opens what `settings` needs (a changed log file) without touching the running logger.
pub(crate) fn prepare(settings: &LogSettings) -> io::Result<Prepared> {
    let logger = logger();
    let inner = logger.inner.lock().unwrap_or_else(|e| e.into_inner());
    let same_file = match (&inner.file, &settings.file) {
        (Some((old, _)), Some(new)) => old == new,
        (None, None) => true,
        _ => false,
    };
    drop(inner);
    let file = if same_file {
        None
    } else {
        Some(match &settings.file {
            Some(path) => Some((path.clone(), open_log(path)?)),
            None => None,
        })
    };
    Ok(Prepared {
        settings: settings.clone(),
        file,
    })
}

impl Prepared {
    /// Switches the logger to these settings.
    pub(crate) fn install(self) {
        let logger = logger();
        let settings = &self.settings;
        let level = if settings.trace {
            LevelFilter::Trace
        } else if settings.debug {
            LevelFilter::Debug
        } else {
            LevelFilter::Info
        };
        if let Some(file) = self.file {
            let mut inner = logger.inner.lock().unwrap_or_else(|e| e.into_inner());
            inner.file = file;
        }
        logger.logtime.store(settings.logtime, Ordering::Relaxed);
        logger
            .json
            .store(settings.format == LogFormat::Json, Ordering::Relaxed);
        logger.debug.store(settings.debug, Ordering::Relaxed);
        log::set_max_level(level);
    }
}

fn open_log(path: &str) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Reopens the log file (SIGUSR1). Logs what happened, like nats-server.
pub(crate) fn reopen() {
    let logger = logger();
    let res = {
        let mut inner = logger.inner.lock().unwrap_or_else(|e| e.into_inner());
        match inner.file.take() {
            None => None,
            Some((path, old)) => match open_log(&path) {
                Ok(f) => {
                    inner.file = Some((path, f));
                    Some(Ok(()))
                }
                Err(e) => {
                    inner.file = Some((path, old));
                    Some(Err(e))
                }
            },
        }
    };
    match res {
        None => log::info!("File log re-open ignored, not a file logger"),
        Some(Ok(())) => log::info!("File log re-opened"),
        Some(Err(e)) => log::error!("Unable to re-open the log file: {e}"),
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
            && (metadata.level() != Level::Debug || self.debug.load(Ordering::Relaxed))
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // rustls and other dependencies log through the same facade; keep only ours.
        if !record.target().starts_with("natsws") {
            return;
        }
        self.write_line(Severity::Log(record.level()), &record.args().to_string());
    }

    fn flush(&self) {}
}

impl Logger {
    fn write_line(&self, severity: Severity, msg: &str) {
        let now = self.logtime.load(Ordering::Relaxed).then(SystemTime::now);
        let line = if self.json.load(Ordering::Relaxed) {
            json_line(self.pid, now, severity, msg)
        } else {
            text_line(self.pid, now, severity, msg)
        };
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match inner.file.as_mut() {
            Some((_, f)) => {
                let _ = f.write_all(line.as_bytes());
            }
            None => {
                let _ = io::stderr().write_all(line.as_bytes());
            }
        }
    }
}

/// `[pid] YYYY/MM/DD HH:MM:SS.micro [LVL] msg\n`, without the time when `now` is `None`.
fn text_line(pid: u32, now: Option<SystemTime>, severity: Severity, msg: &str) -> String {
    let mut line = String::with_capacity(msg.len() + 48);
    line.push('[');
    line.push_str(&pid.to_string());
    line.push_str("] ");
    if let Some(t) = now {
        line.push_str(&timestamp(t));
        line.push(' ');
    }
    line.push_str(severity.tag());
    line.push(' ');
    line.push_str(msg);
    line.push('\n');
    line
}

/// One JSON object and a newline; serde_json escapes control characters, so a message with a
/// newline still takes exactly one line.
fn json_line(pid: u32, now: Option<SystemTime>, severity: Severity, msg: &str) -> String {
    let record = JsonLine {
        time: now.map(rfc3339),
        level: severity.name(),
        pid,
        msg,
    };
    let mut line = serde_json::to_string(&record).unwrap_or_default();
    line.push('\n');
    line
}

/// RFC 3339 in UTC with microseconds (trailing zeros trimmed, as Go's `RFC3339Nano`).
fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    gotext::format_rfc3339(secs, d.subsec_micros() * 1_000)
}

/// Writes an `[FTL]` line and exits with status 1.
pub(crate) fn fatal(msg: &str) -> ! {
    logger().write_line(Severity::Fatal, msg);
    std::process::exit(1)
}

/// `YYYY/MM/DD HH:MM:SS.micro` in UTC (the machine's zone is UTC; natsws reads no zone data).
pub(crate) fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, mo, da) = gotext::civil_from_days(i64::try_from(secs / 86_400).unwrap_or(0));
    let rem = secs % 86_400;
    format!(
        "{y:04}/{mo:02}/{da:02} {:02}:{:02}:{:02}.{:06}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps() {
        let t = UNIX_EPOCH + Duration::from_micros(1_795_437_470_410_423);
        assert_eq!(timestamp(t), "2026/11/23 12:37:50.410423");
        assert_eq!(timestamp(UNIX_EPOCH), "1970/01/01 00:00:00.000000");
    }

    fn check_json(now: Option<SystemTime>, severity: Severity, msg: &str, expect: &str) {
        let line = json_line(7, now, severity, msg);
        assert_eq!(line, format!("{expect}\n"));
        let back: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(back["msg"], msg);
        assert_eq!(back["pid"], 7);
    }

    #[test]
    fn json_lines() {
        let t = UNIX_EPOCH + Duration::from_micros(1_795_437_470_410_423);
        check_json(
            Some(t),
            Severity::Log(Level::Info),
            "Server is ready",
            r#"{"time":"2026-11-23T12:37:50.410423Z","level":"info","pid":7,"msg":"Server is ready"}"#,
        );
        check_json(
            Some(UNIX_EPOCH + Duration::from_secs(1)),
            Severity::Fatal,
            "bad",
            r#"{"time":"1970-01-01T00:00:01Z","level":"fatal","pid":7,"msg":"bad"}"#,
        );
        // -T=false leaves the time out; quotes, newlines and control bytes stay on one line.
        check_json(
            None,
            Severity::Log(Level::Trace),
            "<<- [PUB a \"b\"\r\n]\u{1}",
            r#"{"level":"trace","pid":7,"msg":"<<- [PUB a \"b\"\r\n]\u0001"}"#,
        );
        for (level, name) in [
            (Level::Error, "error"),
            (Level::Warn, "warn"),
            (Level::Debug, "debug"),
        ] {
            assert_eq!(Severity::Log(level).name(), name);
        }
    }

    #[test]
    fn text_lines_keep_the_reference_format() {
        let t = UNIX_EPOCH + Duration::from_micros(1_795_437_470_410_423);
        assert_eq!(
            text_line(7, Some(t), Severity::Log(Level::Warn), "careful"),
            "[7] 2026/11/23 12:37:50.410423 [WRN] careful\n"
        );
        assert_eq!(
            text_line(7, None, Severity::Fatal, "bad"),
            "[7] [FTL] bad\n"
        );
    }

    #[test]
    fn format_names() {
        assert_eq!(LogFormat::parse("json"), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse("text"), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse("JSON"), None);
    }
}
