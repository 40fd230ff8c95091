//! `ask --batch`: one request per input line (the shell's grammar, see
//! [`super::command`]), pipelined over one connection, results printed in
//! input order (one line each).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use super::command::{self, Command};
use crate::ask::{retry_interval, status_grace, AskError, Outcome, Pipeline, Requester};
use crate::config::Config;
use crate::protocol::{EditAction, EditRequest, EditResult, Encoding, OkValue, Reply, Request};

/// Requests in flight at once in a batch. Enough to keep a loopback
/// server busy; more costs CPU without answering faster, because paho C
/// scans every in-flight message when it assigns a packet id and when an
/// acknowledgement comes (with 1,000 in flight that was 15% of the
/// client's CPU).
const WINDOW: usize = 256;

/// Why `show` is refused in a plain batch.
const SHOW_IN_BATCH: &str = "show prints the whole file, and a batch prints one line per request - use --json (the file is one JSON string) or `mqttapp ask edit --show`";

/// How a batch went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchSummary {
    /// Requests read (blank and comment lines not counted).
    pub total: u64,
    /// Requests that did not succeed (bad line, error reply, no reply).
    pub failed: u64,
}

/// Reads requests from `input`, writes one result line per request to
/// `out` in input order: the value, or `error: <code>: <message>`
/// (`--json`: one `{"ok":...}` / `{"err":{...}}` object per line).
///
/// Meant for a process that exits afterwards: the connection is abandoned,
/// not torn down (see [`Requester::abandon`]).
///
/// # Errors
/// [`AskError`] for connection failures and when no server is online;
/// failures of single requests are counted in the summary instead.
pub fn run_batch(
    config: &Config,
    input: impl BufRead,
    out: &mut impl Write,
    json: bool,
    headers: &[(String, String)],
) -> Result<BatchSummary, AskError> {
    let mut requester = Requester::connect(config, Encoding::Cbor)?;
    requester.set_headers(headers.to_vec());
    let mut batch = Batch {
        pipeline: Pipeline::new(
            requester,
            WINDOW,
            retry_interval(config.timeout),
            config.timeout,
        ),
        done: BTreeMap::new(),
        next_out: 0,
        ops_seen: HashSet::new(),
        shows: HashMap::new(),
        summary: BatchSummary::default(),
        json,
        grace: status_grace(config.timeout),
        timeout: config.timeout,
    };
    for line in input.lines() {
        let line = line.map_err(|e| AskError::Usage(format!("cannot read input: {e}")))?;
        let parsed = command::take_headers(&line)
            .and_then(|(own, rest)| Ok((own, command::parse(&rest, config.file.as_deref())?)));
        let (own, parsed) = match parsed {
            Ok((own, command)) => (own, Ok(command)),
            Err(e) => (Vec::new(), Err(e)),
        };
        let request = match parsed {
            Ok(Command::Nothing) => continue,
            Ok(Command::Quit) => break,
            // A file has many lines; a batch has one line per request.
            Ok(Command::Request(Request::Edit(e))) if e.action == EditAction::Show && !json => {
                Err(SHOW_IN_BATCH.to_string())
            }
            Ok(Command::Request(request)) => Ok(request),
            Ok(Command::Print(_)) => {
                Err("help is for the interactive shell; --batch takes requests".to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        let index = batch.summary.total;
        batch.summary.total += 1;
        match request {
            Ok(request) => {
                batch.ensure_server(request.op_name())?;
                if let Request::Edit(show) = &request {
                    if show.action == EditAction::Show {
                        batch.shows.insert(index, (show.clone(), None));
                    }
                }
                batch.pipeline.send_with(index, request, own);
            }
            Err(message) => batch.finish_line(index, Err(("usage", message))),
        }
        while batch.pipeline.in_flight() >= WINDOW {
            batch.poll()?;
        }
        batch.flush(out)?;
    }
    while batch.pipeline.in_flight() > 0 {
        batch.poll()?;
    }
    batch.flush(out)?;
    let summary = batch.summary;
    let (_, requester) = batch.pipeline.finish();
    // The CLI exits right after: skip paho's slow teardown.
    requester.abandon();
    Ok(summary)
}

struct Batch {
    pipeline: Pipeline<u64>,
    done: BTreeMap<u64, String>,
    next_out: u64,
    ops_seen: HashSet<String>,
    /// `show` requests by line, with the pages received so far: servers
    /// page large files (docs/PROTOCOL.md), the batch prints them whole.
    shows: HashMap<u64, (EditRequest, Option<EditResult>)>,
    summary: BatchSummary,
    json: bool,
    grace: Duration,
    timeout: Duration,
}

impl Batch {
    /// Fails fast, before sending, when no server offers `op`.
    fn ensure_server(&mut self, op: &str) -> Result<(), AskError> {
        if self.ops_seen.insert(op.to_string()) {
            self.pipeline
                .requester()
                .wait_for_server(op, Instant::now() + self.grace)?;
        }
        Ok(())
    }

    fn poll(&mut self) -> Result<(), AskError> {
        let mut outcomes = Vec::new();
        self.pipeline
            .poll(Duration::from_millis(50), &mut outcomes)?;
        for outcome in outcomes {
            match outcome {
                Outcome::Answered(i, Some(Reply::Ok(OkValue::Edit(page))), _)
                    if self.shows.contains_key(&i) =>
                {
                    self.show_page(i, page)
                }
                Outcome::Answered(i, Some(Reply::Ok(value)), _) => {
                    self.finish_line(i, Ok(Reply::Ok(value)))
                }
                Outcome::Answered(i, Some(Reply::Err(e)), _) => {
                    self.finish_line(i, Ok(Reply::Err(e)))
                }
                Outcome::Answered(i, None, _) => {
                    self.finish_line(i, Err(("bad_reply", "the reply is not a reply map".into())))
                }
                Outcome::Refused(i, message) => self.finish_line(i, Err(("auth", message))),
                Outcome::Lost(i) => self.finish_line(
                    i,
                    Err((
                        "timeout",
                        format!(
                            "no reply within {}",
                            humantime::format_duration(self.timeout)
                        ),
                    )),
                ),
                Outcome::Busy(i) => self.finish_line(
                    i,
                    Err((
                        "busy",
                        format!(
                            "server busy: still refused at capacity (not applied) after {:?}",
                            self.timeout
                        ),
                    )),
                ),
                Outcome::Duplicate => {}
            }
        }
        Ok(())
    }

    /// One page of the `show` on line `index`: asks for the next one
    /// (pinned to the first page's revision), or prints the whole file.
    fn show_page(&mut self, index: u64, page: EditResult) {
        let Some((request, mut whole)) = self.shows.remove(&index) else {
            return;
        };
        let next = page.next;
        match whole.as_mut() {
            Some(so_far) => {
                let content = so_far.content.get_or_insert_with(String::new);
                content.push_str(page.content.as_deref().unwrap_or(""));
            }
            None => whole = Some(page),
        }
        let Some(mut result) = whole else { return };
        match next {
            Some(line) => {
                let follow = Request::Edit(EditRequest {
                    line: Some(line),
                    expect_rev: Some(result.rev),
                    ..request.clone()
                });
                self.shows.insert(index, (request, Some(result)));
                self.pipeline.send(index, follow);
            }
            None => {
                result.next = None;
                self.finish_line(index, Ok(Reply::Ok(OkValue::Edit(result))));
            }
        }
    }

    fn finish_line(&mut self, index: u64, result: Result<Reply, (&str, String)>) {
        self.shows.remove(&index);
        let failed = !matches!(result, Ok(Reply::Ok(_)));
        self.summary.failed += u64::from(failed);
        let text = match (result, self.json) {
            (Ok(reply), true) => serde_json::to_string(&reply).unwrap_or_default(),
            // One line per request: a program's output (`run NAME`)
            // usually ends its line already.
            (Ok(Reply::Ok(value)), false) => {
                let text = value.to_string();
                text.strip_suffix('\n').map(str::to_string).unwrap_or(text)
            }
            (Ok(Reply::Err(e)), false) => format!("error: {e}"),
            (Err((code, message)), true) => {
                serde_json::json!({"err": {"code": code, "message": message}}).to_string()
            }
            (Err((code, message)), false) => format!("error: {code}: {message}"),
        };
        self.done.insert(index, text);
    }

    fn flush(&mut self, out: &mut impl Write) -> Result<(), AskError> {
        while let Some(text) = self.done.remove(&self.next_out) {
            writeln!(out, "{text}")
                .map_err(|e| AskError::Usage(format!("cannot write output: {e}")))?;
            self.next_out += 1;
        }
        Ok(())
    }
}
