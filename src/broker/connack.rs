//! The CONNACK properties of a connection, and the promises they break.

use std::time::Duration;

use serde::Serialize;

use crate::config::Config;
use crate::mqtt::MqttError;

/// What the broker said about itself in its CONNACK. Absent properties
/// take their MQTT 5 defaults (everything available, no limits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// The URI paho actually connected to (the one that answered, when a
    /// list of brokers is configured).
    pub server_uri: String,
    /// The broker kept a session for this client id.
    pub session_present: bool,
    /// `$share/` subscriptions work (Shared Subscription Available).
    pub shared_subscriptions: bool,
    /// Retained messages work (Retain Available).
    pub retain: bool,
    /// Highest QoS the broker accepts (Maximum QoS).
    pub max_qos: u8,
    /// QoS 1 and 2 messages the broker sends before waiting for acks.
    pub receive_maximum: u16,
    /// Session expiry the broker imposed instead of ours, in seconds.
    pub session_expiry: Option<u32>,
    /// Largest packet the broker accepts, in bytes.
    pub max_packet_size: Option<u32>,
    /// Topic aliases the broker accepts.
    pub topic_alias_maximum: u16,
    /// `+` and `#` filters work (Wildcard Subscription Available).
    pub wildcards: bool,
}

impl Capabilities {
    /// What a broker that says nothing offers: everything, no limits (the
    /// MQTT 5 defaults of absent CONNACK properties).
    pub fn assumed(server_uri: &str, session_present: bool) -> Capabilities {
        Capabilities {
            server_uri: server_uri.to_string(),
            session_present,
            shared_subscriptions: true,
            retain: true,
            max_qos: 2,
            receive_maximum: u16::MAX,
            session_expiry: None,
            max_packet_size: None,
            topic_alias_maximum: 0,
            wildcards: true,
        }
    }

    /// What of `needs` this broker cannot keep, worst first.
    pub fn findings(&self, needs: &Needs) -> Vec<Finding> {
        let mut out = Vec::new();
        if needs.group.is_some() && !self.shared_subscriptions {
            out.push(Finding::fatal(
                "shared_subscriptions",
                "the broker does not support shared subscriptions ($share/), so --group cannot work - serve without --group, or use a broker whose shared subscriptions work (docs/SCALING.md, `mqttapp doctor`)".to_string(),
            ));
        }
        if self.max_qos < 1 {
            out.push(Finding::fatal(
                "max_qos",
                "the broker accepts QoS 0 only (Maximum QoS 0): requests and replies would be lost silently - allow QoS 1 on the broker (Mosquitto: remove max_qos 0)".to_string(),
            ));
        }
        if !self.wildcards {
            out.push(Finding::fatal(
                "wildcards",
                "the broker does not support wildcard subscriptions, which the request and status topics need".to_string(),
            ));
        }
        if !self.retain {
            out.push(Finding::warning(
                "retain",
                "the broker does not keep retained messages: statuses are published without the retain flag, and clients find servers by a live ping instead (docs/PROTOCOL.md)".to_string(),
            ));
        }
        if let (Some(cap), Some(wanted)) = (self.session_expiry, needs.session_expiry) {
            if Duration::from_secs(u64::from(cap)) < wanted {
                out.push(Finding::warning(
                    "session_expiry",
                    format!("the broker caps the session expiry at {cap} s (asked for {} s): requests sent while this server is away longer than that are lost", wanted.as_secs()),
                ));
            }
        }
        if let (Some(max), Some(payload)) = (self.max_packet_size, needs.max_payload) {
            // Topic, properties and headers take room too: 1 KiB for them.
            if (max as usize) < payload + 1024 {
                out.push(Finding::warning(
                    "max_packet_size",
                    format!("the broker accepts packets of at most {max} bytes, less than the largest request or reply allowed here ({payload} bytes plus headers): larger ones will be refused - lower --max-payload or raise the broker's limit"),
                ));
            }
        }
        if self.receive_maximum < 16 {
            out.push(Finding::warning(
                "receive_maximum",
                format!("the broker sends at most {} unacknowledged messages at a time (Receive Maximum): throughput will be low", self.receive_maximum),
            ));
        }
        out.sort_by_key(|f| f.severity);
        out
    }
}

