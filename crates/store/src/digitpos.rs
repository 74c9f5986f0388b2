//! DigitPOS (migration 0027): the idempotency keys of the payment API for
//! other applications' portals, and the return hosts each Ente registered
//! for their Checkout return URLs.

use crate::time::{from_micros, to_micros};
use crate::{Result, Store};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// An idempotency key's states.
pub(crate) const PENDING: &str = "PENDING";
const DONE: &str = "DONE";

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is this request's: run it, then
    /// [`Store::complete_idempotency`] (or [`Store::release_idempotency`]).
    Claimed,
    /// The same request was answered before: this answer again.
    Replay { status: u16, body: String },
    /// The key was used for another request (another fingerprint).
    Mismatch,
    /// The same key's first request is still running.
    InProgress,
}

/// What a DigitPOS spontaneous payment writes with its position, in the
/// same transaction ([`Store::create_spontaneous_claimed`]).
#[derive(Debug, Clone)]
pub struct SpontaneousClaim<'a> {
    /// The idempotency key claimed (left PENDING: completed after pagoPA's
    /// Checkout answers, which no transaction can hold).
    pub caller: &'a str,
    pub idempotency_key: &'a str,
    pub fingerprint: &'a str,
    /// The spontaneous request's one-time token and its service.
    pub request_id: &'a str,
    pub service_code: &'a str,
    pub audit: &'a crate::AuditEvent,
}

/// A host an Ente registered for the callers' return URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnHostRecord {
    pub host: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

