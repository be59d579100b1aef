//! Boots Pingora: the gateway listener (plain TCP, or TLS with ALPN h2 +
//! http/1.1 and a certificate SIGHUP can swap), the admin listener (`/metrics`,
//! `/health`), a background task (SIGHUP reload, users-file watch) and the
//! control socket the CLI uses to reach a running gateway's memory store.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::http_app::ServeHttp;
use pingora::listeners::tls::TlsSettings;
use pingora::protocols::http::ServerSession;
use pingora::server::configuration::ServerConf;
use pingora::server::{Server, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};
use pingora::services::listening::Service;

use crate::app::App;
use crate::proxy::Gateway;

/// Path of the control socket: in the secrets folder, so only its owner can use it.
pub fn control_socket(cfg: &crate::config::Config) -> std::path::PathBuf {
    cfg.secrets_dir.join("control.sock")
}

/// Path of Pingora's upgrade socket (listener hand-over on a graceful upgrade):
/// in the secrets folder too, not at a guessable path in the shared temp folder
/// where another local user could bind it first.
pub fn upgrade_socket(cfg: &crate::config::Config) -> std::path::PathBuf {
    cfg.secrets_dir.join("upgrade.sock")
}

struct Admin {
    app: Arc<App>,
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> http::Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_string();
        let (status, ct, body) = match path.as_str() {
            "/metrics" => (200, "text/plain; version=0.0.4", self.app.metrics.render()),
            "/health" => match self.app.store.ping().await {
                Ok(()) => (
                    200,
                    "application/json",
                    r#"{"status":"ok","store":"ok"}"#.to_string(),
                ),
                Err(_) => (
                    503,
                    "application/json",
                    r#"{"status":"degraded","store":"unavailable"}"#.to_string(),
                ),
            },
            _ => (404, "text/plain", "not found".to_string()),
        };
        http::Response::builder()
            .status(status)
            .header("Content-Type", ct)
            .header("Content-Length", body.len())
            .body(body.into_bytes())
            .unwrap_or_default()
    }
}

struct Housekeeping {
    app: Arc<App>,
    /// The TLS listener's certificate, re-read on SIGHUP.
    cert: Option<Arc<crate::tls::ServerCert>>,
}

impl Housekeeping {
    /// Swaps in the certificate and key at the configured paths; on any problem the
    /// running certificate stays. Open connections are never touched.
    fn reload_cert(&self) {
        let Some(cert) = &self.cert else { return };
        let cfg = self.app.config.load();
        let Some(t) = &cfg.server.tls else {
            tracing::warn!("server.tls removed: the TLS listener changes only on restart");
            return;
        };
        match cert.reload(&t.cert, &t.key) {
            Ok(()) => tracing::info!(cert = %t.cert.display(), "TLS certificate reloaded"),
            Err(e) => tracing::error!(
                error = %e,
                "TLS certificate not reloaded; keeping the running one"
            ),
        }
    }
}

#[async_trait]
impl BackgroundService for Housekeeping {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        // Changes made by other gateways and the CLI (databases; the file is polled below).
        self.app.accounts.start_feed();
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP");
                None
            }
        };
        let sock = control_socket(&self.app.config.load());
        let mut listener = take_control_socket(&sock, true);
        // Ladders an older version named by typed text don't stay in the store.
        {
            let app = self.app.clone();
            tokio::spawn(async move {
                match app.defense.forget_typed_names().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(n, "forgot lockout ladders named by typed text"),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not look for ladders named by typed text")
                    }
                }
            });
        }
        // Session-cache invalidations from the other gateways (a shared store only).
        let watch = {
            let app = self.app.clone();
            tokio::spawn(async move { app.sessions.watch().await })
        };
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut ticks: u64 = 0;
        loop {
            // Without a control socket (another gateway had it): taken once nobody
            // answers on it any more, so the CLI isn't left without a gateway (review).
            let mut retake = false;
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tick.tick() => {
                    self.app.reload_users_if_changed().await;
                    retake = listener.is_none();
                    ticks += 1;
                    if ticks.is_multiple_of(60) {
                        self.app.defense.housekeeping();
                    }
                }
                Some(_) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                    tracing::info!("SIGHUP: reloading");
                    self.app.reload();
                    self.reload_cert();
                }
                Ok((stream, _)) = async { match &listener { Some(l) => l.accept().await, None => std::future::pending().await } } => {
                    let app = self.app.clone();
                    tokio::spawn(async move { crate::control::serve(app, stream).await });
                }
            }
            if retake {
                listener = take_control_socket(&sock, false);
            }
        }
        watch.abort();
        // Only a socket this gateway made is removed.
        if listener.is_some() {
            let _ = std::fs::remove_file(&sock);
        }
    }
}

/// The control socket at `sock`, unless another running gateway answers on it: that
/// one keeps it (two gateways sharing a secrets folder), since taking it over would
/// point the CLI at this one and removing it at exit would leave the other
/// unreachable (attack pass). `first`: said in the log when it is left to the other
/// (at start), or when it is taken (later, after the other went).
fn take_control_socket(sock: &std::path::Path, first: bool) -> Option<tokio::net::UnixListener> {
    if std::os::unix::net::UnixStream::connect(sock).is_ok() {
        if first {
            tracing::warn!(path = %sock.display(), "another gateway answers on the control socket; this one has none (the CLI reaches the other)");
        }
        return None;
    }
    let _ = std::fs::remove_file(sock);
    match tokio::net::UnixListener::bind(sock) {
        Ok(l) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(sock, std::fs::Permissions::from_mode(0o600));
            }
            if !first {
                tracing::info!(path = %sock.display(), "the control socket's other gateway is gone: this one answers on it now");
            }
            Some(l)
        }
        Err(e) => {
            if first {
                tracing::warn!(error = %e, path = %sock.display(), "control socket unavailable");
            }
            None
        }
    }
}

