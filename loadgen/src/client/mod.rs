//! The HTTP client: one keep-alive connection per worker.
//!
//! Why not a pooled client: a pool hides how many connections carry the load and adds a shared lock
//! and task hops per request. Here each worker owns its connection (HTTP/1.1, written and parsed
//! by [`h1`]) and drives it inline with the request, like wrk's one-connection-per-slot event
//! loop; with `--http2` the workers share a few multiplexed hyper connections instead.
//!
//! Layout, one job per file: this file has the connector (resolve once, open TCP, then TLS and the
//! protocol) and the connection and request types; [`target`] parses the target URL; [`tls`] the
//! TLS handshake and [`verify`] which certificates are trusted and TLS failures in words; [`h1`]
//! the HTTP/1.1 wire client and [`h2`] the HTTP/2 path through hyper; [`io`] the plain-or-TLS
//! stream; [`error`] the failure kinds every error is mapped to.

pub mod error;
pub mod h1;
mod h2;
mod io;
pub mod target;
mod tls;
pub mod verify;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use http_body_util::Full;
use tokio::net::TcpStream;

pub use error::{ClientError, classify, timeout_error};
pub use h1::{SERVED_BY, Want};
pub use io::Io;
pub use target::Target;
use tls::Tls;

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
            Some(Tls::new(&target, cfg)?)
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
            Some(tls) => tls.handshake(tcp).await?,
        };
        if self.http2 {
            h2::handshake(io, Arc::clone(&self.target)).await
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

impl Conn {
    /// Sends one request and reads the whole response.
    pub async fn send(&mut self, out: &Outgoing, want: Want) -> Sent {
        match self {
            Conn::H1 { conn, host } => conn.exchange(host, out, want).await,
            Conn::H2 { send, target } => h2::send(send, target, out, want).await,
        }
    }
}
