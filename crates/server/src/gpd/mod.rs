//! pagoPA's GPD APIs, each under its own base path with the paths, JSON and
//! status codes of its official document (see `docs/gpd.md`):
//!
//! - [`v1`]: `gpd.json`, one position per call, at `/gpd/v1`
//! - [`v2`]: many positions per call, all or nothing, at `/gpd/v2`
//! - [`v3`]: the same positions with v3's options and installments, at
//!   `/gpd/v3`
//! - [`send`]: SEND reads an option and sets its notification fee, at
//!   `/gpd/send/v1`
//! - [`payments`]: the receipts of an Ente's notices, at `/gpd/payments/v1`
//! - [`upload`]: the massive upload of positions by file, at
//!   `/gpd/upload/v2`
//!
//! and `GET /info` under each base path and at `/gpd/info`. What they
//! share: GPD's dates, its booleans, and its `X-Request-Id`.
//!
//! The JSON bodies of v1, v2 and v3 and their mapping onto positions are
//! the `incasso-gpd` crate (fuzzed without the server's stack); these
//! modules route, extract, call the use cases and map the errors.

pub mod payments;
pub mod send;
pub mod upload;
pub mod v1;
pub mod v2;
pub mod v3;

use crate::AppState;
use crate::error::ApiError;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use incasso_core::time;
use serde::{Deserialize, Deserializer, Serialize};

/// Every GPD API under `/gpd`: the Ente's paths behind the tenant guard,
/// everything in GPD's error shape and with its request id.
pub fn routes(state: &AppState) -> Router<AppState> {
    let guard = axum::middleware::from_fn_with_state(state.clone(), crate::auth::tenant_guard);
    let versions = [
        ("/v1", v1::routes()),
        ("/v2", v2::routes()),
        ("/v3", v3::routes()),
        ("/send/v1", send::routes()),
        ("/payments/v1", payments::routes()),
        ("/upload/v2", upload::routes()),
    ];
    let mut router = Router::new().route("/info", get(info));
    for (prefix, api) in versions {
        router = router.nest(
            prefix,
            api.route_layer(guard.clone()).route("/info", get(info)),
        );
    }
    router
        .layer(axum::middleware::from_fn(api_key_header))
        .layer(axum::middleware::from_fn(crate::error::gpd_problem_json))
        .layer(axum::middleware::from_fn(request_id))
}

/// gpd_massive_v2.json names the key's header `ApiKey` where GPD's other
/// documents say `Ocp-Apim-Subscription-Key`: either is read.
async fn api_key_header(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let headers = request.headers_mut();
    if !headers.contains_key(crate::auth::KEY_HEADER)
        && let Some(key) = headers.get("apikey").cloned()
    {
        headers.insert(crate::auth::KEY_HEADER, key);
    }
    next.run(request).await
}

/// `?toPublish=` of create and update.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishQuery {
    #[serde(default, deserialize_with = "spring_bool")]
    pub to_publish: bool,
}

/// What GPD's v2 and v3 answer to a delete.
pub const DELETED: &str = "The debt position was successfully deleted";

/// GPD's `AppInfo`, the answer of `GET /info`.
#[derive(Debug, Serialize)]
pub struct AppInfo {
    name: &'static str,
    version: &'static str,
    environment: &'static str,
}

/// `GET /info`: who answers. GPD names its service, version and
/// environment; incasso names itself, so a client's health check passes
/// and its logs say which server it reached.
pub async fn info() -> Json<AppInfo> {
    Json(AppInfo {
        name: "incasso",
        version: env!("CARGO_PKG_VERSION"),
        environment: "incasso",
    })
}

/// GPD's `X-Request-Id`, which gpd.json declares on every answer: the
/// caller's own, or one made up (a random UUID, as GPD makes) when the
/// request brings none.
pub async fn request_id(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    const HEADER: &str = "x-request-id";
    let id = request
        .headers()
        .get(HEADER)
        .filter(|v| !v.is_empty())
        .cloned()
        .or_else(|| axum::http::HeaderValue::from_str(&random_uuid()).ok());
    let mut response = next.run(request).await;
    if let Some(id) = id {
        response.headers_mut().insert(HEADER, id);
    }
    response
}

/// A version 4 UUID in its usual text form.
fn random_uuid() -> String {
    let mut b = [0u8; 16];
    // Without a random source the id is all zeros: it only names a call.
    let _ = getrandom::fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

// ---------------------------------------------------------------- dates

// GPD's instants, and the wire models that carry them, are `incasso-gpd`'s.

/// A `yyyy-MM-dd` day in Italy, as the instant it starts (or ends).
pub(crate) fn parse_day(field: &str, s: &str, end_of_day: bool) -> Result<DateTime<Utc>, ApiError> {
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        ApiError::bad_request(
            "BAD_FORMAT",
            format!("{field}: data non valida '{s}', atteso yyyy-MM-dd"),
        )
    })?;
    let t = if end_of_day {
        day.and_hms_micro_opt(23, 59, 59, 999_999)
    } else {
        day.and_hms_opt(0, 0, 0)
    };
    Ok(time::from_rome(t.unwrap_or_default()))
}

/// A boolean query parameter as GPD's framework (Spring) reads one: `true`,
/// `on`, `yes`, `1` and `false`, `off`, `no`, `0`, in any letter case; an
/// empty value is absent. Anything else is refused, naming the value.
pub(crate) fn spring_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let text = String::deserialize(d)?;
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" | "" => Ok(false),
        _ => Err(serde::de::Error::custom(format!(
            "'{text}' non è un booleano (true/false, 1/0, yes/no, on/off)"
        ))),
    }
}
