//! Inline SVG charts: horizontal bars, histograms, line charts, scatter
//! plots, heatmaps, a SHAP beeswarm and table sparklines. Every chart has
//! axes with "nice" ticks, axis labels, a title where useful and native
//! `<title>` tooltips (no script needed). Labels are escaped here.

use std::fmt::Write;

use crate::html::{esc, num, short};

/// The categorical palette (colour-blind friendly order).
pub const PALETTE: [&str; 10] = [
    "#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#ec4899", "#84cc16",
    "#64748b", "#a16207",
];
pub const ACCENT: &str = "#2563eb";
pub const MUTED_BAR: &str = "#94a3b8";

pub fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// Ticks at 1, 2 or 5 × 10^k covering [lo, hi]; returns (lo', hi', ticks).
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> (f64, f64, Vec<f64>) {
    let (mut lo, mut hi) = if lo.is_finite() && hi.is_finite() {
        (lo.min(hi), lo.max(hi))
    } else {
        (0.0, 1.0)
    };
    if hi - lo < 1e-12 * (1.0 + lo.abs()) {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        lo -= pad;
        hi += pad;
    }
    let raw = (hi - lo) / target.max(2) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).floor() * step;
    let end = (hi / step).ceil() * step;
    let mut ticks = Vec::new();
    let mut t = start;
    while t <= end + step * 1e-9 && ticks.len() < 50 {
        ticks.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    (start, end, ticks)
}

/// A tick label: compact (12k, 3.4M) for large values.
pub fn tick_label(v: f64) -> String {
    let a = v.abs();
    let s = if a >= 1e9 {
        format!("{}G", trim(v / 1e9))
    } else if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", trim(v / 1e3))
    } else if a == 0.0 {
        "0".into()
    } else if a < 1e-3 {
        format!("{v:.0e}")
    } else {
        trim(v)
    };
    s.replacen('-', "−", 1)
}

fn trim(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// A linear map from data to pixels.
#[derive(Clone, Copy)]
pub struct Scale {
    pub d0: f64,
    pub d1: f64,
    pub p0: f64,
    pub p1: f64,
}

impl Scale {
    pub fn at(&self, v: f64) -> f64 {
        if self.d1 == self.d0 {
            return (self.p0 + self.p1) / 2.0;
        }
        self.p0 + (v - self.d0) / (self.d1 - self.d0) * (self.p1 - self.p0)
    }
}

fn open(s: &mut String, w: f64, h: f64, label: &str) {
    let _ = write!(
        s,
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w:.0} {h:.0}\" style=\"max-width:{w:.0}px\" role=\"img\" aria-label=\"{}\"><title>{}</title>",
        esc(label),
        esc(label)
    );
}

/// Grid, ticks and axis titles for a plot area.
fn axes(s: &mut String, x: &Scale, y: &Scale, xt: &[f64], yt: &[f64], xlabel: &str, ylabel: &str) {
    s.push_str("<g class=\"ax\">");
    for &t in yt {
        let py = y.at(t);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{py:.1}\" y2=\"{py:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            x.p0,
            x.p1,
            x.p0 - 6.0,
            py + 3.5,
            tick_label(t)
        );
    }
    for &t in xt {
        let px = x.at(t);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/><text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            y.p1,
            y.p0,
            y.p0 + 15.0,
            tick_label(t)
        );
    }
    let _ = write!(
        s,
        "<line class=\"base\" x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/><line class=\"base\" x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>",
        x.p0, x.p1, y.p0, y.p0, x.p0, x.p0, y.p0, y.p1
    );
    s.push_str("</g>");
    if !xlabel.is_empty() {
        let _ = write!(
            s,
            "<text class=\"lab\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            (x.p0 + x.p1) / 2.0,
            y.p0 + 34.0,
            esc(xlabel)
        );
    }
    if !ylabel.is_empty() {
        let cx = x.p0 - 46.0;
        let cy = (y.p0 + y.p1) / 2.0;
        let _ = write!(
            s,
            "<text class=\"lab\" transform=\"translate({cx:.1},{cy:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
            esc(ylabel)
        );
    }
}

