//! Replays under load: a client's re-sent copies of an edit queue up
//! inside a busy server; each must be answered from the reply memory, never
//! applied a second time, and a replay key reused for a different request
//! must be refused rather than answered with another request's reply.
//!
//! Real Mosquitto, real `mqttapp serve`, real `mqttapp ask --batch`.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::raw::{connect_subscribed, RawClient};
use common::{mqttapp_std, unique_prefix, Broker, Server};
use paho_mqtt as paho;

/// Raw clients flooding keyed edits.
const FLOODERS: usize = 2;
/// Keyed `replace line 1` edits each flooder sends.
const FLOOD_EACH: usize = 1_500;
/// Unique appends sent by `ask --batch` while the flood runs.
const APPENDS: usize = 300;
/// Filler lines that make the file big (each rewrite costs real I/O).
const FILLER_LINES: usize = 10;
/// Bytes per filler line and per "big" replacement text.
const BIG: usize = 60_000;

/// One flooder: a raw client that publishes `FLOOD_EACH` keyed edits of
/// line 1 of `file`, alternating a big and a small text, as fast as the
/// broker acknowledges them. Returns how many replies came back.
fn flood(broker: &Broker, prefix: &str, id: usize, file: &str, stop: &AtomicBool) -> usize {
    let (client, rx, response_topic) = connect_subscribed(broker, prefix, &format!("flood{id}"));
    let topic = format!("{prefix}/v1/req/edit");
    let big = "b".repeat(BIG);
    for n in 0..FLOOD_EACH {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let text = if n % 2 == 0 { big.as_str() } else { "small" };
        let payload = format!(r#"{{"action":"replace","line":1,"text":"{text}","file":"{file}"}}"#);
        let mut props = paho::Properties::new();
        props
            .push_string(paho::PropertyCode::ResponseTopic, &response_topic)
            .unwrap();
        props
            .push_binary(
                paho::PropertyCode::CorrelationData,
                format!("flood-{id}-{n}").into_bytes(),
            )
            .unwrap();
        props
            .push_string(paho::PropertyCode::ContentType, "application/json")
            .unwrap();
        let msg = paho::MessageBuilder::new()
            .topic(&topic)
            .payload(payload)
            .qos(1)
            .properties(props)
            .finalize();
        client.publish(msg).wait().expect("flood publish");
    }
    let mut replies = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while replies < FLOOD_EACH && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Some(_)) => replies += 1,
            _ => break,
        }
    }
    let _ = client.disconnect(None).wait();
    replies
}

/// Scenario A: two raw clients flood keyed edits into one big file while
/// `ask --batch` appends unique lines to it; `ask` re-sends what is not
/// answered within a second, and the copies queue up behind the flood.
/// Every append must be in the file at most once, and every append
/// answered `rev N` exactly once.
#[test]
fn resent_appends_queued_behind_a_flood_are_applied_once() {
    let broker = Broker::start_quiet();
    let prefix = unique_prefix("replayflood");
    let data_dir = broker.dir().join("data-replayflood");
    std::fs::create_dir_all(&data_dir).unwrap();
    let filler: String = (0..FILLER_LINES)
        .map(|i| format!("{}\n", char::from(b'a' + i as u8).to_string().repeat(BIG)))
        .collect();
    std::fs::write(data_dir.join("log.txt"), format!("first\n{filler}")).unwrap();
    let server = Server::start_with(&broker, &prefix, &data_dir, &[]);

    let stop = AtomicBool::new(false);
    let broker_ref = &broker;
    let (flood_replies, out) = thread::scope(|s| {
        let handles: Vec<_> = (0..FLOODERS)
            .map(|id| {
                let (prefix, stop) = (prefix.as_str(), &stop);
                s.spawn(move || flood(broker_ref, prefix, id, "log.txt", stop))
            })
            .collect();
        // Let the flood build a backlog first.
        thread::sleep(Duration::from_millis(300));
        let input: String = (0..APPENDS)
            .map(|i| format!("edit --file log.txt --append u-{i}\n"))
            .collect();
        let mut child = mqttapp_std(broker_ref, &prefix)
            .args(["ask", "--batch", "--timeout", "90"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ask --batch");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().expect("ask --batch output");
        stop.store(true, Ordering::Relaxed);
        let replies: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        (replies, out)
    });

    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let results: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        results.len(),
        APPENDS,
        "one result line per append; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let content = std::fs::read_to_string(data_dir.join("log.txt")).unwrap();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for line in content.lines().filter(|l| l.starts_with("u-")) {
        *counts.entry(line).or_default() += 1;
    }
    let extra: usize = counts.values().map(|c| c - 1).sum();
    let mut answered_missing = Vec::new();
    let mut answered = 0;
    for (i, result) in results.iter().enumerate() {
        if result.starts_with("log.txt: rev ") {
            answered += 1;
            if counts.get(format!("u-{i}").as_str()).copied().unwrap_or(0) != 1 {
                answered_missing.push(i);
            }
        }
    }
    eprintln!(
        "flood replies {flood_replies}, appends answered {answered}/{APPENDS}, \
         extra applications {extra}, answered but not present once {}",
        answered_missing.len()
    );
    assert_eq!(
        extra,
        0,
        "appends applied more than once ({extra} extra applications); server log:\n{}",
        tail(&server.log())
    );
    assert!(
        answered_missing.is_empty(),
        "appends answered `rev N` but not in the file exactly once: {answered_missing:?}"
    );
    assert_eq!(answered, APPENDS, "every append answered: {stdout}");
}

/// A replay key (response topic + correlation data) that comes back with a
/// different request is refused with `conflict`, never answered with the
/// first request's reply (which would tell the client a change was made
/// that never was).
#[test]
fn a_reused_key_with_different_content_is_a_conflict() {
    let broker = Broker::start();
    let prefix = unique_prefix("replaykey");
    let server = Server::start(&broker, &prefix);
    let client = RawClient::connect(&broker, &prefix, "reuser");
    let json = Some("application/json");
    let key: &[u8] = b"same-correlation";
    let first = br#"{"action":"append","text":"first","file":"k.txt"}"#;
    let second = br#"{"action":"append","text":"second","file":"k.txt"}"#;

    let reply = client.request(&prefix, "edit", first, json, Some(key));
    assert_eq!(reply.code(), "ok", "{}", reply.text());
    let reply = client.request(&prefix, "edit", second, json, Some(key));
    assert_eq!(reply.code(), "conflict", "{}", reply.text());
    assert!(
        reply.text().contains("correlation data"),
        "the message says why: {}",
        reply.text()
    );
    // The genuine re-send is still answered from the reply memory.
    let reply = client.request(&prefix, "edit", first, json, Some(key));
    assert_eq!(reply.code(), "ok", "{}", reply.text());
    assert_eq!(
        std::fs::read_to_string(server.data_dir().join("k.txt")).unwrap(),
        "first\n"
    );
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
