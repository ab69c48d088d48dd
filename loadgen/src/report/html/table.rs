//! Table pieces the sections share: a header row and a table of key-value rows.

use maud::{Markup, html};

/// A header row: `left` columns (names, text) left-aligned, then `right` columns (numbers).
pub(super) fn head(left: &[&str], right: &[&str]) -> Markup {
    html! {
        thead {
            tr {
                @for k in left { th class="l" { (k) } }
                @for k in right { th { (k) } }
            }
        }
    }
}

/// A table of one row per (name, value).
pub(super) fn key_values(id: &str, rows: &[(&str, String)]) -> Markup {
    html! {
        table id=(id) {
            tbody {
                @for (k, v) in rows {
                    tr { th class="l" { (k) } td { (v) } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_left_aligned_and_values_escaped() {
        assert_eq!(
            head(&["run"], &["req/s"]).into_string(),
            "<thead><tr><th class=\"l\">run</th><th>req/s</th></tr></thead>"
        );
        assert_eq!(
            key_values("t", &[("a", "<1>".into())]).into_string(),
            "<table id=\"t\"><tbody><tr><th class=\"l\">a</th><td>&lt;1&gt;</td></tr></tbody></table>"
        );
    }
}
