//! Edit batches: several requests, their changes made durable by one
//! commit per file, and their final answers given only after it.
//!
//! Each commit costs four fsyncs (metadata and content, each a file and its
//! directory), plus one `fdatasync` of the replay journal when a change
//! carries a replay key, so a server applying edits one by one is bound by
//! the disk's fsync latency. A [`Batch`] ([`Store::batch`]) takes requests
//! one after the other ([`Batch::apply`]): consecutive changes to one file
//! are applied in memory in arrival order under the file's lock, and
//! committed once: one journal append with a reply-memory entry per keyed
//! change, the metadata (revision advanced once per change, journal length
//! counting the new entries, `prev_*` = the state before the batch), then
//! the content. A change to another file, or a `show`, commits what is
//! staged first: a batch holds one file's lock at a time, taken in the same
//! order as for a single edit (file, then the creation lock), so two
//! servers editing several files cannot deadlock. A single edit
//! ([`Store::apply`]) is a batch of one.
//!
//! The atomicity promise is unchanged. [`Batch::apply`] returns what is
//! staged; only [`Batch::commit`] returns the final answers, so no change
//! is answered before its commit; a crash before the metadata step loses
//! the whole batch (nobody was answered, clients re-send); a crash between
//! the two steps is rolled back as a whole by reconciliation (the content
//! still hashes to `prev_hash`, and the journal goes back to `prev_len`,
//! which forgets every entry of the batch), so a re-send is applied anew.
//! While staged, a change's entry is already in the file's reply memory, so
//! a copy of it later in the same batch is answered with its revision, not
//! applied again (and fails with it if the commit fails). A failed commit
//! fails every change it carried: their final answers are the commit's
//! error. Each change still gets its own revision, so `expect_rev` works
//! inside a batch as between batches. `show` only ever shows what is on
//! disk.

use std::fs::File;

use super::index::{Index, Lookup};
use super::journal::{self, Record};
use super::meta::{self, Meta};
use super::replay::{self, Keyed};
use super::store::{check_rev, creates, not_found, outcome};
use super::{atomic, text};
use super::{Action, EditError, EditRequest, Outcome, Store};

/// Requests whose changes are committed together; see the module docs.
/// Dropping a batch without [`Batch::commit`] releases its locks and
/// writes nothing staged (as a crash before the commit would).
#[derive(Debug)]
pub struct Batch<'s> {
    store: &'s Store,
    /// The file being staged, with its changes. One at a time: a batch
    /// holds the lock of one file (and the creation lock after it), like a
    /// single edit does. A change to another file commits this one first.
    current: Option<Staged>,
    /// One answer per [`Batch::apply`], in order.
    answers: Vec<Answer>,
    /// How many files this batch has staged so far (the current one's
    /// number is `files`), to tie staged answers to their commit.
    files: usize,
}

/// The answer to one request of a batch.
#[derive(Debug)]
enum Answer {
    /// Final: an error, a show, or a replay of a change committed earlier.
    Final(Result<Outcome, EditError>),
    /// A change (or a copy of one) staged for the commit of the batch's
    /// `file`-th staged file: final once that commit succeeded.
    Staged { file: usize, outcome: Outcome },
}

/// One file's state while changes to it are staged. Holding the lock keeps
/// every other writer (thread or process) out until they are committed.
#[derive(Debug)]
struct Staged {
    name: String,
    _lock: File,
    /// The creation lock, when the changes create the file.
    create: Option<File>,
    /// The metadata as it was before the changes (reconciled).
    start: Meta,
    /// The revision after the staged changes.
    rev: u64,
    content: String,
    exists: bool,
    /// How many changes are staged.
    changes: u64,
    /// The reply memory, with the staged changes' entries in it (so a copy
    /// of a staged change is answered, not applied again).
    index: Index,
    /// Journal records of the staged keyed changes.
    pending: Vec<Record>,
    /// Tag of this commit's journal records.
    commit: u64,
}

impl Store {
    /// Starts a batch on this store: for a caller that answers only after
    /// the commit (a server handling a burst of requests).
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            store: self,
            current: None,
            answers: Vec::new(),
            files: 0,
        }
    }

    /// Carries out one request atomically with respect to every other
    /// request on the same file (in this or any other process): a batch of
    /// one. On error nothing was changed, except that the metadata may
    /// have been brought in line with what is on disk (see the module docs
    /// of `edit`).
    pub fn apply(&self, req: &EditRequest) -> Result<Outcome, EditError> {
        let mut batch = self.batch();
        let _staged = batch.apply(req);
        batch.commit().pop().unwrap_or_else(|| {
            Err(super::error::io_other(
                self.dir(),
                "a batch of one gave no answer",
            ))
        })
    }
}

