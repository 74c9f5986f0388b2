//! Paying notices on the citizen portal (issue 17), over HTTP on both
//! databases, with the simulated pagoPA Checkout: a notice looked up by
//! its number shows what, to whom, by when and how much, never who owes
//! it; malformed, unknown, another Ente's, paid, expired and cancelled
//! notices each get their plain answer by the field; a cart of three
//! notices of two Enti is ONE Checkout cart with the right notices,
//! amounts, email and idCart, pressing Pay twice reuses it, a sixth
//! notice is refused, and the outcome page believes the receipts, not the
//! return URL.

use crate::common::app;
use crate::common::pay_world;
use crate::common::portal;

use app::gpd::{ENTE, OTHER_ENTE};
use chrono::{Duration, Utc};
use incasso_testkit::backends;
use pay_world::world;
use portal::{Page, Visitor};
use reqwest::StatusCode;

async fn look_up(v: &Visitor, ente_portal: &str, ente: &str, code: &str) -> Page {
    v.get(&format!("/portale/{ente_portal}/avviso")).await;
    v.post(
        &format!("/portale/{ente_portal}/avviso"),
        &[("codice", code), ("ente", ente)],
    )
    .await
}

async fn add(v: &Visitor, ente: &str, nav: &str, then: &str) -> Page {
    v.get(&format!("/portale/{ENTE}/avviso")).await;
    v.post(
        &format!("/portale/{ENTE}/carrello/aggiungi"),
        &[("codice", nav), ("ente", ente), ("poi", then)],
    )
    .await
}

/// The message shown by the notice-code field.
fn field_error(p: &Page) -> String {
    let after = p
        .body
        .split("id=\"codice-errore\">")
        .nth(1)
        .unwrap_or_else(|| panic!("no message by the field: {}", p.body));
    after.split('<').next().unwrap().to_string()
}

