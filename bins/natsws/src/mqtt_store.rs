//! The MQTT store directory (`<store_dir>/mqtt`): the broker's retained-message and session
//! records ([`broker::mqtt_store`]) as one file each, written off the event loop.
//!
//! Layout: `retained/<name>` and `sessions/<name>`, where `<name>` is the hex SHA-256 of the
//! record's key (account and subject or client id), so any key makes a safe, fixed-length file
//! name. Every write is crash-safe: the record goes to `<name>.tmp`, is fsynced, renamed over
//! `<name>` and the directory fsynced, so a file is always a whole old or a whole new record.
//! A removal unlinks the file. At start-up every file is read back through
//! [`broker::Broker::restore_mqtt`]; a file that is damaged, too large, or refused (unknown
//! account, bound reached) is logged with its path and skipped, and left in place for
//! inspection. Leftover `.tmp` files (a write cut short) are removed.
//!
//! The loop hands writes to one writer thread through a map keyed by file, so a burst of
//! changes to one retained topic or session costs one write of its last state, and the
//! pending writes are bounded by the state they describe.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use broker::Broker;
use broker::mqtt_store::{StoreKind, StoreWrite};

use crate::durable::{TMP_SUFFIX, write_atomic};
use sha2::{Digest, Sha256};

const RETAINED_DIR: &str = "retained";
const SESSIONS_DIR: &str = "sessions";

/// The store directory and its writer thread.
#[derive(Debug)]
pub(crate) struct MqttStore {
    root: PathBuf,
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Pending {
    /// The last state asked for each file: a record, or `None` to remove it.
    writes: HashMap<PathBuf, Option<Vec<u8>>>,
    stop: bool,
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
}

/// What loading the directory found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loaded {
    pub(crate) retained: usize,
    pub(crate) sessions: usize,
    pub(crate) skipped: usize,
}

fn kind_dir(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::Retained => RETAINED_DIR,
        StoreKind::Session => SESSIONS_DIR,
    }
}

/// The file name of a record key: its SHA-256 in lower-case hex.
fn file_name(key: &[u8]) -> String {
    use std::fmt::Write as _;
    let digest = Sha256::digest(key);
    let mut name = String::with_capacity(64);
    for b in digest {
        let _ = write!(name, "{b:02x}");
    }
    name
}

fn is_record_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

impl MqttStore {
    /// Opens (creating) `<store_dir>/mqtt` and starts the writer thread.
    pub(crate) fn open(store_dir: &Path) -> Result<Self, String> {
        let root = store_dir.join("mqtt");
        for kind in [RETAINED_DIR, SESSIONS_DIR] {
            let dir = root.join(kind);
            fs::create_dir_all(&dir)
                .map_err(|e| format!("MQTT store directory {}: {e}", dir.display()))?;
        }
        let shared = Arc::new(Shared::default());
        let writer = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("mqtt-store".to_owned())
                .spawn(move || write_loop(&shared))
                .map_err(|e| format!("MQTT store writer: {e}"))?
        };
        Ok(Self {
            root,
            shared,
            writer: Some(writer),
        })
    }

    /// The `mqtt` directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Reads every record back into `broker`, logging and skipping those it cannot use.
    pub(crate) fn load(&self, broker: &mut Broker, now: Instant) -> Loaded {
        let mut loaded = Loaded::default();
        for kind in [StoreKind::Retained, StoreKind::Session] {
            let dir = self.root.join(kind_dir(kind));
            let limit = broker.mqtt_record_limit(kind);
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) => {
                    log::error!("MQTT store: {}: {e}", dir.display());
                    continue;
                }
            };
            let mut paths: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for path in paths {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if name.ends_with(TMP_SUFFIX) {
                    // A write cut short: the record it was replacing is still in place.
                    if let Err(e) = fs::remove_file(&path) {
                        log::warn!("MQTT store: {}: {e}", path.display());
                    }
                    continue;
                }
                if !is_record_name(&name) {
                    log::warn!(
                        "MQTT store: {}: not a store record, skipped",
                        path.display()
                    );
                    loaded.skipped += 1;
                    continue;
                }
                match read_record(&path, limit) {
                    Ok(record) => match broker.restore_mqtt(now, &record) {
                        Ok(StoreKind::Retained) => loaded.retained += 1,
                        Ok(StoreKind::Session) => loaded.sessions += 1,
                        Err(e) => {
                            log::error!("MQTT store: {}: {e}, skipped", path.display());
                            loaded.skipped += 1;
                        }
                    },
                    Err(e) => {
                        log::error!("MQTT store: {}: {e}, skipped", path.display());
                        loaded.skipped += 1;
                    }
                }
            }
        }
        loaded
    }

    /// Queues one write for the writer thread (replacing any still pending for its file).
    pub(crate) fn submit(&self, write: StoreWrite) {
        let path = self
            .root
            .join(kind_dir(write.kind))
            .join(file_name(&write.key));
        let mut pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        pending.writes.insert(path, write.record);
        drop(pending);
        self.shared.wake.notify_one();
    }

    /// Writes everything still pending and stops the writer thread.
    pub(crate) fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            pending.stop = true;
        }
        self.shared.wake.notify_one();
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            log::error!("MQTT store: the writer thread panicked");
        }
    }
}

impl Drop for MqttStore {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Drains every write queued from the loop into the store.
pub(crate) fn drain(broker: &mut Broker, store: Option<&MqttStore>) {
    let Some(store) = store else {
        return;
    };
    while let Some(write) = broker.poll_mqtt_store() {
        store.submit(write);
    }
}

fn read_record(path: &Path, limit: usize) -> io::Result<Vec<u8>> {
    let len = fs::metadata(path)?.len();
    if usize::try_from(len).map_or(true, |len| len > limit) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{len} bytes, larger than any record ({limit})"),
        ));
    }
    fs::read(path)
}

fn write_loop(shared: &Shared) {
    loop {
        let (batch, stop) = {
            let mut pending = shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            while pending.writes.is_empty() && !pending.stop {
                pending = shared
                    .wake
                    .wait(pending)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            (std::mem::take(&mut pending.writes), pending.stop)
        };
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (path, record) in batch {
            let res = match &record {
                Some(bytes) => write_atomic(&path, bytes),
                None => match fs::remove_file(&path) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                    other => other,
                },
            };
            if let Err(e) = res {
                log::error!("MQTT store: {}: {e}", path.display());
            }
            if let Some(dir) = path.parent()
                && !dirs.iter().any(|d| d == dir)
            {
                dirs.push(dir.to_owned());
            }
        }
        // The renames and removals are durable once their directory is synced.
        for dir in dirs {
            if let Err(e) = fs::File::open(&dir).and_then(|d| d.sync_all()) {
                log::error!("MQTT store: {}: {e}", dir.display());
            }
        }
        if stop {
            let more = !shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .writes
                .is_empty();
            if !more {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
