//! Notifications' triggers and channels on every backend (issue 19):
//! invitations for positions loaded through supplies (per service, and per
//! row through a layout's `notify.invite` column), the withdrawal of a
//! deleted position, App IO's time to live (sent, and stale messages not
//! sent late), the Ente's e-mail templates with the notice or receipt PDF
//! attached, and no second e-mail of a receipt the portal already sent.
//! Messages are read back from the simulator's App IO and SMTP server.

use chrono::{DateTime, Duration, Utc};
use incasso_app::notify::{self, SettingsInput, channels};
use incasso_app::supply;
use incasso_app::{App, Caller, Clock, Settings};
use incasso_core::Cents;
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::catalogue::Service;
use incasso_core::ente::{Ente, StationLink};
use incasso_core::sample::{self, PositionSpec};
use incasso_notify::email::EmailTemplate;
use incasso_simulator::Simulator;
use incasso_simulator::io::{IoCitizen, IoService, IoSettings};
use incasso_store::{Placement, ReceiptRecord, Store};
use incasso_testkit::{backends, fresh_database_url};

const ENTE: &str = "80000130585";
const IBAN: &str = "IT65B0200805364000104567891";
const KEY_TARI: &str = "io-key-tari-0000000001";
const KEY_MENSA: &str = "io-key-mensa-000000002";

