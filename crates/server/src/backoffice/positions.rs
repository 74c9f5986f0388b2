//! Positions (archivio delle posizioni): search, detail, single entry,
//! update, cancel, publish, the notice PDF.
//!
//! Every handler parses, calls one use case of `incasso_app::positions`
//! (or `notices`), and renders; the use cases check the Positions area and
//! the operator's offices.

use super::catalogue::{opt, parse_amount};
use super::ui::{Chrome, ListParams, ListUrls, Table, download, export, page_with_status};
use super::{SignedIn, error_page, page};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::NaiveDate;
use incasso_app::positions::{
    self, Beneficiary, Detail, Entry, MAX_INSTALLMENTS, STATUS_CHOICES, Search, status_label,
};
use incasso_app::{AppError, Kind};
use incasso_core::Cents;
use incasso_core::accertamento::AccertamentoRef;
use incasso_core::position::{Debtor, DebtorType, OptionStatus};
use incasso_store::{SearchSort, SearchTotal};
use serde::Deserialize;

const SECTION: &str = "/backoffice/posizioni";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(SECTION, get(list))
        .route("/backoffice/posizioni/nuova", get(new_form).post(create))
        .route("/backoffice/posizioni/{iupd}", get(show))
        .route("/backoffice/posizioni/{iupd}/avviso.pdf", get(notice_pdf))
        .route(
            "/backoffice/posizioni/{iupd}/modifica",
            get(edit_form).post(update),
        )
        .route("/backoffice/posizioni/{iupd}/pubblica", post(publish))
        .route("/backoffice/posizioni/{iupd}/annulla", post(invalidate))
        .route("/backoffice/posizioni/{iupd}/elimina", post(delete))
}

/// `iupd` as a path segment of a link.
fn segment(iupd: &str) -> String {
    super::ui::query_value(iupd)
}

fn position_url(iupd: &str) -> String {
    format!("{SECTION}/{}", segment(iupd))
}

/// A date as a clerk or a date field writes it: `2026-03-31` or
/// `31/03/2026`.
fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%d/%m/%Y"))
        .ok()
}

/// An entry of a list of choices.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

fn choices(items: impl IntoIterator<Item = (String, String)>, current: &str) -> Vec<Choice> {
    items
        .into_iter()
        .map(|(value, label)| Choice {
            selected: value == current,
            value,
            label,
        })
        .collect()
}

// ---------------------------------------------------------------- search

#[derive(Debug, Default, Deserialize)]
struct SearchQuery {
    #[serde(default)]
    debitore: String,
    #[serde(default)]
    avviso: String,
    #[serde(default)]
    iuv: String,
    #[serde(default)]
    iupd: String,
    #[serde(default)]
    servizio: String,
    #[serde(default)]
    ufficio: String,
    #[serde(default)]
    stato: String,
    #[serde(default)]
    scadenza_dal: String,
    #[serde(default)]
    scadenza_al: String,
    #[serde(default)]
    esito: String,
    #[serde(flatten)]
    list: ListParams,
}

impl SearchQuery {
    /// The filters as they came, for the list's links.
    fn filters(&self) -> Vec<(&'static str, String)> {
        vec![
            ("debitore", self.debitore.clone()),
            ("avviso", self.avviso.clone()),
            ("iuv", self.iuv.clone()),
            ("iupd", self.iupd.clone()),
            ("servizio", self.servizio.clone()),
            ("ufficio", self.ufficio.clone()),
            ("stato", self.stato.clone()),
            ("scadenza_dal", self.scadenza_dal.clone()),
            ("scadenza_al", self.scadenza_al.clone()),
        ]
    }

    /// The search asked for, or what cannot be read in it.
    fn search(&self) -> Result<Search, String> {
        let date = |label: &str, s: &str| -> Result<Option<NaiveDate>, String> {
            match opt(s) {
                None => Ok(None),
                Some(v) => parse_date(&v)
                    .map(Some)
                    .ok_or_else(|| format!("{label}: «{v}» non è una data (gg/mm/aaaa)")),
            }
        };
        let (sort, descending) = self.sort();
        Ok(Search {
            debtor: opt(&self.debitore),
            notice_number: opt(&self.avviso),
            iuv: opt(&self.iuv),
            iupd: opt(&self.iupd),
            service: opt(&self.servizio),
            office: opt(&self.ufficio),
            status: opt(&self.stato),
            due_from: date("Scadenza dal", &self.scadenza_dal)?,
            due_to: date("Scadenza fino al", &self.scadenza_al)?,
            sort,
            descending,
        })
    }

    /// The order asked for: newest first unless a column is chosen.
    fn sort(&self) -> (SearchSort, bool) {
        match self.list.ordina.as_str() {
            "scadenza" => (SearchSort::DueDate, self.list.descending()),
            "debitore" => (SearchSort::DebtorName, self.list.descending()),
            _ => (SearchSort::Inserted, self.list.verso != "asc"),
        }
    }

    fn sort_key(&self) -> &'static str {
        match self.sort().0 {
            SearchSort::DueDate => "scadenza",
            SearchSort::DebtorName => "debitore",
            SearchSort::Inserted => "inserimento",
        }
    }
}

#[derive(Template)]
#[template(path = "backoffice/positions.html")]
struct ListPage {
    chrome: Chrome,
    q: SearchQuery,
    services: Vec<Choice>,
    offices: Vec<Choice>,
    statuses: Vec<Choice>,
    table: Option<Table>,
    error: Option<String>,
    warning: Option<String>,
    notice: Option<&'static str>,
    can_write: bool,
}

