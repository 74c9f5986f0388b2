//! GPD v2 at `/gpd/v2`, from GPD's document (`tests/data/gpd_v2.json`,
//! openapi_external_v2.json) and GPD's behaviour, on every backend: many
//! positions created, updated or deleted in one call, all or nothing.
//!
//! What GPD does and these tests hold incasso to: create answers 201 and
//! update 200, both with an empty body; delete 200 with the JSON string
//! "The debt position was successfully deleted". One invalid position
//! (400), one iupd that exists already or comes twice (409), one missing
//! on update or delete (404), one with payments on update or delete (409)
//! fails the whole call, and nothing is written. At most 100 positions to
//! create or update and 20 iupds to delete per call (more: 400).
//! `toPublish` takes Spring's booleans. Errors are GPD's ProblemJson as
//! `application/json`, the detail naming the position
//! (`paymentPositions[i] (iupd 'X'): ...`). `GET /info` answers under
//! `/gpd`, `/gpd/v1` and `/gpd/v2`, without a key. An Ente's key never
//! reaches another Ente's positions.
//!
//! What the calls wrote is read back through `/gpd/v1`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::app;
use app::gpd::{DELETED, ENTE, OTHER_ENTE, iuv, nav, position};
use app::schemathesis_tool::Answer;
use app::{TestApp, spawn_app};
use incasso_testkit::backends;

fn positions_path(query: &str) -> String {
    format!("/gpd/v2/organizations/{ENTE}/debtpositions{query}")
}

fn many(positions: &[Value]) -> Value {
    json!({ "paymentPositions": positions })
}

fn iupds(iupds: &[&str]) -> Value {
    json!({ "paymentPositionIUPDs": iupds })
}

impl TestApp {
    /// A call on [`ENTE`]'s v2 positions with its key.
    async fn v2(&self, method: Method, query: &str, body: &Value) -> Answer {
        self.server
            .call(
                method,
                &positions_path(query),
                Some(&self.key_a),
                Some(body),
            )
            .await
    }

    /// The position as `/gpd/v1` reads it, or `None` when it does not exist.
    async fn read(&self, iupd: &str) -> Option<Value> {
        let path = format!("/gpd/v1/organizations/{ENTE}/debtpositions/{iupd}");
        let answer = self
            .server
            .call(Method::GET, &path, Some(&self.key_a), None)
            .await;
        match answer.status {
            StatusCode::OK => Some(answer.json),
            StatusCode::NOT_FOUND => None,
            other => panic!("{:?} GET {iupd}: {other} {}", self.backend, answer.text),
        }
    }

    /// How many positions [`ENTE`] has, as `/gpd/v1`'s list counts them.
    async fn count(&self) -> u64 {
        let path = format!("/gpd/v1/organizations/{ENTE}/debtpositions?limit=1");
        let list = self.server.send(Method::GET, &path, None).await;
        list["page_info"]["items_found"]
            .as_u64()
            .unwrap_or_else(|| panic!("no items_found: {list}"))
    }

    /// Creates `positions` in one v2 call that must succeed.
    async fn create(&self, positions: &[Value], publish: bool) {
        let answer = self
            .v2(
                Method::POST,
                &format!("?toPublish={publish}"),
                &many(positions),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::CREATED,
            "{:?}: {}",
            self.backend,
            answer.text
        );
    }
}

/// GPD's v2 document, whose schemas the answers must match.
fn document() -> Value {
    serde_json::from_str(include_str!("data/gpd_v2.json")).unwrap()
}

