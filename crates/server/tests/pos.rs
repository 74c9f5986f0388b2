//! PosPA end to end (issue 18): incasso and the simulated POS gateway,
//! terminals, acquirer and Node, each on a port of its own, on SQLite and
//! PostgreSQL. A clerk's push of two notices is paid (receipts stored,
//! positions paid, the payments in the PSP's reporting flow), then every
//! failure mode of the terminal, the refusals of bad input, and the
//! gateway's callback door.

use crate::common::app;

use app::gpd::{BROKER, ENTE, IBAN, OTHER_ENTE};
use chrono::{Duration, Utc};
use incasso_app::pos::{self, PosSessionState, PosSessionView, PosSettings};
use incasso_app::{App, Caller, Ctx, OperatorIdentity};
use incasso_core::Cents;
use incasso_core::access::{Rights, Role};
use incasso_core::position::OptionStatus;
use incasso_core::sample::{self, PositionSpec};
use incasso_pagopa::pos::{
    AuthOutcome, AuthorizationCallback, CardDetails, PosGatewaySettings, new_uuid,
};
use incasso_simulator::pos::{Mode, PosConfig, Step, acquirer};
use incasso_simulator::{Faults, Route, Settings, Simulator};
use incasso_store::Store;
use incasso_testkit::{Backend, backends};

const KEY: &str = "pos-gateway-subscription-key";

