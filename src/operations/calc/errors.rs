//! Constructors for [`CalcError`] values, so every message is built the same
//! way and user text echoed in a message is always bounded in length.

use super::CalcError;

/// Message for a floating-point result (or literal) beyond f64's range.
pub(super) const FLOAT_RANGE: &str =
    "result too large: beyond the floating-point range of about 1.8e308";

/// Longest piece of user text (in characters) quoted in a message.
const SNIPPET_CHARS: usize = 32;

/// A parse error at character offset `at`.
pub(super) fn parse(at: usize, message: impl Into<String>) -> CalcError {
    CalcError::Parse {
        at,
        message: message.into(),
    }
}

/// A math error at character offset `at`.
pub(super) fn math(at: usize, message: impl Into<String>) -> CalcError {
    CalcError::Math {
        at,
        message: message.into(),
    }
}

/// A limit error.
pub(super) fn limit(message: impl Into<String>) -> CalcError {
    CalcError::Limit {
        message: message.into(),
    }
}

/// `text`, cut to a bounded number of characters (with "..." when cut), so a
/// multi-megabyte name or literal cannot bloat an error message.
pub(super) fn snippet(text: &str) -> String {
    match text.char_indices().nth(SNIPPET_CHARS) {
        Some((cut, _)) => format!("{}...", text.get(..cut).unwrap_or("")),
        None => text.to_string(),
    }
}