/// Checks `value` against one of the v2 document's schemas (formats
/// included), as tests/api.rs does for gpd.json.
fn assert_conforms(schema_name: &str, value: &Value) {
    let schema = json!({
        "$ref": format!("#/components/schemas/{schema_name}"),
        "components": document()["components"],
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
        "{schema_name} does not conform to gpd_v2.json: {errors:#?}\n{value:#}"
    );
}

/// A GPD error: `status`, GPD's ProblemJson as `application/json`, and a
/// detail that begins with `detail`.
fn assert_problem(answer: &Answer, status: StatusCode, detail: &str, context: &str) {
    assert_eq!(answer.status, status, "{context}: {}", answer.text);
    let content_type = answer
        .headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "{context}: content type {content_type:?}"
    );
    assert_conforms("ProblemJson", &answer.json);
    assert_eq!(answer.json["status"], status.as_u16(), "{context}");
    assert!(
        answer.json["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{context}: no title in {}",
        answer.text
    );
    let got = answer.json["detail"].as_str().unwrap_or_default();
    assert!(
        got.starts_with(detail),
        "{context}: detail {got:?} does not begin with {detail:?}"
    );
}

/// A success without a body, as GPD's create (201) and update (200) answer.
fn assert_empty(answer: &Answer, status: StatusCode, context: &str) {
    assert_eq!(answer.status, status, "{context}: {}", answer.text);
    assert_eq!(answer.text, "", "{context}: a body");
}

/// An instant in either of GPD's forms (`...Z`, `....000Z`).
fn instant(v: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    v.as_str().map(|s| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .to_utc()
    })
}

/// `read` (`/gpd/v1`'s answer) holds what `sent` (a PaymentPositionModel)
/// said: the position's own fields, and every option and transfer.
fn assert_reads_as_sent(read: &Value, sent: &Value) {
    let iupd = sent["iupd"].as_str().unwrap();
    for field in ["iupd", "type", "companyName", "officeName"] {
        assert_eq!(read[field], sent[field], "{iupd}.{field}");
    }
    assert_eq!(read["organizationFiscalCode"], ENTE, "{iupd}");
    let read_options = read["paymentOption"].as_array().unwrap();
    let sent_options = sent["paymentOption"].as_array().unwrap();
    assert_eq!(read_options.len(), sent_options.len(), "{iupd}: options");
    for (i, (r, s)) in read_options.iter().zip(sent_options).enumerate() {
        let at = format!("{iupd}.paymentOption[{i}]");
        for field in [
            "iuv",
            "amount",
            "description",
            "isPartialPayment",
            "paymentOptionMetadata",
        ] {
            assert_eq!(r[field], s[field], "{at}.{field}");
        }
        assert_eq!(r["nav"], format!("3{}", s["iuv"].as_str().unwrap()), "{at}");
        assert_eq!(r["status"], "PO_UNPAID", "{at}");
        for field in ["dueDate", "retentionDate"] {
            assert_eq!(instant(&r[field]), instant(&s[field]), "{at}.{field}");
        }
        let read_transfers = r["transfer"].as_array().unwrap();
        let sent_transfers = s["transfer"].as_array().unwrap();
        assert_eq!(
            read_transfers.len(),
            sent_transfers.len(),
            "{at}: transfers"
        );
        for (j, (rt, st)) in read_transfers.iter().zip(sent_transfers).enumerate() {
            for field in [
                "idTransfer",
                "amount",
                "organizationFiscalCode",
                "remittanceInformation",
                "category",
                "iban",
                "transferMetadata",
            ] {
                assert_eq!(rt[field], st[field], "{at}.transfer[{j}].{field}");
            }
        }
    }
}

/// `position` with its first option's amount and transfers changed, and
/// new texts: what an update sends.
fn revised(mut p: Value, amount: i64, label: &str) -> Value {
    p["companyName"] = json!(format!("Comune di prova ({label})"));
    p["officeName"] = json!(format!("Ufficio Tributi ({label})"));
    let option = &mut p["paymentOption"][0];
    option["amount"] = json!(amount);
    option["description"] = json!(format!("TARI 2026 {label}"));
    option["dueDate"] = json!("2099-06-30T12:00:00Z");
    option["paymentOptionMetadata"] = json!([{"key": "revisione", "value": label}]);
    option["transfer"][0]["amount"] = json!(amount - 2000);
    option["transfer"][0]["remittanceInformation"] = json!(format!("TARI 2026 {label}"));
    p
}

