//! HTTP paths nothing else exercises, on every backend: the Node asking
//! for a notice whose position has expired (`PAA_PAGAMENTO_SCADUTO`), and
//! an intermediary setting how a station reaches the Node
//! (`PUT .../stations/{id}/connection`).

use chrono::{DateTime, Duration, Utc};
use incasso_core::Cents;
use incasso_core::ente::{Ente, StationLink};
use incasso_core::position::{DebtPosition, PositionStatus};
use incasso_core::sample::{self, PositionSpec};
use incasso_pagopa::wire::{self, Header, QrCode};
use incasso_store::secrets::{Keyring, SecretKey};
use incasso_store::{KeyScope, Store};
use incasso_testkit::{backends, fresh_database_url};
use serde_json::{Value, json};
use std::path::Path;

const A: &str = "80000130585";
const BROKER: &str = "15376371009";
const STATION: &str = "15376371009_01";
const IBAN: &str = "IT65B0200805364000104567891";

async fn ente_with_station(store: &Store) {
    let now = Utc::now();
    store
        .create_ente(
            &Ente {
                fiscal_code: A.into(),
                name: "Comune di Borgo Esempio".into(),
                ipa_code: None,
                iban: Some(IBAN.into()),
                postal_iban: None,
                cbill_code: None,
                email: None,
            },
            now,
        )
        .await
        .unwrap();
    store
        .add_station(
            A,
            &StationLink {
                broker_id: BROKER.into(),
                station_id: STATION.into(),
                segregation_code: 1,
            },
            now,
        )
        .await
        .unwrap();
}

/// Serves `store` on a loopback port; answers the base URL.
async fn serve(store: &Store) -> String {
    incasso_pagopa::connector::install_crypto_provider();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(incasso_server::serve_with_listener(
        listener,
        store.clone(),
        std::future::pending(),
    ));
    base
}

// ------------------------------------------------- PAA_PAGAMENTO_SCADUTO

/// A published position of 45.00 created at `created`, its single solution
/// due at `due` (and with `installments`, each thirty days after the one
/// before), with or without `switchToExpired`.
async fn position_created_at(
    store: &Store,
    iupd: &str,
    created: DateTime<Utc>,
    due: DateTime<Utc>,
    installments: u32,
    switch_to_expired: bool,
) -> DebtPosition {
    let mut p = sample::position(&PositionSpec {
        ente: A,
        company_name: "Comune di Borgo Esempio",
        iupd: iupd.into(),
        debtor_index: 2,
        amount: Cents(4_500),
        description: "TARI 2026".into(),
        category: "9/0101101IM/",
        iban: IBAN,
        due_date: due,
        installments,
        second_beneficiary: None,
        quotas: vec![],
    });
    p.switch_to_expired = switch_to_expired;
    store
        .create_position(A, p, created, true)
        .await
        .unwrap()
        .position
}

fn nav(p: &DebtPosition, option: usize) -> String {
    p.options[option]
        .notice_number
        .clone()
        .unwrap()
        .as_str()
        .to_string()
}

fn header() -> Header {
    Header {
        id_pa: A.into(),
        id_broker_pa: BROKER.into(),
        id_station: STATION.into(),
    }
}

fn qr(nav: &str) -> QrCode {
    QrCode {
        fiscal_code: A.into(),
        notice_number: nav.into(),
    }
}

/// The payload element of a SOAP envelope, as a document of its own that
/// declares the namespace prefix it uses (what the XSD describes).
fn payload_of(envelope: &str) -> String {
    let body_open = envelope.find(":Body>").expect("a SOAP Body") + ":Body>".len();
    let body_close = envelope.rfind(":Body>").unwrap();
    let inner = envelope[body_open..envelope[..body_close].rfind("</").unwrap()].trim();
    let prefix: String = inner[1..].chars().take_while(|c| *c != ':').collect();
    let declaration = format!("xmlns:{prefix}=\"");
    let ns_start = envelope.find(&declaration).expect("namespace declared") + declaration.len();
    let ns = &envelope[ns_start..ns_start + envelope[ns_start..].find('"').unwrap()];
    let name_end = inner.find(|c: char| c == '>' || c.is_whitespace()).unwrap();
    format!(
        "{} xmlns:{prefix}=\"{ns}\"{}",
        &inner[..name_end],
        &inner[name_end..]
    )
}

/// Validates every answer's payload against paForNode.xsd (the WSDL's
/// schema) with xmllint.
fn assert_valid_answers(envelopes: &[String]) {
    let xsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/xsd/wsdl/xsd/paForNode.xsd");
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = envelopes
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let f = dir.path().join(format!("answer-{i}.xml"));
            std::fs::write(&f, payload_of(e)).unwrap();
            f
        })
        .collect();
    let out = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .args(&files)
        .output()
        .expect("xmllint is needed (Debian package libxml2-utils)");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        envelopes[0]
    );
}

