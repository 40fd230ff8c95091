//! The server's control state machine, without I/O: what the event loop in
//! `mod.rs` does next, given what happened and what time it is.
//!
//! Two things vary independently. The **lifecycle**: serving, draining
//! after a shutdown signal (the lanes answer what already arrived), then
//! finishing (the refusal thread sends what it holds), then stopped. The
//! **link**: up, waiting before a reconnect attempt (backoff with
//! jitter), or attempting. The link keeps reconnecting while the server
//! drains, so the replies of the drain still reach the broker; it stops
//! only when the lifecycle does.
//!
//! Every input is an [`Input`] with the current time; the answer is a list
//! of [`Action`]s for the loop to perform, and [`Supervisor::deadline`]
//! tells the loop how long it may wait for the next event. Nothing here
//! sleeps, polls or reads the clock, so every transition is unit-tested
//! directly (tests at the bottom).

use std::time::{Duration, Instant};

use super::identity::Takeovers;

/// First pause before reconnecting after a loss.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between two reconnect attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Longest time one reconnect attempt (connect, subscribe, status) takes
/// before it counts as failed.
pub const ATTEMPT_LIMIT: Duration = Duration::from_secs(30);
/// Shortest interval between two re-publications of the retained status
/// in answer to foreign status messages.
pub const REASSERT_EVERY: Duration = Duration::from_secs(1);
/// How often the overload counts are logged (when they changed).
pub const REPORT_EVERY: Duration = Duration::from_secs(5);

/// What happened, as the state machine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The connection to the broker was lost.
    Lost,
    /// The broker said "session taken over" (MQTT 5 reason 0x8E).
    TakenOver,
    /// Something that is not our own status was published on our status
    /// topic: publish ours again.
    ForeignStatus,
    /// A client pinged (`<prefix>/v1/ping`): publish our status and our
    /// statistics again (rate-limited together).
    Ping,
    /// SIGINT or SIGTERM: stop gracefully.
    Shutdown,
    /// A lane finished draining and its replies were acknowledged.
    LaneDone,
    /// The refusal thread finished.
    RefusalsDone,
    /// The reconnect attempt ended: `Ok(resumed)` or the error's text.
    Attempted(Result<bool, String>),
    /// The deadline passed without an event.
    Tick,
}

/// What the loop must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Log that the client id is in use by another client.
    WarnConflict {
        /// Short-lived connections in a row.
        losses: u32,
        /// How long the lost connection lived.
        lived: Duration,
        /// Whether the broker said "session taken over".
        said_so: bool,
    },
    /// Log the loss (first attempt of a series follows after a backoff).
    WarnLost,
    /// Start one reconnect attempt (connect, subscribe, "online").
    Attempt,
    /// The attempt took too long: drop it (it counts as failed).
    AbandonAttempt,
    /// Log a failed attempt and when the next comes.
    WarnRetry {
        /// The error's text.
        error: String,
        /// The pause before the next attempt (before jitter).
        retry_in: Duration,
    },
    /// Log the reconnection.
    Reconnected {
        /// Whether the broker still had this server's session.
        resumed: bool,
    },
    /// Publish our retained "online" status again.
    Reassert,
    /// Publish our statistics.
    PublishStats,
    /// Log the overload counts if they changed.
    Report,
    /// Leave a group's shared subscription and tell the lanes to drain.
    Drain,
    /// Tell the refusal thread to finish.
    StopRefusals,
    /// Leave the loop: publish "offline" and disconnect.
    Stop,
}

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Answering requests.
    Serving,
    /// Shutdown signalled: the lanes answer what already arrived; this many
    /// have not finished yet.
    Draining(usize),
    /// The lanes are done; the refusal thread finishes.
    Finishing,
    /// Done: the loop ends.
    Stopped,
}

/// The connection to the broker, as the machine knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Connected and online, since then.
    Up(Instant),
    /// Lost: the next attempt starts at `until`.
    Waiting {
        /// When the next attempt starts.
        until: Instant,
        /// The pause used for this wait (it doubles after each failure).
        backoff: Duration,
    },
    /// An attempt is under way; it fails at `deadline`.
    Attempting {
        /// When it counts as failed.
        deadline: Instant,
        /// The pause used before it.
        backoff: Duration,
    },
}

