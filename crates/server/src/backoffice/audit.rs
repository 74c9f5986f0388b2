//! The audit log (giornale degli eventi) of the Ente, searchable.

use super::ui::{self, Chrome, query_value};
use super::{SignedIn, error_page, page};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use incasso_app::sheet::{Cell, MAX_EXPORT_ROWS, Sheet};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new().route("/backoffice/giornale", get(audit_log))
}

struct AuditRow {
    at: String,
    actor: String,
    action: String,
    object: String,
    outcome: String,
}

#[derive(Template)]
#[template(path = "backoffice/audit.html")]
struct AuditPage<'a> {
    chrome: Chrome,
    ente: Option<&'a str>,
    query: &'a str,
    rows: Vec<AuditRow>,
    next_url: Option<String>,
    csv_url: String,
    xlsx_url: String,
}

#[derive(Deserialize)]
struct AuditQuery {
    ente: Option<String>,
    #[serde(default)]
    q: String,
    cursor: Option<String>,
    #[serde(default)]
    formato: String,
}

/// The events matching the search, all of them up to the export cap, as a
/// sheet (newest first, as the page).
async fn export(
    ctx: &incasso_app::Ctx,
    ente: Option<&str>,
    text: Option<&str>,
) -> Result<Sheet, incasso_app::AppError> {
    let mut sheet = Sheet::new(
        "Giornale degli eventi",
        &[
            "Data e ora",
            "Autore",
            "Azione",
            "Oggetto",
            "Esito",
            "Dettaglio",
        ],
    );
    let mut cursor: Option<String> = None;
    loop {
        let found =
            incasso_app::audit::search(ctx, ente, text, cursor.as_deref(), Some(1000)).await?;
        for (_, e) in found.items {
            sheet.push(vec![
                Cell::DateTime(e.at),
                Cell::Text(e.actor),
                Cell::Text(e.action),
                Cell::Text(e.object),
                Cell::Text(e.outcome),
                Cell::Text(e.detail),
            ]);
        }
        match found.next {
            Some(next) if (sheet.rows.len() as u32) < MAX_EXPORT_ROWS => cursor = Some(next),
            _ => return Ok(sheet),
        }
    }
}

/// The audit log of the operator's Ente (or, for the intermediary's
/// administrator, of the Ente asked for, else their own events).
async fn audit_log(
    State(state): State<AppState>,
    signed: SignedIn,
    axum::extract::Query(q): axum::extract::Query<AuditQuery>,
) -> Response {
    let ente = q
        .ente
        .clone()
        .filter(|e| !e.is_empty())
        .or_else(|| signed.ente.clone());
    let ctx = signed.ctx(&state);
    let chrome = signed.chrome(&state, "/backoffice/giornale").await;
    let text = Some(q.q.trim()).filter(|t| !t.is_empty());
    let format = match q.formato.as_str() {
        "csv" => Some(ui::Export::Csv),
        "xlsx" => Some(ui::Export::Xlsx),
        _ => None,
    };
    if let Some(format) = format {
        return match export(&ctx, ente.as_deref(), text).await {
            Ok(sheet) => ui::export(&sheet, format, "giornale-eventi"),
            Err(e) => error_page(chrome, &e),
        };
    }
    let export_url = |f: &str| {
        ui::url(
            "/backoffice/giornale",
            &[
                ("ente", ente.as_deref().unwrap_or("")),
                ("q", q.q.trim()),
                ("formato", f),
            ],
        )
    };
    let (csv_url, xlsx_url) = (export_url("csv"), export_url("xlsx"));
    match incasso_app::audit::search(&ctx, ente.as_deref(), text, q.cursor.as_deref(), Some(50))
        .await
    {
        Ok(found) => {
            let rows = found
                .items
                .into_iter()
                .map(|(_, e)| AuditRow {
                    at: incasso_core::time::to_rome(e.at)
                        .format("%d/%m/%Y %H:%M:%S")
                        .to_string(),
                    actor: e.actor,
                    action: e.action,
                    object: e.object,
                    outcome: e.outcome,
                })
                .collect();
            let next_url = found.next.map(|cursor| {
                let mut url = format!("/backoffice/giornale?cursor={cursor}");
                if let Some(e) = &ente {
                    url.push_str(&format!("&ente={}", query_value(e)));
                }
                if !q.q.is_empty() {
                    url.push_str(&format!("&q={}", query_value(&q.q)));
                }
                url
            });
            page(&AuditPage {
                chrome,
                ente: ente.as_deref(),
                query: q.q.trim(),
                rows,
                next_url,
                csv_url,
                xlsx_url,
            })
        }
        Err(e) => error_page(chrome, &e),
    }
}
