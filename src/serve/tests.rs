//! The whole server (lanes, reply window, control loop, link) on the
//! in-memory broker twin: no broker process, each test well under a
//! second. They assert outcomes (replies, counts, statuses), never times;
//! a wait for an outcome is bounded by [`PATIENCE`] only so that a bug
//! fails the test instead of hanging it.

use std::collections::HashSet;
use std::path::PathBuf;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver};

use super::{run_on, Control, ServeError, Shutdown};
use crate::config::{Config, Settings};
use crate::mqtt::twin::{Acks, Broker};
use crate::mqtt::{Arrival, Client, Message, MessageMeta, SessionSpec, Subscription};
use crate::protocol::{
    decode_reply, encode_request, CalcRequest, EditAction, EditRequest, Encoding, OkValue, Op,
    Reply, Request, Status, Topics,
};

/// Upper bound of any wait for an outcome (never reached when it works;
/// generous because the whole suite may share two busy cores).
const PATIENCE: Duration = Duration::from_secs(60);

/// A running server: how to stop it, and its thread.
type Running = (Shutdown, JoinHandle<Result<(), ServeError>>);

/// A server running on a twin broker, and a client to talk to it.
struct Rig {
    broker: Broker,
    servers: Vec<Running>,
    asker: Client,
    inbox: Receiver<Message>,
    dir: PathBuf,
    next: u64,
}

fn config(dir: &std::path::Path, id: &str, group: Option<&str>) -> Config {
    Config::from_settings(Settings {
        server_id: Some(id.into()),
        prefix: Some("p".into()),
        data_dir: Some(dir.to_path_buf()),
        group: group.map(String::from),
        ..Settings::default()
    })
    .unwrap()
}

impl Rig {
    fn new() -> Rig {
        let dir =
            std::env::temp_dir().join(format!("mqttapp-twin-{:016x}", crate::ids::random_u64()));
        std::fs::create_dir_all(&dir).unwrap();
        let broker = Broker::new();
        let asker = Client::Twin(broker.client("asker"));
        let (tx, inbox) = unbounded();
        asker.set_handler(move |a| {
            if let Arrival::Message(m) = a {
                let _ = tx.send(m);
            }
        });
        let session = SessionSpec {
            clean_start: true,
            session_expiry: Duration::ZERO,
            will: None,
            connect_timeout: Duration::from_secs(1),
        };
        let Client::Twin(c) = &asker else {
            unreachable!()
        };
        c.connect(&session).unwrap();
        let subs = ["p/v1/resp/asker", "p/v1/status/+", "p/v1/dlq"].map(|f| Subscription {
            filter: f.into(),
            qos: 1,
            retained_only_if_new: false,
        });
        c.subscribe(&subs).unwrap();
        Rig {
            broker,
            servers: Vec::new(),
            asker,
            inbox,
            dir,
            next: 0,
        }
    }

    /// Starts server `id` and waits for its "online" status.
    fn serve(&mut self, id: &str, group: Option<&str>) {
        let config = config(&self.dir.join(id), id, group);
        let control = Control::new();
        let shutdown = control.shutdown_handle();
        let client = Client::Twin(self.broker.client(&format!("mqttapp-serve-{id}")));
        let handle = thread::spawn(move || run_on(&config, &control, client));
        self.servers.push((shutdown, handle));
        let topic = format!("p/v1/status/{id}");
        self.wait_for(|m| {
            m.topic == topic && Status::decode(&m.payload).is_ok_and(|s| s.is_online())
        });
    }

    /// Stops server `index` gracefully; its result.
    fn stop(&mut self, index: usize) -> Result<(), ServeError> {
        let (shutdown, handle) = self.servers.remove(index);
        shutdown.request();
        handle.join().unwrap()
    }

