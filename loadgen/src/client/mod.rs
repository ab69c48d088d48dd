//! The HTTP client: one keep-alive connection per worker.
//!
//! Why not a pooled client: a pool hides how many connections carry the load and adds a shared lock
//! and task hops per request. Here each worker owns its connection (HTTP/1.1, written and parsed
//! by [`h1`]) and drives it inline with the request, like wrk's one-connection-per-slot event
//! loop; with `--http2` the workers share a few multiplexed hyper connections instead.
//!
//! Layout: this file has the target, the connector (TCP, TLS, protocol), the connection type and
//! error classification; [`h1`] the HTTP/1.1 wire client; [`io`] the plain-or-TLS stream;
//! [`verify`] which certificates are trusted and TLS failures in words.

pub mod h1;
mod io;
pub mod verify;

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderName, HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

pub use h1::{SERVED_BY, Want};
pub use io::Io;

use crate::model::outcome::ErrorKind;

/// A failed request.
#[derive(Debug, Clone)]
pub struct ClientError {
    pub kind: ErrorKind,
    pub message: String,
}

/// The base URL requests go to.
#[derive(Debug, Clone)]
pub struct Target {
    pub scheme: Scheme,
    pub authority: Authority,
    pub host: String,
    pub port: u16,
    /// Value of the `Host` header.
    pub host_header: HeaderValue,
    /// Path prefix without trailing slash (`""` for the root).
    pub base_path: String,
    /// Path and query of the URL as given (for the quick form: what to request).
    pub path_and_query: String,
    /// The URL as given, for reports.
    pub url: String,
}

impl Target {
    /// Parses an `http://` or `https://` URL.
    pub fn parse(url: &str) -> Result<Self, String> {
        let u = url.trim();
        let uri: http::Uri = u.parse().map_err(|e| {
            format!("invalid target URL {u:?}: {e} (write e.g. http://127.0.0.1:8080)")
        })?;
        let scheme = uri.scheme().cloned().ok_or_else(|| {
            format!("target URL {u:?} has no scheme: write http://{u} or https://{u}")
        })?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(format!("target URL {u:?}: scheme must be http or https"));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("target URL {u:?} has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!(
                "target URL {u:?}: credentials in the URL are not supported; use --header Authorization"
            ));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if host.is_empty() {
            return Err(format!("target URL {u:?} has no host"));
        }
        let port = authority
            .port_u16()
            .unwrap_or(if scheme == Scheme::HTTPS { 443 } else { 80 });
        let host_header = HeaderValue::from_str(authority.as_str())
            .map_err(|_| format!("target URL {u:?}: invalid host"))?;
        let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let path = uri.path();
        Ok(Self {
            scheme,
            authority,
            host,
            port,
            host_header,
            base_path: path.trim_end_matches('/').to_string(),
            path_and_query: if pq.is_empty() {
                "/".into()
            } else {
                pq.to_string()
            },
            url: u.to_string(),
        })
    }

    /// True for https.
    pub fn is_tls(&self) -> bool {
        self.scheme == Scheme::HTTPS
    }
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub http2: bool,
    /// Accept any TLS certificate (self-signed test targets).
    pub insecure: bool,
    /// PEM file of CA certificates trusted beside the system roots; a server certificate that
    /// is itself in the file is trusted too.
    pub cacert: Option<std::path::PathBuf>,
    /// The client certificate presented to servers that ask for one (mutual TLS).
    pub client_cert: Option<ClientCert>,
}

/// `--cert` and `--key`: PEM files of a client certificate chain (leaf first) and its key.
#[derive(Debug, Clone)]
pub struct ClientCert {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// Opens connections to the target.
#[derive(Clone)]
pub struct Connector {
    target: Arc<Target>,
    addrs: Arc<Vec<SocketAddr>>,
    tls: Option<Tls>,
    http2: bool,
}

/// TLS of the connections: the configuration (with the ALPN protocol of `--http2` or not) and
/// the name the certificate must carry.
#[derive(Clone)]
struct Tls {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("target", &self.target.url)
            .finish()
    }
}

