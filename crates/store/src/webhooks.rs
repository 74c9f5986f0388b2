//! Webhooks (migration 0028): the Enti's endpoints, and the delivery of
//! each position event to each of them.
//!
//! [`Store::fan_out_webhooks`] is a consumer of `position_events` (cursor
//! `webhooks`): in one transaction it reads the events past its cursor,
//! writes a delivery for every endpoint of each event's Ente, and moves
//! the cursor, so an event is handed on once, whatever crashes. A paused
//! endpoint (`active = 0`) gets its deliveries all the same: they wait,
//! unclaimed, until it is resumed, so nothing that happened meanwhile is
//! lost.
//!
//! Deliveries are claimed as the e-mail outbox's messages are: a
//! conditional `UPDATE ... WHERE status = 'PENDING'` makes one worker the
//! owner, for a lease; a worker that dies lets the lease lapse and another
//! takes the delivery again. The attempt number is the claim's token: an
//! outcome is recorded only by the worker whose attempt it was. A
//! delivery is claimed only when no older delivery of the same endpoint
//! and position is still PENDING or SENDING: a position's events arrive in
//! order.

use crate::events::PositionEvent;
use crate::time::{from_micros, opt_from_micros, to_micros};
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use sqlx::Row;

pub const PENDING: &str = "PENDING";
pub const SENDING: &str = "SENDING";
pub const DELIVERED: &str = "DELIVERED";
pub const FAILED: &str = "FAILED";

/// The consumer name of the fan-out's cursor.
pub const CONSUMER: &str = "webhooks";

/// An endpoint to register; `secret` is plain here and sealed at rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEndpoint {
    pub ente: String,
    pub url: String,
    pub description: String,
    pub secret: String,
    /// Who registered it (as the audit log names them).
    pub created_by: String,
}

/// A registered endpoint (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRecord {
    pub id: i64,
    pub ente: String,
    pub url: String,
    pub description: String,
    pub active: bool,
    /// Events up to this id were there before it: not delivered.
    pub first_event: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
}

/// A delivery, as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    pub id: i64,
    pub endpoint_id: i64,
    pub event_id: i64,
    pub kind: String,
    pub iupd: String,
    pub notice_number: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    /// The HTTP status of the last answer, if there was one.
    pub last_status: Option<i64>,
    /// What the last answer said, or why there was none.
    pub last_answer: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub acked_at: Option<DateTime<Utc>>,
}

/// A delivery a worker claimed: everything needed to send it.
#[derive(Debug, Clone, PartialEq)]
pub struct DueDelivery {
    pub id: i64,
    pub endpoint_id: i64,
    pub url: String,
    /// The endpoint's secret, opened.
    pub secret: String,
    /// This attempt's number (1 for the first): the claim's token.
    pub attempt: i64,
    pub event: PositionEvent,
}

/// A delivery looked up by the acknowledgement door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckTarget {
    pub id: i64,
    pub ente: String,
    pub secret: String,
    pub acked: bool,
}

const ENDPOINT_COLUMNS: &str = "id, ente, url, description, active, first_event, created_at, \
     created_by, updated_at";

fn endpoint(r: &sqlx::any::AnyRow) -> Result<EndpointRecord> {
    Ok(EndpointRecord {
        id: r.try_get("id")?,
        ente: r.try_get("ente")?,
        url: r.try_get("url")?,
        description: r.try_get("description")?,
        active: r.try_get::<i64, _>("active")? != 0,
        first_event: r.try_get("first_event")?,
        created_at: from_micros(r.try_get("created_at")?),
        created_by: r.try_get("created_by")?,
        updated_at: from_micros(r.try_get("updated_at")?),
    })
}

const DELIVERY_COLUMNS: &str = "d.id, d.endpoint_id, d.event_id, e.kind, e.iupd, e.notice_number, \
     d.status, CAST(d.attempts AS BIGINT) AS attempts, d.next_attempt_at, d.last_status, \
     d.last_answer, d.created_at, d.delivered_at, d.acked_at";

