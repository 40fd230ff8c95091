//! Edits across hosts: which servers may apply edits.
//!
//! A data directory has an identity, a random id kept in its metadata
//! directory (`<data-dir>/.mqttapp/data-dir-id`), and a server that takes
//! edits advertises it in its status (`data_dir`). The files of one group
//! live in ONE data directory: the servers that share it (one host, or a
//! shared mount whose file locks work) may all take edits, since the edit
//! store's locks serialise them; members on other hosts run with
//! `--no-edit` and answer calc and echo only. A server that would take
//! edits refuses to start when an online member of its group advertises
//! another data directory, so no file gets two diverging histories
//! (docs/EDITS_ACROSS_HOSTS.md).
//!
//! For this to route edits, group members subscribe per operation
//! (`$share/<group>/<prefix>/v1/req/<op>` for each operation they serve)
//! instead of `.../req/+`: a shared subscription hands each message to one
//! member among those with the same filter.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::protocol::{Op, Topics};
use crate::status::ServerRow;

/// Why this server must not take edits.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// Another data directory already takes the group's edits.
    #[error("server {other} of group {group} takes edits in another data directory ({other_id}; this one, {path}, is {mine}): two copies of the files would diverge - start this server with --no-edit (it then answers calc and echo), or give it the same data directory (docs/EDITS_ACROSS_HOSTS.md)")]
    TwoOwners {
        /// The group.
        group: String,
        /// The other server's id.
        other: String,
        /// Its data directory id.
        other_id: String,
        /// This server's data directory.
        path: String,
        /// Its id.
        mine: String,
    },
}

fn id_path(data_dir: &Path) -> PathBuf {
    crate::datadir::DataDir::new(data_dir).id_file()
}

/// The id of `data_dir`, created on first use (in the metadata directory
/// the edit store created, with its permissions). `None` (logged) when it
/// cannot be written: the server then advertises no id.
pub fn id_of(data_dir: &Path) -> Option<String> {
    match load_or_create(data_dir) {
        Ok(id) => Some(id),
        Err(e) => {
            tracing::warn!(error = %e, dir = %data_dir.display(), "cannot read or create the data directory's id");
            None
        }
    }
}

/// The id of `data_dir` if it has one yet; creates nothing.
fn read(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(id_path(data_dir)).ok()?;
    let id = text.trim().to_string();
    (!id.is_empty()).then_some(id)
}

fn load_or_create(data_dir: &Path) -> std::io::Result<String> {
    if let Some(id) = read(data_dir) {
        return Ok(id);
    }
    let path = id_path(data_dir);
    let id = format!("{:016x}", crate::ids::random_u64());
    // Write aside, then link into place: of two servers creating it at
    // once, one wins and both read the winner's id.
    let tmp = path.with_extension(format!("tmp-{id}"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(id.as_bytes())?;
    f.sync_all()?;
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(id),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(&path)?.trim().to_string())
        }
        Err(e) => Err(e),
    }
}

/// The operations a server offers: all, or all but edit (`--no-edit`).
pub fn served_ops(no_edit: bool) -> Vec<Op> {
    Op::ALL
        .into_iter()
        .filter(|op| !(no_edit && *op == Op::Edit))
        .collect()
}

/// The request filters of a server: `.../req/+` for a lone server that
/// serves everything, one filter per operation otherwise (module docs).
pub fn request_filters(prefix: &str, group: Option<&str>, no_edit: bool) -> Vec<String> {
    let topics = Topics::new(prefix);
    if group.is_none() && !no_edit {
        return vec![topics.request_filter()];
    }
    served_ops(no_edit)
        .into_iter()
        .map(|op| Topics::shared(&topics.request(op), group))
        .collect()
}

/// The scatter-gather filters of a server: `<prefix>/v1/all/req/+`, or
/// one per operation served with `--no-edit`. Never shared (`$share`),
/// group or not: a request to all servers must reach every member, not
/// one member of each group.
pub fn all_filters(prefix: &str, no_edit: bool) -> Vec<String> {
    let topics = Topics::new(prefix);
    if !no_edit {
        return vec![topics.all_request_filter()];
    }
    served_ops(no_edit)
        .into_iter()
        .map(|op| topics.all_request(op))
        .collect()
}

