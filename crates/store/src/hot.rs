//! A short, bounded cache of reads the payment paths make on every request
//! and that almost never change: the API key behind a request, and each
//! Ente's registered return hosts (perf, `bench digitpos`).
//!
//! A write through this process's store forgets what it changes at once.
//! Another process's write (a second incasso on the same PostgreSQL) is
//! seen within [`TTL`]: a key revoked there keeps working here for up to
//! that long, and a return host removed there is still accepted here for
//! as long. That is the price of not asking the database for them on every
//! call.

use crate::{ApiKeyRecord, ReturnHostRecord};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long an entry is trusted.
pub const TTL: Duration = Duration::from_secs(5);

/// Entries kept at most per kind; past it the map starts afresh (a cache of
/// a few live keys and Enti does not need eviction order).
const BOUND: usize = 4096;

struct Entries<V> {
    map: HashMap<String, (Instant, V)>,
    /// The last write's time: a read begun before it may hold what the
    /// write changed, and is not kept.
    written_at: Option<Instant>,
}

struct Ttl<V> {
    entries: Mutex<Entries<V>>,
}

impl<V: Clone> Ttl<V> {
    fn new() -> Self {
        Ttl {
            entries: Mutex::new(Entries {
                map: HashMap::new(),
                written_at: None,
            }),
        }
    }

    /// A poisoned lock only means a panic mid-insert; the map is still a
    /// valid cache.
    fn lock(&self) -> MutexGuard<'_, Entries<V>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, key: &str) -> Option<V> {
        match self.lock().map.get(key) {
            Some((at, v)) if at.elapsed() < TTL => Some(v.clone()),
            _ => None,
        }
    }

    /// Keeps what a read begun at `read_at` found, unless a write came
    /// since.
    fn put(&self, key: &str, read_at: Instant, value: V) {
        let mut e = self.lock();
        if e.written_at.is_some_and(|w| w >= read_at) {
            return;
        }
        if e.map.len() >= BOUND {
            e.map.clear();
        }
        e.map.insert(key.to_string(), (read_at, value));
    }

    fn forget(&self, key: &str) {
        let mut e = self.lock();
        e.map.remove(key);
        e.written_at = Some(Instant::now());
    }

    fn clear(&self) {
        let mut e = self.lock();
        e.map.clear();
        e.written_at = Some(Instant::now());
    }
}

/// The caches of one store (shared by its clones).
#[derive(Clone)]
pub(crate) struct Hot {
    keys: Arc<Ttl<ApiKeyRecord>>,
    return_hosts: Arc<Ttl<Vec<ReturnHostRecord>>>,
}

impl Default for Hot {
    fn default() -> Self {
        Hot {
            keys: Arc::new(Ttl::new()),
            return_hosts: Arc::new(Ttl::new()),
        }
    }
}

impl Hot {
    pub(crate) fn key(&self, hash: &str) -> Option<ApiKeyRecord> {
        self.keys.get(hash)
    }

    /// `read_at` is when the read began: a revocation in between must not
    /// be overwritten by the older answer for a whole TTL.
    pub(crate) fn put_key(&self, hash: &str, read_at: Instant, record: ApiKeyRecord) {
        self.keys.put(hash, read_at, record);
    }

    /// A key was revoked: every key is read again (revocations are rare;
    /// the cache is by hash, not by id).
    pub(crate) fn forget_keys(&self) {
        self.keys.clear();
    }

    pub(crate) fn return_hosts(&self, ente: &str) -> Option<Vec<ReturnHostRecord>> {
        self.return_hosts.get(ente)
    }

    pub(crate) fn put_return_hosts(&self, ente: &str, read_at: Instant, h: Vec<ReturnHostRecord>) {
        self.return_hosts.put(ente, read_at, h);
    }

    pub(crate) fn forget_return_hosts(&self, ente: &str) {
        self.return_hosts.forget(ente);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_are_forgotten() {
        let t: Ttl<u32> = Ttl::new();
        t.put("a", Instant::now(), 1);
        assert_eq!(t.get("a"), Some(1));
        t.forget("a");
        assert_eq!(t.get("a"), None);
        t.put("b", Instant::now() - TTL - Duration::from_millis(1), 2);
        assert_eq!(t.get("b"), None, "older than the TTL");
        for i in 0..BOUND + 1 {
            t.put(&i.to_string(), Instant::now(), 0);
        }
        assert!(t.lock().map.len() <= BOUND, "bounded");
        // A read begun before a write is not kept.
        let before = Instant::now();
        t.clear();
        t.put("c", before, 3);
        assert_eq!(t.get("c"), None);
    }
}
