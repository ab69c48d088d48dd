//! One accepted connection, from its first byte to its close: which timer closes it and how.
//!
//! hyper 1 has a header-read timeout for HTTP/1, but its clock runs whenever hyper waits for a
//! request head, idle keep-alive time included, so it cannot tell a stalled client from a quiet
//! one, and it has no idle timeout or maximum age at all. So the rules live here, driven by what
//! the connection's [`Activity`] records: requests starting and finishing (from [`ConnService`])
//! and bytes arriving (from [`TrackedIo`]). nginx's split, in effect:
//!
//! - **header read timeout**: from accept (TLS handshake and first request head included), and
//!   from the first byte of every later request head, the head must be complete within it, or
//!   the connection is dropped (a stalled, slowloris-like client gets no answer);
//! - **idle timeout**: no request in flight and no byte of a new one for this long: closed
//!   gracefully (HTTP/1: at once, HTTP/2: GOAWAY);
//! - **maximum age** (jittered per connection, see [`jittered_age`]): past it, the next HTTP/1
//!   response carries `Connection: close` and hyper closes the connection after writing it; an
//!   HTTP/2 connection is sent GOAWAY at once (its in-flight streams finish). An idle HTTP/1
//!   connection is *not* closed at its age: closing it then would race the client's next request
//!   on the wire; the idle timeout ends it if it stays quiet.
//!
//! While requests are in flight, none of these rules fires (the request timeout bounds them).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{HeaderValue, Request, Response, Version, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rand::Rng;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt;
use tower::util::Oneshot;

/// Each connection's maximum age is moved up or down by up to this fraction, at random (gRPC's
/// `MAX_CONNECTION_AGE` jitter): a fleet of clients that connected together does not reconnect
/// together.
pub const AGE_JITTER: f64 = 0.1;

/// How often a connection with a request in flight re-reads its activity: nothing wakes it when
/// the request ends, so it looks again this often (a timer per busy connection per second).
const BUSY_RECHECK: Duration = Duration::from_secs(1);

/// The connection rules, shared by every connection of a listener.
#[derive(Debug, Clone)]
pub struct ConnectionRules {
    pub header_read_timeout: Duration,
    /// `None`: idle connections stay open.
    pub idle_timeout: Option<Duration>,
    /// `None`: connections never age out.
    pub max_age: Option<Duration>,
}

impl ConnectionRules {
    /// This connection's age limit: [`ConnectionRules::max_age`] with jitter.
    pub fn age_limit(&self) -> Option<Duration> {
        self.max_age.map(|age| jittered_age(age, &mut rand::rng()))
    }
}

/// `age` scaled by a uniform factor in `1 ± AGE_JITTER`.
pub fn jittered_age(age: Duration, rng: &mut impl Rng) -> Duration {
    age.mul_f64(rng.random_range((1.0 - AGE_JITTER)..=(1.0 + AGE_JITTER)))
}

const UNKNOWN: u8 = 0;
const HTTP1: u8 = 1;
const HTTP2: u8 = 2;
/// `head_since` when no byte of a next request head has arrived.
const NO_HEAD: u64 = u64::MAX;

/// What a connection did lately, written by its service and its IO, read by its task. Times are
/// nanoseconds since `born`, so they fit in atomics.
#[derive(Debug)]
pub struct Activity {
    born: Instant,
    age_deadline: Option<Instant>,
    in_flight: AtomicU32,
    /// When the connection last went idle (no request in flight).
    idle_since: AtomicU64,
    /// Set while idle until the first byte of a next request arrives.
    awaiting_head: AtomicBool,
    /// When the first byte of the pending request head arrived ([`NO_HEAD`]: none pending).
    head_since: AtomicU64,
    protocol: AtomicU8,
    /// Set once a request has been answered (the first head is no longer pending).
    answered: AtomicBool,
}

/// What a connection's task should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Look again at this instant.
    WaitUntil(Instant),
    /// Nothing to time (idle with no idle timeout).
    Nothing,
    /// Idle past the idle timeout: shut down gracefully.
    Idle,
    /// A request head (or the TLS handshake) took longer than the header read timeout: drop.
    HeadTimeout,
}

impl Activity {
    /// A connection accepted now: its first request head is pending from this instant.
    pub fn new(age_limit: Option<Duration>) -> Self {
        let born = Instant::now();
        Self {
            born,
            age_deadline: age_limit.map(|a| born + a),
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(0),
            awaiting_head: AtomicBool::new(false),
            head_since: AtomicU64::new(0),
            protocol: AtomicU8::new(UNKNOWN),
            answered: AtomicBool::new(false),
        }
    }

