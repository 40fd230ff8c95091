//! The status ping: finding online servers where retained statuses do not
//! reach the client (a broker without retained messages, or a cluster
//! whose nodes do not share them, e.g. ejabberd).
//!
//! A client that saw no status for half of its wait publishes an empty
//! QoS 0 message on `<prefix>/v1/ping`; every server subscribed there
//! publishes its current status again (at most once a second, so a flood
//! of pings costs each server one publish a second), which live
//! subscribers receive on any node. The client still fails fast with "no
//! server online" when none answers (docs/PROTOCOL.md).

use crate::mqtt::{Client, Message, MessageMeta, Subscription};

/// How long a client waits for answers to a ping: servers answer within
/// about a second (at most once a second, checked every 100 ms).
pub const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_millis(1500);

/// `<prefix>/v1/ping`.
pub fn topic(prefix: &str) -> String {
    format!("{prefix}/v1/ping")
}

/// Publishes one ping, without waiting: QoS 0, nothing to acknowledge. A
/// broker whose ACL refuses it drops it, and the client falls back to "no
/// server online".
pub fn send(client: &Client, prefix: &str) {
    let mut msg = Message::new(&topic(prefix), Vec::new(), MessageMeta::default(), false);
    msg.qos = 0;
    if let Err(e) = client.try_publish(msg) {
        tracing::debug!(error = %e, "could not publish a status ping");
    }
}

/// Subscribes a server to the pings, best effort and not awaited (the
/// subscribe is sent at once; its outcome is not waited for): a broker
/// whose ACL does not allow it leaves the server as it was before pings
/// existed (found through its retained status only).
pub fn listen(client: &Client, prefix: &str) {
    drop(client.subscribe(&[Subscription {
        filter: topic(prefix),
        qos: 0,
        retained_only_if_new: false,
    }]));
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_ping_topic_is_under_the_prefix() {
        assert_eq!(super::topic("p/q"), "p/q/v1/ping");
    }
}
