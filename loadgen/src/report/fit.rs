//! A comparison that fits the terminal: runs as rows and metrics as columns when that fits,
//! metrics as rows and runs as columns when it does not (as hyperfine and k6 print), and no column
//! that holds nothing for any run.
//!
//! Why not let the terminal wrap: a wrapped table row lands its cells under the wrong headers,
//! which is worse than no table. Why not shrink the cells: the figures are short already and
//! wrapping inside a cell (`x35.22 (+3422.2%)` over two lines) reads as two figures.

use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};

/// One figure of a row: its value, and how it compares with the first row's (`x1.50 (+50.0%)`),
/// for the metrics that are compared.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub value: String,
    pub vs: Option<String>,
}

impl Figure {
    pub fn plain(value: impl Into<String>) -> Self {
        Self {
            value: value.into(),
            vs: None,
        }
    }

    pub fn compared(value: impl Into<String>, vs: impl Into<String>) -> Self {
        Self {
            value: value.into(),
            vs: Some(vs.into()),
        }
    }

    /// A figure no row has (`-`): its metric is left out when every row's is.
    fn is_empty(&self) -> bool {
        self.value == "-" && self.vs.is_none()
    }
}

/// A comparison: rows named by their key cells (`run`, or `phase` and `run`), each with a figure
/// per metric.
#[derive(Debug, Clone, Default)]
pub struct Sheet {
    /// The names of the key columns.
    pub keys: Vec<&'static str>,
    /// The metric names; a compared metric gets a `vs first` column beside it.
    pub metrics: Vec<(&'static str, bool)>,
    pub rows: Vec<(Vec<String>, Vec<Figure>)>,
}

/// The sheet as text no wider than `width` columns where it can be (None: any width, as when the
/// output is not a terminal).
pub fn render(sheet: &Sheet, width: Option<usize>) -> String {
    let sheet = without_empty_metrics(sheet);
    let wide = wide(&sheet);
    match width {
        Some(w) if text_width(&wide) > w => transposed(&sheet, w),
        _ => wide,
    }
}

/// The widest line of `text`, in characters (the table's box characters are one column each).
pub fn text_width(text: &str) -> usize {
    text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

fn without_empty_metrics(sheet: &Sheet) -> Sheet {
    let keep: Vec<bool> = (0..sheet.metrics.len())
        .map(|i| !sheet.rows.iter().all(|(_, f)| f[i].is_empty()))
        .collect();
    let pick = |v: &[Figure]| -> Vec<Figure> {
        v.iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(f, _)| f.clone())
            .collect()
    };
    Sheet {
        keys: sheet.keys.clone(),
        metrics: sheet
            .metrics
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(m, _)| *m)
            .collect(),
        rows: sheet
            .rows
            .iter()
            .map(|(k, f)| (k.clone(), pick(f)))
            .collect(),
    }
}

fn table() -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t
}

fn right(s: &str) -> Cell {
    Cell::new(s).set_alignment(CellAlignment::Right)
}

/// A row per row of the sheet, a column per metric (and its `vs first`).
fn wide(sheet: &Sheet) -> String {
    let mut t = table();
    let mut header: Vec<&str> = sheet.keys.clone();
    for (name, compared) in &sheet.metrics {
        header.push(name);
        if *compared {
            header.push("vs first");
        }
    }
    t.set_header(header);
    for (keys, figures) in &sheet.rows {
        let mut row: Vec<Cell> = keys.iter().map(Cell::new).collect();
        for ((_, compared), f) in sheet.metrics.iter().zip(figures) {
            row.push(right(&f.value));
            if *compared {
                row.push(right(f.vs.as_deref().unwrap_or("-")));
            }
        }
        t.add_row(row);
    }
    t.to_string()
}

