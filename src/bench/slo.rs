//! `bench --slo`: service level objectives ("p99<20ms", "lost=0") parsed
//! before the run and judged against its figures after it, so a script can
//! ask "is it fast enough" and get a yes or no from the exit code.

use hdrhistogram::Histogram;
use serde::Serialize;

use super::Counts;

/// What an objective bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// A latency percentile, 0 < p < 100 (`p99.9`: 99.9).
    Percentile(f64),
    /// The slowest reply.
    Max,
    /// Requests never answered.
    Lost,
    /// Replies to requests already answered.
    Duplicates,
}

/// One objective, e.g. `p99<20ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// As the user wrote it (trimmed), for the verdict line.
    pub spec: String,
    /// What it bounds.
    pub metric: Metric,
    /// `<=` rather than `<`.
    pub inclusive: bool,
    /// The bound: microseconds for latencies, a count for lost and
    /// duplicates (always 0).
    pub limit: f64,
}

/// How an objective fared in a run. Field names are stable (`--json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The objective as written (`lost=0` and `duplicates=0` are added
    /// to every SLO run).
    pub spec: String,
    /// The measured value for people: "3.214 ms", "0", "no replies".
    pub measured: String,
    /// Milliseconds for latencies, a count for lost and duplicates; absent
    /// when nothing was measured.
    pub value: Option<f64>,
    /// Met.
    pub pass: bool,
}

const FORMS: &str =
    "write it as p99<20ms, p99.9<=50ms, max<1s, lost=0 or duplicates=0 (units: us, ms, s)";

/// Parses every `--slo` value, each one or several separated by commas,
/// and adds `lost=0` and `duplicates=0` unless given.
///
/// # Errors
/// A message naming the bad objective and why.
pub fn parse_all(values: &[String]) -> Result<Vec<Slo>, String> {
    let mut slos = Vec::new();
    for spec in values.iter().flat_map(|v| v.split(',')) {
        if spec.trim().is_empty() {
            continue;
        }
        slos.push(
            parse(spec).map_err(|why| format!("bad --slo {:?}: {why}; {FORMS}", spec.trim()))?,
        );
    }
    if slos.is_empty() {
        return Ok(slos);
    }
    for (metric, spec) in [
        (Metric::Lost, "lost=0"),
        (Metric::Duplicates, "duplicates=0"),
    ] {
        if !slos.iter().any(|s| s.metric == metric) {
            slos.push(Slo {
                spec: spec.to_string(),
                metric,
                inclusive: true,
                limit: 0.0,
            });
        }
    }
    Ok(slos)
}

/// Parses one objective.
///
/// # Errors
/// Why it is not one (without the spec itself: the caller adds it).
pub fn parse(spec: &str) -> Result<Slo, String> {
    let spec = spec.trim();
    let at = spec
        .find(['<', '=', '>'])
        .ok_or("no comparison (< or <=)")?;
    let (name, rest) = spec.split_at(at);
    let name = name.trim().to_ascii_lowercase();
    let (op, value) = if let Some(v) = rest.strip_prefix("<=") {
        ("<=", v)
    } else if let Some(v) = rest.strip_prefix('<') {
        ("<", v)
    } else if let Some(v) = rest.strip_prefix('=') {
        ("=", v)
    } else {
        return Err("only upper bounds: < or <=".into());
    };
    let value = value.trim();
    match name.as_str() {
        "lost" | "duplicates" | "dup" => {
            if op != "=" || value != "0" {
                return Err(format!("{name} can only be required to be 0 ({name}=0)"));
            }
            let metric = if name == "lost" {
                Metric::Lost
            } else {
                Metric::Duplicates
            };
            return Ok(Slo {
                spec: spec.to_string(),
                metric,
                inclusive: true,
                limit: 0.0,
            });
        }
        _ => {}
    }
    let metric = match name.as_str() {
        "max" | "p100" => Metric::Max,
        p => match p.strip_prefix('p').map(str::parse::<f64>) {
            Some(Ok(q)) if q > 0.0 && q < 100.0 => Metric::Percentile(q),
            Some(Ok(_)) => return Err("a percentile is between p0 and p100, e.g. p99".into()),
            _ if p.is_empty() => return Err("nothing to bound before the comparison".into()),
            _ => {
                return Err(format!(
                    "unknown measure {p:?} (p50, p90, p99, p99.9, max, lost, duplicates)"
                ))
            }
        },
    };
    if op == "=" {
        return Err("a latency takes an upper bound: < or <=".into());
    }
    Ok(Slo {
        spec: spec.to_string(),
        metric,
        inclusive: op == "<=",
        limit: micros(value)?,
    })
}

/// "20ms", "1.5 s", "500us" in microseconds.
fn micros(value: &str) -> Result<f64, String> {
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n > 0.0)
        .ok_or("the bound must be a positive number with a unit")?;
    let scale = match unit.trim() {
        "us" | "µs" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "" => return Err("the bound needs a unit".into()),
        u => return Err(format!("unknown unit {u:?}")),
    };
    Ok(number * scale)
}

