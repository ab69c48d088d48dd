//! Prometheus remote write (protocol 1.0): the run's metrics pushed to `--remote-write URL`, so runs
//! from a laptop land in the cluster's Prometheus next to what it scrapes.
//!
//! The payload is the current exposition text turned into `WriteRequest` protobuf (messages written
//! by hand with prost derive: no protoc needed) and compressed with snappy's block format.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`: float samples, or native histogram samples.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

/// `prometheus.Histogram`, the integer-count form of a native histogram (the fields of float
/// histograms and of negative buckets are left out: latencies are counted and positive).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    #[prost(oneof = "HistogramCount", tags = "1")]
    pub count: Option<HistogramCount>,
    #[prost(double, tag = "3")]
    pub sum: f64,
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    #[prost(oneof = "HistogramZeroCount", tags = "6")]
    pub zero_count: Option<HistogramZeroCount>,
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
}

/// `prometheus.Histogram.count` (`count_int`).
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum HistogramCount {
    #[prost(uint64, tag = "1")]
    Int(u64),
}

/// `prometheus.Histogram.zero_count` (`zero_count_int`).
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum HistogramZeroCount {
    #[prost(uint64, tag = "6")]
    Int(u64),
}

/// `prometheus.BucketSpan`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BucketSpan {
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

impl Histogram {
    /// The remote-write form of `native`, stamped `ts_ms`.
    pub fn from_native(native: &super::native::Native, ts_ms: i64) -> Self {
        Self {
            count: Some(HistogramCount::Int(native.count)),
            sum: native.sum,
            schema: native.schema,
            zero_threshold: native.zero_threshold,
            zero_count: Some(HistogramZeroCount::Int(native.zero_count)),
            positive_spans: native
                .spans
                .iter()
                .map(|s| BucketSpan {
                    offset: s.offset,
                    length: s.length,
                })
                .collect(),
            positive_deltas: native.deltas.clone(),
            timestamp: ts_ms,
        }
    }
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// Parses Prometheus text exposition into series stamped `ts_ms`. Comment lines are skipped;
/// labels are sorted by name as remote write requires.
pub fn parse_exposition(text: &str, ts_ms: i64) -> Vec<TimeSeries> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(ts) = parse_line(line, ts_ms) {
            out.push(ts);
        }
    }
    out
}

fn parse_line(line: &str, ts_ms: i64) -> Option<TimeSeries> {
    let (name, labels, rest) = match line.find('{') {
        Some(i) => {
            let end = find_label_end(line, i)?;
            (
                &line[..i],
                parse_labels(&line[i + 1..end])?,
                &line[end + 1..],
            )
        }
        None => {
            let sp = line.find(' ')?;
            (&line[..sp], Vec::new(), &line[sp..])
        }
    };
    let value_str = rest.split_whitespace().next()?;
    let value = match value_str {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().ok()?,
    };
    let mut all = vec![Label {
        name: "__name__".into(),
        value: name.trim().to_string(),
    }];
    all.extend(labels);
    all.sort_by(|a, b| a.name.cmp(&b.name));
    Some(TimeSeries {
        labels: all,
        samples: vec![Sample {
            value,
            timestamp: ts_ms,
        }],
        histograms: Vec::new(),
    })
}

fn find_label_end(line: &str, open: usize) -> Option<usize> {
    let mut in_str = false;
    let mut esc = false;
    for (i, c) in line[open..].char_indices() {
        if in_str {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
        } else if c == '}' {
            return Some(open + i);
        }
    }
    None
}

fn parse_labels(s: &str) -> Option<Vec<Label>> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let name = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        let after = rest[eq + 1..].trim_start();
        let after = after.strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, o)) => value.push(o),
                    None => return None,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                o => value.push(o),
            }
        }
        let end = end?;
        out.push(Label { name, value });
        rest = after[end + 1..]
            .trim_start()
            .trim_start_matches(',')
            .trim_start();
    }
    Some(out)
}

/// Now as remote write stamps samples: milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Encodes a write request: protobuf then snappy (block format).
pub fn encode(req: &WriteRequest) -> Vec<u8> {
    let raw = prost::Message::encode_to_vec(req);
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .expect("snappy compression of an in-memory buffer cannot fail")
}

