//! GPD's massive uploads: the row that follows one uploaded file by its
//! file id, the answer to each of its items, and the supply it appears as
//! in the archive. Progress commits with the writes it counts
//! ([`UploadProgress`]), under the claim of one worker at a time.

use crate::bulk::{SupplyRecord, update_supply};
use crate::time::{from_micros, opt_from_micros, to_micros};
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// An upload as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    pub file_id: String,
    pub ente: String,
    pub broker: String,
    /// CREATE, UPDATE or DELETE.
    pub operation: String,
    pub supply_id: i64,
    pub submitted: i64,
    pub processed: i64,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Who works on it: a token of the worker that claimed it.
    pub owner: String,
    /// When its worker last said it was alive (its last progress).
    pub heartbeat: DateTime<Utc>,
}

/// The answer to one item of an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadAnswer {
    /// Its place in the file, from 0.
    pub item: i64,
    pub status_code: u16,
    /// incasso's stable code of a refusal; empty for a success.
    pub code: String,
    pub message: String,
    pub iupd: String,
}

/// An upload's progress, committed with the writes it counts: how many
/// items are processed and the answers of those just processed, if
/// `owner` still holds the upload.
#[derive(Debug, Clone)]
pub struct UploadProgress {
    pub file_id: String,
    pub owner: String,
    pub processed: i64,
    pub answers: Vec<UploadAnswer>,
    pub at: DateTime<Utc>,
}

