//! What of a request a dead letter keeps: every property up to
//! [`PROPERTY_CAP`] bytes, the payload up to the server's
//! `max_payload_bytes`, the detail up to [`DETAIL_CAP`] bytes. A field that
//! is cut keeps its full length and SHA-256 next to it ([`Cut`]), so the
//! request stays identifiable while one hostile request costs the store a
//! bounded number of bytes whatever it carries.

use sha2::{Digest, Sha256};

use super::{Cut, DeadLetter, Original, Reason};

/// Most bytes of each property (topic, Response Topic, Correlation Data,
/// Content Type) a dead letter keeps: a real topic or content type fits,
/// a 64 KiB hostile one does not cost 64 KiB per letter.
pub const PROPERTY_CAP: usize = 256;

/// Most bytes of a dead letter's detail (it may quote client strings).
pub const DETAIL_CAP: usize = 512;

/// The SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The longest prefix of `text` of at most `max` bytes that ends on a
/// character boundary.
pub fn prefix_within(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

pub fn cut_of(full: &[u8], kept: usize) -> Option<Cut> {
    (kept < full.len()).then(|| Cut {
        len: full.len() as u64,
        sha256: sha256_hex(full),
    })
}

/// A text property, cut to the cap.
fn text_field(value: Option<&str>) -> (Option<String>, Option<Cut>) {
    match value {
        None => (None, None),
        Some(v) => {
            let kept = prefix_within(v, PROPERTY_CAP);
            (Some(kept.to_string()), cut_of(v.as_bytes(), kept.len()))
        }
    }
}

/// What identifies a letter besides its content: id, time, reason, detail.
pub struct Header<'a> {
    /// Unique id.
    pub id: String,
    /// Unix seconds.
    pub time: u64,
    /// Why.
    pub reason: Reason,
    /// For a human; cut to [`DETAIL_CAP`].
    pub detail: &'a str,
}

/// The dead letter of `original`, each field within its cap (the payload
/// within `max_payload` bytes).
pub fn bounded(header: Header<'_>, original: &Original, max_payload: usize) -> DeadLetter {
    let (topic, topic_cut) = text_field(Some(&original.topic));
    let (response_topic, response_topic_cut) = text_field(original.response_topic.as_deref());
    let (content_type, content_type_cut) = text_field(original.content_type.as_deref());
    let correlation = original.correlation.as_deref();
    let correlation_kept = correlation.map(|c| &c[..c.len().min(PROPERTY_CAP)]);
    let correlation_cut = correlation.and_then(|c| cut_of(c, PROPERTY_CAP.min(c.len())));
    let payload = &original.payload[..original.payload.len().min(max_payload)];
    let payload_cut = original
        .payload_cut
        .clone()
        .or_else(|| cut_of(&original.payload, payload.len()));
    let detail = match prefix_within(header.detail, DETAIL_CAP) {
        d if d.len() == header.detail.len() => d.to_string(),
        d => format!("{}…", prefix_within(d, DETAIL_CAP - '…'.len_utf8())),
    };
    let mut letter = DeadLetter {
        id: header.id,
        time: header.time,
        reason: header.reason,
        detail,
        topic: topic.unwrap_or_default(),
        response_topic,
        correlation_hex: correlation_kept.map(hex::encode),
        content_type,
        payload_hex: hex::encode(payload),
        truncated: false,
        topic_cut,
        response_topic_cut,
        correlation_cut,
        content_type_cut,
        payload_cut,
    };
    letter.truncated = letter.is_cut();
    letter
}

