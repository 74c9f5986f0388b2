//! The back office's configuration pages (issue 16), over HTTP on both
//! databases: accertamenti (with the CSV of a year's budget), the
//! catalogue and the offices, stations and their connection, users and
//! roles, API keys. Each page lists, exports, creates and changes; bad
//! input comes back as the form (400) naming the field, with nothing
//! written; and each right is proven from outside: another Ente's
//! administrator sees and changes nothing of this Ente's, an office
//! operator without the area can neither open the page nor post its forms,
//! an accountant reads and writes nothing.

use crate::common::app;
use crate::common::backoffice;

use app::gpd::{BROKER, CATEGORY, ENTE, IBAN, OTHER_ENTE};
use app::spawn_app;
use backoffice::{Answer, Clerk, PASSWORD, clerk, rights, sign_in};
use incasso_core::accertamento::Accertamento;
use incasso_core::access::{Access, Area, Role};
use incasso_core::ente::Office;
use incasso_store::Store;
use incasso_testkit::backends;
use reqwest::StatusCode;

/// The text of the element with `id` (up to its first tag).
fn by_id(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("#{id} in {html}"))
        + marker.len();
    html[at..at + html[at..].find('<').unwrap()].to_string()
}

fn assert_status(a: &Answer, status: StatusCode, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.text());
}

/// Signs in with a provisional password and changes it to [`PASSWORD`].
async fn first_sign_in(base: &str, username: &str, provisional: &str) -> Clerk {
    let c = sign_in(base, username, provisional).await;
    let home = c.get("/backoffice/").await;
    assert_eq!(home.location.as_deref(), Some("/backoffice/password"));
    let changed = c
        .post(
            "/backoffice/password",
            &[
                ("current_password", provisional),
                ("new_password", PASSWORD),
                ("confirm_password", PASSWORD),
            ],
        )
        .await;
    assert_status(&changed, StatusCode::SEE_OTHER, "password change");
    c
}

async fn accertamenti(store: &Store, year: i32) -> Vec<Accertamento> {
    store.list_accertamenti(ENTE, Some(year)).await.unwrap()
}

