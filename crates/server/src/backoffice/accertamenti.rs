//! Accertamenti per year (Accertamenti area): the list of a budget year,
//! sorted, paged and exported; a form to create one and to change it;
//! activation and deactivation; and a year's budget loaded from a CSV, the
//! whole file or nothing.

use super::catalogue::{Slice, messages, opt, slice};
use super::ui::{Chrome, ListParams, ListUrls, Table, export, page_with_status};
use super::{SignedIn, error_page, page};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Datelike;
use incasso_app::sheet::{Cell, Sheet};
use incasso_app::{AppError, Kind, admin};
use incasso_core::accertamento::Accertamento;
use incasso_core::access::{Access, Area};
use serde::Deserialize;

const SECTION: &str = "/backoffice/accertamenti";
/// A budget's CSV: a few hundred rows; the store takes at most 10,000.
const MAX_CSV_BYTES: usize = 4 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(SECTION, get(list))
        .route("/backoffice/accertamenti/nuovo", get(new_form).post(create))
        .route(
            "/backoffice/accertamenti/carica",
            post(upload).layer(DefaultBodyLimit::max(MAX_CSV_BYTES)),
        )
        .route(
            "/backoffice/accertamenti/{year}/{code}",
            get(edit_form).post(update),
        )
        .route(
            "/backoffice/accertamenti/{year}/{code}/stato",
            post(set_active),
        )
}

/// The Italian names of the form's fields, for the messages.
const LABELS: &[(&str, &str)] = &[
    ("year", "Anno"),
    ("code", "Codice"),
    ("description", "Descrizione"),
    ("chapter", "Capitolo"),
    ("article", "Articolo"),
    ("siopeCode", "Codice SIOPE"),
];

/// This year in Rome, the default budget year.
fn this_year(state: &AppState) -> i32 {
    incasso_core::time::to_rome(state.app.clock.now()).year()
}

fn may_write(signed: &SignedIn, ente: &str) -> bool {
    signed
        .operator
        .rights
        .may(ente, Area::Accertamenti, Access::Write)
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    anno: String,
    #[serde(default)]
    esito: String,
    #[serde(default)]
    n: String,
    #[serde(flatten)]
    list: ListParams,
}

#[derive(Template)]
#[template(path = "backoffice/accertamenti.html")]
struct ListPage {
    chrome: Chrome,
    year: i32,
    years: Vec<i32>,
    table: Table,
    can_write: bool,
    notice: Option<String>,
}

/// The accertamenti of a year: sorted, paged, exported.
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
    let now = this_year(&state);
    let year = q
        .anno
        .parse::<i32>()
        .ok()
        .filter(|y| (2000..=2100).contains(y))
        .unwrap_or(now);
    let all = match admin::list_accertamenti(&signed.ctx(&state), &ente, None, None, Some(10_000))
        .await
    {
        Ok(p) => p.items,
        Err(e) => return error_page(chrome, &e),
    };
    // The years offered: those with accertamenti, and the one around now.
    let mut years: Vec<i32> = all.iter().map(|a| a.year).collect();
    years.extend([now - 1, now, now + 1, year]);
    years.sort_unstable();
    years.dedup();
    years.reverse();
    let of_year: Vec<Accertamento> = all.into_iter().filter(|a| a.year == year).collect();
    let keys = [
        "code",
        "description",
        "chapter",
        "article",
        "siope",
        "active",
    ];
    let sort = q.list.sort(&keys, "code");
    let Slice {
        rows,
        page: page_no,
        has_next,
        total,
    } = slice(of_year, &q.list, |a: &Accertamento, b: &Accertamento| {
        match sort {
            "description" => a.description.cmp(&b.description),
            "chapter" => (&a.chapter, &a.article).cmp(&(&b.chapter, &b.article)),
            "article" => a.article.cmp(&b.article),
            "siope" => a.siope_code.cmp(&b.siope_code),
            "active" => a.active.cmp(&b.active),
            _ => a.code.cmp(&b.code),
        }
        .then_with(|| a.code.cmp(&b.code))
    });
    let mut sheet = Sheet::new(
        format!("Accertamenti {year}"),
        &[
            "Codice",
            "Descrizione",
            "Capitolo",
            "Articolo",
            "Codice SIOPE",
            "Attivo",
            "Anno",
        ],
    );
    let mut links = Vec::new();
    for a in &rows {
        sheet.push(vec![
            Cell::text(&a.code),
            Cell::text(&a.description),
            Cell::text(&a.chapter),
            Cell::opt_text(a.article.clone()),
            Cell::opt_text(a.siope_code.clone()),
            Cell::text(if a.active { "sì" } else { "no" }),
            Cell::Int(i64::from(a.year)),
        ]);
        links.push(Some(format!("{SECTION}/{}/{}", a.year, a.code)));
    }
    if let Some(format) = q.list.export() {
        return export(&sheet, format, &format!("accertamenti-{ente}-{year}"));
    }
    let table = Table::new(
        &sheet,
        &keys,
        &links,
        &ListUrls {
            path: SECTION,
            filters: vec![("anno", year.to_string())],
            sort,
            descending: q.list.descending(),
        },
        page_no,
        has_next,
    )
    .with_total(total as u64);
    let notice = match q.esito.as_str() {
        "creato" => Some("Accertamento creato.".to_string()),
        "salvato" => Some("Accertamento salvato.".to_string()),
        "caricati" => Some(format!(
            "File caricato: {} accertamenti creati o aggiornati.",
            q.n.parse::<u32>().unwrap_or(0)
        )),
        _ => None,
    };
    page(&ListPage {
        can_write: may_write(&signed, &ente),
        chrome,
        year,
        years,
        table,
        notice,
    })
}

