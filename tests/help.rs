//! First contact: --help, --version, completions, the man page, and error
//! messages that say what to do, all through the real binary.

mod common;

use clap::CommandFactory;
use common::{mqttapp, unique_prefix, Broker};
use mqttapp::cli::Cli;
use predicates::prelude::*;

/// The binary without a broker, run in an empty directory.
fn bare() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_mqttapp"));
    for var in common::CLEARED_ENV {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1").current_dir(std::env::temp_dir());
    cmd
}

#[test]
fn completions_generate_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = bare()
            .args(["completions", shell])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let script = String::from_utf8(out).unwrap();
        assert!(script.len() > 500, "{shell}: {script}");
        assert!(script.contains("mqttapp"), "{shell}");
        for word in ["serve", "ask", "shell", "broker", "timeout"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    bare().args(["completions", "tcsh"]).assert().code(2);
}

#[test]
fn bash_accepts_the_completion_script() {
    let out = bare().args(["completions", "bash"]).output().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mqttapp.bash");
    std::fs::write(&file, out.stdout).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p mqttapp", file.display()))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn every_subcommand_help_shows_env_vars_defaults_and_examples() {
    for sub in Cli::command().get_subcommands() {
        let name = sub.get_name();
        // `completions` has no use for connection flags (tests/first_hour.rs).
        if name == "help" || name == "completions" {
            continue;
        }
        let assert = bare().args([name, "--help"]).assert().success();
        let help = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
        for needle in [
            "MQTTAPP_BROKER",
            "MQTTAPP_PREFIX",
            "[default: mqtt://localhost:1883]",
        ] {
            assert!(
                help.contains(needle),
                "mqttapp {name} --help lacks {needle}"
            );
        }
        assert!(
            help.contains("Examples:"),
            "mqttapp {name} --help lacks examples"
        );
    }
}

#[test]
fn ask_help_teaches_timeout_json_quiet_and_exit_codes() {
    bare().args(["ask", "--help"]).assert().success().stdout(
        predicate::str::contains("MQTTAPP_TIMEOUT")
            .and(predicate::str::contains("[default: 5s]"))
            .and(predicate::str::contains("--json"))
            .and(predicate::str::contains("--quiet"))
            .and(predicate::str::contains("6 no server online"))
            .and(predicate::str::contains("mqttapp ask calc")),
    );
    bare().args(["serve", "--help"]).assert().success().stdout(
        predicate::str::contains("MQTTAPP_DATA_DIR").and(predicate::str::contains("MQTTAPP_GROUP")),
    );
}

#[test]
fn help_never_shows_a_password() {
    let assert = bare()
        .env("MQTTAPP_PASSWORD", "hunter2-secret")
        .env("MQTTAPP_USERNAME", "alice")
        .args(["ask", "--help"])
        .assert()
        .success();
    let out = assert.get_output();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hunter2"));
}

/// The Paho C release linked into the binary, as the library itself reports it.
fn linked_paho_c_version() -> String {
    // SAFETY: MQTTAsync_getVersionInfo returns a pointer to a static array
    // of name/value C strings ending with a null name; nothing is freed.
    unsafe {
        let mut entry = paho_mqtt_sys::MQTTAsync_getVersionInfo();
        while !(*entry).name.is_null() {
            let name = std::ffi::CStr::from_ptr((*entry).name).to_string_lossy();
            if name == "Version" {
                return std::ffi::CStr::from_ptr((*entry).value)
                    .to_string_lossy()
                    .into_owned();
            }
            entry = entry.add(1);
        }
    }
    panic!("Paho C reports no version")
}

#[test]
fn version_shows_ours_the_protocol_the_linked_paho_c_and_openssl() {
    let paho = linked_paho_c_version();
    bare().arg("--version").assert().success().stdout(
        predicate::str::starts_with(format!("mqttapp {}", env!("CARGO_PKG_VERSION")))
            .and(predicate::str::contains(format!("Eclipse Paho C {paho}")))
            .and(predicate::str::contains("protocol v1"))
            .and(predicate::str::contains("MQTT 5"))
            .and(predicate::str::is_match(r", OpenSSL 3\.\d+\.\d+\)").expect("regex")),
    );
}

#[test]
fn man_pages_are_generated_for_every_command() {
    // What `make man` runs (examples/gen_man.rs).
    let dir = tempfile::tempdir().unwrap();
    clap_mangen::generate_to(Cli::command(), dir.path()).unwrap();
    for page in [
        "mqttapp.1",
        "mqttapp-ask.1",
        "mqttapp-ask-edit.1",
        "mqttapp-shell.1",
        "mqttapp-serve.1",
        "mqttapp-completions.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page))
            .unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page}");
        assert!(
            text.contains("MQTTAPP_BROKER"),
            "{page} lacks the global settings"
        );
    }
}

#[test]
fn errors_say_what_to_do_next() {
    let broker = Broker::start();
    let prefix = unique_prefix("hints");
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["ask", "--broker", "http://x", "calc", "1"],
            2,
            "fix --broker, MQTTAPP_BROKER",
        ),
        (
            &["ask", "--config", "/nonexistent.toml", "calc", "1"],
            2,
            "check the path given to --config",
        ),
        (
            &["ask", "--timeout", "soon", "calc", "1"],
            2,
            "fix --timeout, MQTTAPP_TIMEOUT",
        ),
        (
            &["ask", "--prefix", "a/#", "calc", "1"],
            2,
            "fix --prefix, MQTTAPP_PREFIX",
        ),
        (
            &["ask", "--broker", "mqtt://127.0.0.1:1", "calc", "1"],
            3,
            "point --broker at yours",
        ),
        (
            &["ask", "--password-file", "/nonexistent", "calc", "1"],
            2,
            "check --password-file",
        ),
        (
            &["ask", "--timeout", "2", "calc", "1"],
            6,
            "is `mqttapp serve` running",
        ),
        (&["ask", "edit", "--show", "x"], 2, "drop the text"),
        (&["ask", "edit", "x"], 2, "edit --line 3"),
    ];
    for (args, code, hint) in cases {
        mqttapp(&broker, &prefix)
            .args(*args)
            .assert()
            .code(*code)
            .stderr(predicate::str::contains(*hint));
    }
}

#[test]
fn an_unreachable_remote_broker_gets_a_network_hint_not_make_broker() {
    // 192.0.2.0/24 is TEST-NET-1: never routed. A short timeout keeps it quick.
    bare()
        .args([
            "ask",
            "--timeout",
            "1",
            "--broker",
            "mqtt://192.0.2.1:1883",
            "calc",
            "1",
        ])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(3)
        .stderr(
            predicate::str::contains("check the host name and port")
                .and(predicate::str::contains("make broker").not()),
        );
}

#[test]
fn color_always_puts_red_on_stderr_and_never_on_stdout() {
    let broker = Broker::start();
    let prefix = unique_prefix("colour");
    let assert = mqttapp(&broker, &prefix)
        .args([
            "--color",
            "always",
            "ask",
            "--broker",
            "mqtt://127.0.0.1:1",
            "calc",
            "1",
        ])
        .assert()
        .code(3);
    let out = assert.get_output();
    assert!(String::from_utf8_lossy(&out.stderr).contains("\u{1b}[31m"));
    mqttapp(&broker, &prefix)
        .args(["ask", "--broker", "mqtt://127.0.0.1:1", "calc", "1"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("\u{1b}[").not());
}
