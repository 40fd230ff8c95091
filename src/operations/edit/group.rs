//! Group commit: several changes to one file, made durable by one commit.
//!
//! Each commit costs four fsyncs (metadata and content, each a file and its
//! directory), so a server applying edits one by one is bound by the
//! disk's fsync latency. When a burst of requests is handled together
//! ([`Store::begin_group`] .. [`Store::commit_group`]), consecutive changes
//! to one file are applied in memory in arrival order under the file's
//! lock, and committed once: the metadata (revision advanced once per
//! change, one reply-memory entry per keyed change, `prev_*` = the state
//! before the group), then the content. A change to another file, or a
//! `show`, commits what is staged first: a group holds one file's lock at
//! a time, taken in the same order as for a single edit (file, then the
//! creation lock), so two servers editing several files cannot deadlock.
//!
//! The atomicity promise is unchanged. No change of a group is answered
//! before the commit; a crash before the metadata step loses the whole
//! group (nobody was answered, clients re-send); a crash between the two
//! steps is rolled back as a whole by reconciliation (the content still
//! hashes to `prev_hash`, and every reply-memory entry newer than
//! `prev_rev` goes), so a re-send is applied anew. A failed commit fails
//! every change of its group ([`GroupFailure`]). Each change still gets its
//! own revision, so `expect_rev` works inside a group as between groups.
//! `show` only ever shows what is on disk.

use std::fs::File;
use std::path::PathBuf;

use super::meta::{self, Meta};
use super::store::{check_rev, creates, not_found, outcome, reconcile};
use super::{atomic, fsread, text};
use super::{Action, EditError, EditRequest, Outcome, Store};

/// A commit of a group that failed: every change it carried failed with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFailure {
    /// The file.
    pub file: String,
    /// The revisions the group's changes were given (now void).
    pub revs: Vec<u64>,
    /// The error's wire code ([`EditError::code`]).
    pub code: &'static str,
    /// What went wrong.
    pub message: String,
}

/// The changes staged while a group is open.
#[derive(Debug, Default)]
pub(super) struct Staging {
    /// The file being staged, with its changes. One at a time: a group
    /// holds the lock of one file (and the creation lock after it), like a
    /// single edit does, so servers editing several files cannot deadlock
    /// on each other's locks. A change to another file commits this one
    /// first.
    current: Option<(String, Staged)>,
    /// Commits that failed before the end of the group.
    failures: Vec<GroupFailure>,
}

/// One file's state inside a group. Holding the lock keeps every other
/// writer (thread or process) out until the group is committed.
#[derive(Debug)]
struct Staged {
    _lock: File,
    /// The creation lock, when the group creates the file.
    create: Option<File>,
    meta_path: PathBuf,
    /// The metadata as it was before the group (reconciled).
    start: Meta,
    /// The metadata with the group's changes (its hash is set at commit).
    meta: Meta,
    content: String,
    exists: bool,
    /// Revisions given to this group's changes.
    revs: Vec<u64>,
}

impl Store {
    /// Starts a group: until [`Store::commit_group`], changes are applied
    /// in memory and their outcomes are promises that the commit keeps or
    /// reports broken. For a caller that answers only after the commit.
    pub fn begin_group(&self) {
        *self.staging() = Some(Staging::default());
    }

    /// Commits what is staged (metadata, then content; see the module docs)
    /// and ends the group. Returns the commits that failed during the
    /// group: their outcomes must be answered as errors instead.
    pub fn commit_group(&self) -> Vec<GroupFailure> {
        let Some(mut staging) = self.staging().take() else {
            return Vec::new();
        };
        self.commit_current(&mut staging);
        staging.failures
    }