/// The read-back check sees a changed amount, a moved due date, a lost
/// transfer, another status: a test built on it can fail.
#[test]
fn the_read_back_check_can_fail() {
    let sent = position("CHECK", &[iuv(1)]);
    let mut read = sent.clone();
    read["organizationFiscalCode"] = json!(ENTE);
    read["paymentOption"][0]["nav"] = json!(nav(1));
    read["paymentOption"][0]["status"] = json!("PO_UNPAID");
    read["paymentOption"][0]["dueDate"] = json!("2099-01-28T23:59:59.000Z");
    assert_reads_as_sent(&read, &sent);
    let changes: [(&str, Value); 4] = [
        ("/paymentOption/0/amount", json!(10001)),
        (
            "/paymentOption/0/dueDate",
            json!("2099-01-28T23:59:58.000Z"),
        ),
        (
            "/paymentOption/0/transfer",
            json!([sent["paymentOption"][0]["transfer"][0]]),
        ),
        ("/paymentOption/0/status", json!("PO_PAID")),
    ];
    for (field, value) in changes {
        let mut wrong = read.clone();
        *wrong.pointer_mut(field).unwrap() = value;
        let caught = std::panic::catch_unwind(|| assert_reads_as_sent(&wrong, &sent));
        assert!(caught.is_err(), "{field} changed and not seen");
    }
}

#[tokio::test]
async fn create_many_creates_every_position_as_v1_reads_it() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let mut legal = position("MANY-3", &[iuv(4)]);
        legal["type"] = json!("G");
        legal["fiscalCode"] = json!(OTHER_ENTE);
        legal["fullName"] = json!("Altro ente");
        let sent = [
            position("MANY-1", &[iuv(1)]),
            position("MANY-2", &[iuv(2), iuv(3)]),
            revised(legal, 25000, "terza"),
        ];
        let resp = app
            .server
            .client
            .post(format!("{}{}", app.server.base, positions_path("")))
            .header("Ocp-Apim-Subscription-Key", &app.key_a)
            .header("X-Request-Id", "v2-create-1")
            .json(&many(&sent))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED, "{backend:?}");
        assert_eq!(resp.headers()["x-request-id"], "v2-create-1", "{backend:?}");
        assert_eq!(resp.text().await.unwrap(), "", "{backend:?}: a body");
        for p in &sent {
            let read = app.read(p["iupd"].as_str().unwrap()).await;
            let read = read.unwrap_or_else(|| panic!("{backend:?}: {} not created", p["iupd"]));
            assert_reads_as_sent(&read, p);
            assert_eq!(read["status"], "DRAFT", "{backend:?}");
        }
        assert_eq!(app.count().await, 3, "{backend:?}");
    }
}

#[tokio::test]
async fn create_many_writes_nothing_when_one_position_fails() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let ctx = |what: &str| format!("{backend:?}: {what}");
        // The second position breaks one of GPD's rules, or is malformed:
        // refused whole, the detail naming the position as far as incasso
        // knows it (see the comments on each).
        let broken = |field: &str, value: Value| {
            let mut p = position("ALL-2", &[iuv(2)]);
            *p.pointer_mut(field).unwrap() = value;
            p
        };
        let cases = [
            (
                "invalid fiscal code",
                broken("/fiscalCode", json!("NON-UN-CF")),
                "paymentPositions[1] (iupd 'ALL-2'): fiscalCode: ",
            ),
            (
                "idTransfer out of range",
                broken("/paymentOption/0/transfer/1/idTransfer", json!("9")),
                "paymentPositions[1] (iupd 'ALL-2'): paymentOption[0].transfer[1].idTransfer: ",
            ),
            // Read before the store: named the same way.
            (
                "idTransfer not a number",
                broken("/paymentOption/0/transfer/1/idTransfer", json!("uno")),
                "paymentPositions[1] (iupd 'ALL-2'): paymentOption[0].transfer[1].idTransfer: ",
            ),
            // Not JSON of the model: the path where it is.
            (
                "amount not a number",
                broken("/paymentOption/0/amount", json!("cento")),
                "paymentPositions[1].paymentOption[0].amount: JSON non conforme",
            ),
        ];
        for (what, second, detail) in cases {
            let answer = app
                .v2(
                    Method::POST,
                    "?toPublish=true",
                    &many(&[position("ALL-1", &[iuv(1)]), second]),
                )
                .await;
            assert_problem(&answer, StatusCode::BAD_REQUEST, detail, &ctx(what));
            assert!(app.read("ALL-1").await.is_none(), "{backend:?} {what}");
        }
        assert!(app.read("ALL-1").await.is_none(), "{backend:?}");
        assert_eq!(app.count().await, 0, "{backend:?}");
        // The same iupd twice in one call.
        let answer = app
            .v2(
                Method::POST,
                "",
                &many(&[position("TWICE", &[iuv(1)]), position("TWICE", &[iuv(2)])]),
            )
            .await;
        assert_problem(
            &answer,
            StatusCode::CONFLICT,
            "paymentPositions[1] (iupd 'TWICE'): ",
            &ctx("twice"),
        );
        assert!(app.read("TWICE").await.is_none(), "{backend:?}");
        // An iupd that exists already: the new one before it is not created
        // either, and the existing one is left as it was.
        app.create(&[position("OLD", &[iuv(5)])], false).await;
        let answer = app
            .v2(
                Method::POST,
                "?toPublish=true",
                &many(&[position("NEW", &[iuv(3)]), position("OLD", &[iuv(4)])]),
            )
            .await;
        assert_problem(
            &answer,
            StatusCode::CONFLICT,
            "paymentPositions[1] (iupd 'OLD'): ",
            &ctx("existing"),
        );
        assert!(app.read("NEW").await.is_none(), "{backend:?}: NEW created");
        let old = app.read("OLD").await.unwrap();
        assert_reads_as_sent(&old, &position("OLD", &[iuv(5)]));
        assert_eq!(old["status"], "DRAFT", "{backend:?}");
        assert_eq!(app.count().await, 1, "{backend:?}");
    }
}

