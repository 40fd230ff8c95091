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

#[test]
fn an_edit_reply_is_held_for_its_commit_and_becomes_the_error_if_its_group_failed() {
    use crate::operations::edit::GroupFailure;
    use crate::protocol::EditResult;
    let edited = |file: &'static str, rev: u64| {
        move |_: &Request, _: Option<crate::operations::Replay>| {
            Reply::Ok(OkValue::Edit(EditResult {
                file: file.to_string(),
                rev,
                lines: 1,
                content: None,
                next: None,
            }))
        }
    };
    let topics = Topics::new(PREFIX);
    let mut msg = incoming(
        "edit",
        br#"{"action":"append","text":"x"}"#,
        Some("p/v1/resp/1"),
    );
    msg.meta.content_type = Some("application/json".into());
    let failures = [GroupFailure {
        file: "f".into(),
        revs: vec![1, 2],
        code: "io",
        message: "cannot write f: disk full".into(),
    }];
    for (rev, broken) in [(2, true), (3, false)] {
        let mut reply = handle_with(&edited("f", rev), &topics, 1024, &msg)
            .reply
            .expect("a reply");
        assert!(reply.awaits_commit());
        reply.settle(&failures);
        assert!(!reply.awaits_commit());
        let decoded = decode_reply(Encoding::Json, &reply.payload).expect("json reply");
        match decoded {
            Reply::Err(e) => {
                assert!(broken, "rev {rev} was committed");
                assert_eq!(
                    (e.code.as_str(), reply.error.as_deref()),
                    ("io", Some("io"))
                );
                assert!(e.message.contains("disk full"), "{}", e.message);
            }
            Reply::Ok(_) => assert!(!broken, "rev {rev} was in the failed group"),
        }
    }
    // Replies that report no change (calc, show) never wait for a commit.
    let calc = handle_with(
        &calc_or_panic,
        &topics,
        1024,
        &incoming("calc", b"1", Some("p/v1/resp/1")),
    );
    assert!(!calc.reply.expect("a reply").awaits_commit());
}
