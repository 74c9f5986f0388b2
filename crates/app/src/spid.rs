//! Sign-in with SPID/CIE through an OpenID Connect identity proxy (as the
//! Enti's Satosa-Saml2Spid): the operator is matched by fiscal code.
//!
//! The flow is the authorization code flow with PKCE (S256), `state` and
//! `nonce`. [`start`] keeps the request in the store (any process may see
//! its answer back) and gives the provider's URL; [`finish`] takes it out
//! (once), exchanges the code at the token endpoint with the client's
//! secret and the PKCE verifier, checks the ID token's RS256 signature
//! against the provider's JWKS (both found through its discovery document)
//! and its `iss`, `aud`, `exp`, `iat` and `nonce`, and opens the same
//! session as a password sign-in for the operator whose fiscal code is the
//! token's `fiscalNumber` (`TINIT-<fiscal code>`).
//!
//! The JWT is read here in a few dozen lines with ring (already built for
//! TLS and the store) rather than through a JWT or OIDC crate: openidconnect
//! brings a second reqwest and its own RSA and elliptic-curve stacks, and
//! jsonwebtoken's RS256 needs a crypto backend of its own (RustCrypto's
//! rsa, p256, p384, ed25519 or aws-lc).
//!
//! The citizen portal signs in through the same provider and the same
//! checks: [`finish_citizen`] answers the verified identity (fiscal code
//! and name) instead of an operator's session.
//!
//! Every refusal is in the audit log. An unknown fiscal code and a disabled
//! account get the same answer, so that nothing tells whether an account
//! exists.

use crate::App;
use crate::audit;
use crate::error::{AppError, At, Kind, Place};
use crate::operators::{self, Session};
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use incasso_store::OidcRequest;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The identity proxy incasso is a client of.
#[derive(Clone, PartialEq, Eq)]
pub struct SpidSettings {
    /// The provider's issuer URL; its discovery document is at
    /// `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for SpidSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpidSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .finish()
    }
}

/// How long a person has at the provider before the request is forgotten.
pub const REQUEST_TTL: Duration = Duration::minutes(10);
/// Clocks of the provider and incasso may differ this much.
const LEEWAY_SECS: i64 = 60;
/// The provider's discovery document and keys are fetched again after this.
const PROVIDER_TTL: std::time::Duration = std::time::Duration::from_secs(600);
/// The audit log's name of this sign-in.
const ACTION: &str = "operator.sign_in_spid";
/// The audit log's name of a citizen's sign-in to the portal.
const CITIZEN_ACTION: &str = "citizen.sign_in_spid";

const NOT_CONFIGURED: &str =
    "l'accesso con SPID o CIE non è attivo: accedere con nome utente e password";
const BAD_STATE: &str = "la richiesta di accesso con SPID o CIE è scaduta o non è partita da questo browser: riprovare con «Entra con SPID o CIE»";
const CANCELLED: &str = "accesso con SPID o CIE annullato";
const UNAVAILABLE: &str = "il gestore delle identità SPID/CIE non risponde: riprovare più tardi o accedere con nome utente e password";
const BAD_ANSWER: &str =
    "la risposta del gestore delle identità SPID/CIE non è valida: accesso rifiutato, riprovare";
/// What both an unknown fiscal code and a disabled account are told.
const REFUSED: &str = "accesso con SPID o CIE non consentito: l'identità non è abilitata al back office oppure l'account è sospeso; rivolgersi all'amministratore dell'ente";
/// What a citizen is told when the identity carries no Italian fiscal code.
const NO_FISCAL_CODE: &str = "l'identità digitale usata non riporta un codice fiscale italiano: l'area personale non è disponibile con questa identità";

/// Where to send the person to sign in, and the `state` the door binds to
/// their browser (a cookie) so that only that browser can finish it.
#[derive(Debug, Clone)]
pub struct Started {
    pub url: String,
    pub state: String,
}

