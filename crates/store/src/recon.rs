//! Reconciliation's records: reporting flows with their lines, treasury
//! movements, and what the latest matching run found.
//!
//! Every intake is idempotent by its natural key and atomic: a flow version
//! is stored whole with its lines or not at all; a journal's movements are
//! stored together, each once by the bank's id.

use crate::positions::QuotaJson;
use crate::time::{from_micros, to_micros};
use crate::{Result, Store, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use incasso_core::Cents;
use incasso_core::accertamento::AccertamentoRef;
use incasso_core::fdr::ReportingFlow;
use incasso_core::treasury::{Direction, TreasuryMovement};
use sqlx::Row;

/// What storing a flow did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowIntake {
    /// A new flow.
    Stored,
    /// A later version of a known flow: it replaces the earlier ones.
    Replaced,
    /// This very version was stored before: nothing changed.
    AlreadyKnown,
    /// An earlier version than the one held: kept, but not current.
    Outdated,
}

/// A flow's current version, as matching needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFlow {
    pub flow_id: String,
    pub flow_date_time: DateTime<Utc>,
    pub settlement_ref: String,
    pub settlement_date: NaiveDate,
    pub psp_id: String,
    pub declared_total: Cents,
    pub lines_total: Cents,
    pub lines: i64,
    /// What the flow's lines contradict in its header, in words; empty
    /// when nothing.
    pub problems: String,
    /// FdR 3's revision, for a flow fetched through it.
    pub revision: Option<i64>,
}

/// One sospeso's match, as the latest run found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovementMatchRecord {
    pub movement_id: String,
    pub flow_id: Option<String>,
    pub method: Option<String>,
    pub status: String,
}

/// One anomaly of the latest run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnomalyRecord {
    pub code: String,
    /// What it is about: a flow id, a movement id, an IUV.
    pub subject: String,
    pub detail: String,
    pub amount: Option<Cents>,
}

/// Rows per multi-row statement: under both databases' parameter limits
/// with ten columns.
const ROWS_PER_STATEMENT: usize = 400;

impl Store {
    /// Stores a flow version for `ente` (the flow's receiver, checked by
    /// the caller), with its lines, in one transaction.
    pub async fn store_flow(
        &self,
        ente: &str,
        flow: &ReportingFlow,
        now: DateTime<Utc>,
    ) -> Result<FlowIntake> {
        Ok(self
            .store_flows(ente, std::slice::from_ref(flow), now)
            .await?[0])
    }

    /// Stores several flows for `ente` in one transaction, each as
    /// [`Store::store_flow`] would: a day's flows fetched together cost
    /// one commit, not one each.
    pub async fn store_flows(
        &self,
        ente: &str,
        flows: &[ReportingFlow],
        now: DateTime<Utc>,
    ) -> Result<Vec<FlowIntake>> {
        // The same flow taken at once by two processes (the Node's fetch in
        // one, an upload in the other) on PostgreSQL: both read it unknown,
        // the second's insert meets the first's row. Run again, it finds
        // the flow known, as if it had come second.
        let mut attempt = 0;
        loop {
            match self.store_flows_once(ente, flows, now).await {
                Err(e) if e.is_unique_violation() && attempt < 2 => attempt += 1,
                outcome => return outcome,
            }
        }
    }

