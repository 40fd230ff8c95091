//! Arithmetic on [`Number`]: checked `i64` operations first, exact big
//! integers (see `int`) when those overflow, f64 operations whose
//! non-finite results become errors, and numeric comparison.
//!
//! Every function takes `at`, the character offset of the operator or
//! function responsible, for the error it may return.

use std::cmp::Ordering;

use num_bigint::BigInt;

use super::errors;
use super::int;
use super::{CalcError, Number};

/// Smallest f64 that is >= 2^63 (i.e. 2^63 itself), the exclusive upper
/// bound of f64 values that convert to i64 exactly.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

impl Number {
    /// The value as f64 (large integers round to the nearest f64); an
    /// integer beyond the f64 range is a `limit` error.
    pub(super) fn to_f64(&self) -> Result<f64, CalcError> {
        match self {
            Number::Int(i) => Ok(*i as f64),
            Number::Big(b) => int::to_f64(b),
            Number::Float(x) => Ok(*x),
        }
    }

    /// True for an integer or float below zero.
    fn is_negative(&self) -> bool {
        match self {
            Number::Int(i) => *i < 0,
            Number::Big(b) => b.sign() == num_bigint::Sign::Minus,
            Number::Float(x) => *x < 0.0,
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

/// The three ways of doing one operation: on i64 (`None` on overflow),
/// on big integers, on f64.
struct Ways {
    small: fn(i64, i64) -> Option<i64>,
    big: fn(&BigInt, &BigInt) -> Result<Number, CalcError>,
    float: fn(f64, f64) -> f64,
}

/// Applies an operation: i64 when both are Int and it does not overflow,
/// exact big integers when both are integers, else f64.
fn binary(a: Number, b: Number, at: usize, ways: Ways) -> Result<Number, CalcError> {
    if let (Number::Int(x), Number::Int(y)) = (&a, &b) {
        if let Some(r) = (ways.small)(*x, *y) {
            return Ok(Number::Int(r));
        }
    }
    match (int::big(&a), int::big(&b)) {
        (Some(x), Some(y)) => (ways.big)(&x, &y),
        _ => finite((ways.float)(a.to_f64()?, b.to_f64()?), at),
    }
}

/// `a + b`.
pub(super) fn add(a: Number, b: Number, at: usize) -> Result<Number, CalcError> {
    let ways = Ways {
        small: i64::checked_add,
        big: int::add,
        float: |x, y| x + y,
    };
    binary(a, b, at, ways)
}

/// `a - b`.
pub(super) fn sub(a: Number, b: Number, at: usize) -> Result<Number, CalcError> {
    let ways = Ways {
        small: i64::checked_sub,
        big: int::sub,
        float: |x, y| x - y,
    };
    binary(a, b, at, ways)
}

/// `a * b`.
pub(super) fn mul(a: Number, b: Number, at: usize) -> Result<Number, CalcError> {
    let ways = Ways {
        small: i64::checked_mul,
        big: int::mul,
        float: |x, y| x * y,
    };
    binary(a, b, at, ways)
}

/// `-a` (negating i64::MIN gives the big integer 2^63).
pub(super) fn neg(a: Number) -> Result<Number, CalcError> {
    match a {
        Number::Int(x) => match x.checked_neg() {
            Some(n) => Ok(Number::Int(n)),
            None => int::checked(-BigInt::from(x)),
        },
        Number::Big(b) => int::checked(-b),
        Number::Float(x) => Ok(Number::Float(-x)),
    }
}

/// True for Int 0 and for ±0.0 (a Big is never zero).
fn is_zero(n: &Number) -> bool {
    match n {
        Number::Int(x) => *x == 0,
        Number::Big(_) => false,
        Number::Float(x) => *x == 0.0,
    }
}

/// `a / b`: an integer when both are integers and the division is exact,
/// else Float.
pub(super) fn div(a: Number, b: Number, at: usize) -> Result<Number, CalcError> {
    if is_zero(&b) {
        return Err(errors::math(at, "division by zero"));
    }
    match (&a, &b) {
        (Number::Int(x), Number::Int(-1)) => neg(Number::Int(*x)),
        (Number::Int(x), Number::Int(y)) if x % y == 0 => Ok(Number::Int(x / y)),
        (Number::Int(_), Number::Int(_)) | (Number::Float(_), _) | (_, Number::Float(_)) => {
            finite(a.to_f64()? / b.to_f64()?, at)
        }
        _ => {
            // At least one Big and no Float: both convert.
            let (x, y) = (
                int::big(&a).unwrap_or_default(),
                int::big(&b).unwrap_or_default(),
            );
            match int::exact_div(&x, &y)? {
                Some(q) => int::checked(q),
                None => finite(int::ratio(&x, &y)?, at),
            }
        }
    }
}

/// `a % b` with Python semantics: the result has the divisor's sign.
pub(super) fn rem(a: Number, b: Number, at: usize) -> Result<Number, CalcError> {
    if is_zero(&b) {
        return Err(errors::math(at, "modulo by zero"));
    }
    match (&a, &b) {
        (Number::Int(_), Number::Int(-1)) => Ok(Number::Int(0)),
        (Number::Int(x), Number::Int(y)) => {
            let r = x % y;
            // r and y have opposite signs here, so r + y cannot overflow.
            let fixed = if r != 0 && (r < 0) != (*y < 0) {
                r + y
            } else {
                r
            };
            Ok(Number::Int(fixed))
        }
        (Number::Float(_), _) | (_, Number::Float(_)) => {
            let (x, y) = (a.to_f64()?, b.to_f64()?);
            let r = x % y;
            let fixed = if r != 0.0 && (r < 0.0) != (y < 0.0) {
                r + y
            } else {
                r
            };
            finite(fixed, at)
        }
        _ => int::rem(
            &int::big(&a).unwrap_or_default(),
            &int::big(&b).unwrap_or_default(),
        ),
    }
}

/// Exact `base ^ exp` for `exp >= 0`: `i64::checked_pow` first (at most a
/// few dozen multiplications whatever the exponent), big integers when
/// that overflows.
fn int_pow(base: i64, exp: i64) -> Result<Number, CalcError> {
    let small = match u32::try_from(exp) {
        Ok(e) => base.checked_pow(e),
        // exp > u32::MAX: only 0, 1 and -1 stay in range.
        Err(_) => match base {
            0 | 1 => Some(base),
            -1 => Some(if exp % 2 == 0 { 1 } else { -1 }),
            _ => None,
        },
    };
    match small {
        Some(n) => Ok(Number::Int(n)),
        None => int::pow(&BigInt::from(base), &BigInt::from(exp)),
    }
}

/// `base ^ exp`: exact for an integer raised to an integer >= 0, else f64.
pub(super) fn pow(base: Number, exp: Number, at: usize) -> Result<Number, CalcError> {
    if is_zero(&base) && exp.is_negative() {
        return Err(errors::math(
            at,
            "division by zero: 0 raised to a negative power",
        ));
    }
    match (&base, &exp) {
        (Number::Int(b), Number::Int(e)) if *e >= 0 => int_pow(*b, *e),
        (Number::Float(_), _) | (_, Number::Float(_)) => {
            finite(base.to_f64()?.powf(exp.to_f64()?), at)
        }
        _ if !exp.is_negative() => int::pow(
            &int::big(&base).unwrap_or_default(),
            &int::big(&exp).unwrap_or_default(),
        ),
        _ => finite(base.to_f64()?.powf(exp.to_f64()?), at),
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

/// Exact numeric order of two numbers (integers and floats compared by
/// value, as Python does).
pub(super) fn compare(a: &Number, b: &Number) -> Ordering {
    match (a, b) {
        (Number::Int(x), Number::Int(y)) => x.cmp(y),
        (Number::Int(x), Number::Float(y)) => cmp_int_float(*x, *y),
        (Number::Float(x), Number::Int(y)) => cmp_int_float(*y, *x).reverse(),
        (Number::Float(x), Number::Float(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (Number::Big(x), Number::Float(y)) => int::cmp_float(x, *y),
        (Number::Float(x), Number::Big(y)) => int::cmp_float(y, *x).reverse(),
        // A Big is outside the i64 range, so a Big and an Int compare
        // like the two big integers.
        _ => int::big(a).cmp(&int::big(b)),
    }
}
