//! `--broker` with a list of brokers: clients and servers fail over to the
//! next one. Two separate Mosquittos stand in for the nodes of a cluster
//! (the cluster tests try the same on rmqtt, where sessions also move).

mod common;

use std::process::{Child, Stdio};
use std::time::Duration;

use common::{mqttapp, mqttapp_std, unique_prefix, wait_until, Broker, Server};

/// A `serve` process with a broker list, killed when dropped.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn calc_via(broker: &Broker, prefix: &str, list: &str) -> std::process::Output {
    mqttapp(broker, prefix)
        .env("MQTTAPP_BROKER", list)
        .args(["ask", "--timeout", "5", "calc", "6*7"])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap()
}

#[test]
fn a_client_uses_the_second_broker_when_the_first_is_down() {
    let mut down = Broker::start();
    let up = Broker::start();
    let prefix = unique_prefix("list_client");
    let _server = Server::start(&up, &prefix);
    let down_url = down.url();
    down.kill();
    // Comma-separated, in the environment.
    let out = calc_via(&up, &prefix, &format!("{down_url},{}", up.url()));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "42",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Repeated flag; `status` takes the list too.
    let out = mqttapp(&up, &prefix)
        .args([
            "status",
            "--json",
            "--broker",
            &down_url,
            "--broker",
            &up.url(),
        ])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A single address still works as before.
    let out = calc_via(&up, &prefix, &up.url());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
}

#[test]
fn a_server_with_a_list_moves_to_the_second_broker_when_the_first_stops() {
    let mut first = Broker::start();
    let second = Broker::start();
    let prefix = unique_prefix("list_server");
    let list = format!("{},{}", first.url(), second.url());
    let data = tempfile::tempdir().unwrap();
    let _serving = Serving(
        mqttapp_std(&first, &prefix)
            .arg("serve")
            .env("MQTTAPP_BROKER", &list)
            .env("MQTTAPP_DATA_DIR", data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let answered = |via: &Broker, list: &str| {
        String::from_utf8_lossy(&calc_via(via, &prefix, list).stdout).trim() == "42"
    };
    wait_until(
        "the server answers on the first broker",
        Duration::from_secs(20),
        || answered(&first, &first.url()),
    );
    first.kill();
    // The client too is given the list; the server must now be on the
    // second broker.
    wait_until(
        "the server answers on the second broker",
        Duration::from_secs(40),
        || answered(&second, &list),
    );
    assert!(
        answered(&second, &second.url()),
        "served on the second broker alone"
    );
}
