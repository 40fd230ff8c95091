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

use std::time::Duration;

use crate::config::Config;
use crate::mqtt::MqttError;
use crate::protocol::Topics;
pub use catalog::{Catalog, Offer, Payloads, Variant};

/// How long `describe` waits for the retained messages by default (the
/// marker usually ends the wait within milliseconds).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(3);

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

/// Retained payloads by server id: statuses, and descriptions (the same
/// snapshot `mqttapp status` takes, with the describe topics added).
fn retained(config: &Config, wait: Duration) -> Result<(Payloads, Payloads), MqttError> {
    let family = Topics::new(&config.prefix).describe("");
    crate::status::retained(config, Some(&family), wait)
}