    async fn store_flows_once(
        &self,
        ente: &str,
        flows: &[ReportingFlow],
        now: DateTime<Utc>,
    ) -> Result<Vec<FlowIntake>> {
        let mut tx = self.write_tx().await?;
        let mut outcomes = Vec::with_capacity(flows.len());
        let mut events = Vec::new();
        for flow in flows {
            let outcome = self.store_flow_in(&mut tx, ente, flow, now).await?;
            // A current version tells the paid options it lists (REPORTED).
            if matches!(outcome, FlowIntake::Stored | FlowIntake::Replaced) {
                events.extend(crate::events::reported_by_flow(&mut tx, ente, flow).await?);
            }
            outcomes.push(outcome);
        }
        crate::events::write(&mut tx, &events, now).await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn store_flow_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        ente: &str,
        flow: &ReportingFlow,
        now: DateTime<Utc>,
    ) -> Result<FlowIntake> {
        let version = to_micros(flow.flow_date_time);
        let known: Vec<i64> = sqlx::query_scalar(
            "SELECT flow_date_time FROM reporting_flows WHERE ente = $1 AND flow_id = $2",
        )
        .bind(ente)
        .bind(&flow.flow_id)
        .fetch_all(&mut **tx)
        .await?;
        if known.contains(&version) {
            // Held from SOAP or an upload, now listed by FdR 3: its
            // revision is kept, so the next fetch knows it holds it.
            if let Some(revision) = flow.revision {
                sqlx::query(
                    "UPDATE reporting_flows SET revision = $4
                     WHERE ente = $1 AND flow_id = $2 AND flow_date_time = $3
                       AND revision IS NULL",
                )
                .bind(ente)
                .bind(&flow.flow_id)
                .bind(version)
                .bind(revision as i64)
                .execute(&mut **tx)
                .await?;
            }
            return Ok(FlowIntake::AlreadyKnown);
        }
        let latest = known.iter().copied().max();
        let outcome = match latest {
            None => FlowIntake::Stored,
            Some(l) if l < version => FlowIntake::Replaced,
            Some(_) => FlowIntake::Outdated,
        };
        let current = outcome != FlowIntake::Outdated;
        if current {
            sqlx::query("UPDATE reporting_flows SET current = 0 WHERE ente = $1 AND flow_id = $2")
                .bind(ente)
                .bind(&flow.flow_id)
                .execute(&mut **tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO reporting_flows (ente, flow_id, flow_date_time, settlement_ref,
                settlement_date, psp_id, psp_name, bic, declared_count, declared_total,
                lines_total, problems, current, received_at, revision)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(ente)
        .bind(&flow.flow_id)
        .bind(version)
        .bind(&flow.settlement_ref)
        .bind(flow.settlement_date.to_string())
        .bind(&flow.psp_id)
        .bind(flow.psp_name.as_deref())
        .bind(flow.bic.as_deref())
        .bind(flow.declared_count as i64)
        .bind(flow.declared_total.0)
        .bind(flow.lines_total().0)
        .bind(problems(flow))
        .bind(i64::from(current))
        .bind(to_micros(now))
        .bind(flow.revision.map(|r| r as i64))
        .execute(&mut **tx)
        .await?;
        // Lines in multi-row statements: a big PSP's daily flow has
        // thousands.
        for (chunk_no, chunk) in flow.payments.chunks(ROWS_PER_STATEMENT).enumerate() {
            let mut sql = String::from(
                "INSERT INTO flow_payments (ente, flow_id, flow_date_time, line, iuv, iur,
                    transfer_index, amount, outcome, outcome_date) VALUES ",
            );
            let mut n = 0;
            crate::batch::push_rows(&mut sql, self.dialect, chunk.len(), 10, &mut n);
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (i, p) in chunk.iter().enumerate() {
                q = q
                    .bind(ente)
                    .bind(&flow.flow_id)
                    .bind(version)
                    .bind((chunk_no * ROWS_PER_STATEMENT + i + 1) as i64)
                    .bind(&p.iuv)
                    .bind(&p.iur)
                    .bind(i64::from(p.transfer()))
                    .bind(p.amount.0)
                    .bind(i64::from(p.outcome.code()))
                    .bind(p.outcome_date.to_string());
            }
            q.execute(&mut **tx).await?;
        }
        Ok(outcome)
    }

    /// The current version of each of the Ente's flows.
    pub async fn current_flows(&self, ente: &str) -> Result<Vec<StoredFlow>> {
        self.current_flows_after(ente, "", i64::MAX).await
    }

    /// A page of [`Store::current_flows`]: `limit` flows after the flow id
    /// `after` (`""` for the first page), by flow id.
    pub async fn current_flows_after(
        &self,
        ente: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<StoredFlow>> {
        let rows = sqlx::query(
            "SELECT f.flow_id, f.flow_date_time, f.settlement_ref, f.settlement_date, f.psp_id,
                    f.declared_total, f.lines_total, f.problems, f.revision,
                    (SELECT COUNT(*) FROM flow_payments p WHERE p.ente = f.ente
                        AND p.flow_id = f.flow_id AND p.flow_date_time = f.flow_date_time) AS lines
             FROM reporting_flows f WHERE f.ente = $1 AND f.current = 1 AND f.flow_id > $2
             ORDER BY f.flow_id LIMIT $3",
        )
        .bind(ente)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredFlow {
                    flow_id: r.try_get("flow_id")?,
                    flow_date_time: from_micros(r.try_get("flow_date_time")?),
                    settlement_ref: r.try_get("settlement_ref")?,
                    settlement_date: day(&r.try_get::<String, _>("settlement_date")?)?,
                    psp_id: r.try_get("psp_id")?,
                    declared_total: Cents(r.try_get("declared_total")?),
                    lines_total: Cents(r.try_get("lines_total")?),
                    lines: r.try_get("lines")?,
                    problems: r.try_get("problems")?,
                    revision: r.try_get("revision")?,
                })
            })
            .collect()
    }

    /// Stores a journal's movements for `ente`, each once by its id, all in
    /// one transaction. Returns how many were new.
    pub async fn store_movements(
        &self,
        ente: &str,
        movements: &[TreasuryMovement],
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let mut tx = self.write_tx().await?;
        let mut new = 0;
        // Sixteen columns: a quarter of the rows a statement takes of
        // narrower tables keeps it under the parameter limits.
        for chunk in movements.chunks(ROWS_PER_STATEMENT / 4) {
            let mut n = 0;
            let mut sql = String::from(
                "INSERT INTO treasury_movements (ente, movement_id, account, year, direction,
                    document, operation, document_number, amount, booking_date, value_date,
                    payer, causale, trn, end_to_end_id, imported_at) VALUES ",
            );
            crate::batch::push_rows(&mut sql, self.dialect, chunk.len(), 16, &mut n);
            sql.push_str(" ON CONFLICT (ente, movement_id) DO NOTHING");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for m in chunk {
                q = q
                    .bind(ente)
                    .bind(&m.movement_id)
                    .bind(&m.account)
                    .bind(i64::from(m.year))
                    .bind(match m.direction {
                        Direction::Income => "ENTRATA",
                        Direction::Outgoing => "USCITA",
                    })
                    .bind(m.document.as_str())
                    .bind(m.operation.as_str())
                    .bind(&m.document_number)
                    .bind(m.amount.0)
                    .bind(m.booking_date.to_string())
                    .bind(m.value_date.map(|d| d.to_string()))
                    .bind(m.payer.as_deref())
                    .bind(&m.causale)
                    .bind(m.trn.as_deref())
                    .bind(m.end_to_end_id.as_deref())
                    .bind(to_micros(now));
            }
            new += q.execute(&mut *tx).await?.rows_affected() as usize;
        }
        tx.commit().await?;
        Ok(new)
    }

    /// All the Ente's stored movements.
    pub async fn movements(&self, ente: &str) -> Result<Vec<TreasuryMovement>> {
        let sql = format!("{MOVEMENT_SELECT} WHERE ente = $1 ORDER BY booking_date, movement_id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ente)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| movement_from_row(ente, r)).collect()
    }

    /// One of the Ente's movements, by its id.
    pub async fn movement(
        &self,
        ente: &str,
        movement_id: &str,
    ) -> Result<Option<TreasuryMovement>> {
        let sql = format!("{MOVEMENT_SELECT} WHERE ente = $1 AND movement_id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ente)
            .bind(movement_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| movement_from_row(ente, &r)).transpose()
    }

    /// Replaces the Ente's matching results and anomalies with a run's, in
    /// one transaction: readers see the previous run or this one whole.
    pub async fn save_matching(
        &self,
        ente: &str,
        matches: &[MovementMatchRecord],
        anomalies: &[AnomalyRecord],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE treasury_movements SET matched_flow_id = NULL, match_method = NULL,
                match_status = NULL WHERE ente = $1",
        )
        .bind(ente)
        .execute(&mut *tx)
        .await?;
        // Many rows to a statement: a year has tens of thousands of sospesi,
        // and one statement each took seconds (`incasso bench recon`).
        for chunk in matches.chunks(ROWS_PER_STATEMENT) {
            let mut n = 0;
            let mut sql = String::from(
                "UPDATE treasury_movements SET matched_flow_id = v.column2,
                    match_method = v.column3, match_status = v.column4 FROM (VALUES ",
            );
            crate::batch::push_rows(&mut sql, self.dialect, chunk.len(), 4, &mut n);
            sql.push_str(") AS v WHERE treasury_movements.ente = ");
            crate::batch::push_placeholder(&mut sql, self.dialect, &mut n);
            sql.push_str(" AND treasury_movements.movement_id = v.column1");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for m in chunk {
                q = q
                    .bind(&m.movement_id)
                    .bind(m.flow_id.as_deref())
                    .bind(m.method.as_deref())
                    .bind(&m.status);
            }
            q.bind(ente).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM recon_anomalies WHERE ente = $1")
            .bind(ente)
            .execute(&mut *tx)
            .await?;
        for chunk in anomalies.chunks(ROWS_PER_STATEMENT) {
            let mut n = 0;
            let mut sql = String::from(
                "INSERT INTO recon_anomalies (ente, code, subject, detail, amount, detected_at)
                 VALUES ",
            );
            crate::batch::push_rows(&mut sql, self.dialect, chunk.len(), 6, &mut n);
            sql.push_str(" ON CONFLICT (ente, code, subject) DO NOTHING");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for a in chunk {
                q = q
                    .bind(ente)
                    .bind(&a.code)
                    .bind(&a.subject)
                    .bind(&a.detail)
                    .bind(a.amount.map(|c| c.0))
                    .bind(to_micros(now));
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The latest run's match of each movement that has one.
    pub async fn movement_matches(&self, ente: &str) -> Result<Vec<MovementMatchRecord>> {
        let rows = sqlx::query(
            "SELECT movement_id, matched_flow_id, match_method, match_status
             FROM treasury_movements WHERE ente = $1 AND match_status IS NOT NULL
             ORDER BY movement_id",
        )
        .bind(ente)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MovementMatchRecord {
                    movement_id: r.try_get("movement_id")?,
                    flow_id: r.try_get("matched_flow_id")?,
                    method: r.try_get("match_method")?,
                    status: r.try_get("match_status")?,
                })
            })
            .collect()
    }

    /// The flow the latest run matched sospeso `movement_id` to, if any.
    pub async fn matched_flow_of(&self, ente: &str, movement_id: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT matched_flow_id FROM treasury_movements
             WHERE ente = $1 AND movement_id = $2 AND match_status = 'MATCHED'",
        )
        .bind(ente)
        .bind(movement_id)
        .fetch_optional(&self.pool)
        .await?
        .flatten())
    }

    /// The latest run's anomalies, optionally of one code.
    pub async fn recon_anomalies(
        &self,
        ente: &str,
        code: Option<&str>,
    ) -> Result<Vec<AnomalyRecord>> {
        self.recon_anomalies_after(ente, code, None, i64::MAX).await
    }

    /// A page of [`Store::recon_anomalies`]: `limit` after the anomaly
    /// `after` (its code and subject), by code and subject.
    pub async fn recon_anomalies_after(
        &self,
        ente: &str,
        code: Option<&str>,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<AnomalyRecord>> {
        let (after_code, after_subject) = after.unwrap_or(("", ""));
        let rows = sqlx::query(
            "SELECT code, subject, detail, amount FROM recon_anomalies
             WHERE ente = $1 AND ($2 = '' OR code = $2)
               AND (code > $3 OR (code = $3 AND subject > $4))
             ORDER BY code, subject LIMIT $5",
        )
        .bind(ente)
        .bind(code.unwrap_or(""))
        .bind(after_code)
        .bind(after_subject)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AnomalyRecord {
                    code: r.try_get("code")?,
                    subject: r.try_get("subject")?,
                    detail: r.try_get("detail")?,
                    amount: r.try_get::<Option<i64>, _>("amount")?.map(Cents),
                })
            })
            .collect()
    }
}

