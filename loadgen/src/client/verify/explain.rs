//! TLS failures in words, each with what to do about it.
//!
//! A run whose every request fails as `tls` must say why without the user reading rustls' enum
//! names: which certificate fault it is, the dates or names involved, and the flag or the
//! certificate change that fixes it. The sentence becomes the request's error message, so it
//! reaches the report's `error_messages` and the terminal summary.

use std::error::Error as StdError;

use rustls::pki_types::UnixTime;
use rustls::{AlertDescription, CertificateError, Error};

/// The flags a sentence tells the user to pass, which differ by connection.
#[derive(Debug, Clone, Copy)]
pub struct Flags {
    /// The flag of the trusted certificates.
    pub cacert: &'static str,
    /// The flag of the URL whose host the certificate must name.
    pub url: &'static str,
    /// How to present a client certificate.
    pub client_cert: &'static str,
    /// How to skip verification, when the connection has a way.
    pub skip: &'static str,
}

/// The load connections (`--target`).
pub const LOAD: Flags = Flags {
    cacert: "--cacert",
    url: "--target",
    client_cert: "pass --cert FILE --key FILE",
    skip: " (--insecure skips the check, for test targets only)",
};

/// The remote-write pusher (`--remote-write`).
pub const REMOTE_WRITE: Flags = Flags {
    cacert: "--remote-write-cacert",
    url: "--remote-write",
    client_cert: "loadgen presents none to a remote-write receiver: let it accept the push \
                  without one (for example behind a proxy that authenticates by password)",
    skip: "",
};

/// The rustls failure somewhere in `err` in words, or `None` when `err` is no TLS failure.
pub fn tls_failure(err: &(dyn StdError + 'static), flags: &Flags) -> Option<String> {
    find_rustls_error(err).map(|e| explain(e, flags))
}

/// The rustls error anywhere in the chain, also inside nested `io::Error`s (the TLS connector
/// wraps tokio-rustls' io error in another; `io::Error::source` skips the error it wraps, so
/// following `source()` alone misses it).
fn find_rustls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Error> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(tls) = e.downcast_ref::<Error>() {
            return Some(tls);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            return find_rustls_error(inner);
        }
        cur = e.source();
    }
    None
}

/// The failure `e` as a sentence: what is wrong, then (after a colon) what to do.
pub fn explain(e: &Error, flags: &Flags) -> String {
    match e {
        Error::InvalidCertificate(c) => certificate(c, flags),
        Error::AlertReceived(AlertDescription::CertificateRequired) => format!(
            "the server asks for a client certificate (mutual TLS) and loadgen sent none: {}",
            flags.client_cert
        ),
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
        Error::AlertReceived(AlertDescription::HandshakeFailure) => format!(
            "the server ended the handshake (alert HandshakeFailure): it may require a client \
             certificate ({}), or it shares no TLS version or cipher suite with loadgen (TLS 1.2 \
             or 1.3)",
            flags.client_cert
        ),
        Error::NoApplicationProtocol => {
            "the server accepts none of the protocols loadgen offered by ALPN: drop --http2 if \
             it speaks HTTP/1.1 only, or add --http2 if it speaks HTTP/2 only"
                .into()
        }
        e => format!("TLS: {e}"),
    }
}

fn certificate(c: &CertificateError, flags: &Flags) -> String {
    let Flags {
        cacert, url, skip, ..
    } = flags;
    match c {
        CertificateError::UnknownIssuer => format!(
            "the server's certificate is not signed by a CA loadgen trusts (the system's or \
             {cacert}'s): pass {cacert} FILE with the CA that signed it, or with the certificate \
             itself if it is self-signed{skip}"
        ),
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
            "the server's certificate is for {}, not for {} (the host of {url}): use a name the \
             certificate holds, or make one whose subjectAltName holds {}",
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
        CertificateError::NotValidForName => format!(
            "the server's certificate is not for the host of {url}: use a name the certificate \
             holds, or make one whose subjectAltName holds that host"
        ),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "the server's certificate is not for TLS servers (its extendedKeyUsage lacks \
             serverAuth): make one with extendedKeyUsage=serverAuth"
                .into()
        }
        CertificateError::BadSignature => format!(
            "a signature in the server's certificate chain does not verify: the chain was not \
             made by the CA it names, or a trusted CA ({cacert}'s or the system's) has the same \
             name as its issuer"
        ),
        CertificateError::Other(other) if ca_used_as_end_entity(other) => format!(
            "the server's certificate is a CA certificate (CA:TRUE, as `openssl req -x509` makes \
             them) that is not in {cacert}: pass this very certificate with {cacert} FILE to \
             trust it as it is, or give the server a certificate with CA:FALSE signed by a CA \
             you pass with {cacert}"
        ),
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
    fn each_connection_names_its_own_flags() {
        let e = Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert!(explain(&e, &LOAD).contains("pass --cacert FILE"));
        assert!(explain(&e, &REMOTE_WRITE).contains("pass --remote-write-cacert FILE"));
    }

    #[test]
    fn names_are_shown_as_the_certificate_holds_them() {
        assert_eq!(plain_name("DnsName(\"a.example\")"), "a.example");
        assert_eq!(plain_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(plain_name("DirectoryName"), "DirectoryName");
    }

    #[test]
    fn an_alert_for_a_missing_client_certificate_names_the_flags() {
        let e = Error::AlertReceived(AlertDescription::CertificateRequired);
        assert!(explain(&e, &LOAD).contains("pass --cert FILE --key FILE"));
        assert!(!explain(&e, &REMOTE_WRITE).contains("--cert"));
    }
}
