//! Webhooks: an Ente's applications told when a position is paid,
//! cancelled or reported, from the outbox of position events.
//!
//! - **Endpoints** are registered by the Ente's administrator (an
//!   `ente_admin` key, the intermediary, or the Ente's administrator in the
//!   back office): an `https` URL (plain `http` only to this machine:
//!   `localhost`, `127.0.0.1`, `[::1]`), and a secret incasso generates and
//!   shows once; it is sealed at rest.
//! - **Fan-out** ([`fan_out`]): the store hands each new event to every
//!   endpoint of its Ente as a delivery, moving the webhooks' cursor in the
//!   same transaction. A paused endpoint's deliveries are queued all the
//!   same and sent once it is resumed ([`set_active`]): never lost.
//! - **The feed** ([`events`]): the Ente's events read by id, for an
//!   application catching up without (or besides) webhooks.
//! - **Delivery** ([`deliver_due`], run by [`run`]): a `POST` of the event
//!   as JSON with `X-Incasso-Event-Id`, `X-Incasso-Delivery-Id`,
//!   `X-Incasso-Timestamp` (Unix seconds) and `X-Incasso-Signature:
//!   v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>`. A 2xx answer
//!   delivers it, except 202, which says "received, I will confirm": the
//!   receiver then acknowledges through [`acknowledge`] (`POST
//!   /api/v1/webhooks/ack`), or the delivery is sent again after
//!   [`ACK_WAIT`]. Anything else (another status, no answer within
//!   [`REQUEST_TIMEOUT`], a refused connection) is tried again, each wait
//!   twice the last from a second up to an hour ([`retry_delay`]), for
//!   [`MAX_AGE`]; then the delivery is FAILED, and a person can send it
//!   again. At least once: a receiver deduplicates by the event id.
//! - **Order per position**: a delivery is not attempted while an older
//!   one of the same endpoint and position is on its way, so the first
//!   arrival of a position's events follows their order (a repeated
//!   delivery may arrive after a later event: the event id tells).
//! - **Across a crash**: events are written with their change, deliveries
//!   with the cursor, and a claim is a lease ([`LEASE`]) that lapses when
//!   the process holding it dies.
//!
//! The scheme is documented for receivers in `docs/WEBHOOKS.md`.

use crate::error::{AppError, At, Kind, Place};
use crate::{App, Caller, Ctx};
use chrono::{DateTime, SecondsFormat, Utc};
use incasso_store::KeyScope;
use incasso_store::webhooks::{
    DeliveryRecord, DueDelivery, EndpointRecord, NewEndpoint, Outcome as StoreOutcome,
};
use ring::hmac;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use std::time::Duration;

pub const EVENT_ID_HEADER: &str = "X-Incasso-Event-Id";
pub const DELIVERY_ID_HEADER: &str = "X-Incasso-Delivery-Id";
pub const TIMESTAMP_HEADER: &str = "X-Incasso-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Incasso-Signature";

/// A receiver that takes longer to answer is counted as not answering.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a claimed delivery is its worker's: longer than a request may
/// take, so that only a worker that died loses it.
pub const LEASE: Duration = Duration::from_secs(30);

/// How often the outbox is looked at.
pub const POLL_EVERY: Duration = Duration::from_millis(500);

/// After an answer 202, how long the acknowledgement may take before the
/// delivery is sent again.
pub const ACK_WAIT: Duration = Duration::from_secs(60);

/// A delivery is tried for this long, then given up (FAILED).
pub const MAX_AGE: chrono::Duration = chrono::Duration::days(3);

/// An acknowledgement's timestamp may be this far from now.
pub const ACK_WINDOW_SECONDS: i64 = 300;

/// Deliveries claimed and sent at once by one worker round.
const BATCH: u32 = 100;

