//! `mqttapp dlq`: list, replay and purge the dead letters kept in a
//! server's data directory (`crate::datadir::DataDir::dead_letters`).
//!
//! These commands work on the local store, so they run on the server's
//! host (or wherever its data directory is mounted). Replay publishes each
//! original request again, to its original topic with its original
//! Response Topic, Correlation Data and Content Type, and removes it from
//! the store only once the broker has acknowledged that publish. Because
//! the correlation data is kept, replaying an edit that was in fact
//! applied is answered from the server's reply memory, not applied twice.
//! A letter the store had to cut (`truncated`) is not the request and is
//! never replayed.
//!
//! Every command reads the store one record at a time (`list.rs` for
//! listing), so a store of any size needs memory for one record.

mod list;

use std::collections::HashSet;
use std::time::Duration;

use crate::config::Config;
use crate::deadletter::{DeadLetter, DeadLetterError, DeadLetters};
use crate::ids::random_u64;
use crate::mqtt::{Client, Message, MessageMeta, MqttError};
use crate::status;
pub use list::{write_list, Listing};

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
    /// The data directory does not exist.
    #[error("data directory {} does not exist - give the server's --data-dir (or MQTTAPP_DATA_DIR), as for `mqttapp serve`", .0.display())]
    NoDataDir(std::path::PathBuf),
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
///
/// # Errors
/// [`DlqError::NoDataDir`] when the directory does not exist: an empty
/// listing of the wrong directory would hide the server's letters.
fn store(config: &Config) -> Result<DeadLetters, DlqError> {
    if !config.data_dir.is_dir() {
        return Err(DlqError::NoDataDir(config.data_dir.clone()));
    }
    Ok(DeadLetters::new(&config.data_dir, &config.server_id))
}

/// Reasons whose letters fail again at once when replayed as they are: the
/// server has no such operation, cannot decode the payload, or has nowhere
/// to answer. `dlq replay` skips them unless `--force`.
pub const HOPELESS: &[&str] = &["unknown_op", "undecodable", "no_response_topic"];

/// What `dlq replay` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Letters published again and removed from the store.
    pub replayed: usize,
    /// Letters skipped (they stay) because their reason is in [`HOPELESS`].
    pub skipped: usize,
}

/// Why a selected letter is not replayed although it is in the store.
const CUT: &str = "truncated: the store kept only part of this request (a field over its cap, or the payload past the budget), so replaying it would send a different request; it stays in the store";

/// What a selection holds, found in one pass over the store.
struct Plan {
    /// Letters selected.
    selected: usize,
    /// Selected letters that are cut and will not be replayed.
    cut: Vec<String>,
    /// Selected letters whose reason cannot succeed (not cut), skipped.
    hopeless: usize,
}

/// Checks that every id in `ids` is in the store and counts the selection.
///
/// # Errors
/// [`DlqError::UnknownIds`] naming every id that is not in the store.
fn plan(store: &DeadLetters, ids: Option<&HashSet<&str>>) -> Result<Plan, DlqError> {
    #[derive(serde::Deserialize)]
    struct Entry {
        id: String,
        #[serde(default)]
        reason: String,
        #[serde(default)]
        truncated: bool,
    }
    let mut found = HashSet::new();
    let mut plan = Plan {
        selected: 0,
        cut: Vec::new(),
        hopeless: 0,
    };
    store.scan(|e: Entry| {
        if ids.is_none_or(|ids| ids.contains(e.id.as_str())) {
            plan.selected += 1;
            if e.truncated {
                plan.cut.push(format!("{}: {CUT}", e.id));
            } else if HOPELESS.contains(&e.reason.as_str()) {
                plan.hopeless += 1;
            }
            if ids.is_some() {
                found.insert(e.id);
            }
        }
        Ok::<_, DlqError>(())
    })?;
    if let Some(ids) = ids {
        let mut unknown: Vec<String> = ids
            .iter()
            .filter(|id| !found.contains(**id))
            .map(|id| id.to_string())
            .collect();
        if !unknown.is_empty() {
            unknown.sort();
            return Err(DlqError::UnknownIds(unknown));
        }
    }
    Ok(plan)
}

fn id_set(ids: Option<&[String]>) -> Option<HashSet<&str>> {
    ids.map(|ids| ids.iter().map(String::as_str).collect())
}

