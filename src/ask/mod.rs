//! The client side: send a request, wait for its one reply, re-send when
//! no reply came (backing off: 1, 2, 4 s ... apart) or the server answered
//! `busy`, fail fast and clearly.
//!
//! [`request`] is the library entry point for one request; `main.rs` turns
//! its result into output and an exit code.

mod backoff;
mod breakdown;
pub mod headers;
mod pipeline;
mod requester;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use crate::cli::{AskOp, EditArgs};
use crate::config::Config;
use crate::mqtt::MqttError;
use crate::protocol::{
    CalcRequest, EchoRequest, EditAction, EditRequest, Encoding, ErrorCode, OkValue, Reply,
    Request, ServerTimes, UserRequest,
};

pub use backoff::{busy_body, Attempts};
pub use breakdown::Breakdown;
pub use pipeline::{Outcome, Pipeline, Totals};
pub use requester::{Received, Requester};

/// Why a request got no reply.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// Connecting, subscribing or publishing failed.
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    /// No server announced itself online for the operation.
    #[error("no server online for {op} (no online status under {prefix}/v1/status/) - is `mqttapp serve` running with the same --prefix?")]
    NoServer {
        /// The operation asked for.
        op: String,
        /// The topic prefix looked at.
        prefix: String,
    },
    /// No reply within the timeout.
    #[error(
        "no reply within {} - the server may be overloaded or stopped; try a longer --timeout",
        humantime::format_duration(*.0)
    )]
    Timeout(Duration),
    /// Every answer within the timeout was `busy` (refused at capacity,
    /// not applied): the server is overloaded.
    #[error("server busy: no final reply within {timeout:?}, the server refused the request at capacity ({message}) and it was not applied - try again later or with a longer --timeout")]
    Busy {
        /// The timeout that ran out.
        timeout: Duration,
        /// The server's message in its last `busy` reply.
        message: String,
    },
    /// The command line does not make a valid request.
    #[error("{0}")]
    Usage(String),
    /// Ctrl-C in the shell while waiting for the reply.
    #[error("cancelled (Ctrl-C): the request was sent and may still be applied; its reply will be ignored")]
    Cancelled,
}

/// A reply and where its time went (`ask -v`).
#[derive(Debug, Clone)]
pub struct Answer {
    /// The final reply.
    pub reply: Reply,
    /// Its time breakdown (for a paged `show`: of the first page).
    pub breakdown: Breakdown,
}

/// How often a wait for a reply looks at the cancel flag (Ctrl-C).
const CANCEL_CHECK: Duration = Duration::from_millis(100);

/// How long to wait before the first re-send of an unanswered request
/// (1 s, less for a timeout under 3 s); later re-sends wait twice as long
/// each time (see [`Attempts`]).
pub fn retry_interval(timeout: Duration) -> Duration {
    backoff::first_resend(timeout)
}

/// How long to wait for a server's online status before failing fast.
pub fn status_grace(timeout: Duration) -> Duration {
    (timeout / 4).min(Duration::from_secs(2))
}

/// Sends one request and returns its reply.
///
/// # Errors
/// [`AskError`]: connection problems, no server online, timeout.
pub fn request(config: &Config, request: &Request) -> Result<Reply, AskError> {
    let mut requester = Requester::connect(config, Encoding::Cbor)?;
    let reply = call(&mut requester, request, config.timeout);
    requester.close();
    reply
}

/// [`request`] for a process that exits right after: skips paho's slow
/// client teardown (see [`Requester::abandon`]). What makes a one-shot
/// `mqttapp ask` as fast as `mosquitto_rr`.
///
/// # Errors
/// As [`request`].
pub fn request_then_exit(config: &Config, request: &Request) -> Result<Reply, AskError> {
    request_then_exit_traced(config, request, Vec::new()).map(|a| a.reply)
}

/// [`request_then_exit`] sending `headers` as user properties (`ask -H`),
/// returning the reply with its time breakdown.
///
/// # Errors
/// As [`request`].
pub fn request_then_exit_traced(
    config: &Config,
    request: &Request,
    headers: Vec<(String, String)>,
) -> Result<Answer, AskError> {
    let mut requester = Requester::connect(config, Encoding::Cbor)?;
    requester.set_headers(headers);
    let answer = call_traced(&mut requester, request, config.timeout);
    requester.abandon();
    answer
}

/// Sends `request` over an open connection, re-sending with the same
/// correlation data until a reply comes or `timeout` passes.
///
/// # Errors
/// [`AskError`]: no server online, timeout, connection lost for good.
pub fn call(
    requester: &mut Requester,
    request: &Request,
    timeout: Duration,
) -> Result<Reply, AskError> {
    call_traced(requester, request, timeout).map(|a| a.reply)
}

