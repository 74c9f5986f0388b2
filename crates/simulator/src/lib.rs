//! A simulator of the pagoPA Node, its PSPs and pagoPA Checkout.
//!
//! It talks to incasso only through the real interfaces: it receives
//! Checkout carts as pagoPA does (`POST /checkout/ec/v1/carts`), shows the
//! citizen a payment page, and pays through incasso's `paForNode` SOAP
//! endpoint (verify, getPaymentV2, sendRTV2), with realistic PSP data. It
//! also answers the Node's SOAP `nodeForPa` for the Ente's outbound calls.
//! It plays the SPID/CIE identity proxy too: an OpenID Connect provider
//! with test identities ([`oidc`]).
//! Failure modes can be switched on at run time (`PUT /simulator/faults`).

mod checkout;
mod fdr3;
pub mod io;
pub mod node;
pub mod oidc;
pub mod pos;
pub mod smtp;
pub mod webhooks;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use node::{NodeClient, PaidTransfer, Payment, Psp, SimError};
pub use oidc::{IdTokenFault, OidcClient, OidcSettings, TestIdentity};
pub use smtp::{MailAttachment, ReceivedMail};

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
    /// The Node never delivers the receipt, though the PSP was paid: the
    /// reporting flow lists a payment the Ente has no receipt of.
    pub lose_receipt: bool,
    /// The PSP collected the payment without a receipt (no RPT): the flow
    /// reports it with outcome 9, and no receipt is sent.
    pub paid_without_receipt: bool,
    /// PSPs and the bank make the mistakes real ones make, by the flow's
    /// number ([`ReportingQuirk`]): a flow with an IUV nobody issued, a
    /// header that miscounts its lines, a line at another amount, a payment
    /// reported again; a transfer booked twice, and in every journal a
    /// transfer that is no pagoPA flow's, on the Ente's account and on
    /// another one.
    pub reporting_quirks: bool,
    /// The SPID/CIE provider's ID tokens are spoiled this way.
    pub id_token: IdTokenFault,
    /// The SMTP server answers 451 (try again later) at the end of the
    /// next N messages.
    pub smtp_transient_next: u32,
    /// The SMTP server refuses every message for good (554).
    pub smtp_permanent: bool,
}

/// A PSP's or bank's mistake in reporting, chosen by the flow's number
/// when [`Faults::reporting_quirks`] is on (decided so that tests can count
/// on them; the treasury's own [`TreasuryQuirk`]s come on top).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportingQuirk {
    None,
    /// The flow's first line is one cent more than the position's transfer.
    LineAmount,
    /// The flow also reports a payment of an IUV nobody issued.
    UnknownIuv,
    /// The bank books the flow's transfer twice.
    BookedTwice,
    /// The header declares one payment more than the flow lists.
    HeaderCount,
    /// The flow reports again the first payment of the Ente's previous flow.
    RepeatedPayment,
}

impl ReportingQuirk {
    pub fn of(number: u64) -> ReportingQuirk {
        match number % 10 {
            0 => ReportingQuirk::LineAmount,
            1 => ReportingQuirk::UnknownIuv,
            2 => ReportingQuirk::BookedTwice,
            4 => ReportingQuirk::HeaderCount,
            7 => ReportingQuirk::RepeatedPayment,
            _ => ReportingQuirk::None,
        }
    }
}

