//! The citizen's payment portal at `/portale/{fiscalCode}/`: server-rendered
//! pages (askama, Bootstrap Italia) over `incasso_app::portal`, one module
//! per area. Every page works without JavaScript; the frame (`ui`) gives
//! each the Ente's look, its languages, the breadcrumbs and the footer.
//!
//! Anonymous forms are protected by a double-submit token: a random value
//! in cookie `incasso_portale` (set by [`form_token`] on the first page) and
//! in each form's hidden `csrf` field.

pub mod area;
pub mod citizen;
pub mod enti;
pub mod limit;
mod pay;
mod receipts;
mod spontaneous;
pub mod ui;

use crate::AppState;
use crate::backoffice::{cookie, random_token, set_cookie};
use askama::Template;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use incasso_app::AppError;
use serde::Deserialize;
use ui::{FORM_COOKIE, FormToken, LANGUAGE_COOKIE, Portal, PortalChrome};

pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/portale/{fc}",
            get(|Path(fc): Path<String>| async move { Redirect::to(&format!("/portale/{fc}/")) }),
        )
        .route("/portale/{fc}/", get(home))
        .route("/portale/{fc}/stile.css", get(stylesheet))
        .route("/portale/{fc}/logo", get(logo))
        .route("/portale/{fc}/privacy", get(privacy))
        .route("/portale/{fc}/accessibilita", get(accessibility))
        .route("/portale/{fc}/valutazione", post(rate))
        .merge(citizen::routes())
        .merge(area::routes())
        .merge(enti::routes())
        .merge(pay::routes())
        .merge(receipts::routes())
        .merge(spontaneous::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            form_token,
        ))
        .layer(axum::middleware::from_fn(
            crate::backoffice::security_headers,
        ))
}

/// Gives a visitor without one a form token (cookie), and keeps the
/// language they picked from the switch.
async fn form_token(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let fresh = match cookie(request.headers(), FORM_COOKIE).filter(|t| t.len() == 64) {
        Some(_) => None,
        None => {
            let t = random_token();
            request.extensions_mut().insert(FormToken(t.clone()));
            Some(t)
        }
    };
    let picked = request.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "lingua")
            .and_then(|(_, v)| ui::Lang::from_code(v))
    });
    let mut resp = next.run(request).await;
    let make = |name: &str, value: &str| {
        Some(set_cookie(&state, name, value, "/portale", None)).filter(|v| !v.is_empty())
    };
    if let Some(t) = fresh.and_then(|t| make(FORM_COOKIE, &t)) {
        resp.headers_mut().append(header::SET_COOKIE, t);
    }
    if let Some(l) = picked.and_then(|l| make(LANGUAGE_COOKIE, l.code())) {
        resp.headers_mut().append(header::SET_COOKIE, l);
    }
    resp
}

/// The client a request comes from: the connection's peer, or the address
/// a trusted proxy puts in front of it (see `limit`).
pub(crate) fn client_of(parts: &Parts, state: &AppState) -> std::net::IpAddr {
    limit::client_ip(parts, state.limits.settings())
}

/// A page rendered, or a plain error when a template fails.
pub(crate) fn page(t: &impl Template) -> Response {
    crate::backoffice::page(t)
}

/// A page rendered with a status other than 200.
pub(crate) fn page_with_status(status: StatusCode, t: &impl Template) -> Response {
    let mut resp = page(t);
    if resp.status() == StatusCode::OK {
        *resp.status_mut() = status;
    }
    resp
}

#[derive(Template)]
#[template(path = "portal/message.html")]
struct MessagePage<'a> {
    chrome: PortalChrome,
    status: u16,
    title: &'a str,
    text: &'a str,
}

/// A page that says one thing (an error, a notice), inside the portal's
/// frame, with a way back to the portal's home.
pub fn message_page(
    chrome: &PortalChrome,
    status: StatusCode,
    title: &str,
    text: &str,
) -> Response {
    let chrome = chrome.clone().crumbs(&[(title, "")]);
    page_with_status(
        status,
        &MessagePage {
            chrome,
            status: status.as_u16(),
            title,
            text,
        },
    )
}