/// A flow's inconsistencies in words, for the clerk who reads the anomaly.
fn problems(flow: &ReportingFlow) -> String {
    use incasso_core::fdr::FlowInconsistency as I;
    flow.inconsistencies()
        .iter()
        .map(|i| match i {
            I::Count { declared, lines } => {
                format!("dichiara {declared} pagamenti ma ne elenca {lines}")
            }
            I::Total { declared, lines } => format!(
                "dichiara un totale di {} ma i pagamenti sommano {}",
                declared.to_italian(),
                lines.to_italian()
            ),
            I::DuplicateLine { iuv, iur, index } => {
                format!("il pagamento IUV {iuv} IUR {iur} indice {index} è ripetuto")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Which flow lines a breakdown covers.
#[derive(Debug, Clone, Copy)]
pub enum LinesOf<'a> {
    /// The current version of one flow.
    Flow(&'a str),
    /// One IUV, in the current version of every flow.
    Iuv(&'a str),
}

/// A flow line with its transfer's accounting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountedLine {
    pub flow_id: String,
    pub iuv: String,
    pub iur: String,
    pub transfer_index: u8,
    /// Signed: a revocation counts negative.
    pub amount: Cents,
    pub outcome: u8,
    /// The transfer's quotas; empty when the position is unknown or has
    /// none.
    pub quotas: Vec<(AccertamentoRef, Cents)>,
    /// The transfer's taxonomy code, to find its service's default.
    pub category: Option<String>,
}

impl Store {
    /// The lines of a flow, or of an IUV, with their transfers' quotas.
    pub async fn accounted_lines(&self, ente: &str, of: LinesOf<'_>) -> Result<Vec<AccountedLine>> {
        let (filter, value) = match of {
            LinesOf::Flow(id) => ("p.flow_id = $2", id),
            LinesOf::Iuv(iuv) => ("p.iuv = $2", iuv),
        };
        // The lines first, then their flows (`CROSS JOIN`: see
        // `events::reported_now`).
        let sql = format!(
            "SELECT p.flow_id, p.iuv, p.iur, p.transfer_index, p.amount, p.outcome, t.quotas, t.category
             FROM flow_payments p
             CROSS JOIN reporting_flows f
             LEFT JOIN transfers t ON t.ente = p.ente AND t.iuv = p.iuv
                 AND t.id_transfer = p.transfer_index
             WHERE p.ente = $1 AND {filter}
               AND f.ente = p.ente AND f.flow_id = p.flow_id
               AND f.flow_date_time = p.flow_date_time AND f.current = 1
             ORDER BY p.flow_id, p.line"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ente)
            .bind(value)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let outcome = r.try_get::<i64, _>("outcome")? as u8;
                let amount: i64 = r.try_get("amount")?;
                let quotas = match r.try_get::<Option<String>, _>("quotas")? {
                    Some(json) => serde_json::from_str::<Vec<QuotaJson>>(&json)
                        .map_err(|e| StoreError::Corrupt(format!("quote: {e}")))?
                        .into_iter()
                        .map(|q| {
                            (
                                AccertamentoRef {
                                    year: q.year,
                                    code: q.code,
                                },
                                Cents(q.amount),
                            )
                        })
                        .collect(),
                    None => Vec::new(),
                };
                Ok(AccountedLine {
                    flow_id: r.try_get("flow_id")?,
                    iuv: r.try_get("iuv")?,
                    iur: r.try_get("iur")?,
                    transfer_index: r.try_get::<i64, _>("transfer_index")? as u8,
                    // Outcome 3 (revoked) takes money back.
                    amount: Cents(if outcome == 3 { -amount } else { amount }),
                    outcome,
                    quotas,
                    category: r.try_get("category")?,
                })
            })
            .collect()
    }

    /// Each taxonomy code's default accertamento, where exactly one of the
    /// Ente's services has that code and names one: a transfer without
    /// quotas goes there. Ambiguous codes are left out, never guessed.
    pub async fn default_accertamenti(
        &self,
        ente: &str,
    ) -> Result<std::collections::HashMap<String, AccertamentoRef>> {
        let rows = sqlx::query(
            "SELECT taxonomy_code, accertamento_year, accertamento_code FROM services
             WHERE ente = $1",
        )
        .bind(ente)
        .fetch_all(&self.pool)
        .await?;
        let mut seen: std::collections::HashMap<String, Option<AccertamentoRef>> =
            std::collections::HashMap::new();
        for r in &rows {
            let code: String = r.try_get("taxonomy_code")?;
            let acc = match (
                r.try_get::<Option<i64>, _>("accertamento_year")?,
                r.try_get::<Option<String>, _>("accertamento_code")?,
            ) {
                (Some(year), Some(code)) => Some(AccertamentoRef {
                    year: year as i32,
                    code,
                }),
                _ => None,
            };
            seen.entry(code)
                .and_modify(|existing| {
                    if *existing != acc {
                        *existing = None;
                    }
                })
                .or_insert(acc);
        }
        Ok(seen
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect())
    }
}

impl Store {
    /// Unpaid payment options that a current flow reports as paid without a
    /// receipt (outcomes 8 and 9): their notice number and the day the flow
    /// says they were paid.
    pub async fn options_paid_without_receipt(
        &self,
        ente: &str,
    ) -> Result<Vec<(String, NaiveDate)>> {
        let rows = sqlx::query(
            "SELECT o.notice_number, MIN(p.outcome_date) AS paid_on
             FROM flow_payments p
             JOIN reporting_flows f ON f.ente = p.ente AND f.flow_id = p.flow_id
                 AND f.flow_date_time = p.flow_date_time AND f.current = 1
             JOIN payment_options o ON o.ente = p.ente AND o.iuv = p.iuv
             WHERE p.ente = $1 AND p.outcome IN (8, 9) AND o.status = 'PO_UNPAID'
               AND NOT EXISTS (SELECT 1 FROM receipts r WHERE r.ente = p.ente AND r.iuv = p.iuv)
             GROUP BY o.notice_number",
        )
        .bind(ente)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("notice_number")?,
                    day(&r.try_get::<String, _>("paid_on")?)?,
                ))
            })
            .collect()
    }
}

