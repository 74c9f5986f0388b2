//! The Sportello Digitale (`/backoffice/sportello/...`): the counter desk,
//! made for a clerk with a queue in front of them and the keyboard under
//! their hands. Each step's first field has the focus, the tab order is
//! the reading order, and everything works without JavaScript.
//!
//! 1. `/backoffice/sportello`: the desks the clerk may work at (the Ente's
//!    administrators add desks here);
//! 2. `/backoffice/sportello/{desk}`: the desk: a service to issue from,
//!    the search of a person's open positions by fiscal code, the day;
//! 3. `.../servizi/{code}`: the debtor and the service's form, then the
//!    summary, then *Emetti*;
//! 4. `.../emesse/{iupd}`: what was issued: print the notice, print the
//!    Ente's copy (*avviso PA*), mail the notice;
//! 5. `.../giornata`: the day's report, its closing and its exports.
//!
//! The desk is named in every URL rather than kept in the session: two
//! tabs can work at two desks, a bookmark opens the clerk's own desk, and
//! the back button never lands on another desk's page. Every use case
//! checks that the clerk may work at it. Fiscal codes travel only in POST
//! bodies, never in a URL.

use super::ui::{Chrome, download, export, page_with_status};
use super::{SignedIn, error_page, page};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::NaiveDate;
use incasso_app::desk::{self, DayReport, Desk, DeskService, Issued, Mailed};
use incasso_app::portal::spontaneous::{ServiceForm, new_token, well_formed_token};
use incasso_app::{AppError, Kind};
use incasso_core::access::Role;
use incasso_core::form::{self, Accepted, Amount, Answers, FieldKind};
use serde::Deserialize;
use std::collections::BTreeMap;

const SECTION: &str = "/backoffice/sportello";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(SECTION, get(home).post(create_desk))
        .route("/backoffice/sportello/{desk}", get(desk_page))
        .route("/backoffice/sportello/{desk}/cerca", post(search))
        .route("/backoffice/sportello/{desk}/terminale", post(push_chosen))
        .route(
            "/backoffice/sportello/{desk}/pos/{session}",
            get(session_page),
        )
        .route(
            "/backoffice/sportello/{desk}/ristampa/{iupd}/avviso.pdf",
            get(reprint),
        )
        .route(
            "/backoffice/sportello/{desk}/servizi/{code}",
            get(blank).post(review),
        )
        .route(
            "/backoffice/sportello/{desk}/servizi/{code}/modifica",
            post(amend),
        )
        .route(
            "/backoffice/sportello/{desk}/servizi/{code}/emetti",
            post(issue),
        )
        .route(
            "/backoffice/sportello/{desk}/servizi/{code}/terminale",
            post(create_at_terminal),
        )
        .route("/backoffice/sportello/{desk}/emesse/{iupd}", get(issued))
        .route(
            "/backoffice/sportello/{desk}/emesse/{iupd}/avviso.pdf",
            get(notice_pdf),
        )
        .route(
            "/backoffice/sportello/{desk}/emesse/{iupd}/avviso-pa.pdf",
            get(avviso_pa),
        )
        .route(
            "/backoffice/sportello/{desk}/emesse/{iupd}/email",
            post(email),
        )
        .route("/backoffice/sportello/{desk}/emesse/{iupd}/pos", post(push))
        .route(
            "/backoffice/sportello/{desk}/emesse/{iupd}/io",
            post(send_io),
        )
        .route("/backoffice/sportello/{desk}/giornata", get(day))
        .route("/backoffice/sportello/{desk}/giornata/chiudi", post(close))
        .route(
            "/backoffice/sportello/{desk}/pos/{session}/rilascia",
            get(confirm_release).post(release),
        )
}

fn seg(s: &str) -> String {
    super::ui::query_value(s)
}

fn desk_url(desk: &str) -> String {
    format!("{SECTION}/{}", seg(desk))
}

fn issued_url(desk: &str, iupd: &str) -> String {
    format!("{}/emesse/{}", desk_url(desk), seg(iupd))
}

/// A notice number as printed on the notice: in groups of four.
fn groups_of_four(code: &str) -> String {
    code.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn euro(c: incasso_core::Cents) -> String {
    format!("{} €", c.to_italian())
}

fn rome(t: chrono::DateTime<chrono::Utc>) -> String {
    incasso_core::time::to_rome(t)
        .format("%d/%m/%Y %H:%M")
        .to_string()
}

/// The signed-in operator's Ente, context and frame, or the page that
/// says why not.
async fn begin(
    state: &AppState,
    signed: &SignedIn,
) -> Result<(String, incasso_app::Ctx), Response> {
    let ente = signed.ente()?.to_string();
    Ok((ente, signed.ctx(state)))
}

async fn chrome(state: &AppState, signed: &SignedIn) -> Chrome {
    signed.chrome(state, SECTION).await
}

// ---------------------------------------------------------------- desks

#[derive(Template)]
#[template(path = "backoffice/desk_home.html")]
struct HomePage {
    chrome: Chrome,
    desks: Vec<Desk>,
    admin: bool,
    offices: Vec<(String, String)>,
    errors: Vec<String>,
    code: String,
    name: String,
    office: String,
}

/// `GET /backoffice/sportello`: the desks the clerk may work at.
async fn home(State(state): State<AppState>, signed: SignedIn) -> Response {
    let (ente, ctx) = match begin(&state, &signed).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    home_page(
        &state,
        &signed,
        &ente,
        &ctx,
        Vec::new(),
        DeskForm::default(),
    )
    .await
}

#[derive(Deserialize, Default)]
struct DeskForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    office: String,
}

