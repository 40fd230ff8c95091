//! Text form of [`Number`], as sent back to clients.

use std::fmt;

use super::Number;

/// Magnitude from which floats are shown in exponent form.
const BIG: f64 = 1e16;
/// Magnitude below which non-zero floats are shown in exponent form.
const SMALL: f64 = 1e-6;

/// The shortest round-trip text of a float: integral values without ".0",
/// very large or very small magnitudes in exponent form, zero as "0".
fn float_text(x: f64) -> String {
    let magnitude = x.abs();
    if x == 0.0 {
        // Also turns -0.0 into "0".
        "0".to_string()
    } else if x.is_finite() && !(SMALL..BIG).contains(&magnitude) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

impl fmt::Display for Number {
    /// Int as plain digits; Float as described on [`float_text`]. Honors
    /// width, fill and alignment.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Number::Int(i) => i.to_string(),
            Number::Float(x) => float_text(*x),
        };
        f.pad(&text)
    }
}
