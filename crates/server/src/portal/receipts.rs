//! Finding a receipt on the portal: the IUV and the debtor's or payer's
//! fiscal code (typed, sent by POST: neither ever in a URL) find the
//! receipt of a payment made through any channel, and its PDF (the
//! *quietanza*). Steps: 1 Dati, 2 Ricevuta. A receipt that does not exist
//! and one of somebody else get the same page, word for word.

use super::limit::Bucket;
use super::ui::{Portal, PortalChrome, Steps};
use super::{error_page, page, page_with_status};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use incasso_app::Kind;
use incasso_app::portal::receipts::{self, ReceiptSummary};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/portale/{fc}/ricevuta", get(form).post(lookup))
        .route("/portale/{fc}/ricevuta/pdf", post(pdf))
}

fn steps(c: &PortalChrome, current: usize) -> Steps {
    Steps::new(
        &[
            c.t("Dati del pagamento", "Zahlungsdaten", "Payment data"),
            c.t("Ricevuta", "Quittung", "Receipt"),
        ],
        current,
        &[Some(format!("/portale/{}/ricevuta", c.ente))],
    )
}

fn title(c: &PortalChrome) -> &str {
    c.t("Cerca una ricevuta", "Quittung suchen", "Find a receipt")
}

#[derive(Template)]
#[template(path = "portal/receipt_form.html")]
struct FormPage {
    chrome: PortalChrome,
    steps: Steps,
    iuv: String,
    fc: String,
    iuv_error: Option<String>,
    fc_error: Option<String>,
    /// Nothing found for these data (or not theirs: the same words).
    not_found: Option<String>,
}

impl FormPage {
    fn has_field_errors(&self) -> bool {
        self.iuv_error.is_some() || self.fc_error.is_some()
    }
}

fn blank(portal: &Portal) -> FormPage {
    let c = &portal.chrome;
    FormPage {
        steps: steps(c, 0),
        chrome: c.clone().crumbs(&[(title(c), "")]),
        iuv: String::new(),
        fc: String::new(),
        iuv_error: None,
        fc_error: None,
        not_found: None,
    }
}

/// `GET /portale/{fc}/ricevuta`: the empty form.
async fn form(portal: Portal) -> Response {
    page(&blank(&portal))
}

#[derive(Deserialize)]
struct Fields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    iuv: String,
    #[serde(default)]
    codice_fiscale: String,
}

impl Fields {
    /// What was typed, cut to a sane length, to show back.
    fn typed(&self) -> (String, String) {
        (
            self.iuv.trim().chars().take(40).collect(),
            self.codice_fiscale.trim().chars().take(40).collect(),
        )
    }
}

/// The message of a field's refusal, in the visitor's language (the use
/// case's Italian is the reference).
fn iuv_message(c: &PortalChrome, italian: &str) -> String {
    c.t(
        italian,
        "Der IUV-Kodex hat 15, 17 oder 25 Zeichen, nur Buchstaben und Ziffern (er steht auf der Zahlungsaufforderung oder der Quittung).",
        "The IUV has 15, 17 or 25 characters, letters and digits only (it is on the notice or the receipt).",
    )
    .to_string()
}

fn fc_message(c: &PortalChrome, italian: &str) -> String {
    c.t(
        italian,
        "Die Steuernummer ist ungültig: 16 Zeichen für eine Person, 11 Ziffern für ein Unternehmen oder eine Körperschaft.",
        "The tax code is not valid: 16 characters for a person, 11 digits for a company or public body.",
    )
    .to_string()
}

fn not_found_message(c: &PortalChrome, italian: &str) -> String {
    c.t(
        italian,
        "Keine Quittung entspricht diesem IUV-Kodex und dieser Steuernummer: Daten prüfen und erneut versuchen.",
        "No receipt matches this IUV and tax code: check the data and try again.",
    )
    .to_string()
}

/// Both fields checked at once, so every mistake is shown together.
fn checked(portal: &Portal, fields: &Fields) -> Result<(String, String), Box<FormPage>> {
    let c = &portal.chrome;
    let iuv = receipts::check_iuv(&fields.iuv);
    let fc = receipts::check_fiscal_code(&fields.codice_fiscale);
    match (iuv, fc) {
        (Ok(i), Ok(f)) => Ok((i, f)),
        (iuv, fc) => {
            let (typed_iuv, typed_fc) = fields.typed();
            Err(Box::new(FormPage {
                iuv: typed_iuv,
                fc: typed_fc,
                iuv_error: iuv.err().map(|e| iuv_message(c, &e.detail)),
                fc_error: fc.err().map(|e| fc_message(c, &e.detail)),
                ..blank(portal)
            }))
        }
    }
}