/// What the Node hears back: the envelope (kept for the XSD check) and it
/// parsed.
async fn ask(
    http: &reqwest::Client,
    url: &str,
    body: String,
    answers: &mut Vec<String>,
) -> wire::node::Response {
    let r = http
        .post(url)
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "faults travel in a 200 answer");
    let text = r.text().await.unwrap();
    answers.push(text.clone());
    wire::node::parse_response(text.as_bytes()).unwrap()
}

/// A notice whose due date has passed, of a position with
/// `switchToExpired`, is answered `PAA_PAGAMENTO_SCADUTO` to
/// paVerifyPaymentNotice, paGetPayment and paGetPaymentV2 (with GPD's
/// fault string and the Ente as `id`), before and after the minute job
/// stores the EXPIRED state. Without `switchToExpired`, or while a later
/// installment is still to come, the same overdue notice is payable.
#[tokio::test]
async fn an_expired_notice_answers_paa_pagamento_scaduto() {
    for backend in backends() {
        let store = Store::connect(&fresh_database_url(backend).await)
            .await
            .unwrap();
        ente_with_station(&store).await;
        let now = Utc::now();
        let (created, due) = (now - Duration::days(20), now - Duration::days(10));
        let expired = position_created_at(&store, "EXP-1", created, due, 0, true).await;
        let overdue = position_created_at(&store, "EXP-2", created, due, 0, false).await;
        // Two installments, the second due in twenty days: not expired, so
        // even the overdue first one is payable.
        let later =
            position_created_at(&store, "EXP-3", now - Duration::days(30), due, 2, true).await;
        let base = serve(&store).await;
        let url = format!("{base}/pagopa/paForNode");
        let http = reqwest::Client::new();
        let mut answers = Vec::new();
        let expired_nav = nav(&expired, 0);
        let expect_expired = |r: &wire::node::Response, what: &str| {
            assert_eq!(
                r.fault_code(),
                Some("PAA_PAGAMENTO_SCADUTO"),
                "{backend:?} {what}: {:?}",
                r.fault
            );
            let fault = r.payload.child("fault").unwrap();
            assert_eq!(
                fault.text_of("faultString"),
                Some("Pagamento in attesa risulta scaduto all'Ente Creditore")
            );
            assert_eq!(fault.text_of("id"), Some(A));
            let description = fault.text_of("description").unwrap_or_default();
            assert!(
                description.contains(&expired_nav) && description.contains("scaduta"),
                "{description}"
            );
            assert_eq!(r.payload.text_of("outcome"), Some("KO"));
            assert!(r.data().is_none() && r.amount().is_none());
        };
        for round in ["computed", "stored"] {
            let r = ask(
                &http,
                &url,
                wire::node::verify_request(&header(), &qr(&expired_nav)),
                &mut answers,
            )
            .await;
            expect_expired(&r, &format!("verify ({round})"));
            for v2 in [false, true] {
                let r = ask(
                    &http,
                    &url,
                    wire::node::get_payment_request(&header(), &qr(&expired_nav), Cents(4_500), v2),
                    &mut answers,
                )
                .await;
                expect_expired(&r, &format!("getPayment v2={v2} ({round})"));
            }
            // The minute job moves the stored state; the answer is the same.
            store.refresh_time_states(Utc::now()).await.unwrap();
        }
        let stored = store.get_position(A, "EXP-1").await.unwrap().position;
        assert_eq!(stored.status, PositionStatus::Expired, "{backend:?}");
        // Neither expired: answered with their amounts.
        for (nav, amount) in [(nav(&overdue, 0), 4_500), (nav(&later, 1), 2_250)] {
            let r = ask(
                &http,
                &url,
                wire::node::verify_request(&header(), &qr(&nav)),
                &mut answers,
            )
            .await;
            assert!(r.is_ok(), "{backend:?} {nav}: {:?}", r.fault);
            assert_eq!(r.amount(), Some(Cents(amount)));
            let r = ask(
                &http,
                &url,
                wire::node::get_payment_request(&header(), &qr(&nav), Cents(amount), true),
                &mut answers,
            )
            .await;
            assert!(r.is_ok(), "{backend:?} {nav}: {:?}", r.fault);
        }
        assert_eq!(
            store
                .get_position(A, "EXP-2")
                .await
                .unwrap()
                .position
                .status,
            PositionStatus::Valid,
            "{backend:?}: without switchToExpired a position never expires"
        );
        assert_valid_answers(&answers);
        store.close().await;
    }
}