/// For `serve`, right after its first connect: logs what the broker
/// cannot promise and refuses to serve when a promise cannot hold at all
/// (a group without shared subscriptions would otherwise log "serving"
/// and reconnect forever).
///
/// # Errors
/// [`MqttError::Unsupported`] for the first fatal finding.
pub fn check_serve(caps: &Capabilities, config: &Config, uri: &str) -> Result<(), MqttError> {
    let needs = Needs {
        group: config.group.clone(),
        session_expiry: Some(config.session_expiry),
        max_payload: Some(config.limits.max_payload),
    };
    tracing::debug!(?caps, "broker capabilities (CONNACK)");
    for finding in caps.findings(&needs) {
        match finding.severity {
            Severity::Fatal => {
                return Err(MqttError::Unsupported {
                    uri: uri.to_string(),
                    reason: finding.message,
                })
            }
            Severity::Warning => tracing::warn!(property = finding.property, "{}", finding.message),
        }
    }
    Ok(())
}

/// True when the broker refused a connect because its will was retained
/// (Retain Available is false): a server then connects again with a will
/// and statuses that are not retained.
pub fn retain_refused(e: &MqttError) -> bool {
    matches!(e, MqttError::Unsupported { reason, .. } if reason.contains(RETAIN_REFUSED))
}

/// The reason code's text in [`refused_connect`]'s message.
pub const RETAIN_REFUSED: &str = "does not keep retained messages";

/// What a command relies on, for [`Capabilities::findings`].
#[derive(Debug, Clone, Default)]
pub struct Needs {
    /// The shared-subscription group, if serving in one.
    pub group: Option<String>,
    /// The session expiry asked for (servers).
    pub session_expiry: Option<Duration>,
    /// The largest payload the command may send or receive.
    pub max_payload: Option<usize>,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The promise cannot hold: refuse to run.
    Fatal,
    /// The promise holds only partly: say so and go on.
    Warning,
}

/// One promise the broker does not allow us to keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How bad.
    pub severity: Severity,
    /// Stable name of the CONNACK property (for `--json` and tests).
    pub property: &'static str,
    /// What it means, for the user.
    pub message: String,
}

impl Finding {
    fn fatal(property: &'static str, message: String) -> Finding {
        Finding {
            severity: Severity::Fatal,
            property,
            message,
        }
    }

    fn warning(property: &'static str, message: String) -> Finding {
        Finding {
            severity: Severity::Warning,
            property,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> Capabilities {
        Capabilities::assumed("tcp://h:1", false)
    }

    fn serving_group() -> Needs {
        Needs {
            group: Some("g".into()),
            session_expiry: Some(Duration::from_secs(86_400)),
            max_payload: Some(256 * 1024),
        }
    }

    #[test]
    fn absent_properties_mean_everything_is_available() {
        let c = caps();
        assert!(c.shared_subscriptions && c.retain && c.wildcards);
        assert_eq!((c.max_qos, c.receive_maximum), (2, u16::MAX));
        assert!(c.findings(&serving_group()).is_empty());
    }

    #[test]
    fn a_group_without_shared_subscriptions_is_fatal() {
        let c = Capabilities {
            shared_subscriptions: false,
            ..caps()
        };
        let f = c.findings(&serving_group());
        assert_eq!(f[0].severity, Severity::Fatal);
        assert_eq!(f[0].property, "shared_subscriptions");
        assert!(
            c.findings(&Needs::default()).is_empty(),
            "fine without --group"
        );
    }

    #[test]
    fn limits_that_break_promises_are_reported() {
        let c = Capabilities {
            max_qos: 0,
            retain: false,
            session_expiry: Some(60),
            max_packet_size: Some(1000),
            receive_maximum: 10,
            ..caps()
        };
        let names: Vec<_> = c
            .findings(&serving_group())
            .iter()
            .map(|f| (f.property, f.severity))
            .collect();
        assert_eq!(
            names,
            vec![
                ("max_qos", Severity::Fatal),
                ("retain", Severity::Warning),
                ("session_expiry", Severity::Warning),
                ("max_packet_size", Severity::Warning),
                ("receive_maximum", Severity::Warning),
            ]
        );
    }
}
