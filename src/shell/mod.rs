//! The interactive shell (`mqttapp shell`, or `mqttapp ask` without an
//! operation): many requests over ONE connection, read from a prompt or
//! from a pipe.
//!
//! Each line is parsed by [`command::parse`], sent with [`ask::call`]
//! (the same re-sending and fail-fast rules as one-shot `ask`) and shown
//! by [`Output`]. A failed command is shown and the session goes on; a
//! dropped connection is re-opened before the next command. `help` and
//! Tab completion use the servers' self-descriptions where they have them
//! ([`described`]).

mod batch;
pub mod command;
mod described;
mod input;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ask::{self, AskError, Received, Requester};
use crate::config::Config;
use crate::exit::ExitCode;
use crate::output::Output;
use crate::protocol::{Encoding, Request};
pub use batch::{run_batch, BatchSummary};
use command::Command;
pub use input::history_path;
use input::Input;

/// How a session went: the exit code of a piped session is 0 only when
/// every command succeeded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Commands that succeeded.
    pub ok: usize,
    /// Commands that failed: refused lines, error replies, timeouts.
    pub failed: usize,
}

impl Summary {
    /// [`ExitCode::Ok`] when nothing failed, else [`ExitCode::OperationError`].
    pub fn exit_code(&self) -> ExitCode {
        if self.failed == 0 {
            ExitCode::Ok
        } else {
            ExitCode::OperationError
        }
    }
}

/// Runs a session until `quit`, Ctrl-D or the end of the input. Meant
/// for a process that exits afterwards (see [`Requester::abandon`]).
/// `headers` (`-H`) go with every request, before a line's own `-H`.
///
/// # Errors
/// [`AskError`] only when the first connection fails; later failures are
/// shown and counted in the [`Summary`].
pub fn run(
    config: &Config,
    output: &Output,
    headers: Vec<(String, String)>,
) -> Result<Summary, AskError> {
    let mut requester = Requester::connect(config, Encoding::Cbor)?;
    let completions = described::Shared::default();
    let mut input = Input::open(&completions);
    if input.interactive() {
        described::load_in_background(config, &completions);
        // Ctrl-C while a request waits cancels that request, not the
        // session (at the prompt, the line editor handles it).
        let interrupted = Arc::new(AtomicBool::new(false));
        if signal_hook::flag::register(signal_hook::consts::SIGINT, interrupted.clone()).is_ok() {
            requester.cancel_on(interrupted);
        }
        greet(config, &mut requester);
    }
    let mut output = output.clone();
    let mut summary = Summary::default();
    let mut line_no = 0usize;
    while let Some(line) = input.read() {
        line_no += 1;
        if !input.interactive() {
            output.set_context(format!("line {line_no}: "));
        }
        // `help` from the servers' descriptions; the built-in help below
        // when they have none.
        let described = described::help_request(&line)
            .and_then(|op| described::help(config, &completions, op.as_deref()));
        if let Some(text) = described {
            input.remember(&line);
            println!("{text}");
            continue;
        }
        let parsed = command::take_headers(&line)
            .and_then(|(own, rest)| Ok((own, command::parse(&rest, config.file.as_deref())?)));
        let succeeded = match parsed {
            Ok((_, Command::Nothing)) => continue,
            Ok((_, Command::Quit)) => break,
            Ok((_, Command::Print(text))) => {
                input.remember(&line);
                println!("{text}");
                continue;
            }
            Ok((own, Command::Request(request))) => {
                input.remember(&line);
                requester.set_headers(headers.iter().chain(&own).cloned().collect());
                send(&mut requester, &request, config.timeout, &output)
            }
            Err(e) => {
                output.failure(ExitCode::Usage, &e);
                false
            }
        };
        if succeeded {
            summary.ok += 1;
        } else {
            summary.failed += 1;
        }
    }
    input.close();
    // The CLI exits right after: skip paho's slow teardown.
    requester.abandon();
    Ok(summary)
}

/// Says where the shell is connected and how many servers answer there,
/// after a short wait for their retained statuses.
fn greet(config: &Config, requester: &mut Requester) {
    let deadline = Instant::now() + ask::status_grace(config.timeout).min(Duration::from_secs(1));
    while requester.servers_online() == 0 && requester.next(deadline).is_some() {}
    let servers = match requester.servers_online() {
        0 => "no server online yet: start `mqttapp serve`".to_string(),
        1 => "1 server online".to_string(),
        n => format!("{n} servers online"),
    };
    anstream::eprintln!(
        "connected to {} (prefix {}, {servers}); type `help` for the commands, `quit` or Ctrl-D to leave",
        config.connection.broker,
        config.prefix
    );
}

/// Sends one request and shows its reply or failure; true on success.
fn send(requester: &mut Requester, request: &Request, timeout: Duration, output: &Output) -> bool {
    // A Ctrl-C pressed while no request waited cancels nothing later.
    let _ = requester.take_cancel();
    let result = ensure_connected(requester, timeout)
        .and_then(|()| ask::call_traced(requester, request, timeout));
    match result {
        Ok(answer) => {
            output.reply_with(request, &answer.reply, Some(&answer.breakdown)) == ExitCode::Ok
        }
        Err(e) => {
            output.failure(ExitCode::of_ask(&e), &e);
            false
        }
    }
}

/// Between two commands the broker may have gone away and come back:
/// take in what arrived meanwhile (status changes, a lost connection) and
/// reconnect if needed, so one outage costs one failed command at most.
fn ensure_connected(requester: &mut Requester, timeout: Duration) -> Result<(), AskError> {
    let mut lost = !requester.is_connected();
    let glance = Instant::now() + Duration::from_millis(5);
    while let Some(event) = requester.next(glance) {
        lost |= matches!(event, Received::Lost);
    }
    if lost || !requester.is_connected() {
        requester.reconnect(Instant::now() + timeout)?;
    }
    Ok(())
}
