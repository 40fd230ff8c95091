//! Arithmetic on [`Number`]: exact checked integer operations, f64 operations
//! whose non-finite results become errors, and numeric comparison.
//!
//! Every function takes `at`, the character offset of the operator or
//! function responsible, for the error it may return.

use std::cmp::Ordering;

use super::errors;
use super::{CalcError, Number};

/// Smallest f64 that is >= 2^63 (i.e. 2^63 itself), the exclusive upper
/// bound of f64 values that convert to i64 exactly.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

impl Number {
    /// The value as f64 (large integers round to the nearest f64).
    pub(super) fn to_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(x) => x,
        }
    }
}

/// Accepts a finite f64 result; infinity is a `limit` error (a result too
/// large, like an integer overflow), NaN is "not a real number" (`math`).
pub(super) fn finite(x: f64, at: usize) -> Result<Number, CalcError> {
    if x.is_finite() {
        Ok(Number::Float(x))
    } else if x.is_nan() {
        Err(errors::math(at, "result is not a real number"))
    } else {
        Err(errors::limit(errors::FLOAT_RANGE))
    }
}

/// `x` as i64 when it is integral and in range, else `None`.
pub(super) fn f64_to_i64(x: f64) -> Option<i64> {
    let in_range = (-TWO_POW_63..TWO_POW_63).contains(&x);
    (in_range && x.fract() == 0.0).then_some(x as i64)
}

/// Applies an integer op when both are Int, else the float op.
fn binary(
    a: Number,
    b: Number,
    at: usize,
    int_op: fn(i64, i64) -> Option<i64>,
    float_op: fn(f64, f64) -> f64,
) -> Result<Number, CalcError> {
    match (a, b) {
        (Number::Int(x), Number::Int(y)) => {
            int_op(x, y).map(Number::Int).ok_or_else(errors::overflow)
        }
        _ => finite(float_op(a.to_f64(), b.to_f64()), at),
    }
}

/// `a + b`.
pub(super) fn add(a: Number, b: Number, at: usize) -> Result<Number, CalcError> {
    binary(a, b, at, i64::checked_add, |x, y| x + y)
}

/// `a - b`.
pub(super) fn sub(a: Number, b: Number, at: usize) -> Result<Number, CalcError> {
    binary(a, b, at, i64::checked_sub, |x, y| x - y)
}

/// `a * b`.
pub(super) fn mul(a: Number, b: Number, at: usize) -> Result<Number, CalcError> {
    binary(a, b, at, i64::checked_mul, |x, y| x * y)
}

/// `-a` (negating i64::MIN is an overflow).
pub(super) fn neg(a: Number) -> Result<Number, CalcError> {
    match a {
        Number::Int(x) => x
            .checked_neg()
            .map(Number::Int)
            .ok_or_else(errors::overflow),
        Number::Float(x) => Ok(Number::Float(-x)),
    }
}

/// True for Int 0 and for ±0.0.
fn is_zero(n: Number) -> bool {
    match n {
        Number::Int(x) => x == 0,
        Number::Float(x) => x == 0.0,
    }
}

/// `a / b`: Int when both are Int and the division is exact, else Float.
pub(super) fn div(a: Number, b: Number, at: usize) -> Result<Number, CalcError> {
    if is_zero(b) {
        return Err(errors::math(at, "division by zero"));
    }
    match (a, b) {
        (Number::Int(x), Number::Int(-1)) => neg(Number::Int(x)),
        (Number::Int(x), Number::Int(y)) if x % y == 0 => Ok(Number::Int(x / y)),
        _ => finite(a.to_f64() / b.to_f64(), at),
    }
}

/// `a % b` with Python semantics: the result has the divisor's sign.
pub(super) fn rem(a: Number, b: Number, at: usize) -> Result<Number, CalcError> {
    if is_zero(b) {
        return Err(errors::math(at, "modulo by zero"));
    }
    match (a, b) {
        (Number::Int(_), Number::Int(-1)) => Ok(Number::Int(0)),
        (Number::Int(x), Number::Int(y)) => {
            let r = x % y;
            // r and y have opposite signs here, so r + y cannot overflow.
            let fixed = if r != 0 && (r < 0) != (y < 0) {
                r + y
            } else {
                r
            };
            Ok(Number::Int(fixed))
        }
        _ => {
            let (x, y) = (a.to_f64(), b.to_f64());
            let r = x % y;
            let fixed = if r != 0.0 && (r < 0.0) != (y < 0.0) {
                r + y
            } else {
                r
            };
            finite(fixed, at)
        }
    }
}

/// Exact `base ^ exp` for `exp >= 0`; fails fast on overflow (at most a few
/// dozen multiplications whatever the exponent).
fn int_pow(base: i64, exp: i64) -> Result<Number, CalcError> {
    let result = match u32::try_from(exp) {
        Ok(e) => base.checked_pow(e),
        // exp > u32::MAX: only 0, 1 and -1 stay in range.
        Err(_) => match base {
            0 | 1 => Some(base),
            -1 => Some(if exp % 2 == 0 { 1 } else { -1 }),
            _ => None,
        },
    };
    result.map(Number::Int).ok_or_else(errors::overflow)
}

/// `base ^ exp`: exact for Int^(Int >= 0), else f64.
pub(super) fn pow(base: Number, exp: Number, at: usize) -> Result<Number, CalcError> {
    if is_zero(base) && exp.to_f64() < 0.0 {
        return Err(errors::math(
            at,
            "division by zero: 0 raised to a negative power",
        ));
    }
    match (base, exp) {
        (Number::Int(b), Number::Int(e)) if e >= 0 => int_pow(b, e),
        _ => finite(base.to_f64().powf(exp.to_f64()), at),
    }
}

/// Exact numeric order of an i64 and a finite f64.
fn cmp_int_float(i: i64, x: f64) -> Ordering {
    if x >= TWO_POW_63 {
        return Ordering::Less;
    }
    if x < -TWO_POW_63 {
        return Ordering::Greater;
    }
    let whole = x.trunc();
    // In range and integral, so the conversion is exact.
    match i.cmp(&(whole as i64)) {
        Ordering::Equal => 0.0f64.partial_cmp(&(x - whole)).unwrap_or(Ordering::Equal),
        other => other,
    }
}

/// Exact numeric order of two numbers (Int and Float compared by value).
pub(super) fn compare(a: Number, b: Number) -> Ordering {
    match (a, b) {
        (Number::Int(x), Number::Int(y)) => x.cmp(&y),
        (Number::Int(x), Number::Float(y)) => cmp_int_float(x, y),
        (Number::Float(x), Number::Int(y)) => cmp_int_float(y, x).reverse(),
        (Number::Float(x), Number::Float(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
    }
}
