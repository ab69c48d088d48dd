//! A failed request and its kind: every error of the client (I/O, hyper, rustls) is mapped to
//! one [`ErrorKind`] (the `kind` label of `loadgen_errors_total`), and a TLS failure's message
//! says what to do ([`super::verify::explain`]).

use std::error::Error as StdError;
use std::time::Duration;

use super::verify;
use crate::model::outcome::ErrorKind;

/// A failed request.
#[derive(Debug, Clone)]
pub struct ClientError {
    pub kind: ErrorKind,
    pub message: String,
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
