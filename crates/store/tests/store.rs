//! The store, on every backend: SQLite always, PostgreSQL when configured
//! (see incasso-testkit).

use chrono::{Duration, Utc};
use incasso_core::Cents;
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::codes::NoticeNumber;
use incasso_core::ente::{Ente, StationLink};
use incasso_core::position::{DebtPosition, OptionStatus, PositionStatus, TransitionError};
use incasso_core::sample::{self, PositionSpec};
use incasso_store::{ListFilter, Store, StoreError};
use incasso_testkit::{Backend, backends, fresh_database_url};
use std::collections::HashSet;

const ENTE: &str = "80000130585";
const OTHER: &str = "97000000022";
const IBAN: &str = "IT65B0200805364000104567891";

async fn store_with_ente(backend: Backend) -> Store {
    store_with_ente_at(&fresh_database_url(backend).await).await
}

async fn store_with_ente_at(url: &str) -> Store {
    let store = Store::connect(url).await.unwrap();
    let now = Utc::now();
    for (fc, seg) in [(ENTE, 1u8), (OTHER, 47u8)] {
        store
            .create_ente(
                &Ente {
                    fiscal_code: fc.into(),
                    name: format!("Ente {fc}"),
                    ipa_code: None,
                    iban: Some(IBAN.into()),
                    postal_iban: None,
                    cbill_code: None,
                    email: None,
                },
                now,
            )
            .await
            .unwrap();
        store
            .add_station(
                fc,
                &StationLink {
                    broker_id: "15376371009".into(),
                    station_id: format!("15376371009_{seg:02}"),
                    segregation_code: seg,
                },
                now,
            )
            .await
            .unwrap();
        store
            .put_accertamento(
                fc,
                &Accertamento {
                    year: 2026,
                    code: "ACC-1".into(),
                    description: "Accertamento di prova".into(),
                    chapter: "1010".into(),
                    article: None,
                    siope_code: None,
                    active: true,
                },
            )
            .await
            .unwrap();
    }
    store
}

fn position(iupd: &str, installments: u32) -> DebtPosition {
    sample::position(&PositionSpec {
        ente: ENTE,
        company_name: "Comune di prova",
        iupd: iupd.into(),
        debtor_index: 11,
        amount: Cents(12_345),
        description: "TARI 2026".into(),
        category: "9/0101101IM/",
        iban: IBAN,
        due_date: Utc::now() + Duration::days(30),
        installments,
        second_beneficiary: None,
        quotas: vec![(
            AccertamentoRef {
                year: 2026,
                code: "ACC-1".into(),
            },
            100,
        )],
    })
}

