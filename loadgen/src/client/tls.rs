//! TLS of the connections: the rustls configuration built once per run (the certificates
//! [`super::verify`] trusts, the ALPN protocol of `--http2` or not) and the handshake on each new
//! TCP connection.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use super::{ClientConfig, ClientError, Io, Target, classify, verify};

/// The configuration and the name the server's certificate must carry.
#[derive(Clone)]
pub(super) struct Tls {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

impl Tls {
    /// The TLS of connections to `target`; an error names the file or host at fault.
    pub(super) fn new(target: &Target, cfg: &ClientConfig) -> Result<Self, String> {
        let mut tls_cfg = verify::tls_config(cfg)?;
        tls_cfg.alpn_protocols = vec![if cfg.http2 {
            b"h2".to_vec()
        } else {
            b"http/1.1".to_vec()
        }];
        let name = ServerName::try_from(target.host.clone())
            .map_err(|e| format!("target host {:?} is no TLS server name: {e}", target.host))?;
        Ok(Self {
            connector: tokio_rustls::TlsConnector::from(Arc::new(tls_cfg)),
            name,
        })
    }

    /// Completes the TLS handshake on a new TCP connection.
    pub(super) async fn handshake(&self, tcp: TcpStream) -> Result<Io, ClientError> {
        let stream = self
            .connector
            .connect(self.name.clone(), tcp)
            .await
            .map_err(|e| classify("connect", &e))?;
        Ok(Io::Tls(Box::new(stream)))
    }
}
