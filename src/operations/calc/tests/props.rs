//! Property tests: no panics on arbitrary input, and agreement with a
//! reference evaluator over i128 on generated integer expressions (small
//! results as `Int`, results past 64 bits exact as `Big`).

use proptest::prelude::*;

use super::{eval, Number};

/// Test-only expression tree over + - * (binary) and unary minus.
#[derive(Debug, Clone)]
enum Expr {
    Lit(i64),
    Neg(Box<Expr>),
    Bin(char, Box<Expr>, Box<Expr>),
}

/// Binding strength of a node, for deciding where parentheses are needed.
fn prec(e: &Expr) -> u8 {
    match e {
        Expr::Lit(_) => 4,
        Expr::Neg(_) => 3,
        Expr::Bin('*', ..) => 2,
        Expr::Bin(..) => 1,
    }
}

/// Renders `e`; `paren` adds optional redundant parentheses on every node.
fn render(e: &Expr, paren: bool) -> String {
    match e {
        Expr::Lit(v) => v.to_string(),
        Expr::Neg(inner) => format!("-{}", wrap(inner, prec(inner) < 3, paren)),
        Expr::Bin(op, l, r) => {
            let p = prec(e);
            // Left-associative: the right child needs parens at equal strength.
            let left = wrap(l, prec(l) < p, paren);
            let right = wrap(r, prec(r) <= p, paren);
            format!("{left} {op} {right}")
        }
    }
}

/// Renders a child, parenthesized when `needed` (or always if `paren`).
fn wrap(e: &Expr, needed: bool, paren: bool) -> String {
    let inner = render(e, paren);
    if needed || paren {
        format!("({inner})")
    } else {
        inner
    }
}

/// Reference semantics: i128 arithmetic, `None` when an intermediate value
/// leaves the i128 range (the evaluator is exact beyond it; the value
/// tables in big.rs check those).
fn reference(e: &Expr) -> Option<i128> {
    match e {
        Expr::Lit(v) => Some(i128::from(*v)),
        Expr::Neg(inner) => reference(inner)?.checked_neg(),
        Expr::Bin(op, l, r) => {
            let (a, b) = (reference(l)?, reference(r)?);
            match op {
                '+' => a.checked_add(b),
                '-' => a.checked_sub(b),
                _ => a.checked_mul(b),
            }
        }
    }
}

/// Small literals mostly, occasionally huge ones to go past 64 bits.
fn literal() -> impl Strategy<Value = i64> {
    prop_oneof![8 => 0i64..=20, 1 => 0i64..=i64::MAX, 1 => 3_000_000_000i64..=3_100_000_000]
}

fn expr() -> impl Strategy<Value = Expr> {
    literal()
        .prop_map(Expr::Lit)
        .prop_recursive(6, 48, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| Expr::Neg(Box::new(e))),
                (
                    prop::sample::select(vec!['+', '-', '*']),
                    inner.clone(),
                    inner
                )
                    .prop_map(|(op, l, r)| Expr::Bin(op, Box::new(l), Box::new(r))),
            ]
        })
}

const ALPHABET: &str = "0123456789.+-*/%^() e,sqrtmaxpi";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn never_panics_on_arbitrary_strings(chars in prop::collection::vec(any::<char>(), 0..=200)) {
        let text: String = chars.into_iter().collect();
        if let Ok(Number::Float(x)) = eval(&text) {
            prop_assert!(x.is_finite());
        }
    }

    #[test]
    fn never_panics_on_alphabet_strings(
        chars in prop::collection::vec(prop::sample::select(ALPHABET.chars().collect::<Vec<_>>()), 0..=200)
    ) {
        let text: String = chars.into_iter().collect();
        if let Ok(Number::Float(x)) = eval(&text) {
            prop_assert!(x.is_finite());
        }
    }

    #[test]
    fn agrees_with_i128_reference(e in expr(), paren in any::<bool>()) {
        let text = render(&e, paren);
        let got = eval(&text);
        match (reference(&e), got) {
            (Some(want), Ok(Number::Int(n))) => prop_assert_eq!(i128::from(n), want, "{}", text),
            (Some(want), Ok(Number::Big(n))) => {
                prop_assert!(i64::try_from(want).is_err(), "{}: small value as Big", text);
                prop_assert_eq!(n.to_string(), want.to_string(), "{}", text);
            }
            // Past i128: exact anyway, so just an integer.
            (None, Ok(Number::Int(_) | Number::Big(_))) => {}
            (want, got) => prop_assert!(false, "{}: want {:?}, got {:?}", text, want, got),
        }
    }
}