fn title(s: &mut String, x: f64, text: &str) {
    if !text.is_empty() {
        let _ = write!(
            s,
            "<text class=\"title\" x=\"{x:.1}\" y=\"18\">{}</text>",
            esc(text)
        );
    }
}

/// One horizontal bar.
pub struct Bar {
    pub label: String,
    pub value: f64,
    /// Text at the end of the bar (defaults to the value).
    pub text: Option<String>,
    pub colour: Option<&'static str>,
}

impl Bar {
    pub fn new(label: impl Into<String>, value: f64) -> Bar {
        Bar {
            label: label.into(),
            value,
            text: None,
            colour: None,
        }
    }
    pub fn text(mut self, t: impl Into<String>) -> Bar {
        self.text = Some(t.into());
        self
    }
    pub fn colour(mut self, c: &'static str) -> Bar {
        self.colour = Some(c);
        self
    }
}

/// Horizontal bars, one row per item, labels on the left. With
/// `from_zero` false the axis starts near the smallest value (scores that
/// differ in the third decimal stay distinguishable).
pub fn hbars(chart_title: &str, bars: &[Bar], xlabel: &str, from_zero: bool) -> String {
    let finite: Vec<f64> = bars
        .iter()
        .map(|b| b.value)
        .filter(|v| v.is_finite())
        .collect();
    let (mut lo, mut hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if finite.is_empty() {
        (lo, hi) = (0.0, 1.0);
    }
    if from_zero {
        lo = lo.min(0.0);
        hi = hi.max(0.0);
    } else {
        let span = (hi - lo).max(hi.abs() * 0.01).max(1e-9);
        lo -= span * 0.25;
        hi += span * 0.05;
    }
    let (lo, hi, ticks) = nice_ticks(lo, hi, 5);
    let label_chars = bars
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(4)
        .min(30);
    let left = 16.0 + 6.6 * label_chars as f64;
    let row = 22.0;
    let top = if chart_title.is_empty() { 10.0 } else { 30.0 };
    let w = 760.0;
    let h = top + row * bars.len().max(1) as f64 + 44.0;
    let x = Scale {
        d0: lo,
        d1: hi,
        p0: left,
        p1: w - 70.0,
    };
    let y = Scale {
        d0: 0.0,
        d1: 1.0,
        p0: h - 36.0,
        p1: top,
    };
    let mut s = String::new();
    open(&mut s, w, h, chart_title);
    title(&mut s, left, chart_title);
    axes(&mut s, &x, &y, &ticks, &[], xlabel, "");
    let base = x.at(if from_zero { 0.0 } else { lo });
    for (i, b) in bars.iter().enumerate() {
        let cy = top + row * i as f64;
        let v = if b.value.is_finite() { b.value } else { lo };
        let (x0, x1) = {
            let p = x.at(v);
            if p < base { (p, base) } else { (base, p) }
        };
        let text = b.text.clone().unwrap_or_else(|| num(b.value));
        let _ = write!(
            s,
            "<g><title>{}: {}</title><text class=\"lab\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"2\" fill=\"{}\"/><text class=\"val\" x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
            esc(&b.label),
            esc(&text),
            left - 8.0,
            cy + row / 2.0 + 4.0,
            esc(&short(&b.label, 30)),
            cy + 3.0,
            (x1 - x0).max(0.5),
            row - 6.0,
            b.colour.unwrap_or(ACCENT),
            x1 + 5.0,
            cy + row / 2.0 + 4.0,
            esc(&text)
        );
    }
    s.push_str("</svg>");
    s
}

/// Vertical bars over numeric bins (a histogram): `(lower, upper, count)`.
pub fn histogram(
    chart_title: &str,
    bins: &[(f64, f64, f64)],
    xlabel: &str,
    ylabel: &str,
    fill: &str,
) -> String {
    let w = 540.0;
    let h = 300.0;
    let lo = bins.first().map(|b| b.0).unwrap_or(0.0);
    let hi = bins.last().map(|b| b.1).unwrap_or(1.0);
    let max = bins.iter().map(|b| b.2).fold(0.0, f64::max);
    let (xl, xh, xt) = nice_ticks(lo, hi, 6);
    let (_, yh, yt) = nice_ticks(0.0, max.max(1.0), 5);
    let x = Scale {
        d0: xl,
        d1: xh,
        p0: 64.0,
        p1: w - 16.0,
    };
    let y = Scale {
        d0: 0.0,
        d1: yh,
        p0: h - 46.0,
        p1: 30.0,
    };
    let mut s = String::new();
    open(&mut s, w, h, chart_title);
    title(&mut s, 64.0, chart_title);
    axes(&mut s, &x, &y, &xt, &yt, xlabel, ylabel);
    for b in bins {
        let x0 = x.at(b.0);
        let x1 = x.at(b.1);
        let y1 = y.at(b.2);
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{y1:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\"><title>[{}, {}): {}</title></rect>",
            x0 + 0.5,
            (x1 - x0 - 1.0).max(0.5),
            (y.p0 - y1).max(0.0),
            num(b.0),
            num(b.1),
            num(b.2.round())
        );
    }
    s.push_str("</svg>");
    s
}

/// Vertical bars over categories (class counts).
pub fn column_bars(chart_title: &str, items: &[(String, f64)], ylabel: &str) -> String {
    let w = 540.0;
    let h = 300.0;
    let max = items.iter().map(|b| b.1).fold(0.0, f64::max);
    let (_, yh, yt) = nice_ticks(0.0, max.max(1.0), 5);
    let x = Scale {
        d0: 0.0,
        d1: items.len().max(1) as f64,
        p0: 64.0,
        p1: w - 16.0,
    };
    let y = Scale {
        d0: 0.0,
        d1: yh,
        p0: h - 56.0,
        p1: 30.0,
    };
    let mut s = String::new();
    open(&mut s, w, h, chart_title);
    title(&mut s, 64.0, chart_title);
    axes(&mut s, &x, &y, &[], &yt, "", ylabel);
    let total: f64 = items.iter().map(|b| b.1).sum();
    let band = (x.p1 - x.p0) / items.len().max(1) as f64;
    let rotate = items.len() > 8;
    for (i, (label, v)) in items.iter().enumerate() {
        let x0 = x.at(i as f64) + band * 0.15;
        let y1 = y.at(*v);
        let share = if total > 0.0 { v / total } else { 0.0 };
        let cx = x0 + band * 0.35;
        let _ = write!(
            s,
            "<g><title>{}: {} ({})</title><rect x=\"{x0:.1}\" y=\"{y1:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"2\" fill=\"{}\"/>",
            esc(label),
            num(*v),
            crate::html::pct(share),
            band * 0.7,
            (y.p0 - y1).max(0.0),
            colour(i)
        );
        if !rotate {
            let _ = write!(
                s,
                "<text class=\"val\" x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                y1 - 4.0,
                crate::html::pct(share)
            );
        }
        if rotate {
            let _ = write!(
                s,
                "<text class=\"lab\" transform=\"translate({cx:.1},{:.1}) rotate(-35)\" text-anchor=\"end\">{}</text></g>",
                y.p0 + 14.0,
                esc(&short(label, 14))
            );
        } else {
            let _ = write!(
                s,
                "<text class=\"lab\" x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text></g>",
                y.p0 + 16.0,
                esc(&short(label, 16))
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// One line of a line chart.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub colour: &'static str,
    pub dashed: bool,
    /// Draw dots at the points (calibration curves).
    pub dots: bool,
}

/// Where a legend sits inside the plot area.
#[derive(Clone, Copy)]
pub enum Corner {
    TopLeft,
    BottomLeft,
    BottomRight,
}

/// Lines over shared axes with a legend inside the plot at `corner`.
/// `diagonal` draws the y = x reference (ROC, calibration).
#[allow(clippy::too_many_arguments)]
pub fn lines(
    chart_title: &str,
    series: &[Series],
    xr: (f64, f64),
    yr: (f64, f64),
    xlabel: &str,
    ylabel: &str,
    diagonal: bool,
    corner: Corner,
) -> String {
    let w = 520.0;
    let h = 430.0;
    let (xl, xh, xt) = nice_ticks(xr.0, xr.1, 5);
    let (yl, yh, yt) = nice_ticks(yr.0, yr.1, 5);
    let x = Scale {
        d0: xl,
        d1: xh,
        p0: 64.0,
        p1: w - 20.0,
    };
    let y = Scale {
        d0: yl,
        d1: yh,
        p0: h - 46.0,
        p1: 30.0,
    };
    let mut s = String::new();
    open(&mut s, w, h, chart_title);
    title(&mut s, 64.0, chart_title);
    axes(&mut s, &x, &y, &xt, &yt, xlabel, ylabel);
    if diagonal {
        let _ = write!(
            s,
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#94a3b8\" stroke-dasharray=\"4 4\"/>",
            x.at(xl.max(yl)),
            y.at(xl.max(yl)),
            x.at(xh.min(yh)),
            y.at(xh.min(yh))
        );
    }
    for se in series {
        let pts = decimate(&se.points, 600);
        let mut d = String::new();
        for (i, (px, py)) in pts.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1},{:.1}",
                if i == 0 { "M" } else { "L" },
                x.at(*px),
                y.at(*py)
            );
        }
        let _ = write!(
            s,
            "<path d=\"{d}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" stroke-linejoin=\"round\"{}><title>{}</title></path>",
            se.colour,
            if se.dashed {
                " stroke-dasharray=\"6 4\""
            } else {
                ""
            },
            esc(&se.name)
        );
        if se.dots {
            for (px, py) in &pts {
                let _ = write!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{}\"><title>{}: ({}, {})</title></circle>",
                    x.at(*px),
                    y.at(*py),
                    se.colour,
                    esc(&se.name),
                    num(*px),
                    num(*py)
                );
            }
        }
    }
    if series.iter().any(|s| !s.name.is_empty()) {
        legend(&mut s, &x, &y, series, corner);
    }
    s.push_str("</svg>");
    s
}

