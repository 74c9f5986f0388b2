//! The intermediary's page at `/portale/`: every Ente it serves, each with
//! a link to its payment portal. No Ente's look: the plain frame, titled
//! "Pagamenti pagoPA".

use super::ui::PortalChrome;
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use incasso_app::portal::enti::{self, EntePortal};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/portale", get(|| async { Redirect::to("/portale/") }))
        .route("/portale/", get(list))
}

#[derive(Template)]
#[template(path = "portal/enti.html")]
struct EntiPage {
    chrome: PortalChrome,
    enti: Vec<EntePortal>,
}

async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut chrome = super::citizen::chrome_of(&state, None, &headers).await;
    chrome.path = "/portale/".into();
    let ctx = state.app.ctx(incasso_app::Caller::Public);
    match enti::list(&ctx).await {
        Ok(enti) => super::page(&EntiPage { chrome, enti }),
        Err(e) => super::error_page(&chrome, &e).into_response(),
    }
}
