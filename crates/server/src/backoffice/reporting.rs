//! Receipts, reporting flows with their breakdown into accertamenti,
//! treasury movements, reconciliation results and anomalies, and manual
//! regularization: the Reporting area of the back office, as MyPivot shows
//! it.
//!
//! - `/backoffice/ricevute`: receipts searched by IUV, notice, debtor and
//!   payment date; each one's page and its XML.
//! - `/backoffice/flussi`: the reporting flows received, a flow's upload;
//!   each flow's page with its breakdown into accertamenti and its lines.
//! - `/backoffice/tesoreria`: treasury movements, a treasury file's upload,
//!   the reconciliation run; `/anomalie` every anomaly class and the
//!   anomalies found; `/righe` the flows' lines by class; `/movimento` one
//!   movement with its breakdown, its reversale proposal, and its tie to
//!   its flows by hand (`/regolarizza`, `/annulla`).
//!
//! Movement ids hold slashes (`2022/0000005/0000201/ESEGUITO`): they
//! travel in the query, never in the path.

use super::ui::{self, Chrome, ListParams, ListUrls, Table, url};
use super::{SignedIn, error_page, page};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDate, Utc};
use incasso_app::digitfin::{self, BreakdownRow};
use incasso_app::reconcile::{ANOMALY_CLASSES, BreakdownOf, LINE_CLASSES};
use incasso_app::sheet::{Cell, MAX_EXPORT_ROWS, Sheet};
use incasso_app::{AppError, Kind, receipts};
use incasso_core::Cents;
use incasso_core::access::{Access, Area};
use incasso_store::FlowIntake;
use incasso_store::reporting::{
    FlowQuery, FlowRow, FlowSort, MovementQuery, MovementSort, ReceiptQuery, ReceiptSort,
};
use serde::Deserialize;

/// Rows of a list page.
const PAGE_ROWS: u32 = 50;
/// The largest flow or treasury file taken through a page: as the API.
const MAX_FILE_BYTES: usize = crate::recon_api::MAX_RECON_FILE_BYTES;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/backoffice/ricevute", get(receipts_list))
        .route("/backoffice/ricevute/{id}", get(receipt_page))
        .route("/backoffice/ricevute/{id}/xml", get(receipt_xml))
        .route("/backoffice/flussi", get(flows_list))
        .route(
            "/backoffice/flussi/carica",
            post(flow_upload).layer(DefaultBodyLimit::max(MAX_FILE_BYTES + 64 * 1024)),
        )
        .route("/backoffice/flussi/scarica", post(flows_fetch))
        .route("/backoffice/flussi/{id}", get(flow_page))
        .route("/backoffice/tesoreria", get(treasury_list))
        .route(
            "/backoffice/tesoreria/carica",
            post(treasury_upload).layer(DefaultBodyLimit::max(MAX_FILE_BYTES + 64 * 1024)),
        )
        .route("/backoffice/tesoreria/riconcilia", post(run))
        .route("/backoffice/tesoreria/anomalie", get(anomalies))
        .route("/backoffice/tesoreria/righe", get(lines))
        .route("/backoffice/tesoreria/movimento", get(movement_page))
        .route("/backoffice/tesoreria/reversale", get(reversale))
        .route("/backoffice/tesoreria/regolarizza", post(regularize))
        .route("/backoffice/tesoreria/annulla", post(undo))
}

// ---------------------------------------------------------------- helpers

fn may_write(signed: &SignedIn, ente: &str) -> bool {
    signed
        .operator
        .rights
        .may(ente, Area::Reporting, Access::Write)
}

fn money(c: Cents) -> String {
    c.to_italian()
}

fn day(d: NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

fn instant(t: DateTime<Utc>) -> String {
    Cell::DateTime(t).display()
}

/// A date a clerk typed: `gg/mm/aaaa`, or `aaaa-mm-gg` as date fields
/// send it. Empty: none. Else why not, naming the field.
fn parse_day(field: &str, text: &str) -> Result<Option<NaiveDate>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(t, "%d/%m/%Y"))
        .map(Some)
        .map_err(|_| format!("{field}: «{t}» non è una data (gg/mm/aaaa)"))
}

fn opt(text: &str) -> Option<String> {
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

/// The Italian name of a flow line's outcome code.
fn outcome_label(code: u8) -> &'static str {
    match code {
        0 => "Eseguito",
        3 => "Revocato",
        4 => "Eseguito in stand-in",
        8 => "Stand-in senza ricevuta",
        9 => "Eseguito senza ricevuta",
        _ => "Sconosciuto",
    }
}

/// A match status as a clerk reads it.
fn status_label(status: Option<&str>) -> &'static str {
    match status {
        Some("MATCHED") => "Abbinato",
        Some("MANUAL") => "Regolarizzato a mano",
        Some("AMOUNT_MISMATCH") => "Importo diverso dal flusso",
        Some("SINGLE_PAYMENT") => "Pagamento singolo",
        Some("UNMATCHED") => "Non abbinato",
        _ => "Non riconciliato",
    }
}

fn method_label(method: Option<&str>) -> &'static str {
    match method {
        Some("FLOW_ID") => "Identificativo del flusso nella causale",
        Some("REFERENCE") => "Riferimento del bonifico (TRN)",
        Some("FLOW_ID_IN_TEXT") => "Identificativo del flusso nel testo della causale",
        Some("SINGLE_PAYMENT") => "Pagamento singolo (/RFB/, /RFS/)",
        Some("MANUAL") => "A mano",
        _ => "",
    }
}

/// The statuses a movements list filters by, with their names.
const STATUSES: &[(&str, &str)] = &[
    ("MATCHED", "Abbinato"),
    ("MANUAL", "Regolarizzato a mano"),
    ("AMOUNT_MISMATCH", "Importo diverso dal flusso"),
    ("UNMATCHED", "Non abbinato"),
    ("SINGLE_PAYMENT", "Pagamento singolo"),
    ("NONE", "Non riconciliato (non sospesi o altro conto)"),
];

fn anomaly_name(code: &str) -> &str {
    ANOMALY_CLASSES
        .iter()
        .find(|(k, _, _)| *k == code)
        .map_or(code, |(_, name, _)| name)
}

fn class_name(code: &str) -> &str {
    LINE_CLASSES
        .iter()
        .find(|(k, _, _)| *k == code)
        .map_or(code, |(_, name, _)| name)
}

fn yes_no(b: bool) -> &'static str {
    if b { "Sì" } else { "No" }
}

/// How many rows to read: a page (and one more, to know if another
/// follows), or a whole export.
fn rows_for(params: &ListParams) -> (u64, u32) {
    match params.export() {
        Some(_) => (0, MAX_EXPORT_ROWS),
        None => (
            u64::from(params.page() - 1) * u64::from(PAGE_ROWS),
            PAGE_ROWS,
        ),
    }
}

/// An export that would be cut: the clerk narrows the search instead.
fn too_many() -> Response {
    super::simple_error(
        StatusCode::BAD_REQUEST,
        &format!(
            "La ricerca trova più di {} righe: restringerla (per esempio per date) prima di esportarla.",
            ui::italian_count(u64::from(MAX_EXPORT_ROWS))
        ),
    )
}

// ---------------------------------------------------------------- receipts

