//! Small value parsers shared by the command line and scenario files. Every one returns a message a
//! user can act on and never panics (property-tested in `tests/parsers_prop.rs`).

use std::time::Duration;

/// Parses a duration: humantime (`30s`, `1m30s`, `250ms`, `2h`) or a plain number of seconds
/// (`1.5`).
pub fn duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration: write e.g. 30s, 1m30s or 250ms".into());
    }
    if let Ok(secs) = t.parse::<f64>() {
        if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
            return Err(format!(
                "invalid duration {t:?}: seconds must be between 0 and 1e9"
            ));
        }
        return Ok(Duration::from_secs_f64(secs));
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("invalid duration {t:?} ({e}): write e.g. 30s, 1m30s or 250ms"))
}

/// A value written as a number or a string (`30` or `"30s"`), as text for a parser.
pub fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Num(f64),
        Str(String),
    }
    Ok(match <Raw as serde::Deserialize>::deserialize(d)? {
        Raw::Num(n) => n.to_string(),
        Raw::Str(s) => s,
    })
}

/// Parses a duration of at least 100 ms (an interval something is done at: zero would spin).
pub fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = duration(s)?;
    if d < Duration::from_millis(100) {
        return Err(format!("{:?} is too short: at least 100ms", s.trim()));
    }
    Ok(d)
}

/// Parses a positive rate in requests per second (`100`, `100/s`, `6000/m`, `2.5`).
pub fn rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, per) = match t.split_once('/') {
        Some((n, unit)) => {
            let per = match unit.trim() {
                "s" | "sec" | "second" => 1.0,
                "m" | "min" | "minute" => 60.0,
                "h" | "hour" => 3600.0,
                other => {
                    return Err(format!(
                        "invalid rate {t:?}: unknown unit {other:?} (use /s, /m or /h)"
                    ));
                }
            };
            (n.trim(), per)
        }
        None => (t, 1.0),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("invalid rate {t:?}: expected a number of requests per second"))?;
    let v = v / per;
    if !v.is_finite() || v <= 0.0 || v > 10_000_000.0 {
        return Err(format!(
            "invalid rate {t:?}: must be above 0 and at most 10,000,000/s"
        ));
    }
    Ok(v)
}

/// Parses a fraction between 0 and 1 (`0.01`, or `1%`).
pub fn fraction(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, scale) = match t.strip_suffix('%') {
        Some(n) => (n, 100.0),
        None => (t, 1.0),
    };
    let v: f64 = num.trim().parse().map_err(|_| {
        format!("invalid fraction {t:?}: expected a number between 0 and 1, or a percentage")
    })?;
    let v = v / scale;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("invalid fraction {t:?}: must be between 0 and 1"));
    }
    Ok(v)
}

/// Parses `key=value` (labels). Keys must be valid Prometheus label names.
pub fn label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid label {s:?}: expected key=value"))?;
    let k = k.trim();
    if !is_label_name(k) {
        return Err(format!(
            "invalid label name {k:?}: use letters, digits and _, not starting with a digit or __"
        ));
    }
    if matches!(k, "le" | "quantile") {
        return Err(format!("label name {k:?} is reserved by Prometheus"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// A Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`).
pub fn is_label_name(k: &str) -> bool {
    let mut chars = k.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    !k.starts_with("__") && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses an HTTP header `Name: value`.
pub fn header(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once(':')
        .ok_or_else(|| format!("invalid header {s:?}: expected 'Name: value'"))?;
    let k = k.trim();
    http::HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("invalid header name {k:?}"))?;
    let v = v.trim();
    http::HeaderValue::from_str(v).map_err(|_| format!("invalid header value for {k}: {v:?}"))?;
    Ok((k.to_string(), v.to_string()))
}

/// Parses a positive integer with optional `_` or `,` separators and k/M suffixes (`100_000`, `2M`).
pub fn count(s: &str) -> Result<u64, String> {
    let t: String = s
        .trim()
        .chars()
        .filter(|c| *c != '_' && *c != ',')
        .collect();
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1_000u64),
        Some('m' | 'M') => (&t[..t.len() - 1], 1_000_000u64),
        _ => (t.as_str(), 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid count {s:?}: expected a whole number like 1000 or 100k"))?;
    n.checked_mul(mult)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("invalid count {s:?}: must be between 1 and 2^64"))
}

/// Parses a positive integer that fits the u32 range used for users and connections.
pub fn positive(s: &str) -> Result<u64, String> {
    let n = count(s)?;
    if n > 1_000_000 {
        return Err(format!("{s:?} is too large (at most 1,000,000)"));
    }
    Ok(n)
}

/// Parses a moment: RFC 3339 in UTC (`2026-12-01T09:30:00Z`, fractions allowed) or unix seconds
/// (`1796117400`, `1796117400.5`).
pub fn start_at(s: &str) -> Result<std::time::SystemTime, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<f64>() {
        // Up to the year 9999, like a report's start.
        if !secs.is_finite() || !(0.0..=253_402_300_799.0).contains(&secs) {
            return Err(format!(
                "invalid time {t:?}: unix seconds must be between 0 and year 9999"
            ));
        }
        return Ok(std::time::UNIX_EPOCH + Duration::from_secs_f64(secs));
    }
    humantime::parse_rfc3339(t).map_err(|e| {
        format!("invalid time {t:?} ({e}): write RFC 3339 in UTC like 2026-12-01T09:30:00Z, or unix seconds")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(duration("-1").is_err());
        assert!(duration("abc").unwrap_err().contains("30s"));
        assert!(duration("NaN").is_err());
    }

    #[test]
    fn start_times() {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(1_796_117_400);
        assert_eq!(start_at("1796117400").unwrap(), t);
        assert_eq!(start_at("2026-12-01T09:30:00Z").unwrap(), t);
        assert_eq!(
            start_at("2026-12-01T09:30:00.5Z").unwrap(),
            t + Duration::from_millis(500)
        );
        assert!(start_at("tomorrow").unwrap_err().contains("RFC 3339"));
        assert!(start_at("-5").is_err());
        assert!(start_at("1e300").is_err());
        assert!(start_at("2026-12-01 09:30").is_err());
    }

    #[test]
    fn rates_counts_labels_headers() {
        assert_eq!(rate("100").unwrap(), 100.0);
        assert_eq!(rate("600/m").unwrap(), 10.0);
        assert!(rate("0").is_err());
        assert!(rate("5/x").is_err());
        assert_eq!(count("100_000").unwrap(), 100_000);
        assert_eq!(count("2M").unwrap(), 2_000_000);
        assert!(count("0").is_err());
        assert_eq!(label("deployment=docker").unwrap().0, "deployment");
        assert!(label("1x=2").is_err());
        assert!(label("__x=2").is_err());
        assert_eq!(header("X-A: b").unwrap(), ("X-A".into(), "b".into()));
        assert!(header("bad header: x").is_err());
    }
}
