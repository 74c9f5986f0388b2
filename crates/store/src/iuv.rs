//! IUV coordination: one sequence per (Ente, segregation code), shared by
//! every office, application and process that creates positions.

use crate::batch::Stmt;
use crate::{Result, Store, StoreError};
use incasso_core::codes::NoticeNumber;
use sqlx::Row;

/// The largest IUV base that fits 13 digits.
const MAX_SEQUENCE: i64 = 9_999_999_999_999;

impl Store {
    /// Reserves `count` consecutive sequence values and returns their notice
    /// numbers. The reservation is one atomic `UPDATE ... RETURNING` in its
    /// own transaction, so concurrent callers, in this process or another,
    /// never get the same value; a value reserved by a caller that later
    /// fails is simply never used (IUVs may have gaps, never repeats).
    pub async fn allocate_notice_numbers(
        &self,
        ente: &str,
        segregation_code: u8,
        count: u32,
    ) -> Result<Vec<NoticeNumber>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let next = reservation(ente, segregation_code, count)
            .into_any()
            .fetch_one(&self.writer)
            .await?
            .try_get::<i64, _>(0)?;
        reserved(segregation_code, count, next)
    }
}

/// The statement that reserves `count` values of the sequence; it returns
/// the new next value. One statement: the first reservation creates the
/// row, later ones move it; both databases run an upsert atomically.
pub(crate) fn reservation(ente: &str, segregation_code: u8, count: u32) -> Stmt {
    Stmt::new(
        "INSERT INTO iuv_sequences (ente, segregation_code, next_value) VALUES ($1, $2, 1 + $3)
         ON CONFLICT (ente, segregation_code)
         DO UPDATE SET next_value = iuv_sequences.next_value + $3
         RETURNING next_value",
    )
    .bind(ente)
    .bind(i64::from(segregation_code))
    .bind(i64::from(count))
}

/// The notice numbers of a [`reservation`] that returned `next`.
pub(crate) fn reserved(segregation_code: u8, count: u32, next: i64) -> Result<Vec<NoticeNumber>> {
    let first = next - i64::from(count);
    if next - 1 > MAX_SEQUENCE {
        return Err(StoreError::Conflict(format!(
            "sequenza IUV esaurita per il codice di segregazione {segregation_code:02}"
        )));
    }
    (first..next)
        .map(|v| {
            NoticeNumber::generate(segregation_code, v as u64)
                .map_err(|e| StoreError::Corrupt(format!("IUV sequence {v}: {e}")))
        })
        .collect()
}
