//! Tests of the edit module through [`Store::apply`], plus unit tests of the
//! pure parts (line model, reconciliation).

mod actions;
mod batch;
mod concurrency;
mod model;
mod recovery;
mod replay;
mod safety;
mod text;

use std::path::Path;

use crate::datadir::{DataDir, META_DIR};

use super::{Action, Batch, EditError, EditLimits, EditRequest, Outcome, Store};

const DEFAULT: &str = "notes.txt";

fn open(dir: &Path) -> Store {
    Store::open(dir, DEFAULT, EditLimits::default()).expect("open store")
}

fn open_with(dir: &Path, limits: EditLimits) -> Store {
    Store::open(dir, DEFAULT, limits).expect("open store")
}

/// A request on the default file.
fn req(action: Action) -> EditRequest {
    EditRequest {
        action,
        file: None,
        expect_rev: None,
        replay_key: None,
        expiry_secs: None,
    }
}

/// A request on `file`.
fn on(file: &str, action: Action) -> EditRequest {
    EditRequest {
        file: Some(file.to_string()),
        ..req(action)
    }
}

fn append(text: &str) -> Action {
    Action::Append { text: text.into() }
}

fn replace(line: u64, text: &str) -> Action {
    Action::Replace {
        line,
        text: text.into(),
    }
}

fn insert(line: u64, text: &str) -> Action {
    Action::Insert {
        line,
        text: text.into(),
    }
}

fn ok(store: &Store, r: &EditRequest) -> Outcome {
    match store.apply(r) {
        Ok(o) => o,
        Err(e) => panic!("{r:?} failed: {e}"),
    }
}

/// A change staged in `batch` (its answer is not final before the commit).
fn staged(batch: &mut Batch<'_>, r: &EditRequest) -> Outcome {
    match batch.apply(r) {
        Ok(o) => o.clone(),
        Err(e) => panic!("{r:?} failed: {e}"),
    }
}

/// A request `batch` refused at once.
fn refused(batch: &mut Batch<'_>, r: &EditRequest) -> EditError {
    match batch.apply(r) {
        Ok(o) => panic!("{r:?} succeeded: {o:?}"),
        Err(e) => e.duplicate(),
    }
}

/// Commits `batch`, whose answers must all be final and successful but
/// for the `refusals` given at once (their codes, in order).
fn commit_but(batch: Batch<'_>, refusals: &[&str]) -> Vec<Outcome> {
    let (mut ok, mut codes) = (Vec::new(), Vec::new());
    for answer in batch.commit() {
        match answer {
            Ok(o) => ok.push(o),
            Err(e) => codes.push(e.code()),
        }
    }
    assert_eq!(codes, refusals);
    ok
}

/// Commits `batch`; every answer must be final and successful.
fn commit_all(batch: Batch<'_>) -> Vec<Outcome> {
    batch
        .commit()
        .into_iter()
        .map(|a| a.unwrap_or_else(|e| panic!("commit failed: {e}")))
        .collect()
}

fn err(store: &Store, r: &EditRequest) -> EditError {
    match store.apply(r) {
        Ok(o) => panic!("{r:?} succeeded: {o:?}"),
        Err(e) => e,
    }
}

/// A request on the default file with a replay key.
fn keyed(action: Action, key: &[u8]) -> EditRequest {
    EditRequest {
        replay_key: Some(key.to_vec()),
        ..req(action)
    }
}

fn meta_path(dir: &Path, name: &str) -> std::path::PathBuf {
    DataDir::new(dir).meta(name)
}

fn read_meta(dir: &Path, name: &str) -> super::meta::Meta {
    super::meta::load(&meta_path(dir, name))
        .unwrap()
        .expect("meta exists")
}

fn content(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).expect("read data file")
}

#[test]
fn store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
}

#[test]
fn error_codes() {
    let io = std::io::Error::other("x");
    let table: Vec<(EditError, &str)> = vec![
        (
            EditError::BadName {
                name: "x".into(),
                reason: "r",
            },
            "bad_request",
        ),
        (EditError::BadRequest("x".into()), "bad_request"),
        (EditError::NotFound("x".into()), "not_found"),
        (
            EditError::Conflict {
                expected: 1,
                actual: 2,
            },
            "conflict",
        ),
        (EditError::Limit("x".into()), "limit"),
        (
            EditError::Io {
                path: "p".into(),
                source: io,
            },
            "io",
        ),
    ];
    for (e, code) in table {
        assert_eq!(e.code(), code, "{e:?}");
    }
}
