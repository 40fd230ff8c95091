//! The [`Store`]: one data directory, its locks, and the steps every
//! request shares (validate, lock, read, reconcile); batch.rs stages and
//! commits changes with them.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::error::io_err;
use super::index::Memory;
use super::meta::{self, Meta, Reconciled};
use super::replay::{self, Keyed, ReplayPolicy};
use super::{atomic, fsread, journal, names, text};
use super::{Action, EditError, EditLimits, EditRequest, Outcome};
use crate::datadir::DataDir;

/// Longest accepted replay key, in bytes (response topic and correlation
/// data). Keys are stored hashed, but a bound keeps hostile ones cheap.
pub(super) const MAX_REPLAY_KEY_BYTES: usize = 256;

/// A data directory of line-edited text files. Cheap to share: it holds
/// paths and limits (and a cache of recently used reply memories, checked
/// against the disk before each use; see replay.rs); changes are staged
/// in a [`super::Batch`], not here; all state lives on disk under
/// per-file locks, so it is `Send + Sync` and several `Store`s (in one or
/// many processes) may use the same directory at once.
#[derive(Debug)]
pub struct Store {
    /// Where every file is (crate::datadir).
    dirs: DataDir,
    default_file: String,
    limits: EditLimits,
    /// Cached reply-memory indexes (replay.rs).
    pub(super) replay: Memory,
    /// Bounds and clock of the reply memory.
    pub(super) policy: ReplayPolicy,
}

impl Store {
    /// Opens (creating if needed) the data directory `dir`, so the server can
    /// start on a fresh machine without setup. Missing directories, parents
    /// included, are created with mode 0700 on unix; existing ones are left
    /// as they are. `default_file` must be a valid name; it is created empty
    /// (revision 0) if missing and is what requests without a file act on.
    pub fn open(
        dir: impl Into<PathBuf>,
        default_file: &str,
        limits: EditLimits,
    ) -> Result<Store, EditError> {
        names::validate(default_file)?;
        let dirs = DataDir::new(dir);
        atomic::create_private_dir(dirs.root())?;
        let meta_dir = dirs.meta_dir();
        atomic::create_private_dir(meta_dir)?;
        // Locks, metadata and dead letters live here: a planted symlink
        // would move them (and what the store writes) out of the directory.
        let md = std::fs::symlink_metadata(meta_dir).map_err(io_err(meta_dir))?;
        if md.file_type().is_symlink() {
            return Err(super::error::io_other(
                meta_dir,
                "is a symlink; it must be a directory",
            ));
        }
        let store = Store {
            dirs,
            default_file: default_file.to_string(),
            limits,
            replay: Memory::default(),
            policy: ReplayPolicy::default(),
        };
        store.create_default_file()?;
        Ok(store)
    }

    /// The file that requests without a `file` act on, so callers can report
    /// it.
    pub fn default_file(&self) -> &str {
        &self.default_file
    }

    /// The data directory, for logging and diagnostics.
    pub fn dir(&self) -> &Path {
        self.dirs.root()
    }