/// The control state: lifecycle, link, takeover count, pending reassert.
#[derive(Debug)]
pub struct Supervisor {
    lifecycle: Lifecycle,
    link: Link,
    lanes: usize,
    takeovers: Takeovers,
    said_taken_over: bool,
    reassert_pending: bool,
    reasserted_at: Option<Instant>,
    /// Statistics asked for by a ping, published with the next reassert.
    stats_pending: bool,
    /// The next periodic statistics, when they are on.
    stats_at: Option<Instant>,
    stats_every: Option<Duration>,
    report_at: Instant,
    report_every: Duration,
    jitter: fn(Duration) -> Duration,
}

impl Supervisor {
    /// A server that went online at `now` (or will retry at once: the
    /// caller feeds [`Input::Lost`] if the first subscribe failed), with
    /// `lanes` lanes to drain at shutdown. `jitter(pause)` is the random
    /// extra added to each backoff pause ([`jittered`]); the overload
    /// counts are reported every `report_every` ([`REPORT_EVERY`]).
    pub fn new(
        now: Instant,
        lanes: usize,
        jitter: fn(Duration) -> Duration,
        report_every: Duration,
    ) -> Supervisor {
        Supervisor {
            lifecycle: Lifecycle::Serving,
            link: Link::Up(now),
            lanes,
            takeovers: Takeovers::default(),
            said_taken_over: false,
            reassert_pending: false,
            reasserted_at: None,
            stats_pending: false,
            stats_at: None,
            stats_every: None,
            report_at: now + report_every,
            report_every,
            jitter,
        }
    }

    /// The same machine, publishing statistics every `every` from `now`
    /// on (and on pings in any case).
    pub fn with_stats_every(mut self, every: Duration, now: Instant) -> Supervisor {
        self.stats_every = Some(every);
        self.stats_at = Some(now + every);
        self
    }

