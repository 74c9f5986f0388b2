//! The back office's reading of the store: the supplies archive as a
//! sortable list with page numbers, a supply's row errors a page at a
//! time, and the dashboard's figures, summed by the database (GROUP BY
//! over indexed columns), never by fetching rows.

use crate::time::{from_micros, to_micros};
use crate::{Result, Store, StoreError, SupplyError, SupplyRecord};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// How the supplies archive is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SupplyOrder {
    /// Newest first when descending.
    #[default]
    Id,
    FileName,
    Layout,
    Status,
    RowsRead,
    RowsRejected,
    PositionsCreated,
}

impl SupplyOrder {
    fn column(self) -> &'static str {
        match self {
            SupplyOrder::Id => "id",
            SupplyOrder::FileName => "file_name",
            SupplyOrder::Layout => "layout",
            SupplyOrder::Status => "status",
            SupplyOrder::RowsRead => "rows_read",
            SupplyOrder::RowsRejected => "rows_rejected",
            SupplyOrder::PositionsCreated => "positions_created",
        }
    }
}

/// A supply as a list shows it: its record without row errors, and
/// `outcome` an empty `Some` when it has an outcome file (the file itself
/// stays in the database).
#[derive(Debug, Clone)]
pub struct SupplyLine {
    pub id: i64,
    pub record: SupplyRecord,
    /// Its row errors kept for the report.
    pub errors: i64,
}

/// The columns of a supply without its outcome's bytes.
fn supply_columns(dialect: crate::Dialect) -> String {
    let blob = match dialect {
        crate::Dialect::Postgres => "BYTEA",
        crate::Dialect::Sqlite => "BLOB",
    };
    format!(
        "id, layout, file_name, file_hash, size_bytes, status, accepted, rows_read, rows_loaded,
         rows_rejected, positions_created, positions_updated, positions_cancelled, started_at,
         message, resume_line, CAST(NULL AS {blob}) AS outcome,
         CAST(CASE WHEN outcome IS NULL THEN 0 ELSE 1 END AS BIGINT) AS has_outcome,
         (SELECT COUNT(*) FROM supply_errors e WHERE e.supply_id = supplies.id) AS errors"
    )
}

fn supply_line(r: &sqlx::any::AnyRow) -> Result<SupplyLine> {
    let has_outcome: i64 = r.try_get("has_outcome")?;
    Ok(SupplyLine {
        id: r.try_get("id")?,
        errors: r.try_get("errors")?,
        record: SupplyRecord {
            layout: r.try_get("layout")?,
            file_name: r.try_get("file_name")?,
            file_hash: r.try_get("file_hash")?,
            size_bytes: r.try_get("size_bytes")?,
            status: r.try_get("status")?,
            accepted: r.try_get::<i64, _>("accepted")? != 0,
            rows_read: r.try_get("rows_read")?,
            rows_loaded: r.try_get("rows_loaded")?,
            rows_rejected: r.try_get("rows_rejected")?,
            positions_created: r.try_get("positions_created")?,
            positions_updated: r.try_get("positions_updated")?,
            positions_cancelled: r.try_get("positions_cancelled")?,
            started_at: from_micros(r.try_get("started_at")?),
            message: r.try_get("message")?,
            outcome: (has_outcome != 0).then(Vec::new),
            resume_line: r.try_get("resume_line")?,
            errors: Vec::new(),
        },
    })
}

/// Statuses of supplies that wait for a person: refused, failed, loaded
/// with errors, or interrupted.
pub const SUPPLY_STATUSES_TO_REVIEW: [&str; 4] =
    ["LOADED_WITH_ERRORS", "REJECTED", "FAILED", "INTERRUPTED"];

