//! Per-operation statistics: what each request became (a reply and its
//! code, a `busy` refusal, a dead letter, a drop), how long replies took,
//! and how many are still inside the server. Published on
//! `<prefix>/v1/stats/<server-id>` by the control loop and served by
//! `--metrics` (`metrics.rs`), both from one [`Stats::snapshot`].
//!
//! The hot path only adds to relaxed atomics; handling times go into one
//! histogram per operation behind a mutex that only the lane answering
//! that operation takes (and the snapshot, every few seconds), so no lock
//! is contended per request. Operations are looked up by name in a small
//! table fixed at start (the operations this server offers, plus
//! [`UNKNOWN_OP`]): a client cannot make it grow by inventing names.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use crate::deadletter::Reason;
use crate::protocol::{Handling, OpStats, ServerStats, Topics, UNKNOWN_OP};

/// The reply codes counted: `ok`, then every error code.
const CODES: [&str; 12] = [
    "ok",
    "bad_request",
    "unknown_op",
    "parse",
    "math",
    "limit",
    "not_found",
    "conflict",
    "io",
    "internal",
    "busy",
    // A user-defined operation's program exited non-zero.
    "failed",
];
/// Where a code this table does not know is counted (shown as `other`).
const OTHER_CODE: usize = CODES.len();
/// The dead-letter reasons counted.
const REASONS: [Reason; 8] = [
    Reason::Undecodable,
    Reason::UnknownOp,
    Reason::NoResponseTopic,
    Reason::Expired,
    Reason::HandlerFailure,
    Reason::ReplyFailed,
    Reason::Shutdown,
    Reason::ResponseTopicNotAllowed,
];
/// Longest handling time the histograms hold, in microseconds (an hour);
/// longer ones are recorded as this.
const MAX_US: u64 = 3_600_000_000;

/// One operation's counters.
struct Slot {
    name: String,
    requests: AtomicU64,
    replies: [AtomicU64; CODES.len() + 1],
    busy: AtomicU64,
    /// By [`REASONS`], then one for reasons not listed (`other`).
    dead: [AtomicU64; REASONS.len() + 1],
    dropped: AtomicU64,
    handling: Mutex<Histogram<u64>>,
}

impl Slot {
    fn new(name: &str) -> Slot {
        Slot {
            name: name.to_string(),
            requests: AtomicU64::new(0),
            replies: Default::default(),
            busy: AtomicU64::new(0),
            dead: Default::default(),
            dropped: AtomicU64::new(0),
            // Two significant digits over 1 us .. 1 h: about 30 KB.
            handling: Mutex::new(
                Histogram::new_with_bounds(1, MAX_US, 2).expect("valid histogram bounds"),
            ),
        }
    }
}

/// The server's counters, shared by admission, the lanes, the refusal
/// thread and whoever takes a snapshot.
pub struct Stats {
    topics: Topics,
    started: Instant,
    /// The served operations, then [`UNKNOWN_OP`] last.
    slots: Vec<Slot>,
    /// Edits answered from the reply memory (counted by the operations).
    replays: Arc<AtomicU64>,
}

fn add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Stats {
    /// Counters for the operations named `ops` (the ones this server
    /// offers) under `topics`; `replays` is the operations' count of
    /// edits answered from the reply memory.
    pub fn new(topics: Topics, ops: &[&str], replays: Arc<AtomicU64>) -> Stats {
        let mut slots: Vec<Slot> = ops.iter().map(|name| Slot::new(name)).collect();
        slots.push(Slot::new(UNKNOWN_OP));
        Stats {
            topics,
            started: Instant::now(),
            slots,
            replays,
        }
    }

    /// The slot of a request topic's operation.
    fn slot(&self, topic: &str) -> &Slot {
        let name = self.topics.op_name(topic).unwrap_or("");
        let last = self.slots.len() - 1;
        self.slots[..last]
            .iter()
            .find(|s| s.name == name)
            .unwrap_or(&self.slots[last])
    }

    /// A request arrived on `topic`.
    pub fn received(&self, topic: &str) {
        add(&self.slot(topic).requests);
    }

    /// A reply with `code` (`None`: ok) went out for a request on `topic`
    /// that arrived at `arrived` (`None`: refused unrun, not timed).
    pub fn replied(&self, topic: &str, code: Option<&str>, arrived: Option<Instant>) {
        let slot = self.slot(topic);
        let code = code.unwrap_or("ok");
        let i = CODES.iter().position(|c| *c == code).unwrap_or(OTHER_CODE);
        add(&slot.replies[i]);
        if let Some(arrived) = arrived {
            let us = u64::try_from(arrived.elapsed().as_micros()).unwrap_or(MAX_US);
            let mut h = slot.handling.lock().unwrap_or_else(|p| p.into_inner());
            h.saturating_record(us.clamp(1, MAX_US));
        }
    }

    /// A request on `topic` was refused `busy` without being run.
    pub fn refused_busy(&self, topic: &str) {
        add(&self.slot(topic).busy);
    }

    /// A request on `topic` was kept as a dead letter without a reply.
    pub fn dead_letter(&self, topic: &str, reason: Reason) {
        let i = REASONS
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(REASONS.len());
        add(&self.slot(topic).dead[i]);
    }

    /// A request on `topic` was neither answered nor kept.
    pub fn dropped(&self, topic: &str) {
        add(&self.slot(topic).dropped);
    }

    /// The figures now, for `server`.
    pub fn snapshot(&self, server: &str) -> ServerStats {
        let mut stats = ServerStats {
            server: server.to_string(),
            time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            uptime_s: self.started.elapsed().as_secs(),
            ..ServerStats::default()
        };
        for slot in &self.slots {
            let mut op = OpStats::default();
            // Outcomes first, then requests: a request is counted before
            // its outcome, so `queued` is never negative.
            for (i, n) in slot.replies.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    let code = CODES.get(i).copied().unwrap_or("other");
                    op.replies.insert(code.to_string(), n);
                }
            }
            for (i, n) in slot.dead.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    let reason = REASONS.get(i).map_or("other", |r| r.as_str());
                    op.dead_letters.insert(reason.to_string(), n);
                }
            }
            op.busy = slot.busy.load(Ordering::Relaxed);
            op.dropped = slot.dropped.load(Ordering::Relaxed);
            op.requests = slot.requests.load(Ordering::Relaxed);
            op.queued = op.requests.saturating_sub(op.finished());
            if slot.name == "edit" {
                op.replays = self.replays.load(Ordering::Relaxed);
            }
            let h = slot.handling.lock().unwrap_or_else(|p| p.into_inner());
            op.handling_us = Handling {
                count: h.len(),
                p50: h.value_at_quantile(0.5),
                p99: h.value_at_quantile(0.99),
                max: h.max(),
            };
            stats.ops.insert(slot.name.clone(), op);
        }
        stats
    }
}

