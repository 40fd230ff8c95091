//! The server: connect with a persistent session, subscribe to the request
//! topics, answer every request exactly once, dead-letter what cannot be
//! answered, reconnect when the broker goes away, and stop gracefully.
//!
//! `run` takes a [`Control`] whose [`Shutdown`] handle `main.rs`'s signal
//! thread (or a test) uses to stop it.
//!
//! Threads: paho's receiving thread hands each request to admission
//! (`lanes.rs`), which queues it in its lane within a byte budget or
//! refuses it `busy` at once; the fast lane answers calc and echo, the
//! edit lane answers edits in bursts with a group commit, so fsyncs never
//! hold up a calc; a third thread publishes the refusals. The calling
//! thread runs the control loop: one channel of `Event`s (`events.rs`)
//! (connection lost, taken over, foreign status, reconnect progress,
//! shutdown, lanes done), waited on with the deadline the state machine
//! (`supervisor.rs`) gives, whose actions it performs.

mod breakdown;
mod events;
mod handler;
mod identity;
mod lanes;
mod letters;
mod link;
mod memory;
mod metrics;
mod notify;
pub mod owner;
pub mod pong;
mod queue;
mod refusals;
mod replies;
mod scrape;
mod stats;
mod supervisor;
#[cfg(test)]
mod tests;
mod user;

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Sender};

use crate::config::Config;
use crate::deadletter::{DeadLetters, Reason};
use crate::mqtt::{Client, Message, MqttError};
use crate::operations::{edit::EditError, Operations};
use crate::protocol::{request_traceparent, Topics};
use breakdown::Timing;
use handler::{handle, Incoming};
use lanes::{Admission, Lane, Queued};
use letters::DeadLetterSink;
use link::Link;
use memory::Memory;
use notify::Notifier;
use queue::{ByteQueue, Next, Ticket};
use replies::ReplySender;
use stats::Stats;
use supervisor::{Action, Input, Supervisor};

pub use events::{Control, Shutdown};

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
/// it checks its replies' acknowledgements and gives memory back.
const IDLE_WAIT: Duration = Duration::from_millis(40);
/// Stack of the lane threads: calc recursion is bounded for the size of a
/// main thread's stack (`limits::MAX_CALC_DEPTH`).
const LANE_STACK: usize = 8 * 1024 * 1024;
/// Stack of a user-defined operation's worker (no calc recursion there:
/// a thread's usual size).
const USER_STACK: usize = 2 * 1024 * 1024;

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
    /// The metrics endpoint cannot listen on its address.
    #[error("cannot serve metrics on {addr}: {source} - pick another --metrics address (MQTTAPP_METRICS)")]
    Metrics {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why it cannot be used.
        source: std::io::Error,
    },
}

/// Runs the server until a shutdown is requested through `control`.
///
/// # Errors
/// [`ServeError`] when the first connection or subscription fails, the
/// data directory cannot be opened, or a lane's thread cannot start.
/// Later connection losses are retried, also when another client uses
/// this server's client id (`link.rs`): nothing a client sends stops a
/// server.
pub fn run(config: &Config, control: &Control) -> Result<(), ServeError> {
    let client = Client::create(&config.connection.broker, &Link::client_id_of(config), true)?;
    run_on(config, control, client)
}

