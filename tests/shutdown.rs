//! Graceful shutdown: on SIGTERM or SIGINT the server answers every
//! request it already holds, publishes its "offline" status, disconnects
//! and exits 0.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::load::LoadClient;
use common::{hold_edit_lock, mqttapp, unique_prefix, wait_until, Broker, Server};

/// PUBACKs the server sent: each is a request now held inside it.
fn requests_taken(broker: &Broker) -> usize {
    broker
        .log()
        .matches("Received PUBACK from mqttapp-serve-")
        .count()
}

fn stop_with_requests_inside(signal: &str) {
    let broker = Broker::start();
    let prefix = unique_prefix(&format!("stop{signal}"));
    let mut server = Server::start(&broker, &prefix);
    let client = LoadClient::connect(&broker, &prefix, &format!("{prefix}-c"));
    // The server blocks on the first request (an edit whose file lock we
    // hold); the other 100 (edits too: calc and echo have their own lane)
    // queue up inside it behind that one.
    let lock = hold_edit_lock(server.data_dir(), "notes.txt");
    let edit = format!("{prefix}/v1/req/edit");
    client.send(&edit, br#"{"action":"append","text":"x"}"#, b"edit", None);
    for i in 0..100 {
        let payload = format!(r#"{{"action":"append","text":"{i}"}}"#);
        client.send(
            &edit,
            payload.as_bytes(),
            format!("{i}").as_bytes(),
            Some(60),
        );
    }
    wait_until(
        "the server to take all 101 requests",
        Duration::from_secs(20),
        || requests_taken(&broker) >= 101,
    );
    server.signal(signal);
    drop(lock);
    assert_eq!(
        server.wait_exit(Duration::from_secs(30)),
        Some(0),
        "{}",
        server.log()
    );
    let mut answered = BTreeSet::new();
    while answered.len() < 101 {
        let (correlation, _) = client.next(Duration::from_secs(10)).unwrap_or_else(|| {
            panic!("only {} of 101 answered:\n{}", answered.len(), server.log())
        });
        answered.insert(correlation);
    }
    mqttapp(&broker, &prefix)
        .args(["status"])
        .assert()
        .code(6)
        .stdout(predicates::str::contains("offline"));
    let dead = server.data_dir().join(".mqttapp/deadletters.jsonl");
    assert!(!dead.exists(), "nothing may be left unanswered");
    assert!(server.log().contains("stopped"), "{}", server.log());
}

#[test]
fn sigterm_answers_every_request_inside_the_server_publishes_offline_and_exits_0() {
    stop_with_requests_inside("TERM");
}

#[test]
fn sigint_stops_the_server_the_same_way() {
    stop_with_requests_inside("INT");
}