/// The form's fields as they were sent (or as stored).
#[derive(Default, Deserialize)]
struct AccForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    anno: String,
    #[serde(default)]
    codice: String,
    #[serde(default)]
    descrizione: String,
    #[serde(default)]
    capitolo: String,
    #[serde(default)]
    articolo: String,
    #[serde(default)]
    siope: String,
    #[serde(default)]
    attivo: String,
}

impl AccForm {
    fn of(a: &Accertamento) -> AccForm {
        AccForm {
            csrf: String::new(),
            anno: a.year.to_string(),
            codice: a.code.clone(),
            descrizione: a.description.clone(),
            capitolo: a.chapter.clone(),
            articolo: a.article.clone().unwrap_or_default(),
            siope: a.siope_code.clone().unwrap_or_default(),
            attivo: if a.active { "1".into() } else { String::new() },
        }
    }

    /// The accertamento the form describes, or the message of a year that
    /// is not a number.
    fn accertamento(&self) -> Result<Accertamento, String> {
        let year = self
            .anno
            .trim()
            .parse::<i32>()
            .map_err(|_| format!("Anno: «{}» non è un anno (es. 2026)", self.anno.trim()))?;
        Ok(Accertamento {
            year,
            code: self.codice.trim().to_string(),
            description: self.descrizione.trim().to_string(),
            chapter: self.capitolo.trim().to_string(),
            article: opt(&self.articolo),
            siope_code: opt(&self.siope),
            active: !self.attivo.is_empty(),
        })
    }
}

#[derive(Template)]
#[template(path = "backoffice/accertamenti_form.html")]
struct FormPage {
    chrome: Chrome,
    /// Creating (year and code editable) or changing one.
    creating: bool,
    form: AccForm,
    errors: Vec<String>,
    can_write: bool,
    notice: Option<String>,
}

#[derive(Deserialize)]
struct NewQuery {
    #[serde(default)]
    anno: String,
}

async fn new_form(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(q): Query<NewQuery>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let chrome = signed.chrome(&state, SECTION).await;
    if !may_write(&signed, &ente) {
        return error_page(chrome, &AppError::forbidden());
    }
    let year = q.anno.parse::<i32>().unwrap_or_else(|_| this_year(&state));
    page(&FormPage {
        chrome,
        creating: true,
        form: AccForm {
            anno: year.to_string(),
            attivo: "1".into(),
            ..AccForm::default()
        },
        errors: Vec::new(),
        can_write: true,
        notice: None,
    })
}

/// The form again with what went wrong (400), or a refusal's page.
fn refused(chrome: Chrome, creating: bool, form: AccForm, e: &AppError) -> Response {
    if e.kind != Kind::Invalid {
        return error_page(chrome, e);
    }
    page_with_status(
        &FormPage {
            chrome,
            creating,
            form,
            errors: messages(e, LABELS),
            can_write: true,
            notice: None,
        },
        StatusCode::BAD_REQUEST,
    )
}

