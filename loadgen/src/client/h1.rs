//! HTTP/1.1 on the wire: one connection, one request at a time, written and parsed here.
//!
//! Why not hyper's client connection: profiled closed loop against `/ping` (64 connections, one
//! thread), hyper's dispatcher cost loadgen about 2.7 µs of user CPU per request against wrk's
//! 0.5 µs, in the request channel, the response oneshot, the body channel, a `HeaderMap` built
//! for every response and the moves of large request and envelope structs between them; the
//! kernel's share was the same for both. A load generator needs none of that machinery: each
//! worker owns its connection and waits for its one response, so this writes the request with
//! one `write` from a reused buffer and parses the response in place with `httparse` (the parser
//! hyper uses), copying nothing that is not asked for. HTTP/2 stays on hyper.
//!
//! What it reads: status line and headers (at most [`MAX_HEAD`] bytes and [`MAX_HEADERS`]
//! headers), informational 1xx answers skipped, a body framed by `Transfer-Encoding: chunked`,
//! `Content-Length` or the end of the connection, none for HEAD, 204 and 304. A connection is
//! reused only when the response said nothing against it and ended exactly at its framing.

use std::io::Write as _;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Waker};

use bytes::{Buf, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::{ClientError, Outgoing, Response, Sent, classify};
use crate::model::outcome::ErrorKind;

/// Largest response head (status line and headers) accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// Most response headers accepted (hyper's default too).
pub const MAX_HEADERS: usize = 100;
/// Largest body kept for captures; a larger one is an error, not an unbounded allocation.
pub const MAX_KEPT_BODY: usize = 16 * 1024 * 1024;
/// Read buffer kept free before each read.
const READ_RESERVE: usize = 16 * 1024;
/// Longest chunk-size line or trailer section accepted.
const MAX_CHUNK_LINE: usize = 4 * 1024;

/// Header naming the backend that served a response.
pub const SERVED_BY: &str = "x-served-by";

/// What the caller needs of a response beyond its status and length.
#[derive(Debug, Clone, Copy, Default)]
pub struct Want {
    /// Keep the body (JSON captures).
    pub body: bool,
    /// Keep every header (header captures); otherwise only the backend's name is kept.
    pub headers: bool,
}

/// One HTTP/1.1 connection.
pub struct Connection<S> {
    io: S,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    Close,
}

/// What the head of a response said.
struct Head {
    status: u16,
    framing: Framing,
    /// Nothing in the head forbids reuse (the framing used decides too).
    keep_alive: bool,
    served_by: Option<String>,
    headers: Option<Box<HeaderMap>>,
}

fn err(kind: ErrorKind, message: impl Into<String>) -> ClientError {
    ClientError {
        kind,
        message: message.into(),
    }
}

fn closed_early(stage: &str) -> ClientError {
    err(
        ErrorKind::Reset,
        format!("{stage}: connection closed by the server before the response was complete"),
    )
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn new(io: S) -> Self {
        Self {
            io,
            rbuf: BytesMut::with_capacity(READ_RESERVE),
            wbuf: Vec::with_capacity(512),
        }
    }

    /// True when the idle connection can no longer carry a request: the server closed it,
    /// reset it or sent something unasked (such as a 408 before closing). Costs no system
    /// call unless the event loop saw the socket become readable since the last response.
    fn gone_while_idle(&mut self) -> bool {
        if !self.rbuf.is_empty() {
            return true;
        }
        let mut cx = Context::from_waker(Waker::noop());
        let mut probe = [0u8; 1];
        let mut buf = ReadBuf::new(&mut probe);
        // Ready with an end of stream, data or an error: whichever, not usable.
        Pin::new(&mut self.io)
            .poll_read(&mut cx, &mut buf)
            .is_ready()
    }

    /// Sends `out` and reads its whole response.
    pub async fn exchange(&mut self, host: &HeaderValue, out: &Outgoing, want: Want) -> Sent {
        if self.gone_while_idle() {
            return Sent {
                result: Err(err(
                    ErrorKind::Reset,
                    "request: connection closed by the server while idle",
                )),
                reusable: false,
                unsent: true,
            };
        }
        self.wbuf.clear();
        write_request(&mut self.wbuf, host, out);
        if let Err((e, written)) = self.write_all().await {
            return Sent {
                result: Err(classify("request", &e)),
                reusable: false,
                unsent: written == 0,
            };
        }
        let head_only = out.method == Method::HEAD;
        match self.read_response(head_only, want).await {
            Ok((resp, keep_alive)) => {
                // Bytes past the response's framing: the stream can no longer be trusted.
                let reusable = keep_alive && !out.close && self.rbuf.is_empty();
                Sent {
                    result: Ok(resp),
                    reusable,
                    unsent: false,
                }
            }
            Err(e) => Sent {
                result: Err(e),
                reusable: false,
                unsent: false,
            },
        }
    }

    /// Writes the whole buffer; on failure also says how many bytes went out.
    async fn write_all(&mut self) -> Result<(), (std::io::Error, usize)> {
        let mut written = 0;
        while written < self.wbuf.len() {
            match self.io.write(&self.wbuf[written..]).await {
                Ok(0) => {
                    return Err((std::io::ErrorKind::WriteZero.into(), written));
                }
                Ok(n) => written += n,
                Err(e) => return Err((e, written)),
            }
        }
        self.io.flush().await.map_err(|e| (e, written))
    }

    /// Reads more bytes into the buffer; false at the end of the stream.
    async fn fill(&mut self, stage: &str) -> Result<bool, ClientError> {
        if self.rbuf.is_empty() {
            // Back to the start of the buffer: otherwise each response lands a little further
            // into it, and with hundreds of connections the read buffers' working set outgrows
            // the CPU's caches (at 256 connections loadgen's user time per request went from
            // 1.49-1.58 to 1.30-1.42 µs with this; no change at 64).
            let _ = self.rbuf.try_reclaim(READ_RESERVE);
        } else if self.rbuf.capacity() - self.rbuf.len() < READ_RESERVE / 4 {
            self.rbuf.reserve(READ_RESERVE);
        }
        let n = self
            .io
            .read_buf(&mut self.rbuf)
            .await
            .map_err(|e| classify(stage, &e))?;
        Ok(n > 0)
    }

    async fn read_response(
        &mut self,
        head_only: bool,
        want: Want,
    ) -> Result<(Response, bool), ClientError> {
        let head = loop {
            match parse_head(&self.rbuf, want.headers)? {
                Some((n, head)) => {
                    self.rbuf.advance(n);
                    // 1xx answers (100 Continue, 103 Early Hints) precede the real one.
                    if (100..200).contains(&head.status) && head.status != 101 {
                        continue;
                    }
                    break head;
                }
                None => {
                    if self.rbuf.len() >= MAX_HEAD {
                        return Err(err(
                            ErrorKind::Other,
                            format!("response: head larger than {} KiB", MAX_HEAD / 1024),
                        ));
                    }
                    if !self.fill("response").await? {
                        return Err(closed_early("response"));
                    }
                }
            }
        };
        if head.status == 101 {
            return Err(err(
                ErrorKind::Other,
                "response: 101 Switching Protocols to a request that asked for no upgrade",
            ));
        }
        let framing = if head_only || head.status == 204 || head.status == 304 {
            Framing::None
        } else {
            head.framing
        };
        let mut kept = want.body.then(BytesMut::new);
        let body_len = match framing {
            Framing::None => 0,
            Framing::Length(n) => {
                self.take(n, &mut kept).await?;
                n
            }
            Framing::Chunked => self.read_chunked(&mut kept).await?,
            Framing::Close => self.read_to_close(&mut kept).await?,
        };
        let keep_alive = head.keep_alive && framing != Framing::Close;
        Ok((
            Response {
                status: head.status,
                headers: head.headers,
                served_by: head.served_by,
                body: kept.map(BytesMut::freeze),
                body_len,
            },
            keep_alive,
        ))
    }

    /// Consumes `n` body bytes, keeping them when asked.
    async fn take(&mut self, mut n: u64, kept: &mut Option<BytesMut>) -> Result<(), ClientError> {
        while n > 0 {
            if self.rbuf.is_empty() && !self.fill("body").await? {
                return Err(closed_early("body"));
            }
            let k = (self.rbuf.len() as u64).min(n) as usize;
            keep(kept, &self.rbuf[..k])?;
            self.rbuf.advance(k);
            n -= k as u64;
        }
        Ok(())
    }

    async fn read_chunked(&mut self, kept: &mut Option<BytesMut>) -> Result<u64, ClientError> {
        let mut total = 0u64;
        loop {
            let size = loop {
                match httparse::parse_chunk_size(&self.rbuf) {
                    Ok(httparse::Status::Complete((n, size))) => {
                        self.rbuf.advance(n);
                        break size;
                    }
                    Ok(httparse::Status::Partial) if self.rbuf.len() < MAX_CHUNK_LINE => {
                        if !self.fill("body").await? {
                            return Err(closed_early("body"));
                        }
                    }
                    _ => return Err(err(ErrorKind::Body, "body: invalid chunk size line")),
                }
            };
            if size == 0 {
                self.skip_trailers().await?;
                return Ok(total);
            }
            self.take(size, kept).await?;
            total = total.saturating_add(size);
            self.expect_crlf().await?;
        }
    }

    async fn expect_crlf(&mut self) -> Result<(), ClientError> {
        while self.rbuf.len() < 2 {
            if !self.fill("body").await? {
                return Err(closed_early("body"));
            }
        }
        if &self.rbuf[..2] != b"\r\n" {
            return Err(err(ErrorKind::Body, "body: chunk not followed by CRLF"));
        }
        self.rbuf.advance(2);
        Ok(())
    }

    /// Skips the trailer section after the last chunk, up to its empty line.
    async fn skip_trailers(&mut self) -> Result<(), ClientError> {
        let mut seen = 0usize;
        loop {
            match self.rbuf.windows(2).position(|w| w == b"\r\n") {
                Some(0) => {
                    self.rbuf.advance(2);
                    return Ok(());
                }
                Some(i) => {
                    seen += i + 2;
                    self.rbuf.advance(i + 2);
                }
                None => {
                    if seen + self.rbuf.len() > MAX_CHUNK_LINE {
                        return Err(err(ErrorKind::Body, "body: trailer section too large"));
                    }
                    if !self.fill("body").await? {
                        return Err(closed_early("body"));
                    }
                }
            }
        }
    }

    async fn read_to_close(&mut self, kept: &mut Option<BytesMut>) -> Result<u64, ClientError> {
        let mut total = 0u64;
        loop {
            let k = self.rbuf.len();
            keep(kept, &self.rbuf[..k])?;
            self.rbuf.advance(k);
            total += k as u64;
            if !self.fill("body").await? {
                return Ok(total);
            }
        }
    }
}

/// Appends to the kept body (when one is kept), refusing to grow it past [`MAX_KEPT_BODY`].
pub(super) fn keep(kept: &mut Option<BytesMut>, bytes: &[u8]) -> Result<(), ClientError> {
    if let Some(k) = kept {
        if k.len() + bytes.len() > MAX_KEPT_BODY {
            return Err(err(
                ErrorKind::Body,
                format!(
                    "body: larger than {} MiB, too large to capture from",
                    MAX_KEPT_BODY / (1024 * 1024)
                ),
            ));
        }
        k.extend_from_slice(bytes);
    }
    Ok(())
}

/// Serializes the request line, headers and body.
fn write_request(buf: &mut Vec<u8>, host: &HeaderValue, out: &Outgoing) {
    buf.extend_from_slice(out.method.as_str().as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(out.path.as_bytes());
    buf.extend_from_slice(b" HTTP/1.1\r\n");
    // A scenario's own Host header (a virtual host behind an address) replaces the target's.
    if !out.headers.iter().any(|(n, _)| n == header::HOST) {
        buf.extend_from_slice(b"host: ");
        buf.extend_from_slice(host.as_bytes());
        buf.extend_from_slice(b"\r\n");
    }
    for (name, value) in &out.headers {
        // The body's framing is the client's: a scenario's length could only contradict it.
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        buf.extend_from_slice(name.as_str().as_bytes());
        buf.extend_from_slice(b": ");
        buf.extend_from_slice(value.as_bytes());
        buf.extend_from_slice(b"\r\n");
    }
    // Like hyper: a length whenever there is a body or the method defines one.
    let has_body_semantics = !matches!(
        out.method,
        Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS | Method::CONNECT
    );
    if !out.body.is_empty() || has_body_semantics {
        buf.extend_from_slice(b"content-length: ");
        let _ = write!(buf, "{}\r\n", out.body.len());
    }
    if out.close {
        buf.extend_from_slice(b"connection: close\r\n");
    }
    buf.extend_from_slice(b"\r\n");
    buf.extend_from_slice(&out.body);
}

/// Parses a complete head at the start of `buf`: None while it is incomplete.
fn parse_head(buf: &[u8], all_headers: bool) -> Result<Option<(usize, Head)>, ClientError> {
    if buf.is_empty() {
        return Ok(None);
    }
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let n = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut resp,
        buf,
        &mut storage,
    ) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(err(
                ErrorKind::Other,
                format!("response: more than {MAX_HEADERS} headers"),
            ));
        }
        Err(e) => {
            return Err(err(
                ErrorKind::Other,
                format!("response: invalid head: {e}"),
            ));
        }
    };
    let status = resp.code.unwrap_or(0);
    let http10 = resp.version == Some(0);
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut other_coding = false;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut served_by = None;
    let mut headers = all_headers.then(|| Box::new(HeaderMap::new()));
    for h in resp.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| err(ErrorKind::Other, "response: invalid Content-Length"))?;
            if length.is_some_and(|l| l != v) {
                return Err(err(
                    ErrorKind::Other,
                    "response: conflicting Content-Length headers",
                ));
            }
            length = Some(v);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked only when it is the last coding; any other ends at the close.
            chunked = h
                .value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            other_coding = !chunked;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let t = token.trim_ascii();
                close |= t.eq_ignore_ascii_case(b"close");
                keep_alive_token |= t.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(SERVED_BY) {
            served_by = std::str::from_utf8(h.value).ok().map(str::to_string);
        }
        if let Some(headers) = headers.as_mut()
            && let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(h.value),
            )
        {
            headers.append(n, v);
        }
    }
    let framing = match (chunked, other_coding, length) {
        (true, _, _) => Framing::Chunked,
        (false, true, _) | (false, false, None) => Framing::Close,
        (false, false, Some(l)) => Framing::Length(l),
    };
    // Both framings at once: RFC 9112 section 6.1 has chunked win and the connection close after.
    let forbids_reuse = close || (http10 && !keep_alive_token) || (chunked && length.is_some());
    Ok(Some((
        n,
        Head {
            status,
            framing,
            keep_alive: !forbids_reuse,
            served_by,
            headers,
        },
    )))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream, duplex};

    use super::*;

    fn get(path: &str) -> Outgoing {
        Outgoing {
            method: Method::GET,
            path: path.into(),
            ..Outgoing::default()
        }
    }

    fn host() -> HeaderValue {
        HeaderValue::from_static("example.test:8080")
    }

    const BODY: Want = Want {
        body: true,
        headers: false,
    };

    /// Runs one exchange against a peer that reads the request, answers `response` in pieces
    /// of `piece` bytes and then closes or stays open; returns what the client wrote.
    async fn exchange_with(
        out: &Outgoing,
        want: Want,
        response: &[u8],
        piece: usize,
        close_after: bool,
    ) -> (Sent, Vec<u8>) {
        let (client, mut server) = duplex(1 << 20);
        let mut conn = Connection::new(client);
        let response = response.to_vec();
        let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
        let peer = tokio::spawn(async move {
            let mut seen = vec![0u8; 4096];
            let n = server.read(&mut seen).await.unwrap();
            seen.truncate(n);
            let _ = seen_tx.send(seen);
            for p in response.chunks(piece.max(1)) {
                if server.write_all(p).await.is_err() {
                    return None;
                }
                tokio::task::yield_now().await;
            }
            (!close_after).then_some(server)
        });
        let x = conn.exchange(&host(), out, want).await;
        let seen = seen_rx.await.unwrap();
        drop(peer.await.unwrap());
        (x, seen)
    }

    #[tokio::test]
    async fn a_get_goes_out_as_one_http11_request_with_host_and_headers() {
        let mut out = get("/api/v1/items?page=2");
        out.headers.push((
            HeaderName::from_static("x-test"),
            HeaderValue::from_static("1"),
        ));
        let resp = b"HTTP/1.1 204 No Content\r\n\r\n";
        let (x, wire) = exchange_with(&out, Want::default(), resp, 64, false).await;
        assert_eq!(
            String::from_utf8(wire).unwrap(),
            "GET /api/v1/items?page=2 HTTP/1.1\r\nhost: example.test:8080\r\nx-test: 1\r\n\r\n"
        );
        assert_eq!(x.result.unwrap().status, 204);
        assert!(x.reusable);
    }

    #[tokio::test]
    async fn a_post_carries_its_length_and_a_close_request_says_so() {
        let mut out = get("/items");
        out.method = Method::POST;
        out.body = bytes::Bytes::from_static(b"{\"n\":1}");
        out.close = true;
        let resp = b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n";
        let (x, wire) = exchange_with(&out, Want::default(), resp, 64, false).await;
        assert_eq!(
            String::from_utf8(wire).unwrap(),
            "POST /items HTTP/1.1\r\nhost: example.test:8080\r\ncontent-length: 7\r\n\
             connection: close\r\n\r\n{\"n\":1}"
        );
        assert_eq!(x.result.unwrap().status, 201);
        assert!(!x.reusable, "the client asked to close");
    }

    #[tokio::test]
    async fn a_scenario_host_replaces_the_targets_and_its_own_length_is_not_sent() {
        let mut out = get("/");
        out.method = Method::POST;
        out.body = bytes::Bytes::from_static(b"abc");
        for (name, value) in [("host", "api.example"), ("content-length", "99")] {
            out.headers.push((
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            ));
        }
        let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        let (_, wire) = exchange_with(&out, Want::default(), resp, 64, false).await;
        assert_eq!(
            String::from_utf8(wire).unwrap(),
            "POST / HTTP/1.1\r\nhost: api.example\r\ncontent-length: 3\r\n\r\nabc"
        );
    }

    #[tokio::test]
    async fn a_length_framed_body_read_a_byte_at_a_time_is_counted_and_kept_when_asked() {
        let resp =
            b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-Served-By: pod-a\r\nETag: 7\r\n\r\n\
                     hello world";
        let want = Want {
            body: true,
            headers: true,
        };
        let (x, _) = exchange_with(&get("/"), want, resp, 1, false).await;
        let r = x.result.unwrap();
        assert_eq!((r.status, r.body_len), (200, 11));
        assert_eq!(r.body.as_deref(), Some(&b"hello world"[..]));
        assert_eq!(r.served_by.as_deref(), Some("pod-a"));
        assert_eq!(r.headers.unwrap().get("etag").unwrap(), "7");
        assert!(x.reusable);
    }

    #[tokio::test]
    async fn without_captures_only_the_backend_is_kept_of_the_headers() {
        let resp =
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-served-by: pod-b\r\netag: 7\r\n\r\nok";
        let (x, _) = exchange_with(&get("/"), Want::default(), resp, 64, false).await;
        let r = x.result.unwrap();
        assert!(r.headers.is_none());
        assert!(r.body.is_none());
        assert_eq!((r.body_len, r.served_by.as_deref()), (2, Some("pod-b")));
    }

    #[tokio::test]
    async fn a_chunked_body_with_extensions_and_trailers_is_read_to_its_end() {
        let resp = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
                     5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n";
        for piece in [1, 3, 1000] {
            let (x, _) = exchange_with(&get("/"), BODY, resp, piece, false).await;
            let r = x.result.unwrap();
            assert_eq!(
                r.body.as_deref(),
                Some(&b"hello world"[..]),
                "piece {piece}"
            );
            assert_eq!(r.body_len, 11);
            assert!(x.reusable, "piece {piece}");
        }
    }

    #[tokio::test]
    async fn informational_answers_are_skipped() {
        let resp = b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n\
                     HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        let (x, _) = exchange_with(&get("/"), Want::default(), resp, 7, false).await;
        assert_eq!(x.result.unwrap().status, 200);
        assert!(x.reusable);
    }

    #[tokio::test]
    async fn a_body_without_framing_ends_at_the_close_and_the_connection_is_not_reused() {
        let resp = b"HTTP/1.1 200 OK\r\n\r\nuntil the end";
        let (x, _) = exchange_with(&get("/"), BODY, resp, 4, true).await;
        let r = x.result.unwrap();
        assert_eq!(r.body.as_deref(), Some(&b"until the end"[..]));
        assert!(!x.reusable);
    }

    #[tokio::test]
    async fn head_204_and_304_have_no_body_whatever_their_length_says() {
        let mut head = get("/");
        head.method = Method::HEAD;
        let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 500\r\n\r\n";
        let (x, _) = exchange_with(&head, Want::default(), resp, 64, false).await;
        assert_eq!(x.result.unwrap().body_len, 0);
        assert!(x.reusable);
        let resp = b"HTTP/1.1 304 Not Modified\r\ncontent-length: 500\r\n\r\n";
        let (x, _) = exchange_with(&get("/"), Want::default(), resp, 64, false).await;
        assert_eq!(x.result.unwrap().status, 304);
        assert!(x.reusable);
    }

    #[tokio::test]
    async fn what_forbids_reuse_is_honoured() {
        let cases: [(&[u8], &str); 5] = [
            (
                b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
                "close",
            ),
            (
                b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\ncontent-length: 0\r\n\r\n",
                "a close token in a list",
            ),
            (b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n", "HTTP/1.0"),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\nHTTP/1.1 200 OK\r\n",
                "bytes past the response",
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n0\r\n\r\n",
                "both framings",
            ),
        ];
        for (resp, why) in cases {
            let (x, _) = exchange_with(&get("/"), Want::default(), resp, 1000, false).await;
            assert!(x.result.is_ok(), "{why}: {:?}", x.result);
            assert!(!x.reusable, "{why}");
        }
        let resp = b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n";
        let (x, _) = exchange_with(&get("/"), Want::default(), resp, 1000, false).await;
        assert!(x.reusable, "HTTP/1.0 with keep-alive");
    }

    #[tokio::test]
    async fn broken_responses_are_errors_of_their_kind_never_a_hang() {
        let early = "before the response was complete";
        let cases: [(&[u8], ErrorKind, &str); 9] = [
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
                ErrorKind::Reset,
                early,
            ),
            (b"HTTP/1.1 200 OK\r\ncontent-len", ErrorKind::Reset, early),
            (b"", ErrorKind::Reset, early),
            (b"SSH-2.0-OpenSSH\r\n\r\n", ErrorKind::Other, "invalid head"),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: ten\r\n\r\n",
                ErrorKind::Other,
                "Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
                ErrorKind::Other,
                "conflicting",
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
                ErrorKind::Body,
                "chunk size",
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabc\r\n",
                ErrorKind::Body,
                "CRLF",
            ),
            (
                b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
                ErrorKind::Other,
                "101",
            ),
        ];
        for (resp, kind, text) in cases {
            let (x, _) = exchange_with(&get("/"), Want::default(), resp, 1000, true).await;
            let e = x.result.expect_err(text);
            assert_eq!(e.kind, kind, "{}", e.message);
            assert!(e.message.contains(text), "{}", e.message);
            assert!(!x.reusable && !x.unsent);
        }
    }

    #[tokio::test]
    async fn a_head_past_the_limits_is_refused_without_growing_further() {
        let mut resp = b"HTTP/1.1 200 OK\r\nx-big: ".to_vec();
        resp.resize(MAX_HEAD + 10, b'a');
        let (x, _) = exchange_with(&get("/"), Want::default(), &resp, 4096, false).await;
        let e = x.result.unwrap_err();
        assert!(
            e.message.contains("head larger than 64 KiB"),
            "{}",
            e.message
        );
        let mut resp = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            resp.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
        }
        resp.extend_from_slice(b"content-length: 0\r\n\r\n");
        let (x, _) = exchange_with(&get("/"), Want::default(), &resp, 4096, false).await;
        let e = x.result.unwrap_err();
        assert!(e.message.contains("more than 100 headers"), "{}", e.message);
    }

    #[tokio::test]
    async fn a_body_too_large_to_capture_is_an_error_but_an_uncaptured_one_is_only_counted() {
        let len = MAX_KEPT_BODY + 1;
        let mut resp = format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n").into_bytes();
        resp.resize(resp.len() + len, b'a');
        let (x, _) = exchange_with(&get("/"), BODY, &resp, 1 << 16, false).await;
        assert_eq!(x.result.unwrap_err().kind, ErrorKind::Body);
        let (x, _) = exchange_with(&get("/"), Want::default(), &resp, 1 << 16, false).await;
        assert_eq!(x.result.unwrap().body_len, len as u64);
    }

    /// A peer that answers one request and then closes the kept-alive connection while the
    /// client is idle, as servers do at their keep-alive timeout.
    fn idle_closed() -> (Connection<DuplexStream>, tokio::task::JoinHandle<()>) {
        let (client, mut server) = duplex(4096);
        let peer = tokio::spawn(async move {
            let mut b = [0u8; 4096];
            let _ = server.read(&mut b).await.unwrap();
            server
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
        });
        (Connection::new(client), peer)
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_hands_the_request_back_unsent() {
        let (mut conn, peer) = idle_closed();
        let first = conn.exchange(&host(), &get("/"), Want::default()).await;
        assert!(first.result.is_ok() && first.reusable);
        peer.await.unwrap();
        let second = conn.exchange(&host(), &get("/"), Want::default()).await;
        assert!(second.unsent, "{:?}", second.result);
        assert!(!second.reusable);
    }
}
