//! The line model of a file and the pure logic of each change: request
//! validation, limit prediction (before anything is allocated) and the edit
//! itself.
//!
//! A file is a list of lines split on '\n'; a trailing '\n' does not start
//! another line and an empty file has no lines. It is written back as the
//! lines joined with '\n' plus a final '\n' (nothing at all when empty).

use super::{Action, EditError, EditLimits};

/// Decodes file bytes as text; a file that is not UTF-8 cannot be edited
/// line by line without corrupting it.
pub(super) fn decode(bytes: Vec<u8>) -> Result<String, EditError> {
    String::from_utf8(bytes).map_err(|_| EditError::BadRequest("file is not UTF-8 text".into()))
}

/// Splits `text` into lines (see the module docs).
pub(super) fn split(text: &str) -> Vec<&str> {
    if text.is_empty() {
        return Vec::new();
    }
    text.strip_suffix('\n')
        .unwrap_or(text)
        .split('\n')
        .collect()
}

/// Joins `lines` into file content (see the module docs).
pub(super) fn render<S: AsRef<str>>(lines: &[S]) -> String {
    let mut out = String::with_capacity(rendered_len(lines) as usize);
    for line in lines {
        out.push_str(line.as_ref());
        out.push('\n');
    }
    out
}

/// Checks what can be checked without looking at the file: line numbers and
/// line text, against `limits`. Cheap, so it runs before taking the lock.
pub(super) fn check_request(action: &Action, limits: &EditLimits) -> Result<(), EditError> {
    if let Some(line) = line_of(action) {
        if line == 0 {
            return Err(EditError::BadRequest(
                "line numbers start at 1, got 0".into(),
            ));
        }
        if line > limits.max_lines {
            return Err(EditError::Limit(format!(
                "line {line} is past the limit of {} lines",
                limits.max_lines
            )));
        }
    }
    match text_of(action) {
        Some(text) => check_text(text, limits),
        None => Ok(()),
    }
}

/// Checks that `action` can be applied to `lines` and that the result stays
/// within `limits`, computing the result's size instead of building it.
pub(super) fn check_change<S: AsRef<str>>(
    action: &Action,
    lines: &[S],
    limits: &EditLimits,
) -> Result<(), EditError> {
    let len = lines.len() as u64;
    let bytes = rendered_len(lines);
    // Saturating sums: a configured limit near u64::MAX must not overflow.
    let grow = |pad: u64, text: &str| {
        bytes
            .saturating_add(pad)
            .saturating_add(text.len() as u64 + 1)
    };
    let (new_lines, new_bytes) = match action {
        Action::Show => return Ok(()),
        Action::Delete { line } => return check_line_exists(*line, len),
        Action::Append { text } => (len + 1, grow(0, text)),
        Action::Insert { line, text } => {
            let pad = line.saturating_sub(1).saturating_sub(len);
            (len.saturating_add(pad).saturating_add(1), grow(pad, text))
        }
        Action::Replace { line, text } if *line <= len => {
            let old = lines
                .get(index(*line))
                .map_or(0, |l| l.as_ref().len() as u64);
            (
                len,
                bytes.saturating_sub(old).saturating_add(text.len() as u64),
            )
        }
        Action::Replace { line, text } => (*line, grow(*line - 1 - len, text)),
    };
    check_result_size(new_lines, new_bytes, limits)
}

fn check_result_size(lines: u64, bytes: u64, limits: &EditLimits) -> Result<(), EditError> {
    if lines > limits.max_lines {
        return Err(EditError::Limit(format!(
            "file would have {lines} lines, limit is {}",
            limits.max_lines
        )));
    }
    if bytes > limits.max_file_bytes {
        return Err(EditError::Limit(format!(
            "file would be {bytes} bytes, limit is {}",
            limits.max_file_bytes
        )));
    }
    Ok(())
}

/// The content after `action`, checked against `limits` first, and its
/// line count.
pub(super) fn change(
    action: &Action,
    content: &str,
    limits: &EditLimits,
) -> Result<(String, u64), EditError> {
    let current = split(content);
    check_change(action, &current, limits)?;
    let mut lines: Vec<String> = Vec::with_capacity(current.len() + 1);
    lines.extend(current.iter().map(|l| l.to_string()));
    apply(action, &mut lines);
    Ok((render(&lines), lines.len() as u64))
}

/// Applies a change to `lines`. Call only after [`check_request`] and
/// [`check_change`] succeeded, which guarantee every index is in range and
/// every padding is within the limits.
pub(super) fn apply(action: &Action, lines: &mut Vec<String>) {
    match action {
        Action::Show => {}
        Action::Append { text } => lines.push(text.clone()),
        Action::Delete { line } => {
            let idx = index(*line);
            if idx < lines.len() {
                lines.remove(idx);
            }
        }
        Action::Replace { line, text } => {
            let idx = index(*line);
            if idx >= lines.len() {
                lines.resize(idx + 1, String::new());
            }
            lines[idx] = text.clone();
        }
        Action::Insert { line, text } => {
            let idx = index(*line);
            if idx > lines.len() {
                lines.resize(idx, String::new());
            }
            lines.insert(idx, text.clone());
        }
    }
}

fn check_text(text: &str, limits: &EditLimits) -> Result<(), EditError> {
    let bad = [
        ('\n', "text contains a newline"),
        ('\r', "text contains a carriage return"),
        ('\0', "text contains a NUL byte"),
    ];
    for (c, msg) in bad {
        if text.contains(c) {
            return Err(EditError::BadRequest(msg.into()));
        }
    }
    if text.len() > limits.max_line_bytes {
        return Err(EditError::Limit(format!(
            "line is {} bytes, limit is {}",
            text.len(),
            limits.max_line_bytes
        )));
    }
    Ok(())
}

fn check_line_exists(line: u64, len: u64) -> Result<(), EditError> {
    if line == 0 || line > len {
        return Err(EditError::NotFound(format!(
            "line {line} does not exist (the file has {len} lines)"
        )));
    }
    Ok(())
}

fn line_of(action: &Action) -> Option<u64> {
    match action {
        Action::Replace { line, .. } | Action::Insert { line, .. } | Action::Delete { line } => {
            Some(*line)
        }
        Action::Append { .. } | Action::Show => None,
    }
}

fn text_of(action: &Action) -> Option<&str> {
    match action {
        Action::Replace { text, .. } | Action::Insert { text, .. } | Action::Append { text } => {
            Some(text)
        }
        Action::Delete { .. } | Action::Show => None,
    }
}

/// 1-based line number to 0-based index; saturates instead of wrapping
/// (callers have bounded `line` by the limits already).
fn index(line: u64) -> usize {
    usize::try_from(line.saturating_sub(1)).unwrap_or(usize::MAX)
}

fn rendered_len<S: AsRef<str>>(lines: &[S]) -> u64 {
    lines.iter().map(|l| l.as_ref().len() as u64 + 1).sum()
}
