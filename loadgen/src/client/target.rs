//! The base URL requests go to, parsed once with an error that says how to write it.

use http::HeaderValue;
use http::uri::{Authority, Scheme};

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
}
