//! The e-mail outbox (migration 0023): messages to send, each once.
//!
//! A message is a row named by its natural key, inserted with `ON CONFLICT
//! DO NOTHING`, so asking twice (a receipt the Node sends again, two
//! processes storing it) queues it once. Workers claim due rows with a
//! conditional `UPDATE ... WHERE status = 'PENDING'`: whoever changes the
//! row owns it, on SQLite and PostgreSQL alike, with no row lock held
//! while the SMTP conversation runs. A claim is a lease: a worker that dies
//! mid-send leaves the row `SENDING` until `claimed_until`, then any worker
//! takes it again (the attempt is counted, so a message that kills its
//! worker cannot be retried forever either).

use crate::time::{from_micros, opt_from_micros, to_micros};
use crate::{Result, Store};
use chrono::{DateTime, Utc};
use sqlx::Row;

pub const PENDING: &str = "PENDING";
pub const SENDING: &str = "SENDING";
pub const SENT: &str = "SENT";
pub const FAILED: &str = "FAILED";

/// A message to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMail {
    /// Unique: the same key is queued once, ever.
    pub natural_key: String,
    /// What it is (`receipt`): how the worker builds it.
    pub kind: String,
    pub ente: String,
    /// What it is about, for its kind (a receipt's id).
    pub reference: String,
    pub recipient: String,
}

/// A queued message and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRecord {
    pub id: i64,
    pub natural_key: String,
    pub kind: String,
    pub ente: String,
    pub reference: String,
    pub recipient: String,
    pub status: String,
    /// Attempts made so far, the one being made included.
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, natural_key, kind, ente, reference, recipient, status, \
     CAST(attempts AS BIGINT) AS attempts, next_attempt_at, last_error, created_at, sent_at";

fn record(r: &sqlx::any::AnyRow) -> Result<MailRecord> {
    Ok(MailRecord {
        id: r.try_get("id")?,
        natural_key: r.try_get("natural_key")?,
        kind: r.try_get("kind")?,
        ente: r.try_get("ente")?,
        reference: r.try_get("reference")?,
        recipient: r.try_get("recipient")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: from_micros(r.try_get("next_attempt_at")?),
        last_error: r.try_get("last_error")?,
        created_at: from_micros(r.try_get("created_at")?),
        sent_at: opt_from_micros(r.try_get("sent_at")?),
    })
}

impl Store {
    /// Queues a message, due now; `false` when its key was queued before
    /// (nothing changes then).
    pub async fn enqueue_mail(&self, m: &NewMail, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO mail_outbox (natural_key, kind, ente, reference, recipient, status,
                attempts, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, 'PENDING', 0, $6, $6)
             ON CONFLICT (natural_key) DO NOTHING",
        )
        .bind(&m.natural_key)
        .bind(&m.kind)
        .bind(&m.ente)
        .bind(&m.reference)
        .bind(&m.recipient)
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Claims up to `limit` due messages for `lease`: each is returned to
    /// one caller only, in this process or another.
    pub async fn claim_due_mail(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: u32,
    ) -> Result<Vec<MailRecord>> {
        let now_us = to_micros(now);
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM mail_outbox
             WHERE (status = 'PENDING' AND next_attempt_at <= $1)
                OR (status = 'SENDING' AND claimed_until < $1)
             ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(now_us)
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            // The same condition again: of two workers that read the same
            // id, only the one whose update changes the row sends it.
            let done = sqlx::query(
                "UPDATE mail_outbox SET status = 'SENDING', claimed_until = $2,
                    attempts = attempts + 1
                 WHERE id = $1 AND ((status = 'PENDING' AND next_attempt_at <= $3)
                    OR (status = 'SENDING' AND claimed_until < $3))",
            )
            .bind(id)
            .bind(to_micros(now + lease))
            .bind(now_us)
            .execute(&self.writer)
            .await?;
            if done.rows_affected() == 1
                && let Some(m) = self.mail_by_id(id).await?
            {
                claimed.push(m);
            }
        }
        Ok(claimed)
    }

    async fn mail_by_id(&self, id: i64) -> Result<Option<MailRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM mail_outbox WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.writer)
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// The claimed message was accepted by the SMTP server.
    pub async fn mail_sent(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE mail_outbox SET status = 'SENT', sent_at = $2, claimed_until = NULL,
                last_error = NULL
             WHERE id = $1 AND status = 'SENDING'",
        )
        .bind(id)
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The attempt failed: try again at `retry_at`, or, with `None`, never
    /// (status FAILED). `error` says why, for the back office.
    pub async fn mail_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let error: String = error.chars().take(1000).collect();
        sqlx::query(
            "UPDATE mail_outbox SET status = $2, next_attempt_at = COALESCE($3, next_attempt_at),
                claimed_until = NULL, last_error = $4
             WHERE id = $1 AND status = 'SENDING'",
        )
        .bind(id)
        .bind(if retry_at.is_some() { PENDING } else { FAILED })
        .bind(retry_at.map(to_micros))
        .bind(error)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The Ente's messages, newest first.
    pub async fn list_mail(&self, ente: &str, limit: u32) -> Result<Vec<MailRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM mail_outbox WHERE ente = $1
             ORDER BY created_at DESC, id DESC LIMIT $2"
        )))
        .bind(ente)
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    /// The message queued under `natural_key`, if any.
    pub async fn mail_by_key(&self, natural_key: &str) -> Result<Option<MailRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM mail_outbox WHERE natural_key = $1"
        )))
        .bind(natural_key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }
}