async fn put_office(store: &Store, ente: &str, code: &str) {
    store
        .put_office(
            ente,
            &Office {
                code: code.into(),
                name: format!("Ufficio {code}"),
                email: None,
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn accertamenti_per_year_forms_csv_and_rights() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (base, store) = (&app.server.base, &app.store);
        let admin = clerk(
            store,
            base,
            "admin.a",
            rights(Role::EnteAdmin, Some(ENTE), &[], &[]),
        )
        .await;

        let empty = admin.get("/backoffice/accertamenti?anno=2026").await;
        assert_status(&empty, StatusCode::OK, "empty list");
        assert!(empty.text().contains("Nessun risultato"));

        // Create.
        let created = admin
            .post(
                "/backoffice/accertamenti/nuovo",
                &[
                    ("anno", "2026"),
                    ("codice", "ACC-1"),
                    ("descrizione", "TARI"),
                    ("capitolo", "1010"),
                    ("siope", "3010"),
                    ("attivo", "1"),
                ],
            )
            .await;
        assert_status(&created, StatusCode::SEE_OTHER, "create");
        assert_eq!(
            created.location.as_deref(),
            Some("/backoffice/accertamenti?anno=2026&esito=creato")
        );
        let stored = accertamenti(store, 2026).await;
        assert_eq!(stored.len(), 1, "{backend:?}");
        assert_eq!(stored[0].siope_code.as_deref(), Some("3010"));

        // Bad input: the form again, each field named, nothing written.
        let bad = admin
            .post(
                "/backoffice/accertamenti/nuovo",
                &[
                    ("anno", "2026"),
                    ("codice", "ACC 2"),
                    ("descrizione", "Multe"),
                    ("capitolo", ""),
                ],
            )
            .await;
        assert_status(&bad, StatusCode::BAD_REQUEST, "bad create");
        let html = bad.text();
        assert!(
            html.contains("Codice:") && html.contains("Capitolo:"),
            "{html}"
        );
        assert!(
            html.contains("value=\"Multe\""),
            "the form keeps what was typed"
        );
        let year = admin
            .post(
                "/backoffice/accertamenti/nuovo",
                &[
                    ("anno", "duemila"),
                    ("codice", "X"),
                    ("descrizione", "X"),
                    ("capitolo", "1"),
                ],
            )
            .await;
        assert_status(&year, StatusCode::BAD_REQUEST, "bad year");
        assert!(year.text().contains("Anno:"));
        let again = admin
            .post(
                "/backoffice/accertamenti/nuovo",
                &[
                    ("anno", "2026"),
                    ("codice", "ACC-1"),
                    ("descrizione", "Altro"),
                    ("capitolo", "1"),
                ],
            )
            .await;
        assert_status(&again, StatusCode::BAD_REQUEST, "duplicate");
        assert!(again.text().contains("esiste già"));
        assert_eq!(accertamenti(store, 2026).await, stored, "nothing written");

        // Edit, bad and good; deactivate and activate.
        let form = admin.get("/backoffice/accertamenti/2026/ACC-1").await;
        assert_status(&form, StatusCode::OK, "edit form");
        assert!(form.text().contains("value=\"TARI\""));
        let bad = admin
            .post(
                "/backoffice/accertamenti/2026/ACC-1",
                &[
                    ("descrizione", "TARI 2026"),
                    ("capitolo", "1010"),
                    ("siope", "12"),
                ],
            )
            .await;
        assert_status(&bad, StatusCode::BAD_REQUEST, "bad edit");
        assert!(bad.text().contains("Codice SIOPE:"));
        assert_eq!(accertamenti(store, 2026).await, stored, "nothing written");
        let saved = admin
            .post(
                "/backoffice/accertamenti/2026/ACC-1",
                &[
                    ("descrizione", "TARI 2026"),
                    ("capitolo", "1010"),
                    ("articolo", "2"),
                ],
            )
            .await;
        assert_status(&saved, StatusCode::SEE_OTHER, "edit");
        let a = store.get_accertamento(ENTE, 2026, "ACC-1").await.unwrap();
        assert_eq!(
            (a.description.as_str(), a.article.as_deref()),
            ("TARI 2026", Some("2"))
        );
        assert!(a.active, "an edit keeps the state");
        let off = admin
            .post(
                "/backoffice/accertamenti/2026/ACC-1/stato",
                &[("attivo", "0")],
            )
            .await;
        assert_status(&off, StatusCode::SEE_OTHER, "deactivate");
        assert!(
            !store
                .get_accertamento(ENTE, 2026, "ACC-1")
                .await
                .unwrap()
                .active
        );
        assert!(
            admin
                .get("/backoffice/accertamenti/2026/ACC-1")
                .await
                .text()
                .contains("Attiva l'accertamento")
        );
        let on = admin
            .post(
                "/backoffice/accertamenti/2026/ACC-1/stato",
                &[("attivo", "1")],
            )
            .await;
        assert_status(&on, StatusCode::SEE_OTHER, "activate");
        assert!(
            store
                .get_accertamento(ENTE, 2026, "ACC-1")
                .await
                .unwrap()
                .active
        );

        // A year's budget from a CSV: the whole file...
        let loaded = admin
            .post_file(
                "/backoffice/accertamenti/carica",
                &[("anno", "2026")],
                "file",
                "bilancio.csv",
                "Codice;Descrizione;Capitolo;Attivo\nACC-2;Multe;3030;sì\nACC-3;Diritti di segreteria;4040;no\n"
                    .as_bytes()
                    .to_vec(),
            )
            .await;
        assert_status(&loaded, StatusCode::SEE_OTHER, "csv");
        assert_eq!(
            loaded.location.as_deref(),
            Some("/backoffice/accertamenti?anno=2026&esito=caricati&n=2")
        );
        let stored = accertamenti(store, 2026).await;
        assert_eq!(stored.len(), 3);
        assert!(!stored[2].active, "ACC-3 loaded as not active");
        // ...or nothing: a bad row is named by line and column.
        let refused = admin
            .post_file(
                "/backoffice/accertamenti/carica",
                &[("anno", "2026")],
                "file",
                "bilancio.csv",
                b"codice;descrizione;capitolo\nACC-4;Buona;1\nACC 5;Cattiva;\n".to_vec(),
            )
            .await;
        assert_status(&refused, StatusCode::BAD_REQUEST, "bad csv");
        let html = refused.text();
        assert!(
            html.contains("Riga 3, codice:") && html.contains("Riga 3, capitolo:"),
            "{html}"
        );
        assert!(html.contains("non è stato caricato nulla"));
        assert_eq!(accertamenti(store, 2026).await, stored, "nothing loaded");
        let no_file = admin
            .post_file(
                "/backoffice/accertamenti/carica",
                &[("anno", "2026")],
                "file",
                "x.csv",
                vec![],
            )
            .await;
        assert_status(&no_file, StatusCode::BAD_REQUEST, "empty file");

        // The list sorts, and exports what it shows.
        let sorted = admin
            .get("/backoffice/accertamenti?anno=2026&ordina=description&verso=desc")
            .await
            .text();
        let (tari, multe, diritti) = (
            sorted.find("TARI 2026").unwrap(),
            sorted.find("Multe").unwrap(),
            sorted.find("Diritti di segreteria").unwrap(),
        );
        assert!(
            tari < multe && multe < diritti,
            "by description, descending"
        );
        assert!(sorted.contains("3 risultati"));
        let csv = admin
            .get("/backoffice/accertamenti?anno=2026&formato=csv")
            .await;
        assert!(
            csv.content_type.starts_with("text/csv"),
            "{}",
            csv.content_type
        );
        assert!(
            csv.text().contains("ACC-2;Multe;3030;;;sì;2026"),
            "{}",
            csv.text()
        );
        let xlsx = admin
            .get("/backoffice/accertamenti?anno=2026&formato=xlsx")
            .await;
        assert!(xlsx.content_type.contains("spreadsheetml"));
        assert!(xlsx.body.starts_with(b"PK"));
        // The export loads back as it is.
        let reloaded = admin
            .post_file(
                "/backoffice/accertamenti/carica",
                &[("anno", "2026")],
                "file",
                "e.csv",
                csv.body.clone(),
            )
            .await;
        assert_status(&reloaded, StatusCode::SEE_OTHER, "export reloaded");
        assert_eq!(accertamenti(store, 2026).await, stored);
        // Another year is another list.
        assert!(
            admin
                .get("/backoffice/accertamenti?anno=2027")
                .await
                .text()
                .contains("Nessun risultato")
        );

        // A form without the session's token is refused.
        let forged = admin
            .post_raw(
                "/backoffice/accertamenti/nuovo",
                &[
                    ("anno", "2026"),
                    ("codice", "F"),
                    ("descrizione", "F"),
                    ("capitolo", "1"),
                ],
            )
            .await;
        assert_status(&forged, StatusCode::FORBIDDEN, "no csrf");

        // Another Ente's administrator: nothing of A's, to see or change.
        let other = clerk(
            store,
            base,
            "admin.b",
            rights(Role::EnteAdmin, Some(OTHER_ENTE), &[], &[]),
        )
        .await;
        let list = other.get("/backoffice/accertamenti?anno=2026").await;
        assert_status(&list, StatusCode::OK, "B's list");
        assert!(!list.text().contains("ACC-1") && !list.text().contains("TARI"));
        assert_status(
            &other.get("/backoffice/accertamenti/2026/ACC-1").await,
            StatusCode::NOT_FOUND,
            "B opens A's",
        );
        let edit = other
            .post(
                "/backoffice/accertamenti/2026/ACC-1",
                &[("descrizione", "di B"), ("capitolo", "1")],
            )
            .await;
        assert_status(&edit, StatusCode::NOT_FOUND, "B edits A's");
        let off = other
            .post(
                "/backoffice/accertamenti/2026/ACC-1/stato",
                &[("attivo", "0")],
            )
            .await;
        assert_status(&off, StatusCode::NOT_FOUND, "B deactivates A's");
        assert!(
            !other
                .get("/backoffice/accertamenti?anno=2026&formato=csv")
                .await
                .text()
                .contains("ACC-1")
        );
        assert_eq!(accertamenti(store, 2026).await, stored, "A's untouched");

        // The accountant reads and writes nothing.
        let accountant = clerk(
            store,
            base,
            "ragioneria.a",
            rights(Role::Accountant, Some(ENTE), &[], &[]),
        )
        .await;
        let list = accountant.get("/backoffice/accertamenti?anno=2026").await;
        assert_status(&list, StatusCode::OK, "accountant's list");
        assert!(list.text().contains("ACC-1") && !list.text().contains("Nuovo accertamento"));
        assert_status(
            &accountant.get("/backoffice/accertamenti/2026/ACC-1").await,
            StatusCode::OK,
            "reads one",
        );
        assert_status(
            &accountant.get("/backoffice/accertamenti/nuovo").await,
            StatusCode::FORBIDDEN,
            "new form",
        );
        for (path, fields) in [
            (
                "/backoffice/accertamenti/nuovo",
                vec![
                    ("anno", "2026"),
                    ("codice", "R"),
                    ("descrizione", "R"),
                    ("capitolo", "1"),
                ],
            ),
            (
                "/backoffice/accertamenti/2026/ACC-1",
                vec![("descrizione", "R"), ("capitolo", "1")],
            ),
            (
                "/backoffice/accertamenti/2026/ACC-1/stato",
                vec![("attivo", "0")],
            ),
        ] {
            assert_status(
                &accountant.post(path, &fields).await,
                StatusCode::FORBIDDEN,
                path,
            );
        }
        let upload = accountant
            .post_file(
                "/backoffice/accertamenti/carica",
                &[("anno", "2026")],
                "file",
                "b.csv",
                b"codice;descrizione;capitolo\nR;R;1\n".to_vec(),
            )
            .await;
        assert_status(&upload, StatusCode::FORBIDDEN, "accountant's upload");

        // An office operator without the area: neither page nor forms; with
        // it read only, the page but no forms.
        let office = clerk(
            store,
            base,
            "ufficio.a",
            rights(
                Role::OfficeOperator,
                Some(ENTE),
                &[(Area::Positions, Access::Write)],
                &["UT"],
            ),
        )
        .await;
        assert_status(
            &office.get("/backoffice/accertamenti").await,
            StatusCode::FORBIDDEN,
            "office list",
        );
        let post = office
            .post(
                "/backoffice/accertamenti/nuovo",
                &[
                    ("anno", "2026"),
                    ("codice", "O"),
                    ("descrizione", "O"),
                    ("capitolo", "1"),
                ],
            )
            .await;
        assert_status(&post, StatusCode::FORBIDDEN, "office create");
        let reader = clerk(
            store,
            base,
            "lettore.a",
            rights(
                Role::OfficeOperator,
                Some(ENTE),
                &[(Area::Accertamenti, Access::Read)],
                &["UT"],
            ),
        )
        .await;
        assert_status(
            &reader.get("/backoffice/accertamenti?anno=2026").await,
            StatusCode::OK,
            "reader",
        );
        let post = reader
            .post(
                "/backoffice/accertamenti/2026/ACC-1/stato",
                &[("attivo", "0")],
            )
            .await;
        assert_status(&post, StatusCode::FORBIDDEN, "reader writes");
        assert_eq!(accertamenti(store, 2026).await, stored, "nobody else wrote");
    }
}

#[tokio::test]
async fn catalogue_services_offices_and_scope() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (base, store) = (&app.server.base, &app.store);
        store
            .put_accertamento(
                ENTE,
                &Accertamento {
                    year: 2026,
                    code: "ACC-1".into(),
                    description: "TARI".into(),
                    chapter: "1010".into(),
                    article: None,
                    siope_code: None,
                    active: true,
                },
            )
            .await
            .unwrap();
        let admin = clerk(
            store,
            base,
            "admin.a",
            rights(Role::EnteAdmin, Some(ENTE), &[], &[]),
        )
        .await;

        // Offices: created, a bad one refused, changed.
        for (code, name) in [("UT", "Ufficio tributi"), ("UR", "Ufficio anagrafe")] {
            let r = admin
                .post(
                    "/backoffice/servizi/uffici",
                    &[("codice", code), ("nome", name)],
                )
                .await;
            assert_status(&r, StatusCode::SEE_OTHER, "office");
        }
        let bad = admin
            .post(
                "/backoffice/servizi/uffici",
                &[("codice", "U T"), ("nome", "Male")],
            )
            .await;
        assert_status(&bad, StatusCode::BAD_REQUEST, "bad office");
        assert!(
            bad.text().contains("Codice dell&#39;ufficio:"),
            "{}",
            bad.text()
        );
        assert_eq!(store.list_offices(ENTE).await.unwrap().len(), 2);
        let edit = admin
            .post(
                "/backoffice/servizi/uffici",
                &[
                    ("codice", "UT"),
                    ("nome", "Tributi"),
                    ("email", "tributi@comune.it"),
                ],
            )
            .await;
        assert_status(&edit, StatusCode::SEE_OTHER, "office edit");
        let offices = admin.get("/backoffice/servizi/uffici").await.text();
        assert!(offices.contains("tributi@comune.it"));
        assert!(
            admin
                .get("/backoffice/servizi/uffici?codice=UT")
                .await
                .text()
                .contains("Modifica l'ufficio UT")
        );

        // A service, created with each setting.
        let new = admin.get("/backoffice/servizi/nuovo").await;
        assert_status(&new, StatusCode::OK, "new form");
        assert!(
            new.text()
                .contains(&format!("<option value=\"{CATEGORY}\"")),
            "the taxonomy to choose from"
        );
        assert!(
            new.text().contains("<option value=\"2026/ACC-1\""),
            "the accertamenti to choose from"
        );
        let fields = |code: &'static str, office: &'static str| {
            vec![
                ("codice", code),
                ("nome", "Tassa rifiuti"),
                ("ufficio", office),
                ("tassonomia", CATEGORY),
                ("accertamento", "2026/ACC-1"),
                ("iban", IBAN),
                ("importo", ""),
                ("attivo", "1"),
            ]
        };
        let created = admin
            .post("/backoffice/servizi/nuovo", &fields("TARI", "UT"))
            .await;
        assert_status(&created, StatusCode::SEE_OTHER, "create service");
        let tari = store.get_service(ENTE, "TARI").await.unwrap();
        assert_eq!(tari.office_code.as_deref(), Some("UT"));
        assert_eq!(
            tari.default_accertamento.as_ref().map(|a| a.code.as_str()),
            Some("ACC-1")
        );
        assert_eq!(tari.iban.as_deref(), Some(IBAN));
        assert!(!tari.spontaneous && tari.active && tari.fixed_amount.is_none());
        let mut cert = fields("CERT", "UR");
        cert[1] = ("nome", "Certificati");
        cert[6] = ("importo", "16,00");
        cert.push(("spontaneo", "1"));
        assert_status(
            &admin.post("/backoffice/servizi/nuovo", &cert).await,
            StatusCode::SEE_OTHER,
            "cert",
        );
        let c = store.get_service(ENTE, "CERT").await.unwrap();
        assert_eq!(c.fixed_amount.map(|c| c.0), Some(1600));
        assert!(c.spontaneous);

        // Bad input, each named; nothing written.
        let mut bad = fields("BAD", "UT");
        bad[6] = ("importo", "dodici");
        let r = admin.post("/backoffice/servizi/nuovo", &bad).await;
        assert_status(&r, StatusCode::BAD_REQUEST, "bad amount");
        assert!(r.text().contains("Importo fisso:"));
        let mut bad = fields("BAD", "UT");
        bad[3] = ("tassonomia", "9/XYZ/");
        bad[5] = ("iban", "IT00X");
        let r = admin.post("/backoffice/servizi/nuovo", &bad).await;
        assert_status(&r, StatusCode::BAD_REQUEST, "bad taxonomy and iban");
        assert!(
            r.text().contains("Codice tassonomia:") && r.text().contains("IBAN:"),
            "{}",
            r.text()
        );
        let mut bad = fields("BAD", "UT");
        bad[4] = ("accertamento", "2026/NON-CE");
        let r = admin.post("/backoffice/servizi/nuovo", &bad).await;
        assert_status(&r, StatusCode::BAD_REQUEST, "unknown accertamento");
        assert!(r.text().contains("Accertamento predefinito:"));
        let r = admin
            .post("/backoffice/servizi/nuovo", &fields("TARI", "UT"))
            .await;
        assert_status(&r, StatusCode::BAD_REQUEST, "duplicate service");
        assert!(r.text().contains("Codice:") && r.text().contains("esiste già"));
        assert!(
            store.get_service(ENTE, "BAD").await.is_err(),
            "nothing written"
        );

        // Edit.
        let mut edit = fields("TARI", "UT");
        edit[1] = ("nome", "TARI 2026");
        edit.push(("spontaneo", "1"));
        assert_status(
            &admin.post("/backoffice/servizi/TARI", &edit).await,
            StatusCode::SEE_OTHER,
            "edit",
        );
        let tari = store.get_service(ENTE, "TARI").await.unwrap();
        assert!(tari.name == "TARI 2026" && tari.spontaneous);
        let mut bad = edit.clone();
        bad[5] = ("iban", "IT00X");
        assert_status(
            &admin.post("/backoffice/servizi/TARI", &bad).await,
            StatusCode::BAD_REQUEST,
            "bad edit",
        );
        assert_eq!(
            store.get_service(ENTE, "TARI").await.unwrap(),
            tari,
            "nothing written"
        );

        // List, sort, export.
        let list = admin
            .get("/backoffice/servizi?ordina=name&verso=asc")
            .await
            .text();
        assert!(list.find("Certificati").unwrap() < list.find("TARI 2026").unwrap());
        let csv = admin.get("/backoffice/servizi?formato=csv").await;
        assert!(
            csv.text().contains("CERT;Certificati;UR;"),
            "{}",
            csv.text()
        );
        assert!(csv.text().contains("16,00"));
        let xlsx = admin.get("/backoffice/servizi?formato=xlsx").await;
        assert!(xlsx.body.starts_with(b"PK"));

        // An office operator of UT with the catalogue in writing: UT's
        // services only, and never the offices.
        let ut = clerk(
            store,
            base,
            "catalogo.ut",
            rights(
                Role::OfficeOperator,
                Some(ENTE),
                &[(Area::Catalogue, Access::Write)],
                &["UT"],
            ),
        )
        .await;
        let list = ut.get("/backoffice/servizi").await.text();
        assert!(
            list.contains("TARI 2026") && !list.contains("Certificati"),
            "{list}"
        );
        assert_status(
            &ut.get("/backoffice/servizi/CERT").await,
            StatusCode::NOT_FOUND,
            "UR's service",
        );
        let mut steal = cert.clone();
        steal[1] = ("nome", "Rubato");
        assert_status(
            &ut.post("/backoffice/servizi/CERT", &steal).await,
            StatusCode::NOT_FOUND,
            "UR's edit",
        );
        assert_status(
            &ut.post("/backoffice/servizi/nuovo", &fields("UR2", "UR"))
                .await,
            StatusCode::FORBIDDEN,
            "into UR",
        );
        assert_status(
            &ut.post("/backoffice/servizi/nuovo", &fields("UT2", "UT"))
                .await,
            StatusCode::SEE_OTHER,
            "into UT",
        );
        assert_status(
            &ut.post(
                "/backoffice/servizi/uffici",
                &[("codice", "UT"), ("nome", "Mio")],
            )
            .await,
            StatusCode::FORBIDDEN,
            "offices",
        );
        assert_eq!(store.get_service(ENTE, "CERT").await.unwrap(), c);
        assert!(store.get_service(ENTE, "UR2").await.is_err());

        // Without the area: neither the page nor its forms.
        let office = clerk(
            store,
            base,
            "ufficio.a",
            rights(
                Role::OfficeOperator,
                Some(ENTE),
                &[(Area::Positions, Access::Write)],
                &["UT"],
            ),
        )
        .await;
        assert_status(
            &office.get("/backoffice/servizi").await,
            StatusCode::FORBIDDEN,
            "no area",
        );
        assert_status(
            &office.get("/backoffice/servizi/TARI").await,
            StatusCode::FORBIDDEN,
            "no area, one",
        );
        assert_status(
            &office
                .post("/backoffice/servizi/nuovo", &fields("X", "UT"))
                .await,
            StatusCode::FORBIDDEN,
            "no area, post",
        );
        assert_status(
            &office.post("/backoffice/servizi/TARI", &edit).await,
            StatusCode::FORBIDDEN,
            "no area, edit",
        );

        // The accountant reads, and changes nothing.
        let accountant = clerk(
            store,
            base,
            "ragioneria.a",
            rights(Role::Accountant, Some(ENTE), &[], &[]),
        )
        .await;
        let list = accountant.get("/backoffice/servizi").await;
        assert_status(&list, StatusCode::OK, "accountant");
        assert!(list.text().contains("Certificati") && !list.text().contains("Nuovo servizio"));
        let one = accountant.get("/backoffice/servizi/TARI").await;
        assert_status(&one, StatusCode::OK, "accountant reads one");
        assert!(!one.text().contains("Salva le modifiche"));
        assert_status(
            &accountant.post("/backoffice/servizi/TARI", &edit).await,
            StatusCode::FORBIDDEN,
            "accountant edit",
        );
        assert_status(
            &accountant
                .post("/backoffice/servizi/nuovo", &fields("Y", "UT"))
                .await,
            StatusCode::FORBIDDEN,
            "accountant create",
        );
        assert_status(
            &accountant
                .post(
                    "/backoffice/servizi/uffici",
                    &[("codice", "NEW"), ("nome", "Nuovo")],
                )
                .await,
            StatusCode::FORBIDDEN,
            "accountant office",
        );

        // Another Ente's administrator.
        let other = clerk(
            store,
            base,
            "admin.b",
            rights(Role::EnteAdmin, Some(OTHER_ENTE), &[], &[]),
        )
        .await;
        let list = other.get("/backoffice/servizi").await.text();
        assert!(!list.contains("TARI") && !list.contains("CERT"));
        assert!(
            !other
                .get("/backoffice/servizi/uffici")
                .await
                .text()
                .contains("Tributi")
        );
        assert_status(
            &other.get("/backoffice/servizi/TARI").await,
            StatusCode::NOT_FOUND,
            "B opens A's",
        );
        assert_status(
            &other.post("/backoffice/servizi/TARI", &edit).await,
            StatusCode::NOT_FOUND,
            "B edits A's",
        );
        assert!(
            store.get_service(OTHER_ENTE, "TARI").await.is_err(),
            "nor made one of its own"
        );
        assert_eq!(store.get_service(ENTE, "TARI").await.unwrap(), tari);
        assert_eq!(store.list_offices(ENTE).await.unwrap().len(), 2);
    }
}

