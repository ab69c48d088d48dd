//! The HTTP client: one keep-alive connection per worker, driven by hyper directly.
//!
//! Why not a pooled client: a pool hides how many connections carry the load and adds a shared lock
//! and task hops per request. Here each worker owns its connection (HTTP/1.1) and polls it inline
//! with the request, like wrk's one-connection-per-slot event loop; with `--http2` the workers share
//! a few multiplexed connections instead.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

/// Transport-level failure kinds (the `kind` label of `loadgen_errors_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    ConnectRefused,
    Timeout,
    Reset,
    Tls,
    Body,
    Other,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::ConnectRefused,
        ErrorKind::Timeout,
        ErrorKind::Reset,
        ErrorKind::Tls,
        ErrorKind::Body,
        ErrorKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::Tls => "tls",
            ErrorKind::Body => "body",
            ErrorKind::Other => "other",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

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
}

/// Opens connections to the target.
#[derive(Clone)]
pub struct Connector {
    target: Arc<Target>,
    addrs: Arc<Vec<SocketAddr>>,
    tls: Option<HttpsConnector<HttpConnector>>,
    http2: bool,
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
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls_cfg = if cfg.insecure {
                insecure_config()
            } else {
                let mut roots = rustls::RootCertStore::empty();
                let native = rustls_native_certs::load_native_certs();
                for c in native.certs {
                    let _ = roots.add(c);
                }
                rustls::ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth()
            };
            let mut http = HttpConnector::new();
            http.set_nodelay(true);
            http.enforce_http(false);
            let b = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls_cfg)
                .https_only();
            Some(if cfg.http2 {
                b.enable_http2().wrap_connector(http)
            } else {
                b.enable_http1().wrap_connector(http)
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

    /// Opens one connection and completes the HTTP handshake.
    pub async fn connect(&self) -> Result<Conn, ClientError> {
        let io: MaybeHttpsStream<TokioIo<TcpStream>> = match &self.tls {
            None => {
                let stream = connect_tcp(&self.addrs).await?;
                MaybeHttpsStream::Http(TokioIo::new(stream))
            }
            Some(tls) => {
                let uri: http::Uri = format!("https://{}/", self.target.authority)
                    .parse()
                    .map_err(|e| ClientError {
                        kind: ErrorKind::Other,
                        message: format!("{e}"),
                    })?;
                let mut svc = tls.clone();
                tower_service::Service::call(&mut svc, uri)
                    .await
                    .map_err(|e| classify("connect", e.as_ref()))?
            }
        };
        if self.http2 {
            let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                .handshake(io)
                .await
                .map_err(|e| classify("handshake", &e))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(Conn::H2 { send })
        } else {
            let (send, conn) = hyper::client::conn::http1::Builder::new()
                .handshake(io)
                .await
                .map_err(|e| classify("handshake", &e))?;
            Ok(Conn::H1 {
                send,
                conn: Box::pin(conn),
            })
        }
    }

    /// Builds a request for `path_and_query` (already rendered).
    pub fn request(
        &self,
        method: http::Method,
        path_and_query: &str,
    ) -> Result<http::request::Builder, String> {
        let full = if self.target.base_path.is_empty() {
            PathAndQuery::try_from(path_and_query)
        } else {
            PathAndQuery::try_from(format!("{}{}", self.target.base_path, path_and_query))
        }
        .map_err(|e| format!("invalid path {path_and_query:?}: {e}"))?;
        let builder = if self.http2 {
            let uri = http::Uri::builder()
                .scheme(self.target.scheme.clone())
                .authority(self.target.authority.clone())
                .path_and_query(full)
                .build()
                .map_err(|e| e.to_string())?;
            Request::builder().method(method).uri(uri)
        } else {
            Request::builder()
                .method(method)
                .uri(http::Uri::from(full))
                .header(http::header::HOST, self.target.host_header.clone())
        };
        Ok(builder)
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

type Io = MaybeHttpsStream<TokioIo<TcpStream>>;

/// One open connection.
pub enum Conn {
    H1 {
        send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
        conn: Pin<Box<hyper::client::conn::http1::Connection<Io, Full<Bytes>>>>,
    },
    H2 {
        send: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    },
    /// An HTTP/1 connection that ended during [`Conn::send`]; dropped so that a request it never
    /// wrote is handed back at once instead of waiting in its queue until the request timeout.
    Closed,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::H1 { .. } => "Conn::H1",
            Conn::H2 { .. } => "Conn::H2",
            Conn::Closed => "Conn::Closed",
        })
    }
}

/// A received response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: http::HeaderMap,
    /// The body, when asked for.
    pub body: Option<Bytes>,
    pub body_len: u64,
}

/// Outcome of [`Conn::send`]: the result and whether the connection can be reused.
pub struct Sent {
    pub result: Result<Response, ClientError>,
    pub reusable: bool,
    /// The request, when hyper reports that none of it was written because the connection was
    /// already closed (a keep-alive connection the server closed while idle): it never reached
    /// the server, so it may be sent again on a fresh connection. A request that was written
    /// and got no response is *not* handed back: the server may have processed it.
    pub unsent: Option<Request<Full<Bytes>>>,
}

