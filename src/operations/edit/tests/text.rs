//! Unit tests of the line model and limit prediction.

use super::super::text::{apply, check_change, render, split};
use super::*;

#[test]
fn split_and_render() {
    let table: &[(&str, &[&str], &str)] = &[
        ("", &[], ""),
        ("\n", &[""], "\n"),
        ("a", &["a"], "a\n"),
        ("a\n", &["a"], "a\n"),
        ("a\nb", &["a", "b"], "a\nb\n"),
        ("a\n\n", &["a", ""], "a\n\n"),
        ("\n\n\n", &["", "", ""], "\n\n\n"),
        ("a\r\nb\r\n", &["a\r", "b\r"], "a\r\nb\r\n"),
    ];
    for (input, lines, rendered) in table {
        assert_eq!(&split(input), lines, "{input:?}");
        assert_eq!(&render(lines), rendered, "{input:?}");
    }
}

/// check_change must predict exactly the size `apply` then produces.
#[test]
fn predicted_size_matches_result() {
    let base = ["abc", "", "de"];
    let actions = [
        append("xyz"),
        replace(1, ""),
        replace(2, "longer"),
        replace(7, "p"),
        insert(1, "i"),
        insert(4, "i"),
        insert(9, "i"),
        Action::Delete { line: 3 },
    ];
    for a in actions {
        let mut lines: Vec<String> = base.iter().map(|s| s.to_string()).collect();
        apply(&a, &mut lines);
        let size = render(&lines).len() as u64;
        let count = lines.len() as u64;
        let exact = EditLimits {
            max_file_bytes: size,
            max_lines: count,
            ..EditLimits::default()
        };
        assert!(check_change(&a, &base, &exact).is_ok(), "{a:?}");
        if matches!(a, Action::Delete { .. }) {
            continue;
        }
        let tight = EditLimits {
            max_file_bytes: size - 1,
            ..exact
        };
        assert_eq!(
            check_change(&a, &base, &tight).unwrap_err().code(),
            "limit",
            "{a:?}"
        );
    }
}

#[test]
fn predictions_saturate_instead_of_overflowing() {
    let huge = EditLimits {
        max_file_bytes: u64::MAX,
        max_lines: u64::MAX,
        ..EditLimits::default()
    };
    let lines = ["a"];
    for a in [insert(u64::MAX, "x"), replace(u64::MAX, "x")] {
        // Must not panic; the result is at the saturated bound.
        assert!(check_change(&a, &lines, &huge).is_ok(), "{a:?}");
    }
}