async fn home_page(
    state: &AppState,
    signed: &SignedIn,
    ente: &str,
    ctx: &incasso_app::Ctx,
    errors: Vec<String>,
    form: DeskForm,
) -> Response {
    let admin = matches!(
        signed.operator.rights.role,
        Role::EnteAdmin | Role::IntermediaryAdmin
    );
    let desks = match desk::list(ctx, ente).await {
        Ok(d) => d,
        Err(e) => return error_page(chrome(state, signed).await, &e),
    };
    let offices = if admin {
        state
            .app
            .store
            .list_offices(ente)
            .await
            .map(|os| os.into_iter().map(|o| (o.code, o.name)).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    page_with_status(
        &HomePage {
            chrome: chrome(state, signed).await,
            desks,
            admin,
            offices,
            errors,
            code: form.code,
            name: form.name,
            office: form.office,
        },
        status,
    )
}

/// `POST /backoffice/sportello`: an administrator adds a desk.
async fn create_desk(
    State(state): State<AppState>,
    signed: SignedIn,
    axum::Form(form): axum::Form<DeskForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let (ente, ctx) = match begin(&state, &signed).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let office = Some(form.office.as_str()).filter(|o| !o.is_empty());
    match desk::create(&ctx, &ente, &form.code, &form.name, office).await {
        Ok(d) => Redirect::to(&desk_url(&d.code)).into_response(),
        Err(e) if matches!(e.kind, Kind::Invalid | Kind::Conflict) => {
            let errors = if e.errors.is_empty() {
                vec![e.detail.clone()]
            } else {
                e.errors.iter().map(|f| f.message.clone()).collect()
            };
            home_page(&state, &signed, &ente, &ctx, errors, form).await
        }
        Err(e) => error_page(chrome(&state, &signed).await, &e),
    }
}

#[derive(Template)]
#[template(path = "backoffice/desk_desk.html")]
struct DeskPage {
    chrome: Chrome,
    desk: Desk,
    services: Vec<DeskService>,
    /// The clerk may issue (else: only the search and the day).
    writer: bool,
    /// The desk's POS terminal (its description), when it has one: the
    /// notices found can be chosen and sent to it.
    terminal: Option<String>,
    search: Searched,
    /// How many of the desk's POS payments wait for a person.
    flagged: usize,
}

/// The search of a person's notices, as the desk page shows it.
#[derive(Default)]
struct Searched {
    fiscal_code: String,
    error: Option<String>,
    /// `None`: no search made; else its results.
    found: Option<Vec<Found>>,
    /// Why the terminal was not sent the notices chosen.
    pos_error: Option<String>,
}

struct Found {
    debtor: String,
    service: String,
    which: String,
    notice_number: String,
    /// The checkbox's value: notice number and the amount shown, so that a
    /// notice whose amount changed meanwhile is refused, not charged.
    choice: String,
    /// Chosen for the terminal in the request that was refused.
    checked: bool,
    amount: String,
    due: String,
    state: &'static str,
    reprint: String,
}

/// `GET /backoffice/sportello/{desk}`: choose the service, or search.
async fn desk_page(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(code): Path<String>,
) -> Response {
    render_desk(&state, &signed, &code, Searched::default(), StatusCode::OK).await
}

/// The description of desk `desk`'s terminal, when it has an active one.
async fn terminal_label(
    ctx: &incasso_app::Ctx,
    ente: &str,
    desk: &str,
) -> Result<Option<String>, AppError> {
    Ok(desk::terminal(ctx, ente, desk).await?.map(|t| {
        if t.description.is_empty() {
            t.terminal_id
        } else {
            format!("{} ({})", t.description, t.terminal_id)
        }
    }))
}

async fn render_desk(
    state: &AppState,
    signed: &SignedIn,
    code: &str,
    search: Searched,
    status: StatusCode,
) -> Response {
    let (ente, ctx) = match begin(state, signed).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let d = match desk::get(&ctx, &ente, code).await {
        Ok(d) => d,
        Err(e) => return error_page(chrome(state, signed).await, &e),
    };
    let (services, writer) = match desk::services(&ctx, &ente).await {
        Ok(s) => (s, true),
        Err(e) if e.kind == Kind::Forbidden => (Vec::new(), false),
        Err(e) => return error_page(chrome(state, signed).await, &e),
    };
    let flagged = match incasso_app::pos::flagged_of_desk(&ctx, &ente, &d.code).await {
        Ok(f) => f.len(),
        Err(e) => return error_page(chrome(state, signed).await, &e),
    };
    let terminal = match terminal_label(&ctx, &ente, &d.code).await {
        Ok(t) => t.filter(|_| writer),
        Err(e) => return error_page(chrome(state, signed).await, &e),
    };
    page_with_status(
        &DeskPage {
            flagged,
            chrome: chrome(state, signed).await,
            desk: d,
            services,
            writer,
            terminal,
            search,
        },
        status,
    )
}

#[derive(Deserialize)]
struct SearchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    codice_fiscale: String,
}

/// The person's notices that can be paid now, as the desk lists them.
async fn found_notices(
    ctx: &incasso_app::Ctx,
    ente: &str,
    code: &str,
    fc: &str,
) -> Result<Vec<Found>, AppError> {
    Ok(desk::open_notices(ctx, ente, fc)
        .await?
        .into_iter()
        .map(|n| Found {
            reprint: format!("{}/ristampa/{}/avviso.pdf", desk_url(code), seg(&n.iupd)),
            choice: format!("{}:{}", n.notice_number, n.amount.0),
            checked: false,
            debtor: n.debtor_name,
            service: n.service,
            which: n.which,
            notice_number: n.notice_number,
            amount: euro(n.amount),
            due: incasso_core::time::to_rome(n.due)
                .format("%d/%m/%Y")
                .to_string(),
            state: incasso_app::positions::status_label(n.status),
        })
        .collect())
}

/// `POST /backoffice/sportello/{desk}/cerca`: a person's open notices.
async fn search(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(code): Path<String>,
    axum::Form(form): axum::Form<SearchForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let (ente, ctx) = match begin(&state, &signed).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Err(e) = desk::get(&ctx, &ente, &code).await {
        return error_page(chrome(&state, &signed).await, &e);
    }
    let fc = form.codice_fiscale.trim().to_uppercase();
    let (search, status) = match found_notices(&ctx, &ente, &code, &fc).await {
        Ok(found) => (
            Searched {
                fiscal_code: fc,
                found: Some(found),
                ..Default::default()
            },
            StatusCode::OK,
        ),
        Err(e) if e.kind == Kind::Invalid => (
            Searched {
                fiscal_code: fc,
                error: Some(e.detail),
                ..Default::default()
            },
            StatusCode::BAD_REQUEST,
        ),
        Err(e) => return error_page(chrome(&state, &signed).await, &e),
    };
    render_desk(&state, &signed, &code, search, status).await
}

/// `POST /backoffice/sportello/{desk}/terminale`: the notices chosen among
/// a person's (`avviso`, repeated) sent to the desk's terminal; its page
/// then follows the payment. Refused, the desk page again with the
/// person's notices, the choice kept and the reason by the button.
async fn push_chosen(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(code): Path<String>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Response {
    let mut csrf = String::new();
    let mut fc = String::new();
    let mut chosen: Vec<String> = Vec::new();
    for (k, v) in pairs.into_iter().take(50) {
        match k.as_str() {
            "csrf" => csrf = v,
            "codice_fiscale" => fc = v.trim().to_uppercase(),
            "avviso" => chosen.push(v),
            _ => {}
        }
    }
    if let Err(r) = signed.check_csrf(&csrf) {
        return r;
    }
    let (ente, ctx) = match begin(&state, &signed).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut items = Vec::with_capacity(chosen.len());
    let mut malformed = None;
    for c in &chosen {
        match c.split_once(':').map(|(n, a)| (n, a.parse::<i64>())) {
            Some((nav, Ok(cents))) => items.push((nav.to_string(), incasso_core::Cents(cents))),
            _ => malformed = Some(c.clone()),
        }
    }
    let pushed = match malformed {
        Some(c) => Err(AppError::invalid(
            "POS_NOTICE_INVALID",
            format!("scelta non valida: '{c}'"),
        )),
        None => desk::push_open_notices(&ctx, &ente, &code, &fc, &items).await,
    };
    let e = match pushed {
        Ok(s) => {
            return Redirect::to(&format!("{}/pos/{}", desk_url(&code), seg(&s.id)))
                .into_response();
        }
        Err(e)
            if matches!(
                e.kind,
                Kind::Invalid
                    | Kind::Conflict
                    | Kind::Unprocessable
                    | Kind::Unavailable
                    | Kind::NotFound
            ) =>
        {
            e
        }
        Err(e) => return error_page(chrome(&state, &signed).await, &e),
    };
    let status = match e.kind {
        Kind::Conflict => StatusCode::CONFLICT,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_REQUEST,
    };
    let found = found_notices(&ctx, &ente, &code, &fc)
        .await
        .ok()
        .map(|mut f| {
            for r in &mut f {
                r.checked = chosen.contains(&r.choice);
            }
            f
        });
    let search = Searched {
        fiscal_code: fc,
        error: None,
        found,
        pos_error: Some(e.detail),
    };
    render_desk(&state, &signed, &code, search, status).await
}

fn pdf(bytes: Vec<u8>, name: &str) -> Response {
    let mut resp = download(bytes, "application/pdf", name);
    // Shown in the browser, where it is printed at once.
    resp.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("inline; filename=\"{name}\""))
            .unwrap_or_else(|_| HeaderValue::from_static("inline")),
    );
    resp
}

