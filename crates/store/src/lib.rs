//! incasso's persistence, on SQLite (the embedded default) and PostgreSQL.
//!
//! One code path for both, through sqlx's `Any` driver: every query is written
//! once with `$n` placeholders and portable types (see `migrations/`). The few
//! places where the dialects differ (connection setup, how a write
//! transaction starts, row locks) are in [`Dialect`], and nowhere else.
//!
//! One exception, for speed: a supply's writes on SQLite run on a thread
//! and a connection of their own (`sqlite_thread`, through rusqlite), as
//! the same statements (`batch::Stmt`), plus one insert form that binds
//! shared values once.
//!
//! The public API is repository methods that take the Ente first: no query
//! here can cross from one Ente to another.

mod backup;
mod batch;
pub mod bench;
mod bulk;
mod catalogue;
mod citizens;
mod claim;
pub mod dashboard;
pub mod desks;
mod digitpos;
mod durable;
mod enti;
pub mod events;
mod hot;
mod iuv;
mod jobs;
mod ops;
pub use ops::{OperationsSnapshot, OutboxGauge, SupplyGauge};
mod keys;
pub mod mail;
mod migrate;
pub mod notify;
pub mod notify_admin;
pub mod notify_channels;
mod oidc;
mod operators;
mod portal;
mod portal_carts;
pub mod pos;
mod positions;
mod receipts;
mod recon;
pub mod secrets;
mod service_forms;
mod sqlite_thread;
mod statistics;
mod supply_writer;
mod time;
mod uploads;
pub mod webhooks;

pub use bulk::{
    Existing, INTERRUPTED, LOADING, LoadingSupply, PaidItem, SupplyError, SupplyOfFile,
    SupplyRecord,
};
pub use citizens::{CitizenSessionRecord, DebtorSection};
pub use claim::SupplyClaim;
pub use digitpos::{IdempotencyClaim, ReturnHostRecord, SpontaneousClaim};
pub use keys::{ApiKeyRecord, KeyScope};
pub use oidc::OidcRequest;
pub use operators::{AuditEvent, NewOperator, OperatorRecord};
pub use portal::PortalSettingsRecord;
pub use portal_carts::{CartAdd, CartItemRecord, CartRecord, CheckoutClaim};
pub use positions::{
    COUNT_CAP, HISTORY_LIMIT, ListFilter, OrderBy, Page, Placement, PositionExtras,
    PositionReceipt, PositionRow, PositionSearch, SearchPage, SearchSort, SearchTotal,
    StoredPosition,
};
pub use receipts::{
    Anomaly, ReceiptCursor, ReceiptFilter, ReceiptOutcome, ReceiptRecord, ReceiptSummary,
    RecordedReceipt, StoredReceipt,
};
pub use recon::{
    AccountedLine, AnomalyRecord, FlowIntake, FlowLineCount, LineFacts, LinesOf,
    MovementMatchRecord, RepeatedLine, StoredFlow, reporting,
};
pub use service_forms::{
    Abandoned, NodeRequestNoted, SPONTANEOUS_CANCELLED, SPONTANEOUS_OPEN, SPONTANEOUS_PAID,
    ServiceFormRecord, SpontaneousRecord,
};
pub use supply_writer::{Bulk, numbers_of};
pub use time::{from_micros, to_micros};
pub use uploads::{UploadAnswer, UploadProgress, UploadRecord};

use incasso_core::Invalid;
use incasso_core::position::TransitionError;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Transaction};
use std::str::FromStr;
use std::time::Duration;

/// Every SQLite connection's settings.
pub(crate) const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON;";

