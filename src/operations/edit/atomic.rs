//! Durable, all-or-nothing file replacement and private directory creation.
//!
//! `write` is the only way the store changes a file: temporary file in the
//! target's directory, `write_all`, `sync_all`, rename over the target, then
//! `sync_all` on the directory so the rename itself survives a crash.
//! `tempfile`'s `persist` renames but does not fsync, hence both syncs here.
//! The rename replaces whatever the target path is (a symlink included)
//! rather than writing through it.
//!
//! The new file keeps the mode `tempfile` gives it (0600 on unix): the data
//! directory is private to the server, so files in it are too.

use std::io::Write;
use std::path::Path;

use super::error::io_err;
use super::EditError;

/// Replaces `path` with `bytes` atomically and durably.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<(), EditError> {
    let dir = parent(path);
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err(dir))?;
    tmp.write_all(bytes).map_err(io_err(tmp.path()))?;
    tmp.as_file().sync_all().map_err(io_err(tmp.path()))?;
    tmp.persist(path).map_err(|e| EditError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    sync_dir(dir)
}

/// Makes directory entries (creations, renames) in `dir` durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), EditError> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))
    }
    #[cfg(not(unix))]
    {
        // Directories cannot be opened as files here; NTFS journals renames.
        let _ = dir;
        Ok(())
    }
}

/// Creates `dir` and any missing parents with mode 0700 (on unix); an
/// existing directory is left as it is.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), EditError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io_err(dir))?;
    let md = std::fs::metadata(dir).map_err(io_err(dir))?;
    if !md.is_dir() {
        return Err(super::error::io_other(dir, "not a directory"));
    }
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_content_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write(&path, b"one\n").unwrap();
        write(&path, b"two\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f")]);
    }

    #[cfg(unix)]
    #[test]
    fn write_replaces_a_symlink_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, b"keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        write(&link, b"new").unwrap();
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
        assert!(!std::fs::symlink_metadata(&link).unwrap().is_symlink());
    }

    #[cfg(unix)]
    #[test]
    fn private_dirs_get_mode_0700_including_parents() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a").join("b");
        create_private_dir(&deep).unwrap();
        for p in [dir.path().join("a"), deep] {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{}", p.display());
        }
    }
}