#[derive(Debug, Default, Deserialize)]
struct ReceiptFilters {
    #[serde(default)]
    iuv: String,
    #[serde(default)]
    avviso: String,
    #[serde(default)]
    debitore: String,
    #[serde(default)]
    dal: String,
    #[serde(default)]
    al: String,
    #[serde(default)]
    anomalie: String,
    #[serde(flatten)]
    list: ListParams,
}

#[derive(Template)]
#[template(path = "backoffice/receipts.html")]
struct ReceiptsPage<'a> {
    chrome: Chrome,
    f: &'a ReceiptFilters,
    error: Option<String>,
    table: Table,
}

const RECEIPT_SORTS: &[&str] = &[
    "ricezione",
    "pagamento",
    "iuv",
    "avviso",
    "importo",
    "debitore",
];

async fn receipts_list(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(f): Query<ReceiptFilters>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let chrome = signed.chrome(&state, "/backoffice/ricevute").await;
    // By payment date, newest first: what a clerk looks for, and the
    // order whose index also answers a range of payment dates.
    let sort_key = f.list.sort(RECEIPT_SORTS, "pagamento");
    // Newest first unless asked otherwise.
    let descending = if f.list.ordina.is_empty() {
        true
    } else {
        f.list.descending()
    };
    let filters = vec![
        ("iuv", f.iuv.trim().to_string()),
        ("avviso", f.avviso.trim().to_string()),
        ("debitore", f.debitore.trim().to_uppercase()),
        ("dal", f.dal.trim().to_string()),
        ("al", f.al.trim().to_string()),
        (
            "anomalie",
            if f.anomalie.is_empty() {
                String::new()
            } else {
                "1".into()
            },
        ),
    ];
    let urls = ListUrls {
        path: "/backoffice/ricevute",
        filters,
        sort: sort_key,
        descending,
    };
    let dates = parse_day("Pagata dal", &f.dal)
        .and_then(|from| parse_day("Pagata fino al", &f.al).map(|to| (from, to)));
    let (from, to) = match dates {
        Ok(d) => d,
        Err(message) => {
            let table = Table::new(&receipts_sheet(&[]), &[], &[], &urls, 1, false);
            return ui::page_with_status(
                &ReceiptsPage {
                    chrome,
                    f: &f,
                    error: Some(message),
                    table,
                },
                StatusCode::BAD_REQUEST,
            );
        }
    };
    let rome_midnight =
        |d: NaiveDate| incasso_core::time::from_rome(d.and_hms_opt(0, 0, 0).unwrap_or_default());
    let (offset, limit) = rows_for(&f.list);
    let query = ReceiptQuery {
        iuv: opt(&f.iuv),
        notice: opt(&f.avviso),
        debtor: opt(&f.debitore).map(|d| d.to_uppercase()),
        paid_from: from.map(rome_midnight),
        paid_before: to.and_then(|d| d.succ_opt()).map(rome_midnight),
        only_anomalies: !f.anomalie.is_empty(),
        offices: None,
        sort: match sort_key {
            "pagamento" => ReceiptSort::Paid,
            "iuv" => ReceiptSort::Iuv,
            "avviso" => ReceiptSort::Notice,
            "importo" => ReceiptSort::Amount,
            "debitore" => ReceiptSort::Debtor,
            _ => ReceiptSort::Received,
        },
        descending,
        offset,
        limit,
    };
    let ctx = signed.ctx(&state);
    let found = match receipts::search(&ctx, &ente, query).await {
        Ok(found) => found,
        Err(e) if e.kind == Kind::Invalid => {
            let table = Table::new(&receipts_sheet(&[]), &[], &[], &urls, 1, false);
            return ui::page_with_status(
                &ReceiptsPage {
                    chrome,
                    f: &f,
                    error: Some(e.detail),
                    table,
                },
                StatusCode::BAD_REQUEST,
            );
        }
        Err(e) => return error_page(chrome, &e),
    };
    let sheet = receipts_sheet(&found.items);
    if let Some(format) = f.list.export() {
        if found.has_next {
            return too_many();
        }
        return ui::export(&sheet, format, "ricevute");
    }
    let links: Vec<Option<String>> = found
        .items
        .iter()
        .map(|r| {
            Some(format!(
                "/backoffice/ricevute/{}",
                ui::query_value(&r.receipt_id)
            ))
        })
        .collect();
    let table = Table::new(
        &sheet,
        &[
            "",
            "iuv",
            "avviso",
            "debitore",
            "importo",
            "pagamento",
            "ricezione",
            "",
            "",
            "",
        ],
        &links,
        &urls,
        f.list.page(),
        found.has_next,
    );
    page(&ReceiptsPage {
        chrome,
        f: &f,
        error: None,
        table,
    })
}

fn receipts_sheet(rows: &[incasso_store::reporting::ReceiptRow]) -> Sheet {
    let mut sheet = Sheet::new(
        "Ricevute",
        &[
            "Ricevuta",
            "IUV",
            "Numero avviso",
            "Debitore",
            "Importo",
            "Pagata il",
            "Ricevuta il",
            "Esito",
            "PSP",
            "Anomalia",
        ],
    );
    for r in rows {
        sheet.push(vec![
            Cell::text(&r.receipt_id),
            Cell::text(&r.iuv),
            Cell::text(&r.notice_number),
            Cell::opt_text(r.debtor.clone()),
            Cell::Money(r.amount),
            r.payment_date_time.map_or(Cell::Empty, Cell::DateTime),
            Cell::DateTime(r.received_at),
            Cell::text(&r.outcome),
            Cell::text(if r.psp_name.is_empty() {
                &r.psp_id
            } else {
                &r.psp_name
            }),
            Cell::opt_text(r.anomaly.as_deref().map(receipt_anomaly)),
        ]);
    }
    sheet
}

/// A receipt's anomaly as a clerk reads it.
fn receipt_anomaly(code: &str) -> String {
    match code {
        "DOUBLE_PAYMENT" => "Doppio pagamento (da rimborsare)",
        "UNKNOWN_NOTICE" => "Avviso sconosciuto (da verificare)",
        "POSITION_CANCELLED" => "Posizione annullata (da rimborsare)",
        "NOT_PAYABLE" => "Posizione non pagabile (da verificare)",
        "AMOUNT_MISMATCH" => "Importo diverso dall'avviso",
        "KO_OUTCOME" => "Esito negativo",
        other => other,
    }
    .to_string()
}

