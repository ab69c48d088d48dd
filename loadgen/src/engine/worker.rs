//! A worker: owns a connection and runs iterations (one flow of the scenario each).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::sink::Sinks;
use super::{Opened, Shared};
use crate::client::{ClientError, Outgoing, Response, Sent, Want, timeout_error};
use crate::lifetime::CloseReason;
use crate::metrics::{CounterCache, MetricsSink};
use crate::model::outcome::{Failure, Outcome, OutcomeSink};
use crate::scenario::Step;
use crate::scenario::template::RenderCtx;
use crate::stats::ShardSink;

pub struct Worker {
    pub id: usize,
    sh: Arc<Shared>,
    conn: Option<Held>,
    /// Whether this worker has had a connection (a new one is then a reconnect).
    connected_before: bool,
    rng: SmallRng,
    vars: HashMap<String, String>,
    iteration: u64,
    path: String,
    scratch: String,
    /// The request being sent, its buffers reused from one request to the next.
    out: Outgoing,
    /// The request timeout's timer, kept from one request to the next (see [`expire`]).
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// This worker's handles of the Prometheus counters.
    counters: CounterCache,
}

/// The worker's connection and what counts toward its lifetime.
struct Held {
    opened: Opened,
    requests: u64,
}

impl Worker {
    pub fn new(id: usize, sh: Arc<Shared>) -> Self {
        let vars = sh.scenario.variables.clone();
        Self {
            id,
            sh,
            conn: None,
            connected_before: false,
            rng: SmallRng::from_rng(&mut rand::rng()),
            vars,
            iteration: 0,
            path: String::with_capacity(128),
            scratch: String::new(),
            out: Outgoing::default(),
            timer: None,
            counters: CounterCache::default(),
        }
    }

    /// Runs one iteration. `intended` is the scheduled start (open loop); latency of the first
    /// request is measured from it, later steps of a flow from their own send.
    pub async fn iteration(&mut self, intended: Option<Instant>) {
        let sh = Arc::clone(&self.sh);
        let flow_idx = if sh.scenario.flows.len() == 1 {
            0
        } else {
            let r = self.rng.random_range(0..sh.scenario.total_weight());
            sh.scenario.pick(r)
        };
        let flow = &sh.scenario.flows[flow_idx];
        sh.in_flight.fetch_add(1, Ordering::Relaxed);
        let mut intended = intended;
        for step in &flow.steps {
            let ok = self.step(step, intended.take()).await;
            if !ok {
                break;
            }
        }
        sh.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.iteration += 1;
        sh.stats.record_iteration(self.id);
    }

    /// One request; returns whether the flow may continue.
    async fn step(&mut self, step: &Step, intended: Option<Instant>) -> bool {
        let sh = Arc::clone(&self.sh);
        // Render everything before the clock starts.
        let mut out = std::mem::take(&mut self.out);
        let trace = match self.build(step, &mut out) {
            Ok(trace) => trace,
            Err(msg) => {
                // A missing variable or invalid rendering: nothing goes on the wire, so this is
                // no request (no latency, no throughput), only a `template` error of the endpoint.
                self.out = out;
                sh.note_error(&msg);
                sh.stats
                    .record_unsent(self.id, step.endpoint, Failure::Template);
                return false;
            }
        };
        let sent_at = Instant::now();
        let cold = sh.cold_starts.as_deref().and_then(|c| c.on_send(sent_at));
        let deadline = tokio::time::Instant::from_std(sent_at) + sh.timeout;
        let mut timer = self
            .timer
            .take()
            .unwrap_or_else(|| Box::pin(tokio::time::sleep_until(deadline)));
        let result = tokio::select! {
            biased;
            r = self.exchange(&out, step.wants(), sent_at) => Some(r),
            () = expire(timer.as_mut(), deadline) => None,
        };
        let done = Instant::now();
        self.timer = Some(timer);
        self.out = out;
        let result = match result {
            Some(Ok(sent)) => {
                self.settle(&sent, done);
                sent.result
            }
            Some(Err(e)) => Err(e),
            None => {
                self.close(CloseReason::Error);
                Err(timeout_error(sh.timeout))
            }
        };
        let service_us = done.duration_since(sent_at).as_micros() as u64;
        let latency_us = intended
            .map(|t| done.saturating_duration_since(t).as_micros() as u64)
            .unwrap_or(service_us);
        if let Some(tp) = &trace {
            note_trace(&sh, step, tp, latency_us, &result);
        }
        let (status, failure, success, backend) = self.judge(step, &result);
        if let (Some(tag), Some(c)) = (cold, sh.cold_starts.as_deref()) {
            // Answered: a success that is not a 5xx (a check may accept a 503; a cold start
            // is not over until a pod answers).
            let answered = success && status.is_none_or(|s| s < 500);
            c.on_done(tag, done, latency_us, answered);
        }
        let outcome = Outcome {
            endpoint: step.endpoint,
            latency_us,
            service_us,
            status,
            failure,
            success,
            backend,
        };
        Sinks {
            stats: ShardSink {
                stats: &sh.stats,
                worker: self.id,
            },
            metrics: MetricsSink {
                run: &sh.metrics,
                endpoints: &sh.endpoint_metrics,
                cache: &mut self.counters,
            },
            live: &sh.live,
        }
        .record(&outcome, done);
        success
    }