#[tokio::test]
async fn update_many_replaces_every_position_or_none() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let ctx = |what: &str| format!("{backend:?}: {what}");
        app.create(
            &[position("UPD-1", &[iuv(1)]), position("UPD-2", &[iuv(2)])],
            false,
        )
        .await;
        let updated = [
            revised(position("UPD-1", &[iuv(1)]), 12000, "rettifica"),
            position("UPD-2", &[iuv(2), iuv(3)]),
        ];
        let answer = app.v2(Method::PUT, "", &many(&updated)).await;
        assert_empty(&answer, StatusCode::OK, &ctx("update"));
        for p in &updated {
            let read = app.read(p["iupd"].as_str().unwrap()).await.unwrap();
            assert_reads_as_sent(&read, p);
            assert_eq!(read["status"], "DRAFT", "{backend:?}");
        }
        // Each of these fails on its second position, and the first, which
        // alone would be a good update, stays as the update above left it.
        let again = revised(position("UPD-1", &[iuv(1)]), 15000, "seconda");
        let mut bad = position("UPD-2", &[iuv(2)]);
        bad["fiscalCode"] = json!("NON-UN-CF");
        let cases = [
            (
                "missing",
                position("UPD-MISSING", &[iuv(9)]),
                StatusCode::NOT_FOUND,
                "paymentPositions[1] (iupd 'UPD-MISSING'): ",
            ),
            (
                "twice",
                again.clone(),
                StatusCode::CONFLICT,
                "paymentPositions[1] (iupd 'UPD-1'): ",
            ),
            (
                "invalid",
                bad,
                StatusCode::BAD_REQUEST,
                "paymentPositions[1] (iupd 'UPD-2'): ",
            ),
        ];
        for (what, second, status, detail) in cases {
            let answer = app
                .v2(Method::PUT, "", &many(&[again.clone(), second]))
                .await;
            assert_problem(&answer, status, detail, &ctx(what));
            for p in &updated {
                let read = app.read(p["iupd"].as_str().unwrap()).await.unwrap();
                assert_reads_as_sent(&read, p);
            }
        }
        assert!(app.read("UPD-MISSING").await.is_none(), "{backend:?}");
        assert_eq!(app.count().await, 2, "{backend:?}");
    }
}

