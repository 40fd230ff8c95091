//! Recursive-descent parser that evaluates as it parses (no syntax tree).
//!
//! Every recursive step goes through [`Parser::nested`], which checks the
//! depth counter before recursing, so stack use is bounded by
//! `max_depth` whatever the input.

use super::errors::{self, snippet};
use super::functions::{self, Func};
use super::int;
use super::lexer::{Kind, Lexer, Token};
use super::ops;
use super::{CalcError, Number};

/// Parser state: the token stream, one token of lookahead and the depth.
pub(super) struct Parser<'a> {
    lexer: Lexer<'a>,
    tok: Token<'a>,
    depth: usize,
    max_depth: usize,
}

/// How a token is named in "unexpected ..." messages.
fn describe(kind: Kind<'_>) -> String {
    match kind {
        Kind::Int(_) | Kind::Float(_) | Kind::Digits(_) => "number".to_string(),
        Kind::Name(name) => format!("name '{}'", snippet(name)),
        Kind::Op(c) => format!("'{c}'"),
        Kind::End => "end of expression".to_string(),
    }
}

impl<'a> Parser<'a> {
    /// A parser positioned at the first token of `src`.
    pub(super) fn new(src: &'a str, max_depth: usize) -> Result<Self, CalcError> {
        let mut lexer = Lexer::new(src);
        let tok = lexer.next_token()?;
        Ok(Parser {
            lexer,
            tok,
            depth: 0,
            max_depth,
        })
    }

    /// Evaluates the whole expression; anything left over is an error.
    pub(super) fn parse_all(mut self) -> Result<Number, CalcError> {
        let value = self.sum()?;
        match self.tok.kind {
            Kind::End => Ok(value),
            _ => Err(self.unexpected()),
        }
    }

    /// Moves to the next token.
    fn bump(&mut self) -> Result<(), CalcError> {
        self.tok = self.lexer.next_token()?;
        Ok(())
    }

    /// The "unexpected <token>" error for the current token.
    fn unexpected(&self) -> CalcError {
        errors::parse(
            self.tok.at,
            format!("unexpected {}", describe(self.tok.kind)),
        )
    }

    /// Runs `step` one nesting level deeper, refusing to go past the limit.
    fn nested<T>(
        &mut self,
        step: impl FnOnce(&mut Self) -> Result<T, CalcError>,
    ) -> Result<T, CalcError> {
        if self.depth >= self.max_depth {
            return Err(errors::limit(format!(
                "nesting deeper than {}",
                self.max_depth
            )));
        }
        self.depth += 1;
        let result = step(self);
        self.depth -= 1;
        result
    }

    /// sum = product { ("+" | "-") product }
    fn sum(&mut self) -> Result<Number, CalcError> {
        let mut acc = self.product()?;
        loop {
            let Token { kind, at } = self.tok;
            let op = match kind {
                Kind::Op('+') => ops::add,
                Kind::Op('-') => ops::sub,
                _ => return Ok(acc),
            };
            self.bump()?;
            let rhs = self.product()?;
            acc = op(acc, rhs, at)?;
        }
    }

    /// product = unary { ("*" | "/" | "%") unary }
    fn product(&mut self) -> Result<Number, CalcError> {
        let mut acc = self.unary()?;
        loop {
            let Token { kind, at } = self.tok;
            let op = match kind {
                Kind::Op('*') => ops::mul,
                Kind::Op('/') => ops::div,
                Kind::Op('%') => ops::rem,
                _ => return Ok(acc),
            };
            self.bump()?;
            if matches!((kind, self.tok.kind), (Kind::Op('*'), Kind::Op('*'))) {
                // Python's power operator, as in the seed app.
                return Err(errors::parse(
                    self.tok.at,
                    "unexpected '*' - powers are written ^ (2^3), not **",
                ));
            }
            let rhs = self.unary()?;
            acc = op(acc, rhs, at)?;
        }
    }

    /// unary = ("-" | "+") unary | power
    fn unary(&mut self) -> Result<Number, CalcError> {
        match self.tok.kind {
            Kind::Op('-') => {
                self.bump()?;
                ops::neg(self.nested(Self::unary)?)
            }
            Kind::Op('+') => {
                self.bump()?;
                self.nested(Self::unary)
            }
            _ => self.power(),
        }
    }

    /// power = primary [ "^" unary ]   (right-associative via `unary`)
    fn power(&mut self) -> Result<Number, CalcError> {
        let base = self.primary()?;
        let Token { kind, at } = self.tok;
        if kind != Kind::Op('^') {
            return Ok(base);
        }
        self.bump()?;
        let exp = self.nested(Self::unary)?;
        ops::pow(base, exp, at)
    }

    /// primary = number | name | call | "(" sum ")"
    fn primary(&mut self) -> Result<Number, CalcError> {
        let Token { kind, at } = self.tok;
        match kind {
            Kind::Int(value) => {
                self.bump()?;
                Ok(Number::Int(value))
            }
            Kind::Float(value) => {
                self.bump()?;
                Ok(Number::Float(value))
            }
            Kind::Digits(text) => {
                let value = int::literal(text)?;
                self.bump()?;
                Ok(value)
            }
            Kind::Op('(') => {
                self.bump()?;
                let value = self.nested(Self::sum)?;
                self.close(at)?;
                Ok(value)
            }
            Kind::Name(name) => {
                self.bump()?;
                self.name(name, at)
            }
            _ => Err(self.unexpected()),
        }
    }

    /// Consumes the `)` matching the `(` at character offset `open_at`.
    fn close(&mut self, open_at: usize) -> Result<(), CalcError> {
        if self.tok.kind == Kind::Op(')') {
            self.bump()
        } else {
            Err(errors::parse(
                self.tok.at,
                format!("expected ')' to close '(' at {open_at}"),
            ))
        }
    }

    /// A name just consumed at `at`: a call if `(` follows, else a constant.
    fn name(&mut self, name: &str, at: usize) -> Result<Number, CalcError> {
        if self.tok.kind == Kind::Op('(') {
            let func = Func::lookup(name).ok_or_else(|| {
                errors::parse(at, format!("unknown function '{}'", snippet(name)))
            })?;
            return self.nested(|p| p.call(func, name, at));
        }
        if let Some(value) = functions::constant(name) {
            return Ok(value);
        }
        let message = if Func::lookup(name).is_some() {
            format!("function '{name}' needs its arguments in parentheses, as in {name}(x)")
        } else {
            format!("unknown name '{}'", snippet(name))
        };
        Err(errors::parse(at, message))
    }

    /// call = function "(" [ sum { "," sum } ] ")"; the current token is the
    /// `(`. Arguments are folded as they are read, so any number of them
    /// costs constant memory.
    fn call(&mut self, func: Func, name: &str, at: usize) -> Result<Number, CalcError> {
        let open_at = self.tok.at;
        self.bump()?;
        let mut count = 0usize;
        let mut acc: Option<Number> = None;
        if self.tok.kind != Kind::Op(')') {
            loop {
                let value = self.sum()?;
                count = count.saturating_add(1);
                acc = Some(match acc {
                    None => value,
                    Some(a) => func.fold(a, value),
                });
                if self.tok.kind != Kind::Op(',') {
                    break;
                }
                self.bump()?;
            }
        }
        self.close(open_at)?;
        func.check_arity(name, count, at)?;
        match acc {
            Some(x) => func.apply(x, at),
            None => Err(errors::parse(at, format!("{name} takes an argument"))),
        }
    }
}
