//! Many requests in flight over one connection: send without waiting,
//! match replies by correlation data, re-send what goes unanswered (backing
//! off: the first re-send after the retry interval, each next one twice as
//! long after) or is answered `busy` (after a short jittered back-off),
//! always with the same correlation data so edits apply once; give up
//! after the timeout, and check every publish result.
//!
//! Used by `ask --batch` and `bench`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::backoff::{busy_body, Attempts};
use super::{AskError, Received, Requester};
use crate::mqtt::{Delivery, DeliveryError, MqttError};
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
    /// Every answer within the timeout was `busy` (refused at capacity,
    /// not applied).
    Busy(K),
    /// The broker refused the request (e.g. its ACL: PUBACK "not
    /// authorized"); re-sending would not help.
    Refused(K, String),
    /// A reply for a request that was already answered or given up.
    Duplicate,
}

/// What a pipeline counted besides the outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Re-sends (after silence or after `busy`).
    pub resent: u64,
    /// Publishes the broker did not acknowledge.
    pub publish_errors: u64,
    /// `busy` replies (each one followed by a back-off and a re-send).
    pub busy: u64,
}

struct Pending<K> {
    key: K,
    request: Request,
    /// The request's own user properties (a `-H` prefix on its line).
    headers: Vec<(String, String)>,
    first_sent: Instant,
    attempts: Attempts,
}

/// A window of requests in flight over one [`Requester`].
pub struct Pipeline<K> {
    requester: Requester,
    pending: HashMap<Vec<u8>, Pending<K>>,
    retry: Duration,
    timeout: Duration,
    next_check: Instant,
    unchecked: VecDeque<Delivery>,
    window: usize,
    totals: Totals,
}

/// Longest pause between two scans for due re-sends and expired requests.
const CHECK_EVERY: Duration = Duration::from_millis(100);

impl<K> Pipeline<K> {
    /// Wraps a connected requester; `window` bounds unchecked publishes,
    /// `retry` is the interval before a request's first re-send (it
    /// doubles for each next one), `timeout` when a request is given up.
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
            next_check: Instant::now() + retry.min(CHECK_EVERY),
            unchecked: VecDeque::with_capacity(window),
            window: window.max(1),
            totals: Totals::default(),
        }
    }

    /// Requests sent and not yet answered or lost.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Sends a request without waiting.
    pub fn send(&mut self, key: K, request: Request) {
        self.send_with(key, request, Vec::new());
    }

    /// [`Pipeline::send`] with user properties of its own (after the
    /// requester's), sent again with every re-send.
    pub fn send_with(&mut self, key: K, request: Request, headers: Vec<(String, String)>) {
        let correlation = self.requester.next_correlation();
        let token = self
            .requester
            .publish_with(&request, &correlation, &headers);
        self.unchecked.push_back(token);
        let now = Instant::now();
        let mut attempts = Attempts::new(self.retry, now);
        attempts.sent(now);
        self.pending.insert(
            correlation,
            Pending {
                key,
                request,
                headers,
                first_sent: now,
                attempts,
            },
        );
    }

    /// Checks the publish results that have come in, oldest first, without
    /// waiting (a checker thread would be woken once per request); waits
    /// for the oldest only when more than two windows are unchecked.
    /// A refusal by the broker fails its request at once; other failures (a
    /// dropped connection) are left to the re-send.
    fn check_publishes(&mut self, out: &mut Vec<Outcome<K>>) {
        let window = self.window;
        loop {
            let unchecked = self.unchecked.len();
            let Some(token) = self.unchecked.front_mut() else {
                return;
            };
            let result = match token.completed() {
                Some(result) => result,
                None if unchecked > 2 * window => token.wait(ACK_LIMIT),
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

    fn publish_failed(&mut self, token: &Delivery, e: DeliveryError, out: &mut Vec<Outcome<K>>) {
        self.totals.publish_errors += 1;
        if self.totals.publish_errors == 1 {
            tracing::warn!(error = %e, "a request was not acknowledged by the broker");
        }
        let refusal = e.into_mqtt();
        if !matches!(
            refusal,
            MqttError::NotAuthorized { .. } | MqttError::Refused { .. }
        ) {
            return;
        }
        let correlation = token.message().meta.correlation.unwrap_or_default();
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
        // At most a window of arrivals per call; the next one is fetched
        // only when it will be handled (fetching it and stopping dropped
        // it: a reply lost that way cost a re-send).
        for handled in 1..=self.window {
            let answered = match received {
                Some(Received::Reply(c, reply, _)) => Some((c, Some(reply))),
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
                self.answered(correlation, reply, out);
            }
            if handled == self.window {
                break;
            }
            received = self.requester.try_next();
        }
        self.check_publishes(out);
        if Instant::now() >= self.next_check {
            self.resend_or_give_up(out);
        }
        Ok(())
    }

    /// A reply came: the request's final answer, or a `busy` refusal that
    /// schedules a re-send (a late `busy` for a request already answered
    /// is only counted).
    fn answered(&mut self, correlation: Vec<u8>, reply: Option<Reply>, out: &mut Vec<Outcome<K>>) {
        if reply.as_ref().and_then(busy_body).is_some() {
            self.totals.busy += 1;
            if let Some(p) = self.pending.get_mut(&correlation) {
                let due = p.attempts.busy(Instant::now());
                self.next_check = self.next_check.min(due);
            }
            return;
        }
        out.push(match self.pending.remove(&correlation) {
            Some(p) => Outcome::Answered(p.key, reply, p.first_sent.elapsed()),
            None => Outcome::Duplicate,
        });
    }

    /// Gives up the requests past their timeout and re-sends those due;
    /// schedules the next scan for the earliest moment one is due.
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
                out.push(if p.attempts.busy_replies() > 0 {
                    Outcome::Busy(p.key)
                } else {
                    Outcome::Lost(p.key)
                });
            }
        }
        let mut next_check = now + CHECK_EVERY;
        for (correlation, p) in &mut self.pending {
            if p.attempts.due() <= now {
                p.attempts.sent(now);
                self.totals.resent += 1;
                let token = self
                    .requester
                    .publish_with(&p.request, correlation, &p.headers);
                self.unchecked.push_back(token);
            }
            next_check = next_check.min(p.attempts.due()).min(p.first_sent + timeout);
        }
        self.next_check = next_check;
    }

    /// Waits for the publish checks; returns what was counted and the
    /// requester.
    pub fn finish(mut self) -> (Totals, Requester) {
        let mut ignored = Vec::new();
        while let Some(token) = self.unchecked.pop_front() {
            if let Err(e) = token.wait(ACK_LIMIT) {
                self.publish_failed(&token, e, &mut ignored);
            }
        }
        (self.totals, self.requester)
    }

    /// The underlying requester (e.g. to wait for a server first).
    pub fn requester(&mut self) -> &mut Requester {
        &mut self.requester
    }
}
