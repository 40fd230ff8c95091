//! Payload encodings: CBOR (default), JSON and plain text, chosen by the
//! MQTT 5 Content Type property or sniffed from the first byte.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::messages::{
    CalcRequest, EchoRequest, EditRequest, OkValue, Reply, Request, UserRequest,
};
use super::wording::{cbor_reason, in_protocol_words};
use super::{ErrorBody, Op, ProtocolError};

/// How deeply nested CBOR items may be before decoding stops. Our maps are
/// two levels deep; anything deeper is hostile or a mistake.
pub(crate) const CBOR_RECURSION_LIMIT: usize = 16;

/// The three payload encodings of protocol v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `application/cbor`: a CBOR map, what `mqttapp ask` sends.
    Cbor,
    /// `application/json`: the same map as a JSON object.
    Json,
    /// `text/plain`: the operation's main argument as UTF-8.
    Text,
}

impl Encoding {
    /// The MQTT Content Type property value.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Cbor => "application/cbor",
            Encoding::Json => "application/json",
            Encoding::Text => "text/plain",
        }
    }

    /// Picks the encoding from Content Type, else sniffs the payload.
    ///
    /// A CBOR map's first byte (0xA0–0xBF) can never start valid UTF-8, so
    /// sniffing is unambiguous; a payload starting with `{` is JSON; the
    /// rest is text. Parameters such as `; charset=utf-8` are ignored.
    pub fn detect(content_type: Option<&str>, payload: &[u8]) -> Encoding {
        let declared = content_type.map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        match declared.as_deref() {
            Some("application/cbor") => Encoding::Cbor,
            Some("application/json") => Encoding::Json,
            Some("text/plain") => Encoding::Text,
            _ => Self::sniff(payload),
        }
    }

    fn sniff(payload: &[u8]) -> Encoding {
        match payload.first() {
            Some(0xA0..=0xBF) => Encoding::Cbor,
            Some(b'{') => Encoding::Json,
            _ => Encoding::Text,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Encoding::Cbor => "CBOR",
            Encoding::Json => "JSON",
            Encoding::Text => "text",
        }
    }
}

/// Decodes a request for `op` from a payload in `encoding`.
///
/// # Errors
/// [`ProtocolError`] when the payload is not a well-formed request map,
/// or is plain text for an operation that has no text form.
pub fn decode_request(
    op: Op,
    encoding: Encoding,
    payload: &[u8],
) -> Result<Request, ProtocolError> {
    if encoding == Encoding::Text {
        let text = std::str::from_utf8(payload).map_err(|_| ProtocolError::NotUtf8)?;
        return match op {
            Op::Calc => Ok(Request::Calc(CalcRequest {
                expr: text.to_string(),
            })),
            Op::Echo => Ok(Request::Echo(EchoRequest {
                text: text.to_string(),
            })),
            Op::Edit => Err(ProtocolError::TextNotSupported { op: "edit" }),
        };
    }
    Ok(match op {
        Op::Calc => Request::Calc(decode_map(encoding, payload)?),
        Op::Echo => Request::Echo(decode_map(encoding, payload)?),
        Op::Edit => Request::Edit(decode_map::<EditRequest>(encoding, payload)?),
    })
}

/// Decodes a request for the user-defined operation `op`: a `text/plain`
/// payload is the input itself, a CBOR or JSON map carries it as `input`.
///
/// # Errors
/// [`ProtocolError`] when the payload is neither.
pub fn decode_user_request(
    op: &str,
    encoding: Encoding,
    payload: &[u8],
) -> Result<UserRequest, ProtocolError> {
    let input = match encoding {
        Encoding::Text => std::str::from_utf8(payload)
            .map_err(|_| ProtocolError::NotUtf8)?
            .to_string(),
        _ => decode_map::<UserRequest>(encoding, payload)?.input,
    };
    Ok(UserRequest {
        op: op.to_string(),
        input,
    })
}

/// Encodes a request's payload (the operation travels in the topic).
pub fn encode_request(request: &Request, encoding: Encoding) -> Vec<u8> {
    match (request, encoding) {
        (Request::Calc(r), Encoding::Text) => r.expr.clone().into_bytes(),
        (Request::Echo(r), Encoding::Text) => r.text.clone().into_bytes(),
        (Request::User(r), Encoding::Text) => r.input.clone().into_bytes(),
        (Request::User(r), _) => encode_map(r, encoding),
        (Request::Calc(r), _) => encode_map(r, encoding),
        (Request::Echo(r), _) => encode_map(r, encoding),
        (Request::Edit(r), _) => encode_map(r, encoding),
    }
}

