//! The citizen's personal area (issue 17), over HTTP on both databases:
//! sign-in with SPID/CIE through the simulator's provider from an Ente's
//! portal, the bacheca of what the person owes at BOTH Enti and nothing of
//! anyone else, notices and receipts only to their owner, the cart, the
//! session's timeouts, sign-out and its CSRF check, tampered or replayed
//! answers refused; and the back office's page of the portal's style.

use crate::common::app;
use crate::common::backoffice;
use crate::common::portal;
use crate::common::portal_citizen_world as world;

use app::gpd::{ENTE, OTHER_ENTE};
use chrono::Utc;
use incasso_app::portal::citizen as citizen_use_case;
use incasso_app::{Caller, CitizenIdentity, Clock};
use incasso_core::access::Role;
use incasso_testkit::backends;
use portal::Visitor;
use reqwest::StatusCode;
use world::{ANNA, MARIO, param, sign_in, to_provider_and_back};

fn cookie_set<'a>(p: &'a portal::Page, name: &str) -> Option<&'a str> {
    p.headers
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap())
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// GET `url` with `cookie` only, no redirect followed.
async fn get_with_cookie(url: &str, cookie: &str) -> portal::Page {
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    portal::Page {
        status: resp.status(),
        headers: resp.headers().clone(),
        body: resp.text().await.unwrap(),
    }
}

/// The audit log's outcomes of `action` (no Ente), newest first.
async fn outcomes(store: &incasso_store::Store, action: &str) -> Vec<(String, String)> {
    store
        .audit_events(None, Some(action), None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| (e.actor, e.outcome))
        .collect()
}

