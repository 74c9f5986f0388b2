//! PosPA's state machine in the application layer, against a gateway of
//! the test's making (no HTTP), on every backend: two pushes racing for a
//! notice or a terminal, the callback's idempotency and conflicts, a
//! receipt closing a session, the sweep's decisions, the gateway's refusal
//! and silence (never a second request).

use chrono::{Duration, Utc};
use incasso_app::pos::{self, PosSessionState, PosSettings};
use incasso_app::{App, Settings};
use incasso_core::Cents;
use incasso_core::ente::{Ente, StationLink};
use incasso_core::sample::{self, PositionSpec};
use incasso_pagopa::connector::BoxFuture;
use incasso_pagopa::pos::{
    AuthOutcome, AuthorizationCallback, CardDetails, KoDetail, KoReason, PaymentDetail,
    PaymentRequest, PaymentResponse, PosError, PosGateway, PosResponse, PosSessionRequest,
    PosSessionResponse, PosTerminal, PspInfo, SessionOutcome, SessionStatusResponse,
    TerminalStatus, new_uuid,
};
use incasso_store::Store;
use incasso_testkit::{backends, fresh_database_url};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

const ENTE: &str = "80000130585";

#[derive(Clone, Copy, PartialEq)]
enum Create {
    Ok,
    Ko,
    Silent,
}

/// A gateway that answers as the test says, and counts the requests.
struct Fake {
    create: Mutex<Create>,
    status: Mutex<SessionOutcome>,
    creates: AtomicUsize,
}

impl PosGateway for Fake {
    fn init_session<'a>(
        &'a self,
        _: &'a str,
        _: &'a PosSessionRequest,
        _: bool,
    ) -> BoxFuture<'a, Result<PosSessionResponse, PosError>> {
        Box::pin(async move {
            Ok(PosSessionResponse {
                session_id: new_uuid(),
                terminals: vec![PosTerminal {
                    id: "SIMPOS01".into(),
                    description: "POS".into(),
                    status: TerminalStatus::Available,
                    status_code: None,
                }],
            })
        })
    }

    fn terminals<'a>(
        &'a self,
        _: &'a str,
        _: &'a PosSessionRequest,
    ) -> BoxFuture<'a, Result<PosResponse, PosError>> {
        Box::pin(async move { Ok(PosResponse { terminals: vec![] }) })
    }

    fn create_payment<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        request: &'a PaymentRequest,
    ) -> BoxFuture<'a, Result<PaymentResponse, PosError>> {
        Box::pin(async move {
            self.creates.fetch_add(1, Ordering::SeqCst);
            // Long enough for a racing push to meet this one's hold.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let plan = *self.create.lock().unwrap();
            match plan {
                Create::Ok => Ok(PaymentResponse::Ok {
                    amount: 0,
                    details: Vec::<PaymentDetail>::new(),
                }),
                Create::Ko => Ok(PaymentResponse::Ko {
                    amount: 0,
                    details: vec![KoDetail {
                        creditor_institution_fiscal_code: Some(ENTE.into()),
                        notice_number: Some(format!("{:?}", request.debt_positions.len())),
                        iuv: None,
                        amount: None,
                        reason: KoReason::ActivationError,
                    }],
                }),
                Create::Silent => Err(PosError::Unreachable("timeout".into())),
            }
        })
    }

    fn session_status<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<SessionStatusResponse, PosError>> {
        Box::pin(async move {
            Ok(SessionStatusResponse {
                outcome: *self.status.lock().unwrap(),
            })
        })
    }
}