impl Store {
    /// Stores the Ente's treasury settings (a JSON document), replacing
    /// any earlier ones.
    pub async fn put_treasury_settings(
        &self,
        ente: &str,
        json: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.get_ente(ente).await?;
        sqlx::query(
            "INSERT INTO treasury_settings (ente, settings, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (ente) DO UPDATE SET settings = excluded.settings,
                updated_at = excluded.updated_at",
        )
        .bind(ente)
        .bind(json)
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn treasury_settings(&self, ente: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT settings FROM treasury_settings WHERE ente = $1")
                .bind(ente)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}

/// What is known of one flow line (current versions): whether incasso has
/// the payment option of its IUV and the very receipt it reports (the IUR
/// is the receipt's `receiptId`, SANP 3 "Rendicontazione"; a PSP that
/// charged twice reports a second IUR the Ente may have no receipt of), and
/// the position's amount for its transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineFacts {
    pub flow_id: String,
    pub iuv: String,
    pub transfer_index: u8,
    pub amount: Cents,
    pub outcome: u8,
    pub has_option: bool,
    pub has_receipt: bool,
    /// The position's transfer amount, if the transfer exists.
    pub transfer_amount: Option<Cents>,
    /// The line's number in its flow, from 1.
    pub line: u32,
}

impl LineFacts {
    /// Whether every source agrees with the line: its option has the
    /// transfer, at the amount the line reports (or the line reports a
    /// revocation, outcome 3), and a receipt exists. What
    /// [`Store::flow_line_counts`] counts as `clean`, in SQL.
    pub fn is_clean(&self) -> bool {
        self.has_receipt
            && match self.transfer_amount {
                Some(expected) => expected == self.amount || self.outcome == 3,
                None => false,
            }
    }
}

/// The SQL of [`LineFacts::is_clean`]. A transfer row implies its option
/// (a foreign key), so two lookups a line instead of three.
const CLEAN_LINE: &str = "EXISTS (SELECT 1 FROM transfers t WHERE t.ente = p.ente
        AND t.iuv = p.iuv AND t.id_transfer = p.transfer_index
        AND (t.amount = p.amount OR p.outcome = 3))
    AND EXISTS (SELECT 1 FROM receipts r WHERE r.ente = p.ente AND r.iuv = p.iuv
        AND r.receipt_id = p.iur)";

/// The current version of the Ente's flows, joined to their lines; the
/// Ente is the placeholder `ente`.
fn current_lines(ente: &str) -> String {
    format!(
        "FROM flow_payments p
         JOIN reporting_flows f ON f.ente = p.ente AND f.flow_id = p.flow_id
             AND f.flow_date_time = p.flow_date_time AND f.current = 1
         WHERE p.ente = {ente}"
    )
}

/// A flow's lines, counted: all of them, and those every source agrees
/// with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowLineCount {
    pub flow_id: String,
    pub lines: i64,
    pub clean: i64,
}

/// A line whose IUV and transfer another line of a current flow reports
/// too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatedLine {
    pub flow_id: String,
    pub iuv: String,
    pub transfer_index: u8,
    pub amount: Cents,
}

