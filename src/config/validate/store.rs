//! `[store]`: where sessions, counters and codes live.

use std::time::Duration;

use super::Problems;
use crate::config::defaults::store as d;
use crate::config::raw::RawStore;
use crate::config::values::StoreKind;
use crate::config::{StoreBackend, StoreConfig};

/// The longest `session_cache`.
const SESSION_CACHE_MAX: Duration = Duration::from_secs(60);

pub fn validate(st: RawStore, v: &mut Problems<'_>) -> StoreConfig {
    let backend = match st.backend.unwrap_or_default() {
        StoreKind::Memory => StoreBackend::Memory,
        StoreKind::Redis => {
            let url = st.redis_url.unwrap_or_else(|| d::REDIS_URL.into());
            if !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("unix://"))
            {
                v.err(
                    "store.redis_url",
                    format!(
                        "{:?} must start with redis://, rediss:// or unix://",
                        crate::secrets::shown_url(&url)
                    ),
                );
            } else if redis::Client::open(url.as_str()).is_err() {
                v.err(
                    "store.redis_url",
                    format!(
                        "{:?} is not a valid Redis URL",
                        crate::secrets::shown_url(&url)
                    ),
                );
            }
            StoreBackend::Redis { url }
        }
    };
    let session_cache = v.duration(
        "store.session_cache",
        st.session_cache,
        d::SESSION_CACHE,
        Duration::ZERO,
    );
    if session_cache > SESSION_CACHE_MAX {
        v.err("store.session_cache", "must be at most 60s");
    }
    StoreConfig {
        backend,
        key_prefix: st.key_prefix.unwrap_or_else(|| d::KEY_PREFIX.into()),
        max_entries: v.int(
            "store.max_entries",
            st.max_entries,
            d::MAX_ENTRIES,
            1000,
            1_000_000_000,
        ) as usize,
        session_cache: session_cache.min(SESSION_CACHE_MAX),
    }
}
