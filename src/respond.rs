//! The one place that turns an access decision into an answer: who gets a
//! redirect to the sign-in (or second-step) page, who gets 401 JSON, who gets a
//! 403 or 503 page — for a browser, an API client, or a forward-auth proxy.
//! Also the [`Response`] type every answer the gateway writes itself is made of.
//!
//! Pure: no Pingora, no templates, no store. A [`Answer::Page`] is rendered by the
//! caller with the UI's message template (HTML for browsers, `{error, message}` JSON
//! for others; see `portal::status_page`).
//!
//! ```text
//!  decision      browser                       API client                     forward-auth (/verify)
//!  Allow         forward                       forward                        200 + identity (caller)
//!  Deny          403 page                      403 {error,message}            403 {"error":"forbidden"}
//!  store down*   503 page + Retry-After        503 {error,message}            503 {"error":"unavailable"}
//!  Login         302 {portal}/login?rd=..      401 {"error":"unauthenticated",  ?redirect=1: 302 {portal}/login?rd=<url>
//!                (&expired=1, cookies cleared       "login","session_ended"}   else 401 {"error":"unauthenticated",
//!                 when the session ended)           + WWW-Authenticate              "login":<url>} + Location
//!  SecondFactor  302 {portal}/2fa?rd=..        401 "second_factor_required"   as Login, to /2fa
//!  Enrol         302 {portal}/2fa/setup?rd=..  401 "second_factor_required"   as Login, to /2fa/setup
//!
//!  * store down: the session couldn't be read, and the rule wanted one (Allow and Deny
//!    don't depend on it, so bypass rules keep working and deny rules keep refusing).
//! ```
//!
//! Portal pages that need a (complete) session first use [`sign_in_first`] and
//! [`go_to`]; after a sign-in, [`after_sign_in`] validates `rd` and chains the step
//! still to do.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;

use crate::policy::Decision;
use crate::redirect::RedirectPolicy;
use crate::session::Pending;

/// An answer the gateway writes itself (pages, JSON, redirects).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// In the order set; a name may repeat (`Set-Cookie`).
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response {
        let mut r = Response {
            status,
            headers: HeaderMap::new(),
            body: body.into(),
        };
        r.header(CONTENT_TYPE.as_str(), content_type);
        r
    }

    pub fn html(status: u16, body: String) -> Response {
        Response::new(status, "text/html; charset=utf-8", body)
    }

    pub fn json(status: u16, body: serde_json::Value) -> Response {
        Response::new(status, "application/json", body.to_string())
    }

    pub fn redirect(status: u16, location: &str) -> Response {
        let mut r = Response::new(status, "text/plain; charset=utf-8", "");
        r.header(LOCATION.as_str(), location);
        r
    }

    /// Adds a header (another one of the same name too). A name or value that
    /// isn't valid HTTP (e.g. a control character in a user's name) is left out
    /// and logged: one header never fails a whole answer.
    pub fn header(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        let name = HeaderName::from_bytes(name.as_bytes());
        let value = HeaderValue::try_from(value.into());
        match (name, value) {
            (Ok(n), Ok(v)) => {
                self.headers.append(n, v);
            }
            (Ok(n), Err(_)) => tracing::warn!(header = %n, "header left out: invalid value"),
            (Err(_), _) => tracing::warn!("header left out: invalid name"),
        }
        self
    }

    /// Adds a header, typed.
    pub fn append(&mut self, name: HeaderName, value: HeaderValue) -> &mut Self {
        self.headers.append(name, value);
        self
    }

    /// The first value of header `name` (any letter case), if it is text.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// How a header name is written on the wire over HTTP/1 (HTTP/2 is lower
