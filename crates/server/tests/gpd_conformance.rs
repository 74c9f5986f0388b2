//! GPD's APIs against GPD's own OpenAPI documents (issue 14): for each
//! document (`DOCUMENTS`: gpd.json at `/gpd/v1`, openapi_external_v2.json
//! at `/gpd/v2`, gpd_v3.json at `/gpd/v3`, openapi_send_v1.json at
//! `/gpd/send/v1`, gpd_payments.json at `/gpd/payments/v1`,
//! gpd_massive_v2.json at `/gpd/upload/v2`), schemathesis generates
//! requests from it (its examples, a coverage of each parameter's edges,
//! then fuzzing, valid and invalid data alike), sends them to incasso on a
//! fresh database, once per backend, and checks every answer against what
//! the document declares. A document's test fails on any failure
//! schemathesis reports.
//!
//! schemathesis is a Python tool: `scripts/test.sh` installs a pinned
//! version in a virtual environment and names it in `INCASSO_SCHEMATHESIS`.
//! Without it the tests are skipped with a note, or fail under
//! `INCASSO_REQUIRE_TOOLS=1`.
//!
//! The runs are fixed: one seed, a bounded number of examples per
//! operation, one worker, no example database, pinned versions of
//! schemathesis and Hypothesis (`scripts/schemathesis-requirements.txt`),
//! so a failure comes back on the next run. `INCASSO_SCHEMATHESIS_ARGS`
//! adds arguments to the runs, for a closer look: `--report har
//! --report-dir /tmp/st` keeps every request and answer; `--seed 3 -n 300`
//! tries other cases.

use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SEED: u64 = 14;
const MAX_EXAMPLES: u32 = 100;
/// Examples per phase of a document's `fewer_examples` operations.
const FEWER_EXAMPLES: u32 = 40;

use crate::common::app::gpd;
use crate::common::app::schemathesis_tool;
use gpd::{BROKER, ENTE, IBAN, OTHER_IBAN, iuv, nav, position, position_v3};
use schemathesis_tool::{Server, schemathesis, serve, version_of};

/// A position seeded before a run: its iupd, the sequences of its IUVs
/// (one option each; installments when more than one), and whether it is
/// published.
type Seeded = (&'static str, &'static [u64], bool);

/// The key's header of GPD's documents but the massive upload's.
const SUBSCRIPTION_KEY: &str = "Ocp-Apim-Subscription-Key";

/// An official GPD document and how incasso is run against it.
struct Document {
    /// Its name in messages, and its file under `tests/data`.
    file: &'static str,
    /// The document as published, byte for byte.
    text: &'static str,
    /// Where incasso serves it.
    base: &'static str,
    /// The header the document's security scheme names for the key; the
    /// run sends the key in it, so that schemathesis knows it for the key
    /// (and ignored_auth takes it away).
    key_header: &'static str,
    /// Examples of valid requests, by operationId: `parameters` (name to
    /// value) and `body`, given what was seeded. The documents have none;
    /// schemathesis sends them first, so every operation's success answer
    /// is checked too.
    examples: fn(&Seeds) -> Value,
    /// Positions seeded for this document's examples, beyond [`STATES`].
    seed: &'static [Seeded],
    /// What else is seeded, once the positions are.
    also: Also,
    /// Properties the document requires and incasso reads as optional:
    /// (schema, property). See [`spec_for_schemathesis`].
    optional: &'static [(&'static str, &'static str)],
    /// Optional string properties sent as `null` where the run sends them
    /// so in an otherwise valid body: (schema, property). GPD reads them as
    /// absent (Jackson sets a Java `String` to null, and only `@NotNull`
    /// or `@NotBlank` would refuse it), and so does incasso, so a client
    /// that writes its nulls out works with both. See
    /// [`spec_for_schemathesis`].
    nullable: &'static [(&'static str, &'static str)],
    /// Statuses GPD answers and the document leaves out: (operationId,
    /// status, why). See [`spec_for_schemathesis`].
    undeclared: &'static [(&'static str, &'static str, &'static str)],
    /// Operations incasso answers without a key (operationId).
    public: &'static [&'static str],
    /// Whether [`check_findings`] (earlier findings on this document,
    /// pinned) runs before schemathesis.
    pinned_findings: bool,
    /// Fewer examples than [`MAX_EXAMPLES`] for these operations
    /// (operationId), whose bodies are slow to generate.
    fewer_examples: &'static [&'static str],
}

