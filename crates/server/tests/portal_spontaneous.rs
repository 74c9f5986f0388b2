//! Spontaneous payments on the citizen portal (issue 17), over HTTP on
//! both databases, with the simulated pagoPA Checkout: a service's form
//! defined as data is checked on the server (missing, malformed and
//! out-of-range answers and amounts out of bounds are named by field, 400,
//! and make nothing); a good one makes ONE position with the right amount,
//! accertamento quota, taxonomy and placement, and ONE Checkout cart, even
//! when confirmed twice; one Ente's service cannot be paid through
//! another's portal; the abandonment job cancels an unpaid one after its
//! window but never a paid one nor one the Node is paying; and the back
//! office's form editor saves a valid form, refuses an invalid one by
//! field, and is closed to another Ente's operator.

use crate::common::app;
use crate::common::backoffice;
use crate::common::pay_world;
use crate::common::portal;

use app::gpd::{ENTE, OTHER_ENTE};
use chrono::{Duration, Utc};
use incasso_app::portal::spontaneous as sp;
use incasso_core::Cents;
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::access::Role;
use incasso_core::catalogue::Service;
use incasso_core::ente::Office;
use incasso_core::form::{Amount, AmountChoice, Field, FieldKind, FormDef};
use incasso_core::position::PositionStatus;
use incasso_store::{Abandoned, Store, StoreError};
use incasso_testkit::backends;
use pay_world::{World, world};
use portal::{Page, Visitor};
use reqwest::StatusCode;

const SERVICE: &str = "DIRITTI";
const OTHER_SERVICE: &str = "TICKET";
const TAXONOMY: &str = "9/0104103SP/";
const PAYER: &str = "RSSMRA85T10A562S";

fn text(name: &str, label: &str) -> Field {
    Field {
        name: name.into(),
        kind: FieldKind::Text,
        label: label.into(),
        help: String::new(),
        required: true,
        pattern: None,
        choices: Vec::new(),
        min_length: None,
        max_length: None,
    }
}

