//! The process logger, in nats-server's format (`logger/log.go` `NewStdLogger`):
//! `[pid] YYYY/MM/DD HH:MM:SS.micro [LVL] message`, or `[pid] [LVL] message` with `-T=false`.
//!
//! Levels map as `Error → ERR`, `Warn → WRN`, `Info → INF`, `Debug → DBG`, `Trace → TRC`;
//! `[FTL]` is written by [`fatal`], which exits. `-D` enables debug, `-V` trace. Output goes
//! to stderr, or to the `-l` file (appended), which SIGUSR1 reopens after rotation.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// How the logger is set up; reload replaces it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LogSettings {
    pub(crate) debug: bool,
    pub(crate) trace: bool,
    pub(crate) logtime: bool,
    pub(crate) file: Option<String>,
}

#[derive(Debug)]
struct Inner {
    file: Option<(String, File)>,
}

#[derive(Debug)]
struct Logger {
    pid: u32,
    logtime: AtomicBool,
    /// Debug lines, apart from the max level: `-V` alone traces without debug, as nats-server.
    debug: AtomicBool,
    inner: Mutex<Inner>,
}

static LOGGER: std::sync::OnceLock<Logger> = std::sync::OnceLock::new();

fn logger() -> &'static Logger {
    LOGGER.get_or_init(|| Logger {
        pid: std::process::id(),
        logtime: AtomicBool::new(true),
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

fn level_tag(level: Level) -> &'static str {
    match level {
        Level::Error => "[ERR]",
        Level::Warn => "[WRN]",
        Level::Info => "[INF]",
        Level::Debug => "[DBG]",
        Level::Trace => "[TRC]",
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
        self.write_line(level_tag(record.level()), &record.args().to_string());
    }

    fn flush(&self) {}
}

impl Logger {
    fn write_line(&self, tag: &str, msg: &str) {
        let mut line = String::with_capacity(msg.len() + 48);
        line.push('[');
        line.push_str(&self.pid.to_string());
        line.push_str("] ");
        if self.logtime.load(Ordering::Relaxed) {
            line.push_str(&timestamp(SystemTime::now()));
            line.push(' ');
        }
        line.push_str(tag);
        line.push(' ');
        line.push_str(msg);
        line.push('\n');
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

/// Writes an `[FTL]` line and exits with status 1.
pub(crate) fn fatal(msg: &str) -> ! {
    logger().write_line("[FTL]", msg);
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
}
