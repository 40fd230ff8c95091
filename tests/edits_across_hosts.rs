//! Edits across hosts: servers of one group with two data directories
//! (two hosts). Each edit must be applied exactly once, in one place, with
//! one revision history: the second data directory's server refuses to
//! take edits, or runs with `--no-edit` and answers calc and echo only.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{mqttapp, mqttapp_std, unique_prefix, wait_output, wait_until, Broker, Server};

/// Appends through the group `n` times; returns the revisions reported.
fn append_n(broker: &Broker, prefix: &str, n: usize) -> Vec<u64> {
    (1..=n)
        .map(|i| {
            let out = mqttapp(broker, prefix)
                .args([
                    "ask",
                    "--json",
                    "edit",
                    "--file",
                    "notes.txt",
                    "--append",
                    &format!("line {i}"),
                ])
                .output()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
                panic!(
                    "append {i}: {} {}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
            });
            v["ok"]["rev"]
                .as_u64()
                .unwrap_or_else(|| panic!("append {i}: no revision in {v}"))
        })
        .collect()
}

fn lines_in(data_dir: &std::path::Path) -> usize {
    std::fs::read_to_string(data_dir.join("notes.txt"))
        .map(|t| t.lines().filter(|l| l.starts_with("line ")).count())
        .unwrap_or(0)
}

#[test]
fn a_second_data_directory_refuses_edits_and_serves_with_no_edit() {
    let broker = Broker::start();
    let prefix = unique_prefix("two_dirs");
    let host_a = tempfile::tempdir().unwrap();
    let host_b = tempfile::tempdir().unwrap();
    let _a = Server::start_with(
        &broker,
        &prefix,
        host_a.path(),
        &["--group", "g", "--server-id", "host-a"],
    );
    wait_until("host-a online", Duration::from_secs(10), || {
        mqttapp(&broker, &prefix)
            .args(["status"])
            .output()
            .unwrap()
            .status
            .success()
    });
    // A member with another data directory that would take edits: refused.
    let refused = mqttapp_std(&broker, &prefix)
        .args(["serve", "--group", "g", "--server-id", "host-b"])
        .env("MQTTAPP_DATA_DIR", host_b.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(refused, Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--no-edit"), "{err}");
    // With --no-edit it joins the group for calc and echo.
    let _b = Server::start_with(
        &broker,
        &prefix,
        host_b.path(),
        &["--group", "g", "--server-id", "host-b", "--no-edit"],
    );
    let n = 30;
    let revs = append_n(&broker, &prefix, n);
    assert_eq!(
        revs,
        (1..=n as u64).collect::<Vec<_>>(),
        "one revision history"
    );
    assert_eq!(
        lines_in(host_a.path()),
        n,
        "every append in host A's file once"
    );
    assert_eq!(lines_in(host_b.path()), 0, "nothing applied on host B");
    // Both members answer calc.
    for _ in 0..10 {
        let out = mqttapp(&broker, &prefix)
            .args(["ask", "calc", "2+3"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "5\n");
    }
}

#[test]
fn servers_sharing_one_data_directory_may_both_take_edits() {
    let broker = Broker::start();
    let prefix = unique_prefix("one_dir");
    let shared = tempfile::tempdir().unwrap();
    let _a = Server::start_with(
        &broker,
        &prefix,
        shared.path(),
        &["--group", "g", "--server-id", "one-a"],
    );
    let _b = Server::start_with(
        &broker,
        &prefix,
        shared.path(),
        &["--group", "g", "--server-id", "one-b"],
    );
    let n = 30;
    let revs = append_n(&broker, &prefix, n);
    assert_eq!(revs, (1..=n as u64).collect::<Vec<_>>());
    assert_eq!(lines_in(shared.path()), n);
}

/// A member upgraded in place resumes a session that still holds the old
/// `$share/<group>/.../req/+` subscription; with the new per-operation
/// filters both would match every request and deliver it twice. The
/// server drops the filters it does not use: 20 requests, 20 replies.
#[test]
fn an_old_catch_all_group_subscription_in_the_session_is_dropped() {
    use paho_mqtt as paho;
    let broker = Broker::start();
    let prefix = unique_prefix("old_filter");
    // The session as the previous version left it.
    let uri = mqttapp::mqtt::BrokerUri::parse(&broker.url()).unwrap();
    let old = mqttapp::mqtt::create_client(&uri, "mqttapp-serve-upgraded", false).unwrap();
    let mut props = paho::Properties::new();
    props
        .push_u32(paho::PropertyCode::SessionExpiryInterval, 600)
        .unwrap();
    old.connect(
        paho::ConnectOptionsBuilder::new_v5()
            .clean_start(false)
            .properties(props)
            .finalize(),
    )
    .wait_for(Duration::from_secs(10))
    .unwrap();
    old.subscribe(format!("$share/g/{prefix}/v1/req/+"), 1)
        .wait_for(Duration::from_secs(10))
        .unwrap();
    old.disconnect(None)
        .wait_for(Duration::from_secs(10))
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &broker,
        &prefix,
        data.path(),
        &["--group", "g", "--server-id", "upgraded"],
    );
    let client = common::raw::RawClient::connect(&broker, &prefix, "counter");
    let n = 20;
    for i in 0..n {
        let correlation = format!("c{i}");
        client.send(
            &format!("{prefix}/v1/req/echo"),
            b"hi",
            Some("text/plain"),
            Some(correlation.as_bytes()),
            Some(&client.response_topic),
        );
    }
    let mut replies = 0;
    while client.next(Duration::from_secs(3)).is_some() {
        replies += 1;
    }
    assert_eq!(replies, n, "{}", server.log());
}
