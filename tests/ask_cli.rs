//! The used-by commands, through the real binary, against a real broker.

mod common;

use common::{mqttapp, unique_prefix, Broker, Server};
use predicates::prelude::*;

#[test]
fn calc_prints_the_result_alone_on_stdout() {
    let broker = Broker::start();
    let prefix = unique_prefix("calc");
    let _server = Server::start(&broker, &prefix);
    mqttapp(&broker, &prefix)
        .args(["ask", "calc", "2+3*4"])
        .assert()
        .success()
        .stdout("14\n")
        .stderr("");
    mqttapp(&broker, &prefix)
        .args(["ask", "calc", "7/2"])
        .assert()
        .success()
        .stdout("3.5\n");
    mqttapp(&broker, &prefix)
        .args(["ask", "calc", "-2^2", "+", "2^-1"])
        .assert()
        .success()
        .stdout("-3.5\n");
}

#[test]
fn echo_joins_words_and_keeps_unicode() {
    let broker = Broker::start();
    let prefix = unique_prefix("echo");
    let _server = Server::start(&broker, &prefix);
    mqttapp(&broker, &prefix)
        .args(["ask", "echo", "hello"])
        .assert()
        .success()
        .stdout("hello\n");
    mqttapp(&broker, &prefix)
        .args(["ask", "echo", "olá", "mundo", "✓"])
        .assert()
        .success()
        .stdout("olá mundo ✓\n");
}

#[test]
fn edit_replaces_a_line_and_show_prints_the_file() {
    let broker = Broker::start();
    let prefix = unique_prefix("edit");
    let server = Server::start(&broker, &prefix);
    mqttapp(&broker, &prefix)
        .args(["ask", "edit", "--line", "3", "text"])
        .assert()
        .success()
        .stdout("notes.txt: rev 1, 3 lines\n");
    assert_eq!(
        std::fs::read_to_string(server.data_dir().join("notes.txt")).unwrap(),
        "\n\ntext\n"
    );
    mqttapp(&broker, &prefix)
        .args(["ask", "edit", "--append", "last", "line"])
        .assert()
        .success()
        .stdout("notes.txt: rev 2, 4 lines\n");
    mqttapp(&broker, &prefix)
        .args(["ask", "edit", "--insert", "--line", "1", "first"])
        .assert()
        .success();
    mqttapp(&broker, &prefix)
        .args(["ask", "edit", "--delete", "--line", "2"])
        .assert()
        .success();
    mqttapp(&broker, &prefix)
        .args(["ask", "edit", "--show"])
        .assert()
        .success()
        .stdout("first\n\ntext\nlast line\n")
        .stderr("notes.txt: rev 4, 4 lines\n");
}

#[test]
fn edit_of_another_file_with_expected_revision() {
    let broker = Broker::start();
    let prefix = unique_prefix("rev");
    let server = Server::start(&broker, &prefix);
    let ask = |args: &[&str]| {
        mqttapp(&broker, &prefix)
            .arg("ask")
            .arg("edit")
            .args(args)
            .assert()
    };
    ask(&["--file", "todo.txt", "--append", "one"])
        .success()
        .stdout("todo.txt: rev 1, 1 line\n");
    ask(&["--file", "todo.txt", "--expect-rev", "1", "--append", "two"]).success();
    ask(&[
        "--file",
        "todo.txt",
        "--expect-rev",
        "1",
        "--append",
        "three",
    ])
    .code(1)
    .stderr(predicate::str::contains("conflict"));
    assert_eq!(
        std::fs::read_to_string(server.data_dir().join("todo.txt")).unwrap(),
        "one\ntwo\n"
    );
}

