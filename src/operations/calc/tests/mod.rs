//! Tests for the calc module: value and error tables, limits, Display and
//! property tests.

mod big;
mod errors;
mod limits;
mod props;
mod values;

use super::{evaluate, CalcError, CalcLimits, Number};

/// Evaluates with the default limits.
fn eval(expr: &str) -> Result<Number, CalcError> {
    evaluate(expr, &CalcLimits::default())
}

#[test]
fn default_limits() {
    let limits = CalcLimits::default();
    assert_eq!(limits.max_len, 4096);
    assert_eq!(limits.max_depth, 64);
}

#[test]
fn display_table() {
    let cases: &[(Number, &str)] = &[
        (Number::Int(0), "0"),
        (Number::Int(-42), "-42"),
        (Number::Int(i64::MAX), "9223372036854775807"),
        (Number::Int(i64::MIN), "-9223372036854775808"),
        (Number::Float(4.0), "4"),
        (Number::Float(-4.0), "-4"),
        (Number::Float(3.5), "3.5"),
        (Number::Float(0.1 + 0.2), "0.30000000000000004"),
        (Number::Float(0.0), "0"),
        (Number::Float(-0.0), "0"),
        (Number::Float(1e30), "1e30"),
        (Number::Float(-1e30), "-1e30"),
        (Number::Float(1e16), "1e16"),
        (Number::Float(9_999_999_999_999_998.0), "9999999999999998"),
        (Number::Float(1e15), "1000000000000000"),
        (Number::Float(1.5e-7), "1.5e-7"),
        (Number::Float(1e-6), "0.000001"),
        (Number::Float(9.9e-7), "9.9e-7"),
        (Number::Float(2.5e300), "2.5e300"),
        (Number::Float(f64::MIN_POSITIVE), "2.2250738585072014e-308"),
        (Number::Float(f64::INFINITY), "inf"),
    ];
    for (n, want) in cases {
        assert_eq!(n.to_string(), *want, "display of {n:?}");
    }
}

#[test]
fn display_honors_width() {
    assert_eq!(format!("{:>5}", Number::Int(42)), "   42");
    assert_eq!(format!("{:<4}|", Number::Float(1.5)), "1.5 |");
}

#[test]
fn display_of_evaluated_results() {
    let cases = [
        ("sqrt(16)", "4"),
        ("7/2", "3.5"),
        ("2.0^100", "1.2676506002282294e30"),
        ("1/3", "0.3333333333333333"),
        ("10^-7", "1e-7"),
        ("-0.0", "0"),
        ("2^62", "4611686018427387904"),
    ];
    for (expr, want) in cases {
        let got = eval(expr).map(|n| n.to_string());
        assert_eq!(got.as_deref(), Ok(want), "display of {expr:?}");
    }
}

#[test]
fn error_display() {
    let err = eval("1 + )").unwrap_err();
    assert_eq!(err.to_string(), "parse error at 4: unexpected ')'");
    let err = eval("1/0").unwrap_err();
    assert_eq!(err.to_string(), "math error at 1: division by zero");
    let err = eval("10^10000").unwrap_err();
    assert!(err.to_string().starts_with("integer too large: the result"));
}
