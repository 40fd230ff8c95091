//! User-defined operations: `serve --exec NAME=PROGRAM [ARGS...]` and the
//! config file's `[ops.NAME]` tables, checked once into [`UserOp`]s.
//!
//! A name becomes a topic level (`<prefix>/v1/req/NAME`) and an ACL
//! pattern, so it follows the strictest topic-segment rules (lowercase
//! `[a-z0-9_-]`, at most 32 characters) and may not shadow a built-in
//! operation. The program is run directly, never through a shell: the
//! `--exec` text is split into words with shell quoting rules
//! (`shell-words`) and nothing else (no variables, globs or pipes).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{parse, ConfigError};
use crate::protocol::Op;

/// The config file's table of user-defined operations.
pub const TABLE: &str = "ops";
/// Longest operation name.
pub const MAX_NAME_LEN: usize = 32;
/// Default wall-clock limit of one run; past it the program's process
/// group is killed and the reply is `limit`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on a run's stdout (the reply); past it the program is
/// killed and the reply is `limit`.
pub const DEFAULT_MAX_OUTPUT: usize = 1024 * 1024;
/// Default number of runs of one operation at a time; more requests wait
/// in that operation's bounded queue, and past it are refused `busy`.
pub const DEFAULT_MAX_CONCURRENT: usize = 4;
/// Most runs at a time an operation may be given (each is a thread).
pub const MAX_CONCURRENT: usize = 64;
/// Largest `max_output`: a reply is one MQTT message held in memory.
pub const MAX_OUTPUT_CAP: usize = 64 * 1024 * 1024;

/// One user-defined operation, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserOp {
    /// Its name: the last level of its request topic.
    pub name: String,
    /// The program (a path, or a name looked up in the fixed `PATH`).
    pub program: String,
    /// Its arguments, passed as they are (no shell).
    pub args: Vec<String>,
    /// Wall-clock limit of one run.
    pub timeout: Duration,
    /// Most bytes of stdout one run may write.
    pub max_output: usize,
    /// Most runs at a time.
    pub max_concurrent: usize,
    /// Whether running it twice for one request is harmless. `false` (the
    /// default, the safe side: a program may send mail or move money) makes
    /// the server answer a re-sent request (same response topic and
    /// correlation data) from its reply memory instead of running it again.
    pub idempotent: bool,
    /// One line saying what it does, for the server's self-description.
    pub description: Option<String>,
    /// An example input, for the server's self-description.
    pub example: Option<String>,
}

/// An `[ops.NAME]` table as written in the config file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpTable {
    program: String,
    #[serde(default)]
    args: Vec<String>,
    timeout: Option<toml::Value>,
    max_output: Option<toml::Value>,
    max_concurrent: Option<i64>,
    idempotent: Option<bool>,
    description: Option<String>,
    example: Option<String>,
}

fn invalid(setting: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Checks an operation name: lowercase `[a-z0-9_-]`, 1 to 32 characters,
/// not a built-in operation's.
///
/// # Errors
/// [`ConfigError::Invalid`] saying which rule it breaks.
pub fn validate_name(setting: &'static str, name: &str) -> Result<(), ConfigError> {
    if Op::parse(name).is_some() {
        return Err(invalid(
            setting,
            name,
            "a user-defined operation may not shadow the built-in calc, echo or edit; pick another name",
        ));
    }
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            setting,
            name,
            format!("an operation name is 1-{MAX_NAME_LEN} lowercase letters, digits, '_' or '-'"),
        ))
    }
}

/// Parses one `--exec NAME=PROGRAM [ARGS...]` value.
///
/// # Errors
/// [`ConfigError::Invalid`] for a missing `=`, a bad name, unbalanced
/// quotes or no program.
pub fn parse_exec(spec: &str) -> Result<UserOp, ConfigError> {
    let Some((name, command)) = spec.split_once('=') else {
        return Err(invalid(
            "exec",
            spec,
            "use NAME=PROGRAM [ARGS...], e.g. --exec 'upper=tr a-z A-Z'",
        ));
    };
    let name = name.trim();
    validate_name("exec", name)?;
    let words = shell_words::split(command)
        .map_err(|_| invalid("exec", spec, "unmatched quote in the command"))?;
    let mut words = words.into_iter();
    let Some(program) = words.next().filter(|p| !p.is_empty()) else {
        return Err(invalid("exec", spec, "no program after NAME="));
    };
    Ok(UserOp {
        name: name.to_string(),
        program,
        args: words.collect(),
        timeout: DEFAULT_TIMEOUT,
        max_output: DEFAULT_MAX_OUTPUT,
        max_concurrent: DEFAULT_MAX_CONCURRENT,
        idempotent: false,
        description: None,
        example: None,
    })
}

/// The config file's `[ops]` table: one [`UserOp`] per `[ops.NAME]`.
///
/// # Errors
/// A message naming the table and what is wrong (unknown or mistyped
/// keys, a bad name or value), for [`ConfigError::Parse`].
pub fn from_table(value: &toml::Value) -> Result<Vec<UserOp>, String> {
    let tables: BTreeMap<String, OpTable> = value
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| format!("[ops]: {}", e.message()))?;
    tables
        .into_iter()
        .map(|(name, t)| {
            let table = format!("[ops.{name}]");
            from_op_table(name, t).map_err(|e| format!("{table}: {e}"))
        })
        .collect()
}

