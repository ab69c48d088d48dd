//! Captures: values taken from a response into the user's variables (`task_id: $.id`).
//!
//! Sources: a JSON path into the body (`$`, `$.id`, `$.items[0].id`, `$["odd key"]`), or a response
//! header (`header:location`).

use serde_json::Value;

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Where a captured value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Json(Vec<Seg>),
    Header(http::HeaderName),
}

/// `name <- source`.
#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    pub var: String,
    pub source: Source,
    /// As written, for messages.
    pub expr: String,
}

impl Capture {
    /// Parses a capture expression for variable `var`.
    pub fn parse(var: &str, expr: &str) -> Result<Self, String> {
        if !super::template::is_ident(var) {
            return Err(format!(
                "invalid capture variable name {var:?}: use letters, digits, _ and -"
            ));
        }
        let e = expr.trim();
        let source = if let Some(h) = e.strip_prefix("header:") {
            Source::Header(
                http::HeaderName::from_bytes(h.trim().as_bytes())
                    .map_err(|_| format!("invalid header name in capture {expr:?}"))?,
            )
        } else {
            Source::Json(parse_path(e)?)
        };
        Ok(Self {
            var: var.to_string(),
            source,
            expr: e.to_string(),
        })
    }

    /// True when the capture needs the response body.
    pub fn needs_body(&self) -> bool {
        matches!(self.source, Source::Json(_))
    }

    /// True when the capture needs the response headers.
    pub fn needs_headers(&self) -> bool {
        matches!(self.source, Source::Header(_))
    }

    /// Extracts the value; strings come out unquoted, other JSON values as compact JSON.
    pub fn extract(
        &self,
        headers: Option<&http::HeaderMap>,
        body: Option<&Value>,
    ) -> Option<String> {
        match &self.source {
            Source::Header(h) => headers?.get(h)?.to_str().ok().map(str::to_string),
            Source::Json(path) => {
                let mut v = body?;
                for seg in path {
                    v = match seg {
                        Seg::Key(k) => v.get(k.as_str())?,
                        Seg::Index(i) => v.get(*i)?,
                    };
                }
                match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Null => None,
                    other => Some(other.to_string()),
                }
            }
        }
    }
}

fn parse_path(e: &str) -> Result<Vec<Seg>, String> {
    let bad = |why: &str| {
        format!(
            "invalid JSON path {e:?}: {why} (write e.g. $.id, $.items[0].id or header:location)"
        )
    };
    let mut rest = e
        .strip_prefix('$')
        .ok_or_else(|| bad("must start with $"))?;
    let mut segs = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            if key.is_empty() {
                return Err(bad("empty key"));
            }
            segs.push(Seg::Key(key.to_string()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| bad("unclosed ["))?;
            let inner = r[..end].trim();
            if let Some(q) = inner
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .or_else(|| inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
            {
                segs.push(Seg::Key(q.to_string()));
            } else {
                let i: usize = inner.parse().map_err(|_| bad("index must be a number"))?;
                segs.push(Seg::Index(i));
            }
            rest = &r[end + 1..];
        } else {
            return Err(bad("expected . or ["));
        }
    }
    Ok(segs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths() {
        let body: Value =
            serde_json::json!({"id": "t1", "n": 5, "items": [{"id": 9}], "a b": true});
        let h = http::HeaderMap::new();
        let get = |p: &str| {
            Capture::parse("v", p)
                .unwrap()
                .extract(Some(&h), Some(&body))
        };
        assert_eq!(get("$.id").as_deref(), Some("t1"));
        assert_eq!(get("$.n").as_deref(), Some("5"));
        assert_eq!(get("$.items[0].id").as_deref(), Some("9"));
        assert_eq!(get("$[\"a b\"]").as_deref(), Some("true"));
        assert_eq!(get("$.missing"), None);
        assert!(Capture::parse("v", "id").is_err());
        assert!(Capture::parse("v", "$.a[").is_err());
        assert!(Capture::parse("v", "$..a").is_err());
        assert!(Capture::parse("1v", "$.a").is_err());
    }

    #[test]
    fn header_capture() {
        let mut h = http::HeaderMap::new();
        h.insert("location", "/tasks/1".parse().unwrap());
        let c = Capture::parse("loc", "header:Location").unwrap();
        assert_eq!(c.extract(Some(&h), None).as_deref(), Some("/tasks/1"));
        assert!(!c.needs_body());
    }
}
