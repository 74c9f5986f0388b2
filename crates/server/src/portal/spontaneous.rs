//! Paying a service on the citizen's initiative (*pagamento spontaneo*):
//! the Ente's spontaneous services ('Paga un servizio'), the service's
//! form (step 1 Dati), the summary (step 2 Riepilogo, whose 'Modifica'
//! goes back with the answers kept), and the confirmation, which makes the
//! position and sends the citizen to pagoPA Checkout (303); Checkout sends
//! them back to the cart's outcome page (steps 3 and 4).
//!
//! Answers travel only in POST bodies (they hold the payer's fiscal code
//! and name), never in a URL. The form's one-time token travels with them:
//! confirming twice makes one position.

use super::limit::Bucket;
use super::pay::CHECKOUT_FORM_CSP;
use super::ui::{Portal, PortalChrome, Steps};
use super::{error_page, message_page, page, page_with_status};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use incasso_app::portal::spontaneous::{self as sp, Offered, ServiceForm};
use incasso_app::{AppError, Kind};
use incasso_core::form::{self, Accepted, Amount, Answers, FieldKind};
use std::collections::BTreeMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/portale/{fc}/servizi", get(list))
        .route("/portale/{fc}/servizi/{code}", get(blank).post(review))
        .route("/portale/{fc}/servizi/{code}/modifica", post(amend))
        .route("/portale/{fc}/servizi/{code}/conferma", post(confirm))
}

fn title(c: &PortalChrome) -> &str {
    c.t("Paga un servizio", "Dienst bezahlen", "Pay for a service")
}

fn crumbs(c: &PortalChrome, service: &str) -> PortalChrome {
    let list = format!("/portale/{}/servizi", c.ente);
    c.clone().crumbs(&[(title(c), &list), (service, "")])
}

/// 1 Dati, 2 Riepilogo, 3 Pagamento (on Checkout), 4 Esito. From the
/// summary, step 1 is the 'Modifica' button (a POST that keeps the
/// answers), reached by its anchor.
fn steps(c: &PortalChrome, current: usize) -> Steps {
    Steps::new(
        &[
            c.t("Dati", "Angaben", "Details"),
            c.t("Riepilogo", "Zusammenfassung", "Summary"),
            c.t("Pagamento", "Zahlung", "Payment"),
            c.t("Esito", "Ergebnis", "Outcome"),
        ],
        current,
        &[Some("#modifica".to_string())],
    )
}

#[derive(Template)]
#[template(path = "portal/spontaneous_list.html")]
struct ListPage {
    chrome: PortalChrome,
    services: Vec<Offered>,
}

/// `GET /portale/{fc}/servizi`
async fn list(State(state): State<AppState>, portal: Portal) -> Response {
    let ctx = portal.ctx(&state);
    let c = &portal.chrome;
    match sp::list(&ctx, &portal.ente).await {
        Ok(services) => page(&ListPage {
            chrome: c.clone().crumbs(&[(title(c), "")]),
            services,
        }),
        Err(e) => error_page(c, &e),
    }
}

/// One input of the form, as the template draws it.
struct Input {
    /// The posted name (the field's).
    name: String,
    /// The element's id (`f-{name}`).
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
    /// A choice's options: (value, selected).
    choices: Vec<(String, bool)>,
    /// Shown, not editable (the signed-in citizen's own data).
    readonly: bool,
}