/// A row per metric, a column per row of the sheet (its keys as the header), the comparison in
/// the figure's cell; as many tables, one under the other, as it takes to fit `width`.
fn transposed(sheet: &Sheet, width: usize) -> String {
    let mut tables = Vec::new();
    let mut from = 0;
    while from < sheet.rows.len() {
        // As many columns as fit, at least one.
        let mut to = from + 1;
        let mut text = transposed_part(sheet, from..to);
        while to < sheet.rows.len() {
            let more = transposed_part(sheet, from..to + 1);
            if text_width(&more) > width {
                break;
            }
            text = more;
            to += 1;
        }
        tables.push(text);
        from = to;
    }
    tables.join("\n")
}

fn transposed_part(sheet: &Sheet, rows: std::ops::Range<usize>) -> String {
    let mut t = table();
    let mut header = vec![String::new()];
    header.extend(sheet.rows[rows.clone()].iter().map(|(k, _)| k.join(" ")));
    t.set_header(header);
    for (i, (name, _)) in sheet.metrics.iter().enumerate() {
        let mut row = vec![Cell::new(name)];
        for (_, figures) in &sheet.rows[rows.clone()] {
            let f = &figures[i];
            row.push(right(&match &f.vs {
                Some(vs) => format!("{} {vs}", f.value),
                None => f.value.clone(),
            }));
        }
        t.add_row(row);
    }
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `runs` runs with a plain deployment, compared rps, p50 and p99, and a metric no run has.
    fn sheet(runs: usize) -> Sheet {
        Sheet {
            keys: vec!["run"],
            metrics: vec![
                ("deployment", false),
                ("rps", true),
                ("p50", true),
                ("p99", true),
                ("max replicas", false),
            ],
            rows: (0..runs)
                .map(|i| {
                    (
                        vec![format!("run-{i}.json")],
                        vec![
                            Figure::plain(format!("deployment-{i}")),
                            Figure::compared(format!("{}.0", 100 * (i + 1)), "x1.00 (=)"),
                            Figure::compared("2.50ms", "x1.00 (=)"),
                            Figure::compared("9.80ms", "x1.00 (=)"),
                            Figure::plain("-"),
                        ],
                    )
                })
                .collect(),
        }
    }

    fn cells(line: &str) -> Vec<&str> {
        line.split(['│', '┆'])
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect()
    }

    #[test]
    fn runs_are_rows_when_they_fit_and_an_empty_metric_is_left_out() {
        let t = render(&sheet(2), Some(200));
        assert_eq!(
            cells(t.lines().nth(1).unwrap()),
            [
                "run",
                "deployment",
                "rps",
                "vs first",
                "p50",
                "vs first",
                "p99",
                "vs first"
            ]
        );
        assert_eq!(
            cells(t.lines().nth(3).unwrap())[..4],
            ["run-0.json", "deployment-0", "100.0", "x1.00 (=)"]
        );
        assert!(!t.contains("max replicas"), "{t}");
        // Unbounded (not a terminal): the same.
        assert_eq!(render(&sheet(2), None), t);
    }

    #[test]
    fn metrics_become_rows_when_the_runs_do_not_fit_and_every_line_fits() {
        let wide = render(&sheet(2), None);
        let width = 80;
        assert!(text_width(&wide) > width, "{wide}");
        let t = render(&sheet(2), Some(width));
        assert!(text_width(&t) <= width, "{t}");
        assert_eq!(
            cells(t.lines().nth(1).unwrap()),
            ["run-0.json", "run-1.json"]
        );
        let rps = t.lines().find(|l| l.contains("rps")).unwrap();
        assert_eq!(cells(rps), ["rps", "100.0 x1.00 (=)", "200.0 x1.00 (=)"]);
        // Too many runs for one table: as many tables as it takes, each within the width.
        let t = render(&sheet(6), Some(40));
        assert!(text_width(&t) <= 40, "{t}");
        for i in 0..6 {
            assert_eq!(t.matches(&format!("run-{i}.json")).count(), 1, "{t}");
        }
        assert!(t.matches("rps").count() >= 3, "{t}");
    }
}
