//! pagoPA Checkout, simulated: carts, and the page where a person completes
//! or cancels the payment.

use crate::Simulator;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use incasso_pagopa::connector::Cart;
use incasso_pagopa::xml::escape;

pub async fn create_cart(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(r) = sim.outbound_fault().await {
        return r;
    }
    if let Some(required) = &sim.inner.required_key
        && headers
            .get("Ocp-Apim-Subscription-Key")
            .and_then(|v| v.to_str().ok())
            != Some(required.as_str())
    {
        return (
            StatusCode::UNAUTHORIZED,
            "subscription key mancante o errata",
        )
            .into_response();
    }
    let cart: Cart = match serde_json::from_str(&body) {
        Ok(c) => c,
        Err(e) => return bad_request(&format!("carrello non valido: {e}")),
    };
    if let Err(problem) = validate(&cart) {
        return bad_request(&problem);
    }
    let mut id = [0u8; 12];
    getrandom::fill(&mut id).expect("random source");
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    sim.inner.carts.lock().expect("carts lock").insert(
        id.clone(),
        crate::CartState {
            cart,
            status: "OPEN".into(),
            message: None,
        },
    );
    let location = format!("{}/checkout/carts/{id}", sim.public_url());
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// Checkout's 400: a ProblemJson, as `checkout_v1.json` describes it.
fn bad_request(detail: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/problem+json")],
        serde_json::json!({"title": "Bad Request", "status": 400, "detail": detail}).to_string(),
    )
        .into_response()
}

/// What pagoPA's Checkout checks of a cart (`CartRequest` of
/// `checkout_v1.json`): 1 to 5 notices, each an 18-digit notice number,
/// an 11-digit fiscal code, an amount of at least one cent, a company
/// name and a description of at most 140 characters; no notice twice;
/// the three return URLs absolute; the email, if any, an address.
pub fn validate(cart: &Cart) -> Result<(), String> {
    let notices = &cart.payment_notices;
    if notices.is_empty() || notices.len() > 5 {
        return Err(format!(
            "paymentNotices: da 1 a 5 avvisi per carrello, non {}",
            notices.len()
        ));
    }
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let mut seen = std::collections::HashSet::new();
    for (i, n) in notices.iter().enumerate() {
        if !digits(&n.notice_number, 18) {
            return Err(format!("paymentNotices[{i}].noticeNumber: 18 cifre"));
        }
        if !digits(&n.fiscal_code, 11) {
            return Err(format!("paymentNotices[{i}].fiscalCode: 11 cifre"));
        }
        if n.amount < 1 {
            return Err(format!("paymentNotices[{i}].amount: almeno 1 centesimo"));
        }
        for (name, v) in [
            ("companyName", &n.company_name),
            ("description", &n.description),
        ] {
            if v.chars().count() > 140 {
                return Err(format!("paymentNotices[{i}].{name}: al più 140 caratteri"));
            }
        }
        if !seen.insert((&n.fiscal_code, &n.notice_number)) {
            return Err(format!(
                "paymentNotices[{i}]: avviso {} ripetuto",
                n.notice_number
            ));
        }
    }
    let u = &cart.return_urls;
    for (name, url) in [
        ("returnOkUrl", &u.return_ok_url),
        ("returnCancelUrl", &u.return_cancel_url),
        ("returnErrorUrl", &u.return_error_url),
    ] {
        let absolute = url
            .split_once("://")
            .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && !rest.is_empty());
        if !absolute {
            return Err(format!("returnUrls.{name}: URL assoluto richiesto"));
        }
    }
    if let Some(email) = &cart.email_notice
        && !incasso_core::text::is_plausible_email(email)
    {
        return Err("emailNotice: indirizzo e-mail non valido".into());
    }
    Ok(())
}

fn page_html(title: &str, body: &str) -> Html<String> {
    Html(format!(
        r#"<!doctype html><html lang="it"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:40rem;margin:2rem auto;color:#17324d}}
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ccd;padding:.4rem;text-align:left}}
button{{font-size:1rem;padding:.6rem 1.4rem;margin-right:1rem;border-radius:4px;border:0;cursor:pointer}}
.pay{{background:#0066cc;color:#fff}}.cancel{{background:#e6e9f2}}.note{{color:#5c6f82;font-size:.9rem}}</style></head>
<body><h1>{title}</h1>{body}<p class="note">pagoPA Checkout &mdash; simulatore di incasso</p></body></html>"#
    ))
}