/// case): each word capitalised, as browsers and curl show them
/// (`content-security-policy` → `Content-Security-Policy`).
pub fn titled(name: &HeaderName) -> String {
    if *name == WWW_AUTHENTICATE {
        return "WWW-Authenticate".into();
    }
    let mut up = true;
    name.as_str()
        .chars()
        .map(|c| {
            let out = if up { c.to_ascii_uppercase() } else { c };
            up = c == '-';
            out
        })
        .collect()
}

/// `s` as a query-string value.
pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Who is asking, as far as the shape of the answer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// Takes HTML (`Accept` has `text/html`): redirects and pages.
    Browser,
    /// Anything else: status codes and JSON.
    Api,
    /// A trusted proxy asking `/verify` about a request it holds; `redirect` is
    /// its `?redirect=1` (answer 302 instead of 401).
    ForwardAuth { redirect: bool },
}

impl Client {
    /// A browser or an API client, by `Accept`.
    pub fn of(accept_html: bool) -> Client {
        if accept_html {
            Client::Browser
        } else {
            Client::Api
        }
    }
}

/// A step of the sign-in the person must take before going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Login,
    SecondFactor,
    Enrol,
}

impl Step {
    /// The page of the step, below the portal prefix.
    pub fn page(self) -> &'static str {
        match self {
            Step::Login => "login",
            Step::SecondFactor => "2fa",
            Step::Enrol => "2fa/setup",
        }
    }

    /// The step a decision asks for (`None`: Allow and Deny ask for none).
    pub fn of_decision(d: Decision) -> Option<Step> {
        match d {
            Decision::Login => Some(Step::Login),
            Decision::SecondFactor => Some(Step::SecondFactor),
            Decision::Enrol => Some(Step::Enrol),
            Decision::Allow | Decision::Deny => None,
        }
    }

    /// The step a session still waits for (`None` when its sign-in is complete).
    pub fn of_pending(p: Pending) -> Option<Step> {
        match p {
            Pending::Done => None,
            Pending::SecondFactor => Some(Step::SecondFactor),
            Pending::Enrol => Some(Step::Enrol),
        }
    }

    /// The `error` of a 401 for an API client.
    fn error(self) -> &'static str {
        match self {
            Step::Login => "unauthenticated",
            _ => "second_factor_required",
        }
    }
}

/// `{portal}/{step}?rd={back}`: the step's page, coming back to `back` after.
pub fn step_url(portal: &str, step: Step, back: &str) -> String {
    format!("{portal}/{}?rd={}", step.page(), urlencode(back))
}

/// A message page: HTML for browsers, `{error, message}` JSON for others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub status: u16,
    pub heading: &'static str,
    pub text: String,
    /// `Retry-After` seconds (503s).
    pub retry_after: Option<u32>,
    /// The connection is not kept alive after it (refusals: what's left of the
    /// request is not worth reading).
    pub close: bool,
}

impl Message {
    /// A refusal: the request is answered, and its connection closed.
    pub fn refusal(status: u16, heading: &'static str, text: impl Into<String>) -> Message {
        Message {
            status,
            heading,
            text: text.into(),
            retry_after: None,
            close: true,
        }
    }
}

/// The page for a request that could not be proxied (`code` as Pingora's
/// failure handling chose it: 502/504 upstream, 408 slow client, 400 unreadable).
/// 5xx carry `Retry-After`; the connection is not reused either way.
pub fn failure(code: u16) -> Message {
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
    Message {
        status: code,
        heading,
        text: text.into(),
        retry_after: (code >= 500).then_some(5),
        close: true,
    }
}

/// What to do with a request, decided.
#[derive(Debug)]
pub enum Answer {
    /// Let it through (forward it; for forward-auth: 200 with the identity).
    Allow,
    /// A message page, rendered by the caller.
    Page(Message),
    /// An answer built here.
    Reply(Response),
}