/// Encodes a reply in the request's encoding.
///
/// Plain-text replies are the value itself, or `error: <code>: <message>`.
pub fn encode_reply(reply: &Reply, encoding: Encoding) -> Vec<u8> {
    match (reply, encoding) {
        (Reply::Ok(value), Encoding::Text) => value.to_string().into_bytes(),
        (Reply::Err(err), Encoding::Text) => format!("error: {err}").into_bytes(),
        (_, _) => encode_map(reply, encoding),
    }
}

/// Decodes a reply; the inverse of [`encode_reply`].
///
/// # Errors
/// [`ProtocolError`] when the payload is not a reply in that encoding.
pub fn decode_reply(encoding: Encoding, payload: &[u8]) -> Result<Reply, ProtocolError> {
    if encoding != Encoding::Text {
        return decode_map(encoding, payload);
    }
    let text = std::str::from_utf8(payload).map_err(|_| ProtocolError::NotUtf8)?;
    Ok(match text.strip_prefix("error: ") {
        Some(rest) => {
            let (code, message) = rest.split_once(": ").unwrap_or(("internal", rest));
            Reply::Err(ErrorBody {
                code: code.to_string(),
                message: message.to_string(),
                at: None,
            })
        }
        None => Reply::Ok(OkValue::Text(text.to_string())),
    })
}

/// CBOR encoding of a plain record (server status, dead letters), for the
/// announcements that are not requests or replies.
pub fn to_cbor<T: Serialize>(value: &T) -> Vec<u8> {
    encode_map(value, Encoding::Cbor)
}

/// Decodes a CBOR record written by [`to_cbor`] (or by another client).
///
/// # Errors
/// [`ProtocolError::Decode`] for anything that is not such a record.
pub fn from_cbor<T: DeserializeOwned>(payload: &[u8]) -> Result<T, ProtocolError> {
    decode_map(Encoding::Cbor, payload)
}

/// Decodes one of the records servers publish about themselves (status,
/// statistics, self-description): CBOR nested at most 8 deep, so a forged
/// retained message cannot make a reader recurse far.
pub(super) fn decode_record<T: DeserializeOwned>(payload: &[u8]) -> Result<T, ProtocolError> {
    ciborium::de::from_reader_with_recursion_limit(payload, 8).map_err(|e| ProtocolError::Decode {
        encoding: "CBOR",
        reason: super::wording::cbor_reason(e),
    })
}

fn decode_map<T: DeserializeOwned>(encoding: Encoding, payload: &[u8]) -> Result<T, ProtocolError> {
    let reason = match encoding {
        Encoding::Cbor => {
            // JSON refuses trailing characters; CBOR gets the same rule, so
            // one payload never means two different things to two decoders.
            let mut rest = payload;
            match ciborium::de::from_reader_with_recursion_limit(&mut rest, CBOR_RECURSION_LIMIT) {
                Ok(value) if rest.is_empty() => return Ok(value),
                Ok(_) => format!("{} bytes after the end of the CBOR map", rest.len()),
                Err(e) => cbor_reason(e),
            }
        }
        _ => match serde_json::from_slice(payload) {
            Ok(value) => return Ok(value),
            Err(e) => e.to_string(),
        },
    };
    Err(ProtocolError::Decode {
        encoding: encoding.name(),
        reason: in_protocol_words(&reason),
    })
}

