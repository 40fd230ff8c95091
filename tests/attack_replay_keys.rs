//! Scenario B, pre-claimed replay keys: a client that may read the edit
//! requests of others sees ONE request of a victim's long-lived session
//! (`mqttapp shell` or `mqttapp ask --batch`, fed slowly through a pipe),
//! guesses the correlation data of the victim's next requests, and claims
//! those replay keys first by publishing its own appends with the victim's
//! response topic. The victim's next edits must still really be applied:
//! correlation data carries 128 random bits per request, so there is
//! nothing to guess from one observed request.
//!
//! Real Mosquitto, real server, real binary; every wait is bounded.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{mqttapp_std, unique_prefix, wait_output, wait_until, Broker, Server};
use mqttapp::protocol::{encode_request, EditAction, EditRequest, Encoding, Request};
use paho_mqtt as paho;

/// Replay keys the attacker claims.
const GUESSES: u64 = 20;
/// Edits the victim sends after the attacker struck.
const VICTIM_EDITS: usize = 5;

/// The correlation data an attacker would try after seeing `seen`: the
/// old scheme's (8-byte nonce, 8-byte big-endian counter) with the next
/// counters, and the whole value read as one big-endian number plus
/// 1..=GUESSES (the same for 16 bytes without carry; differs otherwise).
fn guesses(seen: &[u8]) -> BTreeSet<Vec<u8>> {
    let mut out = BTreeSet::new();
    if seen.len() == 16 {
        let counter = u64::from_be_bytes(seen[8..].try_into().unwrap());
        for k in 1..=GUESSES {
            let mut c = seen[..8].to_vec();
            c.extend_from_slice(&counter.wrapping_add(k).to_be_bytes());
            out.insert(c);
        }
    }
    for k in 1..=GUESSES {
        let mut c = seen.to_vec();
        let mut carry = k;
        for byte in c.iter_mut().rev() {
            let sum = u64::from(*byte) + (carry & 0xff);
            *byte = (sum & 0xff) as u8;
            carry = (carry >> 8) + (sum >> 8);
        }
        out.insert(c);
    }
    out
}

fn append(text: &str) -> Vec<u8> {
    encode_request(
        &Request::Edit(EditRequest {
            action: EditAction::Append,
            line: None,
            text: Some(text.to_string()),
            file: None,
            expect_rev: None,
        }),
        Encoding::Cbor,
    )
}

fn lines_with(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// Runs the attack against `victim_args` (a process reading edit commands
/// from stdin over one connection); returns how many of the victim's
/// later edits are missing from the file.
fn missing_victim_edits_after_the_attack(name: &str, victim_args: &[&str]) -> usize {
    let broker = Broker::start();
    let prefix = unique_prefix(name);
    let server = Server::start(&broker, &prefix);
    let file = server.data_dir().join("notes.txt");

    // The attacker: a raw client that reads the edit requests of others.
    let (attacker, rx, _) =
        common::raw::connect_subscribed(&broker, &prefix, &format!("attacker-{name}"));
    attacker
        .subscribe(format!("{prefix}/v1/req/edit"), 1)
        .wait_for(Duration::from_secs(10))
        .expect("attacker subscribes to the edit requests");

    let mut victim = mqttapp_std(&broker, &prefix)
        .args(victim_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the victim");
    let mut stdin = victim.stdin.take().expect("piped stdin");
    writeln!(stdin, "edit --append \"victim 0\"").unwrap();
    stdin.flush().unwrap();

    // One observed request of the victim.
    let seen = loop {
        let msg = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the attacker sees the victim's request")
            .expect("attacker connection stays up");
        if msg.topic().ends_with("/v1/req/edit") {
            break msg;
        }
    };
    let props = seen.properties();
    let response_topic = props
        .get_string(paho::PropertyCode::ResponseTopic)
        .expect("the victim's request has a response topic");
    let correlation = props
        .get_binary(paho::PropertyCode::CorrelationData)
        .expect("the victim's request has correlation data");
    wait_until("the victim's first edit", Duration::from_secs(20), || {
        lines_with(&file, "victim 0") == 1
    });

    // Claim the replay keys of the victim's next requests.
    let claimed = guesses(&correlation);
    for (k, c) in claimed.iter().enumerate() {
        let mut props = paho::Properties::new();
        props
            .push_string(paho::PropertyCode::ResponseTopic, &response_topic)
            .unwrap();
        props
            .push_binary(paho::PropertyCode::CorrelationData, c.clone())
            .unwrap();
        props
            .push_string(paho::PropertyCode::ContentType, "application/cbor")
            .unwrap();
        let msg = paho::MessageBuilder::new()
            .topic(format!("{prefix}/v1/req/edit"))
            .payload(append(&format!("attacker {k}")))
            .qos(1)
            .properties(props)
            .finalize();
        attacker.publish(msg).wait().expect("attacker publishes");
    }
    wait_until("the attacker's edits", Duration::from_secs(30), || {
        lines_with(&file, "attacker") == claimed.len()
    });

    // The victim goes on.
    for i in 1..=VICTIM_EDITS {
        writeln!(stdin, "edit --append \"victim {i}\"").unwrap();
    }
    drop(stdin);
    let out = wait_output(victim, Duration::from_secs(90));
    let content = std::fs::read_to_string(&file).unwrap_or_default();
    let missing = (1..=VICTIM_EDITS)
        .filter(|i| lines_with(&file, &format!("victim {i}")) != 1)
        .count();
    eprintln!(
        "{name}: {} replay keys claimed, {missing} of {VICTIM_EDITS} victim edits missing; \
         victim exit {:?}\nstdout:\n{}\nstderr:\n{}\nfile:\n{content}",
        claimed.len(),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    if missing == 0 {
        assert!(out.status.success(), "every victim edit succeeded");
    }
    missing
}

#[test]
fn a_shell_victims_edits_are_applied_after_an_attacker_claimed_guessed_replay_keys() {
    let missing = missing_victim_edits_after_the_attack("shell", &["shell"]);
    assert_eq!(missing, 0, "victim edits answered but never applied");
}

#[test]
fn a_batch_victims_edits_are_applied_after_an_attacker_claimed_guessed_replay_keys() {
    let missing = missing_victim_edits_after_the_attack("batch", &["ask", "--batch"]);
    assert_eq!(missing, 0, "victim edits answered but never applied");
}

#[test]
fn the_guesses_follow_the_old_nonce_and_counter_scheme() {
    let mut seen = vec![7u8; 8];
    seen.extend_from_slice(&41u64.to_be_bytes());
    let g = guesses(&seen);
    assert_eq!(g.len(), GUESSES as usize);
    let mut next = vec![7u8; 8];
    next.extend_from_slice(&42u64.to_be_bytes());
    assert!(g.contains(&next));
    // Carry across bytes of an arbitrary-length value.
    assert!(guesses(&[0x01, 0xff]).contains(&vec![0x02, 0x00]));
}