/// The wait after the `attempts`th failure of delivery `id`: 1, 2, 4...
/// seconds, at most an hour, and up to a tenth more, different for each
/// delivery so that a receiver back from an outage is not hit by all of
/// them in the same second.
pub fn retry_delay(attempts: i64, id: i64) -> chrono::Duration {
    let base_ms = (1000i64 << attempts.clamp(1, 13).saturating_sub(1)).min(3_600_000);
    let spread = (id.wrapping_mul(2_654_435_761).rem_euclid(100)) * base_ms / 1000;
    chrono::Duration::milliseconds(base_ms + spread)
}

/// An endpoint, as its Ente sees it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub id: i64,
    pub url: String,
    pub description: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

impl From<EndpointRecord> for Endpoint {
    fn from(r: EndpointRecord) -> Self {
        Endpoint {
            id: r.id,
            url: r.url,
            description: r.description,
            active: r.active,
            created_at: r.created_at,
            created_by: r.created_by,
        }
    }
}

/// A newly registered endpoint and its secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub endpoint: Endpoint,
    pub secret: String,
}

/// Only the Ente's administrator manages its webhooks: an application's
/// key may not redirect the Ente's news elsewhere.
fn require_admin(ctx: &Ctx, ente: &str) -> Result<(), AppError> {
    if let Caller::Key(k) = &ctx.caller
        && k.scope == KeyScope::Ente
    {
        return Err(AppError::new(
            Kind::Forbidden,
            "FORBIDDEN_SCOPE",
            "solo la chiave di amministrazione dell'ente o dell'intermediario può gestire i webhook",
        ));
    }
    ctx.caller.require_ente(ente)
}

/// A URL incasso may POST to: `https`, or `http` to this machine only;
/// no user or password in it, no fragment.
pub fn check_url(url: &str) -> Result<String, AppError> {
    let bad = |why: &str| {
        AppError::invalid(
            "BAD_WEBHOOK_URL",
            format!("url: {why} (per esempio https://gestionale.example.it/incasso/eventi)"),
        )
    };
    let url = url.trim();
    if url.is_empty() || url.len() > 2000 {
        return Err(bad("indirizzo mancante o più lungo di 2000 caratteri"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|_| bad("non è un indirizzo valido"))?;
    let host = parsed.host_str().unwrap_or_default();
    let local = matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1");
    match parsed.scheme() {
        "https" => {}
        "http" if local => {}
        "http" => return Err(bad("serve https (http solo verso localhost o 127.0.0.1)")),
        _ => return Err(bad("serve un indirizzo https")),
    }
    if host.is_empty() {
        return Err(bad("manca l'host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("niente utente o password nell'indirizzo"));
    }
    if parsed.fragment().is_some() {
        return Err(bad("niente frammento (#) nell'indirizzo"));
    }
    Ok(parsed.to_string())
}

/// A new secret: `whsec_` and 64 hex digits (32 random bytes). The whole
/// text is the HMAC key.
pub fn generate_secret() -> Result<String, AppError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        AppError::internal(
            &Place::new("webhooks.secret", "", ""),
            &std::io::Error::other(e.to_string()),
        )
    })?;
    Ok(format!("whsec_{}", crate::keys::hex(&bytes)))
}

/// `v1=` and the hex HMAC-SHA256 of `timestamp.body` under `secret`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("v1={}", crate::keys::hex(ctx.sign().as_ref()))
}