async fn store(url: &str) -> Store {
    let store = Store::connect(url).await.unwrap();
    let now = Utc::now();
    store
        .create_ente(
            &Ente {
                fiscal_code: ENTE.into(),
                name: "Comune di Borgo Esempio".into(),
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
    store
        .put_accertamento(
            ENTE,
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
    // Each its own taxonomy: a supply's position belongs to the service
    // its transfers' category names.
    for (code, name, taxonomy) in [
        ("TARI", "Tassa rifiuti", "9/0101101IM/"),
        ("MENSA", "Mensa scolastica", "9/0201102IM/"),
        ("LIBERO", "Servizio senza messaggi", "9/0301109AP/"),
    ] {
        store
            .put_service(
                ENTE,
                &Service {
                    code: code.into(),
                    name: name.into(),
                    office_code: None,
                    taxonomy_code: taxonomy.into(),
                    default_accertamento: None,
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
    store
}

/// The simulator's App IO (TARI's and MENSA's keys; `on_io` citizens on
/// IO) and SMTP server, on loopback ports; answers the app.
async fn world(store: &Store, now: DateTime<Utc>, on_io: &[u64]) -> (Simulator, App) {
    let sim = Simulator::new(Default::default());
    sim.io().configure(IoSettings {
        services: [(KEY_TARI, "Tassa rifiuti"), (KEY_MENSA, "Mensa scolastica")]
            .into_iter()
            .map(|(k, n)| IoService {
                api_key: k.into(),
                organization_fiscal_code: ENTE.into(),
                name: n.into(),
                rate_per_second: None,
            })
            .collect(),
        citizens: on_io
            .iter()
            .map(|i| {
                (
                    sample::personal_fiscal_code(*i),
                    IoCitizen {
                        sender_allowed: true,
                        preferred_languages: vec!["it_IT".into()],
                    },
                )
            })
            .collect(),
        rate_per_second: 0,
        ..IoSettings::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let io_url = format!("http://{}/io/api/v1", listener.local_addr().unwrap());
    tokio::spawn(sim.clone().serve(listener, std::future::pending()));
    let smtp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smtp_url = format!("smtp://{}", smtp.local_addr().unwrap());
    tokio::spawn(sim.clone().serve_smtp(smtp));
    let mut settings = Settings::new("http://127.0.0.1:1");
    settings.io_url = Some(io_url);
    settings.smtp_url = Some(smtp_url);
    let mut app = App::new(store.clone(), settings);
    app.clock = Clock::Fixed(now);
    (sim, app)
}

async fn enable(app: &App, service: &str, key: &str, invite: bool) {
    let ctx = app.ctx(Caller::System("test"));
    notify::save_settings(
        &ctx,
        ENTE,
        service,
        &SettingsInput {
            io_api_key: Some(key.into()),
            enabled: true,
            invite_on_publish: invite,
            reminder_days: None,
            german: false,
        },
    )
    .await
    .unwrap();
}

async fn drain(app: &App, at: DateTime<Utc>) -> notify::Round {
    let mut all = notify::Round::default();
    for _ in 0..20 {
        notify::fan_out(app).await.unwrap();
        let r = notify::send_due(app, at).await.unwrap();
        if r.total() == 0 {
            return all;
        }
        all.sent += r.sent;
        all.emailed += r.emailed;
        all.skipped += r.skipped;
        all.retried += r.retried;
        all.failed += r.failed;
    }
    panic!("the outbox did not drain");
}

/// A published position of `service` for sample debtor `debtor`; answers
/// its notice's (notice number, IUV, amount).
async fn position(
    store: &Store,
    service: &str,
    iupd: &str,
    debtor: u64,
    now: DateTime<Utc>,
) -> (String, String, i64) {
    let p = sample::position(&PositionSpec {
        ente: ENTE,
        company_name: "Comune di Borgo Esempio",
        iupd: iupd.into(),
        debtor_index: debtor,
        amount: Cents(12_345),
        description: "TARI 2026".into(),
        category: "9/0101101IM/",
        iban: IBAN,
        due_date: now + Duration::days(30),
        installments: 0,
        second_beneficiary: None,
        quotas: vec![(
            AccertamentoRef {
                year: 2026,
                code: "ACC-1".into(),
            },
            100,
        )],
    });
    let stored = store
        .create_position_placed(
            ENTE,
            p,
            Some(Placement {
                service: Some(service.into()),
                office: None,
            }),
            now,
            true,
        )
        .await
        .unwrap();
    let o = &stored.position.options[0];
    (
        o.notice_number.as_ref().unwrap().as_str().to_string(),
        o.iuv.clone().unwrap(),
        o.amount.0,
    )
}

async fn pay(store: &Store, receipt_id: &str, (nav, iuv, amount): &(String, String, i64)) {
    store
        .record_receipt(
            &ReceiptRecord {
                ente: ENTE.into(),
                receipt_id: receipt_id.into(),
                notice_number: nav.clone(),
                iuv: iuv.clone(),
                owner_ente: ENTE.into(),
                outcome: "OK".into(),
                amount: *amount,
                fee: None,
                psp_id: "PSPEITMM000".into(),
                psp_name: "PSP di prova".into(),
                channel_id: "PSPEITMM000_01".into(),
                payment_method: None,
                payment_date_time: Some(Utc::now()),
                application_date: None,
                transfer_date: None,
                station_id: "15376371009_01".into(),
                primitive: "paSendRTV2".into(),
                stand_in: false,
                transfers_json: "[]".into(),
                raw_xml: "<receipt/>".into(),
                debtor: None,
            },
            Utc::now(),
        )
        .await
        .unwrap();
}

async fn load(store: &Store, csv: String) -> supply::LoadReport {
    let layout = incasso_bus::builtin::get("incasso-csv").unwrap().unwrap();
    let bytes = csv.into_bytes();
    let open = move || -> std::io::Result<Box<dyn std::io::Read + Send>> {
        Ok(Box::new(std::io::Cursor::new(bytes.clone())))
    };
    let file = supply::SupplyFile {
        ente: ENTE,
        layout: &layout,
        default_service: None,
        file_name: "test.csv",
        open: &open,
    };
    supply::load(store, &file, supply::Sinks::none())
        .await
        .unwrap()
}

const HEADER: &str = "codice;servizio;codice_fiscale;nominativo;rata;importo;causale;scadenza;iuv;accertamento;operazione;avviso_io;email\n";

fn row(key: &str, service: &str, debtor: u64, op: &str, invite: &str) -> String {
    format!(
        "{key};{service};{};Contribuente {debtor};0;50,00;{service} 2027;31/03/2027;;2026/ACC-1;{op};{invite};c{debtor}@example.org\n",
        sample::personal_fiscal_code(debtor)
    )
}

async fn published(store: &Store, iupd: &str) -> Vec<incasso_store::events::PositionEvent> {
    store
        .position_events(ENTE, iupd)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "PUBLISHED")
        .collect()
}

/// A supply's positions are invited as the single-position path's are
/// (TARI invites, MENSA does not, LIBERO tells nobody), unless the row's
/// `avviso_io` says otherwise; a replacement of a published position is
/// no new invitation unless asked; the invitations reach IO with their
/// payment data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supplies_invite_per_service_and_per_row() {
    for backend in backends() {
        let store = store(&fresh_database_url(backend).await).await;
        let now = Utc::now();
        let (sim, app) = world(&store, now, &[31, 32, 33, 34, 35]).await;
        enable(&app, "TARI", KEY_TARI, true).await;
        enable(&app, "MENSA", KEY_MENSA, false).await;

        let csv = [
            HEADER.to_string(),
            row("S1", "TARI", 31, "", ""),
            row("S2", "TARI", 32, "", "N"),
            row("S3", "MENSA", 33, "", ""),
            row("S4", "MENSA", 34, "", "S"),
            row("S5", "LIBERO", 35, "", "S"),
        ]
        .concat();
        let report = load(&store, csv).await;
        assert_eq!(report.status, "LOADED", "{backend:?}: {:?}", report.errors);
        let mut invited = Vec::new();
        for i in 1..=5 {
            match published(&store, &format!("S{i}")).await.len() {
                0 => {}
                1 => invited.push(i),
                n => panic!("S{i}: {n} invitations"),
            }
        }
        assert_eq!(invited, [1, 4], "{backend:?}");
        let s1 = store.get_position(ENTE, "S1").await.unwrap();
        let e = &published(&store, "S1").await[0];
        assert_eq!(e.position_id, s1.id);
        assert_eq!(
            e.notice_number.as_deref(),
            s1.position.options[0]
                .notice_number
                .as_ref()
                .map(|n| n.as_str())
        );
        assert_eq!(e.payload["serviceCode"], "TARI");
        assert_eq!(e.payload["amountCents"], 5000);
        assert_eq!(
            e.payload["noticeNumbers"][0].as_str(),
            e.notice_number.as_deref()
        );

        // The invitations go out (the worker runs every half second).
        let round = drain(&app, now).await;
        assert_eq!(round.sent, 2, "{backend:?}: {round:?}");

        // Updates: S1 replaced (published already: no new invitation), S2
        // replaced and now asked for.
        let csv = [
            HEADER.to_string(),
            row("S1", "TARI", 31, "M", ""),
            row("S2", "TARI", 32, "M", "S"),
        ]
        .concat();
        let report = load(&store, csv).await;
        assert_eq!(report.status, "LOADED", "{backend:?}: {:?}", report.errors);
        assert_eq!(published(&store, "S1").await.len(), 1, "{backend:?}");
        assert_eq!(published(&store, "S2").await.len(), 1, "{backend:?}");

        // A value that is neither yes nor no is the row's error.
        let report = load(
            &store,
            [HEADER.to_string(), row("S6", "TARI", 31, "", "forse")].concat(),
        )
        .await;
        assert!(
            report
                .errors
                .iter()
                .any(|e| e.field == "notify.invite" && e.code == "BAD_FORMAT"),
            "{backend:?}: {:?}",
            report.errors
        );

        let round = drain(&app, now).await;
        assert_eq!(round.sent, 1, "{backend:?}: {round:?}");
        let got = sim.io().messages(None);
        let mut to: Vec<String> = got.iter().map(|m| m.fiscal_code.clone()).collect();
        to.sort();
        let mut want: Vec<String> = [31, 32, 34]
            .iter()
            .map(|i| sample::personal_fiscal_code(*i))
            .collect();
        want.sort();
        assert_eq!(to, want, "{backend:?}");
        let s2 = store.get_position(ENTE, "S2").await.unwrap();
        let m = got
            .iter()
            .find(|m| m.fiscal_code == sample::personal_fiscal_code(32))
            .unwrap();
        assert_eq!(
            m.content["payment_data"]["notice_number"].as_str(),
            s2.position.options[0]
                .notice_number
                .as_ref()
                .map(|n| n.as_str())
        );
        assert_eq!(m.content["payment_data"]["amount"], 5000);
        store.close().await;
    }
}

/// A deleted position's withdrawal reaches IO (its debtor and notice kept
/// by the deletion), while the CANCELLED event webhooks read is unchanged;
/// of a position deleted before its invitation went out, only the
/// withdrawal is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_positions_withdrawal_is_sent() {
    for backend in backends() {
        let store = store(&fresh_database_url(backend).await).await;
        let now = Utc::now();
        let (sim, app) = world(&store, now, &[41, 42]).await;
        enable(&app, "TARI", KEY_TARI, true).await;
        let ctx = app.ctx(Caller::System("test"));

        let (nav, _, amount) = position(&store, "TARI", "D1", 41, now).await;
        drain(&app, now).await;
        assert_eq!(sim.io().messages(None).len(), 1);
        store.delete_position(ENTE, "D1").await.unwrap();
        let round = drain(&app, now).await;
        assert_eq!(round.sent, 1, "{backend:?}: {round:?}");
        let got = sim.io().messages(None);
        assert_eq!(got.len(), 2);
        let w = &got[1];
        assert_eq!(w.fiscal_code, sample::personal_fiscal_code(41));
        assert!(w.content["payment_data"].is_null());
        let text = w.content["markdown"].as_str().unwrap();
        assert!(
            text.contains(&nav) || text.contains(&incasso_notify::template::format_amount(amount)),
            "{text}"
        );
        let msgs = notify::position_messages(&ctx, ENTE, "D1").await.unwrap();
        let kinds: Vec<(&str, &str)> = msgs
            .iter()
            .map(|m| (m.kind.as_str(), m.status.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [("INVITATION", "SENT"), ("WITHDRAWAL", "SENT")],
            "{backend:?}"
        );
        // Webhooks' view of the event: as before, no debtor in it.
        let cancelled = store
            .position_events(ENTE, "D1")
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.kind == "CANCELLED")
            .unwrap();
        let mut keys: Vec<&String> = cancelled.payload.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "amountCents",
                "iuvs",
                "noticeNumbers",
                "positionStatus",
                "reason"
            ]
        );
        assert_eq!(cancelled.payload["reason"], "DELETED");

        // Published and deleted before anything was sent: the invitation
        // finds no position (not handed on), the withdrawal is sent.
        position(&store, "TARI", "D2", 42, now).await;
        store.delete_position(ENTE, "D2").await.unwrap();
        drain(&app, now).await;
        let msgs = notify::position_messages(&ctx, ENTE, "D2").await.unwrap();
        let kinds: Vec<(&str, &str)> = msgs
            .iter()
            .map(|m| (m.kind.as_str(), m.status.as_str()))
            .collect();
        assert_eq!(kinds, [("WITHDRAWAL", "SENT")], "{backend:?}");
        let got = sim.io().messages(None);
        assert_eq!(got.len(), 3);
        assert!(got[2].content["payment_data"].is_null());
        store.close().await;
    }
}

/// A service's time to live goes with its messages; a message not sent
/// within it (or within a week when unset) is recorded as expired and
/// never sent late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_to_live_is_sent_and_stale_messages_expire() {
    for backend in backends() {
        let store = store(&fresh_database_url(backend).await).await;
        let now = Utc::now();
        let (sim, app) = world(&store, now, &[51, 52, 53]).await;
        enable(&app, "TARI", KEY_TARI, true).await;
        enable(&app, "MENSA", KEY_MENSA, true).await;
        let ctx = app.ctx(Caller::System("test"));
        let bad = channels::save_time_to_live(&ctx, ENTE, "TARI", Some(60))
            .await
            .unwrap_err();
        assert_eq!(bad.code, "BAD_TIME_TO_LIVE");
        channels::save_time_to_live(&ctx, ENTE, "TARI", Some(7200))
            .await
            .unwrap();
        let shown = notify::settings(&ctx, ENTE, "TARI").await.unwrap().unwrap();
        assert_eq!(shown.service_code, "TARI");

        position(&store, "TARI", "T1", 51, now).await;
        position(&store, "MENSA", "M1", 52, now).await;
        drain(&app, now).await;
        let got = sim.io().messages(None);
        assert_eq!(got.len(), 2, "{backend:?}");
        let ttl_of = |cf: u64| {
            got.iter()
                .find(|m| m.fiscal_code == sample::personal_fiscal_code(cf))
                .unwrap()
                .time_to_live
        };
        assert_eq!(ttl_of(51), 7200, "{backend:?}: sent with the message");
        assert_eq!(ttl_of(52), 3600, "{backend:?}: IO's default when unset");

        // Not sent for three hours: past TARI's two, still within MENSA's
        // week; past a week, MENSA's expires too.
        position(&store, "TARI", "T2", 53, now).await;
        position(&store, "MENSA", "M2", 53, now).await;
        position(&store, "MENSA", "M3", 53, now).await;
        notify::fan_out(&app).await.unwrap();
        let later = now + Duration::hours(3);
        let t2 = {
            let round = notify::send_due(&app, later).await.unwrap();
            assert_eq!(
                (round.sent, round.skipped),
                (2, 1),
                "{backend:?}: {round:?}"
            );
            notify::position_messages(&ctx, ENTE, "T2").await.unwrap()
        };
        assert_eq!(t2[0].status, "SKIPPED");
        assert!(
            t2[0].reason.as_deref().unwrap().starts_with("EXPIRED"),
            "{:?}",
            t2[0].reason
        );
        assert_eq!(sim.io().messages(None).len(), 4, "{backend:?}");
        // A week and a day late: MENSA's unset time to live is a week.
        position(&store, "MENSA", "M4", 53, now).await;
        notify::fan_out(&app).await.unwrap();
        let round = notify::send_due(&app, now + Duration::days(8))
            .await
            .unwrap();
        assert_eq!(round.skipped, 1, "{backend:?}: {round:?}");
        let m4 = notify::position_messages(&ctx, ENTE, "M4").await.unwrap();
        assert!(m4[0].reason.as_deref().unwrap().starts_with("EXPIRED"));
        assert_eq!(sim.io().messages(None).len(), 4, "{backend:?}");
        store.close().await;
    }
}

/// The Ente's e-mail texts: refused when bad, listed with incasso's
/// defaults, used for the e-mail fallback (notice attached to the
/// invitation, receipt to the paid message) and for the portal's receipt;
/// a payment whose receipt the portal already mailed to the same address
/// gets no second e-mail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_templates_and_no_double_email() {
    for backend in backends() {
        let store = store(&fresh_database_url(backend).await).await;
        let now = Utc::now();
        // Nobody on IO: everything by e-mail.
        let (sim, app) = world(&store, now, &[]).await;
        enable(&app, "TARI", KEY_TARI, true).await;
        let ctx = app.ctx(Caller::System("test"));

        let bad = channels::save_email_template(
            &ctx,
            ENTE,
            "INVITATION",
            &EmailTemplate {
                subject: "Il tuo avviso {{notice_number}}".into(),
                body: "Gentile {{codice_segreto}}, ecco il tuo avviso.".into(),
            },
        )
        .await
        .unwrap_err();
        assert_eq!(bad.code, "BAD_EMAIL_TEMPLATE");
        assert!(
            bad.detail.contains("body") && bad.detail.contains("codice_segreto"),
            "{}",
            bad.detail
        );
        channels::save_email_template(
            &ctx,
            ENTE,
            "INVITATION",
            &EmailTemplate {
                subject: "Il tuo avviso {{notice_number}}".into(),
                body:
                    "Gentile {{debtor_name}}, {{ente}} ti chiede {{amount}} entro il {{due_date}}."
                        .into(),
            },
        )
        .await
        .unwrap();
        channels::save_email_template(
            &ctx,
            ENTE,
            "receipt",
            &EmailTemplate {
                subject: "Pagato: {{notice_number}}".into(),
                body: "Grazie, {{ente}} ha ricevuto {{amount}} tramite {{psp}}.".into(),
            },
        )
        .await
        .unwrap();
        let all = channels::email_templates(&ctx, ENTE).await.unwrap();
        let own: Vec<(&str, bool)> = all.iter().map(|t| (t.kind.as_str(), t.own)).collect();
        assert_eq!(
            own,
            [
                ("INVITATION", true),
                ("REMINDER", false),
                ("WITHDRAWAL", false),
                ("PAID", false),
                ("RECEIPT", true)
            ]
        );

        // The invitation by e-mail: the Ente's text, the notice attached.
        let a = position(&store, "TARI", "E1", 61, now).await;
        let round = drain(&app, now).await;
        assert_eq!(round.emailed, 1, "{backend:?}: {round:?}");
        incasso_app::mail::send_due(&app, now).await.unwrap();
        let got = sim.mail();
        assert_eq!(got.len(), 1, "{backend:?}");
        assert_eq!(got[0].subject, format!("Il tuo avviso {}", a.0));
        assert!(got[0].text.contains("123,45"), "{}", got[0].text);
        assert_eq!(got[0].attachments.len(), 1);
        assert!(got[0].attachments[0].filename.starts_with("avviso-"));
        assert!(got[0].attachments[0].bytes().starts_with(b"%PDF"));

        // Paid, and the portal mails its receipt to the same address: the
        // paid message's e-mail is not sent a second time.
        pay(&store, "R1", &a).await;
        incasso_app::mail::after_receipt(
            &app,
            ENTE,
            "R1",
            &a.0,
            Some("contribuente61@example.org"),
        )
        .await;
        drain(&app, now).await;
        let msgs = notify::position_messages(&ctx, ENTE, "E1").await.unwrap();
        let paid: Vec<_> = msgs.iter().filter(|m| m.kind == "PAID").collect();
        assert_eq!(paid.len(), 1, "{backend:?}: no EMAIL row: {msgs:?}");
        assert_eq!(paid[0].status, "SKIPPED");
        assert!(
            paid[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("RECEIPT_ALREADY_MAILED"),
            "{:?}",
            paid[0].reason
        );
        incasso_app::mail::send_due(&app, now).await.unwrap();
        let got = sim.mail();
        assert_eq!(got.len(), 2, "{backend:?}: the portal's receipt only");
        assert_eq!(got[1].subject, format!("Pagato: {}", a.0));
        assert!(got[1].text.contains("PSP di prova"), "{}", got[1].text);
        assert!(got[1].attachments[0].filename.starts_with("ricevuta-"));

        // Paid without the portal's e-mail: the paid message goes by
        // e-mail (incasso's text) with the receipt attached.
        let b = position(&store, "TARI", "E2", 62, now).await;
        drain(&app, now).await;
        pay(&store, "R2", &b).await;
        drain(&app, now).await;
        incasso_app::mail::send_due(&app, now).await.unwrap();
        let got = sim.mail();
        let last = got.last().unwrap();
        assert_eq!(last.to, ["contribuente62@example.org"]);
        assert!(
            last.subject.starts_with("Pagamento ricevuto"),
            "{}",
            last.subject
        );
        assert_eq!(last.attachments.len(), 1);
        assert!(last.attachments[0].filename.starts_with("ricevuta-"));
        assert!(last.attachments[0].bytes().starts_with(b"%PDF"));

        // Back to incasso's text.
        channels::reset_email_template(&ctx, ENTE, "INVITATION")
            .await
            .unwrap();
        let t = channels::email_template(&ctx, ENTE, "INVITATION")
            .await
            .unwrap();
        assert!(!t.own);
        store.close().await;
    }
}
