//! Self-description: `mqttapp serve` publishes what it offers on
//! `<prefix>/v1/describe/<server-id>` (retained), `mqttapp describe` and
//! the shell's `help` show it; real Mosquitto, real binary.

mod common;

use std::time::Duration;

use common::{auth, mqttapp, unique_prefix, Broker, Server};
use mqttapp::describe::builder::{Builder, ExtraOp};
use predicates::prelude::*;

/// A server with its own id and data directory under the broker's dir.
fn server(broker: &Broker, prefix: &str, id: &str, extra: &[&str]) -> Server {
    let dir = broker.dir().join(format!("data-{prefix}-{id}"));
    let mut args = vec!["--server-id", id];
    args.extend_from_slice(extra);
    Server::start_with(broker, prefix, &dir, &args)
}

fn stdout_of(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out).expect("UTF-8 output")
}

fn json_of(cmd: &mut assert_cmd::Command) -> serde_json::Value {
    let text = stdout_of(cmd);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Publishes `payload` retained on `topic` with mosquitto_pub.
fn publish_retained(broker: &Broker, topic: &str, payload: &[u8]) {
    let file = broker
        .dir()
        .join(format!("payload-{}", topic.replace('/', "_")));
    std::fs::write(&file, payload).expect("write payload");
    let status = broker
        .mqtt5_tool("mosquitto_pub")
        .args(["-r", "-q", "1", "-t", topic, "-f"])
        .arg(&file)
        .status()
        .expect("run mosquitto_pub");
    assert!(status.success(), "mosquitto_pub {topic}");
}

/// The retained payload on `topic`, if any (mosquitto_sub, 2 s).
fn retained_on(broker: &Broker, topic: &str) -> Option<Vec<u8>> {
    let out = broker
        .mqtt5_tool("mosquitto_sub")
        .args(["-t", topic, "-C", "1", "-W", "2", "--retained-only"])
        .output()
        .expect("run mosquitto_sub");
    (!out.stdout.is_empty()).then_some(out.stdout)
}

#[test]
fn describe_lists_calc_echo_and_edit_from_a_running_server() {
    let broker = Broker::start();
    let prefix = unique_prefix("describe-list");
    let _server = server(&broker, &prefix, "alpha", &[]);
    let text = stdout_of(mqttapp(&broker, &prefix).arg("describe"));
    for line in [
        "calc  evaluate an arithmetic expression exactly",
        "echo  return the text unchanged",
        "edit  change or show a text file in the server's data directory",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(line) && l.ends_with("alpha")),
            "{line:?} in\n{text}"
        );
    }
}

