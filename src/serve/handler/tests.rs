//! The handler without a broker: the panic guard, reply targets, limits.

use std::time::{Duration, Instant};

use super::*;
use crate::protocol::{decode_reply, OkValue};

const PREFIX: &str = "p";

fn incoming(op: &str, payload: &[u8], response_topic: Option<&str>) -> Incoming {
    Incoming {
        topic: format!("{PREFIX}/v1/req/{op}"),
        meta: MessageMeta {
            response_topic: response_topic.map(String::from),
            correlation: Some(b"c".to_vec()),
            content_type: Some("text/plain".into()),
            expiry_secs: None,
            user: Vec::new(),
        },
        payload: payload.to_vec(),
        arrived: Instant::now(),
    }
}

fn run(apply: &Apply<'_>, msg: &Incoming) -> (Option<Reply>, Option<Reason>) {
    let outcome = handle_with(apply, &Topics::new(PREFIX), 1024, msg);
    let reply = outcome
        .reply
        .map(|r| decode_reply(Encoding::Text, &r.payload).expect("text reply"));
    (reply, outcome.dead_letter.map(|(reason, _)| reason))
}

fn calc_or_panic(request: &Request, _key: Option<crate::operations::Replay>) -> Reply {
    match request {
        Request::Calc(c) if c.expr == "boom" => panic!("simulated bug for {}", c.expr),
        Request::Calc(c) if c.expr == "boom2" => std::panic::panic_any(42_u32),
        _ => Reply::Ok(OkValue::Int(14)),
    }
}

#[test]
fn a_panicking_operation_is_answered_internal_and_dead_lettered() {
    let rt = Some("p/v1/resp/c");
    let (reply, dead) = run(&calc_or_panic, &incoming("calc", b"boom", rt));
    let Some(Reply::Err(e)) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(e.code, "internal");
    assert!(
        e.message.contains("simulated bug for boom"),
        "{}",
        e.message
    );
    assert_eq!(dead, Some(Reason::HandlerFailure));
    let (reply, _) = run(&calc_or_panic, &incoming("calc", b"boom2", rt));
    assert!(matches!(reply, Some(Reply::Err(e)) if e.message.contains("unknown panic")));
    // The same handler goes on answering the next request.
    let (reply, dead) = run(&calc_or_panic, &incoming("calc", b"2+3*4", rt));
    assert_eq!(reply, Some(Reply::Ok(OkValue::Text("14".into()))));
    assert_eq!(dead, None);
}

#[test]
fn replies_never_go_to_protocol_or_dollar_topics() {
    let bad = [
        "p/v1/req/calc",
        "p/v1/req/edit",
        "p/v1/status/s1",
        "p/v1/dlq",
        "$SYS/broker/x",
        "p/v1/resp/#",
        "a/+/b",
        "",
    ];
    for topic in bad {
        let (reply, dead) = run(&calc_or_panic, &incoming("calc", b"1", Some(topic)));
        assert!(reply.is_none(), "{topic:?}");
        assert_eq!(dead, Some(Reason::NoResponseTopic), "{topic:?}");
    }
}

#[test]
fn replies_never_go_to_topics_deeper_than_brokers_take() {
    let edge = format!("p/v1/resp/{}", vec!["x"; 198].join("/"));
    assert_eq!(edge.matches('/').count(), 200);
    let (reply, _) = run(&calc_or_panic, &incoming("calc", b"1", Some(&edge)));
    assert!(reply.is_some());
    let deeper = format!("{edge}/x");
    let (reply, dead) = run(&calc_or_panic, &incoming("calc", b"1", Some(&deeper)));
    assert!(reply.is_none());
    assert_eq!(dead, Some(Reason::NoResponseTopic));
}

#[test]
fn replies_go_only_where_replies_are_allowed() {
    let msg = incoming("calc", b"1", Some("home/door/cmd"));
    let (reply, dead) = run(&calc_or_panic, &msg);
    assert!(reply.is_none());
    assert_eq!(dead, Some(Reason::ResponseTopicNotAllowed));
    let topics = Topics::new(PREFIX).allowing_replies(&["home/+/cmd".to_string()]);
    let outcome = handle_with(&calc_or_panic, &topics, 1024, &msg);
    assert_eq!(
        outcome.reply.map(|r| r.topic).as_deref(),
        Some("home/door/cmd")
    );
    assert!(outcome.dead_letter.is_none());
    // Reserved topics stay refused whatever the setting allows.
    let topics = Topics::new(PREFIX).allowing_replies(&["#".to_string()]);
    let outcome = handle_with(
        &calc_or_panic,
        &topics,
        1024,
        &incoming("calc", b"1", Some("p/v1/dlq")),
    );
    assert_eq!(
        outcome.dead_letter.map(|d| d.0),
        Some(Reason::NoResponseTopic)
    );
}

