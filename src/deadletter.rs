//! The dead-letter store: requests the server could not answer, kept with
//! the reason and the original message so nothing disappears without a
//! trace.
//!
//! Records are JSON lines in `<data-dir>/.mqttapp/deadletters.jsonl`,
//! appended and fsynced one at a time under an exclusive file lock (several
//! servers may share a data directory). `mqttapp dlq` reads, replays and
//! purges them.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Why a request became a dead letter. The spelling is part of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The payload could not be decoded (it was answered with `bad_request`).
    Undecodable,
    /// The topic names an operation we do not offer (answered with `unknown_op`).
    UnknownOp,
    /// No (usable) Response Topic: there is nowhere to answer.
    NoResponseTopic,
    /// The request's Message Expiry passed before the server got to it.
    Expired,
    /// The operation failed unexpectedly (answered with `internal`).
    HandlerFailure,
    /// The reply could not be published.
    ReplyFailed,
    /// The server stopped before it could answer.
    Shutdown,
    /// The Response Topic is a valid topic, but not one replies may go to
    /// (outside `<prefix>/v1/resp/` and the `reply_topics` setting).
    ResponseTopicNotAllowed,
}

impl Reason {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Undecodable => "undecodable",
            Reason::UnknownOp => "unknown_op",
            Reason::NoResponseTopic => "no_response_topic",
            Reason::Expired => "expired",
            Reason::HandlerFailure => "handler_failure",
            Reason::ReplyFailed => "reply_failed",
            Reason::Shutdown => "shutdown",
            Reason::ResponseTopicNotAllowed => "response_topic_not_allowed",
        }
    }
}

/// One dead letter: why, when, and the original message, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Unique id: `<server-id>-<unix-ms>-<seq>`.
    pub id: String,
    /// Unix time in seconds.
    pub time: u64,
    /// Why it could not be answered.
    pub reason: Reason,
    /// Details for a human.
    pub detail: String,
    /// The topic the request arrived on.
    pub topic: String,
    /// Its Response Topic, if any.
    #[serde(default)]
    pub response_topic: Option<String>,
    /// Its Correlation Data, hex.
    #[serde(default)]
    pub correlation_hex: Option<String>,
    /// Its Content Type, if any.
    #[serde(default)]
    pub content_type: Option<String>,
    /// The payload, hex.
    pub payload_hex: String,
}

/// The original message of a dead letter, as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Original {
    /// Topic it arrived on.
    pub topic: String,
    /// Response Topic property.
    pub response_topic: Option<String>,
    /// Correlation Data property.
    pub correlation: Option<Vec<u8>>,
    /// Content Type property.
    pub content_type: Option<String>,
    /// Payload bytes.
    pub payload: Vec<u8>,
}

