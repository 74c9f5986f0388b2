//! Bulk loads (Digit BUS supplies). A supply's row is written first
//! (`LOADING`), so any process can follow it. Its writes then go in one
//! transaction when its layout wants all or nothing: a kill -9 halfway
//! leaves nothing of it. A layout that loads the valid rows commits as it
//! goes, each commit carrying the supply's checkpoint (the last line whose
//! rows are written, the counters and the errors so far): a kill -9 leaves a
//! state that the next load of the same file resumes from. Never twice.

use crate::batch::Stmt;
use crate::time::to_micros;
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use incasso_core::position::PositionStatus;
use sqlx::{Any, Row, Transaction};

/// What the store knows of a key before a supply touches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Existing {
    pub status: PositionStatus,
}

/// The record of a supply, written with its rows.
#[derive(Debug, Clone, Default)]
pub struct SupplyRecord {
    pub layout: String,
    pub file_name: String,
    pub file_hash: String,
    pub size_bytes: i64,
    pub status: String,
    pub accepted: bool,
    pub rows_read: i64,
    pub rows_loaded: i64,
    pub rows_rejected: i64,
    pub positions_created: i64,
    pub positions_updated: i64,
    pub positions_cancelled: i64,
    pub started_at: DateTime<Utc>,
    pub message: String,
    pub outcome: Option<Vec<u8>>,
    /// The last line of the file whose rows are committed (resumable loads).
    pub resume_line: i64,
    pub errors: Vec<SupplyError>,
}

/// A supply already recorded for a file.
#[derive(Debug, Clone)]
pub struct SupplyOfFile {
    pub id: i64,
    pub record: SupplyRecord,
}

/// A supply left loading, as the sweeper of abandoned loads sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadingSupply {
    pub ente: String,
    pub id: i64,
    pub file_hash: String,
    /// The last line its load committed (0: none).
    pub resume_line: i64,
}

/// A supply whose load is under way (or was abandoned by a dead process).
pub const LOADING: &str = "LOADING";

/// A supply whose load stopped on an error after committing some of it: the
/// same file sent again resumes it.
pub const INTERRUPTED: &str = "INTERRUPTED";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupplyError {
    pub line: i64,
    pub field: String,
    pub value: String,
    pub code: String,
    pub message: String,
}

