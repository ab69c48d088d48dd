//! Which server certificates the client trusts, and the client certificate it presents.
//!
//! Why a verifier of our own around webpki's: users make test certificates with `openssl req
//! -x509`, which OpenSSL 3 marks `CA:TRUE`, and pass that very file as `--cacert`. curl and Go's
//! crypto/tls trust a server certificate that is itself one of the trusted certificates; webpki
//! refuses any `CA:TRUE` certificate as a server's own (`CaUsedAsEndEntity`), so every request of
//! such a run failed. [`Verifier`] trusts a certificate byte-identical to a `--cacert` one by that
//! identity, still checking its dates and names ([`anchored`]), and leaves every other certificate
//! to webpki's chain building unchanged. Failures are put in words by [`explain`].

mod anchored;
pub mod explain;

use std::path::Path;
use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::ClientConfig;

/// The TLS configuration of the load connections (HTTP/1.1 and HTTP/2 alike), without ALPN.
pub fn tls_config(cfg: &ClientConfig) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = if cfg.insecure {
        Verifier::accept_any(Arc::clone(&provider))
    } else {
        trusting(cfg.cacert.as_deref(), "--cacert", &provider)?
    };
    let builder = builder(verifier, provider)?;
    match &cfg.client_cert {
        None => Ok(builder.with_no_client_auth()),
        Some(pair) => {
            let chain = read_certs(&pair.cert, "--cert")?;
            let key = PrivateKeyDer::from_pem_file(&pair.key)
                .map_err(|e| format!("--key {}: {e}", pair.key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("--cert / --key: {e} (is --key the key of --cert?)"))
        }
    }
}

/// The TLS configuration of a client that trusts the system's roots and the certificates of
/// `cacert` (given as `flag`) as the load connections do: the remote-write pusher.
pub fn trusting_config(cacert: Option<&Path>, flag: &str) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = trusting(cacert, flag, &provider)?;
    Ok(builder(verifier, provider)?.with_no_client_auth())
}

fn trusting(
    cacert: Option<&Path>,
    flag: &str,
    provider: &Arc<CryptoProvider>,
) -> Result<Verifier, String> {
    let pinned = match cacert {
        Some(path) => read_certs(path, flag)?,
        None => Vec::new(),
    };
    Verifier::new(system_roots(), pinned, Arc::clone(provider)).map_err(|e| format!("{flag}: {e}"))
}

fn builder(
    verifier: Verifier,
    provider: Arc<CryptoProvider>,
) -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>, String> {
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier)))
}

/// The system's trusted roots (none on a machine without a CA bundle: only `--cacert` then).
fn system_roots() -> Vec<CertificateDer<'static>> {
    rustls_native_certs::load_native_certs().certs
}

/// Every certificate of a PEM file, refusing a file with none.
fn read_certs(path: &Path, flag: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{flag} {shown}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{flag} {shown}: no PEM certificate in the file"));
    }
    Ok(certs)
}

/// Trusts what webpki trusts (a chain to a system root or a `--cacert` certificate), and a server
/// certificate that *is* one of the `--cacert` certificates; or, with `--insecure`, anything.
#[derive(Debug)]
pub struct Verifier {
    trust: Trust,
    provider: Arc<CryptoProvider>,
}

#[derive(Debug)]
enum Trust {
    /// `--insecure`, for test targets only.
    Any,
    Checked {
        /// Chains to the roots; `None` when there is no root at all (every other certificate
        /// is then of an unknown issuer; webpki's builder refuses an empty store).
        chains: Option<Arc<WebPkiServerVerifier>>,
        /// The `--cacert` certificates, each also trusted as a server certificate as it is.
        pinned: Vec<CertificateDer<'static>>,
    },
}

impl Verifier {
    /// `roots` (the system's) and `pinned` (`--cacert`'s) are both trust anchors of the chains.
    pub fn new(
        roots: Vec<CertificateDer<'static>>,
        pinned: Vec<CertificateDer<'static>>,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, String> {
        let mut store = rustls::RootCertStore::empty();
        // A system bundle may hold certificates webpki cannot use; they are skipped, as curl does.
        let _ = store.add_parsable_certificates(roots);
        for cert in &pinned {
            store
                .add(cert.clone())
                .map_err(|e| format!("a certificate that cannot be parsed: {e}"))?;
        }
        let chains = if store.is_empty() {
            None
        } else {
            let built =
                WebPkiServerVerifier::builder_with_provider(Arc::new(store), Arc::clone(&provider))
                    .build()
                    .map_err(|e| format!("TLS verifier: {e}"))?;
            Some(built)
        };
        Ok(Self {
            trust: Trust::Checked { chains, pinned },
            provider,
        })
    }

    /// Accepts any certificate. The handshake signature is still checked, so the server must
    /// hold the key of what it presents.
    pub fn accept_any(provider: Arc<CryptoProvider>) -> Self {
        Self {
            trust: Trust::Any,
            provider,
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Trust::Checked { chains, pinned } = &self.trust else {
            return Ok(ServerCertVerified::assertion());
        };
        if pinned.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
            anchored::verify(end_entity, server_name, now)?;
            return Ok(ServerCertVerified::assertion());
        }
        match chains {
            Some(chains) => chains.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            None => Err(rustls::CertificateError::UnknownIssuer.into()),
        }
    }

    // The handshake signatures prove the server holds the key of the certificate it presented,
    // pinned or chained alike: checked with the provider's algorithms, as webpki's verifier does.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(common_name: &str) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn without_any_root_only_the_pinned_certificates_are_trusted() {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (pinned, other) = (self_signed("pinned"), self_signed("other"));
        let v = Verifier::new(Vec::new(), vec![pinned.clone()], provider).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let now = UnixTime::now();
        assert!(v.verify_server_cert(&pinned, &[], &name, &[], now).is_ok());
        assert_eq!(
            v.verify_server_cert(&other, &[], &name, &[], now).err(),
            Some(rustls::CertificateError::UnknownIssuer.into())
        );
    }

    #[test]
    fn with_no_root_and_nothing_pinned_every_certificate_is_of_an_unknown_issuer() {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let v = Verifier::new(Vec::new(), Vec::new(), provider).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let got = v.verify_server_cert(&self_signed("any"), &[], &name, &[], UnixTime::now());
        assert_eq!(
            got.err(),
            Some(rustls::CertificateError::UnknownIssuer.into())
        );
    }
}
