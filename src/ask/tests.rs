//! The client side (one request, the pipeline) on the in-memory broker
//! twin, against a tiny responder that answers echo requests and can stay
//! silent or say `busy` first. Outcomes are asserted, never times; waits
//! are bounded only so that a bug fails instead of hanging.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{call, AskError, Outcome, Pipeline, Requester};
use crate::config::{Config, Settings};
use crate::mqtt::twin::{Acks, Broker};
use crate::mqtt::{Arrival, Client, Message, MessageMeta, SessionSpec, Subscription};
use crate::protocol::{
    decode_request, encode_reply, EchoRequest, Encoding, ErrorCode, OkValue, Op, Reply, Request,
    Status,
};

/// What the responder does with the n-th copy (0-based) of a request.
type Policy = fn(usize) -> Option<Reply>;

/// Answers echo requests on `p/v1/req/+` according to `policy`, counting
/// the copies of each correlation data it saw.
struct Responder {
    seen: Arc<Mutex<HashMap<Vec<u8>, usize>>>,
}

fn answer(policy: Policy, text: String) -> impl Fn(usize) -> Option<Reply> {
    move |n| {
        policy(n).map(|r| match r {
            Reply::Ok(OkValue::Text(_)) => Reply::Ok(OkValue::Text(text.clone())),
            other => other,
        })
    }
}

fn session(clean: bool) -> SessionSpec {
    SessionSpec {
        clean_start: clean,
        session_expiry: Duration::ZERO,
        will: None,
        connect_timeout: Duration::from_secs(1),
    }
}

impl Responder {
    fn start(broker: &Broker, policy: Policy, online: bool) -> Responder {
        if online {
            let status = Status {
                state: Status::ONLINE.into(),
                ops: Op::ALL.iter().map(|op| op.as_str().to_string()).collect(),
                version: "0".into(),
                since: 1,
                group: None,
                instance: Some("twin".into()),
                data_dir: None,
            };
            broker.publish(Message::new(
                "p/v1/status/s",
                status.encode(),
                MessageMeta::default(),
                true,
            ));
        }
        let client = broker.client("responder");
        let seen: Arc<Mutex<HashMap<Vec<u8>, usize>>> = Arc::default();
        let (me, counts) = (client.clone(), seen.clone());
        client.set_handler(Arc::new(move |arrival| {
            let Arrival::Message(msg) = arrival else {
                return;
            };
            let Ok(Request::Echo(echo)) = decode_request(Op::Echo, Encoding::Cbor, &msg.payload)
            else {
                return;
            };
            let correlation = msg.meta.correlation.clone().unwrap_or_default();
            let n = {
                let mut counts = counts.lock().unwrap();
                let n = counts.entry(correlation.clone()).or_insert(0);
                *n += 1;
                *n - 1
            };
            let Some(reply) = answer(policy, echo.text)(n) else {
                return;
            };
            let meta = MessageMeta {
                correlation: Some(correlation),
                content_type: Some(Encoding::Cbor.content_type().into()),
                ..MessageMeta::default()
            };
            let to = msg.meta.response_topic.clone().unwrap_or_default();
            me.publish(Message::new(
                &to,
                encode_reply(&reply, Encoding::Cbor),
                meta,
                false,
            ));
        }));
        client.connect(&session(true)).unwrap();
        client
            .subscribe(&[Subscription {
                filter: "p/v1/req/+".into(),
                qos: 1,
                retained_only_if_new: false,
            }])
            .unwrap();
        Responder { seen }
    }

    /// Copies of each request seen, largest first.
    fn copies(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self.seen.lock().unwrap().values().copied().collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v
    }
}

fn always(_: usize) -> Option<Reply> {
    Some(Reply::Ok(OkValue::Text(String::new())))
}

fn silent_first(n: usize) -> Option<Reply> {
    (n > 0).then(|| Reply::Ok(OkValue::Text(String::new())))
}

fn busy_first(n: usize) -> Option<Reply> {
    Some(if n == 0 {
        Reply::error(ErrorCode::Busy, "server busy")
    } else {
        Reply::Ok(OkValue::Text(String::new()))
    })
}

fn requester(broker: &Broker, timeout: &str) -> Requester {
    let config = Config::from_settings(Settings {
        prefix: Some("p".into()),
        timeout: Some(humantime::parse_duration(timeout).unwrap()),
        ..Settings::default()
    })
    .unwrap();
    let id = "mqttapp-ask-twin";
    Requester::connect_on(&config, Encoding::Cbor, Client::Twin(broker.client(id)), id).unwrap()
}

fn echo(text: &str) -> Request {
    Request::Echo(EchoRequest { text: text.into() })
}

