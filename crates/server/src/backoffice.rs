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

use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use incasso_app::{OperatorIdentity, operators};
use serde::Deserialize;

const SESSION_COOKIE: &str = "incasso_session";
const FORM_COOKIE: &str = "incasso_form";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/backoffice",
            get(|| async { Redirect::to("/backoffice/") }),
        )
        .route("/backoffice/", get(home))
        .route("/backoffice/login", get(login_page).post(login))
        .route("/backoffice/logout", post(logout))
        .route("/backoffice/accessibilita", get(accessibility))
        .route(
            "/backoffice/password",
            get(password_page).post(change_password),
        )
        .route("/backoffice/giornale", get(audit_log))
        .layer(axum::middleware::from_fn(security_headers))
}

/// Every page: no inline script or style, no framing, no referrer beyond
/// the site, no guessing of types.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut resp = next.run(request).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; font-src 'self' data:; style-src 'self'; \
             script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; \
             object-src 'none'",
        ),
    );
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
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
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
fn secure(state: &AppState) -> bool {
    let url = &state.app.settings.public_url;
    url.starts_with("https://")
        || ["http://localhost", "http://127.0.0.1", "http://[::1]"]
            .iter()
            .any(|local| url.starts_with(local))
}

fn set_cookie(
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

fn random_token() -> String {
    let mut b = [0u8; 32];
    let _ = getrandom::fill(&mut b);
    incasso_app::keys::hex(&b)
}

/// Equal, in a time that does not tell how much of a guess was right.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A page rendered, or a plain error when a template fails.
fn page(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "errore interno").into_response()
        }
    }
}

/// The operator signed in to this request's session; without one, the way
/// to the sign-in page.
pub struct SignedIn {
    pub operator: OperatorIdentity,
    pub csrf: String,
    pub token: String,
    pub must_change_password: bool,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let to_login = || Redirect::to("/backoffice/login").into_response();
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(to_login)?;
        match operators::session(&state.app, &token).await {
            Ok((operator, csrf, must_change_password)) => Ok(SignedIn {
                operator,
                csrf,
                token,
                must_change_password,
            }),
            Err(_) => Err(to_login()),
        }
    }
}

#[derive(Template)]
#[template(path = "backoffice/login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    username: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

/// The sign-in form, with a fresh CSRF token in its cookie and its field.
fn login_form(
    state: &AppState,
    status: StatusCode,
    username: &str,
    error: Option<&str>,
    notice: Option<&str>,
) -> Response {
    let csrf = random_token();
    let mut resp = page(&LoginPage {
        csrf: &csrf,
        username,
        error,
        notice,
    });
    *resp.status_mut() = status;
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, FORM_COOKIE, &csrf, "/backoffice/login", None),
    );
    resp
}

#[derive(Deserialize)]
struct LoginQuery {
    uscita: Option<String>,
}

async fn login_page(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<LoginQuery>,
) -> Response {
    let notice = q.uscita.is_some().then_some("Uscita effettuata.");
    login_form(&state, StatusCode::OK, "", None, notice)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, FORM_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same(&expected, &form.csrf) {
        return login_form(
            &state,
            StatusCode::FORBIDDEN,
            &form.username,
            Some("Il modulo è scaduto o non è stato inviato da questa pagina: riprovare."),
            None,
        );
    }
    if form.username.trim().is_empty() || form.password.is_empty() {
        return login_form(
            &state,
            StatusCode::BAD_REQUEST,
            &form.username,
            Some("Indicare nome utente e password."),
            None,
        );
    }
    match operators::sign_in(&state.app, &form.username, &form.password).await {
        Ok(session) => {
            let mut resp = Redirect::to("/backoffice/").into_response();
            let h = resp.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(&state, SESSION_COOKIE, &session.token, "/backoffice", None),
            );
            h.append(
                header::SET_COOKIE,
                set_cookie(&state, FORM_COOKIE, "", "/backoffice/login", Some(0)),
            );
            resp
        }
        Err(e) => {
            let status = crate::error::status_of(e.kind);
            login_form(&state, status, &form.username, Some(&e.detail), None)
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    signed: SignedIn,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    if !same(&signed.csrf, &form.csrf) {
        return (
            StatusCode::FORBIDDEN,
            Html("<!doctype html><html lang=\"it\"><title>Modulo non valido</title><p>Il modulo non è stato inviato da questa pagina: tornare al <a href=\"/backoffice/\">back office</a>.</p></html>"),
        )
            .into_response();
    }
    if let Err(e) = operators::sign_out(&state.app, &signed.token).await {
        tracing::warn!(error = %e, "sign-out failed");
    }
    // Redirected after the post, so that reloading the page sends nothing.
    let mut resp = Redirect::to("/backoffice/login?uscita=1").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", "/backoffice", Some(0)),
    );
    resp
}

