//! The back office's people: operators, their sign-in with a password,
//! their sessions, and what administrators do to their accounts. Every
//! write goes to the audit log ([`crate::audit`]).
//!
//! Passwords are kept as Argon2id hashes. A wrong password, an unknown
//! name, a disabled account and an account waiting after too many failures
//! all get the same answer, so that the sign-in page never tells whether an
//! account exists; the wait grows with the failures and stops growing
//! (`core::access::lockout_secs`), so nobody can lock an account for good.

use crate::audit;
use crate::error::{AppError, At, Kind, Place};
use crate::identity::OperatorIdentity;
use crate::{App, Caller, Ctx};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Duration, Utc};
use incasso_core::access::{self, Access, Area, Rights, Role};
use incasso_store::{NewOperator, OperatorRecord};
use sha2::{Digest, Sha256};

/// A session ends after this long without use...
pub const IDLE_TIMEOUT: Duration = Duration::minutes(30);
/// ...and this long after sign-in, whatever happens.
pub const ABSOLUTE_TIMEOUT: Duration = Duration::hours(12);
/// A session's last use is written at most this often.
const TOUCH_EVERY: Duration = Duration::seconds(60);

/// What a failed sign-in says, whatever the reason.
const SIGN_IN_REFUSED: &str = "nome utente o password errati, oppure accesso sospeso per troppi tentativi: riprovare tra qualche minuto";

fn refused() -> AppError {
    AppError::new(Kind::Unauthenticated, "SIGN_IN_REFUSED", SIGN_IN_REFUSED)
}

/// An open session: the token for the cookie (never stored: only its
/// SHA-256 is) and the CSRF token of its forms.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub csrf: String,
    pub operator: OperatorIdentity,
    pub must_change_password: bool,
}

fn identity_of(o: &OperatorRecord) -> OperatorIdentity {
    OperatorIdentity {
        id: o.id,
        username: o.username.clone(),
        full_name: o.full_name.clone(),
        rights: o.rights.clone(),
    }
}

fn random_hex(bytes: usize) -> Result<String, AppError> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).map_err(|e| {
        AppError::internal(
            &Place::new("operators.random", "", ""),
            &std::io::Error::other(e.to_string()),
        )
    })?;
    Ok(crate::keys::hex(&b))
}

fn token_hash(token: &str) -> String {
    crate::keys::hex(&Sha256::digest(token.as_bytes()))
}

/// An Argon2id hash of `password`, with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, AppError> {
    let place = Place::new("operators.hash", "", "");
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)
        .map_err(|e| AppError::internal(&place, &std::io::Error::other(e.to_string())))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| AppError::internal(&place, &std::io::Error::other(e.to_string())))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::internal(&place, &std::io::Error::other(e.to_string())))
}

fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash that matches no password, checked when the name is unknown so
/// that an unknown name takes as long as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy: never a password").unwrap_or_default())
}

async fn open_session(
    app: &App,
    o: &OperatorRecord,
    now: DateTime<Utc>,
) -> Result<Session, AppError> {
    let token = random_hex(32)?;
    let csrf = random_hex(32)?;
    app.store
        .open_session(&token_hash(&token), o.id, &csrf, now)
        .await
        .at(Place::new("operators.sign_in", "", &o.username))?;
    Ok(Session {
        token,
        csrf,
        operator: identity_of(o),
        must_change_password: o.must_change_password,
    })
}

