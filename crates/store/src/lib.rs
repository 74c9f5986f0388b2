//! incasso's persistence, on SQLite (the embedded default) and PostgreSQL.
//!
//! One code path for both, through sqlx's `Any` driver: every query is written
//! once with `$n` placeholders and portable types (see `migrations/`). The few
//! places where the dialects differ (connection setup, how a write
//! transaction starts, row locks) are in [`Dialect`], and nowhere else.
//!
//! The public API is repository methods that take the Ente first: no query
//! here can cross from one Ente to another.

mod batch;
mod bulk;
mod catalogue;
mod claim;
mod enti;
mod iuv;
mod keys;
mod migrate;
mod positions;
mod receipts;
mod recon;
mod supply_writer;
mod time;

pub use bulk::{Existing, INTERRUPTED, LOADING, PaidItem, SupplyError, SupplyOfFile, SupplyRecord};
pub use claim::SupplyClaim;
pub use keys::{ApiKeyRecord, KeyScope};
pub use positions::{ListFilter, OrderBy, Page, StoredPosition};
pub use receipts::{Anomaly, ReceiptOutcome, ReceiptRecord, StoredReceipt};
pub use recon::{
    AccountedLine, AnomalyRecord, FlowIntake, LineFacts, LinesOf, MovementMatchRecord, StoredFlow,
};
pub use supply_writer::{Bulk, numbers_of};
pub use time::{from_micros, to_micros};

use incasso_core::Invalid;
use incasso_core::position::TransitionError;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Transaction};
use std::str::FromStr;
use std::time::Duration;

/// The SQLite writer connection's own settings. A bulk load's transaction
/// touches more pages than SQLite's default 2 MB cache holds: spilling them
/// mid-transaction and writing statement journals to temporary files were a
/// third of a supply's load time (perf, `incasso bench load`).
///
/// The writer never checkpoints the WAL itself (`wal_autocheckpoint = 0`):
/// a checkpoint runs inside the commit that triggers it, and after a
/// million-row supply it copies the whole new database (600 MB) before the
/// commit returns. `checkpointer` does it in the background instead.
const WRITER_PRAGMAS: &str =
    "PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 0;";

/// How often the background checkpointer copies committed WAL frames into
/// the database file. An idle database costs one no-op query per period.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Copies committed WAL frames into the database file, off the writer's
/// path, until the pool closes. PASSIVE: it never waits for readers or the
/// writer, and what it cannot copy now it copies next time.
fn checkpointer(pool: AnyPool) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(CHECKPOINT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if pool.is_closed() {
                return;
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_optional(&pool)
                .await
            {
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(error = %e, "checkpoint del WAL non riuscito");
            }
        }
    });
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
    #[error("configurazione del database: {0}")]
    Config(String),
    #[error("errore del database: {0}")]
    Backend(#[from] sqlx::Error),
    #[error("dato corrotto nel database: {0}")]
    Corrupt(String),
    /// A supply's writes stopped at an earlier failure (given here).
    #[error("scrittura della fornitura interrotta: {0}")]
    Aborted(String),
}

impl StoreError {
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Backend(sqlx::Error::Database(e)) if e.is_unique_violation())
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
    /// The SQLite database file, beside which cross-process locks live.
    sqlite_file: Option<std::path::PathBuf>,
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
                .after_connect(move |conn, _meta| {
                    Box::pin(async move {
                        sqlx::raw_sql(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON;",
                        )
                        .execute(&mut *conn)
                        .await?;
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
                    .acquire_timeout(Duration::from_secs(30))
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
        Ok(Store {
            pool,
            writer,
            dialect,
            sqlite_file,
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub async fn migrate(&self) -> Result<()> {
        migrate::run(self).await
    }

    /// Answers once the database does.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    async fn write_tx(&self) -> Result<Transaction<'static, sqlx::Any>> {
        Ok(self.writer.begin_with(self.dialect.begin_write()).await?)
    }
}
