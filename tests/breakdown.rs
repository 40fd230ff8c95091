//! Every reply names its server and where its time went (MQTT 5 user
//! properties `mqttapp-server-id`, `mqttapp-queued-us`, `mqttapp-work-us`),
//! returns a valid `traceparent` unchanged, and reflects nothing else a
//! client sent; `ask -H` sends user properties, `ask -v` shows the
//! breakdown.
//!
//! Real Mosquitto, real `mqttapp serve` and `ask`; loops are bounded in
//! count and time, and the assertions count outcomes, never durations.

mod common;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use common::server::server_id_for;
use common::{hold_edit_lock, mqttapp, unique_prefix, Broker, Server};
use mqttapp::protocol::{decode_reply, Encoding, Reply};
use paho_mqtt as paho;

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TP2: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
/// The names a reply carries, in order, without and with a traceparent.
const STAMP: [&str; 3] = ["mqttapp-server-id", "mqttapp-queued-us", "mqttapp-work-us"];

/// A raw paho client that sends requests with any user properties and
/// reads the replies' user properties.
struct Wire {
    client: paho::AsyncClient,
    rx: paho::SyncReceiver<Option<paho::Message>>,
    response_topic: String,
    prefix: String,
}

/// A reply as received: correlation data, `ok` or the error code, and its
/// user properties.
#[derive(Debug)]
struct Got {
    correlation: Vec<u8>,
    code: String,
    reply: Option<Reply>,
    user: Vec<(String, String)>,
}

impl Wire {
    fn connect(broker: &Broker, prefix: &str, id: &str) -> Wire {
        let (client, rx, response_topic) = common::raw::connect_subscribed(broker, prefix, id);
        Wire {
            client,
            rx,
            response_topic,
            prefix: prefix.to_string(),
        }
    }

    /// Publishes a JSON request to `op` with `user` properties.
    fn publish(
        &self,
        op: &str,
        json: &str,
        correlation: &[u8],
        user: &[(&str, &str)],
    ) -> paho::DeliveryToken {
        let mut props = paho::Properties::new();
        props
            .push_string(paho::PropertyCode::ResponseTopic, &self.response_topic)
            .unwrap();
        props
            .push_binary(paho::PropertyCode::CorrelationData, correlation.to_vec())
            .unwrap();
        props
            .push_string(paho::PropertyCode::ContentType, "application/json")
            .unwrap();
        for (k, v) in user {
            props
                .push_string_pair(paho::PropertyCode::UserProperty, k, v)
                .unwrap();
        }
        let msg = paho::MessageBuilder::new()
            .topic(format!("{}/v1/req/{op}", self.prefix))
            .payload(json.as_bytes())
            .qos(1)
            .properties(props)
            .finalize();
        self.client.publish(msg)
    }

    /// One request and its reply.
    fn ask(&self, op: &str, json: &str, correlation: &[u8], user: &[(&str, &str)]) -> Got {
        self.publish(op, json, correlation, user)
            .wait_for(Duration::from_secs(10))
            .expect("published");
        self.next(Duration::from_secs(10))
            .expect("a reply within 10 s")
    }

    fn next(&self, within: Duration) -> Option<Got> {
        let msg = self.rx.recv_timeout(within).ok()??;
        let props = msg.properties();
        let reply = decode_reply(Encoding::Json, msg.payload()).ok();
        let code = match &reply {
            Some(Reply::Ok(_)) => "ok".to_string(),
            Some(Reply::Err(e)) => e.code.clone(),
            None => "undecodable".to_string(),
        };
        Some(Got {
            correlation: props
                .get_binary(paho::PropertyCode::CorrelationData)
                .unwrap_or_default(),
            code,
            reply,
            user: props.user_iter().collect(),
        })
    }
}

/// The reply carries exactly the server's properties: its id, two whole
/// numbers of microseconds, and `traceparent` when one is expected.
fn assert_stamped(got: &Got, server_id: &str, traceparent: Option<&str>) {
    let names: Vec<&str> = got.user.iter().map(|(k, _)| k.as_str()).collect();
    let mut expected = STAMP.to_vec();
    expected.extend(traceparent.map(|_| "traceparent"));
    assert_eq!(names, expected, "{got:?}");
    assert_eq!(got.user[0].1, server_id, "{got:?}");
    for (_, micros) in &got.user[1..3] {
        micros.parse::<u64>().expect("microseconds as digits");
    }
    if let Some(tp) = traceparent {
        assert_eq!(got.user[3].1, tp, "returned unchanged");
    }
}

fn value_of<'a>(got: &'a Got, key: &str) -> &'a str {
    &got.user.iter().find(|(k, _)| k == key).expect(key).1
}

fn start(broker: &Broker, name: &str, args: &[&str]) -> (String, Server) {
    let prefix = unique_prefix(name);
    let dir = broker.dir().join(format!("data-{prefix}"));
    let server = Server::start_with(broker, &prefix, &dir, args);
    (prefix, server)
}

