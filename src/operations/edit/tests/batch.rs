//! Batches: a burst of changes to one file, committed once.

use super::*;

#[test]
fn a_group_applies_changes_in_order_and_writes_them_only_at_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut b = store.batch();
    let revs: Vec<u64> = [("a", b"k1"), ("b", b"k2"), ("c", b"k3")]
        .iter()
        .map(|(text, key)| staged(&mut b, &keyed(append(text), *key)).rev)
        .collect();
    assert_eq!(revs, [1, 2, 3]);
    assert_eq!(
        content(dir.path(), DEFAULT),
        "",
        "nothing is written before the commit"
    );
    commit_all(b);
    assert_eq!(content(dir.path(), DEFAULT), "a\nb\nc\n");
    let meta = read_meta(dir.path(), DEFAULT);
    assert_eq!((meta.rev, meta.prev_rev), (3, 0));
    assert_eq!((meta.journal.len, meta.journal.prev_len), (3, 0));
    // Every change of the group is remembered for its re-send.
    let again = ok(&store, &keyed(append("b"), b"k2"));
    assert_eq!((again.rev, again.replayed), (2, true));
    assert_eq!(ok(&store, &req(append("d"))).rev, 4);
}

#[test]
fn replays_and_expected_revisions_work_inside_a_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut b = store.batch();
    assert_eq!(staged(&mut b, &keyed(append("a"), b"k")).rev, 1);
    let resent = staged(&mut b, &keyed(append("a"), b"k"));
    assert_eq!((resent.rev, resent.replayed), (1, true));
    let mut at_1 = req(append("b"));
    at_1.expect_rev = Some(1);
    assert_eq!(staged(&mut b, &at_1).rev, 2);
    assert!(matches!(
        refused(&mut b, &at_1),
        EditError::Conflict {
            expected: 1,
            actual: 2
        }
    ));
    commit_but(b, &["conflict"]);
    assert_eq!(content(dir.path(), DEFAULT), "a\nb\n");
}

#[test]
fn show_inside_a_group_commits_what_is_staged_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut b = store.batch();
    staged(&mut b, &req(append("x")));
    let shown = staged(&mut b, &req(Action::Show));
    assert_eq!((shown.rev, shown.content.as_deref()), (1, Some("x\n")));
    staged(&mut b, &req(append("y")));
    commit_all(b);
    assert_eq!(content(dir.path(), DEFAULT), "x\ny\n");
    assert_eq!(read_meta(dir.path(), DEFAULT).rev, 2);
}

#[test]
fn a_group_holds_one_file_at_a_time_and_commits_it_before_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut b = store.batch();
    staged(&mut b, &on("one", append("1")));
    staged(&mut b, &req(append("d")));
    assert_eq!(
        content(dir.path(), "one"),
        "1\n",
        "committed before notes.txt was locked"
    );
    staged(&mut b, &on("one", append("2")));
    assert!(matches!(
        refused(&mut b, &on("missing", Action::Delete { line: 1 })),
        EditError::NotFound(_)
    ));
    commit_but(b, &["not_found"]);
    assert_eq!(content(dir.path(), "one"), "1\n2\n");
    assert_eq!(content(dir.path(), DEFAULT), "d\n");
}

#[test]
fn one_group_may_create_several_files_within_max_files() {
    let dir = tempfile::tempdir().unwrap();
    let limits = EditLimits {
        max_files: 3,
        ..EditLimits::default()
    };
    let store = open_with(dir.path(), limits);
    let mut b = store.batch();
    staged(&mut b, &on("a", append("1")));
    staged(&mut b, &on("b", append("2")));
    staged(&mut b, &on("b", append("3")));
    // notes.txt, a and b: the directory is full, counting staged files.
    assert!(matches!(
        refused(&mut b, &on("c", append("4"))),
        EditError::Limit(_)
    ));
    commit_but(b, &["limit"]);
    assert_eq!(content(dir.path(), "a"), "1\n");
    assert_eq!(content(dir.path(), "b"), "2\n3\n");
    assert!(!dir.path().join("c").exists());
}

