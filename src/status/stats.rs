//! `mqttapp status --stats`: every server's statistics
//! (`<prefix>/v1/stats/<server-id>`, docs/PROTOCOL.md "Statistics").
//!
//! The retained figures arrive at once; a ping then asks every live server
//! for fresh ones (servers answer within a second), and the newest message
//! of each server wins. The wait is bounded by `--wait` and by the ping's
//! answer time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::ids::random_u64;
use crate::mqtt::{self, Arrival, Client, MqttError, Subscription};
use crate::output::Columns;
use crate::protocol::{OpStats, ServerStats, Topics, UNKNOWN_OP};

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
    let sub = Subscription {
        filter: Topics::new(&config.prefix).stats_filter(),
        qos: mqtt::QOS,
        retained_only_if_new: false,
    };
    mqtt::block_on(client.subscribe(&[sub]), patience).unwrap_or(Err(MqttError::timed_out()))?;
    crate::broker::ping::send(&client, &config.prefix);
    let deadline = Instant::now() + wait.min(crate::broker::ping::ANSWER_WITHIN);
    let mut servers = BTreeMap::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = match rx.recv_timeout(left) {
            Ok(Arrival::Message(msg)) => msg,
            Ok(_) | Err(_) => break,
        };
        let Some(id) = msg.topic.rsplit('/').next() else {
            continue;
        };
        if let Ok(mut stats) = ServerStats::decode(&msg.payload) {
            // The topic names the server, whatever the payload says.
            stats.server = id.to_string();
            servers.insert(id.to_string(), stats);
        }
    }
    client.disconnect(Duration::ZERO);
    Ok(servers.into_values().collect())
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