    fn since_born(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
    }

    fn at(&self, nanos: u64) -> Instant {
        self.born + Duration::from_nanos(nanos)
    }

    /// Records the protocol the TLS handshake agreed (ALPN) before any request.
    pub fn set_http2(&self, http2: bool) {
        self.protocol
            .store(if http2 { HTTP2 } else { HTTP1 }, Ordering::Relaxed);
    }

    fn is_http1(&self) -> bool {
        self.protocol.load(Ordering::Relaxed) == HTTP1
    }

    fn request_started(&self, http1: bool) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.awaiting_head.store(false, Ordering::Relaxed);
        self.head_since.store(NO_HEAD, Ordering::Relaxed);
        let _ = self.protocol.compare_exchange(
            UNKNOWN,
            if http1 { HTTP1 } else { HTTP2 },
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    fn request_finished(&self) {
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle_since.store(self.since_born(), Ordering::Relaxed);
            self.head_since.store(NO_HEAD, Ordering::Relaxed);
            self.awaiting_head.store(true, Ordering::Relaxed);
        }
        self.answered.store(true, Ordering::Relaxed);
    }

    /// Bytes arrived: while idle, the first ones start the header read timeout.
    fn bytes_read(&self) {
        if self.awaiting_head.load(Ordering::Relaxed)
            && self.awaiting_head.swap(false, Ordering::Relaxed)
        {
            self.head_since.store(self.since_born(), Ordering::Relaxed);
        }
    }

    /// True once the connection is past its (jittered) maximum age.
    fn past_age(&self) -> bool {
        self.age_deadline.is_some_and(|d| Instant::now() >= d)
    }

    fn next(&self, now: Instant, rules: &ConnectionRules) -> Next {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return Next::WaitUntil(now + BUSY_RECHECK);
        }
        let head = self.head_since.load(Ordering::Relaxed);
        // HTTP/2 clients send frames (PING, WINDOW_UPDATE) between requests: bytes on an idle
        // HTTP/2 connection are not a request head in progress.
        let http2 = self.protocol.load(Ordering::Relaxed) == HTTP2;
        if head != NO_HEAD && !(http2 && self.answered.load(Ordering::Relaxed)) {
            let deadline = self.at(head) + rules.header_read_timeout;
            return if now >= deadline {
                Next::HeadTimeout
            } else {
                Next::WaitUntil(deadline)
            };
        }
        match rules.idle_timeout {
            None => Next::Nothing,
            Some(idle) => {
                let deadline = self.at(self.idle_since.load(Ordering::Relaxed)) + idle;
                if now >= deadline {
                    Next::Idle
                } else {
                    Next::WaitUntil(deadline)
                }
            }
        }
    }
}

