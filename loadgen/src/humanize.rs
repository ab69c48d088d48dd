//! Numbers as a reader of the terminal sees them: milliseconds at a precision that fits their
//! size, counts with thousands separators.
//!
//! A leaf: the summary, the comparison, the progress line and the capacity search's notes all
//! write durations the same way, and none of them has to reach into another's renderer for it.

/// Milliseconds with sensible precision: `2.35ms`, `12.3ms`, `812ms`, `1.50s`.
pub fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2}s", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0}ms")
    } else if v >= 10.0 {
        format!("{v:.1}ms")
    } else {
        format!("{v:.2}ms")
    }
}

/// A count with thousands separators: `1,234,567`.
pub fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{ms, num};

    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(num(1_234_567), "1,234,567");
        assert_eq!(num(100), "100");
        assert_eq!(num(12), "12");
        assert_eq!(num(0), "0");
    }

    #[test]
    fn milliseconds_keep_three_significant_figures_and_turn_into_seconds_from_one() {
        assert_eq!(ms(2.345), "2.35ms");
        assert_eq!(ms(12.34), "12.3ms");
        assert_eq!(ms(812.4), "812ms");
        assert_eq!(ms(1500.0), "1.50s");
    }
}
