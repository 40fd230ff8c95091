//! `mqttapp doctor` and the CONNACK checks of `serve`, against real
//! Mosquittos: one as the project runs it (every guarantee holds) and
//! ones configured to break a guarantee (the verdict flips).

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{mqttapp, mqttapp_std, unique_prefix, wait_output, Broker};

/// A Mosquitto started from `config/mosquitto-limited.conf` on a free
/// port (the shipped file's listener line replaced), killed when dropped.
struct Limited {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Limited {
    fn start() -> Limited {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let shipped = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mosquitto-limited.conf"),
        )
        .unwrap();
        let conf = shipped.replace(
            "listener 1884 127.0.0.1",
            &format!("listener {port} 127.0.0.1"),
        );
        let path = dir.path().join("mosquitto.conf");
        std::fs::write(&path, conf).unwrap();
        let mut child = Command::new(common::broker::mosquitto_path())
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                panic!("mosquitto exited ({status}): {err}");
            }
            assert!(Instant::now() < until, "mosquitto did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Limited {
            child,
            port,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn verdicts(stdout: &[u8]) -> serde_json::Value {
    serde_json::from_slice(stdout).expect("doctor --json prints one JSON object")
}

fn holds(report: &serde_json::Value, guarantee: &str) -> String {
    report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["guarantee"] == guarantee)
        .unwrap_or_else(|| panic!("no verdict {guarantee} in {report}"))["holds"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn every_guarantee_holds_on_the_projects_mosquitto() {
    let broker = Broker::start();
    let out = mqttapp(&broker, &unique_prefix("doctor_ok"))
        .args(["doctor", "--json"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let report = verdicts(&out.stdout);
    for g in [
        "groups",
        "exactly_once_edits",
        "fail_fast_status",
        "message_expiry",
        "queue_burst",
    ] {
        assert_eq!(holds(&report, g), "yes", "{g}: {report}");
    }
    assert_eq!(out.status.code(), Some(0), "{report}");
    // The text report names every guarantee too.
    let text = mqttapp(&broker, &unique_prefix("doctor_ok"))
        .arg("doctor")
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("all guarantees hold"), "{text}");
}

#[test]
fn a_short_queue_and_no_retained_messages_flip_their_verdicts() {
    let limited = Limited::start();
    let out = mqttapp_std(&Broker::start(), &unique_prefix("doctor_limited"))
        .env("MQTTAPP_BROKER", limited.url())
        .args(["doctor", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(out, Duration::from_secs(60));
    let report = verdicts(&out.stdout);
    assert_eq!(holds(&report, "queue_burst"), "no", "{report}");
    assert_eq!(holds(&report, "fail_fast_status"), "no", "{report}");
    assert_eq!(holds(&report, "groups"), "yes", "{report}");
    assert_eq!(holds(&report, "exactly_once_edits"), "yes", "{report}");
    assert_eq!(report["brokers"][0]["capabilities"]["retain"], false);
    assert_eq!(out.status.code(), Some(8), "{report}");
}

#[test]
fn a_list_with_an_unreachable_broker_is_reported() {
    let broker = Broker::start();
    let list = format!("{},mqtt://127.0.0.1:1", broker.url());
    let out = mqttapp(&broker, &unique_prefix("doctor_list"))
        .env("MQTTAPP_BROKER", list)
        .args(["doctor", "--json"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let report = verdicts(&out.stdout);
    assert_eq!(holds(&report, "reachable"), "no", "{report}");
    assert!(report["brokers"][1]["error"].is_string(), "{report}");
    assert_eq!(out.status.code(), Some(8));
}

/// A broker that accepts QoS 0 only cannot carry requests without losing
/// them: `serve` says so and exits 8 at once instead of reconnecting
/// forever.
#[test]
fn serve_refuses_a_broker_that_allows_qos_0_only() {
    let broker = Broker::start_with("listener {port} 127.0.0.1\nallow_anonymous true\nmax_qos 0\n");
    let data = tempfile::tempdir().unwrap();
    let child = mqttapp_std(&broker, &unique_prefix("doctor_qos0"))
        .arg("serve")
        .env("MQTTAPP_DATA_DIR", data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{err}");
    assert!(err.contains("QoS 0 only"), "{err}");
}
