//! The Ente's e-mail texts and a service's App IO time to live (issue 19)
//! from the back office and the API, over HTTP on both databases, with
//! the simulator's App IO and SMTP server.
//!
//! A text refused (a subject too short, an unknown placeholder) is told
//! beside its field and nothing is saved; a good one is saved and is the
//! subject of the invitation e-mail a citizen not on IO receives; reset,
//! incasso's text is back. Ente B's administrator changes none of Ente A's
//! texts (the back office acts on B's own; the API answers B's key 403 or
//! 404 on A's path). A time to live of 10 s is refused beside its field,
//! nothing saved; 7200 s is saved and shown, in the API too.

use crate::common::app;
use crate::common::backoffice;
use crate::common::desk_world;

use app::gpd::{ENTE, OTHER_ENTE};
use backoffice::{Clerk, clerk, rights};
use chrono::{Duration, Utc};
use desk_world::{DEBTOR, SERVICE, catalogue};
use incasso_app::{App, Settings, notify};
use incasso_core::Cents;
use incasso_core::access::Role;
use incasso_core::sample::{self, PositionSpec};
use incasso_simulator::io::{IoCitizen, IoService, IoSettings};
use incasso_store::{Placement, Store};
use incasso_testkit::backends;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const IO_KEY: &str = "io-key-diritti-00000001";
const IBAN: &str = "IT60X0542811101000000123456";
/// A sample debtor IO does not know: messages go by e-mail.
const NOT_ON_IO: u64 = 62;
const PAGE: &str = "/backoffice/notifiche/email";

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
    let sim = incasso_simulator::Simulator::new(Default::default());
    sim.io().configure(IoSettings {
        services: vec![IoService {
            api_key: IO_KEY.into(),
            organization_fiscal_code: ENTE.into(),
            name: "Diritti di segreteria".into(),
            rate_per_second: None,
        }],
        citizens: [(
            DEBTOR.to_string(),
            IoCitizen {
                sender_allowed: true,
                preferred_languages: vec!["it_IT".into()],
            },
        )]
        .into_iter()
        .collect(),
        rate_per_second: 0,
        known_one_in: 0,
        keep_messages: 1000,
    });
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let io_url = format!("http://{}/io/api/v1", sim_listener.local_addr().unwrap());
    tokio::spawn(sim.clone().serve(sim_listener, std::future::pending()));
    let smtp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smtp_url = format!("smtp://{}", smtp.local_addr().unwrap());
    tokio::spawn(sim.clone().serve_smtp(smtp));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut settings = Settings::new(&base);
    settings.io_url = Some(io_url);
    settings.smtp_url = Some(smtp_url);
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

async fn admin(w: &World, name: &str, ente: &str) -> Clerk {
    clerk(
        &w.store,
        &w.base,
        name,
        rights(Role::EnteAdmin, Some(ente), &[], &[]),
    )
    .await
}

/// A published position of DIRITTI for the debtor IO does not know;
/// answers its notice number.
async fn position(store: &Store, iupd: &str) -> String {
    let now = Utc::now();
    let p = sample::position(&PositionSpec {
        ente: ENTE,
        company_name: "Comune di prova",
        iupd: iupd.into(),
        debtor_index: NOT_ON_IO,
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
            true,
        )
        .await
        .unwrap();
    stored.position.options[0]
        .notice_number
        .as_ref()
        .unwrap()
        .as_str()
        .to_string()
}

async fn api(
    w: &World,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}/api/v1{path}", w.base))
        .header("Ocp-Apim-Subscription-Key", key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Ente A's own texts, as (kind, subject).
async fn own_texts(store: &Store, ente: &str) -> Vec<(String, String)> {
    store
        .email_templates(ente)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.kind, t.subject))
        .collect()
}

