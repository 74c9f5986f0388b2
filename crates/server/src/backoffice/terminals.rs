//! The Ente's POS terminals (`/backoffice/terminali`, its administrators):
//! listed with their desk and state, registered, put on a desk or taken
//! off it, turned off and on again. Each form is a plain POST answered by
//! a redirect (or the page again with the refusal next to the field), so
//! everything works without JavaScript.

use super::ui::{Chrome, page_with_status, query_value};
use super::{SignedIn, error_page};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use incasso_app::pos::{self, Terminal};
use incasso_app::{AppError, Ctx, Kind, desk};
use serde::Deserialize;

const SECTION: &str = "/backoffice/terminali";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(SECTION, get(list).post(register))
        .route("/backoffice/terminali/{terminal}/sportello", post(bind))
        .route("/backoffice/terminali/{terminal}/stato", post(set_state))
}

/// A terminal as a row of the page.
struct Row {
    id: String,
    description: String,
    desk: String,
    /// The desk's code, for the select of the bind form.
    desk_code: String,
    active: bool,
}

#[derive(Default, Deserialize)]
struct RegisterForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    terminale: String,
    #[serde(default)]
    descrizione: String,
    #[serde(default)]
    sportello: String,
}

/// The refusal of the register form, by field.
#[derive(Default)]
struct FieldErrors {
    terminale: Option<String>,
    descrizione: Option<String>,
    sportello: Option<String>,
}

impl FieldErrors {
    fn any(&self) -> bool {
        self.terminale.is_some() || self.descrizione.is_some() || self.sportello.is_some()
    }

    /// The use case's refusal next to the field it is about.
    fn of(e: &AppError) -> FieldErrors {
        let mut f = FieldErrors::default();
        let message = sentence(&e.detail);
        match e.code {
            "POS_TERMINAL_DESCRIPTION" => f.descrizione = Some(message),
            "POS_DESK_UNKNOWN" => f.sportello = Some(message),
            _ => f.terminale = Some(message),
        }
        f
    }
}

/// `detail` with a capital first letter and a full stop.
fn sentence(detail: &str) -> String {
    let mut chars = detail.chars();
    let mut s: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

#[derive(Template)]
#[template(path = "backoffice/terminals.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    /// The Ente's desks: code and name.
    desks: Vec<(String, String)>,
    /// May register and change terminals (the Ente's administrators).
    manager: bool,
    form: RegisterForm,
    errors: FieldErrors,
    notice: Option<&'static str>,
    /// A row action's refusal.
    action_error: Option<String>,
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    esito: String,
}

fn desk_label(code: &str, desks: &[(String, String)]) -> String {
    desks
        .iter()
        .find(|(c, _)| c == code)
        .map(|(c, n)| format!("{n} ({c})"))
        .unwrap_or_else(|| code.to_string())
}

async fn list_page(
    state: &AppState,
    signed: &SignedIn,
    form: RegisterForm,
    errors: FieldErrors,
    notice: Option<&'static str>,
    action_error: Option<String>,
) -> Response {
    let chrome = signed.chrome(state, SECTION).await;
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let ctx = signed.ctx(state);
    let terminals = match pos::terminals(&ctx, &ente).await {
        Ok(t) => t,
        Err(e) => return error_page(chrome, &e),
    };
    let desks: Vec<(String, String)> = match desk::list(&ctx, &ente).await {
        Ok(d) => d.into_iter().map(|d| (d.code, d.name)).collect(),
        Err(e) => return error_page(chrome, &e),
    };
    let rows = terminals
        .into_iter()
        .map(|t: Terminal| Row {
            desk: t
                .desk
                .as_deref()
                .map(|d| desk_label(d, &desks))
                .unwrap_or_default(),
            desk_code: t.desk.unwrap_or_default(),
            id: t.terminal_id,
            description: t.description,
            active: t.active,
        })
        .collect();
    let status = if errors.any() || action_error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    page_with_status(
        &ListPage {
            chrome,
            rows,
            desks,
            manager: manager(&ctx, &ente),
            form,
            errors,
            notice,
            action_error,
        },
        status,
    )
}

