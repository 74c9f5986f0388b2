//! `/gpd/v1` against GPD's own OpenAPI document (issue 14): schemathesis
//! generates requests from `gpd.json` (its examples, a coverage of each
//! parameter's edges, then fuzzing, valid and invalid data alike), sends
//! them to incasso on a fresh database, once per backend, and checks every
//! answer against what gpd.json declares. The test fails on any failure
//! schemathesis reports.
//!
//! schemathesis is a Python tool: `scripts/test.sh` installs a pinned
//! version in a virtual environment and names it in `INCASSO_SCHEMATHESIS`.
//! Without it the test is skipped with a note, or fails under
//! `INCASSO_REQUIRE_TOOLS=1`.
//!
//! The run is fixed: one seed, a bounded number of examples per operation,
//! one worker, no example database, pinned versions of schemathesis and
//! Hypothesis (`scripts/schemathesis-requirements.txt`), so a failure comes
//! back on the next run. `INCASSO_SCHEMATHESIS_ARGS` adds arguments to the
//! run, for a closer look: `--report har --report-dir /tmp/st` keeps every
//! request and answer; `--seed 3 -n 300` tries other cases.

use incasso_app::keys::issue_key;
use incasso_core::codes::NoticeNumber;
use incasso_core::ente::{Ente, StationLink};
use incasso_store::{KeyScope, Store};
use incasso_testkit::{Backend, backends, fresh_database_url};
use serde_json::{Value, json};
use std::time::Instant;

const ENTE: &str = "80000130585";
const SEGREGATION: u8 = 1;
const IBAN: &str = "IT65B0200805364000104567891";
const OTHER_IBAN: &str = "IT61X0306909606100000012345";
const DEBTOR: &str = "RSSMRA85T10A562S";
const CATEGORY: &str = "9/0101101IM/";
const SEED: u64 = 14;
const MAX_EXAMPLES: u32 = 100;

#[path = "common/schemathesis.rs"]
mod schemathesis_tool;
use schemathesis_tool::{Server, schemathesis, serve, version_of};