async fn list(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(q): Query<SearchQuery>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let ctx = signed.ctx(&state);
    let chrome = signed.chrome(&state, SECTION).await;
    let choices_of = match positions::search_choices(&ctx, &ente).await {
        Ok(c) => c,
        Err(e) => return error_page(chrome, &e),
    };
    let can_write = signed.operator.rights.may(
        &ente,
        incasso_core::access::Area::Positions,
        incasso_core::access::Access::Write,
    );
    let mut view = ListPage {
        services: choices(choices_of.services, &q.servizio),
        offices: choices(choices_of.offices, &q.ufficio),
        statuses: choices(
            STATUS_CHOICES
                .iter()
                .map(|c| (c.code.to_string(), c.label.to_string())),
            &q.stato,
        ),
        chrome,
        table: None,
        error: None,
        warning: None,
        notice: match q.esito.as_str() {
            "eliminata" => Some("La bozza è stata eliminata."),
            _ => None,
        },
        can_write,
        q: SearchQuery::default(),
    };
    let search = match q.search() {
        Ok(s) => s,
        Err(message) => {
            view.error = Some(message);
            view.q = q;
            return page_with_status(&view, StatusCode::BAD_REQUEST);
        }
    };
    if let Some(format) = q.list.export() {
        return match positions::export(&ctx, &ente, &search).await {
            Ok(sheet) => export(&sheet, format, &format!("posizioni-{ente}")),
            Err(e) => error_page(view.chrome, &e),
        };
    }
    let found = match positions::search(&ctx, &ente, &search, q.list.page()).await {
        Ok(f) => f,
        Err(e) if e.kind == Kind::Invalid => {
            view.error = Some(e.detail);
            view.q = q;
            return page_with_status(&view, StatusCode::BAD_REQUEST);
        }
        Err(e) => return error_page(view.chrome, &e),
    };
    let sheet = positions::sheet(&found.rows);
    let links: Vec<Option<String>> = found
        .rows
        .iter()
        .map(|r| Some(position_url(&r.iupd)))
        .collect();
    let (_, descending) = q.sort();
    let mut table = Table::new(
        &sheet,
        &["", "debitore", "", "", "", "", "", "scadenza", ""],
        &links,
        &ListUrls {
            path: SECTION,
            filters: q.filters(),
            sort: q.sort_key(),
            descending,
        },
        found.page,
        found.has_next,
    );
    table = match found.total {
        SearchTotal::Exact(n) => table.with_total(n),
        SearchTotal::MoreThan(n) => {
            table.total = format!("Più di {} risultati", super::ui::italian_count(n));
            table
        }
        SearchTotal::Unknown => table,
    };
    if found.truncated {
        view.warning = Some(
            "La ricerca si è fermata prima di riempire la pagina: i filtri scelti, insieme, trovano poche posizioni tra moltissime. \
             Restringerla con il codice fiscale, il numero avviso, lo IUV o un intervallo di scadenze."
                .into(),
        );
    }
    view.table = Some(table);
    view.q = q;
    page(&view)
}

// ---------------------------------------------------------------- detail

struct TransferView {
    id: u8,
    beneficiary: String,
    iban: String,
    amount: String,
    remittance: String,
    category: String,
    quotas: Vec<String>,
}

struct OptionView {
    kind: String,
    notice_number: String,
    iuv: String,
    amount: String,
    due: String,
    status: &'static str,
    paid_at: String,
    pdf: Option<String>,
    transfers: Vec<TransferView>,
}

struct ReceiptView {
    id: String,
    notice_number: String,
    outcome: String,
    amount: String,
    psp: String,
    paid_at: String,
    anomaly: String,
}

struct EventView {
    at: String,
    actor: String,
    action: String,
    outcome: String,
}

#[derive(Template)]
#[template(path = "backoffice/position.html")]
struct DetailPage {
    chrome: Chrome,
    iupd: String,
    base: String,
    status: &'static str,
    debtor: Vec<(&'static str, String)>,
    facts: Vec<(&'static str, String)>,
    options: Vec<OptionView>,
    receipts: Vec<ReceiptView>,
    history: Vec<EventView>,
    printable: bool,
    may_publish: bool,
    may_update: bool,
    may_invalidate: bool,
    may_delete: bool,
    notice: Option<&'static str>,
    messages: super::notifications::PositionMessages,
}

fn option_status(s: OptionStatus) -> &'static str {
    match s {
        OptionStatus::Unpaid => "Da pagare",
        OptionStatus::Paid => "Pagata",
        OptionStatus::PartiallyReported => "Pagata, rendicontata in parte",
        OptionStatus::Reported => "Pagata e rendicontata",
    }
}

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    incasso_core::time::to_rome(t)
        .format("%d/%m/%Y %H:%M")
        .to_string()
}

fn day(t: chrono::DateTime<chrono::Utc>) -> String {
    incasso_core::time::rome_date_string(t)
}

/// What the audit log's actions mean to a clerk.
fn action_label(action: &str) -> String {
    match action {
        "position.create" => "Creazione".into(),
        "position.update" => "Modifica".into(),
        "position.publish" => "Pubblicazione".into(),
        "position.invalidate" => "Annullamento".into(),
        "position.delete" => "Eliminazione".into(),
        "position.mark_paid" => "Pagamento registrato a mano".into(),
        "position.notification_fee" => "Costo di notifica".into(),
        other => other.to_string(),
    }
}

