//! edit stays inside the server's data directory: planted symlinks and
//! hard links are refused with their targets untouched, escaping names
//! are refused, and the directory is private.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::raw::RawClient;
use common::served_with_raw_client as setup;
use common::{mqttapp, unique_prefix, Broker};
use predicates::prelude::*;

fn edit(value: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&value).expect("json")
}

/// Every action on `file`, each answered with `bad_request` naming `why`.
fn assert_all_actions_refused(raw: &RawClient, prefix: &str, file: &str, why: &str) {
    let requests = [
        serde_json::json!({ "file": file, "line": 1, "text": "pwned" }),
        serde_json::json!({ "file": file, "action": "insert", "line": 1, "text": "pwned" }),
        serde_json::json!({ "file": file, "action": "append", "text": "pwned" }),
        serde_json::json!({ "file": file, "action": "delete", "line": 1 }),
        serde_json::json!({ "file": file, "action": "show" }),
    ];
    for (i, request) in requests.iter().enumerate() {
        let corr = format!("{file}-{i}");
        let reply = raw.request(
            prefix,
            "edit",
            &edit(request.clone()),
            None,
            Some(corr.as_bytes()),
        );
        assert_eq!(reply.code(), "bad_request", "{request}: {}", reply.text());
        assert!(
            reply.text().contains(why),
            "{request}: {} lacks {why:?}",
            reply.text()
        );
    }
}

#[test]
fn a_symlink_planted_in_the_data_dir_is_refused_and_its_target_untouched() {
    let (broker, prefix, server, raw) = setup("symlink");
    let outside = broker.dir().join("outside-secret.txt");
    std::fs::write(&outside, "TOP SECRET\n").unwrap();
    let outside_dir = broker.dir().join("outside-dir");
    std::fs::create_dir(&outside_dir).unwrap();
    std::os::unix::fs::symlink(&outside, server.data_dir().join("link.txt")).unwrap();
    std::os::unix::fs::symlink("../outside-secret.txt", server.data_dir().join("rel.txt")).unwrap();
    std::os::unix::fs::symlink(&outside_dir, server.data_dir().join("dirlink")).unwrap();
    std::os::unix::fs::symlink(
        "/nonexistent/target",
        server.data_dir().join("dangling.txt"),
    )
    .unwrap();
    for file in ["link.txt", "rel.txt", "dirlink", "dangling.txt"] {
        assert_all_actions_refused(&raw, &prefix, file, "is a symlink");
    }
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "TOP SECRET\n");
    assert_eq!(std::fs::read_dir(&outside_dir).unwrap().count(), 0);
    assert!(!Path::new("/nonexistent/target").exists());
    let link = std::fs::symlink_metadata(server.data_dir().join("link.txt")).unwrap();
    assert!(
        link.file_type().is_symlink(),
        "the planted link is left as it was"
    );
    // The server goes on serving.
    assert_eq!(
        raw.request(&prefix, "calc", b"2+3*4", None, None).payload,
        b"14"
    );
}

#[test]
fn a_hard_link_planted_in_the_data_dir_is_refused() {
    let (broker, prefix, server, raw) = setup("hardlink");
    let outside = broker.dir().join("outside-hard.txt");
    std::fs::write(&outside, "HARD SECRET\n").unwrap();
    std::fs::hard_link(&outside, server.data_dir().join("hl.txt")).unwrap();
    for request in [
        serde_json::json!({ "file": "hl.txt", "action": "show" }),
        serde_json::json!({ "file": "hl.txt", "line": 1, "text": "pwned" }),
    ] {
        let reply = raw.request(&prefix, "edit", &edit(request), None, Some(b"h"));
        assert_eq!(reply.code(), "bad_request", "{}", reply.text());
        assert!(reply.text().contains("hard links"), "{}", reply.text());
    }
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "HARD SECRET\n");
}

#[test]
fn names_that_could_escape_the_data_dir_are_refused() {
    let (broker, prefix, server, raw) = setup("names");
    let absolute = broker.dir().join("absolute-target.txt");
    let absolute = absolute.display().to_string();
    let long = "n".repeat(200);
    let names: &[(&str, &str)] = &[
        ("../escaped.txt", "contains a path separator"),
        ("../../escaped.txt", "contains a path separator"),
        (&absolute, "contains a path separator"),
        ("sub/file.txt", "contains a path separator"),
        ("..\\escaped.txt", "contains a path separator"),
        ("..", "refers to a directory"),
        (".", "refers to a directory"),
        (".mqttapp", "reserved for the store"),
        (".hidden", "reserved for the store"),
        ("notes.txt\u{0}.sh", "contains a NUL byte"),
        ("", "is empty"),
        (&long, "is longer than 128 bytes"),
        ("é.txt", "outside [A-Za-z0-9._-]"),
        ("a b", "outside [A-Za-z0-9._-]"),
        ("~root", "outside [A-Za-z0-9._-]"),
    ];
    for (name, why) in names {
        assert_all_actions_refused(&raw, &prefix, name, why);
    }
    assert!(!broker.dir().join("escaped.txt").exists());
    assert!(!Path::new(&absolute).exists());
    let mut entries: Vec<String> = std::fs::read_dir(server.data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, [".mqttapp", "notes.txt"]);
}

#[test]
fn the_data_directory_is_created_private() {
    let (_broker, prefix, server, raw) = setup("private");
    let reply = raw.request(
        &prefix,
        "edit",
        &edit(serde_json::json!({ "action": "append", "text": "x" })),
        None,
        Some(b"p"),
    );
    assert_eq!(reply.code(), "ok", "{}", reply.text());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(server.data_dir()), 0o700);
    assert_eq!(mode(&server.data_dir().join(".mqttapp")), 0o700);
    assert_eq!(mode(&server.data_dir().join("notes.txt")), 0o600);
}

#[test]
fn a_server_whose_default_file_is_a_symlink_refuses_to_start() {
    let broker = Broker::start();
    let prefix = unique_prefix("default-link");
    let data = broker.dir().join("data");
    std::fs::create_dir(&data).unwrap();
    let outside = broker.dir().join("outside.txt");
    std::fs::write(&outside, "keep\n").unwrap();
    std::os::unix::fs::symlink(&outside, data.join("notes.txt")).unwrap();
    mqttapp(&broker, &prefix)
        .args(["serve", "--data-dir", &data.display().to_string()])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(10)
        .stderr(predicate::str::contains(
            "invalid file name \"notes.txt\": is a symlink",
        ));
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep\n");
}

#[test]
fn a_server_whose_bookkeeping_dir_is_a_symlink_refuses_to_start() {
    let broker = Broker::start();
    let prefix = unique_prefix("meta-link");
    let data = broker.dir().join("data");
    std::fs::create_dir(&data).unwrap();
    let elsewhere = broker.dir().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, data.join(".mqttapp")).unwrap();
    mqttapp(&broker, &prefix)
        .args(["serve", "--data-dir", &data.display().to_string()])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(10)
        .stderr(predicate::str::contains(".mqttapp: is a symlink"));
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}