fn delivery(r: &sqlx::any::AnyRow) -> Result<DeliveryRecord> {
    Ok(DeliveryRecord {
        id: r.try_get("id")?,
        endpoint_id: r.try_get("endpoint_id")?,
        event_id: r.try_get("event_id")?,
        kind: r.try_get("kind")?,
        iupd: r.try_get("iupd")?,
        notice_number: r.try_get("notice_number")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: from_micros(r.try_get("next_attempt_at")?),
        last_status: r.try_get("last_status")?,
        last_answer: r.try_get("last_answer")?,
        created_at: from_micros(r.try_get("created_at")?),
        delivered_at: opt_from_micros(r.try_get("delivered_at")?),
        acked_at: opt_from_micros(r.try_get("acked_at")?),
    })
}

/// What became of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Answered 2xx (not 202) `at`.
    Delivered { status: i64, at: DateTime<Utc> },
    /// Not delivered: tried again at `retry_at` (also an answer 202 whose
    /// acknowledgement has yet to come), or never with `None` (FAILED).
    NotDelivered {
        status: Option<i64>,
        retry_at: Option<DateTime<Utc>>,
    },
}

/// The update recording `outcome` of attempt `attempt` of delivery `id`:
/// it changes nothing unless the claim is still that attempt's.
fn outcome_update<'q>(
    id: i64,
    attempt: i64,
    outcome: &Outcome,
    answer: &str,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    match outcome {
        Outcome::Delivered { status, at } => sqlx::query(
            "UPDATE webhook_deliveries SET status = 'DELIVERED', delivered_at = $3,
                claimed_until = NULL, last_status = $4, last_answer = $5
             WHERE id = $1 AND attempts = $2 AND status = 'SENDING'",
        )
        .bind(id)
        .bind(attempt)
        .bind(to_micros(*at))
        .bind(*status)
        .bind(cut(answer)),
        Outcome::NotDelivered { status, retry_at } => sqlx::query(
            "UPDATE webhook_deliveries SET status = $3,
                next_attempt_at = COALESCE($4, next_attempt_at), claimed_until = NULL,
                last_status = $5, last_answer = $6
             WHERE id = $1 AND attempts = $2 AND status = 'SENDING'",
        )
        .bind(id)
        .bind(attempt)
        .bind(if retry_at.is_some() { PENDING } else { FAILED })
        .bind(retry_at.map(to_micros))
        .bind(*status)
        .bind(cut(answer)),
    }
}

/// What a worker needs to send a delivery; `WHERE` follows.
const DUE_SELECT: &str = "SELECT d.id AS delivery_id, d.endpoint_id,
        CAST(d.attempts AS BIGINT) AS attempt, w.url, w.secret,
        e.id, e.ente, e.position_id, e.iupd, e.notice_number, e.iuv, e.kind, e.payload,
        e.created_at
     FROM webhook_deliveries d
     JOIN webhook_endpoints w ON w.id = d.endpoint_id
     JOIN position_events e ON e.id = d.event_id";

/// `$from, $from+1, ...`: `n` placeholders.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A delivery's wait: due, and no older one of its endpoint and position
/// still on its way. `d` is the delivery's alias (or table name); `$1` is
/// now.
fn due_condition(d: &str) -> String {
    format!(
        "(({d}.status = 'PENDING' AND {d}.next_attempt_at <= $1)
            OR ({d}.status = 'SENDING' AND {d}.claimed_until < $1))
         AND NOT EXISTS (SELECT 1 FROM webhook_deliveries o
            WHERE o.endpoint_id = {d}.endpoint_id AND o.position_id = {d}.position_id
              AND o.event_id < {d}.event_id AND o.status IN ('PENDING', 'SENDING'))"
    )
}

fn cut(text: &str) -> String {
    text.chars().take(500).collect()
}

