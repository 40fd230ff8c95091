//! The broker is killed with SIGKILL (persistence on) and started again:
//! the server reconnects by itself with backoff and resubscribes, clients
//! reconnect and re-send, and every request completes exactly once.

mod common;

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use common::resend::{client_config, resending};
use common::workload::{check_mixed, mixed};
use common::{mqttapp, mqttapp_std, unique_prefix, wait_output, wait_until, Broker, Server};

#[test]
fn the_server_recovers_by_itself_after_a_broker_kill_and_pending_requests_complete() {
    let mut broker = Broker::start();
    let prefix = unique_prefix("bkill");
    let mut server = Server::start(&broker, &prefix);
    let config = client_config(&broker, &prefix, 30);
    let (clients, per_client) = (6, 30);
    let done = AtomicUsize::new(0);
    let outcome = thread::scope(|s| {
        let load = s.spawn(|| resending(&config, clients, per_client, mixed, &done));
        wait_until("some progress", Duration::from_secs(60), || {
            done.load(Ordering::SeqCst) >= 50
        });
        broker.kill();
        thread::sleep(Duration::from_millis(500));
        broker.restart();
        load.join().expect("load thread")
    });
    server.wait_for_log("reconnected", Duration::from_secs(30));
    let file = std::fs::read_to_string(server.data_dir().join("notes.txt")).unwrap();
    check_mixed(&outcome, clients, per_client, &file);
    eprintln!(
        "answered after a re-send: {}, restarted exchanges: {}, waits for a server: {}",
        outcome.resent, outcome.exchange_retries, outcome.no_server
    );
}

#[test]
fn the_server_resubscribes_when_the_restarted_broker_lost_its_session() {
    let mut broker = Broker::start();
    let prefix = unique_prefix("bfresh");
    let mut server = Server::start(&broker, &prefix);
    broker.restart_empty();
    server.wait_for_log("reconnected resumed=false", Duration::from_secs(30));
    mqttapp(&broker, &prefix)
        .args(["ask", "calc", "6*7"])
        .assert()
        .success()
        .stdout("42\n");
}

#[test]
fn an_ask_whose_connection_drops_mid_request_retries_within_its_timeout() {
    let mut broker = Broker::start();
    let prefix = unique_prefix("askdrop");
    let server = Server::start(&broker, &prefix);
    // A stopped server cannot answer: the request stays pending.
    server.signal("STOP");
    let child = mqttapp_std(&broker, &prefix)
        .args(["ask", "--timeout", "30", "calc", "6*7"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ask");
    wait_until(
        "ask's request at the broker",
        Duration::from_secs(20),
        || {
            broker.log().lines().any(|l| {
                l.contains("Received PUBLISH from mqttapp-ask-") && l.contains("/v1/req/calc")
            })
        },
    );
    broker.kill();
    thread::sleep(Duration::from_millis(300));
    broker.restart();
    server.signal("CONT");
    let out = wait_output(child, Duration::from_secs(40));
    assert!(
        out.status.success(),
        "ask failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");
}
