//! Slowloris defence: a whole request header must arrive within
//! `server.header_timeout` of its first byte.
//!
//! Pingora bounds each *read* (60 s) but not the header as a whole, so a client
//! trickling one byte a minute could hold a connection forever. [`Guarded`] wraps
//! every accepted connection in a [`HeaderDeadline`] stream that starts the clock
//! with a request's first read and stops it at the blank line that ends the
//! header. Idle keep-alive time between requests does not count: the clock starts
//! again only when the next request starts.
//!
//! Cheap on the signed-in path (issue #11): a header that arrives whole in its
//! first read — nearly every request — never creates or registers a timer (a
//! registered tokio timer cost a wake-up of the runtime, one `write` system call
//! and an extra `epoll` event per request). Only a header left unfinished by that
//! read gets its timer, set to `server.header_timeout` from that read. Request bodies are bounded per read
//! by the proxy (`set_read_timeout`).
//!
//! A header ends only at a blank line that *follows a request line*. Empty lines
//! before the request line (which RFC 9112 §2.2 lets servers skip, and httparse
//! does) start the timer like any other byte but never stop it: otherwise
//! `\r\n\r\n` followed by a trickle would disarm the timer for good.
//!
//! [`Guarded`] also caps the connections one client holds open at once
//! (`server.max_connections_per_client`, per address, per /64 for IPv6) with a
//! [`ConnLimit`]: each admitted connection carries a [`ConnSlot`] that gives its
//! place back when the connection is dropped. Peers in `server.trusted_proxies`
//! are exempt: a proxy in front of the gateway multiplexes many clients.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use ipnet::IpNet;
use pingora::apps::ServerApp;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, Stream, UniqueID,
    UniqueIDType,
};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Where the bytes of a request header read so far stand. Line ends are LF with
/// an optional CR before it, as httparse reads them, so the timer stops where
/// Pingora's parser sees the header end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// No request line yet: empty lines here are skipped, they end nothing.
    Leading,
    /// Inside a line.
    InLine,
    /// Just after a line's LF.
    LineStart,
    /// After a CR at the start of a line.
    LineStartCr,
}

pub struct HeaderDeadline {
    inner: Stream,
    timeout: Duration,
    /// Armed while a request header is arriving and didn't come in one read.
    timer: Option<Pin<Box<Sleep>>>,
    /// A request header has started and not ended yet.
    in_header: bool,
    scan: Scan,
    /// Waiting for the next request to start (a response went out, or nothing came yet).
    idle: bool,
    /// This connection's place in its client's connection count; freed on drop.
    _slot: Option<ConnSlot>,
    /// `false` for HTTP/2, whose binary frames this scanner can't read.
    armed: bool,
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
            in_header: false,
            scan: Scan::Leading,
            idle: true,
            _slot: None,
            armed: true,
        }
    }

    /// Stops the timer at the blank line that ends a request header; `true` then.
    fn scan(&mut self, data: &[u8]) -> bool {
        // The usual case: a whole request line and header in this read. A request line
        // starts here and the read ends with a blank line after it, so the header ended
        // (there, or at an earlier blank line) — no need to look at every line.
        let starts_line = data.first().is_some_and(|&b| b != b'\r' && b != b'\n');
        if self.scan == Scan::Leading && starts_line && data.ends_with(b"\r\n\r\n") {
            self.timer = None;
            self.in_header = false;
            return true;
        }
        let mut i = 0;
        while i < data.len() {
            if self.scan == Scan::InLine {
                // Inside a line only its LF matters: jump to it.
                match memchr::memchr(b'\n', &data[i..]) {
                    Some(p) => i += p,
                    None => return false,
                }
            }
            let (next, end) = step(self.scan, data[i]);
            if end {
                self.timer = None;
                self.in_header = false;
                self.scan = Scan::Leading;
                return true;
            }
            self.scan = next;
            i += 1;
        }
        false
    }
}