impl Connector {
    /// Resolves the target once (so DNS is not on the request path) and prepares TLS.
    pub async fn new(target: Arc<Target>, cfg: &ClientConfig) -> Result<Self, String> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| format!("cannot resolve {}: {e}", target.host))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("{} resolves to no address", target.host));
        }
        let tls = if target.is_tls() {
            let mut tls_cfg = verify::tls_config(cfg)?;
            tls_cfg.alpn_protocols = vec![if cfg.http2 {
                b"h2".to_vec()
            } else {
                b"http/1.1".to_vec()
            }];
            let name = ServerName::try_from(target.host.clone())
                .map_err(|e| format!("target host {:?} is no TLS server name: {e}", target.host))?;
            Some(Tls {
                connector: tokio_rustls::TlsConnector::from(Arc::new(tls_cfg)),
                name,
            })
        } else {
            None
        };
        Ok(Self {
            target,
            addrs: Arc::new(addrs),
            tls,
            http2: cfg.http2,
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn target_arc(&self) -> Arc<Target> {
        Arc::clone(&self.target)
    }

    /// Opens one connection and completes the TLS and HTTP handshakes.
    pub async fn connect(&self) -> Result<Conn, ClientError> {
        let tcp = connect_tcp(&self.addrs).await?;
        let io = match &self.tls {
            None => Io::Plain(tcp),
            Some(tls) => Io::Tls(Box::new(
                tls.connector
                    .connect(tls.name.clone(), tcp)
                    .await
                    .map_err(|e| classify("connect", &e))?,
            )),
        };
        if self.http2 {
            let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                .handshake(TokioIo::new(io))
                .await
                .map_err(|e| classify("handshake", &e))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(Conn::H2 {
                send,
                target: Arc::clone(&self.target),
            })
        } else {
            Ok(Conn::H1 {
                conn: Box::new(h1::Connection::new(io)),
                host: self.target.host_header.clone(),
            })
        }
    }

    /// Sets `out.path` to the target's base path followed by `path_and_query` (rendered),
    /// refusing what cannot go on a request line.
    pub fn set_path(&self, out: &mut Outgoing, path_and_query: &str) -> Result<(), String> {
        if let Some(b) = path_and_query
            .bytes()
            .find(|&b| b <= b' ' || b == 0x7f || b == b'#')
        {
            return Err(format!(
                "invalid path {path_and_query:?}: {} is not allowed in a request line \
                 (percent-encode it)",
                match b {
                    b' ' => "a space".to_string(),
                    b'#' => "a fragment (#)".to_string(),
                    _ => format!("the control character 0x{b:02x}"),
                }
            ));
        }
        if !path_and_query.starts_with('/') {
            return Err(format!(
                "invalid path {path_and_query:?}: it must start with /"
            ));
        }
        out.path.clear();
        out.path.push_str(&self.target.base_path);
        out.path.push_str(path_and_query);
        Ok(())
    }
}

async fn connect_tcp(addrs: &[SocketAddr]) -> Result<TcpStream, ClientError> {
    let mut last = None;
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| std::io::Error::other("no address"));
    Err(classify("connect", &e))
}

/// A request as the worker rendered it, reused from one request to the next.
#[derive(Debug, Default)]
pub struct Outgoing {
    pub method: http::Method,
    /// Path and query, with the target's base path (see [`Connector::set_path`]).
    pub path: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    /// Ask the server to close after the response (`--no-keepalive`).
    pub close: bool,
}

impl Outgoing {
    /// The same request for hyper's HTTP/2 client.
    fn to_h2(&self, target: &Target) -> Result<Request<Full<Bytes>>, ClientError> {
        let bad = |e: String| ClientError {
            kind: ErrorKind::Other,
            message: format!("request: {e}"),
        };
        let pq = PathAndQuery::try_from(self.path.as_str()).map_err(|e| bad(e.to_string()))?;
        let uri = http::Uri::builder()
            .scheme(target.scheme.clone())
            .authority(target.authority.clone())
            .path_and_query(pq)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        let mut b = Request::builder().method(self.method.clone()).uri(uri);
        for (name, value) in &self.headers {
            b = b.header(name, value);
        }
        b.body(Full::new(self.body.clone()))
            .map_err(|e| bad(e.to_string()))
    }
}

/// One open connection.
pub enum Conn {
    H1 {
        conn: Box<h1::Connection<Io>>,
        host: HeaderValue,
    },
    H2 {
        send: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
        target: Arc<Target>,
    },
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::H1 { .. } => "Conn::H1",
            Conn::H2 { .. } => "Conn::H2",
        })
    }
}

/// A received response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Every header when [`Want::headers`] asked for them. Boxed: a response is moved a few
    /// times on its way to the worker, and most runs never look at the headers.
    pub headers: Option<Box<http::HeaderMap>>,
    /// The `x-served-by` header: which backend answered.
    pub served_by: Option<String>,
    /// The body, when asked for.
    pub body: Option<Bytes>,
    pub body_len: u64,
}

/// Outcome of [`Conn::send`]: the result and whether the connection can be reused.
pub struct Sent {
    pub result: Result<Response, ClientError>,
    pub reusable: bool,
    /// None of the request was written because the connection was already closed (a
    /// keep-alive connection the server closed while idle): it never reached the server, so it
    /// may be sent again on a fresh connection. A request that was written and got no response
    /// is *not* marked so: the server may have processed it.
    pub unsent: bool,
}