/// [`run`] over a given client (paho's, or the in-memory twin's in unit
/// tests).
fn run_on(config: &Config, control: &Control, client: Client) -> Result<(), ServeError> {
    control.discard_stale();
    let default_file = config
        .file
        .as_deref()
        .unwrap_or(crate::config::DEFAULT_FILE);
    let ops = Operations::open(&config.data_dir, default_file, config.limits)?;
    let topics = Topics::new(&config.prefix).allowing_replies(&config.reply_topics);
    let memory = Arc::new(Memory::default());
    let served: Vec<&str> = owner::served_ops(config.no_edit)
        .into_iter()
        .map(|op| op.as_str())
        .chain(config.user_ops.iter().map(|op| op.name.as_str()))
        .collect();
    let stats = Arc::new(Stats::new(topics.clone(), &served, ops.replayed()));
    let snapshot = {
        let (stats, id) = (stats.clone(), config.server_id.clone());
        move || stats.snapshot(&id)
    };
    let _metrics = match config.metrics {
        Some(addr) => Some(
            metrics::Metrics::start(addr, snapshot.clone())
                .map_err(|source| ServeError::Metrics { addr, source })?,
        ),
        None => None,
    };
    let admission = Arc::new(
        Admission::new(
            topics.clone(),
            config.limits.max_queue_bytes,
            config.limits.max_payload,
            memory.clone(),
        )
        .counting(stats.clone())
        .with_user_ops(&config.user_ops, config.limits.max_queue_bytes)
        .answering_as(&config.server_id),
    );
    let link = Link::open(config, client, admission.clone(), control.sender())?;
    tracing::info!(broker = %link.broker(), filter = %link.filter, data_dir = %config.data_dir.display(), server_id = %config.server_id, session_resumed = link.resumed, max_queue_bytes = config.limits.max_queue_bytes, "serving");
    for op in &config.user_ops {
        match crate::operations::user::find_program(&op.program) {
            Some(path) => {
                tracing::info!(op = %op.name, program = %path.display(), timeout = ?op.timeout, max_output = op.max_output, max_concurrent = op.max_concurrent, idempotent = op.idempotent, "user-defined operation")
            }
            None => {
                tracing::warn!(op = %op.name, program = %op.program, "user-defined operation: program not found (its requests get error internal until it exists)")
            }
        }
    }
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
        stats,
        max_payload: config.limits.max_payload,
        user: config
            .user_ops
            .iter()
            .cloned()
            .map(|op| user::UserLane::new(op, &crate::datadir::DataDir::new(&config.data_dir)))
            .collect(),
        server_id: config.server_id.clone(),
    };
    let sender = || ReplySender::start(link.client.clone(), server.letters.clone());
    let (stop_refusals, refusal_orders) = unbounded::<()>();
    thread::scope(|scope| {
        let refusing = {
            let replies = sender();
            let (admission, server, done) = (&admission, &server, control.sender());
            let orders = refusal_orders;
            scope.spawn(move || {
                refusals::serve(
                    admission,
                    &server.letters,
                    replies,
                    &server.memory,
                    &orders,
                    IDLE_WAIT,
                    FINISH_LIMIT,
                );
                let _ = done.send(events::Event::RefusalsDone);
            })
        };
        let mut lanes = Vec::new();
        let mut orders = Vec::new();
        let mut unstarted = None;
        // The built-ins' two lanes, then each user-defined operation's
        // workers: one thread per allowed concurrent run.
        let mut threads = vec![
            (Lane::Fast, "fast-lane".to_string()),
            (Lane::Edit, "edit-lane".to_string()),
        ];
        for (i, op) in config.user_ops.iter().enumerate() {
            for n in 0..op.max_concurrent {
                threads.push((Lane::User(i), format!("op-{}-{n}", op.name)));
            }
        }
        for (lane, name) in threads {
            let replies = sender();
            let (order, mode) = unbounded();
            let (queue, server, done) = (admission.queue(lane), &server, control.sender());
            let spawned = thread::Builder::new()
                .name(name)
                .stack_size(match lane {
                    Lane::User(_) => USER_STACK,
                    _ => LANE_STACK,
                })
                .spawn_scoped(scope, move || {
                    server.serve_lane(lane, queue, replies, &mode);
                    let _ = done.send(events::Event::LaneDone);
                });
            match spawned {
                Ok(handle) => {
                    lanes.push(handle);
                    orders.push(order);
                }
                Err(e) => unstarted = Some(e),
            }
        }
        let outcome = match unstarted {
            Some(e) => {
                for order in &orders {
                    let _ = order.send(Mode::Halt);
                }
                let _ = stop_refusals.send(());
                Err(ServeError::Thread(e))
            }
            None => {
                let mut notifier = Notifier::from_env(notify::serving_status(
                    &owner::served_ops(config.no_edit),
                    link.broker(),
                    &config.server_id,
                ));
                let expiry = stats::expiry_secs(config.stats_interval);
                let publish = || {
                    let mut stats = snapshot();
                    stats.instance = Some(link.instance().to_string());
                    link.publish_stats(stats.encode(), expiry);
                };
                let stats_timer = (&publish as &dyn Fn(), config.stats_interval);
                supervise(
                    &link,
                    control,
                    &admission.tally,
                    &orders,
                    &stop_refusals,
                    &mut notifier,
                    stats_timer,
                );
                Ok(())
            }
        };
        for lane in lanes {
            let _ = lane.join();
        }
        let _ = refusing.join();
        link.clear_stats();
        link.close();
        server.keep_late_arrivals(&admission);
        outcome
    })
}