/// Decodes what [`encode`] produced (for tests and receivers).
pub fn decode(body: &[u8]) -> Result<WriteRequest, String> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("snappy: {e}"))?;
    <WriteRequest as prost::Message>::decode(raw.as_slice()).map_err(|e| format!("protobuf: {e}"))
}

/// Longest a push may take, from connecting to the end of the response body, unless
/// `--remote-write-timeout` says otherwise: the final push happens before the report is written,
/// so a receiver that stalls must not hold the run.
pub const DEFAULT_PUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Most bytes of a response body read: it only serves the error message, and a receiver that
/// answers with an endless body must not grow memory.
pub const MAX_RESPONSE_BYTES: usize = 64 << 10;

/// Largest credential file read (a password or a token is a line, not a file of megabytes).
const MAX_SECRET_BYTES: u64 = 64 << 10;

/// A password or token. Its `Debug` never shows the value, so neither logs nor errors can.
#[derive(Clone)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    /// Reads a secret from `path`: the first line, without its line ending. The error names the
    /// flag and the file, never the content.
    pub fn from_file(flag: &str, path: &std::path::Path) -> Result<Self, String> {
        let cannot = |why: String| format!("cannot read {flag} {}: {why}", path.display());
        let text = crate::limits::read_to_string(&path.to_string_lossy(), MAX_SECRET_BYTES)
            .map_err(|e| cannot(e.to_string()))?;
        let line = text
            .lines()
            .next()
            .unwrap_or_default()
            .trim_end_matches('\r');
        if line.is_empty() {
            return Err(cannot("the file is empty".into()));
        }
        Ok(Self(line.to_string()))
    }
}

/// How a push authenticates (Prometheus' `remote_write` `basic_auth` or `authorization`).
#[derive(Debug, Clone)]
pub enum Credentials {
    Basic { user: String, password: Secret },
    Bearer(Secret),
}

impl Credentials {
    /// From the flags: `--remote-write-user` with `--remote-write-password-file`, or
    /// `--remote-write-bearer-token-file`, or none (clap rejects other combinations).
    pub fn from_flags(
        user: Option<&str>,
        password_file: Option<&std::path::Path>,
        bearer_token_file: Option<&std::path::Path>,
    ) -> Result<Option<Self>, String> {
        match (user, password_file, bearer_token_file) {
            (None, None, None) => Ok(None),
            (Some(user), Some(pw), None) => Ok(Some(Self::Basic {
                user: user.to_string(),
                password: Secret::from_file("--remote-write-password-file", pw)?,
            })),
            (None, None, Some(token)) => Ok(Some(Self::Bearer(Secret::from_file(
                "--remote-write-bearer-token-file",
                token,
            )?))),
            _ => Err(
                "use --remote-write-user with --remote-write-password-file, or \
                      --remote-write-bearer-token-file alone"
                    .into(),
            ),
        }
    }

    /// The `Authorization` header, marked sensitive so HTTP tooling does not print it.
    fn header(&self) -> Result<http::HeaderValue, String> {
        use base64::Engine as _;
        let text = match self {
            Self::Basic { user, password } => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", password.0))
            ),
            Self::Bearer(token) => format!("Bearer {}", token.0),
        };
        let mut v = http::HeaderValue::from_str(&text)
            .map_err(|_| "remote-write credentials hold characters not allowed in a header")?;
        v.set_sensitive(true);
        Ok(v)
    }
}

