//! Who this server is on the broker: its retained status messages, and the
//! detection of another process using the same server id.
//!
//! Two processes with one server id share one MQTT client id, so each
//! connect takes the session from the other and they would knock each other
//! off forever. Brokers that send DISCONNECT "session taken over" (MQTT 5
//! reason 0x8E) make that visible at once; Mosquitto 2.0 just closes the
//! old connection. So every status this process publishes carries a random
//! `instance`, and the server subscribes to its own status topic: once it
//! has seen its own "online" come back, an "online" with another instance
//! means another process has this id.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use paho_mqtt as paho;

use crate::config::Config;
use crate::ids::random_u64;
use crate::mqtt::MessageMeta;
use crate::protocol::{Op, Status, Topics};

/// This server's status topic, instance and conflict state.
pub struct Identity {
    topic: String,
    group: Option<String>,
    instance: String,
    armed: AtomicBool,
    conflict: AtomicBool,
}

impl Identity {
    /// The identity of this process as the server `config.server_id`.
    pub fn new(config: &Config) -> Identity {
        Identity {
            topic: Topics::new(&config.prefix).status(&config.server_id),
            group: config.group.clone(),
            instance: format!("{:016x}", random_u64()),
            armed: AtomicBool::new(false),
            conflict: AtomicBool::new(false),
        }
    }

    /// `<prefix>/v1/status/<server-id>`.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The retained status message for `state`.
    pub fn status(&self, state: &str) -> paho::Message {
        let status = Status {
            state: state.to_string(),
            ops: Op::ALL.iter().map(|op| op.as_str().to_string()).collect(),
            version: crate::version::VERSION.to_string(),
            since: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            group: self.group.clone(),
            instance: Some(self.instance.clone()),
        };
        let meta = MessageMeta {
            content_type: Some("application/cbor".into()),
            ..MessageMeta::default()
        };
        meta.message(&self.topic, status.encode(), true)
    }

    /// Looks at a status received on our own topic (see the module docs).
    /// The retained status found at startup is an earlier process's and is
    /// ignored until our own "online" has come back once.
    pub fn observe(&self, payload: &[u8]) {
        let Ok(status) = Status::decode(payload) else {
            return;
        };
        if !status.is_online() {
            return;
        }
        if status.instance.as_deref() == Some(self.instance.as_str()) {
            self.armed.store(true, Ordering::SeqCst);
        } else if self.armed.load(Ordering::SeqCst) {
            tracing::error!(other = %crate::logging::shorten(status.instance.as_deref().unwrap_or("-"), 120), "another server is online with this server's id");
            self.mark_conflict();
        }
    }

    /// Records that another process uses this id.
    pub fn mark_conflict(&self) {
        self.conflict.store(true, Ordering::SeqCst);
    }

    /// True once another process was seen using this id.
    pub fn conflict(&self) -> bool {
        self.conflict.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn identity() -> Identity {
        let config = Config::from_settings(Settings {
            server_id: Some("s".into()),
            ..Settings::default()
        })
        .unwrap();
        Identity::new(&config)
    }

    fn online(instance: Option<&str>) -> Vec<u8> {
        Status {
            state: Status::ONLINE.into(),
            ops: vec![],
            version: "0".into(),
            since: 1,
            group: None,
            instance: instance.map(String::from),
        }
        .encode()
    }

    #[test]
    fn an_earlier_status_is_ignored_until_our_own_comes_back() {
        let me = identity();
        me.observe(&online(Some("earlier-process")));
        assert!(!me.conflict());
        me.observe(me.status(Status::ONLINE).payload());
        assert!(!me.conflict());
        me.observe(&online(Some("earlier-process")));
        assert!(me.conflict());
    }

    #[test]
    fn offline_statuses_and_junk_are_no_conflict() {
        let me = identity();
        me.observe(me.status(Status::ONLINE).payload());
        me.observe(me.status(Status::OFFLINE).payload());
        me.observe(b"junk");
        assert!(!me.conflict());
    }
}
