//! Who this server is on the broker: its retained status messages, what it
//! makes of other messages on its status topic, and the detection of
//! another client using its MQTT client id.
//!
//! Anyone allowed to publish status messages can publish one on this
//! server's topic, so a status message never stops the server: one that is
//! not this process's own "online" (another `instance`, a copy of ours
//! with another state, ops, version or group, or not a status at all) is
//! logged and answered by publishing the server's retained "online" again.
//!
//! Another client with this server's client id shows on the connection
//! itself: the broker closes the older connection whenever the newer one
//! connects (MQTT 5 DISCONNECT "session taken over", 0x8E; Mosquitto 2.0.11
//! just closes it). [`Takeovers`] counts connections that were lost soon
//! after they were made; several in a row, or one 0x8E, are reported as
//! "client id in use by another client" (see `link.rs` for what the server
//! then does).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::ids::random_u64;
use crate::mqtt::{Message, MessageMeta};
use crate::protocol::{Op, Status, Topics};

/// A foreign status is logged at most this often (a flood of forged
/// statuses must not flood the log).
const WARN_EVERY: Duration = Duration::from_secs(60);

/// This server's status topic and instance, and what was seen on the topic.
pub struct Identity {
    topic: String,
    /// `<prefix>/v1/describe/<server-id>`.
    describe_topic: String,
    /// The encoded self-description, built once (`crate::describe`).
    description: Vec<u8>,
    group: Option<String>,
    instance: String,
    ops: Vec<Op>,
    data_dir: Option<String>,
    armed: AtomicBool,
    fresh_subscription: AtomicBool,
    retain: AtomicBool,
    warned: Mutex<Option<Instant>>,
}

impl Identity {
    /// The identity of this process as the server `config.server_id`.
    pub fn new(config: &Config) -> Identity {
        let topics = Topics::new(&config.prefix);
        let instance = format!("{:016x}", random_u64());
        let ops = crate::serve::owner::served_ops(config.no_edit);
        let description = crate::describe::builder::Builder::new(Some(instance.clone()))
            .builtins(&ops, &config.limits)
            .build();
        Identity {
            topic: topics.status(&config.server_id),
            describe_topic: topics.describe(&config.server_id),
            description: description.encode(),
            group: config.group.clone(),
            instance,
            ops,
            data_dir: (!config.no_edit)
                .then(|| crate::serve::owner::id_of(&config.data_dir))
                .flatten(),
            armed: AtomicBool::new(false),
            fresh_subscription: AtomicBool::new(false),
            retain: AtomicBool::new(true),
            warned: Mutex::new(None),
        }
    }

    /// The random id of this run (in its status and its ping answers).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// `<prefix>/v1/status/<server-id>`.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The retained status message for `state`.
    pub fn status(&self, state: &str) -> Message {
        let status = Status {
            state: state.to_string(),
            ops: self.ops.iter().map(|op| op.as_str().to_string()).collect(),
            version: crate::version::VERSION.to_string(),
            since: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            group: self.group.clone(),
            instance: Some(self.instance.clone()),
            data_dir: self.data_dir.clone(),
        };
        let meta = MessageMeta {
            content_type: Some("application/cbor".into()),
            ..MessageMeta::default()
        };
        let retain = self.retain.load(Ordering::SeqCst);
        Message::new(&self.topic, status.encode(), meta, retain)
    }

    /// The retained self-description, published before the "online"
    /// status; `None` where the broker keeps no retained messages (a
    /// description is only of use retained).
    pub fn description(&self) -> Option<Message> {
        self.describing(self.description.clone())
    }

    /// The empty retained message that removes the description, published
    /// on a clean stop before the "offline" status. A server that dies
    /// leaves its description retained; readers ignore it next to the
    /// "offline" of its will (docs/PROTOCOL.md, "Self-description").
    pub fn description_cleared(&self) -> Option<Message> {
        self.describing(Vec::new())
    }

    fn describing(&self, payload: Vec<u8>) -> Option<Message> {
        if !self.retain.load(Ordering::SeqCst) {
            return None;
        }
        let meta = MessageMeta {
            content_type: (!payload.is_empty()).then(|| "application/cbor".into()),
            ..MessageMeta::default()
        };
        Some(Message::new(&self.describe_topic, payload, meta, true))
    }

