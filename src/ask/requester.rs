//! A connected client that sends requests and matches replies by
//! correlation data. One-shot `ask`, `ask --batch`, the interactive shell
//! and `bench` all go through it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use futures::task::ArcWake;

use crate::config::Config;
use crate::ids::{self, Correlations};
use crate::mqtt::{
    self, Arrival, Client, Connect, Delivery, DeliveryError, Message, MessageMeta, MqttError,
    SessionSpec, Subscription,
};
use crate::protocol::{decode_reply, encode_request, Encoding, Op, Reply, Request, Status, Topics};

use super::AskError;

/// Longest wait for the subscription's acknowledgement (the connection's
/// own keep-alive ends a dead one much sooner).
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(24 * 3600);

/// What arrived for this client.
#[derive(Debug)]
pub enum Received {
    /// A reply to the request with this correlation data, and the reply's
    /// user properties (the server's id and time breakdown).
    Reply(Vec<u8>, Reply, Vec<(String, String)>),
    /// A reply with this correlation data that is not a reply map (e.g.
    /// from a bare echo responder).
    Undecodable(Vec<u8>),
    /// A status change (servers going online or offline).
    Status,
    /// A token polled with [`Requester::poll_publish`] may have completed:
    /// poll it again.
    Acknowledged,
    /// The connection dropped.
    Lost,
}

/// What the transport's handler and the delivery wakers hand to the requesting thread,
/// in one channel, so that one blocking wait covers replies, connection
/// loss and publish acknowledgements (no timer thread, no second wait).
enum Incoming {
    Message(Message),
    Lost,
    TokenDone,
}

/// Wakes the requesting thread through its channel when a token completes.
struct ChannelWaker(Sender<Incoming>);

impl ArcWake for ChannelWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        let _ = arc_self.0.send(Incoming::TokenDone);
    }
}

/// A connected request/response client.
pub struct Requester {
    client: Client,
    events: Receiver<Incoming>,
    waker: Waker,
    topics: Topics,
    response_topic: String,
    encoding: Encoding,
    expiry_secs: u32,
    servers: HashMap<String, Status>,
    correlations: Correlations,
    qos: i32,
    /// Set (by the shell's Ctrl-C handler) to give up the pending request.
    cancel: Option<Arc<AtomicBool>>,
    /// User properties sent with every request (`-H key=value`).
    headers: Vec<(String, String)>,
}

impl Requester {
    /// Connects with a fresh client id and subscribes to its response topic
    /// and to the server status topics.
    ///
    /// # Errors
    /// [`AskError::Mqtt`] for connection, authentication and TLS failures.
    pub fn connect(config: &Config, encoding: Encoding) -> Result<Requester, AskError> {
        let client_id = format!("mqttapp-ask-{:016x}", ids::random_u64());
        let client = Client::create(&config.connection.broker, &client_id, false)?;
        Requester::connect_on(config, encoding, client, &client_id)
    }

    /// [`Requester::connect`] over a given client (paho's, or the
    /// in-memory twin's in unit tests) whose id is `client_id`.
    ///
    /// # Errors
    /// [`AskError::Mqtt`] for connection, authentication and TLS failures.
    pub fn connect_on(
        config: &Config,
        encoding: Encoding,
        client: Client,
        client_id: &str,
    ) -> Result<Requester, AskError> {
        let (events, waker) = consume(&client);
        let session = SessionSpec {
            clean_start: true,
            session_expiry: Duration::ZERO,
            will: None,
            connect_timeout: config.timeout.min(Duration::from_secs(10)),
        };
        client.connect(&Connect {
            connection: &config.connection,
            session,
        })?;
        let topics = Topics::new(&config.prefix);
        let response_topic = topics.response(client_id);
        let requester = Requester {
            client,
            events,
            waker,
            response_topic,
            encoding,
            expiry_secs: u32::try_from(config.timeout.as_secs().max(1) + 1).unwrap_or(u32::MAX),
            servers: HashMap::new(),
            correlations: Correlations::new(),
            qos: mqtt::QOS,
            topics,
            cancel: None,
            headers: Vec::new(),
        };
        requester.subscribe()?;
        tracing::debug!(broker = %requester.client.broker(), %client_id, user = config.connection.username.as_deref().unwrap_or("(anonymous)"), "connected");
        Ok(requester)
    }

    fn subscribe(&self) -> Result<(), AskError> {
        // Statuses are retained and re-read on every connection, so QoS 0
        // loses nothing and spares a PUBACK per server at each start.
        let subscriptions = [
            (self.response_topic.clone(), mqtt::QOS),
            (self.topics.status_filter(), 0),
        ]
        .map(|(filter, qos)| Subscription {
            filter,
            qos,
            retained_only_if_new: false,
        });
        mqtt::block_on(self.client.subscribe(&subscriptions), SUBSCRIBE_WAIT)
            .unwrap_or(Err(MqttError::timed_out()))?;
        Ok(())
    }