/// Runs `requests` through a pipeline of `window`, re-sending after
/// `retry`; the outcomes by key, and the totals.
fn pipeline(
    requester: Requester,
    requests: usize,
    window: usize,
    retry: Duration,
) -> (Vec<Outcome<usize>>, super::Totals) {
    let mut p = Pipeline::new(requester, window, retry, Duration::from_secs(30));
    let mut out = Vec::new();
    let mut next = 0;
    while out.len() < requests {
        while next < requests && p.in_flight() < window {
            p.send(next, echo(&format!("r{next}")));
            next += 1;
        }
        p.poll(Duration::from_millis(50), &mut out).unwrap();
    }
    let (totals, _) = p.finish();
    (out, totals)
}

fn answered_texts(out: &[Outcome<usize>]) -> Vec<(usize, String)> {
    let mut v: Vec<(usize, String)> = out
        .iter()
        .map(|o| match o {
            Outcome::Answered(k, Some(Reply::Ok(OkValue::Text(t))), _) => (*k, t.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    v.sort();
    v
}

#[test]
fn one_request_gets_its_reply() {
    let broker = Broker::new();
    let _responder = Responder::start(&broker, always, true);
    let mut r = requester(&broker, "5s");
    let reply = call(&mut r, &echo("hi"), Duration::from_secs(5)).unwrap();
    assert_eq!(reply, Reply::Ok(OkValue::Text("hi".into())));
}

#[test]
fn without_an_online_status_the_request_fails_with_no_server() {
    let broker = Broker::new();
    let responder = Responder::start(&broker, always, false);
    let mut r = requester(&broker, "400ms");
    let err = call(&mut r, &echo("hi"), Duration::from_millis(400)).unwrap_err();
    assert!(
        matches!(&err, AskError::NoServer { op, .. } if op == "echo"),
        "{err}"
    );
    assert!(responder.copies().is_empty(), "nothing was sent");
}

#[test]
fn a_pipeline_answers_every_request_once_in_a_small_window() {
    let broker = Broker::new();
    let responder = Responder::start(&broker, always, true);
    let (out, totals) = pipeline(requester(&broker, "30s"), 60, 8, Duration::from_secs(5));
    let expected: Vec<(usize, String)> = (0..60).map(|i| (i, format!("r{i}"))).collect();
    assert_eq!(answered_texts(&out), expected);
    assert_eq!(totals.resent, 0);
    assert_eq!(responder.copies(), vec![1; 60]);
}

#[test]
fn an_unanswered_request_is_sent_again_with_the_same_correlation_data() {
    let broker = Broker::new();
    let responder = Responder::start(&broker, silent_first, true);
    let (out, totals) = pipeline(requester(&broker, "30s"), 5, 5, Duration::from_millis(20));
    assert_eq!(answered_texts(&out).len(), 5);
    assert!(totals.resent >= 5, "{totals:?}");
    // Every request reached the responder more than once under one
    // correlation data: the re-sends are copies, not new requests.
    assert_eq!(responder.copies().len(), 5);
    assert!(responder.copies().iter().all(|&n| n >= 2));
}

#[test]
fn a_busy_answer_is_retried_until_the_final_reply() {
    let broker = Broker::new();
    let responder = Responder::start(&broker, busy_first, true);
    let (out, totals) = pipeline(requester(&broker, "30s"), 4, 4, Duration::from_secs(5));
    assert_eq!(answered_texts(&out).len(), 4);
    assert_eq!(totals.busy, 4);
    assert!(responder.copies().iter().all(|&n| n == 2));
}

#[test]
fn a_publish_the_broker_refuses_fails_its_request_without_resending() {
    let broker = Broker::new();
    let _responder = Responder::start(&broker, |_| None, true);
    let r = requester(&broker, "30s");
    broker.set_acks(Acks::Held);
    let mut p = Pipeline::new(r, 4, Duration::from_secs(5), Duration::from_secs(30));
    for i in 0..3 {
        p.send(i, echo("x"));
    }
    broker.fail_acks("not authorized");
    let mut out = Vec::new();
    while out.len() < 3 {
        p.poll(Duration::from_millis(20), &mut out).unwrap();
    }
    assert!(
        out.iter().all(|o| matches!(o, Outcome::Refused(..))),
        "{out:?}"
    );
    assert_eq!(p.in_flight(), 0);
}

#[test]
fn a_dropped_connection_is_restored_and_the_request_answered() {
    let broker = Broker::new();
    let _responder = Responder::start(&broker, silent_first, true);
    let r = requester(&broker, "30s");
    let mut p = Pipeline::new(r, 4, Duration::from_millis(50), Duration::from_secs(30));
    p.send(0, echo("again"));
    broker.drop_connection("mqttapp-ask-twin");
    let mut out = Vec::new();
    while out.is_empty() {
        p.poll(Duration::from_millis(20), &mut out).unwrap();
    }
    assert_eq!(answered_texts(&out), vec![(0, "again".to_string())]);
    assert!(broker.connected("mqttapp-ask-twin"));
}
