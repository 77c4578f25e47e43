//! A small, dependency-free SVG chart writer: axes with "nice" ticks, line and scatter series,
//! optional error bars, a legend, a clipped y-range with its outliers marked, a Pareto front.
//! Text is plain SVG `<text>`, laid out with a fixed estimate of glyph width, so the files need
//! no font at all to be written and render in any browser.
//!
//! Why not `plotters`: tried (0.3, SVG backend, no font features). It also writes plain `<text>`,
//! but without font metrics its layout estimates collided the y-axis title with the tick labels,
//! clipped the last x tick at the edge and drew legend entries without their marker; with a font
//! feature it needs a font file at build or run time. This writer is about 300 lines.

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
    /// When set, the y-range starts no lower than this: points below it are drawn as triangles
    /// on the bottom edge, labelled with their value, so that one far outlier does not squeeze
    /// the band where the other series differ.
    pub y_floor: Option<f64>,
    /// Draw the Pareto front of all points (smaller x and larger y are better), e.g. the methods
    /// that no other method beats in both time and accuracy.
    pub pareto: bool,
}

/// A marker of `shape` (0 circle, 1 square, 2 diamond) centred on `(x, y)`, with `inner` (a
/// tooltip, or nothing) inside the element; one line of SVG.
fn marker(shape: usize, x: f64, y: f64, color: &str, inner: &str) -> String {
    match shape {
        0 => format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"{color}\">{inner}</circle>\n"),
        1 => format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"8\" height=\"8\" fill=\"{color}\">{inner}</rect>\n",
            x - 4.0,
            y - 4.0
        ),
        _ => format!(
            "<path d=\"M{x:.1},{:.1} L{:.1},{y:.1} L{x:.1},{:.1} L{:.1},{y:.1} Z\" fill=\"{color}\">{inner}</path>\n",
            y - 5.0,
            x + 5.0,
            y + 5.0,
            x - 5.0
        ),
    }
}

/// The y of legend entry `k` (its line; the text sits 4 px below).
fn legend_y(top: f64, k: usize) -> f64 {
    top + 10.0 + 20.0 * k as f64
}

/// Estimated width of `text` in pixels at `size`: sans-serif glyphs average about 0.6 em.
fn text_width(text: &str, size: f64) -> f64 {
    0.6 * size * text.chars().count() as f64
}

/// The points no other point beats in both coordinates (smaller x, larger y), by increasing x.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut p: Vec<(f64, f64)> = points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
    p.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let mut front: Vec<(f64, f64)> = Vec::new();
    for q in p {
        if front.last().is_none_or(|l| q.1 > l.1) {
            front.push(q);
        }
    }
    front
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
    // Nice steps from large to small: the largest one not below the raw step, unless it leaves
    // fewer than 3 ticks in the range (then the next smaller one).
    let steps = [10.0, 5.0, 2.0, 1.0, 0.5, 0.2].map(|m| m * mag);
    let ticks = |step: f64| {
        let first = (lo / step - 1e-9).ceil() as i64;
        let last = (hi / step + 1e-9).floor() as i64;
        (first..=last).map(|i| i as f64 * step).collect::<Vec<_>>()
    };
    let k = steps.iter().rposition(|&st| st >= raw * (1.0 - 1e-9)).unwrap_or(0);
    steps[k..].iter().map(|&st| ticks(st)).find(|t| t.len() >= 3).unwrap_or_else(|| ticks(steps[k]))
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

/// The chart's layout and scales: plot area, data ranges, and the floor below which points are
/// drawn on the bottom edge.
struct Frame {
    left: f64,
    top: f64,
    pw: f64,
    ph: f64,
    w: f64,
    h: f64,
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    floored: bool,
}

