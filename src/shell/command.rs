//! One line typed at the shell's prompt, turned into a command.
//!
//! Lines are split into words like a shell does (`shell-words`: quotes and
//! backslashes, no globbing or variables) and parsed by clap with the very
//! definitions `mqttapp ask` uses ([`AskOp`], [`EditArgs`]), so a flag that
//! works on the command line works at the prompt and vice versa.

use std::borrow::Cow;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::ask::headers::Headers;
use crate::ask::{self, AskError};
use crate::cli::{AskOp, EditArgs};
use crate::protocol::{CalcRequest, EchoRequest, Request};

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
    /// The first word is close to a command.
    #[error("unknown command `{0}` - did you mean `{1}`? (`help` lists the commands)")]
    DidYouMean(String, String),
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
    /// Run a user-defined operation offered by a server: run upper hello
    Run {
        /// The operation's name
        #[arg(value_name = "NAME")]
        name: String,
        /// Its input; several words are joined with spaces
        #[arg(num_args = 0.., value_name = "INPUT")]
        input: Vec<String>,
    },
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
    // `ask NAME INPUT` takes any other word as a user-defined operation;
    // at the prompt a typo should say "unknown command", so user
    // operations go through `run NAME INPUT` here.
    #[command(flatten)]
    Op(AskOp),
}

/// The names a line may start with, for completion on the prompt.
pub const NAMES: &[&str] = &[
    "calc", "echo", "edit", "run", "show", "help", "quit", "exit",
];

/// A line parsed, before it becomes a request.
enum Parsed {
    Op(AskOp),
    User(Vec<String>),
    Help(Option<String>),
    Print(String),
    Quit,
    Nothing,
}

/// Parses one line. `default_file` is the configured edit file, as for
/// `mqttapp ask edit`.
///
/// # Errors
/// [`LineError`] with a message that says what to type instead.
pub fn parse(line: &str, default_file: Option<&str>) -> Result<Command, LineError> {
    if let Some(request) = plain_request(line) {
        return Ok(Command::Request(request));
    }
    Ok(match parse_words(line)? {
        Parsed::Op(op) => Command::Request(ask::build_request(&op, default_file)?),
        Parsed::User(words) => Command::Request(Request::User(ask::user_request(&words)?)),
        Parsed::Help(command) => Command::Print(help(command.as_deref())?),
        Parsed::Print(text) => Command::Print(text),
        Parsed::Quit => Command::Quit,
        Parsed::Nothing => Command::Nothing,
    })
}

/// A line's leading `-H KEY=VALUE` words (also `-HKEY=VALUE`, `--header
/// KEY=VALUE`, `--header=KEY=VALUE`): the user properties of this line's
/// request (as `ask -H`), and the rest of the line, a command.
///
/// # Errors
/// [`LineError`] for an unmatched quote, a refused property (a name
/// starting with `mqttapp-`, no `=`) or no command after the properties.
pub fn take_headers(line: &str) -> Result<(Headers, Cow<'_, str>), LineError> {
    let trimmed = line.trim_start();
    if !trimmed.starts_with("-H") && !trimmed.starts_with("--header") {
        return Ok((Vec::new(), Cow::Borrowed(line)));
    }
    let words = shell_words::split(trimmed).map_err(|_| LineError::Quote)?;
    let mut headers = Vec::new();
    let mut rest = words.as_slice();
    loop {
        let (value, used) = match rest {
            [flag, value, ..] if flag == "-H" || flag == "--header" => (value.as_str(), 2),
            [flag, ..] if flag.starts_with("--header=") => (&flag["--header=".len()..], 1),
            [flag, ..] if flag.starts_with("-H") && flag.len() > 2 => (&flag[2..], 1),
            _ => break,
        };
        headers.push(ask::headers::parse(value)?);
        rest = &rest[used..];
    }
    if rest.is_empty() || rest[0] == "-H" || rest[0] == "--header" {
        return Err(LineError::Usage(
            "-H KEY=VALUE goes before a command: -H traceparent=00-...-01 calc 1+1".into(),
        ));
    }
    Ok((headers, Cow::Owned(shell_words::join(rest))))
}

