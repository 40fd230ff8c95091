//! Message Expiry: the server does not work on requests nobody waits for
//! any more. A request whose expiry passes while it waits inside the server
//! becomes a dead letter with reason `expired`. A request whose expiry
//! passes while it waits in Mosquitto's queue is discarded by Mosquitto
//! itself: the server never sees it (documented in docs/RELIABILITY.md).

mod common;

use std::time::Duration;

use common::load::LoadClient;
use common::{hold_edit_lock, unique_prefix, Broker, Server};
use mqttapp::deadletter::{DeadLetter, DeadLetters, Reason};
use mqttapp::protocol::from_cbor;

#[test]
fn a_request_that_expires_while_queued_inside_the_server_becomes_an_expired_dead_letter() {
    let broker = Broker::start();
    let prefix = unique_prefix("expired");
    let server = Server::start(&broker, &prefix);
    let client = LoadClient::connect(&broker, &prefix, &format!("{prefix}-c"));
    client
        .client
        .subscribe(format!("{prefix}/v1/dlq"), 1)
        .wait_for(Duration::from_secs(30))
        .expect("subscribe to the dead-letter topic");
    let lock = hold_edit_lock(server.data_dir(), "notes.txt");
    let edit = format!("{prefix}/v1/req/edit");
    client.send(&edit, br#"{"action":"append","text":"x"}"#, b"edit", None);
    // A second edit waits behind the blocked one, inside the server (in
    // the edit lane: calc and echo have their own), past its one-second
    // expiry.
    client.send(
        &edit,
        br#"{"action":"append","text":"late"}"#,
        b"late",
        Some(1),
    );
    std::thread::sleep(Duration::from_millis(2500));
    drop(lock);
    // The edit's reply and the dead letter's announcement, in either order
    // (both edits may be in one burst, whose replies wait for its commit).
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(client.next(Duration::from_secs(20)).expect("two messages"));
    }
    got.sort();
    let [(none, announcement), (correlation, _)] = <[_; 2]>::try_from(got).unwrap();
    assert_eq!(correlation, b"edit");
    assert!(none.is_empty(), "the late edit must not be answered");
    let letter: DeadLetter = from_cbor(&announcement).expect("a CBOR dead letter");
    assert_eq!(letter.reason, Reason::Expired);
    assert_eq!(
        letter.correlation_hex.as_deref(),
        Some(hex(b"late").as_str())
    );
    let stored = DeadLetters::new(server.data_dir(), "x").list().unwrap();
    assert_eq!(stored, vec![letter]);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_request_that_expires_in_the_brokers_queue_is_discarded_by_mosquitto() {
    let broker = Broker::start();
    let prefix = unique_prefix("brokerexp");
    let mut server = Server::start(&broker, &prefix);
    assert_eq!(server.terminate(), Some(0));
    let client = LoadClient::connect(&broker, &prefix, &format!("{prefix}-c"));
    let calc = format!("{prefix}/v1/req/calc");
    for (correlation, expiry) in [(&b"short"[..], 1), (&b"long"[..], 120)] {
        client.send(&calc, b"1+1", correlation, Some(expiry));
    }
    std::thread::sleep(Duration::from_millis(2500));
    server.restart();
    let (correlation, payload) = client.next(Duration::from_secs(20)).expect("a reply");
    assert_eq!(
        (correlation.as_slice(), payload.as_slice()),
        (&b"long"[..], &b"2"[..])
    );
    assert!(
        client.next(Duration::from_secs(1)).is_none(),
        "the expired one is gone"
    );
    let stored = DeadLetters::new(server.data_dir(), "x").list().unwrap();
    assert!(
        stored.is_empty(),
        "Mosquitto dropped it before the server saw it"
    );
}
