//! `mqttapp status --stats`: every server's statistics
//! (`<prefix>/v1/stats/<server-id>`, docs/PROTOCOL.md "Statistics").
//!
//! The retained figures arrive at once; a ping then asks every live server
//! for fresh ones (servers answer within a second), and the newest message
//! of each server wins. The wait is bounded by `--wait` and by the ping's
//! answer time.
//!
//! Figures count only next to their server's online status with the same
//! `instance` (the statuses are subscribed first, so the broker sends the
//! retained ones before the retained figures): figures anyone else
//! publishes for a server that is not online, or with another instance,
//! are not shown and not kept, so a flood of them costs nothing but
//! reading.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::ids::random_u64;
use crate::mqtt::{self, Arrival, Client, MqttError, Subscription};
use crate::output::Columns;
use crate::protocol::{OpStats, ServerStats, Status, Topics, UNKNOWN_OP};

/// Collects the statistics under `config.prefix`, sorted by server id.
/// Messages that are not statistics are skipped.
///
/// # Errors
/// [`MqttError`] when the broker cannot be reached or refuses.
pub fn collect(config: &Config, wait: Duration) -> Result<Vec<ServerStats>, MqttError> {
    let client_id = format!("mqttapp-status-{:016x}", random_u64());
    let patience = wait.max(Duration::from_secs(1));
    let client = Client::connect_oneshot(
        &config.connection,
        &client_id,
        patience.min(Duration::from_secs(10)),
    )?;
    let rx = client.arrivals();
    let topics = Topics::new(&config.prefix);
    let subs = [topics.status_filter(), topics.stats_filter()].map(|filter| Subscription {
        filter,
        qos: mqtt::QOS,
        retained_only_if_new: false,
    });
    mqtt::block_on(client.subscribe(&subs), patience).unwrap_or(Err(MqttError::timed_out()))?;
    crate::broker::ping::send(&client, &config.prefix);
    let deadline = Instant::now() + wait.min(crate::broker::ping::ANSWER_WITHIN);
    let (status_topic, stats_topic) = (topics.status(""), topics.stats(""));
    let mut online: BTreeMap<String, String> = BTreeMap::new();
    let mut servers = BTreeMap::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = match rx.recv_timeout(left) {
            Ok(Arrival::Message(msg)) => msg,
            Ok(_) | Err(_) => break,
        };
        if let Some(id) = msg.topic.strip_prefix(&status_topic) {
            match online_instance(&msg.payload) {
                Some(instance) => online.insert(id.to_string(), instance),
                None => online.remove(id),
            };
        } else if let Some(id) = msg.topic.strip_prefix(&stats_topic) {
            if let Some(stats) = vouched(id, &msg.payload, &online) {
                servers.insert(id.to_string(), stats);
            }
        }
    }
    client.disconnect(Duration::ZERO);
    // A server that went offline meanwhile is not shown.
    servers.retain(|id, _| online.contains_key(id));
    Ok(servers.into_values().collect())
}

/// The instance of an online status, or None (offline, removed, not a
/// status, or without an instance).
fn online_instance(payload: &[u8]) -> Option<String> {
    let status = Status::decode(payload).ok()?;
    status.is_online().then_some(status.instance).flatten()
}

/// The figures of server `id` when they carry the instance of its online
/// status (`online`: instance by server id); the topic names the server,
/// whatever the payload says.
fn vouched(id: &str, payload: &[u8], online: &BTreeMap<String, String>) -> Option<ServerStats> {
    let mut stats = ServerStats::decode(payload).ok()?;
    let instance = online.get(id)?;
    if stats.instance.as_ref() != Some(instance) {
        return None;
    }
    stats.server = id.to_string();
    Some(stats)
}

