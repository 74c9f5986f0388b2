//! incasso's application layer: every use case, called the same way by each
//! door.
//!
//! A door (the HTTP APIs, the SOAP endpoint, the portals, the CLI, the
//! background workers) parses its input, calls one use case here with a
//! [`Ctx`] and renders the answer. The use case checks the caller's rights,
//! decides, and asks the store; it never knows which door called it.
//!
//! Areas, one module each: [`positions`], [`supply`] (file supplies through
//! the Digit BUS), [`export`] and [`inbox`] (reporting back, the folder
//! drop), [`notices`] (the payment notice and its ZIPs), [`node`] (the
//! Node's payment decisions behind `paForNode`), [`checkout`] (paying
//! online), [`reconcile`] (DigitFIN), [`admin`] (Enti, stations, offices,
//! catalogue, accertamenti, receipts), [`keys`], [`jobs`] (scheduled work),
//! [`demo`] (the demo seed).

pub mod admin;
pub mod audit;
pub mod bus;
pub mod checkout;
pub mod dashboard;
pub mod demo;
pub mod desk;
pub mod digitfin;
pub mod digitpos;
pub mod error;
pub mod export;
pub mod identity;
pub mod inbox;
pub mod jobs;
pub mod keys;
pub mod mail;
pub mod node;
mod node_demand;
pub mod notices;
pub mod notify;
pub mod operators;
pub mod ops;
pub mod paging;
pub mod portal;
pub mod pos;
pub mod positions;
pub mod receipts;
pub mod reconcile;
pub mod sheet;
pub mod spid;
pub mod supply;
pub mod upload;
pub mod webhooks;

pub use error::{AppError, At, Kind, Place};
pub use identity::{Caller, CitizenIdentity, OperatorIdentity};

use chrono::{DateTime, Utc};
use incasso_core::ente::StationLink;
use incasso_store::Store;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Settings every use case may read; fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The base of every absolute URL incasso gives out (Checkout return
    /// URLs, links in messages), without a trailing slash.
    pub public_url: String,
    /// Where the inbox and outbox folders live, when there is one.
    pub data_dir: Option<PathBuf>,
    /// The SPID/CIE identity proxy operators may sign in through, if any.
    pub spid: Option<spid::SpidSettings>,
    /// The SMTP server e-mail goes through (`smtp://`, `smtps://`, with
    /// user and password if needed): no e-mail is sent without one.
    pub smtp_url: Option<String>,
    /// The sender of incasso's e-mail (`Name <address>` or an address).
    pub mail_from: Option<String>,
    /// pagoPA's POS gateway, for the desks' card terminals: none, no POS.
    pub pos: Option<pos::PosSettings>,
    /// App IO's services API (`.../api/v1`, `INCASSO_IO_URL`): none, no
    /// message goes to IO (e-mail only, where an address is known).
    pub io_url: Option<String>,
}

impl Settings {
    pub fn new(public_url: &str) -> Settings {
        Settings {
            public_url: public_url.trim_end_matches('/').to_string(),
            data_dir: None,
            spid: None,
            smtp_url: None,
            mail_from: None,
            pos: None,
            io_url: None,
        }
    }
}

/// The time as use cases see it. Tests can fix it.
#[derive(Debug, Clone, Copy, Default)]
pub enum Clock {
    #[default]
    System,
    Fixed(DateTime<Utc>),
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(t) => *t,
        }
    }
}

/// What every use case works with, shared by the doors of one process.
#[derive(Clone)]
pub struct App {
    pub store: Store,
    pub settings: Arc<Settings>,
    pub clock: Clock,
    pub stations: StationCache,
    /// Each Ente's portal look, read on every portal page.
    pub portal_styles: portal::style::StyleCache,
    /// The pace of the calls to App IO under each service's key, learned
    /// from IO's 429s (`notify::pace`).
    pub io_pace: Arc<std::sync::Mutex<notify::pace::Pacer>>,
}

impl App {
    pub fn new(store: Store, settings: Settings) -> App {
        App {
            store,
            settings: Arc::new(settings),
            clock: Clock::System,
            stations: StationCache::default(),
            portal_styles: Default::default(),
            io_pace: Default::default(),
        }
    }

