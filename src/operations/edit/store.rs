//! The [`Store`]: one data directory, its locks, and the apply pipeline
//! (validate, lock, read, reconcile, replay, check, commit).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::error::io_err;
use super::group::Staging;
use super::meta::{self, Meta, Reconciled};
use super::{atomic, fsread, names, text};
use super::{Action, EditError, EditLimits, EditRequest, Outcome};

/// Name of the bookkeeping directory inside the data directory.
pub(super) const META_DIR: &str = ".mqttapp";
/// Lock file held while a new data file is created, so `max_files` holds
/// even when several processes create different files at once.
const CREATE_LOCK: &str = ".create.lock";
/// Longest accepted replay key, in bytes; keys are stored (hex) in every
/// reply-memory entry, so they must stay small.
pub(super) const MAX_REPLAY_KEY_BYTES: usize = 256;

/// A data directory of line-edited text files. Cheap to share: it holds only
/// paths and limits (and, while a group is open, the staged changes; see
/// group.rs), all state lives on disk under per-file locks, so it is
/// `Send + Sync` and several `Store`s (in one or many processes) may use the
/// same directory at once.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    meta_dir: PathBuf,
    default_file: String,
    limits: EditLimits,
    /// Changes held for one commit while a group is open (group.rs).
    pub(super) staging: Mutex<Option<Staging>>,
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
        let dir = dir.into();
        atomic::create_private_dir(&dir)?;
        let meta_dir = dir.join(META_DIR);
        atomic::create_private_dir(&meta_dir)?;
        // Locks, metadata and dead letters live here: a planted symlink
        // would move them (and what the store writes) out of the directory.
        let md = std::fs::symlink_metadata(&meta_dir).map_err(io_err(&meta_dir))?;
        if md.file_type().is_symlink() {
            return Err(super::error::io_other(
                &meta_dir,
                "is a symlink; it must be a directory",
            ));
        }
        let store = Store {
            dir,
            meta_dir,
            default_file: default_file.to_string(),
            limits,
            staging: Mutex::new(None),
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
        &self.dir
    }

    /// Carries out one request atomically with respect to every other
    /// request on the same file (in this or any other process). On error
    /// nothing was changed, except that the metadata may have been brought
    /// in line with what is on disk (see the module docs).
    pub fn apply(&self, req: &EditRequest) -> Result<Outcome, EditError> {
        let name = req.file.as_deref().unwrap_or(&self.default_file);
        names::validate(name)?;
        text::check_request(&req.action, &self.limits)?;
        let key = replay_key(req)?;
        self.apply_checked(name, req, key)
    }

    /// Applies a checked request now: lock, read, reconcile, change, commit.
    pub(super) fn apply_now(
        &self,
        name: &str,
        req: &EditRequest,
        key: Option<String>,
    ) -> Result<Outcome, EditError> {
        self.precheck(name, &req.action)?;
        let _lock = self.lock_file(name)?;
        self.apply_locked(name, req, key)
    }

    /// Takes the exclusive lock of data file `name`.
    pub(super) fn lock_file(&self, name: &str) -> Result<File, EditError> {
        self.lock(&format!("{name}.lock"))
    }

    /// The limits the store enforces.
    pub(super) fn limits(&self) -> &EditLimits {
        &self.limits
    }

    /// The read-check-write part of [`Store::apply`]; the caller holds the
    /// file's lock.
    fn apply_locked(
        &self,
        name: &str,
        req: &EditRequest,
        key: Option<String>,
    ) -> Result<Outcome, EditError> {
        let bytes = fsread::read(&self.dir.join(name), name, self.limits.max_file_bytes)?;
        let meta_path = self.meta_path(name);
        let meta = reconcile(&meta_path, bytes.as_deref())?;
        let now = meta::now_secs();
        if let Some(hit) = key.as_deref().and_then(|k| meta.find(k, now)) {
            return Ok(outcome(name, hit.rev, hit.lines, None, true));
        }
        if bytes.is_none() && !creates(&req.action) {
            return Err(not_found(name));
        }
        check_rev(req.expect_rev, meta.rev)?;
        let exists = bytes.is_some();
        let content = text::decode(bytes.unwrap_or_default())?;
        if req.action == Action::Show {
            let lines = text::split(&content).len() as u64;
            return Ok(outcome(name, meta.rev, lines, Some(content), false));
        }
        let _create = if exists {
            None
        } else {
            Some(self.reserve_new_file()?)
        };
        let change = Change {
            name,
            meta_path: &meta_path,
            meta: &meta,
            key,
            now,
        };
        self.commit(&req.action, &content, change)
    }

    /// Applies a change to `content` and commits it: metadata first, then
    /// content (see the crash reasoning in the module docs).
    fn commit(&self, action: &Action, content: &str, c: Change<'_>) -> Result<Outcome, EditError> {
        let (rendered, count) = text::change(action, content, &self.limits)?;
        let hash = meta::content_hash(Some(rendered.as_bytes()));
        let next = c.meta.advance(hash, count, c.key, c.now);
        meta::save(c.meta_path, &next)?;
        atomic::write(&self.dir.join(c.name), rendered.as_bytes())?;
        Ok(outcome(c.name, next.rev, count, None, false))
    }

    /// Cheap checks done without the lock so that requests for files that
    /// do not exist (and cannot be created) leave no lock file behind.
    pub(super) fn precheck(&self, name: &str, action: &Action) -> Result<(), EditError> {
        if fsread::exists(&self.dir.join(name), name)? {
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
        let lock = self.lock(CREATE_LOCK)?;
        self.check_room()?;
        Ok(lock)
    }

    fn check_room(&self) -> Result<(), EditError> {
        let max = self.limits.max_files;
        if fsread::count_data_files(&self.dir, max)? >= max {
            return Err(EditError::Limit(format!("too many files (limit {max})")));
        }
        Ok(())
    }

    /// Opens `.mqttapp/<lock_name>` and locks it exclusively. The lock is
    /// released when the returned handle is dropped (closing the file
    /// releases it, also when the process dies).
    fn lock(&self, lock_name: &str) -> Result<File, EditError> {
        let path = self.meta_dir.join(lock_name);
        let mut opts = std::fs::OpenOptions::new();
        opts.append(true).create(true);
        let file = match opts.open(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // The bookkeeping directory was removed; recreate it.
                atomic::create_private_dir(&self.meta_dir)?;
                opts.open(&path)
            }
            other => other,
        }
        .map_err(io_err(&path))?;
        file.lock().map_err(io_err(&path))?;
        Ok(file)
    }

    fn create_default_file(&self) -> Result<(), EditError> {
        let name = self.default_file.as_str();
        let path = self.dir.join(name);
        if fsread::exists(&path, name)? {
            return Ok(());
        }
        let _lock = self.lock(&format!("{name}.lock"))?;
        if !fsread::exists(&path, name)? {
            atomic::write(&path, b"")?;
        }
        Ok(())
    }

    pub(super) fn meta_path(&self, name: &str) -> PathBuf {
        self.meta_dir.join(format!("{name}.meta"))
    }
}

/// What [`Store::commit`] needs besides the action and the content.
struct Change<'a> {
    name: &'a str,
    meta_path: &'a Path,
    meta: &'a Meta,
    key: Option<String>,
    now: u64,
}

/// Loads the metadata, reconciles it with `content` and saves it if that
/// changed anything.
pub(super) fn reconcile(meta_path: &Path, content: Option<&[u8]>) -> Result<Meta, EditError> {
    let stored = meta::load(meta_path)?;
    let (meta, found) = Meta::reconcile(stored, &meta::content_hash(content));
    if found != Reconciled::Consistent {
        meta::save(meta_path, &meta)?;
    }
    Ok(meta)
}

/// The request's replay key as stored (hex); `None` for Show, which ignores
/// keys.
fn replay_key(req: &EditRequest) -> Result<Option<String>, EditError> {
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
        Some(k) => Ok(Some(meta::hex(k))),
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
