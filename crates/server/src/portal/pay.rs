//! Paying notices on the portal: the notice found by its number (typed, or
//! read from its QR code by `qr.js` where the browser can), its PDF, the
//! cart of up to five notices of the intermediary's Enti, pagoPA Checkout
//! and the outcome. Steps: 1 Avviso, 2 Riepilogo, 3 Pagamento (on
//! Checkout), 4 Esito. Notice numbers travel only in POST bodies, the cart
//! only as an opaque id in cookie [`CART_COOKIE`] (and in the return URLs
//! Checkout sends the citizen back by).

use super::limit::Bucket;
use super::ui::{Lang, Portal, PortalChrome, Steps};
use super::{error_page, page, page_with_status};
use crate::AppState;
use crate::backoffice::{cookie, set_cookie};
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use incasso_app::portal::cart::{self, CartItem, OutcomeState};
use incasso_app::portal::notice::{self, NoticeStatus, PublicNotice};
use incasso_app::{AppError, Kind};
use serde::Deserialize;

/// The cookie that holds the cart's id.
pub const CART_COOKIE: &str = "incasso_carrello";

/// How long the browser keeps the cart: a week, enough to come back with
/// the rest of a family's notices.
const CART_COOKIE_AGE: i64 = 7 * 24 * 3600;

/// The portal's policy on the cart page, whose form ends in a redirect to
/// pagoPA Checkout: browsers apply `form-action` to a form's redirects
/// too, so Checkout's origin (known only once the cart is opened) must be
/// admitted. Everything else is the portal's usual policy.
pub(crate) const CHECKOUT_FORM_CSP: &str = "default-src 'self'; img-src 'self' data:; \
     font-src 'self' data:; style-src 'self'; script-src 'self'; \
     form-action 'self' https: http://localhost:* http://127.0.0.1:*; \
     frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/portale/{fc}/avviso", get(notice_form).post(lookup))
        .route("/portale/{fc}/avviso/pdf", post(notice_pdf))
        .route("/portale/{fc}/carrello", get(cart_page))
        .route("/portale/{fc}/carrello/aggiungi", post(add))
        .route("/portale/{fc}/carrello/togli", post(remove))
        .route("/portale/{fc}/carrello/paga", post(pay))
        .route("/portale/{fc}/carrello/esito/{outcome}", get(outcome))
}

fn steps(c: &PortalChrome, current: usize) -> Steps {
    Steps::new(
        &[
            c.t("Avviso", "Zahlungsaufforderung", "Notice"),
            c.t("Riepilogo", "Zusammenfassung", "Summary"),
            c.t("Pagamento", "Zahlung", "Payment"),
            c.t("Esito", "Ergebnis", "Outcome"),
        ],
        current,
        &[
            Some(format!("/portale/{}/avviso", c.ente)),
            Some(format!("/portale/{}/carrello", c.ente)),
        ],
    )
}

fn pay_crumbs(c: &PortalChrome, page: &str) -> PortalChrome {
    let first = c.t(
        "Paga un avviso",
        "Zahlungsaufforderung bezahlen",
        "Pay a notice",
    );
    let href = format!("/portale/{}/avviso", c.ente);
    if page.is_empty() {
        c.clone().crumbs(&[(first, "")])
    } else {
        c.clone().crumbs(&[(first, &href), (page, "")])
    }
}

/// A typed or read notice number, as the form shows it back.
#[derive(Template)]
#[template(path = "portal/pay_form.html")]
struct NoticeForm {
    chrome: PortalChrome,
    steps: Steps,
    enti: Vec<(String, String)>,
    ente: String,
    code: String,
    error: Option<String>,
    /// Notices in the cart after one was just added (0: none added).
    added: usize,
}

#[derive(Deserialize, Default)]
struct FormQuery {
    #[serde(default)]
    codice: String,
    #[serde(default)]
    aggiunti: usize,
}

async fn form_page(
    state: &AppState,
    portal: &Portal,
    ente: String,
    code: String,
    error: Option<String>,
    added: usize,
) -> Response {
    let ctx = portal.ctx(state);
    let enti = match notice::enti(&ctx).await {
        Ok(e) => e,
        Err(e) => return error_page(&portal.chrome, &e),
    };
    let c = &portal.chrome;
    page(&NoticeForm {
        steps: steps(c, 0),
        chrome: pay_crumbs(c, ""),
        enti,
        ente,
        code,
        error,
        added,
    })
}

