//! The reply memory: retention by time, the per-file bound (`busy`), key
//! reuse (`conflict`), copies inside and across groups, the journal's
//! rollback and compaction, sharing between stores, and old metadata.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::super::meta;
use super::super::replay::{
    commit_tag, migrate, retention_secs, Keyed, ReplayPolicy, MAX_RETENTION_SECS,
};
use super::*;

const T0: u64 = 1_800_000_000;

/// A store whose reply memory holds `capacity` entries, on a clock the
/// test moves.
fn open_clocked(dir: &Path, capacity: usize) -> (Store, Arc<AtomicU64>) {
    let clock = Arc::new(AtomicU64::new(T0));
    let mut store = open(dir);
    store.set_replay_policy(ReplayPolicy {
        capacity,
        max_retention_secs: MAX_RETENTION_SECS,
        clock: Some(clock.clone()),
    });
    (store, clock)
}

/// A keyed request whose client re-sends for `expiry` seconds.
fn expiring(action: Action, key: &[u8], expiry: u32) -> EditRequest {
    EditRequest {
        expiry_secs: Some(expiry),
        ..keyed(action, key)
    }
}

#[test]
fn retention_follows_the_message_expiry_up_to_the_maximum() {
    assert_eq!(retention_secs(Some(5), 300), 11);
    assert_eq!(retention_secs(Some(0), 300), 1);
    assert_eq!(retention_secs(Some(1000), 300), 300);
    assert_eq!(retention_secs(Some(u32::MAX), 300), 300);
    assert_eq!(retention_secs(None, 300), 300);
}

#[test]
fn a_key_is_remembered_while_its_client_may_resend_then_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock) = open_clocked(dir.path(), 100);
    assert_eq!(ok(&store, &expiring(append("a"), b"k", 5)).rev, 1);
    // Two expiries later (a copy re-sent at the client's timeout, queued
    // for its own expiry) it is still a replay.
    clock.store(T0 + 10, Ordering::SeqCst);
    let again = ok(&store, &expiring(append("a"), b"k", 5));
    assert_eq!((again.rev, again.replayed), (1, true));
    // Past that, nobody can re-send it: the same key is a new request.
    clock.store(T0 + 12, Ordering::SeqCst);
    let later = ok(&store, &expiring(append("a"), b"k", 5));
    assert_eq!((later.rev, later.replayed), (2, false));
    assert_eq!(content(dir.path(), DEFAULT), "a\na\n");
    // Without an expiry: the maximum retention.
    ok(&store, &keyed(append("b"), b"forever"));
    clock.store(T0 + 12 + MAX_RETENTION_SECS - 1, Ordering::SeqCst);
    assert!(ok(&store, &keyed(append("b"), b"forever")).replayed);
}

#[test]
fn young_keys_are_never_evicted_a_full_memory_answers_busy_and_applies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock) = open_clocked(dir.path(), 8);
    for i in 0..8 {
        ok(
            &store,
            &expiring(append(&format!("l{i}")), format!("k{i}").as_bytes(), 30),
        );
    }
    let full = err(&store, &expiring(append("extra"), b"k8", 30));
    assert_eq!(full.code(), "busy");
    assert!(full.to_string().contains("replay memory"), "{full}");
    assert_eq!(ok(&store, &req(Action::Show)).rev, 8, "nothing applied");
    // Every remembered key still replays: nothing was evicted.
    for i in 0..8 {
        let r = ok(
            &store,
            &expiring(append(&format!("l{i}")), format!("k{i}").as_bytes(), 30),
        );
        assert_eq!((r.rev, r.replayed), (i + 1, true));
    }
    // Unkeyed changes need no memory.
    assert_eq!(ok(&store, &req(append("plain"))).rev, 9);
    // Once the old keys expire there is room again.
    clock.store(T0 + 61, Ordering::SeqCst);
    assert_eq!(ok(&store, &expiring(append("extra"), b"k8", 30)).rev, 10);
    // Busy inside a group too; the rest of the group commits.
    let dir = tempfile::tempdir().unwrap();
    let (store, _clock) = open_clocked(dir.path(), 2);
    let mut b = store.batch();
    staged(&mut b, &keyed(append("a"), b"a"));
    staged(&mut b, &keyed(append("b"), b"b"));
    assert_eq!(refused(&mut b, &keyed(append("c"), b"c")).code(), "busy");
    assert!(staged(&mut b, &keyed(append("a"), b"a")).replayed);
    commit_but(b, &["busy"]);
}

