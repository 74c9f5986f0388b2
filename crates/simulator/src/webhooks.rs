//! A webhook receiver, as an Ente's application would run one: it checks
//! each delivery's signature and timestamp as `docs/WEBHOOKS.md` tells
//! receivers to, records what came and in which order, tells repeats
//! (the same event id) apart, and can misbehave on request.
//!
//! - `PUT /simulator/webhooks/{name}`: the receiver's secret (the one
//!   incasso showed when the endpoint was registered) and its fault modes.
//! - `POST /simulator/webhooks/{name}`: where incasso delivers.
//! - `GET /simulator/webhooks` (every receiver) and
//!   `GET /simulator/webhooks/{name}`: what came, in arrival order.
//! - `DELETE /simulator/webhooks/{name}`: forgets what came.
//!
//! Fault modes: fail the next N deliveries with 500, answer every one
//! after a delay (past incasso's timeout it is no answer at all), or
//! answer 202 and acknowledge later through incasso's
//! `POST /api/v1/webhooks/ack`, signed with the same secret.

use crate::Simulator;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ring::hmac;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

/// How far a delivery's timestamp may be from now.
pub const TOLERANCE_SECONDS: i64 = 300;

/// A receiver's settings (`PUT /simulator/webhooks/{name}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "snake_case")]
pub struct ReceiverSettings {
    /// The endpoint's secret; without one every delivery is refused (401).
    pub secret: Option<String>,
    /// Answer 500 to the next N deliveries.
    pub fail_next: u32,
    /// Wait this long before answering each delivery.
    pub slow_ms: u64,
    /// Answer 202 and acknowledge after `ack_delay_ms`.
    pub ack_later: bool,
    pub ack_delay_ms: u64,
    /// incasso's acknowledgement door; by default next to the Ente's SOAP
    /// endpoint the simulator was given.
    pub ack_url: Option<String>,
}

/// One delivery as it arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceivedWebhook {
    /// Arrival order at this receiver, from 1.
    pub seq: u64,
    pub event_id: i64,
    pub delivery_id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub iupd: String,
    pub notice_number: Option<String>,
    /// The status this receiver answered.
    pub answered: u16,
    /// An event this receiver had already taken (answered 2xx) before.
    pub duplicate: bool,
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub body: serde_json::Value,
}

/// What a receiver got.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReceiverReport {
    pub name: String,
    /// Every delivery that passed the signature check, in arrival order.
    pub deliveries: Vec<ReceivedWebhook>,
    /// Distinct events taken.
    pub events: usize,
    /// Deliveries refused: no or bad signature, or a stale timestamp.
    pub rejected: u64,
    /// Acknowledgements sent, and what incasso answered each.
    pub acks: Vec<u16>,
}

#[derive(Default)]
struct Receiver {
    settings: ReceiverSettings,
    deliveries: Vec<ReceivedWebhook>,
    taken: HashSet<i64>,
    rejected: u64,
    acks: Vec<u16>,
}

/// The simulator's receivers, by name, and incasso's SOAP endpoint (its
/// acknowledgement door is beside it).
pub struct Receivers {
    all: Mutex<BTreeMap<String, Receiver>>,
    ente_soap_url: String,
}

