//! Typed requests and replies, shaped exactly like the wire maps.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ErrorCode;

/// The operations of protocol v1. An enum, not strings, so a new operation
/// is a compile error everywhere it must be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Evaluate an arithmetic expression.
    Calc,
    /// Return the text unchanged.
    Echo,
    /// Change or show a text file on the server.
    Edit,
}

impl Op {
    /// Every operation, in documentation order.
    pub const ALL: [Op; 3] = [Op::Calc, Op::Echo, Op::Edit];

    /// The name used in topics and status messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Calc => "calc",
            Op::Echo => "echo",
            Op::Edit => "edit",
        }
    }

    /// Parses a topic segment; `None` for operations we do not offer.
    pub fn parse(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.as_str() == name)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"expr": "2+3*4"}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalcRequest {
    /// The expression to evaluate.
    pub expr: String,
}

/// `{"text": "hello"}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EchoRequest {
    /// The text to send back.
    pub text: String,
}

/// What an edit request does to its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EditAction {
    /// Set line `line` to `text`, padding with empty lines past the end.
    #[default]
    Replace,
    /// Insert `text` before line `line`.
    Insert,
    /// Add `text` as the last line.
    Append,
    /// Remove line `line`.
    Delete,
    /// Return the file's content; changes nothing.
    Show,
}

impl EditAction {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EditAction::Replace => "replace",
            EditAction::Insert => "insert",
            EditAction::Append => "append",
            EditAction::Delete => "delete",
            EditAction::Show => "show",
        }
    }
}

/// `{"action": "replace", "line": 3, "text": "...", "file": "notes.txt", "expect_rev": 7}`
///
/// Which fields an action needs is checked by the edit operation, so that a
/// missing field is a `bad_request` reply naming the field, not a decode
/// error.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EditRequest {
    /// What to do; `replace` when absent.
    #[serde(default)]
    pub action: EditAction,
    /// 1-based line number; for `show`, the first line to show (1 when
    /// absent: replies to `show` are paged, see [`EditResult::next`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The new line's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// File name inside the server's data directory; its default file when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Optimistic concurrency: fail with `conflict` unless the file is at this revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_rev: Option<u64>,
}

/// A decoded request: the operation comes from the topic, the fields from the payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// A calc request.
    Calc(CalcRequest),
    /// An echo request.
    Echo(EchoRequest),
    /// An edit request.
    Edit(EditRequest),
}

impl Request {
    /// The operation this request is for (and so its topic).
    pub fn op(&self) -> Op {
        match self {
            Request::Calc(_) => Op::Calc,
            Request::Echo(_) => Op::Echo,
            Request::Edit(_) => Op::Edit,
        }
    }
}

/// The `ok` value of an edit reply: `{"file": ..., "rev": N, "lines": N}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditResult {
    /// The file that was changed or shown.
    pub file: String,
    /// Its revision after the request.
    pub rev: u64,
    /// Its number of lines after the request.
    pub lines: u64,
    /// The content, for `show` only: the whole file, or one page of it
    /// (whole lines, at most a page's bytes) when the file is larger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// `show` only, when `content` is one page and more lines follow: the
    /// line to ask for next (as the request's `line`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
}

/// A successful result. Untagged: on the wire it is just the value (see
/// `ok_value.rs` for how each variant is written and read).
#[derive(Debug, Clone, PartialEq)]
pub enum OkValue {
    /// An exact integer (calc).
    Int(i64),
    /// An exact integer outside the `i64` range (calc): a CBOR bignum (tag
    /// 2 or 3) or plain integer, a JSON number with all its digits.
    Big(num_bigint::BigInt),
    /// A floating-point number (calc).
    Float(f64),
    /// Text (echo).
    Text(String),
    /// An edit result.
    Edit(EditResult),
}

impl fmt::Display for OkValue {
    /// The plain-text form printed by `ask` and sent in `text/plain` replies.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OkValue::Int(n) => write!(f, "{n}"),
            OkValue::Big(n) => write!(f, "{n}"),
            OkValue::Float(x) => f.write_str(&format_float(*x)),
            OkValue::Text(s) => f.write_str(s),
            OkValue::Edit(e) => match &e.content {
                Some(content) => f.write_str(content.strip_suffix('\n').unwrap_or(content)),
                None => write!(f, "{}: rev {}, {}", e.file, e.rev, lines(e.lines)),
            },
        }
    }
}

/// "1 line", "3 lines": a file's length in words.
pub fn lines(n: u64) -> String {
    match n {
        1 => "1 line".to_string(),
        n => format!("{n} lines"),
    }
}

/// Shortest round-trip form; integral values without ".0"; exponent form
/// for very large or very small magnitudes.
pub fn format_float(x: f64) -> String {
    let magnitude = x.abs();
    if magnitude != 0.0 && !(1e-6..1e16).contains(&magnitude) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// `{"err": {"code": "...", "message": "...", "at": N}}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable code, see [`ErrorCode`]. Kept as a string so that codes added
    /// by newer servers still decode.
    pub code: String,
    /// Human-readable explanation naming the bad value.
    pub message: String,
    /// Character offset into the expression, for `parse` (and `math`) errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<u64>,
}

impl ErrorBody {
    /// An error body with a known code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code: code.as_str().to_string(),
            message: message.into(),
            at: None,
        }
    }

    /// Adds the character offset of the offending input.
    pub fn at(mut self, at: usize) -> Self {
        self.at = Some(at as u64);
        self
    }

    /// The code, when it is one this version knows.
    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::parse(&self.code)
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        // People count characters from 1, as compilers count columns; the
        // wire's `at` stays the 0-based offset.
        match self.at {
            Some(at) => write!(f, " (at character {})", at.saturating_add(1)),
            None => Ok(()),
        }
    }
}

/// Exactly one reply per request: a value or an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reply {
    /// `{"ok": value}`
    Ok(OkValue),
    /// `{"err": {...}}`
    Err(ErrorBody),
}

impl Reply {
    /// An error reply with a known code.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Reply::Err(ErrorBody::new(code, message))
    }
}
