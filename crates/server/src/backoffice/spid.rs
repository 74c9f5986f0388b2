//! Sign-in with SPID/CIE through the OpenID Connect identity proxy.
//!
//! `GET /backoffice/spid` (the link "Entra con SPID o CIE" of the sign-in
//! page) starts the authorization request and sends the browser to the
//! provider, with the request's `state` in a cookie of its own; the
//! provider sends it back to `GET /backoffice/spid/callback`, which opens
//! the session as the password sign-in does. A refusal is told on the
//! sign-in page, with its status.

use super::session::login_form;
use super::{SESSION_COOKIE, cookie, set_cookie};
use crate::AppState;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use incasso_app::spid::{self, Answer};
use serde::Deserialize;

/// The `state` of the request this browser started, to be matched by the
/// answer's.
const SPID_COOKIE: &str = "incasso_spid";
const COOKIE_PATH: &str = "/backoffice/spid";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/backoffice/spid", get(start))
        .route("/backoffice/spid/callback", get(callback))
}

/// Where the provider sends the person back: registered with it as is.
fn redirect_uri(state: &AppState) -> String {
    format!("{}/backoffice/spid/callback", state.app.settings.public_url)
}

/// The sign-in page telling `e`, with `e`'s status; the request's cookie
/// is dropped.
fn refused(state: &AppState, e: &incasso_app::AppError) -> Response {
    let status = crate::error::status_of(e.kind);
    let mut message = e.detail.clone();
    if let Some(first) = message.get(..1) {
        message.replace_range(..1, &first.to_uppercase());
    }
    if !message.ends_with('.') {
        message.push('.');
    }
    let mut resp = login_form(state, status, "", Some(&message), None);
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, SPID_COOKIE, "", COOKIE_PATH, Some(0)),
    );
    resp
}

async fn start(State(state): State<AppState>) -> Response {
    match spid::start(&state.app, &redirect_uri(&state)).await {
        Ok(started) => {
            let mut resp = Redirect::to(&started.url).into_response();
            let max_age = spid::REQUEST_TTL.num_seconds();
            resp.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(
                    &state,
                    SPID_COOKIE,
                    &started.state,
                    COOKIE_PATH,
                    Some(max_age),
                ),
            );
            resp
        }
        Err(e) => refused(&state, &e),
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
    let browser_state = cookie(&headers, SPID_COOKIE);
    let answer = Answer {
        state: q.state.as_deref(),
        code: q.code.as_deref(),
        error: q.error.as_deref(),
        browser_state: browser_state.as_deref(),
    };
    match spid::finish(&state.app, answer).await {
        Ok(session) => {
            let mut resp = Redirect::to("/backoffice/").into_response();
            let h = resp.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(&state, SESSION_COOKIE, &session.token, "/backoffice", None),
            );
            h.append(
                header::SET_COOKIE,
                set_cookie(&state, SPID_COOKIE, "", COOKIE_PATH, Some(0)),
            );
            resp
        }
        Err(e) => refused(&state, &e),
    }
}