fn from_op_table(name: String, t: OpTable) -> Result<UserOp, String> {
    if let Err(ConfigError::Invalid { reason, .. }) = validate_name("ops", &name) {
        return Err(reason);
    }
    if t.program.is_empty() {
        return Err("`program` is empty".into());
    }
    let text = |v: &toml::Value| parse::toml_text(v).unwrap_or_default();
    let timeout = match &t.timeout {
        None => DEFAULT_TIMEOUT,
        Some(v) => parse::duration(&text(v)).map_err(|r| format!("timeout {:?}: {r}", text(v)))?,
    };
    let max_output = match &t.max_output {
        None => DEFAULT_MAX_OUTPUT,
        Some(v) => match parse::bytes(&text(v)) {
            Ok(n) if n >= 1 && n <= MAX_OUTPUT_CAP as u64 => n as usize,
            Ok(_) => {
                return Err(format!(
                    "max_output {:?}: use 1 byte to {} MiB",
                    text(v),
                    MAX_OUTPUT_CAP >> 20
                ))
            }
            Err(r) => return Err(format!("max_output {:?}: {r}", text(v))),
        },
    };
    let max_concurrent = match t.max_concurrent {
        None => DEFAULT_MAX_CONCURRENT,
        Some(n) if (1..=MAX_CONCURRENT as i64).contains(&n) => n as usize,
        Some(n) => return Err(format!("max_concurrent {n}: use 1 to {MAX_CONCURRENT}")),
    };
    Ok(UserOp {
        name,
        program: t.program,
        args: t.args,
        timeout,
        max_output,
        max_concurrent,
        idempotent: t.idempotent.unwrap_or(false),
        description: t.description,
        example: t.example,
    })
}

/// The file's operations, then the flags' (a flag replaces a file entry of
/// the same name); two flags with one name are an error.
///
/// # Errors
/// [`ConfigError::Invalid`].
pub fn merge(file: Vec<UserOp>, flags: Vec<UserOp>) -> Result<Vec<UserOp>, ConfigError> {
    let mut ops = file;
    for (i, op) in flags.iter().enumerate() {
        if flags[..i].iter().any(|o| o.name == op.name) {
            return Err(invalid("exec", &op.name, "two --exec give this name"));
        }
    }
    for op in flags {
        match ops.iter_mut().find(|o| o.name == op.name) {
            Some(slot) => *slot = op,
            None => ops.push(op),
        }
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_topic_segment_rules() {
        for ok in ["upper", "wc", "a", "x-1_y", &"a".repeat(32)] {
            assert!(validate_name("exec", ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(33);
        for bad in ["", "Upper", "a/b", "a+", "#", "é", "a b", &long, "a.b"] {
            assert!(validate_name("exec", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_may_not_shadow_the_built_ins() {
        for name in ["calc", "echo", "edit"] {
            let e = validate_name("exec", name).unwrap_err().to_string();
            assert!(e.contains("shadow the built-in"), "{e}");
        }
    }

    #[test]
    fn exec_specs_split_like_a_shell_without_running_one() {
        let op = parse_exec("upper=tr a-z A-Z").unwrap();
        assert_eq!((op.name.as_str(), op.program.as_str()), ("upper", "tr"));
        assert_eq!(op.args, ["a-z", "A-Z"]);
        let op = parse_exec("say=printf '%s $HOME' \"a b\"").unwrap();
        assert_eq!(op.args, ["%s $HOME", "a b"]);
        assert!(!op.idempotent, "non-idempotent unless declared");
        for bad in ["upper", "=tr", "upper=", "upper='tr", "calc=cat", "Up=cat"] {
            assert!(parse_exec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn op_tables_take_limits_and_refuse_unknown_keys() {
        let v: toml::Value = toml::from_str(
            "[wc]\nprogram = \"wc\"\nargs = [\"-w\"]\ntimeout = \"2s\"\nmax_output = \"4KiB\"\nmax_concurrent = 2\nidempotent = true\ndescription = \"count words\"\nexample = \"a b\"\n",
        )
        .unwrap();
        let ops = from_table(&v).unwrap();
        assert_eq!(ops[0].timeout, Duration::from_secs(2));
        assert_eq!(ops[0].max_output, 4096);
        assert_eq!(ops[0].max_concurrent, 2);
        assert!(ops[0].idempotent);
        assert_eq!(ops[0].description.as_deref(), Some("count words"));
        let v: toml::Value = toml::from_str("[wc]\nprogram = \"wc\"\nshell = true\n").unwrap();
        assert!(from_table(&v).is_err());
        let v: toml::Value =
            toml::from_str("[wc]\nprogram = \"wc\"\nmax_concurrent = 0\n").unwrap();
        assert!(from_table(&v).is_err());
        let v: toml::Value = toml::from_str("[echo]\nprogram = \"cat\"\n").unwrap();
        assert!(from_table(&v).is_err());
    }

    #[test]
    fn flags_replace_file_entries_and_may_not_repeat() {
        let file = vec![parse_exec("a=cat").unwrap(), parse_exec("b=cat").unwrap()];
        let flags = vec![parse_exec("b=wc").unwrap(), parse_exec("c=wc").unwrap()];
        let ops = merge(file, flags).unwrap();
        let names: Vec<_> = ops
            .iter()
            .map(|o| (o.name.as_str(), o.program.as_str()))
            .collect();
        assert_eq!(names, [("a", "cat"), ("b", "wc"), ("c", "wc")]);
        let twice = vec![parse_exec("b=wc").unwrap(), parse_exec("b=cat").unwrap()];
        assert!(merge(Vec::new(), twice).is_err());
    }
}
