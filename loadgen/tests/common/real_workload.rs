//! The real workload on 127.0.0.1 port 0, on a runtime of its own, for tests that need the
//! server the users run (its TLS, its task store) rather than the small test server.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;

/// A server on a thread and runtime of its own, told to stop and joined on drop.
pub struct ServerThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerThread {
    /// Runs `serve` on a new thread; it must return once the receiver it is given fires.
    pub fn spawn(serve: impl FnOnce(tokio::sync::oneshot::Receiver<()>) + Send + 'static) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        Self {
            stop: Some(stop),
            thread: Some(std::thread::spawn(move || serve(stopped))),
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A running workload; stopped on drop.
pub struct Workload {
    pub addr: SocketAddr,
    _thread: ServerThread,
}

/// Starts the workload with `config` (its listeners on port 0, see `Config::local_test`).
pub fn start(mut config: workload::Config) -> Workload {
    config.shutdown_timeout = std::time::Duration::from_secs(1);
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let thread = ServerThread::spawn(move |stopped| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let app = workload::Application::build(config).await.unwrap();
            addr_tx.send(app.app_addr()).unwrap();
            app.run_until_stopped(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
    });
    Workload {
        addr: addr_rx.recv().unwrap(),
        _thread: thread,
    }
}

/// The workload serving HTTPS with this certificate chain and key.
pub fn start_tls(cert: &Path, key: &Path) -> Workload {
    let mut config = workload::Config::local_test();
    config.tls_cert = Some(cert.to_path_buf());
    config.tls_key = Some(key.to_path_buf());
    start(config)
}
