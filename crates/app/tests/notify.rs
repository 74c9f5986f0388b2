//! The notification outbox on every backend: invitations on publication,
//! reminders from the job (once, however often it runs), withdrawals and
//! paid messages reaching an App IO services API on a loopback port with
//! their payment data; e-mail through the simulator's SMTP server for a
//! citizen not on IO; 429 and 503 delaying without dropping, a 400 parked
//! with its reason; templates refused when saved.
//!
//! The first test's IO is the simulator's (messages read back from it);
//! the failures' is a small server of the test's own speaking the two
//! calls incasso makes (`POST /profiles`, `POST /messages`), so that each
//! answer (429, 503, 400) can be scripted per service key and the other
//! services shown not to wait.

use chrono::{DateTime, Duration, Utc};
use incasso_app::notify::{self, SettingsInput};
use incasso_app::{App, Caller, Clock, Settings};
use incasso_core::Cents;
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::catalogue::Service;
use incasso_core::ente::{Ente, StationLink};
use incasso_core::sample::{self, PositionSpec};
use incasso_notify::template::{Template, TemplateKind};
use incasso_simulator::io::{IoCitizen, IoMessage, IoService, IoSettings};
use incasso_store::Placement;
use incasso_store::{ReceiptRecord, Store};
use incasso_testkit::{backends, fresh_database_url};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ENTE: &str = "80000130585";
const IBAN: &str = "IT65B0200805364000104567891";
const KEY_TARI: &str = "io-key-tari-0000000001";
const KEY_MENSA: &str = "io-key-mensa-000000002";
const KEY_BAD: &str = "io-key-bad-00000000003";

/// App IO's services API, as far as incasso uses it: citizens on IO,
/// opted out or unknown, and per service key a queue of scripted answers
/// to `POST /messages` (then 201).
#[derive(Clone, Default)]
struct FakeIo {
    on_io: Arc<Mutex<HashMap<String, bool>>>,
    answers: Arc<Mutex<HashMap<String, VecDeque<u16>>>>,
    taken: Arc<Mutex<u64>>,
    /// Every `POST /messages`, answered or not: (key, status).
    calls: Arc<Mutex<Vec<(String, u16)>>>,
}

impl FakeIo {
    async fn start() -> (FakeIo, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/io/api/v1", listener.local_addr().unwrap());
        let io = FakeIo::default();
        let me = io.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let me = me.clone();
                tokio::spawn(async move {
                    loop {
                        let Some((path, headers, body)) = read_request(&mut sock).await else {
                            return;
                        };
                        let (status, extra, reply) = me.answer(&path, &headers, &body);
                        let text = reply.to_string();
                        let head = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n",
                            text.len()
                        );
                        if sock.write_all(head.as_bytes()).await.is_err()
                            || sock.write_all(text.as_bytes()).await.is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        (io, url)
    }

    fn answer(
        &self,
        path: &str,
        headers: &HashMap<String, String>,
        body: &[u8],
    ) -> (u16, String, Value) {
        let key = headers
            .get("ocp-apim-subscription-key")
            .cloned()
            .unwrap_or_default();
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let cf = body["fiscal_code"].as_str().unwrap_or_default().to_string();
        if path.ends_with("/profiles") {
            return match self.on_io.lock().unwrap().get(&cf) {
                Some(allowed) => (
                    200,
                    String::new(),
                    json!({"sender_allowed": allowed, "preferred_languages": ["it_IT"]}),
                ),
                None => (404, String::new(), json!({"title": "Not found"})),
            };
        }
        let status = self
            .answers
            .lock()
            .unwrap()
            .get_mut(&key)
            .and_then(|q| q.pop_front())
            .unwrap_or(201);
        self.calls.lock().unwrap().push((key.clone(), status));
        match status {
            201 => {
                let mut taken = self.taken.lock().unwrap();
                *taken += 1;
                (201, String::new(), json!({"id": format!("MSG{taken}")}))
            }
            429 => (
                429,
                "Retry-After: 30\r\n".into(),
                json!({"title": "Too many requests"}),
            ),
            s => (
                s,
                String::new(),
                json!({"title": "refused", "detail": format!("scripted {s}")}),
            ),
        }
    }

    fn citizen(&self, fiscal_code: &str, allowed: bool) {
        self.on_io
            .lock()
            .unwrap()
            .insert(fiscal_code.into(), allowed);
    }

    fn script(&self, key: &str, statuses: &[u16]) {
        self.answers
            .lock()
            .unwrap()
            .entry(key.into())
            .or_default()
            .extend(statuses);
    }

    fn calls(&self, key: &str) -> Vec<u16> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, s)| *s)
            .collect()
    }
}

