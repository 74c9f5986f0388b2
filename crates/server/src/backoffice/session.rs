//! Signing in and out, the provisional password's change, and the
//! accessibility statement.

use super::{FORM_COOKIE, SESSION_COOKIE, SignedIn, cookie, page, random_token, same, set_cookie};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use incasso_app::operators;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/backoffice/login", get(login_page).post(login))
        .route("/backoffice/logout", post(logout))
        .route("/backoffice/accessibilita", get(accessibility))
        .route(
            "/backoffice/password",
            get(password_page).post(change_password),
        )
}

#[derive(Template)]
#[template(path = "backoffice/login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    username: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
    /// Whether to offer "Entra con SPID o CIE".
    spid: bool,
}

/// The sign-in form, with a fresh CSRF token in its cookie and its field.
pub(super) fn login_form(
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
        spid: incasso_app::spid::enabled(&state.app),
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
