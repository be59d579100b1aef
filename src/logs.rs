//! The process's log: what `PORTCULLIS_LOG` selects, written to standard error,
//! without the one routine line Pingora writes as an error.

use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// The filter when `PORTCULLIS_LOG` is unset: the gateway's `info`, Pingora's `warn`.
pub const DEFAULT_FILTER: &str = "info,pingora=warn,pingora_core=warn,pingora_proxy=warn";

/// Pingora's `failed to acquire reusable stream` (at ERROR, under load): a pooled
/// upstream connection was still held by Pingora's idle watcher at that instant, so
/// Pingora opened a new one and the request went on. Nothing failed, and an operator
/// paged by it would find nothing. It is the only ERROR line of the module
/// `pingora_core::connectors` (its submodules return their errors, which the gateway
/// logs as `proxy failure`); the module's WARN about unexpected data on an idle
/// connection is kept.
pub fn routine_pingora_error(meta: &Metadata<'_>) -> bool {
    meta.target() == "pingora_core::connectors" && *meta.level() == Level::ERROR
}

/// The log as `serve` and the CLI write it: `filter`, one line per event to `writer`.
pub fn subscriber<W>(filter: EnvFilter, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
        .with(filter_fn(|meta| !routine_pingora_error(meta)))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buf {
        type Writer = Buf;
        fn make_writer(&'w self) -> Buf {
            self.clone()
        }
    }

    /// Pingora's routine pool race is left out; everything else its connector and
    /// the gateway say at the default levels is written.
    #[test]
    fn the_routine_pool_race_is_not_logged_as_an_error() {
        let buf = Buf::default();
        let sub = subscriber(EnvFilter::new(DEFAULT_FILTER), buf.clone());
        // Pingora writes through the `log` crate, which reaches the subscriber through
        // the bridge `init` installs in the binary: the same bridge here.
        let _ = tracing_log::LogTracer::init();
        tracing::subscriber::with_default(sub, || {
            log::error!(target: "pingora_core::connectors", "failed to acquire reusable stream");
            log::error!(target: "pingora_core::connectors::l4", "connect refused (log)");
            tracing::error!(target: "pingora_core::connectors", "failed to acquire reusable stream");
            tracing::warn!(target: "pingora_core::connectors", "Unexpected data read in idle connection");
            tracing::error!(target: "pingora_core::connectors::l4", "connect refused");
            tracing::error!(target: "pingora_proxy", "proxy error");
            tracing::info!(target: "portcullis::proxy", "gateway line");
            tracing::info!(target: "pingora_core::connectors", "below the default level");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(!out.contains("reusable stream"), "{out}");
        for kept in [
            "connect refused (log)",
            "Unexpected data",
            "connect refused",
            "proxy error",
            "gateway line",
        ] {
            assert!(out.contains(kept), "{kept} missing: {out}");
        }
        assert!(!out.contains("below the default level"), "{out}");
    }
}
