//! Messages to citizens (`/backoffice/notifiche`, issue 19): each
//! service's messages counted (sent, not sent by reason, waiting, failed)
//! and the Ente's messages listed, the dead letters first, with *Invia di
//! nuovo* on a failed one; each service's settings and templates
//! (`/backoffice/notifiche/servizi/{code}`, linked from the service's
//! page), a template refused with its error beside the field; and the
//! invitation sent by hand to a position or a whole supply, after a
//! preview (`.../invia`), once however often the confirm is sent (its
//! form's token). The use cases are `incasso_app::notify::backoffice`'s.

use super::ui::{self, Chrome, ListParams, ListUrls, Table, page_with_status};
use super::{SignedIn, error_page};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use incasso_app::notify::SettingsInput;
use incasso_app::notify::backoffice as nb;
use incasso_app::{AppError, Kind};
use incasso_core::access::{Access, Area};
use incasso_store::notify::NotificationRecord;
use nb::Template as MessageTemplate;
use serde::Deserialize;

const SECTION: &str = "/backoffice/notifiche";
const PER_PAGE: u32 = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(SECTION, get(overview))
        .route("/backoffice/notifiche/{id}/riprova", post(retry))
        .route(
            "/backoffice/notifiche/servizi/{code}",
            get(service).post(save_settings),
        )
        .route(
            "/backoffice/notifiche/servizi/{code}/modelli/{kind}/{lang}",
            post(save_template),
        )
        .route(
            "/backoffice/notifiche/posizioni/{iupd}/invia",
            get(preview_position).post(send_position),
        )
        .route(
            "/backoffice/notifiche/forniture/{id}/invia",
            get(preview_supply).post(send_supply),
        )
}

fn rome(t: chrono::DateTime<chrono::Utc>) -> String {
    incasso_core::time::to_rome(t)
        .format("%d/%m/%Y %H:%M")
        .to_string()
}

