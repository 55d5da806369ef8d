//! SVG plots of a run (plotters): the latency CDF of every series
//! ([`latency_cdf`]) and, for runs with lookups spread over time, the lookup
//! success rate per second with kills and restarts marked ([`success_over_time`]).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

use crate::report::Sample;

/// Latency CDF file name.
pub const LATENCY_CDF: &str = "latency_cdf.svg";
/// Success-over-time file name.
pub const SUCCESS_OVER_TIME: &str = "success_over_time.svg";
/// Plot size, pixels.
const SIZE: (u32, u32) = (900, 540);

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("plotting failed: {e}")
}

/// Second since the first step → (successful calls, calls).
type PerSecond = BTreeMap<u64, (u32, u32)>;

/// Series name → sorted successful latencies (ms), in order of first appearance.
fn latencies(samples: &[Sample]) -> Vec<(String, Vec<f64>)> {
    let mut out: Vec<(String, Vec<f64>)> = Vec::new();
    for s in samples.iter().filter(|s| s.ok && !s.aborted && s.kind != "event") {
        let Some(l) = s.latency_ms else { continue };
        let name = format!("{} ({})", s.series, s.kind);
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => v.push(l),
            None => out.push((name, vec![l])),
        }
    }
    for (_, v) in &mut out {
        v.sort_by(f64::total_cmp);
    }
    out
}

/// Writes the CDF of every series' latencies (log x axis) to `path`;
/// `Ok(false)` if no sample has a latency.
pub fn latency_cdf(samples: &[Sample], title: &str, path: &Path) -> anyhow::Result<bool> {
    let series = latencies(samples);
    let all = series.iter().flat_map(|(_, v)| v.iter().copied());
    let (lo, hi) = all.fold((f64::MAX, 0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
    if series.is_empty() {
        return Ok(false);
    }
    let lo = (lo * 0.8).max(0.01);
    let hi = (hi * 1.25).max(lo * 10.0);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{title}: latency CDF"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d((lo..hi).log_scale(), 0f64..100f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("latency (ms, log scale)")
        .y_desc("% of successful samples ≤ x")
        .draw()
        .map_err(err)?;
    for (i, (name, v)) in series.iter().enumerate() {
        let n = v.len() as f64;
        let mut pts = Vec::with_capacity(v.len() * 2);
        for (k, x) in v.iter().enumerate() {
            pts.push((*x, k as f64 / n * 100.0));
            pts.push((*x, (k + 1) as f64 / n * 100.0));
        }
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(err)?
            .label(format!("{name}, n={}", v.len()))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(true)
}

/// Writes the success rate per second of every `find`/`invoke` series
/// against time, with `event` samples (kills, restarts) as vertical lines;
/// `Ok(false)` when the lookups span less than 3 s (nothing to show over time).
pub fn success_over_time(samples: &[Sample], title: &str, path: &Path) -> anyhow::Result<bool> {
    let calls: Vec<&Sample> = samples
        .iter()
        .filter(|s| (s.kind == "find" || s.kind == "invoke") && !s.aborted)
        .collect();
    let t_min = calls.iter().map(|s| s.t_ms).fold(f64::MAX, f64::min);
    let t_max = calls.iter().map(|s| s.t_ms).fold(0f64, f64::max);
    if calls.is_empty() || t_max - t_min < 3000.0 {
        return Ok(false);
    }
    let mut buckets: Vec<(String, PerSecond)> = Vec::new();
    for s in &calls {
        let sec = (s.t_ms / 1000.0).floor() as u64;
        let idx = match buckets.iter().position(|(n, _)| *n == s.series) {
            Some(i) => i,
            None => {
                buckets.push((s.series.clone(), BTreeMap::new()));
                buckets.len() - 1
            }
        };
        let e = buckets[idx].1.entry(sec).or_insert((0, 0));
        e.0 += u32::from(s.ok);
        e.1 += 1;
    }
    let x_max = (t_max / 1000.0).ceil() + 1.0;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{title}: success per second"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..x_max, 0f64..105f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("time since the first step (s)")
        .y_desc("successful calls (%)")
        .draw()
        .map_err(err)?;
    for (i, (name, b)) in buckets.iter().enumerate() {
        let pts: Vec<(f64, f64)> = b
            .iter()
            .map(|(sec, (ok, n))| (*sec as f64 + 0.5, f64::from(*ok) / f64::from(*n) * 100.0))
            .collect();
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(err)?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    let events: Vec<&Sample> = samples.iter().filter(|s| s.kind == "event").collect();
    for (label, color) in [("kill", RED), ("restart", GREEN)] {
        let ts: Vec<f64> = events
            .iter()
            .filter(|e| e.series == label)
            .map(|e| e.t_ms / 1000.0)
            .collect();
        if ts.is_empty() {
            continue;
        }
        chart
            .draw_series(
                ts.iter()
                    .map(|t| PathElement::new(vec![(*t, 0.0), (*t, 105.0)], color.mix(0.5).stroke_width(1))),
            )
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(1)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(true)
}
