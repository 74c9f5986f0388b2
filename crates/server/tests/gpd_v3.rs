//! GPD v3 (`/gpd/v3`, pagoPA's `gpd_v3.json`) end to end, on every backend:
//! a real server on a loopback port, a real HTTP client, a fresh database
//! per test. Every 2xx JSON answer is checked against gpd_v3.json's schemas
//! (a copy in `tests/data/gpd_v3.json`); what v3 writes is read back through
//! v3 and through v1, which keep the same positions.

use chrono::{DateTime, Duration, Utc};
use incasso_core::Cents;
use incasso_core::fdr::{FlowOutcome, FlowPayment, PartyIdKind, ReportingFlow};
use incasso_testkit::backends;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::app;
use app::gpd::{BAD_IBAN, DELETED, ENTE as A, IBAN, OTHER_ENTE as B};
use app::{TestApp, due, spawn_app, today};

impl TestApp {
    /// Any answer, its body as JSON (or as a JSON string when it is not).
    async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let answer = self.server.call(method, path, key, body).await;
        (
            answer.status,
            serde_json::from_str(&answer.text).unwrap_or(Value::String(answer.text)),
        )
    }

    /// As Ente A.
    async fn a(&self, method: Method, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        self.call(method, path, Some(&self.key_a), body).await
    }

    async fn create_v3(&self, body: &Value, publish: bool) -> (StatusCode, Value) {
        self.a(
            Method::POST,
            &format!("{}?toPublish={publish}", v3_list(A)),
            Some(body),
        )
        .await
    }

    /// A v3 create that must succeed (and conform).
    async fn created_v3(&self, body: &Value, publish: bool) -> Value {
        let (s, created) = self.create_v3(body, publish).await;
        assert_eq!(s, StatusCode::CREATED, "{:?}: {created}", self.backend);
        assert_conforms("PaymentPositionModelV3", &created);
        created
    }

    async fn get_v3(&self, iupd: &str) -> Value {
        let (s, got) = self.a(Method::GET, &v3_path(A, iupd), None).await;
        assert_eq!(s, StatusCode::OK, "{:?} GET v3 {iupd}: {got}", self.backend);
        assert_conforms("PaymentPositionModelResponseV3", &got);
        got
    }

    async fn get_v1(&self, iupd: &str) -> Value {
        let (s, got) = self.a(Method::GET, &v1_path(A, iupd), None).await;
        assert_eq!(s, StatusCode::OK, "{:?} GET v1 {iupd}: {got}", self.backend);
        got
    }

    /// The iupds of a v3 list page (which must conform) and its page info.
    async fn list_v3(&self, query: &str) -> (Vec<String>, Value) {
        let (s, page) = self
            .a(Method::GET, &format!("{}?{query}", v3_list(A)), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{:?} {query}: {page}", self.backend);
        assert_conforms("PaymentPositionsInfoV3", &page);
        let iupds = page["payment_position_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["iupd"].as_str().unwrap().to_string())
            .collect();
        (iupds, page["page_info"].clone())
    }

    async fn pay_v1(&self, nav: &str) {
        let (s, paid) = self
            .a(
                Method::POST,
                &format!("/gpd/v1/organizations/{A}/paymentoptions/paids/{nav}"),
                Some(&json!({"paymentDate": Utc::now().to_rfc3339()})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{:?} pay {nav}: {paid}", self.backend);
    }
}

fn v3_list(ente: &str) -> String {
    format!("/gpd/v3/organizations/{ente}/debtpositions")
}

fn v3_path(ente: &str, iupd: &str) -> String {
    format!("/gpd/v3/organizations/{ente}/debtpositions/{iupd}")
}

fn v1_path(ente: &str, iupd: &str) -> String {
    format!("/gpd/v1/organizations/{ente}/debtpositions/{iupd}")
}

fn instant(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a date: {v}")))
        .unwrap()
        .with_timezone(&Utc)
}

fn debtor() -> Value {
    json!({
        "type": "F",
        "fiscalCode": "RSSMRA85T10A562S",
        "fullName": "Mario Rossi",
        "streetName": "Via Roma",
        "civicNumber": "1",
        "postalCode": "00100",
        "city": "Roma",
        "province": "RM",
        "country": "IT",
        "email": "email@domain.com"
    })
}

/// An installment of `amount` due in `days`, with one transfer to Ente A.
fn installment(amount: i64, days: i64, description: &str) -> Value {
    json!({
        "amount": amount,
        "description": description,
        "dueDate": due(days),
        "installmentMetadata": [{"key": "rata", "value": description}],
        "transfer": [{
            "idTransfer": "1",
            "amount": amount,
            "remittanceInformation": description,
            "category": "9/0101101IM/",
            "iban": IBAN,
            "transferMetadata": [{"key": "capitolo", "value": "1010"}]
        }]
    })
}

fn option(installments: Vec<Value>) -> Value {
    json!({
        "description": "TARI 2026",
        "retentionDate": due(365),
        "switchToExpired": false,
        "debtor": debtor(),
        "installments": installments
    })
}

fn v3_body(iupd: &str, options: Vec<Value>) -> Value {
    json!({
        "iupd": iupd,
        "payStandIn": true,
        "companyName": "Comune di prova",
        "officeName": "Ufficio Tributi",
        "paymentOption": options
    })
}

/// One option of one installment (due in 30 days) and one plan of three
/// installments, sent out of due-date order (60, 40, 50 days).
fn single_and_plan(iupd: &str) -> Value {
    v3_body(
        iupd,
        vec![
            option(vec![installment(10000, 30, "TARI unica")]),
            option(vec![
                installment(4000, 60, "TARI rata 3"),
                installment(3000, 40, "TARI rata 1"),
                installment(3000, 50, "TARI rata 2"),
            ]),
        ],
    )
}

/// A v1 position (gpd.json) with these options: (amount, days, partial).
fn v1_body(iupd: &str, options: &[(i64, i64, bool)]) -> Value {
    let options: Vec<Value> = options
        .iter()
        .enumerate()
        .map(|(i, (amount, days, partial))| {
            json!({
                "amount": amount,
                "description": format!("opzione {i}"),
                "isPartialPayment": partial,
                "dueDate": due(*days),
                "retentionDate": due(365),
                "paymentOptionMetadata": [],
                "transfer": [{
                    "idTransfer": "1",
                    "amount": amount,
                    "remittanceInformation": format!("opzione {i}"),
                    "category": "9/0101101IM/",
                    "iban": IBAN,
                    "transferMetadata": []
                }]
            })
        })
        .collect();
    json!({
        "iupd": iupd,
        "type": "F",
        "fiscalCode": "RSSMRA85T10A562S",
        "fullName": "Mario Rossi",
        "switchToExpired": false,
        "companyName": "Comune di prova",
        "paymentOption": options
    })
}

// ------------------------------------------------------------ conformance to gpd_v3.json

fn spec() -> &'static Value {
    static SPEC: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    SPEC.get_or_init(|| serde_json::from_str(include_str!("data/gpd_v3.json")).unwrap())
}

/// What gpd_v3.json (an OpenAPI 3.1 document: JSON Schema 2020-12) finds
/// wrong in `value` as one of its schemas, `$ref`s resolved within it.
fn conformance_errors(schema_name: &str, value: &Value) -> Vec<String> {
    let schema = json!({
        "$ref": format!("#/components/schemas/{schema_name}"),
        "components": spec()["components"],
    });
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    validator
        .iter_errors(value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn assert_conforms(schema_name: &str, value: &Value) {
    let errors = conformance_errors(schema_name, value);
    assert!(
        errors.is_empty(),
        "{schema_name} does not conform to gpd_v3.json: {errors:#?}\n{value:#}"
    );
}

/// The check rejects what gpd_v3.json forbids, so a pass means something.
#[test]
fn the_conformance_check_can_fail() {
    let mut good = json!({"iupd": "X", "companyName": "C", "status": "VALID",
        "paymentOption": [{"switchToExpired": false, "debtor": debtor(),
            "installments": [installment(100, 10, "x")]}]});
    good["paymentOption"][0]["installments"][0]["iuv"] = json!("01000000000000001");
    assert_conforms("PaymentPositionModelV3", &good);
    let spoils: [fn(&mut Value); 6] = [
        |v| v["status"] = json!("INVALID"),
        |v| v["paymentOption"] = json!([]),
        |v| v["paymentOption"][0]["installments"][0]["dueDate"] = json!("domani"),
        |v| v["paymentOption"][0]["installments"][0]["transfer"][0]["iban"] = json!("IT-1"),
        |v| v["paymentOption"][0]["debtor"]["type"] = json!("X"),
        |v| v["paymentOption"][0]["installments"][0]["iuv"] = Value::Null,
    ];
    for spoil in spoils {
        let mut bad = good.clone();
        spoil(&mut bad);
        assert!(
            !conformance_errors("PaymentPositionModelV3", &bad).is_empty(),
            "accepted {bad}"
        );
    }
}

fn installments(option: &Value) -> &Vec<Value> {
    option["installments"].as_array().unwrap()
}

fn options(position: &Value) -> &Vec<Value> {
    position["paymentOption"].as_array().unwrap()
}

fn navs_of_v3(position: &Value) -> Vec<String> {
    let mut navs: Vec<String> = options(position)
        .iter()
        .flat_map(installments)
        .map(|i| i["nav"].as_str().unwrap().to_string())
        .collect();
    navs.sort();
    navs
}

// ------------------------------------------------------------ tests

#[tokio::test]
async fn v3_life_cycle_conforms_to_gpd_v3_json() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let body = single_and_plan("V3-1");

        // create (draft) -> 201 PaymentPositionModelV3
        let created = app.created_v3(&body, false).await;
        assert_eq!(created["iupd"], "V3-1");
        assert_eq!(created["status"], "DRAFT", "{backend:?}");
        assert_eq!(created["companyName"], "Comune di prova");
        assert_eq!(created["payStandIn"], true);
        let opts = options(&created);
        assert_eq!(opts.len(), 2, "{created}");
        assert_eq!(installments(&opts[0]).len(), 1);
        assert_eq!(installments(&opts[1]).len(), 3);
        for o in opts {
            assert_eq!(o["debtor"]["fiscalCode"], "RSSMRA85T10A562S");
            assert_eq!(o["debtor"]["fullName"], "Mario Rossi");
            assert_eq!(o["switchToExpired"], false);
            for i in installments(o) {
                assert_eq!(i["status"], "UNPAID", "{i}");
                let iuv = i["iuv"].as_str().unwrap();
                assert!(iuv.starts_with("01"), "segregation code 01: {iuv}");
                assert_eq!(i["nav"], json!(format!("3{iuv}")));
                assert_eq!(i["transfer"][0]["iban"], IBAN);
                assert_eq!(i["transfer"][0]["organizationFiscalCode"], A);
            }
        }
        // The plan's installments by due date.
        let plan: Vec<i64> = installments(&opts[1])
            .iter()
            .map(|i| i["amount"].as_i64().unwrap())
            .collect();
        assert_eq!(plan, vec![3000, 3000, 4000]);
        assert_eq!(opts[1]["installments"][0]["description"], "TARI rata 1");
        assert_eq!(opts[1]["installments"][2]["description"], "TARI rata 3");
        assert_eq!(
            opts[1]["installments"][2]["installmentMetadata"],
            json!([{"key": "rata", "value": "TARI rata 3"}])
        );
        let navs = navs_of_v3(&created);
        assert_eq!(navs.len(), 4);
        assert!(navs.windows(2).all(|w| w[0] != w[1]), "distinct: {navs:?}");

        // get -> PaymentPositionModelResponseV3
        let got = app.get_v3("V3-1").await;
        assert_eq!(got["organizationFiscalCode"], A);
        assert_eq!(got["status"], "DRAFT");
        assert_eq!(got["officeName"], "Ufficio Tributi");
        assert!(got["insertedDate"].is_string(), "{got}");
        assert!(got.get("publishDate").is_none(), "a draft: {got}");
        assert_eq!(navs_of_v3(&got), navs);
        let first = &got["paymentOption"][0]["installments"][0];
        assert_eq!(first["amount"], 10000);
        assert_eq!(first["organizationFiscalCode"], A);
        assert_eq!(first["status"], "UNPAID");
        assert_eq!(first["fee"], 0);
        assert_eq!(first["transfer"][0]["status"], "T_UNREPORTED");
        assert_eq!(
            first["transfer"][0]["transferMetadata"],
            json!([{"key": "capitolo", "value": "1010"}])
        );

        // update (PUT, its IUVs resent) -> 200 PaymentPositionModelV3
        let mut changed = body.clone();
        changed["companyName"] = json!("Comune aggiornato");
        changed["payStandIn"] = json!(false);
        for (i, o) in options(&created).iter().enumerate() {
            for (j, inst) in installments(o).iter().enumerate() {
                changed["paymentOption"][i]["installments"][j]["iuv"] = inst["iuv"].clone();
            }
        }
        // The resent plan is in due-date order now, as the answer gave it.
        changed["paymentOption"][1]["installments"] = json!([
            installment(3000, 40, "TARI rata 1"),
            installment(3000, 50, "TARI rata 2"),
            installment(5000, 60, "TARI rata 3 rivista"),
        ]);
        for j in 0..3 {
            changed["paymentOption"][1]["installments"][j]["iuv"] =
                created["paymentOption"][1]["installments"][j]["iuv"].clone();
        }
        let (s, updated) = app
            .a(Method::PUT, &v3_path(A, "V3-1"), Some(&changed))
            .await;
        assert_eq!(s, StatusCode::OK, "{backend:?}: {updated}");
        assert_conforms("PaymentPositionModelV3", &updated);
        assert_eq!(updated["companyName"], "Comune aggiornato");
        assert_eq!(updated["payStandIn"], false);
        assert_eq!(updated["status"], "DRAFT");
        assert_eq!(navs_of_v3(&updated), navs, "IUVs kept when resent");
        let got = app.get_v3("V3-1").await;
        assert_eq!(got["companyName"], "Comune aggiornato");
        assert_eq!(got["paymentOption"][1]["installments"][2]["amount"], 5000);
        assert_eq!(
            got["paymentOption"][1]["installments"][2]["description"],
            "TARI rata 3 rivista"
        );

        // the same iupd again -> 409; an update naming another iupd -> 400
        let (s, problem) = app.create_v3(&body, false).await;
        assert_eq!(s, StatusCode::CONFLICT, "{problem}");
        assert_conforms("ProblemJson", &problem);
        let (s, problem) = app
            .a(
                Method::PUT,
                &v3_path(A, "V3-1"),
                Some(&single_and_plan("V3-2")),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{problem}");
        assert_eq!(problem["code"], "IUPD_MISMATCH", "{problem}");

        // publish -> 200 PaymentPositionModelV3, VALID; again -> 409
        let publish = format!("{}/publish", v3_path(A, "V3-1"));
        let (s, published) = app.a(Method::POST, &publish, None).await;
        assert_eq!(s, StatusCode::OK, "{published}");
        assert_conforms("PaymentPositionModelV3", &published);
        assert_eq!(published["status"], "VALID");
        let got = app.get_v3("V3-1").await;
        assert_eq!(got["status"], "VALID");
        assert!(got["publishDate"].is_string(), "{got}");
        let (s, problem) = app.a(Method::POST, &publish, None).await;
        assert_eq!(s, StatusCode::CONFLICT, "{problem}");
        assert_conforms("ProblemJson", &problem);

        // delete -> 200 with GPD's sentence as a JSON string; then 404
        let (s, deleted) = app.a(Method::DELETE, &v3_path(A, "V3-1"), None).await;
        assert_eq!(s, StatusCode::OK, "{deleted}");
        assert_eq!(deleted, json!(DELETED));
        let (s, problem) = app.a(Method::GET, &v3_path(A, "V3-1"), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{problem}");
        assert_conforms("ProblemJson", &problem);
        let (s, _) = app.a(Method::GET, &v1_path(A, "V3-1"), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "gone for v1 too");

        // 404 on an unknown iupd, whatever the operation.
        let unknown = v3_path(A, "NEVER-CREATED");
        let mut put_body = single_and_plan("NEVER-CREATED");
        put_body["companyName"] = json!("x");
        for (m, path, body) in [
            (Method::GET, unknown.clone(), None),
            (Method::PUT, unknown.clone(), Some(&put_body)),
            (Method::DELETE, unknown.clone(), None),
            (Method::POST, format!("{unknown}/publish"), None),
        ] {
            let (s, problem) = app.a(m.clone(), &path, body).await;
            assert_eq!(
                s,
                StatusCode::NOT_FOUND,
                "{backend:?} {m} {path}: {problem}"
            );
            assert_conforms("ProblemJson", &problem);
        }
        let (_, info) = app.list_v3("").await;
        assert_eq!(
            info["items_found"], 0,
            "the PUT on an unknown iupd wrote nothing"
        );
    }
}

/// v3 and v1 keep the same positions: a v3 option of one installment is a
/// v1 single solution, a plan's installments are v1's partial options; and
/// back, single solutions and the plan grouped, by first due date.
#[tokio::test]
async fn v3_and_v1_read_the_same_positions() {
    for backend in backends() {
        let app = spawn_app(backend).await;

        // v3 -> v1: one single + one plan of 3 = 4 options (1 + 3 partial).
        let created = app.created_v3(&single_and_plan("MAP-1"), true).await;
        let v1 = app.get_v1("MAP-1").await;
        let v1_opts = options(&v1);
        assert_eq!(v1_opts.len(), 4, "{backend:?}: {v1}");
        let partial: Vec<bool> = v1_opts
            .iter()
            .map(|o| o["isPartialPayment"].as_bool().unwrap())
            .collect();
        assert_eq!(partial.iter().filter(|p| !**p).count(), 1, "{partial:?}");
        assert_eq!(partial.iter().filter(|p| **p).count(), 3, "{partial:?}");
        let single = v1_opts
            .iter()
            .find(|o| o["isPartialPayment"] == false)
            .unwrap();
        assert_eq!(single["amount"], 10000);
        assert_eq!(
            single["nav"],
            created["paymentOption"][0]["installments"][0]["nav"]
        );
        let mut v1_navs: Vec<String> = v1_opts
            .iter()
            .map(|o| o["nav"].as_str().unwrap().to_string())
            .collect();
        v1_navs.sort();
        assert_eq!(v1_navs, navs_of_v3(&created));
        assert_eq!(v1["type"], "F");
        assert_eq!(v1["status"], "VALID");
        let mut plan_amounts: Vec<i64> = v1_opts
            .iter()
            .filter(|o| o["isPartialPayment"] == true)
            .map(|o| o["amount"].as_i64().unwrap())
            .collect();
        plan_amounts.sort();
        assert_eq!(plan_amounts, vec![3000, 3000, 4000]);

        // v1 -> v3: a single solution (due first) and 2 installments, given
        // in the order 40, 10 (single), 20 days.
        let body = v1_body(
            "MAP-2",
            &[(600, 40, true), (1000, 10, false), (400, 20, true)],
        );
        let (s, made) = app
            .a(
                Method::POST,
                &format!("/gpd/v1/organizations/{A}/debtpositions"),
                Some(&body),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{made}");
        let got = app.get_v3("MAP-2").await;
        let opts = options(&got);
        assert_eq!(opts.len(), 2, "{got}");
        assert_eq!(installments(&opts[0]).len(), 1, "the single solution first");
        assert_eq!(opts[0]["installments"][0]["amount"], 1000);
        let plan: Vec<i64> = installments(&opts[1])
            .iter()
            .map(|i| i["amount"].as_i64().unwrap())
            .collect();
        assert_eq!(plan, vec![400, 600], "installments by due date");
        assert!(
            instant(&opts[1]["installments"][0]["dueDate"])
                < instant(&opts[1]["installments"][1]["dueDate"])
        );
        assert_eq!(opts[0]["debtor"]["fiscalCode"], "RSSMRA85T10A562S");
        assert_eq!(opts[1]["debtor"]["fullName"], "Mario Rossi");

        // The plan first when its first installment is due before the single.
        let body = v1_body(
            "MAP-3",
            &[(1000, 50, false), (700, 30, true), (300, 20, true)],
        );
        let (s, made) = app
            .a(
                Method::POST,
                &format!("/gpd/v1/organizations/{A}/debtpositions"),
                Some(&body),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{made}");
        let got = app.get_v3("MAP-3").await;
        let opts = options(&got);
        assert_eq!(opts.len(), 2, "{got}");
        assert_eq!(installments(&opts[0]).len(), 2, "the plan first: {got}");
        assert_eq!(opts[0]["installments"][0]["amount"], 300);
        assert_eq!(opts[0]["installments"][1]["amount"], 700);
        assert_eq!(opts[1]["installments"][0]["amount"], 1000);

        // Several single solutions (v3 options of one installment each)
        // stay several options, through v1 and back, by due date.
        let body = v3_body(
            "MAP-4",
            vec![
                option(vec![installment(3000, 30, "tre")]),
                option(vec![installment(1000, 10, "uno")]),
                option(vec![installment(2000, 20, "due")]),
            ],
        );
        app.created_v3(&body, false).await;
        let v1 = app.get_v1("MAP-4").await;
        assert_eq!(options(&v1).len(), 3, "{v1}");
        assert!(
            options(&v1).iter().all(|o| o["isPartialPayment"] == false),
            "{v1}"
        );
        let got = app.get_v3("MAP-4").await;
        let opts = options(&got);
        assert_eq!(opts.len(), 3, "{got}");
        let amounts: Vec<i64> = opts
            .iter()
            .map(|o| {
                assert_eq!(installments(o).len(), 1, "{o}");
                o["installments"][0]["amount"].as_i64().unwrap()
            })
            .collect();
        assert_eq!(amounts, vec![1000, 2000, 3000], "by due date");

        // A v1 position of one single solution is one v3 option.
        let body = v1_body("MAP-5", &[(2500, 15, false)]);
        let (s, _) = app
            .a(
                Method::POST,
                &format!("/gpd/v1/organizations/{A}/debtpositions"),
                Some(&body),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let got = app.get_v3("MAP-5").await;
        assert_eq!(options(&got).len(), 1);
        assert_eq!(installments(&options(&got)[0]).len(), 1);
        assert_eq!(got["paymentOption"][0]["installments"][0]["amount"], 2500);
    }
}

/// What a position cannot keep is refused with its code, never dropped,
/// and nothing is written; core's errors name the request's own paths.
#[tokio::test]
async fn v3_refuses_what_positions_cannot_keep() {
    type Spoil = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Spoil, &str, &str)> = vec![
        (
            "different debtors",
            Box::new(|b| b["paymentOption"][1]["debtor"]["fullName"] = json!("Luigi Verdi")),
            "V3_OPTIONS_DIFFER",
            "paymentOption[1].debtor",
        ),
        (
            "different debtor fiscal codes",
            Box::new(|b| b["paymentOption"][0]["debtor"]["fiscalCode"] = json!("VRDLGU80A01H501Y")),
            "V3_OPTIONS_DIFFER",
            "paymentOption[1].debtor",
        ),
        (
            "different validityDate",
            Box::new(|b| b["paymentOption"][1]["validityDate"] = json!(due(5))),
            "V3_OPTIONS_DIFFER",
            "paymentOption[1].validityDate",
        ),
        (
            "different switchToExpired",
            Box::new(|b| b["paymentOption"][1]["switchToExpired"] = json!(true)),
            "V3_OPTIONS_DIFFER",
            "paymentOption[1].switchToExpired",
        ),
        (
            "two installment plans",
            Box::new(|b| {
                let plan = b["paymentOption"][1].clone();
                b["paymentOption"] = json!([plan.clone(), plan]);
            }),
            "V3_MULTIPLE_PLANS",
            "paymentOption[1]",
        ),
        (
            "an option without installments",
            Box::new(|b| b["paymentOption"][1]["installments"] = json!([])),
            "NO_INSTALLMENTS",
            "paymentOption[1].installments",
        ),
        (
            "no options",
            Box::new(|b| b["paymentOption"] = json!([])),
            "NO_PAYMENT_OPTIONS",
            "paymentOption",
        ),
        (
            "an invalid IBAN in the third installment of the plan",
            Box::new(|b| {
                b["paymentOption"][1]["installments"][2]["transfer"][0]["iban"] = json!(BAD_IBAN)
            }),
            "BAD_IBAN",
            "paymentOption[1].installments[2].transfer[0].iban",
        ),
        (
            "a zero amount in the single solution",
            Box::new(|b| {
                b["paymentOption"][0]["installments"][0]["amount"] = json!(0);
                b["paymentOption"][0]["installments"][0]["transfer"][0]["amount"] = json!(0);
            }),
            "AMOUNT_NOT_POSITIVE",
            "paymentOption[0].installments[0].amount",
        ),
        (
            "a malformed nav in the plan",
            Box::new(|b| b["paymentOption"][1]["installments"][1]["nav"] = json!("12")),
            "BAD_IUV",
            "paymentOption[1].installments[1].nav",
        ),
    ];
    for backend in backends() {
        let app = spawn_app(backend).await;
        // One to update, which a refused update must leave as it was.
        app.created_v3(&single_and_plan("KEEP"), false).await;
        for (name, spoil, code, path) in &cases {
            let mut body = single_and_plan("BAD");
            spoil(&mut body);
            let (s, problem) = app.create_v3(&body, true).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{backend:?} {name}: {problem}");
            assert_eq!(problem["code"], *code, "{backend:?} {name}: {problem}");
            assert_conforms("ProblemJson", &problem);
            let detail = problem["detail"].as_str().unwrap_or("");
            assert!(
                detail.contains(path),
                "{backend:?} {name}: the detail names {path}: {problem}"
            );
            let (s, _) = app.a(Method::GET, &v3_path(A, "BAD"), None).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{name}: a refused create wrote");

            let mut body = single_and_plan("KEEP");
            body["companyName"] = json!("Mai scritto");
            spoil(&mut body);
            let (s, problem) = app.a(Method::PUT, &v3_path(A, "KEEP"), Some(&body)).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{backend:?} {name}: {problem}");
            assert_eq!(problem["code"], *code, "{backend:?} {name} (update)");
            let got = app.get_v3("KEEP").await;
            assert_eq!(
                got["companyName"], "Comune di prova",
                "{name}: update wrote"
            );
        }
        // The field of core's error, with the v3 path too.
        let mut body = single_and_plan("BAD");
        body["paymentOption"][1]["installments"][2]["transfer"][0]["iban"] = json!(BAD_IBAN);
        let (_, problem) = app.create_v3(&body, false).await;
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("errors: {problem}"))
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            vec!["paymentOption[1].installments[2].transfer[0].iban"],
            "{problem}"
        );
        assert!(
            !problem["detail"]
                .as_str()
                .unwrap()
                .contains("paymentOption[3]"),
            "v1's index of the option leaks: {problem}"
        );
        // More than one single solution with a plan is core's refusal.
        let mut body = single_and_plan("BAD");
        let single = body["paymentOption"][0].clone();
        body["paymentOption"].as_array_mut().unwrap().push(single);
        let (s, problem) = app.create_v3(&body, false).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{problem}");
        assert_eq!(problem["code"], "MULTIPLE_SINGLE_SOLUTIONS", "{problem}");
        let (_, info) = app.list_v3("").await;
        assert_eq!(info["items_found"], 1, "{backend:?}: only KEEP");
    }
}

/// States as v3 names them, from what v1 did (invalidate, paid), from the
/// reporting flows and from time; the list's status filter, paging,
/// ordering and date filters.
#[tokio::test]
async fn v3_states_and_list_filters() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let single = |iupd: &str| v3_body(iupd, vec![option(vec![installment(5000, 30, "unica")])]);
        app.created_v3(&single("L-1"), false).await; // DRAFT
        app.created_v3(&single("L-2"), true).await; // VALID

        // L-3: invalidated through v1 -> UNPAYABLE
        app.created_v3(&single("L-3"), true).await;
        let (s, inv) = app
            .a(
                Method::POST,
                &format!("{}/invalidate", v1_path(A, "L-3")),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{inv}");
        assert_eq!(inv["status"], "INVALID");
        let got = app.get_v3("L-3").await;
        assert_eq!(got["status"], "UNPAYABLE", "{backend:?}: {got}");
        assert_eq!(app.get_v1("L-3").await["status"], "INVALID");

        // L-4: expired (switchToExpired, its due date passed) -> UNPAYABLE.
        // Written at an instant ten days ago, when its due date was ahead.
        let mut expired = v3_body("L-4", vec![option(vec![installment(5000, -5, "scaduta")])]);
        expired["paymentOption"][0]["switchToExpired"] = json!(true);
        let model: incasso_server::gpd::v3::PaymentPositionModelV3 =
            serde_json::from_value(expired).unwrap();
        let (position, _) = model.into_domain().map_err(|e| e.detail).unwrap();
        app.store
            .create_position(A, position, Utc::now() - Duration::days(10), true)
            .await
            .unwrap();
        let got = app.get_v3("L-4").await;
        assert_eq!(got["status"], "UNPAYABLE", "{backend:?}: {got}");
        assert_eq!(app.get_v1("L-4").await["status"], "EXPIRED");

        // L-5: paid through v1 -> PAID, installment PAID.
        let created = app.created_v3(&single("L-5"), true).await;
        let nav5 = created["paymentOption"][0]["installments"][0]["nav"]
            .as_str()
            .unwrap()
            .to_string();
        app.pay_v1(&nav5).await;
        let got = app.get_v3("L-5").await;
        assert_eq!(got["status"], "PAID", "{backend:?}: {got}");
        let inst = &got["paymentOption"][0]["installments"][0];
        assert_eq!(inst["status"], "PAID", "{got}");
        assert!(inst["paymentDate"].is_string(), "{got}");
        assert!(got["paymentDate"].is_string(), "{got}");

        // L-6: paid, and its transfer listed by a reporting flow: v1 says
        // REPORTED, v3 PAID with the installment REPORTED.
        let created = app.created_v3(&single("L-6"), true).await;
        let inst = &created["paymentOption"][0]["installments"][0];
        let (nav6, iuv6) = (
            inst["nav"].as_str().unwrap().to_string(),
            inst["iuv"].as_str().unwrap().to_string(),
        );
        app.pay_v1(&nav6).await;
        let flow = ReportingFlow {
            flow_id: format!("{}ABI03069-1", today()),
            flow_date_time: Utc::now(),
            settlement_ref: "TRN-1".into(),
            settlement_date: today(),
            psp_id: "ABI03069".into(),
            psp_id_kind: PartyIdKind::Abi,
            psp_name: None,
            bic: None,
            ente: A.into(),
            ente_name: None,
            declared_count: 1,
            declared_total: Cents(5000),
            payments: vec![FlowPayment {
                iuv: iuv6.clone(),
                iur: "IUR-1".into(),
                transfer_index: Some(1),
                amount: Cents(5000),
                outcome: FlowOutcome::Paid,
                outcome_date: today(),
            }],
            revision: None,
        };
        app.store.store_flow(A, &flow, Utc::now()).await.unwrap();
        assert_eq!(app.get_v1("L-6").await["status"], "REPORTED", "{backend:?}");
        let got = app.get_v3("L-6").await;
        assert_eq!(got["status"], "PAID", "{backend:?}: {got}");
        let inst = &got["paymentOption"][0]["installments"][0];
        assert_eq!(inst["status"], "REPORTED", "{got}");
        assert_eq!(inst["transfer"][0]["status"], "T_REPORTED", "{got}");
        assert!(inst["reportingDate"].is_string(), "{got}");

        // L-7: a plan, one installment paid -> PARTIALLY_PAID.
        let plan = v3_body(
            "L-7",
            vec![option(vec![
                installment(2000, 20, "rata 1"),
                installment(3000, 40, "rata 2"),
            ])],
        );
        let created = app.created_v3(&plan, true).await;
        let nav7 = created["paymentOption"][0]["installments"][0]["nav"]
            .as_str()
            .unwrap()
            .to_string();
        app.pay_v1(&nav7).await;
        let got = app.get_v3("L-7").await;
        assert_eq!(got["status"], "PARTIALLY_PAID", "{backend:?}: {got}");
        assert_eq!(got["paymentOption"][0]["installments"][0]["status"], "PAID");
        assert_eq!(
            got["paymentOption"][0]["installments"][1]["status"],
            "UNPAID"
        );

        // L-8: published, valid from a future date -> PUBLISHED, its
        // validityDate on every option.
        let mut later = single("L-8");
        later["paymentOption"][0]["validityDate"] = json!(due(2));
        let created = app.created_v3(&later, true).await;
        assert_eq!(created["status"], "PUBLISHED", "{backend:?}: {created}");
        let got = app.get_v3("L-8").await;
        assert_eq!(got["status"], "PUBLISHED");
        assert!(got["paymentOption"][0]["validityDate"].is_string(), "{got}");

        // The status filter, in v3's names.
        for (status, expected) in [
            ("DRAFT", vec!["L-1"]),
            ("PUBLISHED", vec!["L-8"]),
            ("VALID", vec!["L-2"]),
            ("UNPAYABLE", vec!["L-3", "L-4"]),
            ("PARTIALLY_PAID", vec!["L-7"]),
            ("PAID", vec!["L-5", "L-6"]),
        ] {
            let (iupds, info) = app
                .list_v3(&format!("status={status}&orderby=IUPD&ordering=ASC"))
                .await;
            assert_eq!(iupds, expected, "{backend:?} status={status}");
            assert_eq!(info["items_found"], expected.len(), "{status}");
            // Each listed position says that state.
            let (_, page) = app
                .a(
                    Method::GET,
                    &format!("{}?status={status}", v3_list(A)),
                    None,
                )
                .await;
            for p in page["payment_position_list"].as_array().unwrap() {
                assert_eq!(p["status"], status, "{p}");
            }
        }
        // v1's names are not v3's.
        for status in ["INVALID", "EXPIRED", "REPORTED", "paid"] {
            let (s, problem) = app
                .a(
                    Method::GET,
                    &format!("{}?status={status}", v3_list(A)),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "status={status}: {problem}");
            assert_conforms("ProblemJson", &problem);
        }

        // Paging and ordering by IUPD.
        let all: Vec<&str> = vec!["L-1", "L-2", "L-3", "L-4", "L-5", "L-6", "L-7", "L-8"];
        let (iupds, info) = app
            .list_v3("limit=3&page=0&orderby=IUPD&ordering=ASC")
            .await;
        assert_eq!(iupds, all[..3].to_vec(), "{backend:?}");
        assert_eq!(
            info,
            json!({"page": 0, "limit": 3, "items_found": 8, "total_pages": 3})
        );
        let (iupds, info) = app
            .list_v3("limit=3&page=2&orderby=IUPD&ordering=ASC")
            .await;
        assert_eq!(iupds, vec!["L-7", "L-8"]);
        assert_eq!(info["page"], 2);
        let (iupds, _) = app
            .list_v3("limit=3&page=0&orderby=IUPD&ordering=DESC")
            .await;
        assert_eq!(iupds, vec!["L-8", "L-7", "L-6"]);
        let (iupds, _) = app.list_v3("limit=50&orderby=IUPD&ordering=DESC").await;
        let mut reversed = all.clone();
        reversed.reverse();
        assert_eq!(iupds, reversed);
        let (iupds, info) = app.list_v3("limit=3&page=3&orderby=IUPD").await;
        assert!(iupds.is_empty(), "past the last page: {iupds:?}");
        assert_eq!(info["items_found"], 8);
        let (iupds, info) = app.list_v3("").await;
        assert_eq!(iupds.len(), 8, "GPD's default limit is 10");
        assert_eq!(info["limit"], 10);
        // GPD's default order: the latest inserted first (L-4 was written
        // with an instant ten days ago).
        let (_, page) = app.a(Method::GET, &v3_list(A), None).await;
        let inserted: Vec<_> = page["payment_position_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| instant(&p["insertedDate"]))
            .collect();
        assert!(
            inserted.windows(2).all(|w| w[0] >= w[1]),
            "{backend:?}: {inserted:?}"
        );
        assert_eq!(iupds.last().map(String::as_str), Some("L-4"), "{iupds:?}");
        for bad in [
            "limit=51",
            "limit=0",
            "orderby=NAME",
            "ordering=UP",
            "page=-1",
        ] {
            let (s, problem) = app
                .a(Method::GET, &format!("{}?{bad}", v3_list(A)), None)
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {problem}");
        }

        // Date filters: due dates (L-4's, five days ago), payment dates (today).
        let day = |d: i64| (today() + Duration::days(d)).to_string();
        let (iupds, _) = app
            .list_v3(&format!(
                "due_date_from={}&due_date_to={}&orderby=IUPD&ordering=ASC",
                day(-7),
                day(-3)
            ))
            .await;
        assert_eq!(iupds, vec!["L-4"], "{backend:?}");
        let (iupds, _) = app
            .list_v3(&format!(
                "payment_date_from={}&payment_date_to={}&orderby=IUPD&ordering=ASC",
                day(-1),
                day(1)
            ))
            .await;
        assert_eq!(iupds, vec!["L-5", "L-6", "L-7"], "{backend:?}");
        let (iupds, _) = app
            .list_v3(&format!(
                "payment_date_time_from={}T00:00:00&orderby=IUPD&ordering=ASC",
                day(-1)
            ))
            .await;
        assert_eq!(iupds, vec!["L-5", "L-6", "L-7"], "{backend:?}");
        let (iupds, _) = app
            .list_v3(&format!(
                "payment_date_from={}&payment_date_to={}",
                day(-20),
                day(-10)
            ))
            .await;
        assert!(iupds.is_empty(), "{iupds:?}");
        // The three groups exclude each other.
        for query in [
            format!("due_date_from={}&payment_date_from={}", day(0), day(0)),
            format!(
                "due_date_to={}&payment_date_time_from={}T00:00:00",
                day(0),
                day(0)
            ),
            format!(
                "payment_date_to={}&payment_date_time_to={}T00:00:00",
                day(0),
                day(0)
            ),
        ] {
            let (s, problem) = app
                .a(Method::GET, &format!("{}?{query}", v3_list(A)), None)
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{query}: {problem}");
            assert_eq!(problem["code"], "FILTERS_EXCLUSIVE", "{problem}");
            assert_conforms("ProblemJson", &problem);
        }
        // States v1 reached are still refused their transitions through v3.
        let (s, problem) = app
            .a(
                Method::POST,
                &format!("{}/publish", v3_path(A, "L-3")),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "publish an invalid one: {problem}");
        let (s, problem) = app.a(Method::DELETE, &v3_path(A, "L-5"), None).await;
        assert_eq!(s, StatusCode::CONFLICT, "delete a paid one: {problem}");
        let mut body = single("L-5");
        body["companyName"] = json!("x");
        let (s, problem) = app.a(Method::PUT, &v3_path(A, "L-5"), Some(&body)).await;
        assert_eq!(s, StatusCode::CONFLICT, "update a paid one: {problem}");
        assert_eq!(app.get_v3("L-5").await["companyName"], "Comune di prova");
    }
}

/// A key of Ente B on Ente A's v3 paths: 403, and nothing is written,
/// neither in A nor in B. Without a key: 401.
#[tokio::test]
async fn another_entes_key_cannot_use_v3_on_its_positions() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        app.created_v3(&single_and_plan("MINE"), false).await;
        let mut hostile = single_and_plan("MINE");
        hostile["companyName"] = json!("Scritto da B");
        let mut new_one = single_and_plan("FROM-B");
        new_one["companyName"] = json!("Scritto da B");
        let path = v3_path(A, "MINE");
        let calls: Vec<(Method, String, Option<&Value>)> = vec![
            (Method::GET, v3_list(A), None),
            (
                Method::POST,
                format!("{}?toPublish=true", v3_list(A)),
                Some(&new_one),
            ),
            (Method::GET, path.clone(), None),
            (
                Method::PUT,
                format!("{path}?toPublish=true"),
                Some(&hostile),
            ),
            (Method::POST, format!("{path}/publish"), None),
            (Method::DELETE, path.clone(), None),
        ];
        for (m, p, body) in &calls {
            let (s, answer) = app.call(m.clone(), p, Some(&app.key_b), *body).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{backend:?} {m} {p}: {answer}");
            assert!(
                !answer.to_string().contains("Comune di prova"),
                "{m} {p} leaks A's position: {answer}"
            );
            let (s, _) = app.call(m.clone(), p, None, *body).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{m} {p} without a key");
        }
        let got = app.get_v3("MINE").await;
        assert_eq!(got["companyName"], "Comune di prova");
        assert_eq!(got["status"], "DRAFT");
        let (_, info) = app.list_v3("").await;
        assert_eq!(
            info["items_found"], 1,
            "{backend:?}: FROM-B not created in A"
        );
        let (s, page) = app
            .call(Method::GET, &v3_list(B), Some(&app.key_b), None)
            .await;
        assert_eq!(s, StatusCode::OK, "B's own list: {page}");
        assert_eq!(page["page_info"]["items_found"], 0, "nor in B: {page}");
        // B's own position with A's iupd is B's, and A's is untouched.
        let (s, made) = app
            .call(
                Method::POST,
                &v3_list(B),
                Some(&app.key_b),
                Some(&single_and_plan("MINE")),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{made}");
        assert!(
            made["paymentOption"][0]["installments"][0]["iuv"]
                .as_str()
                .unwrap()
                .starts_with("02"),
            "B's segregation code: {made}"
        );
        let (s, _) = app
            .call(Method::DELETE, &v3_path(B, "MINE"), Some(&app.key_b), None)
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(app.get_v3("MINE").await["companyName"], "Comune di prova");
    }
}

/// `toPublish` as GPD's framework (Spring) reads a boolean, on create and
/// on update; anything else is 400 and writes nothing.
#[tokio::test]
async fn v3_to_publish_takes_spring_booleans() {
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
            ("", "DRAFT"),
        ]
        .into_iter()
        .enumerate()
        {
            let iupd = format!("BOOL-{i}");
            let path = format!("{}?toPublish={flag}", v3_list(A));
            let (s, created) = app
                .a(Method::POST, &path, Some(&single_and_plan(&iupd)))
                .await;
            assert_eq!(s, StatusCode::CREATED, "{backend:?} {flag}: {created}");
            assert_conforms("PaymentPositionModelV3", &created);
            assert_eq!(created["status"], status, "{backend:?} toPublish={flag}");
            assert_eq!(app.get_v3(&iupd).await["status"], status);
        }
        // Update: a draft published by the update's flag.
        let path = format!("{}?toPublish=YES", v3_path(A, "BOOL-4"));
        let (s, updated) = app
            .a(Method::PUT, &path, Some(&single_and_plan("BOOL-4")))
            .await;
        assert_eq!(s, StatusCode::OK, "{updated}");
        assert_eq!(updated["status"], "VALID");
        assert_eq!(app.get_v3("BOOL-4").await["status"], "VALID");
        // A published one back to draft when updated without the flag.
        let path = format!("{}?toPublish=off", v3_path(A, "BOOL-0"));
        let (s, updated) = app
            .a(Method::PUT, &path, Some(&single_and_plan("BOOL-0")))
            .await;
        assert_eq!(s, StatusCode::OK, "{updated}");
        assert_eq!(updated["status"], "DRAFT");

        let path = format!("{}?toPublish=maybe", v3_list(A));
        let (s, problem) = app
            .a(Method::POST, &path, Some(&single_and_plan("BOOL-X")))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("maybe"),
            "{problem}"
        );
        let (s, _) = app.a(Method::GET, &v3_path(A, "BOOL-X"), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let path = format!("{}?toPublish=2", v3_path(A, "BOOL-5"));
        let (s, _) = app
            .a(Method::PUT, &path, Some(&single_and_plan("BOOL-5")))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(app.get_v3("BOOL-5").await["status"], "DRAFT");
    }
}

/// As GPD's own installments scenario sends it: a plan first, then a single
/// solution, all due the same day. Options due the same day keep the order
/// they were sent in, so `paymentOption[0]` is still the plan.
#[tokio::test]
async fn v3_options_due_the_same_day_keep_the_order_sent() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let day = due(30);
        let mut plan = option(vec![
            installment(3000, 30, "rata 1"),
            installment(3000, 30, "rata 2"),
        ]);
        for i in plan["installments"].as_array_mut().unwrap() {
            i["dueDate"] = json!(day);
        }
        let mut single = option(vec![installment(6000, 30, "unica")]);
        single["installments"][0]["dueDate"] = json!(day);
        for (iupd, first_len, second_len, options_sent) in [
            ("TIE-PLAN-FIRST", 2, 1, vec![plan.clone(), single.clone()]),
            ("TIE-SINGLE-FIRST", 1, 2, vec![single, plan]),
        ] {
            let created = app.created_v3(&v3_body(iupd, options_sent), true).await;
            for answer in [created, app.get_v3(iupd).await] {
                let got = options(&answer);
                assert_eq!(
                    installments(&got[0]).len(),
                    first_len,
                    "{backend:?} {iupd}: {answer}"
                );
                assert_eq!(
                    installments(&got[1]).len(),
                    second_len,
                    "{backend:?} {iupd}"
                );
            }
        }
    }
}