/// A crash between the group's two steps: the metadata says rev 2 with both
/// keys, the content is still what it was before the group.
#[test]
fn a_crash_between_the_steps_rolls_back_the_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    ok(&store, &req(append("before")));
    let mut b = store.batch();
    staged(&mut b, &keyed(append("a"), b"k1"));
    staged(&mut b, &keyed(append("b"), b"k2"));
    commit_all(b);
    std::fs::write(dir.path().join(DEFAULT), "before\n").unwrap();
    let shown = ok(&store, &req(Action::Show));
    assert_eq!(shown.rev, 1, "rolled back to the revision before the group");
    // Neither change is remembered: re-sends are applied anew.
    let a = ok(&store, &keyed(append("a"), b"k1"));
    let b = ok(&store, &keyed(append("b"), b"k2"));
    assert_eq!((a.rev, a.replayed, b.rev, b.replayed), (2, false, 3, false));
    assert_eq!(content(dir.path(), DEFAULT), "before\na\nb\n");
}

#[test]
fn a_failed_commit_fails_every_change_of_its_group_and_is_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut b = store.batch();
    staged(&mut b, &req(append("fine")));
    staged(&mut b, &on("new", append("a")));
    staged(&mut b, &on("new", append("b")));
    // The content cannot be renamed into place: a directory is in the way.
    std::fs::create_dir(dir.path().join("new")).unwrap();
    std::fs::write(dir.path().join("new").join("x"), "").unwrap();
    let answers = b.commit();
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert_eq!(answers[0].as_ref().map(|o| o.rev).ok(), Some(1));
    for failed in &answers[1..] {
        let e = failed.as_ref().expect_err("the commit of \"new\" failed");
        assert_eq!(e.code(), "io");
        assert!(e.to_string().contains("new"), "{e}");
    }
    assert_eq!(content(dir.path(), DEFAULT), "fine\n", "other files commit");
    std::fs::remove_dir_all(dir.path().join("new")).unwrap();
    // The metadata step had landed; reconciliation takes it back.
    let again = ok(&store, &on("new", append("a")));
    assert_eq!((again.rev, again.replayed), (1, false));
}

#[test]
fn a_replay_of_a_committed_change_stays_answered_when_the_batch_commit_fails() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    ok(&store, &keyed(append("a"), b"k1"));
    ok(&store, &keyed(append("b"), b"k2"));
    let mut b = store.batch();
    // Copies of changes committed before the batch (the file is at rev 2).
    let old = staged(&mut b, &keyed(append("a"), b"k1"));
    let last = staged(&mut b, &keyed(append("b"), b"k2"));
    assert_eq!((old.rev, last.rev, last.replayed), (1, 2, true));
    staged(&mut b, &keyed(append("c"), b"k3"));
    let copy = staged(&mut b, &keyed(append("c"), b"k3"));
    assert_eq!((copy.rev, copy.replayed), (3, true));
    // The content cannot be renamed into place: a directory is in the way.
    std::fs::remove_file(dir.path().join(DEFAULT)).unwrap();
    std::fs::create_dir(dir.path().join(DEFAULT)).unwrap();
    std::fs::write(dir.path().join(DEFAULT).join("x"), "").unwrap();
    let answers = b.commit();
    let summary: Vec<Result<(u64, bool), &str>> = answers
        .iter()
        .map(|a| {
            a.as_ref()
                .map(|o| (o.rev, o.replayed))
                .map_err(|e| e.code())
        })
        .collect();
    // The change of the failed commit and its copy fail; the replays of
    // what was committed before stay true.
    assert_eq!(
        summary,
        [Ok((1, true)), Ok((2, true)), Err("io"), Err("io")]
    );
}

#[test]
fn a_change_to_an_existing_file_needs_no_room_for_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let limits = EditLimits {
        max_files: 1,
        ..EditLimits::default()
    };
    let store = open_with(dir.path(), limits);
    let mut b = store.batch();
    staged(&mut b, &req(append("a")));
    staged(&mut b, &req(append("b")));
    assert_eq!(refused(&mut b, &on("other", append("c"))).code(), "limit");
    commit_but(b, &["limit"]);
    assert_eq!(content(dir.path(), DEFAULT), "a\nb\n");
}
