//! The replay journal of one data file: fixed-size binary records, one per
//! change made with a replay key, appended at each commit.
//!
//! The journal file of generation `gen` (`DataDir::journal`) holds records of [`RECORD_BYTES`];
//! only the first `len` are valid, where `gen` and `len` come from the
//! file's metadata (meta.rs `JournalState`). Records past `len` (left by a
//! commit that failed or was rolled back) are garbage and are overwritten
//! by the next append. Appending costs one `fdatasync` and needs no
//! rewrite of anything already written, which is why the reply memory
//! lives here and not in the JSON metadata: tens of thousands of entries
//! per file would make every commit rewrite and re-parse megabytes.
//!
//! Compaction writes the live records into a fresh file of the next
//! generation (then the metadata points at it, then the old file is
//! removed), so the journal stays within a few times the live entries.

use std::fs::{File, OpenOptions};
use std::path::Path;

use super::atomic;
use super::error::{io_err, io_other};
use super::EditError;

/// Bytes per record.
pub(super) const RECORD_BYTES: usize = 64;
/// Records written per `write` call (64 KiB).
const WRITE_CHUNK: usize = 1024;

/// One remembered change: enough to recognize a re-send and answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Record {
    /// The first 128 bits of SHA-256 of the replay key.
    pub(super) key: u128,
    /// The first 128 bits of SHA-256 of the request's content (see
    /// replay.rs `fingerprint`); 0 for entries migrated from the old
    /// format, which had none (such an entry matches any content).
    pub(super) fingerprint: u128,
    /// The revision the change produced.
    pub(super) rev: u64,
    /// The line count after the change.
    pub(super) lines: u64,
    /// Unix seconds after which the entry is forgotten.
    pub(super) expires: u64,
    /// Random per commit: lets a cached index tell "the record I read last
    /// is still there" from "another commit wrote the same position".
    pub(super) commit: u64,
}

impl Record {
    /// The record's bytes (little-endian fields in declaration order).
    pub(super) fn encode(&self) -> [u8; RECORD_BYTES] {
        let mut b = [0u8; RECORD_BYTES];
        b[0..16].copy_from_slice(&self.key.to_le_bytes());
        b[16..32].copy_from_slice(&self.fingerprint.to_le_bytes());
        b[32..40].copy_from_slice(&self.rev.to_le_bytes());
        b[40..48].copy_from_slice(&self.lines.to_le_bytes());
        b[48..56].copy_from_slice(&self.expires.to_le_bytes());
        b[56..64].copy_from_slice(&self.commit.to_le_bytes());
        b
    }

    /// The record in `b` (exactly [`RECORD_BYTES`] long).
    pub(super) fn decode(b: &[u8]) -> Record {
        let u128_at = |i: usize| {
            let mut x = [0u8; 16];
            x.copy_from_slice(&b[i..i + 16]);
            u128::from_le_bytes(x)
        };
        let u64_at = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(x)
        };
        Record {
            key: u128_at(0),
            fingerprint: u128_at(16),
            rev: u64_at(32),
            lines: u64_at(40),
            expires: u64_at(48),
            commit: u64_at(56),
        }
    }
}

/// Reads records `from..to` of `path`. Fewer bytes than the metadata
/// promises is an I/O error, not an empty memory: forgetting keys could
/// apply a re-sent change twice.
pub(super) fn read(path: &Path, from: u64, to: u64) -> Result<Vec<Record>, EditError> {
    if to <= from {
        return Ok(Vec::new());
    }
    let file = File::open(path).map_err(io_err(path))?;
    let count = usize::try_from(to - from).map_err(|_| io_other(path, "journal too long"))?;
    let mut buf = vec![0u8; count * RECORD_BYTES];
    read_exact_at(&file, &mut buf, from * RECORD_BYTES as u64).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            io_other(path, "replay journal is shorter than its metadata says")
        } else {
            io_err(path)(e)
        }
    })?;
    Ok(buf.chunks_exact(RECORD_BYTES).map(Record::decode).collect())
}