    /// Publishes a request; its correlation data.
    fn send(&mut self, request: &Request) -> Vec<u8> {
        self.next += 1;
        let correlation = self.next.to_be_bytes().to_vec();
        let meta = MessageMeta {
            response_topic: Some("p/v1/resp/asker".into()),
            correlation: Some(correlation.clone()),
            content_type: Some(Encoding::Cbor.content_type().into()),
            expiry_secs: None,
            user: Vec::new(),
        };
        let topic = Topics::new("p").request_named(request.op_name());
        let msg = Message::new(&topic, encode_request(request, Encoding::Cbor), meta, false);
        self.asker.try_publish(msg).unwrap();
        correlation
    }

    /// The next message that satisfies `want` (others are dropped).
    fn wait_for(&self, want: impl Fn(&Message) -> bool) -> Message {
        let until = Instant::now() + PATIENCE;
        loop {
            let m = self
                .inbox
                .recv_deadline(until)
                .expect("the awaited message never came");
            if want(&m) {
                return m;
            }
        }
    }

    /// The next `n` replies, by correlation data.
    fn replies(&self, n: usize) -> Vec<(Vec<u8>, Reply)> {
        (0..n)
            .map(|_| {
                let m = self.wait_for(|m| m.topic == "p/v1/resp/asker");
                let reply = decode_reply(Encoding::Cbor, &m.payload).unwrap();
                (m.meta.correlation.unwrap(), reply)
            })
            .collect()
    }

    /// Dead-letter announcements seen so far (after waiting for `n`).
    fn dead_letters(&self, n: usize) -> Vec<Message> {
        (0..n)
            .map(|_| self.wait_for(|m| m.topic == "p/v1/dlq"))
            .collect()
    }

