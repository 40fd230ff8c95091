//! The operations, independent of MQTT: a request in, exactly one reply out.
//!
//! `calc` and `echo` are pure functions; `edit` owns the file store. This
//! module matches on the request and converts each operation's own error
//! type into a reply with a stable error code.

pub mod calc;
pub mod echo;
pub mod edit;

use std::path::Path;

use crate::limits::Limits;
use crate::protocol::{
    EditAction, EditRequest, EditResult, ErrorBody, ErrorCode, OkValue, Reply, Request,
};

/// Most bytes of file content in one `show` reply (a page; larger files
/// are paged), counted as encoded in JSON (quotes, backslashes and control
/// characters escaped), so the bound holds in every encoding: a request of
/// a few dozen bytes must not make the server publish a megabyte
/// (docs/SECURITY.md states the resulting bound).
pub const SHOW_PAGE_BYTES: usize = 64 * 1024;

/// What identifies a request across re-sends, and how long it may be
/// re-sent: the edit store applies a change made with a key once and
/// remembers it for as long as the client may still re-send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// Response topic and correlation data (see `serve::handler`).
    pub key: Vec<u8>,
    /// The request's Message Expiry in seconds (our clients set it to their
    /// timeout); `None` when the request carries none.
    pub expiry_secs: Option<u32>,
}

/// The operations a server offers, with their state (the edit store).
pub struct Operations {
    limits: Limits,
    store: edit::Store,
}

impl Operations {
    /// Opens the edit store in `data_dir` (created if missing).
    ///
    /// # Errors
    /// [`edit::EditError`] when the directory or default file cannot be created.
    pub fn open(
        data_dir: &Path,
        default_file: &str,
        limits: Limits,
    ) -> Result<Operations, edit::EditError> {
        Ok(Operations {
            limits,
            store: edit::Store::open(data_dir, default_file, limits.edit)?,
        })
    }

    /// Starts a batch: the requests of a burst, answered together, so a
    /// burst of edits to one file costs one commit (see `edit::Batch`).
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            ops: self,
            edits: self.store.batch(),
            answers: Vec::new(),
        }
    }

    /// Answers one request (a batch of one).
    ///
    /// `replay` identifies the request across re-sends (response topic
    /// and correlation data); an edit with a key it has already applied is
    /// answered from memory instead of being applied twice.
    pub fn apply(&self, request: &Request, replay: Option<Replay>) -> Reply {
        let mut batch = self.batch();
        batch.apply(request, replay);
        batch
            .commit()
            .pop()
            .unwrap_or_else(|| Reply::error(ErrorCode::Internal, "a batch of one gave no reply"))
    }

    fn calc(&self, expr: &str) -> Reply {
        match calc::evaluate(expr, &self.limits.calc) {
            Ok(calc::Number::Int(n)) => Reply::Ok(OkValue::Int(n)),
            Ok(calc::Number::Big(n)) => Reply::Ok(OkValue::Big(n)),
            Ok(calc::Number::Float(x)) => Reply::Ok(OkValue::Float(x)),
            Err(e) => Reply::Err(calc_error(e)),
        }
    }

    /// The store's request for a wire edit request, and the line its
    /// `show` page starts at.
    fn edit_request(
        r: &EditRequest,
        replay: Option<Replay>,
    ) -> Result<(edit::EditRequest, u64), ErrorBody> {
        let (replay_key, expiry_secs) = match replay {
            Some(Replay { key, expiry_secs }) => (Some(key), expiry_secs),
            None => (None, None),
        };
        let from = match (r.action, r.line) {
            (EditAction::Show, Some(0)) => {
                return Err(ErrorBody::new(
                    ErrorCode::BadRequest,
                    "line numbers start at 1, got 0",
                ))
            }
            (EditAction::Show, line) => line.unwrap_or(1),
            _ => 1,
        };
        let request = edit::EditRequest {
            action: edit_action(r)?,
            file: r.file.clone(),
            expect_rev: r.expect_rev,
            replay_key,
            expiry_secs,
        };
        Ok((request, from))
    }

    /// The reply to an edit, from the store's final answer.
    fn edit_reply(&self, answer: Result<edit::Outcome, edit::EditError>, from: u64) -> Reply {
        match self.edit_result(answer, from) {
            Ok(result) => Reply::Ok(OkValue::Edit(result)),
            Err(body) => Reply::Err(body),
        }
    }

    fn edit_result(
        &self,
        answer: Result<edit::Outcome, edit::EditError>,
        from: u64,
    ) -> Result<EditResult, ErrorBody> {
        let outcome = answer.map_err(|e| {
            if matches!(
                e,
                edit::EditError::Busy(_) | edit::EditError::KeyReused { .. }
            ) {
                // A client flooding one file, or reusing correlation data:
                // worth seeing on the server side too.
                tracing::info!(error = %e, "edit refused");
            }
            let code = ErrorCode::parse(e.code()).unwrap_or(ErrorCode::Internal);
            ErrorBody::new(code, e.to_string())
        })?;
        if outcome.replayed {
            // Rare and worth seeing: a client re-sent an edit already applied.
            tracing::info!(file = %outcome.file, rev = outcome.rev, "replayed edit answered from the reply memory");
        }
        let (content, next) = match outcome.content {
            Some(content) => {
                let limits = PageLimits {
                    bytes: SHOW_PAGE_BYTES,
                    line_bytes: self.limits.edit.max_line_bytes,
                };
                let (page, next) = page(content, from, limits)?;
                (Some(page), next)
            }
            None => (None, None),
        };
        Ok(EditResult {
            file: outcome.file,
            rev: outcome.rev,
            lines: outcome.lines,
            content,
            next,
        })
    }
}

