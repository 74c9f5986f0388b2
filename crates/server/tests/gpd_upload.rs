//! GPD's massive upload v2 (`/gpd/upload/v2`, pagoPA's
//! `gpd_massive_v2.json`) end to end, on every backend: ZIPs built here,
//! sent as multipart/form-data (written by hand: the workspace's reqwest
//! has no `multipart` feature), followed by status and report, the
//! positions read back through GPD v1 and the upload read back from the
//! supplies archive. Every 2xx JSON answer is checked against the
//! document's schemas (its `components`, copied below).

use chrono::{Duration, Utc};
use incasso_testkit::backends;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::io::Write;

use crate::common::app;
use app::gpd::{BAD_IBAN, BROKER, ENTE as A, IBAN, OTHER_ENTE as B};
use app::{TestApp, due, spawn_app, today};

const OTHER_BROKER: &str = "99999999999";
const BOUNDARY: &str = "----incasso-test-boundary-7MA4YWxkTrZu0gW";

/// Which header carries the key: gpd_massive_v2.json's `ApiKey` or GPD's
/// usual `Ocp-Apim-Subscription-Key`.
#[derive(Debug, Clone, Copy)]
enum Header {
    ApiKey,
    Ocp,
}

impl Header {
    fn name(self) -> &'static str {
        match self {
            Header::ApiKey => "ApiKey",
            Header::Ocp => "Ocp-Apim-Subscription-Key",
        }
    }
}

/// An answer: status, headers, body as JSON (or as a JSON string when it
/// is not JSON) and the raw text.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    text: String,
}

fn org(broker: &str, ente: &str) -> String {
    format!("/gpd/upload/v2/brokers/{broker}/organizations/{ente}/debtpositions")
}

