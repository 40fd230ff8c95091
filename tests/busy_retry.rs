//! `busy` means "refused at capacity, not applied": `ask`, `ask --batch`
//! and `bench` back off and send the same request again (same correlation
//! data) within their timeout, and report a server that stays busy
//! clearly. The server is a fake responder on the real broker: a raw MQTT
//! client that answers `busy` to the first copies of each request, and
//! publishes a retained online status so `ask` does not fail fast.
//! No timing assertions: every copy is counted.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use common::{mqttapp, unique_prefix, Broker};
use mqttapp::protocol::{encode_reply, Encoding, ErrorCode, OkValue, Reply, Status};
use paho_mqtt as paho;

/// What every request is answered with once it is no longer refused.
const ANSWER: i64 = 7;

/// A raw responder that answers `busy` to the first `refusals` copies of
/// every request (copies recognised by their correlation data), then `ok`.
struct BusyResponder {
    stop: Arc<AtomicBool>,
    /// Correlation data -> copies received.
    copies: Arc<Mutex<HashMap<Vec<u8>, u32>>>,
    thread: Option<JoinHandle<()>>,
}

impl BusyResponder {
    fn start(broker: &Broker, prefix: &str, refusals: u32) -> BusyResponder {
        let (client, rx, _) = common::raw::connect_subscribed(broker, prefix, "busy-responder");
        client
            .subscribe(format!("{prefix}/v1/req/#"), 1)
            .wait_for(Duration::from_secs(10))
            .expect("the responder subscribes to the requests");
        let status = Status {
            state: Status::ONLINE.into(),
            ops: vec!["calc".into(), "echo".into(), "edit".into()],
            version: "fake".into(),
            since: 1,
            group: None,
            instance: None,
            data_dir: None,
        };
        client
            .publish(paho::Message::new_retained(
                format!("{prefix}/v1/status/fake"),
                status.encode(),
                1,
            ))
            .wait_for(Duration::from_secs(10))
            .expect("the responder publishes its status");
        let stop = Arc::new(AtomicBool::new(false));
        let copies = Arc::new(Mutex::new(HashMap::new()));
        let (stop_, copies_) = (stop.clone(), copies.clone());
        let thread = std::thread::spawn(move || {
            while !stop_.load(Ordering::SeqCst) {
                let Ok(Some(msg)) = rx.recv_timeout(Duration::from_millis(50)) else {
                    continue;
                };
                if !msg.topic().contains("/v1/req/") {
                    continue;
                }
                answer(&client, &msg, refusals, &copies_);
            }
        });
        BusyResponder {
            stop,
            copies,
            thread: Some(thread),
        }
    }

    /// Copies received per request, in no particular order.
    fn copies(&self) -> Vec<u32> {
        self.copies.lock().unwrap().values().copied().collect()
    }
}

