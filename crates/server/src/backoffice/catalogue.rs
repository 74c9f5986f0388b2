//! The catalogue of services (Catalogue area): each service with its pagoPA
//! taxonomy code, IBAN, default accertamento and spontaneous-payment
//! settings, listed, created and changed; and the Ente's offices, which
//! services and operators belong to.
//!
//! Also the small pieces the configuration pages share (accertamenti,
//! catalogue, stations, users, keys): a registry's page sorted on the
//! server, and a refusal's messages with the fields named in Italian.

use super::ui::{Chrome, ListParams, ListUrls, Table, export, page_with_status};
use super::{SignedIn, error_page, page};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use incasso_app::sheet::{Cell, Sheet};
use incasso_app::{AppError, Kind, admin};
use incasso_core::Cents;
use incasso_core::accertamento::AccertamentoRef;
use incasso_core::access::{Access, Area};
use incasso_core::catalogue::Service;
use incasso_core::ente::Office;
use serde::Deserialize;
use std::cmp::Ordering;

const SECTION: &str = "/backoffice/servizi";

mod form_editor;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(SECTION, get(list))
        .route("/backoffice/servizi/nuovo", get(new_form).post(create))
        .route("/backoffice/servizi/uffici", get(offices).post(put_office))
        .route("/backoffice/servizi/{code}", get(edit_form).post(update))
        .route(
            "/backoffice/servizi/{code}/modulo",
            get(form_editor::show).post(form_editor::save),
        )
}

// ---------------------------------------------------------------- shared

/// Rows per page of the configuration lists.
pub(super) const PAGE_SIZE: usize = 50;

/// One page of a registry, sorted on the server; the whole of it for an
/// export.
pub(super) struct Slice<T> {
    pub rows: Vec<T>,
    pub page: u32,
    pub has_next: bool,
    pub total: usize,
}

/// A registry (bounded by an Ente's size, read whole by its use case)
/// sorted by `cmp` in the direction asked and cut to the page asked.
pub(super) fn slice<T>(
    mut items: Vec<T>,
    params: &ListParams,
    cmp: impl Fn(&T, &T) -> Ordering,
) -> Slice<T> {
    items.sort_by(&cmp);
    if params.descending() {
        items.reverse();
    }
    let total = items.len();
    if params.export().is_some() {
        return Slice {
            rows: items,
            page: 1,
            has_next: false,
            total,
        };
    }
    let page = params.page();
    let start = (page as usize - 1).saturating_mul(PAGE_SIZE);
    let rows: Vec<T> = items.into_iter().skip(start).take(PAGE_SIZE).collect();
    let has_next = total > start.saturating_add(rows.len());
    Slice {
        rows,
        page,
        has_next,
        total,
    }
}

/// A refusal of input as the sentences a form shows: each broken rule
/// with its field's Italian name from `labels` (`field`, label).
pub(super) fn messages(e: &AppError, labels: &[(&str, &str)]) -> Vec<String> {
    let label = |field: &str| {
        labels
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, l)| l.to_string())
            .unwrap_or_else(|| field.to_string())
    };
    if !e.errors.is_empty() {
        return e
            .errors
            .iter()
            .map(|f| format!("{}: {}", label(&f.field), f.message))
            .collect();
    }
    // A single rule told as `field: reason`.
    match e.detail.split_once(": ") {
        Some((field, reason)) if labels.iter().any(|(f, _)| *f == field) => {
            vec![format!("{}: {reason}", label(field))]
        }
        _ => {
            let mut chars = e.detail.chars();
            vec![
                chars
                    .next()
                    .map(|c| c.to_uppercase().chain(chars).collect())
                    .unwrap_or_default(),
            ]
        }
    }
}

/// A form's text field: trimmed, `None` when empty.
pub(super) fn opt(s: &str) -> Option<String> {
    Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_string)
}

/// An amount as a clerk writes it (`1.234,56`, `12,5`, `12.50`, `12`).
pub(super) fn parse_amount(s: &str) -> Option<Cents> {
    let s = s.trim().trim_end_matches('€').trim();
    let decimal = if s.contains(',') {
        s.replace('.', "").replace(',', ".")
    } else if s.split('.').count() > 2 || s.split_once('.').is_some_and(|(_, d)| d.len() == 3) {
        // Only thousands separators: 1.234 or 1.234.567.
        s.replace('.', "")
    } else {
        s.to_string()
    };
    Cents::parse_decimal(&decimal)
}

