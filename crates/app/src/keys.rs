//! API keys and passwords: issuing, recognising, revoking.
//!
//! A key is `inc_<id>_<secret>`; only its SHA-256 is stored (the keys are
//! 192-bit random, so a slow hash would cost every request without adding
//! protection). A key belongs to one Ente, as an application's key or as
//! the Ente's administrator's, or to the intermediary that runs the
//! installation.

use crate::error::{AppError, At, Place};
use crate::paging::{self, Page};
use crate::{Caller, Ctx};
use incasso_core::access::{Access, Area, Role};
use incasso_store::{ApiKeyRecord, KeyScope, Store, StoreError};
use sha2::{Digest, Sha256};

pub fn hash_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// Lower-case hex, as keys, hashes and generated ids are written.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
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

/// Creates and stores a key; returns (key id, full key). For incasso's own
/// callers (the CLI, the demo, tests); the API goes through [`issue`].
pub async fn issue_key(
    store: &Store,
    ente: Option<&str>,
    scope: KeyScope,
    label: &str,
) -> Result<(String, String), StoreError> {
    let (id, key) = generate_key();
    let scope = match (ente, scope) {
        (None, _) => KeyScope::Intermediary,
        (Some(_), KeyScope::Intermediary) => KeyScope::Ente,
        (Some(_), s) => s,
    };
    store
        .insert_api_key(&id, &hash_key(&key), ente, scope, label, chrono::Utc::now())
        .await?;
    Ok((id, key))
}

/// Who holds this key, if anyone: the caller of the request that brings it.
pub async fn authenticate(ctx_store: &Store, key: &str) -> Result<Caller, AppError> {
    match ctx_store.find_api_key(&hash_key(key)).await.at(Place::new(
        "keys.authenticate",
        "",
        "",
    ))? {
        Some(record) => Ok(Caller::Key(record)),
        None => Err(AppError::unauthenticated()),
    }
}

/// A page of the keys of an Ente (`Some`) or the intermediary's (`None`),
/// by key id.
pub async fn list(
    ctx: &Ctx,
    ente: Option<&str>,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<ApiKeyRecord>, AppError> {
    let (default, max) = paging::REGISTRY_PAGE;
    let limit = paging::limit(limit, default, max)?;
    let at = Place::new("keys.list", ente.unwrap_or(""), "");
    match ente {
        Some(fc) => {
            require_keys(ctx, fc, Access::Read)?;
            ctx.store().get_ente(fc).await.at(at)?;
        }
        None => ctx.caller.require_intermediary()?,
    }
    let all = ctx.store().list_api_keys(ente).await.at(at)?;
    paging::of_whole(all, cursor, limit, 1, |k| vec![k.key_id.clone()])
}

/// The caller may manage this Ente's keys (Users area): a program as
/// [`Caller::require_key_admin`] says; a person only as the Ente's or the
/// intermediary's administrator, since a key acts with every right of the
/// Ente and would outreach an office's own rights.
fn require_keys(ctx: &Ctx, fc: &str, access: Access) -> Result<(), AppError> {
    match &ctx.caller {
        Caller::Operator(o) => {
            ctx.caller.require(fc, Area::Users, access)?;
            if matches!(o.rights.role, Role::EnteAdmin | Role::IntermediaryAdmin) {
                Ok(())
            } else {
                Err(AppError::forbidden())
            }
        }
        _ => ctx.caller.require_key_admin(fc),
    }
}

/// Issues a key. Among programs only the intermediary issues keys: a
/// leaked Ente key must not be able to mint successors that outlive its
/// revocation. A person who administers the Ente (signed in, not a key)
/// issues its keys too.
pub async fn issue(
    ctx: &Ctx,
    ente: Option<&str>,
    scope: KeyScope,
    label: &str,
) -> Result<(String, String), AppError> {
    crate::audit::audited(ctx, ente, "key.issue", label, async {
        match (&ctx.caller, ente) {
            (Caller::Operator(_), Some(fc)) => require_keys(ctx, fc, Access::Write)?,
            _ => ctx.caller.require_intermediary()?,
        }
        // A person names the key they issue, so that the list tells keys
        // apart; programs keep the API's optional label.
        let by_person = matches!(ctx.caller, Caller::Operator(_));
        if (by_person && label.trim().is_empty()) || label.chars().count() > 200 {
            return Err(AppError::invalid(
                "BAD_LABEL",
                "label: da 1 a 200 caratteri, per riconoscere la chiave",
            ));
        }
        issue_key(ctx.store(), ente, scope, label)
            .await
            .at(Place::new("keys.issue", ente.unwrap_or(""), label))
    })
    .await
}

/// Revokes one of the Ente's keys: its administrator's key or the
/// intermediary's may; an application's key may not.
pub async fn revoke(ctx: &Ctx, ente: &str, key_id: &str) -> Result<(), AppError> {
    crate::audit::audited(ctx, Some(ente), "key.revoke", key_id, async {
        require_keys(ctx, ente, Access::Write)?;
        ctx.store()
            .revoke_api_key(key_id, Some(ente), ctx.now())
            .await
            .at(Place::new("keys.revoke", ente, key_id))
    })
    .await
}
