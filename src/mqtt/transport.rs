//! The transport seam: the crate's own message, delivery and client types,
//! so that the server names no paho type. [`Client`] is an enum of two
//! implementations: paho (the real one) and, in unit tests, the in-memory
//! broker twin (`twin.rs`), which lets the server loop run without a
//! broker.
//!
//! Why an enum and not a trait object: the two implementations are known,
//! the hot path (a publish per reply) stays a direct call, and the futures
//! the reconnect attempt awaits need no boxing per call.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use paho_mqtt as paho;

use super::{classify_refusal, MessageMeta, MqttError, QOS};
use crate::broker::Capabilities;
use crate::config::Connection;

/// A message as mqttapp sees it: topic, payload, the MQTT 5 properties it
/// uses, the retain flag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Where it was (or is to be) published.
    pub topic: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// Response Topic, Correlation Data, Content Type, Message Expiry.
    pub meta: MessageMeta,
    /// The RETAIN flag (on receipt: set only for a retained message sent
    /// because a subscription is new).
    pub retained: bool,
    /// Its QoS (1 unless a benchmark asks for 0).
    pub qos: i32,
    /// Bytes of all its properties as received (user properties
    /// included): part of what it costs while it waits.
    pub props_len: usize,
}

impl Message {
    /// A message to publish at QoS 1.
    pub fn new(topic: &str, payload: Vec<u8>, meta: MessageMeta, retained: bool) -> Message {
        let props_len = meta.response_topic.as_ref().map_or(0, |t| t.len() + 3)
            + meta.correlation.as_ref().map_or(0, |c| c.len() + 3)
            + meta.content_type.as_ref().map_or(0, |c| c.len() + 3)
            + meta.expiry_secs.map_or(0, |_| 5)
            + meta
                .user
                .iter()
                .map(|(k, v)| k.len() + v.len() + 5)
                .sum::<usize>();
        Message {
            topic: topic.to_string(),
            payload,
            meta,
            retained,
            qos: QOS,
            props_len,
        }
    }

    /// Topic, properties and payload: the bytes it holds.
    pub fn size(&self) -> usize {
        self.topic.len() + self.props_len + self.payload.len()
    }

    fn of_paho(msg: &paho::Message) -> Message {
        Message {
            topic: msg.topic().to_string(),
            payload: msg.payload().to_vec(),
            meta: MessageMeta::of(msg),
            retained: msg.retained(),
            // Not used on receipt; what a re-publish would use.
            qos: QOS,
            props_len: msg.properties().byte_len(),
        }
    }

    pub(super) fn into_paho(self) -> paho::Message {
        self.meta
            .message_qos(&self.topic, self.payload, self.retained, self.qos)
    }
}

/// What a connection hands to its handler.
#[derive(Debug)]
pub enum Arrival {
    /// A message on a subscribed topic.
    Message(Message),
    /// The connection was lost.
    Lost,
    /// The broker closed the connection; `taken_over`: with "session taken
    /// over" (0x8E), another client connected with this client id.
    Disconnected {
        /// The broker's reason was "session taken over".
        taken_over: bool,
        /// The broker's reason, for logs.
        reason: String,
    },
}

/// Why a publish was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Not acknowledged within the wait.
    #[error("timed out waiting for the acknowledgement")]
    Timeout,
    /// Refused or failed; `reason` as the transport put it.
    #[error("{reason}")]
    Failed {
        /// The transport's words.
        reason: String,
        /// The failure classified for the user (a refusal by the ACL...).
        error: MqttError,
    },
}

impl DeliveryError {
    fn of_paho(topic: &str, e: paho::Error) -> DeliveryError {
        match e {
            paho::Error::Timeout => DeliveryError::Timeout,
            e => DeliveryError::Failed {
                reason: e.to_string(),
                error: classify_refusal(topic, e),
            },
        }
    }

    /// The classified error (a timeout is a client error).
    pub fn into_mqtt(self) -> MqttError {
        match self {
            DeliveryError::Timeout => MqttError::Client(paho::Error::Timeout),
            DeliveryError::Failed { error, .. } => error,
        }
    }
}

/// A publish in flight: completes once with its acknowledgement or failure.
/// Cheap to clone; every clone sees the one result.
#[derive(Clone)]
pub struct Delivery(DeliveryInner);