fn legend(s: &mut String, x: &Scale, y: &Scale, series: &[Series], corner: Corner) {
    let chars = series
        .iter()
        .map(|se| se.name.chars().count().min(30))
        .max()
        .unwrap_or(4) as f64;
    let lw = 36.0 + 6.3 * chars;
    let lh = 20.0 * series.len() as f64 + 8.0;
    let (lx, ly) = match corner {
        Corner::TopLeft => (x.p0 + 10.0, y.p1 + 8.0),
        Corner::BottomLeft => (x.p0 + 10.0, y.p0 - lh - 10.0),
        Corner::BottomRight => (x.p1 - lw - 10.0, y.p0 - lh - 10.0),
    };
    let _ = write!(
        s,
        "<rect x=\"{lx:.1}\" y=\"{ly:.1}\" width=\"{lw:.1}\" height=\"{lh:.1}\" rx=\"6\" fill=\"#ffffff\" fill-opacity=\"0.92\" stroke=\"#e2e8f0\"/>"
    );
    for (i, se) in series.iter().enumerate() {
        let cy = ly + 14.0 + 20.0 * i as f64;
        let x0 = lx + 8.0;
        let _ = write!(
            s,
            "<line x1=\"{x0:.1}\" x2=\"{:.1}\" y1=\"{cy:.1}\" y2=\"{cy:.1}\" stroke=\"{}\" stroke-width=\"3\"{}/><text class=\"lab\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x0 + 18.0,
            se.colour,
            if se.dashed {
                " stroke-dasharray=\"4 3\""
            } else {
                ""
            },
            x0 + 24.0,
            cy + 4.0,
            esc(&short(&se.name, 30))
        );
    }
}