// ---------------------------------------------------------------- services

const LABELS: &[(&str, &str)] = &[
    ("code", "Codice"),
    ("name", "Nome"),
    ("officeCode", "Ufficio"),
    ("taxonomyCode", "Codice tassonomia"),
    ("defaultAccertamento", "Accertamento predefinito"),
    ("defaultAccertamento.year", "Accertamento predefinito"),
    ("iban", "IBAN"),
    ("fixedAmount", "Importo fisso"),
    ("pagopaServiceId", "Identificativo del servizio pagoPA"),
];

fn may_write(signed: &SignedIn, ente: &str) -> bool {
    signed
        .operator
        .rights
        .may(ente, Area::Catalogue, Access::Write)
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    esito: String,
    #[serde(flatten)]
    list: ListParams,
}

#[derive(Template)]
#[template(path = "backoffice/services.html")]
struct ListPage {
    chrome: Chrome,
    table: Table,
    can_write: bool,
    notice: Option<&'static str>,
}

fn acc_text(a: &Option<AccertamentoRef>) -> String {
    a.as_ref()
        .map(|a| format!("{}/{}", a.year, a.code))
        .unwrap_or_default()
}

async fn list(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(q): Query<ListQuery>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let chrome = signed.chrome(&state, SECTION).await;
    let all = match admin::list_services(&signed.ctx(&state), &ente, None, Some(10_000)).await {
        Ok(p) => p.items,
        Err(e) => return error_page(chrome, &e),
    };
    let keys = [
        "code",
        "name",
        "office",
        "taxonomy",
        "accertamento",
        "",
        "amount",
        "spontaneous",
        "active",
    ];
    let sort = q.list.sort(&keys, "code");
    let Slice {
        rows,
        page: page_no,
        has_next,
        total,
    } = slice(all, &q.list, |a: &Service, b: &Service| {
        match sort {
            "name" => a.name.cmp(&b.name),
            "office" => a.office_code.cmp(&b.office_code),
            "taxonomy" => a.taxonomy_code.cmp(&b.taxonomy_code),
            "accertamento" => a.default_accertamento.cmp(&b.default_accertamento),
            "amount" => a
                .fixed_amount
                .map(|c| c.0)
                .cmp(&b.fixed_amount.map(|c| c.0)),
            "spontaneous" => a.spontaneous.cmp(&b.spontaneous),
            "active" => a.active.cmp(&b.active),
            _ => Ordering::Equal,
        }
        .then_with(|| a.code.cmp(&b.code))
    });
    let mut sheet = Sheet::new(
        "Catalogo dei servizi",
        &[
            "Codice",
            "Nome",
            "Ufficio",
            "Codice tassonomia",
            "Accertamento predefinito",
            "IBAN",
            "Importo fisso",
            "Pagamento spontaneo",
            "Attivo",
        ],
    );
    let mut links = Vec::new();
    for s in &rows {
        sheet.push(vec![
            Cell::text(&s.code),
            Cell::text(&s.name),
            Cell::opt_text(s.office_code.clone()),
            Cell::text(&s.taxonomy_code),
            Cell::text(acc_text(&s.default_accertamento)),
            Cell::opt_text(s.iban.clone()),
            s.fixed_amount.map(Cell::Money).unwrap_or(Cell::Empty),
            Cell::text(if s.spontaneous { "sì" } else { "no" }),
            Cell::text(if s.active { "sì" } else { "no" }),
        ]);
        links.push(Some(format!("{SECTION}/{}", s.code)));
    }
    if let Some(format) = q.list.export() {
        return export(&sheet, format, &format!("servizi-{ente}"));
    }
    let table = Table::new(
        &sheet,
        &keys,
        &links,
        &ListUrls {
            path: SECTION,
            filters: vec![],
            sort,
            descending: q.list.descending(),
        },
        page_no,
        has_next,
    )
    .with_total(total as u64);
    page(&ListPage {
        can_write: may_write(&signed, &ente),
        chrome,
        table,
        notice: match q.esito.as_str() {
            "creato" => Some("Servizio creato."),
            "salvato" => Some("Servizio salvato."),
            _ => None,
        },
    })
}

