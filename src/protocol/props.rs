//! Property tests of the wire codecs: every request and reply survives an
//! encode/decode round trip, and no byte string makes a decoder panic.
//! Bounded (a few hundred cases each) so they run in `make test`.

use proptest::prelude::*;

use super::*;

const CASES: u32 = 256;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        1 => "[0-9+*/() .e^-]{0,40}",
        1 => Just(String::new()),
    ]
}

fn edit_request() -> impl Strategy<Value = EditRequest> {
    let action = prop_oneof![
        Just(EditAction::Replace),
        Just(EditAction::Insert),
        Just(EditAction::Append),
        Just(EditAction::Delete),
        Just(EditAction::Show),
    ];
    (
        action,
        proptest::option::of(any::<u64>()),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(|(action, line, text, file, expect_rev)| EditRequest {
            action,
            line,
            text,
            file,
            expect_rev,
        })
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        text().prop_map(|expr| Request::Calc(CalcRequest { expr })),
        text().prop_map(|text| Request::Echo(EchoRequest { text })),
        edit_request().prop_map(Request::Edit),
    ]
}

fn finite_float() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("finite", |x| x.is_finite())
}

fn reply() -> impl Strategy<Value = Reply> {
    let edit = (
        text(),
        any::<u64>(),
        any::<u64>(),
        proptest::option::of(text()),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(|(file, rev, lines, content, next)| {
            OkValue::Edit(EditResult {
                file,
                rev,
                lines,
                content,
                next,
            })
        });
    let ok = prop_oneof![
        any::<i64>().prop_map(OkValue::Int),
        finite_float().prop_map(OkValue::Float),
        text().prop_map(OkValue::Text),
        edit,
    ];
    let err = (text(), text(), proptest::option::of(any::<u64>()))
        .prop_map(|(code, message, at)| ErrorBody { code, message, at });
    prop_oneof![ok.prop_map(Reply::Ok), err.prop_map(Reply::Err)]
}

fn encoding() -> impl Strategy<Value = Encoding> {
    prop_oneof![
        Just(Encoding::Cbor),
        Just(Encoding::Json),
        Just(Encoding::Text)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![Just(Op::Calc), Just(Op::Echo), Just(Op::Edit)]
}

/// Decodes `bytes` every way the server and clients do; the point is that
/// none of it panics (results are whatever they are).
fn decode_everything(bytes: &[u8]) {
    for op in Op::ALL {
        for enc in [Encoding::Cbor, Encoding::Json, Encoding::Text] {
            let _ = decode_request(op, enc, bytes);
            let _ = decode_reply(enc, bytes);
        }
    }
    let _ = Encoding::detect(None, bytes);
    let _ = Status::decode(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn requests_round_trip(req in request(), enc in prop_oneof![Just(Encoding::Cbor), Just(Encoding::Json)]) {
        let bytes = encode_request(&req, enc);
        prop_assert_eq!(decode_request(req.op().unwrap(), enc, &bytes).ok(), Some(req));
    }

    #[test]
    fn text_requests_round_trip(s in text(), calc in any::<bool>()) {
        let req = if calc {
            Request::Calc(CalcRequest { expr: s })
        } else {
            Request::Echo(EchoRequest { text: s })
        };
        let bytes = encode_request(&req, Encoding::Text);
        prop_assert_eq!(decode_request(req.op().unwrap(), Encoding::Text, &bytes).ok(), Some(req));
    }

    #[test]
    fn replies_round_trip(r in reply(), enc in prop_oneof![Just(Encoding::Cbor), Just(Encoding::Json)]) {
        let bytes = encode_reply(&r, enc);
        let back = decode_reply(enc, &bytes);
        // An edit result without content and a float that happens to be
        // integral stay what they were: the untagged OkValue must not
        // confuse them with other variants.
        prop_assert_eq!(back.ok(), Some(r));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_everything(&bytes);
    }

    #[test]
    fn damaged_valid_payloads_never_panic(
        req in request(),
        enc in encoding(),
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let mut bytes = encode_request(&req, enc);
        if !bytes.is_empty() {
            for (i, b) in flips {
                let i = i.index(bytes.len());
                bytes[i] = b;
            }
            let cut = cut.index(bytes.len() + 1);
            bytes.truncate(cut);
        }
        decode_everything(&bytes);
    }

    #[test]
    fn decoders_are_total_over_ops_and_encodings(op in op(), enc in encoding(), bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        // Either a request of the topic's operation or a protocol error.
        if let Ok(req) = decode_request(op, enc, &bytes) {
            prop_assert_eq!(req.op(), Some(op));
        }
    }
}

#[test]
fn cbor_with_bytes_after_the_map_is_refused_like_json() {
    let mut payload = b"\xa1\x64expr\x611".to_vec();
    assert!(decode_request(Op::Calc, Encoding::Cbor, &payload).is_ok());
    payload.extend_from_slice(b"\xa1\x64expr\x612");
    let err = decode_request(Op::Calc, Encoding::Cbor, &payload).unwrap_err();
    assert!(err.to_string().contains("8 bytes after the end"), "{err}");
    assert!(decode_request(Op::Calc, Encoding::Json, br#"{"expr":"1"} {"expr":"2"}"#).is_err());
}