#[derive(Template)]
#[template(path = "backoffice/receipt.html")]
struct ReceiptPage {
    chrome: Chrome,
    fields: Vec<(&'static str, String)>,
    transfers: Vec<Vec<String>>,
    xml_url: String,
    title: String,
}

async fn receipt_page(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let chrome = signed.chrome(&state, "/backoffice/ricevute").await;
    let d = match receipts::detail(&signed.ctx(&state), &ente, &id).await {
        Ok(d) => d,
        Err(e) => return error_page(chrome, &e),
    };
    let r = &d.row;
    let fields = vec![
        ("Identificativo della ricevuta", r.receipt_id.clone()),
        ("IUV", r.iuv.clone()),
        ("Numero avviso", r.notice_number.clone()),
        (
            "Posizione (IUPD)",
            r.iupd.clone().unwrap_or_else(|| "non nota".into()),
        ),
        ("Ufficio", r.office.clone().unwrap_or_default()),
        (
            "Debitore",
            match (&r.debtor, &r.debtor_name) {
                (Some(cf), Some(name)) => format!("{name} ({cf})"),
                (Some(cf), None) => cf.clone(),
                _ => String::new(),
            },
        ),
        ("Esito", r.outcome.clone()),
        ("Importo", format!("{} €", money(r.amount))),
        (
            "Commissione",
            r.fee.map(|f| format!("{} €", money(f))).unwrap_or_default(),
        ),
        (
            "Pagata il",
            r.payment_date_time.map(instant).unwrap_or_default(),
        ),
        ("Ricevuta da incasso il", instant(r.received_at)),
        ("PSP", format!("{} ({})", r.psp_name, r.psp_id)),
        ("Canale", d.channel_id.clone()),
        (
            "Metodo di pagamento",
            d.payment_method.clone().unwrap_or_default(),
        ),
        (
            "Data di applicazione",
            d.application_date.clone().unwrap_or_default(),
        ),
        (
            "Data di riversamento",
            d.transfer_date.clone().unwrap_or_default(),
        ),
        ("Stazione", d.station_id.clone()),
        ("Primitiva", d.primitive.clone()),
        ("Pagata in stand-in", yes_no(d.stand_in).into()),
        ("Ente titolare dell'avviso", d.owner_ente.clone()),
        (
            "Anomalia",
            r.anomaly
                .as_deref()
                .map(receipt_anomaly)
                .unwrap_or_default(),
        ),
        ("Rimborso", r.refund_status.clone().unwrap_or_default()),
    ];
    let transfers = transfers_of(&d.transfers_json);
    page(&ReceiptPage {
        chrome,
        title: format!("Ricevuta {}", r.receipt_id),
        xml_url: format!(
            "/backoffice/ricevute/{}/xml",
            ui::query_value(&r.receipt_id)
        ),
        fields,
        transfers,
    })
}

/// A receipt's transfers (stored as JSON) as rows: index, beneficiary,
/// IBAN, amount, description.
fn transfers_of(json: &str) -> Vec<Vec<String>> {
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str(json) else {
        return Vec::new();
    };
    let text = |v: &serde_json::Value, keys: &[&str]| -> String {
        keys.iter()
            .find_map(|k| v.get(*k))
            .map(|x| match x {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            })
            .unwrap_or_default()
    };
    items
        .iter()
        .map(|t| {
            let amount = t
                .get("amount")
                .and_then(serde_json::Value::as_i64)
                .map(|c| money(Cents(c)))
                .unwrap_or_else(|| text(t, &["amount"]));
            vec![
                text(t, &["idTransfer", "id_transfer", "index"]),
                text(
                    t,
                    &[
                        "fiscalCodePA",
                        "fiscal_code_pa",
                        "ente",
                        "organizationFiscalCode",
                    ],
                ),
                text(t, &["iban", "IBAN"]),
                amount,
                text(
                    t,
                    &[
                        "remittanceInformation",
                        "remittance_information",
                        "description",
                    ],
                ),
            ]
        })
        .collect()
}

async fn receipt_xml(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    match incasso_app::admin::receipt_xml(&signed.ctx(&state), &ente, &id).await {
        Ok(xml) => ui::download(
            xml.into_bytes(),
            "application/xml; charset=utf-8",
            &format!("ricevuta-{id}.xml"),
        ),
        Err(e) => error_page(signed.chrome(&state, "/backoffice/ricevute").await, &e),
    }
}

// ---------------------------------------------------------------- flows

#[derive(Debug, Default, Deserialize)]
struct FlowFilters {
    #[serde(default)]
    flusso: String,
    #[serde(default)]
    psp: String,
    #[serde(default)]
    dal: String,
    #[serde(default)]
    al: String,
    #[serde(default)]
    problemi: String,
    /// After a fetch from the Node: flows taken, known, refused.
    #[serde(default)]
    presi: String,
    #[serde(default)]
    noti: String,
    #[serde(default)]
    rifiutati: String,
    #[serde(flatten)]
    list: ListParams,
}

impl FlowFilters {
    /// What the last fetch from the Node did, in words.
    fn fetched(&self) -> Option<String> {
        if self.presi.is_empty() {
            return None;
        }
        let n = |s: &str| s.parse::<u64>().unwrap_or(0);
        Some(format!(
            "Flussi scaricati dal Nodo: {} nuovi, {} già presenti{}.",
            n(&self.presi),
            n(&self.noti),
            match n(&self.rifiutati) {
                0 => String::new(),
                k => format!(", {k} rifiutati (vedi il giornale degli eventi)"),
            }
        ))
    }
}

/// Fetches the Ente's new flows from the Node now, rather than at the
/// hourly job's next turn, and shows what came.
async fn flows_fetch(
    State(state): State<AppState>,
    signed: SignedIn,
    axum::Form(form): axum::Form<CsrfOnly>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    match digitfin::fetch(&signed.ctx(&state), &ente).await {
        Ok(report) => Redirect::to(&url(
            "/backoffice/flussi",
            &[
                ("presi", &report.taken.to_string()),
                ("noti", &report.known.to_string()),
                ("rifiutati", &report.refused.len().to_string()),
            ],
        ))
        .into_response(),
        Err(e) => error_page(signed.chrome(&state, "/backoffice/flussi").await, &e),
    }
}

#[derive(Template)]
#[template(path = "backoffice/flows.html")]
struct FlowsPage<'a> {
    chrome: Chrome,
    f: &'a FlowFilters,
    can_write: bool,
    error: Option<String>,
    upload_error: Option<String>,
    table: Table,
}

const FLOW_SORTS: &[&str] = &["id", "data", "regolamento", "psp", "importo", "pagamenti"];

async fn flows_list(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(f): Query<FlowFilters>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    flows_page(&state, &signed, &ente, &f, None).await
}

async fn flows_page(
    state: &AppState,
    signed: &SignedIn,
    ente: &str,
    f: &FlowFilters,
    upload_error: Option<(StatusCode, String)>,
) -> Response {
    let chrome = signed.chrome(state, "/backoffice/flussi").await;
    let sort_key = f.list.sort(FLOW_SORTS, "data");
    let descending = if f.list.ordina.is_empty() {
        true
    } else {
        f.list.descending()
    };
    let urls = ListUrls {
        path: "/backoffice/flussi",
        filters: vec![
            ("flusso", f.flusso.trim().to_string()),
            ("psp", f.psp.trim().to_string()),
            ("dal", f.dal.trim().to_string()),
            ("al", f.al.trim().to_string()),
            (
                "problemi",
                if f.problemi.is_empty() {
                    String::new()
                } else {
                    "1".into()
                },
            ),
        ],
        sort: sort_key,
        descending,
    };
    let can_write = may_write(signed, ente);
    let bad =
        |chrome: Chrome, status: StatusCode, error: Option<String>, upload: Option<String>| {
            let table = Table::new(&flows_sheet(&[]), &[], &[], &urls, 1, false);
            ui::page_with_status(
                &FlowsPage {
                    chrome,
                    f,
                    can_write,
                    error,
                    upload_error: upload,
                    table,
                },
                status,
            )
        };
    let dates = parse_day("Regolati dal", &f.dal)
        .and_then(|from| parse_day("Regolati fino al", &f.al).map(|to| (from, to)));
    let (from, to) = match dates {
        Ok(d) => d,
        Err(message) => return bad(chrome, StatusCode::BAD_REQUEST, Some(message), None),
    };
    let (offset, limit) = rows_for(&f.list);
    let query = FlowQuery {
        flow_id: opt(&f.flusso),
        psp: opt(&f.psp),
        settled_from: from,
        settled_to: to,
        only_problems: !f.problemi.is_empty(),
        only_unpaid: false,
        sort: match sort_key {
            "id" => FlowSort::FlowId,
            "regolamento" => FlowSort::SettlementDate,
            "psp" => FlowSort::Psp,
            "importo" => FlowSort::Total,
            "pagamenti" => FlowSort::Lines,
            _ => FlowSort::FlowDate,
        },
        descending,
        offset,
        limit,
    };
    let found = match digitfin::search_flows(&signed.ctx(state), ente, query).await {
        Ok(found) => found,
        Err(e) => return error_page(chrome, &e),
    };
    let sheet = flows_sheet(&found.items);
    if let Some(format) = f.list.export() {
        if found.has_next {
            return too_many();
        }
        return ui::export(&sheet, format, "flussi");
    }
    let links: Vec<Option<String>> = found
        .items
        .iter()
        .map(|r| Some(flow_url(&r.flow.flow_id)))
        .collect();
    let table = Table::new(
        &sheet,
        &[
            "id",
            "data",
            "",
            "regolamento",
            "psp",
            "pagamenti",
            "importo",
            "",
            "",
        ],
        &links,
        &urls,
        f.list.page(),
        found.has_next,
    );
    let (status, upload_error) = match upload_error {
        Some((s, m)) => (s, Some(m)),
        None => (StatusCode::OK, None),
    };
    ui::page_with_status(
        &FlowsPage {
            chrome,
            f,
            can_write,
            error: None,
            upload_error,
            table,
        },
        status,
    )
}

