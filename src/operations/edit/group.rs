//! Group commit: several changes to one file, made durable by one commit.
//!
//! Each commit costs four fsyncs (metadata and content, each a file and its
//! directory), plus one `fdatasync` of the replay journal when a change
//! carries a replay key, so a server applying edits one by one is bound by
//! the disk's fsync latency. When a burst of requests is handled together
//! ([`Store::begin_group`] .. [`Store::commit_group`]), consecutive changes
//! to one file are applied in memory in arrival order under the file's
//! lock, and committed once: one journal append with a reply-memory entry
//! per keyed change, the metadata (revision advanced once per change,
//! journal length counting the new entries, `prev_*` = the state before
//! the group), then the content. A change to another file, or a
//! `show`, commits what is staged first: a group holds one file's lock at
//! a time, taken in the same order as for a single edit (file, then the
//! creation lock), so two servers editing several files cannot deadlock.
//!
//! The atomicity promise is unchanged. No change of a group is answered
//! before the commit; a crash before the metadata step loses the whole
//! group (nobody was answered, clients re-send); a crash between the two
//! steps is rolled back as a whole by reconciliation (the content still
//! hashes to `prev_hash`, and the journal goes back to `prev_len`, which
//! forgets every entry of the group), so a re-send is applied anew. While
//! staged, a change's entry is already in the file's reply memory, so a
//! copy of it later in the same group is answered with its revision, not
//! applied again (and fails with it if the commit fails). A failed commit fails
//! every change of its group ([`GroupFailure`]). Each change still gets its
//! own revision, so `expect_rev` works inside a group as between groups.
//! `show` only ever shows what is on disk.

use std::fs::File;
use std::path::PathBuf;

use super::index::{Index, Lookup};
use super::journal::{self, Record};
use super::meta::{self, Meta};
use super::replay::{self, Keyed};
use super::store::{check_rev, creates, not_found, outcome};
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

/// One file's state while changes to it are staged (by a group, or by a
/// single edit, which is a group of one). Holding the lock keeps every
/// other writer (thread or process) out until the changes are committed.
#[derive(Debug)]
pub(super) struct Staged {
    _lock: File,
    /// The creation lock, when the changes create the file.
    create: Option<File>,
    meta_path: PathBuf,
    /// The metadata as it was before the changes (reconciled).
    start: Meta,
    /// The revision after the staged changes.
    rev: u64,
    content: String,
    exists: bool,
    /// Revisions given to the staged changes.
    revs: Vec<u64>,
    /// The reply memory, with the staged changes' entries in it (so a copy
    /// of a staged change is answered, not applied again).
    index: Index,
    /// Journal records of the staged keyed changes.
    pending: Vec<Record>,
    /// Tag of this commit's journal records.
    commit: u64,
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
        key: Option<Keyed>,
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
            let revs = staged.revs.clone();
            if let Err(e) = self.commit_staged(&name, staged) {
                tracing::error!(file = %name, error = %e, changes = revs.len(), "group commit failed");
                staging.failures.push(GroupFailure {
                    file: name,
                    revs,
                    code: e.code(),
                    message: e.to_string(),
                });
            }
        }
    }

    /// Locks, reads and reconciles a file, and brings its reply memory up
    /// to date, for staging changes.
    pub(super) fn stage_file(&self, name: &str, action: &Action) -> Result<Staged, EditError> {
        self.precheck(name, action)?;
        let lock = self.lock_file(name)?;
        let bytes = fsread::read(&self.dir().join(name), name, self.limits().max_file_bytes)?;
        let meta_path = self.meta_path(name);
        let start = self.reconcile(name, bytes.as_deref())?;
        let index = Index::sync(
            self.replay.take(name),
            start.journal,
            self.meta_dir(),
            name,
            &self.policy,
        )?;
        let exists = bytes.is_some();
        let content = text::decode(bytes.unwrap_or_default())?;
        Ok(Staged {
            _lock: lock,
            create: None,
            meta_path,
            rev: start.rev,
            start,
            content,
            exists,
            revs: Vec::new(),
            index,
            pending: Vec::new(),
            commit: replay::commit_tag(),
        })
    }

    /// Applies one change to a staged file, in memory. The staged state
    /// changes only once everything has been checked.
    pub(super) fn change_staged(
        &self,
        name: &str,
        staged: &mut Staged,
        req: &EditRequest,
        key: Option<Keyed>,
    ) -> Result<Outcome, EditError> {
        let now = self.policy.now();
        if let Some(k) = &key {
            match staged.index.lookup(k, now) {
                Lookup::Replay { rev, lines } => return Ok(outcome(name, rev, lines, None, true)),
                Lookup::Reused => {
                    return Err(EditError::KeyReused {
                        file: name.to_string(),
                    })
                }
                Lookup::New => staged.index.check_room(name, &self.policy, now)?,
            }
        }
        if !staged.exists && !creates(&req.action) {
            return Err(not_found(name));
        }
        check_rev(req.expect_rev, staged.rev)?;
        if !staged.exists && staged.create.is_none() {
            staged.create = Some(self.reserve_new_file()?);
        }
        let (rendered, count) = text::change(&req.action, &staged.content, self.limits())?;
        let rev = staged.rev.saturating_add(1);
        if let Some(k) = key {
            let record = Record {
                key: k.key,
                fingerprint: k.fingerprint,
                rev,
                lines: count,
                expires: now.saturating_add(k.retain_secs),
                commit: staged.commit,
            };
            staged.index.insert(record, now);
            staged.pending.push(record);
        }
        staged.revs.push(rev);
        staged.rev = rev;
        staged.content = rendered;
        staged.exists = true;
        Ok(outcome(name, rev, count, None, false))
    }

    /// Writes one staged file: the journal records, then the metadata
    /// (revision and journal length of all staged changes, `prev_*` from
    /// before them), then the content. The file's reply memory stays
    /// cached only when everything was written.
    pub(super) fn commit_staged(&self, name: &str, staged: Staged) -> Result<(), EditError> {
        let Staged {
            create,
            meta_path,
            start,
            content,
            revs,
            mut index,
            pending,
            ..
        } = staged;
        if revs.is_empty() {
            self.replay.put(name, index);
            return Ok(());
        }
        let now = self.policy.now();
        let hash = meta::content_hash(Some(content.as_bytes()));
        let written = (|| {
            let (journal, stale) = index.write(&pending, self.meta_dir(), name, now)?;
            let done = start.after(revs.len() as u64, hash, journal);
            meta::save(&meta_path, &done)?;
            if let Some(stale) = stale {
                journal::remove_stale(&stale);
            }
            atomic::write(&self.dir().join(name), content.as_bytes())?;
            Ok(journal)
        })();
        drop(create);
        let journal = written?;
        index.committed(journal, pending.last().copied());
        self.replay.put(name, index);
        Ok(())
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
