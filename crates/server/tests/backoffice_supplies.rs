//! The back office's supplies and layouts (issue 16), over HTTP on both
//! databases: a real supply in a built-in layout uploaded through the form
//! and followed to its end, its report, outcome and notices downloaded, a
//! file that is not a supply refused with nothing recorded, the archive
//! sorted and exported, layouts listed, read, refused and stored; and who
//! may do what: another Ente's operator sees nothing, an accountant reads
//! but neither uploads nor changes layouts, an office operator uploads only
//! rows of their offices' services.

use crate::common::app;
use crate::common::backoffice;

use app::gpd::{ENTE, OTHER_ENTE};
use app::spawn_app;
use backoffice::{Clerk, clerk, rights};
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::access::{Access, Area, Role};
use incasso_core::catalogue::Service;
use incasso_core::ente::Office;
use incasso_store::Store;
use incasso_testkit::backends;
use reqwest::StatusCode;

/// incasso-csv's sample (as the Digit BUS tests load it): a TARI position
/// with a single solution and two installments, and a school-meal one.
const INCASSO_CSV: &str = "codice;servizio;codice_fiscale;nominativo;rata;importo;causale;scadenza;iuv;accertamento;operazione
TARI-001;TARI;RSSMRA85T10A562S;Mario Rossi;0;300,00;TARI 2027 unica;31/03/2027;;2026/ACC-TARI;
TARI-001;TARI;RSSMRA85T10A562S;Mario Rossi;1;150,00;TARI 2027 rata 1;31/03/2027;;2026/ACC-TARI;
TARI-001;TARI;RSSMRA85T10A562S;Mario Rossi;2;150,00;TARI 2027 rata 2;30/06/2027;;2026/ACC-TARI;
MENSA-7;MENSA;RSSMRA85T10A562S;Maria Bianchi;0;1.234,56;Mensa 2027;30/04/2027;;;
";

/// The catalogue of Ente A: TARI of office UT, MENSA of office UR, both
/// booked on one accertamento.
async fn catalogue(store: &Store) {
    for (code, name) in [("UT", "Ufficio tributi"), ("UR", "Ufficio refezione")] {
        store
            .put_office(
                ENTE,
                &Office {
                    code: code.into(),
                    name: name.into(),
                    email: None,
                },
            )
            .await
            .unwrap();
    }
    store
        .put_accertamento(
            ENTE,
            &Accertamento {
                year: 2026,
                code: "ACC-TARI".into(),
                description: "TARI".into(),
                chapter: "1010".into(),
                article: None,
                siope_code: None,
                active: true,
            },
        )
        .await
        .unwrap();
    for (code, office) in [("TARI", "UT"), ("MENSA", "UR")] {
        store
            .put_service(
                ENTE,
                &Service {
                    code: code.into(),
                    name: format!("Servizio {code}"),
                    office_code: Some(office.into()),
                    taxonomy_code: "9/0101101IM/".into(),
                    default_accertamento: Some(AccertamentoRef {
                        year: 2026,
                        code: "ACC-TARI".into(),
                    }),
                    iban: None,
                    fixed_amount: None,
                    spontaneous: false,
                    pagopa_service_id: None,
                    active: true,
                },
            )
            .await
            .unwrap();
    }
}

/// How many supplies Ente A has recorded.
async fn supplies(store: &Store) -> usize {
    store.list_supplies(ENTE, None, 1000).await.unwrap().len()
}

/// Uploads `bytes` as `file_name` in `layout` through the form.
async fn upload(c: &Clerk, layout: &str, file_name: &str, bytes: &[u8]) -> backoffice::Answer {
    c.post_file(
        "/backoffice/forniture/carica",
        &[("tracciato", layout), ("servizio", "")],
        "file",
        file_name,
        bytes.to_vec(),
    )
    .await
}

