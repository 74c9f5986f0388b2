//! DigitPOS's use cases (issue 18) on both databases, without pagoPA:
//! positions loaded for later payment (and every refusal naming its field,
//! with nothing written), the return hosts and their rights, the refusals
//! of paying a notice, the receipt before payment, and the idempotency
//! keys. Checkout itself is driven over HTTP in the server's tests.

use chrono::Utc;
use incasso_app::digitpos::{
    self as dp, Claimed, Debtor, LoadPosition, PayPosition, ReturnUrls, ServiceAnswers,
    SpontaneousPayment,
};
use incasso_app::{App, AppError, Caller, Clock, Ctx, Kind, Settings};
use incasso_core::Cents;
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::catalogue::Service;
use incasso_core::ente::{Ente, StationLink};
use incasso_core::form::{Amount, Field, FieldKind, FormDef};
use incasso_store::{KeyScope, Store};
use incasso_testkit::{backends, fresh_database_url};
use std::collections::BTreeMap;

const ENTE: &str = "80000130585";
const OTHER: &str = "00514490010";
const PAYER: &str = "RSSMRA85T10A562S";

struct World {
    store: Store,
    /// Ente A's application key, its administrator key, Ente B's key.
    app_key: Caller,
    admin_key: Caller,
    other_key: Caller,
}

impl World {
    fn ctx(&self, caller: &Caller) -> Ctx {
        App::new(self.store.clone(), Settings::new("https://incasso.test")).ctx(caller.clone())
    }
}

async fn caller(store: &Store, ente: &str, scope: KeyScope) -> Caller {
    let (_, key) = incasso_app::keys::issue_key(store, Some(ente), scope, "test")
        .await
        .unwrap();
    incasso_app::keys::authenticate(store, &key).await.unwrap()
}

/// Ente A with a station (not connected to any Node), accertamento
/// 2026/ACC, and three services: TICKET (spontaneous, a form with a
/// patterned field, 1,00-500,00 €), CERT (spontaneous, fixed 16,00 €, no
/// form), MULTA (not spontaneous, no form: any amount). Ente B bare.
async fn world(url: &str) -> World {
    let store = Store::connect(url).await.unwrap();
    for (fc, name) in [
        (ENTE, "Comune di Borgo Esempio"),
        (OTHER, "Comune di Altrove"),
    ] {
        store
            .create_ente(
                &Ente {
                    fiscal_code: fc.into(),
                    name: name.into(),
                    ipa_code: None,
                    iban: Some("IT65B0200805364000104567891".into()),
                    postal_iban: None,
                    cbill_code: None,
                    email: None,
                },
                Utc::now(),
            )
            .await
            .unwrap();
    }
    store
        .add_station(
            ENTE,
            &StationLink {
                broker_id: "15376371009".into(),
                station_id: "15376371009_01".into(),
                segregation_code: 1,
            },
            Utc::now(),
        )
        .await
        .unwrap();
    store
        .put_accertamento(
            ENTE,
            &Accertamento {
                year: 2026,
                code: "ACC".into(),
                description: "Entrate".into(),
                chapter: "3050".into(),
                article: None,
                siope_code: None,
                active: true,
            },
        )
        .await
        .unwrap();
    for (code, fixed, spontaneous) in [
        ("TICKET", None, true),
        ("CERT", Some(Cents(1600)), true),
        ("MULTA", None, false),
    ] {
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
                        code: "ACC".into(),
                    }),
                    iban: None,
                    fixed_amount: fixed,
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
            Utc::now(),
        )
        .await
        .unwrap();
    World {
        app_key: caller(&store, ENTE, KeyScope::Ente).await,
        admin_key: caller(&store, ENTE, KeyScope::EnteAdmin).await,
        other_key: caller(&store, OTHER, KeyScope::Ente).await,
        store,
    }
}

fn ticket(amount: i64, ricetta: &str) -> ServiceAnswers {
    ServiceAnswers {
        service_code: "TICKET".into(),
        debtor: Debtor {
            fiscal_code: PAYER.into(),
            name: "Mario Rossi".into(),
            email: None,
        },
        fields: BTreeMap::from([("ricetta".to_string(), ricetta.to_string())]),
        amount_cents: Some(amount),
        amount_choice: None,
    }
}

