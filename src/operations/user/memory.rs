//! The reply memory of non-idempotent user-defined operations: a request
//! re-sent with the same replay key (response topic and correlation data,
//! the key the edits use) is answered with the first run's reply instead
//! of running the program again; a copy that arrives while the first run
//! is still going waits for its reply.
//!
//! Kept with the edits' rules (`edit::replay`): remembered for as long as
//! the client may re-send ([`retention_secs`]: twice the Message Expiry
//! plus a second, at most 300 s); a key that comes back with another
//! input is refused instead of being answered with another request's
//! reply; and when the memory is full of live entries a new keyed request
//! is refused `busy` (not run) rather than evicting a key a client may
//! still re-send. Like the edits' memory it survives a crash or restart
//! when the server has a data directory for it (`disk`): an answered
//! entry is stored before its reply is published and loaded at start.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::disk::{now_unix, Disk, Stored};
use crate::protocol::Reply;

/// Longest time a reply is remembered (the edits' maximum).
pub const MAX_RETENTION_SECS: u64 = 300;
/// Most entries (running or answered) one operation remembers.
pub const MAX_ENTRIES: usize = 4096;
/// Most bytes of remembered replies one operation holds.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

/// How long a reply is remembered given the request's Message Expiry: a
/// copy can arrive up to two expiries after the original was handled
/// (the edits' rule, `edit::replay::retention_secs`).
pub fn retention_secs(expiry_secs: Option<u32>) -> u64 {
    match expiry_secs {
        Some(e) => (2 * u64::from(e) + 1).min(MAX_RETENTION_SECS),
        None => MAX_RETENTION_SECS,
    }
}

/// What to do with a keyed request.
#[derive(Debug)]
pub enum Begin<W> {
    /// Run it; call [`ReplyMemory::finish`] with its reply.
    Run(W),
    /// The first copy is running; this one is answered when it finishes.
    Parked,
    /// Already answered: send this reply again.
    Replay(Reply, W),
    /// The key was used for another input.
    Reused(W),
    /// The memory is full of live entries: refuse `busy`.
    Full(W),
}

enum Entry<W> {
    Running {
        fingerprint: u128,
        waiters: Vec<W>,
    },
    Done {
        fingerprint: u128,
        reply: Reply,
        bytes: usize,
        until: Instant,
    },
}

/// One operation's remembered replies, keyed by hashed replay key.
pub struct ReplyMemory<W> {
    entries: Mutex<(HashMap<u128, Entry<W>>, usize)>,
    max_entries: usize,
    max_bytes: usize,
    disk: Option<Disk>,
}

impl<W> Default for ReplyMemory<W> {
    fn default() -> Self {
        ReplyMemory::with_bounds(MAX_ENTRIES, MAX_BYTES)
    }
}

impl<W> ReplyMemory<W> {
    /// A memory of at most `max_entries` entries and `max_bytes` of replies.
    pub fn with_bounds(max_entries: usize, max_bytes: usize) -> Self {
        ReplyMemory {
            entries: Mutex::new((HashMap::new(), 0)),
            max_entries,
            max_bytes,
            disk: None,
        }
    }

    /// This memory kept on `disk` too: loads the unexpired replies stored
    /// there (by an earlier run of the server) within the bounds, and
    /// stores every answered entry from now on.
    pub fn persisted(mut self, disk: Disk) -> Self {
        let now = (Instant::now(), now_unix());
        {
            let mut guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            let (entries, bytes) = &mut *guard;
            for s in disk.load(self.max_entries) {
                let size = reply_size(&s.reply);
                if *bytes + size > self.max_bytes {
                    disk.remove(s.key);
                    continue;
                }
                *bytes += size;
                let left = Duration::from_secs(s.until_unix.saturating_sub(now.1));
                entries.insert(
                    s.key,
                    Entry::Done {
                        fingerprint: s.fingerprint,
                        reply: s.reply,
                        bytes: size,
                        until: now.0 + left.min(Duration::from_secs(MAX_RETENTION_SECS)),
                    },
                );
            }
        }
        self.disk = Some(disk);
        self
    }

    /// Looks `key` up for a request whose input is `input`; `waiter` is
    /// where its reply goes.
    pub fn begin(&self, key: &[u8], input: &[u8], waiter: W) -> Begin<W> {
        let (key, fingerprint) = (hash128(key), hash128(input));
        let now = Instant::now();
        let mut guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (entries, bytes) = &mut *guard;
        if let Some(Entry::Done {
            until, bytes: b, ..
        }) = entries.get(&key)
        {
            if *until <= now {
                *bytes -= *b;
                entries.remove(&key);
                self.forget(key);
            }
        }
        match entries.get_mut(&key) {
            Some(Entry::Running { fingerprint: f, .. } | Entry::Done { fingerprint: f, .. })
                if *f != fingerprint =>
            {
                Begin::Reused(waiter)
            }
            Some(Entry::Running { waiters, .. }) => {
                waiters.push(waiter);
                Begin::Parked
            }
            Some(Entry::Done { reply, .. }) => Begin::Replay(reply.clone(), waiter),
            None => {
                if entries.len() >= self.max_entries || *bytes >= self.max_bytes {
                    for gone in expire(entries, bytes, now) {
                        self.forget(gone);
                    }
                }
                if entries.len() >= self.max_entries || *bytes >= self.max_bytes {
                    return Begin::Full(waiter);
                }
                entries.insert(
                    key,
                    Entry::Running {
                        fingerprint,
                        waiters: Vec::new(),
                    },
                );
                Begin::Run(waiter)
            }
        }
    }

