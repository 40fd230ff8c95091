//! Every script in examples/ runs against a real broker and server here
//! (`make examples` runs just these tests).

mod common;

use std::path::Path;
use std::process::Command;

use assert_cmd::Command as Cmd;
use common::raw::RawClient;
use common::{unique_prefix, Broker, Server, CLEARED_ENV};
use mqttapp::protocol::Status;
use predicates::prelude::*;

/// An example run with the broker and prefix in the environment, as a
/// user would after `make run`.
fn example(program: &str, script: &str, broker_url: &str, prefix: &str) -> Cmd {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Cmd::new(program);
    for var in CLEARED_ENV {
        cmd.env_remove(var);
    }
    cmd.arg(root.join("examples").join(script))
        .env("MQTTAPP_BROKER", broker_url)
        .env("MQTTAPP_PREFIX", prefix)
        .env("MQTTAPP", env!("CARGO_BIN_EXE_mqttapp"))
        .env("NO_COLOR", "1")
        .env("ASK_BACKOFF", "0")
        .current_dir(std::env::temp_dir())
        .timeout(std::time::Duration::from_secs(120));
    cmd
}

fn ask_loop(broker_url: &str, prefix: &str, input: &str) -> assert_cmd::assert::Assert {
    example("bash", "ask_loop.sh", broker_url, prefix)
        .env("MQTTAPP_TIMEOUT", "2")
        .env("ASK_RETRIES", "2")
        .write_stdin(input)
        .assert()
}

