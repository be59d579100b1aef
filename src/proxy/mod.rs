//! The Pingora edge: dispatch only. Per request: site by Host, path normalised
//! once, spoofable headers stripped, portal or session → policy → forward with
//! identity headers. The decisions themselves live in [`crate::policy`],
//! [`crate::portal`] and [`crate::app`].

pub mod deadline;
pub mod framing;
pub mod headers;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{
    ACCEPT, CONTENT_LENGTH, COOKIE, HOST, ORIGIN, STRICT_TRANSPORT_SECURITY as STS,
    TRANSFER_ENCODING,
};
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::protocols::l4::socket::SocketAddr as PSocketAddr;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use serde_json::json;

use crate::app::{App, SessionState};
use crate::policy::{self, Decision};
use crate::portal::{self, Response};
use crate::users::User;

/// Most request headers accepted, and their total size in bytes (431 beyond).
pub const MAX_HEADERS: usize = 100;
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

pub struct Gateway {
    pub app: Arc<App>,
}

/// Where a site's requests go.
#[derive(Clone)]
struct Upstream {
    addr: std::net::SocketAddr,
    tls: bool,
    /// The site's host: SNI and the name its certificate must carry.
    sni: String,
    /// `upstream_ca`: verify against this CA instead of the system roots.
    ca: Option<crate::tls::UpstreamCa>,
}

/// An inbound request, classified: the neutral facts every decision starts from.
struct Inbound {
    upstream: Upstream,
    identity_headers: Arc<crate::identity::IdentityHeaders>,
    /// Lower-case host without port.
    host: String,
    /// Normalised path, and the raw query.
    path: String,
    query: Option<String>,
    /// Path and query to forward, when normalising changed the path.
    rewrite: Option<String>,
    client: headers::ClientInfo,
    /// The peer is in `server.trusted_proxies`.
    trusted: bool,
    /// The path below `portal_prefix` (`/login` for the prefix itself), for the
    /// gateway's own pages.
    portal_path: Option<String>,
    /// The client takes HTML (a browser).
    html: bool,
}

