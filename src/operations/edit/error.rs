//! The error type of the edit operation and its wire-level codes.

use std::path::{Path, PathBuf};

/// Why a request failed. Every variant but [`EditError::Io`] is the
/// client's to fix; the message is meant to be shown to the client as is.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The file name is not acceptable (it could escape the data directory,
    /// is reserved for the store, or names a symlink or a non-regular file).
    #[error("invalid file name {name:?}: {reason}")]
    BadName {
        /// The name as the client sent it.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The request is malformed (line 0, a newline inside a line, ...) or the
    /// file cannot be edited as text.
    #[error("{0}")]
    BadRequest(String),
    /// The file, or the line a request names, does not exist.
    #[error("{0}")]
    NotFound(String),
    /// `expect_rev` did not match: someone else changed the file first.
    #[error("revision conflict: expected {expected}, file is at {actual}")]
    Conflict {
        /// The revision the client expected.
        expected: u64,
        /// The revision the file is at.
        actual: u64,
    },
    /// The replay key (response topic and correlation data) was already
    /// used for a different request on this file; answering with that
    /// request's reply would report a change that was never made.
    #[error("the correlation data was reused for a different request: this response topic and correlation data already carried another change to {file:?}; send a new request with fresh correlation data")]
    KeyReused {
        /// The file.
        file: String,
    },
    /// The file's reply memory is full of keys that clients may still
    /// re-send; the change was not applied (retry later).
    #[error("{0}")]
    Busy(String),
    /// The request would exceed one of the [`super::EditLimits`].
    #[error("{0}")]
    Limit(String),
    /// The server could not read or write its files; not the client's fault.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory the failing operation was on.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

impl EditError {
    /// The stable, machine-readable error code sent on the wire, so clients
    /// can branch without parsing messages.
    pub fn code(&self) -> &'static str {
        match self {
            EditError::BadName { .. } | EditError::BadRequest(_) => "bad_request",
            EditError::NotFound(_) => "not_found",
            EditError::Conflict { .. } | EditError::KeyReused { .. } => "conflict",
            EditError::Busy(_) => "busy",
            EditError::Limit(_) => "limit",
            EditError::Io { .. } => "io",
        }
    }
}

impl EditError {
    /// A copy with the same code and message, for the answers of every
    /// change a failed commit carried (`std::io::Error` is not `Clone`).
    pub(super) fn duplicate(&self) -> EditError {
        match self {
            EditError::BadName { name, reason } => EditError::BadName {
                name: name.clone(),
                reason,
            },
            EditError::BadRequest(m) => EditError::BadRequest(m.clone()),
            EditError::NotFound(m) => EditError::NotFound(m.clone()),
            EditError::Conflict { expected, actual } => EditError::Conflict {
                expected: *expected,
                actual: *actual,
            },
            EditError::KeyReused { file } => EditError::KeyReused { file: file.clone() },
            EditError::Busy(m) => EditError::Busy(m.clone()),
            EditError::Limit(m) => EditError::Limit(m.clone()),
            EditError::Io { path, source } => EditError::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
        }
    }
}

/// Builds a `map_err` adapter that attaches `path` to an `io::Error`.
pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> EditError + '_ {
    move |source| EditError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An [`EditError::Io`] for a condition the store detected itself.
pub(super) fn io_other(path: &Path, msg: &str) -> EditError {
    EditError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string()),
    }
}
