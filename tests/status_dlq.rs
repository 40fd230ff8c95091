//! `mqttapp status` (the servers' retained statuses, the MQTT will of a
//! crashed server) and `mqttapp dlq` (list, replay, purge the dead letters
//! of a data directory), through the real binary.

mod common;

use std::time::Duration;

use common::load::LoadClient;
use common::{hold_edit_lock, mqttapp, unique_prefix, wait_until, Broker, Server};
use predicates::prelude::*;

fn status_json(broker: &Broker, prefix: &str) -> Vec<serde_json::Value> {
    let out = mqttapp(broker, prefix)
        .args(["status", "--json"])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).expect("status --json prints a JSON array")
}

#[test]
fn status_lists_every_server_with_state_ops_version_since_and_group() {
    let broker = Broker::start();
    let prefix = unique_prefix("status");
    let _a = Server::start_with(
        &broker,
        &prefix,
        &broker.dir().join("a"),
        &["--server-id", "alpha"],
    );
    let _b = Server::start_with(
        &broker,
        &prefix,
        &broker.dir().join("b"),
        &["--server-id", "beta", "--group", "g"],
    );
    let version = env!("CARGO_PKG_VERSION");
    let out = mqttapp(&broker, &prefix).arg("status").assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("ID "), "{text}");
    for (line, id, group) in [(lines[1], "alpha", "-"), (lines[2], "beta", "g")] {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            cells[..4],
            [id, "online", "calc,echo,edit", version],
            "{text}"
        );
        assert!(cells[4].ends_with('Z'), "since is a UTC time: {text}");
        assert_eq!(cells[5], group, "{text}");
    }
    let rows = status_json(&broker, &prefix);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["id"], "beta");
    assert_eq!(rows[1]["group"], "g");
    assert_eq!(rows[0]["ops"], serde_json::json!(["calc", "echo", "edit"]));
    assert!(rows[0]["since"].as_u64().unwrap() > 1_600_000_000);
}

#[test]
fn a_killed_server_shows_offline_through_its_will_and_ask_fails_fast_with_exit_6() {
    let broker = Broker::start();
    let prefix = unique_prefix("will");
    let mut server = Server::start(&broker, &prefix);
    server.kill();
    wait_until(
        "the will to mark the server offline",
        Duration::from_secs(10),
        || {
            status_json(&broker, &prefix)
                .first()
                .is_some_and(|row| row["state"] == "offline")
        },
    );
    mqttapp(&broker, &prefix)
        .arg("status")
        .assert()
        .code(6)
        .stdout(predicate::str::contains("offline"))
        .stderr(predicate::str::contains("no server online"));
    // Well within its 30 s timeout: exit 6, not 5.
    mqttapp(&broker, &prefix)
        .args(["ask", "--timeout", "30", "calc", "1+1"])
        .assert()
        .code(6)
        .stderr(predicate::str::contains("no server online"));
}

#[test]
fn status_without_any_server_exits_6_and_prints_an_empty_json_list() {
    let broker = Broker::start();
    let prefix = unique_prefix("nostatus");
    mqttapp(&broker, &prefix)
        .args(["status", "--json"])
        .assert()
        .code(6)
        .stdout("[]\n");
}

/// Makes two dead letters: an `expired` edit (correlation "late", held
/// inside the server behind a blocked edit) and an `unknown_op` request.
fn two_dead_letters(server: &Server, client: &LoadClient, prefix: &str) {
    let lock = hold_edit_lock(server.data_dir(), "notes.txt");
    let edit = format!("{prefix}/v1/req/edit");
    client.send(&edit, br#"{"action":"append","text":"x"}"#, b"edit", None);
    client.send(
        &edit,
        br#"{"action":"append","text":"late"}"#,
        b"late",
        Some(1),
    );
    std::thread::sleep(Duration::from_millis(2500));
    drop(lock);
    let nope = format!("{prefix}/v1/req/nope");
    client.send(&nope, b"1", b"nope", None);
    for _ in 0..2 {
        client
            .next(Duration::from_secs(20))
            .expect("the edit's and nope's replies");
    }
}

fn dlq(broker: &Broker, prefix: &str, server: &Server) -> assert_cmd::Command {
    let mut cmd = mqttapp(broker, prefix);
    cmd.arg("dlq").arg("--data-dir").arg(server.data_dir());
    cmd
}

fn letters(broker: &Broker, prefix: &str, server: &Server) -> Vec<serde_json::Value> {
    let out = dlq(broker, prefix, server)
        .args(["list", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("dlq list --json prints a JSON array")
}

#[test]
fn dlq_lists_replays_and_purges_dead_letters_that_survive_a_restart() {
    let broker = Broker::start();
    let prefix = unique_prefix("dlq");
    let mut server = Server::start(&broker, &prefix);
    let client = LoadClient::connect(&broker, &prefix, &format!("{prefix}-c"));
    two_dead_letters(&server, &client, &prefix);
    let table = dlq(&broker, &prefix, &server)
        .arg("list")
        .assert()
        .success();
    let text = String::from_utf8(table.get_output().stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.contains("expired") && text.contains("unknown_op"),
        "{text}"
    );
    assert_eq!(server.terminate(), Some(0));
    server.restart();
    let stored = letters(&broker, &prefix, &server);
    assert_eq!(stored.len(), 2, "dead letters survive a restart");
    let expired = stored
        .iter()
        .find(|l| l["reason"] == "expired")
        .expect("expired letter");
    let id = expired["id"].as_str().unwrap();
    dlq(&broker, &prefix, &server)
        .args(["replay", id])
        .assert()
        .success()
        .stderr("replayed 1 dead letter(s)\n");
    let (correlation, payload) = client
        .next(Duration::from_secs(20))
        .expect("the replayed reply");
    assert_eq!(correlation.as_slice(), &b"late"[..]);
    let reply = String::from_utf8_lossy(&payload);
    assert!(
        reply.contains("\"rev\""),
        "the replayed edit is applied: {reply}"
    );
    let left = letters(&broker, &prefix, &server);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["reason"], "unknown_op");
    dlq(&broker, &prefix, &server)
        .args(["replay", "no-such-id"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no-such-id"));
    dlq(&broker, &prefix, &server)
        .args(["purge", "--all"])
        .assert()
        .success()
        .stderr("purged 1 dead letter(s)\n");
    assert!(letters(&broker, &prefix, &server).is_empty());
}

#[test]
fn dlq_replay_without_an_online_server_keeps_the_letters_and_exits_6() {
    let broker = Broker::start();
    let prefix = unique_prefix("dlqdown");
    let mut server = Server::start(&broker, &prefix);
    let client = LoadClient::connect(&broker, &prefix, &format!("{prefix}-c"));
    two_dead_letters(&server, &client, &prefix);
    assert_eq!(server.terminate(), Some(0));
    dlq(&broker, &prefix, &server)
        .args(["replay", "--all"])
        .assert()
        .code(6)
        .stderr(predicate::str::contains("nothing was removed"));
    assert_eq!(letters(&broker, &prefix, &server).len(), 2);
    dlq(&broker, &prefix, &server)
        .args(["purge"])
        .assert()
        .code(2);
}
