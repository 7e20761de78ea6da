//! Small SVG line and band plots for `crk sample` and `crk evaluate` (no dependencies): one
//! panel with axes, ticks, labels, filled bands, lines and a legend.

use std::fmt::Write as _;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

/// An axis: linear or log10, with its range.
#[derive(Clone, Copy)]
pub struct Axis {
    pub log: bool,
    pub min: f64,
    pub max: f64,
}

impl Axis {
    /// The range of `values` (finite, and positive on a log axis), padded by 5%.
    pub fn fit(log: bool, values: impl Iterator<Item = f64>) -> Axis {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
            let v = if log { v.log10() } else { v };
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if hi - lo < 1e-12 {
            (lo, hi) = (lo - 0.5, hi + 0.5);
        }
        let pad = 0.05 * (hi - lo);
        Axis { log, min: lo - pad, max: hi + pad }
    }

    fn unit(&self, v: f64) -> f64 {
        let v = if self.log { v.log10() } else { v };
        (v - self.min) / (self.max - self.min)
    }

    /// About 6 tick values (powers of ten on a log axis) with labels.
    fn ticks(&self) -> Vec<(f64, String)> {
        if self.log {
            let (a, b) = (self.min.ceil() as i32, self.max.floor() as i32);
            let step = ((b - a) / 6 + 1).max(1);
            return (a..=b).step_by(step as usize).map(|e| (10f64.powi(e), format!("1e{e}"))).collect();
        }
        let span = self.max - self.min;
        let raw = span / 6.0;
        let magnitude = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(raw);
        let first = (self.min / step).ceil() as i64;
        let last = (self.max / step).floor() as i64;
        (first..=last)
            .map(|i| (i as f64 * step, format!("{}", (i as f64 * step * 1e6).round() / 1e6)))
            .collect()
    }
}

/// A plot being built.
pub struct Plot {
    x: Axis,
    y: Axis,
    body: String,
    legend: Vec<(String, String, bool)>,
}

impl Plot {
    pub fn new(x: Axis, y: Axis) -> Plot {
        Plot { x, y, body: String::new(), legend: Vec::new() }
    }

    fn px(&self, x: f64, y: f64) -> (f64, f64) {
        let w = WIDTH - LEFT - RIGHT;
        let h = HEIGHT - TOP - BOTTOM;
        (LEFT + w * self.x.unit(x), TOP + h * (1.0 - self.y.unit(y)))
    }

    fn points(&self, xs: &[f64], ys: &[f64]) -> String {
        let mut s = String::new();
        for (&x, &y) in xs.iter().zip(ys) {
            if x.is_finite() && y.is_finite() && (!self.x.log || x > 0.0) && (!self.y.log || y > 0.0) {
                let (a, b) = self.px(x, y);
                write!(s, "{a:.1},{b:.1} ").expect("String");
            }
        }
        s
    }

