//! Admission: where each request goes the moment paho hands it over.
//!
//! Requests wait in one of two lanes, each with its own thread and its own
//! byte budget, so that a slow operation never holds up fast ones:
//!
//! - the **edit lane** (half of `max_queue_bytes`): edits, answered in
//!   bursts whose changes share one group commit (fsyncs);
//! - the **fast lane** (a quarter): calc, echo, and whatever is not an
//!   edit (unknown operations are answered there too).
//!
//! A request that does not fit in its lane's budget is refused at once,
//! without running it, with error `busy` (or `limit` when it is larger
//! than the whole lane, so re-sending would never help). The refusal keeps
//! only what the reply needs (response topic, correlation data, encoding)
//! and waits in the **refusal queue** (the last quarter), which its own
//! thread publishes. A refused request that cannot be answered (no usable
//! response topic) becomes a dead letter instead, with at most
//! `max_payload_bytes` of its payload (its full length and hash kept), so
//! nothing the server received disappears without a trace. When even the
//! refusal queue is full the request is dropped: it is counted and
//! logged, and the client's timeout and re-send take over.
//!
//! Each **user-defined operation** has a queue of its own (an eighth of
//! `max_queue_bytes`, and at most [`WAITING_PER_RUN`] requests per allowed
//! concurrent run), answered by its own worker threads (`user.rs`), so a
//! slow program never holds up calc, echo, edit or another operation.
//!
//! Admission runs on paho's receiving thread and never blocks it: that
//! thread also processes the PUBACKs the lanes wait for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::handler::reply_target;
use super::memory::Memory;
use super::queue::{cost_of, ByteQueue, OVERHEAD};
use super::stats::Stats;
use crate::deadletter::{bounded, cut_of, DeadLetter, Header, Original};
use crate::mqtt::Message;
use crate::protocol::{request_traceparent, Encoding, ErrorCode, Op, Topics};

/// A request waiting in a lane.
pub struct Queued {
    /// The message as paho delivered it.
    pub msg: Message,
    /// When it arrived (for Message Expiry).
    pub arrived: Instant,
}

/// A request refused without being run: what its reply needs.
pub struct Refusal {
    /// The request's topic (for logs).
    pub topic: String,
    /// Its response topic, checked when the reply is sent.
    pub response_topic: Option<String>,
    /// Its correlation data, copied into the reply.
    pub correlation: Option<Vec<u8>>,
    /// The encoding of its payload, also the reply's.
    pub encoding: Encoding,
    /// `busy` or `limit`.
    pub code: ErrorCode,
    /// The reply's message.
    pub text: String,
    /// When there is nowhere to reply: the dead letter to record instead,
    /// already cut to the dead-letter caps (the store gives it its id).
    pub letter: Option<DeadLetter>,
    /// When it arrived (the reply's `mqttapp-queued-us` counts from here).
    pub arrived: Instant,
    /// Its valid `traceparent` (at most `traceparent::MAX_LEN` bytes),
    /// returned on the reply; the request's other user properties are
    /// freed with it.
    pub traceparent: Option<String>,
}

impl Refusal {
    /// The bytes it holds while it waits.
    fn cost(&self) -> usize {
        self.topic.len()
            + self.response_topic.as_ref().map_or(0, String::len)
            + self.correlation.as_ref().map_or(0, Vec::len)
            + self.text.len()
            + self.traceparent.as_ref().map_or(0, String::len)
            + self.letter.as_ref().map_or(0, |l| {
                l.detail.len()
                    + l.topic.len()
                    + l.response_topic.as_ref().map_or(0, String::len)
                    + l.correlation_hex.as_ref().map_or(0, String::len)
                    + l.content_type.as_ref().map_or(0, String::len)
                    + l.payload_hex.len()
                    + 5 * 96
            })
            + OVERHEAD
    }
}

/// What the overload protection did, for the periodic log line.
#[derive(Debug, Default)]
pub struct Tally {
    /// Requests refused with `busy`.
    pub busy: AtomicU64,
    /// Requests refused with `limit` (larger than their whole lane).
    pub too_large: AtomicU64,
    /// Requests dropped unanswered because the refusal queue was full too.
    pub dropped: AtomicU64,
    /// Refused requests without a usable response topic (kept as dead
    /// letters instead of answered).
    pub unanswerable: AtomicU64,
}

