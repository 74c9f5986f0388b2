//! The back office's people (issue 16): operators and their rights, sign-in
//! with a password and its lockout, sessions and their timeouts, and the
//! audit log. Each test runs on every backend.

use chrono::{DateTime, Duration, Utc};
use incasso_app::operators::{self, NewOperatorInput};
use incasso_app::{App, AppError, Caller, Clock, Kind, OperatorIdentity, Settings, audit};
use incasso_core::access::{Access, Area, Rights, Role};
use incasso_core::ente::Ente;
use incasso_store::Store;
use incasso_testkit::{backends, fresh_database_url};

const A: &str = "80000130585";
const B: &str = "97000000022";
const GOOD: &str = "Tributi-2026-Roma";

async fn app(url: &str, now: DateTime<Utc>) -> App {
    let store = Store::connect(url).await.unwrap();
    for fc in [A, B] {
        store
            .create_ente(
                &Ente {
                    fiscal_code: fc.into(),
                    name: format!("Ente {fc}"),
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
    }
    let mut app = App::new(store, Settings::new("http://incasso.test"));
    app.clock = Clock::Fixed(now);
    app
}

fn at(app: &App, now: DateTime<Utc>) -> App {
    let mut later = app.clone();
    later.clock = Clock::Fixed(now);
    later
}

fn rights(role: Role, ente: Option<&str>) -> Rights {
    Rights {
        role,
        ente: ente.map(str::to_string),
        grants: vec![],
        offices: vec![],
    }
}

fn input(username: &str, rights: Rights) -> NewOperatorInput {
    NewOperatorInput {
        username: username.into(),
        full_name: format!("Operatore {username}"),
        fiscal_code: None,
        email: None,
        rights,
        password: Some(GOOD.into()),
    }
}

fn as_operator(app: &App, o: OperatorIdentity) -> incasso_app::Ctx {
    app.ctx(Caller::Operator(Box::new(o)))
}

fn refused(r: Result<operators::Session, AppError>) -> AppError {
    let e = r.expect_err("sign-in must be refused");
    assert_eq!(e.kind, Kind::Unauthenticated);
    assert_eq!(e.code, "SIGN_IN_REFUSED");
    e
}

#[tokio::test]
async fn sign_in_never_tells_why_and_its_wait_grows_and_stops() {
    for backend in backends() {
        let now = Utc::now();
        let app = app(&fresh_database_url(backend).await, now).await;
        let system = app.ctx(Caller::System("test"));
        operators::create(
            &system,
            input("Mario.Rossi", rights(Role::EnteAdmin, Some(A))),
        )
        .await
        .unwrap();

        let ok = operators::sign_in(&app, "MARIO.ROSSI", GOOD).await.unwrap();
        assert_eq!(ok.operator.username, "mario.rossi");
        assert!(ok.must_change_password, "a first password is to be changed");
        assert_eq!(ok.token.len(), 64);
        assert_ne!(ok.token, ok.csrf);
        let (who, csrf, _) = operators::session(&app, &ok.token).await.unwrap();
        assert_eq!(who.rights.ente.as_deref(), Some(A));
        assert_eq!(csrf, ok.csrf);

        // Unknown name and wrong password: the same answer, word for word.
        let unknown = refused(operators::sign_in(&app, "nobody", GOOD).await);
        let wrong = refused(operators::sign_in(&app, "mario.rossi", "Sbagliata-2026!").await);
        assert_eq!(unknown.detail, wrong.detail);
        for _ in 0..4 {
            refused(operators::sign_in(&app, "mario.rossi", "Sbagliata-2026!").await);
        }
        // Five failures: even the right password waits, 30 seconds...
        let locked = refused(operators::sign_in(&app, "mario.rossi", GOOD).await);
        assert_eq!(locked.detail, unknown.detail, "no hint of the wait either");
        let later = at(&app, now + Duration::seconds(31));
        operators::sign_in(&later, "mario.rossi", GOOD)
            .await
            .unwrap();
        // ...and after many more failures never more than 15 minutes.
        for _ in 0..30 {
            let _ = operators::sign_in(&later, "mario.rossi", "Sbagliata-2026!").await;
        }
        let o = app
            .store
            .operator_by_username("mario.rossi")
            .await
            .unwrap()
            .unwrap();
        let until = o.locked_until.unwrap();
        assert!(
            until <= now + Duration::seconds(31) + Duration::minutes(15),
            "{until}"
        );
        let much_later = at(&app, now + Duration::minutes(17));
        operators::sign_in(&much_later, "mario.rossi", GOOD)
            .await
            .unwrap();

        // A disabled account: refused as any other failure, its sessions ended.
        let session = operators::sign_in(&much_later, "mario.rossi", GOOD)
            .await
            .unwrap();
        let o = app
            .store
            .operator_by_username("mario.rossi")
            .await
            .unwrap()
            .unwrap();
        operators::set_disabled(&system, o.id, true).await.unwrap();
        refused(operators::sign_in(&much_later, "mario.rossi", GOOD).await);
        let ended = operators::session(&much_later, &session.token)
            .await
            .unwrap_err();
        assert_eq!(ended.code, "SESSION_EXPIRED", "{backend:?}");
        operators::set_disabled(&system, o.id, false).await.unwrap();
        operators::sign_in(&much_later, "mario.rossi", GOOD)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn sessions_end_when_idle_or_too_old_and_at_sign_out() {
    for backend in backends() {
        let now = Utc::now();
        let app = app(&fresh_database_url(backend).await, now).await;
        let system = app.ctx(Caller::System("test"));
        operators::create(&system, input("anna", rights(Role::Accountant, Some(A))))
            .await
            .unwrap();
        let s = operators::sign_in(&app, "anna", GOOD).await.unwrap();
        // Used every 20 minutes, it lives; 31 minutes idle, it ends.
        let mut t = now;
        for _ in 0..5 {
            t += Duration::minutes(20);
            operators::session(&at(&app, t), &s.token).await.unwrap();
        }
        let idle = operators::session(&at(&app, t + Duration::minutes(31)), &s.token).await;
        assert_eq!(idle.unwrap_err().code, "SESSION_EXPIRED");
        // However busy, twelve hours after sign-in it ends.
        let s = operators::sign_in(&app, "anna", GOOD).await.unwrap();
        let mut t = now;
        while t < now + Duration::hours(12) {
            t += Duration::minutes(25);
            let r = operators::session(&at(&app, t), &s.token).await;
            assert_eq!(
                r.is_ok(),
                t - now <= Duration::hours(12),
                "{backend:?} at {}",
                t - now
            );
        }
        // The cleaning job removes what is idle; a fresh session stays.
        let idle = operators::sign_in(&app, "anna", GOOD).await.unwrap();
        let fresh = operators::sign_in(&at(&app, now + Duration::minutes(40)), "anna", GOOD)
            .await
            .unwrap();
        let removed = app
            .store
            .close_expired_sessions(now + Duration::minutes(10), now - Duration::hours(12))
            .await
            .unwrap();
        assert!(removed >= 1, "{backend:?}");
        let later = at(&app, now + Duration::minutes(41));
        assert!(operators::session(&app, &idle.token).await.is_err());
        operators::session(&later, &fresh.token).await.unwrap();
        let s = operators::sign_in(&app, "anna", GOOD).await.unwrap();
        operators::sign_out(&app, &s.token).await.unwrap();
        assert!(operators::session(&app, &s.token).await.is_err());
        assert!(operators::session(&app, "not a token").await.is_err());
    }
}

#[tokio::test]
async fn only_administrators_manage_accounts_and_only_their_entes() {
    for backend in backends() {
        let now = Utc::now();
        let app = app(&fresh_database_url(backend).await, now).await;
        let system = app.ctx(Caller::System("test"));
        for (name, role, ente) in [
            ("capo.a", Role::EnteAdmin, Some(A)),
            ("capo.b", Role::EnteAdmin, Some(B)),
            ("inter", Role::IntermediaryAdmin, None),
            ("conti.a", Role::Accountant, Some(A)),
        ] {
            operators::create(&system, input(name, rights(role, ente)))
                .await
                .unwrap();
        }
        let signed = |name: &'static str| {
            let app = app.clone();
            async move { operators::sign_in(&app, name, GOOD).await.unwrap().operator }
        };
        let admin_a = as_operator(&app, signed("capo.a").await);
        let accountant_a = as_operator(&app, signed("conti.a").await);
        let inter = as_operator(&app, signed("inter").await);

        // An Ente's administrator adds people to their own Ente only.
        operators::create(
            &admin_a,
            input("nuovo.a", rights(Role::CounterClerk, Some(A))),
        )
        .await
        .unwrap();
        for (who, rights_of_new) in [
            (&admin_a, rights(Role::Accountant, Some(B))),
            (&admin_a, rights(Role::IntermediaryAdmin, None)),
            (&accountant_a, rights(Role::Accountant, Some(A))),
        ] {
            let e = operators::create(who, input("intruso", rights_of_new))
                .await
                .unwrap_err();
            assert_eq!(e.kind, Kind::Forbidden, "{backend:?}: {e:?}");
        }
        assert!(
            app.store
                .operator_by_username("intruso")
                .await
                .unwrap()
                .is_none()
        );
        // Nor resets another Ente's password, nor disables its people.
        let b = app
            .store
            .operator_by_username("capo.b")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            operators::reset_password(&admin_a, b.id, "Nuova-Password-2026")
                .await
                .unwrap_err()
                .kind,
            Kind::Forbidden
        );
        assert_eq!(
            operators::set_disabled(&admin_a, b.id, true)
                .await
                .unwrap_err()
                .kind,
            Kind::Forbidden
        );
        // The intermediary's administrator may.
        operators::reset_password(&inter, b.id, "Nuova-Password-2026")
            .await
            .unwrap();
        let s = operators::sign_in(&app, "capo.b", "Nuova-Password-2026")
            .await
            .unwrap();
        assert!(s.must_change_password);

        // Bad input says what and where, and writes nothing.
        for (bad, code) in [
            (
                NewOperatorInput {
                    password: Some("corta".into()),
                    ..input("debole", rights(Role::Accountant, Some(A)))
                },
                "WEAK_PASSWORD",
            ),
            (
                input("spazi nel nome", rights(Role::Accountant, Some(A))),
                "BAD_USERNAME",
            ),
            (
                input(
                    "aree",
                    Rights {
                        grants: vec![(Area::Users, Access::Write)],
                        ..rights(Role::Accountant, Some(A))
                    },
                ),
                "BAD_RIGHTS",
            ),
            (
                NewOperatorInput {
                    fiscal_code: Some("RSSMRA85T10A562X".into()),
                    ..input("cf", rights(Role::Accountant, Some(A)))
                },
                "BAD_FISCAL_CODE",
            ),
        ] {
            let e = operators::create(&admin_a, bad).await.unwrap_err();
            assert_eq!(e.code, code, "{e:?}");
        }
        let e = operators::create(
            &admin_a,
            input("nuovo.a", rights(Role::Accountant, Some(A))),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind, Kind::Conflict);

        // Changing one's own password needs the current one.
        let me = as_operator(&app, signed("nuovo.a").await);
        let e = operators::change_password(&me, "Sbagliata-2026!", "Altra-Password-2026")
            .await
            .unwrap_err();
        assert_eq!(e.code, "WRONG_PASSWORD");
        operators::change_password(&me, GOOD, "Altra-Password-2026")
            .await
            .unwrap();
        let s = operators::sign_in(&app, "nuovo.a", "Altra-Password-2026")
            .await
            .unwrap();
        assert!(!s.must_change_password);

        // Every write is in the Ente's log, searchable; another Ente's
        // administrator cannot read it, its accountant can.
        let log = audit::search(&admin_a, Some(A), None, None, Some(1000))
            .await
            .unwrap();
        let actions: Vec<(&str, &str, &str)> = log
            .items
            .iter()
            .map(|(_, e)| (e.action.as_str(), e.object.as_str(), e.outcome.as_str()))
            .collect();
        assert!(
            actions.contains(&("operator.create", "nuovo.a", "OK")),
            "{actions:?}"
        );
        assert!(actions.contains(&("operator.change_password", "nuovo.a", "WRONG_PASSWORD")));
        assert!(actions.contains(&("operator.change_password", "nuovo.a", "OK")));
        assert!(actions.contains(&("operator.sign_in", "conti.a", "OK")));
        assert!(
            !actions.iter().any(|(_, o, _)| *o == "capo.b"),
            "{actions:?}"
        );
        let found = audit::search(&accountant_a, Some(A), Some("change_password"), None, None)
            .await
            .unwrap();
        assert_eq!(found.items.len(), 2, "{backend:?}");
        let admin_b = as_operator(
            &app,
            operators::sign_in(&app, "capo.b", "Nuova-Password-2026")
                .await
                .unwrap()
                .operator,
        );
        assert_eq!(
            audit::search(&admin_b, Some(A), None, None, None)
                .await
                .unwrap_err()
                .kind,
            Kind::Forbidden
        );
        let e = audit::search(&admin_a, None, None, None, None)
            .await
            .unwrap_err();
        assert_eq!(e.kind, Kind::Forbidden);
    }
}

/// Writes by programs are in the log too, with their outcome, refusals
/// included; reads are not.
#[tokio::test]
async fn every_write_is_in_the_audit_log_with_its_outcome() {
    use incasso_core::Cents;
    use incasso_core::sample::{self, PositionSpec};
    for backend in backends() {
        let now = Utc::now();
        let app = app(&fresh_database_url(backend).await, now).await;
        app.store
            .add_station(
                A,
                &incasso_core::ente::StationLink {
                    broker_id: "15376371009".into(),
                    station_id: "15376371009_01".into(),
                    segregation_code: 1,
                },
                now,
            )
            .await
            .unwrap();
        let program = app.ctx(Caller::System("gestionale"));
        let position = sample::position(&PositionSpec {
            ente: A,
            company_name: "Ente",
            iupd: "AUDIT-1".into(),
            debtor_index: 1,
            amount: Cents(5_000),
            description: "TARI".into(),
            category: "9/0101101IM/",
            iban: "IT65B0200805364000104567891",
            due_date: now + Duration::days(30),
            installments: 0,
            second_beneficiary: None,
            quotas: vec![],
        });
        incasso_app::positions::create(&program, A, position.clone(), true)
            .await
            .unwrap();
        let again = incasso_app::positions::create(&program, A, position, true).await;
        assert_eq!(again.unwrap_err().kind, Kind::Conflict);
        incasso_app::positions::get(&program, A, "AUDIT-1")
            .await
            .unwrap();
        incasso_app::positions::invalidate(&program, A, "AUDIT-1")
            .await
            .unwrap();
        let log = audit::search(&program, Some(A), None, None, None)
            .await
            .unwrap();
        let seen: Vec<(String, String, String, String)> = log
            .items
            .iter()
            .map(|(_, e)| {
                (
                    e.actor.clone(),
                    e.action.clone(),
                    e.object.clone(),
                    e.outcome.clone(),
                )
            })
            .collect();
        let expect = |action: &str, outcome: &str| {
            (
                "system:gestionale".to_string(),
                action.to_string(),
                "AUDIT-1".to_string(),
                outcome.to_string(),
            )
        };
        // Newest first: the invalidation, the refused duplicate, the creation.
        assert_eq!(
            seen,
            vec![
                expect("position.invalidate", "OK"),
                expect("position.create", "CONFLICT"),
                expect("position.create", "OK"),
            ],
            "{backend:?}"
        );
    }
}
