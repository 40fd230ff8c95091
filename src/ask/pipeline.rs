//! Many requests in flight over one connection: send without waiting,
//! match replies by correlation data, re-send what goes unanswered within
//! the retry interval (same correlation data, so edits apply once), give up
//! after the timeout, and check every publish result.
//!
//! Used by `ask --batch` and `bench`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

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
    unchecked: VecDeque<paho::DeliveryToken>,
    window: usize,
    publish_errors: u64,
    resent: u64,
}

impl<K> Pipeline<K> {
    /// Wraps a connected requester; `window` bounds unchecked publishes.
    pub fn new(
        requester: Requester,
        window: usize,
        retry: Duration,
        timeout: Duration,
    ) -> Pipeline<K> {
        Pipeline {
            requester,
            pending: HashMap::with_capacity(window),
            retry,
            timeout,
            next_check: Instant::now() + retry,
            unchecked: VecDeque::with_capacity(window),
            window: window.max(1),
            publish_errors: 0,
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

    fn publish(&mut self, request: &Request, correlation: &[u8]) {
        let token = self.requester.publish_nowait(request, correlation);
        self.unchecked.push_back(token);
    }

    /// Checks the publish results that have come in, oldest first, without
    /// waiting (a checker thread would be woken once per request); waits
    /// for the oldest only when more than two windows are unchecked.
    /// A refusal by the broker fails its request at once; other failures (a
    /// dropped connection) are left to the re-send.
    fn check_publishes(&mut self, out: &mut Vec<Outcome<K>>) {
        while let Some(token) = self.unchecked.front() {
            let result = match mqtt::completed(token) {
                Some(result) => result,
                None if self.unchecked.len() > 2 * self.window => {
                    mqtt::wait(token.clone(), ACK_LIMIT)
                }
                None => return,
            };
            let Some(token) = self.unchecked.pop_front() else {
                return;
            };
            if let Err(e) = result {
                self.publish_failed(&token, e, out);
            }
        }
    }

    fn publish_failed(
        &mut self,
        token: &paho::DeliveryToken,
        e: paho::Error,
        out: &mut Vec<Outcome<K>>,
    ) {
        self.publish_errors += 1;
        if self.publish_errors == 1 {
            tracing::warn!(error = %e, "a request was not acknowledged by the broker");
        }
        let msg = token.message();
        let refusal = mqtt::classify_refusal(msg.topic(), e);
        if !matches!(
            refusal,
            MqttError::NotAuthorized { .. } | MqttError::Refused { .. }
        ) {
            return;
        }
        let correlation = MessageMeta::of(msg).correlation.unwrap_or_default();
        if let Some(p) = self.pending.remove(&correlation) {
            out.push(Outcome::Refused(p.key, refusal.to_string()));
        }
    }

    /// Waits up to `wait` for the next reply, re-sends and gives up as due,
    /// and reports what happened.
    ///
    /// # Errors
    /// [`AskError`] when a dropped connection cannot be re-established.
    pub fn poll(&mut self, wait: Duration, out: &mut Vec<Outcome<K>>) -> Result<(), AskError> {
        let mut received = self.requester.next(Instant::now() + wait);
        // Everything that has arrived meanwhile is handled in this call, so
        // that the caller refills the window in a burst: paho's send thread
        // is then woken once per burst rather than once per request.
        for _ in 0..self.window {
            let answered = match received {
                Some(Received::Reply(c, reply)) => Some((c, Some(reply))),
                Some(Received::Undecodable(c)) => Some((c, None)),
                Some(Received::Lost) => {
                    self.requester.reconnect(Instant::now() + self.timeout)?;
                    self.next_check = Instant::now();
                    None
                }
                Some(Received::Status | Received::Acknowledged) => None,
                None => break,
            };
            if let Some((correlation, reply)) = answered {
                out.push(match self.pending.remove(&correlation) {
                    Some(p) => Outcome::Answered(p.key, reply, p.first_sent.elapsed()),
                    None => Outcome::Duplicate,
                });
            }
            received = self.requester.try_next();
        }
        self.check_publishes(out);
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
            if let Some(p) = self.pending.get_mut(&correlation) {
                p.last_sent = now;
                self.resent += 1;
                let token = self.requester.publish_nowait(&p.request, &correlation);
                self.unchecked.push_back(token);
            }
        }
    }

    /// Waits for the publish checks; returns (re-sends, publishes the
    /// broker did not acknowledge) and the requester.
    pub fn finish(mut self) -> (u64, u64, Requester) {
        let mut ignored = Vec::new();
        while let Some(token) = self.unchecked.pop_front() {
            if let Err(e) = mqtt::wait(token.clone(), ACK_LIMIT) {
                self.publish_failed(&token, e, &mut ignored);
            }
        }
        (self.resent, self.publish_errors, self.requester)
    }

    /// The underlying requester (e.g. to wait for a server first).
    pub fn requester(&mut self) -> &mut Requester {
        &mut self.requester
    }
}
