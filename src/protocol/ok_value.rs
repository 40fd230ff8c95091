//! How an [`OkValue`] looks on the wire. Untagged (the value alone), written
//! by hand rather than derived because of exact big integers:
//!
//! - CBOR: an integer outside the 64-bit range travels as an RFC 8949
//!   bignum, tag 2 (positive, magnitude `n`) or tag 3 (negative, magnitude
//!   `-1 - n`) on a big-endian byte string; values that fit CBOR's own
//!   integers (down to -2^64, up to 2^64 - 1) stay plain integers.
//! - JSON: a plain number token with all its digits (no quotes, no
//!   exponent), written through `serde_json`'s raw value. Floats keep their
//!   usual JSON rendering.
//!
//! Decoding accepts bignums of at most [`MAX_INT_DIGITS`] digits (a larger
//! one is refused before it is converted, so a hostile reply cannot make a
//! client spend quadratic time printing it). A JSON decoder without
//! arbitrary precision (ours) reads a JSON number beyond 64 bits as a float.

use std::fmt;

use ciborium::Value;
use num_bigint::{BigInt, Sign};
use num_traits::{One, ToPrimitive};
use serde::de::{self, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::messages::{EditResult, OkValue};
use crate::limits::MAX_INT_DIGITS;

/// RFC 8949 tag of a positive bignum.
const TAG_POSITIVE: u64 = 2;
/// RFC 8949 tag of a negative bignum.
const TAG_NEGATIVE: u64 = 3;

/// Most magnitude bytes a decoded bignum may have: 10^D < 2^(D log2 10),
/// rounded up to whole bytes.
fn max_bignum_bytes() -> usize {
    (f64::from(MAX_INT_DIGITS) * std::f64::consts::LOG2_10 / 8.0).ceil() as usize
}

impl Serialize for OkValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            OkValue::Int(n) => s.serialize_i64(*n),
            OkValue::Big(n) => serialize_big(n, s),
            OkValue::Float(x) => s.serialize_f64(*x),
            OkValue::Text(t) => s.serialize_str(t),
            OkValue::Edit(e) => e.serialize(s),
        }
    }
}

/// A big integer: all digits as a JSON number for text formats, a native
/// integer or a tag 2/3 bignum for CBOR.
fn serialize_big<S: Serializer>(n: &BigInt, s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        let raw = serde_json::value::RawValue::from_string(n.to_string())
            .map_err(serde::ser::Error::custom)?;
        return raw.serialize(s);
    }
    if let Some(u) = n.to_u64() {
        return s.serialize_u64(u);
    }
    if let Some(i) = n.to_i128().filter(|i| *i >= -(1i128 << 64)) {
        return s.serialize_i128(i);
    }
    let (tag, mut magnitude) = match n.sign() {
        Sign::Minus => (TAG_NEGATIVE, (-n - BigInt::one()).magnitude().to_bytes_be()),
        _ => (TAG_POSITIVE, n.magnitude().to_bytes_be()),
    };
    if tag == TAG_NEGATIVE && magnitude.len() == 16 && magnitude[0] >= 0x80 {
        // ciborium 0.2 decodes a bignum of up to 16 bytes into an i128 and
        // fails on tag 3 with a magnitude >= 2^127 (-2^127 - 1 down to
        // -2^128). One leading zero byte, which RFC 8949 section 3.4.3
        // requires decoders to accept, sends it down the general path.
        magnitude.insert(0, 0);
    }
    Value::Tag(tag, Box::new(Value::Bytes(magnitude))).serialize(s)
}

impl<'de> Deserialize<'de> for OkValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OkVisitor)
    }
}

/// Accepts any of the shapes an `ok` value can have.
struct OkVisitor;