/// Whether `header` (one or more `v1=<hex>`, comma separated) holds the
/// signature of `timestamp.body` under `secret`; compared in constant time.
pub fn verify(secret: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut message = timestamp.to_string().into_bytes();
    message.push(b'.');
    message.extend_from_slice(body);
    header.split(',').any(|part| {
        part.trim()
            .strip_prefix("v1=")
            .and_then(unhex)
            .is_some_and(|tag| hmac::verify(&key, &message, &tag).is_ok())
    })
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

/// Registers `url` for the Ente's events from now on.
pub async fn register(
    ctx: &Ctx,
    ente: &str,
    url: &str,
    description: &str,
) -> Result<Registered, AppError> {
    crate::audit::audited(ctx, Some(ente), "webhook.register", url, async {
        require_admin(ctx, ente)?;
        let url = check_url(url)?;
        let description = description.trim();
        if description.chars().count() > 200 {
            return Err(AppError::invalid(
                "BAD_DESCRIPTION",
                "description: al massimo 200 caratteri",
            ));
        }
        let secret = generate_secret()?;
        let place = Place::new("webhooks.register", ente, &url);
        ctx.store().get_ente(ente).await.at(place)?;
        let record = ctx
            .store()
            .create_webhook_endpoint(
                &NewEndpoint {
                    ente: ente.into(),
                    url: url.clone(),
                    description: description.into(),
                    secret: secret.clone(),
                    created_by: ctx.caller.actor(),
                },
                ctx.now(),
            )
            .await
            .map_err(|e| match e {
                incasso_store::StoreError::Conflict(detail) => {
                    AppError::conflict("WEBHOOK_URL_REGISTERED", detail)
                }
                e => crate::error::from_store(e, &place),
            })?;
        Ok(Registered {
            endpoint: record.into(),
            secret,
        })
    })
    .await
}

/// [`register`] under the caller's idempotency key, when it sends one
/// (the URL is the natural key already: without a key a second call is
/// refused as registered). A retry after a lost answer, with the same key
/// and `fingerprint`, answers the same endpoint and its secret again
/// (`true`: replayed) instead of a conflict; the same key for another
/// body is refused. Only the endpoint's id is kept with the key, never
/// the secret, which stays sealed with the endpoint.
pub async fn register_keyed(
    ctx: &Ctx,
    ente: &str,
    key: Option<&str>,
    fingerprint: &str,
    url: &str,
    description: &str,
) -> Result<(Registered, bool), AppError> {
    use crate::digitpos::{self as dp, Claimed};
    let Some(key) = key else {
        return Ok((register(ctx, ente, url, description).await?, false));
    };
    let key = dp::idempotency_key(Some(key))?;
    let ticket = match dp::claim(ctx, ente, &key, fingerprint).await? {
        Claimed::Run(t) => t,
        Claimed::Replay { body, .. } => {
            require_admin(ctx, ente)?;
            let id = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["endpointId"].as_i64())
                .unwrap_or_default();
            let place = Place::new("webhooks.register", ente, url);
            let gone = |e| match e {
                incasso_store::StoreError::NotFound(_) => AppError::conflict(
                    "WEBHOOK_DELETED",
                    "l'endpoint registrato con questa chiave di idempotenza è stato poi eliminato",
                ),
                e => crate::error::from_store(e, &place),
            };
            let record = ctx.store().webhook_endpoint(ente, id).await.map_err(gone)?;
            let secret = ctx
                .store()
                .webhook_endpoint_secret(ente, id)
                .await
                .map_err(gone)?;
            return Ok((
                Registered {
                    endpoint: record.into(),
                    secret,
                },
                true,
            ));
        }
    };
    match register(ctx, ente, url, description).await {
        Ok(r) => {
            let kept = serde_json::json!({ "endpointId": r.endpoint.id }).to_string();
            if let Err(e) = dp::complete(ctx, &ticket, 201, &kept).await {
                tracing::warn!(ente, error = %e, "idempotent registration not stored");
                dp::release(ctx, &ticket).await;
            }
            Ok((r, false))
        }
        Err(e) => {
            dp::release(ctx, &ticket).await;
            Err(e)
        }
    }
}

/// The Ente's endpoints.
pub async fn list(ctx: &Ctx, ente: &str) -> Result<Vec<Endpoint>, AppError> {
    require_admin(ctx, ente)?;
    Ok(ctx
        .store()
        .webhook_endpoints(ente)
        .await
        .at(Place::new("webhooks.list", ente, ""))?
        .into_iter()
        .map(Endpoint::from)
        .collect())
}

pub async fn get(ctx: &Ctx, ente: &str, id: i64) -> Result<Endpoint, AppError> {
    require_admin(ctx, ente)?;
    Ok(ctx
        .store()
        .webhook_endpoint(ente, id)
        .await
        .at(Place::new("webhooks.get", ente, &id.to_string()))?
        .into())
}