fn flow_url(flow_id: &str) -> String {
    format!("/backoffice/flussi/{}", ui::query_value(flow_id))
}

fn flows_sheet(rows: &[FlowRow]) -> Sheet {
    let mut sheet = Sheet::new(
        "Flussi di rendicontazione",
        &[
            "Flusso",
            "Data del flusso",
            "Riferimento del regolamento",
            "Data del regolamento",
            "PSP",
            "Pagamenti",
            "Importo",
            "Sospeso",
            "Problemi",
        ],
    );
    for r in rows {
        sheet.push(vec![
            Cell::text(&r.flow.flow_id),
            Cell::DateTime(r.flow.flow_date_time),
            Cell::text(&r.flow.settlement_ref),
            Cell::Date(r.flow.settlement_date),
            Cell::text(match &r.psp_name {
                Some(n) if !n.is_empty() => format!("{n} ({})", r.flow.psp_id),
                _ => r.flow.psp_id.clone(),
            }),
            Cell::Int(r.flow.lines),
            Cell::Money(r.flow.lines_total),
            Cell::opt_text(r.movement_id.clone()),
            Cell::text(&r.flow.problems),
        ]);
    }
    sheet
}

/// An upload's parts: the CSRF field, the file, and the other fields.
struct Upload {
    csrf: String,
    file: Option<(String, Vec<u8>)>,
    fields: Vec<(String, String)>,
}

/// Reads a multipart upload, or why not in Italian.
async fn read_upload(mut multipart: Multipart) -> Result<Upload, String> {
    let mut up = Upload {
        csrf: String::new(),
        file: None,
        fields: Vec::new(),
    };
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return Err(format!(
                    "File: il caricamento non è riuscito ({}); il limite è di {} MB.",
                    e.body_text(),
                    MAX_FILE_BYTES / (1024 * 1024)
                ));
            }
        };
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            let file_name = field.file_name().unwrap_or("file").to_string();
            let bytes = field.bytes().await.map_err(|e| {
                format!(
                    "File: il caricamento non è riuscito ({}); il limite è di {} MB.",
                    e.body_text(),
                    MAX_FILE_BYTES / (1024 * 1024)
                )
            })?;
            up.file = Some((file_name, bytes.to_vec()));
        } else {
            let text = field.text().await.unwrap_or_default();
            if name == "csrf" {
                up.csrf = text;
            } else {
                up.fields.push((name, text));
            }
        }
    }
    Ok(up)
}

async fn flow_upload(
    State(state): State<AppState>,
    signed: SignedIn,
    multipart: Multipart,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let no_filters = FlowFilters::default();
    let up = match read_upload(multipart).await {
        Ok(up) => up,
        Err(message) => {
            return flows_page(
                &state,
                &signed,
                &ente,
                &no_filters,
                Some((StatusCode::BAD_REQUEST, message)),
            )
            .await;
        }
    };
    if let Err(r) = signed.check_csrf(&up.csrf) {
        return r;
    }
    let Some((_, bytes)) = up.file.filter(|(_, b)| !b.is_empty()) else {
        return flows_page(
            &state,
            &signed,
            &ente,
            &no_filters,
            Some((
                StatusCode::BAD_REQUEST,
                "File: scegliere il file XML del flusso di rendicontazione da caricare.".into(),
            )),
        )
        .await;
    };
    match digitfin::take_flow(&signed.ctx(&state), &ente, &bytes).await {
        Ok((flow_id, intake)) => {
            let outcome = match intake {
                FlowIntake::Stored => "nuovo",
                FlowIntake::Replaced => "sostituito",
                FlowIntake::AlreadyKnown => "gia-presente",
                FlowIntake::Outdated => "superato",
            };
            Redirect::to(&url(&flow_url(&flow_id), &[("caricato", outcome)])).into_response()
        }
        Err(e) if matches!(e.kind, Kind::Invalid | Kind::Conflict | Kind::NotFound) => {
            let status = crate::error::status_of(e.kind);
            flows_page(
                &state,
                &signed,
                &ente,
                &no_filters,
                Some((
                    status,
                    format!("File: il flusso non è stato acquisito: {}", e.detail),
                )),
            )
            .await
        }
        Err(e) => error_page(signed.chrome(&state, "/backoffice/flussi").await, &e),
    }
}

#[derive(Debug, Default, Deserialize)]
struct FlowPageQuery {
    #[serde(default)]
    classe: String,
    #[serde(default)]
    caricato: String,
    #[serde(flatten)]
    list: ListParams,
}

#[derive(Template)]
#[template(path = "backoffice/flow.html")]
struct FlowPage<'a> {
    chrome: Chrome,
    flow_id: String,
    fields: Vec<(&'static str, String)>,
    problems: String,
    /// The sospeso that pays it, and its page.
    movement: Option<(String, String)>,
    notice: Option<&'static str>,
    breakdown: Vec<BreakdownView>,
    breakdown_total: String,
    classes: Vec<(&'static str, &'static str, bool)>,
    class: &'a str,
    table: Table,
    here: String,
}

/// A part of a breakdown, as the page shows it.
struct BreakdownView {
    accertamento: String,
    description: String,
    chapter: String,
    amount: String,
}

fn breakdown_views(rows: &[BreakdownRow]) -> (Vec<BreakdownView>, String) {
    let total: i64 = rows.iter().map(|r| r.amount.0).sum();
    let views = rows
        .iter()
        .map(|r| BreakdownView {
            accertamento: match &r.accertamento {
                Some(a) => format!("{}/{}", a.year, a.code),
                None => "Non attribuito".into(),
            },
            description: r.description.clone().unwrap_or_else(|| {
                if r.accertamento.is_none() {
                    "Nessun accertamento: da attribuire a mano".into()
                } else {
                    String::new()
                }
            }),
            chapter: match (&r.chapter, &r.article) {
                (Some(c), Some(a)) => format!("{c}/{a}"),
                (Some(c), None) => c.clone(),
                _ => String::new(),
            },
            amount: money(r.amount),
        })
        .collect();
    (views, money(Cents(total)))
}

