//! `make bench`: every speed figure of mqttapp as a ratio against a
//! reference measured in the same run, on a broker of its own.
//!
//! - one-shot `mqttapp ask` vs `mosquitto_rr` (whole-process wall time)
//! - `mqttapp serve` vs a bare paho echo responder (requests/s under the same load)
//! - `ask --batch` of 10,000 lines vs one-shot calls (extrapolated)
//! - edits/s with real fsync, server peak RSS, 1/2/4 servers in a group
//! - a flood: another client's calc latency under an edit flood, `busy`
//!   refusals, server peak RSS under a flood of large-property requests
//!
//! - calc: small-integer evaluations/s vs the frozen i64-only evaluator,
//!   and the cost of the largest allowed integers (in-process)
//!
//! `MQTTAPP_BENCH_ONLY=flood` runs the flood alone and only prints it;
//! `MQTTAPP_BENCH_ONLY=calc` the same for the calc stage.
//!
//! Prints a table and writes `docs/BENCHMARKS.md`. Bounded: every load has
//! a count and a time limit.

#[path = "../tests/common/mod.rs"]
mod common;

#[allow(dead_code)] // a frozen copy: only `evaluate` is measured
#[path = "calc_i64/mod.rs"]
mod calc_i64;
#[path = "calc_stage/mod.rs"]
mod calc_stage;
/// What the frozen copy's `crate::limits` refers to.
mod limits {
    pub use mqttapp::limits::CalcLimits;
}

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{unique_prefix, Broker, Server};

const MQTTAPP: &str = env!("CARGO_BIN_EXE_mqttapp");

fn main() {
    let started = Instant::now();
    if std::env::var("MQTTAPP_BENCH_ONLY").as_deref() == Ok("flood") {
        flood(&Broker::start_quiet(), &mut Report::default());
        return;
    }
    if std::env::var("MQTTAPP_BENCH_ONLY").as_deref() == Ok("calc") {
        calc(&mut Report::default());
        return;
    }
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
    flood(&broker, &mut report);
    calc(&mut report);
    report.line(
        "whole benchmark run",
        format!("{:.0} s", started.elapsed().as_secs_f64()),
        "",
    );
    report.write();
}

