//! `GET /ping`: the cheapest possible request, the baseline for every latency comparison.

/// Liveness of the request path itself.
#[utoipa::path(get, path = "/ping", tag = "traffic",
    responses((status = 200, description = "Always `pong`", body = String, content_type = "text/plain")))]
pub async fn ping() -> &'static str {
    "pong"
}
