//! Turns expression text into tokens one at a time (no token vector, so a
//! multi-megabyte expression costs no extra memory), tracking the character
//! offset of each token for error messages.

use super::errors::{self, snippet};
use super::CalcError;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind<'a> {
    /// An integer literal that fits in `i64`.
    Int(i64),
    /// A decimal literal (with `.` or an exponent), already converted.
    Float(f64),
    /// An integer literal too large for `i64`, as written (digits only);
    /// the parser converts it (see `int::literal`).
    Digits(&'a str),
    /// An identifier: a constant or function name (maybe unknown).
    Name(&'a str),
    /// One of `+ - * / % ^ ( ) ,`.
    Op(char),
    /// End of the expression.
    End,
}

/// A token and the character offset where it starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Token<'a> {
    pub(super) kind: Kind<'a>,
    pub(super) at: usize,
}

/// Streaming tokenizer over `src`.
pub(super) struct Lexer<'a> {
    src: &'a str,
    /// Byte offset of the next unread character (always a char boundary).
    pos: usize,
    /// Character offset of the next unread character.
    chars: usize,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(src: &'a str) -> Self {
        Lexer {
            src,
            pos: 0,
            chars: 0,
        }
    }

    /// The next unread character, if any (ASCII fast path first).
    fn peek(&self) -> Option<char> {
        match self.byte(0)? {
            b if b.is_ascii() => Some(char::from(b)),
            _ => self
                .src
                .get(self.pos..)
                .and_then(|rest| rest.chars().next()),
        }
    }

    /// The ASCII byte `ahead` bytes past the read position, if any.
    fn byte(&self, ahead: usize) -> Option<u8> {
        self.src
            .as_bytes()
            .get(self.pos.saturating_add(ahead))
            .copied()
    }

    /// Consumes one character.
    fn advance(&mut self, c: char) {
        self.pos += c.len_utf8();
        self.chars += 1;
    }

    /// Consumes ASCII bytes while `pred` holds (one byte is one character).
    fn advance_ascii_while(&mut self, pred: impl Fn(u8) -> bool) {
        while self.byte(0).is_some_and(&pred) {
            self.pos += 1;
            self.chars += 1;
        }
    }

    /// Reads the next token, skipping whitespace before it.
    pub(super) fn next_token(&mut self) -> Result<Token<'a>, CalcError> {
        while let Some(c) = self.peek().filter(|c| c.is_whitespace()) {
            self.advance(c);
        }
        let at = self.chars;
        let Some(c) = self.peek() else {
            return Ok(Token {
                kind: Kind::End,
                at,
            });
        };
        let kind = match c {
            '0'..='9' | '.' => self.number(at)?,
            '+' | '-' | '*' | '/' | '%' | '^' | '(' | ')' | ',' => {
                self.advance(c);
                Kind::Op(c)
            }
            c if c.is_alphabetic() || c == '_' => self.name(),
            c => {
                let shown = c.escape_debug();
                return Err(errors::parse(at, format!("unexpected character '{shown}'")));
            }
        };
        Ok(Token { kind, at })
    }

    /// Reads an identifier: a letter or `_`, then letters, digits or `_`.
    fn name(&mut self) -> Kind<'a> {
        let start = self.pos;
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            self.advance(c);
        }
        Kind::Name(self.src.get(start..self.pos).unwrap_or(""))
    }

    /// True when the unread text starts an exponent: `e`/`E`, an optional
    /// sign, then a digit. Otherwise the `e` is left for the next token.
    fn at_exponent(&self) -> bool {
        if !matches!(self.byte(0), Some(b'e' | b'E')) {
            return false;
        }
        let digit_at = if matches!(self.byte(1), Some(b'+' | b'-')) {
            2
        } else {
            1
        };
        self.byte(digit_at).is_some_and(|b| b.is_ascii_digit())
    }

    /// Reads a numeric literal starting at character offset `at`.
    fn number(&mut self, at: usize) -> Result<Kind<'a>, CalcError> {
        let start = self.pos;
        self.advance_ascii_while(|b| b.is_ascii_digit());
        let mut is_float = false;
        if self.byte(0) == Some(b'.') {
            is_float = true;
            self.pos += 1;
            self.chars += 1;
            self.advance_ascii_while(|b| b.is_ascii_digit());
        }
        if self.at_exponent() {
            is_float = true;
            self.pos += 1;
            self.chars += 1;
            if matches!(self.byte(0), Some(b'+' | b'-')) {
                self.pos += 1;
                self.chars += 1;
            }
            self.advance_ascii_while(|b| b.is_ascii_digit());
        }
        let text = self.src.get(start..self.pos).unwrap_or("");
        if text == "." {
            return Err(errors::parse(at, "unexpected character '.'"));
        }
        if is_float {
            float_literal(text, at)
        } else {
            // Digits only: the parse fails only past the i64 range.
            Ok(text.parse::<i64>().map_or(Kind::Digits(text), Kind::Int))
        }
    }
}

/// Converts a decimal literal; one that overflows f64 is a limit error.
fn float_literal(text: &str, at: usize) -> Result<Kind<'_>, CalcError> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Kind::Float(x)),
        Ok(_) => Err(errors::limit(format!(
            "number too large: {} is beyond the floating-point range of about 1.8e308",
            snippet(text)
        ))),
        Err(_) => Err(errors::parse(
            at,
            format!("malformed number '{}'", snippet(text)),
        )),
    }
}