/// Keep at most `max` points, always the first and the last.
fn decimate(p: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if p.len() <= max {
        return p.to_vec();
    }
    let step = p.len() as f64 / (max - 1) as f64;
    let mut out: Vec<(f64, f64)> = (0..max - 1)
        .map(|i| p[((i as f64 * step) as usize).min(p.len() - 1)])
        .collect();
    if let Some(last) = p.last() {
        out.push(*last);
    }
    out
}

/// A scatter plot. `reference` draws y = x (`Some(true)`) or y = 0
/// (`Some(false)`).
pub fn scatter(
    chart_title: &str,
    points: &[(f64, f64)],
    xlabel: &str,
    ylabel: &str,
    reference: Option<bool>,
) -> String {
    let w = 540.0;
    let h = 400.0;
    let finite: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .collect();
    let (mut x0, mut x1, mut y0, mut y1) = finite.iter().fold(
        (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ),
        |(a, b, c, d), &(px, py)| (a.min(px), b.max(px), c.min(py), d.max(py)),
    );
    if finite.is_empty() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if reference == Some(true) {
        let lo = x0.min(y0);
        let hi = x1.max(y1);
        (x0, x1, y0, y1) = (lo, hi, lo, hi);
    }
    let (xl, xh, xt) = nice_ticks(x0, x1, 6);
    let (yl, yh, yt) = nice_ticks(y0, y1, 5);
    let x = Scale {
        d0: xl,
        d1: xh,
        p0: 70.0,
        p1: w - 16.0,
    };
    let y = Scale {
        d0: yl,
        d1: yh,
        p0: h - 46.0,
        p1: 30.0,
    };
    let mut s = String::new();
    open(&mut s, w, h, chart_title);
    title(&mut s, 70.0, chart_title);
    axes(&mut s, &x, &y, &xt, &yt, xlabel, ylabel);
    let _ = write!(s, "<g fill=\"{ACCENT}\" fill-opacity=\"0.35\">");
    for (px, py) in &finite {
        let _ = write!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.6\"/>",
            x.at(*px),
            y.at(*py)
        );
    }
    s.push_str("</g>");
    match reference {
        Some(true) => {
            let lo = xl.max(yl);
            let hi = xh.min(yh);
            let _ = write!(
                s,
                "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#dc2626\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"><title>y = x</title></line><text class=\"val\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#dc2626\">y = x</text>",
                x.at(lo),
                y.at(lo),
                x.at(hi),
                y.at(hi),
                x.at(hi) - 4.0,
                y.at(hi) + 14.0
            );
        }
        Some(false) if yl <= 0.0 && yh >= 0.0 => {
            let _ = write!(
                s,
                "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#dc2626\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>",
                x.p0,
                y.at(0.0),
                x.p1,
                y.at(0.0)
            );
        }
        _ => {}
    }
    s.push_str("</svg>");
    s
}