/// What came back to the redirect URI.
#[derive(Debug, Clone, Default)]
pub struct Answer<'a> {
    pub state: Option<&'a str>,
    pub code: Option<&'a str>,
    /// The provider's `error`, when the person cancelled or it refused.
    pub error: Option<&'a str>,
    /// The `state` the browser was given at [`start`].
    pub browser_state: Option<&'a str>,
}

/// Whether SPID/CIE sign-in is configured.
pub fn enabled(app: &App) -> bool {
    app.settings.spid.is_some()
}

fn settings(app: &App) -> Result<&SpidSettings, AppError> {
    app.settings
        .spid
        .as_ref()
        .ok_or_else(|| AppError::new(Kind::NotFound, "SPID_NOT_CONFIGURED", NOT_CONFIGURED))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn random(bytes: usize) -> Result<String, AppError> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).map_err(|e| {
        AppError::internal(
            &Place::new("spid.start", "", ""),
            &std::io::Error::other(e.to_string()),
        )
    })?;
    Ok(b64(&b))
}

fn sha256_hex(s: &str) -> String {
    crate::keys::hex(&Sha256::digest(s.as_bytes()))
}

/// Equal, in a time that does not tell how much of a guess was right.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

use crate::identity::masked;

// ---------------------------------------------------------------------------
// The provider: discovery and keys, cached per issuer.

#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Jwk {
    #[serde(default)]
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    n: String,
    #[serde(default)]
    e: String,
}

#[derive(Debug, Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

#[derive(Debug)]
struct Provider {
    discovery: Discovery,
    keys: Vec<Jwk>,
    fetched: std::time::Instant,
}

/// Why the provider could not be used: it did not answer, or answered
/// something that is not what OpenID Connect says.
#[derive(Debug, thiserror::Error)]
enum ProviderError {
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Invalid(String),
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        incasso_pagopa::connector::install_crypto_provider();
        reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(15))
            // The provider's endpoints answer where they are: a redirect is
            // no part of discovery, keys or tokens.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

async fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> Result<T, ProviderError> {
    let resp = client()
        .get(url)
        .send()
        .await
        .map_err(|e| ProviderError::Unreachable(format!("{url}: {e}")))?;
    if resp.status().is_server_error() {
        return Err(ProviderError::Unreachable(format!(
            "{url}: {}",
            resp.status()
        )));
    }
    if !resp.status().is_success() {
        return Err(ProviderError::Invalid(format!("{url}: {}", resp.status())));
    }
    resp.json::<T>()
        .await
        .map_err(|e| ProviderError::Invalid(format!("{url}: {e}")))
}

fn cache() -> &'static Mutex<HashMap<String, Arc<Provider>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Provider>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The provider of `issuer`: from the cache while fresh (unless `refresh`),
/// else its discovery document and keys fetched again.
async fn provider(issuer: &str, refresh: bool) -> Result<Arc<Provider>, ProviderError> {
    let issuer = issuer.trim_end_matches('/');
    if !refresh
        && let Some(p) = cache()
            .lock()
            .expect("spid cache lock")
            .get(issuer)
            .filter(|p| p.fetched.elapsed() < PROVIDER_TTL)
    {
        return Ok(p.clone());
    }
    let discovery: Discovery =
        get_json(&format!("{issuer}/.well-known/openid-configuration")).await?;
    // OpenID Connect Discovery 1.0, 4.3: the document is the issuer's own.
    if discovery.issuer.trim_end_matches('/') != issuer {
        return Err(ProviderError::Invalid(format!(
            "the discovery document names issuer {}, not {issuer}",
            discovery.issuer
        )));
    }
    let keys: JwkSet = get_json(&discovery.jwks_uri).await?;
    let p = Arc::new(Provider {
        discovery,
        keys: keys.keys,
        fetched: std::time::Instant::now(),
    });
    cache()
        .lock()
        .expect("spid cache lock")
        .insert(issuer.to_string(), p.clone());
    Ok(p)
}

// ---------------------------------------------------------------------------
// The ID token.

