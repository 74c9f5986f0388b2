//! Planner statistics renewed sooner than autovacuum renews them, on
//! PostgreSQL.
//!
//! PostgreSQL plans from samples of each table that autovacuum takes a
//! minute or more after a change, and a prepared statement keeps the plan
//! it made until the next sample. A table that grows fast from nothing (a
//! new installation's first positions, a year of flows taken in at once) is
//! meanwhile planned as if it still held a handful of rows, and the plan
//! can read every row of the Ente through the wrong index: a flow's
//! look-up and the link checks of a GPD create went from a fraction of a
//! millisecond to several (`bench recon`, `bench notify --database-url`,
//! stop 39). A table is sampled here once it changed by more than a fifth
//! of its rows, and by at least a thousand: later than autovacuum's own
//! threshold (a tenth), so in a steady state autovacuum comes first and
//! this finds nothing to do. SQLite is never analyzed; its queries are
//! written for its planner's rules instead.

use crate::{Dialect, Result, Store};

/// What a matching run joins (sampled before each run).
const RECON_TABLES: &str = "'flow_payments', 'reporting_flows', 'treasury_movements'";

/// The tables that grow with the Enti's business (sampled by the
/// `refresh_statistics` job).
const GROWING_TABLES: &str = "'debt_positions', 'payment_options', 'transfers', 'receipts',
    'position_event_rows', 'notifications', 'flow_payments', 'reporting_flows',
    'treasury_movements'";

impl Store {
    /// Samples the recon tables that changed much since their last sample,
    /// before a matching run: a run right after a big intake was planned
    /// as if the flows were a handful of rows, nested loops over 300,000
    /// lines, 38 s against 2 s (`bench recon --database-url` with
    /// autovacuum off). Answers the tables sampled.
    pub async fn refresh_recon_statistics(&self) -> Result<Vec<String>> {
        self.refresh_statistics(RECON_TABLES).await
    }

    /// Samples every growing table that changed much since its last
    /// sample. Answers the tables sampled.
    pub async fn refresh_stale_statistics(&self) -> Result<Vec<String>> {
        self.refresh_statistics(GROWING_TABLES).await
    }

    /// `tables`: a fixed list of quoted names, never outside input.
    async fn refresh_statistics(&self, tables: &str) -> Result<Vec<String>> {
        if self.dialect != Dialect::Postgres {
            return Ok(Vec::new());
        }
        let stale: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT c.relname::text FROM pg_class c
               JOIN pg_stat_user_tables s ON s.relid = c.oid
             WHERE c.relname IN ({tables})
               AND c.relnamespace = current_schema()::regnamespace
               AND s.n_mod_since_analyze > GREATEST(1000, c.reltuples * 0.2)
             ORDER BY c.relname"
        )))
        .fetch_all(&self.pool)
        .await?;
        if !stale.is_empty() {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ANALYZE {}", stale.join(", "))))
                .execute(&self.pool)
                .await?;
        }
        Ok(stale)
    }
}