/// A use case's refusal, in plain words, inside the portal's frame.
pub fn error_page(chrome: &PortalChrome, e: &AppError) -> Response {
    let status = crate::error::status_of(e.kind);
    let title = match status {
        StatusCode::NOT_FOUND => chrome.t("Non trovato", "Nicht gefunden", "Not found"),
        StatusCode::FORBIDDEN => chrome.t("Accesso negato", "Zugriff verweigert", "Access denied"),
        StatusCode::CONFLICT => chrome.t(
            "Operazione non possibile",
            "Vorgang nicht möglich",
            "Not possible",
        ),
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY => chrome.t(
            "Servizio non disponibile",
            "Dienst nicht verfügbar",
            "Service unavailable",
        ),
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
            chrome.t("Dati non validi", "Ungültige Daten", "Invalid data")
        }
        _ => chrome.t("Errore", "Fehler", "Error"),
    };
    let mut text = e.detail.clone();
    for f in &e.errors {
        text.push_str(&format!(" {}: {}.", f.field, f.message));
    }
    message_page(chrome, status, title, &text)
}

/// What the home page offers: each area, where its module is mounted.
#[derive(Template)]
#[template(path = "portal/home.html")]
struct Home {
    chrome: PortalChrome,
}

async fn home(portal: Portal) -> Response {
    let chrome = portal.chrome.clone();
    page(&Home {
        chrome: PortalChrome {
            crumbs: Vec::new(),
            ..chrome
        },
    })
}

/// The Ente's brand colour for the portal's header and buttons, as a
/// stylesheet of its own: the CSP admits no inline style.
async fn stylesheet(State(state): State<AppState>, Path(fc): Path<String>) -> Response {
    let ctx = state.app.ctx(incasso_app::Caller::Public);
    let colour = match incasso_app::portal::style::get(&ctx, &fc).await {
        Ok(s) => s.brand_colour,
        Err(_) => incasso_app::portal::style::DEFAULT_BRAND_COLOUR.to_string(),
    };
    // The colour was checked as #rrggbb when it was set: nothing else can
    // reach the stylesheet.
    let css = format!(
        ".portal-brand, .portal-brand .it-header-center-wrapper {{ background-color: {colour}; }}\n\
         .portal-brand a, .portal-brand .it-brand-title, .portal-brand .it-brand-tagline {{ color: #fff; }}\n\
         .btn-primary.portal-action {{ background-color: {colour}; border-color: {colour}; }}\n"
    );
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        css,
    )
        .into_response()
}

async fn logo(State(state): State<AppState>, Path(fc): Path<String>) -> Response {
    match state.app.store.logo(&fc).await {
        Ok(Some((content_type, bytes))) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "public, max-age=300".to_string()),
            ],
            bytes,
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

#[derive(Template)]
#[template(path = "portal/privacy.html")]
struct Privacy {
    chrome: PortalChrome,
}

async fn privacy(portal: Portal) -> Response {
    let title = portal.chrome.t(
        "Informativa sulla privacy",
        "Datenschutzerklärung",
        "Privacy notice",
    );
    let chrome = portal.chrome.clone().crumbs(&[(title, "")]);
    page(&Privacy { chrome })
}

#[derive(Template)]
#[template(path = "portal/accessibility.html")]
struct Accessibility {
    chrome: PortalChrome,
}

async fn accessibility(portal: Portal) -> Response {
    let title = portal.chrome.t(
        "Dichiarazione di accessibilità",
        "Erklärung zur Barrierefreiheit",
        "Accessibility statement",
    );
    let chrome = portal.chrome.clone().crumbs(&[(title, "")]);
    page(&Accessibility { chrome })
}

#[derive(Deserialize)]
struct RatingForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    procedura: String,
    #[serde(default)]
    stelle: String,
    #[serde(default)]
    commento: String,
}

/// The rating left at the end of a procedure.
async fn rate(
    State(state): State<AppState>,
    portal: Portal,
    axum::Form(form): axum::Form<RatingForm>,
) -> Response {
    if let Err(r) = portal.check_csrf(&form.csrf) {
        return r;
    }
    let ctx = portal.ctx(&state);
    let c = &portal.chrome;
    match incasso_app::portal::rate(
        &ctx,
        &portal.ente,
        &form.procedura,
        &form.stelle,
        &form.commento,
    )
    .await
    {
        Ok(()) => message_page(
            c,
            StatusCode::OK,
            c.t("Grazie!", "Danke!", "Thank you!"),
            c.t(
                "La tua valutazione ci aiuta a migliorare il servizio.",
                "Ihre Bewertung hilft uns, den Dienst zu verbessern.",
                "Your rating helps us improve the service.",
            ),
        ),
        Err(e) => error_page(c, &e),
    }
}
