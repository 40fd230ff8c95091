//! A group member killed under `bench` load on one Mosquitto: nothing is
//! lost and no edit is applied twice. Mosquitto keeps handing a crashed
//! member's session its share of the requests until the session expires;
//! what saves them is the clients' own re-send schedule (a re-send every
//! few seconds at most, whatever the timeout) together with the short
//! session expiry group members get by default (the dead session stops
//! taking requests after a second or two).

mod common;

use std::path::Path;
use std::time::Duration;

use common::cluster::{bench_report, count, edit_rev, spawn_bench, Member};
use common::{unique_prefix, wait_until, Broker};

/// `n` members `m1..mn` of group `g` on `url`, sharing `data`; `-v` logs
/// each answer (progress).
fn members(url: &str, prefix: &str, data: &Path, n: usize) -> Vec<Member> {
    (1..=n)
        .map(|i| {
            let id = format!("{prefix}-m{i}");
            Member::start(
                url,
                prefix,
                data,
                &["--server-id", &id, "--group", "g", "-v"],
            )
        })
        .collect()
}

#[test]
fn killing_one_of_three_members_under_bench_load_loses_nothing_and_applies_no_edit_twice() {
    let broker = Broker::start_quiet();
    let prefix = unique_prefix("crash");
    let data = broker.dir().join("shared");
    let mut group = members(&broker.url(), &prefix, &data, 3);
    let total = 3_000u64;
    let bench = spawn_bench(
        &broker.url(),
        &prefix,
        broker.dir(),
        &[
            "--ops",
            "calc=8,edit=2",
            "--connections",
            "20",
            "--window",
            "16",
            "--count",
            &total.to_string(),
        ],
    );
    wait_until("500 answers", Duration::from_secs(120), || {
        group.iter().map(Member::answered).sum::<usize>() >= 500
    });
    group[1].kill();
    let report = bench_report(bench, Duration::from_secs(240));
    eprintln!("{report}");
    let edits = total / 10 * 2;
    let rev = edit_rev(&broker.url(), &prefix, broker.dir(), "bench.txt");
    assert_eq!(count(&report, "sent"), total, "{report}");
    assert_eq!(count(&report, "lost"), 0, "lost requests: {report}");
    assert_eq!(count(&report, "replies"), total, "{report}");
    assert_eq!(
        rev, edits,
        "each of the {edits} edits makes one revision: {rev} means some were lost or applied twice"
    );
}
