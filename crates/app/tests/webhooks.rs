//! Webhooks in the application layer, on every backend, against a small
//! HTTP receiver of the test's own: the fan-out, signed deliveries, one
//! at a time per position and in order, retries with backoff, a lease that
//! lapses, and the acknowledgement of a 202.

use chrono::{DateTime, Duration, Utc};
use incasso_app::webhooks::{self, Body};
use incasso_app::{App, Caller, Clock, Settings};
use incasso_core::Cents;
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::ente::{Ente, StationLink};
use incasso_core::sample::{self, PositionSpec};
use incasso_store::webhooks::{DELIVERED, PENDING};
use incasso_store::{ReceiptRecord, Store};
use incasso_testkit::{backends, fresh_database_url};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ENTE: &str = "80000130585";
const IBAN: &str = "IT65B0200805364000104567891";

/// A request the receiver took: its headers (lower case) and body.
#[derive(Debug, Clone)]
struct Got {
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// An HTTP receiver that records every request and answers the statuses
/// queued in `answers` (then 200).
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let r = Receiver::default();
        let me = r.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let me = me.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let head_end = loop {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
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
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let body = buf[head_end..].to_vec();
                    me.got.lock().unwrap().push(Got { headers, body });
                    let status = me.answers.lock().unwrap().pop_front().unwrap_or(200);
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                });
            }
        });
        (r, url)
    }

    fn answer(&self, statuses: &[u16]) {
        self.answers.lock().unwrap().extend(statuses);
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
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
    store
}

