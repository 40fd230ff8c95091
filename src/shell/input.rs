//! Where the shell's lines come from: a terminal (rustyline: line editing,
//! history, completion of command names) or a pipe (plain lines, no
//! prompt, no history).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use super::command;
use super::described::Shared;

/// The prompt on a terminal.
const PROMPT: &str = "mqttapp> ";
/// Entries kept in the history file.
const HISTORY_SIZE: usize = 1000;

/// A source of lines.
pub enum Input {
    /// An interactive terminal.
    Terminal {
        /// The line editor.
        editor: Box<Editor<Names, DefaultHistory>>,
        /// Where the history is saved, if anywhere.
        history: Option<PathBuf>,
    },
    /// Anything else: a pipe or a file.
    Pipe(std::io::StdinLock<'static>),
}

impl Input {
    /// A terminal when stdin is one and rustyline can drive it, else a
    /// pipe. Tab also completes what `described` holds when Tab is pressed.
    pub fn open(described: &Shared) -> Input {
        if !std::io::stdin().is_terminal() {
            return Input::Pipe(std::io::stdin().lock());
        }
        match terminal(described) {
            Ok(input) => input,
            Err(e) => {
                tracing::warn!(error = %e, "no line editing on this terminal");
                Input::Pipe(std::io::stdin().lock())
            }
        }
    }

    /// True when a person types at a prompt.
    pub fn interactive(&self) -> bool {
        matches!(self, Input::Terminal { .. })
    }

    /// The next line; `None` at the end of input (Ctrl-D). Ctrl-C drops
    /// the line being typed, as in other shells.
    pub fn read(&mut self) -> Option<String> {
        match self {
            Input::Pipe(stdin) => {
                let mut line = String::new();
                match stdin.read_line(&mut line) {
                    Ok(0) => None,
                    Ok(_) => Some(line),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read stdin");
                        None
                    }
                }
            }
            Input::Terminal { editor, .. } => loop {
                match editor.readline(PROMPT) {
                    Ok(line) => return Some(line),
                    Err(ReadlineError::Interrupted) => continue,
                    Err(ReadlineError::Eof) => return None,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the terminal");
                        return None;
                    }
                }
            },
        }
    }

    /// Keeps a valid command in the history. Only lines that parsed as
    /// commands get here, so a password typed at the prompt by mistake is
    /// never saved; neither is a line starting with a space.
    pub fn remember(&mut self, line: &str) {
        if let Input::Terminal { editor, .. } = self {
            let _ = editor.add_history_entry(line.trim_end());
        }
    }

    /// Saves the history (readable by the user only).
    pub fn close(self) {
        if let Input::Terminal {
            mut editor,
            history: Some(path),
        } = self
        {
            if let Err(e) = save(&mut editor, &path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot save the shell history");
            }
        }
    }
}

fn terminal(described: &Shared) -> rustyline::Result<Input> {
    let config = rustyline::Config::builder()
        .auto_add_history(false)
        .history_ignore_space(true)
        .history_ignore_dups(true)?
        .max_history_size(HISTORY_SIZE)?
        .build();
    let mut editor = Editor::with_config(config)?;
    editor.set_helper(Some(Names {
        described: described.clone(),
    }));
    let history = history_path();
    if let Some(path) = &history {
        // A missing file is the first session; anything else is not worth
        // refusing the prompt over.
        let _ = editor.load_history(path);
    }
    Ok(Input::Terminal {
        editor: Box::new(editor),
        history,
    })
}

/// `$XDG_STATE_HOME/mqttapp/history` (`~/.local/state/...`), or the data
/// directory where the platform has no state directory.
pub fn history_path() -> Option<PathBuf> {
    let base = dirs::state_dir().or_else(dirs::data_dir)?;
    Some(base.join("mqttapp").join("history"))
}

fn save(editor: &mut Editor<Names, DefaultHistory>, path: &PathBuf) -> rustyline::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    editor.save_history(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Completes (Tab) command names and described operations at the start
/// of a line, operation names after `help`, and `edit`'s described
/// actions and fields as flags (`edit --ins` -> `edit --insert`).
pub struct Names {
    described: Shared,
}

impl Completer for Names {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let described = self.described.lock().map(|d| d.clone()).unwrap_or_default();
        Ok(complete(&line[..pos], &described))
    }
}

/// Where the word being typed starts, and its candidates.
fn complete(typed: &str, described: &super::described::Completions) -> (usize, Vec<String>) {
    let start = typed.rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let (before, word) = typed.split_at(start);
    let first = before.split_whitespace().next();
    let words: Vec<&str> = match first {
        None => command::NAMES.to_vec(),
        Some("help") if before.split_whitespace().count() == 1 => command::NAMES.to_vec(),
        Some("edit") if word.starts_with('-') => {
            described.edit_flags.iter().map(String::as_str).collect()
        }
        _ => return (typed.len(), Vec::new()),
    };
    let extra = match first {
        Some("edit") => &[][..],
        _ => &described.ops[..],
    };
    let mut names: Vec<String> = words
        .into_iter()
        .chain(extra.iter().map(String::as_str))
        .filter(|n| n.starts_with(word))
        .map(|n| format!("{n} "))
        .collect();
    names.sort();
    names.dedup();
    (start, names)
}

impl Hinter for Names {
    type Hint = String;
}

impl Highlighter for Names {}

impl Validator for Names {}

impl Helper for Names {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::described::Completions;

    #[test]
    fn tab_completes_described_operations_and_edit_actions() {
        let described = Completions {
            ops: vec!["calc".into(), "wordcount".into()],
            edit_flags: vec!["--insert".into(), "--line".into()],
        };
        assert_eq!(
            complete("w", &described),
            (0, vec!["wordcount ".to_string()])
        );
        assert_eq!(complete("c", &described).1, ["calc "]);
        assert_eq!(
            complete("help w", &described),
            (5, vec!["wordcount ".to_string()])
        );
        assert_eq!(
            complete("edit --i", &described),
            (5, vec!["--insert ".to_string()])
        );
        assert_eq!(complete("edit 3 --l", &described).1, ["--line "]);
        assert!(complete("calc 1", &described).1.is_empty());
        // Without descriptions: the built-in names, as before.
        let none = Completions::default();
        assert_eq!(complete("q", &none).1, ["quit "]);
        assert!(complete("edit --i", &none).1.is_empty());
    }
}