/// Resumes (`active`) or pauses an endpoint. Paused, it misses nothing:
/// the fan-out still queues its deliveries and the worker sends none of
/// them; resumed, they go out in order per position, then the new ones.
/// (The back office's enable/disable buttons call this.)
pub async fn set_active(
    ctx: &Ctx,
    ente: &str,
    id: i64,
    active: bool,
) -> Result<Endpoint, AppError> {
    let object = id.to_string();
    let action = if active {
        "webhook.enable"
    } else {
        "webhook.disable"
    };
    crate::audit::audited(ctx, Some(ente), action, &object, async {
        require_admin(ctx, ente)?;
        Ok(ctx
            .store()
            .set_webhook_endpoint_active(ente, id, active, ctx.now())
            .await
            .at(Place::new("webhooks.set_active", ente, &object))?
            .into())
    })
    .await
}

/// Removes an endpoint and its queue: what was waiting for it, a paused
/// endpoint's deliveries too, is dropped (the events stay readable
/// through [`events`]).
pub async fn remove(ctx: &Ctx, ente: &str, id: i64) -> Result<(), AppError> {
    let object = id.to_string();
    crate::audit::audited(ctx, Some(ente), "webhook.delete", &object, async {
        require_admin(ctx, ente)?;
        ctx.store()
            .delete_webhook_endpoint(ente, id)
            .await
            .at(Place::new("webhooks.remove", ente, &object))
    })
    .await
}

/// The Ente's events after `after` (PAID, CANCELLED, REPORTED: what
/// webhooks deliver), oldest first, at most `limit` (1 to 1000): the
/// outbox itself, from which an application can always catch up, with
/// or without webhooks. Any key of the Ente reads it.
pub async fn events(
    ctx: &Ctx,
    ente: &str,
    after: i64,
    limit: u32,
) -> Result<Vec<incasso_store::events::PositionEvent>, AppError> {
    ctx.caller.require(
        ente,
        incasso_core::access::Area::Positions,
        incasso_core::access::Access::Read,
    )?;
    if after < 0 {
        return Err(AppError::invalid(
            "BAD_AFTER",
            "after: l'identificativo dell'ultimo evento letto, 0 o più",
        ));
    }
    if !(1..=1000).contains(&limit) {
        return Err(AppError::invalid("BAD_LIMIT", "limit: da 1 a 1000"));
    }
    ctx.store()
        .ente_events(ente, after, limit)
        .await
        .at(Place::new("webhooks.events", ente, &after.to_string()))
}

/// An endpoint's deliveries, newest first.
pub async fn deliveries(
    ctx: &Ctx,
    ente: &str,
    id: i64,
    limit: u32,
) -> Result<Vec<DeliveryRecord>, AppError> {
    require_admin(ctx, ente)?;
    let place = Place::new("webhooks.deliveries", ente, "");
    ctx.store().webhook_endpoint(ente, id).await.at(place)?;
    ctx.store()
        .webhook_deliveries(ente, id, limit)
        .await
        .at(place)
}

/// Sends a FAILED delivery again, now.
pub async fn retry(ctx: &Ctx, ente: &str, delivery_id: i64) -> Result<(), AppError> {
    let object = delivery_id.to_string();
    crate::audit::audited(ctx, Some(ente), "webhook.retry", &object, async {
        require_admin(ctx, ente)?;
        let done = ctx
            .store()
            .retry_delivery(ente, delivery_id, ctx.now())
            .await
            .at(Place::new("webhooks.retry", ente, &object))?;
        if done {
            Ok(())
        } else {
            Err(AppError::conflict(
                "DELIVERY_NOT_FAILED",
                "si può ritentare solo una consegna fallita di questo ente",
            ))
        }
    })
    .await
}

/// The JSON a receiver gets: the event, and the delivery to acknowledge.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Body {
    pub event_id: i64,
    pub delivery_id: i64,
    /// PAID, CANCELLED or REPORTED.
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: String,
    pub organization_fiscal_code: String,
    pub iupd: String,
    pub notice_number: Option<String>,
    pub iuv: Option<String>,
    pub data: serde_json::Value,
}