#[tokio::test]
async fn a_notice_is_shown_without_its_debtor_and_every_refusal_is_plain() {
    for backend in backends() {
        let w = world(backend).await;
        let payable = w.notice(ENTE, "PAY-1", 12_345, 20).await;
        let paid = w.notice(ENTE, "PAID-1", 5_000, 20).await;
        w.sim.pay(ENTE, &paid.nav).await.unwrap();
        let expired = w.notice(ENTE, "EXP-1", 5_000, -1).await;
        let cancelled = w.notice(ENTE, "CANC-1", 5_000, 20).await;
        w.app
            .store
            .invalidate_position(ENTE, &cancelled.iupd, Utc::now())
            .await
            .unwrap();
        let theirs = w.notice(OTHER_ENTE, "B-1", 7_000, 20).await;
        let v = Visitor::new(w.base());

        // The form: the notice code, the Enti of the intermediary, the QR
        // script (its button hidden until the script finds a camera).
        let form = v.get(&format!("/portale/{ENTE}/avviso")).await;
        assert_eq!(form.status, StatusCode::OK);
        assert!(form.body.contains("id=\"codice\""));
        assert!(
            form.body
                .contains(&format!("<option value=\"{OTHER_ENTE}\""))
        );
        assert!(form.body.contains("src=\"/static/portal/qr.js\""));
        assert!(form.body.contains("id=\"qr\" hidden"));
        let js = v.get("/static/portal/qr.js").await;
        assert_eq!(js.status, StatusCode::OK);
        assert!(js.body.contains("BarcodeDetector") && js.body.contains("PAGOPA"));

        // Payable, typed with the printed notice's spaces.
        let spaced: String = payable
            .nav
            .chars()
            .enumerate()
            .flat_map(|(i, c)| (i > 0 && i % 4 == 0).then_some(' ').into_iter().chain([c]))
            .collect();
        let shown = look_up(&v, ENTE, ENTE, &spaced).await;
        assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
        assert!(shown.body.contains("data-status=\"PAYABLE\""));
        assert!(shown.body.contains("123,45 €"), "the amount");
        assert!(shown.body.contains("TARI 2026 PAY-1"), "the causale");
        assert!(shown.body.contains("Comune di Prova"), "the creditor");
        let due = incasso_core::time::to_rome(Utc::now() + Duration::days(20))
            .date()
            .format("%d/%m/%Y")
            .to_string();
        assert!(shown.body.contains(&due), "due {due}");
        for personal in [&payable.debtor_name, &payable.debtor_fc] {
            assert!(
                !shown.body.contains(personal.as_str()),
                "the anonymous page shows {personal}"
            );
        }
        assert!(shown.body.contains("id=\"paga-ora\"") && shown.body.contains("id=\"scarica\""));

        // The PDF: by POST only, with the number in the body.
        let pdf = v
            .post(
                &format!("/portale/{ENTE}/avviso/pdf"),
                &[("codice", &payable.nav), ("ente", ENTE)],
            )
            .await;
        assert_eq!(pdf.status, StatusCode::OK);
        assert_eq!(pdf.headers["content-type"], "application/pdf");
        let by_get = v.get(&format!("/portale/{ENTE}/avviso/pdf")).await;
        assert_eq!(by_get.status, StatusCode::METHOD_NOT_ALLOWED);
        // Without the form's token, nothing.
        let forged = v
            .post_raw(
                &format!("/portale/{ENTE}/avviso"),
                &[("codice", &payable.nav), ("csrf", &"0".repeat(64))],
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);

        // Malformed: by the field, with the summary linking to it.
        let short = look_up(&v, ENTE, ENTE, "30100000").await;
        assert_eq!(short.status, StatusCode::BAD_REQUEST);
        assert!(
            field_error(&short).contains("18 cifre"),
            "{}",
            field_error(&short)
        );
        assert!(short.body.contains("href=\"#codice\"") && short.body.contains("is-invalid"));
        assert!(
            short.body.contains("value=\"30100000\""),
            "typed value kept"
        );
        let mut wrong = payable.nav.clone();
        let last = if wrong.ends_with('0') { "1" } else { "0" };
        wrong.replace_range(17..18, last);
        let bad = look_up(&v, ENTE, ENTE, &wrong).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(field_error(&bad).contains("non è corretto"));

        // Unknown, and another Ente's at this Ente: the same answer.
        let unknown_nav = incasso_core::codes::NoticeNumber::generate(1, 999_999)
            .unwrap()
            .to_string();
        let unknown = look_up(&v, ENTE, ENTE, &unknown_nav).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        let elsewhere = look_up(&v, ENTE, ENTE, &theirs.nav).await;
        assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);
        assert_eq!(field_error(&unknown), field_error(&elsewhere));
        assert!(field_error(&unknown).contains("Non risulta nessun avviso"));
        // ... found when its Ente is chosen, from this portal.
        let chosen = look_up(&v, ENTE, OTHER_ENTE, &theirs.nav).await;
        assert_eq!(chosen.status, StatusCode::OK);
        assert!(chosen.body.contains("Comune di Altrove"));

        // Paid, expired, cancelled: each in plain words; no PDF.
        for (n, words) in [
            (&paid, "già pagato"),
            (&expired, "è scaduto"),
            (&cancelled, "annullato"),
        ] {
            let p = look_up(&v, ENTE, ENTE, &n.nav).await;
            assert_eq!(p.status, StatusCode::CONFLICT, "{}", n.iupd);
            assert!(
                field_error(&p).contains(words),
                "{}: {}",
                n.iupd,
                field_error(&p)
            );
            let pdf = v
                .post(
                    &format!("/portale/{ENTE}/avviso/pdf"),
                    &[("codice", &n.nav), ("ente", ENTE)],
                )
                .await;
            assert_eq!(pdf.status, StatusCode::CONFLICT, "{}", n.iupd);
            let added = add(&v, ENTE, &n.nav, "paga").await;
            assert_eq!(added.status, StatusCode::CONFLICT, "{}", n.iupd);
        }
        assert!(w.carts().await.is_empty(), "no Checkout cart made");
    }
}