async fn start(backend: Backend) -> Server {
    let store = Store::connect(&fresh_database_url(backend).await)
        .await
        .unwrap();
    let now = chrono::Utc::now();
    store
        .create_ente(
            &Ente {
                fiscal_code: ENTE.into(),
                name: "Comune di prova".into(),
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
            ENTE,
            &StationLink {
                broker_id: "15376371009".into(),
                station_id: "ST_01".into(),
                segregation_code: SEGREGATION,
            },
            now,
        )
        .await
        .unwrap();
    let (_, key) = issue_key(&store, Some(ENTE), KeyScope::Ente, "conformance")
        .await
        .unwrap();
    serve(store, key, "/gpd/v1").await
}

/// A notice number of the Ente's station, by sequence.
fn nav(sequence: u64) -> String {
    NoticeNumber::generate(SEGREGATION, sequence)
        .unwrap()
        .as_str()
        .to_string()
}

fn position(iupd: &str, iuvs: &[String]) -> Value {
    let options: Vec<Value> = iuvs
        .iter()
        .enumerate()
        .map(|(i, iuv)| {
            json!({
                "iuv": iuv,
                "amount": 10000,
                "description": format!("TARI 2026 rata {}", i + 1),
                "isPartialPayment": iuvs.len() > 1,
                "dueDate": format!("2099-0{}-28T23:59:59Z", i + 1),
                "retentionDate": "2099-12-31T23:59:59Z",
                "paymentOptionMetadata": [{"key": "anno", "value": "2026"}],
                "transfer": [{
                    "idTransfer": "1",
                    "amount": 8000,
                    "organizationFiscalCode": ENTE,
                    "remittanceInformation": "TARI 2026 quota comune",
                    "category": CATEGORY,
                    "iban": IBAN,
                    "transferMetadata": [{"key": "capitolo", "value": "1010"}]
                }, {
                    "idTransfer": "2",
                    "amount": 2000,
                    "organizationFiscalCode": "97000000022",
                    "companyName": "Altro ente",
                    "remittanceInformation": "TARI 2026 quota provincia",
                    "category": CATEGORY,
                    "iban": OTHER_IBAN,
                    "transferMetadata": []
                }]
            })
        })
        .collect();
    json!({
        "iupd": iupd,
        "type": "F",
        "payStandIn": true,
        "fiscalCode": DEBTOR,
        "fullName": "Mario Rossi",
        "streetName": "Via Roma",
        "civicNumber": "1",
        "postalCode": "00100",
        "city": "Roma",
        "province": "RM",
        "country": "IT",
        "email": "mario.rossi@example.com",
        "switchToExpired": false,
        "companyName": "Comune di prova",
        "officeName": "Ufficio Tributi",
        "paymentOption": options
    })
}

/// Positions in each state a GPD client meets, so that the generated
/// requests that name them (the dictionaries below) get real answers, not
/// only 404s: a draft, a published one, a paid one, an invalidated one, one
/// in two installments of which one is paid.
async fn seed(server: &Server) -> Vec<String> {
    use reqwest::Method;
    let org = format!("/organizations/{ENTE}");
    let iuv = |seq: u64| nav(seq)[1..].to_string();
    let plan: [(&str, Vec<u64>, bool); 5] = [
        ("CONF-DRAFT", vec![1], false),
        ("CONF-PUBLISHED", vec![2], true),
        ("CONF-PAID", vec![3], true),
        ("CONF-INVALID", vec![4], true),
        ("CONF-INSTALLMENTS", vec![5, 6], true),
    ];
    for (iupd, seqs, publish) in &plan {
        let iuvs: Vec<String> = seqs.iter().map(|s| iuv(*s)).collect();
        server
            .send(
                Method::POST,
                &format!("{org}/debtpositions?toPublish={publish}"),
                Some(&position(iupd, &iuvs)),
            )
            .await;
    }
    for seq in [3, 5] {
        server
            .send(
                Method::POST,
                &format!("{org}/paymentoptions/paids/{}", nav(seq)),
                Some(&json!({"paymentDate": "2026-01-15T10:00:00Z"})),
            )
            .await;
    }
    server
        .send(
            Method::POST,
            &format!("{org}/debtpositions/CONF-INVALID/invalidate"),
            None,
        )
        .await;
    plan.iter().map(|(iupd, _, _)| iupd.to_string()).collect()
}

/// What the generated run found, pinned so that it does not depend on the
/// seed: GPD's `X-Request-Id` (the caller's is returned, and without one
/// incasso makes one up, as gpd.json says), and `page`, an int32 in
/// gpd.json, refused beyond that as GPD refuses it.
async fn check_findings(server: &Server) {
    let list = format!("{}/gpd/v1/organizations/{ENTE}/debtpositions", server.base);
    for (page, expected) in [("2147483647", 200), ("2147483648", 400)] {
        let resp = server
            .client
            .get(format!("{list}?page={page}"))
            .header("Ocp-Apim-Subscription-Key", &server.key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), expected, "page={page}");
    }
    let url = format!(
        "{}/gpd/v1/organizations/{ENTE}/debtpositions/CONF-DRAFT",
        server.base
    );
    for (sent, method) in [
        (Some("conformance-1"), reqwest::Method::GET),
        (None, reqwest::Method::GET),
        (Some("conformance-2"), reqwest::Method::PATCH),
    ] {
        let mut req = server
            .client
            .request(method.clone(), &url)
            .header("Ocp-Apim-Subscription-Key", &server.key);
        if let Some(id) = sent {
            req = req.header("X-Request-Id", id);
        }
        let resp = req.send().await.unwrap();
        let got = resp.headers()["x-request-id"].to_str().unwrap();
        match sent {
            Some(id) => assert_eq!(got, id, "{method}"),
            None => assert_eq!(got.len(), 36, "a UUID: {got}"),
        }
    }
}