/// The body of a delivery: the same bytes at every attempt.
pub fn body(d: &DueDelivery) -> Vec<u8> {
    let e = &d.event;
    serde_json::to_vec(&Body {
        event_id: e.id,
        delivery_id: d.id,
        kind: e.kind.clone(),
        created_at: e.created_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        organization_fiscal_code: e.ente.clone(),
        iupd: e.iupd.clone(),
        notice_number: e.notice_number.clone(),
        iuv: e.iuv.clone(),
        data: e.payload.clone(),
    })
    .unwrap_or_default()
}

/// Hands new events on to the endpoints; answers how many events.
pub async fn fan_out(app: &App) -> Result<usize, AppError> {
    let mut total = 0;
    loop {
        let n = app
            .store
            .fan_out_webhooks(app.clock.now(), 500)
            .await
            .at(Place::new("webhooks.fan_out", "", ""))?;
        total += n;
        if n < 500 {
            return Ok(total);
        }
    }
}

/// What one round of sending did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Round {
    pub delivered: usize,
    /// Answered 202: delivered once acknowledged.
    pub awaiting_ack: usize,
    pub retried: usize,
    pub failed: usize,
}

impl Round {
    pub fn total(&self) -> usize {
        self.delivered + self.awaiting_ack + self.retried + self.failed
    }
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        incasso_pagopa::connector::install_crypto_provider();
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(REQUEST_TIMEOUT)
            // A receiver answers where it is registered: a redirect could
            // send the Ente's news elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("incasso-webhooks/1")
            .build()
            .unwrap_or_default()
    })
}

enum Outcome {
    Delivered(u16, String),
    AwaitingAck(String),
    Failed(Option<u16>, String),
}

async fn send(d: &DueDelivery, now: DateTime<Utc>) -> Outcome {
    let body = body(d);
    let timestamp = now.timestamp();
    let signature = sign(&d.secret, timestamp, &body);
    let sent = client()
        .post(&d.url)
        .header("Content-Type", "application/json")
        .header(EVENT_ID_HEADER, d.event.id.to_string())
        .header(DELIVERY_ID_HEADER, d.id.to_string())
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await;
    match sent {
        Err(e) => {
            let why = if e.is_timeout() {
                format!("nessuna risposta entro {} s", REQUEST_TIMEOUT.as_secs())
            } else if e.is_connect() {
                "connessione non riuscita".to_string()
            } else {
                format!("richiesta non riuscita: {e}")
            };
            Outcome::Failed(None, why)
        }
        Ok(resp) => {
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            let answer: String = text.chars().take(300).collect();
            match status {
                202 => Outcome::AwaitingAck(answer),
                200..=299 => Outcome::Delivered(status, answer),
                _ => Outcome::Failed(Some(status), answer),
            }
        }
    }
}

/// Sends the deliveries due at `now`: each claimed here is sent by no
/// other worker meanwhile. Sends them side by side, and records the
/// answers that are in with one store call each time one comes (under
/// load several at once: one turn of SQLite's writer for them all).
pub async fn deliver_due(app: &App, now: DateTime<Utc>) -> Result<Round, AppError> {
    let lease = chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::seconds(30));
    let due = app
        .store
        .claim_due_deliveries(now, lease, BATCH)
        .await
        .at(Place::new("webhooks.deliver_due", "", ""))?;
    let mut round = Round::default();
    if due.is_empty() {
        return Ok(round);
    }
    let mut sending = tokio::task::JoinSet::new();
    for d in due {
        sending.spawn(async move {
            let outcome = send(&d, now).await;
            (d, outcome)
        });
    }
    while let Some(first) = sending.join_next().await {
        let mut answered = vec![first];
        while let Some(more) = sending.try_join_next() {
            answered.push(more);
        }
        let mut batch = Vec::with_capacity(answered.len());
        for done in answered {
            match done {
                Ok((d, outcome)) => batch.push(decide(app, d, outcome, now)),
                Err(e) => tracing::error!(error = %e, "webhook delivery task failed"),
            }
        }
        let rows: Vec<_> = batch
            .iter()
            .map(|(d, o, answer, _)| (d.id, d.attempt, o.clone(), answer.clone()))
            .collect();
        app.store
            .record_delivery_outcomes(&rows)
            .await
            .at(Place::new("webhooks.outcome", "", ""))?;
        for (d, _, text, recorded) in batch {
            match recorded {
                Recorded::Delivered => {
                    tracing::debug!(delivery = d.id, event = d.event.id, "webhook delivered");
                    round.delivered += 1;
                }
                Recorded::AwaitingAck => round.awaiting_ack += 1,
                Recorded::Retried => {
                    tracing::info!(
                        ente = %d.event.ente, delivery = d.id, attempts = d.attempt,
                        error = %text, "webhook not delivered: retrying later"
                    );
                    round.retried += 1;
                }
                Recorded::Failed => {
                    tracing::warn!(
                        ente = %d.event.ente, delivery = d.id, attempts = d.attempt,
                        error = %text, "webhook given up"
                    );
                    round.failed += 1;
                }
            }
        }
    }
    Ok(round)
}