    /// Fresh correlation data for a new request: 128 random bits, so that
    /// nobody who saw this client's earlier requests can guess it and claim
    /// its replay key first. Re-sends reuse it; a new request never does.
    pub fn next_correlation(&mut self) -> Vec<u8> {
        self.correlations.fresh()
    }

    /// What a failed publish of `request` means for the caller: a refusal
    /// by the broker, or a client error (a dropped connection: send again).
    pub fn publish_failure(&self, _request: &Request, e: DeliveryError) -> AskError {
        e.into_mqtt().into()
    }

    /// Publishes (QoS 1) without waiting for the broker's acknowledgement;
    /// the returned token must be checked, with [`Requester::poll_publish`]
    /// or by the pipeline. Re-sending with the same correlation data is
    /// safe: the server applies an edit once.
    pub fn publish_nowait(&self, request: &Request, correlation: &[u8]) -> Delivery {
        self.publish_with(request, correlation, &[])
    }

    /// Sends `headers` (user properties, checked by [`super::headers`])
    /// with every later request, replacing those set before.
    pub fn set_headers(&mut self, headers: Vec<(String, String)>) {
        self.headers = headers;
    }

    /// [`Requester::publish_nowait`] with `extra` user properties after
    /// the requester's own headers.
    pub fn publish_with(
        &self,
        request: &Request,
        correlation: &[u8],
        extra: &[(String, String)],
    ) -> Delivery {
        let user = match extra {
            [] => self.headers.clone(),
            _ => self.headers.iter().chain(extra).cloned().collect(),
        };
        let meta = MessageMeta {
            response_topic: Some(self.response_topic.clone()),
            correlation: Some(correlation.to_vec()),
            content_type: Some(self.encoding.content_type().to_string()),
            expiry_secs: Some(self.expiry_secs),
            user,
        };
        let topic = self.topics.request_named(request.op_name());
        let payload = encode_request(request, self.encoding);
        let mut msg = Message::new(&topic, payload, meta, false);
        msg.qos = self.qos;
        match self.client.publish(msg) {
            Ok(delivery) => delivery,
            Err(refused) => {
                let (e, msg) = *refused;
                Delivery::failed(msg, e)
            }
        }
    }

    /// The result of a publish if the broker has answered it; otherwise
    /// arranges for [`Requester::next`] to return
    /// [`Received::Acknowledged`] when it does. A result is returned once.
    pub fn poll_publish(&self, token: &mut Delivery) -> Option<Result<(), DeliveryError>> {
        match Pin::new(token).poll(&mut Context::from_waker(&self.waker)) {
            Poll::Ready(result) => Some(result),
            Poll::Pending => None,
        }
    }

    /// Requests at QoS 0 instead of 1 (benchmarks only: QoS 0 can be lost).
    pub fn set_qos(&mut self, qos: i32) {
        self.qos = qos;
    }

