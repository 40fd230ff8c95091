//! The one channel every control event of the server arrives on: the
//! broker connection's callbacks (lost, taken over, a foreign status on
//! our topic), the reconnect attempt's progress (its tokens' waker), the
//! lanes and the refusal thread finishing, and the shutdown signal.
//!
//! Requests do not come this way: paho's receiving thread hands each one
//! straight to its lane (`lanes.rs`), because a hop through the control
//! loop would cost a thread wake-up per request on the hot path, and a
//! lane may block on its replies' acknowledgements while the loop must
//! stay free to reconnect.

use std::cell::Cell;
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use futures::task::ArcWake;

/// Something the server's control loop must react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The connection to the broker was lost.
    Lost,
    /// The broker closed the connection with "session taken over".
    TakenOver,
    /// A message on our status topic that is not our own status.
    ForeignStatus,
    /// A client's ping on `<prefix>/v1/ping`.
    Ping,
    /// A token of the reconnect attempt completed: poll the attempt.
    Progress,
    /// SIGINT or SIGTERM (or a test) asked the server to stop.
    Shutdown,
    /// A lane finished its drain.
    LaneDone,
    /// The refusal thread finished.
    RefusalsDone,
}

/// The receiving end, owned by the thread that runs the server, and the
/// sending end that every source clones.
pub struct Control {
    tx: Sender<Event>,
    rx: Receiver<Event>,
    shutdown: Cell<bool>,
}

/// Asks a running (or starting) server to stop gracefully. Cheap to clone,
/// usable from any thread (a signal thread, a test).
#[derive(Clone)]
pub struct Shutdown(Sender<Event>);

impl Shutdown {
    /// Requests a graceful stop; repeated requests change nothing.
    pub fn request(&self) {
        let _ = self.0.send(Event::Shutdown);
    }
}

impl Default for Control {
    fn default() -> Self {
        Control::new()
    }
}

impl Control {
    /// A fresh channel.
    pub fn new() -> Control {
        let (tx, rx) = unbounded();
        Control {
            tx,
            rx,
            shutdown: Cell::new(false),
        }
    }

    /// A handle that requests the shutdown.
    pub fn shutdown_handle(&self) -> Shutdown {
        Shutdown(self.tx.clone())
    }

    /// A sender for the server's own sources.
    pub(super) fn sender(&self) -> Sender<Event> {
        self.tx.clone()
    }

    /// A waker that posts [`Event::Progress`].
    pub(super) fn waker(&self) -> Waker {
        futures::task::waker(Arc::new(ProgressWaker(self.tx.clone())))
    }

    /// True once a shutdown was requested (seen by this control).
    pub fn shutdown_requested(&self) -> bool {
        while let Ok(event) = self.rx.try_recv() {
            self.note(event);
        }
        self.shutdown.get()
    }

    /// Waits up to `wait` for a shutdown request, dropping other events
    /// (they belong to a server run that ended). True if one came.
    pub fn wait_for_shutdown(&self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        while !self.shutdown.get() {
            match self.rx.recv_deadline(until) {
                Ok(event) => self.note(event),
                Err(_) => break,
            }
        }
        self.shutdown.get()
    }

    /// Drops events left over by an earlier run, keeping a shutdown.
    pub(super) fn discard_stale(&self) {
        while let Ok(event) = self.rx.try_recv() {
            self.note(event);
        }
    }

    /// The next event, waiting until `deadline`; `None` when it passed. A
    /// shutdown requested earlier is delivered first.
    pub(super) fn next(&self, deadline: Instant) -> Option<Event> {
        if self.shutdown.replace(false) {
            return Some(Event::Shutdown);
        }
        self.rx.recv_deadline(deadline).ok()
    }

    fn note(&self, event: Event) {
        if event == Event::Shutdown {
            self.shutdown.set(true);
        }
    }
}

/// Posts [`Event::Progress`] when a token of the reconnect attempt completes.
struct ProgressWaker(Sender<Event>);

impl ArcWake for ProgressWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        let _ = arc_self.0.send(Event::Progress);
    }
}
