//! The reply memory's rules: what identifies a keyed change (hashed key
//! and content fingerprint), how long it is remembered, and how many a
//! file may hold.
//!
//! A replay key is remembered for as long as its client may still re-send
//! it ([`retention_secs`]), never evicted by count while young. When a
//! file already remembers [`ReplayPolicy::capacity`] live keys, a new keyed
//! change is refused with [`super::EditError::Busy`] (nothing applied) rather
//! than evicting a key a client may still re-send.
//!
//! Each entry carries a fingerprint of the request's content, so a key that
//! comes back with a different request is refused
//! ([`super::EditError::KeyReused`]) instead of being answered with another
//! request's reply.
//!
//! The entries live in the file's journal (journal.rs) and, indexed, in
//! memory (index.rs).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::journal::Record;
use super::meta::{self, Applied, APPLIED_TTL_SECS};
use super::{Action, EditRequest};

/// Longest time, in seconds, a replay key is remembered: for requests
/// without a Message Expiry, and the cap for those with a long one.
pub(super) const MAX_RETENTION_SECS: u64 = 300;
/// Most live replay entries one file remembers: 64 bytes each in the
/// journal, 56 in memory (plus the hash table's slack: up to 15 MiB for a
/// full file's index).
pub(super) const CAPACITY: usize = 131_072;

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

/// A random tag for the records of one commit (crate::ids: the OS
/// CSPRNG), so a record rewritten at the same journal position by another
/// commit is told apart.
pub(super) fn commit_tag() -> u64 {
    crate::ids::random_u64()
}
