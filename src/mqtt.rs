//! Everything that touches paho's connection setup: broker URIs, connect
//! options (TLS, credentials, MQTT 5 session), error classification, and
//! the MQTT 5 properties of requests and replies.
//!
//! The serve and ask loops use the paho client directly for publishing and
//! receiving; how to connect, and what a failure means, is decided here.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use paho_mqtt as paho;

use crate::config::Connection;

mod refusal;
mod tls;
pub use refusal::{check_granted, classify_refusal};
pub use tls::explain;

/// Why talking to the broker failed, classified for the user.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// The broker URI cannot be used.
    #[error("invalid broker URI {uri:?}: {reason} - set --broker or MQTTAPP_BROKER to e.g. mqtt://localhost:1883")]
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
    /// The connection dropped or another client error happened.
    #[error("MQTT error: {0} - the connection to the broker failed; run again with -v for details and check the broker's log")]
    Client(#[from] paho::Error),
}

/// What to try when nothing answers at `uri`: on this machine, start the
/// local broker; elsewhere, check the address and the network.
fn unreachable_hint(uri: &str) -> &'static str {
    let local = ["://localhost", "://127.", "://[::1]"]
        .iter()
        .any(|l| uri.contains(l))
        || !uri.contains("://") && (uri.starts_with("localhost") || uri.starts_with("127."));
    if local {
        "is a broker running? try `make broker`"
    } else {
        "check the host name and port in --broker or MQTTAPP_BROKER, and that no firewall blocks it"
    }
}

/// QoS of every request and reply: at least once, never silently lost.
pub const QOS: i32 = 1;

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

/// What kind of session a connection asks for.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    /// Start clean (one-shot clients) or resume (servers).
    pub clean_start: bool,
    /// How long the broker keeps the session after a disconnect.
    pub session_expiry: Duration,
    /// Last will, e.g. a server's retained "offline" status.
    pub will: Option<paho::Message>,
    /// Give up connecting after this long.
    pub connect_timeout: Duration,
}

/// Publishes paho may queue inside one client before it refuses more with
/// "max buffered messages" (it counts commands not yet written to the
/// socket, connected or not). [`publish_waiting`] waits when it is reached.
pub const MAX_BUFFERED: i32 = 100_000;

/// paho C's return codes for "the queue is full, try again later".
const MQTTASYNC_MAX_MESSAGES_INFLIGHT: i32 = -4;
const MQTTASYNC_MAX_BUFFERED_MESSAGES: i32 = -12;

/// Tells paho C, before its first client exists, whether to initialize
/// OpenSSL. It does so by default even for plain `mqtt://` connections, and
/// that (loading OpenSSL's configuration and error strings) was a third of
/// the instructions of a whole one-shot `ask`. Only the first call in a
/// process counts.
///
/// It also creates one client that is never connected nor destroyed (the
/// "anchor"). paho C stops its two process-wide threads whenever its last
/// client is destroyed, and that stop races with a client being created
/// and connected on another thread at the same moment: the new client's
/// connect can then wait forever, or every message of the process waits
/// for a one-second poll (seen in our fault tests, where several clients
/// come and go in one process). Stopping also makes each teardown sleep in
/// 100 ms steps. With the anchor the client count never reaches zero, so
/// the threads are started once and stay.
pub fn init_library(uri: &BrokerUri) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    static ANCHOR: std::sync::OnceLock<paho::AsyncClient> = std::sync::OnceLock::new();
    ONCE.call_once(|| {
        let mut opts = paho_mqtt_sys::MQTTAsync_init_options {
            struct_id: [b'M' as _, b'Q' as _, b'T' as _, b'G' as _],
            struct_version: 0,
            do_openssl_init: i32::from(uri.tls),
        };
        // SAFETY: a plain options struct laid out as paho C expects (the
        // MQTG initializer), passed before any client is created; paho only
        // reads it during the call.
        unsafe { paho_mqtt_sys::MQTTAsync_global_init(&mut opts) };
        let anchor = paho::CreateOptionsBuilder::new()
            .server_uri("tcp://127.0.0.1:1")
            .client_id("mqttapp-anchor")
            .persistence(paho::PersistenceType::None)
            .create_client();
        match anchor {
            Ok(client) => {
                let _ = ANCHOR.set(client);
            }
            Err(e) => tracing::debug!(error = %e, "no paho anchor client"),
        }
    });
}

/// Creates a paho client with no file persistence (paho's default writes
/// into the working directory).
///
/// `send_while_disconnected`: hold publishes while the connection is down
/// and send them after a reconnect (servers keep replying through a broker
/// restart) instead of failing them.
///
/// # Errors
/// A paho error when the options are refused.
pub fn create_client(
    uri: &BrokerUri,
    client_id: &str,
    send_while_disconnected: bool,
) -> Result<paho::AsyncClient, MqttError> {
    init_library(uri);
    let opts = paho::CreateOptionsBuilder::new()
        .server_uri(&uri.paho)
        .client_id(client_id)
        .persistence(paho::PersistenceType::None)
        .mqtt_version(paho::MQTT_VERSION_5)
        .max_buffered_messages(MAX_BUFFERED)
        .send_while_disconnected(send_while_disconnected)
        .finalize();
    let client = paho::AsyncClient::new(opts)?;
    silence_c_trace();
    Ok(client)
}