/// Ente A: office ANAG, accertamento 2026/ACC-ANAG, service DIRITTI with a
/// choice, a patterned text and a table of amounts. Ente B: service
/// TICKET typed between 1,00 and 500,00 €.
async fn catalogue(store: &Store) {
    store
        .put_office(
            ENTE,
            &Office {
                code: "ANAG".into(),
                name: "Servizi demografici".into(),
                email: None,
            },
        )
        .await
        .unwrap();
    for (ente, code) in [(ENTE, "ACC-ANAG"), (OTHER_ENTE, "ACC-TICKET")] {
        store
            .put_accertamento(
                ente,
                &Accertamento {
                    year: 2026,
                    code: code.into(),
                    description: "Diritti".into(),
                    chapter: "3050".into(),
                    article: None,
                    siope_code: None,
                    active: true,
                },
            )
            .await
            .unwrap();
    }
    for (ente, code, name, office, acc) in [
        (
            ENTE,
            SERVICE,
            "Diritti di segreteria",
            Some("ANAG"),
            "ACC-ANAG",
        ),
        (
            OTHER_ENTE,
            OTHER_SERVICE,
            "Ticket sanitario",
            None,
            "ACC-TICKET",
        ),
    ] {
        store
            .put_service(
                ente,
                &Service {
                    code: code.into(),
                    name: name.into(),
                    office_code: office.map(str::to_string),
                    taxonomy_code: TAXONOMY.into(),
                    default_accertamento: Some(AccertamentoRef {
                        year: 2026,
                        code: acc.into(),
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
    }
    let diritti = FormDef {
        fields: vec![
            Field {
                kind: FieldKind::Choice,
                choices: vec!["Residenza".into(), "Stato di famiglia".into()],
                ..text("documento", "Documento richiesto")
            },
            Field {
                pattern: Some("[A-Z]{2}[0-9]{4}".into()),
                ..text("pratica", "Numero della pratica")
            },
        ],
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
        causale: "Diritti {documento} pratica {pratica}".into(),
    };
    let ticket = FormDef {
        fields: vec![text("ricetta", "Numero della ricetta")],
        amount: Amount::Range {
            min: Cents(100),
            max: Cents(50_000),
        },
        causale: "Ticket {ricetta}".into(),
    };
    for (ente, code, def) in [
        (ENTE, SERVICE, diritti),
        (OTHER_ENTE, OTHER_SERVICE, ticket),
    ] {
        store
            .put_service_form(
                ente,
                code,
                &serde_json::to_string(&def).unwrap(),
                None,
                "test",
                Utc::now(),
            )
            .await
            .unwrap();
    }
}

async fn spontaneous_world(backend: incasso_testkit::Backend) -> World {
    let w = world(backend).await;
    catalogue(&w.app.store).await;
    w
}

/// The same incasso (same database) served again with room for the many
/// confirmations a test sends: the default limit of creations per client
/// (3 at once) is the anti-abuse tests' subject, not these.
async fn roomy(w: &World) -> String {
    use incasso_server::portal::limit::{LimitSettings, Rate};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = incasso_app::App::new(w.app.store.clone(), incasso_app::Settings::new(&base));
    let state = incasso_server::AppState::new(app).with_limits(LimitSettings {
        create: Rate {
            per_minute: 600,
            burst: 100,
        },
        lookup: Rate {
            per_minute: 600,
            burst: 100,
        },
        ..LimitSettings::default()
    });
    tokio::spawn(incasso_server::serve_state(
        listener,
        state,
        std::future::pending(),
    ));
    base
}

fn token_of(p: &Page) -> String {
    p.body
        .split("name=\"token\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no token in the form: {}", p.body))
        .to_string()
}

/// The message next to input `id`.
fn error_by(p: &Page, id: &str) -> Option<String> {
    p.body
        .split(&format!("id=\"{id}-errore\">"))
        .nth(1)
        .map(|s| s.split('<').next().unwrap().to_string())
}

/// The good answers of DIRITTI.
fn good(token: &str) -> Vec<(&str, &str)> {
    vec![
        ("token", token),
        ("documento", "Residenza"),
        ("pratica", "AB1234"),
        ("debtor_fiscal_code", PAYER),
        ("debtor_name", "Mario Rossi"),
        ("email", "mario.rossi@example.it"),
        ("amount", "1"),
    ]
}

fn with<'a>(
    mut fields: Vec<(&'a str, &'a str)>,
    name: &'a str,
    value: &'a str,
) -> Vec<(&'a str, &'a str)> {
    fields.retain(|(k, _)| *k != name);
    fields.push((name, value));
    fields
}

async fn open_form(v: &Visitor, ente: &str, code: &str) -> (Page, String) {
    let p = v.get(&format!("/portale/{ente}/servizi/{code}")).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let t = token_of(&p);
    (p, t)
}

async fn no_position(store: &Store, ente: &str, token: &str) -> bool {
    let iupd = format!("PS-{}", token.to_uppercase());
    matches!(
        store.get_position(ente, &iupd).await,
        Err(StoreError::NotFound(_))
    ) && store.spontaneous(ente, token).await.unwrap().is_none()
}

#[tokio::test]
async fn bad_answers_are_named_by_field_and_make_nothing() {
    for backend in backends() {
        let w = spontaneous_world(backend).await;
        let v = Visitor::new(&roomy(&w).await);
        let list = v.get(&format!("/portale/{ENTE}/servizi")).await;
        assert_eq!(list.status, StatusCode::OK);
        assert!(list.body.contains("Diritti di segreteria"));
        assert!(list.body.contains("da 16,00 € a 32,00 €"), "{}", list.body);
        assert!(
            !list.body.contains("Ticket sanitario"),
            "Ente B's service at Ente A"
        );

        let (form, token) = open_form(&v, ENTE, SERVICE).await;
        for id in [
            "f-documento",
            "f-pratica",
            "f-debtor_fiscal_code",
            "f-debtor_name",
            "f-email",
            "f-amount-0",
        ] {
            assert!(form.body.contains(&format!("id=\"{id}\"")), "{id}");
        }

        // Everything missing: each required field named, at the top and by
        // the field.
        let empty = v
            .post(
                &format!("/portale/{ENTE}/servizi/{SERVICE}"),
                &[("token", &token)],
            )
            .await;
        assert_eq!(empty.status, StatusCode::BAD_REQUEST);
        assert!(empty.body.contains("role=\"alert\" id=\"errori\""));
        for (id, label) in [
            ("f-documento", "Documento richiesto"),
            ("f-pratica", "Numero della pratica"),
            ("f-debtor_fiscal_code", "Codice fiscale di chi paga"),
            ("f-debtor_name", "Nome e cognome"),
        ] {
            assert_eq!(
                error_by(&empty, id).as_deref(),
                Some("campo obbligatorio"),
                "{id}"
            );
            assert!(
                empty.body.contains(&format!("<a href=\"#{id}\">{label}")),
                "{label}"
            );
        }
        assert!(
            error_by(&empty, "f-amount").is_some(),
            "the amount is named"
        );
        assert_eq!(token_of(&empty), token, "the same token is kept");

        // Malformed and out-of-range answers, by field.
        let bad = with(good(&token), "pratica", "ab12");
        let bad = with(bad, "documento", "Passaporto");
        let bad = with(bad, "debtor_fiscal_code", "RSSMRA85T10A562X");
        let bad = with(bad, "email", "mario@");
        let bad = with(bad, "amount", "7");
        let p = v
            .post(&format!("/portale/{ENTE}/servizi/{SERVICE}"), &bad)
            .await;
        assert_eq!(p.status, StatusCode::BAD_REQUEST);
        for id in [
            "f-pratica",
            "f-documento",
            "f-debtor_fiscal_code",
            "f-email",
            "f-amount",
        ] {
            assert!(error_by(&p, id).is_some(), "{id}: {}", p.body);
        }
        assert!(error_by(&p, "f-debtor_name").is_none());
        // What was typed is shown back.
        assert!(p.body.contains("value=\"ab12\""));

        // Confirming bad answers (the summary skipped) is refused alike.
        let p = v
            .post(
                &format!("/portale/{ENTE}/servizi/{SERVICE}/conferma"),
                &with(good(&token), "pratica", ""),
            )
            .await;
        assert_eq!(p.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            error_by(&p, "f-pratica").as_deref(),
            Some("campo obbligatorio")
        );

        // An amount out of bounds at Ente B (typed between 1 and 500 €).
        let (_, t2) = open_form(&v, OTHER_ENTE, OTHER_SERVICE).await;
        for amount in ["0,99", "500,01", "dieci"] {
            let p = v
                .post(
                    &format!("/portale/{OTHER_ENTE}/servizi/{OTHER_SERVICE}/conferma"),
                    &[
                        ("token", t2.as_str()),
                        ("ricetta", "X1"),
                        ("debtor_fiscal_code", PAYER),
                        ("debtor_name", "Mario Rossi"),
                        ("amount", amount),
                    ],
                )
                .await;
            assert_eq!(p.status, StatusCode::BAD_REQUEST, "{amount}");
            let m = error_by(&p, "f-amount").unwrap_or_default();
            assert!(
                m.contains("tra 1,00 € e 500,00 €") || m.contains("importo non valido"),
                "{amount}: {m}"
            );
        }
        // A token not given out.
        let p = v
            .post(
                &format!("/portale/{ENTE}/servizi/{SERVICE}/conferma"),
                &with(good(&token), "token", "not-a-token"),
            )
            .await;
        assert_eq!(p.status, StatusCode::BAD_REQUEST);

        assert!(no_position(&w.app.store, ENTE, &token).await);
        assert!(no_position(&w.app.store, OTHER_ENTE, &t2).await);
        assert!(w.carts().await.is_empty(), "no Checkout cart");

        // With the default limits, a client confirms 3 at once, then waits.
        let limited = Visitor::new(w.base());
        let (_, t3) = open_form(&limited, ENTE, SERVICE).await;
        let path = format!("/portale/{ENTE}/servizi/{SERVICE}/conferma");
        let bad = with(good(&t3), "pratica", "");
        for _ in 0..3 {
            assert_eq!(
                limited.post(&path, &bad).await.status,
                StatusCode::BAD_REQUEST
            );
        }
        assert_eq!(
            limited.post(&path, &good(&t3)).await.status,
            StatusCode::TOO_MANY_REQUESTS
        );
        assert!(no_position(&w.app.store, ENTE, &t3).await);
    }
}

#[tokio::test]
async fn a_good_form_makes_one_position_and_one_checkout_cart() {
    for backend in backends() {
        let w = spontaneous_world(backend).await;
        let v = Visitor::new(&roomy(&w).await);
        let (_, token) = open_form(&v, ENTE, SERVICE).await;
        let answers = good(&token);

        // Step 2: the summary, with the causale and the amount chosen.
        let summary = v
            .post(&format!("/portale/{ENTE}/servizi/{SERVICE}"), &answers)
            .await;
        assert_eq!(summary.status, StatusCode::OK, "{}", summary.body);
        assert!(summary.body.contains("Diritti Residenza pratica AB1234"));
        assert!(summary.body.contains("32,00 € (Urgente)"));
        assert!(summary.body.contains("aria-current=\"step\""));
        // 'Modifica' goes back with the answers kept.
        let back = v
            .post(
                &format!("/portale/{ENTE}/servizi/{SERVICE}/modifica"),
                &answers,
            )
            .await;
        assert_eq!(back.status, StatusCode::OK);
        assert!(back.body.contains("value=\"AB1234\""));
        assert!(back.body.contains("value=\"Mario Rossi\""));
        assert!(back.body.contains("value=\"1\" checked"));
        assert!(back.body.contains("<option value=\"Residenza\" selected>"));
        assert_eq!(token_of(&back), token);

        // Confirmed: to Checkout.
        let done = v
            .post(
                &format!("/portale/{ENTE}/servizi/{SERVICE}/conferma"),
                &answers,
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        let checkout = done.location().unwrap().to_string();
        assert!(checkout.starts_with(&w.sim_url), "{checkout}");

        let iupd = format!("PS-{}", token.to_uppercase());
        let stored = w.app.store.get_position(ENTE, &iupd).await.unwrap();
        let p = &stored.position;
        assert_eq!(p.status, PositionStatus::Valid);
        assert!(p.switch_to_expired);
        assert_eq!(p.debtor.fiscal_code, PAYER);
        assert_eq!(p.debtor.full_name, "Mario Rossi");
        assert_eq!(p.debtor.email.as_deref(), Some("mario.rossi@example.it"));
        assert_eq!(p.options.len(), 1);
        let o = &p.options[0];
        assert_eq!(o.amount, Cents(3200));
        assert_eq!(o.description, "Diritti Residenza pratica AB1234");
        assert!(o.due_date < Utc::now() + Duration::days(2));
        let t = &o.transfers[0];
        assert_eq!(t.category, TAXONOMY);
        assert_eq!(t.organization_fiscal_code, ENTE);
        assert_eq!(t.iban.as_deref(), Some(app::gpd::IBAN));
        assert_eq!(t.quotas.len(), 1);
        assert_eq!(t.quotas[0].accertamento.code, "ACC-ANAG");
        assert_eq!(t.quotas[0].amount, Cents(3200));
        assert_eq!(stored.placement.service.as_deref(), Some(SERVICE));
        assert_eq!(stored.placement.office.as_deref(), Some("ANAG"));
        let nav = o.notice_number.as_ref().unwrap().as_str().to_string();

        let carts = w.carts().await;
        assert_eq!(carts.len(), 1, "{carts:?}");
        let cart = carts[0].to_string();
        assert!(cart.contains(&nav), "{cart}");
        assert!(cart.contains("mario.rossi@example.it"), "{cart}");

        // The same form confirmed again: the same position, the same cart.
        let again = v
            .post(
                &format!("/portale/{ENTE}/servizi/{SERVICE}/conferma"),
                &answers,
            )
            .await;
        assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
        assert_eq!(again.location(), Some(checkout.as_str()));
        assert_eq!(w.carts().await.len(), 1);
        let again = w.app.store.get_position(ENTE, &iupd).await.unwrap();
        assert_eq!(again.id, stored.id);
        // The same token sent for another payer is not a retry of it.
        let other = v
            .post(
                &format!("/portale/{ENTE}/servizi/{SERVICE}/conferma"),
                &with(answers.clone(), "debtor_fiscal_code", "BNCGVN80A01H501J"),
            )
            .await;
        assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.body);

        // Two confirmations at once make one position too.
        let (_, t2) = open_form(&v, ENTE, SERVICE).await;
        let a2 = good(&t2);
        let path = format!("/portale/{ENTE}/servizi/{SERVICE}/conferma");
        let (r1, r2) = tokio::join!(v.post(&path, &a2), v.post(&path, &a2));
        assert_eq!(r1.status, StatusCode::SEE_OTHER, "{}", r1.body);
        assert_eq!(r2.status, StatusCode::SEE_OTHER, "{}", r2.body);
        assert_eq!(r1.location(), r2.location());
        assert!(
            w.app
                .store
                .get_position(ENTE, &format!("PS-{}", t2.to_uppercase()))
                .await
                .is_ok()
        );

        // Paid through Checkout's Node: the outcome is the cart's page.
        w.sim.pay(ENTE, &nav).await.unwrap();
        let paid = w.app.store.get_position(ENTE, &iupd).await.unwrap();
        assert_eq!(paid.position.status, PositionStatus::Paid);
    }
}

#[tokio::test]
async fn a_service_of_one_ente_cannot_be_paid_through_another_s_portal() {
    for backend in backends() {
        let w = spontaneous_world(backend).await;
        let v = Visitor::new(w.base());
        let (_, token) = open_form(&v, ENTE, SERVICE).await;
        let form = v
            .get(&format!("/portale/{OTHER_ENTE}/servizi/{SERVICE}"))
            .await;
        assert_eq!(form.status, StatusCode::NOT_FOUND);
        let confirm = v
            .post(
                &format!("/portale/{OTHER_ENTE}/servizi/{SERVICE}/conferma"),
                &good(&token),
            )
            .await;
        assert_eq!(confirm.status, StatusCode::NOT_FOUND, "{}", confirm.body);
        let review = v
            .post(
                &format!("/portale/{OTHER_ENTE}/servizi/{SERVICE}"),
                &good(&token),
            )
            .await;
        assert_eq!(review.status, StatusCode::NOT_FOUND);
        assert!(no_position(&w.app.store, ENTE, &token).await);
        assert!(no_position(&w.app.store, OTHER_ENTE, &token).await);
        // A service that is not spontaneous is not offered either.
        let mut s = w.app.store.get_service(ENTE, SERVICE).await.unwrap();
        s.spontaneous = false;
        w.app.store.put_service(ENTE, &s).await.unwrap();
        let gone = v.get(&format!("/portale/{ENTE}/servizi/{SERVICE}")).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND);
        let list = v.get(&format!("/portale/{ENTE}/servizi")).await;
        assert!(!list.body.contains("Diritti di segreteria"));
    }
}

/// A payment made `minutes_ago` through the use case, as the portal does.
async fn made_ago(w: &World, minutes_ago: i64, pratica: &str) -> (String, String) {
    let mut app = w.public_ctx().app;
    app.clock = incasso_app::Clock::Fixed(Utc::now() - Duration::minutes(minutes_ago));
    let ctx = app.ctx(incasso_app::Caller::Public);
    let token = sp::new_token();
    let answers = good(&token)
        .into_iter()
        .filter(|(k, _)| *k != "token")
        .map(|(k, v)| {
            (
                k.to_string(),
                if k == "pratica" {
                    pratica.to_string()
                } else {
                    v.to_string()
                },
            )
        })
        .collect();
    let done = sp::submit(&ctx, ENTE, SERVICE, &token, answers)
        .await
        .unwrap();
    (done.iupd, done.notice_number)
}

async fn status(w: &World, iupd: &str) -> PositionStatus {
    w.app
        .store
        .get_position(ENTE, iupd)
        .await
        .unwrap()
        .position
        .effective_status(Utc::now())
}

#[tokio::test]
async fn the_abandonment_job_cancels_only_unpaid_payments_nobody_is_paying() {
    for backend in backends() {
        let w = spontaneous_world(backend).await;
        let (unpaid, unpaid_nav) = made_ago(&w, 90, "AA0001").await;
        let (paid, paid_nav) = made_ago(&w, 90, "AA0002").await;
        let (paying, paying_nav) = made_ago(&w, 90, "AA0003").await;
        let (fresh, _) = made_ago(&w, 10, "AA0004").await;
        w.sim.pay(ENTE, &paid_nav).await.unwrap();
        // The Node asks to be paid (paGetPayment), and the receipt is late.
        w.sim.set_faults(incasso_simulator::Faults {
            lose_receipt: true,
            ..Default::default()
        });
        w.sim.pay(ENTE, &paying_nav).await.unwrap();
        w.sim.set_faults(Default::default());

        let app = w.public_ctx().app;
        let now = Utc::now();
        let done = sp::close_abandoned(&app, now).await.unwrap();
        let outcome = |iupd: &str| done.iter().find(|(_, i, _)| i == iupd).map(|d| d.2.clone());
        assert_eq!(outcome(&unpaid), Some(Abandoned::Cancelled), "{done:?}");
        // Paid (the Node asked for it a moment ago): left alone.
        assert_eq!(outcome(&paid), None);
        assert_eq!(outcome(&paying), None, "the Node is paying it");
        assert_eq!(outcome(&fresh), None, "not abandoned yet");
        assert_eq!(status(&w, &unpaid).await, PositionStatus::Invalid);
        assert_eq!(status(&w, &paid).await, PositionStatus::Paid);
        assert_eq!(status(&w, &paying).await, PositionStatus::Valid);
        assert_eq!(status(&w, &fresh).await, PositionStatus::Valid);

        // The Node asking for the cancelled one is told it is cancelled.
        match w.sim.pay(ENTE, &unpaid_nav).await {
            Err(incasso_simulator::SimError::Ko { code, .. }) => {
                assert_eq!(code, "PAA_PAGAMENTO_ANNULLATO")
            }
            other => panic!("a cancelled spontaneous payment was paid: {other:?}"),
        }
        // A second round changes nothing.
        assert!(sp::close_abandoned(&app, now).await.unwrap().is_empty());

        // Once the Node's hold is over with no receipt, it goes too; the
        // paid one stays paid.
        let later = now + Duration::minutes(61);
        let done = sp::close_abandoned(&app, later).await.unwrap();
        assert!(
            done.iter()
                .any(|(_, i, d)| i == &paying && *d == Abandoned::Cancelled),
            "{done:?}"
        );
        assert!(
            done.iter()
                .any(|(_, i, d)| i == &fresh && *d == Abandoned::Cancelled)
        );
        assert!(
            done.iter()
                .any(|(_, i, d)| i == &paid && *d == Abandoned::Paid),
            "{done:?}"
        );
        assert_eq!(status(&w, &paid).await, PositionStatus::Paid);
        let row = w
            .app
            .store
            .spontaneous_of_position(ENTE, &paid)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.state, "PAID");
    }
}