#[derive(Default, Deserialize)]
struct ServiceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    codice: String,
    #[serde(default)]
    nome: String,
    #[serde(default)]
    ufficio: String,
    #[serde(default)]
    tassonomia: String,
    #[serde(default)]
    accertamento: String,
    #[serde(default)]
    iban: String,
    #[serde(default)]
    importo: String,
    #[serde(default)]
    spontaneo: String,
    #[serde(default)]
    id_pagopa: String,
    #[serde(default)]
    attivo: String,
}

impl ServiceForm {
    fn of(s: &Service) -> ServiceForm {
        ServiceForm {
            csrf: String::new(),
            codice: s.code.clone(),
            nome: s.name.clone(),
            ufficio: s.office_code.clone().unwrap_or_default(),
            tassonomia: s.taxonomy_code.clone(),
            accertamento: acc_text(&s.default_accertamento),
            iban: s.iban.clone().unwrap_or_default(),
            importo: s.fixed_amount.map(|c| c.to_italian()).unwrap_or_default(),
            spontaneo: if s.spontaneous {
                "1".into()
            } else {
                String::new()
            },
            id_pagopa: s.pagopa_service_id.clone().unwrap_or_default(),
            attivo: if s.active { "1".into() } else { String::new() },
        }
    }

    /// The service the form describes, or what cannot even be read.
    fn service(&self) -> Result<Service, Vec<String>> {
        let mut problems = Vec::new();
        let fixed_amount = match opt(&self.importo) {
            None => None,
            Some(a) => match parse_amount(&a) {
                Some(c) => Some(c),
                None => {
                    problems.push(format!(
                        "Importo fisso: «{a}» non è un importo in euro (es. 12,50)"
                    ));
                    None
                }
            },
        };
        let default_accertamento = match opt(&self.accertamento) {
            None => None,
            Some(a) => match a
                .split_once('/')
                .and_then(|(y, c)| Some((y.trim().parse::<i32>().ok()?, c.trim())))
            {
                Some((year, code)) if !code.is_empty() => Some(AccertamentoRef {
                    year,
                    code: code.to_string(),
                }),
                _ => {
                    problems.push(format!(
                        "Accertamento predefinito: «{a}» va scritto come anno/codice, es. 2026/ACC-1"
                    ));
                    None
                }
            },
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Service {
            code: self.codice.trim().to_string(),
            name: self.nome.trim().to_string(),
            office_code: opt(&self.ufficio),
            taxonomy_code: self.tassonomia.trim().to_string(),
            default_accertamento,
            iban: opt(&self.iban).map(|i| i.replace(' ', "").to_uppercase()),
            fixed_amount,
            spontaneous: !self.spontaneo.is_empty(),
            pagopa_service_id: opt(&self.id_pagopa),
            active: !self.attivo.is_empty(),
        })
    }
}

/// An entry of a form's list of choices.
struct Choice {
    value: String,
    label: String,
}

#[derive(Template)]
#[template(path = "backoffice/services_form.html")]
struct FormPage {
    chrome: Chrome,
    creating: bool,
    form: ServiceForm,
    errors: Vec<String>,
    can_write: bool,
    offices: Vec<Choice>,
    accertamenti: Vec<Choice>,
    taxonomy: Vec<Choice>,
    /// The taxonomy entry of the service's code, as a clerk reads it.
    taxonomy_label: String,
}