impl TestApp {
    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text.clone())),
            text,
        }
    }

    async fn call_upload(
        &self,
        method: Method,
        path: &str,
        key: Option<(Header, &str)>,
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut req = self
            .server
            .client
            .request(method, format!("{}{path}", self.server.base));
        if let Some((h, k)) = key {
            req = req.header(h.name(), k);
        }
        for (name, value) in extra {
            req = req.header(*name, *value);
        }
        self.send(req).await
    }

    /// A GET as Ente A (key in `Ocp-Apim-Subscription-Key`).
    async fn get_a(&self, path: &str) -> Answer {
        self.call_upload(Method::GET, path, Some((Header::Ocp, &self.key_a)), &[])
            .await
    }

    /// Sends `zip` as the `file` part of a multipart/form-data body.
    async fn upload_as(
        &self,
        method: Method,
        broker: &str,
        ente: &str,
        key: Option<(Header, &str)>,
        file_name: &str,
        zip: &[u8],
    ) -> Answer {
        let mut req = self
            .server
            .client
            .request(
                method,
                format!("{}{}/file", self.server.base, org(broker, ente)),
            )
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(multipart("file", file_name, zip));
        if let Some((h, k)) = key {
            req = req.header(h.name(), k);
        }
        self.send(req).await
    }

    /// An upload of Ente A's, through [`BROKER`] with the `ApiKey` header,
    /// which must be accepted: its file id.
    async fn upload(&self, method: Method, zip: &[u8]) -> String {
        let answer = self
            .upload_as(
                method.clone(),
                BROKER,
                A,
                Some((Header::ApiKey, &self.key_a)),
                "positions.zip",
                zip,
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::ACCEPTED,
            "{:?} {method}: {}",
            self.backend,
            answer.text
        );
        assert_eq!(answer.text, "", "202 has no body");
        let location = answer
            .headers
            .get("location")
            .expect("Location header")
            .to_str()
            .unwrap()
            .to_string();
        // GPD's own form (its tests match ^brokers/(.+)/organizations/(.+)/debtpositions/file/(.+)/status$).
        let prefix = format!("brokers/{BROKER}/organizations/{A}/debtpositions/file/");
        let file_id = location
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix("/status"))
            .unwrap_or_else(|| panic!("Location {location}"))
            .to_string();
        assert!(location.ends_with(&format!("/file/{file_id}/status")));
        let hex = file_id
            .strip_prefix(&format!("{BROKER}_{A}_"))
            .unwrap_or_else(|| panic!("file id {file_id}"));
        assert_eq!(hex.len(), 32, "{file_id}");
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{file_id}"
        );
        file_id
    }

    fn file_path(&self, file_id: &str, what: &str) -> String {
        format!("{}/file/{file_id}/{what}", org(BROKER, A))
    }

    /// Polls the status until the upload is no longer IN_PROGRESS (a wait
    /// of at most 20 s, not a timed assertion): the last status.
    async fn wait_done(&self, file_id: &str) -> Value {
        let path = self.file_path(file_id, "status");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let answer = self.get_a(&path).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
            assert_conforms("UploadStatusDTO", &answer.body);
            assert_eq!(answer.body["fileId"], file_id);
            if answer.body["operationStatus"] != "IN_PROGRESS" {
                return answer.body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}: {file_id} still in progress after 20 s: {}",
                self.backend,
                answer.body
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    async fn report(&self, file_id: &str) -> Value {
        let answer = self.get_a(&self.file_path(file_id, "report")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_conforms("UploadReportDTO", &answer.body);
        assert_eq!(answer.body["fileId"], file_id);
        answer.body
    }

    /// Uploads, waits, and answers the final status and the report.
    async fn upload_and_wait(&self, method: Method, zip: &[u8]) -> (String, Value, Value) {
        let file_id = self.upload(method, zip).await;
        let status = self.wait_done(&file_id).await;
        let report = self.report(&file_id).await;
        (file_id, status, report)
    }

    async fn position_v1(&self, iupd: &str) -> Answer {
        self.get_a(&format!("/gpd/v1/organizations/{A}/debtpositions/{iupd}"))
            .await
    }

    async fn positions_found(&self) -> u64 {
        let answer = self
            .get_a(&format!("/gpd/v1/organizations/{A}/debtpositions?limit=1"))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        answer.body["page_info"]["items_found"].as_u64().unwrap()
    }

    /// Ente A's supplies in the archive, newest first, as the list gives
    /// them (one page: a test makes a few).
    async fn supplies(&self) -> Vec<Value> {
        let answer = self.get_a(&format!("/api/v1/enti/{A}/supplies")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        let list = answer.body.as_array().unwrap().clone();
        // The list tells what each supply's own record does.
        for s in &list {
            let one = self
                .get_a(&format!("/api/v1/enti/{A}/supplies/{}", s["id"]))
                .await;
            assert_eq!(one.body, *s, "the list and the record agree");
        }
        list
    }

    /// The supply an upload appears as, with its row report (CSV).
    async fn supply_of(&self, file_id: &str) -> (Value, String) {
        let supplies = self.supplies().await;
        let mine: Vec<&Value> = supplies
            .iter()
            .filter(|s| s["message"].as_str().unwrap_or("").contains(file_id))
            .collect();
        assert_eq!(mine.len(), 1, "{file_id} in {supplies:#?}");
        let supply = mine[0].clone();
        let report = self
            .get_a(&format!(
                "/api/v1/enti/{A}/supplies/{}/report.csv",
                supply["id"]
            ))
            .await;
        assert_eq!(report.status, StatusCode::OK, "{}", report.text);
        (supply, report.text)
    }

    async fn file_ids(&self, query: &str, extra: &[(&str, &str)]) -> Answer {
        self.call_upload(
            Method::GET,
            &format!("{}/files{query}", org(BROKER, A)),
            Some((Header::ApiKey, &self.key_a)),
            extra,
        )
        .await
    }
}

/// A multipart/form-data body of one file part.
fn multipart(field: &str, file_name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in files {
        w.start_file(*name, opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn zip_json(value: &Value) -> Vec<u8> {
    zip_of(&[("positions.json", value.to_string().as_bytes())])
}

/// A GPD v1 position (the upload's `paymentPositions` items).
fn position(iupd: &str, amount: i64) -> Value {
    json!({
        "iupd": iupd,
        "type": "F",
        "payStandIn": false,
        "fiscalCode": "RSSMRA85T10A562S",
        "fullName": "Mario Rossi",
        "country": "IT",
        "email": "email@domain.com",
        "switchToExpired": false,
        "companyName": "Comune di prova",
        "paymentOption": [{
            "amount": amount,
            "description": format!("TARI {iupd}"),
            "isPartialPayment": false,
            "dueDate": due(30),
            "retentionDate": due(365),
            "paymentOptionMetadata": [],
            "transfer": [{
                "idTransfer": "1",
                "amount": amount,
                "remittanceInformation": format!("TARI {iupd}"),
                "category": "9/0101101IM/",
                "iban": IBAN,
                "transferMetadata": []
            }]
        }]
    })
}

fn positions_file(positions: Vec<Value>) -> Vec<u8> {
    zip_json(&json!({ "paymentPositions": positions }))
}

fn iupds_file(iupds: &[&str]) -> Vec<u8> {
    zip_json(&json!({ "paymentPositionIUPDs": iupds }))
}

/// The iupds the report answered with this status code, in the order of
/// its entries (one entry per status code and message).
fn iupds_with(report: &Value, code: u16) -> Vec<String> {
    report["responses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["statusCode"] == code)
        .flat_map(|r| r["iupds"].as_array().unwrap())
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

// ------------------------------------------------------------ conformance to gpd_massive_v2.json

/// gpd_massive_v2.json's `components` (version 0.5.3).
fn components() -> Value {
    json!({"schemas": {
        "FileIdListResponse": {"type": "object", "properties": {
            "fileIds": {"type": "array", "items": {"type": "string"}},
            "size": {"type": "integer", "format": "int32"},
            "hasMore": {"type": "boolean"}}},
        "OperationStatus": {"type": "string",
            "enum": ["IN_PROGRESS", "COMPLETED", "COMPLETED_WITH_WARNINGS", "COMPLETED_UNSUCCESSFULLY"]},
        "ProblemJson": {"type": "object", "properties": {
            "title": {"type": "string"},
            "status": {"type": "integer", "format": "int32"},
            "detail": {"type": "string"}}},
        "ResponseEntryDTO": {"type": "object", "properties": {
            "statusCode": {"type": "integer", "format": "int32"},
            "statusMessage": {"type": "string"},
            "iupds": {"type": "array", "items": {"type": "string"}}}},
        "UploadReportDTO": {"type": "object", "properties": {
            "fileId": {"type": "string"},
            "processedItem": {"type": "integer", "format": "int32"},
            "submittedItem": {"type": "integer", "format": "int32"},
            "responses": {"type": "array", "items": {"$ref": "#/components/schemas/ResponseEntryDTO"}},
            "startTime": {"type": "string", "format": "date-time"},
            "endTime": {"type": "string", "format": "date-time"}}},
        "UploadStatusDTO": {"type": "object", "properties": {
            "fileId": {"type": "string"},
            "processedItem": {"type": "integer", "format": "int32"},
            "submittedItem": {"type": "integer", "format": "int32"},
            "startTime": {"type": "string", "format": "date-time"},
            "operationStatus": {"$ref": "#/components/schemas/OperationStatus"}}}
    }})
}

fn conformance_errors(schema_name: &str, value: &Value) -> Vec<String> {
    let schema = json!({
        "$ref": format!("#/components/schemas/{schema_name}"),
        "components": components(),
    });
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
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
        "{schema_name} does not conform to gpd_massive_v2.json: {errors:#?}\n{value:#}"
    );
}

/// The copy of the schemas is the document's, and the check can fail.
#[test]
fn the_copied_schemas_are_the_documents_and_can_fail() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/spec/pagopa/pagopa-api/openapi/gpd_massive_v2.json"
    );
    if let Ok(text) = std::fs::read_to_string(path) {
        let doc: Value = serde_json::from_str(&text).unwrap();
        for (name, schema) in components()["schemas"].as_object().unwrap() {
            let original = &doc["components"]["schemas"][name];
            for (prop, def) in schema["properties"].as_object().into_iter().flatten() {
                assert_eq!(
                    def["type"], original["properties"][prop]["type"],
                    "{name}.{prop}"
                );
            }
            assert_eq!(schema.get("enum"), original.get("enum"), "{name}");
        }
    }
    let good = json!({"fileId": "x", "processedItem": 1, "submittedItem": 1,
        "startTime": "2024-10-08T14:55:16.302Z", "operationStatus": "COMPLETED"});
    assert_conforms("UploadStatusDTO", &good);
    for spoil in [
        json!({"operationStatus": "DONE"}),
        json!({"startTime": "ieri"}),
        json!({"processedItem": "uno"}),
    ] {
        let mut bad = good.clone();
        for (k, v) in spoil.as_object().unwrap() {
            bad[k] = v.clone();
        }
        assert!(
            !conformance_errors("UploadStatusDTO", &bad).is_empty(),
            "{bad}"
        );
    }
}

// ------------------------------------------------------------ tests

#[tokio::test]
async fn create_by_file_is_accepted_worked_through_and_reported() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let zip = positions_file(vec![
            position("U-1", 1000),
            position("U-2", 2000),
            position("U-3", 3000),
        ]);
        let file_id = app.upload(Method::POST, &zip).await;
        let status = app.wait_done(&file_id).await;
        assert_eq!(
            status["operationStatus"], "COMPLETED",
            "{backend:?}: {status}"
        );
        assert_eq!(status["submittedItem"], 3);
        assert_eq!(status["processedItem"], 3);

        let report = app.report(&file_id).await;
        assert_eq!(report["submittedItem"], 3);
        assert_eq!(report["processedItem"], 3);
        assert_eq!(report["responses"].as_array().unwrap().len(), 1, "{report}");
        assert_eq!(iupds_with(&report, 201), vec!["U-1", "U-2", "U-3"]);
        assert!(report["endTime"].is_string(), "{report}");
        assert!(
            report["startTime"].as_str().unwrap() <= report["endTime"].as_str().unwrap(),
            "{report}"
        );
        assert_eq!(report["startTime"], status["startTime"]);

        // The status and the report with either header.
        for header in [Header::ApiKey, Header::Ocp] {
            for what in ["status", "report"] {
                let answer = app
                    .call_upload(
                        Method::GET,
                        &app.file_path(&file_id, what),
                        Some((header, &app.key_a)),
                        &[],
                    )
                    .await;
                assert_eq!(answer.status, StatusCode::OK, "{header:?} {what}");
                assert_eq!(answer.body["fileId"], json!(file_id));
            }
        }

        // The positions exist, published, as the file said.
        for (iupd, amount) in [("U-1", 1000), ("U-2", 2000), ("U-3", 3000)] {
            let got = app.position_v1(iupd).await;
            assert_eq!(
                got.status,
                StatusCode::OK,
                "{backend:?} {iupd}: {}",
                got.text
            );
            assert_eq!(got.body["status"], "VALID", "{iupd}: {}", got.text);
            assert!(got.body["publishDate"].is_string());
            assert_eq!(got.body["companyName"], "Comune di prova");
            let option = &got.body["paymentOption"][0];
            assert_eq!(option["amount"], amount);
            assert_eq!(option["description"], format!("TARI {iupd}"));
            assert!(
                option["iuv"].as_str().unwrap().starts_with("01"),
                "{option}"
            );
            assert_eq!(option["transfer"][0]["iban"], IBAN);
        }
        assert_eq!(app.positions_found().await, 3);

        // The upload in the supplies archive, with its counters.
        let (supply, csv) = app.supply_of(&file_id).await;
        assert_eq!(supply["layout"], "gpd-massive-v2", "{supply}");
        assert_eq!(supply["fileName"], "positions.zip");
        assert_eq!(supply["status"], "LOADED", "{supply}");
        assert_eq!(supply["accepted"], true);
        assert_eq!(supply["rowsRead"], 3);
        assert_eq!(supply["rowsLoaded"], 3);
        assert_eq!(supply["rowsRejected"], 0);
        assert_eq!(supply["positionsCreated"], 3);
        assert_eq!(supply["positionsUpdated"], 0);
        assert_eq!(supply["sizeBytes"], zip.len());
        assert!(!csv.contains("U-1"), "no row errors: {csv}");

        // The same file again is another upload (another file id), and
        // this time every position already exists: 409 for all.
        let (again, status, report) = app.upload_and_wait(Method::POST, &zip).await;
        assert_ne!(again, file_id);
        assert_eq!(
            status["operationStatus"], "COMPLETED_UNSUCCESSFULLY",
            "{backend:?}: {report}"
        );
        assert_eq!(iupds_with(&report, 409), vec!["U-1", "U-2", "U-3"]);
        for r in report["responses"].as_array().unwrap() {
            assert_eq!(r["statusCode"], 409, "{report}");
            assert!(!r["statusMessage"].as_str().unwrap().is_empty(), "{r}");
        }
        assert_eq!(app.positions_found().await, 3);
        let (supply, csv) = app.supply_of(&again).await;
        assert_eq!(supply["status"], "REJECTED", "{supply}");
        assert_eq!(supply["accepted"], false);
        assert_eq!(supply["rowsRead"], 3);
        assert_eq!(supply["rowsLoaded"], 0);
        assert_eq!(supply["rowsRejected"], 3);
        assert_eq!(supply["positionsCreated"], 0);
        for iupd in ["U-1", "U-2", "U-3"] {
            assert!(csv.contains(iupd), "{iupd} in the row report: {csv}");
        }
        // One iupd twice in a file: the first is created, the second is a
        // conflict.
        let (_, status, report) = app
            .upload_and_wait(
                Method::POST,
                &positions_file(vec![position("DUP", 100), position("DUP", 200)]),
            )
            .await;
        assert_eq!(
            status["operationStatus"], "COMPLETED_WITH_WARNINGS",
            "{backend:?}: {report}"
        );
        assert_eq!(iupds_with(&report, 201), vec!["DUP"]);
        assert_eq!(iupds_with(&report, 409), vec!["DUP"]);
        assert_eq!(
            app.position_v1("DUP").await.body["paymentOption"][0]["amount"],
            100
        );
        assert_eq!(app.supplies().await.len(), 3);
    }
}

/// One bad position does not sink its neighbours: the rest are created,
/// the bad one is answered 400 with its iupd, in the report and in the
/// archive's row errors. A file of more than one chunk (100 positions).
#[tokio::test]
async fn one_bad_position_among_many_is_a_warning() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let mut positions: Vec<Value> = (1..=130)
            .map(|i| position(&format!("W-{i:03}"), 100 + i))
            .collect();
        // One in the second chunk; one in the first.
        positions[119]["paymentOption"][0]["transfer"][0]["iban"] = json!(BAD_IBAN);
        positions[4]["paymentOption"][0]["transfer"][0]["amount"] = json!(1);
        let file_id = app.upload(Method::POST, &positions_file(positions)).await;

        // The report is too early while the file is worked through (when
        // it can be caught: the background work may be done already).
        let early = app.get_a(&app.file_path(&file_id, "report")).await;
        match early.status {
            StatusCode::TOO_EARLY => {
                assert_eq!(early.body["code"], "REPORT_NOT_READY", "{}", early.text);
                assert_conforms("ProblemJson", &early.body);
            }
            StatusCode::OK => eprintln!("{backend:?}: upload done before the report was asked"),
            other => panic!("report while in progress: {other} {}", early.text),
        }

        let status = app.wait_done(&file_id).await;
        assert_eq!(
            status["operationStatus"], "COMPLETED_WITH_WARNINGS",
            "{backend:?}: {status}"
        );
        assert_eq!(status["submittedItem"], 130);
        assert_eq!(status["processedItem"], 130);
        let report = app.report(&file_id).await;
        let created = iupds_with(&report, 201);
        assert_eq!(created.len(), 128, "{report}");
        assert!(!created.contains(&"W-005".to_string()));
        assert!(!created.contains(&"W-120".to_string()));
        let refused = report["responses"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["statusCode"] == 400)
            .collect::<Vec<_>>();
        let mut refused_iupds = iupds_with(&report, 400);
        refused_iupds.sort();
        assert_eq!(refused_iupds, vec!["W-005", "W-120"], "{report}");
        let iban_entry = refused
            .iter()
            .find(|r| r["iupds"] == json!(["W-120"]))
            .unwrap_or_else(|| panic!("W-120 alone in its entry: {report}"));
        assert!(
            iban_entry["statusMessage"]
                .as_str()
                .unwrap()
                .contains("iban"),
            "{iban_entry}"
        );
        for iupd in ["W-005", "W-120"] {
            let got = app.position_v1(iupd).await;
            assert_eq!(got.status, StatusCode::NOT_FOUND, "{iupd}: {}", got.text);
        }
        for iupd in ["W-001", "W-100", "W-101", "W-119", "W-121", "W-130"] {
            let got = app.position_v1(iupd).await;
            assert_eq!(
                got.status,
                StatusCode::OK,
                "{backend:?} {iupd}: {}",
                got.text
            );
            assert_eq!(got.body["status"], "VALID");
        }
        assert_eq!(app.positions_found().await, 128);

        let (supply, csv) = app.supply_of(&file_id).await;
        assert_eq!(supply["status"], "LOADED_WITH_ERRORS", "{supply}");
        assert_eq!(supply["accepted"], true);
        assert_eq!(supply["rowsRead"], 130);
        assert_eq!(supply["rowsLoaded"], 128);
        assert_eq!(supply["rowsRejected"], 2);
        assert_eq!(supply["positionsCreated"], 128);
        let error_lines: Vec<&str> = csv.lines().filter(|l| l.contains("W-")).collect();
        assert_eq!(error_lines.len(), 2, "{csv}");
        assert!(
            error_lines
                .iter()
                .any(|l| l.contains("W-120") && l.contains("BAD_IBAN")),
            "{csv}"
        );
        assert!(error_lines.iter().any(|l| l.contains("W-005")), "{csv}");
    }
}

