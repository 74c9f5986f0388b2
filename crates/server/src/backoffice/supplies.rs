//! Supplies (archivio delle forniture): the archive, the upload form, each
//! supply's page (its status while it loads, its per-row report, its
//! report and outcome files, its notices ZIP) and the resumption of an
//! interrupted load, which is the same file sent again.
//!
//! The upload is a multipart form whose first part is the CSRF field: it is
//! checked before the file is read, so a forged form never gets its file
//! into memory. A file that is not a supply in the layout chosen is refused
//! by the use case before anything is recorded.

use super::ui::{self, Chrome, ListParams, ListUrls, Table};
use super::{SignedIn, error_page, page, simple_error};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use incasso_app::bus;
use incasso_app::notices::{self, Selection};
use incasso_app::sheet::MAX_EXPORT_ROWS;
use incasso_core::access::{Access, Area};
use serde::Deserialize;

const SECTION: &str = "/backoffice/forniture";
/// Supplies per page of the archive.
const PER_PAGE: u32 = 50;
/// Row errors per page of a supply's report.
const ERRORS_PER_PAGE: u32 = 50;
/// How often a loading supply's page reloads itself, in seconds.
const REFRESH_SECS: &str = "2";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(SECTION, get(archive))
        .route(
            "/backoffice/forniture/carica",
            get(upload_form)
                .post(upload)
                .layer(DefaultBodyLimit::max(crate::bus_api::MAX_SUPPLY_BYTES)),
        )
        .route("/backoffice/forniture/{id}", get(supply))
        .route("/backoffice/forniture/{id}/rapporto.csv", get(report))
        .route("/backoffice/forniture/{id}/esito", get(outcome))
        .route("/backoffice/forniture/{id}/avvisi.zip", get(notices_zip))
}

/// Whether the page may offer what changes supplies (the use cases check
/// it again).
fn may_write(signed: &SignedIn, ente: &str) -> bool {
    signed
        .operator
        .rights
        .may(ente, Area::Supplies, Access::Write)
}

#[derive(Template)]
#[template(path = "backoffice/supplies.html")]
struct ArchivePage {
    chrome: Chrome,
    table: Table,
    may_upload: bool,
}

async fn archive(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(params): Query<ListParams>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let ctx = signed.ctx(&state);
    let sort = params.sort(&bus::SUPPLY_SORT_KEYS, "numero");
    // Newest first until the clerk asks otherwise.
    let descending = params.descending() || params.ordina.is_empty();
    let (page_number, per_page) = match params.export() {
        Some(_) => (1, MAX_EXPORT_ROWS),
        None => (params.page(), PER_PAGE),
    };
    let listed =
        match bus::supplies_sheet(&ctx, &ente, sort, descending, page_number, per_page).await {
            Ok(l) => l,
            Err(e) => return error_page(signed.chrome(&state, SECTION).await, &e),
        };
    if let Some(format) = params.export() {
        return ui::export(&listed.sheet, format, "forniture");
    }
    let links: Vec<Option<String>> = listed
        .keys
        .iter()
        .map(|id| Some(format!("{SECTION}/{id}")))
        .collect();
    let urls = ListUrls {
        path: SECTION,
        filters: vec![],
        sort,
        descending,
    };
    let table = Table::new(
        &listed.sheet,
        &bus::SUPPLY_SORT_KEYS,
        &links,
        &urls,
        page_number,
        listed.has_next,
    )
    .with_total(listed.total);
    page(&ArchivePage {
        chrome: signed.chrome(&state, SECTION).await,
        table,
        may_upload: may_write(&signed, &ente),
    })
}

