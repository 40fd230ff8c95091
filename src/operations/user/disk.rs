//! The on-disk copy of a user-defined operation's reply memory, so a
//! re-sent request is still answered from memory after a server crash or
//! restart (the edits' replay journal gives them the same promise).
//!
//! One file per answered key in `<data-dir>/.mqttapp/ops/<name>/`
//! (`DataDir::user_replies`), named by the hex of the key's hash, written
//! with the edit store's atomic helper (temporary file, fsync, rename,
//! fsync of the directory) before the reply is published. Layout:
//! `MAGIC`, key hash (16 bytes), input fingerprint (16 bytes), expiry as
//! Unix seconds (8 bytes, little endian), then the reply in CBOR.
//!
//! Nothing read back is trusted: a file larger than [`MAX_FILE`], with
//! another magic, a key hash other than its name, or a reply that does not
//! decode is skipped and logged; expired files are deleted.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::operations::edit::atomic;
use crate::protocol::{decode_reply, encode_reply, Encoding, Reply};

const MAGIC: &[u8; 8] = b"MQUREP1\n";
const HEADER: usize = 8 + 16 + 16 + 8;
/// Largest file read back (a reply larger than the whole memory's byte
/// bound could never have been remembered).
pub const MAX_FILE: u64 = (super::memory::MAX_BYTES + HEADER) as u64;

/// One remembered reply as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Hash of the replay key.
    pub key: u128,
    /// Hash of the request's input.
    pub fingerprint: u128,
    /// When it is forgotten, Unix seconds.
    pub until_unix: u64,
    /// The reply.
    pub reply: Reply,
}

/// The directory of one operation's remembered replies.
#[derive(Debug, Clone)]
pub struct Disk {
    dir: PathBuf,
}

/// Seconds since the Unix epoch now.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Disk {
    /// The store in `dir`, created (mode 0700) if missing; `None` (logged)
    /// when it cannot be: the memory then lives in the process only.
    pub fn open(dir: PathBuf) -> Option<Disk> {
        match atomic::create_private_dir(&dir) {
            Ok(()) => Some(Disk { dir }),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot create the reply memory directory; re-sent requests are answered from memory only until a restart");
                None
            }
        }
    }

    fn path(&self, key: u128) -> PathBuf {
        self.dir.join(format!("{key:032x}"))
    }

    /// Stores `entry` durably; false (logged) when it could not be.
    pub fn save(&self, entry: &Stored) -> bool {
        let mut bytes = Vec::with_capacity(HEADER + 64);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&entry.key.to_le_bytes());
        bytes.extend_from_slice(&entry.fingerprint.to_le_bytes());
        bytes.extend_from_slice(&entry.until_unix.to_le_bytes());
        bytes.extend_from_slice(&encode_reply(&entry.reply, Encoding::Cbor));
        match atomic::write(&self.path(entry.key), &bytes) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot store a remembered reply; a re-send after a restart would run the program again");
                false
            }
        }
    }

    /// Forgets the stored reply of `key` (a missing file is fine).
    pub fn remove(&self, key: u128) {
        let path = self.path(key);
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a remembered reply");
            }
        }
    }

    /// The unexpired stored replies, at most `max_entries` of them; deletes
    /// expired files and those past the bound (so the disk keeps the
    /// memory's bounds), skips (and logs) unreadable ones.
    pub fn load(&self, max_entries: usize) -> Vec<Stored> {
        let now = now_unix();
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in dir.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let Some(key) = name
                .to_str()
                .filter(|n| n.len() == 32)
                .and_then(|n| u128::from_str_radix(n, 16).ok())
            else {
                continue; // a temporary file or a stranger: not ours to read
            };
            match read(&path, key) {
                Ok(stored) if stored.until_unix <= now => self.remove(stored.key),
                Ok(stored) if out.len() < max_entries => out.push(stored),
                Ok(stored) => {
                    tracing::warn!(path = %path.display(), "reply memory full at start; stored reply dropped");
                    self.remove(stored.key);
                }
                Err(why) => {
                    tracing::warn!(path = %path.display(), why, "unreadable remembered reply ignored")
                }
            }
        }
        out
    }
}

fn read(path: &Path, key: u128) -> Result<Stored, &'static str> {
    let meta = std::fs::symlink_metadata(path).map_err(|_| "cannot stat")?;
    if !meta.is_file() || meta.len() > MAX_FILE {
        return Err("not a regular file of a plausible size");
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE).read_to_end(&mut bytes))
        .map_err(|_| "cannot read")?;
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err("not a remembered reply");
    }
    let u128_at = |at: usize| {
        let mut b = [0u8; 16];
        b.copy_from_slice(&bytes[at..at + 16]);
        u128::from_le_bytes(b)
    };
    let mut until = [0u8; 8];
    until.copy_from_slice(&bytes[40..48]);
    if u128_at(8) != key {
        return Err("key does not match the file name");
    }
    let reply = decode_reply(Encoding::Cbor, &bytes[HEADER..]).map_err(|_| "reply undecodable")?;
    Ok(Stored {
        key,
        fingerprint: u128_at(24),
        until_unix: u64::from_le_bytes(until),
        reply,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::OkValue;

    fn stored(key: u128, until_unix: u64) -> Stored {
        Stored {
            key,
            fingerprint: 7,
            until_unix,
            reply: Reply::Ok(OkValue::Text("out".into())),
        }
    }

    #[test]
    fn load_keeps_live_replies_deletes_expired_and_skips_corrupt_files() {
        let tmp = tempfile::tempdir().unwrap();
        let disk = Disk::open(tmp.path().join("ops").join("x")).unwrap();
        let live = stored(1, now_unix() + 100);
        assert!(disk.save(&live));
        assert!(disk.save(&stored(2, now_unix().saturating_sub(1))));
        std::fs::write(disk.path(3), b"garbage").unwrap();
        let mut wrong = std::fs::read(disk.path(1)).unwrap();
        wrong.truncate(HEADER + 1);
        std::fs::write(disk.path(4), &wrong).unwrap(); // key 1 under name 4
        assert_eq!(disk.load(10), vec![live.clone()]);
        assert!(!disk.path(2).exists(), "expired file deleted");
        assert!(
            disk.path(3).exists(),
            "corrupt file left alone, not trusted"
        );
        assert_eq!(disk.load(0), Vec::new(), "bounded by max_entries");
        assert!(!disk.path(1).exists(), "past the bound: deleted");
        disk.remove(1); // a missing file is fine
    }
}
