//! Request messages in, one outcome each out: a reply to publish, a dead
//! letter, or both. A burst is answered by one [`Batch`] of the
//! operations, so its edits are committed together; every outcome
//! returned is final (an edit's reply is only made after its commit).
//! Pure with respect to MQTT: the loop in `mod.rs` does the publishing.

use std::panic::{catch_unwind, AssertUnwindSafe};

// The last-resort guard below relies on unwinding.
#[cfg(panic = "abort")]
compile_error!("mqttapp serve needs panic = \"unwind\": its panic guard catches operation bugs");
use std::time::Instant;

use crate::deadletter::{Original, Reason};
use crate::logging::shorten;
use crate::mqtt::MessageMeta;
use crate::operations::{Batch, Operations, Replay};
use crate::protocol::{
    decode_request, encode_reply, Encoding, ErrorCode, Op, ProtocolError, Reply, Request, Topics,
};

/// A request as it arrived, with the moment it arrived (for expiry).
pub struct Incoming {
    /// Topic it was published to.
    pub topic: String,
    /// Its MQTT 5 properties.
    pub meta: MessageMeta,
    /// The payload.
    pub payload: Vec<u8>,
    /// When paho handed it to us.
    pub arrived: Instant,
}

impl Incoming {
    /// The message as it should be stored in a dead letter.
    pub fn original(&self) -> Original {
        Original {
            topic: self.topic.clone(),
            response_topic: self.meta.response_topic.clone(),
            correlation: self.meta.correlation.clone(),
            content_type: self.meta.content_type.clone(),
            payload: self.payload.clone(),
            payload_cut: None,
        }
    }
}

/// A reply ready to publish.
pub struct Outgoing {
    /// The request's Response Topic.
    pub topic: String,
    /// Correlation Data and Content Type for the reply.
    pub meta: MessageMeta,
    /// Encoded reply.
    pub payload: Vec<u8>,
    /// The error code, for logs and counters.
    pub error: Option<String>,
}

/// What to do with a request.
pub struct Outcome {
    /// The reply, when there is somewhere to send it.
    pub reply: Option<Outgoing>,
    /// A dead letter to record: reason and detail.
    pub dead_letter: Option<(Reason, String)>,
}

/// What answers the decoded requests of a burst: a [`Batch`] of the
/// operations in the server. A trait so the panic guard can be tested
/// with an operation that panics.
pub trait Answers {
    /// Takes one request; returns the position of its reply in
    /// [`Answers::commit`]'s list.
    fn apply(&mut self, request: &Request, replay: Option<Replay>) -> usize;
    /// The final replies to every request taken, in order.
    fn commit(self) -> Vec<Reply>;
}

impl Answers for Batch<'_> {
    fn apply(&mut self, request: &Request, replay: Option<Replay>) -> usize {
        Batch::apply(self, request, replay)
    }

    fn commit(self) -> Vec<Reply> {
        Batch::commit(self)
    }
}

/// A function answering each request at once, as [`Answers`].
#[cfg(test)]
pub type Apply<'a> = dyn Fn(&Request, Option<Replay>) -> Reply + 'a;

/// [`Answers`] by a function: replies are final when given.
#[cfg(test)]
struct Each<'a, 'f> {
    apply: &'a Apply<'f>,
    replies: Vec<Reply>,
}

#[cfg(test)]
impl Answers for Each<'_, '_> {
    fn apply(&mut self, request: &Request, replay: Option<Replay>) -> usize {
        self.replies.push((self.apply)(request, replay));
        self.replies.len() - 1
    }

    fn commit(self) -> Vec<Reply> {
        self.replies
    }
}

/// Decodes, dispatches and encodes one request.
pub fn handle(ops: &Operations, topics: &Topics, max_payload: usize, msg: &Incoming) -> Outcome {
    only(handle_all(
        ops.batch(),
        topics,
        max_payload,
        std::slice::from_ref(msg),
    ))
}

/// Decodes, dispatches and encodes a burst of requests with one batch of
/// the operations (one commit per edited file); the outcomes, one per
/// message and in order, are final.
pub fn handle_burst(
    ops: &Operations,
    topics: &Topics,
    max_payload: usize,
    msgs: &[Incoming],
) -> Vec<Outcome> {
    handle_all(ops.batch(), topics, max_payload, msgs)
}

/// [`handle`] with the operations passed as a function, so the panic
/// guard can be tested with an operation that panics.
#[cfg(test)]
pub fn handle_with(
    apply: &Apply<'_>,
    topics: &Topics,
    max_payload: usize,
    msg: &Incoming,
) -> Outcome {
    let each = Each {
        apply,
        replies: Vec::new(),
    };
    only(handle_all(
        each,
        topics,
        max_payload,
        std::slice::from_ref(msg),
    ))
}

