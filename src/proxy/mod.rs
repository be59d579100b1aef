//! The Pingora edge: dispatch only. `request_filter` is classify → decide →
//! answer or forward:
//!
//! ```text
//!  session ─ classify (crate::request: site, normalised path, client, trusted facts) ─ refusal ─> page
//!          ─ strip spoofable headers (headers.rs)
//!          ─ portal path? ─> crate::portal::handle ─> answer
//!          ─ session → crate::app::decide → crate::respond::decision ─ Page / Reply ─> answer
//!                                                                   └ Allow ─> Ctx { Route } ─> upstream
//! ```
//!
//! The decisions themselves live in [`crate::request`], [`crate::policy`],
//! [`crate::respond`] and [`crate::portal`]; this module reads the socket and
//! writes answers. The per-request [`Ctx`] holds, for a forwarded request, one
//! `Route`: the config snapshot it was judged on, its [`Inbound`] (moved in,
//! not copied) and the identity to send.

pub mod deadline;
pub mod framing;
pub mod headers;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{
    CONNECTION, CONTENT_LENGTH, COOKIE, ORIGIN, SET_COOKIE, STRICT_TRANSPORT_SECURITY as STS,
    TRANSFER_ENCODING,
};
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::protocols::l4::socket::SocketAddr as PSocketAddr;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::{HttpPeer, HttpUpstreamRequestPolicy};

use crate::app::{App, SessionState};
use crate::config::Config;
use crate::policy::{self, Decision};
use crate::portal;
use crate::request::Inbound;
use crate::respond::{self, Answer, Client, Message, Response};
use crate::users::User;

pub use crate::request::{MAX_HEADERS, MAX_HEADER_BYTES};

pub struct Gateway {
    pub app: Arc<App>,
}

/// Per-request state shared across Pingora's phases: empty until
/// `request_filter` decides to forward, then the [`Route`].
#[derive(Default)]
pub struct Ctx {
    /// Boxed: Pingora moves the per-request context with its (large) request future,
    /// so a pointer here copies far less than the route itself would.
    route: Option<Box<Route>>,
    /// The request's hop-by-hop fields, as the header pass in `request_filter` found them.
    hop: headers::HopByHop,
}

/// A request on its way to an upstream: what the later phases need, moved in
/// once (no per-request copies of the site's strings).
struct Route {
    /// The config snapshot the request was judged on: its site is `cfg.sites[inbound.site]`.
    cfg: Arc<Config>,
    inbound: Inbound,
    /// A complete sign-in's identity, for the site's identity headers.
    identity: Option<Identity>,
    /// The normalised path and query to send, when it differs from the target as
    /// received (parsed once: every try sends it).
    uri: Option<http::Uri>,
    /// The request's `Cookie` is this gateway's session cookie alone (the usual
    /// signed-in request): the upstream copy drops it whole, unparsed.
    only_our_cookie: bool,
    /// The request has a body, and its site doesn't keep connections after one
    /// (`keep_alive_after_bodies`): it goes upstream with `Connection: close`. An
    /// application that answers without reading a body (an early error, a handler
    /// that ignores it) would otherwise read it as the next request on the pooled
    /// connection, which no rule judged (a desync); told to close, it reads nothing
    /// after this request (RFC 9112 §9.6).
    close_upstream: bool,
    /// A WebSocket handshake's key for the application: the gateway's own, made once
    /// for every try (see [`headers::upgrade_completed`]).
    ws_key: Option<http::HeaderValue>,
}

/// Pingora tries again on a fresh connection when a pooled one turns out closed,
/// calling `upstream_request_filter` again on the original request: every try must
/// carry the same address, host and normalised path, so the route's values are
/// read (copied as reference counts), never used up.
struct Identity {
    user: Arc<User>,
    /// Factors the sign-in proved (for the assertion).
    factors: u8,
}

/// The peer's address. An IPv4 client of a dual-stack (`[::]`) listener arrives as
/// `::ffff:a.b.c.d`: it is read as the IPv4 address it is, so that IPv4 networks in
/// rules and `server.trusted_proxies`, and `X-Forwarded-For`, see it as one.
fn peer_ip(session: &Session) -> IpAddr {
    match session.client_addr() {
        Some(PSocketAddr::Inet(a)) => a.ip().to_canonical(),
        _ => IpAddr::from([127, 0, 0, 1]),
    }
}

fn accept_html(session: &Session) -> bool {
    crate::request::accepts_html(&session.req_header().headers)
}

