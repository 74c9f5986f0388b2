//! `PATCH /pos/ci/sessions/{sessionId}/auth-requests`: pagoPA's POS gateway
//! tells the Ente the outcome of a card authorization
//! (`ciNotifyAuthorizationOutcome` of `pos_ci_layer.json`). The door checks
//! what the spec requires of the request, calls
//! [`incasso_app::pos::callback`] and answers 204, or ProblemJson (400
//! for a malformed or conflicting callback, 404 for an unknown session).
//!
//! The spec secures this call with mutual TLS only (a client certificate
//! of pagoPA's gateway), which is a deployment matter: the reverse proxy
//! in front of incasso verifies it and reaches this path only for that
//! client. No API key is asked here, because the gateway sends none.

use crate::AppState;
use crate::error::ApiError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::patch;
use incasso_pagopa::pos::{AuthorizationCallback, is_uuid};

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/pos/ci/sessions/{sessionId}/auth-requests",
        patch(notify_outcome),
    )
}

async fn notify_outcome(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(correlation_id) = headers
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_uuid(v))
    else {
        return ApiError::bad_request(
            "POS_CORRELATION_ID",
            "header x-correlation-id mancante o non UUID",
        )
        .into_response();
    };
    if !is_uuid(&session_id) {
        return ApiError::bad_request("POS_SESSION_ID", "sessionId non è un UUID").into_response();
    }
    let callback: AuthorizationCallback = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return ApiError::bad_request(
                "POS_CALLBACK_INVALID",
                format!("corpo della notifica non valido: {e}"),
            )
            .into_response();
        }
    };
    match incasso_app::pos::callback(&state.app, &session_id, correlation_id, &callback).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