/// A stored receipt as the receipt PDF, its e-mail and the portal's search
/// read it: the columns they show, and the RT as the Node sent it (the
/// payer, the PSP's and beneficiaries' names are read from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptCopy {
    pub ente: String,
    pub receipt_id: String,
    pub notice_number: String,
    pub iuv: String,
    pub outcome: String,
    pub amount: i64,
    pub psp_name: String,
    pub payment_date_time: Option<DateTime<Utc>>,
    /// The debtor's fiscal code: the receipt's, else its position's.
    pub debtor: Option<String>,
    pub raw_xml: String,
}

const RECEIPT_COLUMNS: &str = "r.ente, r.receipt_id, r.notice_number, r.iuv, r.outcome, r.amount, \
     r.psp_name, r.payment_date_time, COALESCE(r.debtor, p.debtor_fiscal_code) AS debtor, r.raw_xml";

fn receipt_copy(r: &sqlx::any::AnyRow) -> Result<ReceiptCopy> {
    Ok(ReceiptCopy {
        ente: r.try_get("ente")?,
        receipt_id: r.try_get("receipt_id")?,
        notice_number: r.try_get("notice_number")?,
        iuv: r.try_get("iuv")?,
        outcome: r.try_get("outcome")?,
        amount: r.try_get("amount")?,
        psp_name: r.try_get("psp_name")?,
        payment_date_time: opt_from_micros(r.try_get("payment_date_time")?),
        debtor: r.try_get("debtor")?,
        raw_xml: r.try_get("raw_xml")?,
    })
}