/// The account of the Ente's other bank, which incasso does not know: a
/// camt statement's transfers on it are not the Ente's to match.
pub const OTHER_ACCOUNT: &str = "IT60X0542811101000000123456";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// incasso's paForNode endpoint.
    pub ente_soap_url: String,
    pub routes: Vec<Route>,
    /// If set, Checkout carts must carry this `Ocp-Apim-Subscription-Key`.
    pub required_subscription_key: Option<String>,
    pub faults: Faults,
    /// Where browsers reach this simulator (its Checkout pages); by default
    /// the address it listens on.
    pub public_url: Option<String>,
    /// The SPID/CIE identity proxy: its test identities and clients.
    #[serde(default)]
    pub oidc: OidcSettings,
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
    /// Reporting flows published so far, and how many payments they cover.
    flows: Mutex<Flows>,
    public_url: Mutex<String>,
    oidc: oidc::Provider,
    /// Messages the SMTP server took ([`smtp`]).
    mail: Mutex<Vec<ReceivedMail>>,
    /// Webhook receivers ([`webhooks`]).
    webhooks: webhooks::Receivers,
    /// The POS gateway, its terminals and acquirer ([`pos`]).
    pos: pos::PosState,
    /// App IO's services API ([`io`]).
    io: io::IoState,
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
                flows: Mutex::new(Flows::default()),
                public_url: Mutex::new(settings.public_url.clone().unwrap_or_default()),
                oidc: oidc::Provider::new(settings.oidc.clone()),
                mail: Mutex::new(Vec::new()),
                webhooks: webhooks::Receivers::new(&settings.ente_soap_url),
                pos: Default::default(),
                io: Default::default(),
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

    /// Records a payment made elsewhere (another process playing the same
    /// PSP), for the flows to report.
    pub fn record_payment(&self, payment: Payment) {
        self.inner
            .payments
            .lock()
            .expect("payments lock")
            .push(payment);
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
            .route("/checkout/carts/{id}/abandon", post(checkout::abandon))
            .route("/nodo/nodeForPa", post(node_for_pa))
            .route(
                "/fdr-org/service/v1/organizations/{ente}/fdrs",
                get(fdr3::list),
            )
            .route(
                "/fdr-org/service/v1/organizations/{ente}/fdrs/{fdr}/revisions/{revision}/psps/{psp}",
                get(fdr3::header),
            )
            .route(
                "/fdr-org/service/v1/organizations/{ente}/fdrs/{fdr}/revisions/{revision}/psps/{psp}/payments",
                get(fdr3::payments),
            )
            .route(
                "/.well-known/openid-configuration",
                get(oidc::discovery),
            )
            .route("/authorize", get(oidc::authorize_page).post(oidc::authorize))
            .route("/token", post(oidc::token))
            .route("/jwks", get(oidc::jwks))
            .route("/simulator/faults", get(get_faults).put(put_faults))
            .route(
                "/simulator/payments",
                get(list_payments).post(record_payment),
            )
            .route("/simulator/carts", get(checkout::list))
            .route("/simulator/mail", get(list_mail).delete(clear_mail))
            .route("/simulator/flows", post(publish_flows))
            .route("/simulator/treasury/{ente}", get(treasury_journal))
            .route("/health", get(|| async { "OK" }))
            .merge(webhooks::routes())
            .merge(pos::routes())
            .merge(io::routes())
            .with_state(self.clone())
    }

    /// Serves on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let addr = listener.local_addr()?;
        {
            let mut url = self.inner.public_url.lock().expect("url lock");
            if url.is_empty() {
                *url = format!("http://{addr}");
            }
        }
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

/// The messages the SMTP server took, oldest first.
async fn list_mail(State(sim): State<Simulator>) -> axum::Json<Vec<ReceivedMail>> {
    axum::Json(sim.mail())
}

async fn clear_mail(State(sim): State<Simulator>) -> StatusCode {
    sim.clear_mail();
    StatusCode::NO_CONTENT
}

async fn list_payments(State(sim): State<Simulator>) -> axum::Json<Vec<Payment>> {
    axum::Json(sim.payments())
}

/// A payment made by another process playing this PSP (`incasso simulator
/// pay`): recorded, so that this simulator's flows report it.
async fn record_payment(
    State(sim): State<Simulator>,
    axum::Json(payment): axum::Json<Payment>,
) -> StatusCode {
    sim.record_payment(payment);
    StatusCode::NO_CONTENT
}

