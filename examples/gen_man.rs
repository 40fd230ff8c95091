//! Writes the man pages (`mqttapp.1`, `mqttapp-ask.1`, ...) from the clap
//! definitions, so they can never disagree with `--help`.
//!
//! `make man` runs it: `cargo run --example gen_man -- target/man`, then
//! `man -l target/man/mqttapp.1`.

use clap::CommandFactory;
use mqttapp::cli::Cli;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/man".into());
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("error: cannot create {dir}: {e}");
        std::process::exit(1);
    }
    if let Err(e) = clap_mangen::generate_to(Cli::command(), &dir) {
        eprintln!("error: cannot write man pages into {dir}: {e}");
        std::process::exit(1);
    }
    println!("man pages written to {dir}/ (try: man -l {dir}/mqttapp.1)");
}
