//! Reading data files without ever following a symlink.
//!
//! The path is examined with `symlink_metadata` (lstat): a symlink or
//! anything but a regular file is refused. On unix the opened handle's
//! device and inode are then compared with what lstat saw, so a symlink
//! swapped in between the check and the open is detected rather than
//! followed. Sizes are checked before any buffer is allocated.

use std::fs::Metadata;
use std::io::Read;
use std::path::Path;

use super::error::{io_err, io_other};
use super::names;
use super::EditError;

/// Whether the data file `name` at `path` exists; `Err(BadName)` when the
/// path is a symlink or not a regular file.
pub(super) fn exists(path: &Path, name: &str) -> Result<bool, EditError> {
    Ok(lstat(path, name)?.is_some())
}

/// The bytes of data file `name` at `path`, or `None` when it does not
/// exist. Refuses files larger than `max_bytes` without reading them.
pub(super) fn read(path: &Path, name: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, EditError> {
    let Some(md) = lstat(path, name)? else {
        return Ok(None);
    };
    if has_other_links(&md) {
        return Err(names::bad_name(
            name,
            "has other hard links (it may be a file outside the data directory)",
        ));
    }
    check_size(md.len(), max_bytes)?;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    let opened = file.metadata().map_err(io_err(path))?;
    if !same_file(&md, &opened) {
        return Err(io_other(path, "file was replaced while being opened"));
    }
    // `md.len() <= max_bytes` here, so the capacity is bounded by the limit.
    let mut buf = Vec::with_capacity(usize::try_from(md.len()).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(io_err(path))?;
    check_size(buf.len() as u64, max_bytes)?;
    Ok(Some(buf))
}

/// Counts the data files in `dir` (regular files with valid names), stopping
/// once `stop_at` is reached since only "at least this many" matters.
pub(super) fn count_data_files(dir: &Path, stop_at: usize) -> Result<usize, EditError> {
    let mut count = 0;
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        if count >= stop_at {
            break;
        }
        let entry = entry.map_err(io_err(dir))?;
        let is_data = entry.file_name().to_str().is_some_and(names::is_valid);
        // DirEntry::file_type does not follow symlinks.
        if is_data && entry.file_type().map_err(io_err(dir))?.is_file() {
            count += 1;
        }
    }
    Ok(count)
}

fn lstat(path: &Path, name: &str) -> Result<Option<Metadata>, EditError> {
    let md = match std::fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    if md.file_type().is_symlink() {
        return Err(names::bad_name(name, "is a symlink"));
    }
    if !md.is_file() {
        return Err(names::bad_name(name, "is not a regular file"));
    }
    Ok(Some(md))
}

fn check_size(len: u64, max_bytes: u64) -> Result<(), EditError> {
    if len > max_bytes {
        return Err(EditError::Limit(format!(
            "file is {len} bytes, limit is {max_bytes}"
        )));
    }
    Ok(())
}

#[cfg(unix)]
fn same_file(a: &Metadata, b: &Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// A hard link planted in the data directory could expose a file from
/// elsewhere (`show`); the store itself only ever creates single links.
#[cfg(unix)]
fn has_other_links(md: &Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    md.nlink() > 1
}

#[cfg(not(unix))]
fn has_other_links(_md: &Metadata) -> bool {
    false
}

#[cfg(not(unix))]
fn same_file(_a: &Metadata, b: &Metadata) -> bool {
    b.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(&dir.path().join("x"), "x", 10).unwrap().is_none());
        assert!(!exists(&dir.path().join("x"), "x").unwrap());
    }

    #[test]
    fn oversized_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::write(&p, b"12345").unwrap();
        let err = read(&p, "x", 4).unwrap_err();
        assert_eq!(err.to_string(), "file is 5 bytes, limit is 4");
        assert_eq!(read(&p, "x", 5).unwrap().unwrap(), b"12345");
    }

    #[cfg(unix)]
    #[test]
    fn hard_linked_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, b"secret").unwrap();
        std::fs::hard_link(&outside, dir.path().join("x")).unwrap();
        let err = read(&dir.path().join("x"), "x", 100).unwrap_err();
        assert!(err.to_string().contains("hard links"), "{err}");
    }

    #[test]
    fn directory_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        let err = read(&dir.path().join("d"), "d", 10).unwrap_err();
        assert!(err.to_string().ends_with("is not a regular file"), "{err}");
    }

    #[test]
    fn counting_skips_dot_files_dirs_and_bad_names() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["a", "b.txt", ".hidden", "bad name"] {
            std::fs::write(dir.path().join(n), b"").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert_eq!(count_data_files(dir.path(), 100).unwrap(), 2);
        assert_eq!(count_data_files(dir.path(), 1).unwrap(), 1);
    }
}