#[tokio::test]
async fn update_and_delete_by_file() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (_, status, _) = app
            .upload_and_wait(
                Method::POST,
                &positions_file(vec![
                    position("D-1", 1000),
                    position("D-2", 2000),
                    position("D-3", 3000),
                ]),
            )
            .await;
        assert_eq!(status["operationStatus"], "COMPLETED", "{status}");
        let iuv_before = app.position_v1("D-1").await.body["paymentOption"][0]["iuv"].clone();

        // Update by file: new amounts and company, the IUVs resent.
        let mut changed = Vec::new();
        for (iupd, amount) in [("D-1", 1500), ("D-2", 2500)] {
            let mut p = position(iupd, amount);
            p["companyName"] = json!("Comune aggiornato");
            p["paymentOption"][0]["iuv"] =
                app.position_v1(iupd).await.body["paymentOption"][0]["iuv"].clone();
            changed.push(p);
        }
        let (file_id, status, report) = app
            .upload_and_wait(Method::PUT, &positions_file(changed))
            .await;
        assert_eq!(
            status["operationStatus"], "COMPLETED",
            "{backend:?}: {report}"
        );
        assert_eq!(iupds_with(&report, 200), vec!["D-1", "D-2"]);
        for (iupd, amount) in [("D-1", 1500), ("D-2", 2500)] {
            let got = app.position_v1(iupd).await;
            assert_eq!(got.body["companyName"], "Comune aggiornato", "{}", got.text);
            assert_eq!(got.body["paymentOption"][0]["amount"], amount);
            assert_eq!(got.body["status"], "VALID", "updated and published");
        }
        assert_eq!(
            app.position_v1("D-1").await.body["paymentOption"][0]["iuv"],
            iuv_before
        );
        assert_eq!(
            app.position_v1("D-3").await.body["companyName"],
            "Comune di prova"
        );
        let (supply, _) = app.supply_of(&file_id).await;
        assert_eq!(supply["status"], "LOADED", "{supply}");
        assert_eq!(supply["positionsUpdated"], 2);
        assert_eq!(supply["positionsCreated"], 0);

        // An update of a position that does not exist: 404 for it alone.
        let (_, status, report) = app
            .upload_and_wait(
                Method::PUT,
                &positions_file(vec![position("D-3", 3300), position("D-404", 100)]),
            )
            .await;
        assert_eq!(
            status["operationStatus"], "COMPLETED_WITH_WARNINGS",
            "{backend:?}: {report}"
        );
        assert_eq!(iupds_with(&report, 200), vec!["D-3"]);
        assert_eq!(iupds_with(&report, 404), vec!["D-404"]);
        assert_eq!(
            app.position_v1("D-3").await.body["paymentOption"][0]["amount"],
            3300
        );
        assert_eq!(
            app.position_v1("D-404").await.status,
            StatusCode::NOT_FOUND,
            "an update by file creates nothing"
        );

        // Delete by file.
        let (file_id, status, report) = app
            .upload_and_wait(Method::DELETE, &iupds_file(&["D-1", "D-2"]))
            .await;
        assert_eq!(
            status["operationStatus"], "COMPLETED",
            "{backend:?}: {report}"
        );
        assert_eq!(status["submittedItem"], 2);
        assert_eq!(iupds_with(&report, 200), vec!["D-1", "D-2"]);
        for iupd in ["D-1", "D-2"] {
            assert_eq!(app.position_v1(iupd).await.status, StatusCode::NOT_FOUND);
        }
        assert_eq!(app.position_v1("D-3").await.status, StatusCode::OK);
        let (supply, _) = app.supply_of(&file_id).await;
        assert_eq!(supply["positionsCancelled"], 2, "{supply}");
        assert_eq!(supply["status"], "LOADED");

        // One paid, one unknown, one deletable.
        let nav = app.position_v1("D-3").await.body["paymentOption"][0]["nav"]
            .as_str()
            .unwrap()
            .to_string();
        let paid = app
            .send(
                app.server
                    .client
                    .post(format!(
                        "{}/gpd/v1/organizations/{A}/paymentoptions/paids/{nav}",
                        app.server.base
                    ))
                    .header("Ocp-Apim-Subscription-Key", &app.key_a)
                    .json(&json!({"paymentDate": Utc::now().to_rfc3339()})),
            )
            .await;
        assert_eq!(paid.status, StatusCode::OK, "{}", paid.text);
        let (_, status, _) = app
            .upload_and_wait(Method::POST, &positions_file(vec![position("D-4", 400)]))
            .await;
        assert_eq!(status["operationStatus"], "COMPLETED");
        let (file_id, status, report) = app
            .upload_and_wait(Method::DELETE, &iupds_file(&["D-3", "D-404", "D-4"]))
            .await;
        assert_eq!(
            status["operationStatus"], "COMPLETED_WITH_WARNINGS",
            "{backend:?}: {report}"
        );
        assert_eq!(iupds_with(&report, 200), vec!["D-4"]);
        assert_eq!(iupds_with(&report, 409), vec!["D-3"], "paid: {report}");
        assert_eq!(iupds_with(&report, 404), vec!["D-404"]);
        assert_eq!(app.position_v1("D-3").await.body["status"], "PAID");
        assert_eq!(app.position_v1("D-4").await.status, StatusCode::NOT_FOUND);
        let (supply, csv) = app.supply_of(&file_id).await;
        assert_eq!(supply["status"], "LOADED_WITH_ERRORS", "{supply}");
        assert_eq!(supply["rowsRejected"], 2);
        assert_eq!(supply["positionsCancelled"], 1);
        assert!(csv.contains("D-3") && csv.contains("D-404"), "{csv}");
    }
}