    /// [`Store::apply`] after the checks that need no lock: staged when a
    /// group is open, applied at once otherwise.
    pub(super) fn apply_checked(
        &self,
        name: &str,
        req: &EditRequest,
        key: Option<String>,
    ) -> Result<Outcome, EditError> {
        let mut guard = self.staging();
        let Some(staging) = guard.as_mut() else {
            drop(guard);
            return self.apply_now(name, req, key);
        };
        let same_file = staging.current.as_ref().is_some_and(|(n, _)| n == name);
        if !same_file || req.action == Action::Show {
            // Another file's lock, or a show (which reads the disk): commit
            // what is staged first.
            self.commit_current(staging);
        }
        if req.action == Action::Show {
            drop(guard);
            return self.apply_now(name, req, key);
        }
        if staging.current.is_none() {
            let staged = self.stage_file(name, &req.action)?;
            staging.current = Some((name.to_string(), staged));
        }
        let (_, staged) = staging.current.as_mut().ok_or_else(|| not_found(name))?;
        self.change_staged(name, staged, req, key)
    }

    fn commit_current(&self, staging: &mut Staging) {
        if let Some((name, staged)) = staging.current.take() {
            staging.failures.extend(self.commit_staged(&name, staged));
        }
    }

    /// Locks, reads and reconciles a file for a group.
    fn stage_file(&self, name: &str, action: &Action) -> Result<Staged, EditError> {
        self.precheck(name, action)?;
        let lock = self.lock_file(name)?;
        let bytes = fsread::read(&self.dir().join(name), name, self.limits().max_file_bytes)?;
        let meta_path = self.meta_path(name);
        let start = reconcile(&meta_path, bytes.as_deref())?;
        let exists = bytes.is_some();
        let content = text::decode(bytes.unwrap_or_default())?;
        Ok(Staged {
            _lock: lock,
            create: None,
            meta_path,
            meta: start.clone(),
            start,
            content,
            exists,
            revs: Vec::new(),
        })
    }

    /// Applies one change to a staged file, in memory. The staged state
    /// changes only once everything has been checked.
    fn change_staged(
        &self,
        name: &str,
        staged: &mut Staged,
        req: &EditRequest,
        key: Option<String>,
    ) -> Result<Outcome, EditError> {
        let now = meta::now_secs();
        if let Some(hit) = key.as_deref().and_then(|k| staged.meta.find(k, now)) {
            return Ok(outcome(name, hit.rev, hit.lines, None, true));
        }
        if !staged.exists && !creates(&req.action) {
            return Err(not_found(name));
        }
        check_rev(req.expect_rev, staged.meta.rev)?;
        if !staged.exists && staged.create.is_none() {
            staged.create = Some(self.reserve_new_file()?);
        }
        let (rendered, count) = text::change(&req.action, &staged.content, self.limits())?;
        let next = staged.meta.advance(String::new(), count, key, now);
        staged.revs.push(next.rev);
        staged.meta = next;
        staged.content = rendered;
        staged.exists = true;
        Ok(outcome(name, staged.meta.rev, count, None, false))
    }

    /// Writes one staged file: metadata first (revision and reply memory of
    /// the whole group, `prev_*` from before it), then the content.
    fn commit_staged(&self, name: &str, staged: Staged) -> Option<GroupFailure> {
        if staged.revs.is_empty() {
            return None;
        }
        let mut done = staged.meta;
        done.hash = meta::content_hash(Some(staged.content.as_bytes()));
        done.prev_rev = staged.start.rev;
        done.prev_hash = staged.start.hash;
        let written = meta::save(&staged.meta_path, &done)
            .and_then(|()| atomic::write(&self.dir().join(name), staged.content.as_bytes()));
        drop(staged.create);
        match written {
            Ok(()) => None,
            Err(e) => {
                tracing::error!(file = name, error = %e, changes = staged.revs.len(), "group commit failed");
                Some(GroupFailure {
                    file: name.to_string(),
                    revs: staged.revs,
                    code: e.code(),
                    message: e.to_string(),
                })
            }
        }
    }

    fn staging(&self) -> std::sync::MutexGuard<'_, Option<Staging>> {
        // A panic in an operation (caught by the server's guard) may have
        // poisoned the lock; the staged state is only changed after every
        // check, so it is still consistent.
        self.staging
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
