//! App IO's services API (`io-functions-services`), simulated, under
//! `/io/api/v1` (so incasso's IO base URL is `{simulator}/io/api/v1`).
//!
//! It checks what IO checks, from the spec (`shared/spec/io/`), on its own:
//! it shares no code with incasso's client, so a client that drifts from
//! the spec is caught here.
//!
//! - The `Ocp-Apim-Subscription-Key` must be one of the configured IO
//!   services' keys, else 401 as IO's API Management answers.
//! - Profiles (`POST /profiles`, `GET /profiles/{fiscal_code}`): a citizen
//!   of the configured map is on IO; anyone else is 404, unless
//!   `known_one_in` says otherwise (benchmarks). `sender_allowed` is
//!   answered per service, as IO does: false to a service the citizen
//!   blocked in the app ([`IoState::block`]), and to every service when
//!   the citizen's `sender_allowed` is false (all messages off).
//! - Messages (`POST /messages`, `POST /messages/{fiscal_code}`,
//!   `GET /messages/{fiscal_code}/{id}`): a bad `NewMessage` is 400 with a
//!   `ProblemJson`; a good one is 201 with its id and stored; a missing
//!   `payment_data.payee` gets the service's organization fiscal code, as
//!   IO does. A message to someone not on IO or who opted out is taken
//!   (201) and then REJECTED, as IO's asynchronous processing does.
//! - A rate limit per key (`rate_per_second`, a bucket of one second's
//!   worth): over it, 429 with `Retry-After`.
//!
//! Control (not IO's):
//! - `GET|PUT /simulator/io/settings`: services, citizens, rate.
//! - `PUT /simulator/io/services`: adds or replaces one service.
//! - `PUT /simulator/io/citizens/{fiscal_code}`: `{"sender_allowed":..,
//!   "preferred_languages":[..]}`; `DELETE` makes them unknown.
//! - `GET|PUT /simulator/io/citizens/{fiscal_code}/blocked`: the API keys
//!   of the services the citizen blocked (`["key", ...]`). A new
//!   configuration (`PUT /simulator/io/settings`) starts with none.
//! - `GET|PUT /simulator/io/faults`: `{"status":503,"count":5}`: the next
//!   5 IO calls answer 503 (optionally `retry_after` seconds for a 429
//!   spell, `delay_ms` before answering: past the client's timeout it is a
//!   timeout).
//! - `GET /simulator/io/messages[?fiscal_code=]`: what was sent, oldest
//!   first; `DELETE` forgets it. `GET /simulator/io/stats`: counters.

use crate::Simulator;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The demo's IO services: one per demo Ente, its key and organization.
/// `serve --demo` gives these keys to the demo's catalogue services.
pub const DEMO_SERVICES: [(&str, &str, &str); 2] = [
    (
        "io-demo-key-80000130585",
        "80000130585",
        "Comune di Roma Demo - Tributi",
    ),
    (
        "io-demo-key-97000000022",
        "97000000022",
        "Comune di Milano Demo - Tributi",
    ),
];

/// One IO service, as IO's back office makes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoService {
    /// Its `Ocp-Apim-Subscription-Key`.
    pub api_key: String,
    /// The Ente's fiscal code (11 digits): the payee IO puts when a
    /// message's `payment_data` has none.
    pub organization_fiscal_code: String,
    #[serde(default)]
    pub name: String,
    /// This service's own rate, else the settings' `rate_per_second`.
    #[serde(default)]
    pub rate_per_second: Option<u32>,
}

/// A citizen on IO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoCitizen {
    /// False: the citizen turned off every service's messages. One
    /// service's are blocked with [`IoState::block`].
    pub sender_allowed: bool,
    #[serde(default)]
    pub preferred_languages: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IoSettings {
    pub services: Vec<IoService>,
    /// By fiscal code; absent: not on IO (404).
    pub citizens: BTreeMap<String, IoCitizen>,
    /// Calls per second per key (profiles and messages alike); 0: no limit.
    pub rate_per_second: u32,
    /// When not 0, a fiscal code not in `citizens` is on IO (allowed,
    /// Italian) if its hash is a multiple of this: 1 puts everyone on IO.
    pub known_one_in: u32,
    /// Messages kept for `GET /simulator/io/messages`; older ones are
    /// dropped (still counted), so a long benchmark does not fill memory.
    pub keep_messages: usize,
}