/// The choices the form offers: the offices the operator sees, the active
/// accertamenti (when they may read them), the taxonomy valid today.
async fn form_page(
    state: &AppState,
    signed: &SignedIn,
    ente: &str,
    creating: bool,
    form: ServiceForm,
    errors: Vec<String>,
) -> FormPage {
    let ctx = signed.ctx(state);
    let offices = admin::list_offices(&ctx, ente, None, Some(10_000))
        .await
        .map(|p| p.items)
        .unwrap_or_default()
        .into_iter()
        .map(|o| Choice {
            label: format!("{} ({})", o.name, o.code),
            value: o.code,
        })
        .collect();
    let accertamenti = admin::list_accertamenti(&ctx, ente, None, None, Some(10_000))
        .await
        .map(|p| p.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.active)
        .map(|a| Choice {
            value: format!("{}/{}", a.year, a.code),
            label: a.description,
        })
        .collect();
    let today = incasso_core::time::to_rome(state.app.clock.now()).date();
    let taxonomy = incasso_core::taxonomy::all()
        .iter()
        .filter(|e| e.is_valid_on(today))
        .map(|e| Choice {
            value: e.code.clone(),
            label: format!("{} – {}", e.macro_area, e.service_type),
        })
        .collect();
    let taxonomy_label = incasso_core::taxonomy::lookup(&form.tassonomia)
        .map(|e| format!("{} – {}", e.macro_area, e.service_type))
        .unwrap_or_default();
    FormPage {
        chrome: signed.chrome(state, SECTION).await,
        creating,
        can_write: may_write(signed, ente),
        form,
        errors,
        offices,
        accertamenti,
        taxonomy,
        taxonomy_label,
    }
}

async fn new_form(State(state): State<AppState>, signed: SignedIn) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    if !may_write(&signed, &ente) {
        return error_page(signed.chrome(&state, SECTION).await, &AppError::forbidden());
    }
    let form = ServiceForm {
        attivo: "1".into(),
        ..ServiceForm::default()
    };
    page(&form_page(&state, &signed, &ente, true, form, Vec::new()).await)
}