impl Store {
    /// Registers an endpoint. The same URL twice for one Ente is a
    /// [`StoreError::Conflict`].
    pub async fn create_webhook_endpoint(
        &self,
        e: &NewEndpoint,
        now: DateTime<Utc>,
    ) -> Result<EndpointRecord> {
        let sealed = self.secrets.seal(&e.secret)?;
        // The last event's place, from event_order's own index: through the
        // position_events view, MAX would join every event.
        let res = sqlx::query(
            "INSERT INTO webhook_endpoints (ente, url, description, secret, active, first_event,
                created_at, created_by, updated_at)
             VALUES ($1, $2, $3, $4, 1, (SELECT COALESCE(MAX(seq), 0) FROM event_order),
                $5, $6, $5)",
        )
        .bind(&e.ente)
        .bind(&e.url)
        .bind(&e.description)
        .bind(sealed)
        .bind(to_micros(now))
        .bind(&e.created_by)
        .execute(&self.writer)
        .await;
        match res {
            Ok(_) => {}
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                return Err(StoreError::Conflict(format!(
                    "l'indirizzo {} è già registrato per questo ente",
                    e.url
                )));
            }
            Err(err) => return Err(err.into()),
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE ente = $1 AND url = $2"
        )))
        .bind(&e.ente)
        .bind(&e.url)
        .fetch_one(&self.writer)
        .await?;
        endpoint(&row)
    }

    /// The Ente's endpoints, oldest first.
    pub async fn webhook_endpoints(&self, ente: &str) -> Result<Vec<EndpointRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE ente = $1 ORDER BY id"
        )))
        .bind(ente)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(endpoint).collect()
    }

    pub async fn webhook_endpoint(&self, ente: &str, id: i64) -> Result<EndpointRecord> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE ente = $1 AND id = $2"
        )))
        .bind(ente)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("endpoint del webhook"))?;
        endpoint(&row)
    }

    /// The endpoint's secret, opened: for the answer of a registration
    /// replayed under its idempotency key (the first answer showed it).
    pub async fn webhook_endpoint_secret(&self, ente: &str, id: i64) -> Result<String> {
        let sealed: String =
            sqlx::query_scalar("SELECT secret FROM webhook_endpoints WHERE ente = $1 AND id = $2")
                .bind(ente)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound("endpoint del webhook"))?;
        self.secrets.open(&sealed)
    }

    /// Resumes or pauses an endpoint: paused, its deliveries are still
    /// queued and none is claimed.
    pub async fn set_webhook_endpoint_active(
        &self,
        ente: &str,
        id: i64,
        active: bool,
        now: DateTime<Utc>,
    ) -> Result<EndpointRecord> {
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET active = $3, updated_at = $4 WHERE ente = $1 AND id = $2",
        )
        .bind(ente)
        .bind(id)
        .bind(i64::from(active))
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("endpoint del webhook"));
        }
        self.webhook_endpoint(ente, id).await
    }

    /// Removes an endpoint and its deliveries, sent or queued: a paused
    /// endpoint's queue goes with it.
    pub async fn delete_webhook_endpoint(&self, ente: &str, id: i64) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "DELETE FROM webhook_deliveries WHERE endpoint_id =
                (SELECT id FROM webhook_endpoints WHERE ente = $1 AND id = $2)",
        )
        .bind(ente)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM webhook_endpoints WHERE ente = $1 AND id = $2")
            .bind(ente)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("endpoint del webhook"));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Hands the events past the `webhooks` cursor on to the endpoints (at
    /// most `limit` events): a delivery per endpoint of each event's Ente,
    /// paused or not, and the cursor moved, in one transaction. Answers how many
    /// events were taken (0: nothing new).
    pub async fn fan_out_webhooks(&self, now: DateTime<Utc>, limit: u32) -> Result<usize> {
        // Looked at first through a reader: an idle poll must not take
        // SQLite's only writer.
        let newer: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM position_events WHERE id > $1 AND kind IN {}
             ORDER BY id LIMIT 1",
            crate::events::WEBHOOK_KINDS
        )))
        .bind(self.event_cursor(CONSUMER).await?)
        .fetch_optional(&self.pool)
        .await?;
        if newer.is_none() {
            return Ok(0);
        }
        let mut tx = self.write_tx().await?;
        let cursor = crate::events::cursor_for_update(&mut tx, self.dialect, CONSUMER, now).await?;
        let ids: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM position_events WHERE id > $1 AND kind IN {}
             ORDER BY id LIMIT $2",
            crate::events::WEBHOOK_KINDS
        )))
        .bind(cursor)
        .bind(i64::from(limit.clamp(1, 10_000)))
        .fetch_all(&mut *tx)
        .await?;
        let Some(&upto) = ids.last() else {
            tx.rollback().await?;
            return Ok(0);
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, position_id, status, attempts,
                next_attempt_at, created_at)
             SELECT w.id, e.id, e.position_id, 'PENDING', 0, $3, $3
             FROM position_events e
             JOIN webhook_endpoints w ON w.ente = e.ente AND e.id > w.first_event
             WHERE e.id > $1 AND e.id <= $2 AND e.kind IN {}
             ON CONFLICT (endpoint_id, event_id) DO NOTHING",
            crate::events::WEBHOOK_KINDS
        )))
        .bind(cursor)
        .bind(upto)
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        crate::events::advance(&mut tx, CONSUMER, upto, now).await?;
        tx.commit().await?;
        Ok(ids.len())
    }

    /// Claims up to `limit` due deliveries for `lease`: each is returned to
    /// one caller only, in this process or another, and only when no older
    /// delivery of its endpoint and position is still on its way. A paused
    /// endpoint's deliveries are not claimed.
    pub async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: u32,
    ) -> Result<Vec<DueDelivery>> {
        let now_us = to_micros(now);
        let ids: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT d.id FROM webhook_deliveries d
             JOIN webhook_endpoints w ON w.id = d.endpoint_id AND w.active = 1
             WHERE {}
             ORDER BY d.next_attempt_at, d.id LIMIT $2",
            due_condition("d")
        )))
        .bind(now_us)
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One transaction for the whole batch (a delivery a round trip
        // took SQLite's only writer twice per delivery, behind every
        // payment's writes: the PAID webhooks fell seconds behind under
        // load, `incasso bench digitpos`). The same conditions again: of
        // two workers that read the same ids, only the one whose update
        // changes a row sends it.
        let list = placeholders(3, ids.len());
        let mut tx = self.write_tx().await?;
        let mut update = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
            "UPDATE webhook_deliveries SET status = 'SENDING', claimed_until = $2,
                attempts = attempts + 1
             WHERE id IN ({list}) AND {} RETURNING id",
            due_condition("webhook_deliveries")
        )))
        .bind(now_us)
        .bind(to_micros(now + lease));
        for id in &ids {
            update = update.bind(*id);
        }
        let won: std::collections::HashSet<i64> =
            update.fetch_all(&mut *tx).await?.into_iter().collect();
        let mut claimed = Vec::with_capacity(won.len());
        if !won.is_empty() {
            let mine: Vec<i64> = ids.into_iter().filter(|id| won.contains(id)).collect();
            let mut select = sqlx::query(sqlx::AssertSqlSafe(format!(
                "{DUE_SELECT} WHERE d.id IN ({})",
                placeholders(1, mine.len())
            )));
            for id in &mine {
                select = select.bind(*id);
            }
            let mut by_id = std::collections::HashMap::new();
            for r in select.fetch_all(&mut *tx).await? {
                let d = self.due_from_row(&r)?;
                by_id.insert(d.id, d);
            }
            // In the order they came due.
            claimed.extend(mine.iter().filter_map(|id| by_id.remove(id)));
        }
        tx.commit().await?;
        Ok(claimed)
    }

    fn due_from_row(&self, r: &sqlx::any::AnyRow) -> Result<DueDelivery> {
        let payload: String = r.try_get("payload")?;
        let sealed: String = r.try_get("secret")?;
        Ok(DueDelivery {
            id: r.try_get("delivery_id")?,
            endpoint_id: r.try_get("endpoint_id")?,
            url: r.try_get("url")?,
            secret: self.secrets.open(&sealed)?,
            attempt: r.try_get("attempt")?,
            event: PositionEvent {
                id: r.try_get("id")?,
                ente: r.try_get("ente")?,
                position_id: r.try_get("position_id")?,
                iupd: r.try_get("iupd")?,
                notice_number: r.try_get("notice_number")?,
                iuv: r.try_get("iuv")?,
                kind: r.try_get("kind")?,
                payload: serde_json::from_str(&payload)
                    .map_err(|e| StoreError::Corrupt(format!("position_events.payload: {e}")))?,
                created_at: from_micros(r.try_get("created_at")?),
            },
        })
    }

    /// Attempt `attempt` was answered 2xx: delivered. `false` when the
    /// claim was no longer this attempt's (nothing changes then).
    pub async fn delivery_delivered(
        &self,
        id: i64,
        attempt: i64,
        status: i64,
        answer: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let outcome = Outcome::Delivered { status, at: now };
        let done = outcome_update(id, attempt, &outcome, answer)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Attempt `attempt` did not deliver: try again at `retry_at` (also
    /// for an answer 202 whose acknowledgement has yet to come), or never
    /// with `None` (FAILED).
    pub async fn delivery_not_delivered(
        &self,
        id: i64,
        attempt: i64,
        status: Option<i64>,
        answer: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        let outcome = Outcome::NotDelivered { status, retry_at };
        let done = outcome_update(id, attempt, &outcome, answer)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The outcomes of many attempts, `(id, attempt, outcome, answer)`, as
    /// [`Store::delivery_delivered`] and [`Store::delivery_not_delivered`]
    /// record them one by one, in one transaction: a worker records a
    /// round's answers with one turn of SQLite's writer. Answers, for each,
    /// whether the claim was still that attempt's.
    pub async fn record_delivery_outcomes(
        &self,
        outcomes: &[(i64, i64, Outcome, String)],
    ) -> Result<Vec<bool>> {
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.write_tx().await?;
        let mut applied = Vec::with_capacity(outcomes.len());
        for (id, attempt, outcome, answer) in outcomes {
            let done = outcome_update(*id, *attempt, outcome, answer)
                .execute(&mut *tx)
                .await?;
            applied.push(done.rows_affected() == 1);
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// The delivery an acknowledgement names, with its endpoint's secret.
    pub async fn delivery_to_ack(&self, id: i64) -> Result<Option<AckTarget>> {
        let row = sqlx::query(
            "SELECT d.id, w.ente, w.secret, d.acked_at FROM webhook_deliveries d
             JOIN webhook_endpoints w ON w.id = d.endpoint_id WHERE d.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let sealed: String = r.try_get("secret")?;
        Ok(Some(AckTarget {
            id: r.try_get("id")?,
            ente: r.try_get("ente")?,
            secret: self.secrets.open(&sealed)?,
            acked: r.try_get::<Option<i64>, _>("acked_at")?.is_some(),
        }))
    }

    /// The receiver acknowledged the delivery: delivered, whatever its
    /// state (an attempt under way records nothing after this). `false`
    /// when it was acknowledged before: a replay.
    pub async fn acknowledge_delivery(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'DELIVERED', acked_at = $2,
                delivered_at = COALESCE(delivered_at, $2), claimed_until = NULL
             WHERE id = $1 AND acked_at IS NULL",
        )
        .bind(id)
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A FAILED delivery of the Ente's, due again now (a person's retry).
    pub async fn retry_delivery(&self, ente: &str, id: i64, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'PENDING', next_attempt_at = $3
             WHERE id = $2 AND status = 'FAILED' AND endpoint_id IN
                (SELECT id FROM webhook_endpoints WHERE ente = $1)",
        )
        .bind(ente)
        .bind(id)
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// An endpoint's deliveries, newest first.
    pub async fn webhook_deliveries(
        &self,
        ente: &str,
        endpoint_id: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d
             JOIN webhook_endpoints w ON w.id = d.endpoint_id
             JOIN position_events e ON e.id = d.event_id
             WHERE w.ente = $1 AND d.endpoint_id = $2
             ORDER BY d.id DESC LIMIT $3"
        )))
        .bind(ente)
        .bind(endpoint_id)
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery).collect()
    }

    /// Seals again with the current key every endpoint secret not sealed
    /// with it (see [`Store::reseal_secrets`]).
    pub async fn reseal_webhook_secrets(&self) -> Result<usize> {
        let Some(current) = &self.secrets.current else {
            return Ok(0);
        };
        let prefix = current.sealed_prefix();
        let rows = sqlx::query("SELECT id, secret FROM webhook_endpoints")
            .fetch_all(&self.pool)
            .await?;
        let mut resealed = 0;
        for r in rows {
            let value: String = r.try_get("secret")?;
            if value.starts_with(&prefix) {
                continue;
            }
            let sealed = self.secrets.seal(&self.secrets.open(&value)?)?;
            sqlx::query("UPDATE webhook_endpoints SET secret = $2 WHERE id = $1")
                .bind(r.try_get::<i64, _>("id")?)
                .bind(sealed)
                .execute(&self.writer)
                .await?;
            resealed += 1;
        }
        Ok(resealed)
    }
}