#[tokio::test]
async fn a_citizen_sees_what_they_owe_at_both_enti_and_nothing_of_anyone_else() {
    for backend in backends() {
        eprintln!("on {backend:?}");
        let w = world::world(backend).await;
        // Mario: a single payment and a plan of three installments at Ente
        // A, one at Ente B (paid below), a draft nobody may see yet.
        let tari = w
            .position(ENTE, "MARIO-TARI", MARIO, 12_345, 0, false)
            .await;
        let plan = w
            .position(ENTE, "MARIO-RATE", MARIO, 30_000, 3, false)
            .await;
        let ticket = w
            .position(OTHER_ENTE, "MARIO-TICKET", MARIO, 3_650, 0, false)
            .await;
        let other_b = w
            .position(OTHER_ENTE, "MARIO-VISITA", MARIO, 2_500, 0, false)
            .await;
        let draft = w.position(ENTE, "MARIO-BOZZA", MARIO, 999, 0, true).await;
        // Anna, at both Enti: one paid.
        let anna_a = w.position(ENTE, "ANNA-TARI", ANNA, 45_600, 0, false).await;
        let anna_b = w
            .position(OTHER_ENTE, "ANNA-TICKET", ANNA, 1_800, 0, false)
            .await;
        w.pay(OTHER_ENTE, &ticket.navs[0]).await;
        w.pay(OTHER_ENTE, &anna_b.navs[0]).await;
        // The plan's first installment paid: the single solution goes.
        w.pay(ENTE, &plan.navs[1]).await;

        let v = Visitor::new(&w.base);
        // Anonymous: the area sends to sign-in, and shows nobody's data.
        let anon = v.get(&format!("/portale/{ENTE}/area-personale")).await;
        assert_eq!(anon.status, StatusCode::SEE_OTHER);
        assert_eq!(
            anon.location(),
            Some(format!("/portale/{ENTE}/accedi").as_str())
        );
        let anon_pdf = v
            .get(&format!(
                "/portale/{ENTE}/area-personale/avviso/{ENTE}/{}",
                tari.navs[0]
            ))
            .await;
        assert_eq!(anon_pdf.status, StatusCode::SEE_OTHER);

        // Mario signs in from Ente A's portal.
        let area = sign_in(&v, &w.sim_url, ENTE, MARIO.0).await;
        let session = v.cookie("incasso_cittadino").expect("the session's cookie");
        assert_eq!(session.len(), 64);
        let page = v.get(&area).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let html = &page.body;
        assert!(html.contains("Mario Rossi") && html.contains(MARIO.0));
        assert!(html.contains("data-element=\"page-name\""));
        assert!(html.contains("data-element=\"breadcrumb\""));
        assert!(html.contains("data-element=\"feedback\""));
        // What is owed at both Enti, with every installment of the plan.
        let enti_names = (
            w.store.get_ente(ENTE).await.unwrap().name,
            w.store.get_ente(OTHER_ENTE).await.unwrap().name,
        );
        assert!(html.contains(&enti_names.0) && html.contains(&enti_names.1));
        let paid_at = html.find("id=\"pagati\"").unwrap();
        let (due, paid) = html.split_at(paid_at);
        for made in [&tari, &plan, &other_b] {
            assert!(due.contains(&made.description), "{}", made.description);
        }
        for nav in [
            &tari.navs[0],
            &other_b.navs[0],
            &plan.navs[2],
            &plan.navs[3],
        ] {
            assert!(due.contains(nav.as_str()), "{nav}");
        }
        assert!(due.contains("123,45 €") && due.contains("rata 3 di 3"));
        assert!(due.contains("Pagato in parte"));
        assert!(
            !html.contains(plan.navs[0].as_str()),
            "a plan's single solution once an installment is paid"
        );
        assert!(paid.contains(&format!("/area-personale/ricevuta/{ENTE}/{}", plan.iuv(1))));
        // Paid at Ente B: in the payments made, with its receipt.
        assert!(paid.contains(&ticket.description));
        assert!(paid.contains(&format!(
            "/area-personale/ricevuta/{OTHER_ENTE}/{}",
            ticket.iuv(0)
        )));
        assert!(!due.contains(&ticket.navs[0]), "paid, not due");
        // Nothing of Anna's, nor the draft.
        for other in [&anna_a, &anna_b, &draft] {
            assert!(!html.contains(&other.description), "{}", other.description);
            assert!(!html.contains(other.navs[0].as_str()));
        }
        assert!(!html.contains(ANNA.0) && !html.contains("Anna"));

        // The notice PDF of his own notice, not of Anna's: the same answer
        // as a notice that does not exist.
        let pdf = v
            .get(&format!(
                "/portale/{ENTE}/area-personale/avviso/{ENTE}/{}",
                tari.navs[0]
            ))
            .await;
        assert_eq!(pdf.status, StatusCode::OK, "{}", pdf.body);
        assert_eq!(pdf.headers["content-type"], "application/pdf");
        assert!(pdf.body.starts_with("%PDF"));
        let not_his = v
            .get(&format!(
                "/portale/{ENTE}/area-personale/avviso/{ENTE}/{}",
                anna_a.navs[0]
            ))
            .await;
        let unknown = v
            .get(&format!(
                "/portale/{ENTE}/area-personale/avviso/{ENTE}/301999999999999999"
            ))
            .await;
        assert_eq!(not_his.status, StatusCode::NOT_FOUND);
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        assert!(!not_his.body.contains("Anna"));

        // His receipt downloads; Anna's does not, signed in or not.
        let receipt = v
            .get(&format!(
                "/portale/{ENTE}/area-personale/ricevuta/{OTHER_ENTE}/{}",
                ticket.iuv(0)
            ))
            .await;
        assert_eq!(receipt.status, StatusCode::OK, "{}", receipt.body);
        assert_eq!(receipt.headers["content-type"], "application/pdf");
        assert!(receipt.body.starts_with("%PDF"));
        let hers = v
            .get(&format!(
                "/portale/{ENTE}/area-personale/ricevuta/{OTHER_ENTE}/{}",
                anna_b.iuv(0)
            ))
            .await;
        assert_eq!(hers.status, StatusCode::NOT_FOUND, "{}", hers.body);
        let anon_receipt = Visitor::new(&w.base)
            .get(&format!(
                "/portale/{ENTE}/area-personale/ricevuta/{OTHER_ENTE}/{}",
                ticket.iuv(0)
            ))
            .await;
        assert_eq!(anon_receipt.status, StatusCode::SEE_OTHER);

        // Anna, signed in, sees hers and none of Mario's.
        let va = Visitor::new(&w.base);
        let area_b = sign_in(&va, &w.sim_url, OTHER_ENTE, ANNA.0).await;
        let hers = va.get(&area_b).await.body;
        assert!(hers.contains(&anna_a.description) && hers.contains(&anna_b.description));
        for his in [&tari, &plan, &ticket, &other_b] {
            assert!(!hers.contains(&his.description), "{}", his.description);
        }
        let her_receipt = va
            .get(&format!(
                "/portale/{OTHER_ENTE}/area-personale/ricevuta/{OTHER_ENTE}/{}",
                anna_b.iuv(0)
            ))
            .await;
        assert_eq!(her_receipt.status, StatusCode::OK);

        // Paga: his own notice goes to the cart, Anna's does not.
        v.get(&area).await;
        let pay = v
            .post(
                &format!("/portale/{ENTE}/area-personale/paga"),
                &[("ente", OTHER_ENTE), ("avviso", &other_b.navs[0])],
            )
            .await;
        assert_eq!(pay.status, StatusCode::SEE_OTHER, "{}", pay.body);
        assert_eq!(
            pay.location(),
            Some(format!("/portale/{ENTE}/carrello").as_str())
        );
        let cart_id = v.cookie("incasso_carrello").expect("a cart");
        let items = incasso_app::portal::cart::items(&w.app.ctx(Caller::Public), &cart_id)
            .await
            .unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].nav, other_b.navs[0]);
        v.get(&area).await;
        let theft = v
            .post(
                &format!("/portale/{ENTE}/area-personale/paga"),
                &[("ente", ENTE), ("avviso", &anna_a.navs[0])],
            )
            .await;
        assert_eq!(theft.status, StatusCode::NOT_FOUND);
        // Without the session's token: refused.
        let forged = v
            .post_raw(
                &format!("/portale/{ENTE}/area-personale/paga"),
                &[("ente", ENTE), ("avviso", &tari.navs[0]), ("csrf", "x")],
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);

        // The audit log names him, but not by his whole fiscal code.
        let signed = outcomes(&w.store, "citizen.sign_in_spid").await;
        assert!(signed.contains(&("citizen:RSSMRA**********".into(), "OK".into())));
        assert!(signed.iter().all(|(a, _)| !a.contains(MARIO.0)));
    }
}

