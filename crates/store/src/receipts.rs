//! Receipts (RT): stored whole, once per (Ente, receiptId), and applied to
//! their position in the same transaction, so that a crash leaves either
//! both or neither; the Node then sends the receipt again.

use crate::batch::Stmt;
use crate::time::{opt_from_micros, opt_to_micros, to_micros};
use crate::{Dialect, Result, Store, StoreError};
use chrono::{DateTime, Utc};
use incasso_core::position::TransitionError;
use sqlx::Row;

/// A receipt as received, with the parsed fields incasso queries on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptRecord {
    /// The Ente this copy of the receipt was sent to (`idPA`).
    pub ente: String,
    pub receipt_id: String,
    pub notice_number: String,
    pub iuv: String,
    /// The Ente that owns the notice (`receipt/fiscalCode`); differs from
    /// `ente` on a secondary beneficiary's copy.
    pub owner_ente: String,
    pub outcome: String,
    pub amount: i64,
    pub fee: Option<i64>,
    pub psp_id: String,
    pub psp_name: String,
    pub channel_id: String,
    pub payment_method: Option<String>,
    pub payment_date_time: Option<DateTime<Utc>>,
    pub application_date: Option<String>,
    pub transfer_date: Option<String>,
    pub station_id: String,
    /// `paSendRT` or `paSendRTV2`.
    pub primitive: String,
    pub stand_in: bool,
    /// The receipt's transfers, as JSON.
    pub transfers_json: String,
    pub raw_xml: String,
    /// The debtor's fiscal code, as the receipt states it.
    pub debtor: Option<String>,
}

/// What a receipt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptOutcome {
    /// The payment option is now paid.
    Applied,
    /// Stored, and flagged: see [`Anomaly`].
    Flagged(Anomaly),
    /// A secondary beneficiary's copy: stored for its accounting.
    Recorded,
}

/// A stored receipt, as the Node's door needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedReceipt {
    pub outcome: ReceiptOutcome,
    /// False when the receipt's transaction saw no open POS session
    /// holding the notice: the door need not look for one. A session
    /// opened after that look is linked by the desk's sweep.
    pub may_be_held_by_pos: bool,
}

/// Why a stored receipt did not simply pay its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anomaly {
    /// The option (or the whole position) was already paid: money to refund.
    DoublePayment,
    /// No position of this Ente has that notice number.
    UnknownNotice,
    /// The position was cancelled: money to refund.
    PositionCancelled,
    /// The position had expired or was not payable yet: to review.
    NotPayable,
    /// The receipt's amount differs from the option's (the option is paid).
    AmountMismatch,
    /// A receipt with outcome KO: nothing was paid.
    KoOutcome,
}

impl Anomaly {
    pub fn as_str(self) -> &'static str {
        match self {
            Anomaly::DoublePayment => "DOUBLE_PAYMENT",
            Anomaly::UnknownNotice => "UNKNOWN_NOTICE",
            Anomaly::PositionCancelled => "POSITION_CANCELLED",
            Anomaly::NotPayable => "NOT_PAYABLE",
            Anomaly::AmountMismatch => "AMOUNT_MISMATCH",
            Anomaly::KoOutcome => "KO_OUTCOME",
        }
    }

    /// Whether the money has to go back to the payer.
    pub fn refund(self) -> Option<&'static str> {
        match self {
            Anomaly::DoublePayment | Anomaly::PositionCancelled => Some("TO_REFUND"),
            Anomaly::UnknownNotice | Anomaly::NotPayable => Some("TO_REVIEW"),
            Anomaly::AmountMismatch | Anomaly::KoOutcome => None,
        }
    }
}

/// A stored receipt, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReceipt {
    pub receipt_id: String,
    pub notice_number: String,
    pub iuv: String,
    pub owner_ente: String,
    pub amount: i64,
    pub psp_id: String,
    pub anomaly: Option<String>,
    pub refund_status: Option<String>,
    pub payment_date_time: Option<DateTime<Utc>>,
    pub raw_xml: String,
    /// When incasso stored it (epoch µs): with the id, the receipt's place
    /// in a list, newest first.
    pub received_at: i64,
}

/// Where a page of receipts starts: after this receipt of the previous
/// page (its `received_at` and id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptCursor {
    pub received_at: i64,
    pub receipt_id: String,
}

