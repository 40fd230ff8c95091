//! `mqttapp status`: which servers exist under a prefix, and are they up?
//!
//! Every server keeps a retained status on `<prefix>/v1/status/<id>`
//! ("online" while it runs; "offline" on a clean stop and, as its MQTT will,
//! when it dies). This command subscribes to them all, collects the
//! retained messages and prints them.
//!
//! To know when all retained statuses have arrived without guessing a
//! settle time, it publishes a marker to its own topic after subscribing:
//! the broker queues retained messages before the marker, so once the
//! marker is back the picture is complete. If the marker cannot be
//! published (an ACL), it settles after a short quiet period instead. The
//! whole wait is bounded.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde::Serialize;

use crate::config::Config;
use crate::ids::random_u64;
use crate::mqtt::{self, Arrival, Client, Message, MessageMeta, MqttError, Subscription};
use crate::output::Columns;
use crate::protocol::{Status, Topics};

pub mod stats;

/// How long `status` waits for the statuses by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(3);
/// Quiet period that ends the wait when the marker is unavailable.
const QUIET: Duration = Duration::from_millis(300);

/// One server as its retained status describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerRow {
    /// Server id (last level of the status topic).
    pub id: String,
    /// `online`, `offline`, or `invalid` for a payload that is not a status.
    pub state: String,
    /// Operations it answers.
    pub ops: Vec<String>,
    /// Its version.
    pub version: String,
    /// Unix time (seconds) of its last state change.
    pub since: u64,
    /// Its shared-subscription group, if any.
    pub group: Option<String>,
    /// Id of the data directory it edits in, if it takes edits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
}

impl ServerRow {
    fn new(id: &str, payload: &[u8]) -> ServerRow {
        match Status::decode(payload) {
            Ok(s) => ServerRow {
                id: id.to_string(),
                state: s.state,
                ops: s.ops,
                version: s.version,
                since: s.since,
                group: s.group,
                data_dir: s.data_dir,
            },
            Err(_) => ServerRow {
                id: id.to_string(),
                state: "invalid".into(),
                ops: Vec::new(),
                version: String::new(),
                since: 0,
                group: None,
                data_dir: None,
            },
        }
    }

    /// True when this server says it is answering requests.
    pub fn is_online(&self) -> bool {
        self.state == Status::ONLINE
    }
}

/// Retained payloads by server id (the last level of their topic).
pub type Payloads = BTreeMap<String, Vec<u8>>;

/// Collects the retained statuses under `config.prefix`, sorted by id.
///
/// # Errors
/// [`MqttError`] when the broker cannot be reached or refuses.
pub fn collect(config: &Config, wait: Duration) -> Result<Vec<ServerRow>, MqttError> {
    let (statuses, _) = retained(config, None, wait)?;
    Ok(statuses
        .iter()
        .map(|(id, payload)| ServerRow::new(id, payload))
        .collect())
}

