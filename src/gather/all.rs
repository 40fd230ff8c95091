//! `mqttapp ask --all OP INPUT`: one request to every online server.
//!
//! The servers to wait for are those whose retained status says online
//! with the operation (`status::collect`, with its ping fallback). The
//! request goes once to `<prefix>/v1/all/req/<op>`, which every server
//! subscribes to without a shared group; each server answers it exactly
//! as a request on `req/<op>` (same handler, limits, `busy` refusals and
//! edit replay memory) and puts its id in the `mqttapp-server-id` user
//! property. Answers are printed as they come, one line per server
//! (`<server-id> <result>`), each server once ([`Tally`]).
//!
//! The gather ends when every expected server answered, when `--replies
//! N` distinct servers did, or at `--wait` (default: the request
//! timeout). The request's Message Expiry is that wait, so a server never
//! works on it after nobody listens.
//!
//! Edits are allowed: the servers of a group that share a data directory
//! all get the same response topic and correlation data, which is the
//! edit's replay key in that directory's reply memory, so the change is
//! applied once there and the other members answer it from memory (same
//! revision). Servers with their own data directories each apply it once.

use std::io::Write;
use std::time::{Duration, Instant};

use super::{connect, correlation, GatherError, Tally, Verdict};
use crate::config::Config;
use crate::exit::ExitCode;
use crate::mqtt::{Arrival, Message, MessageMeta};
use crate::output::Format;
use crate::protocol::{
    decode_reply, encode_request, user_props, Encoding, OkValue, Reply, Request, Topics,
};

/// How `ask --all` gathers.
#[derive(Debug, Clone)]
pub struct AllOptions {
    /// Stop after this many distinct servers answered.
    pub replies: Option<usize>,
    /// Bound on the whole gather.
    pub wait: Duration,
    /// Text, JSON lines, or nothing.
    pub format: Format,
    /// The request's own user properties (`ask -H`).
    pub headers: Vec<(String, String)>,
}

/// Sends `request` to every server and prints one line per answer on
/// `out` (missing servers: on stderr, and as `timeout` objects with
/// `--json`). Returns the exit code: 0 all answered without error, 1 all
/// answered and one was an error, 9 some answered, 6 none.
///
/// # Errors
/// [`GatherError`]: broker problems, no server online.
pub fn run(
    config: &Config,
    request: &Request,
    options: &AllOptions,
    out: &mut dyn Write,
) -> Result<ExitCode, GatherError> {
    let op = request.op_name();
    let rows = crate::status::collect(config, options.wait.min(Duration::from_secs(3)))?;
    let expected: Vec<String> = rows
        .iter()
        .filter(|r| r.is_online() && r.ops.iter().any(|o| o == op))
        .map(|r| r.id.clone())
        .collect();
    if expected.is_empty() {
        return Err(GatherError::NoServer {
            op: op.to_string(),
            prefix: config.prefix.clone(),
        });
    }
    let (client, rx, response_topic) = connect(config, "all", options.wait)?;
    let corr = correlation(0);
    let meta = MessageMeta {
        response_topic: Some(response_topic.clone()),
        correlation: Some(corr.clone()),
        content_type: Some(Encoding::Cbor.content_type().to_string()),
        expiry_secs: Some(expiry_secs(options.wait)),
        user: options.headers.clone(),
    };
    let topic = Topics::new(&config.prefix).all_request_named(op);
    let payload = encode_request(request, Encoding::Cbor);
    let start = Instant::now();
    client.publish_wait(Message::new(&topic, payload, meta, false), options.wait)?;
    let mut tally = Tally::new(expected, options.replies);
    let deadline = start + options.wait;
    while !tally.complete() {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        let msg = match rx.recv_timeout(left) {
            Ok(Arrival::Message(msg)) => msg,
            Ok(_) | Err(_) => break,
        };
        let Some((id, reply)) = read_reply(&msg, &corr) else {
            continue;
        };
        if tally.add(&id, reply.clone()) {
            show(out, options.format, &id, &reply);
        }
    }
    client.disconnect(Duration::ZERO);
    if tally.duplicates() > 0 {
        tracing::debug!(
            ignored = tally.duplicates(),
            "answers from servers already counted"
        );
    }
    if options.replies.is_none() {
        for id in tally.missing() {
            missing(out, options.format, id, options.wait);
        }
    }
    let any_error = tally.answers().values().any(|r| matches!(r, Reply::Err(_)));
    let verdict = tally.verdict();
    if verdict == Verdict::None {
        eprintln!(
            "error: no server answered within {}",
            humantime::format_duration(options.wait)
        );
    }
    Ok(verdict.exit_code(any_error))
}

