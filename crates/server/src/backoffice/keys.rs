//! The Ente's API keys (administrators only): listed, issued (the secret
//! shown once: incasso keeps only its hash) and revoked.

use super::catalogue::{Slice, messages, slice};
use super::ui::{Chrome, ListParams, ListUrls, Table, export, page_with_status};
use super::{SignedIn, error_page, page};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use incasso_app::sheet::{Cell, Sheet};
use incasso_app::{Kind, keys};
use incasso_store::{ApiKeyRecord, KeyScope};
use serde::Deserialize;

const SECTION: &str = "/backoffice/chiavi";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(SECTION, get(list).post(issue))
        .route("/backoffice/chiavi/{key_id}/revoca", post(revoke))
}

fn scope_label(s: KeyScope) -> &'static str {
    match s {
        KeyScope::Ente => "applicazione",
        KeyScope::EnteAdmin => "amministrazione dell'ente",
        KeyScope::Intermediary => "intermediario",
    }
}

#[derive(Default, Deserialize)]
struct IssueForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    etichetta: String,
    /// `ente` (an application's) or `ente_admin`.
    #[serde(default)]
    tipo: String,
}

#[derive(Template)]
#[template(path = "backoffice/keys.html")]
struct ListPage {
    chrome: Chrome,
    table: Table,
    /// Key ids and labels, for the buttons that revoke them.
    revocable: Vec<(String, String)>,
    form: IssueForm,
    errors: Vec<String>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    esito: String,
    #[serde(flatten)]
    list: ListParams,
}

async fn list_page(
    state: &AppState,
    signed: &SignedIn,
    params: &ListParams,
    form: IssueForm,
    errors: Vec<String>,
    notice: Option<&'static str>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let chrome = signed.chrome(state, SECTION).await;
    let all = match keys::list(&signed.ctx(state), Some(&ente), None, Some(10_000)).await {
        Ok(p) => p.items,
        Err(e) => return error_page(chrome, &e),
    };
    let sort_keys = ["id", "label", "scope", "created"];
    let sort = params.sort(&sort_keys, "created");
    let Slice {
        rows,
        page: page_no,
        has_next,
        total,
    } = slice(all, params, |a: &ApiKeyRecord, b: &ApiKeyRecord| {
        match sort {
            "id" => a.key_id.cmp(&b.key_id),
            "label" => a.label.cmp(&b.label),
            "scope" => scope_label(a.scope).cmp(scope_label(b.scope)),
            _ => a.created_at.cmp(&b.created_at),
        }
        .then_with(|| a.key_id.cmp(&b.key_id))
    });
    let mut sheet = Sheet::new(
        "Chiavi API",
        &["Identificativo", "Etichetta", "Tipo", "Emessa il"],
    );
    for k in &rows {
        sheet.push(vec![
            Cell::text(&k.key_id),
            Cell::text(&k.label),
            Cell::text(scope_label(k.scope)),
            Cell::DateTime(incasso_store::from_micros(k.created_at)),
        ]);
    }
    if let Some(format) = params.export() {
        return export(&sheet, format, &format!("chiavi-{ente}"));
    }
    let revocable = rows
        .iter()
        .map(|k| (k.key_id.clone(), k.label.clone()))
        .collect();
    let table = Table::new(
        &sheet,
        &sort_keys,
        &[],
        &ListUrls {
            path: SECTION,
            filters: vec![],
            sort,
            descending: params.descending(),
        },
        page_no,
        has_next,
    )
    .with_total(total as u64);
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    page_with_status(
        &ListPage {
            chrome,
            table,
            revocable,
            form,
            errors,
            notice,
        },
        status,
    )
}

async fn list(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(q): Query<ListQuery>,
) -> Response {
    let notice = (q.esito == "revocata").then_some("Chiave revocata: non è più accettata.");
    let form = IssueForm {
        tipo: "ente".into(),
        ..IssueForm::default()
    };
    list_page(&state, &signed, &q.list, form, Vec::new(), notice).await
}

#[derive(Template)]
#[template(path = "backoffice/keys_issued.html")]
struct IssuedPage {
    chrome: Chrome,
    key_id: String,
    label: String,
    api_key: String,
}

/// Issues a key; the answer shows it, once.
async fn issue(
    State(state): State<AppState>,
    signed: SignedIn,
    axum::Form(form): axum::Form<IssueForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let scope = match form.tipo.as_str() {
        "ente_admin" => KeyScope::EnteAdmin,
        _ => KeyScope::Ente,
    };
    let label = form.etichetta.trim().to_string();
    match keys::issue(&signed.ctx(&state), Some(&ente), scope, &label).await {
        Ok((key_id, api_key)) => page(&IssuedPage {
            chrome: signed.chrome(&state, SECTION).await,
            key_id,
            label,
            api_key,
        }),
        Err(e) if e.kind == Kind::Invalid => {
            let errors = messages(&e, &[("label", "Etichetta")]);
            list_page(&state, &signed, &ListParams::default(), form, errors, None).await
        }
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn revoke(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(key_id): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    match keys::revoke(&signed.ctx(&state), &ente, &key_id).await {
        Ok(()) => Redirect::to(&format!("{SECTION}?esito=revocata")).into_response(),
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}