/// The claims incasso reads.
#[derive(Debug, Clone, Deserialize)]
struct Claims {
    iss: String,
    aud: Audience,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default, rename = "fiscalNumber")]
    fiscal_number: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    given_name: Option<String>,
    #[serde(default)]
    family_name: Option<String>,
}

impl Claims {
    /// The person's name as the provider gave it: `name`, else given and
    /// family name together.
    fn full_name(&self) -> String {
        let given_family = [&self.given_name, &self.family_name]
            .iter()
            .filter_map(|p| p.as_deref().map(str::trim).filter(|p| !p.is_empty()))
            .collect::<Vec<_>>()
            .join(" ");
        match self.name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => given_family,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// Why an ID token is refused (for the log: the person is told only that
/// the answer was not valid).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum TokenError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("algorithm {0} is not RS256")]
    Algorithm(String),
    #[error("no key of the provider matches the token's")]
    UnknownKey,
    #[error("bad signature")]
    Signature,
    #[error("issuer {0}")]
    Issuer(String),
    #[error("audience")]
    Audience,
    #[error("expired")]
    Expired,
    #[error("issued in the future")]
    Future,
    #[error("nonce")]
    Nonce,
}

fn decode_part(part: &str) -> Result<Vec<u8>, TokenError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)
}

/// Checks `token`'s signature with `keys` and its claims against what
/// incasso asked for; its claims if all hold.
fn verify(
    token: &str,
    keys: &[Jwk],
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now: DateTime<Utc>,
) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header: Header =
        serde_json::from_slice(&decode_part(h)?).map_err(|_| TokenError::Malformed)?;
    // Only what the provider announces and incasso checks: never `none`,
    // never an HMAC keyed with something public.
    if header.alg != "RS256" {
        return Err(TokenError::Algorithm(header.alg));
    }
    let rsa: Vec<&Jwk> = keys
        .iter()
        .filter(|k| k.kty == "RSA" && k.use_.as_deref().is_none_or(|u| u == "sig"))
        .collect();
    let key = match &header.kid {
        Some(kid) => rsa.iter().find(|k| k.kid.as_deref() == Some(kid)),
        None if rsa.len() == 1 => rsa.first(),
        None => None,
    }
    .ok_or(TokenError::UnknownKey)?;
    let public = ring::signature::RsaPublicKeyComponents {
        n: decode_part(&key.n)?,
        e: decode_part(&key.e)?,
    };
    let signature = decode_part(s)?;
    let signed = &token[..h.len() + 1 + p.len()];
    public
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            signed.as_bytes(),
            &signature,
        )
        .map_err(|_| TokenError::Signature)?;
    let claims: Claims =
        serde_json::from_slice(&decode_part(p)?).map_err(|_| TokenError::Malformed)?;
    if claims.iss.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(TokenError::Issuer(claims.iss));
    }
    let audience_ok = match &claims.aud {
        Audience::One(a) => a == client_id,
        Audience::Many(all) => {
            all.iter().any(|a| a == client_id)
                && (all.len() == 1 || claims.azp.as_deref() == Some(client_id))
        }
    };
    if !audience_ok {
        return Err(TokenError::Audience);
    }
    let now = now.timestamp();
    if claims.exp + LEEWAY_SECS <= now {
        return Err(TokenError::Expired);
    }
    if claims.iat.is_some_and(|iat| iat > now + LEEWAY_SECS) {
        return Err(TokenError::Future);
    }
    if !claims.nonce.as_deref().is_some_and(|n| same(n, nonce)) {
        return Err(TokenError::Nonce);
    }
    Ok(claims)
}

/// The Italian fiscal code of a `fiscalNumber` claim (`TINIT-...`), if it
/// is one.
fn fiscal_code_of(fiscal_number: &str) -> Option<String> {
    let code = fiscal_number.trim().strip_prefix("TINIT-")?.to_uppercase();
    incasso_core::codes::check_personal_fiscal_code(&code)
        .ok()
        .map(|()| code)
}

// ---------------------------------------------------------------------------
// The use cases.