fn encode_map<T: Serialize>(value: &T, encoding: Encoding) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    match encoding {
        // Serializing our own plain structs into a Vec cannot fail: there
        // are no maps with non-string keys and the writer is infallible.
        Encoding::Cbor => {
            ciborium::into_writer(value, &mut out).expect("CBOR encoding of a plain struct")
        }
        _ => serde_json::to_writer(&mut out, value).expect("JSON encoding of a plain struct"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{EditAction, EditResult, ErrorCode};

    #[test]
    fn sniffing_tells_the_three_encodings_apart() {
        let cases: &[(Option<&str>, &[u8], Encoding)] = &[
            (None, &[0xA1, 0x64], Encoding::Cbor),
            (None, b"{\"expr\":\"1\"}", Encoding::Json),
            (None, b"2+3", Encoding::Text),
            (None, b"", Encoding::Text),
            (
                Some("application/json; charset=utf-8"),
                b"x",
                Encoding::Json,
            ),
            (Some("TEXT/PLAIN"), &[0xA1], Encoding::Text),
            (Some("application/cbor"), b"{", Encoding::Cbor),
            (Some("application/octet-stream"), b"{}", Encoding::Json),
        ];
        for (ct, payload, want) in cases {
            assert_eq!(Encoding::detect(*ct, payload), *want, "{ct:?} {payload:?}");
        }
    }

    #[test]
    fn calc_request_cbor_bytes_match_the_documented_example() {
        let req = Request::Calc(CalcRequest {
            expr: "2+3*4".into(),
        });
        let bytes = encode_request(&req, Encoding::Cbor);
        // a1 64 "expr" 65 "2+3*4": the example in docs/PROTOCOL.md
        assert_eq!(bytes, b"\xa1\x64expr\x652+3*4");
        assert_eq!(
            decode_request(Op::Calc, Encoding::Cbor, &bytes).unwrap(),
            req
        );
    }

    #[test]
    fn requests_round_trip_in_every_encoding() {
        let edit = Request::Edit(EditRequest {
            action: EditAction::Insert,
            line: Some(3),
            text: Some("héllo".into()),
            file: Some("a.txt".into()),
            expect_rev: Some(7),
        });
        for enc in [Encoding::Cbor, Encoding::Json] {
            let bytes = encode_request(&edit, enc);
            assert_eq!(decode_request(Op::Edit, enc, &bytes).unwrap(), edit);
        }
        let echo = Request::Echo(EchoRequest {
            text: "ünï ✓".into(),
        });
        for enc in [Encoding::Cbor, Encoding::Json, Encoding::Text] {
            let bytes = encode_request(&echo, enc);
            assert_eq!(decode_request(Op::Echo, enc, &bytes).unwrap(), echo);
        }
    }

    #[test]
    fn edit_action_defaults_to_replace_and_unknown_fields_are_ignored() {
        let r = decode_request(
            Op::Edit,
            Encoding::Json,
            br#"{"line":2,"text":"x","future":1}"#,
        );
        let Ok(Request::Edit(e)) = r else {
            panic!("{r:?}")
        };
        assert_eq!(e.action, EditAction::Replace);
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn replies_round_trip_in_every_encoding() {
        let replies = [
            Reply::Ok(OkValue::Int(14)),
            Reply::Ok(OkValue::Float(3.5)),
            Reply::Ok(OkValue::Text("hello".into())),
            Reply::Ok(OkValue::Edit(EditResult {
                file: "n.txt".into(),
                rev: 2,
                lines: 3,
                content: None,
                next: None,
            })),
            Reply::Err(ErrorBody::new(ErrorCode::Parse, "unexpected ')'").at(4)),
        ];
        for reply in &replies {
            for enc in [Encoding::Cbor, Encoding::Json] {
                let bytes = encode_reply(reply, enc);
                assert_eq!(&decode_reply(enc, &bytes).unwrap(), reply, "{enc:?}");
            }
        }
        assert_eq!(encode_reply(&replies[0], Encoding::Json), br#"{"ok":14}"#);
        assert_eq!(
            encode_reply(&replies[4], Encoding::Text),
            // The wire's `at` is 0-based; the text counts from 1.
            b"error: parse: unexpected ')' (at character 5)"
        );
        assert_eq!(encode_reply(&replies[1], Encoding::Text), b"3.5");
    }

    #[test]
    fn hostile_payloads_are_errors_not_panics() {
        let deep_cbor = [0x81u8; 10_000];
        let huge_len = [
            0xA1, 0x64, b'e', b'x', b'p', b'r', 0x7B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
            0xFF,
        ];
        let deep_json = "[".repeat(100_000);
        let cases: Vec<(Encoding, Vec<u8>)> = vec![
            (Encoding::Cbor, vec![]),
            (Encoding::Cbor, vec![0xA1]),
            (Encoding::Cbor, deep_cbor.to_vec()),
            (Encoding::Cbor, huge_len.to_vec()),
            (
                Encoding::Cbor,
                vec![0xBF, 0x64, b'e', b'x', b'p', b'r', 0x7F, 0x61, b'a'],
            ),
            (Encoding::Json, deep_json.into_bytes()),
            (Encoding::Json, br#"{"expr": 5}"#.to_vec()),
            (Encoding::Text, vec![0xFF, 0xFE]),
        ];
        for (enc, payload) in cases {
            assert!(
                decode_request(Op::Calc, enc, &payload).is_err(),
                "{enc:?} {payload:?}"
            );
        }
    }
}
