//! The Sportello Digitale's desks (migration 0025) and their work
//! (migration 0026): the positions issued at each desk, and each desk's
//! closed days.
//!
//! Writes are keyed by their natural key and inserted with `ON CONFLICT DO
//! NOTHING`: a position is recorded at one desk once (a double click, a
//! retry), a day is closed once, and the second closing reads back the
//! first one's report, unchanged.

use crate::time::{from_micros, opt_from_micros, to_micros};
use crate::{Result, Store};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// A desk of an Ente.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskRecord {
    pub ente: String,
    /// The Ente's code for it (the POS gateway's `workstation`).
    pub code: String,
    pub name: String,
    /// The office it belongs to, if any.
    pub office: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A position issued at a desk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedRecord {
    pub ente: String,
    pub desk: String,
    pub iupd: String,
    pub notice_number: String,
    pub service_code: String,
    pub amount: i64,
    /// The clerk's username.
    pub operator: String,
    /// The desk's day it belongs to (`YYYY-MM-DD`, in Italy).
    pub day: String,
    pub issued_at: DateTime<Utc>,
}

/// A position issued at a desk, with what its position says now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedRow {
    pub issued: IssuedRecord,
    pub debtor_fiscal_code: String,
    pub debtor_name: String,
    /// The payment option's stored status (`PO_UNPAID`, `PO_PAID`...), if
    /// the position is still there.
    pub option_status: Option<String>,
}

/// A payment collected: an OK receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectedRow {
    pub receipt_id: String,
    pub notice_number: String,
    pub iuv: String,
    pub amount: i64,
    pub psp_name: String,
    pub payment_method: Option<String>,
    /// When it was paid (the receipt's date, else when it arrived).
    pub paid_at: DateTime<Utc>,
}

/// A desk's closed day: who closed it, when, its totals and its report
/// (JSON, as the application wrote it at closing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskDayRecord {
    pub ente: String,
    pub desk: String,
    pub day: String,
    pub closed_by: String,
    pub closed_at: DateTime<Utc>,
    pub issued_count: i64,
    pub issued_total: i64,
    pub collected_count: i64,
    pub collected_total: i64,
    pub report: String,
}

fn desk(r: &sqlx::any::AnyRow) -> Result<DeskRecord> {
    Ok(DeskRecord {
        ente: r.try_get("ente")?,
        code: r.try_get("code")?,
        name: r.try_get("name")?,
        office: r.try_get("office")?,
        created_at: from_micros(r.try_get("created_at")?),
    })
}

const ISSUED_COLUMNS: &str = "d.ente, d.desk, d.iupd, d.notice_number, d.service_code, d.amount, \
     d.operator, d.day, d.issued_at";

fn issued(r: &sqlx::any::AnyRow) -> Result<IssuedRecord> {
    Ok(IssuedRecord {
        ente: r.try_get("ente")?,
        desk: r.try_get("desk")?,
        iupd: r.try_get("iupd")?,
        notice_number: r.try_get("notice_number")?,
        service_code: r.try_get("service_code")?,
        amount: r.try_get("amount")?,
        operator: r.try_get("operator")?,
        day: r.try_get("day")?,
        issued_at: from_micros(r.try_get("issued_at")?),
    })
}

fn day_record(r: &sqlx::any::AnyRow) -> Result<DeskDayRecord> {
    Ok(DeskDayRecord {
        ente: r.try_get("ente")?,
        desk: r.try_get("desk")?,
        day: r.try_get("day")?,
        closed_by: r.try_get("closed_by")?,
        closed_at: from_micros(r.try_get("closed_at")?),
        issued_count: r.try_get("issued_count")?,
        issued_total: r.try_get("issued_total")?,
        collected_count: r.try_get("collected_count")?,
        collected_total: r.try_get("collected_total")?,
        report: r.try_get("report")?,
    })
}

fn collected(r: &sqlx::any::AnyRow) -> Result<CollectedRow> {
    let paid: Option<i64> = r.try_get("payment_date_time")?;
    let received: i64 = r.try_get("received_at")?;
    Ok(CollectedRow {
        receipt_id: r.try_get("receipt_id")?,
        notice_number: r.try_get("notice_number")?,
        iuv: r.try_get("iuv")?,
        amount: r.try_get("amount")?,
        psp_name: r.try_get("psp_name")?,
        payment_method: r.try_get("payment_method")?,
        paid_at: opt_from_micros(paid).unwrap_or_else(|| from_micros(received)),
    })
}

impl Store {
    /// Adds a desk; `false` when the Ente has one with that code already
    /// (nothing changes then).
    pub async fn create_desk(&self, d: &DeskRecord) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO desks (ente, code, name, office, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (ente, code) DO NOTHING",
        )
        .bind(&d.ente)
        .bind(&d.code)
        .bind(&d.name)
        .bind(&d.office)
        .bind(to_micros(d.created_at))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The Ente's desks, by code.
    pub async fn list_desks(&self, ente: &str) -> Result<Vec<DeskRecord>> {
        let rows = sqlx::query(
            "SELECT ente, code, name, office, created_at FROM desks
             WHERE ente = $1 ORDER BY code",
        )
        .bind(ente)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(desk).collect()
    }

    /// The Ente's desk `code`, if there is one.
    pub async fn get_desk(&self, ente: &str, code: &str) -> Result<Option<DeskRecord>> {
        let row = sqlx::query(
            "SELECT ente, code, name, office, created_at FROM desks
             WHERE ente = $1 AND code = $2",
        )
        .bind(ente)
        .bind(code)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(desk).transpose()
    }

