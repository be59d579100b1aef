//! The embedded store: sharded hash maps in this process.
//!
//! A std `Mutex` per shard, never held across an `.await`: critical sections are
//! a hash lookup, so an async mutex would only add overhead. Expired entries are
//! dropped when touched and by a sweep that runs when a shard has grown.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Store, StoreError};

enum Value {
    Bytes(Vec<u8>),
    Set(HashSet<String>),
    Count(u64),
}

struct Entry {
    value: Value,
    expires: Instant,
}

#[derive(Default)]
struct Shard {
    map: HashMap<String, Entry>,
    sweep_at: usize,
}

pub struct MemoryStore {
    shards: Vec<Mutex<Shard>>,
    hasher: std::collections::hash_map::RandomState,
}

const SHARDS: usize = 16;

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        map: HashMap::new(),
                        sweep_at: 1024,
                    })
                })
                .collect(),
            hasher: Default::default(),
        }
    }

    fn with<T>(&self, key: &str, f: impl FnOnce(&mut HashMap<String, Entry>, Instant) -> T) -> T {
        let idx = (self.hasher.hash_one(key) as usize) % SHARDS;
        // A poisoned lock means a panic while holding it; the map itself is still sound.
        let mut shard = self.shards[idx].lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if shard.map.len() >= shard.sweep_at {
            shard.map.retain(|_, e| e.expires > now);
            shard.sweep_at = (shard.map.len() * 2).max(1024);
        }
        let map = &mut shard.map;
        if map.get(key).is_some_and(|e| e.expires <= now) {
            map.remove(key);
        }
        f(map, now)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.with(key, |m, _| match m.get(key).map(|e| &e.value) {
            Some(Value::Bytes(b)) => Some(b.clone()),
            Some(Value::Count(n)) => Some(n.to_string().into_bytes()),
            _ => None,
        }))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        self.with(key, |m, now| {
            m.insert(
                key.to_string(),
                Entry {
                    value: Value::Bytes(value.to_vec()),
                    expires: now + ttl,
                },
            );
        });
        Ok(())
    }

    async fn set_nx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        Ok(self.with(key, |m, now| {
            if m.contains_key(key) {
                return false;
            }
            m.insert(
                key.to_string(),
                Entry {
                    value: Value::Bytes(value.to_vec()),
                    expires: now + ttl,
                },
            );
            true
        }))
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.with(key, |m, _| match m.remove(key).map(|e| e.value) {
            Some(Value::Bytes(b)) => Some(b),
            Some(Value::Count(n)) => Some(n.to_string().into_bytes()),
            _ => None,
        }))
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.with(key, |m, _| m.remove(key).is_some()))
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, StoreError> {
        Ok(self.with(key, |m, now| {
            let e = m.entry(key.to_string()).or_insert(Entry {
                value: Value::Count(0),
                expires: now + ttl,
            });
            let n = match &e.value {
                Value::Count(n) => n + 1,
                Value::Bytes(b) => {
                    std::str::from_utf8(b)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .unwrap_or(0)
                        + 1
                }
                Value::Set(_) => 1,
            };
            e.value = Value::Count(n);
            n
        }))
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<(), StoreError> {
        self.with(key, |m, now| {
            let e = m.entry(key.to_string()).or_insert(Entry {
                value: Value::Set(HashSet::new()),
                expires: now,
            });
            if !matches!(e.value, Value::Set(_)) {
                e.value = Value::Set(HashSet::new());
            }
            if let Value::Set(s) = &mut e.value {
                s.insert(member.to_string());
            }
            e.expires = now + ttl;
        });
        Ok(())
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<(), StoreError> {
        self.with(key, |m, _| {
            let empty = match m.get_mut(key).map(|e| &mut e.value) {
                Some(Value::Set(s)) => {
                    s.remove(member);
                    s.is_empty()
                }
                _ => false,
            };
            if empty {
                m.remove(key);
            }
        });
        Ok(())
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.with(key, |m, _| match m.get(key).map(|e| &e.value) {
            Some(Value::Set(s)) => s.iter().cloned().collect(),
            _ => Vec::new(),
        }))
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, StoreError> {
        Ok(self.with(key, |m, now| {
            m.get(key).map(|e| e.expires.saturating_duration_since(now))
        }))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn decr(&self, key: &str) -> Result<u64, StoreError> {
        Ok(self.with(key, |m, _| match m.get_mut(key) {
            Some(Entry {
                value: Value::Count(n),
                ..
            }) => {
                *n = n.saturating_sub(1);
                *n
            }
            _ => 0,
        }))
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        super::super::conformance(&super::MemoryStore::new()).await;
    }
}
