//! `make bench`: every speed figure of mqttapp as a ratio against a
//! reference measured in the same run, on a broker of its own.
//!
//! - one-shot `mqttapp ask` vs `mosquitto_rr` (whole-process wall time)
//! - `mqttapp serve` vs a bare paho echo responder (requests/s under the same load)
//! - `ask --batch` of 10,000 lines vs one-shot calls (extrapolated)
//! - edits/s with real fsync, server peak RSS, 1/2/4 servers in a group
//!
//! Prints a table and writes `docs/BENCHMARKS.md`. Bounded: every load has
//! a count and a time limit.

#[path = "../tests/common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{unique_prefix, Broker, Server};

const MQTTAPP: &str = env!("CARGO_BIN_EXE_mqttapp");

fn main() {
    let started = Instant::now();
    let bare_echo = Path::new(MQTTAPP)
        .with_file_name("examples")
        .join("bare_echo");
    assert!(
        bare_echo.is_file(),
        "build the reference first: cargo build --release --example bare_echo"
    );
    let mut report = Report::default();
    let broker = Broker::start_quiet();
    one_shot(&broker, &mut report);
    throughput(&broker, &bare_echo, &mut report);
    batch(&broker, &mut report);
    edits(&broker, &mut report);
    scale(&broker, &mut report);
    report.line(
        "whole benchmark run",
        format!("{:.0} s", started.elapsed().as_secs_f64()),
        "",
    );
    report.write();
}

/// Rows of (what, figure, reference/ratio).
#[derive(Default)]
struct Report {
    rows: Vec<(String, String, String)>,
}

impl Report {
    fn line(&mut self, what: &str, figure: String, note: &str) {
        println!("{what:<52} {figure:>22}  {note}");
        self.rows.push((what.to_string(), figure, note.to_string()));
    }