#[tokio::test]
async fn sign_out_needs_the_session_token_and_ends_the_session() {
    for backend in backends() {
        eprintln!("on {backend:?}");
        let w = world::world(backend).await;
        let v = Visitor::new(&w.base);
        let area = sign_in(&v, &w.sim_url, ENTE, MARIO.0).await;
        let set_cookie = {
            // The session's cookie as set: HttpOnly, SameSite=Lax, the
            // portal's path, Secure on this machine as the back office's.
            let again = Visitor::new(&w.base);
            let callback = to_provider_and_back(&again, &w.sim_url, ENTE, MARIO.0, "entra").await;
            let signed = again.get(&callback).await;
            cookie_set(&signed, "incasso_cittadino")
                .unwrap()
                .to_string()
        };
        for part in ["HttpOnly", "SameSite=Lax", "Path=/portale", "Secure"] {
            assert!(set_cookie.contains(part), "{part}: {set_cookie}");
        }
        let page = v.get(&area).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.body
                .contains(&format!("action=\"/portale/{ENTE}/esci\""))
        );
        // A form from elsewhere (no token, another token): refused, still
        // signed in.
        for token in [
            "",
            "0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            let forged = v
                .post_raw(&format!("/portale/{ENTE}/esci"), &[("csrf", token)])
                .await;
            assert_eq!(forged.status, StatusCode::FORBIDDEN, "{token:?}");
        }
        // Another visitor's valid form token is not this session's.
        let stranger = Visitor::new(&w.base);
        stranger.get(&format!("/portale/{ENTE}/")).await;
        let their_token = stranger.cookie("incasso_portale").unwrap();
        let crossed = v
            .post_raw(&format!("/portale/{ENTE}/esci"), &[("csrf", &their_token)])
            .await;
        assert_eq!(crossed.status, StatusCode::FORBIDDEN);
        assert_eq!(v.get(&area).await.status, StatusCode::OK);

        let session = v.cookie("incasso_cittadino").unwrap();
        v.get(&area).await;
        let out = v.post(&format!("/portale/{ENTE}/esci"), &[]).await;
        assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.body);
        assert_eq!(
            out.location(),
            Some(format!("/portale/{ENTE}/uscita").as_str())
        );
        assert!(
            v.cookie("incasso_cittadino").is_none(),
            "the cookie is dropped"
        );
        let bye = v.get(&format!("/portale/{ENTE}/uscita")).await;
        assert_eq!(bye.status, StatusCode::OK);
        assert!(bye.body.contains("Uscita effettuata"));
        assert!(!bye.body.contains("Mario Rossi"));
        assert_eq!(v.get(&area).await.status, StatusCode::SEE_OTHER);
        // The old token (kept by an attacker) opens nothing any more.
        assert!(
            citizen_use_case::session(&w.app, &session).await.is_err(),
            "the session is gone from the store"
        );
        let replay = get_with_cookie(
            &format!("{}{area}", w.base),
            &format!("incasso_cittadino={session}"),
        )
        .await;
        assert_eq!(replay.status, StatusCode::SEE_OTHER);
        let signed_out = outcomes(&w.store, "citizen.sign_out").await;
        assert_eq!(signed_out[0].1, "OK");
    }
}