/// A well-formed notice number of segregation code 01 that no position has.
fn unknown_nav() -> String {
    (0..93)
        .map(|c| format!("3019999999999999{c:02}"))
        .find(|n| incasso_core::codes::NoticeNumber::parse(n).is_ok())
        .unwrap()
}

fn fields_of(e: &AppError) -> Vec<&str> {
    e.errors.iter().map(|f| f.field.as_str()).collect()
}

fn urls(base: &str) -> ReturnUrls {
    ReturnUrls {
        ok: format!("{base}/ok"),
        cancel: format!("{base}/annullato"),
        error: format!("{base}/errore"),
    }
}

#[tokio::test]
async fn positions_loaded_for_later_payment() {
    for backend in backends() {
        let w = world(&fresh_database_url(backend).await).await;
        let ctx = w.ctx(&w.app_key);
        let load = |answers, iupd: Option<&str>| LoadPosition {
            answers,
            due_date: None,
            iupd: iupd.map(str::to_string),
        };

        // Made, with its notice and the link of its PDF; the same
        // idempotency key makes no second one.
        let a = dp::load_position(
            &ctx,
            ENTE,
            "k1",
            &load(ticket(2500, "ABCDE1234567890"), None),
        )
        .await
        .unwrap();
        assert_eq!(a.amount, Cents(2500), "{backend:?}");
        assert_eq!(a.notice_number.len(), 18);
        assert!(a.notice_number.ends_with(&a.iuv));
        assert!(a.iupd.starts_with(dp::IUPD_PREFIX), "{}", a.iupd);
        assert_eq!(a.description, "Ticket ricetta ABCDE1234567890");
        assert_eq!(
            a.notice_pdf_url,
            format!(
                "https://incasso.test/api/v1/enti/{ENTE}/digitpos/notices/{}/pdf",
                a.notice_number
            )
        );
        let stored = w.store.get_position(ENTE, &a.iupd).await.unwrap();
        let quotas = &stored.position.options[0].transfers[0].quotas;
        assert_eq!(quotas.len(), 1, "the service's accertamento quota");
        assert_eq!(quotas[0].amount, Cents(2500));
        let again = dp::load_position(
            &ctx,
            ENTE,
            "k1",
            &load(ticket(2500, "ABCDE1234567890"), None),
        )
        .await
        .unwrap();
        assert_eq!(again, a);
        let pdf = dp::notice_pdf(&ctx, ENTE, &a.notice_number, Default::default())
            .await
            .unwrap();
        assert!(pdf.starts_with(b"%PDF"));

        // The caller's own key: the same content again is the same
        // position, other content is refused.
        let own = dp::load_position(
            &ctx,
            ENTE,
            "k2",
            &load(ticket(900, "ABCDE1234567891"), Some("PRATICA-7")),
        )
        .await
        .unwrap();
        assert_eq!(own.iupd, "PRATICA-7");
        let same = dp::load_position(
            &ctx,
            ENTE,
            "k3",
            &load(ticket(900, "ABCDE1234567891"), Some("PRATICA-7")),
        )
        .await
        .unwrap();
        assert_eq!(same.notice_number, own.notice_number);
        let e = dp::load_position(
            &ctx,
            ENTE,
            "k4",
            &load(ticket(901, "ABCDE1234567891"), Some("PRATICA-7")),
        )
        .await
        .unwrap_err();
        assert_eq!((e.kind, e.code), (Kind::Conflict, "IUPD_ALREADY_USED"));

        // A due date of the caller's; none in the past.
        let mut with_due = load(ticket(900, "ABCDE1234567892"), None);
        with_due.due_date = Some(chrono::NaiveDate::from_ymd_opt(2099, 1, 31).unwrap());
        let d = dp::load_position(&ctx, ENTE, "k5", &with_due)
            .await
            .unwrap();
        assert_eq!(
            incasso_core::time::to_rome(d.due_date).date().to_string(),
            "2099-01-31"
        );
        with_due.due_date = Some(chrono::NaiveDate::from_ymd_opt(2020, 1, 31).unwrap());
        let e = dp::load_position(&ctx, ENTE, "k6", &with_due)
            .await
            .unwrap_err();
        assert_eq!((e.code, fields_of(&e)), ("DUE_DATE_PAST", vec!["dueDate"]));

        // A service without a form takes any amount; a fixed one only its own.
        let mut multa = ticket(12_345, "");
        multa.service_code = "MULTA".into();
        multa.fields.clear();
        let m = dp::load_position(&ctx, ENTE, "k7", &load(multa, None))
            .await
            .unwrap();
        assert_eq!(m.amount, Cents(12_345));
        let mut cert = ticket(1700, "");
        cert.service_code = "CERT".into();
        let e = dp::load_position(&ctx, ENTE, "k8", &load(cert.clone(), None))
            .await
            .unwrap_err();
        assert_eq!((e.kind, e.code), (Kind::Unprocessable, "AMOUNT_MISMATCH"));
        assert_eq!(fields_of(&e), vec!["amountCents"]);
        cert.amount_cents = None;
        let c = dp::load_position(&ctx, ENTE, "k9", &load(cert, None))
            .await
            .unwrap();
        assert_eq!(c.amount, Cents(1600));

        // Every wrong field named as the API names it; nothing written.
        let mut bad = ticket(999_999, "short");
        bad.debtor.fiscal_code = "RSSMRA85T10A562X".into();
        let e = dp::load_position(&ctx, ENTE, "bad", &load(bad, None))
            .await
            .unwrap_err();
        assert_eq!(e.kind, Kind::Invalid);
        let mut named = fields_of(&e);
        named.sort();
        assert_eq!(
            named,
            vec!["amountCents", "debtor.fiscalCode", "fields.ricetta"],
            "{e:?}"
        );
        let mut unknown = ticket(100, "ABCDE1234567890");
        unknown.service_code = "NOPE".into();
        let e = dp::load_position(&ctx, ENTE, "bad2", &load(unknown, None))
            .await
            .unwrap_err();
        assert_eq!((e.kind, e.code), (Kind::Unprocessable, "SERVICE_NOT_FOUND"));
        assert_eq!(fields_of(&e), vec!["serviceCode"]);
        for key in ["bad", "bad2", "k8", "k6"] {
            let probe =
                dp::load_position(&ctx, ENTE, key, &load(ticket(100, "ABCDE1234567899"), None))
                    .await
                    .unwrap();
            // The key's derived iupd was free: its first request wrote nothing.
            assert_eq!(probe.amount, Cents(100), "{key}");
        }

        // Another Ente's key is refused before anything.
        let e = dp::load_position(
            &w.ctx(&w.other_key),
            ENTE,
            "x",
            &load(ticket(100, "ABCDE1234567890"), None),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind, Kind::Forbidden);
    }
}

