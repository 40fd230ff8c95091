//! Checking and waiting for paho tokens without paho's timer.
//!
//! paho-mqtt's `wait_for` arms a `futures-timer` delay on every call, and
//! that wakes the crate's timer thread (a thread more per process, and a
//! wake-up per wait). On the request paths a check or wait comes per
//! message, so it cost more than the message. A token is a future: a check
//! is one poll, and a timed wait parks the calling thread until paho's
//! callback wakes it or the time is up.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use futures::task::ArcWake;
use paho_mqtt as paho;

/// Waits up to `timeout` for `token` (paho's `wait_for`, without the timer
/// thread): [`paho::Error::Timeout`] when the time is up.
///
/// # Errors
/// The operation's own error, or the timeout.
pub fn wait<T, F>(mut token: F, timeout: Duration) -> paho::Result<T>
where
    F: Future<Output = paho::Result<T>> + Unpin,
{
    let deadline = Instant::now() + timeout;
    let waker = futures::task::waker(Arc::new(Unparker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(result) = Pin::new(&mut token).poll(&mut cx) {
            return result;
        }
        match deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => thread::park_timeout(left),
            _ => return Err(paho::Error::Timeout),
        }
    }
}

/// Runs `fut` (a chain of token waits) on the calling thread for up to
/// `timeout`: `None` when the time is up first.
pub fn block_on<F: Future>(fut: F, timeout: Duration) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let deadline = Instant::now() + timeout;
    let waker = futures::task::waker(Arc::new(Unparker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = fut.as_mut().poll(&mut cx) {
            return Some(output);
        }
        match deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => thread::park_timeout(left),
            _ => return None,
        }
    }
}

/// Wakes a parked thread when a token completes.
struct Unparker(Thread);

impl ArcWake for Unparker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.unpark();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn a_completed_token_is_returned_at_once_and_a_pending_one_times_out() {
        let done = paho::DeliveryToken::from_error(paho::Message::default(), -3);
        assert!(matches!(done.clone().now_or_never(), Some(Err(_))));
        let pending = paho::DeliveryToken::new(paho::Message::default());
        assert!(pending.clone().now_or_never().is_none());
        let start = Instant::now();
        assert!(matches!(
            wait(pending, Duration::from_millis(20)),
            Err(paho::Error::Timeout)
        ));
        assert!(start.elapsed() >= Duration::from_millis(20));
    }
}