#[tokio::test]
async fn tampered_replayed_or_foreign_answers_are_refused() {
    for backend in backends() {
        eprintln!("on {backend:?}");
        let w = world::world(backend).await;
        let v = Visitor::new(&w.base);
        let callback = to_provider_and_back(&v, &w.sim_url, ENTE, MARIO.0, "entra").await;
        assert!(callback.starts_with(&format!("{}/portale/spid/callback?", w.base)));
        assert!(!callback.contains(ENTE), "no Ente in the provider's answer");
        let state = param(&callback, "state").unwrap();
        let code = param(&callback, "code").unwrap();

        // The state changed; the answer in another browser (login CSRF);
        // no state at all.
        // (Sent from a copy of the browser: a refusal drops its state
        // cookie, and the genuine answer is still to come.)
        let tampered = get_with_cookie(
            &format!(
                "{}/portale/spid/callback?code={code}&state={state}x",
                w.base
            ),
            &format!("incasso_cittadino_spid={state}"),
        )
        .await;
        assert_eq!(
            tampered.status,
            StatusCode::BAD_REQUEST,
            "{}",
            tampered.body
        );
        assert!(
            tampered
                .body
                .contains("scaduta o non è partita da questo browser")
        );
        assert!(cookie_set(&tampered, "incasso_cittadino").is_none());
        let stranger = Visitor::new(&w.base).get(&callback).await;
        assert_eq!(stranger.status, StatusCode::BAD_REQUEST);
        assert!(cookie_set(&stranger, "incasso_cittadino").is_none());
        let none = Visitor::new(&w.base)
            .get(&format!("{}/portale/spid/callback", w.base))
            .await;
        assert_eq!(none.status, StatusCode::BAD_REQUEST);

        // None of these spoilt the request: the genuine answer signs in,
        // once; replayed (with its state, as an eavesdropper would have
        // it), it is refused.
        let genuine = v.get(&callback).await;
        assert_eq!(genuine.status, StatusCode::SEE_OTHER, "{}", genuine.body);
        assert!(v.cookie("incasso_cittadino").is_some());
        let replayed = get_with_cookie(&callback, &format!("incasso_cittadino_spid={state}")).await;
        assert_eq!(replayed.status, StatusCode::BAD_REQUEST);
        assert!(cookie_set(&replayed, "incasso_cittadino").is_none());

        // A request the back office started cannot finish at the portal.
        let bo = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("{}/backoffice/spid", w.base))
            .send()
            .await
            .unwrap();
        let bo_state = param(bo.headers()["location"].to_str().unwrap(), "state").unwrap();
        let foreign = get_with_cookie(
            &format!("{}/portale/spid/callback?code=x&state={bo_state}", w.base),
            &format!("incasso_cittadino_spid={bo_state}"),
        )
        .await;
        assert_eq!(foreign.status, StatusCode::BAD_REQUEST);

        // Cancelled at the provider: told on the Ente's portal.
        let v = Visitor::new(&w.base);
        let cancelled = to_provider_and_back(&v, &w.sim_url, OTHER_ENTE, MARIO.0, "annulla").await;
        let told = v.get(&cancelled).await;
        assert_eq!(told.status, StatusCode::UNAUTHORIZED);
        assert!(told.body.contains("annullato"));
        let name = w.store.get_ente(OTHER_ENTE).await.unwrap().name;
        assert!(told.body.contains(&name), "in the Ente's frame");

        // A bad ID token (the provider's fault) is refused.
        w.sim.set_faults(incasso_simulator::Faults {
            id_token: incasso_simulator::IdTokenFault::BadSignature,
            ..Default::default()
        });
        let v = Visitor::new(&w.base);
        let cb = to_provider_and_back(&v, &w.sim_url, ENTE, MARIO.0, "entra").await;
        let bad = v.get(&cb).await;
        assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
        assert!(v.cookie("incasso_cittadino").is_none());
        w.sim.set_faults(Default::default());

        let refusals: Vec<String> = outcomes(&w.store, "citizen.sign_in_spid")
            .await
            .into_iter()
            .map(|(_, o)| o)
            .collect();
        for code in ["SPID_BAD_STATE", "SPID_CANCELLED", "SPID_BAD_ANSWER"] {
            assert!(refusals.iter().any(|o| o == code), "{code}: {refusals:?}");
        }
    }
}

