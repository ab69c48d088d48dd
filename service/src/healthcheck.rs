//! `workload healthcheck`: probes the local instance's `/healthz` over HTTP/1.1 with the
//! standard library, for container images that ship no curl (Docker HEALTHCHECK). Over TLS
//! ([`probe_tls`](crate::probe_tls)) when the server serves HTTPS, which the same settings say
//! (`--tls-cert` / `WORKLOAD_TLS_CERT`): a plain request to a TLS port only gets an alert back.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Why the probe failed.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("cannot reach {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("no valid HTTP answer from {addr}: {detail}")]
    Protocol { addr: SocketAddr, detail: String },
    #[error("TLS handshake with {addr} failed: {detail}")]
    Tls { addr: SocketAddr, detail: String },
    #[error("{addr}{path} answered {status}")]
    Status {
        addr: SocketAddr,
        path: String,
        status: u16,
    },
}

/// Where to probe for a server bound to `listen`: a wildcard address means loopback.
pub fn probe_target(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Longest wait [`check`] honours; a longer `timeout` (up to `Duration::MAX`) is clamped to it.
/// A day is far beyond any real probe and far from the `Instant` arithmetic limits.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// Shortest wait: socket timeouts of zero are rejected by the OS (or mean "no timeout").
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// How the probe talks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    /// HTTPS without certificate verification ([`probe_tls`](crate::probe_tls)).
    Https,
}

/// GET /healthz on `addr` over plain HTTP; Ok when it answers 200 within `timeout` (clamped to
/// [`MIN_TIMEOUT`]..=[`MAX_TIMEOUT`], so any `Duration` is accepted without panicking).
pub fn check(addr: SocketAddr, timeout: Duration) -> Result<(), HealthError> {
    check_path(addr, "/healthz", timeout, Scheme::Http)
}

/// [`check`] on another path and scheme: the health path of an image that is not the workload,
/// which gets this binary as its healthcheck (docs/own-service.md), or the workload serving
/// HTTPS. `path` must be a valid request target (the CLI checks it: absolute, no whitespace).
pub fn check_path(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
    scheme: Scheme,
) -> Result<(), HealthError> {
    let timeout = timeout.clamp(MIN_TIMEOUT, MAX_TIMEOUT);
    let start = Instant::now();
    // Cannot overflow after the clamp; checked anyway so no future change can bring back a panic.
    let deadline = start.checked_add(timeout);
    let mut tcp = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|source| HealthError::Connect { addr, source })?;
    let remaining = deadline
        .map_or(timeout, |d| d.saturating_duration_since(Instant::now()))
        .max(MIN_TIMEOUT);
    let protocol = |e: std::io::Error| HealthError::Protocol {
        addr,
        detail: e.to_string(),
    };
    tcp.set_read_timeout(Some(remaining)).map_err(protocol)?;
    tcp.set_write_timeout(Some(remaining)).map_err(protocol)?;
    match scheme {
        Scheme::Http => exchange(&mut tcp, addr, path),
        Scheme::Https => {
            let tls = |detail: String| HealthError::Tls { addr, detail };
            let config = crate::probe_tls::client_config().map_err(|e| tls(e.to_string()))?;
            let name = rustls::pki_types::ServerName::from(addr.ip());
            let mut conn =
                rustls::ClientConnection::new(config, name).map_err(|e| tls(e.to_string()))?;
            while conn.is_handshaking() {
                conn.complete_io(&mut tcp).map_err(|e| tls(e.to_string()))?;
            }
            exchange(&mut rustls::Stream::new(&mut conn, &mut tcp), addr, path)
        }
    }
}

/// One GET of `path` on an open connection, judged by the status line.
fn exchange(
    stream: &mut (impl Read + Write),
    addr: SocketAddr,
    path: &str,
) -> Result<(), HealthError> {
    let protocol = |e: std::io::Error| HealthError::Protocol {
        addr,
        detail: e.to_string(),
    };
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: workload-healthcheck\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .map_err(protocol)?;
    // The status line is all we need; read a bounded amount.
    let mut buf = [0u8; 256];
    let mut len = 0;
    while len < buf.len() && !buf[..len].contains(&b'\n') {
        let n = stream.read(&mut buf[len..]).map_err(protocol)?;
        if n == 0 {
            break;
        }
        len += n;
    }
    let status = parse_status_line(&buf[..len]).ok_or_else(|| HealthError::Protocol {
        addr,
        detail: format!(
            "unexpected answer {:?}",
            String::from_utf8_lossy(&buf[..len])
        ),
    })?;
    if status == 200 {
        Ok(())
    } else {
        Err(HealthError::Status {
            addr,
            path: path.to_owned(),
            status,
        })
    }
}

fn parse_status_line(bytes: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(bytes).ok()?.lines().next()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_addresses_become_loopback() {
        assert_eq!(
            probe_target("0.0.0.0:8080".parse().unwrap()),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            probe_target("[::]:81".parse().unwrap()),
            "[::1]:81".parse().unwrap()
        );
        assert_eq!(
            probe_target("10.1.2.3:80".parse().unwrap()),
            "10.1.2.3:80".parse().unwrap()
        );
    }

    #[test]
    fn status_line_parsing() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            parse_status_line(b"HTTP/1.1 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status_line(b""), None);
    }

    /// A one-shot HTTP server on 127.0.0.1 that answers `status` and hands back the request line.
    fn serve_once(status: u16) -> (SocketAddr, std::thread::JoinHandle<String>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 512];
            let n = conn.read(&mut buf).unwrap();
            let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
            conn.write_all(answer.as_bytes()).unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            request.lines().next().unwrap_or_default().to_owned()
        });
        (addr, handle)
    }

    #[test]
    fn another_health_path_is_probed_as_given() {
        let (addr, server) = serve_once(200);
        check_path(
            addr,
            "/actuator/health",
            Duration::from_secs(5),
            Scheme::Http,
        )
        .unwrap();
        assert_eq!(server.join().unwrap(), "GET /actuator/health HTTP/1.1");
    }

    #[test]
    fn a_non_200_answer_names_the_path() {
        let (addr, server) = serve_once(503);
        let err = check_path(addr, "/health", Duration::from_secs(5), Scheme::Http).unwrap_err();
        server.join().unwrap();
        assert!(err.to_string().ends_with("/health answered 503"), "{err}");
    }

    #[test]
    fn nothing_listening_is_an_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        assert!(matches!(
            check(addr, Duration::from_secs(1)),
            Err(HealthError::Connect { .. })
        ));
    }

    #[test]
    fn any_timeout_is_accepted_without_panicking() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        for timeout in [Duration::ZERO, Duration::from_secs(u64::MAX), Duration::MAX] {
            assert!(
                matches!(check(addr, timeout), Err(HealthError::Connect { .. })),
                "{timeout:?}"
            );
        }
    }
}
