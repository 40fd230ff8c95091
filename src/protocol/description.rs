//! Self-description: a retained CBOR map on `<prefix>/v1/describe/<server-id>`
//! saying which operations a server offers and how to call them (fields,
//! reply, limits, examples, error codes), as `grpcurl describe` does for
//! gRPC services. `docs/PROTOCOL.md` ("Self-description") is the contract.
//!
//! Versioning: [`Description::version`] is [`DESCRIPTION_VERSION`]. New
//! fields may appear at any version and readers ignore fields they do not
//! know; the version goes up only when an existing field changes meaning.
//!
//! Size: a description is at most [`MAX_DESCRIPTION_BYTES`] encoded; the
//! builder (`src/describe/builder.rs`) caps every text and list and drops
//! examples, then operations (setting `truncated`), to stay under it, and
//! readers ignore anything larger.

use serde::{Deserialize, Serialize};

use super::ProtocolError;

/// The description format this program writes.
pub const DESCRIPTION_VERSION: u32 = 1;

/// Largest description a server publishes and a reader accepts (64 KiB).
pub const MAX_DESCRIPTION_BYTES: usize = 64 * 1024;

/// `{"version": 1, "instance": "...", "ops": [...], "truncated": false}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    /// The format's version ([`DESCRIPTION_VERSION`] when written here).
    pub version: u32,
    /// The `instance` of the server's status when it published this: a
    /// reader trusts a description only next to an online status with the
    /// same instance (an older process's description is stale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The operations the server offers.
    #[serde(default)]
    pub ops: Vec<OpDescription>,
    /// True when the builder left operations or examples out to stay
    /// under [`MAX_DESCRIPTION_BYTES`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// One operation: how to call it and what it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpDescription {
    /// The name in the request topic (`<prefix>/v1/req/<name>`).
    pub name: String,
    /// One line saying what it does.
    #[serde(default)]
    pub summary: String,
    /// The payload encodings it accepts (`cbor`, `json`, `text`).
    #[serde(default)]
    pub encodings: Vec<String>,
    /// What the request carries, in words (for operations whose
    /// `fields` do not say it all, e.g. user-defined ones).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub input: String,
    /// The request map's fields (for `text`: the main field's text).
    #[serde(default)]
    pub fields: Vec<Field>,
    /// The shape of `{"ok": ...}`, in words.
    #[serde(default)]
    pub reply: String,
    /// The bounds a request must stay within, with this server's values.
    #[serde(default)]
    pub limits: Vec<Limit>,
    /// Requests and the replies they get.
    #[serde(default)]
    pub examples: Vec<Example>,
    /// The error codes a reply may carry (`docs/PROTOCOL.md`).
    #[serde(default)]
    pub codes: Vec<String>,
}

/// A field of the request map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// The key.
    pub name: String,
    /// `string`, `integer`, `number`, `boolean`.
    #[serde(rename = "type", default)]
    pub ty: String,
    /// Whether every request needs it.
    #[serde(default)]
    pub required: bool,
    /// The only values accepted, when the field is an enumeration (edit's
    /// `action`); empty for free values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed: Vec<String>,
    /// What it means, in a few words.
    #[serde(default)]
    pub summary: String,
}

/// A bound, with its value on this server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    /// The setting's name (`[limits]` keys where there is one).
    pub name: String,
    /// Its value on this server.
    pub value: u64,
    /// `bytes`, `levels`, `lines`, `files`, ...
    #[serde(default)]
    pub unit: String,
}

impl Limit {
    /// A limit from plain fields.
    pub fn new(name: &str, value: u64, unit: &str) -> Limit {
        Limit {
            name: name.to_string(),
            value,
            unit: unit.to_string(),
        }
    }
}

/// A request and the reply it gets, both as JSON text (or plain text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// The request.
    pub input: String,
    /// The reply.
    pub output: String,
}

impl Example {
    /// An example from plain fields.
    pub fn new(input: &str, output: &str) -> Example {
        Example {
            input: input.to_string(),
            output: output.to_string(),
        }
    }
}

impl Description {
    /// The operation named `name`, if described.
    pub fn op(&self, name: &str) -> Option<&OpDescription> {
        self.ops.iter().find(|op| op.name == name)
    }

    /// CBOR encoding, as published.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Plain structs of strings and numbers into a Vec: cannot fail.
        ciborium::into_writer(self, &mut out).expect("CBOR encoding of a plain struct");
        out
    }

    /// Decodes a published description.
    ///
    /// # Errors
    /// [`ProtocolError::TooLarge`] over [`MAX_DESCRIPTION_BYTES`],
    /// [`ProtocolError::Decode`] for anything that is not a description.
    pub fn decode(payload: &[u8]) -> Result<Description, ProtocolError> {
        if payload.len() > MAX_DESCRIPTION_BYTES {
            return Err(ProtocolError::TooLarge {
                size: payload.len(),
                limit: MAX_DESCRIPTION_BYTES,
            });
        }
        super::codec::decode_record(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Description {
        Description {
            version: DESCRIPTION_VERSION,
            instance: Some("0123456789abcdef".into()),
            ops: vec![OpDescription {
                name: "calc".into(),
                summary: "evaluate".into(),
                encodings: vec!["cbor".into()],
                input: String::new(),
                fields: vec![Field {
                    name: "expr".into(),
                    ty: "string".into(),
                    required: true,
                    allowed: vec![],
                    summary: "the expression".into(),
                }],
                reply: "a number".into(),
                limits: vec![Limit::new("max_expr_bytes", 4096, "bytes")],
                examples: vec![Example::new(r#"{"expr":"1+1"}"#, r#"{"ok":2}"#)],
                codes: vec!["parse".into()],
            }],
            truncated: false,
        }
    }

    #[test]
    fn a_description_round_trips_through_cbor() {
        let d = sample();
        assert_eq!(Description::decode(&d.encode()).unwrap(), d);
        assert!(Description::decode(b"junk").is_err());
        assert!(Description::decode(&[]).is_err());
    }

    #[test]
    fn readers_ignore_fields_they_do_not_know_and_refuse_oversized_ones() {
        // A newer server's description: an unknown top-level key and an
        // operation with only a name.
        let newer = serde_json::json!({"version": 2, "future": [1, 2], "ops": [{"name": "x", "new": true}]});
        let mut cbor = Vec::new();
        ciborium::into_writer(&newer, &mut cbor).unwrap();
        let d = Description::decode(&cbor).unwrap();
        assert_eq!((d.version, d.ops[0].name.as_str()), (2, "x"));
        let huge = vec![0u8; MAX_DESCRIPTION_BYTES + 1];
        assert!(matches!(
            Description::decode(&huge),
            Err(ProtocolError::TooLarge { .. })
        ));
    }
}
