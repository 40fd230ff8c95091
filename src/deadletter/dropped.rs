//! The count of dead letters the store's budget turned away, in
//! `.mqttapp/deadletters.dropped` next to the store: kept across restarts
//! and shared by the servers of a data directory (updated under the
//! store's lock), read by `mqttapp dlq list`, reset by `dlq purge --all`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::store::private_file;

fn path_of(store: &Path) -> PathBuf {
    store.with_extension("dropped")
}

/// The count next to the store file `store`, 0 when there is none.
pub fn read(store: &Path) -> std::io::Result<u64> {
    let mut text = String::new();
    match File::open(path_of(store)) {
        Ok(f) => f.take(64).read_to_string(&mut text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    Ok(text.trim().parse().unwrap_or(0))
}

/// Adds one (the caller holds the store's lock); returns the new count.
/// Not fsynced: a count lost in a crash is a lost statistic, not a lost
/// request.
pub fn count_one(store: &Path) -> std::io::Result<u64> {
    let total = read(store)? + 1;
    private_file(OpenOptions::new().write(true).create(true).truncate(true))
        .open(path_of(store))?
        .write_all(format!("{total}\n").as_bytes())?;
    Ok(total)
}

/// Back to zero (the caller holds the store's lock).
pub fn reset(store: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path_of(store)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