/// `GET .../ristampa/{iupd}/avviso.pdf`: the notice of a position found.
async fn reprint(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((code, iupd)): Path<(String, String)>,
) -> Response {
    let (ente, ctx) = match begin(&state, &signed).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let result = match desk::get(&ctx, &ente, &code).await {
        Ok(_) => desk::reprint(&ctx, &ente, &iupd).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(bytes) => pdf(
            bytes,
            &format!("avviso-{}.pdf", incasso_app::notices::file_safe(&iupd)),
        ),
        Err(e) => error_page(chrome(&state, &signed).await, &e),
    }
}

// ---------------------------------------------------------------- the form

/// One input of the form, as the template draws it.
struct Input {
    name: String,
    id: String,
    label: String,
    help: String,
    value: String,
    error: Option<String>,
    required: bool,
    /// `text`, `email`, `date`, or `select` for a choice.
    input_type: &'static str,
    inputmode: &'static str,
    autocomplete: &'static str,
    maxlength: u32,
    choices: Vec<(String, bool)>,
    autofocus: bool,
}

impl Input {
    fn described_by(&self) -> String {
        let mut ids = Vec::new();
        if !self.help.is_empty() {
            ids.push(format!("{}-aiuto", self.id));
        }
        if self.error.is_some() {
            ids.push(format!("{}-errore", self.id));
        }
        ids.join(" ")
    }
}

struct AmountRow {
    index: usize,
    label: String,
    amount: String,
    checked: bool,
}

struct AmountView {
    mode: &'static str,
    fixed: String,
    rows: Vec<AmountRow>,
    value: String,
    help: String,
    error: Option<String>,
}

struct Problem {
    href: String,
    label: String,
    message: String,
}

#[derive(Template)]
#[template(path = "backoffice/desk_form.html")]
struct FormPage {
    chrome: Chrome,
    desk: Desk,
    code: String,
    service_name: String,
    token: String,
    debtor: Vec<Input>,
    fields: Vec<Input>,
    amount: AmountView,
    problems: Vec<Problem>,
    alert: Option<String>,
}

struct Line {
    label: String,
    value: String,
}

#[derive(Template)]
#[template(path = "backoffice/desk_summary.html")]
struct SummaryPage {
    chrome: Chrome,
    desk: Desk,
    code: String,
    service_name: String,
    token: String,
    lines: Vec<Line>,
    amount: String,
    hidden: Vec<(String, String)>,
    /// The desk's POS terminal, when it has one: the summary can be paid
    /// there at once.
    terminal: Option<String>,
    pos_error: Option<String>,
    /// The circuit gives the IUV (the choice kept when refused).
    circuit_iuv: bool,
}

fn kind_input(kind: FieldKind) -> (&'static str, &'static str) {
    match kind {
        FieldKind::Text | FieldKind::FiscalCode => ("text", "text"),
        FieldKind::Number => ("text", "decimal"),
        FieldKind::Date => ("date", "text"),
        FieldKind::Email => ("email", "email"),
        FieldKind::Choice => ("select", "text"),
    }
}

#[allow(clippy::too_many_arguments)]
fn debtor_input(
    name: &str,
    label: &str,
    help: &str,
    required: bool,
    input_type: &'static str,
    maxlength: u32,
    answers: &Answers,
    errors: &BTreeMap<String, String>,
) -> Input {
    Input {
        name: name.into(),
        id: format!("f-{name}"),
        label: label.into(),
        help: help.into(),
        value: answers.get(name).cloned().unwrap_or_default(),
        error: errors.get(name).cloned(),
        required,
        input_type,
        inputmode: if input_type == "email" {
            "email"
        } else {
            "text"
        },
        autocomplete: "off",
        maxlength,
        choices: Vec::new(),
        autofocus: false,
    }
}