/// A message handled up to its reply: refused already, or answered (at
/// once, or at position `n` of the batch's replies).
enum Step {
    Done(Outcome),
    Answered {
        target: Target,
        reply: Given,
        dead_letter: Option<(Reason, String)>,
    },
}

/// A reply known before the commit, or the position of one it gives.
enum Given {
    Now(Reply),
    AtCommit(usize),
}

/// The only outcome of a burst of one.
fn only(mut outcomes: Vec<Outcome>) -> Outcome {
    outcomes.pop().unwrap_or(Outcome {
        reply: None,
        dead_letter: Some((Reason::HandlerFailure, "no outcome was made".to_string())),
    })
}

fn handle_all(
    mut answers: impl Answers,
    topics: &Topics,
    max_payload: usize,
    msgs: &[Incoming],
) -> Vec<Outcome> {
    let steps: Vec<Step> = msgs
        .iter()
        .map(|msg| {
            prepare_with(msg, topics, |encoding| {
                answer(&mut answers, topics, max_payload, msg, encoding)
            })
        })
        .collect();
    let mut replies: Vec<Option<Reply>> = answers.commit().into_iter().map(Some).collect();
    steps
        .into_iter()
        .map(|step| finish(step, &mut replies))
        .collect()
}

/// Where a request's reply goes, and in which encoding.
pub struct Target {
    /// The request's (checked) Response Topic.
    pub topic: String,
    /// Its Correlation Data, copied into the reply.
    pub correlation: Option<Vec<u8>>,
    /// Its encoding, also the reply's.
    pub encoding: Encoding,
}

impl Target {
    /// `reply`, encoded and addressed.
    pub fn outgoing(&self, reply: &Reply) -> Outgoing {
        let error = match reply {
            Reply::Err(e) => Some(e.code.clone()),
            Reply::Ok(_) => None,
        };
        let meta = MessageMeta {
            response_topic: None,
            correlation: self.correlation.clone(),
            content_type: Some(self.encoding.content_type().to_string()),
            expiry_secs: None,
            user: Vec::new(),
        };
        Outgoing {
            topic: self.topic.clone(),
            meta,
            payload: encode_reply(reply, self.encoding),
            error,
        }
    }
}

/// The checks before a request is answered: a reply target it may use,
/// not expired. The dead letter to record instead when they fail.
pub fn target_of(msg: &Incoming, topics: &Topics) -> Result<Target, (Reason, String)> {
    let response_topic = reply_target(topics, msg.meta.response_topic.as_deref())?;
    if let Some(secs) = msg.meta.expiry_secs {
        if msg.arrived.elapsed().as_secs_f64() >= f64::from(secs) {
            let detail = format!("expired after {secs} s before it was handled");
            return Err((Reason::Expired, detail));
        }
    }
    Ok(Target {
        topic: response_topic.to_string(),
        correlation: msg.meta.correlation.clone(),
        encoding: Encoding::detect(msg.meta.content_type.as_deref(), &msg.payload),
    })
}

/// The checks before a request is answered ([`target_of`]), then
/// `answer` with the request's encoding.
fn prepare_with(
    msg: &Incoming,
    topics: &Topics,
    answer: impl FnOnce(Encoding) -> (Given, Option<(Reason, String)>),
) -> Step {
    let target = match target_of(msg, topics) {
        Ok(target) => target,
        Err(letter) => {
            return Step::Done(Outcome {
                reply: None,
                dead_letter: Some(letter),
            })
        }
    };
    let (reply, dead_letter) = answer(target.encoding);
    Step::Answered {
        target,
        reply,
        dead_letter,
    }
}

/// The outcome of a step, with its final reply taken from `replies`.
fn finish(step: Step, replies: &mut [Option<Reply>]) -> Outcome {
    let (target, reply, dead_letter) = match step {
        Step::Done(outcome) => return outcome,
        Step::Answered {
            target,
            reply,
            dead_letter,
        } => (target, reply, dead_letter),
    };
    let reply = match reply {
        Given::Now(reply) => reply,
        Given::AtCommit(n) => replies
            .get_mut(n)
            .and_then(Option::take)
            .unwrap_or_else(|| {
                Reply::error(ErrorCode::Internal, "internal error: no reply was made")
            }),
    };
    Outcome {
        reply: Some(target.outgoing(&reply)),
        dead_letter,
    }
}

