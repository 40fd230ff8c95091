//! Every limit of `[limits]` is enforced by a real server before the work
//! is done, and answered with error code `limit`.

mod common;

use common::raw::RawClient;
use common::{mqttapp, unique_prefix, Broker, Server};
use predicates::prelude::*;

const SMALL_LIMITS: &str = "[limits]
max_payload_bytes = 2048
max_expr_bytes = 100
max_depth = 10
max_file_bytes = 100
max_lines = 50
max_line_bytes = 40
max_files = 4
max_deadletter_bytes = 1000
";

fn json(value: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&value).expect("json")
}

/// One request and what must come back: code and a piece of the message.
struct Row {
    op: &'static str,
    payload: Vec<u8>,
    code: &'static str,
    needle: String,
}

fn row(op: &'static str, payload: Vec<u8>, code: &'static str, needle: &str) -> Row {
    Row {
        op,
        payload,
        code,
        needle: needle.to_string(),
    }
}

fn calc(expr: &str) -> Vec<u8> {
    json(serde_json::json!({ "expr": expr }))
}

fn edit(value: serde_json::Value) -> Vec<u8> {
    json(value)
}

/// The table for SMALL_LIMITS, in order (later rows rely on earlier ones).
#[rustfmt::skip] // one row per line: a table
fn limit_rows(forty: &str) -> Vec<Row> {
    vec![
        // max_payload_bytes = 2048
        row(
            "echo",
            json(serde_json::json!({ "text": "e".repeat(2030) })),
            "ok",
            "",
        ),
        row(
            "echo",
            json(serde_json::json!({ "text": "e".repeat(2040) })),
            "limit",
            "payload is 2051 bytes, limit is 2048",
        ),
        // max_expr_bytes = 100
        row("calc", calc(&format!("1{}", "+1".repeat(49))), "ok", ""),
        row(
            "calc",
            calc(&format!("1{}", "+1".repeat(50))),
            "limit",
            "expression is 101 bytes, limit is 100",
        ),
        // max_depth = 10
        row(
            "calc",
            calc(&format!("{}1{}", "(".repeat(10), ")".repeat(10))),
            "ok",
            "",
        ),
        row(
            "calc",
            calc(&format!("{}1{}", "(".repeat(11), ")".repeat(11))),
            "limit",
            "nesting deeper than 10",
        ),
        row(
            "calc",
            calc(&"-".repeat(50)),
            "limit",
            "nesting deeper than 10",
        ),
        // exponent and result size
        row("calc", calc("9^9^9^9"), "limit", "more than 10000 digits"),
        row("calc", calc("2^33220"), "limit", "more than 10000 digits"),
        row("calc", calc("10.0^400"), "limit", "result too large"),
        row("calc", calc("exp(1000)"), "limit", "result too large"),
        row("calc", calc("1e999"), "limit", "number too large"),
        row(
            "calc",
            calc("2^1024 + 0.5"),
            "limit",
            "integer too large to convert",
        ),
        // max_lines = 50 (also the largest line number)
        row(
            "edit",
            edit(serde_json::json!({ "line": 51, "text": "x" })),
            "limit",
            "line 51 is past the limit of 50 lines",
        ),
        row(
            "edit",
            edit(serde_json::json!({ "line": 1_000_000_000_000u64, "text": "x" })),
            "limit",
            "line 1000000000000 is past the limit",
        ),
        row(
            "edit",
            edit(serde_json::json!({ "action": "insert", "line": u64::MAX, "text": "x" })),
            "limit",
            "past the limit of 50 lines",
        ),
        // max_line_bytes = 40
        row(
            "edit",
            edit(serde_json::json!({ "action": "append", "text": "z".repeat(41) })),
            "limit",
            "line is 41 bytes, limit is 40",
        ),
        // max_file_bytes = 100: two 41-byte lines fit, a third does not
        row(
            "edit",
            edit(serde_json::json!({ "action": "append", "text": forty })),
            "ok",
            "",
        ),
        row(
            "edit",
            edit(serde_json::json!({ "action": "append", "text": forty })),
            "ok",
            "",
        ),
        row(
            "edit",
            edit(serde_json::json!({ "action": "append", "text": forty })),
            "limit",
            "file would be 123 bytes, limit is 100",
        ),
        row(
            "edit",
            edit(serde_json::json!({ "line": 50, "text": "x" })),
            "limit",
            "file would be 131 bytes, limit is 100",
        ),
        // a file placed by hand that is over max_file_bytes is not read
        row(
            "edit",
            edit(serde_json::json!({ "action": "show", "file": "big.txt" })),
            "limit",
            "file is 150 bytes, limit is 100",
        ),
        // max_files = 4: notes.txt, big.txt, a.txt, b.txt; then no more
        row(
            "edit",
            edit(serde_json::json!({ "action": "append", "file": "a.txt", "text": "a" })),
            "ok",
            "",
        ),
        row(
            "edit",
            edit(serde_json::json!({ "action": "append", "file": "b.txt", "text": "b" })),
            "ok",
            "",
        ),
        row(
            "edit",
            edit(serde_json::json!({ "action": "append", "file": "c.txt", "text": "c" })),
            "limit",
            "too many files (limit 4)",
        ),
        row(
            "edit",
            edit(serde_json::json!({ "action": "append", "file": "a.txt", "text": "a2" })),
            "ok",
            "",
        ),
    ]
}

