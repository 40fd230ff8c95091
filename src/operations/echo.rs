//! echo: the text comes back unchanged.
//!
//! There is nothing to compute; the size limit is the payload limit,
//! checked before decoding.

/// Returns the text unchanged (any Unicode).
pub fn echo(text: &str) -> String {
    text.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn echo_returns_any_text_unchanged() {
        for text in [
            "hello",
            "",
            "héllo wörld ✓ 日本語 🎉",
            "line1\nline2",
            " padded ",
        ] {
            assert_eq!(super::echo(text), text);
        }
    }
}
