//! Per-operation statistics: the stats topic, `status --stats` and
//! `serve --metrics`, against a real Mosquitto and the real binary. Every
//! check counts outcomes; none times anything.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::raw::{connect_subscribed, RawClient};
use common::server::server_id_for;
use common::{mqttapp, unique_prefix, Broker, Server};
use mqttapp::protocol::{ServerStats, UNKNOWN_OP};
use paho_mqtt as paho;

/// A client subscribed to every server's statistics.
struct StatsWatch {
    client: paho::AsyncClient,
    rx: paho::SyncReceiver<Option<paho::Message>>,
    prefix: String,
}

impl StatsWatch {
    fn connect(broker: &Broker, prefix: &str) -> StatsWatch {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (client, rx, _) = connect_subscribed(broker, prefix, &format!("stats-watch-{n}"));
        client
            .subscribe(format!("{prefix}/v1/stats/+"), 0)
            .wait_for(Duration::from_secs(30))
            .expect("subscribe to the statistics");
        StatsWatch {
            client,
            rx,
            prefix: prefix.to_string(),
        }
    }

    /// The next stats message that is not a retained one (a fresh
    /// publication), pinging first when `ping`.
    fn fresh(&self, ping: bool, within: Duration) -> (ServerStats, paho::Message) {
        if ping {
            let msg = paho::Message::new(format!("{}/v1/ping", self.prefix), Vec::new(), 0);
            self.client.publish(msg).wait().expect("ping");
        }
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = self
                .rx
                .recv_timeout(left)
                .ok()
                .flatten()
                .expect("a stats message in time");
            if msg.topic().contains("/v1/stats/") && !msg.retained() && !msg.payload().is_empty() {
                let stats = ServerStats::decode(msg.payload()).expect("a stats map");
                return (stats, msg);
            }
        }
    }

    /// Pings until `done` holds for the figures (bounded).
    fn until(&self, what: &str, done: impl Fn(&ServerStats) -> bool) -> ServerStats {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (stats, _) = self.fresh(true, Duration::from_secs(10));
            if done(&stats) {
                return stats;
            }
            assert!(Instant::now() < deadline, "{what}: last figures {stats:#?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// `mqttapp status --stats --json` (which must succeed): one map per server.
fn status_stats_json(broker: &Broker, prefix: &str) -> Vec<serde_json::Value> {
    let out = mqttapp(broker, prefix)
        .args(["status", "--stats", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json.as_array().expect("a JSON array").clone()
}

fn reply(raw: &RawClient, prefix: &str, op: &str, payload: &str, correlation: &[u8]) -> String {
    let ct = if op == "edit" {
        "application/json"
    } else {
        "text/plain"
    };
    raw.request(prefix, op, payload.as_bytes(), Some(ct), Some(correlation))
        .code()
}

#[test]
fn the_stats_message_counts_a_known_mix_of_requests_exactly() {
    let broker = Broker::start();
    let prefix = unique_prefix("stats-mix");
    let mut server = Server::start(&broker, &prefix);
    let raw = RawClient::connect(&broker, &prefix, "raw-mix");
    let watch = StatsWatch::connect(&broker, &prefix);
    let mut seen = BTreeMap::<String, usize>::new();
    let mut n = 0u32;
    let mut next = || {
        n += 1;
        n.to_be_bytes().repeat(4)
    };
    for i in 0..20 {
        *seen
            .entry(reply(&raw, &prefix, "calc", &format!("{i}+1"), &next()))
            .or_default() += 1;
    }
    for bad in ["1+", "(2", "1/0"] {
        *seen
            .entry(reply(&raw, &prefix, "calc", bad, &next()))
            .or_default() += 1;
    }
    for i in 0..5 {
        *seen
            .entry(reply(&raw, &prefix, "echo", &format!("hi {i}"), &next()))
            .or_default() += 1;
    }
    let mut edit_keys: Vec<Vec<u8>> = (0..4).map(|_| next()).collect();
    edit_keys.push(edit_keys[2].clone()); // a re-send: answered from memory
    for (key, n) in edit_keys.iter().zip([0, 1, 2, 3, 2]) {
        let line = format!(r#"{{"action":"append","text":"line {n}"}}"#);
        *seen
            .entry(reply(&raw, &prefix, "edit", &line, key))
            .or_default() += 1;
    }
    assert_eq!(seen["ok"], 30, "{seen:?}");

    let (stats, msg) = watch.fresh(true, Duration::from_secs(10));
    assert_eq!(stats.server, server_id_for(&prefix));
    let calc = &stats.ops["calc"];
    assert_eq!(calc.requests, 23);
    assert_eq!(calc.replies.get("ok"), Some(&20));
    assert_eq!(calc.replies.get("parse"), Some(&2));
    assert_eq!(calc.replies.get("math"), Some(&1));
    assert_eq!((calc.busy, calc.queued, calc.dropped), (0, 0, 0));
    assert!(calc.dead_letters.is_empty(), "{calc:?}");
    assert_eq!(calc.handling_us.count, 23);
    assert!(calc.handling_us.p50 <= calc.handling_us.p99);
    assert!(calc.handling_us.p99 <= calc.handling_us.max);
    let echo = &stats.ops["echo"];
    assert_eq!((echo.requests, echo.replies.get("ok")), (5, Some(&5)));
    let edit = &stats.ops["edit"];
    assert_eq!((edit.requests, edit.replies.get("ok")), (5, Some(&5)));
    assert_eq!(edit.replays, 1, "the re-send was answered from memory");
    assert_eq!(stats.ops[UNKNOWN_OP].requests, 0);
    assert_eq!(
        msg.properties()
            .get_string(paho::PropertyCode::ContentType)
            .as_deref(),
        Some("application/cbor")
    );

    // Retained, with a message expiry (three intervals of the default 10 s),
    // so a late subscriber finds the figures and a dead server's vanish.
    let late = StatsWatch::connect(&broker, &prefix);
    let retained = late.rx.recv_timeout(Duration::from_secs(10)).ok().flatten();
    let retained = retained.expect("the retained statistics");
    assert!(retained.retained());
    let expiry = retained
        .properties()
        .get_int(paho::PropertyCode::MessageExpiryInterval)
        .expect("a message expiry");
    assert!((1..=30).contains(&expiry), "{expiry}");

    // `status --stats --json`: an array of the same maps.
    let servers = status_stats_json(&broker, &prefix);
    assert_eq!(servers.len(), 1, "{servers:?}");
    let s = &servers[0];
    assert_eq!(s["server"], server_id_for(&prefix));
    assert!(s["uptime_s"].is_u64() && s["time"].is_u64(), "{s}");
    assert_eq!(s["ops"]["calc"]["requests"], 23);
    assert_eq!(s["ops"]["calc"]["replies"]["parse"], 2);
    assert_eq!(s["ops"]["edit"]["replays"], 1);
    for key in ["busy", "dropped", "queued", "dead_letters", "replies"] {
        assert!(!s["ops"]["echo"][key].is_null(), "{key} in {s}");
    }
    for key in ["count", "p50", "p99", "max"] {
        assert!(
            s["ops"]["calc"]["handling_us"][key].is_u64(),
            "{key} in {s}"
        );
    }

    // The table, and `status` without --stats as before.
    let table = mqttapp(&broker, &prefix)
        .args(["status", "--stats"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(table.starts_with("SERVER"), "{table}");
    assert_eq!(
        table.lines().count(),
        4,
        "header, calc, echo, edit:\n{table}"
    );
    let plain = mqttapp(&broker, &prefix).arg("status").output().unwrap();
    let plain = String::from_utf8_lossy(&plain.stdout).to_string();
    assert!(
        plain.starts_with("ID ") && plain.contains("online"),
        "{plain}"
    );
    // A clean stop removes the retained figures: they are not current.
    assert_eq!(server.terminate(), Some(0));
    let after = StatsWatch::connect(&broker, &prefix);
    let left = after.rx.recv_timeout(Duration::from_secs(1)).ok().flatten();
    assert!(
        left.is_none(),
        "retained stats after a clean stop: {left:?}"
    );
}

#[test]
fn under_a_flood_every_request_is_counted_once_and_the_stats_keep_coming() {
    let broker = Broker::start();
    let prefix = unique_prefix("stats-flood");
    let data = broker.dir().join("data-flood");
    let server = Server::start_with(
        &broker,
        &prefix,
        &data,
        &["--max-queue-bytes", "1MiB", "--stats-interval", "1"],
    );
    let raw = RawClient::connect(&broker, &prefix, "raw-flood");
    let watch = StatsWatch::connect(&broker, &prefix);
    // The server is paused while the flood is sent, so the whole flood
    // reaches it at once when it resumes, however fast this machine is:
    // its 256 KiB fast lane must refuse some of the 14 MB `busy`.
    let pid = server.pid() as libc::pid_t;
    // SAFETY: signals to our own child process.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    const SENT: usize = 2000;
    let big = vec![b'x'; 8 * 1024];
    let echo = format!("{prefix}/v1/req/echo");
    let nope = format!("{prefix}/v1/req/nope");
    for i in 0..SENT {
        let key = (i as u64).to_be_bytes();
        match i % 10 {
            // Nowhere to reply: dead letters.
            0 => raw.send(&echo, b"x", Some("text/plain"), Some(&key), None),
            1 => raw.send(&nope, b"x", None, Some(&key), Some(&raw.response_topic)),
            _ => raw.send(
                &echo,
                &big,
                Some("text/plain"),
                Some(&key),
                Some(&raw.response_topic),
            ),
        }
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    // Periodic publication goes on without pings.
    watch.fresh(false, Duration::from_secs(10));
    let stats = watch.until("every request finished", |s| {
        s.ops.values().map(|o| o.requests).sum::<u64>() == SENT as u64
            && s.ops.values().all(|o| o.queued == 0)
    });
    let answered: u64 = stats.ops.values().map(|o| o.replied() + o.busy).sum();
    let mut codes = BTreeMap::<String, u64>::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while codes.values().sum::<u64>() < answered && Instant::now() < deadline {
        if let Some(r) = raw.next(Duration::from_secs(5)) {
            *codes.entry(r.code()).or_default() += 1;
        }
    }
    // Nothing more comes than was counted.
    if let Some(r) = raw.next(Duration::from_millis(500)) {
        *codes.entry(r.code()).or_default() += 1;
    }
    for (name, op) in &stats.ops {
        assert_eq!(op.requests, op.finished(), "{name}: {op:?}");
    }
    let echo_stats = &stats.ops["echo"];
    let unknown = &stats.ops[UNKNOWN_OP];
    assert_eq!(echo_stats.requests, (SENT - SENT / 10) as u64);
    assert_eq!(unknown.requests, (SENT / 10) as u64);
    let dead: u64 = stats
        .ops
        .values()
        .flat_map(|o| o.dead_letters.values())
        .sum();
    let dropped: u64 = stats.ops.values().map(|o| o.dropped).sum();
    let received = codes.values().sum::<u64>();
    eprintln!("flood: replies received {codes:?}; counted: answered {answered}, dead letters {dead}, dropped {dropped}");
    assert_eq!(answered, received, "replies counted = replies received");
    assert_eq!(answered + dead + dropped, SENT as u64);
    let busy: u64 = stats.ops.values().map(|o| o.busy).sum();
    assert_eq!(busy, codes.get("busy").copied().unwrap_or(0), "{codes:?}");
    assert!(busy > 0, "the flood overflowed the queue: {codes:?}");
    let no_topic = |o: &mqttapp::protocol::OpStats| {
        o.dead_letters
            .get("no_response_topic")
            .copied()
            .unwrap_or(0)
    };
    assert!(no_topic(echo_stats) > 0, "{echo_stats:?}");
}

/// A loopback port nothing listens on (the OS's pick).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GETs (or POSTs) `url` with curl, or python3's urllib where curl is
/// missing: (status, body).
fn http(method: &str, url: &str) -> (u16, String) {
    let script = r#"
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[2], method=sys.argv[1])
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        code, body = r.status, r.read().decode()
except urllib.error.HTTPError as e:
    code, body = e.code, e.read().decode()
sys.stdout.write("%s\n%d" % (body, code))
"#;
    let curl = std::process::Command::new("curl").arg("--version").output();
    let out = if curl.is_ok_and(|o| o.status.success()) {
        std::process::Command::new("curl")
            .args(["-sS", "-m", "10", "-X", method, "-w", "\n%{http_code}", url])
            .output()
            .expect("run curl")
    } else {
        std::process::Command::new("python3")
            .args(["-c", script, method, url])
            .output()
            .expect("run python3")
    };
    // Both print the body, a newline, and the status code.
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// The samples of an OpenMetrics text as Python's prometheus_client
/// parses them: (sample name, sorted labels) -> value.
fn parse_with_prometheus_client(text: &str) -> BTreeMap<(String, String), f64> {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append([s.name, ",".join("%s=%s" % kv for kv in sorted(s.labels.items())), s.value])
print(json.dumps(out))
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (run `make setup`)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = common::wait_output(child, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "prometheus_client could not parse the metrics (run `make setup`): {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<(String, String, f64)> = serde_json::from_slice(&out.stdout).unwrap();
    rows.into_iter().map(|(n, l, v)| ((n, l), v)).collect()
}

#[test]
fn the_metrics_endpoint_serves_the_same_figures_as_openmetrics_text() {
    let broker = Broker::start();
    let prefix = unique_prefix("stats-metrics");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let data = broker.dir().join("data-metrics");
    let _server = Server::start_with(&broker, &prefix, &data, &["--metrics", &addr]);
    let raw = RawClient::connect(&broker, &prefix, "raw-metrics");
    for (i, expr) in ["1+1", "2*3", "1/0", "(", "4-1"].iter().enumerate() {
        reply(&raw, &prefix, "calc", expr, &[i as u8; 16]);
    }
    reply(&raw, &prefix, "echo", "hello", &[9; 16]);
    raw.send(&format!("{prefix}/v1/req/calc"), b"1", None, None, None);
    let watch = StatsWatch::connect(&broker, &prefix);
    let stats = watch.until("the request without a response topic", |s| {
        s.ops["calc"].dead_letters.values().sum::<u64>() == 1
    });

    let (status, body) = http("GET", &format!("http://{addr}/metrics"));
    assert_eq!(status, 200, "{body}");
    let samples = parse_with_prometheus_client(&body);
    let value = |name: &str, labels: &str| {
        samples
            .get(&(name.to_string(), labels.to_string()))
            .copied()
            .unwrap_or_else(|| panic!("no {name}{{{labels}}} in\n{body}"))
    };
    for (name, op) in &stats.ops {
        let l = format!("op={name}");
        assert_eq!(
            value("mqttapp_requests_total", &l),
            op.requests as f64,
            "{name}"
        );
        assert_eq!(value("mqttapp_busy_total", &l), op.busy as f64);
        assert_eq!(value("mqttapp_queued", &l), op.queued as f64);
        assert_eq!(value("mqttapp_replays_total", &l), op.replays as f64);
        for (code, n) in &op.replies {
            let l = format!("code={code},op={name}");
            assert_eq!(value("mqttapp_replies_total", &l), *n as f64, "{l}");
        }
        for (reason, n) in &op.dead_letters {
            let l = format!("op={name},reason={reason}");
            assert_eq!(value("mqttapp_dead_letters_total", &l), *n as f64, "{l}");
        }
        let max = value("mqttapp_handling_max_seconds", &l);
        assert!(max >= value("mqttapp_handling_p50_seconds", &l), "{name}");
    }
    assert_eq!(value("mqttapp_requests_total", "op=calc"), 6.0);
    assert_eq!(value("mqttapp_replies_total", "code=ok,op=calc"), 3.0);
    assert_eq!(value("mqttapp_replies_total", "code=math,op=calc"), 1.0);
    assert!(value("mqttapp_uptime_seconds", "") >= 0.0);

    // GET /metrics only.
    assert_eq!(http("GET", &format!("http://{addr}/")).0, 404);
    assert_eq!(http("GET", &format!("http://{addr}/metricsx")).0, 404);
    assert_eq!(http("POST", &format!("http://{addr}/metrics")).0, 404);
}

#[test]
fn a_metrics_address_in_use_is_a_clear_error_at_start() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap().to_string();
    let broker = Broker::start();
    let prefix = unique_prefix("stats-inuse");
    let out = mqttapp(&broker, &prefix)
        .args(["serve", "--metrics", &addr])
        .env("MQTTAPP_DATA_DIR", broker.dir().join("data-inuse"))
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a usage error: {err}");
    assert!(
        err.contains(&format!("cannot serve metrics on {addr}")),
        "{err}"
    );
    assert!(!err.contains("Os {"), "no Debug formatting: {err}");
}

/// Threads and open file descriptors of process `pid`, from /proc.
fn threads_and_fds(pid: u32) -> (usize, usize) {
    let count = |dir: String| std::fs::read_dir(dir).map_or(0, |d| d.count());
    (
        count(format!("/proc/{pid}/task")),
        count(format!("/proc/{pid}/fd")),
    )
}

/// An adversary who can reach the metrics port opens connections and
/// sends nothing. The HTTP crate used before started a thread and held a
/// descriptor for each (1,274 threads and 2,775 descriptors for 3,000
/// connections), the descriptors edits need; now one connection is taken
/// at a time and the rest wait in the kernel's queue.
#[test]
fn a_flood_of_silent_metrics_connections_takes_no_threads_or_descriptors_and_requests_still_work() {
    let broker = Broker::start();
    let prefix = unique_prefix("stats-metrics-flood");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let data = broker.dir().join("data-metrics-flood");
    let server = Server::start_with(&broker, &prefix, &data, &["--metrics", &addr.to_string()]);
    let raw = RawClient::connect(&broker, &prefix, "raw-metrics-flood");
    assert_eq!(reply(&raw, &prefix, "calc", "1+2", &[1; 16]), "ok");
    let (threads_before, fds_before) = threads_and_fds(server.pid());

    // At most 2,000 connections, for at most 5 s; once the kernel's
    // listen queue is full, new ones time out: 20 in a row end the flood.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (mut silent, mut refused_in_a_row) = (Vec::new(), 0);
    for _ in 0..2_000 {
        if Instant::now() > deadline || refused_in_a_row == 20 {
            break;
        }
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => {
                silent.push(s);
                refused_in_a_row = 0;
            }
            Err(_) => refused_in_a_row += 1,
        }
    }
    assert!(
        silent.len() >= 100,
        "only {} connections opened",
        silent.len()
    );
    let (threads, fds) = threads_and_fds(server.pid());
    assert!(
        threads <= threads_before + 2,
        "{} silent connections: {threads_before} threads became {threads}",
        silent.len()
    );
    assert!(
        fds <= fds_before + 2,
        "{} silent connections: {fds_before} descriptors became {fds}",
        silent.len()
    );
    // Requests are answered meanwhile, edits (which open files) included.
    assert_eq!(reply(&raw, &prefix, "calc", "2*3", &[2; 16]), "ok");
    let edit = r#"{"action":"append","text":"during the flood"}"#;
    assert_eq!(reply(&raw, &prefix, "edit", edit, &[3; 16]), "ok");

    // Once the flood is gone, scrapes are answered again.
    drop(silent);
    let (status, body) = http("GET", &format!("http://{addr}/metrics"));
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("mqttapp_requests_total{op=\"calc\"} 2"),
        "{body}"
    );
}

/// A client publishes statistics of its own: retained figures for a
/// server that does not exist, figures for the real server with another
/// instance (after the server's), and a flood of 1,000 servers' figures.
/// `status --stats` shows the real server's figures only.
#[test]
fn forged_statistics_are_not_shown_even_in_a_flood() {
    let broker = Broker::start();
    let prefix = unique_prefix("stats-forged");
    let _server = Server::start(&broker, &prefix);
    let raw = RawClient::connect(&broker, &prefix, "raw-forged");
    for (i, expr) in ["1+1", "2*3", "4-1"].iter().enumerate() {
        assert_eq!(reply(&raw, &prefix, "calc", expr, &[i as u8; 16]), "ok");
    }
    let real = server_id_for(&prefix);
    let watch = StatsWatch::connect(&broker, &prefix);
    let honest = watch.until("the three calcs", |s| s.ops["calc"].requests == 3);
    assert!(honest.instance.is_some(), "servers publish their instance");

    let (forger, _rx, _) = connect_subscribed(&broker, &prefix, "forger");
    let forged = |server: &str, instance: Option<&str>| {
        let mut stats = ServerStats {
            server: server.to_string(),
            instance: instance.map(str::to_string),
            uptime_s: 1,
            ..ServerStats::default()
        };
        stats.ops.insert(
            "calc".into(),
            mqttapp::protocol::OpStats {
                requests: 999_999,
                ..Default::default()
            },
        );
        stats.encode()
    };
    let publish = |topic: String, payload: Vec<u8>, retained: bool| {
        let msg = paho::MessageBuilder::new()
            .topic(topic)
            .payload(payload)
            .qos(1)
            .retained(retained)
            .finalize();
        forger.publish(msg).wait().expect("the forger's publish");
    };
    let stats_topic = |id: &str| format!("{prefix}/v1/stats/{id}");
    publish(stats_topic("ghost"), forged("ghost", Some("i-ghost")), true);
    publish(
        stats_topic(&real),
        forged(&real, Some("not-its-instance")),
        true,
    );
    publish(stats_topic(&real), forged(&real, None), true);
    // The flood: at most 1,000 messages.
    for i in 0..1_000 {
        let id = format!("fake-{i}");
        publish(stats_topic(&id), forged(&id, Some("i")), i % 10 == 0);
    }

    let servers = status_stats_json(&broker, &prefix);
    let ids: Vec<&str> = servers
        .iter()
        .filter_map(|s| s["server"].as_str())
        .collect();
    assert_eq!(ids, [real.as_str()], "{servers:?}");
    assert_eq!(servers[0]["ops"]["calc"]["requests"], 3, "{servers:?}");
}