#[tokio::test]
async fn return_hosts_and_the_urls_they_admit() {
    for backend in backends() {
        let w = world(&fresh_database_url(backend).await).await;
        let app = w.ctx(&w.app_key);
        let admin = w.ctx(&w.admin_key);

        let e = dp::add_return_host(&app, ENTE, "pay.example.it")
            .await
            .unwrap_err();
        assert_eq!((e.kind, e.code), (Kind::Forbidden, "FORBIDDEN_SCOPE"));
        let e = dp::add_return_host(&w.ctx(&w.other_key), ENTE, "pay.example.it")
            .await
            .unwrap_err();
        assert_eq!(e.kind, Kind::Forbidden);
        let e = dp::add_return_host(&admin, ENTE, "https://pay.example.it/")
            .await
            .unwrap_err();
        assert_eq!(e.code, "BAD_HOST");
        assert_eq!(
            dp::add_return_host(&admin, ENTE, "Pay.Example.IT")
                .await
                .unwrap(),
            ("pay.example.it".to_string(), true)
        );
        assert_eq!(
            dp::add_return_host(&admin, ENTE, "pay.example.it")
                .await
                .unwrap(),
            ("pay.example.it".to_string(), false)
        );
        dp::add_return_host(&admin, ENTE, "localhost")
            .await
            .unwrap();
        let hosts: Vec<String> = dp::return_hosts(&app, ENTE)
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.host)
            .collect();
        assert_eq!(hosts, vec!["localhost", "pay.example.it"], "{backend:?}");
        assert!(dp::return_hosts(&w.ctx(&w.other_key), ENTE).await.is_err());

        let a = dp::load_position(
            &app,
            ENTE,
            "p",
            &LoadPosition {
                answers: ticket(700, "ABCDE1234567890"),
                due_date: None,
                iupd: None,
            },
        )
        .await
        .unwrap();
        let pay = |return_urls| PayPosition {
            notice_number: Some(a.notice_number.clone()),
            iupd: None,
            amount_cents: None,
            return_urls,
            email_notice: None,
        };
        let e = dp::pay_position(&app, ENTE, &pay(urls("https://evil.example.org/back")))
            .await
            .unwrap_err();
        assert_eq!(
            (e.kind, e.code),
            (Kind::Unprocessable, "RETURN_HOST_NOT_REGISTERED")
        );
        assert!(e.detail.contains("evil.example.org"), "{}", e.detail);
        assert_eq!(
            fields_of(&e),
            vec!["returnUrls.ok", "returnUrls.cancel", "returnUrls.error"]
        );
        let e = dp::pay_position(&app, ENTE, &pay(urls("http://pay.example.it/back")))
            .await
            .unwrap_err();
        assert_eq!((e.kind, e.code), (Kind::Invalid, "RETURN_URL_NOT_HTTPS"));
        let mut mixed = urls("https://pay.example.it");
        mixed.error = "https://pay.example.it@evil.example.org/".into();
        let e = dp::pay_position(&app, ENTE, &pay(mixed)).await.unwrap_err();
        assert_eq!(
            (e.code, fields_of(&e)),
            ("BAD_RETURN_URL", vec!["returnUrls.error"])
        );

        // Registered: the refusal is now the station's (no Node here).
        let e = dp::pay_position(&app, ENTE, &pay(urls("http://localhost:9/back")))
            .await
            .unwrap_err();
        assert_eq!(e.code, "NO_CONNECTION", "{e:?}");

        dp::remove_return_host(&admin, ENTE, "pay.example.it")
            .await
            .unwrap();
        let e = dp::remove_return_host(&admin, ENTE, "pay.example.it")
            .await
            .unwrap_err();
        assert_eq!(e.code, "RETURN_HOST_NOT_FOUND");
        let e = dp::pay_position(&app, ENTE, &pay(urls("https://pay.example.it/back")))
            .await
            .unwrap_err();
        assert_eq!(e.code, "RETURN_HOST_NOT_REGISTERED");
    }
}

