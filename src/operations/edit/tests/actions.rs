//! Every action, its edge cases, revisions and expect_rev.

use super::*;

#[test]
fn open_creates_empty_default_file_at_rev_0() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(store.default_file(), DEFAULT);
    assert_eq!(store.dir(), dir.path());
    assert_eq!(content(dir.path(), DEFAULT), "");
    let o = ok(&store, &req(Action::Show));
    assert_eq!((o.file.as_str(), o.rev, o.lines), (DEFAULT, 0, 0));
    assert_eq!(o.content.as_deref(), Some(""));
    assert!(!o.replayed);
}

#[test]
fn open_keeps_existing_default_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DEFAULT), "kept\n").unwrap();
    let store = open(dir.path());
    assert_eq!(content(dir.path(), DEFAULT), "kept\n");
    assert_eq!(ok(&store, &req(Action::Show)).rev, 0);
}

#[test]
fn open_refuses_bad_default_name() {
    let dir = tempfile::tempdir().unwrap();
    let e = Store::open(dir.path(), "../x", EditLimits::default()).unwrap_err();
    assert_eq!(e.code(), "bad_request");
}

/// Each row: the actions applied in order to an empty default file and the
/// expected content afterwards.
#[test]
fn actions_table() {
    let table: Vec<(Vec<Action>, &str)> = vec![
        (vec![append("a")], "a\n"),
        (vec![append("a"), append("b")], "a\nb\n"),
        (vec![append(""), append("")], "\n\n"),
        (vec![replace(1, "x")], "x\n"),
        (vec![replace(3, "x")], "\n\nx\n"),
        (vec![append("a"), replace(1, "b")], "b\n"),
        (vec![append("a"), replace(4, "d")], "a\n\n\nd\n"),
        (vec![insert(1, "x")], "x\n"),
        (vec![append("a"), insert(1, "x")], "x\na\n"),
        (vec![append("a"), insert(2, "x")], "a\nx\n"),
        (vec![append("a"), insert(4, "x")], "a\n\n\nx\n"),
        (vec![append("a"), append("b"), insert(2, "m")], "a\nm\nb\n"),
        (vec![append("a"), Action::Delete { line: 1 }], ""),
        (
            vec![
                append("a"),
                append("b"),
                append("c"),
                Action::Delete { line: 2 },
            ],
            "a\nc\n",
        ),
        (vec![append("ünï©ødé ✓")], "ünï©ødé ✓\n"),
    ];
    for (actions, want) in table {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        for (i, a) in actions.iter().enumerate() {
            let o = ok(&store, &req(a.clone()));
            assert_eq!(o.rev, i as u64 + 1, "{actions:?}");
            assert_eq!(o.content, None);
        }
        assert_eq!(content(dir.path(), DEFAULT), want, "{actions:?}");
        let shown = ok(&store, &req(Action::Show));
        assert_eq!(shown.content.as_deref(), Some(want));
        assert_eq!(shown.lines, want.matches('\n').count() as u64);
        assert_eq!(shown.rev, actions.len() as u64);
    }
}

#[test]
fn line_zero_is_a_bad_request() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for a in [replace(0, "x"), insert(0, "x"), Action::Delete { line: 0 }] {
        let e = err(&store, &req(a));
        assert_eq!(e.code(), "bad_request");
        assert_eq!(e.to_string(), "line numbers start at 1, got 0");
    }
}

#[test]
fn bad_text_is_a_bad_request() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let table = [
        ("a\nb", "text contains a newline"),
        ("a\r", "text contains a carriage return"),
        ("a\0", "text contains a NUL byte"),
    ];
    for (text, msg) in table {
        for a in [append(text), replace(1, text), insert(1, text)] {
            let e = err(&store, &req(a));
            assert_eq!((e.code(), e.to_string().as_str()), ("bad_request", msg));
        }
    }
    assert_eq!(content(dir.path(), DEFAULT), "");
}

