//! The personal area at `/portale/{fc}/area-personale`: what the signed-in
//! citizen owes to every Ente of the intermediary and what they paid, with
//! each notice's PDF, a button that puts a notice in the cart, and each
//! payment's receipt. Without a session, the way to sign in.
//!
//! A notice or a receipt is named in the URL by its Ente and its notice
//! number or IUV (never by the person); one that is not the signed-in
//! person's is answered as one that does not exist.

use super::citizen::{self, CitizenSession};
use super::limit::Bucket;
use super::ui::{Lang, Portal, PortalChrome};
use crate::AppState;
use crate::backoffice::{cookie, set_cookie};
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use incasso_app::portal::area::{self, AreaOption, AreaPosition, AreaSection, AreaStatus};
use incasso_app::portal::cart;
use incasso_core::time::rome_date_string;
use serde::Deserialize;

use super::pay::CART_COOKIE;
/// As long as the cart page keeps it.
const CART_COOKIE_AGE: i64 = 7 * 24 * 3600;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/portale/{fc}/area-personale", get(bacheca))
        .route("/portale/{fc}/area-personale/paga", post(pay))
        .route(
            "/portale/{fc}/area-personale/avviso/{ente}/{nav}",
            get(notice_pdf),
        )
        .route(
            "/portale/{fc}/area-personale/ricevuta/{ente}/{iuv}",
            get(receipt_pdf),
        )
}

/// An option as the page shows it.
struct OptionView {
    ente: String,
    notice_number: String,
    iuv: String,
    description: String,
    amount: String,
    due_date: String,
    payment_date: String,
    installment: bool,
    payable: bool,
    printable: bool,
    has_receipt: bool,
}

struct PositionView {
    ente_name: String,
    description: String,
    status_label: String,
    /// Bootstrap Italia's badge colour of the state.
    status_class: &'static str,
    options: Vec<OptionView>,
}

struct SectionView {
    items: Vec<PositionView>,
    /// One-based, as the links say.
    page: u32,
    pages: u32,
    total: u64,
    previous: Option<String>,
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/area.html")]
struct AreaPage {
    chrome: PortalChrome,
    name: String,
    fiscal_code: String,
    open: SectionView,
    paid: SectionView,
    /// A notice just put in the cart.
    added: bool,
}

fn euro(c: incasso_core::Cents) -> String {
    format!("{} €", c.to_italian())
}

fn status_view(s: AreaStatus, lang: Lang) -> (String, &'static str) {
    let (label, class) = match s {
        AreaStatus::ToPay => (lang.t("Da pagare", "Zu bezahlen", "To pay"), "bg-primary"),
        AreaStatus::NotYetPayable => (
            lang.t(
                "Non ancora pagabile",
                "Noch nicht zahlbar",
                "Not yet payable",
            ),
            "bg-secondary",
        ),
        AreaStatus::Expired => (lang.t("Scaduto", "Abgelaufen", "Expired"), "bg-danger"),
        AreaStatus::PartiallyPaid => (
            lang.t("Pagato in parte", "Teilweise bezahlt", "Partly paid"),
            "bg-warning text-dark",
        ),
        AreaStatus::Paid => (lang.t("Pagato", "Bezahlt", "Paid"), "bg-success"),
    };
    (label.to_string(), class)
}

fn option_view(ente: &str, o: &AreaOption) -> OptionView {
    OptionView {
        ente: ente.to_string(),
        notice_number: o.notice_number.clone(),
        iuv: o.iuv.clone(),
        description: o.description.clone(),
        amount: euro(o.amount),
        due_date: rome_date_string(o.due_date),
        payment_date: o.payment_date.map(rome_date_string).unwrap_or_default(),
        installment: o.installment,
        payable: o.payable,
        printable: o.printable,
        has_receipt: o.has_receipt,
    }
}

fn position_view(p: &AreaPosition, lang: Lang) -> PositionView {
    let (status_label, status_class) = status_view(p.status, lang);
    PositionView {
        ente_name: p.ente_name.clone(),
        description: p.description.clone(),
        status_label,
        status_class,
        options: p.options.iter().map(|o| option_view(&p.ente, o)).collect(),
    }
}

/// A section's page, with links to its neighbours (the other section's
/// page kept).
fn section_view(s: &AreaSection, lang: Lang, link: impl Fn(u32) -> String) -> SectionView {
    let page = s.page + 1;
    SectionView {
        items: s.items.iter().map(|p| position_view(p, lang)).collect(),
        page,
        pages: s.pages.max(1),
        total: s.total,
        previous: (page > 1).then(|| link(page - 1)),
        next: (page < s.pages).then(|| link(page + 1)),
    }
}

#[derive(Deserialize, Default)]
struct Pages {
    /// One-based page of the positions to pay.
    aperte: Option<u32>,
    /// One-based page of the payments made.
    pagati: Option<u32>,
    /// Set after a notice was put in the cart.
    aggiunto: Option<String>,
}

/// The way to sign in, for a request without a session.
fn to_sign_in(fc: &str) -> Response {
    Redirect::to(&format!("/portale/{fc}/accedi")).into_response()
}

async fn bacheca(
    State(state): State<AppState>,
    portal: Portal,
    Query(q): Query<Pages>,
) -> Response {
    let Some(c) = portal.chrome.citizen.clone() else {
        return to_sign_in(&portal.ente);
    };
    let open_page = q.aperte.unwrap_or(1).max(1);
    let paid_page = q.pagati.unwrap_or(1).max(1);
    let ctx = portal.ctx(&state);
    let title = portal
        .chrome
        .t("Area personale", "Persönlicher Bereich", "Personal area");
    let chrome = portal.chrome.clone().crumbs(&[(title, "")]);
    let b = match area::bacheca(&ctx, open_page - 1, paid_page - 1).await {
        Ok(b) => b,
        Err(e) => return super::error_page(&chrome, &e),
    };
    let base = citizen::area_path(&portal.ente);
    let lang = portal.lang;
    let open = section_view(&b.open, lang, |n| {
        format!("{base}?aperte={n}&pagati={paid_page}#da-pagare")
    });
    let paid = section_view(&b.paid, lang, |n| {
        format!("{base}?aperte={open_page}&pagati={n}#pagati")
    });
    super::page(&AreaPage {
        chrome,
        name: c.name,
        fiscal_code: c.fiscal_code,
        open,
        paid,
        added: q.aggiunto.is_some(),
    })
}

#[derive(Deserialize)]
struct PayForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    ente: String,
    #[serde(default)]
    avviso: String,
}