/// The SQLite writer connection's own settings. A bulk load's transaction
/// touches more pages than SQLite's default 2 MB cache holds: spilling them
/// mid-transaction and writing statement journals to temporary files were a
/// third of a supply's load time (perf, `incasso bench load`).
///
/// The writer never checkpoints the WAL itself (`wal_autocheckpoint = 0`):
/// a checkpoint runs inside the commit that triggers it, and after a
/// million-row supply it copies the whole new database (600 MB) before the
/// commit returns. `checkpointer` does it in the background instead.
///
/// `journal_size_limit`: once the WAL starts over, its file is cut back to
/// 64 MiB instead of keeping the size of the biggest load.
pub(crate) const WRITER_PRAGMAS: &str = "PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY; \
     PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;";

/// How often the background checkpointer copies committed WAL frames into
/// the database file. An idle database costs one no-op query per period.
/// How long a request waits for a PostgreSQL connection before it is
/// answered "unavailable" (HTTP 503, the Node's `PAA_SYSTEM_ERROR`). While
/// PostgreSQL restarts every connection attempt fails at once and the pool
/// keeps retrying until this passes. Under load the wait is for a busy
/// pool to hand a connection over, or for a cold one to open its
/// connections one by one: 2 s was too short for that on a loaded CI
/// machine (a `bench node` cycle answered PAA_SYSTEM_ERROR), and the
/// Node's door gives up at 8 s anyway (`server::node::DEADLINE`). 5 s sits
/// between.
pub const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// When the WAL holds this many frames (64 MiB of 4 KiB pages), the
/// checkpointer makes the next writer start it over. PASSIVE checkpoints
/// copy frames but never restart the WAL while a writer keeps writing, and
/// a reader looks every page up in the WAL's index, at a cost that grows
/// with the WAL: after a year of reporting flows (a 400 MB WAL) the
/// reconciliation's scan of their lines ran six times slower
/// (`incasso bench recon`).
const WAL_RESTART_FRAMES: i64 = 16_384;

/// How long a RESTART checkpoint may wait for the writer and for readers
/// of older snapshots (10 ms). It holds the write lock while it waits, so
/// writers wait too: kept to a hundredth of the period, and tried again
/// next period if it did not get through (a supply's checks read all the
/// time; a year of flows taken in has no readers).
const WAL_RESTART_PATIENCE: &str = "PRAGMA busy_timeout = 10";

/// Copies committed WAL frames into the database file, off the writer's
/// path, until the pool closes. PASSIVE: it never waits for readers or the
/// writer, and what it cannot copy now it copies next time; when the WAL
/// has grown past [`WAL_RESTART_FRAMES`], a short RESTART follows.
fn checkpointer(pool: AnyPool) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(CHECKPOINT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if pool.is_closed() {
                return;
            }
            if let Err(e) = checkpoint_round(&pool, WAL_RESTART_FRAMES).await {
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(error = %e, "checkpoint del WAL non riuscito");
            }
        }
    });
}

/// One round of the checkpointer. Returns the frames the WAL held.
async fn checkpoint_round(pool: &AnyPool, restart_frames: i64) -> Result<i64, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let (_, frames, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&mut *conn)
        .await?;
    if frames >= restart_frames {
        sqlx::raw_sql(WAL_RESTART_PATIENCE)
            .execute(&mut *conn)
            .await?;
        // Busy (a long reader, a long write) is no error: next period.
        let restarted = sqlx::query("PRAGMA wal_checkpoint(RESTART)")
            .fetch_optional(&mut *conn)
            .await;
        sqlx::raw_sql("PRAGMA busy_timeout = 30000")
            .execute(&mut *conn)
            .await?;
        restarted?;
    }
    Ok(frames)
}

