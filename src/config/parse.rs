//! The typed parsers of settings: text (a flag, a variable, a config
//! file's string or number) to the value the program uses. Each returns
//! the reason a value is refused; the caller names the setting. The flags
//! use the same parsers through clap's `value_parser`, so a value is typed
//! once, where it is read.

use std::path::PathBuf;
use std::time::Duration;

/// What a duration may look like, for every message about a bad one.
pub const DURATION_FORMS: &str =
    "use a positive number of seconds (5, 2.5) or a number and a unit (500ms, 10s, 2m, 1h)";

/// Text as it is.
pub fn text(value: &str) -> Result<String, String> {
    Ok(value.to_string())
}

/// A path as it is.
pub fn path(value: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(value))
}

/// "5", "2.5" (seconds) or humantime forms such as "500ms", "1m"; never zero.
pub fn duration(value: &str) -> Result<Duration, String> {
    let invalid = || DURATION_FORMS.to_string();
    let text = value.trim();
    let parsed = match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs < 1e9 => Duration::from_secs_f64(secs),
        Ok(_) => return Err(invalid()),
        Err(_) => humantime::parse_duration(text).map_err(|_| invalid())?,
    };
    if parsed.is_zero() {
        return Err(invalid());
    }
    Ok(parsed)
}

/// A [`duration`], or `0` for "never" ([`Duration::ZERO`]).
pub fn interval(value: &str) -> Result<Duration, String> {
    match value.trim().parse::<f64>() {
        Ok(0.0) => Ok(Duration::ZERO),
        _ => duration(value).map_err(|e| format!("{e}, or 0 for never")),
    }
}

/// An IP address and port: `127.0.0.1:9464`, `[::1]:9464`.
pub fn socket_addr(value: &str) -> Result<std::net::SocketAddr, String> {
    value
        .trim()
        .parse()
        .map_err(|_| "use an IP address and a port, e.g. 127.0.0.1:9464".to_string())
}

/// "123", "64KiB", "16 MiB", "1GiB" (case-insensitive) in bytes.
pub fn bytes(value: &str) -> Result<u64, String> {
    let text = value.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => 0,
    };
    digits
        .parse::<u64>()
        .ok()
        .filter(|_| scale > 0)
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| "must be a number of bytes, optionally with KiB, MiB or GiB".to_string())
}

/// A rate (`bench --rate`): a whole number of requests per second, 1 to
/// 1,000,000 (more than one machine's loopback carries).
pub fn per_second(value: &str) -> Result<u64, String> {
    value
        .trim()
        .trim_end_matches("/s")
        .parse::<u64>()
        .ok()
        .filter(|r| (1..=1_000_000).contains(r))
        .ok_or_else(|| "use a whole number of requests per second from 1 to 1000000".to_string())
}

/// The server's queue budget: [`bytes`], at least the smallest that works.
pub fn queue_bytes(value: &str) -> Result<u64, String> {
    let min = crate::limits::MIN_QUEUE_BYTES;
    match bytes(value)? {
        n if n < min => Err(format!("must be at least {min} bytes")),
        n => Ok(n),
    }
}

/// A comma-separated list (`MQTTAPP_REPLY_TOPICS`), blanks dropped.
pub fn list(value: &str) -> Result<Vec<String>, String> {
    Ok(value
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(String::from)
        .collect())
}

/// `true` or `false`.
pub fn boolean(value: &str) -> Result<bool, String> {
    value
        .trim()
        .parse()
        .map_err(|_| "use true or false".to_string())
}

/// A config file value as the text its parser reads: strings as they
/// are, numbers and booleans written out (`timeout = 2`), arrays of strings
/// joined with commas. `None` for tables and mixed arrays.
pub fn toml_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Float(x) => Some(x.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(",")),
        _ => None,
    }
}
