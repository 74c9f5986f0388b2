//! Rights and tenancy on every page and action of the back office
//! (issue 16), found rather than listed: Ente A's administrator walks the
//! back office (every page reachable from the home page, every form on
//! them), then
//! - Ente B's administrator opens each of those URLs and sends each of
//!   those forms: no page or download shows A's data, and nothing of A's
//!   changes;
//! - A's office operator, limited to office UT and to positions, never
//!   sees or changes a position of office UR;
//! - A's accountant reads, and changes nothing at all;
//!
//! and no request of anyone ends in a server error.
//!
//! A page added later is walked and replayed the same way, without this
//! test changing.

use crate::common::app;
use crate::common::backoffice;
use crate::common::bo_world;
use crate::common::crawl;

use app::gpd::{ENTE, OTHER_ENTE};
use backoffice::{Clerk, clerk, rights};
use bo_world::{Holdings, world};
use crawl::{send, shows_any, walk};
use incasso_core::access::{Access, Area, Role};
use incasso_store::Store;
use incasso_testkit::backends;

/// Ente `ente`'s positions as the store has them, to compare before and
/// after: any change shows.
async fn snapshot(store: &Store, ente: &str, iupds: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for iupd in iupds {
        let p = store.get_position(ente, iupd).await;
        out.push(format!("{p:?}"));
    }
    out
}

/// The events of `actor` on Ente `ente` that ended well, but signing in
/// and changing one's own password.
async fn writes_by(store: &Store, ente: &str, actor: &str) -> Vec<String> {
    store
        .audit_events(Some(ente), Some(actor), None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .filter(|e| e.actor == actor && e.outcome == "OK")
        .filter(|e| {
            !e.action.starts_with("operator.sign_in") && e.action != "operator.change_password"
        })
        .map(|e| format!("{} {}", e.action, e.object))
        .collect()
}

/// Opens each URL as `who`: no server error, none of `markers` shown.
async fn open_all(who: &Clerk, urls: &[String], markers: &[String], label: &str) {
    for url in urls {
        let answer = who.get(url).await;
        assert_ne!(
            answer.location.as_deref(),
            Some("/backoffice/login"),
            "{label}: {url} ended the session"
        );
        assert!(
            answer.status.as_u16() < 500,
            "{label}: {url} answered {}: {}",
            answer.status,
            answer.text()
        );
        // A refusal may echo what was asked for (the URL's own words);
        // anything else of another's is a leak, and so is any of it on a
        // page that answered as if it were theirs.
        let shown: Vec<String> = if answer.status.is_success() {
            markers.to_vec()
        } else {
            markers
                .iter()
                .filter(|m| !url.contains(m.as_str()))
                .cloned()
                .collect()
        };
        if let Some(m) = shows_any(&answer, &shown) {
            panic!(
                "{label}: {url} ({}) shows {m}, which is not theirs to see",
                answer.status
            );
        }
    }
}

/// Sends each form as `who`: no server error.
async fn send_all(who: &Clerk, forms: &[crawl::Form], label: &str) {
    for form in forms {
        let answer = send(who, form).await;
        assert_ne!(
            answer.location.as_deref(),
            Some("/backoffice/login"),
            "{label}: the form to {} ended the session",
            form.action
        );
        assert!(
            answer.status.as_u16() < 500,
            "{label}: the form to {} (from {}) answered {}: {}",
            form.action,
            form.page,
            answer.status,
            answer.text()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_page_or_form_crosses_an_ente_or_an_office() {
    for backend in backends() {
        let w = world(backend).await;
        let (store, base) = (&w.app.store, w.app.server.base.as_str());
        let admin_a = clerk(
            store,
            base,
            "admin.a",
            rights(Role::EnteAdmin, Some(ENTE), &[], &[]),
        )
        .await;
        let admin_b = clerk(
            store,
            base,
            "admin.b",
            rights(Role::EnteAdmin, Some(OTHER_ENTE), &[], &[]),
        )
        .await;
        let office_a = clerk(
            store,
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
        let accountant_a = clerk(
            store,
            base,
            "accountant.a",
            rights(Role::Accountant, Some(ENTE), &[], &[]),
        )
        .await;

        // A's administrator sees A's data, on pages that all answer.
        let found = walk(&admin_a, 160, 3).await;
        let errors: Vec<_> = found.pages.iter().filter(|(_, s)| *s >= 500).collect();
        assert!(errors.is_empty(), "{backend:?}: server errors: {errors:?}");
        let urls: Vec<String> = found.pages.iter().map(|(u, _)| u.clone()).collect();
        eprintln!(
            "{backend:?}: walked {} pages and {} forms as A's administrator",
            urls.len(),
            found.forms.len()
        );
        assert!(urls.len() >= 10, "{backend:?}: only {urls:?}");
        let iupd = &w.a.iupds()[0];
        assert!(
            urls.iter().any(|u| u.contains(iupd.as_str())),
            "{backend:?}: the walk never reached position {iupd}: {urls:#?}"
        );
        // The notifications' pages (issue 19) are in the walk too.
        for page in [
            "/backoffice/notifiche",
            "/backoffice/notifiche/servizi/",
            "/invia",
            "/backoffice/notifiche/email",
        ] {
            assert!(
                urls.iter().any(|u| u.contains(page)),
                "{backend:?}: the walk never reached {page}: {urls:#?}"
            );
        }

        let ur = Holdings {
            iupds_by_office: vec![("UR".into(), w.a.iupds_of("UR"))],
            ..Default::default()
        };
        let mut ur_markers = ur.iupds();
        for (i, (office, iupds)) in w.a.iupds_by_office.iter().enumerate() {
            if office == "UR" {
                for k in 0..iupds.len() {
                    ur_markers.push(w.a.debtors[i * iupds.len() + k].clone());
                    ur_markers.push(w.a.notice_numbers[i * iupds.len() + k].clone());
                }
            }
        }

        // Looking: B never sees A's data, the office never UR's.
        open_all(&admin_b, &urls, &w.a.markers(), "B's administrator").await;
        open_all(&office_a, &urls, &ur_markers, "A's UT office operator").await;
        open_all(&accountant_a, &urls, &[], "A's accountant").await;

        // Acting: each of A's forms, sent by the others.
        let all_a = w.a.iupds();
        let before = snapshot(store, ENTE, &all_a).await;
        let ur_before = snapshot(store, ENTE, &ur.iupds()).await;
        send_all(&admin_b, &found.forms, "B's administrator").await;
        send_all(&accountant_a, &found.forms, "A's accountant").await;
        assert_eq!(
            snapshot(store, ENTE, &all_a).await,
            before,
            "{backend:?}: A's positions changed"
        );
        assert_eq!(
            writes_by(store, ENTE, "operator:admin.b").await,
            Vec::<String>::new()
        );
        assert_eq!(
            writes_by(store, ENTE, "operator:accountant.a").await,
            Vec::<String>::new(),
            "{backend:?}: the accountant wrote"
        );
        send_all(&office_a, &found.forms, "A's UT office operator").await;
        assert_eq!(
            snapshot(store, ENTE, &ur.iupds()).await,
            ur_before,
            "{backend:?}: office UR's positions changed"
        );
        let office_writes = writes_by(store, ENTE, "operator:office.a").await;
        let outside: Vec<_> = office_writes
            .iter()
            .filter(|w| ur_markers.iter().any(|m| w.contains(m.as_str())))
            .collect();
        assert!(outside.is_empty(), "{backend:?}: {outside:?}");
        // B's own positions are untouched by all of this.
        let b_iupds = w.b.iupds();
        assert_eq!(b_iupds.len(), 4);
    }
}
