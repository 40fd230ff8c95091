//! The server: connect with a persistent session, subscribe to the request
//! topics, answer every request exactly once, dead-letter what cannot be
//! answered, reconnect when the broker goes away, and stop gracefully.
//!
//! `run` takes the shutdown flag as an argument so that tests (and
//! `main.rs`'s signal handler) decide when it stops.
//!
//! Threads: paho's receiving thread hands each request to admission
//! (`lanes.rs`), which queues it in its lane within a byte budget or
//! refuses it `busy` at once; the fast lane answers calc and echo, the
//! edit lane answers edits in bursts with a group commit, so fsyncs never
//! hold up a calc; a third thread publishes the refusals; a fourth keeps
//! the link (`link.rs`). The calling thread waits for shutdown.

mod handler;
mod identity;
mod lanes;
mod letters;
mod link;
mod memory;
mod queue;
mod refusals;
mod replies;

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use paho_mqtt as paho;

use crate::config::Config;
use crate::deadletter::{DeadLetters, Reason};
use crate::mqtt::{MessageMeta, MqttError};
use crate::operations::{edit::EditError, Operations};
use crate::protocol::Topics;
use handler::{handle, Incoming};
use lanes::{Admission, Lane, Queued};
use letters::DeadLetterSink;
use link::Link;
use memory::Memory;
use queue::{ByteQueue, Ticket};
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
/// Bytes of requests (as counted by the queues) in one burst, at most:
/// a burst's requests, their copies and their replies are held until its
/// commit, on top of what waits in the queues.
const BURST_BYTES: usize = 1024 * 1024;
/// How long an idle lane (or the refusal thread) waits for a request before
/// it checks its replies and its orders; short, because when another
/// process took over this server's id, "offline" must be published before
/// that process reconnects (100-150 ms later), or both would stop.
const IDLE_WAIT: Duration = Duration::from_millis(40);
/// How often the overload counts are logged (when they changed).
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// Stack of the lane threads: calc recursion is bounded for the size of a
/// main thread's stack (`limits::MAX_CALC_DEPTH`).
const LANE_STACK: usize = 8 * 1024 * 1024;

/// Why the server could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Connecting or subscribing failed.
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    /// The data directory or default file cannot be used.
    #[error("cannot open the data directory: {0} - check --data-dir (MQTTAPP_DATA_DIR) and its permissions")]
    Store(#[from] EditError),
    /// A request lane's thread could not be started.
    #[error("cannot start a request thread: {0} - the system is out of threads or memory")]
    Thread(std::io::Error),
}

