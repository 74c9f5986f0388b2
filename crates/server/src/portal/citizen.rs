//! The citizen signed in to the portal with SPID or CIE.
//!
//! `GET /portale/{fc}/accedi` starts the sign-in and sends the browser to
//! the identity provider, with the request's `state` in a cookie of its
//! own (bound to this browser); the provider sends it back to the one
//! callback every Ente's portal shares, `GET /portale/spid/callback`, which
//! opens the session and goes to the personal area of the Ente the sign-in
//! started from (kept on the server under the state: no Ente, and nothing
//! of the person, in a URL). `POST /portale/{fc}/esci` signs out.
//!
//! The session cookie `incasso_cittadino` carries a random token (the
//! store keeps its SHA-256), `HttpOnly`, `SameSite=Lax`, `Path=/portale`,
//! `Secure` as the back office's. At sign-in the portal's form token (the
//! `csrf` field of every form) becomes the session's CSRF token, so that a
//! signed-in form is checked against the session it belongs to.

use super::ui::{FORM_COOKIE, LANGUAGE_COOKIE, Lang, Portal, PortalChrome};
use crate::AppState;
use crate::backoffice::{cookie, random_token, same, set_cookie};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use incasso_app::identity::CitizenIdentity;
use incasso_app::portal::citizen as use_case;
use incasso_app::portal::style;
use incasso_app::spid::{self, Answer};
use serde::Deserialize;

/// The session's cookie.
pub const SESSION_COOKIE: &str = "incasso_cittadino";
/// The `state` of the sign-in this browser started.
const STATE_COOKIE: &str = "incasso_cittadino_spid";
const STATE_PATH: &str = "/portale/spid";
const CALLBACK: &str = "/portale/spid/callback";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/portale/{fc}/accedi", get(start))
        .route(CALLBACK, get(callback))
        .route("/portale/{fc}/esci", post(sign_out))
        .route("/portale/{fc}/uscita", get(signed_out))
}

/// A signed-in citizen's session, as the personal area's handlers need it.
pub struct CitizenSession {
    pub citizen: CitizenIdentity,
    pub csrf: String,
    pub token: String,
}

/// The session of this request, if it is a live one.
pub async fn session(state: &AppState, headers: &HeaderMap) -> Option<CitizenSession> {
    let token = cookie(headers, SESSION_COOKIE).filter(|t| !t.is_empty())?;
    let (citizen, csrf) = use_case::session(&state.app, &token).await.ok()?;
    Some(CitizenSession {
        citizen,
        csrf,
        token,
    })
}

/// The citizen this request's session belongs to, if any.
pub async fn current(state: &AppState, headers: &HeaderMap) -> Option<CitizenIdentity> {
    session(state, headers).await.map(|s| s.citizen)
}

impl CitizenSession {
    /// The form's CSRF field is this session's.
    pub fn check_csrf(&self, sent: &str) -> bool {
        same(&self.csrf, sent)
    }
}

/// Where the provider sends every portal's people back: registered with it
/// as is.
fn redirect_uri(state: &AppState) -> String {
    format!("{}{CALLBACK}", state.app.settings.public_url)
}

/// The personal area of Ente `fc`.
pub fn area_path(fc: &str) -> String {
    format!("/portale/{fc}/area-personale")
}

async fn start(State(state): State<AppState>, portal: Portal) -> Response {
    let c = &portal.chrome;
    if c.citizen.is_some() {
        return Redirect::to(&area_path(&portal.ente)).into_response();
    }
    if !spid::enabled(&state.app) {
        return super::message_page(
            c,
            StatusCode::NOT_FOUND,
            c.t(
                "Accesso non disponibile",
                "Anmeldung nicht verfügbar",
                "Sign-in not available",
            ),
            c.t(
                "L'accesso con SPID o CIE non è attivo su questo portale: puoi comunque pagare un avviso con il suo codice.",
                "Die Anmeldung mit SPID oder CIE ist auf diesem Portal nicht aktiv: Sie können eine Zahlungsaufforderung trotzdem mit ihrem Code bezahlen.",
                "Signing in with SPID or CIE is not active on this portal: you can still pay a notice with its code.",
            ),
        );
    }
    match use_case::start(&state.app, &portal.ente, &redirect_uri(&state)).await {
        Ok(started) => {
            let mut resp = Redirect::to(&started.url).into_response();
            resp.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(
                    &state,
                    STATE_COOKIE,
                    &started.state,
                    STATE_PATH,
                    Some(spid::REQUEST_TTL.num_seconds()),
                ),
            );
            resp
        }
        Err(e) => super::error_page(c, &e),
    }
}