/// gpd.json as schemathesis reads it. What it adds or relaxes, each
/// narrowly, changes no answer a GPD client may get:
/// - every operation with a JSON body may answer 415, which GPD does and
///   gpd.json leaves out: GPD's Spring controllers declare `consumes =
///   application/json`, and Spring answers 415 when the Content-Type is
///   another or, the body being required, missing. incasso does the same,
///   with a ProblemJson body;
/// - a payment option may leave out `iuv` (incasso's IUV coordinator
///   assigns one: the documented extension of crates/server/src/gpd.rs),
///   and `paymentOptionMetadata` and a transfer's `transferMetadata`, read
///   as empty lists as GPD's own models do, so that the check that invalid
///   requests are refused does not count these as accepted by mistake;
/// - `X-Request-Id` is required on every answer, where gpd.json declares
///   it and says in words that it is always returned;
/// - examples of valid requests (gpd.json has none), which schemathesis
///   sends first, so that every operation's success answer is checked too:
///   create a new position, update the draft, publish it, invalidate a
///   published one, mark a notice paid, move an IBAN, read and delete.
fn spec_for_schemathesis() -> Value {
    let mut spec: Value = serde_json::from_str(include_str!("data/gpd.json")).unwrap();
    let iuv = |seq: u64| nav(seq)[1..].to_string();
    // By operationId: the parameters' examples, and the body's.
    let examples = json!({
        "createPosition": {
            "parameters": {"toPublish": true},
            "body": position("CONF-EXAMPLE", &[iuv(90)]),
        },
        "updatePosition": {
            "parameters": {"iupd": "CONF-DRAFT"},
            "body": position("CONF-DRAFT", &[iuv(91), iuv(92)]),
        },
        "publishPosition": {"parameters": {"iupd": "CONF-DRAFT"}},
        "invalidatePosition": {"parameters": {"iupd": "CONF-PUBLISHED"}},
        "setPaymentOptionAsAlreadyPaid": {
            "parameters": {"nav": nav(6)},
            "body": {"paymentDate": "2026-02-01T09:30:00Z"},
        },
        "updateTransferIbanMassive": {
            "parameters": {"oldIban": IBAN},
            "body": {"newIban": "IT60X0542811101000000123456"},
        },
        "getOrganizationDebtPositionByIUPD": {"parameters": {"iupd": "CONF-INSTALLMENTS"}},
        "getOrganizationDebtPositions": {"parameters": {"limit": 50}},
        "deletePosition": {"parameters": {"iupd": "CONF-EXAMPLE"}},
    });
    let mut given = 0;
    let relax = |spec: &mut Value, schema: &str, property: &str| {
        let required = spec["components"]["schemas"][schema]["required"]
            .as_array_mut()
            .unwrap();
        let before = required.len();
        required.retain(|p| p != property);
        assert_eq!(required.len() + 1, before, "{schema}.{property}");
    };
    relax(&mut spec, "PaymentOptionModel", "iuv");
    relax(&mut spec, "PaymentOptionModel", "paymentOptionMetadata");
    relax(&mut spec, "TransferModel", "transferMetadata");
    for item in spec["paths"].as_object_mut().unwrap().values_mut() {
        for (method, op) in item.as_object_mut().unwrap().iter_mut() {
            if method == "parameters" {
                continue;
            }
            for response in op["responses"].as_object_mut().unwrap().values_mut() {
                if let Some(header) = response.pointer_mut("/headers/X-Request-Id") {
                    header["required"] = json!(true);
                }
            }
            if op.get("requestBody").is_some() {
                op["responses"]["415"] = json!({
                    "description": "The body is not JSON.",
                    "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/ProblemJson"}
                    }}
                });
            }
            let Some(example) = op["operationId"].as_str().and_then(|id| examples.get(id)) else {
                continue;
            };
            given += 1;
            for (name, value) in example["parameters"].as_object().unwrap() {
                let param = op["parameters"]
                    .as_array_mut()
                    .unwrap()
                    .iter_mut()
                    .find(|p| p["name"] == *name)
                    .unwrap_or_else(|| panic!("{method}: no parameter {name}"));
                param["example"] = value.clone();
            }
            if let Some(body) = example.get("body") {
                op["requestBody"]["content"]["application/json"]["example"] = body.clone();
            }
        }
    }
    assert_eq!(
        given,
        examples.as_object().unwrap().len(),
        "an example unused"
    );
    spec
}

