//! Telling citizens (issue 19, migrations 0030 and 0031): each catalogue
//! service's settings and templates, and the notification outbox.
//!
//! Notifications are a consumer of `position_events` (cursor
//! [`CONSUMER`]), not an outbox of their own: [`Store::fan_out_notifications`]
//! reads the events past its cursor and, in the same transaction, writes
//! one row per event of a service that tells its citizens, on the IO
//! channel, and moves the cursor. A row that cannot go through IO (no key,
//! the citizen not on IO or opted out) is SKIPPED with its reason and, when
//! an address is known, an EMAIL row is written with a message in the
//! e-mail outbox (`mail_outbox`), in one transaction
//! ([`Store::notification_to_email`]).
//!
//! Claims: on PostgreSQL `FOR UPDATE SKIP LOCKED` picks rows nobody else is
//! claiming, so two processes never take the same one and never wait on
//! each other; on SQLite the single writer serialises claims. A claim is a
//! lease: a worker that dies lets it lapse, and the attempt number (the
//! claim's token) keeps a late worker from recording over a new attempt.
//! A row waits while an older row of the same position and channel is
//! still on its way, so a withdrawal never overtakes its invitation.

use crate::events::NewEvent;
use crate::positions::StoredPosition;
use crate::time::{from_micros, opt_from_micros, to_micros};
use crate::{Dialect, Result, Store, StoreError};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{AnyConnection, Row};

/// The consumer name of the notifications' cursor.
pub const CONSUMER: &str = "notify";

pub const PENDING: &str = "PENDING";
pub const SENDING: &str = "SENDING";
pub const SENT: &str = "SENT";
pub const SKIPPED: &str = "SKIPPED";
pub const FAILED: &str = "FAILED";

pub const IO: &str = "IO";
pub const EMAIL: &str = "EMAIL";

/// The kinds of message, as stored (`notifications.kind`, templates).
pub const INVITATION: &str = "INVITATION";
pub const REMINDER: &str = "REMINDER";
pub const WITHDRAWAL: &str = "WITHDRAWAL";
pub const PAID: &str = "PAID";
pub const KINDS: [&str; 4] = [INVITATION, REMINDER, WITHDRAWAL, PAID];

/// A service's settings as stored (the IO key opened, for its owner to
/// mask or use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySettings {
    pub ente: String,
    pub service_code: String,
    pub io_api_key: Option<String>,
    pub enabled: bool,
    pub invite_on_publish: bool,
    pub reminder_days: Option<i64>,
    pub german: bool,
    pub io_not_before: Option<DateTime<Utc>>,
    /// Seconds IO keeps trying to deliver (migration 0032); `None`: IO's
    /// default, not sent.
    pub time_to_live: Option<i64>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// What to do with the stored IO key when saving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChange {
    Keep,
    Set(String),
    Remove,
}

/// Settings to save; the key is sealed at rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotifySettings {
    pub ente: String,
    pub service_code: String,
    pub io_api_key: KeyChange,
    pub enabled: bool,
    pub invite_on_publish: bool,
    pub reminder_days: Option<i64>,
    pub german: bool,
    pub updated_by: String,
}

/// A service's own template for a kind and language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRecord {
    pub kind: String,
    pub language: String,
    pub subject: String,
    pub markdown: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// A notification, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    pub id: i64,
    pub event_id: i64,
    pub ente: String,
    pub service_code: String,
    pub position_id: i64,
    pub iupd: String,
    pub notice_number: Option<String>,
    pub kind: String,
    pub channel: String,
    pub recipient: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub attempt_started_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub io_message_id: Option<String>,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// For an EMAIL row: the e-mail outbox's status of its message.
    pub mail_status: Option<String>,
}

/// A notification a worker claimed: what it needs to send it.
#[derive(Debug, Clone, PartialEq)]
pub struct DueNotification {
    pub record: NotificationRecord,
    /// This attempt's number: the claim's token.
    pub attempt: i64,
    pub event_kind: String,
    pub event_payload: serde_json::Value,
    /// The service's IO key, opened; `None`: the service has none.
    pub io_api_key: Option<String>,
    pub german: bool,
    /// The service's time to live, in seconds (`None`: not set).
    pub time_to_live: Option<i64>,
}

