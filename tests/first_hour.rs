//! A new user's first hour, through the real binary: flags anywhere on the
//! line, JSON for every failure under `--json`, one address parser, one
//! message for bad durations, config from the user's config directory,
//! help by task, and the small things (1-based characters, `**`, "1 line",
//! bare `mqttapp`).

mod common;

use common::{mqttapp, unique_prefix, Broker, Server};
use predicates::prelude::*;

/// The binary without a broker, in an empty directory, with an empty
/// user config directory.
fn bare() -> (assert_cmd::Command, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_mqttapp"));
    for var in common::CLEARED_ENV {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", dir.path().join("xdg"))
        .current_dir(dir.path());
    (cmd, dir)
}

/// The one message for a bad duration (`mqttapp::config::DURATION_FORMS`).
const DURATION_FORMS: &str =
    "use a positive number of seconds (5, 2.5) or a number and a unit (500ms, 10s, 2m, 1h)";

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The one JSON object a failed command printed on stdout.
fn json_failure(args: &[&str]) -> serde_json::Value {
    let (mut cmd, _dir) = bare();
    let out = cmd.args(args).output().unwrap();
    let stdout = stdout_of(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr_of(&out));
    assert_eq!(stdout.lines().count(), 1, "{args:?}: stdout {stdout:?}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout:?}"))
}

// ---- target 2: options anywhere, JSON for every failure -------------------

#[test]
fn options_after_the_text_are_options_and_text_after_dashes_is_text() {
    let broker = Broker::start();
    let prefix = unique_prefix("anywhere");
    let _server = Server::start(&broker, &prefix);
    let ask = |args: &[&str]| {
        let out = mqttapp(&broker, &prefix).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
        stdout_of(&out)
    };
    assert_eq!(ask(&["ask", "calc", "1+1", "--timeout", "5s"]), "2\n");
    assert_eq!(ask(&["ask", "echo", "hi", "--json"]), "{\"ok\":\"hi\"}\n");
    assert_eq!(ask(&["ask", "echo", "--", "--json"]), "--json\n");
    assert_eq!(ask(&["ask", "calc", "-2*3", "--json"]), "{\"ok\":-6}\n");
    assert_eq!(
        ask(&["ask", "edit", "first", "line", "--append", "--file", "a.txt"]),
        "a.txt: rev 1, 1 line\n"
    );
    // The shell and batches read lines with the same rule.
    mqttapp(&broker, &prefix)
        .args(["ask", "--batch"])
        .write_stdin("echo -- --json a\nedit second --append --file a.txt\n")
        .assert()
        .success()
        .stdout("--json a\na.txt: rev 2, 2 lines\n");
}

#[test]
fn every_usage_error_under_json_is_one_json_object_on_stdout() {
    let cases: &[&[&str]] = &[
        &["ask", "--json", "calc"],
        &["ask", "calc", "1", "--json", "--timeout", "5x"],
        &["ask", "calc", "1", "--json", "--nope"],
        &["ask", "--json", "edit", "--line", "abc", "x"],
        &["ask", "--json", "--broker", "mqtt://h:99999", "calc", "1"],
        &["status", "--json", "--wait", "5x"],
        &["bench", "--json", "--duration", "5x"],
        &["ask", "--json", "-h", "localhost", "calc", "1"],
    ];
    for args in cases {
        let v = json_failure(args);
        assert_eq!(v["err"]["code"], "usage", "{args:?}: {v}");
        let message = v["err"]["message"].as_str().unwrap();
        assert!(!message.is_empty() && !message.contains('\n'), "{args:?}");
    }
}

// ---- targets 4 and 5: addresses, durations, config ---------------------------

#[test]
fn the_seed_broker_with_a_port_and_the_config_file_reach_the_broker() {
    let broker = Broker::start();
    let prefix = unique_prefix("address");
    let _server = Server::start(&broker, &prefix);
    let addr = format!("127.0.0.1:{}", broker.port());
    mqttapp(&broker, &prefix)
        .env_remove("MQTTAPP_BROKER")
        .env("BROKER", &addr)
        .args(["ask", "calc", "1+1"])
        .assert()
        .success()
        .stdout("2\n");
    // The user's config file, with a duration as a bare number.
    let xdg = tempfile::tempdir().unwrap();
    let file = xdg.path().join("mqttapp").join("config.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        &file,
        format!("broker = \"{addr}\"\nprefix = \"{prefix}\"\ntimeout = 7\n"),
    )
    .unwrap();
    let (mut cmd, _dir) = bare();
    cmd.env("XDG_CONFIG_HOME", xdg.path())
        .args(["-v", "ask", "calc", "2+3"])
        .assert()
        .success()
        .stdout("5\n")
        .stderr(predicate::str::contains(format!(
            "using config file {}",
            file.display()
        )));
}

