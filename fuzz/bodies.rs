//! What the fuzz targets do with one input, shared with the seed-corpus
//! test of the main crate (tests/fuzz_corpus.rs) so both run the same code.
//! A panic here is a finding.

#![allow(dead_code)] // each fuzz target uses one of the bodies

use mqttapp::operations::calc::{evaluate, CalcLimits, Number};
use mqttapp::protocol::{decode_reply, decode_request, encode_request, Encoding, Op, Status};

/// The first byte picks the operation and the encoding, the rest is the
/// payload. Whatever decodes must survive a re-encode/decode round trip.
pub fn decode_request_body(data: &[u8]) {
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    let op = Op::ALL[usize::from(selector % 3)];
    let encoding = [Encoding::Cbor, Encoding::Json, Encoding::Text][usize::from(selector / 3 % 3)];
    if let Ok(request) = decode_request(op, encoding, payload) {
        assert_eq!(request.op(), Some(op));
        let again = encode_request(&request, encoding);
        let back = decode_request(op, encoding, &again);
        assert_eq!(
            back.ok().as_ref(),
            Some(&request),
            "round trip of {request:?}"
        );
    }
    let _ = decode_reply(encoding, payload);
    let _ = Encoding::detect(None, payload);
    let _ = Status::decode(payload);
}

/// Any UTF-8 text as an expression, under the default limits: an error or
/// a finite number, never a panic or a stack overflow.
pub fn calc_body(data: &[u8]) {
    let Ok(expr) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(Number::Float(x)) = evaluate(expr, &CalcLimits::default()) {
        assert!(x.is_finite(), "{expr:?} gave {x}");
    }
}