/// The reporting flows the PSPs have published, and the treasury's view
/// of their bank transfers.
#[derive(Default)]
struct Flows {
    published: Vec<PublishedFlow>,
    /// Payments already in a flow (the first this many).
    reported: usize,
    next_number: u64,
    /// Flows whose transfer the treasury has journaled (by flow id).
    journaled: std::collections::HashSet<String>,
    /// Flows held back once, to arrive in a later journal.
    held_back: std::collections::HashSet<String>,
    journals: u64,
    /// Each Ente's latest flow's first line, for a PSP that reports it
    /// again.
    last_line: HashMap<String, incasso_core::fdr::FlowPayment>,
}

/// One flow as the Node holds it.
#[derive(Debug, Clone, Serialize)]
pub struct PublishedFlow {
    pub ente: String,
    pub flow_id: String,
    pub flow_date_time: String,
    pub total_cents: i64,
    pub payments: usize,
    /// The flow's number, which decides how the treasury mangles it.
    pub number: u64,
    pub settlement_ref: String,
    #[serde(skip)]
    xml: String,
    #[serde(skip)]
    flow: incasso_core::fdr::ReportingFlow,
    /// When it was published, for FdR 3's list.
    #[serde(skip)]
    published_at: chrono::DateTime<chrono::Utc>,
}

/// How the simulated treasury writes its statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreasuryFormat {
    /// OPI giornale di cassa 1.8, as the Ente's treasurer bank sends it.
    Opi,
    /// ISO 20022 camt.053.001.02, of the Ente's account `iban`.
    Camt053 { iban: String },
}

/// How the treasury reports one flow's bank transfer, as real banks do
/// (decided by the flow's number, so tests can count on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreasuryQuirk {
    /// The causale exactly as the PSP wrote it.
    Exact,
    /// A space inside the flow id's date.
    SpaceInDate,
    /// The bank kept only its own words; the TRN identifies the transfer.
    TrnOnly,
    /// The amount is off by one cent.
    WrongAmount,
    /// The movement never appears.
    Missing,
    /// The movement appears one journal later.
    Late,
}

impl TreasuryQuirk {
    pub fn of(number: u64) -> TreasuryQuirk {
        match number % 10 {
            3 => TreasuryQuirk::SpaceInDate,
            5 => TreasuryQuirk::TrnOnly,
            6 => TreasuryQuirk::WrongAmount,
            8 => TreasuryQuirk::Missing,
            9 => TreasuryQuirk::Late,
            _ => TreasuryQuirk::Exact,
        }
    }
}

