//! DigitPOS over HTTP (issue 18), on both databases, against the simulated
//! pagoPA: a client that knows only `/api/openapi.json` finds each route
//! there, and every answer it gets (successes and ProblemJson alike) is
//! checked against the schema the document declares for that status.
//! Each use case end to end: a spontaneous payment made and sent to
//! Checkout, paid there, its receipt through the Node, then its data and
//! quietanza; a position loaded for later payment, its notice PDF, paid
//! by the caller's key; the refusals (paid notice, amount, unregistered
//! return host, another Ente's key); idempotency keys replayed, reused
//! with another body (409), missing (400).

use crate::common::app;
use crate::common::pay_world;

use app::gpd::ENTE;
use incasso_core::Cents;
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::catalogue::Service;
use incasso_core::form::{Amount, Field, FieldKind, FormDef};
use incasso_store::KeyScope;
use incasso_testkit::backends;
use pay_world::{World, world};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PAYER: &str = "RSSMRA85T10A562S";

/// Every DigitPOS operation the document must declare.
const OPERATIONS: &[(&str, &str)] = &[
    (
        "post",
        "/api/v1/enti/{fiscalCode}/digitpos/spontaneous-payments",
    ),
    ("post", "/api/v1/enti/{fiscalCode}/digitpos/positions"),
    ("post", "/api/v1/enti/{fiscalCode}/digitpos/payments"),
    (
        "get",
        "/api/v1/enti/{fiscalCode}/digitpos/notices/{noticeNumber}/pdf",
    ),
    (
        "get",
        "/api/v1/enti/{fiscalCode}/digitpos/notices/{noticeNumber}/receipt",
    ),
    (
        "get",
        "/api/v1/enti/{fiscalCode}/digitpos/notices/{noticeNumber}/receipt.pdf",
    ),
    ("get", "/api/v1/enti/{fiscalCode}/digitpos/return-hosts"),
    ("post", "/api/v1/enti/{fiscalCode}/digitpos/return-hosts"),
    (
        "delete",
        "/api/v1/enti/{fiscalCode}/digitpos/return-hosts/{host}",
    ),
];

/// A client of incasso that knows only its OpenAPI document.
struct Client {
    base: String,
    doc: Value,
    http: reqwest::Client,
}

struct Answer {
    status: StatusCode,
    json: Value,
    bytes: Vec<u8>,
    replayed: bool,
}