/// `letter` without its payload (its length and hash kept): what the store
/// keeps when the whole letter no longer fits its budget.
/// (A payload kept whole is hashed from the letter's own hex.)
pub fn without_payload(letter: &DeadLetter) -> DeadLetter {
    let mut slim = letter.clone();
    slim.payload_hex = String::new();
    if slim.payload_cut.is_none() && !letter.payload_hex.is_empty() {
        let payload = hex::decode(&letter.payload_hex).unwrap_or_default();
        slim.payload_cut = cut_of(&payload, 0);
    }
    slim.truncated = slim.is_cut();
    slim
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(detail: &str) -> Header<'_> {
        Header {
            id: "s-1-0".into(),
            time: 1,
            reason: Reason::NoResponseTopic,
            detail,
        }
    }

    #[test]
    fn small_requests_are_kept_whole_and_not_marked() {
        let original = Original {
            topic: "p/v1/req/calc".into(),
            response_topic: Some("p/v1/resp/c".into()),
            correlation: Some(vec![1, 2]),
            content_type: Some("text/plain".into()),
            payload: b"1+1".to_vec(),
            payload_cut: None,
        };
        let letter = bounded(header("d"), &original, 1024);
        assert!(!letter.truncated);
        assert_eq!(letter.original().unwrap(), original);
    }

    #[test]
    fn huge_fields_are_cut_with_their_length_and_hash() {
        let topic = "é".repeat(40_000);
        let original = Original {
            topic: topic.clone(),
            response_topic: Some("#".repeat(60_000)),
            correlation: Some(vec![7; 60_000]),
            content_type: Some("c".repeat(60_000)),
            payload: vec![1; 10_000],
            payload_cut: None,
        };
        let detail = "x".repeat(5_000);
        let letter = bounded(header(&detail), &original, 1_000);
        assert!(letter.truncated);
        assert!(letter.topic.len() <= PROPERTY_CAP && topic.starts_with(&letter.topic));
        let cut = letter.topic_cut.as_ref().unwrap();
        assert_eq!(
            (cut.len, cut.sha256.clone()),
            (80_000, sha256_hex(topic.as_bytes()))
        );
        assert_eq!(letter.response_topic.as_ref().unwrap().len(), PROPERTY_CAP);
        assert_eq!(
            letter.correlation_hex.as_ref().unwrap().len(),
            2 * PROPERTY_CAP
        );
        assert_eq!(letter.correlation_cut.as_ref().unwrap().len, 60_000);
        assert_eq!(letter.content_type_cut.as_ref().unwrap().len, 60_000);
        assert_eq!(letter.payload_hex.len(), 2_000);
        assert_eq!(letter.payload_cut.as_ref().unwrap().len, 10_000);
        assert!(letter.detail.len() <= DETAIL_CAP && letter.detail.ends_with('…'));
        let slim = without_payload(&letter);
        assert!(slim.payload_hex.is_empty());
        assert_eq!(slim.payload_cut, letter.payload_cut);
    }

    #[test]
    fn dropping_a_small_payload_records_its_length_and_hash() {
        let original = Original {
            payload: b"abc".to_vec(),
            ..Original::default()
        };
        let letter = bounded(header(""), &original, 1024);
        let slim = without_payload(&letter);
        assert!(slim.truncated);
        assert_eq!(slim.payload_cut.unwrap().sha256, sha256_hex(b"abc"));
    }

    #[test]
    fn a_prefix_ends_before_a_character_it_would_split() {
        assert_eq!(prefix_within("aé", 2), "a");
        assert_eq!(prefix_within("aé", 3), "aé");
        assert_eq!(prefix_within("a€b", 3), "a");
        assert_eq!(prefix_within("abc", 0), "");
    }

    #[test]
    fn a_detail_of_exactly_the_cap_is_kept_whole_and_one_more_byte_is_cut() {
        let exact = "x".repeat(DETAIL_CAP);
        let letter = bounded(header(&exact), &Original::default(), 0);
        assert_eq!(letter.detail, exact);
        let over = "x".repeat(DETAIL_CAP + 1);
        let letter = bounded(header(&over), &Original::default(), 0);
        assert_eq!(letter.detail.len(), DETAIL_CAP);
        assert!(letter.detail.ends_with('…'), "{}", letter.detail);
        assert!(bounded(header("d"), &Original::default(), 0).detail == "d");
    }
}