fn answer(
    answers: &mut impl Answers,
    topics: &Topics,
    max_payload: usize,
    msg: &Incoming,
    encoding: Encoding,
) -> (Given, Option<(Reason, String)>) {
    let name = topics.op_name(&msg.topic).unwrap_or("");
    let Some(op) = Op::parse(name) else {
        let text = format!(
            "unknown operation \"{}\"; this server offers calc, echo, edit and the user-defined operations its status lists (mqttapp status)",
            shorten(name, 60)
        );
        return (
            Given::Now(Reply::error(ErrorCode::UnknownOp, text.clone())),
            Some((Reason::UnknownOp, text)),
        );
    };
    if msg.payload.len() > max_payload {
        let e = ProtocolError::TooLarge {
            size: msg.payload.len(),
            limit: max_payload,
        };
        return (Given::Now(Reply::error(e.code(), e.to_string())), None);
    }
    let request = match decode_request(op, encoding, &msg.payload) {
        Ok(r) => r,
        Err(e) => {
            let text = e.to_string();
            return (
                Given::Now(Reply::error(e.code(), text.clone())),
                Some((Reason::Undecodable, text)),
            );
        }
    };
    guarded(op, || answers.apply(&request, replay_key(&msg.meta)))
}

/// The last-resort guard: a panic in an operation (a bug) becomes an
/// `internal` reply and a dead letter instead of killing the server. The
/// operations hold no state that a panic could leave half-changed in
/// memory (the edit store's state is on disk, written atomically; a batch
/// changes its staged state only after every check, and takes a request
/// only when its answer is complete), so serving on is safe.
fn guarded(op: Op, apply: impl FnOnce() -> usize) -> (Given, Option<(Reason, String)>) {
    match catch_unwind(AssertUnwindSafe(apply)) {
        Ok(n) => (Given::AtCommit(n), None),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            let text = format!("internal error in {op}: {what}");
            tracing::error!(%op, panic = %shorten(&what, 200), "operation panicked; answered internal and kept serving");
            (
                Given::Now(Reply::error(ErrorCode::Internal, text.clone())),
                Some((Reason::HandlerFailure, text)),
            )
        }
    }
}

/// Requests are the same request when response topic and correlation data
/// match. Without correlation data (e.g. `mosquitto_rr`) there is no way to
/// tell a re-send from a new request, so there is no key. The Message
/// Expiry says how long the client may re-send it.
pub(super) fn replay_key(meta: &MessageMeta) -> Option<Replay> {
    let correlation = meta.correlation.as_ref()?;
    let topic = meta.response_topic.as_ref()?;
    let mut key = Vec::with_capacity(topic.len() + 1 + correlation.len());
    key.extend_from_slice(topic.as_bytes());
    key.push(0);
    key.extend_from_slice(correlation);
    Some(Replay {
        key,
        expiry_secs: meta.expiry_secs,
    })
}

/// Most `/` a reply topic may hold. Mosquitto refuses a PUBLISH whose topic
/// has more (`TOPIC_HIERARCHY_LIMIT`) as a protocol error and closes the
/// connection, and the session re-sends the unacknowledged reply on every
/// reconnect: one request with a 300-level response topic kept a server
/// off the broker for good.
const MAX_TOPIC_SEPARATORS: usize = 200;

/// The topic to reply to, or why there is none we may use: it must be a
/// valid topic name (non-empty, no wildcards, no NUL, at
/// most 201 levels) and must not be one
/// of the protocol's own topics or a `$` topic, so that a request cannot
/// make the server publish fake requests, statuses or dead letters
/// (`no_response_topic`); and it must match the allowed reply filters,
/// `<prefix>/v1/resp/#` unless `reply_topics` adds others, so that a
/// request cannot make the server publish to another system's topics
/// (`response_topic_not_allowed`).
pub(super) fn reply_target<'a>(
    topics: &Topics,
    topic: Option<&'a str>,
) -> Result<&'a str, (Reason, String)> {
    let refused = |detail: String| (Reason::NoResponseTopic, detail);
    let Some(topic) = topic else {
        return Err(refused(
            "no response topic: there is nowhere to reply".to_string(),
        ));
    };
    if topic.is_empty() || topic.len() > 65_535 || topic.contains(['#', '+', '\0']) {
        return Err(refused(format!(
            "response topic {topic:?} is not a valid topic name"
        )));
    }
    if topic.matches('/').count() > MAX_TOPIC_SEPARATORS {
        return Err(refused(format!(
            "response topic {topic:?} has more than {} levels, which brokers refuse",
            MAX_TOPIC_SEPARATORS + 1
        )));
    }
    if topic.starts_with('$') || topics.is_reserved(topic) {
        return Err(refused(format!(
            "response topic {topic:?} is reserved (requests, statuses, dead letters or $ topics)"
        )));
    }
    if !topics.reply_allowed(topic) {
        return Err((
            Reason::ResponseTopicNotAllowed,
            format!(
                "response topic {topic:?} is not one replies may go to ({}); a server allows others with --reply-topics (MQTTAPP_REPLY_TOPICS, reply_topics)",
                topics.reply_filters().join(", ")
            ),
        ));
    }
    Ok(topic)
}

#[cfg(test)]
mod tests;