/// `GET /portale/{fc}/avviso`: the form. `?codice=` fills it in (the
/// old `/pay/{fc}/{nav}` links land here); nothing is looked up by a GET.
async fn notice_form(
    State(state): State<AppState>,
    portal: Portal,
    Query(q): Query<FormQuery>,
) -> Response {
    let ente = portal.ente.clone();
    let code = notice::normalize(&q.codice).chars().take(40).collect();
    form_page(
        &state,
        &portal,
        ente,
        code,
        None,
        q.aggiunti.min(cart::MAX_NOTICES),
    )
    .await
}

#[derive(Deserialize)]
struct NoticeFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    codice: String,
    #[serde(default)]
    ente: String,
    #[serde(default)]
    poi: String,
}

impl NoticeFields {
    /// The Ente chosen on the form, this portal's by default.
    fn ente(&self, portal: &Portal) -> String {
        if self.ente.is_empty() {
            portal.ente.clone()
        } else {
            self.ente.chars().take(16).collect()
        }
    }
}

#[derive(Template)]
#[template(path = "portal/pay_notice.html")]
struct NoticePage {
    chrome: PortalChrome,
    steps: Steps,
    n: PublicNotice,
    status: &'static str,
    due: String,
    amount: String,
}

/// The refusal of a notice in the citizen's language (Italian always
/// complete; the use case's Italian text for the rest).
fn status_text(c: &PortalChrome, status: NoticeStatus) -> String {
    let it = status.refusal().map(|r| r.1).unwrap_or_default();
    match status {
        NoticeStatus::Paid => c.t(it, "Diese Zahlungsaufforderung ist bereits bezahlt.", "This notice is already paid."),
        NoticeStatus::Expired => c.t(it, "Diese Zahlungsaufforderung ist abgelaufen und kann nicht mehr bezahlt werden: wenden Sie sich an die Körperschaft.", "This notice has expired and can no longer be paid: contact the body."),
        NoticeStatus::Cancelled => c.t(it, "Diese Zahlungsaufforderung wurde storniert und ist nicht zu bezahlen.", "This notice was cancelled by the body and is not to be paid."),
        _ => it,
    }
    .to_string()
}

/// `POST /portale/{fc}/avviso`: looks the notice up; a payable one is
/// shown, anything else is the form again with the reason by the field.
async fn lookup(
    State(state): State<AppState>,
    portal: Portal,
    axum::Form(form): axum::Form<NoticeFields>,
) -> Response {
    if let Err(r) = portal.admit(&state, &form.csrf, Bucket::Lookup).await {
        return r;
    }
    let ente = form.ente(&portal);
    let typed: String = form.codice.chars().take(40).collect();
    let ctx = portal.ctx(&state);
    let c = &portal.chrome;
    let refusal = match notice::lookup(&ctx, &ente, &typed).await {
        Ok(n) if n.status == NoticeStatus::Payable => {
            return page(&NoticePage {
                steps: steps(c, 0),
                chrome: pay_crumbs(
                    c,
                    c.t(
                        "Avviso di pagamento",
                        "Zahlungsaufforderung",
                        "Payment notice",
                    ),
                ),
                status: n.status.code(),
                due: n.due_date.format("%d/%m/%Y").to_string(),
                amount: n.amount.to_italian(),
                n,
            });
        }
        Ok(n) => (StatusCode::CONFLICT, status_text(c, n.status)),
        Err(e) if e.code == "BAD_NOTICE_NUMBER" => (StatusCode::BAD_REQUEST, e.detail),
        Err(e) if e.kind == Kind::NotFound => (StatusCode::NOT_FOUND, e.detail),
        Err(e) => return error_page(c, &e),
    };
    let mut resp = form_page(&state, &portal, ente, typed, Some(refusal.1), 0).await;
    if resp.status() == StatusCode::OK {
        *resp.status_mut() = refusal.0;
    }
    resp
}

/// The notice's languages: bilingual Italian and German for a German
/// reader, Italian otherwise (there is no English notice).
fn notice_language(lang: Lang) -> Option<&'static str> {
    match lang {
        Lang::De => Some("it-de"),
        Lang::It | Lang::En => Some("it"),
    }
}