async fn edit_form(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(code): Path<String>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    match admin::get_service(&signed.ctx(&state), &ente, &code).await {
        Ok(s) => page(
            &form_page(
                &state,
                &signed,
                &ente,
                false,
                ServiceForm::of(&s),
                Vec::new(),
            )
            .await,
        ),
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}

/// Saves the form: creating (a new code) or changing the path's service.
async fn save(
    state: AppState,
    signed: SignedIn,
    creating: bool,
    mut form: ServiceForm,
    path_code: Option<String>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    if let Some(code) = path_code {
        // A change is of a service there is (the put would create one):
        // else the same refusal as opening it.
        if let Err(e) = admin::get_service(&signed.ctx(&state), &ente, &code).await {
            return error_page(signed.chrome(&state, SECTION).await, &e);
        }
        form.codice = code;
    }
    let service = match form.service() {
        Ok(s) => s,
        Err(problems) => {
            let p = form_page(&state, &signed, &ente, creating, form, problems).await;
            return page_with_status(&p, StatusCode::BAD_REQUEST);
        }
    };
    let ctx = signed.ctx(&state);
    let result = if creating {
        admin::create_service(&ctx, &ente, &service).await
    } else {
        admin::put_service(&ctx, &ente, &service).await
    };
    match result {
        Ok(()) => Redirect::to(&format!(
            "{SECTION}?esito={}",
            if creating { "creato" } else { "salvato" }
        ))
        .into_response(),
        Err(e) if e.kind == Kind::Invalid => {
            let p = form_page(&state, &signed, &ente, creating, form, messages(&e, LABELS)).await;
            page_with_status(&p, StatusCode::BAD_REQUEST)
        }
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}

async fn create(
    State(state): State<AppState>,
    signed: SignedIn,
    axum::Form(form): axum::Form<ServiceForm>,
) -> Response {
    save(state, signed, true, form, None).await
}

async fn update(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(code): Path<String>,
    axum::Form(form): axum::Form<ServiceForm>,
) -> Response {
    save(state, signed, false, form, Some(code)).await
}

// ---------------------------------------------------------------- offices

const OFFICE_LABELS: &[(&str, &str)] = &[
    ("code", "Codice dell'ufficio"),
    ("name", "Nome dell'ufficio"),
    ("email", "Posta elettronica"),
];

#[derive(Default, Deserialize)]
struct OfficeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    codice: String,
    #[serde(default)]
    nome: String,
    #[serde(default)]
    email: String,
}

#[derive(Template)]
#[template(path = "backoffice/catalogue_offices.html")]
struct OfficesPage {
    chrome: Chrome,
    table: Table,
    /// The operator may change the Ente's organisation.
    can_write: bool,
    form: OfficeForm,
    /// Changing an office already there (its code fixed).
    editing: bool,
    errors: Vec<String>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
struct OfficesQuery {
    #[serde(default)]
    codice: String,
    #[serde(default)]
    esito: String,
    #[serde(flatten)]
    list: ListParams,
}

/// Whether the operator may change the offices (as `admin::put_office`
/// decides: the Catalogue area in writing, not limited to offices).
fn may_organise(signed: &SignedIn, ente: &str) -> bool {
    may_write(signed, ente) && signed.operator.rights.office_scope().is_none()
}

async fn offices_page(
    state: &AppState,
    signed: &SignedIn,
    ente: &str,
    params: &ListParams,
    form: OfficeForm,
    errors: Vec<String>,
    notice: Option<&'static str>,
) -> Response {
    let chrome = signed.chrome(state, SECTION).await;
    let all = match admin::list_offices(&signed.ctx(state), ente, None, Some(10_000)).await {
        Ok(p) => p.items,
        Err(e) => return error_page(chrome, &e),
    };
    let can_write = may_organise(signed, ente);
    let editing = errors.is_empty() && all.iter().any(|o| o.code == form.codice);
    let keys = ["code", "name", "email"];
    let sort = params.sort(&keys, "code");
    let Slice {
        rows,
        page: page_no,
        has_next,
        total,
    } = slice(all, params, |a: &Office, b: &Office| {
        match sort {
            "name" => a.name.cmp(&b.name),
            "email" => a.email.cmp(&b.email),
            _ => Ordering::Equal,
        }
        .then_with(|| a.code.cmp(&b.code))
    });
    let mut sheet = Sheet::new("Uffici", &["Codice", "Nome", "Posta elettronica"]);
    let mut links = Vec::new();
    for o in &rows {
        sheet.push(vec![
            Cell::text(&o.code),
            Cell::text(&o.name),
            Cell::opt_text(o.email.clone()),
        ]);
        links.push(
            can_write.then(|| super::ui::url("/backoffice/servizi/uffici", &[("codice", &o.code)])),
        );
    }
    if let Some(format) = params.export() {
        return export(&sheet, format, &format!("uffici-{ente}"));
    }
    let table = Table::new(
        &sheet,
        &keys,
        &links,
        &ListUrls {
            path: "/backoffice/servizi/uffici",
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
        &OfficesPage {
            chrome,
            table,
            can_write,
            form,
            editing,
            errors,
            notice,
        },
        status,
    )
}

async fn offices(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(q): Query<OfficesQuery>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    // The office to change, its fields filled in.
    let mut form = OfficeForm::default();
    if !q.codice.is_empty()
        && let Ok(p) = admin::list_offices(&signed.ctx(&state), &ente, None, Some(10_000)).await
        && let Some(o) = p.items.into_iter().find(|o| o.code == q.codice)
    {
        form = OfficeForm {
            csrf: String::new(),
            codice: o.code,
            nome: o.name,
            email: o.email.unwrap_or_default(),
        };
    }
    let notice = (q.esito == "salvato").then_some("Ufficio salvato.");
    offices_page(&state, &signed, &ente, &q.list, form, Vec::new(), notice).await
}

/// Creates an office or changes the one with the same code.
async fn put_office(
    State(state): State<AppState>,
    signed: SignedIn,
    axum::Form(form): axum::Form<OfficeForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let office = Office {
        code: form.codice.trim().to_string(),
        name: form.nome.trim().to_string(),
        email: opt(&form.email),
    };
    match admin::put_office(&signed.ctx(&state), &ente, &office).await {
        Ok(()) => Redirect::to("/backoffice/servizi/uffici?esito=salvato").into_response(),
        Err(e) if e.kind == Kind::Invalid => {
            let errors = messages(&e, OFFICE_LABELS);
            offices_page(
                &state,
                &signed,
                &ente,
                &ListParams::default(),
                form,
                errors,
                None,
            )
            .await
        }
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_as_clerks_write_them() {
        assert_eq!(parse_amount("1.234,56"), Some(Cents(123456)));
        assert_eq!(parse_amount("12,5"), Some(Cents(1250)));
        assert_eq!(parse_amount("12.50"), Some(Cents(1250)));
        assert_eq!(parse_amount("1.234"), Some(Cents(123400)));
        assert_eq!(parse_amount("16 €"), Some(Cents(1600)));
        assert_eq!(parse_amount("dodici"), None);
        assert_eq!(parse_amount("1,234"), None);
    }
}
