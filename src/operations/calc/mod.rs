//! Arithmetic expression evaluator behind the `calc` operation.
//!
//! This module owns everything between the raw expression text a client sent
//! and the [`Number`] (or [`CalcError`]) that goes back in the reply: the
//! byte-length and nesting limits, tokenising, parsing, exact integer
//! arithmetic of any size up to [`MAX_INT_DIGITS`] decimal digits (as
//! Python's integers, with checked `i64` as the fast path), floating-point
//! arithmetic with non-finite results rejected,
//! the built-in functions and constants, and the textual form of results.
//! It is not `eval`: only the language below is understood.
//!
//! The text is evaluated while it is parsed (there is no syntax tree), so
//! memory use does not grow with the expression and there is no deep
//! structure to drop. Every recursive step first passes an explicit depth
//! check, so hostile input gets a [`CalcError::Limit`] instead of a stack
//! overflow.
//!
//! # Grammar (EBNF)
//!
//! ```text
//! expression = sum ;
//! sum        = product , { ( "+" | "-" ) , product } ;        (* left-assoc *)
//! product    = unary , { ( "*" | "/" | "%" ) , unary } ;      (* left-assoc *)
//! unary      = ( "-" | "+" ) , unary | power ;
//! power      = primary , [ "^" , unary ] ;                    (* right-assoc *)
//! primary    = number | constant | call | "(" , sum , ")" ;
//! call       = function , "(" , [ sum , { "," , sum } ] , ")" ;
//! constant   = "pi" | "e" ;
//! function   = "sqrt" | "abs" | "ln" | "log10" | "log2" | "exp" | "sin"
//!            | "cos" | "tan" | "floor" | "ceil" | "round" | "min" | "max" ;
//! number     = integer | decimal ;
//! integer    = digit , { digit } ;          (* exact, up to MAX_INT_DIGITS digits *)
//! decimal    = ( digit , { digit } , [ "." , { digit } ] | "." , digit , { digit } ) ,
//!              [ ( "e" | "E" ) , [ "+" | "-" ] , digit , { digit } ] ;
//!                                     (* has "." or exponent; f64 *)
//! ```
//!
//! Whitespace (any Unicode white space) may appear between tokens. Names are
//! case-sensitive. Each of `(`, a function call, a unary sign and the right
//! operand of `^` counts one level toward [`CalcLimits::max_depth`].
//!
//! # Integers
//!
//! Integers are exact whatever their size, as in Python: `2^64` is
//! 18446744073709551616. A literal, result or intermediate value of more
//! than [`MAX_INT_DIGITS`] digits is a [`CalcError::Limit`], decided from
//! the operands' bit lengths before a product or power is computed, so
//! `9^9^9^9` or `(10^9999)*(10^9999)` is refused at once. The big-integer
//! work of one expression is bounded too ([`MAX_INT_WORK`]). An integer
//! meeting a float is converted to f64; one beyond the f64 range (about
//! 1.8e308) is a `limit` error, as Python's `OverflowError`.

mod display;
mod errors;
mod functions;
mod int;
mod lexer;
mod ops;
mod parser;

#[cfg(test)]
mod tests;

pub use crate::limits::{CalcLimits, MAX_INT_DIGITS, MAX_INT_WORK};
pub use num_bigint::BigInt;

/// A calculation result: exact integers stay exact, everything else is a
/// finite `f64`.
///
/// `evaluate` never returns a NaN or infinite `Float`, and returns `Big`
/// only for values outside the `i64` range (so matching `Int` alone sees
/// every small integer).
#[derive(Debug, Clone, PartialEq)]
pub enum Number {
    /// An exact 64-bit integer (from integer literals and exact integer ops).
    Int(i64),
    /// An exact integer outside the `i64` range, of at most
    /// [`MAX_INT_DIGITS`] decimal digits.
    Big(BigInt),
    /// A finite floating-point value (from decimals, functions, inexact ops).
    Float(f64),
}

/// Why an expression could not be evaluated; the message is meant for the
/// person who typed the expression.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalcError {
    /// The text is not a valid expression. `at` is the 0-based character
    /// offset of the offending token.
    #[error("parse error at {at}: {message}")]
    Parse {
        /// Character (not byte) offset into the expression.
        at: usize,
        /// Lowercase description naming the bad token.
        message: String,
    },
    /// The expression is valid but an operation has no finite real result.
    /// `at` is the character offset of the operator, function name or
    /// literal responsible.
    #[error("math error at {at}: {message}")]
    Math {
        /// Character (not byte) offset into the expression.
        at: usize,
        /// Lowercase description of the failed operation.
        message: String,
    },
    /// A size limit was exceeded: expression length, nesting depth, an
    /// integer literal or result of more than [`MAX_INT_DIGITS`] digits, a
    /// float beyond the f64 range.
    #[error("{message}")]
    Limit {
        /// Lowercase description naming the limit.
        message: String,
    },
}

/// Evaluates `expr` under `limits`, the single entry point of this module.
///
/// The length limit is checked before any other work; nesting depth is
/// checked before each recursive step. Never panics on any input.
pub fn evaluate(expr: &str, limits: &CalcLimits) -> Result<Number, CalcError> {
    if expr.len() > limits.max_len {
        return Err(CalcError::Limit {
            message: format!(
                "expression is {} bytes, limit is {}",
                expr.len(),
                limits.max_len
            ),
        });
    }
    if expr.trim().is_empty() {
        return Err(CalcError::Parse {
            at: 0,
            message: "empty expression".to_string(),
        });
    }
    int::reset_work();
    parser::Parser::new(expr, limits.max_depth)?.parse_all()
}