impl Frame {
    fn sx(&self, x: f64) -> f64 {
        self.left + (x - self.x0) / (self.x1 - self.x0) * self.pw
    }
    fn sy(&self, y: f64) -> f64 {
        self.top + self.ph - (y - self.y0) / (self.y1 - self.y0) * self.ph
    }
    /// `true` for values below the floor (drawn on the bottom edge).
    fn below(&self, y: f64) -> bool {
        self.floored && y < self.y0
    }
}

const PARETO_LABEL: &str = "Pareto front (less time, more accuracy)";

impl Chart {
    /// Renders the chart as an SVG document.
    pub fn render(&self) -> String {
        let f = self.frame();
        let mut s = String::new();
        self.axes(&f, &mut s);
        let mut placed: Vec<f64> = Vec::new();
        for (k, ser) in self.series.iter().enumerate() {
            series_svg(&f, k, ser, &mut placed, &mut s);
        }
        if self.pareto {
            self.pareto_svg(&f, &mut s);
        }
        let clipped =
            self.series.iter().any(|s| s.points.iter().any(|&(x, y)| x.is_finite() && y.is_finite() && f.below(y)));
        if clipped {
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10" fill="#555">▼ below {}, on the bottom edge with its value</text>"##,
                f.left + f.pw,
                f.top - 5.0,
                fmt_tick(f.y0)
            );
        }
        s.push_str("</svg>\n");
        s
    }

    /// The layout (room for the legend) and the padded data ranges.
    fn frame(&self) -> Frame {
        let legend = self
            .series
            .iter()
            .map(|s| text_width(&s.name, 12.0))
            .chain(self.pareto.then(|| text_width(PARETO_LABEL, 12.0)))
            .fold(0.0, f64::max);
        let (left, top, bottom): (f64, f64, f64) = (70.0, 40.0, 55.0);
        let right = (legend + 60.0).max(200.0);
        let (pw, ph) = (490.0, 365.0);
        // The legend runs down the right side, 20 px an entry: a long one makes the chart taller.
        let entries = self.series.len() + usize::from(self.pareto);
        let (w, h) = (left + pw + right, (top + ph + bottom).max(legend_y(top, entries) + 20.0));
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
        let y0 = match self.y_floor {
            Some(f) if f > y0 && f < y1 => f,
            _ => y0,
        };
        let (x0, x1) = pad(x0, x1);
        let (y0, y1) = pad(y0, y1);
        Frame { left, top, pw, ph, w, h, x0, x1, y0, y1, floored: self.y_floor.is_some() }
    }

    /// The document header, title, grid, ticks, plot border and axis labels.
    fn axes(&self, f: &Frame, s: &mut String) {
        let (left, top, pw, ph, w, h) = (f.left, f.top, f.pw, f.ph, f.w, f.h);
        let title_size = 15f64.min((w - 20.0) / (0.6 * self.title.chars().count().max(1) as f64));
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="{title_size:.1}">{}</text>
"#,
            w / 2.0,
            escape(&self.title)
        );
        for t in nice_ticks(f.x0, f.x1, 6) {
            let x = f.sx(t);
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{:.1}" stroke="#e5e5e5"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                top + ph,
                top + ph + 16.0,
                fmt_tick(t)
            );
        }
        for t in nice_ticks(f.y0, f.y1, 6) {
            let y = f.sy(t);
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
            // Under the tick labels, in the bottom margin (a long legend can make the chart
            // taller than the plot needs).
            top + ph + 43.0,
            escape(&self.x_label)
        );
        let _ = writeln!(
            s,
            r#"<text transform="translate(18,{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            top + ph / 2.0,
            escape(&self.y_label)
        );
    }

    /// The Pareto front of the non-reference points, as a staircase, and its legend entry.
    fn pareto_svg(&self, f: &Frame, s: &mut String) {
        let all: Vec<(f64, f64)> = self
            .series
            .iter()
            .filter(|s| s.style != Style::Reference)
            .flat_map(|s| s.points.iter().copied())
            .filter(|p| !f.below(p.1))
            .collect();
        let front = pareto_front(&all);
        if front.is_empty() {
            return;
        }
        // A staircase: from each front point, right at its accuracy, then up to the next.
        let mut path = Vec::new();
        for (i, &(x, y)) in front.iter().enumerate() {
            path.push(format!("{:.1},{:.1}", f.sx(x), f.sy(y)));
            if let Some(&(nx, _)) = front.get(i + 1) {
                path.push(format!("{:.1},{:.1}", f.sx(nx), f.sy(y)));
            }
        }
        let _ = writeln!(
            s,
            r##"<polyline points="{}" fill="none" stroke="#444" stroke-width="1.2" stroke-dasharray="3,3"/>"##,
            path.join(" ")
        );
        for &(x, y) in &front {
            let _ = writeln!(
                s,
                r##"<circle cx="{:.1}" cy="{:.1}" r="7" fill="none" stroke="#444" stroke-width="1.2"/>"##,
                f.sx(x),
                f.sy(y)
            );
        }
        let ly = legend_y(f.top, self.series.len());
        let lx = f.left + f.pw + 16.0;
        let _ = writeln!(
            s,
            r##"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="#444" stroke-dasharray="3,3"/><text x="{}" y="{}">{PARETO_LABEL}</text>"##,
            lx + 22.0,
            lx + 28.0,
            ly + 4.0
        );
    }
}

