//! TLS failures in words, each with what to do about it.
//!
//! A run whose every request fails as `tls` must say why without the user reading rustls' enum
//! names: which certificate fault it is, the dates or names involved, and the flag or the
//! certificate change that fixes it. The sentence becomes the request's error message, so it
//! reaches the report's `error_messages` and the terminal summary.

use rustls::pki_types::UnixTime;
use rustls::{AlertDescription, CertificateError, Error};

/// The failure `e` as a sentence: what is wrong, then (after a colon) what to do.
pub fn explain(e: &Error) -> String {
    match e {
        Error::InvalidCertificate(c) => certificate(c),
        Error::AlertReceived(AlertDescription::CertificateRequired) => {
            "the server asks for a client certificate (mutual TLS) and loadgen sent none: \
             pass --cert FILE --key FILE"
                .into()
        }
        Error::AlertReceived(
            a @ (AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateExpired),
        ) => format!(
            "the server refused loadgen's client certificate (alert {a:?}): pass --cert with a \
             certificate the server's client CA signed, still valid, and its --key"
        ),
        Error::AlertReceived(AlertDescription::HandshakeFailure) => {
            "the server ended the handshake (alert HandshakeFailure): it may require a client \
             certificate (pass --cert FILE --key FILE), or it shares no TLS version or cipher \
             suite with loadgen (TLS 1.2 or 1.3)"
                .into()
        }
        Error::NoApplicationProtocol => {
            "the server accepts none of the protocols loadgen offered by ALPN: drop --http2 if \
             it speaks HTTP/1.1 only, or add --http2 if it speaks HTTP/2 only"
                .into()
        }
        e => format!("TLS: {e}"),
    }
}

fn certificate(c: &CertificateError) -> String {
    match c {
        CertificateError::UnknownIssuer => {
            "the server's certificate is not signed by a CA loadgen trusts (the system's or \
             --cacert's): pass --cacert FILE with the CA that signed it, or with the certificate \
             itself if it is self-signed (--insecure skips the check, for test targets only)"
                .into()
        }
        CertificateError::ExpiredContext { time, not_after } => format!(
            "the server's certificate expired on {} (it is now {}): renew the certificate",
            date(*not_after),
            date(*time)
        ),
        CertificateError::Expired => {
            "the server's certificate (or one of its chain) has expired: renew it".into()
        }
        CertificateError::NotValidYetContext { time, not_before } => format!(
            "the server's certificate is not valid before {} (it is now {}): check the clocks \
             of this machine and of the one that made the certificate",
            date(*not_before),
            date(*time)
        ),
        CertificateError::NotValidYet => "the server's certificate is not valid yet: check the \
             clocks of this machine and of the one that made the certificate"
            .into(),
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => format!(
            "the server's certificate is for {}, not for {} (the host of --target): target a \
             name the certificate holds, or make one whose subjectAltName holds {}",
            if presented.is_empty() {
                "no name (it has no subjectAltName)".to_string()
            } else {
                presented
                    .iter()
                    .map(|n| plain_name(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            expected.to_str(),
            expected.to_str()
        ),
        CertificateError::NotValidForName => {
            "the server's certificate is not for the host of --target: target a name the \
             certificate holds, or make one whose subjectAltName holds that host"
                .into()
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "the server's certificate is not for TLS servers (its extendedKeyUsage lacks \
             serverAuth): make one with extendedKeyUsage=serverAuth"
                .into()
        }
        CertificateError::BadSignature => "a signature in the server's certificate chain does \
             not verify: the chain was not made by the CA it names, or --cacert holds another CA \
             of the same name"
            .into(),
        CertificateError::Other(other) if ca_used_as_end_entity(other) => {
            "the server's certificate is a CA certificate (CA:TRUE, as `openssl req -x509` makes \
             them) that is not in --cacert: pass this very certificate with --cacert FILE to \
             trust it as it is, or give the server a certificate with CA:FALSE signed by a CA \
             you pass with --cacert"
                .into()
        }
        c => format!("the server's certificate was refused: {c:?}"),
    }
}

fn ca_used_as_end_entity(other: &rustls::OtherError) -> bool {
    matches!(
        other.0.downcast_ref::<webpki::Error>(),
        Some(webpki::Error::CaUsedAsEndEntity)
    )
}

/// A name as webpki presents it (`DnsName("a.example")`, `IpAddress(127.0.0.1)`), as the
/// certificate holds it (`a.example`, `127.0.0.1`).
fn plain_name(presented: &str) -> &str {
    for kind in ["DnsName(", "IpAddress(", "UniformResourceIdentifier("] {
        if let Some(inner) = presented
            .strip_prefix(kind)
            .and_then(|rest| rest.strip_suffix(')'))
        {
            return inner.trim_matches('"');
        }
    }
    presented
}

/// A certificate time as RFC 3339 UTC, to the second.
fn date(t: UnixTime) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.as_secs());
    humantime::format_rfc3339_seconds(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_shown_as_the_certificate_holds_them() {
        assert_eq!(plain_name("DnsName(\"a.example\")"), "a.example");
        assert_eq!(plain_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(plain_name("DirectoryName"), "DirectoryName");
    }

    #[test]
    fn an_alert_for_a_missing_client_certificate_names_the_flags() {
        let e = Error::AlertReceived(AlertDescription::CertificateRequired);
        assert!(explain(&e).contains("pass --cert FILE --key FILE"));
    }
}