#[test]
fn a_server_without_edit_describes_no_edit_and_describe_edit_exits_2() {
    let broker = Broker::start();
    let prefix = unique_prefix("describe-noedit");
    let _server = server(&broker, &prefix, "lean", &["--no-edit"]);
    let json = json_of(mqttapp(&broker, &prefix).args(["describe", "--json"]));
    let names: Vec<&str> = json
        .as_array()
        .expect("an array")
        .iter()
        .map(|op| op["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["calc", "echo"]);
    mqttapp(&broker, &prefix)
        .args(["describe", "edit"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(
            "no online server offers `edit`; offered: calc, echo",
        ));
}

#[test]
fn describe_calc_json_has_fields_limits_examples_codes_and_the_servers_own_limits() {
    let broker = Broker::start();
    let prefix = unique_prefix("describe-limits");
    let config = broker.dir().join("limits.toml");
    std::fs::write(
        &config,
        "[limits]\nmax_expr_bytes = 100\nmax_payload_bytes = 5000\n",
    )
    .expect("write config");
    let config = config.display().to_string();
    let _server = server(&broker, &prefix, "tight", &["--config", &config]);
    let calc = json_of(mqttapp(&broker, &prefix).args(["describe", "calc", "--json"]));
    assert_eq!(calc["name"], "calc");
    assert_eq!(calc["servers"], serde_json::json!(["tight"]));
    assert_eq!(calc["fields"][0]["name"], "expr");
    assert_eq!(calc["fields"][0]["required"], true);
    let limit = |name: &str| {
        calc["limits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {calc}"))["value"]
            .clone()
    };
    assert_eq!(limit("max_expr_bytes"), 100);
    assert_eq!(limit("max_payload_bytes"), 5000);
    assert_eq!(
        limit("max_depth"),
        64,
        "an unchanged limit keeps its default"
    );
    assert!(calc["examples"].as_array().unwrap().len() >= 2);
    assert!(calc["codes"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("limit")));
    // The described limit is the one the server applies.
    mqttapp(&broker, &prefix)
        .args(["ask", "calc", &"1+".repeat(50)])
        .arg("1")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("limit"));
    let text = stdout_of(mqttapp(&broker, &prefix).args(["describe", "calc"]));
    assert!(text.contains("  max_expr_bytes     100 bytes\n"), "{text}");
    assert!(
        text.contains("  {\"expr\":\"2+3*4\"}  ->  {\"ok\":14}\n"),
        "{text}"
    );
}

#[test]
fn two_servers_are_merged_into_one_listing_with_both_ids() {
    let broker = Broker::start();
    let prefix = unique_prefix("describe-two");
    let _a = server(&broker, &prefix, "srv-a", &["--group", "g"]);
    let _b = server(&broker, &prefix, "srv-b", &["--group", "g", "--no-edit"]);
    let json = json_of(mqttapp(&broker, &prefix).args(["describe", "--json"]));
    let servers = |op: &str| {
        json.as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == op)
            .unwrap_or_else(|| panic!("{op} in {json}"))["servers"]
            .clone()
    };
    assert_eq!(servers("calc"), serde_json::json!(["srv-a", "srv-b"]));
    assert_eq!(servers("echo"), serde_json::json!(["srv-a", "srv-b"]));
    assert_eq!(servers("edit"), serde_json::json!(["srv-a"]));
    let text = stdout_of(mqttapp(&broker, &prefix).args(["describe", "echo"]));
    assert!(text.contains("offered by: srv-a, srv-b\n"), "{text}");
}