/// Judges every objective against the run's latencies (microseconds, the
/// measured requests only) and counts.
pub fn judge(slos: &[Slo], latency_us: &Histogram<u64>, counts: &Counts) -> Vec<Verdict> {
    slos.iter()
        .map(|slo| {
            let count = |n: u64| Verdict {
                spec: slo.spec.clone(),
                measured: n.to_string(),
                value: Some(n as f64),
                pass: n == 0,
            };
            let us = match slo.metric {
                Metric::Lost => return count(counts.lost),
                Metric::Duplicates => return count(counts.duplicates),
                _ if latency_us.is_empty() => {
                    return Verdict {
                        spec: slo.spec.clone(),
                        measured: "no replies".into(),
                        value: None,
                        pass: false,
                    }
                }
                Metric::Max => latency_us.max(),
                // 99.9 / 100 is 0.9990000000000001 in floating point, which
                // would read the next bucket: round to the table's quantile.
                Metric::Percentile(q) => latency_us.value_at_quantile((q * 1e6).round() / 1e8),
            } as f64;
            let pass = if slo.inclusive {
                us <= slo.limit
            } else {
                us < slo.limit
            };
            Verdict {
                spec: slo.spec.clone(),
                measured: format!("{:.3} ms", us / 1e3),
                value: Some(us / 1e3),
                pass,
            }
        })
        .collect()
}

/// The verdicts for people: one line each, PASS or MISS.
pub fn table(verdicts: &[Verdict]) -> String {
    verdicts
        .iter()
        .map(|v| {
            format!(
                "slo {:<18} {:>14}  {}\n",
                v.spec,
                v.measured,
                if v.pass { "PASS" } else { "MISS" }
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> Slo {
        parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"))
    }

    #[test]
    fn objectives_parse_with_units_and_bounds() {
        let s = one(" p99 < 20ms ");
        assert_eq!(s.metric, Metric::Percentile(99.0));
        assert!(!s.inclusive);
        assert_eq!(s.limit, 20_000.0);
        assert_eq!(s.spec, "p99 < 20ms");
        let s = one("p99.9<=1.5s");
        assert_eq!(s.metric, Metric::Percentile(99.9));
        assert!(s.inclusive);
        assert_eq!(s.limit, 1_500_000.0);
        assert_eq!(one("max<500us").metric, Metric::Max);
        assert_eq!(one("P50<1µs").limit, 1.0);
        assert_eq!(one("lost=0").metric, Metric::Lost);
        assert_eq!(one("dup=0").metric, Metric::Duplicates);
    }

    #[test]
    fn bad_objectives_say_why() {
        for (bad, why) in [
            ("p99", "no comparison"),
            ("p99<20", "needs a unit"),
            ("p99<20min", "unknown unit"),
            ("p99<-1ms", "positive number"),
            ("p99>20ms", "upper bounds"),
            ("p100.5<1ms", "between p0 and p100"),
            ("q99<1ms", "unknown measure"),
            ("<1ms", "nothing to bound"),
            ("lost<5", "only be required to be 0"),
            ("p99=20ms", "upper bound"),
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
        let e = parse_all(&["p50<1ms,p99<x".into()]).unwrap_err();
        assert!(e.starts_with("bad --slo \"p99<x\""), "{e}");
    }

    #[test]
    fn lists_split_on_commas_and_always_check_lost_and_duplicates() {
        let slos = parse_all(&["p50<1ms, p99<5ms".into(), "max<1s".into()]).unwrap();
        let specs: Vec<&str> = slos.iter().map(|s| s.spec.as_str()).collect();
        assert_eq!(
            specs,
            ["p50<1ms", "p99<5ms", "max<1s", "lost=0", "duplicates=0"]
        );
        assert_eq!(parse_all(&["lost=0".into()]).unwrap().len(), 2);
        assert!(parse_all(&[]).unwrap().is_empty());
    }

    #[test]
    fn verdicts_compare_the_measured_value() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for us in 1..=1000 {
            h.record(us * 10).unwrap(); // 10 us .. 10 ms
        }
        let counts = Counts {
            lost: 1,
            ..Counts::default()
        };
        let slos = parse_all(&["p50<6ms,p50<1us,max<=11ms".into()]).unwrap();
        let v = judge(&slos, &h, &counts);
        let pass: Vec<bool> = v.iter().map(|v| v.pass).collect();
        assert_eq!(pass, [true, false, true, false, true]);
        assert_eq!(v[3].measured, "1");
        assert!(table(&v).contains("MISS"));
        // p99.9 reads the same bucket as the report's p99.9.
        let v = judge(&parse_all(&["p99.9<1s".into()]).unwrap(), &h, &counts);
        assert_eq!(v[0].value, Some(h.value_at_quantile(0.999) as f64 / 1e3));
        let empty = Histogram::<u64>::new(3).unwrap();
        let v = judge(&slos, &empty, &Counts::default());
        assert_eq!(v[0].measured, "no replies");
        assert!(!v[0].pass);
    }
}