/// Where a request that must sign in (further) first is sent.
#[derive(Debug, Clone, Copy)]
pub struct Back<'a> {
    /// The portal as the client reaches it: `server.portal_prefix`, or for
    /// forward-auth an absolute URL (`public_url` or the original site) plus the prefix.
    pub portal: &'a str,
    /// Where to come back to after the step: the request's path, or for
    /// forward-auth the original request's absolute URL ...
    pub here: &'a str,
    /// ... and its query, if any (kept apart so that a request let through never
    /// pays for joining them).
    pub query: Option<&'a str>,
}

impl Back<'_> {
    /// `here` with its query: the `rd` of the step's page.
    fn target(&self) -> std::borrow::Cow<'_, str> {
        match self.query {
            Some(q) => format!("{}?{q}", self.here).into(),
            None => self.here.into(),
        }
    }
}

/// The access decision `d` for `client`, as an [`Answer`]. `store_down`: the
/// session couldn't be read (it was judged as no session). `ended`: the request's
/// session cookie named a session that is over; `Some` holds the `Set-Cookie`
/// values that clear its cookies.
pub fn decision(
    client: Client,
    d: Decision,
    store_down: bool,
    ended: Option<Vec<String>>,
    back: Back<'_>,
) -> Answer {
    let Some(step) = Step::of_decision(d) else {
        return match (d, client) {
            (Decision::Allow, _) => Answer::Allow,
            (_, Client::ForwardAuth { .. }) => {
                Answer::Reply(Response::json(403, json!({ "error": "forbidden" })))
            }
            _ => Answer::Page(Message::refusal(
                403,
                "Access denied",
                "You do not have access to this page.",
            )),
        };
    };
    if store_down {
        return match client {
            Client::ForwardAuth { .. } => {
                Answer::Reply(Response::json(503, json!({ "error": "unavailable" })))
            }
            _ => Answer::Page(Message {
                status: 503,
                heading: "Temporarily unavailable",
                text: "Please try again in a few seconds.".into(),
                retry_after: Some(5),
                close: false,
            }),
        };
    }
    Answer::Reply(sign_in_first(client, step, back, ended))
}

/// A request that needs `step` first: a browser is sent there (302, and back to
/// `back.here` after), an API client gets 401 JSON naming the page, a forward-auth
/// proxy gets 401 with the full URL in `login` and `Location` (or the 302 itself).
/// `ended`: see [`decision`]; the page then says the session ended.
pub fn sign_in_first(
    client: Client,
    step: Step,
    back: Back<'_>,
    ended: Option<Vec<String>>,
) -> Response {
    let mut location = step_url(back.portal, step, &back.target());
    let mut r = match client {
        Client::Browser => {
            if ended.is_some() {
                location.push_str("&expired=1");
            }
            Response::redirect(302, &location)
        }
        Client::Api => {
            let mut r = Response::json(
                401,
                json!({
                    "error": step.error(),
                    "login": format!("{}/{}", back.portal, step.page()),
                    "session_ended": ended.is_some(),
                }),
            );
            r.header("WWW-Authenticate", "Cookie realm=\"portcullis\"");
            r
        }
        Client::ForwardAuth { redirect: true } => Response::redirect(302, &location),
        Client::ForwardAuth { redirect: false } => {
            let mut r = Response::json(
                401,
                json!({ "error": "unauthenticated", "login": location }),
            );
            r.header("WWW-Authenticate", "Cookie realm=\"portcullis\"");
            // For nginx: `auth_request_set $login $upstream_http_location; error_page 401 =302 $login;`
            r.header("Location", location);
            r
        }
    };
    for c in ended.into_iter().flatten() {
        r.header("Set-Cookie", c);
    }
    r.header("Cache-Control", "no-store");
    r
}

/// A redirect (`status` 302 or 303) to `step`'s page, coming back to `back.here`:
/// for portal pages only browsers use (forms).
pub fn go_to(status: u16, step: Step, back: Back<'_>) -> Response {
    Response::redirect(status, &step_url(back.portal, step, &back.target()))
}