    /// The checks of a request that need no lock: the file it acts on
    /// (validated) and its replay identity.
    pub(super) fn check<'a>(
        &'a self,
        req: &'a EditRequest,
    ) -> Result<(&'a str, Option<Keyed>), EditError> {
        let name = req.file.as_deref().unwrap_or(&self.default_file);
        names::validate(name)?;
        text::check_request(&req.action, &self.limits)?;
        let key = self.replay_key(req, name)?;
        Ok((name, key))
    }

    /// A show: reads under the file's lock, reconciles, answers.
    pub(super) fn show(&self, name: &str, req: &EditRequest) -> Result<Outcome, EditError> {
        self.precheck(name, &req.action)?;
        let _lock = self.lock_file(name)?;
        let (bytes, meta) = self.read_reconciled(name)?;
        let Some(bytes) = bytes else {
            return Err(not_found(name));
        };
        check_rev(req.expect_rev, meta.rev)?;
        let content = text::decode(bytes)?;
        let lines = text::split(&content).len() as u64;
        Ok(outcome(name, meta.rev, lines, Some(content), false))
    }

    /// Reads data file `name` (`None` when missing) and its reconciled
    /// metadata. The caller holds the file's lock.
    pub(super) fn read_reconciled(&self, name: &str) -> Result<(Option<Vec<u8>>, Meta), EditError> {
        let bytes = fsread::read(&self.file_path(name), name, self.limits.max_file_bytes)?;
        let meta = self.reconcile(name, bytes.as_deref())?;
        Ok((bytes, meta))
    }

    /// Replaces the bounds and clock of the reply memory (tests).
    #[cfg(test)]
    pub(super) fn set_replay_policy(&mut self, policy: ReplayPolicy) {
        self.policy = policy;
    }

    /// Where every file of the store is.
    pub(super) fn dirs(&self) -> &DataDir {
        &self.dirs
    }

    /// The request's replay identity; `None` for Show, which ignores keys.
    fn replay_key(&self, req: &EditRequest, name: &str) -> Result<Option<Keyed>, EditError> {
        Ok(checked_key(req)?.map(|k| Keyed::of(req, name, k, self.policy.max_retention_secs)))
    }

    /// Takes the exclusive lock of data file `name`.
    pub(super) fn lock_file(&self, name: &str) -> Result<File, EditError> {
        self.lock(&self.dirs.lock(name))
    }

    /// The limits the store enforces.
    pub(super) fn limits(&self) -> &EditLimits {
        &self.limits
    }

    /// Loads the metadata of `name`, reconciles it with `content`, moves
    /// replay entries of the old format into the journal, and saves it if
    /// that changed anything. The caller holds the file's lock.
    pub(super) fn reconcile(&self, name: &str, content: Option<&[u8]>) -> Result<Meta, EditError> {
        let meta_path = self.meta_path(name);
        let stored = meta::load(&meta_path)?;
        let (mut meta, found) = Meta::reconcile(stored, &meta::content_hash(content));
        let mut dirty = found != Reconciled::Consistent;
        if !meta.applied.is_empty() {
            self.migrate(name, &mut meta)?;
            dirty = true;
        }
        if dirty {
            meta::save(&meta_path, &meta)?;
        }
        Ok(meta)
    }

    /// Moves the old format's replay entries into the journal: those of the
    /// last change after `prev_len`, so a rollback still forgets them.
    fn migrate(&self, name: &str, meta: &mut Meta) -> Result<(), EditError> {
        let now = self.policy.now();
        let max = self.policy.max_retention_secs;
        let tag = replay::commit_tag();
        let (kept, last): (Vec<_>, Vec<_>) = meta
            .applied
            .iter()
            .cloned()
            .partition(|a| a.rev <= meta.prev_rev);
        let kept = replay::migrate(&kept, now, max, tag);
        let last = replay::migrate(&last, now, max, tag);
        let at = meta.journal.len;
        let records: Vec<_> = kept.iter().chain(&last).copied().collect();
        let path = self.dirs.journal(name, meta.journal.gen);
        journal::append(&path, at, &records)?;
        meta.journal.prev_len = at + kept.len() as u64;
        meta.journal.len = meta.journal.prev_len + last.len() as u64;
        meta.applied.clear();
        Ok(())
    }

    /// Cheap checks done without the lock so that requests for files that
    /// do not exist (and cannot be created) leave no lock file behind.
    pub(super) fn precheck(&self, name: &str, action: &Action) -> Result<(), EditError> {
        if fsread::exists(&self.dirs.file(name), name)? {
            return Ok(());
        }
        if !creates(action) {
            if std::fs::symlink_metadata(self.meta_path(name)).is_err() {
                return Err(not_found(name));
            }
            return Ok(());
        }
        self.check_room()
    }

    /// Takes the creation lock and checks `max_files`; the returned lock must
    /// be held until the new file is written.
    pub(super) fn reserve_new_file(&self) -> Result<File, EditError> {
        let lock = self.lock(&self.dirs.create_lock())?;
        self.check_room()?;
        Ok(lock)
    }

    fn check_room(&self) -> Result<(), EditError> {
        let max = self.limits.max_files;
        if fsread::count_data_files(self.dirs.root(), max)? >= max {
            return Err(EditError::Limit(format!("too many files (limit {max})")));
        }
        Ok(())
    }

    /// Opens lock file `path` (in the bookkeeping directory) and locks it
    /// exclusively. The lock is released when the returned handle is
    /// dropped (closing the file releases it, also when the process dies).
    fn lock(&self, path: &Path) -> Result<File, EditError> {
        let mut opts = std::fs::OpenOptions::new();
        opts.append(true).create(true);
        let file = match opts.open(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // The bookkeeping directory was removed; recreate it.
                atomic::create_private_dir(self.dirs.meta_dir())?;
                opts.open(path)
            }
            other => other,
        }
        .map_err(io_err(path))?;
        file.lock().map_err(io_err(path))?;
        Ok(file)
    }

    fn create_default_file(&self) -> Result<(), EditError> {
        let name = self.default_file.as_str();
        let path = self.dirs.file(name);
        if fsread::exists(&path, name)? {
            return Ok(());
        }
        let _lock = self.lock_file(name)?;
        if !fsread::exists(&path, name)? {
            atomic::write(&path, b"")?;
        }
        Ok(())
    }

    /// Where data file `name` lives.
    pub(super) fn file_path(&self, name: &str) -> PathBuf {
        self.dirs.file(name)
    }

    /// Where the metadata of data file `name` lives.
    pub(super) fn meta_path(&self, name: &str) -> PathBuf {
        self.dirs.meta(name)
    }
}

/// The request's raw replay key, checked; `None` for Show, which ignores
/// keys.
fn checked_key(req: &EditRequest) -> Result<Option<&[u8]>, EditError> {
    if !req.action.is_change() {
        return Ok(None);
    }
    match req.replay_key.as_deref() {
        None => Ok(None),
        Some([]) => Err(EditError::BadRequest("replay key is empty".into())),
        Some(k) if k.len() > MAX_REPLAY_KEY_BYTES => Err(EditError::Limit(format!(
            "replay key is {} bytes, limit is {MAX_REPLAY_KEY_BYTES}",
            k.len()
        ))),
        Some(k) => Ok(Some(k)),
    }
}

/// Optimistic concurrency: the file must be at the revision the client saw.
pub(super) fn check_rev(expected: Option<u64>, actual: u64) -> Result<(), EditError> {
    match expected {
        Some(expected) if expected != actual => Err(EditError::Conflict { expected, actual }),
        _ => Ok(()),
    }
}

/// Whether the action may create a missing file.
pub(super) fn creates(action: &Action) -> bool {
    matches!(
        action,
        Action::Replace { .. } | Action::Insert { .. } | Action::Append { .. }
    )
}

pub(super) fn not_found(name: &str) -> EditError {
    EditError::NotFound(format!("file {name:?} does not exist"))
}

pub(super) fn outcome(
    name: &str,
    rev: u64,
    lines: u64,
    content: Option<String>,
    replayed: bool,
) -> Outcome {
    Outcome {
        file: name.to_string(),
        rev,
        lines,
        content,
        replayed,
    }
}
