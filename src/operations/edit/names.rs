//! File-name validation: the only gate between a client-supplied name and
//! a path on disk.
//!
//! A name is accepted only if it is a single plain path component made of
//! `[A-Za-z0-9._-]`, 1 to 128 bytes, not starting with '.'. That rules out
//! separators, parent references, absolute paths, drive letters, NUL and
//! the store's own dot-files, on every platform, without touching the disk.

use super::EditError;

/// Longest accepted file name, in bytes.
pub(super) const MAX_NAME_BYTES: usize = 128;

/// Checks `name` and returns a [`EditError::BadName`] with the first reason
/// it is unacceptable.
pub(super) fn validate(name: &str) -> Result<(), EditError> {
    match reject_reason(name) {
        None => Ok(()),
        Some(reason) => Err(bad_name(name, reason)),
    }
}

/// True when `name` would be accepted as a data-file name; used to tell data
/// files from everything else when counting the directory.
pub(super) fn is_valid(name: &str) -> bool {
    reject_reason(name).is_none()
}

/// Builds the error for `name` refused because of `reason`.
pub(super) fn bad_name(name: &str, reason: &'static str) -> EditError {
    EditError::BadName {
        name: name.to_string(),
        reason,
    }
}

fn reject_reason(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("is empty");
    }
    if name == "." || name == ".." {
        return Some("refers to a directory");
    }
    if name.len() > MAX_NAME_BYTES {
        return Some("is longer than 128 bytes");
    }
    if name.contains('\0') {
        return Some("contains a NUL byte");
    }
    if name.contains(['/', '\\']) {
        return Some("contains a path separator");
    }
    if name.starts_with('.') {
        return Some("starts with '.' (reserved for the store)");
    }
    if !name.bytes().all(is_name_byte) {
        return Some("contains a character outside [A-Za-z0-9._-]");
    }
    None
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_refused_with_a_reason() {
        let long = "a".repeat(200);
        let table: &[(&str, &str)] = &[
            ("", "is empty"),
            (".", "refers to a directory"),
            ("..", "refers to a directory"),
            ("../x", "contains a path separator"),
            ("/etc/passwd", "contains a path separator"),
            ("a/b", "contains a path separator"),
            ("a\\b", "contains a path separator"),
            ("..\\..\\x", "contains a path separator"),
            ("x/", "contains a path separator"),
            (".hidden", "starts with '.' (reserved for the store)"),
            (
                crate::datadir::META_DIR,
                "starts with '.' (reserved for the store)",
            ),
            ("...", "starts with '.' (reserved for the store)"),
            ("a\0b", "contains a NUL byte"),
            (&long, "is longer than 128 bytes"),
            ("a b", "contains a character outside [A-Za-z0-9._-]"),
            ("C:x", "contains a character outside [A-Za-z0-9._-]"),
            ("é.txt", "contains a character outside [A-Za-z0-9._-]"),
            ("a\nb", "contains a character outside [A-Za-z0-9._-]"),
            ("*", "contains a character outside [A-Za-z0-9._-]"),
            ("~root", "contains a character outside [A-Za-z0-9._-]"),
        ];
        for (name, want) in table {
            match validate(name) {
                Err(EditError::BadName { name: got, reason }) => {
                    assert_eq!(&got, name);
                    assert_eq!(reason, *want, "name {name:?}");
                }
                other => panic!("{name:?} gave {other:?}"),
            }
            assert!(!is_valid(name));
        }
    }

    #[test]
    fn good_names_are_accepted() {
        let max = "b".repeat(MAX_NAME_BYTES);
        let good = [
            "a",
            "notes.txt",
            "NOTES.TXT",
            "a..b",
            "x.",
            "-dash",
            "_under",
            "v1.2.3-rc_4",
            "0",
            &max,
        ];
        for name in good {
            assert!(validate(name).is_ok(), "{name:?}");
            assert!(is_valid(name));
        }
    }

    #[test]
    fn bad_name_error_has_request_code() {
        let err = validate("../x").unwrap_err();
        assert_eq!(err.code(), "bad_request");
        assert_eq!(
            err.to_string(),
            "invalid file name \"../x\": contains a path separator"
        );
    }
}
