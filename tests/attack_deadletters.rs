//! Hostile requests against the dead-letter store and the logs: huge
//! properties, huge payloads without a Response Topic, floods past the
//! store's budget, and payloads made to provoke decoder error texts. Real
//! Mosquitto, real `mqttapp serve`, bounded counts.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::raw::RawClient;
use common::{mqttapp, unique_prefix, wait_until, Broker, Server, CLEARED_ENV};
use sha2::{Digest, Sha256};

/// Most bytes of a property the store keeps (docs/RELIABILITY.md).
const PROPERTY_CAP: usize = 256;

fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(".mqttapp").join("deadletters.jsonl")
}

/// The stored records, as JSON values (the documented line format).
fn records(data_dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(store_path(data_dir)).unwrap_or_default();
    // Only complete lines: the server may be writing the last one.
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n') && !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON record per line"))
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A server whose config file sets `[limits]` to `limits` (TOML lines).
fn server_with_limits(broker: &Broker, prefix: &str, limits: &str) -> (Server, PathBuf) {
    let config = broker.dir().join(format!("{prefix}.toml"));
    std::fs::write(&config, format!("[limits]\n{limits}\n")).unwrap();
    let data_dir = broker.dir().join(format!("data-{prefix}"));
    let config_arg = config.display().to_string();
    let server = Server::start_with(broker, prefix, &data_dir, &["--config", &config_arg]);
    (server, data_dir)
}

/// Runs `mqttapp dlq <args>` under `/usr/bin/time -v`: stdout, stderr,
/// exit code and peak resident memory in KiB.
fn dlq_measured(
    broker: &Broker,
    prefix: &str,
    data_dir: &Path,
    args: &[&str],
) -> (String, String, i32, u64) {
    let mut cmd = Command::new("/usr/bin/time");
    for var in CLEARED_ENV {
        cmd.env_remove(var);
    }
    let out = cmd
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_mqttapp"))
        .arg("dlq")
        .args(args)
        .env("MQTTAPP_BROKER", broker.url())
        .env("MQTTAPP_PREFIX", prefix)
        .env("MQTTAPP_DATA_DIR", data_dir)
        .env("MQTTAPP_TIMEOUT", "10")
        .env("NO_COLOR", "1")
        .current_dir(broker.dir())
        .output()
        .expect("run /usr/bin/time -v mqttapp dlq");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let kib = stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in /usr/bin/time output:\n{stderr}"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    (stdout, stderr, out.status.code().unwrap_or(-1), kib)
}

/// The number `mqttapp dlq list` reports as dropped past the budget (0
/// when it reports none).
fn dropped_reported(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| {
            let rest = l.split("dropped ").nth(1)?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0)
}

/// A process's peak resident memory (VmHWM) in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

/// Checks a property kept in a record: at most the cap, and when cut, its
/// full length and SHA-256 are kept next to it.
fn assert_capped(record: &serde_json::Value, field: &str, cut: &str, full: &[u8], hex: bool) {
    let kept = record[field].as_str().unwrap_or_default();
    let kept_bytes = if hex { kept.len() / 2 } else { kept.len() };
    assert!(
        kept_bytes <= PROPERTY_CAP,
        "{field} keeps {kept_bytes} bytes, cap {PROPERTY_CAP}"
    );
    let cut = &record[cut];
    assert_eq!(
        cut["len"].as_u64(),
        Some(full.len() as u64),
        "{field}_cut: {cut}"
    );
    assert_eq!(
        cut["sha256"].as_str(),
        Some(sha256_hex(full).as_str()),
        "{field}_cut"
    );
}

#[test]
fn a_flood_of_huge_properties_keeps_the_dead_letter_store_within_its_budget() {
    const REQUESTS: usize = 300;
    const BUDGET: u64 = 200_000;
    let broker = Broker::start();
    let prefix = unique_prefix("dlbudget");
    let (mut server, data_dir) = server_with_limits(
        &broker,
        &prefix,
        &format!("max_deadletter_bytes = {BUDGET}"),
    );
    let client = RawClient::connect(&broker, &prefix, "flood");
    // Invalid (a wildcard), so every request is a dead letter.
    let response_topic = format!("{}#", "r".repeat(60_000));
    let correlation = vec![0xC5u8; 60_000];
    let content_type = "c".repeat(60_000);
    let topic = format!("{prefix}/v1/req/calc");
    for _ in 0..REQUESTS {
        client.send(
            &topic,
            b"1+1",
            Some(&content_type),
            Some(&correlation),
            Some(&response_topic),
        );
    }
    let mut listed = (String::new(), String::new(), 0, 0);
    wait_until(
        "every request stored or counted as dropped",
        Duration::from_secs(180),
        || {
            listed = dlq_measured(&broker, &prefix, &data_dir, &["list", "--json"]);
            let stored = serde_json::from_str::<Vec<serde_json::Value>>(&listed.0)
                .map_or(0, |v| v.len() as u64);
            std::thread::sleep(Duration::from_millis(300));
            stored + dropped_reported(&listed.1) >= REQUESTS as u64
        },
    );
    let size = std::fs::metadata(store_path(&data_dir)).unwrap().len();
    let stored = records(&data_dir);
    let dropped = dropped_reported(&listed.1);
    eprintln!(
        "store {size} bytes (budget {BUDGET}), {} letters stored, {dropped} dropped, dlq list peak RSS {} KiB",
        stored.len(),
        listed.3
    );
    assert!(size <= BUDGET, "store is {size} bytes, budget {BUDGET}");
    assert!(dropped > 0, "the drops are reported:\n{}", listed.1);
    assert_eq!(stored.len() as u64 + dropped, REQUESTS as u64);
    for record in &stored {
        let rt = response_topic.as_bytes();
        assert_capped(record, "response_topic", "response_topic_cut", rt, false);
        assert_capped(
            record,
            "correlation_hex",
            "correlation_cut",
            &correlation,
            true,
        );
        let ct = content_type.as_bytes();
        assert_capped(record, "content_type", "content_type_cut", ct, false);
        assert_eq!(record["truncated"], true, "{record}");
        assert!(record["detail"].as_str().unwrap().len() <= 1024);
    }
    assert!(
        server.log().contains("dropped"),
        "a warning counts the drops:\n{}",
        server.log().chars().take(3000).collect::<String>()
    );
    assert!(listed.3 < 64 * 1024, "dlq list peak RSS {} KiB", listed.3);
    let (table, _, code, kib) = dlq_measured(&broker, &prefix, &data_dir, &["list"]);
    assert_eq!(code, 0);
    assert_eq!(table.lines().count(), stored.len() + 1);
    assert!(
        table.lines().all(|l| l.len() < 1024),
        "table rows are short"
    );
    assert!(kib < 64 * 1024, "dlq list peak RSS {kib} KiB");
    let longest = server.log().lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 2048, "longest log line {longest} bytes");
    // The warnings are rate-limited; the last count is logged at the stop.
    assert_eq!(server.terminate(), Some(0));
    let log = server.log();
    assert!(log.contains(&format!("dropped={dropped}")), "{log}");
}