#[tokio::test]
async fn delete_many_deletes_every_position_or_none() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let ctx = |what: &str| format!("{backend:?}: {what}");
        app.create(
            &[
                position("DEL-1", &[iuv(1)]),
                position("DEL-2", &[iuv(2), iuv(3)]),
                position("DEL-3", &[iuv(4)]),
            ],
            true,
        )
        .await;
        let answer = app
            .v2(Method::DELETE, "", &iupds(&["DEL-1", "DEL-MISSING"]))
            .await;
        assert_problem(
            &answer,
            StatusCode::NOT_FOUND,
            "paymentPositionIUPDs[1] (iupd 'DEL-MISSING'): ",
            &ctx("missing"),
        );
        assert!(app.read("DEL-1").await.is_some(), "{backend:?}: deleted");
        assert_eq!(app.count().await, 3, "{backend:?}");
        let answer = app
            .v2(Method::DELETE, "", &iupds(&["DEL-1", "DEL-2"]))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{backend:?}: {}",
            answer.text
        );
        let content_type = &answer.headers[reqwest::header::CONTENT_TYPE];
        assert!(
            content_type
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{backend:?}: {content_type:?}"
        );
        assert_eq!(answer.json, json!(DELETED), "{backend:?}: {}", answer.text);
        assert!(app.read("DEL-1").await.is_none(), "{backend:?}");
        assert!(app.read("DEL-2").await.is_none(), "{backend:?}");
        assert!(app.read("DEL-3").await.is_some(), "{backend:?}");
        assert_eq!(app.count().await, 1, "{backend:?}");
    }
}

#[tokio::test]
async fn a_position_with_payments_stops_the_whole_update_or_delete() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let ctx = |what: &str| format!("{backend:?}: {what}");
        app.create(&[position("PAID", &[iuv(1)])], true).await;
        app.create(&[position("FREE", &[iuv(2)])], false).await;
        // Paid outside pagoPA, through v2's own path.
        let paid = format!(
            "/gpd/v2/organizations/{ENTE}/paymentoptions/paids/{}",
            nav(1)
        );
        let body = json!({"paymentDate": "2026-01-15T10:00:00Z"});
        let answer = app
            .server
            .call(Method::POST, &paid, Some(&app.key_a), Some(&body))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{backend:?}: {}",
            answer.text
        );
        assert_conforms("PaymentsModelResponse", &answer.json);
        assert_eq!(answer.json["nav"], nav(1), "{backend:?}");
        assert_eq!(answer.json["iuv"], iuv(1), "{backend:?}");
        assert_eq!(answer.json["status"], "PO_PAID", "{backend:?}");
        assert_eq!(
            instant(&answer.json["paymentDate"]),
            instant(&body["paymentDate"]),
            "{backend:?}"
        );
        assert_eq!(app.read("PAID").await.unwrap()["status"], "PAID");
        let again = app
            .server
            .call(Method::POST, &paid, Some(&app.key_a), Some(&body))
            .await;
        assert_problem(&again, StatusCode::CONFLICT, "", &ctx("paid twice"));

        let update = many(&[
            revised(position("FREE", &[iuv(2)]), 15000, "rettifica"),
            position("PAID", &[iuv(1)]),
        ]);
        let answer = app.v2(Method::PUT, "", &update).await;
        assert_problem(
            &answer,
            StatusCode::CONFLICT,
            "paymentPositions[1] (iupd 'PAID'): ",
            &ctx("update"),
        );
        assert_reads_as_sent(
            &app.read("FREE").await.unwrap(),
            &position("FREE", &[iuv(2)]),
        );
        let answer = app.v2(Method::DELETE, "", &iupds(&["FREE", "PAID"])).await;
        assert_problem(
            &answer,
            StatusCode::CONFLICT,
            "paymentPositionIUPDs[1] (iupd 'PAID'): ",
            &ctx("delete"),
        );
        assert!(app.read("FREE").await.is_some(), "{backend:?}: deleted");
        assert_eq!(app.read("PAID").await.unwrap()["status"], "PAID");
    }
}

