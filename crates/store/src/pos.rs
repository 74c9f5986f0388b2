//! PosPA (migration 0029): the Ente's card terminals, the sessions that
//! send notices to them through pagoPA's POS gateway, and the notices each
//! session holds.
//!
//! A notice is held (`open = 1`) while a session may still pay it; the
//! partial unique index on held notices is what makes a second attempt
//! impossible, whichever process or database races for it. Every change
//! of a session is a conditional update on its state (`WHERE state IN`),
//! so a callback, a receipt and the sweep that meet on one session apply
//! in some order and never undo each other.

use crate::time::{from_micros, opt_from_micros, opt_to_micros, to_micros};
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use sqlx::Row;

pub const OPENING: &str = "OPENING";
pub const AWAITING_OUTCOME: &str = "AWAITING_OUTCOME";
pub const AUTHORIZED: &str = "AUTHORIZED";
pub const PAID: &str = "PAID";
pub const DECLINED: &str = "DECLINED";
pub const REFUSED: &str = "REFUSED";
pub const CANCELLED: &str = "CANCELLED";
pub const TIMED_OUT: &str = "TIMED_OUT";
pub const REJECTED: &str = "REJECTED";
pub const FAILED: &str = "FAILED";

/// A terminal as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosTerminalRecord {
    pub ente: String,
    pub terminal_id: String,
    pub desk: Option<String>,
    pub description: String,
    /// `ACTIVE` or `DISABLED`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A notice of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosNoticeRecord {
    pub notice_number: String,
    pub iupd: String,
    pub amount: i64,
    pub open: bool,
    pub receipt_id: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
}

/// A session and its notices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosSessionRecord {
    pub id: String,
    pub ente: String,
    pub terminal_id: String,
    pub desk: String,
    pub operator: String,
    pub correlation_id: String,
    pub gateway_session: Option<String>,
    pub state: String,
    pub outcome: Option<String>,
    pub outcome_at: Option<DateTime<Utc>>,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub card_bin: Option<String>,
    pub auth_code: Option<String>,
    pub rrn: Option<String>,
    pub error_code: Option<String>,
    pub error: Option<String>,
    pub anomaly: Option<String>,
    pub anomaly_at: Option<DateTime<Utc>>,
    pub total: i64,
    pub deadline_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub notices: Vec<PosNoticeRecord>,
}

/// A session to open, with the notices it holds from now on.
#[derive(Debug, Clone)]
pub struct NewPosSession {
    pub id: String,
    pub ente: String,
    pub terminal_id: String,
    pub desk: String,
    pub operator: String,
    pub correlation_id: String,
    /// `(notice number, iupd, amount)`.
    pub notices: Vec<(String, String, i64)>,
}

/// What opening a session came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PosOpen {
    Opened,
    /// A notice is held by another session (its id).
    NoticeBusy {
        notice: String,
        session: String,
    },
    /// The terminal is already waiting for a card (that session's id).
    TerminalBusy {
        session: String,
    },
}

/// A change of a session, applied only if it is in one of the states
/// named. `None` leaves a column as it is.
#[derive(Debug, Clone, Default)]
pub struct PosChange {
    pub state: Option<&'static str>,
    pub gateway_session: Option<String>,
    pub outcome: Option<String>,
    pub outcome_at: Option<DateTime<Utc>>,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub card_bin: Option<String>,
    pub auth_code: Option<String>,
    pub rrn: Option<String>,
    pub error: Option<(String, String)>,
    pub anomaly: Option<String>,
    /// `Some(None)` clears the deadline.
    pub deadline_at: Option<Option<DateTime<Utc>>>,
    /// Let go of the session's notices (it can no longer pay them).
    pub release: bool,
}

/// A receipt matched to the session holding its notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosReceiptLink {
    pub session_id: String,
    /// The session's state after the receipt.
    pub state: String,
    pub anomaly: Option<String>,
}

const SESSION_COLUMNS: &str = "id, ente, terminal_id, desk, operator, correlation_id, gateway_session, \
     state, outcome, outcome_at, card_brand, card_last4, card_bin, auth_code, rrn, error_code, error, \
     anomaly, anomaly_at, total, deadline_at, created_at, updated_at";

