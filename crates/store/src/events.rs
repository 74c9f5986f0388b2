//! Position events (migration 0028): the outbox every notification is
//! read from (webhooks now, App IO next).
//!
//! An event is written by the same transaction as the change it tells,
//! never after it: a receipt that pays an option writes `PAID`, a
//! published position invalidated or deleted writes `CANCELLED`, a paid
//! option that a current reporting flow lists writes `REPORTED` (at the
//! flow's intake, or at the payment when the flow came first). A crash
//! therefore loses both or neither, and nothing is told of a change that
//! was rolled back. Each event has a natural key inserted with `ON
//! CONFLICT DO NOTHING`, so the same fact is told once however often it is
//! written (a receipt the Node sends again is refused anyway).
//!
//! Consumers read by increasing id after a cursor of their own
//! ([`Store::event_cursor`], advanced in the transaction that hands the
//! events on, as `webhooks::fan_out` does). That is only sound if ids
//! become visible in increasing order: on SQLite one writer at a time
//! makes it so. On PostgreSQL an id taken at insert could commit after a
//! larger one, and a cursor would skip it for ever. So the id consumers
//! see is an event's place (`seq`) in `event_order`, written by a deferred
//! trigger that PostgreSQL runs inside COMMIT (migration 0037): it takes
//! one advisory lock ([`EVENTS_LOCK`]) and appends the places of the
//! transaction's events. Places are handed out and committed one
//! transaction at a time, and the lock is held for the commit only, never
//! across a round trip to the client. `position_events` is the view of
//! committed events with their place as `id`; writers insert into
//! `position_event_rows`, whose row ids say nothing of the order.

use crate::batch::Stmt;
use crate::positions::StoredPosition;
use crate::time::{from_micros, to_micros};
use crate::{Dialect, Result, Store};
use chrono::{DateTime, SecondsFormat, Utc};
use incasso_core::position::OptionStatus;
use serde_json::{Value, json};
use sqlx::{AnyConnection, Row};

pub const PAID: &str = "PAID";
pub const CANCELLED: &str = "CANCELLED";
pub const REPORTED: &str = "REPORTED";
/// A position was published and its service invites on publication
/// (store::notify): the App IO invitation's trigger.
pub const PUBLISHED: &str = "PUBLISHED";
/// An unpaid option is due in the days its service's reminder says
/// (written by the daily reminder job, once per option and due date).
pub const DUE_SOON: &str = "DUE_SOON";

/// The kinds webhooks deliver: PUBLISHED and DUE_SOON are App IO's
/// triggers, not news for an Ente's applications.
pub const WEBHOOK_KINDS: &str = "('PAID', 'CANCELLED', 'REPORTED')";

/// The advisory lock that orders event writers on PostgreSQL ("incassoE"):
/// taken by the trigger of migration 0037, which spells it in decimal.
pub const EVENTS_LOCK: i64 = 0x696e_6361_7373_6f45;

/// An event as consumers read it.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionEvent {
    pub id: i64,
    pub ente: String,
    /// incasso's id of the position: what orders a position's events.
    pub position_id: i64,
    pub iupd: String,
    /// The payment option's notice number, for PAID and REPORTED.
    pub notice_number: Option<String>,
    pub iuv: Option<String>,
    /// PAID, CANCELLED or REPORTED.
    pub kind: String,
    /// JSON: what a consumer needs without reading anything else.
    pub payload: Value,
    pub created_at: DateTime<Utc>,
}

/// An event to write, inside the transaction of its change.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewEvent {
    pub natural_key: String,
    pub ente: String,
    pub position_id: i64,
    pub iupd: String,
    pub notice_number: Option<String>,
    pub iuv: Option<String>,
    pub kind: &'static str,
    pub payload: Value,
}

fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The statements that write `events`, up to 1,000 rows each; nothing
/// when there are none.
///
/// On PostgreSQL the ordering lock used to be taken here, and was held
/// from this statement across the round trip to COMMIT: every receipt
/// queued for it, 3.4 ms on average at 840 cycles a second (`bench node
/// --database-url`). Placed at commit, the rows need nothing here.
///
/// On SQLite the placeholders are anonymous: sqlx looks a numbered one up
/// by name, a linear search per parameter, and the 9,000 of a full
/// statement took half of `bench recon`'s intake (`perf`, stop 39).
pub(crate) fn statements(dialect: Dialect, events: &[NewEvent], now: DateTime<Utc>) -> Vec<Stmt> {
    const COLUMNS: &str =
        "natural_key, ente, position_id, iupd, notice_number, iuv, kind, payload, created_at";
    const PER_ROW: usize = 9;
    let bind_row = |s: Stmt, e: &NewEvent| {
        s.bind(e.natural_key.clone())
            .bind(e.ente.clone())
            .bind(e.position_id)
            .bind(e.iupd.clone())
            .bind(e.notice_number.clone())
            .bind(e.iuv.clone())
            .bind(e.kind.to_string())
            .bind(e.payload.to_string())
            .bind(to_micros(now))
    };
    // SQLite's 32,766 variables would allow more rows; PostgreSQL's 65,535
    // as many. A thousand keeps a statement's text small on both.
    events
        .chunks(1_000)
        .map(|chunk| {
            let mut sql = format!("INSERT INTO position_event_rows ({COLUMNS}) VALUES ");
            let mut n = 0;
            crate::batch::push_rows(&mut sql, dialect, chunk.len(), PER_ROW, &mut n);
            sql.push_str(" ON CONFLICT (natural_key) DO NOTHING");
            chunk.iter().fold(Stmt::new(sql), bind_row)
        })
        .collect()
}

/// Writes `events` on `conn`, which must be inside the change's
/// transaction.
pub(crate) async fn write(
    conn: &mut AnyConnection,
    events: &[NewEvent],
    now: DateTime<Utc>,
) -> Result<()> {
    for s in statements(Dialect::of(conn), events, now) {
        s.into_any().execute(&mut *conn).await?;
    }
    Ok(())
}

/// What paid an option: a receipt, or a payment made outside pagoPA.
pub(crate) struct Payment<'a> {
    pub receipt: Option<&'a crate::ReceiptRecord>,
    pub amount: i64,
    pub paid_at: DateTime<Utc>,
    /// Why the receipt is flagged though it paid (AMOUNT_MISMATCH).
    pub anomaly: Option<&'static str>,
}

/// PAID: option `index` of `stored` (as saved) was paid.
pub(crate) fn paid(ente: &str, stored: &StoredPosition, index: usize, p: &Payment<'_>) -> NewEvent {
    let option = &stored.position.options[index];
    let iuv = option.iuv.clone().unwrap_or_default();
    let nav = option
        .notice_number
        .as_ref()
        .map(|n| n.as_str().to_string());
    let r = p.receipt;
    let payload = json!({
        "amountCents": p.amount,
        "optionAmountCents": option.amount.0,
        "noticeNumber": nav,
        "iuv": iuv,
        "paidAt": instant(p.paid_at),
        "channel": if r.is_some() { "PAGOPA" } else { "OUTSIDE_PAGOPA" },
        "receiptId": r.map(|r| r.receipt_id.clone()),
        "feeCents": r.and_then(|r| r.fee),
        "pspId": r.map(|r| r.psp_id.clone()),
        "pspName": r.map(|r| r.psp_name.clone()),
        "paymentMethod": r.and_then(|r| r.payment_method.clone()),
        "anomaly": p.anomaly,
        "positionStatus": stored.position.status.as_str(),
    });
    // An option is paid once (a second payment is an anomaly, told by no
    // event), and a receipt is stored once: either key names the fact.
    let natural_key = match r {
        Some(r) => format!("PAID:{ente}:{iuv}:{}", r.receipt_id),
        None => format!("PAID:{ente}:{iuv}:outside:{}", to_micros(p.paid_at)),
    };
    NewEvent {
        natural_key,
        ente: ente.to_string(),
        position_id: stored.id,
        iupd: stored.position.iupd.clone(),
        notice_number: nav,
        iuv: Some(iuv),
        kind: PAID,
        payload,
    }
}