#[test]
fn delete_of_missing_line_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for t in ["a", "b", "c"] {
        ok(&store, &req(append(t)));
    }
    let e = err(&store, &req(Action::Delete { line: 9 }));
    assert_eq!(e.code(), "not_found");
    assert_eq!(
        e.to_string(),
        "line 9 does not exist (the file has 3 lines)"
    );
    assert_eq!(ok(&store, &req(Action::Show)).rev, 3);
}

#[test]
fn missing_file_show_and_delete_are_not_found_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for a in [Action::Show, Action::Delete { line: 1 }] {
        let e = err(&store, &on("x.txt", a));
        assert_eq!(e.code(), "not_found");
        assert_eq!(e.to_string(), "file \"x.txt\" does not exist");
    }
    assert!(!dir.path().join("x.txt").exists());
    assert!(!DataDir::new(dir.path()).lock("x.txt").exists());
}

#[test]
fn changes_create_missing_files_at_rev_1() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for (name, a) in [
        ("a", append("x")),
        ("b", replace(2, "x")),
        ("c", insert(1, "x")),
    ] {
        let o = ok(&store, &on(name, a));
        assert_eq!((o.file.as_str(), o.rev), (name, 1));
        assert!(!o.replayed);
    }
    assert_eq!(content(dir.path(), "b"), "\nx\n");
}

#[test]
fn expect_rev_match_and_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut r = req(append("a"));
    r.expect_rev = Some(0);
    assert_eq!(ok(&store, &r).rev, 1);
    // Same expectation again: the file moved on.
    let e = err(&store, &r);
    assert_eq!(e.code(), "conflict");
    assert_eq!(e.to_string(), "revision conflict: expected 0, file is at 1");
    assert_eq!(content(dir.path(), DEFAULT), "a\n");
    let mut show = req(Action::Show);
    show.expect_rev = Some(7);
    assert!(matches!(
        err(&store, &show),
        EditError::Conflict {
            expected: 7,
            actual: 1
        }
    ));
    show.expect_rev = Some(1);
    assert_eq!(ok(&store, &show).rev, 1);
    r.expect_rev = Some(1);
    assert_eq!(ok(&store, &r).rev, 2);
}

#[test]
fn expect_rev_on_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut r = on("new", append("a"));
    r.expect_rev = Some(3);
    assert!(matches!(
        err(&store, &r),
        EditError::Conflict {
            expected: 3,
            actual: 0
        }
    ));
    assert!(!dir.path().join("new").exists());
    r.expect_rev = Some(0);
    assert_eq!(ok(&store, &r).rev, 1);
}

#[test]
fn show_returns_file_text_as_is_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("raw"), "no newline at end").unwrap();
    let store = open(dir.path());
    let o = ok(&store, &on("raw", Action::Show));
    assert_eq!(o.content.as_deref(), Some("no newline at end"));
    assert_eq!((o.rev, o.lines), (0, 1));
    ok(&store, &on("raw", append("x")));
    assert_eq!(content(dir.path(), "raw"), "no newline at end\nx\n");
}

#[test]
fn non_utf8_file_is_a_bad_request() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bin"), [0xff, 0xfe, b'\n']).unwrap();
    let store = open(dir.path());
    for a in [Action::Show, append("x")] {
        let e = err(&store, &on("bin", a));
        assert_eq!(
            (e.code(), e.to_string().as_str()),
            ("bad_request", "file is not UTF-8 text")
        );
    }
    assert_eq!(
        std::fs::read(dir.path().join("bin")).unwrap(),
        [0xff, 0xfe, b'\n']
    );
}

#[test]
fn outcome_round_trips_through_json() {
    let o = Outcome {
        file: "f".into(),
        rev: 3,
        lines: 2,
        content: Some("a\nb\n".into()),
        replayed: false,
    };
    let json = serde_json::to_string(&o).unwrap();
    assert_eq!(serde_json::from_str::<Outcome>(&json).unwrap(), o);
}
