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

/// `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
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

/// Pushes to one remote-write endpoint.
#[derive(Clone)]
pub struct Pusher {
    url: http::Uri,
    client: Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        Full<Bytes>,
    >,
}

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pusher").field("url", &self.url).finish()
    }
}

impl Pusher {
    /// Validates the URL and builds a client (https via rustls/ring with the system roots).
    pub fn new(url: &str) -> Result<Self, String> {
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
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(c);
        }
        let tls = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self { url: uri, client })
    }

    /// Sends the exposition text as one write request.
    pub async fn push_text(&self, text: &str) -> Result<usize, String> {
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let series = parse_exposition(text, ts);
        let n = series.len();
        let body = encode(&WriteRequest { timeseries: series });
        let req = http::Request::post(self.url.clone())
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .header(http::header::CONTENT_ENCODING, "snappy")
            .header("x-prometheus-remote-write-version", "0.1.0")
            .header(
                http::header::USER_AGENT,
                concat!("loadgen/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(Duration::from_secs(10), self.client.request(req))
            .await
            .map_err(|_| "remote write timed out after 10s".to_string())?
            .map_err(|e| format!("remote write failed: {e}"))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if !status.is_success() {
            return Err(format!(
                "remote write got {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ));
        }
        Ok(n)
    }
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
}