/// A message IO took, for [`Store::notifications_sent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub id: i64,
    /// The attempt that sent it: the claim's token.
    pub attempt: i64,
    pub io_message_id: String,
    /// The text sent (`None`: left as recorded).
    pub subject: Option<String>,
    pub body: Option<String>,
}

/// Messages recorded by one statement: five parameters each, well within
/// both databases' limits.
const SENT_PER_STATEMENT: usize = 200;

const COLUMNS: &str = "n.id, n.event_id, n.ente, n.service_code, n.position_id, n.iupd, \
     n.notice_number, n.kind, n.channel, n.recipient, n.status, n.reason, \
     CAST(n.attempts AS BIGINT) AS attempts, n.next_attempt_at, n.attempt_started_at, \
     n.last_error, n.io_message_id, n.subject, n.body, n.created_at, n.sent_at, \
     m.status AS mail_status";

/// The join that gives an EMAIL row its message's status.
const MAIL_JOIN: &str =
    "LEFT JOIN mail_outbox m ON m.natural_key = 'notify:' || CAST(n.id AS TEXT)";

fn record(r: &sqlx::any::AnyRow) -> Result<NotificationRecord> {
    Ok(NotificationRecord {
        id: r.try_get("id")?,
        event_id: r.try_get("event_id")?,
        ente: r.try_get("ente")?,
        service_code: r.try_get("service_code")?,
        position_id: r.try_get("position_id")?,
        iupd: r.try_get("iupd")?,
        notice_number: r.try_get("notice_number")?,
        kind: r.try_get("kind")?,
        channel: r.try_get("channel")?,
        recipient: r.try_get("recipient")?,
        status: r.try_get("status")?,
        reason: r.try_get("reason")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: from_micros(r.try_get("next_attempt_at")?),
        attempt_started_at: opt_from_micros(r.try_get("attempt_started_at")?),
        last_error: r.try_get("last_error")?,
        io_message_id: r.try_get("io_message_id")?,
        subject: r.try_get("subject")?,
        body: r.try_get("body")?,
        created_at: from_micros(r.try_get("created_at")?),
        sent_at: opt_from_micros(r.try_get("sent_at")?),
        mail_status: r.try_get("mail_status")?,
    })
}

fn cut(text: &str, n: usize) -> String {
    text.chars().take(n).collect()
}

/// A row is due when PENDING and its time has come, or SENDING and its
/// lease lapsed; a due row still waits while its service is paused by IO (for the IO
/// channel) or an older row of its position and channel is on its way.
/// `$1` is now.
const GATES: &str = "NOT (n.channel = 'IO' AND EXISTS (SELECT 1 FROM notify_settings s
        WHERE s.ente = n.ente AND s.service_code = n.service_code AND s.io_not_before > $1))
     AND NOT EXISTS (SELECT 1 FROM notifications o
        WHERE o.position_id = n.position_id AND o.channel = n.channel AND o.id < n.id
          AND o.status IN ('PENDING', 'SENDING'))";

/// A claimed row with what its worker needs: its event, and its
/// service's key and settings.
fn due_select() -> String {
    format!(
        "SELECT {COLUMNS}, e.kind AS event_kind, e.payload AS event_payload,
            s.io_api_key, s.german, s.time_to_live
         FROM notifications n {MAIL_JOIN}
         JOIN position_events e ON e.id = n.event_id
         LEFT JOIN notify_settings s ON s.ente = n.ente AND s.service_code = n.service_code"
    )
}

