//! What `GET /metrics` reads from the database at each scrape: the
//! outboxes' depth and age, supplies and their rows, anomalies by class,
//! the pools' use. Across every Ente (incasso's own use, like
//! `list_enti`): a gauge of the whole installation.

use crate::{Result, Store};
use sqlx::Row;

/// One outbox: rows waiting (due or being sent) and the oldest's creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxGauge {
    pub outbox: &'static str,
    pub waiting: i64,
    /// Microseconds since the epoch; `None` when nothing waits.
    pub oldest_created_at: Option<i64>,
}

/// Supplies by status, with their rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupplyGauge {
    pub status: String,
    pub supplies: i64,
    pub rows_read: i64,
    pub rows_loaded: i64,
    pub rows_rejected: i64,
}

/// Everything the scrape reads, in one snapshot.
#[derive(Debug, Clone, Default)]
pub struct OperationsSnapshot {
    pub outboxes: Vec<OutboxGauge>,
    pub supplies: Vec<SupplyGauge>,
    /// Reconciliation's open anomalies by code.
    pub recon_anomalies: Vec<(String, i64)>,
    /// Receipts flagged for a person, by anomaly.
    pub receipt_anomalies: Vec<(String, i64)>,
    /// (pool, connections open, idle): `readers` and `writer` on SQLite,
    /// `pool` on PostgreSQL.
    pub pools: Vec<(&'static str, u32, u32)>,
    /// WAL flushes made before acknowledgements (SQLite; [`Store::durable`]).
    pub wal_flushes: u64,
}

const OUTBOXES: [(&str, &str); 3] = [
    ("io_and_email", "notifications"),
    ("webhooks", "webhook_deliveries"),
    ("receipt_email", "mail_outbox"),
];

impl Store {
    pub async fn operations_snapshot(&self) -> Result<OperationsSnapshot> {
        let mut snapshot = OperationsSnapshot::default();
        for (outbox, table) in OUTBOXES {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT CAST(COUNT(*) AS BIGINT) AS waiting, MIN(created_at) AS oldest
                 FROM {table} WHERE status IN ('PENDING', 'SENDING')"
            )))
            .fetch_one(&self.pool)
            .await?;
            snapshot.outboxes.push(OutboxGauge {
                outbox,
                waiting: row.try_get("waiting")?,
                oldest_created_at: row.try_get("oldest")?,
            });
        }
        for row in sqlx::query(
            "SELECT status, CAST(COUNT(*) AS BIGINT) AS n,
                    CAST(COALESCE(SUM(rows_read), 0) AS BIGINT) AS rows_read,
                    CAST(COALESCE(SUM(rows_loaded), 0) AS BIGINT) AS rows_loaded,
                    CAST(COALESCE(SUM(rows_rejected), 0) AS BIGINT) AS rows_rejected
             FROM supplies GROUP BY status ORDER BY status",
        )
        .fetch_all(&self.pool)
        .await?
        {
            snapshot.supplies.push(SupplyGauge {
                status: row.try_get("status")?,
                supplies: row.try_get("n")?,
                rows_read: row.try_get("rows_read")?,
                rows_loaded: row.try_get("rows_loaded")?,
                rows_rejected: row.try_get("rows_rejected")?,
            });
        }
        snapshot.recon_anomalies = counted(
            self,
            "SELECT code, CAST(COUNT(*) AS BIGINT) FROM recon_anomalies GROUP BY code ORDER BY code",
        )
        .await?;
        snapshot.receipt_anomalies = counted(
            self,
            "SELECT anomaly, CAST(COUNT(*) AS BIGINT) FROM receipts
             WHERE anomaly IS NOT NULL GROUP BY anomaly ORDER BY anomaly",
        )
        .await?;
        snapshot.wal_flushes = self.wal_flushes();
        snapshot.pools = match self.dialect {
            crate::Dialect::Sqlite => vec![
                ("readers", self.pool.size(), self.pool.num_idle() as u32),
                ("writer", self.writer.size(), self.writer.num_idle() as u32),
            ],
            crate::Dialect::Postgres => {
                vec![("pool", self.pool.size(), self.pool.num_idle() as u32)]
            }
        };
        Ok(snapshot)
    }
}

async fn counted(store: &Store, sql: &'static str) -> Result<Vec<(String, i64)>> {
    sqlx::query(sql)
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}
