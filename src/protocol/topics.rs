//! Topic names. Every topic the program uses is built here, never with an
//! ad-hoc `format!` at a call site, so the contract lives in one place.

use super::Op;

/// Builds and parses the topics under one prefix (`mqttapp` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
    /// Topic filters a server may also reply to, besides its prefix's
    /// response topics (the `reply_topics` setting).
    extra_replies: Vec<String>,
}

impl Topics {
    /// Topics under `prefix`; the prefix is validated by the configuration.
    pub fn new(prefix: impl Into<String>) -> Self {
        Topics {
            prefix: prefix.into(),
            extra_replies: Vec::new(),
        }
    }

    /// The same topics, with replies also allowed to topics matching
    /// `filters` (MQTT topic filters, validated by the configuration).
    /// Without them a server replies only under `<prefix>/v1/resp/`, so a
    /// request cannot aim its reply at another system's topics.
    pub fn allowing_replies(mut self, filters: &[String]) -> Self {
        self.extra_replies = filters.to_vec();
        self
    }

    /// The prefix these topics live under.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>/v1/req/<op>`: where requests for one operation go.
    pub fn request(&self, op: Op) -> String {
        format!("{}/v1/req/{}", self.prefix, op.as_str())
    }

    /// `<prefix>/v1/req/<name>`: where requests for the operation called
    /// `name` go (a user-defined one, or a built-in by its name).
    pub fn request_named(&self, name: &str) -> String {
        format!("{}/v1/req/{}", self.prefix, name)
    }

    /// `<prefix>/v1/req/+`: what a server subscribes to, every operation.
    pub fn request_filter(&self) -> String {
        format!("{}/v1/req/+", self.prefix)
    }

    /// `<prefix>/v1/all/req/<op>`: a request for every online server
    /// (scatter-gather). Servers subscribe to it without a shared group,
    /// so each member of a group gets its own copy.
    pub fn all_request(&self, op: Op) -> String {
        self.all_request_named(op.as_str())
    }

    /// `<prefix>/v1/all/req/<name>`: the same for any operation name (a
    /// user-defined one).
    pub fn all_request_named(&self, name: &str) -> String {
        format!("{}/v1/all/req/{}", self.prefix, name)
    }

    /// `<prefix>/v1/all/req/+`: what every server subscribes to, never
    /// inside `$share/...`.
    pub fn all_request_filter(&self) -> String {
        format!("{}/v1/all/req/+", self.prefix)
    }

    /// `<prefix>/v1/ping`: live servers answer here (status again, or a
    /// direct answer when the ping names a response topic).
    pub fn ping(&self) -> String {
        format!("{}/v1/ping", self.prefix)
    }

