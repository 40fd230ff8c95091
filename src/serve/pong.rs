//! Direct answers to pings (`mqttapp ping`): a ping carrying a Response
//! Topic and Correlation Data gets a [`Pong`] from this server on that
//! topic, with the correlation data and the `mqttapp-server-id` user
//! property.
//!
//! Answers are made on the transport's receiving thread, published at
//! QoS 0 without waiting, and limited by a token bucket
//! ([`RATE_PER_SEC`] a second, bursts of [`BURST`]): a flood of pings
//! costs each server at most that many small publishes a second, so the
//! ping cannot make a server an amplifier, and it never takes a place in
//! the request lanes, so it cannot starve requests. Pings past the limit
//! are dropped silently (counted in the debug log). A response topic a
//! reply could not go to (`Topics::reply_allowed`, reserved topics) gets
//! nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::handler::reply_target;
use crate::broker::ping::Pong;
use crate::mqtt::{Client, Message, MessageMeta};
use crate::protocol::{user_props, Encoding, Topics};

/// Ping answers a server sends per second at most, on average.
pub const RATE_PER_SEC: u32 = 200;
/// Ping answers a server may send at once after a quiet spell.
pub const BURST: u32 = 200;

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
    rate: f64,
    burst: f64,
}

impl Bucket {
    /// A full bucket at `now`.
    pub fn new(rate: u32, burst: u32, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(burst),
            last: now,
            rate: f64::from(rate),
            burst: f64::from(burst),
        }
    }

    /// Takes one token at `now`, if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = self.last.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Answers pings for one server.
pub struct Responder {
    /// The client to answer through, while the link is up: held here, not
    /// in the transport's handler, so the client and its handler do not
    /// keep each other alive ([`Detach`] empties it).
    client: Mutex<Option<Client>>,
    topics: Topics,
    pong: Pong,
    bucket: Mutex<Bucket>,
    refused: AtomicU64,
}

impl Responder {
    /// The responder of server `server_id` (run `instance`), replying only
    /// where `topics` allows replies.
    pub fn new(topics: Topics, server_id: &str, instance: &str) -> Responder {
        Responder {
            client: Mutex::new(None),
            topics,
            pong: Pong {
                server_id: server_id.to_string(),
                instance: instance.to_string(),
                version: crate::version::VERSION.to_string(),
            },
            bucket: Mutex::new(Bucket::new(RATE_PER_SEC, BURST, Instant::now())),
            refused: AtomicU64::new(0),
        }
    }

    /// Answers through `client` until the returned guard is dropped.
    pub fn attach(self: &Arc<Self>, client: Client) -> Detach {
        *self.client.lock().unwrap_or_else(|e| e.into_inner()) = Some(client);
        Detach(self.clone())
    }

    /// True when `ping` asks for a direct answer (Response Topic and
    /// Correlation Data): it is answered here, or dropped when over the
    /// rate or aimed at a topic replies may not go to. False for the
    /// plain ping, which asks for the status again.
    pub fn answer(&self, ping: &Message) -> bool {
        let (Some(topic), Some(correlation)) = (&ping.meta.response_topic, &ping.meta.correlation)
        else {
            return false;
        };
        let target = match reply_target(&self.topics, Some(topic)) {
            Ok(target) => target,
            Err((_, detail)) => {
                tracing::debug!(%detail, "ping not answered");
                return true;
            }
        };
        // A poisoned lock only means another thread panicked mid-take;
        // the bucket's numbers are still usable.
        let allowed = self
            .bucket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(Instant::now());
        if !allowed {
            let n = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::debug!(refused = n, "pings over the rate limit left unanswered");
            }
            return true;
        }
        let json = Encoding::detect(ping.meta.content_type.as_deref(), b"") == Encoding::Json;
        let encoding = if json { Encoding::Json } else { Encoding::Cbor };
        let meta = MessageMeta {
            correlation: Some(correlation.clone()),
            content_type: Some(encoding.content_type().to_string()),
            user: vec![(
                user_props::SERVER_ID.to_string(),
                self.pong.server_id.clone(),
            )],
            ..MessageMeta::default()
        };
        let mut msg = Message::new(target, self.pong.encode(encoding), meta, false);
        msg.qos = 0;
        let client = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(Err(e)) = client.as_ref().map(|c| c.try_publish(msg)) {
            tracing::debug!(error = %e, "could not answer a ping");
        }
        true
    }
}

/// Empties the responder's client when dropped (with the link, or when
/// opening the link failed).
pub struct Detach(Arc<Responder>);

impl Drop for Detach {
    fn drop(&mut self) {
        self.0
            .client
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Bucket;

    #[test]
    fn the_bucket_allows_a_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(10, 5, t0);
        let burst = (0..100).filter(|_| bucket.take(t0)).count();
        assert_eq!(burst, 5);
        // One second later: ten more, not more than the burst at once.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..100).filter(|_| bucket.take(t1)).count(), 5);
        let t2 = t1 + Duration::from_millis(300);
        assert_eq!((0..100).filter(|_| bucket.take(t2)).count(), 3);
        // A clock that goes back takes nothing and breaks nothing.
        assert!(!bucket.take(t0));
    }
}
