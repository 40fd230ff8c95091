//! The doctor's probes: short-lived clients trying each guarantee.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::report::{BrokerSeen, Report, Verdict};
use crate::broker::{list, Capabilities, Needs};
use crate::config::Config;
use crate::ids::random_u64;
use crate::mqtt::{
    self, Arrival, BrokerUri, Client, Connect, Message, MessageMeta, MqttError, SessionSpec,
    Subscription,
};
use crate::protocol::Topics;

/// Messages sent to the group probe.
const GROUP_MESSAGES: usize = 20;
/// Messages queued for an offline session (the bounded burst).
pub const BURST: usize = 200;
/// Longest wait for the messages of one probe.
const COLLECT: Duration = Duration::from_secs(3);
/// Longest wait for one connect, subscribe or publish.
const ACK: Duration = Duration::from_secs(5);

/// A connected probe client and its message stream.
struct Probe {
    client: Client,
    rx: Receiver<Arrival>,
    caps: Capabilities,
}

impl Probe {
    fn open(
        config: &Config,
        uri: &BrokerUri,
        id: &str,
        clean_start: bool,
        expiry: Duration,
    ) -> Result<Probe, MqttError> {
        let client = Client::create_at(uri, id, false)?;
        let rx = client.arrivals();
        let caps = client.connect(&Connect {
            connection: &config.connection,
            session: SessionSpec {
                clean_start,
                session_expiry: expiry,
                will: None,
                connect_timeout: ACK,
            },
        })?;
        Ok(Probe { client, rx, caps })
    }

    fn subscribe(&self, filter: &str) -> Result<(), MqttError> {
        let sub = Subscription {
            filter: filter.to_string(),
            qos: mqtt::QOS,
            retained_only_if_new: false,
        };
        mqtt::block_on(self.client.subscribe(&[sub]), ACK).unwrap_or(Err(MqttError::timed_out()))
    }

    fn publish(&self, msg: Message) -> Result<(), MqttError> {
        self.client.publish_wait(msg, ACK)
    }

    /// Payloads received until `want` of them came or `within` passed.
    fn collect(&self, want: usize, within: Duration) -> Vec<Vec<u8>> {
        let until = Instant::now() + within;
        let mut got = Vec::new();
        while got.len() < want {
            let Some(left) = until.checked_duration_since(Instant::now()) else {
                break;
            };
            match self.rx.recv_timeout(left) {
                Ok(Arrival::Message(m)) => got.push(m.payload),
                // A dropped connection: wait out the time all the same.
                Ok(_) => std::thread::sleep(Duration::from_millis(50)),
                Err(_) => break,
            }
        }
        got
    }

    fn close(self) {
        self.client.disconnect(Duration::ZERO);
    }
}

fn message(topic: &str, payload: Vec<u8>, retained: bool, expiry: Option<u32>) -> Message {
    let meta = MessageMeta {
        expiry_secs: expiry,
        ..MessageMeta::default()
    };
    Message::new(topic, payload, meta, retained)
}

/// Connects to every broker of the list and runs every probe.
///
/// # Errors
/// A usage error for a bad broker list, or the connect error when no
/// broker of the list can be reached.
pub fn run(config: &Config) -> Result<Report, MqttError> {
    let uris = list::each(&config.connection.broker)?;
    let run_id = format!("{:012x}", random_u64() & 0xffff_ffff_ffff);
    let base = format!(
        "{}/v1/doctor/{run_id}",
        Topics::new(&config.prefix).prefix()
    );
    let needs = Needs {
        group: None,
        session_expiry: None,
        max_payload: Some(config.limits.max_payload),
    };
    let mut brokers = Vec::new();
    let mut reachable = Vec::new();
    let mut first_error = None;
    for (i, uri) in uris.iter().enumerate() {
        let id = format!("mqttapp-doctor-{run_id}-c{i}");
        match Probe::open(config, uri, &id, true, Duration::ZERO) {
            Ok(p) => {
                brokers.push(BrokerSeen {
                    uri: uri.display.clone(),
                    findings: p.caps.findings(&needs),
                    capabilities: Some(p.caps.clone()),
                    error: None,
                });
                reachable.push((uri.clone(), p.caps.clone()));
                p.close();
            }
            Err(e) => {
                brokers.push(BrokerSeen {
                    uri: uri.display.clone(),
                    capabilities: None,
                    error: Some(e.to_string()),
                    findings: Vec::new(),
                });
                first_error.get_or_insert(e);
            }
        }
    }
    if reachable.is_empty() {
        return Err(first_error.expect("a broker list is never empty"));
    }
    let mut verdicts = Vec::new();
    if reachable.len() < uris.len() {
        verdicts.push(Verdict::of(
            "reachable",
            false,
            format!("{} of {} brokers reachable", reachable.len(), uris.len()),
        ));
    }
    let first = &reachable[0].0;
    let last = &reachable[reachable.len() - 1].0;
    verdicts.push(groups(config, &reachable, first, last, &base, &run_id));
    verdicts.extend(sessions(config, first, last, &base, &run_id));
    verdicts.push(retained(config, &reachable, first, &base, &run_id));
    Ok(Report::new(brokers, verdicts))
}

