//! An in-memory broker twin for unit tests: a functioning MQTT 5 broker in
//! the process, not a mock of paho calls. It routes publishes to
//! subscriptions (`+` and `#` wildcards, `$share/<group>/` shared
//! subscriptions served round-robin), keeps retained messages (sent on a
//! new subscription, or only on a new one with retain handling 1), carries
//! the properties mqttapp uses, keeps persistent sessions (their
//! subscriptions and the messages queued while the client is away), sends
//! a client's will when its connection drops, and lets a test drop
//! connections, refuse reconnects, hold or fail acknowledgements, and
//! take a client id over.
//!
//! Arrivals are handed to a client's handler on the publishing thread,
//! after the broker's lock is released.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use super::transport::{Arrival, DeliveryError, Message, Subscription};
use super::{MqttError, SessionSpec};

type Handler = Arc<dyn Fn(Arrival) + Send + Sync>;

/// How the twin acknowledges publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// At once.
    Immediate,
    /// Held until [`Broker::release_acks`] or [`Broker::fail_acks`].
    Held,
}

#[derive(Default)]
struct Session {
    connected: bool,
    /// filter (without `$share/g/`), group, retained-only-if-new.
    subscriptions: Vec<(String, Option<String>)>,
    queued: VecDeque<Message>,
    handler: Option<Handler>,
    will: Option<Message>,
    clean_start: bool,
    /// Publishes made while disconnected (send while disconnected).
    outbox: Vec<(Message, Ack)>,
}

struct State {
    sessions: HashMap<String, Session>,
    retained: BTreeMap<String, Message>,
    acks: Acks,
    held: Vec<Ack>,
    refuse_connects: bool,
    refused: usize,
    next_share: usize,
    published: Vec<Message>,
}

/// The broker twin. Cheap to clone.
#[derive(Clone)]
pub struct Broker(Arc<Mutex<State>>);

/// A client of the twin, with its client id.
#[derive(Clone)]
pub struct Client {
    broker: Broker,
    id: String,
    spec: Arc<Mutex<Option<SessionSpec>>>,
    /// Handler set before connecting.
    handler: Arc<Mutex<Option<Handler>>>,
}

impl Default for Broker {
    fn default() -> Self {
        Broker::new()
    }
}

