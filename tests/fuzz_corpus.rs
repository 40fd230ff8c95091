//! The fuzz targets' bodies (fuzz/bodies.rs) over their seed corpus, in
//! every `cargo test`: each seed and each of its prefixes (truncated
//! input). Real fuzzing is `make fuzz` (cargo-fuzz, nightly); this keeps
//! the targets compiling and the seeds passing without it.

#[path = "../fuzz/bodies.rs"]
mod bodies;

use std::path::Path;

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("corpus entry").path();
            let data = std::fs::read(&path).expect("read seed");
            (path.display().to_string(), data)
        })
        .collect();
    seeds.sort();
    seeds
}

fn run_with_prefixes(target: &str, body: fn(&[u8])) {
    let seeds = seeds(target);
    assert!(seeds.len() >= 10, "{target}: only {} seeds", seeds.len());
    for (name, data) in &seeds {
        for end in 0..=data.len() {
            let input = &data[..end];
            if std::panic::catch_unwind(|| body(input)).is_err() {
                panic!("{target}: {name} cut at {end} bytes panicked: {input:?}");
            }
        }
    }
}

#[test]
fn decode_request_seeds_and_their_prefixes_pass() {
    run_with_prefixes("decode_request", bodies::decode_request_body);
}

#[test]
fn calc_parser_seeds_and_their_prefixes_pass() {
    run_with_prefixes("calc_parser", bodies::calc_body);
}
