//! Hostile input through a real broker to a running server: a table of
//! malicious requests, each of which must get its error code (and, when
//! undecodable, a dead letter). Afterwards the server still computes
//! 2+3*4, and the data directory holds only what it should.

mod common;

use common::raw::RawClient;
use common::{mqttapp, unique_prefix, Broker, Server};

const CBOR: Option<&str> = Some("application/cbor");
const JSON: Option<&str> = Some("application/json");
const TEXT: Option<&str> = Some("text/plain");

/// Dead-letter reason expected for a row.
#[derive(Clone, Copy, PartialEq)]
enum Dead {
    No,
    Undecodable,
    UnknownOp,
}
use Dead::{No, Undecodable, UnknownOp};

/// (what, op, payload, content type, expected code, dead letter)
type Row = (
    &'static str,
    &'static str,
    Vec<u8>,
    Option<&'static str>,
    &'static str,
    Dead,
);

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn rep(part: &[u8], n: usize) -> Vec<u8> {
    part.repeat(n)
}

fn s(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

/// CBOR prefix of `{"expr": "1", "x": ...}` (a valid request plus an
/// unknown field whose value follows).
const EXPR_1_AND_X: &[u8] = b"\xa2\x64expr\x611\x61x";

#[rustfmt::skip] // one row per line: a table
fn cbor_rows() -> Vec<Row> {
    vec![
        ("truncated map", "calc", b"\xa1\x64expr".to_vec(), None, "bad_request", Undecodable),
        ("wrong type: expr is a number", "calc", b"\xa1\x64expr\x05".to_vec(), None, "bad_request", Undecodable),
        ("text declared 2^64-1 bytes long", "calc", cat(&[b"\xa1\x64expr\x7b", &[0xff; 8]]), None, "bad_request", Undecodable),
        ("bytes declared 2^63 long in an unknown field", "calc", cat(&[EXPR_1_AND_X, b"\x5b\x7f", &[0xff; 7]]), None, "bad_request", Undecodable),
        ("array declared 2^32-1 items", "calc", cat(&[EXPR_1_AND_X, b"\x9a\xff\xff\xff\xff"]), None, "bad_request", Undecodable),
        ("map declared 2^32-1 entries", "calc", b"\xba\xff\xff\xff\xff".to_vec(), None, "bad_request", Undecodable),
        ("10 000 nested arrays", "calc", rep(b"\x81", 10_000), CBOR, "bad_request", Undecodable),
        ("5 000 nested maps", "calc", cat(&[&rep(b"\xa1\x61a", 5_000), b"\x00"]), None, "bad_request", Undecodable),
        ("10 000 nested indefinite arrays", "calc", rep(b"\x9f", 10_000), CBOR, "bad_request", Undecodable),
        ("indefinite map never closed", "calc", b"\xbf\x64expr\x611".to_vec(), None, "bad_request", Undecodable),
        ("indefinite text never closed", "calc", b"\xa1\x64expr\x7f\x611".to_vec(), None, "bad_request", Undecodable),
        ("invalid UTF-8 in a text string", "calc", b"\xa1\x64expr\x62\xff\xfe".to_vec(), None, "bad_request", Undecodable),
        ("a second item after the map", "calc", b"\xa1\x64expr\x611\xa1\x64expr\x612".to_vec(), None, "bad_request", Undecodable),
        ("empty CBOR payload", "calc", vec![], CBOR, "bad_request", Undecodable),
        ("an array instead of a map", "calc", b"\x82\x01\x02".to_vec(), CBOR, "bad_request", Undecodable),
        ("negative line", "edit", b"\xa2\x64line\x20\x64text\x61x".to_vec(), None, "bad_request", Undecodable),
        ("line as a 72-bit bignum", "edit", cat(&[b"\xa2\x64line\xc2\x49\x01", &[0; 8], b"\x64text\x61x"]), None, "bad_request", Undecodable),
        ("line as a float", "edit", cat(&[b"\xa2\x64line\xfb\x3f\xf8", &[0; 6], b"\x64text\x61x"]), None, "bad_request", Undecodable),
        ("unknown action", "edit", b"\xa1\x66action\x62rm".to_vec(), None, "bad_request", Undecodable),
        ("half-float NaN as expect_rev", "edit", b"\xa2\x66action\x64show\x6aexpect_rev\xf9\x7e\x00".to_vec(), None, "bad_request", Undecodable),
    ]
}

#[rustfmt::skip] // one row per line: a table
fn json_rows() -> Vec<Row> {
    vec![
        ("100 000 nested arrays", "calc", s(&"[".repeat(100_000)), JSON, "bad_request", Undecodable),
        ("deep nesting as the expression", "calc", s(&format!("{{\"expr\":{}1{}}}", "[".repeat(10_000), "]".repeat(10_000))), None, "bad_request", Undecodable),
        // serde_json skips unknown values without recursing: no error, no overflow.
        ("deep nesting in an unknown field", "calc", s(&format!("{{\"expr\":\"1\",\"x\":{}1{}}}", "[".repeat(10_000), "]".repeat(10_000))), None, "ok", No),
        ("a number beyond f64 as the line", "edit", s(r#"{"line":1e999999,"text":"x"}"#), None, "bad_request", Undecodable),
        ("a duplicate field", "calc", s(r#"{"expr":"1","expr":"2"}"#), None, "bad_request", Undecodable),
        ("a lone surrogate escape", "echo", s(r#"{"text":"\ud800"}"#), None, "bad_request", Undecodable),
        ("invalid UTF-8", "echo", b"{\"text\":\"\xff\"}".to_vec(), None, "bad_request", Undecodable),
        ("null expression", "calc", s(r#"{"expr":null}"#), None, "bad_request", Undecodable),
        ("missing field", "calc", s("{}"), None, "bad_request", Undecodable),
        ("garbage after the object", "calc", s(r#"{"expr":"1"} rm -rf /"#), None, "bad_request", Undecodable),
        ("shell text as the line number", "edit", s(r#"{"line":"1; rm -rf /","text":"x"}"#), None, "bad_request", Undecodable),
        ("line 2^64", "edit", s(r#"{"line":18446744073709551616,"text":"x"}"#), None, "bad_request", Undecodable),
        ("CBOR bytes labelled JSON", "calc", b"\xa1\x64expr\x611".to_vec(), JSON, "bad_request", Undecodable),
    ]
}

#[rustfmt::skip] // one row per line: a table
fn edit_rows() -> Vec<Row> {
    let j = |v: serde_json::Value| serde_json::to_vec(&v).expect("json");
    use serde_json::json;
    vec![
        ("a newline injecting a second line", "edit", j(json!({"action":"append","text":"a\nb"})), None, "bad_request", No),
        ("a carriage return", "edit", j(json!({"action":"append","text":"a\rb"})), None, "bad_request", No),
        ("a NUL in the text", "edit", j(json!({"action":"append","text":"a\u{0}b"})), None, "bad_request", No),
        ("line 0", "edit", j(json!({"line":0,"text":"x"})), None, "bad_request", No),
        ("../../etc/passwd", "edit", j(json!({"action":"show","file":"../../etc/passwd"})), None, "bad_request", No),
        ("an absolute path", "edit", j(json!({"action":"show","file":"/etc/shadow"})), None, "bad_request", No),
        ("the dead-letter store", "edit", j(json!({"action":"show","file":".mqttapp/deadletters.jsonl"})), None, "bad_request", No),
        ("the bookkeeping directory", "edit", j(json!({"line":1,"text":"x","file":".mqttapp"})), None, "bad_request", No),
        ("a NUL in the file name", "edit", j(json!({"action":"show","file":"notes.txt\u{0}x"})), None, "bad_request", No),
        ("line one trillion", "edit", j(json!({"line":1_000_000_000_000u64,"text":"x"})), None, "limit", No),
        ("a 70 000-byte line", "edit", j(json!({"action":"append","text":"w".repeat(70_000)})), None, "limit", No),
        ("deleting a line that is not there", "edit", j(json!({"action":"delete","line":999})), None, "not_found", No),
        ("showing a file that is not there", "edit", j(json!({"action":"show","file":"missing.txt"})), None, "not_found", No),
        ("a stale expect_rev", "edit", j(json!({"action":"append","text":"x","expect_rev":999})), None, "conflict", No),
    ]
}

#[rustfmt::skip] // one row per line: a table
fn text_and_topic_rows() -> Vec<Row> {
    vec![
        ("text that is not UTF-8", "echo", b"\xff\xfe".to_vec(), TEXT, "bad_request", Undecodable),
        ("edit has no text form", "edit", s("append this"), TEXT, "bad_request", Undecodable),
        ("python injection", "calc", s("__import__('os').system('id')"), TEXT, "parse", No),
        ("a NUL in an expression", "calc", s("1\u{0}+1"), TEXT, "parse", No),
        ("a right-to-left override", "calc", s("1+\u{202e}2"), TEXT, "parse", No),
        ("9^9^9^9", "calc", s("9^9^9^9"), TEXT, "limit", No),
        ("4 000 open parentheses", "calc", s(&"(".repeat(4_000)), TEXT, "limit", No),
        ("a 5 000-digit number", "calc", s(&"1".repeat(5_000)), TEXT, "limit", No),
        ("10^9999 squared", "calc", s("(10^9999)*(10^9999)"), TEXT, "limit", No),
        ("division by zero", "calc", s("1/0"), TEXT, "math", No),
        ("a 300 KiB payload", "echo", vec![b'a'; 300 * 1024], TEXT, "limit", No),
        ("an operation nobody offers", "shell", s("rm -rf /"), TEXT, "unknown_op", UnknownOp),
        ("a dot-dot operation", "..", s("1"), TEXT, "unknown_op", UnknownOp),
    ]
}

#[test]
fn malicious_requests_get_their_error_codes_and_the_server_keeps_serving() {
    let broker = Broker::start();
    let prefix = unique_prefix("hostile");
    let server = Server::start(&broker, &prefix);
    let raw = RawClient::connect(&broker, &prefix, "raw-hostile");
    let rows: Vec<Row> = [cbor_rows(), json_rows(), edit_rows(), text_and_topic_rows()].concat();
    assert!(rows.len() >= 40, "only {} rows", rows.len());
    for (i, (what, op, payload, ct, code, _)) in rows.iter().enumerate() {
        let corr = format!("hostile-{i}");
        let reply = raw.request(&prefix, op, payload, *ct, Some(corr.as_bytes()));
        assert_eq!(reply.code(), *code, "row {i} ({what}): {}", reply.text());
        assert_eq!(
            reply.correlation.as_deref(),
            Some(corr.as_bytes()),
            "row {i} ({what})"
        );
    }
    // Still serving, and right.
    mqttapp(&broker, &prefix)
        .args(["ask", "calc", "2+3*4"])
        .assert()
        .success()
        .stdout("14\n");
    // Every undecodable request and unknown operation left a dead letter.
    let dlq = std::fs::read_to_string(server.data_dir().join(".mqttapp/deadletters.jsonl"))
        .expect("dead letters");
    let want = |d: Dead| rows.iter().filter(|r| r.5 == d).count();
    assert_eq!(
        dlq.matches("\"reason\":\"undecodable\"").count(),
        want(Undecodable)
    );
    assert_eq!(
        dlq.matches("\"reason\":\"unknown_op\"").count(),
        want(UnknownOp)
    );
    assert_eq!(dlq.lines().count(), want(Undecodable) + want(UnknownOp));
    assert_data_dir_holds_only_what_it_should(server.data_dir());
}

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn assert_data_dir_holds_only_what_it_should(data: &std::path::Path) {
    assert_eq!(listing(data), [".mqttapp", "notes.txt"]);
    let allowed = [
        "deadletters.jsonl",
        "deadletters.lock",
        "data-dir-id",
        "notes.txt.lock",
        "notes.txt.meta",
    ];
    for name in listing(&data.join(".mqttapp")) {
        assert!(
            allowed.contains(&name.as_str()),
            "unexpected .mqttapp/{name}"
        );
    }
    // Every edit above was refused: the default file is still empty.
    assert_eq!(
        std::fs::read_to_string(data.join("notes.txt")).expect("notes"),
        ""
    );
}

#[test]
fn replies_cannot_be_aimed_at_protocol_topics() {
    let broker = Broker::start();
    let prefix = unique_prefix("hostile-aim");
    let server = Server::start(&broker, &prefix);
    let raw = RawClient::connect(&broker, &prefix, "raw-aim");
    let req = format!("{prefix}/v1/req/calc");
    for target in [
        format!("{prefix}/v1/req/edit"),
        format!("{prefix}/v1/status/fake"),
        format!("{prefix}/v1/dlq"),
        "$SYS/x".to_string(),
    ] {
        raw.send(&req, b"1+1", TEXT, Some(b"aim"), Some(&target));
    }
    // Answered in order: once this reply is here, the four were handled.
    assert_eq!(
        raw.request(&prefix, "calc", b"2+3*4", TEXT, None).payload,
        b"14"
    );
    let dlq = std::fs::read_to_string(server.data_dir().join(".mqttapp/deadletters.jsonl"))
        .expect("dead letters");
    assert_eq!(dlq.matches("is reserved").count(), 4, "{dlq}");
}