async fn flow_page(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(flow_id): Path<String>,
    Query(q): Query<FlowPageQuery>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let chrome = signed.chrome(&state, "/backoffice/flussi").await;
    let ctx = signed.ctx(&state);
    let flow = match digitfin::flow(&ctx, &ente, &flow_id).await {
        Ok(f) => f,
        Err(e) => return error_page(chrome, &e),
    };
    let class = q.classe.trim();
    let class = LINE_CLASSES
        .iter()
        .find(|(k, _, _)| *k == class)
        .map_or("", |(k, _, _)| *k);
    let (page_no, limit) = match q.list.export() {
        Some(_) => (0, MAX_EXPORT_ROWS),
        None => (q.list.page() - 1, PAGE_ROWS),
    };
    let lines = match digitfin::flow_lines(
        &ctx,
        &ente,
        &flow_id,
        Some(class).filter(|c| !c.is_empty()),
        page_no,
        limit,
    )
    .await
    {
        Ok(l) => l,
        Err(e) => return error_page(chrome, &e),
    };
    let mut sheet = Sheet::new(
        format!("Pagamenti del flusso {flow_id}"),
        &[
            "Riga",
            "IUV",
            "Indice",
            "Importo",
            "Esito",
            "Posizione",
            "Ricevuta",
            "Tesoreria",
            "Classe",
        ],
    );
    for l in &lines.items {
        sheet.push(vec![
            Cell::Int(i64::from(l.line)),
            Cell::text(&l.iuv),
            Cell::Int(i64::from(l.transfer_index)),
            Cell::Money(l.amount),
            Cell::text(outcome_label(l.outcome)),
            Cell::text(yes_no(l.position)),
            Cell::text(yes_no(l.receipt)),
            Cell::text(yes_no(l.treasury)),
            Cell::text(class_name(l.class)),
        ]);
    }
    if let Some(format) = q.list.export() {
        if lines.has_next {
            return too_many();
        }
        return ui::export(&sheet, format, &format!("flusso-{flow_id}"));
    }
    let breakdown = match digitfin::breakdown_rows(&ctx, &ente, BreakdownOf::Flow(&flow_id)).await {
        Ok(b) => b,
        Err(e) => return error_page(chrome, &e),
    };
    let (breakdown, breakdown_total) = breakdown_views(&breakdown);
    let here = flow_url(&flow_id);
    let urls = ListUrls {
        path: &here,
        filters: vec![("classe", class.to_string())],
        sort: "",
        descending: false,
    };
    let table = Table::new(&sheet, &[], &[], &urls, q.list.page(), lines.has_next);
    let notice = match q.caricato.as_str() {
        "nuovo" => Some("Flusso acquisito."),
        "sostituito" => Some("Flusso acquisito: sostituisce la versione precedente."),
        "gia-presente" => {
            Some("Questa versione del flusso era già stata acquisita: nulla è cambiato.")
        }
        "superato" => Some(
            "Il flusso caricato è una versione precedente a quella già acquisita: conservato, ma non usato.",
        ),
        _ => None,
    };
    let movement = flow
        .movement_id
        .as_ref()
        .map(|m| (m.clone(), movement_url(m)));
    let fields = vec![
        ("Data del flusso", instant(flow.flow.flow_date_time)),
        (
            "PSP",
            match &flow.psp_name {
                Some(n) if !n.is_empty() => format!("{n} ({})", flow.flow.psp_id),
                _ => flow.flow.psp_id.clone(),
            },
        ),
        (
            "Riferimento del regolamento",
            flow.flow.settlement_ref.clone(),
        ),
        ("Data del regolamento", day(flow.flow.settlement_date)),
        ("Pagamenti", flow.flow.lines.to_string()),
        (
            "Totale dichiarato",
            format!("{} €", money(flow.flow.declared_total)),
        ),
        (
            "Totale dei pagamenti",
            format!("{} €", money(flow.flow.lines_total)),
        ),
        ("Ricevuto il", instant(flow.received_at)),
    ];
    page(&FlowPage {
        chrome,
        flow_id: flow.flow.flow_id.clone(),
        fields,
        problems: flow.flow.problems.clone(),
        movement,
        notice,
        breakdown,
        breakdown_total,
        classes: LINE_CLASSES
            .iter()
            .map(|(k, name, _)| (*k, *name, *k == class))
            .collect(),
        class,
        table,
        here,
    })
}

// ---------------------------------------------------------------- treasury

#[derive(Debug, Default, Deserialize)]
struct MovementFilters {
    #[serde(default)]
    stato: String,
    #[serde(default)]
    testo: String,
    #[serde(default)]
    dal: String,
    #[serde(default)]
    al: String,
    /// After a run: what it found, to show (numbers only: a link cannot
    /// make the page say anything else).
    #[serde(default)]
    flussi: String,
    #[serde(default)]
    sospesi: String,
    #[serde(default)]
    abbinati: String,
    #[serde(default)]
    anomalie: String,
    /// After an upload: how many movements were new.
    #[serde(default)]
    nuovi: String,
    #[serde(flatten)]
    list: ListParams,
}

#[derive(Template)]
#[template(path = "backoffice/treasury.html")]
struct TreasuryPage<'a> {
    chrome: Chrome,
    f: &'a MovementFilters,
    statuses: &'static [(&'static str, &'static str)],
    can_write: bool,
    notice: Option<String>,
    error: Option<String>,
    upload_error: Option<String>,
    table: Table,
}

const MOVEMENT_SORTS: &[&str] = &["data", "numero", "importo", "stato"];

async fn treasury_list(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(f): Query<MovementFilters>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    treasury_page(&state, &signed, &ente, &f, None).await
}