/// `POST /portale/{fc}/avviso/pdf`: the notice's PDF, while payable, for
/// whoever holds its number (in the body, never in a URL), rate limited.
async fn notice_pdf(
    State(state): State<AppState>,
    portal: Portal,
    axum::Form(form): axum::Form<NoticeFields>,
) -> Response {
    if let Err(r) = portal.admit(&state, &form.csrf, Bucket::Lookup).await {
        return r;
    }
    let ente = form.ente(&portal);
    let ctx = portal.ctx(&state);
    let pdf = match incasso_app::notices::language(notice_language(portal.lang)) {
        Ok(lang) => notice::notice_pdf(&ctx, &ente, &form.codice, lang).await,
        Err(e) => Err(e),
    };
    match pdf {
        Ok(pdf) => {
            let name = format!("avviso-{}.pdf", notice::normalize(&form.codice));
            (
                [
                    (header::CONTENT_TYPE, "application/pdf".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}\""),
                    ),
                ],
                pdf,
            )
                .into_response()
        }
        Err(e) => error_page(&portal.chrome, &e),
    }
}

/// A notice of the cart as its page shows it.
struct Row {
    ente: String,
    nav: String,
    company_name: String,
    description: String,
    amount: String,
}

fn row(i: &CartItem) -> Row {
    Row {
        ente: i.ente.clone(),
        nav: i.nav.clone(),
        company_name: i.company_name.clone(),
        description: i.description.clone(),
        amount: i.amount.to_italian(),
    }
}

#[derive(Template)]
#[template(path = "portal/pay_cart.html")]
struct CartPage {
    chrome: PortalChrome,
    steps: Steps,
    rows: Vec<Row>,
    total: String,
    max: usize,
    email: String,
    email_error: Option<String>,
    alert: Option<String>,
    alert_code: &'static str,
}

fn cart_id(portal_headers: &axum::http::HeaderMap) -> Option<String> {
    cookie(portal_headers, CART_COOKIE)
}

/// The cart page: the summary before paying (step 2), with the email
/// field; `alert` or `email_error` when the last action was refused.
async fn render_cart(
    state: &AppState,
    portal: &Portal,
    id: Option<&str>,
    status: StatusCode,
    email: Option<String>,
    email_error: Option<String>,
    alert: Option<&AppError>,
) -> Response {
    let ctx = portal.ctx(state);
    let c = &portal.chrome;
    let view = match cart::get(&ctx, id).await {
        Ok(v) => v,
        Err(e) => return error_page(c, &e),
    };
    let (items, stored_email) = view.map(|v| (v.items, v.email)).unwrap_or_default();
    let total = incasso_core::Cents(items.iter().map(|i| i.amount.0).sum());
    let mut resp = page_with_status(
        status,
        &CartPage {
            steps: steps(c, 1),
            chrome: c
                .clone()
                .crumbs(&[(c.t("Carrello", "Warenkorb", "Cart"), "")]),
            rows: items.iter().map(row).collect(),
            total: total.to_italian(),
            max: cart::MAX_NOTICES,
            email: email.or(stored_email).unwrap_or_default(),
            email_error,
            alert: alert.map(|e| e.detail.clone()),
            alert_code: alert.map(|e| e.code).unwrap_or(""),
        },
    );
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CHECKOUT_FORM_CSP),
    );
    resp
}

/// `GET /portale/{fc}/carrello`
async fn cart_page(
    State(state): State<AppState>,
    portal: Portal,
    headers: axum::http::HeaderMap,
) -> Response {
    let id = cart_id(&headers);
    render_cart(
        &state,
        &portal,
        id.as_deref(),
        StatusCode::OK,
        None,
        None,
        None,
    )
    .await
}

/// `POST /portale/{fc}/carrello/aggiungi`: the notice into the cart (a new
/// cart if there is none), then on to the summary (`poi=paga`) or back to
/// the form for another notice.
async fn add(
    State(state): State<AppState>,
    portal: Portal,
    headers: axum::http::HeaderMap,
    axum::Form(form): axum::Form<NoticeFields>,
) -> Response {
    if let Err(r) = portal.admit(&state, &form.csrf, Bucket::Lookup).await {
        return r;
    }
    let ctx = portal.ctx(&state);
    let ente = form.ente(&portal);
    let old = cart_id(&headers);
    match cart::add(&ctx, old.as_deref(), &portal.ente, &ente, &form.codice).await {
        Ok(id) => {
            let to = if form.poi == "paga" {
                format!("/portale/{}/carrello", portal.ente)
            } else {
                let count = cart::items(&ctx, &id).await.map(|i| i.len()).unwrap_or(1);
                format!("/portale/{}/avviso?aggiunti={count}", portal.ente)
            };
            let mut resp = Redirect::to(&to).into_response();
            if old.as_deref() != Some(id.as_str()) {
                let c = set_cookie(&state, CART_COOKIE, &id, "/portale", Some(CART_COOKIE_AGE));
                resp.headers_mut().append(header::SET_COOKIE, c);
            }
            resp
        }
        Err(e) if e.code == "CART_FULL" => {
            render_cart(
                &state,
                &portal,
                old.as_deref(),
                StatusCode::CONFLICT,
                None,
                None,
                Some(&e),
            )
            .await
        }
        Err(e) => error_page(&portal.chrome, &e),
    }
}

