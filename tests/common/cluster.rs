//! A real rmqtt cluster on free loopback ports, `serve` members on any
//! broker address, and the `bench` / `edit --show` runs the group and
//! cluster tests count with. Every wait is bounded.
//!
//! The cluster is configured from the project's own files
//! (`config/rmqtt/`), the same ones `make cluster` uses. rmqttd is found
//! through `RMQTTD`, then PATH, then `.tools/rmqtt/bin/rmqttd` (where
//! `make cluster-install` puts it). Without it the cluster tests skip with a
//! loud message, unless `MQTTAPP_REQUIRE_CLUSTER` is set (CI), where they
//! fail.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::CLEARED_ENV;

/// The rmqttd executable, if installed.
pub fn rmqttd_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RMQTTD").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("rmqttd"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/rmqtt/bin/rmqttd"))
            .filter(|p| p.is_file())
    })
}

/// rmqttd, or `None` after a loud message when it is missing and the
/// cluster is not required; panics when `MQTTAPP_REQUIRE_CLUSTER` is set
/// and rmqttd is missing.
pub fn rmqttd_or_skip(test: &str) -> Option<PathBuf> {
    if let Some(p) = rmqttd_path() {
        return Some(p);
    }
    let required = std::env::var_os("MQTTAPP_REQUIRE_CLUSTER").is_some_and(|v| !v.is_empty());
    assert!(
        !required,
        "MQTTAPP_REQUIRE_CLUSTER is set but rmqttd is not installed: run `make cluster-install` \
         (or set RMQTTD=/path/to/rmqttd)"
    );
    // Written to the stderr handle, not with eprintln!, which the test
    // harness captures and hides for a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {test}: rmqttd is not installed (make cluster-install, or RMQTTD=path); \
         set MQTTAPP_REQUIRE_CLUSTER=1 to make this a failure ***\n"
    );
    None
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().expect("local address").port()
}

fn project_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/rmqtt")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// One rmqtt node: its ports and its process.
struct Node {
    id: usize,
    mqtt: u16,
    grpc: u16,
    http: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// A running rmqtt cluster, every node killed when dropped.
pub struct Cluster {
    rmqttd: PathBuf,
    nodes: Vec<Node>,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` nodes (1-based ids) on free loopback ports and waits until
    /// each one lists all `n` nodes as running.
    pub fn start(rmqttd: &Path, n: usize) -> Cluster {
        let dir = tempfile::tempdir().expect("cluster temp dir");
        let nodes: Vec<Node> = (1..=n)
            .map(|id| Node {
                id,
                mqtt: free_port(),
                grpc: free_port(),
                http: free_port(),
                dir: dir.path().join(format!("node{id}")),
                child: None,
            })
            .collect();
        let mut cluster = Cluster {
            rmqttd: rmqttd.to_path_buf(),
            nodes,
            dir,
        };
        cluster.configure();
        for i in 0..n {
            cluster.launch(i);
        }
        cluster.wait_joined(n, Duration::from_secs(60));
        cluster
    }

    /// Writes each node's `rmqtt.toml` and `plugins/` from `config/rmqtt/`
    /// (the placeholders as `scripts/cluster.sh` fills them).
    fn configure(&self) {
        let peers = self
            .nodes
            .iter()
            .map(|n| format!("\"{}@127.0.0.1:{}\"", n.id, n.grpc))
            .collect::<Vec<_>>()
            .join(", ");
        for node in &self.nodes {
            let fill = |text: String| {
                text.replace("@N@", &node.id.to_string())
                    .replace("@DIR@", &node.dir.display().to_string())
                    .replace("@MQTT_PORT@", &node.mqtt.to_string())
                    .replace("@GRPC_PORT@", &node.grpc.to_string())
                    .replace("@HTTP_PORT@", &node.http.to_string())
                    .replace("@PEERS@", &peers)
            };
            let plugins = node.dir.join("plugins");
            std::fs::create_dir_all(&plugins).expect("node plugins dir");
            std::fs::create_dir_all(node.dir.join("log")).expect("node log dir");
            std::fs::write(
                node.dir.join("rmqtt.toml"),
                fill(project_file("node.toml.in")),
            )
            .expect("write rmqtt.toml");
            for plugin in PLUGINS {
                std::fs::write(
                    plugins.join(format!("{plugin}.toml")),
                    fill(project_file(&format!("{plugin}.toml.in"))),
                )
                .expect("write a plugin config");
            }
        }
    }

    fn launch(&mut self, i: usize) {
        let node = &self.nodes[i];
        let mut child = Command::new(&self.rmqttd)
            .arg("-f")
            .arg(node.dir.join("rmqtt.toml"))
            .current_dir(&node.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rmqttd");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", node.mqtt)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "rmqttd node {} exited ({status}):\n{}",
                    node.id,
                    self.log(i)
                );
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!(
                    "rmqttd node {} did not listen within 30 s:\n{}",
                    node.id,
                    self.log(i)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.nodes[i].child = Some(child);
    }

    /// Waits until every running node's HTTP API lists `running` nodes in
    /// state running.
    pub fn wait_joined(&self, running: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let seen: Vec<usize> = self
                .nodes
                .iter()
                .filter(|n| n.child.is_some())
                .map(|n| running_nodes(n.http))
                .collect();
            if seen.iter().all(|&s| s == running) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not join within {within:?}: nodes see {seen:?} running, \
                 want {running}\n{}",
                self.log(0)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `mqtt://127.0.0.1:<port>` of node `i` (0-based).
    pub fn url(&self, i: usize) -> String {
        format!("mqtt://127.0.0.1:{}", self.nodes[i].mqtt)
    }