impl Store {
    /// One of the Ente's receipts, by its id.
    pub async fn receipt_copy(&self, ente: &str, receipt_id: &str) -> Result<Option<ReceiptCopy>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECEIPT_COLUMNS} FROM receipts r
             LEFT JOIN debt_positions p ON p.id = r.position_id
             WHERE r.ente = $1 AND r.receipt_id = $2"
        )))
        .bind(ente)
        .bind(receipt_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(receipt_copy).transpose()
    }

    /// The receipt that paid the Ente's own notice with `iuv`, whatever
    /// the channel (Checkout, a PSP's desk, App IO, a POS): the one with
    /// outcome OK that paid its position first, else the latest OK one.
    /// A KO receipt attests no payment: none is returned for it.
    pub async fn paid_receipt_of_iuv(&self, ente: &str, iuv: &str) -> Result<Option<ReceiptCopy>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECEIPT_COLUMNS} FROM receipts r
             LEFT JOIN debt_positions p ON p.id = r.position_id
             WHERE r.ente = $1 AND r.owner_ente = $1 AND r.iuv = $2 AND r.outcome = 'OK'
             ORDER BY CASE WHEN r.anomaly IS NULL THEN 0 ELSE 1 END, r.received_at DESC
             LIMIT 1"
        )))
        .bind(ente)
        .bind(iuv)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(receipt_copy).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use incasso_core::ente::Ente;
    use incasso_testkit::{backends, fresh_database_url};
    use std::collections::HashSet;

    const ENTE: &str = "80000130585";

    fn mail(n: usize) -> NewMail {
        NewMail {
            natural_key: format!("receipt:{ENTE}:R{n}"),
            kind: "receipt".into(),
            ente: ENTE.into(),
            reference: format!("R{n}"),
            recipient: format!("p{n}@example.it"),
        }
    }

    /// Two processes (two stores on one database) claiming at once never
    /// get the same message; a message is queued once per key; a claim
    /// whose worker died is taken again when its lease ends, the attempt
    /// counted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_message_is_claimed_by_one_worker_only() {
        for backend in backends() {
            let url = fresh_database_url(backend).await;
            let a = Store::connect(&url).await.unwrap();
            let b = Store::connect(&url).await.unwrap();
            let now = Utc::now();
            a.create_ente(
                &Ente {
                    fiscal_code: ENTE.into(),
                    name: "Comune".into(),
                    ipa_code: None,
                    iban: None,
                    postal_iban: None,
                    cbill_code: None,
                    email: None,
                },
                now,
            )
            .await
            .unwrap();
            for n in 0..30 {
                assert!(a.enqueue_mail(&mail(n), now).await.unwrap());
            }
            assert!(!b.enqueue_mail(&mail(0), now).await.unwrap(), "queued once");
            let lease = chrono::Duration::minutes(2);
            let (x, y) = tokio::join!(
                a.claim_due_mail(now, lease, 30),
                b.claim_due_mail(now, lease, 30)
            );
            let (x, y) = (x.unwrap(), y.unwrap());
            let xs: HashSet<i64> = x.iter().map(|m| m.id).collect();
            let ys: HashSet<i64> = y.iter().map(|m| m.id).collect();
            assert!(xs.is_disjoint(&ys), "{backend:?}: claimed twice");
            assert_eq!(xs.len() + ys.len(), 30, "{backend:?}");
            assert!(
                x.iter()
                    .chain(&y)
                    .all(|m| m.status == SENDING && m.attempts == 1)
            );
            // Nothing more is due while the claims hold.
            assert!(a.claim_due_mail(now, lease, 30).await.unwrap().is_empty());
            // One is sent, one fails for good, one is to retry; the rest
            // belong to a worker that died: past the lease, taken again.
            let all: Vec<&MailRecord> = x.iter().chain(&y).collect();
            a.mail_sent(all[0].id, now).await.unwrap();
            a.mail_failed(all[1].id, "554 no", None).await.unwrap();
            a.mail_failed(
                all[2].id,
                "451 later",
                Some(now + chrono::Duration::minutes(1)),
            )
            .await
            .unwrap();
            let after_lease = now + lease + chrono::Duration::seconds(1);
            let again = b.claim_due_mail(after_lease, lease, 100).await.unwrap();
            assert_eq!(again.len(), 28, "27 abandoned and the one to retry");
            assert!(again.iter().all(|m| m.attempts == 2));
            let key = |i: usize| all[i].natural_key.clone();
            let sent = a.mail_by_key(&key(0)).await.unwrap().unwrap();
            assert_eq!((sent.status.as_str(), sent.attempts), (SENT, 1));
            assert!(sent.sent_at.is_some());
            let failed = a.mail_by_key(&key(1)).await.unwrap().unwrap();
            assert_eq!(failed.status, FAILED);
            assert_eq!(failed.last_error.as_deref(), Some("554 no"));
            a.close().await;
            b.close().await;
        }
    }
}