/// The frame of a page about Ente `ente` for a request that has no
/// `/portale/{fc}/` path (the callback): in the language the visitor chose,
/// where the Ente speaks it; without an Ente, the intermediary's plain one.
pub(super) async fn chrome_of(
    state: &AppState,
    ente: Option<&str>,
    headers: &HeaderMap,
) -> PortalChrome {
    let ctx = state.app.ctx(incasso_app::Caller::Public);
    let found = match ente {
        Some(fc) => style::get(&ctx, fc).await.ok(),
        None => None,
    };
    let mut languages = vec![Lang::It];
    if let Some(s) = &found {
        languages.extend(s.languages.iter().filter_map(|l| Lang::from_code(l.code())));
    }
    let lang = cookie(headers, LANGUAGE_COOKIE)
        .as_deref()
        .and_then(Lang::from_code)
        .filter(|l| languages.contains(l))
        .unwrap_or(Lang::It);
    PortalChrome {
        ente: found.as_ref().map(|s| s.ente.clone()).unwrap_or_default(),
        ente_name: found
            .as_ref()
            .map(|s| s.ente_name.clone())
            .unwrap_or_default(),
        has_logo: found.as_ref().is_some_and(|s| s.has_logo),
        lang,
        languages,
        csrf: cookie(headers, FORM_COOKIE).unwrap_or_default(),
        citizen: None,
        crumbs: Vec::new(),
        path: CALLBACK.to_string(),
    }
}

#[derive(Deserialize)]
struct Callback {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    let browser_state = cookie(&headers, STATE_COOKIE);
    let answer = Answer {
        state: q.state.as_deref(),
        code: q.code.as_deref(),
        error: q.error.as_deref(),
        browser_state: browser_state.as_deref(),
    };
    let (ente, result) = use_case::finish(&state.app, answer).await;
    let drop_state = set_cookie(&state, STATE_COOKIE, "", STATE_PATH, Some(0));
    match result {
        Ok(session) => {
            let mut resp = Redirect::to(&area_path(&session.ente)).into_response();
            let h = resp.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(&state, SESSION_COOKIE, &session.token, "/portale", None),
            );
            // The forms of the signed-in pages carry the session's token.
            h.append(
                header::SET_COOKIE,
                set_cookie(&state, FORM_COOKIE, &session.csrf, "/portale", None),
            );
            h.append(header::SET_COOKIE, drop_state);
            resp
        }
        Err(e) => {
            let chrome = chrome_of(&state, ente.as_deref(), &headers).await;
            let mut resp = super::error_page(&chrome, &e);
            resp.headers_mut().append(header::SET_COOKIE, drop_state);
            resp
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn sign_out(
    State(state): State<AppState>,
    portal: Portal,
    headers: HeaderMap,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    let home = portal.chrome.home();
    let Some(session) = session(&state, &headers).await else {
        // Nobody to sign out (the session had already ended): the cookie
        // goes, the way leads home.
        let mut resp = Redirect::to(&home).into_response();
        resp.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(&state, SESSION_COOKIE, "", "/portale", Some(0)),
        );
        return resp;
    };
    if let Err(r) = portal.check_csrf(&form.csrf) {
        return r;
    }
    if !session.check_csrf(&form.csrf) {
        return portal
            .check_csrf("")
            .err()
            .unwrap_or_else(|| StatusCode::FORBIDDEN.into_response());
    }
    if let Err(e) = use_case::sign_out(&state.app, &session.token).await {
        tracing::warn!(error = %e, "citizen sign-out failed");
    }
    // Redirected after the post, so that reloading the page sends nothing.
    let mut resp = Redirect::to(&format!("/portale/{}/uscita", portal.ente)).into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", "/portale", Some(0)),
    );
    // A fresh form token: the session's is not to outlive it.
    h.append(
        header::SET_COOKIE,
        set_cookie(&state, FORM_COOKIE, &random_token(), "/portale", None),
    );
    resp
}

async fn signed_out(portal: Portal) -> Response {
    let c = &portal.chrome;
    super::message_page(
        c,
        StatusCode::OK,
        c.t("Uscita effettuata", "Abgemeldet", "Signed out"),
        c.t(
            "Sei uscito dall'area personale. Per rientrare, accedi di nuovo con SPID o CIE.",
            "Sie haben den persönlichen Bereich verlassen. Melden Sie sich erneut mit SPID oder CIE an, um zurückzukehren.",
            "You have left the personal area. To come back, sign in again with SPID or CIE.",
        ),
    )
}
