//! Reaching every server, group members included: `mqttapp ping` (a live
//! round trip) and `mqttapp ask --all` (scatter-gather), against a fleet
//! of two members of one group (one shared data directory) and one server
//! on its own, on a real Mosquitto.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::raw::connect_subscribed;
use common::{mqttapp, unique_prefix, Broker, Server};
use mqttapp::protocol::{user_props, Status};
use paho_mqtt as paho;

/// A broker, a prefix, group members `g1` and `g2` sharing one data
/// directory, and `solo` with its own.
fn fleet(name: &str) -> (Broker, String, Vec<Server>) {
    let broker = Broker::start();
    let prefix = unique_prefix(name);
    let shared = broker.dir().join("group-data");
    let member = |id: &str| {
        Server::start_with(
            &broker,
            &prefix,
            &shared,
            &["--server-id", id, "--group", "g"],
        )
    };
    let servers = vec![
        member("g1"),
        member("g2"),
        Server::start_with(
            &broker,
            &prefix,
            &broker.dir().join("solo-data"),
            &["--server-id", "solo"],
        ),
    ];
    (broker, prefix, servers)
}

fn stdout_lines(out: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

/// Publishes a retained "online" status for a server that does not exist
/// (or is played by a raw client).
fn fake_status(client: &paho::AsyncClient, prefix: &str, id: &str) {
    let status = Status {
        state: Status::ONLINE.into(),
        ops: vec!["calc".into(), "echo".into(), "edit".into()],
        version: "0".into(),
        since: 0,
        group: None,
        instance: None,
        data_dir: None,
    };
    let msg = paho::Message::new_retained(format!("{prefix}/v1/status/{id}"), status.encode(), 1);
    client.publish(msg).wait().expect("publish a status");
}

#[test]
fn ping_lists_every_server_with_its_id_and_counts_rounds() {
    let (broker, prefix, _servers) = fleet("ping");
    let out = mqttapp(&broker, &prefix).arg("ping").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let lines = sorted(stdout_lines(&out));
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (line, id) in lines.iter().zip(["g1 ", "g2 ", "solo "]) {
        assert!(line.starts_with(id), "{line}");
        assert!(
            line.contains("instance=") && line.contains("time="),
            "{line}"
        );
    }

    let out = mqttapp(&broker, &prefix)
        .args(["ping", "--count", "3", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut answers: BTreeMap<String, u32> = BTreeMap::new();
    let mut summaries = Vec::new();
    for line in stdout_lines(&out) {
        let v: serde_json::Value = serde_json::from_str(&line).expect(&line);
        if let Some(s) = v.get("summary") {
            summaries.push((
                s["server_id"].as_str().unwrap().to_string(),
                s["answered"].clone(),
            ));
        } else {
            assert!(
                v["rtt_ms"].as_f64().is_some() && v["instance"].is_string(),
                "{line}"
            );
            *answers
                .entry(v["server_id"].as_str().unwrap().into())
                .or_default() += 1;
        }
    }
    let three: BTreeMap<String, u32> = [("g1", 3), ("g2", 3), ("solo", 3)]
        .map(|(k, n)| (k.to_string(), n))
        .into();
    assert_eq!(answers, three);
    assert_eq!(summaries.len(), 3, "{summaries:?}");
    assert!(summaries.iter().all(|(_, n)| n == 3), "{summaries:?}");
}

#[test]
fn ping_exits_6_when_no_server_answers() {
    let broker = Broker::start();
    let prefix = unique_prefix("ping-none");
    let out = mqttapp(&broker, &prefix)
        .args(["ping", "--wait", "300ms"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no server answered"));
}

#[test]
fn ask_all_gets_one_line_per_server_and_replies_stops_early() {
    let (broker, prefix, _servers) = fleet("all");
    let out = mqttapp(&broker, &prefix)
        .args(["ask", "--all", "calc", "1+1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        sorted(stdout_lines(&out)),
        ["g1 2", "g2 2", "solo 2"],
        "{out:?}"
    );

    let out = mqttapp(&broker, &prefix)
        .args(["ask", "--all", "--replies", "2", "--json", "echo", "hi"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["ok"], "hi", "{line}");
        assert!(v["server_id"].is_string(), "{line}");
    }
    assert_ne!(lines[0], lines[1], "two distinct servers");

    // Errors are per line, and the whole gather exits 1.
    let out = mqttapp(&broker, &prefix)
        .args(["ask", "--all", "calc", "1/0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = sorted(stdout_lines(&out));
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines.iter().all(|l| l.contains(" error: math: ")),
        "{lines:?}"
    );
}

/// Answers every request for all servers twice, as server "forger".
fn forge_double_answers(broker: &Broker, prefix: &str) -> paho::AsyncClient {
    let (client, rx, _) = connect_subscribed(broker, prefix, "forger");
    client
        .subscribe(format!("{prefix}/v1/all/req/+"), 1)
        .wait()
        .expect("forger subscribes");
    fake_status(&client, prefix, "forger");
    let answering = client.clone();
    std::thread::spawn(move || {
        for msg in rx.iter().flatten() {
            let props = msg.properties();
            let Some(topic) = props.get_string(paho::PropertyCode::ResponseTopic) else {
                continue;
            };
            let corr = props
                .get_binary(paho::PropertyCode::CorrelationData)
                .unwrap_or_default();
            for answer in [1, 2] {
                let mut p = paho::Properties::new();
                p.push_binary(paho::PropertyCode::CorrelationData, corr.clone())
                    .unwrap();
                p.push_string(paho::PropertyCode::ContentType, "application/json")
                    .unwrap();
                p.push_string_pair(
                    paho::PropertyCode::UserProperty,
                    user_props::SERVER_ID,
                    "forger",
                )
                .unwrap();
                let reply = paho::MessageBuilder::new()
                    .topic(&topic)
                    .payload(format!("{{\"ok\":{answer}}}"))
                    .qos(1)
                    .properties(p)
                    .finalize();
                let _ = answering.publish(reply).wait();
            }
        }
    });
    client
}

#[test]
fn a_server_answering_twice_is_counted_once_and_a_silent_one_makes_exit_9() {
    let broker = Broker::start();
    let prefix = unique_prefix("dup");
    let _solo = Server::start_with(
        &broker,
        &prefix,
        &broker.dir().join("solo-data"),
        &["--server-id", "solo"],
    );
    let forger = forge_double_answers(&broker, &prefix);
    // Listed online, never answers: the gather runs its whole --wait, so
    // both of the forger's answers arrive within it.
    fake_status(&forger, &prefix, "ghost");
    let out = mqttapp(&broker, &prefix)
        .args(["ask", "--all", "--wait", "2s", "calc", "2*3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(9), "{out:?}");
    assert_eq!(
        sorted(stdout_lines(&out)),
        ["forger 1", "solo 6"],
        "{out:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no answer from ghost"), "{stderr}");

    // With --json the silent server has its line too.
    let out = mqttapp(&broker, &prefix)
        .args(["ask", "--all", "--wait", "1s", "--json", "calc", "2*3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(9), "{out:?}");
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(r#""server_id":"ghost""#) && l.contains("timeout")),
        "{lines:?}"
    );
}

#[test]
fn an_edit_sent_to_all_applies_once_per_data_directory() {
    let (broker, prefix, servers) = fleet("edit");
    const ROUNDS: usize = 5;
    for round in 1..=ROUNDS {
        let text = format!("line {round}");
        let out = mqttapp(&broker, &prefix)
            .args(["ask", "--all", "edit", "--append", &text])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let lines = sorted(stdout_lines(&out));
        let expected: Vec<String> = ["g1", "g2", "solo"]
            .iter()
            .map(|id| {
                format!(
                    "{id} notes.txt: rev {round}, {round} line{}",
                    if round == 1 { "" } else { "s" }
                )
            })
            .collect();
        assert_eq!(lines, expected, "round {round}: {out:?}");
    }
    let shared = std::fs::read_to_string(servers[0].data_dir().join("notes.txt")).unwrap();
    let solo = std::fs::read_to_string(servers[2].data_dir().join("notes.txt")).unwrap();
    assert_eq!(
        shared.lines().count(),
        ROUNDS,
        "shared directory:\n{shared}"
    );
    assert_eq!(solo.lines().count(), ROUNDS, "solo directory:\n{solo}");
}

#[test]
fn a_ping_flood_gets_at_most_each_servers_rate_of_answers_and_requests_still_work() {
    let (broker, prefix, _servers) = fleet("flood");
    let (client, rx, response_topic) = connect_subscribed(&broker, &prefix, "flooder");
    const PINGS: usize = 5_000;
    let start = Instant::now();
    // One ping asking for JSON first: every server answers it in JSON,
    // with the correlation data.
    let mut p = paho::Properties::new();
    p.push_string(paho::PropertyCode::ResponseTopic, &response_topic)
        .unwrap();
    p.push_binary(paho::PropertyCode::CorrelationData, b"json".to_vec())
        .unwrap();
    p.push_string(paho::PropertyCode::ContentType, "application/json")
        .unwrap();
    let ping = paho::MessageBuilder::new()
        .topic(format!("{prefix}/v1/ping"))
        .payload(Vec::new())
        .qos(0)
        .properties(p)
        .finalize();
    client.publish(ping).wait().unwrap();
    let mut json_ids = Vec::new();
    for _ in 0..3 {
        let msg = rx
            .recv_timeout(Duration::from_secs(10))
            .ok()
            .flatten()
            .expect("a JSON ping answer");
        let props = msg.properties();
        assert_eq!(
            props.get_binary(paho::PropertyCode::CorrelationData),
            Some(b"json".to_vec())
        );
        assert_eq!(
            props.get_string(paho::PropertyCode::ContentType).as_deref(),
            Some("application/json")
        );
        let v: serde_json::Value = serde_json::from_slice(msg.payload()).unwrap();
        assert!(v["instance"].is_string() && v["version"].is_string(), "{v}");
        json_ids.push(v["server_id"].as_str().unwrap().to_string());
    }
    assert_eq!(sorted(json_ids), ["g1", "g2", "solo"]);
    for i in 0..PINGS {
        let mut p = paho::Properties::new();
        p.push_string(paho::PropertyCode::ResponseTopic, &response_topic)
            .unwrap();
        p.push_binary(
            paho::PropertyCode::CorrelationData,
            (i as u32).to_be_bytes().to_vec(),
        )
        .unwrap();
        let ping = paho::MessageBuilder::new()
            .topic(format!("{prefix}/v1/ping"))
            .payload(Vec::new())
            .qos(0)
            .properties(p)
            .finalize();
        // QoS 0: paho's buffer may refuse some when full; that is fine,
        // fewer pings only lower the answers.
        drop(client.publish(ping));
    }
    let mut per_server: BTreeMap<String, u64> = BTreeMap::new();
    // Collect until 2 s of quiet, bounded.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_secs(2)) {
            Ok(Some(msg)) => {
                let id = msg
                    .properties()
                    .user_iter()
                    .find(|(k, _)| k == user_props::SERVER_ID)
                    .map(|(_, v)| v)
                    .unwrap_or_default();
                *per_server.entry(id).or_default() += 1;
            }
            _ => break,
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let bound = (mqttapp::serve::pong::BURST as f64
        + mqttapp::serve::pong::RATE_PER_SEC as f64 * elapsed)
        .ceil() as u64;
    eprintln!("{PINGS} pings in {elapsed:.2} s: answers {per_server:?}, bound {bound} per server");
    assert_eq!(
        per_server.keys().cloned().collect::<Vec<_>>(),
        ["g1", "g2", "solo"],
        "every server answered some pings"
    );
    for (id, n) in &per_server {
        assert!(*n <= bound, "{id} answered {n} pings, more than {bound}");
        assert!((*n as usize) < PINGS, "{id} answered every ping");
    }
    let out = mqttapp(&broker, &prefix)
        .args(["ask", "calc", "20+22"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");
}
