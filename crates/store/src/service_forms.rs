//! Spontaneous payments (migration 0022): each spontaneous service's form
//! as the back office defines it, and the payments started from the
//! portal with it, keyed by the one-time token of the form the citizen
//! filled in so that a double submit never makes two positions.

use crate::positions::{load_position, save_state};
use crate::time::{from_micros, opt_from_micros, to_micros};
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use incasso_core::position::PositionStatus;
use sqlx::Row;

/// A service's form as stored: the JSON of `incasso_core::form::FormDef`
/// and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFormRecord {
    pub service_code: String,
    pub definition: String,
    /// The version an editor must name to save over it (epoch µs).
    pub updated_at: i64,
    pub updated_by: String,
}

/// A spontaneous payment's states.
pub const SPONTANEOUS_OPEN: &str = "OPEN";
pub const SPONTANEOUS_PAID: &str = "PAID";
pub const SPONTANEOUS_CANCELLED: &str = "CANCELLED";

/// A spontaneous payment started from the portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpontaneousRecord {
    pub ente: String,
    pub request_id: String,
    pub service_code: String,
    pub iupd: String,
    pub cart_id: Option<String>,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub node_requested_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// What the Node's request to pay a spontaneous position found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRequestNoted {
    /// Noted: the abandonment job leaves it alone for a while.
    Open,
    /// It was closed (cancelled) before the Node asked.
    Closed,
    /// Not a spontaneous payment of the portal.
    Unknown,
}

/// What the abandonment job did with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Abandoned {
    /// Its position was cancelled (INVALID).
    Cancelled,
    /// It had been paid meanwhile: recorded as such, left alone.
    Paid,
    /// Its position was no longer payable anyway (expired, gone): closed.
    Closed,
    /// The Node asked to pay it since the scan, or another job got it.
    Kept,
}

const COLUMNS: &str = "ente, request_id, service_code, iupd, cart_id, state, created_at, \
     node_requested_at, closed_at";

fn record(r: &sqlx::any::AnyRow) -> Result<SpontaneousRecord> {
    Ok(SpontaneousRecord {
        ente: r.try_get("ente")?,
        request_id: r.try_get("request_id")?,
        service_code: r.try_get("service_code")?,
        iupd: r.try_get("iupd")?,
        cart_id: r.try_get("cart_id")?,
        state: r.try_get("state")?,
        created_at: from_micros(r.try_get("created_at")?),
        node_requested_at: opt_from_micros(r.try_get("node_requested_at")?),
        closed_at: opt_from_micros(r.try_get("closed_at")?),
    })
}