/// The control loop: waits on the event channel until the state
/// machine's next deadline, feeds what came (or the deadline) to the
/// machine and performs its actions, until it says stop. The reconnect
/// attempt is a future polled here whenever one of its tokens completes.
/// The service manager hears from here that the server is ready, alive
/// (the watchdog: only a loop that turns pings it) and stopping.
/// `publish_stats` publishes the statistics without waiting.
fn supervise(
    link: &Link,
    control: &Control,
    tally: &lanes::Tally,
    lanes: &[Sender<Mode>],
    stop_refusals: &Sender<()>,
    notifier: &mut Notifier,
    (publish_stats, stats_every): (&dyn Fn(), Duration),
) {
    use events::Event;
    let started = Instant::now();
    let mut machine = Supervisor::new(
        started,
        lanes.len(),
        supervisor::jittered,
        supervisor::REPORT_EVERY,
    );
    // Statistics every `stats_every` (zero: on pings only).
    if !stats_every.is_zero() {
        machine = machine.with_stats_every(stats_every, started);
    }
    let waker = control.waker();
    let mut attempt: Option<link::Attempt<'_>> = None;
    let poll = |attempt: &mut Option<link::Attempt<'_>>| {
        let result = match attempt
            .as_mut()?
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
        {
            Poll::Ready(result) => result,
            Poll::Pending => return None,
        };
        *attempt = None;
        Some(Input::Attempted(result.map_err(|e| e.to_string())))
    };
    let mut reported = [0; 4];
    let mut inputs = VecDeque::new();
    if link.online {
        notifier.ready();
    }
    while !machine.stopped() {
        notifier.tick(Instant::now());
        let deadline = machine.deadline();
        let input = match inputs.pop_front() {
            Some(input) => input,
            None => match control.next(notifier.deadline().map_or(deadline, |d| d.min(deadline))) {
                // Woken for the watchdog only.
                None if Instant::now() < deadline => continue,
                None => Input::Tick,
                Some(Event::Lost) => Input::Lost,
                Some(Event::TakenOver) => Input::TakenOver,
                Some(Event::ForeignStatus) => Input::ForeignStatus,
                Some(Event::Ping) => Input::Ping,
                Some(Event::Shutdown) => Input::Shutdown,
                Some(Event::LaneDone) => Input::LaneDone,
                Some(Event::RefusalsDone) => Input::RefusalsDone,
                Some(Event::Progress) => match poll(&mut attempt) {
                    Some(input) => input,
                    None => continue,
                },
            },
        };
        for action in machine.on(input, Instant::now()) {
            match action {
                Action::WarnConflict {
                    losses,
                    lived,
                    said_so,
                } => {
                    tracing::error!(client_id = %link.client_id(), losses_in_a_row = losses, lived = ?lived, broker_said_taken_over = said_so, "client id in use by another client: the broker keeps closing this server's connection soon after it connects, so requests meant for this server may reach that client; give every server its own --server-id, and bind client ids to users on the broker (docs/SECURITY.md). Reconnecting every few seconds meanwhile");
                }
                Action::WarnLost => {
                    tracing::warn!(broker = %link.broker(), "connection to the broker lost; reconnecting");
                    notifier.status(&format!(
                        "connection to {} lost; reconnecting",
                        link.broker()
                    ));
                }
                Action::Attempt => {
                    attempt = Some(link.attempt());
                    inputs.extend(poll(&mut attempt));
                }
                Action::AbandonAttempt => attempt = None,
                Action::WarnRetry { error, retry_in } => {
                    tracing::warn!(%error, ?retry_in, "reconnect failed");
                }
                Action::Reconnected { resumed } => {
                    tracing::info!(resumed, "reconnected");
                    notifier.ready();
                }
                Action::Reassert => link.reassert(),
                Action::PublishStats => publish_stats(),
                Action::Report => tally.report(&mut reported),
                Action::Drain => {
                    tracing::info!("shutting down: answering what already arrived");
                    notifier.stopping();
                    link.leave_group();
                    for lane in lanes {
                        let _ = lane.send(Mode::Drain);
                    }
                }
                Action::StopRefusals => {
                    let _ = stop_refusals.send(());
                }
                Action::Stop => {}
            }
        }
    }
    notifier.stopping();
    tally.report(&mut reported);
}

/// What a lane is told by the control loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Graceful shutdown: answer what already arrived, until quiet.
    Drain,
    /// Stop now (a lane's thread could not start): leftovers become dead
    /// letters.
    Halt,
}

/// The state the lanes need to answer requests (shared by both).
struct Server {
    ops: Operations,
    topics: Topics,
    letters: Arc<DeadLetterSink>,
    memory: Arc<Memory>,
    stats: Arc<Stats>,
    max_payload: usize,
    /// User-defined operations, in configuration order (`Lane::User(i)`).
    user: Vec<user::UserLane>,
    /// Named on every reply (`mqttapp-server-id`), as in the status topic,
    /// and in the user programs' environment.
    server_id: String,
}

