//! A list of brokers (`--broker a,b` or `--broker a --broker b`): the
//! nodes of one cluster, or brokers bridged so that they share topics.
//! paho tries them in order at every connect and reconnect, so a client
//! moves to a surviving node by itself; a persistent session resumes
//! there when the cluster shares sessions between nodes (docs/DOCTOR.md).

use crate::mqtt::{BrokerUri, MqttError};

/// The entries of a broker setting: comma-separated, blanks trimmed,
/// empty entries dropped.
pub fn split(text: &str) -> Vec<&str> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Every entry of `text` parsed on its own (`doctor` probes each).
///
/// # Errors
/// [`MqttError::BadUri`] for the first bad entry, or an empty list.
pub fn each(text: &str) -> Result<Vec<BrokerUri>, MqttError> {
    let entries = split(text);
    if entries.is_empty() {
        return Err(MqttError::BadUri {
            uri: text.to_string(),
            reason: "no broker address".into(),
        });
    }
    entries.into_iter().map(BrokerUri::parse_one).collect()
}

/// One [`BrokerUri`] for the whole list: the first entry, with every
/// entry in [`BrokerUri::failover`]. A single address parses exactly as
/// before. All entries must agree on TLS and on WebSocket, since one set
/// of connect options serves them all.
///
/// # Errors
/// [`MqttError::BadUri`] for a bad entry or a mixed list.
pub fn parse(text: &str) -> Result<BrokerUri, MqttError> {
    if !text.contains(',') {
        return BrokerUri::parse_one(text);
    }
    let all = each(text)?;
    let ws = |u: &BrokerUri| u.paho.starts_with("ws");
    let first = all[0].clone();
    if all
        .iter()
        .any(|u| u.tls != first.tls || ws(u) != ws(&first))
    {
        return Err(MqttError::BadUri {
            uri: text.to_string(),
            reason: "the brokers of a list must all use the same scheme (all mqtt://, or all mqtts://, ws://, wss://)".into(),
        });
    }
    Ok(BrokerUri {
        display: text.to_string(),
        failover: all.iter().map(|u| u.paho.clone()).collect(),
        ..first
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_broker_parses_as_before_and_a_list_fails_over() {
        let one = parse("mqtt://h:1").unwrap();
        assert!(one.failover.is_empty());
        assert_eq!(one, BrokerUri::parse_one("mqtt://h:1").unwrap());
        let two = parse("mqtt://a:1, b:2 ,").unwrap();
        assert_eq!(two.paho, "tcp://a:1");
        assert_eq!(two.failover, vec!["tcp://a:1", "tcp://b:2"]);
        assert_eq!(each("a:1,b:2").unwrap().len(), 2);
    }

    #[test]
    fn bad_or_mixed_lists_are_refused() {
        for bad in [
            ",",
            "mqtt://a:1,mqtts://b:2",
            "a:1,http://b",
            "a:1,ws://b/m",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
