//! The Sportello Digitale's use cases (issue 18) on both databases: a
//! clerk issues a position at a desk from a service's form (one position,
//! the service's accertamento quota, an IUV of the Ente's station, placed
//! in the service's office, recorded at the desk by the clerk; issuing
//! twice with the same token makes one), finds a person's open positions
//! by fiscal code, sees the day's totals (issued, and collected once a
//! receipt arrives), closes the day (twice: the same closing; a receipt
//! after the closing does not change it; nothing more is issued that day),
//! exports it; another Ente's clerk, a clerk of another office and an
//! accountant are refused.

use chrono::{DateTime, Duration, Utc};
use incasso_app::{App, AppError, Caller, Clock, Ctx, Kind, OperatorIdentity, Settings, desk};
use incasso_core::Cents;
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::access::{Rights, Role};
use incasso_core::catalogue::Service;
use incasso_core::ente::{Ente, Office, StationLink};
use incasso_core::form::{Amount, AmountChoice, Answers, Field, FieldKind, FormDef};
use incasso_core::position::PositionStatus;
use incasso_store::{ReceiptRecord, Store};
use incasso_testkit::{backends, fresh_database_url};

const ENTE: &str = "80000130585";
const OTHER: &str = "97000000022";
const DEBTOR: &str = "RSSMRA85T10A562S";
const SERVICE: &str = "DIRITTI";

async fn ente(store: &Store, fc: &str, segregation: u8, now: DateTime<Utc>) {
    store
        .create_ente(
            &Ente {
                fiscal_code: fc.into(),
                name: format!("Ente {fc}"),
                ipa_code: None,
                iban: Some("IT65B0200805364000104567891".into()),
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
                station_id: format!("ST_{segregation:02}"),
                segregation_code: segregation,
            },
            now,
        )
        .await
        .unwrap();
    for (code, name) in [("ANAG", "Servizi demografici"), ("TRIB", "Tributi")] {
        store
            .put_office(
                fc,
                &Office {
                    code: code.into(),
                    name: name.into(),
                    email: None,
                },
            )
            .await
            .unwrap();
    }
    store
        .put_accertamento(
            fc,
            &Accertamento {
                year: 2026,
                code: "ACC-ANAG".into(),
                description: "Diritti di segreteria 2026".into(),
                chapter: "3010".into(),
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
                code: SERVICE.into(),
                name: "Diritti di segreteria".into(),
                office_code: Some("ANAG".into()),
                taxonomy_code: "9/0104103SP/".into(),
                default_accertamento: Some(AccertamentoRef {
                    year: 2026,
                    code: "ACC-ANAG".into(),
                }),
                iban: None,
                fixed_amount: None,
                spontaneous: true,
                pagopa_service_id: None,
                active: true,
            },
        )
        .await
        .unwrap();
    let def = FormDef {
        fields: vec![Field {
            name: "pratica".into(),
            kind: FieldKind::Text,
            label: "Numero della pratica".into(),
            help: String::new(),
            required: true,
            pattern: Some("[A-Z]{2}[0-9]{4}".into()),
            choices: Vec::new(),
            min_length: None,
            max_length: None,
        }],
        amount: Amount::Table(vec![
            AmountChoice {
                label: "Ordinario".into(),
                cents: Cents(1600),
            },
            AmountChoice {
                label: "Urgente".into(),
                cents: Cents(3200),
            },
        ]),
        causale: "Diritti di segreteria - pratica {pratica}".into(),
    };
    store
        .put_service_form(
            fc,
            SERVICE,
            &serde_json::to_string(&def).unwrap(),
            None,
            "test",
            now,
        )
        .await
        .unwrap();
}

fn operator(username: &str, role: Role, ente: &str, offices: &[&str]) -> Caller {
    Caller::Operator(Box::new(OperatorIdentity {
        id: 1,
        username: username.into(),
        full_name: format!("Persona {username}"),
        rights: Rights {
            role,
            ente: Some(ente.into()),
            grants: vec![],
            offices: offices.iter().map(|o| o.to_string()).collect(),
        },
    }))
}

