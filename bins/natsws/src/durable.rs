//! Crash-safe file replacement, shared by the MQTT store and the JWT directory.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// The suffix of the temporary file a write goes to before its rename; readers skip such files.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// Writes `bytes` to `path` so that a crash leaves the old file or the new one whole: a
/// temporary file beside it, fsync, rename, then the directory synced so that the rename itself
/// is durable. Once the rename succeeded the file is replaced and the write counts as done; a
/// failing directory sync is only logged.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(TMP_SUFFIX);
    let tmp = PathBuf::from(tmp);
    let res = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
        return res;
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir
        && let Err(e) = fs::File::open(dir).and_then(|d| d.sync_all())
    {
        log::warn!("syncing directory {} failed: {e}", dir.display());
    }
    Ok(())
}
