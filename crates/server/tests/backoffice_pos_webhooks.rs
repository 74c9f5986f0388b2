//! The Ente administrator's pages for POS terminals and webhooks, and the
//! POS anomalies on the desk's day (issue 18), over HTTP on both
//! databases. Each action works and changes what it says; bad input is
//! refused next to its field with nothing written; a form without its
//! CSRF token is refused; a counter clerk (no administrator) and Ente B's
//! administrator are refused and change nothing of Ente A's.

use crate::common::app;
use crate::common::backoffice;
use crate::common::desk_world;

use app::gpd::{ENTE, OTHER_ENTE, iuv, nav, position};
use app::spawn_app;
use backoffice::{Clerk, clerk, rights};
use chrono::Utc;
use desk_world::{DESK, desk_world};
use incasso_core::access::Role;
use incasso_store::Store;
use incasso_store::desks::DeskRecord;
use incasso_store::pos::{self as st, NewPosSession, PosChange, PosOpen};
use incasso_testkit::backends;
use reqwest::{Method, StatusCode};

const DESK_2: &str = "SPORTELLO_02";

/// A form's fields, and the status, error field id and words it gets.
type BadInput<'a> = (&'a [(&'a str, &'a str)], StatusCode, &'a str, &'a str);

async fn admin(store: &Store, base: &str, name: &str, ente: &str) -> Clerk {
    clerk(
        store,
        base,
        name,
        rights(Role::EnteAdmin, Some(ente), &[], &[]),
    )
    .await
}

async fn counter_clerk(store: &Store, base: &str, name: &str) -> Clerk {
    clerk(
        store,
        base,
        name,
        rights(Role::CounterClerk, Some(ENTE), &[], &["ANAG"]),
    )
    .await
}