/// The session of a signed-in request whose form carries its CSRF token;
/// else the answer to give.
async fn signed_form(
    state: &AppState,
    portal: &Portal,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<CitizenSession, Response> {
    let Some(session) = citizen::session(state, headers).await else {
        return Err(to_sign_in(&portal.ente));
    };
    portal.check_csrf(csrf)?;
    if !session.check_csrf(csrf) {
        portal.check_csrf("")?;
    }
    Ok(session)
}

/// Puts the person's own notice in the cart, and goes to the cart.
async fn pay(
    State(state): State<AppState>,
    portal: Portal,
    headers: HeaderMap,
    axum::Form(form): axum::Form<PayForm>,
) -> Response {
    if let Err(r) = signed_form(&state, &portal, &headers, &form.csrf).await {
        return r;
    }
    if let Err(r) = portal.limit(&state, Bucket::Lookup).await {
        return r;
    }
    let ctx = portal.ctx(&state);
    let title = portal
        .chrome
        .t("Area personale", "Persönlicher Bereich", "Personal area");
    let chrome = portal.chrome.clone().crumbs(&[(title, "")]);
    // Only the person's own notice goes in from here: the area's check
    // answers another's as unknown.
    if let Err(e) = area::check_own_notice(&ctx, &form.ente, &form.avviso).await {
        return super::error_page(&chrome, &e);
    }
    let cart_id = cookie(&headers, CART_COOKIE);
    match cart::add(
        &ctx,
        cart_id.as_deref(),
        &portal.ente,
        &form.ente,
        &form.avviso,
    )
    .await
    {
        Ok(id) => {
            let mut resp =
                Redirect::to(&format!("/portale/{}/carrello", portal.ente)).into_response();
            resp.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&state, CART_COOKIE, &id, "/portale", Some(CART_COOKIE_AGE)),
            );
            resp
        }
        Err(e) => super::error_page(&chrome, &e),
    }
}

fn pdf(bytes: Vec<u8>, name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.pdf\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

async fn notice_pdf(
    State(state): State<AppState>,
    portal: Portal,
    Path((_, ente, nav)): Path<(String, String, String)>,
) -> Response {
    if portal.chrome.citizen.is_none() {
        return to_sign_in(&portal.ente);
    }
    if let Err(r) = portal.limit(&state, Bucket::Lookup).await {
        return r;
    }
    let ctx = portal.ctx(&state);
    // German beside Italian where the Ente speaks it: the bilingual notice.
    let german = portal.lang == Lang::De;
    match area::notice_pdf(&ctx, &ente, &nav, german).await {
        Ok(bytes) => pdf(
            bytes,
            &format!("avviso-{}", incasso_app::notices::file_safe(&nav)),
        ),
        Err(e) => super::error_page(&portal.chrome, &e),
    }
}

async fn receipt_pdf(
    State(state): State<AppState>,
    portal: Portal,
    Path((_, ente, iuv)): Path<(String, String, String)>,
) -> Response {
    if portal.chrome.citizen.is_none() {
        return to_sign_in(&portal.ente);
    }
    if let Err(r) = portal.limit(&state, Bucket::Lookup).await {
        return r;
    }
    let ctx = portal.ctx(&state);
    match area::receipt_pdf(&ctx, &ente, &iuv).await {
        Ok(bytes) => pdf(
            bytes,
            &format!("ricevuta-{}", incasso_app::notices::file_safe(&iuv)),
        ),
        Err(e) => {
            let status = crate::error::status_of(e.kind);
            let mut resp = super::error_page(&portal.chrome, &e);
            *resp.status_mut() = status;
            resp
        }
    }
}
