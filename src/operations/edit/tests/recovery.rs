//! Replay memory, crash recovery and hand edits.

use super::super::meta::{self, Applied, JournalState, Meta, Reconciled};
use super::*;

#[test]
fn replay_returns_original_outcome_and_changes_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let first = ok(&store, &keyed(append("a"), b"k1"));
    ok(&store, &req(append("b")));
    let again = ok(&store, &keyed(append("a"), b"k1"));
    assert_eq!(
        (again.rev, again.lines, again.replayed),
        (first.rev, first.lines, true)
    );
    assert_eq!(again.content, None);
    assert_eq!(content(dir.path(), DEFAULT), "a\nb\n");
    // A replay wins over a now-stale expect_rev.
    let mut stale = keyed(append("a"), b"k1");
    stale.expect_rev = Some(0);
    assert!(ok(&store, &stale).replayed);
    // A new key is applied.
    assert_eq!(ok(&store, &keyed(append("c"), b"k2")).rev, 3);
    // Show ignores keys.
    let shown = ok(&store, &keyed(Action::Show, b"k1"));
    assert!(!shown.replayed);
    assert_eq!(shown.content.as_deref(), Some("a\nb\nc\n"));
}

#[test]
fn replay_keys_are_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    ok(&store, &keyed(append("a"), b"k"));
    let mut other = keyed(append("a"), b"k");
    other.file = Some("other".into());
    assert!(!ok(&store, &other).replayed);
}

/// Simulates a crash after step (1): metadata says rev 2 with the new hash
/// and the key, the content is still at rev 1.
#[test]
fn crash_between_meta_and_content_is_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    ok(&store, &req(append("a")));
    let before = read_meta(dir.path(), DEFAULT);
    // Step (1) of a keyed change to "a\nb\n": journal record and metadata.
    let mut b = store.batch();
    staged(&mut b, &keyed(append("b"), b"lost"));
    commit_all(b);
    std::fs::write(dir.path().join(DEFAULT), "a\n").unwrap();
    let crashed = read_meta(dir.path(), DEFAULT);
    assert_eq!((crashed.rev, crashed.journal.len), (2, 1));

    let shown = ok(&store, &req(Action::Show));
    assert_eq!((shown.rev, shown.lines), (1, 1));
    let after = read_meta(dir.path(), DEFAULT);
    assert_eq!((after.rev, &after.hash), (1, &before.hash));
    assert_eq!(after.journal.len, 0, "the lost change's entry is forgotten");

    // The retry is applied, not answered from memory.
    let retried = ok(&store, &keyed(append("b"), b"lost"));
    assert_eq!(
        (retried.rev, retried.lines, retried.replayed),
        (2, 2, false)
    );
    assert_eq!(content(dir.path(), DEFAULT), "a\nb\n");
    assert!(ok(&store, &keyed(append("b"), b"lost")).replayed);
}

#[test]
fn crash_while_creating_a_file_is_rolled_back_to_rev_0() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let fresh = Meta::fresh(meta::ABSENT);
    let crashed = fresh.after(1, meta::content_hash(Some(b"x\n")), JournalState::default());
    meta::save(&meta_path(dir.path(), "new"), &crashed).unwrap();
    assert_eq!(err(&store, &on("new", Action::Show)).code(), "not_found");
    assert_eq!(read_meta(dir.path(), "new").rev, 0);
    assert_eq!(ok(&store, &on("new", append("x"))).rev, 1);
}

#[test]
fn hand_edit_bumps_rev() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    ok(&store, &req(append("a")));
    ok(&store, &req(append("b")));
    std::fs::write(dir.path().join(DEFAULT), "edited\n").unwrap();
    let shown = ok(&store, &req(Action::Show));
    assert_eq!((shown.rev, shown.lines), (3, 1));
    assert_eq!(
        ok(&store, &req(Action::Show)).rev,
        3,
        "stable once accepted"
    );
    assert_eq!(ok(&store, &req(append("c"))).rev, 4);
    // A hand-deleted file is a hand edit too; recreating it continues.
    std::fs::remove_file(dir.path().join(DEFAULT)).unwrap();
    assert_eq!(err(&store, &req(Action::Show)).code(), "not_found");
    assert_eq!(ok(&store, &req(append("d"))).rev, 6);
}

#[test]
fn hand_placed_file_starts_at_rev_0() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    std::fs::write(dir.path().join("placed"), "x\ny\n").unwrap();
    assert_eq!(ok(&store, &on("placed", Action::Show)).rev, 0);
    assert_eq!(ok(&store, &on("placed", Action::Delete { line: 1 })).rev, 1);
}

#[test]
fn corrupt_meta_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    std::fs::write(meta_path(dir.path(), DEFAULT), "{not json").unwrap();
    assert_eq!(err(&store, &req(append("a"))).code(), "io");
    assert_eq!(content(dir.path(), DEFAULT), "");
}

#[test]
fn reconcile_table() {
    let m = Meta {
        rev: 5,
        hash: "new".into(),
        prev_rev: 4,
        prev_hash: "old".into(),
        applied: vec![entry("k4", 4, 0), entry("k5", 5, 0)],
        journal: JournalState {
            gen: 2,
            len: 7,
            prev_len: 5,
        },
    };
    let (same, how) = Meta::reconcile(Some(m.clone()), "new");
    assert_eq!((how, &same), (Reconciled::Consistent, &m));
    let (back, how) = Meta::reconcile(Some(m.clone()), "old");
    assert_eq!(
        (how, back.rev, back.hash.as_str()),
        (Reconciled::RolledBack, 4, "old")
    );
    assert_eq!(back.applied, vec![entry("k4", 4, 0)]);
    assert_eq!((back.journal.len, back.journal.gen), (5, 2));
    let (ext, how) = Meta::reconcile(Some(m), "other");
    assert_eq!(
        (how, ext.rev, ext.hash.as_str()),
        (Reconciled::External, 6, "other")
    );
    assert_eq!((ext.prev_rev, ext.prev_hash.as_str()), (6, "other"));
    assert_eq!((ext.journal.len, ext.journal.prev_len), (7, 7));
    let (none, how) = Meta::reconcile(None, "h");
    assert_eq!(
        (how, none.rev, none.hash.as_str()),
        (Reconciled::Consistent, 0, "h")
    );
}

fn entry(key: &str, rev: u64, at: u64) -> Applied {
    Applied {
        key: key.into(),
        rev,
        lines: 1,
        at,
    }
}

#[test]
fn removed_bookkeeping_dir_is_recreated() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    ok(&store, &req(append("a")));
    std::fs::remove_dir_all(DataDir::new(dir.path()).meta_dir()).unwrap();
    // Without metadata the file counts as never changed by the store.
    assert_eq!(ok(&store, &req(Action::Show)).rev, 0);
    assert_eq!(ok(&store, &req(append("b"))).rev, 1);
    assert_eq!(content(dir.path(), DEFAULT), "a\nb\n");
}
