//! The people's side of the notifications (issue 19, migration 0033):
//! counts per service, the Ente's messages listed a page at a time, and
//! messages asked for by a person or an application.
//!
//! A message asked for is a PUBLISHED event of each position (the
//! invitation's trigger, store::notify), written with the request's row
//! (`notify_requests`) in one transaction, so the outbox sends it like any
//! other and never from the request. The request's token is its natural
//! key: the same token asked again writes nothing and answers what the
//! first did.

use crate::notify::NotificationRecord;
use crate::time::to_micros;
use crate::{Result, Store};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// How many of a service's messages are in a state (and, for SKIPPED and
/// FAILED, for which reason code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountRow {
    pub service_code: String,
    pub channel: String,
    pub status: String,
    /// The reason's code (the text before its first `:`), for SKIPPED;
    /// for FAILED, the code of the last error.
    pub reason: Option<String>,
    pub n: i64,
}

/// Which positions a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Position(String),
    Supply(i64),
}

impl Selector {
    /// As `notify_requests.target` records it.
    pub fn target(&self) -> String {
        match self {
            Selector::Position(iupd) => format!("position:{iupd}"),
            Selector::Supply(id) => format!("supply:{id}"),
        }
    }
}

/// What a request did: `first` when this call wrote it (or, with
/// `requested` 0, found nothing to ask and kept nothing), else what the
/// first call with the same token did (`target` says what it was about).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOutcome {
    pub first: bool,
    pub target: String,
    pub requested: i64,
}

/// Positions that can be told now: payable, of a service that tells.
const SENDABLE: &str = "d.ente = $1 AND d.status IN ('PUBLISHED', 'VALID', 'PARTIALLY_PAID')
     AND EXISTS (SELECT 1 FROM notify_settings s WHERE s.ente = d.ente
        AND s.service_code = d.service_code AND s.enabled = 1)";

fn code_of(text: Option<String>) -> Option<String> {
    text.map(|t| t.split(':').next().unwrap_or_default().trim().to_string())
}

/// The sort keys [`Store::notifications_page`] takes.
pub const SORT_KEYS: [&str; 6] = ["id", "servizio", "tipo", "canale", "tentativi", "posizione"];

fn order_by(sort: &str) -> &'static str {
    match sort {
        "servizio" => "n.service_code",
        "tipo" => "n.kind",
        "canale" => "n.channel",
        "tentativi" => "n.attempts",
        "posizione" => "n.iupd",
        _ => "n.id",
    }
}

impl Store {
    /// The Ente's messages counted by service, channel, state and reason.
    pub async fn service_notify_counts(&self, ente: &str) -> Result<Vec<CountRow>> {
        let rows = sqlx::query(
            "SELECT service_code, channel, status, reason, last_error, CAST(COUNT(*) AS BIGINT) AS n
             FROM notifications WHERE ente = $1
             GROUP BY service_code, channel, status, reason, last_error",
        )
        .bind(ente)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<CountRow> = Vec::new();
        for r in rows {
            let status: String = r.try_get("status")?;
            let reason = match status.as_str() {
                "SKIPPED" => code_of(r.try_get("reason")?),
                "FAILED" => code_of(r.try_get("last_error")?),
                _ => None,
            };
            let row = CountRow {
                service_code: r.try_get("service_code")?,
                channel: r.try_get("channel")?,
                status,
                reason,
                n: r.try_get("n")?,
            };
            match out.iter_mut().find(|c| {
                c.service_code == row.service_code
                    && c.channel == row.channel
                    && c.status == row.status
                    && c.reason == row.reason
            }) {
                Some(c) => c.n += row.n,
                None => out.push(row),
            }
        }
        out.sort_by(|a, b| {
            (&a.service_code, &a.channel, &a.status, &a.reason).cmp(&(
                &b.service_code,
                &b.channel,
                &b.status,
                &b.reason,
            ))
        });
        Ok(out)
    }