fn editor_fields(version: &str) -> Vec<(&'static str, String)> {
    vec![
        ("version", version.to_string()),
        ("c0_name", "pratica".into()),
        ("c0_kind", "text".into()),
        ("c0_label", "Numero della pratica".into()),
        ("c0_help", "Come indicato dall'ufficio".into()),
        ("c0_required", "1".into()),
        ("c0_pattern", "[A-Z]{2}[0-9]{4}".into()),
        ("c0_choices", String::new()),
        ("c0_min", String::new()),
        ("c0_max", "6".into()),
        ("c1_name", "anno".into()),
        ("c1_kind", "choice".into()),
        ("c1_label", "Anno".into()),
        ("c1_help", String::new()),
        ("c1_pattern", String::new()),
        ("c1_choices", "2025\n2026".into()),
        ("c1_min", String::new()),
        ("c1_max", String::new()),
        ("amount_mode", "range".into()),
        ("amount_fixed", String::new()),
        ("amount_min", "2,00".into()),
        ("amount_max", "20,00".into()),
        ("t0_label", String::new()),
        ("t0_amount", String::new()),
        ("causale", "Diritti pratica {pratica} anno {anno}".into()),
        ("azione", "salva".into()),
    ]
}

fn version_of(html: &str) -> String {
    html.split("name=\"version\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn the_back_office_edits_a_form_field_by_field_within_its_ente() {
    for backend in backends() {
        let w = spontaneous_world(backend).await;
        let base = w.base().to_string();
        let admin = backoffice::clerk(
            &w.app.store,
            &base,
            "admin.a",
            backoffice::rights(Role::EnteAdmin, Some(ENTE), &[], &[]),
        )
        .await;
        let path = format!("/backoffice/servizi/{SERVICE}/modulo");
        let page = admin.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        let html = page.text();
        assert!(html.contains("value=\"documento\""));
        let version = version_of(&html);
        let before = w
            .app
            .store
            .service_form(ENTE, SERVICE)
            .await
            .unwrap()
            .unwrap();

        // Invalid: a reserved name, a repeated one, bounds out of order,
        // a causale naming no field: each by its input, nothing saved.
        let mut bad = editor_fields(&version);
        for (k, v) in bad.iter_mut() {
            match *k {
                "c1_name" => *v = "pratica".into(),
                "amount_min" => *v = "30,00".into(),
                "causale" => *v = "Diritti {nessuno}".into(),
                "c0_min" => *v = "9".into(),
                _ => {}
            }
        }
        let fields: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let refused = admin.post(&path, &fields).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{}",
            refused.text()
        );
        let html = refused.text();
        for id in [
            "c1-name-errore",
            "c0-min-errore",
            "importo-min-errore",
            "causale-errore",
        ] {
            assert!(html.contains(&format!("id=\"{id}\"")), "{id}: {html}");
        }
        assert!(html.contains("role=\"alert\" id=\"errori\""));
        assert_eq!(
            w.app
                .store
                .service_form(ENTE, SERVICE)
                .await
                .unwrap()
                .unwrap(),
            before,
            "nothing saved"
        );

        // 'Aggiungi un campo' draws one more block, keeping what was typed.
        let mut more = editor_fields(&version);
        more.retain(|(k, _)| *k != "azione");
        more.push(("azione", "campo".into()));
        let fields: Vec<(&str, &str)> = more.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let grown = admin.post(&path, &fields).await;
        assert_eq!(grown.status, StatusCode::OK);
        assert!(grown.text().contains("name=\"c2_name\""));
        assert!(grown.text().contains("value=\"Numero della pratica\""));

        // Valid: saved, audited, and the portal shows it.
        let good = editor_fields(&version);
        let fields: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let saved = admin.post(&path, &fields).await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text());
        let rec = w
            .app
            .store
            .service_form(ENTE, SERVICE)
            .await
            .unwrap()
            .unwrap();
        assert!(rec.updated_at > before.updated_at);
        let def: FormDef = serde_json::from_str(&rec.definition).unwrap();
        assert_eq!(def.fields.len(), 2);
        assert_eq!(def.fields[1].choices, vec!["2025", "2026"]);
        assert_eq!(def.fields[0].max_length, Some(6));
        assert_eq!(
            def.amount,
            Amount::Range {
                min: Cents(200),
                max: Cents(2000)
            }
        );
        let v = Visitor::new(&base);
        let (form, _) = open_form(&v, ENTE, SERVICE).await;
        assert!(form.body.contains("Da 2,00 € a 20,00 €"), "{}", form.body);
        let audit = w
            .app
            .store
            .audit_events(Some(ENTE), Some("service.form"), None, 10)
            .await
            .unwrap();
        assert!(audit.iter().any(|(_, e)| e.outcome == "OK"), "{audit:?}");

        // Saving over a version that is no longer the latest is refused.
        let stale = admin.post(&path, &fields).await;
        assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.text());

        // Another Ente's administrator reaches no such service.
        let other = backoffice::clerk(
            &w.app.store,
            &base,
            "admin.b",
            backoffice::rights(Role::EnteAdmin, Some(OTHER_ENTE), &[], &[]),
        )
        .await;
        assert_eq!(other.get(&path).await.status, StatusCode::NOT_FOUND);
        let fields: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let theirs = other.post(&path, &fields).await;
        assert_eq!(theirs.status, StatusCode::NOT_FOUND);
        // An accountant of Ente A reads it but may not change it.
        let reader = backoffice::clerk(
            &w.app.store,
            &base,
            "contabile.a",
            backoffice::rights(Role::Accountant, Some(ENTE), &[], &[]),
        )
        .await;
        let read = reader.get(&path).await;
        assert_eq!(read.status, StatusCode::OK);
        assert!(!read.text().contains("id=\"salva\""));
        let fields: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            reader.post(&path, &fields).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            w.app
                .store
                .service_form(ENTE, SERVICE)
                .await
                .unwrap()
                .unwrap(),
            rec
        );
    }
}

#[tokio::test]
async fn a_signed_in_citizen_pays_as_themselves() {
    for backend in backends() {
        let w = spontaneous_world(backend).await;
        let citizen = incasso_app::identity::CitizenIdentity {
            fiscal_code: "BNCGVN80A01H501J".into(),
            name: "Giovanni Bianchi".into(),
        };
        let ctx = w
            .public_ctx()
            .app
            .ctx(incasso_app::Caller::Citizen(citizen.clone()));
        let token = sp::new_token();
        // Whatever the page posts for the payer, the payer is the citizen.
        let answers = good(&token)
            .into_iter()
            .filter(|(k, _)| *k != "token")
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let done = sp::submit(&ctx, ENTE, SERVICE, &token, answers)
            .await
            .unwrap();
        let p = w.app.store.get_position(ENTE, &done.iupd).await.unwrap();
        assert_eq!(p.position.debtor.fiscal_code, citizen.fiscal_code);
        assert_eq!(p.position.debtor.full_name, citizen.name);
    }
}