impl Tally {
    /// The four counts: busy, too large, dropped, unanswerable.
    pub fn counts(&self) -> [u64; 4] {
        [
            self.busy.load(Ordering::Relaxed),
            self.too_large.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
            self.unanswerable.load(Ordering::Relaxed),
        ]
    }

    /// Logs the counts when they changed since `last` (which is updated):
    /// one line per period however hard the flood.
    pub fn report(&self, last: &mut [u64; 4]) {
        let now = self.counts();
        if now != *last {
            let [busy, too_large, dropped, unanswerable] = now;
            tracing::warn!(
                busy,
                too_large,
                dropped,
                unanswerable,
                "overloaded: requests refused without being run (totals since start; see max_queue_bytes)"
            );
            *last = now;
        }
    }
}

/// Which lane answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// calc, echo and anything that is not an edit.
    Fast,
    /// edit: bursts with a group commit.
    Edit,
    /// The user-defined operation at this index of the configuration.
    User(usize),
}

impl Lane {
    fn name(self) -> &'static str {
        match self {
            Lane::Fast => "calc/echo",
            Lane::Edit => "edit",
            Lane::User(_) => "this user-defined operation's",
        }
    }
}

/// Requests one user-defined operation's queue holds per allowed
/// concurrent run (those running included): past it, `busy`.
pub const WAITING_PER_RUN: usize = 8;

/// The queue of one user-defined operation.
pub struct UserQueue {
    /// The operation's name (the last level of its request topic).
    pub name: String,
    /// Its requests.
    pub queue: ByteQueue<Queued>,
    /// The least a request costs in it: bounds the count as well as the
    /// bytes (`capacity / (WAITING_PER_RUN * max_concurrent)`).
    min_cost: usize,
}

/// The lanes, the refusal queue and their counts.
pub struct Admission {
    topics: Topics,
    /// Named on every refusal (`mqttapp-server-id`).
    server_id: String,
    /// Payload bytes a refused, unanswerable request keeps for its dead
    /// letter (`max_payload_bytes`).
    max_payload: usize,
    /// calc, echo, unknown operations.
    pub fast: ByteQueue<Queued>,
    /// edits.
    pub edit: ByteQueue<Queued>,
    /// One queue per user-defined operation, in configuration order.
    pub user: Vec<UserQueue>,
    /// Refusals waiting to be published.
    pub refusals: ByteQueue<Refusal>,
    /// What was refused or dropped.
    pub tally: Tally,
    /// Per-operation statistics (every request is counted here first).
    pub stats: Arc<Stats>,
    memory: Arc<Memory>,
}

impl Admission {
    /// Splits `max_queue_bytes` between the lanes: half for edits, a
    /// quarter for the fast lane, a quarter for refusals.
    pub fn new(
        topics: Topics,
        max_queue_bytes: u64,
        max_payload: usize,
        memory: Arc<Memory>,
    ) -> Admission {
        let total = usize::try_from(max_queue_bytes).unwrap_or(usize::MAX);
        Admission {
            server_id: String::new(),
            max_payload,
            fast: ByteQueue::new(total / 4, memory.clone()),
            edit: ByteQueue::new(total / 2, memory.clone()),
            refusals: ByteQueue::new(total / 4, memory.clone()),
            user: Vec::new(),
            tally: Tally::default(),
            stats: Arc::new(Stats::new(topics.clone(), &[], Arc::default())),
            topics,
            memory,
        }
    }

    /// The same admission, counting in `stats` (by default every request
    /// counts as an unknown operation's).
    pub fn counting(mut self, stats: Arc<Stats>) -> Admission {
        self.stats = stats;
        self
    }

    /// Adds a queue for each user-defined operation: an eighth of
    /// `max_queue_bytes` each, and at most [`WAITING_PER_RUN`] requests
    /// per allowed concurrent run.
    pub fn with_user_ops(
        mut self,
        ops: &[crate::config::ops::UserOp],
        max_queue_bytes: u64,
    ) -> Self {
        let bytes = usize::try_from(max_queue_bytes).unwrap_or(usize::MAX) / 8;
        self.user = ops
            .iter()
            .map(|op| UserQueue {
                name: op.name.clone(),
                queue: ByteQueue::new(bytes, self.memory.clone()),
                min_cost: bytes / (WAITING_PER_RUN * op.max_concurrent.max(1)),
            })
            .collect();
        self
    }