#[test]
fn a_key_reused_for_a_different_request_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    ok(&store, &keyed(append("a"), b"k"));
    // A re-send whose expect_rev went stale is still the same request.
    let mut expecting = keyed(append("a"), b"k");
    expecting.expect_rev = Some(0);
    assert!(ok(&store, &expecting).replayed);
    let mut named = keyed(append("a"), b"k");
    named.file = Some(DEFAULT.into());
    assert!(
        ok(&store, &named).replayed,
        "the default file by name is the same request"
    );
    for other in [
        keyed(append("b"), b"k"),
        keyed(insert(1, "a"), b"k"),
        keyed(replace(1, "a"), b"k"),
        keyed(Action::Delete { line: 1 }, b"k"),
    ] {
        let e = err(&store, &other);
        assert_eq!(e.code(), "conflict", "{other:?}");
        assert!(e.to_string().contains("correlation data was reused"), "{e}");
    }
    assert_eq!(content(dir.path(), DEFAULT), "a\n");
    // Inside a group as well.
    let mut b = store.batch();
    staged(&mut b, &keyed(append("c"), b"g"));
    assert_eq!(
        refused(&mut b, &keyed(append("d"), b"g")).code(),
        "conflict"
    );
    commit_but(b, &["conflict"]);
    assert_eq!(content(dir.path(), DEFAULT), "a\nc\n");
}

#[test]
fn copies_of_a_change_in_one_group_and_across_groups_are_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut b = store.batch();
    let revs: Vec<(u64, bool)> = (0..50)
        .map(|_| {
            let o = staged(&mut b, &keyed(append("once"), b"copy"));
            (o.rev, o.replayed)
        })
        .collect();
    commit_all(b);
    assert_eq!(revs[0], (1, false));
    assert!(revs[1..].iter().all(|r| *r == (1, true)), "{revs:?}");
    for _ in 0..3 {
        let mut b = store.batch();
        staged(&mut b, &req(append("other")));
        let o = staged(&mut b, &keyed(append("once"), b"copy"));
        assert_eq!((o.rev, o.replayed), (1, true));
        commit_all(b);
    }
    assert_eq!(content(dir.path(), DEFAULT).matches("once").count(), 1);
}

#[test]
fn another_store_on_the_directory_sees_the_memory() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path());
    ok(&a, &keyed(append("a"), b"ka"));
    // A restart: a new store reads the journal.
    let b = open(dir.path());
    assert!(ok(&b, &keyed(append("a"), b"ka")).replayed);
    ok(&b, &keyed(append("b"), b"kb"));
    // The first store's cached index picks up what the other appended.
    let seen = ok(&a, &keyed(append("b"), b"kb"));
    assert_eq!((seen.rev, seen.replayed), (2, true));
    // A rollback (crash between the steps of b's next change) is seen too:
    // a's cache must not keep the lost entry.
    ok(&b, &keyed(append("c"), b"kc"));
    assert!(ok(&a, &keyed(append("c"), b"kc")).replayed);
    std::fs::write(dir.path().join(DEFAULT), "a\nb\n").unwrap();
    let redo = ok(&a, &keyed(append("c"), b"kc"));
    assert_eq!((redo.rev, redo.replayed), (3, false));
    // ...and a different change at the same journal position.
    std::fs::write(dir.path().join(DEFAULT), "a\nb\n").unwrap();
    ok(&b, &keyed(append("d"), b"kd"));
    let c_again = ok(&a, &keyed(append("c"), b"kc"));
    assert_eq!((c_again.rev, c_again.replayed), (4, false));
    assert_eq!(content(dir.path(), DEFAULT), "a\nb\nd\nc\n");
}

#[test]
fn the_journal_is_compacted_and_a_rollback_after_compaction_keeps_older_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock) = open_clocked(dir.path(), 20_000);
    let mut b = store.batch();
    for i in 0..9_000u32 {
        staged(&mut b, &expiring(replace(1, "x"), &i.to_le_bytes(), 1));
    }
    commit_all(b);
    ok(&store, &keyed(append("kept"), b"kept"));
    assert_eq!(read_meta(dir.path(), DEFAULT).journal.len, 9_001);
    // All but one expired: the next keyed change compacts.
    clock.store(T0 + 10, Ordering::SeqCst);
    ok(&store, &keyed(append("new"), b"new"));
    let m = read_meta(dir.path(), DEFAULT);
    assert_eq!(
        (m.journal.gen, m.journal.len, m.journal.prev_len),
        (1, 2, 1)
    );
    assert!(
        !DataDir::new(dir.path()).journal(DEFAULT, 0).exists(),
        "old generation removed"
    );
    // Crash between the steps of that change: its entry goes, the carried
    // one stays.
    std::fs::write(dir.path().join(DEFAULT), "x\nkept\n").unwrap();
    let (b, b_clock) = open_clocked(dir.path(), 20_000);
    b_clock.store(T0 + 10, Ordering::SeqCst);
    assert!(ok(&b, &keyed(append("kept"), b"kept")).replayed);
    let again = ok(&b, &keyed(append("new"), b"new"));
    assert!(!again.replayed);
    // Expired keys are new requests.
    assert!(!ok(&b, &expiring(replace(1, "x"), &7u32.to_le_bytes(), 1)).replayed);
}