/// Is the request's length given in a way an upstream might read differently
/// (see [`framing`])? HTTP/1 is checked on the raw header bytes, because Pingora
/// drops `Content-Length` when `Transfer-Encoding` is present and accepts bare LF.
fn ambiguous_framing(session: &Session, raw: Option<&[u8]>, lengths: bool) -> bool {
    let req = session.req_header();
    // HTTP/1: the line ends as received, and the lengths Pingora parsed (or, when it
    // dropped them for a `Transfer-Encoding`, as received). `lengths`: the header
    // pass saw a `Content-Length` or `Transfer-Encoding` (else none to look up).
    let checked = match raw {
        Some(raw) if !lengths => framing::check_h1(raw, [], false),
        Some(raw) => framing::check_h1(
            raw,
            req.headers.get_all(CONTENT_LENGTH),
            req.headers.contains_key(TRANSFER_ENCODING),
        ),
        None => framing::check_lengths(
            req.headers.get_all(CONTENT_LENGTH),
            req.headers.contains_key(TRANSFER_ENCODING),
        ),
    };
    match checked {
        Ok(()) => false,
        Err(e) => {
            tracing::debug!(reason = %e, "request refused: ambiguous framing");
            true
        }
    }
}

/// An error as it can go to the log: its kind, context and causes, except a
/// context holding the raw bytes read — Pingora puts an invalid head there
/// (`buf: …`: `Set-Cookie` values, the start of a body), which is left out.
fn without_read_bytes(e: &Error) -> String {
    fn pingora_error<'a>(
        c: &'a (dyn std::error::Error + Send + Sync + 'static),
    ) -> Option<&'a Error> {
        c.downcast_ref::<Error>()
            .or_else(|| c.downcast_ref::<Box<Error>>().map(|b| &**b))
    }
    let mut out = String::new();
    let mut next = Some(e);
    while let Some(err) = next.take() {
        if !out.is_empty() {
            out.push_str(" cause: ");
        }
        out.push_str(&format!("{:?}", err.etype()));
        match err.context.as_ref().map(|c| c.as_str()) {
            Some(c) if err.etype() == &ErrorType::InvalidHTTPHeader || c.starts_with("buf") => {
                out.push_str(" (the bytes read are not logged)");
            }
            Some(c) => out.push_str(&format!(" context: {c}")),
            None => {}
        }
        if let Some(c) = err.cause.as_deref() {
            match pingora_error(c) {
                Some(inner) => next = Some(inner),
                None => out.push_str(&format!(" cause: {c}")),
            }
        }
    }
    out
}

/// An application's answer never sets or clears the gateway's own cookies (see
/// [`headers::sets_own_cookie`]); its other `Set-Cookie` headers go on in order.
fn drop_own_set_cookies(resp: &mut ResponseHeader, own: &[String]) -> Result<()> {
    if !resp
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .any(|v| headers::sets_own_cookie(v, own))
    {
        return Ok(());
    }
    let (dropped, kept): (Vec<_>, Vec<_>) = resp
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .cloned()
        .partition(|v| headers::sets_own_cookie(v, own));
    tracing::warn!(
        dropped = dropped.len(),
        "the application tried to set or clear one of the gateway's own cookies; dropped"
    );
    resp.remove_header(&SET_COOKIE);
    for v in kept {
        resp.append_header(SET_COOKIE, v)?;
    }
    Ok(())
}

