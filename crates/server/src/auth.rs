//! Who is calling over HTTP: the API key in `Ocp-Apim-Subscription-Key`,
//! recognised by [`incasso_app::keys::authenticate`]. What the caller may do
//! is decided by the use cases; the route layer here only refuses, before
//! any handler or body parsing runs, a key of another Ente than the one in
//! the path.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

pub const KEY_HEADER: &str = "Ocp-Apim-Subscription-Key";

/// The caller of a request, as an extractor.
#[derive(Debug, Clone)]
pub struct Caller(pub incasso_app::Caller);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let key = parts
            .headers
            .get(KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::from(incasso_app::AppError::unauthenticated()))?;
        Ok(Caller(
            incasso_app::keys::authenticate(state.store(), key).await?,
        ))
    }
}

/// Route layer for every resource under an Ente's fiscal code: checks the key
/// against the Ente in the path before anything else runs, so another Ente's
/// key learns nothing, not even whether its request body was well formed.
pub async fn tenant_guard(
    axum::extract::State(state): axum::extract::State<AppState>,
    axum::extract::Path(params): axum::extract::Path<std::collections::HashMap<String, String>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (mut parts, body) = request.into_parts();
    let caller = match Caller::from_request_parts(&mut parts, &state).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let ente = params
        .get("organizationfiscalcode")
        .or_else(|| params.get("organization-fiscal-code"))
        .or_else(|| params.get("fiscalCode"));
    if let Some(ente) = ente
        && let Err(e) = caller.0.require_ente(ente)
    {
        return ApiError::from(e).into_response();
    }
    parts.extensions.insert(caller);
    next.run(axum::extract::Request::from_parts(parts, body))
        .await
}

/// A caller who must be the intermediary. As an extractor it refuses anyone
/// else before the request body is read, so that an Ente's key learns
/// nothing of an intermediary operation, not even whether its body was
/// well formed; the use case checks again.
#[derive(Debug, Clone)]
pub struct Intermediary(pub Caller);

impl FromRequestParts<AppState> for Intermediary {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.0.require_intermediary()?;
        Ok(Intermediary(caller))
    }
}
