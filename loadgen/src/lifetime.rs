//! How long a connection lives: `--connection-max-age`, `--connection-max-requests`,
//! `--no-keepalive` and their scenario keys, resolved into one [`ConnectionLifetime`].
//!
//! Why connections are recycled by default: Kubernetes Services balance per connection, so a
//! worker that keeps one connection for the whole run stays on the pods that existed when it
//! connected and never sees the ones an autoscaler adds (docs/connections.md). One reconnect
//! every ten seconds per connection costs a TCP (and TLS) handshake: noise next to a run.

use std::time::{Duration, Instant};

use rand::Rng;

/// Default `--connection-max-age`: short enough that new replicas get traffic within seconds of
/// becoming ready, long enough that a handshake every so often is lost in the noise.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(10);

/// Each connection's age limit is drawn from `[max_age × (1 − JITTER), max_age]`, so workers that
/// connected together do not all reconnect in the same instant, and no connection outlives the
/// limit.
pub const JITTER: f64 = 0.1;

/// The spelling of "never recycle by age".
pub const FOREVER: &str = "forever";

/// A parsed `--connection-max-age` / `connection_max_age`: a duration above 0 or `forever`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxAge(pub Option<Duration>);

impl std::str::FromStr for MaxAge {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case(FOREVER) {
            return Ok(MaxAge(None));
        }
        let d = crate::parse::duration(t).map_err(|e| {
            format!("invalid connection max age: {e}; or `{FOREVER}` to keep connections")
        })?;
        if d.is_zero() {
            return Err(format!(
                "connection max age {t:?} must be above 0: write `{FOREVER}` to keep each connection for the whole run"
            ));
        }
        if d > crate::limits::MAX_DURATION {
            return Err(format!(
                "connection max age {t:?} is over ten years: write `{FOREVER}` instead"
            ));
        }
        Ok(MaxAge(Some(d)))
    }
}

impl<'de> serde::Deserialize<'de> for MaxAge {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::parse::number_or_string(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// clap value parser for `--connection-max-age`.
pub fn parse_max_age(s: &str) -> Result<MaxAge, String> {
    s.parse()
}

/// The lifetime in force for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLifetime {
    /// None = forever.
    pub max_age: Option<Duration>,
    /// None = unlimited.
    pub max_requests: Option<u64>,
    /// False = a new connection per request (`Connection: close` sent).
    pub keepalive: bool,
}

impl Default for ConnectionLifetime {
    fn default() -> Self {
        Self {
            max_age: Some(DEFAULT_MAX_AGE),
            max_requests: None,
            keepalive: true,
        }
    }
}

/// What the command line and the scenario's `load:` block said (each may be silent).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LifetimeSettings {
    pub max_age: Option<MaxAge>,
    pub max_requests: Option<u64>,
    /// `Some(false)` = no keep-alive.
    pub keepalive: Option<bool>,
}

impl ConnectionLifetime {
    /// Flags win over the scenario key by key; unset keys take the defaults. `http2` runs share
    /// multiplexed connections, where only an age applies.
    pub fn resolve(
        flags: &LifetimeSettings,
        scenario: &LifetimeSettings,
        http2: bool,
    ) -> Result<Self, String> {
        let keepalive = flags.keepalive.or(scenario.keepalive).unwrap_or(true);
        let max_requests = flags.max_requests.or(scenario.max_requests);
        let age = flags.max_age.or(scenario.max_age);
        if max_requests == Some(0) {
            return Err(
                "connection max requests must be at least 1 (leave it unset for no limit)".into(),
            );
        }
        if !keepalive && (max_requests.is_some() || age.is_some()) {
            return Err("no keep-alive opens a connection per request: it cannot be combined with a connection max age or max requests".into());
        }
        if http2 && (!keepalive || max_requests.is_some()) {
            return Err("with --http2 the workers share multiplexed connections: only --connection-max-age applies (no --no-keepalive, no --connection-max-requests)".into());
        }
        Ok(Self {
            max_age: if keepalive {
                age.map_or(Some(DEFAULT_MAX_AGE), |a| a.0)
            } else {
                None
            },
            max_requests: if keepalive { max_requests } else { Some(1) },
            keepalive,
        })
    }

    /// When a connection opened at `opened` must be closed (after its in-flight request).
    pub fn deadline(&self, opened: Instant, rng: &mut impl Rng) -> Option<Instant> {
        let age = self.max_age?;
        let f = 1.0 - JITTER * rng.random::<f64>();
        Some(opened + age.mul_f64(f))
    }

    /// One line for the summary, e.g. `max age 10s (jitter 10%)`.
    pub fn describe(&self) -> String {
        describe(self.max_age, self.max_requests, self.keepalive)
    }
}

/// Describes a lifetime (also for one read back from a report).
pub fn describe(max_age: Option<Duration>, max_requests: Option<u64>, keepalive: bool) -> String {
    if !keepalive {
        return "no keep-alive (a new connection per request)".into();
    }
    let mut parts = Vec::new();
    match max_age {
        Some(a) => parts.push(format!(
            "max age {} (jitter {:.0}%)",
            humantime::format_duration(a),
            JITTER * 100.0
        )),
        None => parts.push(format!("max age {FOREVER}")),
    }
    if let Some(n) = max_requests {
        parts.push(format!("max {n} requests"));
    }
    parts.join(", ")
}

