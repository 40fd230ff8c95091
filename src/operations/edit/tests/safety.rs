//! Confinement (names, symlinks), limits and directory permissions.

use super::*;

/// Names that must never reach the disk (plus a 200-byte one, built at run
/// time).
const BAD_NAMES: [&str; 16] = [
    "../x",
    "/etc/passwd",
    "a/b",
    "a\\b",
    "",
    ".",
    "..",
    ".hidden",
    META_DIR,
    "a\0b",
    "../../etc/shadow",
    "sub/../x",
    "x y",
    "C:\\x",
    "tab\t",
    "quote\"",
];

#[test]
fn bad_names_are_refused_by_apply_and_touch_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for name in BAD_NAMES.iter().copied().chain(["x".repeat(200).as_str()]) {
        for a in [
            Action::Show,
            append("x"),
            replace(1, "x"),
            Action::Delete { line: 1 },
        ] {
            let e = err(&store, &on(name, a));
            assert!(matches!(e, EditError::BadName { .. }), "{name:?}: {e:?}");
            assert_eq!(e.code(), "bad_request");
        }
    }
    let mut entries: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, [META_DIR, DEFAULT]);
}

#[test]
fn good_names_work() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let max = "m".repeat(128);
    for name in ["a", "b.txt", "x-y_z.1", "UPPER", "a..b", max.as_str()] {
        assert_eq!(ok(&store, &on(name, append("hi"))).rev, 1, "{name}");
        assert_eq!(content(dir.path(), name), "hi\n");
    }
}

#[cfg(unix)]
#[test]
fn symlink_pointing_outside_is_refused_and_target_untouched() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("secret");
    std::fs::write(&target, "secret\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    std::os::unix::fs::symlink(&target, dir.path().join("link")).unwrap();
    for a in [
        Action::Show,
        append("x"),
        replace(1, "x"),
        insert(1, "x"),
        Action::Delete { line: 1 },
    ] {
        let e = err(&store, &on("link", a));
        assert_eq!(e.to_string(), "invalid file name \"link\": is a symlink");
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "secret\n");
    assert!(std::fs::symlink_metadata(dir.path().join("link"))
        .unwrap()
        .is_symlink());
}

#[cfg(unix)]
#[test]
fn symlinked_default_file_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join(DEFAULT)).unwrap();
    let e = Store::open(dir.path(), DEFAULT, EditLimits::default()).unwrap_err();
    assert!(
        matches!(
            e,
            EditError::BadName {
                reason: "is a symlink",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn directory_in_place_of_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    std::fs::create_dir(dir.path().join("d")).unwrap();
    let e = err(&store, &on("d", append("x")));
    assert_eq!(
        e.to_string(),
        "invalid file name \"d\": is not a regular file"
    );
}

#[test]
fn huge_line_number_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for a in [
        replace(1_000_000_000_000, "x"),
        insert(1_000_000_000_000, "x"),
        Action::Delete { line: u64::MAX },
    ] {
        let e = err(&store, &req(a));
        assert_eq!(e.code(), "limit");
    }
    let e = err(&store, &req(replace(1_000_000_000_000, "x")));
    assert_eq!(
        e.to_string(),
        "line 1000000000000 is past the limit of 100000 lines"
    );
}

#[test]
fn line_and_file_size_limits() {
    let dir = tempfile::tempdir().unwrap();
    let limits = EditLimits {
        max_file_bytes: 20,
        max_lines: 3,
        max_line_bytes: 8,
        max_files: 10,
    };
    let store = open_with(dir.path(), limits);
    let e = err(&store, &req(append("123456789")));
    assert_eq!(e.to_string(), "line is 9 bytes, limit is 8");
    ok(&store, &req(append("12345678")));
    ok(&store, &req(append("12345678")));
    let e = err(&store, &req(append("123")));
    assert_eq!(e.to_string(), "file would be 22 bytes, limit is 20");
    ok(&store, &req(append("1")));
    let e = err(&store, &req(append("")));
    assert_eq!(e.to_string(), "file would have 4 lines, limit is 3");
    // Padding lines count towards the limits.
    assert_eq!(ok(&store, &on("pad", replace(3, "12345678"))).lines, 3);
    let e = err(&store, &on("pad", insert(2, "")));
    assert_eq!(e.to_string(), "file would have 4 lines, limit is 3");
    assert_eq!(content(dir.path(), DEFAULT), "12345678\n12345678\n1\n");
    assert_eq!(ok(&store, &req(Action::Show)).rev, 3);
}

#[test]
fn oversized_file_on_disk_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let limits = EditLimits {
        max_file_bytes: 10,
        ..EditLimits::default()
    };
    let store = open_with(dir.path(), limits);
    std::fs::write(dir.path().join("big"), "0123456789ABC\n").unwrap();
    let e = err(&store, &on("big", Action::Show));
    assert_eq!(e.to_string(), "file is 14 bytes, limit is 10");
}

#[test]
fn too_many_files() {
    let dir = tempfile::tempdir().unwrap();
    let limits = EditLimits {
        max_files: 3,
        ..EditLimits::default()
    };
    let store = open_with(dir.path(), limits);
    std::fs::write(dir.path().join("by-hand"), "x\n").unwrap();
    ok(&store, &on("third", append("a")));
    let e = err(&store, &on("fourth", append("a")));
    assert_eq!(e.to_string(), "too many files (limit 3)");
    assert!(!dir.path().join("fourth").exists());
    // Existing files can still change.
    assert_eq!(ok(&store, &on("third", append("b"))).rev, 2);
    std::fs::remove_file(dir.path().join("by-hand")).unwrap();
    assert_eq!(ok(&store, &on("fourth", append("a"))).rev, 1);
}

#[test]
fn long_replay_key_and_empty_key_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut r = req(append("a"));
    r.replay_key = Some(vec![7; 257]);
    assert_eq!(err(&store, &r).code(), "limit");
    r.replay_key = Some(Vec::new());
    assert_eq!(err(&store, &r).code(), "bad_request");
    r.replay_key = Some(vec![7; 256]);
    ok(&store, &r);
}

#[cfg(unix)]
#[test]
fn data_dir_is_created_with_mode_0700() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("new").join("data");
    let store = open(&dir);
    for p in [parent.path().join("new"), dir.clone(), dir.join(META_DIR)] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", p.display());
    }
    ok(&store, &req(append("a")));
    let mode = std::fs::metadata(dir.join(DEFAULT))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}