#[test]
fn dlq_list_reads_a_large_store_in_small_memory() {
    const LETTERS: usize = 40_000;
    let broker = Broker::start();
    let prefix = unique_prefix("dllist");
    let data_dir = broker.dir().join("data");
    std::fs::create_dir_all(data_dir.join(".mqttapp")).unwrap();
    // The documented record format, ~1.5 KB each: ~60 MB in all.
    let payload_hex = "ab".repeat(700);
    let mut text = String::with_capacity(LETTERS * 1600);
    for i in 0..LETTERS {
        text.push_str(&format!(
            "{{\"id\":\"s-1-{i}\",\"time\":1700000000,\"reason\":\"undecodable\",\"detail\":\"bad\",\"topic\":\"p/v1/req/calc\",\"response_topic\":\"p/v1/resp/c\",\"correlation_hex\":\"0102\",\"content_type\":null,\"payload_hex\":\"{payload_hex}\"}}\n"
        ));
    }
    std::fs::write(store_path(&data_dir), &text).unwrap();
    drop(text);
    for args in [&["list"][..], &["list", "--json"][..]] {
        let (out, err, code, kib) = dlq_measured(&broker, &prefix, &data_dir, args);
        assert_eq!(code, 0, "{err}");
        eprintln!("dlq {args:?}: peak RSS {kib} KiB");
        if args.len() == 1 {
            assert_eq!(out.lines().count(), LETTERS + 1);
        } else {
            let all: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
            assert_eq!(all.len(), LETTERS);
        }
        assert!(kib < 40 * 1024, "dlq {args:?} peak RSS {kib} KiB");
    }
}

