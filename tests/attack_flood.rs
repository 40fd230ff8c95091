//! Flooding the server: its memory stays within the documented queue
//! budget (`max_queue_bytes`), the excess is refused at once with `busy`,
//! a slow edit flood does not hold up another client's calc, and memory
//! goes back to the OS once a backlog has drained.
//!
//! Real Mosquitto, real `mqttapp serve`; every loop is bounded in count and
//! time, and the assertions count outcomes (answers, duplicates, bytes of
//! RSS), never durations.

mod common;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::load::LoadClient;
use common::{hold_edit_lock, mqttapp, unique_prefix, Broker, Server};
use mqttapp::protocol::{decode_reply, Encoding, Reply};
use paho_mqtt as paho;

const MIB: u64 = 1024 * 1024;
/// The documented default of `max_queue_bytes`.
const BUDGET: u64 = 16 * MIB;
/// Size of each large property in the large-property flood (the outside
/// tester's figures: response topic, correlation data, content type).
const BIG: usize = 60_000;

/// A field of /proc/<pid>/status, in bytes (VmHWM: peak RSS, VmRSS: now).
fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("a number of kB");
    kib * 1024
}

/// The last `n` bytes (or so) of a log.
fn tail(log: &str, n: usize) -> &str {
    let mut start = log.len().saturating_sub(n);
    while !log.is_char_boundary(start) {
        start += 1;
    }
    &log[start..]
}

/// Keeps at most `window` publishes unacknowledged by the broker (not by
/// the server: replies are not awaited).
struct Window(VecDeque<paho::DeliveryToken>, usize);

impl Window {
    fn push(&mut self, token: paho::DeliveryToken) {
        if self.0.len() == self.1 {
            self.pop();
        }
        self.0.push_back(token);
    }
    fn pop(&mut self) {
        if let Some(t) = self.0.pop_front() {
            t.wait_for(Duration::from_secs(60))
                .expect("every publish is acknowledged by the broker");
        }
    }
    fn flush(&mut self) {
        while !self.0.is_empty() {
            self.pop();
        }
    }
}

/// The error code of a reply, `"ok"` for a value.
fn code_of(msg: &paho::Message) -> String {
    let ct = msg.properties().get_string(paho::PropertyCode::ContentType);
    let encoding = Encoding::detect(ct.as_deref(), msg.payload());
    match decode_reply(encoding, msg.payload()) {
        Ok(Reply::Ok(_)) => "ok".to_string(),
        Ok(Reply::Err(e)) => e.code,
        Err(e) => format!("undecodable: {e}"),
    }
}