#[tokio::test]
async fn a_session_ends_after_15_idle_minutes_and_after_8_hours() {
    for backend in backends() {
        eprintln!("on {backend:?}");
        let w = world::world(backend).await;
        let v = Visitor::new(&w.base);
        let area = sign_in(&v, &w.sim_url, ENTE, MARIO.0).await;
        let token = v.cookie("incasso_cittadino").unwrap();
        let opened = Utc::now();
        let at = |minutes: i64| {
            let mut app = w.app.clone();
            app.clock = Clock::Fixed(opened + chrono::Duration::minutes(minutes));
            app
        };
        // Used every 14 minutes: alive for 7 h 56 min...
        for k in 1..=34 {
            let (who, _) = citizen_use_case::session(&at(14 * k), &token)
                .await
                .unwrap_or_else(|e| panic!("at {} min: {e}", 14 * k));
            assert_eq!(who.fiscal_code, MARIO.0);
        }
        // ...and not past 8 hours, however recently used.
        let e = citizen_use_case::session(&at(8 * 60 + 1), &token)
            .await
            .unwrap_err();
        assert_eq!(e.code, "SESSION_EXPIRED");
        assert_eq!(v.get(&area).await.status, StatusCode::SEE_OTHER);

        // Another session, left alone for 16 minutes: over HTTP, to a
        // server whose clock says so.
        let v = Visitor::new(&w.base);
        sign_in(&v, &w.sim_url, ENTE, MARIO.0).await;
        let token = v.cookie("incasso_cittadino").unwrap();
        let (_, later, _stop) = world::serve(
            &w.store,
            &w.sim_url,
            Clock::Fixed(Utc::now() + chrono::Duration::minutes(16)),
        )
        .await;
        let idle = get_with_cookie(
            &format!("{later}{area}"),
            &format!("incasso_cittadino={token}"),
        )
        .await;
        assert_eq!(idle.status, StatusCode::SEE_OTHER);
        // Ended for good: even the present clock finds nothing.
        assert_eq!(v.get(&area).await.status, StatusCode::SEE_OTHER);
    }
}