    /// The same admission, naming `server_id` on its refusals.
    pub fn answering_as(self, server_id: &str) -> Admission {
        Admission {
            server_id: server_id.to_string(),
            ..self
        }
    }

    /// The server id refusals name.
    pub fn server_id(&self) -> &str {
        &self.server_id
    }

    /// The topics (and allowed reply topics) requests are checked against.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// The lane for a request topic.
    pub fn lane_of(&self, topic: &str) -> Lane {
        let name = self.topics.op_name(topic);
        match name.and_then(Op::parse) {
            Some(Op::Edit) => Lane::Edit,
            Some(_) => Lane::Fast,
            None => match self.user.iter().position(|u| Some(u.name.as_str()) == name) {
                Some(i) => Lane::User(i),
                None => Lane::Fast,
            },
        }
    }

    /// The queue of a lane.
    pub fn queue(&self, lane: Lane) -> &ByteQueue<Queued> {
        match lane {
            Lane::Fast => &self.fast,
            Lane::Edit => &self.edit,
            // Lanes come from `lane_of`, which gives valid indexes only.
            Lane::User(i) => &self.user[i].queue,
        }
    }

    /// Every lane: fast, edit, then one per user-defined operation.
    pub fn lanes(&self) -> Vec<Lane> {
        let mut lanes = vec![Lane::Fast, Lane::Edit];
        lanes.extend((0..self.user.len()).map(Lane::User));
        lanes
    }

    /// Queues a request in its lane, or refuses it at once. Never blocks.
    pub fn admit(&self, msg: Message) {
        let arrived = Instant::now();
        self.stats.received(&msg.topic);
        let lane = self.lane_of(&msg.topic);
        let queue = self.queue(lane);
        let cost = match lane {
            Lane::User(i) => cost_of(&msg).max(self.user[i].min_cost),
            _ => cost_of(&msg),
        };
        let (msg, code, text) = if cost > queue.capacity() {
            let text = format!(
                "request of {cost} bytes (topic, properties and payload) is larger than this server's whole queue for {} requests ({} bytes); it was not run",
                lane.name(),
                queue.capacity()
            );
            (msg, ErrorCode::Limit, text)
        } else {
            match queue.offer(Queued { msg, arrived }, cost) {
                Ok(()) => return,
                Err(back) => {
                    let text = format!(
                        "server busy: its queue for {} requests is full ({} bytes); the request was not run - send it again after a pause",
                        lane.name(),
                        queue.capacity()
                    );
                    (back.msg, ErrorCode::Busy, text)
                }
            }
        };
        self.refuse(msg, arrived, code, text);
    }