/// The terminal `id` of Ente A: (description, desk, status).
async fn terminal(store: &Store, id: &str) -> Option<(String, Option<String>, String)> {
    store
        .pos_terminal(ENTE, id)
        .await
        .unwrap()
        .map(|t| (t.description, t.desk, t.status))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_registers_binds_and_disables_terminals() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        desk_world(&app).await;
        let store = &app.store;
        store
            .create_desk(&DeskRecord {
                ente: ENTE.into(),
                code: DESK_2.into(),
                name: "Sportello tributi".into(),
                office: None,
                created_at: Utc::now(),
            })
            .await
            .unwrap();
        let base = app.server.base.as_str();
        let ada = admin(store, base, "ada.admin", ENTE).await;
        let bruno = admin(store, base, "bruno.admin", OTHER_ENTE).await;
        let lucia = counter_clerk(store, base, "lucia.sportello").await;

        let page = ada.get("/backoffice/terminali").await;
        assert_eq!(page.status, StatusCode::OK, "{backend:?}");
        let html = page.text();
        assert!(html.contains("Nessun terminale registrato"), "{html}");
        assert!(
            html.contains("href=\"/backoffice/terminali\""),
            "in the menu"
        );
        let home = ada.get("/backoffice/").await.text();
        assert!(home.contains("href=\"/backoffice/terminali\""));
        assert!(home.contains("href=\"/backoffice/webhook\""));

        // Without the CSRF token: refused, nothing written.
        let fields = [
            ("terminale", "POS00001"),
            ("descrizione", "POS dello sportello"),
            ("sportello", DESK),
        ];
        let r = ada.post_raw("/backoffice/terminali", &fields).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(terminal(store, "POS00001").await, None, "{backend:?}");

        let r = ada.post("/backoffice/terminali", &fields).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        assert_eq!(
            r.location.as_deref(),
            Some("/backoffice/terminali?esito=registrato")
        );
        assert_eq!(
            terminal(store, "POS00001").await,
            Some((
                "POS dello sportello".into(),
                Some(DESK.into()),
                "ACTIVE".into()
            ))
        );
        let html = ada
            .get("/backoffice/terminali?esito=registrato")
            .await
            .text();
        assert!(html.contains("id=\"terminale-POS00001\""), "{html}");
        assert!(html.contains("Sportello polifunzionale (SPORTELLO_01)"));
        assert!(html.contains("Attivo"));

        // Bad input: told next to its field, nothing written.
        let cases: [BadInput; 4] = [
            (
                &[
                    ("terminale", "POS00001"),
                    ("descrizione", "Un altro"),
                    ("sportello", ""),
                ],
                StatusCode::CONFLICT,
                "terminale-errore",
                "già registrato",
            ),
            (
                &[
                    ("terminale", "POS1"),
                    ("descrizione", "Corto"),
                    ("sportello", ""),
                ],
                StatusCode::BAD_REQUEST,
                "terminale-errore",
                "8 caratteri",
            ),
            (
                &[
                    ("terminale", "POS00002"),
                    ("descrizione", "  "),
                    ("sportello", ""),
                ],
                StatusCode::BAD_REQUEST,
                "descrizione-errore",
                "descrizione del terminale è obbligatoria",
            ),
            (
                &[
                    ("terminale", "POS00003"),
                    ("descrizione", "Fantasma"),
                    ("sportello", "NESSUNO"),
                ],
                StatusCode::NOT_FOUND,
                "sportello-errore",
                "Sportello NESSUNO non trovato",
            ),
        ];
        for (fields, status, id, words) in cases {
            let r = ada.post("/backoffice/terminali", fields).await;
            let html = r.text();
            assert_eq!(r.status, status, "{backend:?} {fields:?}: {html}");
            assert!(html.contains(&format!("id=\"{id}\"")), "{fields:?}: {html}");
            assert!(html.contains(words), "{fields:?}: {html}");
            assert!(html.contains("aria-invalid=\"true\""));
        }
        assert_eq!(
            terminal(store, "POS00001").await.unwrap().0,
            "POS dello sportello"
        );
        for id in ["POS1", "POS00002", "POS00003"] {
            assert_eq!(terminal(store, id).await, None, "{backend:?} {id}");
        }

        // Another Ente's terminal id: refused for A, B's terminal kept.
        let r = bruno
            .post(
                "/backoffice/terminali",
                &[("terminale", "POSB0001"), ("descrizione", "POS di B")],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let r = ada
            .post(
                "/backoffice/terminali",
                &[("terminale", "POSB0001"), ("descrizione", "Preso")],
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert!(r.text().contains("altro ente"), "{}", r.text());
        let b = store.pos_terminal(OTHER_ENTE, "POSB0001").await.unwrap();
        assert_eq!(b.unwrap().description, "POS di B");
        // ...nor bound, nor disabled by A's administrator.
        let r = ada
            .post(
                "/backoffice/terminali/POSB0001/sportello",
                &[("sportello", DESK)],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
        assert!(r.text().contains("id=\"errore-azione\""));
        let r = ada
            .post("/backoffice/terminali/POSB0001/stato", &[("attivo", "0")])
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let b = store.pos_terminal(OTHER_ENTE, "POSB0001").await.unwrap();
        let b = b.unwrap();
        assert_eq!((b.desk, b.status.as_str()), (None, "ACTIVE"));
        // B's administrator does not see or touch A's.
        assert!(
            !bruno
                .get("/backoffice/terminali")
                .await
                .text()
                .contains("id=\"terminale-POS00001\"")
        );
        let r = bruno
            .post("/backoffice/terminali/POS00001/stato", &[("attivo", "0")])
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(terminal(store, "POS00001").await.unwrap().2, "ACTIVE");

        // Moved to the other desk, off every desk, onto an unknown one.
        let r = ada
            .post(
                "/backoffice/terminali/POS00001/sportello",
                &[("sportello", DESK_2)],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        assert_eq!(
            terminal(store, "POS00001").await.unwrap().1.as_deref(),
            Some(DESK_2)
        );
        let r = ada
            .post(
                "/backoffice/terminali/POS00001/sportello",
                &[("sportello", "NESSUNO")],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(
            terminal(store, "POS00001").await.unwrap().1.as_deref(),
            Some(DESK_2)
        );
        let r = ada
            .post_raw(
                "/backoffice/terminali/POS00001/sportello",
                &[("sportello", ""), ("csrf", "sbagliato")],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = ada
            .post(
                "/backoffice/terminali/POS00001/sportello",
                &[("sportello", "")],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(terminal(store, "POS00001").await.unwrap().1, None);

        // Off, and on again.
        let r = ada
            .post_raw("/backoffice/terminali/POS00001/stato", &[("attivo", "0")])
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(terminal(store, "POS00001").await.unwrap().2, "ACTIVE");
        let r = ada
            .post("/backoffice/terminali/POS00001/stato", &[("attivo", "0")])
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(terminal(store, "POS00001").await.unwrap().2, "DISABLED");
        let html = ada
            .get("/backoffice/terminali?esito=disattivato")
            .await
            .text();
        assert!(html.contains("Disattivato") && html.contains("Riattiva"));
        let r = ada
            .post("/backoffice/terminali/POS00001/stato", &[("attivo", "1")])
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(terminal(store, "POS00001").await.unwrap().2, "ACTIVE");

        // A counter clerk: no menu entry, no forms, every change refused.
        let home = lucia.get("/backoffice/").await.text();
        assert!(!home.contains("href=\"/backoffice/terminali\""));
        assert!(!home.contains("href=\"/backoffice/webhook\""));
        let html = lucia.get("/backoffice/terminali").await.text();
        assert!(!html.contains("Registra il terminale"), "{html}");
        let r = lucia
            .post(
                "/backoffice/terminali",
                &[("terminale", "POS00009"), ("descrizione", "Mio")],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(terminal(store, "POS00009").await, None);
        let r = lucia
            .post("/backoffice/terminali/POS00001/stato", &[("attivo", "0")])
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = lucia
            .post(
                "/backoffice/terminali/POS00001/sportello",
                &[("sportello", DESK)],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(
            terminal(store, "POS00001").await,
            Some(("POS dello sportello".into(), None, "ACTIVE".into()))
        );
    }
}

/// The value of `name="{name}" value="..."` or the text of `id="{id}">`.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let at = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {html}"))
        + start.len();
    &html[at..at + html[at..].find(end).unwrap()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_manages_webhooks_and_retries_a_failed_delivery() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let store = &app.store;
        let base = app.server.base.as_str();
        let ada = admin(store, base, "ada.admin", ENTE).await;
        let bruno = admin(store, base, "bruno.admin", OTHER_ENTE).await;
        let lucia = counter_clerk(store, base, "lucia.sportello").await;

        let html = ada.get("/backoffice/webhook").await.text();
        assert!(html.contains("Nessun endpoint registrato"), "{html}");

        // Bad input and a missing token: nothing registered.
        let r = ada
            .post(
                "/backoffice/webhook",
                &[("url", "http://gestionale.example.it/hook")],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{backend:?}");
        let html = r.text();
        assert!(
            html.contains("id=\"url-errore\"") && html.contains("https"),
            "{html}"
        );
        let long = "x".repeat(201);
        let r = ada
            .post(
                "/backoffice/webhook",
                &[
                    ("url", "https://gestionale.example.it/hook"),
                    ("descrizione", &long),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.text().contains("id=\"descrizione-errore\""));
        // The receiver: a closed port here, so every attempt fails.
        let url = "http://127.0.0.1:9/incasso/eventi";
        let r = ada
            .post_raw("/backoffice/webhook", &[("url", url), ("descrizione", "x")])
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = lucia
            .post("/backoffice/webhook", &[("url", url), ("descrizione", "x")])
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(store.webhook_endpoints(ENTE).await.unwrap().is_empty());
        assert_eq!(
            lucia.get("/backoffice/webhook").await.status,
            StatusCode::FORBIDDEN
        );

        // Registered: the secret once.
        let r = ada
            .post(
                "/backoffice/webhook",
                &[("url", url), ("descrizione", "Gestionale")],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let html = r.text();
        let secret = between(&html, "id=\"segreto\">", "<").to_string();
        assert!(secret.starts_with("whsec_"), "{html}");
        let endpoints = store.webhook_endpoints(ENTE).await.unwrap();
        assert_eq!(endpoints.len(), 1);
        let id = endpoints[0].id;
        let page = format!("/backoffice/webhook/{id}");
        let list = ada.get("/backoffice/webhook").await.text();
        assert!(list.contains(url) && list.contains("Gestionale") && list.contains("Attivo"));
        assert!(!list.contains(&secret));
        assert!(!ada.get(&page).await.text().contains(&secret));
        let r = ada.post("/backoffice/webhook", &[("url", url)]).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert!(r.text().contains("id=\"url-errore\""));
        assert_eq!(store.webhook_endpoints(ENTE).await.unwrap().len(), 1);
        // Another Ente's administrator: not theirs.
        assert_eq!(bruno.get(&page).await.status, StatusCode::NOT_FOUND);
        let r = bruno
            .post(&format!("{page}/stato"), &[("attivo", "0")])
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(store.webhook_endpoint(ENTE, id).await.unwrap().active);

        // A position cancelled: its event goes to the endpoint, fails.
        let iupd = "WH-1";
        let created = app
            .server
            .call(
                Method::POST,
                &format!("/gpd/v1/organizations/{ENTE}/debtpositions?toPublish=true"),
                Some(&app.key_a),
                Some(&position(iupd, &[iuv(1)])),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        let cancelled = app
            .server
            .call(
                Method::POST,
                &format!("/gpd/v1/organizations/{ENTE}/debtpositions/{iupd}/invalidate"),
                Some(&app.key_a),
                None,
            )
            .await;
        assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
        let mut tries = 0;
        let delivery = loop {
            let d = store.webhook_deliveries(ENTE, id, 10).await.unwrap();
            if let Some(d) = d.into_iter().next() {
                break d;
            }
            tries += 1;
            assert!(tries < 100, "{backend:?}: no delivery");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        // Given up (as after three days): claimed past every lease and
        // marked failed.
        let later = Utc::now() + chrono::Duration::days(4);
        let claimed = store
            .claim_due_deliveries(later, chrono::Duration::seconds(60), 10)
            .await
            .unwrap();
        let mine = claimed.iter().find(|c| c.id == delivery.id).unwrap();
        assert!(
            store
                .delivery_not_delivered(
                    mine.id,
                    mine.attempt,
                    Some(500),
                    "errore del gestionale",
                    None
                )
                .await
                .unwrap()
        );
        let html = ada.get(&page).await.text();
        assert!(html.contains("Annullata"), "{html}");
        let grouped: Vec<String> = nav(1)
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        assert!(html.contains(&grouped.join(" ")), "{html}");
        assert!(html.contains("Fallita") && html.contains("HTTP 500: errore del gestionale"));
        let retry = format!("{page}/consegne/{}/riprova", delivery.id);
        assert!(html.contains(&format!("action=\"{retry}\"")), "{html}");
        let status = |s: &Store| {
            let s = s.clone();
            async move {
                s.webhook_deliveries(ENTE, id, 10).await.unwrap()[0]
                    .status
                    .clone()
            }
        };
        let r = ada.post_raw(&retry, &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = lucia.post(&retry, &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = bruno.post(&retry, &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(status(store).await, "FAILED", "{backend:?}");
        let r = ada.post(&retry, &[]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        assert_eq!(
            r.location.as_deref(),
            Some(format!("{page}?esito=riprova").as_str())
        );
        assert_ne!(status(store).await, "FAILED", "{backend:?}");
        // Not failed any more: a second retry is refused on the page.
        let r = ada.post(&retry, &[]).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert!(r.text().contains("id=\"errore-azione\""));

        // Off and on.
        let r = ada.post(&format!("{page}/stato"), &[("attivo", "0")]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert!(!store.webhook_endpoint(ENTE, id).await.unwrap().active);
        assert!(ada.get(&page).await.text().contains("Disattivato"));
        let r = ada.post(&format!("{page}/stato"), &[("attivo", "1")]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert!(store.webhook_endpoint(ENTE, id).await.unwrap().active);

        // Deleted after the confirmation (and not without its token).
        let confirm = ada.get(&format!("{page}/elimina")).await;
        assert_eq!(confirm.status, StatusCode::OK);
        assert!(confirm.text().contains("id=\"conferma-elimina\""));
        assert_eq!(
            bruno.get(&format!("{page}/elimina")).await.status,
            StatusCode::NOT_FOUND
        );
        let r = ada.post_raw(&format!("{page}/elimina"), &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = bruno.post(&format!("{page}/elimina"), &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = lucia.post(&format!("{page}/elimina"), &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(store.webhook_endpoints(ENTE).await.unwrap().len(), 1);
        let r = ada.post(&format!("{page}/elimina"), &[]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert!(store.webhook_endpoints(ENTE).await.unwrap().is_empty());
        assert!(
            ada.get("/backoffice/webhook?esito=eliminato")
                .await
                .text()
                .contains("Endpoint eliminato")
        );
    }
}

/// A session of the desk's terminal holding `notice`, authorized and
/// flagged: its receipt never came.
async fn flagged_session(store: &Store, id: &str, notice: &str) {
    let opened = store
        .pos_open_session(
            &NewPosSession {
                id: id.into(),
                ente: ENTE.into(),
                terminal_id: "SIMPOS01".into(),
                desk: DESK.into(),
                operator: "lucia.sportello".into(),
                correlation_id: format!("corr-{id}"),
                notices: vec![(notice.into(), format!("IUPD-{id}"), 1600)],
            },
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(opened, PosOpen::Opened);
    assert!(
        store
            .pos_change(
                id,
                &[st::OPENING],
                &PosChange {
                    state: Some(st::AUTHORIZED),
                    anomaly: Some("RECEIPT_MISSING".into()),
                    ..Default::default()
                },
                Utc::now(),
            )
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desk_shows_flagged_pos_sessions_and_an_administrator_releases_them() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        desk_world(&app).await;
        let store = &app.store;
        store
            .pos_register_terminal(ENTE, "SIMPOS01", "POS", Some(DESK), Utc::now())
            .await
            .unwrap();
        let notice = nav(7);
        flagged_session(store, "S-1", &notice).await;
        let base = app.server.base.as_str();
        let ada = admin(store, base, "ada.admin", ENTE).await;
        let bruno = admin(store, base, "bruno.admin", OTHER_ENTE).await;
        let lucia = counter_clerk(store, base, "lucia.sportello").await;
        let day = format!("/backoffice/sportello/{DESK}/giornata");
        let release = format!("/backoffice/sportello/{DESK}/pos/S-1/rilascia");
        let held = |s: &Store| {
            let s = s.clone();
            async move {
                let x = s.pos_session(ENTE, "S-1").await.unwrap().unwrap();
                (x.state, x.notices[0].open)
            }
        };

        // The clerk sees it from the desk and what to do on the day, but
        // may not release it.
        let desk_page = lucia
            .get(&format!("/backoffice/sportello/{DESK}"))
            .await
            .text();
        assert!(desk_page.contains("id=\"pos-avviso\""), "{desk_page}");
        assert!(desk_page.contains(&format!("href=\"{day}\"")));
        let html = lucia.get(&day).await.text();
        assert!(html.contains("id=\"pos-anomalie\""), "{backend:?}: {html}");
        assert!(html.contains("Autorizzato ma senza ricevuta"));
        assert!(html.contains("chiedere all'amministratore dell'ente"));
        assert!(!html.contains(&release), "{html}");
        assert_eq!(
            lucia.post(&release, &[]).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(held(store).await, ("AUTHORIZED".to_string(), true));
        // Another Ente's administrator: no such desk.
        assert_eq!(bruno.get(&release).await.status, StatusCode::NOT_FOUND);
        assert_eq!(
            bruno.post(&release, &[]).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(held(store).await, ("AUTHORIZED".to_string(), true));

        // The administrator: the link, the confirmation, the release.
        let html = ada.get(&day).await.text();
        assert!(html.contains(&format!("href=\"{release}\"")), "{html}");
        let confirm = ada.get(&release).await;
        assert_eq!(confirm.status, StatusCode::OK);
        let html = confirm.text();
        assert!(
            html.contains("id=\"conferma-rilascio\"")
                && html.contains("non</strong> è stata addebitata")
        );
        assert_eq!(
            ada.post_raw(&release, &[]).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(held(store).await, ("AUTHORIZED".to_string(), true));
        let r = ada.post(&release, &[]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        assert_eq!(
            r.location.as_deref(),
            Some(format!("{day}?esito=rilasciata").as_str())
        );
        assert_eq!(held(store).await, ("FAILED".to_string(), false));
        let s = store.pos_session(ENTE, "S-1").await.unwrap().unwrap();
        assert_eq!(s.anomaly.as_deref(), Some("RELEASED_BY_OPERATOR"));
        let html = ada.get(&format!("{day}?esito=rilasciata")).await.text();
        assert!(!html.contains("id=\"pos-anomalie\""), "{html}");
        assert!(html.contains("Avvisi liberati"));
        let desk_page = ada
            .get(&format!("/backoffice/sportello/{DESK}"))
            .await
            .text();
        assert!(!desk_page.contains("id=\"pos-avviso\""), "{desk_page}");
        // Nothing left to release.
        assert_eq!(ada.post(&release, &[]).await.status, StatusCode::NOT_FOUND);
        // The notice can be held again by a new session.
        flagged_session(store, "S-2", &notice).await;
    }
}