/// Ids as an SQL list (numbers: nothing to quote).
fn id_list(ids: &[i64]) -> String {
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// PUBLISHED: `stored` was just published (the invitation's trigger).
pub(crate) fn published(ente: &str, stored: &StoredPosition) -> NewEvent {
    let navs: Vec<String> = stored
        .position
        .options
        .iter()
        .filter_map(|o| o.notice_number.as_ref().map(|n| n.as_str().to_string()))
        .collect();
    let first = stored.position.options.first();
    NewEvent {
        natural_key: format!(
            "PUBLISHED:{ente}:{}:{}:{}",
            stored.position.iupd, stored.id, stored.version
        ),
        ente: ente.to_string(),
        position_id: stored.id,
        iupd: stored.position.iupd.clone(),
        notice_number: navs.first().cloned(),
        iuv: first.and_then(|o| o.iuv.clone()),
        kind: crate::events::PUBLISHED,
        payload: json!({
            "noticeNumbers": navs,
            "amountCents": stored.position.options.iter().map(|o| o.amount.0).sum::<i64>(),
            "serviceCode": stored.placement.service,
        }),
    }
}

/// Whether a position of `service` just published is told (the service
/// invites on publication): read inside the publishing transaction.
pub(crate) async fn invites(
    conn: &mut AnyConnection,
    ente: &str,
    service: Option<&str>,
) -> Result<bool> {
    let Some(service) = service else {
        return Ok(false);
    };
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM notify_settings WHERE ente = $1 AND service_code = $2
            AND enabled = 1 AND invite_on_publish = 1",
    )
    .bind(ente)
    .bind(service)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(found.is_some())
}

/// The PUBLISHED events of `stored` positions just published whose service
/// invites; `was` says whether each was published before the change.
pub(crate) async fn published_events(
    conn: &mut AnyConnection,
    ente: &str,
    changed: &[(&StoredPosition, bool)],
) -> Result<Vec<NewEvent>> {
    let mut out = Vec::new();
    let mut asked: std::collections::BTreeMap<Option<String>, bool> = Default::default();
    for (stored, was) in changed {
        if *was || !crate::events::was_published(stored) {
            continue;
        }
        let service = stored.placement.service.clone();
        let yes = match asked.get(&service) {
            Some(y) => *y,
            None => {
                let y = invites(conn, ente, service.as_deref()).await?;
                asked.insert(service, y);
                y
            }
        };
        if yes {
            out.push(published(ente, stored));
        }
    }
    Ok(out)
}

fn settings_row(
    r: &sqlx::any::AnyRow,
    keyring: &crate::secrets::Keyring,
) -> Result<NotifySettings> {
    let key: Option<String> = r.try_get("io_api_key")?;
    Ok(NotifySettings {
        ente: r.try_get("ente")?,
        service_code: r.try_get("service_code")?,
        io_api_key: key.map(|k| keyring.open(&k)).transpose()?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        invite_on_publish: r.try_get::<i64, _>("invite_on_publish")? != 0,
        reminder_days: r.try_get("reminder_days")?,
        german: r.try_get::<i64, _>("german")? != 0,
        io_not_before: opt_from_micros(r.try_get("io_not_before")?),
        time_to_live: r.try_get("time_to_live")?,
        updated_at: from_micros(r.try_get("updated_at")?),
        updated_by: r.try_get("updated_by")?,
    })
}

const SETTINGS_COLUMNS: &str = "ente, service_code, io_api_key, enabled, invite_on_publish, \
     reminder_days, german, io_not_before, time_to_live, updated_at, updated_by";

/// An option due in the reminder's window.
struct DueOption {
    position_id: i64,
    iupd: String,
    iuv: String,
    notice_number: String,
    amount: i64,
    due_date: i64,
}