/// Starts a sign-in: a fresh `state`, `nonce` and PKCE verifier kept in
/// the store, and the provider's authorization URL with the answer to come
/// back to `redirect_uri`.
pub async fn start(app: &App, redirect_uri: &str) -> Result<Started, AppError> {
    let s = settings(app)?;
    let place = Place::new("spid.start", "", "");
    let p = match provider(&s.issuer, false).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, issuer = %s.issuer, "SPID/CIE provider not usable");
            return Err(AppError::new(
                Kind::Unavailable,
                "SPID_UNAVAILABLE",
                UNAVAILABLE,
            ));
        }
    };
    let now = app.clock.now();
    app.store
        .purge_oidc_requests(now - REQUEST_TTL)
        .await
        .at(place)?;
    let state = random(32)?;
    let nonce = random(32)?;
    let verifier = random(32)?;
    let challenge = b64(&Sha256::digest(verifier.as_bytes()));
    app.store
        .save_oidc_request(&OidcRequest {
            state_hash: sha256_hex(&state),
            nonce: nonce.clone(),
            code_verifier: verifier,
            redirect_uri: redirect_uri.to_string(),
            created_at: now,
        })
        .await
        .at(place)?;
    let endpoint = &p.discovery.authorization_endpoint;
    let sep = if endpoint.contains('?') { '&' } else { '?' };
    let url = format!(
        "{endpoint}{sep}response_type=code&client_id={}&redirect_uri={}&scope={}&state={state}&nonce={nonce}&code_challenge={challenge}&code_challenge_method=S256",
        encode(&s.client_id),
        encode(redirect_uri),
        encode("openid profile"),
    );
    Ok(Started { url, state })
}

/// Refuses with `error` after writing it to the audit log.
async fn refuse(
    app: &App,
    actor: &str,
    ente: Option<&str>,
    object: &str,
    error: AppError,
    action: &str,
) -> AppError {
    audit::record(app, actor, ente, action, object, error.code).await;
    error
}

fn bad_answer() -> AppError {
    AppError::new(Kind::Unauthenticated, "SPID_BAD_ANSWER", BAD_ANSWER)
}

fn refused() -> AppError {
    AppError::new(Kind::Unauthenticated, "SPID_REFUSED", REFUSED)
}

/// The provider's answer for this request.
#[derive(Debug, Deserialize)]
struct TokenResponse {
    #[serde(default)]
    id_token: Option<String>,
}