/// Series `k`: a dashed reference line, or its points (line, error bars, markers; values below
/// the floor as labelled triangles on the bottom edge, stacked by `placed`), and its legend entry.
fn series_svg(f: &Frame, k: usize, ser: &Series, placed: &mut Vec<f64>, s: &mut String) {
    let color = PALETTE[k % PALETTE.len()];
    // After ten series the colours repeat: the marker's shape tells them apart.
    let shape = k / PALETTE.len() % 3;
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
                    r#"<line x1="{}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-dasharray="6,4" stroke-width="1.5"/>"#,
                    f.left,
                    f.sy(y),
                    f.left + f.pw,
                    f.sy(y)
                );
            }
        }
        Style::Line | Style::Points => {
            for &(x, y, _) in valid.iter().filter(|p| f.below(p.1)) {
                floored_point(f, &ser.name, color, (x, y), placed, s);
            }
            let valid: Vec<(f64, f64, f64)> = valid.into_iter().filter(|p| !f.below(p.1)).collect();
            if ser.style == Style::Line && valid.len() > 1 {
                let path: Vec<String> =
                    valid.iter().map(|&(x, y, _)| format!("{:.1},{:.1}", f.sx(x), f.sy(y))).collect();
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
                        r#"<line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="{color}"/><line x1="{3:.1}" y1="{1:.1}" x2="{4:.1}" y2="{1:.1}" stroke="{color}"/><line x1="{3:.1}" y1="{2:.1}" x2="{4:.1}" y2="{2:.1}" stroke="{color}"/>"#,
                        f.sx(x),
                        f.sy((y - e).max(f.y0)),
                        f.sy((y + e).min(f.y1)),
                        f.sx(x) - 3.0,
                        f.sx(x) + 3.0
                    );
                }
                let tip = format!("<title>{}: ({}, {})</title>", escape(&ser.name), fmt_tick(x), fmt_tick(y));
                s.push_str(&marker(shape, f.sx(x), f.sy(y), color, &tip));
            }
        }
    }
    let ly = legend_y(f.top, k);
    let lx = f.left + f.pw + 16.0;
    let dash = if ser.style == Style::Reference { r#" stroke-dasharray="6,4""# } else { "" };
    if ser.style != Style::Reference {
        s.push_str(&marker(shape, lx + 11.0, ly, color, ""));
    }
    let _ = writeln!(
        s,
        r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
        lx + 22.0,
        lx + 28.0,
        ly + 4.0,
        escape(&ser.name)
    );
}