/// One byte further; `true` when it ends the header.
fn step(s: Scan, b: u8) -> (Scan, bool) {
    match (s, b) {
        (Scan::Leading, b'\r' | b'\n') => (Scan::Leading, false),
        (Scan::LineStart | Scan::LineStartCr, b'\n') => (Scan::Leading, true),
        (Scan::LineStart, b'\r') => (Scan::LineStartCr, false),
        (_, b'\n') => (Scan::LineStart, false),
        _ => (Scan::InLine, false),
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
                if this.idle && this.armed {
                    this.idle = false;
                    this.in_header = true;
                    this.scan = Scan::Leading;
                }
                if this.in_header && !this.scan(&buf.filled()[before..]) && this.timer.is_none() {
                    // The header didn't come whole: from now on it is on the clock. The
                    // timer is registered when polled at the top of the next read (the
                    // caller reads again for the rest), so a header that arrives in one
                    // read — nearly all of them — costs no timer at all.
                    this.timer = Some(Box::pin(tokio::time::sleep(this.timeout)));
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
        if !self.in_header {
            self.idle = true;
        }
        Pin::new(&mut self.inner).poll_write(cx, data)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        if !self.in_header {
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

/// Open connections per client network, for `server.max_connections_per_client`
/// (the cap and the peers exempt from it are the config's as each connection comes,
/// so a SIGHUP changes them for new connections).
pub struct ConnLimit {
    /// Only networks with open connections are present, so this stays as small as
    /// the set of connected clients.
    // A std Mutex: held for one hash-map update, never across an await.
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// A connection's place in its client's count; gives it back when dropped.
pub struct ConnSlot {
    limit: Arc<ConnLimit>,
    key: IpAddr,
}

/// The connection would exceed its client's cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtCap;

/// The network a client's connections are counted under: the address, or its /64.
fn net_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(a) => IpAddr::V4(a),
        IpAddr::V6(a) => {
            let mut s = a.segments();
            s[4..].fill(0);
            IpAddr::from(s)
        }
    }
}

impl ConnLimit {
    pub fn new() -> Arc<ConnLimit> {
        Arc::new(ConnLimit {
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a new connection from `peer`: `Ok(None)` when it isn't counted (no
    /// cap, `max` = 0; no IP address; a peer in `exempt`, the trusted proxies),
    /// `Err(AtCap)` when the client already holds `max` connections.
    pub fn admit(
        self: &Arc<Self>,
        peer: Option<IpAddr>,
        max: usize,
        exempt: &[IpNet],
    ) -> Result<Option<ConnSlot>, AtCap> {
        let Some(ip) = peer else { return Ok(None) };
        let ip = ip.to_canonical();
        if max == 0 || exempt.iter().any(|n| n.contains(&ip)) {
            return Ok(None);
        }
        let key = net_key(ip);
        // A poisoned lock means a panic while holding it; the map itself is still sound.
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= max {
            return Err(AtCap);
        }
        *n += 1;
        Ok(Some(ConnSlot {
            limit: self.clone(),
            key,
        }))
    }

    /// Connections open from `ip`'s network (counted ones only).
    pub fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&net_key(ip)).copied().unwrap_or(0)
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut open = self.limit.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// A [`ServerApp`] that puts every new connection behind a [`HeaderDeadline`],
/// after counting it against its client's cap ([`ConnLimit`]). The header timeout,
/// the cap and the trusted proxies are `app`'s config's as the connection comes.
pub struct Guarded<A> {
    pub inner: Arc<A>,
    pub app: Arc<crate::app::App>,
    pub limit: Arc<ConnLimit>,
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Guarded<A> {
    /// Not an `async fn`: the connection's future is the application's own, returned
    /// as it is, so every poll of a connection (several per request) goes through one
    /// future less (issue #11).
    fn process_new<'a, 'b, 'f>(
        self: &'a Arc<Self>,
        stream: Stream,
        shutdown: &'b ShutdownWatch,
    ) -> Pin<Box<dyn Future<Output = Option<Stream>> + Send + 'f>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        // A connection handed back for reuse is already wrapped (and counted).
        let stream: Stream = if stream.as_any().is::<HeaderDeadline>() {
            stream
        } else {
            let peer = stream
                .get_socket_digest()
                .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()));
            let cfg = self.app.config_now();
            let server = &cfg.server;
            let slot = match self.limit.admit(
                peer,
                server.max_connections_per_client,
                &server.trusted_proxies,
            ) {
                Ok(slot) => slot,
                Err(AtCap) => {
                    tracing::debug!(
                        client = ?peer,
                        "connection refused: server.max_connections_per_client reached"
                    );
                    // Dropping the stream closes the connection at once.
                    return Box::pin(std::future::ready(None));
                }
            };
            // HTTP/2 (ALPN h2) frames are binary: no blank line ever ends a "header",
            // so the timer would cut every h2 connection at `header_timeout`. Its
            // requests are framed and bounded by Pingora's h2 server instead.
            let h2 = matches!(
                stream.selected_alpn_proto(),
                Some(pingora::protocols::ALPN::H2)
            );
            let mut d = HeaderDeadline::new(stream, server.header_timeout);
            d.armed = !h2;
            d._slot = slot;
            Box::new(d)
        };
        self.inner.process_new(stream, shutdown)
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Feeds `chunks` to a fresh scanner with an armed timer; `true` when the
    /// header ended (the timer was disarmed).
    fn ends(chunks: &[&[u8]]) -> bool {
        let (a, _b) = tokio::io::duplex(16);
        let mut d = HeaderDeadline::new(Box::new(a), Duration::from_secs(1));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            d.timer = Some(Box::pin(tokio::time::sleep(Duration::from_secs(1))));
            for c in chunks {
                d.scan(c);
            }
            d.timer.is_none()
        })
    }

    #[test]
    fn a_header_ends_only_at_a_blank_line_after_a_request_line() {
        let table: &[(&[&[u8]], bool, &str)] = &[
            (&[b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"], true, "plain"),
            (
                &[b"GET / HTTP/1.1\r\nHost: x\r", b"\n\r", b"\n"],
                true,
                "split over chunks",
            ),
            (&[b"a\r\n\r\r\nb"], false, "CR CR LF is not a blank line"),
            (&[b"\r\n\r\n"], false, "leading empty lines"),
            (
                &[b"\r\n\r\n\r\n\r\n\n\n"],
                false,
                "many leading empty lines",
            ),
            (
                &[b"\r\n", b"\r\n", b"G"],
                false,
                "leading lines, then a trickle",
            ),
            (
                &[b"\r\n\r\nGET / HTTP/1.1\r\n", b"Host: x\r\n\r\n"],
                true,
                "leading lines, then a whole header",
            ),
            (
                &[b"GET / HTTP/1.1\nHost: x\n\n"],
                true,
                "bare LF, as httparse reads it",
            ),
            (&[b"GET / HTTP/1.1\nHost: x\n\r\n"], true, "LF then CRLF"),
            (&[b"GET / HTTP/1.1\r\nHost: x\r\n"], false, "unfinished"),
        ];
        for (chunks, want, what) in table {
            assert_eq!(ends(chunks), *want, "{what}");
        }
    }

    #[tokio::test]
    async fn leading_empty_lines_keep_the_timer_running() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut d = HeaderDeadline::new(Box::new(a), Duration::from_millis(300));
        b.write_all(b"\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(d.read(&mut buf).await.unwrap(), 4);
        #[allow(clippy::disallowed_methods)] // measures a real tokio timer
        let start = std::time::Instant::now();
        let trickle = async {
            for byte in b"GET / HTTP/1.1\r\nX: y" {
                b.write_all(&[*byte]).await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Never finish the header; hold the pipe open.
            std::future::pending::<()>().await;
        };
        let reader = async {
            loop {
                match d.read(&mut buf).await {
                    Ok(0) => return None,
                    Ok(_) => {}
                    Err(e) => return Some(e.kind()),
                }
            }
        };
        let r = tokio::time::timeout(Duration::from_secs(5), async {
            tokio::select! {
                r = reader => r,
                _ = trickle => None,
            }
        })
        .await
        .unwrap();
        assert_eq!(r, Some(std::io::ErrorKind::TimedOut));
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    proptest::proptest! {
        /// The scan that jumps to each line's LF ends a header exactly where the
        /// byte-by-byte state machine does, however the bytes are split into reads.
        #[test]
        fn jumping_to_line_ends_agrees_with_the_byte_machine(
            data in proptest::collection::vec(proptest::sample::select(vec![b'a', b'\r', b'\n']), 0..40),
            cut in 0usize..40,
        ) {
            let mut reference = (Scan::Leading, None);
            for (i, &b) in data.iter().enumerate() {
                let (next, end) = step(reference.0, b);
                reference.0 = next;
                if end { reference.1 = Some(i); break; }
            }
            let (a, _b) = tokio::io::duplex(16);
            let mut d = HeaderDeadline::new(Box::new(a), Duration::from_secs(1));
            let cut = cut.min(data.len());
            let ended = d.scan(&data[..cut]) || d.scan(&data[cut..]);
            proptest::prop_assert_eq!(ended, reference.1.is_some());
            if !ended {
                proptest::prop_assert_eq!(d.scan, reference.0);
            }
        }
    }

    #[tokio::test]
    async fn a_header_in_one_read_needs_no_timer_and_a_partial_one_gets_it() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut d = HeaderDeadline::new(Box::new(a), Duration::from_secs(10));
        let mut buf = [0u8; 64];
        b.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert!(d.read(&mut buf).await.unwrap() > 0);
        assert!(d.timer.is_none() && !d.in_header, "whole header: no timer");
        d.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        b.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        assert!(d.read(&mut buf).await.unwrap() > 0);
        assert!(
            d.timer.is_some() && d.in_header,
            "unfinished header: on the clock"
        );
        b.write_all(b"Host: x\r\n\r\n").await.unwrap();
        assert!(d.read(&mut buf).await.unwrap() > 0);
        assert!(d.timer.is_none() && !d.in_header, "ended: timer gone");
    }

    #[test]
    fn connections_are_capped_per_client_network_and_freed_on_drop() {
        let limit = ConnLimit::new();
        let exempt: Vec<IpNet> = vec!["10.9.0.0/16".parse().unwrap()];
        let admit = |peer: Option<IpAddr>| limit.admit(peer, 2, &exempt);
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let a = admit(Some(v4)).unwrap();
        let b = admit(Some(v4)).unwrap();
        assert!(a.is_some() && b.is_some());
        assert_eq!(admit(Some(v4)).err(), Some(AtCap));
        // The IPv4-mapped form is the same client.
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(admit(Some(mapped)).err(), Some(AtCap));
        // Another client is unaffected.
        assert!(admit(Some("192.0.2.8".parse().unwrap())).is_ok());
        drop(a);
        assert_eq!(limit.open(v4), 1);
        let c = admit(Some(v4)).unwrap();
        assert!(c.is_some());
        drop((b, c));
        assert_eq!(limit.open(v4), 0);
        assert!(
            limit.open.lock().unwrap().is_empty(),
            "no entry left behind"
        );

        // IPv6: one /64 is one client.
        let x: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let y: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let z: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _x = admit(Some(x)).unwrap();
        let _y = admit(Some(y)).unwrap();
        assert_eq!(admit(Some(x)).err(), Some(AtCap));
        assert!(admit(Some(z)).unwrap().is_some());

        // Trusted proxies, unknown peers (Unix sockets) and cap 0 aren't counted.
        let proxy: IpAddr = "10.9.1.1".parse().unwrap();
        let held: Vec<_> = (0..10).map(|_| admit(Some(proxy)).unwrap()).collect();
        assert!(held.iter().all(Option::is_none));
        assert!(admit(None).unwrap().is_none());
        assert!((0..10).all(|_| limit.admit(Some(v4), 0, &[]).unwrap().is_none()));
        // The cap is the one given with each connection (the config's at the time):
        // a lower one refuses a client already holding that many.
        let _w = admit(Some(v4)).unwrap();
        assert_eq!(limit.open(v4), 1);
        assert_eq!(limit.admit(Some(v4), 1, &exempt).err(), Some(AtCap));
        assert!(limit
            .admit(Some(v4), 1, &["192.0.2.0/24".parse().unwrap()])
            .is_ok());
    }
}