/// Linear interpolation between two `#rrggbb` colours.
pub fn mix(a: &str, b: &str, t: f64) -> String {
    let p = |c: &str, i: usize| {
        u8::from_str_radix(c.get(1 + 2 * i..3 + 2 * i).unwrap_or("00"), 16).unwrap_or(0) as f64
    };
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let ch = |i| (p(a, i) + (p(b, i) - p(a, i)) * t).round() as u8;
    format!("#{:02x}{:02x}{:02x}", ch(0), ch(1), ch(2))
}

/// Diverging blue–white–red for values in [-1, 1].
pub fn diverging(v: f64) -> String {
    if !v.is_finite() {
        return "#f1f5f9".into();
    }
    if v < 0.0 {
        mix("#ffffff", "#2563eb", -v)
    } else {
        mix("#ffffff", "#dc2626", v)
    }
}

/// One heatmap cell: fill colour, text inside (may be empty), tooltip.
pub struct Cell {
    pub fill: String,
    pub text: String,
    pub tip: String,
    pub dark: bool,
}

/// A colour legend: gradient stops (offset 0 = bottom) and tick labels
/// (position in [0, 1], text), with a title.
pub struct ColourScale {
    pub title: String,
    pub stops: Vec<(f64, String)>,
    pub labels: Vec<(f64, String)>,
}