impl Simulator {
    /// Publishes the reporting flows of the payments not yet reported: one
    /// per PSP, beneficiary Ente and day, listing that Ente's transfers.
    pub fn publish_flows(&self) -> Vec<PublishedFlow> {
        use incasso_core::Cents;
        use incasso_core::fdr::{FlowOutcome, FlowPayment, PartyIdKind, ReportingFlow};
        let payments = self.payments();
        let quirks = self.faults().reporting_quirks;
        let mut flows = self.inner.flows.lock().expect("flows lock");
        let new = payments.get(flows.reported..).unwrap_or_default().to_vec();
        flows.reported = payments.len();
        let mut groups: std::collections::BTreeMap<(String, String, String), Vec<FlowPayment>> =
            std::collections::BTreeMap::new();
        for p in &new {
            let day = p.paid_at.get(..10).unwrap_or("1970-01-01").to_string();
            let date = chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d").unwrap_or_default();
            for t in &p.transfers {
                groups
                    .entry((p.psp_id.clone(), t.fiscal_code.clone(), day.clone()))
                    .or_default()
                    .push(FlowPayment {
                        iuv: p.iuv.clone(),
                        iur: p.receipt_ids.first().cloned().unwrap_or_default(),
                        transfer_index: Some(t.index),
                        amount: Cents(t.amount_cents),
                        outcome: if p.without_receipt {
                            FlowOutcome::PaidWithoutReceipt
                        } else {
                            FlowOutcome::Paid
                        },
                        outcome_date: date,
                    });
            }
        }
        let now = chrono::Utc::now();
        let mut out = Vec::new();
        for ((psp, ente, day), mut lines) in groups {
            flows.next_number += 1;
            let number = flows.next_number;
            let flow_id = format!("{day}{psp}-S{number:09}");
            let quirk = if quirks {
                ReportingQuirk::of(number)
            } else {
                ReportingQuirk::None
            };
            let first = lines[0].clone();
            match quirk {
                ReportingQuirk::LineAmount => lines[0].amount.0 += 1,
                ReportingQuirk::UnknownIuv => lines.push(FlowPayment {
                    iuv: format!("99{number:015}"),
                    iur: format!("IUR-SCONOSCIUTO-{number}"),
                    amount: Cents(1_000),
                    ..first.clone()
                }),
                ReportingQuirk::RepeatedPayment => {
                    if let Some(previous) = flows.last_line.get(&ente) {
                        lines.push(previous.clone());
                    }
                }
                _ => {}
            }
            flows.last_line.insert(ente.clone(), first);
            let declared_count =
                lines.len() as u64 + u64::from(quirk == ReportingQuirk::HeaderCount);
            let total: i64 = lines.iter().map(|l| l.amount.0).sum();
            let flow = ReportingFlow {
                flow_id: flow_id.clone(),
                flow_date_time: now,
                settlement_ref: format!("SIMTRN{:012}", flows.next_number),
                settlement_date: chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                    .unwrap_or_default(),
                psp_id: psp,
                psp_id_kind: PartyIdKind::Bic,
                psp_name: Some("PSP simulato".into()),
                bic: None,
                ente: ente.clone(),
                ente_name: None,
                declared_count,
                declared_total: Cents(total),
                payments: lines,
                revision: None,
            };
            let published = PublishedFlow {
                ente,
                flow_id,
                flow_date_time: incasso_core::time::to_rome(now)
                    .format("%Y-%m-%dT%H:%M:%S")
                    .to_string(),
                total_cents: total,
                payments: flow.payments.len(),
                number: flows.next_number,
                settlement_ref: flow.settlement_ref.clone(),
                xml: incasso_recon::fdr::write(&flow),
                flow,
                published_at: now,
            };
            flows.published.push(published.clone());
            out.push(published);
        }
        out
    }
}

impl Simulator {
    /// The treasury's next journal for `ente` (OPI giornale di cassa 1.8):
    /// one SOSPESO ENTRATA per flow not yet journaled, with the quirks of
    /// [`TreasuryQuirk`]. Late movements come in the following journal.
    pub fn treasury_journal(&self, ente: &str) -> String {
        self.treasury_statement(ente, &TreasuryFormat::Opi)
    }