/// The requests of one burst: calc and echo are answered at once, edits
/// are handed to one `edit::Batch`, and [`Batch::commit`] gives every
/// final reply, in order, only after the edits were committed. The server
/// publishes nothing before that, so no reply reports a change that a
/// crash can still take back.
pub struct Batch<'o> {
    ops: &'o Operations,
    edits: edit::Batch<'o>,
    /// One per [`Batch::apply`], in order.
    answers: Vec<Answer>,
}

/// The answer to one request of a [`Batch`].
enum Answer {
    Ready(Reply),
    /// The edit batch's answer number `index`; a show's page starts at
    /// line `from`.
    Edit {
        index: usize,
        from: u64,
    },
}

impl Batch<'_> {
    /// Takes one request; its reply is the one at the same position in
    /// [`Batch::commit`]'s list. Returns that position. If this panics
    /// (a bug), nothing was taken, and the batch can go on.
    pub fn apply(&mut self, request: &Request, replay: Option<Replay>) -> usize {
        let answer = match request {
            Request::Calc(r) => Answer::Ready(self.ops.calc(&r.expr)),
            Request::Echo(r) => Answer::Ready(Reply::Ok(OkValue::Text(echo::echo(&r.text)))),
            Request::Edit(r) => match Operations::edit_request(r, replay) {
                Ok((req, from)) => {
                    let index = self.edits.taken();
                    // Staged; the final answer comes from the commit.
                    let _staged = self.edits.apply(&req);
                    Answer::Edit { index, from }
                }
                Err(body) => Answer::Ready(Reply::Err(body)),
            },
        };
        self.answers.push(answer);
        self.answers.len() - 1
    }

    /// Commits the edits and returns every request's final reply, in the
    /// order they were applied.
    pub fn commit(self) -> Vec<Reply> {
        let ops = self.ops;
        let mut edits: Vec<Option<_>> = self.edits.commit().into_iter().map(Some).collect();
        self.answers
            .into_iter()
            .map(|answer| match answer {
                Answer::Ready(reply) => reply,
                Answer::Edit { index, from } => match edits.get_mut(index).and_then(Option::take) {
                    Some(result) => ops.edit_reply(result, from),
                    None => Reply::error(ErrorCode::Internal, "an edit gave no answer"),
                },
            })
            .collect()
    }
}

/// How much one `show` page may hold.
#[derive(Debug, Clone, Copy)]
struct PageLimits {
    /// Bytes of content, as encoded in JSON ([`json_len`]).
    bytes: usize,
    /// A longer first line is still shown alone when it is no longer than
    /// this (`max_line_bytes`: what a request may write).
    line_bytes: usize,
}