#[tokio::test]
async fn at_most_100_positions_and_20_iupds_per_call() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let ctx = |what: &str| format!("{backend:?}: {what}");
        let batch = |n: usize| -> Vec<Value> {
            (0..n)
                .map(|i| position(&format!("LIM-{i:03}"), &[iuv(1000 + i as u64)]))
                .collect()
        };
        let answer = app.v2(Method::POST, "", &many(&batch(101))).await;
        assert_problem(
            &answer,
            StatusCode::BAD_REQUEST,
            "paymentPositions",
            &ctx("create 101"),
        );
        assert_eq!(app.count().await, 0, "{backend:?}");
        let answer = app.v2(Method::POST, "", &many(&batch(100))).await;
        assert_empty(&answer, StatusCode::CREATED, &ctx("create 100"));
        assert_eq!(app.count().await, 100, "{backend:?}");

        let mut revisions: Vec<Value> = batch(100)
            .into_iter()
            .map(|p| revised(p, 11000, "limite"))
            .collect();
        revisions.push(position("LIM-100", &[iuv(1100)]));
        let answer = app.v2(Method::PUT, "", &many(&revisions)).await;
        assert_problem(
            &answer,
            StatusCode::BAD_REQUEST,
            "paymentPositions",
            &ctx("update 101"),
        );
        assert_reads_as_sent(&app.read("LIM-000").await.unwrap(), &batch(1)[0]);
        revisions.pop();
        let answer = app.v2(Method::PUT, "", &many(&revisions)).await;
        assert_empty(&answer, StatusCode::OK, &ctx("update 100"));
        assert_reads_as_sent(&app.read("LIM-099").await.unwrap(), &revisions[99]);

        let names: Vec<String> = (0..21).map(|i| format!("LIM-{i:03}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let answer = app.v2(Method::DELETE, "", &iupds(&names)).await;
        assert_problem(
            &answer,
            StatusCode::BAD_REQUEST,
            "paymentPositionIUPDs",
            &ctx("delete 21"),
        );
        assert_eq!(app.count().await, 100, "{backend:?}");
        let answer = app.v2(Method::DELETE, "", &iupds(&names[..20])).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{backend:?}: {}",
            answer.text
        );
        assert_eq!(answer.json, json!(DELETED), "{backend:?}");
        assert_eq!(app.count().await, 80, "{backend:?}");
        assert!(app.read("LIM-019").await.is_none(), "{backend:?}");
        assert!(app.read("LIM-020").await.is_some(), "{backend:?}");
    }
}

#[tokio::test]
async fn to_publish_takes_springs_booleans() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let flags = [
            ("TRUE", "VALID"),
            ("1", "VALID"),
            ("yes", "VALID"),
            ("On", "VALID"),
            ("false", "DRAFT"),
            ("0", "DRAFT"),
            ("No", "DRAFT"),
        ];
        for (i, (flag, status)) in flags.into_iter().enumerate() {
            let pair = [
                position(&format!("PUB-{i}-A"), &[iuv(10 * i as u64 + 1)]),
                position(&format!("PUB-{i}-B"), &[iuv(10 * i as u64 + 2)]),
            ];
            let answer = app
                .v2(Method::POST, &format!("?toPublish={flag}"), &many(&pair))
                .await;
            assert_empty(&answer, StatusCode::CREATED, &format!("{backend:?} {flag}"));
            for p in &pair {
                let read = app.read(p["iupd"].as_str().unwrap()).await.unwrap();
                assert_eq!(read["status"], status, "{backend:?} toPublish={flag}");
            }
        }
        // Without toPublish, a draft; with something that is not a boolean,
        // nothing.
        app.create(&[position("PUB-NONE", &[iuv(100)])], false)
            .await;
        let answer = app
            .v2(
                Method::POST,
                "",
                &many(&[position("PUB-ABSENT", &[iuv(101)])]),
            )
            .await;
        assert_empty(&answer, StatusCode::CREATED, &format!("{backend:?} absent"));
        assert_eq!(app.read("PUB-ABSENT").await.unwrap()["status"], "DRAFT");
        let answer = app
            .v2(
                Method::POST,
                "?toPublish=maybe",
                &many(&[position("PUB-MAYBE", &[iuv(102)])]),
            )
            .await;
        assert_problem(
            &answer,
            StatusCode::BAD_REQUEST,
            "",
            &format!("{backend:?} maybe"),
        );
        assert!(app.read("PUB-MAYBE").await.is_none(), "{backend:?}");
        // An update publishes with Spring's booleans too.
        let answer = app
            .v2(
                Method::PUT,
                "?toPublish=Yes",
                &many(&[position("PUB-NONE", &[iuv(100)])]),
            )
            .await;
        assert_empty(&answer, StatusCode::OK, &format!("{backend:?} update"));
        assert_eq!(app.read("PUB-NONE").await.unwrap()["status"], "VALID");
    }
}

