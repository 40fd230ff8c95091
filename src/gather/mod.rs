//! Answers from every online server, group members included:
//! `mqttapp ping` (a live round trip to each) and `mqttapp ask --all`
//! (one request to each, scatter-gather).
//!
//! Both use topics every server subscribes to WITHOUT a shared group
//! (`<prefix>/v1/ping`, `<prefix>/v1/all/req/+`), so the broker hands each
//! group member its own copy, and both count each server once by the
//! `mqttapp-server-id` user property of its answer ([`Tally`]): a server
//! (or a forger on the response topic) answering twice is counted once.

pub mod all;
pub mod ping;
mod tally;

use std::time::Duration;

pub use tally::{Tally, Verdict};

use crate::ids::random_u64;
use crate::mqtt::{self, Client, MqttError, Subscription};
use crate::protocol::Op;

/// Why a gather could not run.
#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    /// Connecting, subscribing or publishing failed.
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    /// No server is online for the operation (retained statuses and the
    /// status ping): nothing to ask.
    #[error("no server online for {op} (no online status under {prefix}/v1/status/) - is `mqttapp serve` running with the same --prefix?")]
    NoServer {
        /// The operation asked for.
        op: Op,
        /// The topic prefix looked at.
        prefix: String,
    },
    /// The command line does not make a gather.
    #[error("{0}")]
    Usage(String),
}

/// A short-lived client subscribed to its own response topic: the
/// client, its arrivals and the topic.
fn connect(
    config: &crate::config::Config,
    kind: &str,
    patience: Duration,
) -> Result<(Client, crossbeam_channel::Receiver<mqtt::Arrival>, String), MqttError> {
    let client_id = format!("mqttapp-{kind}-{:016x}", random_u64());
    let client = Client::connect_oneshot(
        &config.connection,
        &client_id,
        patience.clamp(Duration::from_secs(1), Duration::from_secs(10)),
    )?;
    let rx = client.arrivals();
    let topic = crate::protocol::Topics::new(&config.prefix).response(&client_id);
    let sub = Subscription {
        filter: topic.clone(),
        qos: mqtt::QOS,
        retained_only_if_new: false,
    };
    mqtt::block_on(client.subscribe(&[sub]), Duration::from_secs(10))
        .unwrap_or(Err(MqttError::timed_out()))?;
    Ok((client, rx, topic))
}

/// Fresh correlation data: random, so answers to another gather (or an
/// earlier round) are never taken for ours.
fn correlation(round: u32) -> Vec<u8> {
    let mut c = random_u64().to_be_bytes().to_vec();
    c.extend_from_slice(&round.to_be_bytes());
    c
}
