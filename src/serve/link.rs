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

use super::events::Event;
use super::identity::Identity;
use super::lanes::Admission;
use super::pong::{Detach, Responder};
use crate::config::Config;
use crate::mqtt::{self, Arrival, Client, Connect, MqttError, SessionSpec, Subscription};
use crate::protocol::Status;

/// Longest wait for a subscribe, unsubscribe or status publish.
const ACK_WAIT: Duration = Duration::from_secs(10);
/// Longest wait for one reconnect attempt.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// One reconnect attempt: `Ok(resumed)` once online again.
pub type Attempt<'a> = Pin<Box<dyn Future<Output = Result<bool, MqttError>> + 'a>>;

/// A connected server client and what it needs to come back online.
pub struct Link {
    /// The client (cheap to clone).
    pub client: Client,
    /// `<prefix>/v1/req/+`, or one filter per operation served (groups,
    /// `--no-edit`: `super::owner`), joined for the log.
    pub filter: String,
    filters: Vec<String>,
    /// `<prefix>/v1/all/req/+` (or per operation): requests for every
    /// server, never shared (`super::owner::all_filters`).
    all_filters: Vec<String>,
    /// Request filters an earlier run may have left in the session.
    stale: Vec<String>,
    /// The broker still had this server's session at the first connect
    /// (see the module docs).
    pub resumed: bool,
    /// Connected and subscribed at the first connect; when false, the
    /// control loop's first reconnect brings it online.
    pub online: bool,
    prefix: String,
    client_id: String,
    /// `<prefix>/v1/stats/<server-id>`.
    stats_topic: String,
    grouped: bool,
    identity: Arc<Identity>,
    /// Lets the ping responder use the client while the link lives.
    _pong: Detach,
}

impl Link {
    /// The server's MQTT client id.
    pub fn client_id_of(config: &Config) -> String {
        format!("mqttapp-serve-{}", config.server_id)
    }