#[tokio::test]
async fn stations_and_their_connection() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (base, store) = (&app.server.base, &app.store);
        let admin = clerk(
            store,
            base,
            "admin.a",
            rights(Role::EnteAdmin, Some(ENTE), &[], &[]),
        )
        .await;
        // The Ente's administrator sees its stations; configuring them is
        // the intermediary's.
        let list = admin.get("/backoffice/stazioni").await;
        assert_status(&list, StatusCode::OK, "admin's list");
        assert!(list.text().contains("ST_01") && !list.text().contains("ST_02"));
        assert!(!list.text().contains("Aggiungi la stazione"));
        let add = admin
            .post(
                "/backoffice/stazioni",
                &[
                    ("stazione", "ST_09"),
                    ("intermediario", BROKER),
                    ("segregazione", "9"),
                ],
            )
            .await;
        assert_status(&add, StatusCode::FORBIDDEN, "admin adds");
        assert_status(
            &admin.get("/backoffice/stazioni/ST_01").await,
            StatusCode::FORBIDDEN,
            "admin's connection",
        );
        assert_status(
            &admin.post("/backoffice/stazioni/ST_01/rimuovi", &[]).await,
            StatusCode::FORBIDDEN,
            "admin removes",
        );

        let intermediary = clerk(
            store,
            base,
            "intermediario",
            rights(Role::IntermediaryAdmin, None, &[], &[]),
        )
        .await;
        let list = intermediary.get("/backoffice/stazioni").await;
        assert!(list.text().contains("ST_01") && list.text().contains("Aggiungi la stazione"));
        // Bad input: named, nothing added.
        let bad = intermediary
            .post(
                "/backoffice/stazioni",
                &[
                    ("stazione", "ST_09"),
                    ("intermediario", BROKER),
                    ("segregazione", "nove"),
                ],
            )
            .await;
        assert_status(&bad, StatusCode::BAD_REQUEST, "bad segregation");
        assert!(bad.text().contains("Codice di segregazione:"));
        let bad = intermediary
            .post(
                "/backoffice/stazioni",
                &[
                    ("stazione", "ST_09"),
                    ("intermediario", "123"),
                    ("segregazione", "9"),
                ],
            )
            .await;
        assert_status(&bad, StatusCode::BAD_REQUEST, "bad broker");
        assert!(bad.text().contains("Intermediario:"));
        assert_eq!(store.list_stations(ENTE).await.unwrap().len(), 1);
        let add = intermediary
            .post(
                "/backoffice/stazioni",
                &[
                    ("stazione", "ST_09"),
                    ("intermediario", BROKER),
                    ("segregazione", "9"),
                ],
            )
            .await;
        assert_status(&add, StatusCode::SEE_OTHER, "add");
        assert_eq!(store.list_stations(ENTE).await.unwrap().len(), 2);
        let csv = intermediary
            .get("/backoffice/stazioni?formato=csv")
            .await
            .text();
        assert!(csv.contains(&format!("ST_09;{BROKER};09")), "{csv}");
        assert!(
            intermediary
                .get("/backoffice/stazioni?formato=xlsx")
                .await
                .body
                .starts_with(b"PK")
        );

        // The connection: set, its secrets never shown, kept when left empty.
        let form = intermediary.get("/backoffice/stazioni/ST_01").await;
        assert_status(&form, StatusCode::OK, "connection form");
        assert!(form.text().contains("non è ancora configurato"));
        let set = intermediary
            .post(
                "/backoffice/stazioni/ST_01",
                &[
                    ("soap_url", "http://127.0.0.1:9/nodo"),
                    ("auth", "subscription_key"),
                    ("subscription_key", "segreto-della-chiave"),
                    ("station_password", "password-stazione"),
                    ("reporting", "fdr3"),
                    ("retries", "2"),
                ],
            )
            .await;
        assert_status(&set, StatusCode::SEE_OTHER, "set connection");
        let shown = intermediary.get("/backoffice/stazioni/ST_01").await.text();
        assert!(!shown.contains("segreto-della-chiave") && !shown.contains("password-stazione"));
        assert!(shown.contains("(salvata)") && shown.contains("value=\"http://127.0.0.1:9/nodo\""));
        let kept = intermediary
            .post(
                "/backoffice/stazioni/ST_01",
                &[
                    ("soap_url", "http://127.0.0.1:9/nodo2"),
                    ("auth", "subscription_key"),
                    ("reporting", "fdr3"),
                    ("retries", "2"),
                ],
            )
            .await;
        assert_status(&kept, StatusCode::SEE_OTHER, "keep secrets");
        let json = store
            .station_connection(ENTE, "ST_01")
            .await
            .unwrap()
            .unwrap();
        assert!(
            json.contains("segreto-della-chiave")
                && json.contains("password-stazione")
                && json.contains("nodo2"),
            "{json}"
        );
        let bad = intermediary
            .post(
                "/backoffice/stazioni/ST_01",
                &[
                    ("soap_url", "ftp://nodo"),
                    ("auth", "none"),
                    ("retries", "tanti"),
                ],
            )
            .await;
        assert_status(&bad, StatusCode::BAD_REQUEST, "bad connection");
        assert!(bad.text().contains("Nuovi tentativi:"));
        let bad = intermediary
            .post(
                "/backoffice/stazioni/ST_01",
                &[("soap_url", "ftp://nodo"), ("auth", "none")],
            )
            .await;
        assert_status(&bad, StatusCode::BAD_REQUEST, "bad url");
        assert!(
            bad.text().contains("non è un URL http o https"),
            "{}",
            bad.text()
        );
        assert_eq!(
            store
                .station_connection(ENTE, "ST_01")
                .await
                .unwrap()
                .unwrap(),
            json,
            "nothing written"
        );

        let removed = intermediary
            .post("/backoffice/stazioni/ST_09/rimuovi", &[])
            .await;
        assert_status(&removed, StatusCode::SEE_OTHER, "remove");
        assert_eq!(store.list_stations(ENTE).await.unwrap().len(), 1);

        // Nobody else: not an office operator, nor the accountant, nor
        // another Ente's administrator (who sees their own).
        for (name, r) in [
            (
                "ufficio.a",
                rights(
                    Role::OfficeOperator,
                    Some(ENTE),
                    &[(Area::Users, Access::Write)],
                    &["UT"],
                ),
            ),
            (
                "ragioneria.a",
                rights(Role::Accountant, Some(ENTE), &[], &[]),
            ),
        ] {
            let c = clerk(store, base, name, r).await;
            assert_status(
                &c.get("/backoffice/stazioni").await,
                StatusCode::FORBIDDEN,
                name,
            );
            assert_status(
                &c.post("/backoffice/stazioni/ST_01/rimuovi", &[]).await,
                StatusCode::FORBIDDEN,
                name,
            );
        }
        let other = clerk(
            store,
            base,
            "admin.b",
            rights(Role::EnteAdmin, Some(OTHER_ENTE), &[], &[]),
        )
        .await;
        let list = other.get("/backoffice/stazioni").await.text();
        assert!(list.contains("ST_02") && !list.contains("ST_01"));
        assert_status(
            &other.get("/backoffice/stazioni/ST_01").await,
            StatusCode::FORBIDDEN,
            "B's connection",
        );
        assert_eq!(store.list_stations(ENTE).await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn users_and_roles() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (base, store) = (&app.server.base, &app.store);
        put_office(store, ENTE, "UT").await;
        put_office(store, ENTE, "UR").await;
        let admin = clerk(
            store,
            base,
            "admin.a",
            rights(Role::EnteAdmin, Some(ENTE), &[], &[]),
        )
        .await;
        let form = admin.get("/backoffice/utenti/nuovo").await;
        assert_status(&form, StatusCode::OK, "new form");
        assert!(
            form.text().contains("value=\"UT\"") && !form.text().contains("INTERMEDIARY_ADMIN")
        );

        // An office operator of UT: catalogue read, accertamenti write.
        let new_operator = [
            ("username", "Mario.Rossi"),
            ("nome", "Mario Rossi"),
            ("codice_fiscale", "RSSMRA85T10A562S"),
            ("email", "mario.rossi@comune.it"),
            ("ruolo", "OFFICE_OPERATOR"),
            ("ufficio", "UT"),
            ("area_catalogue", "read"),
            ("area_accertamenti", "write"),
        ];
        let created = admin.post("/backoffice/utenti/nuovo", &new_operator).await;
        assert_status(&created, StatusCode::OK, "create");
        let provisional = by_id(&created.text(), "password-provvisoria");
        assert_eq!(by_id(&created.text(), "nome-utente"), "mario.rossi");
        let mario = store
            .operator_by_username("mario.rossi")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(mario.rights.offices, vec!["UT".to_string()]);
        assert_eq!(
            mario.rights.grants,
            vec![
                (Area::Accertamenti, Access::Write),
                (Area::Catalogue, Access::Read)
            ]
        );
        assert!(mario.must_change_password);

        // They sign in and see only what was granted.
        let m = first_sign_in(base, "mario.rossi", &provisional).await;
        let home = m.get("/backoffice/").await.text();
        assert!(
            home.contains("href=\"/backoffice/servizi\"")
                && home.contains("href=\"/backoffice/accertamenti\"")
        );
        assert!(
            !home.contains("href=\"/backoffice/utenti\"")
                && !home.contains("href=\"/backoffice/chiavi\"")
        );
        assert_status(
            &m.get("/backoffice/servizi").await,
            StatusCode::OK,
            "granted read",
        );
        assert_status(
            &m.get("/backoffice/accertamenti").await,
            StatusCode::OK,
            "granted write",
        );
        assert_status(
            &m.get("/backoffice/utenti").await,
            StatusCode::FORBIDDEN,
            "not granted",
        );
        assert_status(
            &m.post("/backoffice/utenti/nuovo", &new_operator).await,
            StatusCode::FORBIDDEN,
            "not granted, post",
        );
        assert_status(
            &m.post(
                "/backoffice/servizi/uffici",
                &[("codice", "X"), ("nome", "X")],
            )
            .await,
            StatusCode::FORBIDDEN,
            "catalogue read only",
        );
        let acc = m
            .post(
                "/backoffice/accertamenti/nuovo",
                &[
                    ("anno", "2026"),
                    ("codice", "M1"),
                    ("descrizione", "M"),
                    ("capitolo", "1"),
                ],
            )
            .await;
        assert_status(&acc, StatusCode::SEE_OTHER, "accertamenti write");

        // Bad input: named, nobody created.
        let mut bad = new_operator.to_vec();
        bad[0] = ("username", "luigi verdi");
        bad[1] = ("nome", "");
        let r = admin.post("/backoffice/utenti/nuovo", &bad).await;
        assert_status(&r, StatusCode::BAD_REQUEST, "bad username");
        assert!(r.text().contains("Nome utente:"), "{}", r.text());
        bad[0] = ("username", "luigi.verdi");
        let r = admin.post("/backoffice/utenti/nuovo", &bad).await;
        assert_status(&r, StatusCode::BAD_REQUEST, "no name");
        assert!(r.text().contains("Nome e cognome:"));
        bad[1] = ("nome", "Luigi Verdi");
        bad[2] = ("codice_fiscale", "RSSMRA85T10A562X");
        let r = admin.post("/backoffice/utenti/nuovo", &bad).await;
        assert_status(&r, StatusCode::BAD_REQUEST, "bad fiscal code");
        assert!(r.text().contains("Codice fiscale:"));
        let r = admin.post("/backoffice/utenti/nuovo", &new_operator).await;
        assert_status(&r, StatusCode::BAD_REQUEST, "username taken");
        assert!(r.text().contains("già usati"));
        assert!(
            store
                .operator_by_username("luigi.verdi")
                .await
                .unwrap()
                .is_none()
        );
        // The Ente's administrator makes no intermediary's administrator.
        let mut up = new_operator.to_vec();
        up[0] = ("username", "capo");
        up[2] = ("codice_fiscale", "");
        up[4] = ("ruolo", "INTERMEDIARY_ADMIN");
        assert_status(
            &admin.post("/backoffice/utenti/nuovo", &up).await,
            StatusCode::FORBIDDEN,
            "intermediary",
        );
        assert!(store.operator_by_username("capo").await.unwrap().is_none());

        // Rights changed: the catalogue in writing, office UR too.
        let page = format!("/backoffice/utenti/{}", mario.id);
        let edit = [
            ("nome", "Mario Rossi"),
            ("codice_fiscale", "RSSMRA85T10A562S"),
            ("ruolo", "OFFICE_OPERATOR"),
            ("ufficio", "UT"),
            ("ufficio", "UR"),
            ("area_catalogue", "write"),
        ];
        assert_status(
            &admin.post(&page, &edit).await,
            StatusCode::SEE_OTHER,
            "edit rights",
        );
        let after = store.operator(mario.id).await.unwrap();
        assert_eq!(after.rights.grants, vec![(Area::Catalogue, Access::Write)]);
        assert_eq!(
            after.rights.offices,
            vec!["UR".to_string(), "UT".to_string()]
        );
        assert_status(
            &m.get("/backoffice/accertamenti").await,
            StatusCode::FORBIDDEN,
            "at once",
        );
        let mut bad = edit.to_vec();
        bad[0] = ("nome", " ");
        assert_status(
            &admin.post(&page, &bad).await,
            StatusCode::BAD_REQUEST,
            "bad edit",
        );
        assert_eq!(store.operator(mario.id).await.unwrap().rights, after.rights);

        // List and export.
        let list = admin.get("/backoffice/utenti").await.text();
        assert!(list.contains("mario.rossi") && list.contains("admin.a"));
        let csv = admin.get("/backoffice/utenti?formato=csv").await.text();
        assert!(
            csv.contains("mario.rossi;Mario Rossi;Operatore d'ufficio;UR, UT;"),
            "{csv}"
        );
        assert!(
            admin
                .get("/backoffice/utenti?formato=xlsx")
                .await
                .body
                .starts_with(b"PK")
        );

        // Disabled: their session ends; enabled again.
        let off = admin
            .post(&format!("{page}/stato"), &[("attivo", "0")])
            .await;
        assert_status(&off, StatusCode::SEE_OTHER, "disable");
        let gone = m.get("/backoffice/servizi").await;
        assert_eq!(
            gone.location.as_deref(),
            Some("/backoffice/login"),
            "session ended"
        );
        assert!(
            admin
                .get(&page)
                .await
                .text()
                .contains("Riattiva l'operatore")
        );
        assert_status(
            &admin
                .post(&format!("{page}/stato"), &[("attivo", "1")])
                .await,
            StatusCode::SEE_OTHER,
            "enable",
        );
        assert!(!store.operator(mario.id).await.unwrap().disabled);

        // Reset: a new provisional password, shown once, that signs in.
        let reset = admin.post(&format!("{page}/password"), &[]).await;
        assert_status(&reset, StatusCode::OK, "reset");
        let second = by_id(&reset.text(), "password-provvisoria");
        assert_ne!(second, provisional);
        assert!(store.operator(mario.id).await.unwrap().must_change_password);
        first_sign_in(base, "mario.rossi", &second).await;

        // Nobody disables themselves, changes their own rights, or takes
        // the Ente's last administrator away.
        let me = store
            .operator_by_username("admin.a")
            .await
            .unwrap()
            .unwrap();
        let mine = format!("/backoffice/utenti/{}", me.id);
        assert_status(
            &admin
                .post(&format!("{mine}/stato"), &[("attivo", "0")])
                .await,
            StatusCode::BAD_REQUEST,
            "self disable",
        );
        let demote = [("nome", "Admin"), ("ruolo", "ACCOUNTANT")];
        assert_status(
            &admin.post(&mine, &demote).await,
            StatusCode::FORBIDDEN,
            "self demote",
        );
        let intermediary = clerk(
            store,
            base,
            "intermediario",
            rights(Role::IntermediaryAdmin, None, &[], &[]),
        )
        .await;
        assert_status(
            &intermediary
                .post(&format!("{mine}/stato"), &[("attivo", "0")])
                .await,
            StatusCode::CONFLICT,
            "last admin",
        );
        assert_status(
            &intermediary.post(&mine, &demote).await,
            StatusCode::CONFLICT,
            "last admin demoted",
        );
        let me_now = store.operator(me.id).await.unwrap();
        assert!(!me_now.disabled && me_now.rights.role == Role::EnteAdmin);
        // With a second administrator, the first may go.
        let mut second_admin = new_operator.to_vec();
        second_admin[0] = ("username", "admin2.a");
        second_admin[2] = ("codice_fiscale", "");
        second_admin[4] = ("ruolo", "ENTE_ADMIN");
        assert_status(
            &admin.post("/backoffice/utenti/nuovo", &second_admin).await,
            StatusCode::OK,
            "second admin",
        );
        let admin2 = store
            .operator_by_username("admin2.a")
            .await
            .unwrap()
            .unwrap();
        assert!(admin2.rights.grants.is_empty() && admin2.rights.offices.is_empty());
        // The intermediary's administrator sees their colleagues too.
        assert!(
            intermediary
                .get("/backoffice/utenti?formato=csv")
                .await
                .text()
                .contains("intermediario;")
        );
        assert!(
            !admin
                .get("/backoffice/utenti?formato=csv")
                .await
                .text()
                .contains("intermediario")
        );

        // An office's head (Users granted, office UT) sees and makes only
        // UT's people, never more than they have.
        let head = clerk(
            store,
            base,
            "capo.ut",
            rights(
                Role::OfficeOperator,
                Some(ENTE),
                &[
                    (Area::Users, Access::Write),
                    (Area::Positions, Access::Write),
                ],
                &["UT"],
            ),
        )
        .await;
        let list = head.get("/backoffice/utenti").await.text();
        assert!(
            !list.contains("admin.a") && !list.contains("mario.rossi"),
            "{list}"
        );
        assert_status(&head.get(&page).await, StatusCode::FORBIDDEN, "UR's person");
        let mut clerk_ut = new_operator.to_vec();
        clerk_ut[0] = ("username", "sportello.ut");
        clerk_ut[2] = ("codice_fiscale", "");
        clerk_ut[6] = ("area_catalogue", "");
        clerk_ut[7] = ("area_positions", "read");
        assert_status(
            &head.post("/backoffice/utenti/nuovo", &clerk_ut).await,
            StatusCode::OK,
            "UT's person",
        );
        let mut wider = clerk_ut.clone();
        wider[0] = ("username", "largo.ut");
        wider[6] = ("area_catalogue", "read");
        assert_status(
            &head.post("/backoffice/utenti/nuovo", &wider).await,
            StatusCode::FORBIDDEN,
            "more than theirs",
        );
        let mut admin3 = clerk_ut.clone();
        admin3[0] = ("username", "admin3.a");
        admin3[4] = ("ruolo", "ENTE_ADMIN");
        assert_status(
            &head.post("/backoffice/utenti/nuovo", &admin3).await,
            StatusCode::FORBIDDEN,
            "an administrator",
        );
        assert!(
            store
                .operator_by_username("largo.ut")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .operator_by_username("admin3.a")
                .await
                .unwrap()
                .is_none()
        );

        // The accountant reads the people, and changes none.
        let accountant = clerk(
            store,
            base,
            "ragioneria.a",
            rights(Role::Accountant, Some(ENTE), &[], &[]),
        )
        .await;
        assert_status(
            &accountant.get("/backoffice/utenti").await,
            StatusCode::OK,
            "accountant reads",
        );
        assert_status(
            &accountant.get("/backoffice/utenti/nuovo").await,
            StatusCode::FORBIDDEN,
            "accountant's form",
        );
        let mut x = new_operator.to_vec();
        x[0] = ("username", "da.ragioneria");
        x[2] = ("codice_fiscale", "");
        assert_status(
            &accountant.post("/backoffice/utenti/nuovo", &x).await,
            StatusCode::FORBIDDEN,
            "accountant creates",
        );
        assert_status(
            &accountant
                .post(&format!("{page}/stato"), &[("attivo", "0")])
                .await,
            StatusCode::FORBIDDEN,
            "accountant disables",
        );
        assert_status(
            &accountant.post(&format!("{page}/password"), &[]).await,
            StatusCode::FORBIDDEN,
            "accountant resets",
        );

        // Another Ente's administrator: nobody of A's, in any way.
        let other = clerk(
            store,
            base,
            "admin.b",
            rights(Role::EnteAdmin, Some(OTHER_ENTE), &[], &[]),
        )
        .await;
        let list = other.get("/backoffice/utenti").await.text();
        assert!(!list.contains("mario.rossi") && !list.contains("admin.a"));
        assert!(
            !other
                .get("/backoffice/utenti?formato=csv")
                .await
                .text()
                .contains("mario.rossi")
        );
        let before = store.operator(mario.id).await.unwrap();
        assert_status(&other.get(&page).await, StatusCode::FORBIDDEN, "B opens");
        assert_status(
            &other.post(&page, &edit).await,
            StatusCode::FORBIDDEN,
            "B edits",
        );
        assert_status(
            &other
                .post(&format!("{page}/stato"), &[("attivo", "0")])
                .await,
            StatusCode::FORBIDDEN,
            "B disables",
        );
        assert_status(
            &other.post(&format!("{page}/password"), &[]).await,
            StatusCode::FORBIDDEN,
            "B resets",
        );
        assert_eq!(store.operator(mario.id).await.unwrap(), before, "untouched");
    }
}

