//! Scale-out: several `serve` processes in one group (MQTT 5 shared
//! subscription `$share/<group>/...`) on one Mosquitto, sharing one data
//! directory. Each request is answered exactly once, the load is split,
//! edits stay exactly-once across processes (file lock + reply memory), and
//! losing a member loses nothing.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::load::{pipelined, LoadClient};
use common::resend::{client_config, resending};
use common::workload::{check_mixed, mixed};
use common::{unique_prefix, Broker, Server};

/// `n` servers `s1..sn` in group `g`, all on `data`; `-v` logs each answer.
fn group(broker: &Broker, prefix: &str, data: &Path, n: usize) -> Vec<Server> {
    (1..=n)
        .map(|i| {
            let id = format!("s{i}");
            Server::start_with(
                broker,
                prefix,
                data,
                &["--server-id", &id, "--group", "g", "-v"],
            )
        })
        .collect()
}

fn product(c: usize, i: usize) -> (&'static str, Vec<u8>, Vec<u8>) {
    (
        "calc",
        format!("{c}*{i}").into_bytes(),
        (c * i).to_string().into_bytes(),
    )
}

#[test]
fn three_servers_in_one_group_answer_each_request_exactly_once_and_share_the_load() {
    let broker = Broker::start();
    let prefix = unique_prefix("group");
    let servers = group(&broker, &prefix, &broker.dir().join("shared"), 3);
    let tally = pipelined(
        &broker,
        &prefix,
        20,
        150,
        product,
        Duration::from_secs(120),
        Duration::from_millis(500),
    );
    tally.assert_exactly_once(3_000);
    let shares: Vec<usize> = servers
        .iter()
        .map(|s| s.log().matches(" answered ").count())
        .collect();
    assert_eq!(shares.iter().sum::<usize>(), 3_000, "{shares:?}");
    assert!(
        shares.iter().all(|&n| n > 0),
        "every member takes a share: {shares:?}"
    );
}

/// Both members take bursts of edits that alternate between two files.
/// Each burst is committed as groups; a member holds one file's lock at a
/// time, so two members cannot each hold one file and wait for the other.
#[test]
fn two_members_editing_two_files_in_bursts_apply_each_edit_once_and_never_deadlock() {
    let broker = Broker::start();
    let prefix = unique_prefix("groupfiles");
    let data = broker.dir().join("shared");
    let _servers = group(&broker, &prefix, &data, 2);
    let per_batch = 300;
    let outputs: Vec<std::process::Output> = thread::scope(|s| {
        let runs: Vec<_> = ["p", "q"]
            .map(|who| {
                let input: String = (0..per_batch)
                    .map(|i| {
                        let file = if i % 2 == 0 { "a.txt" } else { "b.txt" };
                        format!("edit --file {file} --append {who}-{i}\n")
                    })
                    .collect();
                let mut cmd = common::mqttapp(&broker, &prefix);
                cmd.args(["ask", "--timeout", "30s", "--batch"])
                    .write_stdin(input);
                s.spawn(move || cmd.output().expect("run batch"))
            })
            .into_iter()
            .collect();
        runs.into_iter().map(|r| r.join().expect("batch")).collect()
    });
    for out in &outputs {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.lines().count() == per_batch,
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!stdout.contains("error"), "{stdout}");
    }
    for (file, parity) in [("a.txt", 0), ("b.txt", 1)] {
        let text = std::fs::read_to_string(data.join(file)).unwrap();
        for who in ["p", "q"] {
            for i in (parity..per_batch).step_by(2) {
                let line = format!("{who}-{i}");
                let times = text.lines().filter(|l| *l == line).count();
                assert_eq!(times, 1, "{line} in {file} {times} times");
            }
        }
        assert_eq!(text.lines().count(), per_batch, "{file}");
    }
}

#[test]
fn killing_one_of_three_group_members_mid_load_loses_nothing() {
    let broker = Broker::start();
    let prefix = unique_prefix("groupkill");
    let data = broker.dir().join("shared");
    let mut servers = group(&broker, &prefix, &data, 3);
    let config = client_config(&broker, &prefix, 20);
    let (clients, per_client) = (6, 30);
    let done = AtomicUsize::new(0);
    let outcome = thread::scope(|s| {
        let load = s.spawn(|| resending(&config, clients, per_client, mixed, &done));
        let deadline = Instant::now() + Duration::from_secs(60);
        while done.load(Ordering::SeqCst) < 60 {
            assert!(Instant::now() < deadline, "no progress");
            thread::sleep(Duration::from_millis(10));
        }
        servers[1].kill();
        load.join().expect("load thread")
    });
    let file = std::fs::read_to_string(data.join("notes.txt")).unwrap();
    check_mixed(&outcome, clients, per_client, &file);
    eprintln!(
        "answered after a re-send: {}, restarted exchanges: {}",
        outcome.resent, outcome.exchange_retries
    );
}

#[test]
fn a_group_member_stopping_gracefully_hands_new_requests_to_the_others() {
    let broker = Broker::start();
    let prefix = unique_prefix("groupstop");
    let mut servers = group(&broker, &prefix, &broker.dir().join("shared"), 2);
    assert_eq!(servers[0].terminate(), Some(0));
    let client = LoadClient::connect(&broker, &prefix, &format!("{prefix}-c"));
    let topic = format!("{prefix}/v1/req/calc");
    for i in 0..20 {
        let payload = format!("{i}+1");
        client.send(&topic, payload.as_bytes(), format!("{i}").as_bytes(), None);
    }
    // Sent once, never re-sent: a request routed to the stopped member's
    // session would never be answered.
    for n in 0..20 {
        assert!(
            client.next(Duration::from_secs(10)).is_some(),
            "only {n} of 20 answered; the stopped member kept its share"
        );
    }
}

#[test]
fn a_second_server_with_the_same_id_is_reported_and_neither_stops() {
    let broker = Broker::start();
    let prefix = unique_prefix("sameid");
    let args = ["--server-id", "twin"];
    let mut first = Server::start_with(&broker, &prefix, &broker.dir().join("a"), &args);
    let mut second = Server::start_with(&broker, &prefix, &broker.dir().join("b"), &args);
    // Each sees its connection closed soon after connecting, again and
    // again, and says why; neither exits (nothing a client does may stop
    // a server), they take turns with the id every few seconds.
    for server in [&mut first, &mut second] {
        server.wait_for_log(
            "client id in use by another client",
            Duration::from_secs(30),
        );
    }
    common::mqttapp(&broker, &prefix)
        .args(["ask", "--timeout", "20", "calc", "1+1"])
        .assert()
        .success()
        .stdout("2\n");
    assert_eq!(first.terminate(), Some(0), "{}", first.log());
    assert_eq!(second.terminate(), Some(0), "{}", second.log());
}
