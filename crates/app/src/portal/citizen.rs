//! A citizen signs in to the portal with SPID or CIE, through the same
//! OpenID Connect identity proxy and the same checks as the back office
//! ([`crate::spid`]), and gets a session of their own: not an operator's,
//! with shorter timeouts (15 minutes idle, 8 hours in all), and no right
//! on any Ente. The session's token is kept only as its SHA-256, and the
//! CSRF token of the personal area's forms is bound to it.
//!
//! Every Ente's portal shares one redirect URI; the Ente a sign-in started
//! from is kept in the store under the request's state, so that it never
//! travels in a URL.

use crate::error::{AppError, At, Kind, Place};
use crate::identity::CitizenIdentity;
use crate::spid::{self, Answer, Started};
use crate::{App, Caller};
use chrono::Duration;
use incasso_store::CitizenSessionRecord;
use sha2::{Digest, Sha256};

/// A session ends after this long without use...
pub const IDLE_TIMEOUT: Duration = Duration::minutes(15);
/// ...and this long after sign-in, whatever happens.
pub const ABSOLUTE_TIMEOUT: Duration = Duration::hours(8);
/// A session's last use is written at most this often.
const TOUCH_EVERY: Duration = Duration::seconds(30);
/// The audit log's name of a sign-out.
const SIGN_OUT: &str = "citizen.sign_out";

/// An open session: the token for the cookie (never stored: only its
/// SHA-256 is), the CSRF token of its forms, who, and the Ente whose
/// portal the sign-in started from.
#[derive(Debug, Clone)]
pub struct CitizenSession {
    pub token: String,
    pub csrf: String,
    pub citizen: CitizenIdentity,
    pub ente: String,
}

fn sha256_hex(s: &str) -> String {
    crate::keys::hex(&Sha256::digest(s.as_bytes()))
}

fn random_hex(bytes: usize) -> Result<String, AppError> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).map_err(|e| {
        AppError::internal(
            &Place::new("citizen.random", "", ""),
            &std::io::Error::other(e.to_string()),
        )
    })?;
    Ok(crate::keys::hex(&b))
}

fn expired() -> AppError {
    AppError::new(
        Kind::Unauthenticated,
        "SESSION_EXPIRED",
        "sessione scaduta: accedere di nuovo con SPID o CIE",
    )
}

/// Starts a sign-in from the portal of `ente`: the provider's URL, and the
/// `state` the door binds to the browser. The answer is to come back to
/// `redirect_uri` (the portal's one callback).
pub async fn start(app: &App, ente: &str, redirect_uri: &str) -> Result<Started, AppError> {
    let place = Place::new("citizen.start", ente, "");
    // An unknown Ente has no portal to come back to.
    app.store.get_ente(ente).await.at(place)?;
    let started = spid::start(app, redirect_uri).await?;
    let now = app.clock.now();
    app.store
        .save_citizen_sign_in(
            &sha256_hex(&started.state),
            ente,
            now,
            now - spid::REQUEST_TTL,
        )
        .await
        .at(place)?;
    Ok(started)
}

/// Finishes a sign-in with what came back to the redirect URI: the Ente it
/// started from (when the request is known) and the session, or the
/// refusal (in the audit log).
pub async fn finish(
    app: &App,
    answer: Answer<'_>,
) -> (Option<String>, Result<CitizenSession, AppError>) {
    let place = Place::new("citizen.finish", "", "");
    // Only the browser that started the request takes it out: another's
    // (a forged link) cannot spoil it.
    let bound = match (answer.state, answer.browser_state) {
        (Some(state), Some(browser)) if !state.is_empty() && state == browser => Some(state),
        _ => None,
    };
    let started = match bound {
        Some(state) => match app
            .store
            .take_citizen_sign_in(&sha256_hex(state))
            .await
            .at(place)
        {
            Ok(found) => found,
            Err(e) => return (None, Err(e)),
        },
        None => None,
    };
    let ente = started.as_ref().map(|(e, _)| e.clone());
    // A request the portal did not start (the back office's, or none) is
    // refused by the provider's checks as a state this browser does not
    // hold: the same answer, and the same line in the audit log.
    let answer = if started.is_some() {
        answer
    } else {
        Answer {
            browser_state: None,
            ..answer
        }
    };
    let result = async {
        let citizen = spid::finish_citizen(app, answer).await?;
        let ente = ente.clone().unwrap_or_default();
        open_session(app, citizen, ente).await
    }
    .await;
    (ente, result)
}

/// A new session for `citizen`.
async fn open_session(
    app: &App,
    citizen: CitizenIdentity,
    ente: String,
) -> Result<CitizenSession, AppError> {
    let now = app.clock.now();
    let token = random_hex(32)?;
    let csrf = random_hex(32)?;
    app.store
        .open_citizen_session(
            &sha256_hex(&token),
            &CitizenSessionRecord {
                fiscal_code: citizen.fiscal_code.clone(),
                name: citizen.name.clone(),
                csrf: csrf.clone(),
                created_at: now,
                last_seen: now,
            },
            now - IDLE_TIMEOUT,
            now - ABSOLUTE_TIMEOUT,
        )
        .await
        .at(Place::new("citizen.sign_in", &ente, ""))?;
    Ok(CitizenSession {
        token,
        csrf,
        citizen,
        ente,
    })
}

/// The citizen of the session under `token`, and its CSRF token; an ended
/// session (idle too long, too old, signed out) is `SESSION_EXPIRED`.
pub async fn session(app: &App, token: &str) -> Result<(CitizenIdentity, String), AppError> {
    let now = app.clock.now();
    let hash = sha256_hex(token);
    let place = Place::new("citizen.session", "", "");
    let Some(s) = app.store.citizen_session(&hash).await.at(place)? else {
        return Err(expired());
    };
    if now - s.last_seen > IDLE_TIMEOUT || now - s.created_at > ABSOLUTE_TIMEOUT {
        app.store.close_citizen_session(&hash).await.at(place)?;
        return Err(expired());
    }
    if now - s.last_seen > TOUCH_EVERY {
        app.store
            .touch_citizen_session(&hash, now)
            .await
            .at(place)?;
    }
    Ok((
        CitizenIdentity {
            fiscal_code: s.fiscal_code,
            name: s.name,
        },
        s.csrf,
    ))
}

/// Ends the session under `token` (signed out: in the audit log).
pub async fn sign_out(app: &App, token: &str) -> Result<(), AppError> {
    let place = Place::new("citizen.sign_out", "", "");
    let hash = sha256_hex(token);
    if let Some(s) = app.store.citizen_session(&hash).await.at(place)? {
        let actor = Caller::Citizen(CitizenIdentity {
            fiscal_code: s.fiscal_code,
            name: s.name,
        })
        .actor();
        crate::audit::record(app, &actor, None, SIGN_OUT, "", "OK").await;
    }
    app.store.close_citizen_session(&hash).await.at(place)
}
