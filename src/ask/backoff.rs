//! When to send a request again: after silence, on a schedule of its own
//! (1, 2, 4 s apart, then every 4 s: a 30 s timeout re-sends at 1, 3, 7,
//! 11, 15 ... 27 s), and after a `busy` reply, after a short jittered
//! back-off that also doubles. A fixed short interval would multiply an
//! overloaded server's queue by the number of re-sends; synchronized
//! re-sends of many clients would arrive as one burst, hence the jitter.
//! The cap keeps re-sending within a long timeout: a request the broker
//! handed to a crashed group member's session is lost, and only a re-send
//! that comes after that session expired (or goes to another member) gets
//! it answered, however long the client is willing to wait.
//!
//! Pure time arithmetic, no I/O: the one-shot exchange and the pipeline
//! both keep one [`Attempts`] per request.

use std::time::{Duration, Instant};

use crate::ids;
use crate::protocol::{ErrorBody, ErrorCode, Reply};

/// First back-off after a `busy` reply; it doubles with each further one.
const BUSY_FIRST: Duration = Duration::from_millis(100);
/// Longest back-off after a `busy` reply.
const BUSY_MAX: Duration = Duration::from_secs(2);
/// Doublings after which the busy back-off stops growing (bounds the
/// shift).
const MAX_DOUBLINGS: u32 = 16;
/// Longest silence between two sends of a request (unless the first
/// interval is longer).
pub const MAX_SILENCE: Duration = Duration::from_secs(4);

/// The interval before the first re-send: 1 s, or a third of a timeout
/// shorter than 3 s (so a short timeout still gets two re-sends).
pub fn first_resend(timeout: Duration) -> Duration {
    (timeout / 3).min(Duration::from_secs(1))
}

/// How long to wait after the `sends`-th send (1-based) before sending
/// again when no reply came: `first`, then twice that, and so on up to
/// [`MAX_SILENCE`] (or `first`, if longer).
pub fn silence_interval(first: Duration, sends: u32) -> Duration {
    first
        .saturating_mul(1 << sends.saturating_sub(1).min(MAX_DOUBLINGS))
        .min(MAX_SILENCE.max(first))
}

/// The back-off before sending again after the `busy`-th `busy` reply
/// (1-based), before jitter: 100 ms doubling up to 2 s.
pub fn busy_backoff(busy: u32) -> Duration {
    BUSY_FIRST
        .saturating_mul(1 << busy.saturating_sub(1).min(MAX_DOUBLINGS))
        .min(BUSY_MAX)
}

/// `d` scaled by a random factor in [0.5, 1): spreads the re-sends of
/// clients that were refused at the same moment.
pub fn jitter(d: Duration, random: u64) -> Duration {
    let half = d / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(random % nanos.max(1))
}

/// The body of a `busy` reply: refused at capacity, not applied, so not
/// the request's final answer.
pub fn busy_body(reply: &Reply) -> Option<&ErrorBody> {
    match reply {
        Reply::Err(e) if e.error_code() == Some(ErrorCode::Busy) => Some(e),
        _ => None,
    }
}

/// One request's sends and `busy` replies, and when it is due again.
#[derive(Debug, Clone)]
pub struct Attempts {
    first: Duration,
    sends: u32,
    busy: u32,
    due: Instant,
}

impl Attempts {
    /// A request not yet sent; `first` is the interval before its first
    /// re-send.
    pub fn new(first: Duration, now: Instant) -> Attempts {
        Attempts {
            first,
            sends: 0,
            busy: 0,
            due: now,
        }
    }

    /// Records a send at `now`; returns when to send again if no reply comes.
    pub fn sent(&mut self, now: Instant) -> Instant {
        self.sends += 1;
        self.due = now + silence_interval(self.first, self.sends);
        self.due
    }

    /// Records a `busy` reply at `now`; returns when to send again.
    pub fn busy(&mut self, now: Instant) -> Instant {
        self.busy += 1;
        self.due = now + jitter(busy_backoff(self.busy), ids::random_u64());
        self.due
    }

    /// When the request is due to be sent again.
    pub fn due(&self) -> Instant {
        self.due
    }

    /// Sends so far (the first included).
    pub fn sends(&self) -> u32 {
        self.sends
    }

