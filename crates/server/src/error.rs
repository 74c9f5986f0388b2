//! Errors as the HTTP client sees them: RFC 7807 ProblemJson, as pagoPA's
//! GPD answers, with two additions that GPD clients ignore and incasso
//! clients use: a stable `code` and, for rejected input, every field error.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use incasso_app::{AppError, Kind, Place};
use incasso_core::FieldError;
use incasso_core::position::TransitionError;
use incasso_gpd::WireError;
use incasso_store::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProblemJson {
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable, language-independent error code.
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<FieldError>,
}

/// A file or document carried as it is (PDF, ZIP, XML, PNG, a supply):
/// bytes, which OpenAPI says as a binary string, not an array of integers.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Binary(pub Vec<u8>);

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }
}

/// Every 503 says when to try again (pages, JSON and the rest alike):
/// PostgreSQL restarts in a few seconds, and the pool reconnects by itself
/// at the next request.
pub async fn retry_after(mut response: Response) -> Response {
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .entry(axum::http::header::RETRY_AFTER)
            .or_insert(axum::http::HeaderValue::from_static("5"));
    }
    response
}

/// The HTTP status of each kind of application error.
pub fn status_of(kind: Kind) -> StatusCode {
    match kind {
        Kind::Invalid => StatusCode::BAD_REQUEST,
        Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
        Kind::Forbidden => StatusCode::FORBIDDEN,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::Conflict => StatusCode::CONFLICT,
        Kind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Kind::Unavailable => StatusCode::BAD_GATEWAY,
        Kind::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Kind::Gone => StatusCode::GONE,
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError {
            status: status_of(e.kind),
            code: e.code,
            detail: e.detail,
            errors: e.errors,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("{what} non trovato"),
            ),
            StoreError::Conflict(detail) => ApiError::new(StatusCode::CONFLICT, "CONFLICT", detail),
            StoreError::Invalid(invalid) => {
                let mut err = ApiError::bad_request(invalid.first_code(), invalid.to_string());
                err.errors = invalid.0;
                err
            }
            StoreError::Transition(t) => t.into(),
            other => incasso_app::error::from_store(other, &Place::new("http", "", "")).into(),
        }
    }
}

/// A GPD body that does not map onto a position: the caller's to fix.
impl From<WireError> for ApiError {
    fn from(e: WireError) -> Self {
        ApiError::bad_request(e.code, e.detail)
    }
}

impl From<TransitionError> for ApiError {
    fn from(t: TransitionError) -> Self {
        ApiError::new(StatusCode::CONFLICT, t.code(), t.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ProblemJson {
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code.to_string(),
            errors: self.errors,
        };
        let mut response = (self.status, Json(body)).into_response();
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

/// `Json<T>` whose rejections are ProblemJson with an Italian explanation
/// that says where the body is wrong, instead of axum's plain text. The body
/// must be a JSON object: serde would take an array for a struct (its
/// fields in order), and `[]` for one whose fields all have defaults.
pub struct ApiJson<T>(pub T);

/// As [`ApiJson`], for a body that is a JSON array.
pub struct ApiJsonList<T>(pub Vec<T>);

async fn json_value<S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<serde_json::Value, ApiError> {
    let value = Json::<serde_json::Value>::from_request(req, state)
        .await
        .map(|Json(v)| v)
        .map_err(json_rejection)?;
    if has_nul(&value) {
        return Err(ApiError::bad_request(
            "BAD_JSON_DATA",
            "JSON non conforme: un testo contiene il carattere nullo (\\u0000)",
        ));
    }
    Ok(value)
}

/// Whether a text of `value`, a key included, holds NUL, which no field
/// of incasso needs and PostgreSQL refuses to store (a 500 otherwise).
fn has_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// A request whose path or query holds an encoded NUL (`%00`): refused
/// before any handler, as no identifier or parameter of incasso has one
/// and PostgreSQL refuses to compare text with it (a 500 otherwise).
fn nul_in_uri(request: &Request) -> Option<Response> {
    let uri = request.uri();
    let nul = uri.path().contains("%00") || uri.query().is_some_and(|q| q.contains("%00"));
    nul.then(|| {
        ApiError::bad_request(
            "BAD_REQUEST",
            "richiesta non valida: il percorso o i parametri contengono il carattere nullo (%00)",
        )
        .into_response()
    })
}

/// `value` as `T`; an error names the field where it is, as the caller
/// sent it (`paymentPositions[1].paymentOption[0].amount`).
fn typed<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let detail = if path.is_empty() || path == "." {
            format!("JSON non conforme: {}", e.inner())
        } else {
            format!("{path}: JSON non conforme: {}", e.inner())
        };
        ApiError::bad_request("BAD_JSON_DATA", detail)
    })
}

