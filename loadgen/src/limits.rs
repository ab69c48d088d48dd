//! Bounds on untrusted input: how large a report or scenario file may be, how many endpoints one
//! may name, and a reader that stops at the cap instead of reading a whole file first.
//!
//! Reports come from other machines (the Job's workers, a colleague's laptop) and are read by
//! `merge`, `compare` and `report` in a pod with a 256 MiB memory limit: every size below keeps
//! the worst case of a crafted file well under that.

use std::io::Read;

/// Largest report file read. A real report is far smaller: the time series is capped at 3600
/// points (about 1 MiB of JSON) and each histogram at a few hundred KiB, so 64 MiB leaves room for
/// merged reports of many endpoints while parsing stays within the Job's memory limit.
pub const MAX_REPORT_BYTES: u64 = 64 << 20;

/// Largest scenario file read: scenarios are written by hand; 16 MiB holds any inline bodies.
pub const MAX_SCENARIO_BYTES: u64 = 16 << 20;

/// Most endpoints (distinct request names) in a scenario, a report or a merge. Each one costs two
/// full-resolution HDR histograms (about 190 KiB each) per report being merged and per engine
/// shard, so the cap is what bounds memory in the number of endpoints; 200 named requests is far
/// past any realistic request mix.
pub const MAX_ENDPOINTS: usize = 200;

/// Longest duration a plan (a phase, their sum, a think time) or a connection age may ask for:
/// ten years. Anything longer is a typo, and the engine adds durations to `Instant`s, which must
/// not overflow.
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(10 * 365 * 24 * 3600);

/// Reads `path` (`-` = stdin) as UTF-8, refusing more than `limit` bytes without reading past it.
/// Too large or not UTF-8 is an `InvalidData` error whose message says which.
pub fn read_to_string(path: &str, limit: u64) -> std::io::Result<String> {
    if path == "-" {
        read_capped(std::io::stdin().lock(), limit)
    } else {
        read_capped(std::fs::File::open(path)?, limit)
    }
}

/// [`read_to_string`] for any reader.
pub fn read_capped(reader: impl Read, limit: u64) -> std::io::Result<String> {
    let mut buf = Vec::new();
    reader.take(limit.saturating_add(1)).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {} (the most loadgen reads)", mib(limit)),
        ));
    }
    String::from_utf8(buf).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        )
    })
}

fn mib(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_up_to_the_limit_and_refuses_one_byte_more() {
        assert_eq!(read_capped(&b"abcd"[..], 4).unwrap(), "abcd");
        let e = read_capped(&b"abcde"[..], 4).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("larger than 4 bytes"), "{e}");
    }

    #[test]
    fn stops_reading_at_the_limit() {
        // An endless reader: the cap, not the end of input, ends the read.
        let e = read_capped(std::io::repeat(b'x'), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("larger than 1 MiB"), "{e}");
    }

    #[test]
    fn refuses_bytes_that_are_not_utf8() {
        let e = read_capped(&b"ok\xff"[..], 10).unwrap_err();
        assert!(e.to_string().contains("not UTF-8 text (byte 2)"), "{e}");
    }
}
