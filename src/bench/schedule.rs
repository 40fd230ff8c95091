//! The open-loop schedule of `bench --rate`: when each request is meant to
//! leave, and latency counted from that moment.
//!
//! A closed-loop benchmark sends the next request only when a reply frees
//! a slot, so while the server stalls it stops sending and records one slow
//! request where users would have met hundreds ("coordinated omission").
//! Open loop keeps the schedule, and every latency runs from the intended
//! send time, so a request sent late because the sender was held up still
//! carries the delay (the correction wrk2 makes).

use std::time::Duration;

/// The send times of one connection's requests: the whole run's slots are
/// `1/rate` apart, and connection `worker` of `connections` takes every
/// `connections`-th slot, starting at slot `worker`. Integer nanoseconds,
/// so a long run does not drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    rate: u64,
    connections: u64,
    worker: u64,
}

const NANOS: u128 = 1_000_000_000;

impl Schedule {
    /// `rate` requests per second over all `connections`, for connection
    /// `worker` (0-based). A zero rate or connection count counts as 1.
    pub fn new(rate: u64, connections: usize, worker: usize) -> Schedule {
        Schedule {
            rate: rate.max(1),
            connections: (connections as u64).max(1),
            worker: worker as u64,
        }
    }

    /// When this connection's `k`-th request (0-based) is due, from the
    /// start of the run.
    pub fn offset(&self, k: u64) -> Duration {
        let slot = u128::from(k) * u128::from(self.connections) + u128::from(self.worker);
        let nanos = slot * NANOS / u128::from(self.rate);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// How many of this connection's requests are due at `elapsed` from
    /// the start (their offset is at most `elapsed`).
    pub fn due(&self, elapsed: Duration) -> u64 {
        // Slots 0..=last of the whole run are due.
        let last = elapsed.as_nanos() * u128::from(self.rate) / NANOS;
        let (c, w) = (u128::from(self.connections), u128::from(self.worker));
        if last < w {
            return 0;
        }
        u64::try_from((last - w) / c + 1).unwrap_or(u64::MAX)
    }
}

/// A reply's latency, counted from when its request was meant to leave
/// (`intended`) rather than when it did: both are offsets from the start
/// of the run. A reply can not come before its intended time; zero then.
pub fn latency_from_intended(intended: Duration, answered: Duration) -> Duration {
    answered.saturating_sub(intended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_interleave_over_the_connections_without_drift() {
        let ms = Duration::from_millis;
        // 200/s over 4 connections: slots 5 ms apart, each connection 20 ms.
        let s0 = Schedule::new(200, 4, 0);
        let s3 = Schedule::new(200, 4, 3);
        assert_eq!(s0.offset(0), ms(0));
        assert_eq!(s0.offset(1), ms(20));
        assert_eq!(s3.offset(0), ms(15));
        assert_eq!(s3.offset(2), ms(55));
        // After an hour at 3/s: exact, no float error piling up.
        let s = Schedule::new(3, 1, 0);
        assert_eq!(s.offset(3 * 3600), Duration::from_secs(3600));
        assert_eq!(s.offset(1), Duration::from_nanos(333_333_333));
    }

    #[test]
    fn due_counts_the_requests_whose_time_has_come() {
        let ms = Duration::from_millis;
        let s1 = Schedule::new(200, 4, 1); // slots at 5, 25, 45 ms ...
        assert_eq!(s1.due(ms(0)), 0);
        assert_eq!(s1.due(ms(4)), 0);
        assert_eq!(s1.due(ms(5)), 1);
        assert_eq!(s1.due(ms(24)), 1);
        assert_eq!(s1.due(ms(25)), 2);
        // Over 2 s, the four connections together send rate * duration.
        let total: u64 = (0..4)
            .map(|w| Schedule::new(200, 4, w).due(Duration::from_secs(2) - Duration::from_nanos(1)))
            .sum();
        assert_eq!(total, 400);
        // due and offset agree.
        for k in 0..50 {
            assert_eq!(s1.due(s1.offset(k)), k + 1);
        }
    }

    /// A server stalls for 1 s in a 3 s run at 100/s. A closed-loop sender
    /// waits out the stall and sends the delayed requests afterwards:
    /// timed from their actual send, all but one look fast. Timed from
    /// their intended send time, the hundred requests the stall delayed
    /// show it.
    #[test]
    fn latency_from_the_intended_time_shows_a_stall_that_send_time_hides() {
        let s = Schedule::new(100, 1, 0);
        let service = Duration::from_millis(1);
        let (stall_from, stall_to) = (Duration::from_secs(1), Duration::from_secs(2));
        let mut from_send = hdrhistogram::Histogram::<u64>::new(3).unwrap();
        let mut from_intended = hdrhistogram::Histogram::<u64>::new(3).unwrap();
        let mut free_at = Duration::ZERO;
        for k in 0..300 {
            let intended = s.offset(k);
            // The sender can only send when the previous reply came.
            let sent = intended.max(free_at);
            let answered = if sent >= stall_from && sent < stall_to {
                stall_to + service
            } else {
                sent + service
            };
            free_at = answered;
            let us = |d: Duration| d.as_micros() as u64;
            from_send.record(us(answered - sent)).unwrap();
            from_intended
                .record(us(latency_from_intended(intended, answered)))
                .unwrap();
        }
        // Timed from the send: one slow request in 300, p90 1 ms.
        assert!(from_send.value_at_quantile(0.9) <= 1_100);
        // Timed from the intended time: a third of the run was delayed,
        // by up to the whole second.
        assert!(from_intended.value_at_quantile(0.9) >= 500_000);
        assert!(from_intended.max() >= 990_000);
        assert_eq!(
            latency_from_intended(Duration::from_secs(2), Duration::from_secs(1)),
            Duration::ZERO
        );
    }
}