/// Exchanges `code` for the provider's ID token.
async fn exchange(
    s: &SpidSettings,
    p: &Provider,
    request: &OidcRequest,
    code: &str,
) -> Result<String, ProviderError> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", request.redirect_uri.as_str()),
        ("code_verifier", request.code_verifier.as_str()),
    ];
    // client_secret_basic unless the provider takes only the form's.
    let methods = &p.discovery.token_endpoint_auth_methods_supported;
    let basic = methods.is_empty() || methods.iter().any(|m| m == "client_secret_basic");
    let body = if basic {
        form.iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    } else {
        form.push(("client_id", s.client_id.as_str()));
        form.push(("client_secret", s.client_secret.as_str()));
        form.iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let mut req = client()
        .post(&p.discovery.token_endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(body);
    if basic {
        // RFC 6749, 2.3.1: each of them form-encoded before Basic.
        req = req.basic_auth(encode(&s.client_id), Some(encode(&s.client_secret)));
    }
    let resp = req
        .send()
        .await
        .map_err(|e| ProviderError::Unreachable(format!("token endpoint: {e}")))?;
    let status = resp.status();
    if status.is_server_error() {
        return Err(ProviderError::Unreachable(format!(
            "token endpoint: {status}"
        )));
    }
    let text = resp
        .text()
        .await
        .map_err(|e| ProviderError::Unreachable(format!("token endpoint: {e}")))?;
    if !status.is_success() {
        return Err(ProviderError::Invalid(format!(
            "token endpoint: {status} {}",
            text.chars().take(300).collect::<String>()
        )));
    }
    serde_json::from_str::<TokenResponse>(&text)
        .ok()
        .and_then(|t| t.id_token)
        .ok_or_else(|| ProviderError::Invalid("token endpoint: no id_token".into()))
}

/// Checks what came back to the redirect URI and answers the ID token's
/// claims the provider vouched for, or the refusal (written to the audit
/// log under `action`). Shared by the back office's and the portal's
/// sign-ins: state bound to the browser, taken out once, not expired; the
/// code exchanged with PKCE; the ID token's signature and claims.
async fn verified_claims(app: &App, answer: Answer<'_>, action: &str) -> Result<Claims, AppError> {
    let s = settings(app)?;
    let place = Place::new("spid.finish", "", "");
    // Nobody is known yet: every refusal here is the anonymous's.
    let refuse = |error: AppError| refuse(app, "anonymous", None, "", error, action);
    let bad_state = || AppError::new(Kind::Invalid, "SPID_BAD_STATE", BAD_STATE);
    // The answer must come to the browser that started the request: else
    // anyone could have a person signed in as someone else (login CSRF).
    let state = match (answer.state, answer.browser_state) {
        (Some(st), Some(browser)) if !st.is_empty() && same(st, browser) => st,
        _ => return Err(refuse(bad_state()).await),
    };
    let Some(request) = app
        .store
        .take_oidc_request(&sha256_hex(state))
        .await
        .at(place)?
    else {
        return Err(refuse(bad_state()).await);
    };
    let now = app.clock.now();
    if now - request.created_at > REQUEST_TTL {
        return Err(refuse(bad_state()).await);
    }
    if let Some(error) = answer.error {
        tracing::info!(error, "SPID/CIE sign-in not completed at the provider");
        let e = if error == "access_denied" {
            AppError::new(Kind::Unauthenticated, "SPID_CANCELLED", CANCELLED)
        } else {
            bad_answer()
        };
        return Err(refuse(e).await);
    }
    let Some(code) = answer.code.filter(|c| !c.is_empty()) else {
        return Err(refuse(bad_answer()).await);
    };
    let unavailable = |e: &ProviderError| {
        tracing::warn!(error = %e, "SPID/CIE provider failed");
        match e {
            ProviderError::Unreachable(_) => {
                AppError::new(Kind::Unavailable, "SPID_UNAVAILABLE", UNAVAILABLE)
            }
            ProviderError::Invalid(_) => bad_answer(),
        }
    };
    let p = match provider(&s.issuer, false).await {
        Ok(p) => p,
        Err(e) => return Err(refuse(unavailable(&e)).await),
    };
    let id_token = match exchange(s, &p, &request, code).await {
        Ok(t) => t,
        Err(e) => return Err(refuse(unavailable(&e)).await),
    };
    let issuer = p.discovery.issuer.clone();
    let mut checked = verify(
        &id_token,
        &p.keys,
        &issuer,
        &s.client_id,
        &request.nonce,
        now,
    );
    if matches!(checked, Err(TokenError::UnknownKey)) {
        // The provider may have rolled its keys since they were fetched.
        if let Ok(fresh) = provider(&s.issuer, true).await {
            checked = verify(
                &id_token,
                &fresh.keys,
                &issuer,
                &s.client_id,
                &request.nonce,
                now,
            );
        }
    }
    let claims = match checked {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(reason = %e, "SPID/CIE ID token refused");
            return Err(refuse(bad_answer()).await);
        }
    };
    Ok(claims)
}

