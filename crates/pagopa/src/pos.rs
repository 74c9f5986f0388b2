//! pagoPA's POS gateway, the creditor's side (`pos_ci_layer.json`): the
//! messages an Ente exchanges with the gateway to have a physical card
//! terminal pay its notices, and the client of the four calls the Ente
//! makes (init a session, list terminals, send the authorization request,
//! read a session's status).
//!
//! The serde types are written by hand: the published document puts its
//! discriminators on the parent object (`type` beside `details`, `outcome`
//! beside `details`), which generators cannot read, and its `required`
//! list names `debtPosition` where every example and the gateway's own
//! handler say `debtPositions`. What incasso sends follows the CI limits;
//! what it receives (the outcome callback) is read leniently, because
//! refusing an `AUTHORIZED` callback over a field's length would lose the
//! trace of a real card payment.
//!
//! Like [`crate::connector`]: one small trait ([`PosGateway`]) and its HTTP
//! implementation ([`HttpPosGateway`]); errors are typed ([`PosError`]).

use crate::connector::{BoxFuture, install_crypto_provider};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The PSP whose terminals the Ente uses (`PspInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PspInfo {
    pub id: String,
    pub broker: String,
    pub channel: String,
}

/// The Ente and, optionally, the office and desk asking
/// (`CreditorInstitutionInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreditorInstitutionInfo {
    pub fiscal_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logical_office: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workstation: Option<String>,
}

/// `PosSessionRequest`: the body of session init and of the terminal list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PosSessionRequest {
    pub psp: PspInfo,
    pub creditor_institution: CreditorInstitutionInfo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TerminalStatus {
    Available,
    Unavailable,
    Maintenance,
}

impl TerminalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TerminalStatus::Available => "AVAILABLE",
            TerminalStatus::Unavailable => "UNAVAILABLE",
            TerminalStatus::Maintenance => "MAINTENANCE",
        }
    }
}

/// `PosTerminal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PosTerminal {
    pub id: String,
    pub description: String,
    pub status: TerminalStatus,
    /// `S0001`..`S0003`; the spec does not say what they mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<String>,
}

/// `PosSessionResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PosSessionResponse {
    pub session_id: String,
    #[serde(default)]
    pub terminals: Vec<PosTerminal>,
}

/// `PosResponse`: the terminal list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PosResponse {
    pub terminals: Vec<PosTerminal>,
}

/// One transfer of a position the gateway creates
/// (`DebtPositionToCreateTransfer`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferToCreate {
    pub amount: i64,
    pub transfer_description: String,
    pub iban: String,
    /// The taxonomy's "dati specifici di incasso" prefix, e.g. `9/0104100TS/`.
    pub category: String,
}

/// `Debtor`: `type` is `F` (a person) or `G` (a legal entity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PosDebtor {
    #[serde(rename = "type")]
    pub kind: String,
    pub fiscal_code: String,
    pub full_name: String,
}

/// `DebtPositionToCreateDetails`, and with `iuv` the
/// `...WithProvidedIuvDetails`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToCreateDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iuv: Option<String>,
    pub transfer_list: Vec<TransferToCreate>,
    pub debtor: PosDebtor,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CiProvidedDetails {
    pub notice_number: String,
}

/// `DebtPosition`: `type` beside `details` (adjacently tagged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "details")]
pub enum DebtPosition {
    /// The position exists at the Ente: only its notice number travels.
    #[serde(rename = "CI_PROVIDED")]
    CiProvided(CiProvidedDetails),
    /// The gateway creates the position, with a new IUV.
    #[serde(rename = "TO_CREATE")]
    ToCreate(ToCreateDetails),
    /// The gateway creates it with the IUV the Ente chose.
    #[serde(rename = "TO_CREATE_PROVIDED_IUV")]
    ToCreateProvidedIuv(ToCreateDetails),
}

/// `PaymentRequest`: 1 to 5 positions for one terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequest {
    pub terminal_id: String,
    pub debt_positions: Vec<DebtPosition>,
}

/// One position of an accepted request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentDetail {
    pub creditor_institution_fiscal_code: String,
    pub notice_number: String,
    pub iuv: String,
    pub amount: i64,
}

