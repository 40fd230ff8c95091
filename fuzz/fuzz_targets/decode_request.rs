//! libFuzzer target: request decoding (CBOR, JSON, text) and its round trip.
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::decode_request_body(data));