#[tokio::test]
async fn paying_what_cannot_be_paid_is_refused_with_its_code() {
    for backend in backends() {
        let w = world(&fresh_database_url(backend).await).await;
        let app = w.ctx(&w.app_key);
        dp::add_return_host(&w.ctx(&w.admin_key), ENTE, "localhost")
            .await
            .unwrap();
        let a = dp::load_position(
            &app,
            ENTE,
            "p",
            &LoadPosition {
                answers: ticket(700, "ABCDE1234567890"),
                due_date: None,
                iupd: Some("POS-1".into()),
            },
        )
        .await
        .unwrap();
        let pay = |nav: Option<&str>, iupd: Option<&str>, amount: Option<i64>| PayPosition {
            notice_number: nav.map(str::to_string),
            iupd: iupd.map(str::to_string),
            amount_cents: amount,
            return_urls: urls("http://localhost:8080"),
            email_notice: None,
        };
        let code = |e: AppError| (e.kind, e.code);
        assert_eq!(
            code(
                dp::pay_position(&app, ENTE, &pay(None, None, None))
                    .await
                    .unwrap_err()
            ),
            (Kind::Invalid, "NOTICE_OR_IUPD")
        );
        assert_eq!(
            code(
                dp::pay_position(&app, ENTE, &pay(Some("12"), None, None))
                    .await
                    .unwrap_err()
            ),
            (Kind::Invalid, "BAD_NOTICE_NUMBER")
        );
        assert_eq!(
            code(
                dp::pay_position(&app, ENTE, &pay(None, Some("NOPE"), None))
                    .await
                    .unwrap_err()
            ),
            (Kind::NotFound, "POSITION_NOT_FOUND")
        );
        assert_eq!(
            code(
                dp::pay_position(&app, ENTE, &pay(Some(&a.notice_number), None, Some(701)))
                    .await
                    .unwrap_err()
            ),
            (Kind::Unprocessable, "AMOUNT_MISMATCH")
        );
        assert_eq!(
            code(
                dp::pay_position(&app, ENTE, &pay(None, Some("POS-1"), Some(701)))
                    .await
                    .unwrap_err()
            ),
            (Kind::Unprocessable, "AMOUNT_MISMATCH")
        );
        w.store
            .invalidate_position(ENTE, "POS-1", Utc::now())
            .await
            .unwrap();
        assert_eq!(
            code(
                dp::pay_position(&app, ENTE, &pay(Some(&a.notice_number), None, None))
                    .await
                    .unwrap_err()
            ),
            (Kind::Conflict, "NOTICE_CANCELLED")
        );
        assert_eq!(
            code(
                dp::pay_position(&app, ENTE, &pay(None, Some("POS-1"), None))
                    .await
                    .unwrap_err()
            ),
            (Kind::Conflict, "NOTICE_CANCELLED")
        );

        // No receipt before payment; an unknown notice is told apart.
        assert_eq!(
            code(dp::receipt(&app, ENTE, &a.notice_number).await.unwrap_err()),
            (Kind::NotFound, "RECEIPT_NOT_AVAILABLE")
        );
        assert_eq!(
            code(
                dp::receipt_pdf(&app, ENTE, &a.notice_number)
                    .await
                    .unwrap_err()
            ),
            (Kind::NotFound, "RECEIPT_NOT_AVAILABLE")
        );
        assert_eq!(
            code(dp::receipt(&app, ENTE, &unknown_nav()).await.unwrap_err()),
            (Kind::NotFound, "NOTICE_NOT_FOUND")
        );
        assert_eq!(
            code(
                dp::notice_pdf(&app, ENTE, &unknown_nav(), Default::default())
                    .await
                    .unwrap_err()
            ),
            (Kind::NotFound, "NOTICE_NOT_FOUND")
        );

        // A spontaneous payment of an Ente whose station reaches no Node
        // is refused before any position is made.
        let req = SpontaneousPayment {
            answers: ticket(700, "ABCDE1234567890"),
            return_urls: urls("http://localhost:8080"),
            email_notice: None,
        };
        let e = dp::pay_spontaneous(&app, ENTE, "s1", &req)
            .await
            .unwrap_err();
        assert_eq!(code(e), (Kind::Conflict, "ENTE_NOT_SERVED"));
        let positions = w
            .store
            .list_positions(ENTE, &Default::default())
            .await
            .unwrap();
        assert!(
            positions
                .items
                .iter()
                .all(|p| !p.position.iupd.starts_with("PS-")),
            "{backend:?}: no spontaneous position left behind"
        );
    }
}