fn session_row(r: &sqlx::any::AnyRow) -> Result<PosSessionRecord> {
    Ok(PosSessionRecord {
        id: r.try_get("id")?,
        ente: r.try_get("ente")?,
        terminal_id: r.try_get("terminal_id")?,
        desk: r.try_get("desk")?,
        operator: r.try_get("operator")?,
        correlation_id: r.try_get("correlation_id")?,
        gateway_session: r.try_get("gateway_session")?,
        state: r.try_get("state")?,
        outcome: r.try_get("outcome")?,
        outcome_at: opt_from_micros(r.try_get("outcome_at")?),
        card_brand: r.try_get("card_brand")?,
        card_last4: r.try_get("card_last4")?,
        card_bin: r.try_get("card_bin")?,
        auth_code: r.try_get("auth_code")?,
        rrn: r.try_get("rrn")?,
        error_code: r.try_get("error_code")?,
        error: r.try_get("error")?,
        anomaly: r.try_get("anomaly")?,
        anomaly_at: opt_from_micros(r.try_get("anomaly_at")?),
        total: r.try_get("total")?,
        deadline_at: opt_from_micros(r.try_get("deadline_at")?),
        created_at: from_micros(r.try_get("created_at")?),
        updated_at: from_micros(r.try_get("updated_at")?),
        notices: Vec::new(),
    })
}

fn terminal_row(r: &sqlx::any::AnyRow) -> Result<PosTerminalRecord> {
    Ok(PosTerminalRecord {
        ente: r.try_get("ente")?,
        terminal_id: r.try_get("terminal_id")?,
        desk: r.try_get("desk")?,
        description: r.try_get("description")?,
        status: r.try_get("status")?,
        created_at: from_micros(r.try_get("created_at")?),
        updated_at: from_micros(r.try_get("updated_at")?),
    })
}

const TERMINAL_COLUMNS: &str =
    "ente, terminal_id, desk, description, status, created_at, updated_at";

