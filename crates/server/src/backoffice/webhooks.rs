//! The Ente's webhooks (`/backoffice/webhook`, its administrators): the
//! endpoints that hear of the Ente's paid, cancelled and reported
//! positions, registered (the signing secret shown once, as the API
//! does), turned off and on, deleted after a confirmation; each endpoint's
//! recent deliveries, and *Riprova* on a failed one. The same use cases as
//! the API's (`incasso_app::webhooks`).

use super::ui::{Chrome, page_with_status};
use super::{SignedIn, error_page, page};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use incasso_app::{AppError, Kind, webhooks};
use serde::Deserialize;

const SECTION: &str = "/backoffice/webhook";

/// How many of an endpoint's deliveries its page shows.
const RECENT: u32 = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(SECTION, get(list).post(register))
        .route("/backoffice/webhook/{id}", get(endpoint))
        .route("/backoffice/webhook/{id}/stato", post(set_state))
        .route(
            "/backoffice/webhook/{id}/elimina",
            get(confirm_delete).post(delete),
        )
        .route(
            "/backoffice/webhook/{id}/consegne/{delivery}/riprova",
            post(retry),
        )
}

fn rome(t: chrono::DateTime<chrono::Utc>) -> String {
    incasso_core::time::to_rome(t)
        .format("%d/%m/%Y %H:%M")
        .to_string()
}

/// An endpoint as a row or a heading.
struct EndpointView {
    id: i64,
    url: String,
    description: String,
    active: bool,
    created: String,
    created_by: String,
}

impl From<webhooks::Endpoint> for EndpointView {
    fn from(e: webhooks::Endpoint) -> Self {
        EndpointView {
            id: e.id,
            created: rome(e.created_at),
            url: e.url,
            description: e.description,
            active: e.active,
            // The audit's actor, as a person reads it.
            created_by: e
                .created_by
                .strip_prefix("operator:")
                .map(str::to_string)
                .unwrap_or(e.created_by),
        }
    }
}

#[derive(Default, Deserialize)]
struct RegisterForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    descrizione: String,
}

