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
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("carrello non valido: {e}")).into_response();
        }
    };
    // Checkout's own limits: 1 to 5 notices per cart.
    if cart.payment_notices.is_empty() || cart.payment_notices.len() > 5 {
        return (StatusCode::BAD_REQUEST, "da 1 a 5 avvisi per carrello").into_response();
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

fn page_html(title: &str, body: &str) -> Html<String> {
    Html(format!(
        r#"<!doctype html><html lang="it"><head><meta charset="utf-8"><title>{title}</title>
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
<form method="post" action="/checkout/carts/{id}/cancel" style="display:inline"><button class="cancel" id="cancel">Annulla</button></form>"#,
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
                    "return_ok_url": s.cart.return_urls.return_ok_url,
                })
            })
            .collect(),
    ))
}