#[test]
fn every_configured_limit_is_enforced_through_a_real_server() {
    let broker = Broker::start();
    let prefix = unique_prefix("limits");
    let config = broker.dir().join("limits.toml");
    std::fs::write(&config, SMALL_LIMITS).expect("write config");
    let data = broker.dir().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::write(data.join("big.txt"), "x".repeat(150)).expect("hand-placed big file");
    let config = config.display().to_string();
    let _server = Server::start_with(&broker, &prefix, &data, &["--config", &config]);
    let raw = RawClient::connect(&broker, &prefix, "raw-limits");
    let forty = "y".repeat(40);
    let rows = limit_rows(&forty);
    for (i, r) in rows.iter().enumerate() {
        let corr = format!("row-{i}");
        let reply = raw.request(&prefix, r.op, &r.payload, None, Some(corr.as_bytes()));
        assert_eq!(reply.code(), r.code, "row {i}: {}", reply.text());
        assert!(
            reply.text().contains(&r.needle),
            "row {i}: {} lacks {:?}",
            reply.text(),
            r.needle
        );
    }
    assert!(!data.join("c.txt").exists());
    // max_deadletter_bytes = 1000: the store never grows past it; a letter
    // that would cross it keeps its metadata and the payload's length and
    // hash, not the payload.
    let bad = format!("{{\"expr\": {}}}", "7".repeat(1500));
    for corr in ["dl-1", "dl-2"] {
        let reply = raw.request(&prefix, "calc", bad.as_bytes(), None, Some(corr.as_bytes()));
        assert_eq!(reply.code(), "bad_request", "{}", reply.text());
    }
    let dlq = std::fs::read_to_string(data.join(".mqttapp/deadletters.jsonl")).unwrap();
    let lines: Vec<&str> = dlq.lines().collect();
    assert_eq!(lines.len(), 2, "{dlq}");
    assert!(dlq.len() <= 1000, "{dlq}");
    for line in lines {
        assert!(
            line.contains(r#""payload_hex":"""#) && line.contains(r#""payload_cut":{"len":1510,"#),
            "{line}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(data.join("notes.txt")).unwrap(),
        format!("{forty}\n{forty}\n")
    );
}

#[test]
fn default_limits_refuse_line_one_trillion_long_replay_keys_and_big_payloads() {
    let broker = Broker::start();
    let prefix = unique_prefix("default-limits");
    let _server = Server::start(&broker, &prefix);
    let raw = RawClient::connect(&broker, &prefix, "raw-default-limits");
    let reply = raw.request(
        &prefix,
        "edit",
        &edit(serde_json::json!({ "line": 1_000_000_000_000u64, "text": "x" })),
        None,
        Some(b"c1"),
    );
    assert_eq!(reply.code(), "limit", "{}", reply.text());
    assert!(
        reply.text().contains("past the limit of 100000 lines"),
        "{}",
        reply.text()
    );
    // The replay key (response topic + correlation data) is stored per
    // change: a huge one is refused.
    let long_corr = vec![7u8; 300];
    let reply = raw.request(
        &prefix,
        "edit",
        &edit(serde_json::json!({ "action": "append", "text": "x" })),
        None,
        Some(&long_corr),
    );
    assert_eq!(reply.code(), "limit", "{}", reply.text());
    assert!(reply.text().contains("replay key is"), "{}", reply.text());
    // 256 KiB is the default payload limit.
    let big = vec![b'1'; 256 * 1024 + 1];
    let reply = raw.request(&prefix, "calc", &big, Some("text/plain"), None);
    assert_eq!(
        String::from_utf8_lossy(&reply.payload),
        "error: limit: payload is 262145 bytes, limit is 262144"
    );
    // Through the real client: exit 1 and the code on stderr.
    mqttapp(&broker, &prefix)
        .args(["ask", "calc", &"1+".repeat(2100)])
        .arg("1")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "error: limit: expression is 4202 bytes, limit is 4096",
        ));
}