async fn read_response(
    fut: impl Future<Output = Result<http::Response<Incoming>, hyper::Error>>,
    keep_body: bool,
) -> Result<Response, ClientError> {
    let resp = fut.await.map_err(|e| classify("request", &e))?;
    read_body(resp, keep_body).await
}

/// Like [`read_response`], but hands the request back when hyper never wrote it.
async fn try_read_response(
    fut: impl Future<
        Output = Result<
            http::Response<Incoming>,
            hyper::client::conn::TrySendError<Request<Full<Bytes>>>,
        >,
    >,
    keep_body: bool,
) -> (Result<Response, ClientError>, Option<Request<Full<Bytes>>>) {
    match fut.await {
        Ok(resp) => (read_body(resp, keep_body).await, None),
        Err(mut e) => {
            let unsent = e.take_message();
            (Err(classify("request", e.error())), unsent)
        }
    }
}

async fn read_body(
    resp: http::Response<Incoming>,
    keep_body: bool,
) -> Result<Response, ClientError> {
    let (parts, mut body) = resp.into_parts();
    let mut len = 0u64;
    let mut kept: Option<bytes::BytesMut> = keep_body.then(bytes::BytesMut::new);
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
            if let Some(k) = kept.as_mut() {
                k.extend_from_slice(&data);
            }
        }
    }
    Ok(Response {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: kept.map(|k| k.freeze()),
        body_len: len,
    })
}

impl Conn {
    /// Sends one request and reads the whole response. HTTP/1 polls the connection in this task.
    pub async fn send(&mut self, req: Request<Full<Bytes>>, keep_body: bool) -> Sent {
        match self {
            Conn::H2 { send } => {
                // Not ready = the connection is closed or going away (a GOAWAY): nothing of the
                // request was sent, so it may go out on a fresh connection.
                if let Err(e) = send.ready().await {
                    return Sent {
                        result: Err(classify("request", &e)),
                        reusable: false,
                        unsent: Some(req),
                    };
                }
                let result = read_response(send.send_request(req), keep_body).await;
                let reusable = !send.is_closed();
                Sent {
                    result,
                    reusable,
                    unsent: None,
                }
            }
            Conn::Closed => Sent {
                result: Err(ClientError {
                    kind: ErrorKind::Reset,
                    message: "connection closed by the server".into(),
                }),
                reusable: false,
                unsent: Some(req),
            },
            Conn::H1 { send, conn } => {
                // Wait until the connection can take a request, polling it meanwhile (a kept-alive
                // idle connection is ready at once: skip the select then).
                let ready = if send.is_ready() {
                    Ok(())
                } else {
                    tokio::select! {
                        biased;
                        r = send.ready() => r.map_err(|e| classify("request", &e)),
                        r = conn.as_mut() => Err(match r {
                            Ok(()) => ClientError { kind: ErrorKind::Reset, message: "connection closed by the server".into() },
                            Err(e) => classify("connection", &e),
                        }),
                    }
                };
                if let Err(e) = ready {
                    return Sent {
                        result: Err(e),
                        reusable: false,
                        unsent: Some(req),
                    };
                }
                let fut = try_read_response(send.try_send_request(req), keep_body);
                tokio::pin!(fut);
                let ended = tokio::select! {
                    biased;
                    (r, unsent) = &mut fut => {
                        let reusable = r.as_ref().is_ok_and(|resp| !closes(&resp.headers)) && !send.is_closed();
                        return Sent { result: r, reusable, unsent };
                    }
                    c = conn.as_mut() => c,
                };
                // The connection ended first (e.g. `Connection: close` after the response, or a
                // keep-alive connection the server had closed while idle). Drop it: a request it
                // never wrote stays queued in it until then, which would hang until the timeout.
                // A response it did receive is complete in the body channel.
                *self = Conn::Closed;
                let (r, unsent) = fut.await;
                let r = match (r, ended) {
                    (Ok(resp), _) => Ok(resp),
                    (Err(e), Err(ce)) => Err(ClientError {
                        kind: e.kind,
                        message: format!("{}; connection: {ce}", e.message),
                    }),
                    (Err(e), Ok(())) => Err(e),
                };
                Sent {
                    result: r,
                    reusable: false,
                    unsent,
                }
            }
        }
    }
}

fn closes(h: &http::HeaderMap) -> bool {
    h.get(http::header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("close"))
}

/// Maps an error (and its sources) to a kind.
pub fn classify(stage: &str, err: &(dyn StdError + 'static)) -> ClientError {
    let message = format!("{stage}: {}", chain(err));
    let mut kind = None;
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<rustls::Error>().is_some() {
            kind = Some(ErrorKind::Tls);
            break;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            if let Some(inner) = io.get_ref()
                && inner.downcast_ref::<rustls::Error>().is_some()
            {
                kind = Some(ErrorKind::Tls);
                break;
            }
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

fn insecure_config() -> rustls::ClientConfig {
    use rustls::DigitallySignedStruct;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    /// Accepts any certificate: only for `--insecure` against test targets.
    #[derive(Debug)]
    struct AcceptAll(Arc<rustls::crypto::CryptoProvider>);
    impl ServerCertVerifier for AcceptAll {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAll(provider)))
        .with_no_client_auth()
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
    fn classifies_io_errors() {
        let e = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(classify("c", &e).kind, ErrorKind::ConnectRefused);
        let e = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(classify("c", &e).kind, ErrorKind::Reset);
    }
}
