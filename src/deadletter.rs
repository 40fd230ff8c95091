//! The dead-letter store: requests the server could not answer, kept with
//! the reason and the original message so nothing disappears without a
//! trace.
//!
//! Records are JSON lines in the data directory's dead-letter file
//! (`crate::datadir::DataDir::dead_letters`),
//! appended and fsynced one at a time under an exclusive file lock (several
//! servers may share a data directory). `mqttapp dlq` reads, replays and
//! purges them.
//!
//! Whatever a request carries, its letter is bounded (`bound.rs`: each
//! property cut to a few hundred bytes, the payload to `max_payload_bytes`,
//! with the full length and SHA-256 of what was cut) and the file stays
//! within `max_deadletter_bytes` (`store.rs`: past it, letters are dropped
//! and counted).

mod bound;
mod dropped;
mod store;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use bound::{bounded, cut_of, prefix_within, sha256_hex, Header, DETAIL_CAP, PROPERTY_CAP};
pub use store::{DeadLetters, Recorded};

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

/// One dead letter: why, when, and the original message, each field cut
/// to its cap (see the `_cut` fields and `truncated`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Unique id: `<server-id>-<unix-ms>-<seq>`.
    pub id: String,
    /// Unix time in seconds.
    pub time: u64,
    /// Why it could not be answered.
    pub reason: Reason,
    /// Details for a human (at most [`DETAIL_CAP`] bytes).
    pub detail: String,
    /// The topic the request arrived on (at most [`PROPERTY_CAP`] bytes).
    pub topic: String,
    /// Its Response Topic, if any (at most [`PROPERTY_CAP`] bytes).
    #[serde(default)]
    pub response_topic: Option<String>,
    /// Its Correlation Data, hex (at most [`PROPERTY_CAP`] bytes before hex).
    #[serde(default)]
    pub correlation_hex: Option<String>,
    /// Its Content Type, if any (at most [`PROPERTY_CAP`] bytes).
    #[serde(default)]
    pub content_type: Option<String>,
    /// The payload, hex (at most the server's `max_payload_bytes`).
    pub payload_hex: String,
    /// True when any field above was cut: the letter is not the request,
    /// so `mqttapp dlq replay` refuses it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// The full topic's length and hash, when `topic` was cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_cut: Option<Cut>,
    /// The same for `response_topic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_topic_cut: Option<Cut>,
    /// The same for the Correlation Data (length in bytes, hash of the bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_cut: Option<Cut>,
    /// The same for `content_type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type_cut: Option<Cut>,
    /// The same for the payload (cut, or left out past the store's budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_cut: Option<Cut>,
}

/// What remains of a field too large to keep whole: enough to recognise
/// the request it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cut {
    /// The field's full length in bytes.
    pub len: u64,
    /// SHA-256 of the full field, lowercase hex.
    pub sha256: String,
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
    /// Set when the payload was already cut before it reached the store
    /// (a refused request keeps at most `max_payload_bytes` of it while it
    /// waits): the full payload's length and hash.
    pub payload_cut: Option<Cut>,
}

impl DeadLetter {
    /// True when some field is cut, i.e. the letter is not the request.
    pub fn is_cut(&self) -> bool {
        [
            &self.topic_cut,
            &self.response_topic_cut,
            &self.correlation_cut,
            &self.content_type_cut,
            &self.payload_cut,
        ]
        .iter()
        .any(|c| c.is_some())
    }

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
            payload_cut: None,
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
            payload_cut: None,
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
        let Recorded::Stored(a) = a else {
            panic!("{a:?}")
        };
        assert_eq!(again[0], *a);
        assert_eq!(again[0].original().unwrap(), original(&[0xA1, 0x00]));
        assert_ne!(again[0].id, again[1].id);
    }

    #[test]
    fn remove_deletes_only_the_named_letters() {
        let dir = tempfile::tempdir().unwrap();
        let store = DeadLetters::new(dir.path(), "s1");
        let stored = |p: &[u8]| match store.record(Reason::Expired, "", &original(p)).unwrap() {
            Recorded::Stored(l) => *l,
            other => panic!("{other:?}"),
        };
        let (a, b) = (stored(b"a"), stored(b"b"));
        assert_eq!(store.remove(Some(std::slice::from_ref(&a.id))).unwrap(), 1);
        assert_eq!(store.list().unwrap(), vec![b]);
        assert_eq!(store.remove(None).unwrap(), 1);
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn the_store_stays_within_its_budget_and_counts_what_it_drops() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = DeadLetters::new(dir.path(), "s1")
            .with_max_payload(100)
            .with_budget(2_000);
        let mut kinds = (0, 0, 0);
        for _ in 0..20 {
            match store
                .record(Reason::Expired, "", &original(&[9; 400]))
                .unwrap()
            {
                Recorded::Stored(l) if l.payload_hex.is_empty() => kinds.1 += 1,
                Recorded::Stored(_) => kinds.0 += 1,
                Recorded::Dropped { .. } => kinds.2 += 1,
            }
        }
        let size = std::fs::metadata(store.path()).unwrap().len();
        assert!(size <= 2_000, "{size}");
        assert!(kinds.0 > 0 && kinds.2 > 0, "{kinds:?}");
        assert_eq!(store.dropped().unwrap(), kinds.2);
        assert_eq!(store.list().unwrap().len(), kinds.0 + kinds.1);
        assert!(store.list().unwrap().iter().all(|l| l.truncated));
        let mode = std::fs::metadata(store.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        store.remove(None).unwrap();
        assert_eq!(store.dropped().unwrap(), 0);
    }
}