/// Signs in with a username and a password: a session, or the one answer
/// every failure gets.
pub async fn sign_in(app: &App, username: &str, password: &str) -> Result<Session, AppError> {
    let now = app.clock.now();
    let place = Place::new("operators.sign_in", "", username);
    let found = app.store.operator_by_username(username).await.at(place)?;
    let Some(o) = found else {
        verify_password(decoy_hash(), password);
        audit::record(
            app,
            "anonymous",
            None,
            "operator.sign_in",
            username,
            "UNKNOWN_USER",
        )
        .await;
        return Err(refused());
    };
    let ente = o.rights.ente.as_deref();
    let actor = format!("operator:{}", o.username);
    if o.disabled {
        audit::record(
            app,
            &actor,
            ente,
            "operator.sign_in",
            &o.username,
            "DISABLED",
        )
        .await;
        return Err(refused());
    }
    if o.locked_until.is_some_and(|t| t > now) {
        audit::record(app, &actor, ente, "operator.sign_in", &o.username, "LOCKED").await;
        return Err(refused());
    }
    let ok = o
        .password_hash
        .as_deref()
        .is_some_and(|h| verify_password(h, password));
    if !ok {
        let failures = o.failed_attempts.saturating_add(1);
        let until = access::lockout_secs(failures).map(|s| now + Duration::seconds(s));
        app.store
            .record_sign_in_failure(o.id, failures, until)
            .await
            .at(place)?;
        audit::record(
            app,
            &actor,
            ente,
            "operator.sign_in",
            &o.username,
            "WRONG_PASSWORD",
        )
        .await;
        return Err(refused());
    }
    app.store.record_sign_in_success(o.id).await.at(place)?;
    let session = open_session(app, &o, now).await?;
    audit::record(app, &actor, ente, "operator.sign_in", &o.username, "OK").await;
    Ok(session)
}

/// The signed-in operator of a session token, and its CSRF token; a
/// session idle or too old is closed and refused.
pub async fn session(app: &App, token: &str) -> Result<(OperatorIdentity, String, bool), AppError> {
    let now = app.clock.now();
    let hash = token_hash(token);
    let place = Place::new("operators.session", "", "");
    let expired = || {
        AppError::new(
            Kind::Unauthenticated,
            "SESSION_EXPIRED",
            "sessione scaduta: accedere di nuovo",
        )
    };
    let Some((operator_id, csrf, opened, last_seen)) = app.store.session(&hash).await.at(place)?
    else {
        return Err(expired());
    };
    if now - last_seen > IDLE_TIMEOUT || now - opened > ABSOLUTE_TIMEOUT {
        app.store.close_session(&hash).await.at(place)?;
        return Err(expired());
    }
    let o = app.store.operator(operator_id).await.at(place)?;
    if o.disabled {
        app.store.close_session(&hash).await.at(place)?;
        return Err(expired());
    }
    if now - last_seen > TOUCH_EVERY {
        app.store.touch_session(&hash, now).await.at(place)?;
    }
    Ok((identity_of(&o), csrf, o.must_change_password))
}

/// Ends a session.
pub async fn sign_out(app: &App, token: &str) -> Result<(), AppError> {
    app.store
        .close_session(&token_hash(token))
        .await
        .at(Place::new("operators.sign_out", "", ""))
}

/// What an administrator gives a new operator.
#[derive(Debug, Clone)]
pub struct NewOperatorInput {
    pub username: String,
    pub full_name: String,
    pub fiscal_code: Option<String>,
    pub email: Option<String>,
    pub rights: Rights,
    /// A first password, to be changed at the first sign-in; none for an
    /// operator who signs in only with SPID/CIE.
    pub password: Option<String>,
}

/// Who may manage the accounts of `rights`: the intermediary's
/// administrator anyone; whoever has the Users area of the Ente in writing
/// (its administrator), that Ente's people but for the intermediary's.
fn require_manager(ctx: &Ctx, rights: &Rights) -> Result<(), AppError> {
    match (&rights.ente, rights.role) {
        (_, Role::IntermediaryAdmin) | (None, _) => ctx.caller.require_intermediary(),
        (Some(ente), _) => ctx.caller.require(ente, Area::Users, Access::Write),
    }
}