/// One row per server and operation (requests for operations a server
/// does not offer only when there were some).
pub fn table(servers: &[ServerStats]) -> String {
    let mut rows: Vec<[String; 12]> = Vec::new();
    for s in servers {
        for (name, op) in &s.ops {
            if name == UNKNOWN_OP && op.requests == 0 {
                continue;
            }
            rows.push(row(s, name, op));
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    Columns::table(
        &[
            "SERVER",
            "UPTIME",
            "OP",
            "REQUESTS",
            "OK",
            "ERRORS",
            "BUSY",
            "DEAD",
            "REPLAYS",
            "QUEUED",
            "P50/P99/MAX",
            "DROPPED",
        ],
        &rows,
    )
}

fn row(s: &ServerStats, name: &str, op: &OpStats) -> [String; 12] {
    let ok = op.replies.get("ok").copied().unwrap_or(0);
    let h = op.handling_us;
    [
        s.server.clone(),
        humantime::format_duration(Duration::from_secs(s.uptime_s)).to_string(),
        name.to_string(),
        op.requests.to_string(),
        ok.to_string(),
        (op.replied() - ok).to_string(),
        op.busy.to_string(),
        op.dead_letters.values().sum::<u64>().to_string(),
        op.replays.to_string(),
        op.queued.to_string(),
        format!("{}/{}/{}", millis(h.p50), millis(h.p99), millis(h.max)),
        op.dropped.to_string(),
    ]
}

/// Microseconds as milliseconds, short: `0.42ms`, `12ms`.
fn millis(us: u64) -> String {
    match us {
        0 => "-".to_string(),
        us if us < 10_000 => format!("{:.2}ms", us as f64 / 1000.0),
        us => format!("{}ms", us / 1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: &str, instance: Option<&str>) -> Vec<u8> {
        Status {
            state: state.into(),
            ops: vec!["calc".into()],
            version: "0".into(),
            since: 0,
            group: None,
            instance: instance.map(Into::into),
            data_dir: None,
        }
        .encode()
    }

    fn figures(server: &str, instance: Option<&str>) -> Vec<u8> {
        ServerStats {
            server: server.into(),
            instance: instance.map(Into::into),
            ..ServerStats::default()
        }
        .encode()
    }

    #[test]
    fn only_an_online_status_with_an_instance_vouches() {
        assert_eq!(
            online_instance(&status(Status::ONLINE, Some("i1"))),
            Some("i1".to_string())
        );
        assert_eq!(online_instance(&status(Status::OFFLINE, Some("i1"))), None);
        assert_eq!(online_instance(&status(Status::ONLINE, None)), None);
        assert_eq!(online_instance(b""), None);
        assert_eq!(online_instance(b"not cbor"), None);
    }

    #[test]
    fn figures_count_only_with_their_servers_online_instance() {
        let online = BTreeMap::from([("w1".to_string(), "i1".to_string())]);
        let shown = vouched("w1", &figures("claimed", Some("i1")), &online).unwrap();
        assert_eq!(shown.server, "w1", "the topic names the server");
        assert!(vouched("w1", &figures("w1", Some("i2")), &online).is_none());
        assert!(vouched("w1", &figures("w1", None), &online).is_none());
        assert!(vouched("ghost", &figures("ghost", Some("i1")), &online).is_none());
        assert!(vouched("w1", b"\xff", &online).is_none());
    }

    #[test]
    fn the_table_has_a_row_per_server_and_operation() {
        let mut calc = OpStats {
            requests: 4,
            busy: 1,
            ..OpStats::default()
        };
        calc.replies.insert("ok".into(), 2);
        calc.replies.insert("parse".into(), 1);
        calc.handling_us.p50 = 420;
        calc.handling_us.p99 = 12_300;
        calc.handling_us.max = 12_300;
        let mut s = ServerStats {
            server: "w1".into(),
            uptime_s: 61,
            ..ServerStats::default()
        };
        s.ops.insert("calc".into(), calc);
        s.ops.insert(UNKNOWN_OP.into(), OpStats::default());
        let text = table(&[s]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "w1",
                "1m",
                "1s",
                "calc",
                "4",
                "2",
                "1",
                "1",
                "0",
                "0",
                "0",
                "0.42ms/12ms/12ms",
                "0"
            ]
        );
        assert_eq!(table(&[]), "");
    }
}
