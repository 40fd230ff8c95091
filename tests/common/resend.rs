//! Clients that use `ask`'s own re-sending logic (the library's
//! `exchange`) while servers and brokers are killed under them. Every loop
//! is bounded in count and time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use mqttapp::ask::{exchange, retry_interval, status_grace, AskError, Requester};
use mqttapp::config::{Config, Settings};
use mqttapp::protocol::{Encoding, Reply, Request};

use super::Broker;

/// Client settings for the library's requester.
pub fn client_config(broker: &Broker, prefix: &str, timeout_secs: u32) -> Config {
    Config::from_settings(Settings {
        broker: Some(broker.url()),
        prefix: Some(prefix.to_string()),
        timeout: Some(Duration::from_secs(timeout_secs.into())),
        ..Settings::default()
    })
    .expect("valid client settings")
}

/// What the re-sending clients saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// (client, seq, reply) for every request that got its reply.
    pub replies: Vec<(usize, usize, Reply)>,
    /// Requests that never got a reply, with the last error.
    pub failures: Vec<String>,
    /// Times a client found no server online before sending (retried).
    pub no_server: usize,
    /// Times `exchange` gave up and was started again with the same
    /// correlation data.
    pub exchange_retries: usize,
    /// Requests answered only after at least one re-send (slower than the
    /// retry interval).
    pub resent: usize,
}

/// `clients` threads each send `per_client` requests one after the other
/// the way `ask` does (wait for an online server, then `exchange`, which
/// re-sends with the same correlation data). A failed exchange is retried
/// with the same correlation data (at most 3 times), so an edit is never
/// sent as two different requests. `done` counts answered requests.
pub fn resending(
    config: &Config,
    clients: usize,
    per_client: usize,
    make: fn(usize, usize) -> Request,
    done: &AtomicUsize,
) -> Outcome {
    let outcomes: Vec<Outcome> = thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| s.spawn(move || one_resender(config, c, per_client, make, done)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    });
    let mut total = Outcome::default();
    for o in outcomes {
        total.replies.extend(o.replies);
        total.failures.extend(o.failures);
        total.no_server += o.no_server;
        total.exchange_retries += o.exchange_retries;
        total.resent += o.resent;
    }
    total
}

fn connect_patiently(config: &Config, until: Instant) -> Requester {
    loop {
        match Requester::connect(config, Encoding::Cbor) {
            Ok(r) => return r,
            Err(e) if Instant::now() < until => {
                eprintln!("client connect failed ({e}); retrying");
                thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("client cannot connect: {e}"),
        }
    }
}

fn one_resender(
    config: &Config,
    c: usize,
    n: usize,
    make: fn(usize, usize) -> Request,
    done: &AtomicUsize,
) -> Outcome {
    let give_up = Instant::now() + Duration::from_secs(150);
    let mut requester = connect_patiently(config, give_up);
    let mut out = Outcome::default();
    for i in 0..n {
        let request = make(c, i);
        // Before anything is sent, waiting and reconnecting are always safe.
        while let Err(e) = requester.wait_for_server(
            request.op_name(),
            Instant::now() + status_grace(config.timeout),
        ) {
            assert!(Instant::now() < give_up, "no server for 150 s: {e}");
            out.no_server += 1;
            if matches!(e, AskError::Mqtt(_)) {
                let _ = requester.reconnect(Instant::now() + Duration::from_secs(1));
            }
        }
        let correlation = requester.next_correlation();
        let mut last = String::new();
        let started = Instant::now();
        for attempt in 0..3 {
            let deadline = Instant::now() + config.timeout;
            match exchange(
                &mut requester,
                &request,
                &correlation,
                deadline,
                config.timeout,
            ) {
                Ok(reply) => {
                    if started.elapsed() >= retry_interval(config.timeout) {
                        out.resent += 1;
                    }
                    out.replies.push((c, i, reply));
                    done.fetch_add(1, Ordering::SeqCst);
                    last.clear();
                    break;
                }
                Err(e) => {
                    last = format!("client {c} request {i} attempt {attempt}: {e}");
                    out.exchange_retries += 1;
                }
            }
        }
        if !last.is_empty() {
            out.failures.push(last);
        }
    }
    requester.close();
    out
}