#[test]
fn ok_and_error_replies_name_the_server_and_return_only_a_valid_traceparent() {
    let broker = Broker::start();
    let (prefix, mut server) = start(&broker, "bd-stamp", &["-v"]);
    let id = server_id_for(&prefix);
    let wire = Wire::connect(&broker, &prefix, "bd-stamp");

    let ok = wire.ask("calc", r#"{"expr":"1+1"}"#, b"c1", &[("traceparent", TP)]);
    assert_eq!(ok.code, "ok");
    assert_stamped(&ok, &id, Some(TP));
    server.wait_for_log(&format!("traceparent=\"{TP}\""), Duration::from_secs(10));

    let err = wire.ask("calc", r#"{"expr":"1/0"}"#, b"c2", &[]);
    assert_eq!(err.code, "math");
    assert_stamped(&err, &id, None);
    let unknown = wire.ask("nope", "{}", b"c3", &[]);
    assert_eq!(unknown.code, "unknown_op");
    assert_stamped(&unknown, &id, None);

    // Invalid traceparents (uppercase hex, all-zero trace id) are ignored:
    // not returned, not logged, never an error.
    let upper = TP.to_uppercase();
    let zero = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
    for (n, bad) in [upper.as_str(), zero].into_iter().enumerate() {
        let got = wire.ask(
            "echo",
            r#"{"text":"x"}"#,
            format!("bad{n}").as_bytes(),
            &[("traceparent", bad)],
        );
        assert_eq!(got.code, "ok");
        assert_stamped(&got, &id, None);
        assert!(
            !server.log().contains(bad),
            "an invalid traceparent is not logged"
        );
    }
}

#[test]
fn a_clients_own_and_forged_properties_are_never_reflected() {
    let broker = Broker::start();
    let (prefix, _server) = start(&broker, "bd-forged", &[]);
    let id = server_id_for(&prefix);
    let wire = Wire::connect(&broker, &prefix, "bd-forged");
    let got = wire.ask(
        "echo",
        r#"{"text":"hi"}"#,
        b"f1",
        &[
            ("mqttapp-server-id", "forged"),
            ("mqttapp-work-us", "999999999"),
            ("x-tenant", "acme"),
            ("traceparent", TP),
        ],
    );
    assert_eq!(got.code, "ok");
    assert_stamped(&got, &id, Some(TP));
    assert_ne!(value_of(&got, "mqttapp-work-us"), "999999999");
}

#[test]
fn busy_refusals_and_replayed_edits_carry_the_breakdown_too() {
    let broker = Broker::start();
    // The smallest budget: 512 KiB for the edit lane.
    let (prefix, server) = start(&broker, "bd-busy", &["--max-queue-bytes", "1MiB"]);
    let id = server_id_for(&prefix);
    let wire = Wire::connect(&broker, &prefix, "bd-busy");

    // A replayed edit is answered from the reply memory, stamped as well.
    let edit = r#"{"action":"append","text":"once","file":"replay.txt"}"#;
    let first = wire.ask("edit", edit, b"r1", &[("traceparent", TP)]);
    let again = wire.ask("edit", edit, b"r1", &[("traceparent", TP2)]);
    assert_eq!(first.code, "ok");
    assert_eq!(
        first.reply, again.reply,
        "the replay gets the original reply"
    );
    assert_stamped(&first, &id, Some(TP));
    assert_stamped(&again, &id, Some(TP2));

    // The edit lane waits on the file's lock; 30 KB of properties per
    // request fill its budget and the rest is refused `busy` at once.
    let lock = hold_edit_lock(server.data_dir(), "notes.txt");
    let pad = "p".repeat(30_000);
    let count = 40;
    for i in 0..count {
        let json = format!(r#"{{"action":"append","text":"line {i}"}}"#);
        wire.publish(
            "edit",
            &json,
            format!("b{i}").as_bytes(),
            &[("x-pad", &pad), ("traceparent", TP)],
        )
        .wait_for(Duration::from_secs(10))
        .expect("published");
    }
    let mut busy = 0;
    let mut answered = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered < count && Instant::now() < deadline {
        let Some(got) = wire.next(Duration::from_secs(1)) else {
            if busy > 0 {
                // Every refusal came: let the queued edits through.
                let _ = lock.unlock();
            }
            continue;
        };
        answered += 1;
        assert_stamped(&got, &id, Some(TP));
        if got.code == "busy" {
            busy += 1;
            assert_eq!(
                value_of(&got, "mqttapp-work-us"),
                "0",
                "a refusal ran no work"
            );
        } else {
            assert_eq!(got.code, "ok", "{got:?}");
        }
    }
    drop(lock);
    assert_eq!(answered, count, "every request answered ({busy} busy)");
    assert!(busy > 0, "the budget refused some requests busy");
}

/// The `ask -v` line: `server ID: network and broker X ms, queued X ms,
/// work X ms, re-sent N times`, as (server id, figures, re-sends).
fn parse_line(line: &str) -> Option<(String, Vec<f64>, u32)> {
    let rest = line.strip_prefix("server ")?;
    let (id, rest) = rest.split_once(": network and broker ")?;
    let mut figures = Vec::new();
    let mut rest = rest;
    for label in [", queued ", ", work ", ", re-sent "] {
        let (value, after) = rest.split_once(label)?;
        figures.push(value.strip_suffix(" ms")?.parse().ok()?);
        rest = after;
    }
    let resent = rest.strip_suffix(" times").or(rest.strip_suffix(" time"))?;
    Some((id.to_string(), figures, resent.parse().ok()?))
}

#[test]
fn ask_v_prints_the_breakdown_and_ask_h_sends_properties_to_the_server() {
    let broker = Broker::start();
    let (prefix, mut server) = start(&broker, "bd-ask", &["-v"]);
    let id = server_id_for(&prefix);

    let out = mqttapp(&broker, &prefix)
        .args([
            "ask",
            "-v",
            "calc",
            "1+1",
            "-H",
            &format!("traceparent={TP}"),
        ])
        .args(["-H", "x-team=blue"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<_> = stderr.lines().filter_map(parse_line).collect();
    assert_eq!(lines.len(), 1, "one breakdown line: {stderr}");
    let (server_id, figures, resent) = &lines[0];
    assert_eq!(server_id, &id);
    assert!(figures.iter().all(|f| *f >= 0.0), "{stderr}");
    assert_eq!(*resent, 0);
    server.wait_for_log(&format!("traceparent=\"{TP}\""), Duration::from_secs(10));

    // -v --json: the figures join the reply's object.
    let out = mqttapp(&broker, &prefix)
        .args(["ask", "-v", "--json", "calc", "7/2"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(json["ok"], 3.5);
    let b = &json["breakdown"];
    assert_eq!(b["server_id"], id.as_str(), "{json}");
    for field in ["round_trip_us", "network_us", "queued_us", "work_us"] {
        assert!(b[field].is_u64(), "{field}: {json}");
    }
    assert_eq!(b["resends"], 0);

    // Without -v: exactly what ask printed before.
    mqttapp(&broker, &prefix)
        .args(["ask", "--json", "calc", "7/2"])
        .assert()
        .success()
        .stdout("{\"ok\":3.5}\n")
        .stderr("");

    // A protocol name is a usage error; so is a property without `=`.
    for bad in ["mqttapp-server-id=me", "novalue"] {
        mqttapp(&broker, &prefix)
            .args(["ask", "-H", bad, "calc", "1+1"])
            .assert()
            .code(2)
            .stderr(predicates::str::contains("-H"));
    }

    // A `-H` prefix on a batch line reaches the server too.
    mqttapp(&broker, &prefix)
        .args(["ask", "--batch"])
        .write_stdin(format!("-H traceparent={TP2} echo hi\ncalc 2+2\n"))
        .assert()
        .success()
        .stdout("hi\n4\n");
    server.wait_for_log(&format!("traceparent=\"{TP2}\""), Duration::from_secs(10));
}

#[test]
fn a_flood_of_requests_with_many_properties_is_answered_and_reflects_none() {
    let broker = Broker::start();
    let (prefix, _server) = start(&broker, "bd-flood", &[]);
    let id = server_id_for(&prefix);
    let wire = Wire::connect(&broker, &prefix, "bd-flood");
    let names: Vec<String> = (0..50).map(|i| format!("x-prop-{i}")).collect();
    let big = "v".repeat(10_000);
    let count = 2_000;
    let mut window = VecDeque::new();
    let mut answered = 0;
    let mut by_code = std::collections::BTreeMap::<String, usize>::new();
    let take = |got: Got, by_code: &mut std::collections::BTreeMap<String, usize>| {
        assert_stamped(&got, &id, None);
        *by_code.entry(got.code).or_default() += 1;
    };
    for i in 0..count {
        let mut user: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "value")).collect();
        // Every tenth request: a 10 KB value and forged protocol names.
        if i % 10 == 0 {
            user.push(("x-big", &big));
            user.push(("mqttapp-server-id", "forged"));
            user.push(("traceparent", "not-a-traceparent"));
        }
        let c = format!("f{i}");
        window.push_back(wire.publish("calc", r#"{"expr":"6*7"}"#, c.as_bytes(), &user));
        if window.len() >= 20 {
            window
                .pop_front()
                .unwrap()
                .wait_for(Duration::from_secs(30))
                .expect("published");
        }
        while let Some(got) = wire.next(Duration::ZERO) {
            answered += 1;
            take(got, &mut by_code);
        }
    }
    for token in window {
        token.wait_for(Duration::from_secs(30)).expect("published");
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while answered < count && Instant::now() < deadline {
        if let Some(got) = wire.next(Duration::from_secs(1)) {
            answered += 1;
            take(got, &mut by_code);
        }
    }
    assert_eq!(answered, count, "every request answered: {by_code:?}");
    // The server is alive and answers the next request.
    let after = wire.ask("calc", r#"{"expr":"1+1"}"#, b"after", &[]);
    assert_eq!(after.code, "ok");
    assert_eq!(after.correlation, b"after");
    assert_stamped(&after, &id, None);
}