impl Client {
    async fn new(base: &str) -> Client {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let doc: Value = http
            .get(format!("{base}/api/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Client {
            base: base.to_string(),
            doc,
            http,
        }
    }

    /// The path template of the operation whose request body is the
    /// schema `body`, or whose path ends with `suffix`: found in the
    /// document, never written here.
    fn path_by_body(&self, method: &str, body: &str) -> String {
        let paths = self.doc["paths"].as_object().unwrap();
        let found: Vec<&String> = paths
            .iter()
            .filter(|(_, item)| {
                item[method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                    .as_str()
                    .is_some_and(|r| r.ends_with(&format!("/{body}")))
            })
            .map(|(p, _)| p)
            .collect();
        assert_eq!(found.len(), 1, "{method} with body {body}: {found:?}");
        found[0].clone()
    }

    fn path_by_suffix(&self, method: &str, suffix: &str) -> String {
        let paths = self.doc["paths"].as_object().unwrap();
        let found: Vec<&String> = paths
            .iter()
            .filter(|(p, item)| {
                p.contains("/digitpos/") && p.ends_with(suffix) && item.get(method).is_some()
            })
            .map(|(p, _)| p)
            .collect();
        assert_eq!(found.len(), 1, "{method} ...{suffix}: {found:?}");
        found[0].clone()
    }

    /// Calls `template` with its parameters filled in, and checks the
    /// answer against what the document declares for its status.
    async fn call(
        &self,
        method: &str,
        template: &str,
        params: &[(&str, &str)],
        key: &str,
        idempotency: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let mut path = template.to_string();
        for (name, value) in params {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        assert!(!path.contains('{'), "{path}: a parameter is missing");
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut req = self
            .http
            .request(m, format!("{}{path}", self.base))
            .header("Ocp-Apim-Subscription-Key", key);
        if let Some(k) = idempotency {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let replayed = resp.headers().get("Idempotent-Replayed").is_some();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
            .unwrap_or_default();
        let bytes = resp.bytes().await.unwrap().to_vec();
        let op = &self.doc["paths"][template][method];
        assert!(op.is_object(), "{method} {template} not in the document");
        let declared = &op["responses"][status.as_str()];
        assert!(
            declared.is_object(),
            "{method} {template} answered {status}, which the document does not declare: {}",
            String::from_utf8_lossy(&bytes)
        );
        if bytes.is_empty() && declared.get("content").is_none() {
            return Answer {
                status,
                json: Value::Null,
                bytes,
                replayed,
            };
        }
        let content = &declared["content"][&content_type];
        assert!(
            content.is_object(),
            "{method} {template} {status}: content type {content_type} not declared ({})",
            declared["content"]
        );
        let json = if content_type.ends_with("json") {
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            self.conforms(
                &content["schema"],
                &v,
                &format!("{method} {template} {status}"),
            );
            v
        } else {
            Value::Null
        };
        Answer {
            status,
            json,
            bytes,
            replayed,
        }
    }

    fn conforms(&self, schema: &Value, value: &Value, what: &str) {
        let mut full = schema.clone();
        full["components"] = self.doc["components"].clone();
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&full)
            .unwrap();
        let errors: Vec<String> = validator
            .iter_errors(value)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{what}: {errors:#?}\n{value:#}");
    }
}

/// Ente A's catalogue: accertamento 2026/ACC-TICKET and the spontaneous
/// service TICKET, typed between 1,00 and 500,00 € with a prescription
/// number.
async fn catalogue(w: &World) {
    let store = &w.app.store;
    store
        .put_accertamento(
            ENTE,
            &Accertamento {
                year: 2026,
                code: "ACC-TICKET".into(),
                description: "Ticket".into(),
                chapter: "3050".into(),
                article: None,
                siope_code: None,
                active: true,
            },
        )
        .await
        .unwrap();
    for (code, spontaneous) in [("TICKET", true), ("RETTA", false)] {
        store
            .put_service(
                ENTE,
                &Service {
                    code: code.into(),
                    name: format!("Servizio {code}"),
                    office_code: None,
                    taxonomy_code: "9/0101100IM/".into(),
                    default_accertamento: Some(AccertamentoRef {
                        year: 2026,
                        code: "ACC-TICKET".into(),
                    }),
                    iban: None,
                    fixed_amount: None,
                    spontaneous,
                    pagopa_service_id: None,
                    active: true,
                },
            )
            .await
            .unwrap();
    }
    let form = FormDef {
        fields: vec![Field {
            name: "ricetta".into(),
            kind: FieldKind::Text,
            label: "Ricetta".into(),
            help: String::new(),
            required: true,
            pattern: Some("[0-9A-Z]{15}".into()),
            choices: Vec::new(),
            min_length: None,
            max_length: None,
        }],
        amount: Amount::Range {
            min: Cents(100),
            max: Cents(50_000),
        },
        causale: "Ticket ricetta {ricetta}".into(),
    };
    store
        .put_service_form(
            ENTE,
            "TICKET",
            &serde_json::to_string(&form).unwrap(),
            None,
            "test",
            chrono::Utc::now(),
        )
        .await
        .unwrap();
}

fn return_urls(host: &str) -> Value {
    json!({"ok": format!("{host}/esito/ok"), "cancel": format!("{host}/esito/annullato"),
           "error": format!("{host}/esito/errore")})
}

fn spontaneous(amount: i64, back: &str) -> Value {
    json!({
        "serviceCode": "TICKET",
        "debtor": {"fiscalCode": PAYER, "name": "Mario Rossi"},
        "fields": {"ricetta": "ABCDE1234567890"},
        "amountCents": amount,
        "returnUrls": return_urls(back),
        "emailNotice": "mario.rossi@example.it"
    })
}

fn codes(a: &Answer) -> (StatusCode, String) {
    (
        a.status,
        a.json["code"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn each_use_case_from_the_openapi_against_the_simulator() {
    for backend in backends() {
        let w = world(backend).await;
        catalogue(&w).await;
        let c = Client::new(w.base()).await;
        let key = w.app.key_a.clone();
        let (_, admin) =
            incasso_app::keys::issue_key(&w.app.store, Some(ENTE), KeyScope::EnteAdmin, "admin")
                .await
                .unwrap();
        let fc = [("fiscalCode", ENTE)];
        let back = "http://localhost:4321";

        // The Ente's administrator registers the caller's host; the
        // application's own key may not.
        let hosts = c.path_by_body("post", "ReturnHostRequest");
        let refused = c
            .call(
                "post",
                &hosts,
                &fc,
                &key,
                Some("h1"),
                Some(&json!({"host": "localhost"})),
            )
            .await;
        assert_eq!(
            codes(&refused),
            (StatusCode::FORBIDDEN, "FORBIDDEN_SCOPE".into())
        );
        let added = c
            .call(
                "post",
                &hosts,
                &fc,
                &admin,
                Some("h2"),
                Some(&json!({"host": "LocalHost"})),
            )
            .await;
        assert_eq!(
            added.status,
            StatusCode::CREATED,
            "{backend:?} {}",
            added.json
        );
        assert_eq!(added.json["host"], "localhost");
        let listed = c.call("get", &hosts, &fc, &key, None, None).await;
        assert_eq!(listed.json[0]["host"], "localhost");

        // 1. A spontaneous payment: made, and sent to Checkout.
        let pay_now = c.path_by_body("post", "SpontaneousPaymentRequest");
        let missing = c
            .call(
                "post",
                &pay_now,
                &fc,
                &key,
                None,
                Some(&spontaneous(2500, back)),
            )
            .await;
        assert_eq!(
            codes(&missing),
            (StatusCode::BAD_REQUEST, "IDEMPOTENCY_KEY_REQUIRED".into())
        );
        let flushed = w.app.store.wal_flushes();
        let made = c
            .call(
                "post",
                &pay_now,
                &fc,
                &key,
                Some("order-1"),
                Some(&spontaneous(2500, back)),
            )
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.json);
        // On SQLite its notice number was flushed before the answer (the
        // portal's and the desk's spontaneous payments share this use
        // case); PostgreSQL's commit is durable by itself.
        assert_eq!(
            w.app.store.wal_flushes() > flushed,
            backend == incasso_testkit::Backend::Sqlite,
            "{backend:?}"
        );
        assert!(!made.replayed);
        let checkout_url = made.json["checkoutUrl"].as_str().unwrap().to_string();
        assert!(checkout_url.starts_with(&w.sim_url), "{checkout_url}");
        assert_eq!(made.json["amountCents"], 2500);
        let nav = made.json["noticeNumber"].as_str().unwrap().to_string();
        assert!(nav.ends_with(made.json["iuv"].as_str().unwrap()));
        assert!(made.json["iupd"].as_str().unwrap().starts_with("PS-"));
        let stored = w
            .app
            .store
            .get_position(ENTE, made.json["iupd"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(stored.position.options[0].transfers[0].quotas.len(), 1);

        // The same key and body again: the same answer, nothing new.
        let again = c
            .call(
                "post",
                &pay_now,
                &fc,
                &key,
                Some("order-1"),
                Some(&spontaneous(2500, back)),
            )
            .await;
        assert_eq!(
            (again.status, &again.json),
            (StatusCode::CREATED, &made.json)
        );
        assert!(again.replayed);
        assert_eq!(w.carts().await.len(), 1, "one Checkout cart");
        // The same key with another body: refused.
        let reused = c
            .call(
                "post",
                &pay_now,
                &fc,
                &key,
                Some("order-1"),
                Some(&spontaneous(2600, back)),
            )
            .await;
        assert_eq!(
            codes(&reused),
            (StatusCode::CONFLICT, "IDEMPOTENCY_KEY_REUSED".into())
        );
        // The key answers before the body is judged (the key is claimed in
        // the position's transaction, after the checks): another body
        // that would be refused is still a reused key.
        let reused = c
            .call(
                "post",
                &pay_now,
                &fc,
                &key,
                Some("order-1"),
                Some(&spontaneous(2500, "https://elsewhere.example")),
            )
            .await;
        assert_eq!(
            codes(&reused),
            (StatusCode::CONFLICT, "IDEMPOTENCY_KEY_REUSED".into())
        );
        let unclaimed = c
            .call(
                "post",
                &pay_now,
                &fc,
                &key,
                Some("order-elsewhere"),
                Some(&spontaneous(2500, "https://elsewhere.example")),
            )
            .await;
        assert_eq!(
            codes(&unclaimed),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "RETURN_HOST_NOT_REGISTERED".into()
            )
        );
        assert_eq!(w.carts().await.len(), 1, "still one Checkout cart");

        // 5, before payment: no receipt yet.
        let receipt = c.path_by_suffix("get", "/receipt");
        let receipt_pdf = c.path_by_suffix("get", "/receipt.pdf");
        let n = [("fiscalCode", ENTE), ("noticeNumber", nav.as_str())];
        let early = c.call("get", &receipt, &n, &key, None, None).await;
        assert_eq!(
            codes(&early),
            (StatusCode::NOT_FOUND, "RECEIPT_NOT_AVAILABLE".into())
        );

        // The payer pays on Checkout and comes back to the caller's page;
        // the Node's receipt is in.
        let paid = w.checkout(&checkout_url, "pay").await;
        assert_eq!(paid.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            paid.headers()["location"].to_str().unwrap(),
            format!("{back}/esito/ok")
        );
        let r = c.call("get", &receipt, &n, &key, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        assert_eq!(r.json["noticeNumber"], nav.as_str());
        assert_eq!(r.json["amountCents"], 2500);
        assert_eq!(r.json["iupd"], made.json["iupd"]);
        assert_eq!(r.json["debtorFiscalCode"], PAYER);
        let pdf = c.call("get", &receipt_pdf, &n, &key, None, None).await;
        assert_eq!(pdf.status, StatusCode::OK);
        assert!(pdf.bytes.starts_with(b"%PDF"));

        // 3 on a paid notice: refused with its code.
        let pay_later = c.path_by_body("post", "PayPositionRequest");
        let twice = c
            .call(
                "post",
                &pay_later,
                &fc,
                &key,
                Some("pay-paid"),
                Some(&json!({"noticeNumber": nav, "returnUrls": return_urls(back)})),
            )
            .await;
        assert_eq!(codes(&twice), (StatusCode::CONFLICT, "NOTICE_PAID".into()));

        // 2. A position loaded for later payment, with the caller's key.
        let load = c.path_by_body("post", "LoadPositionRequest");
        let body = json!({
            "serviceCode": "RETTA",
            "debtor": {"fiscalCode": PAYER, "name": "Mario Rossi"},
            "amountCents": 12_000,
            "dueDate": "2099-06-30",
            "iupd": "MENSA-2026-001"
        });
        let loaded = c
            .call("post", &load, &fc, &key, Some("load-1"), Some(&body))
            .await;
        assert_eq!(loaded.status, StatusCode::CREATED, "{}", loaded.json);
        assert_eq!(loaded.json["iupd"], "MENSA-2026-001");
        assert_eq!(loaded.json["dueDate"], "2099-06-30");
        let nav2 = loaded.json["noticeNumber"].as_str().unwrap().to_string();
        let link = loaded.json["noticePdfUrl"].as_str().unwrap();
        assert!(link.starts_with(w.base()), "{link}");

        // 4. Its notice PDF, at the link given and by the documented path.
        let notice = c.path_by_suffix("get", "/pdf");
        let n2 = [("fiscalCode", ENTE), ("noticeNumber", nav2.as_str())];
        assert_eq!(
            &link[w.base().len()..],
            notice
                .replace("{fiscalCode}", ENTE)
                .replace("{noticeNumber}", &nav2)
        );
        let pdf = c.call("get", &notice, &n2, &key, None, None).await;
        assert_eq!(pdf.status, StatusCode::OK);
        assert!(pdf.bytes.starts_with(b"%PDF"));

        // 3. Paid by the caller's key: the amount shown must be the notice's.
        let wrong = c
            .call(
                "post",
                &pay_later,
                &fc,
                &key,
                Some("pay-1"),
                Some(&json!({"iupd": "MENSA-2026-001", "amountCents": 11_000, "returnUrls": return_urls(back)})),
            )
            .await;
        assert_eq!(
            codes(&wrong),
            (StatusCode::UNPROCESSABLE_ENTITY, "AMOUNT_MISMATCH".into())
        );
        assert_eq!(wrong.json["errors"][0]["field"], "amountCents");
        let started = c
            .call(
                "post",
                &pay_later,
                &fc,
                &key,
                Some("pay-2"),
                Some(&json!({"iupd": "MENSA-2026-001", "amountCents": 12_000, "returnUrls": return_urls(back)})),
            )
            .await;
        assert_eq!(started.status, StatusCode::CREATED, "{}", started.json);
        assert_eq!(started.json["noticeNumber"], nav2.as_str());
        let url = started.json["checkoutUrl"].as_str().unwrap();
        assert_eq!(w.checkout(url, "pay").await.status(), StatusCode::SEE_OTHER);
        let r = c.call("get", &receipt, &n2, &key, None, None).await;
        assert_eq!(
            (r.status, r.json["amountCents"].as_i64()),
            (StatusCode::OK, Some(12_000))
        );

        // An unregistered return host, named; an insecure one; a field
        // named when wrong.
        let evil = c
            .call(
                "post",
                &pay_now,
                &fc,
                &key,
                Some("evil"),
                Some(&spontaneous(2500, "https://evil.example.org")),
            )
            .await;
        assert_eq!(
            codes(&evil),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "RETURN_HOST_NOT_REGISTERED".into()
            )
        );
        assert!(
            evil.json["detail"]
                .as_str()
                .unwrap()
                .contains("evil.example.org")
        );
        assert_eq!(
            w.carts().await.len(),
            2,
            "{backend:?}: no cart for a refused request"
        );
        // A refusal is not kept: the same key, the request put right, runs.
        let fixed = c
            .call(
                "post",
                &pay_now,
                &fc,
                &key,
                Some("evil"),
                Some(&spontaneous(2500, back)),
            )
            .await;
        assert_eq!(fixed.status, StatusCode::CREATED, "{}", fixed.json);
        assert!(!fixed.replayed);
        let mut bad = spontaneous(2500, back);
        bad["fields"]["ricetta"] = json!("nope");
        bad["amountCents"] = json!(99_999_999);
        let bad = c
            .call("post", &pay_now, &fc, &key, Some("bad"), Some(&bad))
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let mut fields: Vec<&str> = bad.json["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        fields.sort();
        assert_eq!(fields, vec!["amountCents", "fields.ricetta"]);
        let unknown = c
            .call(
                "post",
                &pay_now,
                &fc,
                &key,
                Some("unknown"),
                Some(
                    &json!({"serviceCode": "TICKET", "debtor": {"fiscalCode": PAYER, "name": "M"},
                             "returnUrls": return_urls(back), "amount": 5}),
                ),
            )
            .await;
        assert_eq!(
            codes(&unknown),
            (StatusCode::BAD_REQUEST, "BAD_JSON_DATA".into())
        );
        assert!(
            unknown.json["detail"].as_str().unwrap().contains("amount"),
            "{}",
            unknown.json
        );
        assert_eq!(
            w.carts().await.len(),
            3,
            "{backend:?}: no cart for a refused request"
        );

        // Another Ente's key learns nothing.
        let other = c
            .call(
                "post",
                &pay_now,
                &fc,
                &w.app.key_b,
                Some("x"),
                Some(&spontaneous(2500, back)),
            )
            .await;
        assert_eq!(other.status, StatusCode::FORBIDDEN);
        let other = c.call("get", &receipt, &n, &w.app.key_b, None, None).await;
        assert_eq!(other.status, StatusCode::FORBIDDEN);

        // A spontaneous payment never completed is cancelled by the
        // portal's abandonment job, like the portal's own.
        let left = c
            .call(
                "post",
                &pay_now,
                &fc,
                &key,
                Some("order-3"),
                Some(&spontaneous(700, back)),
            )
            .await;
        assert_eq!(left.status, StatusCode::CREATED, "{}", left.json);
        let app = incasso_app::App::new(w.app.store.clone(), incasso_app::Settings::new(w.base()));
        let later = chrono::Utc::now() + chrono::Duration::minutes(61);
        let closed = incasso_app::portal::spontaneous::close_abandoned(&app, later)
            .await
            .unwrap();
        assert!(
            closed.iter().any(
                |(_, iupd, done)| iupd == left.json["iupd"].as_str().unwrap()
                    && *done == incasso_store::Abandoned::Cancelled
            ),
            "{closed:?}"
        );
        let cancelled = c
            .call(
                "post",
                &pay_later,
                &fc,
                &key,
                Some("pay-left"),
                Some(&json!({"noticeNumber": left.json["noticeNumber"], "returnUrls": return_urls(back)})),
            )
            .await;
        assert_eq!(
            codes(&cancelled),
            (StatusCode::CONFLICT, "NOTICE_CANCELLED".into())
        );
        let paid_one = w
            .app
            .store
            .get_position(ENTE, made.json["iupd"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(
            paid_one.position.status,
            incasso_core::position::PositionStatus::Paid
        );

        // Checkout silent after the position is made (and the key claimed
        // with it): the key is let go, the position stays, and the same
        // key again finds that position and opens its cart.
        w.sim.set_faults(incasso_simulator::Faults {
            fail_next: 50,
            ..Default::default()
        });
        let failed = c
            .call(
                "post",
                &pay_now,
                &fc,
                &key,
                Some("order-silent-checkout"),
                Some(&spontaneous(2500, back)),
            )
            .await;
        w.sim.set_faults(Default::default());
        assert_eq!(
            codes(&failed),
            (StatusCode::BAD_GATEWAY, "NODE_UNAVAILABLE".into()),
            "{backend:?}"
        );
        let failed_at = chrono::Utc::now();
        let retried = c
            .call(
                "post",
                &pay_now,
                &fc,
                &key,
                Some("order-silent-checkout"),
                Some(&spontaneous(2500, back)),
            )
            .await;
        assert_eq!(retried.status, StatusCode::CREATED, "{}", retried.json);
        assert!(!retried.replayed);
        let found = w
            .app
            .store
            .get_position(ENTE, retried.json["iupd"].as_str().unwrap())
            .await
            .unwrap();
        assert!(
            found.position.inserted_date.unwrap() < failed_at,
            "{backend:?}: the position the failed request made"
        );
        let replayed = c
            .call(
                "post",
                &pay_now,
                &fc,
                &key,
                Some("order-silent-checkout"),
                Some(&spontaneous(2500, back)),
            )
            .await;
        assert_eq!(
            (replayed.status, &replayed.json, replayed.replayed),
            (StatusCode::CREATED, &retried.json, true)
        );

        // Removed, a host is refused again.
        let remove = c.path_by_suffix("delete", "/{host}");
        let gone = c
            .call(
                "delete",
                &remove,
                &[("fiscalCode", ENTE), ("host", "localhost")],
                &admin,
                None,
                None,
            )
            .await;
        assert_eq!(gone.status, StatusCode::NO_CONTENT);
        let after = c
            .call(
                "post",
                &pay_now,
                &fc,
                &key,
                Some("order-2"),
                Some(&spontaneous(2500, back)),
            )
            .await;
        assert_eq!(
            codes(&after),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "RETURN_HOST_NOT_REGISTERED".into()
            )
        );
        // A key already answered still replays its answer, though its
        // request would now be refused.
        let replayed = c
            .call(
                "post",
                &pay_now,
                &fc,
                &key,
                Some("order-silent-checkout"),
                Some(&spontaneous(2500, back)),
            )
            .await;
        assert_eq!(
            (replayed.status, &replayed.json, replayed.replayed),
            (StatusCode::CREATED, &retried.json, true),
            "{backend:?}"
        );
    }
}

/// Every DigitPOS route and schema is in `/api/openapi.json`, every POST
/// with its required Idempotency-Key header, every operation with its
/// errors as ProblemJson.
#[tokio::test]
async fn the_openapi_documents_every_digitpos_route() {
    let w = world(incasso_testkit::Backend::Sqlite).await;
    let c = Client::new(w.base()).await;
    let schemas = c.doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "SpontaneousPaymentRequest",
        "LoadPositionRequest",
        "PayPositionRequest",
        "ReturnHostRequest",
        "DebtorDto",
        "ReturnUrlsDto",
        "PaymentDto",
        "PositionDto",
        "ReceiptDto",
        "ReturnHostDto",
        "ProblemJson",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    assert_eq!(
        schemas["PaymentDto"]["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| *r == "checkoutUrl")
            .count(),
        1
    );
    let mut documented = 0;
    for (path, item) in c.doc["paths"].as_object().unwrap() {
        if !path.contains("/digitpos/") {
            continue;
        }
        for method in ["get", "post", "put", "delete", "patch"] {
            if item.get(method).is_some() {
                assert!(
                    OPERATIONS.contains(&(method, path.as_str())),
                    "{method} {path} documented but not known to this test"
                );
                documented += 1;
            }
        }
    }
    assert_eq!(documented, OPERATIONS.len());
    for (method, path) in OPERATIONS {
        let op = &c.doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} not documented");
        assert_eq!(op["tags"][0], "digitpos", "{method} {path}");
        assert!(
            op["description"].as_str().is_some() || op["summary"].as_str().is_some(),
            "{method} {path} without a description"
        );
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path}"
        );
        for status in ["401", "403"] {
            assert_eq!(
                responses[status]["content"]["application/problem+json"]["schema"]["$ref"],
                "#/components/schemas/ProblemJson",
                "{method} {path} {status}"
            );
        }
        if *method == "post" {
            let key = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "Idempotency-Key")
                .unwrap_or_else(|| panic!("{path}: no Idempotency-Key"));
            assert_eq!(
                (key["in"].as_str(), key["required"].as_bool()),
                (Some("header"), Some(true))
            );
            assert!(
                responses.contains_key("409"),
                "{path}: 409 for a reused key"
            );
            assert!(op["requestBody"]["content"]["application/json"]["schema"]["$ref"].is_string());
        }
        // A real request reaches the route (not the fallback's 404).
        let url = format!(
            "{}{}",
            w.base(),
            path.replace("{fiscalCode}", ENTE)
                .replace("{noticeNumber}", "301000000000000000")
                .replace("{host}", "localhost")
        );
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let resp = c.http.request(m, url).send().await.unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}: no key"
        );
    }
}
