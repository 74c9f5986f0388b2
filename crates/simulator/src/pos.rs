//! pagoPA's POS gateway, its terminal manager, the terminals and the
//! acquirer PSP, simulated.
//!
//! The gateway serves the creditor's side of `pos_ci_layer.json` under
//! `/pos-layer-service/pos/...` (so that incasso changes only its base
//! URL): session init, terminals, the authorization request and the
//! session's status. An accepted request activates each notice on the
//! Ente through the simulated Node (verify, then `paGetPaymentV2`, as the
//! Node does when a PSP activates a notice), then the terminal plays the
//! next step of its script: the acquirer pays through the Node exactly as
//! the simulated PSPs do (`paSendRTV2` to every beneficiary, a payment the
//! reporting flows list) and the gateway calls the Ente back
//! (`PATCH {incasso}/pos/ci/sessions/{id}/auth-requests`), retrying while
//! the Ente does not answer.
//!
//! Scripts are set per terminal (`PUT /simulator/pos/terminals/{id}`), one
//! step consumed per authorization request; without one the card is
//! authorized. `GET /simulator/pos/sessions` shows what happened.

use crate::Simulator;
use crate::node::{NodeClient, PaidTransfer, Payment, Psp, SimError};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use incasso_core::Cents;
use incasso_pagopa::pos::{
    AuthOutcome, AuthorizationCallback, CardDetails, DebtPosition, KoDetail, KoReason,
    PaymentDetail, PaymentRequest, PaymentResponse, PosResponse, PosSessionRequest,
    PosSessionResponse, PosTerminal, ProblemJson, SessionOutcome, SessionStatusResponse,
    TerminalStatus, is_uuid, new_uuid,
};
use incasso_pagopa::wire::{self, Header, QrCode};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// What a terminal does with the next authorization request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mode {
    /// The card is authorized: receipts, then the callback.
    Authorized,
    Declined,
    Refused,
    CanceledByUser,
    /// Nobody presents a card: TIMEOUT at the authorization timeout.
    Timeout,
    /// The acquirer charges the card, but its outcome never reaches the
    /// gateway: TIMEOUT, no receipt, and a refund for the PSP to make.
    DropAfterAuth,
    /// AUTHORIZED first; the receipts `receipt_delay_ms` later.
    LateReceipt,
    /// TIMEOUT first; the receipts anyway, `receipt_delay_ms` later.
    ReceiptAfterTimeout,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Authorized => "AUTHORIZED",
            Mode::Declined => "DECLINED",
            Mode::Refused => "REFUSED",
            Mode::CanceledByUser => "CANCELED_BY_USER",
            Mode::Timeout => "TIMEOUT",
            Mode::DropAfterAuth => "DROP_AFTER_AUTH",
            Mode::LateReceipt => "LATE_RECEIPT",
            Mode::ReceiptAfterTimeout => "RECEIPT_AFTER_TIMEOUT",
        }
    }
}

/// One step of a terminal's script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub mode: Mode,
    /// How long the person takes at the terminal.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// For the late-receipt modes: how late.
    #[serde(default)]
    pub receipt_delay_ms: Option<u64>,
}

impl Step {
    pub fn new(mode: Mode) -> Step {
        Step {
            mode,
            delay_ms: None,
            receipt_delay_ms: None,
        }
    }
}

/// A terminal of the terminal manager.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TerminalConfig {
    pub id: String,
    pub description: String,
    pub status: TerminalStatus,
}

/// The POS world: where the Ente is called back, the terminals, timings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PosConfig {
    /// incasso's base URL: callbacks go to `{callback_url}/pos/ci/sessions/{id}/auth-requests`.
    pub callback_url: String,
    pub terminals: Vec<TerminalConfig>,
    /// How long a terminal waits for a card (pagoPA's `authorizationTimeout`, 1..60 s).
    pub authorization_timeout_ms: u64,
    /// How long a person takes at the terminal, unless the step says.
    pub default_delay_ms: u64,
    /// The late-receipt modes' delay, unless the step says.
    pub receipt_delay_ms: u64,
    /// Between callback attempts, and how many at most.
    pub callback_retry_ms: u64,
    pub callback_attempts: u32,
    /// Where positions made at the terminal (`TO_CREATE`,
    /// `TO_CREATE_PROVIDED_IUV`) are created, as pagoPA's gateway creates
    /// them in GPD: incasso's GPD-compatible API (its base URL), with each
    /// Ente's API key.
    pub gpd_url: String,
    pub gpd_keys: BTreeMap<String, String>,
}

