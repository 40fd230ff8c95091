//! Stable error codes (part of the contract) and the errors of this layer.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The error codes a reply can carry. Their spelling is the contract:
/// clients in other languages match on these strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed: undecodable, wrong types, missing fields.
    BadRequest,
    /// The topic names an operation this server does not offer.
    UnknownOp,
    /// The calc expression does not parse; `at` is the character offset.
    Parse,
    /// Arithmetic failed: division by zero, a domain error.
    Math,
    /// An input or a result is over a documented limit.
    Limit,
    /// The file or line does not exist.
    NotFound,
    /// `expect_rev` did not match the file's revision.
    Conflict,
    /// The server could not read or write its files.
    Io,
    /// A bug on the server; the request went to the dead letters.
    Internal,
    /// The server is at a documented capacity bound (its request queue's
    /// bytes, or a file's replay memory) and refused the request at once
    /// without applying it; the client backs off and sends it again.
    Busy,
    /// A user-defined operation's program ran and exited non-zero (or was
    /// killed by a signal); the message carries the end of its stderr.
    Failed,
}

impl ErrorCode {
    /// The code as it is spelled on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnknownOp => "unknown_op",
            ErrorCode::Parse => "parse",
            ErrorCode::Math => "math",
            ErrorCode::Limit => "limit",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Io => "io",
            ErrorCode::Internal => "internal",
            ErrorCode::Busy => "busy",
            ErrorCode::Failed => "failed",
        }
    }

    /// Parses a wire spelling; unknown codes from newer servers map to
    /// `None` so clients can still show the message.
    pub fn parse(code: &str) -> Option<Self> {
        const ALL: [ErrorCode; 11] = [
            ErrorCode::BadRequest,
            ErrorCode::UnknownOp,
            ErrorCode::Parse,
            ErrorCode::Math,
            ErrorCode::Limit,
            ErrorCode::NotFound,
            ErrorCode::Conflict,
            ErrorCode::Io,
            ErrorCode::Internal,
            ErrorCode::Busy,
            ErrorCode::Failed,
        ];
        ALL.into_iter().find(|c| c.as_str() == code)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why bytes could not be turned into a request or a reply.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The payload is not valid CBOR/JSON, or has the wrong shape.
    #[error("cannot decode {encoding} payload: {reason}")]
    Decode {
        /// The encoding that was tried.
        encoding: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// A `text/plain` payload that is not UTF-8.
    #[error("text payload is not valid UTF-8")]
    NotUtf8,
    /// The operation cannot be expressed in plain text (edit).
    #[error("{op} requests need a CBOR or JSON map, not plain text")]
    TextNotSupported {
        /// The operation name.
        op: &'static str,
    },
    /// The payload is over the configured size limit.
    #[error("payload is {size} bytes, limit is {limit}")]
    TooLarge {
        /// Size of the payload.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
}

impl ProtocolError {
    /// The reply code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::TooLarge { .. } => ErrorCode::Limit,
            _ => ErrorCode::BadRequest,
        }
    }
}
