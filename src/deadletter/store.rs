//! The store file: appends within a byte budget under a lock, counts what
//! the budget turned away, and reads records one line at a time so that
//! listing or rewriting a store of any size needs memory for one record.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::bound::{bounded, without_payload, Header};
use super::dropped;
use super::{DeadLetter, DeadLetterError, Original, Reason};
use crate::datadir::DataDir;
use crate::limits::DEFAULT_MAX_PAYLOAD;

/// A line buffer that grew past this is released after use, so one old
/// oversized record does not pin its memory for the rest of a scan.
const KEEP_BUFFER: usize = 1 << 20;

/// What became of a dead letter handed to [`DeadLetters::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Stored (possibly without its payload, see `payload_cut`).
    Stored(Box<DeadLetter>),
    /// Not stored: the store is at its budget. `total` is how many letters
    /// the store has turned away since it was last purged.
    Dropped {
        /// Letters dropped so far, all servers sharing the directory.
        total: u64,
    },
}

/// Appends and reads dead letters in a data directory.
#[derive(Debug)]
pub struct DeadLetters {
    /// The store file.
    path: PathBuf,
    /// Its lock file.
    lock: PathBuf,
    /// The count of dropped letters.
    dropped: PathBuf,
    server_id: String,
    seq: AtomicU64,
    max_payload: usize,
    max_bytes: u64,
    mode_checked: AtomicBool,
}

impl DeadLetters {
    /// The store of `data_dir` (the file is created on first use), with no
    /// budget and the default payload cap.
    pub fn new(data_dir: &Path, server_id: &str) -> DeadLetters {
        let dirs = DataDir::new(data_dir);
        DeadLetters {
            path: dirs.dead_letters(),
            lock: dirs.dead_letters_lock(),
            dropped: dirs.dead_letters_dropped(),
            server_id: server_id.to_string(),
            seq: AtomicU64::new(0),
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_bytes: u64::MAX,
            mode_checked: AtomicBool::new(false),
        }
    }

    /// Keeps at most `max_payload` bytes of each payload (the server's
    /// `max_payload_bytes`: it decodes no more, so it needs no more).
    pub fn with_max_payload(mut self, max_payload: usize) -> DeadLetters {
        self.max_payload = max_payload;
        self
    }

    /// Never lets the file grow past `max_bytes` (`max_deadletter_bytes`).
    pub fn with_budget(mut self, max_bytes: u64) -> DeadLetters {
        self.max_bytes = max_bytes;
        self
    }

