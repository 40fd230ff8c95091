//! The interactive shell through the real binary: piped commands (both
//! `mqttapp shell` and `mqttapp ask` without an operation), a real
//! terminal via `script`, and a broker restart in mid-session.

mod common;

use std::time::Duration;

use common::session::{command, in_terminal, Session};
use common::{mqttapp, unique_prefix, Broker, Server};
use predicates::prelude::*;

const COMMANDS: &str = "calc 2+3*4\necho \"two  spaces\"\n\n# a comment\nedit --line 2 two\nshow\n";
const RESULTS: &str = "14\ntwo  spaces\nnotes.txt: rev 1, 2 lines\n\ntwo\n";

#[test]
fn shell_reads_piped_commands_and_prints_one_result_per_line() {
    let broker = Broker::start();
    let prefix = unique_prefix("shell");
    let _server = Server::start(&broker, &prefix);
    mqttapp(&broker, &prefix)
        .arg("shell")
        .write_stdin(COMMANDS)
        .assert()
        .success()
        .stdout(RESULTS)
        .stderr("notes.txt: rev 1, 2 lines\n");
}

#[test]
fn ask_without_an_operation_is_the_shell() {
    let broker = Broker::start();
    let prefix = unique_prefix("askshell");
    let _server = Server::start(&broker, &prefix);
    mqttapp(&broker, &prefix)
        .arg("ask")
        .write_stdin(COMMANDS)
        .assert()
        .success()
        .stdout(RESULTS);
}

#[test]
fn a_failed_command_is_shown_with_its_line_and_the_session_goes_on() {
    let broker = Broker::start();
    let prefix = unique_prefix("goeson");
    let _server = Server::start(&broker, &prefix);
    mqttapp(&broker, &prefix)
        .arg("shell")
        .write_stdin("calc 1/0\nfrobnicate\necho \"open\nedit --line 2\necho still here\n")
        .assert()
        .code(1)
        .stdout("still here\n")
        .stderr(
            predicate::str::contains("line 1: error: math: division by zero")
                .and(predicate::str::contains(
                    "line 2: error: unknown command `frobnicate`",
                ))
                .and(predicate::str::contains("line 3: error: unmatched quote"))
                .and(predicate::str::contains(
                    "line 4: error: edit replace needs TEXT",
                )),
        );
}

#[test]
fn json_shell_prints_exactly_one_object_per_command() {
    let broker = Broker::start();
    let prefix = unique_prefix("jsonshell");
    let _server = Server::start(&broker, &prefix);
    let out = mqttapp(&broker, &prefix)
        .args(["ask", "--json"])
        .write_stdin("calc 7/2\necho hi\nfrobnicate\ncalc 1/0\nshow\n")
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(lines[0], serde_json::json!({"ok": 3.5}));
    assert_eq!(lines[1], serde_json::json!({"ok": "hi"}));
    assert_eq!(lines[2]["err"]["code"], "usage");
    assert_eq!(lines[3]["err"]["code"], "math");
    assert_eq!(lines[3]["err"]["at"], 1);
    assert_eq!(lines[4]["ok"]["file"], "notes.txt");
}

#[test]
fn quiet_shell_prints_no_results_and_the_exit_code_tells() {
    let broker = Broker::start();
    let prefix = unique_prefix("quietshell");
    let _server = Server::start(&broker, &prefix);
    mqttapp(&broker, &prefix)
        .args(["-q", "shell"])
        .write_stdin("calc 1+1\necho hi\n")
        .assert()
        .success()
        .stdout("")
        .stderr("");
    mqttapp(&broker, &prefix)
        .args(["--quiet", "shell"])
        .write_stdin("calc 1+1\ncalc 1/0\n")
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("line 2: error: math"));
}

#[test]
fn quit_and_exit_end_the_session_before_later_lines() {
    let broker = Broker::start();
    let prefix = unique_prefix("quit");
    let _server = Server::start(&broker, &prefix);
    for word in ["quit", "exit"] {
        mqttapp(&broker, &prefix)
            .arg("shell")
            .write_stdin(format!("echo a\n{word}\necho b\n"))
            .assert()
            .success()
            .stdout("a\n");
    }
}

#[test]
fn help_inside_the_shell_lists_the_commands() {
    let broker = Broker::start();
    let prefix = unique_prefix("shellhelp");
    mqttapp(&broker, &prefix)
        .arg("shell")
        .write_stdin("help\nhelp edit\n")
        .assert()
        .success()
        .stdout(
            predicate::str::contains("calc")
                .and(predicate::str::contains("show"))
                .and(predicate::str::contains("quit"))
                .and(predicate::str::contains("--expect-rev")),
        );
}

