//! A minimal keep-alive HTTP server for `bench/loadgen-vs-wrk.sh`: the same fixed target for both
//! generators, so the ratio measures the generators, not the server.
//!
//!   cargo run --release -p loadgen --example bench_target -- 127.0.0.1:18080 1
//! Arguments: listen address, worker threads.

use axum::Router;
use axum::routing::get;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18080".into());
    let threads: usize = args.next().and_then(|t| t.parse().ok()).unwrap_or(1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?
        .block_on(async move {
            let app = Router::new().route(
                "/ping",
                get(|| async { ([("x-served-by", "bench")], "pong") }),
            );
            let l = tokio::net::TcpListener::bind(&addr).await?;
            eprintln!("listening on {}", l.local_addr()?);
            axum::serve(l, app).await
        })
}
