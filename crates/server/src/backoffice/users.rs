//! Users and roles (Users area): the Ente's operators (and, for the
//! intermediary's administrator, their colleagues), a new operator with a
//! role, offices and the areas granted, their rights changed, disabled and
//! enabled again, and a provisional password set by an administrator,
//! shown once. Who may do what is `operators`' to decide.

use super::catalogue::{Slice, messages, opt, slice};
use super::ui::{Chrome, ListParams, ListUrls, Table, export, page_with_status};
use super::{SignedIn, error_page, page};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use incasso_app::operators::{self, NewOperatorInput, OperatorChange, OperatorView};
use incasso_app::sheet::{Cell, Sheet};
use incasso_app::{AppError, Kind, admin};
use incasso_core::access::{Access, Area, Rights, Role};
use serde::Deserialize;

const SECTION: &str = "/backoffice/utenti";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(SECTION, get(list))
        .route("/backoffice/utenti/nuovo", get(new_form).post(create))
        .route("/backoffice/utenti/{id}", get(edit_form).post(update))
        .route("/backoffice/utenti/{id}/stato", post(set_disabled))
        .route("/backoffice/utenti/{id}/password", post(reset_password))
}

const LABELS: &[(&str, &str)] = &[
    ("username", "Nome utente"),
    ("fullName", "Nome e cognome"),
    ("fiscalCode", "Codice fiscale"),
    ("email", "Posta elettronica"),
    ("password", "Password"),
];

fn may_write(signed: &SignedIn, ente: &str) -> bool {
    signed.operator.rights.may(ente, Area::Users, Access::Write)
}