#[test]
fn the_whole_session_uses_one_connection() {
    let broker = Broker::start();
    let prefix = unique_prefix("oneconn");
    let _server = Server::start(&broker, &prefix);
    mqttapp(&broker, &prefix)
        .arg("shell")
        .write_stdin("calc 1\ncalc 2\necho 3\nshow\ncalc 5\n")
        .assert()
        .success();
    let log = broker.log();
    let connects = log
        .lines()
        .filter(|l| l.contains("New client connected") && l.contains("mqttapp-ask-"))
        .count();
    assert_eq!(connects, 1, "{log}");
}

#[test]
fn a_shell_that_cannot_connect_exits_with_the_connect_code() {
    let broker = Broker::start();
    let prefix = unique_prefix("shelldown");
    mqttapp(&broker, &prefix)
        .args(["shell", "--broker", "mqtt://127.0.0.1:1"])
        .write_stdin("calc 1\n")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("point --broker at yours"));
}

#[test]
fn the_shell_reconnects_after_a_broker_restart() {
    let mut broker = Broker::start();
    let prefix = unique_prefix("restart");
    let _server = Server::start(&broker, &prefix);
    let mut session = Session::start(command(&broker, &prefix, &["shell"]));
    session.send("calc 6*7");
    session.wait_for("42\n", 1, Duration::from_secs(20));
    broker.restart();
    // One command may fail while the connection comes back; a later one
    // must succeed over the re-opened connection.
    for n in 0..5 {
        session.send(&format!("echo after-{n}"));
        std::thread::sleep(Duration::from_millis(500));
        if session.stdout().contains("after-") {
            break;
        }
    }
    session.wait_for("after-", 1, Duration::from_secs(30));
    let (_, stdout, stderr) = session.finish(Duration::from_secs(30));
    assert!(stdout.starts_with("42\n"), "{stdout}\n{stderr}");
}

#[test]
fn a_terminal_session_has_a_prompt_colour_and_a_history_without_bad_lines() {
    let broker = Broker::start();
    let prefix = unique_prefix("tty");
    let _server = Server::start(&broker, &prefix);
    let state = tempfile::tempdir().unwrap();
    let mut cmd = in_terminal(&command(&broker, &prefix, &["shell"]));
    cmd.env_remove("NO_COLOR")
        .env("XDG_STATE_HOME", state.path())
        .env("HOME", state.path())
        .env("TERM", "xterm");
    let mut session = Session::start(cmd);
    let lines = [
        "calc 2+3",
        "frobnicate hunter2",
        " echo private",
        "echo shown",
    ];
    for (n, line) in lines.iter().enumerate() {
        session.wait_for("mqttapp> ", n + 1, Duration::from_secs(20));
        session.send(line);
    }
    session.wait_for("mqttapp> ", lines.len() + 1, Duration::from_secs(20));
    session.send("quit");
    let (code, out, _) = session.finish(Duration::from_secs(20));
    assert_eq!(code, Some(1), "frobnicate failed:\n{out}");
    assert!(out.contains("5\r\n") && out.contains("shown\r\n"), "{out}");
    assert!(
        out.contains("\u{1b}[31m"),
        "errors are red on a terminal:\n{out}"
    );
    let history = std::fs::read_to_string(state.path().join("mqttapp/history")).unwrap();
    assert!(history.contains("calc 2+3") && history.contains("echo shown"));
    assert!(!history.contains("hunter2"), "{history}");
    assert!(!history.contains("private"), "{history}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(state.path().join("mqttapp/history"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn no_color_keeps_a_terminal_session_plain() {
    let broker = Broker::start();
    let prefix = unique_prefix("nocolor");
    let state = tempfile::tempdir().unwrap();
    let mut cmd = in_terminal(&command(&broker, &prefix, &["shell"]));
    cmd.env("NO_COLOR", "1")
        .env("XDG_STATE_HOME", state.path())
        .env("TERM", "xterm");
    let mut session = Session::start(cmd);
    session.wait_for("mqttapp> ", 1, Duration::from_secs(20));
    session.send("frobnicate");
    session.wait_for("mqttapp> ", 2, Duration::from_secs(20));
    session.send("quit");
    let (_, out, _) = session.finish(Duration::from_secs(20));
    assert!(out.contains("error: unknown command"), "{out}");
    assert!(!out.contains("\u{1b}[31m"), "{out}");
}
