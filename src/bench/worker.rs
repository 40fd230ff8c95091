//! One benchmark connection: keeps a window of requests in flight through
//! an [`ask::Pipeline`](crate::ask::Pipeline) and counts everything.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::ProgressBar;

use crate::ask::{AskError, Outcome, Pipeline, Requester};
use crate::config::Config;
use crate::protocol::{Encoding, Reply};

use super::mix::Mix;
use super::schedule::{latency_from_intended, Schedule};
use super::Counts;

/// What one worker does.
pub struct Plan {
    /// Which worker this is (varies the requests).
    pub worker: usize,
    /// Requests to send after the warm-up.
    pub count: u64,
    /// Requests in flight at most.
    pub window: usize,
    /// When the run started (the schedule's zero).
    pub start: Instant,
    /// Requests sent from this moment on are recorded (the warm-up ends).
    pub measure_from: Instant,
    /// Stop sending at this moment.
    pub stop_sending: Instant,
    /// Open loop: when each request is due. `None`: closed loop.
    pub schedule: Option<Schedule>,
    /// What to send.
    pub mix: Mix,
    /// QoS of the requests.
    pub qos: i32,
    /// Re-send a request unanswered for this long (then after twice as
    /// long, and so on).
    pub retry: Duration,
    /// Give a request up as lost after this long.
    pub timeout: Duration,
}

/// What a request carries through the pipeline: when it was meant to
/// leave (the schedule's time in open loop, its send in closed loop) and
/// whether it is recorded.
#[derive(Debug, Clone, Copy)]
struct Sent {
    intended: Instant,
    measured: bool,
}

/// What one worker counted.
pub struct Tally {
    /// Requests, replies and failures of the recorded requests (and every
    /// duplicate and re-send: they carry no hint of their phase).
    pub counts: Counts,
    /// The same for the warm-up's requests.
    pub warmup: Counts,
    /// Latency from the intended send time to the reply, microseconds.
    pub latency_us: Histogram<u64>,
    /// Replies to recorded requests in each second after the warm-up.
    pub per_second: Vec<u64>,
}

/// Longest run drawn second by second (a day); later replies are counted
/// in the totals only.
const SECONDS_DRAWN: usize = 86_400;

/// Longest wait for a reply between two checks of the clock.
const TICK: Duration = Duration::from_millis(20);

/// Runs one worker to completion.
///
/// # Errors
/// [`AskError`] when the connection cannot be made or comes back.
pub fn run(config: &Config, plan: &Plan, progress: &ProgressBar) -> Result<Tally, AskError> {
    let mut requester = Requester::connect(config, Encoding::Cbor)?;
    requester.set_qos(plan.qos);
    let mut pipeline = Pipeline::new(requester, plan.window, plan.retry, plan.timeout);
    let mut tally = Tally::empty();
    let mut outcomes = Vec::new();
    // k: requests sent (the schedule's index); recorded: those after the warm-up.
    let (mut k, mut recorded) = (0u64, 0u64);
    loop {
        let now = Instant::now();
        let next = plan.intended(k, now);
        let done_sending = recorded >= plan.count || next >= plan.stop_sending;
        if !done_sending && next <= now && pipeline.in_flight() < plan.window {
            let sent = Sent {
                intended: next,
                measured: next >= plan.measure_from,
            };
            pipeline.send(sent, plan.mix.request(plan.worker, k));
            if sent.measured {
                tally.counts.sent += 1;
                recorded += 1;
            } else {
                tally.warmup.sent += 1;
            }
            k += 1;
            continue;
        }
        if done_sending && pipeline.in_flight() == 0 {
            break;
        }
        // Wait for replies until the next request is due (at once when
        // it is and only a full window holds it back: a reply frees it).
        let wait = if done_sending || pipeline.in_flight() >= plan.window {
            TICK
        } else {
            next.saturating_duration_since(Instant::now()).min(TICK)
        };
        pipeline.poll(wait, &mut outcomes)?;
        for outcome in outcomes.drain(..) {
            tally.count(outcome, plan.measure_from, progress);
        }
    }
    let (totals, requester) = pipeline.finish();
    tally.counts.resent = totals.resent;
    tally.counts.publish_errors = totals.publish_errors;
    tally.counts.busy = totals.busy;
    // `mqttapp bench` exits right after; paho's teardown (up to a second)
    // would otherwise count as benchmark time.
    requester.abandon();
    Ok(tally)
}

impl Plan {
    /// When request `k` is meant to leave: its slot in open loop, `now`
    /// (as soon as the window allows) in closed loop.
    fn intended(&self, k: u64, now: Instant) -> Instant {
        match &self.schedule {
            Some(s) => self.start + s.offset(k),
            None => now,
        }
    }
}

impl Tally {
    /// An empty tally.
    pub fn empty() -> Tally {
        Tally {
            counts: Counts::default(),
            warmup: Counts::default(),
            per_second: Vec::new(),
            // 1 µs to 1 hour at 3 significant digits: valid bounds, cannot fail.
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("valid histogram bounds"),
        }
    }

    fn count(&mut self, outcome: Outcome<Sent>, measure_from: Instant, progress: &ProgressBar) {
        let (sent, counts) = match outcome {
            Outcome::Duplicate => {
                self.counts.duplicates += 1;
                return;
            }
            Outcome::Answered(sent, ..)
            | Outcome::Lost(sent)
            | Outcome::Busy(sent)
            | Outcome::Refused(sent, _) => {
                let counts = if sent.measured {
                    &mut self.counts
                } else {
                    &mut self.warmup
                };
                (sent, counts)
            }
        };
        match outcome {
            Outcome::Answered(_, reply, _) => {
                match reply {
                    Some(Reply::Ok(_)) => counts.ok += 1,
                    Some(Reply::Err(_)) => counts.errors += 1,
                    None => counts.undecodable += 1,
                }
                if sent.measured {
                    let now = Instant::now();
                    let latency = latency_from_intended(
                        sent.intended.saturating_duration_since(measure_from),
                        now.saturating_duration_since(measure_from),
                    );
                    let micros = u64::try_from(latency.as_micros())
                        .unwrap_or(u64::MAX)
                        .max(1);
                    self.latency_us.saturating_record(micros);
                    let second = now.saturating_duration_since(measure_from).as_secs() as usize;
                    if second < SECONDS_DRAWN {
                        if self.per_second.len() <= second {
                            self.per_second.resize(second + 1, 0);
                        }
                        self.per_second[second] += 1;
                    }
                    progress.inc(1);
                }
            }
            // Already counted in publish_errors by the pipeline's checker.
            Outcome::Refused(..) | Outcome::Duplicate => {}
            Outcome::Lost(_) => counts.lost += 1,
            Outcome::Busy(_) => counts.busy_gave_up += 1,
        }
    }

    /// Adds another worker's counts to this one.
    pub fn merge(&mut self, other: &Tally) {
        self.counts.add(&other.counts);
        self.warmup.add(&other.warmup);
        if self.per_second.len() < other.per_second.len() {
            self.per_second.resize(other.per_second.len(), 0);
        }
        for (mine, theirs) in self.per_second.iter_mut().zip(&other.per_second) {
            *mine += theirs;
        }
        let _ = self.latency_us.add(&other.latency_us);
    }
}