    /// Records a position as issued at a desk; `false` when it was
    /// recorded before (at whichever desk: the first record stands).
    pub async fn record_desk_position(&self, i: &IssuedRecord) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO desk_positions (ente, desk, iupd, notice_number, service_code, amount,
                operator, day, issued_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (ente, iupd) DO NOTHING",
        )
        .bind(&i.ente)
        .bind(&i.desk)
        .bind(&i.iupd)
        .bind(&i.notice_number)
        .bind(&i.service_code)
        .bind(i.amount)
        .bind(&i.operator)
        .bind(&i.day)
        .bind(to_micros(i.issued_at))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Where and by whom position `iupd` was issued, if at a desk.
    pub async fn desk_position(&self, ente: &str, iupd: &str) -> Result<Option<IssuedRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ISSUED_COLUMNS} FROM desk_positions d WHERE d.ente = $1 AND d.iupd = $2"
        )))
        .bind(ente)
        .bind(iupd)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(issued).transpose()
    }

    /// What was issued at desk `desk` on `day`, in order, with each
    /// position's debtor and its notice's status now.
    pub async fn desk_issued(&self, ente: &str, desk: &str, day: &str) -> Result<Vec<IssuedRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ISSUED_COLUMNS}, p.debtor_fiscal_code, p.debtor_name, o.status AS option_status
             FROM desk_positions d
             LEFT JOIN debt_positions p ON p.ente = d.ente AND p.iupd = d.iupd
             LEFT JOIN payment_options o ON o.ente = d.ente AND o.notice_number = d.notice_number
             WHERE d.ente = $1 AND d.desk = $2 AND d.day = $3
             ORDER BY d.issued_at, d.iupd"
        )))
        .bind(ente)
        .bind(desk)
        .bind(day)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(IssuedRow {
                    issued: issued(r)?,
                    debtor_fiscal_code: r
                        .try_get::<Option<String>, _>("debtor_fiscal_code")?
                        .unwrap_or_default(),
                    debtor_name: r
                        .try_get::<Option<String>, _>("debtor_name")?
                        .unwrap_or_default(),
                    option_status: r.try_get("option_status")?,
                })
            })
            .collect()
    }

    /// The OK receipts paid in `[from, to)` of notices issued at desk
    /// `desk` (on any day), oldest first.
    pub async fn desk_collected(
        &self,
        ente: &str,
        desk: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<CollectedRow>> {
        let rows = sqlx::query(
            "SELECT r.receipt_id, r.notice_number, r.iuv, r.amount, r.psp_name, r.payment_method,
                r.payment_date_time, r.received_at
             FROM receipts r
             JOIN desk_positions d ON d.ente = r.ente AND d.notice_number = r.notice_number
             WHERE r.ente = $1 AND d.desk = $2 AND r.outcome = 'OK'
               AND COALESCE(r.payment_date_time, r.received_at) >= $3
               AND COALESCE(r.payment_date_time, r.received_at) < $4
             ORDER BY COALESCE(r.payment_date_time, r.received_at), r.receipt_id",
        )
        .bind(ente)
        .bind(desk)
        .bind(to_micros(from))
        .bind(to_micros(to))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(collected).collect()
    }

    /// The OK receipts of notice `nav` paid in `[from, to)`.
    pub async fn notice_collected(
        &self,
        ente: &str,
        nav: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<CollectedRow>> {
        let rows = sqlx::query(
            "SELECT r.receipt_id, r.notice_number, r.iuv, r.amount, r.psp_name, r.payment_method,
                r.payment_date_time, r.received_at
             FROM receipts r
             WHERE r.ente = $1 AND r.notice_number = $2 AND r.outcome = 'OK'
               AND COALESCE(r.payment_date_time, r.received_at) >= $3
               AND COALESCE(r.payment_date_time, r.received_at) < $4
             ORDER BY COALESCE(r.payment_date_time, r.received_at), r.receipt_id",
        )
        .bind(ente)
        .bind(nav)
        .bind(to_micros(from))
        .bind(to_micros(to))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(collected).collect()
    }

    /// Desk `desk`'s day `day`, if it was closed.
    pub async fn desk_day(
        &self,
        ente: &str,
        desk: &str,
        day: &str,
    ) -> Result<Option<DeskDayRecord>> {
        let row = sqlx::query(
            "SELECT ente, desk, day, closed_by, closed_at, issued_count, issued_total,
                collected_count, collected_total, report
             FROM desk_days WHERE ente = $1 AND desk = $2 AND day = $3",
        )
        .bind(ente)
        .bind(desk)
        .bind(day)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(day_record).transpose()
    }

    /// Closes a desk's day with its report, unless it was closed before:
    /// answers the closing that stands (the first), and whether it is
    /// this one.
    pub async fn close_desk_day(&self, d: &DeskDayRecord) -> Result<(DeskDayRecord, bool)> {
        let done = sqlx::query(
            "INSERT INTO desk_days (ente, desk, day, closed_by, closed_at, issued_count,
                issued_total, collected_count, collected_total, report)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (ente, desk, day) DO NOTHING",
        )
        .bind(&d.ente)
        .bind(&d.desk)
        .bind(&d.day)
        .bind(&d.closed_by)
        .bind(to_micros(d.closed_at))
        .bind(d.issued_count)
        .bind(d.issued_total)
        .bind(d.collected_count)
        .bind(d.collected_total)
        .bind(&d.report)
        .execute(&self.writer)
        .await?;
        let row = sqlx::query(
            "SELECT ente, desk, day, closed_by, closed_at, issued_count, issued_total,
                collected_count, collected_total, report
             FROM desk_days WHERE ente = $1 AND desk = $2 AND day = $3",
        )
        .bind(&d.ente)
        .bind(&d.desk)
        .bind(&d.day)
        .fetch_one(&self.writer)
        .await?;
        Ok((day_record(&row)?, done.rows_affected() == 1))
    }
}