    /// Waits until `deadline` for the next reply, status or loss.
    /// `None` when the deadline passed.
    pub fn next(&mut self, deadline: Instant) -> Option<Received> {
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let incoming = self.events.recv_timeout(left).ok()?;
            if let Some(received) = self.understand(incoming) {
                return Some(received);
            }
        }
    }

    /// The next reply, status or loss that has already arrived, without
    /// waiting (to handle a burst of replies in one go).
    pub fn try_next(&mut self) -> Option<Received> {
        loop {
            let incoming = self.events.try_recv().ok()?;
            if let Some(received) = self.understand(incoming) {
                return Some(received);
            }
        }
    }

    /// What an arrival means; `None` for one to ignore.
    fn understand(&mut self, incoming: Incoming) -> Option<Received> {
        let msg = match incoming {
            Incoming::Message(msg) => msg,
            Incoming::Lost => return Some(Received::Lost),
            Incoming::TokenDone => return Some(Received::Acknowledged),
        };
        if let Some(server) = msg
            .topic
            .rsplit('/')
            .next()
            .filter(|_| msg.topic != self.response_topic)
        {
            match Status::decode(&msg.payload) {
                Ok(status) => self.servers.insert(server.to_string(), status),
                Err(_) => self.servers.remove(server),
            };
            return Some(Received::Status);
        }
        let meta = msg.meta;
        let encoding = Encoding::detect(meta.content_type.as_deref(), &msg.payload);
        match (meta.correlation, decode_reply(encoding, &msg.payload)) {
            (Some(c), Ok(reply)) => Some(Received::Reply(c, reply, meta.user)),
            (Some(c), Err(e)) => {
                tracing::warn!(error = %e, "undecodable reply");
                Some(Received::Undecodable(c))
            }
            (None, _) => {
                tracing::warn!("ignoring a reply without correlation data");
                None
            }
        }
    }

    /// Lets `flag` (set by a Ctrl-C handler) cancel the pending request:
    /// [`crate::ask::exchange`] then fails with [`AskError::Cancelled`].
    pub fn cancel_on(&mut self, flag: Arc<AtomicBool>) {
        self.cancel = Some(flag);
    }

    /// True once after the cancel flag was set; clears it.
    pub fn take_cancel(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|f| f.swap(false, Ordering::SeqCst))
    }

    /// How many servers say they are online (as far as their statuses
    /// have arrived).
    pub fn servers_online(&self) -> usize {
        self.servers.values().filter(|s| s.is_online()).count()
    }

    /// True when some server has announced that it is online and offers
    /// the operation `op`. For a name that is no built-in, any online
    /// server will do: one that does not offer it answers `unknown_op`,
    /// which says more than "no server online".
    pub fn server_online(&self, op: &str) -> bool {
        let user_defined = Op::parse(op).is_none();
        self.servers
            .values()
            .any(|s| s.is_online() && (user_defined || s.ops.iter().any(|o| o == op)))
    }

    /// Waits (until `deadline`) for an online server offering `op`.
    ///
    /// # Errors
    /// [`AskError::NoServer`] when none announced itself in time.
    pub fn wait_for_server(&mut self, op: &str, deadline: Instant) -> Result<(), AskError> {
        // Halfway, ping for live statuses (`crate::broker::ping`).
        let mut ping_at =
            Some(Instant::now() + deadline.saturating_duration_since(Instant::now()) / 2);
        while !self.server_online(op) {
            match self.next(ping_at.unwrap_or(deadline)) {
                Some(Received::Status) => {}
                Some(Received::Lost) => self.reconnect(deadline)?,
                Some(Received::Reply(..) | Received::Undecodable(_) | Received::Acknowledged) => {}
                None if ping_at.take().is_some() => {
                    crate::broker::ping::send(&self.client, self.topics.prefix());
                }
                None => {
                    return Err(AskError::NoServer {
                        op: op.to_string(),
                        prefix: self.topics.prefix().to_string(),
                    })
                }
            }
        }
        Ok(())
    }

    /// True while the connection to the broker is up (the shell checks
    /// between commands, which may be minutes apart).
    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// Reconnects after a dropped connection and subscribes again.
    ///
    /// # Errors
    /// [`AskError::Mqtt`] when the broker stays away until `deadline`.
    pub fn reconnect(&mut self, deadline: Instant) -> Result<(), AskError> {
        if self.client.is_connected() {
            return Ok(());
        }
        let mut last = None;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match mqtt::block_on(self.client.reconnect(), left) {
                Some(Ok(_)) => return self.subscribe(),
                Some(Err(e)) => last = Some(e),
                None => last = Some(MqttError::timed_out()),
            }
            std::thread::sleep(Duration::from_millis(100).min(left));
        }
        Err(last.unwrap_or_else(MqttError::timed_out).into())
    }

    /// Disconnects and frees the client. paho's teardown joins its threads,
    /// which can take up to a second.
    pub fn close(self) {
        self.client.disconnect(Duration::ZERO);
    }

    /// Sends DISCONNECT without waiting and deliberately leaks the client,
    /// skipping paho's teardown (up to a second of thread joins and sleeps,
    /// more than the whole request takes).
    ///
    /// Only for a process that exits right after: the leaked client's
    /// threads live until then. Nothing is lost by not waiting: the reply
    /// has arrived, and the session is clean and expires at once.
    pub fn abandon(self) {
        let client = self.client.clone();
        std::mem::forget(self);
        client.abandon();
    }
}

/// Routes the client's messages and connection losses into one channel,
/// and makes a waker that signals the same channel.
fn consume(client: &Client) -> (Receiver<Incoming>, Waker) {
    let (tx, rx) = unbounded();
    let on_message = tx.clone();
    client.set_handler(move |arrival| {
        let incoming = match arrival {
            Arrival::Message(msg) => Incoming::Message(msg),
            Arrival::Lost => Incoming::Lost,
            Arrival::Disconnected { .. } => return,
        };
        let _ = on_message.send(incoming);
    });
    (rx, futures::task::waker(Arc::new(ChannelWaker(tx))))
}