/// Writes `records` at record position `at` of `path` (creating the file
/// when `at` is 0) and makes them durable before the metadata that counts
/// them is written.
pub(super) fn append(path: &Path, at: u64, records: &[Record]) -> Result<(), EditError> {
    if records.is_empty() {
        return Ok(());
    }
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(at == 0)
        .open(path)
        .map_err(io_err(path))?;
    // In chunks: a compaction writes tens of thousands of records, and
    // one buffer for all of them would raise the server's peak memory.
    let mut offset = at * RECORD_BYTES as u64;
    for chunk in records.chunks(WRITE_CHUNK) {
        let bytes: Vec<u8> = chunk.iter().flat_map(Record::encode).collect();
        write_all_at(&file, &bytes, offset).map_err(io_err(path))?;
        offset += bytes.len() as u64;
    }
    file.sync_data().map_err(io_err(path))?;
    if at == 0 {
        // A new file: its directory entry must survive a crash too.
        atomic::sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    }
    Ok(())
}

/// Removes the journal file of a generation no longer in use; a failure
/// only leaves a stale file behind, so it is logged, not returned.
pub(super) fn remove_stale(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove an old replay journal")
        }
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(unix)]
fn write_all_at(file: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = file;
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(buf)
}

#[cfg(not(unix))]
fn write_all_at(file: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = file;
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u64) -> Record {
        Record {
            key: u128::from(i) << 64 | 0xA1,
            fingerprint: u128::from(i) << 32 | 0xB2,
            rev: i + 1,
            lines: i + 2,
            expires: i + 3,
            commit: i + 4,
        }
    }

    #[test]
    fn a_record_survives_encoding_field_by_field() {
        let r = Record {
            key: u128::MAX - 1,
            fingerprint: 1 << 100,
            rev: 3,
            lines: 4,
            expires: 5,
            commit: u64::MAX,
        };
        assert_eq!(Record::decode(&r.encode()), r);
        assert_eq!(&r.encode()[32..40], &3u64.to_le_bytes());
    }

    #[test]
    fn records_appended_in_several_chunks_read_back_at_any_position() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.replay-7");
        let all: Vec<Record> = (0..WRITE_CHUNK as u64 + 300).map(record).collect();
        append(&p, 0, &all[..2]).unwrap();
        append(&p, 2, &all[2..]).unwrap();
        assert_eq!(read(&p, 0, all.len() as u64).unwrap(), all);
        assert_eq!(read(&p, 1, 3).unwrap(), all[1..3].to_vec());
        assert_eq!(read(&p, 1030, 1031).unwrap(), vec![all[1030]]);
        assert_eq!(
            std::fs::metadata(&p).unwrap().len(),
            all.len() as u64 * RECORD_BYTES as u64
        );
        // A new file at position 0 replaces an old one of the same name.
        append(&p, 0, &all[5..6]).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), RECORD_BYTES as u64);
        assert_eq!(read(&p, 0, 1).unwrap(), vec![all[5]]);
    }

    #[test]
    fn an_empty_range_reads_nothing_even_without_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.replay-0");
        assert_eq!(read(&p, 0, 0).unwrap(), Vec::new());
        assert_eq!(read(&p, 5, 5).unwrap(), Vec::new());
        append(&p, 0, &[]).unwrap();
        assert!(!p.exists(), "nothing to write creates nothing");
    }

    #[test]
    fn a_journal_shorter_than_promised_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.replay-0");
        append(&p, 0, &[record(0), record(1)]).unwrap();
        let err = read(&p, 0, 3).unwrap_err().to_string();
        assert!(err.contains("shorter than its metadata says"), "{err}");
    }

    #[test]
    fn a_stale_journal_is_removed_and_a_missing_one_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.replay-0");
        append(&p, 0, &[record(0)]).unwrap();
        remove_stale(&p);
        assert!(!p.exists());
        remove_stale(&p);
    }
}
