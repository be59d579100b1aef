//! The shared store on Redis, through one multiplexed, self-reconnecting
//! `ConnectionManager`.
//!
//! The manager is created on first use, not at start-up, so a gateway starts
//! even while Redis is down. Every call has a short response timeout: when
//! Redis is unreachable the caller gets [`StoreError::Unavailable`] quickly and
//! fails closed (503), and recovers by itself once Redis answers again.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;
use tokio::sync::Mutex;

use super::{OnWatch, Store, StoreError, Watch};

/// How often a watch pings Redis on its pub/sub connection, and how long it waits for
/// the answer: a connection that died silently is noticed within about a second.
const WATCH_PING_EVERY: Duration = Duration::from_millis(300);
const WATCH_PING_TIMEOUT: Duration = Duration::from_millis(500);

pub struct RedisStore {
    client: redis::Client,
    prefix: String,
    conn: Mutex<Option<ConnectionManager>>,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

const INCR_WITH_TTL: &str = r"
local v = redis.call('INCR', KEYS[1])
if v == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return v
";

const DECR_FLOOR: &str = r"
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v and v > 0 then return redis.call('DECR', KEYS[1]) end
return 0
";

impl RedisStore {
    /// `SET key value NX|XX PX ttl`: `true` when this call wrote.
    async fn set_if(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        when: &str,
    ) -> Result<bool, StoreError> {
        let mut c = self.conn().await?;
        let r: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg(when)
            .arg("PX")
            .arg(ms(ttl))
            .query_async(&mut c)
            .await
            .map_err(unavailable)?;
        Ok(r.is_some())
    }

    pub fn new(url: &str, prefix: &str) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        Ok(RedisStore {
            client,
            prefix: prefix.to_string(),
            conn: Mutex::new(None),
        })
    }

    async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_millis(500))
            .set_response_timeout(Duration::from_millis(1000))
            .set_number_of_retries(1)
            .set_max_delay(500);
        let c = ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(unavailable)?;
        *slot = Some(c.clone());
        Ok(c)
    }

    fn key(&self, k: &str) -> String {
        format!("{}{}", self.prefix, k)
    }
}

fn ms(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

#[async_trait]
impl Store for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut c = self.conn().await?;
        c.get(self.key(key)).await.map_err(unavailable)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        c.pset_ex(self.key(key), value, ms(ttl))
            .await
            .map_err(unavailable)
    }

    async fn set_nx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        self.set_if(key, value, ttl, "NX").await
    }

    async fn set_xx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        self.set_if(key, value, ttl, "XX").await
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut c = self.conn().await?;
        redis::cmd("GETDEL")
            .arg(self.key(key))
            .query_async(&mut c)
            .await
            .map_err(unavailable)
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let mut c = self.conn().await?;
        let n: u64 = c.del(self.key(key)).await.map_err(unavailable)?;
        Ok(n > 0)
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, StoreError> {
        let mut c = self.conn().await?;
        redis::Script::new(INCR_WITH_TTL)
            .key(self.key(key))
            .arg(ms(ttl))
            .invoke_async(&mut c)
            .await
            .map_err(unavailable)
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let k = self.key(key);
        redis::pipe()
            .atomic()
            .sadd(&k, member)
            .ignore()
            .pexpire(&k, ms(ttl) as i64)
            .ignore()
            .query_async(&mut c)
            .await
            .map_err(unavailable)
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        c.srem(self.key(key), member).await.map_err(unavailable)
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let mut c = self.conn().await?;
        c.smembers(self.key(key)).await.map_err(unavailable)
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, StoreError> {
        let mut c = self.conn().await?;
        let t: i64 = c.pttl(self.key(key)).await.map_err(unavailable)?;
        Ok((t >= 0).then(|| Duration::from_millis(t as u64)))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn decr(&self, key: &str) -> Result<u64, StoreError> {
        let mut c = self.conn().await?;
        redis::Script::new(DECR_FLOOR)
            .key(self.key(key))
            .invoke_async(&mut c)
            .await
            .map_err(unavailable)
    }

    fn shared(&self) -> bool {
        true
    }

    async fn publish(&self, channel: &str, message: &str) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        c.publish::<_, _, ()>(self.key(channel), message)
            .await
            .map_err(unavailable)
    }

    async fn watch(&self, channel: &str, on: &OnWatch) {
        let channel = self.key(channel);
        loop {
            match self.subscribe(&channel).await {
                Ok(pubsub) => {
                    on(Watch::Up);
                    let err = watch_until_lost(pubsub, on).await;
                    on(Watch::Down);
                    tracing::warn!(error = %err, "store: invalidation channel lost; reading sessions from the store until it is back");
                }
                Err(e) => tracing::debug!(error = %e, "store: cannot subscribe yet"),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl RedisStore {
    async fn subscribe(&self, channel: &str) -> Result<redis::aio::PubSub, StoreError> {
        let connect = async {
            let mut p = self.client.get_async_pubsub().await?;
            p.subscribe(channel).await?;
            Ok::<_, redis::RedisError>(p)
        };
        match tokio::time::timeout(Duration::from_secs(1), connect).await {
            Ok(r) => r.map_err(unavailable),
            Err(_) => Err(unavailable("timed out")),
        }
    }
}

/// Hands every message to `on` until the connection is lost (closed, or no answer
/// to a ping in time); returns why.
async fn watch_until_lost(pubsub: redis::aio::PubSub, on: &OnWatch) -> String {
    use futures::StreamExt;
    let (mut sink, mut stream) = pubsub.split();
    let mut tick = tokio::time::interval(WATCH_PING_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(m) => match m.get_payload::<String>() {
                    Ok(p) => on(Watch::Message(&p)),
                    // Not a handle: the receiver treats it as "drop everything".
                    Err(_) => on(Watch::Message("")),
                },
                None => return "connection closed".into(),
            },
            _ = tick.tick() => {
                match tokio::time::timeout(WATCH_PING_TIMEOUT, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return e.to_string(),
                    Err(_) => return "no answer to a ping".into(),
                }
            }
        }
    }
}
