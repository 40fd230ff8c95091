//! Topic names. Every topic the program uses is built here, never with an
//! ad-hoc `format!` at a call site, so the contract lives in one place.

use super::Op;

/// Builds and parses the topics under one prefix (`mqttapp` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    /// Topics under `prefix`; the prefix is validated by the configuration.
    pub fn new(prefix: impl Into<String>) -> Self {
        Topics {
            prefix: prefix.into(),
        }
    }

    /// The prefix these topics live under.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>/v1/req/<op>`: where requests for one operation go.
    pub fn request(&self, op: Op) -> String {
        format!("{}/v1/req/{}", self.prefix, op.as_str())
    }

    /// `<prefix>/v1/req/+`: what a server subscribes to, every operation.
    pub fn request_filter(&self) -> String {
        format!("{}/v1/req/+", self.prefix)
    }

    /// The operation name in a request topic, if the topic is one of ours.
    ///
    /// Returns the raw name so that unknown operations can be answered with
    /// `unknown_op` instead of being ignored.
    pub fn op_name<'a>(&self, topic: &'a str) -> Option<&'a str> {
        topic
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix("/v1/req/")
            .filter(|op| !op.is_empty() && !op.contains('/'))
    }

    /// `<prefix>/v1/resp/<client-id>`: the default response topic of a client.
    pub fn response(&self, client_id: &str) -> String {
        format!("{}/v1/resp/{}", self.prefix, client_id)
    }

    /// `<prefix>/v1/status/<server-id>`: a server's retained status.
    pub fn status(&self, server_id: &str) -> String {
        format!("{}/v1/status/{}", self.prefix, server_id)
    }

    /// `<prefix>/v1/status/+`: every server's status.
    pub fn status_filter(&self) -> String {
        format!("{}/v1/status/+", self.prefix)
    }

    /// `<prefix>/v1/dlq`: where dead letters are announced.
    pub fn dead_letters(&self) -> String {
        format!("{}/v1/dlq", self.prefix)
    }

    /// True for the protocol's own topics other than responses (requests,
    /// statuses, dead letters): a server never publishes a reply there.
    pub fn is_reserved(&self, topic: &str) -> bool {
        let Some(rest) = topic
            .strip_prefix(self.prefix.as_str())
            .and_then(|r| r.strip_prefix("/v1/"))
        else {
            return false;
        };
        !rest.starts_with("resp/")
    }

    /// Wraps a filter in an MQTT 5 shared subscription when a group is set.
    pub fn shared(filter: &str, group: Option<&str>) -> String {
        match group {
            Some(group) => format!("$share/{group}/{filter}"),
            None => filter.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_topics_carry_the_operation() {
        let t = Topics::new("mqttapp");
        assert_eq!(t.request(Op::Calc), "mqttapp/v1/req/calc");
        assert_eq!(t.request_filter(), "mqttapp/v1/req/+");
        assert_eq!(t.op_name("mqttapp/v1/req/echo"), Some("echo"));
        assert_eq!(t.op_name("mqttapp/v1/req/nope"), Some("nope"));
        assert_eq!(t.op_name("mqttapp/v1/req/"), None);
        assert_eq!(t.op_name("other/v1/req/calc"), None);
        assert_eq!(t.op_name("mqttapp/v1/req/a/b"), None);
    }

    #[test]
    fn other_topics_follow_the_contract() {
        let t = Topics::new("p/q");
        assert_eq!(t.response("c1"), "p/q/v1/resp/c1");
        assert_eq!(t.status("s1"), "p/q/v1/status/s1");
        assert_eq!(t.status_filter(), "p/q/v1/status/+");
        assert_eq!(t.dead_letters(), "p/q/v1/dlq");
        assert_eq!(Topics::shared("a/+", Some("g")), "$share/g/a/+");
        assert_eq!(Topics::shared("a/+", None), "a/+");
    }

    #[test]
    fn protocol_topics_other_than_responses_are_reserved() {
        let t = Topics::new("p");
        for reserved in [
            "p/v1/req/calc",
            "p/v1/status/s",
            "p/v1/dlq",
            "p/v1/resp",
            "p/v1/x",
        ] {
            assert!(t.is_reserved(reserved), "{reserved}");
        }
        for free in [
            "p/v1/resp/c1",
            "p/v2/req/calc",
            "pp/v1/req/calc",
            "other/x",
            "p",
        ] {
            assert!(!t.is_reserved(free), "{free}");
        }
    }
}