impl Default for IoSettings {
    /// The demo's IO: its two services, 100 calls a second each, and its
    /// citizens ([`demo_citizens`]).
    fn default() -> IoSettings {
        IoSettings {
            services: DEMO_SERVICES
                .iter()
                .map(|(key, fc, name)| IoService {
                    api_key: (*key).into(),
                    organization_fiscal_code: (*fc).into(),
                    name: (*name).into(),
                    rate_per_second: None,
                })
                .collect(),
            citizens: demo_citizens(),
            rate_per_second: 100,
            known_one_in: 0,
            keep_messages: 20_000,
        }
    }
}

/// The demo's people on IO (`crates/app/src/demo.rs`):
/// - Mario Rossi (`RSSMRA80A01H501U`), the citizen of the SPID/CIE test
///   identities, who owes positions at both Enti: on IO, Italian.
/// - The first sample debtor of the first Ente (`personal_fiscal_code(0)`):
///   on IO, German first (for the German templates).
/// - The second sample debtor (`personal_fiscal_code(1)`): on IO, but
///   opted out of the demo services' messages ([`demo_blocks`]: each
///   blocked in the app; another service could still write).
/// - Everyone else: not on IO (404), so e-mail is their channel.
pub fn demo_citizens() -> BTreeMap<String, IoCitizen> {
    let mut m = BTreeMap::new();
    m.insert(
        "RSSMRA80A01H501U".to_string(),
        IoCitizen {
            sender_allowed: true,
            preferred_languages: vec!["it_IT".into()],
        },
    );
    m.insert(
        incasso_core::sample::personal_fiscal_code(0),
        IoCitizen {
            sender_allowed: true,
            preferred_languages: vec!["de_DE".into(), "it_IT".into()],
        },
    );
    m.insert(
        incasso_core::sample::personal_fiscal_code(1),
        IoCitizen {
            sender_allowed: true,
            preferred_languages: vec!["it_IT".into()],
        },
    );
    m
}

/// The demo's per-service opt-outs: the second sample debtor blocked both
/// demo services.
pub fn demo_blocks() -> HashMap<String, HashSet<String>> {
    let mut m = HashMap::new();
    m.insert(
        incasso_core::sample::personal_fiscal_code(1),
        DEMO_SERVICES
            .iter()
            .map(|(k, _, _)| k.to_string())
            .collect(),
    );
    m
}

/// A fault spell (`PUT /simulator/io/faults`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IoFaults {
    /// The status the next `count` calls answer (e.g. 503, 500, 429).
    pub status: u16,
    pub count: u32,
    /// `Retry-After` seconds on a 429 spell.
    pub retry_after: Option<u64>,
    /// Wait this long before answering each call of the spell.
    pub delay_ms: u64,
}

/// A message IO took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IoMessage {
    pub id: String,
    pub fiscal_code: String,
    /// The sending service's organization and name.
    pub organization_fiscal_code: String,
    pub service_name: String,
    /// As given, or IO's default (3600).
    pub time_to_live: u64,
    /// `MessageContent` as IO stores it: the payee filled in.
    pub content: Value,
    /// `PROCESSED`, or `REJECTED` (not on IO, or opted out).
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// Counters since the start (or the last `DELETE /simulator/io/messages`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoStats {
    pub profiles: u64,
    pub messages: u64,
    pub rejected_messages: u64,
    /// Messages with exactly the content of one taken before for the same
    /// citizen: the same message sent twice.
    pub duplicates: u64,
    pub bad_requests: u64,
    pub unauthorized: u64,
    pub rate_limited: u64,
    pub faults: u64,
}

/// The IO part of the simulator's state.
pub struct IoState {
    settings: Mutex<IoSettings>,
    faults: Mutex<IoFaults>,
    buckets: Mutex<HashMap<String, Bucket>>,
    messages: Mutex<Messages>,
    /// By fiscal code, the keys of the services the citizen blocked.
    blocks: Mutex<HashMap<String, HashSet<String>>>,
}

