//! The back office's operators, their sessions, and the audit log. The
//! store keeps what it is given: password hashes are made and checked by
//! the application, rights are decided by `core::access`.

use crate::time::{from_micros, opt_from_micros, opt_to_micros, to_micros};
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use incasso_core::access::{Access, Area, Rights, Role};
use sqlx::Row;

/// An operator as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRecord {
    pub id: i64,
    /// Lower case: sign-in ignores the case of the name.
    pub username: String,
    pub password_hash: Option<String>,
    /// Upper case, for SPID/CIE sign-in.
    pub fiscal_code: Option<String>,
    pub full_name: String,
    pub email: Option<String>,
    pub rights: Rights,
    pub disabled: bool,
    pub must_change_password: bool,
    pub failed_attempts: u32,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new operator.
#[derive(Debug, Clone)]
pub struct NewOperator {
    pub username: String,
    pub password_hash: Option<String>,
    pub fiscal_code: Option<String>,
    pub full_name: String,
    pub email: Option<String>,
    pub rights: Rights,
    pub must_change_password: bool,
}

/// One event of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: DateTime<Utc>,
    /// Who: `operator:<username>`, `key:<key id>`, `system:<what>`.
    pub actor: String,
    pub ente: Option<String>,
    /// What, as a stable name (`operator.sign_in`, `position.create`...).
    pub action: String,
    /// On what (an iupd, a username, a supply id).
    pub object: String,
    /// `OK`, or the error's stable code.
    pub outcome: String,
    pub detail: String,
}

const OPERATOR_COLUMNS: &str = "id, username, password_hash, fiscal_code, full_name, email, ente,
    role, grants, offices, disabled, must_change_password, failed_attempts, locked_until,
    created_at, updated_at";

fn operator_of_row(r: &sqlx::any::AnyRow) -> Result<OperatorRecord> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("operatore: {what}"));
    let role: String = r.try_get("role")?;
    let grants: String = r.try_get("grants")?;
    let offices: String = r.try_get("offices")?;
    Ok(OperatorRecord {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        password_hash: r.try_get("password_hash")?,
        fiscal_code: r.try_get("fiscal_code")?,
        full_name: r.try_get("full_name")?,
        email: r.try_get("email")?,
        rights: Rights {
            role: role.parse::<Role>().map_err(|_| corrupt("ruolo"))?,
            ente: r.try_get("ente")?,
            grants: serde_json::from_str::<Vec<(Area, Access)>>(&grants)
                .map_err(|_| corrupt("aree"))?,
            offices: serde_json::from_str(&offices).map_err(|_| corrupt("uffici"))?,
        },
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        must_change_password: r.try_get::<i64, _>("must_change_password")? != 0,
        failed_attempts: u32::try_from(r.try_get::<i64, _>("failed_attempts")?).unwrap_or(u32::MAX),
        locked_until: opt_from_micros(r.try_get("locked_until")?),
        created_at: from_micros(r.try_get("created_at")?),
        updated_at: from_micros(r.try_get("updated_at")?),
    })
}

fn json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