/// 303 back to `rd` (already validated; `/` when empty): a step is done.
pub fn back_to(rd: &str) -> Response {
    Response::redirect(303, if rd.is_empty() { "/" } else { rd })
}

/// Where a browser goes after a password was accepted: `rd` if the redirect
/// policy accepts it (else `/`), through the step the session still waits for.
pub fn after_sign_in(
    redirects: &RedirectPolicy,
    rd: &str,
    pending: Pending,
    portal: &str,
) -> String {
    let target = redirects.validate(rd).unwrap_or_else(|| "/".into());
    match Step::of_pending(pending) {
        None => target,
        Some(step) => step_url(portal, step, &target),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Decision; 5] = [
        Decision::Allow,
        Decision::Login,
        Decision::SecondFactor,
        Decision::Enrol,
        Decision::Deny,
    ];
    const CLIENTS: [Client; 4] = [
        Client::Browser,
        Client::Api,
        Client::ForwardAuth { redirect: false },
        Client::ForwardAuth { redirect: true },
    ];

    fn back() -> Back<'static> {
        Back {
            portal: "/_auth",
            here: "/admin/x",
            query: Some("a=1&b=2"),
        }
    }

    fn fa_back() -> Back<'static> {
        Back {
            portal: "https://auth.test/_auth",
            here: "https://app.test/admin?a=1",
            query: None,
        }
    }

    fn body(r: &Response) -> serde_json::Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    fn reply(a: Answer) -> Response {
        match a {
            Answer::Reply(r) => r,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn allow_is_allow_for_everyone_even_with_the_store_down() {
        for c in CLIENTS {
            for down in [false, true] {
                let a = decision(c, Decision::Allow, down, None, back());
                assert!(matches!(a, Answer::Allow), "{c:?} {down}");
            }
        }
    }

    #[test]
    fn deny_is_a_403_page_or_forward_auth_json() {
        for c in [Client::Browser, Client::Api] {
            for down in [false, true] {
                match decision(c, Decision::Deny, down, None, back()) {
                    Answer::Page(m) => {
                        assert_eq!((m.status, m.heading), (403, "Access denied"));
                        assert!(m.close && m.retry_after.is_none());
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        for redirect in [false, true] {
            let r = reply(decision(
                Client::ForwardAuth { redirect },
                Decision::Deny,
                false,
                None,
                fa_back(),
            ));
            assert_eq!(r.status, 403);
            assert_eq!(body(&r), json!({ "error": "forbidden" }));
        }
    }

    #[test]
    fn store_down_fails_closed_for_every_step() {
        for d in [Decision::Login, Decision::SecondFactor, Decision::Enrol] {
            for c in [Client::Browser, Client::Api] {
                match decision(c, d, true, None, back()) {
                    Answer::Page(m) => {
                        assert_eq!(m.status, 503);
                        assert_eq!(m.retry_after, Some(5));
                        assert!(!m.close);
                    }
                    other => panic!("{d:?} {c:?}: {other:?}"),
                }
            }
            let r = reply(decision(
                Client::ForwardAuth { redirect: true },
                d,
                true,
                None,
                fa_back(),
            ));
            assert_eq!(
                (r.status, body(&r)),
                (503, json!({ "error": "unavailable" }))
            );
        }
    }

    #[test]
    fn browsers_are_sent_to_the_step_and_back() {
        for (d, page) in [
            (Decision::Login, "login"),
            (Decision::SecondFactor, "2fa"),
            (Decision::Enrol, "2fa/setup"),
        ] {
            let r = reply(decision(Client::Browser, d, false, None, back()));
            assert_eq!(r.status, 302);
            assert_eq!(
                r.header_value("location"),
                Some(format!("/_auth/{page}?rd=%2Fadmin%2Fx%3Fa%3D1%26b%3D2").as_str())
            );
            assert_eq!(r.header_value("cache-control"), Some("no-store"));
            assert!(r.header_value("set-cookie").is_none());
        }
    }

    #[test]
    fn an_ended_session_is_said_and_its_cookies_cleared() {
        let clear = || {
            Some(vec![
                "portcullis=; Max-Age=0".to_string(),
                "b=; Max-Age=0".into(),
            ])
        };
        let r = reply(decision(
            Client::Browser,
            Decision::Login,
            false,
            clear(),
            back(),
        ));
        assert!(r.header_value("location").unwrap().ends_with("&expired=1"));
        assert_eq!(r.headers.get_all("set-cookie").iter().count(), 2);
        let r = reply(decision(
            Client::Api,
            Decision::Login,
            false,
            clear(),
            back(),
        ));
        assert_eq!(body(&r)["session_ended"], true);
        assert_eq!(r.headers.get_all("set-cookie").iter().count(), 2);
        let r = reply(decision(Client::Api, Decision::Login, false, None, back()));
        assert_eq!(body(&r)["session_ended"], false);
    }

    #[test]
    fn api_clients_get_401_json_naming_the_page() {
        for (d, error, page) in [
            (Decision::Login, "unauthenticated", "/_auth/login"),
            (
                Decision::SecondFactor,
                "second_factor_required",
                "/_auth/2fa",
            ),
            (
                Decision::Enrol,
                "second_factor_required",
                "/_auth/2fa/setup",
            ),
        ] {
            let r = reply(decision(Client::Api, d, false, None, back()));
            assert_eq!(r.status, 401);
            assert_eq!(
                body(&r),
                json!({ "error": error, "login": page, "session_ended": false })
            );
            assert_eq!(
                r.header_value("www-authenticate"),
                Some("Cookie realm=\"portcullis\"")
            );
            assert!(r.header_value("location").is_none());
            assert_eq!(r.header_value("content-type"), Some("application/json"));
        }
    }

    #[test]
    fn forward_auth_gets_the_full_url_as_401_or_302() {
        for (d, page) in [
            (Decision::Login, "login"),
            (Decision::SecondFactor, "2fa"),
            (Decision::Enrol, "2fa/setup"),
        ] {
            let url =
                format!("https://auth.test/_auth/{page}?rd=https%3A%2F%2Fapp.test%2Fadmin%3Fa%3D1");
            let r = reply(decision(
                Client::ForwardAuth { redirect: false },
                d,
                false,
                None,
                fa_back(),
            ));
            assert_eq!(r.status, 401);
            assert_eq!(
                body(&r),
                json!({ "error": "unauthenticated", "login": url })
            );
            assert_eq!(r.header_value("location"), Some(url.as_str()));
            assert!(r.header_value("www-authenticate").is_some());
            let r = reply(decision(
                Client::ForwardAuth { redirect: true },
                d,
                false,
                None,
                fa_back(),
            ));
            assert_eq!(r.status, 302);
            assert_eq!(r.header_value("location"), Some(url.as_str()));
        }
    }

    #[test]
    fn every_decision_and_client_has_an_answer() {
        // The whole table: nothing panics, and only Allow lets a request through.
        for d in ALL {
            for c in CLIENTS {
                for down in [false, true] {
                    let a = decision(c, d, down, None, back());
                    assert_eq!(
                        matches!(a, Answer::Allow),
                        d == Decision::Allow,
                        "{d:?} {c:?}"
                    );
                    if let Answer::Reply(r) = a {
                        assert!(matches!(r.status, 302 | 401 | 403 | 503), "{d:?} {c:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn steps_of_decisions_and_pending_sessions() {
        assert_eq!(Step::of_decision(Decision::Allow), None);
        assert_eq!(Step::of_decision(Decision::Deny), None);
        assert_eq!(Step::of_decision(Decision::Enrol), Some(Step::Enrol));
        assert_eq!(Step::of_pending(Pending::Done), None);
        assert_eq!(
            Step::of_pending(Pending::SecondFactor),
            Some(Step::SecondFactor)
        );
        assert_eq!(Step::of_pending(Pending::Enrol), Some(Step::Enrol));
        let r = go_to(303, Step::Enrol, back());
        assert_eq!(r.status, 303);
        assert_eq!(
            r.header_value("Location"),
            Some("/_auth/2fa/setup?rd=%2Fadmin%2Fx%3Fa%3D1%26b%3D2")
        );
        assert_eq!(back_to("").header_value("location"), Some("/"));
        assert_eq!(back_to("/x?y").header_value("location"), Some("/x?y"));
    }

    #[test]
    fn headers_are_http_types_and_bad_ones_left_out() {
        let mut r = Response::new(200, "text/plain", "x");
        r.header("Set-Cookie", "a=1")
            .header("set-cookie", "b=2")
            .header("Remote-Name", "Zoë")
            .header("Remote-User", "evil\r\nInjected: 1")
            .header("Bad Name", "x");
        assert_eq!(r.headers.get_all("set-cookie").iter().count(), 2);
        // UTF-8 passes as obs-text bytes; CR/LF and bad names never do.
        assert_eq!(r.headers["remote-name"].as_bytes(), "Zoë".as_bytes());
        assert!(r.headers.get("remote-user").is_none());
        assert_eq!(r.headers.len(), 4);
        assert_eq!(r.header_value("Content-Type"), Some("text/plain"));
        r.append(http::header::RETRY_AFTER, HeaderValue::from_static("5"));
        assert_eq!(r.header_value("retry-after"), Some("5"));
    }

    #[test]
    fn proxy_failures_say_what_happened() {
        for (code, heading, retry) in [
            (502, "The application is not responding", Some(5)),
            (504, "The application is taking too long", Some(5)),
            (500, "Something went wrong", Some(5)),
            (408, "Request timed out", None),
            (400, "Bad request", None),
        ] {
            let m = failure(code);
            assert_eq!((m.status, m.heading, m.retry_after), (code, heading, retry));
            assert!(m.close);
        }
    }

    #[test]
    fn header_names_are_titled_for_the_wire() {
        for (n, t) in [
            ("content-security-policy", "Content-Security-Policy"),
            ("x-frame-options", "X-Frame-Options"),
            ("www-authenticate", "WWW-Authenticate"),
            ("location", "Location"),
            ("remote-user", "Remote-User"),
        ] {
            assert_eq!(titled(&HeaderName::from_static(n)), t);
        }
    }

    #[test]
    fn after_sign_in_validates_the_target() {
        let p = RedirectPolicy {
            site_hosts: vec!["app.test".into()],
            domain: Some("example.com".into()),
            allow_http: false,
        };
        let go = |rd: &str, pending| after_sign_in(&p, rd, pending, "/_auth");
        assert_eq!(go("/admin?x=1", Pending::Done), "/admin?x=1");
        assert_eq!(
            go("https://app.test/a", Pending::Done),
            "https://app.test/a"
        );
        assert_eq!(
            go("https://wiki.example.com/", Pending::Done),
            "https://wiki.example.com/"
        );
        for evil in [
            "",
            "//evil.test/",
            "/\\evil.test",
            "https://evil.test/",
            "http://app.test/",
            "https://app.test@evil.test/",
            "javascript:alert(1)",
            "/%2f%2fevil.test",
            "https://badexample.com/",
        ] {
            assert_eq!(go(evil, Pending::Done), "/", "{evil:?}");
            assert_eq!(
                go(evil, Pending::SecondFactor),
                "/_auth/2fa?rd=%2F",
                "{evil:?}"
            );
        }
        assert_eq!(
            go("/admin", Pending::SecondFactor),
            "/_auth/2fa?rd=%2Fadmin"
        );
        assert_eq!(
            go("https://app.test/a", Pending::Enrol),
            "/_auth/2fa/setup?rd=https%3A%2F%2Fapp.test%2Fa"
        );
    }
}
