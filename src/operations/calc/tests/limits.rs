//! Hostile input: length and depth limits, huge inputs, and bounded work.

use super::{eval, evaluate, CalcError, CalcLimits, Number};

/// Limits allowing `max_len` bytes with the default depth.
fn long(max_len: usize) -> CalcLimits {
    CalcLimits {
        max_len,
        ..CalcLimits::default()
    }
}

/// Asserts `result` is a Limit error whose message contains `needle`.
fn assert_limit(result: Result<Number, CalcError>, needle: &str) {
    match result {
        Err(CalcError::Limit { message }) => {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}")
        }
        other => panic!("want Limit error containing {needle:?}, got {other:?}"),
    }
}

#[test]
fn too_long_is_rejected_before_lexing() {
    let expr = "1".repeat(5000);
    assert_limit(eval(&expr), "expression is 5000 bytes, limit is 4096");
    // Length is counted in bytes: 2100 'é' are 4200 bytes.
    let expr = "é".repeat(2100);
    assert_limit(eval(&expr), "expression is 4200 bytes, limit is 4096");
    // Exactly at the limit is fine.
    let expr = format!("1{}", "+1".repeat(2047));
    assert_eq!(eval(&expr), Ok(Number::Int(2048)));
}

#[test]
fn deep_parentheses() {
    let deep = |n: usize| format!("{}1{}", "(".repeat(n), ")".repeat(n));
    assert_eq!(eval(&deep(64)), Ok(Number::Int(1)));
    assert_limit(eval(&deep(65)), "nesting deeper than 64");
    let open_only = "(".repeat(100_000);
    assert_limit(
        evaluate(&open_only, &long(1_000_000)),
        "nesting deeper than 64",
    );
}

#[test]
fn deep_unary_signs_calls_and_powers() {
    let limits = long(1_000_000);
    assert_eq!(eval(&format!("{}3", "-".repeat(64))), Ok(Number::Int(3)));
    assert_limit(
        eval(&format!("{}3", "-".repeat(65))),
        "nesting deeper than 64",
    );
    let minus = format!("{}1", "-".repeat(100_000));
    assert_limit(evaluate(&minus, &limits), "nesting deeper than 64");
    let plus = format!("{}1", "+-".repeat(100_000));
    assert_limit(evaluate(&plus, &limits), "nesting deeper than 64");
    let calls = format!("{}1{}", "abs(".repeat(100_000), ")".repeat(100_000));
    assert_limit(evaluate(&calls, &limits), "nesting deeper than 64");
    let chain = format!("2{}", "^2".repeat(100_000));
    assert_limit(evaluate(&chain, &limits), "nesting deeper than 64");
    let chain = format!("1{}", "^1".repeat(64));
    assert_eq!(eval(&chain), Ok(Number::Int(1)));
    assert_limit(
        eval(&format!("1{}", "^1".repeat(65))),
        "nesting deeper than 64",
    );
}

#[test]
fn custom_depth_limit() {
    let limits = CalcLimits {
        max_len: 4096,
        max_depth: 3,
    };
    assert_eq!(evaluate("((1))", &limits), Ok(Number::Int(1)));
    assert_limit(evaluate("((((1))))", &limits), "nesting deeper than 3");
    let zero = CalcLimits {
        max_len: 4096,
        max_depth: 0,
    };
    assert_eq!(evaluate("1+2*3", &zero), Ok(Number::Int(7)));
    assert_limit(evaluate("-1", &zero), "nesting deeper than 0");
}

#[test]
fn huge_power_towers_fail_fast() {
    for expr in [
        "9^9^9^9",
        "2^9223372036854775807",
        "(-3)^99999999999",
        "9^9^9^9^9^9^9",
    ] {
        assert_limit(eval(expr), "integer too large");
    }
}

#[test]
fn ten_megabyte_inputs_are_fast_and_safe() {
    let limits = long(20_000_000);
    let sum = format!("1{}", "+1".repeat(5_000_000 - 1));
    assert_eq!(sum.len(), 9_999_999);
    assert_eq!(evaluate(&sum, &limits), Ok(Number::Int(5_000_000)));
    let parens = "(".repeat(10_000_000);
    assert_limit(evaluate(&parens, &limits), "nesting deeper than 64");
    let minus = format!("{}1", "-".repeat(10_000_000));
    assert_limit(evaluate(&minus, &limits), "nesting deeper than 64");
    let args = format!("max(0{})", ",1".repeat(4_000_000));
    assert_eq!(evaluate(&args, &limits), Ok(Number::Int(1)));
    let digits = "9".repeat(10_000_000);
    assert_limit(
        evaluate(&digits, &limits),
        "has 10000000 digits, the limit is 10000",
    );
    let name = "x".repeat(10_000_000);
    let err = evaluate(&name, &limits).unwrap_err();
    assert!(err.to_string().len() < 100, "message not bounded");
    let decimal = format!("0.{}", "1".repeat(10_000_000));
    assert!(evaluate(&decimal, &limits).is_ok());
}
