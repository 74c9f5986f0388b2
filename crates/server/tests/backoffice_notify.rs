//! Messages to citizens from the back office, the desk and the API (issue
//! 19, and issue 18's "send the notice by App IO"), over HTTP on both
//! databases, with incasso's App IO pointed at the simulator's.
//!
//! A service's settings and templates are saved from their page (a bad
//! template refused beside its field, the IO key shown only masked); a
//! position's invitation is previewed (nothing sent), confirmed twice with
//! the same form and sent once, read back from the simulated IO with its
//! payment data; a dead letter is listed, exported and sent again; the
//! desk's "Invia con App IO" reaches IO once however often it is pressed.
//! Ente B's administrator and an office operator outside the service's
//! office see and change none of it. The API doors do the same under the
//! Ente's key, the POST held to its Idempotency-Key.

use crate::common::app;
use crate::common::backoffice;
use crate::common::desk_world;

use app::gpd::{ENTE, OTHER_ENTE};
use backoffice::{Clerk, clerk, rights};
use chrono::{Duration, Utc};
use desk_world::{DEBTOR, DESK, SERVICE, catalogue, input_value};
use incasso_app::{App, Settings, notify};
use incasso_core::Cents;
use incasso_core::access::{Access, Area, Role};
use incasso_core::catalogue::Service;
use incasso_core::sample::{self, PositionSpec};
use incasso_simulator::io::{IoCitizen, IoService, IoSettings};
use incasso_store::desks::DeskRecord;
use incasso_store::{Placement, Store};
use incasso_testkit::backends;
use reqwest::StatusCode;
use serde_json::{Value, json};

const IO_KEY: &str = "io-key-diritti-00000001";
const IBAN: &str = "IT60X0542811101000000123456";

