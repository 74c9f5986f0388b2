//! The App IO client against the simulated App IO over real HTTP on a
//! loopback port: profiles known, unknown and opted out; a message sent
//! and read back with its payment data; 429 with Retry-After; 5xx spells,
//! timeouts and refused connections as transient; 400 and 401 as
//! permanent; an invalid message refused before it leaves.

use chrono::{TimeZone, Utc};
use incasso_notify::io::{
    IoClient, IoError, MessageContent, MessageError, NewMessage, PaymentData,
};
use incasso_simulator::io::{DEMO_SERVICES, IoCitizen, IoFaults, IoService};
use incasso_simulator::{Settings, Simulator};
use std::time::Duration;

const KEY: &str = DEMO_SERVICES[0].0;
const ENTE: &str = DEMO_SERVICES[0].1;
const MARIO: &str = "RSSMRA80A01H501U";

struct World {
    sim: Simulator,
    base: String,
    client: IoClient,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn world() -> World {
    incasso_pagopa::connector::install_crypto_provider();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sim = Simulator::new(Settings::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(sim.clone().serve(listener, async {
        let _ = stopped.await;
    }));
    let client = IoClient::new(&format!("{base}/io/api/v1"), Duration::from_secs(2)).unwrap();
    World {
        sim,
        base,
        client,
        _stop: stop,
    }
}

fn invitation(fiscal_code: &str, payee: Option<&str>) -> NewMessage {
    NewMessage {
        fiscal_code: fiscal_code.into(),
        time_to_live: Some(7_200),
        content: MessageContent {
            subject: "Avviso di pagamento: TARI".into(),
            markdown: "Gentile Mario Rossi,\n\nil Comune di Roma Demo le comunica che è disponibile l'avviso di pagamento per **TARI 2026**.".into(),
            payment_data: Some(PaymentData {
                amount: 24_600,
                notice_number: "301000000000000017".into(),
                invalid_after_due_date: true,
                payee_fiscal_code: payee.map(str::to_string),
            }),
            due_date: Some(Utc.with_ymd_and_hms(2026, 12, 31, 22, 59, 0).unwrap()),
        },
    }
}

#[tokio::test]
async fn profiles_known_unknown_and_opted_out() {
    let w = world().await;
    let known = w.client.profile(KEY, MARIO).await.unwrap();
    assert!(known.sender_allowed);
    assert_eq!(known.preferred_languages, vec!["it_IT".to_string()]);
    // The demo's first sample debtor reads German first.
    let german = incasso_core::sample::personal_fiscal_code(0);
    let p = w.client.profile(KEY, &german).await.unwrap();
    assert_eq!(p.language_among(&["it", "de"]), Some("de"));
    let opted_out = incasso_core::sample::personal_fiscal_code(1);
    assert!(
        !w.client
            .profile(KEY, &opted_out)
            .await
            .unwrap()
            .sender_allowed
    );
    let unknown = incasso_core::sample::personal_fiscal_code(2);
    assert_eq!(
        w.client.profile(KEY, &unknown).await,
        Err(IoError::NotFound)
    );
    // Configured at run time: on IO, then off again.
    w.sim.io().set_citizen(
        &unknown,
        Some(IoCitizen {
            sender_allowed: true,
            preferred_languages: vec![],
        }),
    );
    assert!(
        w.client
            .profile(KEY, &unknown)
            .await
            .unwrap()
            .sender_allowed
    );
    w.sim.io().set_citizen(&unknown, None);
    assert_eq!(
        w.client.profile(KEY, &unknown).await,
        Err(IoError::NotFound)
    );
    // An unknown key is refused as IO's API Management refuses it.
    match w.client.profile("not-a-key", MARIO).await {
        Err(IoError::Permanent {
            status: 401,
            detail,
        }) => {
            assert!(detail.contains("subscription key"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    // A fiscal code that is none is refused before it leaves.
    assert!(matches!(
        w.client.profile(KEY, "RSSMRA80A01").await,
        Err(IoError::Invalid(MessageError::FiscalCode(_)))
    ));
    assert_eq!(w.sim.io().stats().profiles, 6);
}

#[tokio::test]
async fn a_message_is_sent_and_read_back() {
    let w = world().await;
    let id = w
        .client
        .send(KEY, &invitation(MARIO, Some(ENTE)))
        .await
        .unwrap();
    assert_eq!(id.len(), 26, "{id}");
    // The payee left out: IO puts the service's organization.
    let mut other = invitation(MARIO, None);
    other.content.payment_data.as_mut().unwrap().notice_number = "301000000000000025".into();
    other.time_to_live = None;
    let id2 = w.client.send(DEMO_SERVICES[1].0, &other).await.unwrap();
    assert_ne!(id, id2);
    let listed: Vec<serde_json::Value> = reqwest::get(format!(
        "{}/simulator/io/messages?fiscal_code={MARIO}",
        w.base
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(listed.len(), 2);
    let first = &listed[0];
    assert_eq!(first["id"], id.as_str());
    assert_eq!(first["status"], "PROCESSED");
    assert_eq!(first["time_to_live"], 7_200);
    assert_eq!(first["organization_fiscal_code"], ENTE);
    let c = &first["content"];
    assert_eq!(c["subject"], "Avviso di pagamento: TARI");
    assert_eq!(c["due_date"], "2026-12-31T22:59:00.000Z");
    assert_eq!(
        c["payment_data"],
        serde_json::json!({
            "amount": 24600,
            "notice_number": "301000000000000017",
            "invalid_after_due_date": true,
            "payee": {"fiscal_code": ENTE}
        })
    );
    let second = &listed[1];
    assert_eq!(second["time_to_live"], 3_600);
    assert_eq!(
        second["content"]["payment_data"]["payee"]["fiscal_code"],
        DEMO_SERVICES[1].1
    );
    // IO's getMessage reads it back.
    let got: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/io/api/v1/messages/{MARIO}/{id}", w.base))
        .header("Ocp-Apim-Subscription-Key", KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["message"]["content"]["payment_data"]["amount"], 24_600);
    assert_eq!(got["status"], "PROCESSED");
    // Sent to someone who opted out: taken, then rejected, as IO does.
    let opted_out = incasso_core::sample::personal_fiscal_code(1);
    w.client
        .send(KEY, &invitation(&opted_out, None))
        .await
        .unwrap();
    assert_eq!(w.sim.io().messages(Some(&opted_out))[0].status, "REJECTED");
    // The same message again is counted as a duplicate.
    w.client
        .send(KEY, &invitation(MARIO, Some(ENTE)))
        .await
        .unwrap();
    let stats = w.sim.io().stats();
    assert_eq!(
        (stats.messages, stats.rejected_messages, stats.duplicates),
        (4, 1, 1)
    );
    assert_eq!(w.sim.io().messages(None).len(), 4);
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let w = world().await;
    w.sim.io().add_service(IoService {
        api_key: "slow-key".into(),
        organization_fiscal_code: ENTE.into(),
        name: "Lento".into(),
        rate_per_second: Some(2),
    });
    assert!(w.client.profile("slow-key", MARIO).await.is_ok());
    assert!(
        w.client
            .send("slow-key", &invitation(MARIO, None))
            .await
            .is_ok()
    );
    let third = w.client.send("slow-key", &invitation(MARIO, None)).await;
    assert_eq!(
        third,
        Err(IoError::RateLimited {
            retry_after: Some(Duration::from_secs(1))
        })
    );
    assert!(third.unwrap_err().is_retryable());
    // Another service's key is not slowed down by this one's.
    assert!(w.client.profile(KEY, MARIO).await.is_ok());
    // Once the second has passed, the key works again.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(
        w.client
            .send("slow-key", &invitation(MARIO, None))
            .await
            .is_ok()
    );
    assert_eq!(w.sim.io().stats().rate_limited, 1);
    assert_eq!(w.sim.io().stats().messages, 2);
    // A 429 spell with IO's own Retry-After.
    w.sim.io().set_faults(IoFaults {
        status: 429,
        count: 1,
        retry_after: Some(7),
        delay_ms: 0,
    });
    assert_eq!(
        w.client.profile(KEY, MARIO).await,
        Err(IoError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        })
    );
}

#[tokio::test]
async fn spells_timeouts_and_refusals() {
    let w = world().await;
    // `PUT /simulator/io/faults` as a test script would.
    let r = reqwest::Client::new()
        .put(format!("{}/simulator/io/faults", w.base))
        .json(&serde_json::json!({"status": 503, "count": 2}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    for _ in 0..2 {
        match w.client.send(KEY, &invitation(MARIO, None)).await {
            Err(e @ IoError::Transient(_)) => {
                assert!(e.is_retryable());
                assert!(e.to_string().contains("503"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }
    // The spell is over: the third goes through, and nothing was stored before.
    assert!(w.client.send(KEY, &invitation(MARIO, None)).await.is_ok());
    assert_eq!(w.sim.io().stats().messages, 1);
    assert_eq!(w.sim.io().stats().faults, 2);
    // A 500 is transient too.
    w.sim.io().set_faults(IoFaults {
        status: 500,
        count: 1,
        ..Default::default()
    });
    assert!(matches!(
        w.client.profile(KEY, MARIO).await,
        Err(IoError::Transient(_))
    ));
    // An answer slower than the client's timeout.
    let quick =
        IoClient::new(&format!("{}/io/api/v1", w.base), Duration::from_millis(200)).unwrap();
    w.sim.io().set_faults(IoFaults {
        status: 503,
        count: 1,
        delay_ms: 1_000,
        ..Default::default()
    });
    match quick.profile(KEY, MARIO).await {
        Err(IoError::Transient(m)) => assert!(m.contains("timeout"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Nobody listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let nowhere = IoClient::new(
        &format!("http://{closed}/io/api/v1"),
        Duration::from_secs(1),
    )
    .unwrap();
    assert!(matches!(
        nowhere.profile(KEY, MARIO).await,
        Err(IoError::Transient(_))
    ));
    // A 400 from IO is permanent, with IO's ProblemJson detail.
    w.sim.io().set_faults(IoFaults {
        status: 400,
        count: 1,
        ..Default::default()
    });
    match w.client.send(KEY, &invitation(MARIO, None)).await {
        Err(e @ IoError::Permanent { status: 400, .. }) => assert!(!e.is_retryable()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bad_payloads_are_refused_by_io_and_before_sending() {
    let w = world().await;
    // What IO says of a bad payload (sent raw, as the client never would).
    let r = reqwest::Client::new()
        .post(format!("{}/io/api/v1/messages", w.base))
        .header("Ocp-Apim-Subscription-Key", KEY)
        .json(&serde_json::json!({
            "fiscal_code": MARIO,
            "content": {"subject": "Breve", "markdown": "x".repeat(100)}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let problem: serde_json::Value = r.json().await.unwrap();
    assert_eq!(problem["status"], 400);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("root.content.subject"),
        "{problem}"
    );
    // The client refuses it itself, with its reason, and IO sees nothing.
    let mut m = invitation(MARIO, None);
    m.content.subject = "Breve".into();
    assert_eq!(
        w.client.send(KEY, &m).await,
        Err(IoError::Invalid(MessageError::SubjectLength(5)))
    );
    let mut m = invitation(MARIO, None);
    m.content.payment_data.as_mut().unwrap().notice_number = "12345".into();
    assert!(matches!(
        w.client.send(KEY, &m).await,
        Err(IoError::Invalid(MessageError::NoticeNumber(_)))
    ));
    let stats = w.sim.io().stats();
    assert_eq!((stats.bad_requests, stats.messages), (1, 0));
}