impl Drop for BusyResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer(
    client: &paho::AsyncClient,
    msg: &paho::Message,
    refusals: u32,
    copies: &Mutex<HashMap<Vec<u8>, u32>>,
) {
    let props = msg.properties();
    let (Some(response_topic), Some(correlation)) = (
        props.get_string(paho::PropertyCode::ResponseTopic),
        props.get_binary(paho::PropertyCode::CorrelationData),
    ) else {
        panic!("a request without response topic or correlation data");
    };
    let copy = {
        let mut copies = copies.lock().unwrap();
        let n = copies.entry(correlation.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let reply = if copy <= refusals {
        Reply::error(ErrorCode::Busy, "the request queue is full")
    } else {
        Reply::Ok(OkValue::Int(ANSWER))
    };
    let mut p = paho::Properties::new();
    p.push_binary(paho::PropertyCode::CorrelationData, correlation)
        .unwrap();
    p.push_string(paho::PropertyCode::ContentType, "application/cbor")
        .unwrap();
    let reply = paho::MessageBuilder::new()
        .topic(response_topic)
        .payload(encode_reply(&reply, Encoding::Cbor))
        .qos(1)
        .properties(p)
        .finalize();
    let _ = client.publish(reply).wait_for(Duration::from_secs(10));
}

/// Every request reached the responder at least `at_least` times, each time
/// with the same correlation data: `requests` distinct values, no more.
fn assert_resent_with_the_same_correlation(r: &BusyResponder, requests: usize, at_least: u32) {
    let copies = r.copies();
    assert_eq!(
        copies.len(),
        requests,
        "distinct correlation data: {copies:?}"
    );
    assert!(
        copies.iter().all(|&n| n >= at_least),
        "copies per request: {copies:?}"
    );
    let shortest = r.copies.lock().unwrap().keys().map(Vec::len).min();
    assert!(shortest >= Some(16), "128 bits of correlation data");
}

#[test]
fn a_one_shot_ask_is_answered_after_busy_replies() {
    let broker = Broker::start();
    let prefix = unique_prefix("busy-ask");
    let responder = BusyResponder::start(&broker, &prefix, 2);
    mqttapp(&broker, &prefix)
        .args(["ask", "calc", "2+3"])
        .assert()
        .success()
        .stdout(format!("{ANSWER}\n"));
    assert_resent_with_the_same_correlation(&responder, 1, 3);
}

#[test]
fn a_batch_is_answered_after_busy_replies() {
    let broker = Broker::start();
    let prefix = unique_prefix("busy-batch");
    let responder = BusyResponder::start(&broker, &prefix, 2);
    let lines = 20;
    let input: String = (0..lines).map(|i| format!("calc {i}+1\n")).collect();
    let out = mqttapp(&broker, &prefix)
        .args(["ask", "--batch"])
        .write_stdin(input)
        .assert()
        .success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(stdout, format!("{ANSWER}\n").repeat(lines), "{stdout}");
    assert_resent_with_the_same_correlation(&responder, lines, 3);
}

#[test]
fn a_shell_session_is_answered_after_busy_replies() {
    let broker = Broker::start();
    let prefix = unique_prefix("busy-shell");
    let responder = BusyResponder::start(&broker, &prefix, 2);
    mqttapp(&broker, &prefix)
        .arg("shell")
        .write_stdin("calc 1\necho hi\n")
        .assert()
        .success()
        .stdout(format!("{ANSWER}\n{ANSWER}\n"));
    assert_resent_with_the_same_correlation(&responder, 2, 3);
}

#[test]
fn bench_is_answered_after_busy_replies_and_counts_them() {
    let broker = Broker::start();
    let prefix = unique_prefix("busy-bench");
    let responder = BusyResponder::start(&broker, &prefix, 2);
    let count: u64 = 40;
    let out = mqttapp(&broker, &prefix)
        .args(["bench", "--count", &count.to_string(), "--connections", "2"])
        .args(["--window", "8", "--ops", "calc", "--json"])
        .assert()
        .success();
    let report: serde_json::Value =
        serde_json::from_slice(&out.get_output().stdout).expect("bench --json prints JSON");
    assert_eq!(report["ok"], count, "{report}");
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["busy_gave_up"], 0, "{report}");
    let busy = report["busy"].as_u64().expect("bench reports busy replies");
    assert!(busy >= 2 * count, "{report}");
    assert_resent_with_the_same_correlation(&responder, count as usize, 3);
}

#[test]
fn a_server_that_stays_busy_makes_ask_fail_with_server_busy_and_exit_5() {
    let broker = Broker::start();
    let prefix = unique_prefix("busy-forever");
    let responder = BusyResponder::start(&broker, &prefix, u32::MAX);
    mqttapp(&broker, &prefix)
        .env("MQTTAPP_TIMEOUT", "2")
        .args(["ask", "calc", "1"])
        .assert()
        .code(5)
        .stdout("")
        .stderr(predicates::str::contains("server busy"));
    assert_resent_with_the_same_correlation(&responder, 1, 2);
}

#[test]
fn a_batch_line_whose_server_stays_busy_says_busy() {
    let broker = Broker::start();
    let prefix = unique_prefix("busy-forever-batch");
    let responder = BusyResponder::start(&broker, &prefix, u32::MAX);
    let out = mqttapp(&broker, &prefix)
        .env("MQTTAPP_TIMEOUT", "2")
        .args(["ask", "--batch"])
        .write_stdin("calc 1\ncalc 2\n")
        .assert()
        .code(1);
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(
        stdout
            .lines()
            .all(|l| l.starts_with("error: busy: server busy")),
        "{stdout}"
    );
    assert_resent_with_the_same_correlation(&responder, 2, 2);
}