/// CANCELLED: `stored` (as it was before, for a deletion) stopped being
/// payable: `why` is `INVALIDATED` or `DELETED`.
pub(crate) fn cancelled(ente: &str, stored: &StoredPosition, why: &str) -> NewEvent {
    let navs: Vec<String> = stored
        .position
        .options
        .iter()
        .filter_map(|o| o.notice_number.as_ref().map(|n| n.as_str().to_string()))
        .collect();
    let iuvs: Vec<String> = stored
        .position
        .options
        .iter()
        .filter_map(|o| o.iuv.clone())
        .collect();
    let total: i64 = stored.position.options.iter().map(|o| o.amount.0).sum();
    NewEvent {
        natural_key: format!(
            "CANCELLED:{ente}:{}:{}:{}",
            stored.position.iupd, stored.id, stored.version
        ),
        ente: ente.to_string(),
        position_id: stored.id,
        iupd: stored.position.iupd.clone(),
        notice_number: navs.first().cloned(),
        iuv: iuvs.first().cloned(),
        kind: CANCELLED,
        payload: json!({
            "reason": why,
            "noticeNumbers": navs,
            "iuvs": iuvs,
            "amountCents": total,
            "positionStatus": if why == "DELETED" { "DELETED" } else { "INVALID" },
        }),
    }
}

/// Whether `stored`, in its stored state, was published (so that its
/// cancellation is news to somebody).
pub(crate) fn was_published(stored: &StoredPosition) -> bool {
    use incasso_core::position::PositionStatus as S;
    matches!(stored.position.status, S::Published | S::Valid | S::Expired)
}

/// The REPORTED events of option `index` of `stored`, just paid: the
/// current flows that already list its IUV as paid (a flow that came
/// before the receipt, or the flow of a payment without one).
pub(crate) async fn reported_now(
    conn: &mut AnyConnection,
    ente: &str,
    stored: &StoredPosition,
    index: usize,
) -> Result<Vec<NewEvent>> {
    let option = &stored.position.options[index];
    if option.status == OptionStatus::Unpaid {
        return Ok(Vec::new());
    }
    let Some(iuv) = option.iuv.as_deref() else {
        return Ok(Vec::new());
    };
    // The IUV's few lines first, then their flows: `CROSS JOIN` keeps
    // SQLite to that order. Without statistics (a database never
    // analyzed) it started from the Ente's every current flow: 1 s per
    // call at 30,000 flows (`bench recon`'s matching, 1,547 s).
    let rows = sqlx::query(
        "SELECT f.flow_id, f.flow_date_time, f.settlement_ref, f.settlement_date, f.psp_id,
            CAST(SUM(p.amount) AS BIGINT) AS amount, CAST(COUNT(*) AS BIGINT) AS lines,
            MIN(p.iur) AS iur
         FROM flow_payments p
         CROSS JOIN reporting_flows f
         WHERE p.ente = $1 AND p.iuv = $2 AND p.outcome IN (0, 4, 8, 9)
           AND f.ente = p.ente AND f.flow_id = p.flow_id
           AND f.flow_date_time = p.flow_date_time AND f.current = 1
         GROUP BY f.flow_id, f.flow_date_time, f.settlement_ref, f.settlement_date, f.psp_id
         ORDER BY f.flow_date_time, f.flow_id",
    )
    .bind(ente)
    .bind(iuv)
    .fetch_all(&mut *conn)
    .await?;
    let nav = option
        .notice_number
        .as_ref()
        .map(|n| n.as_str().to_string());
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(reported(
            ente,
            stored.id,
            &stored.position.iupd,
            nav.clone(),
            iuv,
            Flow {
                id: r.try_get("flow_id")?,
                date_time: from_micros(r.try_get("flow_date_time")?),
                settlement_ref: r.try_get("settlement_ref")?,
                settlement_date: r.try_get("settlement_date")?,
                psp_id: r.try_get("psp_id")?,
            },
            r.try_get("amount")?,
            r.try_get("lines")?,
            r.try_get("iur")?,
        ));
    }
    Ok(out)
}

