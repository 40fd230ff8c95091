//! Broker URIs: what the user writes, and what paho C wants.

use super::MqttError;

/// A broker URI, as given and as paho C wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUri {
    /// As the user wrote it (for messages).
    pub display: String,
    /// `tcp://`, `ssl://`, `ws://` or `wss://` form for paho.
    pub paho: String,
    /// Host and port, for the reachability probe.
    pub host_port: String,
    /// TLS is in use.
    pub tls: bool,
}

impl BrokerUri {
    /// Parses `mqtt://`, `mqtts://`, `tcp://`, `ssl://`, `ws://`, `wss://`
    /// URIs, or a bare `host[:port]`.
    ///
    /// # Errors
    /// [`MqttError::BadUri`] for unknown schemes or a missing host.
    pub fn parse(uri: &str) -> Result<BrokerUri, MqttError> {
        let bad = |reason: &str| MqttError::BadUri {
            uri: uri.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = uri.split_once("://").unwrap_or(("mqtt", uri));
        let (paho_scheme, tls, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => ("tcp", false, 1883),
            "mqtts" | "ssl" => ("ssl", true, 8883),
            "ws" => ("ws", false, 80),
            "wss" => ("wss", true, 443),
            _ => return Err(bad("use mqtt://, mqtts://, ws:// or wss://")),
        };
        let authority = rest.split('/').next().unwrap_or("");
        if authority.is_empty() || authority.starts_with(':') {
            return Err(bad("no host"));
        }
        if authority.contains('@') {
            return Err(bad(
                "put credentials in --username / --password-file, not in the URI",
            ));
        }
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
        let host_port = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:{default_port}")
        };
        let path = &rest[authority.len()..];
        Ok(BrokerUri {
            display: uri.to_string(),
            paho: format!("{paho_scheme}://{host_port}{path}"),
            host_port,
            tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_uris_map_to_paho_schemes() {
        let cases = [
            ("mqtt://localhost:1883", "tcp://localhost:1883", false),
            ("mqtts://broker.example", "ssl://broker.example:8883", true),
            ("localhost", "tcp://localhost:1883", false),
            ("127.0.0.1:1999", "tcp://127.0.0.1:1999", false),
            ("ws://h:8080/mqtt", "ws://h:8080/mqtt", false),
            ("tcp://h:1", "tcp://h:1", false),
        ];
        for (given, paho, tls) in cases {
            let u = BrokerUri::parse(given).unwrap();
            assert_eq!((u.paho.as_str(), u.tls), (paho, tls), "{given}");
        }
        for bad in ["http://h", "mqtt://", "mqtt://:1883", "mqtt://user:pw@h:1"] {
            assert!(BrokerUri::parse(bad).is_err(), "{bad}");
        }
    }
}