/// Runs the server until `shutdown` becomes true.
///
/// # Errors
/// [`ServeError`] when the first connection or subscription fails, the
/// data directory cannot be opened, or a lane's thread cannot start.
/// Later connection losses are retried, also when another client uses
/// this server's client id (`link.rs`): nothing a client sends stops a
/// server.
pub fn run(config: &Config, shutdown: &AtomicBool) -> Result<(), ServeError> {
    let default_file = config
        .file
        .as_deref()
        .unwrap_or(crate::config::DEFAULT_FILE);
    let ops = Operations::open(&config.data_dir, default_file, config.limits)?;
    let topics = Topics::new(&config.prefix).allowing_replies(&config.reply_topics);
    let memory = Arc::new(Memory::default());
    let admission = Arc::new(Admission::new(
        topics.clone(),
        config.limits.max_queue_bytes,
        config.limits.max_payload,
        memory.clone(),
    ));
    let link = Link::open(config, admission.clone())?;
    tracing::info!(broker = %link.broker(), filter = %link.filter, data_dir = %config.data_dir.display(), server_id = %config.server_id, session_resumed = link.resumed, max_queue_bytes = config.limits.max_queue_bytes, "serving");
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
        letters,
        memory,
        max_payload: config.limits.max_payload,
    };
    let sender = || ReplySender::start(link.client.clone(), server.letters.clone());
    let control = Control::default();
    let stop_refusals = AtomicBool::new(false);
    let stop_keeper = AtomicBool::new(false);
    thread::scope(|scope| {
        scope.spawn(|| link.keep(&stop_keeper));
        let refusing = {
            let replies = sender();
            let (admission, server) = (&admission, &server);
            let stop = &stop_refusals;
            scope.spawn(move || {
                refusals::serve(
                    admission,
                    &server.letters,
                    replies,
                    &server.memory,
                    stop,
                    IDLE_WAIT,
                    FINISH_LIMIT,
                )
            })
        };
        let mut lanes = Vec::new();
        let mut unstarted = None;
        for (lane, name) in [(Lane::Fast, "fast-lane"), (Lane::Edit, "edit-lane")] {
            let replies = sender();
            let (queue, server, control) = (admission.queue(lane), &server, &control);
            let spawned = thread::Builder::new()
                .name(name.into())
                .stack_size(LANE_STACK)
                .spawn_scoped(scope, move || {
                    server.serve_lane(lane, queue, replies, control)
                });
            match spawned {
                Ok(handle) => lanes.push(handle),
                Err(e) => unstarted = Some(e),
            }
        }
        let outcome = match unstarted {
            Some(e) => Err(ServeError::Thread(e)),
            None => {
                wait_for_stop(shutdown, &admission.tally);
                Ok(())
            }
        };
        if outcome.is_ok() {
            tracing::info!("shutting down: answering what already arrived");
            link.leave_group();
            control.set(Mode::Drain);
        } else {
            control.set(Mode::Halt);
            stop_refusals.store(true, Ordering::SeqCst);
        }
        for lane in lanes {
            let _ = lane.join();
        }
        stop_refusals.store(true, Ordering::SeqCst);
        let _ = refusing.join();
        link.close();
        server.keep_late_arrivals(&admission);
        stop_keeper.store(true, Ordering::SeqCst);
        outcome
    })
}

/// Waits until shutdown (`Ok`) or until the session was taken over
/// (`Err`), logging the overload counts now and then.
fn wait_for_stop(shutdown: &AtomicBool, tally: &lanes::Tally) {
    let mut reported = [0; 4];
    let mut next_report = Instant::now() + REPORT_EVERY;
    while !shutdown.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(10));
        if Instant::now() >= next_report {
            tally.report(&mut reported);
            next_report = Instant::now() + REPORT_EVERY;
        }
    }
    tally.report(&mut reported);
}

/// What the lanes should do, set by the thread that waits for shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Answer requests.
    Run,
    /// Graceful shutdown: answer what already arrived, until quiet.
    Drain,
    /// Stop now (a lane's thread could not start): leftovers become dead
    /// letters.
    Halt,
}

/// The shared [`Mode`].
#[derive(Debug, Default)]
struct Control(AtomicU8);

impl Control {
    fn mode(&self) -> Mode {
        match self.0.load(Ordering::SeqCst) {
            0 => Mode::Run,
            1 => Mode::Drain,
            _ => Mode::Halt,
        }
    }

    fn set(&self, mode: Mode) {
        self.0.store(mode as u8, Ordering::SeqCst);
    }
}

/// The state the lanes need to answer requests (shared by both).
struct Server {
    ops: Operations,
    topics: Topics,
    letters: Arc<DeadLetterSink>,
    memory: Arc<Memory>,
    max_payload: usize,
}

impl Server {
    /// One lane's loop: answers its requests until told to stop, drains
    /// them on a graceful shutdown, then waits for its replies' PUBACKs.
    fn serve_lane(
        &self,
        lane: Lane,
        queue: &ByteQueue<Queued>,
        replies: ReplySender,
        control: &Control,
    ) {
        let mut drain_until = None;
        loop {
            let wait = match control.mode() {
                Mode::Run => IDLE_WAIT,
                Mode::Drain => {
                    let until = *drain_until.get_or_insert(Instant::now() + DRAIN_LIMIT);
                    if Instant::now() >= until {
                        break;
                    }
                    DRAIN_QUIET
                }
                Mode::Halt => break,
            };
            match queue.recv_timeout(wait) {
                Some((first, ticket)) => match lane {
                    Lane::Edit => self.answer_burst(first, ticket, queue, &replies),
                    Lane::Fast => self.answer_one(first, ticket, &replies),
                },
                // Drained: nothing came for DRAIN_QUIET.
                None if drain_until.is_some() => break,
                // Idle: check the replies' acknowledgements that came in,
                // and give a drained backlog's memory back.
                None => {
                    replies.check(usize::MAX);
                    self.memory.trim_if_drained();
                }
            }
        }
        if !replies.finish(Instant::now() + FINISH_LIMIT) {
            tracing::warn!("some replies were not acknowledged before shutdown; clients re-send");
        }
    }