struct World {
    store: Store,
    app: App,
    base: String,
    key_a: String,
    key_b: String,
    sim: incasso_simulator::Simulator,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn world(backend: incasso_testkit::Backend) -> World {
    let (store, keys) = app::gpd::enti(backend, &[ENTE, OTHER_ENTE]).await;
    catalogue(&store, ENTE).await;
    catalogue(&store, OTHER_ENTE).await;
    store
        .put_service(
            ENTE,
            &Service {
                code: "TARI".into(),
                name: "Tassa rifiuti".into(),
                office_code: Some("TRIB".into()),
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
    store
        .create_desk(&DeskRecord {
            ente: ENTE.into(),
            code: DESK.into(),
            name: "Sportello polifunzionale".into(),
            office: None,
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    let sim = incasso_simulator::Simulator::new(Default::default());
    sim.io().configure(IoSettings {
        services: vec![IoService {
            api_key: IO_KEY.into(),
            organization_fiscal_code: ENTE.into(),
            name: "Diritti di segreteria".into(),
            rate_per_second: None,
        }],
        citizens: [sample::personal_fiscal_code(21), DEBTOR.to_string()]
            .into_iter()
            .map(|cf| {
                (
                    cf,
                    IoCitizen {
                        sender_allowed: true,
                        preferred_languages: vec!["it_IT".into()],
                    },
                )
            })
            .collect(),
        rate_per_second: 0,
        known_one_in: 0,
        keep_messages: 1000,
    });
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let io_url = format!("http://{}/io/api/v1", sim_listener.local_addr().unwrap());
    tokio::spawn(sim.clone().serve(sim_listener, std::future::pending()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut settings = Settings::new(&base);
    settings.io_url = Some(io_url);
    let app = App::new(store.clone(), settings);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(incasso_server::serve(listener, app.clone(), async {
        let _ = stopped.await;
    }));
    incasso_pagopa::connector::install_crypto_provider();
    World {
        store,
        app,
        base,
        key_a: keys[0].clone(),
        key_b: keys[1].clone(),
        sim,
        _stop: stop,
    }
}

/// A published position of DIRITTI (office ANAG) for the citizen on IO.
async fn position(store: &Store, iupd: &str) -> (String, i64) {
    position_as(store, iupd, true).await
}

/// The same, published or left a draft.
async fn position_as(store: &Store, iupd: &str, publish: bool) -> (String, i64) {
    let now = Utc::now();
    let p = sample::position(&PositionSpec {
        ente: ENTE,
        company_name: "Comune di prova",
        iupd: iupd.into(),
        debtor_index: 21,
        amount: Cents(4_250),
        description: "Diritti di segreteria".into(),
        category: "9/0104103SP/",
        iban: IBAN,
        due_date: now + Duration::days(30),
        installments: 0,
        second_beneficiary: None,
        quotas: vec![],
    });
    let stored = store
        .create_position_placed(
            ENTE,
            p,
            Some(Placement {
                service: Some(SERVICE.into()),
                office: Some("ANAG".into()),
            }),
            now,
            publish,
        )
        .await
        .unwrap();
    let o = &stored.position.options[0];
    (
        o.notice_number.as_ref().unwrap().as_str().to_string(),
        o.amount.0,
    )
}

/// Fans out and sends until every message of Ente A has its outcome.
/// The server's own worker runs too (serve starts the jobs): whichever
/// takes a row, the test waits for it to be done.
async fn drain(app: &App) {
    for _ in 0..400 {
        let fanned = notify::fan_out(app).await.unwrap();
        let round = notify::send_due(app, Utc::now()).await.unwrap();
        let mut open = 0;
        for status in ["PENDING", "SENDING"] {
            open += app
                .store
                .notifications_page(ENTE, Some(status), None, "id", false, 1, 0)
                .await
                .unwrap()
                .1;
        }
        if fanned == 0 && round.total() == 0 && open == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the outbox did not drain");
}

async fn events(store: &Store, iupd: &str) -> usize {
    store.position_events(ENTE, iupd).await.unwrap().len()
}

async fn admin(w: &World, name: &str, ente: &str) -> Clerk {
    clerk(
        &w.store,
        &w.base,
        name,
        rights(Role::EnteAdmin, Some(ente), &[], &[]),
    )
    .await
}

const SUBJECT: &str = "Diritti da pagare: {{amount}}";
const MARKDOWN: &str = "Gentile {{debtor_name}}, per la sua pratica sono dovuti {{amount}} \
    entro il {{due_date}}. Può pagare in App IO o con l'avviso {{notice_number}}.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_back_office_sets_previews_sends_once_and_retries() {
    for backend in backends() {
        let w = world(backend).await;
        let store = &w.store;
        let ada = admin(&w, "ada.admin", ENTE).await;
        let bruno = admin(&w, "bruno.admin", OTHER_ENTE).await;
        // Catalogue and positions in writing, but only office TRIB's.
        let otto = clerk(
            store,
            &w.base,
            "otto.tributi",
            rights(
                Role::OfficeOperator,
                Some(ENTE),
                &[
                    (Area::Catalogue, Access::Write),
                    (Area::Positions, Access::Write),
                ],
                &["TRIB"],
            ),
        )
        .await;

        // Reachable: the menu, and the service's page.
        let home = ada.get("/backoffice/").await.text();
        assert!(home.contains("href=\"/backoffice/notifiche\""), "{home}");
        let service = ada.get(&format!("/backoffice/servizi/{SERVICE}")).await;
        assert!(
            service
                .text()
                .contains(&format!("href=\"/backoffice/notifiche/servizi/{SERVICE}\"")),
            "{}",
            service.text()
        );
        let settings_url = format!("/backoffice/notifiche/servizi/{SERVICE}");
        let page = ada.get(&settings_url).await;
        assert_eq!(page.status, StatusCode::OK, "{backend:?}: {}", page.text());
        assert!(page.text().contains("Nessuna chiave salvata"));

        // Settings: a bad reminder is told beside its field, nothing saved.
        let bad = ada
            .post(
                &settings_url,
                &[("chiave_io", IO_KEY), ("attivo", "1"), ("promemoria", "99")],
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text());
        assert!(bad.text().contains("id=\"promemoria-errore\""));
        assert!(bad.text().contains("aria-invalid=\"true\""));
        assert!(
            store
                .notify_settings(ENTE, SERVICE)
                .await
                .unwrap()
                .is_none()
        );
        // Without CSRF: refused.
        let forged = ada
            .post_raw(&settings_url, &[("chiave_io", IO_KEY), ("attivo", "1")])
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        // The office operator outside ANAG neither sees nor saves them.
        assert_eq!(otto.get(&settings_url).await.status, StatusCode::NOT_FOUND);
        let r = otto
            .post(&settings_url, &[("chiave_io", IO_KEY), ("attivo", "1")])
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
        assert!(
            store
                .notify_settings(ENTE, SERVICE)
                .await
                .unwrap()
                .is_none()
        );

        let ok = ada
            .post(
                &settings_url,
                &[("chiave_io", IO_KEY), ("attivo", "1"), ("promemoria", "3")],
            )
            .await;
        assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text());
        let saved = store.notify_settings(ENTE, SERVICE).await.unwrap().unwrap();
        assert_eq!(saved.io_api_key.as_deref(), Some(IO_KEY));
        assert!(saved.enabled && !saved.invite_on_publish);
        assert_eq!(saved.reminder_days, Some(3));
        let html = ada.get(&settings_url).await.text();
        assert!(html.contains("••••0001"), "{html}");
        assert!(!html.contains(IO_KEY), "the key is never shown");

        // A bad template: its error beside the field that is wrong.
        let tpl_url = format!("{settings_url}/modelli/INVITATION/it");
        let short = ada
            .post(&tpl_url, &[("oggetto", "Breve"), ("testo", MARKDOWN)])
            .await;
        assert_eq!(short.status, StatusCode::BAD_REQUEST, "{}", short.text());
        let html = short.text();
        assert!(
            html.contains("id=\"errore-oggetto-INVITATION-it\""),
            "{html}"
        );
        assert!(!html.contains("id=\"errore-testo-INVITATION-it\""));
        let unknown = ada
            .post(
                &tpl_url,
                &[
                    ("oggetto", SUBJECT),
                    ("testo", &format!("{MARKDOWN} {{{{nope}}}}")),
                ],
            )
            .await;
        assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
        let html = unknown.text();
        assert!(html.contains("id=\"errore-testo-INVITATION-it\""), "{html}");
        assert!(html.contains("nope"));
        assert!(
            store
                .notify_templates(ENTE, SERVICE)
                .await
                .unwrap()
                .is_empty()
        );
        let r = otto
            .post(&tpl_url, &[("oggetto", SUBJECT), ("testo", MARKDOWN)])
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let good = ada
            .post(&tpl_url, &[("oggetto", SUBJECT), ("testo", MARKDOWN)])
            .await;
        assert_eq!(good.status, StatusCode::SEE_OTHER, "{}", good.text());
        assert_eq!(
            store.notify_templates(ENTE, SERVICE).await.unwrap().len(),
            1
        );

        // The preview of a position's invitation sends nothing.
        let (nav, amount) = position(store, "DIR-1").await;
        let send_url = "/backoffice/notifiche/posizioni/DIR-1/invia";
        let page = ada.get("/backoffice/posizioni/DIR-1").await.text();
        assert!(page.contains(&format!("href=\"{send_url}\"")), "{page}");
        assert!(page.contains("Nessun messaggio inviato"));
        let preview = ada.get(send_url).await;
        assert_eq!(preview.status, StatusCode::OK, "{}", preview.text());
        let html = preview.text();
        assert!(
            html.contains("Sarà inviato <strong>1 messaggio</strong>"),
            "{html}"
        );
        assert!(html.contains("Diritti da pagare: 42,50"), "{html}");
        assert!(html.contains("App IO"));
        let token = input_value(&html, "token");
        assert_eq!(events(store, "DIR-1").await, 0, "a preview writes nothing");
        // Ente B's administrator and the TRIB operator: not theirs.
        assert_eq!(bruno.get(send_url).await.status, StatusCode::NOT_FOUND);
        assert_eq!(otto.get(send_url).await.status, StatusCode::NOT_FOUND);
        let r = bruno.post(send_url, &[("token", &token)]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = otto.post(send_url, &[("token", &token)]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(events(store, "DIR-1").await, 0);

        // Confirmed twice (a double click): asked once, sent once.
        let first = ada.post(send_url, &[("token", &token)]).await;
        assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.text());
        assert!(
            first
                .location
                .as_deref()
                .unwrap()
                .contains("esito=messaggi&")
        );
        let second = ada.post(send_url, &[("token", &token)]).await;
        assert_eq!(second.status, StatusCode::SEE_OTHER);
        assert!(
            second
                .location
                .as_deref()
                .unwrap()
                .contains("esito=messaggi-gia")
        );
        assert_eq!(events(store, "DIR-1").await, 1, "{backend:?}");
        drain(&w.app).await;
        let taken = w.sim.io().messages(None);
        assert_eq!(taken.len(), 1, "{backend:?}");
        assert_eq!(taken[0].content["subject"], "Diritti da pagare: 42,50 euro");
        assert_eq!(taken[0].content["payment_data"]["amount"], amount);
        assert_eq!(
            taken[0].content["payment_data"]["notice_number"],
            nav.as_str()
        );
        let page = ada.get(&first.location.clone().unwrap()).await.text();
        assert!(page.contains("Invio richiesto per 1 posizione"), "{page}");
        assert!(page.contains("Invito al pagamento"));
        assert!(page.contains("Inviato"));

        // A dead letter (IO refuses a key it does not know): listed,
        // exported, sent again only by Ente A's, once the key is right.
        let r = ada
            .post(
                &settings_url,
                &[("chiave_io", "io-key-unknown-00000009"), ("attivo", "1")],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let (_, _) = position(store, "DIR-2").await;
        let again = ada.get("/backoffice/notifiche/posizioni/DIR-2/invia").await;
        let token = input_value(&again.text(), "token");
        let r = ada
            .post(
                "/backoffice/notifiche/posizioni/DIR-2/invia",
                &[("token", &token)],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        drain(&w.app).await;
        let rows = store.position_notifications(ENTE, "DIR-2").await.unwrap();
        assert_eq!(rows.len(), 1, "{backend:?}: {rows:#?}");
        assert_eq!(rows[0].status, "FAILED", "{rows:#?}");
        let id = rows[0].id;
        let list = ada.get("/backoffice/notifiche").await;
        assert_eq!(list.status, StatusCode::OK);
        let html = list.text();
        assert!(html.contains(&format!("id=\"riprova-{id}\"")), "{html}");
        assert!(html.contains("IO_REFUSED"));
        assert!(html.contains(&format!("id=\"servizio-{SERVICE}\"")));
        let csv = ada
            .get("/backoffice/notifiche?stato=FAILED&formato=csv")
            .await;
        assert!(
            csv.content_type.starts_with("text/csv"),
            "{}",
            csv.content_type
        );
        assert!(csv.text().contains("DIR-2"));
        let all = ada
            .get("/backoffice/notifiche?stato=tutti&ordina=posizione&verso=asc")
            .await;
        assert!(all.text().contains("DIR-1") && all.text().contains("DIR-2"));
        let theirs = bruno.get("/backoffice/notifiche?stato=tutti").await.text();
        assert!(!theirs.contains("DIR-2"), "Ente B sees none of A's");
        let retry_url = format!("/backoffice/notifiche/{id}/riprova");
        for who in [&bruno, &otto] {
            let r = who.post(&retry_url, &[]).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", who.username);
        }
        assert_eq!(
            store.notification(id).await.unwrap().unwrap().status,
            "FAILED"
        );
        assert_eq!(
            ada.post_raw(&retry_url, &[]).await.status,
            StatusCode::FORBIDDEN
        );
        let r = ada
            .post(&settings_url, &[("chiave_io", IO_KEY), ("attivo", "1")])
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let r = ada.post(&retry_url, &[]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        drain(&w.app).await;
        assert_eq!(
            store.notification(id).await.unwrap().unwrap().status,
            "SENT"
        );
        assert_eq!(w.sim.io().messages(None).len(), 2);
        // Not a dead letter any more: told, not sent again.
        let r = ada.post(&retry_url, &[]).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert!(r.text().contains("id=\"errore-azione\""));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desk_sends_the_notice_with_app_io_once() {
    for backend in backends() {
        let w = world(backend).await;
        let store = &w.store;
        let ada = admin(&w, "ada.admin", ENTE).await;
        let r = ada
            .post(
                &format!("/backoffice/notifiche/servizi/{SERVICE}"),
                &[("chiave_io", IO_KEY), ("attivo", "1")],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let lucia = clerk(
            store,
            &w.base,
            "lucia.sportello",
            rights(Role::CounterClerk, Some(ENTE), &[], &["ANAG"]),
        )
        .await;
        let service_url = format!("/backoffice/sportello/{DESK}/servizi/{SERVICE}");
        let token = input_value(&lucia.get(&service_url).await.text(), "token");
        let fields = [
            ("token", token.as_str()),
            ("debtor_fiscal_code", DEBTOR),
            ("debtor_name", "Mario Rossi"),
            ("email", ""),
            ("pratica", "AB1234"),
            ("amount", "0"),
        ];
        let issued = lucia.post(&format!("{service_url}/emetti"), &fields).await;
        assert_eq!(issued.status, StatusCode::SEE_OTHER, "{}", issued.text());
        let location = issued.location.unwrap();
        let page = lucia.get(&location).await.text();
        assert!(page.contains("id=\"invia-io\""), "{page}");
        let io_url = format!("{location}/io");
        // Another Ente's administrator cannot send it.
        let bruno = admin(&w, "bruno.admin", OTHER_ENTE).await;
        let r = bruno.post(&io_url, &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
        assert_eq!(
            lucia.post_raw(&io_url, &[]).await.status,
            StatusCode::FORBIDDEN
        );
        let first = lucia.post(&io_url, &[]).await;
        assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.text());
        assert!(first.location.as_deref().unwrap().ends_with("esito=io"));
        let second = lucia.post(&io_url, &[]).await;
        assert!(
            second
                .location
                .as_deref()
                .unwrap()
                .ends_with("esito=io-gia")
        );
        drain(&w.app).await;
        let taken = w.sim.io().messages(None);
        let iupd = location.rsplit('/').next().unwrap();
        let rows = store.position_notifications(ENTE, iupd).await.unwrap();
        assert_eq!(taken.len(), 1, "{backend:?}: {rows:#?}");
        assert_eq!(taken[0].fiscal_code, DEBTOR);
        assert_eq!(taken[0].content["payment_data"]["amount"], 1600);
        let page = lucia.get(&first.location.unwrap()).await.text();
        assert!(page.contains("Avviso in partenza con App IO"), "{page}");
        assert!(page.contains("<strong>Inviato</strong>"), "{page}");
    }
}

async fn api(
    w: &World,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<Value>,
    idem: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}/api/v1{path}", w.base))
        .header("Ocp-Apim-Subscription-Key", key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    if let Some(k) = idem {
        req = req.header("Idempotency-Key", k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let json = resp.json().await.unwrap_or(Value::Null);
    (status, headers, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_sets_templates_sends_once_and_lists_messages() {
    use reqwest::Method;
    for backend in backends() {
        let w = world(backend).await;
        let settings = format!("/enti/{ENTE}/services/{SERVICE}/notifications/settings");
        let (s, _, _) = api(&w, Method::GET, &settings, &w.key_a, None, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{backend:?}");
        let body = json!({"ioApiKey": IO_KEY, "enabled": true, "reminderDays": 5});
        let (s, _, _) = api(
            &w,
            Method::PUT,
            &settings,
            &w.key_b,
            Some(body.clone()),
            None,
        )
        .await;
        assert!(
            s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND,
            "{s}"
        );
        assert!(
            w.store
                .notify_settings(ENTE, SERVICE)
                .await
                .unwrap()
                .is_none()
        );
        let (s, _, j) = api(&w, Method::PUT, &settings, &w.key_a, Some(body), None).await;
        assert_eq!(s, StatusCode::OK, "{j}");
        assert_eq!(j["ioApiKeyHint"], "••••0001");
        assert_eq!(j["reminderDays"], 5);
        let (s, _, j) = api(&w, Method::GET, &settings, &w.key_a, None, None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(!j.to_string().contains(IO_KEY));

        let tpl = format!("/enti/{ENTE}/services/{SERVICE}/notifications/templates/INVITATION/it");
        let (s, _, j) = api(&w, Method::GET, &tpl, &w.key_a, None, None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(j["own"], false);
        let bad = json!({"subject": "Breve", "markdown": MARKDOWN});
        let (s, _, j) = api(&w, Method::PUT, &tpl, &w.key_a, Some(bad), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{j}");
        assert_eq!(j["code"], "BAD_TEMPLATE");
        assert_eq!(j["errors"][0]["field"], "subject", "{j}");
        let good = json!({"subject": SUBJECT, "markdown": MARKDOWN});
        let (s, _, j) = api(&w, Method::PUT, &tpl, &w.key_a, Some(good), None).await;
        assert_eq!(s, StatusCode::OK, "{j}");
        let (_, _, j) = api(&w, Method::GET, &tpl, &w.key_a, None, None).await;
        assert_eq!(j["own"], true);
        assert_eq!(j["subject"], SUBJECT);

        // A draft has nothing to send: refused, and its key not spent.
        position_as(&w.store, "API-0", false).await;
        let draft = format!("/enti/{ENTE}/positions/API-0/notifications");
        let (s, _, j) = api(&w, Method::POST, &draft, &w.key_a, None, Some("k-0")).await;
        assert_eq!(s, StatusCode::CONFLICT, "{j}");
        assert_eq!(j["code"], "NOTHING_TO_SEND");
        w.store
            .publish_position(ENTE, "API-0", Utc::now())
            .await
            .unwrap();
        let (s, _, j) = api(&w, Method::POST, &draft, &w.key_a, None, Some("k-0")).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{j}");
        assert_eq!(j, json!({"requested": 1, "first": true}));
        position(&w.store, "API-1").await;
        let send = format!("/enti/{ENTE}/positions/API-1/notifications");
        let (s, _, j) = api(&w, Method::POST, &send, &w.key_a, None, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{j}");
        assert_eq!(j["code"], "IDEMPOTENCY_KEY_REQUIRED");
        let (s, _, _) = api(&w, Method::POST, &send, &w.key_b, None, Some("k-1")).await;
        assert!(
            s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND,
            "{s}"
        );
        let (s, _, j) = api(&w, Method::POST, &send, &w.key_a, None, Some("k-1")).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{j}");
        assert_eq!(j, json!({"requested": 1, "first": true}));
        let (s, h, j) = api(&w, Method::POST, &send, &w.key_a, None, Some("k-1")).await;
        assert_eq!(s, StatusCode::OK, "{j}");
        assert_eq!(j["first"], false);
        assert_eq!(h.get("Idempotent-Replayed").unwrap(), "true");
        position(&w.store, "API-2").await;
        let other = format!("/enti/{ENTE}/positions/API-2/notifications");
        let (s, _, j) = api(&w, Method::POST, &other, &w.key_a, None, Some("k-1")).await;
        assert_eq!(s, StatusCode::CONFLICT, "{j}");
        assert_eq!(j["code"], "IDEMPOTENCY_KEY_REUSED");
        drain(&w.app).await;
        assert_eq!(w.sim.io().messages(None).len(), 2, "{backend:?}");
        let (s, _, j) = api(&w, Method::GET, &send, &w.key_a, None, None).await;
        assert_eq!(s, StatusCode::OK);
        let list = j.as_array().unwrap();
        assert_eq!(list.len(), 1, "{j}");
        assert_eq!(list[0]["channel"], "IO");
        assert_eq!(list[0]["status"], "SENT");
        assert_eq!(list[0]["kind"], "INVITATION");
        let (s, _, _) = api(&w, Method::GET, &send, &w.key_b, None, None).await;
        assert!(
            s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND,
            "{s}"
        );

        // In the OpenAPI document.
        let doc: Value = reqwest::get(format!("{}/api/openapi.json", w.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for p in [
            "/api/v1/enti/{fiscalCode}/services/{code}/notifications/settings",
            "/api/v1/enti/{fiscalCode}/services/{code}/notifications/templates/{kind}/{language}",
            "/api/v1/enti/{fiscalCode}/positions/{iupd}/notifications",
        ] {
            assert!(doc["paths"][p].is_object(), "{p} documented");
        }
        assert!(
            doc["paths"]["/api/v1/enti/{fiscalCode}/positions/{iupd}/notifications"]["post"]
                .is_object()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_supply_is_previewed_and_sent_once() {
    for backend in backends() {
        let w = world(backend).await;
        let store = &w.store;
        let ada = admin(&w, "ada.admin", ENTE).await;
        let r = ada
            .post(
                &format!("/backoffice/notifiche/servizi/{SERVICE}"),
                &[("chiave_io", IO_KEY), ("attivo", "1")],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let csv = format!(
            "codice;servizio;codice_fiscale;nominativo;rata;importo;causale;scadenza;iuv;accertamento;operazione\n\
             DIR-S1;{SERVICE};{};Anna Verdi;0;20,00;Diritti 2027;31/03/2027;;;\n\
             DIR-S2;{SERVICE};{DEBTOR};Mario Rossi;0;30,00;Diritti 2027;31/03/2027;;;\n",
            sample::personal_fiscal_code(21)
        );
        let up = ada
            .post_file(
                "/backoffice/forniture/carica",
                &[("tracciato", "incasso-csv"), ("servizio", "")],
                "file",
                "diritti.csv",
                csv.into_bytes(),
            )
            .await;
        assert_eq!(
            up.status,
            StatusCode::SEE_OTHER,
            "{backend:?}: {}",
            up.text()
        );
        let supply_url = up.location.unwrap();
        let id: i64 = supply_url.rsplit('/').next().unwrap().parse().unwrap();
        let mut html = String::new();
        for _ in 0..200 {
            html = ada.get(&supply_url).await.text();
            if !html.contains("In caricamento") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let send_url = format!("/backoffice/notifiche/forniture/{id}/invia");
        assert!(html.contains(&format!("href=\"{send_url}\"")), "{html}");

        let preview = ada.get(&send_url).await;
        assert_eq!(preview.status, StatusCode::OK, "{}", preview.text());
        let html = preview.text();
        assert!(
            html.contains("Saranno inviati <strong>2 messaggi</strong>"),
            "{html}"
        );
        let token = input_value(&html, "token");
        // Not for another Ente, nor for an operator limited to offices.
        let bruno = admin(&w, "bruno.admin", OTHER_ENTE).await;
        assert_eq!(bruno.get(&send_url).await.status, StatusCode::NOT_FOUND);
        let r = bruno.post(&send_url, &[("token", &token)]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let anna = clerk(
            store,
            &w.base,
            "anna.anagrafe",
            rights(
                Role::OfficeOperator,
                Some(ENTE),
                &[
                    (Area::Positions, Access::Write),
                    (Area::Supplies, Access::Read),
                ],
                &["ANAG"],
            ),
        )
        .await;
        let r = anna.post(&send_url, &[("token", &token)]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        assert_eq!(events(store, "DIR-S1").await, 0);

        for expected in [
            "esito=messaggi&richiesti=2",
            "esito=messaggi-gia&richiesti=2",
        ] {
            let r = ada.post(&send_url, &[("token", &token)]).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
            let to = r.location.unwrap();
            assert!(to.ends_with(expected), "{to}");
        }
        assert_eq!(events(store, "DIR-S1").await, 1, "{backend:?}");
        assert_eq!(events(store, "DIR-S2").await, 1);
        drain(&w.app).await;
        let taken = w.sim.io().messages(None);
        assert_eq!(taken.len(), 2, "{backend:?}");
        let mut amounts: Vec<i64> = taken
            .iter()
            .map(|m| m.content["payment_data"]["amount"].as_i64().unwrap())
            .collect();
        amounts.sort();
        assert_eq!(amounts, [2000, 3000]);
        let page = ada
            .get("/backoffice/notifiche?stato=tutti&esito=messaggi&richiesti=2")
            .await
            .text();
        assert!(page.contains("Invio richiesto per 2 posizioni"), "{page}");
    }
}
