//! Built-in functions and constants: lookup by name, arity, argument folding
//! and application.

use std::cmp::Ordering;

use super::errors;
use super::ops::{compare, f64_to_i64, finite, neg};
use super::{CalcError, Number};

/// The value of a named constant, if `name` is one.
pub(super) fn constant(name: &str) -> Option<Number> {
    match name {
        "pi" => Some(Number::Float(std::f64::consts::PI)),
        "e" => Some(Number::Float(std::f64::consts::E)),
        _ => None,
    }
}

/// A built-in function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Func {
    Sqrt,
    Abs,
    Ln,
    Log10,
    Log2,
    Exp,
    Sin,
    Cos,
    Tan,
    Floor,
    Ceil,
    Round,
    Min,
    Max,
}

impl Func {
    /// The function called `name` (case-sensitive), if any.
    pub(super) fn lookup(name: &str) -> Option<Func> {
        let f = match name {
            "sqrt" => Func::Sqrt,
            "abs" => Func::Abs,
            "ln" => Func::Ln,
            "log10" => Func::Log10,
            "log2" => Func::Log2,
            "exp" => Func::Exp,
            "sin" => Func::Sin,
            "cos" => Func::Cos,
            "tan" => Func::Tan,
            "floor" => Func::Floor,
            "ceil" => Func::Ceil,
            "round" => Func::Round,
            "min" => Func::Min,
            "max" => Func::Max,
            _ => return None,
        };
        Some(f)
    }

    /// True for the functions taking one or more arguments.
    fn is_variadic(self) -> bool {
        matches!(self, Func::Min | Func::Max)
    }

    /// Checks the argument count; a wrong count is a parse error at `at`
    /// (the function name).
    pub(super) fn check_arity(self, name: &str, count: usize, at: usize) -> Result<(), CalcError> {
        let (ok, wanted) = if self.is_variadic() {
            (count >= 1, "at least 1 argument")
        } else {
            (count == 1, "1 argument")
        };
        if ok {
            Ok(())
        } else {
            Err(errors::parse(
                at,
                format!("{name} takes {wanted}, got {count}"),
            ))
        }
    }

    /// Combines the running value with the next argument: min/max keep the
    /// smaller/larger (the earlier one on ties); others keep the first.
    pub(super) fn fold(self, acc: Number, next: Number) -> Number {
        let replace = match self {
            Func::Min => compare(&next, &acc) == Ordering::Less,
            Func::Max => compare(&next, &acc) == Ordering::Greater,
            _ => false,
        };
        if replace {
            next
        } else {
            acc
        }
    }

    /// Applies the function to its (folded) argument; errors point at `at`.
    pub(super) fn apply(self, x: Number, at: usize) -> Result<Number, CalcError> {
        match self {
            Func::Min | Func::Max => Ok(x),
            Func::Abs => abs(x),
            Func::Floor => Ok(to_integral(x, f64::floor)),
            Func::Ceil => Ok(to_integral(x, f64::ceil)),
            Func::Round => Ok(to_integral(x, f64::round)),
            _ => self.apply_real(x.to_f64()?, at),
        }
    }

    /// Applies a function whose result is always Float.
    fn apply_real(self, x: f64, at: usize) -> Result<Number, CalcError> {
        let y = match self {
            Func::Sqrt => domain(x, at, "sqrt", false)?.sqrt(),
            Func::Ln => domain(x, at, "ln", true)?.ln(),
            Func::Log10 => domain(x, at, "log10", true)?.log10(),
            Func::Log2 => domain(x, at, "log2", true)?.log2(),
            Func::Exp => x.exp(),
            Func::Sin => x.sin(),
            Func::Cos => x.cos(),
            Func::Tan => x.tan(),
            _ => x,
        };
        finite(y, at)
    }
}

/// Rejects negative `x` (and zero when `zero_bad`) for function `name`.
fn domain(x: f64, at: usize, name: &str, zero_bad: bool) -> Result<f64, CalcError> {
    if x < 0.0 {
        Err(errors::math(at, format!("{name} of a negative number")))
    } else if zero_bad && x == 0.0 {
        Err(errors::math(at, format!("{name} of zero")))
    } else {
        Ok(x)
    }
}

/// Absolute value; integers stay exact (abs(i64::MIN) is the big 2^63).
fn abs(x: Number) -> Result<Number, CalcError> {
    match x {
        Number::Int(i) if i < 0 => neg(x),
        Number::Big(ref b) if b.sign() == num_bigint::Sign::Minus => neg(x),
        Number::Float(f) => Ok(Number::Float(f.abs())),
        _ => Ok(x),
    }
}

/// floor/ceil/round: integers unchanged; Float rounded, as Int when it
/// fits in 64 bits (else it stays a Float, as before big integers).
fn to_integral(x: Number, round: fn(f64) -> f64) -> Number {
    match x {
        Number::Float(f) => {
            let r = round(f);
            f64_to_i64(r).map_or(Number::Float(r), Number::Int)
        }
        _ => x,
    }
}