    /// Routes `client`'s messages to `admission` and its connection events
    /// to `events`, connects with a persistent session and goes online.
    ///
    /// # Errors
    /// [`MqttError`] when the first connection or subscription fails.
    pub fn open(
        config: &Config,
        client: Client,
        admission: Arc<Admission>,
        events: Sender<Event>,
    ) -> Result<Link, MqttError> {
        let client_id = Link::client_id_of(config);
        let identity = Arc::new(Identity::new(config));
        let pong = Arc::new(Responder::new(
            admission.topics().clone(),
            &config.server_id,
            identity.instance(),
        ));
        let pong_client = pong.attach(client.clone());
        route_callbacks(
            &client,
            admission,
            events.clone(),
            identity.clone(),
            pong,
            &config.prefix,
        );
        let session = SessionSpec {
            clean_start: false,
            session_expiry: config.session_expiry,
            will: Some(identity.status(Status::OFFLINE)),
            connect_timeout: CONNECT_WAIT,
        };
        let caps = match client.connect(&Connect {
            connection: &config.connection,
            session: session.clone(),
        }) {
            Err(e) if crate::broker::connack::retain_refused(&e) => {
                tracing::warn!("the broker keeps no retained messages: this server's status is published without the retain flag, and clients find it by a live ping (docs/PROTOCOL.md)");
                identity.forgo_retain();
                client.connect(&Connect {
                    connection: &config.connection,
                    session: SessionSpec {
                        will: Some(identity.status(Status::OFFLINE)),
                        ..session
                    },
                })
            }
            other => other,
        }?;
        crate::broker::connack::check_serve(&caps, config, client.broker())?;
        let present = caps.session_present;
        let mut filters =
            super::owner::request_filters(&config.prefix, config.group.as_deref(), config.no_edit);
        let names: Vec<String> = config.user_ops.iter().map(|o| o.name.clone()).collect();
        filters.extend(super::owner::user_filters(
            &config.prefix,
            config.group.as_deref(),
            config.no_edit,
            &names,
        ));
        let mut link = Link {
            client,
            filter: filters.join(", "),
            filters,
            all_filters: super::owner::all_filters(&config.prefix, config.no_edit, &names),
            _pong: pong_client,
            stale: super::owner::stale_filters(
                &config.prefix,
                config.group.as_deref(),
                config.no_edit,
            ),
            resumed: false,
            online: false,
            prefix: config.prefix.clone(),
            client_id,
            stats_topic: crate::protocol::Topics::new(&config.prefix).stats(&config.server_id),
            grouped: config.group.is_some(),
            identity,
        };
        let online =
            mqtt::block_on(link.go_online(), 2 * ACK_WAIT).unwrap_or(Err(MqttError::timed_out()));
        match online {
            Ok(()) => {
                link.resumed = link.verified(present);
                link.online = true;
            }
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

    /// This server process's instance (in its status, description and
    /// statistics).
    pub fn instance(&self) -> &str {
        self.identity.instance()
    }

    /// The broker as the user wrote it, for logs.
    pub fn broker(&self) -> &str {
        self.client.broker()
    }

    /// Subscribes (again: after a reconnect the session may be gone) to the
    /// requests and to this server's own status topic, and publishes the
    /// retained "online" status.
    async fn go_online(&self) -> Result<(), MqttError> {
        // Retained statuses only for a new subscription: tells whether the
        // session still had it (module docs).
        let mut subscriptions: Vec<Subscription> = self
            .filters
            .iter()
            .map(|filter| Subscription {
                filter: filter.clone(),
                qos: mqtt::QOS,
                retained_only_if_new: false,
            })
            .collect();
        subscriptions.push(Subscription {
            filter: self.identity.topic().to_string(),
            qos: mqtt::QOS,
            retained_only_if_new: true,
        });
        self.identity.expect_subscription();
        // Not awaited: sent before the subscribe below.
        for filter in &self.stale {
            drop(self.client.unsubscribe(filter));
        }
        self.client.subscribe(&subscriptions).await?;
        crate::broker::ping::listen(&self.client, &self.prefix);
        // Before the status: a client that sees this process online finds
        // its description too. Best effort (an ACL from before
        // descriptions may refuse it): clients then use their built-in help.
        if let Some(description) = self.identity.description() {
            match self.client.try_publish(description) {
                Ok(delivery) => {
                    if let Err(e) = delivery.await {
                        tracing::warn!(error = %e.into_mqtt(), "could not publish this server's description");
                    }
                }
                Err(e) => return Err(e.into_mqtt()),
            }
        }
        // Requests for every server: best effort and not awaited, like the
        // ping (an ACL without the line leaves the server as before, not
        // stopped); sent before the status below, so a client that sees
        // us online finds the subscription in place. QoS 0: a request for
        // all servers is for those online now; the broker does not queue
        // it for a server that is away.
        let all: Vec<Subscription> = self
            .all_filters
            .iter()
            .map(|filter| Subscription {
                filter: filter.clone(),
                qos: 0,
                retained_only_if_new: false,
            })
            .collect();
        drop(self.client.subscribe(&all));
        // Bounded: with send_while_disconnected a publish made just as the
        // connection drops waits for the next connection.
        let online = self
            .client
            .try_publish(self.identity.status(Status::ONLINE))
            .map_err(|e| e.into_mqtt())?;
        online.await.map_err(|e| e.into_mqtt())?;
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

    /// Publishes the statistics (CBOR), QoS 0, retained where the broker
    /// keeps retained messages, expiring after `expiry_secs` so that a
    /// dead server's figures do not linger. Not awaited.
    pub fn publish_stats(&self, payload: Vec<u8>, expiry_secs: u32) {
        if !self.client.is_connected() {
            return;
        }
        let meta = mqtt::MessageMeta {
            content_type: Some("application/cbor".into()),
            expiry_secs: Some(expiry_secs),
            ..mqtt::MessageMeta::default()
        };
        let mut msg = mqtt::Message::new(&self.stats_topic, payload, meta, self.identity.retains());
        msg.qos = 0;
        if let Err(e) = self.client.try_publish(msg) {
            tracing::debug!(error = %e, "could not publish the statistics");
        }
    }

    /// Removes the retained statistics at a clean stop: the figures of a
    /// stopped server are not current. Not awaited (the "offline" status
    /// published next, QoS 1, is).
    pub fn clear_stats(&self) {
        if self.identity.retains() {
            self.publish_stats(Vec::new(), 1);
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
            let present = self.client.reconnect().await?;
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
        for filter in &self.filters {
            let left = mqtt::block_on(self.client.unsubscribe(filter), ACK_WAIT)
                .unwrap_or(Err(MqttError::timed_out()));
            if let Err(e) = left {
                tracing::warn!(error = %e, "could not leave the group's shared subscription");
            }
        }
    }

    /// Removes the retained description, publishes the retained "offline"
    /// status and disconnects normally,
    /// which keeps the session at the broker and discards the will.
    pub fn close(&self) {
        if let Some(cleared) = self.identity.description_cleared() {
            let cleared = match self.client.try_publish(cleared) {
                Ok(delivery) => delivery.wait(Duration::from_secs(2)),
                Err(e) => Err(e),
            };
            if let Err(e) = cleared {
                tracing::warn!(error = %e.into_mqtt(), "could not remove this server's description; readers ignore it next to its offline status");
            }
        }
        let offline = match self
            .client
            .try_publish(self.identity.status(Status::OFFLINE))
        {
            Ok(delivery) => delivery.wait(Duration::from_secs(2)),
            Err(e) => Err(e),
        };
        if let Err(e) = offline {
            tracing::warn!(error = %e, "could not publish the offline status; the broker's will covers it");
        }
        self.client.disconnect(Duration::from_secs(2));
    }
}

/// Forwards the client's arrivals: requests to `admission` (a lane, or a
/// `busy` refusal when the lane's byte budget is spent: the transport has
/// already acknowledged these messages, so they must be answered, and this
/// thread must never block, see `lanes.rs`), our own status to the
/// identity check, and connection events (and foreign statuses) to the
/// control loop's channel.
fn route_callbacks(
    client: &Client,
    admission: Arc<Admission>,
    events: Sender<Event>,
    identity: Arc<Identity>,
    pong: Arc<Responder>,
    prefix: &str,
) {
    let ping = crate::broker::ping::topic(prefix);
    client.set_handler(move |arrival| match arrival {
        Arrival::Message(msg) => {
            if msg.topic == identity.topic() {
                if identity.observe(&msg.payload, msg.retained) {
                    let _ = events.send(Event::ForeignStatus);
                }
            } else if msg.topic == ping {
                // A ping with a response topic gets a direct, rate-limited
                // answer; a plain one (a client looking for live servers)
                // asks for our status and statistics again, as rate-limited
                // as the answer to a foreign status.
                if !pong.answer(&msg) {
                    let _ = events.send(Event::Ping);
                }
            } else {
                admission.admit(msg);
            }
        }
        Arrival::Lost => {
            let _ = events.send(Event::Lost);
        }
        Arrival::Disconnected { taken_over, reason } => {
            tracing::warn!(%reason, "the broker closed the connection");
            if taken_over {
                let _ = events.send(Event::TakenOver);
            }
        }
    });
}