impl Batch<'_> {
    /// Takes one request: a change is staged (and returned as staged, for
    /// the caller's information only: its final answer comes from
    /// [`Batch::commit`]); a show, or a change to another file, first
    /// commits what is staged.
    pub fn apply(&mut self, req: &EditRequest) -> Result<&Outcome, &EditError> {
        let answer = self.answer(req);
        self.answers.push(answer);
        match self.answers.last() {
            Some(Answer::Final(result)) => result.as_ref(),
            Some(Answer::Staged { outcome, .. }) => Ok(outcome),
            None => unreachable!("an answer was just pushed"),
        }
    }

    /// How many requests the batch has taken: the position the next
    /// one's answer will have in [`Batch::commit`]'s list.
    pub fn taken(&self) -> usize {
        self.answers.len()
    }

    /// Commits what is staged (metadata, then content; see the module
    /// docs) and returns the final answer to every request, in the order
    /// they were applied: a staged change whose commit failed is answered
    /// with that commit's error.
    pub fn commit(mut self) -> Vec<Result<Outcome, EditError>> {
        self.commit_current();
        self.answers
            .into_iter()
            .map(|answer| match answer {
                Answer::Final(result) => result,
                Answer::Staged { outcome, .. } => Ok(outcome),
            })
            .collect()
    }

    fn answer(&mut self, req: &EditRequest) -> Answer {
        let store = self.store;
        let checked = store.check(req);
        let (name, key) = match checked {
            Ok(checked) => checked,
            Err(e) => return Answer::Final(Err(e)),
        };
        let same_file = self.current.as_ref().is_some_and(|s| s.name == name);
        if !same_file || req.action == Action::Show {
            // Another file's lock, or a show (which reads the disk): commit
            // what is staged first.
            self.commit_current();
        }
        if req.action == Action::Show {
            return Answer::Final(store.show(name, req));
        }
        if self.current.is_none() {
            match stage_file(store, name, &req.action) {
                Ok(staged) => {
                    self.files += 1;
                    self.current = Some(staged);
                }
                Err(e) => return Answer::Final(Err(e)),
            }
        }
        let Some(staged) = self.current.as_mut() else {
            return Answer::Final(Err(not_found(name)));
        };
        match change(store, staged, req, key) {
            // A change staged now, or a copy of one staged earlier in this
            // batch, stands or falls with the commit.
            Ok(outcome) if outcome.rev > staged.start.rev => Answer::Staged {
                file: self.files,
                outcome,
            },
            other => Answer::Final(other),
        }
    }

    /// Commits the staged file, if any; when that fails, the answers it
    /// carried become the failure.
    fn commit_current(&mut self) {
        let Some(staged) = self.current.take() else {
            return;
        };
        let (name, changes) = (staged.name.clone(), staged.changes);
        let Err(e) = commit_staged(self.store, staged) else {
            return;
        };
        tracing::error!(file = %name, error = %e, changes, "batch commit failed");
        let file = self.files;
        for answer in &mut self.answers {
            if matches!(answer, Answer::Staged { file: f, .. } if *f == file) {
                *answer = Answer::Final(Err(e.duplicate()));
            }
        }
    }
}

/// Locks, reads and reconciles a file, and brings its reply memory up to
/// date, for staging changes.
fn stage_file(store: &Store, name: &str, action: &Action) -> Result<Staged, EditError> {
    store.precheck(name, action)?;
    let lock = store.lock_file(name)?;
    let (bytes, start) = store.read_reconciled(name)?;
    let index = Index::sync(
        store.replay.take(name),
        start.journal,
        store.dirs(),
        name,
        &store.policy,
    )?;
    let exists = bytes.is_some();
    let content = text::decode(bytes.unwrap_or_default())?;
    Ok(Staged {
        name: name.to_string(),
        _lock: lock,
        create: None,
        rev: start.rev,
        start,
        content,
        exists,
        changes: 0,
        index,
        pending: Vec::new(),
        commit: replay::commit_tag(),
    })
}

/// Applies one change to a staged file, in memory. The staged state
/// changes only once everything has been checked.
fn change(
    store: &Store,
    staged: &mut Staged,
    req: &EditRequest,
    key: Option<Keyed>,
) -> Result<Outcome, EditError> {
    let name = staged.name.as_str();
    let now = store.policy.now();
    if let Some(k) = &key {
        match staged.index.lookup(k, now) {
            Lookup::Replay { rev, lines } => return Ok(outcome(name, rev, lines, None, true)),
            Lookup::Reused => {
                return Err(EditError::KeyReused {
                    file: name.to_string(),
                })
            }
            Lookup::New => staged.index.check_room(name, &store.policy, now)?,
        }
    }
    if !staged.exists && !creates(&req.action) {
        return Err(not_found(name));
    }
    check_rev(req.expect_rev, staged.rev)?;
    if !staged.exists && staged.create.is_none() {
        staged.create = Some(store.reserve_new_file()?);
    }
    let (rendered, count) = text::change(&req.action, &staged.content, store.limits())?;
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
    staged.changes += 1;
    staged.rev = rev;
    staged.content = rendered;
    staged.exists = true;
    Ok(outcome(name, rev, count, None, false))
}

/// Writes one staged file: the journal records, then the metadata
/// (revision and journal length of all staged changes, `prev_*` from
/// before them), then the content. The file's reply memory stays cached
/// only when everything was written.
fn commit_staged(store: &Store, staged: Staged) -> Result<(), EditError> {
    let Staged {
        name,
        create,
        start,
        content,
        changes,
        mut index,
        pending,
        ..
    } = staged;
    if changes == 0 {
        store.replay.put(&name, index);
        return Ok(());
    }
    let now = store.policy.now();
    let hash = meta::content_hash(Some(content.as_bytes()));
    let written = (|| {
        let (journal, stale) = index.write(&pending, store.dirs(), &name, now)?;
        let done = start.after(changes, hash, journal);
        meta::save(&store.meta_path(&name), &done)?;
        if let Some(stale) = stale {
            journal::remove_stale(&stale);
        }
        atomic::write(&store.file_path(&name), content.as_bytes())?;
        Ok(journal)
    })();
    drop(create);
    let journal = written?;
    index.committed(journal, pending.last().copied());
    store.replay.put(&name, index);
    Ok(())
}