// ------------------------------------------------- a station's connection

/// Every value of the settings given, with both secrets.
fn basic_settings() -> Value {
    json!({
        "connector": "pagopa",
        "rest_url": "https://api.uat.platform.pagopa.it",
        "soap_url": "https://api.uat.platform.pagopa.it/nodo/node-for-pa/v1",
        "auth": {"type": "basic", "username": "stazione01", "password": "S3greta!"},
        "station_password": "PwdStazione1",
        "reporting": "fdr3",
        "fdr3_page_size": 500,
        "timeout_ms": 5000,
        "retries": 2,
        "backoff_ms": 100
    })
}

/// The same, as incasso shows it: the secrets replaced.
fn basic_settings_shown() -> Value {
    let mut v = basic_settings();
    v["auth"]["password"] = json!("***");
    v["station_password"] = json!("***");
    v
}

/// `PUT /api/v1/enti/{fc}/stations/{id}/connection`: the intermediary sets
/// the settings (answered, and read back, with the secrets redacted; kept
/// whole and sealed at rest); the same body again changes nothing; a body
/// that is not settings is a ProblemJson 400 with its code and leaves the
/// settings as they were; an Ente's key may neither read nor set them.
#[tokio::test]
async fn a_station_connection_is_set_read_back_redacted_and_checked() {
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        let key = SecretKey::from_hex(&SecretKey::generate_hex().unwrap()).unwrap();
        let store = Store::connect(&url).await.unwrap().with_keyring(Keyring {
            current: Some(key),
            previous: None,
        });
        ente_with_station(&store).await;
        let (_, intermediary) =
            incasso_app::keys::issue_key(&store, None, KeyScope::Intermediary, "t")
                .await
                .unwrap();
        let (_, ente_key) = incasso_app::keys::issue_key(&store, Some(A), KeyScope::Ente, "t")
            .await
            .unwrap();
        let base = serve(&store).await;
        let path = format!("{base}/api/v1/enti/{A}/stations/{STATION}/connection");
        let http = reqwest::Client::new();
        let put = |body: String, key: &str| {
            http.put(&path)
                .header("Ocp-Apim-Subscription-Key", key)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
        };
        let get = |key: &str| {
            http.get(&path)
                .header("Ocp-Apim-Subscription-Key", key)
                .send()
        };
        // Nothing set yet.
        let r = get(&intermediary).await.unwrap();
        assert_eq!(r.status(), 404, "{backend:?}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "NOT_FOUND");

        let body = json!({ "settings": basic_settings() }).to_string();
        let r = put(body.clone(), &intermediary).await.unwrap();
        assert_eq!(r.status(), 200, "{backend:?}");
        let answer: Value = r.json().await.unwrap();
        assert_eq!(
            answer,
            json!({ "settings": basic_settings_shown() }),
            "{backend:?}"
        );
        let r = get(&intermediary).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap(), answer, "{backend:?}");
        // Kept whole: the secrets, not their stars, are what the connector
        // will send.
        let kept: Value =
            serde_json::from_str(&store.station_connection(A, STATION).await.unwrap().unwrap())
                .unwrap();
        assert_eq!(kept, basic_settings(), "{backend:?}");
        // And sealed: a store without the key cannot open them.
        let keyless = Store::connect(&url).await.unwrap();
        assert!(
            keyless.station_connection(A, STATION).await.is_err(),
            "{backend:?}: the settings are stored sealed"
        );
        keyless.close().await;

        // The same body again: the same answer, the same settings.
        let r = put(body.clone(), &intermediary).await.unwrap();
        assert_eq!(r.status(), 200, "{backend:?}");
        assert_eq!(r.json::<Value>().await.unwrap(), answer);
        let kept_again: Value =
            serde_json::from_str(&store.station_connection(A, STATION).await.unwrap().unwrap())
                .unwrap();
        assert_eq!(kept_again, kept, "{backend:?}");

        // What a GET answered, changed and put back, keeps the stored
        // secrets: the stars stand for them, they are never stored.
        let mut edited = answer.clone();
        edited["settings"]["timeout_ms"] = json!(4_321);
        let r = put(edited.to_string(), &intermediary).await.unwrap();
        assert_eq!(r.status(), 200, "{backend:?}");
        let mut expected = basic_settings();
        expected["timeout_ms"] = json!(4_321);
        let kept_edited: Value =
            serde_json::from_str(&store.station_connection(A, STATION).await.unwrap().unwrap())
                .unwrap();
        assert_eq!(kept_edited, expected, "{backend:?}: the secrets kept");
        // Stars for a kind of secret that is not stored: nothing to keep.
        let stars = json!({"settings": {"auth": {"type": "subscription_key", "key": "***"}}});
        let r = put(stars.to_string(), &intermediary).await.unwrap();
        assert_eq!(r.status(), 400, "{backend:?}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "REDACTED_SECRET");
        let r = put(body.clone(), &intermediary).await.unwrap();
        assert_eq!(r.status(), 200, "{backend:?}");

        // Bodies that are not settings, each refused with its code.
        let bad_certificate = json!({"settings": {"auth": {
            "type": "client_certificate",
            "certificate_pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "key_pem": "non una chiave"
        }}});
        for (bad, code) in [
            ("{\"settings\": {".to_string(), "BAD_JSON_SYNTAX"),
            ("[]".to_string(), "BAD_JSON_DATA"),
            (json!({"settings": "pagopa"}).to_string(), "BAD_CONNECTION"),
            (
                json!({"settings": {"auth": {"type": "kerberos"}}}).to_string(),
                "BAD_CONNECTION",
            ),
            (
                json!({"settings": {"auth": {"type": "basic", "username": "u"}}}).to_string(),
                "BAD_CONNECTION",
            ),
            (
                json!({"settings": {"timeout_ms": "dieci secondi"}}).to_string(),
                "BAD_CONNECTION",
            ),
            (
                json!({"settings": {"connector": "altro"}}).to_string(),
                "BAD_CONNECTION",
            ),
            (bad_certificate.to_string(), "BAD_CONNECTION"),
            // A name the settings do not have (the camelCase of the rest of
            // the API) would otherwise be dropped, and its default stored.
            (
                json!({"settings": {"soapUrl": "https://api.platform.pagopa.it/nodo"}}).to_string(),
                "BAD_CONNECTION",
            ),
            // Not a URL the connector could call.
            (
                json!({"settings": {"soap_url": "api.platform.pagopa.it/nodo"}}).to_string(),
                "BAD_CONNECTION",
            ),
            (
                json!({"settings": {"rest_url": "ftp://api.platform.pagopa.it"}}).to_string(),
                "BAD_CONNECTION",
            ),
        ] {
            let r = put(bad.clone(), &intermediary).await.unwrap();
            assert_eq!(r.status(), 400, "{backend:?}: {bad}");
            assert_eq!(
                r.headers()["content-type"],
                "application/problem+json",
                "{bad}"
            );
            let problem: Value = r.json().await.unwrap();
            assert_eq!(problem["code"], code, "{backend:?}: {bad}: {problem}");
            assert_eq!(problem["status"], 400, "{problem}");
            assert!(
                problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
                "{problem}"
            );
            let r = get(&intermediary).await.unwrap();
            assert_eq!(
                r.json::<Value>().await.unwrap(),
                answer,
                "{backend:?}: a refused body changes nothing"
            );
        }
        // No JSON content type: 415, as ProblemJson too.
        let r = http
            .put(&path)
            .header("Ocp-Apim-Subscription-Key", &intermediary)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415, "{backend:?}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "BAD_CONTENT_TYPE");

        // Other settings replace them whole; what is not given takes its
        // default.
        let r = put(
            json!({"settings": {"rest_url": "https://api.platform.pagopa.it",
                "auth": {"type": "subscription_key", "key": "chiave-apim-1"}}})
            .to_string(),
            &intermediary,
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200, "{backend:?}");
        let shown = json!({"settings": {
            "connector": "pagopa",
            "rest_url": "https://api.platform.pagopa.it",
            "soap_url": null,
            "auth": {"type": "subscription_key", "key": "***"},
            "station_password": null,
            "reporting": "soap",
            "fdr3_page_size": 1000,
            "timeout_ms": 10000,
            "retries": 3,
            "backoff_ms": 200
        }});
        assert_eq!(r.json::<Value>().await.unwrap(), shown, "{backend:?}");
        assert_eq!(
            get(&intermediary)
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap(),
            shown
        );
        let kept: Value =
            serde_json::from_str(&store.station_connection(A, STATION).await.unwrap().unwrap())
                .unwrap();
        assert_eq!(kept["auth"]["key"], "chiave-apim-1", "{backend:?}");

        // Only the intermediary: an Ente's key may neither read nor set.
        assert_eq!(get(&ente_key).await.unwrap().status(), 403, "{backend:?}");
        assert_eq!(put(body.clone(), &ente_key).await.unwrap().status(), 403);
        // A station the Ente does not have.
        let r = http
            .put(format!(
                "{base}/api/v1/enti/{A}/stations/ALTRA_01/connection"
            ))
            .header("Ocp-Apim-Subscription-Key", &intermediary)
            .json(&json!({ "settings": basic_settings() }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{backend:?}");
        store.close().await;
    }
}
