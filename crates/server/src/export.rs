//! Reporting back: the receipts of the positions an application loaded,
//! in that application's own layout, incremental per consumer.

use incasso_bus::Layout;
use incasso_bus::layout::{AmountFormat, DateFormat, ExportColumn};
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

/// Writes the export of the receipts after `consumer`'s cursor, and moves
/// the cursor past them. Returns the document and how many receipts it has.
pub async fn export(
    store: &Store,
    ente: &str,
    layout: &Layout,
    consumer: &str,
) -> Result<(Vec<u8>, usize), StoreError> {
    let (bytes, items) = prepare(store, ente, layout, consumer).await?;
    if let Some(last) = items.last() {
        store
            .advance_export_cursor(ente, &layout.name, consumer, last)
            .await?;
    }
    Ok((bytes, items.len()))
}

/// The export document without moving the cursor: the caller moves it once
/// the document is delivered (the outbox, after its file is in place).
pub async fn prepare(
    store: &Store,
    ente: &str,
    layout: &Layout,
    consumer: &str,
) -> Result<(Vec<u8>, Vec<PaidItem>), StoreError> {
    let Some(spec) = &layout.export else {
        return Err(StoreError::Conflict(format!(
            "il tracciato {} non prevede un'esportazione",
            layout.name
        )));
    };
    let items = store
        .export_receipts(ente, &layout.name, consumer, true, 100_000)
        .await?;
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
            for item in &items {
                w.write_record(spec.columns.iter().map(|c| value(item, c)))
                    .map_err(io)?;
            }
            w.flush().map_err(|e| StoreError::Corrupt(e.to_string()))?;
        }
        None => {
            for item in &items {
                let mut line = String::new();
                for c in &spec.columns {
                    let width = c.width.unwrap_or(20);
                    let v: String = value(item, c).chars().take(width).collect();
                    line.push_str(&format!("{v:<width$}"));
                }
                line.push_str("\r\n");
                out.extend_from_slice(line.as_bytes());
            }
        }
    }
    Ok((out, items))
}
