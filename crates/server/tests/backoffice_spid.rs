//! Sign-in with SPID/CIE (issue 16), over HTTP on both databases, against
//! the simulator's OpenID Connect provider playing the identity proxy: the
//! whole flow from the sign-in page's link to the home page; and what must
//! be refused — a forged, unsigned, expired or misaddressed ID token, a
//! wrong or missing state, a replayed code, an unknown fiscal code, a
//! disabled operator — each told on the sign-in page with its status and
//! written to the audit log, without telling whether an account exists.

use crate::common::app;

use app::gpd::{ENTE, enti};
use incasso_app::operators::{self, NewOperatorInput};
use incasso_app::spid::SpidSettings;
use incasso_app::{App, Caller, Settings};
use incasso_core::access::{Rights, Role};
use incasso_simulator::{Faults, IdTokenFault, OidcClient, OidcSettings, Simulator, TestIdentity};
use incasso_store::Store;
use incasso_testkit::backends;
use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const CLIENT_ID: &str = "incasso-test";
const CLIENT_SECRET: &str = "segreto-del-client-di-prova";

/// An Ente administrator who signs in only with SPID/CIE.
const GIULIA: (&str, &str, &str) = ("BNCGLI80A41H501C", "Giulia", "Bianchi");
/// An operator whose account is disabled.
const MARCO: (&str, &str, &str) = ("VRDMRC85M12H501U", "Marco", "Verdi");
/// A citizen: a real identity, but no operator.
const MARIO: (&str, &str, &str) = ("RSSMRA80A01H501U", "Mario", "Rossi");

struct World {
    base: String,
    sim_url: String,
    sim: Simulator,
    store: Store,
}

fn identity((fc, given, family): (&str, &str, &str)) -> TestIdentity {
    TestIdentity {
        fiscal_code: fc.into(),
        given_name: given.into(),
        family_name: family.into(),
    }
}

