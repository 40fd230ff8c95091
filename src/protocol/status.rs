//! Server status: a retained CBOR map on `<prefix>/v1/status/<server-id>`.

use serde::{Deserialize, Serialize};

use super::ProtocolError;

/// `{"state": "online"|"offline", "ops": [...], "version": ..., "since": ...}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// `online` or `offline`.
    pub state: String,
    /// Operations this server answers.
    #[serde(default)]
    pub ops: Vec<String>,
    /// Server version.
    #[serde(default)]
    pub version: String,
    /// Unix time (seconds) of the last state change.
    #[serde(default)]
    pub since: u64,
    /// Shared-subscription group, when the server is in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Random per process: tells two processes that use the same server id
    /// apart (a misconfiguration the server detects and stops on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Id of the data directory whose files this server edits (absent for
    /// servers started with `--no-edit`): one group keeps its files in
    /// one data directory (docs/EDITS_ACROSS_HOSTS.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
}

impl Status {
    /// The state string of a running server.
    pub const ONLINE: &'static str = "online";
    /// The state string of a stopped or crashed server.
    pub const OFFLINE: &'static str = "offline";

    /// True when the server is answering requests.
    pub fn is_online(&self) -> bool {
        self.state == Status::ONLINE
    }

    /// CBOR encoding, as published.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // A plain struct into a Vec: cannot fail.
        ciborium::into_writer(self, &mut out).expect("CBOR encoding of a plain struct");
        out
    }

    /// Decodes a status message.
    ///
    /// # Errors
    /// [`ProtocolError::Decode`] for anything that is not a status map.
    pub fn decode(payload: &[u8]) -> Result<Status, ProtocolError> {
        super::codec::decode_record(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips() {
        let s = Status {
            state: "online".into(),
            ops: vec!["calc".into()],
            version: "0.1.0".into(),
            since: 1,
            group: None,
            instance: None,
            data_dir: None,
        };
        assert_eq!(Status::decode(&s.encode()).unwrap(), s);
        assert!(Status::decode(b"junk").is_err());
    }
}