impl Receivers {
    pub(crate) fn new(ente_soap_url: &str) -> Receivers {
        Receivers {
            all: Mutex::new(BTreeMap::new()),
            ente_soap_url: ente_soap_url.to_string(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Receiver>> {
        self.all
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub(crate) fn routes() -> Router<Simulator> {
    Router::new().route("/simulator/webhooks", get(list)).route(
        "/simulator/webhooks/{name}",
        get(one).put(configure).post(receive).delete(clear),
    )
}

impl Simulator {
    /// Sets receiver `name` up (its secret and faults).
    pub fn configure_webhook_receiver(&self, name: &str, settings: ReceiverSettings) {
        self.inner
            .webhooks
            .lock()
            .entry(name.to_string())
            .or_default()
            .settings = settings;
    }

    /// What receiver `name` got.
    pub fn webhook_report(&self, name: &str) -> ReceiverReport {
        report(name, self.inner.webhooks.lock().get(name))
    }

    /// The receivers `serve --demo` registered (demo.json's
    /// `webhook_receivers`: name and secret), set up here.
    pub fn webhooks_from_demo(&self, demo: &serde_json::Value) {
        for r in demo["webhook_receivers"].as_array().into_iter().flatten() {
            if let (Some(name), Some(secret)) = (r["name"].as_str(), r["secret"].as_str()) {
                self.configure_webhook_receiver(
                    name,
                    ReceiverSettings {
                        secret: Some(secret.to_string()),
                        ..Default::default()
                    },
                );
            }
        }
    }

    fn ack_url(&self, settings: &ReceiverSettings) -> String {
        settings.ack_url.clone().unwrap_or_else(|| {
            let soap = &self.inner.webhooks.ente_soap_url;
            let base = soap.trim_end_matches("/pagopa/paForNode");
            format!("{base}/api/v1/webhooks/ack")
        })
    }
}

fn report(name: &str, r: Option<&Receiver>) -> ReceiverReport {
    match r {
        None => ReceiverReport {
            name: name.into(),
            ..Default::default()
        },
        Some(r) => ReceiverReport {
            name: name.into(),
            deliveries: r.deliveries.clone(),
            events: r.taken.len(),
            rejected: r.rejected,
            acks: r.acks.clone(),
        },
    }
}

async fn list(State(sim): State<Simulator>) -> Json<Vec<ReceiverReport>> {
    let all = sim.inner.webhooks.lock();
    Json(all.iter().map(|(n, r)| report(n, Some(r))).collect())
}

async fn one(State(sim): State<Simulator>, Path(name): Path<String>) -> Json<ReceiverReport> {
    Json(sim.webhook_report(&name))
}

async fn configure(
    State(sim): State<Simulator>,
    Path(name): Path<String>,
    Json(settings): Json<ReceiverSettings>,
) -> Json<ReceiverSettings> {
    sim.configure_webhook_receiver(&name, settings.clone());
    Json(settings)
}

async fn clear(State(sim): State<Simulator>, Path(name): Path<String>) -> StatusCode {
    if let Some(r) = sim.inner.webhooks.lock().get_mut(&name) {
        r.deliveries.clear();
        r.taken.clear();
        r.rejected = 0;
        r.acks.clear();
    }
    StatusCode::NO_CONTENT
}

/// Whether `header` signs `timestamp.body` under `secret` (any `v1=`).
pub fn verify(secret: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut message = timestamp.as_bytes().to_vec();
    message.push(b'.');
    message.extend_from_slice(body);
    header.split(',').any(|part| {
        part.trim()
            .strip_prefix("v1=")
            .and_then(unhex)
            .is_some_and(|tag| hmac::verify(&key, &message, &tag).is_ok())
    })
}

/// `v1=<hex HMAC-SHA256(secret, timestamp.body)>`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut message = timestamp.to_string().into_bytes();
    message.push(b'.');
    message.extend_from_slice(body);
    let tag = hmac::sign(&key, &message);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("v1={hex}")
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

async fn receive(
    State(sim): State<Simulator>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |h: &str| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let timestamp = header("x-incasso-timestamp");
    let signature = header("x-incasso-signature");
    let now = chrono::Utc::now();
    // Checked as a receiver must: the signature over the raw body, then
    // the timestamp's age.
    let (settings, refusal) = {
        let mut all = sim.inner.webhooks.lock();
        let r = all.entry(name.clone()).or_default();
        let settings = r.settings.clone();
        let signed = settings
            .secret
            .as_deref()
            .is_some_and(|s| verify(s, &timestamp, &body, &signature));
        let fresh = timestamp
            .parse::<i64>()
            .is_ok_and(|t| (now.timestamp() - t).abs() <= TOLERANCE_SECONDS);
        let refusal = if !signed {
            Some("bad signature")
        } else if !fresh {
            Some("stale timestamp")
        } else {
            None
        };
        if refusal.is_some() {
            r.rejected += 1;
        }
        (settings, refusal)
    };
    if let Some(why) = refusal {
        return (StatusCode::UNAUTHORIZED, why).into_response();
    }
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let answered = {
        let mut all = sim.inner.webhooks.lock();
        let r = all.entry(name.clone()).or_default();
        let answered = if r.settings.fail_next > 0 {
            r.settings.fail_next -= 1;
            500
        } else if settings.ack_later {
            202
        } else {
            200
        };
        let event_id = parsed["eventId"].as_i64().unwrap_or_default();
        let duplicate = r.taken.contains(&event_id);
        if answered < 300 {
            r.taken.insert(event_id);
        }
        let seq = r.deliveries.len() as u64 + 1;
        r.deliveries.push(ReceivedWebhook {
            seq,
            event_id,
            delivery_id: parsed["deliveryId"].as_i64().unwrap_or_default(),
            kind: parsed["type"].as_str().unwrap_or_default().into(),
            iupd: parsed["iupd"].as_str().unwrap_or_default().into(),
            notice_number: parsed["noticeNumber"].as_str().map(str::to_string),
            answered,
            duplicate,
            received_at: now,
            body: parsed.clone(),
        });
        answered
    };
    if settings.slow_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(settings.slow_ms)).await;
    }
    if answered == 202
        && let (Some(secret), Some(delivery)) =
            (settings.secret.clone(), parsed["deliveryId"].as_i64())
    {
        let url = sim.ack_url(&settings);
        let delay = settings.ack_delay_ms;
        let sim = sim.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
            let ts = chrono::Utc::now().timestamp();
            let body = serde_json::to_vec(&serde_json::json!({
                "deliveryId": delivery,
                "timestamp": ts,
            }))
            .unwrap_or_default();
            let status = reqwest::Client::new()
                .post(&url)
                .header("Content-Type", "application/json")
                .header("X-Incasso-Signature", sign(&secret, ts, &body))
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            if let Some(r) = sim.inner.webhooks.lock().get_mut(&name) {
                r.acks.push(status);
            }
        });
    }
    let status = StatusCode::from_u16(answered).unwrap_or(StatusCode::OK);
    (status, "ok").into_response()
}
