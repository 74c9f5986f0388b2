//! The Ente's citizen portal, as its administrator (or the intermediary's)
//! sets it: the header's brand colour, the languages besides Italian, the
//! logo (the one printed on the notices too), a link to preview the
//! portal, and the address to link from the Ente's own site.

use super::ui::Chrome;
use super::{SignedIn, error_page, page};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use incasso_app::notices;
use incasso_app::portal::style::{self, ExtraLanguage, PortalStyle};
use incasso_core::access::Role;
use serde::Deserialize;

const SECTION: &str = "/backoffice/portale";
/// The largest logo taken: it is drawn a few centimetres wide.
const MAX_LOGO_BYTES: usize = 512 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(SECTION, get(show).post(save))
        .route(
            "/backoffice/portale/logo",
            post(upload_logo).layer(DefaultBodyLimit::max(MAX_LOGO_BYTES + 64 * 1024)),
        )
        .route("/backoffice/portale/logo/rimuovi", post(remove_logo))
}

/// The form as typed.
#[derive(Debug, Default, Deserialize)]
struct StyleForm {
    #[serde(default)]
    csrf: String,
    /// The Ente the page was about: the use case checks the operator's
    /// rights on it.
    #[serde(default)]
    ente: String,
    #[serde(default)]
    colore: String,
    #[serde(default)]
    tedesco: Option<String>,
    #[serde(default)]
    inglese: Option<String>,
}

#[derive(Template)]
#[template(path = "backoffice/portal_settings.html")]
struct SettingsPage {
    chrome: Chrome,
    ente: String,
    ente_name: String,
    colour: String,
    german: bool,
    english: bool,
    has_logo: bool,
    /// The portal's address, to link from the Ente's own site.
    portal_url: String,
    /// Whether this operator may change it.
    may_write: bool,
    /// The colour's error, next to the field.
    colour_error: Option<String>,
    /// Every other error (the logo's), in the summary.
    errors: Vec<String>,
    notice: Option<&'static str>,
}

fn may_write(signed: &SignedIn) -> bool {
    matches!(
        signed.operator.rights.role,
        Role::EnteAdmin | Role::IntermediaryAdmin
    )
}

#[derive(Deserialize)]
struct ShowQuery {
    #[serde(default)]
    esito: String,
}

fn notice_of(esito: &str) -> Option<&'static str> {
    match esito {
        "salvato" => Some("Impostazioni del portale salvate."),
        "logo" => Some("Logo caricato: compare nel portale e negli avvisi."),
        "logo-rimosso" => Some("Logo rimosso."),
        _ => None,
    }
}

/// What the page says besides the settings: the form sent back, its
/// errors, or the outcome of the last change.
#[derive(Default)]
struct Said<'a> {
    form: Option<&'a StyleForm>,
    colour_error: Option<String>,
    errors: Vec<String>,
    notice: Option<&'static str>,
}

/// The page for `s`, with what the form says where it was sent back.
fn settings_page(
    state: &AppState,
    signed: &SignedIn,
    chrome: Chrome,
    s: &PortalStyle,
    said: Said<'_>,
) -> Response {
    let Said {
        form,
        colour_error,
        errors,
        notice,
    } = said;
    let (colour, german, english) = match form {
        Some(f) => (f.colore.clone(), f.tedesco.is_some(), f.inglese.is_some()),
        None => (
            s.brand_colour.clone(),
            s.languages.contains(&ExtraLanguage::German),
            s.languages.contains(&ExtraLanguage::English),
        ),
    };
    let bad = colour_error.is_some() || !errors.is_empty();
    let mut resp = page(&SettingsPage {
        chrome,
        ente: s.ente.clone(),
        ente_name: s.ente_name.clone(),
        colour,
        german,
        english,
        has_logo: s.has_logo,
        portal_url: format!("{}/portale/{}/", state.app.settings.public_url, s.ente),
        may_write: may_write(signed),
        colour_error,
        errors,
        notice,
    });
    if bad && resp.status() == StatusCode::OK {
        *resp.status_mut() = StatusCode::BAD_REQUEST;
    }
    resp
}

async fn show(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(q): Query<ShowQuery>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let chrome = signed.chrome(&state, SECTION).await;
    match style::get(&signed.ctx(&state), &ente).await {
        Ok(s) => settings_page(
            &state,
            &signed,
            chrome,
            &s,
            Said {
                notice: notice_of(&q.esito),
                ..Said::default()
            },
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

async fn save(
    State(state): State<AppState>,
    signed: SignedIn,
    axum::Form(form): axum::Form<StyleForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = if form.ente.is_empty() {
        match signed.ente() {
            Ok(e) => e.to_string(),
            Err(r) => return r,
        }
    } else {
        form.ente.clone()
    };
    let mut languages = Vec::new();
    if form.tedesco.is_some() {
        languages.push(ExtraLanguage::German);
    }
    if form.inglese.is_some() {
        languages.push(ExtraLanguage::English);
    }
    let ctx = signed.ctx(&state);
    match style::set(&ctx, &ente, &form.colore, &languages).await {
        Ok(_) => Redirect::to(&format!("{SECTION}?esito=salvato")).into_response(),
        Err(e) if e.kind == incasso_app::Kind::Invalid => {
            let chrome = signed.chrome(&state, SECTION).await;
            match style::get(&ctx, &ente).await {
                Ok(s) => settings_page(
                    &state,
                    &signed,
                    chrome,
                    &s,
                    Said {
                        form: Some(&form),
                        colour_error: Some(capitalized(&e.detail)),
                        ..Said::default()
                    },
                ),
                Err(e) => error_page(chrome, &e),
            }
        }
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}

async fn upload_logo(
    State(state): State<AppState>,
    signed: SignedIn,
    mut form: Multipart,
) -> Response {
    let mut csrf = String::new();
    let mut file: Option<Vec<u8>> = None;
    let unreadable = || {
        super::simple_error(
            StatusCode::BAD_REQUEST,
            "Il logo non si è potuto leggere (al massimo 512 KB): riprovare dalla pagina del portale.",
        )
    };
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => return unreadable(),
        };
        match field.name().unwrap_or("") {
            "csrf" => csrf = field.text().await.unwrap_or_default(),
            "logo" => match field.bytes().await {
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
    let ctx = signed.ctx(&state);
    let refused = |message: String| async {
        let chrome = signed.chrome(&state, SECTION).await;
        match style::get(&ctx, &ente).await {
            Ok(s) => settings_page(
                &state,
                &signed,
                chrome,
                &s,
                Said {
                    errors: vec![message],
                    ..Said::default()
                },
            ),
            Err(e) => error_page(chrome, &e),
        }
    };
    let bytes = match file {
        Some(b) if !b.is_empty() => b,
        _ => return refused("Logo: scegliere un'immagine PNG o JPEG da caricare.".into()).await,
    };
    if bytes.len() > MAX_LOGO_BYTES {
        return refused("Logo: l'immagine supera i 512 KB, sceglierne una più leggera.".into())
            .await;
    }
    match notices::put_logo(&ctx, &ente, &bytes).await {
        Ok(()) => Redirect::to(&format!("{SECTION}?esito=logo")).into_response(),
        Err(e) if e.kind == incasso_app::Kind::Invalid => {
            refused(format!("Logo: {}.", e.detail)).await
        }
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn remove_logo(
    State(state): State<AppState>,
    signed: SignedIn,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    match notices::delete_logo(&signed.ctx(&state), &ente).await {
        Ok(()) => Redirect::to(&format!("{SECTION}?esito=logo-rimosso")).into_response(),
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}
