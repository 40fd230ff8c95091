//! The server's link to the broker: a persistent session (stable client id,
//! clean start off, session expiry), the request subscription, the retained
//! status, and reconnection with backoff.
//!
//! Reconnection runs on its own thread ([`Link::keep`]), not in the request
//! loop: the loop may be blocked waiting for acknowledgements that only a
//! reconnect can bring, so reconnecting from the loop could deadlock.
//!
//! **Another client with this server's client id** (a second server with
//! the same `--server-id`, or an intruder on a broker that does not bind
//! client ids to users) takes the connection over again and again. The
//! keeper reports it as "client id in use by another client" (see
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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use paho_mqtt as paho;

use super::identity::{Identity, Takeovers};
use super::lanes::Admission;
use crate::config::Config;
use crate::mqtt::{self, BrokerUri, MqttError, SessionSpec};
use crate::protocol::Status;

/// Longest wait for a subscribe, unsubscribe or status publish.
const ACK_WAIT: Duration = Duration::from_secs(10);
/// Longest wait for one reconnect attempt.
const CONNECT_WAIT: Duration = Duration::from_secs(10);
/// Longest pause between two reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Shortest interval between two re-publications of the retained status
/// in answer to foreign status messages.
const REASSERT_EVERY: Duration = Duration::from_secs(1);

/// A connected server client and what it needs to come back online.
pub struct Link {
    /// The paho client (cheap to clone).
    pub client: paho::AsyncClient,
    /// `<prefix>/v1/req/+`, or one filter per operation served (groups,
    /// `--no-edit`: `crate::serve::owner`), joined for the log.
    pub filter: String,
    filters: Vec<String>,
    stale: Vec<String>,
    /// The broker still had this server's session at the first connect
    /// (see the module docs).
    pub resumed: bool,
    uri: BrokerUri,
    prefix: String,
    client_id: String,
    grouped: bool,
    identity: Arc<Identity>,
    lost: Receiver<()>,
    connected_at: Mutex<Instant>,
    closing: AtomicBool,
}