pub async fn page(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    let state = sim
        .inner
        .carts
        .lock()
        .expect("carts lock")
        .get(&id)
        .cloned();
    let Some(state) = state else {
        return (
            StatusCode::NOT_FOUND,
            page_html(
                "Carrello inesistente",
                "<p>Il carrello non esiste o è scaduto.</p>",
            ),
        )
            .into_response();
    };
    let mut rows = String::new();
    let mut total = 0i64;
    for n in &state.cart.payment_notices {
        // What the Node would show: the amount the Ente confirms now.
        let (amount, note) = match sim.node().verify(&n.fiscal_code, &n.notice_number).await {
            Ok(a) => (a.0, String::new()),
            Err(e) => (n.amount, format!(" <em>({})</em>", escape(&e.to_string()))),
        };
        total += amount;
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}<br><small>{}{note}</small></td><td>{} €</td></tr>",
            escape(&n.company_name),
            escape(&n.description),
            escape(&n.notice_number),
            incasso_core::Cents(amount).to_italian()
        ));
    }
    let actions = if state.status == "OPEN" {
        format!(
            r#"<form method="post" action="/checkout/carts/{id}/pay" style="display:inline"><button class="pay" id="pay">Paga {} €</button></form>
<form method="post" action="/checkout/carts/{id}/cancel" style="display:inline"><button class="cancel" id="cancel">Annulla</button></form>
<form method="post" action="/checkout/carts/{id}/abandon" style="display:inline"><button class="cancel" id="abandon">Chiudi la pagina</button></form>"#,
            incasso_core::Cents(total).to_italian()
        )
    } else {
        format!(
            "<p>Stato: <strong>{}</strong> {}</p>",
            state.status,
            escape(state.message.as_deref().unwrap_or(""))
        )
    };
    page_html(
        "Paga con pagoPA",
        &format!("<table><tr><th>Ente</th><th>Causale</th><th>Importo</th></tr>{rows}</table><p>{actions}</p>"),
    )
    .into_response()
}

pub async fn pay(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    let state = sim
        .inner
        .carts
        .lock()
        .expect("carts lock")
        .get(&id)
        .cloned();
    let Some(state) = state else {
        return (StatusCode::NOT_FOUND, "carrello inesistente").into_response();
    };
    if state.status != "OPEN" {
        return Redirect::to(&format!("/checkout/carts/{id}")).into_response();
    }
    let mut error = None;
    for n in &state.cart.payment_notices {
        if let Err(e) = sim.pay(&n.fiscal_code, &n.notice_number).await {
            error = Some(e.to_string());
            break;
        }
    }
    let (status, url) = match &error {
        None => ("PAID", state.cart.return_urls.return_ok_url.clone()),
        Some(_) => ("ERROR", state.cart.return_urls.return_error_url.clone()),
    };
    if let Some(s) = sim.inner.carts.lock().expect("carts lock").get_mut(&id) {
        s.status = status.into();
        s.message = error;
    }
    Redirect::to(&url).into_response()
}

pub async fn cancel(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    let url = {
        let mut carts = sim.inner.carts.lock().expect("carts lock");
        match carts.get_mut(&id) {
            Some(s) if s.status == "OPEN" => {
                s.status = "CANCELLED".into();
                s.cart.return_urls.return_cancel_url.clone()
            }
            Some(_) => format!("/checkout/carts/{id}"),
            None => return (StatusCode::NOT_FOUND, "carrello inesistente").into_response(),
        }
    };
    Redirect::to(&url).into_response()
}

/// `POST /checkout/carts/{id}/abandon`: the citizen closes the page and
/// never comes back to the Ente (no return URL is visited): the cart
/// expires unpaid, as Checkout's session would.
pub async fn abandon(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    let mut carts = sim.inner.carts.lock().expect("carts lock");
    match carts.get_mut(&id) {
        Some(s) if s.status == "OPEN" => {
            s.status = "ABANDONED".into();
            page_html(
                "Pagina chiusa",
                "<p>La sessione di pagamento è scaduta senza pagamento.</p>",
            )
            .into_response()
        }
        Some(_) => Redirect::to(&format!("/checkout/carts/{id}")).into_response(),
        None => (StatusCode::NOT_FOUND, "carrello inesistente").into_response(),
    }
}

/// `GET /simulator/carts`: every cart made so far, with its notices and
/// status, so that tests can count them.
pub async fn list(State(sim): State<Simulator>) -> axum::Json<serde_json::Value> {
    let carts = sim.inner.carts.lock().expect("carts lock");
    axum::Json(serde_json::Value::Array(
        carts
            .iter()
            .map(|(id, s)| {
                serde_json::json!({
                    "id": id,
                    "status": s.status,
                    "notices": s.cart.payment_notices.iter().map(|n| n.notice_number.clone()).collect::<Vec<_>>(),
                    "payment_notices": s.cart.payment_notices,
                    "email": s.cart.email_notice,
                    "id_cart": s.cart.id_cart,
                    "return_ok_url": s.cart.return_urls.return_ok_url,
                    "return_cancel_url": s.cart.return_urls.return_cancel_url,
                    "return_error_url": s.cart.return_urls.return_error_url,
                })
            })
            .collect(),
    ))
}
