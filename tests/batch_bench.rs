//! `ask --batch` and `bench` through the real binary: every request
//! answered exactly once, results in input order.

mod common;

use common::{mqttapp, unique_prefix, Broker, Server};
use predicates::prelude::*;

#[test]
fn batch_prints_one_result_per_line_in_input_order() {
    let broker = Broker::start();
    let prefix = unique_prefix("batch");
    let server = Server::start(&broker, &prefix);
    let input = "calc 1+2\n\n# a comment\necho 'two  words'\nedit --line 2 \"batch line\"\nbogus 1\ncalc 1/0\nedit --append last\n";
    mqttapp(&broker, &prefix)
        .args(["ask", "--batch"])
        .write_stdin(input)
        .assert()
        .code(1)
        .stdout("3\ntwo  words\nnotes.txt: rev 1, 2 lines\nerror: usage: unknown command `bogus` - type `help` for the commands\nerror: math: division by zero (at character 2)\nnotes.txt: rev 2, 3 lines\n")
        .stderr(predicate::str::contains("2 of 6 requests failed"));
    assert_eq!(
        std::fs::read_to_string(server.data_dir().join("notes.txt")).unwrap(),
        "\nbatch line\nlast\n"
    );
}

#[test]
fn batch_of_two_thousand_calcs_answers_each_in_order() {
    let broker = Broker::start();
    let prefix = unique_prefix("batch2k");
    let _server = Server::start(&broker, &prefix);
    let input: String = (1..=2000).map(|i| format!("calc {i}*3\n")).collect();
    let expected: String = (1..=2000).map(|i| format!("{}\n", i * 3)).collect();
    mqttapp(&broker, &prefix)
        .args(["ask", "--batch"])
        .write_stdin(input)
        .assert()
        .success()
        .stdout(expected);
}

#[test]
fn batch_json_gives_one_object_per_line() {
    let broker = Broker::start();
    let prefix = unique_prefix("batchjson");
    let _server = Server::start(&broker, &prefix);
    mqttapp(&broker, &prefix)
        .args(["ask", "--batch", "--json"])
        .write_stdin("calc 7/2\nnope\n")
        .assert()
        .code(1)
        .stdout("{\"ok\":3.5}\n{\"err\":{\"code\":\"usage\",\"message\":\"unknown command `nope` - type `help` for the commands\"}}\n");
}

#[test]
fn bench_answers_every_request_exactly_once() {
    let broker = Broker::start();
    let prefix = unique_prefix("bench");
    let _server = Server::start(&broker, &prefix);
    let out = mqttapp(&broker, &prefix)
        .args([
            "bench",
            "--count",
            "3000",
            "--connections",
            "3",
            "--window",
            "50",
            "--ops",
            "calc=3,echo=1,edit=1",
            "--json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(report["sent"], 3000, "{report}");
    assert_eq!(report["ok"], 3000, "{report}");
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_eq!(report["publish_errors"], 0, "{report}");
    assert!(
        report["latency_ms"]["p99"].as_f64().unwrap() > 0.0,
        "{report}"
    );
}

#[test]
fn bench_with_a_bad_mix_is_a_usage_error() {
    let broker = Broker::start();
    let prefix = unique_prefix("benchusage");
    mqttapp(&broker, &prefix)
        .args(["bench", "--ops", "calc=0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("weight"));
}