/// A file that cannot be read is refused at once (400) and nothing is
/// recorded: no upload, no supply, no position.
#[tokio::test]
async fn bad_files_are_refused_and_nothing_is_recorded() {
    let good = serde_json::to_vec(&json!({"paymentPositions": [position("X-1", 100)]})).unwrap();
    let mut bad_transfer = position("X-2", 100);
    bad_transfer["paymentOption"][0]["transfer"][0]["idTransfer"] = json!("uno");
    let mut bad_date = position("X-3", 100);
    bad_date["paymentOption"][0]["dueDate"] = json!("domani");
    let mut bad_type = position("X-4", 100);
    bad_type["type"] = json!("Z");
    let cases: Vec<(&str, Method, &str, Vec<u8>, &str)> = vec![
        (
            "not a .zip name",
            Method::POST,
            "positions.json",
            zip_of(&[("positions.json", &good)]),
            "NOT_A_ZIP_FILE",
        ),
        (
            "two files",
            Method::POST,
            "positions.zip",
            zip_of(&[("a.json", &good), ("b.json", &good)]),
            "INVALID_FILE",
        ),
        (
            "not a .json inside",
            Method::POST,
            "positions.zip",
            zip_of(&[("positions.txt", &good)]),
            "INVALID_FILE",
        ),
        (
            "not a ZIP at all",
            Method::POST,
            "positions.zip",
            good.clone(),
            "INVALID_FILE",
        ),
        (
            "invalid JSON",
            Method::POST,
            "positions.zip",
            zip_of(&[("positions.json", b"{\"paymentPositions\": [")]),
            "INVALID_JSON",
        ),
        (
            "an empty JSON file",
            Method::POST,
            "positions.zip",
            zip_of(&[("positions.json", b"  \n")]),
            "EMPTY_FILE",
        ),
        (
            "a malformed idTransfer",
            Method::POST,
            "positions.zip",
            positions_file(vec![position("X-1", 100), bad_transfer]),
            "BAD_FORMAT",
        ),
        (
            "a malformed dueDate",
            Method::POST,
            "positions.zip",
            positions_file(vec![position("X-1", 100), bad_date]),
            "INVALID_JSON",
        ),
        (
            "a malformed debtor type",
            Method::PUT,
            "positions.zip",
            positions_file(vec![bad_type]),
            "INVALID_JSON",
        ),
        (
            "no positions",
            Method::POST,
            "positions.zip",
            positions_file(vec![]),
            "INVALID_DEBT_POSITIONS",
        ),
        (
            "iupds to create",
            Method::POST,
            "positions.zip",
            iupds_file(&["X-1"]),
            "INVALID_JSON",
        ),
        (
            "positions to delete",
            Method::DELETE,
            "positions.zip",
            zip_of(&[("positions.json", &good)]),
            "INVALID_JSON",
        ),
    ];
    for backend in backends() {
        let app = spawn_app(backend).await;
        for (name, method, file_name, bytes, code) in &cases {
            let answer = app
                .upload_as(
                    method.clone(),
                    BROKER,
                    A,
                    Some((Header::ApiKey, &app.key_a)),
                    file_name,
                    bytes,
                )
                .await;
            assert_eq!(
                answer.status,
                StatusCode::BAD_REQUEST,
                "{backend:?} {name}: {}",
                answer.text
            );
            assert_conforms("ProblemJson", &answer.body);
            assert_eq!(
                answer.body["code"], *code,
                "{backend:?} {name}: {}",
                answer.text
            );
            assert!(answer.headers.get("location").is_none(), "{name}");
        }
        // The malformed field is named with its place in the file.
        let answer = app
            .upload_as(
                Method::POST,
                BROKER,
                A,
                Some((Header::ApiKey, &app.key_a)),
                "positions.zip",
                &cases[6].3,
            )
            .await;
        let detail = answer.body["detail"].as_str().unwrap();
        assert!(
            detail.contains("paymentPositions[1]")
                && detail.contains("paymentOption[0].transfer[0].idTransfer"),
            "{}",
            answer.text
        );
        // A form without a `file` part, and a body that is no form.
        let no_file = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--{BOUNDARY}--\r\n"
        );
        let answer = app
            .send(
                app.server
                    .client
                    .post(format!("{}{}/file", app.server.base, org(BROKER, A)))
                    .header("ApiKey", &app.key_a)
                    .header(
                        "content-type",
                        format!("multipart/form-data; boundary={BOUNDARY}"),
                    )
                    .body(no_file),
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
        let answer = app
            .send(
                app.server
                    .client
                    .post(format!("{}{}/file", app.server.base, org(BROKER, A)))
                    .header("ApiKey", &app.key_a)
                    .header("content-type", "application/zip")
                    .body(positions_file(vec![position("X-1", 100)])),
            )
            .await;
        assert!(
            answer.status.is_client_error(),
            "a raw ZIP, not a form: {} {}",
            answer.status,
            answer.text
        );
        // Nothing recorded.
        let list = app.file_ids("", &[]).await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.text);
        assert_eq!(list.body["fileIds"], json!([]), "{backend:?}");
        assert!(app.supplies().await.is_empty(), "{backend:?}: a supply");
        assert_eq!(app.positions_found().await, 0);
    }
}

