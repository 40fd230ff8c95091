//! One benchmark connection: keeps a window of requests in flight through
//! an [`ask::Pipeline`](crate::ask::Pipeline) and counts everything.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::ProgressBar;

use crate::ask::{AskError, Outcome, Pipeline, Requester};
use crate::config::Config;
use crate::protocol::{Encoding, Reply};

use super::mix::Mix;
use super::Counts;

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
    /// Re-send a request unanswered for this long (then after twice as
    /// long, and so on).
    pub retry: Duration,
    /// Give a request up as lost after this long.
    pub timeout: Duration,
}

/// What one worker counted.
pub struct Tally {
    /// Requests, replies and failures.
    pub counts: Counts,
    /// Latency from first send to reply, microseconds.
    pub latency_us: Histogram<u64>,
}

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
    let mut i = 0;
    loop {
        while pipeline.in_flight() < plan.window
            && i < plan.count
            && Instant::now() < plan.stop_sending
        {
            pipeline.send((), plan.mix.request(plan.worker, i));
            tally.counts.sent += 1;
            i += 1;
        }
        if pipeline.in_flight() == 0 && (i >= plan.count || Instant::now() >= plan.stop_sending) {
            break;
        }
        pipeline.poll(Duration::from_millis(20), &mut outcomes)?;
        for outcome in outcomes.drain(..) {
            tally.count(outcome, progress);
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

impl Tally {
    /// An empty tally.
    pub fn empty() -> Tally {
        Tally {
            counts: Counts::default(),
            // 1 µs to 1 hour at 3 significant digits: valid bounds, cannot fail.
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("valid histogram bounds"),
        }
    }

    fn count(&mut self, outcome: Outcome<()>, progress: &ProgressBar) {
        match outcome {
            Outcome::Answered((), reply, latency) => {
                let micros = u64::try_from(latency.as_micros())
                    .unwrap_or(u64::MAX)
                    .max(1);
                self.latency_us.saturating_record(micros);
                match reply {
                    Some(Reply::Ok(_)) => self.counts.ok += 1,
                    Some(Reply::Err(_)) => self.counts.errors += 1,
                    None => self.counts.undecodable += 1,
                }
                progress.inc(1);
            }
            // Already counted in publish_errors by the pipeline's checker.
            Outcome::Refused((), _) => {}
            Outcome::Lost(()) => self.counts.lost += 1,
            Outcome::Busy(()) => self.counts.busy_gave_up += 1,
            Outcome::Duplicate => self.counts.duplicates += 1,
        }
    }

    /// Adds another worker's counts to this one.
    pub fn merge(&mut self, other: &Tally) {
        self.counts.add(&other.counts);
        let _ = self.latency_us.add(&other.latency_us);
    }
}