#[test]
fn oversized_payload_is_a_limit_error_before_decoding() {
    let never = |_: &Request, _: Option<crate::operations::Replay>| -> Reply {
        panic!("must not be applied")
    };
    let big = vec![b'1'; 1025];
    let (reply, dead) = run(&never, &incoming("calc", &big, Some("p/v1/resp/c")));
    assert!(matches!(reply, Some(Reply::Err(e)) if e.code == "limit"));
    assert_eq!(dead, None);
}

#[test]
fn expired_request_is_dead_lettered_unanswered() {
    let mut msg = incoming("calc", b"1", Some("p/v1/resp/c"));
    msg.meta.expiry_secs = Some(1);
    msg.arrived = Instant::now()
        .checked_sub(Duration::from_secs(2))
        .expect("the clock is past 2 s");
    let (reply, dead) = run(&calc_or_panic, &msg);
    assert!(reply.is_none());
    assert_eq!(dead, Some(Reason::Expired));
}

/// Answers calc requests with numbered replies that only the commit
/// makes (as an edit batch does), and panics on "boom".
#[derive(Default)]
struct Committing {
    taken: usize,
}

impl Answers for Committing {
    fn apply(&mut self, request: &Request, _replay: Option<crate::operations::Replay>) -> usize {
        if matches!(request, Request::Calc(c) if c.expr == "boom") {
            panic!("simulated bug in a batch");
        }
        self.taken += 1;
        self.taken - 1
    }

    fn commit(self) -> Vec<Reply> {
        (0..self.taken)
            .map(|n| Reply::Ok(OkValue::Text(format!("final {n}"))))
            .collect()
    }
}

#[test]
fn a_burst_gets_the_final_replies_in_order_around_refusals_and_panics() {
    let rt = Some("p/v1/resp/c");
    let msgs = [
        incoming("calc", b"1", rt),
        incoming("calc", b"boom", rt),
        incoming("calc", b"2", None),
        incoming("nope", b"2", rt),
        incoming("calc", b"3", rt),
    ];
    let outcomes = handle_all(Committing::default(), &Topics::new(PREFIX), 1024, &msgs);
    let replies: Vec<Option<String>> = outcomes
        .iter()
        .map(|o| {
            o.reply.as_ref().map(|r| {
                match decode_reply(Encoding::Text, &r.payload).expect("text reply") {
                    Reply::Ok(OkValue::Text(t)) => t,
                    Reply::Ok(other) => format!("{other:?}"),
                    Reply::Err(e) => e.code,
                }
            })
        })
        .collect();
    assert_eq!(
        replies,
        [
            Some("final 0".to_string()),
            Some("internal".to_string()),
            None,
            Some("unknown_op".to_string()),
            Some("final 1".to_string()),
        ]
    );
    let dead: Vec<_> = outcomes
        .iter()
        .map(|o| o.dead_letter.as_ref().map(|d| d.0))
        .collect();
    assert_eq!(
        dead,
        [
            None,
            Some(Reason::HandlerFailure),
            Some(Reason::NoResponseTopic),
            Some(Reason::UnknownOp),
            None
        ]
    );
}

#[test]
fn a_burst_of_edits_to_one_file_is_answered_with_committed_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let ops = Operations::open(dir.path(), "notes.txt", crate::limits::Limits::default()).unwrap();
    let edit = |text: u8, correlation: u8| {
        let body = format!(r#"{{"action":"append","text":"{text}"}}"#);
        let mut m = incoming("edit", body.as_bytes(), Some("p/v1/resp/e"));
        m.meta.content_type = Some("application/json".into());
        m.meta.correlation = Some(vec![correlation]);
        m
    };
    // A copy of the first request in the same burst is applied once.
    let msgs = [edit(0, 0), edit(1, 1), edit(2, 2), edit(0, 0)];
    let outcomes = handle_burst(&ops, &Topics::new(PREFIX), 1024, &msgs);
    let revs: Vec<(u64, Option<String>)> = outcomes
        .iter()
        .map(|o| {
            let r = o.reply.as_ref().expect("a reply");
            match decode_reply(Encoding::Json, &r.payload).expect("json reply") {
                Reply::Ok(OkValue::Edit(e)) => (e.rev, r.error.clone()),
                other => panic!("{other:?}"),
            }
        })
        .collect();
    assert_eq!(revs, [(1, None), (2, None), (3, None), (1, None)]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
        "0\n1\n2\n"
    );
}