/// `POST /portale/{fc}/carrello/togli`
async fn remove(
    State(state): State<AppState>,
    portal: Portal,
    headers: axum::http::HeaderMap,
    axum::Form(form): axum::Form<NoticeFields>,
) -> Response {
    if let Err(r) = portal.check_csrf(&form.csrf) {
        return r;
    }
    let ctx = portal.ctx(&state);
    let Some(id) = cart_id(&headers) else {
        return Redirect::to(&format!("/portale/{}/carrello", portal.ente)).into_response();
    };
    match cart::remove(&ctx, &id, &form.ente, &form.codice).await {
        Ok(())
        | Err(AppError {
            kind: Kind::NotFound,
            ..
        }) => Redirect::to(&format!("/portale/{}/carrello", portal.ente)).into_response(),
        Err(e) => error_page(&portal.chrome, &e),
    }
}

#[derive(Deserialize)]
struct PayFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

/// `POST /portale/{fc}/carrello/paga`: the cart to pagoPA Checkout (303).
/// Pressing it twice sends the citizen to the same Checkout cart.
async fn pay(
    State(state): State<AppState>,
    portal: Portal,
    headers: axum::http::HeaderMap,
    axum::Form(form): axum::Form<PayFields>,
) -> Response {
    if let Err(r) = portal.check_csrf(&form.csrf) {
        return r;
    }
    let id = cart_id(&headers);
    let email: String = form.email.chars().take(300).collect();
    // A mistyped address costs nothing: it is refused before the limit.
    if let Err(e) = cart::parse_email(Some(&email)) {
        return render_cart(
            &state,
            &portal,
            id.as_deref(),
            StatusCode::BAD_REQUEST,
            Some(email),
            Some(e.detail),
            None,
        )
        .await;
    }
    if let Err(r) = portal.limit(&state, Bucket::Create).await {
        return r;
    }
    let ctx = portal.ctx(&state);
    let result = match id.as_deref() {
        Some(id) => cart::open_checkout(&ctx, id, Some(&email)).await,
        None => Err(AppError::invalid(
            "CART_EMPTY",
            "Il carrello è vuoto: aggiungere almeno un avviso da pagare.",
        )),
    };
    match result {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) if e.code == "BAD_EMAIL" => {
            render_cart(
                &state,
                &portal,
                id.as_deref(),
                StatusCode::BAD_REQUEST,
                Some(email),
                Some(e.detail),
                None,
            )
            .await
        }
        Err(e) if e.kind == Kind::Internal => error_page(&portal.chrome, &e),
        Err(e) => {
            render_cart(
                &state,
                &portal,
                id.as_deref(),
                crate::error::status_of(e.kind),
                Some(email),
                None,
                Some(&e),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
struct OutcomeQuery {
    #[serde(default)]
    c: String,
}

struct OutcomeRow {
    nav: String,
    company_name: String,
    description: String,
    amount: String,
    paid: bool,
}

#[derive(Template)]
#[template(path = "portal/pay_outcome.html")]
struct OutcomePage {
    chrome: PortalChrome,
    steps: Steps,
    state: &'static str,
    ok: bool,
    alert_class: &'static str,
    headline: String,
    text: String,
    rows: Vec<OutcomeRow>,
    rated: &'static str,
}

/// `GET /portale/{fc}/carrello/esito/{ok|annullato|errore}?c={cart}`:
/// where Checkout sends the citizen back. What it says comes from the
/// store (the Node's receipts), not from the URL.
async fn outcome(
    State(state): State<AppState>,
    portal: Portal,
    Path((_, returned)): Path<(String, String)>,
    Query(q): Query<OutcomeQuery>,
    headers: axum::http::HeaderMap,
) -> Response {
    let ctx = portal.ctx(&state);
    let c = &portal.chrome;
    let o = match cart::outcome(&ctx, &portal.ente, &q.c, &returned).await {
        Ok(o) => o,
        Err(e) => return error_page(c, &e),
    };
    let total = o.total().to_italian();
    let (headline, text, alert_class) = match o.state {
        OutcomeState::Paid => (
            c.t("Pagamento riuscito", "Zahlung erfolgreich", "Payment successful"),
            match &o.email {
                Some(email) => format!(
                    "{} {total} €. {} {email}.",
                    c.t("Hai pagato", "Sie haben bezahlt:", "You paid"),
                    c.t("La ricevuta è stata inviata a", "Die Quittung wurde gesendet an", "The receipt was sent to"),
                ),
                None => format!(
                    "{} {total} €. {}",
                    c.t("Hai pagato", "Sie haben bezahlt:", "You paid"),
                    c.t("pagoPA ti ha mostrato la ricevuta; puoi ritrovarla con lo IUV e il codice fiscale nella pagina Cerca una ricevuta.", "pagoPA hat Ihnen die Quittung angezeigt; Sie finden sie mit IUV und Steuernummer unter Quittung suchen.", "pagoPA showed you the receipt; you can find it again with the IUV and tax code under Find a receipt."),
                ),
            },
            "alert-success",
        ),
        OutcomeState::Pending => (
            c.t("Pagamento in attesa di conferma", "Zahlung wartet auf Bestätigung", "Payment awaiting confirmation"),
            c.t("pagoPA non ha ancora confermato il pagamento all'ente: di solito serve qualche minuto. Non pagare di nuovo: ricarica questa pagina più tardi.", "pagoPA hat die Zahlung noch nicht bestätigt: meist dauert es einige Minuten. Bitte nicht erneut bezahlen: laden Sie diese Seite später neu.", "pagoPA has not yet confirmed the payment to the body: it usually takes a few minutes. Do not pay again: reload this page later.").to_string(),
            "alert-warning",
        ),
        OutcomeState::Cancelled => (
            c.t("Pagamento annullato", "Zahlung abgebrochen", "Payment cancelled"),
            c.t("Hai annullato il pagamento: non è stato addebitato nulla. Gli avvisi sono ancora nel carrello, se vuoi pagarli.", "Sie haben die Zahlung abgebrochen: es wurde nichts abgebucht. Die Zahlungsaufforderungen sind noch im Warenkorb.", "You cancelled the payment: nothing was charged. The notices are still in the cart if you want to pay them.").to_string(),
            "alert-warning",
        ),
        OutcomeState::Partial => (
            c.t("Pagamento riuscito solo in parte", "Zahlung nur teilweise erfolgreich", "Payment only partly successful"),
            c.t("Solo alcuni avvisi risultano pagati (vedi sotto). Gli altri non sono stati addebitati: puoi pagarli dal carrello.", "Nur einige Zahlungsaufforderungen sind bezahlt (siehe unten). Die anderen wurden nicht abgebucht.", "Only some notices are paid (see below). The others were not charged: you can pay them from the cart.").to_string(),
            "alert-danger",
        ),
        OutcomeState::Error => (
            c.t("Pagamento non riuscito", "Zahlung fehlgeschlagen", "Payment failed"),
            c.t("Il pagamento non è andato a buon fine e non è stato addebitato nulla. Puoi riprovare dal carrello, anche con un altro metodo di pagamento.", "Die Zahlung ist fehlgeschlagen, es wurde nichts abgebucht. Sie können es erneut versuchen.", "The payment did not go through and nothing was charged. You can try again from the cart, with another method if you like.").to_string(),
            "alert-danger",
        ),
    };
    let ok = o.state == OutcomeState::Paid;
    let mut resp = page(&OutcomePage {
        steps: steps(c, 3),
        chrome: c.clone().crumbs(&[(
            c.t(
                "Esito del pagamento",
                "Ergebnis der Zahlung",
                "Payment outcome",
            ),
            "",
        )]),
        state: o.state.code(),
        ok,
        alert_class,
        headline: headline.to_string(),
        text,
        rows: o
            .items
            .iter()
            .map(|(i, paid)| OutcomeRow {
                nav: i.nav.clone(),
                company_name: i.company_name.clone(),
                description: i.description.clone(),
                amount: i.amount.to_italian(),
                paid: *paid,
            })
            .collect(),
        rated: "carrello",
    });
    // A paid cart is done: the browser forgets it, the next notice starts
    // a new one.
    if ok && cart_id(&headers).as_deref() == Some(q.c.as_str()) {
        let c = set_cookie(&state, CART_COOKIE, "", "/portale", Some(0));
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}