#[test]
fn describe_without_an_online_server_exits_6() {
    let broker = Broker::start();
    let prefix = unique_prefix("describe-none");
    mqttapp(&broker, &prefix)
        .arg("describe")
        .assert()
        .code(6)
        .stdout("")
        .stderr(predicate::str::contains("no server online under"));
    mqttapp(&broker, &prefix)
        .args(["describe", "calc", "--json"])
        .assert()
        .code(6)
        .stdout(predicate::str::contains(r#""code":"no_server""#));
}

#[test]
fn an_operation_nobody_offers_exits_2_with_the_offered_ones() {
    let broker = Broker::start();
    let prefix = unique_prefix("describe-unknown");
    let _server = server(&broker, &prefix, "alpha", &[]);
    mqttapp(&broker, &prefix)
        .args(["describe", "frobnicate"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no online server offers `frobnicate`; offered: calc, echo, edit",
        ));
}

#[test]
fn the_shell_help_shows_the_described_operations_and_one_description() {
    let broker = Broker::start();
    let prefix = unique_prefix("describe-shell");
    let _server = server(&broker, &prefix, "alpha", &["--no-edit"]);
    let text = stdout_of(
        mqttapp(&broker, &prefix)
            .arg("shell")
            .write_stdin("help\nhelp calc\ncalc 1+1\n"),
    );
    assert!(
        text.starts_with("Operations (as the servers online describe them):\n"),
        "{text}"
    );
    assert!(
        text.contains("  calc  evaluate an arithmetic expression exactly\n"),
        "{text}"
    );
    assert!(
        text.contains("  echo  return the text unchanged\n"),
        "{text}"
    );
    assert!(
        !text.contains("  edit  "),
        "a --no-edit server offers no edit:\n{text}"
    );
    assert!(
        text.contains("calc: evaluate an arithmetic expression exactly\noffered by: alpha\n"),
        "{text}"
    );
    assert!(
        text.contains("error codes: bad_request, parse, math, limit"),
        "{text}"
    );
    assert!(text.ends_with("\n2\n"), "{text}");
}

#[test]
fn forged_descriptions_are_not_shown_without_a_matching_online_status() {
    let broker = Broker::start();
    let prefix = unique_prefix("describe-forged");
    let topics = mqttapp::protocol::Topics::new(&prefix);
    let forged = |instance: &str| {
        Builder::new(Some(instance.into()))
            .extra(ExtraOp {
                name: "calc".into(),
                summary: "FORGED send your password here".into(),
                ..ExtraOp::default()
            })
            .extra(ExtraOp {
                name: "ghostop".into(),
                summary: "FORGED".into(),
                ..ExtraOp::default()
            })
            .build()
            .encode()
    };
    // A server id nobody runs: no status at all.
    publish_retained(&broker, &topics.describe("ghost"), &forged("anything"));
    mqttapp(&broker, &prefix).arg("describe").assert().code(6);
    mqttapp(&broker, &prefix)
        .args(["describe", "ghostop"])
        .assert()
        .code(6);
    let _server = server(&broker, &prefix, "real", &[]);
    // Over a running server's own description, with another instance.
    publish_retained(
        &broker,
        &topics.describe("real"),
        &forged("not-its-instance"),
    );
    let text = stdout_of(mqttapp(&broker, &prefix).arg("describe"));
    assert!(
        !text.contains("FORGED") && !text.contains("ghost"),
        "{text}"
    );
    assert!(text.contains("calc  (no description)  real"), "{text}");
    mqttapp(&broker, &prefix)
        .args(["describe", "ghostop"])
        .assert()
        .code(2);
}

#[test]
fn a_stopped_server_removes_its_description_and_a_killed_one_is_not_shown() {
    let broker = Broker::start();
    let prefix = unique_prefix("describe-stop");
    let topics = mqttapp::protocol::Topics::new(&prefix);
    let mut clean = server(&broker, &prefix, "clean", &[]);
    let mut killed = server(&broker, &prefix, "killed", &[]);
    assert!(retained_on(&broker, &topics.describe("clean")).is_some());
    assert_eq!(clean.terminate(), Some(0));
    assert_eq!(retained_on(&broker, &topics.describe("clean")), None);
    killed.kill();
    // The will says offline; the description stays retained, unshown.
    common::wait_until("the will's offline status", Duration::from_secs(10), || {
        !mqttapp(&broker, &prefix)
            .args(["status", "--json"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(r#""state":"online""#))
    });
    assert!(retained_on(&broker, &topics.describe("killed")).is_some());
    mqttapp(&broker, &prefix).arg("describe").assert().code(6);
}

#[test]
fn with_the_shipped_acl_only_servers_publish_descriptions_and_everybody_reads_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = unique_prefix("describe-acl");
    let users = [("mqttapp-server", "server-pw"), ("alice", "alice-pw")];
    let passwd = auth::password_file(dir.path(), &users);
    let acl = auth::shipped_acl(dir.path(), &prefix);
    let broker = Broker::start_with(&auth::listener(&passwd, Some(&acl)));
    let pw = auth::secret_file(dir.path(), "server.pw", "server-pw");
    let pw = pw.display().to_string();
    let data = dir.path().join("data");
    let _server = Server::start_with(
        &broker,
        &prefix,
        &data,
        &[
            "--username",
            "mqttapp-server",
            "--password-file",
            &pw,
            "--server-id",
            "s1",
        ],
    );
    let as_alice = || {
        let mut cmd = mqttapp(&broker, &prefix);
        cmd.env("MQTTAPP_USERNAME", "alice")
            .env("MQTTAPP_PASSWORD", "alice-pw");
        cmd
    };
    let text = stdout_of(as_alice().args(["describe", "echo"]));
    assert!(text.contains("offered by: s1\n"), "{text}");
    // alice may not write there: the broker refuses her retained message.
    let out = broker
        .mqtt5_tool("mosquitto_pub")
        .args(["-u", "alice", "-P", "alice-pw", "-r", "-q", "1"])
        .args(["-t", &format!("{prefix}/v1/describe/s1"), "-m", "forged"])
        .output()
        .expect("run mosquitto_pub");
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success() || said.contains("authorized"),
        "alice's publish was accepted: {said}"
    );
    let text = stdout_of(as_alice().args(["describe", "echo"]));
    assert!(text.contains("echo: return the text unchanged\n"), "{text}");
}

#[test]
fn tab_in_a_terminal_shell_completes_edits_described_actions() {
    use common::session::{command, in_terminal, Session};
    let broker = Broker::start();
    let prefix = unique_prefix("describe-tab");
    let server = server(&broker, &prefix, "alpha", &[]);
    let state = tempfile::tempdir().expect("temp dir");
    let mut cmd = in_terminal(&command(&broker, &prefix, &["shell"]));
    cmd.env("XDG_STATE_HOME", state.path())
        .env("HOME", state.path())
        .env("TERM", "xterm");
    let mut session = Session::start(cmd);
    session.wait_for("mqttapp> ", 1, Duration::from_secs(20));
    // `help` has the descriptions loaded (the prompt loads them in the
    // background too, but maybe not yet).
    session.send("help");
    session.wait_for("mqttapp> ", 2, Duration::from_secs(20));
    assert!(
        session
            .stdout()
            .contains("Operations (as the servers online describe them)"),
        "{}",
        session.stdout()
    );
    // Tab after `--ins` completes to `--insert `.
    session.send("edit --ins\t--line 1 hello");
    session.wait_for("mqttapp> ", 3, Duration::from_secs(20));
    session.send("quit");
    let (code, out, _) = session.finish(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{out}");
    let notes = std::fs::read_to_string(server.data_dir().join("notes.txt")).unwrap_or_default();
    assert_eq!(notes, "hello\n", "{out}");
}

#[test]
fn a_user_defined_operation_is_described_with_what_its_configuration_says() {
    let broker = Broker::start();
    let prefix = unique_prefix("describe-user");
    let config = broker.dir().join("ops.toml");
    std::fs::write(
        &config,
        "[ops.upper]\nprogram = \"tr\"\nargs = [\"a-z\", \"A-Z\"]\ntimeout = \"3s\"\n\
         max_concurrent = 2\ndescription = \"shouts its input\"\nexample = \"hello\"\n",
    )
    .expect("write config");
    let config = config.to_str().expect("UTF-8 path");
    let _server = server(
        &broker,
        &prefix,
        "shouter",
        &["--config", config, "--exec", "lower=tr A-Z a-z"],
    );
    let text = stdout_of(mqttapp(&broker, &prefix).arg("describe"));
    for line in [
        "upper  shouts its input",
        "lower  runs `tr A-Z a-z` on the server",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(line) && l.ends_with("shouter")),
            "{line:?} in\n{text}"
        );
    }
    let upper = json_of(mqttapp(&broker, &prefix).args(["describe", "upper", "--json"]));
    let limits = upper["limits"].as_array().expect("limits");
    let limit = |name: &str| {
        limits
            .iter()
            .find(|l| l["name"] == name)
            .map(|l| l["value"].clone())
    };
    assert_eq!(limit("timeout"), Some(serde_json::json!(3000)), "{upper}");
    assert_eq!(
        limit("max_concurrent"),
        Some(serde_json::json!(2)),
        "{upper}"
    );
    assert_eq!(upper["examples"][0]["input"], "hello", "{upper}");
    let codes = upper["codes"].as_array().expect("codes");
    assert!(codes.iter().any(|c| c == "failed"), "{upper}");
}