/// paho-mqtt hands paho C a trace callback when its first client is
/// created (whenever the `log` facade would accept `paho_mqtt_c` records),
/// and paho C then formats a time-stamped line (`localtime`, `strftime`,
/// `vsnprintf`) for every traced event, only for our logging filter to
/// drop it (see `logging.rs`: paho's records below WARN never print).
/// That formatting was visible in profiles of the hot path; errors are
/// reported through the operation tokens instead, so the trace is off.
fn silence_c_trace() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: a null callback and the highest level are the documented way
    // to stop paho C's trace (below FATAL it still `vsnprintf`s each
    // message); both calls only store a value under paho's log lock.
    ONCE.call_once(|| unsafe {
        paho_mqtt_sys::MQTTAsync_setTraceCallback(None);
        paho_mqtt_sys::MQTTAsync_setTraceLevel(
            paho_mqtt_sys::MQTTASYNC_TRACE_LEVELS_MQTTASYNC_TRACE_FATAL,
        );
    });
}

/// Publishes, waiting (with a growing pause, up to 50 ms) while paho's
/// in-flight window or buffer is full, so a fast sender slows down
/// instead of dropping messages.
///
/// # Errors
/// Any other refusal, with the message handed back inside the error.
pub fn publish_waiting(
    client: &paho::AsyncClient,
    mut msg: paho::Message,
) -> Result<paho::DeliveryToken, paho::Error> {
    let mut pause = Duration::from_micros(100);
    loop {
        match client.try_publish(msg) {
            Err(paho::Error::Publish(rc, back))
                if rc == MQTTASYNC_MAX_BUFFERED_MESSAGES
                    || rc == MQTTASYNC_MAX_MESSAGES_INFLIGHT =>
            {
                msg = back;
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// Connect options for MQTT 5 with the configured credentials and TLS.
///
/// # Errors
/// [`MqttError::TlsFile`] when a TLS file does not exist.
pub fn connect_options(
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
    if let Some(user) = &conn.username {
        b.user_name(user);
    }
    if let Some(password) = &conn.password {
        b.password(password.expose());
    }
    if let Some(will) = &session.will {
        b.will_message(will.clone());
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
pub fn connect(
    client: &paho::AsyncClient,
    uri: &BrokerUri,
    opts: paho::ConnectOptions,
) -> Result<paho::ServerResponse, MqttError> {
    client
        .connect(opts)
        .wait()
        .map_err(|e| classify_connect_error(uri, e))
}

/// Creates and connects a short-lived client (`status`, `dlq replay`):
/// clean start, no session kept, no will.
///
/// # Errors
/// The classified [`MqttError`].
pub fn connect_oneshot(
    conn: &Connection,
    client_id: &str,
    connect_timeout: Duration,
) -> Result<paho::AsyncClient, MqttError> {
    let uri = BrokerUri::parse(&conn.broker)?;
    let client = create_client(&uri, client_id, false)?;
    let session = SessionSpec {
        clean_start: true,
        session_expiry: Duration::ZERO,
        will: None,
        connect_timeout,
    };
    connect(&client, &uri, connect_options(conn, &uri, &session)?)?;
    Ok(client)
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

/// The MQTT 5 properties a request or reply carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageMeta {
    /// Where the reply goes.
    pub response_topic: Option<String>,
    /// Copied unchanged from request to reply.
    pub correlation: Option<Vec<u8>>,
    /// Payload encoding.
    pub content_type: Option<String>,
    /// Seconds the message stays valid.
    pub expiry_secs: Option<u32>,
}

impl MessageMeta {
    /// Reads the properties of a received message.
    pub fn of(msg: &paho::Message) -> MessageMeta {
        let props = msg.properties();
        MessageMeta {
            response_topic: props.get_string(paho::PropertyCode::ResponseTopic),
            correlation: props.get_binary(paho::PropertyCode::CorrelationData),
            content_type: props.get_string(paho::PropertyCode::ContentType),
            expiry_secs: props.get_val::<u32>(paho::PropertyCode::MessageExpiryInterval),
        }
    }

    /// Builds a QoS 1 message carrying these properties.
    pub fn message(&self, topic: &str, payload: Vec<u8>, retained: bool) -> paho::Message {
        self.message_qos(topic, payload, retained, QOS)
    }

    /// Builds a message with QoS `qos` carrying these properties.
    ///
    /// Property values come from received messages or our own settings;
    /// paho refuses only wrongly typed properties, which cannot happen here.
    pub fn message_qos(
        &self,
        topic: &str,
        payload: Vec<u8>,
        retained: bool,
        qos: i32,
    ) -> paho::Message {
        let mut props = paho::Properties::new();
        let typed = "property types match their codes";
        if let Some(t) = &self.response_topic {
            props
                .push_string(paho::PropertyCode::ResponseTopic, t)
                .expect(typed);
        }
        if let Some(c) = &self.correlation {
            props
                .push_binary(paho::PropertyCode::CorrelationData, c.clone())
                .expect(typed);
        }
        if let Some(ct) = &self.content_type {
            props
                .push_string(paho::PropertyCode::ContentType, ct)
                .expect(typed);
        }
        if let Some(secs) = self.expiry_secs {
            props
                .push_u32(paho::PropertyCode::MessageExpiryInterval, secs)
                .expect(typed);
        }
        paho::MessageBuilder::new()
            .topic(topic)
            .payload(payload)
            .qos(qos)
            .retained(retained)
            .properties(props)
            .finalize()
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
