//! The App IO services API client (`io-functions-services`, Swagger 2.0 in
//! `shared/spec/io/io-functions-services.index.yaml`).
//!
//! IO asks the sender to check the citizen's profile before every message
//! (`sender_allowed`), then submit it. `POST /messages` has no idempotency
//! key: a message whose answer is lost may have been sent; the caller (the
//! outbox) records its attempt before calling [`IoClient::send`] and the
//! outcome right after.
//!
//! A fiscal code is personal data: this module never logs one whole (see
//! [`mask_fiscal_code`]) and never logs the API key.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The header IO's API Management reads the service's key from
/// (`securityDefinitions.SubscriptionKey`).
pub const SUBSCRIPTION_KEY_HEADER: &str = "Ocp-Apim-Subscription-Key";

/// `MessageContentBase.subject`: minLength 10, maxLength 120.
pub const SUBJECT_MIN: usize = 10;
pub const SUBJECT_MAX: usize = 120;
/// `MessageContentBase.markdown`: minLength 80, maxLength 10000.
pub const MARKDOWN_MIN: usize = 80;
pub const MARKDOWN_MAX: usize = 10_000;
/// `TimeToLiveSeconds`: minimum 3600, maximum 604800 (one hour to a week).
pub const TTL_MIN: u32 = 3_600;
pub const TTL_MAX: u32 = 604_800;
/// `PaymentDataBase.amount`: minimum 1, maximum 9999999999 cents.
pub const AMOUNT_MAX: i64 = 9_999_999_999;

#[derive(Debug, Clone)]
pub struct IoClient {
    http: reqwest::Client,
    base_url: String,
}

/// `LimitedProfile`: what IO tells a service about a citizen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub sender_allowed: bool,
    /// As IO gives them (`it_IT`, `de_DE`...), most preferred first.
    pub preferred_languages: Vec<String>,
}

impl Profile {
    /// The first of the citizen's languages that is one of `supported`
    /// (two-letter codes, `"it"`, `"de"`), if any.
    pub fn language_among<'a>(&self, supported: &[&'a str]) -> Option<&'a str> {
        self.preferred_languages.iter().find_map(|l| {
            let code = l
                .split(['_', '-'])
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            supported.iter().copied().find(|s| *s == code)
        })
    }
}

/// `NewMessage` with the fiscal code in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub fiscal_code: String,
    /// Seconds IO keeps trying to deliver (`TimeToLiveSeconds`, 3600-604800);
    /// `None` leaves IO's default (3600).
    pub time_to_live: Option<u32>,
    pub content: MessageContent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageContent {
    pub subject: String,
    pub markdown: String,
    pub payment_data: Option<PaymentData>,
    pub due_date: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentData {
    /// Cents, 1 to 9999999999.
    pub amount: i64,
    /// The 18-digit notice number (`^[0123][0-9]{17}$`).
    pub notice_number: String,
    pub invalid_after_due_date: bool,
    /// The Ente's 11-digit fiscal code; `None` lets IO put the service's
    /// organization fiscal code.
    pub payee_fiscal_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IoError {
    /// The citizen is not on IO (404 on the profile).
    #[error("the citizen is not on App IO")]
    NotFound,
    /// 429: slow down for this service; `Retry-After` if IO gave one.
    #[error("App IO rate limit (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx, timeouts, connection failures: try again later.
    #[error("App IO unavailable: {0}")]
    Transient(String),
    /// IO refused the request (400, 401, 403...): never retried as it is.
    #[error("App IO refused the request ({status}): {detail}")]
    Permanent { status: u16, detail: String },
    /// The message was refused here, before sending: IO would answer 400.
    #[error("message not valid for App IO: {0}")]
    Invalid(#[from] MessageError),
}

impl IoError {
    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, IoError::RateLimited { .. } | IoError::Transient(_))
    }
}

/// Why a message cannot go to IO as it is, checked against the spec's
/// definitions before sending.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("fiscal code {0} is not a valid personal fiscal code")]
    FiscalCode(String),
    #[error("subject is {0} characters, it must be 10 to 120")]
    SubjectLength(usize),
    #[error("markdown is {0} characters, it must be 80 to 10000")]
    MarkdownLength(usize),
    #[error("time_to_live {0} s is outside 3600-604800")]
    TimeToLive(u32),
    #[error("amount {0} cents is outside 1-9999999999")]
    Amount(i64),
    #[error("notice number {0:?} is not 18 digits starting with 0-3")]
    NoticeNumber(String),
    #[error("payee fiscal code {0:?} is not 11 digits")]
    PayeeFiscalCode(String),
}