/// The page of `content` that starts at line `from` (1-based, in the edit
/// store's line model: a trailing newline starts no line): whole lines
/// while they fit in `limits.bytes`, and the line after the page when more
/// follow. A file that fits is returned unchanged. A page always holds its
/// first line if that is within `max_line_bytes`; a longer one (only a
/// file placed by hand can hold one) is a `limit` error, so the bound on a
/// reply's size holds without exception.
fn page(
    content: String,
    from: u64,
    limits: PageLimits,
) -> Result<(String, Option<u64>), ErrorBody> {
    if from == 1 && json_len(&content) <= limits.bytes {
        return Ok((content, None));
    }
    let mut out = String::new();
    let mut size = 0;
    for (number, line) in (1u64..).zip(content.split_inclusive('\n')) {
        if number < from {
            continue;
        }
        let len = json_len(line);
        if size + len > limits.bytes {
            if !out.is_empty() {
                return Ok((out, Some(number)));
            }
            let text = line.strip_suffix('\n').unwrap_or(line);
            if text.len() > limits.line_bytes {
                return Err(ErrorBody::new(
                    ErrorCode::Limit,
                    format!(
                        "line {number} is {} bytes, more than a show page holds ({} bytes) and than max_line_bytes ({})",
                        text.len(),
                        limits.bytes,
                        limits.line_bytes
                    ),
                ));
            }
        }
        out.push_str(line);
        size += len;
    }
    Ok((out, None))
}

/// The length of `text` inside a JSON string: what serde_json escapes
/// (`"`, `\\`, control characters) takes 2 or 6 bytes. CBOR replies carry
/// the text as it is, so this is an upper bound for both encodings.
fn json_len(text: &str) -> usize {
    text.bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum()
}

fn calc_error(e: calc::CalcError) -> ErrorBody {
    match e {
        calc::CalcError::Parse { at, message } => ErrorBody::new(ErrorCode::Parse, message).at(at),
        calc::CalcError::Math { at, message } => ErrorBody::new(ErrorCode::Math, message).at(at),
        calc::CalcError::Limit { message } => ErrorBody::new(ErrorCode::Limit, message),
    }
}