fn form_page(
    chrome: Chrome,
    d: Desk,
    f: &ServiceForm,
    token: &str,
    answers: &Answers,
    errors: &BTreeMap<String, String>,
    alert: Option<String>,
) -> FormPage {
    let mut debtor = vec![
        debtor_input(
            form::DEBTOR_FISCAL_CODE,
            "Codice fiscale del debitore",
            "16 caratteri per una persona, 11 cifre per un'impresa o un ente",
            true,
            "text",
            16,
            answers,
            errors,
        ),
        debtor_input(
            form::DEBTOR_NAME,
            "Nome e cognome (o ragione sociale)",
            "",
            true,
            "text",
            70,
            answers,
            errors,
        ),
        debtor_input(
            form::EMAIL,
            "E-mail del debitore (facoltativa)",
            "Per inviargli l'avviso e, a pagamento fatto, la ricevuta.",
            false,
            "email",
            254,
            answers,
            errors,
        ),
    ];
    let fields: Vec<Input> = f
        .def
        .fields
        .iter()
        .map(|fd| {
            let (input_type, inputmode) = kind_input(fd.kind);
            let v = answers.get(&fd.name).cloned().unwrap_or_default();
            let help = match (fd.kind, fd.help.is_empty()) {
                (_, false) => fd.help.clone(),
                (FieldKind::Date, true) => "Formato gg/mm/aaaa".to_string(),
                _ => String::new(),
            };
            Input {
                id: format!("f-{}", fd.name),
                name: fd.name.clone(),
                label: fd.label.clone(),
                help,
                error: errors.get(&fd.name).cloned(),
                required: fd.required,
                input_type,
                inputmode,
                autocomplete: "off",
                maxlength: fd
                    .max_length
                    .unwrap_or(form::MAX_VALUE_LEN)
                    .min(form::MAX_VALUE_LEN),
                choices: fd
                    .choices
                    .iter()
                    .map(|o| (o.clone(), o.trim() == v.trim()))
                    .collect(),
                value: v,
                autofocus: false,
            }
        })
        .collect();
    let typed = answers.get(form::AMOUNT).cloned().unwrap_or_default();
    let amount = match &f.def.amount {
        Amount::Fixed(c) => AmountView {
            mode: "fixed",
            fixed: c.to_italian(),
            rows: Vec::new(),
            value: String::new(),
            help: String::new(),
            error: None,
        },
        Amount::Table(rows) => AmountView {
            mode: "table",
            fixed: String::new(),
            rows: rows
                .iter()
                .enumerate()
                .map(|(i, r)| AmountRow {
                    index: i,
                    label: r.label.clone(),
                    amount: r.cents.to_italian(),
                    // The first row is chosen unless another was: one key
                    // less for the usual case.
                    checked: typed.trim() == i.to_string() || (typed.is_empty() && i == 0),
                })
                .collect(),
            value: String::new(),
            help: String::new(),
            error: errors.get(form::AMOUNT).cloned(),
        },
        Amount::Range { min, max } => AmountView {
            mode: "range",
            fixed: String::new(),
            rows: Vec::new(),
            value: typed,
            help: format!(
                "Da {} € a {} € (esempio: 12,50)",
                min.to_italian(),
                max.to_italian()
            ),
            error: errors.get(form::AMOUNT).cloned(),
        },
    };
    let mut problems = Vec::new();
    for i in debtor.iter().chain(fields.iter()) {
        if let Some(m) = &i.error {
            problems.push(Problem {
                href: format!("#{}", i.id),
                label: i.label.clone(),
                message: m.clone(),
            });
        }
    }
    if let Some(m) = &amount.error {
        problems.push(Problem {
            href: if amount.mode == "table" {
                "#f-amount-0".into()
            } else {
                "#f-amount".into()
            },
            label: "Importo".into(),
            message: m.clone(),
        });
    }
    // The focus goes to the first field to fix, else to the first field;
    // with a list of problems at the top, to that list.
    if problems.is_empty() && alert.is_none() {
        debtor[0].autofocus = true;
    }
    FormPage {
        chrome,
        desk: d,
        code: f.service.code.clone(),
        service_name: f.service.name.clone(),
        token: token.to_string(),
        debtor,
        fields,
        amount,
        problems,
        alert,
    }
}

struct Posted {
    csrf: String,
    token: String,
    answers: Answers,
    /// At the terminal, the IUV given by pagoPA's POS circuit rather than
    /// the Ente's coordinator (`pos_iuv=circuito`).
    circuit_iuv: bool,
}

fn posted(pairs: Vec<(String, String)>) -> Posted {
    let mut p = Posted {
        csrf: String::new(),
        token: String::new(),
        answers: Answers::new(),
        circuit_iuv: false,
    };
    for (k, v) in pairs.into_iter().take(100) {
        match k.as_str() {
            "csrf" => p.csrf = v,
            "token" => p.token = v,
            "pos_iuv" => p.circuit_iuv = v == "circuito",
            _ if k.len() <= 40 && !p.answers.contains_key(&k) => {
                p.answers.insert(k, v.chars().take(1000).collect());
            }
            _ => {}
        }
    }
    p
}

fn errors_of(e: &AppError) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for f in &e.errors {
        out.entry(f.field.clone())
            .or_insert_with(|| f.message.clone());
    }
    out
}

/// The desk and the service's form, or the page that says why not.
async fn desk_and_form(
    state: &AppState,
    signed: &SignedIn,
    desk_code: &str,
    code: &str,
) -> Result<(String, incasso_app::Ctx, Desk, ServiceForm), Response> {
    let (ente, ctx) = begin(state, signed).await?;
    let d = match desk::get(&ctx, &ente, desk_code).await {
        Ok(d) => d,
        Err(e) => return Err(error_page(chrome(state, signed).await, &e)),
    };
    match desk::service_form(&ctx, &ente, code).await {
        Ok(f) => Ok((ente, ctx, d, f)),
        Err(e) => Err(error_page(chrome(state, signed).await, &e)),
    }
}

/// `GET .../servizi/{code}`: the empty form, with a new token.
async fn blank(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((desk_code, code)): Path<(String, String)>,
) -> Response {
    match desk_and_form(&state, &signed, &desk_code, &code).await {
        Ok((_, _, d, f)) => page(&form_page(
            chrome(&state, &signed).await,
            d,
            &f,
            &new_token(),
            &Answers::new(),
            &BTreeMap::new(),
            None,
        )),
        Err(r) => r,
    }
}

async fn rejected(
    state: &AppState,
    signed: &SignedIn,
    d: Desk,
    f: &ServiceForm,
    p: &Posted,
    e: &AppError,
) -> Response {
    let token = if well_formed_token(&p.token) {
        p.token.clone()
    } else {
        new_token()
    };
    let alert = e.errors.is_empty().then(|| e.detail.clone());
    page_with_status(
        &form_page(
            chrome(state, signed).await,
            d,
            f,
            &token,
            &p.answers,
            &errors_of(e),
            alert,
        ),
        StatusCode::BAD_REQUEST,
    )
}

fn summary_lines(f: &ServiceForm, a: &Accepted) -> Vec<Line> {
    let mut lines = vec![
        Line {
            label: "Debitore".into(),
            value: a.debtor_name.clone(),
        },
        Line {
            label: "Codice fiscale".into(),
            value: a.debtor_fiscal_code.clone(),
        },
    ];
    if let Some(e) = &a.email {
        lines.push(Line {
            label: "E-mail".into(),
            value: e.clone(),
        });
    }
    lines.push(Line {
        label: "Causale".into(),
        value: a.causale.clone(),
    });
    for (name, value) in &a.values {
        if let Some(d) = f.def.field(name) {
            lines.push(Line {
                label: d.label.clone(),
                value: value.clone(),
            });
        }
    }
    lines
}