impl Store {
    /// Stores a receipt and applies it. A receipt id already stored for this
    /// Ente is a [`StoreError::Conflict`] and changes nothing.
    pub async fn record_receipt(
        &self,
        r: &ReceiptRecord,
        now: DateTime<Utc>,
    ) -> Result<ReceiptOutcome> {
        Ok(self.record_receipt_for_node(r, now).await?.outcome)
    }

    /// [`Store::record_receipt`], and whether a desk's POS session may hold
    /// the notice, as read in the receipt's own transaction.
    pub async fn record_receipt_for_node(
        &self,
        r: &ReceiptRecord,
        now: DateTime<Utc>,
    ) -> Result<RecordedReceipt> {
        let mut tx = self.write_tx().await?;
        // Unknown unless the position was found: then the door asks.
        let mut may_be_held_by_pos = true;
        // No existence check first: a receipt id already stored fails the
        // insert at the end (primary key), and the whole transaction,
        // position update included, rolls back.
        let mut position_id = None;
        // Told in this transaction, so never lost nor told of a rollback.
        let mut events = Vec::new();
        // The position's new state, the receipt and its events: written
        // last, and on PostgreSQL as one statement (`Stmt::together`).
        let mut writes = Vec::new();
        let outcome = if r.owner_ente != r.ente {
            ReceiptOutcome::Recorded
        } else if r.outcome != "OK" {
            ReceiptOutcome::Flagged(Anomaly::KoOutcome)
        } else {
            match crate::positions::find_for_receipt(
                &mut tx,
                &r.ente,
                &r.notice_number,
                self.dialect.for_update(),
            )
            .await
            {
                Err(StoreError::NotFound(_)) => ReceiptOutcome::Flagged(Anomaly::UnknownNotice),
                Err(e) => return Err(e),
                Ok((mut stored, index, context)) => {
                    position_id = Some(stored.id);
                    may_be_held_by_pos = context.held_by_pos;
                    let paid_at = r.payment_date_time.unwrap_or(now);
                    let option_amount = stored.position.options[index].amount.0;
                    match stored.position.pay_option(index, paid_at, now) {
                        Ok(()) => {
                            writes.extend(crate::positions::state_statements(&stored, now));
                            stored.version += 1;
                            let outcome = if option_amount == r.amount {
                                ReceiptOutcome::Applied
                            } else {
                                ReceiptOutcome::Flagged(Anomaly::AmountMismatch)
                            };
                            let payment = crate::events::Payment {
                                receipt: Some(r),
                                amount: r.amount,
                                paid_at,
                                anomaly: (option_amount != r.amount)
                                    .then_some(Anomaly::AmountMismatch.as_str()),
                            };
                            events.push(crate::events::paid(&r.ente, &stored, index, &payment));
                            if context.listed_in_a_flow {
                                events.extend(
                                    crate::events::reported_now(&mut tx, &r.ente, &stored, index)
                                        .await?,
                                );
                            }
                            outcome
                        }
                        Err(
                            TransitionError::AlreadyPaid | TransitionError::InstallmentsStarted,
                        ) => ReceiptOutcome::Flagged(Anomaly::DoublePayment),
                        Err(TransitionError::Cancelled) => {
                            ReceiptOutcome::Flagged(Anomaly::PositionCancelled)
                        }
                        Err(_) => ReceiptOutcome::Flagged(Anomaly::NotPayable),
                    }
                }
            }
        };
        let anomaly = match &outcome {
            ReceiptOutcome::Flagged(a) => Some(*a),
            _ => None,
        };
        writes.push(
            Stmt::new(
                "INSERT INTO receipts (ente, receipt_id, notice_number, iuv, owner_ente, position_id, outcome,
                amount, fee, psp_id, psp_name, channel_id, payment_method, payment_date_time,
                application_date, transfer_date, station_id, primitive, stand_in, anomaly, refund_status,
                transfers, raw_xml, received_at, debtor)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
                $20, $21, $22, $23, $24, $25)",
            )
            .bind(r.ente.clone())
            .bind(r.receipt_id.clone())
            .bind(r.notice_number.clone())
            .bind(r.iuv.clone())
            .bind(r.owner_ente.clone())
            .bind(position_id)
            .bind(r.outcome.clone())
            .bind(r.amount)
            .bind(r.fee)
            .bind(r.psp_id.clone())
            .bind(r.psp_name.clone())
            .bind(r.channel_id.clone())
            .bind(r.payment_method.clone())
            .bind(opt_to_micros(r.payment_date_time))
            .bind(r.application_date.clone())
            .bind(r.transfer_date.clone())
            .bind(r.station_id.clone())
            .bind(r.primitive.clone())
            .bind(i64::from(r.stand_in))
            .bind(anomaly.map(|a| a.as_str().to_string()))
            .bind(anomaly.and_then(|a| a.refund()).map(str::to_string))
            .bind(r.transfers_json.clone())
            .bind(r.raw_xml.clone())
            .bind(to_micros(now))
            .bind(r.debtor.clone())
        );
        writes.extend(crate::events::statements(self.dialect, &events, now));
        let res = match self.dialect {
            Dialect::Postgres => Stmt::together(writes).into_any().execute(&mut *tx).await,
            Dialect::Sqlite => {
                let mut res = Ok(Default::default());
                for w in writes {
                    res = w.into_any().execute(&mut *tx).await;
                    if res.is_err() {
                        break;
                    }
                }
                res
            }
        };
        match res {
            Ok(_) => {}
            // Another process stored the same receipt between our check and
            // our insert (PostgreSQL): it is a duplicate all the same.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(duplicate(&r.receipt_id));
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        if let Some(a) = anomaly {
            tracing::warn!(anomaly = a.as_str(), "receipt stored with an anomaly");
        }
        Ok(RecordedReceipt {
            outcome,
            may_be_held_by_pos,
        })
    }

    /// The Ente's receipts, newest first; only anomalies when asked.
    /// The Ente's receipts, newest first, `limit` (1 to 1,000) of them
    /// after `after` (keyset paging: a page never shifts when receipts
    /// arrive meanwhile).
    pub async fn list_receipts(
        &self,
        ente: &str,
        only_anomalies: bool,
        after: Option<&ReceiptCursor>,
        limit: u32,
    ) -> Result<Vec<StoredReceipt>> {
        let rows = sqlx::query(
            "SELECT receipt_id, notice_number, iuv, owner_ente, amount, psp_id, anomaly, refund_status,
                payment_date_time, raw_xml, received_at FROM receipts
             WHERE ente = $1 AND ($2 = 0 OR anomaly IS NOT NULL)
               AND ($3 = 0 OR received_at < $4 OR (received_at = $4 AND receipt_id > $5))
             ORDER BY received_at DESC, receipt_id LIMIT $6",
        )
        .bind(ente)
        .bind(i64::from(only_anomalies))
        .bind(i64::from(after.is_some()))
        .bind(after.map_or(0, |c| c.received_at))
        .bind(after.map_or("", |c| c.receipt_id.as_str()))
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredReceipt {
                    receipt_id: r.try_get("receipt_id")?,
                    notice_number: r.try_get("notice_number")?,
                    iuv: r.try_get("iuv")?,
                    owner_ente: r.try_get("owner_ente")?,
                    amount: r.try_get("amount")?,
                    psp_id: r.try_get("psp_id")?,
                    anomaly: r.try_get("anomaly")?,
                    refund_status: r.try_get("refund_status")?,
                    payment_date_time: opt_from_micros(r.try_get("payment_date_time")?),
                    raw_xml: r.try_get("raw_xml")?,
                    received_at: r.try_get("received_at")?,
                })
            })
            .collect()
    }
}