#[test]
fn bad_addresses_are_usage_errors_and_host_port_habits_get_a_hint() {
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: &[Case] = &[
        (&[], &["--broker", "mqtt://h:99999"], "from 1 to 65535"),
        (&[("BROKER", "h"), ("PORT", "abc")], &[], "PORT"),
        (&[("MQTTAPP_BROKER", "h:1:2")], &[], "more than one ':'"),
    ];
    for (env, flags, needle) in cases {
        let (mut cmd, _dir) = bare();
        for (k, v) in *env {
            cmd.env(k, v);
        }
        let out = cmd
            .args(*flags)
            .args(["ask", "calc", "1"])
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{env:?} {flags:?}: {err}");
        assert!(err.contains(needle), "{env:?} {flags:?}: {err}");
        assert!(!err.contains("resolve"), "{err}");
    }
    for args in [
        &["ask", "-h", "localhost", "calc", "1"][..],
        &["serve", "-p", "1883"],
        &["status", "--host", "localhost"],
        &["ask", "--port=1883", "calc", "1"],
    ] {
        let (mut cmd, _dir) = bare();
        cmd.args(args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--broker mqtt://HOST:PORT"));
    }
}

#[test]
fn bad_durations_get_one_message_everywhere() {
    let cases: &[(&[&str], &str)] = &[
        (&["ask", "--timeout", "5x", "calc", "1"], "fix --timeout"),
        (&["ask", "calc", "1", "--timeout", "-1"], "fix --timeout"),
        (&["ask", "--timeout", "0", "calc", "1"], "fix --timeout"),
        (&["bench", "--duration", "5x"], "fix --duration"),
        (&["status", "--wait", "-2"], "fix --wait"),
        (
            &["serve", "--session-expiry", "1y2"],
            "fix --session-expiry",
        ),
    ];
    for (args, fix) in cases {
        let (mut cmd, _dir) = bare();
        let out = cmd.args(*args).output().unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(DURATION_FORMS), "{args:?}: {err}");
        assert!(err.contains(fix), "{args:?}: {err}");
        for leak in ["supported units", "----", "unexpected argument"] {
            assert!(!err.contains(leak), "{args:?}: {err}");
        }
    }
}

#[test]
fn hints_speak_of_an_installed_tool() {
    let (mut cmd, _dir) = bare();
    let out = cmd
        .args(["ask", "--broker", "127.0.0.1:1", "calc", "1"])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(!err.contains("make broker"), "{err}");
    assert!(err.contains("--broker"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "bogus = 1\n").unwrap();
    let (mut cmd, _dir) = bare();
    let out = cmd
        .arg("--config")
        .arg(&bad)
        .args(["ask", "calc", "1"])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("config/mqttapp.toml"), "{err}");
    assert!(err.contains("expected one of"), "{err}");
}

// ---- target 1: help by task ------------------------------------------------

#[test]
fn help_shows_a_commands_own_flags_first_and_examples_for_each_operation() {
    for op in ["calc", "echo", "edit"] {
        let (mut cmd, _dir) = bare();
        let out = cmd.args(["ask", op, "-h"]).output().unwrap();
        let help = stdout_of(&out);
        assert!(out.status.success());
        let examples = help.split("Examples:").nth(1).unwrap_or("");
        let count = examples
            .lines()
            .filter(|l| l.trim_start().starts_with("mqttapp ask"))
            .count();
        assert!((2..=4).contains(&count), "ask {op} -h: {count} examples");
        let connection = help.find("Connection and TLS").expect("heading");
        assert!(help.find("--help").unwrap() < connection, "{help}");
        assert!(help.find("--broker").unwrap() > connection, "{help}");
        assert!(help.contains("Logging and colour"), "{help}");
    }
    let (mut cmd, _dir) = bare();
    let out = cmd.args(["ask", "edit", "-h"]).output().unwrap();
    let help = stdout_of(&out);
    let connection = help.find("Connection and TLS").unwrap();
    for flag in [
        "--line",
        "--insert",
        "--append",
        "--delete",
        "--show",
        "--file",
        "--expect-rev",
    ] {
        assert!(help.find(flag).unwrap() < connection, "{flag}");
    }
}

