//! Debt positions: create, read, list, replace, delete and the life-cycle
//! transitions, each in one transaction.

use crate::batch::Stmt;
use crate::time::{from_micros, opt_from_micros, opt_to_micros, to_micros};
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use incasso_core::accertamento::AccertamentoRef;
use incasso_core::codes::NoticeNumber;
use incasso_core::codes::notice::notice_number_from_iuv;
use incasso_core::error::codes;
use incasso_core::position::{
    AccountingQuota, DebtPosition, Debtor, DebtorType, OptionStatus, PaymentOption, PositionRules,
    PositionStatus, Stamp, Transfer,
};
use incasso_core::{Cents, FieldError, Invalid};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeSet, HashMap};

mod claimed;
mod search;
pub use search::{COUNT_CAP, PositionRow, PositionSearch, SearchPage, SearchSort, SearchTotal};

/// A position as stored, with incasso's own id and its optimistic version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPosition {
    pub id: i64,
    pub version: i64,
    pub position: DebtPosition,
    /// Where it belongs in the Ente's catalogue.
    pub placement: Placement,
}

/// Where a position belongs in its Ente's catalogue: the service it
/// collects for and the office that manages it (codes), which the back
/// office searches by and limits office operators to. Not part of GPD's
/// position: a position created without them gets them from its content
/// ([`Placement::derive`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    pub service: Option<String>,
    pub office: Option<String>,
}

