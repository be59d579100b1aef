//! Slowloris defence: a whole request header must arrive within
//! `server.header_timeout` of its first byte.
//!
//! Pingora bounds each *read* (60 s) but not the header as a whole, so a client
//! trickling one byte a minute could hold a connection forever. [`Guarded`] wraps
//! every accepted connection in a [`HeaderDeadline`] stream that arms a timer
//! when a request's first bytes arrive and disarms it at the blank line that ends
//! the header. Idle keep-alive time between requests does not count: the timer
//! re-arms only when the next request starts. Request bodies are bounded per read
//! by the proxy (`set_read_timeout`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, Stream, UniqueID,
    UniqueIDType,
};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

const END: &[u8; 4] = b"\r\n\r\n";

pub struct HeaderDeadline {
    inner: Stream,
    timeout: Duration,
    /// Armed while a request header is arriving.
    timer: Option<Pin<Box<Sleep>>>,
    /// How much of `\r\n\r\n` the bytes read so far end with.
    matched: usize,
    /// Waiting for the next request to start (a response went out, or nothing came yet).
    idle: bool,
}

impl std::fmt::Debug for HeaderDeadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderDeadline")
            .field("inner", &self.inner)
            .finish()
    }
}

impl HeaderDeadline {
    pub fn new(inner: Stream, timeout: Duration) -> HeaderDeadline {
        HeaderDeadline {
            inner,
            timeout,
            timer: None,
            matched: 0,
            idle: true,
        }
    }

    fn scan(&mut self, data: &[u8]) {
        for &b in data {
            self.matched = if b == END[self.matched] {
                self.matched + 1
            } else if b == b'\r' {
                1
            } else {
                0
            };
            if self.matched == END.len() {
                self.timer = None;
                self.matched = 0;
                return;
            }
        }
    }
}

impl AsyncRead for HeaderDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if let Some(t) = this.timer.as_mut() {
            if t.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "request header not received in time",
                )));
            }
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            if buf.filled().len() > before {
                if this.idle {
                    this.idle = false;
                    this.matched = 0;
                    let mut t = Box::pin(tokio::time::sleep(this.timeout));
                    // Register the timer with this task so it wakes us at the deadline.
                    let _ = t.as_mut().poll(cx);
                    this.timer = Some(t);
                }
                if this.timer.is_some() {
                    this.scan(&buf.filled()[before..]);
                }
            }
        }
        r
    }
}

impl AsyncWrite for HeaderDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        // A response is going out: the next bytes read start a new request.
        if self.timer.is_none() {
            self.idle = true;
        }
        Pin::new(&mut self.inner).poll_write(cx, data)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        if self.timer.is_none() {
            self.idle = true;
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

use std::future::Future;

#[async_trait]
impl Shutdown for HeaderDeadline {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for HeaderDeadline {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for HeaderDeadline {
    fn get_ssl(&self) -> Option<&pingora::protocols::tls::TlsRef> {
        self.inner.get_ssl()
    }
    fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }
    fn selected_alpn_proto(&self) -> Option<pingora::protocols::ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for HeaderDeadline {
    fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
        self.inner.get_timing_digest()
    }
    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }
    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for HeaderDeadline {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
    fn set_proxy_digest(&mut self, d: pingora::protocols::raw_connect::ProxyDigest) {
        self.inner.set_proxy_digest(d)
    }
}

impl GetSocketDigest for HeaderDeadline {
    fn get_socket_digest(&self) -> Option<Arc<pingora::protocols::SocketDigest>> {
        self.inner.get_socket_digest()
    }
    fn set_socket_digest(&mut self, d: pingora::protocols::SocketDigest) {
        self.inner.set_socket_digest(d)
    }
}

#[async_trait]
impl Peek for HeaderDeadline {
    async fn try_peek(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

/// A [`ServerApp`] that puts every new connection behind a [`HeaderDeadline`].
pub struct Guarded<A> {
    pub inner: Arc<A>,
    pub header_timeout: Duration,
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Guarded<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // A connection handed back for reuse is already wrapped.
        let stream: Stream = if stream.as_any().is::<HeaderDeadline>() {
            stream
        } else {
            Box::new(HeaderDeadline::new(stream, self.header_timeout))
        };
        self.inner.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_end_of_headers_across_chunks() {
        let (a, _b) = tokio::io::duplex(16);
        let mut d = HeaderDeadline::new(Box::new(a), Duration::from_secs(1));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            d.timer = Some(Box::pin(tokio::time::sleep(Duration::from_secs(1))));
            d.scan(b"GET / HTTP/1.1\r\nHost: x\r");
            assert!(d.timer.is_some());
            d.scan(b"\n\r");
            assert!(d.timer.is_some());
            d.scan(b"\n");
            assert!(
                d.timer.is_none(),
                "\\r\\n\\r\\n split over chunks ends the header"
            );
            d.timer = Some(Box::pin(tokio::time::sleep(Duration::from_secs(1))));
            d.scan(b"a\r\n\r\r\nb");
            assert!(d.timer.is_some(), "not a blank line");
        });
    }
}