    /// A context for `caller`.
    pub fn ctx(&self, caller: Caller) -> Ctx {
        Ctx {
            app: self.clone(),
            caller,
        }
    }

    /// A context for incasso's own work (CLI, workers).
    pub fn system(&self, what: &'static str) -> Ctx {
        self.ctx(Caller::System(what))
    }
}

/// A use case's context: the application and who is calling.
#[derive(Clone)]
pub struct Ctx {
    pub app: App,
    pub caller: Caller,
}

impl Ctx {
    pub fn store(&self) -> &Store {
        &self.app.store
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.app.clock.now()
    }

    pub fn settings(&self) -> &Settings {
        &self.app.settings
    }
}

/// The Enti's stations, read on every Node request, and their connections
/// to the Node, read on every Checkout cart, kept for a few seconds. A
/// station added or removed, or a connection changed (possibly by another
/// process), takes effect within [`StationCache::TTL`]; that is the price
/// of not asking the database three times per payment. A station without a
/// connection is not kept as such: one set a moment later is used at once.
type StationEntries = HashMap<String, (Instant, Vec<StationLink>)>;
type ConnectionEntries = HashMap<(String, String), (Instant, String)>;

#[derive(Clone, Default)]
pub struct StationCache {
    entries: Arc<Mutex<StationEntries>>,
    connections: Arc<Mutex<ConnectionEntries>>,
}

impl StationCache {
    pub const TTL: Duration = Duration::from_secs(5);

    /// Enti kept at most. The map is keyed by what a request names, which
    /// may be an Ente that does not exist; past the bound it starts afresh
    /// (a few hundred live Enti need no eviction order).
    pub const BOUND: usize = 4096;

    pub async fn get(
        &self,
        store: &Store,
        ente: &str,
    ) -> Result<Vec<StationLink>, incasso_store::StoreError> {
        if let Some((at, stations)) = lock(&self.entries).get(ente)
            && at.elapsed() < Self::TTL
        {
            return Ok(stations.clone());
        }
        let stations = store.list_stations(ente).await?;
        insert_bounded(
            &mut lock(&self.entries),
            ente.to_string(),
            (Instant::now(), stations.clone()),
            Self::BOUND,
        );
        Ok(stations)
    }

    /// Station `station` of `ente`'s connection settings (JSON), if it has
    /// any. The map holds one entry per station that has a connection, so
    /// it is bounded by the stations registered.
    pub async fn connection(
        &self,
        store: &Store,
        ente: &str,
        station: &str,
    ) -> Result<Option<String>, incasso_store::StoreError> {
        let key = (ente.to_string(), station.to_string());
        if let Some((at, json)) = lock(&self.connections).get(&key)
            && at.elapsed() < Self::TTL
        {
            return Ok(Some(json.clone()));
        }
        let json = store.station_connection(ente, station).await?;
        let mut connections = lock(&self.connections);
        match &json {
            Some(j) => connections.insert(key, (Instant::now(), j.clone())),
            None => connections.remove(&key),
        };
        Ok(json)
    }

    /// Forgets `ente`'s stations and connections: this process changed them.
    pub fn forget(&self, ente: &str) {
        lock(&self.entries).remove(ente);
        lock(&self.connections).retain(|(e, _), _| e != ente);
    }
}

/// Inserts into a cache map that never holds more than `bound` entries.
fn insert_bounded<K: std::hash::Hash + Eq, V>(
    map: &mut HashMap<K, V>,
    key: K,
    value: V,
    bound: usize,
) {
    if map.len() >= bound && !map.contains_key(&key) {
        map.clear();
    }
    map.insert(key, value);
}

/// A poisoned lock only means another request panicked mid-insert; the
/// map is still a valid cache.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_cache_map_never_outgrows_its_bound() {
        let mut map = HashMap::new();
        for i in 0..10_000 {
            insert_bounded(&mut map, i, i, 100);
            assert!(map.len() <= 100, "{} entries after {i}", map.len());
            assert_eq!(map.get(&i), Some(&i), "the entry just inserted is kept");
        }
        // A key already there is replaced, and the others stay.
        let before = map.len();
        let present = *map.keys().next().unwrap();
        insert_bounded(&mut map, present, 0, before);
        assert_eq!(map.len(), before);
    }
}