/// Unknown file ids are 404; a broker that is not the Ente's, another
/// Ente's key, no key or a wrong key are refused, and write nothing.
#[tokio::test]
async fn who_may_upload_and_read() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let zip = positions_file(vec![position("K-1", 100)]);
        let (file_id, status, _) = app.upload_and_wait(Method::POST, &zip).await;
        assert_eq!(status["operationStatus"], "COMPLETED");

        let unknown = format!("{BROKER}_{A}_{}", "0".repeat(32));
        for what in ["status", "report"] {
            let answer = app.get_a(&app.file_path(&unknown, what)).await;
            assert_eq!(
                answer.status,
                StatusCode::NOT_FOUND,
                "{what}: {}",
                answer.text
            );
            assert_conforms("ProblemJson", &answer.body);
        }

        // A broker with no station of the Ente: 403 everywhere.
        let file_for = |method: &Method| {
            if *method == Method::DELETE {
                iupds_file(&["K-1"])
            } else {
                positions_file(vec![position("K-2", 100)])
            }
        };
        for method in [Method::POST, Method::PUT, Method::DELETE] {
            let answer = app
                .upload_as(
                    method.clone(),
                    OTHER_BROKER,
                    A,
                    Some((Header::ApiKey, &app.key_a)),
                    "positions.zip",
                    &file_for(&method),
                )
                .await;
            assert_eq!(
                answer.status,
                StatusCode::FORBIDDEN,
                "{backend:?} {method}: {}",
                answer.text
            );
        }
        for path in [
            format!("{}/file/{file_id}/status", org(OTHER_BROKER, A)),
            format!("{}/file/{file_id}/report", org(OTHER_BROKER, A)),
            format!("{}/files", org(OTHER_BROKER, A)),
        ] {
            let answer = app.get_a(&path).await;
            assert_eq!(
                answer.status,
                StatusCode::FORBIDDEN,
                "{path}: {}",
                answer.text
            );
        }

        // Ente B's key on A's paths: 403; without a key 401, a wrong one 401.
        let a_paths = [
            (Method::GET, app.file_path(&file_id, "status")),
            (Method::GET, app.file_path(&file_id, "report")),
            (Method::GET, format!("{}/files", org(BROKER, A))),
        ];
        for (method, path) in &a_paths {
            for header in [Header::ApiKey, Header::Ocp] {
                let answer = app
                    .call_upload(method.clone(), path, Some((header, &app.key_b)), &[])
                    .await;
                assert_eq!(
                    answer.status,
                    StatusCode::FORBIDDEN,
                    "{header:?} {path}: {}",
                    answer.text
                );
                assert!(!answer.text.contains("K-1"), "{}", answer.text);
                let answer = app
                    .call_upload(method.clone(), path, Some((header, "not-a-key")), &[])
                    .await;
                assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{header:?} {path}");
            }
            let answer = app.call_upload(method.clone(), path, None, &[]).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        }
        for method in [Method::POST, Method::PUT, Method::DELETE] {
            for header in [Header::ApiKey, Header::Ocp] {
                let answer = app
                    .upload_as(
                        method.clone(),
                        BROKER,
                        A,
                        Some((header, &app.key_b)),
                        "positions.zip",
                        &file_for(&method),
                    )
                    .await;
                assert_eq!(
                    answer.status,
                    StatusCode::FORBIDDEN,
                    "{method} {header:?}: {}",
                    answer.text
                );
            }
            let answer = app
                .upload_as(
                    method.clone(),
                    BROKER,
                    A,
                    None,
                    "positions.zip",
                    &file_for(&method),
                )
                .await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method}");
        }
        // A's file id through B's own path (same broker): not B's.
        for what in ["status", "report"] {
            let answer = app
                .call_upload(
                    Method::GET,
                    &format!("{}/file/{file_id}/{what}", org(BROKER, B)),
                    Some((Header::ApiKey, &app.key_b)),
                    &[],
                )
                .await;
            assert_eq!(
                answer.status,
                StatusCode::NOT_FOUND,
                "{what}: {}",
                answer.text
            );
        }
        // Nothing of the refused calls was written.
        let list = app.file_ids("", &[]).await;
        assert_eq!(list.body["fileIds"], json!([file_id]), "{backend:?}");
        assert_eq!(app.supplies().await.len(), 1);
        assert_eq!(app.positions_found().await, 1);
        assert_eq!(app.position_v1("K-2").await.status, StatusCode::NOT_FOUND);
        let b_list = app
            .call_upload(
                Method::GET,
                &format!("{}/files", org(BROKER, B)),
                Some((Header::Ocp, &app.key_b)),
                &[],
            )
            .await;
        assert_eq!(b_list.status, StatusCode::OK, "{}", b_list.text);
        assert_eq!(b_list.body["fileIds"], json!([]));
    }
}