/// Checks that the wire map has the fields its action needs.
fn edit_action(r: &EditRequest) -> Result<edit::Action, ErrorBody> {
    let action = r.action.as_str();
    let line = || {
        r.line.ok_or_else(|| {
            ErrorBody::new(ErrorCode::BadRequest, format!("{action} needs \"line\""))
        })
    };
    let text = || {
        r.text.clone().ok_or_else(|| {
            ErrorBody::new(ErrorCode::BadRequest, format!("{action} needs \"text\""))
        })
    };
    Ok(match r.action {
        EditAction::Replace => edit::Action::Replace {
            line: line()?,
            text: text()?,
        },
        EditAction::Insert => edit::Action::Insert {
            line: line()?,
            text: text()?,
        },
        EditAction::Append => edit::Action::Append { text: text()? },
        EditAction::Delete => edit::Action::Delete { line: line()? },
        EditAction::Show => edit::Action::Show,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{CalcRequest, EchoRequest};

    fn ops() -> (tempfile::TempDir, Operations) {
        let dir = tempfile::tempdir().unwrap();
        let ops = Operations::open(dir.path(), "notes.txt", Limits::default()).unwrap();
        (dir, ops)
    }

    #[test]
    fn calc_and_echo_answer_with_values() {
        let (_d, ops) = ops();
        let calc = |e: &str| ops.apply(&Request::Calc(CalcRequest { expr: e.into() }), None);
        assert_eq!(calc("2+3*4"), Reply::Ok(OkValue::Int(14)));
        assert_eq!(calc("7/2"), Reply::Ok(OkValue::Float(3.5)));
        let Reply::Err(e) = calc("1/0") else { panic!() };
        assert_eq!((e.code.as_str(), e.at), ("math", Some(1)));
        let Reply::Err(e) = calc("2+)") else { panic!() };
        assert_eq!((e.code.as_str(), e.at), ("parse", Some(2)));
        let echo = ops.apply(
            &Request::Echo(EchoRequest {
                text: "héllo ✓".into(),
            }),
            None,
        );
        assert_eq!(echo, Reply::Ok(OkValue::Text("héllo ✓".into())));
    }

    #[test]
    fn edit_requests_missing_fields_are_bad_requests() {
        let (_d, ops) = ops();
        let req = |action, line, text: Option<&str>| EditRequest {
            action,
            line,
            text: text.map(String::from),
            ..Default::default()
        };
        for (r, needs) in [
            (req(EditAction::Replace, None, Some("x")), "line"),
            (req(EditAction::Replace, Some(1), None), "text"),
            (req(EditAction::Delete, None, None), "line"),
            (req(EditAction::Append, None, None), "text"),
        ] {
            let Reply::Err(e) = ops.apply(&Request::Edit(r), None) else {
                panic!()
            };
            assert_eq!(e.code, "bad_request");
            assert!(e.message.contains(needs), "{}", e.message);
        }
    }

    #[test]
    fn show_pages_hold_whole_lines_up_to_the_limit() {
        let limits = |bytes, line_bytes| PageLimits { bytes, line_bytes };
        let text = "aa\nbb\ncc\n".to_string();
        let pages = |from, bytes| page(text.clone(), from, limits(bytes, 2)).unwrap();
        // Each line takes 4 bytes in JSON ("aa\n").
        assert_eq!(pages(1, 100), (text.clone(), None));
        assert_eq!(pages(1, 8), ("aa\nbb\n".into(), Some(3)));
        assert_eq!(pages(3, 8), ("cc\n".into(), None));
        assert_eq!(pages(2, 100), ("bb\ncc\n".into(), None));
        assert_eq!(pages(9, 8), (String::new(), None));
        // A first line over the page but within max_line_bytes comes alone.
        assert_eq!(pages(1, 3), ("aa\n".into(), Some(2)));
        assert_eq!(
            page("aa\nbb".into(), 2, limits(2, 2)).unwrap(),
            ("bb".into(), None)
        );
        let e = page(text, 1, limits(3, 1)).unwrap_err();
        assert_eq!(e.code, "limit");
        assert!(e.message.contains("line 1 is 2 bytes"), "{}", e.message);
        assert_eq!(json_len("a\"\\\u{1}é"), 1 + 2 + 2 + 6 + 2);
    }

    #[test]
    fn a_large_file_is_shown_in_pages_that_add_up_to_it() {
        let (dir, ops) = ops();
        let content: String = (0..3000)
            .map(|i| format!("{i:04} {}\n", "y".repeat(60)))
            .collect();
        std::fs::write(dir.path().join("big.txt"), &content).unwrap();
        let show = |line| {
            let r = EditRequest {
                action: EditAction::Show,
                line,
                file: Some("big.txt".into()),
                ..Default::default()
            };
            match ops.apply(&Request::Edit(r), None) {
                Reply::Ok(OkValue::Edit(e)) => e,
                other => panic!("{other:?}"),
            }
        };
        let (mut all, mut line, mut pages) = (String::new(), None, 0);
        loop {
            let e = show(line);
            let page = e.content.unwrap();
            assert!(page.len() <= SHOW_PAGE_BYTES);
            assert_eq!(e.lines, 3000);
            all.push_str(&page);
            pages += 1;
            match e.next {
                Some(next) => line = Some(next),
                None => break,
            }
        }
        assert_eq!(all, content);
        assert_eq!(pages, 4);
        let zero = EditRequest {
            action: EditAction::Show,
            line: Some(0),
            ..Default::default()
        };
        let Reply::Err(e) = ops.apply(&Request::Edit(zero), None) else {
            panic!()
        };
        assert_eq!(e.code, "bad_request");
    }

    #[test]
    fn edit_errors_keep_their_codes() {
        let (_d, ops) = ops();
        let r = EditRequest {
            line: Some(1),
            text: Some("x".into()),
            file: Some("../x".into()),
            ..Default::default()
        };
        let Reply::Err(e) = ops.apply(&Request::Edit(r), None) else {
            panic!()
        };
        assert_eq!(e.code, "bad_request");
        let r = EditRequest {
            line: Some(0),
            text: Some("x".into()),
            ..Default::default()
        };
        let Reply::Err(e) = ops.apply(&Request::Edit(r), None) else {
            panic!()
        };
        assert_eq!(e.code, "bad_request");
        let r = EditRequest {
            line: Some(1),
            text: Some("x".into()),
            expect_rev: Some(9),
            ..Default::default()
        };
        let Reply::Err(e) = ops.apply(&Request::Edit(r), None) else {
            panic!()
        };
        assert_eq!(e.code, "conflict");
    }
}
