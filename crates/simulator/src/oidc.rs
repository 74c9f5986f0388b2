//! The SPID/CIE identity proxy, simulated: an OpenID Connect provider as
//! the Enti's Satosa-Saml2Spid proxies show themselves to a relying party.
//!
//! - `GET /.well-known/openid-configuration`: the discovery document; the
//!   issuer is the simulator's public URL.
//! - `GET /authorize`: authorization code flow with PKCE (S256 only) for a
//!   registered client and redirect URI; a page (no JavaScript) where the
//!   tester picks one of the test identities, posted to `POST /authorize`,
//!   which redirects back with a one-time code (or `access_denied`).
//! - `POST /token`: the code for an ID token, checking the client's secret
//!   (HTTP Basic or form), the redirect URI and the PKCE verifier; a code
//!   works once and for a minute.
//! - `GET /jwks`: the RSA public key the ID tokens are signed with (RS256).
//!
//! The ID token carries `fiscalNumber` as SPID and CIE give it
//! (`TINIT-<fiscal code>`), with `given_name` and `family_name`.
//! [`IdTokenFault`] makes the provider send a token a relying party must
//! refuse (expired, badly signed, for another audience...).
//!
//! The signing key is a fixed test key shipped with the simulator (ring,
//! which the TLS stack already builds, signs with RSA but cannot make RSA
//! keys): public on purpose, it is trusted by nothing but a test.

use crate::Simulator;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine as _;
use incasso_pagopa::xml::escape;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A person the provider can sign in as.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TestIdentity {
    /// The Italian fiscal code (sent as `TINIT-<fiscal code>`).
    pub fiscal_code: String,
    pub given_name: String,
    pub family_name: String,
}

/// A relying party registered with the provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OidcClient {
    pub client_id: String,
    pub client_secret: String,
    /// The only places codes are sent to (compared exactly).
    pub redirect_uris: Vec<String>,
    /// Shown to the person on the sign-in page.
    pub name: String,
}

/// What the provider knows: its people and its relying parties.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OidcSettings {
    pub identities: Vec<TestIdentity>,
    pub clients: Vec<OidcClient>,
}

/// An ID token a relying party must refuse, sent while the fault is on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdTokenFault {
    #[default]
    None,
    /// Expired a minute ago.
    Expired,
    /// Its signature does not match its content.
    BadSignature,
    /// Unsigned (`alg: none`).
    AlgNone,
    /// Issued for another client.
    WrongAudience,
    /// Issued by another provider.
    WrongIssuer,
    /// Not the nonce of the request.
    WrongNonce,
}

/// How long the tester has to pick an identity.
const REQUEST_TTL: Duration = Duration::from_secs(600);
/// How long a code can be exchanged.
const CODE_TTL: Duration = Duration::from_secs(60);
/// How long an ID token is valid.
const TOKEN_SECS: i64 = 300;
/// The authentication level the proxy asserts (SPID level 2).
const ACR: &str = "https://www.spid.gov.it/SpidL2";

#[derive(Debug, Clone)]
struct Pending {
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: String,
    at: Instant,
}

#[derive(Debug, Clone)]
struct Grant {
    client_id: String,
    redirect_uri: String,
    nonce: Option<String>,
    code_challenge: String,
    identity: TestIdentity,
    at: Instant,
}

/// The provider's state, inside the simulator.
pub(crate) struct Provider {
    settings: OidcSettings,
    pending: Mutex<HashMap<String, Pending>>,
    codes: Mutex<HashMap<String, Grant>>,
}

impl Provider {
    pub(crate) fn new(settings: OidcSettings) -> Provider {
        Provider {
            settings,
            pending: Mutex::new(HashMap::new()),
            codes: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, id: &str) -> Option<&OidcClient> {
        self.settings.clients.iter().find(|c| c.client_id == id)
    }
}

/// The signing key and its public half as a JWK.
struct Key {
    pair: ring::rsa::KeyPair,
    kid: String,
    n: String,
    e: String,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn key() -> &'static Key {
    static KEY: OnceLock<Key> = OnceLock::new();
    KEY.get_or_init(|| {
        let pem = include_str!("oidc_test_key.pem");
        let body: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("the simulator's test key is base64");
        let pair = ring::rsa::KeyPair::from_pkcs8(&der).expect("the simulator's test key loads");
        let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public());
        let digest = ring::digest::digest(&ring::digest::SHA256, &public.n);
        Key {
            kid: b64(&digest.as_ref()[..12]),
            n: b64(&public.n),
            e: b64(&public.e),
            pair,
        }
    })
}