    /// The operation name in a request topic (`req/<op>` or
    /// `all/req/<op>`), if the topic is one of ours.
    ///
    /// Returns the raw name so that unknown operations can be answered with
    /// `unknown_op` instead of being ignored.
    pub fn op_name<'a>(&self, topic: &'a str) -> Option<&'a str> {
        let rest = topic.strip_prefix(self.prefix.as_str())?;
        rest.strip_prefix("/v1/req/")
            .or_else(|| rest.strip_prefix("/v1/all/req/"))
            .filter(|op| !op.is_empty() && !op.contains('/'))
    }

    /// `<prefix>/v1/resp/<client-id>`: the default response topic of a client.
    pub fn response(&self, client_id: &str) -> String {
        format!("{}/v1/resp/{}", self.prefix, client_id)
    }

    /// `<prefix>/v1/resp/#`: every response topic under the prefix.
    pub fn response_filter(&self) -> String {
        format!("{}/v1/resp/#", self.prefix)
    }

    /// The topic filters replies may go to: [`Topics::response_filter`]
    /// and the extra ones (see [`Topics::allowing_replies`]).
    pub fn reply_filters(&self) -> Vec<String> {
        let mut filters = vec![self.response_filter()];
        filters.extend(self.extra_replies.iter().cloned());
        filters
    }

    /// True when a reply may be published to `topic`: it matches one of
    /// [`Topics::reply_filters`]. (Reserved topics are refused before.)
    /// Checked for every request, so without building the filters: the
    /// prefix holds no wildcard (the configuration refuses them), so
    /// matching `<prefix>/v1/resp/#` is comparing strings.
    pub fn reply_allowed(&self, topic: &str) -> bool {
        let under_responses = topic
            .strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_prefix("/v1/resp"))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        under_responses
            || self
                .extra_replies
                .iter()
                .any(|filter| filter_matches(filter, topic))
    }

    /// `<prefix>/v1/status/<server-id>`: a server's retained status.
    pub fn status(&self, server_id: &str) -> String {
        format!("{}/v1/status/{}", self.prefix, server_id)
    }

    /// `<prefix>/v1/status/+`: every server's status.
    pub fn status_filter(&self) -> String {
        format!("{}/v1/status/+", self.prefix)
    }

    /// `<prefix>/v1/describe/<server-id>`: a server's retained
    /// self-description (`docs/PROTOCOL.md`, "Self-description").
    pub fn describe(&self, server_id: &str) -> String {
        format!("{}/v1/describe/{}", self.prefix, server_id)
    }

    /// `<prefix>/v1/describe/+`: every server's self-description.
    pub fn describe_filter(&self) -> String {
        format!("{}/v1/describe/+", self.prefix)
    }

    /// `<prefix>/v1/stats/<server-id>`: a server's statistics
    /// (docs/PROTOCOL.md, "Statistics").
    pub fn stats(&self, server_id: &str) -> String {
        format!("{}/v1/stats/{}", self.prefix, server_id)
    }

    /// `<prefix>/v1/stats/+`: every server's statistics.
    pub fn stats_filter(&self) -> String {
        format!("{}/v1/stats/+", self.prefix)
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

/// MQTT topic matching: `+` matches one level, a final `#` any number of
/// levels (also none: `a/#` matches `a`). Wildcards at the first level do
/// not match topics starting with `$` (MQTT 5, 4.7.2).
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut levels = topic.split('/');
    for part in filter.split('/') {
        if part == "#" {
            return true;
        }
        match levels.next() {
            Some(level) if part == "+" || part == level => {}
            _ => return false,
        }
    }
    levels.next().is_none()
}