/// A labelled grid of cells (row-major), with a y and x axis title and a
/// colour legend on the right.
#[allow(clippy::too_many_arguments)]
pub fn heatmap(
    chart_title: &str,
    rows: &[String],
    cols: &[String],
    cells: &[Cell],
    ylabel: &str,
    xlabel: &str,
    cell_px: f64,
    scale: &ColourScale,
) -> String {
    let label_chars = rows
        .iter()
        .chain(cols)
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(4)
        .min(22) as f64;
    let left = 30.0 + 6.4 * label_chars;
    let top = if chart_title.is_empty() { 10.0 } else { 30.0 };
    let col_chars = cols
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(1)
        .min(22) as f64;
    let rotate = col_chars * 6.8 > cell_px - 4.0;
    let bottom = if rotate { 30.0 + 5.2 * col_chars } else { 40.0 };
    let grid_right = left + cell_px * cols.len() as f64;
    let w = grid_right + 100.0;
    let h = top + cell_px * rows.len() as f64 + bottom;
    let mut s = String::new();
    open(&mut s, w.max(300.0), h, chart_title);
    title(&mut s, left, chart_title);
    {
        let id: String = chart_title
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let id = format!("grad-{id}");
        let bar_h = (cell_px * rows.len() as f64).clamp(80.0, 260.0);
        let (bx, by) = (grid_right + 22.0, top);
        let _ = write!(
            s,
            "<defs><linearGradient id=\"{id}\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">"
        );
        for (o, c) in &scale.stops {
            let _ = write!(s, "<stop offset=\"{o:.3}\" stop-color=\"{c}\"/>");
        }
        let _ = write!(
            s,
            "</linearGradient></defs><rect x=\"{bx:.1}\" y=\"{by:.1}\" width=\"12\" height=\"{bar_h:.1}\" fill=\"url(#{id})\" stroke=\"#e2e8f0\"/>"
        );
        for (pos, text) in &scale.labels {
            let ty = by + bar_h * (1.0 - pos);
            let _ = write!(
                s,
                "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\" stroke=\"#64748b\"/><text class=\"val\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                bx + 12.0,
                bx + 16.0,
                bx + 19.0,
                ty + 3.5,
                esc(text)
            );
        }
        let _ = write!(
            s,
            "<text class=\"val\" transform=\"translate({:.1},{:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
            bx - 6.0,
            by + bar_h / 2.0,
            esc(&scale.title)
        );
    }
    let font = (cell_px * 0.3).clamp(8.0, 13.0);
    for (r, rl) in rows.iter().enumerate() {
        let _ = write!(
            s,
            "<text class=\"lab\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 6.0,
            top + cell_px * (r as f64 + 0.5) + 4.0,
            esc(&short(rl, 22))
        );
        for c in 0..cols.len() {
            let Some(cell) = cells.get(r * cols.len() + c) else {
                continue;
            };
            let x = left + cell_px * c as f64;
            let y = top + cell_px * r as f64;
            let _ = write!(
                s,
                "<g><title>{}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\" stroke=\"#fff\" stroke-width=\"1\"/>",
                esc(&cell.tip),
                cell_px,
                cell_px,
                cell.fill
            );
            if !cell.text.is_empty() {
                let lines: Vec<&str> = cell.text.split('\n').collect();
                for (li, line) in lines.iter().enumerate() {
                    let dy = (li as f64 - (lines.len() as f64 - 1.0) / 2.0) * (font + 2.0);
                    let _ = write!(
                        s,
                        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"{font:.0}\" fill=\"{}\"{}>{}</text>",
                        x + cell_px / 2.0,
                        y + cell_px / 2.0 + font * 0.35 + dy,
                        if cell.dark { "#ffffff" } else { "#0f172a" },
                        if li == 0 { " font-weight=\"600\"" } else { "" },
                        esc(line)
                    );
                }
            }
            s.push_str("</g>");
        }
    }
    let base = top + cell_px * rows.len() as f64;
    for (c, cl) in cols.iter().enumerate() {
        let cx = left + cell_px * (c as f64 + 0.5);
        if rotate {
            let _ = write!(
                s,
                "<text class=\"lab\" transform=\"translate({cx:.1},{:.1}) rotate(-40)\" text-anchor=\"end\">{}</text>",
                base + 12.0,
                esc(&short(cl, 22))
            );
        } else {
            let _ = write!(
                s,
                "<text class=\"lab\" x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                base + 15.0,
                esc(cl)
            );
        }
    }
    if !ylabel.is_empty() {
        let _ = write!(
            s,
            "<text class=\"lab\" transform=\"translate(12,{:.1}) rotate(-90)\" text-anchor=\"middle\" font-weight=\"600\">{}</text>",
            top + cell_px * rows.len() as f64 / 2.0,
            esc(ylabel)
        );
    }
    if !xlabel.is_empty() {
        let _ = write!(
            s,
            "<text class=\"lab\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-weight=\"600\">{}</text>",
            left + cell_px * cols.len() as f64 / 2.0,
            h - 6.0,
            esc(xlabel)
        );
    }
    s.push_str("</svg>");
    s
}