/// Which database a URL names. Parsed strictly: a typo in the scheme must
/// not silently create an empty SQLite file somewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn from_url(url: &str) -> Result<Dialect, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Dialect::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Dialect::Postgres)
        } else {
            Err(StoreError::Config(format!(
                "database URL must start with sqlite:, postgres:// or postgresql://, got '{}'",
                url.split(':').next().unwrap_or_default()
            )))
        }
    }

    /// The dialect of an open connection.
    pub(crate) fn of(conn: &sqlx::AnyConnection) -> Dialect {
        if conn.backend_name().eq_ignore_ascii_case("sqlite") {
            Dialect::Sqlite
        } else {
            Dialect::Postgres
        }
    }

    /// The backend's name as benchmarks and logs print it.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    /// How a write transaction begins. SQLite's default (DEFERRED) takes the
    /// write lock only at the first write, and a reader that then wants to
    /// write fails with SQLITE_BUSY instead of waiting; IMMEDIATE waits.
    fn begin_write(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }

    /// Row lock for read-modify-write. SQLite has none (the IMMEDIATE
    /// transaction already holds the database's single write lock).
    fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} non trovato")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// Well formed, but not applicable to the object as it is: a stable
    /// code and the reason.
    #[error("{1}")]
    Unprocessable(&'static str, String),
    #[error("configurazione del database: {0}")]
    Config(String),
    #[error("errore del database: {0}")]
    Backend(#[from] sqlx::Error),
    /// From the connection a supply writes through on SQLite.
    #[error("errore del database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("dato corrotto nel database: {0}")]
    Corrupt(String),
    /// A supply's writes stopped at an earlier failure (given here).
    #[error("scrittura della fornitura interrotta: {0}")]
    Aborted(String),
    /// The failure of one position of a call on many, which was therefore
    /// applied to none: `index` counts from 0 in the order of the call.
    #[error("posizione {index} (iupd '{iupd}'): {source}")]
    Item {
        index: usize,
        iupd: String,
        source: Box<StoreError>,
    },
}

impl StoreError {
    /// The database could not be reached (PostgreSQL restarting, the
    /// network between): no connection within [`PG_ACQUIRE_TIMEOUT`], or
    /// one lost mid-statement. The request may be tried again later; it
    /// is not incasso's fault nor the caller's.
    pub fn is_unavailable(&self) -> bool {
        match self {
            // PostgreSQL shutting down or restarting tells the connections
            // it ends why (admin_shutdown, crash_shutdown, cannot_connect_now)
            // before it closes them: the pool's idle connections fail their
            // next statement with that message, not with an I/O error.
            StoreError::Backend(sqlx::Error::Database(e)) => e
                .code()
                .is_some_and(|c| matches!(c.as_ref(), "57P01" | "57P02" | "57P03")),
            StoreError::Backend(e) => matches!(
                e,
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::WorkerCrashed
            ),
            StoreError::Item { source, .. } => source.is_unavailable(),
            _ => false,
        }
    }

    /// The database's disk is full: SQLite's SQLITE_FULL (13), PostgreSQL's
    /// disk_full (53100). The write was rolled back whole; the same
    /// request succeeds once an operator has made room.
    pub fn is_disk_full(&self) -> bool {
        match self {
            // A SQLSTATE has five characters, SQLite's codes are numbers:
            // neither can be taken for the other.
            StoreError::Backend(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("13" | "53100"))
            }
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            StoreError::Item { source, .. } => source.is_disk_full(),
            _ => false,
        }
    }

    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Backend(sqlx::Error::Database(e)) => e.is_unique_violation(),
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ),
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle on the database. Cheap to clone.
///
/// Writes go through `writer`. On SQLite that is a pool of one connection:
/// SQLite admits one writer at a time anyway, and queueing writers in the
/// pool is fair and immediate, where letting them collide on the file lock
/// makes each loser sleep in SQLite's busy handler. Other processes on the
/// same file still meet the busy timeout. On PostgreSQL both are one pool.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    writer: AnyPool,
    dialect: Dialect,
    /// The SQLite database file, beside which cross-process locks live,
    /// and which a supply's own connection opens (see `sqlite_thread`).
    sqlite_file: Option<std::path::PathBuf>,
    /// Seals the stations' credentials before they are written.
    secrets: std::sync::Arc<secrets::Keyring>,
    /// API keys and return hosts, kept a few seconds ([`hot`]).
    hot: hot::Hot,
    /// SQLite's group commit before acknowledgements ([`durable`]).
    wal_flush: Option<std::sync::Arc<durable::WalFlush>>,
    /// PostgreSQL: how a supply opens its own connection (`supply_writer`).
    pg_connect: Option<std::sync::Arc<sqlx::postgres::PgConnectOptions>>,
}