/// The body as JSON of the declared shape, then as `T`.
async fn json_of<S: Send + Sync, T: DeserializeOwned>(
    req: Request,
    state: &S,
    list: bool,
) -> Result<T, ApiError> {
    let value = json_value(req, state).await?;
    let declared = if list {
        value.is_array()
    } else {
        value.is_object()
    };
    if !declared {
        return Err(ApiError::bad_request(
            "BAD_JSON_DATA",
            if list {
                "JSON non conforme: il corpo deve essere un elenco JSON ([...])"
            } else {
                "JSON non conforme: il corpo deve essere un oggetto JSON ({...})"
            },
        ));
    }
    typed(value)
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        json_of(req, state, false).await.map(ApiJson)
    }
}

impl<S, T> FromRequest<S> for ApiJsonList<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        json_of(req, state, true).await.map(ApiJsonList)
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::bad_request(
            "BAD_JSON_DATA",
            format!("JSON non conforme: {}", e.body_text()),
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(
            "BAD_JSON_SYNTAX",
            format!("JSON malformato: {}", e.body_text()),
        ),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BAD_CONTENT_TYPE",
            "il corpo deve essere JSON (Content-Type: application/json)",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "BODY_TOO_LARGE",
                format!(
                    "corpo della richiesta troppo grande (massimo {} byte)",
                    crate::MAX_BODY_BYTES
                ),
            )
        }
        other => ApiError::bad_request(
            "BAD_BODY",
            format!("corpo della richiesta illeggibile: {}", other.body_text()),
        ),
    }
}

/// `Query<T>` whose rejections are ProblemJson naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(ApiQuery(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::bad_request(
                "BAD_QUERY",
                format!("parametri della richiesta non validi: {}", e.body_text()),
            )),
            Err(other) => Err(ApiError::bad_request(
                "BAD_QUERY",
                format!(
                    "parametri della richiesta non validi: {}",
                    other.body_text()
                ),
            )),
        }
    }
}

/// Every error of the JSON APIs as ProblemJson, also those no handler
/// made: a path that is not UTF-8, a method the resource does not have, a
/// body too large or of the wrong type, each rejected by axum as plain
/// text. Under `/gpd/` errors are `application/json`, as gpd.json declares
/// them (GPD's clients may check the type); elsewhere
/// `application/problem+json`.
pub async fn problem_json(request: Request, next: axum::middleware::Next) -> Response {
    if let Some(refused) = nul_in_uri(&request) {
        return as_problem_json(refused, false);
    }
    as_problem_json(next.run(request).await, false)
}

/// [`problem_json`] for GPD's paths.
pub async fn gpd_problem_json(request: Request, next: axum::middleware::Next) -> Response {
    if let Some(refused) = nul_in_uri(&request) {
        return as_problem_json(refused, true);
    }
    as_problem_json(next.run(request).await, true)
}

fn as_problem_json(mut response: Response, gpd: bool) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.starts_with("application/problem+json") || t.starts_with("application/json")
        });
    if !is_json {
        let (code, detail) = match status {
            StatusCode::BAD_REQUEST => (
                "BAD_REQUEST",
                "richiesta non valida: percorso o parametri illeggibili",
            ),
            StatusCode::NOT_FOUND => ("NOT_FOUND", "risorsa inesistente"),
            StatusCode::METHOD_NOT_ALLOWED => (
                "METHOD_NOT_ALLOWED",
                "metodo non consentito su questa risorsa",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => {
                ("BODY_TOO_LARGE", "corpo della richiesta troppo grande")
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ("BAD_CONTENT_TYPE", "tipo di contenuto non supportato")
            }
            StatusCode::UNPROCESSABLE_ENTITY => {
                ("UNPROCESSABLE", "corpo della richiesta non elaborabile")
            }
            s if s.is_server_error() => ("INTERNAL", "errore interno: riprovare più tardi"),
            _ => ("BAD_REQUEST", "richiesta non valida"),
        };
        let allow = response.headers().get(axum::http::header::ALLOW).cloned();
        response = ApiError::new(status, code, detail).into_response();
        if let Some(allow) = allow {
            response
                .headers_mut()
                .insert(axum::http::header::ALLOW, allow);
        }
    }
    if gpd {
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        );
    }
    response
}