    /// From now on statuses (and the will) are published without the
    /// retain flag: the broker keeps no retained messages and refuses
    /// them. Clients then find this server through the status ping
    /// (`crate::broker::ping`).
    pub fn forgo_retain(&self) {
        self.retain.store(false, Ordering::SeqCst);
    }

    /// Looks at a message received on our own status topic.
    ///
    /// `retained` is the message's RETAIN flag. The server subscribes to
    /// its status topic without "retain as published", so the flag is set
    /// only on a retained message the broker sends because the
    /// subscription is new (see [`Identity::expect_subscription`]).
    ///
    /// Until our own status has come back once, other statuses are an
    /// earlier process's and are ignored. After that, anything but our own
    /// status is logged and true is returned: our retained "online" is to
    /// be published again (the control loop does, at most once a second);
    /// it never stops the server.
    #[must_use = "true means: publish our status again"]
    pub fn observe(&self, payload: &[u8], retained: bool) -> bool {
        if retained {
            self.fresh_subscription.store(true, Ordering::SeqCst);
        }
        let status = Status::decode(payload).ok();
        let instance = status.as_ref().and_then(|s| s.instance.as_deref());
        if status.as_ref().is_some_and(|s| self.is_own(s)) {
            self.armed.store(true, Ordering::SeqCst);
            return false;
        }
        if !self.armed.load(Ordering::SeqCst) {
            return false;
        }
        if self.may_warn() {
            let state = status.as_ref().map_or("not a status", |s| s.state.as_str());
            tracing::warn!(
                other_instance = %crate::logging::shorten(instance.unwrap_or("-"), 120),
                %state,
                "a status message on this server's status topic is not this server's: ignored, and this server's own status published again (another client may publish statuses there; if another server uses this --server-id, the connection losses show it)"
            );
        }
        true
    }

    /// True when `status` says what our own retained status says. Our
    /// instance is public (it is in that status), so a forger can copy it
    /// and change the rest: "offline", or `ops` without `calc`, which
    /// makes clients fail "no server online". Only a status with our
    /// state "online", ops, version and group counts as ours (`since`
    /// changes with every publish). Our own "offline" is published only
    /// while closing, when nothing is published again.
    fn is_own(&self, status: &Status) -> bool {
        let ours = Status::decode(&self.status(Status::ONLINE).payload);
        ours.is_ok_and(|ours| {
            status.instance == ours.instance
                && status.state == ours.state
                && status.ops == ours.ops
                && status.version == ours.version
                && status.group == ours.group
        })
    }

    fn may_warn(&self) -> bool {
        let Ok(mut last) = self.warned.lock() else {
            return true;
        };
        let due = last.is_none_or(|at| at.elapsed() >= WARN_EVERY);
        if due {
            *last = Some(Instant::now());
        }
        due
    }

    /// Called before subscribing to the status topic with "send retained
    /// messages only for a new subscription": a retained message that
    /// arrives afterwards means the broker did not have the subscription.
    pub fn expect_subscription(&self) {
        self.fresh_subscription.store(false, Ordering::SeqCst);
    }

    /// True when a retained status arrived since
    /// [`Identity::expect_subscription`]: the session the broker kept had
    /// no subscription to our status topic, so it is not this server's
    /// (another client connected with its id and started a new one).
    pub fn subscription_was_new(&self) -> bool {
        self.fresh_subscription.load(Ordering::SeqCst)
    }
}

/// Connections lost soon after they were made, in a row: how a client id
/// used by two clients shows when the broker gives no reason.
#[derive(Debug, Default)]
pub struct Takeovers {
    in_a_row: u32,
}

impl Takeovers {
    /// A connection that lived less than this counts as taken over.
    pub const SHORT: Duration = Duration::from_secs(10);
    /// This many in a row are reported as "client id in use".
    pub const IN_A_ROW: u32 = 3;

