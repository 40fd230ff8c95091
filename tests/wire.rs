//! Protocol v1 on the wire: a raw paho client sends CBOR, JSON and plain
//! text requests, with and without correlation data, and bad ones.

mod common;

use std::time::Duration;

use common::served_with_raw_client as setup;

#[test]
fn cbor_request_gets_a_cbor_reply_with_the_correlation_data() {
    let (_b, prefix, _s, raw) = setup("cbor");
    let reply = raw.request(
        &prefix,
        "calc",
        b"\xa1\x64expr\x652+3*4",
        None,
        Some(b"id-1"),
    );
    assert_eq!(reply.payload, b"\xa1\x62ok\x0e"); // {"ok": 14}
    assert_eq!(reply.content_type.as_deref(), Some("application/cbor"));
    assert_eq!(reply.correlation.as_deref(), Some(&b"id-1"[..]));
}

#[test]
fn json_request_gets_a_json_reply() {
    let (_b, prefix, _s, raw) = setup("json");
    let reply = raw.request(
        &prefix,
        "echo",
        r#"{"text":"héllo"}"#.as_bytes(),
        Some("application/json"),
        Some(b"c"),
    );
    assert_eq!(
        String::from_utf8(reply.payload).unwrap(),
        r#"{"ok":"héllo"}"#
    );
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    let reply = raw.request(
        &prefix,
        "edit",
        br#"{"action":"append","text":"x"}"#,
        None,
        Some(b"d"),
    );
    assert_eq!(
        String::from_utf8(reply.payload).unwrap(),
        r#"{"ok":{"file":"notes.txt","rev":1,"lines":1}}"#
    );
}

#[test]
fn plain_text_request_without_correlation_gets_a_text_reply() {
    let (_b, prefix, _s, raw) = setup("text");
    let reply = raw.request(&prefix, "calc", b"2+3*4", None, None);
    assert_eq!(reply.payload, b"14");
    assert_eq!(reply.content_type.as_deref(), Some("text/plain"));
    assert_eq!(reply.correlation, None);
    let reply = raw.request(&prefix, "calc", b"1/0", Some("text/plain"), None);
    assert_eq!(
        String::from_utf8(reply.payload).unwrap(),
        "error: math: division by zero (at character 2)"
    );
}

#[test]
fn unknown_operation_is_answered_and_dead_lettered() {
    let (_b, prefix, server, raw) = setup("unknown");
    let reply = raw.request(&prefix, "frobnicate", b"\xa0", None, Some(b"u"));
    let text = String::from_utf8_lossy(&reply.payload).to_string();
    assert!(text.contains("unknown_op"), "{text}");
    let dlq =
        std::fs::read_to_string(server.data_dir().join(".mqttapp/deadletters.jsonl")).unwrap();
    assert!(dlq.contains("\"reason\":\"unknown_op\""), "{dlq}");
}

#[test]
fn undecodable_payloads_get_bad_request() {
    let (_b, prefix, server, raw) = setup("undecodable");
    let cases: &[(&str, &[u8], Option<&str>)] = &[
        ("calc", b"\xa1\x64expr", None),   // truncated CBOR
        ("calc", br#"{"expr": 5}"#, None), // wrong type
        ("calc", b"{not json", Some("application/json")),
        ("echo", b"\xff\xfe", Some("text/plain")), // not UTF-8
        ("edit", b"append this", None),            // edit has no text form
    ];
    for (op, payload, ct) in cases {
        let reply = raw.request(&prefix, op, payload, *ct, Some(b"x"));
        let text = String::from_utf8_lossy(&reply.payload).to_string();
        assert!(text.contains("bad_request"), "{op} {payload:?}: {text}");
    }
    // The server is still answering.
    assert_eq!(
        raw.request(&prefix, "calc", b"1+1", None, None).payload,
        b"2"
    );
    let dlq =
        std::fs::read_to_string(server.data_dir().join(".mqttapp/deadletters.jsonl")).unwrap();
    assert_eq!(
        dlq.matches("\"reason\":\"undecodable\"").count(),
        5,
        "{dlq}"
    );
}

#[test]
fn request_without_response_topic_becomes_a_dead_letter() {
    let (_b, prefix, server, raw) = setup("noreply");
    raw.send(
        &format!("{prefix}/v1/req/calc"),
        b"1+1",
        None,
        Some(b"c"),
        None,
    );
    assert!(raw.next(Duration::from_millis(500)).is_none());
    assert_eq!(
        raw.request(&prefix, "calc", b"2+2", None, None).payload,
        b"4"
    );
    let dlq =
        std::fs::read_to_string(server.data_dir().join(".mqttapp/deadletters.jsonl")).unwrap();
    assert!(dlq.contains("no_response_topic"), "{dlq}");
    assert!(dlq.contains(&hex_of(b"1+1")), "{dlq}");
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn mosquitto_rr_gets_a_plain_text_answer() {
    let (broker, prefix, _s, _raw) = setup("rr");
    let out = broker
        .mosquitto_rr_calc(&prefix, "2+3*4", 10)
        .output()
        .expect("mosquitto_rr is installed by `make setup` (package mosquitto-clients)");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "14\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
