//! The shell's `help` and Tab completion from the servers'
//! self-descriptions (`crate::describe`): `help` lists the operations the
//! online servers describe, `help OP` prints one description, and Tab
//! completes the described operations' names and edit's actions. Where no
//! server publishes a description (older servers, or the broker cannot be
//! asked), the shell keeps its built-in help and completion.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::Config;
use crate::describe::{self, render, Catalog};
use crate::output::Columns;

/// Longest wait for the descriptions (the status marker usually ends it
/// within milliseconds).
const WAIT: Duration = Duration::from_secs(2);

/// The shell's own commands, after the described operations in `help`.
const SHELL_COMMANDS: &str = "Shell commands:
  show [--file NAME]   print the file (edit --show)
  help [OP]            this list, or an operation's description
  quit, exit, Ctrl-D   leave

`help OP` shows an operation's fields, limits, examples and error codes;
`OP --help` its flags at this prompt. Quote to keep spaces: echo \"a  b\".";

/// What Tab may complete besides the built-in command names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completions {
    /// The operations the online servers offer.
    pub ops: Vec<String>,
    /// `edit`'s flags for the described actions and fields (`--insert`,
    /// `--line`, ...).
    pub edit_flags: Vec<String>,
}

impl Completions {
    /// What `catalog` offers to complete.
    pub fn of(catalog: &Catalog) -> Completions {
        let edit_flags = edit_flags(catalog);
        Completions {
            ops: catalog.names().into_iter().map(String::from).collect(),
            edit_flags,
        }
    }
}

/// Completions shared with the line editor, filled in the background.
pub type Shared = Arc<Mutex<Completions>>;

/// `edit`'s flags for its described actions (`replace` is the default,
/// without a flag) and fields (`text` is the positional text).
fn edit_flags(catalog: &Catalog) -> Vec<String> {
    let Some(edit) = catalog.offer("edit") else {
        return Vec::new();
    };
    let actions = catalog
        .allowed("edit", "action")
        .into_iter()
        .filter(|a| a != "replace");
    let fields = edit
        .variants
        .iter()
        .flat_map(|v| &v.description.fields)
        .filter(|f| f.allowed.is_empty() && f.name != "text")
        .map(|f| f.name.clone());
    let mut flags: Vec<String> = actions
        .chain(fields)
        .filter(|name| name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .map(|name| format!("--{}", name.replace('_', "-")))
        .collect();
    flags.sort();
    flags.dedup();
    flags
}

/// Fills `shared` from the servers' descriptions on a thread of its own,
/// so that the prompt appears without waiting for them.
pub fn load_in_background(config: &Config, shared: &Shared) {
    let (config, shared) = (config.clone(), shared.clone());
    std::thread::spawn(move || {
        if let Ok(catalog) = describe::collect(&config, WAIT) {
            store(&shared, &catalog);
        }
    });
}

fn store(shared: &Shared, catalog: &Catalog) {
    if let Ok(mut completions) = shared.lock() {
        *completions = Completions::of(catalog);
    }
}

/// The text of `help` / `help OP` from the descriptions, or `None` for
/// the built-in help: no server describes itself, the broker cannot be
/// asked, or `OP` is a shell command or not described.
pub fn help(config: &Config, shared: &Shared, op: Option<&str>) -> Option<String> {
    let catalog = describe::collect(config, WAIT.min(config.timeout)).ok()?;
    store(shared, &catalog);
    if catalog.is_undescribed() {
        return None;
    }
    match op {
        None => Some(list(&catalog)),
        Some(op) => {
            let offer = catalog.offer(op).filter(|o| !o.variants.is_empty())?;
            Some(render::one(offer).trim_end().to_string())
        }
    }
}

/// The described operations with their summaries, then the shell's own
/// commands.
fn list(catalog: &Catalog) -> String {
    let mut columns = Columns::new(&["", ""]);
    let rows: Vec<[String; 2]> = catalog
        .offers
        .iter()
        .map(|o| {
            let summary = match o.summary() {
                "" => "(no description)".to_string(),
                s => render::clean(s),
            };
            [render::clean(&o.name), summary]
        })
        .collect();
    rows.iter().for_each(|r| columns.fit(r));
    let mut out = String::from("Operations (as the servers online describe them):\n");
    for row in &rows {
        out.push_str("  ");
        out.push_str(&columns.line(row));
    }
    out.push('\n');
    out.push_str(SHELL_COMMANDS);
    out
}

/// `help` or `help WORD` alone on a line: the word (or none).
pub fn help_request(line: &str) -> Option<Option<String>> {
    let words = shell_words::split(line.trim()).ok()?;
    match words.as_slice() {
        [help] if help == "help" => Some(None),
        [help, op] if help == "help" && !op.starts_with('-') => Some(Some(op.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::describe::builder::Builder;
    use crate::limits::Limits;
    use crate::protocol::{Op, Status};

    fn catalog(ops: &[Op]) -> Catalog {
        let status = Status {
            state: Status::ONLINE.into(),
            ops: ops.iter().map(|o| o.as_str().to_string()).collect(),
            version: "1".into(),
            since: 1,
            group: None,
            instance: Some("i".into()),
            data_dir: None,
        };
        let d = Builder::new(Some("i".into()))
            .builtins(ops, &Limits::default())
            .build();
        let statuses = BTreeMap::from([("s".to_string(), status.encode())]);
        let descriptions = BTreeMap::from([("s".to_string(), d.encode())]);
        Catalog::merge(&statuses, &descriptions)
    }

    #[test]
    fn completions_come_from_the_described_operations_and_edit_actions() {
        let c = Completions::of(&catalog(&Op::ALL));
        assert_eq!(c.ops, ["calc", "echo", "edit"]);
        assert_eq!(
            c.edit_flags,
            [
                "--append",
                "--delete",
                "--expect-rev",
                "--file",
                "--insert",
                "--line",
                "--show"
            ]
        );
        let c = Completions::of(&catalog(&[Op::Calc]));
        assert_eq!((c.ops.len(), c.edit_flags.len()), (1, 0));
    }

    #[test]
    fn help_lists_the_described_operations_then_the_shell_commands() {
        let text = list(&catalog(&[Op::Calc, Op::Echo]));
        assert!(
            text.contains("  calc  evaluate an arithmetic expression exactly\n"),
            "{text}"
        );
        assert!(
            text.contains("  echo  return the text unchanged\n"),
            "{text}"
        );
        assert!(!text.contains("edit  "), "{text}");
        assert!(text.contains("quit, exit, Ctrl-D"));
    }

    #[test]
    fn only_help_alone_or_with_one_word_is_a_help_request() {
        assert_eq!(help_request("help\n"), Some(None));
        assert_eq!(help_request("  help calc "), Some(Some("calc".into())));
        assert_eq!(help_request("help --all"), None);
        assert_eq!(help_request("help a b"), None);
        assert_eq!(help_request("calc 1"), None);
        assert_eq!(help_request("help \"open"), None);
    }
}