    /// The retained status of `id` as a late subscriber would see it.
    fn retained_status(&self, id: &str) -> Status {
        let late = self.broker.client("late");
        let (tx, rx) = unbounded();
        late.set_handler(std::sync::Arc::new(move |a| {
            if let Arrival::Message(m) = a {
                let _ = tx.send(m);
            }
        }));
        late.connect(&SessionSpec {
            clean_start: true,
            session_expiry: Duration::ZERO,
            will: None,
            connect_timeout: Duration::from_secs(1),
        })
        .unwrap();
        late.subscribe(&[Subscription {
            filter: format!("p/v1/status/{id}"),
            qos: 1,
            retained_only_if_new: false,
        }])
        .unwrap();
        let m = rx.recv_timeout(PATIENCE).unwrap();
        late.disconnect();
        Status::decode(&m.payload).unwrap()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        for (shutdown, _) in &self.servers {
            shutdown.request();
        }
        for (_, handle) in self.servers.drain(..) {
            let _ = handle.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn calc(expr: &str) -> Request {
    Request::Calc(CalcRequest { expr: expr.into() })
}

fn append(text: &str) -> Request {
    Request::Edit(EditRequest {
        action: EditAction::Append,
        text: Some(text.into()),
        ..EditRequest::default()
    })
}

fn is_ok(reply: &Reply) -> bool {
    matches!(reply, Reply::Ok(_))
}

#[test]
fn calc_requests_are_answered_once_each_with_their_correlation_data() {
    let mut rig = Rig::new();
    rig.serve("s", None);
    let sent: HashSet<Vec<u8>> = (0..20)
        .map(|i| rig.send(&calc(&format!("{i}+1"))))
        .collect();
    let replies = rig.replies(20);
    let got: HashSet<Vec<u8>> = replies.iter().map(|(c, _)| c.clone()).collect();
    assert_eq!(got, sent);
    for (c, reply) in &replies {
        let i = u64::from_be_bytes(c.as_slice().try_into().unwrap()) as i64 - 1;
        assert_eq!(reply, &Reply::Ok(OkValue::Int(i + 1)));
    }
}

#[test]
fn a_burst_of_edits_is_applied_and_answered_once_each() {
    let mut rig = Rig::new();
    rig.serve("s", None);
    for i in 0..40 {
        rig.send(&append(&format!("line {i}")));
    }
    let replies = rig.replies(40);
    assert_eq!(replies.iter().filter(|(_, r)| is_ok(r)).count(), 40);
    let revisions: HashSet<u64> = replies
        .iter()
        .filter_map(|(_, r)| match r {
            Reply::Ok(OkValue::Edit(e)) => Some(e.rev),
            _ => None,
        })
        .collect();
    assert_eq!(
        revisions.len(),
        40,
        "each edit applied once: one revision each"
    );
}

#[test]
fn a_graceful_stop_answers_what_arrived_and_leaves_offline_retained() {
    let mut rig = Rig::new();
    rig.serve("s", None);
    for i in 0..30 {
        rig.send(&calc(&format!("{i}*2")));
    }
    rig.stop(0).unwrap();
    assert_eq!(rig.replies(30).len(), 30);
    assert_eq!(rig.retained_status("s").state, Status::OFFLINE);
}

#[test]
fn requests_sent_while_the_connection_is_down_are_answered_after_the_reconnect() {
    let mut rig = Rig::new();
    rig.serve("s", None);
    rig.broker.drop_connection("mqttapp-serve-s");
    // The will says offline at once.
    rig.wait_for(|m| {
        m.topic == "p/v1/status/s"
            && Status::decode(&m.payload).is_ok_and(|s| s.state == Status::OFFLINE)
    });
    let sent: HashSet<Vec<u8>> = (0..10).map(|i| rig.send(&calc(&format!("{i}")))).collect();
    let got: HashSet<Vec<u8>> = rig.replies(10).into_iter().map(|(c, _)| c).collect();
    assert_eq!(got, sent);
    assert_eq!(rig.retained_status("s").state, Status::ONLINE);
}

#[test]
fn reconnecting_goes_on_while_the_broker_refuses_and_succeeds_when_it_accepts() {
    let mut rig = Rig::new();
    rig.serve("s", None);
    rig.broker.refuse_connects(true);
    rig.broker.drop_connection("mqttapp-serve-s");
    let until = Instant::now() + PATIENCE;
    while rig.broker.refused_connects() < 2 {
        assert!(Instant::now() < until, "no reconnect attempt");
        thread::yield_now();
    }
    rig.broker.refuse_connects(false);
    let c = rig.send(&calc("6*7"));
    assert_eq!(rig.replies(1), vec![(c, Reply::Ok(OkValue::Int(42)))]);
}

#[test]
fn replies_beyond_the_unacknowledged_window_wait_for_acknowledgements() {
    let mut rig = Rig::new();
    rig.serve("s", None);
    rig.broker.set_acks(Acks::Held);
    let n = super::replies::MAX_UNACKED + 40;
    for i in 0..n {
        rig.send(&calc(&format!("{i}")));
    }
    // One over the window is published, then the lane waits.
    let first = rig.replies(super::replies::MAX_UNACKED + 1);
    assert_eq!(first.len(), super::replies::MAX_UNACKED + 1);
    assert!(rig.inbox.is_empty() || rig.broker.held_acks() > super::replies::MAX_UNACKED);
    rig.broker.set_acks(Acks::Immediate);
    rig.broker.release_acks();
    let rest = rig.replies(n - first.len());
    assert_eq!(first.len() + rest.len(), n);
}

#[test]
fn a_reply_the_broker_refuses_becomes_a_dead_letter() {
    let mut rig = Rig::new();
    rig.serve("s", None);
    rig.broker.set_acks(Acks::Held);
    for i in 0..3 {
        rig.send(&calc(&format!("{i}")));
    }
    rig.replies(3);
    rig.broker.set_acks(Acks::Immediate);
    // The replies' acknowledgements are checked when the lane is idle.
    rig.broker.fail_acks("quota exceeded");
    let letters = rig.dead_letters(3);
    for l in letters {
        let letter: serde_json::Value = ciborium_value(&l.payload);
        assert_eq!(letter["reason"], "reply_failed", "{letter}");
    }
}

/// A CBOR announcement as JSON, for field checks.
fn ciborium_value(payload: &[u8]) -> serde_json::Value {
    crate::protocol::from_cbor::<serde_json::Value>(payload).unwrap()
}

#[test]
fn a_request_without_response_topic_is_kept_as_a_dead_letter() {
    let mut rig = Rig::new();
    rig.serve("s", None);
    let msg = Message::new(
        &Topics::new("p").request(Op::Calc),
        encode_request(&calc("1+1"), Encoding::Cbor),
        MessageMeta::default(),
        false,
    );
    rig.broker.publish(msg);
    let letter = ciborium_value(&rig.dead_letters(1)[0].payload);
    assert_eq!(letter["reason"], "no_response_topic", "{letter}");
}

#[test]
fn a_forged_status_is_answered_with_our_own_and_never_stops_the_server() {
    let mut rig = Rig::new();
    rig.serve("s", None);
    let mut forged = rig.retained_status("s");
    forged.state = Status::OFFLINE.into();
    rig.broker.publish(Message::new(
        "p/v1/status/s",
        forged.encode(),
        MessageMeta::default(),
        true,
    ));
    rig.wait_for(|m| {
        m.topic == "p/v1/status/s" && Status::decode(&m.payload).is_ok_and(|s| s.is_online())
    });
    assert_eq!(rig.retained_status("s").state, Status::ONLINE);
    let c = rig.send(&calc("2+2"));
    assert_eq!(rig.replies(1), vec![(c, Reply::Ok(OkValue::Int(4)))]);
}

#[test]
fn a_client_taking_over_the_server_id_does_not_stop_it_and_it_still_stops_gracefully() {
    let mut rig = Rig::new();
    rig.serve("s", None);
    let intruder = rig.broker.client("mqttapp-serve-s");
    intruder
        .connect(&SessionSpec {
            clean_start: false,
            session_expiry: Duration::from_secs(60),
            will: None,
            connect_timeout: Duration::from_secs(1),
        })
        .unwrap();
    assert!(rig.broker.connected("mqttapp-serve-s"));
    assert_eq!(rig.stop(0).ok(), Some(()));
}

#[test]
fn requests_sent_while_the_server_is_stopped_are_answered_when_it_is_back() {
    let mut rig = Rig::new();
    rig.serve("s", None);
    rig.stop(0).unwrap();
    let sent: HashSet<Vec<u8>> = (0..5).map(|i| rig.send(&calc(&format!("{i}")))).collect();
    rig.serve("s", None);
    let got: HashSet<Vec<u8>> = rig.replies(5).into_iter().map(|(c, _)| c).collect();
    assert_eq!(got, sent);
}

#[test]
fn a_group_answers_each_request_exactly_once() {
    let mut rig = Rig::new();
    rig.serve("a", Some("g"));
    rig.serve("b", Some("g"));
    let sent: HashSet<Vec<u8>> = (0..40).map(|i| rig.send(&calc(&format!("{i}")))).collect();
    let got: Vec<Vec<u8>> = rig.replies(40).into_iter().map(|(c, _)| c).collect();
    assert_eq!(got.iter().cloned().collect::<HashSet<_>>(), sent);
    assert_eq!(got.len(), 40);
    assert!(rig
        .inbox
        .try_recv()
        .map_or(true, |m| m.topic != "p/v1/resp/asker"));
}

#[test]
fn a_group_member_that_stops_hands_new_requests_to_the_others() {
    let mut rig = Rig::new();
    rig.serve("a", Some("g"));
    rig.serve("b", Some("g"));
    rig.stop(0).unwrap();
    let sent: HashSet<Vec<u8>> = (0..20).map(|i| rig.send(&calc(&format!("{i}")))).collect();
    let got: HashSet<Vec<u8>> = rig.replies(20).into_iter().map(|(c, _)| c).collect();
    assert_eq!(got, sent);
}