/// Adds an operator.
pub async fn create(ctx: &Ctx, input: NewOperatorInput) -> Result<i64, AppError> {
    require_manager(ctx, &input.rights)?;
    let ente = input.rights.ente.clone();
    let place = Place::new(
        "operators.create",
        ente.as_deref().unwrap_or(""),
        &input.username,
    );
    let username = input.username.trim().to_lowercase();
    if username.is_empty()
        || username.len() > 64
        || !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(AppError::invalid(
            "BAD_USERNAME",
            "username: da 1 a 64 tra lettere, cifre e . _ - @",
        ));
    }
    if input.full_name.trim().is_empty() {
        return Err(AppError::invalid("BAD_NAME", "fullName: obbligatorio"));
    }
    input
        .rights
        .check()
        .map_err(|m| AppError::invalid("BAD_RIGHTS", m))?;
    if let Some(fc) = &input.fiscal_code {
        incasso_core::codes::check_personal_fiscal_code(&fc.to_uppercase()).map_err(|e| {
            AppError::invalid(
                "BAD_FISCAL_CODE",
                format!("fiscalCode: codice fiscale non valido ({e})"),
            )
        })?;
    }
    let password_hash = match &input.password {
        Some(p) => {
            access::check_password(&username, p)
                .map_err(|m| AppError::invalid("WEAK_PASSWORD", format!("password: {m}")))?;
            Some(hash_password(p)?)
        }
        None => None,
    };
    let result = ctx
        .store()
        .create_operator(
            &NewOperator {
                username: username.clone(),
                password_hash,
                fiscal_code: input.fiscal_code.clone(),
                full_name: input.full_name.trim().to_string(),
                email: input.email.clone(),
                rights: input.rights.clone(),
                must_change_password: input.password.is_some(),
            },
            ctx.now(),
        )
        .await
        .at(place);
    audit::outcome(ctx, ente.as_deref(), "operator.create", &username, &result).await;
    result
}

/// The operator `id`, for a manager of their account.
async fn managed(ctx: &Ctx, id: i64, use_case: &'static str) -> Result<OperatorRecord, AppError> {
    let o = ctx
        .store()
        .operator(id)
        .await
        .at(Place::new(use_case, "", &id.to_string()))?;
    require_manager(ctx, &o.rights)?;
    Ok(o)
}

/// An operator changes their own password, proving the current one.
pub async fn change_password(ctx: &Ctx, current: &str, new: &str) -> Result<(), AppError> {
    let Caller::Operator(me) = &ctx.caller else {
        return Err(AppError::forbidden());
    };
    let place = Place::new("operators.change_password", "", &me.username);
    let o = ctx.store().operator(me.id).await.at(place)?;
    let result = async {
        if !o
            .password_hash
            .as_deref()
            .is_some_and(|h| verify_password(h, current))
        {
            return Err(AppError::invalid(
                "WRONG_PASSWORD",
                "currentPassword: la password attuale non è corretta",
            ));
        }
        if current == new {
            return Err(AppError::invalid(
                "SAME_PASSWORD",
                "newPassword: deve essere diversa da quella attuale",
            ));
        }
        access::check_password(&o.username, new)
            .map_err(|m| AppError::invalid("WEAK_PASSWORD", format!("newPassword: {m}")))?;
        ctx.store()
            .set_operator_password(o.id, &hash_password(new)?, false, ctx.now())
            .await
            .at(place)
    }
    .await;
    audit::outcome(
        ctx,
        o.rights.ente.as_deref(),
        "operator.change_password",
        &o.username,
        &result,
    )
    .await;
    result
}

/// An administrator sets a new password for an operator, who must change
/// it at their next sign-in; waits after failures are forgotten.
pub async fn reset_password(ctx: &Ctx, id: i64, password: &str) -> Result<(), AppError> {
    let o = managed(ctx, id, "operators.reset_password").await?;
    access::check_password(&o.username, password)
        .map_err(|m| AppError::invalid("WEAK_PASSWORD", format!("password: {m}")))?;
    let result = ctx
        .store()
        .set_operator_password(o.id, &hash_password(password)?, true, ctx.now())
        .await
        .at(Place::new("operators.reset_password", "", &o.username));
    audit::outcome(
        ctx,
        o.rights.ente.as_deref(),
        "operator.reset_password",
        &o.username,
        &result,
    )
    .await;
    result
}

/// An administrator disables (or enables again) an operator; disabling
/// ends their sessions at once.
pub async fn set_disabled(ctx: &Ctx, id: i64, disabled: bool) -> Result<(), AppError> {
    let o = managed(ctx, id, "operators.set_disabled").await?;
    if let Caller::Operator(me) = &ctx.caller
        && me.id == o.id
        && disabled
    {
        return Err(AppError::invalid(
            "SELF_DISABLE",
            "non si può disattivare il proprio account",
        ));
    }
    let result = ctx
        .store()
        .set_operator_disabled(o.id, disabled, ctx.now())
        .await
        .at(Place::new("operators.set_disabled", "", &o.username));
    let action = if disabled {
        "operator.disable"
    } else {
        "operator.enable"
    };
    audit::outcome(ctx, o.rights.ente.as_deref(), action, &o.username, &result).await;
    result
}