struct World {
    app: App,
    store: Store,
    sim: Simulator,
    base: String,
    http: reqwest::Client,
    next: std::sync::atomic::AtomicU64,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn world(backend: Backend) -> World {
    incasso_pagopa::connector::install_crypto_provider();
    let (store, keys) = app::gpd::enti(backend, &[ENTE, OTHER_ENTE]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim_url = format!("http://{}", sim_listener.local_addr().unwrap());
    let routes = [ENTE, OTHER_ENTE]
        .iter()
        .enumerate()
        .map(|(i, fc)| Route {
            fiscal_code: fc.to_string(),
            broker_id: BROKER.into(),
            station_id: format!("ST_{:02}", i + 1),
            segregation_code: Some(i as u8 + 1),
        })
        .collect();
    let sim = Simulator::new(Settings {
        ente_soap_url: format!("{base}/pagopa/paForNode"),
        routes,
        required_subscription_key: Some(KEY.into()),
        faults: Faults::default(),
        public_url: None,
        oidc: Default::default(),
    });
    sim.configure_pos(PosConfig {
        callback_url: base.clone(),
        authorization_timeout_ms: 400,
        default_delay_ms: 50,
        receipt_delay_ms: 500,
        callback_retry_ms: 100,
        callback_attempts: 20,
        gpd_url: base.clone(),
        gpd_keys: [(ENTE.to_string(), keys[0].clone())].into(),
        ..PosConfig::default()
    });
    tokio::spawn(sim.clone().serve(sim_listener, std::future::pending()));
    let psp = acquirer();
    let mut pos_settings = PosSettings::http(PosGatewaySettings {
        url: format!("{sim_url}/pos-layer-service"),
        subscription_key: Some(KEY.into()),
        psp: incasso_pagopa::pos::PspInfo {
            id: psp.id.clone(),
            broker: psp.id.clone(),
            channel: psp.channel.clone(),
        },
        timeout_ms: 5_000,
    })
    .unwrap();
    pos_settings.outcome_deadline = Duration::seconds(30);
    let mut settings = incasso_app::Settings::new(&base);
    settings.pos = Some(pos_settings);
    let app = App::new(store.clone(), settings);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(incasso_server::serve(listener, app.clone(), async {
        let _ = stopped.await;
    }));
    let now = Utc::now();
    for (ente, desk, terminal) in [
        (ENTE, "SPORTELLO_01", "SIMPOS01"),
        (ENTE, "SPORTELLO_02", "SIMPOS08"),
        (OTHER_ENTE, "SPORTELLO_01", "SIMPOS02"),
    ] {
        store
            .create_desk(&incasso_store::desks::DeskRecord {
                ente: ente.into(),
                code: desk.into(),
                name: format!("Sportello {desk}"),
                office: None,
                created_at: now,
            })
            .await
            .unwrap();
        pos::register_terminal(
            &app.system("test"),
            ente,
            terminal,
            &format!("POS {terminal}"),
            Some(desk),
        )
        .await
        .unwrap();
    }
    World {
        app,
        store,
        sim,
        base,
        http: reqwest::Client::new(),
        next: Default::default(),
        _stop: stop,
    }
}

impl World {
    fn ctx(&self) -> Ctx {
        self.app.system("test")
    }

    /// A published notice of `ENTE` for `amount`, due in `due_days` (in
    /// the past: made a month ago, and expired).
    async fn notice(&self, amount: i64, due_days: i64) -> String {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let now = Utc::now();
        let mut p = sample::position(&PositionSpec {
            ente: ENTE,
            company_name: "Comune di Prova",
            iupd: format!("POS-{n}"),
            debtor_index: 11 + n,
            amount: Cents(amount),
            description: format!("Diritti di segreteria {n}"),
            category: "9/0101101IM/",
            iban: IBAN,
            due_date: now + Duration::days(due_days),
            installments: 0,
            second_beneficiary: None,
            quotas: vec![],
        });
        p.switch_to_expired = true;
        let made_at = if due_days < 0 {
            now - Duration::days(30)
        } else {
            now
        };
        let stored = self
            .store
            .create_position(ENTE, p, made_at, true)
            .await
            .unwrap();
        stored.position.options[0]
            .notice_number
            .clone()
            .unwrap()
            .as_str()
            .to_string()
    }

    async fn push(&self, navs: &[&str]) -> Result<PosSessionView, incasso_app::AppError> {
        pos::push(&self.ctx(), ENTE, "SPORTELLO_01", navs).await
    }

    /// The session once `done` says so (at most ten seconds).
    async fn until(
        &self,
        id: &str,
        what: &str,
        done: impl Fn(&PosSessionView) -> bool,
    ) -> PosSessionView {
        let mut last = None;
        for _ in 0..200 {
            let v = pos::session(&self.ctx(), ENTE, id).await.unwrap();
            if done(&v) {
                return v;
            }
            last = Some(v);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("session {id} never reached {what}: {last:#?}");
    }

    async fn paid(&self, nav: &str) -> bool {
        let (stored, index) = self.store.find_by_notice_number(ENTE, nav).await.unwrap();
        stored.position.options[index].status != OptionStatus::Unpaid
    }

    async fn patch(
        &self,
        session: &str,
        correlation: Option<&str>,
        body: &serde_json::Value,
    ) -> reqwest::StatusCode {
        let mut req = self
            .http
            .patch(format!(
                "{}/pos/ci/sessions/{session}/auth-requests",
                self.base
            ))
            .json(body);
        if let Some(c) = correlation {
            req = req.header("x-correlation-id", c);
        }
        req.send().await.unwrap().status()
    }
}

fn state_is(s: PosSessionState) -> impl Fn(&PosSessionView) -> bool {
    move |v| v.state == s
}

#[tokio::test]
async fn a_terminal_pays_notices_and_every_failure_is_followed() {
    for backend in backends() {
        let w = world(backend).await;
        paid_end_to_end(&w).await;
        failures(&w).await;
        late_receipts(&w).await;
        bad_input(&w).await;
        callback_door(&w).await;
        created_at_terminal(&w).await;
    }
}

/// Two notices pushed to the desk's terminal are paid: the receipts are
/// stored and linked, the positions paid, the card shown, the outcome
/// delivered once, and the PSP's reporting flow lists both payments.
async fn paid_end_to_end(w: &World) {
    let a = w.notice(2_000, 30).await;
    let b = w.notice(3_550, 30).await;
    let pushed = w.push(&[a.as_str(), b.as_str()]).await.unwrap();
    assert_eq!(pushed.terminal_id, "SIMPOS01");
    assert_eq!(pushed.total, Cents(5_550));
    assert_eq!(pushed.notices.len(), 2);
    // Receipts first, then the outcome (as the gateway closes a payment).
    let v = w
        .until(&pushed.id, "PAID with its card", |v| {
            v.state == PosSessionState::Paid && v.card.is_some()
        })
        .await;
    assert_eq!(v.receipts.len(), 2, "{v:#?}");
    let card = v.card.clone().expect("card of an authorized payment");
    assert_eq!(card.last_four.as_deref(), Some("1234"));
    assert_eq!(card.brand.as_deref(), Some("VISA"));
    assert!(v.anomaly.is_none() && v.error.is_none(), "{v:#?}");
    assert!(w.paid(&a).await && w.paid(&b).await);
    let gw = v.gateway_session.clone().unwrap();
    let mut sim = w.sim.pos_session(&gw).unwrap();
    for _ in 0..100 {
        if !sim.callback_attempts.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        sim = w.sim.pos_session(&gw).unwrap();
    }
    assert_eq!(sim.callback_attempts, vec![204]);
    assert_eq!(sim.workstation.as_deref(), Some("SPORTELLO_01"));
    assert_eq!(sim.receipts.len(), 2);
    // The receipts are the acquirer's, and the flows report them.
    let receipts = w
        .store
        .list_receipts(ENTE, false, None, 1000)
        .await
        .unwrap();
    for nav in [&a, &b] {
        let r = receipts
            .iter()
            .find(|r| &r.notice_number == nav)
            .expect("receipt stored");
        assert_eq!(r.psp_id, acquirer().id);
        assert!(
            v.receipts
                .iter()
                .any(|(n, id)| n == nav && id == &r.receipt_id)
        );
    }
    let flows = w.sim.publish_flows();
    let reported: i64 = flows
        .iter()
        .filter(|f| f.ente == ENTE)
        .map(|f| f.total_cents)
        .sum();
    assert!(reported >= 5_550, "{flows:?}");
    // The desk's day lists it.
    let today = incasso_core::time::to_rome(Utc::now()).date();
    let day = pos::sessions_of_desk(&w.ctx(), ENTE, "SPORTELLO_01", today)
        .await
        .unwrap();
    assert!(day.iter().any(|s| s.id == v.id));
}

/// Declined, refused, cancelled: no payment, the notice free again at
/// once. Timeout and a dropped authorization hold it until the sweep;
/// the dropped one leaves a refund with the acquirer.
async fn failures(w: &World) {
    for (mode, state, words) in [
        (Mode::Declined, PosSessionState::Declined, "carta rifiutata"),
        (Mode::Refused, PosSessionState::Refused, "rifiutato"),
        (
            Mode::CanceledByUser,
            PosSessionState::Cancelled,
            "annullata dal cittadino",
        ),
    ] {
        let nav = w.notice(1_000, 30).await;
        w.sim.pos_script("SIMPOS01", vec![Step::new(mode)]);
        let s = w.push(&[nav.as_str()]).await.unwrap();
        let v = w.until(&s.id, state.label(), state_is(state)).await;
        assert!(
            v.error.as_deref().unwrap_or_default().contains(words),
            "{v:#?}"
        );
        assert!(!w.paid(&nav).await);
        // Free again: paid on the next try.
        let again = w.push(&[nav.as_str()]).await.unwrap();
        w.until(&again.id, "PAID", state_is(PosSessionState::Paid))
            .await;
        assert!(w.paid(&nav).await);
    }

    for mode in [Mode::Timeout, Mode::DropAfterAuth] {
        let nav = w.notice(1_200, 30).await;
        w.sim.pos_script("SIMPOS01", vec![Step::new(mode)]);
        let s = w.push(&[nav.as_str()]).await.unwrap();
        let v = w
            .until(&s.id, "TIMED_OUT", state_is(PosSessionState::TimedOut))
            .await;
        assert!(v.receipts.is_empty());
        // Held: no second attempt while a receipt may still come.
        let e = w.push(&[nav.as_str()]).await.unwrap_err();
        assert_eq!(e.code, "POS_NOTICE_BUSY", "{mode:?}");
        pos::sweep(&w.app, Utc::now() + Duration::hours(1))
            .await
            .unwrap();
        let v = pos::session(&w.ctx(), ENTE, &s.id).await.unwrap();
        assert_eq!(
            v.anomaly.as_ref().map(|a| a.code.as_str()),
            Some("TIMEOUT_NO_RECEIPT")
        );
        assert!(!w.paid(&nav).await);
        if mode == Mode::DropAfterAuth {
            let gw = v.gateway_session.unwrap();
            assert!(
                w.sim
                    .pos_reconciliations()
                    .iter()
                    .any(|r| r.session_id == gw && r.action == "REFUND" && r.amount == 1_200)
            );
        }
        // Let go after the hold: paid on the next try.
        let again = w.push(&[nav.as_str()]).await.unwrap();
        w.until(&again.id, "PAID", state_is(PosSessionState::Paid))
            .await;
    }
}

/// AUTHORIZED before the receipt: the notice stays held; past the
/// deadline a person is asked to look (never a second payment); the late
/// receipt then pays it and clears the flag. A receipt after TIMEOUT pays
/// too, flagged.
async fn late_receipts(w: &World) {
    let nav = w.notice(4_000, 30).await;
    w.sim.pos_script(
        "SIMPOS01",
        vec![Step {
            mode: Mode::LateReceipt,
            delay_ms: Some(20),
            receipt_delay_ms: Some(1_500),
        }],
    );
    let s = w.push(&[nav.as_str()]).await.unwrap();
    let v = w
        .until(&s.id, "AUTHORIZED", state_is(PosSessionState::Authorized))
        .await;
    assert!(v.receipts.is_empty() && v.card.is_some());
    pos::sweep(&w.app, Utc::now() + Duration::hours(1))
        .await
        .unwrap();
    let v = pos::session(&w.ctx(), ENTE, &s.id).await.unwrap();
    assert_eq!(v.state, PosSessionState::Authorized);
    assert_eq!(
        v.anomaly.as_ref().map(|a| a.code.as_str()),
        Some("RECEIPT_MISSING")
    );
    let e = w.push(&[nav.as_str()]).await.unwrap_err();
    assert_eq!(e.code, "POS_NOTICE_BUSY");
    let v = w
        .until(&s.id, "PAID", state_is(PosSessionState::Paid))
        .await;
    assert!(v.anomaly.is_none(), "{v:#?}");
    assert!(w.paid(&nav).await);

    let nav = w.notice(4_100, 30).await;
    w.sim.pos_script(
        "SIMPOS01",
        vec![Step {
            mode: Mode::ReceiptAfterTimeout,
            delay_ms: None,
            receipt_delay_ms: Some(300),
        }],
    );
    let s = w.push(&[nav.as_str()]).await.unwrap();
    let v = w
        .until(&s.id, "PAID after TIMEOUT", state_is(PosSessionState::Paid))
        .await;
    assert_eq!(
        v.anomaly.as_ref().map(|a| a.code.as_str()),
        Some("RECEIPT_AFTER_TIMEOUT")
    );
    assert!(w.paid(&nav).await);
}

/// Each refusal has its code, and writes nothing.
async fn bad_input(w: &World) {
    let today = incasso_core::time::to_rome(Utc::now()).date();
    let count = async || {
        pos::sessions_of_desk(&w.ctx(), ENTE, "SPORTELLO_01", today)
            .await
            .unwrap()
            .len()
    };
    let before = count().await;
    let mut six = Vec::new();
    for _ in 0..6 {
        six.push(w.notice(500, 30).await);
    }
    let refs: Vec<&str> = six.iter().map(String::as_str).collect();
    assert_eq!(
        w.push(&refs).await.unwrap_err().code,
        "POS_TOO_MANY_NOTICES"
    );
    assert_eq!(
        w.push(&[] as &[&str]).await.unwrap_err().code,
        "POS_NO_NOTICES"
    );
    assert_eq!(
        w.push(&[refs[0], refs[0]]).await.unwrap_err().code,
        "POS_DUPLICATE_NOTICE"
    );
    // Unknown (a valid number nobody issued): the first notice is fine,
    // the second is not, and nothing is held.
    let unknown = "301999999999999999";
    assert_eq!(
        w.push(&[refs[0], unknown]).await.unwrap_err().code,
        "POS_NOTICE_UNKNOWN"
    );
    let expired = w.notice(700, -2).await;
    assert_eq!(
        w.push(&[expired.as_str()]).await.unwrap_err().code,
        "POS_NOTICE_EXPIRED"
    );
    let paid = w.notice(800, 30).await;
    let s = w.push(&[paid.as_str()]).await.unwrap();
    w.until(&s.id, "PAID", state_is(PosSessionState::Paid))
        .await;
    assert_eq!(
        w.push(&[refs[1], paid.as_str()]).await.unwrap_err().code,
        "POS_NOTICE_PAID"
    );
    let e = pos::push_amounts(
        &w.ctx(),
        ENTE,
        "SPORTELLO_01",
        &[(refs[2].to_string(), Some(Cents(499)))],
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "POS_AMOUNT_MISMATCH");
    assert!(e.detail.contains("4,99"), "{}", e.detail);
    assert_eq!(count().await, before + 1, "only the paid one's session");
    // The first notice was never held: it pays now.
    let s = w.push(&[refs[0]]).await.unwrap();
    w.until(&s.id, "PAID", state_is(PosSessionState::Paid))
        .await;

    // A terminal the gateway says is unavailable: refused, nothing held.
    let nav = w.notice(900, 30).await;
    let e = pos::push(&w.ctx(), ENTE, "SPORTELLO_02", &[nav.as_str()])
        .await
        .unwrap_err();
    assert_eq!(e.code, "POS_TERMINAL_UNAVAILABLE", "{}", e.detail);
    let s = w.push(&[nav.as_str()]).await.unwrap();
    w.until(&s.id, "PAID", state_is(PosSessionState::Paid))
        .await;

    // Another Ente's terminal, desk and clerk.
    let e = pos::register_terminal(&w.ctx(), ENTE, "SIMPOS02", "rubato", Some("SPORTELLO_01"))
        .await
        .unwrap_err();
    assert_eq!(e.code, "POS_TERMINAL_OF_OTHER_ENTE");
    let clerk = w.app.ctx(Caller::Operator(Box::new(OperatorIdentity {
        id: 99,
        username: "sportello.altrove".into(),
        full_name: "Sportellista di Altrove".into(),
        rights: Rights {
            role: Role::CounterClerk,
            ente: Some(OTHER_ENTE.into()),
            grants: vec![],
            offices: vec![],
        },
    })));
    let nav = w.notice(950, 30).await;
    let e = pos::push(&clerk, ENTE, "SPORTELLO_01", &[nav.as_str()])
        .await
        .unwrap_err();
    assert_eq!(e.code, "FORBIDDEN");
    assert!(pos::terminals(&clerk, ENTE).await.is_err());
    let mine = pos::terminals(&clerk, OTHER_ENTE).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].terminal_id, "SIMPOS02");
}

/// The gateway's door: unknown session 404, the same outcome again 204,
/// a conflicting one 400, a request without x-correlation-id or with
/// another session in its body 400.
async fn callback_door(w: &World) {
    let nav = w.notice(1_500, 30).await;
    let s = w.push(&[nav.as_str()]).await.unwrap();
    let v = w
        .until(&s.id, "PAID with its card", |v| {
            v.state == PosSessionState::Paid && v.card.is_some()
        })
        .await;
    let gw = v.gateway_session.clone().unwrap();
    let corr = w.sim.pos_session(&gw).unwrap().correlation_id;
    let card = CardDetails {
        bin: Some("400000".into()),
        last_four_digits: Some("1234".into()),
        payment_auth_code: Some("889900".into()),
        rrn: Some("123456789012".into()),
        brand: Some("VISA".into()),
    };
    let body = |outcome, session: &str| {
        serde_json::to_value(AuthorizationCallback::new(
            outcome,
            "SIMPOS01",
            session,
            1_500,
            "2026-04-08T14:16:30Z",
            Some(&card),
            Some("no"),
        ))
        .unwrap()
    };
    let again = body(AuthOutcome::Authorized, &gw);
    assert_eq!(w.patch(&gw, Some(&corr), &again).await, 204);
    assert_eq!(w.patch(&gw, Some(&corr), &again).await, 204);
    let declined = body(AuthOutcome::Declined, &gw);
    assert_eq!(w.patch(&gw, Some(&corr), &declined).await, 400);
    let v = pos::session(&w.ctx(), ENTE, &s.id).await.unwrap();
    assert_eq!(v.state, PosSessionState::Paid, "the first outcome stands");
    let unknown = new_uuid();
    assert_eq!(
        w.patch(
            &unknown,
            Some(&corr),
            &body(AuthOutcome::Authorized, &unknown)
        )
        .await,
        404
    );
    assert_eq!(w.patch(&gw, None, &again).await, 400);
    assert_eq!(
        w.patch(&gw, Some(&corr), &body(AuthOutcome::Authorized, &unknown))
            .await,
        400
    );
    // Lenient with an AUTHORIZED card's odd fields and a missing sessionId.
    let mut odd = again.clone();
    odd.as_object_mut().unwrap().remove("sessionId");
    odd["details"]["details"]["rrn"] = serde_json::json!("1");
    assert_eq!(w.patch(&gw, Some(&corr), &odd).await, 204);
}

/// Positions the gateway creates (TO_CREATE, and TO_CREATE_PROVIDED_IUV
/// with an IUV incasso reserves): created through incasso's GPD API with
/// the gateway's remittance text, paid, linked; a broken one refused.
async fn created_at_terminal(w: &World) {
    let new = |amount: i64, what: &str| pos::NewPosition {
        description: format!("Diritti di segreteria: {what}"),
        debtor_kind: "F".into(),
        debtor_fiscal_code: app::gpd::DEBTOR.into(),
        debtor_name: "Mario Rossi".into(),
        transfers: vec![pos::NewTransfer {
            amount: Cents(amount),
            description: what.into(),
            iban: IBAN.into(),
            category: "9/0101101IM/".into(),
        }],
    };
    for provide in [false, true] {
        let s = pos::push_new(
            &w.ctx(),
            ENTE,
            "SPORTELLO_01",
            &[
                new(1_600, "Certificato anagrafico"),
                new(2_200, "Carta di identita"),
            ],
            provide,
        )
        .await
        .unwrap();
        assert_eq!(s.total, Cents(3_800));
        if provide {
            // Known, and held, before the gateway answers.
            assert!(s.notices.iter().all(|(n, _)| n.len() == 18), "{s:#?}");
        }
        let v = w
            .until(&s.id, "PAID with its card", |v| {
                v.state == PosSessionState::Paid && v.card.is_some()
            })
            .await;
        assert_eq!(v.receipts.len(), 2, "{v:#?}");
        for (nav, _) in &v.notices {
            assert_eq!(nav.len(), 18, "{v:#?}");
            assert!(w.paid(nav).await);
            let (stored, index) = w.store.find_by_notice_number(ENTE, nav).await.unwrap();
            let text = &stored.position.options[index].transfers[0].remittance_information;
            assert!(
                text.starts_with("/RFB/")
                    && text.contains(&format!("/CNR/{}/TXT/", app::gpd::DEBTOR)),
                "{text}"
            );
        }
    }
    let mut bad = new(100, "x");
    bad.transfers[0].iban = "IT00X0000".into();
    let e = pos::push_new(&w.ctx(), ENTE, "SPORTELLO_01", &[bad], false)
        .await
        .unwrap_err();
    assert_eq!(e.code, "POS_NEW_POSITION_INVALID");
    assert!(e.detail.contains("IBAN"), "{}", e.detail);
}
