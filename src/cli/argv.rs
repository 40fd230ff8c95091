//! Options anywhere on the line, as `gh`, `rg` and `nats` accept them.
//!
//! `ask calc` and `ask echo` take free text whose words may start with `-`
//! (`calc -2*3`), so clap would swallow every later flag into the text:
//! `ask calc 1+1 --timeout 1s` sent `1+1 --timeout 1s`. [`reorder`] moves
//! the words that are flags of the command line (its own, its parents' and
//! the global ones) in front of the text and puts the text after `--`.
//! Text that really is a flag's name is written after `--` by the user.
//!
//! Everything is driven by the clap definitions, so a new flag is found
//! without touching this file.

use std::ffi::OsString;

use clap::{Arg, Command};

/// `args` with the flags after a free-text argument moved before it.
///
/// `binary_name`: whether `args[0]` is the program (false for the shell's
/// lines). Arguments that are not UTF-8, lines without free text and lines
/// that already use `--` come back unchanged.
pub fn reorder(cmd: &Command, args: Vec<OsString>, binary_name: bool) -> Vec<OsString> {
    let Some(words) = args
        .iter()
        .map(|a| a.to_str().map(str::to_string))
        .collect::<Option<Vec<String>>>()
    else {
        return args;
    };
    match split(cmd, &words, usize::from(binary_name)) {
        Some(words) => words.into_iter().map(OsString::from).collect(),
        None => args,
    }
}

/// Whether the line asks for JSON output (`--json` before any `--`): then
/// a usage error is shown as one JSON object on stdout too.
pub fn wants_json(args: &[OsString]) -> bool {
    args.iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "--json")
}

/// The habit from `mosquitto_pub`/`mosquitto_rr`: `-h HOST`, `-p PORT`,
/// `--host`, `--port`. Returns a hint naming `--broker` when the line has
/// one of them where mqttapp cannot read it as anything else.
pub fn host_port_hint(cmd: &Command, args: &[OsString]) -> Option<String> {
    let mut current = cmd;
    let mut words = args.iter().skip(1).map(|a| a.to_str().unwrap_or(""));
    while let Some(word) = words.next() {
        if word == "--" {
            return None;
        }
        let habit = ["-p", "--host", "--port"].contains(&word)
            || word.starts_with("--host=")
            || word.starts_with("--port=");
        if habit {
            return Some(BROKER_HINT.to_string());
        }
        if word == "-h" {
            // `-h` is help, unless a host name follows where no
            // subcommand or argument is expected.
            let next = words.next()?;
            let takes_positional = current.get_positionals().next().is_some();
            if !next.starts_with('-')
                && !takes_positional
                && current.find_subcommand(next).is_none()
            {
                return Some(BROKER_HINT.to_string());
            }
            return None;
        }
        if let Some(sub) = current.find_subcommand(word) {
            current = sub;
        }
    }
    None
}

/// What to write instead of `-h HOST -p PORT`.
pub const BROKER_HINT: &str = "mqttapp has no -h/--host or -p/--port (-h is help): give the broker as one address, --broker mqtt://HOST:PORT (or MQTTAPP_BROKER)";

/// The reordered words, or `None` when nothing needs to move.
fn split(root: &Command, words: &[String], start: usize) -> Option<Vec<String>> {
    let mut path: Vec<&Command> = vec![root];
    // Index of the word naming each command of `path` after the root.
    let mut named_at: Vec<usize> = Vec::new();
    let mut i = start;
    while i < words.len() {
        let word = &words[i];
        let current = *path.last()?;
        if word == "--" {
            return None;
        }
        let free_text = current.get_positionals().any(is_free_text);
        if is_flag_like(word) {
            match in_scope(&path, word) {
                Some(n) => i += 1 + n,
                // An unknown flag is text where text may start with '-'.
                None if free_text => break,
                None => return None,
            }
            continue;
        }
        if let Some(sub) = current.find_subcommand(word) {
            path.push(sub);
            named_at.push(i);
            i += 1;
            continue;
        }
        // A positional: only free text (many words, may start with '-').
        if !free_text {
            return None;
        }
        break;
    }
    if i >= words.len() {
        return None;
    }
    let leaf_at = *named_at.last()?;
    let parents = &path[..path.len() - 1];
    let (mut own, mut parent_flags, mut text) = (Vec::new(), Vec::new(), Vec::new());
    let mut j = i;
    while j < words.len() {
        let word = &words[j];
        if word == "--" {
            text.extend(words[j + 1..].iter().cloned());
            break;
        }
        if is_flag_like(word) {
            // An unknown `--name` stays a flag, for clap to refuse with
            // its "use -- --name" tip: text never looks like that by chance.
            let own_flag = in_scope(&path, word);
            let parent_args: Vec<&Arg> = parents.iter().flat_map(|p| p.get_arguments()).collect();
            let parent_flag = value_words(&parent_args, word);
            if let (None, Some(n)) = (own_flag, parent_flag) {
                parent_flags.extend(words[j..(j + 1 + n).min(words.len())].iter().cloned());
                j += 1 + n;
                continue;
            }
            let n = own_flag.or_else(|| is_long_flag(word).then_some(0));
            if let Some(n) = n {
                own.extend(words[j..(j + 1 + n).min(words.len())].iter().cloned());
                j += 1 + n;
                continue;
            }
        }
        text.push(word.clone());
        j += 1;
    }
    let mut out = words[..leaf_at].to_vec();
    out.extend(parent_flags);
    out.extend(words[leaf_at..i].iter().cloned());
    out.extend(own);
    if !text.is_empty() {
        out.push("--".to_string());
        out.extend(text);
    }
    Some(out)
}