/// Writes `p` on `conn` (in the transaction of the writes it counts):
/// refused, and the transaction with it, when another worker has taken the
/// upload over or it has ended.
pub(crate) async fn apply_progress(
    conn: &mut sqlx::AnyConnection,
    p: &UploadProgress,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE gpd_uploads SET processed = $3, heartbeat = $4
         WHERE file_id = $1 AND owner = $2 AND ended_at IS NULL",
    )
    .bind(&p.file_id)
    .bind(&p.owner)
    .bind(p.processed)
    .bind(to_micros(p.at))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if done != 1 {
        return Err(StoreError::Aborted(format!(
            "il caricamento {} è passato a un altro processo",
            p.file_id
        )));
    }
    for a in &p.answers {
        sqlx::query(
            "INSERT INTO gpd_upload_answers (file_id, item, status_code, code, message, iupd)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&p.file_id)
        .bind(a.item)
        .bind(i64::from(a.status_code))
        .bind(&a.code)
        .bind(&a.message)
        .bind(&a.iupd)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

const UPLOAD_COLUMNS: &str = "file_id, ente, broker, operation, supply_id, submitted, processed,
    started_at, ended_at, owner, heartbeat";

fn upload_of_row(r: &sqlx::any::AnyRow) -> Result<UploadRecord> {
    Ok(UploadRecord {
        file_id: r.try_get("file_id")?,
        ente: r.try_get("ente")?,
        broker: r.try_get("broker")?,
        operation: r.try_get("operation")?,
        supply_id: r.try_get("supply_id")?,
        submitted: r.try_get("submitted")?,
        processed: r.try_get("processed")?,
        started_at: from_micros(r.try_get("started_at")?),
        ended_at: opt_from_micros(r.try_get("ended_at")?),
        owner: r.try_get("owner")?,
        heartbeat: from_micros(r.try_get("heartbeat")?),
    })
}

impl Store {
    /// Records a new upload and the supply it appears as (`LOADING`), in
    /// one transaction; answers the supply's id.
    pub async fn begin_upload(
        &self,
        upload: &UploadRecord,
        items: &[u8],
        supply: &SupplyRecord,
    ) -> Result<i64> {
        let mut tx = self.write_tx().await?;
        let mut record = supply.clone();
        record.status = crate::bulk::LOADING.into();
        record.accepted = false;
        let supply_id =
            crate::bulk::insert_supply(&mut tx, &upload.ente, &record, upload.started_at).await?;
        sqlx::query(
            "INSERT INTO gpd_uploads (file_id, ente, broker, operation, supply_id, submitted, processed,
                started_at, ended_at, items, owner, heartbeat)
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, NULL, $8, $9, $7)",
        )
        .bind(&upload.file_id)
        .bind(&upload.ente)
        .bind(&upload.broker)
        .bind(&upload.operation)
        .bind(supply_id)
        .bind(upload.submitted)
        .bind(to_micros(upload.started_at))
        .bind(items.to_vec())
        .bind(&upload.owner)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(supply_id)
    }

    /// Records progress that committed no write (answers of refused items).
    pub async fn record_upload_progress(&self, p: &UploadProgress) -> Result<()> {
        let mut tx = self.write_tx().await?;
        apply_progress(&mut tx, p).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Closes an upload and its supply (counters, status, row errors), in
    /// one transaction.
    pub async fn finish_upload(
        &self,
        upload: &UploadRecord,
        supply: &SupplyRecord,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE gpd_uploads SET ended_at = $2, heartbeat = $2, items = NULL
             WHERE file_id = $1 AND owner = $3 AND ended_at IS NULL",
        )
        .bind(&upload.file_id)
        .bind(to_micros(now))
        .bind(&upload.owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done != 1 {
            return Err(StoreError::Aborted(format!(
                "il caricamento {} è passato a un altro processo",
                upload.file_id
            )));
        }
        update_supply(&mut tx, &upload.ente, upload.supply_id, supply, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The upload `file_id` of this Ente and broker.
    pub async fn upload(&self, ente: &str, broker: &str, file_id: &str) -> Result<UploadRecord> {
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {UPLOAD_COLUMNS} FROM gpd_uploads WHERE file_id = $1 AND ente = $2 AND broker = $3"
        )))
        .bind(file_id)
        .bind(ente)
        .bind(broker)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("caricamento"))?;
        upload_of_row(&r)
    }

    /// The answers to an upload's items, in the file's order.
    pub async fn upload_answers(&self, file_id: &str) -> Result<Vec<UploadAnswer>> {
        let rows = sqlx::query(
            "SELECT item, status_code, code, message, iupd FROM gpd_upload_answers
             WHERE file_id = $1 ORDER BY item",
        )
        .bind(file_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UploadAnswer {
                    item: r.try_get("item")?,
                    status_code: u16::try_from(r.try_get::<i64, _>("status_code")?)
                        .map_err(|_| StoreError::Corrupt("status code".into()))?,
                    code: r.try_get("code")?,
                    message: r.try_get("message")?,
                    iupd: r.try_get("iupd")?,
                })
            })
            .collect()
    }

    /// The uploads not ended whose worker has not been heard of since
    /// `before`: a process died under them.
    pub async fn stale_uploads(&self, before: DateTime<Utc>) -> Result<Vec<UploadRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {UPLOAD_COLUMNS} FROM gpd_uploads WHERE ended_at IS NULL AND heartbeat < $1
             ORDER BY heartbeat"
        )))
        .bind(to_micros(before))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(upload_of_row).collect()
    }

    /// Takes a stale upload over for `owner`, if nobody has since `before`;
    /// answers its items (the application's JSON) when it did.
    pub async fn claim_upload(
        &self,
        file_id: &str,
        owner: &str,
        now: DateTime<Utc>,
        before: DateTime<Utc>,
    ) -> Result<Option<Vec<u8>>> {
        let mut tx = self.write_tx().await?;
        let taken = sqlx::query(
            "UPDATE gpd_uploads SET owner = $2, heartbeat = $3
             WHERE file_id = $1 AND ended_at IS NULL AND heartbeat < $4",
        )
        .bind(file_id)
        .bind(owner)
        .bind(to_micros(now))
        .bind(to_micros(before))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if taken != 1 {
            return Ok(None);
        }
        let items: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT items FROM gpd_uploads WHERE file_id = $1")
                .bind(file_id)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(items)
    }

    /// The file ids of the uploads started in `[from, to)`, oldest first,
    /// `limit` of them after the file id `after` (a page never shifts as
    /// uploads arrive: ids are ordered by start, then id).
    pub async fn list_uploads(
        &self,
        ente: &str,
        broker: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>> {
        let after_started: Option<i64> = match after {
            None => None,
            Some(id) => sqlx::query_scalar(
                "SELECT started_at FROM gpd_uploads WHERE file_id = $1 AND ente = $2 AND broker = $3",
            )
            .bind(id)
            .bind(ente)
            .bind(broker)
            .fetch_optional(&self.pool)
            .await?
            .or(Some(i64::MAX)),
        };
        let rows = sqlx::query(
            "SELECT file_id FROM gpd_uploads
             WHERE ente = $1 AND broker = $2 AND started_at >= $3 AND started_at < $4
               AND ($5 = 0 OR started_at > $6 OR (started_at = $6 AND file_id > $7))
             ORDER BY started_at, file_id LIMIT $8",
        )
        .bind(ente)
        .bind(broker)
        .bind(to_micros(from))
        .bind(to_micros(to))
        .bind(i64::from(after.is_some()))
        .bind(after_started.unwrap_or(0))
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("file_id")?)).collect()
    }
}
