//! The transport: the only module that names paho. Broker URIs, connect
//! options (TLS, credentials, MQTT 5 session), error classification, the
//! MQTT 5 properties of requests and replies, and every paho C workaround
//! (global init without OpenSSL, the never-destroyed anchor client, the
//! trace level, leaking the client on exit).
//!
//! Every other module sees only the crate's own types ([`Client`],
//! [`Message`], [`Delivery`], [`Arrival`]); in unit tests [`Client`] can
//! be the in-memory broker twin (`twin.rs`). No other module names paho
//! in code (`tests/layers.rs` checks it). One paho C workaround lives
//! elsewhere: the `TZ` setting in `main.rs`, which must run before any
//! thread exists.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use paho_mqtt as paho;

use crate::config::Connection;

mod client;
mod connack;
mod meta;
mod oneshot;
mod refusal;
mod tls;
mod token;
mod transport;
#[cfg(test)]
pub mod twin;
mod uri;
/// A raw paho client with the project's options, for integration tests
/// that act as a foreign client on the broker; the crate itself uses
/// [`Client`].
pub use client::create_client;
use client::publish_waiting;
pub use meta::MessageMeta;
use refusal::{check_granted, classify_refusal};
use tls::explain;
pub use token::block_on;
use token::wait;
pub use transport::{
    Arrival, Client, Connect, Delivery, DeliveryError, Message, Pending, Subscription,
};
pub use uri::{split_port, BrokerUri};

/// Why talking to the broker failed, classified for the user.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// The broker URI cannot be used.
    #[error("invalid broker address {uri:?}: {reason} - set --broker or MQTTAPP_BROKER to e.g. mqtt://localhost:1883")]
    BadUri {
        /// The URI as configured.
        uri: String,
        /// What is wrong.
        reason: String,
    },
    /// Nothing answers at the broker's address.
    #[error("cannot connect to {uri} ({reason}) - {}", unreachable_hint(.uri))]
    Unreachable {
        /// The broker URI.
        uri: String,
        /// The network error.
        reason: String,
    },
    /// Something accepts TCP connections there but does not speak MQTT 5
    /// in the clear (a TLS port reached with mqtt://, another service).
    #[error("{uri} accepts connections but the MQTT handshake failed ({reason}) - if it is a TLS port, use mqtts://")]
    NotMqtt {
        /// The broker URI.
        uri: String,
        /// What paho reported.
        reason: String,
    },
    /// The broker refused the credentials or the client.
    #[error("authentication refused by the broker at {uri} ({reason}) - check --username (MQTTAPP_USERNAME) and the password (--password-file, --password-prompt or MQTTAPP_PASSWORD)")]
    AuthRefused {
        /// The broker URI.
        uri: String,
        /// The broker's reason code.
        reason: String,
    },
    /// The broker refused a subscription or publish (ACL).
    #[error("the broker refused access to {topic} ({reason}) - check --prefix, and that the broker's ACL lets this user use that topic")]
    NotAuthorized {
        /// The topic or filter.
        topic: String,
        /// The broker's reason code.
        reason: String,
    },
    /// The TCP connection works but the TLS handshake failed.
    #[error("TLS handshake with {uri} failed: {reason} - {hint}")]
    Tls {
        /// The broker URI.
        uri: String,
        /// What went wrong (see [`explain`] for a precise one).
        reason: String,
        /// What to check.
        hint: String,
    },
    /// The broker refused a publish or subscription for another reason
    /// than the ACL (quota exceeded, topic invalid, packet too large...).
    #[error("the broker refused {topic}: {reason}")]
    Refused {
        /// The topic or filter.
        topic: String,
        /// The broker's reason code.
        reason: String,
    },
    /// A TLS file named in the settings cannot be used.
    #[error("cannot use TLS file {path}: {reason} - check the path given to --ca-file, --cert-file or --key-file (or MQTTAPP_CA_FILE, MQTTAPP_CERT_FILE, MQTTAPP_KEY_FILE)")]
    TlsFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The broker lacks something the command relies on (its CONNACK
    /// says so: no shared subscriptions for a group, QoS 0 only...).
    #[error("the broker at {uri} cannot do what this needs: {reason}")]
    Unsupported {
        /// The broker URI.
        uri: String,
        /// What is missing and what to do.
        reason: String,
    },
    /// The connection dropped or another client error happened.
    #[error("MQTT error: {0} - the connection to the broker failed; run again with -v for details and check the broker's log")]
    Client(#[from] paho::Error),
}

impl MqttError {
    /// An operation that did not complete in time (a client error: the
    /// connection may come back).
    pub fn timed_out() -> MqttError {
        MqttError::Client(paho::Error::Timeout)
    }
}

/// What to try when nothing answers at `uri`: on this machine, start the
/// local broker; elsewhere, check the address and the network.
fn unreachable_hint(uri: &str) -> &'static str {
    let local = ["://localhost", "://127.", "://[::1]"]
        .iter()
        .any(|l| uri.contains(l))
        || !uri.contains("://") && (uri.starts_with("localhost") || uri.starts_with("127."));
    if local {
        "is a broker running on that port? start one (e.g. `mosquitto -p 1883`) or point --broker at yours"
    } else {
        "check the host name and port in --broker or MQTTAPP_BROKER, and that no firewall blocks it"
    }
}