/// The retained statuses under `config.prefix` and, when `also` names a
/// per-server topic family (`<prefix>/v1/describe/` for `describe`), the
/// retained messages there, both by server id. A marker published to our
/// own topic after subscribing tells when the broker has sent every
/// retained message; when none of the statuses says online, a ping asks
/// live servers to publish theirs (`crate::broker::ping`), for brokers
/// that do not pass retained messages on. An empty retained message is a
/// removal. `also` is optional on the broker's side: an ACL that refuses
/// it leaves the second map empty.
///
/// # Errors
/// [`MqttError`] when the broker cannot be reached or refuses the statuses.
pub fn retained(
    config: &Config,
    also: Option<&str>,
    wait: Duration,
) -> Result<(Payloads, Payloads), MqttError> {
    let client_id = format!("mqttapp-status-{:016x}", random_u64());
    let patience = wait.max(Duration::from_secs(1));
    let client = Client::connect_oneshot(
        &config.connection,
        &client_id,
        patience.min(Duration::from_secs(10)),
    )?;
    let rx = client.arrivals();
    let topics = Topics::new(&config.prefix);
    let marker_topic = topics.response(&client_id);
    let status_topic = topics.status("");
    let also_filter = also.map(|family| format!("{family}+"));
    let filters = std::iter::once(topics.status_filter())
        .chain(also_filter)
        .chain(std::iter::once(marker_topic.clone()));
    let subs: Vec<Subscription> = filters
        .map(|filter| Subscription {
            filter,
            qos: mqtt::QOS,
            retained_only_if_new: false,
        })
        .collect();
    let granted = mqtt::block_on(client.subscribe_each(&subs), patience)
        .unwrap_or(Err(MqttError::timed_out()))?;
    let mut granted = granted.into_iter();
    if let Some(Err(refused)) = granted.next() {
        return Err(refused);
    }
    if also.is_some() {
        let _ = granted.next();
    }
    let marker = matches!(granted.next(), Some(Ok(())))
        && client
            .publish_wait(
                Message::new(&marker_topic, Vec::new(), MessageMeta::default(), false),
                patience,
            )
            .is_ok();
    let mut deadline = Instant::now() + wait;
    let mut pinged = false;
    let (mut statuses, mut others) = (Payloads::new(), Payloads::new());
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = match rx.recv_timeout(if marker { left } else { left.min(QUIET) }) {
            Ok(Arrival::Message(msg)) => msg,
            Ok(_) | Err(_) => break,
        };
        if msg.topic == marker_topic {
            let online = |p: &Vec<u8>| Status::decode(p).is_ok_and(|s| s.is_online());
            if pinged || statuses.values().any(online) {
                break;
            }
            crate::broker::ping::send(&client, &config.prefix);
            pinged = true;
            deadline = deadline.min(Instant::now() + crate::broker::ping::ANSWER_WITHIN);
            continue;
        }
        let (map, id) = if let Some(id) = msg.topic.strip_prefix(&status_topic) {
            (&mut statuses, id)
        } else if let Some(id) = also.and_then(|family| msg.topic.strip_prefix(family)) {
            (&mut others, id)
        } else {
            continue;
        };
        if msg.payload.is_empty() {
            map.remove(id);
        } else {
            map.insert(id.to_string(), msg.payload);
        }
    }
    client.disconnect(Duration::ZERO);
    Ok((statuses, others))
}

/// What a server about to start should be told about the servers already
/// online under its prefix: one warning per surprise. Two servers without
/// a common `--group` both answer every request (their files diverge); a
/// second process with the same id shares (takes turns on) one session.
pub fn neighbour_warnings(config: &Config, rows: &[ServerRow]) -> Vec<String> {
    let prefix = &config.prefix;
    rows.iter()
        .filter(|r| r.is_online())
        .filter_map(|r| {
            if r.id == config.server_id {
                Some(format!(
                    "server id {:?} is already online under {prefix}: two processes with one id share one MQTT session and take turns on it (both report \"client id in use\") - give each server its own --server-id",
                    r.id
                ))
            } else if config.group.is_none() || r.group != config.group {
                Some(format!(
                    "server {:?} already answers requests under {prefix} and is not in this server's group: both will answer every request (an edit lands in one server's files only) - give both the same --group, or use another --prefix",
                    r.id
                ))
            } else {
                None
            }
        })
        .collect()
}

/// Why `status --forget` did not forget a server.
#[derive(Debug, thiserror::Error)]
pub enum ForgetError {
    /// The broker cannot be reached, or refused the publish (an ACL).
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    /// No retained status with this id under the prefix.
    #[error("no server {id:?} under {prefix}/v1/status/ - `mqttapp status` lists them")]
    Unknown {
        /// The id asked for.
        id: String,
        /// The prefix looked at.
        prefix: String,
    },
    /// The server says it is online: its status would come back.
    #[error("server {0:?} is online - stop it first; only offline servers are forgotten")]
    Online(String),
}