impl Store {
    /// A page of the Ente's supplies sorted by `order` (then newest first),
    /// `limit` of them from `offset`, and how many there are.
    /// `scope`: only the supplies loaded by operators limited to these
    /// offices or some of them (see migration 0019); `None`: all.
    #[allow(clippy::too_many_arguments)]
    pub async fn supplies_page(
        &self,
        ente: &str,
        order: SupplyOrder,
        ascending: bool,
        offset: u64,
        limit: u32,
        scope: Option<&[String]>,
    ) -> Result<(Vec<SupplyLine>, u64)> {
        let direction = if ascending { "ASC" } else { "DESC" };
        let tie = if order == SupplyOrder::Id {
            String::new()
        } else {
            ", id DESC".to_string()
        };
        // In scope: with each of the operator's offices taken out of the
        // supply's list (",UT,UR," -> ","), nothing is left.
        let (scoped, codes) = match scope {
            None => (String::new(), Vec::new()),
            Some(offices) => {
                let mut expr = String::from("offices");
                for k in 0..offices.len() {
                    expr = format!("REPLACE({expr}, ${}, ',')", k + 2);
                }
                (
                    format!(" AND offices IS NOT NULL AND {expr} = ','"),
                    offices.iter().map(|o| format!(",{o},")).collect(),
                )
            }
        };
        let n = codes.len();
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM supplies WHERE ente = $1{scoped}
             ORDER BY {} {direction}{tie} LIMIT ${} OFFSET ${}",
            supply_columns(self.dialect),
            order.column(),
            n + 2,
            n + 3,
        )))
        .bind(ente);
        for c in &codes {
            q = q.bind(c);
        }
        let rows = q
            .bind(i64::from(limit))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        let mut count = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM supplies WHERE ente = $1{scoped}"
        )))
        .bind(ente);
        for c in &codes {
            count = count.bind(c);
        }
        let total: i64 = count.fetch_one(&self.pool).await?;
        let lines = rows.iter().map(supply_line).collect::<Result<Vec<_>>>()?;
        Ok((lines, total.max(0) as u64))
    }

    /// Records the offices of the operator who loaded a supply (as
    /// ",UT,UR,"), when they were limited to some.
    pub async fn set_supply_offices(&self, ente: &str, id: i64, offices: &[String]) -> Result<()> {
        let mut sorted = offices.to_vec();
        sorted.sort();
        sqlx::query("UPDATE supplies SET offices = $1 WHERE ente = $2 AND id = $3")
            .bind(format!(",{},", sorted.join(",")))
            .bind(ente)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// The offices a supply was loaded under: `None` when there is no such
    /// supply, `Some(vec![])` when its loader was not limited to offices.
    pub async fn supply_offices(&self, ente: &str, id: i64) -> Result<Option<Vec<String>>> {
        let row: Option<Option<String>> =
            sqlx::query_scalar("SELECT offices FROM supplies WHERE ente = $1 AND id = $2")
                .bind(ente)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|o| {
            o.unwrap_or_default()
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect()
        }))
    }

    /// One supply of the Ente without its row errors and outcome bytes
    /// (what a page that follows a load reads every few seconds).
    pub async fn supply_line(&self, ente: &str, id: i64) -> Result<SupplyLine> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM supplies WHERE ente = $1 AND id = $2",
            supply_columns(self.dialect)
        )))
        .bind(ente)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("fornitura"))?;
        supply_line(&row)
    }

    /// A page of a supply's row errors, by line: `limit` from `offset`.
    /// The supply is the Ente's, or there is nothing.
    pub async fn supply_errors_page(
        &self,
        ente: &str,
        id: i64,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<SupplyError>> {
        let rows = sqlx::query(
            "SELECT e.line, e.field, e.value, e.code, e.message
             FROM supply_errors e JOIN supplies s ON s.id = e.supply_id
             WHERE s.ente = $1 AND e.supply_id = $2
             ORDER BY e.line, e.field LIMIT $3 OFFSET $4",
        )
        .bind(ente)
        .bind(id)
        .bind(i64::from(limit))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|e| {
                Ok(SupplyError {
                    line: e.try_get("line")?,
                    field: e.try_get("field")?,
                    value: e.try_get("value")?,
                    code: e.try_get("code")?,
                    message: e.try_get("message")?,
                })
            })
            .collect()
    }

    /// The Ente's newest supplies that wait for a person
    /// ([`SUPPLY_STATUSES_TO_REVIEW`]) since `since`, at most `limit`, and
    /// how many there are in all.
    pub async fn supplies_to_review(
        &self,
        ente: &str,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<(Vec<SupplyLine>, u64)> {
        let statuses = SUPPLY_STATUSES_TO_REVIEW
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM supplies WHERE ente = $1 AND started_at >= $2 AND status IN ({statuses})
             ORDER BY id DESC LIMIT $3",
            supply_columns(self.dialect)
        )))
        .bind(ente)
        .bind(to_micros(since))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM supplies
             WHERE ente = $1 AND started_at >= $2 AND status IN ({statuses})"
        )))
        .bind(ente)
        .bind(to_micros(since))
        .fetch_one(&self.pool)
        .await?;
        let lines = rows.iter().map(supply_line).collect::<Result<Vec<_>>>()?;
        Ok((lines, total.max(0) as u64))
    }
}