/// A compact JWS of `claims`, signed RS256 (or as `fault` spoils it).
fn sign(claims: &serde_json::Value, fault: IdTokenFault) -> String {
    let k = key();
    let alg = if fault == IdTokenFault::AlgNone {
        "none"
    } else {
        "RS256"
    };
    let header = json!({"alg": alg, "typ": "JWT", "kid": k.kid});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    if fault == IdTokenFault::AlgNone {
        return format!("{input}.");
    }
    let mut sig = vec![0u8; k.pair.public().modulus_len()];
    k.pair
        .sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .expect("RSA signing");
    if fault == IdTokenFault::BadSignature {
        sig[10] ^= 0x5a;
    }
    format!("{input}.{}", b64(&sig))
}

fn random_id() -> String {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b).expect("random source");
    b64(&b)
}

pub async fn discovery(State(sim): State<Simulator>) -> Response {
    let iss = sim.public_url();
    axum::Json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "jwks_uri": format!("{iss}/jwks"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "acr",
                             "fiscalNumber", "given_name", "family_name", "name"],
        "acr_values_supported": [ACR],
    }))
    .into_response()
}

pub async fn jwks() -> Response {
    let k = key();
    axum::Json(json!({"keys": [{
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": k.kid, "n": k.n, "e": k.e,
    }]}))
    .into_response()
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    (
        status,
        Html(format!(
            r#"<!doctype html><html lang="it"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<link rel="icon" href="data:,">
<style>body{{font-family:sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#17324d;line-height:1.5}}
fieldset{{border:1px solid #5c6f82;border-radius:4px;padding:1rem}}legend{{font-weight:bold;padding:0 .4rem}}
.choice{{margin:.5rem 0}}.choice label{{margin-left:.4rem}}.fc{{font-family:monospace}}
button{{font-size:1rem;padding:.6rem 1.4rem;margin:1rem 1rem 0 0;border-radius:4px;border:2px solid #0066cc;cursor:pointer}}
.primary{{background:#0066cc;color:#fff}}.secondary{{background:#fff;color:#0066cc}}
button:focus,input:focus{{outline:3px solid #f90;outline-offset:2px}}.note{{color:#455b71;font-size:.9rem}}</style></head>
<body><main><h1>{title}</h1>{body}<p class="note">Gestore delle identità SPID/CIE di prova &mdash; simulatore di incasso</p></main></body></html>"#
        )),
    )
        .into_response()
}

fn bad_request(message: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Richiesta di autenticazione non valida",
        &format!(
            "<p>{}</p><p>Tornare al servizio da cui si è partiti e riprovare.</p>",
            escape(message)
        ),
    )
}

/// `uri` with `pairs` added to its query.
fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = uri.to_string();
    let mut sep = if uri.contains('?') { '&' } else { '?' };
    for (k, v) in pairs {
        out.push(sep);
        out.push_str(k);
        out.push('=');
        out.push_str(&encode(v));
        sep = '&';
    }
    out
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

/// The relying party's request: checked, kept, and the page to choose an
/// identity. An unknown client or redirect URI gets a page, never a
/// redirect (it could be anyone's address).
pub async fn authorize_page(
    State(sim): State<Simulator>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let provider = &sim.inner.oidc;
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    let Some(client) = provider.client(get("client_id")) else {
        return bad_request(
            "client_id sconosciuto: il servizio non è registrato presso questo gestore.",
        );
    };
    let redirect_uri = get("redirect_uri");
    if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
        return bad_request("redirect_uri non registrato per questo servizio.");
    }
    let state = q.get("state").cloned();
    let refuse = |error: &str, description: &str| {
        let mut pairs = vec![("error", error), ("error_description", description)];
        if let Some(s) = &state {
            pairs.push(("state", s));
        }
        Redirect::to(&with_query(redirect_uri, &pairs)).into_response()
    };
    if get("response_type") != "code" {
        return refuse(
            "unsupported_response_type",
            "solo il flusso authorization code",
        );
    }
    if !get("scope").split(' ').any(|s| s == "openid") {
        return refuse("invalid_scope", "manca lo scope openid");
    }
    let challenge = get("code_challenge");
    if get("code_challenge_method") != "S256" || challenge.len() != 43 {
        return refuse("invalid_request", "PKCE con S256 obbligatorio");
    }
    let id = random_id();
    {
        let mut pending = provider.pending.lock().expect("oidc lock");
        pending.retain(|_, p| p.at.elapsed() < REQUEST_TTL);
        pending.insert(
            id.clone(),
            Pending {
                client_id: client.client_id.clone(),
                redirect_uri: redirect_uri.to_string(),
                state,
                nonce: q.get("nonce").cloned(),
                code_challenge: challenge.to_string(),
                at: Instant::now(),
            },
        );
    }
    let identities = &provider.settings.identities;
    if identities.is_empty() {
        return page(
            StatusCode::OK,
            "Entra con SPID o CIE",
            "<p>Nessuna identità di prova configurata nel simulatore.</p>",
        );
    }
    let mut choices = String::new();
    for (i, who) in identities.iter().enumerate() {
        choices.push_str(&format!(
            r#"<div class="choice"><input type="radio" name="identity" id="identita-{i}" value="{fc}"{checked} required><label for="identita-{i}">{given} {family} <span class="fc">({fc})</span></label></div>"#,
            fc = escape(&who.fiscal_code),
            given = escape(&who.given_name),
            family = escape(&who.family_name),
            checked = if i == 0 { " checked" } else { "" },
        ));
    }
    let service = if client.name.is_empty() {
        client.client_id.as_str()
    } else {
        client.name.as_str()
    };
    page(
        StatusCode::OK,
        "Entra con SPID o CIE",
        &format!(
            r#"<p>Questo gestore di prova sostituisce SPID e la Carta d'Identità Elettronica: scegliere con quale persona entrare in <strong>{service}</strong>.</p>
<form method="post" action="/authorize"><input type="hidden" name="request" value="{id}">
<fieldset><legend>Identità di prova</legend>{choices}</fieldset>
<button type="submit" class="primary" name="action" value="entra">Entra</button><button type="submit" class="secondary" name="action" value="annulla" formnovalidate>Annulla</button></form>"#,
            service = escape(service),
        ),
    )
}

#[derive(Deserialize)]
pub struct Choice {
    #[serde(default)]
    request: String,
    #[serde(default)]
    identity: String,
    #[serde(default)]
    action: String,
}

/// The tester's choice: back to the relying party with a code, or with
/// `access_denied` when they cancel.
pub async fn authorize(
    State(sim): State<Simulator>,
    axum::Form(c): axum::Form<Choice>,
) -> Response {
    let provider = &sim.inner.oidc;
    let Some(p) = provider
        .pending
        .lock()
        .expect("oidc lock")
        .remove(&c.request)
        .filter(|p| p.at.elapsed() < REQUEST_TTL)
    else {
        return bad_request("la richiesta è scaduta o è già stata usata.");
    };
    let state = p.state.clone();
    let back = |pairs: &mut Vec<(&str, String)>| {
        if let Some(s) = &state {
            pairs.push(("state", s.clone()));
        }
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Redirect::to(&with_query(&p.redirect_uri, &pairs)).into_response()
    };
    if c.action == "annulla" {
        return back(&mut vec![
            ("error", "access_denied".into()),
            ("error_description", "accesso annullato dall'utente".into()),
        ]);
    }
    let Some(identity) = provider
        .settings
        .identities
        .iter()
        .find(|i| i.fiscal_code == c.identity)
        .cloned()
    else {
        return bad_request("identità di prova sconosciuta.");
    };
    let code = random_id();
    {
        let mut codes = provider.codes.lock().expect("oidc lock");
        codes.retain(|_, g| g.at.elapsed() < CODE_TTL);
        codes.insert(
            code.clone(),
            Grant {
                client_id: p.client_id.clone(),
                redirect_uri: p.redirect_uri.clone(),
                nonce: p.nonce.clone(),
                code_challenge: p.code_challenge.clone(),
                identity,
                at: Instant::now(),
            },
        );
    }
    back(&mut vec![("code", code), ("iss", sim.public_url())])
}

#[derive(Deserialize)]
pub struct TokenRequest {
    #[serde(default)]
    grant_type: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    code_verifier: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
}

fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut resp = (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"token\""),
        );
    }
    resp
}

/// The client's id and secret: HTTP Basic, else the form's.
fn client_credentials(headers: &HeaderMap, form: &TokenRequest) -> (String, String) {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .ok()
        })
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| {
            v.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        });
    basic.unwrap_or_else(|| (form.client_id.clone(), form.client_secret.clone()))
}

/// Equal, in a time that does not tell how much of a guess was right.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub async fn token(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<TokenRequest>,
) -> Response {
    let provider = &sim.inner.oidc;
    let (client_id, secret) = client_credentials(&headers, &form);
    let Some(client) = provider
        .client(&client_id)
        .filter(|c| same(&c.client_secret, &secret))
    else {
        return token_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client sconosciuto o segreto errato",
        );
    };
    if form.grant_type != "authorization_code" {
        return token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "solo authorization_code",
        );
    }
    // Taken out whatever follows: a code is good for one attempt.
    let grant = provider
        .codes
        .lock()
        .expect("oidc lock")
        .remove(&form.code)
        .filter(|g| g.at.elapsed() < CODE_TTL);
    let Some(grant) = grant else {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "codice sconosciuto, scaduto o già usato",
        );
    };
    if grant.client_id != client.client_id || grant.redirect_uri != form.redirect_uri {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "il codice è stato emesso per un altro client o redirect_uri",
        );
    }
    let verifier = &form.code_verifier;
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let challenge = b64(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref());
    if !well_formed || !same(&challenge, &grant.code_challenge) {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "code_verifier non corrisponde al code_challenge (PKCE)",
        );
    }
    let fault = sim.faults().id_token;
    let now = chrono::Utc::now().timestamp();
    let (iat, exp) = if fault == IdTokenFault::Expired {
        (now - TOKEN_SECS - 60, now - 60)
    } else {
        (now, now + TOKEN_SECS)
    };
    let who = &grant.identity;
    let sub = b64(ring::digest::digest(
        &ring::digest::SHA256,
        format!("{}:{}", client.client_id, who.fiscal_code).as_bytes(),
    )
    .as_ref());
    let mut claims = json!({
        "iss": if fault == IdTokenFault::WrongIssuer { "https://altro-gestore.example".to_string() } else { sim.public_url() },
        "aud": if fault == IdTokenFault::WrongAudience { "altro-client".to_string() } else { client.client_id.clone() },
        "sub": sub,
        "iat": iat,
        "auth_time": iat,
        "exp": exp,
        "acr": ACR,
        "fiscalNumber": format!("TINIT-{}", who.fiscal_code),
        "given_name": who.given_name,
        "family_name": who.family_name,
        "name": format!("{} {}", who.given_name, who.family_name),
    });
    let nonce = match (fault, &grant.nonce) {
        (IdTokenFault::WrongNonce, _) => Some(random_id()),
        (_, n) => n.clone(),
    };
    if let Some(n) = nonce {
        claims["nonce"] = json!(n);
    }
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({
            "access_token": random_id(),
            "token_type": "Bearer",
            "expires_in": TOKEN_SECS,
            "scope": "openid profile",
            "id_token": sign(&claims, fault),
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_with_the_published_key() {
        let token = sign(&json!({"a": 1}), IdTokenFault::None);
        let (input, sig) = token.rsplit_once('.').unwrap();
        let k = key();
        let d = |s: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .unwrap()
        };
        let public = ring::signature::RsaPublicKeyComponents {
            n: d(&k.n),
            e: d(&k.e),
        };
        public
            .verify(
                &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                input.as_bytes(),
                &d(sig),
            )
            .unwrap();
        let bad = sign(&json!({"a": 1}), IdTokenFault::BadSignature);
        let (input, sig) = bad.rsplit_once('.').unwrap();
        assert!(
            public
                .verify(
                    &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                    input.as_bytes(),
                    &d(sig),
                )
                .is_err()
        );
    }

    #[test]
    fn redirects_keep_the_query_of_the_uri() {
        assert_eq!(
            with_query("http://a/cb?x=1", &[("code", "a b"), ("state", "s")]),
            "http://a/cb?x=1&code=a%20b&state=s"
        );
    }
}