impl Store {
    /// The supply of this file that counts: one accepted, or one still
    /// loading (or abandoned halfway), the newest first.
    pub async fn supply_of_file(&self, ente: &str, hash: &str) -> Result<Option<SupplyOfFile>> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM supplies WHERE ente = $1 AND file_hash = $2
               AND (accepted = 1 OR status IN ('LOADING', 'INTERRUPTED'))
             ORDER BY accepted DESC, id DESC LIMIT 1",
        )
        .bind(ente)
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        match id {
            Some(id) => Ok(Some(SupplyOfFile {
                id,
                record: self.supply(ente, id).await?,
            })),
            None => Ok(None),
        }
    }

    /// Every supply still `LOADING` but a GPD upload's, oldest first: the
    /// upload worker resumes its own (it keeps the file), while a supply
    /// sent by a client waits for the client to send the file again.
    pub async fn loading_supplies(&self) -> Result<Vec<LoadingSupply>> {
        let rows = sqlx::query(
            "SELECT s.ente, s.id, s.file_hash, s.resume_line FROM supplies s
             WHERE s.status = 'LOADING'
               AND NOT EXISTS (SELECT 1 FROM gpd_uploads u
                               WHERE u.ente = s.ente AND u.supply_id = s.id)
             ORDER BY s.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LoadingSupply {
                    ente: r.try_get(0)?,
                    id: r.try_get(1)?,
                    file_hash: r.try_get(2)?,
                    resume_line: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// Records the start of a supply's load (status `LOADING`).
    pub async fn begin_supply(
        &self,
        ente: &str,
        s: &SupplyRecord,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let mut tx = self.write_tx().await?;
        let mut record = s.clone();
        record.status = LOADING.into();
        record.accepted = false;
        let id = insert_supply(&mut tx, ente, &record, now).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Marks a load stopped by an error as interrupted (to be resumed), or an
    /// interrupted one as loading again, keeping the counters of its last
    /// checkpoint.
    pub async fn set_supply_loading_state(
        &self,
        ente: &str,
        id: i64,
        status: &str,
        message: &str,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE supplies SET status = $3, message = $4
             WHERE ente = $1 AND id = $2 AND status IN ('LOADING', 'INTERRUPTED')",
        )
        .bind(ente)
        .bind(id)
        .bind(status)
        .bind(message)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks a supply still `LOADING` as `INTERRUPTED`, keeping its
    /// checkpoint; false if it was no longer loading.
    pub async fn mark_supply_interrupted(
        &self,
        ente: &str,
        id: i64,
        message: &str,
    ) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE supplies SET status = 'INTERRUPTED', message = $3
             WHERE ente = $1 AND id = $2 AND status = 'LOADING'",
        )
        .bind(ente)
        .bind(id)
        .bind(message)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(done == 1)
    }

    /// Closes a supply that wrote no position (refused whole, or loading
    /// failed), with its errors.
    pub async fn finish_supply_unwritten(
        &self,
        ente: &str,
        id: i64,
        s: &SupplyRecord,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        update_supply(&mut tx, ente, id, s, now).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn supply(&self, ente: &str, id: i64) -> Result<SupplyRecord> {
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SUPPLY_COLUMNS} FROM supplies WHERE ente = $1 AND id = $2"
        )))
        .bind(ente)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("fornitura"))?;
        let errors = sqlx::query(
            "SELECT line, field, value, code, message FROM supply_errors WHERE supply_id = $1 ORDER BY line",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|e| {
            Ok(SupplyError {
                line: e.try_get("line")?,
                field: e.try_get("field")?,
                value: e.try_get("value")?,
                code: e.try_get("code")?,
                message: e.try_get("message")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        Ok(SupplyRecord {
            errors,
            ..supply_of_row(&r)?
        })
    }

    /// The Ente's supplies, newest first, `limit` of them before the supply
    /// `before` (keyset paging); without their row errors.
    pub async fn list_supplies(
        &self,
        ente: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(i64, SupplyRecord)>> {
        // The outcome files stay in the database: a list only says whether
        // there is one (an empty `outcome`).
        let blob = match self.dialect {
            crate::Dialect::Postgres => "BYTEA",
            _ => "BLOB",
        };
        let columns = SUPPLY_COLUMNS.replace(
            "outcome,",
            &format!(
                "CAST(NULL AS {blob}) AS outcome,
                 CAST(CASE WHEN outcome IS NULL THEN 0 ELSE 1 END AS BIGINT) AS has_outcome,"
            ),
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, {columns} FROM supplies WHERE ente = $1 AND id < $2
             ORDER BY id DESC LIMIT $3"
        )))
        .bind(ente)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit.clamp(1, 1001)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let mut record = supply_of_row(r)?;
                if r.try_get::<i64, _>("has_outcome")? != 0 {
                    record.outcome = Some(Vec::new());
                }
                Ok((r.try_get("id")?, record))
            })
            .collect()
    }
}

const SUPPLY_COLUMNS: &str = "layout, file_name, file_hash, size_bytes, status, accepted, rows_read,
    rows_loaded, rows_rejected, positions_created, positions_updated, positions_cancelled, started_at,
    message, outcome, resume_line";

/// A supply's row, without its row errors.
fn supply_of_row(r: &sqlx::any::AnyRow) -> Result<SupplyRecord> {
    Ok(SupplyRecord {
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
        started_at: crate::time::from_micros(r.try_get("started_at")?),
        message: r.try_get("message")?,
        outcome: r.try_get("outcome")?,
        resume_line: r.try_get("resume_line")?,
        errors: Vec::new(),
    })
}

