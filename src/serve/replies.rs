//! Publishing replies with checked results and backpressure.
//!
//! Every publish returns a paho delivery token. Tokens go, in order, to a
//! checker thread that waits for each PUBACK; a failed delivery is logged
//! and recorded as a dead letter. The channel to the checker is bounded, so
//! when the broker stops acknowledging, the server stops taking requests
//! instead of piling up replies. When paho reports a full in-flight window
//! or offline buffer, the sender waits and tries again: it never drops.
//!
//! Waiting here never blocks reconnection: the link to the broker is kept
//! by its own thread (`link.rs`), so tokens held up by a lost connection
//! complete (or fail) once it is back.

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};
use paho_mqtt as paho;

use super::letters::DeadLetterSink;
use crate::deadletter::{Original, Reason};

/// Replies published but not yet acknowledged, at most. Small on purpose:
/// paho C scans every pending publish when it assigns a message id or
/// matches a PUBACK, so a long queue costs CPU on every reply, while a few
/// hundred in flight already saturate a loopback or LAN link.
const MAX_UNACKED: usize = 256;
/// A reply not acknowledged this long after it was published counts as
/// failed (it is kept as a dead letter). Generous: replies wait in paho's
/// buffer while the broker restarts.
const ACK_TIMEOUT: Duration = Duration::from_secs(300);

/// Publishes replies and checks every result.
pub struct ReplySender {
    client: paho::AsyncClient,
    letters: Arc<DeadLetterSink>,
    pending: Option<Sender<(paho::DeliveryToken, Instant)>>,
    done: Receiver<()>,
    checker: Option<JoinHandle<()>>,
}

impl ReplySender {
    /// Starts the checker thread.
    pub fn start(client: paho::AsyncClient, letters: Arc<DeadLetterSink>) -> ReplySender {
        let (tx, rx) = bounded::<(paho::DeliveryToken, Instant)>(MAX_UNACKED);
        let (done_tx, done) = bounded::<()>(1);
        let sink = letters.clone();
        let checker = thread::Builder::new()
            .name("reply-checker".into())
            .spawn(move || {
                for (token, sent) in rx {
                    check(token, sent, &sink);
                }
                let _ = done_tx.send(());
            })
            .map_err(|e| tracing::error!(error = %e, "cannot start the reply checker"))
            .ok();
        ReplySender {
            client,
            letters,
            pending: checker.is_some().then_some(tx),
            done,
            checker,
        }
    }

    /// Publishes `msg`, waiting while paho's window or buffer is full.
    /// A publish paho refuses outright becomes a dead letter.
    pub fn send(&self, msg: paho::Message) {
        match crate::mqtt::publish_waiting(&self.client, msg) {
            Ok(token) => match &self.pending {
                // Blocks when MAX_UNACKED replies await their PUBACK.
                Some(tx) => {
                    if tx.send((token, Instant::now())).is_err() {
                        tracing::error!("reply checker stopped; this reply is unchecked");
                    }
                }
                None => check(token, Instant::now(), &self.letters),
            },
            Err(e) => {
                let original = match &e {
                    paho::Error::Publish(_, m) => original_of(m),
                    _ => Original::default(),
                };
                tracing::error!(error = %e, topic = %original.topic, "reply publish refused");
                self.letters
                    .record(Reason::ReplyFailed, &e.to_string(), &original);
            }
        }
    }

    /// Waits until every published reply is acknowledged (or failed), at
    /// most until `deadline`. Returns false if some are still unacknowledged.
    pub fn finish(mut self, deadline: Instant) -> bool {
        drop(self.pending.take());
        let left = deadline.saturating_duration_since(Instant::now());
        let finished = self.checker.is_none() || self.done.recv_timeout(left).is_ok();
        if finished {
            if let Some(checker) = self.checker.take() {
                let _ = checker.join();
            }
        }
        finished
    }
}

/// Waits for one reply's PUBACK; a failure or a timeout becomes a dead
/// letter holding the reply (so `mqttapp dlq replay` can send it again).
fn check(token: paho::DeliveryToken, sent: Instant, letters: &DeadLetterSink) {
    let kept = token.clone();
    let left = (sent + ACK_TIMEOUT).saturating_duration_since(Instant::now());
    if let Err(e) = token.wait_for(left.max(Duration::from_millis(1))) {
        let original = original_of(kept.message());
        tracing::error!(topic = %original.topic, error = %e, "reply was not delivered");
        letters.record(Reason::ReplyFailed, &e.to_string(), &original);
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
