//! `-H key=value`: a client's own MQTT 5 user properties on its requests
//! (`ask`, `shell`, and a `-H k=v` prefix on a shell or `--batch` line).
//!
//! Names starting with `mqttapp-` are the protocol's own (docs/PROTOCOL.md,
//! "User properties") and refused here, so a user learns at once that the
//! server would ignore them. A server returns only `traceparent`.

use super::AskError;
use crate::protocol::{is_reserved_property, user_props::RESERVED_PREFIX};

/// User properties, in order (names may repeat), as MQTT 5 carries them.
pub type Headers = Vec<(String, String)>;

/// Longest name or value of a property: an MQTT string holds 65,535 bytes.
const MAX_STRING: usize = 65_535;

/// One `-H` value, `key=value` (split at the first `=`; the value may be
/// empty or hold more `=`).
///
/// # Errors
/// [`AskError::Usage`] (exit 2) for a missing `=` or name, a name
/// starting with `mqttapp-`, a NUL character or a part over 65,535 bytes.
pub fn parse(text: &str) -> Result<(String, String), AskError> {
    let usage = |why: String| AskError::Usage(format!("-H {}: {why}", shown(text)));
    let Some((key, value)) = text.split_once('=') else {
        return Err(usage(
            "give a user property as KEY=VALUE, e.g. -H traceparent=00-...-01".into(),
        ));
    };
    if key.is_empty() {
        return Err(usage("the property's name (before `=`) is empty".into()));
    }
    if is_reserved_property(key) {
        return Err(usage(format!(
            "names starting with {RESERVED_PREFIX} are the protocol's own (docs/PROTOCOL.md, \"User properties\") - choose another name"
        )));
    }
    if text.contains('\0') {
        return Err(usage("MQTT strings cannot hold a NUL character".into()));
    }
    if key.len() > MAX_STRING || value.len() > MAX_STRING {
        return Err(usage(format!(
            "a name or value holds at most {MAX_STRING} bytes"
        )));
    }
    Ok((key.to_string(), value.to_string()))
}

/// Every `-H` value of a command line, in order.
///
/// # Errors
/// The first refused value's [`AskError::Usage`].
pub fn parse_all(texts: &[String]) -> Result<Headers, AskError> {
    texts.iter().map(|t| parse(t)).collect()
}

/// A `-H` value as an error message shows it: short, no control characters.
fn shown(text: &str) -> String {
    crate::logging::shorten(text, 60)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn headers_are_key_equals_value_and_mqttapp_names_are_refused() {
        let ok = [
            ("traceparent=00-ab-cd-01", ("traceparent", "00-ab-cd-01")),
            ("k=", ("k", "")),
            ("k=a=b", ("k", "a=b")),
            ("MQTTAPP-x=1", ("MQTTAPP-x", "1")),
        ];
        for (text, (key, value)) in ok {
            assert_eq!(
                parse(text).unwrap(),
                (key.to_string(), value.to_string()),
                "{text}"
            );
        }
        for (text, needle) in [
            ("novalue", "KEY=VALUE"),
            ("=v", "name"),
            ("mqttapp-server-id=forged", "protocol's own"),
            ("k=a\0b", "NUL"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
        let long = format!("k={}", "v".repeat(70_000));
        assert!(parse(&long).unwrap_err().to_string().contains("65535"));
    }
}
