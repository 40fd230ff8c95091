//! Builds the description a server publishes: the built-in operations it
//! offers, with this server's limits, plus any operation given as plain
//! fields ([`ExtraOp`], for user-defined operations), capped so that the
//! encoding stays under [`MAX_DESCRIPTION_BYTES`].

use crate::limits::Limits;
use crate::operations::SHOW_PAGE_BYTES;
use crate::protocol::{
    Description, EditAction, Example, Field, Limit, Op, OpDescription, DESCRIPTION_VERSION,
    MAX_DESCRIPTION_BYTES,
};

/// Most operations in one description.
pub const MAX_OPS: usize = 64;
/// Most entries in each list of an operation (fields, limits, codes,
/// allowed values).
pub const MAX_ITEMS: usize = 32;
/// Most examples per operation.
pub const MAX_EXAMPLES: usize = 8;
/// Longest name (operation, field, limit, code), in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest other text (summary, input, reply, example), in characters.
pub const MAX_TEXT_CHARS: usize = 500;

/// An operation described by plain fields, for operations the program
/// does not know itself (user-defined ones, configured with a description
/// and examples).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtraOp {
    /// Its name in the request topic.
    pub name: String,
    /// One line saying what it does.
    pub summary: String,
    /// What the request carries, in words.
    pub input: String,
    /// What the reply's `ok` holds, in words.
    pub output: String,
    /// Accepted payload encodings (`cbor`, `json`, `text`); may be empty.
    pub encodings: Vec<String>,
    /// Its bounds, with their values.
    pub limits: Vec<Limit>,
    /// Requests and replies.
    pub examples: Vec<Example>,
    /// Error codes its replies may carry.
    pub codes: Vec<String>,
}

/// Collects the operations of one server's description.
#[derive(Debug, Clone)]
pub struct Builder {
    instance: Option<String>,
    ops: Vec<OpDescription>,
}

impl Builder {
    /// A description for the server process `instance` (its status's).
    pub fn new(instance: Option<String>) -> Builder {
        Builder {
            instance,
            ops: Vec::new(),
        }
    }

    /// Adds the built-in operations `ops`, with the values of `limits`.
    pub fn builtins(mut self, ops: &[Op], limits: &Limits) -> Builder {
        self.ops.extend(ops.iter().map(|op| builtin(*op, limits)));
        self
    }

    /// Adds an operation given by plain fields.
    pub fn extra(mut self, op: ExtraOp) -> Builder {
        self.ops.push(OpDescription {
            name: op.name,
            summary: op.summary,
            encodings: op.encodings,
            input: op.input,
            fields: Vec::new(),
            reply: op.output,
            limits: op.limits,
            examples: op.examples,
            codes: op.codes,
        });
        self
    }

    /// The description, every text and list capped, and examples then
    /// operations left out (`truncated`) while it is over
    /// [`MAX_DESCRIPTION_BYTES`] encoded.
    pub fn build(self) -> Description {
        let truncated = self.ops.len() > MAX_OPS;
        let mut description = Description {
            version: DESCRIPTION_VERSION,
            instance: self.instance,
            ops: self.ops.into_iter().take(MAX_OPS).map(capped).collect(),
            truncated,
        };
        fit(&mut description);
        description
    }
}

/// Leaves out examples (last operation first), then operations, until
/// the encoding fits.
fn fit(d: &mut Description) {
    let over = |d: &Description| d.encode().len() > MAX_DESCRIPTION_BYTES;
    let mut i = d.ops.len();
    while over(d) && i > 0 {
        i -= 1;
        if !d.ops[i].examples.is_empty() {
            d.ops[i].examples.clear();
            d.truncated = true;
        }
    }
    while over(d) && d.ops.pop().is_some() {
        d.truncated = true;
    }
}

fn capped(mut op: OpDescription) -> OpDescription {
    cut(&mut op.name, MAX_NAME_CHARS);
    for text in [&mut op.summary, &mut op.input, &mut op.reply] {
        cut(text, MAX_TEXT_CHARS);
    }
    op.encodings.truncate(MAX_ITEMS);
    op.encodings.iter_mut().for_each(|e| cut(e, MAX_NAME_CHARS));
    op.fields.truncate(MAX_ITEMS);
    for field in &mut op.fields {
        cut(&mut field.name, MAX_NAME_CHARS);
        cut(&mut field.ty, MAX_NAME_CHARS);
        cut(&mut field.summary, MAX_TEXT_CHARS);
        field.allowed.truncate(MAX_ITEMS);
        field
            .allowed
            .iter_mut()
            .for_each(|a| cut(a, MAX_NAME_CHARS));
    }
    op.limits.truncate(MAX_ITEMS);
    for limit in &mut op.limits {
        cut(&mut limit.name, MAX_NAME_CHARS);
        cut(&mut limit.unit, MAX_NAME_CHARS);
    }
    op.examples.truncate(MAX_EXAMPLES);
    for example in &mut op.examples {
        cut(&mut example.input, MAX_TEXT_CHARS);
        cut(&mut example.output, MAX_TEXT_CHARS);
    }
    op.codes.truncate(MAX_ITEMS);
    op.codes.iter_mut().for_each(|c| cut(c, MAX_NAME_CHARS));
    op
}

