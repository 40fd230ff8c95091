//! The server's link to the broker: a persistent session (stable client id,
//! clean start off, session expiry), the request subscription, the retained
//! status, and reconnection with backoff.
//!
//! Reconnection runs on its own thread ([`Link::keep`]), not in the request
//! loop: the loop may be blocked waiting for acknowledgements that only a
//! reconnect can bring, so reconnecting from the loop could deadlock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{unbounded, Receiver};
use paho_mqtt as paho;

use super::Event;
use crate::config::Config;
use crate::mqtt::{self, BrokerUri, MessageMeta, MqttError, SessionSpec};
use crate::protocol::{Op, Status, Topics};

/// Longest wait for a subscribe, unsubscribe or status publish.
const ACK_WAIT: Duration = Duration::from_secs(10);
/// Longest pause between two reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A connected server client and what it needs to come back online.
pub struct Link {
    /// The paho client (cheap to clone).
    pub client: paho::AsyncClient,
    /// `<prefix>/v1/req/+`, wrapped in `$share/<group>/` for groups.
    pub filter: String,
    uri: BrokerUri,
    status_topic: String,
    group: Option<String>,
    lost: Receiver<()>,
    taken_over: Arc<AtomicBool>,
    /// The broker still had this server's session at the first connect.
    pub resumed: bool,
}

impl Link {
    /// Creates the client, routes its messages into `events`, connects with
    /// a persistent session and goes online.
    ///
    /// # Errors
    /// [`MqttError`] when the first connection or subscription fails.
    pub fn open(
        config: &Config,
        events: crossbeam_channel::Sender<Event>,
    ) -> Result<Link, MqttError> {
        let topics = Topics::new(&config.prefix);
        let uri = BrokerUri::parse(&config.connection.broker)?;
        let client_id = format!("mqttapp-serve-{}", config.server_id);
        let client = mqtt::create_client(&uri, &client_id, true)?;
        let (lost_tx, lost) = unbounded();
        let taken_over = Arc::new(AtomicBool::new(false));
        route_callbacks(&client, events, lost_tx, taken_over.clone());
        let link = Link {
            client,
            filter: Topics::shared(&topics.request_filter(), config.group.as_deref()),
            uri,
            status_topic: topics.status(&config.server_id),
            group: config.group.clone(),
            lost,
            taken_over,
            resumed: false,
        };
        let session = SessionSpec {
            clean_start: false,
            session_expiry: config.session_expiry,
            will: Some(link.status(Status::OFFLINE)),
            connect_timeout: Duration::from_secs(10),
        };
        let opts = mqtt::connect_options(&config.connection, &link.uri, &session)?;
        let response = mqtt::connect(&link.client, &link.uri, opts)
            .map_err(|e| mqtt::explain(e, &config.connection, &link.uri))?;
        let resumed = response
            .connect_response()
            .is_some_and(|c| c.session_present);
        link.go_online()?;
        Ok(Link { resumed, ..link })
    }

    /// The broker as the user wrote it, for logs.
    pub fn broker(&self) -> &str {
        &self.uri.display
    }

    /// True once another client connected with this server's client id.
    pub fn taken_over(&self) -> bool {
        self.taken_over.load(Ordering::SeqCst)
    }

    /// Subscribes (again: after a reconnect the session may be gone) and
    /// publishes the retained "online" status.
    fn go_online(&self) -> Result<(), MqttError> {
        let response = self
            .client
            .subscribe(&self.filter, mqtt::QOS)
            .wait_for(ACK_WAIT)
            .map_err(|e| mqtt::classify_refusal(&self.filter, e))?;
        let code = response.subscribe_response().unwrap_or(mqtt::QOS);
        mqtt::check_granted(std::slice::from_ref(&self.filter), &[code])?;
        // Bounded: with send_while_disconnected a publish made just as the
        // connection drops waits for the next connection.
        self.client
            .publish(self.status(Status::ONLINE))
            .wait_for(ACK_WAIT)
            .map_err(|e| mqtt::classify_refusal(&self.status_topic, e))?;
        Ok(())
    }

