//! `bench --rate/--warmup/--slo/--report` through the real binary against
//! a real Mosquitto and server: open-loop counts, objectives that pass and
//! miss (exit 11), bad objectives (exit 2), and well-formed SVG and HTML
//! reports. Outcome checks only: no timing assertions.

mod common;

use common::{mqttapp, unique_prefix, Broker, Server};
use predicates::prelude::*;

/// The documented exit code of a missed objective (README, docs/CLI.md).
const SLO_MISSED: i32 = 11;

fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(out)))
}

/// 200/s for 2 s after a 0.5 s warm-up: about 400 recorded requests, 100
/// warm-up ones, none lost; a generous objective passes, an impossible one
/// misses with exit 11 and says MISS.
#[test]
fn open_loop_sends_on_schedule_and_objectives_decide_the_exit_code() {
    let broker = Broker::start();
    let prefix = unique_prefix("benchslo");
    let _server = Server::start(&broker, &prefix);
    let open_loop = [
        "bench",
        "--rate",
        "200",
        "--warmup",
        "500ms",
        "--duration",
        "2s",
        "--connections",
        "2",
    ];
    let out = mqttapp(&broker, &prefix)
        .args(open_loop)
        .args(["--slo", "p99<30s", "--slo", "max<=60s,lost=0", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let r = json(&out);
    let sent = r["sent"].as_u64().unwrap();
    assert!((380..=400).contains(&sent), "sent {sent}: {r}");
    let warm = r["warmup"]["sent"].as_u64().unwrap();
    assert!((90..=100).contains(&warm), "warm-up sent {warm}: {r}");
    assert_eq!(r["rate_rps"], 200, "{r}");
    assert_eq!(r["lost"], 0, "{r}");
    assert_eq!(r["duplicates"], 0, "{r}");
    assert_eq!(r["ok"].as_u64(), Some(sent), "{r}");
    let seconds: u64 = r["per_second"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(seconds, sent, "every recorded reply in a second: {r}");
    let verdicts = r["slo"].as_array().unwrap();
    assert_eq!(verdicts.len(), 4, "duplicates=0 added: {r}");
    assert!(verdicts.iter().all(|v| v["pass"] == true), "{r}");

    // Nothing answers within a microsecond: MISS, exit 11; the table says
    // which objective and what was measured.
    mqttapp(&broker, &prefix)
        .args(open_loop)
        .args(["--slo", "p50<1us,p99<30s"])
        .assert()
        .code(SLO_MISSED)
        .stdout(predicate::str::is_match(r"slo p50<1us +[0-9.]+ ms +MISS").unwrap())
        .stdout(predicate::str::is_match(r"slo p99<30s +[0-9.]+ ms +PASS").unwrap())
        .stdout(predicate::str::is_match(r"slo lost=0 +0 +PASS").unwrap())
        .stdout(predicate::str::contains(
            "loop            open, 200 requests/s",
        ))
        .stderr(predicate::str::contains("1 of 4 objectives (--slo) missed"));
}

/// Bad objectives are usage errors (exit 2) that name the objective and
/// say what is wrong, before anything is sent (no server needed).
#[test]
fn a_bad_objective_is_a_usage_error() {
    let broker = Broker::start();
    let prefix = unique_prefix("benchslobad");
    for (spec, why) in [
        ("p99<20", "needs a unit"),
        ("p99>20ms", "upper bounds"),
        ("lost<3", "lost can only be required to be 0"),
        ("median<1ms", "unknown measure"),
    ] {
        mqttapp(&broker, &prefix)
            .args(["bench", "--rate", "10", "--slo", "p50<1s", "--slo", spec])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!("bad --slo {spec:?}")))
            .stderr(predicate::str::contains(why));
    }
    mqttapp(&broker, &prefix)
        .args(["bench", "--report", "out.png"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(".svg or .html"));
    mqttapp(&broker, &prefix)
        .args(["bench", "--rate", "0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("requests per second"));
}

/// `--report x.svg` and `x.html` are well-formed XML (python3's parser)
/// holding both charts' titles, the lost and duplicate counts, and (HTML)
/// the objectives' verdicts; a report that cannot be written exits 10
/// after the results were printed.
#[test]
fn reports_are_well_formed_svg_and_html() {
    let broker = Broker::start();
    let prefix = unique_prefix("benchreport");
    let _server = Server::start(&broker, &prefix);
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("x.svg");
    let html = dir.path().join("x.html");
    for (file, slo) in [(&svg, "p99<30s"), (&html, "p50<1us")] {
        let code = if file == &svg { 0 } else { SLO_MISSED };
        mqttapp(&broker, &prefix)
            .args([
                "bench",
                "--rate",
                "100",
                "--duration",
                "1500ms",
                "--slo",
                slo,
            ])
            .arg("--report")
            .arg(file)
            .assert()
            .code(code);
    }
    // A report that cannot be written: the results are printed all the
    // same, then exit 10.
    mqttapp(&broker, &prefix)
        .args(["bench", "--rate", "100", "--duration", "500ms", "--report"])
        .arg(dir.path().join("no-such-dir/x.svg"))
        .assert()
        .code(10)
        .stdout(predicate::str::contains("sent            50"))
        .stderr(predicate::str::contains("cannot write the report"));
    let check = r#"
import sys, xml.etree.ElementTree as ET
svg_root = ET.parse(sys.argv[1]).getroot()
assert svg_root.tag == "{http://www.w3.org/2000/svg}svg", svg_root.tag
texts = " | ".join(t.text or "" for t in svg_root.iter("{http://www.w3.org/2000/svg}text"))
assert "Latency by percentile (from the intended send time, open loop)" in texts, texts
assert "Requests per second completed - lost 0, duplicates 0" in texts, texts
html_root = ET.parse(sys.argv[2]).getroot()
assert html_root.tag == "html", html_root.tag
assert html_root.find(".//{http://www.w3.org/2000/svg}svg") is not None
cells = [c.text or "" for c in html_root.iter("td")]
assert "MISS" in cells and "p50<1us" in cells, cells
print("ok")
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", check])
        .arg(&svg)
        .arg(&html)
        .output()
        .expect("python3 (make setup installs it)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