fn require_python_deps() {
    let ok = Command::new("python3")
        .args(["-c", "import paho.mqtt.client, cbor2"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3 with paho-mqtt and cbor2 is needed for examples/python_client.py: run `make setup`"
    );
}

#[test]
fn the_python_client_speaks_the_protocol() {
    require_python_deps();
    let broker = Broker::start();
    let prefix = unique_prefix("python");
    let server = Server::start(&broker, &prefix);
    let py = |args: &[&str]| {
        example("python3", "python_client.py", &broker.url(), &prefix)
            .args(args)
            .assert()
    };
    py(&["calc", "2+3*4"]).success().stdout("14\n");
    py(&["calc", "7/2"]).success().stdout("3.5\n");
    // Past 64 bits: a CBOR bignum (tag 2/3), decoded by cbor2.
    py(&["calc", "2^100"])
        .success()
        .stdout("1267650600228229401496703205376\n");
    py(&["calc", "0 - 10^5000"])
        .success()
        .stdout(format!("-1{}\n", "0".repeat(5000)));
    py(&["echo", "olá", "mundo"])
        .success()
        .stdout("olá mundo\n");
    py(&["edit", "--line", "2", "from", "python"])
        .success()
        .stdout("notes.txt: rev 1, 2 lines\n");
    py(&["edit", "--append", "last"]).success();
    py(&["edit", "--show"])
        .success()
        .stdout("\nfrom python\nlast\n")
        .stderr("notes.txt: rev 2, 3 lines\n");
    py(&["calc", "1/0"])
        .code(1)
        .stderr(predicate::str::contains("error: math: division by zero"));
    assert_eq!(
        std::fs::read_to_string(server.data_dir().join("notes.txt")).unwrap(),
        "\nfrom python\nlast\n"
    );
}

#[test]
fn the_python_client_reports_a_missing_server_as_a_timeout() {
    require_python_deps();
    let broker = Broker::start();
    example(
        "python3",
        "python_client.py",
        &broker.url(),
        &unique_prefix("pynone"),
    )
    .args(["--timeout", "1", "calc", "1"])
    .assert()
    .code(5)
    .stderr(predicate::str::contains("mqttapp serve"));
}

#[test]
fn ask_loop_prints_answers_and_counts_refused_expressions() {
    let broker = Broker::start();
    let prefix = unique_prefix("loop");
    let _server = Server::start(&broker, &prefix);
    ask_loop(&broker.url(), &prefix, "2+3*4\n\n1/0\n7/2")
        .code(1)
        .stdout(
            predicate::str::contains("2+3*4 = 14\n")
                .and(predicate::str::contains("1/0: refused: error: math"))
                .and(predicate::str::contains("7/2 = 3.5\n")),
        )
        .stderr(predicate::str::contains("2 answered, 1 failed"));
    ask_loop(&broker.url(), &prefix, "1+1\n")
        .success()
        .stdout("1+1 = 2\n");
}

#[test]
fn ask_loop_stops_at_a_usage_error() {
    let broker = Broker::start();
    let prefix = unique_prefix("loopusage");
    example("bash", "ask_loop.sh", &broker.url(), &prefix)
        .env("MQTTAPP_TIMEOUT", "soon")
        .write_stdin("1+1\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("fix the settings"));
}

#[test]
fn ask_loop_retries_then_stops_when_the_broker_is_unreachable() {
    let broker = Broker::start();
    let url = broker.url();
    drop(broker);
    ask_loop(&url, "p", "1+1\n").code(3).stderr(
        predicate::str::contains("retrying")
            .and(predicate::str::contains("broker stays unreachable")),
    );
}

#[test]
fn ask_loop_stops_when_credentials_are_refused() {
    let secrets = tempfile::tempdir().unwrap();
    let passwd = secrets.path().join("passwd");
    let made = Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&passwd)
        .args(["alice", "right"])
        .status()
        .expect("mosquitto_passwd is installed with mosquitto: run `make setup`");
    assert!(made.success());
    let broker = Broker::start_with(&format!(
        "listener {{port}} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
        passwd.display()
    ));
    example("bash", "ask_loop.sh", &broker.url(), "p")
        .env("MQTTAPP_USERNAME", "alice")
        .env("MQTTAPP_PASSWORD", "wrong")
        .write_stdin("1+1\n")
        .assert()
        .code(4)
        .stderr(
            predicate::str::contains("refused our credentials")
                .and(predicate::str::contains("wrong").not()),
        );
}

#[test]
fn ask_loop_counts_a_timeout_as_failed_after_retrying() {
    let broker = Broker::start();
    let prefix = unique_prefix("looptimeout");
    // A server that says it is online but never answers.
    let raw = RawClient::connect(&broker, &prefix, "fake-server");
    let status = Status {
        state: Status::ONLINE.into(),
        ops: vec!["calc".into()],
        version: "0".into(),
        since: 0,
        group: None,
        instance: None,
        data_dir: None,
    };
    let msg = paho_mqtt::MessageBuilder::new()
        .topic(format!("{prefix}/v1/status/fake"))
        .payload(status.encode())
        .qos(1)
        .retained(true)
        .finalize();
    raw.client.publish(msg).wait().unwrap();
    ask_loop(&broker.url(), &prefix, "1+1\n")
        .code(1)
        .stdout(predicate::str::contains("1+1: no reply after 2 tries"))
        .stderr(predicate::str::contains("exit 5, retrying"));
}

#[test]
fn ask_loop_stops_when_no_server_comes_online() {
    let broker = Broker::start();
    ask_loop(&broker.url(), &unique_prefix("loopnone"), "1+1\n")
        .code(6)
        .stderr(predicate::str::contains("no server came online"));
}

#[test]
fn ask_loop_stops_on_a_tls_failure() {
    let broker = Broker::start();
    // TLS spoken to a plain listener: the handshake fails.
    let url = format!("mqtts://127.0.0.1:{}", broker.port());
    ask_loop(&url, "p", "1+1\n")
        .code(7)
        .stderr(predicate::str::contains("TLS failed"));
}

#[test]
fn mosquitto_one_liners_get_text_and_json_answers_in_kind() {
    let broker = Broker::start();
    let prefix = unique_prefix("oneliners");
    let _server = Server::start(&broker, &prefix);
    example("bash", "mosquitto_oneliners.sh", &broker.url(), &prefix)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("\n14\n")
                .and(predicate::str::contains("{\"ok\":3.5}"))
                .and(predicate::str::contains(
                    "all one-liners answered as expected",
                )),
        );
}

#[test]
fn the_python_gather_example_reaches_every_server_of_a_group_once() {
    require_python_deps();
    let broker = Broker::start();
    let prefix = unique_prefix("pygather");
    let shared = broker.dir().join("group-data");
    let member = |id: &str| {
        Server::start_with(
            &broker,
            &prefix,
            &shared,
            &["--server-id", id, "--group", "g"],
        )
    };
    let _servers = [member("g1"), member("g2")];
    let out = example("python3", "python_gather.py", &broker.url(), &prefix)
        .args(["calc", "2*21"])
        .assert()
        .success();
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.get_output().stdout)
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    assert_eq!(lines, ["g1 42", "g2 42"]);
    example("python3", "python_gather.py", &broker.url(), &prefix)
        .args(["--replies", "1", "echo", "hi"])
        .assert()
        .success()
        .stdout(predicate::str::ends_with(" hi\n").and(predicate::str::contains("\n").count(1)));
}