    /// Keeps what the refusal's reply needs and queues it for publishing;
    /// the request itself (payload and all) is freed here.
    fn refuse(&self, msg: Message, arrived: Instant, code: ErrorCode, text: String) {
        let meta = &msg.meta;
        let letter = match reply_target(&self.topics, meta.response_topic.as_deref()) {
            Ok(_) => None,
            Err((reason, detail)) => {
                let full = &msg.payload;
                let kept = &full[..full.len().min(self.max_payload)];
                let original = Original {
                    topic: msg.topic.clone(),
                    response_topic: meta.response_topic.clone(),
                    correlation: meta.correlation.clone(),
                    content_type: meta.content_type.clone(),
                    payload: kept.to_vec(),
                    payload_cut: cut_of(full, kept.len()),
                };
                let detail = format!("{detail} (and it was refused without being run: {text})");
                let header = Header {
                    id: String::new(),
                    time: 0,
                    reason,
                    detail: &detail,
                };
                Some(bounded(header, &original, self.max_payload))
            }
        };
        // A letter carries what is kept of the request: the full
        // properties need not wait too.
        let unanswerable = letter.is_some();
        let refusal = Refusal {
            topic: msg.topic.clone(),
            encoding: Encoding::detect(meta.content_type.as_deref(), &msg.payload),
            response_topic: meta.response_topic.clone().filter(|_| !unanswerable),
            correlation: meta.correlation.clone().filter(|_| !unanswerable),
            code,
            text,
            letter,
            arrived,
            traceparent: request_traceparent(&meta.user)
                .filter(|_| !unanswerable)
                .map(String::from),
        };
        drop(msg);
        let cost = refusal.cost();
        let counter = match code {
            ErrorCode::Limit => &self.tally.too_large,
            _ => &self.tally.busy,
        };
        match self.refusals.offer(refusal, cost) {
            Ok(()) => counter.fetch_add(1, Ordering::Relaxed),
            Err(back) => {
                self.stats.dropped(&back.topic);
                self.tally.dropped.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::mqtt::MessageMeta;

    fn request(topic: &str, payload: &[u8]) -> Message {
        let meta = MessageMeta {
            response_topic: Some("p/v1/resp/1".into()),
            correlation: Some(b"c".to_vec()),
            ..MessageMeta::default()
        };
        Message::new(topic, payload.to_vec(), meta, false)
    }

    fn admission(total: u64) -> Admission {
        Admission::new(
            Topics::new("p"),
            total,
            1 << 20,
            Arc::new(Memory::default()),
        )
    }

    #[test]
    fn edits_and_the_rest_go_to_separate_lanes() {
        let a = admission(1 << 20);
        assert_eq!(a.lane_of("p/v1/req/edit"), Lane::Edit);
        for topic in ["p/v1/req/calc", "p/v1/req/echo", "p/v1/req/nope", "x"] {
            assert_eq!(a.lane_of(topic), Lane::Fast, "{topic}");
        }
        a.admit(request("p/v1/req/edit", b"{}"));
        a.admit(request("p/v1/req/calc", b"1+1"));
        assert!(a.edit.try_recv().is_some());
        assert!(a.fast.try_recv().is_some());
    }

    #[test]
    fn past_the_budget_requests_are_refused_busy_without_their_payload() {
        // A quarter of 64 KiB for the fast lane: 16 KiB.
        let a = admission(64 * 1024);
        let payload = vec![b'1'; 5000];
        let mut queued = 0;
        for _ in 0..10 {
            a.admit(request("p/v1/req/calc", &payload));
        }
        while a.fast.try_recv().is_some() {
            queued += 1;
        }
        assert_eq!(queued, 2, "16 KiB holds two requests of ~5.5 KB");
        assert_eq!(a.tally.counts(), [8, 0, 0, 0]);
        let (refusal, ticket) = a.refusals.try_recv().unwrap();
        assert_eq!(refusal.code, ErrorCode::Busy);
        assert_eq!(refusal.response_topic.as_deref(), Some("p/v1/resp/1"));
        assert!(ticket.cost() < 1000, "the payload is not kept");
    }

    #[test]
    fn a_refused_request_with_nowhere_to_reply_keeps_a_cut_dead_letter() {
        // max_payload 1 MiB in `admission`; this lane holds 16 KiB.
        let a = admission(64 * 1024);
        let meta = MessageMeta {
            response_topic: Some(format!("{}#", "r".repeat(60_000))),
            correlation: Some(vec![7; 60_000]),
            ..MessageMeta::default()
        };
        a.admit(Message::new(
            "p/v1/req/echo",
            vec![b'x'; 5_000],
            meta,
            false,
        ));
        let (refusal, ticket) = a.refusals.try_recv().unwrap();
        assert_eq!(refusal.code, ErrorCode::Limit);
        assert!(refusal.response_topic.is_none() && refusal.correlation.is_none());
        let letter = refusal.letter.expect("a dead letter instead of a reply");
        assert_eq!(letter.reason, crate::deadletter::Reason::NoResponseTopic);
        assert_eq!(
            letter.payload_hex.len(),
            10_000,
            "payload within max_payload"
        );
        assert_eq!(letter.response_topic_cut.unwrap().len, 60_001);
        assert_eq!(letter.correlation_cut.unwrap().len, 60_000);
        assert!(ticket.cost() < 15_000, "the full properties do not wait");
        assert_eq!(a.tally.counts(), [0, 1, 0, 0]);
    }

    #[test]
    fn a_request_larger_than_its_lane_is_refused_with_limit() {
        let a = admission(64 * 1024);
        a.admit(request("p/v1/req/echo", &vec![b'x'; 20_000]));
        assert!(a.fast.try_recv().is_none());
        let (refusal, _) = a.refusals.try_recv().unwrap();
        assert_eq!(refusal.code, ErrorCode::Limit);
        assert_eq!(a.tally.counts(), [0, 1, 0, 0]);
    }

    #[test]
    fn when_the_refusal_queue_is_full_too_the_request_is_counted_as_dropped() {
        let a = admission(8 * 1024);
        for _ in 0..20 {
            a.admit(request("p/v1/req/calc", &vec![b'1'; 1500]));
        }
        let [busy, _, dropped, _] = a.tally.counts();
        assert!(busy > 0 && dropped > 0, "{:?}", a.tally.counts());
    }

    #[test]
    fn the_budget_is_split_half_edits_quarter_fast_quarter_refusals() {
        let a = admission(64 * 1024);
        assert_eq!(a.edit.capacity(), 32 * 1024);
        assert_eq!(a.fast.capacity(), 16 * 1024);
        assert_eq!(a.refusals.capacity(), 16 * 1024);
    }

    #[test]
    fn a_request_exactly_the_size_of_its_lane_is_queued() {
        let msg = request("p/v1/req/calc", b"1+1");
        let cost = cost_of(&msg);
        let a = admission(4 * cost as u64);
        assert_eq!(a.fast.capacity(), cost);
        a.admit(msg);
        assert!(a.fast.try_recv().is_some());
        assert_eq!(a.tally.counts(), [0, 0, 0, 0]);
    }

    #[test]
    fn refusals_name_their_lane() {
        let a = admission(16 * 1024);
        a.admit(request("p/v1/req/edit", &[b'x'; 9000]));
        a.admit(request("p/v1/req/calc", &[b'x'; 9000]));
        let (edit, _) = a.refusals.try_recv().unwrap();
        let (calc, _) = a.refusals.try_recv().unwrap();
        assert!(edit.text.contains("for edit requests"), "{}", edit.text);
        assert!(
            calc.text.contains("for calc/echo requests"),
            "{}",
            calc.text
        );
    }

    #[test]
    fn a_refusal_costs_what_it_keeps() {
        let mut r = Refusal {
            topic: "t".repeat(3),
            response_topic: Some("r".repeat(5)),
            correlation: Some(vec![1; 7]),
            encoding: Encoding::Json,
            code: ErrorCode::Busy,
            text: "x".repeat(11),
            letter: None,
            arrived: Instant::now(),
            traceparent: Some("p".repeat(19)),
        };
        assert_eq!(r.cost(), 3 + 5 + 7 + 11 + 19 + OVERHEAD);
        r.traceparent = None;
        r.response_topic = None;
        r.correlation = None;
        let header = Header {
            id: String::new(),
            time: 0,
            reason: crate::deadletter::Reason::NoResponseTopic,
            detail: "",
        };
        let mut letter = bounded(header, &Original::default(), 0);
        letter.detail = "d".repeat(2);
        letter.topic = "t".repeat(13);
        letter.response_topic = Some("r".repeat(17));
        letter.correlation_hex = Some("c".repeat(19));
        letter.content_type = Some("y".repeat(23));
        letter.payload_hex = "p".repeat(29);
        r.letter = Some(letter.clone());
        let fields = 2 + 13 + 17 + 19 + 23 + 29;
        assert_eq!(r.cost(), 3 + 11 + fields + 5 * 96 + OVERHEAD);
        letter.response_topic = None;
        letter.correlation_hex = None;
        letter.content_type = None;
        r.letter = Some(letter);
        assert_eq!(r.cost(), 3 + 11 + 2 + 13 + 29 + 5 * 96 + OVERHEAD);
    }

    #[test]
    fn the_tally_report_remembers_what_it_logged() {
        let t = Tally::default();
        t.busy.fetch_add(2, Ordering::Relaxed);
        t.dropped.fetch_add(3, Ordering::Relaxed);
        let mut last = [0; 4];
        t.report(&mut last);
        assert_eq!(last, [2, 0, 3, 0]);
        t.too_large.fetch_add(1, Ordering::Relaxed);
        t.unanswerable.fetch_add(4, Ordering::Relaxed);
        t.report(&mut last);
        assert_eq!(last, [2, 1, 3, 4]);
    }
}