    /// The treasury's next statement for `ente` in `format`: the same
    /// movements as [`Simulator::treasury_journal`], as the Ente's bank
    /// writes them.
    pub fn treasury_statement(&self, ente: &str, format: &TreasuryFormat) -> String {
        use incasso_core::Cents;
        use incasso_core::treasury::{Direction, DocumentKind, Operation, TreasuryMovement};
        let quirks = self.faults().reporting_quirks;
        let mut flows = self.inner.flows.lock().expect("flows lock");
        flows.journals += 1;
        let today = chrono::Utc::now().date_naive();
        let pending: Vec<PublishedFlow> = flows
            .published
            .iter()
            .filter(|f| f.ente == ente && !flows.journaled.contains(&f.flow_id))
            .cloned()
            .collect();
        let mut movements = Vec::new();
        for f in pending {
            let quirk = TreasuryQuirk::of(f.number);
            if quirk == TreasuryQuirk::Missing {
                continue;
            }
            if quirk == TreasuryQuirk::Late && flows.held_back.insert(f.flow_id.clone()) {
                continue;
            }
            flows.journaled.insert(f.flow_id.clone());
            let id = &f.flow_id;
            let (causale, trn) = match quirk {
                TreasuryQuirk::SpaceInDate => (
                    format!("/PUR/LGPE-RIVERSAMENTO/URI/{} {}", &id[..8], &id[8..]),
                    None,
                ),
                TreasuryQuirk::TrnOnly => (
                    "ACCREDITO DA PSP".to_string(),
                    Some(f.settlement_ref.clone()),
                ),
                _ => (
                    format!("BONIFICO SEPA /PUR/LGPE-RIVERSAMENTO/URI/{id}"),
                    None,
                ),
            };
            let amount = match quirk {
                TreasuryQuirk::WrongAmount => f.total_cents - 1,
                _ => f.total_cents,
            };
            let sospeso = TreasuryMovement {
                movement_id: String::new(),
                ente: ente.to_string(),
                account: "0000001".into(),
                year: today.format("%Y").to_string().parse().unwrap_or(2026),
                direction: Direction::Income,
                document: DocumentKind::ProvisionalIncome,
                operation: Operation::Executed,
                document_number: format!("{:07}", f.number),
                amount: Cents(amount),
                booking_date: today,
                value_date: Some(today),
                payer: Some("PSP SIMULATO SPA".into()),
                causale,
                trn,
                end_to_end_id: None,
            };
            if quirks && ReportingQuirk::of(f.number) == ReportingQuirk::BookedTwice {
                movements.push(TreasuryMovement {
                    document_number: format!("{:07}", 5_000_000 + f.number),
                    ..sospeso.clone()
                });
            }
            movements.push(sospeso);
        }
        if quirks {
            // Income that is no pagoPA flow's: a citizen's own transfer on
            // the Ente's account, and one on an account incasso does not
            // know (a camt statement of its own; OPI has one account).
            for (k, account) in ["0000001", OTHER_ACCOUNT].into_iter().enumerate() {
                movements.push(TreasuryMovement {
                    movement_id: String::new(),
                    ente: ente.to_string(),
                    account: account.into(),
                    year: today.format("%Y").to_string().parse().unwrap_or(2026),
                    direction: Direction::Income,
                    document: DocumentKind::ProvisionalIncome,
                    operation: Operation::Executed,
                    document_number: format!("{:07}", 9_000_000 + flows.journals * 10 + k as u64),
                    amount: Cents(12_345),
                    booking_date: today,
                    value_date: Some(today),
                    payer: Some("ROSSI MARIO".into()),
                    causale: "BONIFICO RIMBORSO SPESE".into(),
                    trn: None,
                    end_to_end_id: None,
                });
            }
        }
        if let TreasuryFormat::Camt053 { iban } = format {
            let header = incasso_recon::camt::StatementHeader {
                message_id: format!("SIM053-{}-{:06}", today.format("%Y%m%d"), flows.journals),
                created_at: chrono::Utc::now().fixed_offset(),
                statement_id: format!("SIM{}-{:06}", today.format("%Y%m%d"), flows.journals),
                iban: iban.clone(),
                opening_balance: Cents(0),
            };
            return incasso_recon::camt::write_053(&header, &movements);
        }
        let header = incasso_recon::opi::JournalHeader {
            bank_abi: "03069".into(),
            created_at: incasso_core::time::to_rome(chrono::Utc::now()),
            ipa_office_code: "UFSIM1".into(),
            ente_name: format!("ENTE {ente}"),
            siope_ente_code: "000000001".into(),
            ente: ente.to_string(),
            ente_channel: "A2A-00000001".into(),
            bank_channel: "A2A-00000002".into(),
            bank_ente_code: "SIM".into(),
            journal_id: format!(
                "GDC-{}SIMULATORE{:06}#001#001",
                today.format("%Y%m%d"),
                flows.journals
            ),
            year: today.format("%Y").to_string().parse().unwrap_or(2026),
            reference_date: today,
            account: "0000001".into(),
        };
        incasso_recon::opi::write(&header, &movements)
    }
}

async fn publish_flows(State(sim): State<Simulator>) -> axum::Json<Vec<PublishedFlow>> {
    axum::Json(sim.publish_flows())
}

/// `?format=camt053&iban=IT...` asks for an ISO 20022 statement of that
/// account; without it, an OPI journal.
#[derive(Debug, Deserialize)]
struct StatementQuery {
    format: Option<String>,
    iban: Option<String>,
}