#[tokio::test]
async fn api_keys_issued_once_and_revoked() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (base, store) = (&app.server.base, &app.store);
        let admin = clerk(
            store,
            base,
            "admin.a",
            rights(Role::EnteAdmin, Some(ENTE), &[], &[]),
        )
        .await;
        let list = admin.get("/backoffice/chiavi").await;
        assert_status(&list, StatusCode::OK, "list");
        assert!(list.text().contains("gpd tests"));

        // Bad input: named, no key.
        let keys_before = store.list_api_keys(Some(ENTE)).await.unwrap().len();
        let bad = admin
            .post(
                "/backoffice/chiavi",
                &[("etichetta", " "), ("tipo", "ente")],
            )
            .await;
        assert_status(&bad, StatusCode::BAD_REQUEST, "no label");
        assert!(bad.text().contains("Etichetta:"));
        assert_eq!(
            store.list_api_keys(Some(ENTE)).await.unwrap().len(),
            keys_before
        );

        // Issued: shown once, and it works.
        let issued = admin
            .post(
                "/backoffice/chiavi",
                &[("etichetta", "Tributi ACME"), ("tipo", "ente")],
            )
            .await;
        assert_status(&issued, StatusCode::OK, "issue");
        let key = by_id(&issued.text(), "chiave-api");
        assert!(key.starts_with("inc_"));
        let key_id = key.split('_').nth(1).unwrap().to_string();
        let api = reqwest::Client::new();
        let services = format!("{base}/api/v1/enti/{ENTE}/services");
        let call = |k: String| {
            let api = api.clone();
            let url = services.clone();
            async move {
                api.get(url)
                    .header("Ocp-Apim-Subscription-Key", k)
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        };
        assert_eq!(call(key.clone()).await, StatusCode::OK);
        let list = admin.get("/backoffice/chiavi").await.text();
        assert!(
            list.contains("Tributi ACME") && !list.contains(&key),
            "the secret never again"
        );
        let csv = admin.get("/backoffice/chiavi?formato=csv").await.text();
        assert!(
            csv.contains(&format!("{key_id};Tributi ACME;applicazione;")),
            "{csv}"
        );
        assert!(
            admin
                .get("/backoffice/chiavi?formato=xlsx")
                .await
                .body
                .starts_with(b"PK")
        );

        // Nobody but the Ente's administrators: not an office's head with
        // Users granted, nor the accountant; another Ente's administrator
        // neither sees nor revokes A's.
        for (name, r) in [
            (
                "capo.ut",
                rights(
                    Role::OfficeOperator,
                    Some(ENTE),
                    &[(Area::Users, Access::Write)],
                    &["UT"],
                ),
            ),
            (
                "ragioneria.a",
                rights(Role::Accountant, Some(ENTE), &[], &[]),
            ),
        ] {
            let c = clerk(store, base, name, r).await;
            assert_status(
                &c.get("/backoffice/chiavi").await,
                StatusCode::FORBIDDEN,
                name,
            );
            assert_status(
                &c.post(
                    "/backoffice/chiavi",
                    &[("etichetta", "mia"), ("tipo", "ente_admin")],
                )
                .await,
                StatusCode::FORBIDDEN,
                name,
            );
            assert_status(
                &c.post(&format!("/backoffice/chiavi/{key_id}/revoca"), &[])
                    .await,
                StatusCode::FORBIDDEN,
                name,
            );
        }
        let other = clerk(
            store,
            base,
            "admin.b",
            rights(Role::EnteAdmin, Some(OTHER_ENTE), &[], &[]),
        )
        .await;
        let theirs = other.get("/backoffice/chiavi").await.text();
        assert!(!theirs.contains("Tributi ACME"), "{theirs}");
        assert_status(
            &other
                .post(&format!("/backoffice/chiavi/{key_id}/revoca"), &[])
                .await,
            StatusCode::NOT_FOUND,
            "B revokes A's",
        );
        assert_eq!(call(key.clone()).await, StatusCode::OK, "still works");

        // Revoked: refused at once.
        let revoked = admin
            .post(&format!("/backoffice/chiavi/{key_id}/revoca"), &[])
            .await;
        assert_status(&revoked, StatusCode::SEE_OTHER, "revoke");
        assert_eq!(call(key).await, StatusCode::UNAUTHORIZED);
        assert!(
            !admin
                .get("/backoffice/chiavi")
                .await
                .text()
                .contains("Tributi ACME")
        );
    }
}