    /// A page of the Ente's messages with `status` (all when `None`), of
    /// `services` only when given, sorted by one of [`SORT_KEYS`] (else
    /// by id); answers the page and how many there are in all.
    #[allow(clippy::too_many_arguments)]
    pub async fn notifications_page(
        &self,
        ente: &str,
        status: Option<&str>,
        services: Option<&[String]>,
        sort: &str,
        descending: bool,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<NotificationRecord>, u64)> {
        let mut filter = String::from("n.ente = $1 AND ($2 = '' OR n.status = $2)");
        if let Some(list) = services {
            if list.is_empty() {
                return Ok((Vec::new(), 0));
            }
            let marks: Vec<String> = (0..list.len()).map(|i| format!("${}", i + 3)).collect();
            filter.push_str(&format!(" AND n.service_code IN ({})", marks.join(", ")));
        }
        let next = 3 + services.map_or(0, |l| l.len());
        let dir = if descending { "DESC" } else { "ASC" };
        let page_sql = format!(
            "SELECT n.id FROM notifications n WHERE {filter}
             ORDER BY {} {dir}, n.id {dir} LIMIT ${next} OFFSET ${}",
            order_by(sort),
            next + 1
        );
        let count_sql =
            format!("SELECT CAST(COUNT(*) AS BIGINT) FROM notifications n WHERE {filter}");
        let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(page_sql))
            .bind(ente)
            .bind(status.unwrap_or(""));
        let mut c = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count_sql))
            .bind(ente)
            .bind(status.unwrap_or(""));
        for s in services.unwrap_or(&[]) {
            q = q.bind(s.clone());
            c = c.bind(s.clone());
        }
        let ids = q
            .bind(i64::from(limit.clamp(1, 100_000)))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        let total = c.fetch_one(&self.pool).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(n) = self.notification(id).await? {
                out.push(n);
            }
        }
        Ok((out, u64::try_from(total).unwrap_or(0)))
    }

    /// How many positions `selector` names that can be told now (payable,
    /// their service telling), and the first of them.
    pub async fn sendable(&self, ente: &str, selector: &Selector) -> Result<(i64, Option<String>)> {
        let (extra, bind) = match selector {
            Selector::Position(iupd) => ("d.iupd = $2", either(iupd)),
            Selector::Supply(id) => ("d.supply_id = $2", Bind::Int(*id)),
        };
        let count_sql = format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM debt_positions d WHERE {SENDABLE} AND {extra}"
        );
        let first_sql = format!(
            "SELECT d.iupd FROM debt_positions d WHERE {SENDABLE} AND {extra} ORDER BY d.id LIMIT 1"
        );
        let c = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count_sql)).bind(ente);
        let f = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(first_sql)).bind(ente);
        let (n, first) = match bind {
            Bind::Text(t) => (
                c.bind(t.clone()).fetch_one(&self.pool).await?,
                f.bind(t).fetch_optional(&self.pool).await?,
            ),
            Bind::Int(i) => (
                c.bind(i).fetch_one(&self.pool).await?,
                f.bind(i).fetch_optional(&self.pool).await?,
            ),
        };
        Ok((n, first))
    }

    /// Asks for an invitation to each position `selector` names that can
    /// be told now, under `token` (the request's natural key): a PUBLISHED
    /// event each and the request's row, in one transaction. The same
    /// token again writes nothing and answers the first request.
    pub async fn request_notifications(
        &self,
        ente: &str,
        token: &str,
        selector: &Selector,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<RequestOutcome> {
        let mut tx = self.write_tx().await?;
        if let Some(r) = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT target, requested FROM notify_requests WHERE ente = $1 AND token = $2{}",
            self.dialect.for_update()
        )))
        .bind(ente)
        .bind(token)
        .fetch_optional(&mut *tx)
        .await?
        {
            tx.rollback().await?;
            return Ok(RequestOutcome {
                first: false,
                target: r.try_get("target")?,
                requested: r.try_get("requested")?,
            });
        }
        let target = selector.target();
        let inserted = sqlx::query(
            "INSERT INTO notify_requests (ente, token, target, requested, created_by, created_at)
             VALUES ($1, $2, $3, 0, $4, $5) ON CONFLICT (ente, token) DO NOTHING",
        )
        .bind(ente)
        .bind(token)
        .bind(&target)
        .bind(by)
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            // Another process wrote the same token meanwhile: its answer.
            tx.rollback().await?;
            return Box::pin(self.request_notifications(ente, token, selector, by, now)).await;
        }
        let (extra, bind) = match selector {
            Selector::Position(iupd) => ("d.iupd = $2", either(iupd)),
            Selector::Supply(id) => ("d.supply_id = $2", Bind::Int(*id)),
        };
        let payload = serde_json::json!({"requestedBy": by, "request": token}).to_string();
        let sql = format!(
            "INSERT INTO position_event_rows (natural_key, ente, position_id, iupd, notice_number,
                iuv, kind, payload, created_at)
             SELECT 'SEND:' || d.ente || ':' || $3 || ':' || CAST(d.id AS TEXT), d.ente, d.id,
                d.iupd,
                (SELECT o.notice_number FROM payment_options o WHERE o.position_id = d.id
                    ORDER BY o.option_index LIMIT 1),
                (SELECT o.iuv FROM payment_options o WHERE o.position_id = d.id
                    ORDER BY o.option_index LIMIT 1),
                'PUBLISHED', $4, $5
             FROM debt_positions d WHERE {SENDABLE} AND {extra}
             ORDER BY d.id
             ON CONFLICT (natural_key) DO NOTHING"
        );
        let q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ente);
        let q = match bind {
            Bind::Text(t) => q.bind(t),
            Bind::Int(i) => q.bind(i),
        };
        let written = q
            .bind(token)
            .bind(payload)
            .bind(to_micros(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let requested = i64::try_from(written).unwrap_or(i64::MAX);
        if requested == 0 {
            // Nothing to tell: no request is kept, so the same token may
            // ask again once there is (the API's key after a refusal).
            tx.rollback().await?;
            return Ok(RequestOutcome {
                first: true,
                target,
                requested: 0,
            });
        }
        sqlx::query("UPDATE notify_requests SET requested = $3 WHERE ente = $1 AND token = $2")
            .bind(ente)
            .bind(token)
            .bind(requested)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RequestOutcome {
            first: true,
            target,
            requested,
        })
    }
}

enum Bind {
    Text(String),
    Int(i64),
}

fn either(s: &str) -> Bind {
    Bind::Text(s.to_string())
}