#[tokio::test]
async fn a_cart_of_three_notices_of_two_enti_is_one_checkout_cart() {
    for backend in backends() {
        let w = world(backend).await;
        let a1 = w.notice(ENTE, "A-1", 10_000, 20).await;
        let a2 = w.notice(ENTE, "A-2", 2_050, 25).await;
        let b1 = w.notice(OTHER_ENTE, "B-1", 3_333, 30).await;
        let v = Visitor::new(w.base());

        // Added from A's portal, B's notice with B chosen; twice is once.
        let r = add(&v, ENTE, &a1.nav, "avviso").await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        assert_eq!(
            r.location(),
            Some(format!("/portale/{ENTE}/avviso?aggiunti=1").as_str())
        );
        let cart_id = v.cookie("incasso_carrello").expect("the cart's cookie");
        assert_eq!(cart_id.len(), 32);
        assert_eq!(
            add(&v, ENTE, &a1.nav, "avviso").await.status,
            StatusCode::SEE_OTHER
        );
        add(&v, OTHER_ENTE, &b1.nav, "avviso").await;
        let r = add(&v, ENTE, &a2.nav, "paga").await;
        assert_eq!(
            r.location(),
            Some(format!("/portale/{ENTE}/carrello").as_str())
        );
        assert_eq!(
            v.cookie("incasso_carrello").as_deref(),
            Some(cart_id.as_str())
        );

        // The summary: three notices, the total, the email field.
        let cart = v.get(&format!("/portale/{ENTE}/carrello")).await;
        assert_eq!(cart.status, StatusCode::OK);
        assert_eq!(
            cart.body
                .matches("class=\"card card-bg mb-3 portal-cart-item\"")
                .count(),
            3
        );
        assert!(cart.body.contains("153,83 €"), "total 100 + 20,50 + 33,33");
        assert!(cart.body.contains("Comune di Altrove"));
        let csp = cart.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("form-action 'self' https:"), "{csp}");

        // A wrong email: by the field, nothing sent to pagoPA.
        let bad = v
            .post(
                &format!("/portale/{ENTE}/carrello/paga"),
                &[("email", "mario.rossi@")],
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(bad.body.contains("id=\"email-errore\"") && bad.body.contains("href=\"#email\""));
        assert!(bad.body.contains("value=\"mario.rossi@\""));
        assert!(w.carts().await.is_empty());

        // Pay: ONE Checkout cart; pressed again, the same one.
        let email = "mario.rossi@example.it";
        let paid = v
            .post(
                &format!("/portale/{ENTE}/carrello/paga"),
                &[("email", email)],
            )
            .await;
        assert_eq!(paid.status, StatusCode::SEE_OTHER, "{}", paid.body);
        let location = paid.location().unwrap().to_string();
        assert!(location.starts_with(&w.sim_url), "{location}");
        v.get(&format!("/portale/{ENTE}/carrello")).await;
        let again = v
            .post(
                &format!("/portale/{ENTE}/carrello/paga"),
                &[("email", email)],
            )
            .await;
        assert_eq!(again.location(), Some(location.as_str()));
        let carts = w.carts().await;
        assert_eq!(carts.len(), 1, "{carts:?}");
        let c = &carts[0];
        assert_eq!(c["email"], email);
        assert_eq!(c["id_cart"], cart_id.as_str());
        let notices: Vec<(String, String, i64)> = c["payment_notices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["fiscalCode"].as_str().unwrap().to_string(),
                    n["noticeNumber"].as_str().unwrap().to_string(),
                    n["amount"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            notices,
            vec![
                (ENTE.to_string(), a1.nav.clone(), 10_000),
                (OTHER_ENTE.to_string(), b1.nav.clone(), 3_333),
                (ENTE.to_string(), a2.nav.clone(), 2_050),
            ]
        );
        let ok_url = c["return_ok_url"].as_str().unwrap().to_string();
        assert_eq!(
            ok_url,
            format!("{}/portale/{ENTE}/carrello/esito/ok?c={cart_id}", w.base())
        );

        // Back with "ok" before pagoPA paid: not believed.
        let early = v.get(&ok_url).await;
        assert_eq!(early.status, StatusCode::OK);
        assert!(
            early.body.contains("data-status=\"PENDING\""),
            "{}",
            early.body
        );
        assert!(early.body.contains("in attesa di conferma"));
        // A tampered cart id: one clear error.
        let mut tampered = cart_id.clone();
        tampered.replace_range(0..1, if tampered.starts_with('a') { "b" } else { "a" });
        for id in [tampered.as_str(), "123", "../../x"] {
            let t = v
                .get(&format!("/portale/{ENTE}/carrello/esito/ok?c={id}"))
                .await;
            assert_eq!(t.status, StatusCode::NOT_FOUND, "{id}");
            assert!(
                t.body
                    .contains("Non risulta nessun pagamento per questo collegamento")
            );
        }
        // Another portal's outcome page does not know this cart.
        let other = v
            .get(&format!(
                "/portale/{OTHER_ENTE}/carrello/esito/ok?c={cart_id}"
            ))
            .await;
        assert_eq!(other.status, StatusCode::NOT_FOUND);

        // Paid on Checkout: back to the outcome, which is OK now.
        let back = w.checkout(&location, "pay").await;
        assert_eq!(back.status(), StatusCode::SEE_OTHER);
        assert_eq!(back.headers()["location"].to_str().unwrap(), ok_url);
        let done = v.get(&ok_url).await;
        assert!(done.body.contains("data-status=\"PAID\""), "{}", done.body);
        assert!(done.body.contains("Pagamento riuscito") && done.body.contains(email));
        assert_eq!(done.body.matches("data-paid=\"true\"").count(), 3);
        assert!(
            done.body.contains("data-element=\"feedback\""),
            "the rating"
        );
        assert_eq!(
            v.cookie("incasso_carrello"),
            None,
            "the paid cart forgotten"
        );
        for (ente, nav) in [(ENTE, &a1.nav), (OTHER_ENTE, &b1.nav), (ENTE, &a2.nav)] {
            let ctx = w.app_ctx();
            assert_eq!(
                incasso_app::portal::cart::payer_email(&ctx, ente, nav)
                    .await
                    .as_deref(),
                Some(email)
            );
            let public = w.public_ctx();
            assert_eq!(
                incasso_app::portal::cart::payer_email(&public, ente, nav).await,
                None
            );
        }
    }
}

#[tokio::test]
async fn a_sixth_notice_is_refused_and_a_cancelled_payment_says_so() {
    for backend in backends() {
        let w = world(backend).await;
        let mut navs = Vec::new();
        for k in 0..6 {
            navs.push(w.notice(ENTE, &format!("S-{k}"), 1_000 + k, 20).await.nav);
        }
        let v = Visitor::new(w.base());
        for nav in &navs[..5] {
            assert_eq!(
                add(&v, ENTE, nav, "avviso").await.status,
                StatusCode::SEE_OTHER
            );
        }
        let sixth = add(&v, ENTE, &navs[5], "avviso").await;
        assert_eq!(sixth.status, StatusCode::CONFLICT);
        assert!(
            sixth.body.contains("data-code=\"CART_FULL\""),
            "{}",
            sixth.body
        );
        assert!(sixth.body.contains("già 5 avvisi"));
        // One out, and the sixth fits.
        v.post(
            &format!("/portale/{ENTE}/carrello/togli"),
            &[("ente", ENTE), ("codice", &navs[0])],
        )
        .await;
        assert_eq!(
            add(&v, ENTE, &navs[5], "paga").await.status,
            StatusCode::SEE_OTHER
        );
        let cart = v.get(&format!("/portale/{ENTE}/carrello")).await;
        assert!(!cart.body.contains(&navs[0]) && cart.body.contains(&navs[5]));

        // To Checkout without an email, cancelled there: plainly so.
        let paid = v
            .post(&format!("/portale/{ENTE}/carrello/paga"), &[("email", "")])
            .await;
        let location = paid.location().unwrap().to_string();
        let back = w.checkout(&location, "cancel").await;
        let cancel_url = back.headers()["location"].to_str().unwrap().to_string();
        assert!(
            cancel_url.contains("/carrello/esito/annullato?c="),
            "{cancel_url}"
        );
        let page = v.get(&cancel_url).await;
        assert!(
            page.body.contains("data-status=\"CANCELLED\""),
            "{}",
            page.body
        );
        assert!(page.body.contains("non è stato addebitato nulla"));
        // Paying again opens a new Checkout cart: pagoPA's cancelled one is over.
        v.get(&format!("/portale/{ENTE}/carrello")).await;
        let again = v
            .post(&format!("/portale/{ENTE}/carrello/paga"), &[("email", "")])
            .await;
        let second = again.location().unwrap().to_string();
        assert_ne!(second, location);
        // Abandoned on Checkout: nothing comes back, the notices stay payable.
        let abandoned = w.checkout(&second, "abandon").await;
        assert_eq!(abandoned.status(), StatusCode::OK);
        let carts = w.carts().await;
        assert_eq!(carts.len(), 2);
        assert!(carts.iter().any(|c| c["status"] == "ABANDONED"));
        assert!(carts.iter().all(|c| c["email"].is_null()));
        let still = look_up(&v, ENTE, ENTE, &navs[1]).await;
        assert!(still.body.contains("data-status=\"PAYABLE\""));
    }
}
