//! The server: connect with a persistent session, subscribe to the request
//! topics, answer every request exactly once, dead-letter what cannot be
//! answered, reconnect when the broker goes away, and stop gracefully.
//!
//! `run` takes the shutdown flag as an argument so that tests (and
//! `main.rs`'s signal handler) decide when it stops.

mod handler;
mod identity;
mod letters;
mod link;
mod replies;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError};
use paho_mqtt as paho;

use crate::config::Config;
use crate::deadletter::{DeadLetters, Reason};
use crate::mqtt::{MessageMeta, MqttError};
use crate::operations::{edit::EditError, Operations};
use crate::protocol::Topics;
use handler::{handle, Incoming};
use letters::DeadLetterSink;
use link::Link;
use replies::ReplySender;

/// How long a graceful shutdown keeps answering what already arrived.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// A graceful shutdown's drain ends once no request came for this long.
const DRAIN_QUIET: Duration = Duration::from_millis(300);
/// How long a graceful shutdown waits for its replies' acknowledgements.
const FINISH_LIMIT: Duration = Duration::from_secs(10);
/// Requests already waiting that are handled together, at most: their
/// edits to one file share one commit (four fsyncs for the group instead of
/// four per edit), and the replies to those edits wait for that commit.
const BURST: usize = 64;

/// Why the server could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Connecting or subscribing failed.
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    /// The data directory or default file cannot be used.
    #[error("cannot open the data directory: {0} - check --data-dir (MQTTAPP_DATA_DIR) and its permissions")]
    Store(#[from] EditError),
}

/// What reaches the loop from paho's callback thread.
pub(crate) enum Event {
    Message(paho::Message, Instant),
}

/// Runs the server until `shutdown` becomes true.
///
/// # Errors
/// [`ServeError`] when the first connection or subscription fails or the
/// data directory cannot be opened. Later connection losses are retried,
/// also when another client uses this server's client id (`link.rs`):
/// nothing a client sends stops a server.
pub fn run(config: &Config, shutdown: &AtomicBool) -> Result<(), ServeError> {
    let default_file = config
        .file
        .as_deref()
        .unwrap_or(crate::config::DEFAULT_FILE);
    let ops = Operations::open(&config.data_dir, default_file, config.limits)?;
    let topics = Topics::new(&config.prefix).allowing_replies(&config.reply_topics);
    let (events_tx, events) = unbounded();
    let link = Link::open(config, events_tx)?;
    tracing::info!(broker = %link.broker(), filter = %link.filter, data_dir = %config.data_dir.display(), server_id = %config.server_id, session_resumed = link.resumed, "serving");
    let store = DeadLetters::new(&config.data_dir, &config.server_id)
        .with_max_payload(config.limits.max_payload);
    let letters = Arc::new(DeadLetterSink::start(
        store,
        config.limits.max_deadletter_bytes,
        link.client.clone(),
        topics.dead_letters(),
    ));
    let server = Server {
        ops,
        topics,
        replies: ReplySender::start(link.client.clone(), letters.clone()),
        letters,
        max_payload: config.limits.max_payload,
    };
    let stop_keeper = AtomicBool::new(false);
    thread::scope(|scope| {
        scope.spawn(|| link.keep(&stop_keeper));
        server.serve(&events, shutdown);
        server.stop(&events, &link);
        stop_keeper.store(true, Ordering::SeqCst);
        Ok(())
    })
}

/// The state the loop needs to answer requests.
struct Server {
    ops: Operations,
    topics: Topics,
    letters: Arc<DeadLetterSink>,
    replies: ReplySender,
    max_payload: usize,
}

impl Server {
    /// Answers requests until shutdown.
    fn serve(&self, events: &Receiver<Event>, shutdown: &AtomicBool) {
        while !shutdown.load(Ordering::SeqCst) {
            match events.recv_timeout(Duration::from_millis(100)) {
                Ok(Event::Message(msg, arrived)) => self.answer_burst(msg, arrived, events),
                // Idle: check the replies' acknowledgements that came in.
                Err(RecvTimeoutError::Timeout) => self.replies.check(usize::MAX),
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    /// Graceful shutdown: stop taking new requests where the broker allows
    /// it, answer what already arrived, wait for the replies' PUBACKs,
    /// publish "offline", disconnect, and keep any late arrival as a dead
    /// letter.
    fn stop(self, events: &Receiver<Event>, link: &Link) {
        tracing::info!("shutting down: answering what already arrived");
        link.leave_group();
        self.drain(events);
        let Server {
            replies, letters, ..
        } = self;
        if !replies.finish(Instant::now() + FINISH_LIMIT) {
            tracing::warn!("some replies were not acknowledged before shutdown; clients re-send");
        }
        link.close();
        for event in events.try_iter() {
            let Event::Message(msg, _) = event;
            let incoming = incoming_of(&msg, Instant::now());
            letters.record(
                Reason::Shutdown,
                "server stopped before answering",
                &incoming.original(),
            );
        }
        tracing::info!("stopped");
    }

    /// Answers `first` and whatever else is already waiting (up to
    /// BURST) as one group: edit replies are published once the group's
    /// commit has kept their promise, or as errors if it failed; other
    /// replies go out at once.
    fn answer_burst(&self, first: paho::Message, arrived: Instant, events: &Receiver<Event>) {
        let mut burst = vec![(first, arrived)];
        while burst.len() < BURST {
            match events.try_recv() {
                Ok(Event::Message(msg, arrived)) => burst.push((msg, arrived)),
                Err(_) => break,
            }
        }
        self.ops.begin_group();
        let mut held = Vec::new();
        for (msg, arrived) in burst {
            let incoming = incoming_of(&msg, arrived);
            let outcome = handle(&self.ops, &self.topics, self.max_payload, &incoming);
            if outcome.reply.as_ref().is_some_and(|r| r.awaits_commit()) {
                held.push((incoming, outcome));
            } else {
                self.deliver(&incoming, outcome);
            }
        }
        let failures = self.ops.commit_group();
        for (incoming, mut outcome) in held {
            if let Some(reply) = outcome.reply.as_mut() {
                reply.settle(&failures);
            }
            self.deliver(&incoming, outcome);
        }
    }

    /// Records the outcome's dead letter, if any, and publishes its reply.
    fn deliver(&self, incoming: &Incoming, outcome: handler::Outcome) {
        if let Some((reason, detail)) = &outcome.dead_letter {
            self.letters.record(*reason, detail, &incoming.original());
        }
        if let Some(reply) = outcome.reply {
            tracing::debug!(topic = %crate::logging::shorten(&incoming.topic, 120), reply_to = %crate::logging::shorten(&reply.topic, 120), error = ?reply.error, "answered");
            let msg = reply.meta.message(&reply.topic, reply.payload, false);
            self.replies.send(msg);
        }
    }

    /// Answers what has already arrived, until quiet or DRAIN_LIMIT.
    fn drain(&self, events: &Receiver<Event>) {
        let deadline = Instant::now() + DRAIN_LIMIT;
        while Instant::now() < deadline {
            match events.recv_timeout(DRAIN_QUIET) {
                Ok(Event::Message(msg, arrived)) => self.answer_burst(msg, arrived, events),
                Err(_) => return,
            }
        }
    }
}

fn incoming_of(msg: &paho::Message, arrived: Instant) -> Incoming {
    Incoming {
        topic: msg.topic().to_string(),
        meta: MessageMeta::of(msg),
        payload: msg.payload().to_vec(),
        arrived,
    }
}