fn app(store: &Store, now: DateTime<Utc>) -> App {
    let mut app = App::new(store.clone(), Settings::new("http://127.0.0.1:1"));
    app.clock = Clock::Fixed(now);
    app
}

fn answers(fc: &str, pratica: &str, amount: &str) -> Answers {
    [
        ("debtor_fiscal_code", fc),
        ("debtor_name", "Mario Rossi"),
        ("email", "mario.rossi@example.it"),
        ("pratica", pratica),
        ("amount", amount),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn token(n: u8) -> String {
    format!("{:032x}", 0xabc0_0000u64 + u64::from(n))
}

async fn pay(
    store: &Store,
    receipt_id: &str,
    nav: &str,
    iuv: &str,
    amount: i64,
    at: DateTime<Utc>,
) {
    store
        .record_receipt(
            &ReceiptRecord {
                ente: ENTE.into(),
                receipt_id: receipt_id.into(),
                notice_number: nav.into(),
                iuv: iuv.into(),
                owner_ente: ENTE.into(),
                outcome: "OK".into(),
                amount,
                fee: None,
                psp_id: "PSPEITMM000".into(),
                psp_name: "PSP di prova".into(),
                channel_id: "PSPEITMM000_01".into(),
                payment_method: None,
                payment_date_time: Some(at),
                application_date: None,
                transfer_date: None,
                station_id: "ST_01".into(),
                primitive: "paSendRTV2".into(),
                stand_in: false,
                transfers_json: "[]".into(),
                raw_xml: "<receipt/>".into(),
                debtor: None,
            },
            at,
        )
        .await
        .unwrap();
}

fn refused(r: Result<impl std::fmt::Debug, AppError>, kinds: &[Kind], what: &str) {
    match r {
        Ok(v) => panic!("{what}: accepted ({v:?})"),
        Err(e) => assert!(kinds.contains(&e.kind), "{what}: {e:?}"),
    }
}

/// 10:00 in Rome today, so that the day's span is well inside one day.
fn morning() -> DateTime<Utc> {
    let today = incasso_core::time::to_rome(Utc::now()).date();
    incasso_core::time::from_rome(today.and_hms_opt(10, 0, 0).unwrap())
}

#[tokio::test]
async fn a_clerk_issues_finds_totals_and_closes_the_day() {
    for backend in backends() {
        let store = Store::connect(&fresh_database_url(backend).await)
            .await
            .unwrap();
        let now = morning();
        ente(&store, ENTE, 1, now).await;
        ente(&store, OTHER, 2, now).await;
        let app = app(&store, now);
        let admin = app.ctx(operator("admin", Role::EnteAdmin, ENTE, &[]));
        let clerk = app.ctx(operator("lucia", Role::CounterClerk, ENTE, &["ANAG"]));

        // Desks: made by the administrator, refused to the clerk.
        refused(
            desk::create(&clerk, ENTE, "SPORTELLO_09", "Sportello 9", None).await,
            &[Kind::Forbidden],
            "a clerk makes a desk",
        );
        let d = desk::create(&admin, ENTE, "SPORTELLO_01", "Anagrafe", Some("ANAG"))
            .await
            .unwrap();
        assert_eq!(d.office_name.as_deref(), Some("Servizi demografici"));
        refused(
            desk::create(&admin, ENTE, "SPORTELLO_01", "Doppio", None).await,
            &[Kind::Conflict],
            "a desk code twice",
        );
        refused(
            desk::create(&admin, ENTE, "bad code", "x", Some("NOPE")).await,
            &[Kind::Invalid],
            "a bad desk",
        );
        desk::create(&admin, ENTE, "SPORTELLO_TRIB", "Tributi", Some("TRIB"))
            .await
            .unwrap();
        let desks = desk::list(&clerk, ENTE).await.unwrap();
        assert_eq!(
            desks.iter().map(|d| d.code.as_str()).collect::<Vec<_>>(),
            vec!["SPORTELLO_01"],
            "{backend:?}: the clerk of ANAG sees the desk of ANAG only"
        );
        refused(
            desk::get(&clerk, ENTE, "SPORTELLO_TRIB").await,
            &[Kind::NotFound],
            "another office's desk",
        );
        let services = desk::services(&clerk, ENTE).await.unwrap();
        assert_eq!(services.len(), 1);
        assert_eq!(services[0].code, SERVICE);

        // A wrong form: every wrong field named, nothing made.
        let bad = desk::issue(
            &clerk,
            ENTE,
            "SPORTELLO_01",
            SERVICE,
            &token(0),
            &answers("RSSMRA85T10A562X", "12", "7"),
        )
        .await
        .unwrap_err();
        assert_eq!(bad.kind, Kind::Invalid, "{bad:?}");
        let fields: Vec<&str> = bad.errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"debtor_fiscal_code"), "{fields:?}");
        assert!(fields.contains(&"pratica"), "{fields:?}");
        assert!(fields.contains(&"amount"), "{fields:?}");
        assert!(
            desk::day(&clerk, ENTE, "SPORTELLO_01", now.date_naive())
                .await
                .unwrap()
                .issued
                .is_empty()
        );

        // Issued: one position, its quota, its IUV, its desk and clerk.
        let form = answers(DEBTOR, "AB1234", "1");
        let i = desk::issue(&clerk, ENTE, "SPORTELLO_01", SERVICE, &token(1), &form)
            .await
            .unwrap();
        assert!(i.iupd.starts_with(desk::IUPD_PREFIX), "{}", i.iupd);
        assert_eq!(i.amount, Cents(3200));
        assert_eq!(i.debtor_fiscal_code, DEBTOR);
        assert_eq!(i.desk.code, "SPORTELLO_01");
        assert_eq!(i.operator, "lucia");
        assert!(i.payable);
        assert_eq!(i.status, PositionStatus::Valid, "{backend:?}");
        assert_eq!(i.causale, "Diritti di segreteria - pratica AB1234");
        assert_eq!(i.quotas.len(), 1);
        assert_eq!(i.quotas[0].accertamento, "2026/ACC-ANAG");
        assert_eq!(i.quotas[0].amount, Cents(3200));
        assert_eq!(i.quotas[0].description, "Diritti di segreteria 2026");
        assert_eq!(i.notice_number.len(), 18);
        assert_eq!(&i.notice_number[1..], i.iuv);
        assert!(i.iuv.starts_with("01"), "segregation code 01: {}", i.iuv);
        let stored = store.get_position(ENTE, &i.iupd).await.unwrap();
        assert_eq!(stored.placement.service.as_deref(), Some(SERVICE));
        assert_eq!(stored.placement.office.as_deref(), Some("ANAG"));
        let due = stored.position.options[0].due_date;
        assert!(due > now + Duration::days(29), "due {due}");

        // The same token again (a double click): the same position.
        let again = desk::issue(&clerk, ENTE, "SPORTELLO_01", SERVICE, &token(1), &form)
            .await
            .unwrap();
        assert_eq!(again.iupd, i.iupd);
        assert_eq!(again.notice_number, i.notice_number);
        // ...but not for another person.
        refused(
            desk::issue(
                &clerk,
                ENTE,
                "SPORTELLO_01",
                SERVICE,
                &token(1),
                &answers("BNCLCU80A41H501X", "AB1234", "1"),
            )
            .await,
            &[Kind::Conflict, Kind::Invalid],
            "a used token for another person",
        );
        let second = desk::issue(
            &clerk,
            ENTE,
            "SPORTELLO_01",
            SERVICE,
            &token(2),
            &answers(DEBTOR, "CD5678", "0"),
        )
        .await
        .unwrap();
        assert_eq!(second.amount, Cents(1600));

        // The PDFs: the notice and the Ente's copy.
        let notice = desk::notice_pdf(&clerk, ENTE, &i.iupd).await.unwrap();
        assert!(notice.starts_with(b"%PDF-"));
        let copy = desk::avviso_pa(&clerk, ENTE, &i.iupd).await.unwrap();
        assert!(copy.starts_with(b"%PDF-"));
        assert_ne!(notice, copy);

        // Found by fiscal code (any case), both open.
        let found = desk::find(&clerk, ENTE, &DEBTOR.to_lowercase())
            .await
            .unwrap();
        let mut iupds: Vec<&str> = found.iter().map(|r| r.iupd.as_str()).collect();
        iupds.sort();
        let mut expected = vec![i.iupd.as_str(), second.iupd.as_str()];
        expected.sort();
        assert_eq!(iupds, expected, "{backend:?}");
        refused(
            desk::find(&clerk, ENTE, "NOTAFISCALCODE").await,
            &[Kind::Invalid],
            "a bad fiscal code",
        );
        let reprint = desk::reprint(&clerk, ENTE, &second.iupd).await.unwrap();
        assert!(reprint.starts_with(b"%PDF-"));

        // The day: two issued, 48,00; then one paid.
        let day = now.date_naive();
        let today = incasso_core::time::to_rome(now).date();
        let r = desk::day(&clerk, ENTE, "SPORTELLO_01", today)
            .await
            .unwrap();
        assert_eq!(r.issued.len(), 2, "{backend:?}");
        assert_eq!(r.issued_total, Cents(4800));
        assert_eq!(r.collected_total, Cents(0));
        assert!(r.closed.is_none());
        let _ = day;
        pay(
            &store,
            "RT-1",
            &i.notice_number,
            &i.iuv,
            3200,
            now + Duration::minutes(5),
        )
        .await;
        let r = desk::day(&clerk, ENTE, "SPORTELLO_01", today)
            .await
            .unwrap();
        assert_eq!(r.collected.len(), 1, "{backend:?}");
        assert_eq!(r.collected_total, Cents(3200));
        assert_eq!(r.collected[0].receipt_id, "RT-1");
        assert!(
            r.issued
                .iter()
                .any(|l| l.iupd == i.iupd && l.state == "Pagato"),
            "{:?}",
            r.issued
        );
        let paid = desk::issued(&clerk, ENTE, &i.iupd).await.unwrap();
        assert!(!paid.payable);
        // Open positions no longer hold the paid one.
        let found = desk::find(&clerk, ENTE, DEBTOR).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].iupd, second.iupd);

        // The export holds every line and the totals.
        let sheet = desk::day_sheet(&r);
        let csv = String::from_utf8(sheet.to_csv()).unwrap();
        assert!(csv.contains(&i.notice_number), "{csv}");
        assert!(csv.contains("Totale emesso"), "{csv}");
        assert!(csv.contains("48,00"), "{csv}");
        assert!(csv.contains("RT-1"), "{csv}");
        assert!(sheet.to_xlsx().unwrap().starts_with(b"PK"));

        // Closed: frozen; closing again answers the same closing; a
        // receipt after it changes nothing; nothing more is issued today.
        let closed = desk::close_day(&clerk, ENTE, "SPORTELLO_01", today)
            .await
            .unwrap();
        let closing = closed.closed.clone().expect("closed");
        assert_eq!(closing.by, "lucia");
        assert_eq!(closed.issued_total, Cents(4800));
        assert_eq!(closed.collected_total, Cents(3200));
        pay(
            &store,
            "RT-2",
            &second.notice_number,
            &second.iuv,
            1600,
            now + Duration::minutes(10),
        )
        .await;
        let again = desk::close_day(&admin, ENTE, "SPORTELLO_01", today)
            .await
            .unwrap();
        assert_eq!(again, closed, "{backend:?}: closing twice");
        let read = desk::day(&clerk, ENTE, "SPORTELLO_01", today)
            .await
            .unwrap();
        assert_eq!(read, closed, "{backend:?}: a closed day does not change");
        let e = desk::issue(
            &clerk,
            ENTE,
            "SPORTELLO_01",
            SERVICE,
            &token(3),
            &answers(DEBTOR, "EF9012", "0"),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "DAY_CLOSED", "{e:?}");
        refused(
            desk::close_day(&clerk, ENTE, "SPORTELLO_01", today + chrono::Days::new(1)).await,
            &[Kind::Invalid],
            "closing tomorrow",
        );

        // Another Ente's clerk: nothing of A's, not even by its names.
        let other = app.ctx(operator("b", Role::CounterClerk, OTHER, &["ANAG"]));
        refused(
            desk::list(&other, ENTE).await,
            &[Kind::Forbidden],
            "B lists A's desks",
        );
        refused(
            desk::get(&other, OTHER, "SPORTELLO_01").await,
            &[Kind::NotFound],
            "A's desk through B",
        );
        refused(
            desk::issued(&other, OTHER, &i.iupd).await,
            &[Kind::NotFound],
            "A's position through B",
        );
        refused(
            desk::issued(&other, ENTE, &i.iupd).await,
            &[Kind::Forbidden],
            "A's position as B",
        );
        refused(
            desk::avviso_pa(&other, ENTE, &i.iupd).await,
            &[Kind::Forbidden],
            "A's copy as B",
        );
        refused(
            desk::issue(&other, ENTE, "SPORTELLO_01", SERVICE, &token(4), &form).await,
            &[Kind::Forbidden],
            "B issues at A's desk",
        );
        refused(
            desk::day(&other, ENTE, "SPORTELLO_01", today).await,
            &[Kind::Forbidden],
            "A's day as B",
        );
        refused(
            desk::close_day(&other, ENTE, "SPORTELLO_01", today).await,
            &[Kind::Forbidden],
            "B closes A's day",
        );
        assert!(
            desk::find(&other, OTHER, DEBTOR).await.unwrap().is_empty(),
            "{backend:?}: B finds none of A's positions"
        );
        refused(
            desk::find(&other, ENTE, DEBTOR).await,
            &[Kind::Forbidden],
            "B searches A",
        );

        // A clerk of another office of A, and A's accountant.
        let trib = app.ctx(operator("t", Role::CounterClerk, ENTE, &["TRIB"]));
        refused(
            desk::issued(&trib, ENTE, &i.iupd).await,
            &[Kind::NotFound],
            "another office's position",
        );
        assert!(desk::services(&trib, ENTE).await.unwrap().is_empty());
        let accountant = app.ctx(operator("r", Role::Accountant, ENTE, &[]));
        refused(
            desk::issue(&accountant, ENTE, "SPORTELLO_01", SERVICE, &token(5), &form).await,
            &[Kind::Forbidden],
            "an accountant issues",
        );
        assert_eq!(
            desk::day(&accountant, ENTE, "SPORTELLO_01", today)
                .await
                .unwrap()
                .issued_total,
            Cents(4800)
        );
    }
}

