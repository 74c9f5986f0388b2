//! The simulator's SPID/CIE identity proxy as a relying party meets it:
//! what it refuses at the authorization and token endpoints (an unknown
//! client or redirect URI, no PKCE, a wrong secret, verifier or redirect
//! URI, a code used twice), and the ID token it gives.

use base64::Engine as _;
use incasso_simulator::{OidcClient, OidcSettings, Settings, Simulator, TestIdentity};
use reqwest::StatusCode;
use reqwest::header::LOCATION;

const CLIENT: &str = "rp";
const SECRET: &str = "segreto";
const REDIRECT: &str = "http://rp.example/cb";
/// RFC 7636's example verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

async fn provider() -> String {
    let sim = Simulator::new(Settings {
        oidc: OidcSettings {
            identities: vec![TestIdentity {
                fiscal_code: "RSSMRA80A01H501U".into(),
                given_name: "Mario".into(),
                family_name: "Rossi".into(),
            }],
            clients: vec![OidcClient {
                client_id: CLIENT.into(),
                client_secret: SECRET.into(),
                redirect_uris: vec![REDIRECT.into()],
                name: "Servizio di prova".into(),
            }],
        },
        ..Default::default()
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(sim.serve(l, std::future::pending()));
    url
}

fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let v: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn http() -> reqwest::Client {
    incasso_pagopa::connector::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn param(url: &str, name: &str) -> Option<String> {
    url.split_once('?')?.1.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// A code for Mario, as the browser would bring it back.
async fn code(sim: &str) -> String {
    let page = http()
        .get(format!(
            "{sim}/authorize?response_type=code&client_id={CLIENT}&redirect_uri={}&scope=openid&state=s1&nonce=n1&code_challenge={CHALLENGE}&code_challenge_method=S256",
            "http%3A%2F%2Frp.example%2Fcb"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Servizio di prova") && html.contains("Mario Rossi"));
    let at = html.find("name=\"request\" value=\"").unwrap() + 22;
    let request = &html[at..at + html[at..].find('"').unwrap()];
    let back = http()
        .post(format!("{sim}/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("request", request),
            ("identity", "RSSMRA80A01H501U"),
            ("action", "entra"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    let location = back.headers()[LOCATION].to_str().unwrap().to_string();
    assert!(location.starts_with(&format!("{REDIRECT}?code=")));
    assert_eq!(param(&location, "state").as_deref(), Some("s1"));
    param(&location, "code").unwrap()
}

async fn token(
    sim: &str,
    code: &str,
    secret: &str,
    verifier: &str,
    redirect: &str,
) -> (StatusCode, serde_json::Value) {
    let resp = http()
        .post(format!("{sim}/token"))
        .basic_auth(CLIENT, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect),
        ]))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

#[tokio::test]
async fn the_provider_checks_client_pkce_and_codes() {
    let sim = provider().await;

    // An unknown client or redirect URI: a page, never a redirect.
    for query in [
        format!("client_id=altro&redirect_uri={REDIRECT}"),
        format!("client_id={CLIENT}&redirect_uri=http://evil.example/cb"),
    ] {
        let r = http()
            .get(format!(
                "{sim}/authorize?response_type=code&scope=openid&{query}"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(r.headers().get(LOCATION).is_none());
    }
    // No PKCE: back to the client with the error.
    let r = http()
        .get(format!(
            "{sim}/authorize?response_type=code&scope=openid&client_id={CLIENT}&redirect_uri={REDIRECT}&state=x"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()[LOCATION].to_str().unwrap();
    assert_eq!(param(location, "error").as_deref(), Some("invalid_request"));
    assert_eq!(param(location, "state").as_deref(), Some("x"));

    // A wrong secret: the code is not even looked at.
    let c = code(&sim).await;
    let (status, body) = token(&sim, &c, "sbagliato", VERIFIER, REDIRECT).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    // A wrong verifier: refused, and the code is spent.
    let (status, body) = token(&sim, &c, SECRET, &"a".repeat(43), REDIRECT).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    let (status, _) = token(&sim, &c, SECRET, VERIFIER, REDIRECT).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Another redirect URI.
    let c = code(&sim).await;
    let (status, body) = token(&sim, &c, SECRET, VERIFIER, "http://rp.example/altro").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");

    // All right: an ID token, once.
    let c = code(&sim).await;
    let (status, body) = token(&sim, &c, SECRET, VERIFIER, REDIRECT).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let id_token = body["id_token"].as_str().unwrap();
    let parts: Vec<&str> = id_token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let decode = |p: &str| -> serde_json::Value {
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(decode(parts[0])["alg"], "RS256");
    let claims = decode(parts[1]);
    assert_eq!(claims["iss"], sim.as_str());
    assert_eq!(claims["aud"], CLIENT);
    assert_eq!(claims["nonce"], "n1");
    assert_eq!(claims["fiscalNumber"], "TINIT-RSSMRA80A01H501U");
    assert_eq!(claims["given_name"], "Mario");
    assert_eq!(claims["family_name"], "Rossi");
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
    assert!(claims["sub"].as_str().is_some_and(|s| !s.is_empty()));
    let (status, body) = token(&sim, &c, SECRET, VERIFIER, REDIRECT).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}