#[derive(Clone)]
enum DeliveryInner {
    Paho(paho::DeliveryToken),
    /// Refused before it was sent: the error (given once) and the message.
    Failed(Arc<std::sync::Mutex<Option<DeliveryError>>>, Arc<Message>),
    #[cfg(test)]
    Twin(super::twin::Ack),
}

impl Delivery {
    /// A delivery that failed before it was sent.
    pub fn failed(msg: Message, e: DeliveryError) -> Delivery {
        Delivery(DeliveryInner::Failed(
            Arc::new(std::sync::Mutex::new(Some(e))),
            Arc::new(msg),
        ))
    }

    /// The message published.
    pub fn message(&self) -> Message {
        match &self.0 {
            DeliveryInner::Paho(token) => Message::of_paho(token.message()),
            DeliveryInner::Failed(_, msg) => (**msg).clone(),
            #[cfg(test)]
            DeliveryInner::Twin(ack) => ack.message(),
        }
    }

    /// The result if it has completed, without waiting. Polls this token
    /// itself: a clone of a paho token is a deep copy of its message
    /// (payload and every property), and replies are checked this way
    /// once or more each.
    pub fn completed(&mut self) -> Option<Result<(), DeliveryError>> {
        futures::FutureExt::now_or_never(self)
    }

    /// Waits up to `timeout` for the result.
    ///
    /// # Errors
    /// [`DeliveryError::Timeout`], or the delivery's failure.
    pub fn wait(&self, timeout: Duration) -> Result<(), DeliveryError> {
        super::block_on(self.clone(), timeout).unwrap_or(Err(DeliveryError::Timeout))
    }
}

impl Future for Delivery {
    type Output = Result<(), DeliveryError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            DeliveryInner::Paho(token) => match Pin::new(&mut *token).poll(cx) {
                Poll::Ready(r) => {
                    Poll::Ready(r.map_err(|e| DeliveryError::of_paho(token.message().topic(), e)))
                }
                Poll::Pending => Poll::Pending,
            },
            DeliveryInner::Failed(error, _) => {
                let taken = error.lock().unwrap_or_else(|p| p.into_inner()).take();
                Poll::Ready(taken.map_or(Ok(()), Err))
            }
            #[cfg(test)]
            DeliveryInner::Twin(ack) => ack.poll(cx),
        }
    }
}

/// A subscription request.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// The filter (may be `$share/<group>/...`).
    pub filter: String,
    /// Its QoS.
    pub qos: i32,
    /// Send retained messages only if the subscription is new (MQTT 5
    /// retain handling 1).
    pub retained_only_if_new: bool,
}

/// An operation's future (connect, subscribe...).
pub type Pending<T> = Pin<Box<dyn Future<Output = Result<T, MqttError>> + Send>>;

/// What to hand to a new connection.
#[derive(Debug, Clone)]
pub struct Connect<'a> {
    /// Credentials and TLS (paho only).
    pub connection: &'a Connection,
    /// Clean start, session expiry, will, timeout.
    pub session: super::SessionSpec,
}

/// A client of one broker: paho's, or the in-memory twin's.
#[derive(Clone)]
pub enum Client {
    /// The real one.
    Paho(paho::AsyncClient, super::BrokerUri),
    /// The in-memory broker twin (unit tests).
    #[cfg(test)]
    Twin(super::twin::Client),
}

impl Client {
    /// A paho client for `broker`, not yet connected (see
    /// [`super::create_client`] for `send_while_disconnected`).
    ///
    /// # Errors
    /// A bad broker address, or options paho refuses.
    pub fn create(
        broker: &str,
        client_id: &str,
        send_while_disconnected: bool,
    ) -> Result<Client, MqttError> {
        Client::create_at(
            &super::BrokerUri::parse(broker)?,
            client_id,
            send_while_disconnected,
        )
    }

    /// [`Client::create`] for a broker already parsed (one broker of a
    /// list, as `doctor` probes them one by one).
    ///
    /// # Errors
    /// Options paho refuses.
    pub fn create_at(
        uri: &super::BrokerUri,
        client_id: &str,
        send_while_disconnected: bool,
    ) -> Result<Client, MqttError> {
        let client = super::create_client(uri, client_id, send_while_disconnected)?;
        Ok(Client::Paho(client, uri.clone()))
    }