impl Store {
    /// Adds an operator; a username or fiscal code already taken is a
    /// conflict.
    pub async fn create_operator(&self, o: &NewOperator, now: DateTime<Utc>) -> Result<i64> {
        let res = sqlx::query_scalar::<_, i64>(
            "INSERT INTO operators (username, password_hash, fiscal_code, full_name, email, ente, role,
                grants, offices, disabled, must_change_password, failed_attempts, locked_until,
                created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, 0, NULL, $11, $11) RETURNING id",
        )
        .bind(o.username.to_lowercase())
        .bind(o.password_hash.as_deref())
        .bind(o.fiscal_code.as_ref().map(|f| f.to_uppercase()))
        .bind(&o.full_name)
        .bind(o.email.as_deref())
        .bind(o.rights.ente.as_deref())
        .bind(o.rights.role.as_str())
        .bind(json(&o.rights.grants))
        .bind(json(&o.rights.offices))
        .bind(i64::from(o.must_change_password))
        .bind(to_micros(now))
        .fetch_one(&self.writer)
        .await;
        let id = match res {
            Ok(id) => id,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::Conflict(
                    "nome utente o codice fiscale già usati da un altro operatore".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        Ok(id)
    }

    pub async fn operator(&self, id: i64) -> Result<OperatorRecord> {
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OPERATOR_COLUMNS} FROM operators WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("operatore"))?;
        operator_of_row(&r)
    }

    /// The operator who signs in as `username` (any letter case).
    pub async fn operator_by_username(&self, username: &str) -> Result<Option<OperatorRecord>> {
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OPERATOR_COLUMNS} FROM operators WHERE username = $1"
        )))
        .bind(username.trim().to_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(operator_of_row).transpose()
    }

    /// The operator whose SPID/CIE identity has `fiscal_code`.
    pub async fn operator_by_fiscal_code(
        &self,
        fiscal_code: &str,
    ) -> Result<Option<OperatorRecord>> {
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OPERATOR_COLUMNS} FROM operators WHERE fiscal_code = $1"
        )))
        .bind(fiscal_code.trim().to_uppercase())
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(operator_of_row).transpose()
    }

    /// The operators of `ente` (of the intermediary when `None`), by
    /// username, `limit` of them after `after`.
    pub async fn list_operators(
        &self,
        ente: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OperatorRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OPERATOR_COLUMNS} FROM operators
             WHERE (($1 = '' AND ente IS NULL) OR ente = $1) AND username > $2
             ORDER BY username LIMIT $3"
        )))
        .bind(ente.unwrap_or(""))
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit.clamp(1, 10_001)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(operator_of_row).collect()
    }

    /// Changes an operator's data and rights (an administrator's edit); a
    /// fiscal code already taken is a conflict.
    pub async fn update_operator(
        &self,
        id: i64,
        full_name: &str,
        fiscal_code: Option<&str>,
        email: Option<&str>,
        rights: &Rights,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let res = sqlx::query(
            "UPDATE operators SET full_name = $2, fiscal_code = $3, email = $4, ente = $5,
                role = $6, grants = $7, offices = $8, updated_at = $9
             WHERE id = $1",
        )
        .bind(id)
        .bind(full_name)
        .bind(fiscal_code.map(|f| f.to_uppercase()))
        .bind(email)
        .bind(rights.ente.as_deref())
        .bind(rights.role.as_str())
        .bind(json(&rights.grants))
        .bind(json(&rights.offices))
        .bind(to_micros(now))
        .execute(&self.writer)
        .await;
        match res {
            Ok(r) if r.rows_affected() == 1 => Ok(()),
            Ok(_) => Err(StoreError::NotFound("operatore")),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict(
                "codice fiscale già usato da un altro operatore".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// How many enabled administrators `ente` has (the intermediary's when
    /// `None`), so that the last one is never disabled nor demoted.
    pub async fn count_enabled_admins(&self, ente: Option<&str>) -> Result<i64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM operators WHERE disabled = 0
             AND (($1 = '' AND ente IS NULL AND role = 'INTERMEDIARY_ADMIN')
                  OR (ente = $1 AND role = 'ENTE_ADMIN'))",
        )
        .bind(ente.unwrap_or(""))
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    /// Records a failed sign-in: one more failure, and the wait it earns.
    pub async fn record_sign_in_failure(
        &self,
        id: i64,
        failures: u32,
        locked_until: Option<DateTime<Utc>>,
    ) -> Result<()> {
        sqlx::query("UPDATE operators SET failed_attempts = $2, locked_until = $3 WHERE id = $1")
            .bind(id)
            .bind(i64::from(failures))
            .bind(opt_to_micros(locked_until))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// A sign-in that succeeded: the failures are forgotten.
    pub async fn record_sign_in_success(&self, id: i64) -> Result<()> {
        sqlx::query("UPDATE operators SET failed_attempts = 0, locked_until = NULL WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Sets an operator's password hash (a change by its owner, or a reset
    /// by an administrator, who then makes them change it at sign-in);
    /// failures and waits are forgotten.
    pub async fn set_operator_password(
        &self,
        id: i64,
        password_hash: &str,
        must_change: bool,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE operators SET password_hash = $2, must_change_password = $3,
                failed_attempts = 0, locked_until = NULL, updated_at = $4
             WHERE id = $1",
        )
        .bind(id)
        .bind(password_hash)
        .bind(i64::from(must_change))
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?
        .rows_affected();
        if done != 1 {
            return Err(StoreError::NotFound("operatore"));
        }
        Ok(())
    }

    /// Disables or enables an operator; disabling ends their sessions.
    pub async fn set_operator_disabled(
        &self,
        id: i64,
        disabled: bool,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE operators SET disabled = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(i64::from(disabled))
            .bind(to_micros(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if done != 1 {
            return Err(StoreError::NotFound("operatore"));
        }
        if disabled {
            sqlx::query("DELETE FROM operator_sessions WHERE operator_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    // ------------------------------------------------------------ sessions

    /// Opens a session for `operator_id` under the token's hash.
    pub async fn open_session(
        &self,
        token_hash: &str,
        operator_id: i64,
        csrf: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO operator_sessions (token_hash, operator_id, csrf, created_at, last_seen)
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(token_hash)
        .bind(operator_id)
        .bind(csrf)
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The session under `token_hash`: its operator, CSRF token, opening
    /// and last use.
    pub async fn session(
        &self,
        token_hash: &str,
    ) -> Result<Option<(i64, String, DateTime<Utc>, DateTime<Utc>)>> {
        let r = sqlx::query(
            "SELECT operator_id, csrf, created_at, last_seen FROM operator_sessions
             WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        r.map(|r| {
            Ok((
                r.try_get("operator_id")?,
                r.try_get("csrf")?,
                from_micros(r.try_get("created_at")?),
                from_micros(r.try_get("last_seen")?),
            ))
        })
        .transpose()
    }

    /// Marks the session used now.
    pub async fn touch_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE operator_sessions SET last_seen = $2 WHERE token_hash = $1")
            .bind(token_hash)
            .bind(to_micros(now))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn close_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM operator_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Removes the sessions idle since `idle_before` or opened before
    /// `opened_before`; answers how many.
    pub async fn close_expired_sessions(
        &self,
        idle_before: DateTime<Utc>,
        opened_before: DateTime<Utc>,
    ) -> Result<u64> {
        let n =
            sqlx::query("DELETE FROM operator_sessions WHERE last_seen < $1 OR created_at < $2")
                .bind(to_micros(idle_before))
                .bind(to_micros(opened_before))
                .execute(&self.writer)
                .await?
                .rows_affected();
        Ok(n)
    }

    // ------------------------------------------------------------ audit log

    /// Appends an event to the audit log. There is no update nor delete.
    pub async fn audit(&self, e: &AuditEvent) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, ente, action, object, outcome, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(to_micros(e.at))
        .bind(&e.actor)
        .bind(e.ente.as_deref())
        .bind(&e.action)
        .bind(&e.object)
        .bind(&e.outcome)
        .bind(&e.detail)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The audit log of `ente` (of the intermediary's own events when
    /// `None`), newest first, `limit` events before the event `before`,
    /// those whose actor, action or object contains `text`.
    pub async fn audit_events(
        &self,
        ente: Option<&str>,
        text: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(i64, AuditEvent)>> {
        let pattern = text
            .filter(|t| !t.is_empty())
            .map(|t| {
                let mut p = String::from("%");
                for c in t.chars() {
                    if matches!(c, '%' | '_' | '\\') {
                        p.push('\\');
                    }
                    p.push(c);
                }
                p.push('%');
                p
            })
            .unwrap_or_default();
        let rows = sqlx::query(
            "SELECT id, at, actor, ente, action, object, outcome, detail FROM audit_log
             WHERE (($1 = '' AND ente IS NULL) OR ente = $1) AND id < $2
               AND ($3 = '' OR actor LIKE $3 ESCAPE '\\' OR action LIKE $3 ESCAPE '\\'
                    OR object LIKE $3 ESCAPE '\\')
             ORDER BY id DESC LIMIT $4",
        )
        .bind(ente.unwrap_or(""))
        .bind(before.unwrap_or(i64::MAX))
        .bind(pattern)
        .bind(i64::from(limit.clamp(1, 10_001)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    AuditEvent {
                        at: from_micros(r.try_get("at")?),
                        actor: r.try_get("actor")?,
                        ente: r.try_get("ente")?,
                        action: r.try_get("action")?,
                        object: r.try_get("object")?,
                        outcome: r.try_get("outcome")?,
                        detail: r.try_get("detail")?,
                    },
                ))
            })
            .collect()
    }
}
