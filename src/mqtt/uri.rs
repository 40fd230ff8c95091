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
    /// Every broker of a comma-separated list, in paho's form, tried in
    /// turn at each connect (failover); empty for a single broker.
    pub failover: Vec<String>,
}

impl BrokerUri {
    /// Parses one broker URI, or a comma-separated list of them (see
    /// `crate::broker::list`): the first one then stands for the list.
    ///
    /// # Errors
    /// [`MqttError::BadUri`] for any bad entry.
    pub fn parse(uri: &str) -> Result<BrokerUri, MqttError> {
        crate::broker::list::parse(uri)
    }

    /// Parses `mqtt://`, `mqtts://`, `tcp://`, `ssl://`, `ws://`, `wss://`
    /// URIs, or a bare `host[:port]`.
    ///
    /// # Errors
    /// [`MqttError::BadUri`] for unknown schemes or a missing host.
    pub fn parse_one(uri: &str) -> Result<BrokerUri, MqttError> {
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
        let (host, _) = split_port(authority);
        if host.contains(':') && !host.starts_with('[') {
            return Err(bad(
                "more than one ':' - write host:port once (IPv6 addresses in brackets: [::1]:1883)",
            ));
        }
        let host_port = match split_port(authority) {
            (_, Some(port)) => {
                check_port(port).map_err(|reason| bad(&reason))?;
                authority.to_string()
            }
            (_, None) => format!("{authority}:{default_port}"),
        };
        let path = &rest[authority.len()..];
        Ok(BrokerUri {
            display: uri.to_string(),
            paho: format!("{paho_scheme}://{host_port}{path}"),
            host_port,
            tls,
            failover: Vec::new(),
        })
    }
}

/// `host[:port]` (and `[v6]:port`) split into the host and the port's
/// text, if one is written. One parser for every place an address comes
/// from (flags, environment, the seed's `BROKER`/`PORT`, config file).
pub fn split_port(authority: &str) -> (&str, Option<&str>) {
    let after_v6 = authority
        .starts_with('[')
        .then(|| authority.find(']'))
        .flatten()
        .map_or(0, |end| end + 1);
    match authority[after_v6..].rfind(':') {
        Some(colon) => {
            let colon = after_v6 + colon;
            (&authority[..colon], Some(&authority[colon + 1..]))
        }
        None => (authority, None),
    }
}

/// A port is a number from 1 to 65535.
///
/// # Errors
/// What is wrong, in words for the user.
fn check_port(port: &str) -> Result<u16, String> {
    match port.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("port {port:?} is not a number from 1 to 65535")),
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
        let v6 = BrokerUri::parse("mqtt://[::1]").unwrap();
        assert_eq!(v6.host_port, "[::1]:1883");
        for bad in [
            "http://h",
            "mqtt://",
            "mqtt://:1883",
            "mqtt://user:pw@h:1",
            "mqtt://h:99999",
            "h:abc",
            "h:0",
            "127.0.0.1:18899:1883",
        ] {
            assert!(BrokerUri::parse(bad).is_err(), "{bad}");
        }
    }
}
