//! Checked publishing and backpressure under load: 100 clients each
//! pipeline 1,000 requests to one server; every request gets exactly one
//! reply (counted by correlation data), none is lost or duplicated, and
//! nothing lands in the dead letters.

mod common;

use std::time::Duration;

use common::load::pipelined;
use common::{unique_prefix, Broker, Server};

/// `c+i` as plain text; the reply is the sum.
fn sum(c: usize, i: usize) -> (&'static str, Vec<u8>, Vec<u8>) {
    (
        "calc",
        format!("{c}+{i}").into_bytes(),
        (c + i).to_string().into_bytes(),
    )
}

#[test]
fn hundred_clients_pipelining_a_thousand_requests_each_get_exactly_one_reply_each() {
    let broker = Broker::start();
    let prefix = unique_prefix("load");
    // These clients publish all their requests without waiting for
    // replies, so up to all 100,000 may wait inside the server: give it a
    // queue that large (the default bound refuses the excess with `busy`,
    // see tests/attack_flood.rs); this test is about the replies' side.
    let server = Server::start_with(
        &broker,
        &prefix,
        &broker.dir().join(format!("data-{prefix}")),
        &["--max-queue-bytes", "1GiB"],
    );
    let tally = pipelined(
        &broker,
        &prefix,
        100,
        1_000,
        sum,
        Duration::from_secs(240),
        Duration::from_millis(500),
    );
    tally.assert_exactly_once(100_000);
    let dead = server.data_dir().join(".mqttapp/deadletters.jsonl");
    assert!(
        !dead.exists() || std::fs::read_to_string(&dead).unwrap().is_empty(),
        "no request may become a dead letter under load"
    );
    assert!(!server.log().contains("ERROR"), "{}", server.log());
}