#[derive(Default)]
struct Messages {
    kept: VecDeque<IoMessage>,
    /// Hashes of (citizen, content) taken, to count duplicates.
    seen: HashSet<u64>,
    stats: IoStats,
    next: u64,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Default for IoState {
    fn default() -> IoState {
        IoState {
            settings: Mutex::new(IoSettings::default()),
            faults: Mutex::new(IoFaults::default()),
            buckets: Mutex::new(HashMap::new()),
            messages: Mutex::new(Messages::default()),
            blocks: Mutex::new(demo_blocks()),
        }
    }
}

impl IoState {
    pub fn settings(&self) -> IoSettings {
        self.settings.lock().expect("io lock").clone()
    }

    pub fn configure(&self, settings: IoSettings) {
        *self.settings.lock().expect("io lock") = settings;
        self.buckets.lock().expect("io lock").clear();
        // A new world: its citizens have blocked nobody yet.
        self.blocks.lock().expect("io lock").clear();
    }

    /// The citizen blocks (`true`) or unblocks the service with API key
    /// `service_key`, as IO's app lets a citizen do per service.
    pub fn block(&self, fiscal_code: &str, service_key: &str, blocked: bool) {
        let mut b = self.blocks.lock().expect("io lock");
        let set = b.entry(fiscal_code.to_string()).or_default();
        if blocked {
            set.insert(service_key.to_string());
        } else {
            set.remove(service_key);
        }
    }

    /// The keys of the services the citizen blocked, sorted.
    pub fn blocked(&self, fiscal_code: &str) -> Vec<String> {
        let b = self.blocks.lock().expect("io lock");
        let mut out: Vec<String> = b
            .get(fiscal_code)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Whether the service with `service_key` may write to the citizen.
    fn allows(&self, citizen: &IoCitizen, fiscal_code: &str, service_key: &str) -> bool {
        citizen.sender_allowed
            && !self
                .blocks
                .lock()
                .expect("io lock")
                .get(fiscal_code)
                .is_some_and(|s| s.contains(service_key))
    }

    /// Adds a service, or replaces the one with the same key.
    pub fn add_service(&self, service: IoService) {
        let mut s = self.settings.lock().expect("io lock");
        s.services.retain(|x| x.api_key != service.api_key);
        s.services.push(service);
    }

    /// Puts a citizen on IO (`Some`) or takes them off (`None`).
    pub fn set_citizen(&self, fiscal_code: &str, citizen: Option<IoCitizen>) {
        let mut s = self.settings.lock().expect("io lock");
        match citizen {
            Some(c) => s.citizens.insert(fiscal_code.to_string(), c),
            None => s.citizens.remove(fiscal_code),
        };
    }

    pub fn set_faults(&self, faults: IoFaults) {
        *self.faults.lock().expect("io lock") = faults;
    }

    pub fn faults(&self) -> IoFaults {
        self.faults.lock().expect("io lock").clone()
    }

    /// The messages kept, oldest first, maybe of one citizen.
    pub fn messages(&self, fiscal_code: Option<&str>) -> Vec<IoMessage> {
        let m = self.messages.lock().expect("io lock");
        m.kept
            .iter()
            .filter(|x| fiscal_code.is_none_or(|fc| x.fiscal_code == fc))
            .cloned()
            .collect()
    }

    pub fn stats(&self) -> IoStats {
        self.messages.lock().expect("io lock").stats.clone()
    }

    pub fn clear_messages(&self) {
        *self.messages.lock().expect("io lock") = Messages::default();
    }

    fn citizen(&self, settings: &IoSettings, fiscal_code: &str) -> Option<IoCitizen> {
        if let Some(c) = settings.citizens.get(fiscal_code) {
            return Some(c.clone());
        }
        (settings.known_one_in > 0
            && fnv(fiscal_code.as_bytes()).is_multiple_of(settings.known_one_in as u64))
        .then(|| IoCitizen {
            sender_allowed: true,
            preferred_languages: vec!["it_IT".into()],
        })
    }

    /// The checks every IO call goes through, in IO's order: the platform
    /// (a fault spell), the key (API Management), the key's rate.
    async fn gate(&self, headers: &HeaderMap) -> Result<IoService, Response> {
        let spell = {
            let mut f = self.faults.lock().expect("io lock");
            if f.count > 0 && f.status >= 100 {
                f.count -= 1;
                Some(f.clone())
            } else {
                None
            }
        };
        if let Some(f) = spell {
            self.count(|s| s.faults += 1);
            if f.delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(f.delay_ms)).await;
            }
            let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let mut r = problem(status, "Simulated fault", "simulated fault spell");
            if status == StatusCode::TOO_MANY_REQUESTS {
                let secs = f.retry_after.unwrap_or(1);
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            return Err(r);
        }
        let key = headers
            .get("ocp-apim-subscription-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let (service, rate) = {
            let s = self.settings.lock().expect("io lock");
            let Some(service) = s
                .services
                .iter()
                .find(|x| !key.is_empty() && x.api_key == key)
            else {
                drop(s);
                self.count(|s| s.unauthorized += 1);
                // API Management's own answer, not a ProblemJson.
                return Err((
                    StatusCode::UNAUTHORIZED,
                    Json(json!({
                        "statusCode": 401,
                        "message": "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."
                    })),
                )
                    .into_response());
            };
            (
                service.clone(),
                service.rate_per_second.unwrap_or(s.rate_per_second),
            )
        };
        if rate > 0 {
            let wait = {
                let mut buckets = self.buckets.lock().expect("io lock");
                let now = Instant::now();
                let b = buckets.entry(service.api_key.clone()).or_insert(Bucket {
                    tokens: rate as f64,
                    at: now,
                });
                b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate as f64)
                    .min(rate as f64);
                b.at = now;
                if b.tokens >= 1.0 {
                    b.tokens -= 1.0;
                    None
                } else {
                    Some(((1.0 - b.tokens) / rate as f64).ceil().max(1.0) as u64)
                }
            };
            if let Some(secs) = wait {
                self.count(|s| s.rate_limited += 1);
                let mut r = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(json!({
                        "statusCode": 429,
                        "message": format!("Rate limit is exceeded. Try again in {secs} seconds.")
                    })),
                )
                    .into_response();
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                return Err(r);
            }
        }
        Ok(service)
    }

    fn count(&self, f: impl FnOnce(&mut IoStats)) {
        f(&mut self.messages.lock().expect("io lock").stats);
    }
}