impl DeadLetter {
    /// The original message, decoded from hex.
    ///
    /// # Errors
    /// [`DeadLetterError::Corrupt`] when the stored hex is not valid.
    pub fn original(&self) -> Result<Original, DeadLetterError> {
        let unhex = |s: &str| {
            hex::decode(s).map_err(|e| DeadLetterError::Corrupt(format!("{}: {e}", self.id)))
        };
        Ok(Original {
            topic: self.topic.clone(),
            response_topic: self.response_topic.clone(),
            correlation: self.correlation_hex.as_deref().map(unhex).transpose()?,
            content_type: self.content_type.clone(),
            payload: unhex(&self.payload_hex)?,
        })
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// Reading or writing the store failed.
    #[error("dead-letter store {path}: {source}")]
    Io {
        /// The store file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A record cannot be parsed.
    #[error("corrupt dead letter: {0}")]
    Corrupt(String),
}

/// Appends and reads dead letters in a data directory.
#[derive(Debug)]
pub struct DeadLetters {
    path: PathBuf,
    server_id: String,
    seq: AtomicU64,
}

impl DeadLetters {
    /// The store of `data_dir` (the file is created on first use).
    pub fn new(data_dir: &Path, server_id: &str) -> DeadLetters {
        DeadLetters {
            path: data_dir.join(".mqttapp").join("deadletters.jsonl"),
            server_id: server_id.to_string(),
            seq: AtomicU64::new(0),
        }
    }

    /// Where the records live.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a dead letter durably (fsynced) and returns it.
    ///
    /// # Errors
    /// [`DeadLetterError::Io`] when the record cannot be written.
    pub fn record(
        &self,
        reason: Reason,
        detail: &str,
        original: &Original,
    ) -> Result<DeadLetter, DeadLetterError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let letter = DeadLetter {
            id: format!("{}-{}-{}", self.server_id, now.as_millis(), seq),
            time: now.as_secs(),
            reason,
            detail: detail.to_string(),
            topic: original.topic.clone(),
            response_topic: original.response_topic.clone(),
            correlation_hex: original.correlation.as_ref().map(hex::encode),
            content_type: original.content_type.clone(),
            payload_hex: hex::encode(&original.payload),
        };
        // A struct of strings and integers always serializes.
        let mut line = serde_json::to_vec(&letter).expect("dead letter serializes");
        line.push(b'\n');
        self.locked(|| {
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            file.write_all(&line)?;
            file.sync_data()
        })?;
        Ok(letter)
    }

    /// Every stored dead letter, oldest first.
    ///
    /// # Errors
    /// [`DeadLetterError`] for unreadable or corrupt records.
    pub fn list(&self) -> Result<Vec<DeadLetter>, DeadLetterError> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(self.io(source)),
        };
        let mut out = Vec::new();
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|e| self.io(e))?;
            if line.trim().is_empty() {
                continue;
            }
            out.push(
                serde_json::from_str(&line).map_err(|e| DeadLetterError::Corrupt(e.to_string()))?,
            );
        }
        Ok(out)
    }

    /// Removes the dead letters whose ids are in `ids` (all when `None`);
    /// returns how many were removed. The file is rewritten atomically.
    ///
    /// # Errors
    /// [`DeadLetterError`] when the store cannot be read or rewritten.
    pub fn remove(&self, ids: Option<&[String]>) -> Result<usize, DeadLetterError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        self.locked(|| {
            let all = self.list().map_err(std::io::Error::other)?;
            let (gone, kept): (Vec<_>, Vec<_>) = all
                .into_iter()
                .partition(|l| ids.is_none_or(|ids| ids.contains(&l.id)));
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            for letter in &kept {
                serde_json::to_writer(&mut tmp, letter)?;
                tmp.write_all(b"\n")?;
            }
            tmp.as_file().sync_all()?;
            tmp.persist(&self.path).map_err(|e| e.error)?;
            File::open(dir)?.sync_all()?;
            Ok(gone.len())
        })
    }

    /// Runs `f` under an exclusive lock on a separate lock file (the store
    /// file itself is replaced by `remove`, so it cannot carry the lock).
    fn locked<T>(&self, f: impl FnOnce() -> std::io::Result<T>) -> Result<T, DeadLetterError> {
        let run = || {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let lock = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(self.path.with_extension("lock"))?;
            lock.lock()?;
            f()
        };
        run().map_err(|e| self.io(e))
    }

    fn io(&self, source: std::io::Error) -> DeadLetterError {
        DeadLetterError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn original(payload: &[u8]) -> Original {
        Original {
            topic: "p/v1/req/calc".into(),
            response_topic: Some("p/v1/resp/c".into()),
            correlation: Some(vec![1, 2, 255]),
            content_type: None,
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn dead_letters_survive_reopening_with_their_original_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = DeadLetters::new(dir.path(), "s1");
        let a = store
            .record(Reason::Undecodable, "bad cbor", &original(&[0xA1, 0x00]))
            .unwrap();
        store
            .record(Reason::Expired, "late", &original(b"1+1"))
            .unwrap();
        let again = DeadLetters::new(dir.path(), "s1").list().unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(again[0], a);
        assert_eq!(again[0].original().unwrap(), original(&[0xA1, 0x00]));
        assert_ne!(again[0].id, again[1].id);
    }

    #[test]
    fn remove_deletes_only_the_named_letters() {
        let dir = tempfile::tempdir().unwrap();
        let store = DeadLetters::new(dir.path(), "s1");
        let a = store.record(Reason::Expired, "", &original(b"a")).unwrap();
        let b = store.record(Reason::Expired, "", &original(b"b")).unwrap();
        assert_eq!(store.remove(Some(std::slice::from_ref(&a.id))).unwrap(), 1);
        assert_eq!(store.list().unwrap(), vec![b]);
        assert_eq!(store.remove(None).unwrap(), 1);
        assert!(store.list().unwrap().is_empty());
    }
}
