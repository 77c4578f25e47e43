//! A small, dependency-free SVG chart writer: axes with "nice" ticks, line and scatter series,
//! optional error bars, a legend. Enough for the report's two plots, readable in any browser.

use std::fmt::Write as _;

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Points joined by lines.
    Line,
    /// Points only.
    Points,
    /// A horizontal dashed reference line at the first point's y.
    Reference,
}

/// One series of `(x, y)` points with optional symmetric error bars on y.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// Data.
    pub points: Vec<(f64, f64)>,
    /// Error bar half-heights, aligned with `points`.
    pub errors: Option<Vec<f64>>,
    /// Drawing style.
    pub style: Style,
}

/// A chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Title.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// Series.
    pub series: Vec<Series>,
}

const PALETTE: [&str; 10] =
    ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Ticks at 1, 2 or 5 times a power of ten covering `[lo, hi]`.
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1000.0 || v.abs() < 0.01 {
        format!("{v:.2e}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

impl Chart {
    /// Renders the chart as an SVG document.
    pub fn render(&self) -> String {
        let (w, h) = (760.0, 460.0);
        let (left, right, top, bottom) = (70.0, 200.0, 40.0, 55.0);
        let (pw, ph) = (w - left - right, h - top - bottom);
        let pts = self.series.iter().flat_map(|s| {
            let errs = s.errors.clone().unwrap_or_else(|| vec![0.0; s.points.len()]);
            s.points.iter().zip(errs).map(|(&(x, y), e)| (x, y - e, y + e)).collect::<Vec<_>>()
        });
        let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for (x, lo, hi) in pts.filter(|(x, lo, hi)| x.is_finite() && lo.is_finite() && hi.is_finite()) {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(lo);
            y1 = y1.max(hi);
        }
        if !x0.is_finite() {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        let pad = |a: f64, b: f64| {
            if b - a < 1e-12 {
                (a - 0.5 * a.abs().max(1e-3), b + 0.5 * b.abs().max(1e-3))
            } else {
                (a - 0.05 * (b - a), b + 0.05 * (b - a))
            }
        };
        let (x0, x1) = pad(x0, x1);
        let (y0, y1) = pad(y0, y1);
        let sx = |x: f64| left + (x - x0) / (x1 - x0) * pw;
        let sy = |y: f64| top + ph - (y - y0) / (y1 - y0) * ph;
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>
"#,
            left + pw / 2.0,
            escape(&self.title)
        );
        for t in nice_ticks(x0, x1, 6) {
            let x = sx(t);
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{:.1}" stroke="#e5e5e5"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                top + ph,
                top + ph + 16.0,
                fmt_tick(t)
            );
        }
        for t in nice_ticks(y0, y1, 6) {
            let y = sy(t);
            let _ = writeln!(
                s,
                r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                left + pw,
                left - 6.0,
                y + 4.0,
                fmt_tick(t)
            );
        }
        let _ = writeln!(s, r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##);
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            left + pw / 2.0,
            h - 12.0,
            escape(&self.x_label)
        );
        let _ = writeln!(
            s,
            r#"<text transform="translate(18,{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            top + ph / 2.0,
            escape(&self.y_label)
        );
        for (k, ser) in self.series.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let valid: Vec<(f64, f64, f64)> = ser
                .points
                .iter()
                .enumerate()
                .filter(|(_, (x, y))| x.is_finite() && y.is_finite())
                .map(|(i, &(x, y))| (x, y, ser.errors.as_ref().map_or(0.0, |e| e[i])))
                .collect();
            match ser.style {
                Style::Reference => {
                    if let Some(&(_, y, _)) = valid.first() {
                        let _ = writeln!(
                            s,
                            r#"<line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-dasharray="6,4" stroke-width="1.5"/>"#,
                            sy(y),
                            left + pw,
                            sy(y)
                        );
                    }
                }
                Style::Line | Style::Points => {
                    if ser.style == Style::Line && valid.len() > 1 {
                        let path: Vec<String> =
                            valid.iter().map(|&(x, y, _)| format!("{:.1},{:.1}", sx(x), sy(y))).collect();
                        let _ = writeln!(
                            s,
                            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
                            path.join(" ")
                        );
                    }
                    for &(x, y, e) in &valid {
                        if e > 0.0 {
                            let _ = writeln!(
                                s,
                                r#"<line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="{color}"/>"#,
                                sx(x),
                                sy(y - e),
                                sy(y + e)
                            );
                        }
                        let _ = writeln!(
                            s,
                            r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{color}"><title>{}: ({}, {})</title></circle>"#,
                            sx(x),
                            sy(y),
                            escape(&ser.name),
                            fmt_tick(x),
                            fmt_tick(y)
                        );
                    }
                }
            }
            let ly = top + 10.0 + 20.0 * k as f64;
            let lx = left + pw + 16.0;
            let dash = if ser.style == Style::Reference { r#" stroke-dasharray="6,4""# } else { "" };
            let _ = writeln!(
                s,
                r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
                lx + 22.0,
                lx + 28.0,
                ly + 4.0,
                escape(&ser.name)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice_evenly_spaced_and_span_the_range() {
        let t = nice_ticks(0.0, 1.0, 5);
        assert_eq!(t.len(), 6);
        assert!(t.iter().zip([0.0, 0.2, 0.4, 0.6, 0.8, 1.0]).all(|(a, b)| (a - b).abs() < 1e-12), "{t:?}");
        for (lo, hi, n) in [(83.2, 91.7, 6), (0.0, 482.1, 5), (-3.0, 7.0, 4), (0.3, 0.7, 5)] {
            let t = nice_ticks(lo, hi, n);
            assert!(t.len() >= 3, "{lo}..{hi}: {t:?}");
            let step = t[1] - t[0];
            // A nice step is 1, 2 or 5 times a power of ten.
            let mantissa = step / 10f64.powf(step.log10().floor());
            assert!([1.0, 2.0, 5.0].iter().any(|m| (mantissa - m).abs() < 1e-9), "{lo}..{hi}: step {step}");
            assert!(t.windows(2).all(|w| ((w[1] - w[0]) - step).abs() < 1e-9 * step.max(1.0)), "{t:?}");
            // The ticks lie inside the range and leave less than one step uncovered at either end.
            assert!(t[0] >= lo - 1e-9 && *t.last().unwrap() <= hi + 1e-9, "{lo}..{hi}: {t:?}");
            assert!(t[0] - lo < step && hi - t.last().unwrap() < step, "{lo}..{hi}: {t:?}");
        }
    }

    #[test]
    fn renders_valid_looking_svg() {
        let c = Chart {
            title: "a < b".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![
                Series { name: "full".into(), points: vec![(0.0, 0.9)], errors: None, style: Style::Reference },
                Series {
                    name: "ucb".into(),
                    points: vec![(0.3, 0.88), (0.5, 0.87), (0.7, f64::NAN)],
                    errors: Some(vec![0.01, 0.02, 0.0]),
                    style: Style::Line,
                },
            ],
        };
        let s = c.render();
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(s.contains("a &lt; b") && s.contains("polyline") && s.contains("stroke-dasharray"));
        assert_eq!(s.matches("<circle").count(), 2, "NaN points are skipped");
    }
}
