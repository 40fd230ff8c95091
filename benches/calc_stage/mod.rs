//! The calc stage of `make bench`: small-integer evaluations per second of
//! the current evaluator (exact big integers behind a checked `i64` fast
//! path) against the frozen i64-only evaluator (`benches/calc_i64/`) in the same
//! run, and what the largest allowed integers cost. In-process, no broker.

use std::hint::black_box;
use std::time::{Duration, Instant};

use mqttapp::operations::calc::{self, CalcLimits};

use super::calc_i64;

/// Small-integer expressions of the kinds calc users send.
const SMALL: [&str; 8] = [
    "2+3*4",
    "(1+2)*3-4/2",
    "-7 % 3",
    "2^10 - 1",
    "123456789 * 987654321",
    "max(3, 7, 5) + abs(-4)",
    "((15 % 4) * 6 - 8) / 2",
    "1+2+3+4+5+6+7+8+9+10",
];

/// Evaluations per timed round (each expression this many times / 8).
const PER_ROUND: usize = 200_000;

/// Evaluations per second of `eval` over [`SMALL`], one round.
fn rate(eval: impl Fn(&str) -> bool) -> f64 {
    let started = Instant::now();
    let mut ok = 0usize;
    for i in 0..PER_ROUND {
        ok += usize::from(eval(black_box(SMALL[i % SMALL.len()])));
    }
    assert_eq!(ok, PER_ROUND, "every small expression evaluates");
    PER_ROUND as f64 / started.elapsed().as_secs_f64()
}

/// Median wall time of `f` over `n` runs.
fn median_time(n: usize, f: impl Fn()) -> Duration {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect();
    times.sort();
    times[n / 2]
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// Rows of (what, figure, reference/ratio) for the report.
pub fn rows() -> Vec<(String, String, String)> {
    let limits = CalcLimits::default();
    let old_limits = calc_i64::CalcLimits::default();
    for expr in SMALL {
        let new = calc::evaluate(expr, &limits).map(|n| n.to_string());
        let old = calc_i64::evaluate(expr, &old_limits).map(|n| n.to_string());
        assert_eq!(new.ok(), old.ok(), "{expr}: both evaluators agree");
    }
    let (mut new_best, mut old_best) = (0f64, 0f64);
    // Alternate, best of 3 each: a noisy neighbour hurts both alike.
    for _ in 0..3 {
        old_best = old_best.max(rate(|e| calc_i64::evaluate(e, &old_limits).is_ok()));
        new_best = new_best.max(rate(|e| calc::evaluate(e, &limits).is_ok()));
    }
    let largest = "10^9999 * 9 + (10^9999 - 1)";
    let value = calc::evaluate(largest, &limits).expect("the largest allowed integer");
    let evaluate_largest = median_time(21, || {
        black_box(calc::evaluate(black_box(largest), &limits).ok());
    });
    let format_largest = median_time(21, || {
        black_box(black_box(&value).to_string());
    });
    let refuse = median_time(21, || {
        for expr in ["9^9^9^9", "2^(10^10)", "(10^9999)*(10^9999)"] {
            assert!(calc::evaluate(black_box(expr), &limits).is_err());
        }
    });
    vec![
        (
            "calc evaluations/s, small integers, in-process (best of 3)".to_string(),
            format!("{new_best:.0}/s"),
            format!(
                "i64-only evaluator {old_best:.0}/s: {:.0}% (target >= 90%)",
                100.0 * new_best / old_best
            ),
        ),
        (
            "calc: 10,000-digit result, evaluate / format as text (median of 21)".to_string(),
            format!("{} / {}", us(evaluate_largest), us(format_largest)),
            "10^9999 * 9 + (10^9999 - 1), the largest allowed".to_string(),
        ),
        (
            "calc: refuse 9^9^9^9, 2^(10^10), (10^9999)*(10^9999) (all three, median of 21)"
                .to_string(),
            us(refuse),
            "limit error from bit lengths, before computing".to_string(),
        ),
    ]
}
