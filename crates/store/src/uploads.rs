//! GPD's massive uploads: the row that follows one uploaded file by its
//! file id, and the supply it appears as in the archive. The answers of the
//! report are the application's JSON; the store keeps them as text.

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
    /// The report's answers, as the application wrote them (JSON).
    pub responses: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Records a new upload and the supply it appears as (`LOADING`), in
    /// one transaction; answers the supply's id.
    pub async fn begin_upload(&self, upload: &UploadRecord, supply: &SupplyRecord) -> Result<i64> {
        let mut tx = self.write_tx().await?;
        let mut record = supply.clone();
        record.status = crate::bulk::LOADING.into();
        record.accepted = false;
        let supply_id =
            crate::bulk::insert_supply(&mut tx, &upload.ente, &record, upload.started_at).await?;
        sqlx::query(
            "INSERT INTO gpd_uploads (file_id, ente, broker, operation, supply_id, submitted, processed,
                responses, started_at, ended_at)
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, NULL)",
        )
        .bind(&upload.file_id)
        .bind(&upload.ente)
        .bind(&upload.broker)
        .bind(&upload.operation)
        .bind(supply_id)
        .bind(upload.submitted)
        .bind(&upload.responses)
        .bind(to_micros(upload.started_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(supply_id)
    }

    /// How far an upload has got: items processed and the answers so far.
    pub async fn record_upload_progress(
        &self,
        file_id: &str,
        processed: i64,
        responses: &str,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE gpd_uploads SET processed = $2, responses = $3 WHERE file_id = $1")
            .bind(file_id)
            .bind(processed)
            .bind(responses)
            .execute(&mut *tx)
            .await?;
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
        sqlx::query(
            "UPDATE gpd_uploads SET processed = $2, responses = $3, ended_at = $4 WHERE file_id = $1",
        )
        .bind(&upload.file_id)
        .bind(upload.processed)
        .bind(&upload.responses)
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        update_supply(&mut tx, &upload.ente, upload.supply_id, supply, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The upload `file_id` of this Ente and broker.
    pub async fn upload(&self, ente: &str, broker: &str, file_id: &str) -> Result<UploadRecord> {
        let r = sqlx::query(
            "SELECT file_id, ente, broker, operation, supply_id, submitted, processed, responses,
                started_at, ended_at
             FROM gpd_uploads WHERE file_id = $1 AND ente = $2 AND broker = $3",
        )
        .bind(file_id)
        .bind(ente)
        .bind(broker)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("caricamento"))?;
        Ok(UploadRecord {
            file_id: r.try_get("file_id")?,
            ente: r.try_get("ente")?,
            broker: r.try_get("broker")?,
            operation: r.try_get("operation")?,
            supply_id: r.try_get("supply_id")?,
            submitted: r.try_get("submitted")?,
            processed: r.try_get("processed")?,
            responses: r.try_get("responses")?,
            started_at: from_micros(r.try_get("started_at")?),
            ended_at: opt_from_micros(r.try_get("ended_at")?),
        })
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
