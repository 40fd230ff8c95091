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
//!
//! A ping that carries a Response Topic and Correlation Data (`mqttapp
//! ping`) gets a direct answer instead, a [`Pong`], from every server
//! (rate-limited per server: the server answers at most a few hundred
//! a second).

use serde::{Deserialize, Serialize};

use crate::mqtt::{Client, Message, MessageMeta, Subscription};
use crate::protocol::{from_cbor, to_cbor, Encoding};

/// How long a client waits for answers to a ping: servers answer within
/// about a second (at most once a second, checked every 100 ms).
pub const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_millis(1500);

/// `<prefix>/v1/ping`.
pub fn topic(prefix: &str) -> String {
    crate::protocol::Topics::new(prefix).ping()
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

/// A server's direct answer to a ping: who answered. CBOR map (JSON when
/// the ping's Content Type is `application/json`) with these keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    /// The server's id, as in its status topic.
    pub server_id: String,
    /// The random id of this run of the server (as in its status).
    pub instance: String,
    /// The server's version.
    pub version: String,
}

impl Pong {
    /// The payload in `encoding` (text is answered as JSON: a pong has
    /// three fields, no main argument).
    pub fn encode(&self, encoding: Encoding) -> Vec<u8> {
        match encoding {
            Encoding::Cbor => to_cbor(self),
            // Three strings always serialize.
            _ => serde_json::to_vec(self).expect("a pong is JSON"),
        }
    }

    /// Reads a pong in either encoding; `None` for anything else.
    pub fn decode(content_type: Option<&str>, payload: &[u8]) -> Option<Pong> {
        match Encoding::detect(content_type, payload) {
            Encoding::Cbor => from_cbor(payload).ok(),
            _ => serde_json::from_slice(payload).ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Encoding, Pong};

    #[test]
    fn a_pong_reads_back_in_both_encodings() {
        let pong = Pong {
            server_id: "s1".into(),
            instance: "00ff".into(),
            version: "1.2.3".into(),
        };
        let cbor = pong.encode(Encoding::Cbor);
        assert_eq!(Pong::decode(None, &cbor), Some(pong.clone()));
        let json = pong.encode(Encoding::Json);
        assert!(String::from_utf8_lossy(&json).contains("\"server_id\":\"s1\""));
        assert_eq!(Pong::decode(Some("application/json"), &json), Some(pong));
        assert_eq!(Pong::decode(None, b"nope"), None);
    }

    #[test]
    fn the_ping_topic_is_under_the_prefix() {
        assert_eq!(super::topic("p/q"), "p/q/v1/ping");
    }
}