/// [`call`], returning the reply with its time breakdown.
///
/// # Errors
/// As [`call`].
pub fn call_traced(
    requester: &mut Requester,
    request: &Request,
    timeout: Duration,
) -> Result<Answer, AskError> {
    let start = Instant::now();
    requester.wait_for_server(request.op_name(), start + status_grace(timeout))?;
    let correlation = requester.next_correlation();
    let first = exchange_traced(requester, request, &correlation, start + timeout, timeout)?;
    match request {
        Request::Edit(show) if show.action == EditAction::Show => Ok(Answer {
            reply: rest_of_show(requester, show, first.reply, timeout)?,
            breakdown: first.breakdown,
        }),
        _ => Ok(first),
    }
}

/// How often a paged `show` starts over because the file changed between
/// two of its pages, before it gives up with the `conflict` reply.
const SHOW_RESTARTS: usize = 3;

/// Servers answer `show` one page at a time (docs/PROTOCOL.md): asks for
/// the pages after `first` and returns one reply with the whole content.
/// The pages are pinned to the first page's revision (`expect_rev`), so
/// they are of one version of the file; when it changes in between, the
/// show starts over, at most [`SHOW_RESTARTS`] times.
fn rest_of_show(
    requester: &mut Requester,
    show: &EditRequest,
    first: Reply,
    timeout: Duration,
) -> Result<Reply, AskError> {
    let mut reply = first;
    let mut restarts = 0;
    loop {
        match pages_after(requester, show, reply, timeout)? {
            Err(_changed) if restarts < SHOW_RESTARTS => {
                restarts += 1;
                tracing::debug!("the file changed between two pages of show; starting over");
                let correlation = requester.next_correlation();
                let request = Request::Edit(show.clone());
                let deadline = Instant::now() + timeout;
                reply = exchange(requester, &request, &correlation, deadline, timeout)?;
            }
            Err(conflict) => return Ok(conflict),
            Ok(whole) => return Ok(whole),
        }
    }
}

/// Appends the pages after `first` to its content: `Ok` with the whole
/// file (or the error a page got), `Err` with the `conflict` reply when
/// the file changed after the first page (and the user pinned no revision).
fn pages_after(
    requester: &mut Requester,
    show: &EditRequest,
    mut first: Reply,
    timeout: Duration,
) -> Result<Result<Reply, Reply>, AskError> {
    let Reply::Ok(OkValue::Edit(result)) = &mut first else {
        return Ok(Ok(first));
    };
    let rev = result.rev;
    let mut next = result.next.take();
    let content = result.content.get_or_insert_with(String::new);
    while let Some(line) = next {
        let request = Request::Edit(EditRequest {
            line: Some(line),
            expect_rev: Some(rev),
            ..show.clone()
        });
        let correlation = requester.next_correlation();
        let deadline = Instant::now() + timeout;
        match exchange(requester, &request, &correlation, deadline, timeout)? {
            Reply::Ok(OkValue::Edit(page)) => {
                content.push_str(page.content.as_deref().unwrap_or(""));
                next = page.next;
            }
            Reply::Err(e)
                if e.error_code() == Some(ErrorCode::Conflict) && show.expect_rev.is_none() =>
            {
                return Ok(Err(Reply::Err(e)));
            }
            other => return Ok(Ok(other)),
        }
    }
    Ok(Ok(first))
}

/// The part of [`call`] after the server check: publish `request` with
/// `correlation`, and re-send it (same correlation data, so the server
/// answers a replay from memory) when no reply came (after 1, 2, 4 s ...),
/// when the server answered `busy` (after a short jittered back-off), or
/// when the connection dropped, until `deadline`.
///
/// An error here means the request may or may not have been applied; the
/// safe retry is another `exchange` with the same `correlation`.
///
/// # Errors
/// [`AskError::Timeout`] (reporting `timeout`) at the deadline,
/// [`AskError::Busy`] when the server was still answering `busy` then, or
/// [`AskError::Mqtt`] when the broker refuses or stays away.
pub fn exchange(
    requester: &mut Requester,
    request: &Request,
    correlation: &[u8],
    deadline: Instant,
    timeout: Duration,
) -> Result<Reply, AskError> {
    exchange_traced(requester, request, correlation, deadline, timeout).map(|a| a.reply)
}