/// `groups`: two members of one shared subscription, on the first and the
/// last broker; every message must reach exactly one of them.
fn groups(
    config: &Config,
    reachable: &[(BrokerUri, Capabilities)],
    first: &BrokerUri,
    last: &BrokerUri,
    base: &str,
    run_id: &str,
) -> Verdict {
    const NAME: &str = "groups";
    if let Some((u, _)) = reachable.iter().find(|(_, c)| !c.shared_subscriptions) {
        return Verdict::of(
            NAME,
            false,
            format!("{} says it has no shared subscriptions (CONNACK): `serve --group` refuses to start there", u.display),
        );
    }
    let topic = format!("{base}/group");
    let filter = format!("$share/doctor-{run_id}/{topic}");
    let attempt = || -> Result<Verdict, MqttError> {
        let a = Probe::open(
            config,
            first,
            &format!("mqttapp-doctor-{run_id}-ga"),
            true,
            Duration::ZERO,
        )?;
        let b = Probe::open(
            config,
            last,
            &format!("mqttapp-doctor-{run_id}-gb"),
            true,
            Duration::ZERO,
        )?;
        a.subscribe(&filter)?;
        b.subscribe(&filter)?;
        // Cluster nodes learn of a subscription made on another node a
        // moment later.
        std::thread::sleep(Duration::from_millis(300));
        let p = Probe::open(
            config,
            first,
            &format!("mqttapp-doctor-{run_id}-gp"),
            true,
            Duration::ZERO,
        )?;
        for i in 0..GROUP_MESSAGES {
            p.publish(message(&topic, i.to_string().into_bytes(), false, None))?;
        }
        let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
        let got_a = a.collect(GROUP_MESSAGES, COLLECT);
        let got_b = b.collect(GROUP_MESSAGES, Duration::from_millis(500));
        let (na, nb) = (got_a.len(), got_b.len());
        for m in got_a.into_iter().chain(got_b) {
            *seen.entry(m).or_default() += 1;
        }
        let twice = seen.values().filter(|&&n| n > 1).count();
        let lost = GROUP_MESSAGES - seen.len().min(GROUP_MESSAGES);
        p.close();
        a.close();
        b.close();
        Ok(Verdict::of(
            NAME,
            lost == 0 && twice == 0,
            format!("{GROUP_MESSAGES} messages to a group of 2: {lost} lost, {twice} delivered twice (members got {na} and {nb})"),
        ))
    };
    attempt()
        .unwrap_or_else(|e| Verdict::of(NAME, false, format!("shared subscription failed: {e}")))
}

