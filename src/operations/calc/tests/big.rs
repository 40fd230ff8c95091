//! Exact integers beyond 64 bits: values checked against Python 3, the
//! digit limit, mixed integer/float rules, and refusals decided before the
//! oversized value is computed.

use super::super::int::OVER_LIMIT_COMPUTED;
use super::{eval, evaluate, CalcError, CalcLimits, Number};

/// 100! as Python prints `math.factorial(100)` (158 digits).
const FACTORIAL_100: &str = "93326215443944152681699238856266700490715968264381621468592963895217599993229915608941463976156518286253697920827223758251185210916864000000000000000000000000";

/// (expression, result text as Python 3 prints it for the same integers)
const EXACT: &[(&str, &str)] = &[
    ("2^64", "18446744073709551616"),
    ("2^100", "1267650600228229401496703205376"),
    ("-(2^100)", "-1267650600228229401496703205376"),
    ("-2^100", "-1267650600228229401496703205376"),
    ("9223372036854775807+1", "9223372036854775808"),
    ("-9223372036854775807-2", "-9223372036854775809"),
    ("3037000500*3037000500", "9223372037000250000"),
    ("-(-9223372036854775807-1)", "9223372036854775808"),
    ("abs(-9223372036854775807-1)", "9223372036854775808"),
    ("(-9223372036854775807-1)/-1", "9223372036854775808"),
    ("9223372036854775808", "9223372036854775808"),
    ("21533 % (260*399)^4", "21533"),
    ("2^64 % 7", "2"),
    ("-2^64 % 7", "5"),
    ("2^64 % -7", "-5"),
    ("(-2)^65", "-36893488147419103232"),
    (
        "(2^64)^3",
        "6277101735386680763835789423207666416102355444464034512896",
    ),
    ("-(2^64)*(2^64)", "-340282366920938463463374607431768211456"),
    ("1^(2^64)", "1"),
    ("(-1)^(2^64+1)", "-1"),
    ("0^(2^64)", "0"),
    ("(2^64)^0", "1"),
    ("floor(2^64)", "18446744073709551616"),
    ("max(2^64, 1.5)", "18446744073709551616"),
    ("max(2^64, 18446744073709551616.0)", "18446744073709551616"),
    ("0000000000000000000000000000000000000000001", "1"),
];

/// (expression, a value that is small again: Int, never Big)
const BACK_TO_SMALL: &[(&str, i64)] = &[
    ("2^64 - 2^64", 0),
    ("2^64 / 2^32", 4_294_967_296),
    ("-9223372036854775808", i64::MIN),
    ("(2^200) % 1000", 376),
    ("-(2^63)", i64::MIN),
];

/// (expression, float as Python 3 computes it)
const MIXED: &[(&str, f64)] = &[
    ("2^64 / 3", 6.148914691236517e18),
    ("(10^400 + 1) / 10^399", 10.0),
    ("2^64 + 0.5", 1.8446744073709552e19),
    ("2^1023 * 1.0", 8.98846567431158e307),
    ("sqrt(2^200)", 1.2676506002282294e30),
    ("min(-(2^70), -1e30)", -1e30),
    ("2^-(2^64)", 0.0),
];

#[test]
fn big_results_match_python() {
    for (expr, want) in EXACT {
        match eval(expr) {
            Ok(n) => assert_eq!(n.to_string(), *want, "{expr:?}: {n:?}"),
            Err(e) => panic!("{expr:?}: {e}"),
        }
    }
}

#[test]
fn small_results_are_int_again() {
    for (expr, want) in BACK_TO_SMALL {
        assert_eq!(eval(expr), Ok(Number::Int(*want)), "{expr:?}");
    }
}

#[test]
fn mixed_integer_and_float_follow_python() {
    for (expr, want) in MIXED {
        assert_eq!(eval(expr), Ok(Number::Float(*want)), "{expr:?}");
    }
}

#[test]
fn a_product_of_a_hundred_factors_is_exact() {
    let product = (1..=100)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join("*");
    assert_eq!(
        eval(&product).map(|n| n.to_string()),
        Ok(FACTORIAL_100.to_string())
    );
    // The same, divided back down factor by factor, is 1 again.
    let back = format!(
        "({product}){}",
        (1..=100).map(|i| format!("/{i}")).collect::<String>()
    );
    assert_eq!(eval(&back), Ok(Number::Int(1)));
}

#[test]
fn the_digit_limit_is_ten_thousand_digits() {
    assert_eq!(super::super::MAX_INT_DIGITS, 10_000);
    let largest = eval("10^10000 - 1");
    // 10^10000 itself is refused, so this is refused too: the
    // intermediate counts.
    assert!(matches!(largest, Err(CalcError::Limit { .. })));
    let n = eval("10^9999 * 9 + (10^9999 - 1)").expect("10000 nines");
    assert_eq!(n.to_string(), "9".repeat(10_000));
    let negative = eval("-(10^9999 * 9 + (10^9999 - 1))").expect("negative");
    assert_eq!(negative.to_string().len(), 10_001);
    let near = eval("7^11830").expect("9998 digits");
    assert_eq!(near.to_string().len(), 9998);
    assert!(near.to_string().starts_with("32345462743164492945"));
    assert!(near.to_string().ends_with("92098282669586783249"));
}

#[test]
fn long_literals_are_counted_in_digits() {
    let limits = CalcLimits {
        max_len: 20_000,
        ..CalcLimits::default()
    };
    let nines = "9".repeat(10_000);
    let n = evaluate(&nines, &limits).expect("10000 digits");
    assert_eq!(n.to_string(), nines);
    let err = evaluate(&format!("1{nines}"), &limits).unwrap_err();
    assert!(
        err.to_string()
            .contains("has 10001 digits, the limit is 10000"),
        "{err}"
    );
    // Leading zeros do not count.
    let padded = format!("000{nines}");
    assert_eq!(evaluate(&padded, &limits).map(|n| n.to_string()), Ok(nines));
}

#[test]
fn oversized_results_are_refused_before_they_are_computed() {
    for expr in [
        "9^9^9^9",
        "2^(10^10)",
        "(10^9999)*(10^9999)",
        "(2^33000)^2",
        "3^(2^64)",
        "(-7)^99999",
        "9^9^9^9^9^9^9",
    ] {
        OVER_LIMIT_COMPUTED.with(|n| n.set(0));
        assert!(
            matches!(eval(expr), Err(CalcError::Limit { .. })),
            "{expr:?}"
        );
        let computed = OVER_LIMIT_COMPUTED.with(|n| n.get());
        assert_eq!(computed, 0, "{expr:?} was computed before being refused");
    }
}

#[test]
fn big_integer_work_per_expression_is_bounded() {
    // A few hundred near-limit powers fit in 4096 bytes; the work budget
    // refuses the expression long before its end.
    let powers = vec!["7^11830"; 511].join("+");
    assert!(powers.len() <= 4096);
    match eval(&powers) {
        Err(CalcError::Limit { message }) => {
            assert!(
                message.contains("too much big-integer arithmetic"),
                "{message}"
            )
        }
        other => panic!("want a limit error, got {other:?}"),
    }
    // Ten of them are fine, and so is 1000! (a thousand small factors).
    let ten = ["7^11830"; 10].join("+");
    assert!(eval(&ten).is_ok());
    let factorial = (1..=1000)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join("*");
    assert!(factorial.len() <= 4096);
    let n = eval(&factorial).expect("1000!");
    assert_eq!(n.to_string().len(), 2568);
    // The budget is per expression: the next one starts afresh.
    assert!(eval(&ten).is_ok());
}