impl Broker {
    /// An empty broker acknowledging at once.
    pub fn new() -> Broker {
        Broker(Arc::new(Mutex::new(State {
            sessions: HashMap::new(),
            retained: BTreeMap::new(),
            acks: Acks::Immediate,
            held: Vec::new(),
            refuse_connects: false,
            refused: 0,
            next_share: 0,
            published: Vec::new(),
        })))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A client with this id (not connected yet).
    pub fn client(&self, id: &str) -> Client {
        Client {
            broker: self.clone(),
            id: id.to_string(),
            spec: Arc::default(),
            handler: Arc::default(),
        }
    }

    /// Sets how publishes are acknowledged.
    pub fn set_acks(&self, acks: Acks) {
        self.state().acks = acks;
    }

    /// Acknowledges every held publish.
    pub fn release_acks(&self) {
        let held = std::mem::take(&mut self.state().held);
        for ack in held {
            ack.complete(Ok(()));
        }
    }

    /// Fails every held publish with `reason`.
    pub fn fail_acks(&self, reason: &str) {
        let held = std::mem::take(&mut self.state().held);
        for ack in held {
            let topic = ack.message().topic;
            ack.complete(Err(DeliveryError::Failed {
                reason: reason.to_string(),
                error: MqttError::Refused {
                    topic,
                    reason: reason.to_string(),
                },
            }));
        }
    }

    /// Publishes held, not yet acknowledged.
    pub fn held_acks(&self) -> usize {
        self.state().held.len()
    }

    /// Refuses (or accepts again) connects and reconnects.
    pub fn refuse_connects(&self, refuse: bool) {
        self.state().refuse_connects = refuse;
    }

    /// Connects and reconnects refused so far.
    pub fn refused_connects(&self) -> usize {
        self.state().refused
    }

    /// Drops `id`'s connection as a network failure would: its handler
    /// gets [`Arrival::Lost`] and its will is published.
    pub fn drop_connection(&self, id: &str) {
        let (handler, will) = {
            let mut state = self.state();
            let Some(session) = state.sessions.get_mut(id) else {
                return;
            };
            if !session.connected {
                return;
            }
            session.connected = false;
            (session.handler.clone(), session.will.clone())
        };
        if let Some(handler) = handler {
            handler(Arrival::Lost);
        }
        if let Some(will) = will {
            self.route(will, None);
        }
    }

    /// Every message published so far, in order (wills and retained ones
    /// included).
    pub fn published(&self) -> Vec<Message> {
        self.state().published.clone()
    }

    /// A message published by the test itself (no client).
    pub fn publish(&self, msg: Message) {
        self.route(msg, None);
    }

    /// Whether `id` is connected.
    pub fn connected(&self, id: &str) -> bool {
        self.state().sessions.get(id).is_some_and(|s| s.connected)
    }

    /// Routes `msg` to every matching subscription, stores it if retained;
    /// `ack` is completed (or held) once routed.
    fn route(&self, msg: Message, ack: Option<Ack>) {
        let mut deliveries: Vec<(Handler, Message)> = Vec::new();
        {
            let mut state = self.state();
            state.published.push(msg.clone());
            if msg.retained {
                if msg.payload.is_empty() {
                    state.retained.remove(&msg.topic);
                } else {
                    state.retained.insert(msg.topic.clone(), msg.clone());
                }
            }
            let mut delivered = msg.clone();
            delivered.retained = false;
            let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut ids: Vec<&String> = state.sessions.keys().collect();
            ids.sort();
            let mut direct = Vec::new();
            for id in ids {
                let session = &state.sessions[id];
                for (filter, group) in &session.subscriptions {
                    if !matches(filter, &msg.topic) {
                        continue;
                    }
                    match group {
                        Some(g) => groups
                            .entry(format!("{g}/{filter}"))
                            .or_default()
                            .push(id.clone()),
                        None => direct.push(id.clone()),
                    }
                    break;
                }
            }
            for (_, members) in groups {
                // Prefer connected members, round-robin.
                let online: Vec<&String> = members
                    .iter()
                    .filter(|m| state.sessions[*m].connected)
                    .collect();
                let pick = if online.is_empty() {
                    members[state.next_share % members.len()].clone()
                } else {
                    online[state.next_share % online.len()].clone()
                };
                state.next_share += 1;
                direct.push(pick);
            }
            for id in direct {
                let session = state.sessions.get_mut(&id).expect("listed above");
                match (&session.handler, session.connected) {
                    (Some(h), true) => deliveries.push((h.clone(), delivered.clone())),
                    _ => session.queued.push_back(delivered.clone()),
                }
            }
            if let Some(ack) = &ack {
                if state.acks == Acks::Held {
                    state.held.push(ack.clone());
                }
            }
        }
        for (handler, msg) in deliveries {
            handler(Arrival::Message(msg));
        }
        if let Some(ack) = ack {
            if self.state().acks == Acks::Immediate {
                ack.complete(Ok(()));
            }
        }
    }
}

impl Client {
    /// Sets the handler (before connecting).
    pub fn set_handler(&self, handler: Handler) {
        *self.handler.lock().unwrap_or_else(|p| p.into_inner()) = Some(handler.clone());
        if let Some(s) = self.broker.state().sessions.get_mut(&self.id) {
            s.handler = Some(handler);
        }
    }

    /// Connects with `spec`; true when a session was kept. A client
    /// already connected with this id is taken over.
    pub fn connect(&self, spec: &SessionSpec) -> Result<bool, MqttError> {
        *self.spec.lock().unwrap_or_else(|p| p.into_inner()) = Some(spec.clone());
        self.open()
    }

    /// Connects again with the first connect's options.
    pub fn reconnect(&self) -> Result<bool, MqttError> {
        self.open()
    }

    fn open(&self) -> Result<bool, MqttError> {
        let spec = self
            .spec
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or(SessionSpec {
                clean_start: true,
                session_expiry: std::time::Duration::ZERO,
                will: None,
                connect_timeout: std::time::Duration::from_secs(1),
            });
        let handler = self
            .handler
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let (kicked, present, queued, outbox) = {
            let mut state = self.broker.state();
            if state.refuse_connects {
                state.refused += 1;
                return Err(MqttError::Unreachable {
                    uri: "twin".into(),
                    reason: "connection refused".into(),
                });
            }
            let existed = state.sessions.contains_key(&self.id);
            let session = state.sessions.entry(self.id.clone()).or_default();
            let kicked = if session.connected {
                session.handler.clone()
            } else {
                None
            };
            let present = existed && !spec.clean_start && !session.clean_start;
            if spec.clean_start {
                session.subscriptions.clear();
                session.queued.clear();
            }
            session.clean_start = spec.clean_start;
            session.connected = true;
            session.handler = handler.clone();
            session.will = spec.will.clone();
            let queued: Vec<Message> = session.queued.drain(..).collect();
            let outbox = std::mem::take(&mut session.outbox);
            (kicked, present, queued, outbox)
        };
        if let Some(old) = kicked {
            old(Arrival::Disconnected {
                taken_over: true,
                reason: "Session taken over".into(),
            });
            old(Arrival::Lost);
        }
        if let Some(h) = &handler {
            for msg in queued {
                h(Arrival::Message(msg));
            }
        }
        for (msg, ack) in outbox {
            self.broker.route(msg, Some(ack));
        }
        Ok(present)
    }