    /// The broker as the user wrote it, for logs.
    pub fn broker(&self) -> &str {
        match self {
            Client::Paho(_, uri) => &uri.display,
            #[cfg(test)]
            Client::Twin(_) => "twin",
        }
    }

    /// Routes arrivals to `handler` (called on the transport's thread: it
    /// must never block). Set it before connecting.
    pub fn set_handler(&self, handler: impl Fn(Arrival) + Send + Sync + 'static) {
        let handler = Arc::new(handler);
        match self {
            Client::Paho(client, _) => {
                let on_lost = handler.clone();
                client.set_connection_lost_callback(move |_| on_lost(Arrival::Lost));
                let on_disconnect = handler.clone();
                client.set_disconnected_callback(move |_, _, reason| {
                    on_disconnect(Arrival::Disconnected {
                        taken_over: reason == paho::ReasonCode::SessionTakenOver,
                        reason: reason.to_string(),
                    })
                });
                client.set_message_callback(move |_, msg| {
                    if let Some(msg) = msg {
                        handler(Arrival::Message(Message::of_paho(&msg)));
                    }
                });
            }
            #[cfg(test)]
            Client::Twin(client) => client.set_handler(handler),
        }
    }

    /// Connects (blocking): what the broker said in its CONNACK, whether
    /// it kept a session among it.
    ///
    /// # Errors
    /// The classified [`MqttError`] (unreachable, refused, TLS).
    pub fn connect(&self, connect: &Connect<'_>) -> Result<Capabilities, MqttError> {
        match self {
            Client::Paho(client, uri) => {
                let opts = super::connect_options(connect.connection, uri, &connect.session)?;
                let response = super::connect(client, uri, opts)
                    .map_err(|e| super::explain(e, connect.connection, uri))?;
                Ok(Capabilities::of(&response))
            }
            #[cfg(test)]
            Client::Twin(client) => client
                .connect(&connect.session)
                .map(|present| Capabilities::assumed("twin", present)),
        }
    }

    /// Connects again with the options of the first connect; true when
    /// the broker kept the session.
    pub fn reconnect(&self) -> Pending<bool> {
        match self {
            Client::Paho(client, _) => {
                let token = client.reconnect();
                Box::pin(async move {
                    let response = token.await?;
                    Ok(response
                        .connect_response()
                        .is_some_and(|c| c.session_present))
                })
            }
            #[cfg(test)]
            Client::Twin(client) => {
                let result = client.reconnect();
                Box::pin(async move { result })
            }
        }
    }

    /// True while connected.
    pub fn is_connected(&self) -> bool {
        match self {
            Client::Paho(client, _) => client.is_connected(),
            #[cfg(test)]
            Client::Twin(client) => client.is_connected(),
        }
    }

    /// Subscribes to `subs`; fails naming the first filter refused.
    pub fn subscribe(&self, subs: &[Subscription]) -> Pending<()> {
        let each = self.subscribe_each(subs);
        Box::pin(async move { each.await?.into_iter().collect() })
    }

    /// Subscribes to `subs` in one request: each filter's own outcome (the
    /// broker may grant some and refuse others, and a caller may live
    /// without some), or an error when the request itself failed.
    pub fn subscribe_each(&self, subs: &[Subscription]) -> Pending<Vec<Result<(), MqttError>>> {
        let filters: Vec<String> = subs.iter().map(|s| s.filter.clone()).collect();
        match self {
            Client::Paho(client, _) => {
                let qos: Vec<i32> = subs.iter().map(|s| s.qos).collect();
                let options: Vec<paho::SubscribeOptions> = subs
                    .iter()
                    .map(|s| {
                        if s.retained_only_if_new {
                            paho::SubscribeOptions::with_retain_handling(
                                paho::RetainHandling::SendRetainedOnNew,
                            )
                        } else {
                            paho::SubscribeOptions::default()
                        }
                    })
                    .collect();
                let token = client.subscribe_many_with_options(&filters, &qos, &options, None);
                Box::pin(async move {
                    match token.await {
                        Ok(response) => {
                            let codes = response.subscribe_many_response().unwrap_or_default();
                            Ok(filters
                                .iter()
                                .enumerate()
                                .map(|(i, filter)| {
                                    let code = codes.get(i..=i).unwrap_or_default();
                                    super::check_granted(std::slice::from_ref(filter), code)
                                })
                                .collect())
                        }
                        // paho fails a request of one filter when the
                        // broker refuses it, instead of handing its code.
                        Err(e @ paho::Error::ReasonCode(..)) if filters.len() == 1 => {
                            Ok(vec![Err(classify_refusal(&filters[0], e))])
                        }
                        Err(e) => Err(classify_refusal(&filters.join(", "), e)),
                    }
                })
            }
            #[cfg(test)]
            Client::Twin(client) => {
                let result = client
                    .subscribe(subs)
                    .map(|()| filters.iter().map(|_| Ok(())).collect());
                Box::pin(async move { result })
            }
        }
    }

