//! Giving memory back to the operating system after a backlog.
//!
//! glibc keeps freed memory in its arenas for reuse: after a flood of
//! large requests has been answered, the process would keep the backlog's
//! peak size for good (seen: 227 MiB, never coming back). So the server
//! counts the bytes waiting in all its queues, and when they are all empty
//! again after having held at least [`TRIM_AFTER`], an idle lane asks glibc
//! (`malloc_trim`) to return the free pages of every arena.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Queued bytes, at the peak since the last trim, that make a trim worth
/// its cost (it walks every arena).
pub const TRIM_AFTER: usize = 4 * 1024 * 1024;

/// The bytes waiting in all of the server's queues.
#[derive(Debug, Default)]
pub struct Memory {
    queued: AtomicUsize,
    peak: AtomicUsize,
}

impl Memory {
    /// `bytes` more are waiting.
    pub fn add(&self, bytes: usize) {
        let now = self.queued.fetch_add(bytes, Ordering::AcqRel) + bytes;
        self.peak.fetch_max(now, Ordering::AcqRel);
    }

    /// `bytes` are no longer waiting.
    pub fn sub(&self, bytes: usize) {
        self.queued.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// The bytes waiting now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Returns free memory to the OS when every queue is empty after having
    /// held at least [`TRIM_AFTER`] since the last time. Called by idle
    /// lanes; true when it trimmed.
    pub fn trim_if_drained(&self) -> bool {
        if self.queued() != 0 || self.peak.load(Ordering::Acquire) < TRIM_AFTER {
            return false;
        }
        let peak = self.peak.swap(0, Ordering::AcqRel);
        if peak < TRIM_AFTER {
            return false; // another lane got here first
        }
        release_free_memory();
        tracing::debug!(peak, "queues drained; free memory returned to the OS");
        true
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_memory() {
    // SAFETY: malloc_trim only walks glibc's own arenas under their locks;
    // it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_after_a_large_backlog_has_drained() {
        let m = Memory::default();
        m.add(TRIM_AFTER);
        assert!(!m.trim_if_drained(), "not while something waits");
        m.sub(TRIM_AFTER);
        assert!(m.trim_if_drained());
        assert!(!m.trim_if_drained(), "only once per backlog");
        m.add(10);
        m.sub(10);
        assert!(!m.trim_if_drained(), "not after a small one");
    }
}