/// [`exchange`], returning the reply with its time breakdown: the round
/// trip counts from the request's last send.
///
/// # Errors
/// As [`exchange`].
pub fn exchange_traced(
    requester: &mut Requester,
    request: &Request,
    correlation: &[u8],
    deadline: Instant,
    timeout: Duration,
) -> Result<Answer, AskError> {
    let mut attempts = Attempts::new(retry_interval(timeout), Instant::now());
    let mut last_busy: Option<String> = None;
    'send: loop {
        let last_sent = Instant::now();
        let mut unchecked = Some(requester.publish_nowait(request, correlation));
        let mut resend_at = attempts.sent(Instant::now()).min(deadline);
        loop {
            // The acknowledgement is checked as it comes, in the same wait
            // as the reply: a refusal fails at once, and a reply needs no
            // separate wait for it.
            if let Some(result) = unchecked.as_mut().and_then(|t| requester.poll_publish(t)) {
                unchecked = None;
                if let Err(e) = result {
                    match requester.publish_failure(request, e) {
                        // The connection dropped under the publish: reconnect
                        // and send it again (same correlation data, so a
                        // replay is harmless).
                        AskError::Mqtt(MqttError::Client(e)) if Instant::now() < deadline => {
                            tracing::debug!(error = %e, "publish failed; reconnecting");
                            std::thread::sleep(Duration::from_millis(50));
                            requester.reconnect(deadline)?;
                            continue 'send;
                        }
                        e => return Err(e),
                    }
                }
            }
            let wake = resend_at.min(Instant::now() + CANCEL_CHECK);
            match requester.next(wake) {
                Some(Received::Reply(c, reply, user)) if c == correlation => {
                    match busy_body(&reply) {
                        Some(body) => {
                            tracing::debug!(message = %body.message, "server busy; backing off");
                            last_busy = Some(body.message.clone());
                            resend_at = attempts.busy(Instant::now()).min(deadline);
                        }
                        None => {
                            let breakdown = Breakdown::new(
                                last_sent.elapsed(),
                                attempts.sends().saturating_sub(1),
                                ServerTimes::of_reply(&user),
                            );
                            return Ok(Answer { reply, breakdown });
                        }
                    }
                }
                Some(Received::Lost) => {
                    requester.reconnect(deadline)?;
                    continue 'send;
                }
                Some(_) => {}
                None if requester.take_cancel() => return Err(AskError::Cancelled),
                None if Instant::now() < resend_at => {}
                None if Instant::now() >= deadline => {
                    return Err(match last_busy {
                        Some(message) => AskError::Busy { timeout, message },
                        None => AskError::Timeout(timeout),
                    })
                }
                None => {
                    tracing::debug!(sends = attempts.sends(), "sending the request again");
                    continue 'send;
                }
            }
        }
    }
}

/// Turns `ask`'s command line into a request.
///
/// # Errors
/// [`AskError::Usage`] when the arguments do not make a request.
pub fn build_request(op: &AskOp, default_file: Option<&str>) -> Result<Request, AskError> {
    Ok(match op {
        AskOp::Calc { expr } => Request::Calc(CalcRequest {
            expr: expr.join(" "),
        }),
        AskOp::Echo { text } => Request::Echo(EchoRequest {
            text: text.join(" "),
        }),
        AskOp::Edit(args) => Request::Edit(edit_request(args, default_file)?),
    })
}

/// `NAME INPUT...`: a user-defined operation's name (checked as the
/// server checks it, so a bad name is a usage error, not a topic) and
/// its input.
///
/// # Errors
/// [`AskError::Usage`] for a name no server could offer.
pub fn user_request(words: &[String]) -> Result<UserRequest, AskError> {
    let empty = String::new();
    let (name, input) = words.split_first().unwrap_or((&empty, &[]));
    let valid = !name.is_empty()
        && name.len() <= crate::config::ops::MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !valid {
        return Err(AskError::Usage(format!(
            "unknown operation {name:?}: use calc, echo, edit, or the name of a user-defined operation (1-{} lowercase letters, digits, '_' or '-')",
            crate::config::ops::MAX_NAME_LEN
        )));
    }
    Ok(UserRequest {
        op: name.clone(),
        input: input.join(" "),
    })
}

fn edit_request(args: &EditArgs, default_file: Option<&str>) -> Result<EditRequest, AskError> {
    let action = match (args.insert, args.append, args.delete, args.show) {
        (true, ..) => EditAction::Insert,
        (_, true, ..) => EditAction::Append,
        (_, _, true, _) => EditAction::Delete,
        (.., true) => EditAction::Show,
        _ => EditAction::Replace,
    };
    let needs_text = matches!(
        action,
        EditAction::Replace | EditAction::Insert | EditAction::Append
    );
    let text = (!args.text.is_empty()).then(|| args.text.join(" "));
    match (needs_text, &text) {
        (true, None) => {
            return Err(AskError::Usage(format!(
                "edit {} needs TEXT, e.g. edit --line 3 \"new text\"",
                action.as_str()
            )))
        }
        (false, Some(_)) => {
            return Err(AskError::Usage(format!(
                "edit {0} takes no TEXT - drop the text, or drop --{0} to replace a line",
                action.as_str()
            )))
        }
        _ => {}
    }
    if action == EditAction::Replace && args.line.is_none() {
        return Err(AskError::Usage(
            "edit needs --line N to replace a line (edit --line 3 \"new text\"), or --append TEXT, or --show".into(),
        ));
    }
    Ok(EditRequest {
        action,
        line: args.line,
        text,
        file: args.file.clone().or_else(|| default_file.map(String::from)),
        expect_rev: args.expect_rev,
    })
}
