//! Random identifiers from the OS CSPRNG (`getrandom`): client ids, server
//! instance ids, jitter, the edit journal's commit tags, and the
//! correlation data of requests. Nothing else in the crate makes random
//! values.
//!
//! Correlation data is also a request's replay key on the server (Response
//! Topic + Correlation Data, docs/PROTOCOL.md "Re-sending"): a client that
//! can read someone's request must not be able to guess their next key and
//! claim it first. So every request gets [`CORRELATION_LEN`] fresh random
//! bytes — no counter, nothing derived from an earlier request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use sha2::{Digest, Sha256};

/// Bytes of correlation data per request: 128 random bits.
pub const CORRELATION_LEN: usize = 16;
const _: () = assert!(CORRELATION_LEN * 8 >= 128);

/// Correlations drawn from one `getrandom` call. A call costs ~0.7 µs, a
/// correlation from the pool ~0.1 µs (measured, 2026-11-28), which matters
/// for `bench` and `ask --batch` at tens of thousands of requests a second.
const POOL_CORRELATIONS: usize = 256;

/// 64 random bits, e.g. to keep the client ids of concurrent clients apart.
pub fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    fill(&mut bytes);
    u64::from_be_bytes(bytes)
}

/// Fills `buf` from the OS CSPRNG.
///
/// Should the OS refuse (it does not on any supported platform once booted),
/// the bytes are SHA-256 of the clock, the process id and a counter:
/// distinct, but guessable by someone who knows when the program ran, so
/// an error is logged once. A client that cannot make ids must not panic
/// (and std's own `RandomState` would, drawing from the same OS source).
pub fn fill(buf: &mut [u8]) {
    if let Err(e) = getrandom::fill(buf) {
        static WARN: Once = Once::new();
        WARN.call_once(|| {
            tracing::error!(error = %e, "the OS random source failed; ids and correlation data are now guessable")
        });
        fill_without_os(buf);
    }
}

/// The fallback of [`fill`]: distinct values without the OS random source.
fn fill_without_os(buf: &mut [u8]) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    for chunk in buf.chunks_mut(32) {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let digest = Sha256::new()
            .chain_update(nanos.to_le_bytes())
            .chain_update(std::process::id().to_le_bytes())
            .chain_update(n.to_le_bytes())
            .finalize();
        chunk.copy_from_slice(&digest[..chunk.len()]);
    }
}

/// A source of fresh correlation data, each [`CORRELATION_LEN`] bytes
/// drawn from the OS CSPRNG, fetched [`POOL_CORRELATIONS`] at a time.
/// One per connection; a re-send reuses the value of the request it
/// repeats, never draws a new one.
pub struct Correlations {
    pool: Box<[u8]>,
    used: usize,
}

impl Default for Correlations {
    fn default() -> Self {
        Correlations::new()
    }
}

impl Correlations {
    /// An empty pool; the first [`Correlations::fresh`] fills it.
    pub fn new() -> Correlations {
        let len = CORRELATION_LEN * POOL_CORRELATIONS;
        Correlations {
            pool: vec![0; len].into_boxed_slice(),
            used: len,
        }
    }

    /// Fresh correlation data for a new request.
    pub fn fresh(&mut self) -> Vec<u8> {
        if self.used == self.pool.len() {
            fill(&mut self.pool);
            self.used = 0;
        }
        let slot = &mut self.pool[self.used..self.used + CORRELATION_LEN];
        let c = slot.to_vec();
        // Handed out once: do not keep a copy of a live replay key around.
        slot.fill(0);
        self.used += CORRELATION_LEN;
        c
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn correlations_are_16_bytes_and_distinct_across_pool_refills() {
        let mut source = Correlations::new();
        let n = POOL_CORRELATIONS * 4 + 3;
        let seen: HashSet<Vec<u8>> = (0..n).map(|_| source.fresh()).collect();
        assert_eq!(seen.len(), n);
        assert!(seen.iter().all(|c| c.len() == CORRELATION_LEN));
    }

    #[test]
    fn two_sources_do_not_share_values() {
        let a: HashSet<Vec<u8>> = {
            let mut s = Correlations::new();
            (0..100).map(|_| s.fresh()).collect()
        };
        let mut b = Correlations::new();
        assert!((0..100).all(|_| !a.contains(&b.fresh())));
    }

    #[test]
    fn consecutive_correlations_are_not_a_counter() {
        let mut s = Correlations::new();
        let (x, y) = (s.fresh(), s.fresh());
        // A counter would share a 15-byte prefix; random values share one
        // with probability 2^-120.
        assert_ne!(x[..15], y[..15]);
        // The bits are balanced roughly: 4096 random bits have far more
        // than 1500 ones (mean 2048, sd 32).
        let ones: u32 = (0..32).flat_map(|_| s.fresh()).map(u8::count_ones).sum();
        assert!((1500..2600).contains(&ones), "{ones} one bits of 4096");
    }

    #[test]
    fn the_fallback_without_the_os_source_gives_distinct_values() {
        let draw = || {
            let mut b = [0u8; 40];
            fill_without_os(&mut b);
            b
        };
        let v: HashSet<[u8; 40]> = (0..64).map(|_| draw()).collect();
        assert_eq!(v.len(), 64);
        assert!(v.iter().all(|b| b[32..] != [0; 8]));
    }

    #[test]
    fn random_u64_values_differ() {
        let v: HashSet<u64> = (0..64).map(|_| random_u64()).collect();
        assert_eq!(v.len(), 64);
    }
}
