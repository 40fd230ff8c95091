//! Many requests in flight over one connection: send without waiting,
//! match replies by correlation data, re-send what goes unanswered within
//! the retry interval (same correlation data, so edits apply once), give up
//! after the timeout, and check every publish result.
//!
//! Used by `ask --batch` and `bench`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use paho_mqtt as paho;

use super::{AskError, Received, Requester};
use crate::mqtt::{self, MessageMeta, MqttError};
use crate::protocol::{Reply, Request};

/// Longest wait for one request's PUBACK.
const ACK_LIMIT: Duration = Duration::from_secs(300);

/// What happened to a request sent through the pipeline.
#[derive(Debug)]
pub enum Outcome<K> {
    /// A reply came (`None`: not a reply map) after this long.
    Answered(K, Option<Reply>, Duration),
    /// No reply within the timeout, re-sends included.
    Lost(K),
    /// The broker refused the request (e.g. its ACL: PUBACK "not
    /// authorized"); re-sending would not help.
    Refused(K, String),
    /// A reply for a request that was already answered or given up.
    Duplicate,
}

struct Pending<K> {
    key: K,
    request: Request,
    first_sent: Instant,
    last_sent: Instant,
}

/// A window of requests in flight over one [`Requester`].
pub struct Pipeline<K> {
    requester: Requester,
    pending: HashMap<Vec<u8>, Pending<K>>,
    retry: Duration,
    timeout: Duration,
    next_check: Instant,
    tokens: Option<Sender<paho::DeliveryToken>>,
    checker: Option<JoinHandle<()>>,
    publish_errors: Arc<AtomicU64>,
    refusals: Receiver<(Vec<u8>, String)>,
    resent: u64,
}

/// Waits for one publish result. A refusal by the broker is reported back
/// to the pipeline (by correlation data) so the request fails at once
/// instead of waiting out the timeout; other failures (a dropped
/// connection) are left to the re-send.
fn check(token: paho::DeliveryToken, errors: &AtomicU64, refused: &Sender<(Vec<u8>, String)>) {
    let kept = token.clone();
    // Bounded like the server's reply checks: a token that never completes
    // must not keep the pipeline (and so `finish`) waiting forever.
    let Err(e) = token.wait_for(ACK_LIMIT) else {
        return;
    };
    if errors.fetch_add(1, Ordering::Relaxed) == 0 {
        tracing::warn!(error = %e, "a request was not acknowledged by the broker");
    }
    let msg = kept.message();
    let refusal = mqtt::classify_refusal(msg.topic(), e);
    if matches!(
        refusal,
        MqttError::NotAuthorized { .. } | MqttError::Refused { .. }
    ) {
        if let Some(correlation) = MessageMeta::of(msg).correlation {
            let _ = refused.send((correlation, refusal.to_string()));
        }
    }
}

impl<K> Pipeline<K> {
    /// Wraps a connected requester; `window` bounds unchecked publishes.
    pub fn new(
        requester: Requester,
        window: usize,
        retry: Duration,
        timeout: Duration,
    ) -> Pipeline<K> {
        let publish_errors = Arc::new(AtomicU64::new(0));
        let (tokens, checked) = bounded::<paho::DeliveryToken>(window.max(1) * 2);
        let errors = publish_errors.clone();
        let (refused, refusals) = unbounded();
        let checker = std::thread::spawn(move || {
            for token in checked {
                check(token, &errors, &refused);
            }
        });
        Pipeline {
            requester,
            pending: HashMap::with_capacity(window),
            retry,
            timeout,
            next_check: Instant::now() + retry,
            tokens: Some(tokens),
            checker: Some(checker),
            publish_errors,
            refusals,
            resent: 0,
        }
    }

    /// Requests sent and not yet answered or lost.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Sends a request without waiting.
    pub fn send(&mut self, key: K, request: Request) {
        let correlation = self.requester.next_correlation();
        self.publish(&request, &correlation);
        let now = Instant::now();
        self.pending.insert(
            correlation,
            Pending {
                key,
                request,
                first_sent: now,
                last_sent: now,
            },
        );
    }

    fn publish(&self, request: &Request, correlation: &[u8]) {
        let token = self.requester.publish_nowait(request, correlation);
        if let Some(tokens) = &self.tokens {
            let _ = tokens.send(token);
        }
    }

    /// Waits up to `wait` for the next reply, re-sends and gives up as due,
    /// and reports what happened.
    ///
    /// # Errors
    /// [`AskError`] when a dropped connection cannot be re-established.
    pub fn poll(&mut self, wait: Duration, out: &mut Vec<Outcome<K>>) -> Result<(), AskError> {
        let received = self.requester.next(Instant::now() + wait);
        let answered = match received {
            Some(Received::Reply(c, reply)) => Some((c, Some(reply))),
            Some(Received::Undecodable(c)) => Some((c, None)),
            Some(Received::Lost) => {
                self.requester.reconnect(Instant::now() + self.timeout)?;
                self.next_check = Instant::now();
                None
            }
            Some(Received::Status) | None => None,
        };
        if let Some((correlation, reply)) = answered {
            out.push(match self.pending.remove(&correlation) {
                Some(p) => Outcome::Answered(p.key, reply, p.first_sent.elapsed()),
                None => Outcome::Duplicate,
            });
        }
        for (correlation, message) in self.refusals.try_iter() {
            if let Some(p) = self.pending.remove(&correlation) {
                out.push(Outcome::Refused(p.key, message));
            }
        }
        if Instant::now() >= self.next_check {
            self.resend_or_give_up(out);
            self.next_check = Instant::now() + self.retry.min(Duration::from_millis(100));
        }
        Ok(())
    }

    fn resend_or_give_up(&mut self, out: &mut Vec<Outcome<K>>) {
        let now = Instant::now();
        let timeout = self.timeout;
        let expired: Vec<Vec<u8>> = self
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.first_sent) >= timeout)
            .map(|(c, _)| c.clone())
            .collect();
        for correlation in expired {
            if let Some(p) = self.pending.remove(&correlation) {
                out.push(Outcome::Lost(p.key));
            }
        }
        let due: Vec<Vec<u8>> = self
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.last_sent) >= self.retry)
            .map(|(c, _)| c.clone())
            .collect();
        for correlation in due {
            if let Some(p) = self.pending.get(&correlation) {
                self.publish(&p.request, &correlation);
            }
            if let Some(p) = self.pending.get_mut(&correlation) {
                p.last_sent = now;
                self.resent += 1;
            }
        }
    }

    /// Waits for the publish checks; returns (re-sends, publishes the
    /// broker did not acknowledge) and the requester.
    pub fn finish(mut self) -> (u64, u64, Requester) {
        drop(self.tokens.take());
        if let Some(checker) = self.checker.take() {
            let _ = checker.join();
        }
        (
            self.resent,
            self.publish_errors.load(Ordering::Relaxed),
            self.requester,
        )
    }

    /// The underlying requester (e.g. to wait for a server first).
    pub fn requester(&mut self) -> &mut Requester {
        &mut self.requester
    }
}
