//! Line-oriented editing of text files in one server-side data directory.
//!
//! This module owns everything the `edit` operation does on disk: it
//! validates file names (so a request can never reach outside the data
//! directory), applies one [`Action`] per [`EditRequest`] under an exclusive
//! per-file lock, keeps a revision number per file for optimistic
//! concurrency (`expect_rev`), and remembers the changes made with a
//! `replay_key` for as long as their clients may re-send them, so that a
//! re-sent request is applied exactly once (replay.rs).
//! Transport (MQTT topics, JSON envelopes) is not its business: callers turn
//! a request into an [`EditRequest`] and an answer into an [`Outcome`] or an
//! [`EditError`] (whose [`EditError::code`] is the wire-level error code).
//!
//! # On-disk layout
//!
//! [`crate::datadir`] owns the layout (the one place that names a path):
//! data files at the top of the data directory, each with a lock file,
//! JSON metadata (rev, hash, prev_rev, prev_hash, journal {gen, len,
//! prev_len}) and a replay journal of 64-byte records (SHA-256/128 of the
//! key and of the request's content, rev, lines, expires-at, commit tag;
//! only the first `len` are valid, journal.rs) in the bookkeeping
//! directory, plus the creation lock held while a new data file is
//! created (max_files). Data files are written with mode 0600, the
//! directories created with mode 0700; in-flight temporary files start
//! with '.', so they are never taken for data files (a crash may leave
//! one).
//!
//! Metadata written by earlier versions kept the reply memory in the JSON
//! (`applied`, hex keys); it still loads, and its entries are moved into
//! the journal (remembered for the maximum retention) the first time the
//! file is used.
//!
//! Names starting with '.' are reserved for the store, which is why user
//! names may not start with one: a lock or meta name can never collide with
//! a data file, and `.create.lock` can never collide with `<name>.lock`.
//!
//! # Crash reasoning
//!
//! Every write is atomic: temporary file in the same directory, `write_all`,
//! `sync_all`, rename over the target, then `sync_all` on the directory. A
//! crash therefore leaves each file either old or new, never torn. A change
//! commits in two such steps, after its replay entry (if keyed) was
//! appended to the journal past the valid length and `fdatasync`ed (step
//! 0, invisible until step 1 counts it): (1) the metadata with `rev + 1`,
//! the new content hash, `prev_*` = the old revision and hash, and
//! `journal.len` counting the new entry (`prev_len` = the length before);
//! (2) the content. Every apply first reconciles under the lock by hashing
//! the content on disk:
//!
//! * equal to `hash`: consistent (both steps landed, or never started);
//! * equal to `prev_hash`: step 1 landed but step 2 did not; the metadata is
//!   rolled back (rev, hash, and `journal.len` = `prev_len`, which forgets
//!   the replay entry of the lost change), so a retry with the same key is
//!   applied anew rather than answered from memory;
//! * anything else: someone changed the file outside the store; the store
//!   accepts the content as a new revision (`rev + 1`).
//!
//! A crash during step 0 leaves garbage past `len`, which the next append
//! overwrites. Compaction (replay.rs) writes the live entries and the new
//! ones into the journal file of generation `gen + 1` in step 0, with
//! `prev_len` = the number of live entries carried over, so a rollback
//! after it still forgets exactly the lost change's entries; the old
//! generation's file is removed after step 1.
//!
//! The reply memory is indexed in memory per file (a few files cached in
//! the [`Store`]); an index is used only under the file's lock, after
//! checking it against `gen`/`len` in the metadata and the last record it
//! read (whose commit tag tells a record rewritten at the same position by
//! another process), so stores in several processes sharing the directory
//! see each other's entries.
//!
//! The client is only answered after step 2, so a reply is never given for a
//! change that a crash can roll back.
//!
//! A server handling a burst of requests hands them to one [`Batch`]
//! ([`Store::batch`]), which commits all consecutive changes to one file
//! together: the same two steps once for them, with `prev_*` = the state
//! before the batch, so the rollback above takes back all of them
//! (batch.rs). [`Batch::commit`] gives the final answers, only after the
//! commit. A single edit ([`Store::apply`]) is a batch of one.
//!
//! # Reply memory bounds
//!
//! A key is remembered for twice the request's Message Expiry plus one
//! second (a copy may be re-sent until the client's timeout and then wait
//! its own expiry), at most `replay::MAX_RETENTION_SECS` (300 s; also for
//! requests without an expiry), and never evicted while young: a file
//! remembers at most `replay::CAPACITY` (131,072) live keys, and a new keyed change
//! beyond that is refused with [`EditError::Busy`] (wire code `busy`,
//! nothing applied). A key that comes back to the same file with a
//! different action, line or text is refused with [`EditError::KeyReused`]
//! (`conflict`); the memory is per file, so on another file it is a new key.
//!
//! # Concurrency
//!
//! `std::fs::File::lock()` (flock on unix) locks an open file description, so
//! two handles conflict even inside one process: the per-file lock serializes
//! both threads sharing one [`Store`] and processes sharing the directory.
//! Different files proceed in parallel.