    /// Counts a lost connection that had lived `lived`; `said_so` when the
    /// broker said "session taken over". True when the client id is in
    /// use by another client.
    pub fn lost(&mut self, lived: Duration, said_so: bool) -> bool {
        if said_so {
            self.in_a_row = self.in_a_row.max(Self::IN_A_ROW);
        } else if lived < Self::SHORT {
            self.in_a_row += 1;
        } else {
            self.in_a_row = 0;
        }
        self.in_conflict()
    }

    /// True while the last losses say the client id is in use.
    pub fn in_conflict(&self) -> bool {
        self.in_a_row >= Self::IN_A_ROW
    }

    /// How many losses in a row came soon after connecting.
    pub fn count(&self) -> u32 {
        self.in_a_row
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
            data_dir: None,
        }
        .encode()
    }

    #[test]
    fn foreign_statuses_are_answered_with_our_own_once_armed() {
        let me = identity();
        assert!(!me.observe(&online(Some("earlier-process")), true));
        assert!(!me.observe(&me.status(Status::ONLINE).payload, false));
        for foreign in [
            online(Some("forged")),
            online(None),
            b"junk".to_vec(),
            vec![],
        ] {
            assert!(me.observe(&foreign, false));
        }
        // A copy of our own status saying "offline" (our instance is public)
        // is answered too; while closing, `link.rs` publishes nothing again.
        assert!(me.observe(&me.status(Status::OFFLINE).payload, false));
        // So is a copy with our instance that lists other operations.
        let mut copy = Status::decode(&me.status(Status::ONLINE).payload).unwrap();
        copy.ops = vec!["echo".into()];
        assert!(me.observe(&copy.encode(), false));
    }

    #[test]
    fn a_retained_status_after_subscribing_means_a_new_subscription() {
        let me = identity();
        me.expect_subscription();
        let _ = me.observe(&me.status(Status::ONLINE).payload, false);
        assert!(!me.subscription_was_new());
        let _ = me.observe(&online(Some("earlier-process")), true);
        assert!(me.subscription_was_new());
        me.expect_subscription();
        assert!(!me.subscription_was_new());
    }

    #[test]
    fn short_lived_connections_in_a_row_are_a_conflict() {
        let mut t = Takeovers::default();
        let short = Duration::from_secs(1);
        assert!(!t.lost(short, false));
        assert!(!t.lost(short, false));
        assert!(t.lost(short, false));
        assert!(!t.lost(Duration::from_secs(60), false));
        assert!(t.lost(Duration::from_secs(60), true));
        assert_eq!(t.count(), Takeovers::IN_A_ROW);
    }

    #[test]
    fn a_connection_that_lived_the_full_short_period_resets_the_count() {
        let mut t = Takeovers::default();
        let short = Takeovers::SHORT - Duration::from_millis(1);
        t.lost(short, false);
        t.lost(short, false);
        assert_eq!(t.count(), 2);
        assert!(!t.lost(Takeovers::SHORT, false));
        assert_eq!(t.count(), 0);
        for _ in 0..5 {
            t.lost(short, false);
        }
        assert!(t.lost(Duration::from_secs(60), true));
        assert_eq!(t.count(), 5, "the broker's word does not lower the count");
        assert!(t.in_conflict());
    }

    #[test]
    fn the_description_is_retained_cbor_of_this_process_and_cleared_by_an_empty_message() {
        let me = identity();
        let msg = me.description().unwrap();
        assert!(msg.retained && msg.topic.ends_with("/v1/describe/s"));
        let d = crate::protocol::Description::decode(&msg.payload).unwrap();
        let status = Status::decode(&me.status(Status::ONLINE).payload).unwrap();
        assert_eq!(d.instance, status.instance);
        let names: Vec<&str> = d.ops.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, status.ops);
        let cleared = me.description_cleared().unwrap();
        assert!(cleared.retained && cleared.payload.is_empty());
        me.forgo_retain();
        assert!(me.description().is_none());
    }

    #[test]
    fn the_status_is_retained_cbor_on_the_status_topic() {
        let me = identity();
        let msg = me.status(Status::ONLINE);
        assert_eq!(msg.topic, me.topic());
        assert!(msg.retained);
        assert_eq!(msg.meta.content_type.as_deref(), Some("application/cbor"));
    }
}
