//! The accept loop: takes connections from a listener, applies the connection limit, and gives
//! each accepted connection its own task (TLS handshake, then [`crate::connection::serve`]).
//!
//! Replaces `axum::serve`, which builds hyper without a timer or any connection rule (a stalled
//! client held its connection forever) and cannot serve TLS.
//!
//! Past the connection limit a new connection is accepted and closed at once rather than left
//! in the kernel's accept queue: the client learns immediately (EOF or reset, which clients and
//! the loadgen report as such) instead of hanging until its connect timeout, the queue never
//! fills with connections nobody will serve, and the rejection is counted
//! (`http_server_rejected_requests_total{reason="connection_limit"}`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::connection::{self, Activity, ConnectionRules, TrackedIo};
use crate::metrics::{Metrics, RejectReason};

/// File descriptors kept free for everything but client connections (listeners, /proc reads
/// of the process collector, the runtime, trace export).
const RESERVED_FDS: u64 = 64;

/// One listener's serving setup.
#[derive(Clone)]
pub struct Server {
    rules: Arc<ConnectionRules>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    limit: Arc<Semaphore>,
    tls: Option<TlsAcceptor>,
    /// Where connection counts and rejections go (the application listener's only).
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("rules", &self.rules)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Server {
    pub fn new(rules: ConnectionRules, max_connections: usize) -> Self {
        // No hyper timer: hyper's HTTP/1 header timeout would also count idle keep-alive time;
        // the connection rules do the timing (see crate::connection).
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().keep_alive(true).header_read_timeout(None);
        Self {
            rules: Arc::new(rules),
            builder: Arc::new(builder),
            limit: Arc::new(Semaphore::new(max_connections.min(Semaphore::MAX_PERMITS))),
            tls: None,
            metrics: None,
        }
    }

    /// Serve HTTPS with this configuration.
    pub fn with_tls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(TlsAcceptor::from(config));
        self
    }

    /// Count open and rejected connections here.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Accepts until `shutdown` resolves, then asks every connection to finish (in-flight
    /// requests complete, HTTP/1 answers `Connection: close`, HTTP/2 gets GOAWAY) and returns
    /// when all have closed. The caller bounds that wait (the shutdown timeout).
    pub async fn run<L, F>(self, mut listener: L, router: Router, shutdown: F)
    where
        L: axum::serve::Listener<Io = TcpStream, Addr = SocketAddr>,
        F: Future<Output = ()> + Send,
    {
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::pin!(shutdown);
        loop {
            let (stream, _peer) = tokio::select! {
                conn = listener.accept() => conn,
                () = &mut shutdown => break,
            };
            let Ok(permit) = self.limit.clone().try_acquire_owned() else {
                if let Some(m) = &self.metrics {
                    m.reject(RejectReason::ConnectionLimit);
                }
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let server = self.clone();
            let router = router.clone();
            let stop = stop_rx.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let _open = server.metrics.clone().map(OpenConnection::new);
                server.connection(stream, router, stop).await;
            });
        }
        drop(listener);
        let _ = stop_tx.send(true);
        drop(stop_rx);
        // Resolves once every connection task has dropped its receiver.
        stop_tx.closed().await;
    }

    async fn connection(&self, stream: TcpStream, router: Router, stop: watch::Receiver<bool>) {
        let activity = Arc::new(Activity::new(self.rules.age_limit()));
        let io = TrackedIo::new(stream, activity.clone());
        let Some(acceptor) = &self.tls else {
            return connection::serve(io, activity, &self.builder, router, &self.rules, stop).await;
        };
        // The handshake counts against the header read timeout: a client that stalls in it is
        // a slowloris too.
        let handshake =
            tokio::time::timeout(self.rules.header_read_timeout, acceptor.accept(io)).await;
        match handshake {
            Ok(Ok(tls)) => {
                if let Some(alpn) = tls.get_ref().1.alpn_protocol() {
                    activity.set_http2(alpn == b"h2");
                }
                connection::serve(tls, activity, &self.builder, router, &self.rules, stop).await;
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!("TLS handshake not done within the header read timeout"),
        }
    }
}

/// Counts a connection in `http_server_open_connections` while it lives.
struct OpenConnection(Arc<Metrics>);

impl OpenConnection {
    fn new(metrics: Arc<Metrics>) -> Self {
        metrics.connections_changed(1.0);
        Self(metrics)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections_changed(-1.0);
    }
}

/// Raises the open-files soft limit to the hard limit (as Go's runtime does at start): the
/// default soft limit of many systems (1024) is far below the connection limit. Warns when the
/// limit still leaves less room than `max_connections` needs, since past it accepts fail with
/// EMFILE instead of being rejected cleanly.
pub fn ensure_fd_headroom(max_connections: u32) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < u64::from(max_connections) + RESERVED_FDS => tracing::warn!(
            open_files_limit = limit,
            max_connections,
            "the open-files limit is lower than --max-connections needs; connections past it fail at accept"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read or raise the open-files limit"),
    }
}
