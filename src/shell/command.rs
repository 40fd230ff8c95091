//! One line typed at the shell's prompt, turned into a command.
//!
//! Lines are split into words like a shell does (`shell-words`: quotes and
//! backslashes, no globbing or variables) and parsed by clap with the very
//! definitions `mqttapp ask` uses ([`AskOp`], [`EditArgs`]), so a flag that
//! works on the command line works at the prompt and vice versa.

use clap::{CommandFactory, Parser, Subcommand};

use crate::ask::{self, AskError};
use crate::cli::{AskOp, EditArgs};
use crate::protocol::Request;

/// What a line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Send this request.
    Request(Request),
    /// Print this text (help) on stdout.
    Print(String),
    /// Leave the shell.
    Quit,
    /// An empty line or a `#` comment.
    Nothing,
}

/// Why a line is not a command. Each message says what to type instead.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// A quote was opened and not closed.
    #[error("unmatched quote - close it, or escape it with a backslash: echo don\\'t")]
    Quote,
    /// The first word is not a command.
    #[error("unknown command `{0}` - type `help` for the commands")]
    Unknown(String),
    /// clap refused the flags; its message includes the usage line.
    #[error("{0}")]
    Usage(String),
    /// The flags parse but do not make a request.
    #[error("{0}")]
    Request(#[from] AskError),
}

/// The shell's grammar: the `ask` operations plus a few shell commands.
#[derive(Debug, Parser)]
#[command(
    name = "mqttapp shell",
    no_binary_name = true,
    disable_help_subcommand = true,
    disable_version_flag = true,
    help_template = "{subcommands}"
)]
struct Line {
    #[command(subcommand)]
    command: LineCommand,
}

#[derive(Debug, Subcommand)]
enum LineCommand {
    #[command(flatten)]
    Op(AskOp),
    /// Print the file and its revision (same as `edit --show`)
    Show {
        /// File to show instead of the server's default
        #[arg(long, value_name = "NAME")]
        file: Option<String>,
    },
    /// List the commands, or show one command's flags: help edit
    Help {
        /// The command to explain
        #[arg(value_name = "COMMAND")]
        command: Option<String>,
    },
    /// Leave the shell (also `exit` and Ctrl-D)
    #[command(alias = "exit")]
    Quit,
}

/// The names a line may start with, for completion on the prompt.
pub const NAMES: &[&str] = &["calc", "echo", "edit", "show", "help", "quit", "exit"];

/// Parses one line. `default_file` is the configured edit file, as for
/// `mqttapp ask edit`.
///
/// # Errors
/// [`LineError`] with a message that says what to type instead.
pub fn parse(line: &str, default_file: Option<&str>) -> Result<Command, LineError> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(Command::Nothing);
    }
    let words = shell_words::split(trimmed).map_err(|_| LineError::Quote)?;
    let parsed = match Line::try_parse_from(&words) {
        Ok(parsed) => parsed,
        Err(e) => return clap_outcome(&e, &words),
    };
    Ok(match parsed.command {
        LineCommand::Op(op) => Command::Request(ask::build_request(&op, default_file)?),
        LineCommand::Show { file } => {
            let args = EditArgs {
                show: true,
                file,
                ..EditArgs::default()
            };
            Command::Request(ask::build_request(&AskOp::Edit(args), default_file)?)
        }
        LineCommand::Help { command } => Command::Print(help(command.as_deref())?),
        LineCommand::Quit => Command::Quit,
    })
}

/// clap reports `--help` as an "error" too: that one is output.
fn clap_outcome(e: &clap::Error, words: &[String]) -> Result<Command, LineError> {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            Ok(Command::Print(e.render().to_string()))
        }
        ErrorKind::InvalidSubcommand => Err(LineError::Unknown(words[0].clone())),
        _ => {
            let text = e.render().to_string();
            let text = text.strip_prefix("error: ").unwrap_or(&text);
            Err(LineError::Usage(text.trim_end().to_string()))
        }
    }
}

/// `help`: the command list; `help edit`: that command's flags.
fn help(command: Option<&str>) -> Result<String, LineError> {
    let mut line = Line::command();
    let Some(name) = command else {
        let list = line.render_help().to_string();
        return Ok(format!(
            "Commands:\n{}\n\nQuote to keep spaces: echo \"a  b\". `help COMMAND` shows its flags.",
            list.trim_end()
        ));
    };
    match line.find_subcommand_mut(name) {
        Some(sub) => Ok(sub.render_long_help().to_string().trim_end().to_string()),
        None => Err(LineError::Unknown(name.to_string())),
    }
}

#[cfg(test)]
mod tests;
