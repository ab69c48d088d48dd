//! Latency distributions drawn from HDR histograms (microseconds): bars over log-spaced latency,
//! and latency by percentile, for one run or several overlaid.

use hdrhistogram::Histogram;
use maud::Markup;

use super::colors;
use super::svg::{Bar, Bars, Chart, Series, XAxis, bar_chart, line_chart, num};

/// Bars of the distribution chart.
const BINS: usize = 40;

/// Quantiles drawn on the percentile chart: dense towards the tail, where the differences are.
const QUANTILES: [f64; 14] = [
    0.0, 0.25, 0.5, 0.75, 0.8, 0.9, 0.95, 0.97, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99999,
];

/// The histogram as bars over log-spaced latency bins (so a fast bulk and a slow tail are both
/// visible), heights in percent of requests.
pub(super) fn distribution_chart(h: &Histogram<u64>) -> Markup {
    let total = h.len().max(1) as f64;
    let lo = (h.min().max(1)) as f64;
    let hi = (h.max().max(1)) as f64 * 1.0001 + 1.0;
    let (llo, lhi) = (lo.log10(), hi.log10());
    let mut counts = [0u64; BINS];
    for v in h.iter_recorded() {
        let x = (v.value_iterated_to().max(1) as f64).log10();
        let i = (((x - llo) / (lhi - llo)) * BINS as f64).floor();
        let i = (i.max(0.0) as usize).min(BINS - 1);
        counts[i] += v.count_at_value();
    }
    let bin = (lhi - llo) / BINS as f64;
    let bars = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let pct = c as f64 / total * 100.0;
            Bar {
                x0: llo + i as f64 * bin,
                x1: llo + (i + 1) as f64 * bin,
                y: pct,
                title: format!("{pct:.2}% of requests"),
            }
        })
        .collect();
    bar_chart(&Bars {
        id: "distribution",
        title: "Latency distribution".into(),
        x_label: "latency (ms, log scale)".into(),
        y_label: "% of requests".into(),
        x_domain: (llo, lhi),
        x_ticks: millisecond_ticks(lo, hi),
        label: "latency distribution".into(),
        color: colors::DISTRIBUTION,
        bars,
    })
}

/// Ticks at 1-2-5 milliseconds within [lo, hi] microseconds, placed on the log10 axis.
fn millisecond_ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let us = decade * m;
            if us >= lo && us <= hi {
                ticks.push((us.log10(), num(us / 1000.0)));
            }
        }
        decade *= 10.0;
    }
    ticks
}

/// Latency (ms) by percentile, one line per run: (name, colour, histogram).
pub(super) fn percentile_chart(
    id: &'static str,
    runs: &[(String, &'static str, &Histogram<u64>)],
) -> Markup {
    let series = runs
        .iter()
        .map(|(name, color, h)| {
            // Stop at the quantile that a histogram of this size can resolve.
            let n = h.len() as f64;
            let pts: Vec<(f64, f64)> = QUANTILES
                .iter()
                .filter(|q| **q == 0.0 || (1.0 - **q) * n >= 1.0)
                .map(|&q| {
                    (
                        (1.0 / (1.0 - q)).log10(),
                        h.value_at_quantile(q) as f64 / 1000.0,
                    )
                })
                .collect();
            Series::line(name, color, pts)
        })
        .collect();
    line_chart(&Chart {
        id,
        title: "Latency by percentile".into(),
        y_label: "ms".into(),
        series,
        x_axis: XAxis::Percentile,
        ..Chart::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::hist;

    #[test]
    fn the_distribution_shows_a_fast_bulk_and_a_slow_tail_as_separate_bars() {
        let mut h = hist::new_hist();
        for _ in 0..990 {
            hist::record(&mut h, 2_000);
        }
        for _ in 0..10 {
            hist::record(&mut h, 400_000);
        }
        let svg = distribution_chart(&h).into_string();
        assert!(svg.contains("data-points=\"2\""), "{svg}");
        assert!(svg.contains("<title>99.00% of requests</title>"));
        assert!(svg.contains("<title>1.00% of requests</title>"));
        for ms in [">2<", ">5<", ">100<", ">200<"] {
            assert!(svg.contains(ms), "tick {ms}");
        }
    }

    #[test]
    fn millisecond_ticks_step_one_two_five_inside_the_range() {
        let labels: Vec<String> = millisecond_ticks(1_500.0, 60_000.0)
            .into_iter()
            .map(|(_, l)| l)
            .collect();
        assert_eq!(labels, ["2", "5", "10", "20", "50"]);
    }

    #[test]
    fn the_percentile_line_stops_where_the_histogram_cannot_resolve() {
        let mut h = hist::new_hist();
        for us in 1..=100u64 {
            hist::record(&mut h, us * 1_000);
        }
        let svg = percentile_chart("p", &[("run".into(), "#123456", &h)]).into_string();
        // 100 values resolve up to p99, not p99.5 and beyond.
        assert!(svg.contains("data-points=\"9\""), "{svg}");
    }
}