impl Store {
    /// Every current flow's lines, counted in the database: a big
    /// Comune's year has millions of lines and nearly all are clean, so
    /// only the flows with others need their lines read
    /// ([`Store::for_each_line_fact`]).
    pub async fn flow_line_counts(&self, ente: &str) -> Result<Vec<FlowLineCount>> {
        let sql = format!(
            "SELECT p.flow_id, COUNT(*) AS lines,
                SUM(CASE WHEN {CLEAN_LINE} THEN 1 ELSE 0 END) AS clean
             {} GROUP BY p.flow_id ORDER BY p.flow_id",
            current_lines("$1")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ente)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(FlowLineCount {
                    flow_id: r.try_get(0)?,
                    lines: r.try_get(1)?,
                    clean: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// The lines (outcome other than 3) whose IUV and transfer more than
    /// one line of the current flows report, oldest flow first.
    pub async fn repeated_lines(&self, ente: &str) -> Result<Vec<RepeatedLine>> {
        let sql = format!(
            "SELECT p.flow_id, p.iuv, p.transfer_index, p.amount {lines}
               AND p.outcome <> 3 AND (p.iuv, p.transfer_index) IN (
                 SELECT p.iuv, p.transfer_index {lines} AND p.outcome <> 3
                 GROUP BY p.iuv, p.transfer_index HAVING COUNT(*) > 1)
             ORDER BY p.iuv, p.transfer_index, f.flow_date_time, p.flow_id, p.line",
            lines = current_lines("$1")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ente)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(RepeatedLine {
                    flow_id: r.try_get(0)?,
                    iuv: r.try_get(1)?,
                    transfer_index: r.try_get::<i64, _>(2)? as u8,
                    amount: Cents(r.try_get(3)?),
                })
            })
            .collect()
    }

    /// The facts of every line of the given current flows, streamed to
    /// `each`.
    pub async fn for_each_line_fact(
        &self,
        ente: &str,
        flow_ids: &[String],
        mut each: impl FnMut(LineFacts),
    ) -> Result<()> {
        self.scan_line_facts(ente, flow_ids, |l| {
            each(l);
            true
        })
        .await
    }

    /// As [`Store::for_each_line_fact`], until `each` answers false.
    pub async fn scan_line_facts(
        &self,
        ente: &str,
        flow_ids: &[String],
        mut each: impl FnMut(LineFacts) -> bool,
    ) -> Result<()> {
        use futures_util::TryStreamExt;
        // EXISTS is an integer on SQLite and a boolean on PostgreSQL. Asked
        // by dialect: a failed try_get formats an error, per line.
        let dialect = self.dialect;
        let flag = |r: &sqlx::any::AnyRow, c: usize| -> Result<bool> {
            Ok(match dialect {
                crate::Dialect::Sqlite => r.try_get::<i64, _>(c)? != 0,
                crate::Dialect::Postgres => r.try_get::<bool, _>(c)?,
            })
        };
        for chunk in flow_ids.chunks(ROWS_PER_STATEMENT) {
            // Every placeholder from push_placeholder: on SQLite they are
            // anonymous, and sqlx counts them apart from numbered ones.
            let mut n = 0;
            let mut ente_placeholder = String::new();
            crate::batch::push_placeholder(&mut ente_placeholder, self.dialect, &mut n);
            let mut sql = format!(
                "SELECT p.flow_id, p.iuv, p.transfer_index, p.amount, p.outcome,
                    EXISTS (SELECT 1 FROM payment_options o WHERE o.ente = p.ente
                        AND o.iuv = p.iuv) AS has_option,
                    EXISTS (SELECT 1 FROM receipts r WHERE r.ente = p.ente AND r.iuv = p.iuv
                        AND r.receipt_id = p.iur) AS has_receipt,
                    (SELECT t.amount FROM transfers t WHERE t.ente = p.ente AND t.iuv = p.iuv
                        AND t.id_transfer = p.transfer_index) AS transfer_amount,
                    p.line
                 {} AND p.flow_id IN (",
                current_lines(&ente_placeholder)
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                crate::batch::push_placeholder(&mut sql, self.dialect, &mut n);
            }
            sql.push_str(") ORDER BY p.flow_id, p.line");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ente);
            for id in chunk {
                q = q.bind(id);
            }
            let mut rows = q.fetch(&self.pool);
            while let Some(r) = rows.try_next().await? {
                // By position: looking a column up by name compares strings.
                let more = each(LineFacts {
                    flow_id: r.try_get(0)?,
                    iuv: r.try_get(1)?,
                    transfer_index: r.try_get::<i64, _>(2)? as u8,
                    amount: Cents(r.try_get(3)?),
                    outcome: r.try_get::<i64, _>(4)? as u8,
                    has_option: flag(&r, 5)?,
                    has_receipt: flag(&r, 6)?,
                    transfer_amount: r.try_get::<Option<i64>, _>(7)?.map(Cents),
                    line: r.try_get::<i64, _>(8)? as u32,
                });
                if !more {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

const MOVEMENT_SELECT: &str =
    "SELECT movement_id, account, year, direction, document, operation, document_number,
            amount, booking_date, value_date, payer, causale, trn, end_to_end_id
     FROM treasury_movements";

fn movement_from_row(ente: &str, r: &sqlx::any::AnyRow) -> Result<TreasuryMovement> {
    use incasso_core::treasury::{DocumentKind, Operation};
    let operation: String = r.try_get("operation")?;
    Ok(TreasuryMovement {
        movement_id: r.try_get("movement_id")?,
        ente: ente.to_string(),
        account: r.try_get("account")?,
        year: r.try_get::<i64, _>("year")? as i32,
        direction: if r.try_get::<String, _>("direction")? == "ENTRATA" {
            Direction::Income
        } else {
            Direction::Outgoing
        },
        document: DocumentKind::from_opi(&r.try_get::<String, _>("document")?),
        operation: Operation::from_opi(&operation)
            .ok_or_else(|| StoreError::Corrupt(format!("tipo_operazione '{operation}'")))?,
        document_number: r.try_get("document_number")?,
        amount: Cents(r.try_get("amount")?),
        booking_date: day(&r.try_get::<String, _>("booking_date")?)?,
        value_date: r
            .try_get::<Option<String>, _>("value_date")?
            .map(|d| day(&d))
            .transpose()?,
        payer: r.try_get("payer")?,
        causale: r.try_get("causale")?,
        trn: r.try_get("trn")?,
        end_to_end_id: r.try_get("end_to_end_id")?,
    })
}

fn day(s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|e| StoreError::Corrupt(format!("data '{s}': {e}")))
}

impl Store {
    /// The matched sospesi not yet given to `consumer` of the regularization
    /// export `layout`, oldest first, at most `limit`.
    pub async fn regularizations_to_export(
        &self,
        ente: &str,
        layout: &str,
        consumer: &str,
        limit: u32,
    ) -> Result<Vec<String>> {
        let ids = sqlx::query_scalar(
            "SELECT m.movement_id FROM treasury_movements m
             WHERE m.ente = $1 AND m.match_status = 'MATCHED'
               AND NOT EXISTS (SELECT 1 FROM regularization_exports x WHERE x.ente = m.ente
                   AND x.layout = $2 AND x.consumer = $3 AND x.movement_id = m.movement_id)
             ORDER BY m.booking_date, m.movement_id LIMIT $4",
        )
        .bind(ente)
        .bind(layout)
        .bind(consumer)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(ids)
    }

    /// Records that `consumer` was given these sospesi's regularizations;
    /// recording one twice changes nothing.
    pub async fn mark_regularizations_exported(
        &self,
        ente: &str,
        layout: &str,
        consumer: &str,
        movement_ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        for chunk in movement_ids.chunks(ROWS_PER_STATEMENT) {
            let mut n = 0;
            let mut sql = String::from(
                "INSERT INTO regularization_exports (ente, layout, consumer, movement_id,
                    exported_at) VALUES ",
            );
            crate::batch::push_rows(&mut sql, self.dialect, chunk.len(), 5, &mut n);
            sql.push_str(" ON CONFLICT (ente, layout, consumer, movement_id) DO NOTHING");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q
                    .bind(ente)
                    .bind(layout)
                    .bind(consumer)
                    .bind(id)
                    .bind(to_micros(now));
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// What the back office's Reporting area reads: receipts, flows and
/// treasury movements searched, sorted and paged, and the sospesi tied to
/// their flows by hand.
pub mod reporting {
    use super::StoredFlow;
    use chrono::{DateTime, NaiveDate, Utc};
    use incasso_core::Cents;
    use incasso_core::treasury::TreasuryMovement;

    /// The column a receipts list is sorted by.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum ReceiptSort {
        /// When incasso received it.
        #[default]
        Received,
        Paid,
        Iuv,
        Notice,
        Amount,
        Debtor,
    }

    /// Which receipts, in which order, which page.
    #[derive(Debug, Clone, Default)]
    pub struct ReceiptQuery {
        /// The start of the IUV.
        pub iuv: Option<String>,
        /// The start of the notice number.
        pub notice: Option<String>,
        /// The debtor's fiscal code as the receipt states it, exactly.
        pub debtor: Option<String>,
        /// Paid at or after...
        pub paid_from: Option<DateTime<Utc>>,
        /// ...and before.
        pub paid_before: Option<DateTime<Utc>>,
        pub only_anomalies: bool,
        /// Only receipts of positions of these offices (their office
        /// code); `None`: all.
        pub offices: Option<Vec<String>>,
        pub sort: ReceiptSort,
        pub descending: bool,
        pub offset: u64,
        pub limit: u32,
    }

    /// A receipt as a list shows it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ReceiptRow {
        pub receipt_id: String,
        pub notice_number: String,
        pub iuv: String,
        /// The receipt's debtor, else its position's.
        pub debtor: Option<String>,
        pub debtor_name: Option<String>,
        pub amount: Cents,
        pub fee: Option<Cents>,
        pub outcome: String,
        pub psp_id: String,
        pub psp_name: String,
        pub payment_date_time: Option<DateTime<Utc>>,
        pub received_at: DateTime<Utc>,
        pub anomaly: Option<String>,
        pub refund_status: Option<String>,
        /// The position it paid, if incasso knows it.
        pub iupd: Option<String>,
        /// That position's office (code).
        pub office: Option<String>,
    }

    /// One receipt, whole.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ReceiptDetail {
        pub row: ReceiptRow,
        pub owner_ente: String,
        pub channel_id: String,
        pub payment_method: Option<String>,
        pub application_date: Option<String>,
        pub transfer_date: Option<String>,
        pub station_id: String,
        pub primitive: String,
        pub stand_in: bool,
        /// The receipt's transfers, as JSON.
        pub transfers_json: String,
    }

    /// The column a flows list is sorted by.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum FlowSort {
        FlowId,
        /// The flow's own date (`dataOraFlusso`).
        #[default]
        FlowDate,
        SettlementDate,
        Psp,
        Total,
        Lines,
    }

    /// Which flows (current versions), in which order, which page.
    #[derive(Debug, Clone, Default)]
    pub struct FlowQuery {
        /// A part of the flow id.
        pub flow_id: Option<String>,
        /// A part of the PSP's id or name.
        pub psp: Option<String>,
        /// Settled on or after...
        pub settled_from: Option<NaiveDate>,
        /// ...and on or before.
        pub settled_to: Option<NaiveDate>,
        /// Only flows whose lines contradict their header.
        pub only_problems: bool,
        /// Only flows no sospeso pays (neither matched by a run nor tied by
        /// hand): those a sospeso may be tied to.
        pub only_unpaid: bool,
        pub sort: FlowSort,
        pub descending: bool,
        pub offset: u64,
        pub limit: u32,
    }

    /// A flow as a list shows it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FlowRow {
        pub flow: StoredFlow,
        pub psp_name: Option<String>,
        pub received_at: DateTime<Utc>,
        /// The sospeso that pays it: matched by the latest run, or tied by
        /// hand.
        pub movement_id: Option<String>,
    }

    /// The column a movements list is sorted by.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum MovementSort {
        #[default]
        Booking,
        Number,
        Amount,
        Status,
    }

    /// Which treasury movements, in which order, which page.
    #[derive(Debug, Clone, Default)]
    pub struct MovementQuery {
        /// The latest run's status (`MATCHED`, `MANUAL`, `AMOUNT_MISMATCH`,
        /// `SINGLE_PAYMENT`, `UNMATCHED`), or `NONE` for movements the run
        /// did not match (not sospesi, or another's account).
        pub status: Option<String>,
        /// A part of the causale, the document number or the payer.
        pub text: Option<String>,
        pub booked_from: Option<NaiveDate>,
        pub booked_to: Option<NaiveDate>,
        pub sort: MovementSort,
        pub descending: bool,
        pub offset: u64,
        pub limit: u32,
    }

    /// A movement with what the latest run made of it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct MovementRow {
        pub movement: TreasuryMovement,
        pub flow_id: Option<String>,
        pub method: Option<String>,
        pub status: Option<String>,
    }