impl Server {
    /// One lane's loop: answers its requests until told to stop, drains
    /// them on a graceful shutdown, then waits for its replies' PUBACKs.
    fn serve_lane(
        &self,
        lane: Lane,
        queue: &ByteQueue<Queued>,
        replies: ReplySender,
        orders: &crossbeam_channel::Receiver<Mode>,
    ) {
        let mut drain_until: Option<Instant> = None;
        loop {
            let wait = match drain_until {
                None => IDLE_WAIT,
                Some(until) if Instant::now() >= until => break,
                Some(_) => DRAIN_QUIET,
            };
            match queue.recv_or(orders, wait) {
                Next::Item(first, ticket) => match lane {
                    Lane::Edit => self.answer_burst(first, ticket, queue, &replies),
                    Lane::Fast => self.answer_one(first, ticket, &replies),
                    Lane::User(i) => self.answer_user(i, first, ticket, &replies),
                },
                Next::Order(Mode::Drain) => {
                    drain_until.get_or_insert(Instant::now() + DRAIN_LIMIT);
                }
                Next::Order(Mode::Halt) | Next::Closed => break,
                // Drained: nothing came for DRAIN_QUIET.
                Next::Idle if drain_until.is_some() => break,
                // Idle: check the replies' acknowledgements that came in,
                // and give a drained backlog's memory back.
                Next::Idle => {
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
        let span = breakdown::request_span(&incoming.meta.user);
        let _entered = span.enter();
        let started = Instant::now();
        let outcome = handle(&self.ops, &self.topics, self.max_payload, &incoming);
        self.deliver(&incoming, outcome, Timing::since(started), replies);
        drop(ticket);
    }

    /// Answers one request of the user-defined operation `i` (and the
    /// copies of it that waited for its run).
    fn answer_user(
        &self,
        i: usize,
        first: Queued,
        ticket: Ticket<'_, Queued>,
        replies: &ReplySender,
    ) {
        let incoming = incoming_of(first);
        let span = breakdown::request_span(&incoming.meta.user);
        let _entered = span.enter();
        if let Some(lane) = self.user.get(i) {
            let started = Instant::now();
            let outcomes = lane.answer(&self.topics, self.max_payload, &self.server_id, &incoming);
            // The copies that waited for this run share its time.
            let timing = Timing::since(started);
            for outcome in outcomes {
                self.deliver(&incoming, outcome, timing, replies);
            }
        }
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
        let started = Instant::now();
        let outcomes = handler::handle_burst(&self.ops, &self.topics, self.max_payload, &incoming);
        // Every reply of the burst waited for the whole burst (its commit).
        let timing = Timing::since(started);
        for (incoming, outcome) in incoming.iter().zip(outcomes) {
            let span = breakdown::request_span(&incoming.meta.user);
            let _entered = span.enter();
            self.deliver(incoming, outcome, timing, replies);
        }
        drop(tickets);
    }

    /// Records the outcome's dead letter, if any, and publishes its reply
    /// with the server's id and time breakdown (`breakdown.rs`).
    fn deliver(
        &self,
        incoming: &Incoming,
        outcome: handler::Outcome,
        timing: Timing,
        replies: &ReplySender,
    ) {
        if let Some((reason, detail)) = &outcome.dead_letter {
            self.letters.record(*reason, detail, &incoming.original());
            if outcome.reply.is_none() {
                self.stats.dead_letter(&incoming.topic, *reason);
            }
        }
        if let Some(mut reply) = outcome.reply {
            let traceparent = request_traceparent(&incoming.meta.user);
            breakdown::stamp(
                &mut reply.meta,
                &self.server_id,
                incoming.arrived,
                timing,
                traceparent,
            );
            tracing::debug!(topic = %crate::logging::shorten(&incoming.topic, 120), reply_to = %crate::logging::shorten(&reply.topic, 120), error = ?reply.error, "answered");
            // Counted before it is sent: whoever got the reply finds it
            // in the statistics.
            let code = reply.error.as_deref();
            self.stats
                .replied(&incoming.topic, code, Some(incoming.arrived));
            replies.send(Message::new(&reply.topic, reply.payload, reply.meta, false));
        }
    }

    /// After the link is closed: requests still waiting in a lane become
    /// dead letters (the broker has them acknowledged, so they would be
    /// lost otherwise); refusals not yet published are counted.
    fn keep_late_arrivals(&self, admission: &Admission) {
        for lane in admission.lanes() {
            while let Some((queued, _ticket)) = admission.queue(lane).try_recv() {
                let incoming = incoming_of(queued);
                self.stats.dead_letter(&incoming.topic, Reason::Shutdown);
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

/// The request as the handler takes it (moved, not copied: a request is
/// held once while it is answered).
fn incoming_of(queued: Queued) -> Incoming {
    let Queued { msg, arrived } = queued;
    Incoming {
        topic: msg.topic,
        meta: msg.meta,
        payload: msg.payload,
        arrived,
    }
}