/// Request filters an earlier run with this client id may have left in
/// its persistent session (`.../req/+`, or per-operation ones) that this
/// run does not use: kept, they would match the same requests as ours
/// and deliver them twice (after an upgrade, or a change of `--no-edit`).
pub fn stale_filters(prefix: &str, group: Option<&str>, no_edit: bool) -> Vec<String> {
    let mut current = request_filters(prefix, group, no_edit);
    current.extend(all_filters(prefix, no_edit));
    let topics = Topics::new(prefix);
    std::iter::once(Topics::shared(&topics.request_filter(), group))
        .chain(Op::ALL.map(|op| Topics::shared(&topics.request(op), group)))
        .chain(std::iter::once(topics.all_request_filter()))
        .chain(Op::ALL.map(|op| topics.all_request(op)))
        .filter(|f| !current.contains(f))
        .collect()
}

/// Before serving: refuses to take edits when an online member of the
/// same group advertises another data directory.
///
/// # Errors
/// [`DataDirError::TwoOwners`].
pub fn check_owner(config: &Config, rows: &[ServerRow]) -> Result<(), DataDirError> {
    let Some(group) = config.group.as_deref() else {
        return Ok(());
    };
    if config.no_edit {
        return Ok(());
    }
    // Runs before the store creates anything: a directory without an id
    // yet is a new one, other than any directory already in use.
    let mine = read(&config.data_dir).unwrap_or_else(|| "new, no id yet".into());
    let other = rows.iter().find(|r| {
        r.is_online()
            && r.id != config.server_id
            && r.group.as_deref() == Some(group)
            && r.ops.iter().any(|o| o == Op::Edit.as_str())
            && r.data_dir.as_deref().is_some_and(|d| d != mine)
    });
    match other {
        Some(r) => Err(DataDirError::TwoOwners {
            group: group.to_string(),
            other: r.id.clone(),
            other_id: r.data_dir.clone().unwrap_or_default(),
            path: config.data_dir.display().to_string(),
            mine,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_directory_keeps_its_id() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()), None);
        assert_eq!(
            id_of(dir.path()),
            None,
            "the store creates the metadata dir"
        );
        std::fs::create_dir(dir.path().join(crate::datadir::META_DIR)).unwrap();
        let a = id_of(dir.path()).unwrap();
        assert_eq!(id_of(dir.path()).unwrap(), a);
        assert_eq!(read(dir.path()).unwrap(), a);
        let other = tempfile::tempdir().unwrap();
        std::fs::create_dir(other.path().join(crate::datadir::META_DIR)).unwrap();
        assert_ne!(id_of(other.path()).unwrap(), a);
    }

    #[test]
    fn group_members_subscribe_per_operation() {
        assert_eq!(request_filters("p", None, false), vec!["p/v1/req/+"]);
        assert_eq!(
            request_filters("p", Some("g"), true),
            vec!["$share/g/p/v1/req/calc", "$share/g/p/v1/req/echo"]
        );
        assert_eq!(request_filters("p", Some("g"), false).len(), 3);
        assert_eq!(
            request_filters("p", None, true),
            vec!["p/v1/req/calc", "p/v1/req/echo"]
        );
        assert_eq!(
            stale_filters("p", Some("g"), true),
            vec![
                "$share/g/p/v1/req/+",
                "$share/g/p/v1/req/edit",
                "p/v1/all/req/+",
                "p/v1/all/req/edit"
            ]
        );
        assert_eq!(stale_filters("p", None, false).len(), 6);
    }

    #[test]
    fn every_server_takes_requests_for_all_unshared() {
        assert_eq!(all_filters("p", false), vec!["p/v1/all/req/+"]);
        assert_eq!(
            all_filters("p", true),
            vec!["p/v1/all/req/calc", "p/v1/all/req/echo"]
        );
    }
}
