//! Reflection and amplification: a request must not make the server
//! publish to topics outside its response topics (another system's command
//! topic, another deployment's request topic), and a small request must not
//! make it publish a large reply. Real Mosquitto, real `mqttapp serve`.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::raw::RawClient;
use common::{mqttapp, unique_prefix, Broker, Server};
use paho_mqtt as paho;

const TEXT: Option<&str> = Some("text/plain");
const JSON: Option<&str> = Some("application/json");
/// The documented cap of one `edit show` reply's content (docs/PROTOCOL.md),
/// plus the rest of the reply map.
const SHOW_REPLY_MAX: usize = 65_536 + 256;

/// A client subscribed to `topics`, counting what arrives there.
fn watcher(
    broker: &Broker,
    prefix: &str,
    topics: &[&str],
) -> paho::SyncReceiver<Option<paho::Message>> {
    let (client, rx, _) = common::raw::connect_subscribed(broker, prefix, &format!("{prefix}-w"));
    for topic in topics {
        client
            .subscribe(*topic, 1)
            .wait_for(Duration::from_secs(10))
            .expect("watcher subscribes");
    }
    // Keep the client (and so the subscription) alive with the receiver.
    std::mem::forget(client);
    rx
}

/// Messages that arrive on `rx` within `within`, except on `skip`.
fn count_arrivals(
    rx: &paho::SyncReceiver<Option<paho::Message>>,
    skip: &str,
    within: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(Some(msg)) if msg.topic() != skip => seen.push(msg.topic().to_string()),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    seen
}

/// The server's dead letters with `reason`, waiting (bounded) for `n`.
fn dead_letters(server: &Server, reason: &str, n: usize) -> Vec<serde_json::Value> {
    let path = server.data_dir().join(".mqttapp/deadletters.jsonl");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let letters: Vec<serde_json::Value> = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|l: &serde_json::Value| l["reason"] == reason)
            .collect();
        if letters.len() >= n || Instant::now() >= deadline {
            return letters;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn replies_to_foreign_topics_are_refused_and_dead_lettered() {
    let broker = Broker::start();
    let prefix = unique_prefix("reflect");
    let server = Server::start(&broker, &prefix);
    let foreign = format!("{prefix}-other/v1/req/echo");
    let targets = ["home/door/cmd", foreign.as_str()];
    let rx = watcher(&broker, &prefix, &targets);
    let raw = RawClient::connect(&broker, &prefix, &format!("{prefix}-raw"));
    let req = format!("{prefix}/v1/req/echo");
    for target in targets {
        raw.send(&req, b"open", TEXT, Some(b"x"), Some(target));
    }
    let letters = dead_letters(&server, "response_topic_not_allowed", 2);
    assert_eq!(letters.len(), 2, "{}", server.log());
    for (letter, target) in letters.iter().zip(targets) {
        assert_eq!(letter["response_topic"], target);
        let detail = letter["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("reply-topics"), "{detail}");
    }
    // Still answered on its own response topic.
    assert_eq!(
        raw.request(&prefix, "echo", b"hi", TEXT, None).payload,
        b"hi"
    );
    let relayed = count_arrivals(&rx, &raw.response_topic, Duration::from_millis(500));
    assert!(relayed.is_empty(), "relayed to {relayed:?}");
}

#[test]
fn reply_topics_setting_allows_other_filters() {
    let broker = Broker::start();
    let prefix = unique_prefix("allow");
    let data = broker.dir().join("data");
    let server = Server::start_with(&broker, &prefix, &data, &["--reply-topics", "home/+/cmd"]);
    let foreign = format!("{prefix}-other/v1/req/echo");
    let rx = watcher(&broker, &prefix, &["home/door/cmd", &foreign]);
    let raw = RawClient::connect(&broker, &prefix, &format!("{prefix}-raw"));
    let req = format!("{prefix}/v1/req/echo");
    raw.send(&req, b"open", TEXT, Some(b"x"), Some("home/door/cmd"));
    raw.send(&req, b"open", TEXT, Some(b"y"), Some(&foreign));
    assert_eq!(
        dead_letters(&server, "response_topic_not_allowed", 1).len(),
        1
    );
    let arrived = count_arrivals(&rx, &raw.response_topic, Duration::from_secs(2));
    assert_eq!(arrived, ["home/door/cmd"], "{}", server.log());
}

#[test]
fn show_replies_are_capped_and_ask_fetches_every_page() {
    let broker = Broker::start();
    let prefix = unique_prefix("amplify");
    let server = Server::start(&broker, &prefix);
    // 1,000,000 bytes: 10,000 lines of 99 characters.
    let content: String = (0..10_000)
        .map(|i| format!("{i:05} {}\n", "x".repeat(93)))
        .collect();
    std::fs::write(server.data_dir().join("big.txt"), &content).expect("write big.txt");

    let raw = RawClient::connect(&broker, &prefix, &format!("{prefix}-raw"));
    let request = br#"{"action":"show","file":"big.txt"}"#;
    let mut total = 0;
    for i in 0..20u8 {
        let reply = raw.request(&prefix, "edit", request, JSON, Some(&[i]));
        assert_eq!(reply.code(), "ok", "{}", reply.text());
        assert!(
            reply.payload.len() <= SHOW_REPLY_MAX,
            "a {} byte request got a {} byte reply",
            request.len(),
            reply.payload.len()
        );
        total += reply.payload.len();
    }
    assert!(total <= 20 * SHOW_REPLY_MAX, "{total}");
    eprintln!(
        "20 show requests of {} bytes: {total} reply bytes",
        request.len()
    );

    let out = mqttapp(&broker, &prefix)
        .args(["ask", "edit", "--show", "--file", "big.txt"])
        .output()
        .expect("run ask");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), content.len());
    assert!(out.stdout == content.as_bytes(), "ask printed another text");

    // The same through the pipelined batch, in input order (with --json:
    // a plain batch prints one line per request, so it refuses `show`).
    let out = mqttapp(&broker, &prefix)
        .args(["ask", "--batch", "--json"])
        .write_stdin("show --file big.txt\ncalc 1+1\n")
        .output()
        .expect("run ask --batch");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "batch printed {} bytes", text.len());
    assert!(
        lines[0]["ok"]["content"] == content.as_str(),
        "batch printed another text"
    );
    assert_eq!(lines[1]["ok"], 2);
}