#[derive(Template)]
#[template(path = "backoffice/supply_upload.html")]
struct UploadPage {
    chrome: Chrome,
    choices: bus::UploadChoices,
    layout: String,
    service: String,
    /// The field at fault (`tracciato`, `servizio`, `file`), and why.
    error: Option<(&'static str, String)>,
}

#[derive(Deserialize, Default)]
struct UploadQuery {
    #[serde(default)]
    tracciato: String,
}

async fn upload_form(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(q): Query<UploadQuery>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let ctx = signed.ctx(&state);
    let chrome = signed.chrome(&state, SECTION).await;
    match bus::upload_choices(&ctx, &ente).await {
        Ok(choices) => page(&UploadPage {
            chrome,
            choices,
            layout: q.tracciato,
            service: String::new(),
            error: None,
        }),
        Err(e) => error_page(chrome, &e),
    }
}

/// The upload form's fields as they came.
#[derive(Default)]
struct Upload {
    layout: String,
    service: String,
    file: Option<(String, Vec<u8>)>,
}

/// Reads the multipart form: the CSRF field first (checked before any file
/// is read), then the layout, the default service and the file.
async fn read_upload(signed: &SignedIn, mut form: Multipart) -> Result<Upload, UploadRefusal> {
    let mut checked = false;
    let mut upload = Upload::default();
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(UploadRefusal::Unreadable(e.status())),
        };
        let name = field.name().unwrap_or_default().to_string();
        if !checked && name != "csrf" {
            // Nothing of a form is read before its CSRF field.
            return Err(UploadRefusal::Csrf(signed.check_csrf("").err()));
        }
        match name.as_str() {
            "csrf" => {
                let sent = field
                    .text()
                    .await
                    .map_err(|e| UploadRefusal::Unreadable(e.status()))?;
                signed
                    .check_csrf(&sent)
                    .map_err(|r| UploadRefusal::Csrf(Some(r)))?;
                checked = true;
            }
            "tracciato" => {
                upload.layout = field
                    .text()
                    .await
                    .map_err(|e| UploadRefusal::Unreadable(e.status()))?
                    .trim()
                    .to_string();
            }
            "servizio" => {
                upload.service = field
                    .text()
                    .await
                    .map_err(|e| UploadRefusal::Unreadable(e.status()))?
                    .trim()
                    .to_string();
            }
            "file" => {
                let file_name = field.file_name().unwrap_or_default().to_string();
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| UploadRefusal::Unreadable(e.status()))?;
                upload.file = Some((file_name, bytes.to_vec()));
            }
            _ => {}
        }
    }
    if !checked {
        return Err(UploadRefusal::Csrf(signed.check_csrf("").err()));
    }
    Ok(upload)
}

enum UploadRefusal {
    /// The CSRF check's own answer.
    Csrf(Option<Response>),
    /// The form could not be read: too large, or broken.
    Unreadable(StatusCode),
}