pub(crate) mod atomic;
mod batch;
mod error;
mod fsread;
mod index;
mod journal;
mod meta;
mod names;
mod replay;
mod store;
mod text;

#[cfg(test)]
mod tests;

pub use self::batch::Batch;
pub use self::error::EditError;
pub use self::store::Store;
pub use crate::limits::EditLimits;

/// What a request does to its file. Line numbers are 1-based, as a person
/// reading the file would count them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Set line `line` to `text`; a line past the end is reached by padding
    /// with empty lines.
    Replace {
        /// The 1-based line to overwrite.
        line: u64,
        /// The new line, without any line terminator.
        text: String,
    },
    /// Insert `text` before line `line` (`lines + 1` appends; further out
    /// pads with empty lines first).
    Insert {
        /// The 1-based line the new text will occupy.
        line: u64,
        /// The new line, without any line terminator.
        text: String,
    },
    /// Add `text` as the new last line.
    Append {
        /// The new line, without any line terminator.
        text: String,
    },
    /// Remove line `line`, which must exist.
    Delete {
        /// The 1-based line to remove.
        line: u64,
    },
    /// Return the whole file with its revision; changes nothing.
    Show,
}

impl Action {
    /// Whether the action modifies the file (and so takes part in revisions
    /// and replay memory).
    fn is_change(&self) -> bool {
        !matches!(self, Action::Show)
    }
}

/// One request to the store, as decoded from the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditRequest {
    /// What to do.
    pub action: Action,
    /// Which file; `None` means the store's default file, so simple clients
    /// need not know any name.
    pub file: Option<String>,
    /// Optimistic concurrency: when `Some(n)`, the request fails with
    /// [`EditError::Conflict`] unless the file is at revision `n`.
    pub expect_rev: Option<u64>,
    /// Idempotency key chosen by the client: a change retried with the same
    /// key (for the same file) is answered from memory instead of being
    /// applied twice. Ignored by [`Action::Show`].
    pub replay_key: Option<Vec<u8>>,
    /// The request's Message Expiry, in seconds: how long its client may
    /// still re-send it, so how long its key must be remembered (see
    /// replay.rs); `None` means the documented maximum.
    pub expiry_secs: Option<u32>,
}

/// The answer to a successful request; serializable so the transport layer
/// can send it as is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    /// The file that was acted on (the default file's name when the request
    /// named none), so the client learns what `None` resolved to.
    pub file: String,
    /// The file's revision after the request; feed it back as `expect_rev`.
    pub rev: u64,
    /// The number of lines in the file after the request.
    pub lines: u64,
    /// The whole file as text, only for [`Action::Show`].
    pub content: Option<String>,
    /// True when the request was a retry answered from the reply memory
    /// (nothing was changed this time).
    pub replayed: bool,
}