impl Placement {
    /// What a position says of its place by itself: the one active
    /// service whose taxonomy code its own first transfer carries (as
    /// reconciliation attributes money), and the office whose code or name
    /// is its `officeName`, else that service's office.
    pub fn derive(
        position: &DebtPosition,
        offices: &[incasso_core::ente::Office],
        services: &[incasso_core::catalogue::Service],
    ) -> Placement {
        let category = position
            .options
            .first()
            .and_then(|o| o.transfers.iter().min_by_key(|t| t.id_transfer))
            .map(|t| t.category.as_str());
        let mut matching = services
            .iter()
            .filter(|s| s.active && Some(s.taxonomy_code.as_str()) == category);
        let service = match (matching.next(), matching.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        };
        let named = position
            .office_name
            .as_deref()
            .map(str::trim)
            .and_then(|n| {
                offices.iter().find(|o| {
                    o.code.eq_ignore_ascii_case(n) || o.name.trim().eq_ignore_ascii_case(n)
                })
            });
        Placement {
            office: named
                .map(|o| o.code.clone())
                .or_else(|| service.and_then(|s| s.office_code.clone())),
            service: service.map(|s| s.code.clone()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrderBy {
    #[default]
    InsertedDate,
    CompanyName,
    Iupd,
    Status,
}

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Positions in any of these states (as shown), or in any state when
    /// empty.
    pub statuses: Vec<PositionStatus>,
    pub due_date_from: Option<DateTime<Utc>>,
    pub due_date_to: Option<DateTime<Utc>>,
    pub payment_date_from: Option<DateTime<Utc>>,
    pub payment_date_to: Option<DateTime<Utc>>,
    pub debtor_fiscal_code: Option<String>,
    pub order_by: OrderBy,
    pub ascending: bool,
    /// Zero-based page number.
    pub page: u32,
    pub limit: u32,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: u32,
    pub limit: u32,
    pub items_found: u64,
    pub total_pages: u32,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct QuotaJson {
    pub(crate) year: i32,
    pub(crate) code: String,
    pub(crate) amount: i64,
}

const POSITION_COLUMNS: &str =
    "id, iupd, debtor_type, debtor_fiscal_code, debtor_name, debtor_street, debtor_civic,
    debtor_postal_code, debtor_city, debtor_province, debtor_region, debtor_country, debtor_email,
    debtor_phone, company_name, office_name, validity_date, switch_to_expired, pay_stand_in, status,
    inserted_at, publish_date, payment_date, updated_at, version, service_code, office_code";

const OPTION_COLUMNS: &str = "o.position_id, o.iuv, o.notice_number, o.amount, o.description, o.is_partial_payment,
    o.due_date, o.retention_date, o.fee, o.notification_fee, o.status, o.payment_date, o.reporting_date,
    o.metadata";

const TRANSFER_COLUMNS: &str = "t.iuv, t.id_transfer, t.amount, t.organization_fiscal_code, t.company_name,
    t.remittance_information, t.category, t.iban, t.postal_iban, t.stamp, t.metadata, t.quotas, t.reported";

/// `DebtPosition::effective_status` in SQL, the instant `now` being the
/// parameter `now` (`$2`), on a row of `debt_positions`. A transfer's
/// flow lines are read before their flows (`CROSS JOIN`: see
/// `events::reported_now`).
pub(crate) fn effective_status_sql(now: &str) -> String {
    format!(
        "(CASE
    WHEN status = 'PAID' AND NOT EXISTS (SELECT 1 FROM payment_options o
            JOIN transfers t ON t.ente = o.ente AND t.iuv = o.iuv
            WHERE o.position_id = debt_positions.id
              AND o.status IN ('PO_PAID', 'PO_PARTIALLY_REPORTED') AND t.reported = 0
              AND NOT EXISTS (SELECT 1 FROM flow_payments p
                  CROSS JOIN reporting_flows f
                  WHERE p.ente = t.ente AND p.iuv = t.iuv AND p.transfer_index = t.id_transfer
                    AND p.outcome IN (0, 4, 8, 9)
                    AND f.ente = p.ente AND f.flow_id = p.flow_id
                    AND f.flow_date_time = p.flow_date_time AND f.current = 1))
        THEN 'REPORTED'
    WHEN status = 'PUBLISHED' AND (validity_date IS NULL OR validity_date <= {now})
        THEN (CASE WHEN switch_to_expired = 1 AND max_due_date < {now} THEN 'EXPIRED' ELSE 'VALID' END)
    WHEN status = 'VALID' AND switch_to_expired = 1 AND max_due_date < {now} THEN 'EXPIRED'
    ELSE status END)"
    )
}

/// How many times a create retries when a generated IUV turns out to be
/// taken already (a management application brought the same one itself).
const IUV_RETRIES: usize = 3;

impl Store {
    /// Validates and stores a new position; assigns IUVs where the caller
    /// brought none; publishes it when asked. A duplicate iupd is a conflict,
    /// and nothing is written on any error.
    pub async fn create_position(
        &self,
        ente: &str,
        position: DebtPosition,
        now: DateTime<Utc>,
        to_publish: bool,
    ) -> Result<StoredPosition> {
        self.create_position_placed(ente, position, None, now, to_publish)
            .await
    }

    /// [`Store::create_position`] in the catalogue's `placement` (derived
    /// from the content when `None`). An unknown service or office is
    /// invalid, as the field that names it.
    pub async fn create_position_placed(
        &self,
        ente: &str,
        mut position: DebtPosition,
        placement: Option<Placement>,
        now: DateTime<Utc>,
        to_publish: bool,
    ) -> Result<StoredPosition> {
        let now = from_micros(to_micros(now));
        let segregation_codes = self
            .prepare_new(ente, &mut position, now, to_publish)
            .await?;
        let placement = match placement {
            Some(p) => self.check_placement(ente, p).await?,
            None => self.placement_of(ente, &position).await?,
        };
        let wanted: Vec<bool> = position.options.iter().map(|o| o.iuv.is_none()).collect();
        let mut attempt = 0;
        loop {
            self.assign_notice_numbers(ente, &segregation_codes, &mut position, &wanted)
                .await?;
            // A duplicate iupd fails the first insert (unique index): no
            // separate existence check is needed, even across processes.
            let mut tx = self.write_tx().await?;
            match insert_position(&mut tx, ente, &position, &placement, now).await {
                Ok(id) => {
                    let stored = StoredPosition {
                        id,
                        version: 1,
                        position,
                        placement,
                    };
                    let events =
                        crate::notify::published_events(&mut tx, ente, &[(&stored, false)]).await?;
                    crate::events::write(&mut tx, &events, now).await?;
                    tx.commit().await?;
                    return Ok(stored);
                }
                Err(InsertError::Iupd) => return Err(duplicate_iupd(&position.iupd)),
                Err(InsertError::Iuv(iuv)) => {
                    drop(tx);
                    attempt += 1;
                    let generated = position
                        .options
                        .iter()
                        .zip(&wanted)
                        .any(|(o, w)| *w && o.iuv.as_deref() == Some(iuv.as_str()));
                    if !generated || attempt >= IUV_RETRIES {
                        return Err(iuv_taken(&iuv));
                    }
                    tracing::warn!(
                        "generated IUV already used by an application; moving the sequence past it"
                    );
                    self.skip_sequence_past_used(ente, &iuv).await?;
                    for (option, want) in position.options.iter_mut().zip(&wanted) {
                        if *want {
                            option.iuv = None;
                            option.notice_number = None;
                        }
                    }
                }
                Err(InsertError::Other(e)) => return Err(e),
            }
        }
    }

    /// [`Store::prepare`] for a position about to be inserted, with the
    /// dates and states of a new one.
    async fn prepare_new(
        &self,
        ente: &str,
        position: &mut DebtPosition,
        now: DateTime<Utc>,
        to_publish: bool,
    ) -> Result<Vec<u8>> {
        let segregation_codes = self.prepare(ente, position, now).await?;
        position.status = PositionStatus::Draft;
        position.inserted_date = Some(now);
        position.last_updated_date = Some(now);
        position.publish_date = None;
        position.payment_date = None;
        if to_publish {
            position.publish(now)?;
        }
        Ok(segregation_codes)
    }

    /// Creates many positions in one transaction (GPD v2): all of them or,
    /// on any error, none. The error names the position by its place in
    /// the call ([`StoreError::Item`]).
    ///
    /// `progress`, when given, commits with the positions (a massive
    /// upload's: see [`crate::UploadProgress`]).
    pub async fn create_positions(
        &self,
        ente: &str,
        positions: Vec<DebtPosition>,
        now: DateTime<Utc>,
        to_publish: bool,
        progress: Option<&crate::UploadProgress>,
    ) -> Result<Vec<StoredPosition>> {
        let now = from_micros(to_micros(now));
        let mut batch = Vec::with_capacity(positions.len());
        let mut iupds = BTreeSet::new();
        let mut placements = PlacementCache::default();
        for (index, mut position) in positions.into_iter().enumerate() {
            let iupd = position.iupd.clone();
            let item = |e| item_error(index, &iupd, e);
            if !iupds.insert(iupd.clone()) {
                return Err(item(StoreError::Conflict(format!(
                    "iupd '{iupd}' ripetuto nella richiesta"
                ))));
            }
            let segregation_codes = self
                .prepare_new(ente, &mut position, now, to_publish)
                .await
                .map_err(item)?;
            let wanted: Vec<bool> = position.options.iter().map(|o| o.iuv.is_none()).collect();
            let placement = placements.derive(self, ente, &position).await?;
            batch.push((position, segregation_codes, wanted, placement));
        }
        let mut attempt = 0;
        loop {
            // One allocation for the whole call: the positions are of one
            // Ente, whose default station numbers them all.
            let count = batch
                .iter()
                .flat_map(|(_, _, wanted, _)| wanted)
                .filter(|w| **w)
                .count() as u32;
            let segregation_codes = batch
                .first()
                .map(|(_, s, _, _)| s.clone())
                .unwrap_or_default();
            let mut fresh = self
                .fresh_notice_numbers(ente, &segregation_codes, count)
                .await?;
            for (index, (position, _, wanted, _)) in batch.iter_mut().enumerate() {
                hand_out_notice_numbers(position, wanted, &mut fresh)
                    .map_err(|e| item_error(index, &position.iupd, e))?;
            }
            let mut tx = self.write_tx().await?;
            let mut ids = Vec::with_capacity(batch.len());
            let mut failure = None;
            for (index, (position, _, _, placement)) in batch.iter().enumerate() {
                match insert_position(&mut tx, ente, position, placement, now).await {
                    Ok(id) => ids.push(id),
                    Err(e) => {
                        failure = Some((index, e));
                        break;
                    }
                }
            }
            let (index, error) = match failure {
                None => {
                    if let Some(p) = progress {
                        crate::uploads::apply_progress(&mut tx, p).await?;
                    }
                    let stored: Vec<StoredPosition> = batch
                        .into_iter()
                        .zip(ids)
                        .map(|((position, _, _, placement), id)| StoredPosition {
                            id,
                            version: 1,
                            position,
                            placement,
                        })
                        .collect();
                    let changed: Vec<(&StoredPosition, bool)> =
                        stored.iter().map(|s| (s, false)).collect();
                    let events = crate::notify::published_events(&mut tx, ente, &changed).await?;
                    crate::events::write(&mut tx, &events, now).await?;
                    tx.commit().await?;
                    return Ok(stored);
                }
                Some(f) => f,
            };
            drop(tx);
            let iupd = batch[index].0.iupd.clone();
            let iuv = match error {
                InsertError::Iupd => return Err(item_error(index, &iupd, duplicate_iupd(&iupd))),
                InsertError::Other(e) => return Err(e),
                InsertError::Iuv(iuv) => iuv,
            };
            attempt += 1;
            let (position, _, wanted, _) = &batch[index];
            let generated = position
                .options
                .iter()
                .zip(wanted)
                .any(|(o, w)| *w && o.iuv.as_deref() == Some(iuv.as_str()));
            if !generated || attempt >= IUV_RETRIES {
                return Err(item_error(index, &iupd, iuv_taken(&iuv)));
            }
            tracing::warn!(
                "generated IUV already used by an application; moving the sequence past it"
            );
            self.skip_sequence_past_used(ente, &iuv).await?;
            for (position, _, wanted, _) in &mut batch {
                for (option, want) in position.options.iter_mut().zip(wanted.iter()) {
                    if *want {
                        option.iuv = None;
                        option.notice_number = None;
                    }
                }
            }
        }
    }

    /// Replaces many positions in one transaction (GPD v2's update): all of
    /// them or none, each under the rules of [`Store::replace_position`].
    pub async fn replace_positions(
        &self,
        ente: &str,
        positions: Vec<DebtPosition>,
        now: DateTime<Utc>,
        to_publish: bool,
        progress: Option<&crate::UploadProgress>,
    ) -> Result<Vec<StoredPosition>> {
        let now = from_micros(to_micros(now));
        let mut planned = Vec::with_capacity(positions.len());
        let mut iupds = BTreeSet::new();
        for (index, position) in positions.into_iter().enumerate() {
            let iupd = position.iupd.clone();
            if !iupds.insert(iupd.clone()) {
                return Err(item_error(
                    index,
                    &iupd,
                    StoreError::Conflict(format!("iupd '{iupd}' ripetuto nella richiesta")),
                ));
            }
            let plan = self
                .plan_replacement(ente, &iupd, position, None, now, to_publish)
                .await
                .map_err(|e| item_error(index, &iupd, e))?;
            planned.push(plan);
        }
        let mut tx = self.write_tx().await?;
        let mut out = Vec::with_capacity(planned.len());
        for (index, (position, version, placement)) in planned.into_iter().enumerate() {
            let iupd = position.iupd.clone();
            let stored = apply_replacement(
                &mut tx,
                ente,
                position,
                placement,
                version,
                now,
                self.dialect,
            )
            .await
            .map_err(|e| item_error(index, &iupd, e))?;
            out.push(stored);
        }
        if let Some(p) = progress {
            crate::uploads::apply_progress(&mut tx, p).await?;
        }
        let changed: Vec<(&StoredPosition, bool)> = out.iter().map(|(s, w)| (s, *w)).collect();
        let events = crate::notify::published_events(&mut tx, ente, &changed).await?;
        crate::events::write(&mut tx, &events, now).await?;
        tx.commit().await?;
        Ok(out.into_iter().map(|(s, _)| s).collect())
    }

    /// Deletes many positions in one transaction (GPD v2): all of them or,
    /// when one is missing or may not be deleted, none.
    pub async fn delete_positions(
        &self,
        ente: &str,
        iupds: &[String],
        progress: Option<&crate::UploadProgress>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let mut events = Vec::new();
        let mut seen = BTreeSet::new();
        for (index, iupd) in iupds.iter().enumerate() {
            // The same iupd twice deletes it once, as a set of iupds means.
            if !seen.insert(iupd.as_str()) {
                continue;
            }
            let current = load_position(&mut tx, ente, iupd, self.dialect.for_update())
                .await
                .map_err(|e| item_error(index, iupd, e))?;
            current
                .position
                .check_deletable()
                .map_err(|e| item_error(index, iupd, e.into()))?;
            delete_by_id(&mut tx, current.id).await?;
            if crate::events::was_published(&current) {
                crate::notify_channels::keep_gone(&mut tx, ente, &current, Utc::now()).await?;
                events.push(crate::events::cancelled(ente, &current, "DELETED"));
            }
        }
        if let Some(p) = progress {
            crate::uploads::apply_progress(&mut tx, p).await?;
        }
        crate::events::write(&mut tx, &events, Utc::now()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Validation and lookups shared by create and replace; returns the
    /// Ente's segregation codes, default station first.
    async fn prepare(
        &self,
        ente: &str,
        position: &mut DebtPosition,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>> {
        let segregation_codes = self.ente_segregation_codes(ente).await?;
        truncate_to_storage_precision(position);
        for option in &mut position.options {
            for t in &mut option.transfers {
                if t.organization_fiscal_code.is_empty() {
                    t.organization_fiscal_code = ente.to_string();
                }
            }
            option.status = OptionStatus::Unpaid;
            option.payment_date = None;
            option.reporting_date = None;
        }
        position.validate(&PositionRules {
            ente_fiscal_code: ente,
            now,
            segregation_codes: &segregation_codes,
        })?;
        let mut problems = Vec::new();
        let needs_iuv = position.options.iter().any(|o| o.iuv.is_none());
        if needs_iuv && segregation_codes.is_empty() {
            problems.push(FieldError {
                field: "paymentOption".into(),
                code: codes::BAD_IUV,
                message: "l'ente non ha stazioni: impossibile generare lo IUV".into(),
            });
        }
        let refs: BTreeSet<&AccertamentoRef> = position
            .options
            .iter()
            .flat_map(|o| &o.transfers)
            .flat_map(|t| &t.quotas)
            .map(|q| &q.accertamento)
            .collect();
        for acc in refs {
            if !self.accertamento_exists(ente, acc).await? {
                problems.push(FieldError {
                    field: "accountingQuotas".into(),
                    code: codes::UNKNOWN_ACCERTAMENTO,
                    message: format!(
                        "l'accertamento {}/{} non esiste o non è attivo",
                        acc.year, acc.code
                    ),
                });
            }
        }
        if !problems.is_empty() {
            return Err(Invalid(problems).into());
        }
        Ok(segregation_codes)
    }

    async fn assign_notice_numbers(
        &self,
        ente: &str,
        segregation_codes: &[u8],
        position: &mut DebtPosition,
        wanted: &[bool],
    ) -> Result<()> {
        let count = wanted.iter().filter(|w| **w).count() as u32;
        let mut fresh = self
            .fresh_notice_numbers(ente, segregation_codes, count)
            .await?;
        hand_out_notice_numbers(position, wanted, &mut fresh)
    }

    /// `count` new notice numbers of the Ente's default station.
    async fn fresh_notice_numbers(
        &self,
        ente: &str,
        segregation_codes: &[u8],
        count: u32,
    ) -> Result<std::vec::IntoIter<NoticeNumber>> {
        Ok(match segregation_codes.first() {
            Some(seg) if count > 0 => self.allocate_notice_numbers(ente, *seg, count).await?,
            _ => Vec::new(),
        }
        .into_iter())
    }

    /// A position as GPD shows it, reported states included.
    pub async fn get_position(&self, ente: &str, iupd: &str) -> Result<StoredPosition> {
        let mut conn = self.pool.acquire().await?;
        let mut stored = load_position(&mut conn, ente, iupd, "").await?;
        show_reporting(&mut conn, ente, std::slice::from_mut(&mut stored)).await?;
        Ok(stored)
    }

    /// The position that owns a notice number, with the index of the option,
    /// in its stored states: what payment decisions read (PAID and REPORTED
    /// are alike to them), without the flows' lookup that
    /// [`Store::get_position`] adds.
    pub async fn find_by_notice_number(
        &self,
        ente: &str,
        notice_number: &str,
    ) -> Result<(StoredPosition, usize)> {
        let mut conn = self.pool.acquire().await?;
        find_by_notice(&mut conn, ente, notice_number, "").await
    }

    pub async fn list_positions(
        &self,
        ente: &str,
        filter: &ListFilter,
    ) -> Result<Page<StoredPosition>> {
        self.list_positions_at(ente, filter, Utc::now()).await
    }

    /// Lists with the status as it is at `now` (see
    /// `DebtPosition::effective_status`), and with the date filters applied
    /// to the payment options, as GPD does: a plan whose installments span
    /// months matches on any of them.
    pub async fn list_positions_at(
        &self,
        ente: &str,
        filter: &ListFilter,
        now: DateTime<Utc>,
    ) -> Result<Page<StoredPosition>> {
        // $1 ente, $2 now, then the integer parameters, then the text ones.
        let mut conditions = vec!["ente = $1".to_string()];
        let mut ints: Vec<i64> = Vec::new();
        let mut texts: Vec<String> = Vec::new();
        let mut option_range = |col: &str,
                                from: Option<DateTime<Utc>>,
                                to: Option<DateTime<Utc>>,
                                ints: &mut Vec<i64>| {
            if from.is_none() && to.is_none() {
                return;
            }
            let mut parts = vec!["o.position_id = debt_positions.id".to_string()];
            if let Some(v) = from {
                ints.push(to_micros(v));
                parts.push(format!("o.{col} >= ${}", ints.len() + 2));
            }
            if let Some(v) = to {
                ints.push(to_micros(v));
                parts.push(format!("o.{col} <= ${}", ints.len() + 2));
            }
            conditions.push(format!(
                "EXISTS (SELECT 1 FROM payment_options o WHERE {})",
                parts.join(" AND ")
            ));
        };
        option_range(
            "due_date",
            filter.due_date_from,
            filter.due_date_to,
            &mut ints,
        );
        option_range(
            "payment_date",
            filter.payment_date_from,
            filter.payment_date_to,
            &mut ints,
        );
        let mut next = ints.len() + 3;
        if !filter.statuses.is_empty() {
            let mut placeholders = Vec::with_capacity(filter.statuses.len());
            for status in &filter.statuses {
                texts.push(status.as_str().to_string());
                placeholders.push(format!("${next}"));
                next += 1;
            }
            conditions.push(format!(
                "{} IN ({})",
                effective_status_sql("$2"),
                placeholders.join(", ")
            ));
        }
        if let Some(cf) = &filter.debtor_fiscal_code {
            texts.push(cf.clone());
            conditions.push(format!("debtor_fiscal_code = ${next}"));
        }
        let where_clause = conditions.join(" AND ");
        let order_col = match filter.order_by {
            OrderBy::InsertedDate => "inserted_at",
            OrderBy::CompanyName => "company_name",
            OrderBy::Iupd => "iupd",
            OrderBy::Status => "status",
        };
        let direction = if filter.ascending { "ASC" } else { "DESC" };
        let limit = filter.limit.clamp(1, 1000);
        let count_sql =
            format!("SELECT CAST(COUNT(*) AS BIGINT) FROM debt_positions WHERE {where_clause}");
        let mut count_q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count_sql))
            .bind(ente)
            .bind(to_micros(now));
        for v in &ints {
            count_q = count_q.bind(*v);
        }
        for v in &texts {
            count_q = count_q.bind(v.clone());
        }
        let items_found = count_q.fetch_one(&self.pool).await? as u64;
        let sql = format!(
            "SELECT {POSITION_COLUMNS} FROM debt_positions WHERE {where_clause}
             ORDER BY {order_col} {direction}, id {direction} LIMIT {limit} OFFSET {}",
            u64::from(filter.page) * u64::from(limit)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ente)
            .bind(to_micros(now));
        for v in &ints {
            q = q.bind(*v);
        }
        for v in &texts {
            q = q.bind(v.clone());
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut conn = self.pool.acquire().await?;
        let mut items = load_children(&mut conn, ente, rows).await?;
        show_reporting(&mut conn, ente, &mut items).await?;
        Ok(Page {
            items,
            page: filter.page,
            limit,
            items_found,
            total_pages: items_found.div_ceil(u64::from(limit)) as u32,
        })
    }

    /// Replaces the content of a position (GPD's update). Allowed only while
    /// nothing has been paid; the position returns to DRAFT unless
    /// `to_publish`.
    pub async fn replace_position(
        &self,
        ente: &str,
        iupd: &str,
        position: DebtPosition,
        now: DateTime<Utc>,
        to_publish: bool,
    ) -> Result<StoredPosition> {
        self.replace_position_placed(ente, iupd, position, None, now, to_publish)
            .await
    }

    /// [`Store::replace_position`] in the catalogue's `placement`; when
    /// `None`, what the new content says, else the position's current one.
    pub async fn replace_position_placed(
        &self,
        ente: &str,
        iupd: &str,
        position: DebtPosition,
        placement: Option<Placement>,
        now: DateTime<Utc>,
        to_publish: bool,
    ) -> Result<StoredPosition> {
        let now = from_micros(to_micros(now));
        let (position, version, placement) = self
            .plan_replacement(ente, iupd, position, placement, now, to_publish)
            .await?;
        let mut tx = self.write_tx().await?;
        let (stored, was) = apply_replacement(
            &mut tx,
            ente,
            position,
            placement,
            version,
            now,
            self.dialect,
        )
        .await?;
        let events = crate::notify::published_events(&mut tx, ente, &[(&stored, was)]).await?;
        crate::events::write(&mut tx, &events, now).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Everything of a replacement that reads: the checks, the notice
    /// numbers kept or assigned. Answers the new content and the version it
    /// replaces, which [`apply_replacement`] checks again under lock.
    async fn plan_replacement(
        &self,
        ente: &str,
        iupd: &str,
        mut position: DebtPosition,
        placement: Option<Placement>,
        now: DateTime<Utc>,
        to_publish: bool,
    ) -> Result<(DebtPosition, i64, Placement)> {
        position.iupd = iupd.to_string();
        // IUVs the position already owns are legitimately reused by an update;
        // validation must not see them as foreign.
        let current = self.get_position(ente, iupd).await?;
        current.position.check_updatable(now)?;
        // An option resent with its IUV keeps the notice number it already has
        // (legacy aux 0/1/2 ones included): the debtor may hold it on paper.
        for option in &mut position.options {
            if option.notice_number.is_none()
                && let Some(existing) = current
                    .position
                    .options
                    .iter()
                    .find(|o| o.iuv.is_some() && o.iuv == option.iuv)
            {
                option.notice_number = existing.notice_number.clone();
            }
        }
        let segregation_codes = self.prepare(ente, &mut position, now).await?;
        position.inserted_date = current.position.inserted_date;
        position.status = PositionStatus::Draft;
        position.publish_date = None;
        position.payment_date = None;
        position.last_updated_date = Some(now);
        if to_publish {
            position.publish(now)?;
        }
        let placement = match placement {
            Some(p) => self.check_placement(ente, p).await?,
            None => {
                let derived = self.placement_of(ente, &position).await?;
                Placement {
                    service: derived.service.or(current.placement.service),
                    office: derived.office.or(current.placement.office),
                }
            }
        };
        let wanted: Vec<bool> = position.options.iter().map(|o| o.iuv.is_none()).collect();
        self.assign_notice_numbers(ente, &segregation_codes, &mut position, &wanted)
            .await?;
        Ok((position, current.version, placement))
    }

    pub async fn delete_position(&self, ente: &str, iupd: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let current = load_position(&mut tx, ente, iupd, self.dialect.for_update()).await?;
        current.position.check_deletable()?;
        delete_by_id(&mut tx, current.id).await?;
        if crate::events::was_published(&current) {
            crate::notify_channels::keep_gone(&mut tx, ente, &current, Utc::now()).await?;
            let e = crate::events::cancelled(ente, &current, "DELETED");
            crate::events::write(&mut tx, &[e], Utc::now()).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn publish_position(
        &self,
        ente: &str,
        iupd: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredPosition> {
        self.transition(ente, iupd, |p| p.publish(now).map_err(Into::into))
            .await
    }

    pub async fn invalidate_position(
        &self,
        ente: &str,
        iupd: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredPosition> {
        self.transition(ente, iupd, |p| p.invalidate(now).map_err(Into::into))
            .await
    }

    /// Marks a payment option as paid outside pagoPA (GPD's
    /// `paymentoptions/paids/{nav}`).
    pub async fn mark_option_paid(
        &self,
        ente: &str,
        notice_number: &str,
        paid_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(StoredPosition, usize)> {
        let mut tx = self.write_tx().await?;
        let (mut stored, index) =
            find_by_notice(&mut tx, ente, notice_number, self.dialect.for_update()).await?;
        stored.position.pay_option(index, paid_at, now)?;
        save_state(&mut tx, &mut stored, now).await?;
        let mut events = vec![crate::events::paid(
            ente,
            &stored,
            index,
            &crate::events::Payment {
                receipt: None,
                amount: stored.position.options[index].amount.0,
                paid_at,
                anomaly: None,
            },
        )];
        events.extend(crate::events::reported_now(&mut tx, ente, &stored, index).await?);
        crate::events::write(&mut tx, &events, now).await?;
        tx.commit().await?;
        // A flow may have listed it already: answered as GPD shows it.
        let mut conn = self.pool.acquire().await?;
        show_reporting(&mut conn, ente, std::slice::from_mut(&mut stored)).await?;
        Ok((stored, index))
    }

    /// Sets the notification fee of the option with `notice_number` (SEND,
    /// through GPD): the option's and its Ente transfer's amounts change
    /// with it ([`DebtPosition::set_notification_fee`]). Answers the
    /// position and the option's index.
    pub async fn set_notification_fee(
        &self,
        ente: &str,
        notice_number: &str,
        fee: incasso_core::Cents,
        now: DateTime<Utc>,
    ) -> Result<(StoredPosition, usize)> {
        let mut tx = self.write_tx().await?;
        let (mut stored, index) =
            find_by_notice(&mut tx, ente, notice_number, self.dialect.for_update()).await?;
        stored
            .position
            .set_notification_fee(index, fee, ente, now)
            .map_err(|e| StoreError::Unprocessable(e.code(), e.to_string()))?;
        let option = &stored.position.options[index];
        let iuv = option.iuv.as_deref().unwrap_or_default();
        sqlx::query(
            "UPDATE payment_options SET amount = $3, notification_fee = $4
             WHERE position_id = $1 AND iuv = $2",
        )
        .bind(stored.id)
        .bind(iuv)
        .bind(option.amount.0)
        .bind(option.notification_fee.0)
        .execute(&mut *tx)
        .await?;
        for t in &option.transfers {
            sqlx::query(
                "UPDATE transfers SET amount = $4 WHERE ente = $1 AND iuv = $2 AND id_transfer = $3",
            )
            .bind(ente)
            .bind(iuv)
            .bind(i64::from(t.id_transfer))
            .bind(t.amount.0)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE debt_positions SET updated_at = $2, version = version + 1 WHERE id = $1",
        )
        .bind(stored.id)
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        stored.version += 1;
        tx.commit().await?;
        let mut conn = self.pool.acquire().await?;
        show_reporting(&mut conn, ente, std::slice::from_mut(&mut stored)).await?;
        Ok((stored, index))
    }

    /// The option with `notice_number` and its position, as GPD shows them.
    pub async fn position_of_notice(
        &self,
        ente: &str,
        notice_number: &str,
    ) -> Result<(StoredPosition, usize)> {
        let mut conn = self.pool.acquire().await?;
        let (mut stored, index) = find_by_notice(&mut conn, ente, notice_number, "").await?;
        show_reporting(&mut conn, ente, std::slice::from_mut(&mut stored)).await?;
        Ok((stored, index))
    }

    /// Marks many options paid in one transaction, each as
    /// [`Store::mark_option_paid`] would; one refused by its position
    /// leaves the others be, and is answered with its error in its place.
    /// (Refusals come from the position's rules, before anything of that
    /// option is written.)
    pub async fn mark_options_paid(
        &self,
        ente: &str,
        paid: &[(String, DateTime<Utc>)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Result<()>>> {
        let mut tx = self.write_tx().await?;
        let mut events = Vec::new();
        let mut out = Vec::with_capacity(paid.len());
        for (notice_number, paid_at) in paid {
            let found =
                find_by_notice(&mut tx, ente, notice_number, self.dialect.for_update()).await;
            // A failed statement aborts a PostgreSQL transaction: only
            // errors the database did not raise are the option's own.
            let (mut stored, index) = match found {
                Ok(f) => f,
                Err(e @ StoreError::Backend(_)) => return Err(e),
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            if let Err(e) = stored.position.pay_option(index, *paid_at, now) {
                out.push(Err(e.into()));
                continue;
            }
            save_state(&mut tx, &mut stored, now).await?;
            events.push(crate::events::paid(
                ente,
                &stored,
                index,
                &crate::events::Payment {
                    receipt: None,
                    amount: stored.position.options[index].amount.0,
                    paid_at: *paid_at,
                    anomaly: None,
                },
            ));
            events.extend(crate::events::reported_now(&mut tx, ente, &stored, index).await?);
            out.push(Ok(()));
        }
        crate::events::write(&mut tx, &events, now).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn transition(
        &self,
        ente: &str,
        iupd: &str,
        change: impl FnOnce(&mut DebtPosition) -> Result<()>,
    ) -> Result<StoredPosition> {
        let mut tx = self.write_tx().await?;
        let mut stored = load_position(&mut tx, ente, iupd, self.dialect.for_update()).await?;
        let was_published = crate::events::was_published(&stored);
        change(&mut stored.position)?;
        let now = stored.position.last_updated_date.unwrap_or_default();
        save_state(&mut tx, &mut stored, now).await?;
        if was_published && stored.position.status == PositionStatus::Invalid {
            let e = crate::events::cancelled(ente, &stored, "INVALIDATED");
            crate::events::write(&mut tx, &[e], now).await?;
        }
        let events =
            crate::notify::published_events(&mut tx, ente, &[(&stored, was_published)]).await?;
        crate::events::write(&mut tx, &events, now).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Moves stored states forward in time: published positions whose
    /// validity date came become VALID, and valid ones past their last due
    /// date with `switch_to_expired` become EXPIRED. Returns how many moved.
    pub async fn refresh_time_states(&self, now: DateTime<Utc>) -> Result<u64> {
        let t = to_micros(now);
        let a = sqlx::query(
            "UPDATE debt_positions SET status = 'VALID', updated_at = $1, version = version + 1
             WHERE status = 'PUBLISHED' AND validity_date <= $1",
        )
        .bind(t)
        .execute(&self.writer)
        .await?;
        let b = sqlx::query(
            "UPDATE debt_positions SET status = 'EXPIRED', updated_at = $1, version = version + 1
             WHERE status = 'VALID' AND switch_to_expired = 1 AND max_due_date < $1",
        )
        .bind(t)
        .execute(&self.writer)
        .await?;
        Ok(a.rows_affected() + b.rows_affected())
    }
}

/// Instants are stored to the microsecond; cutting them here makes what a
/// create returns identical to what a later read returns.
fn truncate_to_storage_precision(p: &mut DebtPosition) {
    let cut = |t: DateTime<Utc>| from_micros(to_micros(t));
    p.validity_date = p.validity_date.map(cut);
    for o in &mut p.options {
        o.due_date = cut(o.due_date);
        o.retention_date = o.retention_date.map(cut);
    }
}

impl Store {
    /// The Ente's segregation codes, default station first, in one query;
    /// `NotFound` if the Ente does not exist.
    async fn ente_segregation_codes(&self, ente: &str) -> Result<Vec<u8>> {
        let rows = sqlx::query(
            "SELECT s.segregation_code FROM enti e LEFT JOIN stations s ON s.ente = e.fiscal_code
             WHERE e.fiscal_code = $1 ORDER BY s.created_at, s.station_id",
        )
        .bind(ente)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Err(StoreError::NotFound("ente"));
        }
        let mut codes = Vec::new();
        for r in &rows {
            if let Some(seg) = r.try_get::<Option<i64>, _>("segregation_code")? {
                codes.push(
                    u8::try_from(seg)
                        .map_err(|_| StoreError::Corrupt(format!("segregation code {seg}")))?,
                );
            }
        }
        Ok(codes)
    }
}

/// Gives the options that want one (`wanted`) a notice number from
/// `fresh`, and the others the notice number of the IUV they brought.
fn hand_out_notice_numbers(
    position: &mut DebtPosition,
    wanted: &[bool],
    fresh: &mut impl Iterator<Item = NoticeNumber>,
) -> Result<()> {
    for (option, want) in position.options.iter_mut().zip(wanted) {
        if *want {
            let nav = fresh
                .next()
                .ok_or_else(|| StoreError::Corrupt("IUV allocation short".into()))?;
            option.iuv = Some(nav.as_str()[1..].to_string());
            option.notice_number = Some(nav);
        } else if option.notice_number.is_none() {
            let iuv = option.iuv.as_deref().unwrap_or_default();
            option.notice_number = Some(notice_number_from_iuv(3, None, iuv).map_err(|e| {
                Invalid::one(
                    "paymentOption.iuv",
                    codes::BAD_IUV,
                    format!("IUV non valido ({e})"),
                )
            })?);
        }
    }
    Ok(())
}

/// Writes a planned replacement, if the position is still the version it
/// was planned on and still may be changed.
async fn apply_replacement(
    conn: &mut AnyConnection,
    ente: &str,
    position: DebtPosition,
    placement: Placement,
    version: i64,
    now: DateTime<Utc>,
    dialect: crate::Dialect,
) -> Result<(StoredPosition, bool)> {
    let locked = load_position(conn, ente, &position.iupd, dialect.for_update()).await?;
    let was_published = crate::events::was_published(&locked);
    if locked.version != version {
        return Err(StoreError::Conflict(
            "la posizione è stata modificata nel frattempo: riprovare".into(),
        ));
    }
    locked.position.check_updatable(now)?;
    delete_by_id(conn, locked.id).await?;
    let id = match insert_position_with_id(
        conn,
        ente,
        &position,
        &placement,
        now,
        Some(locked.id),
        locked.version + 1,
    )
    .await
    {
        Ok(id) => id,
        Err(InsertError::Iuv(iuv)) => return Err(iuv_taken(&iuv)),
        Err(InsertError::Iupd) => return Err(duplicate_iupd(&position.iupd)),
        Err(InsertError::Other(e)) => return Err(e),
    };
    Ok((
        StoredPosition {
            id,
            version: locked.version + 1,
            position,
            placement,
        },
        was_published,
    ))
}

/// The failure of the position at `index` of a call on many.
fn item_error(index: usize, iupd: &str, source: StoreError) -> StoreError {
    StoreError::Item {
        index,
        iupd: iupd.to_string(),
        source: Box::new(source),
    }
}

fn duplicate_iupd(iupd: &str) -> StoreError {
    StoreError::Conflict(format!("esiste già una posizione con iupd '{iupd}'"))
}

fn iuv_taken(iuv: &str) -> StoreError {
    StoreError::Conflict(format!(
        "lo IUV {iuv} è già usato da un'altra posizione dell'ente"
    ))
}

pub(crate) enum InsertError {
    Iupd,
    Iuv(String),
    Other(StoreError),
}

impl From<sqlx::Error> for InsertError {
    fn from(e: sqlx::Error) -> Self {
        InsertError::Other(e.into())
    }
}

async fn insert_position(
    conn: &mut AnyConnection,
    ente: &str,
    p: &DebtPosition,
    placement: &Placement,
    now: DateTime<Utc>,
) -> std::result::Result<i64, InsertError> {
    insert_position_with_id(conn, ente, p, placement, now, None, 1).await
}

pub(crate) async fn insert_position_with_id(
    conn: &mut AnyConnection,
    ente: &str,
    p: &DebtPosition,
    placement: &Placement,
    now: DateTime<Utc>,
    id: Option<i64>,
    version: i64,
) -> std::result::Result<i64, InsertError> {
    let min_due = p.options.iter().map(|o| o.due_date).min().unwrap_or(now);
    let max_due = p.options.iter().map(|o| o.due_date).max().unwrap_or(now);
    let d = &p.debtor;
    let id_column = if id.is_some() { "id, " } else { "" };
    let id_value = if id.is_some() { "$31, " } else { "" };
    let sql = format!(
        "INSERT INTO debt_positions ({id_column}ente, iupd, debtor_type, debtor_fiscal_code, debtor_name,
            debtor_street, debtor_civic, debtor_postal_code, debtor_city, debtor_province,
            debtor_region, debtor_country, debtor_email, debtor_phone, company_name, office_name,
            validity_date, switch_to_expired, pay_stand_in, status, min_due_date, max_due_date,
            inserted_at, publish_date, payment_date, updated_at, version, origin, service_code,
            office_code)
         VALUES ({id_value}$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
            $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30)
         RETURNING id"
    );
    let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
        .bind(ente)
        .bind(&p.iupd)
        .bind(d.kind.as_str())
        .bind(&d.fiscal_code)
        .bind(&d.full_name)
        .bind(&d.street_name)
        .bind(&d.civic_number)
        .bind(&d.postal_code)
        .bind(&d.city)
        .bind(&d.province)
        .bind(&d.region)
        .bind(&d.country)
        .bind(&d.email)
        .bind(&d.phone)
        .bind(&p.company_name)
        .bind(&p.office_name)
        .bind(opt_to_micros(p.validity_date))
        .bind(i64::from(p.switch_to_expired))
        .bind(i64::from(p.pay_stand_in))
        .bind(p.status.as_str())
        .bind(to_micros(min_due))
        .bind(to_micros(max_due))
        .bind(to_micros(p.inserted_date.unwrap_or(now)))
        .bind(opt_to_micros(p.publish_date))
        .bind(opt_to_micros(p.payment_date))
        .bind(to_micros(p.last_updated_date.unwrap_or(now)))
        .bind(version)
        // Positions from a supply are written by `batch`, with theirs.
        .bind(None::<String>)
        .bind(placement.service.clone())
        .bind(placement.office.clone());
    if let Some(id) = id {
        q = q.bind(id);
    }
    let id = match q.fetch_one(&mut *conn).await {
        Ok(id) => id,
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Err(InsertError::Iupd),
        Err(e) => return Err(e.into()),
    };
    for (index, o) in p.options.iter().enumerate() {
        let iuv = o.iuv.clone().unwrap_or_default();
        let nav = o
            .notice_number
            .as_ref()
            .map(|n| n.as_str().to_string())
            .unwrap_or_default();
        let res = sqlx::query(
            "INSERT INTO payment_options (ente, iuv, notice_number, position_id, option_index, amount,
                description, is_partial_payment, due_date, retention_date, fee, notification_fee,
                status, payment_date, reporting_date, metadata)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(ente)
        .bind(&iuv)
        .bind(&nav)
        .bind(id)
        .bind(index as i64)
        .bind(o.amount.0)
        .bind(&o.description)
        .bind(i64::from(o.is_partial_payment))
        .bind(to_micros(o.due_date))
        .bind(opt_to_micros(o.retention_date))
        .bind(o.fee.0)
        .bind(o.notification_fee.0)
        .bind(o.status.as_str())
        .bind(opt_to_micros(o.payment_date))
        .bind(opt_to_micros(o.reporting_date))
        .bind(metadata_json(&o.metadata))
        .execute(&mut *conn)
        .await;
        match res {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(InsertError::Iuv(iuv));
            }
            Err(e) => return Err(e.into()),
        }
        for t in &o.transfers {
            let quotas: Vec<QuotaJson> = t
                .quotas
                .iter()
                .map(|q| QuotaJson {
                    year: q.accertamento.year,
                    code: q.accertamento.code.clone(),
                    amount: q.amount.0,
                })
                .collect();
            sqlx::query(
                "INSERT INTO transfers (ente, iuv, id_transfer, amount, organization_fiscal_code,
                    company_name, remittance_information, category, iban, postal_iban, stamp, metadata,
                    quotas, reported)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(ente)
            .bind(&iuv)
            .bind(i64::from(t.id_transfer))
            .bind(t.amount.0)
            .bind(&t.organization_fiscal_code)
            .bind(&t.company_name)
            .bind(&t.remittance_information)
            .bind(&t.category)
            .bind(&t.iban)
            .bind(&t.postal_iban)
            .bind(t.stamp.as_ref().map(|s| serde_json::to_string(s).unwrap_or_default()))
            .bind(metadata_json(&t.metadata))
            .bind(serde_json::to_string(&quotas).unwrap_or_else(|_| "[]".into()))
            .bind(i64::from(t.reported))
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(id)
}

pub(crate) fn metadata_json(m: &[(String, String)]) -> String {
    serde_json::to_string(m).unwrap_or_else(|_| "[]".into())
}

fn parse_json<T: for<'de> Deserialize<'de>>(s: &str, what: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub(crate) async fn save_state(
    conn: &mut AnyConnection,
    stored: &mut StoredPosition,
    now: DateTime<Utc>,
) -> Result<()> {
    for s in state_statements(stored, now) {
        s.into_any().execute(&mut *conn).await?;
    }
    stored.version += 1;
    Ok(())
}

/// The statements of [`save_state`]: the position's state, and that of its
/// options with a payment (none ever goes back to unpaid, so unpaid rows
/// are already right).
pub(crate) fn state_statements(stored: &StoredPosition, now: DateTime<Utc>) -> Vec<Stmt> {
    let p = &stored.position;
    let mut out = vec![
        Stmt::new(
            "UPDATE debt_positions SET status = $2, validity_date = $3, publish_date = $4,
                payment_date = $5, updated_at = $6, version = version + 1 WHERE id = $1",
        )
        .bind(stored.id)
        .bind(p.status.as_str())
        .bind(opt_to_micros(p.validity_date))
        .bind(opt_to_micros(p.publish_date))
        .bind(opt_to_micros(p.payment_date))
        .bind(to_micros(now)),
    ];
    for o in p
        .options
        .iter()
        .filter(|o| o.status != OptionStatus::Unpaid)
    {
        out.push(
            Stmt::new(
                "UPDATE payment_options SET status = $3, payment_date = $4, reporting_date = $5
                 WHERE position_id = $1 AND iuv = $2",
            )
            .bind(stored.id)
            .bind(o.iuv.as_deref().unwrap_or_default())
            .bind(o.status.as_str())
            .bind(opt_to_micros(o.payment_date))
            .bind(opt_to_micros(o.reporting_date)),
        );
    }
    out
}

/// Removes a position and its options (their transfers and quotas follow
/// by cascade).
pub(crate) async fn delete_by_id(conn: &mut AnyConnection, id: i64) -> Result<()> {
    for s in delete_statements(id) {
        s.into_any().execute(&mut *conn).await?;
    }
    Ok(())
}

pub(crate) fn delete_statements(id: i64) -> [Stmt; 2] {
    [
        Stmt::new("DELETE FROM payment_options WHERE position_id = $1").bind(id),
        Stmt::new("DELETE FROM debt_positions WHERE id = $1").bind(id),
    ]
}

pub(crate) async fn load_position(
    conn: &mut AnyConnection,
    ente: &str,
    iupd: &str,
    lock: &str,
) -> Result<StoredPosition> {
    let sql = format!(
        "SELECT {POSITION_COLUMNS} FROM debt_positions WHERE ente = $1 AND iupd = $2{lock}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ente)
        .bind(iupd)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound("posizione debitoria"))?;
    load_children(conn, ente, vec![row])
        .await?
        .pop()
        .ok_or(StoreError::NotFound("posizione debitoria"))
}

pub(crate) async fn find_by_notice(
    conn: &mut AnyConnection,
    ente: &str,
    notice_number: &str,
    lock: &str,
) -> Result<(StoredPosition, usize)> {
    // One statement for the position, its options and their transfers:
    // the Node asks for a notice three times per payment (verify,
    // activate, receipt), and three statements each were most of a
    // payment's round trips to PostgreSQL (`bench node`). Only the
    // position's row is locked (PostgreSQL refuses to lock the nullable
    // side of the outer join).
    let sql: &str = if lock.is_empty() {
        &FIND_BY_NOTICE
    } else {
        &FIND_BY_NOTICE_LOCKED
    };
    let rows = notice_rows(conn, sql, ente, notice_number).await?;
    position_of_notice(&rows, notice_number)
}

/// The rows of a [`find_by_notice_sql`] text for `notice_number`.
async fn notice_rows(
    conn: &mut AnyConnection,
    sql: &str,
    ente: &str,
    notice_number: &str,
) -> Result<Vec<sqlx::any::AnyRow>> {
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ente)
        .bind(notice_number)
        .fetch_all(&mut *conn)
        .await?)
}

/// What a receipt's transaction needs to know besides the position, read
/// with it in one statement (two round trips fewer per receipt).
pub(crate) struct ReceiptContext {
    /// Some reporting flow lists the notice's IUV: only then is it worth
    /// asking which (`events::reported_now`).
    pub listed_in_a_flow: bool,
    /// A desk's open POS session holds the notice.
    pub held_by_pos: bool,
}

/// [`find_by_notice`], the position's row locked, with the receipt's
/// [`ReceiptContext`].
pub(crate) async fn find_for_receipt(
    conn: &mut AnyConnection,
    ente: &str,
    notice_number: &str,
    lock: &str,
) -> Result<(StoredPosition, usize, ReceiptContext)> {
    let sql: &str = if lock.is_empty() {
        &FIND_FOR_RECEIPT
    } else {
        &FIND_FOR_RECEIPT_LOCKED
    };
    let rows = notice_rows(conn, sql, ente, notice_number).await?;
    let (stored, index) = position_of_notice(&rows, notice_number)?;
    let first = &rows[0];
    let context = ReceiptContext {
        listed_in_a_flow: first.try_get::<i64, _>("listed_in_a_flow")? != 0,
        held_by_pos: first.try_get::<i64, _>("held_by_pos")? != 0,
    };
    Ok((stored, index, context))
}

/// The position that holds `notice_number`, from the rows of
/// [`find_by_notice_sql`], and the index of the notice's option.
fn position_of_notice(
    rows: &[sqlx::any::AnyRow],
    notice_number: &str,
) -> Result<(StoredPosition, usize)> {
    let first = rows.first().ok_or(StoreError::NotFound("avviso"))?;
    let mut stored = position_from(Cols {
        row: first,
        prefix: "p_",
    })?;
    let options = &mut stored.position.options;
    for row in rows {
        let iuv: String = row.try_get("o_iuv")?;
        if options.last().and_then(|o| o.iuv.as_deref()) != Some(iuv.as_str()) {
            options.push(option_from(Cols { row, prefix: "o_" })?);
        }
        let has_transfer = row.try_get::<Option<String>, _>("t_iuv")?.is_some();
        if has_transfer && let Some(option) = options.last_mut() {
            option
                .transfers
                .push(transfer_from(Cols { row, prefix: "t_" })?);
        }
    }
    let index = options
        .iter()
        .position(|o| {
            o.notice_number
                .as_ref()
                .is_some_and(|n| n.as_str() == notice_number)
        })
        .ok_or(StoreError::NotFound("avviso"))?;
    Ok((stored, index))
}

/// `table.column AS {prefix}column` for each of `columns` (written with
/// or without their table's alias).
fn aliased(columns: &str, table: &str, prefix: &str) -> String {
    columns
        .split(',')
        .map(|c| {
            let name = c.trim();
            let name = name.rsplit('.').next().unwrap_or(name);
            format!("{table}.{name} AS {prefix}{name}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn find_by_notice_sql(extra: &str, lock: &str) -> String {
    format!(
        "SELECT {}, {}, {}{extra}
         FROM payment_options n
         JOIN debt_positions p ON p.id = n.position_id
         JOIN payment_options o ON o.position_id = n.position_id
         LEFT JOIN transfers t ON t.ente = o.ente AND t.iuv = o.iuv
         WHERE n.ente = $1 AND n.notice_number = $2
         ORDER BY o.option_index, t.id_transfer{lock}",
        aliased(POSITION_COLUMNS, "p", "p_"),
        aliased(OPTION_COLUMNS, "o", "o_"),
        aliased(TRANSFER_COLUMNS, "t", "t_"),
    )
}

static FIND_BY_NOTICE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| find_by_notice_sql("", ""));
static FIND_BY_NOTICE_LOCKED: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| find_by_notice_sql("", " FOR UPDATE OF p"));

/// [`ReceiptContext`]'s two questions, about the notice's own option `n`.
/// Any flow line of the IUV counts: `reported_now` then applies the exact
/// rules (current flow, paid outcome).
const RECEIPT_CONTEXT: &str = ",
    CAST(CASE WHEN EXISTS (SELECT 1 FROM flow_payments fp WHERE fp.ente = n.ente AND fp.iuv = n.iuv)
        THEN 1 ELSE 0 END AS BIGINT) AS listed_in_a_flow,
    CAST(CASE WHEN EXISTS (SELECT 1 FROM pos_session_notices s
            WHERE s.ente = n.ente AND s.notice_number = n.notice_number
              AND s.open = 1 AND s.receipt_id IS NULL)
        THEN 1 ELSE 0 END AS BIGINT) AS held_by_pos";
static FIND_FOR_RECEIPT: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| find_by_notice_sql(RECEIPT_CONTEXT, ""));
static FIND_FOR_RECEIPT_LOCKED: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| find_by_notice_sql(RECEIPT_CONTEXT, " FOR UPDATE OF p"));

/// GPD's reported states on loaded positions (see
/// `DebtPosition::show_reporting`): one query for the whole page, the
/// paid options' transfers that current flows list as paid (outcomes 0, 4,
/// 8, 9: with a receipt or not, in stand-in or not), with when the first
/// such flow was taken in.
pub(crate) async fn show_reporting(
    conn: &mut AnyConnection,
    ente: &str,
    positions: &mut [StoredPosition],
) -> Result<()> {
    let iuvs: Vec<String> = positions
        .iter()
        .flat_map(|p| &p.position.options)
        .filter(|o| o.status != OptionStatus::Unpaid)
        .filter_map(|o| o.iuv.clone())
        .collect();
    if iuvs.is_empty() {
        return Ok(());
    }
    let mut listed = HashMap::new();
    for chunk in iuvs.chunks(500) {
        let placeholders = (0..chunk.len())
            .map(|i| format!("${}", i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        // The IUVs' lines first, then their flows (`CROSS JOIN`: see
        // `events::reported_now`).
        let sql = format!(
            "SELECT p.iuv, p.transfer_index, MIN(f.received_at) AS first
             FROM flow_payments p
             CROSS JOIN reporting_flows f
             WHERE p.ente = $1 AND p.iuv IN ({placeholders}) AND p.outcome IN (0, 4, 8, 9)
               AND f.ente = p.ente AND f.flow_id = p.flow_id
               AND f.flow_date_time = p.flow_date_time AND f.current = 1
             GROUP BY p.iuv, p.transfer_index"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ente);
        for iuv in chunk {
            q = q.bind(iuv.clone());
        }
        for r in q.fetch_all(&mut *conn).await? {
            let key = (r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)? as u8);
            listed.insert(key, from_micros(r.try_get::<i64, _>(2)?));
        }
    }
    if !listed.is_empty() {
        for p in positions.iter_mut() {
            p.position.show_reporting(&listed);
        }
    }
    Ok(())
}

/// Loads options and transfers for a page of position rows: two queries for
/// the whole page, never one per position.
async fn load_children(
    conn: &mut AnyConnection,
    ente: &str,
    rows: Vec<AnyRow>,
) -> Result<Vec<StoredPosition>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut positions = Vec::with_capacity(rows.len());
    for r in &rows {
        positions.push(position_from_row(r)?);
    }
    let ids: Vec<i64> = positions.iter().map(|p| p.id).collect();
    let placeholders = (0..ids.len())
        .map(|i| format!("${}", i + 1))
        .collect::<Vec<_>>()
        .join(", ");
    // By position id alone (the ids are the Ente's positions): with the
    // Ente's code beside it, PostgreSQL took the index on (ente,
    // due_date, position_id) and walked every option of the Ente, 0.7 ms
    // a position where the position's own index takes 0.01 (EXPLAIN,
    // `bench node`).
    let sql = format!(
        "SELECT {OPTION_COLUMNS} FROM payment_options o WHERE o.position_id IN ({placeholders})
         ORDER BY o.position_id, o.option_index"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in &ids {
        q = q.bind(*id);
    }
    let option_rows = q.fetch_all(&mut *conn).await?;
    // Transfers by their primary key (ente, iuv): a join through the
    // options would let the planner scan every transfer of the Ente.
    let iuvs: Vec<String> = option_rows
        .iter()
        .map(|r| r.try_get::<String, _>("iuv"))
        .collect::<std::result::Result<_, _>>()?;
    let mut transfers: HashMap<String, Vec<Transfer>> = HashMap::new();
    if !iuvs.is_empty() {
        let placeholders = (0..iuvs.len())
            .map(|i| format!("${}", i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {TRANSFER_COLUMNS} FROM transfers t WHERE t.ente = $1 AND t.iuv IN ({placeholders})
             ORDER BY t.iuv, t.id_transfer"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ente);
        for iuv in &iuvs {
            q = q.bind(iuv.clone());
        }
        for r in &q.fetch_all(&mut *conn).await? {
            let iuv: String = r.try_get("iuv")?;
            transfers
                .entry(iuv)
                .or_default()
                .push(transfer_from_row(r)?);
        }
    }
    let index: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    for r in &option_rows {
        let position_id: i64 = r.try_get("position_id")?;
        let mut option = option_from_row(r)?;
        option.transfers = transfers
            .remove(option.iuv.as_deref().unwrap_or_default())
            .unwrap_or_default();
        if let Some(i) = index.get(&position_id) {
            positions[*i].position.options.push(option);
        }
    }
    Ok(positions)
}

/// A row's columns by name: as in their table, or with a prefix where a
/// join brings columns of several tables that share names (`status`,
/// `amount`, `metadata`).
#[derive(Clone, Copy)]
struct Cols<'r> {
    row: &'r AnyRow,
    prefix: &'static str,
}

impl<'r> Cols<'r> {
    fn plain(row: &'r AnyRow) -> Cols<'r> {
        Cols { row, prefix: "" }
    }

    fn get<T>(&self, name: &str) -> std::result::Result<T, sqlx::Error>
    where
        T: for<'a> sqlx::Decode<'a, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        if self.prefix.is_empty() {
            self.row.try_get(name)
        } else {
            self.row.try_get(format!("{}{name}", self.prefix).as_str())
        }
    }
}

fn position_from_row(r: &AnyRow) -> Result<StoredPosition> {
    position_from(Cols::plain(r))
}

fn position_from(r: Cols) -> Result<StoredPosition> {
    let kind: String = r.get("debtor_type")?;
    let status: String = r.get("status")?;
    Ok(StoredPosition {
        id: r.get("id")?,
        version: r.get("version")?,
        position: DebtPosition {
            iupd: r.get("iupd")?,
            debtor: Debtor {
                kind: if kind == "G" {
                    DebtorType::G
                } else {
                    DebtorType::F
                },
                fiscal_code: r.get("debtor_fiscal_code")?,
                full_name: r.get("debtor_name")?,
                street_name: r.get("debtor_street")?,
                civic_number: r.get("debtor_civic")?,
                postal_code: r.get("debtor_postal_code")?,
                city: r.get("debtor_city")?,
                province: r.get("debtor_province")?,
                region: r.get("debtor_region")?,
                country: r.get("debtor_country")?,
                email: r.get("debtor_email")?,
                phone: r.get("debtor_phone")?,
            },
            company_name: r.get("company_name")?,
            office_name: r.get("office_name")?,
            validity_date: opt_from_micros(r.get("validity_date")?),
            switch_to_expired: r.get::<i64>("switch_to_expired")? != 0,
            pay_stand_in: r.get::<i64>("pay_stand_in")? != 0,
            status: status
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("position status {status}")))?,
            inserted_date: Some(from_micros(r.get("inserted_at")?)),
            publish_date: opt_from_micros(r.get("publish_date")?),
            payment_date: opt_from_micros(r.get("payment_date")?),
            last_updated_date: Some(from_micros(r.get("updated_at")?)),
            options: Vec::new(),
        },
        placement: Placement {
            service: r.get("service_code")?,
            office: r.get("office_code")?,
        },
    })
}

fn option_from_row(r: &AnyRow) -> Result<PaymentOption> {
    option_from(Cols::plain(r))
}

fn option_from(r: Cols) -> Result<PaymentOption> {
    let status: String = r.get("status")?;
    let metadata: String = r.get("metadata")?;
    let nav: String = r.get("notice_number")?;
    Ok(PaymentOption {
        iuv: Some(r.get("iuv")?),
        notice_number: Some(
            NoticeNumber::parse(&nav)
                .map_err(|e| StoreError::Corrupt(format!("notice number {nav}: {e}")))?
                .notice_number,
        ),
        amount: Cents(r.get("amount")?),
        description: r.get("description")?,
        is_partial_payment: r.get::<i64>("is_partial_payment")? != 0,
        due_date: from_micros(r.get("due_date")?),
        retention_date: opt_from_micros(r.get("retention_date")?),
        fee: Cents(r.get("fee")?),
        notification_fee: Cents(r.get("notification_fee")?),
        status: status
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("option status {status}")))?,
        payment_date: opt_from_micros(r.get("payment_date")?),
        reporting_date: opt_from_micros(r.get("reporting_date")?),
        metadata: parse_json(&metadata, "option metadata")?,
        transfers: Vec::new(),
    })
}

fn transfer_from_row(r: &AnyRow) -> Result<Transfer> {
    transfer_from(Cols::plain(r))
}

fn transfer_from(r: Cols) -> Result<Transfer> {
    let stamp: Option<String> = r.get("stamp")?;
    let metadata: String = r.get("metadata")?;
    let quotas: String = r.get("quotas")?;
    let quotas: Vec<QuotaJson> = parse_json(&quotas, "quotas")?;
    Ok(Transfer {
        id_transfer: r.get::<i64>("id_transfer")? as u8,
        amount: Cents(r.get("amount")?),
        organization_fiscal_code: r.get("organization_fiscal_code")?,
        company_name: r.get("company_name")?,
        remittance_information: r.get("remittance_information")?,
        category: r.get("category")?,
        iban: r.get("iban")?,
        postal_iban: r.get("postal_iban")?,
        stamp: stamp
            .map(|s| parse_json::<Stamp>(&s, "stamp"))
            .transpose()?,
        metadata: parse_json(&metadata, "transfer metadata")?,
        quotas: quotas
            .into_iter()
            .map(|q| AccountingQuota {
                accertamento: AccertamentoRef {
                    year: q.year,
                    code: q.code,
                },
                amount: Cents(q.amount),
            })
            .collect(),
        reported: r.get::<i64>("reported")? != 0,
    })
}

impl Store {
    /// GPD's massive IBAN change: moves up to `limit` of the Ente's own
    /// transfers from one account to another, only where nothing was paid
    /// yet (a paid transfer's IBAN is history). The positions touched are
    /// locked, so a payment arriving at the same moment waits or wins,
    /// never interleaves.
    pub async fn replace_transfer_iban(
        &self,
        ente: &str,
        old_iban: &str,
        new_iban: &str,
        limit: u32,
    ) -> Result<u64> {
        if let Err(e) = incasso_core::codes::check_iban(new_iban) {
            return Err(
                Invalid::one("newIban", codes::BAD_IBAN, format!("IBAN non valido ({e})")).into(),
            );
        }
        let now = to_micros(Utc::now());
        let mut tx = self.write_tx().await?;
        let sql = format!(
            "SELECT o.iuv, o.position_id FROM payment_options o JOIN debt_positions p ON p.id = o.position_id
             WHERE o.ente = $1 AND o.status = 'PO_UNPAID' AND p.status IN ('DRAFT', 'PUBLISHED', 'VALID')
             AND EXISTS (SELECT 1 FROM transfers x WHERE x.ente = $1 AND x.iuv = o.iuv
                         AND x.iban = $2 AND x.organization_fiscal_code = $1)
             ORDER BY o.iuv LIMIT $3{}",
            self.dialect.for_update()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ente)
            .bind(old_iban)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        let mut updated = 0;
        let mut positions = BTreeSet::new();
        for r in &rows {
            let iuv: String = r.try_get("iuv")?;
            positions.insert(r.try_get::<i64, _>("position_id")?);
            updated += sqlx::query(
                "UPDATE transfers SET iban = $3 WHERE ente = $1 AND iuv = $2 AND iban = $4
                 AND organization_fiscal_code = $1",
            )
            .bind(ente)
            .bind(&iuv)
            .bind(new_iban)
            .bind(old_iban)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        for id in positions {
            sqlx::query(
                "UPDATE debt_positions SET updated_at = $2, version = version + 1 WHERE id = $1",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(updated)
    }

    /// Moves the IUV sequence of the IUV's segregation code past it, after a
    /// generated IUV turned out to be taken (an application, or a previous
    /// intermediary, used numbers from the same range).
    async fn skip_sequence_past_used(&self, ente: &str, iuv: &str) -> Result<()> {
        let Ok(parsed) = NoticeNumber::parse(&format!("3{iuv}")) else {
            return Ok(());
        };
        let seg = i64::from(parsed.segregation_code.unwrap_or(0));
        // The highest IUV of the range already stored: aux-3 IUVs are fixed
        // width, so text order is number order.
        let prefix = format!("{seg:02}%");
        let highest: Option<String> = sqlx::query_scalar(
            "SELECT MAX(iuv) FROM payment_options WHERE ente = $1 AND iuv LIKE $2",
        )
        .bind(ente)
        .bind(&prefix)
        .fetch_one(&self.pool)
        .await?;
        let base: i64 = highest
            .as_deref()
            .and_then(|h| h.get(2..15))
            .and_then(|b| b.parse().ok())
            .unwrap_or(0);
        sqlx::query(
            "UPDATE iuv_sequences SET next_value = $3 WHERE ente = $1 AND segregation_code = $2 AND next_value < $3",
        )
        .bind(ente)
        .bind(seg)
        .bind(base + 1)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}

impl Store {
    /// The positions a supply created, `limit` at a time after the position
    /// id `after` (keyset paging: bulk printing holds one page at a time).
    pub async fn positions_of_supply(
        &self,
        ente: &str,
        supply_id: i64,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredPosition>> {
        let sql = format!(
            "SELECT {POSITION_COLUMNS} FROM debt_positions
             WHERE ente = $1 AND supply_id = $2 AND id > $3 ORDER BY id LIMIT $4"
        );
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ente)
            .bind(supply_id)
            .bind(after)
            .bind(i64::from(limit.max(1)))
            .fetch_all(&mut *conn)
            .await?;
        load_children(&mut conn, ente, rows).await
    }

    /// The Ente's positions with these ids, as [`Store::get_position`]
    /// shows them (reported states included), in four queries for the lot
    /// rather than four for each: the notification round reads its
    /// positions so (`bench notify` on PostgreSQL). Ids not found are left
    /// out.
    pub async fn positions_by_ids(&self, ente: &str, ids: &[i64]) -> Result<Vec<StoredPosition>> {
        let mut conn = self.pool.acquire().await?;
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let list = chunk
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT {POSITION_COLUMNS} FROM debt_positions WHERE ente = $1 AND id IN ({list})"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(ente)
                .fetch_all(&mut *conn)
                .await?;
            let mut page = load_children(&mut conn, ente, rows).await?;
            show_reporting(&mut conn, ente, &mut page).await?;
            found.extend(page);
        }
        Ok(found)
    }

    /// Sets the Ente's logo, printed on its notices.
    pub async fn put_logo(
        &self,
        ente: &str,
        content_type: &str,
        data: &[u8],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        self.get_ente(ente).await?;
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO ente_logos (ente, content_type, data, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (ente) DO UPDATE SET content_type = $2, data = $3, updated_at = $4",
        )
        .bind(ente)
        .bind(content_type)
        .bind(data.to_vec())
        .bind(crate::time::to_micros(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_logo(&self, ente: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM ente_logos WHERE ente = $1")
            .bind(ente)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The Ente's logo (content type, bytes), if it has one.
    pub async fn logo(&self, ente: &str) -> Result<Option<(String, Vec<u8>)>> {
        let row = sqlx::query("SELECT content_type, data FROM ente_logos WHERE ente = $1")
            .bind(ente)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get("content_type")?, r.try_get("data")?)))
            .transpose()
    }
}

/// The placements of one call on many positions, derived once per kind of
/// content (transfer category and office name): a supply or a GPD v2 call
/// repeats a few of them many times.
#[derive(Default)]
pub(crate) struct PlacementCache {
    seen: HashMap<(Option<String>, Option<String>), Placement>,
}

impl PlacementCache {
    pub(crate) async fn derive(
        &mut self,
        store: &Store,
        ente: &str,
        position: &DebtPosition,
    ) -> Result<Placement> {
        let key = (first_category(position), position.office_name.clone());
        if let Some(p) = self.seen.get(&key) {
            return Ok(p.clone());
        }
        let p = store.placement_of(ente, position).await?;
        self.seen.insert(key, p.clone());
        Ok(p)
    }
}

/// The taxonomy code of a position's own first transfer.
fn first_category(position: &DebtPosition) -> Option<String> {
    position
        .options
        .first()
        .and_then(|o| o.transfers.iter().min_by_key(|t| t.id_transfer))
        .map(|t| t.category.clone())
}

/// A receipt of one of a position's notices, as its page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionReceipt {
    pub receipt_id: String,
    pub notice_number: String,
    pub iuv: String,
    pub outcome: String,
    pub amount: Cents,
    pub fee: Option<Cents>,
    pub psp_name: String,
    pub payment_method: Option<String>,
    pub payment_date_time: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    /// Why it did not simply pay (a double payment...), if so.
    pub anomaly: Option<String>,
}

/// What a position's page shows besides the position itself.
#[derive(Debug, Clone, Default)]
pub struct PositionExtras {
    /// Newest first.
    pub receipts: Vec<PositionReceipt>,
    /// The audit log's events on the position and its notices, newest
    /// first, at most [`HISTORY_LIMIT`].
    pub history: Vec<crate::AuditEvent>,
    /// The supply that loaded it, if one did.
    pub supply_id: Option<i64>,
}

/// The most events a position's history shows.
pub const HISTORY_LIMIT: u32 = 200;

impl Store {
    /// What the position says of its own place ([`Placement::derive`]),
    /// reading only the services of its transfer's category and, when it
    /// names one, the offices.
    pub async fn placement_of(&self, ente: &str, position: &DebtPosition) -> Result<Placement> {
        let mut services = Vec::new();
        if let Some(category) = first_category(position) {
            let rows = sqlx::query(
                "SELECT code, office_code FROM services
                 WHERE ente = $1 AND taxonomy_code = $2 AND active = 1 LIMIT 2",
            )
            .bind(ente)
            .bind(&category)
            .fetch_all(&self.pool)
            .await?;
            for r in &rows {
                services.push(incasso_core::catalogue::Service {
                    code: r.try_get("code")?,
                    name: String::new(),
                    office_code: r.try_get("office_code")?,
                    taxonomy_code: category.clone(),
                    default_accertamento: None,
                    iban: None,
                    fixed_amount: None,
                    spontaneous: false,
                    pagopa_service_id: None,
                    active: true,
                });
            }
        }
        let offices = if position.office_name.is_some() {
            self.list_offices(ente).await?
        } else {
            Vec::new()
        };
        Ok(Placement::derive(position, &offices, &services))
    }

    /// A placement given by a person: its service and office must be the
    /// Ente's (an inactive service takes no new position).
    async fn check_placement(&self, ente: &str, p: Placement) -> Result<Placement> {
        let mut problems = Vec::new();
        if let Some(code) = &p.service {
            let active: Option<i64> =
                sqlx::query_scalar("SELECT active FROM services WHERE ente = $1 AND code = $2")
                    .bind(ente)
                    .bind(code)
                    .fetch_optional(&self.pool)
                    .await?;
            match active {
                Some(1) => {}
                Some(_) => problems.push(FieldError {
                    field: "service".into(),
                    code: codes::BAD_FORMAT,
                    message: format!("il servizio {code} non è attivo"),
                }),
                None => problems.push(FieldError {
                    field: "service".into(),
                    code: codes::BAD_FORMAT,
                    message: format!("il servizio {code} non è nel catalogo dell'ente"),
                }),
            }
        }
        if let Some(code) = &p.office {
            let found: Option<String> =
                sqlx::query_scalar("SELECT code FROM offices WHERE ente = $1 AND code = $2")
                    .bind(ente)
                    .bind(code)
                    .fetch_optional(&self.pool)
                    .await?;
            if found.is_none() {
                problems.push(FieldError {
                    field: "office".into(),
                    code: codes::BAD_FORMAT,
                    message: format!("l'ufficio {code} non è tra gli uffici dell'ente"),
                });
            }
        }
        if problems.is_empty() {
            Ok(p)
        } else {
            Err(Invalid(problems).into())
        }
    }

    /// The receipts of a position's notices, its history in the audit log
    /// and the supply that loaded it: a few indexed reads.
    pub async fn position_extras(
        &self,
        ente: &str,
        stored: &StoredPosition,
    ) -> Result<PositionExtras> {
        let mut out = PositionExtras::default();
        let iuvs: Vec<&str> = stored
            .position
            .options
            .iter()
            .filter_map(|o| o.iuv.as_deref())
            .collect();
        let mut conn = self.pool.acquire().await?;
        for chunk in iuvs.chunks(200) {
            let placeholders = (0..chunk.len())
                .map(|i| format!("${}", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT receipt_id, notice_number, iuv, outcome, amount, fee, psp_name, payment_method,
                    payment_date_time, received_at, anomaly
                 FROM receipts WHERE ente = $1 AND iuv IN ({placeholders})"
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ente);
            for iuv in chunk {
                q = q.bind(iuv.to_string());
            }
            for r in q.fetch_all(&mut *conn).await? {
                out.receipts.push(PositionReceipt {
                    receipt_id: r.try_get("receipt_id")?,
                    notice_number: r.try_get("notice_number")?,
                    iuv: r.try_get("iuv")?,
                    outcome: r.try_get("outcome")?,
                    amount: Cents(r.try_get("amount")?),
                    fee: r.try_get::<Option<i64>, _>("fee")?.map(Cents),
                    psp_name: r.try_get("psp_name")?,
                    payment_method: r.try_get("payment_method")?,
                    payment_date_time: opt_from_micros(r.try_get("payment_date_time")?),
                    received_at: from_micros(r.try_get("received_at")?),
                    anomaly: r.try_get("anomaly")?,
                });
            }
        }
        out.receipts
            .sort_by_key(|r| std::cmp::Reverse(r.received_at));
        // The position is named by its iupd in the log, its notices by
        // their numbers (a payment marked by hand, a notification fee).
        let mut objects = vec![stored.position.iupd.clone()];
        objects.extend(
            stored
                .position
                .options
                .iter()
                .filter_map(|o| o.notice_number.as_ref().map(|n| n.as_str().to_string())),
        );
        objects.truncate(100);
        let placeholders = (0..objects.len())
            .map(|i| format!("${}", i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT at, actor, ente, action, object, outcome, detail FROM audit_log
             WHERE ente = $1 AND object IN ({placeholders})
               AND action LIKE 'position.%'
             ORDER BY id DESC LIMIT {HISTORY_LIMIT}"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ente);
        for o in &objects {
            q = q.bind(o.clone());
        }
        for r in q.fetch_all(&mut *conn).await? {
            out.history.push(crate::AuditEvent {
                at: from_micros(r.try_get("at")?),
                actor: r.try_get("actor")?,
                ente: r.try_get("ente")?,
                action: r.try_get("action")?,
                object: r.try_get("object")?,
                outcome: r.try_get("outcome")?,
                detail: r.try_get("detail")?,
            });
        }
        out.supply_id = sqlx::query_scalar("SELECT supply_id FROM debt_positions WHERE id = $1")
            .bind(stored.id)
            .fetch_optional(&mut *conn)
            .await?
            .flatten();
        Ok(out)
    }
}