async fn read_request(
    sock: &mut tokio::net::TcpStream,
) -> Option<(String, HashMap<String, String>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let headers: HashMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((path, headers, buf[head_end..head_end + len].to_vec()))
}

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
    for (code, name) in [
        ("TARI", "Tassa rifiuti"),
        ("MENSA", "Mensa scolastica"),
        ("BAD", "Servizio rifiutato"),
    ] {
        store
            .put_service(
                ENTE,
                &Service {
                    code: code.into(),
                    name: name.into(),
                    office_code: None,
                    taxonomy_code: "9/0101101IM/".into(),
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

/// A published position of `service` for debtor `debtor` due in `days`;
/// answers its single notice's (notice number, IUV, amount).
async fn position(
    store: &Store,
    service: &str,
    iupd: &str,
    debtor: u64,
    days: i64,
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
        due_date: now + Duration::days(days),
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

fn app(store: &Store, now: DateTime<Utc>, io_url: &str, smtp_url: Option<String>) -> App {
    let mut settings = Settings::new("http://127.0.0.1:1");
    settings.io_url = Some(io_url.into());
    settings.smtp_url = smtp_url;
    let mut app = App::new(store.clone(), settings);
    app.clock = Clock::Fixed(now);
    app
}

async fn enable(app: &App, service: &str, key: &str, reminder_days: Option<i64>) {
    let ctx = app.ctx(Caller::System("test"));
    notify::save_settings(
        &ctx,
        ENTE,
        service,
        &SettingsInput {
            io_api_key: Some(key.into()),
            enabled: true,
            invite_on_publish: true,
            reminder_days,
            german: false,
        },
    )
    .await
    .unwrap();
}

/// Fans out and sends until a round has nothing left at `at`.
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

fn payment_of(m: &IoMessage) -> &Value {
    &m.content["payment_data"]
}

/// Invitation, reminder (once, the job run twice), withdrawal and paid
/// reach IO with the right payment data; a citizen not on IO gets the
/// invitation by e-mail with the notice; one who opted out and has no
/// address is skipped with the reason; a reminder for an option paid
/// meanwhile is skipped; templates are refused when saved if bad.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_reaches_io_with_its_payment_data_or_goes_by_email() {
    for backend in backends() {
        let store = store(&fresh_database_url(backend).await).await;
        let now = Utc::now();
        let sim = incasso_simulator::Simulator::new(Default::default());
        let on_io = sample::personal_fiscal_code(11);
        sim.io().configure(IoSettings {
            services: vec![IoService {
                api_key: KEY_TARI.into(),
                organization_fiscal_code: ENTE.into(),
                name: "Tassa rifiuti".into(),
                rate_per_second: None,
            }],
            citizens: [
                (on_io.clone(), true),
                (sample::personal_fiscal_code(13), false),
            ]
            .into_iter()
            .map(|(cf, sender_allowed)| {
                (
                    cf,
                    IoCitizen {
                        sender_allowed,
                        preferred_languages: vec!["it_IT".into()],
                    },
                )
            })
            .collect(),
            rate_per_second: 0,
            known_one_in: 0,
            keep_messages: 1000,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let io_url = format!("http://{}/io/api/v1", listener.local_addr().unwrap());
        tokio::spawn(sim.clone().serve(listener, std::future::pending()));
        let smtp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let smtp_url = format!("smtp://{}", smtp.local_addr().unwrap());
        tokio::spawn(sim.clone().serve_smtp(smtp));
        let app = app(&store, now, &io_url, Some(smtp_url));
        let ctx = app.ctx(Caller::System("test"));

        // Templates are checked when saved: the error names the field.
        enable(&app, "TARI", KEY_TARI, Some(3)).await;
        let short = notify::save_template(
            &ctx,
            ENTE,
            "TARI",
            TemplateKind::Invitation,
            "it",
            &Template {
                subject: "Breve".into(),
                markdown: "x".repeat(100),
            },
        )
        .await;
        let e = short.unwrap_err();
        assert_eq!(e.code, "BAD_TEMPLATE", "{backend:?}: {e}");
        assert!(e.detail.to_lowercase().contains("subject"), "{}", e.detail);
        let unknown = notify::save_template(
            &ctx,
            ENTE,
            "TARI",
            TemplateKind::Reminder,
            "it",
            &Template {
                subject: "Promemoria di pagamento".into(),
                markdown: format!("Gentile {{{{codice_segreto}}}}, {}", "x".repeat(100)),
            },
        )
        .await
        .unwrap_err();
        assert_eq!(unknown.code, "BAD_TEMPLATE");
        assert!(
            unknown.detail.contains("codice_segreto"),
            "{}",
            unknown.detail
        );
        // The key is never shown back whole.
        let shown = notify::settings(&ctx, ENTE, "TARI").await.unwrap().unwrap();
        assert_eq!(shown.io_api_key_hint.as_deref(), Some("••••0001"));

        // A: on IO. B: not on IO, has an address. C: opted out, no address.
        let a = position(&store, "TARI", "A", 11, 30, now).await;
        let b = position(&store, "TARI", "B", 12, 30, now).await;
        let c_pos = {
            let mut p = sample::position(&PositionSpec {
                ente: ENTE,
                company_name: "Comune di Borgo Esempio",
                iupd: "C".into(),
                debtor_index: 13,
                amount: Cents(500),
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
            p.debtor.email = None;
            p
        };
        store
            .create_position_placed(
                ENTE,
                c_pos,
                Some(Placement {
                    service: Some("TARI".into()),
                    office: None,
                }),
                now,
                true,
            )
            .await
            .unwrap();
        // A draft is no invitation.
        let draft = sample::position(&PositionSpec {
            ente: ENTE,
            company_name: "Comune di Borgo Esempio",
            iupd: "DRAFT".into(),
            debtor_index: 11,
            amount: Cents(100),
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
        store
            .create_position_placed(
                ENTE,
                draft,
                Some(Placement {
                    service: Some("TARI".into()),
                    office: None,
                }),
                now,
                false,
            )
            .await
            .unwrap();

        let round = drain(&app, now).await;
        assert_eq!(
            (round.sent, round.emailed, round.skipped),
            (1, 1, 1),
            "{backend:?}: {round:?}"
        );
        let taken = sim.io().messages(None);
        assert_eq!(taken.len(), 1);
        let inv = &taken[0];
        assert_eq!(inv.organization_fiscal_code, ENTE);
        assert_eq!(inv.status, "PROCESSED");
        assert_eq!(inv.fiscal_code, on_io);
        assert_eq!(payment_of(inv)["amount"], a.2);
        assert_eq!(payment_of(inv)["notice_number"], a.0.as_str());
        assert_eq!(payment_of(inv)["payee"]["fiscal_code"], ENTE);
        assert!(payment_of(inv)["invalid_after_due_date"].is_boolean());
        assert!(inv.content["due_date"].is_string());
        let subject = inv.content["subject"].as_str().unwrap();
        assert!(subject.len() >= 10, "{subject}");

        // B by e-mail, with the notice attached; C skipped with its reason.
        let b_msgs = notify::position_messages(&ctx, ENTE, "B").await.unwrap();
        let channels: Vec<(&str, &str)> = b_msgs
            .iter()
            .map(|m| (m.channel.as_str(), m.status.as_str()))
            .collect();
        assert_eq!(
            channels,
            [("IO", "SKIPPED"), ("EMAIL", "SENT")],
            "{backend:?}"
        );
        assert!(
            b_msgs[0]
                .reason
                .as_deref()
                .unwrap()
                .starts_with("NOT_ON_IO")
        );
        let mail = incasso_app::mail::send_due(&app, now).await.unwrap();
        assert_eq!(mail.sent, 1, "{backend:?}: {mail:?}");
        let got = sim.mail();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].to, ["contribuente12@example.org"]);
        assert!(
            got[0].text.contains(&b.0) || got[0].text.contains("euro"),
            "{}",
            got[0].text
        );
        assert_eq!(got[0].attachments.len(), 1);
        assert!(got[0].attachments[0].bytes().starts_with(b"%PDF"));
        let c_msgs = notify::position_messages(&ctx, ENTE, "C").await.unwrap();
        assert_eq!(c_msgs.len(), 1);
        assert_eq!(c_msgs[0].status, "SKIPPED");
        let reason = c_msgs[0].reason.as_deref().unwrap();
        assert!(
            reason.starts_with("OPTED_OUT") && reason.contains("e-mail"),
            "{reason}"
        );
        assert!(
            notify::position_messages(&ctx, ENTE, "DRAFT")
                .await
                .unwrap()
                .is_empty()
        );

        // Reminders: the job run twice (as two processes would) writes one
        // per option; D due in 3 days is reminded, E paid in between is not.
        let d = position(&store, "TARI", "D", 11, 3, now).await;
        let e = position(&store, "TARI", "E", 11, 3, now).await;
        drain(&app, now).await; // their invitations
        let before = sim.io().messages(None).len();
        assert_eq!(notify::write_reminders(&app, now).await.unwrap(), 2);
        assert_eq!(notify::write_reminders(&app, now).await.unwrap(), 2);
        pay(&store, "RE", &e).await;
        drain(&app, now).await;
        let taken = sim.io().messages(None);
        let reminders: Vec<&IoMessage> = taken[before..]
            .iter()
            .filter(|t| t.content["payment_data"]["notice_number"] == d.0.as_str())
            .collect();
        assert_eq!(reminders.len(), 1, "{backend:?}: reminded once");
        assert_eq!(payment_of(reminders[0])["amount"], d.2);
        let e_msgs = notify::position_messages(&ctx, ENTE, "E").await.unwrap();
        let kinds: Vec<(&str, &str)> = e_msgs
            .iter()
            .map(|m| (m.kind.as_str(), m.status.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("INVITATION", "SENT"),
                ("REMINDER", "SKIPPED"),
                ("PAID", "SENT")
            ],
            "{backend:?}"
        );
        assert!(
            e_msgs[1]
                .reason
                .as_deref()
                .unwrap()
                .starts_with("ALREADY_PAID")
        );

        // Withdrawal of A, and D paid: told, without payment data.
        store.invalidate_position(ENTE, "A", now).await.unwrap();
        pay(&store, "RD", &d).await;
        let before = sim.io().messages(None).len();
        let round = drain(&app, now).await;
        assert_eq!(round.sent, 2, "{backend:?}: {round:?}");
        let last = &sim.io().messages(None)[before..];
        assert!(last.iter().all(|t| t.content["payment_data"].is_null()));
        let a_msgs = notify::position_messages(&ctx, ENTE, "A").await.unwrap();
        let kinds: Vec<&str> = a_msgs.iter().map(|m| m.kind.as_str()).collect();
        assert_eq!(kinds, ["INVITATION", "WITHDRAWAL"]);
        assert!(a_msgs.iter().all(|m| m.io_message_id.is_some()));
        let d_msgs = notify::position_messages(&ctx, ENTE, "D").await.unwrap();
        let kinds: Vec<&str> = d_msgs.iter().map(|m| m.kind.as_str()).collect();
        assert_eq!(kinds, ["INVITATION", "REMINDER", "PAID"]);
        store.close().await;
    }
}

/// A 429 pauses its service only; a 503 is tried again after its backoff;
/// both deliver in the end, once. A 400 is parked with its reason, never
/// tried again by itself, and a person's retry sends it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_outages_delay_and_refusals_are_parked() {
    for backend in backends() {
        let store = store(&fresh_database_url(backend).await).await;
        let now = Utc::now();
        let (io, io_url) = FakeIo::start().await;
        let app = app(&store, now, &io_url, None);
        let ctx = app.ctx(Caller::System("test"));
        enable(&app, "TARI", KEY_TARI, None).await;
        enable(&app, "MENSA", KEY_MENSA, None).await;
        enable(&app, "BAD", KEY_BAD, None).await;
        io.citizen(&sample::personal_fiscal_code(21), true);
        io.script(KEY_TARI, &[429, 503]);
        io.script(KEY_BAD, &[400]);
        position(&store, "TARI", "T1", 21, 30, now).await;
        position(&store, "MENSA", "M1", 21, 30, now).await;
        position(&store, "MENSA", "M2", 21, 30, now).await;
        position(&store, "BAD", "X1", 21, 30, now).await;

        // TARI is told to wait; MENSA is not held up by it; BAD is refused.
        let round = drain(&app, now).await;
        assert_eq!(
            (round.sent, round.retried, round.failed),
            (2, 1, 1),
            "{backend:?}: {round:?}"
        );
        assert_eq!(io.calls(KEY_MENSA), [201, 201]);
        let t1 = notify::position_messages(&ctx, ENTE, "T1").await.unwrap();
        assert_eq!(t1[0].status, "PENDING");
        assert_eq!(t1[0].attempts, 0, "a 429 is no failed attempt");
        assert!(t1[0].next_attempt_at >= now + Duration::seconds(30) - Duration::milliseconds(1));
        // Still paused a second later.
        let round = drain(&app, now + Duration::seconds(1)).await;
        assert_eq!(round.total(), 0, "{backend:?}: {round:?}");
        // After the pause: 503, tried again later, then delivered.
        let later = now + Duration::seconds(31);
        let round = drain(&app, later).await;
        assert_eq!(round.retried, 1, "{backend:?}: {round:?}");
        let t1 = notify::position_messages(&ctx, ENTE, "T1").await.unwrap();
        assert_eq!((t1[0].status.as_str(), t1[0].attempts), ("PENDING", 1));
        assert!(
            t1[0]
                .last_error
                .as_deref()
                .unwrap()
                .starts_with("IO_UNAVAILABLE")
        );
        let round = drain(&app, t1[0].next_attempt_at).await;
        assert_eq!(round.sent, 1, "{backend:?}: {round:?}");
        assert_eq!(io.calls(KEY_TARI), [429, 503, 201]);
        let t1 = notify::position_messages(&ctx, ENTE, "T1").await.unwrap();
        assert_eq!(t1[0].status, "SENT");

        // The 400: FAILED with IO's answer, not tried again by time.
        let x1 = notify::position_messages(&ctx, ENTE, "X1").await.unwrap();
        assert_eq!(x1[0].status, "FAILED");
        let why = x1[0].last_error.as_deref().unwrap();
        assert!(why.contains("400"), "{why}");
        drain(&app, now + Duration::days(2)).await;
        assert_eq!(io.calls(KEY_BAD), [400]);
        let dead = notify::dead_letters(&ctx, ENTE, 10).await.unwrap();
        assert_eq!(dead.len(), 1);
        notify::retry(&ctx, ENTE, dead[0].id).await.unwrap();
        let round = drain(&app, now + Duration::days(2)).await;
        assert_eq!(round.sent, 1, "{backend:?}: {round:?}");
        assert_eq!(io.calls(KEY_BAD), [400, 201]);
        assert!(
            notify::dead_letters(&ctx, ENTE, 10)
                .await
                .unwrap()
                .is_empty()
        );
        store.close().await;
    }
}
