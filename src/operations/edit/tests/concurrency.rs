//! Concurrent appends from threads sharing one Store and from two Stores on
//! the same directory (which lock like two processes would).

use std::sync::Arc;

use super::*;

const PER_WRITER: usize = 200;

fn run_writers(stores: Vec<Arc<Store>>, file: &str) {
    let handles: Vec<_> = stores
        .into_iter()
        .enumerate()
        .map(|(w, store)| {
            let file = file.to_string();
            std::thread::spawn(move || {
                for i in 0..PER_WRITER {
                    let r = on(&file, append(&format!("w{w}-{i}")));
                    if let Err(e) = store.apply(&r) {
                        panic!("writer {w} append {i}: {e}");
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("writer thread");
    }
}

fn check_result(store: &Store, file: &str, writers: usize) {
    let shown = ok(store, &on(file, Action::Show));
    let total = (writers * PER_WRITER) as u64;
    assert_eq!((shown.lines, shown.rev), (total, total));
    let text = shown.content.unwrap_or_default();
    for w in 0..writers {
        // Each writer's lines are all there, in its own order.
        let mine: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(&format!("w{w}-")))
            .collect();
        let want: Vec<String> = (0..PER_WRITER).map(|i| format!("w{w}-{i}")).collect();
        assert_eq!(mine, want);
    }
}

#[test]
fn two_threads_sharing_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    run_writers(vec![store.clone(), store.clone()], "shared");
    check_result(&store, "shared", 2);
}

#[test]
fn two_stores_on_the_same_directory() {
    let dir = tempfile::tempdir().unwrap();
    let a = Arc::new(open(dir.path()));
    let b = Arc::new(open(dir.path()));
    run_writers(vec![a.clone(), b], "shared");
    check_result(&a, "shared", 2);
}
