//! The count of dead letters the store's budget turned away, in its own
//! file next to the store (`DataDir::dead_letters_dropped`): kept across restarts
//! and shared by the servers of a data directory (updated under the
//! store's lock), read by `mqttapp dlq list`, reset by `dlq purge --all`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use super::store::private_file;

/// The count in file `path`, 0 when there is none.
pub fn read(path: &Path) -> std::io::Result<u64> {
    let mut text = String::new();
    match File::open(path) {
        Ok(f) => f.take(64).read_to_string(&mut text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    Ok(text.trim().parse().unwrap_or(0))
}

/// Adds one (the caller holds the store's lock); returns the new count.
/// Not fsynced: a count lost in a crash is a lost statistic, not a lost
/// request.
pub fn count_one(path: &Path) -> std::io::Result<u64> {
    let total = read(path)? + 1;
    private_file(OpenOptions::new().write(true).create(true).truncate(true))
        .open(path)?
        .write_all(format!("{total}\n").as_bytes())?;
    Ok(total)
}

/// Back to zero (the caller holds the store's lock).
pub fn reset(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