impl Simulator {
    /// The simulated App IO.
    pub fn io(&self) -> &IoState {
        &self.inner.io
    }
}

pub fn routes() -> Router<Simulator> {
    Router::new()
        .route("/io/api/v1/profiles", post(profile_by_post))
        .route("/io/api/v1/profiles/{fiscal_code}", get(profile_by_path))
        .route("/io/api/v1/messages", post(submit_in_body))
        .route("/io/api/v1/messages/{fiscal_code}", post(submit_in_path))
        .route("/io/api/v1/messages/{fiscal_code}/{id}", get(get_message))
        .route(
            "/simulator/io/settings",
            get(control_settings).put(control_configure),
        )
        .route("/simulator/io/services", put(control_add_service))
        .route(
            "/simulator/io/citizens/{fiscal_code}",
            put(control_put_citizen).delete(control_delete_citizen),
        )
        .route(
            "/simulator/io/citizens/{fiscal_code}/blocked",
            get(control_blocked).put(control_put_blocked),
        )
        .route(
            "/simulator/io/faults",
            get(control_faults).put(control_set_faults),
        )
        .route(
            "/simulator/io/messages",
            get(control_messages).delete(control_clear),
        )
        .route("/simulator/io/stats", get(control_stats))
}

/// A `ProblemJson` answer, as IO's functions give.
fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        json!({
            "type": "about:blank",
            "title": title,
            "status": status.as_u16(),
            "detail": detail,
        })
        .to_string(),
    )
        .into_response()
}

/// The `FiscalCode` pattern of the spec's parameter:
/// `[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]`.
fn is_fiscal_code(s: &str) -> bool {
    let b = s.as_bytes();
    let l = |c: &u8| c.is_ascii_uppercase();
    let d = |c: &u8| b"0123456789LMNPQRSTUV".contains(c);
    b.len() == 16
        && b[..6].iter().all(l)
        && b[6..8].iter().all(d)
        && b"ABCDEHLMPRST".contains(&b[8])
        && b[9..11].iter().all(d)
        && l(&b[11])
        && b[12..15].iter().all(d)
        && l(&b[15])
}