/// Serves one connection with `router` under `rules` until it closes, or until `shutdown`
/// turns true and its in-flight requests are done (then HTTP/1 closes, HTTP/2 sends GOAWAY).
pub async fn serve<I>(
    io: I,
    activity: Arc<Activity>,
    builder: &auto::Builder<TokioExecutor>,
    router: Router,
    rules: &ConnectionRules,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = ConnService {
        router,
        activity: activity.clone(),
    };
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut age = activity.age_deadline;
    let mut draining = *shutdown.borrow();
    if draining {
        conn.as_mut().graceful_shutdown();
    }
    // Set once this task asked an idle connection to close: past it the connection is dropped
    // (a client that never answers an HTTP/2 GOAWAY must not hold it).
    let mut closing: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let mut wake = match activity.next(now, rules) {
            Next::HeadTimeout => {
                tracing::debug!("request head not complete within the header read timeout");
                return;
            }
            Next::Idle => {
                if closing.is_none() {
                    conn.as_mut().graceful_shutdown();
                    closing = Some(now + rules.header_read_timeout);
                }
                None
            }
            Next::WaitUntil(t) => Some(t),
            Next::Nothing => None,
        };
        for t in [age, closing].into_iter().flatten() {
            wake = Some(wake.map_or(t, |w| w.min(t)));
        }
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = shutdown.changed(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            () = sleep_until(wake) => {
                let now = Instant::now();
                if closing.is_some_and(|c| now >= c) {
                    return;
                }
                if age.is_some_and(|a| now >= a) {
                    age = None;
                    // HTTP/1 gets `Connection: close` on its next response (ConnService).
                    if !activity.is_http1() && !draining && closing.is_none() {
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The router as hyper's service for one connection: records requests in the connection's
/// [`Activity`] and marks the first HTTP/1 response past the maximum age `Connection: close`.
#[derive(Debug, Clone)]
struct ConnService {
    router: Router,
    activity: Arc<Activity>,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ConnFuture;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let http1 = req.version() < Version::HTTP_2;
        self.activity.request_started(http1);
        ConnFuture {
            inner: self.router.clone().oneshot(req),
            request: Some(InFlight(self.activity.clone())),
            http1,
        }
    }
}

/// A request in flight on its connection; dropping it (answered or cancelled) ends it.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

pin_project_lite::pin_project! {
    /// Future of [`ConnService`].
    struct ConnFuture {
        #[pin]
        inner: Oneshot<Router, Request<Incoming>>,
        request: Option<InFlight>,
        http1: bool,
    }
}

impl Future for ConnFuture {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.inner.poll(cx))?;
        if let Some(InFlight(activity)) = this.request.as_ref()
            && *this.http1
            && activity.past_age()
        {
            // hyper sees the header and closes the connection after writing this response.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        this.request.take();
        Poll::Ready(Ok(response))
    }
}

pin_project_lite::pin_project! {
    /// The connection's byte stream, telling its [`Activity`] when bytes arrive.
    pub struct TrackedIo<I> {
        #[pin]
        inner: I,
        activity: Arc<Activity>,
    }
}

impl<I> TrackedIo<I> {
    pub fn new(inner: I, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<I: AsyncRead> AsyncRead for TrackedIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let res = this.inner.poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.bytes_read();
        }
        res
    }
}

impl<I: AsyncWrite> AsyncWrite for TrackedIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rules() -> ConnectionRules {
        ConnectionRules {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(60)),
            max_age: None,
        }
    }

    #[test]
    fn jitter_spreads_ages_within_ten_percent() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let age = Duration::from_secs(100);
        let ages: Vec<Duration> = (0..1000).map(|_| jittered_age(age, &mut rng)).collect();
        let min = *ages.iter().min().unwrap();
        let max = *ages.iter().max().unwrap();
        assert!(min >= Duration::from_secs(90) && max <= Duration::from_secs(110));
        // Spread over most of the window, not bunched: 1000 draws cover 90..110 s widely.
        assert!(max - min > Duration::from_secs(18), "{min:?}..{max:?}");
        let within_one_second = ages
            .iter()
            .filter(|a| a.abs_diff(age) < Duration::from_millis(500))
            .count();
        assert!(
            within_one_second < 100,
            "{within_one_second} of 1000 in the same second"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_connection_must_send_its_first_head_within_the_header_timeout() {
        let a = Activity::new(None);
        let now = Instant::now();
        assert_eq!(
            a.next(now, &rules()),
            Next::WaitUntil(now + Duration::from_secs(10))
        );
        assert_eq!(
            a.next(now + Duration::from_secs(10), &rules()),
            Next::HeadTimeout
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_keep_alive_connection_is_timed_by_the_idle_timeout_until_bytes_arrive() {
        let a = Activity::new(None);
        a.request_started(true);
        assert!(matches!(
            a.next(Instant::now(), &rules()),
            Next::WaitUntil(_)
        ));
        a.request_finished();
        let idle_at = Instant::now();
        tokio::time::advance(Duration::from_secs(30)).await;
        // Quiet for longer than the header timeout: still fine, it is idle, not stalled.
        assert_eq!(
            a.next(Instant::now(), &rules()),
            Next::WaitUntil(idle_at + Duration::from_secs(60))
        );
        // The first byte of a next head starts the header timeout.
        a.bytes_read();
        let head_at = Instant::now();
        assert_eq!(
            a.next(head_at, &rules()),
            Next::WaitUntil(head_at + Duration::from_secs(10))
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(a.next(Instant::now(), &rules()), Next::HeadTimeout);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_past_the_idle_timeout_closes_and_zero_means_never() {
        let a = Activity::new(None);
        a.request_started(false);
        a.request_finished();
        tokio::time::advance(Duration::from_secs(61)).await;
        // HTTP/2 frames on an idle connection do not start the header timeout.
        a.bytes_read();
        assert_eq!(a.next(Instant::now(), &rules()), Next::Idle);
        let never = ConnectionRules {
            idle_timeout: None,
            ..rules()
        };
        assert_eq!(a.next(Instant::now(), &never), Next::Nothing);
    }

    #[tokio::test(start_paused = true)]
    async fn age_is_past_only_after_the_jittered_deadline() {
        let a = Activity::new(Some(Duration::from_secs(5)));
        assert!(!a.past_age());
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(a.past_age());
        assert!(!Activity::new(None).past_age());
    }
}
