//! One request written as a line of words, the way `ask` takes it on the
//! command line: `calc 2+3*4`, `echo hello world`, `edit --line 3 text`.
//! Used by `ask --batch` (and the interactive shell).

use clap::Parser;

use crate::cli::AskOp;

/// A line parsed with the same clap definitions as `mqttapp ask`.
#[derive(Debug, Parser)]
#[command(no_binary_name = true, disable_version_flag = true)]
struct Line {
    #[command(subcommand)]
    op: AskOp,
}

/// Parses one line. Blank lines and lines starting with `#` are `None`.
///
/// # Errors
/// A one-line message for quoting mistakes and unknown commands or flags.
pub fn parse_line(line: &str) -> Result<Option<AskOp>, String> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let words = shell_words::split(trimmed)
        .map_err(|e| format!("cannot split {trimmed:?} into words: {e}"))?;
    match Line::try_parse_from(words) {
        Ok(line) => Ok(Some(line.op)),
        Err(e) => {
            let rendered = e.render().to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or("invalid command")
                .trim_start_matches("error: ");
            Err(first.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_like_the_command_line() {
        assert!(matches!(
            parse_line("calc 2+3*4"),
            Ok(Some(AskOp::Calc { .. }))
        ));
        let Ok(Some(AskOp::Echo { text })) = parse_line("echo 'hello   world' again") else {
            panic!()
        };
        assert_eq!(text, vec!["hello   world", "again"]);
        let Ok(Some(AskOp::Edit(e))) = parse_line("edit --line 2 \"new text\"") else {
            panic!()
        };
        assert_eq!((e.line, e.text), (Some(2), vec!["new text".to_string()]));
        assert!(matches!(
            parse_line("calc -1-2"),
            Ok(Some(AskOp::Calc { .. }))
        ));
        assert!(matches!(parse_line("   "), Ok(None)));
        assert!(matches!(parse_line("# comment"), Ok(None)));
        assert!(parse_line("frobnicate 1").is_err());
        assert!(parse_line("echo 'unterminated").is_err());
        assert!(parse_line("edit --line x y").is_err());
    }
}