/// Deletes the named dead letters (all when `None`, which also resets the
/// count of letters dropped past the budget); returns how many.
///
/// # Errors
/// [`DlqError::UnknownIds`] (nothing is deleted then) or [`DlqError::Store`].
pub fn purge(config: &Config, ids: Option<&[String]>) -> Result<usize, DlqError> {
    let store = store(config)?;
    plan(&store, id_set(ids).as_ref())?;
    Ok(store.remove(ids)?)
}

/// Replays the named dead letters (all when `None`); returns how many were
/// published and removed, and how many were skipped because their reason
/// cannot succeed ([`HOPELESS`], unless `force`). Truncated letters are
/// never replayed and stay.
///
/// # Errors
/// [`DlqError`]: unknown ids, no server online, connection failures, or
/// letters not replayed: publishes that were not acknowledged and
/// truncated letters (those letters stay).
pub fn replay(config: &Config, ids: Option<&[String]>, force: bool) -> Result<Replayed, DlqError> {
    let store = store(config)?;
    let ids = id_set(ids);
    let plan = plan(&store, ids.as_ref())?;
    let skipped = if force { 0 } else { plan.hopeless };
    let mut failures = plan.cut.clone();
    let mut replayed = 0;
    if plan.selected > plan.cut.len() + skipped {
        replayed = publish_all(config, &store, ids.as_ref(), force, &mut failures)?;
    }
    match failures.first() {
        None => Ok(Replayed { replayed, skipped }),
        Some(first) => Err(DlqError::NotReplayed {
            failed: failures.len(),
            total: plan.selected,
            first: first.clone(),
        }),
    }
}

/// Publishes every selected letter that is not cut, in chunks, removing
/// each chunk's acknowledged letters before reading on (the scan reads the
/// file it opened; `remove` replaces the file, it does not change it).
fn publish_all(
    config: &Config,
    store: &DeadLetters,
    ids: Option<&HashSet<&str>>,
    force: bool,
    failures: &mut Vec<String>,
) -> Result<usize, DlqError> {
    let wait = config.timeout.min(status::DEFAULT_WAIT);
    if !status::collect(config, wait)?.iter().any(|s| s.is_online()) {
        return Err(DlqError::NoServer(config.prefix.clone()));
    }
    let client_id = format!("mqttapp-dlq-{:016x}", random_u64());
    let client = Client::connect_oneshot(&config.connection, &client_id, config.timeout)?;
    let mut replayed = 0;
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut flush = |chunk: &mut Vec<DeadLetter>| -> Result<(), DlqError> {
        let (acked, failed) = publish_chunk(&client, chunk, config.timeout);
        store.remove(Some(&acked))?;
        replayed += acked.len();
        failures.extend(failed);
        chunk.clear();
        Ok(())
    };
    store.scan(|letter: DeadLetter| {
        let wanted = ids.is_none_or(|ids| ids.contains(letter.id.as_str()));
        let hopeless = HOPELESS.contains(&letter.reason.as_str());
        if wanted && !letter.truncated && (force || !hopeless) {
            chunk.push(letter);
        }
        if chunk.len() == CHUNK {
            flush(&mut chunk)?;
        }
        Ok::<_, DlqError>(())
    })?;
    if !chunk.is_empty() {
        flush(&mut chunk)?;
    }
    client.disconnect(Duration::ZERO);
    Ok(replayed)
}

/// Publishes a chunk of letters and waits for each acknowledgement.
/// Returns the ids acknowledged and a description of each failure.
fn publish_chunk(
    client: &Client,
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
                    user: Vec::new(),
                };
                let msg = Message::new(&original.topic, original.payload, meta, false);
                match client.try_publish(msg) {
                    Ok(delivery) => tokens.push((letter.id.clone(), delivery)),
                    Err(e) => failed.push(format!("{}: {e}", letter.id)),
                }
            }
            Err(e) => failed.push(format!("{}: {e}", letter.id)),
        }
    }
    let mut acked = Vec::with_capacity(tokens.len());
    for (id, token) in tokens {
        match token.wait(timeout) {
            Ok(()) => acked.push(id),
            Err(e) => failed.push(format!("{id}: {e}")),
        }
    }
    (acked, failed)
}
