//! The paho side of the CONNACK: its properties read into the broker's
//! [`Capabilities`] (`crate::broker::connack` judges them), and the
//! connect refusals that mean a missing feature.

use paho_mqtt as paho;

use crate::broker::connack::RETAIN_REFUSED;
use crate::broker::Capabilities;

impl Capabilities {
    /// Reads the CONNACK of a successful connect.
    pub(super) fn of(response: &paho::ServerResponse) -> Capabilities {
        let connect = response.connect_response();
        Capabilities::from_properties(
            response.properties(),
            connect.as_ref().map_or("", |c| c.server_uri.as_str()),
            connect.as_ref().is_some_and(|c| c.session_present),
        )
    }

    /// Reads CONNACK properties (defaults for absent ones).
    pub(super) fn from_properties(
        props: &paho::Properties,
        server_uri: &str,
        session_present: bool,
    ) -> Capabilities {
        use paho::PropertyCode as P;
        let flag = |code| props.get_int(code).is_none_or(|v| v != 0);
        let u32_of = |code| props.get_int(code).map(|v| v as u32);
        Capabilities {
            shared_subscriptions: flag(P::SharedSubscriptionAvailable),
            retain: flag(P::RetainAvailable),
            max_qos: props
                .get_int(P::MaximumQos)
                .map_or(2, |v| u8::try_from(v).unwrap_or(2)),
            receive_maximum: props
                .get_int(P::ReceiveMaximum)
                .map_or(u16::MAX, |v| u16::try_from(v).unwrap_or(u16::MAX)),
            session_expiry: u32_of(P::SessionExpiryInterval),
            max_packet_size: u32_of(P::MaximumPacketSize),
            topic_alias_maximum: props
                .get_int(P::TopicAliasMaximum)
                .map_or(0, |v| u16::try_from(v).unwrap_or(0)),
            wildcards: flag(P::WildcardSubscriptionAvailable),
            ..Capabilities::assumed(server_uri, session_present)
        }
    }
}

/// Why the broker refused a connect whose will it cannot take (a
/// server's will is its retained QoS 1 "offline" status).
pub fn refused_connect(rc: paho::ReasonCode) -> String {
    match rc {
        paho::ReasonCode::QosNotSupported => "it refused the connection (QoS not supported): the broker accepts QoS 0 only, and requests and replies would be lost silently - allow QoS 1 on the broker (Mosquitto: remove max_qos 0)".into(),
        _ => format!("it refused the connection ({rc}): the broker {RETAIN_REFUSED}, which a server's status needs - allow them on the broker (Mosquitto: retain_available true)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paho::PropertyCode as P;

    #[test]
    fn connack_properties_are_read_with_mqtt5_defaults() {
        let mut props = paho::Properties::new();
        for (code, v) in [
            (P::SharedSubscriptionAvailable, 0),
            (P::MaximumQos, 1),
            (P::ReceiveMaximum, 10),
            (P::SessionExpiryInterval, 60),
        ] {
            props.push_int(code, v).unwrap();
        }
        let c = Capabilities::from_properties(&props, "tcp://h:1", true);
        assert!(!c.shared_subscriptions && c.retain && c.wildcards && c.session_present);
        assert_eq!((c.max_qos, c.receive_maximum), (1, 10));
        assert_eq!((c.session_expiry, c.max_packet_size), (Some(60), None));
        let none = Capabilities::from_properties(&paho::Properties::new(), "tcp://h:1", false);
        assert_eq!(none, Capabilities::assumed("tcp://h:1", false));
    }
}