const GOOD_SUBJECT: &str = "Avviso {{notice_number}} del Comune";
const GOOD_BODY: &str =
    "Gentile {{debtor_name}}, le chiediamo {{amount}} entro il {{due_date}}. Avviso allegato.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_texts_and_time_to_live_from_the_back_office_and_the_api() {
    for backend in backends() {
        let w = world(backend).await;
        let store = &w.store;
        let ada = admin(&w, "ada.admin", ENTE).await;
        let bruno = admin(&w, "bruno.admin", OTHER_ENTE).await;
        let invitation = format!("{PAGE}/INVITATION");

        // Reachable from the notifications' page; incasso's texts shown.
        let overview = ada.get("/backoffice/notifiche").await.text();
        assert!(overview.contains(&format!("href=\"{PAGE}\"")), "{overview}");
        let page = ada.get(PAGE).await;
        assert_eq!(page.status, StatusCode::OK, "{backend:?}: {}", page.text());
        assert!(page.text().contains("id=\"email-RECEIPT\""));
        assert_eq!(page.text().matches("predefinito</span>").count(), 5);

        // Refused beside its field, nothing saved: a subject too short...
        let bad = ada
            .post(&invitation, &[("oggetto", "Ciao"), ("testo", GOOD_BODY)])
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text());
        let html = bad.text();
        assert!(html.contains("id=\"errore-oggetto-INVITATION\""), "{html}");
        assert!(!html.contains("id=\"errore-testo-INVITATION\""));
        assert!(html.contains("aria-invalid=\"true\""));
        assert!(html.contains("value=\"Ciao\""), "what was typed stays");
        // ... and an unknown placeholder in the body.
        let bad = ada
            .post(
                &invitation,
                &[
                    ("oggetto", GOOD_SUBJECT),
                    (
                        "testo",
                        "Gentile {{codice_segreto}}, ecco il suo avviso da pagare.",
                    ),
                ],
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text());
        let html = bad.text();
        assert!(html.contains("id=\"errore-testo-INVITATION\""), "{html}");
        assert!(html.contains("codice_segreto"));
        assert!(own_texts(store, ENTE).await.is_empty(), "{backend:?}");
        // Without CSRF, or of a kind that is not: refused.
        let forged = ada
            .post_raw(
                &invitation,
                &[("oggetto", GOOD_SUBJECT), ("testo", GOOD_BODY)],
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        let r = ada
            .post(
                &format!("{PAGE}/SEGRETO"),
                &[("oggetto", GOOD_SUBJECT), ("testo", GOOD_BODY)],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(own_texts(store, ENTE).await.is_empty());

        // B's administrator writes B's texts, never A's.
        let r = bruno
            .post(
                &invitation,
                &[("oggetto", "Testo di B, ente altro"), ("testo", GOOD_BODY)],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        assert!(own_texts(store, ENTE).await.is_empty());
        assert_eq!(own_texts(store, OTHER_ENTE).await.len(), 1);

        // Saved, and shown as the Ente's.
        let ok = ada
            .post(
                &invitation,
                &[("oggetto", GOOD_SUBJECT), ("testo", GOOD_BODY)],
            )
            .await;
        assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text());
        assert_eq!(
            own_texts(store, ENTE).await,
            [("INVITATION".to_string(), GOOD_SUBJECT.to_string())]
        );
        let html = ada.get(&format!("{PAGE}?esito=salvato")).await.text();
        assert!(html.contains("id=\"esito\""));
        assert!(
            html.contains("Testo dell&#39;ente, salvato il")
                || html.contains("Testo dell'ente, salvato il"),
            "{html}"
        );
        assert!(html.contains("id=\"ripristina-INVITATION\""));
        assert_eq!(html.matches("predefinito</span>").count(), 4);

        // The service's settings: a time to live of 10 s refused beside
        // its field, nothing saved; 7200 s saved and shown.
        let settings_url = format!("/backoffice/notifiche/servizi/{SERVICE}");
        let bad = ada
            .post(
                &settings_url,
                &[
                    ("chiave_io", IO_KEY),
                    ("attivo", "1"),
                    ("invito", "1"),
                    ("validita", "10"),
                ],
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text());
        assert!(
            bad.text().contains("id=\"validita-errore\""),
            "{}",
            bad.text()
        );
        assert!(bad.text().contains("value=\"10\""));
        assert!(
            store
                .notify_settings(ENTE, SERVICE)
                .await
                .unwrap()
                .is_none()
        );
        let bad = ada
            .post(
                &settings_url,
                &[
                    ("chiave_io", IO_KEY),
                    ("attivo", "1"),
                    ("validita", "un giorno"),
                ],
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(bad.text().contains("id=\"validita-errore\""));
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
                &[
                    ("chiave_io", IO_KEY),
                    ("attivo", "1"),
                    ("invito", "1"),
                    ("validita", "7200"),
                ],
            )
            .await;
        assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text());
        assert_eq!(
            store.notify_time_to_live(ENTE, SERVICE).await.unwrap(),
            Some(7200)
        );
        assert!(
            ada.get(&settings_url)
                .await
                .text()
                .contains("value=\"7200\"")
        );

        // A citizen not on IO gets the invitation by e-mail, in the
        // Ente's words.
        let notice = position(store, "EMAIL-1").await;
        let to = format!("contribuente{NOT_ON_IO}@example.org");
        let mut got = Vec::new();
        for _ in 0..400 {
            let _ = notify::fan_out(&w.app).await;
            let _ = notify::send_due(&w.app, Utc::now()).await;
            let _ = incasso_app::mail::send_due(&w.app, Utc::now()).await;
            got = w
                .sim
                .mail()
                .into_iter()
                .filter(|m| m.to.contains(&to))
                .collect();
            if !got.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        assert_eq!(got.len(), 1, "{backend:?}: {:?}", w.sim.mail());
        assert_eq!(got[0].subject, format!("Avviso {notice} del Comune"));
        assert!(got[0].text.contains("42,50"), "{}", got[0].text);

        // Reset: incasso's text again.
        let r = ada.post(&format!("{invitation}/ripristina"), &[]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        assert!(own_texts(store, ENTE).await.is_empty());
        assert_eq!(own_texts(store, OTHER_ENTE).await.len(), 1, "B's stays");

        // The API: GET, a refusal naming its field, PUT, B's key refused.
        let path = format!("/enti/{ENTE}/notifications/email-templates/REMINDER");
        let (s, t) = api(&w, Method::GET, &path, &w.key_a, None).await;
        assert_eq!(s, StatusCode::OK, "{t}");
        assert_eq!(t["own"], false);
        assert!(t["subject"].as_str().unwrap().len() >= 5);
        let (s, e) = api(
            &w,
            Method::PUT,
            &path,
            &w.key_a,
            Some(json!({"subject": "Promemoria {{notice_number}}", "body": "Scade il {{quando}}, per favore paghi."})),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        assert_eq!(e["code"], "BAD_EMAIL_TEMPLATE", "{e}");
        assert_eq!(e["errors"][0]["field"], "body", "{e}");
        assert!(own_texts(store, ENTE).await.is_empty());
        let good = json!({"subject": "Promemoria {{notice_number}}", "body": "Scade il {{due_date}}, per favore paghi {{amount}}."});
        let (s, t) = api(&w, Method::PUT, &path, &w.key_a, Some(good.clone())).await;
        assert_eq!(s, StatusCode::OK, "{t}");
        assert_eq!(t["own"], true);
        assert_eq!(t["subject"], "Promemoria {{notice_number}}");
        let (s, _) = api(
            &w,
            Method::PUT,
            &path,
            &w.key_b,
            Some(json!({"subject": "Testo di B per A", "body": "Un testo che B non deve poter salvare."})),
        )
        .await;
        assert!(
            s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND,
            "{s}"
        );
        let (s, _) = api(&w, Method::GET, &path, &w.key_b, None).await;
        assert!(
            s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND,
            "{s}"
        );
        assert_eq!(
            own_texts(store, ENTE).await,
            [(
                "REMINDER".to_string(),
                "Promemoria {{notice_number}}".to_string()
            )]
        );
        let (s, _) = api(
            &w,
            Method::GET,
            &format!("/enti/{ENTE}/notifications/email-templates/SEGRETO"),
            &w.key_a,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, t) = api(&w, Method::DELETE, &path, &w.key_a, None).await;
        assert_eq!(s, StatusCode::OK, "{t}");
        assert_eq!(t["own"], false);
        assert!(own_texts(store, ENTE).await.is_empty());

        // The time to live in the settings' GET and PUT.
        let settings = format!("/enti/{ENTE}/services/{SERVICE}/notifications/settings");
        let (s, t) = api(&w, Method::GET, &settings, &w.key_a, None).await;
        assert_eq!(s, StatusCode::OK, "{t}");
        assert_eq!(t["timeToLive"], 7200, "{t}");
        let (s, e) = api(
            &w,
            Method::PUT,
            &settings,
            &w.key_a,
            Some(json!({"enabled": true, "inviteOnPublish": true, "timeToLive": 10})),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        assert_eq!(e["code"], "BAD_TIME_TO_LIVE");
        assert_eq!(e["errors"][0]["field"], "timeToLive", "{e}");
        assert_eq!(
            store.notify_time_to_live(ENTE, SERVICE).await.unwrap(),
            Some(7200)
        );
        let (s, t) = api(
            &w,
            Method::PUT,
            &settings,
            &w.key_a,
            Some(json!({"enabled": true, "inviteOnPublish": true, "timeToLive": 86400})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{t}");
        assert_eq!(t["timeToLive"], 86400);
        assert_eq!(
            store.notify_time_to_live(ENTE, SERVICE).await.unwrap(),
            Some(86400)
        );
    }
}