impl Store {
    /// The receipt exactly as the Node sent it.
    pub async fn receipt_xml(&self, ente: &str, receipt_id: &str) -> Result<String> {
        sqlx::query_scalar("SELECT raw_xml FROM receipts WHERE ente = $1 AND receipt_id = $2")
            .bind(ente)
            .bind(receipt_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("ricevuta"))
    }
}

/// Which receipts GPD's receipts API lists.
#[derive(Debug, Clone, Default)]
pub struct ReceiptFilter {
    /// Paid from this instant (inclusive)...
    pub from: Option<DateTime<Utc>>,
    /// ...to this one (inclusive).
    pub to: Option<DateTime<Utc>>,
    /// The position's debtor, exactly.
    pub debtor: Option<String>,
    /// The start of the IUV (GPD's "service").
    pub iuv_prefix: Option<String>,
    /// The start of the IUV or of the debtor's fiscal code.
    pub debtor_or_iuv: Option<String>,
    /// Zero-based.
    pub page: u32,
    pub page_size: u32,
}

/// One line of GPD's receipts list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptSummary {
    pub iuv: String,
    pub debtor: Option<String>,
    pub payment_date_time: Option<DateTime<Utc>>,
    pub outcome: String,
}

/// `text` for a `LIKE` pattern, its wildcards taken literally.
fn like_prefix(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl Store {
    /// The receipts of the Ente's own notices, by IUV, a page of them, and
    /// how many match in all.
    pub async fn receipts_page(
        &self,
        ente: &str,
        f: &ReceiptFilter,
    ) -> Result<(Vec<ReceiptSummary>, u64)> {
        const FROM: &str = "FROM receipts r LEFT JOIN debt_positions p ON p.id = r.position_id
             WHERE r.ente = $1 AND r.owner_ente = $1
               AND ($2 = 0 OR r.payment_date_time >= $3) AND ($4 = 0 OR r.payment_date_time <= $5)
               AND ($6 = '' OR COALESCE(r.debtor, p.debtor_fiscal_code) = $6)
               AND ($7 = '' OR r.iuv LIKE $7 ESCAPE '\\')
               AND ($8 = '' OR r.iuv LIKE $8 ESCAPE '\\' OR COALESCE(r.debtor, p.debtor_fiscal_code) LIKE $8 ESCAPE '\\')";
        let pattern = |v: &Option<String>| v.as_deref().map(like_prefix).unwrap_or_default();
        let bind = |q: sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>| {
            q.bind(ente.to_string())
                .bind(i64::from(f.from.is_some()))
                .bind(opt_to_micros(f.from).unwrap_or(0))
                .bind(i64::from(f.to.is_some()))
                .bind(opt_to_micros(f.to).unwrap_or(0))
                .bind(f.debtor.clone().unwrap_or_default())
                .bind(pattern(&f.iuv_prefix))
                .bind(pattern(&f.debtor_or_iuv))
        };
        let total: i64 = bind(sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n {FROM}"
        ))))
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let size = f.page_size.clamp(1, 1000);
        let rows = bind(sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT r.iuv, COALESCE(r.debtor, p.debtor_fiscal_code) AS debtor_fiscal_code, r.payment_date_time, r.outcome {FROM}
             ORDER BY r.iuv, r.receipt_id LIMIT {size} OFFSET {}",
            u64::from(f.page) * u64::from(size)
        ))))
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(|r| {
                Ok(ReceiptSummary {
                    iuv: r.try_get("iuv")?,
                    debtor: r.try_get("debtor_fiscal_code")?,
                    payment_date_time: opt_from_micros(r.try_get("payment_date_time")?),
                    outcome: r.try_get("outcome")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((items, total as u64))
    }

    /// The receipt of the Ente's own notice with `iuv`, as the Node sent
    /// it, and its outcome: the one that paid it, or else the latest.
    pub async fn receipt_of_iuv(&self, ente: &str, iuv: &str) -> Result<(String, String)> {
        let row = sqlx::query(
            "SELECT outcome, raw_xml FROM receipts
             WHERE ente = $1 AND owner_ente = $1 AND iuv = $2
             ORDER BY CASE WHEN outcome = 'OK' AND anomaly IS NULL THEN 0 ELSE 1 END,
                 received_at DESC
             LIMIT 1",
        )
        .bind(ente)
        .bind(iuv)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("ricevuta"))?;
        Ok((row.try_get("outcome")?, row.try_get("raw_xml")?))
    }
}

fn duplicate(receipt_id: &str) -> StoreError {
    StoreError::Conflict(format!("ricevuta {receipt_id} già ricevuta"))
}

impl Store {
    /// The Checkout URL of the cart opened for a notice since `since`, if
    /// any: a cart still open is reused rather than made again.
    pub async fn open_cart(
        &self,
        ente: &str,
        notice_number: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT checkout_url FROM checkout_carts
             WHERE ente = $1 AND notice_number = $2 AND created_at >= $3",
        )
        .bind(ente)
        .bind(notice_number)
        .bind(to_micros(since))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok(r.try_get("checkout_url")?)).transpose()
    }

    /// Records the cart opened for a notice (replacing an expired one).
    pub async fn record_cart(
        &self,
        ente: &str,
        notice_number: &str,
        checkout_url: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO checkout_carts (ente, notice_number, checkout_url, created_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (ente, notice_number) DO UPDATE
             SET checkout_url = excluded.checkout_url, created_at = excluded.created_at",
        )
        .bind(ente)
        .bind(notice_number)
        .bind(checkout_url)
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}