    fn write(&self) {
        let mut md = String::from("# Benchmarks\n\nWritten by `make bench` (benches/suite.rs); every figure is measured in the same run as its reference, on the machine below, against a Mosquitto of its own on loopback with `set_tcp_nodelay true`, logging as `config/mosquitto.conf` does. Numbers from a shared, noisy machine: compare the ratios, not the absolute values.\n\n");
        let _ = writeln!(md, "## Machine\n\n{}\n", machine());
        md.push_str("## Results\n\n| measurement | figure | reference / ratio |\n|---|---|---|\n");
        for (what, figure, note) in &self.rows {
            let _ = writeln!(md, "| {what} | {figure} | {note} |");
        }
        md.push_str("\nTargets (issue 5): one-shot ask <= 1.5x mosquitto_rr; serve >= 90% of the bare echo responder; batch >= 50x faster than one-shots; serve peak RSS <= 20 MiB.\n");
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/BENCHMARKS.md");
        std::fs::write(&path, md).expect("write docs/BENCHMARKS.md");
        println!("\nwritten to {}", path.display());
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    // `mosquitto -h` prints its version first (and exits 3).
    let mosquitto = Command::new(common::broker::mosquitto_path())
        .arg("-h")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!("- CPU: {cpu}, {cores} cores\n- broker: {mosquitto}\n- load average at the end: {}\n- date: {}", load.trim(), date())
}

fn date() -> String {
    Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn mqttapp(broker: &Broker, prefix: &str) -> Command {
    let mut cmd = Command::new(MQTTAPP);
    for var in common::CLEARED_ENV {
        cmd.env_remove(var);
    }
    cmd.env("MQTTAPP_BROKER", broker.url())
        .env("MQTTAPP_PREFIX", prefix)
        .env("NO_COLOR", "1")
        .current_dir(broker.dir());
    cmd
}

fn timed(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn one_shot(broker: &Broker, report: &mut Report) {
    let prefix = unique_prefix("oneshot");
    let _server = Server::start(broker, &prefix);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..60 {
        ours.push(timed(
            mqttapp(broker, &prefix).args(["ask", "calc", "2+3*4"]),
        ));
        theirs.push(timed(&mut broker.mosquitto_rr_calc(&prefix, "2+3*4", 5)));
    }
    let (ours, theirs) = (median(ours), median(theirs));
    report.line(
        "one-shot ask calc, median of 60 (whole process)",
        ms(ours),
        &format!(
            "mosquitto_rr {}: {:.2}x (target <= 1.5x)",
            ms(theirs),
            ours.as_secs_f64() / theirs.as_secs_f64()
        ),
    );
}

fn bench_json(broker: &Broker, prefix: &str, extra: &[&str]) -> serde_json::Value {
    let out = mqttapp(broker, prefix)
        .arg("bench")
        .args(["--json", "--duration", "30s"])
        .args(extra)
        .output()
        .expect("run mqttapp bench");
    // Exit code 1 with a report means requests were lost: the report says how many.
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("bench failed: {}", String::from_utf8_lossy(&out.stderr)))
}

fn lost(v: &serde_json::Value) -> String {
    match (
        v["lost"].as_u64().unwrap_or(0),
        v["resent"].as_u64().unwrap_or(0),
    ) {
        (0, 0) => String::new(),
        (lost, resent) => format!(", {lost} LOST, {resent} re-sent"),
    }
}

fn rps(v: &serde_json::Value) -> f64 {
    if v.is_null() {
        return 0.0;
    }
    v["throughput_rps"].as_f64().unwrap_or(0.0)
}

fn latency(v: &serde_json::Value) -> String {
    format!(
        "p50 {:.2} ms, p99 {:.2} ms",
        v["latency_ms"]["p50"].as_f64().unwrap_or(0.0),
        v["latency_ms"]["p99"].as_f64().unwrap_or(0.0)
    )
}

const LOAD: &[&str] = &["--count", "30000", "--connections", "4", "--window", "100"];

fn throughput(broker: &Broker, bare_echo: &PathBuf, report: &mut Report) {
    let (mut ours, mut reference) = (serde_json::Value::Null, serde_json::Value::Null);
    let mut peak_rss = 0;
    for round in 0..2 {
        let prefix = unique_prefix(&format!("tput-serve-{round}"));
        let mut server = Server::start(broker, &prefix);
        let v = bench_json(broker, &prefix, &[LOAD, &["--ops", "calc"]].concat());
        peak_rss = peak_rss.max(vm_hwm_kib(server.pid()));
        server.terminate();
        if rps(&v) > rps(&ours) {
            ours = v;
        }
        let prefix = unique_prefix(&format!("tput-echo-{round}"));
        let mut echo = Command::new(bare_echo)
            .args([&broker.url(), &prefix])
            .stderr(Stdio::null())
            .spawn()
            .expect("start bare_echo");
        std::thread::sleep(Duration::from_millis(300));
        let v = bench_json(
            broker,
            &prefix,
            &[LOAD, &["--ops", "calc", "--no-status-check"]].concat(),
        );
        let _ = echo.kill();
        let _ = echo.wait();
        if rps(&v) > rps(&reference) {
            reference = v;
        }
    }
    let note = format!(
        "bare paho echo {:.0}/s ({}{}): {:.0}% (target >= 90%)",
        rps(&reference),
        latency(&reference),
        lost(&reference),
        100.0 * rps(&ours) / rps(&reference)
    );
    report.line(
        "serve calc throughput, 4 conns x 100 in flight (best of 2)",
        format!("{:.0} req/s", rps(&ours)),
        &note,
    );
    report.line(
        "serve calc latency under that load",
        format!("{}{}", latency(&ours), lost(&ours)),
        "",
    );
    report.line(
        "serve peak RSS (VmHWM) under that load",
        format!("{:.1} MiB", peak_rss as f64 / 1024.0),
        "target <= 20 MiB",
    );
}

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn batch(broker: &Broker, report: &mut Report) {
    let prefix = unique_prefix("batch");
    let _server = Server::start(broker, &prefix);
    let input: String = (0..10_000).map(|i| format!("calc {i}*3+1\n")).collect();
    let file = broker.dir().join("batch-input.txt");
    std::fs::write(&file, input).expect("write batch input");
    // Three batches with the 500 one-shots spread between them, so that a
    // noisy moment on this machine does not land on one side only.
    let (mut batches, mut singles) = (Vec::new(), Duration::ZERO);
    for round in 0..3 {
        batches.push(batch_once(broker, &prefix, &file));
        if round < 2 {
            for i in 0..250 {
                singles +=
                    timed(mqttapp(broker, &prefix).args(["ask", "calc", &format!("{i}*3+1")]));
            }
        }
    }
    let batch = median(batches);
    let per_call = singles / 500;
    let extrapolated = per_call * 10_000;
    report.line(
        "ask --batch, 10,000 calc lines (median of 3)",
        format!("{:.2} s", batch.as_secs_f64()),
        &format!(
            "10,000 one-shots ~{:.1} s (500 measured, {} each): {:.0}x faster (target >= 50x)",
            extrapolated.as_secs_f64(),
            ms(per_call),
            extrapolated.as_secs_f64() / batch.as_secs_f64()
        ),
    );
}

fn batch_once(broker: &Broker, prefix: &str, input: &Path) -> Duration {
    let start = Instant::now();
    let out = mqttapp(broker, prefix)
        .args(["ask", "--batch"])
        .stdin(std::fs::File::open(input).expect("open input"))
        .output()
        .expect("run batch");
    let took = start.elapsed();
    let lines = out.stdout.iter().filter(|&&b| b == b'\n').count();
    assert!(
        out.status.success() && lines == 10_000,
        "batch failed ({lines} lines): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn edits(broker: &Broker, report: &mut Report) {
    let prefix = unique_prefix("edits");
    let _server = Server::start(broker, &prefix);
    let v = bench_json(
        broker,
        &prefix,
        &[
            "--count",
            "2000",
            "--connections",
            "2",
            "--window",
            "50",
            "--ops",
            "edit",
        ],
    );
    report.line(
        "edits with fsync (replace, 2 conns x 50 in flight)",
        format!("{:.0} edits/s", rps(&v)),
        &format!("{}{}", latency(&v), lost(&v)),
    );
}

fn scale(broker: &Broker, report: &mut Report) {
    let mut base = 0.0;
    for n in [1usize, 2, 4] {
        let prefix = unique_prefix(&format!("scale{n}"));
        let servers: Vec<Server> = (0..n)
            .map(|i| {
                Server::start_with(
                    broker,
                    &prefix,
                    &broker.dir().join(format!("scale{n}-{i}")),
                    &["--group", "bench", "--server-id", &format!("s{n}-{i}")],
                )
            })
            .collect();
        let v = bench_json(broker, &prefix, &[LOAD, &["--ops", "calc"]].concat());
        drop(servers);
        if n == 1 {
            base = rps(&v);
        }
        report.line(
            &format!("{n} serve process(es) in one group"),
            format!("{:.0} req/s", rps(&v)),
            &format!(
                "{:.2}x of 1 server (2 cores shared with broker and load){}",
                rps(&v) / base,
                lost(&v)
            ),
        );
    }
}
