//! The frame of the citizen portal (issue 17): each Ente's portal at
//! `/portale/{fc}/` in its colour and languages, an unknown one refused
//! plainly, the footer's privacy and accessibility pages, the rating at
//! the end of a procedure, and forms refused without their token.

use crate::common::app;
use crate::common::portal;

use app::gpd::{ENTE, OTHER_ENTE};
use app::spawn_app;
use chrono::Utc;
use incasso_store::PortalSettingsRecord;
use incasso_testkit::backends;
use portal::Visitor;
use reqwest::StatusCode;

#[tokio::test]
async fn each_ente_has_its_portal_in_its_colour_and_languages() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let base = &app.server.base;
        let v = Visitor::new(base);

        let home = v.get(&format!("{base}/portale/{ENTE}/")).await;
        assert_eq!(home.status, StatusCode::OK);
        let csp = home.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        let html = home.body.clone();
        let ente = app.store.get_ente(ENTE).await.unwrap();
        assert!(html.contains(&ente.name), "the Ente's name");
        assert!(html.contains("lang=\"it\""));
        assert!(html.contains("data-element=\"privacy-policy-link\""));
        assert!(html.contains("data-element=\"accessibility-link\""));
        assert!(html.contains(&format!("/portale/{ENTE}/avviso")));
        // Italian only until the Ente enables more: no switch, and a
        // request for German stays Italian.
        assert!(!html.contains("hreflang=\"de\""));
        let asked = v
            .get(&format!("{base}/portale/{ENTE}/?lingua=de"))
            .await
            .body;
        assert!(asked.contains("lang=\"it\"") && asked.contains("Paga un avviso"));

        // The default colour, then the Ente's own.
        let css = v
            .get(&format!("{base}/portale/{ENTE}/stile.css"))
            .await
            .body;
        assert!(css.contains("#0066cc"), "{css}");
        app.store
            .put_portal_settings(
                OTHER_ENTE,
                &PortalSettingsRecord {
                    brand_colour: "#1f5130".into(),
                    languages: vec!["de".into()],
                },
                Utc::now(),
            )
            .await
            .unwrap();
        let css = v
            .get(&format!("{base}/portale/{OTHER_ENTE}/stile.css"))
            .await
            .body;
        assert!(css.contains("#1f5130") && !css.contains("#0066cc"), "{css}");

        // German where enabled: the switch, and the choice kept.
        let other = v.get(&format!("{base}/portale/{OTHER_ENTE}/")).await.body;
        // The choice made at the first portal holds here, where German is
        // offered: the page is German, with the switch back to Italian.
        assert!(
            other.contains("class=\"portal-languages\""),
            "the language switch"
        );
        assert!(other.contains("hreflang=\"it\"") && other.contains("lang=\"de\""));
        let de = v
            .get(&format!("{base}/portale/{OTHER_ENTE}/?lingua=de"))
            .await
            .body;
        assert!(de.contains("lang=\"de\"") && de.contains("Zahlungsaufforderung bezahlen"));
        let kept = v
            .get(&format!("{base}/portale/{OTHER_ENTE}/privacy"))
            .await
            .body;
        assert!(
            kept.contains("Datenschutzerklärung"),
            "German kept by its cookie"
        );
        assert!(kept.contains("data-element=\"breadcrumb\""));

        // An Ente that doesn't exist: a page that says so, 404.
        let unknown = v.get(&format!("{base}/portale/99999999999/")).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        assert!(unknown.body.contains("Non esiste un portale"));
    }
}

#[tokio::test]
async fn a_rating_is_kept_and_a_form_without_its_token_is_refused() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let base = &app.server.base;
        let v = Visitor::new(base);
        let html = v
            .get(&format!("{base}/portale/{ENTE}/accessibilita"))
            .await
            .body;
        assert!(html.contains("WCAG 2.1"));
        // The form token is the cookie's: a page with a form carries it
        // in its hidden field too.
        let csrf = v.cookie("incasso_portale").expect("a form token");
        let rate = |fields: Vec<(&'static str, String)>| {
            let v = v.clone();
            let url = format!("{base}/portale/{ENTE}/valutazione");
            async move {
                let fields: Vec<(&str, &str)> =
                    fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                v.post_raw(&url, &fields).await
            }
        };

        let ok = rate(vec![
            ("csrf", csrf.clone()),
            ("procedura", "avviso".into()),
            ("stelle", "4".into()),
            ("commento", "Chiaro".into()),
        ])
        .await;
        assert_eq!(ok.status, StatusCode::OK);
        assert!(ok.body.contains("Grazie"));

        let six = rate(vec![
            ("csrf", csrf.clone()),
            ("procedura", "avviso".into()),
            ("stelle", "6".into()),
        ])
        .await;
        assert_eq!(six.status, StatusCode::BAD_REQUEST);
        assert!(six.body.contains("da 1 a 5 stelle"));

        let forged = rate(vec![
            ("csrf", "0".repeat(64)),
            ("procedura", "avviso".into()),
            ("stelle", "1".into()),
        ])
        .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);

        let summary = app
            .store
            .portal_rating_summary(ENTE, Utc::now() - chrono::Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(summary, vec![("avviso".to_string(), 1, 400)]);
    }
}
