//! The user properties a server puts on every reply (docs/PROTOCOL.md,
//! "User properties"): who answered and where its time went, plus the
//! request's `traceparent` returned unchanged. Built by the server, read
//! by clients; nothing else of a request's user properties is reflected.

use std::time::Duration;

use super::traceparent;
use super::user_props::{QUEUED_US, RESERVED_PREFIX, SERVER_ID, TRACEPARENT, WORK_US};

/// What a reply says about its server's side of the round trip.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerTimes {
    /// The answering server's id (as in its status topic).
    pub server_id: Option<String>,
    /// From the request's arrival in the server to the start of its work.
    pub queued: Option<Duration>,
    /// The work itself (for a burst of edits: the whole burst, commit included).
    pub work: Option<Duration>,
}

impl ServerTimes {
    /// The figures of a reply's user properties; absent or malformed ones
    /// (an older server, another implementation) are `None`.
    pub fn of_reply(user: &[(String, String)]) -> ServerTimes {
        let find = |key: &str| user.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        let micros = |key: &str| {
            find(key)
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_micros)
        };
        ServerTimes {
            server_id: find(SERVER_ID).cloned(),
            queued: micros(QUEUED_US),
            work: micros(WORK_US),
        }
    }
}

/// The user properties of a reply: server id, queued and work time in
/// whole microseconds, and the request's `traceparent` when it is valid.
/// Nothing else of the request is copied.
pub fn reply_properties(
    server_id: &str,
    queued: Duration,
    work: Duration,
    traceparent: Option<&str>,
) -> Vec<(String, String)> {
    let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let mut user = Vec::with_capacity(4);
    user.push((SERVER_ID.to_string(), server_id.to_string()));
    user.push((QUEUED_US.to_string(), micros(queued).to_string()));
    user.push((WORK_US.to_string(), micros(work).to_string()));
    if let Some(tp) = traceparent {
        user.push((TRACEPARENT.to_string(), tp.to_string()));
    }
    user
}

/// The request's valid `traceparent`, if any: the first property of that
/// name decides (a later duplicate is ignored, as any other property).
pub fn request_traceparent(user: &[(String, String)]) -> Option<&str> {
    let (_, value) = user.iter().find(|(k, _)| k == TRACEPARENT)?;
    traceparent::parse(value)
}

/// Whether a client may send a user property named `key`: any name but
/// those starting with `mqttapp-`, which the protocol owns.
pub fn is_reserved_property(key: &str) -> bool {
    key.starts_with(RESERVED_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reply_properties_read_back_as_the_same_figures() {
        let user = reply_properties(
            "s-1",
            Duration::from_micros(1500),
            Duration::from_nanos(2_999),
            Some(TP),
        );
        assert_eq!(
            user,
            pairs(&[
                ("mqttapp-server-id", "s-1"),
                ("mqttapp-queued-us", "1500"),
                ("mqttapp-work-us", "2"),
                ("traceparent", TP),
            ])
        );
        let times = ServerTimes::of_reply(&user);
        assert_eq!(times.server_id.as_deref(), Some("s-1"));
        assert_eq!(times.queued, Some(Duration::from_micros(1500)));
        assert_eq!(times.work, Some(Duration::from_micros(2)));
    }

    #[test]
    fn malformed_or_missing_figures_are_none() {
        let times = ServerTimes::of_reply(&pairs(&[
            ("mqttapp-queued-us", "-3"),
            ("mqttapp-work-us", "1e3"),
        ]));
        assert_eq!(times, ServerTimes::default());
    }

    #[test]
    fn only_a_valid_first_traceparent_is_taken() {
        let valid = pairs(&[("x", "y"), ("traceparent", TP), ("traceparent", "bad")]);
        assert_eq!(request_traceparent(&valid), Some(TP));
        let invalid_first = pairs(&[("traceparent", "bad"), ("traceparent", TP)]);
        assert_eq!(request_traceparent(&invalid_first), None);
        assert_eq!(request_traceparent(&[]), None);
    }

    #[test]
    fn names_starting_with_mqttapp_are_reserved() {
        assert!(is_reserved_property("mqttapp-server-id"));
        assert!(is_reserved_property("mqttapp-anything"));
        assert!(!is_reserved_property("traceparent"));
        assert!(
            !is_reserved_property("MQTTAPP-x"),
            "names are case-sensitive, as in MQTT"
        );
    }
}