enum Recorded {
    Delivered,
    AwaitingAck,
    Retried,
    Failed,
}

/// What an answer means for its delivery: the store's outcome, the text
/// kept with it, and how the round counts it.
fn decide(
    app: &App,
    d: DueDelivery,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> (DueDelivery, StoreOutcome, String, Recorded) {
    match outcome {
        Outcome::Delivered(status, answer) => {
            let o = StoreOutcome::Delivered {
                status: i64::from(status),
                at: app.clock.now(),
            };
            (d, o, answer, Recorded::Delivered)
        }
        Outcome::AwaitingAck(answer) => {
            let wait = retry_delay(d.attempt, d.id)
                .max(chrono::Duration::from_std(ACK_WAIT).unwrap_or_default());
            let answer = format!("202: in attesa di conferma. {answer}");
            let o = StoreOutcome::NotDelivered {
                status: Some(202),
                retry_at: Some(now + wait),
            };
            (d, o, answer, Recorded::AwaitingAck)
        }
        Outcome::Failed(status, answer) => {
            let give_up = now - d.event.created_at > MAX_AGE;
            let retry_at = (!give_up).then(|| now + retry_delay(d.attempt, d.id));
            let text = match status {
                Some(s) => format!("HTTP {s}: {answer}"),
                None => answer,
            };
            let o = StoreOutcome::NotDelivered {
                status: status.map(i64::from),
                retry_at,
            };
            let counted = if give_up {
                Recorded::Failed
            } else {
                Recorded::Retried
            };
            (d, o, text, counted)
        }
    }
}

/// Wakes the delivery worker of this process: an event was just written
/// (a receipt's PAID), so it need not wait for its next look. Events
/// written by other processes are found by the look every [`POLL_EVERY`].
pub fn wake() {
    WRITTEN.notify_one();
}

static WRITTEN: std::sync::LazyLock<tokio::sync::Notify> =
    std::sync::LazyLock::new(tokio::sync::Notify::new);

/// Fans out and sends until the process ends.
pub async fn run(app: App) {
    loop {
        let mut busy = false;
        let mut full = false;
        match fan_out(&app).await {
            Ok(n) => busy |= n > 0,
            Err(e) => tracing::warn!(error = %e, "webhook fan-out failed; retrying later"),
        }
        match deliver_due(&app, app.clock.now()).await {
            Ok(r) => {
                busy |= r.total() > 0;
                full = r.total() >= BATCH as usize;
            }
            Err(e) => tracing::warn!(error = %e, "webhook round failed; retrying later"),
        }
        if full {
            continue;
        }
        if !busy {
            tokio::select! {
                _ = tokio::time::sleep(POLL_EVERY) => {}
                _ = WRITTEN.notified() => {}
            }
        }
        // Receipts come in bursts under load, each waking this worker:
        // a round per receipt was a fan-out transaction (ten statements)
        // per payment, a third of the Node cycle's statements on
        // PostgreSQL (`bench node`). Letting a burst gather into one round
        // delays a webhook by as much.
        tokio::time::sleep(GATHER).await;
    }
}

/// How long the worker lets events gather before a round: at 10 ms it
/// still made a hundred rounds a second under the Node's load.
const GATHER: std::time::Duration = std::time::Duration::from_millis(50);

/// A webhook receiver `serve --demo` registered, as demo.json tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoReceiver {
    /// The simulator's receiver (`/simulator/webhooks/{name}`).
    pub name: String,
    pub fiscal_code: String,
    pub url: String,
    pub endpoint_id: i64,
    /// The endpoint's secret, for the simulator to check signatures with.
    pub secret: String,
}