    /// Unsubscribes from `filter`.
    pub fn unsubscribe(&self, filter: &str) -> Pending<()> {
        match self {
            Client::Paho(client, _) => {
                let token = client.unsubscribe(filter);
                Box::pin(async move {
                    token.await?;
                    Ok(())
                })
            }
            #[cfg(test)]
            Client::Twin(client) => {
                client.unsubscribe(filter);
                Box::pin(async { Ok(()) })
            }
        }
    }

    /// Publishes at QoS 1, waiting (with a growing pause, up to 50 ms)
    /// while the transport's window or buffer is full, so a fast sender
    /// slows down instead of dropping messages.
    ///
    /// # Errors
    /// Any other refusal, with the message handed back.
    pub fn publish(&self, msg: Message) -> Result<Delivery, Box<(DeliveryError, Message)>> {
        match self {
            Client::Paho(client, _) => {
                let topic = msg.topic.clone();
                match super::publish_waiting(client, msg.into_paho()) {
                    Ok(token) => Ok(Delivery(DeliveryInner::Paho(token))),
                    Err(paho::Error::Publish(rc, back)) => {
                        let e = paho::Error::Publish(rc, paho::Message::default());
                        let msg = Message::of_paho(&back);
                        Err(Box::new((DeliveryError::of_paho(&topic, e), msg)))
                    }
                    Err(e) => Err(Box::new((
                        DeliveryError::of_paho(&topic, e),
                        Message::default(),
                    ))),
                }
            }
            #[cfg(test)]
            Client::Twin(client) => Ok(Delivery(DeliveryInner::Twin(client.publish(msg)))),
        }
    }

    /// Publishes at QoS 1 without waiting for room.
    ///
    /// # Errors
    /// The transport's refusal (its window or buffer is full, ...).
    pub fn try_publish(&self, msg: Message) -> Result<Delivery, DeliveryError> {
        match self {
            Client::Paho(client, _) => {
                let topic = msg.topic.clone();
                match client.try_publish(msg.into_paho()) {
                    Ok(token) => Ok(Delivery(DeliveryInner::Paho(token))),
                    Err(e) => Err(DeliveryError::of_paho(&topic, e)),
                }
            }
            #[cfg(test)]
            Client::Twin(client) => Ok(Delivery(DeliveryInner::Twin(client.publish(msg)))),
        }
    }

    /// Sends DISCONNECT without waiting and deliberately leaks the client,
    /// skipping paho's teardown (up to a second of thread joins and
    /// sleeps). Only for a process that exits right after.
    pub fn abandon(self) {
        match self {
            Client::Paho(client, _) => {
                let opts = paho::DisconnectOptionsBuilder::new()
                    .timeout(Duration::ZERO)
                    .finalize();
                drop(client.disconnect(opts));
                std::mem::forget(client);
            }
            #[cfg(test)]
            Client::Twin(client) => client.disconnect(),
        }
    }

    /// Disconnects normally (the broker keeps the session and discards
    /// the will), waiting at most `wait`.
    pub fn disconnect(&self, wait: Duration) {
        match self {
            Client::Paho(client, _) => {
                let opts = paho::DisconnectOptionsBuilder::new()
                    .timeout(wait)
                    .finalize();
                let _ = super::wait(client.disconnect(opts), wait + Duration::from_millis(500));
            }
            #[cfg(test)]
            Client::Twin(client) => client.disconnect(),
        }
    }
}