/// The Message Expiry for a gather of `wait`: whole seconds, at least 1.
fn expiry_secs(wait: Duration) -> u32 {
    let ceil = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    u32::try_from(ceil.max(1)).unwrap_or(u32::MAX)
}

/// A reply to this gather (`corr`) with the id of the server that sent it;
/// `None` for anything else, for a reply without a server id, or one that
/// does not decode.
fn read_reply(msg: &Message, corr: &[u8]) -> Option<(String, Reply)> {
    if msg.meta.correlation.as_deref() != Some(corr) {
        return None;
    }
    let Some(id) = msg.meta.user_property(user_props::SERVER_ID) else {
        tracing::warn!("a reply without the mqttapp-server-id property was ignored");
        return None;
    };
    let encoding = Encoding::detect(msg.meta.content_type.as_deref(), &msg.payload);
    match decode_reply(encoding, &msg.payload) {
        Ok(reply) => Some((id.to_string(), reply)),
        Err(e) => {
            tracing::warn!(server = %crate::logging::shorten(id, 60), error = %e, "an undecodable reply was ignored");
            None
        }
    }
}

/// One server's answer as a line: `<id> <result>`, `<id> error: ...`, or
/// `{"server_id":...,"ok":...}`.
pub fn line(id: &str, reply: &Reply, json: bool) -> String {
    if json {
        // A reply is plain data; serializing it cannot fail.
        let mut value = serde_json::to_value(reply).expect("a reply is JSON");
        if let Some(map) = value.as_object_mut() {
            map.insert("server_id".into(), id.into());
        }
        return value.to_string();
    }
    match reply {
        Reply::Ok(value) => format!("{id} {value}"),
        Reply::Err(e) => format!("{id} error: {e}"),
    }
}

fn show(out: &mut dyn Write, format: Format, id: &str, reply: &Reply) {
    if let Reply::Ok(OkValue::Edit(e)) = reply {
        if e.next.is_some() {
            eprintln!("note: {id}: only the first page of {} is shown (ask --all does not page; ask without --all reads the whole file)", e.file);
        }
    }
    if format != Format::Quiet {
        let _ = writeln!(out, "{}", line(id, reply, format == Format::Json));
    }
}

fn missing(out: &mut dyn Write, format: Format, id: &str, wait: Duration) {
    let message = format!(
        "no answer from {id} within {}",
        humantime::format_duration(wait)
    );
    if format == Format::Json {
        let object =
            serde_json::json!({"server_id": id, "err": {"code": "timeout", "message": message}});
        let _ = writeln!(out, "{object}");
    }
    eprintln!("error: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;

    #[test]
    fn lines_name_the_server() {
        let ok = Reply::Ok(OkValue::Int(14));
        assert_eq!(line("s1", &ok, false), "s1 14");
        assert_eq!(line("s1", &ok, true), r#"{"ok":14,"server_id":"s1"}"#);
        let err = Reply::error(ErrorCode::Math, "division by zero");
        assert_eq!(line("s2", &err, false), "s2 error: math: division by zero");
        assert!(line("s2", &err, true).contains(r#""server_id":"s2""#));
    }

    #[test]
    fn replies_without_a_server_id_or_for_another_gather_are_ignored() {
        let payload = crate::protocol::encode_reply(&Reply::Ok(OkValue::Int(1)), Encoding::Cbor);
        let msg = |corr: &[u8], id: Option<&str>| {
            let meta = MessageMeta {
                correlation: Some(corr.to_vec()),
                user: id
                    .map(|id| vec![(user_props::SERVER_ID.to_string(), id.to_string())])
                    .unwrap_or_default(),
                ..MessageMeta::default()
            };
            Message::new("t", payload.clone(), meta, false)
        };
        assert_eq!(read_reply(&msg(b"c", Some("s")), b"c").unwrap().0, "s");
        assert!(read_reply(&msg(b"c", None), b"c").is_none());
        assert!(read_reply(&msg(b"x", Some("s")), b"c").is_none());
    }

    #[test]
    fn the_expiry_covers_the_wait() {
        assert_eq!(expiry_secs(Duration::from_millis(300)), 1);
        assert_eq!(expiry_secs(Duration::ZERO), 1);
        assert_eq!(expiry_secs(Duration::from_secs(5)), 5);
        assert_eq!(expiry_secs(Duration::from_millis(5500)), 6);
    }
}