fn profile_answer(sim: &Simulator, service: &IoService, fiscal_code: &str) -> Response {
    sim.io().count(|s| s.profiles += 1);
    if !is_fiscal_code(fiscal_code) {
        return problem(
            StatusCode::BAD_REQUEST,
            "Invalid FiscalCode",
            &format!("value [{fiscal_code}] at [root.fiscal_code] is not a valid FiscalCode"),
        );
    }
    let settings = sim.io().settings();
    match sim.io().citizen(&settings, fiscal_code) {
        None => problem(
            StatusCode::NOT_FOUND,
            "Profile not found",
            "The profile you requested was not found in the system.",
        ),
        Some(c) => Json(json!({
            "sender_allowed": sim.io().allows(&c, fiscal_code, &service.api_key),
            "preferred_languages": c.preferred_languages,
        }))
        .into_response(),
    }
}

async fn profile_by_post(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let service = match sim.io().gate(&headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    match parsed
        .as_ref()
        .ok()
        .and_then(|v| v.get("fiscal_code"))
        .and_then(Value::as_str)
    {
        Some(fc) => profile_answer(&sim, &service, fc),
        None => {
            sim.io().count(|s| s.bad_requests += 1);
            problem(
                StatusCode::BAD_REQUEST,
                "Invalid FiscalCodePayload",
                "value at [root.fiscal_code] is not a valid FiscalCode",
            )
        }
    }
}

async fn profile_by_path(
    State(sim): State<Simulator>,
    Path(fiscal_code): Path<String>,
    headers: HeaderMap,
) -> Response {
    let service = match sim.io().gate(&headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    profile_answer(&sim, &service, &fiscal_code)
}

async fn submit_in_body(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    submit(&sim, &headers, &body, None).await
}

async fn submit_in_path(
    State(sim): State<Simulator>,
    Path(fiscal_code): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    submit(&sim, &headers, &body, Some(fiscal_code)).await
}

async fn submit(
    sim: &Simulator,
    headers: &HeaderMap,
    body: &[u8],
    in_path: Option<String>,
) -> Response {
    let service = match sim.io().gate(headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let checked = serde_json::from_slice::<Value>(body)
        .map_err(|e| format!("the body is not JSON: {e}"))
        .and_then(|v| check_new_message(v, in_path.as_deref(), &service));
    let (fiscal_code, time_to_live, content) = match checked {
        Ok(x) => x,
        Err(detail) => {
            sim.io().count(|s| s.bad_requests += 1);
            return problem(StatusCode::BAD_REQUEST, "Invalid NewMessage", &detail);
        }
    };
    let settings = sim.io().settings();
    let allowed = sim
        .io()
        .citizen(&settings, &fiscal_code)
        .is_some_and(|c| sim.io().allows(&c, &fiscal_code, &service.api_key));
    let id = {
        let mut m = sim.io().messages.lock().expect("io lock");
        m.next += 1;
        let id = ulid(m.next);
        let digest = fnv(format!("{fiscal_code}\u{0}{content}").as_bytes());
        if !m.seen.insert(digest) {
            m.stats.duplicates += 1;
        }
        m.stats.messages += 1;
        if !allowed {
            m.stats.rejected_messages += 1;
        }
        m.kept.push_back(IoMessage {
            id: id.clone(),
            fiscal_code,
            organization_fiscal_code: service.organization_fiscal_code.clone(),
            service_name: service.name.clone(),
            time_to_live,
            content,
            status: if allowed { "PROCESSED" } else { "REJECTED" }.into(),
            created_at: Utc::now(),
        });
        while m.kept.len() > settings.keep_messages.max(1) {
            m.kept.pop_front();
        }
        id
    };
    (
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/messages/{id}"))],
        Json(json!({ "id": id })),
    )
        .into_response()
}

/// `NewMessage` as the spec defines it (`NewMessage`, `MessageContent`,
/// `MessageContentBase`, `PaymentData`, `Payee`, `TimeToLiveSeconds`,
/// `Timestamp`, `FeatureLevelType`), answering the citizen, the time to
/// live and the content IO stores (the payee filled in), or the reason in
/// IO's words (`value [...] at [root...] is not a valid ...`).
fn check_new_message(
    v: Value,
    in_path: Option<&str>,
    service: &IoService,
) -> Result<(String, u64, Value), String> {
    let bad = |at: &str, what: &str, v: Option<&Value>| {
        let shown = v
            .map(|v| v.to_string())
            .unwrap_or_else(|| "undefined".into());
        format!("value [{shown}] at [root.{at}] is not a valid {what}")
    };
    let Value::Object(mut msg) = v else {
        return Err(bad("", "NewMessage", Some(&v)));
    };
    let fiscal_code = match (in_path, msg.get("fiscal_code")) {
        (Some(fc), _) => fc.to_string(),
        (None, Some(Value::String(fc))) => fc.clone(),
        (None, other) => return Err(bad("fiscal_code", "FiscalCode", other)),
    };
    if !is_fiscal_code(&fiscal_code) {
        return Err(bad("fiscal_code", "FiscalCode", Some(&json!(fiscal_code))));
    }
    let ttl = match msg.get("time_to_live") {
        None => 3600,
        Some(t) => match t.as_u64() {
            Some(n) if (3600..=604_800).contains(&n) => n,
            _ => {
                return Err(bad(
                    "time_to_live",
                    "TimeToLiveSeconds (3600-604800)",
                    Some(t),
                ));
            }
        },
    };
    if let Some(f) = msg.get("feature_level_type")
        && !matches!(f.as_str(), Some("STANDARD" | "ADVANCED"))
    {
        return Err(bad("feature_level_type", "FeatureLevelType", Some(f)));
    }
    let Some(Value::Object(mut content)) = msg.remove("content") else {
        return Err(bad("content", "MessageContent", msg.get("content")));
    };
    let text = |name: &str, min: usize, max: usize, content: &serde_json::Map<String, Value>| {
        match content.get(name) {
            Some(Value::String(s)) if (min..=max).contains(&s.chars().count()) => Ok(()),
            other => Err(bad(
                &format!("content.{name}"),
                &format!("string of {min} to {max} characters"),
                other,
            )),
        }
    };
    text("subject", 10, 120, &content)?;
    text("markdown", 80, 10_000, &content)?;
    if let Some(d) = content.get("due_date") {
        let ok = d
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .is_some();
        if !ok {
            return Err(bad("content.due_date", "Timestamp", Some(d)));
        }
    }
    if let Some(p) = content.get_mut("payment_data") {
        let Value::Object(p) = p else {
            return Err(bad("content.payment_data", "PaymentData", Some(p)));
        };
        match p.get("amount").and_then(Value::as_i64) {
            Some(a) if (1..=9_999_999_999).contains(&a) => {}
            _ => {
                return Err(bad(
                    "content.payment_data.amount",
                    "PaymentAmount",
                    p.get("amount"),
                ));
            }
        }
        let nav_ok = p
            .get("notice_number")
            .and_then(Value::as_str)
            .is_some_and(|n| {
                n.len() == 18 && n.bytes().all(|c| c.is_ascii_digit()) && n.as_bytes()[0] <= b'3'
            });
        if !nav_ok {
            return Err(bad(
                "content.payment_data.notice_number",
                "PaymentNoticeNumber",
                p.get("notice_number"),
            ));
        }
        match p.get("invalid_after_due_date") {
            None => {
                p.insert("invalid_after_due_date".into(), json!(false));
            }
            Some(Value::Bool(_)) => {}
            other => {
                return Err(bad(
                    "content.payment_data.invalid_after_due_date",
                    "boolean",
                    other,
                ));
            }
        }
        match p.get("payee") {
            None => {
                p.insert(
                    "payee".into(),
                    json!({ "fiscal_code": service.organization_fiscal_code }),
                );
            }
            Some(payee) => {
                let ok = payee
                    .get("fiscal_code")
                    .and_then(Value::as_str)
                    .is_some_and(|f| f.len() == 11 && f.bytes().all(|c| c.is_ascii_digit()));
                if !ok {
                    return Err(bad("content.payment_data.payee", "Payee", Some(payee)));
                }
            }
        }
    }
    Ok((fiscal_code, ttl, Value::Object(content)))
}

async fn get_message(
    State(sim): State<Simulator>,
    Path((fiscal_code, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = sim.io().gate(&headers).await {
        return r;
    }
    let found = sim
        .io()
        .messages(Some(&fiscal_code))
        .into_iter()
        .find(|m| m.id == id);
    match found {
        None => problem(
            StatusCode::NOT_FOUND,
            "Message not found",
            "No message found for the provided ID.",
        ),
        Some(m) => Json(json!({
            "message": {
                "id": m.id,
                "fiscal_code": m.fiscal_code,
                "time_to_live": m.time_to_live,
                "content": m.content,
                "created_at": m.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                "sender_service_id": m.organization_fiscal_code,
            },
            "status": m.status,
        }))
        .into_response(),
    }
}

async fn control_settings(State(sim): State<Simulator>) -> Json<IoSettings> {
    Json(sim.io().settings())
}

async fn control_configure(
    State(sim): State<Simulator>,
    Json(settings): Json<IoSettings>,
) -> Json<IoSettings> {
    sim.io().configure(settings);
    Json(sim.io().settings())
}

async fn control_add_service(
    State(sim): State<Simulator>,
    Json(service): Json<IoService>,
) -> StatusCode {
    sim.io().add_service(service);
    StatusCode::NO_CONTENT
}

async fn control_put_citizen(
    State(sim): State<Simulator>,
    Path(fiscal_code): Path<String>,
    Json(citizen): Json<IoCitizen>,
) -> StatusCode {
    sim.io().set_citizen(&fiscal_code, Some(citizen));
    StatusCode::NO_CONTENT
}

async fn control_delete_citizen(
    State(sim): State<Simulator>,
    Path(fiscal_code): Path<String>,
) -> StatusCode {
    sim.io().set_citizen(&fiscal_code, None);
    StatusCode::NO_CONTENT
}

async fn control_blocked(
    State(sim): State<Simulator>,
    Path(fiscal_code): Path<String>,
) -> Json<Vec<String>> {
    Json(sim.io().blocked(&fiscal_code))
}

async fn control_put_blocked(
    State(sim): State<Simulator>,
    Path(fiscal_code): Path<String>,
    Json(keys): Json<Vec<String>>,
) -> Json<Vec<String>> {
    for k in sim.io().blocked(&fiscal_code) {
        sim.io().block(&fiscal_code, &k, false);
    }
    for k in keys {
        sim.io().block(&fiscal_code, &k, true);
    }
    Json(sim.io().blocked(&fiscal_code))
}

async fn control_faults(State(sim): State<Simulator>) -> Json<IoFaults> {
    Json(sim.io().faults())
}

async fn control_set_faults(
    State(sim): State<Simulator>,
    Json(faults): Json<IoFaults>,
) -> Json<IoFaults> {
    sim.io().set_faults(faults.clone());
    Json(faults)
}

#[derive(Deserialize)]
struct MessagesQuery {
    fiscal_code: Option<String>,
}

async fn control_messages(
    State(sim): State<Simulator>,
    Query(q): Query<MessagesQuery>,
) -> Json<Vec<IoMessage>> {
    Json(sim.io().messages(q.fiscal_code.as_deref()))
}

async fn control_clear(State(sim): State<Simulator>) -> StatusCode {
    sim.io().clear_messages();
    StatusCode::NO_CONTENT
}

async fn control_stats(State(sim): State<Simulator>) -> Json<IoStats> {
    Json(sim.io().stats())
}

/// FNV-1a: a stable hash (the std one is seeded per process).
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A ULID as IO's message ids are (26 Crockford base32 characters: the
/// time in milliseconds, then randomness, here with a counter in it).
fn ulid(counter: u64) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut random = [0u8; 10];
    getrandom::fill(&mut random).expect("random source");
    let mixed = u64::from_be_bytes(random[..8].try_into().expect("8 bytes")) ^ counter;
    random[..8].copy_from_slice(&mixed.to_be_bytes());
    let ms = Utc::now().timestamp_millis().max(0) as u128;
    let value = (ms << 80)
        | u128::from_be_bytes({
            let mut b = [0u8; 16];
            b[6..].copy_from_slice(&random);
            b
        });
    (0..26)
        .rev()
        .map(|i| ALPHABET[((value >> (i * 5)) & 31) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> IoService {
        IoService {
            api_key: "k".into(),
            organization_fiscal_code: "80000130585".into(),
            name: "TARI".into(),
            rate_per_second: None,
        }
    }

    fn good() -> Value {
        json!({
            "fiscal_code": "RSSMRA80A01H501U",
            "content": {
                "subject": "Avviso di pagamento",
                "markdown": "x".repeat(80),
                "payment_data": {"amount": 100, "notice_number": "301000000000000017"},
                "due_date": "2026-12-31T22:59:00.000Z"
            }
        })
    }

    #[test]
    fn fills_the_payee_and_defaults() {
        let (fc, ttl, content) = check_new_message(good(), None, &service()).unwrap();
        assert_eq!(fc, "RSSMRA80A01H501U");
        assert_eq!(ttl, 3600);
        assert_eq!(
            content["payment_data"]["payee"]["fiscal_code"],
            "80000130585"
        );
        assert_eq!(content["payment_data"]["invalid_after_due_date"], false);
    }

    #[test]
    fn refuses_what_io_refuses() {
        let spoil = |f: &dyn Fn(&mut Value)| {
            let mut v = good();
            f(&mut v);
            check_new_message(v, None, &service()).unwrap_err()
        };
        assert!(
            spoil(&|v| v["fiscal_code"] = json!("RSSMRA80A01H501")).contains("root.fiscal_code")
        );
        assert!(
            spoil(&|v| {
                v.as_object_mut().unwrap().remove("fiscal_code");
            })
            .contains("root.fiscal_code")
        );
        assert!(
            spoil(&|v| v["content"]["subject"] = json!("breve")).contains("root.content.subject")
        );
        assert!(
            spoil(&|v| v["content"]["markdown"] = json!("x".repeat(79)))
                .contains("root.content.markdown")
        );
        assert!(spoil(&|v| v["time_to_live"] = json!(10)).contains("root.time_to_live"));
        assert!(spoil(&|v| v["content"]["payment_data"]["amount"] = json!(0)).contains("amount"));
        assert!(
            spoil(&|v| v["content"]["payment_data"]["amount"] = json!("100")).contains("amount")
        );
        assert!(
            spoil(&|v| v["content"]["payment_data"]["notice_number"] = json!("401000000000000017"))
                .contains("notice_number")
        );
        assert!(
            spoil(&|v| v["content"]["payment_data"]["payee"] = json!({"fiscal_code": "123"}))
                .contains("payee")
        );
        assert!(spoil(&|v| v["content"]["due_date"] = json!("31/12/2026")).contains("due_date"));
        assert!(
            spoil(&|v| v["feature_level_type"] = json!("PREMIUM")).contains("feature_level_type")
        );
    }

    #[test]
    fn ids_look_like_io_ids() {
        let a = ulid(1);
        let b = ulid(2);
        assert_eq!(a.len(), 26);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&c))
        );
    }

    #[test]
    fn demo_citizens_are_valid_and_distinct() {
        let c = demo_citizens();
        assert_eq!(c.len(), 3);
        assert!(c.keys().all(|fc| is_fiscal_code(fc)), "{c:?}");
        assert!(c.values().all(|x| x.sender_allowed));
    }

    /// A citizen blocks one service: only that one is refused, in the
    /// profile and in the message's fate; a new configuration forgets it.
    #[test]
    fn opt_out_is_per_service() {
        let io = IoState::default();
        let out = incasso_core::sample::personal_fiscal_code(1);
        let c = io.citizen(&io.settings(), &out).unwrap();
        for (key, _, _) in DEMO_SERVICES {
            assert!(!io.allows(&c, &out, key), "{key}");
        }
        assert!(io.allows(&c, &out, "io-key-of-another-service"));
        let mario = "RSSMRA80A01H501U";
        let m = io.citizen(&io.settings(), mario).unwrap();
        assert!(io.allows(&m, mario, DEMO_SERVICES[0].0));
        io.block(mario, DEMO_SERVICES[0].0, true);
        assert!(!io.allows(&m, mario, DEMO_SERVICES[0].0));
        assert!(io.allows(&m, mario, DEMO_SERVICES[1].0));
        assert_eq!(io.blocked(mario), [DEMO_SERVICES[0].0]);
        io.block(mario, DEMO_SERVICES[0].0, false);
        assert!(io.allows(&m, mario, DEMO_SERVICES[0].0));
        // All messages off: every service refused.
        let off = IoCitizen {
            sender_allowed: false,
            preferred_languages: vec![],
        };
        assert!(!io.allows(&off, mario, "io-key-of-another-service"));
        io.configure(IoSettings::default());
        assert!(io.blocked(&out).is_empty());
    }
}