    /// True while connected.
    pub fn is_connected(&self) -> bool {
        self.broker.connected(&self.id)
    }

    /// Subscribes; sends the matching retained messages (unless the
    /// subscription existed and asks for them only if new).
    pub fn subscribe(&self, subs: &[Subscription]) -> Result<(), MqttError> {
        let (handler, retained) = {
            let mut state = self.broker.state();
            let State {
                sessions, retained, ..
            } = &mut *state;
            let Some(session) = sessions.get_mut(&self.id).filter(|s| s.connected) else {
                return Err(MqttError::Client(paho_mqtt::Error::Disconnected));
            };
            let mut send = Vec::new();
            for sub in subs {
                let (filter, group) = split_shared(&sub.filter);
                let entry = (filter.to_string(), group.map(String::from));
                let existed = session.subscriptions.contains(&entry);
                if !existed {
                    session.subscriptions.push(entry);
                }
                if group.is_none() && !(existed && sub.retained_only_if_new) {
                    send.extend(
                        retained
                            .values()
                            .filter(|m| matches(filter, &m.topic))
                            .cloned(),
                    );
                }
            }
            (session.handler.clone(), send)
        };
        if let Some(h) = handler {
            for msg in retained {
                h(Arrival::Message(msg));
            }
        }
        Ok(())
    }

    /// Removes a subscription.
    pub fn unsubscribe(&self, filter: &str) {
        let (filter, group) = split_shared(filter);
        let entry = (filter.to_string(), group.map(String::from));
        if let Some(s) = self.broker.state().sessions.get_mut(&self.id) {
            s.subscriptions.retain(|e| *e != entry);
        }
    }

    /// Publishes; while disconnected the message waits for the next
    /// connection (as with paho's "send while disconnected").
    pub fn publish(&self, msg: Message) -> Ack {
        let ack = Ack::new(msg.clone());
        {
            let mut state = self.broker.state();
            if let Some(s) = state.sessions.get_mut(&self.id).filter(|s| !s.connected) {
                s.outbox.push((msg, ack.clone()));
                return ack;
            }
        }
        self.broker.route(msg, Some(ack.clone()));
        ack
    }

    /// Disconnects normally: the session stays, the will is discarded.
    pub fn disconnect(&self) {
        if let Some(s) = self.broker.state().sessions.get_mut(&self.id) {
            s.connected = false;
            s.will = None;
        }
    }
}

/// A publish's acknowledgement, completed by the twin.
#[derive(Clone)]
pub struct Ack(Arc<Mutex<AckState>>);

struct AckState {
    msg: Message,
    result: Option<Result<(), DeliveryError>>,
    waker: Option<Waker>,
}

impl Ack {
    fn new(msg: Message) -> Ack {
        Ack(Arc::new(Mutex::new(AckState {
            msg,
            result: None,
            waker: None,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, AckState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The message published.
    pub fn message(&self) -> Message {
        self.lock().msg.clone()
    }

    fn complete(&self, result: Result<(), DeliveryError>) {
        let waker = {
            let mut s = self.lock();
            s.result = Some(result);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The result once (later polls of a completed ack see success).
    pub fn poll(&self, cx: &mut Context<'_>) -> Poll<Result<(), DeliveryError>> {
        let mut s = self.lock();
        match s.result.take() {
            Some(r) => {
                s.result = Some(Ok(()));
                Poll::Ready(r)
            }
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// `$share/<group>/<filter>` split into filter and group.
fn split_shared(filter: &str) -> (&str, Option<&str>) {
    match filter
        .strip_prefix("$share/")
        .and_then(|r| r.split_once('/'))
    {
        Some((group, rest)) => (rest, Some(group)),
        None => (filter, None),
    }
}

/// MQTT topic matching with `+` (one level) and `#` (the rest).
pub fn matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_mqtt_says() {
        assert!(matches("a/+/c", "a/b/c"));
        assert!(!matches("a/+/c", "a/b/d"));
        assert!(matches("a/#", "a/b/c"));
        assert!(matches("a/#", "a"));
        assert!(!matches("a/+", "a/b/c"));
        assert_eq!(split_shared("$share/g/a/+"), ("a/+", Some("g")));
        assert_eq!(split_shared("a/+"), ("a/+", None));
    }
}
