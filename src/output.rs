//! How `ask` and `shell` show what happened: the result alone on stdout
//! (plain), one JSON object per line (`--json`), or nothing (`--quiet`);
//! diagnostics on stderr, in colour only where colour is wanted.
//!
//! Colour goes through `anstream`, which drops the escape codes when
//! stderr is not a terminal, when `NO_COLOR` is set, or with
//! `--color never` (`main.rs` sets the global choice once).

use std::error::Error;
use std::io::Write;

use anstyle::{AnsiColor, Style};

use crate::ask::Breakdown;
use crate::exit::ExitCode;
use crate::protocol::{OkValue, Reply, Request};

/// Red and bold: the word "error" and the caret under a parse error.
const ERROR: Style = AnsiColor::Red.on_default().bold();
/// Dimmed: side information such as a shown file's revision.
const NOTE: Style = Style::new().dimmed();

/// What goes to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The result alone, as a person or `x=$(...)` wants it.
    Plain,
    /// One JSON object per request on one line: `{"ok":...}` or `{"err":{...}}`.
    Json,
    /// Nothing on stdout; the exit code tells. Errors still go to stderr.
    Quiet,
}

impl Format {
    /// `--json` wins over `--quiet`: asking for JSON is asking for output,
    /// and `-q` then still quiets the logs.
    pub fn from_flags(json: bool, quiet: bool) -> Format {
        match (json, quiet) {
            (true, _) => Format::Json,
            (false, true) => Format::Quiet,
            (false, false) => Format::Plain,
        }
    }
}

/// Shows replies and failures in one [`Format`].
#[derive(Debug, Clone)]
pub struct Output {
    format: Format,
    /// Put before every stderr message, e.g. "line 3: " in piped shells.
    context: String,
    /// Show each reply's time breakdown (`-v`): a line on stderr, and a
    /// `"breakdown"` object in `--json`'s line.
    breakdown: bool,
}

impl Output {
    /// An output in `format`.
    pub fn new(format: Format) -> Output {
        Output {
            format,
            context: String::new(),
            breakdown: false,
        }
    }

    /// The same output, showing time breakdowns when `on` (`-v`).
    pub fn with_breakdown(self, on: bool) -> Output {
        Output {
            breakdown: on,
            ..self
        }
    }

    /// The format results are shown in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Prefixes later error messages with `context` (e.g. "line 3: "), so
    /// a script's author finds the failing command.
    pub fn set_context(&mut self, context: String) {
        self.context = context;
    }

    /// Shows a reply and returns the exit code it stands for: [`ExitCode::Ok`]
    /// or [`ExitCode::OperationError`].
    pub fn reply(&self, request: &Request, reply: &Reply) -> ExitCode {
        self.reply_with(request, reply, None)
    }

    /// [`Output::reply`], and, when breakdowns are shown (`-v`), where the
    /// reply's time went: one line on stderr (whatever the format), and
    /// with `--json` a `"breakdown"` object after the reply's fields.
    pub fn reply_with(
        &self,
        request: &Request,
        reply: &Reply,
        breakdown: Option<&Breakdown>,
    ) -> ExitCode {
        let breakdown = breakdown.filter(|_| self.breakdown);
        let code = match reply {
            Reply::Ok(_) => ExitCode::Ok,
            Reply::Err(_) => ExitCode::OperationError,
        };
        match (self.format, reply) {
            (Format::Json, _) => {
                // A reply is plain data (strings, numbers, maps with string
                // keys); serializing it to JSON cannot fail.
                let mut text = serde_json::to_string(reply).expect("reply serializes to JSON");
                // The reply is an object: its fields keep their order.
                if let Some(b) = breakdown.filter(|_| text.ends_with('}')) {
                    text.pop();
                    text.push_str(&format!(",\"breakdown\":{}}}", b.json()));
                }
                self.stdout(&text);
            }
            (Format::Plain, Reply::Ok(value)) => {
                self.note_for(value);
                let text = value.to_string();
                // A program's output usually ends its last line already:
                // printed as it is, not followed by an empty line.
                let text = match request {
                    Request::User(_) => text.strip_suffix('\n').unwrap_or(&text),
                    _ => &text,
                };
                self.stdout(text);
            }
            (Format::Quiet, Reply::Ok(_)) => {}
            (_, Reply::Err(err)) => {
                self.error(&err.to_string());
                if let (Request::Calc(calc), Some(at)) = (request, err.at) {
                    caret(&calc.expr, at);
                }
            }
        }
        if let Some(b) = breakdown {
            anstream::eprintln!("{NOTE}{}{NOTE:#}", b.line());
        }
        code
    }