/// `POST .../servizi/{code}`: the answers checked: the summary, or the
/// form again with its errors (400).
async fn review(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((desk_code, code)): Path<(String, String)>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Response {
    let p = posted(pairs);
    if let Err(r) = signed.check_csrf(&p.csrf) {
        return r;
    }
    let (ente, ctx, d, f) = match desk_and_form(&state, &signed, &desk_code, &code).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !well_formed_token(&p.token) {
        let e = AppError::invalid(
            "BAD_TOKEN",
            "Il modulo non è valido o è scaduto: compilarlo di nuovo.",
        );
        return rejected(&state, &signed, d, &f, &p, &e).await;
    }
    match desk::check(&ctx, &ente, &code, &p.answers).await {
        Ok((f, a)) => summary_page(&state, &signed, &ctx, &ente, d, &f, &a, &p, None).await,
        Err(e) if e.kind == Kind::Invalid => rejected(&state, &signed, d, &f, &p, &e).await,
        Err(e) => error_page(chrome(&state, &signed).await, &e),
    }
}

/// The summary of what would be issued, with the buttons that issue it or
/// pay it at once at the desk's terminal (`pos_error`: why the terminal
/// was not sent it).
#[allow(clippy::too_many_arguments)]
async fn summary_page(
    state: &AppState,
    signed: &SignedIn,
    ctx: &incasso_app::Ctx,
    ente: &str,
    d: Desk,
    f: &ServiceForm,
    a: &Accepted,
    p: &Posted,
    pos_error: Option<AppError>,
) -> Response {
    let amount = match &a.amount_label {
        Some(l) => format!("{} € ({l})", a.amount.to_italian()),
        None => format!("{} €", a.amount.to_italian()),
    };
    let terminal = match terminal_label(ctx, ente, &d.code).await {
        Ok(t) => t,
        Err(e) => return error_page(chrome(state, signed).await, &e),
    };
    let status = match pos_error.as_ref().map(|e| e.kind) {
        None => StatusCode::OK,
        Some(Kind::Conflict) => StatusCode::CONFLICT,
        Some(Kind::Unavailable) => StatusCode::SERVICE_UNAVAILABLE,
        Some(Kind::Invalid) => StatusCode::BAD_REQUEST,
        Some(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    page_with_status(
        &SummaryPage {
            chrome: chrome(state, signed).await,
            desk: d,
            code: f.service.code.clone(),
            service_name: f.service.name.clone(),
            token: p.token.clone(),
            lines: summary_lines(f, a),
            amount,
            hidden: p
                .answers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            terminal,
            pos_error: pos_error.map(|e| e.detail),
            circuit_iuv: p.circuit_iuv,
        },
        status,
    )
}

/// `POST .../servizi/{code}/terminale`: paid at once on the desk's
/// terminal, the position created by pagoPA's POS circuit (303 to the
/// page that follows the payment); pressing again answers the same
/// payment. Refused by the terminal or the circuit, the summary again
/// with the reason.
async fn create_at_terminal(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((desk_code, code)): Path<(String, String)>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Response {
    let p = posted(pairs);
    if let Err(r) = signed.check_csrf(&p.csrf) {
        return r;
    }
    let (ente, ctx, d, f) = match desk_and_form(&state, &signed, &desk_code, &code).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let iuv = if p.circuit_iuv {
        desk::CreatedIuv::Circuit
    } else {
        desk::CreatedIuv::Ente
    };
    match desk::create_at_terminal(&ctx, &ente, &d.code, &code, &p.token, &p.answers, iuv).await {
        Ok(s) => Redirect::to(&format!("{}/pos/{}", desk_url(&d.code), seg(&s.id))).into_response(),
        Err(e) if e.kind == Kind::Invalid && !e.code.starts_with("POS_") => {
            rejected(&state, &signed, d, &f, &p, &e).await
        }
        Err(e)
            if matches!(
                e.kind,
                Kind::Invalid | Kind::Conflict | Kind::Unprocessable | Kind::Unavailable
            ) =>
        {
            match desk::check(&ctx, &ente, &code, &p.answers).await {
                Ok((f, a)) => {
                    summary_page(&state, &signed, &ctx, &ente, d, &f, &a, &p, Some(e)).await
                }
                Err(e) => rejected(&state, &signed, d, &f, &p, &e).await,
            }
        }
        Err(e) => error_page(chrome(&state, &signed).await, &e),
    }
}

/// `POST .../servizi/{code}/modifica`: back to the form, answers kept.
async fn amend(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((desk_code, code)): Path<(String, String)>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Response {
    let p = posted(pairs);
    if let Err(r) = signed.check_csrf(&p.csrf) {
        return r;
    }
    match desk_and_form(&state, &signed, &desk_code, &code).await {
        Ok((_, _, d, f)) => {
            let token = if well_formed_token(&p.token) {
                p.token.clone()
            } else {
                new_token()
            };
            page(&form_page(
                chrome(&state, &signed).await,
                d,
                &f,
                &token,
                &p.answers,
                &BTreeMap::new(),
                None,
            ))
        }
        Err(r) => r,
    }
}

/// `POST .../servizi/{code}/emetti`: issued (303 to its page); issuing
/// twice goes to the same position.
async fn issue(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((desk_code, code)): Path<(String, String)>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Response {
    let p = posted(pairs);
    if let Err(r) = signed.check_csrf(&p.csrf) {
        return r;
    }
    let (ente, ctx) = match begin(&state, &signed).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match desk::issue(&ctx, &ente, &desk_code, &code, &p.token, &p.answers).await {
        Ok(i) => Redirect::to(&issued_url(&i.desk.code, &i.iupd)).into_response(),
        Err(e) if e.kind == Kind::Invalid => {
            match desk_and_form(&state, &signed, &desk_code, &code).await {
                Ok((_, _, d, f)) => rejected(&state, &signed, d, &f, &p, &e).await,
                Err(r) => r,
            }
        }
        Err(e) => error_page(chrome(&state, &signed).await, &e),
    }
}

// ---------------------------------------------------------------- issued

#[derive(Template)]
#[template(path = "backoffice/desk_issued.html")]
struct IssuedPage {
    chrome: Chrome,
    i: Issued,
    notice_groups: String,
    amount: String,
    due: String,
    issued_at: String,
    quotas: Vec<(String, String)>,
    notice_url: String,
    copy_url: String,
    email_url: String,
    /// What the last action did (`?esito=`).
    outcome: Option<&'static str>,
    email: String,
    email_error: Option<String>,
    /// The desk's POS terminal (its description), when it has one.
    terminal: Option<String>,
    pos_url: String,
    /// The terminal's session of this notice, newest.
    session: Option<SessionView>,
    /// The page reloads itself while the session goes on.
    auto_refresh: bool,
    /// The notice can go to the terminal: payable, no session open.
    can_push: bool,
    no_refresh_url: String,
    /// The notice by App IO (through the notification outbox): the form's
    /// action, the position's messages, and a refusal to show by the button.
    io_url: String,
    io_messages: Vec<super::notifications::MessageView>,
    io_error: Option<String>,
}

/// A POS session as the issued page shows it.
struct SessionView {
    state: &'static str,
    open: bool,
    paid: bool,
    total: String,
    card: Option<String>,
    error: Option<String>,
    anomaly: Option<&'static str>,
}

impl SessionView {
    fn of(s: &incasso_app::pos::PosSessionView) -> SessionView {
        SessionView {
            state: s.state.label(),
            open: !s.state.is_final(),
            paid: s.state == incasso_app::pos::PosSessionState::Paid,
            total: euro(s.total),
            card: s.card.clone().map(|c| {
                format!(
                    "{} che termina con {}",
                    c.brand.unwrap_or_else(|| "Carta".into()),
                    c.last_four.unwrap_or_else(|| "····".into())
                )
            }),
            error: s.error.clone(),
            anomaly: s.anomaly.as_ref().map(|a| a.label()),
        }
    }
}

#[derive(Template)]
#[template(path = "backoffice/desk_session.html")]
struct SessionPage {
    chrome: Chrome,
    desk: Desk,
    terminal_id: String,
    s: SessionView,
    /// Each notice: its number in groups of four, its amount, and whether
    /// its receipt has come.
    notices: Vec<(String, String, bool)>,
    auto_refresh: bool,
    no_refresh_url: String,
}

/// `GET .../pos/{session}`: a payment at the desk's terminal, followed
/// (the page reloads itself while the terminal works).
async fn session_page(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((desk_code, session)): Path<(String, String)>,
    Query(q): Query<OutcomeQuery>,
) -> Response {
    let (ente, ctx) = match begin(&state, &signed).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (d, s) = match desk::get(&ctx, &ente, &desk_code).await {
        Ok(d) => match desk::desk_session(&ctx, &ente, &d.code, &session).await {
            Ok(s) => (d, s),
            Err(e) => return error_page(chrome(&state, &signed).await, &e),
        },
        Err(e) => return error_page(chrome(&state, &signed).await, &e),
    };
    let view = SessionView::of(&s);
    let auto_refresh = q.auto != "0" && view.open;
    let notices = s
        .notices
        .iter()
        .map(|(nav, amount)| {
            let paid = s.receipts.iter().any(|(n, _)| n == nav);
            let shown = if nav.len() == 18 {
                groups_of_four(nav)
            } else {
                "assegnato dal circuito".to_string()
            };
            (shown, euro(*amount), paid)
        })
        .collect();
    let mut resp = page(&SessionPage {
        chrome: chrome(&state, &signed).await,
        no_refresh_url: format!("{}/pos/{}?auto=0", desk_url(&d.code), seg(&s.id)),
        terminal_id: s.terminal_id.clone(),
        desk: d,
        s: view,
        notices,
        auto_refresh,
    });
    if auto_refresh {
        resp.headers_mut()
            .insert("refresh", HeaderValue::from_static(REFRESH_SECS));
    }
    resp
}

/// Seconds between two reloads of the issued page while the terminal
/// works (the HTML standard's Refresh, no script).
const REFRESH_SECS: &str = "3";

#[derive(Deserialize)]
struct OutcomeQuery {
    #[serde(default)]
    esito: String,
    #[serde(default)]
    auto: String,
}

#[allow(clippy::too_many_arguments)]
async fn issued_page(
    state: &AppState,
    signed: &SignedIn,
    desk_code: &str,
    iupd: &str,
    outcome: Option<&'static str>,
    email_error: Option<(String, String)>,
    pos_error: Option<String>,
    refresh: bool,
    io_error: Option<String>,
) -> Response {
    let (ente, ctx) = match begin(state, signed).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let i = match desk::issued(&ctx, &ente, iupd).await {
        Ok(i) if i.desk.code == desk_code => i,
        Ok(_) => {
            return error_page(
                chrome(state, signed).await,
                &AppError::new(
                    Kind::NotFound,
                    "NOT_FOUND",
                    "posizione non trovata tra quelle emesse a questo sportello",
                ),
            );
        }
        Err(e) => return error_page(chrome(state, signed).await, &e),
    };
    let base = issued_url(&i.desk.code, &i.iupd);
    let (email, email_error, mut status) = match email_error {
        Some((typed, message)) => (typed, Some(message), StatusCode::BAD_REQUEST),
        None => (i.email.clone().unwrap_or_default(), None, StatusCode::OK),
    };
    let terminal = match desk::terminal(&ctx, &ente, &i.desk.code).await {
        Ok(t) => t.map(|t| {
            if t.description.is_empty() {
                t.terminal_id
            } else {
                format!("{} ({})", t.description, t.terminal_id)
            }
        }),
        Err(e) => return error_page(chrome(state, signed).await, &e),
    };
    let session = match desk::terminal_session(&ctx, &ente, &i.desk.code, &i.notice_number).await {
        Ok(s) => s.map(|s| {
            let mut v = SessionView::of(&s);
            v.error = pos_error.clone().or(v.error);
            v
        }),
        Err(e) => return error_page(chrome(state, signed).await, &e),
    };
    let session = match (session, pos_error) {
        (None, Some(message)) => {
            status = StatusCode::CONFLICT;
            Some(SessionView {
                state: "Non inviato al terminale",
                open: false,
                paid: false,
                total: euro(i.amount),
                card: None,
                error: Some(message),
                anomaly: None,
            })
        }
        (s, _) => s,
    };
    let auto_refresh = refresh && session.as_ref().is_some_and(|s| s.open);
    let can_push = i.payable && !session.as_ref().is_some_and(|s| s.open || s.paid);
    let mut resp = page_with_status(
        &IssuedPage {
            chrome: chrome(state, signed).await,
            notice_groups: groups_of_four(&i.notice_number),
            amount: euro(i.amount),
            due: incasso_core::time::to_rome(i.due)
                .format("%d/%m/%Y")
                .to_string(),
            issued_at: rome(i.issued_at),
            quotas: i
                .quotas
                .iter()
                .map(|q| {
                    let which = if q.description.is_empty() {
                        q.accertamento.clone()
                    } else {
                        format!("{} - {}", q.accertamento, q.description)
                    };
                    (which, euro(q.amount))
                })
                .collect(),
            notice_url: format!("{base}/avviso.pdf"),
            copy_url: format!("{base}/avviso-pa.pdf"),
            email_url: format!("{base}/email"),
            pos_url: format!("{base}/pos"),
            no_refresh_url: format!("{base}?auto=0"),
            io_url: format!("{base}/io"),
            io_messages: incasso_app::notify::backoffice::of_position(&ctx, &ente, &i.iupd)
                .await
                .map(|l| l.iter().map(Into::into).collect())
                .unwrap_or_default(),
            io_error,
            outcome,
            email,
            email_error,
            terminal,
            session,
            auto_refresh,
            can_push,
            i,
        },
        status,
    );
    if auto_refresh {
        // While the terminal works the page follows it by reloading
        // itself, as the supply's page does; a link turns it off.
        resp.headers_mut()
            .insert("refresh", HeaderValue::from_static(REFRESH_SECS));
    }
    resp
}

/// `GET .../emesse/{iupd}`: what was issued, and what to do with it.
async fn issued(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((desk_code, iupd)): Path<(String, String)>,
    Query(q): Query<OutcomeQuery>,
) -> Response {
    let outcome = match q.esito.as_str() {
        "email" => Some("L'avviso è in partenza per e-mail."),
        "email-gia" => {
            Some("L'avviso era già stato inviato a questo indirizzo: non è stato inviato di nuovo.")
        }
        "pos" => Some("Avviso inviato al terminale POS: il cittadino può pagare con la carta."),
        "io" => Some(
            "Avviso in partenza con App IO (o per e-mail, se il cittadino non usa IO): l'esito è qui sotto.",
        ),
        "io-gia" => {
            Some("L'avviso era già stato inviato con App IO: non è stato inviato di nuovo.")
        }
        _ => None,
    };
    issued_page(
        &state,
        &signed,
        &desk_code,
        &iupd,
        outcome,
        None,
        None,
        q.auto != "0",
        None,
    )
    .await
}

/// `GET .../emesse/{iupd}/avviso.pdf`: the notice, to print.
async fn notice_pdf(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((_desk, iupd)): Path<(String, String)>,
) -> Response {
    let (ente, ctx) = match begin(&state, &signed).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match desk::notice_pdf(&ctx, &ente, &iupd).await {
        Ok(b) => pdf(
            b,
            &format!("avviso-{}.pdf", incasso_app::notices::file_safe(&iupd)),
        ),
        Err(e) => error_page(chrome(&state, &signed).await, &e),
    }
}

/// `GET .../emesse/{iupd}/avviso-pa.pdf`: the Ente's copy, to print.
async fn avviso_pa(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((_desk, iupd)): Path<(String, String)>,
) -> Response {
    let (ente, ctx) = match begin(&state, &signed).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match desk::avviso_pa(&ctx, &ente, &iupd).await {
        Ok(b) => pdf(
            b,
            &format!("avviso-pa-{}.pdf", incasso_app::notices::file_safe(&iupd)),
        ),
        Err(e) => error_page(chrome(&state, &signed).await, &e),
    }
}

#[derive(Deserialize)]
struct EmailForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

/// `POST .../emesse/{iupd}/email`: the notice by e-mail (once per
/// address, however many times the button is pressed).
async fn email(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((desk_code, iupd)): Path<(String, String)>,
    axum::Form(form): axum::Form<EmailForm>,
) -> Response {
    let action = IssuedAction::Email(form.email);
    act_on_issued(&state, &signed, &desk_code, &iupd, &form.csrf, action).await
}

#[derive(Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: String,
}

/// `POST .../emesse/{iupd}/pos`: the notice sent to the desk's terminal;
/// the issued page then follows the session.
async fn push(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((desk_code, iupd)): Path<(String, String)>,
    axum::Form(form): axum::Form<ActionForm>,
) -> Response {
    let action = IssuedAction::Push;
    act_on_issued(&state, &signed, &desk_code, &iupd, &form.csrf, action).await
}

/// What a button of the issued page asks for.
enum IssuedAction {
    /// The notice mailed to this address.
    Email(String),
    /// The notice sent to the desk's terminal.
    Push,
    /// The notice sent by App IO, through the notification outbox.
    Io,
}

/// `POST .../emesse/{iupd}/io`: the notice sent with App IO (or by e-mail
/// when the citizen is not on IO), once per position.
async fn send_io(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((desk_code, iupd)): Path<(String, String)>,
    axum::Form(form): axum::Form<ActionForm>,
) -> Response {
    act_on_issued(
        &state,
        &signed,
        &desk_code,
        &iupd,
        &form.csrf,
        IssuedAction::Io,
    )
    .await
}

/// An action of the issued page: done, it answers with the page and the
/// outcome (`?esito=`); refused for a reason the clerk can act on (a
/// wrong address; the terminal busy, a notice held, the gateway down), the
/// page again with the refusal where the button was; else the error page.
async fn act_on_issued(
    state: &AppState,
    signed: &SignedIn,
    desk_code: &str,
    iupd: &str,
    csrf: &str,
    action: IssuedAction,
) -> Response {
    if let Err(r) = signed.check_csrf(csrf) {
        return r;
    }
    let (ente, ctx) = match begin(state, signed).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let done =
        match &action {
            IssuedAction::Email(address) => desk::email_notice(&ctx, &ente, iupd, address)
                .await
                .map(|m| match m {
                    Mailed::Queued => "email",
                    Mailed::AlreadyQueued => "email-gia",
                }),
            IssuedAction::Push => desk::push_to_terminal(&ctx, &ente, desk_code, iupd)
                .await
                .map(|_| "pos"),
            IssuedAction::Io => incasso_app::notify::backoffice::send_issued(&ctx, &ente, iupd)
                .await
                .map(|s| if s.first { "io" } else { "io-gia" }),
        };
    let e = match done {
        Ok(esito) => {
            return Redirect::to(&format!("{}?esito={esito}", issued_url(desk_code, iupd)))
                .into_response();
        }
        Err(e) => e,
    };
    let mut io_error = None;
    let (email_error, pos_error) = match action {
        IssuedAction::Email(address) if e.kind == Kind::Invalid => {
            (Some((address, e.detail.clone())), None)
        }
        IssuedAction::Push
            if matches!(
                e.kind,
                Kind::Conflict | Kind::Unprocessable | Kind::Unavailable
            ) =>
        {
            (None, Some(e.detail.clone()))
        }
        IssuedAction::Io if matches!(e.kind, Kind::Conflict | Kind::Unprocessable) => {
            io_error = Some(e.detail.clone());
            (None, None)
        }
        _ => return error_page(chrome(state, signed).await, &e),
    };
    issued_page(
        state,
        signed,
        desk_code,
        iupd,
        None,
        email_error,
        pos_error,
        false,
        io_error,
    )
    .await
}

// ---------------------------------------------------------------- the day

#[derive(Template)]
#[template(path = "backoffice/desk_day.html")]
struct DayPage {
    chrome: Chrome,
    desk: Desk,
    r: DayReport,
    day_text: String,
    day_value: String,
    today: bool,
    closed: Option<(String, String)>,
    issued: Vec<[String; 6]>,
    collected: Vec<[String; 4]>,
    issued_total: String,
    collected_total: String,
    pos_total: String,
    csv_url: String,
    xlsx_url: String,
    writer: bool,
    outcome: Option<&'static str>,
    /// The desk's POS sessions flagged for a person, of whatever day.
    flagged: Vec<Flagged>,
    /// May release them (the Ente's administrators).
    releaser: bool,
}

/// A POS session flagged for a person, as the desk's day shows it.
struct Flagged {
    id: String,
    started: String,
    terminal: String,
    notices: String,
    total: String,
    anomaly: &'static str,
    /// The receipt may still come (the card was authorized).
    authorized: bool,
}

impl From<incasso_app::pos::PosSessionView> for Flagged {
    fn from(s: incasso_app::pos::PosSessionView) -> Self {
        Flagged {
            started: rome(s.created_at),
            terminal: s.terminal_id.clone(),
            notices: s
                .notices
                .iter()
                .map(|(n, _)| groups_of_four(n))
                .collect::<Vec<_>>()
                .join(", "),
            total: euro(s.total),
            anomaly: s.anomaly.as_ref().map_or("Da verificare", |a| a.label()),
            authorized: s.state == incasso_app::pos::PosSessionState::Authorized,
            id: s.id,
        }
    }
}

#[derive(Deserialize)]
struct DayQuery {
    #[serde(default)]
    giorno: String,
    #[serde(default)]
    formato: String,
    #[serde(default)]
    esito: String,
}

fn parse_day(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%d/%m/%Y"))
        .ok()
}

/// `GET .../giornata?giorno=AAAA-MM-GG[&formato=csv|xlsx]`: the day's
/// report (today's by default), or its export.
async fn day(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(desk_code): Path<String>,
    Query(q): Query<DayQuery>,
) -> Response {
    let (ente, ctx) = match begin(&state, &signed).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let today = desk::today(&ctx);
    let the_day = if q.giorno.trim().is_empty() {
        today
    } else {
        match parse_day(&q.giorno) {
            Some(d) => d,
            None => {
                return error_page(
                    chrome(&state, &signed).await,
                    &AppError::invalid("BAD_DATE", "giorno: una data come 31/12/2026"),
                );
            }
        }
    };
    let d = match desk::get(&ctx, &ente, &desk_code).await {
        Ok(d) => d,
        Err(e) => return error_page(chrome(&state, &signed).await, &e),
    };
    let r = match desk::day(&ctx, &ente, &d.code, the_day).await {
        Ok(r) => r,
        Err(e) => return error_page(chrome(&state, &signed).await, &e),
    };
    let flagged = match incasso_app::pos::flagged_of_desk(&ctx, &ente, &d.code).await {
        Ok(f) => f.into_iter().map(Flagged::from).collect(),
        Err(e) => return error_page(chrome(&state, &signed).await, &e),
    };
    let name = format!("sportello-{}-{}", d.code, the_day);
    match q.formato.as_str() {
        "csv" => return export(&desk::day_sheet(&r), super::ui::Export::Csv, &name),
        "xlsx" => return export(&desk::day_sheet(&r), super::ui::Export::Xlsx, &name),
        _ => {}
    }
    let writer = signed.operator.rights.may(
        &ente,
        incasso_core::access::Area::Positions,
        incasso_core::access::Access::Write,
    );
    let base = format!("{}/giornata?giorno={}", desk_url(&d.code), the_day);
    page(&DayPage {
        chrome: chrome(&state, &signed).await,
        day_text: the_day.format("%d/%m/%Y").to_string(),
        day_value: the_day.to_string(),
        today: the_day == today,
        closed: r.closed.as_ref().map(|c| (c.by.clone(), rome(c.at))),
        issued: r
            .issued
            .iter()
            .map(|l| {
                [
                    incasso_core::time::to_rome(l.at)
                        .format("%H:%M")
                        .to_string(),
                    l.operator.clone(),
                    groups_of_four(&l.notice_number),
                    format!("{} ({})", l.debtor_name, l.service_code),
                    euro(l.amount),
                    l.state.clone(),
                ]
            })
            .collect(),
        collected: r
            .collected
            .iter()
            .map(|l| {
                [
                    incasso_core::time::to_rome(l.at)
                        .format("%H:%M")
                        .to_string(),
                    groups_of_four(&l.notice_number),
                    l.channel.clone(),
                    euro(l.amount),
                ]
            })
            .collect(),
        issued_total: euro(r.issued_total),
        collected_total: euro(r.collected_total),
        pos_total: euro(r.pos_total),
        csv_url: format!("{base}&formato=csv"),
        xlsx_url: format!("{base}&formato=xlsx"),
        writer: writer && r.closed.is_none() && the_day <= today,
        outcome: match q.esito.as_str() {
            "chiusa" => Some("Giornata chiusa: il riepilogo non cambia più."),
            "rilasciata" => {
                Some("Avvisi liberati: si possono inviare di nuovo al terminale o pagare altrove.")
            }
            _ => None,
        },
        flagged,
        releaser: ctx.caller.require_ente(&ente).is_ok(),
        desk: d,
        r,
    })
}

#[derive(Deserialize)]
struct CloseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    giorno: String,
}

/// `POST .../giornata/chiudi`: the day closed (again: nothing changes).
async fn close(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(desk_code): Path<String>,
    axum::Form(form): axum::Form<CloseForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let (ente, ctx) = match begin(&state, &signed).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(the_day) = parse_day(&form.giorno) else {
        return error_page(
            chrome(&state, &signed).await,
            &AppError::invalid("BAD_DATE", "giorno: una data come 31/12/2026"),
        );
    };
    match desk::close_day(&ctx, &ente, &desk_code, the_day).await {
        Ok(r) => Redirect::to(&format!(
            "{}/giornata?giorno={}&esito=chiusa",
            desk_url(&r.desk),
            the_day
        ))
        .into_response(),
        Err(e) => error_page(chrome(&state, &signed).await, &e),
    }
}

// ---------------------------------------------------------------- POS anomalies

#[derive(Template)]
#[template(path = "backoffice/desk_release.html")]
struct ReleasePage {
    chrome: Chrome,
    desk: Desk,
    s: Flagged,
}

/// The desk's session `session`, if it is one flagged for a person; else
/// the page that says why not.
async fn flagged_session(
    state: &AppState,
    signed: &SignedIn,
    desk_code: &str,
    session: &str,
) -> Result<(String, incasso_app::Ctx, Desk, Flagged), Response> {
    let (ente, ctx) = begin(state, signed).await?;
    let d = match desk::get(&ctx, &ente, desk_code).await {
        Ok(d) => d,
        Err(e) => return Err(error_page(chrome(state, signed).await, &e)),
    };
    let flagged = match incasso_app::pos::flagged_of_desk(&ctx, &ente, &d.code).await {
        Ok(f) => f.into_iter().find(|s| s.id == session),
        Err(e) => return Err(error_page(chrome(state, signed).await, &e)),
    };
    match flagged {
        Some(s) => Ok((ente, ctx, d, s.into())),
        None => Err(error_page(
            chrome(state, signed).await,
            &AppError::new(
                Kind::NotFound,
                "POS_NOT_RELEASABLE",
                "nessun pagamento POS da verificare con questo identificativo a questo sportello",
            ),
        )),
    }
}

/// `GET .../pos/{session}/rilascia`: what releasing means, and the button.
async fn confirm_release(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((desk_code, session)): Path<(String, String)>,
) -> Response {
    match flagged_session(&state, &signed, &desk_code, &session).await {
        Ok((_, _, desk, s)) => page(&ReleasePage {
            chrome: chrome(&state, &signed).await,
            desk,
            s,
        }),
        Err(r) => r,
    }
}

/// `POST .../pos/{session}/rilascia`: the session's notices let go (the
/// Ente's administrator, after checking with the PSP).
async fn release(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((desk_code, session)): Path<(String, String)>,
    axum::Form(form): axum::Form<ActionForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let (ente, ctx, d, s) = match flagged_session(&state, &signed, &desk_code, &session).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match incasso_app::pos::release(&ctx, &ente, &s.id).await {
        Ok(_) => Redirect::to(&format!("{}/giornata?esito=rilasciata", desk_url(&d.code)))
            .into_response(),
        Err(e) => error_page(chrome(&state, &signed).await, &e),
    }
}