/// `detail` with a capital first letter.
fn sentence(detail: &str) -> String {
    let mut chars = detail.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------- overview

struct CountView {
    code: String,
    name: String,
    enabled: bool,
    sent_io: i64,
    sent_email: i64,
    pending: i64,
    failed: i64,
    skipped: String,
}

/// A message as a row of a list.
pub struct MessageView {
    pub id: i64,
    pub service: String,
    pub kind: &'static str,
    pub channel: &'static str,
    pub recipient: String,
    pub iupd: String,
    pub status: &'static str,
    pub failed: bool,
    pub reason: String,
    pub attempts: i64,
    pub created: String,
    pub sent: String,
}

impl From<&NotificationRecord> for MessageView {
    fn from(n: &NotificationRecord) -> Self {
        MessageView {
            id: n.id,
            service: n.service_code.clone(),
            kind: nb::kind_label(&n.kind),
            channel: nb::channel_label(&n.channel),
            recipient: n.recipient.clone().unwrap_or_default(),
            iupd: n.iupd.clone(),
            status: nb::status_label(&n.status),
            failed: n.status == "FAILED",
            reason: nb::reason_of(n).unwrap_or_default(),
            attempts: n.attempts,
            created: rome(n.created_at),
            sent: n.sent_at.map(rome).unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "backoffice/notifications.html")]
struct OverviewPage {
    chrome: Chrome,
    counts: Vec<CountView>,
    table: Table,
    messages: Vec<MessageView>,
    filter: String,
    may_retry: bool,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Default, Deserialize)]
struct OverviewQuery {
    /// `FAILED` (the default), `tutti`, or a state.
    #[serde(default)]
    stato: String,
    #[serde(default)]
    esito: String,
    #[serde(default)]
    richiesti: String,
    #[serde(flatten)]
    list: ListParams,
}

fn status_filter(stato: &str) -> (String, Option<&'static str>) {
    match stato {
        "tutti" => ("tutti".into(), None),
        "PENDING" => ("PENDING".into(), Some("PENDING")),
        "SENT" => ("SENT".into(), Some("SENT")),
        "SKIPPED" => ("SKIPPED".into(), Some("SKIPPED")),
        _ => ("FAILED".into(), Some("FAILED")),
    }
}

async fn overview_page(
    state: &AppState,
    signed: &SignedIn,
    q: &OverviewQuery,
    refusal: Option<&AppError>,
) -> Response {
    let chrome = signed.chrome(state, SECTION).await;
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let ctx = signed.ctx(state);
    let (filter, status) = status_filter(&q.stato);
    let sort = q.list.sort(&nb::SORT_KEYS, "id");
    let descending = q.list.verso.is_empty() || q.list.descending();
    let export = q.list.export();
    let per_page = if export.is_some() {
        incasso_app::sheet::MAX_EXPORT_ROWS
    } else {
        PER_PAGE
    };
    let page_no = if export.is_some() { 1 } else { q.list.page() };
    let listed = match nb::messages(&ctx, &ente, status, sort, descending, page_no, per_page).await
    {
        Ok(l) => l,
        Err(e) => return error_page(chrome, &e),
    };
    if let Some(format) = export {
        return ui::export(&listed.sheet, format, "messaggi");
    }
    let counts = match nb::counts(&ctx, &ente).await {
        Ok(c) => c,
        Err(e) => return error_page(chrome, &e),
    };
    let urls = ListUrls {
        path: SECTION,
        filters: vec![("stato", filter.clone())],
        sort,
        descending,
    };
    let table = Table::new(
        &listed.sheet,
        &[
            "id",
            "servizio",
            "tipo",
            "canale",
            "posizione",
            "",
            "",
            "tentativi",
        ],
        &[],
        &urls,
        page_no,
        listed.has_next,
    )
    .with_total(listed.total);
    let status_code = refusal.map_or(StatusCode::OK, |e| crate::error::status_of(e.kind));
    page_with_status(
        &OverviewPage {
            chrome,
            counts: counts
                .into_iter()
                .map(|c| CountView {
                    code: c.service_code,
                    name: c.service_name,
                    enabled: c.enabled,
                    sent_io: c.sent_io,
                    sent_email: c.sent_email,
                    pending: c.pending,
                    failed: c.failed,
                    skipped: c
                        .skipped
                        .iter()
                        .map(|(k, n)| format!("{k}: {n}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                })
                .collect(),
            messages: listed.items.iter().map(MessageView::from).collect(),
            table,
            filter,
            may_retry: signed
                .operator
                .rights
                .may(&ente, Area::Positions, Access::Write),
            notice: match q.esito.as_str() {
                "riprova" => {
                    Some("Messaggio rimesso in coda: parte al prossimo giro di invio.".into())
                }
                e => sent_notice(e, &q.richiesti),
            },
            error: refusal.map(|e| sentence(&e.detail)),
        },
        status_code,
    )
}

/// `GET /backoffice/notifiche`.
async fn overview(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(q): Query<OverviewQuery>,
) -> Response {
    overview_page(&state, &signed, &q, None).await
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /backoffice/notifiche/{id}/riprova`: a dead letter sent again.
async fn retry(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let Ok(id) = id.parse::<i64>() else {
        return super::simple_error(
            StatusCode::NOT_FOUND,
            "Messaggio non trovato tra quelli dell'ente.",
        );
    };
    match nb::retry(&signed.ctx(&state), &ente, id).await {
        Ok(()) => Redirect::to(&format!("{SECTION}?esito=riprova")).into_response(),
        Err(e) if e.kind == Kind::Conflict => {
            overview_page(&state, &signed, &OverviewQuery::default(), Some(&e)).await
        }
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}

// ---------------------------------------------------------------- a service

#[derive(Default, Deserialize)]
struct SettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    chiave_io: String,
    #[serde(default)]
    rimuovi_chiave: String,
    #[serde(default)]
    attivo: String,
    #[serde(default)]
    invito: String,
    #[serde(default)]
    promemoria: String,
    #[serde(default)]
    tedesco: String,
    /// App IO's time to live in seconds; empty: IO's default.
    #[serde(default)]
    validita: String,
}

#[derive(Default, Deserialize)]
struct TemplateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    oggetto: String,
    #[serde(default)]
    testo: String,
}

struct TemplateView {
    kind: &'static str,
    kind_label: &'static str,
    language: &'static str,
    language_label: &'static str,
    /// `INVITATION-it`: ids of its fields.
    slug: String,
    subject: String,
    markdown: String,
    own: bool,
    subject_error: Option<String>,
    markdown_error: Option<String>,
}

#[derive(Template)]
#[template(path = "backoffice/notify_service.html")]
struct ServicePage {
    chrome: Chrome,
    code: String,
    name: String,
    may_write: bool,
    key_hint: String,
    enabled: bool,
    invite: bool,
    reminder: String,
    german: bool,
    ttl: String,
    saved_by: String,
    key_error: Option<String>,
    reminder_error: Option<String>,
    ttl_error: Option<String>,
    settings_error: Option<String>,
    no_settings: bool,
    templates: Vec<TemplateView>,
    notice: Option<&'static str>,
}

/// What a form sent back carries: the settings as typed, or one
/// template's text with its error.
enum Sent {
    None,
    Settings(SettingsForm, AppError),
    Template {
        kind: String,
        lang: String,
        form: TemplateForm,
        error: AppError,
    },
}

async fn service_page(
    state: &AppState,
    signed: &SignedIn,
    code: &str,
    sent: Sent,
    notice: Option<&'static str>,
) -> Response {
    let chrome = signed.chrome(state, "/backoffice/servizi").await;
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let ctx = signed.ctx(state);
    let s = match nb::service(&ctx, &ente, code).await {
        Ok(s) => s,
        Err(e) => return error_page(chrome, &e),
    };
    let may_write = signed
        .operator
        .rights
        .may(&ente, Area::Catalogue, Access::Write);
    let settings = s.settings.as_ref();
    let mut p = ServicePage {
        chrome,
        code: s.service.code.clone(),
        name: s.service.name.clone(),
        may_write,
        key_hint: settings
            .and_then(|x| x.io_api_key_hint.clone())
            .unwrap_or_default(),
        enabled: settings.is_some_and(|x| x.enabled),
        invite: settings.is_some_and(|x| x.invite_on_publish),
        reminder: settings
            .and_then(|x| x.reminder_days)
            .map(|d| d.to_string())
            .unwrap_or_default(),
        german: settings.is_some_and(|x| x.languages.len() > 1),
        ttl: settings
            .and_then(|x| x.time_to_live)
            .map(|t| t.to_string())
            .unwrap_or_default(),
        saved_by: settings
            .map(|x| {
                format!(
                    "Salvate il {} da {}",
                    rome(x.updated_at),
                    x.updated_by
                        .strip_prefix("operator:")
                        .unwrap_or(&x.updated_by)
                )
            })
            .unwrap_or_default(),
        key_error: None,
        reminder_error: None,
        ttl_error: None,
        settings_error: None,
        no_settings: settings.is_none(),
        templates: s
            .templates
            .iter()
            .map(|t| TemplateView {
                kind: t.kind,
                kind_label: nb::kind_label(t.kind),
                language: t.language,
                language_label: if t.language == "de" {
                    "tedesco"
                } else {
                    "italiano"
                },
                slug: format!("{}-{}", t.kind, t.language),
                subject: t.subject.clone(),
                markdown: t.markdown.clone(),
                own: t.own,
                subject_error: None,
                markdown_error: None,
            })
            .collect(),
        notice,
    };
    let mut status = StatusCode::OK;
    match sent {
        Sent::None => {}
        Sent::Settings(form, e) => {
            status = crate::error::status_of(e.kind);
            p.enabled = !form.attivo.is_empty();
            p.invite = !form.invito.is_empty();
            p.reminder = form.promemoria.clone();
            p.german = !form.tedesco.is_empty();
            p.ttl = form.validita.clone();
            let detail = ["reminderDays: ", "ioApiKey: ", "timeToLive: "]
                .iter()
                .find_map(|x| e.detail.strip_prefix(x))
                .unwrap_or(&e.detail);
            match e.code {
                "BAD_REMINDER_DAYS" => p.reminder_error = Some(sentence(detail)),
                "BAD_IO_API_KEY" => p.key_error = Some(sentence(detail)),
                "BAD_TIME_TO_LIVE" => p.ttl_error = Some(sentence(detail)),
                _ => p.settings_error = Some(sentence(detail)),
            }
        }
        Sent::Template {
            kind,
            lang,
            form,
            error,
        } => {
            status = crate::error::status_of(error.kind);
            if let Some(t) = p
                .templates
                .iter_mut()
                .find(|t| t.kind == kind && t.language == lang)
            {
                t.subject = form.oggetto;
                t.markdown = form.testo;
                let field = error.errors.first().map(|f| f.field.as_str());
                let message = error
                    .errors
                    .first()
                    .map(|f| f.message.clone())
                    .unwrap_or_else(|| sentence(&error.detail));
                if field == Some("subject") {
                    t.subject_error = Some(message);
                } else {
                    t.markdown_error = Some(message);
                }
            } else {
                p.settings_error = Some(sentence(&error.detail));
            }
        }
    }
    page_with_status(&p, status)
}

#[derive(Default, Deserialize)]
struct NoticeQuery {
    #[serde(default)]
    esito: String,
}

/// `GET /backoffice/notifiche/servizi/{code}`.
async fn service(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(code): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let notice = match q.esito.as_str() {
        "impostazioni" => Some("Impostazioni dei messaggi salvate."),
        "modello" => Some("Modello del messaggio salvato."),
        _ => None,
    };
    service_page(&state, &signed, &code, Sent::None, notice).await
}

/// `POST /backoffice/notifiche/servizi/{code}`: the settings.
async fn save_settings(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(code): Path<String>,
    axum::Form(form): axum::Form<SettingsForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let reminder = form.promemoria.trim();
    let reminder_days = if reminder.is_empty() {
        None
    } else {
        match reminder.parse::<i64>() {
            Ok(d) => Some(d),
            Err(_) => {
                let e = AppError::invalid(
                    "BAD_REMINDER_DAYS",
                    "reminderDays: un numero di giorni da 1 a 60 (vuoto: nessun promemoria)",
                );
                return service_page(&state, &signed, &code, Sent::Settings(form, e), None).await;
            }
        }
    };
    let ttl = form.validita.trim();
    let time_to_live = if ttl.is_empty() {
        None
    } else {
        match ttl.parse::<i64>() {
            Ok(t) => Some(t),
            Err(_) => {
                let e = AppError::invalid(
                    "BAD_TIME_TO_LIVE",
                    "timeToLive: un numero di secondi da 3600 a 604800 (vuoto: il valore di App IO)",
                );
                return service_page(&state, &signed, &code, Sent::Settings(form, e), None).await;
            }
        }
    };
    let key = if !form.rimuovi_chiave.is_empty() {
        Some(String::new())
    } else if form.chiave_io.trim().is_empty() {
        None
    } else {
        Some(form.chiave_io.trim().to_string())
    };
    let input = SettingsInput {
        io_api_key: key,
        enabled: !form.attivo.is_empty(),
        invite_on_publish: !form.invito.is_empty(),
        reminder_days,
        german: !form.tedesco.is_empty(),
    };
    match nb::save_service_settings_ttl(&signed.ctx(&state), &ente, &code, &input, time_to_live)
        .await
    {
        Ok(_) => Redirect::to(&format!(
            "/backoffice/notifiche/servizi/{}?esito=impostazioni",
            ui::query_value(&code)
        ))
        .into_response(),
        Err(e) if e.kind == Kind::Invalid => {
            service_page(&state, &signed, &code, Sent::Settings(form, e), None).await
        }
        Err(e) => error_page(signed.chrome(&state, "/backoffice/servizi").await, &e),
    }
}

/// `POST /backoffice/notifiche/servizi/{code}/modelli/{kind}/{lang}`.
async fn save_template(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((code, kind, lang)): Path<(String, String, String)>,
    axum::Form(form): axum::Form<TemplateForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let Some(k) = incasso_app::notify::kind_of(&kind) else {
        return super::simple_error(StatusCode::NOT_FOUND, "Tipo di messaggio sconosciuto.");
    };
    let template = MessageTemplate {
        subject: form.oggetto.clone(),
        markdown: form.testo.clone(),
    };
    match nb::save_service_template(&signed.ctx(&state), &ente, &code, k, &lang, &template).await {
        Ok(()) => Redirect::to(&format!(
            "/backoffice/notifiche/servizi/{}?esito=modello#modello-{kind}-{lang}",
            ui::query_value(&code)
        ))
        .into_response(),
        Err(error) if matches!(error.kind, Kind::Invalid | Kind::Conflict) => {
            service_page(
                &state,
                &signed,
                &code,
                Sent::Template {
                    kind,
                    lang,
                    form,
                    error,
                },
                None,
            )
            .await
        }
        Err(e) => error_page(signed.chrome(&state, "/backoffice/servizi").await, &e),
    }
}

// ---------------------------------------------------------------- sending

#[derive(Template)]
#[template(path = "backoffice/notify_send.html")]
struct SendPage {
    chrome: Chrome,
    /// "della posizione X" / "della fornitura N".
    what: String,
    back: String,
    action: String,
    preview: nb::Preview,
    token: String,
    error: Option<String>,
}

#[derive(Deserialize)]
struct SendForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

enum Target {
    Position(String),
    Supply(i64),
}

impl Target {
    fn what(&self) -> String {
        match self {
            Target::Position(iupd) => format!("alla posizione {iupd}"),
            Target::Supply(id) => format!("alle posizioni della fornitura {id}"),
        }
    }
    fn back(&self) -> String {
        match self {
            Target::Position(iupd) => format!("/backoffice/posizioni/{}", ui::query_value(iupd)),
            Target::Supply(id) => format!("/backoffice/forniture/{id}"),
        }
    }
    fn action(&self) -> String {
        match self {
            Target::Position(iupd) => {
                format!(
                    "/backoffice/notifiche/posizioni/{}/invia",
                    ui::query_value(iupd)
                )
            }
            Target::Supply(id) => format!("/backoffice/notifiche/forniture/{id}/invia"),
        }
    }
    fn section(&self) -> &'static str {
        match self {
            Target::Position(_) => "/backoffice/posizioni",
            Target::Supply(_) => "/backoffice/forniture",
        }
    }
}

async fn send_page(
    state: &AppState,
    signed: &SignedIn,
    target: Target,
    refusal: Option<&AppError>,
) -> Response {
    let chrome = signed.chrome(state, target.section()).await;
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let ctx = signed.ctx(state);
    let preview = match &target {
        Target::Position(iupd) => nb::preview_position(&ctx, &ente, iupd).await,
        Target::Supply(id) => nb::preview_supply(&ctx, &ente, *id).await,
    };
    let preview = match preview {
        Ok(p) => p,
        Err(e) => return error_page(chrome, &e),
    };
    let status = refusal.map_or(StatusCode::OK, |e| crate::error::status_of(e.kind));
    page_with_status(
        &SendPage {
            chrome,
            what: target.what(),
            back: target.back(),
            action: target.action(),
            preview,
            token: nb::new_token(),
            error: refusal.map(|e| sentence(&e.detail)),
        },
        status,
    )
}

async fn do_send(state: &AppState, signed: &SignedIn, target: Target, form: SendForm) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let ctx = signed.ctx(state);
    let sent = match &target {
        Target::Position(iupd) => nb::send_position(&ctx, &ente, iupd, &form.token).await,
        Target::Supply(id) => nb::send_supply(&ctx, &ente, *id, &form.token).await,
    };
    match sent {
        Ok(s) => {
            let esito = if s.first { "messaggi" } else { "messaggi-gia" };
            let back = match &target {
                Target::Position(_) => target.back(),
                Target::Supply(_) => format!("{SECTION}?stato=tutti"),
            };
            let join = if back.contains('?') { '&' } else { '?' };
            Redirect::to(&format!(
                "{back}{join}esito={esito}&richiesti={}",
                s.requested
            ))
            .into_response()
        }
        Err(e) if matches!(e.kind, Kind::Conflict | Kind::Invalid) => {
            send_page(state, signed, target, Some(&e)).await
        }
        Err(e) => error_page(signed.chrome(state, target.section()).await, &e),
    }
}

/// `GET /backoffice/notifiche/posizioni/{iupd}/invia`: the preview.
async fn preview_position(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(iupd): Path<String>,
) -> Response {
    send_page(&state, &signed, Target::Position(iupd), None).await
}

/// `POST /backoffice/notifiche/posizioni/{iupd}/invia`: the confirm.
async fn send_position(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(iupd): Path<String>,
    axum::Form(form): axum::Form<SendForm>,
) -> Response {
    do_send(&state, &signed, Target::Position(iupd), form).await
}

#[allow(clippy::result_large_err)]
fn supply_id(s: &str) -> Result<i64, Response> {
    s.parse().map_err(|_| {
        super::simple_error(
            StatusCode::NOT_FOUND,
            "Fornitura non trovata tra quelle dell'ente.",
        )
    })
}

/// `GET /backoffice/notifiche/forniture/{id}/invia`: the preview.
async fn preview_supply(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
) -> Response {
    match supply_id(&id) {
        Ok(id) => send_page(&state, &signed, Target::Supply(id), None).await,
        Err(r) => r,
    }
}

/// `POST /backoffice/notifiche/forniture/{id}/invia`: the confirm.
async fn send_supply(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<SendForm>,
) -> Response {
    match supply_id(&id) {
        Ok(id) => do_send(&state, &signed, Target::Supply(id), form).await,
        Err(r) => r,
    }
}

// ---------------------------------------------------------------- a position's

/// A position's messages, for its page.
#[derive(Default)]
pub struct PositionMessages {
    pub rows: Vec<MessageView>,
    /// The operator may ask for the invitation.
    pub may_send: bool,
    /// What the last send did, from the redirect's query.
    pub sent_notice: Option<String>,
}

/// The messages of position `iupd` for its page (none when the operator
/// may not read them), and the outcome of a send just made.
pub async fn of_position(
    state: &AppState,
    signed: &SignedIn,
    ente: &str,
    iupd: &str,
    esito: &str,
    requested: &str,
) -> PositionMessages {
    let rows = nb::of_position(&signed.ctx(state), ente, iupd)
        .await
        .map(|l| l.iter().map(MessageView::from).collect())
        .unwrap_or_default();
    PositionMessages {
        rows,
        may_send: signed
            .operator
            .rights
            .may(ente, Area::Positions, Access::Write),
        sent_notice: sent_notice(esito, requested),
    }
}

/// What a send just made did, from its redirect's query.
fn sent_notice(esito: &str, requested: &str) -> Option<String> {
    let n = requested.parse::<i64>().unwrap_or(0);
    match esito {
        "messaggi" => Some(format!(
            "Invio richiesto per {n} posizion{}: i messaggi partono dalla coda di invio, con l'esito nell'elenco.",
            if n == 1 { "e" } else { "i" }
        )),
        "messaggi-gia" => {
            Some("Questo invio era già stato richiesto: non è stato ripetuto.".to_string())
        }
        _ => None,
    }
}