/// A SHAP beeswarm: one band per feature, a dot per row at its SHAP value,
/// coloured by the feature's value (blue low → red high, grey missing).
/// `rows[f]` holds (shap, colour position in [0, 1] or NaN).
pub fn beeswarm(
    chart_title: &str,
    features: &[String],
    rows: &[Vec<(f64, f64)>],
    x_label: &str,
) -> String {
    let band = 30.0;
    let label_chars = features
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(4)
        .min(26);
    let left = 20.0 + 6.6 * label_chars as f64;
    let top = 30.0;
    let w = 820.0;
    let h = top + band * features.len().max(1) as f64 + 50.0;
    let (lo, hi) =
        rows.iter()
            .flatten()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &(v, _)| {
                if v.is_finite() {
                    (a.min(v), b.max(v))
                } else {
                    (a, b)
                }
            });
    let (lo, hi) = if lo.is_finite() {
        (lo.min(0.0), hi.max(0.0))
    } else {
        (-1.0, 1.0)
    };
    let (xl, xh, xt) = nice_ticks(lo, hi, 6);
    let x = Scale {
        d0: xl,
        d1: xh,
        p0: left,
        p1: w - 110.0,
    };
    let y = Scale {
        d0: 0.0,
        d1: 1.0,
        p0: h - 46.0,
        p1: top,
    };
    let mut s = String::new();
    open(&mut s, w, h, chart_title);
    title(&mut s, left, chart_title);
    axes(&mut s, &x, &y, &xt, &[], x_label, "");
    let _ = write!(
        s,
        "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{top:.1}\" y2=\"{:.1}\" stroke=\"#94a3b8\"/>",
        x.at(0.0),
        x.at(0.0),
        y.p0
    );
    for (f, name) in features.iter().enumerate() {
        let cy = top + band * (f as f64 + 0.5);
        let _ = write!(
            s,
            "<text class=\"lab\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\"><title>{}</title>{}</text>",
            left - 8.0,
            cy + 4.0,
            esc(name),
            esc(&short(name, 26))
        );
        let Some(pts) = rows.get(f) else { continue };
        let mut order: Vec<usize> = (0..pts.len()).filter(|&i| pts[i].0.is_finite()).collect();
        order.sort_by(|&a, &b| pts[a].0.total_cmp(&pts[b].0));
        // stack dots that fall into the same 2-pixel column, alternating
        // above and below the band's centre line
        let mut col_counts: std::collections::HashMap<i64, usize> = Default::default();
        for i in order {
            let (v, c) = pts[i];
            let px = x.at(v);
            let key = (px / 2.0).floor() as i64;
            let n = col_counts.entry(key).or_insert(0);
            let k = *n;
            *n += 1;
            let off = k.div_ceil(2) as f64 * 1.6 * if k.is_multiple_of(2) { 1.0 } else { -1.0 };
            let off = off.clamp(-band * 0.45, band * 0.45);
            let fill = if c.is_finite() {
                value_colour(c)
            } else {
                "#cbd5e1".to_string()
            };
            let _ = write!(
                s,
                "<circle cx=\"{px:.1}\" cy=\"{:.1}\" r=\"2.2\" fill=\"{fill}\" fill-opacity=\"0.85\"/>",
                cy + off
            );
        }
    }
    // colour bar legend
    let lx = w - 80.0;
    let _ = write!(
        s,
        "<defs><linearGradient id=\"shapgrad\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\"><stop offset=\"0\" stop-color=\"{}\"/><stop offset=\"0.5\" stop-color=\"{}\"/><stop offset=\"1\" stop-color=\"{}\"/></linearGradient></defs><rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"10\" height=\"{:.1}\" fill=\"url(#shapgrad)\"/><text class=\"val\" x=\"{:.1}\" y=\"{:.1}\">high</text><text class=\"val\" x=\"{:.1}\" y=\"{:.1}\">low</text><text class=\"val\" transform=\"translate({:.1},{:.1}) rotate(-90)\" text-anchor=\"middle\">feature value</text>",
        value_colour(0.0),
        value_colour(0.5),
        value_colour(1.0),
        top + 10.0,
        (y.p0 - top - 20.0).max(40.0),
        lx + 14.0,
        top + 20.0,
        lx + 14.0,
        top + 10.0 + (y.p0 - top - 20.0).max(40.0),
        lx - 6.0,
        top + 10.0 + (y.p0 - top - 20.0).max(40.0) / 2.0
    );
    s.push_str("</svg>");
    s
}

