//! The Sportello Digitale with its card terminal (issue 18), end to end on
//! both databases: incasso, and the simulated POS gateway, terminal,
//! acquirer and Node on a port of their own. A counter clerk issues a
//! position at the desk through the pages, presses *Invia al terminale
//! POS*, and the issued page follows the terminal's session (reloading
//! itself while it is open) until the receipt has come: the position is
//! paid, and the desk's day counts it as collected at its POS. A second
//! push of the paid notice offers no button and is refused. Then the
//! payment goes where every payment goes: the acquirer PSP's reporting
//! flow, published on the simulated Node, is fetched by incasso's
//! flow-fetch use case, the treasury's OPI journal credits the flow's
//! total in one sospeso, reconciliation matches them, and an accountant
//! sees it on the back office's pages: the position paid and reported,
//! the payment reconciled, the sospeso matched to the flow, and the
//! amount on the service's accertamento to the cent (flow page and
//! reversale).

use crate::common::app;
use crate::common::backoffice;
use crate::common::bo_world;
use crate::common::desk_pos_world;
use crate::common::desk_world;

use app::gpd::ENTE;
use backoffice::{clerk, rights};
use desk_pos_world::{KEY, desk_pos_world};
use desk_world::{DEBTOR, DESK, SERVICE, input_value};
use incasso_core::access::Role;
use incasso_core::position::OptionStatus;
use incasso_simulator::pos::acquirer;
use incasso_testkit::backends;
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_takes_the_payment_on_the_desk_terminal() {
    for backend in backends() {
        let w = desk_pos_world(backend).await;
        let (store, base, sim, sim_url) = (&w.store, &w.base, &w.sim, &w.sim_url);
        let psp = acquirer();

        // Issued at the desk through its pages.
        let lucia = clerk(
            store,
            base,
            "lucia.sportello",
            rights(Role::CounterClerk, Some(ENTE), &[], &["ANAG"]),
        )
        .await;
        let service_url = format!("/backoffice/sportello/{DESK}/servizi/{SERVICE}");
        let token = input_value(&lucia.get(&service_url).await.text(), "token");
        let fields = desk_form(&token);
        let issued = lucia.post(&format!("{service_url}/emetti"), &fields).await;
        assert_eq!(issued.status, StatusCode::SEE_OTHER, "{}", issued.text());
        let location = issued.location.unwrap();
        let page = lucia.get(&location).await;
        assert!(
            page.text().contains("id=\"invia-pos\""),
            "{backend:?}: no button to the terminal: {}",
            page.text()
        );
        let iupd = location.rsplit('/').next().unwrap().to_string();
        let nav = {
            let p = store.get_position(ENTE, &iupd).await.unwrap();
            p.position.options[0]
                .notice_number
                .as_ref()
                .unwrap()
                .as_str()
                .to_string()
        };

        // Pushed to the terminal; the page follows it until paid.
        let pushed = lucia.post(&format!("{location}/pos"), &[]).await;
        assert_eq!(pushed.status, StatusCode::SEE_OTHER, "{}", pushed.text());
        assert_eq!(
            pushed.location.as_deref(),
            Some(&*format!("{location}?esito=pos"))
        );
        let mut last = String::new();
        let mut refreshed = false;
        for _ in 0..200 {
            let resp = lucia
                .client
                .get(format!("{base}{location}"))
                .header("cookie", &lucia.cookie)
                .send()
                .await
                .unwrap();
            refreshed |= resp.headers().contains_key("refresh");
            last = resp.text().await.unwrap();
            if last.contains("<strong>Pagato</strong>") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(
            last.contains("<strong>Pagato</strong>"),
            "{backend:?}: the terminal never paid: {last}"
        );
        assert!(
            refreshed,
            "{backend:?}: the page never reloaded itself while open"
        );
        assert!(
            !last.contains("id=\"invia-pos\""),
            "a paid notice is not pushed again"
        );
        let (stored, i) = store.find_by_notice_number(ENTE, &nav).await.unwrap();
        assert_ne!(stored.position.options[i].status, OptionStatus::Unpaid);

        // The day counts it as collected at the desk's POS.
        let day = lucia
            .get(&format!("/backoffice/sportello/{DESK}/giornata"))
            .await
            .text();
        assert!(day.contains("id=\"totale-incassato\">16,00 €"), "{day}");
        assert!(day.contains("id=\"totale-pos\">16,00 €"), "{day}");
        assert!(day.contains("POS dello sportello"), "{day}");

        // Pushing the paid notice again is refused, on the page.
        let again = lucia.post(&format!("{location}/pos"), &[]).await;
        assert_ne!(again.status, StatusCode::SEE_OTHER, "{}", again.text());
        assert!(again.status.as_u16() < 500, "{}", again.status);

        // Reported by the acquirer, credited by the treasury, reconciled.
        let iuv = stored.position.options[i].iuv.clone().expect("an IUV");
        bo_world::connect_station(store, ENTE, "ST_01", sim_url, KEY).await;
        let flows = bo_world::report_and_reconcile(store, sim, ENTE, chrono::Utc::now()).await;
        let flow = flows
            .iter()
            .find(|f| f.ente == ENTE)
            .unwrap_or_else(|| panic!("{backend:?}: no flow for the Ente: {flows:?}"));
        assert!(
            flow.flow_id.contains(&psp.id),
            "{backend:?}: the acquirer's flow: {flow:?}"
        );
        assert_eq!((flow.payments, flow.total_cents), (1, 1_600), "{flow:?}");
        let sospeso = store
            .movements(ENTE)
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.amount.0 == 1_600)
            .unwrap_or_else(|| panic!("{backend:?}: no sospeso of 16,00"));
        let row = store
            .movement_row(ENTE, &sospeso.movement_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.flow_id.as_deref(), Some(&*flow.flow_id), "{row:?}");
        assert_eq!(row.status.as_deref(), Some("MATCHED"), "{row:?}");
        assert!(
            store.recon_anomalies(ENTE, None).await.unwrap().is_empty(),
            "{backend:?}: a clean payment leaves no anomaly"
        );

        // What the accountant sees.
        let anna = clerk(
            store,
            base,
            "anna.ragioneria",
            rights(Role::Accountant, Some(ENTE), &[], &[]),
        )
        .await;
        let position = anna.get(&format!("/backoffice/posizioni/{iupd}")).await;
        assert_eq!(position.status, StatusCode::OK, "{}", position.text());
        let position = position.text();
        assert!(
            position.contains("Pagata e rendicontata"),
            "{backend:?}: the position reported: {position}"
        );
        assert!(
            position.contains(&psp.name) && position.contains("16,00"),
            "the acquirer's receipt: {position}"
        );
        let reconciled = anna
            .get("/backoffice/tesoreria/righe?classe=RECONCILED")
            .await
            .text();
        assert!(
            reconciled.contains(&iuv),
            "{backend:?}: reconciled: {reconciled}"
        );
        let flow_page = anna
            .get(&format!("/backoffice/flussi/{}", flow.flow_id))
            .await
            .text();
        assert!(flow_page.contains(&iuv), "{flow_page}");
        assert!(
            flow_page.contains("2026/ACC-ANAG") && flow_page.contains("16,00"),
            "the flow over the service's accertamento: {flow_page}"
        );
        assert!(
            flow_page.contains(&sospeso.document_number),
            "the flow names its sospeso: {flow_page}"
        );
        let movement = anna
            .get(&format!(
                "/backoffice/tesoreria/movimento?id={}",
                backoffice::encode(&sospeso.movement_id)
            ))
            .await
            .text();
        assert!(
            movement.contains("Abbinato") && movement.contains(&flow.flow_id),
            "{backend:?}: the sospeso matched to its flow: {movement}"
        );
        // The reversale proposal needs the Ente's treasury settings.
        incasso_app::reconcile::put_treasury_settings(
            store,
            ENTE,
            &incasso_app::reconcile::TreasurySettings {
                bank_abi: "03069".into(),
                ipa_office_code: "UFAB12".into(),
                siope_ente_code: "012345678".into(),
                ente_channel: "A2A-12345678".into(),
                bank_channel: "A2A-87654321".into(),
                bank_ente_code: "1234567".into(),
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        let rev = anna
            .get(&format!(
                "/backoffice/tesoreria/reversale?id={}&numero=1",
                backoffice::encode(&sospeso.movement_id)
            ))
            .await;
        assert_eq!(rev.status, StatusCode::OK, "{}", rev.text());
        let root =
            incasso_xml::parse(rev.text().as_bytes(), incasso_xml::Limits::default()).unwrap();
        let r = root.child("reversale").unwrap();
        assert_eq!(r.text_of("importo_reversale"), Some("16.00"));
        let parts: Vec<(String, String)> = r
            .child("informazioni_versante")
            .unwrap()
            .child("dati_a_disposizione_ente_versante")
            .unwrap()
            .children_named("accertamento")
            .map(|a| {
                (
                    a.text_of("codice").unwrap().to_string(),
                    a.text_of("importo").unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(parts, [("ACC-ANAG".to_string(), "16.00".to_string())]);
    }
}

/// The desk's form of service DIRITTI filled for Mario Rossi (practice
/// AB1234, the first amount of the table: 16,00 €) under `token`.
fn desk_form(token: &str) -> Vec<(&'static str, &str)> {
    vec![
        ("token", token),
        ("debtor_fiscal_code", DEBTOR),
        ("debtor_name", "Mario Rossi"),
        ("email", ""),
        ("pratica", "AB1234"),
        ("amount", "0"),
    ]
}

/// A published position of Ente A for `fiscal_code`: `amount` due in
/// `days`, in `installments` (0: a single payment). Its notice numbers,
/// the single solution first.
pub(crate) async fn open_position(
    store: &incasso_store::Store,
    iupd: &str,
    fiscal_code: &str,
    amount: i64,
    days: i64,
    installments: u32,
) -> Vec<String> {
    let mut p = incasso_core::sample::position(&incasso_core::sample::PositionSpec {
        ente: ENTE,
        company_name: "Comune di prova 1",
        iupd: iupd.into(),
        debtor_index: 1,
        amount: incasso_core::Cents(amount),
        description: format!("Diritti {iupd}"),
        category: "9/0101101IM/",
        iban: app::gpd::IBAN,
        due_date: chrono::Utc::now() + chrono::Duration::days(days),
        installments,
        second_beneficiary: None,
        quotas: vec![],
    });
    p.debtor.fiscal_code = fiscal_code.into();
    // Of the clerk's office, as the desk's service is.
    let placement = incasso_store::Placement {
        service: Some(SERVICE.into()),
        office: Some("ANAG".into()),
    };
    let stored = store
        .create_position_placed(ENTE, p, Some(placement), chrono::Utc::now(), true)
        .await
        .unwrap();
    stored
        .position
        .options
        .iter()
        .map(|o| o.notice_number.as_ref().unwrap().as_str().to_string())
        .collect()
}

/// The page at `location` reloaded, as the browser would on its Refresh
/// header, until it shows `Pagato` (ten seconds at most): its last text,
/// and whether it asked to be reloaded while the terminal worked.
async fn follow_until_paid(clerk: &backoffice::Clerk, location: &str) -> (String, bool) {
    let mut last = String::new();
    let mut refreshed = false;
    for _ in 0..200 {
        let resp = clerk
            .client
            .get(format!("{}{location}", clerk.base))
            .header("cookie", &clerk.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{location}");
        refreshed |= resp.headers().contains_key("refresh");
        last = resp.text().await.unwrap();
        if last.contains("<strong>Pagato</strong>") {
            return (last, refreshed);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the terminal never paid: {last}");
}

/// The checkbox values the desk page offers, in order.
fn choices(html: &str) -> Vec<String> {
    html.split("name=\"avviso\" value=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect()
}

/// The sessions of the desk today.
async fn sessions(w: &desk_pos_world::DeskPosWorld) -> usize {
    incasso_app::pos::sessions_of_desk(
        &w.app.system("test"),
        ENTE,
        DESK,
        incasso_app::desk::today(&w.app.system("test")),
    )
    .await
    .unwrap()
    .len()
}

/// The person in front of the clerk owes several notices: the desk lists
/// every notice that can be paid now (an installment plan's single
/// solution and installments), the clerk chooses two and sends them to
/// the terminal, whose page follows the payment until both receipts are
/// in; afterwards only the plan's last installment is left. Choosing none,
/// six, another person's notice or a notice at another amount is refused
/// on the desk page, the choice kept, and nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_sends_a_persons_notices_to_the_terminal() {
    for backend in backends() {
        let w = desk_pos_world(backend).await;
        let single = open_position(&w.store, "DESK-A", DEBTOR, 1_200, 10, 0).await;
        let plan = open_position(&w.store, "DESK-B", DEBTOR, 5_000, 20, 2).await;
        let other = open_position(&w.store, "DESK-C", "RSSMRA80A01H501U", 700, 5, 0).await;
        let lucia = clerk(
            &w.store,
            &w.base,
            "lucia.sportello",
            rights(Role::CounterClerk, Some(ENTE), &[], &["ANAG"]),
        )
        .await;
        let search = format!("/backoffice/sportello/{DESK}/cerca");
        let found = lucia.post(&search, &[("codice_fiscale", DEBTOR)]).await;
        assert_eq!(found.status, StatusCode::OK, "{}", found.text());
        let page = found.text();
        let offered = choices(&page);
        let expected: Vec<String> = [
            (&single[0], 1_200),
            (&plan[0], 5_000),
            (&plan[1], 2_500),
            (&plan[2], 2_500),
        ]
        .iter()
        .map(|(n, a)| format!("{n}:{a}"))
        .collect();
        let mut sorted = offered.clone();
        sorted.sort();
        let mut want = expected.clone();
        want.sort();
        assert_eq!(sorted, want, "{backend:?}: {page}");
        assert!(
            page.contains("Rata 1 di 2") && page.contains("Soluzione unica"),
            "{page}"
        );
        assert!(!page.contains(&other[0]), "another person's notice: {page}");

        // Refused, nothing sent: the reason by the button, the choice kept.
        let push = format!("/backoffice/sportello/{DESK}/terminale");
        let refused = [
            (vec![], "almeno un avviso"),
            (
                (0..6)
                    .map(|i| format!("{}:{}", single[0], 1_200 + i))
                    .collect(),
                "al più 5",
            ),
            (
                vec![format!("{}:700", other[0])],
                "non è tra gli avvisi da pagare",
            ),
            (vec![format!("{}:1100", single[0])], "è diverso"),
            (vec!["nonsense".to_string()], "scelta non valida"),
        ];
        for (chosen, why) in refused {
            let mut fields = vec![("codice_fiscale", DEBTOR)];
            fields.extend(chosen.iter().map(|c| ("avviso", c.as_str())));
            let r = lucia.post(&push, &fields).await;
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "{backend:?} {why}: {}",
                r.text()
            );
            let text = r.text();
            assert!(
                text.contains("id=\"pos-scelta-errore\"") && text.contains(why),
                "{backend:?}: {why}: {text}"
            );
            if chosen.len() == 1 && chosen[0].contains(&single[0]) {
                // The notice is offered again, unchecked: its value changed.
                assert!(
                    text.contains(&format!("value=\"{}:1200\"", single[0])),
                    "{text}"
                );
            }
            assert_eq!(
                sessions(&w).await,
                0,
                "{backend:?}: {why}: a session was opened"
            );
        }

        // Two of them, sent together; the page follows the payment.
        let chosen = [format!("{}:1200", single[0]), format!("{}:2500", plan[1])];
        let r = lucia
            .post(
                &push,
                &[
                    ("codice_fiscale", DEBTOR),
                    ("avviso", &chosen[0]),
                    ("avviso", &chosen[1]),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{backend:?}: {}", r.text());
        let location = r.location.unwrap();
        assert!(
            location.starts_with(&format!("/backoffice/sportello/{DESK}/pos/")),
            "{location}"
        );
        let (paid, refreshed) = follow_until_paid(&lucia, &location).await;
        assert!(refreshed, "{backend:?}: the page never reloaded itself");
        assert!(paid.contains("37,00 €"), "{backend:?}: the total: {paid}");
        assert_eq!(paid.matches("Arrivata").count(), 2, "{paid}");
        for nav in [&single[0], &plan[1]] {
            let (stored, i) = w.store.find_by_notice_number(ENTE, nav).await.unwrap();
            assert_eq!(
                stored.position.options[i].status,
                OptionStatus::Paid,
                "{nav}"
            );
        }

        // Only the plan's last installment is left to pay.
        let again = lucia
            .post(&search, &[("codice_fiscale", DEBTOR)])
            .await
            .text();
        assert_eq!(
            choices(&again),
            [format!("{}:2500", plan[2])],
            "{backend:?}: {again}"
        );
        assert!(again.contains("Rata 2 di 2"), "{again}");

        // Another desk's or an unknown session is not shown here.
        let unknown = lucia
            .get(&format!("/backoffice/sportello/{DESK}/pos/SD-NOTASESSION"))
            .await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text());
    }
}

/// The summary paid at once at the terminal: pagoPA's POS circuit creates
/// the position (with the Ente's IUV, or one of its own) through incasso's
/// GPD API, where the service's taxonomy places it under the service; the
/// page follows the payment until the receipt, pressing again answers the
/// same payment, and the day counts both as collected at the desk's POS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_has_the_position_created_and_paid_at_the_terminal() {
    for backend in backends() {
        let w = desk_pos_world(backend).await;
        let lucia = clerk(
            &w.store,
            &w.base,
            "lucia.sportello",
            rights(Role::CounterClerk, Some(ENTE), &[], &["ANAG"]),
        )
        .await;
        let service_url = format!("/backoffice/sportello/{DESK}/servizi/{SERVICE}");
        for (choice, ente_iuv) in [("ente", true), ("circuito", false)] {
            let token = input_value(&lucia.get(&service_url).await.text(), "token");
            let fields = desk_form(&token);
            let summary = lucia.post(&service_url, &fields).await.text();
            assert!(
                summary.contains("id=\"crea-al-terminale\"") && summary.contains("16,00"),
                "{backend:?}: no way to the terminal: {summary}"
            );
            let mut with_choice = fields.to_vec();
            with_choice.push(("pos_iuv", choice));
            let to = format!("{service_url}/terminale");
            let r = lucia.post(&to, &with_choice).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{backend:?}: {}", r.text());
            let location = r.location.unwrap();
            // Pressed again: the same payment, not a second one.
            let again = lucia.post(&to, &with_choice).await;
            assert_eq!(
                again.location.as_deref(),
                Some(&*location),
                "{}",
                again.text()
            );
            let (paid, _) = follow_until_paid(&lucia, &location).await;
            assert!(
                paid.contains("16,00 €") && paid.contains("Arrivata"),
                "{paid}"
            );

            let id = location.rsplit('/').next().unwrap();
            let s = incasso_app::pos::session(&w.app.system("test"), ENTE, id)
                .await
                .unwrap();
            let nav = &s.notices[0].0;
            let (stored, i) = w.store.find_by_notice_number(ENTE, nav).await.unwrap();
            assert_eq!(stored.position.options[i].status, OptionStatus::Paid);
            assert_eq!(
                stored.placement.service.as_deref(),
                Some(SERVICE),
                "{backend:?}: placed under the service by its taxonomy"
            );
            assert_eq!(stored.position.debtor.fiscal_code, DEBTOR);
            // The simulated circuit numbers its own IUVs from 99,000,000,000.
            let sequence: u64 = nav[3..16].parse().unwrap();
            let circuit = sequence >= 99_000_000_000;
            assert_eq!(!circuit, ente_iuv, "{backend:?} {choice}: {nav}");
        }
        assert_eq!(
            sessions(&w).await,
            2,
            "{backend:?}: one session per payment"
        );
        let day = lucia
            .get(&format!("/backoffice/sportello/{DESK}/giornata"))
            .await
            .text();
        assert!(
            day.contains("id=\"totale-pos\">32,00 €"),
            "{backend:?}: {day}"
        );

        // A closed day takes no more payments at the terminal: the summary
        // again, with the reason, and nothing sent.
        let closed = lucia
            .post(
                &format!("/backoffice/sportello/{DESK}/giornata/chiudi"),
                &[(
                    "giorno",
                    &incasso_app::desk::today(&w.app.system("test")).to_string(),
                )],
            )
            .await;
        assert!(closed.status.is_redirection(), "{}", closed.text());
        let token = input_value(&lucia.get(&service_url).await.text(), "token");
        let r = lucia
            .post(
                &format!("{service_url}/terminale"),
                &[desk_form(&token), [("pos_iuv", "ente")].to_vec()].concat(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{backend:?}: {}", r.text());
        let text = r.text();
        assert!(
            text.contains("id=\"terminale-errore\"") && text.contains("è chiusa"),
            "{text}"
        );
        assert_eq!(sessions(&w).await, 2, "{backend:?}: nothing sent");
    }
}
