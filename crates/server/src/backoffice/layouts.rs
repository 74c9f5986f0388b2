//! The Digit BUS's layouts (tracciati) of the Ente: the list (its own and
//! the built-in ones it has not replaced), each layout's text, and a form
//! that stores a new version of one (a built-in one's text is where an
//! Ente's own starts). A text that is not a layout comes back with the
//! parser's reason, naming its line or the rule it breaks.

use super::ui::{self, Chrome, ListParams, ListUrls, Table};
use super::{SignedIn, error_page, page};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use incasso_app::bus;
use incasso_core::access::{Access, Area};
use serde::Deserialize;

const SECTION: &str = "/backoffice/tracciati";
/// The longest layout text taken: a layout is a page of TOML.
const MAX_LAYOUT_CHARS: usize = 256 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(SECTION, get(list).post(put))
        .route("/backoffice/tracciati/{name}", get(show))
}

fn may_write(signed: &SignedIn, ente: &str) -> bool {
    signed
        .operator
        .rights
        .may(ente, Area::Supplies, Access::Write)
}

#[derive(Template)]
#[template(path = "backoffice/layouts.html")]
struct ListPage {
    chrome: Chrome,
    table: Table,
    may_write: bool,
}

async fn list(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(params): Query<ListParams>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let ctx = signed.ctx(&state);
    let sort = params.sort(&bus::LAYOUT_SORT_KEYS, "nome");
    let listed = match bus::layouts_sheet(&ctx, &ente, sort, params.descending()).await {
        Ok(l) => l,
        Err(e) => return error_page(signed.chrome(&state, SECTION).await, &e),
    };
    if let Some(format) = params.export() {
        return ui::export(&listed.sheet, format, "tracciati");
    }
    let links: Vec<Option<String>> = listed
        .keys
        .iter()
        .map(|name| Some(format!("{SECTION}/{}", ui::query_value(name))))
        .collect();
    let urls = ListUrls {
        path: SECTION,
        filters: vec![],
        sort,
        descending: params.descending(),
    };
    let table = Table::new(
        &listed.sheet,
        &bus::LAYOUT_SORT_KEYS,
        &links,
        &urls,
        1,
        false,
    )
    .with_total(listed.total);
    page(&ListPage {
        chrome: signed.chrome(&state, SECTION).await,
        table,
        may_write: may_write(&signed, &ente),
    })
}

#[derive(Template)]
#[template(path = "backoffice/layout.html")]
struct LayoutPage {
    chrome: Chrome,
    name: String,
    text: String,
    may_write: bool,
    /// Why the text sent was refused, when it was.
    error: Option<String>,
    /// The form's text: the one sent back, or the layout's own.
    draft: String,
    /// The form sent back with its name to correct (no layout to show).
    new: bool,
}

async fn show(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(name): Path<String>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let ctx = signed.ctx(&state);
    let chrome = signed.chrome(&state, SECTION).await;
    match bus::layout_text(&ctx, &ente, &name).await {
        Ok(text) => page(&LayoutPage {
            chrome,
            may_write: may_write(&signed, &ente),
            error: None,
            draft: text.clone(),
            text,
            name,
            new: false,
        }),
        Err(e) => error_page(chrome, &e),
    }
}

#[derive(Deserialize)]
struct PutForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    nome: String,
    #[serde(default)]
    testo: String,
}

/// Stores a new version of a layout: the name from the form, the text
/// from the textarea.
async fn put(
    State(state): State<AppState>,
    signed: SignedIn,
    axum::Form(form): axum::Form<PutForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let ctx = signed.ctx(&state);
    let chrome = signed.chrome(&state, SECTION).await;
    let name = form.nome.trim().to_string();
    let back = |chrome: Chrome, status: StatusCode, message: String| {
        ui::page_with_status(
            &LayoutPage {
                chrome,
                name: name.clone(),
                text: String::new(),
                may_write: true,
                error: Some(message),
                draft: form.testo.clone(),
                new: true,
            },
            status,
        )
    };
    if name.is_empty() {
        return back(
            chrome,
            StatusCode::BAD_REQUEST,
            "Nome: indicare il nome del tracciato (lo stesso del campo name nel testo)".into(),
        );
    }
    if form.testo.trim().is_empty() {
        return back(
            chrome,
            StatusCode::BAD_REQUEST,
            "Testo del tracciato: scrivere la definizione del tracciato (TOML)".into(),
        );
    }
    if form.testo.len() > MAX_LAYOUT_CHARS {
        return back(
            chrome,
            StatusCode::BAD_REQUEST,
            format!(
                "Testo del tracciato: troppo lungo (al più {} kB)",
                MAX_LAYOUT_CHARS / 1024
            ),
        );
    }
    match bus::put_layout(&ctx, &ente, &name, &form.testo).await {
        Ok(_) => Redirect::to(&format!("{SECTION}/{}", ui::query_value(&name))).into_response(),
        Err(e) if e.kind == incasso_app::Kind::Invalid => back(
            chrome,
            StatusCode::BAD_REQUEST,
            format!("Testo del tracciato: {}", e.detail),
        ),
        Err(e) => error_page(chrome, &e),
    }
}