/// Registers the simulator's receiver `demo` for `ente`'s events, once:
/// a later start keeps the endpoint (and its deliveries) and the secret
/// the last demo.json told; without that secret it registers it again.
/// A failure is logged, never fatal to the demo.
pub async fn seed_demo(
    ctx: &Ctx,
    ente: &str,
    simulator_url: &str,
    previous: &[DemoReceiver],
) -> Vec<DemoReceiver> {
    let mut url = format!(
        "{}/simulator/webhooks/demo",
        simulator_url.trim_end_matches('/')
    );
    // A demo shown to colleagues (`--public-url http://my-host:8080`) has
    // its simulator on a host plain http may not be sent to; it runs on
    // this machine, so incasso reaches it on the loopback (both listen on
    // every address then).
    if check_url(&url).is_err()
        && let Ok(mut local) = reqwest::Url::parse(&url)
        && local.scheme() == "http"
        && local.set_host(Some("127.0.0.1")).is_ok()
    {
        url = local.to_string();
    }
    let outcome: Result<DemoReceiver, AppError> = async {
        let url = check_url(&url)?;
        let endpoints = list(ctx, ente).await?;
        // The simulator listens on another port at each start: the demo's
        // endpoints of earlier starts lead nowhere now.
        for old in &endpoints {
            if old.url != url
                && old.url.ends_with("/simulator/webhooks/demo")
                && old.created_by == ctx.caller.actor()
            {
                remove(ctx, ente, old.id).await?;
            }
        }
        let existing = endpoints.into_iter().find(|e| e.url == url);
        if let Some(e) = &existing
            && let Some(p) = previous
                .iter()
                .find(|p| p.endpoint_id == e.id && p.fiscal_code == ente && p.url == url)
        {
            return Ok(p.clone());
        }
        if let Some(e) = existing {
            remove(ctx, ente, e.id).await?;
        }
        let r = register(ctx, ente, &url, "ricevitore del simulatore (demo)").await?;
        Ok(DemoReceiver {
            name: "demo".into(),
            fiscal_code: ente.into(),
            url,
            endpoint_id: r.endpoint.id,
            secret: r.secret,
        })
    }
    .await;
    match outcome {
        Ok(r) => vec![r],
        Err(e) => {
            tracing::warn!(ente, error = %e, "demo webhook not registered");
            Vec::new()
        }
    }
}

/// An acknowledgement's body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Ack {
    pub delivery_id: i64,
    /// Unix seconds, as signed.
    pub timestamp: i64,
}

