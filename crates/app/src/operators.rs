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

/// A new session for `o` (after a password, or SPID/CIE in [`crate::spid`]).
pub(crate) async fn open_session(
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
        (Some(ente), _) => {
            ctx.caller.require(ente, Area::Users, Access::Write)?;
            if within_reach(ctx, ente, rights, true) {
                Ok(())
            } else {
                Err(out_of_reach())
            }
        }
    }
}

/// Who may see the account of `rights`: as [`require_manager`], reading.
fn require_reader(ctx: &Ctx, rights: &Rights) -> Result<(), AppError> {
    match (&rights.ente, rights.role) {
        (_, Role::IntermediaryAdmin) | (None, _) => ctx.caller.require_intermediary(),
        (Some(ente), _) => {
            ctx.caller.require(ente, Area::Users, Access::Read)?;
            if within_reach(ctx, ente, rights, false) {
                Ok(())
            } else {
                Err(out_of_reach())
            }
        }
    }
}

fn out_of_reach() -> AppError {
    AppError::new(
        Kind::Forbidden,
        "FORBIDDEN",
        "l'operatore è fuori dagli uffici o dai permessi di chi lo gestisce",
    )
}

/// An operator limited to offices who is granted the Users area (an
/// office's head) reaches only office operators and counter clerks of
/// their own offices; managing them, they give nothing they do not have
/// themselves, so a grant of Users never becomes a way up to more.
fn within_reach(ctx: &Ctx, ente: &str, rights: &Rights, managing: bool) -> bool {
    let Caller::Operator(me) = &ctx.caller else {
        return true;
    };
    let Some(mine) = me.rights.office_scope() else {
        return true;
    };
    let offices_ok = matches!(rights.role, Role::OfficeOperator | Role::CounterClerk)
        && !rights.offices.is_empty()
        && rights.offices.iter().all(|o| mine.contains(o));
    let grants_ok = !managing
        || Area::ALL.iter().all(|area| {
            [Access::Read, Access::Write].iter().all(|access| {
                !rights.may(ente, *area, *access) || me.rights.may(ente, *area, *access)
            })
        });
    offices_ok && grants_ok
}