/// Hides most of a fiscal code for logs: `RSS***********1U`.
pub fn mask_fiscal_code(fiscal_code: &str) -> String {
    let chars: Vec<char> = fiscal_code.chars().collect();
    if chars.len() < 6 {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..3].iter().collect();
    out.push_str(&"*".repeat(chars.len() - 5));
    out.extend(&chars[chars.len() - 2..]);
    out
}

/// The `FiscalCode` path parameter's pattern (the definition's
/// `format: FiscalCode` is the same rule in `@pagopa/ts-commons`):
/// `[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]`.
pub fn is_fiscal_code(s: &str) -> bool {
    const OMOCODE_DIGIT: &[u8] = b"0123456789LMNPQRSTUV";
    const MONTHS: &[u8] = b"ABCDEHLMPRST";
    let b = s.as_bytes();
    let letter = |c: u8| c.is_ascii_uppercase();
    let digit = |c: u8| OMOCODE_DIGIT.contains(&c);
    b.len() == 16
        && b[..6].iter().all(|&c| letter(c))
        && b[6..8].iter().all(|&c| digit(c))
        && MONTHS.contains(&b[8])
        && b[9..11].iter().all(|&c| digit(c))
        && letter(b[11])
        && b[12..15].iter().all(|&c| digit(c))
        && letter(b[15])
}

/// `OrganizationFiscalCode` (ts-commons): `^[0-9]{11}$`.
pub fn is_organization_fiscal_code(s: &str) -> bool {
    s.len() == 11 && s.bytes().all(|c| c.is_ascii_digit())
}

/// `PaymentDataBase.notice_number`: `^[0123][0-9]{17}$`.
pub fn is_notice_number(s: &str) -> bool {
    s.len() == 18 && s.bytes().all(|c| c.is_ascii_digit()) && s.as_bytes()[0] <= b'3'
}

impl NewMessage {
    /// Checks every rule of `NewMessage` IO would check, so that a bad
    /// message is refused here with its reason rather than by IO's 400.
    /// Lengths count characters, as IO's validators (JavaScript strings
    /// of Italian and German text) do.
    pub fn validate(&self) -> Result<(), MessageError> {
        if !is_fiscal_code(&self.fiscal_code) {
            return Err(MessageError::FiscalCode(mask_fiscal_code(
                &self.fiscal_code,
            )));
        }
        let subject = self.content.subject.chars().count();
        if !(SUBJECT_MIN..=SUBJECT_MAX).contains(&subject) {
            return Err(MessageError::SubjectLength(subject));
        }
        let markdown = self.content.markdown.chars().count();
        if !(MARKDOWN_MIN..=MARKDOWN_MAX).contains(&markdown) {
            return Err(MessageError::MarkdownLength(markdown));
        }
        if let Some(ttl) = self.time_to_live
            && !(TTL_MIN..=TTL_MAX).contains(&ttl)
        {
            return Err(MessageError::TimeToLive(ttl));
        }
        if let Some(p) = &self.content.payment_data {
            if !(1..=AMOUNT_MAX).contains(&p.amount) {
                return Err(MessageError::Amount(p.amount));
            }
            if !is_notice_number(&p.notice_number) {
                return Err(MessageError::NoticeNumber(p.notice_number.clone()));
            }
            if let Some(payee) = &p.payee_fiscal_code
                && !is_organization_fiscal_code(payee)
            {
                return Err(MessageError::PayeeFiscalCode(payee.clone()));
            }
        }
        Ok(())
    }

    /// The JSON body of `POST /messages`, exactly as sent.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(WireMessage::from(self)).expect("a message serializes")
    }
}