impl Default for PosConfig {
    fn default() -> Self {
        let t = |id: &str, description: &str, status| TerminalConfig {
            id: id.into(),
            description: description.into(),
            status,
        };
        PosConfig {
            callback_url: String::new(),
            terminals: vec![
                t("SIMPOS01", "POS simulato 1", TerminalStatus::Available),
                t("SIMPOS02", "POS simulato 2", TerminalStatus::Available),
                t("SIMPOS03", "POS simulato 3", TerminalStatus::Available),
                t(
                    "SIMPOS08",
                    "POS simulato guasto",
                    TerminalStatus::Unavailable,
                ),
                t(
                    "SIMPOS09",
                    "POS simulato in manutenzione",
                    TerminalStatus::Maintenance,
                ),
            ],
            authorization_timeout_ms: 60_000,
            default_delay_ms: 2_000,
            receipt_delay_ms: 3_000,
            callback_retry_ms: 2_000,
            callback_attempts: 35,
            gpd_url: String::new(),
            gpd_keys: BTreeMap::new(),
        }
    }
}

/// The acquirer PSP of the simulated terminals, as receipts show it.
pub fn acquirer() -> Psp {
    Psp {
        id: "60000000001".into(),
        fiscal_code: "60000000001".into(),
        name: "Banca Simulata S.p.A.".into(),
        channel: "60000000001_03".into(),
        channel_description: "frontOffice".into(),
        payment_method: "creditCard".into(),
        fee: Cents(0),
    }
}

/// One terminal's state.
#[derive(Debug, Clone, Serialize)]
pub struct TerminalState {
    pub id: String,
    pub description: String,
    pub status: TerminalStatus,
    pub script: VecDeque<Step>,
    /// The session it is serving.
    pub busy: Option<String>,
}

/// One gateway session, as `GET /simulator/pos/sessions` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SimSession {
    pub session_id: String,
    pub correlation_id: String,
    pub fiscal_code: String,
    pub workstation: Option<String>,
    pub terminal_id: Option<String>,
    pub notices: Vec<String>,
    pub amount: i64,
    /// The step the terminal played.
    pub mode: Option<Mode>,
    /// `ONGOING`, `SUCCESS` or `ERROR`.
    pub outcome: SessionOutcome,
    /// The outcome sent to the Ente, and each attempt's HTTP status (0:
    /// no answer).
    pub callback: Option<AuthOutcome>,
    pub callback_attempts: Vec<u16>,
    /// Receipt ids sent to the Ente.
    pub receipts: Vec<String>,
    /// A request refused (KO), with the reasons.
    pub refused: Vec<String>,
}

/// A refund the acquirer owes (the PSP's reconciliation batch).
#[derive(Debug, Clone, Serialize)]
pub struct Reconciliation {
    pub session_id: String,
    pub amount: i64,
    pub action: &'static str,
    pub reason: &'static str,
}

/// The POS part of the simulator's state.
#[derive(Default)]
pub struct PosState {
    config: Mutex<PosConfig>,
    /// The sequence of IUVs the gateway gives positions it creates.
    created: std::sync::atomic::AtomicU64,
    terminals: Mutex<BTreeMap<String, TerminalState>>,
    sessions: Mutex<HashMap<String, SimSession>>,
    reconciliations: Mutex<Vec<Reconciliation>>,
}

/// What an accepted request activated, per notice.
struct Activated {
    fiscal_code: String,
    nav: String,
    amount: Cents,
    header: Header,
    data: incasso_pagopa::xml::Element,
}

impl Simulator {
    fn pos(&self) -> &PosState {
        &self.inner.pos
    }

    /// Sets the POS world (the terminals start with empty scripts).
    pub fn configure_pos(&self, config: PosConfig) {
        let mut terminals = self.pos().terminals.lock().expect("pos lock");
        terminals.clear();
        for t in &config.terminals {
            terminals.insert(
                t.id.clone(),
                TerminalState {
                    id: t.id.clone(),
                    description: t.description.clone(),
                    status: t.status,
                    script: VecDeque::new(),
                    busy: None,
                },
            );
        }
        *self.pos().config.lock().expect("pos lock") = config;
    }

    /// Queues `steps` on a terminal (replacing its script).
    pub fn pos_script(&self, terminal: &str, steps: Vec<Step>) {
        if let Some(t) = self
            .pos()
            .terminals
            .lock()
            .expect("pos lock")
            .get_mut(terminal)
        {
            t.script = steps.into();
        }
    }

