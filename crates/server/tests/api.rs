//! The HTTP API end to end, on every backend: a real server on a loopback
//! port, a real HTTP client, a fresh database per test.

use chrono::{Duration, Utc};
use incasso_app::keys::issue_key;
use incasso_core::accertamento::Accertamento;
use incasso_core::catalogue::Service;
use incasso_core::ente::{Ente, StationLink};
use incasso_store::KeyScope;
use incasso_store::Store;
use incasso_testkit::{Backend, backends, fresh_database_url};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const A: &str = "80000130585";
const B: &str = "97000000022";
const UNKNOWN_ENTE: &str = "12345678903";
const IBAN: &str = "IT65B0200805364000104567891";

struct TestApp {
    base: String,
    client: reqwest::Client,
    admin_key: String,
    key_a: String,
    key_b: String,
    backend: Backend,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn spawn_app(backend: Backend) -> TestApp {
    let store = Store::connect(&fresh_database_url(backend).await)
        .await
        .unwrap();
    let now = Utc::now();
    for (fc, seg) in [(A, 1u8), (B, 2u8)] {
        store
            .create_ente(
                &Ente {
                    fiscal_code: fc.into(),
                    name: format!("Ente {fc}"),
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
                fc,
                &StationLink {
                    broker_id: "15376371009".into(),
                    station_id: format!("ST_{seg:02}"),
                    segregation_code: seg,
                },
                now,
            )
            .await
            .unwrap();
        store
            .put_accertamento(
                fc,
                &Accertamento {
                    year: 2026,
                    code: "ACC-1".into(),
                    description: "Accertamento".into(),
                    chapter: "1010".into(),
                    article: None,
                    siope_code: None,
                    active: true,
                },
            )
            .await
            .unwrap();
        store
            .put_service(
                fc,
                &Service {
                    code: "TARI".into(),
                    name: "TARI".into(),
                    office_code: None,
                    taxonomy_code: "9/0101101IM/".into(),
                    default_accertamento: None,
                    iban: None,
                    fixed_amount: None,
                    spontaneous: false,
                    pagopa_service_id: None,
                    active: true,
                },
            )
            .await
            .unwrap();
    }
    let (_, admin_key) = issue_key(&store, None, KeyScope::Intermediary, "test")
        .await
        .unwrap();
    let (_, key_a) = issue_key(&store, Some(A), KeyScope::Ente, "test")
        .await
        .unwrap();
    let (_, key_b) = issue_key(&store, Some(B), KeyScope::Ente, "test")
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(incasso_server::serve_with_listener(
        listener,
        store,
        async {
            let _ = stopped.await;
        },
    ));
    incasso_pagopa::connector::install_crypto_provider();
    TestApp {
        base,
        client: reqwest::Client::new(),
        admin_key,
        key_a,
        key_b,
        backend,
        _stop: stop,
    }
}

impl TestApp {
    async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(k) = key {
            req = req.header("Ocp-Apim-Subscription-Key", k);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn create(&self, body: &Value, publish: bool) -> (StatusCode, Value) {
        let path = format!("/gpd/v1/organizations/{A}/debtpositions?toPublish={publish}");
        self.call(Method::POST, &path, Some(&self.key_a), Some(body))
            .await
    }
}

fn due(days: i64) -> String {
    (Utc::now() + Duration::days(days)).to_rfc3339()
}

/// A GPD create request, with the example values gpd.json gives where they
/// are valid data (email, country, flags).
fn position_body(iupd: &str) -> Value {
    json!({
        "iupd": iupd,
        "type": "F",
        "payStandIn": true,
        "fiscalCode": "RSSMRA85T10A562S",
        "fullName": "Mario Rossi",
        "streetName": "Via Roma",
        "civicNumber": "1",
        "postalCode": "00100",
        "city": "Roma",
        "province": "RM",
        "country": "IT",
        "email": "email@domain.com",
        "switchToExpired": false,
        "companyName": "Comune di prova",
        "officeName": "Ufficio Tributi",
        "paymentOption": [{
            "amount": 10000,
            "description": "TARI 2026",
            "isPartialPayment": false,
            "dueDate": due(30),
            "retentionDate": due(90),
            "paymentOptionMetadata": [{"key": "anno", "value": "2026"}],
            "transfer": [{
                "idTransfer": "1",
                "amount": 8000,
                "remittanceInformation": "TARI 2026 quota comune",
                "category": "9/0101101IM/",
                "iban": IBAN,
                "transferMetadata": [],
                "accountingQuotas": [{"accertamento": "2026/ACC-1", "amount": 8000}]
            }, {
                "idTransfer": "2",
                "amount": 2000,
                "organizationFiscalCode": B,
                "remittanceInformation": "TARI 2026 quota altro ente",
                "category": "9/0101101IM/",
                "iban": "IT61X0306909606100000012345",
                "transferMetadata": [{"key": "k", "value": "v"}]
            }]
        }]
    })
}

// ------------------------------------------------------------ conformance to gpd.json

fn gpd_spec() -> Value {
    serde_json::from_str(include_str!("data/gpd.json")).unwrap()
}

/// Checks `value` against one of gpd.json's schemas with a maintained JSON
/// Schema validator (types, required properties, null where a type is
/// declared, enums, patterns, lengths, item counts, date-time formats),
/// its `$ref`s resolved within gpd.json.
fn assert_conforms(spec: &Value, schema_name: &str, value: &Value) {
    let schema = json!({
        "$ref": format!("#/components/schemas/{schema_name}"),
        "components": spec["components"],
    });
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{schema_name} does not conform to gpd.json: {errors:#?}\n{value:#}"
    );
}

/// The validator catches what the home-made check let through (issue 14):
/// `null` for a required property, a broken pattern, a too-short string.
#[test]
fn the_conformance_check_can_fail() {
    let spec = gpd_spec();
    let schema = json!({
        "$ref": "#/components/schemas/TransferModel",
        "components": spec["components"],
    });
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .build(&schema)
        .unwrap();
    let good = json!({"idTransfer": "1", "amount": 100, "remittanceInformation": "x",
        "category": "9/0101101IM/", "iban": "IT65B0200805364000104567891", "transferMetadata": []});
    assert!(
        validator.is_valid(&good),
        "{:?}",
        validator
            .iter_errors(&good)
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );
    let mut null_required = good.clone();
    null_required["amount"] = Value::Null;
    assert!(!validator.is_valid(&null_required));
    let mut bad_pattern = good.clone();
    bad_pattern["iban"] = json!("IT65-B02");
    assert!(!validator.is_valid(&bad_pattern));
}

// ------------------------------------------------------------ tests

#[tokio::test]
async fn health_answers() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (status, body) = app.call(Method::GET, "/health", None, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "UP");
    }
}

#[tokio::test]
async fn gpd_life_cycle_conforms_to_gpd_json() {
    let spec = gpd_spec();
    for backend in backends() {
        let app = spawn_app(backend).await;
        // A GPD client brings its own IUV (required in gpd.json)...
        let mut own = position_body("IUPD-0");
        let own_nav = incasso_core::codes::NoticeNumber::generate(1, 9_999_999).unwrap();
        own["paymentOption"][0]["iuv"] = json!(own_nav.as_str()[1..]);
        assert_conforms(&spec, "PaymentPositionModel", &own);
        let (status, created) = app.create(&own, true).await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}: {created}");
        assert_eq!(created["paymentOption"][0]["nav"], json!(own_nav.as_str()));
        let (status, _) = app
            .call(
                Method::DELETE,
                &format!("/gpd/v1/organizations/{A}/debtpositions/IUPD-0"),
                Some(&app.key_a),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        // ...or leaves it out, and incasso's IUV coordinator assigns one.
        let body = position_body("IUPD-1");

        // create (draft) -> 201, PaymentPositionModel with incasso's IUV
        let (status, created) = app.create(&body, false).await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}: {created}");
        assert_conforms(&spec, "PaymentPositionModel", &created);
        assert_eq!(created["status"], "DRAFT");
        let iuv = created["paymentOption"][0]["iuv"]
            .as_str()
            .unwrap()
            .to_string();
        let nav = created["paymentOption"][0]["nav"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(nav, format!("3{iuv}"));
        assert!(
            iuv.starts_with("01"),
            "segregation code of Ente A's station"
        );

        // duplicate iupd -> 409 ProblemJson
        let (status, problem) = app.create(&body, false).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_conforms(&spec, "ProblemJson", &problem);

        // get -> PaymentPositionModelBaseResponse
        let path = format!("/gpd/v1/organizations/{A}/debtpositions/IUPD-1");
        let (status, got) = app.call(Method::GET, &path, Some(&app.key_a), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_conforms(&spec, "PaymentPositionModelBaseResponse", &got);
        assert_eq!(
            got["paymentOption"][0]["transfer"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            got["paymentOption"][0]["transfer"][1]["organizationFiscalCode"],
            B
        );

        // update (PUT) keeps the IUV when resent
        let mut changed = body.clone();
        changed["paymentOption"][0]["iuv"] = json!(iuv);
        changed["companyName"] = json!("Comune aggiornato");
        let (status, updated) = app
            .call(Method::PUT, &path, Some(&app.key_a), Some(&changed))
            .await;
        assert_eq!(status, StatusCode::OK, "{updated}");
        assert_conforms(&spec, "PaymentPositionModel", &updated);
        assert_eq!(updated["companyName"], "Comune aggiornato");
        assert_eq!(updated["paymentOption"][0]["iuv"], json!(iuv));

        // publish -> VALID; publish again -> 409
        let (status, published) = app
            .call(
                Method::POST,
                &format!("{path}/publish"),
                Some(&app.key_a),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_conforms(&spec, "PaymentPositionModel", &published);
        assert_eq!(published["status"], "VALID");
        let (status, _) = app
            .call(
                Method::POST,
                &format!("{path}/publish"),
                Some(&app.key_a),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);

        // list with filters and paging -> PaymentPositionsInfo
        for i in 2..=4 {
            let (s, _) = app.create(&position_body(&format!("IUPD-{i}")), true).await;
            assert_eq!(s, StatusCode::CREATED);
        }
        let list = format!(
            "/gpd/v1/organizations/{A}/debtpositions?limit=2&page=0&status=VALID&orderby=IUPD&ordering=ASC"
        );
        let (status, page) = app.call(Method::GET, &list, Some(&app.key_a), None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_conforms(&spec, "PaymentPositionsInfo", &page);
        assert_eq!(page["page_info"]["items_found"], 4);
        assert_eq!(page["page_info"]["total_pages"], 2);
        assert_eq!(page["payment_position_list"][0]["iupd"], "IUPD-1");
        assert_eq!(page["payment_position_list"][1]["iupd"], "IUPD-2");
        let (_, page) = app
            .call(
                Method::GET,
                &format!("/gpd/v1/organizations/{A}/debtpositions?status=DRAFT"),
                Some(&app.key_a),
                None,
            )
            .await;
        assert_eq!(page["page_info"]["items_found"], 0);
        let today = Utc::now().date_naive();
        let range = format!(
            "/gpd/v1/organizations/{A}/debtpositions?due_date_from={}&due_date_to={}",
            today,
            today + Duration::days(60)
        );
        let (_, page) = app.call(Method::GET, &range, Some(&app.key_a), None).await;
        assert_eq!(page["page_info"]["items_found"], 4, "{page}");
        let (status, _) = app
            .call(
                Method::GET,
                &format!("/gpd/v1/organizations/{A}/debtpositions?limit=51"),
                Some(&app.key_a),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        // pay it (setPaymentOptionAsAlreadyPaid) -> PaymentsModelResponse; again -> 409
        let paid_path = format!("/gpd/v1/organizations/{A}/paymentoptions/paids/{nav}");
        let (status, paid) = app
            .call(
                Method::POST,
                &paid_path,
                Some(&app.key_a),
                Some(&json!({"paymentDate": Utc::now().to_rfc3339()})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{paid}");
        assert_conforms(&spec, "PaymentsModelResponse", &paid);
        assert_eq!(paid["status"], "PO_PAID");
        let (status, _) = app
            .call(Method::POST, &paid_path, Some(&app.key_a), Some(&json!({})))
            .await;
        assert_eq!(status, StatusCode::CONFLICT);

        // A paid position can be neither changed, invalidated nor deleted.
        let (status, _) = app
            .call(Method::PUT, &path, Some(&app.key_a), Some(&changed))
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (status, _) = app
            .call(
                Method::POST,
                &format!("{path}/invalidate"),
                Some(&app.key_a),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (status, _) = app
            .call(Method::DELETE, &path, Some(&app.key_a), None)
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (_, got) = app.call(Method::GET, &path, Some(&app.key_a), None).await;
        assert_eq!(got["status"], "PAID");

        // invalidate and delete an unpaid one
        let p2 = format!("/gpd/v1/organizations/{A}/debtpositions/IUPD-2");
        let (status, inv) = app
            .call(
                Method::POST,
                &format!("{p2}/invalidate"),
                Some(&app.key_a),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(inv["status"], "INVALID");
        let (status, _) = app.call(Method::DELETE, &p2, Some(&app.key_a), None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, problem) = app.call(Method::GET, &p2, Some(&app.key_a), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_conforms(&spec, "ProblemJson", &problem);

        // massive IBAN change touches only unpaid own transfers
        let new_iban = "IT98A0760103200001234567890";
        let (status, res) = app
            .call(
                Method::PATCH,
                &format!("/gpd/v1/organizations/{A}/debtpositions/transfers?oldIban={IBAN}"),
                Some(&app.key_a),
                Some(&json!({"newIban": new_iban})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{res}");
        assert_conforms(&spec, "UpdateTransferIbanMassiveResponse", &res);
        assert_eq!(
            res["updatedTransfers"], 2,
            "IUPD-3 and IUPD-4; IUPD-1 is paid"
        );
        // An old IBAN incasso could not have stored matches nothing (GPD's
        // own test sends "testIban"); a valid one to an invalid one is refused.
        for (old, new, expected) in [
            ("testIban", "testIban", StatusCode::OK),
            (new_iban, "testIban", StatusCode::BAD_REQUEST),
        ] {
            let (status, res) = app
                .call(
                    Method::PATCH,
                    &format!("/gpd/v1/organizations/{A}/debtpositions/transfers?oldIban={old}"),
                    Some(&app.key_a),
                    Some(&json!({"newIban": new})),
                )
                .await;
            assert_eq!(status, expected, "{old} -> {new}: {res}");
            if expected == StatusCode::OK {
                assert_eq!(res["updatedTransfers"], 0);
            }
        }
        let (_, got) = app.call(Method::GET, &path, Some(&app.key_a), None).await;
        assert_eq!(got["paymentOption"][0]["transfer"][0]["iban"], IBAN);
    }
}

#[tokio::test]
async fn bad_input_is_refused_with_field_and_reason_and_writes_nothing() {
    /// (case, how to spoil the body, status, error code, field named)
    type Case = (
        &'static str,
        Box<dyn Fn(&mut Value)>,
        StatusCode,
        &'static str,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "debtor fiscal code",
            Box::new(|b| b["fiscalCode"] = json!("RSSMRA85T10A562X")),
            StatusCode::BAD_REQUEST,
            "BAD_FISCAL_CODE",
            "fiscalCode",
        ),
        (
            "VAT number",
            Box::new(|b| {
                b["type"] = json!("G");
                b["fiscalCode"] = json!("01234567890");
            }),
            StatusCode::BAD_REQUEST,
            "BAD_VAT_NUMBER",
            "fiscalCode",
        ),
        (
            "IBAN",
            Box::new(|b| {
                b["paymentOption"][0]["transfer"][0]["iban"] = json!("IT00B0200805364000104567891")
            }),
            StatusCode::BAD_REQUEST,
            "BAD_IBAN",
            "paymentOption[0].transfer[0].iban",
        ),
        (
            "zero amount",
            Box::new(|b| {
                b["paymentOption"][0]["amount"] = json!(0);
            }),
            StatusCode::BAD_REQUEST,
            "AMOUNT_NOT_POSITIVE",
            "paymentOption[0].amount",
        ),
        (
            "negative transfer",
            Box::new(|b| {
                b["paymentOption"][0]["transfer"][1]["amount"] = json!(-2000);
            }),
            StatusCode::BAD_REQUEST,
            "AMOUNT_NOT_POSITIVE",
            "paymentOption[0].transfer[1].amount",
        ),
        (
            "transfers do not add up",
            Box::new(|b| b["paymentOption"][0]["amount"] = json!(10001)),
            StatusCode::BAD_REQUEST,
            "AMOUNT_MISMATCH",
            "paymentOption[0].transfer",
        ),
        (
            "six transfers",
            Box::new(|b| {
                let t = b["paymentOption"][0]["transfer"][1].clone();
                let list = b["paymentOption"][0]["transfer"].as_array_mut().unwrap();
                for i in 3..=6 {
                    let mut x = t.clone();
                    x["idTransfer"] = json!(i.to_string());
                    x["amount"] = json!(1);
                    list.push(x);
                }
            }),
            StatusCode::BAD_REQUEST,
            "TOO_MANY_TRANSFERS",
            "paymentOption[0].transfer",
        ),
        (
            "unknown taxonomy",
            Box::new(|b| b["paymentOption"][0]["transfer"][0]["category"] = json!("9/9999999XX/")),
            StatusCode::BAD_REQUEST,
            "UNKNOWN_TAXONOMY",
            "paymentOption[0].transfer[0].category",
        ),
        (
            "quotas do not add up",
            Box::new(|b| {
                b["paymentOption"][0]["transfer"][0]["accountingQuotas"][0]["amount"] = json!(7999)
            }),
            StatusCode::BAD_REQUEST,
            "QUOTAS_MISMATCH",
            "paymentOption[0].transfer[0].accountingQuotas",
        ),
        (
            "unknown accertamento",
            Box::new(|b| {
                b["paymentOption"][0]["transfer"][0]["accountingQuotas"][0]["accertamento"] =
                    json!("2026/NOPE")
            }),
            StatusCode::BAD_REQUEST,
            "UNKNOWN_ACCERTAMENTO",
            "accountingQuotas",
        ),
        (
            "due date in the past",
            Box::new(|b| b["paymentOption"][0]["dueDate"] = json!(due(-1))),
            StatusCode::BAD_REQUEST,
            "DATE_IN_PAST",
            "paymentOption[0].dueDate",
        ),
        (
            "remittance too long",
            Box::new(|b| {
                b["paymentOption"][0]["transfer"][0]["remittanceInformation"] =
                    json!("x".repeat(141))
            }),
            StatusCode::BAD_REQUEST,
            "TOO_LONG",
            "paymentOption[0].transfer[0].remittanceInformation",
        ),
        (
            "foreign segregation code",
            Box::new(|b| b["paymentOption"][0]["iuv"] = json!("02000000000000547")),
            StatusCode::BAD_REQUEST,
            "BAD_IUV",
            "paymentOption[0].iuv",
        ),
        (
            "missing full name",
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("fullName");
            }),
            StatusCode::BAD_REQUEST,
            "BAD_JSON_DATA",
            "",
        ),
        (
            "amount not a number",
            Box::new(|b| b["paymentOption"][0]["amount"] = json!("cento")),
            StatusCode::BAD_REQUEST,
            "BAD_JSON_DATA",
            "",
        ),
    ];
    for backend in backends() {
        let app = spawn_app(backend).await;
        for (name, mutate, status, code, field) in &cases {
            let mut body = position_body("BAD");
            mutate(&mut body);
            let (got, problem) = app.create(&body, true).await;
            assert_eq!(got, *status, "{backend:?} {name}: {problem}");
            assert_eq!(problem["code"], *code, "{backend:?} {name}: {problem}");
            assert!(
                !problem["detail"].as_str().unwrap_or("").is_empty(),
                "{name}: an explanation"
            );
            if !field.is_empty() {
                let fields: Vec<&str> = problem["errors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["field"].as_str().unwrap())
                    .collect();
                assert!(
                    fields.contains(field),
                    "{name}: errors name {fields:?}, expected {field}"
                );
            }
            let (s, _) = app
                .call(
                    Method::GET,
                    &format!("/gpd/v1/organizations/{A}/debtpositions/BAD"),
                    Some(&app.key_a),
                    None,
                )
                .await;
            assert_eq!(
                s,
                StatusCode::NOT_FOUND,
                "{name}: a rejected request wrote a position"
            );
        }
        // Malformed JSON, wrong content type, oversized body.
        let url = format!("{}/gpd/v1/organizations/{A}/debtpositions", app.base);
        let resp = app
            .client
            .post(&url)
            .header("Ocp-Apim-Subscription-Key", &app.key_a)
            .header("content-type", "application/json")
            .body("{\"iupd\": ")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let problem: Value = resp.json().await.unwrap();
        assert_eq!(problem["code"], "BAD_JSON_SYNTAX");
        let resp = app
            .client
            .post(&url)
            .header("Ocp-Apim-Subscription-Key", &app.key_a)
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let mut huge = position_body("HUGE");
        huge["fullName"] = json!("x".repeat(2 * 1024 * 1024));
        let resp = app
            .client
            .post(&url)
            .header("Ocp-Apim-Subscription-Key", &app.key_a)
            .json(&huge)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let problem: Value = resp.json().await.unwrap();
        assert_eq!(problem["code"], "BODY_TOO_LARGE");
        // Unknown Ente: 404 even for the intermediary.
        let (s, problem) = app
            .call(
                Method::POST,
                &format!("/gpd/v1/organizations/{UNKNOWN_ENTE}/debtpositions"),
                Some(&app.admin_key),
                Some(&position_body("X")),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{problem}");
        // Nothing was written by any of the above.
        let (_, page) = app
            .call(
                Method::GET,
                &format!("/gpd/v1/organizations/{A}/debtpositions"),
                Some(&app.key_a),
                None,
            )
            .await;
        assert_eq!(page["page_info"]["items_found"], 0, "{:?}", app.backend);
    }
}

/// Every path of every GPD document incasso serves and of its own OpenAPI
/// document, called with another Ente's key, is refused (403 or 404), and
/// without a key 401 (`/info` excepted: it is open, as GPD's).
#[tokio::test]
async fn an_ente_key_never_reaches_another_ente() {
    let gpd = gpd_spec();
    for backend in backends() {
        let app = spawn_app(backend).await;
        // Something real to aim at in Ente A.
        let (s, created) = app.create(&position_body("SECRET"), true).await;
        assert_eq!(s, StatusCode::CREATED);
        let nav = created["paymentOption"][0]["nav"]
            .as_str()
            .unwrap()
            .to_string();
        let (_, own_doc) = app.call(Method::GET, "/api/openapi.json", None, None).await;
        let mut endpoints: Vec<(String, String)> = Vec::new();
        // Every GPD document incasso serves, at its base path.
        let data = |name: &str| -> Value {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data")
                .join(name);
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
        };
        let documents = [
            ("/gpd/v1", gpd.clone()),
            ("/gpd/v2", data("gpd_v2.json")),
            ("/gpd/v3", data("gpd_v3.json")),
            ("/gpd/upload/v2", data("gpd_massive_v2.json")),
            ("/gpd/payments/v1", data("gpd_payments.json")),
            ("/gpd/send/v1", data("gpd_send_v1.json")),
            ("", own_doc),
        ];
        for (prefix, doc) in &documents {
            for (path, ops) in doc["paths"].as_object().unwrap() {
                for method in ops.as_object().unwrap().keys() {
                    if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                        endpoints.push((method.to_uppercase(), format!("{prefix}{path}")));
                    }
                }
            }
        }
        assert!(endpoints.len() >= 50, "found {} endpoints", endpoints.len());
        let mut checked = 0;
        for (method, template) in &endpoints {
            if template.ends_with("/info") {
                // Who answers: open to anyone, as GPD's.
                continue;
            }
            let path = template
                .replace("{organizationfiscalcode}", A)
                .replace("{organization-fiscal-code}", A)
                .replace("{broker-code}", "15376371009")
                .replace("{file-id}", "x")
                .replace("{iuv}", &nav[1..])
                .replace("{fiscalCode}", A)
                .replace("{iupd}", "SECRET")
                .replace("{nav}", &nav)
                .replace("{stationId}", "ST_01")
                .replace("{code}", "TARI")
                .replace("{year}", "2026")
                .replace("{keyId}", "x");
            let path = if path.ends_with("/transfers") {
                format!("{path}?oldIban={IBAN}")
            } else {
                path
            };
            if !path.contains(A) {
                // Not an Ente resource: intermediary administration.
                let (s, body) = app
                    .call(
                        Method::from_bytes(method.as_bytes()).unwrap(),
                        &path,
                        Some(&app.key_b),
                        Some(&json!({})),
                    )
                    .await;
                // The webhook acknowledgement door takes no key at all: the
                // endpoint's signature is its credential, so a key (any key)
                // gets it no further than a refused, unsigned body.
                let ack_door = path == "/api/v1/webhooks/ack"
                    && (s == StatusCode::BAD_REQUEST || s == StatusCode::UNAUTHORIZED);
                assert!(
                    s == StatusCode::FORBIDDEN
                        || ack_door
                        || (method == "GET"
                            && path == "/api/v1/enti"
                            && !body.to_string().contains(A)),
                    "{method} {path} with an Ente key: {s} {body}"
                );
                continue;
            }
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let (s, body) = app
                .call(
                    m.clone(),
                    &path,
                    Some(&app.key_b),
                    Some(&position_body("SECRET")),
                )
                .await;
            assert!(
                s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND,
                "{backend:?} {method} {path} with Ente B's key answered {s}: {body}"
            );
            let (s, _) = app.call(m, &path, None, None).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path} without a key");
            checked += 1;
        }
        assert!(checked >= 45, "{checked}");
        // And the position is intact.
        let (s, got) = app
            .call(
                Method::GET,
                &format!("/gpd/v1/organizations/{A}/debtpositions/SECRET"),
                Some(&app.key_a),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(got["status"], "VALID");
    }
}

#[tokio::test]
async fn administration_api() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let new_ente = json!({"fiscalCode": "00123456782", "name": "Comune Nuovo", "iban": IBAN, "cbillCode": "ZZ999"});
        // An Ente key cannot create Enti; the intermediary can, once.
        let (s, _) = app
            .call(
                Method::POST,
                "/api/v1/enti",
                Some(&app.key_a),
                Some(&new_ente),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, body) = app
            .call(
                Method::POST,
                "/api/v1/enti",
                Some(&app.admin_key),
                Some(&new_ente),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{backend:?} {body}");
        let (s, _) = app
            .call(
                Method::POST,
                "/api/v1/enti",
                Some(&app.admin_key),
                Some(&new_ente),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        let bad = json!({"fiscalCode": "00123456789", "name": "", "iban": "IT00"});
        let (s, body) = app
            .call(
                Method::POST,
                "/api/v1/enti",
                Some(&app.admin_key),
                Some(&bad),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let fields: Vec<&str> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["fiscalCode", "name", "iban"]);
        // Station: intermediary only; segregation code unique per Ente.
        let station =
            json!({"brokerId": "15376371009", "stationId": "ST_NEW", "segregationCode": 5});
        let (s, _) = app
            .call(
                Method::POST,
                "/api/v1/enti/00123456782/stations",
                Some(&app.admin_key),
                Some(&station),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let again =
            json!({"brokerId": "15376371009", "stationId": "ST_OTHER", "segregationCode": 5});
        let (s, _) = app
            .call(
                Method::POST,
                "/api/v1/enti/00123456782/stations",
                Some(&app.admin_key),
                Some(&again),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        // The Ente's own key manages its offices, accertamenti and catalogue, idempotently.
        let (_, key) = app
            .call(
                Method::POST,
                "/api/v1/enti/00123456782/api-keys",
                Some(&app.admin_key),
                Some(&json!({"label": "gestionale"})),
            )
            .await;
        let key = key["apiKey"].as_str().unwrap().to_string();
        for _ in 0..2 {
            let (s, _) = app
                .call(
                    Method::PUT,
                    "/api/v1/enti/00123456782/offices/TRIB",
                    Some(&key),
                    Some(&json!({"name": "Tributi"})),
                )
                .await;
            assert_eq!(s, StatusCode::OK);
            let acc = json!({"description": "TARI", "chapter": "1010"});
            let (s, _) = app
                .call(
                    Method::PUT,
                    "/api/v1/enti/00123456782/accertamenti/2026/ACC-T",
                    Some(&key),
                    Some(&acc),
                )
                .await;
            assert_eq!(s, StatusCode::OK);
            let service = json!({"name": "TARI", "officeCode": "TRIB", "taxonomyCode": "9/0101101IM/", "defaultAccertamento": "2026/ACC-T", "spontaneous": true});
            let (s, body) = app
                .call(
                    Method::PUT,
                    "/api/v1/enti/00123456782/services/TARI",
                    Some(&key),
                    Some(&service),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{body}");
        }
        let (_, services) = app
            .call(
                Method::GET,
                "/api/v1/enti/00123456782/services",
                Some(&key),
                None,
            )
            .await;
        assert_eq!(services.as_array().unwrap().len(), 1);
        assert_eq!(services[0]["defaultAccertamento"], "2026/ACC-T");
        let bad_service = json!({"name": "X", "taxonomyCode": "9/0000000XX/", "defaultAccertamento": "2026/NOPE"});
        let (s, body) = app
            .call(
                Method::PUT,
                "/api/v1/enti/00123456782/services/X",
                Some(&key),
                Some(&bad_service),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(body["code"], "UNKNOWN_TAXONOMY");
        let (_, accs) = app
            .call(
                Method::GET,
                "/api/v1/enti/00123456782/accertamenti?year=2026",
                Some(&key),
                None,
            )
            .await;
        assert_eq!(accs.as_array().unwrap().len(), 1);
        // A year's accertamenti at once: all or none, errors naming the entry.
        let budget = json!([
            {"year": 2027, "code": "ACC-A", "description": "TARI 2027", "chapter": "1010"},
            {"year": 2027, "code": "ACC-B", "description": "Refezione", "chapter": "3020", "active": false},
        ]);
        let mut broken = budget.clone();
        broken[1]["chapter"] = json!("");
        let (s, body) = app
            .call(
                Method::POST,
                "/api/v1/enti/00123456782/accertamenti",
                Some(&key),
                Some(&broken),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.to_string().contains("[1].chapter"), "{body}");
        let (_, accs) = app
            .call(
                Method::GET,
                "/api/v1/enti/00123456782/accertamenti?year=2027",
                Some(&key),
                None,
            )
            .await;
        assert_eq!(accs.as_array().unwrap().len(), 0, "nothing half-loaded");
        for _ in 0..2 {
            let (s, body) = app
                .call(
                    Method::POST,
                    "/api/v1/enti/00123456782/accertamenti",
                    Some(&key),
                    Some(&budget),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{body}");
            assert_eq!(body["loaded"], 2);
        }
        let (_, accs) = app
            .call(
                Method::GET,
                "/api/v1/enti/00123456782/accertamenti?year=2027",
                Some(&key),
                None,
            )
            .await;
        assert_eq!(accs.as_array().unwrap().len(), 2, "loaded twice, held once");
        assert!(
            accs.as_array()
                .unwrap()
                .iter()
                .any(|a| a["code"] == "ACC-B" && a["active"] == false)
        );
        // Only the intermediary mints keys.
        let (s, _) = app
            .call(
                Method::POST,
                "/api/v1/enti/00123456782/api-keys",
                Some(&key),
                Some(&json!({})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        // An application's key may not manage keys: not even list them,
        // nor revoke another application's (issue 14: a leaked low-trust
        // key locked out all the Ente's integrations).
        let (s, body) = app
            .call(
                Method::GET,
                "/api/v1/enti/00123456782/api-keys",
                Some(&key),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["code"], "FORBIDDEN_SCOPE");
        let (s, body) = app
            .call(
                Method::POST,
                "/api/v1/enti/00123456782/api-keys",
                Some(&app.admin_key),
                Some(&json!({"label": "amministrazione", "scope": "ente_admin"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        let ente_admin = body["apiKey"].as_str().unwrap().to_string();
        let (s, body) = app
            .call(
                Method::POST,
                "/api/v1/enti/00123456782/api-keys",
                Some(&app.admin_key),
                Some(&json!({"scope": "root"})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        let (_, keys) = app
            .call(
                Method::GET,
                "/api/v1/enti/00123456782/api-keys",
                Some(&ente_admin),
                None,
            )
            .await;
        let application = keys
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["scope"] == "ente")
            .unwrap();
        let admin_entry = keys
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["scope"] == "ente_admin")
            .unwrap();
        let key_id = application["keyId"].as_str().unwrap().to_string();
        let (s, _) = app
            .call(
                Method::DELETE,
                &format!(
                    "/api/v1/enti/00123456782/api-keys/{}",
                    admin_entry["keyId"].as_str().unwrap()
                ),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "an application revokes no key");
        // Revoked keys stop working.
        let (s, _) = app
            .call(
                Method::DELETE,
                &format!("/api/v1/enti/00123456782/api-keys/{key_id}"),
                Some(&ente_admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = app
            .call(Method::GET, "/api/v1/enti/00123456782", Some(&key), None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn openapi_and_docs_are_served_offline() {
    let app = spawn_app(Backend::Sqlite).await;
    let (s, doc) = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["paths"]["/api/v1/enti"].is_object());
    assert!(doc["components"]["securitySchemes"]["ApiKey"].is_object());
    let resp = app
        .client
        .get(format!("{}/api/docs/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    assert!(html.contains("swagger-ui"));
    // The Swagger UI assets are inside the binary, not fetched from a CDN.
    let resp = app
        .client
        .get(format!("{}/api/docs/swagger-ui-bundle.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.bytes().await.unwrap().len() > 100_000);
}

/// Every error of the JSON APIs is ProblemJson with a code, also those
/// axum rejects by itself, and every body is checked against its declared
/// type (issue 14). Under /gpd/v1 errors are `application/json`, as
/// gpd.json declares, and absent dates are left out, never `null`.
#[tokio::test]
async fn every_error_is_problem_json_and_gpd_sends_gpds_bytes() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let raw = |method: Method, path: &str, content_type: &str, body: &str| {
            let req = app
                .client
                .request(method, format!("{}{}", app.base, path))
                .header("Ocp-Apim-Subscription-Key", &app.key_a)
                .header("Content-Type", content_type)
                .body(body.to_string());
            async move {
                let resp = req.send().await.unwrap();
                let status = resp.status();
                let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
                let body: Value = serde_json::from_str(&resp.text().await.unwrap())
                    .unwrap_or_else(|e| panic!("{backend:?} {status}: not JSON ({e})"));
                (status, ct, body)
            }
        };
        let cases = [
            (
                Method::PUT,
                format!("/api/v1/enti/{A}/reconciliations/R1"),
                "text/plain",
                "x",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                Method::PUT,
                format!("/api/v1/enti/{A}/reconciliations/R1"),
                "application/json",
                "{\"causale\": 3}",
                StatusCode::BAD_REQUEST,
            ),
            (
                Method::PUT,
                format!("/api/v1/enti/{A}/treasury-settings"),
                "application/json",
                "[]",
                StatusCode::BAD_REQUEST,
            ),
            (
                Method::GET,
                format!("/api/v1/enti/{A}/receipts/%FF%FE/xml"),
                "application/json",
                "",
                StatusCode::BAD_REQUEST,
            ),
            (
                Method::DELETE,
                format!("/api/v1/enti/{A}/receipts"),
                "application/json",
                "",
                StatusCode::METHOD_NOT_ALLOWED,
            ),
        ];
        for (method, path, ct, body, expected) in cases {
            let (status, content_type, problem) = raw(method.clone(), &path, ct, body).await;
            assert_eq!(status, expected, "{backend:?} {method} {path}: {problem}");
            assert_eq!(content_type, "application/problem+json", "{method} {path}");
            assert!(problem["code"].is_string(), "{method} {path}: {problem}");
            assert_eq!(problem["status"], expected.as_u16());
        }
        // An array where an object is declared: refused, nothing issued.
        let (s, body) = app
            .call(
                Method::POST,
                &format!("/api/v1/enti/{A}/api-keys"),
                Some(&app.admin_key),
                Some(&json!([])),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{backend:?}: {body}");
        assert_eq!(body["code"], "BAD_JSON_DATA");
        // GPD: errors as application/json.
        let (status, content_type, problem) = raw(
            Method::GET,
            &format!("/gpd/v1/organizations/{A}/debtpositions/NOPE"),
            "application/json",
            "",
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(content_type, "application/json", "{problem}");
        // An iupd that could never be read back by its URL is refused.
        let (s, body) = app.create(&position_body("A/B"), false).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{backend:?}: {body}");
        // A traffic fine through GPD: two single solutions, each its own
        // notice number (issue 14).
        let mut fine = position_body("MULTA-1");
        let mut full = fine["paymentOption"][0].clone();
        full["dueDate"] = json!(due(60));
        full["retentionDate"] = json!(due(120));
        fine["paymentOption"].as_array_mut().unwrap().push(full);
        let (s, created) = app.create(&fine, true).await;
        assert_eq!(s, StatusCode::CREATED, "{backend:?}: {created}");
        let options = created["paymentOption"].as_array().unwrap();
        assert_eq!(options.len(), 2);
        assert_ne!(options[0]["nav"], options[1]["nav"], "{created}");
        // A draft has no validity, publish or payment date: left out.
        let (s, created) = app.create(&position_body("NO-DATES"), false).await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        let (s, got) = app
            .call(
                Method::GET,
                &format!("/gpd/v1/organizations/{A}/debtpositions/NO-DATES"),
                Some(&app.key_a),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        for key in ["validityDate", "publishDate", "paymentDate"] {
            assert!(got.get(key).is_none(), "{key} in {got}");
            assert!(created.get(key).is_none(), "{key} in {created}");
        }
        for option in got["paymentOption"].as_array().unwrap() {
            for (k, v) in option.as_object().unwrap() {
                assert!(!v.is_null(), "{k} is null in {option}");
            }
        }
    }
}

/// /api/openapi.json tells generated clients the truth (issue 14): every
/// path parameter is in its path and every other parameter in the query;
/// files are binary strings, never arrays of integers; every operation
/// declares the errors any operation can answer.
#[tokio::test]
async fn the_openapi_document_tells_clients_the_truth() {
    let app = spawn_app(Backend::Sqlite).await;
    let (s, doc) = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let mut problems = Vec::new();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let templated: Vec<&str> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            for p in &params {
                let (name, place) = (p["name"].as_str().unwrap(), p["in"].as_str().unwrap());
                match place {
                    "path" if !templated.contains(&name) => {
                        problems.push(format!("{method} {path}: {name} declared in path"))
                    }
                    "path" | "query" | "header" => {}
                    other => problems.push(format!("{method} {path}: {name} in {other}")),
                }
            }
            for t in &templated {
                if !params.iter().any(|p| p["name"] == *t && p["in"] == "path") {
                    problems.push(format!("{method} {path}: path parameter {t} undeclared"));
                }
            }
            for code in ["400", "401", "403", "500"] {
                if op["responses"].get(code).is_none() {
                    problems.push(format!("{method} {path}: no {code}"));
                }
            }
            if op.get("requestBody").is_some() && op["responses"].get("415").is_none() {
                problems.push(format!("{method} {path}: no 415"));
            }
        }
    }
    // No byte array anywhere: a body of files is a binary string.
    fn byte_arrays(v: &Value, at: &str, found: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if m.get("type") == Some(&json!("array"))
                    && m.get("items").and_then(|i| i.get("type")) == Some(&json!("integer"))
                {
                    found.push(at.to_string());
                }
                for (k, v) in m {
                    byte_arrays(v, &format!("{at}/{k}"), found);
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    byte_arrays(v, &format!("{at}/{i}"), found);
                }
            }
            _ => {}
        }
    }
    let mut arrays = Vec::new();
    byte_arrays(&doc, "", &mut arrays);
    assert!(
        arrays.is_empty(),
        "bodies declared as integer arrays: {arrays:#?}"
    );
    // And the OpenAPI validator's word on the whole document.
    let file = std::env::temp_dir().join(format!("incasso-openapi-{}.json", std::process::id()));
    std::fs::write(&file, doc.to_string()).unwrap();
    match std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .ok()
        .filter(|out| !String::from_utf8_lossy(&out.stderr).contains("No module named"))
        .ok_or("no python3 module openapi_spec_validator")
    {
        Ok(out) => assert!(
            out.status.success(),
            "openapi-spec-validator: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) if std::env::var("INCASSO_REQUIRE_TOOLS").is_ok_and(|v| v == "1") => {
            panic!("openapi-spec-validator is needed (scripts/test.sh installs it): {e}")
        }
        Err(_) => eprintln!("note: openapi-spec-validator missing, the document's check skipped"),
    }
    let _ = std::fs::remove_file(&file);
    assert!(operations > 40, "{operations} operations");
    assert!(problems.is_empty(), "{problems:#?}");
}

impl TestApp {
    /// Every item of the list at `path` (a query may follow), `limit` at a
    /// time, following each page's `Link` header as a client would; no page
    /// is longer than `limit`.
    async fn walk(&self, path: &str, limit: u32, key: &str) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{}{path}{sep}limit={limit}", self.base);
        let mut items = Vec::new();
        loop {
            let resp = self
                .client
                .get(&url)
                .header("Ocp-Apim-Subscription-Key", key)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{url}");
            let link = resp
                .headers()
                .get("link")
                .map(|v| v.to_str().unwrap().to_string());
            let page: Vec<Value> = resp.json().await.unwrap();
            assert!(page.len() <= limit as usize, "{url}");
            items.extend(page);
            match link {
                Some(l) => {
                    let next = l
                        .strip_prefix('<')
                        .and_then(|l| l.split_once(">; rel=\"next\""))
                        .unwrap_or_else(|| panic!("Link header: {l}"))
                        .0;
                    url = format!("{}{next}", self.base);
                }
                None => return items,
            }
        }
    }
}

/// Every list has cursor paging: the registries (Enti, stations, offices,
/// services, accertamenti, keys, layouts) walked a page at a time give
/// each item once, in order, as the whole list does; a bad limit or cursor
/// is a 400 with its code.
#[tokio::test]
async fn every_registry_list_is_paged() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let admin = app.admin_key.clone();
        for code in ["UFF-C", "UFF-A", "UFF-B"] {
            let body = json!({"code": code, "name": format!("Ufficio {code}")});
            let path = format!("/api/v1/enti/{A}/offices/{code}");
            let (status, _) = app
                .call(Method::PUT, &path, Some(&admin), Some(&body))
                .await;
            assert!(status.is_success(), "{status}");
        }
        for (year, code) in [(2027, "A-1"), (2025, "Z-9"), (2026, "B-2")] {
            let body = json!({"year": year, "code": code, "description": "Accertamento",
                "chapter": "1010", "active": true});
            let path = format!("/api/v1/enti/{A}/accertamenti/{year}/{code}");
            let (status, _) = app
                .call(Method::PUT, &path, Some(&admin), Some(&body))
                .await;
            assert!(status.is_success(), "{status}");
        }
        for code in ["IMU", "COSAP"] {
            let body = json!({"code": code, "name": code, "taxonomyCode": "9/0101101IM/",
                "spontaneous": false, "active": true});
            let path = format!("/api/v1/enti/{A}/services/{code}");
            let (status, body) = app
                .call(Method::PUT, &path, Some(&admin), Some(&body))
                .await;
            assert!(status.is_success(), "{status} {body}");
        }
        for label in ["gestionale", "portale"] {
            let path = format!("/api/v1/enti/{A}/api-keys");
            let body = json!({"label": label});
            let (status, _) = app
                .call(Method::POST, &path, Some(&admin), Some(&body))
                .await;
            assert_eq!(status, StatusCode::CREATED);
        }
        let lists = [
            ("/api/v1/enti".to_string(), "fiscalCode"),
            (format!("/api/v1/enti/{A}/stations"), "stationId"),
            (format!("/api/v1/enti/{A}/offices"), "code"),
            (format!("/api/v1/enti/{A}/services"), "code"),
            (format!("/api/v1/enti/{A}/accertamenti"), "code"),
            (format!("/api/v1/enti/{A}/api-keys"), "keyId"),
            ("/api/v1/api-keys".to_string(), "keyId"),
            (format!("/api/v1/enti/{A}/layouts"), "name"),
        ];
        for (path, id) in &lists {
            let (status, whole) = app.call(Method::GET, path, Some(&admin), None).await;
            assert_eq!(status, StatusCode::OK, "{path}: {whole}");
            let whole = whole.as_array().unwrap().clone();
            assert!(!whole.is_empty(), "{path}");
            let walked = app.walk(path, 1, &admin).await;
            assert_eq!(walked, whole, "{backend:?} {path}: page by page as whole");
            let ids: Vec<&str> = whole.iter().map(|i| i[id].as_str().unwrap()).collect();
            let unique: std::collections::HashSet<_> = ids.iter().collect();
            assert_eq!(unique.len(), ids.len(), "{path}: each once");
        }
        // Ordered by their natural key: offices by code, accertamenti by
        // year then code (the year's number, not its text).
        let offices = app
            .walk(&format!("/api/v1/enti/{A}/offices"), 2, &admin)
            .await;
        let codes: Vec<&str> = offices
            .iter()
            .map(|o| o["code"].as_str().unwrap())
            .collect();
        assert_eq!(codes, ["UFF-A", "UFF-B", "UFF-C"]);
        let accs = app
            .walk(&format!("/api/v1/enti/{A}/accertamenti"), 2, &admin)
            .await;
        let keys: Vec<(i64, &str)> = accs
            .iter()
            .map(|a| (a["year"].as_i64().unwrap(), a["code"].as_str().unwrap()))
            .collect();
        assert_eq!(
            keys,
            [(2025, "Z-9"), (2026, "ACC-1"), (2026, "B-2"), (2027, "A-1")]
        );
        // A filter is kept from page to page.
        let year = app
            .walk(
                &format!("/api/v1/enti/{A}/accertamenti?year=2026"),
                1,
                &admin,
            )
            .await;
        assert_eq!(year.len(), 2, "{year:?}");
        for (query, code) in [("limit=0", "BAD_LIMIT"), ("cursor=zz", "BAD_CURSOR")] {
            let path = format!("/api/v1/enti/{A}/offices?{query}");
            let (status, body) = app.call(Method::GET, &path, Some(&admin), None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
            assert_eq!(body["code"], code, "{body}");
        }
    }
}

/// GPD as its framework behaves, not only as gpd.json reads (issue 15):
/// `toPublish` takes Spring's booleans in any letter case, and the three
/// kinds of date filter of the list exclude each other.
#[tokio::test]
async fn gpd_reads_booleans_and_date_filters_as_gpd_does() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        for (i, (flag, status)) in [
            ("TRUE", "VALID"),
            ("yes", "VALID"),
            ("On", "VALID"),
            ("1", "VALID"),
            ("False", "DRAFT"),
            ("no", "DRAFT"),
            ("OFF", "DRAFT"),
            ("0", "DRAFT"),
        ]
        .into_iter()
        .enumerate()
        {
            let path = format!("/gpd/v1/organizations/{A}/debtpositions?toPublish={flag}");
            let body = position_body(&format!("BOOL-{i}"));
            let (s, created) = app
                .call(Method::POST, &path, Some(&app.key_a), Some(&body))
                .await;
            assert_eq!(s, StatusCode::CREATED, "{backend:?} {flag}: {created}");
            assert_eq!(created["status"], status, "{backend:?} toPublish={flag}");
        }
        let path = format!("/gpd/v1/organizations/{A}/debtpositions?toPublish=maybe");
        let body = position_body("BOOL-X");
        let (s, refused) = app
            .call(Method::POST, &path, Some(&app.key_a), Some(&body))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{refused}");
        let list = format!("/gpd/v1/organizations/{A}/debtpositions");
        for query in [
            "due_date_from=2026-01-01&payment_date_from=2026-01-01",
            "due_date_to=2026-01-31&payment_date_time_from=2026-01-01T00:00:00",
            "payment_date_to=2026-01-31&payment_date_time_to=2026-01-31T00:00:00",
        ] {
            let (s, body) = app
                .call(
                    Method::GET,
                    &format!("{list}?{query}"),
                    Some(&app.key_a),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{query}: {body}");
        }
        for query in [
            "due_date_from=2026-01-01&due_date_to=2026-01-31",
            "payment_date_time_from=2026-01-01T00:00:00",
        ] {
            let (s, body) = app
                .call(
                    Method::GET,
                    &format!("{list}?{query}"),
                    Some(&app.key_a),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{query}: {body}");
        }
    }
}
