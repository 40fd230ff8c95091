//! The in-memory index of one file's replay journal, and the cache of the
//! indexes of the files used last ([`Memory`]).
//!
//! An index is only used under the file's lock, after [`Index::sync`]
//! checked it against the journal state in the metadata: same generation,
//! not longer than the valid length, and the last record it read still in
//! place (the record's commit tag tells it from one another process wrote
//! at the same position after a rollback). Otherwise the valid journal is
//! read again. So several stores, in one or many processes, sharing the
//! directory see each other's entries, and a rollback is never missed.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;

use super::error::io_other;
use super::journal::{self, Record};
use super::meta::JournalState;
use super::replay::{Keyed, ReplayPolicy};
use super::EditError;
use crate::datadir::DataDir;

/// Journals shorter than this are never compacted (not worth a rewrite).
pub(super) const MIN_COMPACT_RECORDS: u64 = 8_192;
/// How many files' indexes a store keeps in memory.
const CACHED_FILES: usize = 4;

/// What the memory says about a keyed change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lookup {
    /// Not remembered: apply it.
    New,
    /// Applied before with the same content: answer with its revision and
    /// line count.
    Replay {
        /// The revision the change produced.
        rev: u64,
        /// The line count after it.
        lines: u64,
    },
    /// The key was used for a different request.
    Reused,
}

/// One live entry in memory, keyed by its key hash: 40 bytes (no 16-byte
/// alignment, so a table slot is 56).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    fingerprint: [u8; 16],
    rev: u64,
    lines: u64,
    expires: u64,
}

/// The live entries of one file's journal, and which part of the journal
/// they reflect.
#[derive(Debug, Default)]
pub(super) struct Index {
    state: JournalState,
    /// The last record read or written, to check that the journal was not
    /// rewritten at the same position by someone else.
    last: Option<Record>,
    entries: HashMap<[u8; 16], Entry>,
    /// No entry expires before this (Unix seconds): pruning is pointless
    /// until then.
    next_expiry: u64,
    /// The journal length at which to consider compaction next.
    compact_at: u64,
}

impl Index {
    /// Brings `cached` (or a new index) up to the journal `state` of file
    /// `name`: reads only the new records when the cached index is a prefix
    /// of it, the whole valid journal otherwise.
    pub(super) fn sync(
        cached: Option<Index>,
        state: JournalState,
        dirs: &DataDir,
        name: &str,
        policy: &ReplayPolicy,
    ) -> Result<Index, EditError> {
        let path = dirs.journal(name, state.gen);
        let max = 4 * policy.capacity as u64 + MIN_COMPACT_RECORDS;
        if state.len > max {
            return Err(io_other(
                &path,
                "replay journal is longer than the store ever writes",
            ));
        }
        let now = policy.now();
        if let Some(mut ix) = cached {
            if ix.state.gen == state.gen && ix.state.len <= state.len {
                let from = ix.state.len.saturating_sub(1);
                let read = journal::read(&path, from, state.len)?;
                let same_start = match (ix.last, read.first()) {
                    (None, _) => ix.state.len == 0,
                    (Some(last), Some(first)) => last == *first,
                    (Some(_), None) => false,
                };
                if same_start {
                    let skip = usize::from(ix.last.is_some());
                    for r in &read[skip..] {
                        ix.insert(*r, now);
                    }
                    ix.state = state;
                    ix.last = read.last().copied().or(ix.last);
                    return Ok(ix);
                }
            }
        }
        let records = journal::read(&path, 0, state.len)?;
        let mut ix = Index {
            state,
            last: records.last().copied(),
            ..Index::default()
        };
        for r in records {
            ix.insert(r, now);
        }
        ix.compact_at = compact_threshold(ix.entries.len());
        Ok(ix)
    }

    /// What the memory says about `keyed` at `now`.
    pub(super) fn lookup(&self, keyed: &Keyed, now: u64) -> Lookup {
        match self.entries.get(&keyed.key.to_le_bytes()) {
            Some(e) if e.expires > now => {
                let fp = u128::from_le_bytes(e.fingerprint);
                if fp == 0 || fp == keyed.fingerprint {
                    Lookup::Replay {
                        rev: e.rev,
                        lines: e.lines,
                    }
                } else {
                    Lookup::Reused
                }
            }
            _ => Lookup::New,
        }
    }

    /// Refuses a new entry when `capacity` live entries are remembered.
    pub(super) fn check_room(
        &mut self,
        name: &str,
        policy: &ReplayPolicy,
        now: u64,
    ) -> Result<(), EditError> {
        if self.entries.len() < policy.capacity {
            return Ok(());
        }
        self.prune(now);
        if self.entries.len() < policy.capacity {
            return Ok(());
        }
        Err(EditError::Busy(format!(
            "the replay memory of {name:?} is full ({} keyed changes remembered until their \
             clients can no longer re-send them); nothing was applied - retry in a few seconds",
            policy.capacity
        )))
    }

