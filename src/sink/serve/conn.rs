//! The live view's connections: the accept loop with its cap on clients, hyper's HTTP/1 with a
//! header-read timeout (which also closes idle keep-alive connections), and a write timeout for
//! clients that stop reading. axum's own `serve` has neither timeout, and a client that trickled
//! its headers or never read held its connection, and a file descriptor, for ever.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{sleep, Instant, Sleep};

use super::Limits;

/// The TLS acceptor of an HTTPS live view; a type with no values in a build without TLS.
#[cfg(feature = "serve-tls")]
pub(super) type Acceptor = tokio_rustls::TlsAcceptor;
#[cfg(not(feature = "serve-tls"))]
pub(super) type Acceptor = std::convert::Infallible;

/// What a client over the cap gets, before its connection is closed.
const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 54\r\n\
Retry-After: 5\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\n\r\n\
the live view has as many viewers as it serves; retry\n";

/// How long the busy answer may take to write before the connection is dropped anyway.
const BUSY_WRITE: Duration = Duration::from_secs(1);

/// The kernel's send buffer per connection. Linux grows it up to 4 MiB by default, which a
/// viewer that stops reading fills for seconds before a write ever waits (and the write timeout
/// starts): fixed, it bounds what such a viewer holds and how long it lives. 256 KiB still
/// carries 5 MB/s over a 50 ms round trip.
const SEND_BUFFER: libc::c_int = 256 * 1024;

/// How long to wait before accepting again after accept failed (out of descriptors): a flood
/// must not turn the accept loop into a busy loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves connections from `listener` with `handle` (over TLS with `tls`) until `stop` is set,
/// then gives open connections `grace` to finish and drops the rest.
pub(super) async fn serve<S, F>(
    listener: TcpListener,
    tls: Option<Acceptor>,
    handle: S,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) where
    S: Fn(hyper::Request<hyper::body::Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send + 'static,
{
    let mut connections = JoinSet::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024)
        .keep_alive(true);
    let builder = Arc::new(builder);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        // Finished connections leave the set here, so its length is the clients served now.
        while connections.try_join_next().is_some() {}
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                log::warn!("live view: cannot accept a connection: {e}");
                sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        if connections.len() >= limits.max_clients {
            // Its own task, bounded by BUSY_WRITE: the loop never waits on a client. Over TLS a
            // plain answer would be noise: the connection is just closed.
            if tls.is_none() {
                tokio::spawn(refuse(tcp));
            }
            continue;
        }
        let _ = tcp.set_nodelay(true);
        set_send_buffer(&tcp, SEND_BUFFER);
        let (builder, handle) = (builder.clone(), handle.clone());
        match &tls {
            None => {
                connections.spawn(serve_io(tcp, builder, handle, limits.write_timeout));
            }
            #[cfg(feature = "serve-tls")]
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                connections.spawn(async move {
                    // The handshake is bounded like the headers that follow it.
                    match tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            serve_io(stream, builder, handle, limits.write_timeout).await
                        }
                        Ok(Err(e)) => log::debug!("live view: a TLS handshake failed: {e}"),
                        Err(_) => log::debug!("live view: a TLS handshake timed out"),
                    }
                });
            }
            #[cfg(not(feature = "serve-tls"))]
            Some(never) => match *never {},
        }
    }
    // Open streams end once the stop flag is set; what has not finished within the grace period
    // is aborted with the set.
    drop(listener);
    let _ = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}

fn set_send_buffer(tcp: &TcpStream, bytes: libc::c_int) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid socket descriptor and an int-sized option value.
    let done = unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if done != 0 {
        log::debug!(
            "live view: cannot set a connection's send buffer: {}",
            io::Error::last_os_error()
        );
    }
}

/// One connection over `io` (TCP or TLS), with the write timeout.
async fn serve_io<I, S, F>(io: I, builder: Arc<http1::Builder>, handle: S, write_timeout: Duration)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Fn(hyper::Request<hyper::body::Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send + 'static,
{
    let io = TokioIo::new(WriteTimeout::new(io, write_timeout));
    if let Err(e) = builder
        .serve_connection(io, hyper::service::service_fn(handle))
        .await
    {
        log::debug!("live view: a connection ended: {e}");
    }
}

async fn refuse(mut tcp: TcpStream) {
    let _ = tokio::time::timeout(BUSY_WRITE, async {
        tcp.write_all(BUSY).await?;
        tcp.shutdown().await
    })
    .await;
}

/// A stream whose writes fail with `TimedOut` once one has waited `timeout` for the peer to
/// read: a viewer that stopped reading is closed instead of holding its connection.
pub(super) struct WriteTimeout<T> {
    inner: T,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
    waiting: bool,
}

impl<T> WriteTimeout<T> {
    pub(super) fn new(inner: T, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            deadline: Box::pin(sleep(timeout)),
            waiting: false,
        }
    }

    /// Called when a write is pending: starts the clock on the first, fails once it has run out.
    fn pending<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        if !self.waiting {
            self.waiting = true;
            let at = Instant::now() + self.timeout;
            self.deadline.as_mut().reset(at);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn track<R>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match result {
            Poll::Pending => self.pending(cx),
            ready => {
                self.waiting = false;
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.track(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.track(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.track(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.track(cx, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_the_peer_never_reads_fails_after_the_timeout() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            // A duplex pipe with a small buffer whose other end never reads.
            let (a, _b) = tokio::io::duplex(64);
            let mut writer = WriteTimeout::new(a, Duration::from_millis(200));
            let started = Instant::now();
            let chunk = [0u8; 32];
            let err = loop {
                if let Err(e) = writer.write_all(&chunk).await {
                    break e;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "the write never timed out"
                );
            };
            assert_eq!(err.kind(), io::ErrorKind::TimedOut);
            assert!(started.elapsed() >= Duration::from_millis(200));
        });
    }

    #[test]
    fn writes_that_progress_never_time_out() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (a, mut b) = tokio::io::duplex(64);
            let reader = tokio::spawn(async move {
                let mut sink = Vec::new();
                tokio::io::AsyncReadExt::read_to_end(&mut b, &mut sink)
                    .await
                    .map(|_| sink.len())
            });
            let mut writer = WriteTimeout::new(a, Duration::from_millis(50));
            for _ in 0..200 {
                writer.write_all(&[1u8; 48]).await.unwrap();
            }
            writer.shutdown().await.unwrap();
            drop(writer);
            assert_eq!(reader.await.unwrap().unwrap(), 200 * 48);
        });
    }
}
