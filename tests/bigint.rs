//! Exact integers past 64 bits through a real Mosquitto and the real
//! binary: `ask` prints all the digits (plain and `--json`), a CBOR client
//! sees RFC 8949 bignums (tags 2 and 3), a result over the 10,000-digit
//! limit is a `limit` error that leaves the server answering, and a flood
//! of near-limit results is answered in full.

mod common;

use std::time::Duration;

use common::load::{pipelined, Tally};
use common::raw::RawClient;
use common::{mqttapp, unique_prefix, Broker, Server};
use predicates::prelude::*;

/// 2^64, as Python prints it.
const TWO_64: &str = "18446744073709551616";

/// `{"ok": 2(h'010000000000000000')}`: 2^64 as a CBOR tag 2 bignum.
fn cbor_ok_tag(tag: u8) -> Vec<u8> {
    let mut bytes = vec![0xA1, 0x62, b'o', b'k', tag, 0x49, 0x01];
    bytes.extend([0u8; 8]);
    bytes
}

/// `{"expr": <expr>}` in CBOR (text of fewer than 24 bytes).
fn cbor_calc(expr: &str) -> Vec<u8> {
    let mut bytes = vec![0xA1, 0x64, b'e', b'x', b'p', b'r'];
    bytes.push(0x60 + u8::try_from(expr.len()).expect("a short expression"));
    bytes.extend(expr.as_bytes());
    bytes
}

#[test]
fn ask_calc_prints_every_digit_plain_and_as_a_json_number() {
    let broker = Broker::start();
    let prefix = unique_prefix("bigask");
    let _server = Server::start(&broker, &prefix);
    mqttapp(&broker, &prefix)
        .args(["ask", "calc", "2^64"])
        .assert()
        .success()
        .stdout(format!("{TWO_64}\n"));
    mqttapp(&broker, &prefix)
        .args(["ask", "--json", "calc", "2^64"])
        .assert()
        .success()
        .stdout(format!("{{\"ok\":{TWO_64}}}\n"));
    mqttapp(&broker, &prefix)
        .args(["ask", "calc", "-(2^100)"])
        .assert()
        .success()
        .stdout("-1267650600228229401496703205376\n");
    mqttapp(&broker, &prefix)
        .args(["ask", "calc", "21533 % (260*399)^4"])
        .assert()
        .success()
        .stdout("21533\n");
    // The largest results (10,000 digits) come through whole.
    let nines = mqttapp(&broker, &prefix)
        .args(["ask", "--json", "calc", "10^9999 * 9 + (10^9999 - 1)"])
        .output()
        .expect("ask runs");
    assert!(nines.status.success());
    let want = format!("{{\"ok\":{}}}\n", "9".repeat(10_000));
    assert_eq!(String::from_utf8_lossy(&nines.stdout), want);
}

#[test]
fn a_cbor_client_sees_bignum_tags_and_a_json_client_all_digits() {
    let broker = Broker::start();
    let prefix = unique_prefix("bigwire");
    let _server = Server::start(&broker, &prefix);
    let raw = RawClient::connect(&broker, &prefix, "raw-bigwire");
    let cbor = Some("application/cbor");
    let reply = raw.request(&prefix, "calc", &cbor_calc("2^64"), cbor, Some(b"1"));
    assert_eq!(reply.payload, cbor_ok_tag(0xC2), "{:02x?}", reply.payload);
    // -(2^64) - 1 is tag 3 on the magnitude 2^64.
    let reply = raw.request(&prefix, "calc", &cbor_calc("-(2^64)-1"), cbor, Some(b"2"));
    assert_eq!(reply.payload, cbor_ok_tag(0xC3), "{:02x?}", reply.payload);
    let json = br#"{"expr":"2^64"}"#;
    let reply = raw.request(&prefix, "calc", json, Some("application/json"), Some(b"3"));
    assert_eq!(reply.text(), format!("{{\"ok\":{TWO_64}}}"));
    let reply = raw.request(&prefix, "calc", b"2^64", Some("text/plain"), Some(b"4"));
    assert_eq!(reply.text(), TWO_64);
}

#[test]
fn a_result_over_the_digit_limit_is_a_limit_error_and_the_server_keeps_answering() {
    let broker = Broker::start();
    let prefix = unique_prefix("biglimit");
    let _server = Server::start(&broker, &prefix);
    for expr in ["9^9^9^9", "2^(10^10)", "(10^9999)*(10^9999)"] {
        mqttapp(&broker, &prefix)
            .args(["ask", "calc", expr])
            .assert()
            .code(1)
            .stderr(predicate::str::contains(
                "error: limit: integer too large: the result would have more than 10000 digits",
            ));
    }
    mqttapp(&broker, &prefix)
        .args(["ask", "calc", "2^64"])
        .assert()
        .success()
        .stdout(format!("{TWO_64}\n"));
}

/// Near-limit expressions (9,994 to 10,000 digits) and refusals, as
/// text/plain requests; the expected reply of each is what the evaluator
/// gives (checked against Python in the unit tests).
const FLOOD: [&str; 6] = [
    "7^11830",
    "-(7^11829)",
    "3^20959",
    "(2^33000)*(2^200)",
    "10^9999 * 9 + (10^9999 - 1)",
    "9^9^9^9",
];

fn flood_request(c: usize, i: usize) -> (&'static str, Vec<u8>, Vec<u8>) {
    use mqttapp::operations::calc::{evaluate, CalcLimits};
    let expr = FLOOD[(c * 7 + i) % FLOOD.len()];
    let reply = match evaluate(expr, &CalcLimits::default()) {
        Ok(n) => n.to_string(),
        Err(e) => format!("error: limit: {e}"),
    };
    ("calc", expr.as_bytes().to_vec(), reply.into_bytes())
}

#[test]
fn a_flood_of_near_limit_results_is_answered_in_full() {
    let broker = Broker::start();
    let prefix = unique_prefix("bigflood");
    let _server = Server::start(&broker, &prefix);
    let tally: Tally = pipelined(
        &broker,
        &prefix,
        2,
        150,
        flood_request,
        Duration::from_secs(120),
        Duration::from_millis(500),
    );
    assert_eq!(tally.sent, 300);
    assert_eq!(tally.lost(), 0, "{tally:?}");
    assert_eq!(tally.duplicates, 0, "{tally:?}");
    assert!(tally.wrong.is_empty(), "{:?}", tally.wrong);
    mqttapp(&broker, &prefix)
        .args(["ask", "calc", "1+1"])
        .assert()
        .success()
        .stdout("2\n");
}
