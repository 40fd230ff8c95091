//! A server's status never says "offline" while it serves: a late will of
//! an earlier connection of the same process (seen on an rmqtt cluster
//! during a node stall: the old connection's will arrived after the
//! reconnect and replaced the fresh "online") is corrected at once.

mod common;

use std::time::Duration;

use common::raw::connect_subscribed;
use common::server::server_id_for;
use common::{mqttapp, unique_prefix, wait_until, Broker, Server};
use mqttapp::protocol::Status;
use paho_mqtt as paho;

/// The retained status on the server's topic, as a new subscriber sees it.
fn retained_status(broker: &Broker, prefix: &str, reader: &str) -> Option<Status> {
    let (client, rx, _) = connect_subscribed(broker, prefix, reader);
    client
        .subscribe(format!("{prefix}/v1/status/{}", server_id_for(prefix)), 1)
        .wait_for(Duration::from_secs(10))
        .expect("subscribe to the status topic");
    let msg = rx.recv_timeout(Duration::from_secs(5)).ok().flatten();
    let _ = client.disconnect(None).wait_for(Duration::from_secs(5));
    msg.and_then(|m| Status::decode(m.payload()).ok())
}

#[test]
fn the_servers_own_late_will_is_corrected_at_once() {
    let broker = Broker::start();
    let prefix = unique_prefix("stale_will");
    let server = Server::start(&broker, &prefix);
    // Its own "online" came back once (the server watches its topic from then).
    wait_until("status online", Duration::from_secs(10), || {
        retained_status(&broker, &prefix, "reader-0").is_some_and(|s| s.state == Status::ONLINE)
    });
    let online = retained_status(&broker, &prefix, "reader-1").expect("status");
    // The will the server registered at connect: its own status, same
    // instance, saying "offline", retained.
    let will = Status {
        state: Status::OFFLINE.into(),
        ..online.clone()
    };
    let (raw, _, _) = connect_subscribed(&broker, &prefix, "late-will");
    for round in 0..3 {
        raw.publish(
            paho::MessageBuilder::new()
                .topic(format!("{prefix}/v1/status/{}", server_id_for(&prefix)))
                .payload(will.encode())
                .qos(1)
                .retained(true)
                .finalize(),
        )
        .wait_for(Duration::from_secs(10))
        .expect("the late will is published");
        wait_until(
            "the status says online again",
            Duration::from_secs(10),
            || {
                retained_status(&broker, &prefix, &format!("reader-r{round}"))
                    .is_some_and(|s| s.state == Status::ONLINE && s.instance == online.instance)
            },
        );
        let out = mqttapp(&broker, &prefix)
            .args(["status", "--json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "status: {}", server.log());
        assert!(String::from_utf8_lossy(&out.stdout).contains("\"online\""));
        let out = mqttapp(&broker, &prefix)
            .args(["ask", "calc", "2+3"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "5\n",
            "{}",
            server.log()
        );
        // The server's re-assertion is rate-limited to one a second.
        std::thread::sleep(Duration::from_millis(1100));
    }
}

/// Where the broker keeps no retained messages (Mosquitto with
/// `retain_available false`, or cluster nodes that do not share them),
/// a server still runs (its status and will are then not retained) and
/// `ask` finds it by the live status ping; with no server, `ask` says
/// "no server online" (exit 6) instead of timing out.
#[test]
fn without_retained_messages_ask_finds_servers_by_a_live_ping() {
    let broker = Broker::start_with(
        "listener {port} 127.0.0.1\nallow_anonymous true\nretain_available false\n",
    );
    let prefix = unique_prefix("no_retain");
    let none = mqttapp(&broker, &prefix)
        .args(["ask", "--timeout", "8", "calc", "2+3"])
        .output()
        .unwrap();
    assert_eq!(
        none.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&none.stderr)
    );
    assert!(String::from_utf8_lossy(&none.stderr).contains("no server online"));
    let server = Server::start(&broker, &prefix);
    for _ in 0..3 {
        let out = mqttapp(&broker, &prefix)
            .args(["ask", "calc", "2+3"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "5\n",
            "{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            server.log()
        );
    }
    // `status` asks for live statuses too.
    let out = mqttapp(&broker, &prefix)
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"online\""));
}
