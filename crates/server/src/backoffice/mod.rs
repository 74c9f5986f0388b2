//! The back office at `/backoffice/`: server-rendered pages (askama,
//! Bootstrap Italia) over the application layer. This module holds the
//! door's part of people: the sign-in form (`username`, `password` and a
//! CSRF field, posted to the same path), sign-out (`POST
//! /backoffice/logout`), the session cookie, CSRF on every form, and the
//! security headers of every page.
//!
//! The session cookie carries a random token (its SHA-256 is what the store
//! keeps); it is `HttpOnly`, `SameSite=Lax`, limited to `/backoffice`, and
//! `Secure` whenever incasso is reached over HTTPS or on this machine
//! (where browsers take `Secure` cookies over plain HTTP). Before sign-in,
//! the form's CSRF token is checked against a cookie of its own (double
//! submit); after, against the one bound to the session.

mod accertamenti;
mod audit;
mod catalogue;
mod dashboard;
mod desk;
mod keys;
mod layouts;
mod notifications;
mod notify_email;
mod portal_settings;
mod positions;
mod reporting;
mod session;
mod spid;
mod stations;
mod supplies;
mod terminals;
pub mod ui;
mod users;
mod webhooks;

use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use incasso_app::{AppError, Caller, Ctx, OperatorIdentity, operators};
use serde::Deserialize;

const SESSION_COOKIE: &str = "incasso_session";
const FORM_COOKIE: &str = "incasso_form";
/// The Ente an intermediary's administrator is working on. Not a secret:
/// every use case checks the operator's rights on the Ente it is given.
const ENTE_COOKIE: &str = "incasso_ente";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/backoffice",
            get(|| async { Redirect::to("/backoffice/") }),
        )
        .route("/backoffice/ente", post(choose_ente))
        .merge(session::routes())
        .merge(audit::routes())
        .merge(dashboard::routes())
        .merge(positions::routes())
        .merge(desk::routes())
        .merge(supplies::routes())
        .merge(layouts::routes())
        .merge(reporting::routes())
        .merge(accertamenti::routes())
        .merge(catalogue::routes())
        .merge(stations::routes())
        .merge(users::routes())
        .merge(keys::routes())
        .merge(portal_settings::routes())
        .merge(spid::routes())
        .merge(terminals::routes())
        .merge(webhooks::routes())
        .merge(notifications::routes())
        .merge(notify_email::routes())
        .layer(axum::middleware::from_fn(security_headers))
}

/// Every page: no inline script or style, no framing, no referrer beyond
/// the site, no guessing of types.
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let mut resp = next.run(request).await;
    let h = resp.headers_mut();
    // A page whose form ends in a redirect to pagoPA Checkout sets its own
    // policy (the same, with Checkout's origin admitted by `form-action`).
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; font-src 'self' data:; style-src 'self'; \
                 script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; \
                 object-src 'none'",
            ),
        );
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The value of cookie `name` in the request.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Whether cookies may be `Secure`: HTTPS, or this machine.
pub(crate) fn secure(state: &AppState) -> bool {
    let url = &state.app.settings.public_url;
    url.starts_with("https://")
        || ["http://localhost", "http://127.0.0.1", "http://[::1]"]
            .iter()
            .any(|local| url.starts_with(local))
}

pub(crate) fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<i64>,
) -> HeaderValue {
    let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax");
    if secure(state) {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub(crate) fn random_token() -> String {
    let mut b = [0u8; 32];
    let _ = getrandom::fill(&mut b);
    incasso_app::keys::hex(&b)
}

/// Equal, in a time that does not tell how much of a guess was right.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A page rendered, or a plain error when a template fails.
pub(crate) fn page(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "errore interno").into_response()
        }
    }
}