    /// Reconnects whenever the connection is lost, until `stop` is set.
    /// Run it on its own thread.
    pub fn keep(&self, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            if self.lost.recv_timeout(Duration::from_millis(100)).is_err() {
                continue;
            }
            if self.taken_over() {
                tracing::error!("another client connected with this server's id; not reconnecting");
                return;
            }
            self.reconnect(stop);
        }
    }

    /// Reconnects with exponential backoff until online or `stop` is set.
    fn reconnect(&self, stop: &AtomicBool) {
        let mut backoff = Duration::from_millis(100);
        tracing::warn!(broker = %self.uri.display, "connection to the broker lost; reconnecting");
        while !stop.load(Ordering::SeqCst) {
            let attempt = self.client.reconnect().wait_for(Duration::from_secs(10));
            match attempt.map_err(MqttError::from).and_then(|r| {
                let resumed = r.connect_response().is_some_and(|c| c.session_present);
                self.go_online().map(|()| resumed)
            }) {
                Ok(resumed) => {
                    tracing::info!(resumed, "reconnected");
                    // A loss signalled while reconnecting is stale now.
                    while self.lost.try_recv().is_ok() {}
                    return;
                }
                Err(e) => tracing::warn!(error = %e, retry_in = ?backoff, "reconnect failed"),
            }
            thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// For group members: leave the shared subscription so the broker sends
    /// new requests to the other members while this one stops. A server on
    /// its own keeps its subscription, so requests sent while it is away
    /// wait in its session.
    pub fn leave_group(&self) {
        if self.group.is_none() {
            return;
        }
        if let Err(e) = self.client.unsubscribe(&self.filter).wait_for(ACK_WAIT) {
            tracing::warn!(error = %e, "could not leave the group's shared subscription");
        }
    }

    /// Publishes the retained "offline" status and disconnects, keeping the
    /// session (and so the subscription) at the broker.
    pub fn close(&self) {
        let token = self.client.publish(self.status(Status::OFFLINE));
        if let Err(e) = token.wait_for(Duration::from_secs(2)) {
            tracing::warn!(error = %e, "could not publish the offline status; the broker's will covers it");
        }
        let disconnect = paho::DisconnectOptionsBuilder::new()
            .timeout(Duration::from_secs(2))
            .finalize();
        let _ = self
            .client
            .disconnect(disconnect)
            .wait_for(Duration::from_secs(3));
    }

    /// This server's retained status message.
    fn status(&self, state: &str) -> paho::Message {
        let status = Status {
            state: state.to_string(),
            ops: Op::ALL.iter().map(|op| op.as_str().to_string()).collect(),
            version: crate::version::VERSION.to_string(),
            since: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            group: self.group.clone(),
        };
        let meta = MessageMeta {
            content_type: Some("application/cbor".into()),
            ..MessageMeta::default()
        };
        meta.message(&self.status_topic, status.encode(), true)
    }
}

/// Forwards paho's callbacks: messages into `events` (stamped with their
/// arrival time, for expiry), losses to the link keeper. Unbounded: paho
/// has already acknowledged these messages, so dropping one would lose it.
fn route_callbacks(
    client: &paho::AsyncClient,
    events: crossbeam_channel::Sender<Event>,
    lost: crossbeam_channel::Sender<()>,
    taken_over: Arc<AtomicBool>,
) {
    client.set_connection_lost_callback(move |_| {
        let _ = lost.send(());
    });
    client.set_disconnected_callback(move |_, _, reason| {
        if reason == paho::ReasonCode::SessionTakenOver {
            taken_over.store(true, Ordering::SeqCst);
        }
        tracing::warn!(%reason, "the broker closed the connection");
    });
    client.set_message_callback(move |_, msg| {
        if let Some(msg) = msg {
            let _ = events.send(Event::Message(msg, Instant::now()));
        }
    });
}