impl Link {
    /// Creates the client, routes its messages to `admission`, connects
    /// with a persistent session and goes online.
    ///
    /// # Errors
    /// [`MqttError`] when the first connection or subscription fails.
    pub fn open(config: &Config, admission: Arc<Admission>) -> Result<Link, MqttError> {
        let uri = BrokerUri::parse(&config.connection.broker)?;
        let client_id = format!("mqttapp-serve-{}", config.server_id);
        let client = mqtt::create_client(&uri, &client_id, true)?;
        let identity = Arc::new(Identity::new(config));
        let (lost_tx, lost) = unbounded();
        route_callbacks(
            &client,
            admission,
            lost_tx.clone(),
            identity.clone(),
            &config.prefix,
        );
        let session = SessionSpec {
            clean_start: false,
            session_expiry: config.session_expiry,
            will: Some(identity.status(Status::OFFLINE)),
            connect_timeout: CONNECT_WAIT,
        };
        let opts = mqtt::connect_options(&config.connection, &uri, &session)?;
        let response = match mqtt::connect(&client, &uri, opts) {
            Err(e) if crate::broker::connack::retain_refused(&e) => {
                tracing::warn!("the broker keeps no retained messages: this server's status is published without the retain flag, and clients find it by a live ping (docs/PROTOCOL.md)");
                identity.forgo_retain();
                let session = SessionSpec {
                    will: Some(identity.status(Status::OFFLINE)),
                    ..session
                };
                let opts = mqtt::connect_options(&config.connection, &uri, &session)?;
                mqtt::connect(&client, &uri, opts)
            }
            other => other,
        }
        .map_err(|e| mqtt::explain(e, &config.connection, &uri))?;
        crate::broker::connack::check_serve(&response, config, &uri.display)?;
        let filters = crate::serve::owner::request_filters(
            &config.prefix,
            config.group.as_deref(),
            config.no_edit,
        );
        let mut link = Link {
            client,
            filter: filters.join(", "),
            filters,
            stale: crate::serve::owner::stale_filters(
                &config.prefix,
                config.group.as_deref(),
                config.no_edit,
            ),
            resumed: false,
            uri,
            prefix: config.prefix.clone(),
            client_id,
            grouped: config.group.is_some(),
            identity,
            lost,
            connected_at: Mutex::new(Instant::now()),
            closing: AtomicBool::new(false),
        };
        let present = response
            .connect_response()
            .is_some_and(|c| c.session_present);
        match link.go_online() {
            Ok(()) => link.resumed = link.verified(present),
            // Connected, then lost or stalled while subscribing (another
            // process with this id can knock us off right away): the keeper
            // takes it from here, as after any later loss.
            Err(MqttError::Client(e)) => {
                tracing::warn!(error = %e, "could not go online yet; retrying");
                let _ = lost_tx.send(());
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

    /// The broker as the user wrote it, for logs.
    pub fn broker(&self) -> &str {
        &self.uri.display
    }

    /// Subscribes (again: after a reconnect the session may be gone) to the
    /// requests and to this server's own status topic, and publishes the
    /// retained "online" status.
    fn go_online(&self) -> Result<(), MqttError> {
        let mut filters = self.filters.clone();
        filters.push(self.identity.topic().to_string());
        // Retained statuses only for a new subscription: tells whether the
        // session still had it (module docs).
        let mut options = vec![paho::SubscribeOptions::default(); self.filters.len()];
        options.push(paho::SubscribeOptions::with_retain_handling(
            paho::RetainHandling::SendRetainedOnNew,
        ));
        self.identity.expect_subscription();
        // Not awaited: paho sends it before the subscribe below.
        drop(self.client.unsubscribe_many(&self.stale));
        let subscribed = self.client.subscribe_many_with_options(
            &filters,
            &vec![mqtt::QOS; filters.len()],
            &options,
            None,
        );
        let response = mqtt::wait(subscribed, ACK_WAIT)
            .map_err(|e| mqtt::classify_refusal(&self.filter, e))?;
        let codes = response.subscribe_many_response().unwrap_or_default();
        mqtt::check_granted(&filters, &codes)?;
        crate::broker::ping::listen(&self.client, &self.prefix);
        // Bounded: with send_while_disconnected a publish made just as the
        // connection drops waits for the next connection.
        let online = self.client.publish(self.identity.status(Status::ONLINE));
        mqtt::wait(online, ACK_WAIT)
            .map_err(|e| mqtt::classify_refusal(self.identity.topic(), e))?;
        Ok(())
    }

    /// Reconnects whenever the connection is lost, until `stop` is set, and
    /// answers foreign status messages with our own. Run it on its own
    /// thread. Never gives up: see the module docs for another client
    /// with this client id.
    pub fn keep(&self, stop: &AtomicBool) {
        let mut takeovers = Takeovers::default();
        let mut reasserted: Option<Instant> = None;
        while !stop.load(Ordering::SeqCst) {
            if self.lost.recv_timeout(Duration::from_millis(100)).is_ok() {
                let lived = self
                    .connected_at
                    .lock()
                    .map_or(Duration::MAX, |at| at.elapsed());
                let said_so = self.identity.take_taken_over();
                if takeovers.lost(lived, said_so) {
                    tracing::error!(client_id = %self.client_id, losses_in_a_row = takeovers.count(), lived = ?lived, broker_said_taken_over = said_so, "client id in use by another client: the broker keeps closing this server's connection soon after it connects, so requests meant for this server may reach that client; give every server its own --server-id, and bind client ids to users on the broker (docs/SECURITY.md). Reconnecting every few seconds meanwhile");
                }
                self.reconnect(stop, takeovers.in_conflict());
            } else if reasserted.is_none_or(|at| at.elapsed() >= REASSERT_EVERY)
                && self.identity.take_reassert()
            {
                reasserted = Some(Instant::now());
                self.reassert();
            }
        }
    }

    /// Publishes our retained "online" again, after something else was
    /// published on our status topic. Not awaited: the keeper must not
    /// block on it, and the next reconnect publishes it anyway.
    fn reassert(&self) {
        if self.closing.load(Ordering::SeqCst) || !self.client.is_connected() {
            return;
        }
        if let Err(e) = self
            .client
            .try_publish(self.identity.status(Status::ONLINE))
        {
            tracing::warn!(error = %e, "could not publish this server's status again");
        }
    }

    /// Reconnects with exponential backoff until online or `stop` is set.
    /// `conflict`: another client uses this client id; start at the
    /// longest backoff (module docs).
    fn reconnect(&self, stop: &AtomicBool, conflict: bool) {
        let mut backoff = if conflict {
            MAX_BACKOFF
        } else {
            Duration::from_millis(100)
        };
        tracing::warn!(broker = %self.uri.display, "connection to the broker lost; reconnecting");
        while !stop.load(Ordering::SeqCst) && !self.closing.load(Ordering::SeqCst) {
            // Wait first, with jitter: when another client took this
            // server's session, reconnecting at once would take it straight
            // back before either side could notice.
            if !pause(jittered(backoff), stop) {
                return;
            }
            match self.attempt(stop) {
                Ok(resumed) => {
                    tracing::info!(resumed, "reconnected");
                    if let Ok(mut at) = self.connected_at.lock() {
                        *at = Instant::now();
                    }
                    // A loss signalled while reconnecting is stale now.
                    while self.lost.try_recv().is_ok() {}
                    return;
                }
                Err(e) => tracing::warn!(error = %e, retry_in = ?backoff, "reconnect failed"),
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One reconnect and resubscribe; gives up early when `stop` is set, so
    /// a shutdown is not held up by a broker that does not answer.
    fn attempt(&self, stop: &AtomicBool) -> Result<bool, MqttError> {
        if self.client.is_connected() {
            // Still (or again) connected: only the subscription is missing.
            self.go_online()?;
            return Ok(true);
        }
        let mut token = self.client.reconnect();
        let deadline = Instant::now() + CONNECT_WAIT;
        let response = loop {
            if let Some(result) = token.try_wait() {
                break result?;
            }
            if stop.load(Ordering::SeqCst) || Instant::now() >= deadline {
                return Err(paho::Error::Timeout.into());
            }
            thread::sleep(Duration::from_millis(20));
        };
        let present = response
            .connect_response()
            .is_some_and(|c| c.session_present);
        self.go_online()?;
        Ok(self.verified(present))
    }

    /// For group members: leave the shared subscription so the broker sends
    /// new requests to the other members while this one stops. A server on
    /// its own keeps its subscription, so requests sent while it is away
    /// wait in its session.
    pub fn leave_group(&self) {
        if !self.grouped {
            return;
        }
        if let Err(e) = mqtt::wait(self.client.unsubscribe_many(&self.filters), ACK_WAIT) {
            tracing::warn!(error = %e, "could not leave the group's shared subscription");
        }
    }

    /// Publishes the retained "offline" status and disconnects normally,
    /// which keeps the session at the broker and discards the will.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
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

/// Sleeps for `pause`, or less if `stop` is set meanwhile; false then.
fn pause(pause: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + pause;
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        thread::sleep(left.min(Duration::from_millis(20)));
    }
    !stop.load(Ordering::SeqCst)
}

/// `pause` plus up to half of it again, at random, so that two clients
/// knocked off together do not come back in lockstep.
fn jittered(pause: Duration) -> Duration {
    let spread = pause.as_millis() as u64 / 2;
    pause + Duration::from_millis(crate::ids::random_u64() % (spread + 1))
}

/// Forwards paho's callbacks: requests to `admission` (a lane, or a `busy`
/// refusal when the lane's byte budget is spent: paho has already
/// acknowledged these messages, so they must be answered, and this thread
/// must never block, see `lanes.rs`), our own status to the identity
/// check, losses to the link keeper.
fn route_callbacks(
    client: &paho::AsyncClient,
    admission: Arc<Admission>,
    lost: Sender<()>,
    identity: Arc<Identity>,
    prefix: &str,
) {
    client.set_connection_lost_callback(move |_| {
        let _ = lost.send(());
    });
    let by_broker = identity.clone();
    client.set_disconnected_callback(move |_, _, reason| {
        tracing::warn!(%reason, "the broker closed the connection");
        if reason == paho::ReasonCode::SessionTakenOver {
            by_broker.mark_taken_over();
        }
    });
    let ping = crate::broker::ping::topic(prefix);
    client.set_message_callback(move |_, msg| {
        let Some(msg) = msg else { return };
        if msg.topic() == identity.topic() {
            identity.observe(msg.payload(), msg.retained());
        } else if msg.topic() == ping {
            identity.pinged();
        } else {
            admission.admit(msg);
        }
    });
}