/// What a document's run seeds beyond positions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Also {
    Nothing,
    /// The Node's receipts of [`RECEIPTS`] (gpd_payments.json).
    Receipts,
    /// A finished upload of [`UPLOADED`] (gpd_massive_v2.json).
    Upload,
}

/// What was seeded, for the examples and the dictionaries.
struct Seeds {
    /// The seeded positions.
    iupds: Vec<String>,
    /// The IUVs with a receipt.
    receipts: Vec<String>,
    /// The file ids of finished uploads.
    uploads: Vec<String>,
}

const DOCUMENTS: [Document; 6] = [
    Document {
        file: "gpd.json",
        text: include_str!("data/gpd.json"),
        base: "/gpd/v1",
        key_header: SUBSCRIPTION_KEY,
        examples: v1_examples,
        seed: &[],
        also: Also::Nothing,
        // incasso's IUV coordinator assigns an IUV when a payment option
        // brings none (the documented extension of crates/gpd/src/v1.rs);
        // the metadata lists are read as empty when absent, as GPD's own
        // models do.
        optional: &[
            ("PaymentOptionModel", "iuv"),
            ("PaymentOptionModel", "paymentOptionMetadata"),
            ("TransferModel", "transferMetadata"),
        ],
        nullable: &[],
        undeclared: &[],
        public: &[],
        pinned_findings: true,
        fewer_examples: &[],
    },
    Document {
        file: "gpd_v2.json",
        text: include_str!("data/gpd_v2.json"),
        base: "/gpd/v2",
        key_header: SUBSCRIPTION_KEY,
        examples: v2_examples,
        seed: &[
            ("CONF-DELETE-1", &[20], false),
            ("CONF-DELETE-2", &[21, 22], true),
        ],
        also: Also::Nothing,
        // As for gpd.json (this document no longer requires the metadata).
        optional: &[("PaymentOptionModel", "iuv")],
        nullable: &[],
        // GPD's v2 finds the positions of an update or a delete with
        // PaymentPositionService.getDebtPositionsByIUPDs, which answers
        // DEBT_POSITION_NOT_FOUND (404) when one is missing: the document
        // declares 404 on delete, not on update. Its deleteMultiple-
        // DebtPositions answers DEBT_POSITION_PAYMENT_FOUND (409) for a
        // position with payments, undeclared on delete. incasso answers
        // both, as GPD does (tests/gpd_v2.rs). Generated updates reach the
        // 404 in every run (any body that reads as positions names iupds
        // that do not exist); the 409 is declared so that a seed whose
        // body names the paid position does not fail on GPD's own answer.
        undeclared: &[
            (
                "updateMultiplePositions",
                "404",
                "A position to update does not exist.",
            ),
            (
                "deleteMultipleDebtPositions",
                "409",
                "A position to delete has payments.",
            ),
        ],
        // GET /info is a health check: incasso answers it without a key,
        // under /gpd, /gpd/v1 and /gpd/v2 alike (tests/gpd_v2.rs), so that a
        // monitor needs no Ente's key; the document puts it behind the key
        // like every other operation, which would make schemathesis'
        // ignored_auth check fail on an answer given on purpose.
        public: &["healthCheck"],
        pinned_findings: false,
        fewer_examples: &[],
    },
    Document {
        file: "gpd_v3.json",
        text: include_str!("data/gpd_v3.json"),
        base: "/gpd/v3",
        key_header: SUBSCRIPTION_KEY,
        examples: v3_examples,
        seed: &[],
        also: Also::Nothing,
        // As for gpd.json: an installment without an IUV gets one from
        // the IUV coordinator, absent metadata lists are empty.
        optional: &[
            ("InstallmentModel", "iuv"),
            ("InstallmentModel", "installmentMetadata"),
            ("TransferModel", "transferMetadata"),
        ],
        // The coverage phase sends the update's example with
        // `"officeName": null`: GPD's PaymentPositionModelV3 has it as a
        // `@Size(max = 140) String`, so GPD takes it, as incasso does.
        nullable: &[("PaymentPositionModelV3", "officeName")],
        undeclared: &[],
        public: &[],
        pinned_findings: false,
        // A v3 position nests five schemas deep (option, debtor,
        // installment, transfer, stamp): generating one takes schemathesis
        // about 25 ms, ten times a request's answer, and the full count
        // would take the run past 35 s per database.
        fewer_examples: &["createPosition", "updatePosition"],
    },
    Document {
        file: "gpd_send_v1.json",
        text: include_str!("data/gpd_send_v1.json"),
        base: "/gpd/send/v1",
        key_header: SUBSCRIPTION_KEY,
        examples: send_examples,
        seed: &[],
        also: Also::Nothing,
        optional: &[],
        nullable: &[],
        undeclared: &[],
        // As for openapi_external_v2.json.
        public: &["healthCheck"],
        pinned_findings: false,
        fewer_examples: &[],
    },
    Document {
        file: "gpd_payments.json",
        text: include_str!("data/gpd_payments.json"),
        base: "/gpd/payments/v1",
        key_header: SUBSCRIPTION_KEY,
        examples: payments_examples,
        seed: RECEIPTS,
        also: Also::Receipts,
        optional: &[],
        nullable: &[],
        undeclared: &[],
        public: &[],
        pinned_findings: false,
        fewer_examples: &[],
    },
    Document {
        file: "gpd_massive_v2.json",
        text: include_str!("data/gpd_massive_v2.json"),
        base: "/gpd/upload/v2",
        key_header: "ApiKey",
        examples: upload_examples,
        seed: &[
            ("CONF-DELETE-1", &[20], false),
            ("CONF-DELETE-2", &[21, 22], true),
        ],
        also: Also::Upload,
        optional: &[],
        nullable: &[],
        undeclared: &[],
        public: &[],
        pinned_findings: false,
        fewer_examples: &[],
    },
];

