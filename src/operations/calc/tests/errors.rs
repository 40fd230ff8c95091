//! Table of expressions that must fail, with the variant, offset and
//! message expected.

use super::{eval, CalcError};

/// Which error variant is expected.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Parse,
    Math,
    Limit,
}
use Kind::{Limit, Math, Parse};

const TOO_LARGE: &str = "integer too large: the result would have more than 10000 digits";

/// (expression, variant, `at` (ignored for Limit), message substring)
const CASES: &[(&str, Kind, usize, &str)] = &[
    // parse errors
    ("", Parse, 0, "empty expression"),
    ("   \t\n ", Parse, 0, "empty expression"),
    ("2 3", Parse, 2, "unexpected number"),
    ("1 + )", Parse, 4, "unexpected ')'"),
    (")", Parse, 0, "unexpected ')'"),
    ("1 +", Parse, 3, "unexpected end of expression"),
    ("1 $ 2", Parse, 2, "unexpected character '$'"),
    ("(1+2", Parse, 4, "expected ')' to close '(' at 0"),
    ("2*(3+(4)", Parse, 8, "expected ')' to close '(' at 2"),
    ("(1 2)", Parse, 3, "expected ')' to close '(' at 0"),
    ("foo(1)", Parse, 0, "unknown function 'foo'"),
    ("1 + x", Parse, 4, "unknown name 'x'"),
    ("Sqrt(4)", Parse, 0, "unknown function 'Sqrt'"),
    ("PI", Parse, 0, "unknown name 'PI'"),
    ("sqrt(1, 2)", Parse, 0, "sqrt takes 1 argument, got 2"),
    ("1+sqrt()", Parse, 2, "sqrt takes 1 argument, got 0"),
    ("max()", Parse, 0, "max takes at least 1 argument, got 0"),
    ("max(1,)", Parse, 6, "unexpected ')'"),
    ("max(1 2)", Parse, 6, "expected ')' to close '(' at 3"),
    (
        "sqrt 4",
        Parse,
        0,
        "function 'sqrt' needs its arguments in parentheses",
    ),
    ("2 pi", Parse, 2, "unexpected name 'pi'"),
    ("1,2", Parse, 1, "unexpected ','"),
    ("*3", Parse, 0, "unexpected '*'"),
    (".", Parse, 0, "unexpected character '.'"),
    ("1..2", Parse, 2, "unexpected number"),
    ("2e", Parse, 1, "unexpected name 'e'"),
    // character (not byte) offsets after multibyte text
    ("é+", Parse, 0, "unknown name 'é'"),
    ("1+é", Parse, 2, "unknown name 'é'"),
    ("\u{3000}\u{3000})", Parse, 2, "unexpected ')'"),
    ("max(1,\u{a0}2 €", Parse, 9, "unexpected character '€'"),
    ("日本(1)", Parse, 0, "unknown function '日本'"),
    ("(\u{2003}1 + 2", Parse, 7, "expected ')' to close '(' at 0"),
    ("1 + 2 😀", Parse, 6, "unexpected character '😀'"),
    ("\u{0}", Parse, 0, "unexpected character '\\0'"),
    // math errors, at the responsible operator / function / literal
    ("1/0", Math, 1, "division by zero"),
    ("1.5 / 0.0", Math, 4, "division by zero"),
    ("5 % 0", Math, 2, "modulo by zero"),
    ("5.5 % 0.0", Math, 4, "modulo by zero"),
    ("0^-1", Math, 1, "0 raised to a negative power"),
    ("0.0^-2.5", Math, 3, "0 raised to a negative power"),
    ("1 + sqrt(-1)", Math, 4, "sqrt of a negative number"),
    ("ln(0)", Math, 0, "ln of zero"),
    ("ln(-1)", Math, 0, "ln of a negative number"),
    ("log10(-1)", Math, 0, "log10 of a negative number"),
    ("log2(0)", Math, 0, "log2 of zero"),
    ("(-8)^0.5", Math, 4, "result is not a real number"),
    ("é + 1/0", Parse, 0, "unknown name 'é'"),
    ("ab + (1/0)", Parse, 0, "unknown name 'ab'"),
    ("é1 * 1/0", Parse, 0, "unknown name 'é1'"),
    // limits: results and literals too large for f64
    ("exp(1000)", Limit, 0, "result too large"),
    ("1e999", Limit, 0, "number too large: 1e999"),
    ("2 * 1e999", Limit, 0, "number too large"),
    ("1e308 * 10", Limit, 0, "result too large"),
    ("1e308 + 1e308", Limit, 0, "result too large"),
    ("10.0^400", Limit, 0, "result too large"),
    // integers of more than MAX_INT_DIGITS digits (see big.rs)
    ("9^9^9^9", Limit, 0, TOO_LARGE),
    ("2^4294967296", Limit, 0, TOO_LARGE),
    ("2^(10^10)", Limit, 0, TOO_LARGE),
    ("10^10000", Limit, 0, TOO_LARGE),
    ("(10^9999)*(10^9999)", Limit, 0, TOO_LARGE),
    ("-(10^9999)*10", Limit, 0, TOO_LARGE),
    ("2^1024 + 0.5", Limit, 0, "integer too large to convert"),
    ("sqrt(10^400)", Limit, 0, "integer too large to convert"),
    ("10^400 / 3", Limit, 0, "result too large"),
];

/// Splits an error into (variant, at, message).
fn parts(err: &CalcError) -> (Kind, usize, &str) {
    match err {
        CalcError::Parse { at, message } => (Parse, *at, message),
        CalcError::Math { at, message } => (Math, *at, message),
        CalcError::Limit { message } => (Limit, 0, message),
    }
}

#[test]
fn error_table() {
    assert!(CASES.len() >= 30, "only {} error cases", CASES.len());
    for (expr, kind, at, needle) in CASES {
        let err = match eval(expr) {
            Ok(v) => panic!("{expr:?}: got {v:?}, want {kind:?} error"),
            Err(e) => e,
        };
        let (got_kind, got_at, message) = parts(&err);
        assert_eq!(got_kind, *kind, "{expr:?}: {err:?}");
        assert_eq!(got_at, *at, "{expr:?}: {err:?}");
        assert!(
            message.contains(needle),
            "{expr:?}: {message:?} lacks {needle:?}"
        );
        let first_upper = message.starts_with(char::is_uppercase);
        assert!(!first_upper, "{expr:?}: message not lowercase");
    }
}
