//! User-defined operations (`serve --exec`, `[ops.NAME]`) against a real
//! Mosquitto, the real binary and real programs: replies, the `failed` and
//! `limit` codes, the limits, the reply memory of non-idempotent
//! operations, and that a slow program never holds up calc.

mod common;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::load::LoadClient;
use common::raw::{RawClient, RawReply};
use common::{mqttapp, unique_prefix, Broker, Server};
use mqttapp::protocol::{decode_reply, Encoding, Reply};

/// An executable script `name` with `body` in the broker's directory.
fn script(broker: &Broker, name: &str, body: &str) -> PathBuf {
    let path = broker.dir().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A config file holding `toml` in the broker's directory; its path.
fn config(broker: &Broker, toml: &str) -> String {
    let path = broker.dir().join("user-ops.toml");
    std::fs::write(&path, toml).unwrap();
    path.display().to_string()
}

fn serve(broker: &Broker, prefix: &str, args: &[&str]) -> Server {
    let data = broker.dir().join(format!("data-{prefix}"));
    Server::start_with(broker, prefix, &data, args)
}

/// The reply's error message (empty for a value).
fn message(reply: &RawReply) -> String {
    let encoding = Encoding::detect(reply.content_type.as_deref(), &reply.payload);
    match decode_reply(encoding, &reply.payload) {
        Ok(Reply::Err(e)) => e.message,
        _ => String::new(),
    }
}

fn text(raw: &RawClient, prefix: &str, op: &str, input: &str, correlation: &[u8]) -> RawReply {
    raw.request(
        prefix,
        op,
        input.as_bytes(),
        Some("text/plain"),
        Some(correlation),
    )
}

#[test]
fn ask_runs_a_program_and_prints_its_stdout() {
    let broker = Broker::start();
    let prefix = unique_prefix("userop-tr");
    let _server = serve(&broker, &prefix, &["--exec", "upper=tr a-z A-Z"]);
    mqttapp(&broker, &prefix)
        .args(["ask", "upper", "hello", "world"])
        .assert()
        .success()
        .stdout("HELLO WORLD\n");
    // The status lists it, so clients and group members can find it.
    let status = mqttapp(&broker, &prefix).args(["status"]).output().unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("upper"), "{status}");
    // A name nobody offers is the server's unknown_op, not a usage error.
    let out = mqttapp(&broker, &prefix)
        .args(["ask", "nobody-offers-this", "x"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown_op"), "{err}");
    // --batch lines reach it with `run`.
    mqttapp(&broker, &prefix)
        .args(["ask", "--batch"])
        .write_stdin("run upper abc\ncalc 1+2\n")
        .assert()
        .success()
        .stdout("ABC\n3\n");
    // ... and so do the shell's.
    mqttapp(&broker, &prefix)
        .args(["shell"])
        .write_stdin("run upper 'x  y'\n")
        .assert()
        .success()
        .stdout("X  Y\n");
}

#[test]
fn a_group_member_subscribes_to_its_user_operation() {
    let broker = Broker::start();
    let prefix = unique_prefix("userop-group");
    let _server = serve(&broker, &prefix, &["--group", "g", "--exec", "rev=rev"]);
    mqttapp(&broker, &prefix)
        .args(["ask", "rev", "stressed"])
        .assert()
        .success()
        .stdout("desserts\n");
}

#[test]
fn sha256sum_gets_the_input_on_stdin_in_every_encoding() {
    let broker = Broker::start();
    let prefix = unique_prefix("userop-sha");
    let _server = serve(
        &broker,
        &prefix,
        &["--exec", "sha=sha256sum", "--exec", "env=env"],
    );
    let raw = RawClient::connect(&broker, &prefix, "sha");
    let digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  -\n";
    let reply = text(&raw, &prefix, "sha", "abc", b"1");
    assert_eq!(String::from_utf8_lossy(&reply.payload), digest);
    let reply = raw.request(
        &prefix,
        "sha",
        br#"{"input":"abc"}"#,
        Some("application/json"),
        Some(b"2"),
    );
    assert_eq!(
        String::from_utf8_lossy(&reply.payload),
        format!(r#"{{"ok":{}}}"#, serde_json::to_string(digest).unwrap())
    );
    // The environment is cleared: the server's own variables (broker,
    // prefix, any password) do not reach the program.
    let reply = text(&raw, &prefix, "env", "", b"ab");
    let mut env: Vec<String> = String::from_utf8_lossy(&reply.payload)
        .lines()
        .map(|l| l.split('=').next().unwrap_or("").to_string())
        .collect();
    env.sort();
    assert_eq!(
        env,
        [
            "LANG",
            "MQTTAPP_CORRELATION",
            "MQTTAPP_OP",
            "MQTTAPP_SERVER_ID",
            "PATH"
        ]
    );
    let out = String::from_utf8_lossy(&reply.payload).into_owned();
    assert!(out.contains("MQTTAPP_CORRELATION=6162\n"), "{out}");
    assert!(out.contains("MQTTAPP_OP=env\n"), "{out}");
    // The client's MQTT 5 user properties arrive as MQTTAPP_PROP_<KEY>.
    let mut props = paho_mqtt::Properties::new();
    props
        .push_string(paho_mqtt::PropertyCode::ResponseTopic, &raw.response_topic)
        .unwrap();
    props
        .push_string_pair(paho_mqtt::PropertyCode::UserProperty, "team.name", "blue")
        .unwrap();
    let msg = paho_mqtt::MessageBuilder::new()
        .topic(format!("{prefix}/v1/req/env"))
        .payload(Vec::new())
        .qos(1)
        .properties(props)
        .finalize();
    raw.client.publish(msg).wait().unwrap();
    let reply = raw.next(Duration::from_secs(10)).expect("a reply");
    let out = String::from_utf8_lossy(&reply.payload).into_owned();
    assert!(out.contains("MQTTAPP_PROP_TEAM_NAME=blue\n"), "{out}");
    assert!(!out.contains("MQTTAPP_CORRELATION"), "none sent: {out}");
}

#[test]
fn a_program_past_its_time_limit_is_killed_while_calc_is_answered() {
    let broker = Broker::start();
    let prefix = unique_prefix("userop-slow");
    let slow = script(&broker, "slow.sh", "sleep 30");
    let file = config(
        &broker,
        &format!(
            "[ops.slow]\nprogram = \"{}\"\ntimeout = \"5s\"\n",
            slow.display()
        ),
    );
    let _server = serve(&broker, &prefix, &["--config", &file]);
    let waiting = RawClient::connect(&broker, &prefix, "slow");
    let topic = format!("{prefix}/v1/req/slow");
    let rt = waiting.response_topic.clone();
    waiting.send(&topic, b"x", Some("text/plain"), Some(b"s"), Some(&rt));
    let calc = RawClient::connect(&broker, &prefix, "calc");
    let mut answered = 0;
    for i in 0..20 {
        let reply = text(&calc, &prefix, "calc", &format!("{i}+1"), &[i]);
        assert_eq!(reply.code(), "ok", "{}", reply.text());
        answered += 1;
    }
    // Every calc was answered while the slow run was still going: its
    // reply had not come yet.
    assert!(
        waiting.next(Duration::ZERO).is_none(),
        "slow reply came first"
    );
    assert_eq!(answered, 20);
    let reply = waiting
        .next(Duration::from_secs(20))
        .expect("a reply to the slow request");
    assert_eq!(reply.code(), "limit", "{}", reply.text());
    assert!(message(&reply).contains("time limit"), "{}", reply.text());
}

/// Peak resident memory of a process, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

#[test]
fn a_program_writing_100_mb_is_killed_and_the_server_stays_small() {
    let broker = Broker::start();
    let prefix = unique_prefix("userop-big");
    let server = serve(
        &broker,
        &prefix,
        &["--exec", "flood=head -c 100000000 /dev/zero"],
    );
    let raw = RawClient::connect(&broker, &prefix, "big");
    for i in 0..3u8 {
        let reply = text(&raw, &prefix, "flood", "", &[i]);
        assert_eq!(reply.code(), "limit", "{}", reply.text());
        assert!(message(&reply).contains("output limit"), "{}", reply.text());
    }
    let peak = peak_rss_kib(server.pid());
    eprintln!("server peak RSS after 3 x 100 MB of output: {peak} KiB");
    assert!(peak < 80 * 1024, "peak RSS {peak} KiB");
}

#[test]
fn a_failing_program_answers_failed_with_the_end_of_its_stderr() {
    let broker = Broker::start();
    let prefix = unique_prefix("userop-fail");
    let fail = script(
        &broker,
        "fail.sh",
        "cat >/dev/null\necho 'first line' >&2\necho \"disk on fire in $MQTTAPP_OP\" >&2\nexit 3",
    );
    let spec = format!("broken={}", fail.display());
    let _server = serve(&broker, &prefix, &["--exec", &spec]);
    let raw = RawClient::connect(&broker, &prefix, "fail");
    let reply = text(&raw, &prefix, "broken", "x", b"1");
    assert_eq!(reply.code(), "failed", "{}", reply.text());
    let m = message(&reply);
    assert!(m.contains("exited with status 3"), "{m}");
    assert!(m.contains("disk on fire in broken"), "{m}");
}

/// Sends `input` three times with correlation data `key` to `op` (twice at
/// once, so the second copy arrives while the first runs, then once after
/// the answers); every copy must be answered with the program's output.
fn send_three_copies(raw: &RawClient, prefix: &str, op: &str, key: &[u8]) {
    let topic = format!("{prefix}/v1/req/{op}");
    let rt = raw.response_topic.clone();
    raw.send(&topic, b"pay", Some("text/plain"), Some(key), Some(&rt));
    raw.send(&topic, b"pay", Some("text/plain"), Some(key), Some(&rt));
    let mut replies = Vec::new();
    for _ in 0..2 {
        replies.push(raw.next(Duration::from_secs(20)).expect("a reply"));
    }
    replies.push(text(raw, prefix, op, "pay", key));
    for r in &replies {
        assert_eq!(String::from_utf8_lossy(&r.payload), "pay", "{}", r.text());
        assert_eq!(r.correlation.as_deref(), Some(key));
    }
}

#[test]
fn a_non_idempotent_request_sent_three_times_runs_once() {
    let broker = Broker::start();
    let prefix = unique_prefix("userop-once");
    let runs = |name: &str| broker.dir().join(format!("runs-{name}.txt"));
    let count = |name: &str| {
        std::fs::read_to_string(runs(name))
            .unwrap_or_default()
            .lines()
            .count()
    };
    // Slow enough that the second copy arrives while the first runs.
    let body = |name: &str| format!("sleep 1\necho run >> '{}'\ncat", runs(name).display());
    let once = script(&broker, "once.sh", &body("once"));
    let again = script(&broker, "again.sh", &body("again"));
    let file = config(
        &broker,
        &format!(
            "[ops.again]\nprogram = \"{}\"\nidempotent = true\n",
            again.display()
        ),
    );
    let spec = format!("once={}", once.display());
    let _server = serve(&broker, &prefix, &["--config", &file, "--exec", &spec]);
    let raw = RawClient::connect(&broker, &prefix, "once");
    send_three_copies(&raw, &prefix, "once", b"k1");
    assert_eq!(count("once"), 1, "non-idempotent (the default): one run");
    // New correlation data is a new request.
    text(&raw, &prefix, "once", "pay", b"k2");
    assert_eq!(count("once"), 2);
    // A key reused with another input is refused, not answered with k1's.
    let reused = text(&raw, &prefix, "once", "other", b"k1");
    assert_eq!(reused.code(), "bad_request", "{}", reused.text());
    assert_eq!(count("once"), 2);
    send_three_copies(&raw, &prefix, "again", b"k1");
    assert_eq!(count("again"), 3, "idempotent = true: every copy runs");
}

#[test]
fn a_flood_on_a_slow_operation_gets_every_answer_and_calc_is_unaffected() {
    let broker = Broker::start();
    let prefix = unique_prefix("userop-flood");
    let slow = script(&broker, "nap.sh", "sleep 0.2\ncat");
    let file = config(
        &broker,
        &format!(
            "[ops.nap]\nprogram = \"{}\"\nmax_concurrent = 2\nidempotent = true\n",
            slow.display()
        ),
    );
    let _server = serve(&broker, &prefix, &["--config", &file]);
    let load = LoadClient::connect(&broker, &prefix, "flood");
    let topic = format!("{prefix}/v1/req/nap");
    let total = 200u32;
    let mut tokens = Vec::new();
    for i in 0..total {
        tokens.push(load.publish(&topic, &i.to_be_bytes(), &i.to_be_bytes(), Some(60)));
    }
    for t in tokens {
        t.wait_for(Duration::from_secs(30)).expect("puback");
    }
    let calc = RawClient::connect(&broker, &prefix, "calc");
    for i in 0..10u8 {
        let reply = text(&calc, &prefix, "calc", "6*7", &[i]);
        assert_eq!(String::from_utf8_lossy(&reply.payload), "42");
    }
    let mut answers: HashMap<Vec<u8>, Vec<String>> = HashMap::new();
    while answers.values().map(Vec::len).sum::<usize>() < total as usize {
        let Some((correlation, payload)) = load.next(Duration::from_secs(30)) else {
            break;
        };
        let code = match decode_reply(Encoding::detect(None, &payload), &payload) {
            Ok(Reply::Ok(_)) => "ok".to_string(),
            Ok(Reply::Err(e)) => e.code,
            Err(e) => format!("undecodable: {e}"),
        };
        answers.entry(correlation).or_default().push(code);
    }
    let count = |c: &str| answers.values().flatten().filter(|x| *x == c).count();
    let (ok, busy) = (count("ok"), count("busy"));
    eprintln!("flood of {total}: {ok} ok, {busy} busy");
    assert_eq!(answers.len(), total as usize, "lost requests");
    assert!(answers.values().all(|a| a.len() == 1), "answered twice");
    assert_eq!(ok + busy, total as usize, "{answers:?}");
    assert!(busy > 0 && ok >= 16, "{ok} ok, {busy} busy");
}

#[test]
fn the_example_script_counts_words_and_fails_on_empty_input() {
    let broker = Broker::start();
    let prefix = unique_prefix("userop-example");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/user_op.sh");
    let spec = format!("wc={}", path.display());
    let _server = serve(&broker, &prefix, &["--exec", &spec]);
    mqttapp(&broker, &prefix)
        .args(["ask", "wc", "the", "quick", "brown", "fox"])
        .assert()
        .success()
        .stdout("4 words\n");
    let raw = RawClient::connect(&broker, &prefix, "wc");
    let reply = text(&raw, &prefix, "wc", "", b"1");
    assert_eq!(reply.code(), "failed", "{}", reply.text());
    assert!(
        message(&reply).contains("nothing to count"),
        "{}",
        reply.text()
    );
}

#[test]
fn bad_or_shadowing_names_are_refused_before_starting() {
    let broker = Broker::start();
    let prefix = unique_prefix("userop-names");
    for (spec, says) in [
        ("calc=cat", "shadow the built-in"),
        ("Upper=tr a-z A-Z", "lowercase"),
        ("a/b=cat", "lowercase"),
        ("upper", "NAME=PROGRAM"),
    ] {
        let out = mqttapp(&broker, &prefix)
            .args(["serve", "--exec", spec])
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{spec}: {err}");
        assert!(
            err.contains(says) && err.contains("--exec"),
            "{spec}: {err}"
        );
    }
    let file = config(&broker, "[ops.echo]\nprogram = \"cat\"\n");
    let out = mqttapp(&broker, &prefix)
        .args(["serve", "--config", &file])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("[ops.echo]") && err.contains("shadow"),
        "{err}"
    );
}

#[test]
fn a_request_re_sent_after_a_server_kill_is_answered_from_disk_not_run_again() {
    let broker = Broker::start();
    let prefix = unique_prefix("userop-restart");
    let runs = broker.dir().join("runs-restart.txt");
    let count = || {
        std::fs::read_to_string(&runs)
            .unwrap_or_default()
            .lines()
            .count()
    };
    // The answer is the run number, so a second run would answer "run 2".
    let body = format!(
        "cat >/dev/null\necho run >> '{0}'\necho \"run $(wc -l < '{0}')\"",
        runs.display()
    );
    let once = script(&broker, "restart.sh", &body);
    let spec = format!("once={}", once.display());
    let mut server = serve(&broker, &prefix, &["--exec", &spec]);
    let raw = RawClient::connect(&broker, &prefix, "restart");
    let first = text(&raw, &prefix, "once", "pay", b"k1");
    assert_eq!(first.code(), "ok", "{}", message(&first));
    assert_eq!(count(), 1);
    server.restart(); // kill -9, then the same data directory again
    let again = text(&raw, &prefix, "once", "pay", b"k1");
    assert_eq!(again.payload, first.payload, "the first run's answer");
    assert_eq!(count(), 1, "not run again after the restart");
    // The key with another input is still refused after the restart.
    let reused = text(&raw, &prefix, "once", "other", b"k1");
    assert_eq!(reused.code(), "bad_request", "{}", reused.text());
    assert_eq!(count(), 1);
}