#[test]
fn completions_offers_no_connection_flags() {
    let (mut cmd, _dir) = bare();
    cmd.args(["completions", "-h"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--broker").not())
        .stdout(predicate::str::contains("Examples:"));
    let (mut cmd, _dir) = bare();
    let out = cmd.args(["completions", "bash"]).output().unwrap();
    let script = stdout_of(&out);
    let section = script
        .split("mqttapp__subcmd__completions)")
        .nth(1)
        .and_then(|s| s.lines().nth(1))
        .unwrap();
    assert!(
        section.contains("bash") && !section.contains("--broker"),
        "{section}"
    );
    // Every other command still completes them.
    assert!(script.contains("--broker"));
}

// ---- target 7: the small things --------------------------------------------

#[test]
fn calc_errors_count_characters_from_one_and_know_python_powers() {
    let broker = Broker::start();
    let prefix = unique_prefix("small");
    let _server = Server::start(&broker, &prefix);
    mqttapp(&broker, &prefix)
        .args(["ask", "calc", "2+)"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("(at character 3)"));
    // The wire's `at` stays the 0-based offset (docs/PROTOCOL.md).
    mqttapp(&broker, &prefix)
        .args(["ask", "calc", "2+)", "--json"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("\"at\":2"));
    mqttapp(&broker, &prefix)
        .args(["ask", "calc", "2**3"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("powers are written ^"));
    let out = mqttapp(&broker, &prefix)
        .args(["-v", "--username", "bob", "ask", "calc", "1"])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(err.contains("bob") && !err.contains("Some("), "{err}");
}

#[test]
fn no_rust_internals_in_messages_and_bare_mqttapp_is_short() {
    let (mut cmd, _dir) = bare();
    let out = cmd
        .args(["ask", "edit", "--line", "abc", "x"])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(!err.contains("invalid digit"), "{err}");
    assert!(err.contains("whole number"), "{err}");
    let (mut cmd, _dir) = bare();
    let out = cmd.output().unwrap();
    let usage = stdout_of(&out);
    assert!(out.status.success());
    assert!(usage.contains("Usage: mqttapp <COMMAND>"), "{usage}");
    assert!(usage.lines().count() <= 20, "{usage}");
}

#[test]
fn the_shell_suggests_the_command_meant() {
    let broker = Broker::start();
    let prefix = unique_prefix("didyoumean");
    let _server = Server::start(&broker, &prefix);
    mqttapp(&broker, &prefix)
        .arg("shell")
        .write_stdin("clac 1+1\ncalc 1+1\ncalc\n")
        .assert()
        .code(1)
        .stdout("2\n")
        .stderr(predicate::str::contains("did you mean `calc`"))
        .stderr(predicate::str::contains(
            "line 3: error: the following required arguments were not provided: <EXPR>... - usage: calc <EXPR>...",
        ));
}

#[test]
fn bench_says_when_duration_stopped_it() {
    let broker = Broker::start();
    let prefix = unique_prefix("benchstop");
    let _server = Server::start(&broker, &prefix);
    let out = mqttapp(&broker, &prefix)
        .args(["bench", "--connections", "1", "--window", "4"])
        .args(["--count", "100000000", "--duration", "1", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["stopped_by_duration"], true, "{report}");
    assert_eq!(report["lost"], 0);
}

// ---- target 3: guard rails -------------------------------------------------

#[test]
fn dlq_names_its_directory_refuses_a_missing_one_and_skips_hopeless_letters() {
    let (mut cmd, dir) = bare();
    let missing = dir.path().join("no-such-dir");
    cmd.arg("dlq")
        .arg("--data-dir")
        .arg(&missing)
        .arg("list")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(missing.display().to_string()))
        .stderr(predicate::str::contains("does not exist"));

    let broker = Broker::start();
    let prefix = unique_prefix("hopeless");
    let server = Server::start(&broker, &prefix);
    let client = common::load::LoadClient::connect(&broker, &prefix, &format!("{prefix}-c"));
    client.send(&format!("{prefix}/v1/req/nope"), b"1", b"nope", None);
    client
        .next(std::time::Duration::from_secs(20))
        .expect("the unknown_op reply");
    let data_dir = server.data_dir().to_path_buf();
    let dlq = |args: &[&str]| {
        let mut cmd = mqttapp(&broker, &prefix);
        cmd.arg("dlq").arg("--data-dir").arg(&data_dir).args(args);
        cmd
    };
    common::wait_until(
        "the dead letter",
        std::time::Duration::from_secs(10),
        || {
            let out = dlq(&["list", "--json"]).output().unwrap();
            stdout_of(&out).contains("unknown_op")
        },
    );
    dlq(&["list"])
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "1 dead letter(s) in {}",
            data_dir.display()
        )));
    dlq(&["replay", "--all"])
        .assert()
        .success()
        .stderr(predicate::str::contains("replayed 0 dead letter(s)"))
        .stderr(predicate::str::contains("skipped 1"));
    dlq(&["replay", "--all", "--force"])
        .assert()
        .success()
        .stderr(predicate::str::contains("replayed 1 dead letter(s)"));
}

#[test]
fn status_forget_removes_an_offline_servers_entry_only() {
    let broker = Broker::start();
    let prefix = unique_prefix("forget");
    let mut gone = Server::start_with(
        &broker,
        &prefix,
        &broker.dir().join("gone"),
        &["--server-id", "gone"],
    );
    assert_eq!(gone.terminate(), Some(0));
    let _alive = Server::start_with(
        &broker,
        &prefix,
        &broker.dir().join("alive"),
        &["--server-id", "alive"],
    );
    let status = || {
        let out = mqttapp(&broker, &prefix)
            .args(["status", "--json"])
            .output()
            .unwrap();
        stdout_of(&out)
    };
    assert!(status().contains("\"gone\""));
    mqttapp(&broker, &prefix)
        .args(["status", "--forget", "alive"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is online"));
    mqttapp(&broker, &prefix)
        .args(["status", "--forget", "nobody"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no server \"nobody\""));
    mqttapp(&broker, &prefix)
        .args(["status", "--forget", "gone"])
        .assert()
        .success();
    let rows = status();
    assert!(
        !rows.contains("\"gone\"") && rows.contains("\"alive\""),
        "{rows}"
    );
}

/// Kills the spawned server when the test ends, passed or not.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_waits_for_a_broker_that_starts_later() {
    let mut broker = Broker::start();
    let prefix = unique_prefix("waitbroker");
    broker.kill();
    let data_dir = tempfile::tempdir().unwrap();
    let mut serve = common::mqttapp_std(&broker, &prefix);
    serve
        .args(["serve", "--wait-for-broker", "60s", "--server-id", "late"])
        .arg("--data-dir")
        .arg(data_dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = Child(serve.spawn().unwrap());
    // The server is trying (not exited 3) while the broker is down.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(child.0.try_wait().unwrap().is_none(), "serve gave up");
    broker.restart();
    mqttapp(&broker, &prefix)
        .args(["ask", "--timeout", "30", "calc", "1+1"])
        .assert()
        .success()
        .stdout("2\n");
}

// ---- target 6: the shell ---------------------------------------------------

#[test]
fn ctrl_c_in_the_shell_cancels_the_pending_request_not_the_session() {
    use std::io::Write;
    use std::time::Duration;
    let broker = Broker::start();
    let prefix = unique_prefix("ctrlc");
    let server = Server::start(&broker, &prefix);
    let lock = common::hold_edit_lock(server.data_dir(), "notes.txt");
    let state = tempfile::tempdir().unwrap();
    let mut cmd =
        common::session::in_terminal(&common::session::command(&broker, &prefix, &["shell"]));
    cmd.env("XDG_STATE_HOME", state.path())
        .env("HOME", state.path())
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = Child(cmd.spawn().unwrap());
    let mut stdin = child.0.stdin.take().unwrap();
    let out = common::session::collect(child.0.stdout.take().unwrap());
    let wait_for = |needle: &str, times: usize| {
        common::wait_until(needle, Duration::from_secs(20), || {
            out.lock().unwrap().matches(needle).count() >= times
        });
    };
    wait_for("mqttapp> ", 1);
    assert!(out.lock().unwrap().contains("1 server online"));
    stdin.write_all(b"edit --append blocked\n").unwrap();
    // The edit waits behind the held lock; Ctrl-C gives it up.
    std::thread::sleep(Duration::from_millis(1000));
    stdin.write_all(b"\x03").unwrap();
    wait_for("cancelled (Ctrl-C)", 1);
    drop(lock);
    wait_for("mqttapp> ", 2);
    stdin.write_all(b"calc 1+1\n").unwrap();
    wait_for("2\r\n", 1);
    stdin.write_all(b"quit\n").unwrap();
    common::wait_until("the shell to end", Duration::from_secs(20), || {
        child.0.try_wait().unwrap().is_some()
    });
    let code = child.0.wait().unwrap().code();
    assert_eq!(
        code,
        Some(1),
        "one command failed (cancelled), none killed the session"
    );
}

#[test]
fn a_plain_batch_prints_one_line_per_request_and_refuses_show() {
    let broker = Broker::start();
    let prefix = unique_prefix("batchshow");
    let _server = Server::start(&broker, &prefix);
    mqttapp(&broker, &prefix)
        .args(["ask", "--batch"])
        .write_stdin("edit --append a\nedit --append b\nshow\ncalc 1+1\n")
        .assert()
        .code(1)
        .stdout(predicate::str::is_match("^notes.txt: rev 1, 1 line\nnotes.txt: rev 2, 2 lines\nerror: usage: show prints the whole file[^\n]*--json[^\n]*\n2\n$").unwrap());
    // With --json the file is one JSON string: one line.
    let out = mqttapp(&broker, &prefix)
        .args(["ask", "--batch", "--json"])
        .write_stdin("show\n")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(stdout_of(&out).lines().count(), 1);
}

#[test]
fn a_second_server_is_warned_about_the_first() {
    let broker = Broker::start();
    let prefix = unique_prefix("neighbours");
    let _first = Server::start_with(
        &broker,
        &prefix,
        &broker.dir().join("first"),
        &["--server-id", "first"],
    );
    let mut second = Server::start_with(
        &broker,
        &prefix,
        &broker.dir().join("second"),
        &["--server-id", "second"],
    );
    second.wait_for_log(
        "server \"first\" already answers requests",
        std::time::Duration::from_secs(20),
    );
    let mut again = Server::start_with(
        &broker,
        &prefix,
        &broker.dir().join("again"),
        &["--server-id", "first"],
    );
    again.wait_for_log(
        "server id \"first\" is already online",
        std::time::Duration::from_secs(20),
    );
}

#[test]
fn a_lost_connection_is_reported_without_paho_pointers() {
    let mut broker = Broker::start();
    let prefix = unique_prefix("lostconn");
    let server = Server::start(&broker, &prefix);
    let lock = common::hold_edit_lock(server.data_dir(), "notes.txt");
    let ask = common::mqttapp_std(&broker, &prefix)
        .args(["ask", "--timeout", "3", "edit", "--append", "x"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The edit waits behind the lock; then the broker goes away.
    std::thread::sleep(std::time::Duration::from_millis(1000));
    broker.kill();
    let out = ask.wait_with_output().unwrap();
    drop(lock);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    assert!(!err.contains("Client: 0x"), "{err}");
}

#[test]
fn status_forget_needs_the_right_to_write_statuses() {
    use common::auth;
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("forgetacl");
    let users = [("mqttapp-server", "server-pw"), ("alice", "alice-pw")];
    let passwd = auth::password_file(dir.path(), &users);
    let acl = auth::shipped_acl(dir.path(), &prefix);
    let broker = Broker::start_with(&auth::listener(&passwd, Some(&acl)));
    let pw = auth::secret_file(dir.path(), "server.pw", "server-pw");
    let pw = pw.display().to_string();
    let mut server = Server::start_with(
        &broker,
        &prefix,
        &dir.path().join("data"),
        &[
            "--username",
            "mqttapp-server",
            "--password-file",
            &pw,
            "--server-id",
            "gone",
        ],
    );
    assert_eq!(server.terminate(), Some(0));
    let forget_as = |user: &str, password: &str| {
        let mut cmd = mqttapp(&broker, &prefix);
        cmd.env("MQTTAPP_USERNAME", user)
            .env("MQTTAPP_PASSWORD", password)
            .args(["status", "--forget", "gone"]);
        cmd
    };
    forget_as("alice", "alice-pw")
        .assert()
        .code(4)
        .stderr(predicate::str::contains("gone"));
    forget_as("mqttapp-server", "server-pw").assert().success();
}