/// The step of a refused request that failed for a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KoReason {
    CreationError,
    ActivationError,
    AuthError,
}

/// One position of a refused request. The spec requires every field, but
/// a position whose creation failed has no notice number: read leniently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KoDetail {
    #[serde(default)]
    pub creditor_institution_fiscal_code: Option<String>,
    #[serde(default)]
    pub notice_number: Option<String>,
    #[serde(default)]
    pub iuv: Option<String>,
    #[serde(default)]
    pub amount: Option<i64>,
    pub reason: KoReason,
}

/// `PaymentResponse`: `outcome` inside the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome")]
pub enum PaymentResponse {
    #[serde(rename = "OK")]
    Ok {
        amount: i64,
        details: Vec<PaymentDetail>,
    },
    #[serde(rename = "KO")]
    Ko {
        #[serde(default)]
        amount: i64,
        #[serde(default)]
        details: Vec<KoDetail>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionOutcome {
    /// Authorized and notified to the Ente.
    Success,
    /// Ended without a payment: the session can be discarded.
    Error,
    /// Still running: wait for the callback.
    Ongoing,
}

/// `SessionStatusResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStatusResponse {
    pub outcome: SessionOutcome,
}

/// The outcome of the card authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthOutcome {
    Authorized,
    Declined,
    Refused,
    CanceledByUser,
    Timeout,
}

impl AuthOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthOutcome::Authorized => "AUTHORIZED",
            AuthOutcome::Declined => "DECLINED",
            AuthOutcome::Refused => "REFUSED",
            AuthOutcome::CanceledByUser => "CANCELED_BY_USER",
            AuthOutcome::Timeout => "TIMEOUT",
        }
    }

    pub fn parse(s: &str) -> Option<AuthOutcome> {
        [
            AuthOutcome::Authorized,
            AuthOutcome::Declined,
            AuthOutcome::Refused,
            AuthOutcome::CanceledByUser,
            AuthOutcome::Timeout,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// The card of an authorized payment (`AuthorizationCallbackCardDetailsOk`).
/// Every field optional on the way in: see the module's note.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CardDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_four_digits: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_auth_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
}

/// `AuthorizationCallbackRequest`, what the gateway sends to
/// `PATCH /pos/ci/sessions/{sessionId}/auth-requests`. `details` is kept as
/// JSON and read by [`AuthorizationCallback::card`] and
/// [`AuthorizationCallback::error_description`] according to `outcome`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationCallback {
    pub outcome: AuthOutcome,
    pub terminal_id: String,
    pub timestamp: String,
    pub amount: i64,
    /// Required by the CI document, absent from the gateway's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default)]
    pub details: serde_json::Value,
}

impl AuthorizationCallback {
    /// An `AUTHORIZED` callback's card, as far as it was given.
    pub fn card(&self) -> Option<CardDetails> {
        if self.outcome != AuthOutcome::Authorized {
            return None;
        }
        let inner = self.details.get("details").unwrap_or(&self.details);
        Some(serde_json::from_value(inner.clone()).unwrap_or_default())
    }

    /// Why a negative outcome ended so, as the terminal said it.
    pub fn error_description(&self) -> Option<String> {
        self.details
            .get("errorDescription")
            .and_then(|v| v.as_str())
            .map(str::to_string)
    }

    /// A callback's body for `outcome` (the simulator's and the tests').
    pub fn new(
        outcome: AuthOutcome,
        terminal_id: &str,
        session_id: &str,
        amount: i64,
        timestamp: &str,
        card: Option<&CardDetails>,
        error: Option<&str>,
    ) -> AuthorizationCallback {
        let details = match (outcome, card) {
            (AuthOutcome::Authorized, Some(card)) => {
                serde_json::json!({"paymentType": "CARD", "details": card})
            }
            _ => serde_json::json!({"errorDescription": error.unwrap_or("")}),
        };
        AuthorizationCallback {
            outcome,
            terminal_id: terminal_id.to_string(),
            timestamp: timestamp.to_string(),
            amount,
            session_id: Some(session_id.to_string()),
            details,
        }
    }
}

