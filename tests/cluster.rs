//! mqttapp on a real 2-node rmqtt cluster (config/rmqtt/, started per test
//! on free loopback ports by tests/common/cluster.rs): a server on node A
//! answers `ask` on node B, fail-fast status crosses nodes, a group with
//! one member per node loses nothing when a member or a whole node is
//! killed, and edits are applied exactly once.
//!
//! Skipped (loudly) when rmqttd is not installed, unless
//! `MQTTAPP_REQUIRE_CLUSTER` is set (CI sets it and installs rmqttd).

mod common;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::cluster::{
    bench_report, count, edit_rev, mqttapp_at, rmqttd_or_skip, spawn_patient_bench, Cluster, Member,
};
use common::{unique_prefix, wait_until};

/// One cluster at a time: two rmqttd nodes, their members and a bench
/// already fill the 2 cores CI has.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const NODE_A: usize = 0;
const NODE_B: usize = 1;

/// `ask` on `url`; (exit code, stdout, stderr).
fn ask(url: &str, prefix: &str, dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = mqttapp_at(url, prefix, dir)
        .arg("ask")
        .args(args)
        .output()
        .expect("run ask");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

#[test]
fn a_server_on_node_a_answers_ask_on_node_b_and_its_status_crosses_nodes() {
    let Some(rmqttd) = rmqttd_or_skip("cluster ask across nodes") else {
        return;
    };
    let _serial = serial();
    let started = Instant::now();
    let cluster = Cluster::start(&rmqttd, 2);
    let prefix = unique_prefix("xnode");
    let (a, b, dir) = (cluster.url(NODE_A), cluster.url(NODE_B), cluster.dir());
    let mut server = Member::start(
        &a,
        &prefix,
        &dir.join("data"),
        &["--server-id", &format!("{prefix}-a")],
    );
    let calc = ask(&b, &prefix, dir, &["calc", "2+3*4"]);
    assert_eq!((calc.0, calc.1.as_str()), (0, "14"), "{calc:?}");
    let echo = ask(&b, &prefix, dir, &["echo", "across nodes"]);
    assert_eq!((echo.0, echo.1.as_str()), (0, "across nodes"), "{echo:?}");
    for line in ["one", "two"] {
        let edit = ask(&b, &prefix, dir, &["edit", "--append", line]);
        assert_eq!(edit.0, 0, "{edit:?}");
    }
    let show = ask(&b, &prefix, dir, &["edit", "--show"]);
    assert!(show.0 == 0 && show.1.contains("one\ntwo"), "{show:?}");
    assert_eq!(edit_rev(&b, &prefix, dir, "notes.txt"), 2);

    // Fail fast from node B: no server under another prefix at all, and,
    // once the server on node A is killed, its will (offline status)
    // reaches node B.
    let none = ask(&b, &unique_prefix("nobody"), dir, &["calc", "1"]);
    assert_eq!(none.0, 6, "no server online: exit 6: {none:?}");
    server.kill();
    wait_until("the will on node B", Duration::from_secs(20), || {
        ask(&b, &prefix, dir, &["--timeout", "3", "calc", "1"]).0 == 6
    });
    eprintln!("cluster test took {:?}", started.elapsed());
}

/// Members `m1` (node A) and `m2` (node B) of group `g`, sharing `data`.
fn one_member_per_node(cluster: &Cluster, prefix: &str, data: &Path) -> Vec<Member> {
    [NODE_A, NODE_B]
        .iter()
        .enumerate()
        .map(|(i, &node)| {
            let id = format!("{prefix}-m{}", i + 1);
            Member::start(
                &cluster.url(node),
                prefix,
                data,
                &["--server-id", &id, "--group", "g", "-v"],
            )
        })
        .collect()
}

const BENCH: &[&str] = &[
    "--ops",
    "calc=8,edit=2",
    "--connections",
    "8",
    "--window",
    "16",
    "--count",
];

/// Runs `total` mixed requests on node B; `crash` is called once `after`
/// answers were counted by the members. Asserts nothing lost and every
/// edit applied exactly once; returns the report.
fn bench_with_crash(
    cluster: &mut Cluster,
    members: &mut [Member],
    prefix: &str,
    total: u64,
    after: usize,
    crash: impl FnOnce(&mut Cluster, &mut [Member]),
) -> serde_json::Value {
    let b = cluster.url(NODE_B);
    let dir = cluster.dir().to_path_buf();
    let total_arg = total.to_string();
    let args: Vec<&str> = BENCH.iter().copied().chain([total_arg.as_str()]).collect();
    let bench = spawn_patient_bench(&b, prefix, &dir, &args);
    wait_until("answers before the crash", Duration::from_secs(120), || {
        members.iter().map(Member::answered).sum::<usize>() >= after
    });
    crash(cluster, members);
    let report = bench_report(bench, Duration::from_secs(180));
    eprintln!("{report}");
    assert_eq!(count(&report, "sent"), total, "{report}");
    assert_eq!(count(&report, "lost"), 0, "lost requests: {report}");
    assert_eq!(count(&report, "replies"), total, "{report}");
    let edits = total / 10 * 2;
    assert_eq!(
        edit_rev(&b, prefix, &dir, "bench.txt"),
        edits,
        "each of the {edits} edits makes exactly one revision"
    );
    report
}

#[test]
fn a_group_member_killed_on_one_node_loses_nothing() {
    let Some(rmqttd) = rmqttd_or_skip("cluster member kill") else {
        return;
    };
    let _serial = serial();
    let started = Instant::now();
    let mut cluster = Cluster::start(&rmqttd, 2);
    let prefix = unique_prefix("xkill");
    let data = cluster.dir().join("shared");
    let mut members = one_member_per_node(&cluster, &prefix, &data);
    // kill -9 of the member on node A while the bench on node B runs.
    bench_with_crash(&mut cluster, &mut members, &prefix, 2_000, 300, |_, m| {
        m[0].kill();
    });
    eprintln!("cluster test took {:?}", started.elapsed());
}

#[test]
fn a_node_killed_under_load_leaves_the_member_on_the_other_node_serving_and_loses_nothing() {
    let Some(rmqttd) = rmqttd_or_skip("cluster node kill") else {
        return;
    };
    let _serial = serial();
    let started = Instant::now();
    let mut cluster = Cluster::start(&rmqttd, 2);
    let prefix = unique_prefix("xnodekill");
    let data = cluster.dir().join("shared");
    let mut members = one_member_per_node(&cluster, &prefix, &data);
    // kill -9 of node A (its member loses its broker and keeps trying to
    // reconnect to it); the bench and the member on node B carry on.
    let report = bench_with_crash(&mut cluster, &mut members, &prefix, 2_000, 300, |c, _| {
        c.kill(NODE_A);
    });
    let served_after = members[1].answered();
    assert!(served_after > 0, "the member on node B kept serving");
    eprintln!(
        "node kill: {} re-sent, {} duplicate replies; cluster test took {:?}",
        count(&report, "resent"),
        count(&report, "duplicates"),
        started.elapsed()
    );
}

#[test]
fn a_server_with_a_broker_list_moves_to_the_surviving_node() {
    let Some(rmqttd) = rmqttd_or_skip("cluster broker-list failover") else {
        return;
    };
    let _serial = serial();
    let started = Instant::now();
    let mut cluster = Cluster::start(&rmqttd, 2);
    let prefix = unique_prefix("xfail");
    let (a, b) = (cluster.url(NODE_A), cluster.url(NODE_B));
    let dir = cluster.dir().to_path_buf();
    // The server knows both nodes and connects to A, the first.
    let list = format!("{a},{b}");
    let server = Member::start(
        &list,
        &prefix,
        &dir.join("data"),
        &["--server-id", &format!("{prefix}-s"), "-v"],
    );
    let before = ask(&b, &prefix, &dir, &["edit", "--append", "before"]);
    assert_eq!(before.0, 0, "{before:?}");
    cluster.kill(NODE_A);
    // Node B stalls for a while after A dies (it refuses even new
    // connections, docs/SCALING.md); the server reconnects to B, the next
    // broker of its list, and answers there.
    wait_until(
        "the server answering on node B",
        Duration::from_secs(120),
        || ask(&b, &prefix, &dir, &["--timeout", "5", "calc", "1+1"]).0 == 0,
    );
    let after = ask(
        &b,
        &prefix,
        &dir,
        &["--timeout", "60", "edit", "--append", "after"],
    );
    assert_eq!(after.0, 0, "answered after failover: {after:?}");
    let show = ask(&b, &prefix, &dir, &["edit", "--show"]);
    assert!(
        show.0 == 0 && show.1.ends_with("before\nafter"),
        "each edit once, in order: {show:?}"
    );
    assert_eq!(edit_rev(&b, &prefix, &dir, "notes.txt"), 2);
    assert!(
        server.log().contains(&b.replace("mqtt://", "")) || server.log().contains("reconnected"),
        "the server says where it went:\n{}",
        server.log()
    );
    eprintln!("cluster test took {:?}", started.elapsed());
}
