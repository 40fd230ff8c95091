//! Server statistics: a CBOR map on `<prefix>/v1/stats/<server-id>`
//! (docs/PROTOCOL.md, "Statistics"). The same figures feed `serve
//! --metrics`, so the two never disagree.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ProtocolError;

/// One server's figures since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStats {
    /// The server id (the last level of the stats topic).
    pub server: String,
    /// The server process's `instance`, as in its status: `status
    /// --stats` shows figures only next to an online status of the same
    /// server and instance, so figures published by anyone else for a
    /// server that is not online, or carrying another instance, are not
    /// shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Unix time (seconds) the figures were taken.
    #[serde(default)]
    pub time: u64,
    /// Seconds since the server process started serving.
    #[serde(default)]
    pub uptime_s: u64,
    /// Per operation, by the operation's name; requests for operations
    /// this server does not offer are counted under [`UNKNOWN_OP`].
    #[serde(default)]
    pub ops: BTreeMap<String, OpStats>,
}

/// The key under which requests for operations the server does not offer
/// are counted: a client must not be able to make the map grow by
/// inventing operation names.
pub const UNKNOWN_OP: &str = "_unknown";

/// One operation's figures. Every request received ends in exactly one of
/// `replies`, `busy`, `dead_letters`, `dropped`, or is still `queued`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpStats {
    /// Requests received.
    #[serde(default)]
    pub requests: u64,
    /// Replies sent, by code: `ok`, or the error code.
    #[serde(default)]
    pub replies: BTreeMap<String, u64>,
    /// Requests refused `busy` at once, without being run (queue full).
    #[serde(default)]
    pub busy: u64,
    /// Requests kept as dead letters without a reply, by reason.
    #[serde(default)]
    pub dead_letters: BTreeMap<String, u64>,
    /// Requests neither answered nor kept (refused while even the refusal
    /// queue was full).
    #[serde(default)]
    pub dropped: u64,
    /// Re-sent requests answered from the reply memory (not applied again).
    #[serde(default)]
    pub replays: u64,
    /// Requests received and not finished yet (waiting or being handled).
    #[serde(default)]
    pub queued: u64,
    /// Time from a request's arrival to its reply being handed to the MQTT
    /// client, in microseconds, over the replies since the start.
    #[serde(default)]
    pub handling_us: Handling,
}

/// Percentiles of the handling time, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handling {
    /// Replies timed.
    #[serde(default)]
    pub count: u64,
    /// Median.
    #[serde(default)]
    pub p50: u64,
    /// 99th percentile.
    #[serde(default)]
    pub p99: u64,
    /// Longest.
    #[serde(default)]
    pub max: u64,
}

impl OpStats {
    /// Replies of every code.
    pub fn replied(&self) -> u64 {
        self.replies.values().sum()
    }

    /// Requests finished one way or another.
    pub fn finished(&self) -> u64 {
        self.replied() + self.busy + self.dead_letters.values().sum::<u64>() + self.dropped
    }
}

impl ServerStats {
    /// CBOR encoding, as published.
    pub fn encode(&self) -> Vec<u8> {
        super::to_cbor(self)
    }

    /// Decodes a stats message.
    ///
    /// # Errors
    /// [`ProtocolError::Decode`] for anything that is not a stats map.
    pub fn decode(payload: &[u8]) -> Result<ServerStats, ProtocolError> {
        super::codec::decode_record(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_round_trip_and_count_every_outcome_once() {
        let mut op = OpStats {
            requests: 10,
            busy: 2,
            dropped: 1,
            queued: 1,
            ..OpStats::default()
        };
        op.replies.insert("ok".into(), 4);
        op.replies.insert("parse".into(), 1);
        op.dead_letters.insert("expired".into(), 1);
        assert_eq!(op.finished(), 9);
        let mut s = ServerStats {
            server: "s1".into(),
            time: 5,
            uptime_s: 3,
            ..ServerStats::default()
        };
        s.ops.insert("calc".into(), op);
        assert_eq!(ServerStats::decode(&s.encode()).unwrap(), s);
        assert!(ServerStats::decode(b"junk").is_err());
    }
}