async fn listener() -> (tokio::net::TcpListener, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

/// incasso whose back office signs in through `issuer`.
async fn serve_incasso(store: &Store, issuer: &str) -> String {
    let (l, base) = listener().await;
    let mut settings = Settings::new(&base);
    settings.spid = Some(SpidSettings {
        issuer: issuer.into(),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
    });
    let app = App::new(store.clone(), settings);
    tokio::spawn(incasso_server::serve(l, app, std::future::pending()));
    base
}

/// The simulator's provider with three identities and incasso as its
/// client; incasso with Giulia, an Ente administrator known by her fiscal
/// code, and Marco, disabled.
async fn world(backend: incasso_testkit::Backend) -> World {
    incasso_pagopa::connector::install_crypto_provider();
    let (store, _) = enti(backend, &[ENTE]).await;
    let (incasso_listener, base) = listener().await;
    let (sim_listener, sim_url) = listener().await;
    let sim = Simulator::new(incasso_simulator::Settings {
        oidc: OidcSettings {
            identities: vec![identity(GIULIA), identity(MARCO), identity(MARIO)],
            clients: vec![OidcClient {
                client_id: CLIENT_ID.into(),
                client_secret: CLIENT_SECRET.into(),
                redirect_uris: vec![format!("{base}/backoffice/spid/callback")],
                name: "Back office di prova".into(),
            }],
        },
        ..Default::default()
    });
    tokio::spawn(sim.clone().serve(sim_listener, std::future::pending()));
    let system = App::new(store.clone(), Settings::new(&base)).ctx(Caller::System("test"));
    for (username, (fc, given, family)) in [("giulia.bianchi", GIULIA), ("marco.verdi", MARCO)] {
        operators::create(
            &system,
            NewOperatorInput {
                username: username.into(),
                full_name: format!("{given} {family}"),
                fiscal_code: Some(fc.into()),
                email: None,
                rights: Rights {
                    role: Role::EnteAdmin,
                    ente: Some(ENTE.into()),
                    grants: vec![],
                    offices: vec![],
                },
                password: None,
            },
        )
        .await
        .unwrap();
    }
    let marco = store
        .operator_by_username("marco.verdi")
        .await
        .unwrap()
        .unwrap();
    operators::set_disabled(&system, marco.id, true)
        .await
        .unwrap();
    let mut settings = Settings::new(&base);
    settings.spid = Some(SpidSettings {
        issuer: sim_url.clone(),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
    });
    let app = App::new(store.clone(), settings);
    tokio::spawn(incasso_server::serve(
        incasso_listener,
        app,
        std::future::pending(),
    ));
    World {
        base,
        sim_url,
        sim,
        store,
    }
}

/// A browser: no redirect followed, cookies kept by name (incasso and the
/// provider share a host, and the provider sets none).
#[derive(Clone, Default)]
struct Browser {
    client: reqwest::Client,
    jar: Arc<Mutex<HashMap<String, String>>>,
}

struct Answer {
    status: StatusCode,
    location: String,
    set_cookies: Vec<String>,
    body: String,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: Default::default(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let cookies: Vec<String> = self
            .jar
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let req = if cookies.is_empty() {
            req
        } else {
            req.header("cookie", cookies.join("; "))
        };
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let location = resp
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let set_cookies: Vec<String> = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        {
            let mut jar = self.jar.lock().unwrap();
            for c in &set_cookies {
                let first = c.split(';').next().unwrap();
                let (k, v) = first.split_once('=').unwrap();
                if v.is_empty() || c.contains("Max-Age=0") {
                    jar.remove(k);
                } else {
                    jar.insert(k.to_string(), v.to_string());
                }
            }
        }
        Answer {
            status,
            location,
            set_cookies,
            body: resp.text().await.unwrap(),
        }
    }

    async fn get(&self, url: &str) -> Answer {
        self.send(self.client.get(url)).await
    }

    async fn post(&self, url: &str, fields: &[(&str, &str)]) -> Answer {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(
            self.client
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().unwrap().get(name).cloned()
    }

    fn set_cookie(&self, name: &str, value: &str) {
        self.jar
            .lock()
            .unwrap()
            .insert(name.to_string(), value.to_string());
    }
}

fn enc(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of query parameter `name` in `url`.
fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// From the sign-in page's link to the provider's choice of `fiscal_code`
/// (or its cancel): the URL the provider sends the browser back to.
async fn to_provider_and_back(w: &World, b: &Browser, fiscal_code: &str, action: &str) -> String {
    let start = b.get(&format!("{}/backoffice/spid", w.base)).await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    assert!(
        start
            .location
            .starts_with(&format!("{}/authorize?", w.sim_url)),
        "{}",
        start.location
    );
    for p in ["state", "nonce", "code_challenge"] {
        assert!(param(&start.location, p).is_some(), "{p} missing");
    }
    assert_eq!(
        param(&start.location, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let spid_cookie = start
        .set_cookies
        .iter()
        .find(|c| c.starts_with("incasso_spid="))
        .expect("the request's cookie");
    assert!(spid_cookie.contains("HttpOnly") && spid_cookie.contains("SameSite=Lax"));
    let page = b.get(&start.location).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<html lang=\"it\">"));
    assert!(page.body.contains("Entra con SPID o CIE"));
    assert!(page.body.contains(fiscal_code), "{}", page.body);
    assert!(
        !page.body.contains("<script"),
        "the choice works without JavaScript"
    );
    let at = page.body.find("name=\"request\" value=\"").unwrap() + 22;
    let request = &page.body[at..at + page.body[at..].find('"').unwrap()];
    let back = b
        .post(
            &format!("{}/authorize", w.sim_url),
            &[
                ("request", request),
                ("identity", fiscal_code),
                ("action", action),
            ],
        )
        .await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    assert!(
        back.location
            .starts_with(&format!("{}/backoffice/spid/callback?", w.base)),
        "{}",
        back.location
    );
    back.location
}

/// The sign-in page's message of a refused answer.
fn alert(body: &str) -> String {
    let at = body
        .find("role=\"alert\"")
        .expect("an alert on the sign-in page");
    let start = at + body[at..].find('>').unwrap() + 1;
    body[start..start + body[start..].find('<').unwrap()].to_string()
}

fn session_cookie(a: &Answer) -> Option<String> {
    a.set_cookies.iter().find_map(|c| {
        let v = c.split(';').next()?.strip_prefix("incasso_session=")?;
        (!v.is_empty()).then(|| v.to_string())
    })
}

/// The audit log's outcomes of SPID/CIE sign-ins in `ente` (none: the
/// intermediary's and the unknown's), newest first.
async fn spid_outcomes(store: &Store, ente: Option<&str>) -> Vec<(String, String)> {
    store
        .audit_events(ente, Some("operator.sign_in_spid"), None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| (e.object, e.outcome))
        .collect()
}

#[tokio::test]
async fn an_operator_signs_in_with_spid_and_the_answer_works_once() {
    for backend in backends() {
        eprintln!("on {backend:?}");
        let w = world(backend).await;
        let b = Browser::new();

        // The provider as a relying party finds it.
        let discovery: serde_json::Value =
            reqwest::get(format!("{}/.well-known/openid-configuration", w.sim_url))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        assert_eq!(discovery["issuer"], w.sim_url.as_str());
        assert_eq!(
            discovery["id_token_signing_alg_values_supported"][0],
            "RS256"
        );
        let jwks: serde_json::Value = reqwest::get(discovery["jwks_uri"].as_str().unwrap())
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(jwks["keys"][0]["kty"], "RSA");

        // The sign-in page offers SPID/CIE.
        let login = b.get(&format!("{}/backoffice/login", w.base)).await;
        assert!(login.body.contains("href=\"/backoffice/spid\""));
        assert!(login.body.contains("Entra con SPID o CIE"));

        // Giulia picks herself at the provider and comes back signed in.
        let callback = to_provider_and_back(&w, &b, GIULIA.0, "entra").await;
        let spid_state = b.cookie("incasso_spid").unwrap();
        let signed = b.get(&callback).await;
        assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
        assert_eq!(signed.location, "/backoffice/");
        assert!(session_cookie(&signed).is_some(), "a session cookie");
        let set = signed
            .set_cookies
            .iter()
            .find(|c| c.starts_with("incasso_session="))
            .unwrap();
        assert!(
            set.contains("HttpOnly")
                && set.contains("SameSite=Lax")
                && set.contains("Path=/backoffice")
        );
        assert!(
            b.cookie("incasso_spid").is_none(),
            "the request's cookie is dropped"
        );
        let home = b.get(&format!("{}/backoffice/", w.base)).await;
        assert_eq!(home.status, StatusCode::OK);
        assert!(home.body.contains("Giulia Bianchi"), "{}", home.body);
        assert_eq!(
            spid_outcomes(&w.store, Some(ENTE)).await[0],
            ("giulia.bianchi".to_string(), "OK".to_string())
        );

        // The same answer again (with its state, as an eavesdropper would
        // have it): the request was taken out.
        let replay = Browser::new();
        replay.set_cookie("incasso_spid", &spid_state);
        let again = replay.get(&callback).await;
        assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.body);
        assert!(alert(&again.body).contains("scaduta o non è partita da questo browser"));
        assert!(session_cookie(&again).is_none());

        // The code again, with a fresh request of this browser: the
        // provider refuses a code twice.
        let code = param(&callback, "code").unwrap();
        let fresh = b.get(&format!("{}/backoffice/spid", w.base)).await;
        let state = param(&fresh.location, "state").unwrap();
        let reused = b
            .get(&format!(
                "{}/backoffice/spid/callback?code={code}&state={state}",
                w.base
            ))
            .await;
        assert_eq!(reused.status, StatusCode::UNAUTHORIZED, "{}", reused.body);
        assert!(alert(&reused.body).contains("non è valida"));
        assert!(session_cookie(&reused).is_none());

        // A wrong state; an answer to another browser's request (login
        // CSRF); no state at all.
        let callback = to_provider_and_back(&w, &b, GIULIA.0, "entra").await;
        let code = param(&callback, "code").unwrap();
        let wrong = b
            .get(&format!(
                "{}/backoffice/spid/callback?code={code}&state=sbagliato",
                w.base
            ))
            .await;
        assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
        let stranger = Browser::new().get(&callback).await;
        assert_eq!(stranger.status, StatusCode::BAD_REQUEST);
        assert!(session_cookie(&stranger).is_none());
        let none = Browser::new()
            .get(&format!("{}/backoffice/spid/callback", w.base))
            .await;
        assert_eq!(none.status, StatusCode::BAD_REQUEST);
        assert!(alert(&none.body).contains("riprovare"));

        // Cancelled at the provider.
        let b = Browser::new();
        let callback = to_provider_and_back(&w, &b, GIULIA.0, "annulla").await;
        assert_eq!(param(&callback, "error").as_deref(), Some("access_denied"));
        let cancelled = b.get(&callback).await;
        assert_eq!(cancelled.status, StatusCode::UNAUTHORIZED);
        assert!(alert(&cancelled.body).contains("annullato"));

        // Refusals are in the audit log too.
        let outcomes: Vec<String> = spid_outcomes(&w.store, None)
            .await
            .into_iter()
            .map(|(_, o)| o)
            .collect();
        for code in ["SPID_BAD_STATE", "SPID_BAD_ANSWER", "SPID_CANCELLED"] {
            assert!(outcomes.iter().any(|o| o == code), "{code}: {outcomes:?}");
        }
    }
}

#[tokio::test]
async fn bad_tokens_unknown_people_and_disabled_accounts_are_refused() {
    for backend in backends() {
        eprintln!("on {backend:?}");
        let w = world(backend).await;

        // A token incasso must not trust, whatever the identity in it.
        for fault in [
            IdTokenFault::BadSignature,
            IdTokenFault::AlgNone,
            IdTokenFault::Expired,
            IdTokenFault::WrongAudience,
            IdTokenFault::WrongIssuer,
            IdTokenFault::WrongNonce,
        ] {
            w.sim.set_faults(Faults {
                id_token: fault,
                ..Faults::default()
            });
            let b = Browser::new();
            let callback = to_provider_and_back(&w, &b, GIULIA.0, "entra").await;
            let refused = b.get(&callback).await;
            assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{fault:?}");
            assert!(
                alert(&refused.body).contains("non è valida"),
                "{fault:?}: {}",
                refused.body
            );
            assert!(session_cookie(&refused).is_none(), "{fault:?}");
        }
        w.sim.set_faults(Faults::default());
        let bad_answers = spid_outcomes(&w.store, None)
            .await
            .iter()
            .filter(|(_, o)| o == "SPID_BAD_ANSWER")
            .count();
        assert_eq!(bad_answers, 6);

        // A citizen (no operator) and a disabled operator: the same page,
        // the same status, nothing that tells them apart.
        let mut pages = Vec::new();
        for who in [MARIO.0, MARCO.0] {
            let b = Browser::new();
            let callback = to_provider_and_back(&w, &b, who, "entra").await;
            let refused = b.get(&callback).await;
            assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
            assert!(session_cookie(&refused).is_none());
            pages.push(alert(&refused.body));
        }
        assert_eq!(pages[0], pages[1]);
        assert!(pages[0].contains("non consentito"), "{}", pages[0]);
        let unknown = spid_outcomes(&w.store, None).await;
        assert_eq!(
            unknown[0],
            ("RSSMRA**********".to_string(), "SPID_REFUSED".to_string()),
            "the audit log keeps no citizen's whole fiscal code"
        );
        assert_eq!(
            spid_outcomes(&w.store, Some(ENTE)).await[0],
            ("marco.verdi".to_string(), "DISABLED".to_string())
        );

        // And Giulia still signs in.
        let b = Browser::new();
        let callback = to_provider_and_back(&w, &b, GIULIA.0, "entra").await;
        let signed = b.get(&callback).await;
        assert_eq!(signed.status, StatusCode::SEE_OTHER);
        assert!(session_cookie(&signed).is_some());
    }
}

#[tokio::test]
async fn without_a_reachable_provider_or_settings_the_page_says_so() {
    let backend = backends()[0];
    let (store, _) = enti(backend, &[ENTE]).await;

    // A provider that does not answer: 502, on the sign-in page.
    let (closed, issuer) = listener().await;
    drop(closed);
    let base = serve_incasso(&store, &issuer).await;
    let b = Browser::new();
    let down = b.get(&format!("{base}/backoffice/spid")).await;
    assert_eq!(down.status, StatusCode::BAD_GATEWAY, "{}", down.body);
    assert!(alert(&down.body).contains("non risponde"));

    // Not configured: no link, and the path tells it is not active.
    let (l, base) = listener().await;
    tokio::spawn(incasso_server::serve(
        l,
        App::new(store.clone(), Settings::new(&base)),
        std::future::pending(),
    ));
    let login = b.get(&format!("{base}/backoffice/login")).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(!login.body.contains("/backoffice/spid"));
    let off = b.get(&format!("{base}/backoffice/spid")).await;
    assert_eq!(off.status, StatusCode::NOT_FOUND);
    assert!(alert(&off.body).contains("non è attivo"));
}
