//! `bench --report`: the run drawn with plotters into an SVG (latency by
//! percentile; replies per second with the lost and duplicated counts in
//! the title), or an HTML page holding that SVG and a table of the figures.
//!
//! Text goes into the SVG as `<text>` elements laid out with plotters'
//! built-in estimate, so no font files or system libraries are needed.

use std::path::Path;

use plotters::prelude::*;

use super::BenchReport;

/// What `--report` writes, from the file name's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The two charts.
    Svg,
    /// A page with the charts and the figures.
    Html,
}

impl Format {
    /// The format `path` asks for.
    ///
    /// # Errors
    /// A usage message when the extension is neither.
    pub fn of(path: &Path) -> Result<Format, String> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("svg") => Ok(Format::Svg),
            Some("html" | "htm") => Ok(Format::Html),
            _ => Err(format!(
                "--report {}: the file name must end in .svg or .html",
                path.display()
            )),
        }
    }
}

/// Title of the latency chart (tests look for its start).
pub const LATENCY_TITLE: &str = "Latency by percentile";
/// Title of the throughput chart (tests look for its start).
pub const THROUGHPUT_TITLE: &str = "Requests per second";

/// Draws the report and writes it to `path`.
///
/// # Errors
/// Why it could not be drawn or written.
pub fn write(path: &Path, r: &BenchReport) -> Result<(), String> {
    let svg = svg(r)?;
    let text = match Format::of(path)? {
        Format::Svg => svg,
        Format::Html => html(r, &svg),
    };
    std::fs::write(path, text).map_err(|e| e.to_string())
}

/// Both charts, one above the other, as an SVG document.
///
/// # Errors
/// A plotters error as text.
pub fn svg(r: &BenchReport) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (900, 760)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (upper, lower) = root.split_vertically(400);
        latency(&upper, r).map_err(|e| e.to_string())?;
        throughput(&lower, r).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(buf)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type Drawn<'a> = Result<(), DrawingAreaErrorKind<<SVGBackend<'a> as DrawingBackend>::ErrorType>>;

fn latency<'a>(area: &Area<'a>, r: &BenchReport) -> Drawn<'a> {
    let from = if r.rate_rps.is_some() {
        "from the intended send time, open loop"
    } else {
        "from the send, closed loop"
    };
    let x_max = r.curve.last().map_or(1.0, |p| p.0).max(1.0);
    let y_max = r.curve.iter().map(|p| p.1).fold(0.0, f64::max).max(0.001) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{LATENCY_TITLE} ({from})"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency, ms")
        .x_label_formatter(&|x| percent(*x))
        .draw()?;
    chart.draw_series(LineSeries::new(r.curve.iter().copied(), &BLUE))?;
    Ok(())
}

fn throughput<'a>(area: &Area<'a>, r: &BenchReport) -> Drawn<'a> {
    let (c, w) = (&r.counts, &r.warmup);
    let warm = if w.lost > 0 {
        format!(" (+{} in the warm-up)", w.lost)
    } else {
        String::new()
    };
    let title = format!(
        "{THROUGHPUT_TITLE} completed - lost {}{warm}, duplicates {}",
        c.lost, c.duplicates
    );
    // Segments 0..=last second.
    let last = (r.per_second.len().max(2) - 1) as u32;
    let y_max = r.per_second.iter().copied().max().unwrap_or(0).max(1) * 11 / 10 + 1;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((0u32..last).into_segmented(), 0u64..y_max)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("second after the warm-up")
        .y_desc("replies")
        .draw()?;
    chart.draw_series(
        Histogram::vertical(&chart)
            .style(GREEN.mix(0.7).filled())
            .margin(1)
            .data(r.per_second.iter().enumerate().map(|(i, n)| (i as u32, *n))),
    )?;
    Ok(())
}

/// A count of nines as a percentile: 0 -> "0%", 2 -> "99%", 2.5 -> "99.68%".
fn percent(nines: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-nines));
    let digits = (nines.ceil() as usize).saturating_sub(2).min(4);
    format!("{p:.digits$}%")
}