#[tokio::test]
async fn a_citizen_has_no_right_on_any_ente() {
    let backend = backends()[0];
    let w = world::world(backend).await;
    let ctx = w.app.ctx(Caller::Citizen(CitizenIdentity {
        fiscal_code: MARIO.0.into(),
        name: "Mario Rossi".into(),
    }));
    assert!(
        incasso_app::portal::style::set(&ctx, ENTE, "#003366", &[])
            .await
            .is_err()
    );
    let made = w.position(ENTE, "MARIO-X", MARIO, 1000, 0, false).await;
    // The back office's notice PDF is an operator's: refused to a citizen
    // even for their own notice (the area has its own).
    assert!(
        incasso_app::notices::notice_pdf(&ctx, ENTE, &made.navs[0], Default::default())
            .await
            .is_err()
    );
    assert!(
        incasso_app::portal::area::notice_pdf(&ctx, ENTE, &made.navs[0], false)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn the_back_office_sets_the_portal_style_which_the_portal_shows() {
    for backend in backends() {
        eprintln!("on {backend:?}");
        let w = world::world(backend).await;
        let admin = backoffice::clerk(
            &w.store,
            &w.base,
            "admin.comune",
            backoffice::rights(Role::EnteAdmin, Some(ENTE), &[], &[]),
        )
        .await;
        let page = admin.get("/backoffice/portale").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        let html = page.text();
        assert!(
            html.contains(&format!("{}/portale/{ENTE}/", w.base)),
            "the address"
        );
        assert!(
            html.contains(&format!("href=\"/portale/{ENTE}/\"")),
            "the preview"
        );
        assert!(html.contains("value=\"#0066cc\""));
        assert!(
            admin
                .get("/backoffice/")
                .await
                .text()
                .contains("href=\"/backoffice/portale\""),
            "in the navigation"
        );

        // A dark green and German: saved, in the portal's stylesheet (its
        // header), and the portal speaks German.
        let saved = admin
            .post(
                "/backoffice/portale",
                &[("ente", ENTE), ("colore", "#1B5E20"), ("tedesco", "1")],
            )
            .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text());
        assert!(
            admin
                .get("/backoffice/portale?esito=salvato")
                .await
                .text()
                .contains("value=\"#1b5e20\"")
        );
        let v = Visitor::new(&w.base);
        let css = v.get(&format!("/portale/{ENTE}/stile.css")).await.body;
        assert!(css.contains("#1b5e20"), "{css}");
        assert!(css.contains(".portal-brand"), "the header's colour: {css}");
        let home = v.get(&format!("/portale/{ENTE}/?lingua=de")).await.body;
        assert!(home.contains("lang=\"de\""), "German enabled");
        let style = incasso_app::portal::style::get(&w.app.ctx(Caller::Public), ENTE)
            .await
            .unwrap();
        assert_eq!(style.brand_colour, "#1b5e20");

        // Too light for white text: refused next to the field, in Italian,
        // nothing saved.
        let light = admin
            .post(
                "/backoffice/portale",
                &[("ente", ENTE), ("colore", "#ffcc00")],
            )
            .await;
        assert_eq!(light.status, StatusCode::BAD_REQUEST);
        let text = light.text();
        assert!(text.contains("contrasto"), "{text}");
        assert!(text.contains("4,5:1"));
        assert!(text.contains("is-invalid") && text.contains("id=\"colore-errore\""));
        assert!(
            text.contains("href=\"#colore\""),
            "the summary links the field"
        );
        assert!(
            text.contains("value=\"#ffcc00\""),
            "the form comes back as typed"
        );
        let malformed = admin
            .post(
                "/backoffice/portale",
                &[("ente", ENTE), ("colore", "verde")],
            )
            .await;
        assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
        assert!(malformed.text().contains("#rrggbb"));
        assert!(
            v.get(&format!("/portale/{ENTE}/stile.css"))
                .await
                .body
                .contains("#1b5e20")
        );

        // Another Ente's administrator: refused (403), Ente A unchanged.
        let other = backoffice::clerk(
            &w.store,
            &w.base,
            "admin.asl",
            backoffice::rights(Role::EnteAdmin, Some(OTHER_ENTE), &[], &[]),
        )
        .await;
        let foreign = other
            .post(
                "/backoffice/portale",
                &[("ente", ENTE), ("colore", "#000000")],
            )
            .await;
        assert_eq!(foreign.status, StatusCode::FORBIDDEN, "{}", foreign.text());
        // Ente A's accountant: no more than the page.
        let accountant = backoffice::clerk(
            &w.store,
            &w.base,
            "ufficio.comune",
            backoffice::rights(Role::Accountant, Some(ENTE), &[], &[]),
        )
        .await;
        let refused = accountant
            .post(
                "/backoffice/portale",
                &[("ente", ENTE), ("colore", "#000000")],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(
            v.get(&format!("/portale/{ENTE}/stile.css"))
                .await
                .body
                .contains("#1b5e20")
        );
        let events = w
            .store
            .audit_events(Some(ENTE), Some("portal.style"), None, 100)
            .await
            .unwrap();
        let outcomes: Vec<&str> = events.iter().map(|(_, e)| e.outcome.as_str()).collect();
        assert!(outcomes.contains(&"OK") && outcomes.contains(&"LOW_CONTRAST"));
        assert!(outcomes.contains(&"FORBIDDEN"), "{outcomes:?}");

        // The logo: a PNG taken and shown on the portal, then removed.
        let png = b"\x89PNG\r\n\x1a\n0000000000000000".to_vec();
        let up = admin
            .post_file("/backoffice/portale/logo", &[], "logo", "logo.png", png)
            .await;
        assert_eq!(up.status, StatusCode::SEE_OTHER, "{}", up.text());
        assert!(
            v.get(&format!("/portale/{ENTE}/"))
                .await
                .body
                .contains(&format!("src=\"/portale/{ENTE}/logo\""))
        );
        let not_image = admin
            .post_file(
                "/backoffice/portale/logo",
                &[],
                "logo",
                "logo.txt",
                b"ciao".to_vec(),
            )
            .await;
        assert_eq!(not_image.status, StatusCode::BAD_REQUEST);
        assert!(not_image.text().contains("PNG o JPEG"));
        let removed = admin.post("/backoffice/portale/logo/rimuovi", &[]).await;
        assert_eq!(removed.status, StatusCode::SEE_OTHER);
        assert!(!w.store.has_logo(ENTE).await.unwrap());
    }
}

#[tokio::test]
async fn the_intermediary_lists_its_enti_with_their_portals() {
    let backend = backends()[0];
    let w = world::world(backend).await;
    let v = Visitor::new(&w.base);
    let page = v.get("/portale/").await;
    assert_eq!(page.status, StatusCode::OK);
    for fc in [ENTE, OTHER_ENTE] {
        let name = w.store.get_ente(fc).await.unwrap().name;
        assert!(page.body.contains(&name));
        assert!(page.body.contains(&format!("href=\"/portale/{fc}/\"")));
    }
    assert!(page.body.contains("Pagamenti pagoPA"));
    assert_eq!(v.get("/portale").await.location(), Some("/portale/"));
}

/// `serve --demo`'s seed: the citizen of the test identities owes
/// positions at both Enti (one in installments), payable, which their
/// personal area lists; each Ente's portal speaks one more language; and
/// demo.json tells each portal's address.
#[tokio::test]
async fn the_demo_citizen_owes_at_both_enti() {
    for backend in backends() {
        eprintln!("on {backend:?}");
        let url = incasso_testkit::fresh_database_url(backend).await;
        let store = incasso_store::Store::connect(&url).await.unwrap();
        let app = incasso_app::App::new(store.clone(), incasso_app::Settings::new("http://demo"));
        let dir = std::env::temp_dir().join(format!(
            "incasso-demo-citizen-{}-{backend:?}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = incasso_app::demo::seed(&app.ctx(Caller::System("test")), &dir, "http://sim")
            .await
            .unwrap();
        let demo: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(demo["portal_index_url"], "http://demo/portale/");
        let citizen = demo["test_identities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["operator"].is_null())
            .expect("a citizen among the test identities")
            .clone();
        let fc = citizen["fiscal_code"].as_str().unwrap().to_string();
        let mut languages = Vec::new();
        for e in demo["enti"].as_array().unwrap() {
            let ente = e["fiscal_code"].as_str().unwrap();
            assert_eq!(e["portal_url"], format!("http://demo/portale/{ente}/"));
            let style = incasso_app::portal::style::get(&app.ctx(Caller::Public), ente)
                .await
                .unwrap();
            languages.push(style.languages.clone());
        }
        assert_eq!(
            languages,
            vec![
                vec![incasso_app::portal::style::ExtraLanguage::German],
                vec![incasso_app::portal::style::ExtraLanguage::English]
            ]
        );
        let ctx = app.ctx(Caller::Citizen(CitizenIdentity {
            fiscal_code: fc.clone(),
            name: citizen["name"].as_str().unwrap().into(),
        }));
        let b = incasso_app::portal::area::bacheca(&ctx, 0, 0)
            .await
            .unwrap();
        let enti: std::collections::BTreeSet<&str> =
            b.open.items.iter().map(|p| p.ente.as_str()).collect();
        assert_eq!(enti.len(), 2, "at both Enti: {enti:?}");
        assert!(b.open.items.iter().any(|p| p.options.len() == 4), "a plan");
        assert!(
            b.open
                .items
                .iter()
                .flat_map(|p| &p.options)
                .all(|o| o.payable)
        );
        // Seeded once: a second start adds nothing.
        incasso_app::demo::seed(&app.ctx(Caller::System("test")), &dir, "http://sim")
            .await
            .unwrap();
        let again = incasso_app::portal::area::bacheca(&ctx, 0, 0)
            .await
            .unwrap();
        assert_eq!(again.open.total, b.open.total);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
