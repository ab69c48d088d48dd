//! The checks on a server certificate trusted because it is itself a `--cacert` certificate.
//!
//! No chain is built, so the checks webpki makes on a chain's end do not happen by themselves: the
//! dates, the names and the purpose are checked here, as Go's crypto/tls checks a certificate
//! found in its roots. What is *not* checked is what makes the certificate a CA (`CA:TRUE`): the
//! user trusted this very certificate, so the issuer question does not arise. Errors are the
//! `rustls` certificate errors webpki's verifier returns for the same faults, so [`super::explain`]
//! words both alike.

use std::time::Duration;

use rustls::CertificateError;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::prelude::{FromDer, X509Certificate};

/// Checks that `cert` is valid at `now`, may serve TLS servers, and names `server_name`.
pub fn verify(
    cert: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let (_, parsed) =
        X509Certificate::from_der(cert.as_ref()).map_err(|_| CertificateError::BadEncoding)?;
    check_dates(&parsed, now)?;
    check_purpose(&parsed)?;
    // webpki's own name matching (wildcards, IP addresses in the subjectAltName only), and its
    // refusal of critical extensions it does not know, exactly as on the chained path.
    let cert = webpki::EndEntityCert::try_from(cert).map_err(other)?;
    cert.verify_is_valid_for_subject_name(server_name)
        .map_err(|e| match e {
            webpki::Error::CertNotValidForName(ctx) => CertificateError::NotValidForNameContext {
                expected: ctx.expected,
                presented: ctx.presented,
            }
            .into(),
            e => other(e),
        })
}

fn check_dates(cert: &X509Certificate<'_>, now: UnixTime) -> Result<(), CertificateError> {
    let validity = cert.validity();
    let at = |secs: i64| UnixTime::since_unix_epoch(Duration::from_secs(secs.max(0) as u64));
    let not_before = validity.not_before.timestamp();
    let not_after = validity.not_after.timestamp();
    let now_s = now.as_secs() as i64;
    if now_s < not_before {
        return Err(CertificateError::NotValidYetContext {
            time: now,
            not_before: at(not_before),
        });
    }
    if now_s > not_after {
        return Err(CertificateError::ExpiredContext {
            time: now,
            not_after: at(not_after),
        });
    }
    Ok(())
}

/// A certificate that lists its purposes (extendedKeyUsage) must list serving TLS (serverAuth)
/// or any purpose; one that lists none may serve any.
fn check_purpose(cert: &X509Certificate<'_>) -> Result<(), CertificateError> {
    match cert.extended_key_usage() {
        Err(_) => Err(CertificateError::BadEncoding),
        Ok(Some(eku)) if !(eku.value.server_auth || eku.value.any) => {
            Err(CertificateError::InvalidPurpose)
        }
        Ok(_) => Ok(()),
    }
}

fn other(e: webpki::Error) -> rustls::Error {
    CertificateError::Other(rustls::OtherError(std::sync::Arc::new(e))).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(purposes: Vec<rcgen::ExtendedKeyUsagePurpose>) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.extended_key_usages = purposes;
        params.self_signed(&key).unwrap().der().clone()
    }

    fn check(cert: &CertificateDer<'_>, name: &str) -> Result<(), rustls::Error> {
        verify(cert, &ServerName::try_from(name).unwrap(), UnixTime::now())
    }

    #[test]
    fn a_certificate_listing_purposes_must_list_server_auth() {
        use rcgen::ExtendedKeyUsagePurpose as P;
        assert_eq!(
            check(&cert(vec![P::ClientAuth]), "localhost"),
            Err(CertificateError::InvalidPurpose.into())
        );
        assert_eq!(
            check(&cert(vec![P::ClientAuth, P::ServerAuth]), "localhost"),
            Ok(())
        );
        assert_eq!(check(&cert(vec![]), "localhost"), Ok(()));
    }

    #[test]
    fn the_name_is_checked_even_though_the_certificate_is_trusted_as_itself() {
        let c = cert(vec![]);
        assert!(matches!(
            check(&c, "example.test"),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForNameContext { .. }
            ))
        ));
        assert!(matches!(
            check(&c, "127.0.0.1"),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForNameContext { .. }
            ))
        ));
    }

    #[test]
    fn garbage_is_a_bad_encoding() {
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
        assert_eq!(
            check(&garbage, "localhost"),
            Err(CertificateError::BadEncoding.into())
        );
    }
}