/// Refuses to start when one of the gateway's addresses (`server.listen`,
/// `server.admin_listen`, and `more`) can't be listened on — another gateway, or
/// anything else, already has it — with the address and the reason, before anything
/// is printed or started. (Pingora would otherwise log, retry and stay up without a
/// listener; attack pass.)
pub fn check_listeners(cfg: &crate::config::Config, more: &[&str]) -> anyhow::Result<()> {
    let mut addrs = vec![cfg.server.listen.to_string()];
    addrs.extend(cfg.server.admin_listen.map(|a| a.to_string()));
    addrs.extend(more.iter().map(|a| a.to_string()));
    for a in addrs {
        if let Err(e) = std::net::TcpListener::bind(&a) {
            let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                " (is another gateway, or another server, running on it?)"
            } else {
                ""
            };
            anyhow::bail!("cannot listen on {a}: {e}{hint}");
        }
    }
    Ok(())
}

/// Runs the gateway until SIGTERM/SIGINT. `extra` services (the demo's sample
/// app) run in the same server.
pub fn run(
    app: Arc<App>,
    extra: Vec<Box<dyn pingora::services::ServiceWithDependents>>,
) -> anyhow::Result<()> {
    let cfg = app.config.load_full();
    let conf = ServerConf {
        threads: cfg.server.threads,
        // One current-thread runtime per worker: no work-stealing bookkeeping on the
        // hot path; connections are spread over the workers by the listeners.
        work_stealing: false,
        // Idle upstream connections kept for reuse (per worker; Pingora multiplies by
        // `threads`). More requests in flight than this pay a new connection each.
        // (A field Pingora calls unstable: check it when upgrading Pingora.)
        upstream_keepalive_pool_size: cfg.server.upstream_idle_connections,
        // A second for every listener to see the shutdown and stop accepting before
        // the runtimes go (see [`Signals`]).
        grace_period_seconds: Some(1),
        graceful_shutdown_timeout_seconds: Some(3),
        // In the secrets folder (0700), like the sockets: never a guessable /tmp path.
        pid_file: cfg.secrets_dir.join("portcullis.pid").display().to_string(),
        upgrade_sock: upgrade_socket(&cfg).display().to_string(),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let proxy_app = pingora::proxy::http_proxy(&server.configuration, Gateway { app: app.clone() });
    let guarded = crate::proxy::deadline::Guarded {
        inner: Arc::new(proxy_app),
        app: app.clone(),
        limit: crate::proxy::deadline::ConnLimit::new(),
    };
    let mut proxy = Service::new("portcullis".to_string(), guarded);
    let listen = cfg.server.listen.to_string();
    let cert = match &cfg.server.tls {
        Some(t) => {
            let cert = crate::tls::ServerCert::load(&t.cert, &t.key)
                .map_err(|e| anyhow::anyhow!("server.tls: {e}"))?;
            // The paths given here are ignored: a resolver is set, so SIGHUP can swap
            // the certificate under a running listener.
            let mut settings = TlsSettings::intermediate("", "")
                .map_err(|e| anyhow::anyhow!("server.tls: {e}"))?;
            settings.set_cert_resolver(cert.clone());
            // ALPN h2, then http/1.1.
            settings.enable_h2();
            proxy.add_tls_with_settings(&listen, None, settings);
            Some(cert)
        }
        None => {
            proxy.add_tcp(&listen);
            None
        }
    };
    server.add_service(proxy);

    if let Some(admin) = cfg.server.admin_listen {
        let mut svc = Service::new("admin".to_string(), Admin { app: app.clone() });
        svc.add_tcp(&admin.to_string());
        server.add_service(svc);
    }
    server.add_service(background_service(
        "housekeeping",
        Housekeeping {
            app: app.clone(),
            cert,
        },
    ));
    for s in extra {
        server.add_boxed_service(s);
    }
    for w in cfg.warnings() {
        tracing::warn!("config: {w}");
    }
    tracing::info!(listen = %listen, sites = cfg.sites.len(), "portcullis serving");
    server.run(pingora::server::RunArgs {
        shutdown_signal: Box::new(Signals),
    });
    Ok(())
}

/// The signals that stop the gateway: `SIGTERM` and `SIGINT` (Ctrl-C) both stop it
/// gracefully (listeners told to stop, a second's grace, in-flight requests drained:
/// ~4 s at most), `SIGQUIT` hands the listeners to a new process (Pingora's upgrade).
///
/// Pingora's own watch treats `SIGINT` as a fast shutdown that tells no listener to
/// stop: the runtimes go at once, and a listener still accepting while they go gets
/// an error on every accept ("Accept() failed ... being shutdown") and retries without
/// yielding, so its worker's thread never ends and the process never exits (found:
/// `portcullis demo` sometimes outlived Ctrl-C by more than 20 s, logging that line
/// 800 000 times). With the shutdown told to every listener and a second's grace
/// before the runtimes go, no accept loop is left running.
struct Signals;

#[async_trait::async_trait]
impl pingora::server::ShutdownSignalWatch for Signals {
    async fn recv(&self) -> pingora::server::ShutdownSignal {
        use pingora::server::ShutdownSignal;
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut quit), Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::quit()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            // (Serving on: the process can still be killed.)
            tracing::error!(
                "cannot watch for SIGTERM, SIGINT and SIGQUIT: they won't stop the gateway"
            );
            return std::future::pending().await;
        };
        tokio::select! {
            _ = quit.recv() => ShutdownSignal::GracefulUpgrade,
            _ = term.recv() => ShutdownSignal::GracefulTerminate,
            _ = int.recv() => ShutdownSignal::GracefulTerminate,
        }
    }
}