#[derive(Template)]
#[template(path = "backoffice/home.html")]
struct HomePage<'a> {
    csrf: &'a str,
    full_name: &'a str,
    role: &'a str,
    ente: Option<&'a str>,
}

async fn home(signed: SignedIn) -> Response {
    // A provisional password is changed before anything else.
    if signed.must_change_password {
        return Redirect::to("/backoffice/password").into_response();
    }
    let o = &signed.operator;
    page(&HomePage {
        csrf: &signed.csrf,
        full_name: &o.full_name,
        role: o.rights.role.label(),
        ente: o.rights.ente.as_deref(),
    })
}

#[derive(Template)]
#[template(path = "backoffice/password.html")]
struct PasswordPage<'a> {
    csrf: &'a str,
    must_change: bool,
    error: Option<&'a str>,
}

async fn password_page(signed: SignedIn) -> Response {
    page(&PasswordPage {
        csrf: &signed.csrf,
        must_change: signed.must_change_password,
        error: None,
    })
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

async fn change_password(
    State(state): State<AppState>,
    signed: SignedIn,
    axum::Form(form): axum::Form<PasswordForm>,
) -> Response {
    let refuse = |status: StatusCode, message: &str| {
        let mut resp = page(&PasswordPage {
            csrf: &signed.csrf,
            must_change: signed.must_change_password,
            error: Some(message),
        });
        *resp.status_mut() = status;
        resp
    };
    if !same(&signed.csrf, &form.csrf) {
        return refuse(
            StatusCode::FORBIDDEN,
            "Il modulo è scaduto o non è stato inviato da questa pagina: riprovare.",
        );
    }
    if form.new_password != form.confirm_password {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Conferma della nuova password: non coincide con la nuova password.",
        );
    }
    let ctx = state.app.ctx(incasso_app::Caller::Operator(Box::new(
        signed.operator.clone(),
    )));
    match operators::change_password(&ctx, &form.current_password, &form.new_password).await {
        Ok(()) => Redirect::to("/backoffice/").into_response(),
        Err(e) => refuse(crate::error::status_of(e.kind), &e.detail),
    }
}

#[derive(Template)]
#[template(path = "backoffice/accessibility.html")]
struct AccessibilityPage;

async fn accessibility() -> Response {
    page(&AccessibilityPage)
}

struct AuditRow {
    at: String,
    actor: String,
    action: String,
    object: String,
    outcome: String,
}

#[derive(Template)]
#[template(path = "backoffice/audit.html")]
struct AuditPage<'a> {
    ente: Option<&'a str>,
    query: &'a str,
    rows: Vec<AuditRow>,
    next_url: Option<String>,
}

#[derive(Deserialize)]
struct AuditQuery {
    ente: Option<String>,
    #[serde(default)]
    q: String,
    cursor: Option<String>,
}

/// `value` for a URL's query.
fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The audit log of the operator's Ente (or, for the intermediary's
/// administrator, of the Ente asked for, else their own events).
async fn audit_log(
    State(state): State<AppState>,
    signed: SignedIn,
    axum::extract::Query(q): axum::extract::Query<AuditQuery>,
) -> Response {
    let ente = q
        .ente
        .clone()
        .filter(|e| !e.is_empty())
        .or_else(|| signed.operator.rights.ente.clone());
    let ctx = state.app.ctx(incasso_app::Caller::Operator(Box::new(
        signed.operator.clone(),
    )));
    let text = Some(q.q.trim()).filter(|t| !t.is_empty());
    match incasso_app::audit::search(&ctx, ente.as_deref(), text, q.cursor.as_deref(), Some(50))
        .await
    {
        Ok(found) => {
            let rows = found
                .items
                .into_iter()
                .map(|(_, e)| AuditRow {
                    at: incasso_core::time::to_rome(e.at)
                        .format("%d/%m/%Y %H:%M:%S")
                        .to_string(),
                    actor: e.actor,
                    action: e.action,
                    object: e.object,
                    outcome: e.outcome,
                })
                .collect();
            let next_url = found.next.map(|cursor| {
                let mut url = format!("/backoffice/giornale?cursor={cursor}");
                if let Some(e) = &ente {
                    url.push_str(&format!("&ente={}", query_value(e)));
                }
                if !q.q.is_empty() {
                    url.push_str(&format!("&q={}", query_value(&q.q)));
                }
                url
            });
            page(&AuditPage {
                ente: ente.as_deref(),
                query: q.q.trim(),
                rows,
                next_url,
            })
        }
        Err(e) => {
            let status = crate::error::status_of(e.kind);
            (
                status,
                Html(format!(
                    "<!doctype html><html lang=\"it\"><title>Accesso negato</title><p>{}</p><p><a href=\"/backoffice/\">Torna al back office</a></p></html>",
                    askama::filters::escape(&e.detail, askama::filters::Html).map(|s| s.to_string()).unwrap_or_default()
                )),
            )
                .into_response()
        }
    }
}