async fn treasury_page(
    state: &AppState,
    signed: &SignedIn,
    ente: &str,
    f: &MovementFilters,
    upload_error: Option<(StatusCode, String)>,
) -> Response {
    let chrome = signed.chrome(state, "/backoffice/tesoreria").await;
    let sort_key = f.list.sort(MOVEMENT_SORTS, "data");
    let descending = if f.list.ordina.is_empty() {
        true
    } else {
        f.list.descending()
    };
    let status = STATUSES
        .iter()
        .find(|(k, _)| *k == f.stato.trim())
        .map_or("", |(k, _)| *k);
    let urls = ListUrls {
        path: "/backoffice/tesoreria",
        filters: vec![
            ("stato", status.to_string()),
            ("testo", f.testo.trim().to_string()),
            ("dal", f.dal.trim().to_string()),
            ("al", f.al.trim().to_string()),
        ],
        sort: sort_key,
        descending,
    };
    let can_write = may_write(signed, ente);
    let number = |v: &str| v.parse::<u64>().unwrap_or(0);
    let notice = if !f.flussi.is_empty() {
        Some(format!(
            "Riconciliazione eseguita: {} flussi, {} sospesi aperti, {} abbinati, {} anomalie.",
            number(&f.flussi),
            number(&f.sospesi),
            number(&f.abbinati),
            number(&f.anomalie)
        ))
    } else if !f.nuovi.is_empty() {
        Some(format!(
            "File della tesoreria acquisito: {} movimenti nuovi. Eseguire la riconciliazione per abbinarli ai flussi.",
            f.nuovi.parse::<u64>().unwrap_or(0)
        ))
    } else {
        None
    };
    let dates = parse_day("Contabilizzati dal", &f.dal)
        .and_then(|from| parse_day("Contabilizzati fino al", &f.al).map(|to| (from, to)));
    let (from, to) = match dates {
        Ok(d) => d,
        Err(message) => {
            let table = Table::new(&movements_sheet(&[]), &[], &[], &urls, 1, false);
            return ui::page_with_status(
                &TreasuryPage {
                    chrome,
                    f,
                    statuses: STATUSES,
                    can_write,
                    notice,
                    error: Some(message),
                    upload_error: None,
                    table,
                },
                StatusCode::BAD_REQUEST,
            );
        }
    };
    let (offset, limit) = rows_for(&f.list);
    let query = MovementQuery {
        status: Some(status.to_string()).filter(|s| !s.is_empty()),
        text: opt(&f.testo),
        booked_from: from,
        booked_to: to,
        sort: match sort_key {
            "numero" => MovementSort::Number,
            "importo" => MovementSort::Amount,
            "stato" => MovementSort::Status,
            _ => MovementSort::Booking,
        },
        descending,
        offset,
        limit,
    };
    let found = match digitfin::search_movements(&signed.ctx(state), ente, query).await {
        Ok(found) => found,
        Err(e) => return error_page(chrome, &e),
    };
    let sheet = movements_sheet(&found.items);
    if let Some(format) = f.list.export() {
        if found.has_next {
            return too_many();
        }
        return ui::export(&sheet, format, "movimenti-tesoreria");
    }
    let links: Vec<Option<String>> = found
        .items
        .iter()
        .map(|r| Some(movement_url(&r.movement.movement_id)))
        .collect();
    let table = Table::new(
        &sheet,
        &["", "numero", "data", "importo", "", "stato", "", ""],
        &links,
        &urls,
        f.list.page(),
        found.has_next,
    );
    let (status, upload_error) = match upload_error {
        Some((s, m)) => (s, Some(m)),
        None => (StatusCode::OK, None),
    };
    ui::page_with_status(
        &TreasuryPage {
            chrome,
            f,
            statuses: STATUSES,
            can_write,
            notice,
            error: None,
            upload_error,
            table,
        },
        status,
    )
}

fn movement_url(movement_id: &str) -> String {
    url("/backoffice/tesoreria/movimento", &[("id", movement_id)])
}

fn movements_sheet(rows: &[incasso_store::reporting::MovementRow]) -> Sheet {
    let mut sheet = Sheet::new(
        "Movimenti della tesoreria",
        &[
            "Movimento",
            "Numero",
            "Data contabile",
            "Importo",
            "Causale",
            "Stato",
            "Metodo",
            "Flusso",
        ],
    );
    for r in rows {
        let m = &r.movement;
        sheet.push(vec![
            Cell::text(&m.movement_id),
            Cell::text(&m.document_number),
            Cell::Date(m.booking_date),
            Cell::Money(m.amount),
            Cell::text(&m.causale),
            Cell::text(status_label(r.status.as_deref())),
            Cell::text(method_label(r.method.as_deref())),
            Cell::opt_text(r.flow_id.clone()),
        ]);
    }
    sheet
}

async fn treasury_upload(
    State(state): State<AppState>,
    signed: SignedIn,
    multipart: Multipart,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let no_filters = MovementFilters::default();
    let back = |message: String, status: StatusCode| {
        let (state, signed, ente, no_filters) = (&state, &signed, &ente, &no_filters);
        async move { treasury_page(state, signed, ente, no_filters, Some((status, message))).await }
    };
    let up = match read_upload(multipart).await {
        Ok(up) => up,
        Err(message) => return back(message, StatusCode::BAD_REQUEST).await,
    };
    if let Err(r) = signed.check_csrf(&up.csrf) {
        return r;
    }
    let layout = up
        .fields
        .iter()
        .find(|(k, _)| k == "tracciato")
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty());
    let Some((_, bytes)) = up.file.filter(|(_, b)| !b.is_empty()) else {
        return back(
            "File: scegliere il file della tesoreria da caricare.".into(),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    match digitfin::take_treasury(&signed.ctx(&state), &ente, layout.as_deref(), bytes).await {
        Ok(new) => Redirect::to(&url(
            "/backoffice/tesoreria",
            &[("nuovi", &new.to_string())],
        ))
        .into_response(),
        Err(e) if matches!(e.kind, Kind::Invalid | Kind::Conflict | Kind::NotFound) => {
            let field = if e.code.contains("LAYOUT") {
                "Tracciato"
            } else {
                "File"
            };
            back(
                format!("{field}: il file non è stato acquisito: {}", e.detail),
                crate::error::status_of(e.kind),
            )
            .await
        }
        Err(e) => error_page(signed.chrome(&state, "/backoffice/tesoreria").await, &e),
    }
}

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

async fn run(
    State(state): State<AppState>,
    signed: SignedIn,
    axum::Form(form): axum::Form<CsrfOnly>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    match digitfin::run(&signed.ctx(&state), &ente).await {
        Ok(s) => {
            let anomalies: usize = s.anomalies.values().sum();
            Redirect::to(&url(
                "/backoffice/tesoreria",
                &[
                    ("flussi", &s.flows.to_string()),
                    ("sospesi", &s.open_sospesi.to_string()),
                    ("abbinati", &s.matched.to_string()),
                    ("anomalie", &anomalies.to_string()),
                ],
            ))
            .into_response()
        }
        Err(e) => error_page(signed.chrome(&state, "/backoffice/tesoreria").await, &e),
    }
}

// ---------------------------------------------------------------- anomalies

#[derive(Debug, Default, Deserialize)]
struct AnomalyFilters {
    #[serde(default)]
    classe: String,
    #[serde(flatten)]
    list: ListParams,
}

struct AnomalyClassView {
    code: &'static str,
    name: &'static str,
    explanation: &'static str,
    count: i64,
    amount: String,
    url: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "backoffice/treasury_anomalies.html")]
struct AnomaliesPage {
    chrome: Chrome,
    classes: Vec<AnomalyClassView>,
    class_name: String,
    table: Table,
}