    /// Where the records live.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a dead letter durably (fsynced), cut to the caps. When the
    /// whole letter would take the file past its budget it is stored
    /// without its payload, and when even that does not fit it is dropped
    /// and counted.
    ///
    /// # Errors
    /// [`DeadLetterError::Io`] when the record cannot be written.
    pub fn record(
        &self,
        reason: Reason,
        detail: &str,
        original: &Original,
    ) -> Result<Recorded, DeadLetterError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let header = Header {
            id: String::new(),
            time: now.as_secs(),
            reason,
            detail,
        };
        self.record_letter(bounded(header, original, self.max_payload))
    }

    /// Records a letter already cut to the caps (see
    /// [`crate::deadletter::bounded`]; the server cuts a refused request
    /// that cannot be answered the moment it arrives, so that the whole
    /// request never waits in memory), giving it its id and time; stored,
    /// slimmed or dropped as in [`DeadLetters::record`].
    ///
    /// # Errors
    /// [`DeadLetterError::Io`] when the record cannot be written.
    pub fn record_letter(&self, mut letter: DeadLetter) -> Result<Recorded, DeadLetterError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        letter.id = format!("{}-{}-{}", self.server_id, now.as_millis(), seq);
        letter.time = now.as_secs();
        let line = json_line(&letter);
        self.locked(move || {
            let mut file = self.open_append()?;
            let size = file.metadata()?.len();
            let (letter, line) = if fits(size, &line, self.max_bytes) {
                (letter, line)
            } else {
                let slim = without_payload(&letter);
                let line = json_line(&slim);
                if !fits(size, &line, self.max_bytes) {
                    let total = dropped::count_one(&self.dropped)?;
                    return Ok(Recorded::Dropped { total });
                }
                (slim, line)
            };
            file.write_all(&line)?;
            file.sync_data()?;
            Ok(Recorded::Stored(Box::new(letter)))
        })
    }

    /// How many letters the budget turned away since the last purge.
    ///
    /// # Errors
    /// [`DeadLetterError::Io`] when the count cannot be read.
    pub fn dropped(&self) -> Result<u64, DeadLetterError> {
        dropped::read(&self.dropped).map_err(|e| self.io(e))
    }

    fn open_append(&self) -> std::io::Result<File> {
        let file = private_file(OpenOptions::new().create(true).append(true)).open(&self.path)?;
        // A store created by an older version may be readable by others.
        if !self.mode_checked.swap(true, Ordering::Relaxed) {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(file)
    }

    /// Calls `each` with every record, oldest first, decoded as `T` (a
    /// part of [`DeadLetter`] is enough: the rest is skipped). One record is
    /// in memory at a time.
    ///
    /// # Errors
    /// [`DeadLetterError`] for unreadable or corrupt records, or what
    /// `each` returns.
    pub fn scan<T, E>(&self, mut each: impl FnMut(T) -> Result<(), E>) -> Result<(), E>
    where
        T: DeserializeOwned,
        E: From<DeadLetterError>,
    {
        let Some(file) = self.open_read()? else {
            return Ok(());
        };
        self.lines(file, |line| {
            let record = serde_json::from_slice(line)
                .map_err(|e| DeadLetterError::Corrupt(e.to_string()))?;
            each(record)
        })
    }

    fn open_read(&self) -> Result<Option<File>, DeadLetterError> {
        match File::open(&self.path) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(self.io(source)),
        }
    }

    /// Calls `each` with every non-empty line of `file`.
    fn lines<E: From<DeadLetterError>>(
        &self,
        file: File,
        mut each: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut reader = BufReader::new(file);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if buf.capacity() > KEEP_BUFFER {
                buf = Vec::new();
            }
            let n = reader.read_until(b'\n', &mut buf).map_err(|e| self.io(e))?;
            if n == 0 {
                return Ok(());
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            each(&buf)?;
        }
    }

    /// Every stored dead letter, oldest first, all in memory: for small
    /// stores and tests; `mqttapp dlq` uses [`DeadLetters::scan`].
    ///
    /// # Errors
    /// [`DeadLetterError`] for unreadable or corrupt records.
    pub fn list(&self) -> Result<Vec<DeadLetter>, DeadLetterError> {
        let mut out = Vec::new();
        self.scan(|l| {
            out.push(l);
            Ok::<_, DeadLetterError>(())
        })?;
        Ok(out)
    }

    /// Removes the dead letters whose ids are in `ids` (all when `None`,
    /// which also resets the dropped count); returns how many were removed.
    /// The file is rewritten atomically, one line at a time.
    ///
    /// # Errors
    /// [`DeadLetterError`] when the store cannot be read or rewritten.
    pub fn remove(&self, ids: Option<&[String]>) -> Result<usize, DeadLetterError> {
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let ids: Option<HashSet<&str>> = ids.map(|ids| ids.iter().map(String::as_str).collect());
        self.locked(|| {
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            let mut gone = 0;
            if let Some(file) = self.open_read().map_err(std::io::Error::other)? {
                self.lines(file, |line| {
                    let Id { id } = serde_json::from_slice(line)
                        .map_err(|e| DeadLetterError::Corrupt(e.to_string()))?;
                    if ids.as_ref().is_none_or(|ids| ids.contains(id.as_str())) {
                        gone += 1;
                        return Ok(());
                    }
                    tmp.write_all(line).map_err(|e| self.io(e))
                })
                .map_err(std::io::Error::other)?;
            }
            tmp.as_file().sync_all()?;
            tmp.persist(&self.path).map_err(|e| e.error)?;
            File::open(dir)?.sync_all()?;
            if ids.is_none() {
                dropped::reset(&self.dropped)?;
            }
            Ok(gone)
        })
    }

    /// Runs `f` under an exclusive lock on a separate lock file (the store
    /// file itself is replaced by `remove`, so it cannot carry the lock).
    fn locked<T>(&self, f: impl FnOnce() -> std::io::Result<T>) -> Result<T, DeadLetterError> {
        let run = || {
            if let Some(dir) = self.path.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)?;
            }
            let lock = private_file(OpenOptions::new().create(true).truncate(false).write(true))
                .open(&self.lock)?;
            lock.lock()?;
            f()
        };
        run().map_err(|e| self.io(e))
    }

    fn io(&self, source: std::io::Error) -> DeadLetterError {
        DeadLetterError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

/// Files of the store are the server's alone (docs/SECURITY.md).
pub(super) fn private_file(options: &mut OpenOptions) -> &mut OpenOptions {
    options.mode(0o600)
}

fn fits(size: u64, line: &[u8], max_bytes: u64) -> bool {
    size.saturating_add(line.len() as u64) <= max_bytes
}

fn json_line(letter: &DeadLetter) -> Vec<u8> {
    // A struct of strings, integers and booleans always serializes.
    let mut line = serde_json::to_vec(letter).expect("dead letter serializes");
    line.push(b'\n');
    line
}
