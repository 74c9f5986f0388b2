//! A simulator of the pagoPA Node, its PSPs and pagoPA Checkout.
//!
//! It talks to incasso only through the real interfaces: it receives
//! Checkout carts as pagoPA does (`POST /checkout/ec/v1/carts`), shows the
//! citizen a payment page, and pays through incasso's `paForNode` SOAP
//! endpoint (verify, getPaymentV2, sendRTV2), with realistic PSP data. It
//! also answers the Node's SOAP `nodeForPa` for the Ente's outbound calls.
//! Failure modes can be switched on at run time (`PUT /simulator/faults`).

mod checkout;
pub mod node;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use node::{NodeClient, Payment, Psp, SimError};

/// How the Node reaches one Ente: through this station of this broker,
/// for the notices that carry this segregation code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub fiscal_code: String,
    pub broker_id: String,
    pub station_id: String,
    pub segregation_code: Option<u8>,
}

/// Failure modes, all off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Delay every answer to the Ente's outbound calls (carts, nodeForPa):
    /// longer than the Ente's timeout, it is a timeout.
    pub slow_ms: u64,
    /// Answer 503 to the next N outbound calls of the Ente.
    pub fail_next: u32,
    /// Send each receipt twice (the second must be refused).
    pub duplicate_receipt: bool,
    /// Wait this long between getPayment and the receipt.
    pub late_receipt_ms: u64,
    /// The PSP charges twice: two different receipts for one payment.
    pub pay_twice: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// incasso's paForNode endpoint.
    pub ente_soap_url: String,
    pub routes: Vec<Route>,
    /// If set, Checkout carts must carry this `Ocp-Apim-Subscription-Key`.
    pub required_subscription_key: Option<String>,
    pub faults: Faults,
}

#[derive(Debug, Clone, Serialize)]
struct CartState {
    cart: incasso_pagopa::connector::Cart,
    status: String,
    message: Option<String>,
}

#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

struct Inner {
    node: NodeClient,
    faults: Mutex<Faults>,
    required_key: Option<String>,
    carts: Mutex<HashMap<String, CartState>>,
    payments: Mutex<Vec<Payment>>,
    public_url: Mutex<String>,
}

impl Simulator {
    pub fn new(settings: Settings) -> Simulator {
        Simulator {
            inner: Arc::new(Inner {
                node: NodeClient::new(settings.ente_soap_url.clone(), settings.routes.clone()),
                faults: Mutex::new(settings.faults),
                required_key: settings.required_subscription_key,
                carts: Mutex::new(HashMap::new()),
                payments: Mutex::new(Vec::new()),
                public_url: Mutex::new(String::new()),
            }),
        }
    }

    pub fn node(&self) -> &NodeClient {
        &self.inner.node
    }

    pub fn faults(&self) -> Faults {
        self.inner.faults.lock().expect("faults lock").clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.inner.faults.lock().expect("faults lock") = faults;
    }

    pub fn payments(&self) -> Vec<Payment> {
        self.inner.payments.lock().expect("payments lock").clone()
    }

    /// Pays one notice as a PSP would, with the switched-on faults.
    pub async fn pay(&self, fiscal_code: &str, nav: &str) -> Result<Payment, SimError> {
        let faults = self.faults();
        let payment = self.inner.node.pay(fiscal_code, nav, &faults).await?;
        self.inner
            .payments
            .lock()
            .expect("payments lock")
            .push(payment.clone());
        Ok(payment)
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/checkout/ec/v1/carts", post(checkout::create_cart))
            .route("/checkout/carts/{id}", get(checkout::page))
            .route("/checkout/carts/{id}/pay", post(checkout::pay))
            .route("/checkout/carts/{id}/cancel", post(checkout::cancel))
            .route("/nodo/nodeForPa", post(node_for_pa))
            .route("/simulator/faults", get(get_faults).put(put_faults))
            .route("/simulator/payments", get(list_payments))
            .route("/health", get(|| async { "OK" }))
            .with_state(self.clone())
    }

    /// Serves on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let addr = listener.local_addr()?;
        *self.inner.public_url.lock().expect("url lock") = format!("http://{addr}");
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }

    fn public_url(&self) -> String {
        self.inner.public_url.lock().expect("url lock").clone()
    }

    /// Applies the outbound-call faults: delay, then maybe a 503.
    async fn outbound_fault(&self) -> Option<axum::response::Response> {
        let (slow, fail) = {
            let mut f = self.inner.faults.lock().expect("faults lock");
            let fail = f.fail_next > 0;
            if fail {
                f.fail_next -= 1;
            }
            (f.slow_ms, fail)
        };
        if slow > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(slow)).await;
        }
        fail.then(|| (StatusCode::SERVICE_UNAVAILABLE, "simulated outage").into_response())
    }
}

async fn get_faults(State(sim): State<Simulator>) -> axum::Json<Faults> {
    axum::Json(sim.faults())
}

async fn put_faults(
    State(sim): State<Simulator>,
    axum::Json(f): axum::Json<Faults>,
) -> axum::Json<Faults> {
    sim.set_faults(f.clone());
    axum::Json(f)
}

async fn list_payments(State(sim): State<Simulator>) -> axum::Json<Vec<Payment>> {
    axum::Json(sim.payments())
}

/// The Node's SOAP interface for the Ente (nodeForPa). Reporting flows come
/// with the reconciliation work; for now the list is empty, which is what
/// the Node answers an Ente with no flows.
async fn node_for_pa(State(sim): State<Simulator>, body: String) -> axum::response::Response {
    if let Some(r) = sim.outbound_fault().await {
        return r;
    }
    if !body.contains("nodoChiediElencoFlussiRendicontazione") {
        return (StatusCode::BAD_REQUEST, "operazione non simulata").into_response();
    }
    let answer = r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ws="http://ws.pagamenti.telematici.gov/"><soapenv:Body><ws:nodoChiediElencoFlussiRendicontazioneRisposta><elencoFlussiRendicontazione><totRestituiti>0</totRestituiti></elencoFlussiRendicontazione></ws:nodoChiediElencoFlussiRendicontazioneRisposta></soapenv:Body></soapenv:Envelope>"#;
    ([("content-type", "text/xml; charset=utf-8")], answer).into_response()
}