async fn anomalies(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(f): Query<AnomalyFilters>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let chrome = signed.chrome(&state, "/backoffice/tesoreria").await;
    let ctx = signed.ctx(&state);
    let class = ANOMALY_CLASSES
        .iter()
        .find(|(k, _, _)| *k == f.classe.trim())
        .map_or("", |(k, _, _)| *k);
    let counts = match digitfin::anomaly_counts(&ctx, &ente).await {
        Ok(c) => c,
        Err(e) => return error_page(chrome, &e),
    };
    let (page_no, limit) = match f.list.export() {
        Some(_) => (0, MAX_EXPORT_ROWS),
        None => (f.list.page() - 1, PAGE_ROWS),
    };
    let found = match digitfin::anomalies_page(
        &ctx,
        &ente,
        Some(class).filter(|c| !c.is_empty()),
        page_no,
        limit,
    )
    .await
    {
        Ok(found) => found,
        Err(e) => return error_page(chrome, &e),
    };
    let mut sheet = Sheet::new("Anomalie", &["Classe", "Oggetto", "Dettaglio", "Importo"]);
    let mut links = Vec::new();
    for a in &found.items {
        sheet.push(vec![
            Cell::text(anomaly_name(&a.code)),
            Cell::text(&a.subject),
            Cell::text(&a.detail),
            a.amount.map_or(Cell::Empty, Cell::Money),
        ]);
        links.push(None);
    }
    if let Some(format) = f.list.export() {
        if found.has_next {
            return too_many();
        }
        return ui::export(&sheet, format, "anomalie");
    }
    // The subject is a movement or a flow: link it to its page.
    let mut table = Table::new(
        &sheet,
        &[],
        &links,
        &ListUrls {
            path: "/backoffice/tesoreria/anomalie",
            filters: vec![("classe", class.to_string())],
            sort: "",
            descending: false,
        },
        f.list.page(),
        found.has_next,
    );
    for (row, a) in table.rows.iter_mut().zip(&found.items) {
        if let Some(cell) = row.cells.get_mut(1) {
            cell.href = subject_url(&a.code, &a.subject);
        }
    }
    let classes = ANOMALY_CLASSES
        .iter()
        .map(|(code, name, explanation)| {
            let (count, amount) = counts
                .iter()
                .find(|(c, _, _)| c == code)
                .map_or((0, Cents(0)), |(_, n, a)| (*n, *a));
            AnomalyClassView {
                code,
                name,
                explanation,
                count,
                amount: money(amount),
                url: url("/backoffice/tesoreria/anomalie", &[("classe", code)]),
                current: *code == class,
            }
        })
        .collect();
    page(&AnomaliesPage {
        chrome,
        classes,
        class_name: if class.is_empty() {
            String::new()
        } else {
            anomaly_name(class).to_string()
        },
        table,
    })
}

/// The page of what an anomaly is about: a movement, a flow, or nothing
/// the back office shows (an avviso).
fn subject_url(code: &str, subject: &str) -> Option<String> {
    match code {
        "MOVEMENT_WITHOUT_FLOW"
        | "AMOUNT_MISMATCH"
        | "ACCOUNT_NOT_OF_ENTE"
        | "MANUAL_TIE_MISMATCH" => Some(movement_url(subject)),
        "FLOW_PAYMENT_NOT_APPLIED" => None,
        _ => Some(flow_url(subject)),
    }
}

// ---------------------------------------------------------------- lines

#[derive(Debug, Default, Deserialize)]
struct LineFilters {
    #[serde(default)]
    classe: String,
    /// Where the page starts: the cursor the previous page gave.
    #[serde(default)]
    dopo: String,
    #[serde(default)]
    formato: String,
}

