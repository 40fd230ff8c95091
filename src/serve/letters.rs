//! Where dead letters go: the persistent store in the data directory first
//! (the durable record, read by `mqttapp dlq`), then an announcement on
//! `<prefix>/v1/dlq` (CBOR of the same record) for anyone monitoring.
//!
//! The announcement is published without blocking the caller: dead letters
//! are recorded from the request loop and from the reply checker, and
//! neither may wait on the broker here (the broker may be the reason for
//! the dead letter). A small thread checks each announcement's delivery and
//! logs failures; the store keeps the letter either way.
//!
//! Both are bounded: the store cuts every field and keeps within its budget
//! (`deadletter`), the announcement is the stored (cut) record, and the log
//! line shortens what the client chose. Letters the budget turns away are
//! counted; a warning with the count goes out at most every
//! [`DROP_WARN_EVERY`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Sender};

use crate::deadletter::{DeadLetter, DeadLetterError, DeadLetters, Original, Reason, Recorded};
use crate::logging::shorten;
use crate::mqtt::{Client, Delivery, Message, MessageMeta};
use crate::protocol::to_cbor;

/// How long an announcement may wait for its acknowledgement (it waits in
/// paho's buffer while the broker is away).
const ANNOUNCE_ACK_TIMEOUT: Duration = Duration::from_secs(300);
/// At most one "dead letters dropped" warning this often: a flood must not
/// turn into a flood of log lines.
pub const DROP_WARN_EVERY: Duration = Duration::from_secs(10);
/// Most bytes of announcements awaiting their acknowledgement. Each is a
/// stored letter (up to `max_payload_bytes` of payload, hex), and a flood
/// of unanswerable requests is stored at disk speed: without a cap, paho
/// held up to the whole store budget (64 MiB) of them in memory, twice.
/// Past it a letter is stored but not announced.
const MAX_ANNOUNCING_BYTES: usize = 4 * 1024 * 1024;
/// Characters of a client-supplied string a log line keeps.
const LOG_CHARS: usize = 120;

/// The drop count as the log last reported it.
#[derive(Default)]
struct Drops {
    /// When the last warning went out.
    warned_at: Option<Instant>,
    /// The count that warning carried.
    warned: u64,
    /// The latest count.
    total: u64,
}

/// Records dead letters and announces them.
pub struct DeadLetterSink {
    store: DeadLetters,
    drops: Mutex<Drops>,
    client: Client,
    topic: String,
    announced: Sender<(Delivery, String, usize)>,
    /// Bytes of announcements not yet acknowledged.
    announcing: Arc<AtomicUsize>,
}

impl DeadLetterSink {
    /// A sink writing to `store` and announcing on `topic` through `client`.
    /// The store never grows past `max_bytes` (`[limits]
    /// max_deadletter_bytes`): near it letters lose their payload, at it
    /// they are dropped and counted.
    pub fn start(
        store: DeadLetters,
        max_bytes: u64,
        client: Client,
        topic: String,
    ) -> DeadLetterSink {
        let (tx, rx) = unbounded::<(Delivery, String, usize)>();
        let announcing = Arc::new(AtomicUsize::new(0));
        let acked = announcing.clone();
        // The thread ends when the sink (the only sender) is dropped.
        let spawned = thread::Builder::new()
            .name("dlq-announcer".into())
            .spawn(move || {
                for (token, id, bytes) in rx {
                    if let Err(e) = token.wait(ANNOUNCE_ACK_TIMEOUT) {
                        tracing::warn!(%id, error = %e, "dead letter announcement not delivered; it is in the store");
                    }
                    acked.fetch_sub(bytes, Ordering::SeqCst);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the dead-letter announcer; announcements are unchecked");
        }
        DeadLetterSink {
            store: store.with_budget(max_bytes),
            drops: Mutex::default(),
            client,
            topic,
            announced: tx,
            announcing,
        }
    }

    /// Records a dead letter durably, then announces it. If even the store
    /// fails, the log is the last trace.
    pub fn record(&self, reason: Reason, detail: &str, original: &Original) {
        let topic = shorten(&original.topic, LOG_CHARS);
        self.keep(reason, &topic, self.store.record(reason, detail, original));
    }

    /// [`DeadLetterSink::record`] for a letter already cut to the caps.
    pub fn record_letter(&self, letter: DeadLetter) {
        let (reason, topic) = (letter.reason, shorten(&letter.topic, LOG_CHARS));
        self.keep(reason, &topic, self.store.record_letter(letter));
    }

    /// Logs and announces what the store did with a letter.
    fn keep(&self, reason: Reason, topic: &str, recorded: Result<Recorded, DeadLetterError>) {
        match recorded {
            Ok(Recorded::Stored(letter)) => {
                let detail = shorten(&letter.detail, 2 * LOG_CHARS);
                tracing::warn!(id = %letter.id, reason = reason.as_str(), %topic, %detail, "dead letter");
                self.announce(&letter);
            }
            Ok(Recorded::Dropped { total }) => self.warn_dropped(total),
            Err(e) => {
                tracing::error!(error = %e, reason = reason.as_str(), %topic, "cannot record dead letter")
            }
        }
    }

    /// The rate-limited warning for letters the store's budget turned away.
    fn warn_dropped(&self, total: u64) {
        let mut drops = self.drops.lock().unwrap_or_else(|p| p.into_inner());
        drops.total = total;
        if drops
            .warned_at
            .is_some_and(|at| at.elapsed() < DROP_WARN_EVERY)
        {
            return;
        }
        drops.warned_at = Some(Instant::now());
        drops.warned = total;
        tracing::warn!(
            dropped = total,
            "dead-letter store is full (max_deadletter_bytes): new dead letters are dropped and counted; see `mqttapp dlq list`, free it with `mqttapp dlq purge`"
        );
    }

    fn announce(&self, letter: &DeadLetter) {
        let meta = MessageMeta {
            content_type: Some("application/cbor".into()),
            ..MessageMeta::default()
        };
        let payload = to_cbor(letter);
        let bytes = payload.len();
        if self.announcing.fetch_add(bytes, Ordering::SeqCst) + bytes > MAX_ANNOUNCING_BYTES {
            self.announcing.fetch_sub(bytes, Ordering::SeqCst);
            tracing::debug!(id = %letter.id, "dead letter not announced: too many announcements await the broker; it is in the store");
            return;
        }
        let msg = Message::new(&self.topic, payload, meta, false);
        match self.client.try_publish(msg) {
            Ok(token) => {
                if self
                    .announced
                    .send((token, letter.id.clone(), bytes))
                    .is_err()
                {
                    self.announcing.fetch_sub(bytes, Ordering::SeqCst);
                }
            }
            Err(e) => {
                self.announcing.fetch_sub(bytes, Ordering::SeqCst);
                tracing::warn!(id = %letter.id, error = %e, "cannot announce dead letter; it is in the store")
            }
        }
    }
}

impl Drop for DeadLetterSink {
    /// The last count, if the rate limit held it back.
    fn drop(&mut self) {
        let drops = self.drops.get_mut().unwrap_or_else(|p| p.into_inner());
        if drops.total > drops.warned {
            tracing::warn!(
                dropped = drops.total,
                "dead letters dropped at max_deadletter_bytes so far"
            );
        }
    }
}