/// Low (blue) → high (crimson) through purple.
pub fn value_colour(t: f64) -> String {
    if t < 0.5 {
        mix("#1e88e5", "#7c3aed", t * 2.0)
    } else {
        mix("#7c3aed", "#e11d48", (t - 0.5) * 2.0)
    }
}

/// A tiny histogram for a table cell (no axes).
pub fn spark_bars(values: &[f64], tip: &[String], fill: &str) -> String {
    let w = 132.0;
    let h = 34.0;
    let max = values.iter().copied().fold(0.0, f64::max);
    let n = values.len().max(1) as f64;
    let bw = w / n;
    let mut s = format!(
        "<svg class=\"spark\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\">"
    );
    for (i, v) in values.iter().enumerate() {
        let bh = if max > 0.0 {
            (v / max) * (h - 2.0)
        } else {
            0.0
        };
        let bh = if *v > 0.0 { bh.max(1.0) } else { 0.0 };
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{fill}\"><title>{}</title></rect>",
            i as f64 * bw + 0.5,
            h - bh,
            (bw - 1.0).max(0.5),
            esc(tip.get(i).map(String::as_str).unwrap_or(""))
        );
    }
    let _ = write!(
        s,
        "<line x1=\"0\" x2=\"{w:.0}\" y1=\"{h:.1}\" y2=\"{h:.1}\" stroke=\"#cbd5e1\"/></svg>"
    );
    s
}

/// Tiny horizontal bars of the top values of a column (label: share).
pub fn spark_top(items: &[(String, f64)]) -> String {
    let w = 200.0;
    let row = 13.0;
    let h = row * items.len().max(1) as f64;
    let max = items.iter().map(|i| i.1).fold(0.0, f64::max);
    let mut s = format!(
        "<svg class=\"spark\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\">"
    );
    for (i, (label, share)) in items.iter().enumerate() {
        let bw = if max > 0.0 { share / max * 70.0 } else { 0.0 };
        let y = i as f64 * row;
        let _ = write!(
            s,
            "<g><title>{}: {}</title><rect x=\"0\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#f59e0b\" rx=\"1\"/><text x=\"76\" y=\"{:.1}\" font-size=\"10\" fill=\"#334155\">{} · {}</text></g>",
            esc(label),
            crate::html::pct(*share),
            y + 2.0,
            bw.max(1.0),
            row - 4.0,
            y + row - 3.0,
            esc(&short(label, 16)),
            crate::html::pct(*share)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let (lo, hi, t) = nice_ticks(0.13, 0.97, 5);
        assert!(lo <= 0.13 && hi >= 0.97);
        assert_eq!(t.first().copied(), Some(lo));
        assert!(t.len() >= 3 && t.len() <= 8, "{t:?}");
        let (_, _, t) = nice_ticks(0.0, 53940.0, 5);
        assert!(t.iter().all(|v| (v / 10000.0).fract() == 0.0), "{t:?}");
        // a degenerate range still gets ticks
        let (lo, hi, t) = nice_ticks(5.0, 5.0, 5);
        assert!(lo < 5.0 && hi > 5.0 && !t.is_empty());
    }

    #[test]
    fn colours_mix() {
        assert_eq!(mix("#000000", "#ffffff", 0.5), "#808080");
        assert_eq!(diverging(0.0), "#ffffff");
        assert_eq!(diverging(1.0), "#dc2626");
    }
}