/// `ProblemJson`, every field optional as the spec has it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemJson {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// A UUID (any version), as `SessionId` and `x-correlation-id` are.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A new random (version 4) UUID.
pub fn new_uuid() -> String {
    let mut b = [0u8; 16];
    getrandom_fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// ring is already linked (rustls): its system random source, without
/// another crate.
fn getrandom_fill(buf: &mut [u8]) {
    use rustls::crypto::ring::default_provider;
    let provider = default_provider();
    if provider.secure_random.fill(buf).is_err() {
        // No system randomness means no TLS either; fall back to time so a
        // correlation id is still unique enough for logs.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes();
        for (i, x) in buf.iter_mut().enumerate() {
            *x = t[i % t.len()];
        }
    }
}

/// Where the gateway is and who the Ente's PSP is. `Debug` hides the key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PosGatewaySettings {
    /// The gateway's base, e.g. `https://api.platform.pagopa.it/pos-layer-service`.
    pub url: String,
    /// `Ocp-Apim-Subscription-Key`.
    pub subscription_key: Option<String>,
    pub psp: PspInfo,
    pub timeout_ms: u64,
}

impl std::fmt::Debug for PosGatewaySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PosGatewaySettings")
            .field("url", &self.url)
            .field(
                "subscription_key",
                &self.subscription_key.as_ref().map(|_| "***"),
            )
            .field("psp", &self.psp)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PosError {
    #[error("configurazione del gateway POS non valida: {0}")]
    Config(String),
    #[error("il gateway POS non risponde: {0}")]
    Unreachable(String),
    #[error("il gateway POS ha risposto {status}: {detail}")]
    Rejected { status: u16, detail: String },
    #[error("risposta del gateway POS non valida: {0}")]
    BadResponse(String),
}

impl PosError {
    /// Whether trying the same call again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            PosError::Unreachable(_) => true,
            PosError::Rejected { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// The four calls of the CI layer. Each takes the session's
/// `x-correlation-id`: one per POS session, the same for every call.
pub trait PosGateway: Send + Sync {
    /// `POST /pos/sessions`: a new session (and, if asked, the terminals).
    fn init_session<'a>(
        &'a self,
        correlation_id: &'a str,
        request: &'a PosSessionRequest,
        include_terminals: bool,
    ) -> BoxFuture<'a, Result<PosSessionResponse, PosError>>;

    /// `POST /pos/terminals`.
    fn terminals<'a>(
        &'a self,
        correlation_id: &'a str,
        request: &'a PosSessionRequest,
    ) -> BoxFuture<'a, Result<PosResponse, PosError>>;

    /// `POST /pos/sessions/{sessionId}/auth-requests`. Never retried here:
    /// after a failure without an answer, ask [`PosGateway::session_status`]
    /// before sending it again.
    fn create_payment<'a>(
        &'a self,
        correlation_id: &'a str,
        session_id: &'a str,
        request: &'a PaymentRequest,
    ) -> BoxFuture<'a, Result<PaymentResponse, PosError>>;

    /// `GET /pos/sessions/{sessionId}`.
    fn session_status<'a>(
        &'a self,
        correlation_id: &'a str,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<SessionStatusResponse, PosError>>;
}

/// The gateway over HTTP.
pub struct HttpPosGateway {
    client: reqwest::Client,
    settings: PosGatewaySettings,
}

/// Attempts of an idempotent call (init, terminals, status), the first
/// included, against a gateway that is down or overloaded.
const ATTEMPTS: u32 = 3;

impl HttpPosGateway {
    pub fn new(settings: PosGatewaySettings) -> Result<HttpPosGateway, PosError> {
        if !reqwest::Url::parse(&settings.url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        {
            return Err(PosError::Config(format!(
                "'{}' non è un URL http o https",
                settings.url
            )));
        }
        install_crypto_provider();
        let timeout = settings.timeout_ms.max(1);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_millis(timeout))
            .connect_timeout(Duration::from_millis(timeout.min(5_000)))
            .build()
            .map_err(|e| PosError::Config(format!("client HTTP: {e}")))?;
        Ok(HttpPosGateway { client, settings })
    }

