//! Group commit: several changes to one file, made durable by one commit.
//!
//! Each commit costs four fsyncs (metadata and content, each a file and its
//! directory), so a server applying edits one by one is bound by the
//! disk's fsync latency. When a burst of requests is handled together
//! ([`Store::begin_group`] .. [`Store::commit_group`]), the changes to one
//! file are applied in memory in arrival order under the file's lock, and
//! committed once: the metadata (revision advanced once per change, one
//! reply-memory entry per keyed change, `prev_*` = the state before the
//! group), then the content.
//!
//! The atomicity promise is unchanged. No change of a group is answered
//! before the commit; a crash before the metadata step loses the whole
//! group (nobody was answered, clients re-send); a crash between the two
//! steps is rolled back as a whole by reconciliation (the content still
//! hashes to `prev_hash`, and every reply-memory entry newer than
//! `prev_rev` goes), so a re-send is applied anew. A failed commit fails
//! every change of its group ([`GroupFailure`]). Each change still gets its
//! own revision, so `expect_rev` works inside a group as between groups.
//! `show` of a file with staged changes first commits them, so it only
//! ever shows what is on disk.

use std::collections::HashMap;
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

/// The changes staged while a group is open, by file.
#[derive(Debug, Default)]
pub(super) struct Staging {
    files: HashMap<String, Staged>,
    /// File names in the order they were first staged (commit order).
    order: Vec<String>,
    /// Commits that failed early (a `show` forced them).
    failures: Vec<GroupFailure>,
    /// The creation lock, taken by the first new file of the group and held
    /// until every file is committed (one lock: a second one would wait
    /// for the first forever, as locks conflict inside one process too).
    create: Option<File>,
    /// New files staged so far (counted against `max_files`).
    created: usize,
}

/// One file's state inside a group. Holding the lock keeps every other
/// writer (thread or process) out until the group is committed.
#[derive(Debug)]
struct Staged {
    _lock: File,
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

    /// Commits every staged file (metadata, then content; see the module
    /// docs) and ends the group. Returns the groups whose commit failed:
    /// their outcomes must be answered as errors instead.
    pub fn commit_group(&self) -> Vec<GroupFailure> {
        let Some(mut staging) = self.staging().take() else {
            return Vec::new();
        };
        for name in std::mem::take(&mut staging.order) {
            if let Some(staged) = staging.files.remove(&name) {
                staging.failures.extend(self.commit_staged(&name, staged));
            }
        }
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
        if req.action == Action::Show {
            // Show reads the disk: commit what is staged for the file first.
            if let Some(staged) = staging.files.remove(name) {
                staging.order.retain(|n| n != name);
                if staged.exists && staged.start.hash == meta::ABSENT {
                    // Created by the group: on disk from now on.
                    staging.created = staging.created.saturating_sub(1);
                }
                let failed = self.commit_staged(name, staged);
                staging.failures.extend(failed);
            }
            drop(guard);
            return self.apply_now(name, req, key);
        }
        if !staging.files.contains_key(name) {
            let staged = self.stage_file(name, &req.action)?;
            staging.files.insert(name.to_string(), staged);
            staging.order.push(name.to_string());
        }
        let Staging {
            files,
            create,
            created,
            ..
        } = staging;
        let staged = files.get_mut(name).ok_or_else(|| not_found(name))?;
        let creating = !staged.exists && creates(&req.action);
        if creating {
            // The group creates this file: room for it, under the lock.
            if create.is_none() {
                *create = Some(self.lock_creation()?);
            }
            self.check_room(*created)?;
        }
        let outcome = self.change_staged(name, staged, req, key)?;
        if creating && staged.exists {
            *created += 1;
        }
        Ok(outcome)
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