/// The file of a `sqlite:` URL; none for an in-memory database.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.contains(":memory:")).then(|| path.into())
}

impl Store {
    /// Connects and runs the migrations. For SQLite the file is created if
    /// missing (its folder must exist).
    pub async fn connect(url: &str) -> Result<Store> {
        let store = Self::connect_without_migrating(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub async fn connect_without_migrating(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::from_url(url)?;
        let url = match dialect {
            Dialect::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Config(format!("invalid database URL: {e}")))?;
        let sqlite = |max: u32, extra: &'static str| {
            AnyPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(Duration::from_secs(60))
                // No ping on every acquire: a file's connection does not
                // go stale, and the ping was a second hand-over to the
                // connection's thread for each statement run on the pool
                // (most of a payment's reads; perf, `bench digitpos`).
                .test_before_acquire(false)
                .after_connect(move |conn, _meta| {
                    Box::pin(async move {
                        sqlx::raw_sql(SQLITE_PRAGMAS).execute(&mut *conn).await?;
                        sqlx::raw_sql(extra).execute(&mut *conn).await?;
                        Ok(())
                    })
                })
        };
        let (pool, writer) = match dialect {
            // Readers go in parallel under WAL; one writer at a time.
            Dialect::Sqlite => {
                let writer = sqlite(1, WRITER_PRAGMAS)
                    .connect_with(options.clone())
                    .await?;
                let pool = sqlite(8, "").connect_with(options).await?;
                (pool, writer)
            }
            Dialect::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(PG_ACQUIRE_TIMEOUT)
                    // No `SELECT 1` round trip before every statement's
                    // acquire (perf, `bench digitpos`): a connection the
                    // server dropped fails its statement, as it would one
                    // instant after a ping, and the pool replaces it.
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await?;
                (pool.clone(), pool)
            }
        };
        let sqlite_file = match dialect {
            Dialect::Sqlite => sqlite_file(&url),
            Dialect::Postgres => None,
        };
        if dialect == Dialect::Sqlite {
            checkpointer(pool.clone());
        }
        let wal_flush = sqlite_file.as_deref().map(durable::WalFlush::new);
        let pg_connect = match dialect {
            Dialect::Postgres => Some(std::sync::Arc::new(
                sqlx::postgres::PgConnectOptions::from_str(&url)
                    .map_err(|e| StoreError::Config(format!("invalid database URL: {e}")))?,
            )),
            Dialect::Sqlite => None,
        };
        Ok(Store {
            pool,
            writer,
            dialect,
            sqlite_file,
            secrets: Default::default(),
            hot: Default::default(),
            wal_flush,
            pg_connect,
        })
    }

