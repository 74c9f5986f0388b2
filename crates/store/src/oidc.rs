//! SPID/CIE sign-in's server-side state: the authorization requests on
//! their way through the identity provider (migration 0018), and the
//! fiscal code an operator is recognized by.

use crate::time::{from_micros, to_micros};
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// An authorization request awaiting its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcRequest {
    /// SHA-256 of the `state` sent to the provider (hex).
    pub state_hash: String,
    pub nonce: String,
    pub code_verifier: String,
    pub redirect_uri: String,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Keeps a request until its answer comes back.
    pub async fn save_oidc_request(&self, r: &OidcRequest) -> Result<()> {
        sqlx::query(
            "INSERT INTO oidc_requests (state_hash, nonce, code_verifier, redirect_uri, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&r.state_hash)
        .bind(&r.nonce)
        .bind(&r.code_verifier)
        .bind(&r.redirect_uri)
        .bind(to_micros(r.created_at))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Takes out the request of `state_hash`: only one caller ever gets
    /// it, whichever process it runs in, so an answer is used once.
    pub async fn take_oidc_request(&self, state_hash: &str) -> Result<Option<OidcRequest>> {
        let row = sqlx::query(
            "DELETE FROM oidc_requests WHERE state_hash = $1
             RETURNING state_hash, nonce, code_verifier, redirect_uri, created_at",
        )
        .bind(state_hash)
        .fetch_optional(&self.writer)
        .await?;
        row.map(|r| {
            Ok(OidcRequest {
                state_hash: r.try_get("state_hash")?,
                nonce: r.try_get("nonce")?,
                code_verifier: r.try_get("code_verifier")?,
                redirect_uri: r.try_get("redirect_uri")?,
                created_at: from_micros(r.try_get("created_at")?),
            })
        })
        .transpose()
    }

    /// Forgets the requests started before `before` that never came back.
    pub async fn purge_oidc_requests(&self, before: DateTime<Utc>) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM oidc_requests WHERE created_at < $1")
                .bind(to_micros(before))
                .execute(&self.writer)
                .await?
                .rows_affected(),
        )
    }

    /// Sets (or removes) the fiscal code operator `id` signs in with
    /// through SPID/CIE; one taken by another operator is a conflict.
    pub async fn set_operator_fiscal_code(
        &self,
        id: i64,
        fiscal_code: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let res =
            sqlx::query("UPDATE operators SET fiscal_code = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(fiscal_code.map(|f| f.trim().to_uppercase()))
                .bind(to_micros(now))
                .execute(&self.writer)
                .await;
        match res {
            Ok(done) if done.rows_affected() == 1 => Ok(()),
            Ok(_) => Err(StoreError::NotFound("operatore")),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict(
                "codice fiscale già usato da un altro operatore".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }
}
