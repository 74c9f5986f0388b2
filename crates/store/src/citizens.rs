//! The citizen portal's people (migration 0024): their sessions after a
//! SPID/CIE sign-in, the Ente each sign-in started from, and what they owe
//! across the intermediary's Enti.
//!
//! A citizen is known by fiscal code only. These are the store's only
//! queries that cross Enti, on purpose: the bacheca lists what one person
//! owes to every Ente the intermediary serves. They take the person's
//! fiscal code first and never return another's positions.

use crate::positions::{load_position, show_reporting};
use crate::time::{from_micros, to_micros};
use crate::{Result, Store, StoredPosition};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// A citizen's session as stored (the token's hash is its key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CitizenSessionRecord {
    pub fiscal_code: String,
    pub name: String,
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// Which of a debtor's positions a page lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebtorSection {
    /// Published and not yet wholly paid (expired ones too: the person may
    /// still need to know), soonest due first.
    Open,
    /// With at least one payment, the latest due first.
    Paid,
}

impl Store {
    // ------------------------------------------------------------ sessions

    /// Opens a session under the token's hash; sessions that have ended
    /// (idle since `idle_before`, or opened before `opened_before`) are
    /// removed on the way, so that the table holds only live ones.
    pub async fn open_citizen_session(
        &self,
        token_hash: &str,
        s: &CitizenSessionRecord,
        idle_before: DateTime<Utc>,
        opened_before: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM citizen_sessions WHERE last_seen < $1 OR created_at < $2")
            .bind(to_micros(idle_before))
            .bind(to_micros(opened_before))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO citizen_sessions (token_hash, fiscal_code, name, csrf, created_at, last_seen)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash)
        .bind(&s.fiscal_code)
        .bind(&s.name)
        .bind(&s.csrf)
        .bind(to_micros(s.created_at))
        .bind(to_micros(s.last_seen))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The session under `token_hash`, if any.
    pub async fn citizen_session(&self, token_hash: &str) -> Result<Option<CitizenSessionRecord>> {
        let row = sqlx::query(
            "SELECT fiscal_code, name, csrf, created_at, last_seen FROM citizen_sessions
             WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(CitizenSessionRecord {
                fiscal_code: r.try_get("fiscal_code")?,
                name: r.try_get("name")?,
                csrf: r.try_get("csrf")?,
                created_at: from_micros(r.try_get("created_at")?),
                last_seen: from_micros(r.try_get("last_seen")?),
            })
        })
        .transpose()
    }

    /// Marks the session used at `now`.
    pub async fn touch_citizen_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE citizen_sessions SET last_seen = $2 WHERE token_hash = $1")
            .bind(token_hash)
            .bind(to_micros(now))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Ends a session (nothing happens if it had already ended).
    pub async fn close_citizen_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM citizen_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    // ------------------------------------------------------------ sign-ins

    /// Keeps the Ente a sign-in started from, under its state's hash;
    /// those older than `before` (never come back) are removed.
    pub async fn save_citizen_sign_in(
        &self,
        state_hash: &str,
        ente: &str,
        now: DateTime<Utc>,
        before: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM citizen_sign_ins WHERE created_at < $1")
            .bind(to_micros(before))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO citizen_sign_ins (state_hash, ente, created_at) VALUES ($1, $2, $3)",
        )
        .bind(state_hash)
        .bind(ente)
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes out the sign-in of `state_hash` (once): its Ente and when it
    /// started.
    pub async fn take_citizen_sign_in(
        &self,
        state_hash: &str,
    ) -> Result<Option<(String, DateTime<Utc>)>> {
        let row = sqlx::query(
            "DELETE FROM citizen_sign_ins WHERE state_hash = $1 RETURNING ente, created_at",
        )
        .bind(state_hash)
        .fetch_optional(&self.writer)
        .await?;
        row.map(|r| Ok((r.try_get("ente")?, from_micros(r.try_get("created_at")?))))
            .transpose()
    }

    // ------------------------------------------------------------ bacheca

    /// A page of the positions owed by `fiscal_code` at any Ente (each with
    /// its Ente's fiscal code), published
    /// ones only (a draft or a cancelled position is nobody's business yet,
    /// or any more), of `section`; and how many there are in all. Read off
    /// the index by debtor (migration 0024).
    pub async fn positions_of_debtor(
        &self,
        fiscal_code: &str,
        section: DebtorSection,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<(String, StoredPosition)>, u64)> {
        let (statuses, order) = match section {
            DebtorSection::Open => (
                "'PUBLISHED', 'VALID', 'EXPIRED', 'PARTIALLY_PAID'",
                "min_due_date ASC, id ASC",
            ),
            DebtorSection::Paid => (
                "'PARTIALLY_PAID', 'PAID', 'REPORTED'",
                "min_due_date DESC, id DESC",
            ),
        };
        let filter = format!("debtor_fiscal_code = $1 AND status IN ({statuses})");
        let total: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM debt_positions WHERE {filter}"
        )))
        .bind(fiscal_code)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let limit = limit.clamp(1, 100);
        let keys = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT ente, iupd FROM debt_positions WHERE {filter}
             ORDER BY {order} LIMIT {limit} OFFSET {offset}"
        )))
        .bind(fiscal_code)
        .fetch_all(&self.pool)
        .await?;
        let mut conn = self.pool.acquire().await?;
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let ente: String = k.try_get("ente")?;
            let iupd: String = k.try_get("iupd")?;
            let mut stored = load_position(&mut conn, &ente, &iupd, "").await?;
            show_reporting(&mut conn, &ente, std::slice::from_mut(&mut stored)).await?;
            out.push((ente, stored));
        }
        Ok((out, total as u64))
    }

    /// The debtor's fiscal code of the position that owns `iuv` at `ente`,
    /// if there is one: what the personal area checks before it hands out
    /// a notice or a receipt.
    pub async fn debtor_of_iuv(&self, ente: &str, iuv: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT p.debtor_fiscal_code FROM payment_options o
             JOIN debt_positions p ON p.id = o.position_id
             WHERE o.ente = $1 AND o.iuv = $2",
        )
        .bind(ente)
        .bind(iuv)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.try_get("debtor_fiscal_code"))
            .transpose()
            .map_err(Into::into)
    }

    /// Whether a receipt of `ente`'s own notice `iuv` is kept.
    pub async fn has_receipt(&self, ente: &str, iuv: &str) -> Result<bool> {
        Ok(sqlx::query(
            "SELECT 1 FROM receipts WHERE ente = $1 AND owner_ente = $1 AND iuv = $2 LIMIT 1",
        )
        .bind(ente)
        .bind(iuv)
        .fetch_optional(&self.pool)
        .await?
        .is_some())
    }
}
