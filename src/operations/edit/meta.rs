//! Per-file metadata: revision, content hash, the previous revision (for
//! crash recovery) and where the replay journal ends (journal.rs).
//!
//! Stored as JSON in the bookkeeping directory (`DataDir::meta`) and replaced atomically.
//! A missing metadata file means revision 0 with no history. The metadata
//! describes the content whose SHA-256 is `hash`; `prev_rev`/`prev_hash`
//! describe the content before the last change the store started, and
//! equal `rev`/`hash` when there is nothing to roll back. `journal` says
//! which records of the replay journal are valid (`len`) and how many were
//! valid before the last change (`prev_len`), so a rollback forgets the
//! replay entries of the lost change with it.

use std::io::Read;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::atomic;
use super::error::{io_err, io_other};
use super::EditError;

/// How long, in seconds, a replay entry of the old format (`applied`, kept
/// in this file by earlier versions) was remembered: 7 days. Only used to
/// skip entries already expired when such a file is migrated.
pub(super) const APPLIED_TTL_SECS: u64 = 7 * 24 * 60 * 60;
/// Largest metadata file the store will read. A current one is a few
/// hundred bytes; one written by an earlier version held up to 1024 replay
/// entries of at most `MAX_REPLAY_KEY_BYTES` keys.
const MAX_META_BYTES: u64 = 8 * 1024 * 1024;
/// The "hash" of a file that does not exist. Not hex, so it never equals the
/// hash of any content (an empty file included).
pub(super) const ABSENT: &str = "absent";

/// The metadata of one data file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Meta {
    pub(super) rev: u64,
    pub(super) hash: String,
    pub(super) prev_rev: u64,
    pub(super) prev_hash: String,
    /// Replay entries in the format of earlier versions; moved into the
    /// journal (and emptied) the first time the file is used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) applied: Vec<Applied>,
    /// The valid part of the replay journal (absent in files written by
    /// earlier versions: no journal yet).
    #[serde(default)]
    pub(super) journal: JournalState,
}

/// Which replay-journal records are valid: the file of generation `gen`,
/// records `0..len`; `prev_len` is `len` before the last change (what a
/// rollback goes back to; always within the same generation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct JournalState {
    pub(super) gen: u64,
    pub(super) len: u64,
    pub(super) prev_len: u64,
}

/// One remembered change in the format of earlier versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Applied {
    /// The replay key, hex encoded.
    pub(super) key: String,
    pub(super) rev: u64,
    pub(super) lines: u64,
    /// Unix seconds when the change was made.
    pub(super) at: u64,
}

/// What reconciliation found on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reconciled {
    /// Content matches the metadata (or there is no metadata).
    Consistent,
    /// The last change's metadata landed but its content did not.
    RolledBack,
    /// The content was changed outside the store.
    External,
}

impl Meta {
    /// Metadata for content with `hash` that the store has never changed.
    pub(super) fn fresh(hash: &str) -> Meta {
        Meta {
            rev: 0,
            hash: hash.to_string(),
            prev_rev: 0,
            prev_hash: hash.to_string(),
            applied: Vec::new(),
            journal: JournalState::default(),
        }
    }

    /// Brings `stored` in line with content whose hash is `current` (see the
    /// crash reasoning in the module docs of `edit`).
    pub(super) fn reconcile(stored: Option<Meta>, current: &str) -> (Meta, Reconciled) {
        let Some(mut meta) = stored else {
            return (Meta::fresh(current), Reconciled::Consistent);
        };
        if meta.hash == current {
            return (meta, Reconciled::Consistent);
        }
        if meta.prev_hash == current {
            // Every change after prev_rev is lost (one, or a whole group),
            // and with them their replay entries.
            let kept = meta.prev_rev;
            meta.applied.retain(|a| a.rev <= kept);
            meta.journal.len = meta.journal.prev_len;
            meta.rev = meta.prev_rev;
            meta.hash = meta.prev_hash.clone();
            return (meta, Reconciled::RolledBack);
        }
        meta.rev = meta.rev.saturating_add(1);
        meta.hash = current.to_string();
        meta.prev_rev = meta.rev;
        meta.prev_hash = meta.hash.clone();
        meta.journal.prev_len = meta.journal.len;
        (meta, Reconciled::External)
    }

    /// The metadata after `changes` changes, the last leaving content with
    /// `hash`; `prev_*` describe the state before them and `journal` is
    /// where the replay journal ends with their entries.
    pub(super) fn after(&self, changes: u64, hash: String, journal: JournalState) -> Meta {
        Meta {
            rev: self.rev.saturating_add(changes),
            hash,
            prev_rev: self.rev,
            prev_hash: self.hash.clone(),
            applied: Vec::new(),
            journal,
        }
    }
}

/// Reads the metadata at `path`; `None` when there is none. Unreadable or
/// corrupt metadata is an I/O error rather than a silent reset, since a
/// reset would forget replay keys and could apply a retried change twice.
pub(super) fn load(path: &Path) -> Result<Option<Meta>, EditError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut buf = Vec::new();
    file.take(MAX_META_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(io_err(path))?;
    if buf.len() as u64 > MAX_META_BYTES {
        return Err(io_other(path, "metadata file is too large"));
    }
    serde_json::from_slice(&buf)
        .map(Some)
        .map_err(|e| io_other(path, &format!("corrupt metadata: {e}")))
}

/// Writes `meta` to `path` atomically and durably.
pub(super) fn save(path: &Path, meta: &Meta) -> Result<(), EditError> {
    let json = serde_json::to_vec(meta).map_err(|e| io_other(path, &e.to_string()))?;
    atomic::write(path, &json)
}

/// The hash recorded for content: SHA-256 hex, or [`ABSENT`] for no file.
pub(super) fn content_hash(content: Option<&[u8]>) -> String {
    match content {
        Some(bytes) => hex::encode(Sha256::digest(bytes)),
        None => ABSENT.to_string(),
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(super) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