    /// A sospeso tied to its flows by hand.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ManualTie {
        pub movement_id: String,
        /// By flow id.
        pub flow_ids: Vec<String>,
        pub note: String,
        pub actor: String,
        pub created_at: DateTime<Utc>,
    }

    /// The status and method a run gives a tied sospeso.
    pub const MANUAL: &str = "MANUAL";
}

use reporting::{
    FlowQuery, FlowRow, FlowSort, ManualTie, MovementQuery, MovementRow, MovementSort,
    ReceiptDetail, ReceiptQuery, ReceiptRow, ReceiptSort,
};

/// A value bound to a query built from a search's filters.
enum Arg {
    Text(String),
    Int(i64),
}

/// The conditions of a search and their values, numbered `$1`, `$2`...
/// in order: only the filters given become SQL, so each plan uses the
/// indexes of what was asked.
struct Filters {
    conditions: Vec<String>,
    args: Vec<Arg>,
}

impl Filters {
    fn new() -> Filters {
        Filters {
            conditions: Vec::new(),
            args: Vec::new(),
        }
    }

    /// The placeholder of a new value.
    fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }

    fn text(&mut self, v: impl Into<String>) -> String {
        self.arg(Arg::Text(v.into()))
    }

    fn int(&mut self, v: i64) -> String {
        self.arg(Arg::Int(v))
    }

    fn add(&mut self, condition: String) {
        self.conditions.push(condition);
    }

    fn where_clause(&self) -> String {
        if self.conditions.is_empty() {
            "1 = 1".into()
        } else {
            self.conditions.join(" AND ")
        }
    }

    fn query<'q>(&self, sql: String) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for a in &self.args {
            q = match a {
                Arg::Text(s) => q.bind(s.clone()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }
}

/// `text` as the start of a `LIKE` pattern (its wildcards taken
/// literally), or anywhere in it with `anywhere`.
fn like(text: &str, anywhere: bool) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    if anywhere {
        out.push('%');
    }
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// `column` starts with `text`: a range an index answers when the text is
/// digits (IUVs and notice numbers are; digits order alike under every
/// collation, where punctuation may not), and the `LIKE` that says it
/// exactly.
fn prefix(f: &mut Filters, column: &str, text: &str) {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let lo = f.text(text);
        f.add(format!("{column} >= {lo}"));
        // The next prefix of as many digits, or fewer: `0129` is followed
        // by `013`; nothing follows `999`.
        let mut upper = text.as_bytes().to_vec();
        while let Some(last) = upper.pop() {
            if last < b'9' {
                upper.push(last + 1);
                break;
            }
        }
        if !upper.is_empty() {
            let hi = f.text(String::from_utf8_lossy(&upper).into_owned());
            f.add(format!("{column} < {hi}"));
        }
    }
    let p = f.text(like(text, false));
    f.add(format!("{column} LIKE {p} ESCAPE '\\'"));
}

fn direction(descending: bool) -> &'static str {
    if descending { "DESC" } else { "ASC" }
}

const RECEIPT_ROW: &str = "r.receipt_id, r.notice_number, r.iuv,
    COALESCE(r.debtor, p.debtor_fiscal_code) AS debtor_cf, p.debtor_name, r.amount, r.fee,
    r.outcome, r.psp_id, r.psp_name, r.payment_date_time, r.received_at, r.anomaly,
    r.refund_status, p.iupd, p.office_code";

fn receipt_row(r: &sqlx::any::AnyRow) -> Result<ReceiptRow> {
    Ok(ReceiptRow {
        receipt_id: r.try_get("receipt_id")?,
        notice_number: r.try_get("notice_number")?,
        iuv: r.try_get("iuv")?,
        debtor: r.try_get("debtor_cf")?,
        debtor_name: r.try_get("debtor_name")?,
        amount: Cents(r.try_get("amount")?),
        fee: r.try_get::<Option<i64>, _>("fee")?.map(Cents),
        outcome: r.try_get("outcome")?,
        psp_id: r.try_get("psp_id")?,
        psp_name: r.try_get("psp_name")?,
        payment_date_time: r
            .try_get::<Option<i64>, _>("payment_date_time")?
            .map(from_micros),
        received_at: from_micros(r.try_get("received_at")?),
        anomaly: r.try_get("anomaly")?,
        refund_status: r.try_get("refund_status")?,
        iupd: r.try_get("iupd")?,
        office: r.try_get("office_code")?,
    })
}

impl Store {
    /// A page of the Ente's receipts (of its own notices and of those it
    /// is a beneficiary of), searched and sorted as asked.
    pub async fn search_receipts(&self, ente: &str, q: &ReceiptQuery) -> Result<Vec<ReceiptRow>> {
        let mut f = Filters::new();
        let e = f.text(ente);
        f.add(format!("r.ente = {e}"));
        if let Some(iuv) = &q.iuv {
            prefix(&mut f, "r.iuv", iuv);
        }
        if let Some(notice) = &q.notice {
            prefix(&mut f, "r.notice_number", notice);
        }
        if let Some(debtor) = &q.debtor {
            // The debtor every receipt states (the Node's receipts carry
            // it): its index answers, where a second way through the
            // positions would make either database read every receipt.
            let p = f.text(debtor.clone());
            f.add(format!("r.debtor = {p}"));
        }
        if let Some(t) = q.paid_from {
            let p = f.int(to_micros(t));
            f.add(format!("r.payment_date_time >= {p}"));
        }
        if let Some(t) = q.paid_before {
            let p = f.int(to_micros(t));
            f.add(format!("r.payment_date_time < {p}"));
        }
        if q.only_anomalies {
            // Anomaly codes are never empty: a range the index answers,
            // which IS NOT NULL is not on SQLite.
            f.add("r.anomaly > ''".into());
        }
        if let Some(offices) = &q.offices {
            if offices.is_empty() {
                f.add("1 = 0".into());
            } else {
                let list: Vec<String> = offices.iter().map(|o| f.text(o.clone())).collect();
                f.add(format!("p.office_code IN ({})", list.join(", ")));
            }
        }
        let column = match q.sort {
            ReceiptSort::Received => "r.received_at",
            ReceiptSort::Paid => "r.payment_date_time",
            ReceiptSort::Iuv => "r.iuv",
            ReceiptSort::Notice => "r.notice_number",
            ReceiptSort::Amount => "r.amount",
            // The receipt's own debtor (every receipt states one): an
            // index sorts by it, not by a value taken through the join.
            ReceiptSort::Debtor => "r.debtor",
        };
        let dir = direction(q.descending);
        // A search by IUV, notice, debtor or anomaly finds few receipts
        // through its own index; walking the sort's index instead would
        // read every receipt to find them. The sort's expressions (`+ 0`,
        // `|| ''`) keep both databases off the sort's index then.
        let selective =
            q.iuv.is_some() || q.notice.is_some() || q.debtor.is_some() || q.only_anomalies;
        let (column, key) = if selective {
            let numeric = matches!(
                q.sort,
                ReceiptSort::Received | ReceiptSort::Paid | ReceiptSort::Amount
            );
            (
                format!("{column}{}", if numeric { " + 0" } else { " || ''" }),
                "r.receipt_id || ''",
            )
        } else {
            (column.to_string(), "r.receipt_id")
        };
        let sql = format!(
            "SELECT {RECEIPT_ROW} FROM receipts r LEFT JOIN debt_positions p ON p.id = r.position_id
             WHERE {} ORDER BY {column} {dir}, {key} {dir} LIMIT {} OFFSET {}",
            f.where_clause(),
            q.limit.clamp(1, 100_001),
            q.offset
        );
        let rows = f.query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(receipt_row).collect()
    }