    /// Renders the step's request into `out` (path, headers, body), with a sampled W3C trace
    /// context on a fraction of requests; returns that `traceparent`, or why the request could
    /// not be built.
    #[inline]
    fn build(&mut self, step: &Step, out: &mut Outgoing) -> Result<Option<String>, String> {
        let sh = &*self.sh;
        let mut ctx = RenderCtx {
            rng: &mut self.rng,
            counter: &sh.counter,
            user: self.id as u64,
            iteration: self.iteration,
            vars: &self.vars,
        };
        let trace =
            (sh.trace_sample > 0.0 && ctx.rng.random::<f64>() < sh.trace_sample).then(|| {
                let (t, s): (u128, u64) = (ctx.rng.random(), ctx.rng.random());
                format!("00-{:032x}-{:016x}-01", t.max(1), s.max(1))
            });
        step.path
            .render(&mut ctx, &mut self.path)
            .map_err(|e| e.to_string())?;
        out.method.clone_from(&step.method);
        sh.connector.set_path(out, &self.path)?;
        out.headers.clear();
        for (name, t) in &step.headers {
            t.render(&mut ctx, &mut self.scratch)
                .map_err(|e| e.to_string())?;
            let v = http::HeaderValue::from_str(&self.scratch)
                .map_err(|_| format!("header {name} rendered to an invalid value"))?;
            out.headers.push((name.clone(), v));
        }
        if let Some(tp) = &trace {
            let v = http::HeaderValue::from_str(tp).map_err(|e| e.to_string())?;
            out.headers
                .push((http::HeaderName::from_static("traceparent"), v));
        }
        // Tell the server too, so it closes after the response (HTTP/1 only: --http2
        // cannot be combined with --no-keepalive).
        out.close = !sh.lifetime.keepalive;
        out.body = match &step.body {
            Some(t) => {
                t.render(&mut ctx, &mut self.scratch)
                    .map_err(|e| e.to_string())?;
                Bytes::copy_from_slice(self.scratch.as_bytes())
            }
            None => Bytes::new(),
        };
        Ok(trace)
    }

    /// Sends `out` on the worker's connection (opened, or replaced when its age is over) and
    /// reads the response.
    async fn exchange(
        &mut self,
        out: &Outgoing,
        want: Want,
        sent_at: Instant,
    ) -> Result<Sent, ClientError> {
        // A connection that passed its age while idle (open loop) closes before the next
        // request; one that passes it during a request closes after it (in `settle`).
        if self
            .conn
            .as_ref()
            .is_some_and(|h| h.opened.deadline.is_some_and(|d| sent_at >= d))
        {
            self.close(CloseReason::MaxAge);
        }
        let reused = self.conn.is_some();
        let held = self.held().await?;
        // Keep-alive race: the server may close a connection it sees idle (keep-alive
        // timeout, graceful shutdown, an HTTP/2 GOAWAY) just as a request goes out on it.
        // When the client finds that it wrote none of the request because the connection
        // was already closed, the server never saw it: resend once on a fresh connection (as
        // hyper-util's pooled client does) and count the retry. A request that was written
        // and got no response is never resent: the server may have processed it, so it is a
        // failure.
        held.requests += 1;
        let mut sent = held.opened.conn.send(out, want).await;
        if reused && sent.unsent {
            self.sh.retries.fetch_add(1, Ordering::Relaxed);
            self.close(CloseReason::Server);
            let held = self.held().await?;
            held.requests += 1;
            sent = held.opened.conn.send(out, want).await;
        }
        Ok(sent)
    }