/// Follows a supply's page until its load ends; answers the last page.
async fn until_loaded(c: &Clerk, path: &str) -> String {
    for _ in 0..200 {
        let page = c.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        let html = page.text();
        if !html.contains("In caricamento") {
            return html;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the supply at {path} never finished loading");
}

#[tokio::test]
async fn supplies_upload_report_outcome_and_rights() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let store = app.store.clone();
        let base = app.server.base.clone();
        catalogue(&store).await;
        let admin = clerk(
            &store,
            &base,
            "admin.a",
            rights(Role::EnteAdmin, Some(ENTE), &[], &[]),
        )
        .await;

        // The empty archive, and the form with the built-in layouts.
        let archive = admin.get("/backoffice/forniture").await;
        assert_eq!(archive.status, StatusCode::OK, "{backend:?}");
        assert!(archive.text().contains("Nessun risultato"));
        assert!(archive.text().contains("/backoffice/forniture/carica"));
        let form = admin.get("/backoffice/forniture/carica").await;
        assert_eq!(form.status, StatusCode::OK);
        let html = form.text();
        assert!(html.contains(r#"<option value="incasso-csv""#), "{html}");
        assert!(html.contains("Servizio TARI (TARI)"), "{html}");
        assert!(
            !html.contains(r#"<option value="tesoreria-csv""#),
            "a treasury layout loads no supply"
        );

        // Files that are not supplies: refused with the reason, nothing
        // recorded.
        for (name, bytes, why) in [
            (
                "garbage.csv",
                b"\x00\x01\x02 this is not a supply \xff".to_vec(),
                "non corrisponde al tracciato",
            ),
            ("empty.csv", Vec::new(), "vuoto"),
            (
                "header-only.csv",
                INCASSO_CSV.lines().next().unwrap().as_bytes().to_vec(),
                "non contiene righe",
            ),
            (
                "tari.json",
                br#"{"not": "a supply"}"#.to_vec(),
                "non corrisponde al tracciato",
            ),
        ] {
            let answer = upload(&admin, "incasso-csv", name, &bytes).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{name}");
            let text = answer.text();
            assert!(text.contains("File: "), "{name}: {text}");
            assert!(text.contains(why), "{name}: {text}");
            assert!(text.contains(r#"role="alert""#));
        }
        // The right file in the wrong layout.
        let answer = upload(&admin, "govpay-csv", "tari.csv", INCASSO_CSV.as_bytes()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
        // No layout chosen, an unknown one.
        let answer = upload(&admin, "", "tari.csv", INCASSO_CSV.as_bytes()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert!(answer.text().contains("Tracciato: "));
        let answer = upload(&admin, "nope", "tari.csv", INCASSO_CSV.as_bytes()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert!(answer.text().contains("tracciato sconosciuto"));
        assert_eq!(supplies(&store).await, 0, "{backend:?}: a refusal recorded");

        // A form whose file comes before its CSRF field is refused unread.
        let boundary = "----incassotestboundaryX";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"tari.csv\"\r\n\r\n{INCASSO_CSV}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{}\r\n--{boundary}--\r\n",
            admin.csrf
        );
        let forged = admin
            .client
            .post(format!("{base}/backoffice/forniture/carica"))
            .header("cookie", &admin.cookie)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
        assert_eq!(supplies(&store).await, 0);

        // A real supply: to its page (303), followed until it is loaded.
        let answer = upload(&admin, "incasso-csv", "tari.csv", INCASSO_CSV.as_bytes()).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
        let path = answer.location.clone().unwrap();
        assert!(path.starts_with("/backoffice/forniture/"), "{path}");
        let id: i64 = path.rsplit('/').next().unwrap().parse().unwrap();
        let html = until_loaded(&admin, &path).await;
        assert!(html.contains("Caricata"), "{html}");
        assert!(html.contains("Nessun errore"), "{html}");
        assert!(html.contains("tari.csv"));
        // Its files: the report (no errors), the outcome with the notice
        // numbers, the notices.
        let report = admin.get(&format!("{path}/rapporto.csv")).await;
        assert_eq!(report.status, StatusCode::OK);
        assert!(report.content_type.starts_with("text/csv"));
        assert!(
            report
                .text()
                .starts_with("riga;campo;valore;codice;messaggio")
        );
        let outcome = admin.get(&format!("{path}/esito")).await;
        assert_eq!(outcome.status, StatusCode::OK);
        let navs: Vec<String> = store
            .get_position(ENTE, "TARI-001")
            .await
            .unwrap()
            .position
            .options
            .iter()
            .map(|o| o.notice_number.as_ref().unwrap().as_str().to_string())
            .collect();
        assert_eq!(navs.len(), 3);
        for nav in &navs {
            assert!(outcome.text().contains(nav.as_str()), "{}", outcome.text());
        }
        let zip = admin.get(&format!("{path}/avvisi.zip")).await;
        assert_eq!(zip.status, StatusCode::OK);
        assert_eq!(zip.content_type, "application/zip");
        assert!(zip.body.starts_with(b"PK"));
        // The same file again is refused: it was loaded already.
        let again = upload(&admin, "incasso-csv", "tari.csv", INCASSO_CSV.as_bytes()).await;
        assert_eq!(again.status, StatusCode::CONFLICT);
        assert!(again.text().contains(&format!("fornitura {id}")));

        // A supply with bad rows: refused whole (incasso-csv is all or
        // nothing), its report by row and field, paged and exported.
        let mut bad = String::from(INCASSO_CSV.lines().next().unwrap());
        bad.push('\n');
        for i in 0..60 {
            bad.push_str(&format!(
                "BAD-{i:03};TARI;RSSMRA85T10A562X;Mario Rossi;0;10,00;x;31/12/2027;;;\n"
            ));
        }
        bad.push_str("GOOD-1;TARI;RSSMRA85T10A562S;Mario Rossi;0;10,00;x;31/12/2027;;;\n");
        let answer = upload(&admin, "incasso-csv", "errori.csv", bad.as_bytes()).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
        let bad_path = answer.location.clone().unwrap();
        let html = until_loaded(&admin, &bad_path).await;
        assert!(html.contains("Rifiutata"), "{html}");
        assert!(html.contains("BAD_FISCAL_CODE"), "{html}");
        assert!(html.contains("60 risultati"), "{html}");
        assert!(html.contains("pagina=2"), "the report pages: {html}");
        let second = admin.get(&format!("{bad_path}?pagina=2")).await;
        assert_eq!(second.status, StatusCode::OK);
        assert!(
            second
                .text()
                .contains("<td class=\"text-end text-nowrap\">61</td>")
        );
        let csv = admin.get(&format!("{bad_path}?formato=csv")).await;
        assert_eq!(csv.status, StatusCode::OK);
        assert_eq!(csv.text().lines().count(), 61, "header and 60 errors");
        assert!(csv.text().contains(";BAD_FISCAL_CODE;"), "{}", csv.text());
        let report = admin.get(&format!("{bad_path}/rapporto.csv")).await;
        assert!(report.text().contains("BAD_FISCAL_CODE"));
        assert_eq!(
            admin.get(&format!("{bad_path}/esito")).await.status,
            StatusCode::NOT_FOUND,
            "a refused supply has no outcome"
        );

        // The archive: both, newest first, sorted on request, exported.
        let archive = admin.get("/backoffice/forniture").await.text();
        let (newest, oldest) = (
            archive.find("errori.csv").unwrap(),
            archive.find("tari.csv").unwrap(),
        );
        assert!(newest < oldest, "newest first");
        assert!(archive.contains("2 risultati"));
        let by_file = admin
            .get("/backoffice/forniture?ordina=file&verso=desc")
            .await
            .text();
        assert!(by_file.find("tari.csv").unwrap() < by_file.find("errori.csv").unwrap());
        let csv = admin.get("/backoffice/forniture?formato=csv").await;
        assert_eq!(csv.status, StatusCode::OK);
        assert!(csv.content_type.starts_with("text/csv"));
        let text = csv.text();
        assert!(
            text.contains("tari.csv") && text.contains("Rifiutata"),
            "{text}"
        );
        let xlsx = admin.get("/backoffice/forniture?formato=xlsx").await;
        assert_eq!(xlsx.status, StatusCode::OK);
        assert!(xlsx.content_type.contains("spreadsheetml"));
        assert!(xlsx.body.starts_with(b"PK"));
        assert_eq!(supplies(&store).await, 2);

        // Another Ente's administrator sees none of it, whatever the URL.
        let other = clerk(
            &store,
            &base,
            "admin.b",
            rights(Role::EnteAdmin, Some(OTHER_ENTE), &[], &[]),
        )
        .await;
        let theirs = other.get("/backoffice/forniture").await;
        assert_eq!(theirs.status, StatusCode::OK);
        assert!(!theirs.text().contains("tari.csv"));
        for suffix in ["", "/rapporto.csv", "/esito", "/avvisi.zip", "?formato=csv"] {
            let answer = other.get(&format!("{path}{suffix}")).await;
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{suffix}");
            assert!(!answer.text().contains("tari.csv"), "{suffix}");
            assert!(!answer.text().contains(&navs[0]), "{suffix}");
        }

        // The accountant reads, and neither uploads nor changes layouts.
        let accountant = clerk(
            &store,
            &base,
            "ragioneria.a",
            rights(Role::Accountant, Some(ENTE), &[], &[]),
        )
        .await;
        let archive = accountant.get("/backoffice/forniture").await;
        assert_eq!(archive.status, StatusCode::OK);
        assert!(archive.text().contains("tari.csv"));
        assert!(!archive.text().contains("/backoffice/forniture/carica"));
        assert_eq!(accountant.get(&path).await.status, StatusCode::OK);
        assert_eq!(
            accountant.get("/backoffice/forniture/carica").await.status,
            StatusCode::FORBIDDEN
        );
        let other_file = INCASSO_CSV.replace("TARI-001", "TARI-002");
        let refused = upload(&accountant, "incasso-csv", "x.csv", other_file.as_bytes()).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert_eq!(supplies(&store).await, 2);

        // An operator without the supplies area: not even the archive.
        let positions_only = clerk(
            &store,
            &base,
            "posizioni.a",
            rights(
                Role::OfficeOperator,
                Some(ENTE),
                &[(Area::Positions, Access::Write)],
                &["UT"],
            ),
        )
        .await;
        assert_eq!(
            positions_only.get("/backoffice/forniture").await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            positions_only.get(&path).await.status,
            StatusCode::FORBIDDEN
        );
        // An office operator may load only their offices' services: a file
        // with a school-meal row (office UR) is refused whole for UT.
        let office = clerk(
            &store,
            &base,
            "tributi.a",
            rights(
                Role::OfficeOperator,
                Some(ENTE),
                &[(Area::Supplies, Access::Write)],
                &["UT"],
            ),
        )
        .await;
        let form = office.get("/backoffice/forniture/carica").await.text();
        assert!(form.contains("Servizio TARI (TARI)") && !form.contains("Servizio MENSA"));
        let mixed = INCASSO_CSV
            .replace("TARI-001", "TARI-003")
            .replace("MENSA-7", "MENSA-8");
        let refused = upload(&office, "incasso-csv", "misto.csv", mixed.as_bytes()).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());
        assert!(refused.text().contains("fuori dai propri uffici"));
        assert_eq!(supplies(&store).await, 2);
        let own: String = mixed.lines().take(4).map(|l| format!("{l}\n")).collect();
        let answer = upload(&office, "incasso-csv", "tari-ut.csv", own.as_bytes()).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
        assert!(
            until_loaded(&office, &answer.location.unwrap())
                .await
                .contains("Caricata")
        );
    }
}

#[tokio::test]
async fn layouts_listed_read_refused_and_stored() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let store = app.store.clone();
        let base = app.server.base.clone();
        catalogue(&store).await;
        let admin = clerk(
            &store,
            &base,
            "admin.a",
            rights(Role::EnteAdmin, Some(ENTE), &[], &[]),
        )
        .await;
        let list = admin.get("/backoffice/tracciati").await;
        assert_eq!(list.status, StatusCode::OK, "{backend:?}");
        let html = list.text();
        for name in ["incasso-csv", "govpay-csv", "mypay-1_4", "tesoreria-csv"] {
            assert!(html.contains(&format!(">{name}</a>")), "{name}: {html}");
        }
        assert!(html.contains("Predefinito"));
        // A built-in layout's text, as written (its comments too).
        let view = admin.get("/backoffice/tracciati/incasso-csv").await;
        assert_eq!(view.status, StatusCode::OK);
        let source = incasso_bus::builtin::source("incasso-csv").unwrap();
        let first_line = source.lines().find(|l| l.starts_with("name")).unwrap();
        assert!(
            view.text().contains(&first_line.replace('"', "&#34;"))
                || view.text().contains(&first_line.replace('"', "&quot;")),
            "{}",
            view.text()
        );
        assert_eq!(
            admin.get("/backoffice/tracciati/nope").await.status,
            StatusCode::NOT_FOUND
        );

        // A text that is not a layout: 400, the parser's reason with its
        // line; nothing stored.
        let broken = "name = \"tributi-csv\"\nversion = \n";
        let answer = admin
            .post(
                "/backoffice/tracciati",
                &[("nome", "tributi-csv"), ("testo", broken)],
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        let text = answer.text();
        assert!(
            text.contains("Testo del tracciato: tracciato non valido"),
            "{text}"
        );
        assert!(text.contains("line 2"), "the parser names the line: {text}");
        assert!(
            text.contains("version = "),
            "the text comes back to be corrected"
        );
        // A layout that breaks a rule: the rule named.
        let answer = admin
            .post(
                "/backoffice/tracciati",
                &[
                    ("nome", "tributi-csv"),
                    ("testo", "name = \"tributi-csv\"\nversion = 1\nkey = []\n"),
                ],
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert!(answer.text().contains("tracciato non valido"));
        // Names that disagree, and a missing name.
        let own = source.replace("name = \"incasso-csv\"", "name = \"tributi-csv\"");
        let answer = admin
            .post(
                "/backoffice/tracciati",
                &[("nome", "altro"), ("testo", &own)],
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert!(answer.text().contains("diverso"));
        let answer = admin
            .post("/backoffice/tracciati", &[("nome", ""), ("testo", &own)])
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert!(answer.text().contains("Nome: "));
        assert!(store.list_layouts(ENTE).await.unwrap().is_empty());
        // A forged form: refused.
        let forged = admin
            .post_raw(
                "/backoffice/tracciati",
                &[("nome", "tributi-csv"), ("testo", &own), ("csrf", "x")],
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);

        // The Ente's own: stored, listed with its version, offered for
        // uploads, readable.
        let answer = admin
            .post(
                "/backoffice/tracciati",
                &[("nome", "tributi-csv"), ("testo", &own)],
            )
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
        assert_eq!(
            answer.location.as_deref(),
            Some("/backoffice/tracciati/tributi-csv")
        );
        let list = admin.get("/backoffice/tracciati").await.text();
        assert!(list.contains(">tributi-csv</a>"), "{list}");
        assert!(list.contains("Dell&#39;ente"), "{list}");
        let view = admin.get("/backoffice/tracciati/tributi-csv").await.text();
        assert!(view.contains("tributi-csv"));
        let form = admin.get("/backoffice/forniture/carica").await.text();
        assert!(form.contains(r#"<option value="tributi-csv""#));
        // Version 2 replaces it.
        let answer = admin
            .post(
                "/backoffice/tracciati",
                &[("nome", "tributi-csv"), ("testo", &own)],
            )
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER);
        assert_eq!(
            store.list_layouts(ENTE).await.unwrap(),
            vec![("tributi-csv".to_string(), 2)]
        );
        // Exports of the list.
        let csv = admin.get("/backoffice/tracciati?formato=csv").await;
        assert_eq!(csv.status, StatusCode::OK);
        assert!(
            csv.text().contains("tributi-csv;Dell'ente;2"),
            "{}",
            csv.text()
        );
        let xlsx = admin.get("/backoffice/tracciati?formato=xlsx").await;
        assert!(xlsx.body.starts_with(b"PK"));
        let sorted = admin
            .get("/backoffice/tracciati?ordina=versione&verso=desc")
            .await
            .text();
        assert!(
            sorted.find(">tributi-csv</a>").unwrap() < sorted.find(">incasso-csv</a>").unwrap()
        );

        // The accountant reads layouts and changes none.
        let accountant = clerk(
            &store,
            &base,
            "ragioneria.a",
            rights(Role::Accountant, Some(ENTE), &[], &[]),
        )
        .await;
        assert_eq!(
            accountant.get("/backoffice/tracciati").await.status,
            StatusCode::OK
        );
        let view = accountant.get("/backoffice/tracciati/tributi-csv").await;
        assert_eq!(view.status, StatusCode::OK);
        assert!(!view.text().contains("<textarea"));
        let refused = accountant
            .post(
                "/backoffice/tracciati",
                &[("nome", "tributi-csv"), ("testo", &own)],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert_eq!(store.list_layouts(ENTE).await.unwrap()[0].1, 2);
        // Another Ente's administrator: their own list, not A's layout.
        let other = clerk(
            &store,
            &base,
            "admin.b",
            rights(Role::EnteAdmin, Some(OTHER_ENTE), &[], &[]),
        )
        .await;
        assert!(
            !other
                .get("/backoffice/tracciati")
                .await
                .text()
                .contains("tributi-csv")
        );
        assert_eq!(
            other.get("/backoffice/tracciati/tributi-csv").await.status,
            StatusCode::NOT_FOUND
        );
        // What they store is theirs alone.
        let answer = other
            .post(
                "/backoffice/tracciati",
                &[("nome", "tributi-csv"), ("testo", &own)],
            )
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER);
        assert_eq!(store.list_layouts(ENTE).await.unwrap()[0].1, 2);
        assert_eq!(store.list_layouts(OTHER_ENTE).await.unwrap()[0].1, 1);
    }
}