#[derive(Template)]
#[template(path = "portal/receipt_found.html")]
struct FoundPage {
    chrome: PortalChrome,
    steps: Steps,
    r: ReceiptSummary,
    amount: String,
    paid_at: String,
    /// Sent back, hidden, with the download: the visitor typed it.
    fc: String,
    rated: &'static str,
}

/// `POST /portale/{fc}/ricevuta`: the receipt, or the form again with the
/// reason by the field (400) or the one 'not found' message (404).
async fn lookup(
    State(state): State<AppState>,
    portal: Portal,
    axum::Form(fields): axum::Form<Fields>,
) -> Response {
    if let Err(r) = portal.check_csrf(&fields.csrf) {
        return r;
    }
    if let Err(r) = portal.limit(&state, Bucket::Lookup).await {
        return r;
    }
    let (iuv, fc) = match checked(&portal, &fields) {
        Ok(v) => v,
        Err(form) => return page_with_status(StatusCode::BAD_REQUEST, &*form),
    };
    let ctx = portal.ctx(&state);
    let c = &portal.chrome;
    match receipts::find(&ctx, &portal.ente, &iuv, &fc).await {
        Ok(r) => {
            let found = c.t("Ricevuta", "Quittung", "Receipt");
            let href = format!("/portale/{}/ricevuta", c.ente);
            page(&FoundPage {
                steps: steps(c, 1),
                chrome: c.clone().crumbs(&[(title(c), &href), (found, "")]),
                amount: r.amount.to_italian(),
                paid_at: r
                    .paid_at
                    .map(|t| {
                        incasso_core::time::to_rome(t)
                            .format("%d/%m/%Y %H:%M")
                            .to_string()
                    })
                    .unwrap_or_else(|| "-".into()),
                r,
                fc,
                rated: "ricevuta",
            })
        }
        Err(e) if e.kind == Kind::NotFound => {
            let (typed_iuv, typed_fc) = fields.typed();
            page_with_status(
                StatusCode::NOT_FOUND,
                &FormPage {
                    iuv: typed_iuv,
                    fc: typed_fc,
                    not_found: Some(not_found_message(c, &e.detail)),
                    ..blank(&portal)
                },
            )
        }
        Err(e) => error_page(c, &e),
    }
}

/// `POST /portale/{fc}/ricevuta/pdf`: the quietanza. With a fiscal code,
/// for whoever gave the IUV and the debtor's or payer's fiscal code (the
/// same check as the search); without, for the signed-in citizen whose
/// receipt it is.
async fn pdf(
    State(state): State<AppState>,
    portal: Portal,
    axum::Form(fields): axum::Form<Fields>,
) -> Response {
    if let Err(r) = portal.check_csrf(&fields.csrf) {
        return r;
    }
    if let Err(r) = portal.limit(&state, Bucket::Lookup).await {
        return r;
    }
    let ctx = portal.ctx(&state);
    let made = if fields.codice_fiscale.trim().is_empty() {
        receipts::quietanza_pdf(&ctx, &portal.ente, &fields.iuv).await
    } else {
        let (iuv, fc) = match checked(&portal, &fields) {
            Ok(v) => v,
            Err(form) => return page_with_status(StatusCode::BAD_REQUEST, &*form),
        };
        receipts::find_pdf(&ctx, &portal.ente, &iuv, &fc).await
    };
    match made {
        Ok(pdf) => {
            let iuv: String = fields
                .iuv
                .trim()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(25)
                .collect();
            (
                [
                    (header::CONTENT_TYPE, "application/pdf".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"ricevuta-{iuv}.pdf\""),
                    ),
                    (header::CACHE_CONTROL, "no-store".to_string()),
                ],
                pdf,
            )
                .into_response()
        }
        Err(e) if e.kind == Kind::NotFound => {
            let c = &portal.chrome;
            let (typed_iuv, typed_fc) = fields.typed();
            page_with_status(
                StatusCode::NOT_FOUND,
                &FormPage {
                    iuv: typed_iuv,
                    fc: typed_fc,
                    not_found: Some(not_found_message(c, &e.detail)),
                    ..blank(&portal)
                },
            )
        }
        Err(e) => error_page(&portal.chrome, &e),
    }
}