// ---------------------------------------------------------------- figures

/// One sum of the dashboard's snapshot: options (or, with an
/// `accertamento`, their quotas) falling due in one hour, of one service
/// and office, paid or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardTotal {
    /// Hours since 1970-01-01T00:00Z of the due date.
    pub due_hour: i64,
    /// Empty: no service (or office) known.
    pub service_code: String,
    pub office_code: String,
    /// Empty: the options' whole amounts; else `year/code`, the quotas
    /// booked on that accertamento.
    pub accertamento: String,
    pub paid: bool,
    pub amount: i64,
    pub items: i64,
}

/// When a snapshot was taken, what it saw of the Ente's positions, and how
/// long it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DashboardSnapshot {
    pub computed_at: DateTime<Utc>,
    pub last_id: i64,
    pub last_update: i64,
    pub millis: i64,
}

/// Microseconds in an hour: due dates are summed by the hour, so that the
/// day (and month, and year) of each is told in Rome's time exactly,
/// whatever the offset of the date.
pub const HOUR_MICROS: i64 = 3_600_000_000;

/// The options that count: every paid one (money came in, whatever
/// became of its position), and of the unpaid ones those still owed, once
/// each debt: a position's unpaid installments when it has installments,
/// else its first single solution (the others are alternatives to it).
/// Drafts, cancelled and paid positions owe nothing more.
///
/// Written twice, the same rule: SQLite looks each option's siblings up in
/// the index on `position_id` (its fastest way: 2.6 s for a million), while
/// PostgreSQL, which would run that lookup twice per option (24 s), joins
/// a summary of each position's options instead (3 s); SQLite does the
/// join three times slower.
fn counted(dialect: crate::Dialect) -> (&'static str, &'static str) {
    match dialect {
        crate::Dialect::Sqlite => (
            "",
            "(o.status <> 'PO_UNPAID'
              OR (p.status IN ('VALID', 'PUBLISHED', 'PARTIALLY_PAID', 'EXPIRED')
                  AND (o.is_partial_payment = 1
                       OR NOT EXISTS (SELECT 1 FROM payment_options x
                                      WHERE x.position_id = o.position_id
                                        AND (x.is_partial_payment = 1
                                             OR x.option_index < o.option_index)))))",
        ),
        crate::Dialect::Postgres => (
                "JOIN (SELECT position_id, MAX(is_partial_payment) AS installments,
                          MIN(CASE WHEN is_partial_payment = 0 THEN option_index END) AS first_single
                       FROM payment_options WHERE ente = $1 GROUP BY position_id) f
                   ON f.position_id = o.position_id",
                "(o.status <> 'PO_UNPAID'
                  OR (p.status IN ('VALID', 'PUBLISHED', 'PARTIALLY_PAID', 'EXPIRED')
                      AND (o.is_partial_payment = 1
                           OR (f.installments = 0 AND o.option_index = f.first_single))))",
        ),
    }
}

const GROUPS: &str = "o.due_date / 3600000000 AS due_hour,
    COALESCE(p.service_code, '') AS service_code,
    COALESCE(p.office_code, '') AS office_code";

const PAID: &str = "CASE WHEN o.status = 'PO_UNPAID' THEN 0 ELSE 1 END AS paid";

fn dashboard_total(r: &sqlx::any::AnyRow) -> Result<DashboardTotal> {
    Ok(DashboardTotal {
        due_hour: r.try_get("due_hour")?,
        service_code: r.try_get("service_code")?,
        office_code: r.try_get("office_code")?,
        accertamento: r.try_get("accertamento")?,
        paid: r.try_get::<i64, _>("paid")? != 0,
        amount: r.try_get("amount")?,
        items: r.try_get("items")?,
    })
}

