//! The application listener, closable on its own, before the server starts shutting its
//! connections down.
//!
//! Why: `axum::serve`'s graceful shutdown stops accepting and tells every connection to shut
//! down in the same instant. Two kinds of connection the client already sent a request on are
//! then reset without an answer: ones still in the kernel's accept queue (dropped with the
//! listening socket) and ones accepted a moment ago whose first request hyper has not read yet
//! (it closes connections it sees idle). So the shutdown closes the listener first: it accepts
//! what the kernel has already queued, then closes the socket (later connects are refused, which
//! clients handle cleanly), and only after [`FIRST_REQUEST_GRACE`] are connections told to
//! finish, by which time the last accepted ones are serving their first request.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Time between closing the listener and shutting connections down: enough for a client that
/// connected just before the close to get its first request read (it is then in progress and is
/// answered, with `Connection: close`).
pub const FIRST_REQUEST_GRACE: Duration = Duration::from_millis(100);

/// A [`TcpListener`] that stops accepting when [`CloseHandle::close`] is called.
#[derive(Debug)]
pub struct ClosableListener {
    inner: Option<TcpListener>,
    addr: SocketAddr,
    closed: watch::Receiver<bool>,
    /// False once the [`CloseHandle`] is gone without closing (then nothing can close it).
    closable: bool,
    /// Connections taken from the accept queue while closing, handed out before going quiet.
    queued: VecDeque<(TcpStream, SocketAddr)>,
}

/// Closes a [`ClosableListener`].
#[derive(Debug, Clone)]
pub struct CloseHandle(watch::Sender<bool>);

impl CloseHandle {
    pub fn close(&self) {
        let _ = self.0.send(true);
    }
}

impl ClosableListener {
    pub fn new(listener: TcpListener) -> io::Result<(Self, CloseHandle)> {
        let addr = listener.local_addr()?;
        let (tx, rx) = watch::channel(false);
        Ok((
            Self {
                inner: Some(listener),
                addr,
                closed: rx,
                closable: true,
                queued: VecDeque::new(),
            },
            CloseHandle(tx),
        ))
    }

    /// Takes every connection the kernel has completed, then closes the listening socket.
    fn drain_and_close(&mut self) {
        let Some(listener) = self.inner.take() else {
            return;
        };
        match listener.into_std() {
            // Still non-blocking: `accept` says WouldBlock once the queue is empty.
            Ok(std_listener) => {
                while let Ok((stream, peer)) = std_listener.accept() {
                    let stream = stream
                        .set_nonblocking(true)
                        .and_then(|()| TcpStream::from_std(stream));
                    if let Ok(stream) = stream {
                        self.queued.push_back((stream, peer));
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot drain the accept queue"),
        }
    }
}

impl axum::serve::Listener for ClosableListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if *self.closed.borrow() {
                self.drain_and_close();
            }
            if let Some(conn) = self.queued.pop_front() {
                return conn;
            }
            let Some(listener) = self.inner.as_ref() else {
                // Closed: nothing more to accept; the server's own shutdown ends the loop.
                return std::future::pending().await;
            };
            tokio::select! {
                res = listener.accept() => match res {
                    Ok(conn) => return conn,
                    // Per-connection errors (aborted handshakes) and fd exhaustion: back off
                    // briefly, as axum's own TcpListener impl does.
                    Err(e) => {
                        tracing::debug!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                changed = self.closed.changed(), if self.closable => {
                    // An error means the handle was dropped without closing: keep serving.
                    self.closable = changed.is_ok();
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
