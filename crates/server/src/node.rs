//! `POST /pagopa/paForNode`: what the pagoPA Node asks of the Enti. This
//! door parses the SOAP request, asks [`incasso_app::node`] for the answer
//! and wraps it in an envelope.
//!
//! Every answer is HTTP 200 with a SOAP envelope, OK or KO with a fault bean,
//! as pagoPA expects (it reads `outcome`, not HTTP statuses). The handler
//! never hangs the Node: work is bounded by a deadline, and anything
//! unexpected answers `PAA_SYSTEM_ERROR`.

use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use incasso_pagopa::fault::{Fault, FaultCode};
use incasso_pagopa::wire;
use incasso_pagopa::xml::Limits;
use std::time::Duration;

/// The Node waits for about 30 s; answering within 8 s leaves room for it to
/// retry, and a KO beats a hang.
const DEADLINE: Duration = Duration::from_secs(8);

pub async fn pa_for_node(
    State(state): State<AppState>,
    parts: axum::http::request::Parts,
    body: Bytes,
) -> Response {
    // Before the body is read: a stranger gets nothing but the refusal.
    if let Err(refused) = state.node_access.admit(&parts, state.limits.settings()) {
        tracing::warn!(?refused, "paForNode: caller refused");
        return (StatusCode::FORBIDDEN, "chiamante non ammesso").into_response();
    }
    let started = std::time::Instant::now();
    let request = match wire::parse_request(&body, Limits::default()) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(error = %e.description, "paForNode: syntax error");
            return match e.operation {
                Some(op) => soap(wire::fault_response(op, &e.fault())),
                None => soap_client_fault(&e.description),
            };
        }
    };
    let operation = request.operation();
    let id_pa = request.header().id_pa.clone();
    let raw = String::from_utf8_lossy(&body).into_owned();
    let payload = match tokio::time::timeout(
        DEADLINE,
        incasso_app::node::answer(&state.app, request, raw),
    )
    .await
    {
        Ok(Ok(xml)) => {
            state.metrics.node(
                operation.request_element(),
                "OK",
                started.elapsed().as_secs_f64(),
            );
            xml
        }
        Ok(Err(fault)) => {
            tracing::info!(op = ?operation, code = %fault.code, "paForNode: KO");
            state.metrics.node(
                operation.request_element(),
                fault.code.as_str(),
                started.elapsed().as_secs_f64(),
            );
            wire::fault_response(operation, &fault)
        }
        Err(_) => {
            tracing::error!(op = ?operation, "paForNode: deadline exceeded");
            state.metrics.node(
                operation.request_element(),
                "PAA_SYSTEM_ERROR",
                started.elapsed().as_secs_f64(),
            );
            wire::fault_response(
                operation,
                &Fault::new(
                    FaultCode::SystemError,
                    id_pa,
                    "tempo di elaborazione superato",
                ),
            )
        }
    };
    tracing::debug!(op = ?operation, micros = started.elapsed().as_micros() as u64, "paForNode answered");
    soap(payload)
}

fn soap(payload: String) -> Response {
    let mut r = (StatusCode::OK, wire::envelope(&payload)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    r
}

/// Not even the operation could be read: a SOAP 1.1 Client fault.
fn soap_client_fault(description: &str) -> Response {
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>soapenv:Client</faultcode><faultstring>PAA_SINTASSI_EXTRAXSD: {}</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#,
        incasso_pagopa::xml::escape(description)
    );
    let mut r = (StatusCode::INTERNAL_SERVER_ERROR, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    r
}