/// Pushes to one remote-write endpoint.
#[derive(Clone)]
pub struct Pusher {
    url: http::Uri,
    authorization: Option<http::HeaderValue>,
    timeout: Duration,
    client: Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        Full<Bytes>,
    >,
}

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pusher")
            .field("url", &self.url)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Pusher {
    /// Validates the URL and builds a client: https trusts the system's roots and the
    /// certificates of `cacert` (`--remote-write-cacert`) as the load connections trust
    /// `--cacert`'s, a certificate in it included as it is.
    pub fn new(url: &str, cacert: Option<&std::path::Path>) -> Result<Self, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("invalid --remote-write URL {url:?}: {e}"))?;
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            _ => {
                return Err(format!(
                    "--remote-write URL {url:?} must start with http:// or https://"
                ));
            }
        }
        let tls = crate::client::verify::trusting_config(cacert, "--remote-write-cacert")?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            url: uri,
            authorization: None,
            timeout: DEFAULT_PUSH_TIMEOUT,
            client,
        })
    }

    /// Authenticates every push with `creds`.
    pub fn with_credentials(mut self, creds: Option<&Credentials>) -> Result<Self, String> {
        self.authorization = creds.map(Credentials::header).transpose()?;
        Ok(self)
    }

    /// Bounds each push, response body included, to `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends `series` as one write request; returns how many.
    pub async fn push(&self, series: Vec<TimeSeries>) -> Result<usize, String> {
        let n = series.len();
        let body = encode(&WriteRequest { timeseries: series });
        let mut req = http::Request::post(self.url.clone())
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .header(http::header::CONTENT_ENCODING, "snappy")
            .header("x-prometheus-remote-write-version", "0.1.0")
            .header(
                http::header::USER_AGENT,
                concat!("loadgen/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        if let Some(auth) = &self.authorization {
            req.headers_mut()
                .insert(http::header::AUTHORIZATION, auth.clone());
        }
        let (status, body) = tokio::time::timeout(self.timeout, async {
            let resp = self.client.request(req).await.map_err(|e| {
                use crate::client::verify::explain::{REMOTE_WRITE, tls_failure};
                match tls_failure(&e, &REMOTE_WRITE) {
                    Some(words) => format!("remote write failed: {words}"),
                    None => format!("remote write failed: {e}"),
                }
            })?;
            let status = resp.status();
            Ok::<_, String>((
                status,
                read_capped(resp.into_body(), MAX_RESPONSE_BYTES).await,
            ))
        })
        .await
        .map_err(|_| {
            format!(
                "remote write timed out after {}",
                humantime::format_duration(self.timeout)
            )
        })??;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
            // Prometheus before 3.0 (or 2.x without the feature flag) refuses the whole request.
            let hint = if text.contains("native histograms are disabled") {
                " (this receiver takes no native histograms: pass --remote-write-histograms classic, \
                 or start Prometheus 2.x with --enable-feature=native-histograms)"
            } else {
                ""
            };
            return Err(format!("remote write got {status}: {text}{hint}"));
        }
        Ok(n)
    }
}

/// Reads at most `cap` bytes of `body` (the rest is left unread and the connection dropped); a
/// body that fails midway yields what arrived.
async fn read_capped<B>(mut body: B, cap: usize) -> Vec<u8>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let mut out = Vec::new();
    while out.len() < cap {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let take = data.len().min(cap - out.len());
                    out.extend_from_slice(&data[..take]);
                }
            }
            Some(Err(_)) | None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exposition() {
        let text = "# HELP x y\n# TYPE a counter\na_total{run=\"r1\",endpoint=\"GET /x\"} 5\n\
                    b 1.5\nh_bucket{le=\"+Inf\",run=\"a\\\"b\"} 3\n";
        let s = parse_exposition(text, 42);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].labels[0].name, "__name__");
        assert_eq!(s[0].labels[0].value, "a_total");
        assert_eq!(s[0].labels[1].value, "GET /x");
        assert_eq!(s[1].samples[0].value, 1.5);
        assert_eq!(
            s[2].labels.iter().find(|l| l.name == "run").unwrap().value,
            "a\"b"
        );
        let req = WriteRequest { timeseries: s };
        assert_eq!(decode(&encode(&req)).unwrap(), req);
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "hunter2\n").unwrap();
        let creds = Credentials::from_flags(Some("u"), Some(&f), None).unwrap();
        let pusher = Pusher::new("http://127.0.0.1:9/w", None)
            .unwrap()
            .with_credentials(creds.as_ref())
            .unwrap();
        for text in [format!("{creds:?}"), format!("{pusher:?}")] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("redacted"), "{text}");
        }
        let bearer = Credentials::from_flags(None, None, Some(&f))
            .unwrap()
            .unwrap();
        assert_eq!(bearer.header().unwrap(), "Bearer hunter2");
        assert!(bearer.header().unwrap().is_sensitive());
    }
}
