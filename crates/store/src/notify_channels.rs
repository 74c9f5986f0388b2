//! Notifications' triggers and channels (issue 19, migration 0032): the
//! PUBLISHED events of a supply's positions, what a deleted position's
//! withdrawal needs, each service's time to live, and each Ente's e-mail
//! templates.

use crate::batch::Stmt;
use crate::positions::{Placement, StoredPosition};
use crate::time::{from_micros, to_micros};
use crate::{Dialect, Result, Store, StoreError};
use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};

/// The kinds of e-mail an Ente may word: the four messages, and the
/// citizen portal's receipt.
pub const EMAIL_KINDS: [&str; 5] = ["INVITATION", "REMINDER", "WITHDRAWAL", "PAID", "RECEIPT"];

/// An Ente's own e-mail text for a kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailTemplateRecord {
    pub ente: String,
    pub kind: String,
    pub subject: String,
    pub body: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// Whether the Ente tells anyone about positions (an enabled service): a
/// supply's commit writes no PUBLISHED events otherwise, and spends
/// nothing looking for them.
pub(crate) fn any_enabled(ente: &str) -> Stmt {
    Stmt::new(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM notify_settings WHERE ente = $1 AND enabled = 1",
    )
    .bind(ente.to_string())
}

/// The PUBLISHED events of the positions supply `supply_id` wrote since
/// position id `after` (this transaction's: ids only grow), as the
/// single-position path writes them (`notify::published`, same natural
/// key), in one statement: a row's `notify_invite` (its layout's
/// `notify.invite` column) asks for or refuses the invitation, else the
/// service's "invite on publication" decides.
pub(crate) fn published_by_supply(
    dialect: Dialect,
    ente: &str,
    supply_id: i64,
    after: i64,
    now: DateTime<Utc>,
) -> Stmt {
    // Notice numbers are digits and the service code is escaped: the JSON
    // is built by concatenation, which both dialects speak alike.
    let navs = match dialect {
        Dialect::Postgres => {
            "(SELECT string_agg('\"' || a.notice_number || '\"', ',' ORDER BY a.option_index)
              FROM payment_options a WHERE a.position_id = d.id)"
        }
        Dialect::Sqlite => {
            "(SELECT group_concat(x, ',') FROM (SELECT '\"' || a.notice_number || '\"' AS x
              FROM payment_options a WHERE a.position_id = d.id ORDER BY a.option_index))"
        }
    };
    Stmt::new(format!(
        "INSERT INTO position_event_rows (natural_key, ente, position_id, iupd, notice_number, iuv,
            kind, payload, created_at)
         SELECT 'PUBLISHED:' || d.ente || ':' || d.iupd || ':' || CAST(d.id AS TEXT) || ':'
                || CAST(d.version AS TEXT),
            d.ente, d.id, d.iupd, o.notice_number, o.iuv, 'PUBLISHED',
            '{{\"noticeNumbers\":[' || COALESCE({navs}, '') || '],\"amountCents\":'
                || CAST(COALESCE((SELECT SUM(b.amount) FROM payment_options b
                    WHERE b.position_id = d.id), 0) AS TEXT)
                || ',\"serviceCode\":\"'
                || REPLACE(REPLACE(d.service_code, '\\', '\\\\'), '\"', '\\\"')
                || '\",\"supplyId\":' || CAST(d.supply_id AS TEXT) || '}}',
            $4
         FROM debt_positions d
         JOIN notify_settings s ON s.ente = d.ente AND s.service_code = d.service_code
            AND s.enabled = 1
         LEFT JOIN payment_options o ON o.position_id = d.id AND o.option_index = 0
         WHERE d.ente = $1 AND d.id > $2 AND d.supply_id = $3
           AND d.status IN ('PUBLISHED', 'VALID')
           AND COALESCE(d.notify_invite, s.invite_on_publish) = 1
         ORDER BY d.id
         ON CONFLICT (natural_key) DO NOTHING"
    ))
    .bind(ente.to_string())
    .bind(after)
    .bind(supply_id)
    .bind(to_micros(now))
}

/// The highest position id there is: a supply's PUBLISHED events look at
/// the positions after it.
pub(crate) fn last_position_id() -> Stmt {
    Stmt::new("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM debt_positions")
}

/// Records what rows of a supply said of their invitation (`notify_invite`
/// 1 or 0), once the rows are written.
pub(crate) fn invite_statements(ente: &str, invites: &[(String, bool)]) -> Vec<Stmt> {
    let mut out = Vec::new();
    for value in [true, false] {
        let keys: Vec<&String> = invites
            .iter()
            .filter(|(_, v)| *v == value)
            .map(|(k, _)| k)
            .collect();
        for chunk in keys.chunks(500) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
            let mut s = Stmt::new(format!(
                "UPDATE debt_positions SET notify_invite = $2 WHERE ente = $1 AND iupd IN ({})",
                marks.join(", ")
            ))
            .bind(ente.to_string())
            .bind(i64::from(value));
            for k in chunk {
                s = s.bind((*k).clone());
            }
            out.push(s);
        }
    }
    out
}