/// The operator signed in to this request's session, and the Ente their
/// pages are about; without a session, the way to the sign-in page.
pub struct SignedIn {
    pub operator: OperatorIdentity,
    pub csrf: String,
    pub token: String,
    pub must_change_password: bool,
    /// The operator's Ente; for the intermediary's administrator, the one
    /// chosen (else the first), none when there is no Ente at all.
    pub ente: Option<String>,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let to_login = || Redirect::to("/backoffice/login").into_response();
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(to_login)?;
        let (operator, csrf, must_change_password) = operators::session(&state.app, &token)
            .await
            .map_err(|_| to_login())?;
        // A provisional password is changed before anything else, on every
        // page: one rule here rather than a check in each handler.
        if must_change_password
            && !matches!(
                parts.uri.path(),
                "/backoffice/password" | "/backoffice/logout"
            )
        {
            return Err(Redirect::to("/backoffice/password").into_response());
        }
        let ente = match &operator.rights.ente {
            Some(own) => Some(own.clone()),
            None => {
                let ctx = state.app.ctx(Caller::Operator(Box::new(operator.clone())));
                let chosen = cookie(&parts.headers, ENTE_COOKIE).filter(|c| !c.is_empty());
                match chosen {
                    Some(c) if incasso_app::admin::get_ente(&ctx, &c).await.is_ok() => Some(c),
                    _ => incasso_app::admin::list_enti(&ctx, None, Some(1))
                        .await
                        .ok()
                        .and_then(|p| p.items.into_iter().next())
                        .map(|e| e.fiscal_code),
                }
            }
        };
        Ok(SignedIn {
            operator,
            csrf,
            token,
            must_change_password,
            ente,
        })
    }
}

impl SignedIn {
    /// The context of a use case called by this operator.
    pub fn ctx(&self, state: &AppState) -> Ctx {
        state
            .app
            .ctx(Caller::Operator(Box::new(self.operator.clone())))
    }

    /// The Ente the page is about; an error page when there is none.
    // The error is the page answered, made at most once a request: boxing
    // it would only add an allocation to every handler's path.
    #[allow(clippy::result_large_err)]
    pub fn ente(&self) -> Result<&str, Response> {
        self.ente.as_deref().ok_or_else(|| {
            simple_error(
                StatusCode::NOT_FOUND,
                "Nessun ente configurato: crearne uno prima di usare il back office.",
            )
        })
    }

    /// The form's CSRF field is the session's: else a 403 page that asks
    /// to try again from the form.
    #[allow(clippy::result_large_err)]
    pub fn check_csrf(&self, sent: &str) -> Result<(), Response> {
        if same(&self.csrf, sent) {
            Ok(())
        } else {
            Err(simple_error(
                StatusCode::FORBIDDEN,
                "Il modulo è scaduto o non è stato inviato da questa pagina: tornare indietro, ricaricare la pagina e riprovare.",
            ))
        }
    }

    /// The frame of a page of section `section` (one of [`ui::NAV`]'s
    /// paths), with the navigation this operator's rights allow.
    pub async fn chrome(&self, state: &AppState, section: &str) -> ui::Chrome {
        ui::Chrome::new(state, self, section).await
    }
}

/// A page that only says what went wrong, for requests that have no page
/// of their own to show it on.
pub fn simple_error(status: StatusCode, message: &str) -> Response {
    let t = ui::ErrorPage {
        chrome: None,
        status: status.as_u16(),
        message,
    };
    let mut resp = page(&t);
    *resp.status_mut() = status;
    resp
}

/// A use case's refusal on a page of the back office, inside its frame.
pub fn error_page(chrome: ui::Chrome, e: &AppError) -> Response {
    let status = crate::error::status_of(e.kind);
    let message = if e.errors.is_empty() {
        e.detail.clone()
    } else {
        let fields: Vec<String> = e
            .errors
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect();
        format!("{} ({})", e.detail, fields.join("; "))
    };
    let t = ui::ErrorPage {
        chrome: Some(chrome),
        status: status.as_u16(),
        message: &message,
    };
    let mut resp = page(&t);
    *resp.status_mut() = status;
    resp
}

#[derive(Deserialize)]
struct ChooseEnte {
    #[serde(default)]
    ente: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    back: String,
}

/// The intermediary's administrator picks the Ente their pages are about.
async fn choose_ente(
    State(state): State<AppState>,
    signed: SignedIn,
    axum::Form(form): axum::Form<ChooseEnte>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ctx = signed.ctx(&state);
    if let Err(e) = incasso_app::admin::get_ente(&ctx, &form.ente).await {
        return error_page(signed.chrome(&state, "/backoffice/").await, &e);
    }
    // Only back to a page of the back office: never an open redirect.
    let back = if form.back.starts_with("/backoffice/") && !form.back.contains("//") {
        form.back.as_str()
    } else {
        "/backoffice/"
    };
    let mut resp = Redirect::to(back).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, ENTE_COOKIE, &form.ente, "/backoffice", None),
    );
    resp
}