async fn treasury_journal(
    State(sim): State<Simulator>,
    axum::extract::Path(ente): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<StatementQuery>,
) -> axum::response::Response {
    let format = match (q.format.as_deref(), q.iban) {
        (None | Some("opi"), _) => TreasuryFormat::Opi,
        (Some("camt053"), Some(iban)) => TreasuryFormat::Camt053 { iban },
        (Some("camt053"), None) => {
            return (
                axum::http::StatusCode::BAD_REQUEST,
                "camt053 vuole l'IBAN del conto (iban=...)",
            )
                .into_response();
        }
        (Some(other), _) => {
            return (
                axum::http::StatusCode::BAD_REQUEST,
                format!("formato '{other}' sconosciuto: opi o camt053"),
            )
                .into_response();
        }
    };
    (
        [("content-type", "application/xml")],
        sim.treasury_statement(&ente, &format),
    )
        .into_response()
}

const SOAP_HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ws="http://ws.pagamenti.telematici.gov/"><soapenv:Body>"#;
const SOAP_TAIL: &str = "</soapenv:Body></soapenv:Envelope>";

/// The Node's SOAP interface for the Ente (nodeForPa): the list of an
/// Ente's reporting flows, and one flow (base64, as the Node sends it).
async fn node_for_pa(State(sim): State<Simulator>, body: String) -> axum::response::Response {
    use base64::Engine as _;
    if let Some(r) = sim.outbound_fault().await {
        return r;
    }
    let Ok(root) = incasso_pagopa::xml::parse(body.as_bytes(), Default::default()) else {
        return (StatusCode::BAD_REQUEST, "richiesta non leggibile").into_response();
    };
    let find = |name: &str| -> Option<String> {
        fn walk(e: &incasso_pagopa::xml::Element, name: &str) -> Option<String> {
            if e.name == name {
                return Some(e.text.trim().to_string());
            }
            e.children.iter().find_map(|c| walk(c, name))
        }
        walk(&root, name)
    };
    let ente = find("identificativoDominio").unwrap_or_default();
    let flows = sim.inner.flows.lock().expect("flows lock");
    let mut mine = flows.published.iter().filter(|f| f.ente == ente);
    let mut w = incasso_pagopa::xml::Writer::new();
    w.raw(SOAP_HEAD);
    if body.contains("nodoChiediElencoFlussiRendicontazione") {
        let list: Vec<&PublishedFlow> = mine.collect();
        w.raw("<ws:nodoChiediElencoFlussiRendicontazioneRisposta>")
            .open("elencoFlussiRendicontazione")
            .leaf("totRestituiti", &list.len().to_string());
        for f in list {
            w.open("idRendicontazione")
                .leaf("identificativoFlusso", &f.flow_id)
                .leaf("dataOraFlusso", &f.flow_date_time)
                .close("idRendicontazione");
        }
        w.close("elencoFlussiRendicontazione")
            .raw("</ws:nodoChiediElencoFlussiRendicontazioneRisposta>");
    } else if body.contains("nodoChiediFlussoRendicontazione") {
        let wanted = find("identificativoFlusso").unwrap_or_default();
        w.raw("<ws:nodoChiediFlussoRendicontazioneRisposta>");
        match mine.rfind(|f| f.flow_id == wanted) {
            Some(f) => {
                w.leaf(
                    "xmlRendicontazione",
                    &base64::engine::general_purpose::STANDARD.encode(&f.xml),
                );
            }
            None => {
                w.open("fault")
                    .leaf("faultCode", "PPT_ID_FLUSSO_SCONOSCIUTO")
                    .leaf("faultString", "flusso sconosciuto")
                    .leaf("id", "NodoDeiPagamentiSPC")
                    .close("fault");
            }
        }
        w.raw("</ws:nodoChiediFlussoRendicontazioneRisposta>");
    } else {
        return (StatusCode::BAD_REQUEST, "operazione non simulata").into_response();
    }
    w.raw(SOAP_TAIL);
    ([("content-type", "text/xml; charset=utf-8")], w.out).into_response()
}
