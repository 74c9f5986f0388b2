//! API keys. Only a SHA-256 of each key is stored: the keys are 256-bit
//! random values, so a slow password hash would add latency to every request
//! without adding any protection.

use crate::time::to_micros;
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use sqlx::Row;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyScope {
    /// Administers Enti; reaches every Ente's resources.
    Intermediary,
    /// Reaches one Ente's resources only: an application's key.
    Ente,
    /// One Ente's administrator: its resources, and its keys.
    EnteAdmin,
}

impl KeyScope {
    fn as_str(self) -> &'static str {
        match self {
            KeyScope::Intermediary => "intermediary",
            KeyScope::Ente => "ente",
            KeyScope::EnteAdmin => "ente_admin",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub key_id: String,
    pub ente: Option<String>,
    pub scope: KeyScope,
    pub label: String,
    pub created_at: i64,
}

impl Store {
    pub async fn insert_api_key(
        &self,
        key_id: &str,
        key_hash: &str,
        ente: Option<&str>,
        scope: KeyScope,
        label: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if let Some(ente) = ente {
            self.get_ente(ente).await?;
        }
        sqlx::query(
            "INSERT INTO api_keys (key_id, key_hash, ente, scope, label, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(key_id)
        .bind(key_hash)
        .bind(ente)
        .bind(scope.as_str())
        .bind(label)
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The live key with this hash, if any.
    pub async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>> {
        if let Some(k) = self.hot.key(key_hash) {
            return Ok(Some(k));
        }
        let read_at = std::time::Instant::now();
        let row = sqlx::query(
            "SELECT key_id, ente, scope, label, created_at FROM api_keys
             WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await?;
        let found = row.map(|r| record(&r)).transpose()?;
        if let Some(k) = &found {
            self.hot.put_key(key_hash, read_at, k.clone());
        }
        Ok(found)
    }

    pub async fn list_api_keys(&self, ente: Option<&str>) -> Result<Vec<ApiKeyRecord>> {
        let rows = sqlx::query(
            "SELECT key_id, ente, scope, label, created_at FROM api_keys
             WHERE revoked_at IS NULL AND ($1 = '' OR ente = $1) ORDER BY created_at, key_id",
        )
        .bind(ente.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    pub async fn revoke_api_key(
        &self,
        key_id: &str,
        ente: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let res = sqlx::query(
            "UPDATE api_keys SET revoked_at = $2 WHERE key_id = $1 AND revoked_at IS NULL
             AND ($3 = '' OR ente = $3)",
        )
        .bind(key_id)
        .bind(to_micros(now))
        .bind(ente.unwrap_or(""))
        .execute(&self.writer)
        .await?;
        self.hot.forget_keys();
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFound("chiave API"));
        }
        Ok(())
    }
}

fn record(r: &sqlx::any::AnyRow) -> Result<ApiKeyRecord> {
    let scope: String = r.try_get("scope")?;
    Ok(ApiKeyRecord {
        key_id: r.try_get("key_id")?,
        ente: r.try_get("ente")?,
        scope: match scope.as_str() {
            "intermediary" => KeyScope::Intermediary,
            "ente" => KeyScope::Ente,
            "ente_admin" => KeyScope::EnteAdmin,
            other => return Err(StoreError::Corrupt(format!("key scope {other}"))),
        },
        label: r.try_get("label")?,
        created_at: r.try_get("created_at")?,
    })
}