    /// Remembers a change (from the journal, or staged by a commit).
    pub(super) fn insert(&mut self, r: Record, now: u64) {
        if r.expires <= now {
            return;
        }
        self.next_expiry = if self.entries.is_empty() {
            r.expires
        } else {
            self.next_expiry.min(r.expires)
        };
        let entry = Entry {
            fingerprint: r.fingerprint.to_le_bytes(),
            rev: r.rev,
            lines: r.lines,
            expires: r.expires,
        };
        self.entries.insert(r.key.to_le_bytes(), entry);
    }

    /// Forgets expired entries (only when one may have expired).
    fn prune(&mut self, now: u64) {
        if now < self.next_expiry {
            return;
        }
        self.entries.retain(|_, r| r.expires > now);
        self.next_expiry = self.entries.values().map(|r| r.expires).min().unwrap_or(0);
    }

    /// Writes `new` (records of changes about to be committed, already
    /// inserted) to the journal and returns the journal state that counts
    /// them, `prev_len` = what was valid before them. Compacts into the
    /// next generation when most of the journal is expired; the returned
    /// path is the old generation's file, to remove once the metadata
    /// points at the new one.
    pub(super) fn write(
        &mut self,
        new: &[Record],
        dirs: &DataDir,
        name: &str,
        now: u64,
    ) -> Result<(JournalState, Option<PathBuf>), EditError> {
        let old = self.state;
        let grown = old.len + new.len() as u64;
        // Worth a look once the journal reached the threshold set at the
        // last look, or once entries may have expired since.
        let due = grown >= self.compact_at || now >= self.next_expiry;
        if !new.is_empty() && grown >= MIN_COMPACT_RECORDS && due {
            self.prune(now);
            let live = self.entries.len();
            self.compact_at = compact_threshold(live);
            if grown >= 2 * live as u64 {
                let news: HashSet<u128> = new.iter().map(|r| r.key).collect();
                let commit = new[0].commit;
                let mut kept: Vec<Record> = self
                    .entries
                    .iter()
                    .map(|(k, e)| Record {
                        key: u128::from_le_bytes(*k),
                        fingerprint: u128::from_le_bytes(e.fingerprint),
                        rev: e.rev,
                        lines: e.lines,
                        expires: e.expires,
                        commit,
                    })
                    .filter(|r| !news.contains(&r.key))
                    .collect();
                kept.sort_by_key(|r| r.rev);
                let carried = kept.len() as u64;
                kept.extend_from_slice(new);
                let gen = old.gen + 1;
                journal::append(&dirs.journal(name, gen), 0, &kept)?;
                let state = JournalState {
                    gen,
                    len: kept.len() as u64,
                    prev_len: carried,
                };
                return Ok((state, Some(dirs.journal(name, old.gen))));
            }
        }
        journal::append(&dirs.journal(name, old.gen), old.len, new)?;
        let state = JournalState {
            gen: old.gen,
            len: grown,
            prev_len: old.len,
        };
        Ok((state, None))
    }

    /// Records that the metadata now says `state` and the last record is
    /// `last`, so the cached index stays valid.
    pub(super) fn committed(&mut self, state: JournalState, last: Option<Record>) {
        self.state = state;
        if last.is_some() {
            self.last = last;
        }
    }
}

fn compact_threshold(live: usize) -> u64 {
    (2 * live as u64).max(MIN_COMPACT_RECORDS)
}

/// The indexes of the files used most recently, so a commit reads only
/// what other stores appended since.
#[derive(Debug, Default)]
pub(super) struct Memory {
    files: Mutex<Vec<(String, Index)>>,
}

impl Memory {
    /// Takes the cached index of `name` out of the cache (the caller holds
    /// the file's lock and puts it back with [`Memory::put`]).
    pub(super) fn take(&self, name: &str) -> Option<Index> {
        let mut files = self.lock();
        let at = files.iter().position(|(n, _)| n == name)?;
        Some(files.remove(at).1)
    }