    /// A band between `low` and `high` filled with `color` at `opacity`.
    pub fn band(&mut self, xs: &[f64], low: &[f64], high: &[f64], color: &str, opacity: f64, label: &str) {
        let mut rev_x: Vec<f64> = xs.to_vec();
        rev_x.reverse();
        let mut rev_high: Vec<f64> = high.to_vec();
        rev_high.reverse();
        let points = self.points(xs, low) + &self.points(&rev_x, &rev_high);
        writeln!(
            self.body,
            r#"<polygon points="{points}" fill="{color}" fill-opacity="{opacity}" stroke="none"/>"#
        )
        .expect("String");
        if !label.is_empty() {
            self.legend.push((label.into(), format!(r#"fill="{color}" fill-opacity="{opacity}""#), true));
        }
    }

    /// A line; `dash` gives a dashed one.
    pub fn line(&mut self, xs: &[f64], ys: &[f64], color: &str, dash: bool, label: &str) {
        let points = self.points(xs, ys);
        let dash_attr = if dash { r#" stroke-dasharray="6,4""# } else { "" };
        writeln!(
            self.body,
            r#"<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1.8"{dash_attr}/>"#
        )
        .expect("String");
        if !label.is_empty() {
            self.legend.push((
                label.into(),
                format!(r#"stroke="{color}" stroke-width="2"{dash_attr}"#),
                false,
            ));
        }
    }

    /// The finished SVG document.
    pub fn finish(self, title: &str, x_label: &str, y_label: &str) -> String {
        let mut s = String::new();
        let (w, h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
        writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
        )
        .expect("String");
        writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#).expect("String");
        writeln!(
            s,
            r#"<text x="{}" y="22" font-size="14" text-anchor="middle">{}</text>"#,
            LEFT + w / 2.0,
            escape(title)
        )
        .expect("String");
        s += &self.body;
        writeln!(s, r#"<rect x="{LEFT}" y="{TOP}" width="{w}" height="{h}" fill="none" stroke="black"/>"#)
            .expect("String");
        for (v, label) in self.x.ticks() {
            let (x, _) = self.px(v, if self.y.log { 10f64.powf(self.y.min) } else { self.y.min });
            let y = TOP + h;
            writeln!(s, r#"<line x1="{x:.1}" y1="{y}" x2="{x:.1}" y2="{}" stroke="black"/><text x="{x:.1}" y="{}" text-anchor="middle">{label}</text>"#, y - 5.0, y + 16.0).expect("String");
        }
        for (v, label) in self.y.ticks() {
            let (_, y) = self.px(if self.x.log { 10f64.powf(self.x.min) } else { self.x.min }, v);
            writeln!(s, r#"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="black"/><text x="{}" y="{:.1}" text-anchor="end">{label}</text>"#, LEFT + 5.0, LEFT - 4.0, y + 4.0).expect("String");
        }
        writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            LEFT + w / 2.0,
            HEIGHT - 18.0,
            escape(x_label)
        )
        .expect("String");
        writeln!(
            s,
            r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">{}</text>"#,
            TOP + h / 2.0,
            TOP + h / 2.0,
            escape(y_label)
        )
        .expect("String");
        for (i, (label, style, filled)) in self.legend.iter().enumerate() {
            let y = TOP + 14.0 + 20.0 * i as f64;
            let x = WIDTH - RIGHT + 12.0;
            if *filled {
                writeln!(s, r#"<rect x="{x}" y="{}" width="22" height="10" {style}/>"#, y - 8.0)
                    .expect("String");
            } else {
                writeln!(
                    s,
                    r#"<line x1="{x}" y1="{}" x2="{}" y2="{}" {style}/>"#,
                    y - 3.0,
                    x + 22.0,
                    y - 3.0
                )
                .expect("String");
            }
            writeln!(s, r#"<text x="{}" y="{y}">{}</text>"#, x + 28.0, escape(label)).expect("String");
        }
        s += "</svg>\n";
        s
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The quantile bands of E^3 phi = exp(psi) against E: 5-95% and 16-84% bands and the
/// median, for one set (the emulator) and optionally a second (the simulation, dashed lines).
pub fn bands_plot(
    title: &str,
    energies_gev: &[f64],
    first: (&str, &[[f64; 5]]),
    second: Option<(&str, &[[f64; 5]])>,
) -> String {
    let e3phi = |q: &[[f64; 5]], k: usize| -> Vec<f64> { q.iter().map(|b| b[k].exp()).collect() };
    let all = first.1.iter().chain(second.map_or(&[][..], |s| s.1)).flat_map(|b| b.iter().map(|v| v.exp()));
    let mut plot = Plot::new(Axis::fit(true, energies_gev.iter().copied()), Axis::fit(true, all));
    plot.band(
        energies_gev,
        &e3phi(first.1, 0),
        &e3phi(first.1, 4),
        "#1f77b4",
        0.2,
        &format!("{} 5-95%", first.0),
    );
    plot.band(
        energies_gev,
        &e3phi(first.1, 1),
        &e3phi(first.1, 3),
        "#1f77b4",
        0.35,
        &format!("{} 16-84%", first.0),
    );
    plot.line(energies_gev, &e3phi(first.1, 2), "#1f77b4", false, &format!("{} median", first.0));
    if let Some((name, q)) = second {
        for (k, label) in [(0, "5, 95%"), (1, "16, 84%"), (2, "median")] {
            plot.line(energies_gev, &e3phi(q, k), "#d62728", true, &format!("{name} {label}"));
            if k < 2 {
                plot.line(energies_gev, &e3phi(q, 4 - k), "#d62728", true, "");
            }
        }
    }
    plot.finish(title, "E [GeV]", "E^3 phi [GeV^2 m^-2 s^-1 sr^-1]")
}
