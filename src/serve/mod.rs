//! The server: connect with a persistent session, subscribe to the request
//! topics, answer every request exactly once, dead-letter what cannot be
//! answered, reconnect when the broker goes away, and stop gracefully.
//!
//! `run` takes the shutdown flag as an argument so that tests (and
//! `main.rs`'s signal handler) decide when it stops.

mod handler;
mod replies;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError};
use paho_mqtt as paho;

use crate::config::Config;
use crate::deadletter::{DeadLetters, Reason};
use crate::mqtt::{self, BrokerUri, MessageMeta, MqttError, SessionSpec};
use crate::operations::{edit::EditError, Operations};
use crate::protocol::{Op, Status, Topics};
use handler::{handle, Incoming};
use replies::{record, ReplySender};

/// How long a graceful shutdown keeps answering what already arrived.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// How long to wait for the broker to acknowledge the "online" status.
const STATUS_ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the server could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Connecting or subscribing failed.
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    /// The data directory or default file cannot be used.
    #[error("cannot open the data directory: {0} - check --data-dir (MQTTAPP_DATA_DIR) and its permissions")]
    Store(#[from] EditError),
}

/// What reaches the loop from paho's callback thread.
enum Event {
    Message(paho::Message, Instant),
    ConnectionLost,
}

/// Runs the server until `shutdown` becomes true.
///
/// # Errors
/// [`ServeError`] when the first connection or subscription fails or the
/// data directory cannot be opened. Later connection losses are retried.
pub fn run(config: &Config, shutdown: &AtomicBool) -> Result<(), ServeError> {
    let default_file = config
        .file
        .as_deref()
        .unwrap_or(crate::config::DEFAULT_FILE);
    let ops = Operations::open(&config.data_dir, default_file, config.limits)?;
    let dead_letters = Arc::new(DeadLetters::new(&config.data_dir, &config.server_id));
    let topics = Topics::new(&config.prefix);
    let uri = BrokerUri::parse(&config.connection.broker)?;
    let client_id = format!("mqttapp-serve-{}", config.server_id);
    let client = mqtt::create_client(&uri, &client_id, true)?;
    let events = consume(&client);
    let status_topic = topics.status(&config.server_id);
    let session = SessionSpec {
        clean_start: false,
        session_expiry: config.session_expiry,
        will: Some(status_message(&status_topic, config, Status::OFFLINE)),
        connect_timeout: Duration::from_secs(10),
    };
    let opts = mqtt::connect_options(&config.connection, &uri, &session)?;
    mqtt::connect(&client, &uri, opts).map_err(|e| mqtt::explain(e, &config.connection, &uri))?;
    let filter = Topics::shared(&topics.request_filter(), config.group.as_deref());
    go_online(&client, &filter, &status_topic, config)?;
    tracing::info!(broker = %uri.display, %filter, data_dir = %config.data_dir.display(), server_id = %config.server_id, "serving");

    let max_dl = config.limits.max_deadletter_bytes;
    let replies = ReplySender::start(client.clone(), dead_letters.clone(), max_dl);
    let server = Server {
        ops,
        topics,
        dead_letters,
        replies,
        max_payload: config.limits.max_payload,
        max_deadletter_bytes: max_dl,
    };
    while !shutdown.load(Ordering::SeqCst) {
        match events.recv_timeout(Duration::from_millis(100)) {
            Ok(Event::Message(msg, arrived)) => server.answer(&msg, arrived),
            Ok(Event::ConnectionLost) => {
                reconnect(&client, &filter, &status_topic, config, shutdown)
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    tracing::info!("shutting down: answering what already arrived");
    server.drain(&events);
    publish_offline(&client, &status_topic, config);
    let disconnect = paho::DisconnectOptionsBuilder::new()
        .timeout(Duration::from_secs(2))
        .finalize();
    let _ = client
        .disconnect(disconnect)
        .wait_for(Duration::from_secs(3));
    server.dead_letter_leftovers(&events);
    server.replies.finish();
    tracing::info!("stopped");
    Ok(())
}

/// Forwards paho's callbacks into a channel, stamping arrival times (for
/// expiry). Unbounded: paho has already acknowledged these messages, so
/// dropping one would lose it.
fn consume(client: &paho::AsyncClient) -> Receiver<Event> {
    let (tx, rx) = unbounded();
    let lost = tx.clone();
    client.set_connection_lost_callback(move |_| {
        let _ = lost.send(Event::ConnectionLost);
    });
    client.set_message_callback(move |_, msg| {
        if let Some(msg) = msg {
            let _ = tx.send(Event::Message(msg, Instant::now()));
        }
    });
    rx
}

/// Subscribes (again: after a reconnect the session may be gone) and
/// publishes the retained "online" status.
fn go_online(
    client: &paho::AsyncClient,
    filter: &str,
    status_topic: &str,
    config: &Config,
) -> Result<(), MqttError> {
    let response = client
        .subscribe(filter, mqtt::QOS)
        .wait()
        .map_err(|e| mqtt::classify_refusal(filter, e))?;
    let code = response.subscribe_response().unwrap_or(mqtt::QOS);
    mqtt::check_granted(&[filter.to_string()], &[code])?;
    // Bounded: with send_while_disconnected a publish made just as the
    // connection drops waits for the next connection, which only this
    // (reconnect) path makes.
    client
        .publish(status_message(status_topic, config, Status::ONLINE))
        .wait_for(STATUS_ACK_TIMEOUT)
        .map_err(|e| mqtt::classify_refusal(status_topic, e))?;
    Ok(())
}

fn publish_offline(client: &paho::AsyncClient, status_topic: &str, config: &Config) {
    let token = client.publish(status_message(status_topic, config, Status::OFFLINE));
    if let Err(e) = token.wait_for(Duration::from_secs(2)) {
        tracing::warn!(error = %e, "could not publish the offline status; the broker's will covers it");
    }
}

/// Reconnects with exponential backoff until connected or shut down.
fn reconnect(
    client: &paho::AsyncClient,
    filter: &str,
    status_topic: &str,
    config: &Config,
    shutdown: &AtomicBool,
) {
    let mut backoff = Duration::from_millis(100);
    tracing::warn!("connection to the broker lost; reconnecting");
    while !shutdown.load(Ordering::SeqCst) {
        let attempt = client.reconnect().wait_for(Duration::from_secs(10));
        match attempt
            .map_err(MqttError::from)
            .and_then(|_| go_online(client, filter, status_topic, config))
        {
            Ok(()) => {
                tracing::info!("reconnected");
                return;
            }
            Err(e) => tracing::warn!(error = %e, retry_in = ?backoff, "reconnect failed"),
        }
        thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

fn status_message(topic: &str, config: &Config, state: &str) -> paho::Message {
    let status = Status {
        state: state.to_string(),
        ops: Op::ALL.iter().map(|op| op.as_str().to_string()).collect(),
        version: crate::version::VERSION.to_string(),
        since: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        group: config.group.clone(),
    };
    let meta = MessageMeta {
        content_type: Some("application/cbor".into()),
        ..MessageMeta::default()
    };
    meta.message(topic, status.encode(), true)
}

/// The state the loop needs to answer requests.
struct Server {
    ops: Operations,
    topics: Topics,
    dead_letters: Arc<DeadLetters>,
    replies: ReplySender,
    max_payload: usize,
    max_deadletter_bytes: u64,
}

impl Server {
    fn answer(&self, msg: &paho::Message, arrived: Instant) {
        let incoming = Incoming {
            topic: msg.topic().to_string(),
            meta: MessageMeta::of(msg),
            payload: msg.payload().to_vec(),
            arrived,
        };
        let outcome = handle(&self.ops, &self.topics, self.max_payload, &incoming);
        if let Some((reason, detail)) = &outcome.dead_letter {
            let max = self.max_deadletter_bytes;
            record(
                &self.dead_letters,
                max,
                *reason,
                detail,
                &incoming.original(),
            );
        }
        if let Some(reply) = outcome.reply {
            tracing::debug!(topic = %incoming.topic, reply_to = %reply.topic, error = ?reply.error, "answered");
            let msg = reply.meta.message(&reply.topic, reply.payload, false);
            self.replies.send(msg, &self.dead_letters);
        }
    }

    /// Answers what has already arrived, until quiet or DRAIN_LIMIT.
    fn drain(&self, events: &Receiver<Event>) {
        let deadline = Instant::now() + DRAIN_LIMIT;
        while Instant::now() < deadline {
            match events.recv_timeout(Duration::from_millis(200)) {
                Ok(Event::Message(msg, arrived)) => self.answer(&msg, arrived),
                Ok(Event::ConnectionLost) => return,
                Err(_) => return,
            }
        }
    }

    /// Requests that arrived too late to answer are kept as dead letters
    /// (`mqttapp dlq replay` sends them again); clients also re-send.
    fn dead_letter_leftovers(&self, events: &Receiver<Event>) {
        for event in events.try_iter() {
            if let Event::Message(msg, _) = event {
                let incoming = Incoming {
                    topic: msg.topic().to_string(),
                    meta: MessageMeta::of(&msg),
                    payload: msg.payload().to_vec(),
                    arrived: Instant::now(),
                };
                record(
                    &self.dead_letters,
                    self.max_deadletter_bytes,
                    Reason::Shutdown,
                    "server stopped before answering",
                    &incoming.original(),
                );
            }
        }
    }
}