#[derive(Template)]
#[template(path = "backoffice/treasury_lines.html")]
struct LinesPage {
    chrome: Chrome,
    classes: Vec<(&'static str, &'static str, &'static str, String, bool)>,
    class_name: String,
    table: Table,
}

async fn lines(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(f): Query<LineFilters>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let chrome = signed.chrome(&state, "/backoffice/tesoreria").await;
    let class = LINE_CLASSES
        .iter()
        .find(|(k, _, _)| *k == f.classe.trim())
        .map_or("", |(k, _, _)| *k);
    let export = ListParams {
        formato: f.formato.clone(),
        ..ListParams::default()
    }
    .export();
    // The classified lines are read flow by flow, ten thousand at most a
    // call: an export of more asks for a narrower class.
    let limit = if export.is_some() { 10_000 } else { PAGE_ROWS };
    let cursor = Some(f.dopo.trim()).filter(|c| !c.is_empty() && export.is_none());
    let found = match digitfin::lines(
        &signed.ctx(&state),
        &ente,
        None,
        Some(class).filter(|c| !c.is_empty()),
        cursor,
        Some(limit),
    )
    .await
    {
        Ok(found) => found,
        Err(e) => return error_page(chrome, &e),
    };
    let mut sheet = Sheet::new(
        "Pagamenti rendicontati per classe",
        &[
            "Flusso",
            "Riga",
            "IUV",
            "Indice",
            "Importo",
            "Esito",
            "Posizione",
            "Ricevuta",
            "Tesoreria",
            "Classe",
        ],
    );
    let mut links = Vec::new();
    for l in &found.items {
        sheet.push(vec![
            Cell::text(&l.flow_id),
            Cell::Int(i64::from(l.line)),
            Cell::text(&l.iuv),
            Cell::Int(i64::from(l.transfer_index)),
            Cell::Money(l.amount),
            Cell::text(outcome_label(l.outcome)),
            Cell::text(yes_no(l.position)),
            Cell::text(yes_no(l.receipt)),
            Cell::text(yes_no(l.treasury)),
            Cell::text(class_name(l.class)),
        ]);
        links.push(Some(flow_url(&l.flow_id)));
    }
    if let Some(format) = export {
        if found.next.is_some() {
            return too_many();
        }
        return ui::export(&sheet, format, "pagamenti-per-classe");
    }
    let urls = ListUrls {
        path: "/backoffice/tesoreria/righe",
        filters: vec![("classe", class.to_string())],
        sort: "",
        descending: false,
    };
    let mut table = Table::new(&sheet, &[], &links, &urls, 1, false);
    // Pages follow a cursor here: the lines are read flow by flow.
    table.next_url = found
        .next
        .as_ref()
        .map(|c| url(urls.path, &[("classe", class), ("dopo", c)]));
    table.prev_url = cursor.map(|_| url(urls.path, &[("classe", class)]));
    table.csv_url = url(urls.path, &[("classe", class), ("formato", "csv")]);
    table.xlsx_url = url(urls.path, &[("classe", class), ("formato", "xlsx")]);
    page(&LinesPage {
        chrome,
        classes: LINE_CLASSES
            .iter()
            .map(|(k, name, explanation)| {
                (
                    *k,
                    *name,
                    *explanation,
                    url("/backoffice/tesoreria/righe", &[("classe", k)]),
                    *k == class,
                )
            })
            .collect(),
        class_name: if class.is_empty() {
            String::new()
        } else {
            class_name(class).to_string()
        },
        table,
    })
}

// ---------------------------------------------------------------- movement

#[derive(Debug, Default, Deserialize)]
struct MovementQueryParams {
    #[serde(default)]
    id: String,
    /// After a tie or its undoing: what happened.
    #[serde(default)]
    esito: String,
}

struct CandidateView {
    flow_id: String,
    label: String,
    checked: bool,
}

#[derive(Template)]
#[template(path = "backoffice/treasury_movement.html")]
struct MovementPage {
    chrome: Chrome,
    id: String,
    fields: Vec<(&'static str, String)>,
    notice: Option<String>,
    error: Option<String>,
    can_write: bool,
    /// A reversale can be proposed: matched, or tied by hand.
    settled: bool,
    breakdown: Vec<BreakdownView>,
    breakdown_total: String,
    breakdown_error: Option<String>,
    tie_flows: Vec<(String, String)>,
    tie_note: String,
    tie_by: String,
    tieable: bool,
    candidates: Vec<CandidateView>,
    note: String,
    amount: String,
}

/// What a clerk sent with the regularization form, kept on a refusal.
#[derive(Default)]
struct TieForm {
    flows: Vec<String>,
    note: String,
}

async fn movement_page(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(q): Query<MovementQueryParams>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let notice = match q.esito.as_str() {
        "regolarizzato" => Some(
            "Sospeso regolarizzato a mano: la riconciliazione lo terrà collegato ai flussi scelti."
                .to_string(),
        ),
        "annullato" => {
            Some("Regolarizzazione annullata: la riconciliazione è stata rieseguita.".to_string())
        }
        _ => None,
    };
    movement_view(
        &state,
        &signed,
        &ente,
        &q.id,
        notice,
        None,
        TieForm::default(),
    )
    .await
}

/// The movement's page; with `error`, sent back with that status and
/// the form as the clerk filled it.
async fn movement_view(
    state: &AppState,
    signed: &SignedIn,
    ente: &str,
    id: &str,
    notice: Option<String>,
    error: Option<(StatusCode, String)>,
    form: TieForm,
) -> Response {
    let chrome = signed.chrome(state, "/backoffice/tesoreria").await;
    let ctx = signed.ctx(state);
    let view = match digitfin::movement(&ctx, ente, id).await {
        Ok(v) => v,
        Err(e) => return error_page(chrome, &e),
    };
    let m = &view.row.movement;
    let settled = matches!(view.row.status.as_deref(), Some("MATCHED" | "MANUAL"));
    let (breakdown, breakdown_total, breakdown_error) = if settled {
        match digitfin::breakdown_rows(&ctx, ente, BreakdownOf::Movement(id)).await {
            Ok(rows) => {
                let (v, t) = breakdown_views(&rows);
                (v, t, None)
            }
            Err(e) => (Vec::new(), String::new(), Some(e.detail)),
        }
    } else {
        (Vec::new(), String::new(), None)
    };
    let fields = vec![
        ("Movimento", m.movement_id.clone()),
        ("Numero del documento", m.document_number.clone()),
        ("Esercizio", m.year.to_string()),
        ("Conto", m.account.clone()),
        ("Documento", m.document.as_str().to_string()),
        ("Operazione", m.operation.as_str().to_string()),
        ("Data contabile", day(m.booking_date)),
        ("Data valuta", m.value_date.map(day).unwrap_or_default()),
        ("Importo", format!("{} €", money(m.amount))),
        ("Versante", m.payer.clone().unwrap_or_default()),
        ("Causale", m.causale.clone()),
        ("Riferimento (TRN)", m.trn.clone().unwrap_or_default()),
        (
            "Stato",
            status_label(view.row.status.as_deref()).to_string(),
        ),
        (
            "Metodo di abbinamento",
            method_label(view.row.method.as_deref()).to_string(),
        ),
    ];
    let tie_flows = view
        .tie
        .as_ref()
        .map(|t| {
            t.flow_ids
                .iter()
                .map(|f| (f.clone(), flow_url(f)))
                .collect()
        })
        .unwrap_or_default();
    let candidates = view
        .candidates
        .iter()
        .map(|f| CandidateView {
            label: format!(
                "{} — {} €, regolato il {}, PSP {}",
                f.flow.flow_id,
                money(f.flow.lines_total),
                day(f.flow.settlement_date),
                f.psp_name.clone().unwrap_or_else(|| f.flow.psp_id.clone())
            ),
            checked: form.flows.contains(&f.flow.flow_id),
            flow_id: f.flow.flow_id.clone(),
        })
        .collect();
    // A flow the automatic run linked by name (another amount) first
    // among the candidates is not needed: the clerk sees each one's amount.
    let (status, error) = match error {
        Some((s, e)) => (s, Some(e)),
        None => (StatusCode::OK, None),
    };
    let t = MovementPage {
        chrome,
        id: id.to_string(),
        notice,
        error,
        can_write: may_write(signed, ente),
        settled,
        breakdown,
        breakdown_total,
        breakdown_error,
        tie_note: view
            .tie
            .as_ref()
            .map(|t| t.note.clone())
            .unwrap_or_default(),
        tie_by: view
            .tie
            .as_ref()
            .map(|t| {
                format!(
                    "{}, il {}",
                    t.actor.trim_start_matches("operator:"),
                    instant(t.created_at)
                )
            })
            .unwrap_or_default(),
        tie_flows,
        tieable: view.tieable,
        candidates,
        note: form.note,
        amount: money(m.amount),
        fields,
    };
    ui::page_with_status(&t, status)
}

#[derive(Deserialize)]
struct ReversaleQuery {
    #[serde(default)]
    id: String,
    #[serde(default)]
    numero: String,
}

async fn reversale(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(q): Query<ReversaleQuery>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let number = if q.numero.trim().is_empty() {
        Ok(1)
    } else {
        q.numero
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=9_999_999).contains(n))
            .ok_or(())
    };
    let Ok(number) = number else {
        return movement_view(
            &state,
            &signed,
            &ente,
            &q.id,
            None,
            Some((
                StatusCode::BAD_REQUEST,
                "Numero della reversale: un numero intero da 1 a 9.999.999.".into(),
            )),
            TieForm::default(),
        )
        .await;
    };
    match digitfin::reversale(&signed.ctx(&state), &ente, &q.id, number).await {
        Ok(xml) => {
            let name: String =
                q.id.chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect();
            ui::download(
                xml.into_bytes(),
                "application/xml; charset=utf-8",
                &format!("reversale-{name}.xml"),
            )
        }
        Err(e) if matches!(e.kind, Kind::Conflict | Kind::Unprocessable) => {
            movement_view(
                &state,
                &signed,
                &ente,
                &q.id,
                None,
                Some((
                    crate::error::status_of(e.kind),
                    format!("Reversale: non si può proporre: {}", e.detail),
                )),
                TieForm::default(),
            )
            .await
        }
        Err(e) => error_page(signed.chrome(&state, "/backoffice/tesoreria").await, &e),
    }
}

/// The regularization form: `csrf`, `id`, one `flusso` per flow chosen,
/// `nota`. Read as pairs: a form repeats `flusso`.
async fn regularize(
    State(state): State<AppState>,
    signed: SignedIn,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Response {
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    if let Err(r) = signed.check_csrf(&get("csrf")) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let id = get("id");
    let form = TieForm {
        flows: pairs
            .iter()
            .filter(|(k, v)| k == "flusso" && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
            .collect(),
        note: get("nota"),
    };
    let ctx = signed.ctx(&state);
    match digitfin::regularize(&ctx, &ente, &id, &form.flows, &form.note).await {
        Ok(_) => Redirect::to(&url(
            "/backoffice/tesoreria/movimento",
            &[("id", &id), ("esito", "regolarizzato")],
        ))
        .into_response(),
        Err(e) if form_error(&e) => {
            let message = format!("Regolarizzazione non eseguita: {}", e.detail);
            movement_view(
                &state,
                &signed,
                &ente,
                &id,
                None,
                Some((crate::error::status_of(e.kind), message)),
                form,
            )
            .await
        }
        Err(e) => error_page(signed.chrome(&state, "/backoffice/tesoreria").await, &e),
    }
}

/// A refusal the clerk can act on in the form (the flows, the note, the
/// amounts, a flow taken), as opposed to a refusal of the page itself.
fn form_error(e: &AppError) -> bool {
    matches!(e.kind, Kind::Invalid | Kind::Conflict)
        || (e.kind == Kind::NotFound && e.code == "FLOW_UNKNOWN")
}

#[derive(Deserialize)]
struct UndoForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
}

async fn undo(
    State(state): State<AppState>,
    signed: SignedIn,
    axum::Form(form): axum::Form<UndoForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    match digitfin::undo_regularization(&signed.ctx(&state), &ente, &form.id).await {
        Ok(_) => Redirect::to(&url(
            "/backoffice/tesoreria/movimento",
            &[("id", &form.id), ("esito", "annullato")],
        ))
        .into_response(),
        Err(e) => error_page(signed.chrome(&state, "/backoffice/tesoreria").await, &e),
    }
}