/// `exactly_once_edits`, `message_expiry`, `queue_burst`: a session left
/// on `first` with one expiring message and a burst queued for it, resumed
/// on `last`.
fn sessions(
    config: &Config,
    first: &BrokerUri,
    last: &BrokerUri,
    base: &str,
    run_id: &str,
) -> Vec<Verdict> {
    const SESSION: &str = "exactly_once_edits";
    const EXPIRY: &str = "message_expiry";
    const BURST_NAME: &str = "queue_burst";
    let topic = format!("{base}/queue");
    let id = format!("mqttapp-doctor-{run_id}-s");
    let keep = Duration::from_secs(300);
    let attempt = || -> Result<Vec<Verdict>, MqttError> {
        let s = Probe::open(config, first, &id, true, keep)?;
        s.subscribe(&topic)?;
        s.close();
        let p = Probe::open(
            config,
            first,
            &format!("mqttapp-doctor-{run_id}-sp"),
            true,
            Duration::ZERO,
        )?;
        p.publish(message(&topic, b"expiring".to_vec(), false, Some(1)))?;
        for i in 0..BURST {
            p.publish(message(&topic, i.to_string().into_bytes(), false, None))?;
        }
        p.close();
        // Let the expiring message's second run out.
        std::thread::sleep(Duration::from_millis(2100));
        let s = Probe::open(config, last, &id, false, keep)?;
        let resumed = s.caps.session_present;
        let got = s.collect(BURST + 1, COLLECT);
        s.close();
        // Clean up: a clean start with no expiry ends the session.
        if let Ok(c) = Probe::open(config, last, &id, true, Duration::ZERO) {
            c.close();
        }
        let expired_delivered = got.iter().any(|m| m == b"expiring");
        let burst = got.iter().filter(|m| m.as_slice() != b"expiring").count();
        let moved = if first == last {
            String::new()
        } else {
            format!(" from {} to {}", first.display, last.display)
        };
        if !resumed {
            return Ok(vec![
                Verdict::of(SESSION, false, format!("a persistent session was not resumed{moved} (CONNACK session present = 0): requests queued for a server while it reconnects are lost")),
                Verdict::unknown(EXPIRY, "no session to queue into".into()),
                Verdict::unknown(BURST_NAME, "no session to queue into".into()),
            ]);
        }
        Ok(vec![
            Verdict::of(SESSION, burst > 0, format!("session resumed{moved}; {burst} queued QoS 1 messages delivered")),
            Verdict::of(EXPIRY, !expired_delivered, if expired_delivered {
                "a queued message was delivered after its Message Expiry ran out: stale requests may be applied late".into()
            } else {
                "a queued message was dropped once its Message Expiry ran out".into()
            }),
            Verdict::of(BURST_NAME, burst == BURST, format!("{burst} of {BURST} messages queued for an offline session delivered ({} dropped by the broker's queue limit)", BURST - burst.min(BURST))),
        ])
    };
    attempt().unwrap_or_else(|e| {
        vec![
            Verdict::of(
                SESSION,
                false,
                format!("persistent session probe failed: {e}"),
            ),
            Verdict::unknown(EXPIRY, "the session probe failed".into()),
            Verdict::unknown(BURST_NAME, "the session probe failed".into()),
        ]
    })
}

/// `fail_fast_status`: a retained message published on the first broker
/// reaches a new subscriber on every broker.
fn retained(
    config: &Config,
    reachable: &[(BrokerUri, Capabilities)],
    first: &BrokerUri,
    base: &str,
    run_id: &str,
) -> Verdict {
    const NAME: &str = "fail_fast_status";
    if let Some((u, _)) = reachable.iter().find(|(_, c)| !c.retain) {
        return Verdict::of(
            NAME,
            false,
            format!("{} keeps no retained messages (CONNACK): `ask` cannot see server statuses and checks for servers with a live ping instead (docs/PROTOCOL.md)", u.display),
        );
    }
    let topic = format!("{base}/retained");
    let attempt = || -> Result<Verdict, MqttError> {
        let p = Probe::open(
            config,
            first,
            &format!("mqttapp-doctor-{run_id}-rp"),
            true,
            Duration::ZERO,
        )?;
        p.publish(message(&topic, b"status".to_vec(), true, Some(60)))?;
        let mut missing = Vec::new();
        for (i, (uri, _)) in reachable.iter().enumerate() {
            let r = Probe::open(
                config,
                uri,
                &format!("mqttapp-doctor-{run_id}-r{i}"),
                true,
                Duration::ZERO,
            )?;
            r.subscribe(&topic)?;
            if r.collect(1, COLLECT).is_empty() {
                missing.push(uri.display.clone());
            }
            r.close();
        }
        let _ = p.publish(message(&topic, Vec::new(), true, None));
        p.close();
        Ok(match missing.is_empty() {
            true => Verdict::of(NAME, true, format!("a retained message is seen from all {} brokers", reachable.len())),
            false => Verdict::of(NAME, false, format!("a retained message published on {} is not seen from {}: `ask` there fails with \"no server online\" although one serves", first.display, missing.join(", "))),
        })
    };
    attempt()
        .unwrap_or_else(|e| Verdict::of(NAME, false, format!("retained message probe failed: {e}")))
}