/// A receiver acknowledges a delivery it answered 202: `body` is the JSON
/// [`Ack`], `signature` the `X-Incasso-Signature` header over the body's
/// timestamp and the body, under the endpoint's secret. Unsigned or badly
/// signed: 401; a timestamp more than five minutes away, or a delivery
/// acknowledged before: 409. Nobody else is asked: the signature is the
/// credential.
pub async fn acknowledge(app: &App, body: &[u8], signature: Option<&str>) -> Result<i64, AppError> {
    let ack: Ack = serde_json::from_slice(body).map_err(|_| {
        AppError::invalid(
            "BAD_ACK",
            "il corpo deve essere JSON: {\"deliveryId\": numero, \"timestamp\": secondi Unix}",
        )
    })?;
    let Some(signature) = signature.filter(|s| !s.trim().is_empty()) else {
        return Err(AppError::new(
            Kind::Unauthenticated,
            "WEBHOOK_SIGNATURE_MISSING",
            "manca la firma: header X-Incasso-Signature: v1=<HMAC-SHA256 esadecimale di timestamp.corpo>",
        ));
    };
    let object = ack.delivery_id.to_string();
    let place = Place::new("webhooks.acknowledge", "", &object);
    let target = app.store.delivery_to_ack(ack.delivery_id).await.at(place)?;
    let bad_signature = || {
        AppError::new(
            Kind::Unauthenticated,
            "WEBHOOK_SIGNATURE_INVALID",
            "firma non valida: HMAC-SHA256 con il segreto dell'endpoint di timestamp, un punto e il corpo",
        )
    };
    // An unknown delivery answers as a bad signature: nothing can be
    // learnt by guessing ids.
    let Some(target) = target else {
        return Err(bad_signature());
    };
    if !verify(&target.secret, ack.timestamp, body, signature) {
        return Err(bad_signature());
    }
    let now = app.clock.now();
    if (now.timestamp() - ack.timestamp).abs() > ACK_WINDOW_SECONDS {
        return Err(AppError::conflict(
            "WEBHOOK_ACK_STALE",
            "conferma scaduta: il timestamp dista più di 5 minuti da adesso",
        ));
    }
    if target.acked
        || !app
            .store
            .acknowledge_delivery(target.id, now)
            .await
            .at(Place::new("webhooks.acknowledge", &target.ente, &object))?
    {
        return Err(AppError::conflict(
            "WEBHOOK_ACK_REPLAYED",
            "conferma già ricevuta per questa consegna",
        ));
    }
    tracing::debug!(ente = %target.ente, delivery = target.id, "webhook acknowledged");
    Ok(target.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_longer_each_time_up_to_an_hour() {
        let waits: Vec<i64> = (1..=14)
            .map(|n| retry_delay(n, 0).num_milliseconds())
            .collect();
        assert_eq!(
            waits,
            vec![
                1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 512000, 1024000,
                2048000, 3600000, 3600000
            ]
        );
        for id in 0..200 {
            let d = retry_delay(3, id).num_milliseconds();
            assert!((4000..4400).contains(&d), "{d}");
        }
    }

    #[test]
    fn signatures_verify_with_their_secret_and_timestamp_only() {
        let body = br#"{"eventId":1}"#;
        let s = sign("whsec_a", 1_700_000_000, body);
        assert!(s.starts_with("v1=") && s.len() == 3 + 64);
        assert!(verify("whsec_a", 1_700_000_000, body, &s));
        assert!(verify(
            "whsec_a",
            1_700_000_000,
            body,
            &format!("v1=00, {s}")
        ));
        assert!(!verify("whsec_b", 1_700_000_000, body, &s));
        assert!(!verify("whsec_a", 1_700_000_001, body, &s));
        assert!(!verify("whsec_a", 1_700_000_000, br#"{"eventId":2}"#, &s));
        assert!(!verify("whsec_a", 1_700_000_000, body, "v1=zz"));
        // The scheme as docs/WEBHOOKS.md states it, checked by hand.
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"whsec_a");
        let tag = hmac::sign(&key, b"1700000000.{\"eventId\":1}");
        assert_eq!(s, format!("v1={}", crate::keys::hex(tag.as_ref())));
    }

    #[test]
    fn urls_are_https_or_local() {
        assert!(check_url("https://gestionale.example.it/eventi").is_ok());
        assert!(check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(check_url("http://localhost/hook").is_ok());
        for bad in [
            "",
            "http://gestionale.example.it/eventi",
            "ftp://example.it/x",
            "https://user:pw@example.it/x",
            "https://example.it/x#y",
            "not a url",
        ] {
            let e = check_url(bad).unwrap_err();
            assert_eq!(e.code, "BAD_WEBHOOK_URL", "{bad}");
        }
    }

    #[test]
    fn secrets_are_random() {
        let a = generate_secret().unwrap();
        assert!(a.starts_with("whsec_") && a.len() == 6 + 64);
        assert_ne!(a, generate_secret().unwrap());
    }
}