    /// One of the Ente's receipts, whole.
    pub async fn receipt_detail(&self, ente: &str, receipt_id: &str) -> Result<ReceiptDetail> {
        let sql = format!(
            "SELECT {RECEIPT_ROW}, r.owner_ente, r.channel_id, r.payment_method,
                r.application_date, r.transfer_date, r.station_id, r.primitive, r.stand_in,
                r.transfers
             FROM receipts r LEFT JOIN debt_positions p ON p.id = r.position_id
             WHERE r.ente = $1 AND r.receipt_id = $2"
        );
        let r = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ente)
            .bind(receipt_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("ricevuta"))?;
        Ok(ReceiptDetail {
            row: receipt_row(&r)?,
            owner_ente: r.try_get("owner_ente")?,
            channel_id: r.try_get("channel_id")?,
            payment_method: r.try_get("payment_method")?,
            application_date: r.try_get("application_date")?,
            transfer_date: r.try_get("transfer_date")?,
            station_id: r.try_get("station_id")?,
            primitive: r.try_get("primitive")?,
            stand_in: r.try_get::<i64, _>("stand_in")? != 0,
            transfers_json: r.try_get("transfers")?,
        })
    }
}

/// The current flows' columns of a list, with the sospeso that pays each.
const FLOW_ROW: &str = "f.flow_id, f.flow_date_time, f.settlement_ref, f.settlement_date,
    f.psp_id, f.psp_name, f.declared_total, f.lines_total, f.problems, f.revision,
    f.received_at,
    (SELECT COUNT(*) FROM flow_payments l WHERE l.ente = f.ente AND l.flow_id = f.flow_id
        AND l.flow_date_time = f.flow_date_time) AS lines,
    COALESCE(
        (SELECT MIN(m.movement_id) FROM treasury_movements m WHERE m.ente = f.ente
            AND m.matched_flow_id = f.flow_id AND m.match_status = 'MATCHED'),
        (SELECT t.movement_id FROM manual_regularization_flows t WHERE t.ente = f.ente
            AND t.flow_id = f.flow_id)) AS movement_id";

fn flow_row(r: &sqlx::any::AnyRow) -> Result<FlowRow> {
    Ok(FlowRow {
        flow: StoredFlow {
            flow_id: r.try_get("flow_id")?,
            flow_date_time: from_micros(r.try_get("flow_date_time")?),
            settlement_ref: r.try_get("settlement_ref")?,
            settlement_date: day(&r.try_get::<String, _>("settlement_date")?)?,
            psp_id: r.try_get("psp_id")?,
            declared_total: Cents(r.try_get("declared_total")?),
            lines_total: Cents(r.try_get("lines_total")?),
            lines: r.try_get("lines")?,
            problems: r.try_get("problems")?,
            revision: r.try_get("revision")?,
        },
        psp_name: r.try_get("psp_name")?,
        received_at: from_micros(r.try_get("received_at")?),
        movement_id: r.try_get("movement_id")?,
    })
}

impl Store {
    /// A page of the Ente's current flows, searched and sorted as asked.
    pub async fn search_flows(&self, ente: &str, q: &FlowQuery) -> Result<Vec<FlowRow>> {
        let mut f = Filters::new();
        let e = f.text(ente);
        f.add(format!("f.ente = {e} AND f.current = 1"));
        if let Some(id) = &q.flow_id {
            let p = f.text(like(&id.to_lowercase(), true));
            f.add(format!("LOWER(f.flow_id) LIKE {p} ESCAPE '\\'"));
        }
        if let Some(psp) = &q.psp {
            let p = f.text(like(&psp.to_lowercase(), true));
            f.add(format!(
                "(LOWER(f.psp_id) LIKE {p} ESCAPE '\\' OR LOWER(COALESCE(f.psp_name, '')) LIKE {p} ESCAPE '\\')"
            ));
        }
        if let Some(d) = q.settled_from {
            let p = f.text(d.to_string());
            f.add(format!("f.settlement_date >= {p}"));
        }
        if let Some(d) = q.settled_to {
            let p = f.text(d.to_string());
            f.add(format!("f.settlement_date <= {p}"));
        }
        if q.only_problems {
            f.add("f.problems <> ''".into());
        }
        if q.only_unpaid {
            f.add(
                "NOT EXISTS (SELECT 1 FROM treasury_movements m WHERE m.ente = f.ente
                    AND m.matched_flow_id = f.flow_id AND m.match_status = 'MATCHED')
                 AND NOT EXISTS (SELECT 1 FROM manual_regularization_flows t
                    WHERE t.ente = f.ente AND t.flow_id = f.flow_id)"
                    .into(),
            );
        }
        let column = match q.sort {
            FlowSort::FlowId => "f.flow_id",
            FlowSort::FlowDate => "f.flow_date_time",
            FlowSort::SettlementDate => "f.settlement_date",
            FlowSort::Psp => "f.psp_id",
            FlowSort::Total => "f.lines_total",
            // The count the flow declares, which an index holds; the
            // lines' own count is told apart by the flow's problems.
            FlowSort::Lines => "f.declared_count",
        };
        let dir = direction(q.descending);
        let sql = format!(
            "SELECT {FLOW_ROW} FROM reporting_flows f WHERE {}
             ORDER BY {column} {dir}, f.flow_id {dir} LIMIT {} OFFSET {}",
            f.where_clause(),
            q.limit.clamp(1, 100_001),
            q.offset
        );
        let rows = f.query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(flow_row).collect()
    }

    /// The current version of one of the Ente's flows.
    pub async fn current_flow(&self, ente: &str, flow_id: &str) -> Result<Option<FlowRow>> {
        let sql = format!(
            "SELECT {FLOW_ROW} FROM reporting_flows f
             WHERE f.ente = $1 AND f.flow_id = $2 AND f.current = 1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ente)
            .bind(flow_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(flow_row).transpose()
    }
}

const MOVEMENT_ROW: &str =
    "SELECT movement_id, account, year, direction, document, operation, document_number,
            amount, booking_date, value_date, payer, causale, trn, end_to_end_id,
            matched_flow_id, match_method, match_status
     FROM treasury_movements";

fn movement_row(ente: &str, r: &sqlx::any::AnyRow) -> Result<MovementRow> {
    Ok(MovementRow {
        movement: movement_from_row(ente, r)?,
        flow_id: r.try_get("matched_flow_id")?,
        method: r.try_get("match_method")?,
        status: r.try_get("match_status")?,
    })
}

