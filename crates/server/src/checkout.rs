//! Paying a notice online, the citizen's door: `GET /pay/{fiscalCode}/{noticeNumber}`
//! shows the notice and a *Paga* button; pressing it posts to the same URL,
//! which opens (or reuses) a pagoPA Checkout cart and sends the citizen
//! there. A GET never creates anything, so link scanners and crawlers
//! cannot make carts. The API variant returns the URL for portals that
//! redirect themselves. The decisions are [`incasso_app::checkout`]'s.

use crate::AppState;
use crate::error::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use incasso_app::{AppError, Caller, Kind, checkout};
use incasso_pagopa::xml::escape;
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutDto {
    /// Where to send the citizen to pay.
    pub checkout_url: String,
}

/// The citizen is anonymous: whoever holds a notice number may pay it.
fn citizen(state: &AppState) -> incasso_app::Ctx {
    state.app.ctx(Caller::Public)
}

fn error_page(e: AppError) -> Response {
    (
        crate::error::status_of(e.kind),
        page(
            "Pagamento non disponibile",
            &format!("<p>{}</p>", escape(&e.detail)),
        ),
    )
        .into_response()
}

/// `GET /pay/{fc}/{nav}`: what is to be paid, and the button to pay it.
pub async fn pay_page(
    State(state): State<AppState>,
    Path((ente, nav)): Path<(String, String)>,
) -> Response {
    match checkout::notice_state(&citizen(&state), &ente, &nav).await {
        Ok(n) if n.paid => page(
            "Avviso già pagato",
            &format!(
                "<p id=\"outcome\" data-status=\"PAID\">L'avviso {} risulta già pagato.</p>",
                escape(&nav)
            ),
        )
        .into_response(),
        Ok(n) => page(
            "Pagamento dell'avviso",
            &format!(
                "<dl><dt>Ente</dt><dd>{}</dd><dt>Causale</dt><dd>{}</dd><dt>Importo</dt><dd>{} €</dd><dt>Codice avviso</dt><dd>{}</dd></dl>\
                 <form method=\"post\" action=\"/pay/{}/{}\"><button type=\"submit\">Paga</button></form>",
                escape(&n.company_name),
                escape(&n.description),
                n.amount.to_italian(),
                escape(&nav),
                escape(&ente),
                escape(&nav)
            ),
        )
        .into_response(),
        Err(e) => error_page(e),
    }
}

/// `POST /pay/{fc}/{nav}`: opens the cart and sends the citizen to Checkout.
pub async fn pay(
    State(state): State<AppState>,
    Path((ente, nav)): Path<(String, String)>,
) -> Response {
    match checkout::open_cart(&citizen(&state), &ente, &nav).await {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => error_page(e),
    }
}

/// `POST /api/v1/enti/{fiscalCode}/notices/{noticeNumber}/checkout`
#[utoipa::path(post, path = "/api/v1/enti/{fiscalCode}/notices/{noticeNumber}/checkout", tag = "payments",
    params(("fiscalCode" = String, Path), ("noticeNumber" = String, Path)),
    responses((status = 200, body = CheckoutDto), (status = 404, body = crate::error::ProblemJson),
              (status = 409, body = crate::error::ProblemJson), (status = 502, body = crate::error::ProblemJson)))]
pub async fn checkout_api(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    Path((ente, nav)): Path<(String, String)>,
) -> Result<Json<CheckoutDto>, ApiError> {
    let ctx = state.ctx(caller);
    let checkout_url = checkout::open_cart(&ctx, &ente, &nav).await?;
    Ok(Json(CheckoutDto { checkout_url }))
}

/// Where Checkout sends the citizen back.
pub async fn outcome(
    State(state): State<AppState>,
    Path((ente, nav)): Path<(String, String)>,
) -> Response {
    let body = match checkout::notice_state(&citizen(&state), &ente, &nav).await {
        Ok(n) if n.paid => format!(
            "<p id=\"outcome\" data-status=\"PAID\">Pagamento registrato: {} € per l'avviso {}.</p>",
            n.amount.to_italian(),
            escape(&nav)
        ),
        Ok(_) => format!(
            "<p id=\"outcome\" data-status=\"UNPAID\">L'avviso {} risulta ancora da pagare. <a href=\"/pay/{}/{}\">Paga ora</a></p>",
            escape(&nav),
            escape(&ente),
            escape(&nav)
        ),
        Err(e) if e.kind == Kind::NotFound => "<p>Avviso inesistente.</p>".to_string(),
        Err(e) => format!("<p>{}</p>", escape(&e.detail)),
    };
    page("Esito del pagamento", &body).into_response()
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        r#"<!doctype html><html lang="it"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#17324d}}button{{font-size:1.1rem;padding:.5rem 1.5rem;background:#0066cc;color:#fff;border:0;border-radius:4px}}</style></head>
<body><main><h1>{title}</h1>{body}</main></body></html>"#
    ))
}