/// Finishes a sign-in with what came back to the redirect URI: a session
/// for the operator whose fiscal code the provider vouched for, or the
/// refusal (written to the audit log).
pub async fn finish(app: &App, answer: Answer<'_>) -> Result<Session, AppError> {
    let place = Place::new("spid.finish", "", "");
    let claims = verified_claims(app, answer, ACTION).await?;
    let now = app.clock.now();
    let Some(fiscal_code) = claims.fiscal_number.as_deref().and_then(fiscal_code_of) else {
        return Err(refuse(app, "anonymous", None, "", refused(), ACTION).await);
    };
    let found = app
        .store
        .operator_by_fiscal_code(&fiscal_code)
        .await
        .at(place)?;
    let Some(o) = found else {
        return Err(refuse(
            app,
            "anonymous",
            None,
            &masked(&fiscal_code),
            refused(),
            ACTION,
        )
        .await);
    };
    let ente = o.rights.ente.as_deref();
    let actor = format!("operator:{}", o.username);
    if o.disabled {
        audit::record(app, &actor, ente, ACTION, &o.username, "DISABLED").await;
        return Err(refused());
    }
    // SPID/CIE proves who the person is: a wait after wrong passwords
    // (which someone else may have typed) does not keep them out, and
    // is forgotten.
    app.store.record_sign_in_success(o.id).await.at(place)?;
    let session = operators::open_session(app, &o, now).await?;
    audit::record(app, &actor, ente, ACTION, &o.username, "OK").await;
    Ok(session)
}

/// Finishes a citizen's sign-in to the portal with what came back to the
/// redirect URI: the identity the provider vouched for (checked as
/// [`finish`] checks it), or the refusal (written to the audit log). No
/// operator is looked for: every person with an Italian fiscal code may
/// see what is their own.
pub async fn finish_citizen(
    app: &App,
    answer: Answer<'_>,
) -> Result<crate::identity::CitizenIdentity, AppError> {
    let claims = verified_claims(app, answer, CITIZEN_ACTION).await?;
    let Some(fiscal_code) = claims.fiscal_number.as_deref().and_then(fiscal_code_of) else {
        let e = AppError::new(Kind::Unauthenticated, "SPID_NO_FISCAL_CODE", NO_FISCAL_CODE);
        return Err(refuse(app, "anonymous", None, "", e, CITIZEN_ACTION).await);
    };
    let who = crate::identity::CitizenIdentity {
        name: claims.full_name(),
        fiscal_code,
    };
    let actor = crate::Caller::Citizen(who.clone()).actor();
    audit::record(app, &actor, None, CITIZEN_ACTION, "", "OK").await;
    Ok(who)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fiscal_numbers_are_italian_fiscal_codes() {
        assert_eq!(
            fiscal_code_of("TINIT-RSSMRA80A01H501U").as_deref(),
            Some("RSSMRA80A01H501U")
        );
        assert_eq!(
            fiscal_code_of("TINIT-rssmra80a01h501u").as_deref(),
            Some("RSSMRA80A01H501U")
        );
        assert_eq!(fiscal_code_of("RSSMRA80A01H501U"), None);
        assert_eq!(fiscal_code_of("TINIT-RSSMRA80A01H501X"), None);
        assert_eq!(fiscal_code_of("TINGB-123456"), None);
    }

    #[test]
    fn unsigned_and_malformed_tokens_are_refused() {
        let none = format!(
            "{}.{}.",
            b64(br#"{"alg":"none"}"#),
            b64(br#"{"iss":"x","aud":"c","exp":9999999999,"nonce":"n"}"#)
        );
        let now = Utc::now();
        assert_eq!(
            verify(&none, &[], "x", "c", "n", now).unwrap_err(),
            TokenError::Algorithm("none".into())
        );
        let hs = format!("{}.{}.AAAA", b64(br#"{"alg":"HS256"}"#), b64(b"{}"));
        assert!(matches!(
            verify(&hs, &[], "x", "c", "n", now),
            Err(TokenError::Algorithm(_))
        ));
        assert_eq!(
            verify("a.b", &[], "x", "c", "n", now).unwrap_err(),
            TokenError::Malformed
        );
        let rs = format!(
            "{}.{}.AAAA",
            b64(br#"{"alg":"RS256","kid":"k"}"#),
            b64(b"{}")
        );
        assert_eq!(
            verify(&rs, &[], "x", "c", "n", now).unwrap_err(),
            TokenError::UnknownKey
        );
    }

    #[test]
    fn masked_codes_keep_only_the_name_letters() {
        assert_eq!(masked("RSSMRA80A01H501U"), "RSSMRA**********");
    }
}