/// Log targets of the transport's own records, which may carry connection
/// secrets (`paho_mqtt`, `paho_mqtt_c`, `paho_mqtt_sys` all start with
/// this): `logging.rs` never shows them below WARN.
pub const SECRET_BEARING_LOG_TARGET: &str = "paho_mqtt";

/// QoS of every request and reply: at least once, never silently lost.
pub const QOS: i32 = 1;

/// What kind of session a connection asks for.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    /// Start clean (one-shot clients) or resume (servers).
    pub clean_start: bool,
    /// How long the broker keeps the session after a disconnect.
    pub session_expiry: Duration,
    /// Last will, e.g. a server's retained "offline" status.
    pub will: Option<Message>,
    /// Give up connecting after this long.
    pub connect_timeout: Duration,
}

/// Connect options for MQTT 5 with the configured credentials and TLS.
///
/// # Errors
/// [`MqttError::TlsFile`] when a TLS file does not exist.
fn connect_options(
    conn: &Connection,
    uri: &BrokerUri,
    session: &SessionSpec,
) -> Result<paho::ConnectOptions, MqttError> {
    let mut b = if uri.paho.starts_with("ws") {
        paho::ConnectOptionsBuilder::new_ws_v5()
    } else {
        paho::ConnectOptionsBuilder::new_v5()
    };
    b.clean_start(session.clean_start)
        .keep_alive_interval(Duration::from_secs(20))
        .connect_timeout(session.connect_timeout)
        .properties(session_properties(session.session_expiry));
    if uri.failover.len() > 1 {
        b.server_uris(&uri.failover);
    }
    if let Some(user) = &conn.username {
        b.user_name(user);
    }
    if let Some(password) = &conn.password {
        b.password(password.expose());
    }
    if let Some(will) = &session.will {
        b.will_message(will.clone().into_paho());
    }
    if uri.tls {
        b.ssl_options(tls::ssl_options(&conn.tls)?);
    }
    Ok(b.finalize())
}

fn session_properties(expiry: Duration) -> paho::Properties {
    let mut props = paho::Properties::new();
    let secs = u32::try_from(expiry.as_secs()).unwrap_or(u32::MAX);
    // Pushing a u32 into a property of type u32 cannot fail.
    props
        .push_u32(paho::PropertyCode::SessionExpiryInterval, secs)
        .expect("session expiry is a four-byte property");
    props
}

/// Connects and classifies a failure (unreachable, refused, TLS).
///
/// # Errors
/// The classified [`MqttError`].
fn connect(
    client: &paho::AsyncClient,
    uri: &BrokerUri,
    opts: paho::ConnectOptions,
) -> Result<paho::ServerResponse, MqttError> {
    client
        .connect(opts)
        .wait()
        .map_err(|e| classify_connect_error(uri, e))
}

fn classify_connect_error(uri: &BrokerUri, err: paho::Error) -> MqttError {
    use paho::{ConnectReturnCode as Crc, ReasonCode as Rc};
    let refused = |reason: String| MqttError::AuthRefused {
        uri: uri.display.clone(),
        reason,
    };
    match err {
        paho::Error::ReasonCode(rc @ (Rc::BadUserNameOrPassword | Rc::NotAuthorized), _) => {
            refused(rc.to_string())
        }
        paho::Error::ConnectReturn(rc @ (Crc::BadUserNameOrPassword | Crc::NotAuthorized)) => {
            refused(rc.to_string())
        }
        paho::Error::ReasonCode(rc @ (Rc::QosNotSupported | Rc::RetainNotSupported), _) => {
            MqttError::Unsupported {
                uri: uri.display.clone(),
                reason: connack::refused_connect(rc),
            }
        }
        paho::Error::ReasonCode(rc, _) => MqttError::Unreachable {
            uri: uri.display.clone(),
            reason: format!("refused: {rc}"),
        },
        other => match probe_tcp(&uri.host_port) {
            Err(reason) => MqttError::Unreachable {
                uri: uri.display.clone(),
                reason,
            },
            Ok(()) if uri.tls => MqttError::Tls {
                uri: uri.display.clone(),
                reason: other.to_string(),
                hint: tls::GENERIC_HINT.to_string(),
            },
            Ok(()) => MqttError::NotMqtt {
                uri: uri.display.clone(),
                reason: other.to_string(),
            },
        },
    }
}

/// After a failed connect: does a plain TCP connection work? This tells
/// "nothing listens there" from "TLS handshake failed".
fn probe_tcp(host_port: &str) -> Result<(), String> {
    let addrs = host_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host_port}: {e}"))?;
    let mut last = format!("{host_port} has no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_bearing_target_is_the_paho_crates_name() {
        // paho-mqtt logs with its module paths as targets.
        let path = std::any::type_name::<paho::AsyncClient>();
        assert!(path.starts_with(SECRET_BEARING_LOG_TARGET), "{path}");
    }
}
