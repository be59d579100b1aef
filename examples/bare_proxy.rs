//! A bare Pingora reverse proxy with no authentication: the reference point in
//! `scripts/bench.sh` that separates Pingora's own hop cost from Portcullis's.
//! Usage: bare_proxy LISTEN UPSTREAM
//!
//! `BARE_HEADERS=1` makes it the *floor* of what the gateway must add to a hop, with
//! no authentication at all: the seven headers the gateway sends on a signed-in
//! request (four identity headers and `X-Forwarded-For`/`-Proto`/`-Host`, values
//! fixed at start) set the cheapest way the gateway knows (the plain header map,
//! see `portcullis::proxy::headers::Plain`), and the `Cookie` header removed (the
//! gateway's own cookie never reaches the application). Like the gateway with such a
//! request, it skips Pingora's pass that removes hop-by-hop fields: it assumes
//! requests without them, as the benchmark's are.

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;

// The same allocator and settings as the gateway, so the comparison is Portcullis's
// own work and nothing else.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The upstream, whether to leave out the upstream timeouts, and whether to set the
/// gateway's headers (`BARE_HEADERS`).
struct Bare(SocketAddr, bool, bool);

/// What the gateway sends for the benchmark's account (`bench`, no groups).
const HEADERS: [(&str, &str); 7] = [
    ("remote-user", "bench"),
    ("remote-email", "bench@example.com"),
    ("remote-name", "bench"),
    ("remote-groups", ""),
    ("x-forwarded-for", "127.0.0.1"),
    ("x-forwarded-host", "bench.test"),
    ("x-forwarded-proto", "http"),
];

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();
    fn new_ctx(&self) {}
    /// As the gateway: no downstream modules (Pingora's default compression module).
    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {}
    /// The same peer options as the gateway's (`server.upstream_timeout` = 60 s by
    /// default, 60 s for idle pooled connections): a production hop has them, and
    /// they cost Pingora a timer per upstream read, write and idle wait.
    /// `BARE_NO_TIMEOUTS=1` leaves them out.
    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<Box<HttpPeer>> {
        let mut peer = HttpPeer::new(self.0, false, String::new());
        if !self.1 {
            let t = Duration::from_secs(60);
            peer.options.connection_timeout = Some(Duration::from_secs(5));
            peer.options.total_connection_timeout = Some(Duration::from_secs(10));
            peer.options.read_timeout = Some(t);
            peer.options.write_timeout = Some(t);
            peer.options.idle_timeout = Some(t);
        }
        if self.2 {
            // As the gateway does for a request without hop-by-hop fields (the
            // benchmark's): Pingora's pass that removes them is skipped.
            peer.options.http_upstream_request_policy =
                pingora::upstreams::peer::HttpUpstreamRequestPolicy::preserve();
        }
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        _s: &mut Session,
        up: &mut RequestHeader,
        _c: &mut (),
    ) -> Result<()> {
        if !self.2 {
            return Ok(());
        }
        let empty = RequestHeader::from(http::Request::new(()).into_parts().0);
        let mut parts = http::request::Parts::from(std::mem::replace(up, empty));
        let h = &mut parts.headers;
        h.remove(http::header::COOKIE);
        h.reserve(8);
        for (k, v) in HEADERS {
            h.insert(
                http::HeaderName::from_static(k),
                http::HeaderValue::from_static(v),
            );
        }
        *up = RequestHeader::from(parts);
        Ok(())
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(listen), Some(upstream)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: bare_proxy LISTEN UPSTREAM");
        std::process::exit(2);
    };
    let Ok(upstream) = upstream.parse::<SocketAddr>() else {
        eprintln!("bare_proxy: UPSTREAM must be an address:port");
        std::process::exit(2);
    };
    let no_timeouts = std::env::var("BARE_NO_TIMEOUTS").is_ok_and(|v| v == "1");
    let headers = std::env::var("BARE_HEADERS").is_ok_and(|v| v == "1");
    let conf = ServerConf {
        threads: 1,
        work_stealing: false,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut svc = pingora::proxy::http_proxy_service(
        &server.configuration,
        Bare(upstream, no_timeouts, headers),
    );
    svc.add_tcp(listen);
    server.add_service(svc);
    server.run_forever();
}