async fn read_h2_response(
    resp: http::Response<Incoming>,
    want: Want,
) -> Result<Response, ClientError> {
    let (parts, mut body) = resp.into_parts();
    let mut len = 0u64;
    let mut kept: Option<bytes::BytesMut> = want.body.then(bytes::BytesMut::new);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            let mut c = classify("body", &e);
            if c.kind == ErrorKind::Other || c.kind == ErrorKind::Reset {
                c.kind = ErrorKind::Body;
            }
            c
        })?;
        if let Ok(data) = frame.into_data() {
            len += data.len() as u64;
            h1::keep(&mut kept, &data)?;
        }
    }
    let served_by = parts
        .headers
        .get(SERVED_BY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok(Response {
        status: parts.status.as_u16(),
        headers: want.headers.then(|| Box::new(parts.headers)),
        served_by,
        body: kept.map(|k| k.freeze()),
        body_len: len,
    })
}

impl Conn {
    /// Sends one request and reads the whole response.
    pub async fn send(&mut self, out: &Outgoing, want: Want) -> Sent {
        match self {
            Conn::H1 { conn, host } => conn.exchange(host, out, want).await,
            Conn::H2 { send, target } => {
                // Not ready = the connection is closed or going away (a GOAWAY): nothing of the
                // request was sent, so it may go out on a fresh connection.
                if let Err(e) = send.ready().await {
                    return Sent {
                        result: Err(classify("request", &e)),
                        reusable: false,
                        unsent: true,
                    };
                }
                let result = match out.to_h2(target) {
                    Ok(req) => match send.send_request(req).await {
                        Ok(resp) => read_h2_response(resp, want).await,
                        Err(e) => Err(classify("request", &e)),
                    },
                    Err(e) => Err(e),
                };
                let reusable = !send.is_closed();
                Sent {
                    result,
                    reusable,
                    unsent: false,
                }
            }
        }
    }
}

/// Maps an error (and its sources) to a kind; a TLS failure's message says what to do
/// ([`verify::explain`]).
pub fn classify(stage: &str, err: &(dyn StdError + 'static)) -> ClientError {
    if let Some(words) = verify::explain::tls_failure(err, &verify::explain::LOAD) {
        return ClientError {
            kind: ErrorKind::Tls,
            message: format!("{stage}: {words}"),
        };
    }
    let message = format!("{stage}: {}", chain(err));
    let mut kind = None;
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            kind = Some(match io.kind() {
                K::ConnectionRefused => ErrorKind::ConnectRefused,
                K::TimedOut => ErrorKind::Timeout,
                K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
                    ErrorKind::Reset
                }
                _ => ErrorKind::Other,
            });
            break;
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_timeout() {
                kind = Some(ErrorKind::Timeout);
                break;
            }
            if h.is_incomplete_message() || h.is_canceled() || h.is_closed() {
                kind = Some(ErrorKind::Reset);
            }
        }
        cur = e.source();
    }
    let kind = kind.unwrap_or_else(|| {
        let m = message.to_ascii_lowercase();
        if m.contains("certificate")
            || m.contains("tls")
            || m.contains("handshake") && m.contains("alert")
        {
            ErrorKind::Tls
        } else if m.contains("refused") {
            ErrorKind::ConnectRefused
        } else {
            ErrorKind::Other
        }
    });
    ClientError { kind, message }
}

fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let m = e.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = e.source();
    }
    s
}

/// Wraps [`Conn::send`] in a timeout covering connect, request and the whole body.
pub fn timeout_error(t: Duration) -> ClientError {
    ClientError {
        kind: ErrorKind::Timeout,
        message: format!(
            "no complete response within {}",
            humantime::format_duration(t)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("http://127.0.0.1:8080/api/ping?x=1").unwrap();
        assert_eq!(t.port, 8080);
        assert_eq!(t.path_and_query, "/api/ping?x=1");
        assert_eq!(t.base_path, "/api/ping");
        let t = Target::parse("https://example.com").unwrap();
        assert_eq!(
            (t.port, t.base_path.as_str(), t.path_and_query.as_str()),
            (443, "", "/")
        );
        assert!(
            Target::parse("127.0.0.1:8080")
                .unwrap_err()
                .contains("scheme")
        );
        assert!(Target::parse("ftp://x").is_err());
        assert!(Target::parse("http://").is_err());
        assert!(Target::parse("not a url").is_err());
    }

    #[test]
    fn a_certificate_error_wrapped_in_nested_io_errors_is_tls() {
        let rustls_error =
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let inner = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls_error);
        let outer = std::io::Error::other(inner);
        assert_eq!(classify("connect", &outer).kind, ErrorKind::Tls);
    }

    #[test]
    fn classifies_io_errors() {
        let e = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(classify("c", &e).kind, ErrorKind::ConnectRefused);
        let e = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(classify("c", &e).kind, ErrorKind::Reset);
    }
}
