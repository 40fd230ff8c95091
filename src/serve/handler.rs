//! One request message in, one outcome out: a reply to publish, a dead
//! letter, or both. Pure with respect to MQTT: the loop in `mod.rs` does
//! the publishing.

use std::panic::{catch_unwind, AssertUnwindSafe};

// The last-resort guard below relies on unwinding.
#[cfg(panic = "abort")]
compile_error!("mqttapp serve needs panic = \"unwind\": its panic guard catches operation bugs");
use std::time::Instant;

use crate::deadletter::{Original, Reason};
use crate::logging::shorten;
use crate::mqtt::MessageMeta;
use crate::operations::edit::GroupFailure;
use crate::operations::{Operations, Replay};
use crate::protocol::{
    decode_request, encode_reply, Encoding, ErrorCode, OkValue, Op, ProtocolError, Reply, Request,
    Topics,
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
    /// The file and revision of an edit this reply reports as applied
    /// (not for `show`): inside a group, a promise the commit must keep.
    pub edit: Option<(String, u64)>,
    /// The reply's encoding, to encode a replacement.
    pub encoding: Encoding,
}

impl Outgoing {
    /// True while the reply reports an edit that a group commit must still
    /// keep (see [`Outgoing::settle`]).
    pub fn awaits_commit(&self) -> bool {
        self.edit.is_some()
    }

    /// After the group commit: a reply whose edit was in a failed group
    /// becomes that failure's error (the edit did not happen after all).
    pub fn settle(&mut self, failures: &[GroupFailure]) {
        let broken = self.edit.as_ref().and_then(|(file, rev)| {
            failures
                .iter()
                .find(|f| f.file == *file && f.revs.contains(rev))
        });
        if let Some(f) = broken {
            let code = ErrorCode::parse(f.code).unwrap_or(ErrorCode::Internal);
            self.payload = encode_reply(&Reply::error(code, f.message.clone()), self.encoding);
            self.error = Some(code.as_str().to_string());
        }
        self.edit = None;
    }
}

/// What to do with a request.
pub struct Outcome {
    /// The reply, when there is somewhere to send it.
    pub reply: Option<Outgoing>,
    /// A dead letter to record: reason and detail.
    pub dead_letter: Option<(Reason, String)>,
}

/// What answers a decoded request: [`Operations::apply`] in the server.
pub type Apply<'a> = dyn Fn(&Request, Option<Replay>) -> Reply + 'a;

/// Decodes, dispatches and encodes one request.
pub fn handle(ops: &Operations, topics: &Topics, max_payload: usize, msg: &Incoming) -> Outcome {
    handle_with(&|r, key| ops.apply(r, key), topics, max_payload, msg)
}

/// [`handle`] with the operations passed as a function, so the panic
/// guard can be tested with an operation that panics.
pub fn handle_with(
    apply: &Apply<'_>,
    topics: &Topics,
    max_payload: usize,
    msg: &Incoming,
) -> Outcome {
    let response_topic = match reply_target(topics, msg.meta.response_topic.as_deref()) {
        Ok(topic) => topic,
        Err((reason, detail)) => {
            return Outcome {
                reply: None,
                dead_letter: Some((reason, detail)),
            }
        }
    };
    if let Some(secs) = msg.meta.expiry_secs {
        if msg.arrived.elapsed().as_secs_f64() >= f64::from(secs) {
            let detail = format!("expired after {secs} s before it was handled");
            return Outcome {
                reply: None,
                dead_letter: Some((Reason::Expired, detail)),
            };
        }
    }
    let encoding = Encoding::detect(msg.meta.content_type.as_deref(), &msg.payload);
    let (reply, dead_letter) = answer(apply, topics, max_payload, msg, encoding);
    let error = match &reply {
        Reply::Err(e) => Some(e.code.clone()),
        Reply::Ok(_) => None,
    };
    let edit = match &reply {
        Reply::Ok(OkValue::Edit(result)) if result.content.is_none() => {
            Some((result.file.clone(), result.rev))
        }
        _ => None,
    };
    let meta = MessageMeta {
        response_topic: None,
        correlation: msg.meta.correlation.clone(),
        content_type: Some(encoding.content_type().to_string()),
        expiry_secs: None,
    };
    let payload = encode_reply(&reply, encoding);
    Outcome {
        reply: Some(Outgoing {
            topic: response_topic.to_string(),
            meta,
            payload,
            error,
            edit,
            encoding,
        }),
        dead_letter,
    }
}

fn answer(
    apply: &Apply<'_>,
    topics: &Topics,
    max_payload: usize,
    msg: &Incoming,
    encoding: Encoding,
) -> (Reply, Option<(Reason, String)>) {
    let name = topics.op_name(&msg.topic).unwrap_or("");
    let Some(op) = Op::parse(name) else {
        let text = format!(
            "unknown operation \"{}\"; this server offers calc, echo, edit",
            shorten(name, 60)
        );
        return (
            Reply::error(ErrorCode::UnknownOp, text.clone()),
            Some((Reason::UnknownOp, text)),
        );
    };
    if msg.payload.len() > max_payload {
        let e = ProtocolError::TooLarge {
            size: msg.payload.len(),
            limit: max_payload,
        };
        return (Reply::error(e.code(), e.to_string()), None);
    }
    let request = match decode_request(op, encoding, &msg.payload) {
        Ok(r) => r,
        Err(e) => {
            let text = e.to_string();
            return (
                Reply::error(e.code(), text.clone()),
                Some((Reason::Undecodable, text)),
            );
        }
    };
    guarded(op, || apply(&request, replay_key(&msg.meta)))
}

/// The last-resort guard: a panic in an operation (a bug) becomes an
/// `internal` reply and a dead letter instead of killing the server. The
/// operations hold no state that a panic could leave half-changed in
/// memory (the edit store's state is on disk, written atomically, its locks
/// released on unwind), so serving on is safe.
fn guarded(op: Op, apply: impl FnOnce() -> Reply) -> (Reply, Option<(Reason, String)>) {
    match catch_unwind(AssertUnwindSafe(apply)) {
        Ok(reply) => (reply, None),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            let text = format!("internal error in {op}: {what}");
            tracing::error!(%op, panic = %shorten(&what, 200), "operation panicked; answered internal and kept serving");
            (
                Reply::error(ErrorCode::Internal, text.clone()),
                Some((Reason::HandlerFailure, text)),
            )
        }
    }
}

/// Requests are the same request when response topic and correlation data
/// match. Without correlation data (e.g. `mosquitto_rr`) there is no way to
/// tell a re-send from a new request, so there is no key. The Message
/// Expiry says how long the client may re-send it.
fn replay_key(meta: &MessageMeta) -> Option<Replay> {
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