impl Store {
    /// A page of the Ente's treasury movements, searched and sorted as
    /// asked, with what the latest run made of each.
    pub async fn search_movements(
        &self,
        ente: &str,
        q: &MovementQuery,
    ) -> Result<Vec<MovementRow>> {
        let mut f = Filters::new();
        let e = f.text(ente);
        f.add(format!("ente = {e}"));
        match q.status.as_deref() {
            Some("NONE") => f.add("match_status IS NULL".into()),
            Some(s) => {
                let p = f.text(s);
                f.add(format!("match_status = {p}"));
            }
            None => {}
        }
        if let Some(t) = &q.text {
            let p = f.text(like(&t.to_lowercase(), true));
            f.add(format!(
                "(LOWER(causale) LIKE {p} ESCAPE '\\' OR LOWER(document_number) LIKE {p} ESCAPE '\\'
                  OR LOWER(COALESCE(payer, '')) LIKE {p} ESCAPE '\\')"
            ));
        }
        if let Some(d) = q.booked_from {
            let p = f.text(d.to_string());
            f.add(format!("booking_date >= {p}"));
        }
        if let Some(d) = q.booked_to {
            let p = f.text(d.to_string());
            f.add(format!("booking_date <= {p}"));
        }
        let column = match q.sort {
            MovementSort::Booking => "booking_date",
            MovementSort::Number => "document_number",
            MovementSort::Amount => "amount",
            MovementSort::Status => "match_status",
        };
        let dir = direction(q.descending);
        // Within a status, by booking date: the status index's order.
        let then = if q.sort == MovementSort::Status {
            format!("booking_date {dir}, ")
        } else {
            String::new()
        };
        let sql = format!(
            "{MOVEMENT_ROW} WHERE {} ORDER BY {column} {dir}, {then}movement_id {dir} LIMIT {} OFFSET {}",
            f.where_clause(),
            q.limit.clamp(1, 100_001),
            q.offset
        );
        let rows = f.query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(|r| movement_row(ente, r)).collect()
    }

    /// One of the Ente's movements with what the latest run made of it.
    pub async fn movement_row(&self, ente: &str, movement_id: &str) -> Result<Option<MovementRow>> {
        let sql = format!("{MOVEMENT_ROW} WHERE ente = $1 AND movement_id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ente)
            .bind(movement_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| movement_row(ente, &r)).transpose()
    }

    /// The latest run's anomalies counted by code: how many, and the sum of
    /// their amounts.
    pub async fn anomaly_totals_by_code(&self, ente: &str) -> Result<Vec<(String, i64, Cents)>> {
        let rows = sqlx::query(
            "SELECT code, CAST(COUNT(*) AS BIGINT) AS n,
                CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS total
             FROM recon_anomalies WHERE ente = $1 GROUP BY code ORDER BY code",
        )
        .bind(ente)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("code")?,
                    r.try_get("n")?,
                    Cents(r.try_get("total")?),
                ))
            })
            .collect()
    }

    /// A page of the latest run's anomalies (of one code if given), by code
    /// and subject.
    pub async fn recon_anomalies_page(
        &self,
        ente: &str,
        code: Option<&str>,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<AnomalyRecord>> {
        let mut f = Filters::new();
        let e = f.text(ente);
        f.add(format!("ente = {e}"));
        if let Some(c) = code {
            let p = f.text(c);
            f.add(format!("code = {p}"));
        }
        let sql = format!(
            "SELECT code, subject, detail, amount FROM recon_anomalies WHERE {}
             ORDER BY code, subject LIMIT {} OFFSET {offset}",
            f.where_clause(),
            limit.clamp(1, 100_001)
        );
        let rows = f.query(sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(AnomalyRecord {
                    code: r.try_get("code")?,
                    subject: r.try_get("subject")?,
                    detail: r.try_get("detail")?,
                    amount: r.try_get::<Option<i64>, _>("amount")?.map(Cents),
                })
            })
            .collect()
    }
}

impl Store {
    /// Every sospeso of the Ente tied to its flows by hand.
    pub async fn manual_ties(&self, ente: &str) -> Result<Vec<ManualTie>> {
        self.read_ties(ente, None).await
    }

    /// The tie of one sospeso, if it has one.
    pub async fn manual_tie(&self, ente: &str, movement_id: &str) -> Result<Option<ManualTie>> {
        Ok(self.read_ties(ente, Some(movement_id)).await?.pop())
    }

    async fn read_ties(&self, ente: &str, movement_id: Option<&str>) -> Result<Vec<ManualTie>> {
        let rows = sqlx::query(
            "SELECT r.movement_id, r.note, r.actor, r.created_at, t.flow_id
             FROM manual_regularizations r
             JOIN manual_regularization_flows t ON t.ente = r.ente
                 AND t.movement_id = r.movement_id
             WHERE r.ente = $1 AND ($2 = '' OR r.movement_id = $2)
             ORDER BY r.movement_id, t.flow_id",
        )
        .bind(ente)
        .bind(movement_id.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<ManualTie> = Vec::new();
        for r in &rows {
            let id: String = r.try_get("movement_id")?;
            let flow: String = r.try_get("flow_id")?;
            match out.last_mut() {
                Some(last) if last.movement_id == id => last.flow_ids.push(flow),
                _ => out.push(ManualTie {
                    movement_id: id,
                    flow_ids: vec![flow],
                    note: r.try_get("note")?,
                    actor: r.try_get("actor")?,
                    created_at: from_micros(r.try_get("created_at")?),
                }),
            }
        }
        Ok(out)
    }

    /// Ties sospeso `tie.movement_id` to its flows, in one transaction, and
    /// marks it as tied by hand until the next run (which keeps it so). A
    /// sospeso or a flow already tied is a [`StoreError::Conflict`], and
    /// nothing is written.
    pub async fn tie_manually(&self, ente: &str, tie: &ManualTie) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO manual_regularizations (ente, movement_id, note, actor, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(ente)
        .bind(&tie.movement_id)
        .bind(&tie.note)
        .bind(&tie.actor)
        .bind(to_micros(tie.created_at))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from);
        match inserted {
            Err(e) if e.is_unique_violation() => {
                return Err(StoreError::Conflict(format!(
                    "il sospeso {} è già regolarizzato a mano",
                    tie.movement_id
                )));
            }
            other => other?,
        };
        for flow_id in &tie.flow_ids {
            let inserted = sqlx::query(
                "INSERT INTO manual_regularization_flows (ente, flow_id, movement_id)
                 VALUES ($1, $2, $3)",
            )
            .bind(ente)
            .bind(flow_id)
            .bind(&tie.movement_id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from);
            match inserted {
                Err(e) if e.is_unique_violation() => {
                    return Err(StoreError::Conflict(format!(
                        "il flusso {flow_id} è già collegato a un altro sospeso"
                    )));
                }
                other => other?,
            };
        }
        sqlx::query(
            "UPDATE treasury_movements SET matched_flow_id = $3, match_method = $4,
                match_status = $4 WHERE ente = $1 AND movement_id = $2",
        )
        .bind(ente)
        .bind(&tie.movement_id)
        .bind(tie.flow_ids.first())
        .bind(reporting::MANUAL)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Undoes a sospeso's tie; its match is left to the next run. Answers
    /// whether there was one.
    pub async fn untie(&self, ente: &str, movement_id: &str) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM manual_regularization_flows WHERE ente = $1 AND movement_id = $2")
            .bind(ente)
            .bind(movement_id)
            .execute(&mut *tx)
            .await?;
        let removed =
            sqlx::query("DELETE FROM manual_regularizations WHERE ente = $1 AND movement_id = $2")
                .bind(ente)
                .bind(movement_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        sqlx::query(
            "UPDATE treasury_movements SET matched_flow_id = NULL, match_method = NULL,
                match_status = NULL
             WHERE ente = $1 AND movement_id = $2 AND match_status = $3",
        )
        .bind(ente)
        .bind(movement_id)
        .bind(reporting::MANUAL)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(removed > 0)
    }
}
