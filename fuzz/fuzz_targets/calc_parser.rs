//! libFuzzer target: the calc lexer, parser and evaluator.
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::calc_body(data));