#[tokio::test]
async fn the_notice_is_mailed_once_however_often_it_is_asked() {
    for backend in backends() {
        let store = Store::connect(&fresh_database_url(backend).await)
            .await
            .unwrap();
        let now = morning();
        ente(&store, ENTE, 1, now).await;
        let mut settings = Settings::new("http://127.0.0.1:1");
        settings.smtp_url = Some("smtp://127.0.0.1:1".into());
        let mut app = App::new(store.clone(), settings);
        app.clock = Clock::Fixed(now);
        let admin: Ctx = app.ctx(operator("admin", Role::EnteAdmin, ENTE, &[]));
        desk::create(&admin, ENTE, "S1", "Sportello", None)
            .await
            .unwrap();
        let i = desk::issue(
            &admin,
            ENTE,
            "S1",
            SERVICE,
            &token(7),
            &answers(DEBTOR, "AB1234", "0"),
        )
        .await
        .unwrap();
        let first = desk::email_notice(&admin, ENTE, &i.iupd, "mario.rossi@example.it")
            .await
            .unwrap();
        assert_eq!(first, desk::Mailed::Queued);
        let second = desk::email_notice(&admin, ENTE, &i.iupd, "Mario.Rossi@example.it")
            .await
            .unwrap();
        assert_eq!(second, desk::Mailed::AlreadyQueued, "{backend:?}");
        refused(
            desk::email_notice(&admin, ENTE, &i.iupd, "not an address").await,
            &[Kind::Invalid],
            "a bad address",
        );
        let queued = store.list_mail(ENTE, 10).await.unwrap();
        assert_eq!(queued.len(), 1, "{backend:?}: {queued:?}");
        assert_eq!(queued[0].kind, incasso_app::mail::NOTICE);
        assert_eq!(queued[0].reference, i.notice_number);
    }
}