    /// The lifecycle state.
    #[cfg(test)]
    pub fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }

    /// The link state.
    #[cfg(test)]
    pub fn link(&self) -> Link {
        self.link
    }

    /// True once the loop must end.
    pub fn stopped(&self) -> bool {
        self.lifecycle == Lifecycle::Stopped
    }

    /// The latest moment the loop may wait until before feeding
    /// [`Input::Tick`].
    pub fn deadline(&self) -> Instant {
        let mut at = self.report_at;
        if let Some(stats_at) = self.stats_at {
            at = at.min(stats_at);
        }
        match self.link {
            Link::Up(_) => {
                if self.reassert_pending {
                    if let Some(last) = self.reasserted_at {
                        at = at.min(last + REASSERT_EVERY);
                    }
                }
            }
            Link::Waiting { until, .. } => at = at.min(until),
            Link::Attempting { deadline, .. } => at = at.min(deadline),
        }
        at
    }

    /// Takes one input at time `now`; returns what to do, in order.
    pub fn on(&mut self, input: Input, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.stopped() {
            return actions;
        }
        match input {
            Input::Lost => self.lost(now, &mut actions),
            Input::TakenOver => self.said_taken_over = true,
            Input::ForeignStatus => self.reassert_pending = true,
            Input::Ping => {
                self.reassert_pending = true;
                self.stats_pending = true;
            }
            Input::Shutdown => {
                if self.lifecycle == Lifecycle::Serving {
                    actions.push(Action::Drain);
                    self.lifecycle = Lifecycle::Draining(self.lanes);
                    self.lanes_done(0, &mut actions);
                }
            }
            Input::LaneDone => {
                if let Lifecycle::Draining(_) = self.lifecycle {
                    self.lanes_done(1, &mut actions);
                }
            }
            Input::RefusalsDone => {
                if self.lifecycle == Lifecycle::Finishing {
                    self.lifecycle = Lifecycle::Stopped;
                    actions.push(Action::Stop);
                }
            }
            Input::Attempted(result) => self.attempted(result, now, &mut actions),
            Input::Tick => {}
        }
        if !self.stopped() {
            self.due(now, &mut actions);
        }
        actions
    }

    /// What is due at `now`: a report, a reassert, an attempt to start or
    /// to give up.
    fn due(&mut self, now: Instant, actions: &mut Vec<Action>) {
        if now >= self.report_at {
            actions.push(Action::Report);
            self.report_at = now + self.report_every;
        }
        let periodic = match (self.stats_at, self.stats_every) {
            (Some(at), Some(every)) if now >= at => {
                self.stats_at = Some(now + every);
                true
            }
            _ => false,
        };
        match self.link {
            Link::Up(_) => {
                let may = self
                    .reasserted_at
                    .is_none_or(|at| now >= at + REASSERT_EVERY);
                let mut stats = periodic;
                if self.reassert_pending && may {
                    self.reassert_pending = false;
                    self.reasserted_at = Some(now);
                    actions.push(Action::Reassert);
                    stats |= std::mem::take(&mut self.stats_pending);
                }
                if stats {
                    actions.push(Action::PublishStats);
                }
            }
            Link::Waiting { until, backoff } if now >= until => {
                self.link = Link::Attempting {
                    deadline: now + ATTEMPT_LIMIT,
                    backoff,
                };
                actions.push(Action::Attempt);
            }
            Link::Attempting { deadline, .. } if now >= deadline => {
                actions.push(Action::AbandonAttempt);
                self.attempted(Err("timed out".into()), now, actions);
            }
            Link::Waiting { .. } | Link::Attempting { .. } => {}
        }
    }

    fn lost(&mut self, now: Instant, actions: &mut Vec<Action>) {
        // A loss reported while already reconnecting is stale.
        let Link::Up(since) = self.link else { return };
        let lived = now.saturating_duration_since(since);
        let said_so = std::mem::take(&mut self.said_taken_over);
        if self.takeovers.lost(lived, said_so) {
            actions.push(Action::WarnConflict {
                losses: self.takeovers.count(),
                lived,
                said_so,
            });
        }
        actions.push(Action::WarnLost);
        // In conflict, wait the longest backoff: two clients with one id
        // then knock each other off every few seconds, not many times a
        // second.
        let backoff = if self.takeovers.in_conflict() {
            MAX_BACKOFF
        } else {
            FIRST_BACKOFF
        };
        self.link = Link::Waiting {
            until: now + (self.jitter)(backoff),
            backoff,
        };
    }

    fn attempted(&mut self, result: Result<bool, String>, now: Instant, actions: &mut Vec<Action>) {
        let Link::Attempting { backoff, .. } = self.link else {
            return;
        };
        match result {
            Ok(resumed) => {
                actions.push(Action::Reconnected { resumed });
                self.link = Link::Up(now);
            }
            Err(error) => {
                actions.push(Action::WarnRetry {
                    error,
                    retry_in: backoff,
                });
                let backoff = (backoff * 2).min(MAX_BACKOFF);
                self.link = Link::Waiting {
                    until: now + (self.jitter)(backoff),
                    backoff,
                };
            }
        }
    }

    fn lanes_done(&mut self, done: usize, actions: &mut Vec<Action>) {
        let Lifecycle::Draining(left) = self.lifecycle else {
            return;
        };
        let left = left.saturating_sub(done);
        if left > 0 {
            self.lifecycle = Lifecycle::Draining(left);
            return;
        }
        self.lifecycle = Lifecycle::Finishing;
        actions.push(Action::StopRefusals);
    }
}