    /// Remembers the reply of the run [`ReplyMemory::begin`] started for
    /// `key` for `retain`; returns the copies that waited for it.
    /// With a disk, the entry is stored before this returns, so before
    /// the reply is published.
    pub fn finish(&self, key: &[u8], reply: &Reply, retain: Duration) -> Vec<W> {
        let key = hash128(key);
        let size = reply_size(reply);
        let fingerprint = self.running_fingerprint(key);
        if let (Some(disk), Some(fingerprint)) = (&self.disk, fingerprint) {
            disk.save(&Stored {
                key,
                fingerprint,
                until_unix: now_unix() + retain.as_secs(),
                reply: reply.clone(),
            });
        }
        let mut guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (entries, bytes) = &mut *guard;
        let Some(Entry::Running {
            fingerprint,
            waiters,
        }) = entries.remove(&key)
        else {
            return Vec::new();
        };
        *bytes += size;
        entries.insert(
            key,
            Entry::Done {
                fingerprint,
                reply: reply.clone(),
                bytes: size,
                until: Instant::now() + retain,
            },
        );
        for gone in expire(entries, bytes, Instant::now()) {
            self.forget(gone);
        }
        waiters
    }

    /// The input fingerprint of `key`'s running entry.
    fn running_fingerprint(&self, key: u128) -> Option<u128> {
        let guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match guard.0.get(&key) {
            Some(Entry::Running { fingerprint, .. }) => Some(*fingerprint),
            _ => None,
        }
    }

    /// Removes `key`'s stored copy, if kept on disk.
    fn forget(&self, key: u128) {
        if let Some(disk) = &self.disk {
            disk.remove(key);
        }
    }

    /// Entries held now (running or answered).
    pub fn len(&self) -> usize {
        self.entries.lock().map(|g| g.0.len()).unwrap_or(0)
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops the answered entries whose time is up; returns their keys.
fn expire<W>(entries: &mut HashMap<u128, Entry<W>>, bytes: &mut usize, now: Instant) -> Vec<u128> {
    let mut gone = Vec::new();
    entries.retain(|k, e| match e {
        Entry::Done {
            until, bytes: b, ..
        } if *until <= now => {
            *bytes -= *b;
            gone.push(*k);
            false
        }
        _ => true,
    });
    gone
}

/// What a remembered reply holds.
fn reply_size(reply: &Reply) -> usize {
    let body = match reply {
        Reply::Ok(v) => v.to_string().len(),
        Reply::Err(e) => e.message.len() + e.code.len(),
    };
    body + 128
}

/// The first 128 bits of SHA-256 of `bytes`.
fn hash128(bytes: &[u8]) -> u128 {
    let d = Sha256::digest(bytes);
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    u128::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::OkValue;

    fn ok(text: &str) -> Reply {
        Reply::Ok(OkValue::Text(text.into()))
    }

    #[test]
    fn a_resent_request_is_answered_from_memory_once_run() {
        let m = ReplyMemory::default();
        assert!(matches!(m.begin(b"k", b"in", 1), Begin::Run(1)));
        assert!(matches!(m.begin(b"k", b"in", 2), Begin::Parked));
        assert_eq!(m.finish(b"k", &ok("out"), Duration::from_secs(60)), vec![2]);
        match m.begin(b"k", b"in", 3) {
            Begin::Replay(reply, 3) => assert_eq!(reply, ok("out")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(m.begin(b"k", b"other", 4), Begin::Reused(4)));
        assert!(matches!(m.begin(b"k2", b"in", 5), Begin::Run(5)));
    }

    #[test]
    fn an_expired_reply_is_forgotten_and_a_full_memory_refuses() {
        let m = ReplyMemory::with_bounds(2, usize::MAX);
        assert!(matches!(m.begin(b"a", b"", ()), Begin::Run(())));
        m.finish(b"a", &ok(""), Duration::ZERO);
        assert!(matches!(m.begin(b"a", b"", ()), Begin::Run(())), "expired");
        assert!(matches!(m.begin(b"b", b"", ()), Begin::Run(())));
        assert!(matches!(m.begin(b"c", b"", ()), Begin::Full(())));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn a_persisted_reply_is_answered_after_a_restart_and_forgotten_on_expiry() {
        let tmp = tempfile::tempdir().unwrap();
        let open = || Disk::open(tmp.path().join("op")).unwrap();
        let m = ReplyMemory::default().persisted(open());
        assert!(matches!(m.begin(b"k", b"in", 1), Begin::Run(1)));
        m.finish(b"k", &ok("out"), Duration::from_secs(60));
        assert!(matches!(m.begin(b"gone", b"in", 1), Begin::Run(1)));
        m.finish(b"gone", &ok("x"), Duration::ZERO);
        drop(m); // the server crashed
        let m = ReplyMemory::default().persisted(open());
        assert_eq!(m.len(), 1, "the expired entry is not loaded");
        match m.begin(b"k", b"in", 2) {
            Begin::Replay(reply, 2) => assert_eq!(reply, ok("out")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(m.begin(b"k", b"other", 3), Begin::Reused(3)));
        assert_eq!(std::fs::read_dir(tmp.path().join("op")).unwrap().count(), 1);
    }

    #[test]
    fn retention_follows_the_edits_rule() {
        assert_eq!(retention_secs(Some(10)), 21);
        assert_eq!(retention_secs(Some(1000)), 300);
        assert_eq!(retention_secs(None), 300);
    }
}