#[test]
fn a_twenty_mib_request_without_response_topic_is_kept_truncated_to_max_payload() {
    let broker = Broker::start();
    let prefix = unique_prefix("dlhuge");
    let (mut server, data_dir) = server_with_limits(&broker, &prefix, "");
    let client = RawClient::connect(&broker, &prefix, "huge");
    let payload: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    client.send(&format!("{prefix}/v1/req/echo"), &payload, None, None, None);
    wait_until("the dead letter", Duration::from_secs(60), || {
        !records(&data_dir).is_empty()
    });
    server.wait_for_log("dead letter", Duration::from_secs(10));
    let rss = peak_rss_kib(server.pid());
    let size = std::fs::metadata(store_path(&data_dir)).unwrap().len();
    let letter = &records(&data_dir)[0];
    eprintln!("store {size} bytes for a 20 MiB payload; server peak RSS {rss} KiB");
    let max_payload = 256 * 1024;
    assert!(size <= 2 * max_payload + 16 * 1024, "store is {size} bytes");
    assert_eq!(letter["truncated"], true, "marked truncated");
    assert_eq!(
        letter["payload_hex"].as_str().unwrap().len(),
        2 * max_payload as usize
    );
    assert_eq!(letter["payload_cut"]["len"], payload.len() as u64);
    assert_eq!(letter["payload_cut"]["sha256"], sha256_hex(&payload));
    assert!(rss < 160 * 1024, "server peak RSS {rss} KiB");
    // A cut letter is not the request: replay keeps it and says why.
    let out = mqttapp(&broker, &prefix)
        .env("MQTTAPP_DATA_DIR", &data_dir)
        .args(["dlq", "replay", "--all"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("truncated"), "{err}");
    assert_eq!(records(&data_dir).len(), 1, "the letter stays");
}

#[test]
fn dead_letter_files_are_private_and_logs_of_huge_topics_are_short() {
    let broker = Broker::start();
    let prefix = unique_prefix("dlmode");
    let (server, data_dir) = server_with_limits(&broker, &prefix, "");
    let client = RawClient::connect(&broker, &prefix, "modes");
    let name = "x".repeat(64 * 1024 - prefix.len() - 16);
    let reply = client.request(&prefix, &name, b"{}", Some("application/json"), Some(b"c"));
    assert_eq!(reply.code(), "unknown_op");
    let reply_bytes = reply.payload.len();
    assert!(reply_bytes < 1024, "the reply is {reply_bytes} bytes");
    let no_reply = format!("{prefix}/v1/req/calc");
    client.send(&no_reply, b"1", None, None, Some(&"#".repeat(60_000)));
    wait_until("two dead letters", Duration::from_secs(20), || {
        records(&data_dir).len() == 2
    });
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&store_path(&data_dir)), 0o600, "deadletters.jsonl");
    assert_eq!(mode(&data_dir.join(".mqttapp")), 0o700, ".mqttapp");
    std::thread::sleep(Duration::from_millis(300));
    let longest = server.log().lines().map(str::len).max().unwrap_or(0);
    eprintln!("unknown-op reply {reply_bytes} bytes; longest server log line: {longest} bytes");
    assert!(longest < 2048, "longest log line {longest} bytes");
    for record in records(&data_dir) {
        assert!(record["topic"].as_str().unwrap().len() <= PROPERTY_CAP);
        assert!(record["detail"].as_str().unwrap().len() <= 1024, "{record}");
    }
}

#[test]
fn malformed_payloads_get_error_messages_without_rust_debug_text() {
    let broker = Broker::start();
    let prefix = unique_prefix("dldebug");
    let _server = Server::start(&broker, &prefix);
    let client = RawClient::connect(&broker, &prefix, "debug");
    let cbor = Some("application/cbor");
    let json = Some("application/json");
    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        ("calc", vec![0x05], cbor),
        ("calc", vec![0xA1], cbor),
        ("calc", vec![0xA1, 0x64, b'e', b'x', b'p', b'r', 0x05], cbor),
        ("calc", vec![0xFF, 0x00], cbor),
        ("calc", vec![0x9F; 64], cbor),
        (
            "calc",
            vec![
                0xA1, 0x64, b'e', b'x', b'p', b'r', 0x7B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                0xFF,
            ],
            cbor,
        ),
        ("echo", vec![0xA1, 0x64, b't', b'e', b'x', b't', 0xF6], cbor),
        ("echo", vec![0xA0], cbor),
        (
            "edit",
            vec![
                0xA1, 0x66, b'a', b'c', b't', b'i', b'o', b'n', 0x63, b'f', b'o', b'o',
            ],
            cbor,
        ),
        (
            "edit",
            vec![0xA1, 0x64, b'l', b'i', b'n', b'e', 0x3A, 0, 0, 0, 1],
            cbor,
        ),
        ("calc", b"{\"expr\":5}".to_vec(), json),
        ("calc", b"[1,2]".to_vec(), json),
        ("edit", b"{\"action\":\"nope\"}".to_vec(), json),
        ("edit", b"plain".to_vec(), Some("text/plain")),
        ("echo", vec![0xFF, 0xFE], Some("text/plain")),
    ];
    for (i, (op, payload, ct)) in cases.iter().enumerate() {
        let corr = format!("c{i}");
        let reply = client.request(&prefix, op, payload, *ct, Some(corr.as_bytes()));
        let text = reply.text();
        assert_eq!(reply.code(), "bad_request", "{op} {payload:?}: {text}");
        for artefact in [
            "Some(",
            "None",
            "Semantic(",
            "Syntax(",
            "Error(",
            "Io(",
            "RecursionLimit",
            "struct ",
            "\\u{",
        ] {
            assert!(!text.contains(artefact), "{op} {payload:02x?} -> {text}");
        }
    }
}