    /// Caches `index` as the most recently used one.
    pub(super) fn put(&self, name: &str, index: Index) {
        let mut files = self.lock();
        files.retain(|(n, _)| n != name);
        if files.len() >= CACHED_FILES {
            files.remove(0);
        }
        files.push((name.to_string(), index));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, Index)>> {
        self.files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;

    use super::*;

    fn rec(key: u128, fingerprint: u128, expires: u64, commit: u64) -> Record {
        Record {
            key,
            fingerprint,
            rev: 7,
            lines: 8,
            expires,
            commit,
        }
    }

    fn keyed(key: u128, fingerprint: u128) -> Keyed {
        Keyed {
            key,
            fingerprint,
            retain_secs: 1,
        }
    }

    /// The layout of a data directory in `dir`, its bookkeeping created.
    fn dirs(dir: &tempfile::TempDir) -> DataDir {
        let dirs = DataDir::new(dir.path());
        std::fs::create_dir(dirs.meta_dir()).unwrap();
        dirs
    }

    fn policy(capacity: usize, now: u64) -> ReplayPolicy {
        ReplayPolicy {
            capacity,
            max_retention_secs: 300,
            clock: Some(Arc::new(AtomicU64::new(now))),
        }
    }

    fn state(gen: u64, len: u64) -> JournalState {
        JournalState {
            gen,
            len,
            prev_len: 0,
        }
    }

    #[test]
    fn an_entry_answers_until_the_second_it_expires() {
        let mut ix = Index::default();
        ix.insert(rec(1, 5, 100, 0), 99);
        ix.insert(rec(2, 5, 100, 0), 100);
        let replay = Lookup::Replay { rev: 7, lines: 8 };
        assert_eq!(ix.lookup(&keyed(1, 5), 99), replay);
        assert_eq!(ix.lookup(&keyed(1, 6), 99), Lookup::Reused);
        assert_eq!(ix.lookup(&keyed(1, 5), 100), Lookup::New);
        assert_eq!(
            ix.lookup(&keyed(2, 5), 99),
            Lookup::New,
            "expired on insert"
        );
        assert_eq!(ix.entries.len(), 1);
        // A migrated entry (no fingerprint) matches any content.
        ix.insert(rec(3, 0, 100, 0), 0);
        assert_eq!(ix.lookup(&keyed(3, 42), 0), replay);
    }

    #[test]
    fn room_is_made_only_by_expired_entries() {
        let policy = policy(2, 0);
        let mut ix = Index::default();
        ix.insert(rec(1, 1, 100, 0), 0);
        assert!(ix.check_room("f", &policy, 0).is_ok());
        ix.insert(rec(2, 1, 50, 0), 0);
        assert_eq!(ix.next_expiry, 50);
        let err = ix.check_room("f", &policy, 49).unwrap_err();
        assert!(matches!(err, EditError::Busy(_)), "{err}");
        assert_eq!(ix.entries.len(), 2);
        assert!(ix.check_room("f", &policy, 50).is_ok());
        assert_eq!((ix.entries.len(), ix.next_expiry), (1, 100));
        ix.insert(rec(3, 1, 200, 0), 50);
        assert_eq!(ix.next_expiry, 100);
        assert!(ix.check_room("f", &policy, 99).is_err());
    }

    #[test]
    fn a_journal_longer_than_the_store_ever_writes_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let policy = policy(2, 0);
        let max = 4 * 2 + MIN_COMPACT_RECORDS;
        let records: Vec<Record> = (0..max + 1).map(|i| rec(i.into(), 1, 10, 0)).collect();
        let dirs = dirs(&dir);
        journal::append(&dirs.journal("f", 0), 0, &records).unwrap();
        let ix = Index::sync(None, state(0, max), &dirs, "f", &policy).unwrap();
        assert_eq!(ix.entries.len() as u64, max);
        assert_eq!(ix.compact_at, 2 * max);
        let err = Index::sync(None, state(0, max + 1), &dirs, "f", &policy).unwrap_err();
        assert!(err.to_string().contains("longer than the store"), "{err}");
    }

    #[test]
    fn a_cached_index_reads_what_was_appended_and_sees_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = dirs(&dir);
        let p = dirs.journal("f", 0);
        let policy = policy(100, 0);
        let sync = |cached, len| Index::sync(cached, state(0, len), &dirs, "f", &policy);
        journal::append(&p, 0, &[rec(1, 1, 10, 1), rec(2, 1, 10, 1)]).unwrap();
        let ix = sync(None, 2).unwrap();
        assert_eq!((ix.state, ix.last), (state(0, 2), Some(rec(2, 1, 10, 1))));
        journal::append(&p, 2, &[rec(3, 1, 10, 2)]).unwrap();
        let ix = sync(Some(ix), 3).unwrap();
        assert_eq!(ix.entries.len(), 3);
        assert_eq!((ix.state.len, ix.last), (3, Some(rec(3, 1, 10, 2))));
        // Another store rolled record 3 back and wrote another one there:
        // same position, another commit. Record 3 is forgotten.
        journal::append(&p, 2, &[rec(4, 1, 10, 3)]).unwrap();
        let ix = sync(Some(ix), 3).unwrap();
        assert_eq!(ix.lookup(&keyed(3, 1), 0), Lookup::New);
        assert_ne!(ix.lookup(&keyed(4, 1), 0), Lookup::New);
        assert_eq!(ix.entries.len(), 3);
        // A journal shorter than the cached one (rolled back): read again.
        let ix = sync(Some(ix), 2).unwrap();
        assert_eq!(ix.entries.len(), 2);
        // An empty cached index of the same generation reads everything.
        let ix = sync(Some(Index::default()), 3).unwrap();
        assert_eq!(ix.entries.len(), 3);
    }

    #[test]
    fn the_memory_caches_the_four_files_used_last() {
        let m = Memory::default();
        for name in ["a", "b", "c", "d", "e"] {
            m.put(name, Index::default());
        }
        assert!(m.take("a").is_none());
        for name in ["b", "c", "d", "e"] {
            assert!(m.take(name).is_some(), "{name}");
        }
        assert!(m.take("b").is_none(), "taken out");
        m.put("x", Index::default());
        m.put("x", Index::default());
        assert!(m.take("x").is_some());
        assert!(m.take("x").is_none());
    }
}