/// The calc stage (benches/calc_stage/), in-process.
fn calc(report: &mut Report) {
    for (what, figure, note) in calc_stage::rows() {
        report.line(&what, figure, &note);
    }
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
                    // One data directory per group (docs/EDITS_ACROSS_HOSTS.md).
                    &broker.dir().join(format!("scale{n}")),
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

/// The edit flood's requests: keyed appends to four files.
const FLOOD_EDITS: usize = 20_000;
/// Requests with a 60 KB response topic, correlation data and content type.
const FLOOD_LARGE: usize = 1_000;
/// Calc requests timed while the edits flood.
const FLOOD_CALCS: usize = 200;

/// One client floods edits (published without waiting for replies) while
/// another times calc requests one at a time; then a flood of requests
/// with large properties. Reports the calc latency, how many requests were
/// refused `busy` and the server's peak RSS.
fn flood(broker: &Broker, report: &mut Report) {
    use common::load::LoadClient;
    use std::sync::atomic::{AtomicBool, Ordering};

    let prefix = unique_prefix("flood");
    let server = Server::start(broker, &prefix);
    let flooder = LoadClient::connect(broker, &prefix, &format!("{prefix}-flood"));
    let calcs = LoadClient::connect(broker, &prefix, &format!("{prefix}-calc"));
    let flooding = AtomicBool::new(true);
    let sent = std::sync::atomic::AtomicUsize::new(0);
    let (latencies, unanswered, busy) = std::thread::scope(|s| {
        let counter = s.spawn(|| count_busy(&flooder, &flooding));
        let edits = s.spawn(|| {
            let edit = format!("{prefix}/v1/req/edit");
            let mut window = std::collections::VecDeque::new();
            for i in 0..FLOOD_EDITS {
                let payload = format!(
                    r#"{{"action":"append","text":"flood {i}","file":"f{}.txt"}}"#,
                    i % 4
                );
                let correlation = format!("f{i}");
                window.push_back(flooder.publish(
                    &edit,
                    payload.as_bytes(),
                    correlation.as_bytes(),
                    None,
                ));
                if window.len() > 50 {
                    let _ = window
                        .pop_front()
                        .map(|t| t.wait_for(Duration::from_secs(60)));
                }
                sent.fetch_add(1, Ordering::SeqCst);
            }
        });
        // Let a backlog build up before timing calcs.
        let deadline = Instant::now() + Duration::from_secs(60);
        while sent.load(Ordering::SeqCst) < FLOOD_EDITS / 4 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let calc = format!("{prefix}/v1/req/calc");
        let (mut latencies, mut unanswered) = (Vec::new(), 0);
        let phase_end = Instant::now() + Duration::from_secs(60);
        for i in 0..FLOOD_CALCS {
            if Instant::now() > phase_end {
                break;
            }
            let start = Instant::now();
            calcs.send(&calc, b"1+1", format!("c{i}").as_bytes(), None);
            let correlation = format!("c{i}").into_bytes();
            let answered = loop {
                match calcs.next(Duration::from_secs(5)) {
                    Some((c, _)) if c == correlation => break true,
                    Some(_) => continue,
                    None => break false,
                }
            };
            if answered {
                latencies.push(start.elapsed());
            } else {
                unanswered += 1;
            }
        }
        let _ = edits.join();
        std::thread::sleep(Duration::from_secs(2));
        flooding.store(false, Ordering::SeqCst);
        (latencies, unanswered, counter.join().unwrap_or(0))
    });
    let timed = latencies.len() + unanswered;
    let (p50, p99) = percentiles(latencies);
    let figure = if timed == unanswered {
        "none answered".to_string()
    } else {
        format!("p50 {}, p99 {}", ms(p50), ms(p99))
    };
    report.line(
        "flood: another client's calc under an edit flood",
        figure,
        &format!(
            "{timed} calcs one at a time (at most {FLOOD_CALCS} or 60 s), {unanswered} unanswered within 5 s; flood of {FLOOD_EDITS} keyed appends, {busy} refused busy"
        ),
    );
    let big = LoadClient::connect(broker, &prefix, &format!("{prefix}-big"));
    let long_base = format!("{}-long", big.response_topic);
    big.client
        .subscribe(format!("{long_base}/#"), 1)
        .wait_for(Duration::from_secs(30))
        .expect("subscribe");
    let flooding = AtomicBool::new(true);
    let busy = std::thread::scope(|s| {
        let counter = s.spawn(|| count_busy(&big, &flooding));
        large_flood(&big, &prefix, &long_base);
        std::thread::sleep(Duration::from_secs(5));
        flooding.store(false, Ordering::SeqCst);
        counter.join().unwrap_or(0)
    });
    report.line(
        "flood: serve peak RSS (VmHWM) over both floods",
        format!("{:.1} MiB", vm_hwm_kib(server.pid()) as f64 / 1024.0),
        &format!(
            "then {FLOOD_LARGE} edits with 3 x 60 KB properties: {busy} refused busy (budget max_queue_bytes 16 MiB)"
        ),
    );
}

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    if v.is_empty() {
        return (Duration::ZERO, Duration::ZERO);
    }
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// Counts `busy` replies on `client` until `go_on` is false.
fn count_busy(client: &common::load::LoadClient, go_on: &std::sync::atomic::AtomicBool) -> usize {
    use mqttapp::protocol::{decode_reply, Encoding, Reply};
    let mut busy = 0;
    while go_on.load(std::sync::atomic::Ordering::SeqCst) {
        let Ok(Some(msg)) = client.rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let ct = msg
            .properties()
            .get_string(paho_mqtt::PropertyCode::ContentType);
        let encoding = Encoding::detect(ct.as_deref(), msg.payload());
        if let Ok(Reply::Err(e)) = decode_reply(encoding, msg.payload()) {
            if e.code == "busy" {
                busy += 1;
            }
        }
    }
    busy
}

fn large_flood(client: &common::load::LoadClient, prefix: &str, long_base: &str) {
    let topic = format!("{prefix}/v1/req/edit");
    let long_topic = format!("{long_base}/{}", "t".repeat(60_000));
    let content_type = format!("application/json; x={}", "c".repeat(60_000));
    let mut window = std::collections::VecDeque::new();
    for i in 0..FLOOD_LARGE {
        let mut correlation = format!("b{i}:").into_bytes();
        correlation.resize(60_000, b'x');
        let mut p = paho_mqtt::Properties::new();
        let _ = p.push_string(paho_mqtt::PropertyCode::ResponseTopic, &long_topic);
        let _ = p.push_binary(paho_mqtt::PropertyCode::CorrelationData, correlation);
        let _ = p.push_string(paho_mqtt::PropertyCode::ContentType, &content_type);
        let msg = paho_mqtt::MessageBuilder::new()
            .topic(&topic)
            .payload(format!(r#"{{"action":"append","text":"big {i}"}}"#))
            .qos(1)
            .properties(p)
            .finalize();
        window.push_back(client.client.publish(msg));
        if window.len() > 20 {
            let _ = window
                .pop_front()
                .map(|t| t.wait_for(Duration::from_secs(60)));
        }
    }
    for t in window {
        let _ = t.wait_for(Duration::from_secs(60));
    }
}
