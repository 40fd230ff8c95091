//! W3C Trace Context `traceparent` values (<https://www.w3.org/TR/trace-context/>):
//! `version-traceid-parentid-flags`, lowercase hex, e.g.
//! `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`.
//!
//! A server takes a request's `traceparent` into its log and returns it on
//! the reply only when it has this shape; anything else is ignored (never
//! an error), so a hostile value never reaches a log line or a reply.

/// Longest `traceparent` accepted. Version `00` has exactly 55 characters;
/// later versions may append fields, which this bound keeps short.
pub const MAX_LEN: usize = 256;

/// Length of a version `00` value, and the least of any version.
const V00_LEN: usize = 55;

/// `value` itself when it is a valid `traceparent`, else `None`.
///
/// Valid: two hex digits of version (not `ff`), 32 of trace id, 16 of
/// parent id, 2 of flags, separated by `-`; lowercase hex only; the ids
/// not all zeros. Version `00` is exactly that; a later version may carry
/// more after a further `-` (as the specification asks a reader to accept).
pub fn parse(value: &str) -> Option<&str> {
    let b = value.as_bytes();
    if b.len() < V00_LEN || b.len() > MAX_LEN {
        return None;
    }
    let (version, trace_id, parent_id, flags) = (&b[0..2], &b[3..35], &b[36..52], &b[53..55]);
    let dashes = b[2] == b'-' && b[35] == b'-' && b[52] == b'-';
    let hex = [version, trace_id, parent_id, flags]
        .iter()
        .all(|field| field.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
    let zero = |field: &[u8]| field.iter().all(|&c| c == b'0');
    let tail_ok = match version {
        b"00" => b.len() == V00_LEN,
        b"ff" => false,
        _ => b.len() == V00_LEN || b[V00_LEN] == b'-',
    };
    (dashes && hex && tail_ok && !zero(trace_id) && !zero(parent_id)).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::{parse, MAX_LEN};

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_values_are_accepted_only_in_the_w3c_shape() {
        let later = format!("01-{}-extra", &GOOD[3..]);
        let too_long = format!("01-{}-{}", &GOOD[3..], "a".repeat(MAX_LEN));
        let cases: &[(&str, bool)] = &[
            (GOOD, true),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
                true,
            ),
            (&later, true),
            (&too_long, false),
            ("", false),
            ("garbage", false),
            // Uppercase hex.
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                false,
            ),
            // All-zero trace id, all-zero parent id.
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                false,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                false,
            ),
            // Version ff is forbidden; version 00 takes nothing after flags.
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                false,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
                false,
            ),
            // A later version's extra fields follow a dash.
            (
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
                false,
            ),
            // Wrong separators, short fields, non-hex digits.
            (
                "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
                false,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
                false,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bg-01",
                false,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
                false,
            ),
            // Multi-byte characters where hex digits should be.
            (
                "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
                false,
            ),
        ];
        for (value, valid) in cases {
            assert_eq!(parse(value).is_some(), *valid, "{value:?}");
        }
        assert_eq!(parse(GOOD), Some(GOOD), "returned unchanged");
    }
}
