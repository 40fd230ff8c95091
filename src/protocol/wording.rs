//! Decoder errors in words a client can act on. Replies carry these texts
//! to clients in any language, so they never show Rust `Debug` output
//! (ciborium's `Display` is its `Debug`: `Semantic(None, "...")`) or Rust
//! type names (serde's "expected struct CalcRequest").

use super::codec::CBOR_RECURSION_LIMIT;

/// A CBOR decoding error as a sentence. ciborium's `Display` is its
/// `Debug` (`Semantic(None, "...")`), which must not reach a client.
pub(crate) fn cbor_reason(e: ciborium::de::Error<std::io::Error>) -> String {
    use ciborium::de::Error;
    match e {
        Error::Io(_) => "the payload ends in the middle of a CBOR item".to_string(),
        Error::Syntax(at) => format!("invalid CBOR at byte {at}"),
        Error::Semantic(Some(at), msg) => format!("{msg} (at byte {at})"),
        Error::Semantic(None, msg) => msg,
        Error::RecursionLimitExceeded => {
            format!("items nested deeper than {CBOR_RECURSION_LIMIT} levels")
        }
    }
}

/// Serde names the Rust type it expected (`struct CalcRequest`); a client
/// needs the shape docs/PROTOCOL.md describes instead.
const SHAPES: &[(&str, &str)] = &[
    ("struct CalcRequest", r#"a map with "expr" (text)"#),
    ("struct EchoRequest", r#"a map with "text" (text)"#),
    (
        "struct EditRequest",
        r#"a map with "action", "line", "text", "file", "expect_rev""#,
    ),
    (
        "enum EditAction",
        r#"one of "replace", "insert", "append", "delete", "show""#,
    ),
    ("struct EditResult", r#"a map with "file", "rev", "lines""#),
    ("struct ErrorBody", r#"a map with "code", "message""#),
    ("enum Reply", r#"a map with "ok" or "err""#),
];

/// `reason` with Rust type names replaced by the protocol's words; any
/// other `struct X` / `enum X` becomes "a map" / "a documented value".
pub(crate) fn in_protocol_words(reason: &str) -> String {
    let mut text = SHAPES.iter().fold(reason.to_string(), |t, (rust, words)| {
        t.replace(rust, words)
    });
    for (kind, words) in [("struct ", "a map"), ("enum ", "a documented value")] {
        while let Some(at) = text.find(kind) {
            let name_end = text[at + kind.len()..]
                .find(|c: char| !c.is_alphanumeric() && c != '_')
                .map_or(text.len(), |n| at + kind.len() + n);
            text.replace_range(at..name_end, words);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use crate::protocol::{decode_request, Encoding, Op};

    #[test]
    fn decode_errors_are_sentences_without_rust_debug_text() {
        let cases: Vec<(Op, Encoding, Vec<u8>)> = vec![
            (Op::Calc, Encoding::Cbor, vec![]),
            (Op::Calc, Encoding::Cbor, vec![0x05]),
            (Op::Calc, Encoding::Cbor, vec![0xA1]),
            (Op::Calc, Encoding::Cbor, vec![0xFF, 0x00]),
            (Op::Calc, Encoding::Cbor, vec![0x81; 100]),
            (
                Op::Calc,
                Encoding::Cbor,
                vec![0xA1, 0x64, b'e', b'x', b'p', b'r', 0x05],
            ),
            (
                Op::Calc,
                Encoding::Cbor,
                vec![
                    0xA1, 0x64, b'e', b'x', b'p', b'r', 0x7B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                    0xFF, 0xFF,
                ],
            ),
            (
                Op::Echo,
                Encoding::Cbor,
                vec![0xA1, 0x64, b't', b'e', b'x', b't', 0xF6],
            ),
            (Op::Echo, Encoding::Cbor, vec![0xA0, 0x00]),
            (Op::Edit, Encoding::Cbor, vec![0x9F, 0xFF]),
            (
                Op::Edit,
                Encoding::Cbor,
                vec![
                    0xA1, 0x66, b'a', b'c', b't', b'i', b'o', b'n', 0x63, b'f', b'o', b'o',
                ],
            ),
            (
                Op::Edit,
                Encoding::Cbor,
                vec![0xA1, 0x64, b'l', b'i', b'n', b'e', 0x3A, 0, 0, 0, 1],
            ),
            (Op::Calc, Encoding::Json, b"[1,2]".to_vec()),
            (Op::Calc, Encoding::Json, br#"{"expr":5}"#.to_vec()),
            (Op::Calc, Encoding::Json, b"{".to_vec()),
            (Op::Edit, Encoding::Json, br#"{"action":"nope"}"#.to_vec()),
            (Op::Edit, Encoding::Json, b"7".to_vec()),
            (Op::Edit, Encoding::Text, b"x".to_vec()),
            (Op::Echo, Encoding::Text, vec![0xFF]),
        ];
        let artefacts = [
            "Some(",
            "None",
            "Semantic(",
            "Syntax(",
            "Error(",
            "Io(",
            "struct ",
            "enum ",
            "Recursion",
        ];
        for (op, enc, payload) in cases {
            let text = decode_request(op, enc, &payload).unwrap_err().to_string();
            for a in artefacts {
                assert!(!text.contains(a), "{op} {enc:?} {payload:02x?}: {text}");
            }
        }
        let text = decode_request(Op::Calc, Encoding::Json, b"7")
            .unwrap_err()
            .to_string();
        assert!(text.contains(r#"a map with "expr" (text)"#), "{text}");
    }
}
