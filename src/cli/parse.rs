//! Reading the command line: flags anywhere ([`argv`]), usage errors as
//! JSON under `--json`, the `-h HOST` hint, bare `mqttapp`, and the help of
//! `completions` without connection flags.

use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches};

use super::{argv, command_shown, Cli, SHORT_USAGE};
use crate::exit::ExitCode;
use crate::output::{Format, Output};

/// The process's command line, with flags allowed after an operation's
/// text, and whether it asks for JSON (`--json`). Bare `mqttapp` prints a
/// short usage, help and version are printed: `Err(0)`, nothing to run; a
/// usage error is shown (also as one JSON object on stdout under
/// `--json`): `Err(2)`.
///
/// # Errors
/// The exit code when there is nothing to run.
pub fn from_env() -> Result<(Cli, bool), ExitCode> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() == 1 {
        print!("{}", SHORT_USAGE);
        return Err(ExitCode::Ok);
    }
    let mut command = Cli::command();
    let args = argv::reorder(&command, args, true);
    let json = argv::wants_json(&args);
    let error = match command.try_get_matches_from_mut(&args) {
        Ok(matches) => match Cli::from_arg_matches(&matches) {
            Ok(cli) => return Ok((cli, json)),
            Err(e) => e,
        },
        Err(e) => e,
    };
    let hint = argv::host_port_hint(&command, &args);
    if hint.is_none() && error.kind() == ErrorKind::DisplayHelp && is_completions(&args) {
        let mut shown = command_shown();
        if let Some(sub) = shown.find_subcommand_mut("completions") {
            let long = args.iter().any(|a| a == "--help");
            let help = if long {
                sub.render_long_help()
            } else {
                sub.render_help()
            };
            anstream::print!("{}", help.ansi());
            return Err(ExitCode::Ok);
        }
    }
    if hint.is_none()
        && matches!(
            error.kind(),
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
        )
    {
        // Help and version go to stdout; a closed pipe is no failure.
        let _ = error.print();
        return Err(ExitCode::Ok);
    }
    let rendered = error.render().to_string();
    let message = match &hint {
        Some(hint) => hint.clone(),
        None => usage_message(&rendered),
    };
    if json {
        let object =
            serde_json::json!({"err": {"code": ExitCode::Usage.as_str(), "message": message}});
        println!("{object}");
    }
    match &hint {
        Some(hint) => Output::new(Format::Plain).error(hint),
        None => {
            let _ = error.print();
        }
    }
    Err(ExitCode::Usage)
}

/// Whether the line runs `completions` (its first word that is no flag).
fn is_completions(args: &[std::ffi::OsString]) -> bool {
    args.iter()
        .skip(1)
        .find(|a| !a.to_string_lossy().starts_with('-'))
        .is_some_and(|a| a == "completions")
}

/// clap's error without "error: " and the usage lines, on one line.
fn usage_message(rendered: &str) -> String {
    let text = rendered.strip_prefix("error: ").unwrap_or(rendered);
    text.lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