impl Store {
    /// The newest id and the latest update among the Ente's positions: two
    /// index lookups, which tell whether anything changed since a snapshot.
    pub async fn positions_watermark(&self, ente: &str) -> Result<(i64, i64)> {
        let last_id: Option<i64> =
            sqlx::query_scalar("SELECT MAX(id) FROM debt_positions WHERE ente = $1")
                .bind(ente)
                .fetch_one(&self.pool)
                .await?;
        let last_update: Option<i64> =
            sqlx::query_scalar("SELECT MAX(updated_at) FROM debt_positions WHERE ente = $1")
                .bind(ente)
                .fetch_one(&self.pool)
                .await?;
        Ok((last_id.unwrap_or(0), last_update.unwrap_or(0)))
    }

    /// The Ente's dashboard snapshot, if one was taken.
    pub async fn dashboard_snapshot(&self, ente: &str) -> Result<Option<DashboardSnapshot>> {
        let row = sqlx::query(
            "SELECT computed_at, last_id, last_update, millis FROM dashboard_snapshots
             WHERE ente = $1",
        )
        .bind(ente)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(DashboardSnapshot {
                computed_at: from_micros(r.try_get("computed_at")?),
                last_id: r.try_get("last_id")?,
                last_update: r.try_get("last_update")?,
                millis: r.try_get("millis")?,
            })
        })
        .transpose()
    }

    /// Every sum of the Ente's snapshot (a few thousand rows at most: hours
    /// of due dates by service, office and accertamento).
    pub async fn dashboard_totals(&self, ente: &str) -> Result<Vec<DashboardTotal>> {
        let rows = sqlx::query(
            "SELECT due_hour, service_code, office_code, accertamento, paid, amount, items
             FROM dashboard_totals WHERE ente = $1",
        )
        .bind(ente)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(dashboard_total).collect()
    }

    /// Sums the Ente's options and their accertamenti's quotas afresh (on
    /// the readers, by the database), and keeps them as its snapshot.
    pub async fn refresh_dashboard(
        &self,
        ente: &str,
        now: DateTime<Utc>,
    ) -> Result<DashboardSnapshot> {
        let (snapshot, totals) = self.compute_dashboard(ente, now).await?;
        self.save_dashboard(ente, &snapshot, &totals).await?;
        Ok(snapshot)
    }

    /// Sums the Ente's options and their accertamenti's quotas afresh, on
    /// the readers (never waiting for a writer): the snapshot to keep, and
    /// its sums.
    pub async fn compute_dashboard(
        &self,
        ente: &str,
        now: DateTime<Utc>,
    ) -> Result<(DashboardSnapshot, Vec<DashboardTotal>)> {
        let started = std::time::Instant::now();
        // Seen before summing: a change made meanwhile makes the next look
        // sum again.
        let (last_id, last_update) = self.positions_watermark(ente).await?;
        let (siblings, counted) = counted(self.dialect);
        let options_sql = format!(
            "SELECT {GROUPS}, '' AS accertamento, {PAID},
                CAST(SUM(o.amount) AS BIGINT) AS amount, COUNT(*) AS items
             FROM payment_options o JOIN debt_positions p ON p.id = o.position_id
                {siblings}
             WHERE o.ente = $1 AND {counted}
             GROUP BY 1, 2, 3, 4, 5"
        );
        // The quotas are a JSON list on each transfer: each database has
        // its own way of reading one as rows.
        let (quotas_from, year, code, quota_amount) = match self.dialect {
            crate::Dialect::Sqlite => (
                "JOIN json_each(t.quotas) q",
                "CAST(json_extract(q.value, '$.year') AS TEXT)",
                "json_extract(q.value, '$.code')",
                "CAST(json_extract(q.value, '$.amount') AS BIGINT)",
            ),
            // `json`, not `jsonb`: read once, it needs no conversion.
            crate::Dialect::Postgres => (
                "CROSS JOIN LATERAL json_array_elements(CAST(t.quotas AS json)) AS q(value)",
                "(q.value ->> 'year')",
                "(q.value ->> 'code')",
                "CAST(q.value ->> 'amount' AS BIGINT)",
            ),
        };
        let quotas_sql = format!(
            "SELECT {GROUPS}, {year} || '/' || {code} AS accertamento, {PAID},
                CAST(SUM({quota_amount}) AS BIGINT) AS amount, COUNT(*) AS items
             FROM payment_options o JOIN debt_positions p ON p.id = o.position_id
                {siblings}
                JOIN transfers t ON t.ente = o.ente AND t.iuv = o.iuv
                {quotas_from}
             WHERE o.ente = $1 AND t.organization_fiscal_code = $1 AND t.quotas <> '[]'
                AND {counted}
             GROUP BY 1, 2, 3, 4, 5"
        );
        // Two readers at once: the sums take as long as the longer one.
        let (options, quotas) = tokio::try_join!(
            sqlx::query(sqlx::AssertSqlSafe(options_sql))
                .bind(ente)
                .fetch_all(&self.pool),
            sqlx::query(sqlx::AssertSqlSafe(quotas_sql))
                .bind(ente)
                .fetch_all(&self.pool),
        )?;
        let totals = options
            .iter()
            .chain(quotas.iter())
            .map(dashboard_total)
            .collect::<Result<Vec<_>>>()?;
        let snapshot = DashboardSnapshot {
            computed_at: now,
            last_id,
            last_update,
            millis: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        };
        Ok((snapshot, totals))
    }

    /// Keeps `totals` as the Ente's snapshot, in one short write. Two
    /// processes doing it at once take turns on the snapshot's row; the
    /// later one's figures stand.
    pub async fn save_dashboard(
        &self,
        ente: &str,
        snapshot: &DashboardSnapshot,
        totals: &[DashboardTotal],
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        // The snapshot's row first: a second refresh waits here for this
        // one to commit, then replaces its rows rather than colliding.
        sqlx::query(
            "INSERT INTO dashboard_snapshots (ente, computed_at, last_id, last_update, millis)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (ente) DO UPDATE SET computed_at = excluded.computed_at,
                last_id = excluded.last_id, last_update = excluded.last_update,
                millis = excluded.millis",
        )
        .bind(ente)
        .bind(to_micros(snapshot.computed_at))
        .bind(snapshot.last_id)
        .bind(snapshot.last_update)
        .bind(snapshot.millis)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM dashboard_totals WHERE ente = $1")
            .bind(ente)
            .execute(&mut *tx)
            .await?;
        for chunk in totals.chunks(100) {
            let values = (0..chunk.len())
                .map(|i| {
                    let b = i * 8;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6,
                        b + 7,
                        b + 8
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO dashboard_totals (ente, due_hour, service_code, office_code,
                    accertamento, paid, amount, items) VALUES {values}"
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for t in chunk {
                q = q
                    .bind(ente)
                    .bind(t.due_hour)
                    .bind(t.service_code.clone())
                    .bind(t.office_code.clone())
                    .bind(t.accertamento.clone())
                    .bind(i64::from(t.paid))
                    .bind(t.amount)
                    .bind(t.items);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The reconciliation's anomalies of the Ente by code: how many, and
    /// the amount they concern.
    pub async fn dashboard_recon_anomalies(&self, ente: &str) -> Result<Vec<(String, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT code, COUNT(*) AS n, CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS amount
             FROM recon_anomalies WHERE ente = $1 GROUP BY code ORDER BY code",
        )
        .bind(ente)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("code")?, r.try_get("n")?, r.try_get("amount")?)))
            .collect()
    }

    /// The receipts of the Ente flagged with an anomaly, by anomaly: how
    /// many, and their amount.
    pub async fn dashboard_receipt_anomalies(&self, ente: &str) -> Result<Vec<(String, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT anomaly, COUNT(*) AS n, CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS amount
             FROM receipts WHERE ente = $1 AND anomaly IS NOT NULL
             GROUP BY anomaly ORDER BY anomaly",
        )
        .bind(ente)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("anomaly")?, r.try_get("n")?, r.try_get("amount")?)))
            .collect()
    }
}
