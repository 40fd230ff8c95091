//! Self-description, both sides: what a server publishes on
//! `<prefix>/v1/describe/<server-id>` ([`builder`]) and what `mqttapp
//! describe` and the shell's `help` make of the descriptions of the
//! servers online ([`collect`], [`Catalog`], [`render`]).
//!
//! A description is advice for people and tools, never trusted for
//! anything else: the server checks every request whatever its description
//! says. A reader shows a description only next to an online status of
//! the same server process (same `instance`), and only for the operations
//! that status lists, so a retained description left by a crashed server,
//! an older process, or a client publishing under an id no server uses is
//! not shown (docs/PROTOCOL.md, "Self-description").

pub mod builder;
mod catalog;
pub mod render;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::ids::random_u64;
use crate::mqtt::{self, Arrival, Client, Message, MessageMeta, MqttError, Subscription};
use crate::protocol::Topics;
pub use catalog::{Catalog, Offer, Payloads, Variant};

/// How long `describe` waits for the retained messages by default (the
/// marker usually ends the wait within milliseconds).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(3);
/// Quiet period that ends the wait when the marker is unavailable.
const QUIET: Duration = Duration::from_millis(300);

/// Why `mqttapp describe` (or the shell's `help OP`) has nothing to show.
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    /// The broker cannot be reached or refused.
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    /// No server has an online status under the prefix.
    #[error("no server online under {prefix}/v1/status/ - is `mqttapp serve` running with the same --prefix?")]
    NoServer {
        /// The prefix looked at.
        prefix: String,
    },
    /// Servers are online, but none offers this operation.
    #[error("no online server offers `{op}`; offered: {offered} (`mqttapp describe` lists them)")]
    Unknown {
        /// The operation asked for (control characters replaced).
        op: String,
        /// The operations that are offered, comma-separated.
        offered: String,
    },
}

/// The retained statuses and descriptions under `config.prefix`, merged
/// into a [`Catalog`] of the operations online servers offer.
///
/// # Errors
/// [`MqttError`] when the broker cannot be reached or refuses.
pub fn collect(config: &Config, wait: Duration) -> Result<Catalog, MqttError> {
    let (statuses, descriptions) = retained(config, wait)?;
    Ok(Catalog::merge(&statuses, &descriptions))
}

/// The operation `op` of `catalog`, or why there is none.
///
/// # Errors
/// [`DescribeError::NoServer`] when no server is online,
/// [`DescribeError::Unknown`] when none of them offers `op`.
pub fn find<'a>(catalog: &'a Catalog, op: &str, prefix: &str) -> Result<&'a Offer, DescribeError> {
    catalog.require_online(prefix)?;
    catalog.offer(op).ok_or_else(|| DescribeError::Unknown {
        op: render::clean(op),
        offered: catalog.names().join(", "),
    })
}

/// Retained payloads by server id: statuses, and descriptions. Like
/// `mqttapp status`, a marker published to our own topic after
/// subscribing tells when the broker has sent every retained message.
fn retained(config: &Config, wait: Duration) -> Result<(Payloads, Payloads), MqttError> {
    let client_id = format!("mqttapp-describe-{:016x}", random_u64());
    let patience = wait.max(Duration::from_secs(1));
    let client = Client::connect_oneshot(
        &config.connection,
        &client_id,
        patience.min(Duration::from_secs(10)),
    )?;
    let rx = client.arrivals();
    let topics = Topics::new(&config.prefix);
    let marker_topic = topics.response(&client_id);
    let filters = [
        topics.status_filter(),
        topics.describe_filter(),
        marker_topic.clone(),
    ];
    let subs = filters.map(|filter| Subscription {
        filter,
        qos: mqtt::QOS,
        retained_only_if_new: false,
    });
    let granted = mqtt::block_on(client.subscribe_each(&subs), patience)
        .unwrap_or(Err(MqttError::timed_out()))?;
    let mut granted = granted.into_iter();
    if let Some(Err(refused)) = granted.next() {
        return Err(refused);
    }
    // The describe topics are optional (an ACL from before them): without
    // them every server shows as undescribed.
    let _ = granted.next();
    let marker = matches!(granted.next(), Some(Ok(())))
        && client
            .publish_wait(
                Message::new(&marker_topic, Vec::new(), MessageMeta::default(), false),
                patience,
            )
            .is_ok();
    let mut deadline = Instant::now() + wait;
    let mut pinged = false;
    let (mut statuses, mut descriptions) = (BTreeMap::new(), BTreeMap::new());
    let status_topic = topics.status("");
    let describe_topic = topics.describe("");
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = match rx.recv_timeout(if marker { left } else { left.min(QUIET) }) {
            Ok(Arrival::Message(msg)) => msg,
            Ok(_) | Err(_) => break,
        };
        if msg.topic == marker_topic {
            // No online status among the retained ones: ask for live ones,
            // as `mqttapp status` does (`crate::broker::ping`).
            if pinged || statuses.values().any(|p: &Vec<u8>| catalog::says_online(p)) {
                break;
            }
            crate::broker::ping::send(&client, &config.prefix);
            pinged = true;
            deadline = deadline.min(Instant::now() + crate::broker::ping::ANSWER_WITHIN);
            continue;
        }
        let (map, id) = if let Some(id) = msg.topic.strip_prefix(&status_topic) {
            (&mut statuses, id)
        } else if let Some(id) = msg.topic.strip_prefix(&describe_topic) {
            (&mut descriptions, id)
        } else {
            continue;
        };
        // An empty retained message is a removal.
        if msg.payload.is_empty() {
            map.remove(id);
        } else {
            map.insert(id.to_string(), msg.payload);
        }
    }
    client.disconnect(Duration::ZERO);
    Ok((statuses, descriptions))
}