impl Store {
    /// Claims idempotency key `key` of `caller` at `ente` for a request
    /// whose fingerprint is `fingerprint`. A claim left PENDING since
    /// before `stale_before` (its process died mid-way) is taken over:
    /// the effects it may have left are idempotent by their own keys, so
    /// running the request again finds them.
    pub async fn claim_idempotency(
        &self,
        ente: &str,
        caller: &str,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<IdempotencyClaim> {
        let inserted = sqlx::query(
            "INSERT INTO digitpos_idempotency
               (ente, caller, idempotency_key, fingerprint, state, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (ente, caller, idempotency_key) DO NOTHING",
        )
        .bind(ente)
        .bind(caller)
        .bind(key)
        .bind(fingerprint)
        .bind(PENDING)
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            return Ok(IdempotencyClaim::Claimed);
        }
        // From the writer: the row may have been written a moment ago.
        let row = sqlx::query(
            "SELECT fingerprint, state, status, body, created_at FROM digitpos_idempotency
             WHERE ente = $1 AND caller = $2 AND idempotency_key = $3",
        )
        .bind(ente)
        .bind(caller)
        .bind(key)
        .fetch_optional(&self.writer)
        .await?;
        let Some(row) = row else {
            // Released between the insert and the read: one more try
            // would race again; the caller retries.
            return Ok(IdempotencyClaim::InProgress);
        };
        let stored: String = row.try_get("fingerprint")?;
        if stored != fingerprint {
            return Ok(IdempotencyClaim::Mismatch);
        }
        let state: String = row.try_get("state")?;
        if state == DONE {
            let status: Option<i64> = row.try_get("status")?;
            let body: Option<String> = row.try_get("body")?;
            return Ok(IdempotencyClaim::Replay {
                status: status.and_then(|s| u16::try_from(s).ok()).unwrap_or(500),
                body: body.unwrap_or_default(),
            });
        }
        let created_at: i64 = row.try_get("created_at")?;
        if created_at >= to_micros(stale_before) {
            return Ok(IdempotencyClaim::InProgress);
        }
        // Taken over only by one of those who found it stale.
        let taken = sqlx::query(
            "UPDATE digitpos_idempotency SET created_at = $4
             WHERE ente = $1 AND caller = $2 AND idempotency_key = $3
               AND state = $5 AND created_at = $6",
        )
        .bind(ente)
        .bind(caller)
        .bind(key)
        .bind(to_micros(now))
        .bind(PENDING)
        .bind(created_at)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(if taken == 1 {
            IdempotencyClaim::Claimed
        } else {
            IdempotencyClaim::InProgress
        })
    }

    /// What [`Store::claim_idempotency`] would answer, without claiming:
    /// `None` where it would claim (no row, or a PENDING one from before
    /// `stale_before`). For a request refused before it claimed its key,
    /// whose key must still answer first (a replay, another body, one in
    /// progress).
    pub async fn peek_idempotency(
        &self,
        ente: &str,
        caller: &str,
        key: &str,
        fingerprint: &str,
        stale_before: DateTime<Utc>,
    ) -> Result<Option<IdempotencyClaim>> {
        let row = sqlx::query(
            "SELECT fingerprint, state, status, body, created_at FROM digitpos_idempotency
             WHERE ente = $1 AND caller = $2 AND idempotency_key = $3",
        )
        .bind(ente)
        .bind(caller)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let stored: String = row.try_get("fingerprint")?;
        if stored != fingerprint {
            return Ok(Some(IdempotencyClaim::Mismatch));
        }
        let state: String = row.try_get("state")?;
        if state == DONE {
            let status: Option<i64> = row.try_get("status")?;
            let body: Option<String> = row.try_get("body")?;
            return Ok(Some(IdempotencyClaim::Replay {
                status: status.and_then(|s| u16::try_from(s).ok()).unwrap_or(500),
                body: body.unwrap_or_default(),
            }));
        }
        let created_at: i64 = row.try_get("created_at")?;
        Ok((created_at >= to_micros(stale_before)).then_some(IdempotencyClaim::InProgress))
    }

    /// Stores the answer of a claimed key's request.
    pub async fn complete_idempotency(
        &self,
        ente: &str,
        caller: &str,
        key: &str,
        status: u16,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE digitpos_idempotency SET state = $4, status = $5, body = $6, completed_at = $7
             WHERE ente = $1 AND caller = $2 AND idempotency_key = $3",
        )
        .bind(ente)
        .bind(caller)
        .bind(key)
        .bind(DONE)
        .bind(i64::from(status))
        .bind(body)
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Lets a claimed key go without an answer (the request failed in a
    /// way a retry may mend): the next request with it runs again.
    pub async fn release_idempotency(&self, ente: &str, caller: &str, key: &str) -> Result<()> {
        sqlx::query(
            "DELETE FROM digitpos_idempotency
             WHERE ente = $1 AND caller = $2 AND idempotency_key = $3 AND state = $4",
        )
        .bind(ente)
        .bind(caller)
        .bind(key)
        .bind(PENDING)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Forgets the keys claimed before `before`; answers how many. Crosses
    /// Enti: called only by incasso's own job.
    pub async fn purge_idempotency(&self, before: DateTime<Utc>) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM digitpos_idempotency WHERE created_at < $1")
                .bind(to_micros(before))
                .execute(&self.writer)
                .await?
                .rows_affected(),
        )
    }

    /// The Ente's return hosts, by name.
    /// Kept a few seconds ([`crate::hot`]).
    pub async fn list_return_hosts(&self, ente: &str) -> Result<Vec<ReturnHostRecord>> {
        if let Some(hosts) = self.hot.return_hosts(ente) {
            return Ok(hosts);
        }
        let read_at = std::time::Instant::now();
        let rows = sqlx::query(
            "SELECT host, created_at, created_by FROM digitpos_return_hosts
             WHERE ente = $1 ORDER BY host",
        )
        .bind(ente)
        .fetch_all(&self.pool)
        .await?;
        let hosts = rows
            .iter()
            .map(|r| {
                Ok(ReturnHostRecord {
                    host: r.try_get("host")?,
                    created_at: from_micros(r.try_get("created_at")?),
                    created_by: r.try_get("created_by")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.hot.put_return_hosts(ente, read_at, hosts.clone());
        Ok(hosts)
    }

    /// Registers `host` (lower-case) for the Ente; answers whether it is
    /// new (registering it again changes nothing).
    pub async fn add_return_host(
        &self,
        ente: &str,
        host: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let added = sqlx::query(
            "INSERT INTO digitpos_return_hosts (ente, host, created_at, created_by)
             VALUES ($1, $2, $3, $4) ON CONFLICT (ente, host) DO NOTHING",
        )
        .bind(ente)
        .bind(host)
        .bind(to_micros(now))
        .bind(by)
        .execute(&self.writer)
        .await?
        .rows_affected();
        self.hot.forget_return_hosts(ente);
        Ok(added == 1)
    }

    /// Removes `host`; answers whether it was there.
    pub async fn remove_return_host(&self, ente: &str, host: &str) -> Result<bool> {
        let removed =
            sqlx::query("DELETE FROM digitpos_return_hosts WHERE ente = $1 AND host = $2")
                .bind(ente)
                .bind(host)
                .execute(&self.writer)
                .await?
                .rows_affected();
        self.hot.forget_return_hosts(ente);
        Ok(removed == 1)
    }

    /// Whether the Ente registered `host` (lower-case).
    pub async fn has_return_host(&self, ente: &str, host: &str) -> Result<bool> {
        Ok(
            sqlx::query("SELECT 1 FROM digitpos_return_hosts WHERE ente = $1 AND host = $2")
                .bind(ente)
                .bind(host)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }
}
