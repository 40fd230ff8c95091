//! `serve --metrics ADDR`: the server's statistics (`stats.rs`) as
//! Prometheus/OpenMetrics text on `GET /metrics`, from a small HTTP
//! endpoint on its own thread that takes one connection at a time
//! (`scrape.rs`). Anything else is answered 404. There is no
//! authentication (docs/SECURITY.md): the address is loopback unless the
//! user gave another one.
//!
//! Every scrape takes a fresh snapshot and encodes it with
//! `prometheus-client`, so the figures are the ones published on the
//! stats topic, and nothing here touches the request path.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use super::scrape::{Answer, Endpoint};
use crate::protocol::ServerStats;

/// The content type of the OpenMetrics text format.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A running metrics endpoint; stopped when dropped.
pub struct Metrics {
    _endpoint: Endpoint,
}

/// Labels of one sample: `op`, and `code` or `reason`.
type Labels = Vec<(&'static str, String)>;

impl Metrics {
    /// Listens on `addr` and answers each scrape with `snapshot()`.
    ///
    /// # Errors
    /// The address cannot be bound (in use, not local), or the thread
    /// cannot start.
    pub fn start(
        addr: SocketAddr,
        snapshot: impl Fn() -> ServerStats + Send + 'static,
    ) -> std::io::Result<Metrics> {
        let endpoint = Endpoint::start(addr, move |method, path| answer(method, path, &snapshot))?;
        if addr.ip().is_loopback() {
            tracing::info!(%addr, "metrics on http://{addr}/metrics (no authentication)");
        } else {
            tracing::warn!(%addr, "metrics on http://{addr}/metrics, a non-loopback address, without authentication: anyone who can reach it reads this server's statistics (docs/SECURITY.md)");
        }
        Ok(Metrics {
            _endpoint: endpoint,
        })
    }
}

/// `GET /metrics` (any query string) gets the text; the rest 404.
fn answer(method: &str, path: &str, snapshot: &impl Fn() -> ServerStats) -> Answer {
    if method == "GET" && path == "/metrics" {
        Answer {
            status: 200,
            content_type: CONTENT_TYPE,
            body: text(&snapshot()),
        }
    } else {
        Answer {
            status: 404,
            content_type: "text/plain; charset=utf-8",
            body: "not found: GET /metrics\n".to_string(),
        }
    }
}

/// A family of counters, one per label set.
fn counters() -> Family<Labels, Counter> {
    Family::default()
}

/// The statistics as OpenMetrics text (names `mqttapp_...`, labels `op`,
/// `code`, `reason`; docs/PROTOCOL.md lists them).
pub fn text(stats: &ServerStats) -> String {
    let mut registry = Registry::with_prefix("mqttapp");
    let (requests, replies, busy, dead, dropped, replays) = (
        counters(),
        counters(),
        counters(),
        counters(),
        counters(),
        counters(),
    );
    let queued = Family::<Labels, Gauge>::default();
    let seconds = || Family::<Labels, Gauge<f64, AtomicU64>>::default();
    let (p50, p99, max) = (seconds(), seconds(), seconds());
    let timed = counters();
    for (name, op) in &stats.ops {
        let labels = vec![("op", name.clone())];
        let with = |key, value: &String| vec![("op", name.clone()), (key, value.clone())];
        requests.get_or_create(&labels).inc_by(op.requests);
        for (code, n) in &op.replies {
            replies.get_or_create(&with("code", code)).inc_by(*n);
        }
        busy.get_or_create(&labels).inc_by(op.busy);
        for (reason, n) in &op.dead_letters {
            dead.get_or_create(&with("reason", reason)).inc_by(*n);
        }
        dropped.get_or_create(&labels).inc_by(op.dropped);
        replays.get_or_create(&labels).inc_by(op.replays);
        queued
            .get_or_create(&labels)
            .set(i64::try_from(op.queued).unwrap_or(i64::MAX));
        let h = op.handling_us;
        let secs = |us: u64| us as f64 / 1e6;
        p50.get_or_create(&labels).set(secs(h.p50));
        p99.get_or_create(&labels).set(secs(h.p99));
        max.get_or_create(&labels).set(secs(h.max));
        timed.get_or_create(&labels).inc_by(h.count);
    }
    registry.register("requests", "Requests received", requests);
    registry.register(
        "replies",
        "Replies sent, by code (ok or the error code)",
        replies,
    );
    registry.register("busy", "Requests refused busy without being run", busy);
    registry.register(
        "dead_letters",
        "Requests kept as dead letters without a reply, by reason",
        dead,
    );
    registry.register("dropped", "Requests neither answered nor kept", dropped);
    registry.register(
        "replays",
        "Re-sent edits answered from the reply memory",
        replays,
    );
    registry.register("queued", "Requests received and not finished yet", queued);
    let handling = "Time from a request's arrival to its reply, since the start";
    registry.register_with_unit(
        "handling_p50",
        format!("{handling}: median"),
        Unit::Seconds,
        p50,
    );
    registry.register_with_unit(
        "handling_p99",
        format!("{handling}: 99th percentile"),
        Unit::Seconds,
        p99,
    );
    registry.register_with_unit(
        "handling_max",
        format!("{handling}: longest"),
        Unit::Seconds,
        max,
    );
    registry.register("handled", "Replies whose handling time was measured", timed);
    let uptime = Gauge::<i64>::default();
    uptime.set(i64::try_from(stats.uptime_s).unwrap_or(i64::MAX));
    registry.register_with_unit(
        "uptime",
        "Time since the server started",
        Unit::Seconds,
        uptime,
    );
    let mut out = String::new();
    // Writing into a String cannot fail.
    encode(&mut out, &registry).expect("encoding into a String");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::OpStats;

    #[test]
    fn the_text_names_every_figure_with_its_labels() {
        let mut op = OpStats {
            requests: 7,
            busy: 1,
            ..OpStats::default()
        };
        op.replies.insert("ok".into(), 5);
        op.replies.insert("parse".into(), 1);
        op.dead_letters.insert("expired".into(), 1);
        op.handling_us.p99 = 1500;
        let mut stats = ServerStats {
            uptime_s: 9,
            ..ServerStats::default()
        };
        stats.ops.insert("calc".into(), op);
        let text = text(&stats);
        for line in [
            "mqttapp_requests_total{op=\"calc\"} 7",
            "mqttapp_replies_total{op=\"calc\",code=\"ok\"} 5",
            "mqttapp_replies_total{op=\"calc\",code=\"parse\"} 1",
            "mqttapp_busy_total{op=\"calc\"} 1",
            "mqttapp_dead_letters_total{op=\"calc\",reason=\"expired\"} 1",
            "mqttapp_handling_p99_seconds{op=\"calc\"} 0.0015",
            "mqttapp_uptime_seconds 9",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }
}
