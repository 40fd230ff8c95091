//! The layer check of `make check`: a module may use modules of its own
//! layer and the layers below, never one above. It reads every
//! `src/**/*.rs` for `crate::<module>` paths (also `crate::{a, b}`), so a
//! new import that climbs a layer fails here with the file and the path.
//!
//! The table is the one place the layers are written down; a module
//! missing from it fails the check too.
//!
//! A second check keeps the transport seam: outside `src/mqtt.rs` and
//! `src/mqtt/`, no line of code names paho (`paho_mqtt`, `paho::`).

use std::path::{Path, PathBuf};

/// Bottom to top: wire protocol -> transport -> operations -> client /
/// server -> commands. Each row: the layer's name and its top-level
/// modules (`src/<module>.rs` or `src/<module>/`).
const LAYERS: &[(&str, &[&str])] = &[
    (
        "base",
        &["exit", "version", "ids", "logging", "limits", "datadir"],
    ),
    ("wire protocol", &["protocol"]),
    ("settings", &["config"]),
    ("transport", &["mqtt", "broker"]),
    ("operations", &["operations", "deadletter"]),
    (
        "client / server",
        &[
            "ask", "serve", "status", "dlq", "bench", "shell", "output", "doctor", "gather",
            "describe",
        ],
    ),
    ("commands", &["cli", "lib", "main"]),
];

/// Imports that climb a layer today, each with the reason it is
/// tolerated; remove a row when the import is gone (a stale row fails).
const KNOWN: &[(&str, &str, &str)] = &[
    (
        "logging",
        "mqtt",
        "the log filter silences the transport's secret-bearing target by its name",
    ),
    (
        "config",
        "mqtt",
        "broker URI parsing lives in the transport",
    ),
    (
        "ask",
        "cli",
        "requests are built from the clap structs AskOp/EditArgs",
    ),
    (
        "shell",
        "cli",
        "the shell parses its lines with the clap structs",
    ),
    ("bench", "cli", "bench::run takes BenchArgs"),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a source text names with `crate::`.
fn imports(text: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            found.extend(inner.split(',').map(|p| ident(p.trim())));
        } else {
            found.push(ident(rest));
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    let mut used_known = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        let Some(own) = layer_of(&module) else {
            problems.push(format!(
                "{}: module `{module}` is in no layer",
                rel.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for target in imports(&text) {
            let Some(theirs) = layer_of(&target) else {
                problems.push(format!("{}: crate::{target} is in no layer", rel.display()));
                continue;
            };
            if theirs <= own {
                continue;
            }
            if KNOWN.iter().any(|(a, b, _)| *a == module && *b == target) {
                used_known.push((module.clone(), target));
                continue;
            }
            problems.push(format!(
                "{}: `{module}` ({}) imports crate::{target} ({})",
                rel.display(),
                LAYERS[own].0,
                LAYERS[theirs].0
            ));
        }
    }
    for (a, b, why) in KNOWN {
        if !used_known.iter().any(|(m, t)| m == a && t == b) {
            problems.push(format!("stale exception {a} -> {b} ({why}): remove it"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_reader_finds_grouped_and_plain_paths() {
    let text = "use crate::a::B;\nuse crate::{c, d::E};\nlet x = crate::f(1);";
    assert_eq!(imports(text), ["a", "c", "d", "f"]);
}

/// Files that may name paho: the transport (`src/mqtt.rs`, `src/mqtt/`).
fn owns_paho(rel: &Path) -> bool {
    rel == Path::new("mqtt.rs") || rel.starts_with("mqtt")
}

/// The lines of a source text that name the paho crate in code (a line
/// comment, `//`, `///` or `//!`, may still mention it).
fn paho_lines(text: &str) -> Vec<(usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .filter(|(_, line)| line.contains("paho_mqtt") || line.contains("paho::"))
        .map(|(i, line)| (i + 1, line.trim()))
        .collect()
}

#[test]
fn only_the_transport_names_paho() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        if owns_paho(rel) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, code) in paho_lines(&text) {
            problems.push(format!("{}:{line}: {code}", rel.display()));
        }
    }
    assert!(
        problems.is_empty(),
        "only src/mqtt.rs and src/mqtt/ may name paho; use the transport's own types (mqtt::Client, Message, Arrival) instead:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_paho_reader_skips_comments_and_finds_paths() {
    let text = "//! paho_mqtt here is fine\n/// paho::Error too\nuse paho_mqtt as paho;\nlet e: paho::Error;\nlet c = client.paho;";
    assert_eq!(
        paho_lines(text),
        [(3, "use paho_mqtt as paho;"), (4, "let e: paho::Error;")]
    );
    assert!(owns_paho(Path::new("mqtt/transport.rs")) && owns_paho(Path::new("mqtt.rs")));
    assert!(!owns_paho(Path::new("mqttx.rs")) && !owns_paho(Path::new("status.rs")));
}