async fn upload(State(state): State<AppState>, signed: SignedIn, form: Multipart) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let read = read_upload(&signed, form).await;
    if let Err(UploadRefusal::Csrf(answer)) = read {
        return answer.unwrap_or_else(|| simple_error(StatusCode::FORBIDDEN, "Modulo non valido."));
    }
    let ctx = signed.ctx(&state);
    let chrome = signed.chrome(&state, SECTION).await;
    let choices = match bus::upload_choices(&ctx, &ente).await {
        Ok(c) => c,
        Err(e) => return error_page(chrome, &e),
    };
    let form_back = |chrome: Chrome,
                     choices: bus::UploadChoices,
                     up: &Upload,
                     status: StatusCode,
                     field: &'static str,
                     message: String| {
        ui::page_with_status(
            &UploadPage {
                chrome,
                choices,
                layout: up.layout.clone(),
                service: up.service.clone(),
                error: Some((field, message)),
            },
            status,
        )
    };
    let up = match read {
        Ok(up) => up,
        Err(refusal) => {
            let status = match refusal {
                UploadRefusal::Unreadable(s) => s,
                UploadRefusal::Csrf(_) => StatusCode::FORBIDDEN,
            };
            let (status, message) = if status == StatusCode::PAYLOAD_TOO_LARGE {
                (
                    status,
                    format!(
                        "il file supera i {} MB che si possono caricare dal browser: caricarlo con «incasso load» o dalla cartella di arrivo",
                        crate::bus_api::MAX_SUPPLY_BYTES / (1024 * 1024)
                    ),
                )
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    "il modulo non si è potuto leggere: scegliere di nuovo il file e riprovare"
                        .to_string(),
                )
            };
            return form_back(chrome, choices, &Upload::default(), status, "file", message);
        }
    };
    if up.layout.is_empty() {
        let message = "scegliere il tracciato con cui leggere il file".to_string();
        return form_back(
            chrome,
            choices,
            &up,
            StatusCode::BAD_REQUEST,
            "tracciato",
            message,
        );
    }
    let Some((file_name, bytes)) = up.file.as_ref().filter(|(_, b)| !b.is_empty()) else {
        let message = "scegliere il file della fornitura (il file inviato è vuoto o manca)".into();
        return form_back(
            chrome,
            choices,
            &up,
            StatusCode::BAD_REQUEST,
            "file",
            message,
        );
    };
    let file_name = if file_name.trim().is_empty() {
        "fornitura".to_string()
    } else {
        file_name.clone()
    };
    let service = Some(up.service.clone()).filter(|s| !s.is_empty());
    match bus::start_upload(&ctx, &ente, &up.layout, &file_name, service, bytes.clone()).await {
        Ok(started) => Redirect::to(&format!("{SECTION}/{}", started.supply_id)).into_response(),
        Err(e) => {
            use incasso_app::Kind;
            let field = match e.code {
                "UNKNOWN_LAYOUT" | "BAD_LAYOUT" | "EXPORT_ONLY_LAYOUT" => "tracciato",
                _ => "file",
            };
            match e.kind {
                Kind::Invalid | Kind::Conflict => {
                    let status = crate::error::status_of(e.kind);
                    form_back(chrome, choices, &up, status, field, e.detail)
                }
                Kind::NotFound if field == "tracciato" => form_back(
                    chrome,
                    choices,
                    &up,
                    StatusCode::BAD_REQUEST,
                    field,
                    e.detail,
                ),
                _ => error_page(chrome, &e),
            }
        }
    }
}

/// A supply's figures as its page shows them.
struct Figures {
    status: &'static str,
    /// `success`, `warning`, `danger` or `info`: the colour of the status.
    tone: &'static str,
    loading: bool,
    interrupted: bool,
    started: String,
    size: String,
    rows_read: String,
    rows_loaded: String,
    rows_rejected: String,
    created: String,
    updated: String,
    cancelled: String,
}

#[derive(Template)]
#[template(path = "backoffice/supply.html")]
struct SupplyPage {
    chrome: Chrome,
    id: i64,
    line: incasso_store::dashboard::SupplyLine,
    figures: Figures,
    /// The per-row report, this page of it; none when it has no errors.
    table: Option<Table>,
    /// Reloads itself while loading.
    auto_refresh: bool,
    has_outcome: bool,
    may_write: bool,
}

#[derive(Deserialize, Default)]
struct SupplyQuery {
    #[serde(flatten)]
    list: ListParams,
    /// `0`: the page does not reload itself.
    #[serde(default)]
    auto: String,
}

