//! Tells the service manager how the server is doing, over systemd's
//! notify protocol (`Type=notify` units, `config/mqttapp.service`):
//! `READY=1` once connected and subscribed, so units ordered after ours
//! start only when requests are answered; `WATCHDOG=1` from the control
//! loop every half `WATCHDOG_USEC`, so a hung loop gets the service
//! restarted (a separate thread would keep pinging while the loop is
//! stuck); `STOPPING=1` on shutdown; and a one-line `STATUS=` that
//! `systemctl status` shows (never a credential: it names the operations,
//! the broker URI, which cannot hold credentials, and the server id).
//!
//! `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` are read here and
//! not in `config`: they are the service manager's protocol with this
//! process, not settings a user gives. Without `NOTIFY_SOCKET` (a server
//! started by hand or by a test) nothing is sent and the loop never wakes
//! for a watchdog.

use std::cell::Cell;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// What the server has told (and still owes) the service manager.
#[derive(Debug, Default)]
pub struct Notifier {
    /// Whether `NOTIFY_SOCKET` was set: otherwise every call is a no-op.
    enabled: bool,
    /// Half the watchdog timeout, when the manager asked for a watchdog.
    every: Option<Duration>,
    /// When the next `WATCHDOG=1` is due.
    next_ping: Option<Instant>,
    ready: bool,
    stopping: bool,
    /// A failed send is logged once: the manager may be gone for good.
    failed: Cell<bool>,
    /// The `STATUS=` line while serving ([`serving_status`]).
    serving: String,
}

impl Notifier {
    /// From the environment the service manager gave this process;
    /// `serving` is the status line once ready ([`serving_status`]).
    pub fn from_env(serving: String) -> Notifier {
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some_and(|s| !s.is_empty());
        let every = enabled
            .then(sd_notify::watchdog_enabled)
            .flatten()
            .filter(|timeout| !timeout.is_zero())
            .map(|timeout| timeout / 2);
        Notifier {
            enabled,
            every,
            serving,
            ..Notifier::default()
        }
    }

    /// Connected and subscribed: `READY=1` the first time, and the
    /// serving status each time (after a reconnect too). Starts the
    /// watchdog's pings.
    pub fn ready(&mut self) {
        if self.stopping {
            return;
        }
        let status = NotifyState::Status(&self.serving);
        if std::mem::replace(&mut self.ready, true) {
            self.send(&[status]);
        } else {
            self.send(&[NotifyState::Ready, status]);
            self.next_ping = self.every.map(|every| Instant::now() + every);
        }
    }

    /// A new `STATUS=` line (a lost connection, a reconnect under way).
    pub fn status(&mut self, status: &str) {
        if !self.stopping {
            self.send(&[NotifyState::Status(status)]);
        }
    }

    /// Shutting down: `STOPPING=1`, once.
    pub fn stopping(&mut self) {
        if !std::mem::replace(&mut self.stopping, true) {
            self.send(&[
                NotifyState::Stopping,
                NotifyState::Status("shutting down: answering what already arrived"),
            ]);
        }
    }

    /// When the control loop must wake up at the latest to ping the
    /// watchdog; `None` without a watchdog (or before `READY=1`).
    pub fn deadline(&self) -> Option<Instant> {
        self.next_ping
    }

    /// Pings the watchdog when a ping is due at `now`. Called by the
    /// control loop on each turn, so the pings stop when the loop hangs.
    pub fn tick(&mut self, now: Instant) {
        let (Some(due), Some(every)) = (self.next_ping, self.every) else {
            return;
        };
        if now >= due {
            self.send(&[NotifyState::Watchdog]);
            self.next_ping = Some(now + every);
        }
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(states) {
            if !self.failed.replace(true) {
                tracing::warn!(error = %e, "cannot notify the service manager (NOTIFY_SOCKET)");
            }
        }
    }
}

/// The `STATUS=` line of a server that answers: what, where, as whom.
pub fn serving_status(ops: &[impl std::fmt::Display], broker: &str, server_id: &str) -> String {
    let ops: Vec<String> = ops.iter().map(ToString::to_string).collect();
    format!(
        "answering {} on {broker} as server {server_id}",
        ops.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_notify_socket_nothing_is_due() {
        let mut notifier = Notifier::default();
        notifier.ready();
        notifier.tick(Instant::now() + Duration::from_secs(60));
        assert_eq!(notifier.deadline(), None);
    }

    #[test]
    fn the_status_names_operations_broker_and_server() {
        assert_eq!(
            serving_status(&["calc", "echo"], "mqtt://h:1883", "s1"),
            "answering calc, echo on mqtt://h:1883 as server s1"
        );
    }
}
