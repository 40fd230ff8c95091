//! `mqttapp bench`: a bounded, pipelined load against running servers,
//! closed loop or on an open-loop schedule (`--rate`), reporting
//! throughput, latency percentiles, and every request that was not
//! answered exactly once; optionally judged against objectives (`--slo`)
//! and drawn (`--report`).

mod mix;
mod plot;
pub mod schedule;
pub mod slo;
mod worker;

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::ask::{status_grace, AskError, Requester};
use crate::cli::BenchArgs;
use crate::config::Config;
use crate::protocol::Encoding;
pub use mix::Mix;
use schedule::Schedule;
use slo::Verdict;
use worker::{Plan, Tally};

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Bad flags.
    #[error("{0}")]
    Usage(String),
    /// Connection problems or no server.
    #[error(transparent)]
    Ask(#[from] AskError),
    /// The `--report` file could not be drawn or written.
    #[error("cannot write the report {path}: {reason}")]
    Report {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// What a run counts, per worker and in the report. Field names are
/// stable (`--json`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Requests sent (re-sends not counted).
    pub sent: u64,
    /// Replies with `ok`.
    pub ok: u64,
    /// Replies with `err`.
    pub errors: u64,
    /// Replies that were not reply maps (e.g. a bare echo responder).
    pub undecodable: u64,
    /// Requests never answered within the timeout: must be 0.
    pub lost: u64,
    /// Replies to requests already answered (or given up): must be 0
    /// without re-sends.
    pub duplicates: u64,
    /// Re-sends: of requests unanswered within the retry interval
    /// (backing off), and after `busy` replies.
    pub resent: u64,
    /// Publishes the broker did not acknowledge: must be 0.
    pub publish_errors: u64,
    /// `busy` replies (refused at capacity, not applied): not final, each
    /// one is followed by a jittered back-off and a re-send.
    pub busy: u64,
    /// Requests still answered `busy` when their timeout ran out (not in
    /// `lost`): must be 0.
    pub busy_gave_up: u64,
}

impl Counts {
    /// Adds another worker's counts.
    pub fn add(&mut self, o: &Counts) {
        self.sent += o.sent;
        self.ok += o.ok;
        self.errors += o.errors;
        self.undecodable += o.undecodable;
        self.lost += o.lost;
        self.duplicates += o.duplicates;
        self.resent += o.resent;
        self.publish_errors += o.publish_errors;
        self.busy += o.busy;
        self.busy_gave_up += o.busy_gave_up;
    }

    /// Replies received for sent requests.
    pub fn replies(&self) -> u64 {
        self.ok + self.errors + self.undecodable
    }
}

/// The results of a run. Field names are stable (`--json`).
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Connections used.
    pub connections: usize,
    /// In-flight window per connection.
    pub window: usize,
    /// The operation mix.
    pub ops: String,
    /// What was sent and what came back (flattened into the JSON object).
    #[serde(flatten)]
    pub counts: Counts,
    /// Replies received for sent requests.
    pub replies: u64,
    /// Wall time, seconds.
    pub elapsed_s: f64,
    /// Replies per second.
    pub throughput_rps: f64,
    /// Latency from first send to reply.
    pub latency_ms: Latency,
    /// Sending stopped at `--duration` before `--count` requests were sent.
    pub stopped_by_duration: bool,
    /// Open loop at this many requests per second (`--rate`); absent:
    /// closed loop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_rps: Option<u64>,
    /// The warm-up's length, seconds (0: none).
    pub warmup_s: f64,
    /// What the warm-up sent and got back (not in the counts above).
    pub warmup: Counts,
    /// Replies to recorded requests in each second after the warm-up.
    pub per_second: Vec<u64>,
    /// The `--slo` objectives and how each fared (empty without --slo).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub slo: Vec<Verdict>,
    /// The latency curve for `--report`: (percentile as a count of nines,
    /// e.g. 2 for p99, milliseconds).
    #[serde(skip)]
    pub curve: Vec<(f64, f64)>,
}

impl BenchReport {
    /// True when every request was answered exactly once (`busy` replies
    /// that were followed by a final answer are fine).
    pub fn is_clean(&self) -> bool {
        let (c, w) = (&self.counts, &self.warmup);
        c.lost == 0
            && c.duplicates == 0
            && c.publish_errors == 0
            && c.busy_gave_up == 0
            && w.lost == 0
            && w.busy_gave_up == 0
    }

    /// True when an objective of `--slo` was missed.
    pub fn slo_missed(&self) -> bool {
        self.slo.iter().any(|v| !v.pass)
    }
}