impl Input {
    /// `aria-describedby`: the help, then the error.
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

/// A row of the amount table.
struct AmountRow {
    index: usize,
    label: String,
    amount: String,
    checked: bool,
}

/// The amount as the form asks it.
struct AmountView {
    /// `fixed`, `table` or `range`.
    mode: &'static str,
    fixed: String,
    rows: Vec<AmountRow>,
    value: String,
    help: String,
    error: Option<String>,
}

/// An error listed at the top, linked to its field.
struct Problem {
    href: String,
    label: String,
    message: String,
}

#[derive(Template)]
#[template(path = "portal/spontaneous_form.html")]
struct FormPage {
    chrome: PortalChrome,
    steps: Steps,
    code: String,
    service_name: String,
    token: String,
    fields: Vec<Input>,
    debtor: Vec<Input>,
    amount: AmountView,
    problems: Vec<Problem>,
    /// The use case's refusal that is no field's (a used token...).
    alert: Option<String>,
}

/// A line of the summary.
struct Line {
    label: String,
    value: String,
}

#[derive(Template)]
#[template(path = "portal/spontaneous_summary.html")]
struct SummaryPage {
    chrome: PortalChrome,
    steps: Steps,
    code: String,
    service_name: String,
    token: String,
    lines: Vec<Line>,
    payer: Vec<Line>,
    amount: String,
    causale: String,
    /// The answers as posted, carried by both buttons' forms.
    hidden: Vec<(String, String)>,
}

fn kind_input(kind: FieldKind) -> (&'static str, &'static str, &'static str) {
    // (type, inputmode, autocomplete)
    match kind {
        FieldKind::Text => ("text", "text", "off"),
        FieldKind::Number => ("text", "decimal", "off"),
        FieldKind::Date => ("date", "text", "off"),
        FieldKind::Email => ("email", "email", "email"),
        FieldKind::FiscalCode => ("text", "text", "off"),
        FieldKind::Choice => ("select", "text", "off"),
    }
}

/// The form drawn with `answers` and `errors` (field name => message).
fn form_page(
    portal: &Portal,
    f: &ServiceForm,
    token: &str,
    answers: &Answers,
    errors: &BTreeMap<String, String>,
    alert: Option<String>,
) -> FormPage {
    let c = &portal.chrome;
    let value = |n: &str| answers.get(n).cloned().unwrap_or_default();
    let fields: Vec<Input> = f
        .def
        .fields
        .iter()
        .map(|d| {
            let (input_type, inputmode, autocomplete) = kind_input(d.kind);
            let v = value(&d.name);
            let help = match (d.kind, d.help.is_empty()) {
                (_, false) => d.help.clone(),
                (FieldKind::Date, true) => c
                    .t(
                        "Formato gg/mm/aaaa",
                        "Format TT.MM.JJJJ",
                        "Format dd/mm/yyyy",
                    )
                    .to_string(),
                (FieldKind::FiscalCode, true) => c
                    .t(
                        "16 caratteri per una persona, 11 cifre per un'impresa o un ente",
                        "16 Zeichen für Personen, 11 Ziffern für Unternehmen",
                        "16 characters for a person, 11 digits for a company",
                    )
                    .to_string(),
                _ => String::new(),
            };
            Input {
                id: format!("f-{}", d.name),
                name: d.name.clone(),
                label: d.label.clone(),
                help,
                error: errors.get(&d.name).cloned(),
                required: d.required,
                input_type,
                inputmode,
                autocomplete,
                maxlength: d
                    .max_length
                    .unwrap_or(form::MAX_VALUE_LEN)
                    .min(form::MAX_VALUE_LEN),
                choices: d
                    .choices
                    .iter()
                    .map(|o| (o.clone(), o.trim() == v.trim()))
                    .collect(),
                value: v,
                readonly: false,
            }
        })
        .collect();
    let citizen = c.citizen.clone();
    let debtor = vec![
        Input {
            name: form::DEBTOR_FISCAL_CODE.into(),
            id: format!("f-{}", form::DEBTOR_FISCAL_CODE),
            label: c
                .t("Codice fiscale di chi paga", "Steuernummer des Zahlers", "Payer's tax code")
                .into(),
            help: c
                .t(
                    "Di chi paga o per conto di chi si paga: 16 caratteri per una persona, 11 cifre per un'impresa",
                    "16 Zeichen für Personen, 11 Ziffern für Unternehmen",
                    "16 characters for a person, 11 digits for a company",
                )
                .into(),
            value: citizen
                .as_ref()
                .map(|z| z.fiscal_code.clone())
                .unwrap_or_else(|| value(form::DEBTOR_FISCAL_CODE)),
            error: errors.get(form::DEBTOR_FISCAL_CODE).cloned(),
            required: true,
            input_type: "text",
            inputmode: "text",
            autocomplete: "off",
            maxlength: 16,
            choices: Vec::new(),
            readonly: citizen.is_some(),
        },
        Input {
            name: form::DEBTOR_NAME.into(),
            id: format!("f-{}", form::DEBTOR_NAME),
            label: c
                .t("Nome e cognome (o ragione sociale)", "Vor- und Nachname (oder Firma)", "Full name (or company name)")
                .into(),
            help: String::new(),
            value: citizen
                .as_ref()
                .map(|z| z.name.clone())
                .unwrap_or_else(|| value(form::DEBTOR_NAME)),
            error: errors.get(form::DEBTOR_NAME).cloned(),
            required: true,
            input_type: "text",
            inputmode: "text",
            autocomplete: "name",
            maxlength: 70,
            choices: Vec::new(),
            readonly: citizen.is_some(),
        },
        Input {
            name: form::EMAIL.into(),
            id: format!("f-{}", form::EMAIL),
            label: c
                .t("Email per la ricevuta (facoltativa)", "E-Mail für die Quittung (optional)", "Email for the receipt (optional)")
                .into(),
            help: c
                .t("Ti invieremo qui la ricevuta del pagamento.", "Hierhin senden wir die Quittung.", "We will send the receipt here.")
                .into(),
            value: value(form::EMAIL),
            error: errors.get(form::EMAIL).cloned(),
            required: false,
            input_type: "email",
            inputmode: "email",
            autocomplete: "email",
            maxlength: 254,
            choices: Vec::new(),
            readonly: false,
        },
    ];
    let typed = value(form::AMOUNT);
    let amount = match &f.def.amount {
        Amount::Fixed(cents) => AmountView {
            mode: "fixed",
            fixed: cents.to_italian(),
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
                    checked: typed.trim() == i.to_string(),
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
                "{} {} € {} {} € ({})",
                c.t("Da", "Von", "From"),
                min.to_italian(),
                c.t("a", "bis", "to"),
                max.to_italian(),
                c.t("esempio: 12,50", "Beispiel: 12,50", "example: 12,50")
            ),
            error: errors.get(form::AMOUNT).cloned(),
        },
    };
    // The summary at the top, in the order of the page.
    let mut problems = Vec::new();
    for i in fields.iter().chain(debtor.iter()) {
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
            label: c.t("Importo", "Betrag", "Amount").into(),
            message: m.clone(),
        });
    }
    FormPage {
        chrome: crumbs(c, &f.service.name),
        steps: steps(c, 0),
        code: f.service.code.clone(),
        service_name: f.service.name.clone(),
        token: token.to_string(),
        fields,
        debtor,
        amount,
        problems,
        alert,
    }
}

