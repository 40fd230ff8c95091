//! `mqttapp ping`: a live round trip to every online server.
//!
//! Each round publishes one ping on `<prefix>/v1/ping` with this client's
//! response topic and fresh correlation data; every server answers
//! directly ([`Pong`], rate-limited per server), and the answers that
//! come within `--wait` are printed as they arrive: server id, instance,
//! version, round-trip time. Unlike `status` this shows servers that are
//! alive now, not what their retained statuses say.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{connect, correlation, GatherError, Verdict};
use crate::broker::ping::Pong;
use crate::config::Config;
use crate::mqtt::{Arrival, Message, MessageMeta};
use crate::protocol::{user_props, Encoding, Topics};

/// How long a round waits for answers unless `--wait` says otherwise.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(1);

/// What `mqttapp ping` was asked to do.
#[derive(Debug, Clone)]
pub struct PingOptions {
    /// Rounds (at least 1).
    pub count: u32,
    /// How long each round waits for answers.
    pub wait: Duration,
    /// One JSON object per line instead of text.
    pub json: bool,
}

/// One server's answer in one round.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// The round, from 1.
    pub round: u32,
    /// The server's id.
    pub server_id: String,
    /// Its run's instance id.
    pub instance: String,
    /// Its version.
    pub version: String,
    /// Round-trip time in milliseconds.
    pub rtt_ms: f64,
}

/// Round-trip times of one server over all rounds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    /// The server's id.
    pub server_id: String,
    /// Rounds it answered.
    pub answered: u32,
    /// Rounds sent.
    pub rounds: u32,
    /// Fastest round trip, ms.
    pub min_ms: f64,
    /// Mean round trip, ms.
    pub avg_ms: f64,
    /// Slowest round trip, ms.
    pub max_ms: f64,
}

/// Pings `options.count` times, printing each answer to `out` as it
/// comes and, after several rounds, a summary per server. `None` when no
/// server answered at all, `All` otherwise.
///
/// # Errors
/// [`GatherError::Mqtt`] when the broker cannot be reached or refuses.
pub fn run(
    config: &Config,
    options: &PingOptions,
    out: &mut dyn Write,
) -> Result<Verdict, GatherError> {
    let (client, rx, response_topic) = connect(config, "ping", options.wait)?;
    let ping_topic = Topics::new(&config.prefix).ping();
    let mut answers: Vec<Answer> = Vec::new();
    for round in 1..=options.count.max(1) {
        let corr = correlation(round);
        let meta = MessageMeta {
            response_topic: Some(response_topic.clone()),
            correlation: Some(corr.clone()),
            content_type: Some(Encoding::Cbor.content_type().to_string()),
            ..MessageMeta::default()
        };
        let mut msg = Message::new(&ping_topic, Vec::new(), meta, false);
        msg.qos = 0;
        let sent = Instant::now();
        client
            .try_publish(msg)
            .map_err(|e| GatherError::Mqtt(e.into_mqtt()))?;
        let deadline = sent + options.wait;
        let mut seen = BTreeSet::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let msg = match rx.recv_timeout(left) {
                Ok(Arrival::Message(msg)) => msg,
                Ok(_) | Err(_) => break,
            };
            let Some(answer) = read_answer(&msg, &corr, round, sent) else {
                continue;
            };
            if !seen.insert(answer.server_id.clone()) {
                continue;
            }
            let _ = writeln!(out, "{}", line(&answer, options.json));
            answers.push(answer);
        }
    }
    client.disconnect(Duration::ZERO);
    if options.count > 1 {
        for s in summarize(&answers, options.count) {
            let _ = writeln!(out, "{}", summary_line(&s, options.json));
        }
    }
    Ok(if answers.is_empty() {
        Verdict::None
    } else {
        Verdict::All
    })
}

