//! Reporting back: the receipts of the positions an application loaded,
//! in that application's own layout, incremental per consumer.

use incasso_bus::Layout;
use incasso_bus::layout::{AmountFormat, DateFormat, ExportColumn, ExportSource};
use incasso_core::Cents;
use incasso_store::{PaidItem, Store, StoreError};

fn amount(v: i64, f: Option<AmountFormat>) -> String {
    match f.unwrap_or(AmountFormat::Dot) {
        AmountFormat::Cents => v.to_string(),
        AmountFormat::Dot => Cents(v).to_decimal(),
        AmountFormat::Italian => Cents(v).to_italian(),
    }
}

fn value(item: &PaidItem, c: &ExportColumn) -> String {
    match c.value.as_str() {
        "key" => item.key.clone(),
        "notice_number" => item.notice_number.clone(),
        "iuv" => item.iuv.clone(),
        "amount" => amount(item.amount, c.amount),
        "fee" => item.fee.map(|f| amount(f, c.amount)).unwrap_or_default(),
        "paid_at" => item
            .paid_at
            .map(|t| {
                let local = incasso_core::time::to_rome(t);
                match c.date.unwrap_or(DateFormat::Iso) {
                    DateFormat::DayMonthYear => local.format("%d/%m/%Y").to_string(),
                    DateFormat::Compact => local.format("%Y%m%d").to_string(),
                    DateFormat::Iso => local.format("%Y-%m-%dT%H:%M:%S").to_string(),
                }
            })
            .unwrap_or_default(),
        "receipt_id" => item.receipt_id.clone(),
        "psp_id" => item.psp_id.clone(),
        "psp_name" => item.psp_name.clone(),
        "payment_method" => item.payment_method.clone().unwrap_or_default(),
        "outcome" => item.outcome.clone(),
        _ => String::new(),
    }
}

/// What an export document holds, to be recorded as given to the
/// consumer once the document is delivered.
#[derive(Debug, Clone)]
pub enum Exported {
    /// Receipts, up to the last one (the consumer's cursor moves there).
    Receipts(Vec<PaidItem>),
    /// The regularization proposals of these sospesi.
    Regularizations(Vec<String>),
}