    /// A scratch directory that lives as long as the cluster.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// kill -9 of node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `i` again with the same configuration and state.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.launch(i);
    }

    /// Node `i`'s log (its last 4 kB), for failure messages.
    pub fn log(&self, i: usize) -> String {
        let text =
            std::fs::read_to_string(self.nodes[i].dir.join("log/rmqtt.log")).unwrap_or_default();
        let start = text.len().saturating_sub(4096);
        text.get(start..).unwrap_or_default().to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// The plugin configurations each node gets (`config/rmqtt/<name>.toml.in`).
pub const PLUGINS: &[&str] = &[
    "rmqtt-acl",
    "rmqtt-cluster-broadcast",
    "rmqtt-http-api",
    "rmqtt-retainer",
];

/// How many nodes the HTTP API on `port` reports as running (0 when it
/// does not answer).
fn running_nodes(port: u16) -> usize {
    let Some(body) = http_get(port, "/api/v1/brokers") else {
        return 0;
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&body) else {
        return 0;
    };
    // A node the asked one cannot reach is listed as an error string.
    value.as_array().map_or(0, |nodes| {
        nodes
            .iter()
            .filter(|n| n.get("running").and_then(|r| r.as_bool()) == Some(true))
            .count()
    })
}

/// A bounded HTTP/1.0 GET on loopback; the body, or `None`.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_string())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_string()))
}

/// `mqttapp serve` on any broker address, its log captured; killed when
/// dropped.
pub struct Member {
    child: Option<Child>,
    log: Arc<Mutex<String>>,
}

impl Member {
    /// Starts `serve` on `url` with `prefix`, `data_dir` and extra flags;
    /// waits (bounded) until it logs "serving".
    pub fn start(url: &str, prefix: &str, data_dir: &Path, args: &[&str]) -> Member {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mqttapp"));
        for var in CLEARED_ENV {
            cmd.env_remove(var);
        }
        let mut child = cmd
            .arg("serve")
            .args(args)
            .env("MQTTAPP_BROKER", url)
            .env("MQTTAPP_PREFIX", prefix)
            .env("MQTTAPP_DATA_DIR", data_dir)
            .env("NO_COLOR", "1")
            .current_dir(data_dir.parent().unwrap_or(Path::new("/")))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mqttapp serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let member = Member {
            child: Some(child),
            log,
        };
        super::wait_until("a member serving", Duration::from_secs(20), || {
            member.log().contains("serving")
        });
        member
    }

    /// Everything it wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Requests it answered so far (it must run with `-v`).
    pub fn answered(&self) -> usize {
        self.log().matches(" answered ").count()
    }

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `mqttapp` with a clean environment, pointed at `url` and `prefix`, run
/// in `dir` (no config file there).
pub fn mqttapp_at(url: &str, prefix: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mqttapp"));
    for var in CLEARED_ENV {
        cmd.env_remove(var);
    }
    cmd.env("MQTTAPP_BROKER", url)
        .env("MQTTAPP_PREFIX", prefix)
        .env("MQTTAPP_TIMEOUT", "10")
        .env("NO_COLOR", "1")
        .current_dir(dir);
    cmd
}

/// Starts `mqttapp bench --json` with `args` against `url`.
pub fn spawn_bench(url: &str, prefix: &str, dir: &Path, args: &[&str]) -> Child {
    bench_at(url, prefix, dir, args, None)
}

/// [`spawn_bench`] with a request timeout of 60 s: long enough for the
/// re-sends (every 4 s at most) to outlast an rmqtt cluster's stall of
/// up to ~45 s after a node dies (docs/SCALING.md).
pub fn spawn_patient_bench(url: &str, prefix: &str, dir: &Path, args: &[&str]) -> Child {
    bench_at(url, prefix, dir, args, Some("60s"))
}

fn bench_at(url: &str, prefix: &str, dir: &Path, args: &[&str], timeout: Option<&str>) -> Child {
    let mut cmd = mqttapp_at(url, prefix, dir);
    if let Some(timeout) = timeout {
        cmd.env("MQTTAPP_TIMEOUT", timeout);
    }
    cmd.arg("bench")
        .args(args)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mqttapp bench")
}

/// Waits (bounded) for a bench started by [`spawn_bench`]; its JSON report.
pub fn bench_report(child: Child, within: Duration) -> serde_json::Value {
    let out = super::wait_output(child, within);
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "bench did not print a JSON report ({e}), exit {:?}:\n{stdout}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A count from a bench report.
pub fn count(report: &serde_json::Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key} in {report}"))
}

/// The revision of `file` as the servers on `url` report it (`ask edit
/// --show`): with edits that each make one revision, the number applied.
pub fn edit_rev(url: &str, prefix: &str, dir: &Path, file: &str) -> u64 {
    let out = mqttapp_at(url, prefix, dir)
        .args(["ask", "--json", "edit", "--show", "--file", file])
        .output()
        .expect("run ask edit --show");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "edit --show did not print JSON ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    value["ok"]["rev"]
        .as_u64()
        .unwrap_or_else(|| panic!("no revision in {value}"))
}
