//! The thread that publishes refusals (`busy`, `limit`): cheap replies to
//! requests that were never run (see `lanes.rs`). It has its own thread so
//! that refusing goes on at full speed while both lanes are busy, and
//! neither paho's receiving thread nor a lane ever waits for it.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::breakdown::{self, Timing};
use super::handler::reply_target;
use super::lanes::{Admission, Refusal};
use super::letters::DeadLetterSink;
use super::memory::Memory;
use super::queue::Next;
use super::replies::ReplySender;
use crate::mqtt::{Message, MessageMeta};
use crate::protocol::{encode_reply, ErrorCode, Reply};

/// Publishes refusals until an order comes on `stop` (or its sender is
/// dropped), checking the acknowledgements when idle for `idle_wait`, then
/// waits (up to `finish_within` after the stop) for their
/// acknowledgements. What is still queued then is left for the caller to
/// count.
pub fn serve(
    admission: &Admission,
    letters: &DeadLetterSink,
    replies: ReplySender,
    memory: &Memory,
    stop: &Receiver<()>,
    idle_wait: Duration,
    finish_within: Duration,
) {
    loop {
        match admission.refusals.recv_or(stop, idle_wait) {
            Next::Item(refusal, _ticket) => send(refusal, admission, letters, &replies),
            Next::Idle => {
                replies.check(usize::MAX);
                memory.trim_if_drained();
            }
            Next::Order(()) | Next::Closed => break,
        }
    }
    if !replies.finish(Instant::now() + finish_within) {
        tracing::warn!("some refusals were not acknowledged before shutdown; clients re-send");
    }
}

/// Publishes one refusal, with the server's id and time breakdown (no
/// work: it was not run), or, when there is nowhere to send it (the same
/// response-topic rules as for answers), records its dead letter.
fn send(
    mut refusal: Refusal,
    admission: &Admission,
    letters: &DeadLetterSink,
    replies: &ReplySender,
) {
    let (topics, tally, stats) = (admission.topics(), &admission.tally, &admission.stats);
    if let Some(letter) = refusal.letter.take() {
        tally.unanswerable.fetch_add(1, Ordering::Relaxed);
        stats.dead_letter(&refusal.topic, letter.reason);
        letters.record_letter(letter);
        return;
    }
    let target = match reply_target(topics, refusal.response_topic.as_deref()) {
        Ok(target) => target,
        Err((_, detail)) => {
            tally.unanswerable.fetch_add(1, Ordering::Relaxed);
            stats.dropped(&refusal.topic);
            tracing::debug!(topic = %crate::logging::shorten(&refusal.topic, 120), detail = %crate::logging::shorten(&detail, 240), "refused request dropped: no usable response topic");
            return;
        }
    };
    let mut meta = MessageMeta {
        response_topic: None,
        correlation: refusal.correlation.clone(),
        content_type: Some(refusal.encoding.content_type().to_string()),
        expiry_secs: None,
        user: Vec::new(),
    };
    let traceparent = refusal.traceparent.as_deref();
    breakdown::stamp(
        &mut meta,
        admission.server_id(),
        refusal.arrived,
        Timing::not_run(),
        traceparent,
    );
    let span = match traceparent {
        Some(traceparent) => tracing::debug_span!("request", traceparent),
        None => tracing::Span::none(),
    };
    let _entered = span.enter();
    let payload = encode_reply(
        &Reply::error(refusal.code, refusal.text.clone()),
        refusal.encoding,
    );
    tracing::debug!(topic = %crate::logging::shorten(&refusal.topic, 120), reply_to = %crate::logging::shorten(target, 120), code = %refusal.code, "refused");
    match refusal.code {
        ErrorCode::Busy => stats.refused_busy(&refusal.topic),
        code => stats.replied(&refusal.topic, Some(code.as_str()), None),
    }
    replies.send(Message::new(target, payload, meta, false));
}