pub(crate) async fn insert_supply(
    tx: &mut Transaction<'static, Any>,
    ente: &str,
    s: &SupplyRecord,
    now: DateTime<Utc>,
) -> Result<i64> {
    let res = sqlx::query_scalar::<_, i64>(
        "INSERT INTO supplies (ente, layout, file_name, file_hash, size_bytes, status, accepted, rows_read,
            rows_loaded, rows_rejected, positions_created, positions_updated, positions_cancelled,
            started_at, finished_at, message, outcome)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id",
    )
    .bind(ente)
    .bind(&s.layout)
    .bind(&s.file_name)
    .bind(&s.file_hash)
    .bind(s.size_bytes)
    .bind(&s.status)
    .bind(i64::from(s.accepted))
    .bind(s.rows_read)
    .bind(s.rows_loaded)
    .bind(s.rows_rejected)
    .bind(s.positions_created)
    .bind(s.positions_updated)
    .bind(s.positions_cancelled)
    .bind(to_micros(s.started_at))
    .bind(to_micros(now))
    .bind(&s.message)
    .bind(s.outcome.clone())
    .fetch_one(&mut **tx)
    .await;
    let id = match res {
        Ok(id) => id,
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(StoreError::Conflict(
                "lo stesso file è già stato caricato per questo ente".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    for e in supply_errors(id, &s.errors) {
        e.into_any().execute(&mut **tx).await?;
    }
    Ok(id)
}

/// Brings a supply's row up to date (counters, status, checkpoint) and adds
/// its new errors.
pub(crate) async fn update_supply(
    tx: &mut Transaction<'static, Any>,
    ente: &str,
    id: i64,
    s: &SupplyRecord,
    now: DateTime<Utc>,
) -> Result<()> {
    update_supply_from(tx, ente, id, s, now, None).await
}

/// As [`update_supply`], only if the supply's checkpoint is still
/// `expected`: a loader that lost its claim (a PostgreSQL session dropped
/// under it) and one that took the supply over cannot both move it.
pub(crate) async fn update_supply_from(
    tx: &mut Transaction<'static, Any>,
    ente: &str,
    id: i64,
    s: &SupplyRecord,
    now: DateTime<Utc>,
    expected: Option<i64>,
) -> Result<()> {
    let res = supply_update(ente, id, s, now, expected)
        .into_any()
        .execute(&mut **tx)
        .await
        .map(|r| r.rows_affected())
        .map_err(StoreError::from);
    supply_updated(res, expected)?;
    for e in supply_errors(id, &s.errors) {
        e.into_any().execute(&mut **tx).await?;
    }
    Ok(())
}

/// The statement of [`update_supply_from`]; its outcome is read by
/// [`supply_updated`], and the new errors follow ([`supply_errors`]).
pub(crate) fn supply_update(
    ente: &str,
    id: i64,
    s: &SupplyRecord,
    now: DateTime<Utc>,
    expected: Option<i64>,
) -> Stmt {
    Stmt::new(
        "UPDATE supplies SET status = $3, accepted = $4, rows_read = $5, rows_loaded = $6,
            rows_rejected = $7, positions_created = $8, positions_updated = $9,
            positions_cancelled = $10, finished_at = $11, message = $12, resume_line = $13,
            outcome = COALESCE($15, outcome)
         WHERE ente = $1 AND id = $2 AND ($14 < 0 OR resume_line = $14)",
    )
    .bind(ente)
    .bind(id)
    .bind(s.status.as_str())
    .bind(i64::from(s.accepted))
    .bind(s.rows_read)
    .bind(s.rows_loaded)
    .bind(s.rows_rejected)
    .bind(s.positions_created)
    .bind(s.positions_updated)
    .bind(s.positions_cancelled)
    .bind(to_micros(now))
    .bind(s.message.as_str())
    .bind(s.resume_line)
    .bind(expected.unwrap_or(-1))
    .bind(s.outcome.clone())
}

/// What the rows a [`supply_update`] touched mean.
pub(crate) fn supply_updated(res: Result<u64>, expected: Option<i64>) -> Result<()> {
    match res {
        Ok(1) => Ok(()),
        Ok(_) if expected.is_some() => Err(StoreError::Aborted(
            "un altro caricamento ha ripreso questa fornitura".into(),
        )),
        Ok(_) => Err(StoreError::NotFound("fornitura")),
        Err(e) if e.is_unique_violation() => Err(StoreError::Conflict(
            "lo stesso file è già stato caricato per questo ente".into(),
        )),
        Err(e) => Err(e),
    }
}

/// The rows of a supply's row-level report.
pub(crate) fn supply_errors(id: i64, errors: &[SupplyError]) -> Vec<Stmt> {
    errors
        .iter()
        .map(|e| {
            Stmt::new(
                "INSERT INTO supply_errors (supply_id, line, field, value, code, message)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(e.line)
            .bind(e.field.as_str())
            .bind(e.value.as_str())
            .bind(e.code.as_str())
            .bind(e.message.as_str())
        })
        .collect()
}

impl Store {
    /// Moves a consumer's cursor past `last`; never backwards.
    pub async fn advance_export_cursor(
        &self,
        ente: &str,
        layout: &str,
        consumer: &str,
        last: &PaidItem,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO export_cursors (ente, layout, consumer, last_received_at, last_receipt_id)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (ente, layout, consumer) DO UPDATE SET
                last_received_at = excluded.last_received_at, last_receipt_id = excluded.last_receipt_id
             WHERE export_cursors.last_received_at < excluded.last_received_at
                OR (export_cursors.last_received_at = excluded.last_received_at
                    AND export_cursors.last_receipt_id < excluded.last_receipt_id)",
        )
        .bind(ente)
        .bind(layout)
        .bind(consumer)
        .bind(last.received_at)
        .bind(&last.receipt_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}

/// How old a receipt must be to be exported (see `export_receipts`).
pub const EXPORT_LAG_MICROS: i64 = 2_000_000;

/// Positions of a layout paid since a cursor, for the reporting export.
#[derive(Debug, Clone)]
pub struct PaidItem {
    pub key: String,
    pub notice_number: String,
    pub iuv: String,
    pub amount: i64,
    pub paid_at: Option<DateTime<Utc>>,
    pub receipt_id: String,
    pub psp_id: String,
    pub psp_name: String,
    pub payment_method: Option<String>,
    pub fee: Option<i64>,
    pub outcome: String,
    pub received_at: i64,
}

impl Store {
    /// Receipts of positions loaded with `layout`, after the consumer's
    /// cursor, oldest first; moves the cursor past them when `advance`.
    pub async fn export_receipts(
        &self,
        ente: &str,
        layout: &str,
        consumer: &str,
        advance: bool,
        limit: u32,
    ) -> Result<Vec<PaidItem>> {
        let cursor: Option<(i64, String)> = sqlx::query(
            "SELECT last_received_at, last_receipt_id FROM export_cursors WHERE ente = $1 AND layout = $2 AND consumer = $3",
        )
        .bind(ente)
        .bind(layout)
        .bind(consumer)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| Ok::<_, sqlx::Error>((r.try_get("last_received_at")?, r.try_get("last_receipt_id")?)))
        .transpose()?;
        let (after_t, after_id) = cursor.unwrap_or((i64::MIN, String::new()));
        let rows = sqlx::query(
            "SELECT p.iupd, r.notice_number, r.iuv, r.amount, r.payment_date_time, r.receipt_id, r.psp_id,
                r.psp_name, r.payment_method, r.fee, r.outcome, r.received_at
             FROM receipts r
             JOIN payment_options o ON o.ente = r.ente AND o.iuv = r.iuv
             JOIN debt_positions p ON p.id = o.position_id
             WHERE r.ente = $1 AND p.origin = $2 AND r.owner_ente = $1
               AND (r.received_at > $3 OR (r.received_at = $3 AND r.receipt_id > $4))
               AND r.received_at < $6
             ORDER BY r.received_at, r.receipt_id LIMIT $5",
        )
        .bind(ente)
        .bind(layout)
        .bind(after_t)
        .bind(&after_id)
        .bind(i64::from(limit.max(1)))
        // A receipt is stamped before its transaction commits; a few seconds
        // of lag keep a late commit from landing behind the cursor.
        .bind(to_micros(Utc::now()) - EXPORT_LAG_MICROS)
        .fetch_all(&self.pool)
        .await?;
        let items: Vec<PaidItem> = rows
            .iter()
            .map(|r| {
                Ok(PaidItem {
                    key: r.try_get("iupd")?,
                    notice_number: r.try_get("notice_number")?,
                    iuv: r.try_get("iuv")?,
                    amount: r.try_get("amount")?,
                    paid_at: crate::time::opt_from_micros(r.try_get("payment_date_time")?),
                    receipt_id: r.try_get("receipt_id")?,
                    psp_id: r.try_get("psp_id")?,
                    psp_name: r.try_get("psp_name")?,
                    payment_method: r.try_get("payment_method")?,
                    fee: r.try_get("fee")?,
                    outcome: r.try_get("outcome")?,
                    received_at: r.try_get("received_at")?,
                })
            })
            .collect::<Result<_>>()?;
        if advance && let Some(last) = items.last() {
            self.advance_export_cursor(ente, layout, consumer, last)
                .await?;
        }
        Ok(items)
    }
}

impl Store {
    /// Stores a new version of an Ente's layout (its TOML text, already
    /// checked by the caller); returns the version number.
    pub async fn put_layout(
        &self,
        ente: &str,
        name: &str,
        definition: &str,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        self.get_ente(ente).await?;
        let mut tx = self.write_tx().await?;
        let current: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(MAX(version) AS BIGINT) FROM layouts WHERE ente = $1 AND name = $2",
        )
        .bind(ente)
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        let version = current.unwrap_or(0) + 1;
        sqlx::query("INSERT INTO layouts (ente, name, version, definition, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(ente)
            .bind(name)
            .bind(version)
            .bind(definition)
            .bind(to_micros(now))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(version)
    }

    /// The newest version of an Ente's layout: (version, TOML text).
    pub async fn layout(&self, ente: &str, name: &str) -> Result<Option<(i64, String)>> {
        let row = sqlx::query(
            "SELECT version, definition FROM layouts WHERE ente = $1 AND name = $2 ORDER BY version DESC LIMIT 1",
        )
        .bind(ente)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get("version")?, r.try_get("definition")?)))
            .transpose()
    }

    /// The names and newest versions of an Ente's own layouts.
    pub async fn list_layouts(&self, ente: &str) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT name, CAST(MAX(version) AS BIGINT) AS version FROM layouts WHERE ente = $1 GROUP BY name ORDER BY name",
        )
        .bind(ente)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("version")?)))
            .collect()
    }
}

impl Store {}