/// A reporting flow, as a REPORTED event tells it.
struct Flow {
    id: String,
    date_time: DateTime<Utc>,
    settlement_ref: String,
    settlement_date: String,
    psp_id: String,
}

#[allow(clippy::too_many_arguments)]
fn reported(
    ente: &str,
    position_id: i64,
    iupd: &str,
    nav: Option<String>,
    iuv: &str,
    flow: Flow,
    amount: i64,
    lines: i64,
    iur: String,
) -> NewEvent {
    NewEvent {
        natural_key: format!("REPORTED:{ente}:{iuv}:{}", flow.id),
        ente: ente.to_string(),
        position_id,
        iupd: iupd.to_string(),
        notice_number: nav.clone(),
        iuv: Some(iuv.to_string()),
        kind: REPORTED,
        payload: json!({
            "flowId": flow.id,
            "flowDateTime": instant(flow.date_time),
            "pspId": flow.psp_id,
            "settlementRef": flow.settlement_ref,
            "settlementDate": flow.settlement_date,
            "noticeNumber": nav,
            "iuv": iuv,
            "iur": iur,
            "amountCents": amount,
            "lines": lines,
        }),
    }
}

/// The REPORTED events of a flow version just stored as current: one per
/// IUV it lists as paid whose option of this Ente is paid. (Unpaid ones
/// are told when they are paid: [`reported_now`].)
pub(crate) async fn reported_by_flow(
    conn: &mut AnyConnection,
    ente: &str,
    flow: &incasso_core::fdr::ReportingFlow,
) -> Result<Vec<NewEvent>> {
    use std::collections::BTreeMap;
    // IUV -> (amount, lines, first IUR), of the lines that say paid.
    let mut listed: BTreeMap<&str, (i64, i64, &str)> = BTreeMap::new();
    for p in &flow.payments {
        if !matches!(p.outcome.code(), 0 | 4 | 8 | 9) {
            continue;
        }
        let e = listed
            .entry(p.iuv.as_str())
            .or_insert((0, 0, p.iur.as_str()));
        e.0 += p.amount.0;
        e.1 += 1;
    }
    let iuvs: Vec<&str> = listed.keys().copied().collect();
    let mut out = Vec::new();
    for chunk in iuvs.chunks(400) {
        let mut sql = String::from(
            "SELECT o.iuv, o.notice_number, d.id, d.iupd FROM payment_options o
             JOIN debt_positions d ON d.id = o.position_id
             WHERE o.ente = $1 AND o.status <> 'PO_UNPAID' AND o.iuv IN (",
        );
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        sql.push_str(&placeholders.join(", "));
        sql.push(')');
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ente);
        for iuv in chunk {
            q = q.bind(iuv.to_string());
        }
        for r in q.fetch_all(&mut *conn).await? {
            let iuv: String = r.try_get(0)?;
            let Some(&(amount, lines, iur)) = listed.get(iuv.as_str()) else {
                continue;
            };
            out.push(reported(
                ente,
                r.try_get(2)?,
                &r.try_get::<String, _>(3)?,
                Some(r.try_get(1)?),
                &iuv,
                Flow {
                    id: flow.flow_id.clone(),
                    date_time: flow.flow_date_time,
                    settlement_ref: flow.settlement_ref.clone(),
                    settlement_date: flow.settlement_date.to_string(),
                    psp_id: flow.psp_id.clone(),
                },
                amount,
                lines,
                iur.to_string(),
            ));
        }
    }
    out.sort_by(|a, b| (a.position_id, &a.iuv).cmp(&(b.position_id, &b.iuv)));
    Ok(out)
}

const COLUMNS: &str = "id, ente, position_id, iupd, notice_number, iuv, kind, payload, created_at";