/// A pong for this round (`corr`), with its round-trip time; the server
/// id is the `mqttapp-server-id` property (the payload's id when absent).
fn read_answer(msg: &Message, corr: &[u8], round: u32, sent: Instant) -> Option<Answer> {
    if msg.meta.correlation.as_deref() != Some(corr) {
        return None;
    }
    let rtt = sent.elapsed();
    let pong = Pong::decode(msg.meta.content_type.as_deref(), &msg.payload)?;
    let server_id = msg
        .meta
        .user_property(user_props::SERVER_ID)
        .map_or(pong.server_id, String::from);
    Some(Answer {
        round,
        server_id,
        instance: pong.instance,
        version: pong.version,
        rtt_ms: rtt.as_secs_f64() * 1000.0,
    })
}

/// One answer as a line: text or JSON.
pub fn line(a: &Answer, json: bool) -> String {
    if json {
        // Strings and numbers always serialize.
        return serde_json::to_string(a).expect("an answer is JSON");
    }
    format!(
        "{}  instance={}  version={}  time={:.2} ms",
        a.server_id, a.instance, a.version, a.rtt_ms
    )
}

/// Per server, over `rounds` rounds: answered, min, mean, max.
pub fn summarize(answers: &[Answer], rounds: u32) -> Vec<Summary> {
    let mut by_id: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for a in answers {
        by_id.entry(&a.server_id).or_default().push(a.rtt_ms);
    }
    by_id
        .into_iter()
        .map(|(id, times)| {
            let n = times.len();
            Summary {
                server_id: id.to_string(),
                answered: u32::try_from(n).unwrap_or(u32::MAX),
                rounds,
                min_ms: times.iter().copied().fold(f64::INFINITY, f64::min),
                avg_ms: times.iter().sum::<f64>() / n as f64,
                max_ms: times.iter().copied().fold(0.0, f64::max),
            }
        })
        .collect()
}

fn summary_line(s: &Summary, json: bool) -> String {
    if json {
        let wrapped = serde_json::json!({ "summary": s });
        return wrapped.to_string();
    }
    format!(
        "{}  {}/{} answered  min/avg/max = {:.2}/{:.2}/{:.2} ms",
        s.server_id, s.answered, s.rounds, s.min_ms, s.avg_ms, s.max_ms
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(id: &str, round: u32, rtt_ms: f64) -> Answer {
        Answer {
            round,
            server_id: id.into(),
            instance: "i".into(),
            version: "v".into(),
            rtt_ms,
        }
    }

    #[test]
    fn the_summary_counts_rounds_per_server() {
        let answers = [
            answer("b", 1, 2.0),
            answer("a", 1, 1.0),
            answer("a", 2, 3.0),
            answer("a", 3, 2.0),
        ];
        let s = summarize(&answers, 3);
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].server_id.as_str(), s[0].answered, s[0].rounds),
            ("a", 3, 3)
        );
        assert_eq!((s[0].min_ms, s[0].avg_ms, s[0].max_ms), (1.0, 2.0, 3.0));
        assert_eq!((s[1].server_id.as_str(), s[1].answered), ("b", 1));
        assert!(summary_line(&s[1], false).starts_with("b  1/3 answered"));
        assert!(summary_line(&s[1], true).starts_with("{\"summary\":{"));
    }

    #[test]
    fn only_answers_to_this_round_count() {
        let pong = Pong {
            server_id: "payload-id".into(),
            instance: "i".into(),
            version: "v".into(),
        };
        let meta = |corr: &[u8], id: Option<&str>| MessageMeta {
            correlation: Some(corr.to_vec()),
            content_type: Some("application/cbor".into()),
            user: id
                .map(|id| vec![(user_props::SERVER_ID.to_string(), id.to_string())])
                .unwrap_or_default(),
            ..MessageMeta::default()
        };
        let msg = |m| Message::new("t", pong.encode(Encoding::Cbor), m, false);
        let now = Instant::now();
        let a = read_answer(&msg(meta(b"r1", Some("s1"))), b"r1", 1, now).unwrap();
        assert_eq!(a.server_id, "s1");
        let b = read_answer(&msg(meta(b"r1", None)), b"r1", 1, now).unwrap();
        assert_eq!(b.server_id, "payload-id");
        assert!(read_answer(&msg(meta(b"r0", Some("s1"))), b"r1", 1, now).is_none());
        assert!(line(&a, true).contains("\"server_id\":\"s1\""));
    }
}