    pub fn settings(&self) -> &PosGatewaySettings {
        &self.settings
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.url.trim_end_matches('/'))
    }

    fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        correlation_id: &str,
    ) -> reqwest::RequestBuilder {
        let mut req = self
            .client
            .request(method, url)
            .header("x-correlation-id", correlation_id)
            .header("Accept", "application/json");
        if let Some(key) = &self.settings.subscription_key {
            req = req.header("Ocp-Apim-Subscription-Key", key);
        }
        req
    }

    async fn once<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, PosError> {
        let resp = req
            .send()
            .await
            .map_err(|e| PosError::Unreachable(error_chain(&e)))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| PosError::Unreachable(error_chain(&e)))?;
        if !(200..300).contains(&status) {
            let detail = serde_json::from_slice::<ProblemJson>(&body)
                .ok()
                .and_then(|p| p.detail.or(p.title))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect());
            return Err(PosError::Rejected { status, detail });
        }
        serde_json::from_slice(&body).map_err(|e| PosError::BadResponse(e.to_string()))
    }

    async fn with_retries<T: serde::de::DeserializeOwned>(
        &self,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<T, PosError> {
        let mut attempt = 1;
        loop {
            match self.once(make()).await {
                Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                    tracing::warn!(attempt, error = %e, "POS gateway call failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// A session id as one path segment: the gateway gives uuids, but nothing
/// from outside is put in a URL unchecked.
fn session_segment(session_id: &str) -> Result<&str, PosError> {
    if is_uuid(session_id) {
        Ok(session_id)
    } else {
        Err(PosError::BadResponse(format!(
            "sessionId '{session_id}' non è un UUID"
        )))
    }
}

impl PosGateway for HttpPosGateway {
    fn init_session<'a>(
        &'a self,
        correlation_id: &'a str,
        request: &'a PosSessionRequest,
        include_terminals: bool,
    ) -> BoxFuture<'a, Result<PosSessionResponse, PosError>> {
        Box::pin(async move {
            let url = self.url(&format!(
                "/pos/sessions?includeTerminals={include_terminals}"
            ));
            let response: PosSessionResponse = self
                .with_retries(|| {
                    self.request(reqwest::Method::POST, &url, correlation_id)
                        .json(request)
                })
                .await?;
            session_segment(&response.session_id)?;
            Ok(response)
        })
    }

    fn terminals<'a>(
        &'a self,
        correlation_id: &'a str,
        request: &'a PosSessionRequest,
    ) -> BoxFuture<'a, Result<PosResponse, PosError>> {
        Box::pin(async move {
            let url = self.url("/pos/terminals");
            self.with_retries(|| {
                self.request(reqwest::Method::POST, &url, correlation_id)
                    .json(request)
            })
            .await
        })
    }

    fn create_payment<'a>(
        &'a self,
        correlation_id: &'a str,
        session_id: &'a str,
        request: &'a PaymentRequest,
    ) -> BoxFuture<'a, Result<PaymentResponse, PosError>> {
        Box::pin(async move {
            let url = self.url(&format!(
                "/pos/sessions/{}/auth-requests",
                session_segment(session_id)?
            ));
            self.once(
                self.request(reqwest::Method::POST, &url, correlation_id)
                    .json(request),
            )
            .await
        })
    }

    fn session_status<'a>(
        &'a self,
        correlation_id: &'a str,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<SessionStatusResponse, PosError>> {
        Box::pin(async move {
            let url = self.url(&format!("/pos/sessions/{}", session_segment(session_id)?));
            self.with_retries(|| self.request(reqwest::Method::GET, &url, correlation_id))
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request body carries the field names of `pos_ci_layer.json`,
    /// with `type` beside `details` and `debtPositions` in the plural.
    #[test]
    fn a_payment_request_is_written_as_the_gateway_reads_it() {
        let req = PaymentRequest {
            terminal_id: "SIMPOS01".into(),
            debt_positions: vec![
                DebtPosition::CiProvided(CiProvidedDetails {
                    notice_number: "301000000001234519".into(),
                }),
                DebtPosition::ToCreateProvidedIuv(ToCreateDetails {
                    iuv: Some("01000000001234620".into()),
                    transfer_list: vec![TransferToCreate {
                        amount: 1600,
                        transfer_description: "Certificato".into(),
                        iban: "IT60X0542811101000000123456".into(),
                        category: "9/0104103SP/".into(),
                    }],
                    debtor: PosDebtor {
                        kind: "F".into(),
                        fiscal_code: "RSSMRA80A01H501U".into(),
                        full_name: "Mario Rossi".into(),
                    },
                    description: "Diritti".into(),
                }),
            ],
        };
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(v["terminalId"], "SIMPOS01");
        assert_eq!(v["debtPositions"][0]["type"], "CI_PROVIDED");
        assert_eq!(
            v["debtPositions"][0]["details"]["noticeNumber"],
            "301000000001234519"
        );
        assert_eq!(v["debtPositions"][1]["type"], "TO_CREATE_PROVIDED_IUV");
        assert_eq!(v["debtPositions"][1]["details"]["debtor"]["type"], "F");
        assert_eq!(
            v["debtPositions"][1]["details"]["transferList"][0]["transferDescription"],
            "Certificato"
        );
        let back: PaymentRequest = serde_json::from_value(v).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn responses_are_read_by_their_outcome() {
        let ok: PaymentResponse = serde_json::from_str(
            r#"{"outcome":"OK","amount":5800,"details":[{"creditorInstitutionFiscalCode":"80001230456",
            "noticeNumber":"301000000001234519","iuv":"01000000001234519","amount":2000}]}"#,
        )
        .unwrap();
        assert!(
            matches!(ok, PaymentResponse::Ok { amount: 5800, ref details } if details.len() == 1)
        );
        let ko: PaymentResponse = serde_json::from_str(
            r#"{"outcome":"KO","amount":2000,"details":[{"creditorInstitutionFiscalCode":"80001230456",
            "amount":2000,"reason":"CREATION_ERROR"}]}"#,
        )
        .unwrap();
        match ko {
            PaymentResponse::Ko { details, .. } => {
                assert_eq!(details[0].reason, KoReason::CreationError);
                assert_eq!(details[0].notice_number, None);
            }
            other => panic!("{other:?}"),
        }
    }

    /// An AUTHORIZED callback with an RRN of the wrong length and no body
    /// sessionId is still read (module note), and its card found.
    #[test]
    fn callbacks_are_read_leniently() {
        let cb: AuthorizationCallback = serde_json::from_str(
            r#"{"outcome":"AUTHORIZED","terminalId":"SIMPOS01","timestamp":"2026-04-08T14:16:30Z",
            "amount":5800,"details":{"paymentType":"CARD","details":{"bin":"400000",
            "lastFourDigits":"1234","paymentAuthCode":"889900","rrn":"123","brand":"VISA"}}}"#,
        )
        .unwrap();
        assert_eq!(cb.session_id, None);
        let card = cb.card().unwrap();
        assert_eq!(card.last_four_digits.as_deref(), Some("1234"));
        assert_eq!(card.brand.as_deref(), Some("VISA"));
        let ko: AuthorizationCallback = serde_json::from_str(
            r#"{"outcome":"CANCELED_BY_USER","terminalId":"SIMPOS01","timestamp":"2026-04-08T14:16:30Z",
            "amount":5800,"sessionId":"0b6c1f7e-8d1a-4f0e-9c55-2a3b4c5d6e7f",
            "details":{"errorDescription":"Operazione annullata"}}"#,
        )
        .unwrap();
        assert_eq!(ko.outcome, AuthOutcome::CanceledByUser);
        assert_eq!(ko.card(), None);
        assert_eq!(
            ko.error_description().as_deref(),
            Some("Operazione annullata")
        );
    }

    #[test]
    fn uuids_are_made_and_recognized() {
        let a = new_uuid();
        assert!(is_uuid(&a), "{a}");
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, new_uuid());
        assert!(!is_uuid("0b6c1f7e-8d1a-4f0e-9c55-2a3b4c5d6e7"));
        assert!(!is_uuid("../../etc/passwd"));
    }

    #[test]
    fn debug_hides_the_key() {
        let s = PosGatewaySettings {
            url: "http://x".into(),
            subscription_key: Some("S3GRETO".into()),
            psp: PspInfo {
                id: "a".into(),
                broker: "b".into(),
                channel: "c".into(),
            },
            timeout_ms: 1,
        };
        assert!(!format!("{s:?}").contains("S3GRETO"));
    }
}
