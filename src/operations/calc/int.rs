//! Exact integers beyond 64 bits: the digit limit, the size estimates that
//! refuse an oversized result before it is computed, and the big-integer
//! arithmetic behind [`Number::Big`].
//!
//! Small integers never come here: the operations in `ops` try checked
//! `i64` arithmetic first and fall back to these functions only on
//! overflow (or when an operand is already big), so everyday expressions
//! cost what they cost before big integers existed. Every result goes
//! through [`checked`], which enforces [`MAX_INT_DIGITS`] and turns values
//! that fit back into [`Number::Int`].

use std::cmp::Ordering;
use std::sync::OnceLock;

use num_bigint::{BigInt, Sign};
use num_traits::{FromPrimitive, Signed, ToPrimitive, Zero};

use super::errors;
use super::{CalcError, Number};
use crate::limits::{MAX_INT_DIGITS, MAX_INT_WORK};

thread_local! {
    /// Big-integer work the expression being evaluated on this thread may
    /// still do (see [`MAX_INT_WORK`]). Evaluation is synchronous on one
    /// thread and starts with [`reset_work`], so a thread-local is the
    /// budget of exactly one expression without threading a context
    /// through every operation.
    static WORK_LEFT: std::cell::Cell<u64> = const { std::cell::Cell::new(MAX_INT_WORK) };
}

/// Gives the next expression evaluated on this thread its full budget.
pub(super) fn reset_work() {
    WORK_LEFT.with(|w| w.set(MAX_INT_WORK));
}

/// Spends `cost` limb operations of the budget before they are done, or
/// refuses the expression with a `limit` error.
fn charge(cost: u128) -> Result<(), CalcError> {
    WORK_LEFT.with(|w| {
        let left = u128::from(w.get());
        if cost > left {
            w.set(0);
            Err(errors::limit(format!(
                "too much big-integer arithmetic: the expression needs more than \
                 {MAX_INT_WORK} limb operations (about 15 products of two \
                 {MAX_INT_DIGITS}-digit numbers)"
            )))
        } else {
            // cost <= left <= u64::MAX, so the difference fits.
            w.set(u64::try_from(left - cost).unwrap_or(0));
            Ok(())
        }
    })
}

/// 64-bit limbs of a magnitude (at least 1).
fn limbs(x: &BigInt) -> u128 {
    u128::from(x.bits().div_ceil(64).max(1))
}

/// A value with at least this many bits is at least 2^(bits-1) >= 10^D,
/// so it has more than [`MAX_INT_DIGITS`] digits: ceil(D * log2 10) + 1.
fn over_bits() -> u64 {
    (f64::from(MAX_INT_DIGITS) * std::f64::consts::LOG2_10).ceil() as u64 + 1
}

/// 10^D, the smallest magnitude refused; only compared against for the
/// one bit length where the bit count alone cannot decide.
fn first_too_large() -> &'static BigInt {
    static LIMIT: OnceLock<BigInt> = OnceLock::new();
    LIMIT.get_or_init(|| BigInt::from(10u32).pow(MAX_INT_DIGITS))
}