    pub fn pos_sessions(&self) -> Vec<SimSession> {
        let mut v: Vec<SimSession> = self
            .pos()
            .sessions
            .lock()
            .expect("pos lock")
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.session_id.cmp(&b.session_id));
        v
    }

    pub fn pos_session(&self, id: &str) -> Option<SimSession> {
        self.pos()
            .sessions
            .lock()
            .expect("pos lock")
            .get(id)
            .cloned()
    }

    pub fn pos_reconciliations(&self) -> Vec<Reconciliation> {
        self.pos().reconciliations.lock().expect("pos lock").clone()
    }

    fn pos_terminals(&self) -> Vec<PosTerminal> {
        self.pos()
            .terminals
            .lock()
            .expect("pos lock")
            .values()
            .map(|t| PosTerminal {
                id: t.id.clone(),
                description: t.description.clone(),
                status: t.status,
                status_code: Some(
                    match t.status {
                        TerminalStatus::Available => "S0001",
                        TerminalStatus::Unavailable => "S0002",
                        TerminalStatus::Maintenance => "S0003",
                    }
                    .into(),
                ),
            })
            .collect()
    }

    fn pos_update<T>(&self, id: &str, f: impl FnOnce(&mut SimSession) -> T) -> Option<T> {
        self.pos()
            .sessions
            .lock()
            .expect("pos lock")
            .get_mut(id)
            .map(f)
    }
}

pub fn routes() -> Router<Simulator> {
    Router::new()
        .route("/pos-layer-service/pos/sessions", post(init_session))
        .route("/pos-layer-service/pos/terminals", post(list_terminals))
        .route(
            "/pos-layer-service/pos/sessions/{id}/auth-requests",
            post(create_payment),
        )
        .route("/pos-layer-service/pos/sessions/{id}", get(session_status))
        .route("/simulator/pos/terminals", get(control_terminals))
        .route("/simulator/pos/terminals/{id}", put(control_terminal))
        .route("/simulator/pos/sessions", get(control_sessions))
        .route(
            "/simulator/pos/reconciliations",
            get(control_reconciliations),
        )
}

fn problem(status: StatusCode, detail: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(&ProblemJson {
            title: status.canonical_reason().map(str::to_string),
            status: Some(status.as_u16()),
            detail: Some(detail.to_string()),
            ..Default::default()
        })
        .unwrap_or_default(),
    )
        .into_response()
}

/// Why the gateway's gate refused a request.
enum Refusal {
    /// No or a wrong subscription key: 401 without a body, as the CI spec.
    Key,
    /// No UUID `x-correlation-id`.
    Correlation,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Key => StatusCode::UNAUTHORIZED.into_response(),
            Refusal::Correlation => problem(
                StatusCode::BAD_REQUEST,
                "x-correlation-id mancante o non UUID",
            ),
        }
    }
}

/// The gateway's gate: the subscription key and a UUID `x-correlation-id`.
fn gate(sim: &Simulator, headers: &HeaderMap) -> Result<String, Refusal> {
    if let Some(required) = &sim.inner.required_key
        && headers
            .get("Ocp-Apim-Subscription-Key")
            .and_then(|v| v.to_str().ok())
            != Some(required.as_str())
    {
        return Err(Refusal::Key);
    }
    match headers
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
    {
        Some(c) if is_uuid(c) => Ok(c.to_string()),
        _ => Err(Refusal::Correlation),
    }
}