/// Why a connection was closed (the keys of the report's `connections.closed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Reached its max age (after its in-flight request).
    MaxAge,
    /// Carried its max requests.
    MaxRequests,
    /// No keep-alive: closed after its one request.
    NoKeepalive,
    /// The server closed it: `Connection: close`, an HTTP/2 GOAWAY, or a kept-alive connection
    /// found closed. Not an error.
    Server,
    /// After a transport error or a timeout (the error itself is counted with the request).
    Error,
}

impl CloseReason {
    pub const ALL: [CloseReason; 5] = [
        CloseReason::MaxAge,
        CloseReason::MaxRequests,
        CloseReason::NoKeepalive,
        CloseReason::Server,
        CloseReason::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::MaxAge => "max_age",
            CloseReason::MaxRequests => "max_requests",
            CloseReason::NoKeepalive => "no_keepalive",
            CloseReason::Server => "server",
            CloseReason::Error => "error",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(s: &str) -> Result<MaxAge, String> {
        s.parse()
    }

    #[test]
    fn max_age_is_a_positive_duration_or_forever() {
        assert_eq!(age("10s").unwrap(), MaxAge(Some(Duration::from_secs(10))));
        assert_eq!(
            age("1.5").unwrap(),
            MaxAge(Some(Duration::from_millis(1500)))
        );
        assert_eq!(age("forever").unwrap(), MaxAge(None));
        assert_eq!(age("Forever").unwrap(), MaxAge(None));
        assert!(age("0").unwrap_err().contains("forever"));
        assert!(age("0s").unwrap_err().contains("forever"));
        assert!(age("soon").unwrap_err().contains("forever"));
        assert!(age("-3s").is_err());
        assert!(age("20000years").is_err());
    }

    fn settings(age: Option<&str>, n: Option<u64>, ka: Option<bool>) -> LifetimeSettings {
        LifetimeSettings {
            max_age: age.map(|a| a.parse().unwrap()),
            max_requests: n,
            keepalive: ka,
        }
    }

    #[test]
    fn defaults_recycle_every_ten_seconds() {
        let l = ConnectionLifetime::resolve(
            &settings(None, None, None),
            &settings(None, None, None),
            false,
        )
        .unwrap();
        assert_eq!(l, ConnectionLifetime::default());
        assert_eq!(l.max_age, Some(Duration::from_secs(10)));
        assert_eq!(l.describe(), "max age 10s (jitter 10%)");
    }

    #[test]
    fn flags_win_over_the_scenario_key_by_key() {
        let l = ConnectionLifetime::resolve(
            &settings(Some("forever"), None, None),
            &settings(Some("3s"), Some(100), None),
            false,
        )
        .unwrap();
        assert_eq!(l.max_age, None);
        assert_eq!(l.max_requests, Some(100));
        assert_eq!(l.describe(), "max age forever, max 100 requests");
    }

    #[test]
    fn no_keepalive_is_one_request_per_connection_and_excludes_the_limits() {
        let none = settings(None, None, None);
        let l =
            ConnectionLifetime::resolve(&settings(None, None, Some(false)), &none, false).unwrap();
        assert_eq!(
            (l.max_age, l.max_requests, l.keepalive),
            (None, Some(1), false)
        );
        let e = ConnectionLifetime::resolve(
            &settings(None, None, Some(false)),
            &settings(Some("5s"), None, None),
            false,
        )
        .unwrap_err();
        assert!(e.contains("cannot be combined"), "{e}");
        assert!(ConnectionLifetime::resolve(&none, &settings(None, Some(0), None), false).is_err());
    }

    #[test]
    fn http2_takes_only_an_age() {
        let none = settings(None, None, None);
        assert!(
            ConnectionLifetime::resolve(&settings(Some("2s"), None, None), &none, true).is_ok()
        );
        let e =
            ConnectionLifetime::resolve(&settings(None, Some(5), None), &none, true).unwrap_err();
        assert!(e.contains("--http2"), "{e}");
        assert!(
            ConnectionLifetime::resolve(&settings(None, None, Some(false)), &none, true).is_err()
        );
    }

    #[test]
    fn deadlines_are_jittered_below_the_max_age() {
        let l = ConnectionLifetime::default();
        let now = Instant::now();
        let mut rng = rand::rng();
        let ds: Vec<Duration> = (0..200)
            .map(|_| l.deadline(now, &mut rng).unwrap() - now)
            .collect();
        assert!(
            ds.iter()
                .all(|d| *d <= Duration::from_secs(10) && *d >= Duration::from_secs(9))
        );
        let distinct: std::collections::BTreeSet<_> = ds.iter().collect();
        assert!(distinct.len() > 100, "jittered, not all equal");
        let forever = ConnectionLifetime { max_age: None, ..l };
        assert_eq!(forever.deadline(now, &mut rng), None);
    }
}
