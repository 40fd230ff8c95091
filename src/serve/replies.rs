//! Publishing replies with checked results and backpressure.
//!
//! Each thread that replies (the two lanes, the refusals) has its own
//! sender; paho's client is shared (it is thread-safe).
//!
//! Every publish returns a paho delivery token. The tokens wait, in order,
//! in a queue that its thread (a lane) checks without blocking after each
//! reply and when idle (a checker thread would be woken once per reply,
//! which cost more than the rest of the work: with it a benchmark client
//! did ~4,900 requests/s, without it ~8,000). A failed delivery is logged
//! and recorded as a dead letter. The queue is bounded: past MAX_UNACKED
//! replies, or MAX_UNACKED_BYTES of them (a reply carries the request's
//! response topic and correlation data, up to 64 KiB each), the lane waits
//! for the oldest PUBACK, so when the broker stops acknowledging, the lane
//! stops taking requests (they wait within its byte budget, then are
//! refused `busy`) instead of piling up replies. When paho reports a full in-flight window or offline buffer,
//! the sender waits and tries again: it never drops.
//!
//! Waiting here never blocks reconnection: the link to the broker is kept
//! by its own thread (`link.rs`), so tokens held up by a lost connection
//! complete (or fail) once it is back.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::letters::DeadLetterSink;
use crate::deadletter::{Original, Reason};
use crate::mqtt::{Client, Delivery, DeliveryError, Message};

/// Replies published but not yet acknowledged, at most. Small on purpose:
/// paho C scans every pending publish when it assigns a message id or
/// matches a PUBACK, so a long queue costs CPU on every reply, while a few
/// hundred in flight already saturate a loopback or LAN link.
pub(super) const MAX_UNACKED: usize = 256;
/// Bytes of replies (topic, properties, payload) published but not yet
/// acknowledged, at most, per sender: part of the server's memory bound
/// (docs/RELIABILITY.md), whatever the size of the requests' properties.
const MAX_UNACKED_BYTES: usize = 4 * 1024 * 1024;
/// A reply not acknowledged this long after it was published counts as
/// failed (it is kept as a dead letter). Generous: replies wait in paho's
/// buffer while the broker restarts.
const ACK_TIMEOUT: Duration = Duration::from_secs(300);

/// Publishes replies and checks every result. Used from one thread only
/// (the queue is a `RefCell`).
pub struct ReplySender {
    client: Client,
    letters: Arc<DeadLetterSink>,
    unacked: RefCell<VecDeque<(Delivery, Instant, usize)>>,
    /// The sum of the sizes in `unacked`.
    unacked_bytes: Cell<usize>,
}

impl ReplySender {
    /// A sender publishing through `client`; failures go to `letters`.
    pub fn start(client: Client, letters: Arc<DeadLetterSink>) -> ReplySender {
        ReplySender {
            client,
            letters,
            unacked: RefCell::new(VecDeque::with_capacity(MAX_UNACKED)),
            unacked_bytes: Cell::new(0),
        }
    }

    /// Publishes `msg`, waiting while paho's window or buffer is full.
    /// A publish paho refuses outright becomes a dead letter. Replies come
    /// here already stamped with the server's id and time breakdown
    /// (`breakdown::stamp`, by the lanes and the refusals).
    pub fn send(&self, msg: Message) {
        let size = msg.size();
        match self.client.publish(msg) {
            Ok(token) => {
                self.unacked
                    .borrow_mut()
                    .push_back((token, Instant::now(), size));
                self.unacked_bytes.set(self.unacked_bytes.get() + size);
                self.check(MAX_UNACKED);
            }
            Err(refused) => {
                let (e, msg) = *refused;
                let original = original_of(&msg);
                tracing::error!(error = %e, topic = %crate::logging::shorten(&original.topic, 120), "reply publish refused");
                self.letters
                    .record(Reason::ReplyFailed, &e.to_string(), &original);
            }
        }
    }

    /// Checks the acknowledgements that have come in, oldest first, without
    /// waiting, except for the oldest while more than `keep` are queued
    /// (or, unless `keep` is `usize::MAX`, more than MAX_UNACKED_BYTES).
    pub fn check(&self, keep: usize) {
        loop {
            let mut unacked = self.unacked.borrow_mut();
            let queued = unacked.len();
            let Some((token, sent, _)) = unacked.front_mut() else {
                return;
            };
            let deadline = *sent + ACK_TIMEOUT;
            let over_bytes = keep != usize::MAX && self.unacked_bytes.get() > MAX_UNACKED_BYTES;
            let wait = if queued > keep || over_bytes {
                deadline.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            let result = match token.completed() {
                Some(result) => result,
                None if wait.is_zero() && Instant::now() < deadline => return,
                // Over the window (or past the deadline): wait for the oldest.
                None => token.wait(wait.max(Duration::from_millis(1))),
            };
            let expired = Instant::now() >= deadline;
            if matches!(result, Err(DeliveryError::Timeout)) && !expired {
                return;
            }
            let Some((token, _, size)) = unacked.pop_front() else {
                return;
            };
            drop(unacked);
            self.unacked_bytes.set(self.unacked_bytes.get() - size);
            if let Err(e) = result {
                self.failed(&token, &e);
            }
        }
    }

    /// Waits until every published reply is acknowledged (or failed), at
    /// most until `deadline`. Returns false if some are still unacknowledged.
    pub fn finish(self, deadline: Instant) -> bool {
        loop {
            let front = self.unacked.borrow_mut().pop_front();
            let Some((token, _, _)) = front else {
                return true;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            match token.wait(left) {
                Ok(()) => {}
                Err(DeliveryError::Timeout) => return false,
                Err(e) => self.failed(&token, &e),
            }
        }
    }

    /// A reply that was not delivered becomes a dead letter holding it (so
    /// `mqttapp dlq replay` can send it again).
    fn failed(&self, token: &Delivery, e: &DeliveryError) {
        let original = original_of(&token.message());
        tracing::error!(topic = %crate::logging::shorten(&original.topic, 120), error = %e, "reply was not delivered");
        self.letters
            .record(Reason::ReplyFailed, &e.to_string(), &original);
    }
}

/// A reply, kept as the dead letter's "original" when it cannot be delivered.
fn original_of(msg: &Message) -> Original {
    Original {
        topic: msg.topic.clone(),
        response_topic: None,
        correlation: msg.meta.correlation.clone(),
        content_type: msg.meta.content_type.clone(),
        payload: msg.payload.clone(),
        payload_cut: None,
    }
}
