//! The Ente's e-mail texts (`/backoffice/notifiche/email`, issue 19): the
//! four messages when they go by e-mail (a citizen not on App IO) and the
//! citizen portal's receipt, one form per kind with incasso's text shown
//! while the Ente has none; a text refused with its error beside the field
//! (nothing saved), and *Ripristina* back to incasso's. The use cases are
//! `incasso_app::notify::channels`' (catalogue area).

use super::ui::{Chrome, page_with_status};
use super::{SignedIn, error_page};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use incasso_app::notify::channels;
use incasso_app::notify::channels::{EmailKind, EmailTemplate, PLACEHOLDERS, RECEIPT_PLACEHOLDERS};
use incasso_app::{AppError, Kind};
use incasso_core::access::{Access, Area};
use serde::Deserialize;

const PAGE: &str = "/backoffice/notifiche/email";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PAGE, get(show))
        .route("/backoffice/notifiche/email/{kind}", post(save))
        .route("/backoffice/notifiche/email/{kind}/ripristina", post(reset))
}

fn label(kind: &str) -> &'static str {
    match kind {
        "INVITATION" => "Invito al pagamento",
        "REMINDER" => "Promemoria della scadenza",
        "WITHDRAWAL" => "Annullamento della posizione",
        "PAID" => "Conferma del pagamento",
        _ => "Ricevuta del pagamento dal portale",
    }
}

struct FormView {
    kind: String,
    label: &'static str,
    subject: String,
    body: String,
    own: bool,
    saved_by: String,
    subject_error: Option<String>,
    body_error: Option<String>,
}

#[derive(Template)]
#[template(path = "backoffice/notify_email.html")]
struct EmailPage {
    chrome: Chrome,
    may_write: bool,
    forms: Vec<FormView>,
    placeholders: String,
    receipt_placeholders: String,
    notice: Option<&'static str>,
    error: Option<String>,
}

#[derive(Default, Deserialize)]
struct EmailForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    oggetto: String,
    #[serde(default)]
    testo: String,
}

fn codes(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{{{{{n}}}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn page(
    state: &AppState,
    signed: &SignedIn,
    sent: Option<(String, EmailForm, AppError)>,
    notice: Option<&'static str>,
) -> Response {
    let chrome = signed.chrome(state, "/backoffice/notifiche").await;
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let all = match channels::email_templates(&signed.ctx(state), &ente).await {
        Ok(a) => a,
        Err(e) => return error_page(chrome, &e),
    };
    let mut p = EmailPage {
        chrome,
        may_write: signed
            .operator
            .rights
            .may(&ente, Area::Catalogue, Access::Write),
        forms: all
            .into_iter()
            .map(|t| FormView {
                label: label(&t.kind),
                saved_by: match (t.updated_at, &t.updated_by) {
                    (Some(at), Some(by)) => format!(
                        "Testo dell'ente, salvato il {} da {}",
                        incasso_core::time::to_rome(at).format("%d/%m/%Y %H:%M"),
                        by.strip_prefix("operator:").unwrap_or(by)
                    ),
                    _ => String::new(),
                },
                kind: t.kind,
                subject: t.subject,
                body: t.body,
                own: t.own,
                subject_error: None,
                body_error: None,
            })
            .collect(),
        placeholders: codes(PLACEHOLDERS),
        receipt_placeholders: codes(RECEIPT_PLACEHOLDERS),
        notice,
        error: None,
    };
    let mut status = StatusCode::OK;
    if let Some((kind, form, e)) = sent {
        status = crate::error::status_of(e.kind);
        match p.forms.iter_mut().find(|f| f.kind == kind) {
            Some(f) => {
                f.subject = form.oggetto;
                f.body = form.testo;
                let field = e.errors.first().map(|x| x.field.as_str());
                let message = e
                    .errors
                    .first()
                    .map(|x| x.message.clone())
                    .unwrap_or_else(|| e.detail.clone());
                if field == Some("subject") {
                    f.subject_error = Some(message);
                } else {
                    f.body_error = Some(message);
                }
            }
            None => p.error = Some(e.detail),
        }
    }
    page_with_status(&p, status)
}

#[derive(Default, Deserialize)]
struct NoticeQuery {
    #[serde(default)]
    esito: String,
}

/// `GET /backoffice/notifiche/email`.
async fn show(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let notice = match q.esito.as_str() {
        "salvato" => Some("Testo dell'e-mail salvato."),
        "ripristinato" => Some("Ripristinato il testo predefinito di incasso."),
        _ => None,
    };
    page(&state, &signed, None, notice).await
}

/// The kind in the path, as stored; an unknown one is no page.
// The error is the page answered, made at most once a request (as
// SignedIn::ente's).
#[allow(clippy::result_large_err)]
fn kind_of(kind: &str) -> Result<&'static str, Response> {
    EmailKind::parse(kind)
        .map(EmailKind::as_str)
        .ok_or_else(|| super::simple_error(StatusCode::NOT_FOUND, "Tipo di e-mail sconosciuto."))
}

/// `POST /backoffice/notifiche/email/{kind}`.
async fn save(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(kind): Path<String>,
    axum::Form(form): axum::Form<EmailForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let kind = match kind_of(&kind) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let template = EmailTemplate {
        subject: form.oggetto.clone(),
        // Browsers send CRLF: stored as typed lines.
        body: form.testo.replace("\r\n", "\n"),
    };
    match channels::save_email_template(&signed.ctx(&state), &ente, kind, &template).await {
        Ok(()) => Redirect::to(&format!("{PAGE}?esito=salvato#email-{kind}")).into_response(),
        Err(e) if e.kind == Kind::Invalid => {
            page(&state, &signed, Some((kind.to_string(), form, e)), None).await
        }
        Err(e) => error_page(signed.chrome(&state, "/backoffice/notifiche").await, &e),
    }
}

/// `POST /backoffice/notifiche/email/{kind}/ripristina`.
async fn reset(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(kind): Path<String>,
    axum::Form(form): axum::Form<EmailForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let kind = match kind_of(&kind) {
        Ok(k) => k,
        Err(r) => return r,
    };
    match channels::reset_email_template(&signed.ctx(&state), &ente, kind).await {
        Ok(()) => Redirect::to(&format!("{PAGE}?esito=ripristinato#email-{kind}")).into_response(),
        Err(e) => error_page(signed.chrome(&state, "/backoffice/notifiche").await, &e),
    }
}