impl Store {
    /// Saves a service's settings (the service must exist).
    pub async fn put_notify_settings(
        &self,
        s: &NewNotifySettings,
        now: DateTime<Utc>,
    ) -> Result<NotifySettings> {
        self.get_service(&s.ente, &s.service_code).await?;
        let mut tx = self.write_tx().await?;
        let old: Option<Option<String>> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT io_api_key FROM notify_settings WHERE ente = $1 AND service_code = $2{}",
            self.dialect.for_update()
        )))
        .bind(&s.ente)
        .bind(&s.service_code)
        .fetch_optional(&mut *tx)
        .await?;
        let key = match &s.io_api_key {
            KeyChange::Keep => old.flatten(),
            KeyChange::Set(k) => Some(self.secrets.seal(k)?),
            KeyChange::Remove => None,
        };
        sqlx::query(
            "INSERT INTO notify_settings (ente, service_code, io_api_key, enabled,
                invite_on_publish, reminder_days, german, io_not_before, updated_at, updated_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9)
             ON CONFLICT (ente, service_code) DO UPDATE SET io_api_key = $3, enabled = $4,
                invite_on_publish = $5, reminder_days = $6, german = $7, updated_at = $8,
                updated_by = $9",
        )
        .bind(&s.ente)
        .bind(&s.service_code)
        .bind(key)
        .bind(i64::from(s.enabled))
        .bind(i64::from(s.invite_on_publish))
        .bind(s.reminder_days)
        .bind(i64::from(s.german))
        .bind(to_micros(now))
        .bind(&s.updated_by)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.notify_settings(&s.ente, &s.service_code)
            .await?
            .ok_or(StoreError::NotFound("impostazioni dei messaggi"))
    }

    /// A service's settings, if any were saved.
    pub async fn notify_settings(
        &self,
        ente: &str,
        service_code: &str,
    ) -> Result<Option<NotifySettings>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SETTINGS_COLUMNS} FROM notify_settings WHERE ente = $1 AND service_code = $2"
        )))
        .bind(ente)
        .bind(service_code)
        .fetch_optional(&self.writer)
        .await?;
        row.map(|r| settings_row(&r, &self.secrets)).transpose()
    }

    /// The Ente's services' settings, by service code.
    pub async fn list_notify_settings(&self, ente: &str) -> Result<Vec<NotifySettings>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SETTINGS_COLUMNS} FROM notify_settings WHERE ente = $1 ORDER BY service_code"
        )))
        .bind(ente)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| settings_row(r, &self.secrets))
            .collect()
    }

    /// Saves a service's template for `kind` and `language` (checked by the
    /// caller); the service's settings must exist.
    #[allow(clippy::too_many_arguments)]
    pub async fn put_notify_template(
        &self,
        ente: &str,
        service_code: &str,
        kind: &str,
        language: &str,
        subject: &str,
        markdown: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if self.notify_settings(ente, service_code).await?.is_none() {
            return Err(StoreError::NotFound(
                "impostazioni dei messaggi del servizio",
            ));
        }
        sqlx::query(
            "INSERT INTO notify_templates (ente, service_code, kind, language, subject, markdown,
                updated_at, updated_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (ente, service_code, kind, language) DO UPDATE SET subject = $5,
                markdown = $6, updated_at = $7, updated_by = $8",
        )
        .bind(ente)
        .bind(service_code)
        .bind(kind)
        .bind(language)
        .bind(subject)
        .bind(markdown)
        .bind(to_micros(now))
        .bind(by)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// A service's own templates.
    pub async fn notify_templates(
        &self,
        ente: &str,
        service_code: &str,
    ) -> Result<Vec<TemplateRecord>> {
        let rows = sqlx::query(
            "SELECT kind, language, subject, markdown, updated_at, updated_by
             FROM notify_templates WHERE ente = $1 AND service_code = $2
             ORDER BY kind, language",
        )
        .bind(ente)
        .bind(service_code)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TemplateRecord {
                    kind: r.try_get("kind")?,
                    language: r.try_get("language")?,
                    subject: r.try_get("subject")?,
                    markdown: r.try_get("markdown")?,
                    updated_at: from_micros(r.try_get("updated_at")?),
                    updated_by: r.try_get("updated_by")?,
                })
            })
            .collect()
    }

    /// Writes DUE_SOON for the unpaid options of `service_code`'s payable
    /// positions due in `[from, to)`: once per option and due date,
    /// however often it runs and in however many processes (natural key).
    /// Answers how many options were in the window.
    pub async fn write_due_soon(
        &self,
        ente: &str,
        service_code: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        days_before: i64,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let rows = sqlx::query(
            "SELECT d.id, d.iupd, o.iuv, o.notice_number, o.amount, o.due_date
             FROM payment_options o JOIN debt_positions d ON d.id = o.position_id
             WHERE d.ente = $1 AND d.service_code = $2
               AND d.status IN ('PUBLISHED', 'VALID', 'PARTIALLY_PAID')
               AND o.status = 'PO_UNPAID' AND o.due_date >= $3 AND o.due_date < $4
             ORDER BY d.id, o.option_index",
        )
        .bind(ente)
        .bind(service_code)
        .bind(to_micros(from))
        .bind(to_micros(to))
        .fetch_all(&self.pool)
        .await?;
        let mut due = Vec::with_capacity(rows.len());
        for r in rows {
            due.push(DueOption {
                position_id: r.try_get(0)?,
                iupd: r.try_get(1)?,
                iuv: r.try_get(2)?,
                notice_number: r.try_get(3)?,
                amount: r.try_get(4)?,
                due_date: r.try_get(5)?,
            });
        }
        if due.is_empty() {
            return Ok(0);
        }
        let events: Vec<NewEvent> = due
            .iter()
            .map(|o| NewEvent {
                natural_key: format!("DUE_SOON:{ente}:{}:{}", o.iuv, o.due_date),
                ente: ente.to_string(),
                position_id: o.position_id,
                iupd: o.iupd.clone(),
                notice_number: Some(o.notice_number.clone()),
                iuv: Some(o.iuv.clone()),
                kind: crate::events::DUE_SOON,
                payload: json!({
                    "noticeNumber": o.notice_number,
                    "iuv": o.iuv,
                    "amountCents": o.amount,
                    "dueDate": from_micros(o.due_date).to_rfc3339(),
                    "daysBefore": days_before,
                    "serviceCode": service_code,
                }),
            })
            .collect();
        let mut tx = self.write_tx().await?;
        for chunk in events.chunks(500) {
            crate::events::write(&mut tx, chunk, now).await?;
        }
        tx.commit().await?;
        Ok(events.len())
    }

    /// Hands the events past the `notify` cursor on (at most `limit`): an
    /// IO row per event of a position whose service tells its citizens,
    /// and the cursor moved, in one transaction. Answers how many events
    /// were taken.
    pub async fn fan_out_notifications(&self, now: DateTime<Utc>, limit: u32) -> Result<usize> {
        let newer: Option<i64> =
            sqlx::query_scalar("SELECT id FROM position_events WHERE id > $1 ORDER BY id LIMIT 1")
                .bind(self.event_cursor(CONSUMER).await?)
                .fetch_optional(&self.pool)
                .await?;
        if newer.is_none() {
            return Ok(0);
        }
        let mut tx = self.write_tx().await?;
        let cursor = crate::events::cursor_for_update(&mut tx, self.dialect, CONSUMER, now).await?;
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM position_events WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(cursor)
                .bind(i64::from(limit.clamp(1, 10_000)))
                .fetch_all(&mut *tx)
                .await?;
        let Some(&upto) = ids.last() else {
            tx.rollback().await?;
            return Ok(0);
        };
        // A deleted position's events find no position: its withdrawal
        // takes the service and debtor kept when it was deleted
        // (notify_gone); the other events of a position gone are not told.
        sqlx::query(
            "INSERT INTO notifications (natural_key, event_id, ente, service_code, position_id,
                iupd, notice_number, kind, channel, recipient, status, attempts, next_attempt_at,
                created_at)
             SELECT CAST(e.id AS TEXT) || ':IO', e.id, e.ente, s.service_code, e.position_id,
                e.iupd, e.notice_number,
                CASE e.kind WHEN 'PUBLISHED' THEN 'INVITATION' WHEN 'DUE_SOON' THEN 'REMINDER'
                    WHEN 'CANCELLED' THEN 'WITHDRAWAL' ELSE 'PAID' END,
                'IO', COALESCE(d.debtor_fiscal_code, g.debtor_fiscal_code), 'PENDING', 0, $3, $3
             FROM position_events e
             LEFT JOIN debt_positions d ON d.id = e.position_id
             LEFT JOIN notify_gone g ON g.position_id = e.position_id AND e.kind = 'CANCELLED'
             JOIN notify_settings s ON s.ente = e.ente
                AND s.service_code = COALESCE(d.service_code, g.service_code) AND s.enabled = 1
             WHERE e.id > $1 AND e.id <= $2
               AND e.kind IN ('PUBLISHED', 'DUE_SOON', 'CANCELLED', 'PAID')
             ON CONFLICT (natural_key) DO NOTHING",
        )
        .bind(cursor)
        .bind(upto)
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        crate::events::advance(&mut tx, CONSUMER, upto, now).await?;
        tx.commit().await?;
        Ok(ids.len())
    }

    /// Claims up to `limit` due notifications for `lease`, recording the
    /// attempt (its number and start) before anything is sent.
    pub async fn claim_notifications(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: u32,
    ) -> Result<Vec<DueNotification>> {
        let now_us = to_micros(now);
        let skip_locked = match self.dialect {
            Dialect::Postgres => " FOR UPDATE OF n SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let mut tx = self.write_tx().await?;
        // Due rows in two reads, each walking the (status, next_attempt_at)
        // index in order: with the OR, SQLite sorted every PENDING row for
        // each claim (perf, `bench notify`). Lapsed claims first.
        let limit = i64::from(limit.clamp(1, 1000));
        let mut ids: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT n.id FROM notifications n
             WHERE n.status = 'SENDING' AND n.claimed_until < $1 AND {GATES}
             ORDER BY n.next_attempt_at, n.id LIMIT $2{skip_locked}"
        )))
        .bind(now_us)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        if (ids.len() as i64) < limit {
            let pending: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT n.id FROM notifications n
                 WHERE n.status = 'PENDING' AND n.next_attempt_at <= $1 AND {GATES}
                 ORDER BY n.next_attempt_at, n.id LIMIT $2{skip_locked}"
            )))
            .bind(now_us)
            .bind(limit - ids.len() as i64)
            .fetch_all(&mut *tx)
            .await?;
            ids.extend(pending);
        }
        if ids.is_empty() {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        // One statement for the batch, and one read of it in the same
        // transaction: on SQLite every statement is a hand-over to the
        // only writer's thread (perf, `bench notify`).
        let list = id_list(&ids);
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE notifications SET status = 'SENDING', claimed_until = $1,
                attempts = attempts + 1, attempt_started_at = $2
             WHERE id IN ({list})"
        )))
        .bind(to_micros(now + lease))
        .bind(now_us)
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{} WHERE n.id IN ({list}) ORDER BY n.next_attempt_at, n.id",
            due_select()
        )))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(|r| self.due_row(r)).collect()
    }

    fn due_row(&self, r: &sqlx::any::AnyRow) -> Result<DueNotification> {
        let payload: String = r.try_get("event_payload")?;
        let key: Option<String> = r.try_get("io_api_key")?;
        let rec = record(r)?;
        Ok(DueNotification {
            attempt: rec.attempts,
            record: rec,
            event_kind: r.try_get("event_kind")?,
            event_payload: serde_json::from_str(&payload)
                .map_err(|e| StoreError::Corrupt(format!("position_events.payload: {e}")))?,
            io_api_key: key.map(|k| self.secrets.open(&k)).transpose()?,
            german: r.try_get::<Option<i64>, _>("german")?.unwrap_or(0) != 0,
            time_to_live: r.try_get("time_to_live")?,
        })
    }

    /// Attempt `attempt` is about to call IO: written, and committed,
    /// before the call (the start of the window in which a crash may send
    /// twice). `false`: the claim is no longer this attempt's.
    pub async fn notification_sending(
        &self,
        id: i64,
        attempt: i64,
        subject: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE notifications SET attempt_started_at = $3, subject = $4, body = $5
             WHERE id = $1 AND attempts = $2 AND status = 'SENDING'",
        )
        .bind(id)
        .bind(attempt)
        .bind(to_micros(now))
        .bind(subject)
        .bind(body)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// IO took the message: SENT, with IO's id.
    pub async fn notification_sent(
        &self,
        id: i64,
        attempt: i64,
        io_message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let sent = [SentMessage {
            id,
            attempt,
            io_message_id: io_message_id.to_string(),
            subject: None,
            body: None,
        }];
        Ok(self.notifications_sent(&sent, now).await? == 1)
    }

    /// IO took these messages: each SENT, with IO's id and the text sent,
    /// in one statement (the workers' group commit: on PostgreSQL a commit
    /// a message was the outbox's limit, `bench notify`). A row whose
    /// attempt is no longer the one named is left alone; answers how many
    /// were recorded.
    pub async fn notifications_sent(
        &self,
        sent: &[SentMessage],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut recorded = 0;
        for chunk in sent.chunks(SENT_PER_STATEMENT) {
            let values = (0..chunk.len())
                .map(|i| {
                    let p = 2 + i * 5;
                    format!("(${}, ${}, ${}, ${}, ${})", p, p + 1, p + 2, p + 3, p + 4)
                })
                .collect::<Vec<_>>()
                .join(", ");
            // VALUES' columns are column1.. on both databases.
            let sql = format!(
                "UPDATE notifications SET status = 'SENT', sent_at = $1,
                    io_message_id = v.column3, subject = COALESCE(v.column4, subject),
                    body = COALESCE(v.column5, body), claimed_until = NULL, last_error = NULL
                 FROM (VALUES {values}) AS v
                 WHERE notifications.id = v.column1 AND notifications.attempts = v.column2
                   AND notifications.status = 'SENDING'"
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(to_micros(now));
            for m in chunk {
                q = q
                    .bind(m.id)
                    .bind(m.attempt)
                    .bind(m.io_message_id.clone())
                    .bind(m.subject.clone())
                    .bind(m.body.clone());
            }
            recorded += q.execute(&self.writer).await?.rows_affected();
        }
        Ok(recorded)
    }

    /// The attempt did not send: due again at `retry_at`, or, with `None`,
    /// FAILED (the dead letter). `uncounted`: the attempt is given back
    /// (IO's rate limit: waiting is no failure). `text`: the subject and
    /// body the attempt tried to send, kept for the person who looks.
    pub async fn notification_not_sent(
        &self,
        id: i64,
        attempt: i64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        uncounted: bool,
        text: Option<(&str, &str)>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE notifications SET status = $3,
                next_attempt_at = COALESCE($4, next_attempt_at), claimed_until = NULL,
                last_error = $5, attempts = attempts - $6,
                subject = COALESCE($7, subject), body = COALESCE($8, body)
             WHERE id = $1 AND attempts = $2 AND status = 'SENDING'",
        )
        .bind(id)
        .bind(attempt)
        .bind(if retry_at.is_some() { PENDING } else { FAILED })
        .bind(retry_at.map(to_micros))
        .bind(cut(error, 1000))
        .bind(i64::from(uncounted))
        .bind(text.map(|t| t.0.to_string()))
        .bind(text.map(|t| t.1.to_string()))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Nothing to send, for `reason` (a code and words, for a person).
    pub async fn notification_skipped(&self, id: i64, attempt: i64, reason: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE notifications SET status = 'SKIPPED', reason = $3, claimed_until = NULL
             WHERE id = $1 AND attempts = $2 AND status = 'SENDING'",
        )
        .bind(id)
        .bind(attempt)
        .bind(cut(reason, 500))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// IO cannot take the message (`reason`): the IO row is SKIPPED and,
    /// in the same transaction, an EMAIL row for `address` is written with
    /// its message queued in the e-mail outbox (kind `notify`, reference the
    /// EMAIL row's id). Once per event, however often it is asked.
    #[allow(clippy::too_many_arguments)]
    pub async fn notification_to_email(
        &self,
        n: &DueNotification,
        reason: &str,
        address: &str,
        subject: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let r = &n.record;
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE notifications SET status = 'SKIPPED', reason = $3, claimed_until = NULL
             WHERE id = $1 AND attempts = $2 AND status = 'SENDING'",
        )
        .bind(r.id)
        .bind(n.attempt)
        .bind(cut(reason, 500))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let key = format!("{}:EMAIL", r.event_id);
        sqlx::query(
            "INSERT INTO notifications (natural_key, event_id, ente, service_code, position_id,
                iupd, notice_number, kind, channel, recipient, status, attempts, next_attempt_at,
                subject, body, created_at, sent_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'EMAIL', $9, 'SENT', 1, $10, $11, $12,
                $10, $10)
             ON CONFLICT (natural_key) DO NOTHING",
        )
        .bind(&key)
        .bind(r.event_id)
        .bind(&r.ente)
        .bind(&r.service_code)
        .bind(r.position_id)
        .bind(&r.iupd)
        .bind(&r.notice_number)
        .bind(&r.kind)
        .bind(address)
        .bind(to_micros(now))
        .bind(subject)
        .bind(body)
        .execute(&mut *tx)
        .await?;
        let email_id: i64 =
            sqlx::query_scalar("SELECT id FROM notifications WHERE natural_key = $1")
                .bind(&key)
                .fetch_one(&mut *tx)
                .await?;
        sqlx::query(
            "INSERT INTO mail_outbox (natural_key, kind, ente, reference, recipient, status,
                attempts, next_attempt_at, created_at)
             VALUES ($1, 'notify', $2, $3, $4, 'PENDING', 0, $5, $5)
             ON CONFLICT (natural_key) DO NOTHING",
        )
        .bind(format!("notify:{email_id}"))
        .bind(&r.ente)
        .bind(email_id.to_string())
        .bind(address)
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// IO asked `service_code`'s key to wait (429) until `until`: its IO
    /// rows are not claimed before then; the other services' are.
    pub async fn pause_notify_service(
        &self,
        ente: &str,
        service_code: &str,
        until: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE notify_settings SET io_not_before = $3
             WHERE ente = $1 AND service_code = $2
               AND (io_not_before IS NULL OR io_not_before < $3)",
        )
        .bind(ente)
        .bind(service_code)
        .bind(to_micros(until))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// When the first IO pause still running at `now` ends (a service IO
    /// asked to wait): an idle worker wakes then rather than a poll later,
    /// since IO's bucket refills while it waits (`bench notify`).
    pub async fn next_notify_resume(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(io_not_before) FROM notify_settings WHERE io_not_before > $1",
        )
        .bind(to_micros(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(next.map(from_micros))
    }

    /// One notification, by id.
    pub async fn notification(&self, id: i64) -> Result<Option<NotificationRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM notifications n {MAIL_JOIN} WHERE n.id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// A position's notifications, oldest first.
    pub async fn position_notifications(
        &self,
        ente: &str,
        iupd: &str,
    ) -> Result<Vec<NotificationRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM notifications n {MAIL_JOIN}
             WHERE n.ente = $1 AND n.iupd = $2 ORDER BY n.id"
        )))
        .bind(ente)
        .bind(iupd)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    /// The Ente's notifications with `status`, newest first.
    pub async fn notifications_with_status(
        &self,
        ente: &str,
        status: &str,
        limit: u32,
    ) -> Result<Vec<NotificationRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM notifications n {MAIL_JOIN}
             WHERE n.ente = $1 AND n.status = $2 ORDER BY n.id DESC LIMIT $3"
        )))
        .bind(ente)
        .bind(status)
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    /// A FAILED notification of the Ente's, due again now, its attempts
    /// counted afresh (a person's retry).
    pub async fn retry_notification(
        &self,
        ente: &str,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE notifications SET status = 'PENDING', next_attempt_at = $3, attempts = 0
             WHERE ente = $1 AND id = $2 AND status = 'FAILED'",
        )
        .bind(ente)
        .bind(id)
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Seals again with the current key every IO key not sealed with it
    /// (see [`Store::reseal_secrets`]).
    pub async fn reseal_notify_secrets(&self) -> Result<usize> {
        let Some(current) = &self.secrets.current else {
            return Ok(0);
        };
        let prefix = current.sealed_prefix();
        let rows = sqlx::query(
            "SELECT ente, service_code, io_api_key FROM notify_settings
             WHERE io_api_key IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut resealed = 0;
        for r in rows {
            let value: String = r.try_get("io_api_key")?;
            if value.starts_with(&prefix) {
                continue;
            }
            let sealed = self.secrets.seal(&self.secrets.open(&value)?)?;
            sqlx::query(
                "UPDATE notify_settings SET io_api_key = $3 WHERE ente = $1 AND service_code = $2",
            )
            .bind(r.try_get::<String, _>("ente")?)
            .bind(r.try_get::<String, _>("service_code")?)
            .bind(sealed)
            .execute(&self.writer)
            .await?;
            resealed += 1;
        }
        Ok(resealed)
    }
}
