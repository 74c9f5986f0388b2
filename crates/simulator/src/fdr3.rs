//! The Node's FdR 3 REST interface for Enti (`fdr_organization.json`):
//! the published flows of an Ente, a flow's header, and its payments, paged
//! as the real service pages them. The same flows the SOAP interface gives.

use crate::{PublishedFlow, Simulator};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use incasso_core::Cents;
use incasso_core::fdr::{FlowOutcome, PartyIdKind};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
pub(crate) struct Paging {
    page: Option<u64>,
    size: Option<u64>,
}

impl Paging {
    /// The page asked for (from 1), and its size (the service's default
    /// is 1000, its maximum too).
    fn get(&self) -> (u64, u64) {
        (
            self.page.unwrap_or(1).max(1),
            self.size.unwrap_or(1000).clamp(1, 1000),
        )
    }
}

/// A page of `items`, with FdR 3's metadata.
fn page_of(items: Vec<Value>, paging: &Paging) -> Value {
    let (page, size) = paging.get();
    let total_pages = (items.len() as u64).div_ceil(size).max(1);
    let data: Vec<Value> = items
        .into_iter()
        .skip(((page - 1) * size) as usize)
        .take(size as usize)
        .collect();
    json!({
        "metadata": {"pageSize": size, "pageNumber": page, "totPage": total_pages},
        "count": data.len(),
        "data": data,
    })
}

/// Euro as the JSON number the service sends. Only the simulator makes
/// floats of money, because the wire format is one.
fn euro(c: Cents) -> Value {
    json!(c.0 as f64 / 100.0)
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(
            json!({"httpStatusCode": 404, "httpStatusDescription": "Not Found",
            "appErrorCode": "FDR-0702", "errors": [{"message": what}]}),
        ),
    )
        .into_response()
}

impl Simulator {
    fn published_flow(
        &self,
        ente: &str,
        fdr: &str,
        psp: &str,
        revision: u64,
    ) -> Option<PublishedFlow> {
        let flows = self.inner.flows.lock().expect("flows lock");
        flows
            .published
            .iter()
            .find(|f| f.ente == ente && f.flow_id == fdr && f.flow.psp_id == psp && revision == 1)
            .cloned()
    }
}

pub(crate) async fn list(
    State(sim): State<Simulator>,
    Path(ente): Path<String>,
    Query(paging): Query<Paging>,
) -> Response {
    if let Some(r) = sim.outbound_fault().await {
        return r;
    }
    let items: Vec<Value> = {
        let flows = sim.inner.flows.lock().expect("flows lock");
        flows
            .published
            .iter()
            .filter(|f| f.ente == ente)
            .map(|f| {
                json!({
                    "fdr": f.flow_id,
                    "organizationId": f.ente,
                    "revision": 1,
                    "published": f.published_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                })
            })
            .collect()
    };
    axum::Json(page_of(items, &paging)).into_response()
}

pub(crate) async fn header(
    State(sim): State<Simulator>,
    Path((ente, fdr, revision, psp)): Path<(String, String, u64, String)>,
) -> Response {
    if let Some(r) = sim.outbound_fault().await {
        return r;
    }
    let Some(p) = sim.published_flow(&ente, &fdr, &psp, revision) else {
        return not_found("flusso non trovato");
    };
    let f = &p.flow;
    let at = p
        .published_at
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    axum::Json(json!({
        "status": "PUBLISHED",
        "revision": revision,
        "created": at,
        "updated": at,
        "published": at,
        "fdr": f.flow_id,
        "fdrDate": f.flow_date_time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "regulation": f.settlement_ref,
        "regulationDate": f.settlement_date.to_string(),
        "bicCodePouringBank": f.bic,
        "sender": {
            "type": match f.psp_id_kind {
                PartyIdKind::LegalPerson => "LEGAL_PERSON",
                PartyIdKind::Abi => "ABI_CODE",
                PartyIdKind::Bic => "BIC_CODE",
            },
            "id": f.psp_id,
            "pspId": f.psp_id,
            "pspName": f.psp_name.clone().unwrap_or_else(|| "PSP simulato".into()),
            "pspBrokerId": f.psp_id,
            "channelId": format!("{}_01", f.psp_id),
        },
        "receiver": {
            "id": f.ente,
            "organizationId": f.ente,
            "organizationName": f.ente_name.clone().unwrap_or_else(|| format!("Ente {}", f.ente)),
        },
        "computedTotPayments": f.payments.len(),
        "computedSumPayments": euro(f.lines_total()),
        "totPayments": f.declared_count,
        "sumPayments": euro(f.declared_total),
    }))
    .into_response()
}

pub(crate) async fn payments(
    State(sim): State<Simulator>,
    Path((ente, fdr, revision, psp)): Path<(String, String, u64, String)>,
    Query(paging): Query<Paging>,
) -> Response {
    if let Some(r) = sim.outbound_fault().await {
        return r;
    }
    let Some(p) = sim.published_flow(&ente, &fdr, &psp, revision) else {
        return not_found("flusso non trovato");
    };
    let items: Vec<Value> = p
        .flow
        .payments
        .iter()
        .enumerate()
        .map(|(i, l)| {
            json!({
                "index": i + 1,
                "iuv": l.iuv,
                "iur": l.iur,
                "idTransfer": l.transfer_index.unwrap_or(1),
                "pay": euro(l.amount),
                "payStatus": match l.outcome {
                    FlowOutcome::Paid => "EXECUTED",
                    FlowOutcome::Revoked => "REVOKED",
                    FlowOutcome::StandIn => "STAND_IN",
                    FlowOutcome::StandInWithoutReceipt => "STAND_IN_NO_RPT",
                    FlowOutcome::PaidWithoutReceipt => "NO_RPT",
                },
                "payDate": format!("{}T12:00:00Z", l.outcome_date),
            })
        })
        .collect();
    axum::Json(page_of(items, &paging)).into_response()
}