#[derive(Template)]
#[template(path = "backoffice/webhooks.html")]
struct ListPage {
    chrome: Chrome,
    endpoints: Vec<EndpointView>,
    form: RegisterForm,
    url_error: Option<String>,
    description_error: Option<String>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
struct NoticeQuery {
    #[serde(default)]
    esito: String,
}

/// `detail` with a capital first letter.
fn sentence(detail: &str) -> String {
    let mut chars = detail.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

async fn list_page(
    state: &AppState,
    signed: &SignedIn,
    form: RegisterForm,
    error: Option<&AppError>,
    notice: Option<&'static str>,
) -> Response {
    let chrome = signed.chrome(state, SECTION).await;
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let endpoints = match webhooks::list(&signed.ctx(state), &ente).await {
        Ok(l) => l.into_iter().map(EndpointView::from).collect(),
        Err(e) => return error_page(chrome, &e),
    };
    let (mut url_error, mut description_error) = (None, None);
    if let Some(e) = error {
        let detail = ["url: ", "description: "]
            .iter()
            .find_map(|p| e.detail.strip_prefix(p))
            .unwrap_or(&e.detail);
        let message = sentence(detail);
        if e.code == "BAD_DESCRIPTION" {
            description_error = Some(message);
        } else {
            url_error = Some(message);
        }
    }
    let status = match error {
        Some(e) => crate::error::status_of(e.kind),
        None => StatusCode::OK,
    };
    page_with_status(
        &ListPage {
            chrome,
            endpoints,
            form,
            url_error,
            description_error,
            notice,
        },
        status,
    )
}

/// `GET /backoffice/webhook`.
async fn list(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let notice = (q.esito == "eliminato")
        .then_some("Endpoint eliminato, con le consegne che lo aspettavano.");
    list_page(&state, &signed, RegisterForm::default(), None, notice).await
}

#[derive(Template)]
#[template(path = "backoffice/webhooks_registered.html")]
struct RegisteredPage {
    chrome: Chrome,
    e: EndpointView,
    secret: String,
}

/// `POST /backoffice/webhook`: registers an endpoint; the answer shows its
/// secret, once.
async fn register(
    State(state): State<AppState>,
    signed: SignedIn,
    axum::Form(form): axum::Form<RegisterForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    match webhooks::register(
        &signed.ctx(&state),
        &ente,
        form.url.trim(),
        &form.descrizione,
    )
    .await
    {
        Ok(r) => page(&RegisteredPage {
            chrome: signed.chrome(&state, SECTION).await,
            e: r.endpoint.into(),
            secret: r.secret,
        }),
        Err(e) if matches!(e.kind, Kind::Invalid | Kind::Conflict) => {
            list_page(&state, &signed, form, Some(&e), None).await
        }
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}

/// A delivery as the endpoint's page shows it.
struct DeliveryView {
    id: i64,
    kind: &'static str,
    notice: String,
    status: &'static str,
    failed: bool,
    attempts: i64,
    last_error: String,
    next_attempt: String,
}

fn kind_label(kind: &str) -> &'static str {
    match kind {
        "PAID" => "Pagata",
        "CANCELLED" => "Annullata",
        "REPORTED" => "Rendicontata",
        _ => "Altro",
    }
}

fn status_label(status: &str) -> &'static str {
    match status {
        "PENDING" => "In attesa",
        "SENDING" => "In invio",
        "DELIVERED" => "Consegnata",
        "FAILED" => "Fallita",
        _ => "Sconosciuto",
    }
}

impl From<incasso_store::webhooks::DeliveryRecord> for DeliveryView {
    fn from(d: incasso_store::webhooks::DeliveryRecord) -> Self {
        let waiting = matches!(d.status.as_str(), "PENDING" | "SENDING");
        let last_error = match (d.last_status, d.last_answer) {
            _ if d.status == "DELIVERED" => String::new(),
            (Some(s), Some(a)) if !a.is_empty() => format!("HTTP {s}: {a}"),
            (Some(s), _) => format!("HTTP {s}"),
            (None, Some(a)) => a,
            (None, None) => String::new(),
        };
        DeliveryView {
            id: d.id,
            kind: kind_label(&d.kind),
            // As printed on the notice: in groups of four.
            notice: match d.notice_number {
                Some(n) => n
                    .as_bytes()
                    .chunks(4)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>()
                    .join(" "),
                None => d.iupd.clone(),
            },
            failed: d.status == "FAILED",
            status: status_label(&d.status),
            attempts: d.attempts,
            last_error,
            next_attempt: if waiting {
                rome(d.next_attempt_at)
            } else {
                String::new()
            },
        }
    }
}

#[derive(Template)]
#[template(path = "backoffice/webhooks_endpoint.html")]
struct EndpointPage {
    chrome: Chrome,
    e: EndpointView,
    deliveries: Vec<DeliveryView>,
    notice: Option<&'static str>,
    error: Option<String>,
}

async fn endpoint_page(
    state: &AppState,
    signed: &SignedIn,
    id: i64,
    notice: Option<&'static str>,
    refusal: Option<&AppError>,
) -> Response {
    let chrome = signed.chrome(state, SECTION).await;
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let ctx = signed.ctx(state);
    let e = match webhooks::get(&ctx, &ente, id).await {
        Ok(e) => e,
        Err(e) => return error_page(chrome, &e),
    };
    let deliveries = match webhooks::deliveries(&ctx, &ente, id, RECENT).await {
        Ok(d) => d.into_iter().map(DeliveryView::from).collect(),
        Err(e) => return error_page(chrome, &e),
    };
    let status = refusal.map_or(StatusCode::OK, |e| crate::error::status_of(e.kind));
    page_with_status(
        &EndpointPage {
            chrome,
            e: e.into(),
            deliveries,
            notice,
            error: refusal.map(|e| sentence(&e.detail)),
        },
        status,
    )
}

/// The id of a path, or the page that says it is not one.
#[allow(clippy::result_large_err)]
fn endpoint_id(s: &str) -> Result<i64, Response> {
    s.parse().map_err(|_| {
        super::simple_error(
            StatusCode::NOT_FOUND,
            "Endpoint non trovato tra quelli dell'ente.",
        )
    })
}

/// `GET /backoffice/webhook/{id}`.
async fn endpoint(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let id = match endpoint_id(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let notice = match q.esito.as_str() {
        "attivato" => Some("Endpoint attivato."),
        "disattivato" => Some("Endpoint disattivato."),
        "riprova" => Some("Consegna rimessa in coda: parte al prossimo giro di invio."),
        _ => None,
    };
    endpoint_page(&state, &signed, id, notice, None).await
}

#[derive(Deserialize)]
struct StateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    attivo: String,
}

/// `POST /backoffice/webhook/{id}/stato`: `attivo=1` on, else off.
async fn set_state(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<StateForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let (ente, id) = match (signed.ente(), endpoint_id(&id)) {
        (Ok(e), Ok(i)) => (e.to_string(), i),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let active = form.attivo == "1";
    match webhooks::set_active(&signed.ctx(&state), &ente, id, active).await {
        Ok(_) => {
            let esito = if active { "attivato" } else { "disattivato" };
            Redirect::to(&format!("{SECTION}/{id}?esito={esito}")).into_response()
        }
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}

#[derive(Template)]
#[template(path = "backoffice/webhooks_delete.html")]
struct DeletePage {
    chrome: Chrome,
    e: EndpointView,
}

/// `GET /backoffice/webhook/{id}/elimina`: are you sure?
async fn confirm_delete(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let chrome = signed.chrome(&state, SECTION).await;
    let (ente, id) = match (signed.ente(), endpoint_id(&id)) {
        (Ok(e), Ok(i)) => (e.to_string(), i),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match webhooks::get(&signed.ctx(&state), &ente, id).await {
        Ok(e) => page(&DeletePage {
            chrome,
            e: e.into(),
        }),
        Err(e) => error_page(chrome, &e),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /backoffice/webhook/{id}/elimina`.
async fn delete(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let (ente, id) = match (signed.ente(), endpoint_id(&id)) {
        (Ok(e), Ok(i)) => (e.to_string(), i),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match webhooks::remove(&signed.ctx(&state), &ente, id).await {
        Ok(()) => Redirect::to(&format!("{SECTION}?esito=eliminato")).into_response(),
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}

/// `POST /backoffice/webhook/{id}/consegne/{delivery}/riprova`: a failed
/// delivery sent again.
async fn retry(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((id, delivery)): Path<(String, String)>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let (ente, id) = match (signed.ente(), endpoint_id(&id)) {
        (Ok(e), Ok(i)) => (e.to_string(), i),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let delivery = match endpoint_id(&delivery) {
        Ok(d) => d,
        Err(r) => return r,
    };
    match webhooks::retry(&signed.ctx(&state), &ente, delivery).await {
        Ok(()) => Redirect::to(&format!("{SECTION}/{id}?esito=riprova")).into_response(),
        // Not a failed delivery (any more): told on the endpoint's page.
        Err(e) if e.kind == Kind::Conflict => {
            endpoint_page(&state, &signed, id, None, Some(&e)).await
        }
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}