/// Runs the benchmark.
///
/// # Errors
/// [`BenchError`] for bad flags, connection failures or no server online.
pub fn run(config: &Config, args: &BenchArgs) -> Result<BenchReport, BenchError> {
    let mix = Mix::parse(&args.ops, args.payload_size).map_err(BenchError::Usage)?;
    let slos = slo::parse_all(&args.slo).map_err(BenchError::Usage)?;
    if let Some(path) = &args.report {
        plot::Format::of(path).map_err(BenchError::Usage)?;
    }
    let duration = args.duration;
    let warmup = args.warmup.unwrap_or(Duration::ZERO);
    if args.connections == 0 || args.connections > 1000 || args.window == 0 || args.window > 65_535
    {
        return Err(BenchError::Usage(
            "--connections must be 1-1000 and --window 1-65535".into(),
        ));
    }
    if !args.no_status_check {
        wait_for_servers(config, &mix)?;
    }
    let start = Instant::now();
    let measure_from = start + warmup;
    let stop_sending = measure_from + duration;
    let progress = progress_bar(args, stop_sending);
    let per_worker = args.count / args.connections as u64;
    let extra = args.count % args.connections as u64;
    let tallies: Vec<Result<Tally, AskError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..args.connections)
            .map(|w| {
                let plan = Plan {
                    worker: w,
                    count: per_worker + u64::from((w as u64) < extra),
                    window: args.window,
                    start,
                    measure_from,
                    stop_sending,
                    schedule: args.rate.map(|r| Schedule::new(r, args.connections, w)),
                    mix: mix.clone(),
                    qos: args.qos,
                    // The first re-send after 2 s, then at 6, 10, 14 s ...
                    // (backing off to every 4 s, whatever the timeout): with
                    // the retry as long as the timeout, a window lost with a
                    // dead broker was never re-sent; with a doubling without
                    // a cap, a request handed to a crashed group member's
                    // session was re-sent too rarely to reach a live one.
                    retry: crate::ask::retry_interval(config.timeout).max(Duration::from_secs(2)),
                    timeout: config.timeout.max(Duration::from_secs(10)),
                };
                let progress = progress.clone();
                scope.spawn(move || worker::run(config, &plan, &progress))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or(Err(AskError::Usage("a worker panicked".into())))
            })
            .collect()
    });
    let elapsed = measure_from.elapsed();
    progress.finish_and_clear();
    let mut total = Tally::empty();
    for tally in tallies {
        total.merge(&tally?);
    }
    let mut report = report(args, &total, elapsed);
    report.stopped_by_duration = report.counts.sent < args.count;
    // A request lost in the warm-up is lost all the same.
    let mut every = total.counts;
    every.add(&total.warmup);
    report.slo = slo::judge(&slos, &total.latency_us, &every);
    Ok(report)
}

/// Draws `report` into `path` (`--report`: .svg or .html), after the
/// results were printed, so a file that cannot be written loses nothing.
///
/// # Errors
/// [`BenchError::Report`] when it cannot be drawn or written.
pub fn write_report(path: &std::path::Path, report: &BenchReport) -> Result<(), BenchError> {
    plot::write(path, report).map_err(|reason| BenchError::Report {
        path: path.display().to_string(),
        reason,
    })
}

/// Fails fast when no server is online for one of the mix's operations.
fn wait_for_servers(config: &Config, mix: &Mix) -> Result<(), AskError> {
    let mut requester = Requester::connect(config, Encoding::Cbor)?;
    let deadline = Instant::now() + status_grace(config.timeout).max(Duration::from_secs(1));
    for op in mix.ops() {
        requester.wait_for_server(op.as_str(), deadline)?;
    }
    requester.close();
    Ok(())
}

/// A bar with a whole-number rate and an ETA that never passes the
/// `--duration` deadline (`stop`).
fn progress_bar(args: &BenchArgs, stop: Instant) -> ProgressBar {
    use std::io::IsTerminal;
    if args.json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    // Open loop sends at most rate x duration.
    let planned = args.rate.map_or(args.count, |rate| {
        args.count
            .min(rate.saturating_mul(args.duration.as_secs().max(1)))
    });
    let bar = ProgressBar::with_draw_target(Some(planned), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} replies  {rate}  {left}")
    {
        let style = style
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{}", rate(state.per_sec()));
                },
            )
            .with_key(
                "left",
                move |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let left =
                        eta_within(state.eta(), stop.saturating_duration_since(Instant::now()));
                    let _ = write!(w, "{left}");
                },
            );
        bar.set_style(style);
    }
    bar
}