#[tokio::test]
async fn info_answers_under_every_gpd_path_without_a_key() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let mut answers = Vec::new();
        for path in ["/gpd/info", "/gpd/v1/info", "/gpd/v2/info"] {
            for key in [None, Some(app.key_a.as_str()), Some("not-a-key")] {
                let ctx = format!("{backend:?} {path} key {key:?}");
                let answer = app.server.call(Method::GET, path, key, None).await;
                assert_eq!(answer.status, StatusCode::OK, "{ctx}: {}", answer.text);
                let content_type = &answer.headers[reqwest::header::CONTENT_TYPE];
                assert_eq!(content_type, "application/json", "{ctx}");
                assert_conforms("AppInfo", &answer.json);
                let info = answer.json.as_object().unwrap();
                let mut fields: Vec<&str> = info.keys().map(String::as_str).collect();
                fields.sort();
                assert_eq!(fields, ["environment", "name", "version"], "{ctx}");
                for (field, value) in info {
                    assert!(
                        value.as_str().is_some_and(|v| !v.is_empty()),
                        "{ctx}: {field} is {value}"
                    );
                }
                assert_eq!(answer.json["name"], "incasso", "{ctx}");
                assert_eq!(answer.json["version"], env!("CARGO_PKG_VERSION"), "{ctx}");
                answers.push(answer.json);
            }
        }
        assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
        // With GPD's request id, as on every GPD answer.
        let resp = app
            .server
            .client
            .get(format!("{}/gpd/v2/info", app.server.base))
            .header("X-Request-Id", "info-1")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["x-request-id"], "info-1", "{backend:?}");
    }
}

#[tokio::test]
async fn another_entes_key_gets_403_and_writes_nothing() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        app.create(&[position("A-PUBLISHED", &[iuv(1)])], true)
            .await;
        app.create(&[position("A-DRAFT", &[iuv(2)])], false).await;
        let before = [
            app.read("A-PUBLISHED").await.unwrap(),
            app.read("A-DRAFT").await.unwrap(),
        ];
        // B's key is good: it reads B's own positions.
        let own = format!("/gpd/v1/organizations/{OTHER_ENTE}/debtpositions");
        let answer = app
            .server
            .call(Method::GET, &own, Some(&app.key_b), None)
            .await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{backend:?}: {}",
            answer.text
        );

        let paid = format!(
            "/gpd/v2/organizations/{ENTE}/paymentoptions/paids/{}",
            nav(1)
        );
        let calls = [
            (
                Method::POST,
                positions_path("?toPublish=true"),
                many(&[position("B-NEW", &[iuv(3)])]),
            ),
            (
                Method::PUT,
                positions_path("?toPublish=true"),
                many(&[revised(position("A-DRAFT", &[iuv(2)]), 15000, "da B")]),
            ),
            (
                Method::DELETE,
                positions_path(""),
                iupds(&["A-PUBLISHED", "A-DRAFT"]),
            ),
            (
                Method::POST,
                paid,
                json!({"paymentDate": "2026-01-15T10:00:00Z"}),
            ),
        ];
        for (method, path, body) in &calls {
            let ctx = format!("{backend:?} {method} {path}");
            let answer = app
                .server
                .call(method.clone(), path, Some(&app.key_b), Some(body))
                .await;
            assert_problem(&answer, StatusCode::FORBIDDEN, "", &ctx);
            let answer = app
                .server
                .call(method.clone(), path, None, Some(body))
                .await;
            assert_problem(&answer, StatusCode::UNAUTHORIZED, "", &ctx);
        }
        assert!(app.read("B-NEW").await.is_none(), "{backend:?}");
        let after = [
            app.read("A-PUBLISHED").await.unwrap(),
            app.read("A-DRAFT").await.unwrap(),
        ];
        assert_eq!(after, before, "{backend:?}");
        assert_eq!(after[0]["paymentOption"][0]["status"], "PO_UNPAID");
        assert_eq!(app.count().await, 2, "{backend:?}");
    }
}