#[test]
fn under_one_clients_edit_flood_another_clients_calc_keeps_being_answered() {
    let broker = Broker::start();
    let prefix = unique_prefix("fair");
    let server = Server::start(&broker, &prefix);
    let flooding = AtomicBool::new(true);
    let sent = AtomicUsize::new(0);
    let answered = thread::scope(|s| {
        s.spawn(|| {
            let client = LoadClient::connect(&broker, &prefix, &format!("{prefix}-flood"));
            let topic = format!("{prefix}/v1/req/edit");
            let mut window = Window(VecDeque::new(), 50);
            let deadline = Instant::now() + Duration::from_secs(90);
            // Keyed appends to four files, published without waiting for
            // their replies, until the calcs are done (bounded).
            for i in 0..60_000 {
                if !flooding.load(Ordering::SeqCst) || Instant::now() > deadline {
                    break;
                }
                let payload = format!(
                    r#"{{"action":"append","text":"flood {i}","file":"f{}.txt"}}"#,
                    i % 4
                );
                window.push(client.publish(
                    &topic,
                    payload.as_bytes(),
                    format!("f{i}").as_bytes(),
                    None,
                ));
                sent.fetch_add(1, Ordering::SeqCst);
            }
            window.flush();
        });
        // Let a backlog build up first.
        common::wait_until("the flood to get going", Duration::from_secs(30), || {
            sent.load(Ordering::SeqCst) >= 3000
        });
        let mut answered = 0;
        for _ in 0..9 {
            let out = mqttapp(&broker, &prefix)
                .args(["ask", "--timeout", "5s", "calc", "1+1"])
                .timeout(Duration::from_secs(30))
                .output()
                .expect("run mqttapp ask");
            if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "2" {
                answered += 1;
            } else {
                eprintln!(
                    "calc not answered: {:?} {} {}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        flooding.store(false, Ordering::SeqCst);
        answered
    });
    eprintln!(
        "calc answered {answered} of 9 under a flood of {} edits",
        sent.load(Ordering::SeqCst)
    );
    assert!(
        answered >= 8,
        "only {answered} of 9 calcs answered during the edit flood\n{}",
        tail(&server.log(), 3000)
    );
}

/// What one flood of large-property edits got back.
#[derive(Debug, Default)]
struct Flood {
    /// Replies per code.
    codes: HashMap<String, usize>,
    /// Requests that got more than one reply.
    duplicates: usize,
    /// Requests answered at all.
    answered: usize,
    /// Small appends answered `ok` (these must be in the file once each).
    small_ok: Vec<usize>,
}

/// With the edit file locked (so the server cannot make progress on
/// edits), sends `count` edits: every tenth a small keyed append, the
/// others with a 60 KB response topic, 60 KB correlation data and a 60 KB
/// content type. Samples the server's peak RSS while the lock is held,
/// then releases it and collects the replies.
fn large_property_flood(
    broker: &Broker,
    prefix: &str,
    server: &Server,
    count: usize,
) -> (Flood, u64) {
    let id = format!("{prefix}-big");
    let client = LoadClient::connect(broker, prefix, &id);
    // Not under the short response topic: `x/#` also matches `x`, and the
    // small appends' replies would come twice.
    let long_base = format!("{}-long", client.response_topic);
    client
        .client
        .subscribe(format!("{long_base}/#"), 1)
        .wait_for(Duration::from_secs(30))
        .expect("subscribe to the long response topics");
    let lock = hold_edit_lock(server.data_dir(), "notes.txt");
    let topic = format!("{prefix}/v1/req/edit");
    // The first edit takes the server's edit lane and blocks on the lock.
    client.send(
        &topic,
        br#"{"action":"append","text":"first"}"#,
        b"first",
        None,
    );
    let long_topic = format!("{long_base}/{}", "t".repeat(BIG));
    let content_type = format!("application/json; x={}", "c".repeat(BIG));
    let mut window = Window(VecDeque::new(), 20);
    for i in 0..count {
        let (payload, props) = if i % 10 == 0 {
            let payload = format!(r#"{{"action":"append","text":"small {i}"}}"#);
            let mut p = paho::Properties::new();
            p.push_string(paho::PropertyCode::ResponseTopic, &client.response_topic)
                .unwrap();
            p.push_binary(
                paho::PropertyCode::CorrelationData,
                format!("s{i}").into_bytes(),
            )
            .unwrap();
            (payload, p)
        } else {
            let payload = format!(r#"{{"action":"append","text":"big {i}"}}"#);
            let mut correlation = format!("b{i}:").into_bytes();
            correlation.resize(BIG, b'x');
            let mut p = paho::Properties::new();
            p.push_string(paho::PropertyCode::ResponseTopic, &long_topic)
                .unwrap();
            p.push_binary(paho::PropertyCode::CorrelationData, correlation)
                .unwrap();
            p.push_string(paho::PropertyCode::ContentType, &content_type)
                .unwrap();
            (payload, p)
        };
        let msg = paho::MessageBuilder::new()
            .topic(&topic)
            .payload(payload)
            .qos(1)
            .properties(props)
            .finalize();
        window.push(client.client.publish(msg));
    }
    window.flush();
    // Every request has reached the server (or been refused) once the
    // broker logged as many PUBACKs from it as requests were sent.
    let taken = || {
        broker
            .log()
            .matches("Received PUBACK from mqttapp-serve-")
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while taken() < count + 1 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    thread::sleep(Duration::from_millis(500));
    let peak = proc_status_bytes(server.pid(), "VmHWM");
    drop(lock);
    let mut flood = Flood::default();
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.len() < count + 1 && Instant::now() < deadline {
        let Ok(Some(msg)) = client.rx.recv_timeout(Duration::from_secs(10)) else {
            break;
        };
        let correlation = msg
            .properties()
            .get_binary(paho::PropertyCode::CorrelationData)
            .unwrap_or_default();
        let mut name = correlation.clone();
        name.truncate(name.iter().position(|&b| b == b':').unwrap_or(name.len()));
        let n = seen.entry(name.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            flood.duplicates += 1;
            continue;
        }
        let code = code_of(&msg);
        if code == "ok" && name.first() == Some(&b's') {
            let i: usize = String::from_utf8_lossy(&name[1..]).parse().unwrap();
            flood.small_ok.push(i);
        }
        *flood.codes.entry(code).or_insert(0) += 1;
    }
    // Linger for late duplicates.
    while let Ok(Some(msg)) = client.rx.recv_timeout(Duration::from_secs(1)) {
        let mut name = msg
            .properties()
            .get_binary(paho::PropertyCode::CorrelationData)
            .unwrap_or_default();
        name.truncate(name.iter().position(|&b| b == b':').unwrap_or(name.len()));
        if seen.contains_key(&name) {
            flood.duplicates += 1;
        }
    }
    flood.answered = seen.len();
    (flood, peak)
}

/// Each small append answered `ok` is in the file exactly once; no other
/// small append is in it.
fn assert_applied_once(server: &Server, flood: &Flood) {
    let text = std::fs::read_to_string(server.data_dir().join("notes.txt")).unwrap_or_default();
    let mut lines: HashMap<&str, usize> = HashMap::new();
    for line in text.lines() {
        *lines.entry(line).or_insert(0) += 1;
    }
    for (line, n) in &lines {
        assert_eq!(*n, 1, "{line:?} applied {n} times");
    }
    let applied = lines.keys().filter(|l| l.starts_with("small ")).count();
    assert_eq!(
        applied,
        flood.small_ok.len(),
        "applied vs answered ok: {flood:?}"
    );
    for i in &flood.small_ok {
        assert!(
            lines.contains_key(format!("small {i}").as_str()),
            "small {i} answered ok but not in the file"
        );
    }
}

#[test]
fn a_large_property_flood_stays_within_the_queue_budget_and_the_excess_is_refused_busy() {
    let broker = Broker::start();
    let prefix = unique_prefix("bigflood");
    let mut server = Server::start(&broker, &prefix);
    let count = 800;
    let (flood, peak) = large_property_flood(&broker, &prefix, &server, count);
    eprintln!(
        "peak RSS {} MiB with {count} requests of ~180 KB held; replies {:?}, answered {}, duplicates {}",
        peak / MIB,
        flood.codes,
        flood.answered,
        flood.duplicates
    );
    let bound = BUDGET + 64 * MIB;
    assert!(
        peak < bound,
        "peak RSS {} MiB over the bound {} MiB",
        peak / MIB,
        bound / MIB
    );
    let busy = flood.codes.get("busy").copied().unwrap_or(0);
    assert!(busy > 0, "the excess must be refused busy: {flood:?}");
    assert_eq!(
        flood.duplicates, 0,
        "no request gets two replies: {flood:?}"
    );
    assert_applied_once(&server, &flood);
    // Overload is explicit: every request without a reply was counted by
    // the server as dropped (the refusal queue was full too) or
    // unanswerable; the final counts are logged when it stops.
    assert_eq!(server.terminate(), Some(0), "{}", tail(&server.log(), 3000));
    let dropped = overload_count(&server.log(), "dropped");
    let unanswerable = overload_count(&server.log(), "unanswerable");
    eprintln!(
        "server counted busy={} dropped={dropped} unanswerable={unanswerable}",
        overload_count(&server.log(), "busy")
    );
    assert_eq!(
        count + 1 - flood.answered,
        dropped + unanswerable,
        "requests without a reply vs the server's counts: {flood:?}"
    );
}

/// A count from the server's last `overloaded` log line (0 if none).
fn overload_count(log: &str, key: &str) -> usize {
    let Some(line) = log.lines().rev().find(|l| l.contains("overloaded")) else {
        return 0;
    };
    let needle = format!(" {key}=");
    line.find(&needle)
        .map(|at| &line[at + needle.len()..])
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[test]
fn memory_goes_back_to_the_os_after_a_backlog_drains() {
    let broker = Broker::start();
    let prefix = unique_prefix("trim");
    let server = Server::start(&broker, &prefix);
    let before = proc_status_bytes(server.pid(), "VmRSS");
    let count = 500;
    let (flood, peak) = large_property_flood(&broker, &prefix, &server, count);
    assert_eq!(flood.duplicates, 0, "{flood:?}");
    // The backlog has drained (every reply came); give the server a moment
    // to notice it is idle.
    thread::sleep(Duration::from_secs(2));
    let after = proc_status_bytes(server.pid(), "VmRSS");
    eprintln!(
        "RSS {} MiB at start, peak {} MiB, {} MiB after the backlog drained; replies {:?}",
        before / MIB,
        peak / MIB,
        after / MIB,
        flood.codes
    );
    let bound = before + 24 * MIB;
    assert!(
        after < bound,
        "RSS stayed at {} MiB after the backlog drained (bound {} MiB)",
        after / MIB,
        bound / MIB
    );
}