fn detail_page(chrome: Chrome, d: Detail, notice: Option<&'static str>) -> DetailPage {
    let p = &d.stored.position;
    let base = position_url(&p.iupd);
    let debtor = &p.debtor;
    let address = [
        debtor.street_name.clone(),
        debtor.civic_number.clone(),
        debtor.postal_code.clone(),
        debtor.city.clone(),
        debtor.province.clone().map(|p| format!("({p})")),
        debtor.country.clone(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let debtor_rows: Vec<(&'static str, String)> = vec![
        (
            "Tipo",
            match debtor.kind {
                DebtorType::F => "Persona fisica".to_string(),
                DebtorType::G => "Persona giuridica".to_string(),
            },
        ),
        ("Codice fiscale o partita IVA", debtor.fiscal_code.clone()),
        ("Nome o ragione sociale", debtor.full_name.clone()),
        ("Indirizzo", address),
        ("E-mail", debtor.email.clone().unwrap_or_default()),
        ("Telefono", debtor.phone.clone().unwrap_or_default()),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect();
    let mut facts = vec![
        ("IUPD", p.iupd.clone()),
        ("Stato", status_label(d.status).to_string()),
        (
            "Servizio",
            d.service
                .as_ref()
                .map(|s| format!("{} ({})", s.name, s.code))
                .or_else(|| d.stored.placement.service.clone())
                .unwrap_or_else(|| "non indicato".into()),
        ),
        (
            "Ufficio",
            d.office
                .as_ref()
                .map(|o| format!("{} ({})", o.name, o.code))
                .or_else(|| d.stored.placement.office.clone())
                .unwrap_or_else(|| "non indicato".into()),
        ),
        (
            "Importo dovuto",
            p.total_amount()
                .map(|c| format!("{} €", c.to_italian()))
                .unwrap_or_default(),
        ),
        ("Ente creditore", p.company_name.clone()),
    ];
    if let Some(t) = p.inserted_date {
        facts.push(("Inserita il", when(t)));
    }
    if let Some(t) = p.publish_date {
        facts.push(("Pubblicata il", when(t)));
    }
    if let Some(t) = p.validity_date {
        facts.push(("Valida dal", when(t)));
    }
    if let Some(t) = p.payment_date {
        facts.push(("Pagata il", when(t)));
    }
    if let Some(id) = d.extras.supply_id {
        facts.push(("Caricata con la fornitura", format!("n. {id}")));
    }
    let options = p
        .options
        .iter()
        .zip(&d.printable)
        .map(|(o, printable)| {
            let nav = o
                .notice_number
                .as_ref()
                .map(|n| n.as_str().to_string())
                .unwrap_or_default();
            OptionView {
                kind: if o.is_partial_payment {
                    "Rata".into()
                } else {
                    "Unica soluzione".into()
                },
                pdf: printable.then(|| format!("{base}/avviso.pdf?numero={nav}")),
                notice_number: nav,
                iuv: o.iuv.clone().unwrap_or_default(),
                amount: o.amount.to_italian(),
                due: day(o.due_date),
                status: option_status(o.status),
                paid_at: o.payment_date.map(when).unwrap_or_default(),
                transfers: o
                    .transfers
                    .iter()
                    .map(|t| TransferView {
                        id: t.id_transfer,
                        beneficiary: match &t.company_name {
                            Some(n) => format!("{n} ({})", t.organization_fiscal_code),
                            None => t.organization_fiscal_code.clone(),
                        },
                        iban: t
                            .iban
                            .clone()
                            .or_else(|| t.postal_iban.clone())
                            .unwrap_or_else(|| "marca da bollo".into()),
                        amount: t.amount.to_italian(),
                        remittance: t.remittance_information.clone(),
                        category: t.category.clone(),
                        quotas: t
                            .quotas
                            .iter()
                            .map(|q| {
                                format!(
                                    "{}/{}: {} €",
                                    q.accertamento.year,
                                    q.accertamento.code,
                                    q.amount.to_italian()
                                )
                            })
                            .collect(),
                    })
                    .collect(),
            }
        })
        .collect();
    let receipts = d
        .extras
        .receipts
        .iter()
        .map(|r| ReceiptView {
            id: r.receipt_id.clone(),
            notice_number: r.notice_number.clone(),
            outcome: r.outcome.clone(),
            amount: r.amount.to_italian(),
            psp: r.psp_name.clone(),
            paid_at: r.payment_date_time.map(when).unwrap_or_default(),
            anomaly: r.anomaly.clone().unwrap_or_default(),
        })
        .collect();
    let history = d
        .extras
        .history
        .iter()
        .map(|e| EventView {
            at: incasso_core::time::to_rome(e.at)
                .format("%d/%m/%Y %H:%M:%S")
                .to_string(),
            actor: e.actor.clone(),
            action: action_label(&e.action),
            outcome: if e.outcome == "OK" {
                "riuscita".into()
            } else {
                format!("rifiutata ({})", e.outcome)
            },
        })
        .collect();
    DetailPage {
        chrome,
        iupd: p.iupd.clone(),
        status: status_label(d.status),
        debtor: debtor_rows,
        facts,
        options,
        receipts,
        history,
        printable: d.printable.iter().any(|p| *p),
        may_publish: d.may_publish,
        may_update: d.may_update,
        may_invalidate: d.may_invalidate,
        may_delete: d.may_delete,
        notice,
        base,
        messages: Default::default(),
    }
}

#[derive(Deserialize)]
struct ShowQuery {
    #[serde(default)]
    esito: String,
    #[serde(default)]
    richiesti: String,
}

async fn show(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(iupd): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let chrome = signed.chrome(&state, SECTION).await;
    match positions::detail(&signed.ctx(&state), &ente, &iupd).await {
        Ok(d) => {
            let notice = match q.esito.as_str() {
                "creata" => Some("La posizione è stata salvata."),
                "modificata" => Some("Le modifiche sono state salvate."),
                "pubblicata" => {
                    Some("La posizione è stata pubblicata: i suoi avvisi si possono pagare.")
                }
                "annullata" => {
                    Some("La posizione è stata annullata: i suoi avvisi non si possono più pagare.")
                }
                _ => None,
            };
            let mut p = detail_page(chrome, d, notice);
            p.messages = super::notifications::of_position(
                &state,
                &signed,
                &ente,
                &iupd,
                &q.esito,
                &q.richiesti,
            )
            .await;
            page(&p)
        }
        Err(e) => error_page(chrome, &e),
    }
}

#[derive(Deserialize)]
struct PdfQuery {
    #[serde(default)]
    numero: String,
    #[serde(default)]
    lingua: String,
}

/// The notice of the whole position, or of one of its notice numbers.
async fn notice_pdf(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(iupd): Path<String>,
    Query(q): Query<PdfQuery>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let ctx = signed.ctx(&state);
    let lang = match incasso_app::notices::language(opt(&q.lingua).as_deref()) {
        Ok(l) => l,
        Err(e) => return error_page(signed.chrome(&state, SECTION).await, &e),
    };
    let result = match opt(&q.numero) {
        // The notice number must be one of this position's: a link of one
        // position never prints another's notice.
        Some(nav) => match positions::get(&ctx, &ente, &iupd).await {
            Ok(stored)
                if stored
                    .position
                    .options
                    .iter()
                    .any(|o| o.notice_number.as_ref().is_some_and(|n| n.as_str() == nav)) =>
            {
                incasso_app::notices::notice_pdf(&ctx, &ente, &nav, lang).await
            }
            Ok(_) => Err(AppError::new(
                Kind::NotFound,
                "NOT_FOUND",
                format!("avviso {nav} non trovato in questa posizione"),
            )),
            Err(e) => Err(e),
        },
        None => incasso_app::notices::position_pdf(&ctx, &ente, &iupd, lang).await,
    };
    match result {
        Ok(pdf) => {
            let name = match opt(&q.numero) {
                Some(nav) => format!("avviso-{nav}.pdf"),
                None => format!("avviso-{}.pdf", incasso_app::notices::file_safe(&iupd)),
            };
            let mut resp = download(pdf, "application/pdf", &name);
            // Shown in the browser, where it can be printed.
            resp.headers_mut().insert(
                axum::http::header::CONTENT_DISPOSITION,
                axum::http::HeaderValue::from_str(&format!("inline; filename=\"{name}\""))
                    .unwrap_or_else(|_| axum::http::HeaderValue::from_static("inline")),
            );
            resp
        }
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}

// ---------------------------------------------------------------- actions

#[derive(Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: String,
}

async fn action(
    state: AppState,
    signed: SignedIn,
    iupd: String,
    form: ActionForm,
    what: &'static str,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let ctx = signed.ctx(&state);
    let result = match what {
        "pubblicata" => positions::publish(&ctx, &ente, &iupd).await.map(|_| ()),
        "annullata" => positions::invalidate(&ctx, &ente, &iupd).await.map(|_| ()),
        _ => positions::delete(&ctx, &ente, &iupd).await,
    };
    match result {
        Ok(()) if what == "eliminata" => {
            Redirect::to(&format!("{SECTION}?esito=eliminata")).into_response()
        }
        Ok(()) => Redirect::to(&format!("{}?esito={what}", position_url(&iupd))).into_response(),
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}

async fn publish(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(iupd): Path<String>,
    axum::Form(form): axum::Form<ActionForm>,
) -> Response {
    action(state, signed, iupd, form, "pubblicata").await
}

async fn invalidate(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(iupd): Path<String>,
    axum::Form(form): axum::Form<ActionForm>,
) -> Response {
    action(state, signed, iupd, form, "annullata").await
}

async fn delete(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(iupd): Path<String>,
    axum::Form(form): axum::Form<ActionForm>,
) -> Response {
    action(state, signed, iupd, form, "eliminata").await
}

// ---------------------------------------------------------------- entry

/// The quota rows the form offers.
const QUOTA_ROWS: usize = 3;

/// Each field of the entry ([`positions::ENTRY_FIELDS`]): its input and
/// its Italian name.
const FIELDS: &[(&str, &str, &str)] = &[
    ("iupd", "iupd", "Codice della posizione (IUPD)"),
    ("service", "servizio", "Servizio"),
    ("office", "ufficio", "Ufficio"),
    ("debtor.kind", "tipo", "Tipo di debitore"),
    (
        "debtor.fiscal_code",
        "codice_fiscale",
        "Codice fiscale o partita IVA del debitore",
    ),
    ("debtor.name", "nome", "Nome e cognome o ragione sociale"),
    ("debtor.street", "indirizzo", "Indirizzo"),
    ("debtor.civic", "civico", "Numero civico"),
    ("debtor.postal_code", "cap", "CAP"),
    ("debtor.city", "comune", "Comune"),
    ("debtor.province", "provincia", "Provincia"),
    ("debtor.country", "nazione", "Nazione"),
    ("debtor.email", "email", "E-mail"),
    ("debtor.phone", "telefono", "Telefono"),
    ("description", "causale", "Causale"),
    ("amount", "importo", "Importo in euro"),
    ("due_date", "scadenza", "Scadenza"),
    ("installments", "rate", "Numero di rate"),
    ("iban", "iban", "IBAN di accredito"),
    (
        "second.fiscal_code",
        "altro_cf",
        "Codice fiscale dell'altro ente",
    ),
    ("second.name", "altro_nome", "Nome dell'altro ente"),
    ("second.iban", "altro_iban", "IBAN dell'altro ente"),
    (
        "second.amount",
        "altro_importo",
        "Quota dell'altro ente in euro",
    ),
    ("quotas", "quota_acc_1", "Quote di accertamento"),
];

fn input_of(entry_field: &str) -> (&'static str, &'static str) {
    FIELDS
        .iter()
        .find(|(f, _, _)| *f == entry_field)
        .map(|(_, input, label)| (*input, *label))
        .unwrap_or(("importo", "Posizione"))
}

#[derive(Debug, Default, Deserialize)]
struct EntryForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    iupd: String,
    #[serde(default)]
    servizio: String,
    #[serde(default)]
    ufficio: String,
    #[serde(default)]
    tipo: String,
    #[serde(default)]
    codice_fiscale: String,
    #[serde(default)]
    nome: String,
    #[serde(default)]
    indirizzo: String,
    #[serde(default)]
    civico: String,
    #[serde(default)]
    cap: String,
    #[serde(default)]
    comune: String,
    #[serde(default)]
    provincia: String,
    #[serde(default)]
    nazione: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    telefono: String,
    #[serde(default)]
    causale: String,
    #[serde(default)]
    importo: String,
    #[serde(default)]
    scadenza: String,
    #[serde(default)]
    rate: String,
    #[serde(default)]
    iban: String,
    #[serde(default)]
    altro_cf: String,
    #[serde(default)]
    altro_nome: String,
    #[serde(default)]
    altro_iban: String,
    #[serde(default)]
    altro_importo: String,
    #[serde(default)]
    quota_acc_1: String,
    #[serde(default)]
    quota_imp_1: String,
    #[serde(default)]
    quota_acc_2: String,
    #[serde(default)]
    quota_imp_2: String,
    #[serde(default)]
    quota_acc_3: String,
    #[serde(default)]
    quota_imp_3: String,
    #[serde(default)]
    pubblica: String,
}

impl EntryForm {
    fn quota_rows(&self) -> [(&str, &str); QUOTA_ROWS] {
        [
            (self.quota_acc_1.as_str(), self.quota_imp_1.as_str()),
            (self.quota_acc_2.as_str(), self.quota_imp_2.as_str()),
            (self.quota_acc_3.as_str(), self.quota_imp_3.as_str()),
        ]
    }

    /// The form filled with `entry`.
    fn of(entry: &Entry) -> EntryForm {
        let d = &entry.debtor;
        let text = |o: &Option<String>| o.clone().unwrap_or_default();
        let quota = |i: usize| {
            entry
                .quotas
                .get(i)
                .map(|(a, c)| (format!("{}/{}", a.year, a.code), c.to_italian()))
                .unwrap_or_default()
        };
        let (q1, q2, q3) = (quota(0), quota(1), quota(2));
        EntryForm {
            csrf: String::new(),
            iupd: text(&entry.iupd),
            servizio: entry.service.clone(),
            ufficio: text(&entry.office),
            tipo: d.kind.as_str().into(),
            codice_fiscale: d.fiscal_code.clone(),
            nome: d.full_name.clone(),
            indirizzo: text(&d.street_name),
            civico: text(&d.civic_number),
            cap: text(&d.postal_code),
            comune: text(&d.city),
            provincia: text(&d.province),
            nazione: text(&d.country),
            email: text(&d.email),
            telefono: text(&d.phone),
            causale: entry.description.clone(),
            importo: entry.amount.to_italian(),
            scadenza: entry.due_date.format("%Y-%m-%d").to_string(),
            rate: if entry.installments == 0 {
                String::new()
            } else {
                entry.installments.to_string()
            },
            iban: text(&entry.iban),
            altro_cf: entry
                .second
                .as_ref()
                .map(|b| b.fiscal_code.clone())
                .unwrap_or_default(),
            altro_nome: entry
                .second
                .as_ref()
                .and_then(|b| b.name.clone())
                .unwrap_or_default(),
            altro_iban: entry
                .second
                .as_ref()
                .map(|b| b.iban.clone())
                .unwrap_or_default(),
            altro_importo: entry
                .second
                .as_ref()
                .map(|b| b.amount.to_italian())
                .unwrap_or_default(),
            quota_acc_1: q1.0,
            quota_imp_1: q1.1,
            quota_acc_2: q2.0,
            quota_imp_2: q2.1,
            quota_acc_3: q3.0,
            quota_imp_3: q3.1,
            pubblica: if entry.publish {
                "1".into()
            } else {
                String::new()
            },
        }
    }

    /// The entry the form describes, or each field that cannot even be
    /// read (input id, message).
    fn entry(&self) -> Result<Entry, Vec<(&'static str, String)>> {
        let mut problems: Vec<(&'static str, String)> = Vec::new();
        let amount =
            |input: &'static str, s: &str, problems: &mut Vec<(&'static str, String)>| match opt(s)
            {
                None => {
                    problems.push((input, "indicare un importo in euro (es. 120,50)".into()));
                    Cents::ZERO
                }
                Some(a) => parse_amount(&a).unwrap_or_else(|| {
                    problems.push((
                        input,
                        format!("«{a}» non è un importo in euro (es. 120,50)"),
                    ));
                    Cents::ZERO
                }),
            };
        let total = amount("importo", &self.importo, &mut problems);
        let due_date = match opt(&self.scadenza) {
            None => {
                problems.push(("scadenza", "indicare la data di scadenza".into()));
                NaiveDate::default()
            }
            Some(d) => parse_date(&d).unwrap_or_else(|| {
                problems.push(("scadenza", format!("«{d}» non è una data (gg/mm/aaaa)")));
                NaiveDate::default()
            }),
        };
        let installments = match opt(&self.rate) {
            None => 0,
            Some(n) => n.parse::<u32>().unwrap_or_else(|_| {
                problems.push((
                    "rate",
                    format!("«{n}» non è un numero (da 2 a {MAX_INSTALLMENTS}, o vuoto)"),
                ));
                0
            }),
        };
        let kind = match self.tipo.as_str() {
            "G" => DebtorType::G,
            "F" | "" => DebtorType::F,
            _ => {
                problems.push(("tipo", "scegliere persona fisica o giuridica".into()));
                DebtorType::F
            }
        };
        if opt(&self.servizio).is_none() {
            problems.push(("servizio", "scegliere un servizio del catalogo".into()));
        }
        let second = if [
            &self.altro_cf,
            &self.altro_iban,
            &self.altro_importo,
            &self.altro_nome,
        ]
        .iter()
        .all(|v| v.trim().is_empty())
        {
            None
        } else {
            let share = amount("altro_importo", &self.altro_importo, &mut problems);
            Some(Beneficiary {
                fiscal_code: self.altro_cf.trim().to_string(),
                name: opt(&self.altro_nome),
                iban: self.altro_iban.replace(' ', "").to_uppercase(),
                amount: share,
            })
        };
        let mut quotas = Vec::new();
        for (acc, imp) in self.quota_rows() {
            if acc.trim().is_empty() && imp.trim().is_empty() {
                continue;
            }
            let reference = acc
                .split_once('/')
                .and_then(|(y, c)| Some((y.trim().parse::<i32>().ok()?, c.trim())))
                .filter(|(_, c)| !c.is_empty())
                .map(|(year, code)| AccertamentoRef {
                    year,
                    code: code.to_string(),
                });
            let Some(reference) = reference else {
                problems.push((
                    "quota_acc_1",
                    "scegliere l'accertamento di ogni quota".into(),
                ));
                continue;
            };
            match opt(imp).and_then(|i| parse_amount(&i)) {
                Some(c) => quotas.push((reference, c)),
                None => problems.push((
                    "quota_acc_1",
                    format!(
                        "l'importo della quota su {}/{} non è un importo in euro",
                        reference.year, reference.code
                    ),
                )),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let upper = |s: &str| opt(s).map(|v| v.to_uppercase());
        Ok(Entry {
            iupd: opt(&self.iupd),
            service: self.servizio.trim().to_string(),
            office: opt(&self.ufficio),
            debtor: Debtor {
                street_name: opt(&self.indirizzo),
                civic_number: opt(&self.civico),
                postal_code: opt(&self.cap),
                city: opt(&self.comune),
                province: upper(&self.provincia),
                region: None,
                country: upper(&self.nazione),
                email: opt(&self.email),
                phone: opt(&self.telefono),
                ..Debtor::named(
                    kind,
                    self.codice_fiscale.trim().to_uppercase(),
                    self.nome.trim().to_string(),
                )
            },
            description: self.causale.trim().to_string(),
            amount: total,
            due_date,
            installments,
            iban: opt(&self.iban).map(|i| i.replace(' ', "").to_uppercase()),
            second,
            quotas,
            publish: !self.pubblica.is_empty(),
        })
    }
}

/// A form's input, as the template draws it.
struct Field {
    id: &'static str,
    label: &'static str,
    value: String,
    /// `text`, `date`, `email`, `tel`, `select`.
    kind: &'static str,
    choices: Vec<Choice>,
    help: &'static str,
    error: Option<String>,
    /// Bootstrap's column class.
    width: &'static str,
    readonly: bool,
    inputmode: &'static str,
    autocomplete: &'static str,
}

struct Fieldset {
    legend: &'static str,
    intro: &'static str,
    fields: Vec<Field>,
}

#[derive(Template)]
#[template(path = "backoffice/position_form.html")]
struct FormPage {
    chrome: Chrome,
    creating: bool,
    action: String,
    back: String,
    errors: Vec<String>,
    warning: Option<&'static str>,
    fieldsets: Vec<Fieldset>,
    publish: bool,
    iupd: String,
}

/// The form page: `form`'s values, its errors (input id, message) beside
/// their inputs and listed above, the catalogue's choices.
async fn form_page(
    state: &AppState,
    signed: &SignedIn,
    ente: &str,
    iupd: Option<&str>,
    form: &EntryForm,
    errors: &[(&'static str, String)],
    warning: Option<&'static str>,
) -> Result<FormPage, Response> {
    let ctx = signed.ctx(state);
    let chrome = signed.chrome(state, SECTION).await;
    let c = match positions::entry_choices(&ctx, ente).await {
        Ok(c) => c,
        Err(e) => return Err(error_page(chrome, &e)),
    };
    let err = |id: &str| -> Option<String> {
        let mine: Vec<&str> = errors
            .iter()
            .filter(|(i, _)| *i == id)
            .map(|(_, m)| m.as_str())
            .collect();
        (!mine.is_empty()).then(|| mine.join("; "))
    };
    let field = |id: &'static str, label: &'static str, value: &str, kind: &'static str| Field {
        id,
        label,
        value: value.to_string(),
        kind,
        choices: Vec::new(),
        help: "",
        error: err(id),
        width: "col-12 col-md-6",
        readonly: false,
        inputmode: "",
        autocomplete: "off",
    };
    let services = choices(
        c.services
            .iter()
            .map(|s| (s.code.clone(), format!("{} ({})", s.name, s.code))),
        &form.servizio,
    );
    let mut office_choices = vec![Choice {
        value: String::new(),
        label: "L'ufficio del servizio".into(),
        selected: form.ufficio.is_empty(),
    }];
    office_choices.extend(choices(
        c.offices
            .iter()
            .map(|o| (o.code.clone(), format!("{} ({})", o.name, o.code))),
        &form.ufficio,
    ));
    let accertamenti = |current: &str| {
        let mut list = vec![Choice {
            value: String::new(),
            label: "Nessuna".into(),
            selected: current.is_empty(),
        }];
        list.extend(choices(
            c.accertamenti.iter().map(|a| {
                (
                    format!("{}/{}", a.year, a.code),
                    format!("{}/{} - {}", a.year, a.code, a.description),
                )
            }),
            current,
        ));
        list
    };
    let creating = iupd.is_none();
    let mut position = vec![
        Field {
            help: if creating {
                "Il codice con cui il gestionale riconosce la posizione. Se vuoto, incasso ne crea uno."
            } else {
                "Il codice non si può cambiare."
            },
            readonly: !creating,
            width: "col-12",
            ..field("iupd", "Codice della posizione (IUPD)", &form.iupd, "text")
        },
        Field {
            choices: services,
            help: "Dà la tassonomia pagoPA, l'IBAN e l'accertamento predefiniti.",
            ..field("servizio", "Servizio", &form.servizio, "select")
        },
        Field {
            choices: office_choices,
            ..field("ufficio", "Ufficio", &form.ufficio, "select")
        },
    ];
    if c.services.is_empty() {
        position[1].help = "Il catalogo non ha servizi attivi che si possano usare: chiedere all'amministratore di crearne.";
    }
    let debtor = vec![
        Field {
            choices: choices(
                [
                    ("F".to_string(), "Persona fisica".to_string()),
                    ("G".to_string(), "Persona giuridica".to_string()),
                ],
                if form.tipo.is_empty() {
                    "F"
                } else {
                    &form.tipo
                },
            ),
            ..field("tipo", "Tipo di debitore", &form.tipo, "select")
        },
        Field {
            help: "16 caratteri per una persona, 11 cifre per una società o un ente.",
            ..field(
                "codice_fiscale",
                "Codice fiscale o partita IVA",
                &form.codice_fiscale,
                "text",
            )
        },
        Field {
            width: "col-12",
            autocomplete: "name",
            ..field(
                "nome",
                "Nome e cognome o ragione sociale",
                &form.nome,
                "text",
            )
        },
        Field {
            width: "col-12 col-md-8",
            ..field(
                "indirizzo",
                "Indirizzo (facoltativo)",
                &form.indirizzo,
                "text",
            )
        },
        Field {
            width: "col-12 col-md-4",
            ..field(
                "civico",
                "Numero civico (facoltativo)",
                &form.civico,
                "text",
            )
        },
        Field {
            width: "col-12 col-md-4",
            inputmode: "numeric",
            ..field("cap", "CAP (facoltativo)", &form.cap, "text")
        },
        Field {
            width: "col-12 col-md-8",
            ..field("comune", "Comune (facoltativo)", &form.comune, "text")
        },
        Field {
            help: "La sigla, es. RM.",
            ..field(
                "provincia",
                "Provincia (facoltativa)",
                &form.provincia,
                "text",
            )
        },
        Field {
            help: "Due lettere, es. IT.",
            ..field("nazione", "Nazione (facoltativa)", &form.nazione, "text")
        },
        Field {
            autocomplete: "email",
            ..field("email", "E-mail (facoltativa)", &form.email, "email")
        },
        Field {
            autocomplete: "tel",
            ..field("telefono", "Telefono (facoltativo)", &form.telefono, "tel")
        },
    ];
    let payment = vec![
        Field {
            width: "col-12",
            help: "Il motivo del pagamento, stampato sull'avviso.",
            ..field("causale", "Causale", &form.causale, "text")
        },
        Field {
            width: "col-12 col-md-4",
            inputmode: "decimal",
            help: "Es. 120,50.",
            ..field("importo", "Importo in euro", &form.importo, "text")
        },
        Field {
            width: "col-12 col-md-4",
            ..field("scadenza", "Scadenza", &form.scadenza, "date")
        },
        Field {
            width: "col-12 col-md-4",
            inputmode: "numeric",
            help: "Vuoto per il solo pagamento in unica soluzione; da 2 a 24 per offrire anche le rate mensili, la prima alla scadenza.",
            ..field("rate", "Numero di rate (facoltativo)", &form.rate, "text")
        },
        Field {
            width: "col-12",
            help: "Se vuoto, l'IBAN del servizio o, in mancanza, quello dell'ente.",
            ..field(
                "iban",
                "IBAN di accredito dell'ente (facoltativo)",
                &form.iban,
                "text",
            )
        },
    ];
    let second = vec![
        field(
            "altro_cf",
            "Codice fiscale dell'altro ente",
            &form.altro_cf,
            "text",
        ),
        field(
            "altro_nome",
            "Nome dell'altro ente",
            &form.altro_nome,
            "text",
        ),
        field(
            "altro_iban",
            "IBAN dell'altro ente",
            &form.altro_iban,
            "text",
        ),
        Field {
            inputmode: "decimal",
            help: "La parte dell'importo che va all'altro ente.",
            ..field(
                "altro_importo",
                "Quota dell'altro ente in euro",
                &form.altro_importo,
                "text",
            )
        },
    ];
    let labels = [
        (
            "quota_acc_1",
            "Accertamento della prima quota",
            "quota_imp_1",
            "Importo della prima quota",
        ),
        (
            "quota_acc_2",
            "Accertamento della seconda quota",
            "quota_imp_2",
            "Importo della seconda quota",
        ),
        (
            "quota_acc_3",
            "Accertamento della terza quota",
            "quota_imp_3",
            "Importo della terza quota",
        ),
    ];
    let mut quotas = Vec::new();
    for ((acc_id, acc_label, imp_id, imp_label), (acc, imp)) in
        labels.into_iter().zip(form.quota_rows())
    {
        quotas.push(Field {
            choices: accertamenti(acc),
            width: "col-12 col-md-8",
            ..field(acc_id, acc_label, acc, "select")
        });
        quotas.push(Field {
            width: "col-12 col-md-4",
            inputmode: "decimal",
            error: None,
            ..field(imp_id, imp_label, imp, "text")
        });
    }
    let listed = errors
        .iter()
        .map(|(id, m)| {
            let label = FIELDS
                .iter()
                .find(|(_, input, _)| input == id)
                .map(|(_, _, l)| *l)
                .unwrap_or("Posizione");
            format!("{label}: {m}")
        })
        .collect();
    let action = match iupd {
        None => format!("{SECTION}/nuova"),
        Some(i) => format!("{}/modifica", position_url(i)),
    };
    Ok(FormPage {
        chrome,
        creating,
        back: iupd
            .map(position_url)
            .unwrap_or_else(|| SECTION.to_string()),
        action,
        errors: listed,
        warning,
        fieldsets: vec![
            Fieldset {
                legend: "Posizione",
                intro: "",
                fields: position,
            },
            Fieldset {
                legend: "Debitore",
                intro: "",
                fields: debtor,
            },
            Fieldset {
                legend: "Pagamento",
                intro: "",
                fields: payment,
            },
            Fieldset {
                legend: "Altro ente beneficiario (facoltativo)",
                intro: "Da compilare solo se una parte dell'importo va a un altro ente.",
                fields: second,
            },
            Fieldset {
                legend: "Quote di accertamento (facoltative)",
                intro: "Come si ripartisce la parte dell'ente tra gli accertamenti: le quote devono sommare a quella parte. Se non se ne indica nessuna, tutto va all'accertamento predefinito del servizio.",
                fields: quotas,
            },
        ],
        publish: !form.pubblica.is_empty(),
        iupd: iupd.unwrap_or_default().to_string(),
    })
}

/// The form sent back with its errors (status 400), nothing written.
async fn refused(
    state: &AppState,
    signed: &SignedIn,
    ente: &str,
    iupd: Option<&str>,
    form: &EntryForm,
    e: &AppError,
) -> Response {
    if e.kind != Kind::Invalid {
        return error_page(signed.chrome(state, SECTION).await, e);
    }
    let errors: Vec<(&'static str, String)> = if e.errors.is_empty() {
        vec![("importo", e.detail.clone())]
    } else {
        e.errors
            .iter()
            .map(|f| (input_of(&f.field).0, f.message.clone()))
            .collect()
    };
    match form_page(state, signed, ente, iupd, form, &errors, None).await {
        Ok(p) => page_with_status(&p, StatusCode::BAD_REQUEST),
        Err(r) => r,
    }
}

async fn new_form(State(state): State<AppState>, signed: SignedIn) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let form = EntryForm {
        tipo: "F".into(),
        pubblica: "1".into(),
        ..Default::default()
    };
    match form_page(&state, &signed, &ente, None, &form, &[], None).await {
        Ok(p) => page(&p),
        Err(r) => r,
    }
}

async fn create(
    State(state): State<AppState>,
    signed: SignedIn,
    axum::Form(form): axum::Form<EntryForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let entry = match form.entry() {
        Ok(e) => e,
        Err(problems) => {
            return match form_page(&state, &signed, &ente, None, &form, &problems, None).await {
                Ok(p) => page_with_status(&p, StatusCode::BAD_REQUEST),
                Err(r) => r,
            };
        }
    };
    match positions::enter(&signed.ctx(&state), &ente, entry).await {
        Ok(stored) => Redirect::to(&format!(
            "{}?esito=creata",
            position_url(&stored.position.iupd)
        ))
        .into_response(),
        Err(e) => refused(&state, &signed, &ente, None, &form, &e).await,
    }
}

async fn edit_form(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(iupd): Path<String>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let ctx = signed.ctx(&state);
    // Only a writer opens the form: a reader is refused before seeing it.
    let stored = match positions::get(&ctx, &ente, &iupd).await {
        Ok(s) => s,
        Err(e) => return error_page(signed.chrome(&state, SECTION).await, &e),
    };
    let (entry, fits) = positions::entry_of(&ente, &stored);
    let warning = (!fits).then_some(
        "Questa posizione ha una forma che il modulo non rappresenta per intero (ad esempio più di due beneficiari, o solo rate): salvando, prenderà quella del modulo.",
    );
    match form_page(
        &state,
        &signed,
        &ente,
        Some(&iupd),
        &EntryForm::of(&entry),
        &[],
        warning,
    )
    .await
    {
        Ok(p) => page(&p),
        Err(r) => r,
    }
}

async fn update(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(iupd): Path<String>,
    axum::Form(form): axum::Form<EntryForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let entry = match form.entry() {
        Ok(e) => e,
        Err(problems) => {
            return match form_page(&state, &signed, &ente, Some(&iupd), &form, &problems, None)
                .await
            {
                Ok(p) => page_with_status(&p, StatusCode::BAD_REQUEST),
                Err(r) => r,
            };
        }
    };
    match positions::amend(&signed.ctx(&state), &ente, &iupd, entry).await {
        Ok(_) => Redirect::to(&format!("{}?esito=modificata", position_url(&iupd))).into_response(),
        Err(e) => refused(&state, &signed, &ente, Some(&iupd), &form, &e).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_field_has_an_input_and_a_label() {
        for f in positions::ENTRY_FIELDS {
            assert!(FIELDS.iter().any(|(e, _, _)| e == f), "{f}");
        }
        assert_eq!(
            parse_date("31/03/2027"),
            NaiveDate::from_ymd_opt(2027, 3, 31)
        );
        assert_eq!(
            parse_date("2027-03-31"),
            NaiveDate::from_ymd_opt(2027, 3, 31)
        );
        assert_eq!(parse_date("31-03"), None);
    }
}
