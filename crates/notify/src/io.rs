//! The App IO services API client (`io-functions-services`).

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct IoClient {
    http: reqwest::Client,
    base_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub sender_allowed: bool,
    pub preferred_languages: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub fiscal_code: String,
    pub time_to_live: Option<u32>,
    pub content: MessageContent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageContent {
    pub subject: String,
    pub markdown: String,
    pub payment_data: Option<PaymentData>,
    pub due_date: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentData {
    pub amount: i64,
    pub notice_number: String,
    pub invalid_after_due_date: bool,
    pub payee_fiscal_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IoError {
    #[error("profile not found on App IO")]
    NotFound,
    #[error("App IO rate limit")]
    RateLimited { retry_after: Option<Duration> },
    #[error("App IO transient failure: {0}")]
    Transient(String),
    #[error("App IO refused the request ({status}): {detail}")]
    Permanent { status: u16, detail: String },
}

impl IoClient {
    pub fn new(base_url: &str, timeout: Duration) -> Result<IoClient, IoError> {
        let _ = (base_url, timeout);
        todo!()
    }

    pub async fn profile(&self, api_key: &str, fiscal_code: &str) -> Result<Profile, IoError> {
        let _ = (api_key, fiscal_code, &self.http, &self.base_url);
        todo!()
    }

    pub async fn send(&self, api_key: &str, message: &NewMessage) -> Result<String, IoError> {
        let _ = (api_key, message);
        todo!()
    }
}