/// How long a stats message stays retained, in seconds: three publishing
/// intervals, so a server that died leaves no figures behind for long (a
/// minute when they are published on pings only).
pub fn expiry_secs(interval: Duration) -> u32 {
    if interval.is_zero() {
        return 60;
    }
    let secs = interval.as_secs().saturating_mul(3);
    u32::try_from(secs).unwrap_or(u32::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;

    fn stats() -> Stats {
        Stats::new(
            Topics::new("p"),
            &["calc", "echo", "edit"],
            Arc::new(AtomicU64::new(0)),
        )
    }

    #[test]
    fn every_outcome_is_counted_under_its_operation() {
        let s = stats();
        for _ in 0..5 {
            s.received("p/v1/req/calc");
        }
        s.replied("p/v1/req/calc", None, Some(Instant::now()));
        s.replied("p/v1/req/calc", Some("parse"), Some(Instant::now()));
        s.replied("p/v1/req/calc", Some("limit"), None);
        s.refused_busy("p/v1/req/calc");
        s.received("p/v1/req/echo");
        s.dead_letter("p/v1/req/echo", Reason::Expired);
        let snap = s.snapshot("s1");
        let calc = &snap.ops["calc"];
        assert_eq!(calc.requests, 5);
        assert_eq!(calc.replies["ok"], 1);
        assert_eq!(calc.replies["parse"], 1);
        assert_eq!(calc.replies["limit"], 1);
        assert_eq!(calc.busy, 1);
        assert_eq!(calc.queued, 1, "one not finished");
        assert_eq!(calc.handling_us.count, 2, "refusals are not timed");
        let echo = &snap.ops["echo"];
        assert_eq!(echo.dead_letters["expired"], 1);
        assert_eq!(echo.queued, 0);
        assert_eq!(snap.ops["edit"], OpStats::default());
        assert_eq!(snap.server, "s1");
    }

    #[test]
    fn stats_expire_after_three_intervals_or_a_minute_on_pings_only() {
        assert_eq!(expiry_secs(Duration::from_secs(10)), 30);
        assert_eq!(expiry_secs(Duration::from_millis(200)), 1);
        assert_eq!(expiry_secs(Duration::ZERO), 60);
        assert_eq!(expiry_secs(Duration::from_secs(u64::MAX)), u32::MAX);
    }

    #[test]
    fn invented_operation_names_share_one_slot() {
        let s = stats();
        for topic in ["p/v1/req/nope", "p/v1/req/other", "junk", "p/v1/req/a/b"] {
            s.received(topic);
            s.replied(topic, Some("unknown_op"), None);
        }
        let snap = s.snapshot("s");
        assert_eq!(snap.ops.len(), 4, "{:?}", snap.ops.keys());
        assert_eq!(snap.ops[UNKNOWN_OP].requests, 4);
        assert_eq!(snap.ops[UNKNOWN_OP].replies["unknown_op"], 4);
    }

    #[test]
    fn codes_unknown_to_the_table_are_counted_as_other() {
        let s = stats();
        s.received("p/v1/req/calc");
        s.replied("p/v1/req/calc", Some("from_the_future"), None);
        let calc = &s.snapshot("s").ops["calc"];
        assert_eq!(calc.replies["other"], 1);
        assert_eq!(calc.queued, 0);
    }

    #[test]
    fn every_error_code_has_its_own_counter() {
        // `failed` comes with user-defined operations.
        for code in &CODES[1..] {
            assert!(
                ErrorCode::parse(code).is_some() || *code == "failed",
                "{code}"
            );
        }
    }

    #[test]
    fn replays_are_the_edit_operations_and_handling_times_have_percentiles() {
        let replays = Arc::new(AtomicU64::new(0));
        let s = Stats::new(Topics::new("p"), &["calc", "edit"], replays.clone());
        replays.fetch_add(3, Ordering::Relaxed);
        let earlier = Instant::now() - std::time::Duration::from_millis(20);
        s.received("p/v1/req/edit");
        s.replied("p/v1/req/edit", None, Some(earlier));
        let snap = s.snapshot("s");
        let edit = &snap.ops["edit"];
        assert_eq!(edit.replays, 3);
        assert_eq!(snap.ops["calc"].replays, 0);
        assert!(edit.handling_us.p50 >= 19_000, "{:?}", edit.handling_us);
        assert_eq!(edit.handling_us.count, 1);
        assert!(edit.handling_us.max >= edit.handling_us.p99);
    }
}