#[derive(Serialize)]
struct WireMessage<'a> {
    fiscal_code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_to_live: Option<u32>,
    content: WireContent<'a>,
}

#[derive(Serialize)]
struct WireContent<'a> {
    subject: &'a str,
    markdown: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_data: Option<WirePayment<'a>>,
    /// `Timestamp`: ISO 8601 in UTC, as IO's own examples
    /// ("2018-10-13T00:00:00.000Z").
    #[serde(skip_serializing_if = "Option::is_none")]
    due_date: Option<String>,
}

#[derive(Serialize)]
struct WirePayment<'a> {
    amount: i64,
    notice_number: &'a str,
    invalid_after_due_date: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    payee: Option<WirePayee<'a>>,
}

#[derive(Serialize)]
struct WirePayee<'a> {
    fiscal_code: &'a str,
}

impl<'a> From<&'a NewMessage> for WireMessage<'a> {
    fn from(m: &'a NewMessage) -> WireMessage<'a> {
        WireMessage {
            fiscal_code: &m.fiscal_code,
            time_to_live: m.time_to_live,
            content: WireContent {
                subject: &m.content.subject,
                markdown: &m.content.markdown,
                payment_data: m.content.payment_data.as_ref().map(|p| WirePayment {
                    amount: p.amount,
                    notice_number: &p.notice_number,
                    invalid_after_due_date: p.invalid_after_due_date,
                    payee: p
                        .payee_fiscal_code
                        .as_deref()
                        .map(|fiscal_code| WirePayee { fiscal_code }),
                }),
                due_date: m
                    .content
                    .due_date
                    .map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true)),
            },
        }
    }
}

/// `FiscalCodePayload`, the body of `POST /profiles`.
#[derive(Serialize)]
struct FiscalCodePayload<'a> {
    fiscal_code: &'a str,
}

#[derive(Deserialize)]
struct WireProfile {
    sender_allowed: bool,
    #[serde(default)]
    preferred_languages: Vec<String>,
}

#[derive(Deserialize)]
struct WireCreated {
    id: Option<String>,
}

#[derive(Deserialize, Default)]
struct ProblemJson {
    title: Option<String>,
    detail: Option<String>,
}

impl IoClient {
    /// `base_url` is IO's up to `/api/v1` (`https://api.io.pagopa.it/api/v1`,
    /// or the simulator's `{simulator}/io/api/v1`); `timeout` bounds each call.
    pub fn new(base_url: &str, timeout: Duration) -> Result<IoClient, IoError> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| IoError::Transient(format!("HTTP client: {e}")))?;
        Ok(IoClient {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The citizen's profile as seen by the service of `api_key`.
    ///
    /// Through `POST /profiles` (`getProfileByPOST`, fiscal code in the
    /// body) rather than `GET /profiles/{fiscal_code}`: both answer the same
    /// `LimitedProfile`, and IO added the POST form (as it did
    /// `POST /messages` beside `POST /messages/{fiscal_code}`) so that the
    /// fiscal code, personal data, stays out of URLs, which gateways,
    /// proxies and access logs keep.
    pub async fn profile(&self, api_key: &str, fiscal_code: &str) -> Result<Profile, IoError> {
        if !is_fiscal_code(fiscal_code) {
            return Err(MessageError::FiscalCode(mask_fiscal_code(fiscal_code)).into());
        }
        let response = self
            .http
            .post(format!("{}/profiles", self.base_url))
            .header(SUBSCRIPTION_KEY_HEADER, api_key)
            .json(&FiscalCodePayload { fiscal_code })
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        if status == 404 {
            return Err(IoError::NotFound);
        }
        let response = check(response).await?;
        let profile: WireProfile = response
            .json()
            .await
            .map_err(|e| IoError::Transient(format!("unreadable profile ({status}): {e}")))?;
        tracing::debug!(
            fiscal_code = %mask_fiscal_code(fiscal_code),
            sender_allowed = profile.sender_allowed,
            "App IO profile"
        );
        Ok(Profile {
            sender_allowed: profile.sender_allowed,
            preferred_languages: profile.preferred_languages,
        })
    }

    /// Submits the message (`POST /messages`, fiscal code in the body) and
    /// answers IO's message id. The message is validated first: an invalid
    /// one is [`IoError::Invalid`] and never reaches IO.
    pub async fn send(&self, api_key: &str, message: &NewMessage) -> Result<String, IoError> {
        message.validate()?;
        let response = self
            .http
            .post(format!("{}/messages", self.base_url))
            .header(SUBSCRIPTION_KEY_HEADER, api_key)
            .json(&WireMessage::from(message))
            .send()
            .await
            .map_err(transport)?;
        let response = check(response).await?;
        let status = response.status().as_u16();
        // 201 carries the id; a body we cannot read after IO took the
        // message must not make the caller send it again: it is a
        // permanent failure to be looked at, not a transient one.
        let created: WireCreated = response.json().await.map_err(|e| IoError::Permanent {
            status,
            detail: format!("message accepted but its answer is unreadable: {e}"),
        })?;
        let id = created
            .id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| IoError::Permanent {
                status,
                detail: "message accepted without an id".into(),
            })?;
        tracing::debug!(
            fiscal_code = %mask_fiscal_code(&message.fiscal_code),
            id = %id,
            "App IO message created"
        );
        Ok(id)
    }
}

