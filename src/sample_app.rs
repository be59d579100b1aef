//! The demo's "legacy app": shows the identity headers it received. Also the
//! upstream the integration tests put behind the gateway (`portcullis
//! sample-app`). HTML for browsers, JSON (`{"path", "method", "headers"}`) otherwise.

use async_trait::async_trait;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::json;

pub struct SampleApp;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[async_trait]
impl ServeHttp for SampleApp {
    async fn response(&self, session: &mut ServerSession) -> http::Response<Vec<u8>> {
        let _ = session.read_request_body().await;
        let req = session.req_header();
        let path = String::from_utf8_lossy(req.raw_path()).to_string();
        let mut headers = serde_json::Map::new();
        for (k, v) in req.headers.iter() {
            let v = String::from_utf8_lossy(v.as_bytes()).to_string();
            headers
                .entry(k.as_str().to_string())
                .and_modify(|e| {
                    if let Some(s) = e.as_str() {
                        *e = json!(format!("{s}, {v}"));
                    }
                })
                .or_insert(json!(v));
        }
        let html = req
            .headers
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
        let (ct, body) = if html {
            let get = |n: &str| {
                headers
                    .get(n)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            let rows: String = [
                "remote-user",
                "remote-email",
                "remote-name",
                "remote-groups",
                "x-forwarded-for",
                "x-forwarded-proto",
                "x-forwarded-host",
            ]
            .iter()
            .map(|h| format!("<tr><th>{h}</th><td>{}</td></tr>", esc(&get(h))))
            .collect();
            (
                "text/html; charset=utf-8",
                format!(
                    "<!doctype html><html><head><meta charset=utf-8><title>Sample app</title></head><body>\
                     <h1>Hello, {}!</h1><p>This is the sample application behind Portcullis. It received \
                     these identity headers for <code>{}</code>:</p><table>{rows}</table>\
                     <p><a href=\"/_auth/logout\">Sign out</a></p></body></html>",
                    esc(&get("remote-name")),
                    esc(&path)
                ),
            )
        } else {
            (
                "application/json",
                json!({ "path": path, "method": req.method.as_str(), "headers": headers })
                    .to_string(),
            )
        };
        http::Response::builder()
            .status(200)
            .header("Content-Type", ct)
            .header("Content-Length", body.len())
            .body(body.into_bytes())
            .unwrap_or_default()
    }
}

/// A listening service for the sample app.
pub fn service(listen: &str) -> pingora::services::listening::Service<SampleApp> {
    let mut s = pingora::services::listening::Service::new("sample-app".to_string(), SampleApp);
    s.add_tcp(listen);
    s
}
