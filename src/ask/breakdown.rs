//! Where a request's time went, as `ask -v` prints it and `ask -v --json`
//! adds it: the round trip the client measured, split with the figures
//! the server put on its reply (docs/PROTOCOL.md, "User properties").
//!
//! network and broker = round trip - queued - work, clamped at 0 (the
//! clocks are the same only for the duration of one exchange: the server's
//! figures are its own, the round trip is the client's).

use std::time::Duration;

use crate::protocol::ServerTimes;

/// One answered request's time breakdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breakdown {
    /// The answering server's id, when the reply named it.
    pub server_id: Option<String>,
    /// From the last send of the request to its reply, on the client.
    pub round_trip: Duration,
    /// Inside the server, before the work started.
    pub queued: Option<Duration>,
    /// The work itself.
    pub work: Option<Duration>,
    /// How often the request was sent again (after silence, `busy` or a
    /// dropped connection).
    pub resends: u32,
}

impl Breakdown {
    /// The breakdown of a reply carrying `server`'s figures, `round_trip`
    /// after the request's last send, which was its `resends + 1`-th.
    pub fn new(round_trip: Duration, resends: u32, server: ServerTimes) -> Breakdown {
        Breakdown {
            server_id: server.server_id,
            round_trip,
            queued: server.queued,
            work: server.work,
            resends,
        }
    }

    /// The round trip less the server's figures, never below 0; `None`
    /// when the reply carried no figures (an older server).
    pub fn network(&self) -> Option<Duration> {
        let inside = self.queued?.saturating_add(self.work?);
        Some(self.round_trip.saturating_sub(inside))
    }

    /// The line `ask -v` prints on stderr, e.g. `server s-1a2b: network
    /// and broker 1.8 ms, queued 0.2 ms, work 0.1 ms, re-sent 0 times`.
    pub fn line(&self) -> String {
        let server = crate::logging::shorten(self.server_id.as_deref().unwrap_or("?"), 80);
        let resent = match self.resends {
            1 => "re-sent 1 time".to_string(),
            n => format!("re-sent {n} times"),
        };
        match (self.network(), self.queued, self.work) {
            (Some(network), Some(queued), Some(work)) => format!(
                "server {server}: network and broker {}, queued {}, work {}, {resent}",
                ms(network),
                ms(queued),
                ms(work)
            ),
            _ => format!(
                "server {server}: round trip {} (the reply carries no time breakdown), {resent}",
                ms(self.round_trip)
            ),
        }
    }

    /// The figures as a JSON object (whole microseconds; `null` where the
    /// reply carried none), added to `ask -v --json`'s line as `"breakdown"`.
    pub fn json(&self) -> serde_json::Value {
        let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        serde_json::json!({
            "server_id": self.server_id,
            "round_trip_us": us(self.round_trip),
            "network_us": self.network().map(us),
            "queued_us": self.queued.map(us),
            "work_us": self.work.map(us),
            "resends": self.resends,
        })
    }
}

/// Milliseconds for people: two decimals under 1 ms (server work is often
/// tens of microseconds), one above.
fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(queued_us: u64, work_us: u64) -> ServerTimes {
        ServerTimes {
            server_id: Some("s-1a2b".into()),
            queued: Some(Duration::from_micros(queued_us)),
            work: Some(Duration::from_micros(work_us)),
        }
    }

    #[test]
    fn network_is_the_round_trip_less_queued_and_work() {
        let cases = [
            // round trip, queued, work -> network (all microseconds)
            (2_100, 200, 100, 1_800),
            (300, 200, 100, 0),
            // A server's figures above the round trip: clamped at 0.
            (250, 200, 100, 0),
            (5_000, 0, 0, 5_000),
        ];
        for (rt, q, w, network) in cases {
            let b = Breakdown::new(Duration::from_micros(rt), 0, times(q, w));
            assert_eq!(
                b.network(),
                Some(Duration::from_micros(network)),
                "{rt} {q} {w}"
            );
        }
        let no_figures = Breakdown::new(Duration::from_millis(1), 0, ServerTimes::default());
        assert_eq!(no_figures.network(), None);
    }

    #[test]
    fn the_line_names_the_server_and_every_figure() {
        let b = Breakdown::new(Duration::from_micros(2_100), 0, times(200, 100));
        assert_eq!(
            b.line(),
            "server s-1a2b: network and broker 1.8 ms, queued 0.20 ms, work 0.10 ms, re-sent 0 times"
        );
        let once = Breakdown::new(Duration::from_millis(1), 1, ServerTimes::default());
        assert_eq!(
            once.line(),
            "server ?: round trip 1.0 ms (the reply carries no time breakdown), re-sent 1 time"
        );
    }

    #[test]
    fn the_json_has_every_figure_in_microseconds() {
        let b = Breakdown::new(Duration::from_micros(2_100), 2, times(200, 100));
        assert_eq!(
            b.json(),
            serde_json::json!({"server_id": "s-1a2b", "round_trip_us": 2100, "network_us": 1800,
                "queued_us": 200, "work_us": 100, "resends": 2})
        );
        let none = Breakdown::new(Duration::from_micros(7), 0, ServerTimes::default());
        assert_eq!(none.json()["network_us"], serde_json::Value::Null);
    }
}