/// Positions in each state a GPD client meets, seeded for every document,
/// so that the generated requests that name them (the dictionaries in
/// [`config`]) get real answers, not only 404s: a draft, a published one,
/// a paid one, an invalidated one, one in two installments of which one
/// is paid.
const STATES: &[Seeded] = &[
    ("CONF-DRAFT", &[1], false),
    ("CONF-PUBLISHED", &[2], true),
    ("CONF-PAID", &[3], true),
    ("CONF-INVALID", &[4], true),
    ("CONF-INSTALLMENTS", &[5, 6], true),
];

/// Positions whose notices the Node pays for gpd_payments.json: the
/// first two with a receipt each (`paSendRTV2` and `paSendRT`), the third
/// with a KO receipt (paid nothing).
const RECEIPTS: &[Seeded] = &[
    ("CONF-RECEIPT-1", &[30], true),
    ("CONF-RECEIPT-2", &[31], true),
    ("CONF-RECEIPT-KO", &[32], true),
];

/// The positions of the upload seeded for gpd_massive_v2.json (published:
/// an upload publishes what it creates).
const UPLOADED: &[Seeded] = &[
    ("CONF-UPLOAD-1", &[40], true),
    ("CONF-UPLOAD-2", &[41, 42], true),
];

async fn start(backend: incasso_testkit::Backend) -> Server {
    let (store, mut keys) = gpd::enti(backend, &[ENTE]).await;
    serve(store, keys.remove(0), "").await
}

/// Seeds [`STATES`] and the document's own positions through `/gpd/v1`,
/// then what the document also needs.
async fn seed(server: &Server, document: &Document) -> Seeds {
    use reqwest::Method;
    let org = format!("/gpd/v1/organizations/{ENTE}");
    let plan: Vec<&Seeded> = STATES.iter().chain(document.seed).collect();
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
    let mut seeds = Seeds {
        iupds: plan.iter().map(|(iupd, _, _)| iupd.to_string()).collect(),
        receipts: Vec::new(),
        uploads: Vec::new(),
    };
    match document.also {
        Also::Nothing => {}
        Also::Receipts => seeds.receipts = seed_receipts(server).await,
        Also::Upload => seeds.uploads.push(seed_upload(server).await),
    }
    seeds
}

