//! The server's link to the broker: a persistent session (stable client id,
//! clean start off, session expiry), the request subscription, the retained
//! status, and one reconnect attempt at a time ([`Link::attempt`]).
//!
//! When to reconnect is decided by the control loop (`mod.rs`, with the
//! state machine in `supervisor.rs`), not by the lanes: a lane may be
//! blocked waiting for acknowledgements that only a reconnect can bring.
//! An attempt is a future over paho's tokens, polled by that loop when a
//! token completes, so the loop never blocks on the broker.
//!
//! **Another client with this server's client id** (a second server with
//! the same `--server-id`, or an intruder on a broker that does not bind
//! client ids to users) takes the connection over again and again. The
//! control loop reports it as "client id in use by another client" (see
//! `identity.rs` for how it is detected) and does **not** stop: nothing a
//! client can send may stop a server. It keeps reconnecting, but while the
//! conflict lasts it waits the longest backoff (5 s, jittered) before
//! each attempt instead of taking the id straight back, so two clients
//! with one id knock each other off every few seconds instead of several
//! times a second (each takeover can cost the other side its session).
//! The fix is on the broker (docs/SECURITY.md).
//!
//! **`session_resumed`** is reported true only when the broker says it
//! kept a session (CONNACK "session present") *and* that session still
//! holds this server's subscription to its own status topic: a client
//! that connected with this id while the server was away replaced the
//! server's session (and its queued requests) with its own, and the broker
//! reports "session present" for that one too. The status topic is
//! subscribed with "send retained messages only for a new subscription",
//! so the server's retained status arriving right after the subscribe
//! means the subscription, and so the session, was not the server's.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;
use paho_mqtt as paho;

use super::events::Event;
use super::identity::Identity;
use super::lanes::Admission;
use crate::config::Config;
use crate::mqtt::{self, BrokerUri, MqttError, SessionSpec};
use crate::protocol::{Status, Topics};

/// Longest wait for a subscribe, unsubscribe or status publish.
const ACK_WAIT: Duration = Duration::from_secs(10);
/// Longest wait for one reconnect attempt.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// One reconnect attempt: `Ok(resumed)` once online again.
pub type Attempt<'a> = Pin<Box<dyn Future<Output = Result<bool, MqttError>> + 'a>>;

/// A connected server client and what it needs to come back online.
pub struct Link {
    /// The paho client (cheap to clone).
    pub client: paho::AsyncClient,
    /// `<prefix>/v1/req/+`, wrapped in `$share/<group>/` for groups.
    pub filter: String,
    /// The broker still had this server's session at the first connect
    /// (see the module docs).
    pub resumed: bool,
    uri: BrokerUri,
    client_id: String,
    grouped: bool,
    identity: Arc<Identity>,
}

impl Link {
    /// Creates the client, routes its messages to `admission` and its
    /// connection events to `events`, connects with a persistent session
    /// and goes online.
    ///
    /// # Errors
    /// [`MqttError`] when the first connection or subscription fails.
    pub fn open(
        config: &Config,
        admission: Arc<Admission>,
        events: Sender<Event>,
    ) -> Result<Link, MqttError> {
        let uri = BrokerUri::parse(&config.connection.broker)?;
        let client_id = format!("mqttapp-serve-{}", config.server_id);
        let client = mqtt::create_client(&uri, &client_id, true)?;
        let identity = Arc::new(Identity::new(config));
        route_callbacks(&client, admission, events.clone(), identity.clone());
        let session = SessionSpec {
            clean_start: false,
            session_expiry: config.session_expiry,
            will: Some(identity.status(Status::OFFLINE)),
            connect_timeout: CONNECT_WAIT,
        };
        let opts = mqtt::connect_options(&config.connection, &uri, &session)?;
        let response = mqtt::connect(&client, &uri, opts)
            .map_err(|e| mqtt::explain(e, &config.connection, &uri))?;
        let mut link = Link {
            client,
            filter: Topics::shared(
                &Topics::new(&config.prefix).request_filter(),
                config.group.as_deref(),
            ),
            resumed: false,
            uri,
            client_id,
            grouped: config.group.is_some(),
            identity,
        };
        let present = response
            .connect_response()
            .is_some_and(|c| c.session_present);
        let online = mqtt::block_on(link.go_online(), 2 * ACK_WAIT)
            .unwrap_or(Err(MqttError::Client(paho::Error::Timeout)));
        match online {
            Ok(()) => link.resumed = link.verified(present),
            // Connected, then lost or stalled while subscribing (another
            // process with this id can knock us off right away): the
            // control loop takes it from here, as after any later loss.
            Err(MqttError::Client(e)) => {
                tracing::warn!(error = %e, "could not go online yet; retrying");
                let _ = events.send(Event::Lost);
            }
            Err(e) => return Err(e),
        }
        Ok(link)
    }