#[tokio::test]
async fn idempotency_keys_replay_refuse_and_recover() {
    for backend in backends() {
        let w = world(&fresh_database_url(backend).await).await;
        let ctx = w.ctx(&w.app_key);
        let fp = dp::fingerprint("POST", "positions", br#"{"a":1}"#);
        let other_fp = dp::fingerprint("POST", "positions", br#"{"a":2}"#);

        let Claimed::Run(ticket) = dp::claim(&ctx, ENTE, "key-1", &fp).await.unwrap() else {
            panic!("first claim runs");
        };
        let e = dp::claim(&ctx, ENTE, "key-1", &fp).await.unwrap_err();
        assert_eq!(
            (e.kind, e.code),
            (Kind::Conflict, "IDEMPOTENCY_KEY_IN_PROGRESS")
        );
        let e = dp::claim(&ctx, ENTE, "key-1", &other_fp).await.unwrap_err();
        assert_eq!((e.kind, e.code), (Kind::Conflict, "IDEMPOTENCY_KEY_REUSED"));
        // The key is the caller's: another key of the Ente has its own.
        let admin = w.ctx(&w.admin_key);
        assert!(matches!(
            dp::claim(&admin, ENTE, "key-1", &other_fp).await.unwrap(),
            Claimed::Run(_)
        ));
        // Another Ente's key never reaches this Ente's keys.
        assert_eq!(
            dp::claim(&w.ctx(&w.other_key), ENTE, "key-1", &fp)
                .await
                .unwrap_err()
                .kind,
            Kind::Forbidden
        );

        dp::complete(&ctx, &ticket, 201, r#"{"done":true}"#)
            .await
            .unwrap();
        assert_eq!(
            dp::claim(&ctx, ENTE, "key-1", &fp).await.unwrap(),
            Claimed::Replay {
                status: 201,
                body: r#"{"done":true}"#.into()
            },
            "{backend:?}"
        );
        assert_eq!(
            dp::claim(&ctx, ENTE, "key-1", &other_fp)
                .await
                .unwrap_err()
                .code,
            "IDEMPOTENCY_KEY_REUSED"
        );

        // A released key runs again; a claim whose process died is taken
        // over once its hold has passed.
        let Claimed::Run(t2) = dp::claim(&ctx, ENTE, "key-2", &fp).await.unwrap() else {
            panic!()
        };
        dp::release(&ctx, &t2).await;
        assert!(matches!(
            dp::claim(&ctx, ENTE, "key-2", &fp).await.unwrap(),
            Claimed::Run(_)
        ));
        let mut later = App::new(w.store.clone(), Settings::new("https://incasso.test"));
        later.clock = Clock::Fixed(Utc::now() + dp::CLAIM_HOLDS_FOR + chrono::Duration::seconds(5));
        let later = later.ctx(w.app_key.clone());
        assert!(matches!(
            dp::claim(&later, ENTE, "key-2", &fp).await.unwrap(),
            Claimed::Run(_)
        ));
        assert_eq!(
            dp::claim(&later, ENTE, "key-2", &fp)
                .await
                .unwrap_err()
                .code,
            "IDEMPOTENCY_KEY_IN_PROGRESS"
        );

        // Kept a day, then forgotten.
        let purged = dp::purge_keys(
            &later.app,
            Utc::now() + dp::KEYS_KEPT_FOR + chrono::Duration::hours(1),
        )
        .await
        .unwrap();
        assert!(purged >= 3, "{purged}");
        assert!(matches!(
            dp::claim(&ctx, ENTE, "key-1", &other_fp).await.unwrap(),
            Claimed::Run(_)
        ));
    }
}

/// `serve --demo` gives the first Ente a DigitPOS key with a registered
/// return host, in demo.json; seeding again keeps the same key.
#[tokio::test]
async fn the_demo_seeds_a_digitpos_key_and_its_return_host() {
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        let store = Store::connect(&url).await.unwrap();
        let app = App::new(store.clone(), Settings::new("http://127.0.0.1:8080"));
        let dir = std::env::temp_dir().join(format!(
            "incasso-digitpos-demo-{}-{}",
            std::process::id(),
            Utc::now().timestamp_micros()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let read = |path: &std::path::Path| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
        };
        let path = incasso_app::demo::seed(&app.system("test"), &dir, "http://127.0.0.1:9")
            .await
            .unwrap();
        let demo = read(&path);
        let first = &demo["enti"][0];
        let key = first["digitpos_api_key"].as_str().unwrap().to_string();
        assert_eq!(first["digitpos_return_host"], "localhost", "{backend:?}");
        assert!(demo["enti"][1].get("digitpos_api_key").is_none());
        let ente = first["fiscal_code"].as_str().unwrap();
        let caller = incasso_app::keys::authenticate(&store, &key).await.unwrap();
        let hosts = dp::return_hosts(&app.ctx(caller), ente).await.unwrap();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].host, "localhost");
        let again = read(
            &incasso_app::demo::seed(&app.system("test"), &dir, "http://127.0.0.1:9")
                .await
                .unwrap(),
        );
        assert_eq!(
            again["enti"][0]["digitpos_api_key"].as_str(),
            Some(key.as_str())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
