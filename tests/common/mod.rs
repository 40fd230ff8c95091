//! Test helpers: a real Mosquitto per test on a free loopback port, the
//! real `mqttapp` binary, and a raw paho client for wire-level requests.
//!
//! Nothing here mocks the broker. A missing `mosquitto` fails loudly.

#![allow(dead_code, unused_imports)] // each test binary uses a different subset

pub mod auth;
pub mod broker;
pub mod cluster;
pub mod load;
pub mod pki;
pub mod raw;
pub mod resend;
pub mod server;
pub mod session;
pub mod workload;

pub use broker::Broker;
pub use server::Server;

use std::sync::atomic::{AtomicU32, Ordering};

/// A topic prefix no other test uses.
pub fn unique_prefix(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        name
    )
}

/// Environment variables a developer's shell might set that would leak
/// into the binary under test.
pub const CLEARED_ENV: &[&str] = &[
    "MQTTAPP_BROKER",
    "MQTTAPP_USERNAME",
    "MQTTAPP_PASSWORD",
    "MQTTAPP_PREFIX",
    "MQTTAPP_DATA_DIR",
    "MQTTAPP_FILE",
    "MQTTAPP_TIMEOUT",
    "MQTTAPP_CONFIG",
    "MQTTAPP_SERVER_ID",
    "MQTTAPP_GROUP",
    "MQTTAPP_SESSION_EXPIRY",
    "MQTTAPP_REPLY_TOPICS",
    "MQTTAPP_MAX_QUEUE_BYTES",
    "MQTTAPP_STATS_INTERVAL",
    "MQTTAPP_METRICS",
    "MQTTAPP_CA_FILE",
    "MQTTAPP_CERT_FILE",
    "MQTTAPP_KEY_FILE",
    "BROKER",
    "PORT",
    "USERNAME",
    "PASSWORD",
    "RUST_LOG",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// The `mqttapp` binary under test, set up for `broker` and `prefix`, run
/// in an empty directory so no config file is picked up.
pub fn mqttapp(broker: &Broker, prefix: &str) -> assert_cmd::Command {
    assert_cmd::Command::from_std(mqttapp_std(broker, prefix))
}

/// The same as [`mqttapp`], as a `std::process::Command` (to spawn it and
/// act while it runs).
pub fn mqttapp_std(broker: &Broker, prefix: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mqttapp"));
    for var in CLEARED_ENV {
        cmd.env_remove(var);
    }
    cmd.env("MQTTAPP_BROKER", broker.url())
        .env("MQTTAPP_PREFIX", prefix)
        .env("MQTTAPP_TIMEOUT", "10")
        .env("NO_COLOR", "1")
        .current_dir(broker.dir());
    cmd
}

/// Waits (bounded) for a spawned child to exit; returns its output.
pub fn wait_output(
    child: std::process::Child,
    within: std::time::Duration,
) -> std::process::Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(within) {
        Ok(out) => out.expect("child output"),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .arg("-9")
                .arg(pid.to_string())
                .status();
            panic!("process {pid} did not exit within {within:?}");
        }
    }
}

/// Takes the edit store's lock on `file` in `data_dir`, as a server does
/// while it changes the file: a server that gets an edit for it blocks
/// until the returned handle is dropped, and its other edits wait behind
/// that edit (calc and echo have their own lane and do not). Lets tests
/// keep requests queued inside a server.
pub fn hold_edit_lock(data_dir: &std::path::Path, file: &str) -> std::fs::File {
    let path = data_dir.join(".mqttapp").join(format!("{file}.lock"));
    let lock = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .expect("open the edit lock file");
    lock.lock().expect("take the edit lock");
    lock
}

/// Waits (bounded) until `check` holds.
pub fn wait_until(what: &str, within: std::time::Duration, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A broker, a unique prefix, a server on it, and a raw paho client
/// subscribed to its own response topic: the setting of wire-level tests.
pub fn served_with_raw_client(name: &str) -> (Broker, String, Server, raw::RawClient) {
    let broker = Broker::start();
    let prefix = unique_prefix(name);
    let server = Server::start(&broker, &prefix);
    let raw = raw::RawClient::connect(&broker, &prefix, &format!("raw-{name}"));
    (broker, prefix, server, raw)
}