#[tokio::test]
async fn create_read_list_round_trip() {
    for backend in backends() {
        let store = store_with_ente(backend).await;
        let now = Utc::now();
        let created = store
            .create_position(ENTE, position("RT-1", 2), now, true)
            .await
            .unwrap();
        assert_eq!(
            created.position.status,
            PositionStatus::Valid,
            "{backend:?}"
        );
        let read = store.get_position(ENTE, "RT-1").await.unwrap();
        assert_eq!(read.position.options.len(), 3);
        assert_eq!(
            read.position.options, created.position.options,
            "{backend:?}: options survive storage"
        );
        assert_eq!(read.position.debtor, created.position.debtor);
        for o in &read.position.options {
            let nav = o.notice_number.as_ref().unwrap();
            let parsed = NoticeNumber::parse(nav.as_str()).unwrap();
            assert_eq!(parsed.segregation_code, Some(1));
            assert_eq!(Some(parsed.iuv), o.iuv);
        }
        // Scoped by Ente: the other Ente sees nothing.
        assert!(matches!(
            store.get_position(OTHER, "RT-1").await,
            Err(StoreError::NotFound(_))
        ));
        let page = store
            .list_positions(
                ENTE,
                &ListFilter {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.items_found, 1);
        let page = store
            .list_positions(
                OTHER,
                &ListFilter {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.items_found, 0);
    }
}

#[tokio::test]
async fn duplicate_iupd_is_a_conflict_and_writes_nothing() {
    for backend in backends() {
        let store = store_with_ente(backend).await;
        let now = Utc::now();
        store
            .create_position(ENTE, position("DUP", 0), now, false)
            .await
            .unwrap();
        let err = store
            .create_position(ENTE, position("DUP", 0), now, false)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict(_)),
            "{backend:?}: {err:?}"
        );
        let page = store
            .list_positions(
                ENTE,
                &ListFilter {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.items_found, 1);
        // The same iupd is fine for another Ente.
        let mut other = position("DUP", 0);
        for o in &mut other.options {
            for t in &mut o.transfers {
                t.organization_fiscal_code = OTHER.into();
            }
        }
        store
            .create_position(OTHER, other, now, false)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn application_iuvs_are_checked_and_unique() {
    for backend in backends() {
        let store = store_with_ente(backend).await;
        let now = Utc::now();
        let nav = NoticeNumber::generate(1, 9_000_000_000_000).unwrap();
        let mut p = position("APP-1", 0);
        p.options[0].iuv = Some(nav.as_str()[1..].to_string());
        let stored = store.create_position(ENTE, p, now, true).await.unwrap();
        assert_eq!(
            stored.position.options[0].notice_number.as_ref(),
            Some(&nav)
        );
        // The same IUV again, in another position: refused.
        let mut p = position("APP-2", 0);
        p.options[0].iuv = Some(nav.as_str()[1..].to_string());
        let err = store.create_position(ENTE, p, now, true).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict(_)),
            "{backend:?}: {err:?}"
        );
        // A segregation code that is not one of the Ente's stations: refused.
        let foreign = NoticeNumber::generate(2, 5).unwrap();
        let mut p = position("APP-3", 0);
        p.options[0].iuv = Some(foreign.as_str()[1..].to_string());
        let err = store.create_position(ENTE, p, now, true).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(i) if i.first_code() == "BAD_IUV"),
            "{err:?}"
        );
        // Wrong check digits: refused.
        let mut bad = nav.as_str()[1..].to_string();
        let last = bad.pop().unwrap();
        bad.push(if last == '0' { '1' } else { '0' });
        let mut p = position("APP-4", 0);
        p.options[0].iuv = Some(bad);
        assert!(store.create_position(ENTE, p, now, true).await.is_err());
        assert!(matches!(
            store.get_position(ENTE, "APP-4").await,
            Err(StoreError::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn many_tasks_never_share_an_iuv() {
    for backend in backends() {
        let store = store_with_ente(backend).await;
        let mut tasks = Vec::new();
        for t in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut navs = Vec::new();
                for k in 0..25 {
                    let n = 1 + ((t + k) % 3) as u32;
                    navs.extend(store.allocate_notice_numbers(ENTE, 1, n).await.unwrap());
                }
                navs
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let unique: HashSet<_> = all.iter().collect();
        assert_eq!(
            unique.len(),
            all.len(),
            "{backend:?}: duplicate IUV under concurrency"
        );
        // Positions created concurrently also get distinct IUVs.
        let mut tasks = Vec::new();
        for t in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for k in 0..5 {
                    store
                        .create_position(ENTE, position(&format!("C-{t}-{k}"), 1), Utc::now(), true)
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let page = store
            .list_positions(
                ENTE,
                &ListFilter {
                    limit: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let navs: Vec<_> = page
            .items
            .iter()
            .flat_map(|p| {
                p.position
                    .options
                    .iter()
                    .map(|o| o.notice_number.clone().unwrap())
            })
            .collect();
        assert_eq!(navs.len(), 40 * 2);
        assert_eq!(navs.iter().collect::<HashSet<_>>().len(), navs.len());
    }
}

/// Two OS processes allocate from the same database: this test re-runs its
/// own binary as the children (see `iuv_child_process`).
#[tokio::test]
async fn two_processes_never_share_an_iuv() {
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        let store = Store::connect(&url).await.unwrap();
        store.close().await;
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..2)
            .map(|_| {
                std::process::Command::new(&exe)
                    .args([
                        "--exact",
                        "store::iuv_child_process",
                        "--ignored",
                        "--nocapture",
                        "--test-threads",
                        "1",
                    ])
                    .env("INCASSO_IUV_CHILD_URL", &url)
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut all = Vec::new();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{backend:?}: child failed");
            let text = String::from_utf8(out.stdout).unwrap();
            let navs: Vec<String> = text
                .lines()
                .filter_map(|l| l.split_once("NAV ").map(|(_, nav)| nav.to_string()))
                .collect();
            assert_eq!(
                navs.len(),
                600,
                "{backend:?}: child printed {} numbers",
                navs.len()
            );
            all.extend(navs);
        }
        let unique: HashSet<_> = all.iter().collect();
        assert_eq!(
            unique.len(),
            1200,
            "{backend:?}: two processes shared an IUV"
        );
    }
}

/// Not a test on its own: the body of each child of
/// `two_processes_never_share_an_iuv`, which runs it by name. Ignored so
/// that it never passes alone without checking anything; run without its
/// variable, it fails.
#[tokio::test]
#[ignore = "the child process of two_processes_never_share_an_iuv"]
async fn iuv_child_process() {
    let url = std::env::var("INCASSO_IUV_CHILD_URL")
        .expect("run by two_processes_never_share_an_iuv, which sets INCASSO_IUV_CHILD_URL");
    let store = Store::connect(&url).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..4u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut left = 150u32;
            let mut k = t;
            while left > 0 {
                let n = (1 + k % 4).min(left);
                out.extend(store.allocate_notice_numbers(ENTE, 1, n).await.unwrap());
                left -= n;
                k += 1;
            }
            out
        }));
    }
    for t in tasks {
        for nav in t.await.unwrap() {
            println!("NAV {nav}");
        }
    }
}

#[tokio::test]
async fn life_cycle_and_payments() {
    for backend in backends() {
        let store = store_with_ente(backend).await;
        let now = Utc::now();
        // Draft -> publish -> valid; publish twice is refused.
        store
            .create_position(ENTE, position("LC-1", 3), now, false)
            .await
            .unwrap();
        assert_eq!(
            store
                .get_position(ENTE, "LC-1")
                .await
                .unwrap()
                .position
                .status,
            PositionStatus::Draft
        );
        store.publish_position(ENTE, "LC-1", now).await.unwrap();
        let err = store.publish_position(ENTE, "LC-1", now).await.unwrap_err();
        assert!(matches!(
            err,
            StoreError::Transition(TransitionError::NotAllowed { .. })
        ));
        // Pay one installment: partially paid; the single solution is then refused.
        let p = store.get_position(ENTE, "LC-1").await.unwrap().position;
        let navs: Vec<String> = p
            .options
            .iter()
            .map(|o| o.notice_number.clone().unwrap().as_str().to_string())
            .collect();
        store
            .mark_option_paid(ENTE, &navs[1], now, now)
            .await
            .unwrap();
        let p = store.get_position(ENTE, "LC-1").await.unwrap().position;
        assert_eq!(p.status, PositionStatus::PartiallyPaid, "{backend:?}");
        assert_eq!(p.options[1].status, OptionStatus::Paid);
        let err = store
            .mark_option_paid(ENTE, &navs[0], now, now)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            StoreError::Transition(TransitionError::InstallmentsStarted)
        ));
        // Paid options freeze the position: no update, delete or invalidate.
        assert!(matches!(
            store
                .replace_position(ENTE, "LC-1", position("LC-1", 3), now, false)
                .await,
            Err(StoreError::Transition(TransitionError::AlreadyPaid))
        ));
        assert!(matches!(
            store.delete_position(ENTE, "LC-1").await,
            Err(StoreError::Transition(_))
        ));
        assert!(matches!(
            store.invalidate_position(ENTE, "LC-1", now).await,
            Err(StoreError::Transition(_))
        ));
        // The remaining installments settle it.
        store
            .mark_option_paid(ENTE, &navs[2], now, now)
            .await
            .unwrap();
        store
            .mark_option_paid(ENTE, &navs[3], now, now)
            .await
            .unwrap();
        let p = store.get_position(ENTE, "LC-1").await.unwrap().position;
        assert_eq!(p.status, PositionStatus::Paid);
        assert!(matches!(
            store.mark_option_paid(ENTE, &navs[3], now, now).await,
            Err(StoreError::Transition(TransitionError::AlreadyPaid))
        ));

        // The single solution settles the whole plan at once.
        store
            .create_position(ENTE, position("LC-2", 2), now, true)
            .await
            .unwrap();
        let p = store.get_position(ENTE, "LC-2").await.unwrap().position;
        let single = p.options.iter().find(|o| !o.is_partial_payment).unwrap();
        store
            .mark_option_paid(
                ENTE,
                single.notice_number.as_ref().unwrap().as_str(),
                now,
                now,
            )
            .await
            .unwrap();
        let p = store.get_position(ENTE, "LC-2").await.unwrap().position;
        assert_eq!(p.status, PositionStatus::Paid);
        let installment = p.options.iter().find(|o| o.is_partial_payment).unwrap();
        assert!(matches!(
            store
                .mark_option_paid(
                    ENTE,
                    installment.notice_number.as_ref().unwrap().as_str(),
                    now,
                    now
                )
                .await,
            Err(StoreError::Transition(TransitionError::AlreadyPaid))
        ));

        // Invalidate, then nothing is payable.
        store
            .create_position(ENTE, position("LC-3", 0), now, true)
            .await
            .unwrap();
        let p = store
            .invalidate_position(ENTE, "LC-3", now)
            .await
            .unwrap()
            .position;
        assert_eq!(p.status, PositionStatus::Invalid);
        let nav = p.options[0].notice_number.clone().unwrap();
        assert!(matches!(
            store.mark_option_paid(ENTE, nav.as_str(), now, now).await,
            Err(StoreError::Transition(TransitionError::Cancelled))
        ));

        // Update of an unpaid position keeps its IUVs when resent, returns to DRAFT.
        store
            .create_position(ENTE, position("LC-4", 0), now, true)
            .await
            .unwrap();
        let before = store.get_position(ENTE, "LC-4").await.unwrap();
        let mut changed = position("LC-4", 0);
        changed.options[0].iuv = before.position.options[0].iuv.clone();
        changed.company_name = "Comune modificato".into();
        let after = store
            .replace_position(ENTE, "LC-4", changed, now, false)
            .await
            .unwrap();
        assert_eq!(after.position.status, PositionStatus::Draft);
        assert_eq!(
            after.position.options[0].iuv,
            before.position.options[0].iuv
        );
        assert_eq!(
            store
                .get_position(ENTE, "LC-4")
                .await
                .unwrap()
                .position
                .company_name,
            "Comune modificato"
        );
        store.delete_position(ENTE, "LC-4").await.unwrap();
        assert!(matches!(
            store.get_position(ENTE, "LC-4").await,
            Err(StoreError::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn unknown_accertamento_and_unknown_ente_are_refused() {
    for backend in backends() {
        let store = store_with_ente(backend).await;
        let now = Utc::now();
        let mut p = position("ACC-X", 0);
        p.options[0].transfers[0].quotas[0].accertamento.code = "NOPE".into();
        let err = store
            .create_position(ENTE, p, now, false)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(i) if i.first_code() == "UNKNOWN_ACCERTAMENTO"),
            "{err:?}"
        );
        let err = store
            .create_position("12345678903", position("X", 0), now, false)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
        let page = store
            .list_positions(
                ENTE,
                &ListFilter {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            page.items_found, 0,
            "{backend:?}: a rejected create wrote something"
        );
    }
}

#[tokio::test]
async fn time_moves_states_forward() {
    for backend in backends() {
        let store = store_with_ente(backend).await;
        let now = Utc::now();
        let mut p = position("T-1", 0);
        p.validity_date = Some(now + Duration::days(1));
        p.switch_to_expired = true;
        store.create_position(ENTE, p, now, true).await.unwrap();
        assert_eq!(
            store
                .get_position(ENTE, "T-1")
                .await
                .unwrap()
                .position
                .status,
            PositionStatus::Published
        );
        assert_eq!(
            store
                .refresh_time_states(now + Duration::days(2))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .get_position(ENTE, "T-1")
                .await
                .unwrap()
                .position
                .status,
            PositionStatus::Valid
        );
        store
            .refresh_time_states(now + Duration::days(40))
            .await
            .unwrap();
        assert_eq!(
            store
                .get_position(ENTE, "T-1")
                .await
                .unwrap()
                .position
                .status,
            PositionStatus::Expired,
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn update_keeps_legacy_notice_numbers_and_lists_by_effective_status() {
    for backend in backends() {
        let store = store_with_ente(backend).await;
        let now = Utc::now();
        // A legacy aux-2 notice brought by the application survives an update
        // that resends only the IUV.
        let legacy = {
            let base = "123456789012345";
            let check = incasso_core::codes::notice::check_digits_mod93(&format!("2{base}"));
            format!("2{base}{check:02}")
        };
        let parsed = NoticeNumber::parse(&legacy).unwrap();
        let mut p = position("LEG-1", 0);
        p.options[0].iuv = Some(parsed.iuv.clone());
        p.options[0].notice_number = Some(parsed.notice_number.clone());
        store.create_position(ENTE, p, now, true).await.unwrap();
        let mut resent = position("LEG-1", 0);
        resent.options[0].iuv = Some(parsed.iuv.clone());
        let after = store
            .replace_position(ENTE, "LEG-1", resent, now, true)
            .await
            .unwrap();
        assert_eq!(
            after.position.options[0]
                .notice_number
                .as_ref()
                .unwrap()
                .as_str(),
            legacy,
            "{backend:?}"
        );

        // Status filter uses the status as it is now, not as last stored.
        let mut p = position("EXP-1", 0);
        p.switch_to_expired = true;
        store.create_position(ENTE, p, now, true).await.unwrap();
        let later = now + Duration::days(45);
        let expired = ListFilter {
            statuses: vec![PositionStatus::Expired],
            limit: 10,
            ..Default::default()
        };
        let page = store
            .list_positions_at(ENTE, &expired, later)
            .await
            .unwrap();
        assert_eq!(page.items_found, 1, "{backend:?}");
        assert_eq!(page.items[0].position.iupd, "EXP-1");
        let valid = ListFilter {
            statuses: vec![PositionStatus::Valid],
            limit: 10,
            ..Default::default()
        };
        assert_eq!(
            store
                .list_positions_at(ENTE, &valid, later)
                .await
                .unwrap()
                .items_found,
            1,
            "LEG-1 only"
        );
        // An expired position can no longer be updated or invalidated.
        let stored = store.get_position(ENTE, "EXP-1").await.unwrap().position;
        assert!(stored.check_updatable(later).is_err());

        // Due-date filter matches a plan on any installment.
        store
            .create_position(ENTE, position("PLAN", 3), now, true)
            .await
            .unwrap();
        let window = ListFilter {
            due_date_from: Some(now + Duration::days(85)),
            due_date_to: Some(now + Duration::days(95)),
            limit: 10,
            ..Default::default()
        };
        let page = store.list_positions(ENTE, &window).await.unwrap();
        assert_eq!(
            page.items
                .iter()
                .map(|p| p.position.iupd.as_str())
                .collect::<Vec<_>>(),
            ["PLAN"]
        );
    }
}

#[tokio::test]
async fn generated_iuvs_skip_past_numbers_an_application_used() {
    for backend in backends() {
        let store = store_with_ente(backend).await;
        let now = Utc::now();
        // The application used sequence numbers 1 and 2 of segregation code 01.
        for (k, seq) in [1u64, 2].iter().enumerate() {
            let nav = NoticeNumber::generate(1, *seq).unwrap();
            let mut p = position(&format!("APPL-{k}"), 0);
            p.options[0].iuv = Some(nav.as_str()[1..].to_string());
            store.create_position(ENTE, p, now, true).await.unwrap();
        }
        // incasso's own sequence starts at 1: it must step over both.
        let created = store
            .create_position(ENTE, position("GEN", 0), now, true)
            .await
            .unwrap();
        let nav = created.position.options[0].notice_number.clone().unwrap();
        assert_eq!(nav, NoticeNumber::generate(1, 3).unwrap(), "{backend:?}");
    }
}

/// A supply of file `name` for the Ente, begun, and the handle on its
/// writes.
async fn begin_bulk(
    store: &Store,
    name: &str,
    now: chrono::DateTime<Utc>,
) -> (incasso_store::Bulk, incasso_store::SupplyRecord) {
    let record = incasso_store::SupplyRecord {
        layout: "incasso-csv".into(),
        file_name: format!("{name}.csv"),
        file_hash: name.to_string(),
        started_at: now,
        ..Default::default()
    };
    let id = store.begin_supply(ENTE, &record, now).await.unwrap();
    let bulk = store.bulk(ENTE, "incasso-csv", id).await.unwrap();
    (bulk, record)
}

/// The final record of that supply, with `rows` rows loaded.
fn loaded(record: &incasso_store::SupplyRecord, rows: i64) -> incasso_store::SupplyRecord {
    incasso_store::SupplyRecord {
        status: "LOADED".into(),
        accepted: true,
        rows_loaded: rows,
        ..record.clone()
    }
}

/// A supply's generated IUVs step over numbers of its block that were used
/// before (stored) or that the same chunk brings, and keep the brought one.
#[tokio::test]
async fn a_supply_never_generates_an_iuv_already_used() {
    for backend in backends() {
        let store = store_with_ente(backend).await;
        let now = Utc::now();
        let nav = |seq: u64| NoticeNumber::generate(1, seq).unwrap().as_str().to_string();
        // The application used sequence numbers 1 and 3 before the supply.
        for seq in [1u64, 3] {
            let mut p = position(&format!("APPL-{seq}"), 0);
            p.options[0].iuv = Some(nav(seq)[1..].to_string());
            store.create_position(ENTE, p, now, true).await.unwrap();
        }
        let (mut bulk, record) = begin_bulk(&store, "iuv", now).await;
        // Six new positions; the fourth brings number 5 itself.
        let mut positions: Vec<_> = (0..6).map(|i| position(&format!("NEW-{i}"), 0)).collect();
        positions[3].options[0].iuv = Some(nav(5)[1..].to_string());
        let numbers = bulk.insert_many(positions, now).await.unwrap();
        bulk.commit(&loaded(&record, 6), now).await.unwrap();
        let got: Vec<String> = numbers.iter().map(|n| n[0].0.clone()).collect();
        assert_eq!(got[3], nav(5), "{backend:?}: the brought IUV is kept");
        let mut generated: Vec<String> = got
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 3)
            .map(|(_, n)| n.clone())
            .collect();
        generated.sort();
        assert_eq!(
            generated,
            [nav(2), nav(4), nav(6), nav(7), nav(8)],
            "{backend:?}"
        );
        for (i, n) in got.iter().enumerate() {
            let stored = store.get_position(ENTE, &format!("NEW-{i}")).await.unwrap();
            assert_eq!(
                stored.position.options[0]
                    .notice_number
                    .as_ref()
                    .unwrap()
                    .as_str(),
                n,
                "{backend:?}"
            );
        }
    }
}

/// A supply's write that fails (here two new positions with one key in the
/// same chunk, which the loader's checks would have refused) fails the
/// commit that follows: nothing of the supply is stored, and the database
/// takes other writes at once (on SQLite the supply's thread gave the
/// writer connection back).
#[tokio::test]
async fn a_failed_supply_write_fails_its_commit_and_frees_the_writer() {
    for backend in backends() {
        let store = store_with_ente(backend).await;
        let now = Utc::now();
        let (mut bulk, record) = begin_bulk(&store, "dup", now).await;
        bulk.insert_many(vec![position("FIRST", 0)], now)
            .await
            .unwrap();
        // Queued: the failure comes back later, not here.
        bulk.insert_many(vec![position("TWICE", 0), position("TWICE", 1)], now)
            .await
            .unwrap();
        let committed = bulk.commit(&loaded(&record, 0), now).await;
        assert!(committed.is_err(), "{backend:?}: {committed:?}");
        for key in ["FIRST", "TWICE"] {
            assert!(
                store.get_position(ENTE, key).await.is_err(),
                "{backend:?}: {key} was stored"
            );
        }
        let after = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            store.create_position(ENTE, position("AFTER", 0), now, true),
        )
        .await
        .expect("the writer is free again");
        after.unwrap();
    }
}

/// SQLite: commits never copy the WAL into the database file themselves
/// (after a big supply that copy took seconds inside the commit); the
/// background checkpointer does, soon after.
#[tokio::test]
async fn the_wal_is_checkpointed_in_the_background() {
    let url = fresh_database_url(Backend::Sqlite).await;
    let file = std::path::PathBuf::from(url.strip_prefix("sqlite://").unwrap());
    let store = store_with_ente_at(&url).await;
    let now = Utc::now();
    for i in 0..200 {
        store
            .create_position(ENTE, position(&format!("WAL-{i}"), 2), now, true)
            .await
            .unwrap();
    }
    // 200 positions of three options each take well over 100 KiB of pages.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let size = std::fs::metadata(&file).unwrap().len();
        if size > 100 * 1024 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the database file is still {size} bytes: nothing copied the WAL into it"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The positions are all there, whoever reads them.
    assert_eq!(
        store
            .get_position(ENTE, "WAL-199")
            .await
            .unwrap()
            .position
            .options
            .len(),
        3
    );
    store.close().await;
}

/// A supply's multi-row inserts (values shared by every row of a statement
/// bound once), and on PostgreSQL its COPY, store each position exactly as
/// the single insert does: rows of different shapes (installments, a second
/// beneficiary, other debtors and amounts, texts with backslashes, tabs and
/// line ends), over several statements.
#[tokio::test]
async fn a_supply_stores_each_position_as_the_single_insert_does() {
    for backend in backends() {
        let store = store_with_ente(backend).await;
        // Stored to the microsecond.
        let now = incasso_store::from_micros(incasso_store::to_micros(Utc::now()));
        let due = now + Duration::days(30);
        let spec = |i: u64| {
            let mut p = sample::position(&PositionSpec {
                ente: ENTE,
                company_name: "Comune di prova",
                iupd: format!("BULK-{i:04}"),
                // Every tenth shares its debtor with the one before.
                debtor_index: i - u64::from(i % 10 == 1),
                amount: Cents(10_000 + (i % 7) as i64 * 100),
                description: format!("TARI 2026 n. {}", i % 3),
                category: "9/0101101IM/",
                iban: IBAN,
                due_date: if i.is_multiple_of(5) {
                    due + Duration::days(1)
                } else {
                    due
                },
                installments: if i.is_multiple_of(4) { 2 } else { 0 },
                second_beneficiary: i.is_multiple_of(6).then_some((
                    OTHER,
                    "IT60X0542811101000000123456",
                    Cents(1_000),
                )),
                quotas: vec![(
                    AccertamentoRef {
                        year: 2026,
                        code: "ACC-1".into(),
                    },
                    100,
                )],
            });
            p.debtor.email = i.is_multiple_of(2).then(|| format!("d{i}@example.it"));
            // What PostgreSQL's COPY text format escapes, and a literal
            // `\N`, which must not come back as a missing value.
            if i.is_multiple_of(3) {
                p.debtor.full_name = format!("Rossi\\Mario\t{i}\r\nvia \"Roma\" \\N");
                p.debtor.city = Some("\\N".into());
                p.options[0].description = format!("TARI\\2026\t\\N {i}");
            }
            p
        };
        let (mut bulk, record) = begin_bulk(&store, "bulk", now).await;
        let count = 300;
        let numbers = bulk
            .insert_many((1..=count).map(spec).collect(), now)
            .await
            .unwrap();
        bulk.commit(&loaded(&record, count as i64), now)
            .await
            .unwrap();
        for (i, navs) in (1..=count).zip(numbers) {
            let expected = spec(i);
            let stored = store
                .get_position(ENTE, &expected.iupd)
                .await
                .unwrap()
                .position;
            assert_eq!(stored.debtor, expected.debtor, "{backend:?} {i}");
            assert_eq!(stored.company_name, expected.company_name);
            assert_eq!(stored.status, PositionStatus::Valid, "{backend:?} {i}");
            assert_eq!(stored.options.len(), expected.options.len());
            for ((s, e), (nav, iuv)) in stored.options.iter().zip(&expected.options).zip(navs) {
                assert_eq!(s.amount, e.amount, "{backend:?} {i}");
                assert_eq!(s.description, e.description);
                assert_eq!(s.due_date, e.due_date);
                assert_eq!(s.transfers, e.transfers, "{backend:?} {i}");
                assert_eq!(s.iuv.as_deref(), Some(iuv.as_str()));
                assert_eq!(
                    s.notice_number.as_ref().map(|n| n.as_str()),
                    Some(nav.as_str())
                );
            }
        }
        // An update replaces a position alone: its options (installments)
        // all name the same position, a value shared by every row.
        let (mut bulk, record) = begin_bulk(&store, "bulk-update", now).await;
        let mut update = store
            .get_position(ENTE, "BULK-0004")
            .await
            .unwrap()
            .position;
        assert_eq!(update.options.len(), 3);
        update.validity_date = None;
        for o in &mut update.options {
            o.amount = Cents(o.amount.0 + 500);
            o.transfers[0].amount = Cents(o.transfers[0].amount.0 + 500);
            o.transfers[0].quotas[0].amount = o.transfers[0].amount;
        }
        bulk.replace(&mut update, now).await.unwrap();
        bulk.commit(&loaded(&record, 0), now).await.unwrap();
        let stored = store
            .get_position(ENTE, "BULK-0004")
            .await
            .unwrap()
            .position;
        assert_eq!(stored.options.len(), 3, "{backend:?}");
        for (s, e) in stored.options.iter().zip(&update.options) {
            assert_eq!(s.amount, e.amount, "{backend:?}");
            assert_eq!(s.transfers, e.transfers, "{backend:?}");
            assert_eq!(s.iuv, e.iuv);
        }
    }
}

/// The stations' credentials are sealed at rest with the data directory's
/// key, read back whole, and resealed with a new key during a rotation
/// (issue 14: they were plain JSON).
#[tokio::test]
async fn station_secrets_are_sealed_at_rest_and_rotate() {
    use incasso_store::secrets::{Keyring, SecretKey};
    let key = |hex: &str| SecretKey::from_hex(hex).unwrap();
    let (old, new) = (
        SecretKey::generate_hex().unwrap(),
        SecretKey::generate_hex().unwrap(),
    );
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        let plain = store_with_ente_at(&url).await;
        let json = r#"{"auth":{"type":"subscription_key","key":"supersegreta"}}"#;
        // Written before sealing existed: plain, and sealed at the next start.
        plain
            .set_station_connection(ENTE, "15376371009_01", Some(json))
            .await
            .unwrap();
        let sealed = Store::connect(&url).await.unwrap().with_keyring(Keyring {
            current: Some(key(&old)),
            previous: None,
        });
        assert_eq!(sealed.reseal_secrets().await.unwrap(), 1, "{backend:?}");
        assert_eq!(sealed.reseal_secrets().await.unwrap(), 0, "{backend:?}");
        assert_eq!(
            sealed
                .station_connection(ENTE, "15376371009_01")
                .await
                .unwrap()
                .as_deref(),
            Some(json)
        );
        // Without the key the value cannot be read: it is not plain any more.
        assert!(
            plain
                .station_connection(ENTE, "15376371009_01")
                .await
                .is_err(),
            "{backend:?}: stored in clear"
        );
        // Rotation: the new key, the old one as previous; then the new alone.
        let rotating = Store::connect(&url).await.unwrap().with_keyring(Keyring {
            current: Some(key(&new)),
            previous: Some(key(&old)),
        });
        assert_eq!(rotating.reseal_secrets().await.unwrap(), 1, "{backend:?}");
        let rotated = Store::connect(&url).await.unwrap().with_keyring(Keyring {
            current: Some(key(&new)),
            previous: None,
        });
        assert_eq!(
            rotated
                .station_connection(ENTE, "15376371009_01")
                .await
                .unwrap()
                .as_deref(),
            Some(json),
            "{backend:?}"
        );
        for s in [plain, sealed, rotating, rotated] {
            s.close().await;
        }
    }
}

fn flow_listing(
    flow_id: &str,
    at: chrono::DateTime<Utc>,
    lines: &[(&str, u8)],
) -> incasso_core::fdr::ReportingFlow {
    use incasso_core::fdr::{FlowOutcome, FlowPayment, PartyIdKind, ReportingFlow};
    let payments: Vec<FlowPayment> = lines
        .iter()
        .map(|(iuv, index)| FlowPayment {
            iuv: iuv.to_string(),
            iur: format!("IUR-{iuv}-{index}"),
            transfer_index: Some(*index),
            amount: Cents(100),
            outcome: FlowOutcome::Paid,
            outcome_date: at.date_naive(),
        })
        .collect();
    ReportingFlow {
        flow_id: flow_id.into(),
        flow_date_time: at,
        settlement_ref: format!("TRN-{flow_id}"),
        settlement_date: at.date_naive(),
        psp_id: "PSPEITMM000".into(),
        psp_id_kind: PartyIdKind::Bic,
        psp_name: None,
        bic: None,
        ente: ENTE.into(),
        ente_name: None,
        declared_count: payments.len() as u64,
        declared_total: Cents(100 * payments.len() as i64),
        payments,
        revision: None,
    }
}

/// A matching run, and the statistics job, sample the tables on PostgreSQL
/// once they changed much since their last sample, and only then; on
/// SQLite never.
#[tokio::test]
async fn statistics_are_refreshed_after_a_big_change_only() {
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        let store = store_with_ente_at(&url).await;
        if backend == Backend::Postgres {
            // Autovacuum sampling the lines first would leave the run
            // nothing to do, and this test nothing to see.
            use sqlx::Connection;
            sqlx::any::install_default_drivers();
            let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(
                "ALTER TABLE flow_payments SET (autovacuum_enabled = false);
                 ALTER TABLE reporting_flows SET (autovacuum_enabled = false);",
            )
            .execute(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
        }
        let now = Utc::now();
        let iuvs: Vec<String> = (0..1_500).map(|i| format!("{i:017}")).collect();
        let lines: Vec<(&str, u8)> = iuvs.iter().map(|i| (i.as_str(), 1)).collect();
        // 1,500 lines and one flow: only the lines pass the bound, first
        // for the matching run's check, then, as many again, for the job's.
        for (flow_id, recon_only) in [("F-BIG", true), ("F-BIG-2", false)] {
            store
                .store_flow(ENTE, &flow_listing(flow_id, now, &lines), now)
                .await
                .unwrap();
            let sampled = sampled_soon(&store, backend, recon_only).await;
            match backend {
                Backend::Sqlite => assert!(sampled.is_empty(), "{sampled:?}"),
                Backend::Postgres => assert_eq!(sampled, vec!["flow_payments"], "{flow_id}"),
            }
            // Just sampled: nothing to do until the tables change again.
            assert!(
                store.refresh_recon_statistics().await.unwrap().is_empty(),
                "{backend:?}"
            );
            assert!(
                store.refresh_stale_statistics().await.unwrap().is_empty(),
                "{backend:?}"
            );
        }
    }
}

/// What a refresh samples once PostgreSQL has counted the last change: the
/// server counts a transaction's changes a moment after it ends (at most
/// ten seconds, PostgreSQL 15), so a refresh that finds nothing is asked
/// again for up to 20 s. SQLite is asked once.
async fn sampled_soon(store: &Store, backend: Backend, recon_only: bool) -> Vec<String> {
    let since = std::time::Instant::now();
    loop {
        let sampled = if recon_only {
            store.refresh_recon_statistics().await.unwrap()
        } else {
            store.refresh_stale_statistics().await.unwrap()
        };
        if backend == Backend::Sqlite || !sampled.is_empty() || since.elapsed().as_secs() > 20 {
            return sampled;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// GPD's reported states follow whichever of the flow and the payment
/// comes last, transfer by transfer, and only from a flow's current
/// version; reads and list filters agree.
#[tokio::test]
async fn reporting_follows_whichever_comes_last() {
    for backend in backends() {
        let store = store_with_ente(backend).await;
        let now = Utc::now();
        let spec = PositionSpec {
            ente: ENTE,
            company_name: "Comune di prova",
            iupd: "REP-1".into(),
            debtor_index: 11,
            amount: Cents(12_345),
            description: "TARI 2026".into(),
            category: "9/0101101IM/",
            iban: IBAN,
            due_date: now + Duration::days(30),
            installments: 0,
            second_beneficiary: Some((OTHER, IBAN, Cents(500))),
            quotas: vec![(
                AccertamentoRef {
                    year: 2026,
                    code: "ACC-1".into(),
                },
                100,
            )],
        };
        let two = sample::position(&spec);
        store.create_position(ENTE, two, now, true).await.unwrap();
        let stored = store.get_position(ENTE, "REP-1").await.unwrap().position;
        let option = &stored.options[0];
        assert_eq!(option.transfers.len(), 2, "a position with two transfers");
        let iuv = option.iuv.clone().unwrap();
        let nav = option.notice_number.clone().unwrap().as_str().to_string();

        // The flow first: listed, but not paid yet, so nothing is reported.
        let first = now - Duration::hours(3);
        store
            .store_flow(ENTE, &flow_listing("F-1", first, &[(&iuv, 1)]), now)
            .await
            .unwrap();
        let p = store.get_position(ENTE, "REP-1").await.unwrap().position;
        assert_eq!(p.options[0].status, OptionStatus::Unpaid, "{backend:?}");
        assert!(!p.options[0].transfers[0].reported);
        let listed_as = |status| {
            let store = &store;
            async move {
                let filter = ListFilter {
                    statuses: vec![status],
                    limit: 10,
                    ..ListFilter::default()
                };
                let page = store.list_positions(ENTE, &filter).await.unwrap();
                page.items
                    .iter()
                    .map(|s| (s.position.iupd.clone(), s.position.status))
                    .collect::<Vec<_>>()
            }
        };

        // The payment after it: the listed transfer is reported at once,
        // the other is not, so the option is partially reported and the
        // position stays PAID.
        let (answered, _) = store.mark_option_paid(ENTE, &nav, now, now).await.unwrap();
        assert_eq!(
            answered.position.options[0].status,
            OptionStatus::PartiallyReported
        );
        let p = store.get_position(ENTE, "REP-1").await.unwrap();
        assert_eq!(p.version, answered.version, "the answer is what is stored");
        assert_eq!(p.position.status, PositionStatus::Paid, "{backend:?}");
        assert_eq!(
            p.position.options[0].status,
            OptionStatus::PartiallyReported
        );
        assert!(p.position.options[0].transfers[0].reported);
        assert!(!p.position.options[0].transfers[1].reported);
        let paid = vec![("REP-1".to_string(), PositionStatus::Paid)];
        assert_eq!(listed_as(PositionStatus::Paid).await, paid, "{backend:?}");
        assert!(listed_as(PositionStatus::Reported).await.is_empty());

        // An older version of a flow is outdated: it reports nothing.
        let newer = now - Duration::hours(1);
        store
            .store_flow(ENTE, &flow_listing("F-2", newer, &[]), now)
            .await
            .unwrap();
        store
            .store_flow(ENTE, &flow_listing("F-2", first, &[(&iuv, 2)]), now)
            .await
            .unwrap();
        let p = store.get_position(ENTE, "REP-1").await.unwrap().position;
        assert!(!p.options[0].transfers[1].reported, "{backend:?}");

        // A flow listing the second transfer after the payment reports it:
        // every transfer now is, so option and position are reported.
        store
            .store_flow(ENTE, &flow_listing("F-3", newer, &[(&iuv, 2)]), now)
            .await
            .unwrap();
        let p = store.get_position(ENTE, "REP-1").await.unwrap().position;
        assert!(p.options[0].transfers[1].reported, "{backend:?}");
        assert_eq!(p.options[0].status, OptionStatus::Reported);
        assert_eq!(p.status, PositionStatus::Reported, "{backend:?}");
        assert!(p.options[0].reporting_date.is_some());
        // Lists filter and show by the same states.
        let reported = vec![("REP-1".to_string(), PositionStatus::Reported)];
        assert_eq!(
            listed_as(PositionStatus::Reported).await,
            reported,
            "{backend:?}"
        );
        assert!(
            listed_as(PositionStatus::Paid).await.is_empty(),
            "{backend:?}"
        );
    }
}

/// A migration merged after a higher one was applied (work of parallel
/// branches) is still applied: the store runs every version it has not
/// recorded, not only those past the highest.
#[tokio::test]
async fn a_migration_missed_below_the_highest_is_applied() {
    use sqlx::Connection;
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        Store::connect(&url).await.unwrap().close().await;
        // As a database that reached 16 and 18 before 15 existed.
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(
            "DROP INDEX supplies_by_status; DROP INDEX debt_positions_updated;
             DROP TABLE dashboard_snapshots; DROP TABLE dashboard_totals;
             DELETE FROM schema_migrations WHERE version = 15;",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
        let store = Store::connect(&url).await.unwrap();
        store.close().await;
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT CAST(version AS BIGINT) FROM schema_migrations")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert!(versions.contains(&15), "{backend:?}: {versions:?}");
        let rows: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM dashboard_totals")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(rows, 0, "{backend:?}: the table is back");
    }
}

/// A full disk is told apart from every other failure, on both of the
/// store's SQLite connections (sqlx's and a supply's rusqlite one): the
/// doors answer it "try again later" with a code of its own, not as
/// incasso's own failure. The page limit is SQLite's way to make a
/// database full without filling a disk.
#[tokio::test]
async fn a_full_disk_is_told_apart_from_other_failures() {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let url = fresh_database_url(Backend::Sqlite).await;
    let mut conn = sqlx::AnyConnection::connect(&format!("{url}?mode=rwc"))
        .await
        .unwrap();
    sqlx::raw_sql("CREATE TABLE t (x BLOB); PRAGMA max_page_count = 4;")
        .execute(&mut conn)
        .await
        .unwrap();
    let full = sqlx::query("INSERT INTO t VALUES (zeroblob(100000))")
        .execute(&mut conn)
        .await
        .unwrap_err();
    let full = StoreError::Backend(full);
    assert!(full.is_disk_full(), "{full:?}");
    assert!(!full.is_unavailable());
    let other = sqlx::query("INSERT INTO missing VALUES (1)")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(!StoreError::Backend(other).is_disk_full());

    let file = url.strip_prefix("sqlite://").unwrap();
    let raw = rusqlite::Connection::open(file).unwrap();
    raw.execute_batch("PRAGMA max_page_count = 4;").unwrap();
    let full = StoreError::Sqlite(
        raw.execute("INSERT INTO t VALUES (zeroblob(100000))", [])
            .unwrap_err(),
    );
    assert!(full.is_disk_full(), "{full:?}");
    let item = StoreError::Item {
        index: 3,
        iupd: "X".into(),
        source: Box::new(full),
    };
    assert!(item.is_disk_full());
}

/// Whether `e` is the database refusing a broken link between two rows:
/// PostgreSQL's foreign_key_violation (its triggers since migration 0038),
/// SQLite's foreign key.
fn is_broken_link(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.code().as_deref() == Some("23503") || d.message().contains("FOREIGN KEY")
        }
        _ => false,
    }
}

/// Enti, positions, options and transfers stay linked on both databases,
/// whatever writes them: PostgreSQL checks the links once per statement
/// (migration 0038), SQLite with its foreign keys. Each refused write is
/// set beside the same write with the link whole, which succeeds.
#[tokio::test]
async fn positions_options_and_transfers_stay_linked() {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        let store = store_with_ente_at(&url).await;
        let now = Utc::now();
        store
            .create_position(ENTE, position("LINKED", 0), now, true)
            .await
            .unwrap();
        store.close().await;
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();

        // A position of an Ente that does not exist.
        let position_of = |ente: &str, iupd: &str| {
            format!(
                "INSERT INTO debt_positions (ente, iupd, debtor_type, debtor_fiscal_code, debtor_name,
                   company_name, switch_to_expired, pay_stand_in, status, min_due_date,
                   max_due_date, inserted_at, updated_at, version)
                 SELECT '{ente}', '{iupd}', debtor_type, debtor_fiscal_code, debtor_name,
                   company_name, switch_to_expired, pay_stand_in, status, min_due_date,
                   max_due_date, inserted_at, updated_at, version
                 FROM debt_positions WHERE iupd = 'LINKED'"
            )
        };
        let refused = sqlx::query(sqlx::AssertSqlSafe(position_of("00000000000", "ORPHAN")))
            .execute(&mut conn)
            .await
            .unwrap_err();
        assert!(is_broken_link(&refused), "{backend:?}: {refused}");
        sqlx::query(sqlx::AssertSqlSafe(position_of(OTHER, "ADOPTED")))
            .execute(&mut conn)
            .await
            .unwrap();

        // An option of a position that does not exist, then of one that does.
        let option_of = |position: &str, iuv: &str| {
            format!(
                "INSERT INTO payment_options (ente, iuv, notice_number, position_id, option_index,
                   amount, description, is_partial_payment, due_date, fee, notification_fee,
                   status, metadata)
                 SELECT ente, '{iuv}', '3{iuv}', {position}, option_index, amount, description,
                   is_partial_payment, due_date, fee, notification_fee, status, metadata
                 FROM payment_options WHERE position_id = (SELECT id FROM debt_positions WHERE iupd = 'LINKED')"
            )
        };
        let refused = sqlx::query(sqlx::AssertSqlSafe(option_of("-1", "01999999999999901")))
            .execute(&mut conn)
            .await
            .unwrap_err();
        assert!(is_broken_link(&refused), "{backend:?}: {refused}");
        sqlx::query(sqlx::AssertSqlSafe(option_of(
            "(SELECT id FROM debt_positions WHERE iupd = 'LINKED')",
            "01999999999999902",
        )))
        .execute(&mut conn)
        .await
        .unwrap();

        // A transfer of an option that does not exist, then of one that does.
        let transfer_of = |iuv: &str| {
            format!(
                "INSERT INTO transfers (ente, iuv, id_transfer, amount, organization_fiscal_code,
                   remittance_information, category, iban, metadata, quotas, reported)
                 SELECT ente, '{iuv}', id_transfer, amount, organization_fiscal_code,
                   remittance_information, category, iban, metadata, quotas, reported
                 FROM transfers WHERE iuv = (SELECT o.iuv FROM payment_options o
                   JOIN debt_positions p ON p.id = o.position_id
                   WHERE p.iupd = 'LINKED' AND o.iuv <> '01999999999999902')"
            )
        };
        let refused = sqlx::query(sqlx::AssertSqlSafe(transfer_of("01999999999999903")))
            .execute(&mut conn)
            .await
            .unwrap_err();
        assert!(is_broken_link(&refused), "{backend:?}: {refused}");
        sqlx::query(sqlx::AssertSqlSafe(transfer_of("01999999999999902")))
            .execute(&mut conn)
            .await
            .unwrap();

        // Forty at once: PostgreSQL checks a statement of many rows in one
        // query, not row by row.
        let refused = sqlx::query(
            "WITH RECURSIVE g(n) AS (SELECT 1000 UNION ALL SELECT n + 1 FROM g WHERE n < 1039)
             INSERT INTO transfers (ente, iuv, id_transfer, amount, organization_fiscal_code,
               remittance_information, category, iban, metadata, quotas, reported)
             SELECT t.ente, '0199999999999' || CAST(g.n AS TEXT), t.id_transfer, t.amount,
               t.organization_fiscal_code, t.remittance_information, t.category, t.iban,
               t.metadata, t.quotas, t.reported
             FROM transfers t CROSS JOIN g WHERE t.iuv = '01999999999999902'",
        )
        .execute(&mut conn)
        .await
        .unwrap_err();
        assert!(is_broken_link(&refused), "{backend:?}: {refused}");

        // Forty of each at once, their parents close together, as a
        // supply's are: PostgreSQL looks over the range of their keys
        // first. One missing parent among forty is found; forty present
        // ones pass.
        let g = "WITH RECURSIVE g(n) AS (SELECT 1000 UNION ALL SELECT n + 1 FROM g WHERE n < 1039)";
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{g} INSERT INTO debt_positions (ente, iupd, debtor_type, debtor_fiscal_code,
               debtor_name, company_name, switch_to_expired, pay_stand_in, status, min_due_date,
               max_due_date, inserted_at, updated_at, version)
             SELECT p.ente, 'MANY-' || CAST(g.n AS TEXT), p.debtor_type, p.debtor_fiscal_code,
               p.debtor_name, p.company_name, p.switch_to_expired, p.pay_stand_in, p.status,
               p.min_due_date, p.max_due_date, p.inserted_at, p.updated_at, p.version
             FROM debt_positions p CROSS JOIN g WHERE p.iupd = 'LINKED'"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        let many_options = |missing: i64| {
            format!(
                "{g} INSERT INTO payment_options (ente, iuv, notice_number, position_id,
                   option_index, amount, description, is_partial_payment, due_date, fee,
                   notification_fee, status, metadata)
                 SELECT o.ente, '0188888888888' || CAST(g.n AS TEXT),
                   '30188888888888' || CAST(g.n AS TEXT),
                   CASE WHEN g.n = {missing} THEN -5
                        ELSE (SELECT id FROM debt_positions WHERE iupd = 'MANY-' || CAST(g.n AS TEXT)) END,
                   o.option_index, o.amount, o.description, o.is_partial_payment, o.due_date,
                   o.fee, o.notification_fee, o.status, o.metadata
                 FROM payment_options o CROSS JOIN g WHERE o.iuv = '01999999999999902'"
            )
        };
        let refused = sqlx::query(sqlx::AssertSqlSafe(many_options(1020)))
            .execute(&mut conn)
            .await
            .unwrap_err();
        assert!(is_broken_link(&refused), "{backend:?}: {refused}");
        sqlx::query(sqlx::AssertSqlSafe(many_options(0)))
            .execute(&mut conn)
            .await
            .unwrap();
        let many_transfers = |last: i64| {
            format!(
                "WITH RECURSIVE g(n) AS (SELECT 1000 UNION ALL SELECT n + 1 FROM g WHERE n < {last})
                 INSERT INTO transfers (ente, iuv, id_transfer, amount, organization_fiscal_code,
                   remittance_information, category, iban, metadata, quotas, reported)
                 SELECT t.ente, '0188888888888' || CAST(g.n AS TEXT), t.id_transfer, t.amount,
                   t.organization_fiscal_code, t.remittance_information, t.category, t.iban,
                   t.metadata, t.quotas, t.reported
                 FROM transfers t CROSS JOIN g WHERE t.iuv = '01999999999999902'"
            )
        };
        // The forty-first IUV (…1040) has no option: it lies past the
        // others, inside no range of theirs.
        let refused = sqlx::query(sqlx::AssertSqlSafe(many_transfers(1040)))
            .execute(&mut conn)
            .await
            .unwrap_err();
        assert!(is_broken_link(&refused), "{backend:?}: {refused}");
        sqlx::query(sqlx::AssertSqlSafe(many_transfers(1039)))
            .execute(&mut conn)
            .await
            .unwrap();

        // A key moved to a parent that does not exist.
        let refused = sqlx::query(
            "UPDATE payment_options SET position_id = -1 WHERE iuv = '01999999999999902'",
        )
        .execute(&mut conn)
        .await
        .unwrap_err();
        assert!(is_broken_link(&refused), "{backend:?}: {refused}");
        // A change that keeps the keys, as a receipt's.
        sqlx::query(
            "UPDATE payment_options SET status = 'PO_PAID' WHERE iuv = '01999999999999902'",
        )
        .execute(&mut conn)
        .await
        .unwrap();

        // An Ente with positions stays; once they are gone, it goes.
        sqlx::query(
            "INSERT INTO enti (fiscal_code, name, created_at, updated_at)
             VALUES ('11111111111', 'Ente senza altro', 0, 0)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(position_of("11111111111", "BARE")))
            .execute(&mut conn)
            .await
            .unwrap();
        let refused = sqlx::query("DELETE FROM enti WHERE fiscal_code = '11111111111'")
            .execute(&mut conn)
            .await
            .unwrap_err();
        assert!(is_broken_link(&refused), "{backend:?}: {refused}");
        sqlx::query("DELETE FROM debt_positions WHERE ente = '11111111111'")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("DELETE FROM enti WHERE fiscal_code = '11111111111'")
            .execute(&mut conn)
            .await
            .unwrap();

        // Deleting the positions takes their options and their transfers.
        let children = "SELECT CAST(COUNT(*) AS BIGINT) FROM payment_options o
             LEFT JOIN transfers t ON t.ente = o.ente AND t.iuv = o.iuv
             WHERE o.position_id = (SELECT id FROM debt_positions WHERE iupd = 'LINKED')";
        let before: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(children))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(before, 2, "{backend:?}: two options, one transfer each");
        sqlx::query("DELETE FROM debt_positions WHERE iupd = 'LINKED' OR iupd LIKE 'MANY-%'")
            .execute(&mut conn)
            .await
            .unwrap();
        let options: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM payment_options WHERE ente = '80000130585'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        let transfers: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM transfers WHERE ente = '80000130585'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!((options, transfers), (0, 0), "{backend:?}");
        conn.close().await.unwrap();
    }
}
