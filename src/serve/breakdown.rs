//! What every reply tells about its server (docs/PROTOCOL.md, "User
//! properties"): the server's id, how long the request waited inside it
//! and how long its work took, and the request's `traceparent`, returned
//! unchanged. Nothing else of a request's user properties is reflected or
//! logged.
//!
//! Cheap on purpose: a few short strings per reply, and a tracing span
//! that costs a level check unless `serve -v` is on.

use std::time::{Duration, Instant};

use tracing::Span;

use crate::mqtt::MessageMeta;
use crate::protocol::{reply_properties, request_traceparent};

/// When the work on a request started and how long it took. For a burst
/// of edits answered together, the burst's start and its whole duration
/// (commit included): each of its replies waited that long.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// When the work started (the end of the request's wait).
    pub started: Instant,
    /// How long the work took.
    pub work: Duration,
}

impl Timing {
    /// The timing of work that started at `started` and ends now.
    pub fn since(started: Instant) -> Timing {
        Timing {
            started,
            work: started.elapsed(),
        }
    }

    /// A request answered without being run (a refusal): no work.
    pub fn not_run() -> Timing {
        Timing {
            started: Instant::now(),
            work: Duration::ZERO,
        }
    }
}

/// Puts the server's properties on a reply to a request that arrived at
/// `arrived`; `traceparent` is the request's valid one (see
/// [`request_traceparent`]), returned unchanged.
pub fn stamp(
    reply: &mut MessageMeta,
    server_id: &str,
    arrived: Instant,
    timing: Timing,
    traceparent: Option<&str>,
) {
    let queued = timing.started.saturating_duration_since(arrived);
    reply.user = reply_properties(server_id, queued, timing.work, traceparent);
}

/// The tracing span of one request that carries a valid `traceparent`:
/// the value is a field, so `serve -v` shows it on the request's log
/// lines. Other requests get no span (`Span::none()`): creating one per
/// request cost ~15 % of a debug server's throughput, logged or not.
/// Invalid values are ignored, never logged.
pub fn request_span(request: &[(String, String)]) -> Span {
    match request_traceparent(request) {
        Some(traceparent) => tracing::debug_span!("request", traceparent),
        None => Span::none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ServerTimes;

    #[test]
    fn queued_is_arrival_to_start_and_work_is_the_measured_work() {
        let arrived = Instant::now();
        let timing = Timing {
            started: arrived + Duration::from_micros(700),
            work: Duration::from_micros(250),
        };
        let mut meta = MessageMeta::default();
        stamp(&mut meta, "s-1", arrived, timing, None);
        let times = ServerTimes::of_reply(&meta.user);
        assert_eq!(times.server_id.as_deref(), Some("s-1"));
        assert_eq!(times.queued, Some(Duration::from_micros(700)));
        assert_eq!(times.work, Some(Duration::from_micros(250)));
        assert_eq!(meta.user.len(), 3, "no traceparent: three properties");
    }

    #[test]
    fn a_start_before_the_arrival_counts_as_no_wait() {
        let arrived = Instant::now() + Duration::from_secs(1);
        let mut meta = MessageMeta::default();
        stamp(&mut meta, "s", arrived, Timing::not_run(), None);
        let times = ServerTimes::of_reply(&meta.user);
        assert_eq!(times.queued, Some(Duration::ZERO));
        assert_eq!(times.work, Some(Duration::ZERO));
    }
}