/// A value below the floor: a triangle on the bottom edge with the value, labels stacked
/// upwards where they would overlap.
fn floored_point(f: &Frame, name: &str, color: &str, (x, y): (f64, f64), placed: &mut Vec<f64>, s: &mut String) {
    let (cx, cy) = (f.sx(x), f.top + f.ph);
    let level = placed.iter().filter(|&&px: &&f64| (px - cx).abs() < 34.0).count() as f64;
    placed.push(cx);
    let _ = writeln!(
        s,
        r#"<path d="M{:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} Z" fill="{color}"><title>{}: ({}, {})</title></path><text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="{color}">{}</text>"#,
        cx - 5.0,
        cy - 9.0,
        cx + 5.0,
        cy - 9.0,
        cx,
        cy - 1.0,
        escape(name),
        fmt_tick(x),
        fmt_tick(y),
        cy - 12.0 - 11.0 * level,
        fmt_tick(y)
    );
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
            y_floor: None,
            pareto: false,
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
        assert_eq!(s.matches("</title></circle>").count(), 2, "NaN points are skipped (data points carry a tooltip)");
    }

    #[test]
    fn the_legend_fits_however_many_series() {
        // 30 series and the Pareto entry: 31 legend rows, 20 px each from y = 50, the last
        // text at 50 + 30 * 20 + 4 = 654: taller than the 460 px of a short legend.
        let series = (0..30)
            .map(|i| Series {
                name: format!("rule {i}"),
                points: vec![(i as f64, 90.0 + 0.1 * i as f64)],
                errors: None,
                style: Style::Points,
            })
            .collect();
        let c = Chart {
            y_floor: None,
            pareto: true,
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series,
        };
        let s = c.render();
        let h: f64 = s.split("height=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        let lowest = s
            .split("<text x=\"")
            .skip(1)
            .filter_map(|t| t.split("y=\"").nth(1)?.split('"').next()?.parse::<f64>().ok())
            .fold(0.0_f64, f64::max);
        assert_eq!(lowest, 654.0, "the Pareto entry is the last legend row");
        assert!(lowest + 10.0 <= h, "legend text at y = {lowest} outside a {h} px chart");
        // A short legend keeps the usual height.
        let short = Chart { series: c.series[..3].to_vec(), ..c.clone() }.render();
        assert!(short.contains("height=\"460\""), "{}", &short[..200]);
    }

    #[test]
    fn pareto_front_keeps_only_undominated_points() {
        let pts =
            [(100.0, 90.0), (50.0, 89.0), (60.0, 91.0), (200.0, 91.0), (40.0, 80.0), (300.0, 92.5), (f64::NAN, 99.0)];
        // (50, 89) is beaten by nothing faster; (60, 91) beats (100, 90) and ties (200, 91) in
        // accuracy with less time; (40, 80) is the fastest.
        assert_eq!(pareto_front(&pts), vec![(40.0, 80.0), (50.0, 89.0), (60.0, 91.0), (300.0, 92.5)]);
    }

    #[test]
    fn clipped_outliers_are_marked_not_hidden() {
        let c = Chart {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![Series {
                name: "grand".into(),
                points: vec![(1.0, 91.0), (2.0, 58.99), (3.0, 92.0)],
                errors: None,
                style: Style::Points,
            }],
            y_floor: Some(88.0),
            pareto: true,
        };
        let s = c.render();
        assert_eq!(s.matches("</title></circle>").count(), 2, "two points in range");
        assert_eq!(s.matches(r##"r="7" fill="none""##).count(), 2, "both on the Pareto front, ringed");
        assert!(s.contains(">58.99</text>"), "the clipped point's value is written");
        assert!(s.contains("below 87.8") || s.contains("below 88"), "{s}");
        assert!(s.contains("Pareto front"));
        // No floor: nothing is clipped and no note is written.
        let s = Chart { y_floor: None, ..c }.render();
        assert!(!s.contains("on the bottom edge"));
    }
}