#[cfg(test)]
thread_local! {
    /// Results over the limit that were computed before being refused
    /// (the tests check that the hostile cases never get this far).
    pub(super) static OVER_LIMIT_COMPUTED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The limit error for an integer result of more than D digits.
pub(super) fn too_large() -> CalcError {
    errors::limit(format!(
        "integer too large: the result would have more than {MAX_INT_DIGITS} digits"
    ))
}

/// Refuses a result whose smallest possible bit length, known from the
/// operands alone, is already over the limit. Called before multiplying
/// or raising to a power, so the expensive step never runs for it.
fn refuse_if_at_least(min_bits: u128) -> Result<(), CalcError> {
    if min_bits >= u128::from(over_bits()) {
        Err(too_large())
    } else {
        Ok(())
    }
}

/// Accepts an exact result within the digit limit, as `Int` when it fits
/// in 64 bits (so `Big` never holds a small value).
pub(super) fn checked(x: BigInt) -> Result<Number, CalcError> {
    if let Some(small) = x.to_i64() {
        return Ok(Number::Int(small));
    }
    let bits = x.bits();
    let over = bits >= over_bits()
        || (bits + 1 == over_bits() && x.magnitude() >= first_too_large().magnitude());
    if over {
        #[cfg(test)]
        OVER_LIMIT_COMPUTED.with(|n| n.set(n.get() + 1));
        Err(too_large())
    } else {
        Ok(Number::Big(x))
    }
}

/// Converts a digits-only literal of more than 18 digits (it did not fit
/// in `i64`); more than [`MAX_INT_DIGITS`] significant digits is a limit
/// error, decided before any conversion.
pub(super) fn literal(digits: &str) -> Result<Number, CalcError> {
    let significant = digits.trim_start_matches('0');
    if significant.len() > MAX_INT_DIGITS as usize {
        return Err(errors::limit(format!(
            "integer literal {} has {} digits, the limit is {MAX_INT_DIGITS}",
            errors::snippet(digits),
            significant.len()
        )));
    }
    match BigInt::parse_bytes(significant.as_bytes(), 10) {
        Some(x) => checked(x),
        // Unreachable for the lexer's digits-only text; stay total anyway.
        None => Ok(Number::Int(0)),
    }
}

/// The value as a big integer (`None` for a float).
pub(super) fn big(n: &Number) -> Option<BigInt> {
    match n {
        Number::Int(i) => Some(BigInt::from(*i)),
        Number::Big(b) => Some(b.clone()),
        Number::Float(_) => None,
    }
}

/// Bit length of a big integer's magnitude (0 for zero), widened.
fn bits(x: &BigInt) -> u128 {
    u128::from(x.bits())
}

/// `a + b`.
pub(super) fn add(a: &BigInt, b: &BigInt) -> Result<Number, CalcError> {
    charge(limbs(a) + limbs(b))?;
    checked(a + b)
}

/// `a - b`.
pub(super) fn sub(a: &BigInt, b: &BigInt) -> Result<Number, CalcError> {
    charge(limbs(a) + limbs(b))?;
    checked(a - b)
}

/// `a * b`, refused unseen when bits(a) + bits(b) - 1 is already too many.
pub(super) fn mul(a: &BigInt, b: &BigInt) -> Result<Number, CalcError> {
    if !a.is_zero() && !b.is_zero() {
        refuse_if_at_least(bits(a) + bits(b) - 1)?;
    }
    charge(limbs(a) * limbs(b))?;
    checked(a * b)
}

/// `a % b` (b non-zero) with the divisor's sign, as Python's `%`.
pub(super) fn rem(a: &BigInt, b: &BigInt) -> Result<Number, CalcError> {
    charge(limbs(a) * limbs(b))?;
    let r = a % b;
    let fixed = if !r.is_zero() && r.is_negative() != b.is_negative() {
        r + b
    } else {
        r
    };
    checked(fixed)
}

/// `a / b` (b non-zero) when it is exact, else `None`.
pub(super) fn exact_div(a: &BigInt, b: &BigInt) -> Result<Option<BigInt>, CalcError> {
    charge(2 * limbs(a) * limbs(b))?;
    let (q, r) = (a / b, a % b);
    Ok(r.is_zero().then_some(q))
}

/// `a / b` (b non-zero) as the nearest f64 or within one unit of it, even
/// when `a` or `b` alone is beyond the f64 range (as Python's true
/// division of integers); a quotient beyond the range is infinite.
pub(super) fn ratio(a: &BigInt, b: &BigInt) -> Result<f64, CalcError> {
    charge(limbs(a) * limbs(b))?;
    // Scale so the integer quotient keeps 64 or 65 significant bits.
    let shift = 64 - (a.bits() as i64 - b.bits() as i64);
    let q = if shift >= 0 {
        (a << shift as usize) / b
    } else {
        a / (b << shift.unsigned_abs() as usize)
    };
    Ok(scale(q.to_f64().unwrap_or(0.0), -shift))
}

/// `x * 2^exp` without overflowing or underflowing on the way.
fn scale(mut x: f64, mut exp: i64) -> f64 {
    const STEP: i64 = 1000;
    while exp > STEP && x.is_finite() {
        x *= 2f64.powi(STEP as i32);
        exp -= STEP;
    }
    while exp < -STEP && x != 0.0 {
        x *= 2f64.powi(-STEP as i32);
        exp += STEP;
    }
    x * 2f64.powi(exp as i32)
}

/// Exact `base ^ exp` for `exp >= 0`, refused unseen when the result's
/// smallest possible bit length, (bits(base) - 1) * exp + 1, is too many.
pub(super) fn pow(base: &BigInt, exp: &BigInt) -> Result<Number, CalcError> {
    let magnitude = base.magnitude();
    if magnitude <= &num_bigint::BigUint::from(1u32) {
        // 0, 1 and -1 stay small whatever the exponent.
        let odd = exp.bit(0);
        let value = match base.sign() {
            Sign::Minus if odd => -1,
            Sign::Minus => 1,
            _ => base.to_i64().unwrap_or(0),
        };
        return Ok(Number::Int(if exp.is_zero() { 1 } else { value }));
    }
    let e = exp.to_u32().ok_or_else(too_large)?;
    refuse_if_at_least((bits(base) - 1) * u128::from(e) + 1)?;
    // The result's size, from log2 |base| (bit lengths alone would count
    // 2^n as 4^n); a base beyond the f64 range is at least 2^1023 bits'
    // worth, where the bit length is accurate enough.
    let log2 = base
        .to_f64()
        .map(|f| f.abs().log2())
        .filter(|l| l.is_finite())
        .unwrap_or(base.bits() as f64);
    let result_limbs = (log2 * f64::from(e) / 64.0).ceil() as u128 + 1;
    charge(result_limbs * result_limbs)?;
    checked(base.pow(e))
}

/// The value as f64; an integer beyond the f64 range is a limit error, as
/// Python's `OverflowError: int too large to convert to float`.
pub(super) fn to_f64(x: &BigInt) -> Result<f64, CalcError> {
    match x.to_f64() {
        Some(f) if f.is_finite() => Ok(f),
        _ => Err(errors::limit(
            "integer too large to convert to a floating-point number (beyond about 1.8e308)",
        )),
    }
}

/// Exact numeric order of a big integer and a finite f64.
pub(super) fn cmp_float(x: &BigInt, f: f64) -> Ordering {
    let whole = f.trunc();
    let Some(w) = BigInt::from_f64(whole) else {
        // Only NaN or infinity get here; floats in a Number are finite.
        return Ordering::Equal;
    };
    match x.cmp(&w) {
        Ordering::Equal => 0.0f64.partial_cmp(&(f - whole)).unwrap_or(Ordering::Equal),
        other => other,
    }
}