fn event(r: &sqlx::any::AnyRow) -> Result<PositionEvent> {
    let payload: String = r.try_get("payload")?;
    Ok(PositionEvent {
        id: r.try_get("id")?,
        ente: r.try_get("ente")?,
        position_id: r.try_get("position_id")?,
        iupd: r.try_get("iupd")?,
        notice_number: r.try_get("notice_number")?,
        iuv: r.try_get("iuv")?,
        kind: r.try_get("kind")?,
        payload: serde_json::from_str(&payload)
            .map_err(|e| crate::StoreError::Corrupt(format!("position_events.payload: {e}")))?,
        created_at: from_micros(r.try_get("created_at")?),
    })
}

/// Reads up to `limit` events after `after`, by increasing id.
pub(crate) async fn after(
    conn: &mut AnyConnection,
    after: i64,
    limit: u32,
) -> Result<Vec<PositionEvent>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM position_events WHERE id > $1 ORDER BY id LIMIT $2"
    )))
    .bind(after)
    .bind(i64::from(limit.clamp(1, 10_000)))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(event).collect()
}

/// A consumer's cursor, read inside the transaction that will advance it
/// (locked on PostgreSQL, so two processes hand nothing on twice; on
/// SQLite the write transaction already holds the only writer's lock).
pub(crate) async fn cursor_for_update(
    conn: &mut AnyConnection,
    dialect: Dialect,
    consumer: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    sqlx::query(
        "INSERT INTO event_cursors (consumer, last_event, updated_at) VALUES ($1, 0, $2)
         ON CONFLICT (consumer) DO NOTHING",
    )
    .bind(consumer)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?;
    let sql = format!(
        "SELECT last_event FROM event_cursors WHERE consumer = $1{}",
        dialect.for_update()
    );
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(consumer)
        .fetch_one(&mut *conn)
        .await?)
}

/// Moves a consumer's cursor to `to`, inside the same transaction.
pub(crate) async fn advance(
    conn: &mut AnyConnection,
    consumer: &str,
    to: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE event_cursors SET last_event = $2, updated_at = $3
         WHERE consumer = $1 AND last_event < $2",
    )
    .bind(consumer)
    .bind(to)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// Events after `after`, by increasing id, across Enti: for incasso's
    /// own consumers only.
    pub async fn events_after(&self, after_id: i64, limit: u32) -> Result<Vec<PositionEvent>> {
        let mut conn = self.pool.acquire().await?;
        after(&mut conn, after_id, limit).await
    }

    /// One position's events, oldest first.
    pub async fn position_events(&self, ente: &str, iupd: &str) -> Result<Vec<PositionEvent>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM position_events WHERE ente = $1 AND iupd = $2 ORDER BY id"
        )))
        .bind(ente)
        .bind(iupd)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event).collect()
    }

    /// The Ente's events of the kinds webhooks deliver, oldest first,
    /// after `after_id`: the feed its applications catch up from.
    pub async fn ente_events(
        &self,
        ente: &str,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<PositionEvent>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM position_events WHERE ente = $1 AND id > $2
               AND kind IN {WEBHOOK_KINDS}
             ORDER BY id LIMIT $3"
        )))
        .bind(ente)
        .bind(after_id)
        .bind(i64::from(limit.clamp(1, 10_000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event).collect()
    }

    /// Where `consumer` is: the last event it took (0 before the first).
    pub async fn event_cursor(&self, consumer: &str) -> Result<i64> {
        Ok(
            sqlx::query_scalar::<_, i64>(
                "SELECT last_event FROM event_cursors WHERE consumer = $1",
            )
            .bind(consumer)
            .fetch_optional(&self.pool)
            .await?
            .unwrap_or(0),
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_ordering_trigger_takes_the_events_lock() {
        // 0037 defines the trigger's function as it runs now.
        let migration = include_str!("../migrations/postgres/0037_event_order.sql");
        assert!(
            migration.contains(&format!("pg_advisory_xact_lock({})", super::EVENTS_LOCK)),
            "migration 0037 must take EVENTS_LOCK"
        );
    }
}