#[test]
fn error_replies_exit_1_with_code_and_message_on_stderr() {
    let broker = Broker::start();
    let prefix = unique_prefix("errors");
    let _server = Server::start(&broker, &prefix);
    let cases: &[(&[&str], &str)] = &[
        (
            &["calc", "1/0"],
            "error: math: division by zero (at character 2)",
        ),
        (
            &["calc", "2+)"],
            "error: parse: unexpected ')' (at character 3)",
        ),
        (&["calc", "9^9^9^9"], "error: limit: "),
        (
            &["edit", "--file", "../x", "--line", "1", "x"],
            "error: bad_request: invalid file name",
        ),
        (
            &["edit", "--line", "0", "x"],
            "error: bad_request: line numbers start at 1",
        ),
        (&["edit", "--delete", "--line", "99"], "error: not_found: "),
    ];
    for (args, stderr) in cases {
        mqttapp(&broker, &prefix)
            .arg("ask")
            .args(*args)
            .assert()
            .code(1)
            .stdout("")
            .stderr(predicate::str::contains(*stderr));
    }
}

#[test]
fn parse_errors_point_at_the_character() {
    let broker = Broker::start();
    let prefix = unique_prefix("caret");
    let _server = Server::start(&broker, &prefix);
    mqttapp(&broker, &prefix)
        .args(["ask", "calc", "1 + * 2"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("  1 + * 2\n      ^"));
}

#[test]
fn json_output_is_the_whole_reply() {
    let broker = Broker::start();
    let prefix = unique_prefix("json");
    let _server = Server::start(&broker, &prefix);
    mqttapp(&broker, &prefix)
        .args(["ask", "--json", "calc", "7/2"])
        .assert()
        .success()
        .stdout("{\"ok\":3.5}\n");
    mqttapp(&broker, &prefix)
        .args(["ask", "--json", "calc", "1/0"])
        .assert()
        .code(1)
        .stdout("{\"err\":{\"code\":\"math\",\"message\":\"division by zero\",\"at\":1}}\n");
}

#[test]
fn unreachable_broker_exits_3_with_a_hint() {
    let broker = Broker::start();
    let url = broker.url();
    let prefix = unique_prefix("down");
    let mut cmd = mqttapp(&broker, &prefix);
    drop(broker);
    cmd.env("MQTTAPP_BROKER", url)
        .current_dir(std::env::temp_dir())
        .args(["ask", "calc", "1"])
        .assert()
        .code(3)
        .stderr(
            predicate::str::contains("cannot connect").and(predicate::str::contains("--broker")),
        );
}

#[test]
fn no_server_online_exits_6_quickly() {
    let broker = Broker::start();
    let prefix = unique_prefix("noserver");
    mqttapp(&broker, &prefix)
        .args(["ask", "--timeout", "4", "calc", "1"])
        .assert()
        .code(6)
        .stderr(predicate::str::contains("no server online"));
}

#[test]
fn usage_errors_exit_2() {
    let broker = Broker::start();
    let prefix = unique_prefix("usage");
    mqttapp(&broker, &prefix)
        .args(["ask", "edit", "--line", "2"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("needs TEXT"));
    // Any valid operation name may be a server's user-defined operation
    // (the server answers unknown_op); one no server could offer is usage.
    mqttapp(&broker, &prefix)
        .args(["ask", "Frob/nicate"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown operation"));
    mqttapp(&broker, &prefix)
        .args(["ask", "--timeout", "soon", "calc", "1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("timeout"));
    mqttapp(&broker, &prefix)
        .env("MQTTAPP_BROKER", "http://x")
        .args(["ask", "calc", "1"])
        .assert()
        .code(2);
}

#[test]
fn seed_environment_variables_reach_the_broker() {
    let broker = Broker::start();
    let prefix = unique_prefix("seed");
    let _server = Server::start(&broker, &prefix);
    mqttapp(&broker, &prefix)
        .env_remove("MQTTAPP_BROKER")
        .env("BROKER", "127.0.0.1")
        .env("PORT", broker.port().to_string())
        .args(["ask", "calc", "6*7"])
        .assert()
        .success()
        .stdout("42\n");
}