/// `-x` or `--xyz`, but not `-` alone.
fn is_flag_like(word: &str) -> bool {
    word.len() > 1 && word.starts_with('-')
}

/// A positional taking any number of words: an expression, a text, ids.
fn is_free_text(arg: &Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.max_values() > 1)
}

/// `--name...`: a long flag's shape (not `---` or `--1`).
fn is_long_flag(word: &str) -> bool {
    word.strip_prefix("--")
        .and_then(|rest| rest.chars().next())
        .is_some_and(|c| c.is_ascii_alphabetic())
}

/// When `word` is a flag of the last command of `path` (its own, a global
/// one of the commands above it, or help/version): how many following words
/// are its value. Works on commands that clap has not built yet (where
/// global flags are not yet copied down), so parsing a line costs no more
/// than before.
fn in_scope(path: &[&Command], word: &str) -> Option<usize> {
    let (cmd, above) = path.split_last()?;
    if ["-h", "--help", "-V", "--version"].contains(&word) {
        return Some(0);
    }
    let globals = above
        .iter()
        .flat_map(|c| c.get_arguments())
        .filter(|a| a.is_global_set());
    let args: Vec<&Arg> = cmd.get_arguments().chain(globals).collect();
    value_words(&args, word)
}

/// When `word` is one of `args`: how many following words are its value
/// (0 or 1). `None` when there is no such flag.
fn value_words(args: &[&Arg], word: &str) -> Option<usize> {
    if let Some(long) = word.strip_prefix("--") {
        let (name, inline_value) = match long.split_once('=') {
            Some((name, _)) => (name, true),
            None => (long, false),
        };
        let arg = args.iter().find(|a| {
            a.get_long_and_visible_aliases()
                .unwrap_or_default()
                .contains(&name)
        })?;
        return Some(usize::from(takes_value(arg) && !inline_value));
    }
    // A cluster of short flags (`-vq`); a flag taking a value ends it and
    // takes the rest of the word, or the next word.
    let shorts: Vec<char> = word[1..].chars().collect();
    for (k, c) in shorts.iter().enumerate() {
        let arg = args.iter().find(|a| {
            a.get_short_and_visible_aliases()
                .unwrap_or_default()
                .contains(c)
        })?;
        if takes_value(arg) {
            return Some(usize::from(k + 1 == shorts.len()));
        }
    }
    Some(0)
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn moved(line: &str) -> String {
        let args: Vec<OsString> = line.split(' ').map(OsString::from).collect();
        let out = reorder(&crate::cli::Cli::command(), args, true);
        out.iter()
            .map(|a| a.to_str().unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn flags_after_the_text_move_before_it() {
        assert_eq!(
            moved("m ask calc 1+1 --timeout 1s"),
            "m ask --timeout 1s calc -- 1+1"
        );
        assert_eq!(moved("m ask echo hi --json"), "m ask --json echo -- hi");
        assert_eq!(
            moved("m ask echo hi --broker=mqtt://h:1 -v"),
            "m ask echo --broker=mqtt://h:1 -v -- hi"
        );
        assert_eq!(
            moved("m ask edit x --line 2 --timeout=3"),
            "m ask --timeout=3 edit --line 2 -- x"
        );
    }

    #[test]
    fn text_that_is_not_a_flag_stays_text() {
        assert_eq!(moved("m ask calc -2*3"), "m ask calc -- -2*3");
        assert_eq!(moved("m ask echo -x y"), "m ask echo -- -x y");
        assert_eq!(moved("m ask echo -- --json"), "m ask echo -- --json");
        assert_eq!(moved("m ask echo a --nope"), "m ask echo --nope -- a");
        assert_eq!(
            moved("m ask calc 1 --broker h:1 --json --timeout=2"),
            "m ask --json --timeout=2 calc --broker h:1 -- 1"
        );
        assert_eq!(moved("m ask echo a --- b"), "m ask echo -- a --- b");
        assert_eq!(moved("m ask calc 1 -- --x"), "m ask calc -- 1 --x");
    }

    #[test]
    fn lines_without_free_text_are_unchanged() {
        for line in ["m serve --group g", "m completions bash", "m ask --json"] {
            assert_eq!(moved(line), line);
        }
    }

    #[test]
    fn mosquitto_habits_get_the_broker_hint() {
        let hint = |line: &str| {
            let args: Vec<OsString> = line.split(' ').map(OsString::from).collect();
            host_port_hint(&crate::cli::Cli::command(), &args).is_some()
        };
        assert!(hint("m ask -h localhost calc 1"));
        assert!(hint("m serve -p 1883"));
        assert!(hint("m ask --port=1883 calc 1"));
        assert!(!hint("m ask -h"));
        assert!(!hint("m dlq -h list"));
        assert!(!hint("m completions -h bash"));
    }
}
