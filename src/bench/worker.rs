//! One benchmark connection: keeps a window of requests in flight, matches
//! replies by correlation data, re-sends what goes unanswered, counts
//! everything.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;

use crate::ask::{AskError, Received, Requester};
use crate::config::Config;
use crate::protocol::{Encoding, Reply, Request};

use super::mix::Mix;

/// What one worker does.
pub struct Plan {
    /// Which worker this is (varies the requests).
    pub worker: usize,
    /// Requests to send.
    pub count: u64,
    /// Requests in flight at most.
    pub window: usize,
    /// Stop sending at this moment.
    pub stop_sending: Instant,
    /// What to send.
    pub mix: Mix,
    /// QoS of the requests.
    pub qos: i32,
    /// Re-send a request unanswered for this long.
    pub retry: Duration,
    /// Give a request up as lost after this long.
    pub timeout: Duration,
}

/// What one worker counted.
pub struct Tally {
    /// Requests sent (not counting re-sends).
    pub sent: u64,
    /// Replies that were reply maps with `ok`.
    pub ok: u64,
    /// Replies that were reply maps with `err`.
    pub errors: u64,
    /// Replies that were not reply maps (e.g. a bare echo responder).
    pub undecodable: u64,
    /// Requests never answered within the timeout.
    pub lost: u64,
    /// Replies for requests already answered (or never sent).
    pub duplicates: u64,
    /// Re-sends of unanswered requests.
    pub resent: u64,
    /// Publishes the broker did not acknowledge.
    pub publish_errors: u64,
    /// Latency from first send to reply, microseconds.
    pub latency_us: Histogram<u64>,
}

struct Pending {
    request: Request,
    first_sent: Instant,
    last_sent: Instant,
}

/// Runs one worker to completion.
///
/// # Errors
/// [`AskError`] when the connection cannot be made or comes back.
pub fn run(config: &Config, plan: &Plan, progress: &ProgressBar) -> Result<Tally, AskError> {
    let mut requester = Requester::connect(config, Encoding::Cbor)?;
    requester.set_qos(plan.qos);
    let publish_errors = Arc::new(AtomicU64::new(0));
    let (tokens, checked) = bounded::<paho_mqtt::DeliveryToken>(plan.window.max(1) * 2);
    let errors = publish_errors.clone();
    let checker = std::thread::spawn(move || {
        for token in checked {
            if let Err(e) = token.wait() {
                if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(error = %e, "a request was not acknowledged by the broker");
                }
            }
        }
    });
    let mut tally = Tally::new();
    let mut pending: HashMap<Vec<u8>, Pending> = HashMap::with_capacity(plan.window);
    let mut next_check = Instant::now() + plan.retry.min(Duration::from_millis(100));
    let mut i = 0;
    loop {
        while pending.len() < plan.window && i < plan.count && Instant::now() < plan.stop_sending {
            let request = plan.mix.request(plan.worker, i);
            let correlation = requester.next_correlation();
            let _ = tokens.send(requester.publish_nowait(&request, &correlation));
            let now = Instant::now();
            pending.insert(
                correlation,
                Pending {
                    request,
                    first_sent: now,
                    last_sent: now,
                },
            );
            tally.sent += 1;
            i += 1;
        }
        let done_sending = i >= plan.count || Instant::now() >= plan.stop_sending;
        if pending.is_empty() && done_sending {
            break;
        }
        match requester.next(Instant::now() + Duration::from_millis(20)) {
            Some(Received::Reply(c, reply)) => {
                tally.answered(pending.remove(&c), Some(&reply), progress)
            }
            Some(Received::Undecodable(c)) => tally.answered(pending.remove(&c), None, progress),
            Some(Received::Lost) => {
                requester.reconnect(Instant::now() + plan.timeout)?;
                next_check = Instant::now();
            }
            Some(Received::Status) | None => {}
        }
        if Instant::now() >= next_check {
            resend_or_give_up(&requester, &mut pending, plan, &mut tally, &tokens);
            next_check = Instant::now() + plan.retry.min(Duration::from_millis(100));
        }
    }
    drop(tokens);
    let _ = checker.join();
    tally.publish_errors = publish_errors.load(Ordering::Relaxed);
    requester.close();
    Ok(tally)
}

fn resend_or_give_up(
    requester: &Requester,
    pending: &mut HashMap<Vec<u8>, Pending>,
    plan: &Plan,
    tally: &mut Tally,
    tokens: &crossbeam_channel::Sender<paho_mqtt::DeliveryToken>,
) {
    let now = Instant::now();
    let before = pending.len();
    pending.retain(|_, p| now.duration_since(p.first_sent) < plan.timeout);
    tally.lost += (before - pending.len()) as u64;
    for (correlation, p) in pending.iter_mut() {
        if now.duration_since(p.last_sent) >= plan.retry {
            let _ = tokens.send(requester.publish_nowait(&p.request, correlation));
            p.last_sent = now;
            tally.resent += 1;
        }
    }
}

impl Tally {
    fn new() -> Tally {
        Tally {
            sent: 0,
            ok: 0,
            errors: 0,
            undecodable: 0,
            lost: 0,
            duplicates: 0,
            resent: 0,
            publish_errors: 0,
            // 1 µs to 1 hour at 3 significant digits: cannot fail.
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("valid histogram bounds"),
        }
    }

    fn answered(
        &mut self,
        pending: Option<Pending>,
        reply: Option<&Reply>,
        progress: &ProgressBar,
    ) {
        let Some(p) = pending else {
            self.duplicates += 1;
            return;
        };
        let micros = p.first_sent.elapsed().as_micros().max(1);
        self.latency_us
            .saturating_record(u64::try_from(micros).unwrap_or(u64::MAX));
        match reply {
            Some(Reply::Ok(_)) => self.ok += 1,
            Some(Reply::Err(_)) => self.errors += 1,
            None => self.undecodable += 1,
        }
        progress.inc(1);
    }

    /// Adds another worker's counts to this one.
    pub fn merge(&mut self, other: &Tally) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.errors += other.errors;
        self.undecodable += other.undecodable;
        self.lost += other.lost;
        self.duplicates += other.duplicates;
        self.resent += other.resent;
        self.publish_errors += other.publish_errors;
        let _ = self.latency_us.add(&other.latency_us);
    }

    /// An empty tally to merge into.
    pub fn empty() -> Tally {
        Tally::new()
    }
}