/// The Node pays [`RECEIPTS`]' notices as it does: `paSendRTV2` and
/// `paSendRT` through incasso's SOAP endpoint, from [`ENTE`]'s station.
/// Returns the IUVs with a receipt.
async fn seed_receipts(server: &Server) -> Vec<String> {
    use incasso_pagopa::wire::node::{parse_response, send_rt_request};
    let sent = [
        ("conf-rt-1", RECEIPTS[0].1[0], "OK", true),
        ("conf-rt-2", RECEIPTS[1].1[0], "OK", false),
        ("conf-rt-ko", RECEIPTS[2].1[0], "KO", true),
    ];
    let mut iuvs = Vec::new();
    for (id, seq, outcome, v2) in sent {
        let rt = gpd::receipt(id, &nav(seq), outcome);
        let resp = server
            .client
            .post(format!("{}/pagopa/paForNode", server.base))
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(send_rt_request(&gpd::node_header(), &rt, v2))
            .send()
            .await
            .unwrap();
        let text = resp.text().await.unwrap();
        let answer = parse_response(text.as_bytes()).unwrap();
        assert!(answer.is_ok(), "{id}: {:?}", answer.fault);
        iuvs.push(iuv(seq));
    }
    iuvs
}

/// Uploads [`UPLOADED`] through `/gpd/upload/v2` as a client does (a ZIP
/// built here, in a multipart form) and waits for its end; returns its
/// file id.
async fn seed_upload(server: &Server) -> String {
    let positions: Vec<Value> = UPLOADED
        .iter()
        .map(|(iupd, seqs, _)| {
            let iuvs: Vec<String> = seqs.iter().map(|s| iuv(*s)).collect();
            position(iupd, &iuvs)
        })
        .collect();
    let zip = gpd::zip_of("positions.json", &json!({"paymentPositions": positions}));
    let (content_type, body) = gpd::multipart("file", "positions.zip", &zip);
    let org = format!(
        "{}/gpd/upload/v2/brokers/{BROKER}/organizations/{ENTE}/debtpositions",
        server.base
    );
    let resp = server
        .client
        .post(format!("{org}/file"))
        .header("ApiKey", &server.key)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202, "{:?}", resp.text().await);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let file_id = location
        .rsplit('/')
        .nth(1)
        .unwrap_or_else(|| panic!("no file id in {location}"))
        .to_string();
    let started = Instant::now();
    loop {
        let status: Value = server
            .client
            .get(format!("{org}/file/{file_id}/status"))
            .header("ApiKey", &server.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match status["operationStatus"].as_str() {
            Some("IN_PROGRESS") => {}
            Some("COMPLETED") => return file_id,
            _ => panic!("the seeded upload did not complete: {status}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the seeded upload is still in progress: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The example files of gpd_massive_v2.json were not only accepted (202)
/// but worked through: what the create file holds exists, what the
/// delete file names is gone.
async fn uploads_of_examples_done(server: &Server) {
    let started = Instant::now();
    for (iupd, expected) in [("CONF-EXAMPLE-2", 200), ("CONF-DELETE-1", 404)] {
        let path = format!("/gpd/v1/organizations/{ENTE}/debtpositions/{iupd}");
        loop {
            let got = server
                .call(reqwest::Method::GET, &path, Some(&server.key), None)
                .await;
            if got.status.as_u16() == expected {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{iupd}: {} {}, not {expected}, after the uploads",
                got.status,
                got.text
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// gpd.json's examples: create a new position, update the draft, publish
/// it, invalidate a published one, mark a notice paid, move an IBAN, read
/// and delete.
fn v1_examples(_: &Seeds) -> Value {
    json!({
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
    })
}

/// openapi_external_v2.json's examples: create two new positions (one in
/// installments) and publish them, update the draft and the published
/// position together, delete a draft and a published position together
/// (seeded for it), mark a notice paid.
fn v2_examples(_: &Seeds) -> Value {
    json!({
        "createMultiplePositions": {
            "parameters": {"toPublish": true},
            "body": {"paymentPositions": [
                position("CONF-EXAMPLE-1", &[iuv(90)]),
                position("CONF-EXAMPLE-2", &[iuv(93), iuv(94)]),
            ]},
        },
        "updateMultiplePositions": {
            "parameters": {"toPublish": false},
            "body": {"paymentPositions": [
                position("CONF-DRAFT", &[iuv(91), iuv(92)]),
                position("CONF-PUBLISHED", &[iuv(2)]),
            ]},
        },
        "deleteMultipleDebtPositions": {
            "body": {"paymentPositionIUPDs": ["CONF-DELETE-1", "CONF-DELETE-2"]},
        },
        "setPaymentOptionAsAlreadyPaid": {
            "parameters": {"nav": nav(6)},
            "body": {"paymentDate": "2026-02-01T09:30:00Z"},
        },
    })
}

/// gpd_v3.json's examples: create a new position (a single solution) and
/// publish it, turn the draft into an installment plan, publish it, read
/// the position in installments (read as one plan), list, delete.
fn v3_examples(_: &Seeds) -> Value {
    json!({
        "createPosition": {
            "parameters": {"toPublish": true},
            "body": position_v3("CONF-EXAMPLE", &[iuv(90)]),
        },
        "updatePosition": {
            "parameters": {"iupd": "CONF-DRAFT", "toPublish": false},
            "body": position_v3("CONF-DRAFT", &[iuv(91), iuv(92)]),
        },
        "publishPosition": {"parameters": {"iupd": "CONF-DRAFT"}},
        "getOrganizationDebtPositionByIUPD": {"parameters": {"iupd": "CONF-INSTALLMENTS"}},
        "getOrganizationDebtPositions": {"parameters": {"limit": 50, "status": "VALID"}},
        "deletePosition": {"parameters": {"iupd": "CONF-EXAMPLE"}},
    })
}

/// openapi_send_v1.json's examples: read the published position's notice
/// and set its notification fee.
fn send_examples(_: &Seeds) -> Value {
    json!({
        "getOrganizationPaymentOptionByNAV": {"parameters": {"nav": nav(2)}},
        "updateNotificationFee": {
            "parameters": {"nav": nav(2)},
            "body": {"notificationFee": 150},
        },
    })
}

/// gpd_payments.json's examples: the first page of receipts, and the
/// receipt of the first paid notice.
fn payments_examples(seeds: &Seeds) -> Value {
    json!({
        "getOrganizationReceipts": {"parameters": {"pageNum": 0, "pageSize": 20}},
        "getReceiptByIUV": {"parameters": {"iuv": seeds.receipts[0]}},
    })
}

/// gpd_massive_v2.json's examples: files (ZIPs of one JSON file) that
/// create two new positions (one in installments), update the draft and
/// the published position, delete a draft and a published position
/// (seeded for it); the seeded upload's status and report; the file ids
/// of the last days. The ZIPs are [`gpd::ascii_zip`]'s, which the
/// document's JSON can carry and schemathesis sends byte for byte.
fn upload_examples(seeds: &Seeds) -> Value {
    let file = |json: Value| json!({"file": gpd::ascii_zip("positions.json", &json)});
    let from = (chrono::Utc::now() - chrono::Days::new(2)).date_naive();
    json!({
        "create-debt-positions-by-file-upload": {
            "body": file(json!({"paymentPositions": [
                position("CONF-EXAMPLE-1", &[iuv(90)]),
                position("CONF-EXAMPLE-2", &[iuv(93), iuv(94)]),
            ]})),
        },
        "update-debt-positions-by-file-upload": {
            "body": file(json!({"paymentPositions": [
                position("CONF-DRAFT", &[iuv(91), iuv(92)]),
                position("CONF-PUBLISHED", &[iuv(2)]),
            ]})),
        },
        "delete-debt-positions-by-file-upload": {
            "body": file(json!({"paymentPositionIUPDs": ["CONF-DELETE-1", "CONF-DELETE-2"]})),
        },
        "get-debt-positions-upload-status": {"parameters": {"file-id": seeds.uploads[0]}},
        "get-debt-positions-upload-report": {"parameters": {"file-id": seeds.uploads[0]}},
        "get-debt-positions-fileids": {
            "parameters": {"from": from.to_string(), "size": 100},
        },
    })
}

/// What the generated run on gpd.json found, pinned so that it does not depend on the
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

/// A document as schemathesis reads it. What it adds or relaxes, each
/// narrowly, changes no answer a GPD client may get:
/// - every operation with a JSON body may answer 415, which GPD does and
///   the documents leave out: GPD's Spring controllers declare `consumes =
///   application/json`, and Spring answers 415 when the Content-Type is
///   another or, the body being required, missing. incasso does the same,
///   with a ProblemJson body;
/// - the document's `optional` properties are not required, so that the
///   check that invalid requests are refused does not count a body
///   without them as accepted by mistake;
/// - the document's `nullable` properties may be `null`, for the same
///   reason;
/// - the document's `undeclared` statuses are declared, with a ProblemJson
///   body: what GPD's code answers where its document is silent;
/// - the document's `public` operations need no key;
/// - `X-Request-Id` is required on every answer, where the documents
///   declare it and say in words that it is always returned;
/// - a file part of a `multipart/form-data` body (the massive upload's
///   ZIP, the only one in GPD's documents) is sent with the file name
///   `positions.zip`, as a client names the ZIP it uploads; schemathesis
///   would name it after the part (`file`), and a file that does not end
///   in `.zip` is no ZIP to GPD's upload service nor to incasso (400);
/// - the document's `examples`, on the operations they name.
fn spec_for_schemathesis(document: &Document, seeds: &Seeds) -> Value {
    let mut spec: Value = serde_json::from_str(document.text).unwrap();
    let examples = (document.examples)(seeds);
    for (schema, property) in document.optional {
        let required = spec["components"]["schemas"][schema]["required"]
            .as_array_mut()
            .unwrap_or_else(|| panic!("{}: {schema} requires nothing", document.file));
        let before = required.len();
        required.retain(|p| p != property);
        assert_eq!(
            required.len() + 1,
            before,
            "{}: {schema}.{property} is not required",
            document.file
        );
    }
    let openapi_3_1 = spec["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1"));
    for (schema, property) in document.nullable {
        let declared = spec["components"]["schemas"][schema]["properties"]
            .get_mut(property)
            .unwrap_or_else(|| panic!("{}: {schema} has no {property}", document.file));
        assert_eq!(
            declared["type"], "string",
            "{}: {schema}.{property}",
            document.file
        );
        if openapi_3_1 {
            declared["type"] = json!(["string", "null"]);
        } else {
            declared["nullable"] = json!(true);
        }
    }
    let problem = |description: &str| {
        json!({
            "description": description,
            "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/ProblemJson"}
            }}
        })
    };
    let mut given = 0;
    let mut undeclared = 0;
    let mut public = 0;
    for item in spec["paths"].as_object_mut().unwrap().values_mut() {
        for (method, op) in item.as_object_mut().unwrap().iter_mut() {
            if method == "parameters" {
                continue;
            }
            let id = op["operationId"].as_str().unwrap_or_default().to_string();
            for response in op["responses"].as_object_mut().unwrap().values_mut() {
                if let Some(header) = response.pointer_mut("/headers/X-Request-Id") {
                    header["required"] = json!(true);
                }
            }
            if op
                .pointer("/requestBody/content/application~1json")
                .is_some()
            {
                op["responses"]["415"] = problem("The body is not JSON.");
            }
            if let Some(form) = op.pointer_mut("/requestBody/content/multipart~1form-data") {
                let files: Vec<String> = form["schema"]["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(_, p)| p["format"] == "binary")
                    .map(|(name, _)| name.clone())
                    .collect();
                for name in files {
                    form["encoding"][&name]["headers"]["Content-Disposition"] = json!({
                        "schema": {"type": "string"},
                        "example": format!("form-data; name=\"{name}\"; filename=\"positions.zip\""),
                    });
                }
            }
            for (_, status, why) in document.undeclared.iter().filter(|u| u.0 == id) {
                let responses = op["responses"].as_object_mut().unwrap();
                assert!(
                    !responses.contains_key(*status),
                    "{}: {id} declares {status} already",
                    document.file
                );
                responses.insert(status.to_string(), problem(why));
                undeclared += 1;
            }
            if document.public.contains(&id.as_str()) {
                op.as_object_mut().unwrap().remove("security");
                public += 1;
            }
            let Some(example) = examples.get(&id) else {
                continue;
            };
            given += 1;
            for (name, value) in example["parameters"].as_object().into_iter().flatten() {
                let param = op["parameters"]
                    .as_array_mut()
                    .unwrap()
                    .iter_mut()
                    .find(|p| p["name"] == *name)
                    .unwrap_or_else(|| panic!("{method} {id}: no parameter {name}"));
                param["example"] = value.clone();
            }
            if let Some(body) = example.get("body") {
                let content = op["requestBody"]["content"].as_object_mut().unwrap();
                assert_eq!(content.len(), 1, "{id}: which body is the example's?");
                for media in content.values_mut() {
                    media["example"] = body.clone();
                }
            }
        }
    }
    let file = document.file;
    assert_eq!(
        given,
        examples.as_object().unwrap().len(),
        "{file}: an example unused"
    );
    assert_eq!(
        undeclared,
        document.undeclared.len(),
        "{file}: an undeclared status unused"
    );
    assert_eq!(
        public,
        document.public.len(),
        "{file}: a public operation missing"
    );
    spec
}

/// Whether some operation of `spec` has the parameter `name` in `location`.
fn has_parameter(spec: &Value, location: &str, name: &str) -> bool {
    spec["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op.get("parameters").and_then(Value::as_array))
        .flatten()
        .any(|p| p["in"] == location && p["name"] == name)
}

fn toml_list(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// schemathesis' configuration: which checks run, and dictionaries that
/// make part of the generated path and query values name real data (the
/// seeded positions and notices, the IBANs of their transfers, the IUVs
/// with a receipt, the uploads), so that generated requests also reach
/// existing data and their answers are checked too. Each binding applies
/// only to a share of the values: the rest stay as random as schemathesis
/// makes them. Only the parameters `spec` has are bound or pinned.
fn config(document: &Document, spec: &Value, seeds: &Seeds) -> String {
    let mut known_iupds = seeds.iupds.clone();
    known_iupds.extend((1..=6).map(|i| format!("CONF-NEW-{i}")));
    // Notice numbers of the seeded options, and two that do not exist.
    let mut navs: Vec<String> = (1..=8).map(nav).collect();
    navs.extend(document.seed.iter().flat_map(|s| s.1).map(|s| nav(*s)));
    // IUVs with a receipt, one of a notice without, one of no notice.
    let mut iuvs = seeds.receipts.clone();
    iuvs.extend([iuv(2), iuv(99)]);
    // The uploads, and one that does not exist.
    let mut file_ids = seeds.uploads.clone();
    file_ids.push(format!("{BROKER}_{ENTE}_{}", "0".repeat(32)));
    let bindings = [
        ("path", "iupd", "iupds"),
        ("path", "nav", "navs"),
        ("query", "oldIban", "ibans"),
        ("path", "iuv", "iuvs"),
        ("path", "file-id", "file_ids"),
    ];
    let mut parameters = String::new();
    for (location, name, dictionary) in bindings {
        if has_parameter(spec, location, name) {
            parameters.push_str(&format!(
                "\"{location}.{name}\" = {{ dictionary = \"{dictionary}\", probability = 0.6 }}\n"
            ));
        }
    }
    // The Ente whose key the run holds, and the intermediary of its
    // station: another Ente's code, or a broker not of the Ente, would
    // only ever get 403, and generated codes would never reach data.
    let pins = [
        ("organizationfiscalcode", ENTE),
        ("organization-fiscal-code", ENTE),
        ("broker-code", BROKER),
    ];
    let mut pinned = String::new();
    for (name, value) in pins {
        if has_parameter(spec, "path", name) {
            pinned.push_str(&format!("\"path.{name}\" = \"{value}\"\n"));
        }
    }
    let mut operations = String::new();
    if !document.fewer_examples.is_empty() {
        operations = format!(
            "\n# Slow to generate (see DOCUMENTS).\n[[operations]]\n\
             include-operation-id = {}\ngeneration.max-examples = {FEWER_EXAMPLES}\n",
            toml_list(
                &document
                    .fewer_examples
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
            )
        );
    }
    format!(
        r#"# Written by crates/server/tests/gpd_conformance.rs for {file}.
seed = {SEED}
workers = 1
request-timeout = 20.0

[generation]
max-examples = {MAX_EXAMPLES}
database = "none"

# What a GPD client relies on: no 5xx, only the status codes the document
# declares, the declared content type, bodies that match the declared
# schema (formats included), the declared response headers, 401 without a
# valid key, 405 (with Allow) for a method a path does not have, and every
# request that breaks the document's schemas refused.
#
# Left out:
# - positive_data_acceptance: GPD's schemas say little of what GPD
#   accepts (a fiscal code, an IBAN, a taxonomy code, due dates in the
#   future, amounts that add up are GPD's rules, not the schema's), so
#   schema-valid bodies are rightly refused with 400.
# - missing_required_header: GPD's documents require no header, so it has
#   nothing to check.
# - use_after_free, ensure_resource_availability: they judge an answer by
#   an earlier request linked to it, which needs OpenAPI links (GPD's
#   documents have none, so there is no stateful phase either).
# - object_level_authorization: it needs a second identity; a key of
#   another Ente is refused before anything else, as tests/api.rs and
#   tests/gpd_v2.rs check.
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
iuvs = {{ values = {iuvs} }}
file_ids = {{ values = {file_ids} }}

[parameters]
{pinned}{parameters}# No dictionaries for body fields: with them, generating mixed valid and
# invalid bodies of PaymentPositionModel takes minutes for some seeds. The
# examples added to the document (spec_for_schemathesis) reach the
# success paths of the operations with a body.
{operations}"#,
        file = document.file,
        iupds = toml_list(&known_iupds),
        navs = toml_list(&navs),
        ibans = toml_list(&[IBAN.to_string(), OTHER_IBAN.to_string()]),
        iuvs = toml_list(&iuvs),
        file_ids = toml_list(&file_ids),
    )
}

#[tokio::test]
async fn gpd_v1_conforms_to_gpd_json_under_generated_requests() {
    conforms(&DOCUMENTS[0]).await;
}

#[tokio::test]
async fn gpd_v2_conforms_to_openapi_external_v2_under_generated_requests() {
    conforms(&DOCUMENTS[1]).await;
}

#[tokio::test]
async fn gpd_v3_conforms_to_gpd_v3_json_under_generated_requests() {
    conforms(&DOCUMENTS[2]).await;
}

#[tokio::test]
async fn gpd_send_conforms_to_openapi_send_v1_under_generated_requests() {
    conforms(&DOCUMENTS[3]).await;
}

#[tokio::test]
async fn gpd_payments_conforms_to_gpd_payments_json_under_generated_requests() {
    conforms(&DOCUMENTS[4]).await;
}

#[tokio::test]
async fn gpd_upload_conforms_to_gpd_massive_v2_under_generated_requests() {
    conforms(&DOCUMENTS[5]).await;
}

/// schemathesis run on `document` against incasso, on each backend.
async fn conforms(document: &Document) {
    let file = document.file;
    let exe = schemathesis();
    let version = match version_of(&exe).await {
        Ok(v) => v,
        Err(e) if std::env::var("INCASSO_REQUIRE_TOOLS").is_ok_and(|v| v == "1") => {
            panic!("schemathesis is needed (scripts/test.sh installs it): {e}")
        }
        Err(e) => {
            eprintln!(
                "note: schemathesis missing ({e}), the GPD conformance run on {file} \
                 skipped; scripts/test.sh installs it"
            );
            return;
        }
    };
    eprintln!("{file}: {version} ({})", exe.display());
    for backend in incasso_testkit::backends() {
        let server = start(backend).await;
        let seeds = seed(&server, document).await;
        if document.pinned_findings {
            check_findings(&server).await;
        }
        // After the seed: the examples name what it made (file ids).
        let document_for_run = spec_for_schemathesis(document, &seeds);
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join(file);
        std::fs::write(&spec, document_for_run.to_string()).unwrap();
        let config_file = dir.path().join("schemathesis.toml");
        std::fs::write(&config_file, config(document, &document_for_run, &seeds)).unwrap();
        let started = Instant::now();
        let out = tokio::process::Command::new(&exe)
            .arg("--config-file")
            .arg(&config_file)
            .arg("run")
            .arg(&spec)
            .arg("--url")
            .arg(format!("{}{}", server.base, document.base))
            .arg("--header")
            .arg(format!("{}: {}", document.key_header, server.key))
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
            "{backend:?}: schemathesis found {} not conforming to {file} \
             (exit {:?}):\n{stdout}\n{stderr}",
            document.base,
            out.status.code()
        );
        if document.also == Also::Upload {
            uploads_of_examples_done(&server).await;
        }
        // Every operation of the document was tested, and something was sent.
        let operations = document_for_run["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().keys())
            .filter(|k| *k != "parameters")
            .count();
        assert!(
            stdout.contains(&format!("Tested: {operations}\n")),
            "{backend:?}: not every operation of {file} was tested:\n{stdout}"
        );
        let cases = stdout
            .lines()
            .find(|l| l.contains(" generated, "))
            .unwrap_or_else(|| panic!("{backend:?}: no count of test cases:\n{stdout}"));
        eprintln!(
            "{file} {backend:?}: {operations} operations, {} in {:.1} s",
            cases.trim(),
            started.elapsed().as_secs_f64()
        );
    }
}