/// `pause` plus up to half of it again, at random, so that two clients
/// knocked off together do not come back in lockstep.
pub fn jittered(pause: Duration) -> Duration {
    let spread = pause.as_millis() as u64 / 2;
    pause + Duration::from_millis(crate::ids::random_u64() % (spread + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(pause: Duration) -> Duration {
        pause
    }

    fn machine() -> (Supervisor, Instant) {
        let t0 = Instant::now();
        // Reports are tested on their own: here they would be noise.
        let never = Duration::from_secs(1 << 30);
        (Supervisor::new(t0, 2, exact, never), t0)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_loss_waits_the_first_backoff_then_attempts() {
        let (mut s, t0) = machine();
        let t = t0 + Duration::from_secs(60);
        assert_eq!(s.on(Input::Lost, t), vec![Action::WarnLost]);
        assert_eq!(s.deadline(), t + FIRST_BACKOFF);
        assert_eq!(s.on(Input::Tick, t + ms(50)), vec![]);
        assert_eq!(s.on(Input::Tick, t + FIRST_BACKOFF), vec![Action::Attempt]);
        assert!(matches!(s.link(), Link::Attempting { .. }));
        assert_eq!(
            s.on(Input::Attempted(Ok(true)), t + ms(150)),
            vec![Action::Reconnected { resumed: true }]
        );
        assert_eq!(s.link(), Link::Up(t + ms(150)));
    }

    #[test]
    fn failed_attempts_double_the_backoff_up_to_the_maximum() {
        let (mut s, t0) = machine();
        let mut now = t0 + Duration::from_secs(60);
        s.on(Input::Lost, now);
        let mut pauses = Vec::new();
        for _ in 0..8 {
            now = s.deadline();
            assert_eq!(s.on(Input::Tick, now), vec![Action::Attempt]);
            let actions = s.on(Input::Attempted(Err("refused".into())), now);
            let Some(Action::WarnRetry { retry_in, .. }) = actions.first() else {
                panic!("{actions:?}")
            };
            pauses.push(retry_in.as_millis());
        }
        assert_eq!(pauses, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }

    #[test]
    fn an_attempt_that_hangs_is_abandoned_at_its_deadline_and_retried() {
        let (mut s, t0) = machine();
        s.on(Input::Lost, t0 + Duration::from_secs(60));
        let start = s.deadline();
        assert_eq!(s.on(Input::Tick, start), vec![Action::Attempt]);
        assert_eq!(s.deadline(), start + ATTEMPT_LIMIT);
        let actions = s.on(Input::Tick, start + ATTEMPT_LIMIT);
        assert_eq!(actions[0], Action::AbandonAttempt);
        assert!(matches!(actions[1], Action::WarnRetry { .. }));
        assert!(matches!(s.link(), Link::Waiting { backoff, .. } if backoff == ms(200)));
        // The abandoned attempt's late result is ignored.
        assert_eq!(
            s.on(Input::Attempted(Ok(true)), s.deadline() - ms(1)),
            vec![]
        );
    }

    #[test]
    fn losses_while_reconnecting_are_stale() {
        let (mut s, t0) = machine();
        let t = t0 + Duration::from_secs(60);
        s.on(Input::Lost, t);
        assert_eq!(s.on(Input::Lost, t + ms(1)), vec![]);
        s.on(Input::Tick, t + FIRST_BACKOFF);
        assert_eq!(s.on(Input::Lost, t + FIRST_BACKOFF), vec![]);
        assert!(matches!(s.link(), Link::Attempting { .. }));
    }

    #[test]
    fn three_short_lived_connections_are_a_conflict_and_wait_the_longest_backoff() {
        let (mut s, t0) = machine();
        let mut now = t0;
        for round in 1..=3 {
            now += Duration::from_secs(1);
            let actions = s.on(Input::Lost, now);
            if round < 3 {
                assert_eq!(actions, vec![Action::WarnLost]);
            } else {
                assert_eq!(actions.len(), 2, "{actions:?}");
                assert!(matches!(
                    actions[0],
                    Action::WarnConflict {
                        losses: 3,
                        said_so: false,
                        ..
                    }
                ));
                assert_eq!(s.deadline(), now + MAX_BACKOFF);
            }
            now = s.deadline();
            s.on(Input::Tick, now);
            s.on(Input::Attempted(Ok(true)), now);
        }
    }

    #[test]
    fn the_brokers_takeover_reason_is_a_conflict_at_once() {
        let (mut s, t0) = machine();
        let t = t0 + Duration::from_secs(600);
        assert_eq!(s.on(Input::TakenOver, t), vec![]);
        let actions = s.on(Input::Lost, t);
        assert!(matches!(
            actions[0],
            Action::WarnConflict { said_so: true, .. }
        ));
        assert_eq!(s.deadline(), t + MAX_BACKOFF);
    }

    #[test]
    fn foreign_statuses_are_answered_at_most_once_a_second() {
        let (mut s, t0) = machine();
        let t = t0 + ms(10);
        assert_eq!(s.on(Input::ForeignStatus, t), vec![Action::Reassert]);
        assert_eq!(s.on(Input::ForeignStatus, t + ms(10)), vec![]);
        assert_eq!(s.on(Input::ForeignStatus, t + ms(20)), vec![]);
        assert_eq!(s.deadline(), t + REASSERT_EVERY);
        assert_eq!(
            s.on(Input::Tick, t + REASSERT_EVERY),
            vec![Action::Reassert]
        );
        assert_eq!(s.on(Input::Tick, t + 3 * REASSERT_EVERY), vec![]);
    }

    #[test]
    fn pings_bring_status_and_statistics_at_most_once_a_second() {
        let (mut s, t0) = machine();
        let t = t0 + ms(10);
        let both = vec![Action::Reassert, Action::PublishStats];
        assert_eq!(s.on(Input::Ping, t), both);
        for i in 1..100 {
            assert_eq!(s.on(Input::Ping, t + ms(i)), vec![], "ping {i}");
        }
        assert_eq!(s.on(Input::Tick, t + REASSERT_EVERY), both);
        // A foreign status alone brings the status only.
        assert_eq!(
            s.on(Input::ForeignStatus, t + 2 * REASSERT_EVERY),
            vec![Action::Reassert]
        );
    }

    #[test]
    fn statistics_are_published_every_interval_while_the_link_is_up() {
        let (s, t0) = machine();
        let every = Duration::from_secs(10);
        let mut s = s.with_stats_every(every, t0);
        assert_eq!(s.deadline(), t0 + every);
        assert_eq!(s.on(Input::Tick, t0 + every), vec![Action::PublishStats]);
        assert_eq!(s.deadline(), t0 + 2 * every);
        s.on(Input::Lost, t0 + every + ms(1));
        let actions = s.on(Input::Tick, t0 + 2 * every);
        assert!(!actions.contains(&Action::PublishStats), "{actions:?}");
    }

    #[test]
    fn no_reassert_while_disconnected_it_waits_for_the_link() {
        let (mut s, t0) = machine();
        let t = t0 + Duration::from_secs(60);
        s.on(Input::Lost, t);
        assert_eq!(s.on(Input::ForeignStatus, t), vec![]);
        let at = s.deadline();
        s.on(Input::Tick, at);
        assert_eq!(
            s.on(Input::Attempted(Ok(false)), at),
            vec![Action::Reconnected { resumed: false }, Action::Reassert]
        );
    }

    #[test]
    fn shutdown_drains_both_lanes_then_the_refusals_then_stops() {
        let (mut s, t0) = machine();
        assert_eq!(s.on(Input::Shutdown, t0), vec![Action::Drain]);
        assert_eq!(s.lifecycle(), Lifecycle::Draining(2));
        assert_eq!(
            s.on(Input::Shutdown, t0),
            vec![],
            "a second signal changes nothing"
        );
        assert_eq!(s.on(Input::LaneDone, t0), vec![]);
        assert_eq!(s.on(Input::LaneDone, t0), vec![Action::StopRefusals]);
        assert_eq!(s.lifecycle(), Lifecycle::Finishing);
        assert_eq!(s.on(Input::RefusalsDone, t0), vec![Action::Stop]);
        assert!(s.stopped());
        assert_eq!(s.on(Input::Lost, t0), vec![]);
    }

    #[test]
    fn the_link_keeps_reconnecting_while_draining() {
        let (mut s, t0) = machine();
        let t = t0 + Duration::from_secs(60);
        s.on(Input::Shutdown, t);
        assert_eq!(s.on(Input::Lost, t), vec![Action::WarnLost]);
        assert_eq!(s.on(Input::Tick, t + FIRST_BACKOFF), vec![Action::Attempt]);
        s.on(Input::LaneDone, t + FIRST_BACKOFF);
        s.on(Input::LaneDone, t + FIRST_BACKOFF);
        assert_eq!(
            s.on(Input::RefusalsDone, t + FIRST_BACKOFF),
            vec![Action::Stop]
        );
    }

    #[test]
    fn our_status_is_defended_while_draining_too() {
        let (mut s, t0) = machine();
        s.on(Input::Shutdown, t0);
        assert_eq!(
            s.on(Input::ForeignStatus, t0 + ms(1)),
            vec![Action::Reassert]
        );
    }

    #[test]
    fn the_overload_report_is_due_every_period() {
        let t0 = Instant::now();
        let mut s = Supervisor::new(t0, 2, exact, REPORT_EVERY);
        assert_eq!(s.deadline(), t0 + REPORT_EVERY);
        assert_eq!(s.on(Input::Tick, t0 + REPORT_EVERY), vec![Action::Report]);
        assert_eq!(s.deadline(), t0 + 2 * REPORT_EVERY);
    }

    #[test]
    fn jitter_adds_at_most_half() {
        for _ in 0..100 {
            let j = jittered(ms(100));
            assert!(j >= ms(100) && j <= ms(150), "{j:?}");
        }
    }
}