/// A published position with `installments` installments (0: one
/// notice); answers its (notice number, IUV, amount) per option.
async fn position(store: &Store, iupd: &str, installments: u32) -> Vec<(String, String, i64)> {
    let p = sample::position(&PositionSpec {
        ente: ENTE,
        company_name: "Comune di Borgo Esempio",
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
    });
    let stored = store
        .create_position(ENTE, p, Utc::now(), true)
        .await
        .unwrap();
    stored
        .position
        .options
        .iter()
        .map(|o| {
            (
                o.notice_number.as_ref().unwrap().as_str().to_string(),
                o.iuv.clone().unwrap(),
                o.amount.0,
            )
        })
        .collect()
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

fn app(store: &Store, now: DateTime<Utc>) -> App {
    let mut app = App::new(store.clone(), Settings::new("http://127.0.0.1:1"));
    app.clock = Clock::Fixed(now);
    app
}

fn parsed(g: &Got) -> Body {
    serde_json::from_slice(&g.body).unwrap()
}

/// Events are handed on and delivered signed, each position's one at a
/// time and in order; a failure waits as long as the backoff says, then
/// goes again; a delivery whose worker died goes again when its lease
/// lapses, and not before.
#[tokio::test]
async fn deliveries_are_signed_ordered_retried_and_survive_their_worker() {
    for backend in backends() {
        let store = store(&fresh_database_url(backend).await).await;
        let now = Utc::now();
        let app = app(&store, now);
        let ctx = app.ctx(Caller::System("test"));
        let (receiver, url) = Receiver::start().await;
        let reg = webhooks::register(&ctx, ENTE, &url, "gestionale")
            .await
            .unwrap();
        assert!(reg.secret.starts_with("whsec_"));
        assert_eq!(webhooks::list(&ctx, ENTE).await.unwrap().len(), 1);

        // Position A: two installments, both paid; position B: one notice.
        let a = position(&store, "A", 2).await;
        pay(&store, "RA1", &a[1]).await;
        pay(&store, "RA2", &a[2]).await;
        let b = position(&store, "B", 0).await;
        pay(&store, "RB", &b[0]).await;
        assert_eq!(webhooks::fan_out(&app).await.unwrap(), 3);

        // First round: A's first and B's; A's second waits for A's first.
        receiver.answer(&[500, 500]);
        let round = webhooks::deliver_due(&app, now).await.unwrap();
        assert_eq!(round.retried, 2, "{backend:?}: {round:?}");
        let got = receiver.got();
        assert_eq!(got.len(), 2);
        for g in &got {
            let ts: i64 = g.headers["x-incasso-timestamp"].parse().unwrap();
            assert_eq!(ts, now.timestamp());
            assert!(webhooks::verify(
                &reg.secret,
                ts,
                &g.body,
                &g.headers["x-incasso-signature"]
            ));
            let body = parsed(g);
            assert_eq!(g.headers["x-incasso-event-id"], body.event_id.to_string());
            assert_eq!(
                g.headers["x-incasso-delivery-id"],
                body.delivery_id.to_string()
            );
            assert_eq!(body.kind, "PAID");
            assert_eq!(body.organization_fiscal_code, ENTE);
        }
        let first_a = got.iter().find(|g| parsed(g).iupd == "A").unwrap();
        assert_eq!(
            parsed(first_a).notice_number.as_deref(),
            Some(a[1].0.as_str())
        );
        assert_eq!(parsed(first_a).data["receiptId"], "RA1");

        // Not due again before the backoff; due after it (1 s and a bit).
        let r = webhooks::deliver_due(&app, now + Duration::milliseconds(900))
            .await
            .unwrap();
        assert_eq!(r.total(), 0, "{backend:?}: retried too early");
        let later = now + Duration::seconds(2);
        let r = webhooks::deliver_due(&app, later).await.unwrap();
        assert_eq!(r.delivered, 2, "{backend:?}: {r:?}");
        // Now A's second.
        let r = webhooks::deliver_due(&app, later).await.unwrap();
        assert_eq!(r.delivered, 1, "{backend:?}: {r:?}");
        let got = receiver.got();
        let order_a: Vec<String> = got
            .iter()
            .map(parsed)
            .filter(|b| b.iupd == "A")
            .map(|b| b.data["receiptId"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(order_a, ["RA1", "RA1", "RA2"], "{backend:?}");

        // A worker claims B's next event and dies: nothing is sent until
        // its lease lapses, then it goes, as attempt 2.
        let c = position(&store, "C", 0).await;
        pay(&store, "RC", &c[0]).await;
        webhooks::fan_out(&app).await.unwrap();
        let lease = Duration::from_std(webhooks::LEASE).unwrap();
        let dead = store.claim_due_deliveries(later, lease, 10).await.unwrap();
        assert_eq!(dead.len(), 1);
        let r = webhooks::deliver_due(&app, later + Duration::seconds(5))
            .await
            .unwrap();
        assert_eq!(r.total(), 0, "{backend:?}: taken while its lease held");
        let r = webhooks::deliver_due(&app, later + lease + Duration::seconds(1))
            .await
            .unwrap();
        assert_eq!(r.delivered, 1, "{backend:?}");
        let listed = webhooks::deliveries(&ctx, ENTE, reg.endpoint.id, 100)
            .await
            .unwrap();
        assert_eq!(listed.len(), 4);
        assert!(listed.iter().all(|d| d.status == DELIVERED), "{listed:?}");
        let retaken = listed.iter().find(|d| d.id == dead[0].id).unwrap();
        assert_eq!(retaken.attempts, 2);
        store.close().await;
    }
}

fn signed_ack(secret: &str, delivery_id: i64, timestamp: i64) -> (Vec<u8>, String) {
    let body = serde_json::to_vec(&serde_json::json!({
        "deliveryId": delivery_id,
        "timestamp": timestamp,
    }))
    .unwrap();
    let signature = webhooks::sign(secret, timestamp, &body);
    (body, signature)
}

/// A receiver that answers 202 confirms later: the delivery waits for the
/// acknowledgement, which must be signed, fresh and the first.
#[tokio::test]
async fn an_answer_202_waits_for_a_signed_fresh_acknowledgement() {
    for backend in backends() {
        let store = store(&fresh_database_url(backend).await).await;
        let now = Utc::now();
        let app = app(&store, now);
        let ctx = app.ctx(Caller::System("test"));
        let (receiver, url) = Receiver::start().await;
        let reg = webhooks::register(&ctx, ENTE, &url, "").await.unwrap();
        let p = position(&store, "P", 0).await;
        pay(&store, "RP", &p[0]).await;
        webhooks::fan_out(&app).await.unwrap();
        receiver.answer(&[202]);
        let r = webhooks::deliver_due(&app, now).await.unwrap();
        assert_eq!(r.awaiting_ack, 1, "{backend:?}");
        let id = parsed(&receiver.got()[0]).delivery_id;
        let d = &webhooks::deliveries(&ctx, ENTE, reg.endpoint.id, 10)
            .await
            .unwrap()[0];
        assert_eq!((d.status.as_str(), d.last_status), (PENDING, Some(202)));

        let ts = now.timestamp();
        let (body, sig) = signed_ack(&reg.secret, id, ts);
        let err = |r: Result<i64, incasso_app::AppError>| r.unwrap_err().code;
        assert_eq!(
            err(webhooks::acknowledge(&app, &body, None).await),
            "WEBHOOK_SIGNATURE_MISSING"
        );
        let (_, wrong) = signed_ack("whsec_other", id, ts);
        assert_eq!(
            err(webhooks::acknowledge(&app, &body, Some(&wrong)).await),
            "WEBHOOK_SIGNATURE_INVALID"
        );
        let (stale_body, stale_sig) = signed_ack(&reg.secret, id, ts - 301);
        assert_eq!(
            err(webhooks::acknowledge(&app, &stale_body, Some(&stale_sig)).await),
            "WEBHOOK_ACK_STALE"
        );
        assert_eq!(
            webhooks::acknowledge(&app, &body, Some(&sig))
                .await
                .unwrap(),
            id
        );
        assert_eq!(
            err(webhooks::acknowledge(&app, &body, Some(&sig)).await),
            "WEBHOOK_ACK_REPLAYED"
        );
        let d = &webhooks::deliveries(&ctx, ENTE, reg.endpoint.id, 10)
            .await
            .unwrap()[0];
        assert_eq!(d.status, DELIVERED, "{backend:?}");
        assert!(d.acked_at.is_some());
        // Nothing more is sent for it.
        let r = webhooks::deliver_due(&app, now + Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(r.total(), 0);
        store.close().await;
    }
}

/// Only the Ente's administrator manages webhooks: an application's key
/// of the Ente is refused, and so is another Ente's.
#[tokio::test]
async fn only_administrators_manage_webhooks() {
    let backend = backends()[0];
    let store = store(&fresh_database_url(backend).await).await;
    let app = app(&store, Utc::now());
    let key = |scope, ente: &str| incasso_store::ApiKeyRecord {
        key_id: "k".into(),
        ente: Some(ente.into()),
        scope,
        label: String::new(),
        created_at: 0,
    };
    let app_key = app.ctx(Caller::Key(key(incasso_store::KeyScope::Ente, ENTE)));
    let e = webhooks::register(&app_key, ENTE, "https://example.org/x", "")
        .await
        .unwrap_err();
    assert_eq!(e.code, "FORBIDDEN_SCOPE");
    let other = app.ctx(Caller::Key(key(
        incasso_store::KeyScope::EnteAdmin,
        "00514490010",
    )));
    assert!(webhooks::list(&other, ENTE).await.is_err());
    let admin = app.ctx(Caller::Key(key(incasso_store::KeyScope::EnteAdmin, ENTE)));
    let e = webhooks::register(&admin, ENTE, "http://example.org/x", "")
        .await
        .unwrap_err();
    assert_eq!(e.code, "BAD_WEBHOOK_URL");
    let r = webhooks::register(&admin, ENTE, "https://example.org/x", "")
        .await
        .unwrap();
    let e = webhooks::register(&admin, ENTE, "https://example.org/x", "")
        .await
        .unwrap_err();
    assert_eq!(e.code, "WEBHOOK_URL_REGISTERED");
    let off = webhooks::set_active(&admin, ENTE, r.endpoint.id, false)
        .await
        .unwrap();
    assert!(!off.active);
    webhooks::remove(&admin, ENTE, r.endpoint.id).await.unwrap();
    assert!(webhooks::list(&admin, ENTE).await.unwrap().is_empty());
    store.close().await;
}