async fn send(session: &mut Session, r: Response, head: bool) -> Result<()> {
    let mut h = ResponseHeader::build(r.status, Some(r.headers.len() + 2))?;
    for (k, v) in r.headers.iter() {
        // (Names and values were checked when set: see `Response::header`.)
        h.append_header(respond::titled(k), v.clone())?;
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

    /// A message page in the person's language (HTML or JSON by `html`).
    async fn message(&self, session: &mut Session, m: Message, html: bool) -> Result<bool> {
        if m.close {
            session.set_keepalive(None);
        }
        let mut r = crate::i18n::sync_scope(self.page_language(session), || {
            portal::status_page(&self.app, html, m.status, m.heading, &m.text)
        });
        if let Some(s) = m.retry_after {
            r.header("Retry-After", s.to_string());
        }
        self.respond(session, r, true).await
    }

    /// What an inbound request is ([`crate::request::classify`]), from what
    /// only the edge can see: the peer, TLS, the raw target and header bytes.
    fn classify(
        &self,
        session: &Session,
        cfg: &Config,
        pass: &headers::NamePass<'_>,
        body: bool,
    ) -> std::result::Result<Inbound, Message> {
        // HTTP/1: the header as received.
        let raw = session.as_http1().map(|h1| h1.get_headers_raw_bytes());
        let req = session.req_header();
        if raw
            .as_deref()
            .is_some_and(|r| !crate::request::plain_target(r, req.method.as_str(), req.raw_path()))
        {
            return Err(Message::refusal(
                400,
                "Bad request",
                "The request target is not a path.",
            ));
        }
        let tls = session
            .digest()
            .and_then(|d| d.ssl_digest.as_ref())
            .is_some();
        let head = crate::request::Head {
            headers: &req.headers,
            host: pass.host,
            uri: &req.uri,
            raw_target: req.raw_path(),
            peer: peer_ip(session),
            tls,
            ambiguous_framing: ambiguous_framing(session, raw.as_deref(), pass.framing),
            raw_len: raw.as_ref().map(|r| r.len()),
        };
        let classified = crate::request::classify(cfg, &head);
        // A body on a method whose body means nothing: see [`crate::request::bodiless`].
        // (The result is looked at in place: an `Inbound` is large to move.)
        if body && crate::request::bodiless(&req.method) {
            if let Ok(inbound) = &classified {
                if !cfg
                    .sites
                    .get(inbound.site)
                    .is_some_and(|s| s.allow_get_bodies)
                {
                    // (At debug, as the other refusals of a request's framing.)
                    tracing::debug!(
                        method = %req.method,
                        site = %inbound.host,
                        "request refused: a body on a method whose body means nothing (see allow_get_bodies)"
                    );
                    return Err(Message::refusal(
                        400,
                        "Bad request",
                        "A GET, HEAD, OPTIONS or TRACE request can't carry a body here.",
                    ));
                }
            }
        }
        classified
    }

    /// The gateway's own pages.
    async fn portal(
        &self,
        session: &mut Session,
        mut inbound: Inbound,
        prefix: &str,
    ) -> Result<bool> {
        self.app.metrics.outcome.portal.inc();
        let forwarded = inbound.forward_auth.take().map(|f| *f);
        let sub = inbound.portal_path(prefix).unwrap_or("/login");
        let body = match self.read_body(session).await? {
            Ok(b) => b,
            Err(()) => {
                let m = Message::refusal(413, "Request too large", "The form sent too much data.");
                return self.message(session, m, accept_html(session)).await;
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
            accept_html: accept_html(session),
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
        mut route: Box<Route>,
        cookie: Option<http::HeaderValue>,
        body: bool,
    ) -> Result<bool> {
        let app = &self.app;
        // The usual signed-in request: the session cookie alone, remembered with its
        // record (one look-up); anything else the long way. What follows `NAME=` is
        // looked up as it is: the memo holds only whole cookie values this gateway
        // decrypted (no `;`, no blanks), so a hit is the cookie alone, unscanned.
        // Otherwise the header is read properly.
        let (lone, remembered) = match cookie
            .as_ref()
            .and_then(|c| headers::after_cookie_name(c, &app.cookies.name))
        {
            Some(value) => match app.remembered_now(value) {
                Some(state) => (Some(value), Some(Ok(state))),
                None => match app.remembered_state(value).await {
                    Some(state) => (Some(value), Some(state)),
                    None => (
                        cookie
                            .as_ref()
                            .and_then(|c| headers::lone_cookie(c, &app.cookies.name)),
                        None,
                    ),
                },
            },
            None => (None, None),
        };
        let looked = match remembered {
            Some(looked) => looked,
            None => {
                let cookie_header = headers::cookie_header(session.req_header());
                app.session_state(&cookie_header).await
            }
        };
        let only_our_cookie = lone.is_some();
        let (state, store_down) = match looked {
            Ok(s) => (s, false),
            Err(e) => {
                tracing::warn!(error = %e, "store unavailable; failing closed");
                (SessionState::None, true)
            }
        };
        let method = session.req_header().method.clone();
        let overridden = policy::method_override(&method, route.inbound.query.as_deref());
        let preq = policy::Request {
            host: &route.inbound.host,
            path: &route.inbound.path,
            method: &method,
            client: route.inbound.client.client,
            overridden: &overridden,
        };
        let decision = crate::app::decide(&route.cfg, &state, &preq);
        let outcome = &app.metrics.outcome;
        match decision {
            Decision::Allow => outcome.allow.inc(),
            Decision::Deny => outcome.deny.inc(),
            _ if store_down => outcome.unavailable.inc(),
            Decision::Login => outcome.login.inc(),
            Decision::SecondFactor | Decision::Enrol => outcome.second_factor.inc(),
        }
        let ended = matches!(state, SessionState::Ended)
            .then(|| app.cookies.clear(&app.cookies.name, &route.inbound.host));
        let back = respond::Back {
            portal: &route.cfg.server.portal_prefix,
            here: &route.inbound.path,
            query: route.inbound.query.as_deref(),
        };
        // (`Accept` is read only for an answer made here: a forwarded request needs none.)
        let html = decision != Decision::Allow && accept_html(session);
        match respond::decision(Client::of(html), decision, store_down, ended, back) {
            Answer::Allow => {
                // Identity only for complete sign-ins: a session still waiting for its
                // second factor may pass `bypass` rules, but anonymously.
                route.identity = state
                    .into_complete()
                    .map(|(user, factors)| Identity { user, factors });
                route.uri = match route.inbound.rewrite.take() {
                    Some(u) => Some(
                        u.parse::<http::Uri>()
                            .or_err(ErrorType::InternalError, "normalised path is a URI")?,
                    ),
                    None => None,
                };
                route.close_upstream = body
                    && !route
                        .cfg
                        .sites
                        .get(route.inbound.site)
                        .is_some_and(|s| s.keep_alive_after_bodies);
                // (An upgrade is hop-by-hop: the usual request is never one.)
                route.ws_key = (ctx.hop == headers::HopByHop::Other
                    && !route.close_upstream
                    && session
                        .req_header()
                        .headers
                        .contains_key(http::header::SEC_WEBSOCKET_KEY))
                .then(|| http::HeaderValue::from_str(&headers::websocket_key()).ok())
                .flatten();
                route.only_our_cookie = only_our_cookie;
                ctx.route = Some(route);
                Ok(false)
            }
            Answer::Page(m) => Box::pin(self.message(session, m, html)).await,
            Answer::Reply(r) => Box::pin(self.respond(session, r, false)).await,
        }
    }

    /// The forwarded request's headers, made from the client's (`client`, replaced):
    /// the site's head ([`crate::identity::SiteHead`]: `Host`, `X-Forwarded-For`/
    /// `-Proto`/`-Host`, the identity for complete sign-ins only) with the client's
    /// headers after it, no gateway cookies, and the request's own additions. Called
    /// once per try (see [`Route`]): nothing the next try needs is used up. What can
    /// fail is done first, so a refused head is left as it was.
    fn forwarded_head(
        &self,
        route: &Route,
        hop: headers::HopByHop,
        client: &mut http::HeaderMap,
    ) -> Result<()> {
        let Some(site) = route.cfg.sites.get(route.inbound.site) else {
            return Error::e_explain(ErrorType::InternalError, "no such site");
        };
        // UTF-8 names pass as raw bytes (obs-text); control characters are refused.
        // (Client copies of these names were stripped in `request_filter`.)
        let assertion = match (&route.identity, &site.identity.assertion) {
            (Some(id), Some(n)) => self
                .app
                .assertion_token(&route.cfg, &route.inbound.host, &id.user, id.factors)
                .map(|t| {
                    http::HeaderValue::from_maybe_shared(Bytes::from(t))
                        .or_err(ErrorType::InternalError, "assertion is a header value")
                })
                .transpose()?
                .map(|t| (n.clone(), t)),
            _ => None,
        };
        // The application never sees the gateway's own cookies: only the gateway's
        // own cookies (the usual signed-in request) build nothing.
        let cookie = if route.only_our_cookie {
            None
        } else {
            let kept =
                headers::kept_cookies(client.get_all(COOKIE).iter(), &self.app.cookies.own_names);
            (!kept.is_empty())
                .then(|| {
                    http::HeaderValue::from_maybe_shared(Bytes::from(kept))
                        .or_err(ErrorType::InvalidHTTPHeader, "cookie header")
                })
                .transpose()?
        };
        // Made once per account and site: a copy here is reference counts.
        let mut head = site.head.copy(route.identity.as_ref().map(|id| &*id.user));
        crate::identity::fill(
            &mut head,
            route.inbound.client.xff.clone(),
            route.inbound.client.proto,
        );
        let dropped = headers::Dropped {
            connection: hop == headers::HopByHop::Connection || route.close_upstream,
            // A request with a body goes with `Connection: close`: no upgrade, so
            // neither its `Upgrade` nor a key (attack pass: a POST's pair went on).
            websocket_key: route.ws_key.is_some() || route.close_upstream,
            upgrade: route.close_upstream,
        };
        let mut h = headers::forward(head, std::mem::take(client), dropped)?;
        if let Some(c) = cookie {
            h.append(COOKIE, c);
        }
        if route.close_upstream {
            h.insert(CONNECTION, http::HeaderValue::from_static("close"));
        }
        if let Some(k) = &route.ws_key {
            h.insert(http::header::SEC_WEBSOCKET_KEY, k.clone());
        }
        if let Some((n, t)) = assertion {
            h.insert(n, t);
        }
        *client = h;
        Ok(())
    }

    async fn read_body(&self, session: &mut Session) -> Result<std::result::Result<Bytes, ()>> {
        let mut buf = Vec::new();
        // A body the client sent wrong (bad chunk framing) or stopped sending is
        // the client's failure: 400, or nothing for a closed connection — never a 500.
        while let Some(chunk) = session
            .read_request_body()
            .await
            .map_err(|e| e.into_down())?
        {
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
        // One snapshot of the config for the whole request (kept in the route).
        let cfg = self.app.config_now();
        // Slow request bodies are cut off (Pingora bounds header reads itself).
        session.set_read_timeout(Some(Duration::from_secs(30)));
        // One look at every header: what to strip, hop-by-hop fields, lengths, `Host`
        // and a lone `Cookie`.
        let h1 = session.as_http1().is_some();
        // HTTP/2: a stream its headers didn't end (and no `content-length: 0`).
        let h2_body = !h1 && !session.is_body_empty();
        let pass = headers::spoofable_names(&session.req_header().headers, &cfg.identity_strip);
        let body =
            crate::request::has_body(&session.req_header().headers, h1, pass.framing, h2_body);
        let inbound = match self.classify(session, &cfg, &pass, body) {
            Ok(i) => i,
            Err(m) => {
                let html = accept_html(session);
                return Box::pin(self.message(session, m, html)).await;
            }
        };
        // Before anything is set: the gateway's own identity headers (any site's
        // configured names too) never come from the client. (Forward-auth facts
        // were read by `classify`.)
        // Only a head with something to strip is taken apart for it (see
        // [`headers::Plain`]; the target put back is the one taken: it parsed before).
        ctx.hop = pass.hop;
        let cookie = pass.cookie;
        if let Some(found) = pass.strip {
            let mut plain = headers::Plain::take(session.req_header_mut());
            for n in found {
                plain.parts.headers.remove(&n);
            }
            plain
                .put(session.req_header_mut())
                .map_err(|e| e.into_down())?;
        }
        if inbound.portal_path(&cfg.server.portal_prefix).is_some() {
            // Boxed, like the other answers made here: the pages' state is large, and
            // inline it would be copied with every request's future (issue #11).
            return Box::pin(self.portal(session, inbound, &cfg.server.portal_prefix)).await;
        }
        // Boxed once, here: the request's facts move no further (issue #11).
        let route = Box::new(Route {
            cfg,
            inbound,
            identity: None,
            uri: None,
            only_our_cookie: false,
            close_upstream: false,
            ws_key: None,
        });
        self.judge(session, ctx, route, cookie, body).await
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let Some(route) = &ctx.route else {
            return Error::e_explain(ErrorType::InternalError, "no upstream chosen");
        };
        let Some(site) = route.cfg.sites.get(route.inbound.site) else {
            return Error::e_explain(ErrorType::InternalError, "no such site");
        };
        let timeout = route.cfg.server.upstream_timeout;
        // Over TLS the site's host is the SNI and the name its certificate must carry.
        // Each site has its own pool (the SNI is part of Pingora's pool key, and so is
        // `group_key`), so two sites on one upstream address never share a connection
        // (one site's desync can't reach the other's users). Plain HTTP needs no SNI:
        // the site's key alone keeps the pools apart, with no copy of the host.
        let sni = if site.upstream_tls {
            site.host.to_string()
        } else {
            String::new()
        };
        let mut peer = HttpPeer::new(site.upstream, site.upstream_tls, sni);
        peer.group_key = site.pool_key;
        // A site's own CA replaces the system roots for its upstream.
        peer.options.ca = site
            .upstream_ca
            .as_ref()
            .filter(|_| site.upstream_tls)
            .map(|c| c.0.clone());
        peer.options.connection_timeout = Some(timeout.min(Duration::from_secs(5)));
        peer.options.total_connection_timeout = Some(timeout.min(Duration::from_secs(10)));
        peer.options.read_timeout = Some(timeout);
        peer.options.write_timeout = Some(timeout);
        // The gateway closes an idle pooled connection first (before an application
        // with a longer keep-alive races it with a request), and connections made
        // under an older config don't outlive it by more than this.
        peer.options.idle_timeout = Some(Duration::from_secs(60));
        // Nothing hop-by-hop left for Pingora to remove (the usual request; see
        // [`headers::HopByHop`]): its standard pass over the head is skipped, and
        // `upstream_request_filter` removes a plain `Connection` itself.
        if ctx.hop != headers::HopByHop::Other {
            peer.options.http_upstream_request_policy = HttpUpstreamRequestPolicy::preserve();
        }
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        up: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let Some(route) = &ctx.route else {
            return Error::e_explain(ErrorType::InternalError, "no upstream chosen");
        };
        let mut plain = headers::Plain::take(up);
        let changed = self.forwarded_head(route, ctx.hop, &mut plain.parts.headers);
        if let Some(uri) = &route.uri {
            plain.set_uri(uri.clone());
        }
        // The head goes back whatever was refused; then the request fails.
        plain.put(up)?;
        changed
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
        ctx: &mut Ctx,
    ) -> Result<()> {
        // (The route's config says whether there is a policy at all: the usual request
        // looks no further.)
        let hsts_configured = ctx
            .route
            .as_ref()
            .is_none_or(|r| r.cfg.server.tls.as_ref().is_some_and(|t| t.hsts.is_some()));
        if hsts_configured {
            if let Some(v) = self.hsts(session) {
                resp.insert_header(STS, v)?;
            }
        }
        // (A walk over an answer's few names is cheaper than a look-up.)
        if resp.headers.keys().any(|k| k == SET_COOKIE) {
            drop_own_set_cookies(resp, &self.app.cookies.own_names)?;
        }
        if resp.status == http::StatusCode::SWITCHING_PROTOCOLS {
            let sent = ctx
                .route
                .as_ref()
                .and_then(|r| r.ws_key.as_ref())
                .map_or(&b""[..], |k| k.as_bytes());
            let req = &session.req_header().headers;
            if sent.is_empty() || !headers::upgrade_completed(req, &resp.headers, sent) {
                let site = ctx.route.as_ref().map_or("", |r| &*r.inbound.host);
                let path = ctx.route.as_ref().map_or("", |r| &*r.inbound.path);
                tracing::warn!(
                    site,
                    path,
                    "the application answered 101 without completing the upgrade the request asked for; refused"
                );
                return Error::e_explain(
                    ErrorType::HTTPStatus(502),
                    "101 without a completed upgrade",
                );
            }
            // The client checks the accept value of the key it sent.
            let client_key = req
                .get(http::header::SEC_WEBSOCKET_KEY)
                .map_or(&b""[..], |k| k.as_bytes().trim_ascii());
            resp.insert_header(
                http::header::SEC_WEBSOCKET_ACCEPT,
                headers::websocket_accept(client_key),
            )?;
            let timeout = self.app.config.load().server.upstream_timeout;
            session.set_read_timeout(Some(timeout));
        }
        Ok(())
    }

    /// Pingora's own log line for a failed request carries the whole error, whose
    /// context can hold raw bytes read from either side: [`fail_to_proxy`](Self::fail_to_proxy)
    /// logs it instead, without them.
    fn suppress_error_log(&self, _session: &Session, _ctx: &Ctx, _error: &Error) -> bool {
        true
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
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
            let html = accept_html(session);
            if let Err(err) = self.message(session, respond::failure(code), html).await {
                tracing::debug!(error = %err, "could not send error page");
            }
        }
        // The error's context can hold the raw bytes read (Pingora puts an invalid
        // head or chunk in it: `Set-Cookie` values, the start of a body), so above
        // `debug` only its kind and side are logged (README: cookie values are never
        // logged at info, warn or error).
        if code >= 500 {
            // The site, which Pingora's peer description no longer names for plain
            // HTTP (its pool is keyed apart, with no SNI: see `upstream_peer`).
            let site = ctx.route.as_ref().map_or("", |r| &*r.inbound.host);
            tracing::warn!(error = %without_read_bytes(e), side = ?e.esource(), status = code, site, "proxy failure");
        }
        tracing::debug!(error = %e, "proxy failure in full");
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }
}
