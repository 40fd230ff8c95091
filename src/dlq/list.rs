//! `mqttapp dlq list`: the store as a table or a JSON array, written as it
//! is read. The table takes two passes (column widths, then rows) so that
//! neither needs more than one record in memory.

use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use serde::Deserialize;

use super::{store, DlqError};
use crate::config::Config;
use crate::deadletter::DeadLetter;
use crate::logging::shorten;
use crate::output::Columns;

/// Characters of a topic or detail shown in a table cell.
const CELL: usize = 60;

/// What `dlq list` found, for the caller's summary on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listing {
    /// Letters written.
    pub listed: u64,
    /// Letters the server dropped because the store was at its budget
    /// (`max_deadletter_bytes`) since the last `dlq purge --all`.
    pub dropped: u64,
}

/// The fields of a record a table row shows (the payload is skipped
/// without being kept).
#[derive(Deserialize)]
struct Summary {
    id: String,
    time: u64,
    reason: String,
    topic: String,
    detail: String,
    #[serde(default)]
    truncated: bool,
}

impl Summary {
    fn cells(self) -> [String; 5] {
        let time = UNIX_EPOCH + Duration::from_secs(self.time.min(253_402_300_799));
        let reason = match self.truncated {
            true => format!("{} (truncated)", self.reason),
            false => self.reason,
        };
        [
            shorten(&self.id, CELL),
            humantime::format_rfc3339_seconds(time).to_string(),
            reason,
            shorten(&self.topic, CELL),
            shorten(&self.detail, CELL),
        ]
    }
}

/// Writes every dead letter to `out`, oldest first: a JSON array when
/// `json`, else a table under a header (nothing when the store is empty).
/// A write error (a closed pipe) ends the listing quietly.
///
/// # Errors
/// [`DlqError::Store`] when the store cannot be read.
pub fn write_list(config: &Config, json: bool, out: &mut dyn Write) -> Result<Listing, DlqError> {
    let store = store(config)?;
    let listed = if json {
        write_json(&store, out)?
    } else {
        write_table(&store, out)?
    };
    Ok(Listing {
        listed,
        dropped: store.dropped()?,
    })
}

fn write_json(
    store: &crate::deadletter::DeadLetters,
    out: &mut dyn Write,
) -> Result<u64, DlqError> {
    let mut n = 0u64;
    let mut ok = out.write_all(b"[").is_ok();
    store.scan(|letter: DeadLetter| {
        if ok {
            let sep: &[u8] = if n == 0 { b"" } else { b"," };
            ok = out.write_all(sep).is_ok() && serde_json::to_writer(&mut *out, &letter).is_ok();
            n += 1;
        }
        Ok::<_, DlqError>(())
    })?;
    let _ = out.write_all(b"]\n");
    Ok(n)
}

fn write_table(
    store: &crate::deadletter::DeadLetters,
    out: &mut dyn Write,
) -> Result<u64, DlqError> {
    let header = ["ID", "TIME", "REASON", "TOPIC", "DETAIL"];
    let mut columns = Columns::new(&header);
    let mut rows = 0u64;
    store.scan(|s: Summary| {
        columns.fit(&s.cells());
        rows += 1;
        Ok::<_, DlqError>(())
    })?;
    if rows == 0 {
        return Ok(0);
    }
    let line = |row: &[String; 5]| columns.line(row);
    let mut ok = out.write_all(columns.line(&header).as_bytes()).is_ok();
    let mut n = 0u64;
    // Letters recorded since the first pass wait for the next listing.
    store.scan(|s: Summary| {
        if ok && n < rows {
            ok = out.write_all(line(&s.cells()).as_bytes()).is_ok();
            n += 1;
        }
        Ok::<_, DlqError>(())
    })?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deadletter::{DeadLetters, Original, Reason};

    #[test]
    fn table_lists_each_letter_under_a_header() {
        let dir = tempfile::tempdir().unwrap();
        let store = DeadLetters::new(dir.path(), "s1");
        let original = Original {
            topic: "p/v1/req/nope".into(),
            ..Original::default()
        };
        store
            .record(Reason::UnknownOp, "unknown operation", &original)
            .unwrap();
        let mut out = Vec::new();
        assert_eq!(write_table(&store, &mut out).unwrap(), 1);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("ID "), "{text}");
        assert!(
            lines[1].contains("unknown_op  p/v1/req/nope  unknown operation"),
            "{text}"
        );
        let mut json = Vec::new();
        assert_eq!(write_json(&store, &mut json).unwrap(), 1);
        let all: Vec<DeadLetter> = serde_json::from_slice(&json).unwrap();
        assert_eq!(all, store.list().unwrap());
    }
}
