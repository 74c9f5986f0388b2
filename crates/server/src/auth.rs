//! API keys: who is calling, and what they may reach.
//!
//! A key is `inc_<id>_<secret>`; only its SHA-256 is stored. A key belongs
//! either to one Ente or to the intermediary that runs the installation.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use incasso_store::{ApiKeyRecord, KeyScope};
use sha2::{Digest, Sha256};

pub const KEY_HEADER: &str = "Ocp-Apim-Subscription-Key";

#[derive(Debug, Clone)]
pub struct Caller(pub ApiKeyRecord);

impl Caller {
    pub fn is_intermediary(&self) -> bool {
        self.0.scope == KeyScope::Intermediary
    }

    /// The caller may act on this Ente's resources. Another Ente's key gets
    /// 403, never a hint of whether the resource exists.
    pub fn require_ente(&self, fiscal_code: &str) -> Result<(), ApiError> {
        if self.is_intermediary() || self.0.ente.as_deref() == Some(fiscal_code) {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    pub fn require_intermediary(&self) -> Result<(), ApiError> {
        if self.is_intermediary() {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }
}

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
            .ok_or_else(ApiError::unauthorized)?;
        let record = state
            .store
            .find_api_key(&hash_key(key))
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        Ok(Caller(record))
    }
}

/// A caller holding an intermediary-level key. As an extractor it refuses
/// anyone else before the request body is even read.
#[derive(Debug, Clone)]
pub struct Intermediary(pub Caller);

impl FromRequestParts<AppState> for Intermediary {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require_intermediary()?;
        Ok(Intermediary(caller))
    }
}

pub fn hash_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// Lower-case hex, as keys, hashes and generated ids are written.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new key: its public id and the full secret to hand over once.
pub fn generate_key() -> (String, String) {
    let mut id = [0u8; 6];
    let mut secret = [0u8; 24];
    getrandom::fill(&mut id).expect("operating system random source");
    getrandom::fill(&mut secret).expect("operating system random source");
    let id = hex(&id);
    let key = format!("inc_{id}_{}", hex(&secret));
    (id, key)
}

/// Creates and stores a key; returns (key id, full key).
pub async fn issue_key(
    store: &incasso_store::Store,
    ente: Option<&str>,
    label: &str,
) -> Result<(String, String), incasso_store::StoreError> {
    let (id, key) = generate_key();
    let scope = if ente.is_some() {
        KeyScope::Ente
    } else {
        KeyScope::Intermediary
    };
    store
        .insert_api_key(&id, &hash_key(&key), ente, scope, label, chrono::Utc::now())
        .await?;
    Ok((id, key))
}

/// An Argon2id PHC string for a back-office password.
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("operating system random source");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes always encode");
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters")
        .to_string()
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc)
        .map(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
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
        .or_else(|| params.get("fiscalCode"));
    if let Some(ente) = ente
        && let Err(e) = caller.require_ente(ente)
    {
        return e.into_response();
    }
    parts.extensions.insert(caller);
    next.run(axum::extract::Request::from_parts(parts, body))
        .await
}