    /// `busy` replies so far.
    pub fn busy_replies(&self) -> u32 {
        self.busy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// When re-sends happen (seconds after the first send) for `timeout`
    /// when no reply ever comes.
    fn resend_times(timeout: Duration) -> Vec<f64> {
        let start = Instant::now();
        let mut a = Attempts::new(first_resend(timeout), start);
        let mut at = start;
        let mut out = Vec::new();
        loop {
            at = a.sent(at);
            if at >= start + timeout {
                return out;
            }
            out.push(at.duration_since(start).as_secs_f64());
        }
    }

    #[test]
    fn silent_resends_double_whatever_the_timeout() {
        let table: &[(u64, &[f64])] = &[
            (30, &[1.0, 3.0, 7.0, 11.0, 15.0, 19.0, 23.0, 27.0]),
            (10, &[1.0, 3.0, 7.0]),
            (5, &[1.0, 3.0]),
            (3, &[1.0]),
        ];
        for (timeout, expected) in table {
            assert_eq!(
                &resend_times(secs(*timeout)),
                expected,
                "timeout {timeout} s"
            );
        }
    }

    #[test]
    fn a_short_timeout_still_gets_a_resend() {
        // 2 s: the first re-send after 2/3 s, not after 1 s.
        let t = resend_times(secs(2));
        assert!(!t.is_empty() && (t[0] - 2.0 / 3.0).abs() < 1e-6, "{t:?}");
        assert!(t.iter().all(|&s| s < 2.0), "{t:?}");
    }

    #[test]
    fn the_silence_interval_stops_growing_at_its_cap() {
        assert_eq!(silence_interval(secs(1), 1), secs(1));
        assert_eq!(silence_interval(secs(1), 3), secs(4));
        assert_eq!(silence_interval(secs(1), 4), MAX_SILENCE);
        assert_eq!(silence_interval(secs(1), u32::MAX), MAX_SILENCE);
        // A first interval longer than the cap is kept, never shortened.
        assert_eq!(silence_interval(secs(6), 3), secs(6));
    }

    #[test]
    fn a_long_timeout_keeps_resending_at_most_max_silence_apart() {
        let t = resend_times(secs(120));
        assert!(t.len() > 25, "{t:?}");
        assert!(
            t.windows(2)
                .all(|w| w[1] - w[0] <= MAX_SILENCE.as_secs_f64()),
            "{t:?}"
        );
    }

    #[test]
    fn busy_backoff_doubles_up_to_its_cap() {
        let ms: Vec<u128> = (1..=7).map(|n| busy_backoff(n).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(busy_backoff(u32::MAX), BUSY_MAX);
    }

    #[test]
    fn jitter_stays_within_half_to_full() {
        let d = Duration::from_millis(400);
        for r in [0, 1, 12_345, u64::MAX / 3, u64::MAX] {
            let j = jitter(d, r);
            assert!(j >= d / 2 && j < d, "{j:?}");
        }
        assert_eq!(jitter(Duration::ZERO, 7), Duration::ZERO);
    }

    #[test]
    fn a_busy_reply_makes_the_request_due_soon_and_counts() {
        let now = Instant::now();
        let mut a = Attempts::new(secs(1), now);
        a.sent(now);
        let due = a.busy(now);
        assert!(due >= now + Duration::from_millis(50) && due < now + BUSY_FIRST);
        assert_eq!((a.sends(), a.busy_replies()), (1, 1));
    }

    #[test]
    fn only_a_busy_error_is_not_final() {
        let busy = Reply::error(ErrorCode::Busy, "queue full");
        assert!(busy_body(&busy).is_some());
        assert!(busy_body(&Reply::error(ErrorCode::Conflict, "rev")).is_none());
    }

    #[test]
    fn attempts_count_every_send_and_busy_reply_and_keep_the_due_time() {
        let now = Instant::now();
        let mut a = Attempts::new(secs(1), now);
        assert_eq!((a.sends(), a.busy_replies(), a.due()), (0, 0, now));
        a.sent(now);
        let due = a.sent(now);
        assert_eq!((due, a.due()), (now + secs(2), now + secs(2)));
        a.busy(now);
        let due = a.busy(now);
        assert_eq!(a.due(), due);
        assert!(due >= now + Duration::from_millis(100) && due < now + secs(1));
        assert_eq!((a.sends(), a.busy_replies()), (2, 2));
    }
}