/// reqwest is built without a TLS provider of its own (the workspace
/// picks ring for every client): without one installed, building a client
/// panics, so the client installs it, once, as the pagoPA connector does.
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Only fails if another provider was installed first, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn transport(e: reqwest::Error) -> IoError {
    // reqwest's error text names the URL; ours carry no fiscal code.
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    IoError::Transient(format!("{kind}: {}", e.without_url()))
}

/// Passes a 2xx through; maps every other answer to its [`IoError`].
async fn check(response: reqwest::Response) -> Result<reqwest::Response, IoError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let code = status.as_u16();
    if code == 429 {
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        return Err(IoError::RateLimited { retry_after });
    }
    let body = response.text().await.unwrap_or_default();
    let detail = problem_detail(&body);
    if status.is_server_error() {
        Err(IoError::Transient(format!("{code}: {detail}")))
    } else {
        Err(IoError::Permanent {
            status: code,
            detail,
        })
    }
}

/// `Retry-After` in seconds, or as an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
    Some((when - Utc::now()).to_std().unwrap_or(Duration::ZERO))
}

/// The reason in a `ProblemJson` body, else the body's start (IO's API
/// Management answers 401 in a JSON of its own).
fn problem_detail(body: &str) -> String {
    let p: ProblemJson = serde_json::from_str(body).unwrap_or_default();
    match (p.title, p.detail) {
        (Some(t), Some(d)) => format!("{t}: {d}"),
        (None, Some(d)) => d,
        (Some(t), None) => t,
        (None, None) => {
            let s: String = body.chars().take(300).collect();
            if s.is_empty() { "no detail".into() } else { s }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sample() -> NewMessage {
        NewMessage {
            fiscal_code: "RSSMRA80A01H501U".into(),
            time_to_live: Some(3600),
            content: MessageContent {
                subject: "Avviso di pagamento TARI 2026".into(),
                markdown: "Gentile contribuente, il Comune di Prova ti invia l'avviso di pagamento della TARI 2026. Importo: 246,00 euro.".into(),
                payment_data: Some(PaymentData {
                    amount: 24_600,
                    notice_number: "301000000000000017".into(),
                    invalid_after_due_date: false,
                    payee_fiscal_code: Some("80000130585".into()),
                }),
                due_date: Some(Utc.with_ymd_and_hms(2026, 12, 31, 22, 59, 0).unwrap()),
            },
        }
    }

    #[test]
    fn a_good_message_passes() {
        assert_eq!(sample().validate(), Ok(()));
    }

    #[test]
    fn each_rule_refuses() {
        type Spoil = Box<dyn Fn(&mut NewMessage)>;
        let cases: Vec<(Spoil, MessageError)> = vec![
            (
                Box::new(|m| m.fiscal_code = "rssmra80a01h501u".into()),
                MessageError::FiscalCode("rss***********1u".into()),
            ),
            (
                Box::new(|m| m.fiscal_code = "RSSMRA80Z01H501U".into()),
                MessageError::FiscalCode("RSS***********1U".into()),
            ),
            (
                Box::new(|m| m.content.subject = "Avviso".into()),
                MessageError::SubjectLength(6),
            ),
            (
                Box::new(|m| m.content.subject = "à".repeat(121)),
                MessageError::SubjectLength(121),
            ),
            (
                Box::new(|m| m.content.markdown = "x".repeat(79)),
                MessageError::MarkdownLength(79),
            ),
            (
                Box::new(|m| m.content.markdown = "x".repeat(10_001)),
                MessageError::MarkdownLength(10_001),
            ),
            (
                Box::new(|m| m.time_to_live = Some(60)),
                MessageError::TimeToLive(60),
            ),
            (
                Box::new(|m| m.time_to_live = Some(604_801)),
                MessageError::TimeToLive(604_801),
            ),
            (
                Box::new(|m| m.content.payment_data.as_mut().unwrap().amount = 0),
                MessageError::Amount(0),
            ),
            (
                Box::new(|m| {
                    m.content.payment_data.as_mut().unwrap().notice_number =
                        "401000000000000017".into()
                }),
                MessageError::NoticeNumber("401000000000000017".into()),
            ),
            (
                Box::new(|m| {
                    m.content.payment_data.as_mut().unwrap().notice_number =
                        "30100000000000001".into()
                }),
                MessageError::NoticeNumber("30100000000000001".into()),
            ),
            (
                Box::new(|m| {
                    m.content.payment_data.as_mut().unwrap().payee_fiscal_code =
                        Some("IT80000130585".into())
                }),
                MessageError::PayeeFiscalCode("IT80000130585".into()),
            ),
        ];
        for (spoil, expected) in cases {
            let mut m = sample();
            spoil(&mut m);
            assert_eq!(m.validate(), Err(expected));
        }
        // Limits themselves pass: characters, not bytes, are counted.
        let mut m = sample();
        m.content.subject = "à".repeat(120);
        m.content.markdown = "ü".repeat(80);
        m.time_to_live = Some(604_800);
        assert_eq!(m.validate(), Ok(()));
        // Omocodic fiscal codes (digits replaced by letters) are valid.
        m.fiscal_code = "RSSMRA80A01H50MU".into();
        assert_eq!(m.validate(), Ok(()));
    }

    #[test]
    fn wire_format() {
        let json = sample().to_json();
        assert_eq!(
            json,
            serde_json::json!({
                "fiscal_code": "RSSMRA80A01H501U",
                "time_to_live": 3600,
                "content": {
                    "subject": "Avviso di pagamento TARI 2026",
                    "markdown": sample().content.markdown,
                    "payment_data": {
                        "amount": 24600,
                        "notice_number": "301000000000000017",
                        "invalid_after_due_date": false,
                        "payee": {"fiscal_code": "80000130585"}
                    },
                    "due_date": "2026-12-31T22:59:00.000Z"
                }
            })
        );
        let mut m = sample();
        m.time_to_live = None;
        m.content.due_date = None;
        m.content.payment_data.as_mut().unwrap().payee_fiscal_code = None;
        let json = m.to_json();
        assert!(json.get("time_to_live").is_none());
        assert!(json["content"].get("due_date").is_none());
        assert!(json["content"]["payment_data"].get("payee").is_none());
    }

    #[test]
    fn masks_and_headers() {
        assert_eq!(mask_fiscal_code("RSSMRA80A01H501U"), "RSS***********1U");
        assert_eq!(mask_fiscal_code("ABC"), "***");
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(
            problem_detail(r#"{"title":"Invalid NewMessage","detail":"bad subject"}"#),
            "Invalid NewMessage: bad subject"
        );
        assert_eq!(problem_detail(""), "no detail");
        let p = Profile {
            sender_allowed: true,
            preferred_languages: vec!["en_GB".into(), "de_DE".into(), "it_IT".into()],
        };
        assert_eq!(p.language_among(&["it", "de"]), Some("de"));
        assert_eq!(
            Profile {
                sender_allowed: true,
                preferred_languages: vec![]
            }
            .language_among(&["it"]),
            None
        );
    }
}