/// The areas an operator works in, as a clerk reads them.
fn areas_text(r: &Rights) -> String {
    match r.role {
        Role::IntermediaryAdmin | Role::EnteAdmin => "tutte".into(),
        Role::Accountant => "tutte, in sola lettura".into(),
        Role::CounterClerk => format!("{} (lettura e scrittura)", Area::Positions.label()),
        Role::OfficeOperator if r.grants.is_empty() => "nessuna".into(),
        Role::OfficeOperator => r
            .grants
            .iter()
            .map(|(a, access)| {
                format!(
                    "{} ({})",
                    a.label(),
                    match access {
                        Access::Read => "lettura",
                        Access::Write => "lettura e scrittura",
                    }
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn offices_text(r: &Rights) -> String {
    match r.office_scope() {
        None => "tutti".into(),
        Some([]) => "nessuno".into(),
        Some(o) => o.join(", "),
    }
}

// ---------------------------------------------------------------- list

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    esito: String,
    #[serde(flatten)]
    list: ListParams,
}

#[derive(Template)]
#[template(path = "backoffice/users.html")]
struct ListPage {
    chrome: Chrome,
    table: Table,
    can_write: bool,
    notice: Option<&'static str>,
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
    let all = match operators::list(&signed.ctx(&state), &ente).await {
        Ok(l) => l,
        Err(e) => return error_page(chrome, &e),
    };
    let keys = ["username", "name", "role", "", "", "state"];
    let sort = q.list.sort(&keys, "username");
    let Slice {
        rows,
        page: page_no,
        has_next,
        total,
    } = slice(all, &q.list, |a: &OperatorView, b: &OperatorView| {
        match sort {
            "name" => a.full_name.cmp(&b.full_name),
            "role" => a.rights.role.label().cmp(b.rights.role.label()),
            "state" => a.disabled.cmp(&b.disabled),
            _ => std::cmp::Ordering::Equal,
        }
        .then_with(|| a.username.cmp(&b.username))
    });
    let mut sheet = Sheet::new(
        "Operatori",
        &[
            "Nome utente",
            "Nome e cognome",
            "Ruolo",
            "Uffici",
            "Aree",
            "Stato",
        ],
    );
    let mut links = Vec::new();
    for o in &rows {
        sheet.push(vec![
            Cell::text(&o.username),
            Cell::text(&o.full_name),
            Cell::text(o.rights.role.label()),
            Cell::text(offices_text(&o.rights)),
            Cell::text(areas_text(&o.rights)),
            Cell::text(if o.disabled {
                "disattivato"
            } else if o.must_change_password {
                "attivo, password provvisoria"
            } else {
                "attivo"
            }),
        ]);
        links.push(Some(format!("{SECTION}/{}", o.id)));
    }
    if let Some(format) = q.list.export() {
        return export(&sheet, format, &format!("operatori-{ente}"));
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
            "salvato" => Some("Operatore salvato."),
            _ => None,
        },
    })
}

// ---------------------------------------------------------------- form

/// The form as sent: the offices are repeated checkboxes, so the fields
/// come as pairs rather than a struct.
#[derive(Default)]
struct UserForm {
    csrf: String,
    username: String,
    nome: String,
    codice_fiscale: String,
    email: String,
    ruolo: String,
    offices: Vec<String>,
    /// For each area of [`Area::ALL`]: "", "read" or "write".
    areas: Vec<String>,
}

fn area_key(a: Area) -> String {
    format!("area_{}", format!("{a:?}").to_lowercase())
}

impl UserForm {
    fn of_pairs(pairs: Vec<(String, String)>) -> UserForm {
        let mut f = UserForm {
            areas: vec![String::new(); Area::ALL.len()],
            ..UserForm::default()
        };
        for (k, v) in pairs {
            match k.as_str() {
                "csrf" => f.csrf = v,
                "username" => f.username = v,
                "nome" => f.nome = v,
                "codice_fiscale" => f.codice_fiscale = v,
                "email" => f.email = v,
                "ruolo" => f.ruolo = v,
                "ufficio" => f.offices.push(v),
                _ => {
                    if let Some(i) = Area::ALL.iter().position(|a| area_key(*a) == k) {
                        f.areas[i] = v;
                    }
                }
            }
        }
        f
    }

    fn of(o: &OperatorView) -> UserForm {
        UserForm {
            csrf: String::new(),
            username: o.username.clone(),
            nome: o.full_name.clone(),
            codice_fiscale: o.fiscal_code.clone().unwrap_or_default(),
            email: o.email.clone().unwrap_or_default(),
            ruolo: o.rights.role.as_str().into(),
            offices: o.rights.offices.clone(),
            areas: Area::ALL
                .iter()
                .map(|a| {
                    match o.rights.grants.iter().find(|(g, _)| g == a) {
                        Some((_, Access::Read)) => "read",
                        Some((_, Access::Write)) => "write",
                        None => "",
                    }
                    .to_string()
                })
                .collect(),
        }
    }

    /// The rights the form gives, on `ente` (none for the intermediary's
    /// administrator): areas only for an office operator, offices only for
    /// the roles limited to them.
    fn rights(&self, ente: Option<&str>) -> Result<Rights, String> {
        let role: Role = self
            .ruolo
            .parse()
            .map_err(|_| "Ruolo: sceglierne uno".to_string())?;
        let grants = if role == Role::OfficeOperator {
            Area::ALL
                .iter()
                .zip(&self.areas)
                .filter_map(|(a, v)| match v.as_str() {
                    "read" => Some((*a, Access::Read)),
                    "write" => Some((*a, Access::Write)),
                    _ => None,
                })
                .collect()
        } else {
            Vec::new()
        };
        let offices = if matches!(role, Role::OfficeOperator | Role::CounterClerk) {
            let mut o = self.offices.clone();
            o.sort();
            o.dedup();
            o
        } else {
            Vec::new()
        };
        Ok(Rights {
            role,
            ente: (role != Role::IntermediaryAdmin).then(|| ente.unwrap_or("").to_string()),
            grants,
            offices,
        })
    }
}

struct RoleChoice {
    value: &'static str,
    label: &'static str,
}

struct OfficeChoice {
    code: String,
    label: String,
    checked: bool,
}

struct AreaChoice {
    key: String,
    label: &'static str,
    value: String,
}

#[derive(Template)]
#[template(path = "backoffice/users_form.html")]
struct FormPage {
    chrome: Chrome,
    /// None: a new operator.
    id: Option<i64>,
    form: UserForm,
    roles: Vec<RoleChoice>,
    offices: Vec<OfficeChoice>,
    areas: Vec<AreaChoice>,
    errors: Vec<String>,
    can_write: bool,
    /// An existing operator's state.
    disabled: bool,
    must_change_password: bool,
    /// The page is the operator's own.
    own: bool,
    notice: Option<&'static str>,
}

struct FormState {
    id: Option<i64>,
    disabled: bool,
    must_change_password: bool,
    notice: Option<&'static str>,
}

async fn form_page(
    state: &AppState,
    signed: &SignedIn,
    ente: &str,
    form: UserForm,
    errors: Vec<String>,
    at: FormState,
) -> FormPage {
    let mine = &signed.operator.rights;
    // The roles the operator may give: an office's head only those
    // limited to offices, the Ente's administrator no intermediary's.
    let roles = Role::ALL
        .into_iter()
        .filter(|r| *r != Role::IntermediaryAdmin || mine.role == Role::IntermediaryAdmin)
        .filter(|r| {
            mine.office_scope().is_none() || matches!(r, Role::OfficeOperator | Role::CounterClerk)
        })
        .map(|r| RoleChoice {
            value: r.as_str(),
            label: r.label(),
        })
        .collect();
    let offices = admin::list_offices(&signed.ctx(state), ente, None, Some(10_000))
        .await
        .map(|p| p.items)
        .unwrap_or_default()
        .into_iter()
        .map(|o| OfficeChoice {
            checked: form.offices.contains(&o.code),
            label: format!("{} ({})", o.name, o.code),
            code: o.code,
        })
        .collect();
    let areas = Area::ALL
        .iter()
        .zip(&form.areas)
        .map(|(a, v)| AreaChoice {
            key: area_key(*a),
            label: a.label(),
            value: v.clone(),
        })
        .collect();
    FormPage {
        chrome: signed.chrome(state, SECTION).await,
        id: at.id,
        own: at.id == Some(signed.operator.id),
        form,
        roles,
        offices,
        areas,
        errors,
        can_write: may_write(signed, ente),
        disabled: at.disabled,
        must_change_password: at.must_change_password,
        notice: at.notice,
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
    let form = UserForm {
        ruolo: Role::OfficeOperator.as_str().into(),
        areas: vec![String::new(); Area::ALL.len()],
        ..UserForm::default()
    };
    let at = FormState {
        id: None,
        disabled: false,
        must_change_password: false,
        notice: None,
    };
    page(&form_page(&state, &signed, &ente, form, Vec::new(), at).await)
}

#[derive(Template)]
#[template(path = "backoffice/users_password.html")]
struct PasswordPage {
    chrome: Chrome,
    id: i64,
    username: String,
    full_name: String,
    password: String,
    created: bool,
}

/// Adds an operator with a provisional password, shown once on the answer.
async fn create(
    State(state): State<AppState>,
    signed: SignedIn,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Response {
    let form = UserForm::of_pairs(pairs);
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let new = FormState {
        id: None,
        disabled: false,
        must_change_password: false,
        notice: None,
    };
    let rights = match form.rights(Some(&ente)) {
        Ok(r) => r,
        Err(m) => {
            let p = form_page(&state, &signed, &ente, form, vec![m], new).await;
            return page_with_status(&p, StatusCode::BAD_REQUEST);
        }
    };
    let username = form.username.trim().to_lowercase();
    let password = match operators::provisional_password(&username) {
        Ok(p) => p,
        Err(e) => {
            let p = form_page(&state, &signed, &ente, form, messages(&e, LABELS), new).await;
            return page_with_status(&p, StatusCode::BAD_REQUEST);
        }
    };
    let input = NewOperatorInput {
        username: username.clone(),
        full_name: form.nome.trim().to_string(),
        fiscal_code: opt(&form.codice_fiscale).map(|f| f.to_uppercase()),
        email: opt(&form.email),
        rights,
        password: Some(password.clone()),
    };
    match operators::create(&signed.ctx(&state), input).await {
        Ok(id) => page(&PasswordPage {
            chrome: signed.chrome(&state, SECTION).await,
            id,
            username,
            full_name: form.nome.trim().to_string(),
            password,
            created: true,
        }),
        Err(e) if matches!(e.kind, Kind::Invalid | Kind::Conflict) => {
            let p = form_page(&state, &signed, &ente, form, messages(&e, LABELS), new).await;
            page_with_status(&p, StatusCode::BAD_REQUEST)
        }
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}

#[derive(Deserialize)]
struct EditQuery {
    #[serde(default)]
    esito: String,
}

async fn edit_form(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<i64>,
    Query(q): Query<EditQuery>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    match operators::get(&signed.ctx(&state), id).await {
        Ok(o) => {
            let at = FormState {
                id: Some(o.id),
                disabled: o.disabled,
                must_change_password: o.must_change_password,
                notice: match q.esito.as_str() {
                    "disattivato" => Some("Operatore disattivato: le sue sessioni sono chiuse."),
                    "attivato" => Some("Operatore riattivato."),
                    "salvato" => Some("Operatore salvato."),
                    _ => None,
                },
            };
            let ente_of_page = o.rights.ente.clone().unwrap_or(ente);
            page(
                &form_page(
                    &state,
                    &signed,
                    &ente_of_page,
                    UserForm::of(&o),
                    Vec::new(),
                    at,
                )
                .await,
            )
        }
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}

/// Saves an operator's data and rights: the username never changes.
async fn update(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<i64>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Response {
    let mut form = UserForm::of_pairs(pairs);
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let ctx = signed.ctx(&state);
    let o = match operators::get(&ctx, id).await {
        Ok(o) => o,
        Err(e) => return error_page(signed.chrome(&state, SECTION).await, &e),
    };
    form.username = o.username.clone();
    let their_ente = o.rights.ente.clone().unwrap_or(ente);
    let at = FormState {
        id: Some(o.id),
        disabled: o.disabled,
        must_change_password: o.must_change_password,
        notice: None,
    };
    let rights = match form.rights(Some(&their_ente)) {
        Ok(r) => r,
        Err(m) => {
            let p = form_page(&state, &signed, &their_ente, form, vec![m], at).await;
            return page_with_status(&p, StatusCode::BAD_REQUEST);
        }
    };
    let change = OperatorChange {
        full_name: form.nome.trim().to_string(),
        fiscal_code: opt(&form.codice_fiscale).map(|f| f.to_uppercase()),
        email: opt(&form.email),
        rights,
    };
    match operators::update(&ctx, id, change).await {
        Ok(()) => Redirect::to(&format!("{SECTION}/{id}?esito=salvato")).into_response(),
        Err(e) if e.kind == Kind::Invalid => {
            let p = form_page(&state, &signed, &their_ente, form, messages(&e, LABELS), at).await;
            page_with_status(&p, StatusCode::BAD_REQUEST)
        }
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}

#[derive(Deserialize)]
struct StateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    attivo: String,
}

async fn set_disabled(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<i64>,
    axum::Form(form): axum::Form<StateForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let disabled = form.attivo != "1";
    match operators::set_disabled(&signed.ctx(&state), id, disabled).await {
        Ok(()) => Redirect::to(&format!(
            "{SECTION}/{id}?esito={}",
            if disabled { "disattivato" } else { "attivato" }
        ))
        .into_response(),
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// A new provisional password for the operator, shown once.
async fn reset_password(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<i64>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ctx = signed.ctx(&state);
    let o = match operators::get(&ctx, id).await {
        Ok(o) => o,
        Err(e) => return error_page(signed.chrome(&state, SECTION).await, &e),
    };
    let result = match operators::provisional_password(&o.username) {
        Ok(password) => operators::reset_password(&ctx, id, &password)
            .await
            .map(|()| password),
        Err(e) => Err(e),
    };
    match result {
        Ok(password) => page(&PasswordPage {
            chrome: signed.chrome(&state, SECTION).await,
            id,
            username: o.username,
            full_name: o.full_name,
            password,
            created: false,
        }),
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}
