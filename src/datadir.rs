//! The layout of a server's data directory, in one place: the edit store
//! and the dead-letter store both keep their files here, and both ask this
//! type for every path, so no two modules can disagree on a name.
//!
//! ```text
//! <root>/                      mode 0700 when created by the edit store
//!   notes.txt                  data files: names match [A-Za-z0-9._-]{1,128},
//!   other.txt                  never start with '.'; written with mode 0600
//!   .tmpXXXXXX                 in-flight temporary files (leading dot, so
//!                              never taken for data files; a crash may
//!                              leave one)
//!   .mqttapp/                  bookkeeping (mode 0700); never a symlink
//!     notes.txt.lock           edit: `File::lock()` serializes every apply
//!     notes.txt.meta           edit: JSON metadata: rev, hash, prev_rev,
//!                              prev_hash, journal {gen, len, prev_len}
//!     notes.txt.replay-<gen>   edit: replay journal, 64-byte records
//!     .create.lock             edit: held while a new data file is created
//!     deadletters.jsonl        dead letters, one JSON record a line
//!     deadletters.lock         held while the dead-letter store is changed
//!     deadletters.dropped      how many dead letters the budget turned away
//!     data-dir-id              this directory's random id, advertised by
//!                              servers that take edits here (serve/owner.rs)
//!     ops/<op>/<32 hex>        a user-defined operation's remembered
//!                              reply, one file per replay key
//!                              (operations/user/disk.rs)
//! ```
//!
//! Data file names may not start with '.', so nothing the stores keep can
//! collide with a data file, and `.create.lock` with no `<name>.lock`.
//! A data file named `deadletters` shares its lock file with the
//! dead-letter store: that costs waiting, never correctness.

use std::path::{Path, PathBuf};

/// The name of the bookkeeping directory inside a data directory.
pub const META_DIR: &str = ".mqttapp";

/// Paths of one data directory. Cheap to clone; computes paths, touches
/// nothing on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
    meta: PathBuf,
}

impl DataDir {
    /// The layout rooted at `root` (the server's `--data-dir`).
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        let root = root.into();
        let meta = root.join(META_DIR);
        DataDir { root, meta }
    }

    /// The data directory itself: where data files live.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The bookkeeping directory, `.mqttapp/`.
    pub fn meta_dir(&self) -> &Path {
        &self.meta
    }

    /// Data file `name` (a validated edit file name).
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The edit store's metadata of data file `name`.
    pub fn meta(&self, name: &str) -> PathBuf {
        self.meta.join(format!("{name}.meta"))
    }

    /// The lock serializing every change to data file `name`.
    pub fn lock(&self, name: &str) -> PathBuf {
        self.meta.join(format!("{name}.lock"))
    }

    /// The lock held while a new data file is created (`max_files`).
    pub fn create_lock(&self) -> PathBuf {
        self.meta.join(".create.lock")
    }

    /// The replay journal of data file `name`, generation `gen`.
    pub fn journal(&self, name: &str, gen: u64) -> PathBuf {
        self.meta.join(format!("{name}.replay-{gen}"))
    }

    /// The dead-letter store.
    pub fn dead_letters(&self) -> PathBuf {
        self.meta.join("deadletters.jsonl")
    }

    /// The lock of the dead-letter store (the store file itself is
    /// replaced when letters are removed, so it cannot carry the lock).
    pub fn dead_letters_lock(&self) -> PathBuf {
        self.meta.join("deadletters.lock")
    }

    /// The directory's random id (`serve/owner.rs`: which servers may
    /// take a group's edits).
    pub fn id_file(&self) -> PathBuf {
        self.meta.join("data-dir-id")
    }

    /// The remembered replies of user-defined operation `op` (a valid
    /// operation name: `[a-z0-9_-]`), one file per replay key, so a
    /// re-sent request is not run again after a restart.
    pub fn user_replies(&self, op: &str) -> PathBuf {
        self.meta.join("ops").join(op)
    }

    /// How many dead letters the budget turned away.
    pub fn dead_letters_dropped(&self) -> PathBuf {
        self.meta.join("deadletters.dropped")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_inside_the_root_and_bookkeeping_inside_meta() {
        let d = DataDir::new("/data");
        assert_eq!(d.root(), Path::new("/data"));
        assert_eq!(d.file("notes.txt"), Path::new("/data/notes.txt"));
        let meta = Path::new("/data/.mqttapp");
        assert_eq!(d.meta_dir(), meta);
        for (path, name) in [
            (d.meta("n"), "n.meta"),
            (d.lock("n"), "n.lock"),
            (d.create_lock(), ".create.lock"),
            (d.journal("n", 7), "n.replay-7"),
            (d.dead_letters(), "deadletters.jsonl"),
            (d.dead_letters_lock(), "deadletters.lock"),
            (d.dead_letters_dropped(), "deadletters.dropped"),
        ] {
            assert_eq!(path, meta.join(name));
        }
        assert_eq!(d.user_replies("mail"), meta.join("ops").join("mail"));
    }
}