/// The file ids of the uploads by day: 100 to 500 a page, at most 7 days,
/// 60 days kept; the continuation token.
#[tokio::test]
async fn file_ids_by_day() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let mut ids = Vec::new();
        for i in 1..=3 {
            let zip = positions_file(vec![position(&format!("F-{i}"), 100)]);
            let (id, status, _) = app.upload_and_wait(Method::POST, &zip).await;
            assert_eq!(status["operationStatus"], "COMPLETED");
            ids.push(id);
        }

        let day = |d: i64| (today() + Duration::days(d)).to_string();
        for query in [
            String::new(),
            format!("?from={}&to={}", day(0), day(0)),
            format!("?from={}&to={}", day(-6), day(0)),
            "?size=100".to_string(),
            "?size=500".to_string(),
            format!("?to={}", day(0)),
        ] {
            let list = app.file_ids(&query, &[]).await;
            assert_eq!(list.status, StatusCode::OK, "{query}: {}", list.text);
            assert_conforms("FileIdListResponse", &list.body);
            assert_eq!(list.body["fileIds"], json!(ids), "{backend:?} {query}");
            assert_eq!(list.body["size"], 3);
            assert_eq!(list.body["hasMore"], false);
            assert!(
                list.headers.get("x-continuation-token").is_none(),
                "{query}: no more pages"
            );
        }
        // Days without uploads.
        let list = app
            .file_ids(&format!("?from={}&to={}", day(-3), day(-1)), &[])
            .await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.text);
        assert_eq!(list.body["fileIds"], json!([]));
        assert_eq!(list.body["size"], 0);
        // After a token: what follows it.
        let list = app
            .file_ids("", &[("x-continuation-token", ids[0].as_str())])
            .await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.text);
        assert_eq!(list.body["fileIds"], json!(ids[1..]), "{backend:?}");
        let list = app
            .file_ids("", &[("x-continuation-token", ids[2].as_str())])
            .await;
        assert_eq!(list.body["fileIds"], json!([]));
        assert_eq!(list.body["hasMore"], false);

        for (query, status) in [
            ("?size=99".to_string(), StatusCode::BAD_REQUEST),
            ("?size=501".to_string(), StatusCode::BAD_REQUEST),
            ("?size=0".to_string(), StatusCode::BAD_REQUEST),
            (
                format!("?from={}&to={}", day(-7), day(0)),
                StatusCode::BAD_REQUEST,
            ),
            (
                format!("?from={}&to={}", day(0), day(-1)),
                StatusCode::BAD_REQUEST,
            ),
            (
                format!("?from={}&to={}", day(-70), day(-64)),
                StatusCode::GONE,
            ),
            (
                format!("?from={}&to={}", day(-62), day(-56)),
                StatusCode::BAD_REQUEST,
            ),
            ("?from=2026/01/01".to_string(), StatusCode::BAD_REQUEST),
            ("?to=ieri".to_string(), StatusCode::BAD_REQUEST),
        ] {
            let list = app.file_ids(&query, &[]).await;
            assert_eq!(list.status, status, "{backend:?} {query}: {}", list.text);
            assert_conforms("ProblemJson", &list.body);
        }
    }
}