/// The common case without clap: `calc` or `echo` followed by plain words
/// (no quotes, backslashes or flags), which clap would join with single
/// spaces too. Building clap's parser for every line of a 10,000-line
/// batch cost more than sending the requests.
fn plain_request(line: &str) -> Option<Request> {
    let mut words = line.split_whitespace();
    let op = words.next()?;
    let words: Vec<&str> = words.collect();
    // A leading '-' is fine before a number or a parenthesis ("-1+2"),
    // not before a letter ("--help", "-h").
    let negative =
        |w: &str| w[1..].starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '(');
    let plain =
        |w: &&str| !w.contains(['\'', '"', '\\', '#']) && (!w.starts_with('-') || negative(w));
    if words.is_empty() || !words.iter().all(plain) {
        return None;
    }
    let text = words.join(" ");
    match op {
        "calc" => Some(Request::Calc(CalcRequest { expr: text })),
        "echo" => Some(Request::Echo(EchoRequest { text })),
        _ => None,
    }
}

/// The shell's grammar, built once for every line.
fn grammar() -> &'static clap::Command {
    static GRAMMAR: std::sync::OnceLock<clap::Command> = std::sync::OnceLock::new();
    GRAMMAR.get_or_init(|| {
        let mut line = Line::command();
        line.build();
        line
    })
}

fn parse_words(line: &str) -> Result<Parsed, LineError> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(Parsed::Nothing);
    }
    let words = shell_words::split(trimmed).map_err(|_| LineError::Quote)?;
    let grammar = grammar();
    // Flags may follow the text, as on the command line.
    let args = crate::cli::argv::reorder(
        grammar,
        words.iter().map(std::ffi::OsString::from).collect(),
        false,
    );
    let parsed = match grammar
        .clone()
        .try_get_matches_from(args)
        .and_then(|m| Line::from_arg_matches(&m))
    {
        Ok(parsed) => parsed,
        Err(e) => return clap_outcome(&e, &words),
    };
    Ok(match parsed.command {
        LineCommand::Op(op) => Parsed::Op(op),
        LineCommand::Run { name, input } => {
            Parsed::User(std::iter::once(name).chain(input).collect())
        }
        LineCommand::Show { file } => Parsed::Op(AskOp::Edit(EditArgs {
            show: true,
            file,
            ..EditArgs::default()
        })),
        LineCommand::Help { command } => Parsed::Help(command),
        LineCommand::Quit => Parsed::Quit,
    })
}

/// clap reports `--help` as an "error" too: that one is output. Errors
/// become one line (batch output has one line per request): clap's first
/// line and its usage line.
fn clap_outcome(e: &clap::Error, words: &[String]) -> Result<Parsed, LineError> {
    use clap::error::ErrorKind;
    let text = e.render().to_string();
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Ok(Parsed::Print(text)),
        ErrorKind::InvalidSubcommand => {
            use clap::error::{ContextKind, ContextValue};
            let word = words[0].clone();
            Err(match e.get(ContextKind::SuggestedSubcommand) {
                Some(ContextValue::Strings(s)) if !s.is_empty() => {
                    LineError::DidYouMean(word, s[0].clone())
                }
                Some(ContextValue::String(s)) => LineError::DidYouMean(word, s.clone()),
                _ => LineError::Unknown(word),
            })
        }
        _ => {
            let lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
            // The message may go on over lines ("not provided:\n  <EXPR>").
            let first = lines
                .clone()
                .take_while(|l| !l.starts_with("Usage: ") && !l.starts_with("For more"))
                .collect::<Vec<_>>()
                .join(" ");
            let first = first.strip_prefix("error: ").unwrap_or(&first);
            let first = if first.is_empty() {
                "invalid command"
            } else {
                first
            };
            let usage = lines.clone().find_map(|l| l.strip_prefix("Usage: "));
            Err(LineError::Usage(match usage {
                Some(usage) => format!("{first} - usage: {usage}"),
                None => format!("{first} - see `help {}`", words[0]),
            }))
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