/// Removes the retained status of server `id` (an empty retained message
/// on its status topic), so that a server that is gone for good stops
/// being listed. Online servers are refused.
///
/// # Errors
/// [`ForgetError`]: unknown or online server, broker problems.
pub fn forget(config: &Config, id: &str, wait: Duration) -> Result<(), ForgetError> {
    let rows = collect(config, wait)?;
    match rows.iter().find(|r| r.id == id) {
        None => {
            return Err(ForgetError::Unknown {
                id: id.to_string(),
                prefix: config.prefix.clone(),
            })
        }
        Some(row) if row.is_online() => return Err(ForgetError::Online(id.to_string())),
        Some(_) => {}
    }
    let client_id = format!("mqttapp-status-{:016x}", random_u64());
    let patience = wait.clamp(Duration::from_secs(1), Duration::from_secs(10));
    let client = Client::connect_oneshot(&config.connection, &client_id, patience)?;
    let topic = Topics::new(&config.prefix).status(id);
    let result = client.publish_wait(
        Message::new(&topic, Vec::new(), MessageMeta::default(), true),
        patience,
    );
    client.disconnect(Duration::ZERO);
    // The shipped ACL lets only servers write statuses: a refusal is
    // "not authorized" (exit 4), run it with a server's credentials.
    result?;
    Ok(())
}

/// The rows as an aligned table with a header (nothing when there are none).
pub fn table(rows: &[ServerRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let rows: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                r.state.clone(),
                r.ops.join(","),
                r.version.clone(),
                format_since(r.since),
                r.group.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    Columns::table(&["ID", "STATE", "OPS", "VERSION", "SINCE", "GROUP"], &rows)
}

/// Unix seconds as UTC RFC 3339 (`-` when unknown).
fn format_since(since: u64) -> String {
    // 9999-12-31T23:59:59Z: RFC 3339 has four-digit years.
    const LAST_RFC3339: u64 = 253_402_300_799;
    match since {
        0 => "-".into(),
        s if s > LAST_RFC3339 => s.to_string(),
        s => humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(s)).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, state: &str, group: Option<&str>) -> ServerRow {
        ServerRow {
            id: id.into(),
            state: state.into(),
            ops: vec!["calc".into(), "echo".into()],
            version: "0.1.0".into(),
            since: 1_700_000_000,
            group: group.map(String::from),
            data_dir: None,
        }
    }

    #[test]
    fn table_aligns_columns_and_shows_missing_groups_as_dashes() {
        let text = table(&[
            row("a", "online", Some("g")),
            row("server-2", "offline", None),
        ]);
        assert_eq!(
            text,
            "ID        STATE    OPS        VERSION  SINCE                 GROUP\n\
             a         online   calc,echo  0.1.0    2023-11-14T22:13:20Z  g\n\
             server-2  offline  calc,echo  0.1.0    2023-11-14T22:13:20Z  -\n"
        );
    }

    #[test]
    fn a_new_server_is_warned_about_ungrouped_neighbours_and_its_own_id() {
        let mut config = crate::config::Config::from_settings(crate::config::Settings {
            server_id: Some("me".into()),
            ..Default::default()
        })
        .unwrap();
        let rows = [
            row("me", "online", None),
            row("other", "online", None),
            row("gone", "offline", None),
        ];
        let warnings = neighbour_warnings(&config, &rows);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("take turns") && warnings[1].contains("\"other\""));
        config.group = Some("g".into());
        config.server_id = "new".into();
        let grouped = [row("a", "online", Some("g")), row("b", "online", Some("h"))];
        let warnings = neighbour_warnings(&config, &grouped);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("\"b\""));
    }

    #[test]
    fn undecodable_status_payloads_are_listed_as_invalid() {
        let r = ServerRow::new("x", b"junk");
        assert_eq!(r.state, "invalid");
        assert!(!r.is_online());
        let s = Status {
            state: "online".into(),
            ops: vec![],
            version: "1".into(),
            since: 5,
            group: None,
            instance: None,
            data_dir: None,
        };
        assert!(ServerRow::new("y", &s.encode()).is_online());
    }
}