/// A small page: the charts, the figures and the objectives.
fn html(r: &BenchReport, svg: &str) -> String {
    let (c, l) = (&r.counts, &r.latency_ms);
    let pacing = match r.rate_rps {
        Some(rate) => format!("open loop, {rate} requests/s; latency from each request's intended send time (corrected for coordinated omission)"),
        None => "closed loop; latency from each request's send".to_string(),
    };
    let rows: Vec<(&str, String)> = vec![
        ("load", pacing),
        ("operations", r.ops.clone()),
        (
            "connections x window",
            format!("{} x {}", r.connections, r.window),
        ),
        (
            "warm-up",
            format!(
                "{:.1} s, {} requests not recorded, {} lost",
                r.warmup_s, r.warmup.sent, r.warmup.lost
            ),
        ),
        ("sent", c.sent.to_string()),
        (
            "replies",
            format!(
                "{} (ok {}, error {}, not a reply map {})",
                r.replies, c.ok, c.errors, c.undecodable
            ),
        ),
        ("lost", c.lost.to_string()),
        ("duplicates", c.duplicates.to_string()),
        ("re-sent", c.resent.to_string()),
        (
            "busy replies",
            format!("{} (gave up busy {})", c.busy, c.busy_gave_up),
        ),
        ("publish errors", c.publish_errors.to_string()),
        ("elapsed", format!("{:.2} s", r.elapsed_s)),
        ("throughput", format!("{:.0} requests/s", r.throughput_rps)),
        (
            "latency, ms",
            format!(
                "p50 {:.3}, p90 {:.3}, p99 {:.3}, p99.9 {:.3}, max {:.3}, mean {:.3}",
                l.p50, l.p90, l.p99, l.p999, l.max, l.mean
            ),
        ),
    ];
    let mut page = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>mqttapp bench report</title>\n<style>body{font-family:sans-serif;margin:2em;max-width:960px} table{border-collapse:collapse} th,td{border:1px solid #ccc;padding:3px 8px;text-align:left} .miss{color:#b00;font-weight:bold} .pass{color:#070}</style>\n</head>\n<body>\n<h1>mqttapp bench report</h1>\n",
    );
    page.push_str(svg);
    page.push_str("\n<h2>Figures</h2>\n<table>\n");
    for (what, value) in rows {
        page.push_str(&format!(
            "<tr><th>{}</th><td>{}</td></tr>\n",
            esc(what),
            esc(&value)
        ));
    }
    page.push_str("</table>\n");
    if !r.slo.is_empty() {
        page.push_str("<h2>Objectives</h2>\n<table>\n<tr><th>objective</th><th>measured</th><th>verdict</th></tr>\n");
        for v in &r.slo {
            let (class, verdict) = if v.pass {
                ("pass", "PASS")
            } else {
                ("miss", "MISS")
            };
            page.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td class=\"{class}\">{verdict}</td></tr>\n",
                esc(&v.spec),
                esc(&v.measured)
            ));
        }
        page.push_str("</table>\n");
    }
    page.push_str("</body>\n</html>\n");
    page
}

/// Text safe inside HTML (and XML) elements and attributes.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_come_from_the_extension() {
        assert_eq!(Format::of(Path::new("a/b.SVG")), Ok(Format::Svg));
        assert_eq!(Format::of(Path::new("r.html")), Ok(Format::Html));
        assert!(Format::of(Path::new("r.png"))
            .unwrap_err()
            .contains(".svg or .html"));
        assert!(Format::of(Path::new("r")).is_err());
    }

    #[test]
    fn percentiles_read_as_nines() {
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(1.0), "90%");
        assert_eq!(percent(2.0), "99%");
        assert_eq!(percent(3.0), "99.9%");
        assert_eq!(esc("p99<1ms & \"x\""), "p99&lt;1ms &amp; &quot;x&quot;");
    }
}