    /// Whether the response passes the step's expectations and captures (setting the captured
    /// variables for the next steps): its status, failure kind, success and backend.
    #[inline]
    fn judge<'r>(
        &mut self,
        step: &Step,
        result: &'r Result<Response, ClientError>,
    ) -> (Option<u16>, Option<Failure>, bool, Option<&'r str>) {
        let resp = match result {
            Ok(resp) => resp,
            Err(ClientError { kind, message }) => {
                self.sh.note_error(message);
                return (None, Some(Failure::Transport(*kind)), false, None);
            }
        };
        let mut success = step.accepts(resp.status);
        let mut failure = (!success && !step.expect.is_empty()).then_some(Failure::Check);
        if success && !step.captures.is_empty() {
            let json = resp
                .body
                .as_ref()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok());
            for c in &step.captures {
                match c.extract(resp.headers.as_deref(), json.as_ref()) {
                    Some(v) => {
                        self.vars.insert(c.var.clone(), v);
                    }
                    None => {
                        self.vars.remove(&c.var);
                        success = false;
                        failure = Some(Failure::Capture);
                        self.sh.note_error(&format!(
                            "capture {} = {} found nothing in the response of {}",
                            c.var, c.expr, self.sh.endpoint_metrics[step.endpoint].name
                        ));
                    }
                }
            }
        }
        (
            Some(resp.status),
            failure,
            success,
            resp.served_by.as_deref(),
        )
    }

    /// The worker's connection, opened if it has none.
    async fn held(&mut self) -> Result<&mut Held, ClientError> {
        if self.conn.is_none() {
            let opened = self.sh.connect(self.id, self.connected_before).await?;
            self.connected_before = true;
            self.conn = Some(Held {
                opened,
                requests: 0,
            });
        }
        Ok(self.conn.as_mut().expect("set above"))
    }

    /// After a request (never during one): closes the connection when the server closed it, an
    /// error broke it, or its lifetime is over.
    fn settle(&mut self, sent: &Sent, now: Instant) {
        let Some(h) = &self.conn else { return };
        let l = &self.sh.lifetime;
        let why = if !l.keepalive {
            Some(if sent.result.is_ok() || sent.reusable {
                CloseReason::NoKeepalive
            } else {
                CloseReason::Error
            })
        } else if !sent.reusable {
            Some(if sent.result.is_ok() {
                CloseReason::Server
            } else {
                CloseReason::Error
            })
        } else if l.max_requests.is_some_and(|n| h.requests >= n) {
            Some(CloseReason::MaxRequests)
        } else if h.opened.deadline.is_some_and(|d| now >= d) {
            Some(CloseReason::MaxAge)
        } else {
            None
        };
        if let Some(why) = why {
            self.close(why);
        }
    }

    /// Drops the connection and counts why. HTTP/2 handles are clones of a shared connection:
    /// the shared slot counts when it replaces the connection.
    fn close(&mut self, why: CloseReason) {
        if self.conn.take().is_some() && !self.sh.lifetime_shared() {
            self.sh.note_close(why);
        }
    }
}

/// Keeps a sampled request with its trace id (`traceparent` `tp`) among the run's slowest.
fn note_trace(
    sh: &Shared,
    step: &Step,
    tp: &str,
    latency_us: u64,
    result: &Result<Response, ClientError>,
) {
    sh.note_trace(crate::model::TracedRequest {
        trace_id: tp[3..35].to_string(),
        endpoint: sh.endpoint_metrics[step.endpoint].name.clone(),
        latency_ms: latency_us as f64 / 1000.0,
        status: match result {
            Ok(r) => r.status.to_string(),
            Err(e) => e.kind.as_str().to_string(),
        },
    });
}

/// Completes at `deadline`, on a timer that may be set earlier (to an earlier request's
/// deadline, since deadlines only grow): when it fires early it is re-armed to `deadline`, so a
/// timeout is exact. Why not `tokio::time::timeout` per request: inserting a timer into the
/// wheel and removing it again for every request was the largest part of the worker's own
/// bookkeeping in a closed-loop profile; this re-arms about once per timeout period.
async fn expire(mut timer: Pin<&mut tokio::time::Sleep>, deadline: tokio::time::Instant) {
    loop {
        timer.as_mut().await;
        if tokio::time::Instant::now() >= deadline {
            return;
        }
        timer.as_mut().reset(deadline);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::{Instant, sleep_until};

    use super::expire;

    #[tokio::test(start_paused = true)]
    async fn a_timer_left_from_an_earlier_request_times_out_a_later_one_at_its_own_deadline() {
        let t0 = Instant::now();
        let mut timer = Box::pin(sleep_until(t0 + Duration::from_millis(100)));
        let deadline = t0 + Duration::from_millis(250);
        expire(timer.as_mut(), deadline).await;
        assert_eq!(Instant::now(), deadline, "not at the earlier deadline");
        // A worker idle for longer than the timeout: its timer fired with nobody waiting, and
        // must not end the next request at once.
        tokio::time::advance(Duration::from_secs(10)).await;
        let next = Instant::now() + Duration::from_millis(100);
        expire(timer.as_mut(), next).await;
        assert_eq!(Instant::now(), next);
    }
}