/// "6620/s": a whole number of replies per second.
fn rate(per_sec: f64) -> String {
    format!("{:.0}/s", per_sec.max(0.0))
}

/// The time left: the bar's estimate, capped at the `--duration`
/// deadline, where sending stops whatever the count.
fn eta_within(estimate: Duration, until_stop: Duration) -> String {
    let secs = estimate.min(until_stop).as_secs();
    let capped = if until_stop < estimate {
        " (--duration)"
    } else {
        ""
    };
    format!("{}:{:02} left{capped}", secs / 60, secs % 60)
}

fn report(args: &BenchArgs, t: &Tally, elapsed: Duration) -> BenchReport {
    let ms = |us: u64| us as f64 / 1000.0;
    let h = &t.latency_us;
    let replies = t.counts.replies();
    BenchReport {
        connections: args.connections,
        window: args.window,
        ops: args.ops.clone(),
        counts: t.counts,
        replies,
        elapsed_s: elapsed.as_secs_f64(),
        throughput_rps: replies as f64 / elapsed.as_secs_f64().max(1e-9),
        latency_ms: Latency {
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        },
        stopped_by_duration: false,
        rate_rps: args.rate,
        warmup_s: args.warmup.unwrap_or(Duration::ZERO).as_secs_f64(),
        warmup: t.warmup,
        per_second: t.per_second.clone(),
        slo: Vec::new(),
        curve: percentile_curve(h),
    }
}

/// The latency by percentile, as (nines, milliseconds): 0 nines is p0, 1
/// is p90, 2 is p99 ..., up to the nines the sample size can tell (at most
/// 5), in steps of 1/50 of a nine, and the maximum last.
fn percentile_curve(h: &hdrhistogram::Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let top = (h.len() as f64).log10().clamp(1.0, 5.0);
    let steps = (top * 50.0) as u32;
    let mut curve: Vec<(f64, f64)> = (0..steps)
        .map(|i| {
            let nines = f64::from(i) / 50.0;
            let q = 1.0 - 10f64.powf(-nines);
            (nines, h.value_at_quantile(q) as f64 / 1000.0)
        })
        .collect();
    curve.push((top, h.max() as f64 / 1000.0));
    curve
}

/// The report as a table for people.
pub fn table(r: &BenchReport) -> String {
    let (l, c) = (&r.latency_ms, &r.counts);
    format!(
        "connections     {}\nwindow          {}\nops             {}\nsent            {}\n\
         replies         {} (ok {}, error {}, not a reply map {})\nlost            {}\n\
         duplicates      {}\nre-sent         {}\nbusy replies    {} (gave up busy {})\npublish errors  {}\n\
         elapsed         {:.2} s\nthroughput      {:.0} requests/s\n\
         latency ms      p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3}\n",
        r.connections, r.window, r.ops, c.sent, r.replies, c.ok, c.errors, c.undecodable, c.lost,
        c.duplicates, c.resent, c.busy, c.busy_gave_up, c.publish_errors, r.elapsed_s, r.throughput_rps,
        l.p50, l.p90, l.p99, l.p999, l.max, l.mean
    ) + &loop_line(r)
        // Open loop ends at --duration by design: only say so in closed loop.
        + if r.stopped_by_duration && r.rate_rps.is_none() {
            "stopped         at --duration, before --count requests were sent\n"
        } else {
            ""
        }
        + &slo::table(&r.slo)
}

/// How the load was paced, and the warm-up, for the table.
fn loop_line(r: &BenchReport) -> String {
    let mut line = match r.rate_rps {
        Some(rate) => format!(
            "loop            open, {rate} requests/s (latency from each request's intended send time)\n"
        ),
        None => "loop            closed (latency from each request's send)\n".to_string(),
    };
    if r.warmup_s > 0.0 {
        line += &format!(
            "warm-up         {:.1} s, {} requests not recorded ({} lost)\n",
            r.warmup_s, r.warmup.sent, r.warmup.lost
        );
    }
    line
}

#[cfg(test)]
mod progress_tests {
    use super::*;

    #[test]
    fn rate_is_whole_and_eta_stops_at_the_duration() {
        assert_eq!(rate(6619.9647), "6620/s");
        let s = Duration::from_secs;
        assert_eq!(eta_within(s(30), s(100)), "0:30 left");
        assert_eq!(eta_within(s(300), s(61)), "1:01 left (--duration)");
    }
}