fn toml_list(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// schemathesis' configuration: which checks run, and dictionaries that
/// make part of the generated path and query values name real data (the
/// seeded positions and notices, the IBANs of their transfers), so that
/// generated requests also reach existing positions and their answers are
/// checked too. Each binding applies only to a share of the values: the
/// rest stay as random as schemathesis makes them.
fn config(iupds: &[String]) -> String {
    let mut known_iupds = iupds.to_vec();
    known_iupds.extend((1..=6).map(|i| format!("CONF-NEW-{i}")));
    // Notice numbers of the seeded options, and two that do not exist.
    let navs: Vec<String> = (1..=8).map(nav).collect();
    format!(
        r#"# Written by crates/server/tests/gpd_conformance.rs.
seed = {SEED}
workers = 1
request-timeout = 20.0

[generation]
max-examples = {MAX_EXAMPLES}
database = "none"

# What a GPD client relies on: no 5xx, only the status codes gpd.json
# declares, the declared content type, bodies that match the declared
# schema (formats included), the declared response headers, 401 without a
# valid key, 405 (with Allow) for a method a path does not have, and every
# request that breaks gpd.json's schemas refused.
#
# Left out:
# - positive_data_acceptance: gpd.json's schemas say little of what GPD
#   accepts (a fiscal code, an IBAN, a taxonomy code, due dates in the
#   future, amounts that add up are GPD's rules, not the schema's), so
#   schema-valid bodies are rightly refused with 400.
# - missing_required_header: gpd.json requires no header, so it has
#   nothing to check.
# - use_after_free, ensure_resource_availability: they judge an answer by
#   an earlier request linked to it, which needs OpenAPI links (gpd.json
#   has none, so there is no stateful phase either).
# - object_level_authorization: it needs a second identity; a key of
#   another Ente is refused before anything else, as tests/api.rs checks.
#
# Fuzzing would also reuse values seen in earlier answers: four times
# slower here, and the dictionaries below already name the real data.
[phases.fuzzing.extra-data-sources]
responses = false

[checks]
enabled = false
not_a_server_error.enabled = true
status_code_conformance.enabled = true
content_type_conformance.enabled = true
response_schema_conformance.enabled = true
response_headers_conformance.enabled = true
ignored_auth.enabled = true
unsupported_method.enabled = true
allow_header_conformance.enabled = true
negative_data_rejection.enabled = true

[dictionaries]
iupds = {{ values = {iupds} }}
navs = {{ values = {navs} }}
ibans = {{ values = {ibans} }}

[parameters]
# The Ente whose key the run holds: another Ente's code would only ever
# get 403, and generated codes would never reach a position.
"path.organizationfiscalcode" = "{ENTE}"
"path.iupd" = {{ dictionary = "iupds", probability = 0.6 }}
"path.nav" = {{ dictionary = "navs", probability = 0.6 }}
"query.oldIban" = {{ dictionary = "ibans", probability = 0.6 }}
# No dictionaries for body fields: with them, generating mixed valid and
# invalid bodies of PaymentPositionModel takes minutes for some seeds. The
# examples added to gpd.json (spec_for_schemathesis) reach the success
# paths of the operations with a body.
"#,
        iupds = toml_list(&known_iupds),
        navs = toml_list(&navs),
        ibans = toml_list(&[IBAN.to_string(), OTHER_IBAN.to_string()]),
    )
}

#[tokio::test]
async fn gpd_v1_conforms_to_gpd_json_under_generated_requests() {
    let exe = schemathesis();
    let version = match version_of(&exe).await {
        Ok(v) => v,
        Err(e) if std::env::var("INCASSO_REQUIRE_TOOLS").is_ok_and(|v| v == "1") => {
            panic!("schemathesis is needed (scripts/test.sh installs it): {e}")
        }
        Err(e) => {
            eprintln!(
                "note: schemathesis missing ({e}), the GPD conformance run skipped; \
                 scripts/test.sh installs it"
            );
            return;
        }
    };
    eprintln!("{version} ({})", exe.display());
    for backend in backends() {
        let server = start(backend).await;
        let iupds = seed(&server).await;
        check_findings(&server).await;
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("gpd.json");
        let document = spec_for_schemathesis();
        std::fs::write(&spec, document.to_string()).unwrap();
        let config_file = dir.path().join("schemathesis.toml");
        std::fs::write(&config_file, config(&iupds)).unwrap();
        let started = Instant::now();
        let out = tokio::process::Command::new(&exe)
            .arg("--config-file")
            .arg(&config_file)
            .arg("run")
            .arg(&spec)
            .arg("--url")
            .arg(format!("{}/gpd/v1", server.base))
            .arg("--header")
            .arg(format!("Ocp-Apim-Subscription-Key: {}", server.key))
            .args(["--no-color", "--output-truncate", "false"])
            // More arguments for a look into a run, such as
            // `--report har --report-dir /tmp/st` (every request and answer).
            .args(
                std::env::var("INCASSO_SCHEMATHESIS_ARGS")
                    .unwrap_or_default()
                    .split_whitespace(),
            )
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{backend:?}: schemathesis found /gpd/v1 not conforming to gpd.json \
             (exit {:?}):\n{stdout}\n{stderr}",
            out.status.code()
        );
        // Every operation of gpd.json was tested, and something was sent.
        let operations = document["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().keys())
            .filter(|k| *k != "parameters")
            .count();
        assert!(
            stdout.contains(&format!("Tested: {operations}\n")),
            "{backend:?}: not every operation was tested:\n{stdout}"
        );
        let cases = stdout
            .lines()
            .find(|l| l.contains(" generated, "))
            .unwrap_or_else(|| panic!("{backend:?}: no count of test cases:\n{stdout}"));
        eprintln!(
            "{backend:?}: {operations} operations, {} in {:.1} s",
            cases.trim(),
            started.elapsed().as_secs_f64()
        );
    }
}