    /// Shows a failure that produced no reply (usage, connection, timeout):
    /// its message on stderr and, with `--json`, `{"err":{"code":...}}` on
    /// stdout so that every request still has its one line there.
    pub fn failure(&self, code: ExitCode, error: &dyn Error) {
        let message = chain(error);
        if self.format == Format::Json {
            let object = serde_json::json!({"err": {"code": code.as_str(), "message": message}});
            self.stdout(&object.to_string());
        }
        self.error(&message);
    }

    /// Shows an error message on stderr: "error: ..." with "error" in red.
    pub fn error(&self, message: &str) {
        let context = &self.context;
        anstream::eprintln!("{context}{ERROR}error:{ERROR:#} {message}");
    }

    /// `show` prints the file on stdout; its name and revision go to stderr.
    fn note_for(&self, value: &OkValue) {
        if let OkValue::Edit(e) = value {
            if e.content.is_some() {
                let (file, rev, lines) = (&e.file, e.rev, crate::protocol::lines(e.lines));
                anstream::eprintln!("{NOTE}{file}: rev {rev}, {lines}{NOTE:#}");
            }
        }
    }

    fn stdout(&self, text: &str) {
        // A closed stdout (`| head`) is not worth a second error message.
        let _ = writeln!(std::io::stdout().lock(), "{text}");
    }
}

/// Aligned text columns for the listings (`status`, `dlq list`): each
/// cell padded to its column's widest, two spaces between columns, no
/// trailing blanks. Widths are measured first ([`Columns::fit`]), so a
/// long listing can be measured in one pass and written in a second
/// without being held in memory.
#[derive(Debug, Clone)]
pub struct Columns<const N: usize> {
    widths: [usize; N],
}

impl<const N: usize> Columns<N> {
    /// Columns as wide as their `header` cells.
    pub fn new(header: &[&str; N]) -> Columns<N> {
        Columns {
            widths: header.map(|h| h.chars().count()),
        }
    }

    /// Widens the columns to fit `row`.
    pub fn fit(&mut self, row: &[String; N]) {
        for (w, cell) in self.widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }

    /// One line of the table, ending in a newline.
    pub fn line<S: AsRef<str>>(&self, row: &[S; N]) -> String {
        let cells: Vec<String> = row
            .iter()
            .zip(&self.widths)
            .map(|(cell, w)| format!("{:<w$}", cell.as_ref()))
            .collect();
        format!("{}\n", cells.join("  ").trim_end())
    }

    /// A whole table: `header` and `rows`, aligned.
    pub fn table(header: &[&str; N], rows: &[[String; N]]) -> String {
        let mut columns = Columns::new(header);
        rows.iter().for_each(|r| columns.fit(r));
        let mut out = columns.line(header);
        rows.iter().for_each(|r| out.push_str(&columns.line(r)));
        out
    }
}

/// A caret under the offending character, for expressions that fit a line.
fn caret(expr: &str, at: u64) {
    if expr.chars().count() > 120 || expr.contains('\n') {
        return;
    }
    let pad = " ".repeat(usize::try_from(at).unwrap_or(0));
    anstream::eprintln!("  {expr}\n  {pad}{ERROR}^{ERROR:#}");
}

/// An error and its causes on one line: "a: b: c".
pub fn chain(error: &dyn Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // Some errors repeat their cause in their own message.
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_cells_and_drop_trailing_blanks() {
        let rows = [
            ["a".to_string(), "long cell".to_string(), String::new()],
            ["wide id".to_string(), "x".to_string(), String::new()],
        ];
        assert_eq!(
            Columns::table(&["ID", "B", "C"], &rows),
            "ID       B          C\na        long cell\nwide id  x\n"
        );
    }

    #[test]
    fn json_wins_over_quiet() {
        assert_eq!(Format::from_flags(true, true), Format::Json);
        assert_eq!(Format::from_flags(false, true), Format::Quiet);
        assert_eq!(Format::from_flags(false, false), Format::Plain);
    }

    #[test]
    fn chain_does_not_repeat_a_cause_already_in_the_message() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer: {0}")]
        struct Repeats(#[source] std::io::Error);
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Chains(#[source] std::io::Error);
        let io = || std::io::Error::other("inner");
        assert_eq!(chain(&Repeats(io())), "outer: inner");
        assert_eq!(chain(&Chains(io())), "outer: inner");
    }
}