/// What `PosSessionRequest` must be, with the CI limits.
fn check_session_request(r: &PosSessionRequest) -> Result<(), String> {
    let ci = &r.creditor_institution;
    if ci.fiscal_code.len() != 11 {
        return Err("creditorInstitution.fiscalCode: 11 caratteri".into());
    }
    for (name, v) in [
        ("psp.id", &r.psp.id),
        ("psp.broker", &r.psp.broker),
        ("psp.channel", &r.psp.channel),
    ] {
        if v.is_empty() || v.chars().count() > 35 {
            return Err(format!("{name}: da 1 a 35 caratteri"));
        }
    }
    for (name, v) in [
        ("logicalOffice", &ci.logical_office),
        ("workstation", &ci.workstation),
    ] {
        if let Some(v) = v
            && (v.is_empty() || v.chars().count() > 20)
        {
            return Err(format!("creditorInstitution.{name}: da 1 a 20 caratteri"));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitQuery {
    include_terminals: Option<bool>,
}

async fn init_session(
    State(sim): State<Simulator>,
    Query(q): Query<InitQuery>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(r) = sim.outbound_fault().await {
        return r;
    }
    let correlation_id = match gate(&sim, &headers) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let request: PosSessionRequest = match serde_json::from_str(&body) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if let Err(e) = check_session_request(&request) {
        return problem(StatusCode::BAD_REQUEST, &e);
    }
    let session_id = new_uuid();
    sim.pos().sessions.lock().expect("pos lock").insert(
        session_id.clone(),
        SimSession {
            session_id: session_id.clone(),
            correlation_id,
            fiscal_code: request.creditor_institution.fiscal_code.clone(),
            workstation: request.creditor_institution.workstation.clone(),
            terminal_id: None,
            notices: Vec::new(),
            amount: 0,
            mode: None,
            outcome: SessionOutcome::Ongoing,
            callback: None,
            callback_attempts: Vec::new(),
            receipts: Vec::new(),
            refused: Vec::new(),
        },
    );
    let terminals = if q.include_terminals.unwrap_or(false) {
        sim.pos_terminals()
    } else {
        Vec::new()
    };
    axum::Json(PosSessionResponse {
        session_id,
        terminals,
    })
    .into_response()
}

async fn list_terminals(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Err(r) = gate(&sim, &headers) {
        return r.into_response();
    }
    match serde_json::from_str::<PosSessionRequest>(&body)
        .map_err(|e| e.to_string())
        .and_then(|r| check_session_request(&r))
    {
        Ok(()) => {}
        Err(e) => return problem(StatusCode::BAD_REQUEST, &e),
    }
    let terminals = sim.pos_terminals();
    if terminals.is_empty() {
        return problem(StatusCode::NOT_FOUND, "No result found");
    }
    axum::Json(PosResponse { terminals }).into_response()
}

async fn session_status(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = gate(&sim, &headers) {
        return r.into_response();
    }
    match sim.pos_session(&id) {
        Some(s) => axum::Json(SessionStatusResponse { outcome: s.outcome }).into_response(),
        None => problem(StatusCode::NOT_FOUND, "No result found"),
    }
}

async fn create_payment(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(r) = sim.outbound_fault().await {
        return r;
    }
    let correlation_id = match gate(&sim, &headers) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let request: PaymentRequest = match serde_json::from_str(&body) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if request.terminal_id.len() != 8 {
        return problem(StatusCode::BAD_REQUEST, "terminalId: 8 caratteri");
    }
    let n = request.debt_positions.len();
    if n == 0 || n > 5 {
        return problem(StatusCode::BAD_REQUEST, "debtPositions: da 1 a 5");
    }
    let mut navs = Vec::new();
    for p in &request.debt_positions {
        match p {
            DebtPosition::CiProvided(d) => {
                if d.notice_number.len() != 18 || navs.contains(&d.notice_number) {
                    return problem(
                        StatusCode::BAD_REQUEST,
                        "noticeNumber: 18 cifre, non ripetuto",
                    );
                }
                navs.push(d.notice_number.clone());
            }
            DebtPosition::ToCreate(d) | DebtPosition::ToCreateProvidedIuv(d) => {
                if let Err(e) = check_to_create(d) {
                    return problem(StatusCode::BAD_REQUEST, &e);
                }
                let provided = matches!(p, DebtPosition::ToCreateProvidedIuv(_));
                if provided != d.iuv.is_some() {
                    return problem(
                        StatusCode::BAD_REQUEST,
                        "iuv: richiesto con TO_CREATE_PROVIDED_IUV, escluso con TO_CREATE",
                    );
                }
                // Known once created.
                navs.push(String::new());
            }
        }
    }
    let Some(session) = sim.pos_session(&id) else {
        return problem(StatusCode::NOT_FOUND, "No result found");
    };
    if session.correlation_id != correlation_id {
        tracing::warn!(session = %id, "POS request with another x-correlation-id");
    }
    if session.terminal_id.is_some() {
        return problem(
            StatusCode::BAD_REQUEST,
            "la sessione ha già una richiesta di autorizzazione",
        );
    }
    let fiscal_code = session.fiscal_code.clone();
    // The terminal: known, available, free; taken for this session.
    let terminal_ok = {
        let mut terminals = sim.pos().terminals.lock().expect("pos lock");
        match terminals.get_mut(&request.terminal_id) {
            Some(t) if t.status == TerminalStatus::Available && t.busy.is_none() => {
                t.busy = Some(id.clone());
                true
            }
            _ => false,
        }
    };
    sim.pos_update(&id, |s| {
        s.terminal_id = Some(request.terminal_id.clone());
        s.notices = navs.clone();
    });
    let ko = |sim: &Simulator, details: Vec<KoDetail>, amount: i64| {
        sim.pos_update(&id, |s| {
            s.outcome = SessionOutcome::Error;
            s.refused = details
                .iter()
                .map(|d| {
                    format!(
                        "{}: {:?}",
                        d.notice_number.clone().unwrap_or_default(),
                        d.reason
                    )
                })
                .collect();
        });
        axum::Json(PaymentResponse::Ko { amount, details }).into_response()
    };
    if !terminal_ok {
        let details = navs
            .iter()
            .map(|nav| KoDetail {
                creditor_institution_fiscal_code: Some(fiscal_code.clone()),
                notice_number: Some(nav.clone()).filter(|n| !n.is_empty()),
                iuv: nav.get(1..).map(str::to_string).filter(|n| !n.is_empty()),
                amount: None,
                reason: KoReason::AuthError,
            })
            .collect();
        return ko(&sim, details, 0);
    }
    let node = pos_node(&sim);
    let mut activated = Vec::new();
    let mut refused = Vec::new();
    for (n, p) in request.debt_positions.iter().enumerate() {
        let nav = match p {
            DebtPosition::CiProvided(d) => d.notice_number.clone(),
            DebtPosition::ToCreate(d) | DebtPosition::ToCreateProvidedIuv(d) => {
                match create_position(&sim, &fiscal_code, &id, n, d).await {
                    Ok(nav) => nav,
                    Err(e) => {
                        tracing::info!(error = %e, "POS position not created");
                        refused.push(KoDetail {
                            creditor_institution_fiscal_code: Some(fiscal_code.clone()),
                            notice_number: None,
                            iuv: d.iuv.clone(),
                            amount: Some(d.transfer_list.iter().map(|t| t.amount).sum()),
                            reason: KoReason::CreationError,
                        });
                        continue;
                    }
                }
            }
        };
        let nav = &nav;
        match activate(&node, &fiscal_code, nav).await {
            Ok(a) => activated.push(a),
            Err(e) => {
                tracing::info!(notice = %nav, error = %e, "POS activation refused");
                refused.push(KoDetail {
                    creditor_institution_fiscal_code: Some(fiscal_code.clone()),
                    notice_number: Some(nav.clone()),
                    iuv: nav.get(1..).map(str::to_string),
                    amount: None,
                    reason: KoReason::ActivationError,
                });
            }
        }
    }
    let total: i64 = activated.iter().map(|a| a.amount.0).sum();
    if !refused.is_empty() {
        release_terminal(&sim, &request.terminal_id);
        return ko(&sim, refused, total);
    }
    let details = activated
        .iter()
        .map(|a| PaymentDetail {
            creditor_institution_fiscal_code: a.fiscal_code.clone(),
            notice_number: a.nav.clone(),
            iuv: a.nav.get(1..).unwrap_or_default().to_string(),
            amount: a.amount.0,
        })
        .collect();
    let step = sim
        .pos()
        .terminals
        .lock()
        .expect("pos lock")
        .get_mut(&request.terminal_id)
        .and_then(|t| t.script.pop_front())
        .unwrap_or(Step::new(Mode::Authorized));
    sim.pos_update(&id, |s| {
        s.amount = total;
        s.mode = Some(step.mode);
        s.notices = activated.iter().map(|a| a.nav.clone()).collect();
    });
    tokio::spawn(run_terminal(
        sim.clone(),
        id.clone(),
        request.terminal_id.clone(),
        step,
        activated,
    ));
    axum::Json(PaymentResponse::Ok {
        amount: total,
        details,
    })
    .into_response()
}

/// What the CI spec allows in a position to create.
fn check_to_create(d: &incasso_pagopa::pos::ToCreateDetails) -> Result<(), String> {
    let n = d.transfer_list.len();
    if n == 0 || n > 5 {
        return Err("transferList: da 1 a 5".into());
    }
    let len = |s: &str| s.chars().count();
    if len(&d.description) == 0 || len(&d.description) > 140 {
        return Err("description: da 1 a 140 caratteri".into());
    }
    if !matches!(d.debtor.kind.as_str(), "F" | "G")
        || !(11..=16).contains(&d.debtor.fiscal_code.len())
        || len(&d.debtor.full_name) > 140
    {
        return Err("debtor: type F o G, fiscalCode da 11 a 16, fullName al più 140".into());
    }
    if let Some(iuv) = &d.iuv
        && (iuv.len() != 17 || !iuv.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("iuv: 17 cifre".into());
    }
    for t in &d.transfer_list {
        let taxonomy = t.category.len() == 12
            && t.category.starts_with(['6', '7', '8', '9'])
            && t.category.as_bytes()[1] == b'/'
            && t.category[2..9].bytes().all(|b| b.is_ascii_digit())
            && ["IM/", "TS/", "SP/", "SA/", "AP/"].contains(&&t.category[9..]);
        if t.amount < 1
            || len(&t.transfer_description) == 0
            || len(&t.transfer_description) > 90
            || t.iban.is_empty()
            || t.iban.len() > 35
            || !t.iban.bytes().all(|b| b.is_ascii_alphanumeric())
            || !taxonomy
        {
            return Err(
                "transferList: amount >= 1, transferDescription 1..90, iban alfanumerico 1..35, category come 9/0101101IM/"
                    .into(),
            );
        }
    }
    Ok(())
}

/// Creates a position the way pagoPA's gateway does, in GPD (incasso's
/// GPD-compatible API): a new IUV of the Ente's segregation code, or the
/// one the Ente gave; `/RFB/{iuv}/CNR/{debtor}/TXT/{description}` for each
/// transfer. Answers its notice number.
async fn create_position(
    sim: &Simulator,
    fiscal_code: &str,
    session: &str,
    n: usize,
    d: &incasso_pagopa::pos::ToCreateDetails,
) -> Result<String, String> {
    let config = sim.pos().config.lock().expect("pos lock").clone();
    let key = config
        .gpd_keys
        .get(fiscal_code)
        .ok_or_else(|| format!("nessuna chiave GPD per l'ente {fiscal_code}"))?;
    let nav = match &d.iuv {
        Some(iuv) => format!("3{iuv}"),
        None => {
            let seg = sim
                .node()
                .segregation_of(fiscal_code)
                .ok_or("nessun codice di segregazione per l'ente")?;
            let seq = 99_000_000_000
                + sim
                    .pos()
                    .created
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            incasso_core::codes::NoticeNumber::generate(seg, seq)
                .map_err(|e| e.to_string())?
                .as_str()
                .to_string()
        }
    };
    let iuv = nav[1..].to_string();
    let transfers: Vec<serde_json::Value> = d
        .transfer_list
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let text = format!(
                "/RFB/{iuv}/CNR/{}/TXT/{}",
                d.debtor.fiscal_code, t.transfer_description
            );
            serde_json::json!({
                "idTransfer": (i + 1).to_string(),
                "amount": t.amount,
                "organizationFiscalCode": fiscal_code,
                "remittanceInformation": text.chars().take(140).collect::<String>(),
                "category": t.category,
                "iban": t.iban,
            })
        })
        .collect();
    let body = serde_json::json!({
        "iupd": format!("POS-{session}-{}", n + 1),
        "type": d.debtor.kind,
        "fiscalCode": d.debtor.fiscal_code,
        "fullName": d.debtor.full_name,
        "companyName": "Ente creditore",
        "switchToExpired": false,
        "paymentOption": [{
            "iuv": iuv,
            "amount": d.transfer_list.iter().map(|t| t.amount).sum::<i64>(),
            "description": d.description,
            "isPartialPayment": false,
            "dueDate": (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339(),
            "paymentOptionMetadata": [{"key": "channel", "value": "POS"}],
            "transfer": transfers,
        }],
    });
    let url = format!(
        "{}/gpd/v1/organizations/{fiscal_code}/debtpositions?toPublish=true",
        config.gpd_url.trim_end_matches('/')
    );
    let resp = reqwest::Client::new()
        .post(&url)
        .header("Ocp-Apim-Subscription-Key", key)
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        return Err(format!("GPD ha risposto {status}: {text}"));
    }
    Ok(nav)
}

/// The Node as the acquirer reaches it.
fn pos_node(sim: &Simulator) -> NodeClient {
    let mut node = sim.node().clone();
    node.psp = acquirer();
    node
}

/// The Node's activation of a notice for the acquirer: the amount due
/// (verify), then the payment's data (`paGetPaymentV2`).
async fn activate(node: &NodeClient, fiscal_code: &str, nav: &str) -> Result<Activated, SimError> {
    let header = node.header_for(fiscal_code, Some(nav))?;
    let amount = node.verify(fiscal_code, nav).await?;
    let qr = QrCode {
        fiscal_code: fiscal_code.into(),
        notice_number: nav.into(),
    };
    let r = node
        .call(
            "paGetPaymentV2",
            wire::node::get_payment_request(&header, &qr, amount, true),
        )
        .await?;
    let data = r
        .data()
        .cloned()
        .ok_or_else(|| SimError::BadAnswer("paGetPaymentV2", "data mancante".into()))?;
    Ok(Activated {
        fiscal_code: fiscal_code.into(),
        nav: nav.into(),
        amount,
        header,
        data,
    })
}

fn release_terminal(sim: &Simulator, terminal: &str) {
    if let Some(t) = sim
        .pos()
        .terminals
        .lock()
        .expect("pos lock")
        .get_mut(terminal)
    {
        t.busy = None;
    }
}

/// The terminal and the acquirer play one step for a session.
async fn run_terminal(
    sim: Simulator,
    id: String,
    terminal: String,
    step: Step,
    activated: Vec<Activated>,
) {
    let config = sim.pos().config.lock().expect("pos lock").clone();
    let delay = Duration::from_millis(step.delay_ms.unwrap_or(config.default_delay_ms));
    let timeout = Duration::from_millis(config.authorization_timeout_ms);
    let receipt_delay =
        Duration::from_millis(step.receipt_delay_ms.unwrap_or(config.receipt_delay_ms));
    let amount: i64 = activated.iter().map(|a| a.amount.0).sum();
    let error = |text: &str| Some(text.to_string());
    match step.mode {
        Mode::Authorized => {
            tokio::time::sleep(delay).await;
            close(&sim, &id, &activated).await;
            finish(&sim, &id, SessionOutcome::Success);
            release_terminal(&sim, &terminal);
            notify(
                &sim,
                &config,
                &id,
                &terminal,
                AuthOutcome::Authorized,
                amount,
                None,
            )
            .await;
        }
        Mode::Declined | Mode::Refused | Mode::CanceledByUser => {
            tokio::time::sleep(delay).await;
            let (outcome, text) = match step.mode {
                Mode::Declined => (AuthOutcome::Declined, "Carta rifiutata dall'emittente"),
                Mode::Refused => (AuthOutcome::Refused, "Operazione rifiutata"),
                _ => (AuthOutcome::CanceledByUser, "Operazione annullata"),
            };
            finish(&sim, &id, SessionOutcome::Error);
            release_terminal(&sim, &terminal);
            notify(&sim, &config, &id, &terminal, outcome, amount, error(text)).await;
        }
        Mode::Timeout => {
            tokio::time::sleep(timeout).await;
            finish(&sim, &id, SessionOutcome::Error);
            release_terminal(&sim, &terminal);
            let text = error("Tempo scaduto");
            notify(
                &sim,
                &config,
                &id,
                &terminal,
                AuthOutcome::Timeout,
                amount,
                text,
            )
            .await;
        }
        Mode::DropAfterAuth => {
            // Charged at the terminal; the outcome is lost on the way.
            tokio::time::sleep(timeout).await;
            sim.pos()
                .reconciliations
                .lock()
                .expect("pos lock")
                .push(Reconciliation {
                    session_id: id.clone(),
                    amount,
                    action: "REFUND",
                    reason: "TIMEOUT_AUTHORIZATION",
                });
            finish(&sim, &id, SessionOutcome::Error);
            release_terminal(&sim, &terminal);
            let text = error("Esito non ricevuto dal terminale");
            notify(
                &sim,
                &config,
                &id,
                &terminal,
                AuthOutcome::Timeout,
                amount,
                text,
            )
            .await;
        }
        Mode::LateReceipt => {
            tokio::time::sleep(delay).await;
            finish(&sim, &id, SessionOutcome::Success);
            release_terminal(&sim, &terminal);
            notify(
                &sim,
                &config,
                &id,
                &terminal,
                AuthOutcome::Authorized,
                amount,
                None,
            )
            .await;
            tokio::time::sleep(receipt_delay).await;
            close(&sim, &id, &activated).await;
        }
        Mode::ReceiptAfterTimeout => {
            tokio::time::sleep(timeout).await;
            finish(&sim, &id, SessionOutcome::Error);
            release_terminal(&sim, &terminal);
            let text = error("Tempo scaduto");
            notify(
                &sim,
                &config,
                &id,
                &terminal,
                AuthOutcome::Timeout,
                amount,
                text,
            )
            .await;
            tokio::time::sleep(receipt_delay).await;
            close(&sim, &id, &activated).await;
        }
    }
}

fn finish(sim: &Simulator, id: &str, outcome: SessionOutcome) {
    sim.pos_update(id, |s| s.outcome = outcome);
}

/// The acquirer's payment closed on the Node: a receipt to every
/// beneficiary of each notice, and a payment for the reporting flows, as
/// [`NodeClient::pay`] makes them.
async fn close(sim: &Simulator, id: &str, activated: &[Activated]) {
    let node = pos_node(sim);
    for a in activated {
        match send_receipts(&node, a).await {
            Ok(payment) => {
                sim.pos_update(id, |s| s.receipts.extend(payment.receipt_ids.clone()));
                sim.record_payment(payment);
            }
            Err(e) => {
                tracing::warn!(session = %id, notice = %a.nav, error = %e, "POS receipt not delivered")
            }
        }
    }
}

async fn send_receipts(node: &NodeClient, a: &Activated) -> Result<Payment, SimError> {
    let receipt = node.receipt_from(&a.data, &a.fiscal_code, &a.nav, a.amount)?;
    node.call(
        "paSendRTV2",
        wire::node::send_rt_request(&a.header, &receipt, true),
    )
    .await?;
    let mut beneficiaries = vec![a.fiscal_code.clone()];
    for t in &receipt.transfers {
        if beneficiaries.contains(&t.fiscal_code_pa) {
            continue;
        }
        beneficiaries.push(t.fiscal_code_pa.clone());
        if let Ok(h) = node.header_for(&t.fiscal_code_pa, None) {
            node.call(
                "paSendRTV2",
                wire::node::send_rt_request(&h, &receipt, true),
            )
            .await?;
        }
    }
    Ok(Payment {
        fiscal_code: a.fiscal_code.clone(),
        notice_number: a.nav.clone(),
        amount_cents: a.amount.0,
        receipt_ids: vec![receipt.receipt_id.clone()],
        beneficiaries,
        psp_id: node.psp.id.clone(),
        paid_at: chrono::Utc::now().to_rfc3339(),
        iuv: receipt.creditor_reference_id.clone(),
        transfers: receipt
            .transfers
            .iter()
            .map(|t| PaidTransfer {
                fiscal_code: t.fiscal_code_pa.clone(),
                index: t.id_transfer,
                amount_cents: t.amount.0,
            })
            .collect(),
        without_receipt: false,
    })
}

/// The gateway calls the Ente back, and tries again while the Ente does
/// not answer (a refusal, 4xx other than 429, is final).
async fn notify(
    sim: &Simulator,
    config: &PosConfig,
    id: &str,
    terminal: &str,
    outcome: AuthOutcome,
    amount: i64,
    error: Option<String>,
) {
    let Some(session) = sim.pos_session(id) else {
        return;
    };
    let card = CardDetails {
        bin: Some("400000".into()),
        last_four_digits: Some("1234".into()),
        payment_auth_code: Some("889900".into()),
        rrn: Some("123456789012".into()),
        brand: Some("VISA".into()),
    };
    let timestamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let body = AuthorizationCallback::new(
        outcome,
        terminal,
        id,
        amount,
        &timestamp,
        (outcome == AuthOutcome::Authorized).then_some(&card),
        error.as_deref(),
    );
    sim.pos_update(id, |s| s.callback = Some(outcome));
    let url = format!(
        "{}/pos/ci/sessions/{id}/auth-requests",
        config.callback_url.trim_end_matches('/')
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client");
    for attempt in 1..=config.callback_attempts.max(1) {
        let status = match client
            .patch(&url)
            .header("x-correlation-id", &session.correlation_id)
            .json(&body)
            .send()
            .await
        {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        };
        sim.pos_update(id, |s| s.callback_attempts.push(status));
        let retry = status == 0 || status == 429 || status >= 500;
        if !retry {
            if status != 204 {
                tracing::warn!(session = %id, status, "the Ente refused the POS outcome");
            }
            return;
        }
        if attempt < config.callback_attempts {
            tokio::time::sleep(Duration::from_millis(config.callback_retry_ms)).await;
        }
    }
    tracing::warn!(session = %id, "the Ente never took the POS outcome");
}

async fn control_terminals(State(sim): State<Simulator>) -> axum::Json<Vec<TerminalState>> {
    axum::Json(
        sim.pos()
            .terminals
            .lock()
            .expect("pos lock")
            .values()
            .cloned()
            .collect(),
    )
}

/// `PUT /simulator/pos/terminals/{id}`: the terminal's status and/or its
/// script (one step per authorization request).
#[derive(Debug, Deserialize)]
struct TerminalPut {
    status: Option<TerminalStatus>,
    script: Option<Vec<Step>>,
    description: Option<String>,
}

async fn control_terminal(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    axum::Json(put): axum::Json<TerminalPut>,
) -> Response {
    let mut terminals = sim.pos().terminals.lock().expect("pos lock");
    let t = terminals
        .entry(id.clone())
        .or_insert_with(|| TerminalState {
            id: id.clone(),
            description: format!("POS {id}"),
            status: TerminalStatus::Available,
            script: VecDeque::new(),
            busy: None,
        });
    if let Some(s) = put.status {
        t.status = s;
    }
    if let Some(d) = put.description {
        t.description = d;
    }
    if let Some(script) = put.script {
        t.script = script.into();
    }
    axum::Json(t.clone()).into_response()
}

async fn control_sessions(State(sim): State<Simulator>) -> axum::Json<Vec<SimSession>> {
    axum::Json(sim.pos_sessions())
}

async fn control_reconciliations(State(sim): State<Simulator>) -> axum::Json<Vec<Reconciliation>> {
    axum::Json(sim.pos_reconciliations())
}