    /// Whether the session the broker says it kept (`present`) is this
    /// server's: it still had our status subscription (module docs).
    fn verified(&self, present: bool) -> bool {
        if present && self.identity.subscription_was_new() {
            tracing::warn!(client_id = %self.client_id, "the broker kept a session for this server's client id, but not this server's (its subscriptions were gone): another client connected with this id while the server was away, and requests queued for the server meanwhile are lost - bind client ids to users on the broker (docs/SECURITY.md)");
            return false;
        }
        present
    }

    /// The MQTT client id, for logs.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The broker as the user wrote it, for logs.
    pub fn broker(&self) -> &str {
        &self.uri.display
    }

    /// Subscribes (again: after a reconnect the session may be gone) to the
    /// requests and to this server's own status topic, and publishes the
    /// retained "online" status.
    async fn go_online(&self) -> Result<(), MqttError> {
        let filters = [self.filter.clone(), self.identity.topic().to_string()];
        // Retained statuses only for a new subscription: tells whether the
        // session still had it (module docs).
        let options = [
            paho::SubscribeOptions::default(),
            paho::SubscribeOptions::with_retain_handling(paho::RetainHandling::SendRetainedOnNew),
        ];
        self.identity.expect_subscription();
        let response = self
            .client
            .subscribe_many_with_options(&filters, &[mqtt::QOS, mqtt::QOS], &options, None)
            .await
            .map_err(|e| mqtt::classify_refusal(&self.filter, e))?;
        let codes = response.subscribe_many_response().unwrap_or_default();
        mqtt::check_granted(&filters, &codes)?;
        // Bounded: with send_while_disconnected a publish made just as the
        // connection drops waits for the next connection.
        self.client
            .publish(self.identity.status(Status::ONLINE))
            .await
            .map_err(|e| mqtt::classify_refusal(self.identity.topic(), e))?;
        Ok(())
    }

    /// Publishes our retained "online" again, after something else was
    /// published on our status topic. Not awaited: the control loop must
    /// not block on it, and the next reconnect publishes it anyway.
    pub fn reassert(&self) {
        if !self.client.is_connected() {
            return;
        }
        if let Err(e) = self
            .client
            .try_publish(self.identity.status(Status::ONLINE))
        {
            tracing::warn!(error = %e, "could not publish this server's status again");
        }
    }

    /// One reconnect and resubscribe, as a future the control loop polls
    /// when its tokens complete (and drops when it takes too long).
    pub fn attempt(&self) -> Attempt<'_> {
        Box::pin(async move {
            if self.client.is_connected() {
                // Still (or again) connected: only the subscription is missing.
                self.go_online().await?;
                return Ok(true);
            }
            let response = self.client.reconnect().await?;
            let present = response
                .connect_response()
                .is_some_and(|c| c.session_present);
            self.go_online().await?;
            Ok(self.verified(present))
        })
    }

    /// For group members: leave the shared subscription so the broker sends
    /// new requests to the other members while this one stops. A server on
    /// its own keeps its subscription, so requests sent while it is away
    /// wait in its session.
    pub fn leave_group(&self) {
        if !self.grouped {
            return;
        }
        if let Err(e) = mqtt::wait(self.client.unsubscribe(&self.filter), ACK_WAIT) {
            tracing::warn!(error = %e, "could not leave the group's shared subscription");
        }
    }

    /// Publishes the retained "offline" status and disconnects normally,
    /// which keeps the session at the broker and discards the will.
    pub fn close(&self) {
        let token = self.client.publish(self.identity.status(Status::OFFLINE));
        if let Err(e) = mqtt::wait(token, Duration::from_secs(2)) {
            tracing::warn!(error = %e, "could not publish the offline status; the broker's will covers it");
        }
        let disconnect = paho::DisconnectOptionsBuilder::new()
            .timeout(Duration::from_secs(2))
            .finalize();
        let _ = mqtt::wait(self.client.disconnect(disconnect), Duration::from_secs(3));
    }
}

/// Forwards paho's callbacks: requests to `admission` (a lane, or a `busy`
/// refusal when the lane's byte budget is spent: paho has already
/// acknowledged these messages, so they must be answered, and this thread
/// must never block, see `lanes.rs`), our own status to the identity
/// check, and connection events (and foreign statuses) to the control
/// loop's channel.
fn route_callbacks(
    client: &paho::AsyncClient,
    admission: Arc<Admission>,
    events: Sender<Event>,
    identity: Arc<Identity>,
) {
    let on_lost = events.clone();
    client.set_connection_lost_callback(move |_| {
        let _ = on_lost.send(Event::Lost);
    });
    let on_disconnect = events.clone();
    client.set_disconnected_callback(move |_, _, reason| {
        tracing::warn!(%reason, "the broker closed the connection");
        if reason == paho::ReasonCode::SessionTakenOver {
            let _ = on_disconnect.send(Event::TakenOver);
        }
    });
    client.set_message_callback(move |_, msg| {
        let Some(msg) = msg else { return };
        if msg.topic() == identity.topic() {
            if identity.observe(msg.payload(), msg.retained()) {
                let _ = events.send(Event::ForeignStatus);
            }
        } else {
            admission.admit(msg);
        }
    });
}