/// The checks an operator's data must pass, on creation as on an edit.
fn check_person(
    full_name: &str,
    fiscal_code: Option<&str>,
    email: Option<&str>,
    rights: &Rights,
) -> Result<(), AppError> {
    if full_name.trim().is_empty() || full_name.chars().count() > 140 {
        return Err(AppError::invalid(
            "BAD_NAME",
            "fullName: obbligatorio, al più 140 caratteri",
        ));
    }
    rights
        .check()
        .map_err(|m| AppError::invalid("BAD_RIGHTS", m))?;
    if let Some(fc) = fiscal_code {
        incasso_core::codes::check_personal_fiscal_code(&fc.to_uppercase()).map_err(|e| {
            AppError::invalid(
                "BAD_FISCAL_CODE",
                format!("fiscalCode: codice fiscale non valido ({e})"),
            )
        })?;
    }
    if let Some(email) = email
        && (email.len() > 254 || !email.contains('@') || email.contains(char::is_whitespace))
    {
        return Err(AppError::invalid(
            "BAD_EMAIL",
            "email: indirizzo di posta elettronica non valido",
        ));
    }
    Ok(())
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
    check_person(
        &input.full_name,
        input.fiscal_code.as_deref(),
        input.email.as_deref(),
        &input.rights,
    )?;
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
    if disabled && !o.disabled {
        keep_an_administrator(ctx, &o).await?;
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

/// Refuses to take away `o`'s administration (disabling them, or another
/// role) when they are the last enabled administrator of their Ente (or of
/// the intermediary): nobody could then manage its people from inside.
/// incasso itself (the machine's operator, at the command line) is not held
/// by it: it is the way back in whatever the accounts.
async fn keep_an_administrator(ctx: &Ctx, o: &OperatorRecord) -> Result<(), AppError> {
    if !matches!(o.rights.role, Role::EnteAdmin | Role::IntermediaryAdmin)
        || o.disabled
        || matches!(ctx.caller, Caller::System(_))
    {
        return Ok(());
    }
    let ente = o.rights.ente.as_deref();
    let admins = ctx.store().count_enabled_admins(ente).await.at(Place::new(
        "operators.last_admin",
        ente.unwrap_or(""),
        &o.username,
    ))?;
    if admins <= 1 {
        return Err(AppError::conflict(
            "LAST_ADMINISTRATOR",
            "è l'ultimo amministratore attivo: nominarne prima un altro",
        ));
    }
    Ok(())
}

/// An operator as an administrator sees them: never their password's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorView {
    pub id: i64,
    pub username: String,
    pub full_name: String,
    pub fiscal_code: Option<String>,
    pub email: Option<String>,
    pub rights: Rights,
    pub disabled: bool,
    pub must_change_password: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn view_of(o: OperatorRecord) -> OperatorView {
    OperatorView {
        id: o.id,
        username: o.username,
        full_name: o.full_name,
        fiscal_code: o.fiscal_code,
        email: o.email,
        rights: o.rights,
        disabled: o.disabled,
        must_change_password: o.must_change_password,
        created_at: o.created_at,
        updated_at: o.updated_at,
    }
}

/// The operators of `ente` the caller may see (Users area, read), by
/// username; the intermediary's administrator sees their own colleagues
/// too, an office's head only the people of their offices.
pub async fn list(ctx: &Ctx, ente: &str) -> Result<Vec<OperatorView>, AppError> {
    ctx.caller.require(ente, Area::Users, Access::Read)?;
    let place = Place::new("operators.list", ente, "");
    ctx.store().get_ente(ente).await.at(place)?;
    let mut scopes = vec![Some(ente)];
    if ctx.caller.is_intermediary() {
        scopes.push(None);
    }
    let mut out = Vec::new();
    for scope in scopes {
        let mut after: Option<String> = None;
        loop {
            let chunk = ctx
                .store()
                .list_operators(scope, after.as_deref(), 1000)
                .await
                .at(place)?;
            let full = chunk.len() == 1000;
            after = chunk.last().map(|o| o.username.clone());
            out.extend(
                chunk
                    .into_iter()
                    .filter(|o| require_reader(ctx, &o.rights).is_ok())
                    .map(view_of),
            );
            if !full {
                break;
            }
        }
    }
    out.sort_by(|a, b| a.username.cmp(&b.username));
    Ok(out)
}

/// One operator, for whoever may see their account.
pub async fn get(ctx: &Ctx, id: i64) -> Result<OperatorView, AppError> {
    let o = ctx
        .store()
        .operator(id)
        .await
        .at(Place::new("operators.get", "", &id.to_string()))?;
    require_reader(ctx, &o.rights)?;
    Ok(view_of(o))
}

/// What an administrator may change of an operator: everything but their
/// username and password.
#[derive(Debug, Clone)]
pub struct OperatorChange {
    pub full_name: String,
    pub fiscal_code: Option<String>,
    pub email: Option<String>,
    pub rights: Rights,
}

/// An administrator changes an operator's data and rights: both the
/// account as it is and as it will be must be theirs to manage; nobody
/// changes their own rights, and the last administrator stays one.
pub async fn update(ctx: &Ctx, id: i64, change: OperatorChange) -> Result<(), AppError> {
    let o = managed(ctx, id, "operators.update").await?;
    let result = async {
        require_manager(ctx, &change.rights)?;
        if let Caller::Operator(me) = &ctx.caller
            && me.id == o.id
            && change.rights != o.rights
        {
            return Err(AppError::new(
                Kind::Forbidden,
                "SELF_RIGHTS",
                "non si possono modificare i propri permessi: deve farlo un altro amministratore",
            ));
        }
        check_person(
            &change.full_name,
            change.fiscal_code.as_deref(),
            change.email.as_deref(),
            &change.rights,
        )?;
        let same_admin = change.rights.role == o.rights.role && change.rights.ente == o.rights.ente;
        if !same_admin {
            keep_an_administrator(ctx, &o).await?;
        }
        ctx.store()
            .update_operator(
                o.id,
                change.full_name.trim(),
                change.fiscal_code.as_deref(),
                change.email.as_deref(),
                &change.rights,
                ctx.now(),
            )
            .await
            .at(Place::new("operators.update", "", &o.username))
    }
    .await;
    audit::outcome(
        ctx,
        o.rights.ente.as_deref(),
        "operator.update",
        &o.username,
        &result,
    )
    .await;
    result
}

/// A provisional password that the policy accepts, for a new account or
/// an administrator's reset: shown once, changed at the first sign-in.
pub fn provisional_password(username: &str) -> Result<String, AppError> {
    for _ in 0..100 {
        let p = random_password()?;
        if access::check_password(username, &p).is_ok() {
            return Ok(p);
        }
    }
    // Only a username that every random password contains gets here.
    Err(AppError::invalid(
        "BAD_USERNAME",
        "username: nessuna password provvisoria lo evita: sceglierne uno più lungo",
    ))
}

fn random_password() -> Result<String, AppError> {
    // Letters without look-alikes (no l, I, O, 0, 1), in groups a person
    // can copy by hand; a fixed upper case, digit and symbol make the
    // policy's three kinds certain.
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| {
        AppError::internal(
            &Place::new("operators.provisional_password", "", ""),
            &std::io::Error::other(e.to_string()),
        )
    })?;
    let chars: String = bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    Ok(format!(
        "{}-{}-{}-Z9",
        &chars[..5],
        &chars[5..10],
        &chars[10..16]
    ))
}
