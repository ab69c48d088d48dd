//! HTTP/2 through hyper's client: the handshake on an open stream, one request at a time on a
//! connection the workers share (`--http2`), the response read whole with the same body cap as
//! HTTP/1 ([`super::h1::keep`]).

use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http::uri::PathAndQuery;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::{
    ClientError, Conn, Io, Outgoing, Response, SERVED_BY, Sent, Target, Want, classify, h1,
};
use crate::model::outcome::ErrorKind;

/// Completes the HTTP/2 handshake on `io`; the connection is driven by a task of its own.
pub(super) async fn handshake(io: Io, target: Arc<Target>) -> Result<Conn, ClientError> {
    let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| classify("handshake", &e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Conn::H2 { send, target })
}

/// Sends one request on the shared connection and reads the whole response.
pub(super) async fn send(
    send: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    out: &Outgoing,
    want: Want,
) -> Sent {
    // Not ready = the connection is closed or going away (a GOAWAY): nothing of the
    // request was sent, so it may go out on a fresh connection.
    if let Err(e) = send.ready().await {
        return Sent {
            result: Err(classify("request", &e)),
            reusable: false,
            unsent: true,
        };
    }
    let result = match request(out, target) {
        Ok(req) => match send.send_request(req).await {
            Ok(resp) => read_response(resp, want).await,
            Err(e) => Err(classify("request", &e)),
        },
        Err(e) => Err(e),
    };
    let reusable = !send.is_closed();
    Sent {
        result,
        reusable,
        unsent: false,
    }
}

/// `out` as a request for hyper's HTTP/2 client.
fn request(out: &Outgoing, target: &Target) -> Result<Request<Full<Bytes>>, ClientError> {
    let bad = |e: String| ClientError {
        kind: ErrorKind::Other,
        message: format!("request: {e}"),
    };
    let pq = PathAndQuery::try_from(out.path.as_str()).map_err(|e| bad(e.to_string()))?;
    let uri = http::Uri::builder()
        .scheme(target.scheme.clone())
        .authority(target.authority.clone())
        .path_and_query(pq)
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let mut b = Request::builder().method(out.method.clone()).uri(uri);
    for (name, value) in &out.headers {
        b = b.header(name, value);
    }
    b.body(Full::new(out.body.clone()))
        .map_err(|e| bad(e.to_string()))
}

/// The response, read whole (its body kept only when asked for, and capped as HTTP/1's).
async fn read_response(
    resp: http::Response<Incoming>,
    want: Want,
) -> Result<Response, ClientError> {
    let (parts, mut body) = resp.into_parts();
    let mut len = 0u64;
    let mut kept: Option<bytes::BytesMut> = want.body.then(bytes::BytesMut::new);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            let mut c = classify("body", &e);
            if c.kind == ErrorKind::Other || c.kind == ErrorKind::Reset {
                c.kind = ErrorKind::Body;
            }
            c
        })?;
        if let Ok(data) = frame.into_data() {
            len += data.len() as u64;
            h1::keep(&mut kept, &data)?;
        }
    }
    let served_by = parts
        .headers
        .get(SERVED_BY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok(Response {
        status: parts.status.as_u16(),
        headers: want.headers.then(|| Box::new(parts.headers)),
        served_by,
        body: kept.map(|k| k.freeze()),
        body_len: len,
    })
}
