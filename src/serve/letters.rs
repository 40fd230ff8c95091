//! Where dead letters go: the persistent store in the data directory first
//! (the durable record, read by `mqttapp dlq`), then an announcement on
//! `<prefix>/v1/dlq` (CBOR of the same record) for anyone monitoring.
//!
//! The announcement is published without blocking the caller: dead letters
//! are recorded from the request loop and from the reply checker, and
//! neither may wait on the broker here (the broker may be the reason for
//! the dead letter). A small thread checks each announcement's delivery and
//! logs failures; the store keeps the letter either way.

use std::thread;
use std::time::Duration;

use crossbeam_channel::{unbounded, Sender};
use paho_mqtt as paho;

use crate::deadletter::{DeadLetter, DeadLetters, Original, Reason};
use crate::mqtt::{self, MessageMeta};
use crate::protocol::to_cbor;

/// How long an announcement may wait for its acknowledgement (it waits in
/// paho's buffer while the broker is away).
const ANNOUNCE_ACK_TIMEOUT: Duration = Duration::from_secs(300);

/// Records dead letters and announces them.
pub struct DeadLetterSink {
    store: DeadLetters,
    max_bytes: u64,
    client: paho::AsyncClient,
    topic: String,
    announced: Sender<(paho::DeliveryToken, String)>,
}

impl DeadLetterSink {
    /// A sink writing to `store` and announcing on `topic` through `client`.
    /// Past `max_bytes` in the store, letters keep everything but the
    /// payload (`[limits] max_deadletter_bytes`).
    pub fn start(
        store: DeadLetters,
        max_bytes: u64,
        client: paho::AsyncClient,
        topic: String,
    ) -> DeadLetterSink {
        let (tx, rx) = unbounded::<(paho::DeliveryToken, String)>();
        // The thread ends when the sink (the only sender) is dropped.
        let spawned = thread::Builder::new()
            .name("dlq-announcer".into())
            .spawn(move || {
                for (token, id) in rx {
                    if let Err(e) = mqtt::wait(token, ANNOUNCE_ACK_TIMEOUT) {
                        tracing::warn!(%id, error = %e, "dead letter announcement not delivered; it is in the store");
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the dead-letter announcer; announcements are unchecked");
        }
        DeadLetterSink {
            store,
            max_bytes,
            client,
            topic,
            announced: tx,
        }
    }

    /// Records a dead letter durably, then announces it. If even the store
    /// fails, the log is the last trace.
    pub fn record(&self, reason: Reason, detail: &str, original: &Original) {
        let (detail, original) = self.within_budget(detail, original);
        let (detail, original) = (detail.as_str(), &original);
        match self.store.record(reason, detail, original) {
            Ok(letter) => {
                tracing::warn!(id = %letter.id, reason = reason.as_str(), detail, "dead letter");
                self.announce(&letter);
            }
            Err(e) => {
                tracing::error!(error = %e, reason = reason.as_str(), topic = %original.topic, "cannot record dead letter")
            }
        }
    }

    /// Once the store holds `max_bytes`, the payload is left out (its size
    /// is in the detail): a flood of large bad requests must not fill the
    /// disk. The metadata is still kept, so nothing goes untraced.
    fn within_budget(&self, detail: &str, original: &Original) -> (String, Original) {
        let stored = std::fs::metadata(self.store.path()).map_or(0, |m| m.len());
        if stored < self.max_bytes || original.payload.is_empty() {
            return (detail.to_string(), original.clone());
        }
        let detail = format!(
            "{detail} (payload of {} bytes not kept: the dead-letter store is over {} bytes)",
            original.payload.len(),
            self.max_bytes
        );
        (
            detail,
            Original {
                payload: Vec::new(),
                ..original.clone()
            },
        )
    }

    fn announce(&self, letter: &DeadLetter) {
        let meta = MessageMeta {
            content_type: Some("application/cbor".into()),
            ..MessageMeta::default()
        };
        let msg = meta.message(&self.topic, to_cbor(letter), false);
        match self.client.try_publish(msg) {
            Ok(token) => {
                let _ = self.announced.send((token, letter.id.clone()));
            }
            Err(e) => {
                tracing::warn!(id = %letter.id, error = %e, "cannot announce dead letter; it is in the store")
            }
        }
    }
}