/// A position replaced by a supply was published before: its new row is
/// no news (as the single-position path's replacement), unless the row
/// asks for an invitation (written after this).
pub(crate) fn no_invite_for_replacement(ente: &str, iupd: &str) -> Stmt {
    Stmt::new(
        "UPDATE debt_positions SET notify_invite = 0
         WHERE ente = $1 AND iupd = $2 AND notify_invite IS NULL",
    )
    .bind(ente.to_string())
    .bind(iupd.to_string())
}

/// Keeps what the withdrawal of `stored`, being deleted, needs (the
/// position as it was), when its service tells its citizens: inside the
/// deleting transaction. Once per position.
pub(crate) async fn keep_gone(
    conn: &mut AnyConnection,
    ente: &str,
    stored: &StoredPosition,
    now: DateTime<Utc>,
) -> Result<()> {
    let Some(service) = stored.placement.service.as_deref() else {
        return Ok(());
    };
    let json = serde_json::to_string(&stored.position)
        .map_err(|e| StoreError::Corrupt(format!("position: {e}")))?;
    sqlx::query(
        "INSERT INTO notify_gone (position_id, ente, service_code, debtor_fiscal_code,
            position_json, created_at)
         SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM notify_settings
            WHERE ente = $2 AND service_code = $3 AND enabled = 1)
         ON CONFLICT (position_id) DO NOTHING",
    )
    .bind(stored.id)
    .bind(ente)
    .bind(service)
    .bind(&stored.position.debtor.fiscal_code)
    .bind(json)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// A deleted position as it was when deleted, if its withdrawal was
    /// kept ([`keep_gone`]).
    pub async fn gone_position(&self, position_id: i64) -> Result<Option<StoredPosition>> {
        let row = sqlx::query(
            "SELECT service_code, position_json FROM notify_gone WHERE position_id = $1",
        )
        .bind(position_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let json: String = r.try_get("position_json")?;
        let position = serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("notify_gone.position_json: {e}")))?;
        Ok(Some(StoredPosition {
            id: position_id,
            version: 0,
            position,
            placement: Placement {
                service: Some(r.try_get("service_code")?),
                office: None,
            },
        }))
    }

    /// Sets (`Some`, 3600-604800 seconds, checked by the caller) or clears
    /// a service's time to live; its settings must exist.
    pub async fn put_notify_time_to_live(
        &self,
        ente: &str,
        service_code: &str,
        seconds: Option<i64>,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE notify_settings SET time_to_live = $3, updated_at = $4, updated_by = $5
             WHERE ente = $1 AND service_code = $2",
        )
        .bind(ente)
        .bind(service_code)
        .bind(seconds)
        .bind(to_micros(now))
        .bind(by)
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("impostazioni dei messaggi"));
        }
        Ok(())
    }

    /// A service's time to live, if set.
    pub async fn notify_time_to_live(&self, ente: &str, service_code: &str) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar::<_, Option<i64>>(
            "SELECT time_to_live FROM notify_settings WHERE ente = $1 AND service_code = $2",
        )
        .bind(ente)
        .bind(service_code)
        .fetch_optional(&self.pool)
        .await?
        .flatten())
    }

    /// Saves an Ente's e-mail text for `kind` (checked by the caller).
    pub async fn put_email_template(
        &self,
        ente: &str,
        kind: &str,
        subject: &str,
        body: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO email_templates (ente, kind, subject, body, updated_at, updated_by)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (ente, kind) DO UPDATE SET subject = $3, body = $4, updated_at = $5,
                updated_by = $6",
        )
        .bind(ente)
        .bind(kind)
        .bind(subject)
        .bind(body)
        .bind(to_micros(now))
        .bind(by)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Removes an Ente's e-mail text for `kind` (incasso's default again).
    pub async fn delete_email_template(&self, ente: &str, kind: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM email_templates WHERE ente = $1 AND kind = $2")
            .bind(ente)
            .bind(kind)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// An Ente's own e-mail texts, by kind.
    pub async fn email_templates(&self, ente: &str) -> Result<Vec<EmailTemplateRecord>> {
        let rows = sqlx::query(
            "SELECT ente, kind, subject, body, updated_at, updated_by FROM email_templates
             WHERE ente = $1 ORDER BY kind",
        )
        .bind(ente)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EmailTemplateRecord {
                    ente: r.try_get("ente")?,
                    kind: r.try_get("kind")?,
                    subject: r.try_get("subject")?,
                    body: r.try_get("body")?,
                    updated_at: from_micros(r.try_get("updated_at")?),
                    updated_by: r.try_get("updated_by")?,
                })
            })
            .collect()
    }

    /// A position event's payload, by id.
    pub async fn event_payload(&self, id: i64) -> Result<Option<serde_json::Value>> {
        let payload: Option<String> =
            sqlx::query_scalar("SELECT payload FROM position_events WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        payload
            .map(|p| {
                serde_json::from_str(&p)
                    .map_err(|e| StoreError::Corrupt(format!("position_events.payload: {e}")))
            })
            .transpose()
    }
}