impl Store {
    /// The form of service `service_code`, if one was defined.
    pub async fn service_form(
        &self,
        ente: &str,
        service_code: &str,
    ) -> Result<Option<ServiceFormRecord>> {
        let row = sqlx::query(
            "SELECT service_code, definition, updated_at, updated_by FROM service_forms
             WHERE ente = $1 AND service_code = $2",
        )
        .bind(ente)
        .bind(service_code)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ServiceFormRecord {
                service_code: r.try_get("service_code")?,
                definition: r.try_get("definition")?,
                updated_at: r.try_get("updated_at")?,
                updated_by: r.try_get("updated_by")?,
            })
        })
        .transpose()
    }

    /// Saves the form of service `service_code` over version `expected`
    /// (`None`: there must be none yet); answers the new version. Another
    /// save in between is a conflict: the editor reloads and sees it.
    pub async fn put_service_form(
        &self,
        ente: &str,
        service_code: &str,
        definition: &str,
        expected: Option<i64>,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let mut tx = self.write_tx().await?;
        let lock = self.dialect.for_update();
        let current: Option<i64> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT updated_at FROM service_forms WHERE ente = $1 AND service_code = $2{lock}"
        )))
        .bind(ente)
        .bind(service_code)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get("updated_at"))
        .transpose()?;
        if current != expected {
            return Err(StoreError::Conflict(
                "il modulo è stato modificato da un'altra persona nel frattempo: ricaricare la pagina"
                    .into(),
            ));
        }
        // Strictly increasing, even for two saves within a microsecond.
        let version = to_micros(now).max(current.map_or(0, |c| c + 1));
        let exists = sqlx::query("SELECT 1 FROM services WHERE ente = $1 AND code = $2")
            .bind(ente)
            .bind(service_code)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Err(StoreError::NotFound("servizio"));
        }
        sqlx::query(
            "INSERT INTO service_forms (ente, service_code, definition, updated_at, updated_by)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (ente, service_code) DO UPDATE SET definition = excluded.definition,
               updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(ente)
        .bind(service_code)
        .bind(definition)
        .bind(version)
        .bind(by)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(version)
    }

    /// Records a spontaneous payment about to be made with position
    /// `iupd`, unless the form's token `request_id` was already used:
    /// answers the row and whether it is new.
    pub async fn open_spontaneous(
        &self,
        ente: &str,
        request_id: &str,
        service_code: &str,
        iupd: &str,
        now: DateTime<Utc>,
    ) -> Result<(SpontaneousRecord, bool)> {
        let inserted = sqlx::query(
            "INSERT INTO spontaneous_requests (ente, request_id, service_code, iupd, state, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (ente, request_id) DO NOTHING",
        )
        .bind(ente)
        .bind(request_id)
        .bind(service_code)
        .bind(iupd)
        .bind(SPONTANEOUS_OPEN)
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?
        .rows_affected()
            == 1;
        let row = self
            .spontaneous(ente, request_id)
            .await?
            .ok_or(StoreError::NotFound("pagamento spontaneo"))?;
        Ok((row, inserted))
    }

    pub async fn spontaneous(
        &self,
        ente: &str,
        request_id: &str,
    ) -> Result<Option<SpontaneousRecord>> {
        // Read from the writer: called right after its insert, and a
        // replica-free SQLite pool may not see it yet.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM spontaneous_requests WHERE ente = $1 AND request_id = $2"
        )))
        .bind(ente)
        .bind(request_id)
        .fetch_optional(&self.writer)
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// The spontaneous payment made with position `iupd`.
    pub async fn spontaneous_of_position(
        &self,
        ente: &str,
        iupd: &str,
    ) -> Result<Option<SpontaneousRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM spontaneous_requests WHERE ente = $1 AND iupd = $2"
        )))
        .bind(ente)
        .bind(iupd)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// Remembers the portal cart the payment goes to Checkout in, unless
    /// one was remembered first (a concurrent confirmation): answers the
    /// cart in effect, so that both go to the same one.
    pub async fn set_spontaneous_cart(
        &self,
        ente: &str,
        request_id: &str,
        cart_id: &str,
    ) -> Result<String> {
        sqlx::query(
            "UPDATE spontaneous_requests SET cart_id = $3
             WHERE ente = $1 AND request_id = $2 AND cart_id IS NULL",
        )
        .bind(ente)
        .bind(request_id)
        .bind(cart_id)
        .execute(&self.writer)
        .await?;
        self.spontaneous(ente, request_id)
            .await?
            .and_then(|r| r.cart_id)
            .ok_or(StoreError::NotFound("pagamento spontaneo"))
    }

    /// Notes that the Node asked to be paid for position `iupd` (a PSP
    /// activated its payment): the job then leaves it alone. Serialized
    /// with [`Store::close_abandoned`] on the request's row: either this
    /// comes first and the job keeps the position, or the job's
    /// cancellation does and this answers `Closed`.
    pub async fn note_spontaneous_node_request(
        &self,
        ente: &str,
        iupd: &str,
        now: DateTime<Utc>,
    ) -> Result<NodeRequestNoted> {
        let noted = sqlx::query(
            "UPDATE spontaneous_requests SET node_requested_at = $3
             WHERE ente = $1 AND iupd = $2 AND state = $4",
        )
        .bind(ente)
        .bind(iupd)
        .bind(to_micros(now))
        .bind(SPONTANEOUS_OPEN)
        .execute(&self.writer)
        .await?
        .rows_affected();
        if noted > 0 {
            return Ok(NodeRequestNoted::Open);
        }
        let known = sqlx::query("SELECT 1 FROM spontaneous_requests WHERE ente = $1 AND iupd = $2")
            .bind(ente)
            .bind(iupd)
            .fetch_optional(&self.writer)
            .await?
            .is_some();
        Ok(if known {
            NodeRequestNoted::Closed
        } else {
            NodeRequestNoted::Unknown
        })
    }

    /// Open spontaneous payments of every Ente started before `created_before`
    /// whose payment the Node has not asked for since `node_before`: the
    /// abandonment job's candidates, oldest first, at most `limit`.
    /// Crosses Enti: called only by incasso's own job.
    pub async fn abandoned_spontaneous(
        &self,
        created_before: DateTime<Utc>,
        node_before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<SpontaneousRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM spontaneous_requests
             WHERE state = $1 AND created_at < $2
               AND (node_requested_at IS NULL OR node_requested_at < $3)
             ORDER BY created_at LIMIT $4"
        )))
        .bind(SPONTANEOUS_OPEN)
        .bind(to_micros(created_before))
        .bind(to_micros(node_before))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    /// Closes an abandoned spontaneous payment in one transaction: its
    /// position is cancelled if it is still unpaid and the Node has not
    /// asked to pay it since `node_before` (checked again here, under the
    /// row's lock); a paid one is recorded as paid and left alone.
    pub async fn close_abandoned(
        &self,
        ente: &str,
        request_id: &str,
        node_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Abandoned> {
        let mut tx = self.write_tx().await?;
        // Claim the row first: a concurrent note of the Node's request
        // waits for this transaction (or this finds its mark).
        let claimed = sqlx::query(
            "UPDATE spontaneous_requests SET state = $3, closed_at = $4
             WHERE ente = $1 AND request_id = $2 AND state = $5
               AND (node_requested_at IS NULL OR node_requested_at < $6)",
        )
        .bind(ente)
        .bind(request_id)
        .bind(SPONTANEOUS_CANCELLED)
        .bind(to_micros(now))
        .bind(SPONTANEOUS_OPEN)
        .bind(to_micros(node_before))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            return Ok(Abandoned::Kept);
        }
        let iupd: String = sqlx::query(
            "SELECT iupd FROM spontaneous_requests WHERE ente = $1 AND request_id = $2",
        )
        .bind(ente)
        .bind(request_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("iupd")?;
        let outcome = match load_position(&mut tx, ente, &iupd, self.dialect.for_update()).await {
            Err(StoreError::NotFound(_)) => Abandoned::Closed,
            Err(e) => return Err(e),
            Ok(mut stored) => {
                let p = &mut stored.position;
                if p.status.has_payments() || p.has_paid_option() {
                    sqlx::query(
                        "UPDATE spontaneous_requests SET state = $3
                             WHERE ente = $1 AND request_id = $2",
                    )
                    .bind(ente)
                    .bind(request_id)
                    .bind(SPONTANEOUS_PAID)
                    .execute(&mut *tx)
                    .await?;
                    Abandoned::Paid
                } else if matches!(
                    p.effective_status(now),
                    PositionStatus::Published | PositionStatus::Valid
                ) {
                    p.invalidate(now)?;
                    save_state(&mut tx, &mut stored, now).await?;
                    let e = crate::events::cancelled(ente, &stored, "INVALIDATED");
                    crate::events::write(&mut tx, &[e], now).await?;
                    Abandoned::Cancelled
                } else {
                    Abandoned::Closed
                }
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }
}
