//! The server is killed with SIGKILL (no goodbye) in the middle of a load
//! of edits and calcs and started again. Requests it had taken from the
//! broker but not answered are gone with it (paho acknowledges on
//! receipt), so clients re-send with the same correlation data; the server
//! answers replays of edits from its reply memory. Counted by correlation
//! data: every request answered, every edit in the file exactly once.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::load::LoadClient;
use common::resend::{client_config, resending};
use common::workload::{check_mixed, mixed};
use common::{unique_prefix, Broker, Server};

/// Waits until `done` reaches `n` (bounded: the load thread may be stuck).
fn wait_for_progress(done: &AtomicUsize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while done.load(Ordering::SeqCst) < n {
        assert!(Instant::now() < deadline, "no progress past {n} requests");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn killing_the_server_twice_mid_load_loses_nothing_and_applies_each_edit_once() {
    let broker = Broker::start();
    let prefix = unique_prefix("kill");
    let mut server = Server::start(&broker, &prefix);
    let config = client_config(&broker, &prefix, 20);
    let (clients, per_client) = (8, 30);
    let done = AtomicUsize::new(0);
    let outcome = thread::scope(|s| {
        let load = s.spawn(|| resending(&config, clients, per_client, mixed, &done));
        for at in [60, 150] {
            wait_for_progress(&done, at);
            server.restart();
        }
        load.join().expect("load thread")
    });
    let file = std::fs::read_to_string(server.data_dir().join("notes.txt")).unwrap();
    check_mixed(&outcome, clients, per_client, &file);
    let replays = server
        .log()
        .matches("answered from the reply memory")
        .count();
    eprintln!(
        "answered after a re-send: {}, edits answered from the reply memory: {replays}, \
         restarted exchanges: {}, waits for a server: {}",
        outcome.resent, outcome.exchange_retries, outcome.no_server
    );
}

/// Publishes 10 calcs and 5 appends while no server runs, then starts one
/// and checks every request is answered and applied once.
fn requests_queued_while_down_are_answered(stop: fn(&mut Server)) {
    let broker = Broker::start();
    let prefix = unique_prefix("down");
    let mut server = Server::start(&broker, &prefix);
    stop(&mut server);
    let client = LoadClient::connect(&broker, &prefix, &format!("{prefix}-c"));
    for i in 0..15 {
        let (topic, payload) = if i < 10 {
            ("calc", format!("{i}*2"))
        } else {
            (
                "edit",
                format!(r#"{{"action":"append","text":"line {i}"}}"#),
            )
        };
        // The broker accepts requests for a stopped server.
        client.send(
            &format!("{prefix}/v1/req/{topic}"),
            payload.as_bytes(),
            format!("q{i}").as_bytes(),
            Some(120),
        );
    }
    server.restart();
    let mut answered = std::collections::BTreeMap::new();
    while answered.len() < 15 {
        let (correlation, payload) = client
            .next(Duration::from_secs(20))
            .unwrap_or_else(|| panic!("only {} of 15 answered:\n{}", answered.len(), server.log()));
        answered.insert(String::from_utf8(correlation).unwrap(), payload);
    }
    assert_eq!(answered["q3"], b"6");
    let file = std::fs::read_to_string(server.data_dir().join("notes.txt")).unwrap();
    assert_eq!(file, "line 10\nline 11\nline 12\nline 13\nline 14\n");
    assert!(
        server.log().contains("session_resumed=true"),
        "{}\n{}",
        server.log(),
        broker.log()
    );
}

#[test]
fn requests_sent_while_the_server_is_crashed_are_answered_when_it_is_back() {
    requests_queued_while_down_are_answered(|s| s.kill());
}

#[test]
fn requests_sent_while_the_server_is_stopped_are_answered_when_it_is_back() {
    requests_queued_while_down_are_answered(|s| {
        assert_eq!(s.terminate(), Some(0));
    });
}

#[test]
fn session_expiry_is_configurable_and_a_short_one_ends_with_the_server() {
    let broker = Broker::start();
    let prefix = unique_prefix("expiry");
    let data = broker.dir().join("data");
    let mut server = Server::start_with(&broker, &prefix, &data, &["--session-expiry", "1s"]);
    assert_eq!(server.terminate(), Some(0));
    // Mosquitto checks for expired sessions about once a second.
    thread::sleep(Duration::from_secs(3));
    server.restart();
    assert!(
        server.log().contains("session_resumed=false"),
        "{}",
        server.log()
    );
}

#[test]
fn a_replayed_edit_is_answered_from_the_reply_memory_even_after_a_crash() {
    let broker = Broker::start();
    let prefix = unique_prefix("replay");
    let mut server = Server::start(&broker, &prefix);
    let client = LoadClient::connect(&broker, &prefix, &format!("{prefix}-c"));
    let edit = |text: &str, correlation: &[u8]| {
        let payload = format!(r#"{{"action":"append","text":"{text}"}}"#);
        let topic = format!("{prefix}/v1/req/edit");
        client.send(&topic, payload.as_bytes(), correlation, None);
        let (c, reply) = client.next(Duration::from_secs(20)).expect("a reply");
        assert_eq!(c, correlation);
        String::from_utf8(reply).unwrap()
    };
    let first = edit("once", b"same-id");
    assert_eq!(first, r#"{"ok":{"file":"notes.txt","rev":1,"lines":1}}"#);
    server.kill();
    server.restart();
    assert_eq!(
        edit("once", b"same-id"),
        first,
        "a replay gets the original reply"
    );
    assert_eq!(
        edit("twice", b"other-id"),
        r#"{"ok":{"file":"notes.txt","rev":2,"lines":2}}"#
    );
    let file = std::fs::read_to_string(server.data_dir().join("notes.txt")).unwrap();
    assert_eq!(file, "once\ntwice\n");
    assert!(server.log().contains("answered from the reply memory"));
}