    /// Answers one request of the fast lane.
    fn answer_one(&self, first: Queued, ticket: Ticket<'_, Queued>, replies: &ReplySender) {
        let incoming = incoming_of(first);
        let outcome = handle(&self.ops, &self.topics, self.max_payload, &incoming);
        self.deliver(&incoming, outcome, replies);
        drop(ticket);
    }

    /// Answers `first` and whatever else is already waiting (up to BURST
    /// requests or BURST_BYTES) as one batch: the replies, final (edits
    /// committed), are published after the batch.
    fn answer_burst<'q>(
        &self,
        first: Queued,
        ticket: Ticket<'q, Queued>,
        queue: &'q ByteQueue<Queued>,
        replies: &ReplySender,
    ) {
        let mut bytes = ticket.cost();
        let mut burst = vec![(first, ticket)];
        while burst.len() < BURST && bytes < BURST_BYTES {
            match queue.try_recv() {
                Some((next, ticket)) => {
                    bytes += ticket.cost();
                    burst.push((next, ticket));
                }
                None => break,
            }
        }
        let (incoming, tickets): (Vec<Incoming>, Vec<_>) = burst
            .into_iter()
            .map(|(queued, ticket)| (incoming_of(queued), ticket))
            .unzip();
        let outcomes = handler::handle_burst(&self.ops, &self.topics, self.max_payload, &incoming);
        for (incoming, outcome) in incoming.iter().zip(outcomes) {
            self.deliver(incoming, outcome, replies);
        }
        drop(tickets);
    }

    /// Records the outcome's dead letter, if any, and publishes its reply.
    fn deliver(&self, incoming: &Incoming, outcome: handler::Outcome, replies: &ReplySender) {
        if let Some((reason, detail)) = &outcome.dead_letter {
            self.letters.record(*reason, detail, &incoming.original());
        }
        if let Some(reply) = outcome.reply {
            tracing::debug!(topic = %crate::logging::shorten(&incoming.topic, 120), reply_to = %crate::logging::shorten(&reply.topic, 120), error = ?reply.error, "answered");
            let msg = reply.meta.message(&reply.topic, reply.payload, false);
            replies.send(msg);
        }
    }

    /// After the link is closed: requests still waiting in a lane become
    /// dead letters (the broker has them acknowledged, so they would be
    /// lost otherwise); refusals not yet published are counted.
    fn keep_late_arrivals(&self, admission: &Admission) {
        for lane in [Lane::Fast, Lane::Edit] {
            while let Some((queued, _ticket)) = admission.queue(lane).try_recv() {
                let incoming = incoming_of(queued);
                self.letters.record(
                    Reason::Shutdown,
                    "server stopped before answering",
                    &incoming.original(),
                );
            }
        }
        let mut unsent = 0;
        while admission.refusals.try_recv().is_some() {
            unsent += 1;
        }
        if unsent > 0 {
            tracing::warn!(
                unsent,
                "refusals not sent before shutdown; those clients re-send"
            );
        }
        tracing::info!("stopped");
    }
}

/// The request as the handler takes it; paho's message is freed here, so
/// a request is held once, not twice, while it is answered.
fn incoming_of(queued: Queued) -> Incoming {
    let Queued { msg, arrived } = queued;
    let incoming = Incoming {
        topic: msg.topic().to_string(),
        meta: MessageMeta::of(&msg),
        payload: msg.payload().to_vec(),
        arrived,
    };
    drop::<paho::Message>(msg);
    incoming
}
