//! Table of expressions that evaluate successfully.

use super::{eval, Number};

/// Expected result: exact Int, or Float compared with a relative tolerance.
#[derive(Debug, Clone, Copy)]
enum Want {
    I(i64),
    F(f64),
}
use Want::{F, I};

const PI: f64 = std::f64::consts::PI;
const E: f64 = std::f64::consts::E;

const CASES: &[(&str, Want)] = &[
    // integers and precedence
    ("2+3*4", I(14)),
    ("(1+2)*3", I(9)),
    ("10-4-3", I(3)),
    ("100/10/5", I(2)),
    ("2*3+4*5", I(26)),
    ("1 + 2 - 3 + 4", I(4)),
    ("  42  ", I(42)),
    ("\t1\n+\n2\t", I(3)),
    ("007", I(7)),
    ("9223372036854775807", I(i64::MAX)),
    ("-9223372036854775807-1", I(i64::MIN)),
    ("((((5))))", I(5)),
    // division
    ("6/3", I(2)),
    ("7/2", F(3.5)),
    ("-6/3", I(-2)),
    ("1/4", F(0.25)),
    ("7.0/2", F(3.5)),
    ("-9223372036854775807/-1", I(i64::MAX)),
    // modulo (Python semantics)
    ("-7 % 3", I(2)),
    ("7 % -3", I(-2)),
    ("7 % 3", I(1)),
    ("-7 % -3", I(-1)),
    ("6 % 3", I(0)),
    ("7.5 % 2", F(1.5)),
    ("-7.5 % 2", F(0.5)),
    ("(-9223372036854775807-1) % -1", I(0)),
    // powers and unary signs
    ("2^3^2", I(512)),
    ("2^-1", F(0.5)),
    ("-2^2", I(-4)),
    ("(-2)^2", I(4)),
    ("(-2)^3", I(-8)),
    ("--3", I(3)),
    ("+-+3", I(-3)),
    ("2*-3", I(-6)),
    ("2--3", I(5)),
    ("2^0", I(1)),
    ("0^0", I(1)),
    ("2^62", I(1 << 62)),
    ("2.0^100", F(1.2676506002282294e30)),
    ("4^0.5", F(2.0)),
    ("1^99999999999", I(1)),
    ("(-1)^99999999999", I(-1)),
    ("(-1)^99999999998", I(1)),
    ("0^99999999999", I(0)),
    ("2^-2^2", F(0.0625)),
    ("2^-1074", F(5e-324)),
    // decimals and exponents
    ("1.5e3", F(1500.0)),
    ("2E-3", F(0.002)),
    ("1e+2", F(100.0)),
    (".5", F(0.5)),
    ("5.", F(5.0)),
    ("1.5 + 1", F(2.5)),
    ("0.1+0.2", F(0.30000000000000004)),
    ("1e-999", F(0.0)),
    // functions
    ("sqrt(16)", F(4.0)),
    ("sqrt(2)", F(std::f64::consts::SQRT_2)),
    ("abs(-5)", I(5)),
    ("abs(-2.5)", F(2.5)),
    ("ln(e)", F(1.0)),
    ("log10(1000)", F(3.0)),
    ("log2(8)", F(3.0)),
    ("exp(0)", F(1.0)),
    ("sin(0)", F(0.0)),
    ("cos(pi)", F(-1.0)),
    ("tan(0)", F(0.0)),
    ("floor(2.7)", I(2)),
    ("floor(-2.5)", I(-3)),
    ("ceil(2.1)", I(3)),
    ("round(2.5)", I(3)),
    ("round(-2.5)", I(-3)),
    ("round(7)", I(7)),
    ("floor(1e300)", F(1e300)),
    ("max(1, 2.5, -3)", F(2.5)),
    ("min(1, 2.5, -3)", I(-3)),
    ("max(7)", I(7)),
    ("max(2, 2.0)", I(2)),
    (
        "min(9223372036854775807.0, 9223372036854775807)",
        I(i64::MAX),
    ),
    ("max(-1.5, -1)", I(-1)),
    ("max(sqrt(4), 1)", F(2.0)),
    ("sqrt( 1 + 3 ) * 2", F(4.0)),
    // constants
    ("pi", F(PI)),
    ("e", F(E)),
    ("2*pi", F(2.0 * PI)),
    ("e^1", F(E)),
];

/// True when `got` is the wanted value and type.
fn matches(got: Number, want: Want) -> bool {
    match (got, want) {
        (Number::Int(g), I(w)) => g == w,
        (Number::Float(g), F(w)) => {
            g == w || (g - w).abs() <= 1e-12 * w.abs().max(1e-300) || (w == 0.0 && g.abs() < 1e-15)
        }
        _ => false,
    }
}

#[test]
fn value_table() {
    assert!(CASES.len() >= 60, "only {} value cases", CASES.len());
    for (expr, want) in CASES {
        match eval(expr) {
            Ok(got) => assert!(
                matches(got.clone(), *want),
                "{expr:?}: got {got:?}, want {want:?}"
            ),
            Err(e) => panic!("{expr:?}: got error {e:?}, want {want:?}"),
        }
    }
}
