//! The reply memory: which keyed changes a file has applied, for how long
//! they are remembered, and the in-memory index of its journal.
//!
//! A replay key is remembered for as long as its client may still re-send
//! it ([`retention_secs`]), never evicted by count while young. When a
//! file already remembers [`ReplayPolicy::capacity`] live keys, a new keyed
//! change is refused with [`EditError::Busy`] (nothing applied) rather
//! than evicting a key a client may still re-send.
//!
//! Each entry carries a fingerprint of the request's content, so a key that
//! comes back with a different request is refused
//! ([`EditError::KeyReused`]) instead of being answered with another
//! request's reply.
//!
//! [`Memory`] caches the index of a few files in the [`super::Store`]; an
//! index is only used under the file's lock, after checking it against
//! the journal state in the metadata, so several stores (in one or many
//! processes) sharing the directory see each other's entries.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::journal::{self, Record};
use super::meta::{self, Applied, JournalState, APPLIED_TTL_SECS};
use super::{Action, EditError, EditRequest};

/// Longest time, in seconds, a replay key is remembered: for requests
/// without a Message Expiry, and the cap for those with a long one.
pub(super) const MAX_RETENTION_SECS: u64 = 300;
/// Most live replay entries one file remembers: 64 bytes each in the
/// journal, 56 in memory (plus the hash table's slack: up to 15 MiB for a
/// full file's index).
pub(super) const CAPACITY: usize = 131_072;
/// Journals shorter than this are never compacted (not worth a rewrite).
const MIN_COMPACT_RECORDS: u64 = 8_192;
/// How many files' indexes a store keeps in memory.
const CACHED_FILES: usize = 4;

/// How long a change made with a replay key is remembered, in seconds,
/// given the request's Message Expiry. A client re-sends until its
/// timeout (which our clients put in the expiry), and each copy may wait
/// up to its own expiry before it is handled, so a copy can arrive up to
/// two expiries after the original was handled; one more second covers
/// the clock's rounding. Without an expiry, or with a longer one, the
/// documented maximum.
pub(super) fn retention_secs(expiry_secs: Option<u32>, max: u64) -> u64 {
    match expiry_secs {
        Some(e) => (2 * u64::from(e) + 1).min(max),
        None => max,
    }
}

/// The bounds and clock of the reply memory; a test can shrink them.
#[derive(Debug, Clone)]
pub(super) struct ReplayPolicy {
    /// Most live entries per file.
    pub(super) capacity: usize,
    /// Longest retention, in seconds.
    pub(super) max_retention_secs: u64,
    /// Fixed Unix seconds instead of the system clock, for tests.
    pub(super) clock: Option<Arc<AtomicU64>>,
}

impl Default for ReplayPolicy {
    fn default() -> Self {
        ReplayPolicy {
            capacity: CAPACITY,
            max_retention_secs: MAX_RETENTION_SECS,
            clock: None,
        }
    }
}

impl ReplayPolicy {
    /// Now, in Unix seconds.
    pub(super) fn now(&self) -> u64 {
        match &self.clock {
            Some(c) => c.load(Ordering::SeqCst),
            None => meta::now_secs(),
        }
    }
}

/// A change request's replay identity, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Keyed {
    /// First 128 bits of SHA-256 of the replay key.
    pub(super) key: u128,
    /// First 128 bits of SHA-256 of what the request asks for.
    pub(super) fingerprint: u128,
    /// How long to remember it, in seconds.
    pub(super) retain_secs: u64,
}

impl Keyed {
    /// The identity of `req` (on file `name`), whose key is `key`.
    pub(super) fn of(req: &EditRequest, name: &str, key: &[u8], max_retention: u64) -> Keyed {
        Keyed {
            key: hash128(&[key]),
            fingerprint: fingerprint(req, name),
            retain_secs: retention_secs(req.expiry_secs, max_retention),
        }
    }
}

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
        meta_dir: &Path,
        name: &str,
        policy: &ReplayPolicy,
    ) -> Result<Index, EditError> {
        let path = journal::path(meta_dir, name, state.gen);
        let max = 4 * policy.capacity as u64 + MIN_COMPACT_RECORDS;
        if state.len > max {
            return Err(super::error::io_other(
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
        meta_dir: &Path,
        name: &str,
        now: u64,
    ) -> Result<(JournalState, Option<std::path::PathBuf>), EditError> {
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
                let news: std::collections::HashSet<u128> = new.iter().map(|r| r.key).collect();
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
                journal::append(&journal::path(meta_dir, name, gen), 0, &kept)?;
                let state = JournalState {
                    gen,
                    len: kept.len() as u64,
                    prev_len: carried,
                };
                return Ok((state, Some(journal::path(meta_dir, name, old.gen))));
            }
        }
        journal::append(&journal::path(meta_dir, name, old.gen), old.len, new)?;
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

/// The records for replay entries kept by an earlier version in the
/// metadata (`applied`, with hex keys and no fingerprint), still live by
/// that version's rule; remembered for the maximum retention from now.
pub(super) fn migrate(
    applied: &[Applied],
    now: u64,
    max_retention: u64,
    commit: u64,
) -> Vec<Record> {
    applied
        .iter()
        .filter(|a| now.saturating_sub(a.at) <= APPLIED_TTL_SECS)
        .filter_map(|a| {
            let raw = hex::decode(&a.key).ok()?;
            Some(Record {
                key: hash128(&[&raw]),
                fingerprint: 0,
                rev: a.rev,
                lines: a.lines,
                expires: now + max_retention,
                commit,
            })
        })
        .collect()
}

/// What a change request asks for, hashed: its file, action, line and
/// text. A re-send carries exactly the same; anything else under the same
/// key is a different request. (`expect_rev` is left out: a re-send of a
/// change that was applied carries an `expect_rev` that is stale by then,
/// and is still answered from memory.)
fn fingerprint(req: &EditRequest, name: &str) -> u128 {
    let (tag, line, text): (&[u8], u64, &str) = match &req.action {
        Action::Replace { line, text } => (b"replace", *line, text),
        Action::Insert { line, text } => (b"insert", *line, text),
        Action::Append { text } => (b"append", 0, text),
        Action::Delete { line } => (b"delete", *line, ""),
        Action::Show => (b"show", 0, ""),
    };
    let fp = hash128(&[
        b"edit",
        &(name.len() as u64).to_le_bytes(),
        name.as_bytes(),
        &(tag.len() as u64).to_le_bytes(),
        tag,
        &line.to_le_bytes(),
        &(text.len() as u64).to_le_bytes(),
        text.as_bytes(),
    ]);
    // 0 marks "no fingerprint" (migrated entries).
    fp.max(1)
}

/// The first 128 bits of SHA-256 over `parts`.
fn hash128(parts: &[&[u8]]) -> u128 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    u128::from_le_bytes(b)
}

/// A random tag for the records of one commit.
pub(super) fn commit_tag() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}