/// A request refused before any decision: status, heading, text.
struct Refusal(u16, &'static str, String);

/// Per-request state shared across Pingora's phases.
#[derive(Default)]
pub struct Ctx {
    upstream: Option<Upstream>,
    /// Normalised path and raw query, set when the forwarded URI must change.
    rewrite: Option<String>,
    identity: Option<Arc<User>>,
    /// Factors the identity's sign-in proved (for the assertion).
    factors: u8,
    /// The site's identity header names, set with `identity`.
    identity_headers: Option<Arc<crate::identity::IdentityHeaders>>,
    client_ip: Option<IpAddr>,
    xff: String,
    proto: &'static str,
    host: String,
}

fn peer_ip(session: &Session) -> IpAddr {
    match session.client_addr() {
        Some(PSocketAddr::Inet(a)) => a.ip(),
        _ => IpAddr::from([127, 0, 0, 1]),
    }
}

fn accept_html(session: &Session) -> bool {
    session
        .get_header(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// Is the request's length given in a way an upstream might read differently
/// (see [`framing`])? HTTP/1 is checked on the raw header bytes, because Pingora
/// drops `Content-Length` when `Transfer-Encoding` is present and accepts bare LF.
fn ambiguous_framing(session: &Session) -> bool {
    let req = session.req_header();
    let parsed = framing::check_lengths(
        req.headers.get_all(CONTENT_LENGTH),
        req.headers.contains_key(TRANSFER_ENCODING),
    );
    let checked = parsed.and_then(|()| match session.as_http1() {
        Some(h1) => framing::check_raw(&h1.get_headers_raw_bytes()),
        None => Ok(()),
    });
    match checked {
        Ok(()) => false,
        Err(e) => {
            tracing::debug!(reason = %e, "request refused: ambiguous framing");
            true
        }
    }
}

async fn send(session: &mut Session, r: Response, head: bool) -> Result<()> {
    let mut h = ResponseHeader::build(r.status, Some(r.headers.len() + 2))?;
    for (k, v) in r.headers {
        if let Err(e) = h.append_header(k.clone(), v) {
            // Never fail a whole answer over one header (e.g. odd bytes in a user's name).
            tracing::warn!(header = %k, error = %e, "header left out");
        }
    }
    h.insert_header(CONTENT_LENGTH, r.body.len().to_string())?;
    let body = if head || r.body.is_empty() {
        None
    } else {
        Some(r.body)
    };
    let end = body.is_none();
    session.write_response_header(Box::new(h), end).await?;
    if let Some(b) = body {
        session.write_response_body(Some(b), true).await?;
    }
    Ok(())
}

impl Gateway {
    async fn respond(&self, session: &mut Session, mut r: Response, page: bool) -> Result<bool> {
        if page {
            portal::security_headers(&mut r, !self.app.config.load().session.secure);
        }
        if let Some(v) = self.hsts(session) {
            r.header(STS.as_str(), v);
        }
        let head = session.req_header().method == http::Method::HEAD;
        send(session, r, head).await?;
        Ok(true)
    }

    /// `[server.tls] hsts`, for an answer on this gateway's own TLS listener only
    /// (never over plain HTTP, where browsers ignore it and a proxy's word is unchecked).
    fn hsts(&self, session: &Session) -> Option<String> {
        let tls = session
            .digest()
            .and_then(|d| d.ssl_digest.as_ref())
            .is_some();
        if !tls {
            return None;
        }
        self.app
            .config
            .load()
            .server
            .tls
            .as_ref()
            .and_then(|t| t.hsts.clone())
    }

    /// The language of a page the proxy answers itself (see [`crate::i18n`]).
    fn page_language(&self, session: &Session) -> crate::i18n::Current {
        let h = &session.req_header().headers;
        let get =
            |n: http::header::HeaderName| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
        let cookies = headers::cookie_header(session.req_header());
        crate::i18n::Current {
            lang: portal::language(
                &self.app,
                None,
                &cookies,
                get(http::header::ACCEPT_LANGUAGE),
            ),
            ..Default::default()
        }
    }

    async fn refuse(
        &self,
        session: &mut Session,
        status: u16,
        heading: &str,
        text: &str,
    ) -> Result<bool> {
        session.set_keepalive(None);
        let r = crate::i18n::sync_scope(self.page_language(session), || {
            portal::status_page(&self.app, accept_html(session), status, heading, text)
        });
        self.respond(session, r, true).await
    }

    /// What an inbound request is, before anything is decided: its site, its
    /// normalised path, who sent it. `Err` is the refusal to answer with.
    fn classify(
        &self,
        session: &Session,
        cfg: &crate::config::Config,
    ) -> std::result::Result<Inbound, Refusal> {
        // Limits and framing.
        let req = session.req_header();
        let bytes: usize = req
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum();
        if req.headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
            return Err(Refusal(
                431,
                "Request headers too large",
                "The request carried too many or too large headers.".into(),
            ));
        }
        if ambiguous_framing(session) {
            return Err(Refusal(
                400,
                "Bad request",
                "The request's length was given in conflicting ways.".into(),
            ));
        }
        // Site by Host; never a default upstream.
        let host = req
            .headers
            .get(HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| req.uri.host())
            .map(headers::host_only)
            .filter(|h| !h.is_empty())
            .ok_or(Refusal(
                400,
                "Bad request",
                "The request has no Host.".into(),
            ))?;
        let site = cfg.site(&host).ok_or(Refusal(
            421,
            "Unknown site",
            "This gateway does not serve this host name.".into(),
        ))?;
        // Normalise the path once; rules see exactly what is forwarded.
        let raw = std::str::from_utf8(req.raw_path()).ok().map(str::to_string);
        let raw = match raw {
            Some(r) if r.starts_with('/') => r,
            _ => req
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default(),
        };
        let (raw_path, query) = match raw.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (raw, None),
        };
        let path = crate::pathnorm::normalize(&raw_path).map_err(|e| {
            Refusal(
                400,
                "Bad request",
                format!("The address is ambiguous: {e}."),
            )
        })?;
        let rewrite = (path != raw_path).then(|| match &query {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        });
        // Who is asking, and over what.
        let peer = peer_ip(session);
        let trusted = cfg.server.trusted_proxies.iter().any(|n| n.contains(&peer));
        let tls = session
            .digest()
            .and_then(|d| d.ssl_digest.as_ref())
            .is_some();
        let client = headers::forwarded_for(req, peer, trusted, &cfg.server.trusted_proxies, tls);
        let portal_path = path
            .strip_prefix(cfg.server.portal_prefix.as_str())
            .filter(|s| s.is_empty() || s.starts_with('/'))
            .map(|s| if s.is_empty() { "/login" } else { s }.to_string());
        Ok(Inbound {
            upstream: Upstream {
                addr: site.upstream,
                tls: site.upstream_tls,
                sni: site.host.clone(),
                ca: site.upstream_ca.clone(),
            },
            identity_headers: site.identity.clone(),
            host,
            path,
            query,
            rewrite,
            client,
            trusted,
            portal_path,
            html: accept_html(session),
        })
    }

    /// The gateway's own pages.
    async fn portal(
        &self,
        session: &mut Session,
        inbound: &Inbound,
        sub: &str,
        forwarded: Option<portal::Forwarded>,
    ) -> Result<bool> {
        self.app.metrics.outcome.portal.inc();
        let body = match self.read_body(session).await? {
            Ok(b) => b,
            Err(()) => {
                return self
                    .refuse(
                        session,
                        413,
                        "Request too large",
                        "The form sent too much data.",
                    )
                    .await
            }
        };
        let cookie_header = headers::cookie_header(session.req_header()).into_owned();
        let method = session.req_header().method.clone();
        let origin = session
            .req_header()
            .headers
            .get(ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let preq = portal::Request {
            method: &method,
            sub_path: sub,
            query: inbound.query.as_deref().unwrap_or(""),
            host: &inbound.host,
            scheme: inbound.client.proto,
            cookie_header: &cookie_header,
            accept_html: inbound.html,
            accept_language: session
                .req_header()
                .headers
                .get(http::header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
            user_agent: session
                .req_header()
                .headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
            client_ip: inbound.client.client,
            origin: origin.as_deref(),
            body,
            forwarded,
        };
        let r = portal::handle(&self.app, preq).await;
        self.respond(session, r, false).await
    }

    /// Session → policy → decision: `Ok(false)` forwards (with identity for a
    /// complete sign-in), anything else is answered here.
    async fn judge(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        cfg: &crate::config::Config,
        inbound: &Inbound,
    ) -> Result<bool> {
        let app = &self.app;
        let cookie_header = headers::cookie_header(session.req_header());
        let (state, store_down) = match app.session_state(&cookie_header).await {
            Ok(s) => (s, false),
            Err(e) => {
                tracing::warn!(error = %e, "store unavailable; failing closed");
                (SessionState::None, true)
            }
        };
        let method = session.req_header().method.clone();
        let preq = policy::Request {
            host: &inbound.host,
            path: &inbound.path,
            method: &method,
            client: inbound.client.client,
        };
        let decision = crate::app::decide(cfg, &state, &preq);
        match decision {
            Decision::Allow => {
                app.metrics.outcome.allow.inc();
                // Identity only for complete sign-ins: a session still waiting for its
                // second factor may pass `bypass` rules, but anonymously.
                if let Some((user, factors)) = state.complete() {
                    ctx.identity = Some(user.clone());
                    ctx.factors = factors;
                    ctx.identity_headers = Some(inbound.identity_headers.clone());
                }
                Ok(false)
            }
            Decision::Deny => {
                app.metrics.outcome.deny.inc();
                self.refuse(
                    session,
                    403,
                    "Access denied",
                    "You do not have access to this page.",
                )
                .await
            }
            _ if store_down => {
                app.metrics.outcome.unavailable.inc();
                let mut r = crate::i18n::sync_scope(self.page_language(session), || {
                    portal::status_page(
                        app,
                        inbound.html,
                        503,
                        "Temporarily unavailable",
                        "Please try again in a few seconds.",
                    )
                });
                r.header("Retry-After", "5");
                self.respond(session, r, true).await
            }
            Decision::Login | Decision::SecondFactor | Decision::Enrol => {
                if decision == Decision::Login {
                    app.metrics.outcome.login.inc();
                } else {
                    app.metrics.outcome.second_factor.inc();
                }
                let ended = matches!(state, SessionState::Ended);
                let r = self.to_sign_in(cfg, decision, ended, inbound);
                self.respond(session, r, false).await
            }
        }
    }

    /// Where a request without (enough of) a session goes: 302 to the sign-in or
    /// second-step page for browsers, 401 JSON for other clients.
    fn to_sign_in(
        &self,
        cfg: &crate::config::Config,
        decision: Decision,
        ended: bool,
        inbound: &Inbound,
    ) -> Response {
        let prefix = cfg.server.portal_prefix.as_str();
        let step = match decision {
            Decision::Login => "login",
            Decision::Enrol => "2fa/setup",
            _ => "2fa",
        };
        let here = match &inbound.query {
            Some(q) => format!("{}?{q}", inbound.path),
            None => inbound.path.clone(),
        };
        let mut location = format!("{prefix}/{step}?rd={}", portal::urlencode(&here));
        if ended {
            location.push_str("&expired=1");
        }
        let mut r = if inbound.html {
            Response::redirect(302, &location)
        } else {
            let error = if decision == Decision::Login {
                "unauthenticated"
            } else {
                "second_factor_required"
            };
            let mut r = Response::json(
                401,
                json!({ "error": error, "login": format!("{prefix}/{step}"), "session_ended": ended }),
            );
            r.header("WWW-Authenticate", "Cookie realm=\"portcullis\"");
            r
        };
        if ended {
            for c in self
                .app
                .cookies
                .clear(&self.app.cookies.name, &inbound.host)
            {
                r.header("Set-Cookie", c);
            }
        }
        r.header("Cache-Control", "no-store");
        r
    }

    async fn read_body(&self, session: &mut Session) -> Result<std::result::Result<Bytes, ()>> {
        let mut buf = Vec::new();
        while let Some(chunk) = session.read_request_body().await? {
            if buf.len() + chunk.len() > portal::MAX_BODY {
                return Ok(Err(()));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(Ok(Bytes::from(buf)))
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx::default()
    }

    /// No downstream modules: the gateway never compresses, so skip Pingora's
    /// default (disabled) compression module on every request.
    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {}

    /// Answers everything the gateway answers itself (`Ok(true)`); otherwise
    /// leaves `ctx` ready for forwarding (`Ok(false)`): the request is classified
    /// ([`Gateway::classify`]), then served by the portal or judged by the rules.
    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let cfg = self.app.config.load();
        // Slow request bodies are cut off (Pingora bounds header reads itself).
        session.set_read_timeout(Some(Duration::from_secs(30)));
        let inbound = match self.classify(session, &cfg) {
            Ok(i) => i,
            Err(Refusal(status, heading, text)) => {
                return self.refuse(session, status, heading, &text).await
            }
        };
        ctx.upstream = Some(inbound.upstream.clone());
        ctx.host = inbound.host.clone();
        ctx.rewrite = inbound.rewrite.clone();
        ctx.client_ip = Some(inbound.client.client);
        ctx.xff = inbound.client.xff.clone();
        ctx.proto = inbound.client.proto;
        // Forward-auth facts are read only for `/verify`, and only from a trusted proxy.
        let forwarded = (inbound.trusted && inbound.portal_path.as_deref() == Some("/verify"))
            .then(|| crate::forwardauth::Facts::from_headers(&session.req_header().headers));
        // Before anything is set: the gateway's own identity headers (any site's
        // configured names too) never come from the client.
        headers::strip_spoofable_with(session.req_header_mut(), &cfg.identity_strip);
        if let Some(sub) = &inbound.portal_path {
            return self.portal(session, &inbound, sub, forwarded).await;
        }
        self.judge(session, ctx, &cfg, &inbound).await
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let cfg = self.app.config.load();
        let timeout = cfg.server.upstream_timeout;
        let Some(up) = ctx.upstream.clone() else {
            return Error::e_explain(ErrorType::InternalError, "no upstream chosen");
        };
        let mut peer = HttpPeer::new(up.addr, up.tls, up.sni);
        // A site's own CA replaces the system roots for its upstream; the name checked
        // is the site's host (also sent as SNI).
        peer.options.ca = up.ca.filter(|_| up.tls).map(|c| c.0);
        peer.options.connection_timeout = Some(timeout.min(Duration::from_secs(5)));
        peer.options.total_connection_timeout = Some(timeout.min(Duration::from_secs(10)));
        peer.options.read_timeout = Some(timeout);
        peer.options.write_timeout = Some(timeout);
        peer.options.idle_timeout = Some(Duration::from_secs(60));
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        up: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if let Some(uri) = ctx.rewrite.take() {
            let uri: http::Uri = uri
                .parse()
                .or_err(ErrorType::InternalError, "normalised path is a URI")?;
            up.set_uri(uri);
        }
        // UTF-8 names pass as raw bytes (obs-text); control characters are refused.
        // (Client copies of these names were stripped in `request_filter`.)
        if let (Some(user), Some(names)) = (&ctx.identity, &ctx.identity_headers) {
            for (k, v) in names.values(user) {
                // Takes the string's buffer: no copy.
                if let Ok(v) = http::HeaderValue::from_maybe_shared(Bytes::from(v)) {
                    up.insert_header(k, v)?;
                }
            }
            if let Some(h) = &names.assertion {
                let cfg = self.app.config.load();
                if let Some(t) =
                    crate::assertion::token(&self.app, &cfg, &ctx.host, user, ctx.factors)
                {
                    up.insert_header(h, t)?;
                }
            }
        }
        // The application never sees the gateway's own cookies.
        if up.headers.contains_key(COOKIE) {
            let own = &self.app.cookies.own_names;
            // Only the gateway's own cookies (the usual signed-in request): no string built.
            let kept = if headers::has_other_cookies(&up.headers, own) {
                headers::without_cookies(&up.headers, own)
            } else {
                String::new()
            };
            up.remove_header(&COOKIE);
            if !kept.is_empty() {
                up.insert_header(COOKIE, kept)?;
            }
        }
        up.insert_header("X-Forwarded-For", ctx.xff.as_str())?;
        up.insert_header(
            "X-Forwarded-Proto",
            http::HeaderValue::from_static(ctx.proto),
        )?;
        up.insert_header("X-Forwarded-Host", ctx.host.as_str())?;
        Ok(())
    }

    /// Proxied answers. On TLS the gateway's HSTS policy replaces the application's.
    /// An accepted upgrade (WebSocket) turns the request body into one direction of a
    /// long-lived pipe: the 30 s bound set in `request_filter` is for bodies that stall,
    /// and a pipe may rightly be quiet for longer, so from here it gets the same bound as
    /// the upstream direction (`server.upstream_timeout`, like nginx's `proxy_read_timeout`).
    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        _ctx: &mut Ctx,
    ) -> Result<()> {
        if let Some(v) = self.hsts(session) {
            resp.insert_header(STS, v)?;
        }
        if resp.status == http::StatusCode::SWITCHING_PROTOCOLS {
            let timeout = self.app.config.load().server.upstream_timeout;
            session.set_read_timeout(Some(timeout));
        }
        Ok(())
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, _ctx: &mut Ctx) -> FailToProxy {
        let code = match e.etype() {
            ErrorType::HTTPStatus(c) => *c,
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => {
                if e.esource() == &ErrorSource::Upstream {
                    504
                } else {
                    408
                }
            }
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    _ => 400,
                },
                _ => 500,
            },
        };
        if code > 0 && session.response_written().is_none() {
            let (heading, text) = match code {
                502 => (
                    "The application is not responding",
                    "The page could not be loaded. Please try again in a moment.",
                ),
                504 => (
                    "The application is taking too long",
                    "The page could not be loaded in time. Please try again in a moment.",
                ),
                408 => ("Request timed out", "The request took too long to arrive."),
                400 => ("Bad request", "The request could not be read."),
                _ => ("Something went wrong", "Please try again in a moment."),
            };
            let mut r = crate::i18n::sync_scope(self.page_language(session), || {
                portal::status_page(&self.app, accept_html(session), code, heading, text)
            });
            if code >= 500 {
                r.header("Retry-After", "5");
            }
            portal::security_headers(&mut r, !self.app.config.load().session.secure);
            if let Some(v) = self.hsts(session) {
                r.header(STS.as_str(), v);
            }
            let head = session.req_header().method == http::Method::HEAD;
            if let Err(err) = send(session, r, head).await {
                tracing::debug!(error = %err, "could not send error page");
            }
        }
        if code >= 500 {
            tracing::warn!(error = %e, "proxy failure");
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }
}
