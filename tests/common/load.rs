//! Raw pipelining clients that count replies by correlation data, for the
//! load and scale-out tests. Every loop is bounded in count and time.

use std::collections::{HashMap, VecDeque};
use std::thread;
use std::time::{Duration, Instant};

use paho_mqtt as paho;

use super::Broker;

/// A raw client that may pipeline many publishes (paho's default buffer
/// holds only 100 unsent messages).
pub struct LoadClient {
    pub client: paho::AsyncClient,
    pub rx: paho::SyncReceiver<Option<paho::Message>>,
    pub response_topic: String,
}

impl LoadClient {
    /// Connects as `id` and subscribes to `<prefix>/v1/resp/<id>`.
    pub fn connect(broker: &Broker, prefix: &str, id: &str) -> LoadClient {
        let (client, rx, response_topic) = super::raw::connect_subscribed(broker, prefix, id);
        LoadClient {
            client,
            rx,
            response_topic,
        }
    }

    /// Publishes a request (QoS 1) to `topic` with a response topic,
    /// correlation data and an optional Message Expiry; waits while paho's
    /// buffer is full. The token must be checked.
    pub fn publish(
        &self,
        topic: &str,
        payload: &[u8],
        correlation: &[u8],
        expiry_secs: Option<u32>,
    ) -> paho::DeliveryToken {
        let mut props = paho::Properties::new();
        props
            .push_string(paho::PropertyCode::ResponseTopic, &self.response_topic)
            .unwrap();
        props
            .push_binary(paho::PropertyCode::CorrelationData, correlation.to_vec())
            .unwrap();
        if let Some(secs) = expiry_secs {
            props
                .push_u32(paho::PropertyCode::MessageExpiryInterval, secs)
                .unwrap();
        }
        let mut msg = paho::MessageBuilder::new()
            .topic(topic)
            .payload(payload)
            .qos(1)
            .properties(props)
            .finalize();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.client.try_publish(msg) {
                Ok(token) => return token,
                Err(paho::Error::Publish(-12, back)) if Instant::now() < deadline => {
                    msg = back;
                    thread::sleep(Duration::from_millis(2));
                }
                Err(e) => panic!("publish to {topic} refused: {e}"),
            }
        }
    }

    /// [`LoadClient::publish`] and wait (bounded) for the broker's PUBACK.
    pub fn send(&self, topic: &str, payload: &[u8], correlation: &[u8], expiry_secs: Option<u32>) {
        self.publish(topic, payload, correlation, expiry_secs)
            .wait_for(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("publish to {topic} not acknowledged: {e}"));
    }

    /// The next reply: correlation data and payload.
    pub fn next(&self, within: Duration) -> Option<(Vec<u8>, Vec<u8>)> {
        let msg = self.rx.recv_timeout(within).ok()??;
        let correlation = msg
            .properties()
            .get_binary(paho::PropertyCode::CorrelationData)
            .unwrap_or_default();
        Some((correlation, msg.payload().to_vec()))
    }
}

/// Publishes a pipelining client keeps unacknowledged (by the broker, not
/// by the server: replies are not awaited while sending). paho C scans all
/// pending publishes of the process on every publish, so an unbounded
/// window makes the test client, not the server, the bottleneck.
const PUBLISH_WINDOW: usize = 50;

fn wait_acked(token: Option<paho::DeliveryToken>) {
    if let Some(token) = token {
        token
            .wait_for(Duration::from_secs(60))
            .expect("every request publish is acknowledged");
    }
}

/// Counts of a pipelined run.
#[derive(Debug, Default)]
pub struct Tally {
    /// Requests published (and acknowledged by the broker).
    pub sent: usize,
    /// Requests that got at least one reply.
    pub answered: usize,
    /// Replies beyond the first for the same request.
    pub duplicates: usize,
    /// Replies whose payload was not the expected one (first few).
    pub wrong: Vec<String>,
}

impl Tally {
    /// Asserts that `expected` requests were sent and each got exactly one
    /// right reply.
    #[allow(dead_code)]
    pub fn assert_exactly_once(&self, expected: usize) {
        assert_eq!(self.sent, expected, "{self:?}");
        assert_eq!(self.lost(), 0, "requests without a reply: {self:?}");
        assert_eq!(self.duplicates, 0, "duplicate replies: {self:?}");
        assert!(self.wrong.is_empty(), "wrong replies: {:?}", self.wrong);
    }

    /// Requests that got no reply.
    pub fn lost(&self) -> usize {
        self.sent - self.answered
    }
}

/// What one pipelined request is: op, payload, expected reply payload.
pub type Make = fn(client: usize, seq: usize) -> (&'static str, Vec<u8>, Vec<u8>);

/// `clients` threads each publish `per_client` requests without waiting
/// for replies (checking every publish token), then collect replies by
/// correlation data until all came or `within` passed, and keep listening
/// for `linger` to catch duplicates.
pub fn pipelined(
    broker: &Broker,
    prefix: &str,
    clients: usize,
    per_client: usize,
    make: Make,
    within: Duration,
    linger: Duration,
) -> Tally {
    let deadline = Instant::now() + within;
    let tallies: Vec<Tally> = thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                s.spawn(move || one_pipeline(broker, prefix, c, per_client, make, deadline, linger))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("load thread"))
            .collect()
    });
    let mut total = Tally::default();
    for t in tallies {
        total.sent += t.sent;
        total.answered += t.answered;
        total.duplicates += t.duplicates;
        total.wrong.extend(t.wrong.into_iter().take(5));
    }
    total
}

fn one_pipeline(
    broker: &Broker,
    prefix: &str,
    c: usize,
    n: usize,
    make: Make,
    deadline: Instant,
    linger: Duration,
) -> Tally {
    let client = LoadClient::connect(broker, prefix, &format!("{prefix}-load-{c}"));
    let mut expected = HashMap::with_capacity(n);
    let mut tokens = VecDeque::with_capacity(PUBLISH_WINDOW);
    for i in 0..n {
        let (op, payload, reply) = make(c, i);
        let correlation = format!("{c}/{i}").into_bytes();
        let topic = format!("{prefix}/v1/req/{op}");
        if tokens.len() == PUBLISH_WINDOW {
            wait_acked(tokens.pop_front());
        }
        tokens.push_back(client.publish(&topic, &payload, &correlation, None));
        expected.insert(correlation, reply);
    }
    tokens.into_iter().for_each(|t| wait_acked(Some(t)));
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::with_capacity(n);
    let mut tally = Tally {
        sent: n,
        ..Tally::default()
    };
    let mut quiet_until = deadline;
    while let Some(left) = quiet_until.checked_duration_since(Instant::now()) {
        let Some((correlation, payload)) = client.next(left) else {
            break;
        };
        let count = seen.entry(correlation.clone()).or_insert(0);
        *count += 1;
        if *count > 1 {
            tally.duplicates += 1;
        } else if expected.get(&correlation) != Some(&payload) {
            tally.wrong.push(format!(
                "{}: got {:?}",
                String::from_utf8_lossy(&correlation),
                String::from_utf8_lossy(&payload)
            ));
        }
        if seen.len() == n && quiet_until == deadline {
            quiet_until = Instant::now() + linger;
        }
    }
    tally.answered = seen.len();
    let _ = client
        .client
        .disconnect(None)
        .wait_for(Duration::from_secs(5));
    tally
}