/// `GET /portale/{fc}/servizi/{code}`: the empty form, with a new token.
async fn blank(
    State(state): State<AppState>,
    portal: Portal,
    Path((_, code)): Path<(String, String)>,
) -> Response {
    let ctx = portal.ctx(&state);
    match sp::get_form(&ctx, &portal.ente, &code).await {
        Ok(f) => page(&form_page(
            &portal,
            &f,
            &sp::new_token(),
            &Answers::new(),
            &BTreeMap::new(),
            None,
        )),
        Err(e) => error_page(&portal.chrome, &e),
    }
}

/// A posted form: the csrf and token fields, and the answers (every other
/// name, at most the first value of each, and only so many).
struct Posted {
    csrf: String,
    token: String,
    answers: Answers,
}

fn posted(pairs: Vec<(String, String)>) -> Posted {
    let mut p = Posted {
        csrf: String::new(),
        token: String::new(),
        answers: Answers::new(),
    };
    for (k, v) in pairs.into_iter().take(100) {
        match k.as_str() {
            "csrf" => p.csrf = v,
            "token" => p.token = v,
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

/// The form again, 400, with each error next to its field.
fn rejected(portal: &Portal, f: &ServiceForm, p: &Posted, e: &AppError) -> Response {
    let token = if sp::well_formed_token(&p.token) {
        p.token.clone()
    } else {
        sp::new_token()
    };
    let alert = e.errors.is_empty().then(|| e.detail.clone());
    page_with_status(
        StatusCode::BAD_REQUEST,
        &form_page(portal, f, &token, &p.answers, &errors_of(e), alert),
    )
}

fn summary(portal: &Portal, f: &ServiceForm, token: &str, p: &Posted, a: &Accepted) -> Response {
    let c = &portal.chrome;
    let lines = a
        .values
        .iter()
        .filter_map(|(name, value)| {
            f.def.field(name).map(|d| Line {
                label: d.label.clone(),
                value: value.clone(),
            })
        })
        .collect();
    let mut payer = vec![
        Line {
            label: c.t("Nome e cognome", "Name", "Name").into(),
            value: a.debtor_name.clone(),
        },
        Line {
            label: c.t("Codice fiscale", "Steuernummer", "Tax code").into(),
            value: a.debtor_fiscal_code.clone(),
        },
    ];
    if let Some(email) = &a.email {
        payer.push(Line {
            label: c
                .t(
                    "Email per la ricevuta",
                    "E-Mail für die Quittung",
                    "Email for the receipt",
                )
                .into(),
            value: email.clone(),
        });
    }
    let amount = match &a.amount_label {
        Some(l) => format!("{} € ({l})", a.amount.to_italian()),
        None => format!("{} €", a.amount.to_italian()),
    };
    let mut resp = page(&SummaryPage {
        chrome: crumbs(c, &f.service.name),
        steps: steps(c, 1),
        code: f.service.code.clone(),
        service_name: f.service.name.clone(),
        token: token.to_string(),
        lines,
        payer,
        amount,
        causale: a.causale.clone(),
        hidden: p
            .answers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    });
    // The confirmation's answer is a redirect to Checkout's origin.
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CHECKOUT_FORM_CSP),
    );
    resp
}

/// `POST /portale/{fc}/servizi/{code}`: step 1 checked; the summary, or
/// the form again with its errors (400).
async fn review(
    State(state): State<AppState>,
    portal: Portal,
    Path((_, code)): Path<(String, String)>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Response {
    let p = posted(pairs);
    if let Err(r) = portal.check_csrf(&p.csrf) {
        return r;
    }
    let ctx = portal.ctx(&state);
    let f = match sp::get_form(&ctx, &portal.ente, &code).await {
        Ok(f) => f,
        Err(e) => return error_page(&portal.chrome, &e),
    };
    if !sp::well_formed_token(&p.token) {
        let e = AppError::invalid(
            "BAD_TOKEN",
            "Il modulo non è valido o è scaduto: compilarlo di nuovo.",
        );
        return rejected(&portal, &f, &p, &e);
    }
    match sp::check(&ctx, &portal.ente, &code, p.answers.clone()).await {
        Ok((f, accepted)) => summary(&portal, &f, &p.token, &p, &accepted),
        Err(e) if e.kind == Kind::Invalid => rejected(&portal, &f, &p, &e),
        Err(e) => error_page(&portal.chrome, &e),
    }
}

/// `POST /portale/{fc}/servizi/{code}/modifica`: back to step 1 with the
/// answers kept (and the same token).
async fn amend(
    State(state): State<AppState>,
    portal: Portal,
    Path((_, code)): Path<(String, String)>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Response {
    let p = posted(pairs);
    if let Err(r) = portal.check_csrf(&p.csrf) {
        return r;
    }
    let ctx = portal.ctx(&state);
    match sp::get_form(&ctx, &portal.ente, &code).await {
        Ok(f) => {
            let token = if sp::well_formed_token(&p.token) {
                p.token.clone()
            } else {
                sp::new_token()
            };
            page(&form_page(
                &portal,
                &f,
                &token,
                &p.answers,
                &BTreeMap::new(),
                None,
            ))
        }
        Err(e) => error_page(&portal.chrome, &e),
    }
}

/// `POST /portale/{fc}/servizi/{code}/conferma`: the position made and
/// Checkout opened (303 to it); confirming twice goes to the same one.
async fn confirm(
    State(state): State<AppState>,
    portal: Portal,
    Path((_, code)): Path<(String, String)>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Response {
    let p = posted(pairs);
    if let Err(r) = portal.check_csrf(&p.csrf) {
        return r;
    }
    if let Err(r) = portal.limit(&state, Bucket::Create).await {
        return r;
    }
    let ctx = portal.ctx(&state);
    let c = &portal.chrome;
    let result = sp::submit(&ctx, &portal.ente, &code, &p.token, p.answers.clone()).await;
    match result {
        Ok(done) => Redirect::to(&done.checkout_url).into_response(),
        Err(e) if e.kind == Kind::Invalid => match sp::get_form(&ctx, &portal.ente, &code).await {
            Ok(f) => rejected(&portal, &f, &p, &e),
            Err(e) => error_page(c, &e),
        },
        Err(e) if e.code == "FORM_ALREADY_SENT" => message_page(
            c,
            StatusCode::CONFLICT,
            c.t("Modulo già inviato", "Formular bereits gesendet", "Form already sent"),
            c.t(
                "Questo modulo è già stato inviato. Per un nuovo pagamento torna all'elenco dei servizi e compila di nuovo il modulo.",
                "Dieses Formular wurde bereits gesendet. Für eine neue Zahlung füllen Sie das Formular erneut aus.",
                "This form was already sent. For a new payment, go back to the services and fill in the form again.",
            ),
        ),
        Err(e) => error_page(c, &e),
    }
}
