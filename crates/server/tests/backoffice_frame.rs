//! The frame of the back office's pages (issue 16): each role sees the
//! sections its rights open and no others, the intermediary's
//! administrator switches Ente (and only to an Ente, only back into the
//! back office), and a form without the session's CSRF token is refused.

use crate::common::app;
use crate::common::backoffice;

use app::gpd::{ENTE, OTHER_ENTE};
use app::spawn_app;
use backoffice::{clerk, rights};
use incasso_core::access::{Access, Area, Role};
use incasso_testkit::backends;
use reqwest::StatusCode;

/// The section links of a page's navigation (the desktop one).
fn sections(html: &str) -> Vec<String> {
    let nav = html
        .split("<nav class=\"d-none d-lg-block\"")
        .nth(1)
        .and_then(|rest| rest.split("</nav>").next())
        .expect("the sections' navigation");
    nav.split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn each_role_sees_its_sections_and_the_intermediary_switches_ente() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let base = &app.server.base;

        let admin = clerk(
            &app.store,
            base,
            "admin.a",
            rights(Role::EnteAdmin, Some(ENTE), &[], &[]),
        )
        .await;
        let home = admin.get("/backoffice/").await;
        assert_eq!(home.status, StatusCode::OK, "{backend:?}");
        let admin_sections = sections(&home.text());
        for s in [
            "/backoffice/posizioni",
            "/backoffice/forniture",
            "/backoffice/tesoreria",
            "/backoffice/stazioni",
            "/backoffice/utenti",
            "/backoffice/chiavi",
            "/backoffice/giornale",
        ] {
            assert!(
                admin_sections.iter().any(|h| h == s),
                "{s} in {admin_sections:?}"
            );
        }
        // The audit log exports what it lists: the administrator's own
        // sign-in and password change are in it.
        let csv = admin.get("/backoffice/giornale?formato=csv").await;
        assert_eq!(csv.status, StatusCode::OK);
        let csv = csv.text();
        assert!(
            csv.starts_with("\u{feff}Data e ora;Autore;Azione;Oggetto;Esito;Dettaglio"),
            "{csv}"
        );
        assert!(
            csv.contains("operator:admin.a;operator.change_password"),
            "{csv}"
        );
        let xlsx = admin
            .get("/backoffice/giornale?q=change_password&formato=xlsx")
            .await;
        assert!(
            xlsx.content_type.contains("spreadsheetml"),
            "{}",
            xlsx.content_type
        );
        assert!(xlsx.body.starts_with(b"PK"));
        // An Ente's people never get the Ente switch.
        assert!(!home.text().contains("name=\"ente\""));

        // An office operator granted positions only: that and the common
        // pages, nothing of configuration.
        let office = clerk(
            &app.store,
            base,
            "office.a",
            rights(
                Role::OfficeOperator,
                Some(ENTE),
                &[(Area::Positions, Access::Write)],
                &["UT"],
            ),
        )
        .await;
        let office_sections = sections(&office.get("/backoffice/").await.text());
        assert_eq!(
            office_sections,
            [
                "/backoffice/",
                "/backoffice/posizioni",
                // Positions written: the counter desk too.
                "/backoffice/sportello",
                // Messages to citizens are of the positions area, limited
                // to the services of the operator's offices.
                "/backoffice/notifiche",
                "/backoffice/password"
            ],
            "{backend:?}"
        );

        // The accountant reads every area, but no administrator's page.
        let accountant = clerk(
            &app.store,
            base,
            "accountant.a",
            rights(Role::Accountant, Some(ENTE), &[], &[]),
        )
        .await;
        let acc_sections = sections(&accountant.get("/backoffice/").await.text());
        assert!(acc_sections.iter().any(|h| h == "/backoffice/tesoreria"));
        assert!(!acc_sections.iter().any(|h| h == "/backoffice/stazioni"));
        assert!(!acc_sections.iter().any(|h| h == "/backoffice/chiavi"));
        // The office operator has no Users area: the log is not theirs.
        let refused = office.get("/backoffice/giornale?formato=csv").await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);

        // The intermediary's administrator works on one Ente at a time.
        let intermediary = clerk(
            &app.store,
            base,
            "intermediary",
            rights(Role::IntermediaryAdmin, None, &[], &[]),
        )
        .await;
        let home = intermediary.get("/backoffice/").await.text();
        assert!(
            home.contains(&format!("value=\"{ENTE}\" selected")),
            "{home}"
        );
        assert!(home.contains(&format!("value=\"{OTHER_ENTE}\"")));
        let switched = intermediary
            .post(
                "/backoffice/ente",
                &[("ente", OTHER_ENTE), ("back", "/backoffice/giornale")],
            )
            .await;
        assert_eq!(switched.status, StatusCode::SEE_OTHER);
        assert_eq!(switched.location.as_deref(), Some("/backoffice/giornale"));
        let ente_cookie = format!("incasso_ente={OTHER_ENTE}");
        let mut on_b = intermediary.clone();
        on_b.cookie = format!("{}; {ente_cookie}", intermediary.cookie);
        let home_b = on_b.get("/backoffice/").await.text();
        assert!(
            home_b.contains(&format!("value=\"{OTHER_ENTE}\" selected")),
            "{home_b}"
        );
        // Never away from the back office, never to an Ente that is not.
        let away = intermediary
            .post(
                "/backoffice/ente",
                &[("ente", OTHER_ENTE), ("back", "https://example.org/")],
            )
            .await;
        assert_eq!(away.location.as_deref(), Some("/backoffice/"));
        let away = intermediary
            .post(
                "/backoffice/ente",
                &[("ente", OTHER_ENTE), ("back", "/backoffice//example.org")],
            )
            .await;
        assert_eq!(away.location.as_deref(), Some("/backoffice/"));
        let none = intermediary
            .post("/backoffice/ente", &[("ente", "00000000000"), ("back", "")])
            .await;
        assert_eq!(none.status, StatusCode::NOT_FOUND, "{}", none.text());
        // An Ente's administrator cannot switch to another Ente.
        let refused = admin
            .post("/backoffice/ente", &[("ente", OTHER_ENTE), ("back", "")])
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());
        // Nor does a forged cookie take them there: their Ente is theirs.
        let mut forged = admin.clone();
        forged.cookie = format!("{}; {ente_cookie}", admin.cookie);
        let home = forged.get("/backoffice/").await.text();
        assert!(home.contains(&format!("C.F. {ENTE}")), "{home}");

        // A form without the session's token changes nothing.
        let no_token = intermediary
            .post_raw("/backoffice/ente", &[("ente", OTHER_ENTE), ("csrf", "x")])
            .await;
        assert_eq!(no_token.status, StatusCode::FORBIDDEN);
        assert!(no_token.text().contains("Il modulo è scaduto"));
    }
}
