//! `mqttapp dlq`: list, replay and purge the dead letters kept in a
//! server's data directory (`<data-dir>/.mqttapp/deadletters.jsonl`).
//!
//! These commands work on the local store, so they run on the server's
//! host (or wherever its data directory is mounted). Replay publishes each
//! original request again, to its original topic with its original
//! Response Topic, Correlation Data and Content Type, and removes it from
//! the store only once the broker has acknowledged that publish. Because
//! the correlation data is kept, replaying an edit that was in fact
//! applied is answered from the server's reply memory, not applied twice.

use std::time::Duration;

use paho_mqtt as paho;

use crate::config::Config;
use crate::deadletter::{DeadLetter, DeadLetterError, DeadLetters};
use crate::ids::random_u64;
use crate::mqtt::{self, MessageMeta, MqttError};
use crate::status;

/// Publishes sent before their acknowledgements are awaited (paho buffers
/// at most 100 unsent messages on a one-shot client).
const CHUNK: usize = 50;

/// Why a `dlq` command failed.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    /// The store cannot be read or rewritten.
    #[error(transparent)]
    Store(#[from] DeadLetterError),
    /// The broker cannot be reached or refused.
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    /// Some ids are not in the store.
    #[error("no dead letter with id {}: see `mqttapp dlq list`", .0.join(", "))]
    UnknownIds(Vec<String>),
    /// Replay needs a server to answer the replayed requests.
    #[error("no server online under {0}/v1/status/ - start `mqttapp serve` before replaying (nothing was removed)")]
    NoServer(String),
    /// Some publishes were not acknowledged; those letters stay in the store.
    #[error(
        "{failed} of {total} dead letters were not replayed and stay in the store (first: {first})"
    )]
    NotReplayed {
        /// How many failed.
        failed: usize,
        /// How many were tried.
        total: usize,
        /// The first failure, with its id.
        first: String,
    },
}

/// The store of `config.data_dir` (the server id only names new letters).
fn store(config: &Config) -> DeadLetters {
    DeadLetters::new(&config.data_dir, &config.server_id)
}

/// Every dead letter, oldest first.
///
/// # Errors
/// [`DlqError::Store`].
pub fn list(config: &Config) -> Result<Vec<DeadLetter>, DlqError> {
    Ok(store(config).list()?)
}

/// The dead letters named by `ids` (all when `None`), in store order.
///
/// # Errors
/// [`DlqError::UnknownIds`] naming every id that is not in the store.
fn select(config: &Config, ids: Option<&[String]>) -> Result<Vec<DeadLetter>, DlqError> {
    let all = list(config)?;
    let Some(ids) = ids else {
        return Ok(all);
    };
    let unknown: Vec<String> = ids
        .iter()
        .filter(|id| !all.iter().any(|l| &l.id == *id))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(DlqError::UnknownIds(unknown));
    }
    Ok(all.into_iter().filter(|l| ids.contains(&l.id)).collect())
}

/// Deletes the named dead letters (all when `None`); returns how many.
///
/// # Errors
/// [`DlqError::UnknownIds`] (nothing is deleted then) or [`DlqError::Store`].
pub fn purge(config: &Config, ids: Option<&[String]>) -> Result<usize, DlqError> {
    select(config, ids)?;
    Ok(store(config).remove(ids)?)
}

/// Replays the named dead letters (all when `None`); returns how many were
/// published and removed.
///
/// # Errors
/// [`DlqError`]: unknown ids, no server online, connection failures, or
/// publishes that were not acknowledged (those letters stay).
pub fn replay(config: &Config, ids: Option<&[String]>) -> Result<usize, DlqError> {
    let letters = select(config, ids)?;
    if letters.is_empty() {
        return Ok(0);
    }
    let wait = config.timeout.min(status::DEFAULT_WAIT);
    if !status::collect(config, wait)?.iter().any(|s| s.is_online()) {
        return Err(DlqError::NoServer(config.prefix.clone()));
    }
    let client_id = format!("mqttapp-dlq-{:016x}", random_u64());
    let client = mqtt::connect_oneshot(&config.connection, &client_id, config.timeout)?;
    let store = store(config);
    let mut replayed = 0;
    let mut failures = Vec::new();
    for chunk in letters.chunks(CHUNK) {
        let (acked, failed) = publish_chunk(&client, chunk, config.timeout);
        store.remove(Some(&acked))?;
        replayed += acked.len();
        failures.extend(failed);
    }
    let _ = mqtt::wait(client.disconnect(None), Duration::from_millis(500));
    match failures.first() {
        None => Ok(replayed),
        Some(first) => Err(DlqError::NotReplayed {
            failed: failures.len(),
            total: letters.len(),
            first: first.clone(),
        }),
    }
}

/// Publishes a chunk of letters and waits for each acknowledgement.
/// Returns the ids acknowledged and a description of each failure.
fn publish_chunk(
    client: &paho::AsyncClient,
    chunk: &[DeadLetter],
    timeout: Duration,
) -> (Vec<String>, Vec<String>) {
    let mut tokens = Vec::with_capacity(chunk.len());
    let mut failed = Vec::new();
    for letter in chunk {
        match letter.original() {
            Ok(original) => {
                let meta = MessageMeta {
                    response_topic: original.response_topic,
                    correlation: original.correlation,
                    content_type: original.content_type,
                    expiry_secs: None,
                };
                let msg = meta.message(&original.topic, original.payload, false);
                tokens.push((letter.id.clone(), client.publish(msg)));
            }
            Err(e) => failed.push(format!("{}: {e}", letter.id)),
        }
    }
    let mut acked = Vec::with_capacity(tokens.len());
    for (id, token) in tokens {
        match mqtt::wait(token, timeout) {
            Ok(_) => acked.push(id),
            Err(e) => failed.push(format!("{id}: {e}")),
        }
    }
    (acked, failed)
}

/// The letters as a table: id, time, reason, topic, detail.
pub fn table(letters: &[DeadLetter]) -> String {
    let mut out = String::new();
    let rows: Vec<[String; 5]> = letters
        .iter()
        .map(|l| {
            [
                l.id.clone(),
                humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + Duration::from_secs(l.time.min(253_402_300_799)),
                )
                .to_string(),
                l.reason.as_str().to_string(),
                l.topic.clone(),
                shorten(&l.detail, 60),
            ]
        })
        .collect();
    let header = ["ID", "TIME", "REASON", "TOPIC", "DETAIL"].map(String::from);
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .chain(std::iter::once(&header))
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// At most `max` characters, with an ellipsis when cut; control characters
/// (from hostile requests) become spaces so the table stays a table.
fn shorten(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() <= max {
        return clean;
    }
    let mut cut: String = clean.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deadletter::{Original, Reason};

    #[test]
    fn shorten_cuts_long_details_and_removes_control_characters() {
        assert_eq!(shorten("a\nb", 10), "a b");
        assert_eq!(shorten("abcdef", 4), "abc…");
    }

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
        let text = table(&store.list().unwrap());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("ID "), "{text}");
        assert!(
            lines[1].contains("unknown_op  p/v1/req/nope  unknown operation"),
            "{text}"
        );
    }
}
