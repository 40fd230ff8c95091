//! Creating paho clients and publishing through them without ever dropping
//! a message: library setup, client options, and waiting on a full queue.

use std::time::Duration;

use paho_mqtt as paho;

use super::{BrokerUri, MqttError};

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
    // SAFETY: a null callback and the ERROR level are the documented way
    // to quiet paho C's trace; both calls only store a value. ERROR, not
    // FATAL: paho ignores any level above ERROR (Log_setTraceLevel), and
    // below ERROR it `vsnprintf`s a line for every packet sent or received.
    ONCE.call_once(|| unsafe {
        paho_mqtt_sys::MQTTAsync_setTraceCallback(None);
        paho_mqtt_sys::MQTTAsync_setTraceLevel(
            paho_mqtt_sys::MQTTASYNC_TRACE_LEVELS_MQTTASYNC_TRACE_ERROR,
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