/// Keeps the first `chars` characters of `text`.
fn cut(text: &mut String, chars: usize) {
    if let Some((at, _)) = text.char_indices().nth(chars) {
        text.truncate(at);
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn field(name: &str, ty: &str, required: bool, summary: &str) -> Field {
    Field {
        name: name.into(),
        ty: ty.into(),
        required,
        allowed: Vec::new(),
        summary: summary.into(),
    }
}

/// The description of a built-in operation with the server's `limits`.
pub fn builtin(op: Op, limits: &Limits) -> OpDescription {
    let payload = Limit::new("max_payload_bytes", limits.max_payload as u64, "bytes");
    match op {
        Op::Calc => OpDescription {
            name: "calc".into(),
            summary: "evaluate an arithmetic expression exactly".into(),
            encodings: strings(&["cbor", "json", "text"]),
            input: "an expression: {\"expr\": \"2+3*4\"}, or the expression as text/plain".into(),
            fields: vec![field(
                "expr",
                "string",
                true,
                "+ - * / % ^ ( ), sqrt abs ln log10 log2 exp sin cos tan floor ceil round min max, pi e",
            )],
            reply: "a number: an integer when the result is an exact integer, else a float".into(),
            limits: vec![
                payload,
                Limit::new("max_expr_bytes", limits.calc.max_len as u64, "bytes"),
                Limit::new("max_depth", limits.calc.max_depth as u64, "levels"),
            ],
            examples: vec![
                Example::new(r#"{"expr":"2+3*4"}"#, r#"{"ok":14}"#),
                Example::new(r#"{"expr":"7/2"}"#, r#"{"ok":3.5}"#),
                Example::new(r#"{"expr":"-7 % 3"}"#, r#"{"ok":2}"#),
                Example::new(
                    r#"{"expr":"1/0"}"#,
                    r#"{"err":{"code":"math","message":"division by zero","at":1}}"#,
                ),
            ],
            codes: strings(&["bad_request", "parse", "math", "limit", "busy", "internal"]),
        },
        Op::Echo => OpDescription {
            name: "echo".into(),
            summary: "return the text unchanged".into(),
            encodings: strings(&["cbor", "json", "text"]),
            input: "a text: {\"text\": \"hello\"}, or the text as text/plain".into(),
            fields: vec![field("text", "string", true, "any Unicode text")],
            reply: "the text".into(),
            limits: vec![payload],
            examples: vec![Example::new(r#"{"text":"hello"}"#, r#"{"ok":"hello"}"#)],
            codes: strings(&["bad_request", "limit", "busy", "internal"]),
        },
        Op::Edit => edit(limits, payload),
    }
}

fn edit(limits: &Limits, payload: Limit) -> OpDescription {
    let actions = [
        EditAction::Replace,
        EditAction::Insert,
        EditAction::Append,
        EditAction::Delete,
        EditAction::Show,
    ];
    let action = Field {
        allowed: actions.iter().map(|a| a.as_str().to_string()).collect(),
        ..field("action", "string", false, "what to do (default replace)")
    };
    OpDescription {
        name: "edit".into(),
        summary: "change or show a text file in the server's data directory".into(),
        encodings: strings(&["cbor", "json"]),
        input: "a map: {\"action\": \"replace\", \"line\": 3, \"text\": \"...\"}".into(),
        fields: vec![
            action,
            field("line", "integer", false, "1-based line number (replace, insert, delete; show: first line)"),
            field("text", "string", false, "the line's text (replace, insert, append); no newline"),
            field("file", "string", false, "file name in the data directory (default: the server's)"),
            field("expect_rev", "integer", false, "refuse with conflict unless the file is at this revision"),
        ],
        reply: "{\"file\": name, \"rev\": revision, \"lines\": count}, plus \"content\" (and \"next\" when paged) for show".into(),
        limits: vec![
            payload,
            Limit::new("max_line_bytes", limits.edit.max_line_bytes as u64, "bytes"),
            Limit::new("max_lines", limits.edit.max_lines, "lines"),
            Limit::new("max_file_bytes", limits.edit.max_file_bytes, "bytes"),
            Limit::new("max_files", limits.edit.max_files as u64, "files"),
            Limit::new("show_page_bytes", SHOW_PAGE_BYTES as u64, "bytes"),
        ],
        examples: vec![
            Example::new(
                r#"{"action":"append","text":"hello"}"#,
                r#"{"ok":{"file":"notes.txt","rev":1,"lines":1}}"#,
            ),
            Example::new(
                r#"{"action":"replace","line":3,"text":"third"}"#,
                r#"{"ok":{"file":"notes.txt","rev":2,"lines":3}}"#,
            ),
            Example::new(
                r#"{"action":"show"}"#,
                r#"{"ok":{"file":"notes.txt","rev":2,"lines":3,"content":"hello\n\nthird\n"}}"#,
            ),
            Example::new(
                r#"{"action":"delete","line":9}"#,
                r#"{"err":{"code":"not_found","message":"line 9 does not exist (the file has 3 lines)"}}"#,
            ),
        ],
        codes: strings(&["bad_request", "limit", "not_found", "conflict", "io", "busy", "internal"]),
    }
}

#[cfg(test)]
mod tests;