impl Exported {
    /// How many receipts or sospesi.
    pub fn len(&self) -> usize {
        match self {
            Exported::Receipts(items) => items.len(),
            Exported::Regularizations(ids) => ids.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Writes the export of what `consumer` has not had yet, and records it
/// as given. Returns the document and how many receipts or sospesi it has.
pub async fn export(
    store: &Store,
    ente: &str,
    layout: &Layout,
    consumer: &str,
) -> Result<(Vec<u8>, usize), StoreError> {
    let (bytes, exported) = prepare(store, ente, layout, consumer).await?;
    let n = exported.len();
    commit(store, ente, &layout.name, consumer, &exported).await?;
    Ok((bytes, n))
}

/// Records what a delivered export gave `consumer`: the next export starts
/// after it.
pub async fn commit(
    store: &Store,
    ente: &str,
    layout: &str,
    consumer: &str,
    exported: &Exported,
) -> Result<(), StoreError> {
    match exported {
        Exported::Receipts(items) => match items.last() {
            Some(last) => {
                store
                    .advance_export_cursor(ente, layout, consumer, last)
                    .await
            }
            None => Ok(()),
        },
        Exported::Regularizations(ids) => {
            store
                .mark_regularizations_exported(ente, layout, consumer, ids, chrono::Utc::now())
                .await
        }
    }
}

/// The export document without recording it: the caller commits once the
/// document is delivered (the outbox, after its file is in place).
pub async fn prepare(
    store: &Store,
    ente: &str,
    layout: &Layout,
    consumer: &str,
) -> Result<(Vec<u8>, Exported), StoreError> {
    let Some(spec) = &layout.export else {
        return Err(StoreError::Conflict(format!(
            "il tracciato {} non prevede un'esportazione",
            layout.name
        )));
    };
    let (rows, exported) = match spec.source {
        ExportSource::Receipts => {
            // The cursor is not moved here: `commit` moves it, once the
            // document is delivered.
            let items = store
                .export_receipts(ente, &layout.name, consumer, false, 100_000)
                .await?;
            let rows = items
                .iter()
                .map(|item| spec.columns.iter().map(|c| value(item, c)).collect())
                .collect();
            (rows, Exported::Receipts(items))
        }
        ExportSource::Regularizations => {
            regularization_rows(store, ente, &layout.name, consumer, &spec.columns).await?
        }
    };
    let mut out = Vec::new();
    match spec.separator {
        Some(sep) => {
            let mut w = csv::WriterBuilder::new()
                .delimiter(sep as u8)
                .from_writer(&mut out);
            let io = |e: csv::Error| StoreError::Corrupt(e.to_string());
            if spec.header {
                w.write_record(spec.columns.iter().map(|c| c.name.as_str()))
                    .map_err(io)?;
            }
            for row in &rows {
                w.write_record(row).map_err(io)?;
            }
            w.flush().map_err(|e| StoreError::Corrupt(e.to_string()))?;
        }
        None => {
            for row in &rows {
                let mut line = String::new();
                for (c, v) in spec.columns.iter().zip(row) {
                    let width = c.width.unwrap_or(20);
                    let v: String = v.chars().take(width).collect();
                    line.push_str(&format!("{v:<width$}"));
                }
                line.push_str("\r\n");
                out.extend_from_slice(line.as_bytes());
            }
        }
    }
    Ok((out, exported))
}

/// One row per accertamento part of each matched sospeso the consumer has
/// not had: what the accounting office needs to issue its reversale. Money
/// attributed to no accertamento is a row with the accertamento empty, for
/// the office to decide.
async fn regularization_rows(
    store: &Store,
    ente: &str,
    layout: &str,
    consumer: &str,
    columns: &[ExportColumn],
) -> Result<(Vec<Vec<String>>, Exported), StoreError> {
    use crate::reconcile::{BreakdownOf, ReconError, breakdown};
    let ids = store
        .regularizations_to_export(ente, layout, consumer, 10_000)
        .await?;
    if ids.is_empty() {
        return Ok((Vec::new(), Exported::Regularizations(ids)));
    }
    let flows: std::collections::HashMap<String, String> = store
        .movement_matches(ente)
        .await?
        .into_iter()
        .filter_map(|m| Some((m.movement_id, m.flow_id?)))
        .collect();
    let mut accertamenti = std::collections::HashMap::new();
    let mut rows = Vec::new();
    for id in &ids {
        let (Some(m), Some(flow_id)) = (store.movement(ente, id).await?, flows.get(id)) else {
            continue;
        };
        // A sospeso's breakdown is its flow's.
        let parts = breakdown(store, ente, BreakdownOf::Flow(flow_id))
            .await
            .map_err(|e| match e {
                ReconError::Store(e) => e,
                other => StoreError::Conflict(other.to_string()),
            })?;
        for (acc, cents) in parts {
            let details = match &acc {
                Some(a) => {
                    let key = (a.year, a.code.clone());
                    if !accertamenti.contains_key(&key) {
                        let found = store.get_accertamento(ente, a.year, &a.code).await.ok();
                        accertamenti.insert(key.clone(), found);
                    }
                    accertamenti[&key].clone()
                }
                None => None,
            };
            let row = Regularization {
                movement: &m,
                flow_id,
                accertamento: acc.as_ref(),
                details: details.as_ref(),
                amount: cents,
            };
            rows.push(columns.iter().map(|c| row.value(c)).collect());
        }
    }
    Ok((rows, Exported::Regularizations(ids)))
}

/// One accertamento part of a sospeso's regularization.
struct Regularization<'a> {
    movement: &'a incasso_core::treasury::TreasuryMovement,
    flow_id: &'a str,
    accertamento: Option<&'a incasso_core::accertamento::AccertamentoRef>,
    details: Option<&'a incasso_core::accertamento::Accertamento>,
    amount: Cents,
}

impl Regularization<'_> {
    fn value(&self, c: &ExportColumn) -> String {
        let m = self.movement;
        match c.value.as_str() {
            "sospeso_number" => m.document_number.clone(),
            "sospeso_date" => match c.date.unwrap_or(DateFormat::Iso) {
                DateFormat::DayMonthYear => m.booking_date.format("%d/%m/%Y").to_string(),
                DateFormat::Compact => m.booking_date.format("%Y%m%d").to_string(),
                DateFormat::Iso => m.booking_date.to_string(),
            },
            "sospeso_amount" => amount(m.amount.0, c.amount),
            "account" => m.account.clone(),
            "movement_id" => m.movement_id.clone(),
            "flow_id" => self.flow_id.to_string(),
            "accertamento_year" => self
                .accertamento
                .map(|a| a.year.to_string())
                .unwrap_or_default(),
            "accertamento_code" => self
                .accertamento
                .map(|a| a.code.clone())
                .unwrap_or_default(),
            "chapter" => self.details.map(|d| d.chapter.clone()).unwrap_or_default(),
            "article" => self
                .details
                .and_then(|d| d.article.clone())
                .unwrap_or_default(),
            "siope_code" => self
                .details
                .and_then(|d| d.siope_code.clone())
                .unwrap_or_default(),
            "amount" => amount(self.amount.0, c.amount),
            "causale" => m.causale.clone(),
            _ => String::new(),
        }
    }
}
