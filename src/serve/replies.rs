//! Publishing replies with checked results and backpressure.
//!
//! Every publish returns a paho delivery token. Tokens go, in order, to a
//! checker thread that waits for each PUBACK; a failed delivery is logged
//! and recorded as a dead letter. The channel to the checker is bounded, so
//! when the broker stops acknowledging, the server stops taking requests
//! instead of piling up replies. When paho reports a full in-flight window
//! or offline buffer, the sender waits and tries again: it never drops.

use std::sync::Arc;
use std::thread::{self, JoinHandle};

use crossbeam_channel::{bounded, Sender};
use paho_mqtt as paho;

use crate::deadletter::{DeadLetters, Original, Reason};

/// Replies published but not yet acknowledged, at most.
const MAX_UNACKED: usize = 4096;

/// Publishes replies and checks every result.
pub struct ReplySender {
    client: paho::AsyncClient,
    max_deadletter_bytes: u64,
    pending: Option<Sender<paho::DeliveryToken>>,
    checker: Option<JoinHandle<()>>,
}

impl ReplySender {
    /// Starts the checker thread; dead letters it records keep their
    /// payload while the store is under `max_deadletter_bytes`.
    pub fn start(
        client: paho::AsyncClient,
        dead_letters: Arc<DeadLetters>,
        max_deadletter_bytes: u64,
    ) -> ReplySender {
        let (tx, rx) = bounded::<paho::DeliveryToken>(MAX_UNACKED);
        let checker = thread::Builder::new()
            .name("reply-checker".into())
            .spawn(move || {
                for token in rx {
                    let kept = token.clone();
                    if let Err(e) = token.wait() {
                        let original = original_of(kept.message());
                        tracing::error!(topic = %original.topic, error = %e, "reply was not delivered");
                        let detail = e.to_string();
                        let max = max_deadletter_bytes;
                        record(&dead_letters, max, Reason::ReplyFailed, &detail, &original);
                    }
                }
            })
            .ok();
        ReplySender {
            client,
            max_deadletter_bytes,
            pending: Some(tx),
            checker,
        }
    }

    /// Publishes `msg`, waiting while paho's window or buffer is full.
    /// A publish paho refuses outright becomes a dead letter.
    pub fn send(&self, msg: paho::Message, dead_letters: &DeadLetters) {
        match crate::mqtt::publish_waiting(&self.client, msg) {
            Ok(token) => {
                if let Some(tx) = &self.pending {
                    // Blocks when MAX_UNACKED replies await their PUBACK.
                    if tx.send(token).is_err() {
                        tracing::error!(
                            "reply checker stopped; delivery of this reply is unchecked"
                        );
                    }
                }
            }
            Err(e) => {
                let original = match &e {
                    paho::Error::Publish(_, m) => original_of(m),
                    _ => Original::default(),
                };
                tracing::error!(error = %e, topic = %original.topic, "reply publish refused");
                let max = self.max_deadletter_bytes;
                record(
                    dead_letters,
                    max,
                    Reason::ReplyFailed,
                    &e.to_string(),
                    &original,
                );
            }
        }
    }

    /// Waits until every published reply is acknowledged (or failed).
    pub fn finish(mut self) {
        drop(self.pending.take());
        if let Some(checker) = self.checker.take() {
            let _ = checker.join();
        }
    }
}

/// A reply, kept as the dead letter's "original" when it cannot be delivered.
fn original_of(msg: &paho::Message) -> Original {
    let meta = crate::mqtt::MessageMeta::of(msg);
    Original {
        topic: msg.topic().to_string(),
        response_topic: None,
        correlation: meta.correlation,
        content_type: meta.content_type,
        payload: msg.payload().to_vec(),
    }
}

/// Records a dead letter; if even that fails, the log is the last trace.
///
/// Once the store holds `max_bytes`, the payload is left out (its size
/// and the reason are in the detail): a flood of large bad requests must
/// not fill the disk. Metadata is still kept, so nothing goes untraced.
pub fn record(
    dead_letters: &DeadLetters,
    max_bytes: u64,
    reason: Reason,
    detail: &str,
    original: &Original,
) {
    let stored = std::fs::metadata(dead_letters.path()).map_or(0, |m| m.len());
    let trimmed;
    let (detail, original) = if stored >= max_bytes && !original.payload.is_empty() {
        trimmed = Original {
            payload: Vec::new(),
            ..original.clone()
        };
        let detail = format!(
            "{detail} (payload of {} bytes not kept: the dead-letter store is over {max_bytes} bytes)",
            original.payload.len()
        );
        (detail, &trimmed)
    } else {
        (detail.to_string(), original)
    };
    match dead_letters.record(reason, &detail, original) {
        Ok(letter) => {
            tracing::warn!(id = %letter.id, reason = reason.as_str(), detail, "dead letter")
        }
        Err(e) => {
            tracing::error!(error = %e, reason = reason.as_str(), topic = %original.topic, "cannot record dead letter")
        }
    }
}