async fn supply(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<SupplyQuery>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let chrome = signed.chrome(&state, SECTION).await;
    let Ok(id) = id.parse::<i64>() else {
        return not_found(chrome);
    };
    let ctx = signed.ctx(&state);
    let params = &q.list;
    let (page_number, per_page) = match params.export() {
        Some(_) => (1, MAX_EXPORT_ROWS),
        None => (params.page(), ERRORS_PER_PAGE),
    };
    let (line, errors) =
        match bus::supply_errors_sheet(&ctx, &ente, id, page_number, per_page).await {
            Ok(l) => l,
            Err(e) => return error_page(chrome, &e),
        };
    if let Some(format) = params.export() {
        return ui::export(&errors.sheet, format, &format!("errori-fornitura-{id}"));
    }
    let path = format!("{SECTION}/{id}");
    let table = (errors.total > 0).then(|| {
        let urls = ListUrls {
            path: &path,
            filters: vec![],
            sort: "",
            descending: false,
        };
        Table::new(&errors.sheet, &[], &[], &urls, page_number, errors.has_next)
            .with_total(errors.total)
    });
    let r = &line.record;
    let loading = r.status == incasso_store::LOADING;
    let figures = Figures {
        status: bus::status_label(&r.status),
        tone: match r.status.as_str() {
            "LOADED" => "success",
            "LOADED_WITH_ERRORS" | "INTERRUPTED" => "warning",
            "REJECTED" | "FAILED" => "danger",
            _ => "info",
        },
        loading,
        interrupted: r.status == incasso_store::INTERRUPTED,
        started: incasso_core::time::to_rome(r.started_at)
            .format("%d/%m/%Y %H:%M:%S")
            .to_string(),
        size: size_label(r.size_bytes),
        rows_read: ui::italian_count(r.rows_read.max(0) as u64),
        rows_loaded: ui::italian_count(r.rows_loaded.max(0) as u64),
        rows_rejected: ui::italian_count(r.rows_rejected.max(0) as u64),
        created: ui::italian_count(r.positions_created.max(0) as u64),
        updated: ui::italian_count(r.positions_updated.max(0) as u64),
        cancelled: ui::italian_count(r.positions_cancelled.max(0) as u64),
    };
    let auto_refresh = loading && q.auto != "0";
    let has_outcome = r.outcome.is_some();
    let mut resp = page(&SupplyPage {
        chrome,
        id,
        figures,
        table,
        auto_refresh,
        has_outcome,
        may_write: may_write(&signed, &ente),
        line,
    });
    if auto_refresh {
        // The page follows the load by reloading itself (the HTML
        // standard's Refresh, as <meta http-equiv> would: no script); a
        // link on the page turns it off, and a reload works as well.
        resp.headers_mut()
            .insert("refresh", HeaderValue::from_static(REFRESH_SECS));
    }
    resp
}

/// `1234567` bytes as `1,2 MB`.
fn size_label(bytes: i64) -> String {
    let b = bytes.max(0) as f64;
    if b < 1024.0 {
        format!("{bytes} byte")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1} kB", b / 1024.0).replace('.', ",")
    } else {
        format!("{:.1} MB", b / (1024.0 * 1024.0)).replace('.', ",")
    }
}

fn not_found(chrome: Chrome) -> Response {
    error_page(
        chrome,
        &incasso_app::AppError::new(
            incasso_app::Kind::NotFound,
            "NOT_FOUND",
            "fornitura non trovata",
        ),
    )
}

async fn report(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let Ok(id) = id.parse::<i64>() else {
        return not_found(signed.chrome(&state, SECTION).await);
    };
    match bus::report_csv(&signed.ctx(&state), &ente, id).await {
        Ok(csv) => ui::download(
            csv,
            "text/csv; charset=utf-8",
            &format!("rapporto-fornitura-{id}.csv"),
        ),
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}

async fn outcome(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let Ok(id) = id.parse::<i64>() else {
        return not_found(signed.chrome(&state, SECTION).await);
    };
    match bus::outcome(&signed.ctx(&state), &ente, id).await {
        Ok((name, bytes)) => ui::download(bytes, "application/octet-stream", &name),
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}

async fn notices_zip(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let Ok(id) = id.parse::<i64>() else {
        return not_found(signed.chrome(&state, SECTION).await);
    };
    let ctx = signed.ctx(&state);
    // Italian, as the back office is.
    let zipped = match notices::language(None) {
        Ok(lang) => notices::zip_job(&ctx, &ente, Selection::Supply(id), lang).await,
        Err(e) => Err(e),
    };
    match zipped {
        Ok(job) => crate::notices::stream_zip(job, format!("avvisi-fornitura-{id}.zip")),
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}