/// `IN ($a, $b, ...)` for `states`, numbered from `first`.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// The desk `code` of `ente`: its name and office, if it exists.
    pub async fn pos_desk(
        &self,
        ente: &str,
        code: &str,
    ) -> Result<Option<(String, Option<String>)>> {
        let row = sqlx::query("SELECT name, office FROM desks WHERE ente = $1 AND code = $2")
            .bind(ente)
            .bind(code)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get("name")?, r.try_get("office")?)))
            .transpose()
    }

    /// Registers a terminal of `ente`, or changes its description and desk
    /// (idempotent by its id). A terminal id another Ente registered is a
    /// [`StoreError::Conflict`]; an unknown desk [`StoreError::NotFound`].
    pub async fn pos_register_terminal(
        &self,
        ente: &str,
        terminal_id: &str,
        description: &str,
        desk: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<PosTerminalRecord> {
        let mut tx = self.write_tx().await?;
        let owner: Option<String> =
            sqlx::query_scalar("SELECT ente FROM pos_terminals WHERE terminal_id = $1")
                .bind(terminal_id)
                .fetch_optional(&mut *tx)
                .await?;
        if owner.as_deref().is_some_and(|o| o != ente) {
            return Err(StoreError::Conflict(format!(
                "il terminale {terminal_id} è registrato presso un altro ente"
            )));
        }
        if let Some(desk) = desk {
            desk_exists(&mut tx, ente, desk).await?;
            free_desk(&mut tx, ente, desk, terminal_id).await?;
        }
        if owner.is_some() {
            sqlx::query(
                "UPDATE pos_terminals SET description = $3, desk = $4, updated_at = $5
                 WHERE ente = $1 AND terminal_id = $2",
            )
            .bind(ente)
            .bind(terminal_id)
            .bind(description)
            .bind(desk)
            .bind(to_micros(now))
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "INSERT INTO pos_terminals (ente, terminal_id, desk, description, status, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, 'ACTIVE', $5, $5)",
            )
            .bind(ente)
            .bind(terminal_id)
            .bind(desk)
            .bind(description)
            .bind(to_micros(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.pos_terminal(ente, terminal_id)
            .await?
            .ok_or(StoreError::NotFound("terminale"))
    }

    /// Puts the terminal on `desk` (taking it off the desk it was on), or
    /// off every desk with `None`. A desk holds one terminal: the one it
    /// had is taken off.
    pub async fn pos_bind_terminal(
        &self,
        ente: &str,
        terminal_id: &str,
        desk: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let mine: Option<String> = sqlx::query_scalar(
            "SELECT terminal_id FROM pos_terminals WHERE ente = $1 AND terminal_id = $2",
        )
        .bind(ente)
        .bind(terminal_id)
        .fetch_optional(&mut *tx)
        .await?;
        if mine.is_none() {
            return Err(StoreError::NotFound("terminale"));
        }
        if let Some(desk) = desk {
            desk_exists(&mut tx, ente, desk).await?;
            free_desk(&mut tx, ente, desk, terminal_id).await?;
        }
        sqlx::query(
            "UPDATE pos_terminals SET desk = $3, updated_at = $4 WHERE ente = $1 AND terminal_id = $2",
        )
        .bind(ente)
        .bind(terminal_id)
        .bind(desk)
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// `ACTIVE` or `DISABLED`.
    pub async fn pos_set_terminal_status(
        &self,
        ente: &str,
        terminal_id: &str,
        status: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE pos_terminals SET status = $3, updated_at = $4 WHERE ente = $1 AND terminal_id = $2",
        )
        .bind(ente)
        .bind(terminal_id)
        .bind(status)
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("terminale"));
        }
        Ok(())
    }

    pub async fn pos_terminal(
        &self,
        ente: &str,
        terminal_id: &str,
    ) -> Result<Option<PosTerminalRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TERMINAL_COLUMNS} FROM pos_terminals WHERE ente = $1 AND terminal_id = $2"
        )))
        .bind(ente)
        .bind(terminal_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(terminal_row).transpose()
    }

    /// The Ente's terminals, by id.
    pub async fn pos_terminals(&self, ente: &str) -> Result<Vec<PosTerminalRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TERMINAL_COLUMNS} FROM pos_terminals WHERE ente = $1 ORDER BY terminal_id"
        )))
        .bind(ente)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(terminal_row).collect()
    }

    /// The terminal on a desk, if any.
    pub async fn pos_terminal_of_desk(
        &self,
        ente: &str,
        desk: &str,
    ) -> Result<Option<PosTerminalRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TERMINAL_COLUMNS} FROM pos_terminals WHERE ente = $1 AND desk = $2"
        )))
        .bind(ente)
        .bind(desk)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(terminal_row).transpose()
    }

    /// Opens a session holding its notices, in one transaction: either the
    /// session and every notice are written, or nothing is.
    pub async fn pos_open_session(&self, s: &NewPosSession, now: DateTime<Utc>) -> Result<PosOpen> {
        let mut tx = self.write_tx().await?;
        for (nav, _, _) in &s.notices {
            let holder: Option<String> = sqlx::query_scalar(
                "SELECT session_id FROM pos_session_notices
                 WHERE ente = $1 AND notice_number = $2 AND open = 1",
            )
            .bind(&s.ente)
            .bind(nav)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(session) = holder {
                return Ok(PosOpen::NoticeBusy {
                    notice: nav.clone(),
                    session,
                });
            }
        }
        let busy: Option<String> = sqlx::query_scalar(
            "SELECT id FROM pos_sessions WHERE ente = $1 AND terminal_id = $2
               AND state IN ('OPENING', 'AWAITING_OUTCOME')",
        )
        .bind(&s.ente)
        .bind(&s.terminal_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(session) = busy {
            return Ok(PosOpen::TerminalBusy { session });
        }
        let total: i64 = s.notices.iter().map(|(_, _, a)| a).sum();
        let inserted = async {
            sqlx::query(
                "INSERT INTO pos_sessions (id, ente, terminal_id, desk, operator, correlation_id,
                    state, total, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 'OPENING', $7, $8, $8)",
            )
            .bind(&s.id)
            .bind(&s.ente)
            .bind(&s.terminal_id)
            .bind(&s.desk)
            .bind(&s.operator)
            .bind(&s.correlation_id)
            .bind(total)
            .bind(to_micros(now))
            .execute(&mut *tx)
            .await?;
            for (nav, iupd, amount) in &s.notices {
                sqlx::query(
                    "INSERT INTO pos_session_notices (session_id, ente, notice_number, iupd, amount, open)
                     VALUES ($1, $2, $3, $4, $5, 1)",
                )
                .bind(&s.id)
                .bind(&s.ente)
                .bind(nav)
                .bind(iupd)
                .bind(amount)
                .execute(&mut *tx)
                .await?;
            }
            Ok::<_, StoreError>(())
        }
        .await;
        match inserted {
            Ok(()) => {}
            // Another process held a notice or the terminal between the
            // checks and the insert (PostgreSQL): the index said no.
            Err(e) if e.is_unique_violation() => {
                drop(tx);
                return self.pos_who_holds(s).await;
            }
            Err(e) => return Err(e),
        }
        tx.commit().await?;
        Ok(PosOpen::Opened)
    }

    /// Which of a session's notices, or its terminal, another session
    /// holds (the index refused the insert: now the winner is committed).
    async fn pos_who_holds(&self, s: &NewPosSession) -> Result<PosOpen> {
        for (nav, _, _) in &s.notices {
            let holder: Option<String> = sqlx::query_scalar(
                "SELECT session_id FROM pos_session_notices
                 WHERE ente = $1 AND notice_number = $2 AND open = 1",
            )
            .bind(&s.ente)
            .bind(nav)
            .fetch_optional(&self.writer)
            .await?;
            if let Some(session) = holder {
                return Ok(PosOpen::NoticeBusy {
                    notice: nav.clone(),
                    session,
                });
            }
        }
        let busy: Option<String> = sqlx::query_scalar(
            "SELECT id FROM pos_sessions WHERE ente = $1 AND terminal_id = $2
               AND state IN ('OPENING', 'AWAITING_OUTCOME')",
        )
        .bind(&s.ente)
        .bind(&s.terminal_id)
        .fetch_optional(&self.writer)
        .await?;
        Ok(PosOpen::TerminalBusy {
            session: busy.unwrap_or_default(),
        })
    }

    /// Renames a session's notices `(placeholder, notice number)`: the
    /// positions the gateway created, once it names them.
    pub async fn pos_name_notices(
        &self,
        session_id: &str,
        names: &[(String, String)],
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        for (placeholder, nav) in names {
            sqlx::query(
                "UPDATE pos_session_notices SET notice_number = $3
                 WHERE session_id = $1 AND notice_number = $2",
            )
            .bind(session_id)
            .bind(placeholder)
            .bind(nav)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Applies `change` if the session is in one of `from`; `false` if it
    /// was not (someone else moved it first).
    pub async fn pos_change(
        &self,
        id: &str,
        from: &[&str],
        change: &PosChange,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let sql = format!(
            "UPDATE pos_sessions SET
                state = COALESCE($2, state),
                gateway_session = COALESCE($3, gateway_session),
                outcome = COALESCE($4, outcome),
                outcome_at = COALESCE($5, outcome_at),
                card_brand = COALESCE($6, card_brand),
                card_last4 = COALESCE($7, card_last4),
                card_bin = COALESCE($8, card_bin),
                auth_code = COALESCE($9, auth_code),
                rrn = COALESCE($10, rrn),
                error_code = COALESCE($11, error_code),
                error = COALESCE($12, error),
                anomaly = COALESCE($13, anomaly),
                anomaly_at = CASE WHEN $13 IS NULL THEN anomaly_at ELSE $14 END,
                deadline_at = CASE WHEN $15 = 1 THEN $16 ELSE deadline_at END,
                updated_at = $14
             WHERE id = $1 AND state IN ({})",
            placeholders(17, from.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(change.state)
            .bind(change.gateway_session.clone())
            .bind(change.outcome.clone())
            .bind(opt_to_micros(change.outcome_at))
            .bind(change.card_brand.clone())
            .bind(change.card_last4.clone())
            .bind(change.card_bin.clone())
            .bind(change.auth_code.clone())
            .bind(change.rrn.clone())
            .bind(change.error.as_ref().map(|e| e.0.clone()))
            .bind(change.error.as_ref().map(|e| e.1.clone()))
            .bind(change.anomaly.clone())
            .bind(to_micros(now))
            .bind(i64::from(change.deadline_at.is_some()))
            .bind(change.deadline_at.flatten().map(to_micros));
        for state in from {
            q = q.bind(*state);
        }
        let done = q.execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        if change.release {
            sqlx::query("UPDATE pos_session_notices SET open = 0 WHERE session_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// A session of `ente` with its notices.
    pub async fn pos_session(&self, ente: &str, id: &str) -> Result<Option<PosSessionRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM pos_sessions WHERE ente = $1 AND id = $2"
        )))
        .bind(ente)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        self.with_notices(row.as_ref().map(session_row).transpose()?)
            .await
    }

    /// The session the gateway knows as `gateway_session` (its callbacks
    /// name no Ente: the id is global).
    pub async fn pos_session_by_gateway(
        &self,
        gateway_session: &str,
    ) -> Result<Option<PosSessionRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM pos_sessions WHERE gateway_session = $1"
        )))
        .bind(gateway_session)
        .fetch_optional(&self.pool)
        .await?;
        self.with_notices(row.as_ref().map(session_row).transpose()?)
            .await
    }

    async fn with_notices(
        &self,
        session: Option<PosSessionRecord>,
    ) -> Result<Option<PosSessionRecord>> {
        let Some(mut s) = session else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT notice_number, iupd, amount, open, receipt_id, paid_at
             FROM pos_session_notices WHERE session_id = $1 ORDER BY notice_number",
        )
        .bind(&s.id)
        .fetch_all(&self.pool)
        .await?;
        s.notices = rows
            .iter()
            .map(|r| {
                Ok(PosNoticeRecord {
                    notice_number: r.try_get("notice_number")?,
                    iupd: r.try_get("iupd")?,
                    amount: r.try_get("amount")?,
                    open: r.try_get::<i64, _>("open")? == 1,
                    receipt_id: r.try_get("receipt_id")?,
                    paid_at: opt_from_micros(r.try_get("paid_at")?),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Some(s))
    }

    /// The sessions of a desk made in `[from, to)`, newest first.
    pub async fn pos_sessions_of_desk(
        &self,
        ente: &str,
        desk: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<PosSessionRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM pos_sessions
             WHERE ente = $1 AND desk = $2 AND created_at >= $3 AND created_at < $4
             ORDER BY created_at DESC, id LIMIT 1000"
        )))
        .bind(ente)
        .bind(desk)
        .bind(to_micros(from))
        .bind(to_micros(to))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            if let Some(s) = self.with_notices(Some(session_row(r)?)).await? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// The desk's sessions flagged for a person (`anomalies`) that still
    /// hold their notices, whatever day they began, oldest first: until
    /// someone releases them their notices cannot be paid again.
    pub async fn pos_flagged_sessions(
        &self,
        ente: &str,
        desk: &str,
        anomalies: &[&str],
    ) -> Result<Vec<PosSessionRecord>> {
        let held = [AUTHORIZED, AWAITING_OUTCOME, OPENING];
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM pos_sessions
             WHERE ente = $1 AND desk = $2 AND anomaly IN ({}) AND state IN ({})
             ORDER BY created_at, id LIMIT 100",
            placeholders(3, anomalies.len()),
            placeholders(3 + anomalies.len(), held.len()),
        )))
        .bind(ente)
        .bind(desk);
        let rows = anomalies
            .iter()
            .chain(held.iter())
            .fold(rows, |q, v| q.bind(*v))
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            if let Some(s) = self.with_notices(Some(session_row(r)?)).await? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Sessions of every Ente whose deadline has come (the sweep's work).
    /// Crosses Enti: called only by incasso's own job.
    pub async fn pos_due_sessions(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PosSessionRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM pos_sessions
             WHERE deadline_at IS NOT NULL AND deadline_at <= $1
             ORDER BY deadline_at LIMIT $2"
        )))
        .bind(to_micros(now))
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            if let Some(s) = self.with_notices(Some(session_row(r)?)).await? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// An OK receipt of the Ente's own notice stored since `since`: its id
    /// and payment time (for the sweep, which links receipts whose link
    /// was lost between the receipt's commit and the session's update).
    pub async fn pos_stored_receipt(
        &self,
        ente: &str,
        notice_number: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<(String, Option<DateTime<Utc>>)>> {
        let row = sqlx::query(
            "SELECT receipt_id, payment_date_time FROM receipts
             WHERE ente = $1 AND owner_ente = $1 AND notice_number = $2 AND outcome = 'OK'
               AND received_at >= $3
             ORDER BY received_at LIMIT 1",
        )
        .bind(ente)
        .bind(notice_number)
        .bind(to_micros(since))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok((
                r.try_get("receipt_id")?,
                opt_from_micros(r.try_get("payment_date_time")?),
            ))
        })
        .transpose()
    }

    /// Links a receipt to the session holding its notice, if any: the
    /// notice is marked paid, and once all of them are, the session is
    /// `PAID` and lets them go. A receipt for a session that timed out
    /// flags `RECEIPT_AFTER_TIMEOUT`: money came where none was expected.
    pub async fn pos_link_receipt(
        &self,
        ente: &str,
        notice_number: &str,
        receipt_id: &str,
        paid_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<PosReceiptLink>> {
        // Nearly every receipt is for a notice no terminal holds: a plain
        // read tells, without a write transaction (on SQLite, the one
        // writer's lock) for each of them. A session opened after this
        // read and before the receipt is found by the sweep.
        let any_held: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM pos_session_notices
             WHERE ente = $1 AND notice_number = $2 AND open = 1 AND receipt_id IS NULL",
        )
        .bind(ente)
        .bind(notice_number)
        .fetch_optional(&self.pool)
        .await?;
        if any_held.is_none() {
            return Ok(None);
        }
        let mut tx = self.write_tx().await?;
        let held: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT session_id FROM pos_session_notices
             WHERE ente = $1 AND notice_number = $2 AND open = 1 AND receipt_id IS NULL{}",
            self.dialect.for_update()
        )))
        .bind(ente)
        .bind(notice_number)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(session_id) = held else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE pos_session_notices SET receipt_id = $3, paid_at = $4
             WHERE session_id = $1 AND notice_number = $2",
        )
        .bind(&session_id)
        .bind(notice_number)
        .bind(receipt_id)
        .bind(to_micros(paid_at))
        .execute(&mut *tx)
        .await?;
        let unpaid: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM pos_session_notices
             WHERE session_id = $1 AND receipt_id IS NULL",
        )
        .bind(&session_id)
        .fetch_one(&mut *tx)
        .await?;
        let row = sqlx::query("SELECT state, anomaly FROM pos_sessions WHERE id = $1")
            .bind(&session_id)
            .fetch_one(&mut *tx)
            .await?;
        let state: String = row.try_get("state")?;
        let mut anomaly: Option<String> = row.try_get("anomaly")?;
        if state == TIMED_OUT || state == FAILED {
            anomaly = Some("RECEIPT_AFTER_TIMEOUT".into());
        } else if anomaly.as_deref() == Some("RECEIPT_MISSING") && unpaid == 0 {
            // The receipt was late, not lost: nothing left to look at.
            anomaly = None;
        }
        let new_state = if unpaid == 0 { PAID } else { state.as_str() };
        sqlx::query(
            "UPDATE pos_sessions SET state = $2, anomaly = $3,
                anomaly_at = CASE WHEN $3 IS NULL THEN NULL ELSE COALESCE(anomaly_at, $4) END,
                deadline_at = CASE WHEN $5 = 1 THEN NULL ELSE deadline_at END,
                updated_at = $4
             WHERE id = $1",
        )
        .bind(&session_id)
        .bind(new_state)
        .bind(anomaly.clone())
        .bind(to_micros(now))
        .bind(i64::from(unpaid == 0))
        .execute(&mut *tx)
        .await?;
        if unpaid == 0 {
            sqlx::query("UPDATE pos_session_notices SET open = 0 WHERE session_id = $1")
                .bind(&session_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Some(PosReceiptLink {
            session_id,
            state: new_state.to_string(),
            anomaly,
        }))
    }
}

async fn desk_exists(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ente: &str,
    desk: &str,
) -> Result<()> {
    let found: Option<String> =
        sqlx::query_scalar("SELECT code FROM desks WHERE ente = $1 AND code = $2")
            .bind(ente)
            .bind(desk)
            .fetch_optional(&mut **tx)
            .await?;
    found.map(|_| ()).ok_or(StoreError::NotFound("sportello"))
}

/// A desk holds one terminal: another one on it is taken off.
async fn free_desk(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ente: &str,
    desk: &str,
    keep: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE pos_terminals SET desk = NULL WHERE ente = $1 AND desk = $2 AND terminal_id <> $3",
    )
    .bind(ente)
    .bind(desk)
    .bind(keep)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