async fn world() -> Vec<(App, std::sync::Arc<Fake>)> {
    let mut out = Vec::new();
    for backend in backends() {
        let store = Store::connect(&fresh_database_url(backend).await)
            .await
            .unwrap();
        let now = Utc::now();
        store
            .create_ente(
                &Ente {
                    fiscal_code: ENTE.into(),
                    name: "Comune di Prova".into(),
                    ipa_code: None,
                    iban: Some("IT65B0200805364000104567891".into()),
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
                ENTE,
                &StationLink {
                    broker_id: "15376371009".into(),
                    station_id: "15376371009_01".into(),
                    segregation_code: 1,
                },
                now,
            )
            .await
            .unwrap();
        let fake = std::sync::Arc::new(Fake {
            create: Mutex::new(Create::Ok),
            status: Mutex::new(SessionOutcome::Ongoing),
            creates: AtomicUsize::new(0),
        });
        let mut settings = Settings::new("http://127.0.0.1:1");
        settings.pos = Some(PosSettings::with_gateway(
            fake.clone(),
            PspInfo {
                id: "PSP".into(),
                broker: "PSP".into(),
                channel: "PSP_03".into(),
            },
        ));
        let app = App::new(store.clone(), settings);
        for (desk, terminal) in [("D1", "SIMPOS01"), ("D2", "SIMPOS02")] {
            store
                .create_desk(&incasso_store::desks::DeskRecord {
                    ente: ENTE.into(),
                    code: desk.into(),
                    name: desk.into(),
                    office: None,
                    created_at: now,
                })
                .await
                .unwrap();
            pos::register_terminal(&app.system("t"), ENTE, terminal, "POS", Some(desk))
                .await
                .unwrap();
        }
        out.push((app, fake));
    }
    out
}

async fn notice(app: &App, n: u64) -> String {
    let p = sample::position(&PositionSpec {
        ente: ENTE,
        company_name: "Comune di Prova",
        iupd: format!("P-{n}"),
        debtor_index: n,
        amount: Cents(1_000 + n as i64),
        description: format!("Diritti {n}"),
        category: "9/0101101IM/",
        iban: "IT65B0200805364000104567891",
        due_date: Utc::now() + Duration::days(30),
        installments: 0,
        second_beneficiary: None,
        quotas: vec![],
    });
    let stored = app
        .store
        .create_position(ENTE, p, Utc::now(), true)
        .await
        .unwrap();
    stored.position.options[0]
        .notice_number
        .clone()
        .unwrap()
        .as_str()
        .to_string()
}

fn callback(outcome: AuthOutcome, gw: &str) -> AuthorizationCallback {
    AuthorizationCallback::new(
        outcome,
        "SIMPOS01",
        gw,
        1_001,
        "2026-04-08T14:16:30Z",
        Some(&CardDetails {
            last_four_digits: Some("4242".into()),
            brand: Some("MASTERCARD".into()),
            ..Default::default()
        }),
        Some("rifiutata"),
    )
}

/// Two pushes of one notice at once, from two desks: one holds it, the
/// other is refused; two notices on one terminal at once: one waits.
#[tokio::test]
async fn a_notice_and_a_terminal_serve_one_session_at_a_time() {
    for (app, _) in world().await {
        let ctx = app.system("t");
        let nav = notice(&app, 1).await;
        let one = [nav.as_str()];
        let (a, b) = tokio::join!(
            pos::push(&ctx, ENTE, "D1", &one),
            pos::push(&ctx, ENTE, "D2", &one),
        );
        let codes: Vec<&str> = [&a, &b]
            .iter()
            .filter_map(|r| r.as_ref().err().map(|e| e.code))
            .collect();
        assert_eq!(codes, vec!["POS_NOTICE_BUSY"], "{a:?} {b:?}");
        let other = notice(&app, 2).await;
        let third = notice(&app, 3).await;
        let desk_of_winner = if a.is_ok() { "D1" } else { "D2" };
        let e = pos::push(&ctx, ENTE, desk_of_winner, &[other.as_str()])
            .await
            .unwrap_err();
        assert_eq!(e.code, "POS_TERMINAL_BUSY");
        let free = if a.is_ok() { "D2" } else { "D1" };
        let (first, second) = ([other.as_str()], [third.as_str()]);
        let (x, y) = tokio::join!(
            pos::push(&ctx, ENTE, free, &first),
            pos::push(&ctx, ENTE, free, &second),
        );
        assert!(x.is_ok() != y.is_ok(), "{x:?} {y:?}");
    }
}

/// AUTHORIZED, again (no change), a conflicting DECLINED (refused, the
/// first kept); the receipt pays it and lets the notice go.
#[tokio::test]
async fn callbacks_and_receipts_drive_a_session() {
    for (app, _) in world().await {
        let ctx = app.system("t");
        let nav = notice(&app, 1).await;
        let s = pos::push(&ctx, ENTE, "D1", &[nav.as_str()]).await.unwrap();
        assert_eq!(s.state, PosSessionState::AwaitingOutcome);
        let gw = s.gateway_session.clone().unwrap();
        let corr = "00000000-0000-4000-8000-000000000000";
        pos::callback(&app, &gw, corr, &callback(AuthOutcome::Authorized, &gw))
            .await
            .unwrap();
        pos::callback(&app, &gw, corr, &callback(AuthOutcome::Authorized, &gw))
            .await
            .unwrap();
        let e = pos::callback(&app, &gw, corr, &callback(AuthOutcome::Declined, &gw))
            .await
            .unwrap_err();
        assert_eq!(e.code, "POS_OUTCOME_CONFLICT");
        let v = pos::session(&ctx, ENTE, &s.id).await.unwrap();
        assert_eq!(v.state, PosSessionState::Authorized);
        assert_eq!(
            v.card.as_ref().and_then(|c| c.last_four.as_deref()),
            Some("4242")
        );
        let e = pos::callback(
            &app,
            &new_uuid(),
            corr,
            &callback(AuthOutcome::Timeout, "x"),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "POS_SESSION_MISMATCH");
        let unknown = new_uuid();
        let e = pos::callback(
            &app,
            &unknown,
            corr,
            &callback(AuthOutcome::Timeout, &unknown),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "POS_SESSION_UNKNOWN");
        // Held until its receipt.
        let e = pos::push(&ctx, ENTE, "D2", &[nav.as_str()])
            .await
            .unwrap_err();
        assert_eq!(e.code, "POS_NOTICE_BUSY");
        pos::after_receipt(&app, ENTE, &nav, "RT-1", None).await;
        let v = pos::session(&ctx, ENTE, &s.id).await.unwrap();
        assert_eq!(v.state, PosSessionState::Paid);
        assert_eq!(v.receipts, vec![(nav.clone(), "RT-1".to_string())]);
        // A declined card lets its notice go at once.
        let nav = notice(&app, 2).await;
        let s = pos::push(&ctx, ENTE, "D1", &[nav.as_str()]).await.unwrap();
        let gw = s.gateway_session.clone().unwrap();
        pos::callback(&app, &gw, corr, &callback(AuthOutcome::Declined, &gw))
            .await
            .unwrap();
        let v = pos::session(&ctx, ENTE, &s.id).await.unwrap();
        assert_eq!(v.state, PosSessionState::Declined);
        assert!(v.error.unwrap().contains("carta rifiutata (rifiutata)"));
        pos::push(&ctx, ENTE, "D2", &[nav.as_str()]).await.unwrap();
    }
}

/// The gateway refuses (KO): nothing held. It does not answer: the
/// request is not sent again, the session waits; the sweep asks, moves
/// the deadline while ONGOING, flags it past the limit (held: a person
/// decides, and may release it), and closes it when the gateway says
/// ERROR.
#[tokio::test]
async fn the_gateway_refusing_or_silent() {
    for (app, fake) in world().await {
        let ctx = app.system("t");
        let nav = notice(&app, 1).await;
        *fake.create.lock().unwrap() = Create::Ko;
        let e = pos::push(&ctx, ENTE, "D1", &[nav.as_str()])
            .await
            .unwrap_err();
        assert_eq!(e.code, "POS_GATEWAY_KO");
        assert!(e.detail.contains("non attivato"), "{}", e.detail);
        *fake.create.lock().unwrap() = Create::Silent;
        let before = fake.creates.load(Ordering::SeqCst);
        let s = pos::push(&ctx, ENTE, "D1", &[nav.as_str()]).await.unwrap();
        assert_eq!(fake.creates.load(Ordering::SeqCst), before + 1);
        assert_eq!(s.state, PosSessionState::AwaitingOutcome);
        let soon = Utc::now() + Duration::minutes(5);
        assert_eq!(pos::sweep(&app, soon).await.unwrap(), 1);
        let v = pos::session(&ctx, ENTE, &s.id).await.unwrap();
        assert_eq!(v.state, PosSessionState::AwaitingOutcome);
        assert!(v.anomaly.is_none());
        let late = Utc::now() + Duration::hours(2);
        pos::sweep(&app, late).await.unwrap();
        let v = pos::session(&ctx, ENTE, &s.id).await.unwrap();
        assert_eq!(v.anomaly.as_ref().unwrap().code, "NO_OUTCOME");
        assert_eq!(
            pos::push(&ctx, ENTE, "D2", &[nav.as_str()])
                .await
                .unwrap_err()
                .code,
            "POS_NOTICE_BUSY"
        );
        let v = pos::release(&ctx, ENTE, &s.id).await.unwrap();
        assert_eq!(v.state, PosSessionState::Failed);
        // The gateway says ERROR: closed without payment, notice free.
        *fake.create.lock().unwrap() = Create::Silent;
        let s = pos::push(&ctx, ENTE, "D2", &[nav.as_str()]).await.unwrap();
        *fake.status.lock().unwrap() = SessionOutcome::Error;
        pos::sweep(&app, soon).await.unwrap();
        let v = pos::session(&ctx, ENTE, &s.id).await.unwrap();
        assert_eq!(v.state, PosSessionState::Failed);
        assert_eq!(fake.creates.load(Ordering::SeqCst), before + 2);
    }
}