    /// This store with `keyring` sealing the secrets it writes and opening
    /// those it reads. Without one, secrets are written plain: only for
    /// tests and tools that hold none.
    pub fn with_keyring(mut self, keyring: secrets::Keyring) -> Store {
        self.secrets = std::sync::Arc::new(keyring);
        self
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub async fn migrate(&self) -> Result<()> {
        migrate::run(self).await
    }

    /// Answers once the database does.
    /// The migrations this binary has that the database lacks
    /// (`GET /ready` is not ready while there are any).
    pub async fn pending_migrations(&self) -> Result<Vec<i64>> {
        migrate::pending(self).await
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    async fn write_tx(&self) -> Result<Transaction<'static, sqlx::Any>> {
        // A transaction SQLite rolled back by itself (a full disk does
        // that) leaves sqlx's driver counting it open: its own ROLLBACK
        // fails ("no transaction is active") and the count stays, so every
        // later BEGIN on the writer, the only connection, failed until a
        // restart. Such a connection is closed here and the transaction
        // begun on a new one. Back in the pool a connection has had its
        // rollback run (the pool pings it first): one still in a
        // transaction is one of these. While the disk stays full, each
        // failed write leaves another, maybe before this one's next
        // attempt: a few attempts, then the writer is surely busy with
        // writes that fail as they should.
        let mut attempts = 0;
        loop {
            match self.writer.begin_with(self.dialect.begin_write()).await {
                Err(sqlx::Error::InvalidSavePointStatement) if attempts < 16 => {
                    attempts += 1;
                    let mut stale = self.writer.acquire().await?;
                    if sqlx::Connection::is_in_transaction(&*stale) {
                        tracing::warn!("a writer connection left in a transaction is replaced");
                        stale.close_on_drop();
                    }
                }
                began => return Ok(began?),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAL past the limit is restarted, but a reader holding an old
    /// snapshot makes the restart give up at once instead of stalling the
    /// writers behind it; once the reader is gone, it goes through.
    #[tokio::test]
    async fn a_long_wal_is_restarted_without_stalling_writers() {
        let dir = std::env::temp_dir().join(format!(
            "incasso-wal-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_micros()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("wal.db").display());
        let store = Store::connect_without_migrating(&url).await.unwrap();
        let write = |n: i64| {
            let writer = store.writer.clone();
            async move {
                for i in 0..n {
                    sqlx::query("INSERT INTO t (v) VALUES ($1)")
                        .bind(format!("{i:0>2000}"))
                        .execute(&writer)
                        .await
                        .unwrap();
                }
            }
        };
        sqlx::raw_sql("CREATE TABLE t (v TEXT)")
            .execute(&store.writer)
            .await
            .unwrap();
        let mut reader = store.pool.acquire().await.unwrap();
        sqlx::raw_sql("BEGIN; SELECT COUNT(*) FROM t;")
            .execute(&mut *reader)
            .await
            .unwrap();
        write(200).await;
        let started = std::time::Instant::now();
        let frames = checkpoint_round(&store.pool, 1).await.unwrap();
        assert!(
            frames > 100,
            "200 writes should fill the WAL, it has {frames}"
        );
        write(1).await;
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "the restart stalled the writer for {:?}",
            started.elapsed()
        );
        let held = checkpoint_round(&store.pool, i64::MAX).await.unwrap();
        assert!(
            held > frames,
            "the reader's snapshot was lost: {held} frames"
        );
        sqlx::raw_sql("COMMIT").execute(&mut *reader).await.unwrap();
        drop(reader);
        checkpoint_round(&store.pool, 1).await.unwrap();
        write(1).await;
        let after = checkpoint_round(&store.pool, i64::MAX).await.unwrap();
        assert!(after < 10, "the WAL did not start over: {after} frames");
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(count, 202);
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A write that fills the disk is refused as such, and the writer
    /// takes the next write as usual: SQLite's own rollback of the failed
    /// transaction once left the only writer connection unusable. The page
    /// limit is SQLite's way to make a database full without a full disk.
    #[tokio::test]
    async fn the_writer_writes_again_after_a_full_disk() {
        let dir = std::env::temp_dir().join(format!(
            "incasso-full-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_micros()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("full.db").display());
        let store = Store::connect_without_migrating(&url).await.unwrap();
        sqlx::raw_sql("CREATE TABLE t (v BLOB)")
            .execute(&store.writer)
            .await
            .unwrap();
        let write = |bytes: i64| {
            let store = store.clone();
            async move {
                let mut tx = store.write_tx().await?;
                sqlx::query("INSERT INTO t (v) VALUES (zeroblob($1))")
                    .bind(bytes)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok::<_, StoreError>(())
            }
        };
        write(10).await.unwrap();
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        // The writer pool's one connection: the limit is per connection.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA max_page_count = {}",
            pages + 2
        )))
        .execute(&store.writer)
        .await
        .unwrap();
        let full = write(1_000_000).await.unwrap_err();
        assert!(full.is_disk_full(), "{full:?}");
        write(10).await.unwrap();
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(count, 2);
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