/// Checks that `filter` is a valid MQTT topic filter: not empty, no NUL,
/// `+` and `#` only as whole levels, `#` only last.
///
/// # Errors
/// What is wrong, for the configuration's error message.
pub fn validate_filter(filter: &str) -> Result<(), &'static str> {
    if filter.is_empty() {
        return Err("a topic filter must not be empty");
    }
    if filter.len() > 65_535 || filter.contains('\0') {
        return Err("a topic filter must be at most 65535 bytes, without NUL");
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err("'#' must be a whole level, and the last one");
        }
        if level.contains('+') && *level != "+" {
            return Err("'+' must be a whole level");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_like_mqtt() {
        for (filter, topic) in [
            ("a/b", "a/b"),
            ("a/+", "a/b"),
            ("a/+/c", "a/b/c"),
            ("a/#", "a"),
            ("a/#", "a/b/c"),
            ("#", "a/b"),
            ("+/+", "/x"),
            ("a/+", "a/"),
        ] {
            assert!(filter_matches(filter, topic), "{filter} {topic}");
        }
        for (filter, topic) in [
            ("a/b", "a/b/c"),
            ("a/+", "a/b/c"),
            ("a/+", "a"),
            ("a/b/#", "a/c"),
            ("#", "$SYS/x"),
            ("+/x", "$SYS/x"),
            ("a/b", "a"),
        ] {
            assert!(!filter_matches(filter, topic), "{filter} {topic}");
        }
    }

    #[test]
    fn filters_are_validated() {
        for ok in ["a", "a/+/b", "#", "a/#", "+", "home/+/cmd"] {
            assert_eq!(validate_filter(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a/#/b", "a#", "a/b+", "a+/b", "a\0"] {
            assert!(validate_filter(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn replies_go_under_the_prefix_unless_allowed() {
        let t = Topics::new("p");
        assert!(t.reply_allowed("p/v1/resp/c1"));
        assert!(t.reply_allowed("p/v1/resp/a/b"));
        assert!(!t.reply_allowed("home/door/cmd"));
        assert!(!t.reply_allowed("q/v1/resp/c1"));
        assert!(!t.reply_allowed("pp/v1/resp/c1"));
        let t = t.allowing_replies(&["home/+/cmd".to_string()]);
        assert!(t.reply_allowed("home/door/cmd"));
        assert!(!t.reply_allowed("home/door/cmd/x"));
        assert_eq!(t.reply_filters(), ["p/v1/resp/#", "home/+/cmd"]);
    }

    #[test]
    fn reply_allowed_agrees_with_matching_the_reply_filters() {
        let t = Topics::new("a/b").allowing_replies(&["home/+/cmd".to_string()]);
        let topics = [
            "a/b/v1/resp",
            "a/b/v1/resp/",
            "a/b/v1/resp/c1",
            "a/b/v1/resp/c1/x",
            "a/b/v1/respx",
            "a/b/v1/resp2/c1",
            "a/b/v1/req/calc",
            "a/b/v1",
            "a/bb/v1/resp/c1",
            "a/b/v2/resp/c1",
            "a//v1/resp/c1",
            "x/a/b/v1/resp/c1",
            "home/door/cmd",
            "home/door/cmd/x",
            "$SYS/a/b/v1/resp/c1",
            "",
        ];
        for topic in topics {
            let by_filters = t
                .reply_filters()
                .iter()
                .any(|filter| filter_matches(filter, topic));
            assert_eq!(t.reply_allowed(topic), by_filters, "{topic:?}");
        }
    }

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
        assert_eq!(t.all_request(Op::Calc), "mqttapp/v1/all/req/calc");
        assert_eq!(t.all_request_filter(), "mqttapp/v1/all/req/+");
        assert_eq!(t.op_name("mqttapp/v1/all/req/calc"), Some("calc"));
        assert_eq!(t.op_name("mqttapp/v1/all/req/"), None);
        assert_eq!(t.op_name("mqttapp/v1/all/calc"), None);
        assert_eq!(t.ping(), "mqttapp/v1/ping");
    }

    #[test]
    fn other_topics_follow_the_contract() {
        let t = Topics::new("p/q");
        assert_eq!(t.response("c1"), "p/q/v1/resp/c1");
        assert_eq!(t.status("s1"), "p/q/v1/status/s1");
        assert_eq!(t.status_filter(), "p/q/v1/status/+");
        assert_eq!(t.dead_letters(), "p/q/v1/dlq");
        assert_eq!(t.describe("s1"), "p/q/v1/describe/s1");
        assert_eq!(t.describe_filter(), "p/q/v1/describe/+");
        assert_eq!(t.stats("s1"), "p/q/v1/stats/s1");
        assert_eq!(t.stats_filter(), "p/q/v1/stats/+");
        assert!(t.is_reserved(&t.stats("s1")));
        assert_eq!(Topics::shared("a/+", Some("g")), "$share/g/a/+");
        assert_eq!(Topics::shared("a/+", None), "a/+");
    }

    #[test]
    fn protocol_topics_other_than_responses_are_reserved() {
        let t = Topics::new("p");
        for reserved in [
            "p/v1/req/calc",
            "p/v1/status/s",
            "p/v1/describe/s",
            "p/v1/dlq",
            "p/v1/all/req/calc",
            "p/v1/ping",
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