#[test]
fn meta_of_an_earlier_version_is_honoured_and_moved_into_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    std::fs::write(dir.path().join(DEFAULT), "a\nb\n").unwrap();
    let now = meta::now_secs();
    let old = format!(
        r#"{{"rev":2,"hash":"{}","prev_rev":1,"prev_hash":"{}","applied":[{{"key":"{}","rev":1,"lines":1,"at":{now}}},{{"key":"{}","rev":2,"lines":2,"at":{now}}}]}}"#,
        meta::content_hash(Some(b"a\nb\n")),
        meta::content_hash(Some(b"a\n")),
        hex::encode(b"old1"),
        hex::encode(b"old2"),
    );
    std::fs::write(meta_path(dir.path(), DEFAULT), old).unwrap();
    let r = ok(&store, &keyed(append("whatever"), b"old2"));
    assert_eq!((r.rev, r.lines, r.replayed), (2, 2, true));
    let m = read_meta(dir.path(), DEFAULT);
    assert!(m.applied.is_empty());
    assert_eq!((m.journal.len, m.journal.prev_len), (2, 1));
    assert!(ok(&store, &keyed(append("x"), b"old1")).replayed);
    // A rollback of the old version's last change forgets its entry only.
    std::fs::write(dir.path().join(DEFAULT), "a\n").unwrap();
    assert!(ok(&store, &keyed(append("x"), b"old1")).replayed);
    assert!(!ok(&store, &keyed(append("b"), b"old2")).replayed);
}

#[test]
fn meta_that_cannot_be_opened_is_an_error_not_an_empty_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    ok(&store, &keyed(append("a"), b"k"));
    // A symlink loop: opening fails with something other than NotFound.
    let path = meta_path(dir.path(), DEFAULT);
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&path, &path).unwrap();
    let e = meta::load(&path).expect_err("an open error other than NotFound");
    assert_eq!(e.code(), "io");
    assert_eq!(err(&store, &keyed(append("a"), b"k")).code(), "io");
    assert_eq!(content(dir.path(), DEFAULT), "a\n", "nothing applied twice");
}

#[test]
fn meta_that_is_a_directory_is_an_error_not_an_empty_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    ok(&store, &keyed(append("a"), b"k"));
    let path = meta_path(dir.path(), DEFAULT);
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    assert_eq!(meta::load(&path).expect_err("a directory").code(), "io");
    assert_eq!(err(&store, &keyed(append("a"), b"k")).code(), "io");
    assert_eq!(content(dir.path(), DEFAULT), "a\n", "nothing applied twice");
}

#[test]
fn a_journal_shorter_than_its_metadata_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    ok(&store, &keyed(append("a"), b"k"));
    std::fs::write(DataDir::new(dir.path()).journal(DEFAULT, 0), b"short").unwrap();
    let fresh = open(dir.path());
    assert_eq!(err(&fresh, &keyed(append("a"), b"k")).code(), "io");
    assert_eq!(content(dir.path(), DEFAULT), "a\n");
}

#[test]
fn old_entries_are_migrated_while_live_by_the_old_rule() {
    let now = T0;
    let old = |key: &str, rev: u64, at: u64| meta::Applied {
        key: key.into(),
        rev,
        lines: rev + 10,
        at,
    };
    let applied = [
        old(&hex::encode(b"edge"), 1, now - meta::APPLIED_TTL_SECS),
        old(&hex::encode(b"gone"), 2, now - meta::APPLIED_TTL_SECS - 1),
        old("not hex", 3, now),
        old(&hex::encode(b"new"), 4, now),
    ];
    let records = migrate(&applied, now, 300, 9);
    let key = |k: &[u8]| Keyed::of(&keyed(append("x"), k), DEFAULT, k, 300).key;
    let got: Vec<_> = records
        .iter()
        .map(|r| (r.key, r.fingerprint, r.rev, r.lines, r.expires, r.commit))
        .collect();
    assert_eq!(
        got,
        [
            (key(b"edge"), 0, 1, 11, now + 300, 9),
            (key(b"new"), 0, 4, 14, now + 300, 9)
        ]
    );
}

#[test]
fn the_identity_of_a_change_depends_on_key_and_content_only() {
    let id = |file: &str, action: Action, key: &[u8]| {
        let k = Keyed::of(&expiring(action, key, 5), file, key, 300);
        assert_eq!(k.retain_secs, 11);
        assert_ne!(k.fingerprint, 0, "0 is kept for migrated entries");
        (k.key, k.fingerprint)
    };
    let a = id("f", append("a"), b"k");
    assert_eq!(a, id("f", append("a"), b"k"));
    assert_eq!(a.0, id("g", append("a"), b"k").0);
    assert_ne!(a.0, id("f", append("a"), b"j").0);
    for other in [
        id("g", append("a"), b"k"),
        id("f", append("b"), b"k"),
        id("f", replace(1, "a"), b"k"),
        id("f", replace(2, "a"), b"k"),
    ] {
        assert_ne!(a.1, other.1);
    }
}

#[test]
fn each_commit_gets_its_own_tag() {
    assert_ne!(commit_tag(), commit_tag());
}