async fn create(
    State(state): State<AppState>,
    signed: SignedIn,
    axum::Form(form): axum::Form<AccForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let acc = match form.accertamento() {
        Ok(a) => a,
        Err(m) => {
            let chrome = signed.chrome(&state, SECTION).await;
            let e = AppError::invalid("BAD_YEAR", m);
            return refused(chrome, true, form, &e);
        }
    };
    match admin::create_accertamento(&signed.ctx(&state), &ente, &acc).await {
        Ok(()) => {
            Redirect::to(&format!("{SECTION}?anno={}&esito=creato", acc.year)).into_response()
        }
        Err(e) => refused(signed.chrome(&state, SECTION).await, true, form, &e),
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
    Path((year, code)): Path<(i32, String)>,
    Query(q): Query<EditQuery>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let chrome = signed.chrome(&state, SECTION).await;
    match admin::get_accertamento(&signed.ctx(&state), &ente, year, &code).await {
        Ok(a) => page(&FormPage {
            chrome,
            creating: false,
            form: AccForm::of(&a),
            errors: Vec::new(),
            can_write: may_write(&signed, &ente),
            notice: match q.esito.as_str() {
                "attivato" => Some("Accertamento attivato.".into()),
                "disattivato" => Some("Accertamento disattivato: non riceve nuove quote.".into()),
                _ => None,
            },
        }),
        Err(e) => error_page(chrome, &e),
    }
}

/// Saves a change: the year and the code are the path's, never the form's.
async fn update(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((year, code)): Path<(i32, String)>,
    axum::Form(mut form): axum::Form<AccForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let ctx = signed.ctx(&state);
    // The state (active or not) changes only with its own buttons.
    let stored = match admin::get_accertamento(&ctx, &ente, year, &code).await {
        Ok(a) => a,
        Err(e) => return error_page(signed.chrome(&state, SECTION).await, &e),
    };
    form.anno = year.to_string();
    form.codice = code.clone();
    form.attivo = if stored.active {
        "1".into()
    } else {
        String::new()
    };
    let acc = match form.accertamento() {
        Ok(a) => a,
        Err(m) => {
            let e = AppError::invalid("BAD_YEAR", m);
            return refused(signed.chrome(&state, SECTION).await, false, form, &e);
        }
    };
    match admin::put_accertamento(&ctx, &ente, &acc).await {
        Ok(()) => Redirect::to(&format!("{SECTION}?anno={year}&esito=salvato")).into_response(),
        Err(e) => refused(signed.chrome(&state, SECTION).await, false, form, &e),
    }
}

#[derive(Deserialize)]
struct StateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    attivo: String,
}

async fn set_active(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((year, code)): Path<(i32, String)>,
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
    match admin::set_accertamento_active(&signed.ctx(&state), &ente, year, &code, active).await {
        Ok(()) => Redirect::to(&format!(
            "{SECTION}/{year}/{code}?esito={}",
            if active { "attivato" } else { "disattivato" }
        ))
        .into_response(),
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}

#[derive(Template)]
#[template(path = "backoffice/accertamenti_upload.html")]
struct UploadPage {
    chrome: Chrome,
    year: i32,
    summary: String,
    errors: Vec<String>,
}

/// A year's budget from a CSV: the whole file or nothing; a bad file comes
/// back with every bad row named (400).
async fn upload(State(state): State<AppState>, signed: SignedIn, mut form: Multipart) -> Response {
    let mut csrf = String::new();
    let mut year = String::new();
    let mut file: Option<Vec<u8>> = None;
    let unreadable = || {
        super::simple_error(
            StatusCode::BAD_REQUEST,
            "Il modulo di caricamento non si è potuto leggere: riprovare dalla pagina degli accertamenti.",
        )
    };
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => return unreadable(),
        };
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "csrf" => csrf = field.text().await.unwrap_or_default(),
            "anno" => year = field.text().await.unwrap_or_default(),
            "file" => match field.bytes().await {
                Ok(b) => file = Some(b.to_vec()),
                Err(_) => return unreadable(),
            },
            _ => {}
        }
    }
    if let Err(r) = signed.check_csrf(&csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let year = year
        .trim()
        .parse::<i32>()
        .unwrap_or_else(|_| this_year(&state));
    let chrome = signed.chrome(&state, SECTION).await;
    let data = match file {
        Some(d) if !d.is_empty() => d,
        _ => {
            return page_with_status(
                &UploadPage {
                    chrome,
                    year,
                    summary: "Nessun file scelto: non è stato caricato nulla.".into(),
                    errors: vec!["File CSV: scegliere il file da caricare".into()],
                },
                StatusCode::BAD_REQUEST,
            );
        }
    };
    match admin::load_accertamenti_csv(&signed.ctx(&state), &ente, Some(year), &data).await {
        Ok(n) => {
            Redirect::to(&format!("{SECTION}?anno={year}&esito=caricati&n={n}")).into_response()
        }
        Err(e) if e.kind == Kind::Invalid => page_with_status(
            &UploadPage {
                chrome,
                year,
                summary: capitalized(&e.detail),
                errors: e
                    .errors
                    .iter()
                    .map(|f| format!("{}: {}", capitalized(&f.field), f.message))
                    .collect(),
            },
            StatusCode::BAD_REQUEST,
        ),
        Err(e) => error_page(chrome, &e),
    }
}

/// `text` with its first letter in upper case, as a sentence starts.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