/// Whether the operator may change the Ente's terminals (the use cases
/// decide; the page only hides forms that would be refused).
fn manager(ctx: &Ctx, ente: &str) -> bool {
    ctx.caller.require_ente(ente).is_ok()
}

/// `GET /backoffice/terminali`.
async fn list(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(q): Query<ListQuery>,
) -> Response {
    let notice = match q.esito.as_str() {
        "registrato" => Some("Terminale registrato."),
        "associato" => Some("Sportello del terminale aggiornato."),
        "disattivato" => {
            Some("Terminale disattivato: non gli si inviano più avvisi finché non si riattiva.")
        }
        "attivato" => Some("Terminale riattivato."),
        _ => None,
    };
    list_page(
        &state,
        &signed,
        RegisterForm::default(),
        FieldErrors::default(),
        notice,
        None,
    )
    .await
}

fn optional(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

/// `POST /backoffice/terminali`: a new terminal.
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
    let ctx = signed.ctx(&state);
    let id = form.terminale.trim().to_string();
    match pos::add_terminal(
        &ctx,
        &ente,
        &id,
        &form.descrizione,
        optional(&form.sportello),
    )
    .await
    {
        Ok(_) => Redirect::to(&format!("{SECTION}?esito=registrato")).into_response(),
        Err(e) if matches!(e.kind, Kind::Invalid | Kind::Conflict | Kind::NotFound) => {
            let errors = FieldErrors::of(&e);
            let mut resp = list_page(&state, &signed, form, errors, None, None).await;
            if resp.status() == StatusCode::BAD_REQUEST {
                *resp.status_mut() = crate::error::status_of(e.kind);
            }
            resp
        }
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}

#[derive(Deserialize)]
struct BindForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    sportello: String,
}

/// `POST /backoffice/terminali/{terminal}/sportello`: on a desk, or on
/// none (an empty desk).
async fn bind(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(terminal): Path<String>,
    axum::Form(form): axum::Form<BindForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let ctx = signed.ctx(&state);
    match pos::bind_terminal(&ctx, &ente, &terminal, optional(&form.sportello)).await {
        Ok(()) => Redirect::to(&format!("{SECTION}?esito=associato")).into_response(),
        Err(e) => action_refused(&state, &signed, e).await,
    }
}

#[derive(Deserialize)]
struct StateForm {
    #[serde(default)]
    csrf: String,
    /// `1` to turn it on, `0` off.
    #[serde(default)]
    attivo: String,
}

/// `POST /backoffice/terminali/{terminal}/stato`.
async fn set_state(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(terminal): Path<String>,
    axum::Form(form): axum::Form<StateForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let active = form.attivo == "1";
    let ctx = signed.ctx(&state);
    match pos::set_terminal_active(&ctx, &ente, &terminal, active).await {
        Ok(()) => {
            let esito = if active { "attivato" } else { "disattivato" };
            Redirect::to(&format!("{SECTION}?esito={}", query_value(esito))).into_response()
        }
        Err(e) => action_refused(&state, &signed, e).await,
    }
}

/// A row action refused: a terminal or desk the Ente does not have is
/// told on the list (with its status), anything else on the error page.
async fn action_refused(state: &AppState, signed: &SignedIn, e: AppError) -> Response {
    if matches!(e.kind, Kind::NotFound | Kind::Conflict | Kind::Invalid) {
        let status = crate::error::status_of(e.kind);
        let mut resp = list_page(
            state,
            signed,
            RegisterForm::default(),
            FieldErrors::default(),
            None,
            Some(sentence(&e.detail)),
        )
        .await;
        if resp.status() == StatusCode::BAD_REQUEST {
            *resp.status_mut() = status;
        }
        resp
    } else {
        error_page(signed.chrome(state, SECTION).await, &e)
    }
}