impl<'de> Visitor<'de> for OkVisitor {
    type Value = OkValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, a text or an edit result")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<OkValue, E> {
        Ok(OkValue::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<OkValue, E> {
        Ok(OkValue::from(BigInt::from(v)))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<OkValue, E> {
        Ok(OkValue::from(BigInt::from(v)))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<OkValue, E> {
        Ok(OkValue::from(BigInt::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<OkValue, E> {
        Ok(OkValue::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<OkValue, E> {
        Ok(OkValue::Text(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<OkValue, E> {
        Ok(OkValue::Text(v))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<OkValue, A::Error> {
        EditResult::deserialize(de::value::MapAccessDeserializer::new(map)).map(OkValue::Edit)
    }

    /// `ciborium` hands over a tag it does not turn into an integer itself
    /// (a bignum of more than 16 bytes) as an enum.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<OkValue, A::Error> {
        let (_, variant): (String, _) = data.variant()?;
        let (tag, value) = variant.tuple_variant(2, TagVisitor)?;
        bignum(tag, value).map_err(de::Error::custom)
    }
}

/// Reads `ciborium`'s (tag, item) pair.
struct TagVisitor;

impl<'de> Visitor<'de> for TagVisitor {
    type Value = (u64, Value);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tagged CBOR item")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let tag = seq
            .next_element()?
            .ok_or_else(|| de::Error::custom("a tag without its number"))?;
        let value = seq
            .next_element()?
            .ok_or_else(|| de::Error::custom("a tag without its item"))?;
        Ok((tag, value))
    }
}

/// The integer of a tag 2/3 bignum, size-checked before conversion.
fn bignum(tag: u64, value: Value) -> Result<OkValue, String> {
    let Value::Bytes(bytes) = value else {
        return Err(format!("tag {tag} on something else than a byte string"));
    };
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let magnitude = bytes.get(first..).unwrap_or_default();
    if magnitude.len() > max_bignum_bytes() {
        return Err(format!(
            "a bignum of {} bytes, more than {MAX_INT_DIGITS} digits",
            magnitude.len()
        ));
    }
    let n = BigInt::from_bytes_be(Sign::Plus, magnitude);
    match tag {
        TAG_POSITIVE => Ok(OkValue::from(n)),
        TAG_NEGATIVE => Ok(OkValue::from(-n - BigInt::one())),
        _ => Err(format!("unexpected CBOR tag {tag}")),
    }
}

impl From<BigInt> for OkValue {
    /// `Int` when the value fits in 64 bits, else `Big`.
    fn from(n: BigInt) -> OkValue {
        match n.to_i64() {
            Some(i) => OkValue::Int(i),
            None => OkValue::Big(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{decode_reply, encode_reply, Encoding, Reply};

    fn big(text: &str) -> OkValue {
        OkValue::from(text.parse::<BigInt>().expect("digits"))
    }

    #[test]
    fn two_to_the_64_is_a_tag_2_bignum_in_cbor_and_all_digits_in_json() {
        let reply = Reply::Ok(big("18446744073709551616"));
        let cbor = encode_reply(&reply, Encoding::Cbor);
        // {"ok": 2(h'010000000000000000')}
        let mut want = vec![0xA1, 0x62, b'o', b'k', 0xC2, 0x49, 0x01];
        want.extend([0; 8]);
        assert_eq!(cbor, want);
        assert_eq!(
            decode_reply(Encoding::Cbor, &cbor).ok(),
            Some(reply.clone())
        );
        let json = encode_reply(&reply, Encoding::Json);
        assert_eq!(json, br#"{"ok":18446744073709551616}"#);
        assert_eq!(
            encode_reply(&reply, Encoding::Text),
            b"18446744073709551616"
        );
    }

    #[test]
    fn negative_bignums_use_tag_3_past_cbor_native_range() {
        // -2^64 is CBOR's own smallest integer: no tag.
        let lowest = Reply::Ok(big("-18446744073709551616"));
        let cbor = encode_reply(&lowest, Encoding::Cbor);
        assert_eq!(
            &cbor[4..],
            &[0x3B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        );
        assert_eq!(decode_reply(Encoding::Cbor, &cbor).ok(), Some(lowest));
        // -2^64 - 1: tag 3 on 2^64.
        let past = Reply::Ok(big("-18446744073709551617"));
        let cbor = encode_reply(&past, Encoding::Cbor);
        assert_eq!(&cbor[4..7], &[0xC3, 0x49, 0x01]);
        assert_eq!(decode_reply(Encoding::Cbor, &cbor).ok(), Some(past));
    }

    #[test]
    fn ten_thousand_digits_round_trip_and_more_is_refused() {
        let nines = "9".repeat(10_000);
        for text in [nines.clone(), format!("-{nines}")] {
            let reply = Reply::Ok(big(&text));
            let cbor = encode_reply(&reply, Encoding::Cbor);
            assert_eq!(
                decode_reply(Encoding::Cbor, &cbor).ok(),
                Some(reply.clone())
            );
            let json = encode_reply(&reply, Encoding::Json);
            assert_eq!(json, format!(r#"{{"ok":{text}}}"#).into_bytes());
        }
        // A hostile reply: a bignum of 1 MB is refused before conversion.
        let mut hostile = vec![0xA1, 0x62, b'o', b'k', 0xC2, 0x5A, 0x00, 0x10, 0x00, 0x00];
        hostile.extend(vec![0xFF; 0x10_0000]);
        let err = decode_reply(Encoding::Cbor, &hostile).unwrap_err();
        assert!(err.to_string().contains("more than 10000 digits"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn any_integer_round_trips_through_cbor_and_prints_its_digits_in_json(
            magnitude in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            negative in proptest::prelude::any::<bool>(),
        ) {
            let sign = if negative { Sign::Minus } else { Sign::Plus };
            let n = BigInt::from_bytes_be(sign, &magnitude);
            let reply = Reply::Ok(OkValue::from(n.clone()));
            let cbor = encode_reply(&reply, Encoding::Cbor);
            proptest::prop_assert_eq!(decode_reply(Encoding::Cbor, &cbor).ok(), Some(reply.clone()));
            let json = encode_reply(&reply, Encoding::Json);
            proptest::prop_assert_eq!(json, format!(r#"{{"ok":{n}}}"#).into_bytes());
        }
    }

    #[test]
    fn plain_cbor_integers_past_i64_decode_exactly() {
        // u64::MAX, a CBOR major type 0 integer.
        let mut cbor = vec![0xA1, 0x62, b'o', b'k', 0x1B];
        cbor.extend([0xFF; 8]);
        let reply = decode_reply(Encoding::Cbor, &cbor).expect("decodes");
        assert_eq!(reply, Reply::Ok(big("18446744073709551615")));
        assert_eq!(encode_reply(&reply, Encoding::Cbor), cbor);
    }
}
