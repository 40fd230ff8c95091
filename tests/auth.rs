//! Authentication against a Mosquitto password file: the password comes
//! from the environment, a file, the config file or a terminal prompt; a
//! wrong one is "authentication refused" with exit code 4; and it never
//! shows up in logs (even at -vv), errors, --help or the status topic.

mod common;

use std::path::Path;
use std::process::Command;

use common::{auth, mqttapp, unique_prefix, Broker, Server};
use predicates::prelude::*;

const SERVER_PW: &str = "srv-Pa55-word!";
const ALICE_PW: &str = "alice-S3cret#42";

/// A broker that wants passwords, a server logged in with a password file.
fn setup(name: &str) -> (tempfile::TempDir, Broker, String, Server) {
    let secrets = tempfile::tempdir().expect("temp dir");
    let passwd = auth::password_file(
        secrets.path(),
        &[("mqttapp-server", SERVER_PW), ("alice", ALICE_PW)],
    );
    let broker = Broker::start_with(&auth::listener(&passwd, None));
    let prefix = unique_prefix(name);
    let pw_file = auth::secret_file(secrets.path(), "server-password", SERVER_PW);
    let pw_arg = pw_file.display().to_string();
    let data = broker.dir().join("data");
    let args = [
        "--username",
        "mqttapp-server",
        "--password-file",
        &pw_arg,
        "-vv",
    ];
    let server = Server::start_with(&broker, &prefix, &data, &args);
    (secrets, broker, prefix, server)
}

/// The ways a password has leaked before: as text, and as the byte array
/// paho's derived `Debug` prints.
fn leak_forms(password: &str) -> [String; 2] {
    let bytes: Vec<String> = password.bytes().map(|b| b.to_string()).collect();
    [password.to_string(), bytes.join(", ")]
}

fn assert_no_secret(output: &str, password: &str, what: &str) {
    for form in leak_forms(password) {
        assert!(
            !output.contains(&form),
            "{what} shows the password as {form:?}:\n{output}"
        );
    }
}

#[test]
fn the_right_password_works_from_the_environment_a_file_and_the_config_file() {
    let (secrets, broker, prefix, _server) = setup("auth-ok");
    mqttapp(&broker, &prefix)
        .env("MQTTAPP_USERNAME", "alice")
        .env("MQTTAPP_PASSWORD", ALICE_PW)
        .args(["ask", "calc", "2+3*4"])
        .assert()
        .success()
        .stdout("14\n");
    let file = auth::secret_file(secrets.path(), "alice-password", ALICE_PW);
    let file = file.display().to_string();
    mqttapp(&broker, &prefix)
        .args(["--username", "alice", "--password-file", &file])
        .args(["ask", "echo", "hi"])
        .assert()
        .success()
        .stdout("hi\n");
    let config = secrets.path().join("mqttapp.toml");
    let toml = format!("username = \"alice\"\npassword_file = {file:?}\n");
    std::fs::write(&config, toml).expect("write config");
    mqttapp(&broker, &prefix)
        .args([
            "--config",
            &config.display().to_string(),
            "ask",
            "calc",
            "6*7",
        ])
        .assert()
        .success()
        .stdout("42\n");
    // The seed app's USERNAME/PASSWORD pair still works.
    mqttapp(&broker, &prefix)
        .env("USERNAME", "alice")
        .env("PASSWORD", ALICE_PW)
        .args(["ask", "calc", "1+1"])
        .assert()
        .success()
        .stdout("2\n");
}

#[test]
fn a_wrong_or_missing_password_is_refused_with_exit_4() {
    let (_secrets, broker, prefix, _server) = setup("auth-wrong");
    let wrong = "not-the-Password-123";
    let out = mqttapp(&broker, &prefix)
        .env("MQTTAPP_USERNAME", "alice")
        .env("MQTTAPP_PASSWORD", wrong)
        .args(["-vv", "ask", "calc", "1"])
        .assert()
        .code(4)
        .stdout("")
        .stderr(
            predicate::str::contains("authentication refused by the broker").and(
                predicate::str::contains("check --username (MQTTAPP_USERNAME) and the password"),
            ),
        );
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert_no_secret(&stderr, wrong, "a refused ask at -vv");
    mqttapp(&broker, &prefix)
        .args(["ask", "calc", "1"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("authentication refused"));
}

#[test]
fn the_password_prompt_reads_the_terminal_and_needs_one() {
    let (_secrets, broker, prefix, _server) = setup("auth-prompt");
    let bin = env!("CARGO_BIN_EXE_mqttapp");
    let line = format!(
        "{bin} --broker {} --prefix {prefix} --username alice --password-prompt ask calc 40+2",
        broker.url()
    );
    // `script` gives the binary a terminal; the password is typed into it.
    let mut script = Command::new("script");
    script.args(["-qec", &line, "/dev/null"]);
    let out = with_input(script, &format!("{ALICE_PW}\n"));
    assert!(
        out.contains("Password for alice at mqtt://127.0.0.1:"),
        "{out}"
    );
    assert!(out.contains("42"), "{out}");
    // Without a terminal (setsid: no controlling terminal) it is a usage error.
    mqttapp(&broker, &prefix)
        .args([
            "--username",
            "alice",
            "--password-prompt",
            "ask",
            "calc",
            "1",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--password-prompt needs a terminal",
        ))
        .get_output();
}

/// Runs `cmd` with `input` on stdin; returns stdout and stderr together.
fn with_input(mut cmd: Command, input: &str) -> String {
    use std::io::Write;
    use std::process::Stdio;
    for var in common::CLEARED_ENV {
        cmd.env_remove(var);
    }
    let mut child = cmd
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("`script` is installed (package bsdutils)");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait for script");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn passwords_never_appear_in_logs_errors_help_or_the_status() {
    let (secrets, broker, prefix, server) = setup("auth-secret");
    let out = mqttapp(&broker, &prefix)
        .env("MQTTAPP_USERNAME", "alice")
        .env("MQTTAPP_PASSWORD", ALICE_PW)
        .env("RUST_LOG", "trace")
        .args(["-vv", "ask", "calc", "2+3"])
        .assert()
        .success()
        .stdout("5\n");
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("DEBUG connected"), "{stderr}");
    assert!(server.log().contains("DEBUG answered"), "{}", server.log());
    assert_no_secret(&stderr, ALICE_PW, "ask -vv");
    assert_no_secret(&server.log(), SERVER_PW, "serve -vv");
    for args in [&["--help"][..], &["ask", "--help"], &["serve", "--help"]] {
        let out = mqttapp(&broker, &prefix)
            .env("MQTTAPP_PASSWORD", ALICE_PW)
            .args(args)
            .assert()
            .success();
        let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
        assert!(text.contains("--password-file"), "{text}");
        assert_no_secret(&text, ALICE_PW, "--help");
    }
    let status = retained_status(&broker, &prefix, secrets.path());
    assert!(status.contains("online"), "status: {status:?}");
    assert_no_secret(&status, SERVER_PW, "the status message");
}

/// The server's retained status, read with mosquitto_sub as alice.
fn retained_status(broker: &Broker, prefix: &str, _dir: &Path) -> String {
    let out = broker
        .mqtt5_tool("mosquitto_sub")
        .args(["-u", "alice", "-P", ALICE_PW, "-C", "1", "-W", "10"])
        .args(["-t", &format!("{prefix}/v1/status/+")])
        .output()
        .expect("mosquitto_sub is installed by `make setup` (package mosquitto-clients)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
